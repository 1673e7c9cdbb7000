//! Shared machinery of the rule evaluators: compiled rules, the per-key state
//! enum, and turning an alert into a [`Finding`].

use super::access::Access;
use super::params::{KeyBy, Params};
use super::state::Bounded;
use super::{burst, credential, enumeration, exfil, first_seen, patients, volume};
use crate::finding::{Category, Finding, Severity};
use crate::redact::Key;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A rule ready to run.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub id: Arc<str>,
    pub kind: Arc<str>,
    pub severity: Severity,
    pub confidence: f32,
    pub params: Params,
}

/// Per-key state of any rule. Large states are boxed so the map's slots stay small.
#[derive(Debug)]
pub(crate) enum Slot {
    Enumeration(Box<enumeration::State>),
    Patients(Box<patients::State>),
    Burst(Box<burst::State>),
    ExfilPair(Box<exfil::Pair>),
    Destination(i64),
    FirstSeen(Box<first_seen::State>),
    Volume(Box<volume::State>),
    Credential(Box<credential::State>),
}

impl Slot {
    /// Approximate heap bytes owned by the slot.
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of_val;
        match self {
            Slot::Enumeration(s) => size_of_val(&**s) + s.heap_bytes(),
            Slot::Patients(s) => size_of_val(&**s) + s.heap_bytes(),
            Slot::Burst(s) => size_of_val(&**s) + s.heap_bytes(),
            Slot::ExfilPair(s) => size_of_val(&**s) + s.heap_bytes(),
            Slot::FirstSeen(s) => size_of_val(&**s) + s.heap_bytes(),
            Slot::Volume(s) => size_of_val(&**s) + s.heap_bytes(),
            Slot::Credential(s) => size_of_val(&**s) + s.heap_bytes(),
            Slot::Destination(_) => 0,
        }
    }
}

/// What one firing reports.
#[derive(Debug)]
pub(crate) struct Alert {
    /// Canonical text of the rule's key (hashed, never shown).
    pub key_canon: String,
    /// Masked form of the key, shown as `value_masked`.
    pub masked: String,
    /// `value_hmac` to use instead of the HMAC of `key_canon` (credential_live
    /// reports the credential's own HMAC so the leak finding joins).
    pub value_hmac: Option<String>,
    /// Where the key comes from (`principal+route`, `client_ip` ...).
    pub location: &'static str,
    /// Episode start (event time, µs).
    pub start: i64,
    /// Rule-specific evidence, no raw values.
    pub detail: serde_json::Value,
}

/// What the evaluators share while one access is processed.
pub(crate) struct Ctx<'a> {
    pub state: &'a mut Bounded<Slot>,
    pub key: &'a Key,
    pub out: &'a mut Vec<Finding>,
    /// Event time of the first access the detector processed.
    pub start: i64,
    /// Time of the access being processed.
    pub now: i64,
}

impl Ctx<'_> {
    /// Append the finding of an alert.
    pub(crate) fn emit(&mut self, rule: &Compiled, a: &Access, alert: Alert) {
        let value_hmac = alert.value_hmac.unwrap_or_else(|| {
            let mut canon = Vec::with_capacity(rule.id.len() + alert.key_canon.len() + 9);
            canon.extend_from_slice(b"anomaly:");
            canon.extend_from_slice(rule.id.as_bytes());
            canon.push(0);
            canon.extend_from_slice(alert.key_canon.as_bytes());
            self.key.hmac_hex(&canon)
        });
        let mut id = Sha256::new();
        for part in [
            b"anomaly".as_slice(),
            rule.id.as_bytes(),
            value_hmac.as_bytes(),
            alert.start.to_string().as_bytes(),
        ] {
            id.update(part);
            id.update([0u8]);
        }
        self.out.push(Finding {
            finding_id: hex::encode(&id.finalize()[..16]),
            time: Some(self.now),
            rule_id: rule.id.clone(),
            category: Category::Anomaly,
            kind: rule.kind.clone(),
            severity: rule.severity,
            confidence: rule.confidence,
            source_format: a.format.name(),
            source: a.prov.source.clone(),
            source_line: a.prov.line,
            kafka_partition: a.prov.kafka_partition,
            kafka_offset: a.prov.kafka_offset,
            location: format!("anomaly:{}", alert.location),
            value_hmac,
            value_masked: alert.masked,
            key_id: Arc::from(self.key.id()),
            principal: a.principal.as_deref().map(String::from),
            client_ip: a.client_ip.as_deref().map(String::from),
            dest_host: a.dest_host.as_deref().map(String::from),
            http_method: a.method.as_deref().map(String::from),
            url_path: a.route.as_deref().map(String::from),
            http_status: a.status,
            detail: Some(alert.detail.to_string()),
        });
    }
}

/// The key text of a per-key rule: (location, canonical text, in-memory hash).
pub(crate) fn key_of(by: KeyBy, a: &Access) -> Option<(&'static str, &str)> {
    match (by, a.principal.as_deref(), a.client_ip.as_deref()) {
        (KeyBy::Principal, Some(p), _) => Some(("principal", p)),
        (KeyBy::Principal, None, Some(ip)) | (KeyBy::ClientIp, _, Some(ip)) => {
            Some(("client_ip", ip))
        }
        _ => None,
    }
}

/// Microseconds of a millisecond duration, saturating.
pub(crate) fn us(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// Run every rule on one access (in event-time order).
pub(crate) fn observe(rules: &[Compiled], a: &Access, cx: &mut Ctx<'_>) {
    for (i, rule) in rules.iter().enumerate() {
        match &rule.params {
            Params::Enumeration(p) => enumeration::observe(i, rule, p, a, cx),
            Params::DistinctPatients(p) => patients::observe(i, rule, p, a, cx),
            Params::AuthFailureBurst(p) => burst::observe(i, rule, p, a, cx),
            Params::Exfiltration(p) => exfil::observe(i, rule, p, a, cx),
            Params::FirstSeen(p) => first_seen::observe(i, rule, p, a, cx),
            Params::VolumeSpike(p) => volume::observe(i, rule, p, a, cx),
            Params::CredentialLive(p) => credential::observe(i, rule, p, a, cx),
        }
    }
}
