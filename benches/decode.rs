//! Decode throughput per format: each fixture's lines repeated to about 1 MiB,
//! decoded with the format forced and with per-record auto-detection.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phiwatch::decode::{FileState, Format, Mode, decode_record};
use std::fs;
use std::hint::black_box;
use std::path::Path;

/// Target input size per benchmark.
const TARGET_BYTES: usize = 1 << 20;

/// The fixture lines of one format, repeated to about [`TARGET_BYTES`].
fn corpus(format: Format) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format.name());
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    // One file per format keeps a VPC header in front of the rows it governs.
    let text = fs::read_to_string(&files[0]).expect("fixture readable");
    let lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
    let size: usize = lines.iter().map(|l| l.len() + 1).sum();
    let repeat = TARGET_BYTES.div_ceil(size.max(1));
    (0..repeat).flat_map(|_| lines.iter().cloned()).collect()
}

fn run(lines: &[Vec<u8>], mode: Mode) -> usize {
    let mut state = FileState::default();
    let mut out = Vec::with_capacity(4);
    let mut events = 0;
    for line in lines {
        out.clear();
        let _ = black_box(decode_record(line, mode, &mut state, &mut out));
        events += out.len();
    }
    events
}

fn bench(c: &mut Criterion) {
    for (label, auto) in [("forced", false), ("auto", true)] {
        let mut group = c.benchmark_group(format!("decode_{label}"));
        for format in Format::ALL {
            if format == Format::Text {
                continue;
            }
            let lines = corpus(format);
            let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
            group.throughput(Throughput::Bytes(bytes as u64));
            let mode = if auto {
                Mode::Auto
            } else {
                Mode::Forced(format)
            };
            group.bench_function(format.name(), |b| b.iter(|| run(&lines, mode)));
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
