//! Exposure extraction and counting: which requests count, which patients and
//! records they expose, exact/sketch behaviour and merging.

mod exposure_common;

use exposure_common::{get, key, patients_of, records_of, roundtrip};
use phiwatch::event::Provenance;
use phiwatch::exposure::{
    Accumulator, ExposureConfig, identifier_hash, patient_hash, principal, read_batch, record_hash,
    schema,
};
use std::sync::Arc;

/// (path, query, expected patient hashes, expected record hashes)
type Case<'a> = (&'a str, Option<&'a str>, Vec<u64>, Vec<u64>);

fn prov() -> Provenance {
    Provenance::file_line(Arc::from("gw.log"), 1)
}

#[test]
fn extraction_table() {
    let k = key();
    let p = |id: &str| patient_hash(&k, id);
    let i = |v: &str| identifier_hash(&k, v);
    let r = |t: &str, id: &str| record_hash(&k, t, id);
    // (path, query, patients, records)
    let cases: Vec<Case> = vec![
        (
            "/fhir/Patient/p1",
            None,
            vec![p("p1")],
            vec![r("Patient", "p1")],
        ),
        (
            "/fhir/r4/Patient/p2/$everything",
            None,
            vec![p("p2")],
            vec![r("Patient", "p2")],
        ),
        (
            "/fhir/Patient/p2/%24everything",
            None,
            vec![p("p2")],
            vec![r("Patient", "p2")],
        ),
        (
            "/api/fhir/Patient/p3/_history/2",
            None,
            vec![p("p3")],
            vec![r("Patient", "p3")],
        ),
        (
            "/fhir/Observation/o1",
            None,
            vec![],
            vec![r("Observation", "o1")],
        ),
        (
            "/fhir/Observation",
            Some("patient=p4&code=1234-5"),
            vec![p("p4")],
            vec![],
        ),
        (
            "/fhir/Observation",
            Some("subject=Patient%2Fp5"),
            vec![p("p5")],
            vec![],
        ),
        (
            "/fhir/Observation",
            Some("subject=Group/g1"),
            vec![],
            vec![],
        ),
        (
            "/fhir/Condition",
            Some("subject:Patient=p6,p7"),
            vec![p("p6"), p("p7")],
            vec![],
        ),
        (
            "/fhir/Patient",
            Some("identifier=urn:oid:1.2.3%7CMRN0042"),
            vec![i("MRN0042")],
            vec![],
        ),
        (
            "/fhir/Patient",
            Some("identifier=MRN0043"),
            vec![i("MRN0043")],
            vec![],
        ),
        (
            "/fhir/Patient",
            Some("identifier=urn:sys%7C"),
            vec![],
            vec![],
        ),
        (
            "/fhir/Patient",
            Some("_id=p8,p9"),
            vec![p("p8"), p("p9")],
            vec![],
        ),
        (
            "/fhir/Encounter",
            Some("patient.identifier=sys|M7"),
            vec![i("M7")],
            vec![],
        ),
        (
            "/fhir/Encounter",
            Some("patient=https://ehr.test/fhir/Patient/p10"),
            vec![p("p10")],
            vec![],
        ),
        (
            "/baseR4/Patient/p11",
            None,
            vec![p("p11")],
            vec![r("Patient", "p11")],
        ),
        (
            "/tenant/acme/fhir-api/Patient/p12",
            None,
            vec![p("p12")],
            vec![r("Patient", "p12")],
        ),
        (
            "/fhir/Patient/p13/Observation",
            None,
            vec![p("p13")],
            vec![r("Patient", "p13")],
        ),
        ("/fhir/Patient/_search", None, vec![], vec![]),
    ];
    for (path, query, want_p, want_r) in cases {
        let ev = get(path, query, 200);
        let mut acc = Accumulator::new(&ExposureConfig::default());
        acc.observe(&ev, &prov(), &k);
        let mut wp = want_p.clone();
        wp.sort_unstable();
        let mut wr = want_r.clone();
        wr.sort_unstable();
        assert_eq!(patients_of(&acc, &k), wp, "patients of {path} {query:?}");
        assert_eq!(records_of(&acc, &k), wr, "records of {path} {query:?}");
        assert!(
            !acc.is_empty(),
            "{path} {query:?} should count as a PHI request"
        );
    }
}

#[test]
fn requests_that_do_not_count() {
    let k = key();
    let mut cases = vec![
        get("/fhir/Patient/p1", None, 404),
        get("/fhir/Patient/p1", None, 401),
        get("/fhir/Patient/p1", None, 302),
        get("/fhir/metadata", None, 200),
        get("/fhir/ValueSet/v1", None, 200),
        get("/healthz", None, 200),
        get("/api/patient/p1", None, 200),
    ];
    let mut del = get("/fhir/Patient/p1", None, 204);
    del.method = Some("DELETE".into());
    cases.push(del);
    let mut no_status = get("/fhir/Patient/p1", None, 200);
    no_status.status = None;
    cases.push(no_status);
    for ev in cases {
        let mut acc = Accumulator::new(&ExposureConfig::default());
        acc.observe(&ev, &prov(), &k);
        assert!(
            acc.is_empty(),
            "{:?} {:?} must not count",
            ev.path,
            ev.status
        );
    }
}

#[test]
fn base_paths_only_when_any_prefix_is_off() {
    let k = key();
    let cfg = ExposureConfig {
        fhir_base_paths: vec!["/ehr/api/".into()],
        any_prefix: false,
        ..ExposureConfig::default()
    };
    let mut acc = Accumulator::new(&cfg);
    acc.observe(&get("/other/Patient/p1", None, 200), &prov(), &k);
    assert!(acc.is_empty());
    acc.observe(&get("/ehr/api/Patient/p1", None, 200), &prov(), &k);
    assert_eq!(patients_of(&acc, &k), vec![patient_hash(&k, "p1")]);
}

#[test]
fn full_url_and_hl7_body() {
    let k = key();
    let mut ev = get("/", None, 200);
    ev.path = None;
    ev.url = Some("https://ehr.test:8443/fhir/Patient/p1?_format=json".into());
    let mut acc = Accumulator::new(&ExposureConfig::default());
    acc.observe(&ev, &prov(), &k);
    assert_eq!(patients_of(&acc, &k), vec![patient_hash(&k, "p1")]);

    let mut hl7 = get("/hl7/mllp-bridge", None, 200);
    hl7.body = Some(
        "MSH|^~\\&|EHR|HOSP|APP|X|20240301120000||ADT^A08|1|P|2.5\rPID|1||MRN1001^^^HOSP^MR~MRN1002^^^HOSP^MR||DOE^JANE\r"
            .into(),
    );
    let mut acc = Accumulator::new(&ExposureConfig::default());
    acc.observe(&hl7, &prov(), &k);
    let mut want = vec![
        identifier_hash(&k, "MRN1001"),
        identifier_hash(&k, "MRN1002"),
    ];
    want.sort_unstable();
    assert_eq!(patients_of(&acc, &k), want);
}

#[test]
fn principal_table() {
    let k = key();
    let jwt_payload = "eyJzdWIiOiJzdmMtYmlsbGluZyIsImlhdCI6MTcwMDAwMDAwMH0"; // {"sub":"svc-billing","iat":1700000000}
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{jwt_payload}.c2ln");
    let fp = |s: &str| format!("key:{}", &k.hmac_hex(s.as_bytes())[..12]);
    let mut named = get("/fhir/Patient/p1", None, 200);
    named.principal = Some("partner-app".into());
    let mut bearer = get("/fhir/Patient/p1", None, 200);
    bearer.headers = vec![("authorization".into(), format!("Bearer {jwt}").into())];
    let mut opaque = get("/fhir/Patient/p1", None, 200);
    opaque.headers = vec![("authorization".into(), "Bearer opaque-token-123".into())];
    let mut apikey = get("/fhir/Patient/p1", None, 200);
    apikey.headers = vec![("x-api-key".into(), "synthetic-key-0001".into())];
    let query = get("/fhir/Patient/p1", Some("api_key=synthetic-key-0002"), 200);
    let upper = get("/fhir/Patient/p1", Some("page=2&TOKEN=synthetic-0003"), 200);
    let no_key = get(
        "/fhir/Patient/p1",
        Some("page=2&ts=2024-01-15T10:23:00Z"),
        200,
    );
    let nobody = get("/fhir/Patient/p1", None, 200);
    let cases = vec![
        (named, Some("partner-app".to_string())),
        (bearer, Some("svc-billing".to_string())),
        (opaque, Some(fp("opaque-token-123"))),
        (apikey, Some(fp("synthetic-key-0001"))),
        (query, Some(fp("synthetic-key-0002"))),
        (upper, Some(fp("synthetic-0003"))),
        (no_key, None),
        (nobody, None),
    ];
    for (ev, want) in cases {
        assert_eq!(principal(&ev, &k), want);
    }
}

#[test]
fn rows_split_by_scope_and_window() {
    let k = key();
    let mut acc = Accumulator::new(&ExposureConfig::default());
    let hour = 3_600_000_000i64;
    for (t, ip, id) in [
        (0, "10.0.0.1", "a"),
        (10, "10.0.0.1", "b"),
        (hour + 1, "10.0.0.1", "a"),
        (5, "10.0.0.2", "a"),
    ] {
        let path = format!("/fhir/Patient/{id}");
        let mut ev = get(&path, None, 200);
        ev.time = Some(1_709_251_200_000_000 + t);
        ev.client_ip = Some(ip.into());
        ev.bytes_out = Some(100);
        acc.observe(&ev, &prov(), &k);
    }
    let rows = roundtrip(&acc, &k);
    assert_eq!(rows.len(), 3);
    let first = &rows[0];
    assert_eq!(first.client_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(
        (first.requests, first.bytes_out, first.patients_count),
        (2, 200, 2)
    );
    assert_eq!(first.window_end - first.window_start, hour);
    assert_eq!(first.window_start % hour, 0);
    assert_eq!(first.first_seen, Some(1_709_251_200_000_000));
    assert_eq!(first.last_seen, Some(1_709_251_200_000_010));
    assert_eq!(first.resource_types, vec!["Patient".to_string()]);
    // A row of one request: seen first and last at that request's time.
    for row in &rows[1..] {
        assert_eq!(
            (row.requests, row.bytes_out, row.patients_count),
            (1, 100, 1)
        );
        assert!(row.first_seen.is_some());
        assert_eq!(row.first_seen, row.last_seen);
    }
}

#[test]
fn schema_has_the_contract_columns_first() {
    let names: Vec<String> = schema().fields().iter().map(|f| f.name().clone()).collect();
    let contract = [
        "principal",
        "client_ip",
        "source",
        "window_start",
        "window_end",
        "requests",
        "bytes_out",
        "patients_count",
        "records_count",
        "patients_exact",
        "records_exact",
        "patient_hashes",
        "record_hashes",
        "patients_sketch",
        "records_sketch",
        "key_id",
    ];
    assert_eq!(&names[..contract.len()], &contract);
    let acc = Accumulator::new(&ExposureConfig::default());
    let batch = acc.to_record_batch("k").expect("batch");
    assert_eq!(batch.num_rows(), 0);
    assert!(read_batch(&batch).expect("read").is_empty());
}
