//! Detector throughput on decoded events: benign gateway lines and lines with
//! planted PHI (from the labeled evaluation set).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phiwatch::decode::{self, FileState, Format, Mode};
use phiwatch::detect::Detector;
use phiwatch::event::{Event, Provenance};
use phiwatch::redact::Key;
use std::hint::black_box;
use std::sync::Arc;

fn events(lines: &[String]) -> Vec<(Event<'_>, Format)> {
    let mut out = Vec::new();
    for l in lines {
        let mut evs = Vec::new();
        if let Ok(f) = decode::decode_record(
            l.as_bytes(),
            Mode::AutoTextFallback,
            &mut FileState::default(),
            &mut evs,
        ) {
            out.extend(evs.into_iter().map(|e| (e, f)));
        }
    }
    out
}

fn planted() -> Vec<String> {
    let text = include_str!("../fixtures/eval/labeled.jsonl");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["line"].as_str().map(str::to_string))
        .collect()
}

fn benign() -> Vec<String> {
    (0..500)
        .map(|i| {
            format!(
                r#"10.0.{}.{} - - [15/Jan/2024:10:22:31 +0000] "GET /api/v1/items?page={}&_count=20&ts=2024-01-15T10:22:31Z HTTP/1.1" 200 {} "-" "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0""#,
                i % 255,
                i % 200 + 1,
                i % 50,
                1000 + i * 7
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let detector = Detector::load(Key::from_bytes(b"bench key 0123456789"), None).expect("rules");
    let prov = Provenance::file_line(Arc::from("bench"), 1);
    for (name, lines) in [("benign", benign()), ("planted", planted())] {
        let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
        let evs = events(&lines);
        let mut group = c.benchmark_group("detect");
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(name, |b| {
            let mut out = Vec::new();
            b.iter(|| {
                out.clear();
                for (e, f) in &evs {
                    detector.scan(e, &prov, *f, &mut out);
                }
                black_box(out.len())
            })
        });
        group.bench_function(format!("{name}_decode_and_scan"), |b| {
            let mut out = Vec::new();
            let mut evs = Vec::new();
            let mut state = FileState::default();
            b.iter(|| {
                out.clear();
                for l in &lines {
                    evs.clear();
                    if let Ok(f) = decode::decode_record(
                        l.as_bytes(),
                        Mode::AutoTextFallback,
                        &mut state,
                        &mut evs,
                    ) {
                        for e in &evs {
                            detector.scan(e, &prov, f, &mut out);
                        }
                    }
                }
                black_box(out.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
