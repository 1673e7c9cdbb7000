//! Where results go: findings and exposure Parquet, dead letters, the manifest.

pub mod dead_letter;
pub mod findings;
pub mod manifest;
pub mod parquet;
