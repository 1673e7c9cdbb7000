//! Parquet files written under a temporary name, hashed while written, renamed
//! into place when complete: a reader never sees a partial file.

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Errors writing an output file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// File system error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// Parquet encoding error.
    #[error("{path}: parquet: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        source: parquet::errors::ParquetError,
    },
}

/// A file that was written and renamed into place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Path relative to the output folder, with `/` separators.
    pub rel_path: String,
    /// Hex sha256 of the file's bytes.
    pub sha256: String,
    /// File size in bytes.
    pub bytes: u64,
    /// Rows written.
    pub rows: u64,
}

struct HashingWriter {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writer properties shared by every phiwatch Parquet file: zstd, row groups of
/// up to 128k rows.
pub fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_created_by(format!("phiwatch {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Write `batches` (all of one schema) to `out_dir/rel_path` via a temporary name.
/// An existing file of that name is replaced, so a replay after a crash overwrites
/// rather than duplicates.
pub fn write(out_dir: &Path, rel_path: &str, batches: &[RecordBatch]) -> Result<Written, Error> {
    let Some(first) = batches.first() else {
        return Err(Error::Io {
            path: out_dir.join(rel_path),
            source: io::Error::other("nothing to write"),
        });
    };
    let mut w = PartWriter::create(out_dir, rel_path, first)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()
}

/// A Parquet file written batch by batch under a temporary name, renamed into
/// place by [`PartWriter::finish`]. Dropped unfinished (a failed run), it
/// removes its temporary file.
pub struct PartWriter {
    /// Taken by [`PartWriter::finish`].
    writer: Option<ArrowWriter<HashingWriter>>,
    /// Renamed into place: nothing to clean up.
    renamed: bool,
    path: PathBuf,
    tmp: PathBuf,
    rel_path: String,
    rows: u64,
}

impl PartWriter {
    /// Start `out_dir/rel_path` with the schema of `like`.
    pub fn create(out_dir: &Path, rel_path: &str, like: &RecordBatch) -> Result<Self, Error> {
        let path = out_dir.join(rel_path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let tmp = path.with_extension("parquet.tmp");
        let file = File::create(&tmp).map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
        let sink = HashingWriter {
            file,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let writer =
            ArrowWriter::try_new(sink, like.schema(), Some(properties())).map_err(|source| {
                Error::Parquet {
                    path: tmp.clone(),
                    source,
                }
            })?;
        Ok(PartWriter {
            writer: Some(writer),
            renamed: false,
            path,
            tmp,
            rel_path: rel_path.replace('\\', "/"),
            rows: 0,
        })
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Append a batch (encoded now; the batch itself is not kept).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        let pq_err = |source| Error::Parquet {
            path: self.tmp.clone(),
            source,
        };
        let Some(writer) = self.writer.as_mut() else {
            return Err(pq_err(parquet::errors::ParquetError::General(
                "part already finished".into(),
            )));
        };
        self.rows += batch.num_rows() as u64;
        writer.write(batch).map_err(pq_err)
    }

    /// Close the file, sync it, and rename it into place.
    pub fn finish(mut self) -> Result<Written, Error> {
        let (tmp, path) = (self.tmp.clone(), self.path.clone());
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        let Some(writer) = self.writer.take() else {
            return Err(Error::Parquet {
                path: tmp,
                source: parquet::errors::ParquetError::General("part already finished".into()),
            });
        };
        let rows = self.rows;
        let rel_path = std::mem::take(&mut self.rel_path);
        // A failure from here on leaves the temporary file to Drop, which removes it.
        let mut sink = writer.into_inner().map_err(|source| Error::Parquet {
            path: tmp.clone(),
            source,
        })?;
        sink.flush().map_err(io_err(&tmp))?;
        sink.file.sync_all().map_err(io_err(&tmp))?;
        let HashingWriter {
            file,
            hasher,
            bytes,
        } = sink;
        drop(file);
        let sha256 = crate::text::hex(&hasher.finalize());
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        self.renamed = true;
        Ok(Written {
            rel_path,
            sha256,
            bytes,
            rows,
        })
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        if !self.renamed {
            // An unfinished part is not output; a failed run leaves no trace of it.
            drop(self.writer.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::UInt64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(n: u64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::UInt64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(UInt64Array::from_iter_values(0..n))])
            .expect("batch")
    }

    #[test]
    fn parts_appear_only_when_finished() {
        let dir = tempfile::tempdir().expect("temp dir");
        let b = batch(3);
        let mut w = PartWriter::create(dir.path(), "f/part-0000.parquet", &b).expect("create");
        w.write(&b).expect("write");
        w.write(&b).expect("write");
        let tmp = dir.path().join("f/part-0000.parquet.tmp");
        assert!(tmp.exists() && !dir.path().join("f/part-0000.parquet").exists());
        let done = w.finish().expect("finish");
        assert_eq!(
            (done.rows, done.rel_path.as_str()),
            (6, "f/part-0000.parquet")
        );
        let bytes = std::fs::read(dir.path().join("f/part-0000.parquet")).expect("renamed");
        assert_eq!(done.sha256, crate::text::hex(&Sha256::digest(&bytes)));
        assert!(!tmp.exists());

        let mut w = PartWriter::create(dir.path(), "f/part-0001.parquet", &b).expect("create");
        w.write(&b).expect("write");
        drop(w);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("f"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            ["part-0000.parquet"],
            "an unfinished part leaves nothing"
        );
    }
}
