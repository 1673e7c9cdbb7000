//! Where results go: findings and exposure Parquet, dead letters, the manifest.

pub mod alerts;
pub mod dead_letter;
pub mod findings;
pub mod manifest;
pub mod parquet;
