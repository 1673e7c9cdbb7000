//! A finding: one row of `findings/*.parquet`, with the columns CONTRACT.md names.

use serde::Serialize;
use std::sync::Arc;

/// Finding category (CONTRACT.md `category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Protected health information.
    Phi,
    /// A credential or secret.
    Credential,
    /// A cross-event anomaly.
    Anomaly,
    /// A misconfiguration (PHI in a GET query, a credential in a URL ...).
    Misconfiguration,
}

impl Category {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Phi => "phi",
            Category::Credential => "credential",
            Category::Anomaly => "anomaly",
            Category::Misconfiguration => "misconfiguration",
        }
    }

    /// OCSF class: 2006 Data Security Finding for phi/credential/misconfiguration,
    /// 2004 Detection Finding for anomaly.
    pub fn ocsf_class_uid(self) -> i32 {
        match self {
            Category::Anomaly => 2004,
            _ => 2006,
        }
    }
}

/// Finding severity (CONTRACT.md `severity`), ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parse the contract's spelling.
    pub fn parse(s: &str) -> Option<Severity> {
        [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One finding. Carries only keyed hashes and masks, never a raw value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// Deterministic id from (source, position, rule_id, location, match span).
    pub finding_id: String,
    /// The event's own time, microseconds since the Unix epoch (UTC).
    pub time: Option<i64>,
    /// Id of the rule that fired.
    pub rule_id: Arc<str>,
    /// Category.
    pub category: Category,
    /// Kind (CONTRACT.md vocabulary).
    pub kind: Arc<str>,
    /// Severity.
    pub severity: Severity,
    /// Confidence, 0..1.
    pub confidence: f32,
    /// Decoder name.
    pub source_format: &'static str,
    /// File path as given, or Kafka topic.
    pub source: Arc<str>,
    /// 1-based line in a line-oriented file.
    pub source_line: Option<u64>,
    /// Kafka partition.
    pub kafka_partition: Option<i32>,
    /// Kafka offset.
    pub kafka_offset: Option<i64>,
    /// Where in the event (`url.path`, `url.query:ssn`, `header:authorization`, `body` ...).
    pub location: String,
    /// Hex HMAC-SHA256 of the canonical value under the configured key.
    pub value_hmac: String,
    /// Masked value, never enough to recover it.
    pub value_masked: String,
    /// Short fingerprint of the HMAC key.
    pub key_id: Arc<str>,
    /// Who made the request.
    pub principal: Option<String>,
    /// Client IP.
    pub client_ip: Option<String>,
    /// Destination host.
    pub dest_host: Option<String>,
    /// HTTP method.
    pub http_method: Option<String>,
    /// URL path with detected values masked.
    pub url_path: Option<String>,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// Rule-specific evidence as JSON, without raw values.
    pub detail: Option<String>,
}

impl Finding {
    /// OCSF class uid for this finding's category.
    pub fn ocsf_class_uid(&self) -> i32 {
        self.category.ocsf_class_uid()
    }
}
