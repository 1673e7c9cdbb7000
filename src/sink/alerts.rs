//! Alerts: findings at or above a severity, as OCSF JSON (2006 Data Security
//! Finding, 2004 Detection Finding), with suppression per (rule, principal).

use crate::finding::{Finding, Severity};
use serde_json::{Value, json};
use std::collections::HashMap;

/// Default suppression window: 10 minutes.
pub const DEFAULT_SUPPRESS_MS: u64 = 10 * 60 * 1000;

/// Keys tracked at most; older windows are dropped first when full.
const MAX_KEYS: usize = 100_000;

/// Decides which findings become alerts: at most one per (rule, principal) per
/// window; findings in between are counted and folded into the next alert.
#[derive(Debug)]
pub struct Suppressor {
    min_severity: Severity,
    window_us: i64,
    state: HashMap<(String, String), (i64, u64)>,
}

/// An alert to send: the finding and how many like it were suppressed before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert<'a> {
    /// The finding.
    pub finding: &'a Finding,
    /// Findings folded into this alert (suppressed since the previous one).
    pub suppressed: u64,
}

impl Suppressor {
    /// Alerts for findings at or above `min_severity`, one per (rule, principal)
    /// per `window_ms`.
    pub fn new(min_severity: Severity, window_ms: u64) -> Self {
        Suppressor {
            min_severity,
            window_us: i64::try_from(window_ms.saturating_mul(1000)).unwrap_or(i64::MAX),
            state: HashMap::new(),
        }
    }

    /// The lowest severity that alerts.
    pub fn min_severity(&self) -> Severity {
        self.min_severity
    }

    /// Offer a finding; `now_us` is used when the finding has no event time.
    pub fn offer<'a>(&mut self, f: &'a Finding, now_us: i64) -> Option<Alert<'a>> {
        if f.severity < self.min_severity {
            return None;
        }
        let t = f.time.unwrap_or(now_us);
        let key = (
            f.rule_id.to_string(),
            f.principal.clone().unwrap_or_default(),
        );
        match self.state.get_mut(&key) {
            Some((start, suppressed)) if t >= *start && t - *start < self.window_us => {
                *suppressed += 1;
                None
            }
            Some((start, suppressed)) => {
                let folded = *suppressed;
                *start = t;
                *suppressed = 0;
                Some(Alert {
                    finding: f,
                    suppressed: folded,
                })
            }
            None => {
                if self.state.len() >= MAX_KEYS {
                    let horizon = t.saturating_sub(self.window_us);
                    self.state.retain(|_, (s, n)| *s >= horizon || *n > 0);
                    if self.state.len() >= MAX_KEYS {
                        self.state.clear();
                    }
                }
                self.state.insert(key, (t, 0));
                Some(Alert {
                    finding: f,
                    suppressed: 0,
                })
            }
        }
    }
}

fn severity_id(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// The alert as an OCSF event (class 2006 or 2004, activity Create), masked
/// values only.
pub fn ocsf(alert: &Alert<'_>) -> Value {
    let f = alert.finding;
    let class_uid = f.ocsf_class_uid();
    let time_ms = f.time.map(|t| t / 1000);
    let mut v = json!({
        "class_uid": class_uid,
        "class_name": if class_uid == 2004 { "Detection Finding" } else { "Data Security Finding" },
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": i64::from(class_uid) * 100 + 1,
        "severity_id": severity_id(f.severity),
        "severity": f.severity.as_str(),
        "confidence_score": (f.confidence * 100.0).round() as i64,
        "time": time_ms,
        "count": 1 + alert.suppressed,
        "metadata": {
            "version": "1.3.0",
            "product": { "name": "phiwatch", "vendor_name": "phiwatch", "version": env!("CARGO_PKG_VERSION") },
            "uid": f.finding_id,
        },
        "finding_info": {
            "uid": f.finding_id,
            "title": format!("{} in {}", f.kind, f.location),
            "types": [f.category.as_str(), &*f.kind],
            "analytic": { "uid": &*f.rule_id, "name": &*f.rule_id, "type_id": 1, "type": "Rule" },
        },
        "src_endpoint": { "ip": f.client_ip },
        "dst_endpoint": { "hostname": f.dest_host },
        "actor": { "user": { "name": f.principal } },
        "http_request": {
            "http_method": f.http_method,
            "url": { "path": f.url_path },
        },
        "unmapped": {
            "kind": &*f.kind,
            "location": f.location,
            "value_masked": f.value_masked,
            "value_hmac": f.value_hmac,
            "key_id": &*f.key_id,
            "source": &*f.source,
            "source_format": f.source_format,
            "kafka_partition": f.kafka_partition,
            "kafka_offset": f.kafka_offset,
            "http_status": f.http_status,
            "suppressed": alert.suppressed,
        },
    });
    if class_uid == 2006
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert(
            "data_security".into(),
            json!({ "category": &*f.kind, "data_lifecycle_state": "Data in Transit" }),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Category;
    use std::sync::Arc;

    fn finding(t: i64, sev: Severity, principal: &str) -> Finding {
        Finding {
            finding_id: format!("f{t}"),
            time: Some(t),
            rule_id: Arc::from("phi.us_ssn.dashed"),
            category: Category::Phi,
            kind: Arc::from("us_ssn"),
            severity: sev,
            confidence: 0.9,
            source_format: "kong",
            source: Arc::from("gw"),
            source_line: None,
            kafka_partition: Some(0),
            kafka_offset: Some(t),
            location: "url.query:ssn".into(),
            value_hmac: "ab".repeat(32),
            value_masked: "***-**-6789".into(),
            key_id: Arc::from("k"),
            principal: Some(principal.into()),
            client_ip: None,
            dest_host: None,
            http_method: None,
            url_path: None,
            http_status: None,
            detail: None,
        }
    }

    #[test]
    fn suppression_folds_the_count_into_the_next_alert() {
        let min = 60_000_000; // one minute in µs
        let mut s = Suppressor::new(Severity::High, 10 * 60 * 1000);
        let fs: Vec<Finding> = (0..5)
            .map(|i| finding(i * min, Severity::High, "alice"))
            .chain([finding(11 * min, Severity::High, "alice")])
            .collect();
        let out: Vec<u64> = fs
            .iter()
            .filter_map(|f| s.offer(f, 0))
            .map(|a| a.suppressed)
            .collect();
        // first alerts; the next four are suppressed; at 11 min the window is over.
        assert_eq!(out, vec![0, 4]);
        // another principal is its own key; low severity never alerts.
        assert!(s.offer(&finding(min, Severity::High, "bob"), 0).is_some());
        assert!(s.offer(&finding(min, Severity::Low, "carol"), 0).is_none());
    }

    #[test]
    fn ocsf_has_class_and_masked_value_only() {
        let f = finding(1_700_000_000_000_000, Severity::Critical, "alice");
        let v = ocsf(&Alert {
            finding: &f,
            suppressed: 3,
        });
        assert_eq!(v["class_uid"], 2006);
        assert_eq!(v["type_uid"], 200601);
        assert_eq!(v["severity_id"], 5);
        assert_eq!(v["count"], 4);
        assert_eq!(v["time"], 1_700_000_000_000i64);
        assert_eq!(v["unmapped"]["value_masked"], "***-**-6789");
    }
}
