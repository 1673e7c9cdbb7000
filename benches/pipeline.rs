//! The whole per-record path (decode, detect, exposure, anomaly accesses) over the
//! generated corpus: what each stage adds, as throughput with and without it.
//! `PHIWATCH_BENCH_CORPUS=FILE` picks the corpus (default: a 4 MB corpus generated
//! by benches/gen_corpus.py into the target folder).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phiwatch::decode::Mode;
use phiwatch::detect::Detector;
use phiwatch::event::Provenance;
use phiwatch::pipeline::{Engine, EngineOptions, Output, SourceState};
use phiwatch::redact::Key;
use std::path::PathBuf;
use std::sync::Arc;

fn corpus() -> Vec<u8> {
    if let Ok(p) = std::env::var("PHIWATCH_BENCH_CORPUS") {
        return std::fs::read(p).expect("read corpus");
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target").join("bench-corpus-4mb.log");
    if !out.exists() {
        let ok = std::process::Command::new("python3")
            .arg(root.join("benches/gen_corpus.py"))
            .arg(&out)
            .arg("4")
            .status()
            .expect("python3");
        assert!(ok.success(), "gen_corpus.py failed");
    }
    std::fs::read(out).expect("read corpus")
}

fn engine(anomaly: bool) -> Engine {
    let d = Detector::load(Key::from_bytes(b"bench-key-0123456789abcdef"), None).expect("rules");
    Engine::new(
        d,
        EngineOptions {
            mode: Mode::Auto,
            anomaly,
            ..EngineOptions::default()
        },
    )
}

fn run(engine: &Engine, data: &[u8], mut out: Output) -> usize {
    let mut state = SourceState::default();
    let src: Arc<str> = Arc::from("bench");
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let prov = Provenance::file_line(src.clone(), i as u64 + 1);
        engine.process_record(line, &prov, &mut state, &mut out);
    }
    out.findings.len()
}

fn bench(c: &mut Criterion) {
    let data = corpus();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    let plain = engine(false);
    let full = engine(true);
    g.bench_function("decode_detect", |b| {
        b.iter(|| run(&plain, &data, Output::default()))
    });
    g.bench_function("decode_detect_exposure", |b| {
        b.iter(|| run(&plain, &data, plain.output()))
    });
    g.bench_function("decode_detect_exposure_anomaly_access", |b| {
        b.iter(|| run(&full, &data, full.output()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
