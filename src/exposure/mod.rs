//! Distinct patients and records exposed, per (principal, client_ip, source, window).
//!
//! The pipeline calls [`Accumulator::observe`] for every decoded event; blocks of a
//! file processed in parallel are combined with [`Accumulator::merge`]; the sink
//! writes [`Accumulator::to_record_batch`] to `DIR/exposure/*.parquet`. Each row
//! keeps an exact sorted set of keyed 64-bit hashes up to
//! [`ExposureConfig::exact_cap`] values, then an Apache DataSketches HLL sketch; the
//! sketch columns are always written, in the binary format the Java, C++ and Python
//! libraries read.

mod columns;
pub mod distinct;
mod extract;
mod fhir;

pub use columns::{ExposureRow, read_batch, schema};
pub use distinct::{Estimate, UnionCounter};
pub(crate) use extract::candidate;
pub use extract::{identifier_hash, patient_hash, principal, record_hash};

use crate::event::{Event, Provenance};
use crate::redact::Key;
use distinct::Distinct;
use extract::{Access, Paths};
use serde::Deserialize;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

/// Exposure counting settings (the `[exposure]` table of the config file).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExposureConfig {
    /// FHIR base paths; the segment after one is the resource type.
    pub fhir_base_paths: Vec<String>,
    /// Also recognise a FHIR path under any other prefix: the first path segment
    /// that is an R4 resource type name (capitalized, from a fixed list) starts the
    /// resource part. Servers are mounted under many bases (`/baseR4`,
    /// `/tenant/a/fhir`), and those names rarely occur in other APIs' paths.
    pub any_prefix: bool,
    /// Window length in milliseconds (hourly by default).
    pub window_ms: u64,
    /// Largest number of hashes a row keeps exactly before switching to a sketch.
    pub exact_cap: usize,
    /// HLL lgK, clamped to 12..=21.
    pub lg_k: u8,
}

impl Default for ExposureConfig {
    fn default() -> Self {
        ExposureConfig {
            fhir_base_paths: ["/fhir", "/fhir/r4", "/api/fhir", "/baseR4", "/r4"]
                .map(String::from)
                .to_vec(),
            any_prefix: true,
            window_ms: 3_600_000,
            exact_cap: 16_384,
            lg_k: 12,
        }
    }
}

/// The scope of one exposure row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct RowKey {
    principal: Option<String>,
    client_ip: Option<String>,
    source: Arc<str>,
    window_start: i64,
}

/// Counts of one row.
#[derive(Debug, Clone, Default)]
struct Row {
    requests: u64,
    bytes_out: u64,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    patients: Distinct,
    records: Distinct,
    types: Vec<&'static str>,
}

/// Exposure state of one file, block or partition: rows keyed by scope and window.
#[derive(Debug, Clone)]
pub struct Accumulator {
    paths: Paths,
    window_us: i64,
    exact_cap: usize,
    lg_k: u8,
    rows: HashMap<RowKey, Row, ahash::RandomState>,
    scratch: Access,
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new(cfg: &ExposureConfig) -> Accumulator {
        Accumulator {
            paths: Paths::new(&cfg.fhir_base_paths, cfg.any_prefix),
            window_us: (cfg.window_ms.max(1).min(i64::MAX as u64 / 1000) as i64) * 1000,
            exact_cap: cfg.exact_cap,
            lg_k: distinct::clamp_lg_k(cfg.lg_k),
            rows: HashMap::default(),
            scratch: Access::default(),
        }
    }

    /// Count one decoded event. Non-2xx responses, non-reads and paths that are not
    /// FHIR are skipped by a cheap check before anything is allocated. Events
    /// without a time fall in the window starting at the Unix epoch.
    pub fn observe(&mut self, event: &Event, prov: &Provenance, key: &Key) {
        if extract::candidate(event) {
            self.count(event, prov, key, principal(event, key).as_deref());
        }
    }

    /// [`Accumulator::observe`] with the event's principal already resolved
    /// (by [`principal`]), so a caller that needs it too resolves it once.
    pub fn observe_as(&mut self, event: &Event, prov: &Provenance, key: &Key, who: Option<&str>) {
        if extract::candidate(event) {
            self.count(event, prov, key, who);
        }
    }

    /// Count a candidate event (see [`extract::candidate`]).
    fn count(&mut self, event: &Event, prov: &Provenance, key: &Key, who: Option<&str>) {
        let mut access = std::mem::take(&mut self.scratch);
        if extract::extract(event, &self.paths, key, &mut access) {
            self.add(event, prov, &access, who);
        }
        self.scratch = access;
    }

    fn add(&mut self, event: &Event, prov: &Provenance, access: &Access, who: Option<&str>) {
        let time = event.time;
        let t = time.unwrap_or(0);
        let rk = RowKey {
            principal: who.map(str::to_owned),
            client_ip: event.client_ip.as_deref().map(str::to_owned),
            source: prov.source.clone(),
            window_start: t - t.rem_euclid(self.window_us),
        };
        let (cap, lg_k) = (self.exact_cap, self.lg_k);
        let bytes_out = event.bytes_out.unwrap_or(0);
        let row = match self.rows.entry(rk) {
            Entry::Occupied(e) => {
                let row = e.into_mut();
                row.requests += 1;
                row.bytes_out += bytes_out;
                if let Some(t) = time {
                    row.first_seen = Some(row.first_seen.map_or(t, |f| f.min(t)));
                    row.last_seen = Some(row.last_seen.map_or(t, |l| l.max(t)));
                }
                row
            }
            // A new row is written whole: counting into a default row just
            // written read it straight back, a load the stores could not
            // forward (a stall on every new row, and with many client
            // addresses most rows of a block are new).
            Entry::Vacant(e) => e.insert(Row {
                requests: 1,
                bytes_out,
                first_seen: time,
                last_seen: time,
                ..Row::default()
            }),
        };
        for h in &access.patients {
            row.patients.insert(*h, cap, lg_k);
        }
        for h in &access.records {
            row.records.insert(*h, cap, lg_k);
        }
        for t in &access.types {
            if !row.types.contains(t) {
                row.types.push(t);
            }
        }
    }

    /// Fold another accumulator (built with the same config) into this one.
    pub fn merge(&mut self, other: Accumulator) {
        let (cap, lg_k) = (self.exact_cap, self.lg_k);
        for (k, theirs) in other.rows {
            match self.rows.get_mut(&k) {
                None => {
                    self.rows.insert(k, theirs);
                }
                Some(mine) => {
                    mine.requests += theirs.requests;
                    mine.bytes_out += theirs.bytes_out;
                    mine.first_seen = min_opt(mine.first_seen, theirs.first_seen);
                    mine.last_seen = max_opt(mine.last_seen, theirs.last_seen);
                    mine.patients.merge(theirs.patients, cap, lg_k);
                    mine.records.merge(theirs.records, cap, lg_k);
                    for t in theirs.types {
                        if !mine.types.contains(&t) {
                            mine.types.push(t);
                        }
                    }
                }
            }
        }
    }

    /// Whether no PHI-bearing request was observed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of rows (scopes x windows).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The rows as a record batch with [`schema`], sorted by scope and window so
    /// the same input gives the same bytes.
    pub fn to_record_batch(
        &self,
        key_id: &str,
    ) -> Result<arrow::array::RecordBatch, arrow::error::ArrowError> {
        let mut keys: Vec<&RowKey> = self.rows.keys().collect();
        keys.sort();
        let mut out = columns::Builder::with_capacity(keys.len());
        for k in keys {
            let Some(r) = self.rows.get(k) else { continue };
            let mut types: Vec<&str> = r.types.clone();
            types.sort_unstable();
            out.push(&ExposureRow {
                principal: k.principal.clone(),
                client_ip: k.client_ip.clone(),
                source: k.source.to_string(),
                window_start: k.window_start,
                window_end: k.window_start.saturating_add(self.window_us),
                requests: r.requests,
                bytes_out: r.bytes_out,
                patients_count: r.patients.count(),
                records_count: r.records.count(),
                patients_exact: r.patients.is_exact(),
                records_exact: r.records.is_exact(),
                patient_hashes: r.patients.sorted_hashes(),
                record_hashes: r.records.sorted_hashes(),
                patients_sketch: r.patients.sketch_bytes(self.lg_k),
                records_sketch: r.records.sketch_bytes(self.lg_k),
                key_id: key_id.to_string(),
                first_seen: r.first_seen,
                last_seen: r.last_seen,
                resource_types: types.into_iter().map(String::from).collect(),
            });
        }
        out.finish()
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}
