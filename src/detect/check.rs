//! `phiwatch rules check [DIR]`: lint every rule and run its examples through the
//! full detector (decoding with text fallback, views, prefilter, validator, context).

use super::rule::{self, LoadedRule};
use super::{Detector, Error};
use crate::decode::{self, FileState, Mode};
use crate::event::Provenance;
use crate::redact::Key;
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// What `rules check` found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckReport {
    /// Rules checked.
    pub rules: usize,
    /// Examples run.
    pub examples: usize,
    /// Negative examples run.
    pub negative_examples: usize,
    /// One line per problem: file, rule id and what is wrong (example numbers, never text).
    pub failures: Vec<String>,
}

impl CheckReport {
    /// True when no rule failed.
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::detect::check::write_summary(
            f,
            &self.failures,
            [
                (self.rules, "rules"),
                (self.examples, "examples"),
                (self.negative_examples, "negative examples"),
            ],
        )
    }
}

/// The report text shared by pattern and anomaly rule checks: one `FAIL` line per
/// failure, then the counts and `ok` or the number of failures.
pub(crate) fn write_summary(
    f: &mut fmt::Formatter<'_>,
    failures: &[String],
    counts: [(usize, &str); 3],
) -> fmt::Result {
    for line in failures {
        writeln!(f, "FAIL {line}")?;
    }
    let [(a, an), (b, bn), (c, cn)] = counts;
    write!(f, "{a} {an}, {b} {bn}, {c} {cn}: ")?;
    if failures.is_empty() {
        write!(f, "ok")
    } else {
        write!(f, "{} failures", failures.len())
    }
}

/// Kinds found in one line by the full detector.
fn kinds_in(detector: &Detector, line: &str) -> HashSet<String> {
    let mut events = Vec::new();
    let mut state = FileState::default();
    let mut found = Vec::new();
    let prov = Provenance::file_line(Arc::from("rules-check"), 1);
    if let Ok(format) = decode::decode_record(
        line.as_bytes(),
        Mode::AutoTextFallback,
        &mut state,
        &mut events,
    ) {
        for (i, ev) in events.iter().enumerate() {
            let prov = Provenance {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                ..prov.clone()
            };
            detector.scan(ev, &prov, format, &mut found);
        }
    }
    found.into_iter().map(|f| f.kind.to_string()).collect()
}

/// Check the built-in rules, or, with `dir`, the built-in rules with `dir`'s rules
/// added or replacing them by id. A file that cannot be read or parsed is an
/// `Err`; every other problem is a failure line in the report.
pub fn check_rules(dir: Option<&Path>) -> Result<CheckReport, Error> {
    let mut rules = rule::builtin()?;
    if let Some(d) = dir {
        let extra = rule::from_dir(d)?;
        for r in extra {
            match rules.iter().position(|x| x.spec.id == r.spec.id) {
                Some(p) => rules[p] = r,
                None => rules.push(r),
            }
        }
    }
    let mut report = CheckReport {
        rules: rules.len(),
        ..CheckReport::default()
    };
    let mut good: Vec<LoadedRule> = Vec::new();
    for r in &rules {
        match rule::lint(&r.file, &r.spec) {
            Ok(()) => good.push(r.clone()),
            Err(e) => report.failures.push(e.to_string()),
        }
    }
    let key = Key::from_bytes(b"phiwatch rules check key");
    let detector = Detector::from_rules(key, &good)?;
    for r in &good {
        let s = &r.spec;
        for (i, ex) in s.examples.iter().enumerate() {
            report.examples += 1;
            if !kinds_in(&detector, ex).contains(&s.kind) {
                report.failures.push(format!(
                    "{}: rule {}: example {} yields no {} finding",
                    r.file,
                    s.id,
                    i + 1,
                    s.kind
                ));
            }
        }
        for (i, ex) in s.negative_examples.iter().enumerate() {
            report.negative_examples += 1;
            if kinds_in(&detector, ex).contains(&s.kind) {
                report.failures.push(format!(
                    "{}: rule {}: negative example {} yields a {} finding",
                    r.file,
                    s.id,
                    i + 1,
                    s.kind
                ));
            }
        }
    }
    Ok(report)
}
