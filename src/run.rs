//! `phiwatch run`: a member of a Kafka consumer group.
//!
//! At-least-once: a partition's offsets are committed only after the Parquet files
//! holding its records are renamed into place. Files are named by topic, partition
//! and offset range, and finding ids derive from (topic, partition, offset), so a
//! restart after a crash rewrites the same findings rather than new ones. On
//! partition revoke the revoked partitions are flushed and committed; on shutdown
//! every partition is.

use crate::anomaly;
use crate::decode::{Format, Mode};
use crate::event::Provenance;
use crate::finding::Severity;
use crate::pipeline::{Engine, Output, SourceState, Stats};
use crate::replay::slug;
use crate::sink::alerts::{self, Suppressor};
use crate::sink::parquet::{self, Written};
use crate::sink::{dead_letter, findings, manifest};
use crate::telemetry::Metrics;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default roll size: 128 MiB of input per partition.
pub const DEFAULT_ROLL_BYTES: u64 = 128 * 1024 * 1024;
/// Default roll time: 60 s.
pub const DEFAULT_ROLL_MS: u64 = 60_000;
/// Findings and dead letters held in memory across all partitions before the
/// partitions holding the most roll early (about 40 MiB of rows).
pub const MAX_HELD_ROWS: usize = 100_000;

/// Errors that stop `run`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Kafka client error (configuration, subscription, commit).
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// Writing an output file failed; offsets were not committed.
    #[error(transparent)]
    Sink(#[from] parquet::Error),
    /// Building a record batch failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing the manifest failed.
    #[error("manifest: {0}")]
    Manifest(std::io::Error),
}

/// Everything `run` needs, after config, flags and environment are merged.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Bootstrap servers.
    pub brokers: String,
    /// Consumer group id.
    pub group: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// Decoder pinned per topic.
    pub topic_formats: BTreeMap<String, Format>,
    /// Output folder.
    pub out_dir: PathBuf,
    /// `earliest` or `latest`, for a group with no committed offset.
    pub auto_offset_reset: String,
    /// Consumer session timeout.
    pub session_timeout_ms: u64,
    /// Prefetch cap (`queued.max.messages.kbytes`).
    pub max_prefetch_kbytes: u64,
    /// librdkafka properties passed through (security settings, tuning).
    pub overrides: BTreeMap<String, String>,
    /// Roll after this many input bytes per partition.
    pub roll_bytes: u64,
    /// Roll after this long per partition.
    pub roll_ms: u64,
    /// Topic for OCSF alerts.
    pub alerts_topic: Option<String>,
    /// Lowest severity that alerts.
    pub min_severity: Severity,
    /// Suppression window per (rule, principal).
    pub suppress_ms: u64,
    /// Topic for dead-letter descriptions.
    pub dead_letter_topic: Option<String>,
}

impl RunOptions {
    /// Options with defaults for everything but the essentials.
    pub fn new(brokers: &str, group: &str, topics: Vec<String>, out_dir: PathBuf) -> Self {
        RunOptions {
            brokers: brokers.to_string(),
            group: group.to_string(),
            topics,
            topic_formats: BTreeMap::new(),
            out_dir,
            auto_offset_reset: "earliest".into(),
            session_timeout_ms: 45_000,
            max_prefetch_kbytes: 64 * 1024,
            overrides: BTreeMap::new(),
            roll_bytes: DEFAULT_ROLL_BYTES,
            roll_ms: DEFAULT_ROLL_MS,
            alerts_topic: None,
            min_severity: Severity::High,
            suppress_ms: alerts::DEFAULT_SUPPRESS_MS,
            dead_letter_topic: None,
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.overrides {
            c.set(k, v);
        }
        c
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Counters.
    pub stats: Stats,
    /// Files written.
    pub files: u64,
    /// Offset commits.
    pub commits: u64,
}

struct Part {
    state: SourceState,
    out: Output,
    first: i64,
    last: i64,
    bytes: u64,
    opened: Instant,
    pending: bool,
}

struct Shared {
    engine: Arc<Engine>,
    out_dir: PathBuf,
    modes: HashMap<String, Mode>,
    default_mode: Mode,
    parts: HashMap<(Arc<str>, i32), Part>,
    summary: RunSummary,
    error: Option<Error>,
    anomaly: Option<anomaly::Detector>,
}

struct Ctx {
    shared: Mutex<Shared>,
    metrics: Arc<Metrics>,
}

impl Ctx {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ClientContext for Ctx {
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.metrics.set_lag(topic, *p, part.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut sh = self.lock();
            let keys: Vec<(Arc<str>, i32)> = tpl
                .elements()
                .iter()
                .map(|e| (Arc::from(e.topic()), e.partition()))
                .collect();
            for key in keys {
                if let Err(e) = sh.flush_commit(&key, consumer, &self.metrics) {
                    sh.error.get_or_insert(e);
                }
                sh.parts.remove(&key);
            }
        }
    }
}

impl Shared {
    /// Write the partition's buffered results, then commit past its last record.
    fn flush_commit(
        &mut self,
        key: &(Arc<str>, i32),
        consumer: &BaseConsumer<Ctx>,
        metrics: &Metrics,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let Some(part) = self.parts.get_mut(key) else {
            return Ok(());
        };
        if !part.pending {
            return Ok(());
        }
        let (topic, partition) = (&key.0, key.1);
        let dir = format!("{}/p{partition:05}", slug(topic));
        let range = format!("o{:020}-{:020}", part.first, part.last);
        let mut written: Vec<Written> = Vec::new();
        if !part.out.findings.is_empty() {
            let batch = findings::to_batch(&part.out.findings)?;
            let rel = format!("findings/{dir}/{range}.parquet");
            written.push(parquet::write(&self.out_dir, &rel, &[batch])?);
        }
        if !part.out.dead_letters.is_empty() {
            let batch = dead_letter::to_batch(&part.out.dead_letters)?;
            let rel = format!("dead_letter/{dir}/{range}.parquet");
            written.push(parquet::write(&self.out_dir, &rel, &[batch])?);
        }
        if let Some(acc) = part.out.exposure.as_ref().filter(|a| !a.is_empty()) {
            let batch = acc.to_record_batch(self.engine.detector().key().id())?;
            let rel = format!("exposure/{dir}/{range}.parquet");
            written.push(parquet::write(&self.out_dir, &rel, &[batch])?);
        }
        manifest::append(&self.out_dir, &written).map_err(Error::Manifest)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(part.last + 1))?;
        commit_with_retry(consumer, &tpl)?;
        self.summary.stats.merge(&part.out.stats);
        self.summary.files += written.len() as u64;
        self.summary.commits += 1;
        metrics
            .files_written
            .fetch_add(written.len() as u64, Ordering::Relaxed);
        metrics.commits.fetch_add(1, Ordering::Relaxed);
        metrics
            .commit_latency
            .observe(started.elapsed().as_secs_f64());
        part.out = self.engine.output();
        part.bytes = 0;
        part.pending = false;
        Ok(())
    }

    /// Write what the anomaly detector still holds (episodes whose window had
    /// not closed) to a file of their own under findings/anomaly/. Their records
    /// are committed, or are about to be, with the final flush, and when every
    /// partition has already rolled there is no partition file left to carry them.
    fn finish_anomaly(&mut self, metrics: &Metrics) -> Result<(), Error> {
        let Some(det) = self.anomaly.as_mut() else {
            return Ok(());
        };
        let mut found = Vec::new();
        det.finish(&mut found);
        if found.is_empty() {
            return Ok(());
        }
        let mut counted = Stats::default();
        counted.count_findings(&found);
        let rel = format!(
            "findings/anomaly/run-{:020}-{}.parquet",
            now_us(),
            std::process::id()
        );
        let batch = findings::to_batch(&found)?;
        let written = parquet::write(&self.out_dir, &rel, &[batch])?;
        manifest::append(&self.out_dir, std::slice::from_ref(&written)).map_err(Error::Manifest)?;
        metrics.add_findings(&counted.findings_by_kind);
        metrics.files_written.fetch_add(1, Ordering::Relaxed);
        self.summary.stats.merge(&counted);
        self.summary.files += 1;
        Ok(())
    }

    fn flush_due(
        &mut self,
        consumer: &BaseConsumer<Ctx>,
        metrics: &Metrics,
        roll_bytes: u64,
        roll: Duration,
        all: bool,
    ) -> Result<(), Error> {
        let mut due: Vec<(Arc<str>, i32)> = self
            .parts
            .iter()
            .filter(|(_, p)| {
                p.pending && (all || p.bytes >= roll_bytes || p.opened.elapsed() >= roll)
            })
            .map(|(k, _)| k.clone())
            .collect();
        // Memory: findings wait in memory until their partition rolls. On a dense
        // backlog they would pile up long before 128 MiB of input or 60 s, so past
        // a budget the partitions holding the most roll early.
        let held = |p: &Part| p.out.findings.len() + p.out.dead_letters.len();
        let total: usize = self.parts.values().map(held).sum();
        if !all && total > MAX_HELD_ROWS {
            let mut by_size: Vec<(usize, (Arc<str>, i32))> = self
                .parts
                .iter()
                .filter(|(k, p)| p.pending && !due.contains(k))
                .map(|(k, p)| (held(p), k.clone()))
                .collect();
            by_size.sort_by_key(|e| std::cmp::Reverse(e.0));
            let mut left = total;
            for (n, key) in by_size {
                if left <= MAX_HELD_ROWS / 2 {
                    break;
                }
                left -= n;
                due.push(key);
            }
        }
        for key in due {
            self.flush_commit(&key, consumer, metrics)?;
        }
        Ok(())
    }
}

/// Commit synchronously, retrying transient failures (coordinator moving,
/// timeouts) for up to about 10 s before giving up.
fn commit_with_retry(consumer: &BaseConsumer<Ctx>, tpl: &TopicPartitionList) -> Result<(), Error> {
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        match consumer.commit(tpl, CommitMode::Sync) {
            Ok(()) => return Ok(()),
            Err(e) if lost_generation(&e) => {
                // The group moved on (rebalance, or this member left): the partition's
                // next owner resumes from the last commit and rewrites the same findings
                // (same ids). The files are already durable; nothing is lost.
                eprintln!("phiwatch: kafka: commit skipped after a rebalance ({e})");
                return Ok(());
            }
            Err(e) if attempt < 8 => {
                attempt += 1;
                eprintln!("phiwatch: kafka: commit failed ({e}); retrying");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn lost_generation(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::AssignmentLost
                | RDKafkaErrorCode::FencedInstanceId
        )
    )
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

struct Outbox {
    producer: Option<BaseProducer>,
    alerts_topic: Option<String>,
    dead_letter_topic: Option<String>,
    suppressor: Suppressor,
}

impl Outbox {
    fn send(&self, topic: &str, key: &str, payload: &str) {
        let Some(p) = &self.producer else { return };
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        for _ in 0..50 {
            match p.send(record) {
                Ok(()) => return,
                Err((_, r)) => {
                    record = r;
                    p.poll(Duration::from_millis(100));
                }
            }
        }
        eprintln!("phiwatch: warning: producer queue full; an alert for {key} was not sent");
    }
}

/// Consume until `shutdown` is set, then flush, commit and leave the group.
/// With an anomaly detector, every partition's accesses feed it in arrival order
/// (event time with its out-of-order tolerance decides, not arrival).
pub fn run(
    engine: Arc<Engine>,
    opts: &RunOptions,
    metrics: Arc<Metrics>,
    shutdown: &AtomicBool,
    anomaly: Option<anomaly::Detector>,
) -> Result<RunSummary, Error> {
    let default_mode = engine.options().mode;
    let ctx = Ctx {
        shared: Mutex::new(Shared {
            engine,
            out_dir: opts.out_dir.clone(),
            modes: opts
                .topic_formats
                .iter()
                .map(|(t, f)| (t.clone(), Mode::Forced(*f)))
                .collect(),
            default_mode,
            parts: HashMap::new(),
            summary: RunSummary::default(),
            error: None,
            anomaly,
        }),
        metrics: metrics.clone(),
    };
    let mut cc = opts.client_config();
    cc.set("group.id", &opts.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", &opts.auto_offset_reset)
        .set("session.timeout.ms", opts.session_timeout_ms.to_string())
        .set(
            "queued.max.messages.kbytes",
            opts.max_prefetch_kbytes.to_string(),
        )
        .set("statistics.interval.ms", "5000");
    for (k, v) in &opts.overrides {
        cc.set(k, v);
    }
    let consumer: BaseConsumer<Ctx> = cc.create_with_context(ctx)?;
    let topics: Vec<&str> = opts.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;

    let producer = if opts.alerts_topic.is_some() || opts.dead_letter_topic.is_some() {
        Some(
            opts.client_config()
                .set("linger.ms", "20")
                .create::<BaseProducer>()?,
        )
    } else {
        None
    };
    let mut outbox = Outbox {
        producer,
        alerts_topic: opts.alerts_topic.clone(),
        dead_letter_topic: opts.dead_letter_topic.clone(),
        suppressor: Suppressor::new(opts.min_severity, opts.suppress_ms),
    };
    let roll = Duration::from_millis(opts.roll_ms);
    let mut last_check = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        let polled = consumer.poll(Duration::from_millis(100));
        if let Some(p) = &outbox.producer {
            p.poll(Duration::ZERO);
        }
        match polled {
            None => {}
            Some(Err(e)) => eprintln!("phiwatch: kafka: {e}"),
            Some(Ok(msg)) => {
                // A record without a value (a tombstone) is taken as an empty line:
                // nothing to scan, but its offset is done and gets committed.
                let payload = msg.payload().unwrap_or_default();
                let mut sh = consumer.context().lock();
                process(
                    &mut sh,
                    &metrics,
                    &mut outbox,
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    payload,
                );
            }
        }
        if last_check.elapsed() >= Duration::from_millis(200) {
            last_check = Instant::now();
            let mut sh = consumer.context().lock();
            if let Some(e) = sh.error.take() {
                return Err(e);
            }
            sh.flush_due(&consumer, &metrics, opts.roll_bytes, roll, false)?;
        }
    }
    {
        let mut sh = consumer.context().lock();
        if let Some(e) = sh.error.take() {
            return Err(e);
        }
        sh.finish_anomaly(&metrics)?;
        sh.flush_due(&consumer, &metrics, opts.roll_bytes, roll, true)?;
    }
    if let Some(p) = &outbox.producer {
        let _ = p.flush(Duration::from_secs(5));
    }
    consumer.unsubscribe();
    let summary = consumer.context().lock().summary.clone();
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn process(
    sh: &mut Shared,
    metrics: &Metrics,
    outbox: &mut Outbox,
    topic: &str,
    partition: i32,
    offset: i64,
    payload: &[u8],
) {
    let mode = sh.modes.get(topic).copied().unwrap_or(sh.default_mode);
    let engine = sh.engine.clone();
    let key = (Arc::<str>::from(topic), partition);
    let part = sh.parts.entry(key.clone()).or_insert_with(|| Part {
        state: SourceState::default(),
        out: engine.output(),
        first: offset,
        last: offset,
        bytes: 0,
        opened: Instant::now(),
        pending: false,
    });
    if !part.pending {
        part.first = offset;
        part.opened = Instant::now();
    }
    let (f0, d0) = (part.out.findings.len(), part.out.dead_letters.len());
    let prov = Provenance::kafka(key.0.clone(), partition, offset);
    engine.process_record_as(payload, &prov, mode, &mut part.state, &mut part.out);
    if let (Some(det), Some(accesses)) = (sh.anomaly.as_mut(), part.out.accesses.as_mut()) {
        let before = part.out.findings.len();
        for a in accesses.drain(..) {
            det.observe(a, &mut part.out.findings);
        }
        // Counted as replay counts them, so the summary covers every finding.
        part.out.stats.count_findings(&part.out.findings[before..]);
    }
    part.last = offset;
    part.bytes += payload.len() as u64;
    part.pending = true;
    metrics.records.fetch_add(1, Ordering::Relaxed);
    metrics
        .bytes
        .fetch_add(payload.len() as u64, Ordering::Relaxed);
    let new_findings = &part.out.findings[f0..];
    if !new_findings.is_empty() {
        let mut counted = Stats::default();
        counted.count_findings(new_findings);
        metrics.add_findings(&counted.findings_by_kind);
        if let Some(topic) = outbox.alerts_topic.clone() {
            let now = now_us();
            for f in new_findings {
                if let Some(alert) = outbox.suppressor.offer(f, now) {
                    let payload = alerts::ocsf(&alert).to_string();
                    outbox.send(&topic, &f.rule_id, &payload);
                    metrics.alerts.fetch_add(1, Ordering::Relaxed);
                    if let Some(t) = f.time {
                        metrics.event_to_alert.observe((now - t) as f64 / 1e6);
                    }
                } else if f.severity >= outbox_min(outbox) {
                    metrics.alerts_suppressed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let new_dead = &part.out.dead_letters[d0..];
    if !new_dead.is_empty() {
        metrics
            .dead_letters
            .fetch_add(new_dead.len() as u64, Ordering::Relaxed);
        if let Some(topic) = outbox.dead_letter_topic.clone() {
            for d in new_dead {
                let v = serde_json::json!({
                    "source": &*d.source,
                    "kafka_partition": d.kafka_partition,
                    "kafka_offset": d.kafka_offset,
                    "length": d.length,
                    "reason": d.reason,
                    "preview": d.preview,
                });
                outbox.send(&topic, &d.source, &v.to_string());
            }
        }
    }
}

fn outbox_min(outbox: &Outbox) -> Severity {
    outbox.suppressor.min_severity()
}
