//! Anomaly rules: patterns that show only across events, evaluated in event time.
//!
//! A leaked key walking `Patient/100234`, `/100235`, `/100236` ... (BOLA / IDOR
//! enumeration), a scanner spraying API keys, a host posting identifiers to a
//! paste site: each request alone looks ordinary. The rules here keep a little
//! state per key (principal, client IP, route, destination, credential) and
//! report one finding per (rule, key, episode), category `anomaly`, OCSF 2004.
//!
//! * Rules are data: `rules/anomaly/*.yaml` (embedded at build time), the same
//!   file family as the pattern rules, with a `params:` block. Their examples are
//!   sequence files in `fixtures/anomaly/` run by [`check_sequences`].
//! * Event time with a watermark: accesses are buffered and released in
//!   (time, provenance) order once the watermark (largest time seen minus
//!   [`AnomalyConfig::tolerance_ms`]) has passed them, so any arrival order
//!   within the tolerance gives the same findings. An access later than that is
//!   counted ([`Detector::late`]) and processed at the watermark's time.
//! * Bounded state: all rules share one map capped at [`AnomalyConfig::max_keys`]
//!   keys; keys dropped to stay within it are counted ([`Detector::evictions`]).
//!   The reorder buffer is capped at [`AnomalyConfig::max_buffered`] accesses.
//! * State keys are in-memory hashes under a per-process random key; findings
//!   carry keyed HMACs and masks only.
//!
//! ```
//! use phiwatch::anomaly::{Access, Detector};
//! use phiwatch::decode::Format;
//! use phiwatch::event::{Event, Provenance};
//! use phiwatch::redact::Key;
//! use std::sync::Arc;
//!
//! let key = Key::from_bytes(b"an example key, 16+ bytes");
//! let mut det = Detector::builtin(&key).expect("built-in rules load");
//! let mut findings = Vec::new();
//! for i in 0..30u64 {
//!     let ev = Event {
//!         time: Some(1_700_000_000_000_000 + i as i64 * 2_000_000),
//!         principal: Some("svc-report".into()),
//!         client_ip: Some("198.51.100.7".into()),
//!         method: Some("GET".into()),
//!         path: Some(format!("/fhir/Patient/{}", 100_200 + i)),
//!         status: Some(if i % 7 == 3 { 404 } else { 200 }),
//!         ..Event::default()
//!     };
//!     let prov = Provenance::file_line(Arc::from("gateway.log"), i + 1);
//!     let a = Access::from_event(&ev, &prov, Format::GenericJson, &[], &key);
//!     det.observe(a, &mut findings);
//! }
//! det.finish(&mut findings);
//! assert_eq!(findings.iter().filter(|f| &*f.kind == "enumeration").count(), 1);
//! ```

mod access;
mod burst;
mod check;
mod credential;
mod enumeration;
mod eval;
mod exfil;
mod first_seen;
mod params;
mod patients;
pub mod rule;
mod state;
mod volume;

pub use access::{Access, Credential, Object, USE_LOCATIONS};
pub use check::{SequenceReport, check_sequences, check_sequences_in, run_sequence};
pub use rule::AnomalyRule;

use crate::finding::Finding;
use crate::redact::Key;
use eval::{Compiled, Ctx, Slot};
use serde::Deserialize;
use state::Bounded;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

/// Errors loading anomaly rules or their sequences.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule file could not be read or parsed.
    #[error("rule file {file}: {message}")]
    Rule {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A rule is malformed.
    #[error("rule file {file}: rule {id}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The rule id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// The pattern detector used to run sequences could not be built.
    #[error("pattern rules: {0}")]
    Pattern(String),
}

/// Anomaly settings (the `[anomaly]` table of the config file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Out-of-order tolerance: accesses are held until the largest event time
    /// seen is this far past them.
    pub tolerance_ms: u64,
    /// Cap on keys tracked by all rules together.
    pub max_keys: usize,
    /// Cap on accesses held for reordering; past it the oldest is released early.
    pub max_buffered: usize,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig {
            tolerance_ms: 60_000,
            max_keys: 1_000_000,
            max_buffered: 65_536,
        }
    }
}

/// An access waiting in the reorder buffer, ordered by (time, provenance,
/// arrival). The ordering key is kept inline (heap moves and comparisons stay
/// in a few cache lines); the access itself waits in a slot of the detector.
#[derive(Debug)]
struct Pending {
    time: i64,
    source: Arc<str>,
    line: Option<u64>,
    kafka_partition: Option<i32>,
    kafka_offset: Option<i64>,
    index: u32,
    seq: u64,
    slot: usize,
}

impl Pending {
    fn order(&self, o: &Pending) -> Ordering {
        self.time
            .cmp(&o.time)
            .then_with(|| {
                if Arc::ptr_eq(&self.source, &o.source) {
                    Ordering::Equal
                } else {
                    self.source.cmp(&o.source)
                }
            })
            .then_with(|| self.line.cmp(&o.line))
            .then_with(|| self.kafka_partition.cmp(&o.kafka_partition))
            .then_with(|| self.kafka_offset.cmp(&o.kafka_offset))
            .then_with(|| self.index.cmp(&o.index))
            .then_with(|| self.seq.cmp(&o.seq))
    }
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.order(o) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> Ordering {
        self.order(o)
    }
}

/// The anomaly detector: one per stream (a replay's inputs in order, or a Kafka
/// consumer), fed [`Access`]es with [`Detector::observe`].
#[derive(Debug)]
pub struct Detector {
    rules: Vec<Compiled>,
    key: Key,
    cfg: AnomalyConfig,
    state: Bounded<Slot>,
    buffer: BinaryHeap<Reverse<Pending>>,
    /// Accesses waiting in the buffer, by [`Pending::slot`]; `free` lists empty slots.
    slots: Vec<Option<Access>>,
    free: Vec<usize>,
    max_time: Option<i64>,
    start: Option<i64>,
    seq: u64,
    late: u64,
    forced: u64,
}

impl Detector {
    /// A detector over these rules; a malformed rule is an error.
    pub fn new(rules: &[AnomalyRule], cfg: &AnomalyConfig, key: &Key) -> Result<Detector, Error> {
        let mut compiled = Vec::with_capacity(rules.len());
        for r in rules {
            let (severity, params) = r.compile()?;
            compiled.push(Compiled {
                id: Arc::from(r.id.as_str()),
                kind: Arc::from(r.kind.as_str()),
                severity,
                confidence: r.confidence,
                params,
            });
        }
        Ok(Detector {
            rules: compiled,
            key: key.clone(),
            cfg: cfg.clone(),
            state: Bounded::new(cfg.max_keys.max(2)),
            buffer: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            max_time: None,
            start: None,
            seq: 0,
            late: 0,
            forced: 0,
        })
    }

    /// A detector over the built-in rules with the default settings.
    pub fn builtin(key: &Key) -> Result<Detector, Error> {
        Detector::new(&rule::builtin()?, &AnomalyConfig::default(), key)
    }

    /// The built-in rules plus those of `dir` (see [`rule::load_all`]).
    pub fn load(
        key: &Key,
        cfg: &AnomalyConfig,
        dir: Option<&std::path::Path>,
    ) -> Result<Detector, Error> {
        Detector::new(&rule::load_all(dir)?, cfg, key)
    }

    /// Number of rules.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    fn watermark(&self) -> Option<i64> {
        let tol = eval::us(self.cfg.tolerance_ms);
        self.max_time.map(|m| m.saturating_sub(tol))
    }

    /// Take one access; findings of accesses the watermark releases go to `out`.
    /// An access without a time is placed at the largest time seen.
    pub fn observe(&mut self, a: Access, out: &mut Vec<Finding>) {
        let mut time = a.time.or(self.max_time).unwrap_or(0);
        if let Some(w) = self.watermark()
            && time < w
        {
            self.late += 1;
            time = w;
        }
        self.max_time = Some(self.max_time.map_or(time, |m| m.max(time)));
        self.seq += 1;
        let pending = Pending {
            time,
            source: a.prov.source.clone(),
            line: a.prov.line,
            kafka_partition: a.prov.kafka_partition,
            kafka_offset: a.prov.kafka_offset,
            index: a.prov.index,
            seq: self.seq,
            slot: match self.free.pop() {
                Some(i) => i,
                None => {
                    self.slots.push(None);
                    self.slots.len() - 1
                }
            },
        };
        self.slots[pending.slot] = Some(a);
        self.buffer.push(Reverse(pending));
        let w = self.watermark().unwrap_or(i64::MIN);
        while let Some(Reverse(top)) = self.buffer.peek() {
            let over = self.buffer.len() > self.cfg.max_buffered.max(1);
            if top.time >= w && !over {
                break;
            }
            if top.time >= w {
                self.forced += 1;
            }
            if let Some(Reverse(p)) = self.buffer.pop() {
                self.process(p, out);
            }
        }
    }

    /// Process every buffered access (end of input, shutdown, partition revoke).
    /// Findings are emitted when an episode opens, so nothing else is pending.
    pub fn finish(&mut self, out: &mut Vec<Finding>) {
        while let Some(Reverse(p)) = self.buffer.pop() {
            self.process(p, out);
        }
        // The slots held up to `max_buffered` accesses: give the memory back.
        self.slots = Vec::new();
        self.free = Vec::new();
    }

    fn process(&mut self, p: Pending, out: &mut Vec<Finding>) {
        // Evaluated where it waits, then dropped in place (no copy of the access).
        let Some(slot) = self.slots.get_mut(p.slot) else {
            return;
        };
        let Some(access) = slot.as_ref() else {
            return;
        };
        let start = *self.start.get_or_insert(p.time);
        let mut cx = Ctx {
            state: &mut self.state,
            key: &self.key,
            out,
            start,
            now: p.time,
        };
        eval::observe(&self.rules, access, &mut cx);
        *slot = None;
        self.free.push(p.slot);
    }

    /// Keys dropped to stay within [`AnomalyConfig::max_keys`].
    pub fn evictions(&self) -> u64 {
        self.state.evictions()
    }

    /// Accesses that arrived later than the out-of-order tolerance.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Accesses released before the watermark because the buffer was full.
    pub fn forced_releases(&self) -> u64 {
        self.forced
    }

    /// Keys tracked now (at most [`AnomalyConfig::max_keys`]).
    pub fn tracked_keys(&self) -> usize {
        self.state.len()
    }

    /// Accesses waiting in the reorder buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Approximate bytes of rule state: hash-table slots plus what the states own
    /// (not the reorder buffer). Walks every key: for metrics, not per event.
    pub fn state_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, Slot)>() + 1;
        self.state.capacity() * slot + self.state.values().map(Slot::heap_bytes).sum::<usize>()
    }
}
