//! The fixture incident (fixtures/incident: a leaked Kong key reading patients)
//! through exposure counting and the report. The expected numbers are the ones
//! fixtures/incident/generate.py constructs, not what the code printed.
//!
//! The lines are mapped to events by a minimal Kong file-log reader here, so this
//! test does not depend on the decoders; the replay end-to-end test lives with them.

mod exposure_common;

use exposure_common::{key, write_exposure};
use phiwatch::event::{Event, Provenance};
use phiwatch::exposure::{Accumulator, ExposureConfig};
use phiwatch::report::{self, OutputFormat, ReportOptions, parse_date};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn incident() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/incident")
}

fn kong_event(v: &Value) -> Event<'static> {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(String::from);
    let uri = s("/request/uri").unwrap_or_default();
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (uri.clone(), None),
    };
    let headers = v
        .pointer("/request/headers")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    v.as_str()
                        .map(|v| (k.to_ascii_lowercase().into(), v.to_string().into()))
                })
                .collect()
        })
        .unwrap_or_default();
    Event {
        time: v
            .get("started_at")
            .and_then(Value::as_i64)
            .map(|ms| ms * 1000),
        client_ip: s("/client_ip").map(Into::into),
        method: s("/request/method").map(Into::into),
        path: Some(path.into()),
        query: query.map(Into::into),
        status: v
            .pointer("/response/status")
            .and_then(Value::as_u64)
            .map(|x| x as u16),
        bytes_out: v.pointer("/response/size").and_then(Value::as_u64),
        principal: s("/consumer/username").map(Into::into),
        headers,
        ..Event::default()
    }
}

fn replay_into(out: &Path) {
    let k = key();
    let text = std::fs::read_to_string(incident().join("kong.log")).expect("kong.log");
    let source: Arc<str> = Arc::from("fixtures/incident/kong.log");
    let mut acc = Accumulator::new(&ExposureConfig::default());
    for (i, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).expect("kong json");
        acc.observe(
            &kong_event(&v),
            &Provenance::file_line(source.clone(), i as u64 + 1),
            &k,
        );
    }
    write_exposure(out, "kong", &acc, &k);
}

fn options(ips: &[&str]) -> ReportOptions {
    ReportOptions {
        client_ips: ips.iter().map(|s| s.to_string()).collect(),
        patient_directory: Some(incident().join("patients.csv")),
        discovered: Some(parse_date("2024-03-15").expect("date")),
        ..ReportOptions::default()
    }
}

#[test]
fn attacker_scope_gives_the_constructed_counts_and_obligations() {
    let k = key();
    let dir = tempfile::tempdir().expect("tmp");
    replay_into(dir.path());
    let r = report::build(dir.path(), &options(&["203.0.113.45"]), &k).expect("report");
    assert_eq!(r.distinct_patients.value, 612);
    assert!(r.distinct_patients.exact);
    // 300 single reads + 10 _id searches + 12 $everything + 40 Observation reads
    assert_eq!(r.requests, 362);
    // 300 Patient reads + 12 Patient/<id>/$everything + 40 Observation reads
    assert_eq!(r.distinct_records.value, 352);
    assert_eq!(r.by_state.get("CA").map(|e| e.value), Some(540));
    assert_eq!(r.by_state.get("TX").map(|e| e.value), Some(72));
    assert!(!r.by_state.contains_key("NY"));
    assert_eq!(r.notification.hhs_path, "within_60_days");
    assert_eq!(r.notification.hhs.deadline.as_deref(), Some("2024-05-14"));
    assert_eq!(
        r.notification.individuals.deadline.as_deref(),
        Some("2024-05-14")
    );
    let media: Vec<&str> = r
        .notification
        .media
        .iter()
        .filter_map(|m| m.state.as_deref())
        .collect();
    assert_eq!(media, vec!["CA"]);
    assert_eq!(r.first_seen.as_deref(), Some("2024-03-02T01:00:00Z"));
    assert_eq!(r.containment.block_ips, vec!["203.0.113.45".to_string()]);
    let rotate: Vec<&str> = r
        .containment
        .rotate
        .iter()
        .map(|c| c.principal.as_str())
        .collect();
    assert_eq!(rotate, vec!["partner-analytics"]);
    assert_eq!(
        r.resource_types,
        vec!["Observation".to_string(), "Patient".to_string()]
    );
}

#[test]
fn partner_scope_and_whole_incident() {
    let k = key();
    let dir = tempfile::tempdir().expect("tmp");
    replay_into(dir.path());
    let partner = report::build(dir.path(), &options(&["198.51.100.7"]), &k).expect("partner");
    assert_eq!(partner.distinct_patients.value, 30);
    assert_eq!(partner.requests, 30);
    assert_eq!(partner.notification.hhs_path, "annual_log");
    assert_eq!(
        partner.notification.hhs.deadline.as_deref(),
        Some("2025-03-01")
    );
    assert!(partner.notification.media.is_empty());
    let all = report::build(dir.path(), &options(&[]), &k).expect("all");
    assert_eq!(all.distinct_patients.value, 620);
    assert_eq!(all.by_state.get("TX").map(|e| e.value), Some(80));
    assert_eq!(all.by_state.get("CA").map(|e| e.value), Some(540));
}

#[test]
fn incident_renders_in_every_format() {
    let k = key();
    let dir = tempfile::tempdir().expect("tmp");
    replay_into(dir.path());
    let mut o = options(&["203.0.113.45"]);
    for (format, must) in [
        (
            OutputFormat::Md,
            vec![
                "REQUIRED, due 2024-05-14 (45 CFR 164.408(b))",
                "**Media, CA**",
                "deny 203.0.113.45;",
            ],
        ),
        (
            OutputFormat::Html,
            vec!["<svg", "Media, CA", "45 CFR 164.406"],
        ),
        (
            OutputFormat::Json,
            vec![
                "\"hhs_path\": \"within_60_days\"",
                "\"IPAddressVersion\": \"IPV4\"",
                "203.0.113.45/32",
            ],
        ),
    ] {
        o.format = format;
        let text = report::run(dir.path(), &o, &k).expect("render");
        for m in must {
            assert!(text.contains(m), "{format:?} lacks {m}");
        }
        // No raw patient ids or the leaked key in any output.
        assert!(!text.contains("pt-00"), "{format:?} leaks a patient id");
        assert!(
            !text.contains("synthetic-partner-key"),
            "{format:?} leaks the key"
        );
    }
}
