//! End to end through the binary: `replay` the fixture incident (real Kong
//! decoder, detector and exposure counting), then `report` it. The counts are the
//! ones `fixtures/incident/generate.py` built the incident to have.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const KEY: &str = "696e636964656e742d636173652d6b65792d3031323334353637383961626364";

fn phiwatch(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_phiwatch"))
        .env("PHIWATCH_KEY", KEY)
        .env("PHIWATCH_HOME", dir.join("home"))
        .args(args)
        .output()
        .expect("run phiwatch")
}

fn fixture(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/incident")
        .join(p)
        .display()
        .to_string()
}

fn report_json(out: &str, extra: &[&str], dir: &Path) -> Value {
    let mut args = vec![
        "report",
        out,
        "--format",
        "json",
        "--discovered",
        "2024-03-15",
        "--patient-directory",
    ];
    let csv = fixture("patients.csv");
    args.push(&csv);
    args.extend_from_slice(extra);
    let o = phiwatch(&args, dir);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("report json")
}

#[test]
fn replay_then_report_gives_the_incident_counts_and_obligations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("case").display().to_string();
    let o = phiwatch(
        &["replay", "--quiet", &fixture("kong.log"), "--out", &out],
        dir.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let all = report_json(&out, &[], dir.path());
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
        assert!(all.get(field).is_some(), "missing {field}");
    }
    assert_eq!(all["distinct_patients"]["value"], 620);
    assert_eq!(all["distinct_patients"]["exact"], true);
    assert_eq!(all["by_state"]["CA"]["value"], 540);
    assert_eq!(all["by_state"]["TX"]["value"], 80);

    let attacker = report_json(&out, &["--client-ip", "203.0.113.45"], dir.path());
    assert_eq!(attacker["distinct_patients"]["value"], 612);
    assert_eq!(attacker["by_state"]["CA"]["value"], 540);
    assert_eq!(attacker["by_state"]["TX"]["value"], 72);
    assert_eq!(attacker["requests"], 362);
    let text = attacker["notification"].to_string();
    assert!(text.contains("2024-05-14"), "{text}");
    assert!(text.contains("164.406"), "{text}");

    let partner = report_json(&out, &["--client-ip", "198.51.100.7"], dir.path());
    assert_eq!(partner["distinct_patients"]["value"], 30);
    let ptext = partner["notification"].to_string();
    assert!(!ptext.contains("\"CA\""), "no media notice for CA: {ptext}");

    // The other formats render, and no output carries a patient id.
    for f in ["md", "html"] {
        let o = phiwatch(
            &["report", &out, "--format", f, "--discovered", "2024-03-15"],
            dir.path(),
        );
        assert!(o.status.success());
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(!s.contains("pt-00"), "{f} report leaks a patient id");
    }
}

#[test]
fn report_under_another_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("case").display().to_string();
    assert!(
        phiwatch(
            &["replay", "--quiet", &fixture("kong.log"), "--out", &out],
            dir.path()
        )
        .status
        .success()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_phiwatch"))
        .env("PHIWATCH_KEY", "ab".repeat(32))
        .args(["report", &out])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("key"));
}
