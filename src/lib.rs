//! phiwatch finds exposed health data (PHI) and leaked credentials in API-gateway,
//! WAF and egress logs, streaming from Kafka or replaying files, and counts how many
//! distinct patients and records were exposed.
//!
//! Data flow: [`source`] -> [`decode`] -> [`detect`] -> [`sink`], with [`exposure`]
//! counting distinct patients and records alongside. [`pipeline`] ties them together
//! and is shared by `replay` (files) and `run` (Kafka).

#![deny(missing_docs)]

pub mod anomaly;
pub mod config;
pub mod decode;
pub mod detect;
pub mod event;
pub mod exposure;
pub mod finding;
pub mod pipeline;
pub mod redact;
pub mod replay;
pub mod report;
pub mod run;
pub mod sink;
pub mod source;
pub mod telemetry;
mod text;
