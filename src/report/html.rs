//! HTML rendering for the case file: one self-contained page, an inline SVG chart
//! of requests and distinct patients per window, no scripts and nothing fetched.

use super::markdown::{estimate, obligation_line};
use super::model::{Factor, Report, TimePoint};
use std::fmt::Write;

/// Escape text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const W: f64 = 720.0;
const H: f64 = 240.0;
const PAD: f64 = 40.0;

/// Bars of requests (left axis) and a line of distinct patients (right axis).
pub(crate) fn chart(points: &[TimePoint]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"requests and distinct patients per window\">"
    );
    let _ = write!(
        s,
        "<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fff\"/>"
    );
    if points.is_empty() {
        s.push_str("<text x=\"20\" y=\"40\">no activity in scope</text></svg>");
        return s;
    }
    let max_r = points.iter().map(|p| p.requests).max().unwrap_or(1).max(1) as f64;
    let max_p = points
        .iter()
        .map(|p| p.distinct_patients)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let plot_w = W - 2.0 * PAD;
    let plot_h = H - 2.0 * PAD;
    let step = plot_w / points.len() as f64;
    let bar = (step * 0.7).max(1.0);
    let _ = write!(
        s,
        "<line x1=\"{PAD}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#888\"/>",
        y = H - PAD,
        x2 = W - PAD
    );
    for (i, p) in points.iter().enumerate() {
        let h = p.requests as f64 / max_r * plot_h;
        let x = PAD + i as f64 * step + (step - bar) / 2.0;
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"#9ecae1\"><title>{}: {} requests, {} patients</title></rect>",
            H - PAD - h,
            esc(&p.window_start),
            p.requests,
            p.distinct_patients
        );
    }
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let x = PAD + (i as f64 + 0.5) * step;
            let y = H - PAD - p.distinct_patients as f64 / max_p * plot_h;
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2\"/>",
        line.join(" ")
    );
    let label = |x: f64, y: f64, anchor: &str, t: &str| {
        format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"11\" text-anchor=\"{anchor}\">{}</text>",
            esc(t)
        )
    };
    s.push_str(&label(
        PAD,
        PAD - 8.0,
        "start",
        &format!("requests (max {max_r})"),
    ));
    s.push_str(&label(
        W - PAD,
        PAD - 8.0,
        "end",
        &format!("distinct patients (max {max_p}, red)"),
    ));
    if let (Some(f), Some(l)) = (points.first(), points.last()) {
        s.push_str(&label(PAD, H - PAD + 16.0, "start", &f.window_start));
        s.push_str(&label(W - PAD, H - PAD + 16.0, "end", &l.window_start));
    }
    s.push_str("</svg>");
    s
}

fn factor(o: &mut String, n: &str, f: &Factor) {
    let _ = write!(
        o,
        "<h3>{n}. {} <small>({})</small></h3>",
        esc(&f.factor),
        esc(&f.rule)
    );
    let _ = write!(
        o,
        "<p><strong>Assessment:</strong> {}</p><ul>",
        esc(&f.assessment)
    );
    for e in &f.evidence {
        let _ = write!(o, "<li>{}</li>", esc(e));
    }
    o.push_str("</ul>");
}

fn row(o: &mut String, k: &str, v: &str) {
    let _ = write!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
}

/// The report as a standalone HTML page.
pub(crate) fn render(r: &Report) -> String {
    let mut o = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>PHI exposure risk assessment</title>\
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}table{border-collapse:collapse}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}pre{background:#f5f5f5;padding:8px;overflow-x:auto}\
.req{color:#b00;font-weight:bold}</style></head><body>\n<h1>PHI exposure risk assessment</h1>\n",
    );
    let s = &r.scope;
    o.push_str("<h2>Scope</h2><table>");
    let all = |v: &Vec<String>| {
        if v.is_empty() {
            String::from("all")
        } else {
            v.join(", ")
        }
    };
    row(&mut o, "principals", &all(&s.principals));
    row(&mut o, "client IPs", &all(&s.client_ips));
    row(&mut o, "from", s.from.as_deref().unwrap_or("start"));
    row(&mut o, "to", s.to.as_deref().unwrap_or("end"));
    row(&mut o, "key id", &s.key_id);
    row(&mut o, "rows in scope", &s.rows.to_string());
    o.push_str("</table>\n<h2>Exposure</h2><table>");
    row(&mut o, "distinct patients", &estimate(&r.distinct_patients));
    row(&mut o, "distinct records", &estimate(&r.distinct_records));
    row(&mut o, "successful PHI requests", &r.requests.to_string());
    row(&mut o, "bytes sent", &r.bytes_out.to_string());
    row(&mut o, "first seen", r.first_seen.as_deref().unwrap_or("-"));
    row(&mut o, "last seen", r.last_seen.as_deref().unwrap_or("-"));
    row(&mut o, "resource types", &r.resource_types.join(", "));
    for (k, n) in &r.phi_kinds {
        row(&mut o, &format!("PHI kind {k}"), &n.to_string());
    }
    for (st, e) in &r.by_state {
        row(&mut o, &format!("patients in {st}"), &estimate(e));
    }
    if let Some(u) = &r.directory_unmatched {
        row(&mut o, "patients not in directory", &estimate(u));
    }
    o.push_str("</table>\n<h2>Activity over time</h2>\n");
    o.push_str(&chart(&r.timeline));
    let n = &r.notification;
    o.push_str("\n<h2>Notification</h2><ul>");
    let item = |o: &mut String, who: &str, ob: &super::model::Obligation| {
        let class = if ob.required { " class=\"req\"" } else { "" };
        let _ = write!(
            o,
            "<li><span{class}>{}</span>: {}</li>",
            esc(who),
            esc(&obligation_line(ob))
        );
    };
    item(&mut o, "Individuals", &n.individuals);
    item(&mut o, "HHS", &n.hhs);
    if n.media.is_empty() {
        o.push_str("<li>Media: not required: no state has more than 500 affected residents (45 CFR 164.406)</li>");
    }
    for m in &n.media {
        item(
            &mut o,
            &format!("Media, {}", m.state.as_deref().unwrap_or("?")),
            m,
        );
    }
    o.push_str("</ul>\n<h2>Risk assessment (45 CFR 164.402(2))</h2>");
    factor(&mut o, "1", &r.factors.nature_and_extent);
    factor(&mut o, "2", &r.factors.unauthorized_person);
    factor(&mut o, "3", &r.factors.acquired_or_viewed);
    factor(&mut o, "4", &r.factors.mitigation);
    let c = &r.containment;
    o.push_str("\n<h2>Containment</h2>");
    if !c.rotate.is_empty() {
        o.push_str("<h3>Credentials to rotate</h3><table><tr><th>credential</th><th>kind</th><th>evidence</th></tr>");
        for cr in &c.rotate {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&cr.principal),
                esc(&cr.kind),
                esc(&cr.evidence)
            );
        }
        o.push_str("</table>");
    }
    if !c.block_ips.is_empty() {
        let _ = write!(o, "<h3>nginx</h3><pre>{}</pre>", esc(&c.nginx_deny));
        let sets = serde_json::to_string_pretty(&c.aws_waf_ip_sets).unwrap_or_default();
        let _ = write!(o, "<h3>AWS WAF IP sets</h3><pre>{}</pre>", esc(&sets));
    }
    if !r.notes.is_empty() {
        o.push_str("<h2>Notes</h2><ul>");
        for note in &r.notes {
            let _ = write!(o, "<li>{}</li>", esc(note));
        }
        o.push_str("</ul>");
    }
    o.push_str("\n</body></html>\n");
    o
}
