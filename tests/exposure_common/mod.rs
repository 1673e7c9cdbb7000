//! Helpers shared by the exposure and report tests: events, keys, Parquet I/O.
#![allow(dead_code)]

use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use phiwatch::event::Event;
use phiwatch::exposure::{Accumulator, ExposureRow, read_batch};
use phiwatch::redact::Key;
use std::path::Path;

/// The test key.
pub fn key() -> Key {
    Key::from_bytes(b"phiwatch test key 0123456789")
}

/// A GET with a path, query and status.
pub fn get<'a>(path: &'a str, query: Option<&'a str>, status: u16) -> Event<'a> {
    Event {
        time: Some(1_709_251_200_000_000),
        client_ip: Some("203.0.113.9".into()),
        method: Some("GET".into()),
        path: Some(path.into()),
        query: query.map(Into::into),
        status: Some(status),
        bytes_out: Some(1000),
        ..Event::default()
    }
}

/// Rows of an accumulator after a batch round trip.
pub fn roundtrip(acc: &Accumulator, key: &Key) -> Vec<ExposureRow> {
    let batch = acc.to_record_batch(key.id()).expect("batch");
    read_batch(&batch).expect("read back")
}

fn union(rows: &[ExposureRow], f: impl Fn(&ExposureRow) -> Option<&Vec<u64>>) -> Vec<u64> {
    let mut v: Vec<u64> = rows
        .iter()
        .flat_map(|r| f(r).cloned().unwrap_or_default())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Sorted distinct patient hashes over all rows (rows must be exact).
pub fn patients_of(acc: &Accumulator, key: &Key) -> Vec<u64> {
    union(&roundtrip(acc, key), |r| r.patient_hashes.as_ref())
}

/// Sorted distinct record hashes over all rows (rows must be exact).
pub fn records_of(acc: &Accumulator, key: &Key) -> Vec<u64> {
    union(&roundtrip(acc, key), |r| r.record_hashes.as_ref())
}

/// Write an accumulator as `dir/exposure/NAME.parquet` (zstd), as the sink does.
pub fn write_exposure(dir: &Path, name: &str, acc: &Accumulator, key: &Key) {
    let batch = acc.to_record_batch(key.id()).expect("batch");
    let sub = dir.join("exposure");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let path = sub.join(format!("{name}.parquet"));
    let file = std::fs::File::create(&path).expect("create");
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
}

/// Read every row of one exposure Parquet file.
pub fn read_exposure(path: &Path) -> Vec<ExposureRow> {
    let file = std::fs::File::open(path).expect("open");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("reader")
        .build()
        .expect("build");
    let mut rows = Vec::new();
    for b in reader {
        rows.extend(read_batch(&b.expect("batch")).expect("rows"));
    }
    rows
}

/// An accumulator holding one `Patient/<prefix><i>` read per i in `range`.
pub fn patients(range: std::ops::Range<u32>, prefix: &str, ip: &str, key: &Key) -> Accumulator {
    let mut acc = Accumulator::new(&phiwatch::exposure::ExposureConfig::default());
    let prov = phiwatch::event::Provenance::file_line(std::sync::Arc::from("gw.log"), 1);
    for i in range {
        let path = format!("/fhir/Patient/{prefix}{i}");
        let mut ev = get(&path, None, 200);
        ev.client_ip = Some(ip.into());
        ev.time = Some(1_709_251_200_000_000 + i64::from(i) * 1_000);
        acc.observe(&ev, &prov, key);
    }
    acc
}
