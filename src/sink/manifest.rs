//! `manifest.jsonl`: one line per file written, with its sha256; each line carries
//! `prev`, the sha256 of the previous line's text (64 zeros on the first line), so
//! a removed, reordered or edited line breaks the chain.

use super::parquet::Written;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, BufRead, Write};
use std::path::Path;

/// File name of the manifest inside the output folder.
pub const FILE_NAME: &str = "manifest.jsonl";

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One manifest line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Path relative to the output folder.
    pub path: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Rows in the file.
    pub rows: u64,
    /// Hex sha256 of the previous manifest line.
    pub prev: String,
}

fn line_hash(line: &str) -> String {
    hex::encode(Sha256::digest(line.as_bytes()))
}

fn last_hash(path: &Path) -> io::Result<String> {
    match std::fs::File::open(path) {
        Ok(f) => {
            let mut last = None;
            for line in io::BufReader::new(f).lines() {
                let line = line?;
                if !line.trim().is_empty() {
                    last = Some(line);
                }
            }
            Ok(last.map_or_else(|| GENESIS.to_string(), |l| line_hash(&l)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(GENESIS.to_string()),
        Err(e) => Err(e),
    }
}

/// Append entries for `files` (in the given order) to the manifest in `out_dir`.
pub fn append(out_dir: &Path, files: &[Written]) -> io::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    let path = out_dir.join(FILE_NAME);
    let mut prev = last_hash(&path)?;
    let mut text = String::new();
    for w in files {
        let entry = Entry {
            path: w.rel_path.clone(),
            sha256: w.sha256.clone(),
            bytes: w.bytes,
            rows: w.rows,
            prev,
        };
        let line = serde_json::to_string(&entry).map_err(io::Error::other)?;
        prev = line_hash(&line);
        text.push_str(&line);
        text.push('\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Why a manifest does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading failed.
    #[error("manifest: {0}")]
    Io(#[from] io::Error),
    /// A line is not a manifest entry.
    #[error("manifest line {0}: not an entry")]
    Syntax(usize),
    /// A line's `prev` does not match the previous line.
    #[error("manifest line {0}: chain broken")]
    Chain(usize),
    /// The file's current hash differs from the manifest's newest entry for it.
    #[error("{0}: sha256 differs from the manifest")]
    Hash(String),
}

/// Check the chain, and that every file's newest entry matches its bytes on disk
/// (files since replaced by a later write are checked against their later entry).
pub fn verify(out_dir: &Path) -> Result<usize, VerifyError> {
    let text = std::fs::read_to_string(out_dir.join(FILE_NAME))?;
    let mut prev = GENESIS.to_string();
    let mut newest = std::collections::BTreeMap::new();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let entry: Entry = serde_json::from_str(line).map_err(|_| VerifyError::Syntax(i + 1))?;
        if entry.prev != prev {
            return Err(VerifyError::Chain(i + 1));
        }
        prev = line_hash(line);
        newest.insert(entry.path.clone(), entry.sha256);
        n += 1;
    }
    for (rel, sha) in newest {
        let bytes = std::fs::read(out_dir.join(&rel))?;
        if hex::encode(Sha256::digest(&bytes)) != sha {
            return Err(VerifyError::Hash(rel));
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(dir: &Path, name: &str, content: &[u8]) -> Written {
        std::fs::write(dir.join(name), content).expect("write");
        Written {
            rel_path: name.to_string(),
            sha256: hex::encode(Sha256::digest(content)),
            bytes: content.len() as u64,
            rows: 1,
        }
    }

    #[test]
    fn chain_verifies_and_detects_tampering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = written(dir.path(), "a", b"alpha");
        let b = written(dir.path(), "b", b"beta");
        append(dir.path(), &[a]).expect("append");
        append(dir.path(), &[b]).expect("append");
        assert_eq!(verify(dir.path()).expect("verify"), 2);

        std::fs::write(dir.path().join("b"), b"BETA").expect("write");
        assert!(matches!(verify(dir.path()), Err(VerifyError::Hash(_))));
        std::fs::write(dir.path().join("b"), b"beta").expect("write");

        let path = dir.path().join(FILE_NAME);
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n", lines[1])).expect("write");
        assert!(matches!(verify(dir.path()), Err(VerifyError::Chain(1))));
    }
}
