//! Bad input never crashes and never disappears: every malformed record becomes one
//! dead letter with its source, line and reason; the run goes on and exits 0.

mod common;

use arrow::array::{Array, StringArray, UInt64Array};
use std::path::Path;
use std::process::Command;

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn phiwatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_phiwatch"));
    c.env("PHIWATCH_KEY", KEY);
    c
}

/// (line, reason) of every dead letter under `out`.
fn dead_letters(out: &Path) -> Vec<(u64, String, u64)> {
    let mut rows = Vec::new();
    for b in common::read_batches(&out.join("dead_letter")) {
        let line = b
            .column_by_name("source_line")
            .expect("source_line")
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("u64");
        let reason = b
            .column_by_name("reason")
            .expect("reason")
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8");
        let len = b
            .column_by_name("length")
            .expect("length")
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("u64");
        for i in 0..b.num_rows() {
            rows.push((line.value(i), reason.value(i).to_string(), len.value(i)));
        }
    }
    rows.sort();
    rows
}

fn bad_input() -> Vec<u8> {
    let mut data = Vec::new();
    // 1: invalid UTF-8
    data.extend_from_slice(b"\xff\xfe{\"a\":1}\n");
    // 2: truncated JSON
    data.extend_from_slice(b"{\"request\":{\"method\":\"GET\",\"uri\":\"/x\"\n");
    // 3: binary garbage (no newlines)
    let mut x: u32 = 12345;
    for _ in 0..300 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let b = (x >> 16) as u8;
        data.push(if b == b'\n' { 0 } else { b });
    }
    data.push(b'\n');
    // 4: a 3 MiB line
    data.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024));
    data.push(b'\n');
    // 5: 5,000-deep nesting
    data.extend(std::iter::repeat_n(b'[', 5000));
    data.extend(std::iter::repeat_n(b']', 5000));
    data.push(b'\n');
    // 6: blank line, skipped without a dead letter
    data.push(b'\n');
    // 7: deep object nesting inside something JSON-looking
    data.extend_from_slice(b"{\"a\":");
    data.extend(std::iter::repeat_n(b'{', 5000));
    data.push(b'\n');
    data
}

#[test]
fn every_bad_record_is_one_dead_letter_and_the_run_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("bad.log");
    std::fs::write(&input, bad_input()).expect("write");
    let out = dir.path().join("out");
    let status = phiwatch()
        .args(["replay", "--quiet", "--out"])
        .arg(&out)
        .arg(&input)
        .status()
        .expect("run phiwatch");
    assert!(status.success(), "exit status {status:?}");
    let dl = dead_letters(&out);
    let lines: Vec<u64> = dl.iter().map(|d| d.0).collect();
    assert_eq!(lines, vec![1, 2, 3, 4, 5, 7], "{dl:?}");
    assert!(dl[0].1.contains("utf-8"), "{}", dl[0].1);
    assert!(dl[3].1.contains("exceeds"), "{}", dl[3].1);
    assert_eq!(dl[3].2, 3 * 1024 * 1024);
    for (_, reason, _) in &dl {
        assert!(!reason.is_empty());
        assert!(!reason.contains("aaaa"), "reason leaks content: {reason}");
    }
}

#[test]
fn overlong_records_are_skipped_without_buffering_when_the_cap_is_small() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("bad.log");
    std::fs::write(&input, bad_input()).expect("write");
    let cfg = dir.path().join("phiwatch.toml");
    std::fs::write(
        &cfg,
        "[replay]\nmax_record_bytes = 65536\nblock_bytes = 65536\n",
    )
    .expect("cfg");
    let out = dir.path().join("out");
    let status = phiwatch()
        .args(["replay", "--quiet", "--threads", "2", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .arg(&input)
        .status()
        .expect("run phiwatch");
    assert!(status.success());
    let dl = dead_letters(&out);
    let lines: Vec<u64> = dl.iter().map(|d| d.0).collect();
    assert_eq!(lines, vec![1, 2, 3, 4, 5, 7], "{dl:?}");
    assert_eq!(dl[3].2, 3 * 1024 * 1024, "length of the skipped line");
}

#[test]
fn a_missing_input_is_an_error_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = phiwatch()
        .args(["replay", "--quiet", "--out"])
        .arg(dir.path().join("out"))
        .arg(dir.path().join("nope.log"))
        .output()
        .expect("run phiwatch");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nope.log"), "{err}");
}

#[test]
fn a_corrupt_gzip_becomes_a_dead_letter_not_a_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("broken.log.gz");
    let mut bytes = vec![0x1f, 0x8b, 0x08, 0x00];
    bytes.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02]);
    std::fs::write(&input, bytes).expect("write");
    let out = dir.path().join("out");
    let status = phiwatch()
        .args(["replay", "--quiet", "--out"])
        .arg(&out)
        .arg(&input)
        .status()
        .expect("run phiwatch");
    assert!(status.success());
    let dl = dead_letters(&out);
    assert_eq!(dl.len(), 1, "{dl:?}");
    assert!(dl[0].1.contains("unreadable"), "{}", dl[0].1);
}

#[test]
fn dead_letter_columns_match_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("bad.log");
    std::fs::write(&input, b"\xff\xff\n").expect("write");
    let out = dir.path().join("out");
    assert!(
        phiwatch()
            .args(["replay", "--quiet", "--out"])
            .arg(&out)
            .arg(&input)
            .status()
            .expect("run")
            .success()
    );
    let batches = common::read_batches(&out.join("dead_letter"));
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "source",
            "source_line",
            "kafka_partition",
            "kafka_offset",
            "length",
            "reason",
            "preview"
        ]
    );
    let src = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8");
    assert_eq!(src.value(0), input.display().to_string());
    assert!(batches[0].column(2).is_null(0));
    let m = std::fs::read_to_string(out.join("manifest.jsonl")).expect("manifest");
    assert_eq!(m.lines().count(), 1);
    assert_eq!(
        phiwatch::sink::manifest::verify(&out).expect("manifest verifies"),
        1
    );
}
