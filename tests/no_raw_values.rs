//! No raw value planted in a fixture ever shows up in an output: the JSON lines of
//! `scan`, the findings' Debug text, the detector's Debug text, or a `rules check`
//! failure report.

use phiwatch::decode::{self, FileState, Mode};
use phiwatch::detect::{Detector, check_rules, scan_lines};
use phiwatch::event::{Event, Provenance};
use phiwatch::redact::Key;
use std::sync::Arc;

/// (line, planted raw values). Every value is synthetic.
const PLANTED: &[(&str, &[&str])] = &[
    (
        r#"10.0.0.1 - - [15/Jan/2024:10:22:31 +0000] "GET /members/123-45-6789/claims?ssn=234-56-7890 HTTP/1.1" 200 512 "-" "curl/8""#,
        &["123-45-6789", "234-56-7890"],
    ),
    (
        "GET /fhir/Patient?identifier=http%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Fus-ssn%7C345678901&email=jane.roe%40example.org HTTP/1.1",
        &[
            "345678901",
            "jane.roe@example.org",
            "jane.roe%40example.org",
        ],
    ),
    (
        r#"{"request":{"uri":"/fhir/Patient?family=Okafor&given=Priya&birthdate=1975-06-15","headers":{"authorization":"Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdmMtYmlsbGluZyJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"}}}"#,
        &[
            "Okafor",
            "Priya",
            "1975-06-15",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdmMtYmlsbGluZyJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ],
    ),
    (
        "GET /providers?npi=1245319599&dea=AB1234563&mbi=1EG4TE5MK73&card=4111111111111111&phone=%28415%29%20555-2671 HTTP/1.1",
        &[
            "1245319599",
            "AB1234563",
            "1EG4TE5MK73",
            "4111111111111111",
            "(415) 555-2671",
            "4155552671",
        ],
    ),
    (
        "upload key AKIAQ3EGRBKT5MZ7XW2L password=Winter2024x api_key=Zx81hQ2mLp0rT7vWc4Yd",
        &[
            "AKIAQ3EGRBKT5MZ7XW2L",
            "Winter2024x",
            "Zx81hQ2mLp0rT7vWc4Yd",
        ],
    ),
    (
        r#"{"body":"MSH|^~\\&|ADT|H|L|H|2024||ADT^A01|1|P|2.5\rPID|1||4455667^^^HOSP^MR||DOE^JANE","mrn":"MR-4477120"}"#,
        &["4455667", "MR-4477120"],
    ),
];

fn forms(v: &str) -> Vec<String> {
    let mut out = vec![v.to_string()];
    let undashed: String = v.chars().filter(|c| *c != '-').collect();
    if undashed != v {
        out.push(undashed);
    }
    out
}

fn assert_clean(text: &str, what: &str) {
    for (_, values) in PLANTED {
        for v in *values {
            for f in forms(v) {
                assert!(
                    !text.contains(&f),
                    "{what} leaks a planted value (length {})",
                    f.len()
                );
            }
        }
    }
}

fn detector() -> Detector {
    Detector::load(Key::from_bytes(b"no raw values key"), None).expect("rules")
}

#[test]
fn scan_output_has_no_raw_values() {
    let input: String = PLANTED.iter().map(|(l, _)| format!("{l}\n")).collect();
    let mut out = Vec::new();
    let stats = scan_lines(input.as_bytes(), &mut out, &detector()).expect("scan");
    assert_eq!(stats.lines, PLANTED.len() as u64);
    let text = String::from_utf8(out).expect("utf-8");
    assert!(
        stats.findings >= 20,
        "expected findings for every planted value: {}",
        stats.findings
    );
    assert_eq!(text.lines().count() as u64, stats.findings);
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).expect("json line");
        assert_eq!(v["source"], "-");
        assert!(v["source_line"].as_u64().is_some_and(|n| n >= 1));
    }
    assert_clean(&text, "scan output");
}

#[test]
fn findings_debug_has_no_raw_values() {
    let d = detector();
    let mut all = Vec::new();
    for (i, (line, _)) in PLANTED.iter().enumerate() {
        let mut events = Vec::new();
        let format = decode::decode_record(
            line.as_bytes(),
            Mode::AutoTextFallback,
            &mut FileState::default(),
            &mut events,
        )
        .expect("decodes");
        for ev in &events {
            d.scan(
                ev,
                &Provenance::file_line(Arc::from("f"), i as u64 + 1),
                format,
                &mut all,
            );
        }
    }
    assert!(!all.is_empty());
    assert_clean(&format!("{all:?}"), "findings Debug");
    assert_clean(&format!("{d:?}"), "detector Debug");
    let path_ev = Event {
        path: Some("/members/123-45-6789".into()),
        ..Event::default()
    };
    let mut out = Vec::new();
    d.scan(
        &path_ev,
        &Provenance::file_line(Arc::from("f"), 1),
        decode::Format::GenericJson,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_clean(&format!("{out:?}"), "masked url_path");
}

#[test]
fn check_report_names_examples_by_number_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rule = "rules:\n  - id: leaky\n    name: t\n    description: t\n    category: phi\n    kind: us_ssn\n    severity: low\n    confidence: 0.5\n    keywords: [zz]\n    pattern: '(zz[0-9]{3})'\n    examples: ['zz nothing 123-45-6789']\n    negative_examples: ['zz 234-56-7890']\n";
    std::fs::write(dir.path().join("leaky.yaml"), rule).expect("write");
    let report = check_rules(Some(dir.path())).expect("parses");
    assert!(!report.ok());
    assert_clean(&report.to_string(), "rules check report");
    assert_clean(&format!("{report:?}"), "rules check report Debug");
}
