//! The exposure Parquet columns (CONTRACT.md), written and read back.
//!
//! Beyond the contract's columns, three are added at the end: `first_seen` and
//! `last_seen` (the first and last PHI-bearing request of the row, so the report
//! gives times finer than the window) and `resource_types` (the patient-data FHIR
//! resource types touched, evidence for the nature of the PHI).

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType, UInt64Type,
};
use arrow::error::ArrowError;
use std::sync::{Arc, LazyLock};

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let u64_list = DataType::List(Arc::new(Field::new_list_field(DataType::UInt64, true)));
    let str_list = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    Arc::new(Schema::new(vec![
        Field::new("principal", DataType::Utf8, true),
        Field::new("client_ip", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, false),
        Field::new("window_start", ts(), false),
        Field::new("window_end", ts(), false),
        Field::new("requests", DataType::UInt64, false),
        Field::new("bytes_out", DataType::UInt64, false),
        Field::new("patients_count", DataType::UInt64, false),
        Field::new("records_count", DataType::UInt64, false),
        Field::new("patients_exact", DataType::Boolean, false),
        Field::new("records_exact", DataType::Boolean, false),
        Field::new("patient_hashes", u64_list.clone(), true),
        Field::new("record_hashes", u64_list, true),
        Field::new("patients_sketch", DataType::Binary, false),
        Field::new("records_sketch", DataType::Binary, false),
        Field::new("key_id", DataType::Utf8, false),
        Field::new("first_seen", ts(), true),
        Field::new("last_seen", ts(), true),
        Field::new("resource_types", str_list, false),
    ]))
});

/// The exposure schema: CONTRACT.md's columns in its order, then `first_seen`,
/// `last_seen` and `resource_types`.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// One exposure row, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct ExposureRow {
    /// Who made the requests.
    pub principal: Option<String>,
    /// Client IP.
    pub client_ip: Option<String>,
    /// File path or Kafka topic.
    pub source: String,
    /// Window start, µs since the epoch (UTC).
    pub window_start: i64,
    /// Window end (exclusive), µs since the epoch (UTC).
    pub window_end: i64,
    /// Successful PHI-bearing requests.
    pub requests: u64,
    /// Bytes sent in those requests.
    pub bytes_out: u64,
    /// Distinct patients (exact, or the sketch estimate).
    pub patients_count: u64,
    /// Distinct records (exact, or the sketch estimate).
    pub records_count: u64,
    /// Whether `patient_hashes` holds every patient.
    pub patients_exact: bool,
    /// Whether `record_hashes` holds every record.
    pub records_exact: bool,
    /// Sorted keyed patient hashes while exact.
    pub patient_hashes: Option<Vec<u64>>,
    /// Sorted keyed record hashes while exact.
    pub record_hashes: Option<Vec<u64>>,
    /// DataSketches HLL of the patient hashes.
    pub patients_sketch: Vec<u8>,
    /// DataSketches HLL of the record hashes.
    pub records_sketch: Vec<u8>,
    /// Fingerprint of the key the hashes were made with.
    pub key_id: String,
    /// First request in the row, µs.
    pub first_seen: Option<i64>,
    /// Last request in the row, µs.
    pub last_seen: Option<i64>,
    /// Patient-data resource types touched, sorted.
    pub resource_types: Vec<String>,
}

/// Column builders for [`schema`].
pub(crate) struct Builder {
    principal: StringBuilder,
    client_ip: StringBuilder,
    source: StringBuilder,
    window_start: TimestampMicrosecondBuilder,
    window_end: TimestampMicrosecondBuilder,
    requests: UInt64Builder,
    bytes_out: UInt64Builder,
    patients_count: UInt64Builder,
    records_count: UInt64Builder,
    patients_exact: BooleanBuilder,
    records_exact: BooleanBuilder,
    patient_hashes: ListBuilder<UInt64Builder>,
    record_hashes: ListBuilder<UInt64Builder>,
    patients_sketch: BinaryBuilder,
    records_sketch: BinaryBuilder,
    key_id: StringBuilder,
    first_seen: TimestampMicrosecondBuilder,
    last_seen: TimestampMicrosecondBuilder,
    resource_types: ListBuilder<StringBuilder>,
}

fn ts_builder(n: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC")
}

fn push_list(b: &mut ListBuilder<UInt64Builder>, v: Option<&[u64]>) {
    match v {
        Some(v) => {
            b.values().append_slice(v);
            b.append(true);
        }
        None => b.append(false),
    }
}

impl Builder {
    pub(crate) fn with_capacity(n: usize) -> Builder {
        Builder {
            principal: StringBuilder::with_capacity(n, n * 16),
            client_ip: StringBuilder::with_capacity(n, n * 16),
            source: StringBuilder::with_capacity(n, n * 32),
            window_start: ts_builder(n),
            window_end: ts_builder(n),
            requests: UInt64Builder::with_capacity(n),
            bytes_out: UInt64Builder::with_capacity(n),
            patients_count: UInt64Builder::with_capacity(n),
            records_count: UInt64Builder::with_capacity(n),
            patients_exact: BooleanBuilder::with_capacity(n),
            records_exact: BooleanBuilder::with_capacity(n),
            patient_hashes: ListBuilder::new(UInt64Builder::new()),
            record_hashes: ListBuilder::new(UInt64Builder::new()),
            patients_sketch: BinaryBuilder::new(),
            records_sketch: BinaryBuilder::new(),
            key_id: StringBuilder::with_capacity(n, n * 12),
            first_seen: ts_builder(n),
            last_seen: ts_builder(n),
            resource_types: ListBuilder::new(StringBuilder::new()),
        }
    }

    pub(crate) fn push(&mut self, r: &ExposureRow) {
        self.principal.append_option(r.principal.as_deref());
        self.client_ip.append_option(r.client_ip.as_deref());
        self.source.append_value(&r.source);
        self.window_start.append_value(r.window_start);
        self.window_end.append_value(r.window_end);
        self.requests.append_value(r.requests);
        self.bytes_out.append_value(r.bytes_out);
        self.patients_count.append_value(r.patients_count);
        self.records_count.append_value(r.records_count);
        self.patients_exact.append_value(r.patients_exact);
        self.records_exact.append_value(r.records_exact);
        push_list(&mut self.patient_hashes, r.patient_hashes.as_deref());
        push_list(&mut self.record_hashes, r.record_hashes.as_deref());
        self.patients_sketch.append_value(&r.patients_sketch);
        self.records_sketch.append_value(&r.records_sketch);
        self.key_id.append_value(&r.key_id);
        self.first_seen.append_option(r.first_seen);
        self.last_seen.append_option(r.last_seen);
        for t in &r.resource_types {
            self.resource_types.values().append_value(t);
        }
        self.resource_types.append(true);
    }

    pub(crate) fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.principal.finish()),
            Arc::new(self.client_ip.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.window_start.finish()),
            Arc::new(self.window_end.finish()),
            Arc::new(self.requests.finish()),
            Arc::new(self.bytes_out.finish()),
            Arc::new(self.patients_count.finish()),
            Arc::new(self.records_count.finish()),
            Arc::new(self.patients_exact.finish()),
            Arc::new(self.records_exact.finish()),
            Arc::new(self.patient_hashes.finish()),
            Arc::new(self.record_hashes.finish()),
            Arc::new(self.patients_sketch.finish()),
            Arc::new(self.records_sketch.finish()),
            Arc::new(self.key_id.finish()),
            Arc::new(self.first_seen.finish()),
            Arc::new(self.last_seen.finish()),
            Arc::new(self.resource_types.finish()),
        ];
        RecordBatch::try_new(schema(), cols)
    }
}

fn col<'b>(batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef, ArrowError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("exposure column {name} missing")))
}

fn type_err(name: &str) -> ArrowError {
    ArrowError::SchemaError(format!("exposure column {name} has the wrong type"))
}

macro_rules! typed {
    ($batch:expr, $name:expr, $method:ident $(::<$t:ty>)?) => {
        col($batch, $name)?
            .$method$(::<$t>)?()
            .ok_or_else(|| type_err($name))?
    };
}

/// Read the rows of an exposure record batch (as written by phiwatch; the three
/// added columns may be missing in files from other writers).
pub fn read_batch(batch: &RecordBatch) -> Result<Vec<ExposureRow>, ArrowError> {
    let principal = typed!(batch, "principal", as_string_opt::<i32>);
    let client_ip = typed!(batch, "client_ip", as_string_opt::<i32>);
    let source = typed!(batch, "source", as_string_opt::<i32>);
    let ws = typed!(
        batch,
        "window_start",
        as_primitive_opt::<TimestampMicrosecondType>
    );
    let we = typed!(
        batch,
        "window_end",
        as_primitive_opt::<TimestampMicrosecondType>
    );
    let requests = typed!(batch, "requests", as_primitive_opt::<UInt64Type>);
    let bytes_out = typed!(batch, "bytes_out", as_primitive_opt::<UInt64Type>);
    let pc = typed!(batch, "patients_count", as_primitive_opt::<UInt64Type>);
    let rc = typed!(batch, "records_count", as_primitive_opt::<UInt64Type>);
    let pe = typed!(batch, "patients_exact", as_boolean_opt);
    let re = typed!(batch, "records_exact", as_boolean_opt);
    let ph = typed!(batch, "patient_hashes", as_list_opt::<i32>);
    let rh = typed!(batch, "record_hashes", as_list_opt::<i32>);
    let ps = typed!(batch, "patients_sketch", as_binary_opt::<i32>);
    let rs = typed!(batch, "records_sketch", as_binary_opt::<i32>);
    let key_id = typed!(batch, "key_id", as_string_opt::<i32>);
    let ts_opt = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
    };
    let first = ts_opt("first_seen");
    let last = ts_opt("last_seen");
    let types = batch
        .column_by_name("resource_types")
        .and_then(|c| c.as_list_opt::<i32>());
    let hashes = |l: &arrow::array::ListArray, i: usize| -> Result<Option<Vec<u64>>, ArrowError> {
        if l.is_null(i) {
            return Ok(None);
        }
        let v = l.value(i);
        let v = v
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| type_err("patient_hashes"))?;
        Ok(Some(v.values().to_vec()))
    };
    let text = |a: &arrow::array::StringArray, i: usize| -> Option<String> {
        (!a.is_null(i)).then(|| a.value(i).to_string())
    };
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let resource_types = match types {
            Some(l) if !l.is_null(i) => {
                let v = l.value(i);
                v.as_string_opt::<i32>()
                    .map(|s| s.iter().flatten().map(String::from).collect())
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        };
        out.push(ExposureRow {
            principal: text(principal, i),
            client_ip: text(client_ip, i),
            source: text(source, i).unwrap_or_default(),
            window_start: ws.value(i),
            window_end: we.value(i),
            requests: requests.value(i),
            bytes_out: bytes_out.value(i),
            patients_count: pc.value(i),
            records_count: rc.value(i),
            patients_exact: pe.value(i),
            records_exact: re.value(i),
            patient_hashes: hashes(ph, i)?,
            record_hashes: hashes(rh, i)?,
            patients_sketch: ps.value(i).to_vec(),
            records_sketch: rs.value(i).to_vec(),
            key_id: text(key_id, i).unwrap_or_default(),
            first_seen: first.and_then(|a| (!a.is_null(i)).then(|| a.value(i))),
            last_seen: last.and_then(|a| (!a.is_null(i)).then(|| a.value(i))),
            resource_types,
        });
    }
    Ok(out)
}
