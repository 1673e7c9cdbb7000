//! Exact sets, DataSketches HLL sketches, merging, and compatibility with the
//! Apache DataSketches libraries.

mod exposure_common;

use datasketches::hll::HllSketch;
use exposure_common::{key, patients, read_exposure, roundtrip, write_exposure};
use phiwatch::exposure::distinct::sketch_update;
use phiwatch::exposure::{Accumulator, ExposureConfig, UnionCounter};
use std::path::Path;
use std::process::Command;

#[test]
fn disjoint_event_sets_merge_to_the_counts_of_one_accumulator() {
    let k = key();
    // Overlapping patient ranges seen from one IP, split across three "files".
    let whole = {
        let mut a = patients(0..700, "p", "198.51.100.1", &k);
        a.merge(patients(300..1200, "p", "198.51.100.1", &k));
        a
    };
    let mut parts = patients(0..700, "p", "198.51.100.1", &k);
    let b = patients(300..900, "p", "198.51.100.1", &k);
    let c = patients(900..1200, "p", "198.51.100.1", &k);
    parts.merge(c);
    parts.merge(b);
    let (rw, rp) = (roundtrip(&whole, &k), roundtrip(&parts, &k));
    assert_eq!(rw.len(), 1);
    assert_eq!(rp.len(), 1);
    assert_eq!(rw[0].patients_count, 1200);
    assert_eq!(rp[0].patients_count, 1200);
    assert!(rp[0].patients_exact);
    assert_eq!(rw[0].patient_hashes, rp[0].patient_hashes);
    assert_eq!(rp[0].requests, 700 + 600 + 300);
}

#[test]
fn exact_above_500_stays_exact_through_parquet() {
    let k = key();
    let dir = tempfile::tempdir().expect("tmp");
    let acc = patients(0..2000, "x", "198.51.100.2", &k);
    write_exposure(dir.path(), "a", &acc, &k);
    let rows = read_exposure(&dir.path().join("exposure/a.parquet"));
    assert_eq!(rows.len(), 1);
    assert!(rows[0].patients_exact);
    assert_eq!(rows[0].patients_count, 2000);
    let hashes = rows[0].patient_hashes.as_ref().expect("hashes while exact");
    assert_eq!(hashes.len(), 2000);
    assert!(
        hashes.windows(2).all(|w| w[0] < w[1]),
        "sorted and distinct"
    );
    // The sketch is written even while exact, and agrees closely.
    let s = HllSketch::deserialize(&rows[0].patients_sketch).expect("sketch");
    assert!((s.estimate() - 2000.0).abs() < 2000.0 * 0.05);
}

#[test]
fn exact_cap_boundary() {
    let k = key();
    let cfg = ExposureConfig::default();
    assert_eq!(cfg.exact_cap, 16_384);
    let at_cap = patients(0..16_384, "c", "198.51.100.3", &k);
    let r = &roundtrip(&at_cap, &k)[0];
    assert!(r.patients_exact);
    assert_eq!(r.patients_count, 16_384);
    let over = patients(0..16_385, "c", "198.51.100.3", &k);
    let r = &roundtrip(&over, &k)[0];
    assert!(!r.patients_exact);
    assert!(r.patient_hashes.is_none());
}

#[test]
fn beyond_the_cap_the_estimate_is_within_its_bounds() {
    let k = key();
    let n = 40_000u32;
    // Built from two merged halves, so the sketch union path is exercised too.
    let mut acc = patients(0..25_000, "big", "198.51.100.4", &k);
    acc.merge(patients(15_000..n, "big", "198.51.100.4", &k));
    let rows = roundtrip(&acc, &k);
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].patients_exact);
    let mut u = UnionCounter::new(12);
    u.add_sketch(&HllSketch::deserialize(&rows[0].patients_sketch).expect("sketch"));
    let e = u.estimate();
    assert!(!e.exact);
    assert!(e.lower <= u64::from(n) && u64::from(n) <= e.upper, "{e:?}");
    assert!(e.lower <= e.value && e.value <= e.upper);
    assert!(
        (e.value as f64 - f64::from(n)).abs() / f64::from(n) < 0.05,
        "{e:?}"
    );
    // An exact row merged in raises nothing below what is known exactly.
    let mut u2 = UnionCounter::new(12);
    u2.add_hashes(&[1, 2, 3]);
    assert_eq!(u2.estimate().value, 3);
    assert!(u2.estimate().exact);
}

#[derive(serde::Deserialize)]
struct Expected {
    lg_k: u8,
    n: u64,
    estimate: f64,
    lower_2sd: f64,
    upper_2sd: f64,
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sketch")
}

/// Sketches written once by the Apache DataSketches Python library (see
/// tests/py/make_reference.py) read back with the same estimate and bounds, and a
/// sketch phiwatch builds from the same values has the same estimate.
#[test]
fn reference_sketches_from_python_read_back_with_the_same_estimate() {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).expect("expected.json");
    let cases: std::collections::BTreeMap<String, Expected> =
        serde_json::from_str(&text).expect("json");
    assert_eq!(cases.len(), 4);
    for (stem, want) in cases {
        let bytes = std::fs::read(fixtures().join(format!("{stem}.bin"))).expect("bin");
        let s = HllSketch::deserialize(&bytes).expect("deserialize");
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert_eq!(s.lg_config_k(), want.lg_k, "{stem}");
        assert!(
            close(s.estimate(), want.estimate),
            "{stem}: {} vs {}",
            s.estimate(),
            want.estimate
        );
        let lb = s.lower_bound(datasketches::common::NumStdDev::Two);
        let ub = s.upper_bound(datasketches::common::NumStdDev::Two);
        assert!(
            close(lb, want.lower_2sd),
            "{stem} lower {lb} vs {}",
            want.lower_2sd
        );
        assert!(
            close(ub, want.upper_2sd),
            "{stem} upper {ub} vs {}",
            want.upper_2sd
        );
        let mut ours = HllSketch::new(want.lg_k, s.target_type()).expect("new");
        for i in 0..want.n {
            sketch_update(&mut ours, i);
        }
        assert!(
            close(ours.estimate(), want.estimate),
            "{stem}: ours {}",
            ours.estimate()
        );
    }
}

fn python_has_datasketches() -> bool {
    Command::new("python3")
        .args(["-c", "import datasketches"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A sketch written by phiwatch is read by Apache DataSketches for Python with the
/// same estimate. Skipped (with a notice) when python3 lacks `datasketches`.
#[test]
fn python_datasketches_reads_phiwatch_sketches() {
    if !python_has_datasketches() {
        eprintln!(
            "skipped: python3 with the datasketches module is not available (pip install datasketches)"
        );
        return;
    }
    let k = key();
    let dir = tempfile::tempdir().expect("tmp");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_sketch.py");
    let small = patients(0..700, "py", "198.51.100.5", &k);
    let large = patients(0..30_000, "py", "198.51.100.5", &k);
    for (name, acc) in [("small", small), ("large", large)] {
        let row = &roundtrip(&acc, &k)[0];
        let path = dir.path().join(format!("{name}.bin"));
        std::fs::write(&path, &row.patients_sketch).expect("write");
        let out = Command::new("python3")
            .arg(&script)
            .arg(&path)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf8");
        let fields: Vec<f64> = text
            .split_whitespace()
            .map(|f| f.parse().expect("number"))
            .collect();
        let ours = HllSketch::deserialize(&row.patients_sketch).expect("sketch");
        assert!(
            (fields[0] - ours.estimate()).abs() < 1e-6,
            "{name}: python {} rust {}",
            fields[0],
            ours.estimate()
        );
        assert_eq!(fields[3] as u8, ours.lg_config_k());
    }
}

#[test]
fn accumulator_with_no_phi_is_empty() {
    let acc = Accumulator::new(&ExposureConfig::default());
    assert!(acc.is_empty());
}
