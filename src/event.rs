//! The normalized event every decoder produces, and where it came from.
//!
//! Decoders turn one vendor record into one or more [`Event`]s; everything after
//! decoding (detection, exposure, sinks) sees only this shape, so a replay of a file
//! and a Kafka stream of the same records give the same findings.

use serde::Serialize;
use std::sync::Arc;

/// One HTTP request (or flow) as seen by a gateway, WAF or egress proxy.
///
/// Every field is optional: formats log different subsets. Times are microseconds
/// since the Unix epoch, UTC. Header names are lower-cased; duplicates are kept in
/// the order the record gave them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Event {
    /// Event time in microseconds since the Unix epoch (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// Client (source) IP address as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Client (source) port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_port: Option<u16>,
    /// Destination host name (Host header, SNI, upstream host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_host: Option<String>,
    /// Destination IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<String>,
    /// Destination port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// HTTP method, upper case as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// URL path without the query string, still percent-encoded as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Raw query string without the leading `?`, still percent-encoded as logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Full URL when the format logs one (scheme and host included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HTTP response status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Bytes received from the client (request size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_in: Option<u64>,
    /// Bytes sent to the client (response size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_out: Option<u64>,
    /// Request duration in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// User-Agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Request or trace id assigned by the gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who made the request as the log names it (consumer, authorizer principal, proxy user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// WAF or proxy action (`ALLOW`, `BLOCK`, `TCP_MISS`, `ACCEPT` ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Ids of WAF rules that matched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_ids: Vec<String>,
    /// Request headers, names lower-cased, duplicates kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Response headers, names lower-cased, duplicates kept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<(String, String)>,
    /// Request or response body when the format logs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Other string fields of the record that detection should still scan
    /// (field path, value), e.g. unmapped keys of a generic JSON line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<(String, String)>,
}

/// Where a record came from: a line of a file, or an offset of a Kafka partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Provenance {
    /// File path as the user gave it (`-` for stdin), or the Kafka topic.
    pub source: Arc<str>,
    /// 1-based line number in a line-oriented file.
    pub line: Option<u64>,
    /// Kafka partition.
    pub kafka_partition: Option<i32>,
    /// Kafka offset.
    pub kafka_offset: Option<i64>,
    /// Index of the event within its record, for formats that batch several
    /// events in one record (a Kong batch array); 0 otherwise.
    pub index: u32,
}

impl Provenance {
    /// Provenance of a line in a file.
    pub fn file_line(source: Arc<str>, line: u64) -> Self {
        Provenance {
            source,
            line: Some(line),
            kafka_partition: None,
            kafka_offset: None,
            index: 0,
        }
    }

    /// Provenance of a Kafka record.
    pub fn kafka(topic: Arc<str>, partition: i32, offset: i64) -> Self {
        Provenance {
            source: topic,
            line: None,
            kafka_partition: Some(partition),
            kafka_offset: Some(offset),
            index: 0,
        }
    }

    /// A short, stable position string used to derive ids: `line:N` or `kafka:P:O`,
    /// with `#I` appended for the I-th event of a batched record.
    pub fn position(&self) -> String {
        let base = match (self.line, self.kafka_partition, self.kafka_offset) {
            (Some(l), _, _) => format!("line:{l}"),
            (None, Some(p), Some(o)) => format!("kafka:{p}:{o}"),
            _ => String::from("-"),
        };
        if self.index == 0 {
            base
        } else {
            format!("{base}#{}", self.index)
        }
    }
}

impl Event {
    /// Value of the first request header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
