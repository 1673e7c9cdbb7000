//! The real-broker suite: `phiwatch run` as a process against a Kafka-protocol
//! broker (tansu in `.ci/run`). Ignored by plain `cargo test`; run with
//! `PHIWATCH_TEST_BROKERS=127.0.0.1:PORT cargo test --test kafka_real -- --ignored`.
//!
//! - SIGKILL mid-stream, restart: after de-duplication by finding_id the findings
//!   equal a replay of the same lines, and the committed offsets reach the end of
//!   every partition; SIGTERM then exits 0 within 10 s.
//! - Two members split the partitions and together produce the same set.

mod common;

use common::{findings_in, fixture_lines, replay_findings};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;
/// `common::TEST_KEY` as hex, so the binary and the in-process replay hash alike.
const KEY: &str = "70686977617463682d746573742d6b65792d30313233343536373839616263646566";

fn brokers() -> String {
    std::env::var("PHIWATCH_TEST_BROKERS").expect("set PHIWATCH_TEST_BROKERS=HOST:PORT")
}

fn create_topic(bs: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .create()
        .expect("admin client");
    let t = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
    let r = futures_executor::block_on(admin.create_topics([&t], &AdminOptions::new()))
        .expect("create topics");
    for res in r {
        if let Err((name, code)) = res {
            panic!("create topic {name}: {code:?}");
        }
    }
}

/// Records the end offset of each partition from delivery reports (the broker's
/// ListOffsets is not trusted here).
#[derive(Default)]
struct Ends(Mutex<BTreeMap<i32, i64>>);

impl ClientContext for Ends {}

impl ProducerContext for Ends {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let m = result.as_ref().expect("delivered");
        let mut ends = self.0.lock().expect("lock");
        let e = ends.entry(m.partition()).or_insert(0);
        *e = (*e).max(m.offset() + 1);
    }
}

fn produce(bs: &str, topic: &str, lines: &[Vec<u8>], start: usize) -> BTreeMap<i32, i64> {
    // One record per batch: tansu 0.6 serves nothing to a fetch that starts
    // inside a record batch (Kafka returns the whole batch and the client skips
    // what lies below the offset), so a member resuming from an offset committed
    // mid-batch would wait forever. With single-record batches every committed
    // offset is a batch boundary.
    let producer: BaseProducer<Ends> = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("batch.num.messages", "1")
        .create_with_context(Ends::default())
        .expect("producer");
    for (i, line) in lines.iter().enumerate() {
        let p = i32::try_from(start + i).expect("small") % PARTITIONS;
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
    producer.flush(Duration::from_secs(30)).expect("flush");
    producer.context().0.lock().expect("lock").clone()
}

fn committed(bs: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let Ok(got) = c.committed_offsets(tpl, Duration::from_secs(10)) else {
        return BTreeMap::new();
    };
    (0..PARTITIONS)
        .filter_map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some((p, o)),
            _ => None,
        })
        .collect()
}

/// A `phiwatch run` process, killed when dropped so that a failing test leaves
/// no consumer behind in the group.
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bs: &str, group: &str, topic: &str, out: &Path, cfg: &Path, log: &Path) -> Run {
    let stderr = std::fs::File::create(log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_phiwatch"))
        .env("PHIWATCH_KEY", KEY)
        .args(["run", "--brokers", bs, "--group", group, "--topic", topic])
        .arg("--out")
        .arg(out)
        .args(["--metrics", "off", "--config"])
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn phiwatch run");
    // Its signal handlers are in place once it says it is consuming; a SIGTERM
    // before that would end it as the default action does.
    wait_until(
        "phiwatch run to start",
        60,
        || std::fs::read_to_string(log).is_ok_and(|s| s.contains("phiwatch: consuming")),
        || std::fs::read_to_string(log).unwrap_or_default(),
    );
    Run(child)
}

fn sigterm_and_wait(mut run: Run) {
    let child = &mut run.0;
    let pid = child.id().to_string();
    let t0 = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(ok.success());
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status after SIGTERM: {status:?}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "did not exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` until it holds; on time-out panics with `what` and whatever `why`
/// says about the state then (offsets, the runs' logs).
fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            why()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The committed offsets against the produced ends, and the tail of each log.
fn state(bs: &str, group: &str, topic: &str, ends: &BTreeMap<i32, i64>, logs: &[&Path]) -> String {
    let mut s = format!(
        "committed {:?}, ends {ends:?}\n",
        committed(bs, group, topic)
    );
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        s.push_str(&format!("--- {}:\n{}\n", log.display(), tail.join("\n")));
    }
    s
}

fn config(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("phiwatch.toml");
    std::fs::write(
        &p,
        "[kafka]\nsession_timeout_ms = 6000\n[output]\nroll_ms = 300\n",
    )
    .expect("config");
    p
}

fn merge(a: &mut BTreeMap<i32, i64>, b: BTreeMap<i32, i64>) {
    for (p, o) in b {
        let e = a.entry(p).or_insert(0);
        *e = (*e).max(o);
    }
}

#[test]
#[ignore = "needs a Kafka broker: PHIWATCH_TEST_BROKERS=HOST:PORT"]
fn sigkill_mid_stream_and_restart_loses_nothing() {
    let bs = brokers();
    let topic = format!("gw-kill-{}", std::process::id());
    let group = format!("g-kill-{}", std::process::id());
    create_topic(&bs, &topic);
    let lines = fixture_lines();
    let half = lines.len() / 2;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let cfg = config(dir.path());
    let mut ends = produce(&bs, &topic, &lines[..half], 0);

    let (a_log, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let first = spawn(&bs, &group, &topic, &out, &cfg, &a_log);
    wait_until(
        "a first durable flush",
        120,
        || out.join("manifest.jsonl").exists(),
        || state(&bs, &group, &topic, &ends, &[&a_log]),
    );
    merge(&mut ends, produce(&bs, &topic, &lines[half..], half));
    drop(first); // SIGKILL

    let second = spawn(&bs, &group, &topic, &out, &cfg, &b_log);
    wait_until(
        "committed offsets at the end of every partition",
        180,
        || committed(&bs, &group, &topic) == ends,
        || state(&bs, &group, &topic, &ends, &[&a_log, &b_log]),
    );
    sigterm_and_wait(second);

    let got = findings_in(&out);
    let want = replay_findings(&lines);
    assert!(!want.is_empty());
    common::assert_same_findings(&got, &want);
    phiwatch::sink::manifest::verify(&out).expect("manifest verifies");
}

#[test]
#[ignore = "needs a Kafka broker: PHIWATCH_TEST_BROKERS=HOST:PORT"]
fn two_members_split_partitions_and_together_find_the_same() {
    let bs = brokers();
    let topic = format!("gw-two-{}", std::process::id());
    let group = format!("g-two-{}", std::process::id());
    create_topic(&bs, &topic);
    let lines = fixture_lines();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let cfg = config(dir.path());
    let (a_log, b_log) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let a = spawn(&bs, &group, &topic, &out, &cfg, &a_log);
    let b = spawn(&bs, &group, &topic, &out, &cfg, &b_log);
    // Let both join before producing, so the group has settled on two members.
    std::thread::sleep(Duration::from_secs(8));
    let ends = produce(&bs, &topic, &lines, 0);
    wait_until(
        "committed offsets at the end of every partition",
        180,
        || committed(&bs, &group, &topic) == ends,
        || state(&bs, &group, &topic, &ends, &[&a_log, &b_log]),
    );
    sigterm_and_wait(a);
    sigterm_and_wait(b);
    let summary = |log: &Path| std::fs::read_to_string(log).expect("log");
    let (la, lb) = (summary(&a_log), summary(&b_log));
    let records = |log: &str| -> u64 {
        log.lines()
            .find_map(|l| l.strip_prefix("phiwatch: stopped: "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert!(records(&la) > 0, "member a consumed nothing:\n{la}");
    assert!(records(&lb) > 0, "member b consumed nothing:\n{lb}");
    common::assert_same_findings(&findings_in(&out), &replay_findings(&lines));
}
