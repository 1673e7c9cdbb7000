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
//!         path: Some(format!("/fhir/Patient/{}", 100_200 + i).into()),
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
mod reorder;
pub mod rule;
mod state;
mod volume;

pub(crate) use access::reset_interner;
pub use access::{Access, Credential, Flagged, Object, USE_LOCATIONS};
pub use check::{SequenceReport, check_sequences, check_sequences_in, run_sequence};
pub use rule::AnomalyRule;
/// The compact string type of [`Access`]'s text fields.
pub use smol_str::SmolStr;

use crate::finding::Finding;
use crate::redact::Key;
use eval::{Compiled, Ctx, Slot};
use reorder::{ReorderQueue, Stream};
use serde::Deserialize;
use state::Bounded;
use std::cmp::Ordering;
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
    /// At least 1 and at most 2^30 (larger values are lowered to that).
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
/// arrival). The ordering key is kept inline and packed into 64 bytes
/// (heap moves and comparisons touch little memory); the access itself waits
/// in a slot of the detector.
#[derive(Debug)]
struct Pending {
    time: i64,
    source: Arc<str>,
    /// The provenance's line, or 0 (see `has`).
    line: u64,
    /// The provenance's Kafka offset, or 0 (see `has`).
    kafka_offset: i64,
    /// The provenance's Kafka partition, or 0 (see `has`).
    kafka_partition: i32,
    index: u32,
    seq: u64,
    slot: u32,
    /// Which of line, partition and offset are set (`HAS_*`).
    has: u8,
}

const HAS_LINE: u8 = 1;
const HAS_PARTITION: u8 = 2;
const HAS_OFFSET: u8 = 4;

impl Pending {
    fn new(
        time: i64,
        prov: &crate::event::Provenance,
        source: Arc<str>,
        seq: u64,
        slot: u32,
    ) -> Pending {
        let bit = |set: bool, b: u8| if set { b } else { 0 };
        let has = bit(prov.line.is_some(), HAS_LINE)
            | bit(prov.kafka_partition.is_some(), HAS_PARTITION)
            | bit(prov.kafka_offset.is_some(), HAS_OFFSET);
        Pending {
            time,
            source,
            line: prov.line.unwrap_or(0),
            kafka_offset: prov.kafka_offset.unwrap_or(0),
            kafka_partition: prov.kafka_partition.unwrap_or(0),
            index: prov.index,
            seq,
            slot,
            has,
        }
    }

    /// Whether `bit` is set, as an ordering key (unset sorts first, like `None`).
    #[inline]
    fn has(&self, bit: u8) -> bool {
        self.has & bit != 0
    }

    /// (time, source, line, partition, offset, index, arrival), with an unset
    /// provenance field before any set one.
    #[inline]
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
            .then_with(|| (self.has(HAS_LINE), self.line).cmp(&(o.has(HAS_LINE), o.line)))
            .then_with(|| {
                (self.has(HAS_PARTITION), self.kafka_partition)
                    .cmp(&(o.has(HAS_PARTITION), o.kafka_partition))
            })
            .then_with(|| {
                (self.has(HAS_OFFSET), self.kafka_offset).cmp(&(o.has(HAS_OFFSET), o.kafka_offset))
            })
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
    #[inline]
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    #[inline]
    fn cmp(&self, o: &Self) -> Ordering {
        self.order(o)
    }
}

/// Most reorder-buffer slots reserved before the first access (about 38 MB of
/// address space, touched only as slots fill).
const SLOTS_UP_FRONT: usize = 1 << 17;

/// The anomaly detector: one per stream (a replay's inputs in order, or a Kafka
/// consumer), fed [`Access`]es with [`Detector::observe`].
#[derive(Debug)]
pub struct Detector {
    rules: Vec<Compiled>,
    key: Key,
    cfg: AnomalyConfig,
    state: Bounded<Slot>,
    buffer: ReorderQueue<Pending>,
    /// Accesses waiting in the buffer, by [`Pending::slot`]; `free` lists empty slots.
    slots: Vec<Option<Access>>,
    free: Vec<usize>,
    max_time: Option<i64>,
    start: Option<i64>,
    seq: u64,
    late: u64,
    forced: u64,
    /// The source of the last access as it came, and the copy ordering keys
    /// hold for that name: keys of one source compare by pointer (a replay
    /// hands each block its own copy of the input's name).
    last_source: Option<(Arc<str>, Arc<str>)>,
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
            // Slot numbers are u32 (a buffer that large would not fit in memory).
            cfg: AnomalyConfig {
                max_buffered: cfg.max_buffered.clamp(1, 1 << 30),
                ..cfg.clone()
            },
            state: Bounded::new(cfg.max_keys.max(2)),
            buffer: ReorderQueue::default(),
            slots: Vec::new(),
            free: Vec::new(),
            max_time: None,
            start: None,
            seq: 0,
            late: 0,
            forced: 0,
            last_source: None,
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

    /// [`Detector::observe`] each access of `accesses`, in order, leaving it empty
    /// (each access moves once, into its slot).
    pub fn observe_all(&mut self, accesses: &mut Vec<Access>, out: &mut Vec<Finding>) {
        for a in accesses.drain(..) {
            self.observe(a, out);
        }
    }

    /// The copy of `source` ordering keys hold: the one the last access used
    /// when it is the same name.
    fn canonical_source(&mut self, source: &Arc<str>) -> Arc<str> {
        if let Some((seen, canon)) = &self.last_source {
            if Arc::ptr_eq(seen, source) || Arc::ptr_eq(canon, source) {
                return canon.clone();
            }
            if **canon == **source {
                let canon = canon.clone();
                self.last_source = Some((source.clone(), canon.clone()));
                return canon;
            }
        }
        self.last_source = Some((source.clone(), source.clone()));
        source.clone()
    }

    /// Take one access; findings of accesses the watermark releases go to `out`.
    /// An access without a time is placed at the largest time seen.
    #[inline]
    pub fn observe(&mut self, a: Access, out: &mut Vec<Finding>) {
        let mut time = a.time.or(self.max_time).unwrap_or(0);
        let mut stream = Stream::InTime;
        if let Some(w) = self.watermark()
            && time < w
        {
            self.late += 1;
            time = w;
            stream = Stream::Pinned;
        }
        self.max_time = Some(self.max_time.map_or(time, |m| m.max(time)));
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.slots.capacity() == 0 {
                    // Room for a full buffer up front (bounded: the cap may be
                    // configured far larger than any stream needs): growing
                    // by doubling copied every waiting access each time.
                    self.slots
                        .reserve_exact((self.cfg.max_buffered + 1).min(SLOTS_UP_FRONT));
                }
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let source = self.canonical_source(&a.prov.source);
        // At most `max_buffered` + 1 slots (clamped to 2^30 in `new`).
        debug_assert!(u32::try_from(slot).is_ok());
        let pending = Pending::new(time, &a.prov, source, self.seq, slot as u32);
        self.slots[slot] = Some(a);
        self.buffer.push(pending, stream);
        let w = self.watermark().unwrap_or(i64::MIN);
        while let Some(top) = self.buffer.peek() {
            let over = self.buffer.len() > self.cfg.max_buffered;
            if top.time >= w && !over {
                break;
            }
            if top.time >= w {
                self.forced += 1;
            }
            if let Some(p) = self.buffer.pop() {
                self.process(p, out);
            }
        }
    }

    /// Process every buffered access (end of input, shutdown, partition revoke).
    /// Findings are emitted when an episode opens, so nothing else is pending.
    pub fn finish(&mut self, out: &mut Vec<Finding>) {
        while let Some(p) = self.buffer.pop() {
            self.process(p, out);
        }
        self.buffer.release();
        // The slots held up to `max_buffered` accesses: give the memory back.
        self.slots = Vec::new();
        self.free = Vec::new();
    }

    fn process(&mut self, p: Pending, out: &mut Vec<Finding>) {
        // Evaluated where it waits, then dropped in place (no copy of the access).
        let Some(slot) = self.slots.get_mut(p.slot as usize) else {
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
        self.free.push(p.slot as usize);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Provenance;
    use proptest::prelude::*;

    fn prov(
        source: &str,
        line: Option<u64>,
        part: Option<i32>,
        off: Option<i64>,
        index: u32,
    ) -> Provenance {
        Provenance {
            source: Arc::from(source),
            line,
            kafka_partition: part,
            kafka_offset: off,
            index,
        }
    }

    proptest! {
        /// The packed key orders exactly like (time, source, line, partition,
        /// offset, index, arrival) with `None` before any value.
        #[test]
        fn packed_order_is_the_provenance_order(
            a in (0i64..3, "[ab]", any::<Option<u64>>(), any::<Option<i32>>(), any::<Option<i64>>(), 0u32..2),
            b in (0i64..3, "[ab]", any::<Option<u64>>(), any::<Option<i32>>(), any::<Option<i64>>(), 0u32..2),
        ) {
            let pa = prov(&a.1, a.2, a.3, a.4, a.5);
            let pb = prov(&b.1, b.2, b.3, b.4, b.5);
            let want = (a.0, &a.1, a.2, a.3, a.4, a.5, 1u64).cmp(&(b.0, &b.1, b.2, b.3, b.4, b.5, 2u64));
            let got = Pending::new(a.0, &pa, pa.source.clone(), 1, 0)
                .order(&Pending::new(b.0, &pb, pb.source.clone(), 2, 1));
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn one_copy_of_each_source_name_while_it_repeats() {
        let key = Key::from_bytes(b"a test key of 16+ bytes");
        let mut det = Detector::builtin(&key).expect("built-in rules");
        // Blocks of one input each bring their own copy of its name.
        let (a1, a2, b) = (
            Arc::<str>::from("a.log"),
            Arc::<str>::from("a.log"),
            Arc::<str>::from("b.log"),
        );
        let first = det.canonical_source(&a1);
        assert!(Arc::ptr_eq(&first, &a1));
        let again = det.canonical_source(&a2);
        assert!(
            Arc::ptr_eq(&again, &a1),
            "same name, other copy: the first copy"
        );
        assert!(Arc::ptr_eq(&det.canonical_source(&a2), &a1));
        let other = det.canonical_source(&b);
        assert_eq!(&*other, "b.log");
        assert!(Arc::ptr_eq(&other, &b));
        // After another name, a name starts a copy of its own again: still equal text.
        let back = det.canonical_source(&a2);
        assert_eq!(&*back, "a.log");
        assert!(Arc::ptr_eq(&det.canonical_source(&a1), &back));
    }

    #[test]
    fn unset_provenance_fields_sort_first() {
        let pending = |p: Provenance, seq, slot| Pending::new(5, &p, p.source.clone(), seq, slot);
        let none = pending(prov("t", None, None, None, 0), 9, 0);
        let zero = pending(prov("t", Some(0), None, None, 0), 1, 1);
        assert_eq!(none.order(&zero), Ordering::Less);
        let kafka = pending(prov("t", None, Some(0), Some(0), 0), 1, 2);
        assert_eq!(none.order(&kafka), Ordering::Less);
        assert_eq!(kafka.order(&zero), Ordering::Less);
    }
}
