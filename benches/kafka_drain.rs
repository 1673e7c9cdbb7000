//! Side-by-side drain of one topic on one broker: a bare rdkafka consumer against
//! `phiwatch run` (consume -> detect -> Parquet -> commit). Prints records/s of
//! both and the ratio.
//!
//! `cargo bench --bench kafka_drain` uses librdkafka's mock cluster;
//! `PHIWATCH_BENCH_BROKERS=127.0.0.1:9092 cargo bench --bench kafka_drain` a real
//! broker. `PHIWATCH_BENCH_RECORDS` sets the record count (default 300000);
//! `PHIWATCH_BENCH_PRODUCE_ONLY=1` only fills a new topic and prints its name
//! (benches/kafka_rss.sh uses it to measure `phiwatch run` draining a backlog).

use phiwatch::decode::Mode;
use phiwatch::detect::Detector;
use phiwatch::pipeline::{Engine, EngineOptions};
use phiwatch::redact::Key;
use phiwatch::run::{self, RunOptions};
use phiwatch::telemetry::Metrics;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 4;

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut lines = Vec::new();
    for name in [
        "kong/kong.log",
        "nginx/access.log",
        "aws_waf/waf.log",
        "zeek_http/http.log",
    ] {
        if let Ok(data) = std::fs::read(root.join(name)) {
            lines.extend(
                data.split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec),
            );
        }
    }
    assert!(!lines.is_empty(), "fixtures missing");
    lines
}

fn produce(bs: &str, topic: &str, n: usize, lines: &[Vec<u8>]) -> u64 {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("linger.ms", "50")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let mut bytes = 0u64;
    for i in 0..n {
        let line = &lines[i % lines.len()];
        bytes += line.len() as u64;
        let part = i32::try_from(i).unwrap_or(0) % PARTITIONS;
        let mut rec = BaseRecord::<(), [u8]>::to(topic)
            .partition(part)
            .payload(line);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60)).expect("flush");
    bytes
}

fn create_topic(bs: &str, topic: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .create()
        .expect("admin");
    let t = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1));
    futures_executor::block_on(admin.create_topics([&t], &AdminOptions::new()))
        .expect("create topic");
}

fn bare_drain(bs: &str, topic: &str, n: u64) -> Duration {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bs)
        .set("group.id", "bench-bare")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    let mut seen = 0u64;
    let mut t0 = None;
    while seen < n {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            t0.get_or_insert_with(Instant::now);
            std::hint::black_box(m.payload());
            seen += 1;
        }
    }
    t0.map_or(Duration::ZERO, |t| t.elapsed())
}

fn phiwatch_drain(bs: &str, topic: &str, n: u64, out: &Path) -> Duration {
    let detector =
        Detector::load(Key::from_bytes(b"bench-key-0123456789abcdef"), None).expect("rules");
    let engine = Arc::new(Engine::new(
        detector,
        EngineOptions {
            mode: Mode::Auto,
            ..EngineOptions::default()
        },
    ));
    let mut opts = RunOptions::new(bs, "bench-phiwatch", vec![topic.to_string()], out.into());
    opts.session_timeout_ms = 6000;
    let metrics = Arc::new(Metrics::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (m2, s2) = (metrics.clone(), stop.clone());
    let h = std::thread::spawn(move || run::run(engine, &opts, m2, &s2, None));
    while metrics.records.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let t0 = Instant::now();
    let mut last = Instant::now();
    while metrics.records.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(1));
        if last.elapsed() > Duration::from_secs(5) {
            last = Instant::now();
            eprintln!(
                "phiwatch consumed {}",
                metrics.records.load(Ordering::Relaxed)
            );
        }
    }
    let d = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = h.join();
    d
}

fn main() {
    let n: usize = std::env::var("PHIWATCH_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let mock;
    let topic = format!("bench-{}", std::process::id());
    let bs = match std::env::var("PHIWATCH_BENCH_BROKERS") {
        Ok(b) => {
            create_topic(&b, &topic);
            b
        }
        Err(_) => {
            mock = MockCluster::new(1).expect("mock cluster");
            mock.create_topic(&topic, PARTITIONS, 1).expect("topic");
            mock.bootstrap_servers()
        }
    };
    let lines = corpus();
    let bytes = produce(&bs, &topic, n, &lines);
    eprintln!("produced {n} records to {topic}");
    if std::env::var_os("PHIWATCH_BENCH_PRODUCE_ONLY").is_some() {
        println!("{topic}");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bare = bare_drain(&bs, &topic, n as u64);
    eprintln!("bare consumer drained in {bare:?}");
    let pw = phiwatch_drain(&bs, &topic, n as u64, dir.path());
    let rate = |d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "records={n} bytes={:.1}MB bare={:.0} rec/s phiwatch={:.0} rec/s ratio={:.2}",
        bytes as f64 / 1e6,
        rate(bare),
        rate(pw),
        rate(pw) / rate(bare)
    );
}
