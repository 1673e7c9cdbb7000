//! Notification obligations, risk-assessment factors and containment.
//!
//! Thresholds: HHS notice within 60 days when 500 or more individuals are affected,
//! else an entry in the annual log due within 60 days after the end of the calendar
//! year (45 CFR 164.408(b), (c)); media notice for each State with more than 500
//! affected residents (164.406); individual notice without unreasonable delay and
//! no later than 60 calendar days after discovery (164.404(b)). When a count is an
//! estimate, the decision uses its upper bound, so an estimate never hides a duty.

use super::load::FindingRow;
use super::model::{Containment, Credential, Factor, Factors, Notification, Obligation, Report};
use super::{ReportOptions, rfc3339};
use crate::exposure::Estimate;
use chrono::{Datelike, Days, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// HHS threshold: 500 or more individuals (164.408(b)).
pub const HHS_THRESHOLD: u64 = 500;
/// Media threshold: more than 500 residents of a State (164.406(a)).
pub const MEDIA_THRESHOLD: u64 = 500;
/// Days from discovery for individual, media and large-breach HHS notice.
pub const NOTICE_DAYS: u64 = 60;

fn deciding(e: &Estimate) -> u64 {
    if e.exact { e.value } else { e.upper }
}

fn count_text(e: &Estimate) -> String {
    if e.exact {
        format!("{} (exact)", e.value)
    } else {
        format!("about {} (95% bounds {}..{})", e.value, e.lower, e.upper)
    }
}

fn plus_days(d: NaiveDate, days: u64) -> Option<String> {
    d.checked_add_days(Days::new(days)).map(|d| d.to_string())
}

/// The notification obligations for a report's counts.
pub(crate) fn notification(r: &Report, discovered: Option<NaiveDate>) -> Notification {
    let n = deciding(&r.distinct_patients);
    let sixty = discovered.and_then(|d| plus_days(d, NOTICE_DAYS));
    let individuals = Obligation {
        required: n > 0,
        deadline: sixty.clone(),
        rule: String::from("45 CFR 164.404"),
        basis: format!(
            "notify each of the {} affected individuals without unreasonable delay and no later than 60 calendar days after discovery",
            count_text(&r.distinct_patients)
        ),
        state: None,
    };
    let large = n >= HHS_THRESHOLD;
    let hhs = if large {
        Obligation {
            required: true,
            deadline: sixty.clone(),
            rule: String::from("45 CFR 164.408(b)"),
            basis: format!(
                "{} individuals is 500 or more: notify the Secretary contemporaneously with individual notice, within 60 days of discovery",
                count_text(&r.distinct_patients)
            ),
            state: None,
        }
    } else {
        let year_end = discovered.and_then(|d| NaiveDate::from_ymd_opt(d.year(), 12, 31));
        Obligation {
            required: n > 0,
            deadline: year_end.and_then(|d| plus_days(d, NOTICE_DAYS)),
            rule: String::from("45 CFR 164.408(c)"),
            basis: format!(
                "{} individuals is fewer than 500: log the breach and report it to the Secretary within 60 days after the end of the calendar year of discovery",
                count_text(&r.distinct_patients)
            ),
            state: None,
        }
    };
    let media = r
        .by_state
        .iter()
        .filter(|(_, e)| deciding(e) > MEDIA_THRESHOLD)
        .map(|(state, e)| Obligation {
            required: true,
            deadline: sixty.clone(),
            rule: String::from("45 CFR 164.406"),
            basis: format!(
                "{} residents of {state} affected, more than 500: notify prominent media outlets serving the State within 60 days of discovery",
                count_text(e)
            ),
            state: Some(state.clone()),
        })
        .collect();
    Notification {
        discovered: discovered.map(|d| d.to_string()),
        individuals,
        hhs,
        hhs_path: String::from(if large {
            "within_60_days"
        } else {
            "annual_log"
        }),
        media,
    }
}

fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = map.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// The four factors of 45 CFR 164.402(2), with the evidence from the data.
pub(crate) fn factors(
    r: &Report,
    principals: &BTreeMap<String, u64>,
    ips: &BTreeMap<String, u64>,
    discovered: Option<NaiveDate>,
    last_us: Option<i64>,
) -> Factors {
    let mut nature = vec![
        format!("distinct patients: {}", count_text(&r.distinct_patients)),
        format!("distinct records: {}", count_text(&r.distinct_records)),
    ];
    if !r.resource_types.is_empty() {
        nature.push(format!(
            "FHIR resource types read: {}",
            r.resource_types.join(", ")
        ));
    }
    for (kind, n) in &r.phi_kinds {
        nature.push(format!("PHI findings of kind {kind}: {n}"));
    }
    let identifiers: Vec<&str> = r
        .phi_kinds
        .keys()
        .map(String::as_str)
        .filter(|k| {
            matches!(
                *k,
                "us_ssn"
                    | "us_mbi"
                    | "mrn"
                    | "dob"
                    | "person_name"
                    | "street_address"
                    | "email"
                    | "phone"
            )
        })
        .collect();
    let nature_assessment = if identifiers.is_empty() {
        String::from(
            "patient-level clinical or demographic records were returned; no direct identifier findings in scope",
        )
    } else {
        format!(
            "direct identifiers were exposed ({}), so re-identification is likely",
            identifiers.join(", ")
        )
    };
    let mut who = Vec::new();
    for (p, n) in top(principals, 20) {
        who.push(format!("principal {p}: {n} successful PHI requests"));
    }
    for (ip, n) in top(ips, 20) {
        who.push(format!("client ip {ip}: {n} successful PHI requests"));
    }
    let acquired = if r.requests > 0 {
        format!(
            "yes: {} successful (2xx) responses returned PHI, {} bytes in total",
            r.requests, r.bytes_out
        )
    } else {
        String::from("no successful PHI-bearing response in scope")
    };
    let mut acq_evidence = vec![
        format!("successful PHI-bearing requests: {}", r.requests),
        format!("bytes sent: {}", r.bytes_out),
    ];
    if let (Some(f), Some(l)) = (&r.first_seen, &r.last_seen) {
        acq_evidence.push(format!("activity from {f} to {l}"));
    }
    let mut mitig = vec![
        format!("credentials to rotate: {}", r.containment.rotate.len()),
        format!("client IPs to block: {}", r.containment.block_ips.len()),
    ];
    if let (Some(d), Some(l)) = (discovered, last_us) {
        let disc_us = d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
            .unwrap_or(i64::MAX);
        if l >= disc_us {
            mitig.push(format!(
                "access continued after discovery (last seen {})",
                rfc3339(l)
            ));
        } else {
            mitig.push(format!("no access in scope after {}", rfc3339(l)));
        }
    }
    Factors {
        nature_and_extent: Factor {
            factor: String::from(
                "the nature and extent of the PHI involved, including the types of identifiers and the likelihood of re-identification",
            ),
            rule: String::from("45 CFR 164.402(2)(i)"),
            assessment: nature_assessment,
            evidence: nature,
        },
        unauthorized_person: Factor {
            factor: String::from(
                "the unauthorized person who used the PHI or to whom the disclosure was made",
            ),
            rule: String::from("45 CFR 164.402(2)(ii)"),
            assessment: format!(
                "{} principal(s) from {} client IP(s); identify each and whether they are bound by HIPAA",
                principals.len(),
                ips.len()
            ),
            evidence: who,
        },
        acquired_or_viewed: Factor {
            factor: String::from("whether the PHI was actually acquired or viewed"),
            rule: String::from("45 CFR 164.402(2)(iii)"),
            assessment: acquired,
            evidence: acq_evidence,
        },
        mitigation: Factor {
            factor: String::from("the extent to which the risk to the PHI has been mitigated"),
            rule: String::from("45 CFR 164.402(2)(iv)"),
            assessment: String::from(
                "rotate the credentials and block the addresses below; obtain assurances of return or destruction where the recipient is known",
            ),
            evidence: mitig,
        },
    }
}

/// Credentials to rotate and addresses to block, with WAF and nginx forms.
pub(crate) fn containment(
    principals: &BTreeMap<String, u64>,
    ips: &BTreeMap<String, u64>,
    findings: &[&FindingRow],
) -> Containment {
    let mut rotate: Vec<Credential> = principals
        .iter()
        .filter(|(p, _)| p.as_str() != "(unknown)")
        .map(|(p, n)| Credential {
            principal: p.clone(),
            kind: String::from("principal"),
            evidence: format!("{n} successful PHI requests"),
        })
        .collect();
    let mut seen = BTreeSet::new();
    for f in findings.iter().filter(|f| f.category == "credential") {
        let id: String = f.value_hmac.chars().take(12).collect();
        if seen.insert((f.kind.clone(), id.clone())) {
            rotate.push(Credential {
                principal: f.value_masked.clone(),
                kind: f.kind.clone(),
                evidence: format!("found at {} (hmac {id})", f.location),
            });
        }
    }
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    let mut block_ips = Vec::new();
    for ip in ips.keys() {
        match ip.trim().parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => {
                v4.push(format!("{a}/32"));
                block_ips.push(a.to_string());
            }
            Ok(IpAddr::V6(a)) => {
                v6.push(format!("{a}/128"));
                block_ips.push(a.to_string());
            }
            Err(_) => {}
        }
    }
    let mut sets = Vec::new();
    for (version, addrs) in [("IPV4", v4), ("IPV6", v6)] {
        if !addrs.is_empty() {
            sets.push(serde_json::json!({
                "Name": format!("phiwatch-block-{}", version.to_ascii_lowercase()),
                "Scope": "REGIONAL",
                "IPAddressVersion": version,
                "Addresses": addrs,
                "Description": "client addresses that read PHI in the incident scope",
            }));
        }
    }
    let nginx_deny = block_ips.iter().map(|ip| format!("deny {ip};\n")).collect();
    Containment {
        rotate,
        block_ips,
        aws_waf_ip_sets: sets,
        nginx_deny,
    }
}

/// Caveats about the numbers.
pub(crate) fn notes(r: &Report, opts: &ReportOptions) -> Vec<String> {
    let mut notes = vec![String::from(
        "a patient read by logical id and by an identifier (MRN) counts twice unless the patient directory lists both; counts err high",
    )];
    if !r.distinct_patients.exact {
        notes.push(String::from(
            "some rows held more than the exact cap: counts are DataSketches HLL estimates with 2-sigma (95%) bounds, and decisions use the upper bound",
        ));
    }
    if opts.from.is_some() || opts.to.is_some() {
        notes.push(String::from(
            "time filters select whole exposure rows (one window per row): a row overlapping the range counts in full",
        ));
    }
    if opts.discovered.is_none() {
        notes.push(String::from(
            "no --discovered date: deadlines are not computed",
        ));
    }
    if opts.patient_directory.is_none() {
        notes.push(String::from(
            "no --patient-directory: media obligations by state cannot be determined",
        ));
    }
    if r.requests > 0 && r.distinct_patients.value == 0 {
        notes.push(String::from(
            "PHI-bearing requests named no patient (searches by name or date): review them; the count may be low",
        ));
    }
    notes
}
