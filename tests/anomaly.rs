//! Anomaly rules: scripted sequences, event-time reordering, bounded state.

use phiwatch::anomaly::{Access, AnomalyConfig, Detector, check_sequences, rule, run_sequence};
use phiwatch::decode::Format;
use phiwatch::decode::{self, FileState, Mode};
use phiwatch::event::{Event, Provenance};
use phiwatch::finding::{Category, Finding};
use phiwatch::redact::Key;
use proptest::prelude::*;
use std::sync::Arc;

fn key() -> Key {
    Key::from_bytes(b"anomaly test key 0123456789")
}

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/anomaly/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).expect("fixture")
}

fn run(name: &str) -> Vec<Finding> {
    let rules = rule::builtin().expect("rules");
    run_sequence(
        &fixture(name),
        name,
        &rules,
        &AnomalyConfig::default(),
        &key(),
    )
    .expect("sequence runs")
}

#[test]
fn every_rule_passes_its_sequences() {
    let report = check_sequences().expect("check runs");
    assert!(report.ok(), "{report}");
    assert!(report.rules >= 10, "{report}");
    assert!(report.examples >= report.rules, "{report}");
}

/// Each scripted episode fires exactly once, with the expected rule and kind.
#[test]
fn scripted_episodes_fire_once() {
    let table = [
        (
            "enumeration_walk.jsonl",
            "enumeration.sequential_ids",
            "enumeration",
        ),
        (
            "patients_crawl.jsonl",
            "distinct_patients.principal",
            "distinct_patients",
        ),
        (
            "auth_burst.jsonl",
            "auth_failure_burst.client_ip",
            "auth_failure_burst",
        ),
        (
            "auth_spray.jsonl",
            "auth_failure_burst.client_ip",
            "auth_failure_burst",
        ),
        (
            "auth_principal.jsonl",
            "auth_failure_burst.principal",
            "auth_failure_burst",
        ),
        ("exfil_phi.log", "exfiltration.phi_egress", "exfiltration"),
        (
            "exfil_upload.jsonl",
            "exfiltration.new_destination",
            "exfiltration",
        ),
        (
            "first_seen_network.jsonl",
            "first_seen.network",
            "first_seen",
        ),
        (
            "first_seen_service.jsonl",
            "first_seen.service_host",
            "first_seen",
        ),
        (
            "volume_spike.jsonl",
            "volume_spike.principal",
            "volume_spike",
        ),
        (
            "credential_live.jsonl",
            "credential_live.leaked_then_used",
            "credential_live",
        ),
    ];
    for (file, rule_id, kind) in table {
        let found = run(file);
        let mine: Vec<&Finding> = found.iter().filter(|f| &*f.rule_id == rule_id).collect();
        assert_eq!(mine.len(), 1, "{file}: {found:#?}");
        let f = mine[0];
        assert_eq!(&*f.kind, kind, "{file}");
        assert_eq!(f.category, Category::Anomaly);
        assert_eq!(f.ocsf_class_uid(), 2004);
        assert_eq!(f.value_hmac.len(), 64, "{file}");
        assert!(
            f.detail.as_deref().is_some_and(|d| d.starts_with('{')),
            "{file}"
        );
        assert!(f.principal.is_some() || f.client_ip.is_some(), "{file}");
    }
}

#[test]
fn normal_traffic_raises_nothing() {
    let found = run("normal_traffic.jsonl");
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn enumeration_detail_has_counts_and_masked_ids_only() {
    let found = run("enumeration_walk.jsonl");
    let f = found
        .iter()
        .find(|f| &*f.kind == "enumeration")
        .expect("enumeration finding");
    let d: serde_json::Value =
        serde_json::from_str(f.detail.as_deref().unwrap_or("{}")).expect("detail is JSON");
    assert_eq!(d["route"], "/fhir/Patient/{id}");
    assert!(d["distinct_objects"].as_u64() >= Some(20));
    assert!(d["status_404"].as_u64() >= Some(1));
    let text = f.detail.as_deref().unwrap_or("");
    assert!(!text.contains("10023"), "raw ids in detail: {text}");
    assert_eq!(f.principal.as_deref(), Some("svc-export"));
    assert_eq!(f.url_path.as_deref(), Some("/fhir/Patient/{id}"));
}

#[test]
fn credential_live_joins_the_leak_finding() {
    let found = run("credential_live.jsonl");
    let f = found
        .iter()
        .find(|f| &*f.kind == "credential_live")
        .expect("credential_live finding");
    // The same HMAC the pattern detector gives the leaked JWT.
    let pattern = phiwatch::detect::Detector::load(key(), None).expect("pattern rules");
    let ev = Event {
        query: Some(format!(
            "access_token={}",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzdmMtYmlsbGluZyJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        )
        .into()),
        path: Some("/x".into()),
        ..Event::default()
    };
    let mut leak = Vec::new();
    pattern.scan(
        &ev,
        &Provenance::file_line(Arc::from("t"), 1),
        Format::GenericJson,
        &mut leak,
    );
    assert!(
        leak.iter().any(|l| l.value_hmac == f.value_hmac),
        "{leak:#?}"
    );
    assert_eq!(f.client_ip.as_deref(), Some("203.0.113.90"));
}

/// Every near miss is one step from firing: moving its threshold by that step
/// makes the rule fire, so the negative sequences test the boundary itself.
#[test]
fn near_misses_are_one_step_from_firing() {
    let table: &[(&str, &str, &str, u64)] = &[
        (
            "enumeration_short.jsonl",
            "enumeration.sequential_ids",
            "min_distinct",
            19,
        ),
        (
            "enumeration_slow.jsonl",
            "enumeration.sequential_ids",
            "window_ms",
            380_000,
        ),
        (
            "patients_short.jsonl",
            "distinct_patients.principal",
            "min_patients",
            49,
        ),
        (
            "patients_slow.jsonl",
            "distinct_patients.principal",
            "window_ms",
            7_080_000,
        ),
        (
            "auth_burst_short.jsonl",
            "auth_failure_burst.client_ip",
            "min_failures",
            19,
        ),
        (
            "auth_burst_slow.jsonl",
            "auth_failure_burst.client_ip",
            "window_ms",
            228_000,
        ),
        (
            "auth_spray_short.jsonl",
            "auth_failure_burst.client_ip",
            "min_distinct_credentials",
            4,
        ),
        (
            "auth_principal_short.jsonl",
            "auth_failure_burst.principal",
            "min_failures",
            29,
        ),
        (
            "exfil_upload_small.jsonl",
            "exfiltration.new_destination",
            "min_bytes_in",
            9_900_000,
        ),
        (
            "first_seen_learning.jsonl",
            "first_seen.network",
            "learning_ms",
            36_000_000,
        ),
        (
            "volume_near.jsonl",
            "volume_spike.principal",
            "min_requests",
            199,
        ),
    ];
    for &(file, id, param, value) in table {
        let mut rules = rule::builtin().expect("rules");
        let r = rules.iter_mut().find(|r| r.id == id).expect("rule");
        r.params
            .as_mapping_mut()
            .expect("params map")
            .insert(param.into(), value.into());
        let count = |rules: &[phiwatch::anomaly::AnomalyRule]| {
            run_sequence(
                &fixture(file),
                file,
                rules,
                &AnomalyConfig::default(),
                &key(),
            )
            .expect("runs")
            .iter()
            .filter(|f| &*f.rule_id == id)
            .count()
        };
        assert_eq!(count(&rules), 1, "{file} with {param} = {value}");
        assert_eq!(
            count(&rule::builtin().expect("rules")),
            0,
            "{file} as shipped"
        );
    }
}

/// Accesses of several scripted sequences, interleaved in time (all start at the
/// same instant), each keeping its own file provenance.
fn mixed_accesses() -> &'static [Access] {
    static CELL: std::sync::OnceLock<Vec<Access>> = std::sync::OnceLock::new();
    CELL.get_or_init(|| {
        let key = key();
        let pattern = phiwatch::detect::Detector::load(key.clone(), None).expect("pattern");
        let mut all = Vec::new();
        for name in [
            "enumeration_walk.jsonl",
            "auth_burst.jsonl",
            "auth_spray.jsonl",
            "patients_crawl.jsonl",
            "credential_live.jsonl",
            "exfil_phi.log",
        ] {
            let src: Arc<str> = Arc::from(name);
            let mut state = FileState::default();
            for (n, line) in fixture(name).lines().enumerate() {
                if line.starts_with('#') {
                    continue;
                }
                let mut events = Vec::new();
                let format =
                    decode::decode_record(line.as_bytes(), Mode::Auto, &mut state, &mut events)
                        .expect("fixture decodes");
                for ev in &events {
                    let prov = Provenance::file_line(src.clone(), n as u64 + 1);
                    let mut found = Vec::new();
                    pattern.scan(ev, &prov, format, &mut found);
                    all.push(Access::from_event(ev, &prov, format, &found, &key));
                }
            }
        }
        all.sort_by_key(|a| a.time);
        all
    })
}

fn detect_all(
    accesses: impl IntoIterator<Item = Access>,
    cfg: &AnomalyConfig,
) -> (Vec<Finding>, u64) {
    let rules = rule::builtin().expect("rules");
    let mut det = Detector::new(&rules, cfg, &key()).expect("detector");
    let mut out = Vec::new();
    for a in accesses {
        det.observe(a, &mut out);
    }
    det.finish(&mut out);
    (out, det.late())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any arrival order in which no access is later than the tolerance gives
    /// the same findings, in the same order, as time order.
    #[test]
    fn shuffling_within_tolerance_changes_nothing(seed in any::<u64>()) {
        let cfg = AnomalyConfig::default();
        let tol = cfg.tolerance_ms as i64 * 1000;
        let accesses = mixed_accesses();
        let (want, _) = detect_all(accesses.iter().cloned(), &cfg);
        prop_assert!(want.len() >= 6);
        // Arrival key = time + a pseudo-random delay in [0, tolerance).
        let mut x = seed | 1;
        let mut keyed: Vec<(i64, Access)> = accesses
            .iter()
            .map(|a| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (a.time.unwrap_or(0) + (x % tol as u64) as i64, a.clone())
            })
            .collect();
        keyed.sort_by_key(|(k, _)| *k);
        let (got, late) = detect_all(keyed.into_iter().map(|(_, a)| a), &cfg);
        prop_assert_eq!(late, 0);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn shuffle_check_can_fail_beyond_tolerance() {
    // Reversing the whole stream puts accesses far past the tolerance: they are
    // counted as late, and the result differs.
    let cfg = AnomalyConfig::default();
    let accesses = mixed_accesses();
    let (want, _) = detect_all(accesses.iter().cloned(), &cfg);
    let (got, late) = detect_all(accesses.iter().rev().cloned(), &cfg);
    assert!(late > 0);
    assert_ne!(got, want);
}

fn synthetic(i: u64, time: i64) -> Access {
    Access {
        time: Some(time),
        principal: Some(format!("user-{i}").into()),
        client_ip: Some(format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255).into()),
        dest_host: Some("api.example.org".into()),
        method: Some("GET".into()),
        route: Some(Arc::from("/fhir/Patient/{id}")),
        object: Some(phiwatch::anomaly::Object {
            hash: i,
            number: Some(i),
        }),
        patients: vec![i],
        status: Some(if i.is_multiple_of(10) { 401 } else { 200 }),
        bytes_in: 0,
        bytes_out: 900,
        flagged: None,
        credential_fp: None,
        prov: Provenance::file_line(Arc::from("stress"), i + 1),
        format: phiwatch::decode::Format::GenericJson,
    }
}

fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

/// A million distinct principals (each touching several rules) through the
/// default configuration: tracked keys never exceed the cap, evictions are
/// counted, and state memory is reported.
#[test]
fn million_keys_stay_within_the_cap() {
    let key = key();
    let cfg = AnomalyConfig::default();
    let rules = rule::builtin().expect("rules");
    let mut det = Detector::new(&rules, &cfg, &key).expect("detector");
    let rss0 = rss_kib();
    let mut out = Vec::new();
    let mut peak = 0;
    let n = 1_000_000u64;
    for i in 0..n {
        det.observe(
            synthetic(i, 1_709_542_800_000_000 + i as i64 * 1000),
            &mut out,
        );
        if i % 65_536 == 0 {
            peak = peak.max(det.tracked_keys());
        }
    }
    det.finish(&mut out);
    peak = peak.max(det.tracked_keys());
    assert!(peak <= cfg.max_keys, "peak {peak} keys");
    assert!(det.evictions() > 0);
    let bytes = det.state_bytes();
    let rss1 = rss_kib();
    eprintln!(
        "million-key stress: peak keys {peak}, evictions {}, state ~{} MiB, rss {:?} -> {:?} KiB",
        det.evictions(),
        bytes >> 20,
        rss0,
        rss1
    );
    // State accounting stays within a fixed budget whatever the input.
    assert!(bytes < 512 << 20, "state {bytes} bytes");
    assert!(out.is_empty(), "{} findings on disjoint keys", out.len());
}

#[test]
fn malformed_rules_are_rejected() {
    let base = "rules:\n  - id: x.y\n    name: n\n    description: d\n    category: anomaly\n    kind: enumeration\n    severity: high\n    confidence: 0.5\n    examples: [a]\n    negative_examples: [b]\n";
    let ok = rule::parse("t.yaml", base).expect("parses");
    assert!(Detector::new(&ok, &AnomalyConfig::default(), &key()).is_ok());
    let cases = [
        ("kind: enumeration", "kind: us_ssn"),
        ("category: anomaly", "category: phi"),
        ("severity: high", "severity: huge"),
        ("confidence: 0.5", "confidence: 1.5"),
        ("examples: [a]", "examples: []"),
        ("id: x.y", "id: X-Y"),
        (
            "confidence: 0.5\n",
            "confidence: 0.5\n    params: {window_ms: 0}\n",
        ),
        (
            "confidence: 0.5\n",
            "confidence: 0.5\n    params: {no_such_param: 1}\n",
        ),
    ];
    for (from, to) in cases {
        let text = base.replace(from, to);
        let rules = rule::parse("t.yaml", &text).expect("parses");
        let err = Detector::new(&rules, &AnomalyConfig::default(), &key());
        assert!(err.is_err(), "accepted: {to}");
    }
}

#[test]
fn late_accesses_are_counted_not_lost() {
    let cfg = AnomalyConfig {
        tolerance_ms: 1_000,
        ..AnomalyConfig::default()
    };
    let mut det = Detector::new(&rule::builtin().expect("rules"), &cfg, &key()).expect("detector");
    let mut out = Vec::new();
    det.observe(synthetic(1, 10_000_000_000), &mut out);
    det.observe(synthetic(2, 10_000_000_000 - 5_000_000), &mut out);
    assert_eq!(det.late(), 1);
    det.finish(&mut out);
    assert_eq!(det.buffered(), 0);
}
