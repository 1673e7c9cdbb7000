//! Reading the output folder: exposure rows and the findings columns the report uses.

use super::Error;
use crate::exposure::{ExposureRow, read_batch};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The findings columns the report needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FindingRow {
    /// Event time, µs.
    pub time: Option<i64>,
    /// Rule id.
    pub rule_id: String,
    /// `phi`, `credential`, `anomaly`, `misconfiguration`.
    pub category: String,
    /// Kind.
    pub kind: String,
    /// Masked value.
    pub value_masked: String,
    /// Keyed HMAC of the value.
    pub value_hmac: String,
    /// Where in the event.
    pub location: String,
    /// Who made the request.
    pub principal: Option<String>,
    /// Client IP.
    pub client_ip: Option<String>,
}

/// Every `*.parquet` under `dir`, recursively, sorted (temporary files skipped).
pub fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| Error::Io {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: d.clone(),
                source,
            })?;
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn batches(path: &Path) -> Result<Vec<RecordBatch>, Error> {
    let bad = |message: String| Error::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(e.to_string()))?
        .build()
        .map_err(|e| bad(e.to_string()))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))
}

/// Every exposure row in the Parquet files under `dir`.
pub fn exposure_rows(dir: &Path) -> Result<(Vec<ExposureRow>, usize), Error> {
    let files = parquet_files(dir)?;
    let mut rows = Vec::new();
    for f in &files {
        for b in batches(f)? {
            rows.extend(read_batch(&b).map_err(|e| Error::Parquet {
                path: f.clone(),
                message: e.to_string(),
            })?);
        }
    }
    Ok((rows, files.len()))
}

fn strings(batch: &RecordBatch, name: &str) -> Option<Vec<Option<String>>> {
    let c = batch.column_by_name(name)?;
    let s = c.as_string_opt::<i32>()?;
    Some(s.iter().map(|v| v.map(String::from)).collect())
}

/// Every finding (the columns the report uses) in the Parquet files under `dir`.
pub fn finding_rows(dir: &Path) -> Result<Vec<FindingRow>, Error> {
    let mut out = Vec::new();
    for f in parquet_files(dir)? {
        for b in batches(&f)? {
            let n = b.num_rows();
            let col = |name: &str| strings(&b, name).unwrap_or_else(|| vec![None; n]);
            let (rule, cat, kind) = (col("rule_id"), col("category"), col("kind"));
            let (masked, hmac, loc) = (col("value_masked"), col("value_hmac"), col("location"));
            let (princ, ip) = (col("principal"), col("client_ip"));
            let time = b
                .column_by_name("time")
                .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>());
            for i in 0..n {
                out.push(FindingRow {
                    time: time.and_then(|t| (!t.is_null(i)).then(|| t.value(i))),
                    rule_id: rule[i].clone().unwrap_or_default(),
                    category: cat[i].clone().unwrap_or_default(),
                    kind: kind[i].clone().unwrap_or_default(),
                    value_masked: masked[i].clone().unwrap_or_default(),
                    value_hmac: hmac[i].clone().unwrap_or_default(),
                    location: loc[i].clone().unwrap_or_default(),
                    principal: princ[i].clone(),
                    client_ip: ip[i].clone(),
                });
            }
        }
    }
    Ok(out)
}
