//! The report model; its JSON form is `report --format json`.

use crate::exposure::Estimate;
use serde::Serialize;
use std::collections::BTreeMap;

/// The whole report. Field names are CONTRACT.md's; the extra fields come after.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was selected.
    pub scope: Scope,
    /// Distinct patients in scope.
    pub distinct_patients: Estimate,
    /// Distinct records in scope.
    pub distinct_records: Estimate,
    /// Distinct patients per state of residence (needs a patient directory).
    pub by_state: BTreeMap<String, Estimate>,
    /// Patients the directory does not list (null without a directory).
    pub directory_unmatched: Option<Estimate>,
    /// Findings per PHI kind in scope.
    pub phi_kinds: BTreeMap<String, u64>,
    /// First PHI-bearing request in scope (RFC 3339).
    pub first_seen: Option<String>,
    /// Last PHI-bearing request in scope (RFC 3339).
    pub last_seen: Option<String>,
    /// Successful PHI-bearing requests.
    pub requests: u64,
    /// Bytes sent in those requests.
    pub bytes_out: u64,
    /// Patient-data FHIR resource types read.
    pub resource_types: Vec<String>,
    /// Notification obligations.
    pub notification: Notification,
    /// The four risk-assessment factors.
    pub factors: Factors,
    /// Credentials to rotate and addresses to block.
    pub containment: Containment,
    /// Requests and distinct patients per window.
    pub timeline: Vec<TimePoint>,
    /// Caveats about the counts.
    pub notes: Vec<String>,
}

/// The selection the report covers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scope {
    /// `--principal` values (all when empty).
    pub principals: Vec<String>,
    /// `--client-ip` values (all when empty).
    pub client_ips: Vec<String>,
    /// `--from`, RFC 3339.
    pub from: Option<String>,
    /// `--to`, RFC 3339.
    pub to: Option<String>,
    /// Key the hashes were made with.
    pub key_id: String,
    /// Exposure files read.
    pub exposure_files: usize,
    /// Exposure rows in scope.
    pub rows: usize,
    /// Sources (files, topics) of the rows in scope.
    pub sources: Vec<String>,
}

/// One notification duty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Obligation {
    /// Whether it applies (before any low-probability-of-compromise finding).
    pub required: bool,
    /// Latest date to meet it (`YYYY-MM-DD`), when the discovery date is known.
    pub deadline: Option<String>,
    /// The regulation.
    pub rule: String,
    /// Why, in one sentence.
    pub basis: String,
    /// The state, for media notice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Notification obligations under the Breach Notification Rule.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Notification {
    /// Discovery date (`YYYY-MM-DD`), if given.
    pub discovered: Option<String>,
    /// Notice to individuals, 45 CFR 164.404.
    pub individuals: Obligation,
    /// Notice to the Secretary (HHS), 45 CFR 164.408.
    pub hhs: Obligation,
    /// `within_60_days` (500 or more) or `annual_log` (fewer).
    pub hhs_path: String,
    /// Media notice per state with more than 500 residents, 45 CFR 164.406.
    pub media: Vec<Obligation>,
}

/// One risk-assessment factor with its evidence.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Factor {
    /// The factor as the rule words it.
    pub factor: String,
    /// The regulation.
    pub rule: String,
    /// What the evidence shows.
    pub assessment: String,
    /// The evidence, one fact per item.
    pub evidence: Vec<String>,
}

/// The four factors of 45 CFR 164.402(2).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Factors {
    /// (i) Nature and extent of the PHI involved.
    pub nature_and_extent: Factor,
    /// (ii) The unauthorized person.
    pub unauthorized_person: Factor,
    /// (iii) Whether the PHI was actually acquired or viewed.
    pub acquired_or_viewed: Factor,
    /// (iv) The extent to which the risk has been mitigated.
    pub mitigation: Factor,
}

/// A credential to rotate.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Credential {
    /// Principal as recorded (consumer, JWT `sub`, `key:` fingerprint), or a masked value.
    pub principal: String,
    /// Kind: `principal` or a credential finding kind (`api_key`, `jwt` ...).
    pub kind: String,
    /// Where it was seen.
    pub evidence: String,
}

/// Containment steps.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Containment {
    /// Credentials to rotate or disable.
    pub rotate: Vec<Credential>,
    /// Client IPs to block.
    pub block_ips: Vec<String>,
    /// AWS WAF IP sets (`aws wafv2 create-ip-set --cli-input-json`), one per IP version.
    pub aws_waf_ip_sets: Vec<serde_json::Value>,
    /// nginx `deny` directives.
    pub nginx_deny: String,
}

/// Activity in one window.
#[derive(Debug, Clone, Serialize)]
pub struct TimePoint {
    /// Window start, RFC 3339.
    pub window_start: String,
    /// Requests.
    pub requests: u64,
    /// Distinct patients in the window.
    pub distinct_patients: u64,
}
