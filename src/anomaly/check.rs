//! Running anomaly rules on their example sequences (`phiwatch rules check`).
//!
//! A sequence is a file of log records (any format phiwatch decodes; lines
//! starting with `#` are comments). Each record goes through the full path:
//! decode, pattern detector, [`Access::from_event`], anomaly detector over every
//! rule; then the findings of the rule under test are counted. An example must
//! give exactly one, a negative example none.

use super::rule::{self, AnomalyRule};
use super::{Access, AnomalyConfig, Detector, Error};
use crate::decode::{self, FileState, Mode};
use crate::event::Provenance;
use crate::finding::Finding;
use crate::redact::Key;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

macro_rules! seq {
    ($name:literal) => {
        (
            concat!("fixtures/anomaly/", $name),
            include_str!(concat!("../../fixtures/anomaly/", $name)),
        )
    };
}

/// The built-in sequence files, embedded at build time: (path, text).
pub const BUILTIN_SEQUENCES: &[(&str, &str)] = &[
    seq!("enumeration_walk.jsonl"),
    seq!("enumeration_short.jsonl"),
    seq!("enumeration_slow.jsonl"),
    seq!("enumeration_paging.jsonl"),
    seq!("patients_crawl.jsonl"),
    seq!("patients_short.jsonl"),
    seq!("patients_slow.jsonl"),
    seq!("auth_burst.jsonl"),
    seq!("auth_burst_short.jsonl"),
    seq!("auth_burst_slow.jsonl"),
    seq!("auth_spray.jsonl"),
    seq!("auth_spray_short.jsonl"),
    seq!("auth_principal.jsonl"),
    seq!("auth_principal_short.jsonl"),
    seq!("exfil_phi.log"),
    seq!("exfil_internal.log"),
    seq!("exfil_upload.jsonl"),
    seq!("exfil_upload_known.jsonl"),
    seq!("exfil_upload_small.jsonl"),
    seq!("first_seen_network.jsonl"),
    seq!("first_seen_learning.jsonl"),
    seq!("first_seen_service.jsonl"),
    seq!("first_seen_service_known.jsonl"),
    seq!("volume_spike.jsonl"),
    seq!("volume_near.jsonl"),
    seq!("volume_new_key.jsonl"),
    seq!("credential_live.jsonl"),
    seq!("credential_unused.jsonl"),
    seq!("credential_failed.jsonl"),
    seq!("normal_traffic.jsonl"),
];

/// What checking the anomaly rules found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SequenceReport {
    /// Rules checked.
    pub rules: usize,
    /// Example sequences run.
    pub examples: usize,
    /// Negative example sequences run.
    pub negative_examples: usize,
    /// One line per problem: file, rule id and what is wrong.
    pub failures: Vec<String>,
}

impl SequenceReport {
    /// True when no rule failed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for SequenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::detect::check::write_summary(
            f,
            &self.failures,
            [
                (self.rules, "anomaly rules"),
                (self.examples, "example sequences"),
                (self.negative_examples, "negative sequences"),
            ],
        )
    }
}

/// The key sequences are checked under.
fn check_key() -> Key {
    Key::from_bytes(b"phiwatch rules check key")
}

/// Run a sequence (the text of a log file) through decode, the pattern
/// detector and a fresh anomaly detector over `rules`; return every anomaly
/// finding. A record that cannot be decoded is an error naming its line.
pub fn run_sequence(
    text: &str,
    source: &str,
    rules: &[AnomalyRule],
    cfg: &AnomalyConfig,
    key: &Key,
) -> Result<Vec<Finding>, Error> {
    let pattern = crate::detect::Detector::load(key.clone(), None)
        .map_err(|e| Error::Pattern(e.to_string()))?;
    let mut det = Detector::new(rules, cfg, key)?;
    let src: Arc<str> = Arc::from(source);
    let mut state = FileState::default();
    let mut events = Vec::new();
    let mut findings = Vec::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        events.clear();
        let format = decode::decode_record(line.as_bytes(), Mode::Auto, &mut state, &mut events)
            .map_err(|e| Error::Rule {
                file: source.to_string(),
                message: format!("line {}: {e}", n + 1),
            })?;
        for (i, ev) in events.iter().enumerate() {
            let mut prov = Provenance::file_line(src.clone(), n as u64 + 1);
            prov.index = u32::try_from(i).unwrap_or(u32::MAX);
            findings.clear();
            pattern.scan(ev, &prov, format, &mut findings);
            det.observe(
                Access::from_event(ev, &prov, format, &findings, key),
                &mut out,
            );
        }
    }
    det.finish(&mut out);
    Ok(out)
}

/// The text of a sequence: built in, else relative to `dir`, else as given.
fn sequence_text(path: &str, dir: Option<&Path>) -> Option<String> {
    if let Some((_, text)) = BUILTIN_SEQUENCES.iter().find(|(p, _)| *p == path) {
        return Some((*text).to_string());
    }
    let candidates = dir.map(|d| d.join(path)).into_iter().chain([path.into()]);
    for c in candidates {
        if let Ok(text) = std::fs::read_to_string(&c) {
            return Some(text);
        }
    }
    None
}

/// Check the built-in anomaly rules on their sequences.
pub fn check_sequences() -> Result<SequenceReport, Error> {
    check_sequences_in(None)
}

/// Check the built-in anomaly rules, with the rules of `dir` added or replacing
/// them by id. A file that cannot be read or parsed is an `Err`; every other
/// problem is a failure line in the report.
pub fn check_sequences_in(dir: Option<&Path>) -> Result<SequenceReport, Error> {
    let rules = rule::load_all(dir)?;
    let mut report = SequenceReport {
        rules: rules.len(),
        ..SequenceReport::default()
    };
    let mut good: Vec<AnomalyRule> = Vec::new();
    for r in &rules {
        match r.compile() {
            Ok(_) => good.push(r.clone()),
            Err(e) => report.failures.push(e.to_string()),
        }
    }
    let key = check_key();
    let cfg = AnomalyConfig::default();
    for r in &good {
        let runs = r
            .examples
            .iter()
            .map(|p| (p, 1usize))
            .chain(r.negative_examples.iter().map(|p| (p, 0usize)));
        for (path, want) in runs {
            if want == 1 {
                report.examples += 1;
            } else {
                report.negative_examples += 1;
            }
            let Some(text) = sequence_text(path, dir) else {
                report.failures.push(format!(
                    "{}: rule {}: no sequence file {path}",
                    r.file, r.id
                ));
                continue;
            };
            match run_sequence(&text, path, &good, &cfg, &key) {
                Ok(found) => {
                    let n = found.iter().filter(|f| *f.rule_id == *r.id).count();
                    if n != want {
                        report.failures.push(format!(
                            "{}: rule {}: {path}: {n} findings, expected {want}",
                            r.file, r.id
                        ));
                    }
                }
                Err(e) => report
                    .failures
                    .push(format!("{}: rule {}: {e}", r.file, r.id)),
            }
        }
    }
    Ok(report)
}
