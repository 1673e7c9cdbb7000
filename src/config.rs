//! The TOML config file (`--config FILE`). Unknown keys are errors; values are
//! validated on load. Command-line flags override it.
//!
//! ```toml
//! key_file = "/etc/phiwatch/key"      # hex HMAC key; PHIWATCH_KEY overrides
//! rules_dir = "/etc/phiwatch/rules"   # adds or replaces built-in rules by id
//! format = "kong"                     # force one decoder (default: auto-detect)
//!
//! [replay]
//! threads = 8
//! max_record_bytes = 1048576
//! block_bytes = 4194304
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Errors loading a config file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the file failed.
    #[error("config {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range.
    #[error("config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// File holding the HMAC key as hex.
    pub key_file: Option<PathBuf>,
    /// Folder of extra rules.
    pub rules_dir: Option<PathBuf>,
    /// Decoder to force for every record (default: auto-detect).
    pub format: Option<String>,
    /// Replay settings.
    #[serde(default)]
    pub replay: ReplayConfig,
    /// Kafka settings for `phiwatch run`.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// Output settings for `phiwatch run`.
    #[serde(default)]
    pub output: OutputConfig,
    /// Alert settings for `phiwatch run`.
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Metrics endpoint for `phiwatch run`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Exposure counting: FHIR base paths, window, exact cap, sketch size.
    #[serde(default)]
    pub exposure: crate::exposure::ExposureConfig,
    /// Anomaly rules: out-of-order tolerance, key cap.
    #[serde(default)]
    pub anomaly: crate::anomaly::AnomalyConfig,
}

/// `[kafka]` settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `HOST:PORT[,...]`.
    pub brokers: Option<String>,
    /// Consumer group id.
    pub group: Option<String>,
    /// Topics to consume.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Decoder pinned per topic (topic -> format name); others are auto-detected.
    #[serde(default)]
    pub topic_formats: std::collections::BTreeMap<String, String>,
    /// Where a group with no committed offset starts: `earliest` (default) or `latest`.
    pub auto_offset_reset: Option<String>,
    /// Consumer session timeout (default 45000).
    pub session_timeout_ms: Option<u64>,
    /// Prefetch cap per partition queue in KiB (default 65536).
    pub max_prefetch_kbytes: Option<u64>,
    /// Topic that receives a JSON description of every dead letter (no content).
    pub dead_letter_topic: Option<String>,
    /// librdkafka properties passed through as they are (`security.protocol`,
    /// `sasl.mechanism`, `ssl.ca.location` ...). Secrets can come from the
    /// environment instead: `PHIWATCH_KAFKA_SASL_USERNAME`,
    /// `PHIWATCH_KAFKA_SASL_PASSWORD`, `PHIWATCH_KAFKA_SSL_KEY_PASSWORD`.
    #[serde(default)]
    pub overrides: std::collections::BTreeMap<String, String>,
}

/// `[output]` settings for `phiwatch run`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Output folder.
    pub dir: Option<PathBuf>,
    /// Roll a partition's files after this many input bytes (default 128 MiB).
    pub roll_bytes: Option<u64>,
    /// Roll a partition's files after this long (default 60000).
    pub roll_ms: Option<u64>,
}

/// `[alerts]` settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Topic for OCSF alerts.
    pub topic: Option<String>,
    /// Lowest severity that alerts (default `high`).
    pub min_severity: Option<String>,
    /// One alert per (rule, principal) per this window (default 600000).
    pub suppress_ms: Option<u64>,
}

/// `[metrics]` settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Listen address (default `127.0.0.1:9464`); `off` disables the endpoint.
    pub listen: Option<String>,
}

/// `[replay]` settings.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// Worker threads (default: all cores).
    pub threads: Option<usize>,
    /// Records longer than this are dead-lettered (default 1 MiB).
    pub max_record_bytes: Option<usize>,
    /// Bytes per parallel block (default 4 MiB).
    pub block_bytes: Option<usize>,
}

impl Config {
    /// Load and validate a config file.
    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parse and validate config text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        let cfg: Config = toml::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        let invalid = |message: &str| Error::Invalid {
            path: path.to_path_buf(),
            message: message.to_string(),
        };
        if cfg.replay.threads == Some(0) {
            return Err(invalid("replay.threads must be at least 1"));
        }
        if cfg.replay.max_record_bytes.is_some_and(|n| n < 64) {
            return Err(invalid("replay.max_record_bytes must be at least 64"));
        }
        if let Some(r) = &cfg.kafka.auto_offset_reset
            && r != "earliest"
            && r != "latest"
        {
            return Err(invalid(
                "kafka.auto_offset_reset must be earliest or latest",
            ));
        }
        for (topic, f) in &cfg.kafka.topic_formats {
            f.parse::<crate::decode::Format>()
                .map_err(|e| invalid(&format!("kafka.topic_formats.{topic}: {e}")))?;
        }
        if let Some(s) = &cfg.alerts.min_severity {
            crate::finding::Severity::parse(s).ok_or_else(|| {
                invalid("alerts.min_severity must be info, low, medium, high or critical")
            })?;
        }
        if cfg.output.roll_ms == Some(0) || cfg.output.roll_bytes == Some(0) {
            return Err(invalid(
                "output.roll_ms and output.roll_bytes must be positive",
            ));
        }
        if let Some(f) = &cfg.format {
            f.parse::<crate::decode::Format>()
                .map_err(|e| invalid(&format!("format: {e}")))?;
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let p = Path::new("t.toml");
        let c = Config::parse("key_file = \"k\"\n[replay]\nthreads = 4\n", p).expect("parse");
        assert_eq!(c.replay.threads, Some(4));
        let e = Config::parse("[replay]\nthreds = 4\n", p).expect_err("unknown key");
        assert!(e.to_string().contains("threds"), "{e}");
        assert!(Config::parse("[replay]\nthreads = 0\n", p).is_err());
        assert!(Config::parse("format = \"nope\"\n", p).is_err());
    }
}
