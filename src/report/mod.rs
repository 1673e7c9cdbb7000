//! The HIPAA breach risk-assessment report: `phiwatch report DIR`.
//!
//! Reads `DIR/exposure/**/*.parquet` and `DIR/findings/**/*.parquet`, keeps the
//! rows in scope (principals, client IPs, time range), merges their distinct sets
//! (exact while every row is exact, else a DataSketches HLL union with 2-sigma
//! bounds), places patients by state through an optional patient directory, and
//! derives the notification obligations (45 CFR 164.404, 164.406, 164.408), the
//! four risk-assessment factors (164.402) and the containment steps.
//! [`run`] renders it as Markdown, JSON ([`Report`] serialized) or HTML.

mod directory;
mod html;
pub mod load;
mod markdown;
mod model;
mod notify;

pub use directory::Directory;
pub use model::{
    Containment, Credential, Factor, Factors, Notification, Obligation, Report, Scope, TimePoint,
};

use crate::exposure::{Estimate, ExposureRow, UnionCounter};
use crate::redact::Key;
use chrono::{DateTime, NaiveDate, Utc};
use datasketches::hll::HllSketch;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Errors producing a report. Messages never contain raw values from the data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading a file or folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A Parquet file could not be read or has the wrong columns.
    #[error("{path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The patient directory is malformed.
    #[error("patient directory {path} line {line}: {message}")]
    Directory {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong (no content).
        message: String,
    },
    /// Rows were hashed under a different key than the one loaded.
    #[error(
        "exposure rows were hashed with key {found}, but the loaded key is {expected}; set the same key"
    )]
    KeyMismatch {
        /// The loaded key's id.
        expected: String,
        /// The rows' key id.
        found: String,
    },
    /// A sketch column could not be decoded.
    #[error("{path}: invalid {column} sketch: {message}")]
    Sketch {
        /// The file (or `-`).
        path: PathBuf,
        /// The column.
        column: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// A time or date argument could not be parsed.
    #[error("{what}: expected {expected}")]
    BadTime {
        /// Which argument.
        what: &'static str,
        /// The accepted syntax.
        expected: &'static str,
    },
    /// The output folder does not exist.
    #[error("{0}: no such output folder")]
    NoDir(PathBuf),
}

/// Output format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Markdown, for people.
    #[default]
    Md,
    /// JSON with the CONTRACT.md top-level fields, for tools.
    Json,
    /// A standalone HTML page with an inline SVG chart, for the case file.
    Html,
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "md" | "markdown" => Ok(OutputFormat::Md),
            "json" => Ok(OutputFormat::Json),
            "html" => Ok(OutputFormat::Html),
            _ => Err(format!(
                "unknown report format {s:?}; known: md, json, html"
            )),
        }
    }
}

/// What to report on and how.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Keep rows of these principals only (all when empty).
    pub principals: Vec<String>,
    /// Keep rows of these client IPs only (all when empty).
    pub client_ips: Vec<String>,
    /// Keep activity at or after this time (µs since the epoch).
    pub from: Option<i64>,
    /// Keep activity before this time (µs since the epoch).
    pub to: Option<i64>,
    /// Patient directory CSV (`patient_id`, `state`).
    pub patient_directory: Option<PathBuf>,
    /// Date the breach was discovered (deadlines run from it).
    pub discovered: Option<NaiveDate>,
    /// Output format.
    pub format: OutputFormat,
}

/// Parse an RFC 3339 time (`--from`, `--to`) into µs since the epoch.
pub fn parse_time(text: &str, what: &'static str) -> Result<i64, Error> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc).timestamp_micros())
        .map_err(|_| Error::BadTime {
            what,
            expected: "an RFC 3339 time such as 2024-05-01T00:00:00Z",
        })
}

/// Parse a discovery date: `YYYY-MM-DD` or an RFC 3339 time (its UTC date).
pub fn parse_date(text: &str) -> Result<NaiveDate, Error> {
    let t = text.trim();
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .or_else(|_| DateTime::parse_from_rfc3339(t).map(|d| d.with_timezone(&Utc).date_naive()))
        .map_err(|_| Error::BadTime {
            what: "--discovered",
            expected: "a date such as 2024-05-01",
        })
}

/// Build the report for `dir` and render it in `opts.format`.
pub fn run(dir: &Path, opts: &ReportOptions, key: &Key) -> Result<String, Error> {
    let report = build(dir, opts, key)?;
    Ok(match opts.format {
        OutputFormat::Json => {
            serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
                + "\n"
        }
        OutputFormat::Md => markdown::render(&report),
        OutputFormat::Html => html::render(&report),
    })
}

fn in_scope_row(r: &ExposureRow, opts: &ReportOptions) -> bool {
    let who = opts.principals.is_empty()
        || r.principal
            .as_deref()
            .is_some_and(|p| opts.principals.iter().any(|q| q == p));
    let ip = opts.client_ips.is_empty()
        || r.client_ip
            .as_deref()
            .is_some_and(|p| opts.client_ips.iter().any(|q| q == p));
    let start = r.first_seen.unwrap_or(r.window_start);
    let end = r.last_seen.unwrap_or(r.window_end.saturating_sub(1));
    let after = opts.from.is_none_or(|f| end >= f);
    let before = opts.to.is_none_or(|t| start < t);
    who && ip && after && before
}

fn in_scope_finding(f: &load::FindingRow, opts: &ReportOptions) -> bool {
    let who = opts.principals.is_empty()
        || f.principal
            .as_deref()
            .is_some_and(|p| opts.principals.iter().any(|q| q == p));
    let ip = opts.client_ips.is_empty()
        || f.client_ip
            .as_deref()
            .is_some_and(|p| opts.client_ips.iter().any(|q| q == p));
    let t = f.time;
    let after = opts.from.is_none_or(|from| t.is_some_and(|t| t >= from));
    let before = opts.to.is_none_or(|to| t.is_some_and(|t| t < to));
    who && ip && after && before
}

/// Format µs since the epoch as RFC 3339 (UTC, seconds).
pub(crate) fn rfc3339(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| us.to_string())
}

fn sketch(bytes: &[u8], column: &'static str) -> Result<HllSketch, Error> {
    HllSketch::deserialize(bytes).map_err(|e| Error::Sketch {
        path: PathBuf::from("-"),
        column,
        message: e.to_string(),
    })
}

/// Build the report model without rendering it.
pub fn build(dir: &Path, opts: &ReportOptions, key: &Key) -> Result<Report, Error> {
    if !dir.is_dir() {
        return Err(Error::NoDir(dir.to_path_buf()));
    }
    let (rows, files) = load::exposure_rows(&dir.join("exposure"))?;
    let findings = load::finding_rows(&dir.join("findings"))?;
    if let Some(r) = rows.iter().find(|r| r.key_id != key.id()) {
        return Err(Error::KeyMismatch {
            expected: key.id().to_string(),
            found: r.key_id.clone(),
        });
    }
    let rows: Vec<&ExposureRow> = rows.iter().filter(|r| in_scope_row(r, opts)).collect();
    let findings: Vec<&load::FindingRow> = findings
        .iter()
        .filter(|f| in_scope_finding(f, opts))
        .collect();
    let lg_k = crate::exposure::distinct::MIN_LG_K;
    let mut patients = UnionCounter::new(lg_k);
    let mut records = UnionCounter::new(lg_k);
    let mut windows: BTreeMap<i64, (u64, UnionCounter)> = BTreeMap::new();
    let (mut requests, mut bytes_out) = (0u64, 0u64);
    let (mut first, mut last) = (None::<i64>, None::<i64>);
    let mut types = BTreeSet::new();
    let mut principals: BTreeMap<String, u64> = BTreeMap::new();
    let mut ips: BTreeMap<String, u64> = BTreeMap::new();
    let mut sources = BTreeSet::new();
    for r in &rows {
        let w = windows
            .entry(r.window_start)
            .or_insert_with(|| (0, UnionCounter::new(lg_k)));
        w.0 += r.requests;
        match &r.patient_hashes {
            Some(h) if r.patients_exact => {
                patients.add_hashes(h);
                w.1.add_hashes(h);
            }
            _ => {
                let s = sketch(&r.patients_sketch, "patients_sketch")?;
                patients.add_sketch(&s);
                w.1.add_sketch(&s);
            }
        }
        match &r.record_hashes {
            Some(h) if r.records_exact => records.add_hashes(h),
            _ => records.add_sketch(&sketch(&r.records_sketch, "records_sketch")?),
        }
        requests += r.requests;
        bytes_out += r.bytes_out;
        let (f, l) = (
            r.first_seen.unwrap_or(r.window_start),
            r.last_seen.unwrap_or(r.window_end),
        );
        first = Some(first.map_or(f, |x| x.min(f)));
        last = Some(last.map_or(l, |x| x.max(l)));
        types.extend(r.resource_types.iter().cloned());
        let p = r
            .principal
            .clone()
            .unwrap_or_else(|| String::from("(unknown)"));
        *principals.entry(p).or_default() += r.requests;
        if let Some(ip) = &r.client_ip {
            *ips.entry(ip.clone()).or_default() += r.requests;
        }
        sources.insert(r.source.clone());
    }
    let distinct_patients = patients.estimate();
    let (by_state, unmatched) = match &opts.patient_directory {
        None => (BTreeMap::new(), None),
        Some(path) => {
            let dir = Directory::load(path, key)?;
            let (s, u) = by_state(&dir, &patients, distinct_patients);
            (s, Some(u))
        }
    };
    let mut phi_kinds: BTreeMap<String, u64> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.category == "phi") {
        *phi_kinds.entry(f.kind.clone()).or_default() += 1;
    }
    let timeline = windows
        .into_iter()
        .map(|(start, (req, pc))| TimePoint {
            window_start: rfc3339(start),
            requests: req,
            distinct_patients: pc.estimate().value,
        })
        .collect();
    let scope = Scope {
        principals: opts.principals.clone(),
        client_ips: opts.client_ips.clone(),
        from: opts.from.map(rfc3339),
        to: opts.to.map(rfc3339),
        key_id: key.id().to_string(),
        exposure_files: files,
        rows: rows.len(),
        sources: sources.into_iter().collect(),
    };
    let mut report = Report {
        scope,
        distinct_patients,
        distinct_records: records.estimate(),
        by_state,
        directory_unmatched: unmatched,
        phi_kinds,
        first_seen: first.map(rfc3339),
        last_seen: last.map(rfc3339),
        requests,
        bytes_out,
        resource_types: types.into_iter().collect(),
        notification: Notification::default(),
        factors: Factors::default(),
        containment: Containment::default(),
        timeline,
        notes: Vec::new(),
    };
    report.containment = notify::containment(&principals, &ips, &findings);
    report.notification = notify::notification(&report, opts.discovered);
    report.factors = notify::factors(&report, &principals, &ips, opts.discovered, last);
    report.notes = notify::notes(&report, opts);
    Ok(report)
}

/// Distinct patients per state, and the patients the directory does not list.
fn by_state(
    dir: &Directory,
    patients: &UnionCounter,
    total: Estimate,
) -> (BTreeMap<String, Estimate>, Estimate) {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut unmatched = 0u64;
    for h in patients.exact_hashes() {
        match dir.state_of(h) {
            Some(s) => *counts.entry(s).or_default() += 1,
            None => unmatched += 1,
        }
    }
    if patients.is_exact() {
        let states = counts
            .into_iter()
            .map(|(s, n)| (s.to_string(), Estimate::exact(n)))
            .collect();
        return (states, Estimate::exact(unmatched));
    }
    // Sketched rows cannot be split by state: the known hashes give a lower bound,
    // the directory's residents (and the total's upper bound) an upper bound.
    let residents = dir.residents();
    let states = residents
        .iter()
        .map(|(s, n)| {
            let known = counts.get(s).copied().unwrap_or(0);
            let upper = (*n).min(total.upper).max(known);
            let e = Estimate {
                value: known,
                exact: false,
                lower: known,
                upper,
            };
            (s.to_string(), e)
        })
        .filter(|(_, e)| e.upper > 0)
        .collect();
    let u = Estimate {
        value: unmatched,
        exact: false,
        lower: unmatched,
        upper: total.upper,
    };
    (states, u)
}
