//! `phiwatch rules check` on the shipped rules, and on broken rule directories.

use phiwatch::detect::check_rules;
use std::path::Path;

#[test]
fn shipped_rules_pass() {
    let report = check_rules(None).expect("built-in rules parse");
    assert!(report.ok(), "{report}");
    assert!(report.rules >= 30, "{report}");
    assert!(
        report.examples >= 2 * 30 && report.negative_examples >= 2 * 30,
        "{report}"
    );
}

#[test]
fn rules_dir_itself_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let report = check_rules(Some(&dir)).expect("rules/ parses");
    assert!(report.ok(), "{report}");
}

const GOOD_HEAD: &str = "rules:\n  - id: test.rule\n    name: t\n    description: t\n    category: phi\n    kind: us_ssn\n    severity: low\n    confidence: 0.5\n";

fn failures_for(body: &str) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.yaml"), format!("{GOOD_HEAD}{body}")).expect("write");
    let report = check_rules(Some(dir.path())).expect("parses");
    assert!(!report.ok(), "a broken rule must fail the check");
    assert!(report.to_string().contains("failures"));
    report.failures
}

#[test]
fn example_without_finding_fails() {
    let f = failures_for(
        "    keywords: [zzz]\n    pattern: '(zzz[0-9]{3})'\n    examples: ['zzz without the digits the pattern needs']\n    negative_examples: ['nothing']\n",
    );
    assert!(
        f.iter()
            .any(|l| l.contains("test.rule") && l.contains("example 1")),
        "{f:?}"
    );
}

#[test]
fn negative_example_with_finding_fails() {
    let f = failures_for(
        "    pattern: '([0-9]{3}-[0-9]{2}-[0-9]{4})'\n    validator: ssn\n    examples: ['id 123-45-6789']\n    negative_examples: ['id 234-56-7890']\n",
    );
    assert!(f.iter().any(|l| l.contains("negative example 1")), "{f:?}");
}

#[test]
fn example_without_keyword_fails() {
    let f = failures_for(
        "    keywords: [social]\n    pattern: '([0-9]{3}-[0-9]{2}-[0-9]{4})'\n    examples: ['id 123-45-6789']\n    negative_examples: ['none']\n",
    );
    assert!(f.iter().any(|l| l.contains("contains no keyword")), "{f:?}");
}

#[test]
fn empty_context_word_fails() {
    let f = failures_for(
        "    pattern: '([0-9]{3}-[0-9]{2}-[0-9]{4})'\n    context:\n      words: [ssn, '']\n    examples: ['ssn 123-45-6789']\n    negative_examples: ['none']\n",
    );
    assert!(
        f.iter()
            .any(|l| l.contains("test.rule") && l.contains("context words must be non-empty")),
        "{f:?}"
    );
}

#[test]
fn bad_pattern_and_id_fail() {
    let f =
        failures_for("    pattern: '(unclosed'\n    examples: [a]\n    negative_examples: [b]\n");
    assert!(f.iter().any(|l| l.contains("pattern")), "{f:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let text = GOOD_HEAD.replace("test.rule", "Bad-Id")
        + "    pattern: '(x)'\n    examples: [a]\n    negative_examples: [b]\n";
    std::fs::write(dir.path().join("t.yaml"), text).expect("write");
    let report = check_rules(Some(dir.path())).expect("parses");
    assert!(
        report
            .failures
            .iter()
            .any(|l| l.contains("Bad-Id") && l.contains("id must")),
        "{report}"
    );
}

#[test]
fn duplicate_ids_and_unknown_fields_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one =
        format!("{GOOD_HEAD}    pattern: '(x)'\n    examples: [a]\n    negative_examples: [b]\n");
    std::fs::write(dir.path().join("a.yaml"), &one).expect("write");
    std::fs::write(dir.path().join("b.yaml"), &one).expect("write");
    let err = check_rules(Some(dir.path())).expect_err("duplicate id");
    assert!(err.to_string().contains("duplicate id"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("c.yaml"),
        format!("{GOOD_HEAD}    colour: red\n"),
    )
    .expect("write");
    let err = check_rules(Some(dir.path())).expect_err("unknown field");
    assert!(
        err.to_string().contains("c.yaml") && err.to_string().contains("colour"),
        "{err}"
    );
}
