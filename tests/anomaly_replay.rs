//! Anomaly rules through `phiwatch replay`: a scripted enumeration fires exactly
//! once, in findings/anomaly/, and normal traffic raises nothing — the same rules
//! and sequences `rules check` runs, but through the binary and parallel blocks.

use arrow::array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;
use std::process::Command;

fn anomaly_kinds(seq: &str, threads: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let input = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/anomaly")
        .join(seq);
    let o = Command::new(env!("CARGO_BIN_EXE_phiwatch"))
        .env("PHIWATCH_KEY", "ab".repeat(32))
        .args(["replay", "--quiet", "--threads", threads, "--out"])
        .arg(&out)
        .arg(&input)
        .output()
        .expect("run phiwatch");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut kinds = Vec::new();
    let Ok(rd) = std::fs::read_dir(out.join("findings/anomaly")) else {
        return kinds;
    };
    for f in rd {
        let f = std::fs::File::open(f.expect("entry").path()).expect("open");
        for b in ParquetRecordBatchReaderBuilder::try_new(f)
            .expect("parquet")
            .build()
            .expect("reader")
        {
            let b = b.expect("batch");
            let cat = b
                .column_by_name("category")
                .expect("category")
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8")
                .clone();
            let kind = b
                .column_by_name("kind")
                .expect("kind")
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8")
                .clone();
            for i in 0..b.num_rows() {
                assert_eq!(cat.value(i), "anomaly");
                kinds.push(kind.value(i).to_string());
            }
        }
    }
    kinds
}

#[test]
fn a_scripted_enumeration_fires_once_through_replay() {
    assert_eq!(
        anomaly_kinds("enumeration_walk.jsonl", "2"),
        ["enumeration"]
    );
}

#[test]
fn normal_traffic_raises_no_anomaly_through_replay() {
    assert!(anomaly_kinds("normal_traffic.jsonl", "2").is_empty());
}
