//! The risk-assessment report: thresholds, scoping, by-state counts and formats.

mod exposure_common;

use exposure_common::{key, patients, write_exposure};
use phiwatch::report::{self, OutputFormat, ReportOptions, parse_date, parse_time};
use std::path::Path;

fn opts(discovered: &str) -> ReportOptions {
    ReportOptions {
        discovered: Some(parse_date(discovered).expect("date")),
        ..ReportOptions::default()
    }
}

fn directory(dir: &Path, rows: &[(String, &str)]) -> std::path::PathBuf {
    let path = dir.join("patients.csv");
    let mut text = String::from("patient_id,state\n");
    for (id, st) in rows {
        text.push_str(&format!("{id},{st}\n"));
    }
    std::fs::write(&path, text).expect("write csv");
    path
}

/// HHS: 500 or more -> within 60 days of discovery; fewer -> annual log, due 60
/// days after the end of the calendar year (45 CFR 164.408(b), (c)).
#[test]
fn hhs_threshold_flips_at_500() {
    let k = key();
    // (patients, hhs path, hhs rule, hhs deadline)
    let cases = [
        (499u32, "annual_log", "45 CFR 164.408(c)", "2025-03-01"),
        (500, "within_60_days", "45 CFR 164.408(b)", "2024-05-14"),
        (501, "within_60_days", "45 CFR 164.408(b)", "2024-05-14"),
    ];
    for (n, path, rule, due) in cases {
        let dir = tempfile::tempdir().expect("tmp");
        write_exposure(dir.path(), "a", &patients(0..n, "t", "203.0.113.7", &k), &k);
        let r = report::build(dir.path(), &opts("2024-03-15"), &k).expect("report");
        assert_eq!(r.distinct_patients.value, u64::from(n));
        assert!(r.distinct_patients.exact);
        assert_eq!(r.notification.hhs_path, path, "n = {n}");
        assert_eq!(r.notification.hhs.rule, rule, "n = {n}");
        assert_eq!(r.notification.hhs.deadline.as_deref(), Some(due), "n = {n}");
        assert!(r.notification.hhs.required);
        assert!(r.notification.individuals.required);
        assert_eq!(
            r.notification.individuals.deadline.as_deref(),
            Some("2024-05-14")
        );
        assert_eq!(r.notification.individuals.rule, "45 CFR 164.404");
    }
}

#[test]
fn annual_log_deadline_in_a_leap_year() {
    let k = key();
    let dir = tempfile::tempdir().expect("tmp");
    write_exposure(dir.path(), "a", &patients(0..3, "t", "203.0.113.7", &k), &k);
    let r = report::build(dir.path(), &opts("2023-07-01"), &k).expect("report");
    // 60 days after 2023-12-31 is 2024-02-29 (2024 is a leap year).
    assert_eq!(r.notification.hhs.deadline.as_deref(), Some("2024-02-29"));
}

/// Media: more than 500 residents of a State (45 CFR 164.406): 500 no, 501 yes.
#[test]
fn media_threshold_flips_above_500_residents() {
    let k = key();
    for (ca, media) in [(500u32, false), (501, true)] {
        let dir = tempfile::tempdir().expect("tmp");
        // `ca` patients in CA and 40 in NV are read; the directory lists 20 more
        // CA residents who were not read.
        let total = ca + 40;
        write_exposure(
            dir.path(),
            "a",
            &patients(0..total, "s", "203.0.113.8", &k),
            &k,
        );
        let mut rows: Vec<(String, &str)> = (0..ca).map(|i| (format!("s{i}"), "CA")).collect();
        rows.extend((ca..total).map(|i| (format!("s{i}"), "NV")));
        rows.extend((0..20).map(|i| (format!("unread{i}"), "CA")));
        let mut o = opts("2024-03-15");
        o.patient_directory = Some(directory(dir.path(), &rows));
        let r = report::build(dir.path(), &o, &k).expect("report");
        let ca_count = r.by_state.get("CA").expect("CA");
        assert_eq!((ca_count.value, ca_count.exact), (u64::from(ca), true));
        assert_eq!(r.by_state.get("NV").map(|e| e.value), Some(40));
        assert_eq!(r.directory_unmatched.map(|e| e.value), Some(0));
        let states: Vec<&str> = r
            .notification
            .media
            .iter()
            .filter_map(|m| m.state.as_deref())
            .collect();
        assert_eq!(
            states,
            if media {
                vec!["CA"]
            } else {
                Vec::<&str>::new()
            },
            "ca = {ca}"
        );
        if media {
            assert_eq!(r.notification.media[0].rule, "45 CFR 164.406");
            assert_eq!(
                r.notification.media[0].deadline.as_deref(),
                Some("2024-05-14")
            );
        }
    }
}

#[test]
fn rows_from_separate_files_merge_like_one() {
    let k = key();
    let one = tempfile::tempdir().expect("tmp");
    let mut all = patients(0..400, "m", "203.0.113.9", &k);
    all.merge(patients(250..650, "m", "203.0.113.9", &k));
    write_exposure(one.path(), "all", &all, &k);
    let split = tempfile::tempdir().expect("tmp");
    write_exposure(
        split.path(),
        "a",
        &patients(0..400, "m", "203.0.113.9", &k),
        &k,
    );
    write_exposure(
        split.path(),
        "b",
        &patients(250..650, "m", "203.0.113.9", &k),
        &k,
    );
    let a = report::build(one.path(), &opts("2024-03-15"), &k).expect("one");
    let b = report::build(split.path(), &opts("2024-03-15"), &k).expect("split");
    assert_eq!(a.distinct_patients, b.distinct_patients);
    assert_eq!(b.distinct_patients.value, 650);
    assert_eq!(a.requests, b.requests);
    assert_eq!(b.notification.hhs_path, "within_60_days");
}

#[test]
fn scope_filters_principal_ip_and_time() {
    let k = key();
    let dir = tempfile::tempdir().expect("tmp");
    write_exposure(
        dir.path(),
        "a",
        &patients(0..300, "a", "203.0.113.10", &k),
        &k,
    );
    write_exposure(
        dir.path(),
        "b",
        &patients(0..250, "b", "203.0.113.11", &k),
        &k,
    );
    let mut o = opts("2024-03-15");
    let all = report::build(dir.path(), &o, &k).expect("all");
    assert_eq!(all.distinct_patients.value, 550);
    o.client_ips = vec!["203.0.113.11".into()];
    let one = report::build(dir.path(), &o, &k).expect("ip");
    assert_eq!(one.distinct_patients.value, 250);
    assert_eq!(one.containment.block_ips, vec!["203.0.113.11".to_string()]);
    assert!(one.containment.nginx_deny.contains("deny 203.0.113.11;"));
    o.client_ips.clear();
    o.principals = vec!["nobody".into()];
    assert_eq!(
        report::build(dir.path(), &o, &k)
            .expect("p")
            .distinct_patients
            .value,
        0
    );
    o.principals.clear();
    // All activity is on 2024-03-01 from 00:00Z; a range after it selects nothing.
    o.from = Some(parse_time("2024-03-02T00:00:00Z", "--from").expect("t"));
    assert_eq!(report::build(dir.path(), &o, &k).expect("t").requests, 0);
}

#[test]
fn json_has_the_contract_fields_and_other_formats_render() {
    let k = key();
    let dir = tempfile::tempdir().expect("tmp");
    write_exposure(
        dir.path(),
        "a",
        &patients(0..20, "j", "203.0.113.12", &k),
        &k,
    );
    let mut o = opts("2024-03-15");
    o.format = OutputFormat::Json;
    let text = report::run(dir.path(), &o, &k).expect("json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("valid json");
    for field in [
        "scope",
        "distinct_patients",
        "distinct_records",
        "by_state",
        "phi_kinds",
        "first_seen",
        "last_seen",
        "requests",
        "notification",
        "factors",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    for f in ["value", "exact", "lower", "upper"] {
        assert!(
            v["distinct_patients"].get(f).is_some(),
            "distinct_patients.{f}"
        );
    }
    assert_eq!(v["distinct_patients"]["value"], 20);
    for f in [
        "nature_and_extent",
        "unauthorized_person",
        "acquired_or_viewed",
        "mitigation",
    ] {
        assert!(
            v["factors"][f]["evidence"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{f}"
        );
    }
    o.format = OutputFormat::Md;
    let md = report::run(dir.path(), &o, &k).expect("md");
    assert!(md.contains("45 CFR 164.408(c)") && md.contains("45 CFR 164.404"));
    o.format = OutputFormat::Html;
    let html = report::run(dir.path(), &o, &k).expect("html");
    assert!(html.contains("<svg") && html.contains("<polyline"));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
}

#[test]
fn wrong_key_and_missing_dir_are_errors() {
    let k = key();
    let dir = tempfile::tempdir().expect("tmp");
    write_exposure(
        dir.path(),
        "a",
        &patients(0..5, "w", "203.0.113.13", &k),
        &k,
    );
    let other = phiwatch::redact::Key::from_bytes(b"another key entirely 0000");
    let err = report::build(dir.path(), &opts("2024-03-15"), &other).expect_err("mismatch");
    assert!(err.to_string().contains("key"));
    assert!(report::build(&dir.path().join("nope"), &opts("2024-03-15"), &k).is_err());
    assert!(parse_date("15/03/2024").is_err());
}
