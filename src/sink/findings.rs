//! The findings table: CONTRACT.md's columns, names and types.

use crate::finding::Finding;
use arrow::array::{
    ArrayRef, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt16Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use std::sync::{Arc, LazyLock};

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let utf8 = |n: &str, null: bool| Field::new(n, DataType::Utf8, null);
    Arc::new(Schema::new(vec![
        utf8("finding_id", false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        utf8("rule_id", false),
        utf8("category", false),
        utf8("kind", false),
        utf8("severity", false),
        Field::new("confidence", DataType::Float32, false),
        Field::new("ocsf_class_uid", DataType::Int32, false),
        utf8("source_format", false),
        utf8("source", false),
        Field::new("source_line", DataType::UInt64, true),
        Field::new("kafka_partition", DataType::Int32, true),
        Field::new("kafka_offset", DataType::Int64, true),
        utf8("location", false),
        utf8("value_hmac", false),
        utf8("value_masked", false),
        utf8("key_id", false),
        utf8("principal", true),
        utf8("client_ip", true),
        utf8("dest_host", true),
        utf8("http_method", true),
        utf8("url_path", true),
        Field::new("http_status", DataType::UInt16, true),
        utf8("detail", true),
    ]))
});

/// The findings schema.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

fn strings<'a>(rows: &'a [Finding], f: impl Fn(&'a Finding) -> &'a str) -> ArrayRef {
    Arc::new(rows.iter().map(|r| Some(f(r))).collect::<StringArray>())
}

fn opt_strings<'a>(rows: &'a [Finding], f: impl Fn(&'a Finding) -> Option<&'a str>) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<StringArray>())
}

/// Findings as one record batch.
pub fn to_batch(rows: &[Finding]) -> Result<RecordBatch, ArrowError> {
    let cols: Vec<ArrayRef> = vec![
        strings(rows, |r| &r.finding_id),
        Arc::new(
            rows.iter()
                .map(|r| r.time)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
        strings(rows, |r| &r.rule_id),
        strings(rows, |r| r.category.as_str()),
        strings(rows, |r| &r.kind),
        strings(rows, |r| r.severity.as_str()),
        Arc::new(rows.iter().map(|r| r.confidence).collect::<Float32Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.ocsf_class_uid())
                .collect::<Int32Array>(),
        ),
        strings(rows, |r| r.source_format),
        strings(rows, |r| &r.source),
        Arc::new(rows.iter().map(|r| r.source_line).collect::<UInt64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.kafka_partition)
                .collect::<Int32Array>(),
        ),
        Arc::new(rows.iter().map(|r| r.kafka_offset).collect::<Int64Array>()),
        strings(rows, |r| &r.location),
        strings(rows, |r| &r.value_hmac),
        strings(rows, |r| &r.value_masked),
        strings(rows, |r| &r.key_id),
        opt_strings(rows, |r| r.principal.as_deref()),
        opt_strings(rows, |r| r.client_ip.as_deref()),
        opt_strings(rows, |r| r.dest_host.as_deref()),
        opt_strings(rows, |r| r.http_method.as_deref()),
        opt_strings(rows, |r| r.url_path.as_deref()),
        Arc::new(rows.iter().map(|r| r.http_status).collect::<UInt16Array>()),
        opt_strings(rows, |r| r.detail.as_deref()),
    ];
    RecordBatch::try_new(schema(), cols)
}
