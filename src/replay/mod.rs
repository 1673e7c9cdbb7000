//! `phiwatch replay`: files in, Parquet out, in parallel.
//!
//! Readers (one per input at a time) cut each input into line-aligned blocks; a
//! bounded queue hands blocks to worker threads, which decode and detect and hand
//! back each block's findings and dead letters as columns; this thread writes them
//! per input, in block order, in parts of a fixed row budget (see [`ordered`]), so
//! the same input always gives the same files.
//! Memory is bounded by the queues: (threads x 2 + readers) blocks in flight,
//! threads + 2 finished blocks queued for this thread, and as many finished
//! blocks waiting for their turn (see [`ordered`]).

mod ordered;

use crate::anomaly;
use crate::event::Provenance;
use crate::pipeline::{Engine, SourceState, Stats};
use crate::sink::dead_letter::{self, DeadLetter};
use crate::sink::parquet::{self, Written};
use crate::sink::{findings, manifest};
use crate::source::file::{self, Block, BlockReader, Input};
use ordered::{AccessPool, Collector, Ordered};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default block size: 4 MiB of uncompressed input.
pub const DEFAULT_BLOCK_BYTES: usize = 4 * 1024 * 1024;

/// Errors that stop a replay (bad input records never do).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Writing an output file failed.
    #[error(transparent)]
    Sink(#[from] parquet::Error),
    /// Building a record batch failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A replay thread could not be started.
    #[error("starting replay thread {name}: {source}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// Writing the manifest or creating the output folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Settings of a replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The output folder.
    pub out_dir: PathBuf,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Block size in bytes.
    pub block_bytes: usize,
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes read from disk (compressed bytes for .gz/.zst).
    pub disk_bytes: Arc<AtomicU64>,
    /// Events decoded so far.
    pub events: AtomicU64,
    /// Findings so far.
    pub findings: AtomicU64,
    /// Dead letters so far.
    pub dead_letters: AtomicU64,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Inputs read.
    pub inputs: usize,
    /// Counters.
    pub stats: Stats,
    /// Files written (findings and dead letters), in manifest order.
    pub files: Vec<Written>,
    /// Wall time.
    pub elapsed: Duration,
    /// Anomaly state at the end, when the rules ran.
    pub anomaly: Option<AnomalyStats>,
}

/// How the anomaly rules' bounded state fared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnomalyStats {
    /// Keys tracked at the end.
    pub tracked_keys: usize,
    /// Approximate bytes of rule state at the end.
    pub state_bytes: usize,
    /// Keys dropped to stay within the cap.
    pub evictions: u64,
    /// Accesses later than the out-of-order tolerance.
    pub late: u64,
}

impl Summary {
    /// Uncompressed megabytes (10^6) per second.
    pub fn mb_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        self.stats.bytes as f64 / 1e6 / secs
    }
}

/// A file-name-safe, unique, deterministic name for an input: its sanitized file
/// name plus 8 hex digits of the sha256 of the name as given.
pub fn slug(name: &str) -> String {
    let base = Path::new(name)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| s != "-")
        .unwrap_or_else(|| "stdin".to_string());
    let clean: String = base
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let h = Sha256::digest(name.as_bytes());
    format!("{clean}-{}", hex::encode(&h[..4]))
}

struct Job {
    input: usize,
    name: Arc<str>,
    slug: Arc<str>,
    state: Arc<SourceState>,
    block: Block,
}

enum Msg {
    Block(Box<BlockDone>),
    InputDone { input: usize, blocks: u64 },
    Failed(Error),
    InputError(DeadLetter, Arc<str>),
}

struct BlockDone {
    input: usize,
    index: u64,
    stats: Stats,
    block: Ordered,
}

/// Replay `inputs` through `engine` into `opts.out_dir`. With an anomaly detector,
/// inputs are read one after another (blocks still run in parallel) so the
/// detector sees one stream in input and line order.
pub fn replay(
    engine: &Engine,
    inputs: &[Input],
    opts: &ReplayOptions,
    progress: &Progress,
    anomaly: Option<&mut anomaly::Detector>,
) -> Result<Summary, Error> {
    let started = Instant::now();
    std::fs::create_dir_all(&opts.out_dir).map_err(|source| Error::Io {
        path: opts.out_dir.clone(),
        source,
    })?;
    let threads = opts.threads.max(1);
    let readers = if anomaly.is_some() {
        1
    } else {
        threads.min(inputs.len()).max(1)
    };
    let key_id = engine.detector().key().id().to_string();
    let pool = AccessPool::default();
    let mut ordered = Collector::new(
        anomaly,
        &opts.out_dir,
        key_id,
        ordered::EXPOSURE_ROWS_PER_PART,
        ordered::FINDING_ROWS_PER_PART,
        &pool,
    );
    let next_input = AtomicUsize::new(0);
    let (job_tx, job_rx) = mpsc::sync_channel::<Job>(threads);
    let job_rx = Mutex::new(job_rx);
    // Bounded too: when the main thread (anomaly rules, merging) falls behind,
    // workers wait instead of piling finished blocks up in memory. Two slots
    // more than workers ride out the main thread's longer steps (writing a
    // part of exposure rows or findings): with one slot per worker, a worker
    // waited ~5% of a single-worker replay of 256 MB to hand blocks over.
    let (msg_tx, msg_rx) = mpsc::sync_channel::<Msg>(threads + 2);

    let mut summary = Summary {
        inputs: inputs.len(),
        ..Summary::default()
    };
    let mut first_error = None;
    let mut input_errors: Vec<(Arc<str>, DeadLetter)> = Vec::new();

    std::thread::scope(|s| {
        // Named threads (`top -H`, profilers): work-N decode and detect, read-N
        // cut inputs into blocks; this thread applies results in order.
        let mut spawned = Ok(());
        for n in 0..threads {
            let msg_tx = msg_tx.clone();
            let (job_rx, pool) = (&job_rx, &pool);
            let name = format!("work-{n}");
            let t = std::thread::Builder::new()
                .name(name.clone())
                .spawn_scoped(s, move || worker(engine, job_rx, &msg_tx, progress, pool));
            spawned = spawned.and(t.map(drop).map_err(|source| Error::Spawn { name, source }));
        }
        // Without every worker there is nothing to read for: readers would wait.
        for n in 0..if spawned.is_ok() { readers } else { 0 } {
            let msg_tx = msg_tx.clone();
            let job_tx = job_tx.clone();
            let next_input = &next_input;
            let name = format!("read-{n}");
            let t = std::thread::Builder::new()
                .name(name.clone())
                .spawn_scoped(s, move || {
                    reader(
                        engine,
                        inputs,
                        next_input,
                        &job_tx,
                        &msg_tx,
                        opts.block_bytes,
                        progress,
                    )
                });
            spawned = spawned.and(t.map(drop).map_err(|source| Error::Spawn { name, source }));
        }
        if let Err(e) = spawned {
            first_error.get_or_insert(e);
        }
        drop(job_tx);
        drop(msg_tx);
        for msg in msg_rx {
            match msg {
                Msg::Block(done) => {
                    let BlockDone {
                        input,
                        index,
                        stats,
                        block,
                    } = *done;
                    summary.stats.merge(&stats);
                    if let Err(e) = ordered.block(input, index, block) {
                        first_error.get_or_insert(e);
                    }
                }
                Msg::InputDone { input, blocks } => {
                    if let Err(e) = ordered.input_done(input, blocks) {
                        first_error.get_or_insert(e);
                    }
                }
                Msg::Failed(e) => {
                    if first_error.is_none() {
                        first_error = Some(e);
                    }
                }
                Msg::InputError(dl, slug) => {
                    summary.stats.records += 1;
                    summary.stats.dead_letters += 1;
                    progress.dead_letters.fetch_add(1, Ordering::Relaxed);
                    input_errors.push((slug, dl));
                }
            }
        }
    });
    if let Some(e) = first_error {
        return Err(e);
    }
    for (slug, dl) in input_errors {
        let batch = dead_letter::to_batch(std::slice::from_ref(&dl))?;
        let rel = format!("dead_letter/{slug}/input.parquet");
        summary
            .files
            .push(parquet::write(&opts.out_dir, &rel, &[batch])?);
    }
    let mut anomaly_findings = std::mem::take(&mut ordered.anomaly_findings);
    if let Some(det) = ordered.anomaly.as_deref_mut() {
        det.finish(&mut anomaly_findings);
        summary.anomaly = Some(AnomalyStats {
            tracked_keys: det.tracked_keys(),
            state_bytes: det.state_bytes(),
            evictions: det.evictions(),
            late: det.late(),
        });
    }
    summary.files.append(&mut ordered.written);
    if !anomaly_findings.is_empty() {
        for f in &anomaly_findings {
            *summary
                .stats
                .findings_by_kind
                .entry(f.kind.to_string())
                .or_default() += 1;
        }
        let names: Vec<&str> = inputs.iter().map(|i| &*i.name).collect();
        let h = Sha256::digest(names.join("\n").as_bytes());
        let rel = format!("findings/anomaly/{}.parquet", hex::encode(&h[..8]));
        let batch = findings::to_batch(&anomaly_findings)?;
        summary
            .files
            .push(parquet::write(&opts.out_dir, &rel, &[batch])?);
    }
    summary.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    manifest::append(&opts.out_dir, &summary.files).map_err(|source| Error::Io {
        path: opts.out_dir.join(manifest::FILE_NAME),
        source,
    })?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn reader(
    engine: &Engine,
    inputs: &[Input],
    next_input: &AtomicUsize,
    job_tx: &SyncSender<Job>,
    msg_tx: &SyncSender<Msg>,
    block_bytes: usize,
    progress: &Progress,
) {
    let block_bytes = block_bytes.max(engine.options().max_record_bytes.saturating_add(1));
    loop {
        let i = next_input.fetch_add(1, Ordering::Relaxed);
        let Some(input) = inputs.get(i) else {
            return;
        };
        let slug: Arc<str> = Arc::from(slug(&input.name));
        let mut line = 1u64;
        let mut blocks_sent = 0u64;
        let result = (|| -> std::io::Result<()> {
            let r = file::open(input, progress.disk_bytes.clone())?;
            let mut blocks = BlockReader::new(r, block_bytes);
            let mut state: Option<Arc<SourceState>> = None;
            while let Some(block) = blocks.next_block()? {
                line = block.start_line;
                let st = state.get_or_insert_with(|| {
                    let first = file::lines(&block).next().map_or(&[][..], |(_, l)| l);
                    Arc::new(SourceState::new(engine.prime(first)))
                });
                let job = Job {
                    input: i,
                    name: input.name.clone(),
                    slug: slug.clone(),
                    state: st.clone(),
                    block,
                };
                if job_tx.send(job).is_err() {
                    return Ok(());
                }
                blocks_sent += 1;
            }
            Ok(())
        })();
        if let Err(e) = result {
            let dl = DeadLetter {
                source: input.name.clone(),
                source_line: Some(line),
                kafka_partition: None,
                kafka_offset: None,
                length: 0,
                reason: format!("input unreadable from this line on: {e}"),
                preview: String::new(),
            };
            let _ = msg_tx.send(Msg::InputError(dl, slug));
        }
        let _ = msg_tx.send(Msg::InputDone {
            input: i,
            blocks: blocks_sent,
        });
    }
}

fn worker(
    engine: &Engine,
    job_rx: &Mutex<Receiver<Job>>,
    msg_tx: &SyncSender<Msg>,
    progress: &Progress,
    pool: &AccessPool,
) {
    loop {
        let job = {
            let Ok(rx) = job_rx.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let msg = match process_block(engine, &job, pool) {
            Ok((stats, block)) => {
                progress.events.fetch_add(stats.events(), Ordering::Relaxed);
                progress
                    .findings
                    .fetch_add(stats.findings(), Ordering::Relaxed);
                progress
                    .dead_letters
                    .fetch_add(stats.dead_letters, Ordering::Relaxed);
                Msg::Block(Box::new(BlockDone {
                    input: job.input,
                    index: job.block.index,
                    stats,
                    block,
                }))
            }
            Err(e) => Msg::Failed(e),
        };
        if msg_tx.send(msg).is_err() {
            return;
        }
    }
}

/// What a worker makes of one block: its counts, and what the ordering
/// thread applies in block order.
fn process_block(engine: &Engine, job: &Job, pool: &AccessPool) -> Result<(Stats, Ordered), Error> {
    let mut out = engine.output();
    anomaly::reset_interner();
    if let Some(accesses) = out.accesses.as_mut() {
        if let Some(reused) = pool.lock().ok().and_then(|mut p| p.pop()) {
            *accesses = reused;
        }
        // About one access per line: sized once rather than grown (and copied)
        // a dozen times. A reused vector that is too small is replaced, not
        // grown: growing would copy its whole old buffer and double it.
        // Counted by the reader as it cut the block: counting again here
        // would stream the whole block through this core's cache once more.
        let lines = usize::try_from(job.block.lines).unwrap_or(0) + 1;
        if accesses.capacity() < lines {
            *accesses = Vec::with_capacity(lines + lines / 8);
        }
    }
    let mut state = (*job.state).clone();
    for ov in &job.block.oversize {
        let prov = Provenance::file_line(job.name.clone(), ov.line);
        engine.oversize(&prov, ov.length, &mut out);
    }
    // A copy of the input's name for this block alone: every access and finding
    // holds it, and a reference count shared with the thread that drops earlier
    // blocks' accesses would bounce between cores on every event.
    let mut prov = Provenance::file_line(Arc::from(&*job.name), 0);
    engine.process_lines(file::lines(&job.block), &mut prov, &mut state, &mut out);
    let findings = if out.findings.is_empty() {
        None
    } else {
        Some(findings::to_batch(&out.findings)?)
    };
    let dead_letters = if out.dead_letters.is_empty() {
        None
    } else {
        out.dead_letters.sort_by_key(|d| d.source_line);
        Some(dead_letter::to_batch(&out.dead_letters)?)
    };
    let block = Ordered {
        slug: job.slug.clone(),
        exposure: out.exposure,
        accesses: out.accesses,
        findings,
        dead_letters,
    };
    Ok((out.stats, block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_and_distinct() {
        let a = slug("logs/a b.log");
        let b = slug("other/a b.log");
        assert!(a.starts_with("a_b.log-"));
        assert_ne!(a, b);
        assert!(slug("-").starts_with("stdin-"));
        assert!(!slug("../../etc/x").contains('/'));
    }
}
