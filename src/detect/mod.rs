//! Pattern detection: prefilter, regex confirmation, validators, context, redaction.
//!
//! Rules are data (`rules/*.yaml`, embedded at build time; `--rules DIR` adds or
//! replaces by id). [`Detector::scan`] builds decoded views of every text-bearing
//! field of an [`Event`] ([`normalize`]), runs the rules over them ([`engine`]) and
//! turns confirmed matches into [`Finding`]s that carry only keyed hashes and masks.

pub mod check;
mod engine;
pub mod mask;
pub mod normalize;
pub mod rule;
pub mod scan;
mod shape;
pub mod validate;

use crate::decode::Format;
use crate::event::{Event, Provenance};
use crate::finding::Finding;
use crate::redact::Key;
use engine::{Engine, Hit, location_matches};
use normalize::View;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

pub use check::{CheckReport, check_rules};
pub use scan::{ScanStats, scan_lines};

/// Errors building a detector (bad rule files).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A rule file could not be read or parsed.
    #[error("rule file {file}: {message}")]
    Rule {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A rule is malformed.
    #[error("rule file {file}: rule {id}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The rule id.
        id: String,
        /// What is wrong (never a matched value).
        message: String,
    },
}

/// The pattern detector: all rules compiled once, shared read-only across threads.
pub struct Detector {
    key: Key,
    engine: Engine,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("key", &self.key)
            .field("rules", &self.engine.rules.len())
            .finish()
    }
}

impl Detector {
    /// The built-in rules plus, when given, the rules in `extra_rules_dir`
    /// (a rule with the same id replaces the built-in one).
    pub fn load(key: Key, extra_rules_dir: Option<&Path>) -> Result<Detector, Error> {
        let rules = rule::load_all(extra_rules_dir)?;
        Detector::from_rules(key, &rules)
    }

    /// A detector over exactly these rules.
    pub fn from_rules(key: Key, rules: &[rule::LoadedRule]) -> Result<Detector, Error> {
        Ok(Detector {
            key,
            engine: Engine::compile(rules)?,
        })
    }

    /// The HMAC key findings are hashed under.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Number of rules loaded.
    pub fn rule_count(&self) -> usize {
        self.engine.rules.len()
    }

    /// Scan one event; append its findings to `out`.
    pub fn scan(&self, event: &Event, prov: &Provenance, format: Format, out: &mut Vec<Finding>) {
        let (views, text_method, raw_path) = views_of(event, format, &self.engine);
        let mut hits = Vec::new();
        for v in &views {
            self.engine.scan_view(v, None, &mut hits);
        }
        if hits.is_empty() {
            return;
        }
        let mut hits = self.dedup(hits);
        let method = event.method.as_deref().map(str::to_owned).or(text_method);
        let mut derived = self.derive(&hits, method.as_deref());
        // A value can sit in a field's name (an SSN as a JSON key, an email as a
        // query parameter name), and locations carry names: mask it there too.
        let masks: Vec<(String, String)> = hits
            .iter()
            .filter(|h| h.value.len() >= 4)
            .map(|h| {
                let kind = &self.engine.rules[h.rule].kind;
                (h.value.clone(), mask::mask(kind, &h.value))
            })
            .collect();
        for h in hits.iter_mut().chain(derived.iter_mut().map(|(h, _)| h)) {
            for (value, masked) in &masks {
                if h.location.contains(value.as_str()) {
                    h.location = h.location.replace(value.as_str(), masked);
                }
            }
        }
        let url_path = raw_path.map(|raw| {
            let mut p = View::field(raw, String::new(), None).text;
            for h in hits.iter().filter(|h| h.location == "url.path") {
                let kind = &self.engine.rules[h.rule].kind;
                p = p.replace(&h.cover, &mask::mask(kind, &h.value));
            }
            p
        });
        let rules = &self.engine.rules;
        let all = hits.iter().map(|h| (h, None)).chain(
            derived
                .iter()
                .map(|(h, src)| (h, Some(rules[hits[*src].rule].kind.as_ref()))),
        );
        for (h, from) in all {
            out.push(self.finding(
                event,
                prov,
                format,
                h,
                from,
                method.clone(),
                url_path.clone(),
            ));
        }
    }

    /// Keep one hit per (location, kind, canonical value): the most confident.
    fn dedup(&self, hits: Vec<Hit>) -> Vec<Hit> {
        // Each kept hit with its kind and canonical value (the location is the
        // hit's own): compared as parts, no key text is built per hit.
        let mut kept: Vec<(&str, String, Hit)> = Vec::with_capacity(hits.len());
        for h in hits {
            let kind: &str = &self.engine.rules[h.rule].kind;
            let canon = mask::canonical(kind, &h.value);
            let same = |(k, c, old): &&mut (&str, String, Hit)| {
                *k == kind && *c == canon && old.location == h.location
            };
            match kept.iter_mut().find(same) {
                Some((_, _, old)) if old.confidence < h.confidence => *old = h,
                Some(_) => {}
                None => kept.push((kind, canon, h)),
            }
        }
        kept.into_iter().map(|(_, _, h)| h).collect()
    }

    /// Hits of derived (misconfiguration) rules: one per rule and location.
    fn derive(&self, hits: &[Hit], method: Option<&str>) -> Vec<(Hit, usize)> {
        let mut out: Vec<(Hit, usize)> = Vec::new();
        for (idx, rule) in self.engine.rules.iter().enumerate() {
            let Some(d) = &rule.derive else { continue };
            if !d.methods.is_empty()
                && !method.is_some_and(|m| d.methods.iter().any(|x| x.eq_ignore_ascii_case(m)))
            {
                continue;
            }
            for (hi, h) in hits.iter().enumerate() {
                let src = &self.engine.rules[h.rule];
                let cat_ok = d
                    .categories
                    .iter()
                    .any(|c| crate::finding::Category::from(*c) == src.category);
                let loc_ok = d.locations.iter().any(|p| location_matches(p, &h.location));
                let kind_ok = !d.exclude_kinds.iter().any(|k| **k == *src.kind);
                if !cat_ok
                    || !loc_ok
                    || !kind_ok
                    || out
                        .iter()
                        .any(|(o, _)| o.rule == idx && o.location == h.location)
                {
                    continue;
                }
                out.push((
                    Hit {
                        rule: idx,
                        location: h.location.clone(),
                        span: h.span.clone(),
                        depth: h.depth,
                        value: h.value.clone(),
                        confidence: rule.confidence.min(h.confidence),
                        context: h.context,
                        decoded: h.decoded,
                        cover: h.cover.clone(),
                    },
                    hi,
                ));
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        event: &Event,
        prov: &Provenance,
        format: Format,
        h: &Hit,
        from: Option<&str>,
        method: Option<String>,
        url_path: Option<String>,
    ) -> Finding {
        let rule = &self.engine.rules[h.rule];
        // A derived finding hashes and masks the value of the finding it came from.
        let value_kind = from.unwrap_or(&rule.kind);
        let mut id = Sha256::new();
        let mut span = String::with_capacity(24);
        // Writing to a String cannot fail.
        let _ = write!(span, "{}:{}-{}", h.depth, h.span.start, h.span.end);
        for part in [
            prov.source.as_bytes(),
            prov.position().as_bytes(),
            rule.id.as_bytes(),
            h.location.as_bytes(),
            span.as_bytes(),
        ] {
            id.update(part);
            id.update([0u8]);
        }
        let finding_id = crate::text::hex(&id.finalize()[..16]);
        let detail = match from {
            Some(_) => detail_json(None, Some(value_kind), h.decoded),
            None => detail_json(Some(h.context), None, h.decoded),
        };
        Finding {
            finding_id,
            time: event.time,
            rule_id: rule.id.clone(),
            category: rule.category,
            kind: rule.kind.clone(),
            severity: rule.severity,
            confidence: h.confidence,
            source_format: format.name(),
            source: prov.source.clone(),
            source_line: prov.line,
            kafka_partition: prov.kafka_partition,
            kafka_offset: prov.kafka_offset,
            location: h.location.clone(),
            value_hmac: self
                .key
                .hmac_hex(mask::canonical(value_kind, &h.value).as_bytes()),
            value_masked: mask::mask(value_kind, &h.value),
            key_id: std::sync::Arc::from(self.key.id()),
            principal: event.principal.as_deref().map(str::to_owned),
            client_ip: event.client_ip.as_deref().map(str::to_owned),
            dest_host: event.dest_host.as_deref().map(str::to_owned),
            http_method: method,
            url_path,
            http_status: event.status,
            detail: Some(detail),
        }
    }
}

/// The `detail` column of a pattern finding: the JSON object
/// `{"context":…,"decoded":[…]}`, or `{"decoded":[…],"from_kind":…}` for a derived
/// finding (keys in order, as a JSON map serializes them).
fn detail_json(context: Option<bool>, from_kind: Option<&str>, d: normalize::Decoded) -> String {
    let mut s = String::with_capacity(64);
    s.push('{');
    match context {
        Some(true) => s.push_str("\"context\":true,"),
        Some(false) => s.push_str("\"context\":false,"),
        None => {}
    }
    s.push_str("\"decoded\":[");
    let steps = [
        (d.json, "json"),
        (d.percent, "percent"),
        (d.base64, "base64"),
    ];
    let mut first = true;
    for (_, name) in steps.iter().filter(|(on, _)| *on) {
        if !first {
            s.push(',');
        }
        first = false;
        s.push('"');
        s.push_str(name);
        s.push('"');
    }
    s.push(']');
    if let Some(kind) = from_kind {
        s.push_str(",\"from_kind\":");
        // Derived findings are few: serde_json escapes the kind.
        s.push_str(&serde_json::Value::from(kind).to_string());
    }
    s.push('}');
    s
}

/// The views of every text-bearing field of an event worth scanning, the HTTP
/// method found in a plain text line, and the raw URL path (its view is built
/// for `url_path` only when the event has findings).
fn views_of<'e>(
    event: &'e Event,
    format: Format,
    engine: &Engine,
) -> (Vec<View>, Option<String>, Option<&'e str>) {
    let mut views = Vec::new();
    let mut method = None;
    let mut url_path = None;
    let mut url_views = |path: &'e str, query: Option<&str>, views: &mut Vec<View>| {
        if !path.is_empty() {
            url_path.get_or_insert(path);
            if engine.worth_scanning("", path) {
                views.push(View::field(path, "url.path".into(), None));
            }
        }
        if let Some(q) = query.filter(|q| !q.is_empty() && engine.worth_scanning_query(q)) {
            views.push(View::query(q, "url.query".into()));
        }
    };
    // The location string is only built for a field worth scanning.
    let push_named =
        |name: &str, value: &str, location: &dyn Fn() -> String, views: &mut Vec<View>| {
            if engine.worth_scanning(name, value) {
                views.push(named(name, value, location()));
            }
        };
    match (&event.path, &event.query, &event.url) {
        (None, None, Some(url)) => {
            let (p, q) = normalize::split_target(url);
            url_views(p, q, &mut views);
        }
        (p, q, _) => url_views(p.as_deref().unwrap_or(""), q.as_deref(), &mut views),
    }
    // Named fields are scanned as `name: value`, so rules keyed on a field name
    // (`x-api-key:`, `ssn:`) work the same on headers, JSON fields and text lines.
    for (name, value) in &event.headers {
        push_named(name, value, &|| format!("header:{name}"), &mut views);
    }
    for (name, value) in &event.response_headers {
        push_named(
            name,
            value,
            &|| format!("response_header:{name}"),
            &mut views,
        );
    }
    if let Some(url) = &event.url {
        let authority = &url[..normalize::path_start(url)];
        if authority.contains('@') {
            views.push(View::field(authority, "url".into(), None));
        }
    }
    // Most formats that log headers also fill `user_agent` from the header:
    // scan that text once.
    if let Some(ua) = event
        .user_agent
        .as_deref()
        .filter(|ua| event.header("user-agent") != Some(*ua))
    {
        push_named("user-agent", ua, &|| "header:user-agent".into(), &mut views);
    }
    if let Some(p) = &event.principal {
        push_named("principal", p, &|| "principal".into(), &mut views);
    }
    if let Some(b) = event
        .body
        .as_deref()
        .filter(|b| engine.worth_scanning("", b))
    {
        views.push(View::field(b, "body".into(), None));
    }
    for (name, value) in &event.extra {
        if format == Format::Text && name == "line" {
            match normalize::find_request_target(value) {
                Some((m, range)) => {
                    method = m;
                    let (p, q) = normalize::split_target(&value[range.clone()]);
                    url_views(p, q, &mut views);
                    // Keep `scheme://user:pass@host` in the text; blank path and query.
                    let blank =
                        range.start + normalize::path_start(&value[range.clone()])..range.end;
                    let mut rest = value.to_string();
                    rest.replace_range(blank.clone(), &" ".repeat(blank.len()));
                    views.push(View::field_owned(rest, "text".into(), None));
                }
                None => views.push(View::field(value, "text".into(), None)),
            }
        } else {
            let field = name.rsplit(['.', '/']).next().unwrap_or(name);
            push_named(field, value, &|| format!("extra:{name}"), &mut views);
        }
    }
    (views, method, url_path)
}

/// A view of a named field, scanned as `name: value`.
fn named(name: &str, value: &str, location: String) -> View {
    View::field(
        &format!("{name}: {value}"),
        location,
        Some(name.to_lowercase()),
    )
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod detail_tests {
    use super::*;

    /// The detail column is the JSON a `serde_json` map of the same fields gives.
    #[test]
    fn detail_is_the_json_of_its_fields() {
        for bits in 0..8u8 {
            let d = normalize::Decoded {
                json: bits & 1 != 0,
                percent: bits & 2 != 0,
                base64: bits & 4 != 0,
            };
            let mut names = Vec::new();
            for (on, name) in [
                (d.json, "json"),
                (d.percent, "percent"),
                (d.base64, "base64"),
            ] {
                if on {
                    names.push(name);
                }
            }
            for context in [false, true] {
                let want = serde_json::json!({ "context": context, "decoded": names }).to_string();
                assert_eq!(detail_json(Some(context), None, d), want);
            }
            for kind in ["us_ssn", "odd \"kind\"\\\n"] {
                let want = serde_json::json!({ "from_kind": kind, "decoded": names }).to_string();
                assert_eq!(detail_json(None, Some(kind), d), want);
            }
        }
    }
}
