//! Detector unit tests on events built directly (no decoder involved).

use super::*;
use crate::event::Event;
use std::sync::Arc;

fn detector() -> Detector {
    Detector::load(Key::from_bytes(b"unit test key 0123"), None).expect("built-in rules load")
}

fn prov() -> Provenance {
    Provenance::file_line(Arc::from("t.log"), 7)
}

fn scan(ev: &Event) -> Vec<Finding> {
    let mut out = Vec::new();
    detector().scan(ev, &prov(), Format::GenericJson, &mut out);
    out
}

fn kinds_at(found: &[Finding]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = found
        .iter()
        .map(|f| (f.kind.to_string(), f.location.clone()))
        .collect();
    v.sort();
    v
}

#[test]
fn builtin_rules_load_and_count() {
    assert!(detector().rule_count() >= 30);
}

#[test]
fn fhir_ssn_identifier_in_encoded_query() {
    let ev = Event {
        method: Some("GET".into()),
        path: Some("/fhir/Patient".into()),
        query: Some(
            "identifier=http%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Fus-ssn%7C123456789&_count=1".into(),
        ),
        ..Event::default()
    };
    let found = scan(&ev);
    let ssn: Vec<_> = found.iter().filter(|f| &*f.kind == "us_ssn").collect();
    assert_eq!(ssn.len(), 1);
    assert_eq!(ssn[0].location, "url.query:identifier");
    assert_eq!(ssn[0].value_masked, "***-**-6789");
    let key = Key::from_bytes(b"unit test key 0123");
    assert_eq!(ssn[0].value_hmac, key.hmac_hex(b"123456789"));
    assert_eq!(ssn[0].key_id.as_ref(), key.id());
    assert!(found.iter().any(|f| &*f.kind == "phi_in_query"));
}

#[test]
fn locations_per_field() {
    let ev = Event {
        method: Some("POST".into()),
        path: Some("/fhir/Patient/8812/$everything".into()),
        headers: vec![
            ("x-api-key".into(), "4fJ9kQ2xV7mN1pL8sR3tW6yZ".into()),
            ("x-patient-email".into(), "jane.roe%40example.org".into()),
        ],
        body: Some(r#"{"dob":"1975-06-15"}"#.into()),
        extra: vec![("patient.ssn".into(), "234-56-7890".into())],
        ..Event::default()
    };
    let got = kinds_at(&scan(&ev));
    let want: Vec<(String, String)> = [
        ("api_key", "header:x-api-key"),
        ("dob", "body"),
        ("email", "header:x-patient-email"),
        ("patient_ref", "url.path"),
        ("us_ssn", "extra:patient.ssn"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn url_path_is_masked_and_fields_copied() {
    let ev = Event {
        time: Some(1_700_000_000_000_000),
        method: Some("GET".into()),
        path: Some("/members/123-45-6789/claims".into()),
        status: Some(200),
        principal: Some("svc-a".into()),
        client_ip: Some("10.1.2.3".into()),
        dest_host: Some("api.example".into()),
        ..Event::default()
    };
    let found = scan(&ev);
    assert_eq!(found.len(), 1);
    let f = &found[0];
    assert_eq!(f.url_path.as_deref(), Some("/members/***-**-6789/claims"));
    assert_eq!(f.time, Some(1_700_000_000_000_000));
    assert_eq!(f.http_status, Some(200));
    assert_eq!(f.principal.as_deref(), Some("svc-a"));
    assert_eq!(f.client_ip.as_deref(), Some("10.1.2.3"));
    assert_eq!(f.dest_host.as_deref(), Some("api.example"));
    assert_eq!(f.http_method.as_deref(), Some("GET"));
    assert_eq!(f.source_line, Some(7));
    assert_eq!(f.finding_id.len(), 32);
}

#[test]
fn finding_ids_are_deterministic_and_distinct() {
    let ev = Event {
        query: Some("ssn=123-45-6789&alt=234-56-7890".into()),
        ..Event::default()
    };
    let a = scan(&ev);
    let b = scan(&ev);
    assert_eq!(a, b);
    assert_eq!(a.len(), 2);
    assert_ne!(a[0].finding_id, a[1].finding_id);
}

#[test]
fn base64_and_json_escapes_are_decoded() {
    use base64::Engine as _;
    let inner = base64::engine::general_purpose::STANDARD.encode("{\"ssn\":\"345-67-8901\"}");
    let ev = Event {
        headers: vec![("x-context".into(), inner.into())],
        body: Some(r#"{\"contact\":\"pat\u0040example.net\"}"#.into()),
        ..Event::default()
    };
    let got = kinds_at(&scan(&ev));
    assert!(
        got.contains(&("us_ssn".into(), "header:x-context".into())),
        "{got:?}"
    );
    assert!(got.contains(&("email".into(), "body".into())), "{got:?}");
}

#[test]
fn decoys_are_quiet() {
    let ev = Event {
        method: Some("GET".into()),
        path: Some("/orders/1234567893".into()),
        query: Some(
            "trace=123456789&ts=2024-01-15T10:22:31Z&ref=666-12-3456&npi=1234567890".into(),
        ),
        headers: vec![(
            "x-request-id".into(),
            "0af7651916cd43dd8448eb211c80319c".into(),
        )],
        ..Event::default()
    };
    assert!(scan(&ev).is_empty());
}

#[test]
fn text_lines_split_request_target() {
    let line = r#"10.0.0.9 - - [15/Jan/2024:10:22:31 +0000] "GET /fhir/Patient?family=Roe&birthdate=1975-06-15 HTTP/1.1" 200 512"#;
    let ev = crate::decode::text_event(line);
    let mut out = Vec::new();
    detector().scan(&ev, &prov(), Format::Text, &mut out);
    let got = kinds_at(&out);
    assert!(
        got.contains(&("dob".into(), "url.query:birthdate".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("person_name".into(), "url.query:family".into())),
        "{got:?}"
    );
    assert!(out.iter().all(|f| f.http_method.as_deref() == Some("GET")));
}

#[test]
fn extra_rules_dir_replaces_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = r#"
rules:
  - id: email
    name: off
    description: replaced
    category: phi
    kind: email
    severity: info
    confidence: 0.1
    keywords: ['@']
    pattern: '(never-matches-anything-zz)'
    examples: ['x@never-matches-anything-zz']
    negative_examples: ['a@b.com']
"#;
    std::fs::write(dir.path().join("r.yaml"), text).expect("write");
    let d = Detector::load(Key::from_bytes(b"k"), Some(dir.path())).expect("load");
    assert_eq!(d.rule_count(), detector().rule_count());
    let ev = Event {
        body: Some("mail jane@example.org".into()),
        ..Event::default()
    };
    let mut out = Vec::new();
    d.scan(&ev, &prov(), Format::GenericJson, &mut out);
    assert!(out.is_empty());
}

#[test]
fn malformed_rule_names_file_and_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "rules:\n  - id: bad_rule\n    name: x\n    description: x\n    category: phi\n    kind: email\n    severity: low\n    confidence: 0.5\n    pattern: '(unclosed'\n    examples: [a]\n    negative_examples: [b]\n";
    std::fs::write(dir.path().join("bad.yaml"), text).expect("write");
    let err = Detector::load(Key::from_bytes(b"k"), Some(dir.path())).expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("bad.yaml") && msg.contains("bad_rule"),
        "{msg}"
    );
    std::fs::write(
        dir.path().join("bad.yaml"),
        "rules:\n  - id: x\n    bogus: 1\n",
    )
    .expect("write");
    let msg = Detector::load(Key::from_bytes(b"k"), Some(dir.path()))
        .expect_err("must fail")
        .to_string();
    assert!(msg.contains("bad.yaml"), "{msg}");
}

#[test]
fn detector_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Detector>();
}

/// Text pieces that trip the gates: digits with separators, upper-case tokens,
/// base64, escapes, keywords, plus ordinary log text.
fn piece() -> impl proptest::strategy::Strategy<Value = String> + Clone {
    use proptest::prelude::*;
    prop_oneof![
        "[0-9]{1,12}",
        "[0-9]{3}-[0-9]{2}-[0-9]{4}",
        "\\([2-9][0-9]{2}\\) [2-9][0-9]{2}-[0-9]{4}",
        "[A-Z0-9-]{3,14}",
        "[A-Za-z0-9+/]{8,24}={0,2}",
        "[a-z]{1,8}",
        "[ .()+/_=&:;%\\\\-]{1,3}",
        Just("ssn=".to_string()),
        Just("Bearer ".to_string()),
        Just("npi".to_string()),
        Just("dob:".to_string()),
        Just("%40".to_string()),
        Just("eyJ".to_string()),
        Just("Patient/".to_string()),
        Just("AKIA".to_string()),
        // Base64 of short text that may hold a value (decodes, so it is scanned).
        "[a-z0-9=: -]{12,30}".prop_map(|t| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(t)
        }),
        Just("/fhir/Observation".to_string()),
    ]
}

use proptest::strategy::Strategy as _;

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(2000))]

    /// Skipping a field that is not worth scanning never loses a hit: its views
    /// (plain, query, named) yield nothing.
    #[test]
    fn fields_not_worth_scanning_have_no_hits(
        parts in proptest::collection::vec(piece(), 1..8),
        name in proptest::prop_oneof![
            proptest::sample::select(vec!["", "user-agent", "x-request-id", "host", "ssn", "authorization", "x-api-key", "note"])
                .prop_map(String::from),
            proptest::collection::vec(piece(), 1..3).prop_map(|p| p.concat()),
        ],
    ) {
        static DET: std::sync::LazyLock<Detector> = std::sync::LazyLock::new(detector);
        let det = &*DET;
        let name = name.as_str();
        let value = parts.concat();
        if !det.engine.worth_scanning(name, &value) {
            let views = if name.is_empty() {
                vec![
                    View::field(&value, "url.path".into(), None),
                    View::query(&value, "url.query".into()),
                    View::field(&value, "body".into(), None),
                ]
            } else {
                vec![named(name, &value, format!("header:{name}"))]
            };
            for v in &views {
                let mut hits = Vec::new();
                det.engine.scan_view(v, None, &mut hits);
                proptest::prop_assert!(hits.is_empty(), "{} hits in a skipped {}", hits.len(), v.location);
            }
        }
    }
}

#[test]
fn values_in_field_names_are_masked_in_locations() {
    // Synthetic, Luhn-free test values: an SSN used as a JSON key.
    let ev = Event {
        extra: vec![("members.123-45-6789".into(), "active".into())],
        ..Event::default()
    };
    let found = scan(&ev);
    assert!(
        found.iter().any(|f| &*f.kind == "us_ssn"),
        "the key is scanned"
    );
    for f in &found {
        assert!(!f.location.contains("123-45-6789"), "{}", f.location);
        assert!(f.location.starts_with("extra:members."), "{}", f.location);
    }
}

#[test]
fn one_finding_per_location_kind_and_value() {
    // Two rules of one kind on one value in one parameter (the FHIR identifier
    // rule and the dashed rule), the same SSN twice in the body, once more in
    // a header, and a second SSN in the body.
    let ev = Event {
        method: Some("GET".into()),
        path: Some("/fhir/Patient".into()),
        query: Some("identifier=http%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Fus-ssn%7C123-45-6789".into()),
        body: Some("ssn 123-45-6789, ssn 123-45-6789, ssn 234-56-7890".into()),
        headers: vec![("x-ssn".into(), "123-45-6789".into())],
        ..Event::default()
    };
    let found = scan(&ev);
    let mut ssn: Vec<(String, String, String)> = found
        .iter()
        .filter(|f| &*f.kind == "us_ssn")
        .map(|f| {
            (
                f.location.clone(),
                f.value_masked.clone(),
                f.rule_id.to_string(),
            )
        })
        .collect();
    ssn.sort();
    let at = |loc: &str, masked: &str, rule: &str| {
        (loc.to_string(), masked.to_string(), rule.to_string())
    };
    assert_eq!(
        ssn,
        vec![
            at("body", "***-**-6789", "us_ssn.dashed"),
            at("body", "***-**-7890", "us_ssn.dashed"),
            at("header:x-ssn", "***-**-6789", "us_ssn.dashed"),
            // The more confident of the two rules that matched.
            at(
                "url.query:identifier",
                "***-**-6789",
                "us_ssn.fhir_identifier"
            ),
        ]
    );
}
