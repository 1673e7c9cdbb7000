//! Golden tests: every fixture line decodes (forced and auto-detected) to the
//! reviewed events in `fixtures/<format>/<name>.expected.jsonl`, and the mixed
//! file auto-detects the format named for each line in `mixed.formats`.

use phiwatch::decode::{FileState, Format, Mode, decode_record};
use phiwatch::event::Event;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Numbers compared by value, so `42` and `42.0` are equal.
fn normalize(v: Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Number(n), Value::Number),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalize(v))).collect()),
        other => other,
    }
}

fn to_value(ev: &Event) -> Value {
    normalize(serde_json::to_value(ev).expect("event serializes"))
}

/// (fixture, expected) pairs of one format folder.
fn fixture_files(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut pairs = Vec::new();
    for entry in fs::read_dir(dir).expect("fixture dir readable") {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(stem) = name.strip_suffix(".log") {
            let expected = dir.join(format!("{stem}.expected.jsonl"));
            assert!(expected.exists(), "{} has no golden file", path.display());
            pairs.push((path, expected));
        }
    }
    pairs.sort();
    pairs
}

#[test]
fn every_format_has_a_fixture() {
    for format in Format::ALL {
        if format == Format::Text {
            continue;
        }
        let dir = fixtures().join(format.name());
        assert!(
            !fixture_files(&dir).is_empty(),
            "no fixture for {format} in {}",
            dir.display()
        );
    }
}

#[test]
fn fixtures_decode_to_golden_events() {
    let mut checked = 0;
    for format in Format::ALL {
        if format == Format::Text {
            continue;
        }
        for (fixture, expected) in fixture_files(&fixtures().join(format.name())) {
            let text = fs::read_to_string(&fixture).expect("fixture readable");
            let golden: Vec<Value> = fs::read_to_string(&expected)
                .expect("golden readable")
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| normalize(serde_json::from_str(l).expect("golden line is json")))
                .collect();
            let mut forced_state = FileState::default();
            let mut auto_state = FileState::default();
            let mut got: Vec<(usize, Value)> = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let n = i + 1;
                let mut forced = Vec::new();
                let f = decode_record(
                    line.as_bytes(),
                    Mode::Forced(format),
                    &mut forced_state,
                    &mut forced,
                )
                .unwrap_or_else(|e| panic!("{}:{n}: forced {format}: {e}", fixture.display()));
                assert_eq!(f, format, "{}:{n}", fixture.display());
                let mut auto = Vec::new();
                let detected =
                    decode_record(line.as_bytes(), Mode::Auto, &mut auto_state, &mut auto)
                        .unwrap_or_else(|e| panic!("{}:{n}: auto: {e}", fixture.display()));
                if !forced.is_empty() {
                    assert_eq!(
                        detected,
                        format,
                        "{}:{n}: auto-detected format",
                        fixture.display()
                    );
                }
                assert_eq!(
                    forced,
                    auto,
                    "{}:{n}: auto and forced differ",
                    fixture.display()
                );
                got.extend(forced.iter().map(|e| (n, to_value(e))));
            }
            for (k, want) in golden.iter().enumerate() {
                let Some((n, have)) = got.get(k) else {
                    panic!(
                        "{}: only {} events, golden has {}",
                        fixture.display(),
                        got.len(),
                        golden.len()
                    );
                };
                assert_eq!(
                    have,
                    want,
                    "{}:{n}: event {} differs from golden line {}\nhave: {have}\nwant: {want}",
                    fixture.display(),
                    k + 1,
                    k + 1
                );
            }
            assert_eq!(
                got.len(),
                golden.len(),
                "{}: event count",
                fixture.display()
            );
            checked += got.len();
        }
    }
    assert!(checked > 50, "only {checked} golden events checked");
}

#[test]
fn mixed_file_detects_each_line() {
    let dir = fixtures().join("mixed");
    let text = fs::read_to_string(dir.join("mixed.log")).expect("mixed.log");
    let formats = fs::read_to_string(dir.join("mixed.formats")).expect("mixed.formats");
    let lines: Vec<&str> = text.lines().collect();
    let want: Vec<&str> = formats.lines().collect();
    assert_eq!(lines.len(), want.len(), "one expected format per line");
    let mut state = FileState::default();
    for (i, (line, want)) in lines.iter().zip(&want).enumerate() {
        let n = i + 1;
        let mut out = Vec::new();
        let got = decode_record(line.as_bytes(), Mode::Auto, &mut state, &mut out);
        match *want {
            "error" => assert!(got.is_err(), "line {n}: expected a dead letter"),
            "none" => {
                assert!(got.is_ok(), "line {n}: {got:?}");
                assert!(out.is_empty(), "line {n}: expected no event");
            }
            name => {
                let got = got.unwrap_or_else(|e| panic!("line {n}: {e}"));
                assert_eq!(got.name(), name, "line {n}");
                assert!(!out.is_empty(), "line {n}: no event");
            }
        }
    }
}

#[test]
fn text_fallback_scans_what_auto_rejects() {
    let text = fs::read_to_string(fixtures().join("mixed/mixed.log")).expect("mixed.log");
    let mut auto_state = FileState::default();
    let mut fb_state = FileState::default();
    for line in text.lines() {
        let mut auto = Vec::new();
        let mut fallback = Vec::new();
        let a = decode_record(line.as_bytes(), Mode::Auto, &mut auto_state, &mut auto);
        let f = decode_record(
            line.as_bytes(),
            Mode::AutoTextFallback,
            &mut fb_state,
            &mut fallback,
        )
        .expect("fallback never fails on utf-8");
        match a {
            Ok(format) => {
                assert_eq!(f, format);
                assert_eq!(auto, fallback);
            }
            Err(_) => {
                assert_eq!(f, Format::Text);
                assert_eq!(fallback, vec![phiwatch::decode::text_event(line.trim())]);
            }
        }
    }
}
