//! Property tests: no input makes a decoder panic, a failed record leaves the
//! output untouched, and an error message never repeats the record.

use phiwatch::decode::{Error, FileState, Format, Mode, decode_record};
use proptest::prelude::*;
use std::fs;
use std::path::Path;
use std::sync::LazyLock;

/// Every mode a caller can pass.
fn modes() -> Vec<Mode> {
    let mut m: Vec<Mode> = Format::ALL.iter().map(|f| Mode::Forced(*f)).collect();
    m.push(Mode::Auto);
    m.push(Mode::AutoTextFallback);
    m
}

/// Every line of every fixture file, as seeds for mutation.
static FIXTURE_LINES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut lines = Vec::new();
    for dir in fs::read_dir(&root).expect("fixtures dir") {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        for file in fs::read_dir(&dir).expect("format dir") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|e| e == "log") {
                let text = fs::read(&file).expect("fixture readable");
                lines.extend(text.split(|b| *b == b'\n').map(<[u8]>::to_vec));
            }
        }
    }
    lines.retain(|l| !l.is_empty());
    lines
});

/// Decode with every mode, twice (fresh state, and state after a VPC header);
/// check the invariants.
fn check(record: &[u8]) {
    let vpc = FileState::with_vpc_fields("version srcaddr dstaddr action log-status")
        .expect("valid field order");
    for mode in modes() {
        for mut state in [FileState::default(), vpc.clone()] {
            let mut out = Vec::new();
            match decode_record(record, mode, &mut state, &mut out) {
                Ok(_) => {}
                Err(e) => {
                    assert!(out.is_empty(), "{mode:?}: events left behind on error");
                    assert_reason_is_clean(&e, record);
                    if mode == Mode::AutoTextFallback {
                        assert!(matches!(e, Error::InvalidUtf8(_)), "fallback failed: {e}");
                    }
                }
            }
        }
    }
}

fn assert_reason_is_clean(e: &Error, record: &[u8]) {
    let reason = e.to_string();
    let Ok(text) = std::str::from_utf8(record) else {
        return;
    };
    let text = text.trim();
    if text.len() >= 12 {
        assert!(
            !reason.contains(text),
            "reason repeats the record: {reason}"
        );
    }
}

/// Apply byte edits (position, kind, byte) to a seed line.
fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for &(pos, kind, byte) in edits {
        if v.is_empty() {
            v.push(byte);
            continue;
        }
        let i = pos % v.len();
        match kind % 4 {
            0 => v[i] = byte,
            1 => v.insert(i, byte),
            2 => {
                v.remove(i);
            }
            _ => v.truncate(i),
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(record in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&record);
    }

    #[test]
    fn arbitrary_strings_never_panic(record in "\\PC{0,400}") {
        check(record.as_bytes());
    }

    #[test]
    fn shaped_strings_never_panic(
        record in "(ACCESS )?[\\[{\"]{0,3}[0-9a-zA-Z:./ \\-\"\\[\\]{},]{0,200}"
    ) {
        check(record.as_bytes());
    }

    #[test]
    fn mutated_fixture_lines_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
    ) {
        let seed = pick.get(&FIXTURE_LINES);
        check(&mutate(seed, &edits));
    }
}

#[test]
fn hostile_records() {
    let deep_array = "[".repeat(5000);
    let deep_object = "{\"a\":".repeat(5000);
    let deep_kong = format!("[{{\"request\":{}", "[".repeat(5000));
    let big = format!("{{\"message\":\"{}\"}}", "x".repeat(3 << 20));
    let cases: Vec<Vec<u8>> = vec![
        deep_array.into_bytes(),
        deep_object.into_bytes(),
        deep_kong.into_bytes(),
        big.into_bytes(),
        b"\xff\xfe\x00garbage".to_vec(),
        b"{\"a\":\"\xc3\x28\"}".to_vec(),
        b"\0\0\0\0".to_vec(),
        b"{\"ts\":1e400,\"uid\":\"C\",\"id.orig_h\":\"x\",\"method\":\"GET\"}".to_vec(),
        b"{\"Datetime\":-99999999999999999999,\"RayID\":\"r\"}".to_vec(),
        b"{\"started_at\":18446744073709551615,\"request\":{},\"response\":{}}".to_vec(),
        b"[9999-99-99T99:99:99Z] \"GET / HTTP/1.1\" 200 - 1 2 3".to_vec(),
        b"9999999999999999999.999 1 a B/1 1 GET /".to_vec(),
    ];
    for case in &cases {
        check(case);
    }
    for deep in [
        "{\"a\":".repeat(5000),
        format!("[{{\"a\":{}", "[".repeat(5000)),
    ] {
        let mut out = Vec::new();
        let err = decode_record(
            deep.as_bytes(),
            Mode::Auto,
            &mut FileState::default(),
            &mut out,
        )
        .expect_err("5000-deep nesting is a dead letter");
        assert!(err.to_string().contains("recursion limit"), "{err}");
    }
}

#[test]
fn empty_and_comment_lines_carry_no_event() {
    for mode in modes() {
        for line in ["", "   ", "\r\n", "# a comment", "#fields\tts\tuid"] {
            let mut out = Vec::new();
            let r = decode_record(line.as_bytes(), mode, &mut FileState::default(), &mut out);
            if mode == Mode::Forced(Format::Text) && line.starts_with('#') {
                assert_eq!(out.len(), 1, "text mode scans every line");
            } else {
                assert!(r.is_ok(), "{mode:?} {line:?}: {r:?}");
                assert!(out.is_empty(), "{mode:?} {line:?}");
            }
        }
    }
}
