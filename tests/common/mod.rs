//! Helpers shared by integration tests.
#![allow(dead_code)]

use arrow::array::{Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use phiwatch::decode::Mode;
use phiwatch::detect::Detector;
use phiwatch::event::Provenance;
use phiwatch::pipeline::{Engine, EngineOptions, Output, SourceState};
use phiwatch::redact::Key;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The key every test hashes under.
pub const TEST_KEY: &[u8] = b"phiwatch-test-key-0123456789abcdef";

/// An engine with the built-in rules, auto-detection and the test key.
pub fn engine() -> Engine {
    let detector = Detector::load(Key::from_bytes(TEST_KEY), None).expect("built-in rules load");
    Engine::new(
        detector,
        EngineOptions {
            mode: Mode::Auto,
            ..EngineOptions::default()
        },
    )
}

/// Every line of the per-format fixture logs whose formats decode line by line
/// without file state (VPC Flow Logs headers are per file, so they are left out).
pub fn fixture_lines() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).expect("fixtures/") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() || dir.ends_with("vpc_flow") || dir.ends_with("mixed") {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("fixture dir") {
            let f = f.expect("entry").path();
            if f.extension().is_some_and(|e| e == "log") {
                files.push(f);
            }
        }
    }
    files.sort();
    let mut lines = Vec::new();
    for f in files {
        let data = std::fs::read(&f).expect("read fixture");
        for l in data.split(|&b| b == b'\n') {
            if !l.iter().all(u8::is_ascii_whitespace) {
                lines.push(l.to_vec());
            }
        }
    }
    lines
}

/// A finding as compared across runs: (rule_id, location, value_hmac, source_format).
pub type Key4 = (String, String, String, String);

/// Every `*.parquet` file under `dir`, recursively, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else {
            return;
        };
        for e in rd {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, &mut v);
    v.sort();
    v
}

/// Every record batch of every Parquet file under `dir`, read back with arrow.
pub fn read_batches(dir: &Path) -> Vec<arrow::array::RecordBatch> {
    let mut out = Vec::new();
    for f in parquet_files(dir) {
        let file = std::fs::File::open(&f).expect("open parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet footer")
            .build()
            .expect("reader");
        for b in reader {
            out.push(b.expect("batch"));
        }
    }
    out
}

/// A utf8 column of a batch by name.
pub fn col<'a>(b: &'a arrow::array::RecordBatch, name: &str) -> &'a StringArray {
    b.column_by_name(name)
        .expect("column")
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8")
}

/// The pattern findings (anomaly findings left out: their state is in memory and
/// starts over after a crash) under `out/findings`, de-duplicated by finding_id,
/// sorted.
pub fn findings_in(out: &Path) -> Vec<Key4> {
    let mut by_id: BTreeMap<String, Key4> = BTreeMap::new();
    for b in read_batches(&out.join("findings")) {
        let category = col(&b, "category");
        let (id, rule, loc, h, fmt) = (
            col(&b, "finding_id"),
            col(&b, "rule_id"),
            col(&b, "location"),
            col(&b, "value_hmac"),
            col(&b, "source_format"),
        );
        for i in 0..b.num_rows() {
            if category.value(i) == "anomaly" {
                continue;
            }
            by_id.insert(
                id.value(i).to_string(),
                (
                    rule.value(i).to_string(),
                    loc.value(i).to_string(),
                    h.value(i).to_string(),
                    fmt.value(i).to_string(),
                ),
            );
        }
    }
    let mut v: Vec<Key4> = by_id.into_values().collect();
    v.sort();
    v
}

/// The findings of the lines run one by one through the engine, sorted.
pub fn replay_findings(lines: &[Vec<u8>]) -> Vec<Key4> {
    let engine = engine();
    let mut out = Output::default();
    let mut state = SourceState::default();
    let source: Arc<str> = Arc::from("lines");
    for (i, l) in lines.iter().enumerate() {
        let prov = Provenance::file_line(source.clone(), i as u64 + 1);
        engine.process_record(l, &prov, &mut state, &mut out);
    }
    let mut v: Vec<Key4> = out
        .findings
        .iter()
        .map(|f| {
            (
                f.rule_id.to_string(),
                f.location.clone(),
                f.value_hmac.clone(),
                f.source_format.to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Assert two finding lists are equal, printing a short difference when not.
pub fn assert_same_findings(got: &[Key4], want: &[Key4]) {
    if got == want {
        return;
    }
    let count = |v: &[Key4]| {
        let mut m: BTreeMap<Key4, i64> = BTreeMap::new();
        for k in v {
            *m.entry(k.clone()).or_default() += 1;
        }
        m
    };
    let (g, w) = (count(got), count(want));
    let mut diff: Vec<String> = Vec::new();
    for (k, n) in &w {
        let have = g.get(k).copied().unwrap_or(0);
        if have != *n {
            diff.push(format!("{k:?}: want {n}, got {have}"));
        }
    }
    for (k, n) in &g {
        if !w.contains_key(k) {
            diff.push(format!("{k:?}: want 0, got {n}"));
        }
    }
    let shown: Vec<&String> = diff.iter().take(10).collect();
    panic!(
        "findings differ: {} rows got, {} wanted; {} keys differ, first: {shown:#?}",
        got.len(),
        want.len(),
        diff.len()
    );
}
