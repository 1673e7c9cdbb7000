//! Metrics in the Prometheus text format, served on a small HTTP endpoint
//! (default `127.0.0.1:9464`, path `/metrics`). Counters are bumped per batch,
//! never per byte in a tight loop.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A histogram with fixed upper bounds (seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Record one observation in seconds (negative values count as 0).
    pub fn observe(&self, secs: f64) {
        let secs = secs.max(0.0);
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            if secs <= *b {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

const DETECT_BOUNDS: &[f64] = &[0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0];
const COMMIT_BOUNDS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Every metric phiwatch exports.
#[derive(Debug)]
pub struct Metrics {
    /// `phiwatch_records_total`: records consumed.
    pub records: AtomicU64,
    /// `phiwatch_bytes_total`: record bytes consumed.
    pub bytes: AtomicU64,
    /// `phiwatch_dead_letters_total`.
    pub dead_letters: AtomicU64,
    /// `phiwatch_files_written_total`.
    pub files_written: AtomicU64,
    /// `phiwatch_alerts_total`: alerts produced.
    pub alerts: AtomicU64,
    /// `phiwatch_alerts_suppressed_total`.
    pub alerts_suppressed: AtomicU64,
    /// `phiwatch_commits_total`.
    pub commits: AtomicU64,
    /// `phiwatch_findings_total{kind}`.
    findings: Mutex<BTreeMap<String, u64>>,
    /// `phiwatch_consumer_lag{topic,partition}`.
    lag: Mutex<BTreeMap<(String, i32), i64>>,
    /// `phiwatch_event_to_alert_seconds`: event time to alert produced.
    pub event_to_alert: Histogram,
    /// `phiwatch_commit_latency_seconds`: flush-and-commit duration.
    pub commit_latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            files_written: AtomicU64::new(0),
            alerts: AtomicU64::new(0),
            alerts_suppressed: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            findings: Mutex::new(BTreeMap::new()),
            lag: Mutex::new(BTreeMap::new()),
            event_to_alert: Histogram::new(DETECT_BOUNDS),
            commit_latency: Histogram::new(COMMIT_BOUNDS),
        }
    }
}

impl Metrics {
    /// Add findings by kind.
    pub fn add_findings<'a>(&self, by_kind: impl IntoIterator<Item = (&'a String, &'a u64)>) {
        if let Ok(mut m) = self.findings.lock() {
            for (k, v) in by_kind {
                *m.entry(k.clone()).or_default() += v;
            }
        }
    }

    /// Set the consumer lag of a partition.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        if let Ok(mut m) = self.lag.lock() {
            m.insert((topic.to_string(), partition), lag);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, &AtomicU64); 7] = [
            ("phiwatch_records_total", "Records consumed.", &self.records),
            (
                "phiwatch_bytes_total",
                "Record bytes consumed.",
                &self.bytes,
            ),
            (
                "phiwatch_dead_letters_total",
                "Records that could not be decoded.",
                &self.dead_letters,
            ),
            (
                "phiwatch_files_written_total",
                "Parquet files renamed into place.",
                &self.files_written,
            ),
            ("phiwatch_alerts_total", "Alerts produced.", &self.alerts),
            (
                "phiwatch_alerts_suppressed_total",
                "Alerts folded into a later alert by suppression.",
                &self.alerts_suppressed,
            ),
            (
                "phiwatch_commits_total",
                "Offset commits after durable writes.",
                &self.commits,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP phiwatch_findings_total Findings by kind.\n# TYPE phiwatch_findings_total counter"
        );
        if let Ok(m) = self.findings.lock() {
            for (k, v) in m.iter() {
                let _ = writeln!(out, "phiwatch_findings_total{{kind=\"{}\"}} {v}", escape(k));
            }
        }
        let _ = writeln!(
            out,
            "# HELP phiwatch_consumer_lag Messages behind the partition's high watermark.\n# TYPE phiwatch_consumer_lag gauge"
        );
        if let Ok(m) = self.lag.lock() {
            for ((t, p), v) in m.iter() {
                let _ = writeln!(
                    out,
                    "phiwatch_consumer_lag{{topic=\"{}\",partition=\"{p}\"}} {v}",
                    escape(t)
                );
            }
        }
        self.event_to_alert.render(
            "phiwatch_event_to_alert_seconds",
            "Event time to alert produced (time to detect).",
            &mut out,
        );
        self.commit_latency.render(
            "phiwatch_commit_latency_seconds",
            "Flush, rename and offset commit duration.",
            &mut out,
        );
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A running metrics endpoint; stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serve `metrics` on `addr` (port 0 picks a free port).
    pub fn start(addr: &str, metrics: Arc<Metrics>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            let _ = s.set_nonblocking(false);
                            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                            let mut buf = [0u8; 2048];
                            let n = s.read(&mut buf).unwrap_or(0);
                            let req = String::from_utf8_lossy(&buf[..n]);
                            let (status, body) = if req.starts_with("GET /metrics") {
                                ("200 OK", metrics.render())
                            } else {
                                ("404 Not Found", String::from("see /metrics\n"))
                            };
                            let _ = write!(
                                s,
                                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })?;
        Ok(Server {
            addr,
            stop,
            handle: Some(handle),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_serves_the_named_series() {
        let m = Arc::new(Metrics::default());
        m.records.fetch_add(3, Ordering::Relaxed);
        let mut kinds = BTreeMap::new();
        kinds.insert("us_ssn".to_string(), 2u64);
        m.add_findings(&kinds);
        m.set_lag("gw", 1, 42);
        m.event_to_alert.observe(0.7);
        let srv = Server::start("127.0.0.1:0", m).expect("bind");
        let mut s = std::net::TcpStream::connect(srv.addr()).expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        for series in [
            "phiwatch_records_total 3",
            "phiwatch_findings_total{kind=\"us_ssn\"} 2",
            "phiwatch_consumer_lag{topic=\"gw\",partition=\"1\"} 42",
            "phiwatch_event_to_alert_seconds_bucket{le=\"1\"} 1",
            "phiwatch_event_to_alert_seconds_bucket{le=\"0.5\"} 0",
            "phiwatch_dead_letters_total 0",
            "phiwatch_files_written_total 0",
            "phiwatch_commit_latency_seconds_count 0",
        ] {
            assert!(text.contains(series), "missing {series} in\n{text}");
        }
    }
}
