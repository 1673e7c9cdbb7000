//! Cost of exposure counting per event, next to the cost of building the event.
//!
//! Needs `[[bench]] name = "exposure" harness = false` in Cargo.toml.
//! Run: `cargo bench --bench exposure`. The events are Kong-like: most lines of a
//! gateway log are not FHIR reads (health checks, errors, other APIs), so the mix
//! is 70% skipped by the cheap check and 30% FHIR reads with a patient.

use criterion::{Criterion, criterion_group, criterion_main};
use phiwatch::event::{Event, Provenance};
use phiwatch::exposure::{Accumulator, ExposureConfig};
use phiwatch::redact::Key;
use std::hint::black_box;
use std::sync::Arc;

fn events(n: usize) -> Vec<Event<'static>> {
    (0..n)
        .map(|i| {
            let (path, status) = match i % 10 {
                0..=2 => (format!("/fhir/r4/Patient/pt-{:05}", i % 5000), 200),
                3 => (String::from("/status"), 200),
                4 => (format!("/fhir/r4/Patient/pt-{i}"), 404),
                _ => (format!("/api/v2/orders/{i}"), 200),
            };
            Event {
                time: Some(1_709_341_200_000_000 + i as i64 * 1_000_000),
                client_ip: Some(format!("203.0.113.{}", i % 7).into()),
                method: Some("GET".into()),
                path: Some(path.into()),
                status: Some(status),
                bytes_out: Some(2400),
                principal: Some("partner-analytics".into()),
                ..Event::default()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let key = Key::from_bytes(b"bench key 0123456789abcdef");
    let evs = events(10_000);
    let prov = Provenance::file_line(Arc::from("bench.log"), 1);
    let cfg = ExposureConfig::default();
    let mut g = c.benchmark_group("exposure");
    g.throughput(criterion::Throughput::Elements(evs.len() as u64));
    g.bench_function("observe_mixed_10k", |b| {
        b.iter(|| {
            let mut acc = Accumulator::new(&cfg);
            for e in &evs {
                acc.observe(e, &prov, &key);
            }
            black_box(acc.len())
        })
    });
    g.bench_function("clone_event_10k_baseline", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &evs {
                n += black_box(e.clone()).path.map_or(0, |p| p.len());
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
