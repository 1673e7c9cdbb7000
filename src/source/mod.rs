//! Where records come from: files (and stdin) for `replay`.

pub mod file;
