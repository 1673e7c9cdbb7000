//! Dead letters: records that could not be decoded, with their source and the
//! reason, and a shape-only preview that carries no content.

use arrow::array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use std::sync::{Arc, LazyLock};

/// Bytes of a record that the preview describes.
pub const PREVIEW_LEN: usize = 48;

/// One record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// File path as given, or Kafka topic.
    pub source: Arc<str>,
    /// 1-based line in a file.
    pub source_line: Option<u64>,
    /// Kafka partition.
    pub kafka_partition: Option<i32>,
    /// Kafka offset.
    pub kafka_offset: Option<i64>,
    /// Record length in bytes.
    pub length: u64,
    /// Why it could not be decoded.
    pub reason: String,
    /// Shape of the first bytes: letters as `a`/`A`, digits as `9`, other bytes as
    /// `.`, punctuation kept. Never content.
    pub preview: String,
}

/// The shape-only preview of a record: enough to tell JSON from text or binary,
/// never enough to read a value.
pub fn preview(record: &[u8]) -> String {
    record
        .iter()
        .take(PREVIEW_LEN)
        .map(|&b| match b {
            b'a'..=b'z' => 'a',
            b'A'..=b'Z' => 'A',
            b'0'..=b'9' => '9',
            b' ' => ' ',
            b if b.is_ascii_punctuation() => b as char,
            _ => '.',
        })
        .collect()
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("source_line", DataType::UInt64, true),
        Field::new("kafka_partition", DataType::Int32, true),
        Field::new("kafka_offset", DataType::Int64, true),
        Field::new("length", DataType::UInt64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("preview", DataType::Utf8, false),
    ]))
});

/// The dead-letter schema.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Dead letters as one record batch.
pub fn to_batch(rows: &[DeadLetter]) -> Result<RecordBatch, ArrowError> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(
            rows.iter()
                .map(|r| Some(&*r.source))
                .collect::<StringArray>(),
        ),
        Arc::new(rows.iter().map(|r| r.source_line).collect::<UInt64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.kafka_partition)
                .collect::<Int32Array>(),
        ),
        Arc::new(rows.iter().map(|r| r.kafka_offset).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| Some(r.length)).collect::<UInt64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.reason.as_str()))
                .collect::<StringArray>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.preview.as_str()))
                .collect::<StringArray>(),
        ),
    ];
    RecordBatch::try_new(schema(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_keeps_shape_not_content() {
        let p = preview(b"{\"ssn\":\"123-45-6789\",\"x\":\"\xff\"}");
        assert_eq!(p, "{\"aaa\":\"999-99-9999\",\"a\":\".\"}");
        assert_eq!(preview(&[b'a'; 500]).len(), PREVIEW_LEN);
    }
}
