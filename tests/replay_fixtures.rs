//! Replay over real-shaped fixtures: the findings Parquet has CONTRACT.md's columns
//! and types; parallel blocks give the same findings, on the same lines, as a
//! line-by-line run; compressed inputs give the same findings; output is
//! deterministic (same names, same bytes).

mod common;

use arrow::array::{Array, StringArray, UInt64Array};
use arrow::datatypes::{DataType, TimeUnit};
use phiwatch::event::Provenance;
use phiwatch::pipeline::{Output, SourceState};
use phiwatch::replay::{self, Progress, ReplayOptions};
use phiwatch::source::file;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn run_replay(paths: &[String], out: &Path, threads: usize, block_bytes: usize) -> replay::Summary {
    let inputs = file::expand(paths).expect("inputs");
    let opts = ReplayOptions {
        out_dir: out.to_path_buf(),
        threads,
        block_bytes,
    };
    replay::replay(
        &common::engine(),
        &inputs,
        &opts,
        &Progress::default(),
        None,
    )
    .expect("replay")
}

type Row = (u64, String, String, String);

/// (source_line, rule_id, location, value_hmac) of every finding under `out`.
fn rows(out: &Path) -> Vec<Row> {
    let mut v = rows_as_written(out);
    v.sort();
    v
}

/// [`rows`] in the order the output files (by name) and their rows hold them.
fn rows_as_written(out: &Path) -> Vec<Row> {
    let mut v = Vec::new();
    for b in common::read_batches(&out.join("findings")) {
        let s = |n: &str| {
            b.column_by_name(n)
                .expect("col")
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8")
                .clone()
        };
        let line = b
            .column_by_name("source_line")
            .expect("col")
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("u64")
            .clone();
        let (r, l, h) = (s("rule_id"), s("location"), s("value_hmac"));
        for i in 0..b.num_rows() {
            v.push((
                line.value(i),
                r.value(i).to_string(),
                l.value(i).to_string(),
                h.value(i).to_string(),
            ));
        }
    }
    v
}

fn fixture_logs() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut v: Vec<String> = glob::glob(&format!("{}/*/*.log", root.display()))
        .expect("glob")
        .map(|p| p.expect("path").display().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn findings_columns_match_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let s = run_replay(&fixture_logs(), &out, 2, replay::DEFAULT_BLOCK_BYTES);
    assert!(s.stats.findings() > 0, "fixtures yield findings");
    let b = common::read_batches(&out.join("findings"));
    let schema = b[0].schema();
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let want: Vec<(&str, DataType, bool)> = vec![
        ("finding_id", DataType::Utf8, false),
        ("time", ts, true),
        ("rule_id", DataType::Utf8, false),
        ("category", DataType::Utf8, false),
        ("kind", DataType::Utf8, false),
        ("severity", DataType::Utf8, false),
        ("confidence", DataType::Float32, false),
        ("ocsf_class_uid", DataType::Int32, false),
        ("source_format", DataType::Utf8, false),
        ("source", DataType::Utf8, false),
        ("source_line", DataType::UInt64, true),
        ("kafka_partition", DataType::Int32, true),
        ("kafka_offset", DataType::Int64, true),
        ("location", DataType::Utf8, false),
        ("value_hmac", DataType::Utf8, false),
        ("value_masked", DataType::Utf8, false),
        ("key_id", DataType::Utf8, false),
        ("principal", DataType::Utf8, true),
        ("client_ip", DataType::Utf8, true),
        ("dest_host", DataType::Utf8, true),
        ("http_method", DataType::Utf8, true),
        ("url_path", DataType::Utf8, true),
        ("http_status", DataType::UInt16, true),
        ("detail", DataType::Utf8, true),
    ];
    let got: Vec<(&str, DataType, bool)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone(), f.is_nullable()))
        .collect();
    assert_eq!(got, want);
    // Values are in the contract's vocabularies.
    for batch in &b {
        let s = |n: &str| {
            batch
                .column_by_name(n)
                .expect("col")
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("utf8")
                .clone()
        };
        let (cat, sev, hmac) = (s("category"), s("severity"), s("value_hmac"));
        for i in 0..batch.num_rows() {
            assert!(["phi", "credential", "anomaly", "misconfiguration"].contains(&cat.value(i)));
            assert!(["info", "low", "medium", "high", "critical"].contains(&sev.value(i)));
            assert_eq!(hmac.value(i).len(), 64);
        }
    }
}

/// A multi-block input: the fixture lines repeated, cut into 64 KiB blocks.
fn big_input(dir: &Path) -> PathBuf {
    let lines = common::fixture_lines();
    let p = dir.join("big.log");
    let mut f = std::fs::File::create(&p).expect("create");
    let mut written = 0usize;
    while written < 3 * 1024 * 1024 + 100_000 {
        for l in &lines {
            f.write_all(l).expect("write");
            f.write_all(b"\n").expect("write");
            written += l.len() + 1;
        }
    }
    p
}

#[test]
fn parallel_blocks_find_the_same_as_a_line_by_line_run_on_the_same_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = big_input(dir.path());
    let out = dir.path().join("out");
    let summary = run_replay(&[input.display().to_string()], &out, 3, 64 * 1024);
    // Blocks finish in any order; their findings are written in input order.
    let lines: Vec<u64> = rows_as_written(&out).iter().map(|r| r.0).collect();
    assert!(lines.is_sorted(), "findings out of line order");
    assert_eq!(lines.len() as u64, summary.stats.findings());

    let engine = common::engine();
    let mut sequential = Output::default();
    let mut state = SourceState::default();
    let name: Arc<str> = Arc::from(input.display().to_string());
    let data = std::fs::read(&input).expect("read");
    for (i, l) in data.split(|&b| b == b'\n').enumerate() {
        let prov = Provenance::file_line(name.clone(), i as u64 + 1);
        engine.process_record(l, &prov, &mut state, &mut sequential);
    }
    let mut want: Vec<Row> = sequential
        .findings
        .iter()
        .map(|f| {
            (
                f.source_line.expect("line"),
                f.rule_id.to_string(),
                f.location.clone(),
                f.value_hmac.clone(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(rows(&out), want);
}

#[test]
fn gzip_and_zstd_inputs_give_the_same_findings_and_output_is_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = big_input(dir.path());
    let data = std::fs::read(&input).expect("read");
    let gz = dir.path().join("big.log.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("create"),
        flate2::Compression::fast(),
    );
    enc.write_all(&data).expect("gzip");
    enc.finish().expect("gzip");
    let zst = dir.path().join("big.log.zst");
    std::fs::write(&zst, zstd::encode_all(&data[..], 3).expect("zstd")).expect("write");

    let strip = |v: Vec<Row>| -> BTreeSet<Row> { v.into_iter().collect() };
    let plain = dir.path().join("o1");
    run_replay(&[input.display().to_string()], &plain, 2, 64 * 1024);
    for (c, name) in [(&gz, "o2"), (&zst, "o3")] {
        let out = dir.path().join(name);
        run_replay(&[c.display().to_string()], &out, 2, 64 * 1024);
        assert_eq!(strip(rows(&out)), strip(rows(&plain)), "{}", c.display());
    }

    // Same input, same output: file names and bytes.
    let again = dir.path().join("o1b");
    run_replay(&[input.display().to_string()], &again, 1, 64 * 1024);
    let rel = |root: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        common::parquet_files(root)
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).expect("read");
                (p.strip_prefix(root).expect("prefix").to_path_buf(), bytes)
            })
            .collect()
    };
    let (a, b) = (rel(&plain), rel(&again));
    assert_eq!(
        a.iter().map(|x| &x.0).collect::<Vec<_>>(),
        b.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert!(a == b, "output bytes differ between identical replays");
    // Replaying again into the same folder overwrites, it does not duplicate.
    run_replay(&[input.display().to_string()], &plain, 2, 64 * 1024);
    assert_eq!(common::parquet_files(&plain).len(), a.len());
    assert_eq!(
        phiwatch::sink::manifest::verify(&plain).expect("manifest"),
        2 * a.len()
    );
}

#[test]
fn mixed_file_decodes_each_line_with_its_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mixed");
    let mixed = root.join("mixed.log");
    let expected = std::fs::read_to_string(root.join("mixed.formats")).expect("formats");
    let s = run_replay(
        &[mixed.display().to_string()],
        &out,
        1,
        replay::DEFAULT_BLOCK_BYTES,
    );
    // One event per line of each format, and one more for the Kong batch
    // line's second object.
    let mut want: BTreeMap<&str, u64> = BTreeMap::new();
    for l in expected.lines().filter(|l| *l != "none" && *l != "error") {
        *want.entry(l).or_default() += 1;
    }
    *want.entry("kong").or_default() += 1;
    assert_eq!(s.stats.events_by_format, want);
    let errors = expected.lines().filter(|l| *l == "error").count() as u64;
    assert_eq!(s.stats.dead_letters, errors, "one dead letter per bad line");
}

#[test]
fn batched_lines_give_what_record_by_record_gives() {
    // Fixture lines of every format (a Kong batch array among them), the
    // labeled evaluation lines, and records that cannot be decoded, spread so
    // that some fall on the edges of the engine's batches.
    let mut lines = common::fixture_lines();
    let labeled = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eval/labeled.jsonl"),
    )
    .expect("labeled set");
    for l in labeled.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("labeled line");
        lines.push(v["line"].as_str().expect("line").as_bytes().to_vec());
    }
    let bad: [Vec<u8>; 5] = [
        b"{\"request\": {\"uri\": \"/a?ssn=".to_vec(),
        // A batch whose first event decodes before the second element fails it.
        br#"[{"request":{"uri":"/providers?npi=2275855619"}},3]"#.to_vec(),
        vec![0xff, 0xfe, b'x'],
        b"   ".to_vec(),
        vec![b'a'; phiwatch::pipeline::DEFAULT_MAX_RECORD_BYTES + 1],
    ];
    for (i, b) in bad.iter().cycle().take(15).enumerate() {
        lines.insert((i * 97 + 63) % lines.len(), b.clone());
    }
    assert!(lines.len() > 1000, "several batches");

    let one = batched_and_one_by_one(&lines);
    assert!(one.findings.len() > 500, "{} findings", one.findings.len());
    let accesses = one.accesses.as_ref().expect("accesses collected");
    assert!(
        accesses.iter().any(|a| a.prov.index > 0),
        "a batch array's second event"
    );
    assert!(
        one.dead_letters
            .iter()
            .any(|d| d.reason.contains("exceeds")),
        "an oversized record"
    );
    assert!(
        one.dead_letters.len() >= 12,
        "three of each bad kind but the blank"
    );
}

/// VPC Flow Logs header lines change how the rows after them decode; JSON
/// records between them, valid or not, change nothing, and an undecodable
/// JSON record's dead letter keeps its place.
#[test]
fn batched_json_between_header_and_rows_gives_what_record_by_record_gives() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let read = |p: &str| -> Vec<Vec<u8>> {
        std::fs::read_to_string(root.join(p))
            .expect("fixture")
            .lines()
            .map(|l| l.as_bytes().to_vec())
            .collect()
    };
    let (custom, default, kong) = (
        read("vpc_flow/custom.log"),
        read("vpc_flow/default.log"),
        read("kong/kong.log"),
    );
    let mut lines = Vec::new();
    for round in 0..100 {
        for (i, l) in custom.iter().chain(&default).enumerate() {
            lines.push(l.clone());
            lines.push(kong[(round + i) % kong.len()].clone());
            if (round + i) % 7 == 0 {
                lines.push(b"{\"request\": {\"uri\": \"/a?ssn=".to_vec());
            }
        }
        // The default layout again, after the custom header.
        lines.push(default[round % default.len()].clone());
    }
    assert!(lines.len() > 1000, "several batches");
    let one = batched_and_one_by_one(&lines);
    let vpc = one.stats.events_by_format.get("vpc_flow").copied();
    assert!(vpc.is_some_and(|n| n > 100), "{vpc:?} vpc events");
    assert!(one.dead_letters.len() > 20, "undecodable json records");
}

/// Run `lines` record by record and in batches; assert both give the same
/// findings, dead letters, counts, accesses and exposure, and return the
/// record-by-record output.
fn batched_and_one_by_one(lines: &[Vec<u8>]) -> Output {
    let engine = common::engine();
    let source: Arc<str> = Arc::from("mixed.log");
    let mut one = engine.output();
    let mut state = SourceState::default();
    for (i, l) in lines.iter().enumerate() {
        let prov = Provenance::file_line(source.clone(), i as u64 + 1);
        engine.process_record(l, &prov, &mut state, &mut one);
    }
    let mut batched = engine.output();
    let mut state = SourceState::default();
    let mut prov = Provenance::file_line(source.clone(), 0);
    let numbered = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.as_slice()));
    engine.process_lines(numbered, &mut prov, &mut state, &mut batched);

    assert!(batched.findings == one.findings, "findings differ");
    assert_eq!(batched.dead_letters, one.dead_letters);
    assert_eq!(batched.stats, one.stats);
    assert!(batched.accesses == one.accesses, "accesses differ");
    let rows = |o: &Output| {
        o.exposure
            .as_ref()
            .expect("exposure counted")
            .to_record_batch("k")
            .expect("exposure rows")
    };
    assert_eq!(rows(&batched), rows(&one));
    one
}
