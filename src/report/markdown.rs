//! Markdown rendering, for people.

use super::model::{Factor, Obligation, Report};
use crate::exposure::Estimate;
use std::fmt::Write;

pub(crate) fn estimate(e: &Estimate) -> String {
    if e.exact {
        format!("{} (exact)", e.value)
    } else {
        format!("~{} (95% bounds {} to {})", e.value, e.lower, e.upper)
    }
}

pub(crate) fn obligation_line(o: &Obligation) -> String {
    let status = if o.required {
        "REQUIRED"
    } else {
        "not required"
    };
    let deadline = o.deadline.as_deref().unwrap_or("set --discovered");
    format!("{status}, due {deadline} ({}): {}", o.rule, o.basis)
}

fn factor(out: &mut String, n: &str, f: &Factor) {
    let _ = writeln!(out, "### {n}. {} ({})\n", capitalize(&f.factor), f.rule);
    let _ = writeln!(out, "**Assessment:** {}\n", f.assessment);
    for e in &f.evidence {
        let _ = writeln!(out, "- {e}");
    }
    out.push('\n');
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Escape table-cell text.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The report as Markdown.
pub(crate) fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# PHI exposure risk assessment\n");
    let s = &r.scope;
    let all = String::from("all");
    let _ = writeln!(o, "## Scope\n");
    let _ = writeln!(
        o,
        "- principals: {}",
        if s.principals.is_empty() {
            all.clone()
        } else {
            s.principals.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "- client IPs: {}",
        if s.client_ips.is_empty() {
            all.clone()
        } else {
            s.client_ips.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "- time: {} to {}",
        s.from.as_deref().unwrap_or("start"),
        s.to.as_deref().unwrap_or("end")
    );
    let _ = writeln!(
        o,
        "- key id: {}; exposure files: {}; rows in scope: {}\n",
        s.key_id, s.exposure_files, s.rows
    );

    let _ = writeln!(o, "## Exposure\n");
    let _ = writeln!(o, "| measure | value |\n|---|---|");
    let _ = writeln!(
        o,
        "| distinct patients | {} |",
        estimate(&r.distinct_patients)
    );
    let _ = writeln!(
        o,
        "| distinct records | {} |",
        estimate(&r.distinct_records)
    );
    let _ = writeln!(o, "| successful PHI requests | {} |", r.requests);
    let _ = writeln!(o, "| bytes sent | {} |", r.bytes_out);
    let _ = writeln!(
        o,
        "| first seen | {} |",
        r.first_seen.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        o,
        "| last seen | {} |",
        r.last_seen.as_deref().unwrap_or("-")
    );
    if !r.resource_types.is_empty() {
        let _ = writeln!(
            o,
            "| resource types | {} |",
            cell(&r.resource_types.join(", "))
        );
    }
    o.push('\n');
    if !r.phi_kinds.is_empty() {
        let _ = writeln!(o, "### PHI kinds found\n\n| kind | findings |\n|---|---|");
        for (k, n) in &r.phi_kinds {
            let _ = writeln!(o, "| {} | {n} |", cell(k));
        }
        o.push('\n');
    }
    if !r.by_state.is_empty() || r.directory_unmatched.is_some() {
        let _ = writeln!(
            o,
            "### Patients by state\n\n| state | patients |\n|---|---|"
        );
        for (st, e) in &r.by_state {
            let _ = writeln!(o, "| {} | {} |", cell(st), estimate(e));
        }
        if let Some(u) = &r.directory_unmatched {
            let _ = writeln!(o, "| not in directory | {} |", estimate(u));
        }
        o.push('\n');
    }

    let n = &r.notification;
    let _ = writeln!(o, "## Notification\n");
    let _ = writeln!(
        o,
        "Discovered: {}\n",
        n.discovered.as_deref().unwrap_or("not given")
    );
    let _ = writeln!(o, "- **Individuals**: {}", obligation_line(&n.individuals));
    let _ = writeln!(o, "- **HHS**: {}", obligation_line(&n.hhs));
    if n.media.is_empty() {
        let _ = writeln!(
            o,
            "- **Media**: not required: no state has more than 500 affected residents{} (45 CFR 164.406)",
            if r.by_state.is_empty() {
                " on record"
            } else {
                ""
            }
        );
    }
    for m in &n.media {
        let _ = writeln!(
            o,
            "- **Media, {}**: {}",
            m.state.as_deref().unwrap_or("?"),
            obligation_line(m)
        );
    }
    o.push('\n');

    let _ = writeln!(o, "## Risk assessment (45 CFR 164.402(2))\n");
    factor(&mut o, "1", &r.factors.nature_and_extent);
    factor(&mut o, "2", &r.factors.unauthorized_person);
    factor(&mut o, "3", &r.factors.acquired_or_viewed);
    factor(&mut o, "4", &r.factors.mitigation);

    let c = &r.containment;
    let _ = writeln!(o, "## Containment\n");
    if !c.rotate.is_empty() {
        let _ = writeln!(
            o,
            "### Credentials to rotate\n\n| credential | kind | evidence |\n|---|---|---|"
        );
        for cr in &c.rotate {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                cell(&cr.principal),
                cell(&cr.kind),
                cell(&cr.evidence)
            );
        }
        o.push('\n');
    }
    if !c.block_ips.is_empty() {
        let _ = writeln!(
            o,
            "### Addresses to block\n\nnginx:\n\n```nginx\n{}```\n",
            c.nginx_deny
        );
        let sets = serde_json::to_string_pretty(&c.aws_waf_ip_sets).unwrap_or_default();
        let _ = writeln!(
            o,
            "AWS WAF IP sets (`aws wafv2 create-ip-set --cli-input-json`):\n\n```json\n{sets}\n```\n"
        );
    }
    if !r.notes.is_empty() {
        let _ = writeln!(o, "## Notes\n");
        for note in &r.notes {
            let _ = writeln!(o, "- {note}");
        }
    }
    o
}
