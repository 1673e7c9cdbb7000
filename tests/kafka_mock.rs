//! `phiwatch run` against librdkafka's mock cluster: produce, consume in a group,
//! commit after the sink, a two-member rebalance, injected broker errors.
//! No broker needed; the real-broker suite (tansu) runs in `.ci/run`.

mod common;

use common::{findings_in, fixture_lines, replay_findings};
use phiwatch::anomaly::{AnomalyConfig, Detector};
use phiwatch::decode::Mode;
use phiwatch::event::Provenance;
use phiwatch::pipeline::{Engine, EngineOptions, SourceState};
use phiwatch::redact::Key;
use phiwatch::run::{self, RunOptions, RunSummary};
use phiwatch::telemetry::Metrics;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{Offset, TopicPartitionList};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;

/// Produce `lines` round-robin over the partitions, continuing the rotation from
/// `start`; returns how many records each partition got.
fn produce(bootstrap: &str, topic: &str, lines: &[Vec<u8>], start: usize) -> Vec<i64> {
    produce_over(bootstrap, topic, lines, start, PARTITIONS)
}

/// [`produce`] over the first `partitions` partitions of `topic`.
fn produce_over(
    bootstrap: &str,
    topic: &str,
    lines: &[Vec<u8>],
    start: usize,
    partitions: i32,
) -> Vec<i64> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    let mut ends = vec![0i64; partitions as usize];
    for (i, line) in lines.iter().enumerate() {
        let p = i32::try_from(start + i).expect("small") % partitions;
        ends[p as usize] += 1;
        let mut rec = BaseRecord::<(), [u8]>::to(topic).partition(p).payload(line);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    ends
}

fn options(bootstrap: &str, topic: &str, out: &Path) -> RunOptions {
    let mut o = RunOptions::new(
        bootstrap,
        "phiwatch-test",
        vec![topic.to_string()],
        out.into(),
    );
    o.session_timeout_ms = 6000;
    o.roll_ms = 500;
    o
}

struct Member {
    shutdown: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    handle: JoinHandle<Result<RunSummary, run::Error>>,
}

fn start(opts: RunOptions) -> Member {
    let shutdown = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(Metrics::default());
    let (s, m) = (shutdown.clone(), metrics.clone());
    let handle =
        std::thread::spawn(move || run::run(Arc::new(common::engine()), &opts, m, &s, None));
    Member {
        shutdown,
        metrics,
        handle,
    }
}

impl Member {
    fn records(&self) -> u64 {
        self.metrics.records.load(Ordering::Relaxed)
    }

    fn stop(self) -> RunSummary {
        self.shutdown.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .expect("member thread")
            .expect("run ends cleanly")
    }
}

fn committed(bootstrap: &str, group: &str, topic: &str) -> Vec<i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..PARTITIONS)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_member_consumes_everything_commits_the_end_and_matches_replay() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("gw", PARTITIONS, 1).expect("topic");
    let bs = mock.bootstrap_servers();
    let lines = fixture_lines();
    let ends = produce(&bs, "gw", &lines, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let m = start(options(&bs, "gw", &out));
    let n = lines.len() as u64;
    wait_until("all records", 60, || m.records() >= n);
    let summary = m.stop();
    assert_eq!(summary.stats.records, n);
    assert_eq!(committed(&bs, "phiwatch-test", "gw"), ends);

    let streamed = findings_in(&out);
    let replayed = replay_findings(&lines);
    assert!(!replayed.is_empty(), "fixtures must produce findings");
    common::assert_same_findings(&streamed, &replayed);
    phiwatch::sink::manifest::verify(&out).expect("manifest verifies");
}

#[test]
fn two_members_split_the_partitions_and_together_find_the_same() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("gw2", PARTITIONS, 1).expect("topic");
    let bs = mock.bootstrap_servers();
    let lines = fixture_lines();
    let first_half = lines.len() / 2;
    let mut ends = produce(&bs, "gw2", &lines[..first_half], 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let a = start(options(&bs, "gw2", &out));
    wait_until("member a to start", 60, || a.records() > 0);
    let b = start(options(&bs, "gw2", &out));
    // Produce the rest while both are in the group (the rebalance happens meanwhile).
    std::thread::sleep(Duration::from_secs(2));
    let ends2 = produce(&bs, "gw2", &lines[first_half..], first_half);
    for (e, e2) in ends.iter_mut().zip(ends2) {
        *e += e2;
    }
    wait_until("committed offsets at the end", 90, || {
        committed(&bs, "phiwatch-test", "gw2") == ends
    });
    let sa = a.stop();
    let sb = b.stop();
    assert!(sa.stats.records + sb.stats.records >= lines.len() as u64);
    assert!(
        sb.stats.records > 0,
        "the second member got no partition after the rebalance"
    );
    let streamed = findings_in(&out);
    let replayed = replay_findings(&lines);
    common::assert_same_findings(&streamed, &replayed);
}

#[test]
fn transient_commit_errors_are_retried_and_nothing_is_lost() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("gw3", PARTITIONS, 1).expect("topic");
    let bs = mock.bootstrap_servers();
    let lines = fixture_lines();
    let ends = produce(&bs, "gw3", &lines, 0);
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let m = start(options(&bs, "gw3", &out));
    let n = lines.len() as u64;
    wait_until("all records", 60, || m.records() >= n);
    m.stop();
    assert_eq!(committed(&bs, "phiwatch-test", "gw3"), ends);
    common::assert_same_findings(&findings_in(&out), &replay_findings(&lines));
}

#[test]
fn records_without_a_value_are_committed_past() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("gw5", PARTITIONS, 1).expect("topic");
    let bs = mock.bootstrap_servers();
    let lines = fixture_lines();
    let mut ends = produce(&bs, "gw5", &lines, 0);
    // Each partition ends with a tombstone.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .create()
        .expect("producer");
    for p in 0..PARTITIONS {
        producer
            .send(BaseRecord::<str, [u8]>::to("gw5").partition(p).key("k"))
            .map_err(|(e, _)| e)
            .expect("send a tombstone");
        ends[p as usize] += 1;
    }
    producer.flush(Duration::from_secs(10)).expect("flush");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let m = start(options(&bs, "gw5", &out));
    wait_until("committed offsets past the tombstones", 30, || {
        committed(&bs, "phiwatch-test", "gw5") == ends
    });
    let summary = m.stop();
    assert_eq!(summary.stats.records, lines.len() as u64);
    assert_eq!(summary.stats.dead_letters, 0);
    common::assert_same_findings(&findings_in(&out), &replay_findings(&lines));
}

/// The anomaly findings of `lines` taken in order, as (rule_id, finding_id).
fn replay_anomalies(engine: &Engine, lines: &[Vec<u8>]) -> Vec<(String, String)> {
    let mut det = anomaly_detector();
    let mut out = engine.output();
    let mut state = SourceState::default();
    let source: Arc<str> = Arc::from("lines");
    let mut found = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let prov = Provenance::file_line(source.clone(), i as u64 + 1);
        engine.process_record(l, &prov, &mut state, &mut out);
        for a in out.accesses.as_mut().expect("accesses").drain(..) {
            det.observe(a, &mut found);
        }
    }
    det.finish(&mut found);
    let mut v: Vec<(String, String)> = found
        .iter()
        .map(|f| (f.rule_id.to_string(), f.finding_id.clone()))
        .collect();
    v.sort();
    v
}

fn anomaly_detector() -> Detector {
    Detector::load(
        &Key::from_bytes(common::TEST_KEY),
        &AnomalyConfig::default(),
        None,
    )
    .expect("anomaly rules")
}

/// Anomaly findings in `out`'s findings files, as (rule_id, finding_id).
fn anomalies_in(out: &Path) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for b in common::read_batches(&out.join("findings")) {
        let (cat, rule, id) = (
            common::col(&b, "category"),
            common::col(&b, "rule_id"),
            common::col(&b, "finding_id"),
        );
        for i in 0..b.num_rows() {
            if cat.value(i) == "anomaly" {
                v.push((rule.value(i).to_string(), id.value(i).to_string()));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn anomaly_episodes_still_open_at_shutdown_are_written() {
    // One partition: records arrive in file order, so the episodes and their
    // ids are those of a replay of the same lines.
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("gw4", 1, 1).expect("topic");
    let bs = mock.bootstrap_servers();
    let lines = fixture_lines();
    let ends = produce_over(&bs, "gw4", &lines, 0, 1);
    let engine = Arc::new(Engine::new(
        phiwatch::detect::Detector::load(Key::from_bytes(common::TEST_KEY), None)
            .expect("built-in rules"),
        EngineOptions {
            mode: Mode::Auto,
            anomaly: true,
            ..EngineOptions::default()
        },
    ));
    let want = replay_anomalies(&engine, &lines);
    assert!(!want.is_empty(), "the fixtures must raise anomaly findings");

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let opts = options(&bs, "gw4", &out);
    let shutdown = Arc::new(AtomicBool::new(false));
    let metrics = Arc::new(Metrics::default());
    let (s, m, e) = (shutdown.clone(), metrics.clone(), engine.clone());
    let handle = std::thread::spawn(move || run::run(e, &opts, m, &s, Some(anomaly_detector())));
    // The partition rolls and commits its end before the stop, so nothing is
    // pending when the detector gives up its open episodes.
    wait_until("committed offset at the end", 60, || {
        committed(&bs, "phiwatch-test", "gw4")[..1] == ends[..]
    });
    shutdown.store(true, Ordering::Relaxed);
    let summary = handle
        .join()
        .expect("member thread")
        .expect("run ends cleanly");
    assert_eq!(summary.stats.records, lines.len() as u64);
    assert_eq!(anomalies_in(&out), want);
    // The summary counts every finding written, anomalies included.
    let rows: usize = common::read_batches(&out.join("findings"))
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(summary.stats.findings(), rows as u64);
    phiwatch::sink::manifest::verify(&out).expect("manifest verifies");
}
