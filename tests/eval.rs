//! Precision and recall per kind on the labeled evaluation set
//! (`fixtures/eval/labeled.jsonl`, built by `fixtures/eval/generate.py`).
//!
//! Each line goes through the full path (`decode_record` with text fallback, then
//! the detector). A line counts once per kind: found or not. Misconfiguration kinds
//! are derived from these and depend on the decoder knowing the method, so they are
//! covered by `rules check` examples instead.

use phiwatch::decode::{self, FileState, Mode};
use phiwatch::detect::Detector;
use phiwatch::event::Provenance;
use phiwatch::finding::Category;
use phiwatch::redact::Key;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(serde::Deserialize)]
struct Row {
    line: String,
    expected: Vec<String>,
}

#[derive(Default, Debug)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
}

fn found_kinds(detector: &Detector, line: &str, n: u64) -> BTreeSet<String> {
    let mut events = Vec::new();
    let mut state = FileState::default();
    let format = decode::decode_record(
        line.as_bytes(),
        Mode::AutoTextFallback,
        &mut state,
        &mut events,
    )
    .expect("every eval line decodes");
    let mut out = Vec::new();
    for ev in &events {
        detector.scan(
            ev,
            &Provenance::file_line(Arc::from("eval"), n),
            format,
            &mut out,
        );
    }
    out.iter()
        .filter(|f| matches!(f.category, Category::Phi | Category::Credential))
        .map(|f| f.kind.to_string())
        .collect()
}

#[test]
fn precision_and_recall_per_kind() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/eval/labeled.jsonl");
    let text = std::fs::read_to_string(path).expect("eval set");
    let detector = Detector::load(Key::from_bytes(b"eval key 0123456789"), None).expect("rules");
    let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
    let mut misses = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let row: Row = serde_json::from_str(l).expect("jsonl row");
        let expected: BTreeSet<String> = row.expected.into_iter().collect();
        let found = found_kinds(&detector, &row.line, i as u64 + 1);
        for k in expected.union(&found) {
            let c = counts.entry(k.clone()).or_default();
            match (expected.contains(k), found.contains(k)) {
                (true, true) => c.tp += 1,
                (false, true) => {
                    c.fp += 1;
                    misses.push(format!("line {}: unexpected {k}", i + 1));
                }
                (true, false) => {
                    c.fn_ += 1;
                    misses.push(format!("line {}: missed {k}", i + 1));
                }
                (false, false) => {}
            }
        }
    }
    let mut table = String::from("kind            tp   fp   fn  precision recall\n");
    let mut bad = Vec::new();
    for (k, c) in &counts {
        let p = f64::from(c.tp) / f64::from((c.tp + c.fp).max(1));
        let r = f64::from(c.tp) / f64::from((c.tp + c.fn_).max(1));
        table.push_str(&format!(
            "{k:<14} {:>4} {:>4} {:>4}  {p:>8.3} {r:>6.3}\n",
            c.tp, c.fp, c.fn_
        ));
        if p < 0.95 || r < 0.95 {
            bad.push(k.clone());
        }
    }
    println!("{table}");
    assert!(
        bad.is_empty(),
        "below 0.95: {bad:?}\n{table}\n{}",
        misses.join("\n")
    );
    let required = [
        "us_ssn",
        "us_mbi",
        "us_npi",
        "us_dea",
        "mrn",
        "dob",
        "email",
        "phone",
        "credit_card",
        "icd10",
        "ndc",
        "patient_ref",
        "person_name",
        "street_address",
        "hl7_pid",
        "jwt",
        "bearer_token",
        "basic_auth",
        "api_key",
        "private_key",
        "password",
    ];
    for k in required {
        let tp = counts.get(k).map_or(0, |c| c.tp);
        assert!(tp >= 5, "too few positives for {k}: {tp}");
    }
}
