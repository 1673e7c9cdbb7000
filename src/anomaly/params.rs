//! Typed `params:` of each anomaly kind, with the defaults that fit gateway
//! traffic. Durations are milliseconds (`*_ms`); unknown keys are errors.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Parsed parameters of one rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Params {
    Enumeration(Enumeration),
    DistinctPatients(DistinctPatients),
    AuthFailureBurst(AuthFailureBurst),
    Exfiltration(Exfiltration),
    FirstSeen(FirstSeen),
    VolumeSpike(VolumeSpike),
    CredentialLive(CredentialLive),
}

fn typed<T: DeserializeOwned + Default>(v: &serde_yaml_ng::Value) -> Result<T, String> {
    if v.is_null() {
        return Ok(T::default());
    }
    serde_yaml_ng::from_value(v.clone()).map_err(|e| format!("params: {e}"))
}

fn positive(name: &str, v: u64) -> Result<(), String> {
    if v == 0 {
        return Err(format!("params: {name} must be positive"));
    }
    Ok(())
}

impl Params {
    /// Parse and check the params of a rule of `kind`.
    pub(crate) fn parse(kind: &str, v: &serde_yaml_ng::Value) -> Result<Params, String> {
        let p = match kind {
            "enumeration" => {
                let p: Enumeration = typed(v)?;
                positive("window_ms", p.window_ms)?;
                positive("max_stride", p.max_stride)?;
                if p.min_distinct < 3 || p.max_entries < p.min_distinct {
                    return Err("params: need 3 <= min_distinct <= max_entries".into());
                }
                Params::Enumeration(p)
            }
            "distinct_patients" => {
                let p: DistinctPatients = typed(v)?;
                positive("window_ms", p.window_ms)?;
                positive("min_patients", u64::from(p.min_patients))?;
                Params::DistinctPatients(p)
            }
            "auth_failure_burst" => {
                let p: AuthFailureBurst = typed(v)?;
                positive("window_ms", p.window_ms)?;
                positive("min_failures", u64::from(p.min_failures))?;
                Params::AuthFailureBurst(p)
            }
            "exfiltration" => {
                let p: Exfiltration = typed(v)?;
                positive("window_ms", p.window_ms)?;
                Params::Exfiltration(p)
            }
            "first_seen" => {
                let p: FirstSeen = typed(v)?;
                positive("max_known", u64::from(p.max_known))?;
                Params::FirstSeen(p)
            }
            "volume_spike" => {
                let p: VolumeSpike = typed(v)?;
                positive("bucket_ms", p.bucket_ms)?;
                if !(p.alpha > 0.0 && p.alpha <= 1.0) {
                    return Err("params: alpha must be within (0, 1]".into());
                }
                Params::VolumeSpike(p)
            }
            "credential_live" => Params::CredentialLive(typed(v)?),
            other => return Err(format!("unknown kind {other:?}")),
        };
        Ok(p)
    }
}

/// Which field keys a per-key rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KeyBy {
    /// The principal, else the client IP.
    #[default]
    Principal,
    /// The client IP.
    ClientIp,
}

/// `enumeration`: per (principal, route template), many distinct object ids with
/// small monotone strides and a success / not-found mix inside a window.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Enumeration {
    pub window_ms: u64,
    pub min_distinct: usize,
    pub max_stride: u64,
    pub min_monotone_fraction: f64,
    pub min_not_found: usize,
    pub min_success: usize,
    pub max_entries: usize,
}

impl Default for Enumeration {
    fn default() -> Self {
        Enumeration {
            window_ms: 300_000,
            min_distinct: 20,
            max_stride: 5,
            min_monotone_fraction: 0.8,
            min_not_found: 1,
            min_success: 1,
            max_entries: 128,
        }
    }
}

/// `distinct_patients`: per principal, distinct patients in a sliding window above
/// a threshold, or far above the principal's own per-window baseline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DistinctPatients {
    pub window_ms: u64,
    pub min_patients: u32,
    pub baseline_factor: f32,
    pub min_baseline_patients: u32,
    pub min_history_windows: u32,
    pub alpha: f32,
}

impl Default for DistinctPatients {
    fn default() -> Self {
        DistinctPatients {
            window_ms: 3_600_000,
            min_patients: 50,
            baseline_factor: 5.0,
            min_baseline_patients: 20,
            min_history_windows: 24,
            alpha: 0.1,
        }
    }
}

/// `auth_failure_burst`: per client IP (or principal), many 401/403 in a window,
/// or many distinct credentials failing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuthFailureBurst {
    pub key: KeyBy,
    pub window_ms: u64,
    pub min_failures: u32,
    pub min_distinct_credentials: u32,
    pub statuses: Vec<u16>,
}

impl Default for AuthFailureBurst {
    fn default() -> Self {
        AuthFailureBurst {
            key: KeyBy::ClientIp,
            window_ms: 60_000,
            min_failures: 20,
            min_distinct_credentials: 5,
            statuses: vec![401, 403],
        }
    }
}

/// How an exfiltration rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ExfilMode {
    /// Any egress request carrying PHI findings.
    #[default]
    PhiEgress,
    /// Large request bodies to a destination not seen in the baseline.
    NewDestination,
}

/// `exfiltration`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Exfiltration {
    pub mode: ExfilMode,
    pub egress_formats: Vec<String>,
    pub internal_host_suffixes: Vec<String>,
    pub exclude_kinds: Vec<String>,
    pub window_ms: u64,
    pub learning_ms: u64,
    pub new_for_ms: u64,
    pub min_bytes_in: u64,
}

impl Default for Exfiltration {
    fn default() -> Self {
        Exfiltration {
            mode: ExfilMode::PhiEgress,
            egress_formats: ["squid", "zeek_http", "zeek_conn"]
                .map(String::from)
                .to_vec(),
            internal_host_suffixes: [".internal", ".local", ".lan", ".corp", ".svc"]
                .map(String::from)
                .to_vec(),
            exclude_kinds: vec![String::from("patient_ref")],
            window_ms: 3_600_000,
            learning_ms: 86_400_000,
            new_for_ms: 86_400_000,
            min_bytes_in: 10_000_000,
        }
    }
}

/// What a first-seen rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FirstSeenMode {
    /// A principal used from a new network (IPv4 /24, IPv6 /48 by default).
    #[default]
    Network,
    /// A (service) principal reaching a new destination host.
    DestHost,
}

/// `first_seen`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FirstSeen {
    pub mode: FirstSeenMode,
    pub learning_ms: u64,
    pub min_events: u32,
    pub max_known: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub principal_prefixes: Vec<String>,
    pub success_only: bool,
}

impl Default for FirstSeen {
    fn default() -> Self {
        FirstSeen {
            mode: FirstSeenMode::Network,
            learning_ms: 86_400_000,
            min_events: 20,
            max_known: 16,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            principal_prefixes: Vec::new(),
            success_only: true,
        }
    }
}

/// `volume_spike`: requests or bytes per key in a bucket far above an EWMA
/// baseline (the hour-of-week slot's own once weeks of history exist).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct VolumeSpike {
    pub key: KeyBy,
    pub bucket_ms: u64,
    pub alpha: f32,
    pub factor: f32,
    pub min_requests: u32,
    pub min_bytes: u64,
    pub min_history_buckets: u32,
    pub slot_min_weeks: u32,
}

impl Default for VolumeSpike {
    fn default() -> Self {
        VolumeSpike {
            key: KeyBy::Principal,
            bucket_ms: 3_600_000,
            alpha: 0.1,
            factor: 5.0,
            min_requests: 200,
            min_bytes: 100_000_000,
            min_history_buckets: 24,
            slot_min_weeks: 2,
        }
    }
}

/// `credential_live`: a credential found leaked in a log (anywhere but the
/// request's own auth header) later used as a request's credential with a 2xx.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CredentialLive {
    pub min_delay_ms: u64,
}
