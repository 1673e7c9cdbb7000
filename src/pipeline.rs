//! The engine shared by `replay` and `run`: one record in, findings, dead letters
//! and exposure counts out. Everything between source and sink lives here, so a
//! replay of the same records gives the same findings as streaming did.

use crate::anomaly::Access;
use crate::decode::{self, FileState, Format, Mode};
use crate::detect::Detector;
use crate::event::{Event, Provenance};
use crate::exposure::{self, Accumulator, ExposureConfig};
use crate::finding::Finding;
use crate::sink::dead_letter::{self, DeadLetter};
use std::collections::BTreeMap;

/// Default cap on one record: longer records are dead-lettered.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// Records decoded together before their events are scanned (see
/// [`Engine::process_lines`]).
const BATCH_RECORDS: usize = 256;

/// Counters of one run (or one block of it); merged with [`Stats::merge`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records (lines, Kafka messages) seen, dead letters included.
    pub records: u64,
    /// Bytes of records seen (uncompressed).
    pub bytes: u64,
    /// Events decoded, by format name.
    pub events_by_format: BTreeMap<&'static str, u64>,
    /// Findings, by kind.
    pub findings_by_kind: BTreeMap<String, u64>,
    /// Records dead-lettered.
    pub dead_letters: u64,
}

impl Stats {
    /// Add another set of counters to this one.
    pub fn merge(&mut self, other: &Stats) {
        self.records += other.records;
        self.bytes += other.bytes;
        self.dead_letters += other.dead_letters;
        for (k, v) in &other.events_by_format {
            *self.events_by_format.entry(k).or_default() += v;
        }
        for (k, v) in &other.findings_by_kind {
            *self.findings_by_kind.entry(k.clone()).or_default() += v;
        }
    }

    /// Events decoded, all formats.
    pub fn events(&self) -> u64 {
        self.events_by_format.values().sum()
    }

    /// Count `findings` by kind.
    pub fn count_findings(&mut self, findings: &[Finding]) {
        for f in findings {
            match self.findings_by_kind.get_mut(&*f.kind) {
                Some(n) => *n += 1,
                None => {
                    self.findings_by_kind.insert(f.kind.to_string(), 1);
                }
            }
        }
    }

    /// Findings, all kinds.
    pub fn findings(&self) -> u64 {
        self.findings_by_kind.values().sum()
    }
}

/// What a run of records produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Findings, in record order.
    pub findings: Vec<Finding>,
    /// Records that could not be decoded.
    pub dead_letters: Vec<DeadLetter>,
    /// Counters.
    pub stats: Stats,
    /// Distinct patients and records exposed, when counted.
    pub exposure: Option<Accumulator>,
    /// Compact accesses for the anomaly rules, in record order, when collected.
    pub accesses: Option<Vec<Access>>,
}

/// Settings of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How to pick a decoder.
    pub mode: Mode,
    /// Records longer than this are dead-lettered.
    pub max_record_bytes: usize,
    /// Exposure counting (FHIR base paths, window, exact cap, sketch size).
    pub exposure: ExposureConfig,
    /// Collect accesses for the anomaly rules.
    pub anomaly: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            mode: Mode::Auto,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            exposure: ExposureConfig::default(),
            anomaly: true,
        }
    }
}

/// Decode -> detect for one record at a time. Shared read-only across threads.
#[derive(Debug)]
pub struct Engine {
    detector: Detector,
    options: EngineOptions,
}

/// Per-source scratch state: decoder state and a reusable event buffer.
#[derive(Debug, Default, Clone)]
pub struct SourceState {
    /// Decoder state (header lines that change later lines).
    pub decode: FileState,
    /// Reused for each record's events (emptied between records).
    events: Vec<Event<'static>>,
    /// Reused for the records of a batch.
    spans: Vec<Span>,
    /// Reused for where each event's findings end.
    ends: Vec<usize>,
}

impl SourceState {
    /// Scratch state that starts from a decoder state.
    pub fn new(decode: FileState) -> Self {
        SourceState {
            decode,
            ..SourceState::default()
        }
    }
}

impl Engine {
    /// An engine around a detector.
    pub fn new(detector: Detector, options: EngineOptions) -> Self {
        Engine { detector, options }
    }

    /// The detector.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The engine's settings.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// An empty output that also counts exposure and, when the anomaly rules are
    /// on, collects accesses for them.
    pub fn output(&self) -> Output {
        Output {
            exposure: Some(Accumulator::new(&self.options.exposure)),
            accesses: self.options.anomaly.then(Vec::new),
            ..Output::default()
        }
    }

    /// Decoder state after the first record of a source, so that blocks decoded
    /// in parallel see a header line (such as a VPC Flow Logs field list).
    pub fn prime(&self, first_record: &[u8]) -> FileState {
        let mut state = FileState::default();
        let mut events = Vec::new();
        if first_record.len() <= self.options.max_record_bytes {
            let _ = decode::decode_record(first_record, self.options.mode, &mut state, &mut events);
        }
        state
    }

    /// Record a dead letter for a record too long to buffer.
    pub fn oversize(&self, prov: &Provenance, length: u64, out: &mut Output) {
        out.stats.records += 1;
        out.stats.bytes += length;
        self.dead(
            prov,
            length,
            format!(
                "record of {length} bytes exceeds the {}-byte record cap",
                self.options.max_record_bytes
            ),
            b"",
            out,
        );
    }

    fn dead(&self, prov: &Provenance, length: u64, reason: String, rec: &[u8], out: &mut Output) {
        out.stats.dead_letters += 1;
        out.dead_letters.push(DeadLetter {
            source: prov.source.clone(),
            source_line: prov.line,
            kafka_partition: prov.kafka_partition,
            kafka_offset: prov.kafka_offset,
            length,
            reason,
            preview: dead_letter::preview(rec),
        });
    }

    /// Decode one record and scan its events. Blank records are skipped; a
    /// record that cannot be decoded becomes a dead letter.
    pub fn process_record(
        &self,
        record: &[u8],
        prov: &Provenance,
        state: &mut SourceState,
        out: &mut Output,
    ) {
        self.process_record_as(record, prov, self.options.mode, state, out);
    }

    /// [`Engine::process_record`] with a decoder mode of its own (a format pinned
    /// to one Kafka topic, say).
    pub fn process_record_as(
        &self,
        record: &[u8],
        prov: &Provenance,
        mode: Mode,
        state: &mut SourceState,
        out: &mut Output,
    ) {
        if !self.admit(record, prov, out) {
            return;
        }
        let mut events: Vec<Event<'_>> = std::mem::take(&mut state.events);
        match decode::decode_record(record, mode, &mut state.decode, &mut events) {
            Ok(format) => {
                let span = Span {
                    line: prov.line,
                    format,
                    end: events.len(),
                };
                let mut prov = prov.clone();
                self.scan_batch(&events, &[span], &mut prov, &mut state.ends, out);
            }
            Err(e) => self.dead(prov, record.len() as u64, e.to_string(), record, out),
        }
        state.events = Event::recycle(events);
    }

    /// [`Engine::process_record`] for each `(line, record)` of one source, in
    /// order, with `prov` (its line set to each record's). Records are taken a
    /// batch at a time, and each stage (decoding, detection, then exposure and
    /// the anomaly rules) runs over the whole batch before the next: one record
    /// at a time ran through more code than the instruction cache holds, and
    /// fetched most of it again for the next record. Findings, dead letters,
    /// counts, exposure and accesses come out as they do record by record.
    pub fn process_lines<'a>(
        &self,
        lines: impl Iterator<Item = (u64, &'a [u8])>,
        prov: &mut Provenance,
        state: &mut SourceState,
        out: &mut Output,
    ) {
        let mode = self.options.mode;
        let mut events: Vec<Event<'a>> = std::mem::take(&mut state.events);
        let mut spans = std::mem::take(&mut state.spans);
        let mut lines = lines.peekable();
        while lines.peek().is_some() {
            events.clear();
            spans.clear();
            for (line, record) in lines.by_ref().take(BATCH_RECORDS) {
                prov.line = Some(line);
                if !self.admit(record, prov, out) {
                    continue;
                }
                // On error the record's events (a batch's first elements) are
                // already dropped again.
                match decode::decode_record(record, mode, &mut state.decode, &mut events) {
                    Ok(format) => spans.push(Span {
                        line: Some(line),
                        format,
                        end: events.len(),
                    }),
                    Err(e) => self.dead(prov, record.len() as u64, e.to_string(), record, out),
                }
            }
            self.scan_batch(&events, &spans, prov, &mut state.ends, out);
        }
        state.spans = spans;
        state.events = Event::recycle(events);
    }

    /// Count a record and check its size: false (after a dead letter for an
    /// oversized one) when it is not to be decoded. Blank records are skipped.
    fn admit(&self, record: &[u8], prov: &Provenance, out: &mut Output) -> bool {
        if record.iter().all(u8::is_ascii_whitespace) {
            return false;
        }
        out.stats.records += 1;
        out.stats.bytes += record.len() as u64;
        if record.len() > self.options.max_record_bytes {
            self.dead(
                prov,
                record.len() as u64,
                format!(
                    "record of {} bytes exceeds the {}-byte record cap",
                    record.len(),
                    self.options.max_record_bytes
                ),
                record,
                out,
            );
            return false;
        }
        true
    }

    /// Detection over every event of a batch of decoded records, then, event by
    /// event, the principal, exposure and the access for the anomaly rules.
    /// `ends` is scratch space (where each event's findings end).
    fn scan_batch(
        &self,
        events: &[Event],
        spans: &[Span],
        prov: &mut Provenance,
        ends: &mut Vec<usize>,
        out: &mut Output,
    ) {
        let first = out.findings.len();
        ends.clear();
        for (span, evs) in records(events, spans) {
            prov.line = span.line;
            for (i, ev) in evs.iter().enumerate() {
                prov.index = event_index(i);
                self.detector.scan(ev, prov, span.format, &mut out.findings);
                ends.push(out.findings.len());
            }
        }
        let key = self.detector.key();
        let (mut before, mut ends) = (first, ends.iter());
        // Counted per format index here and added to the map once per batch:
        // a map entry per record compared format names on every line.
        let mut by_format = [0u64; Format::ALL.len()];
        for (span, evs) in records(events, spans) {
            prov.line = span.line;
            if let Some(n) = by_format.get_mut(span.format.index()) {
                *n += evs.len() as u64;
            }
            for ((i, ev), &end) in evs.iter().enumerate().zip(ends.by_ref()) {
                prov.index = event_index(i);
                self.account(ev, prov, span.format, before..end, key, out);
                before = end;
            }
        }
        for (format, n) in Format::ALL.into_iter().zip(by_format) {
            if n > 0 {
                *out.stats.events_by_format.entry(format.name()).or_default() += n;
            }
        }
        prov.index = 0;
    }

    /// What follows detection for one event whose findings are
    /// `out.findings[found]`: the principal (resolved once, for the findings,
    /// exposure and the anomaly rules), the counts, exposure and the access.
    fn account(
        &self,
        ev: &Event,
        prov: &Provenance,
        format: Format,
        found: std::ops::Range<usize>,
        key: &crate::redact::Key,
        out: &mut Output,
    ) {
        let who = if out.accesses.is_some()
            || out.findings[found.clone()]
                .iter()
                .any(|f| f.principal.is_none())
            || (out.exposure.is_some() && exposure::candidate(ev))
        {
            exposure::principal(ev, key)
        } else {
            None
        };
        if let Some(who) = &who {
            for f in &mut out.findings[found.clone()] {
                if f.principal.is_none() {
                    f.principal = Some(who.clone());
                }
            }
        }
        out.stats.count_findings(&out.findings[found.clone()]);
        if let Some(acc) = out.exposure.as_mut() {
            acc.observe_as(ev, prov, key, who.as_deref());
        }
        if let Some(accesses) = out.accesses.as_mut() {
            accesses.push(Access::from_event_as(
                ev,
                prov,
                format,
                &out.findings[found],
                key,
                who.as_deref(),
            ));
        }
    }
}

/// One decoded record of a batch: its line, format, and where its events end
/// in the batch's event vector.
#[derive(Debug, Clone, Copy)]
struct Span {
    line: Option<u64>,
    format: Format,
    end: usize,
}

/// Each record of a batch with its events (`spans` end where each record's
/// events end in `events`).
fn records<'s, 'e, 'a>(
    events: &'e [Event<'a>],
    spans: &'s [Span],
) -> impl Iterator<Item = (&'s Span, &'e [Event<'a>])> {
    let mut start = 0;
    spans.iter().map(move |span| {
        let evs = &events[start..span.end];
        start = span.end;
        (span, evs)
    })
}

/// An event's index within its record, as [`Provenance::index`] holds it.
fn event_index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}
