//! Access extraction: who read which patients and records in one event.
//!
//! A request counts when it succeeded (2xx), was a read (GET, POST for searches
//! and operations, or an unlogged method) and either hit a FHIR resource type that
//! holds patient data or named a patient. Patients come from `Patient/<id>` paths
//! (reads, `$everything`, `_history`, compartments), `patient=` / `subject=`
//! parameters, `Patient?_id=`, identifier searches and HL7 v2 PID-3 in a logged
//! body. Records are distinct `Type/<id>` instances of patient-data types.
//!
//! Canonical values, hashed with [`Key::hash64`]: a patient's logical id as is
//! (domain `patient`); an identifier as `identifier:<value>` without its system,
//! so the same MRN seen in a FHIR search and an HL7 message counts once (domain
//! `patient`); a record as `Type/<id>` (domain `record`).

use super::fhir::{ResourceKind, is_fhir_id, resource_kind};
use crate::event::Event;
use crate::redact::Key;
use crate::text::SplitByte;
use base64::Engine as _;
use percent_encoding::percent_decode_str;
use std::borrow::Cow;

/// Hash domain of patients.
pub const PATIENT_DOMAIN: &str = "patient";
/// Hash domain of records.
pub const RECORD_DOMAIN: &str = "record";

/// Keyed hash of a patient's FHIR logical id (as a patient directory lists it).
pub fn patient_hash(key: &Key, id: &str) -> u64 {
    key.hash64(PATIENT_DOMAIN, id.as_bytes())
}

/// Keyed hash of a patient identifier value (MRN, member id ...), system dropped.
pub fn identifier_hash(key: &Key, value: &str) -> u64 {
    let mut canon = String::with_capacity(11 + value.len());
    canon.push_str("identifier:");
    canon.push_str(value);
    key.hash64(PATIENT_DOMAIN, canon.as_bytes())
}

/// Keyed hash of a record `Type/<id>`.
pub fn record_hash(key: &Key, resource_type: &str, id: &str) -> u64 {
    let mut canon = String::with_capacity(resource_type.len() + 1 + id.len());
    canon.push_str(resource_type);
    canon.push('/');
    canon.push_str(id);
    key.hash64(RECORD_DOMAIN, canon.as_bytes())
}

/// FHIR base paths, normalized: leading `/`, no trailing `/`.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    bases: Vec<String>,
    any_prefix: bool,
}

impl Paths {
    pub(crate) fn new(bases: &[String], any_prefix: bool) -> Paths {
        let bases = bases
            .iter()
            .map(|b| format!("/{}", b.trim_matches('/')))
            .filter(|b| b.len() > 1)
            .collect();
        Paths { bases, any_prefix }
    }

    /// The path from its resource-type segment on, without the leading `/`,
    /// and what that segment names.
    fn resource_part<'p>(&self, path: &'p str) -> Option<(&'p str, ResourceKind)> {
        for base in &self.bases {
            // Bases start `/` and a second byte: most paths differ there,
            // before a call to compare the rest.
            if path.as_bytes().get(1) == base.as_bytes().get(1)
                && let Some(rest) = path.strip_prefix(base.as_str())
                && let Some(rest) = rest.strip_prefix('/')
            {
                let first = rest.split_b(b'/').next().unwrap_or("");
                if let Some(kind) = resource_kind(first) {
                    return Some((rest, kind));
                }
            }
        }
        if !self.any_prefix {
            return None;
        }
        let mut offset = 0;
        for seg in path.split_b(b'/') {
            if let Some(kind) = resource_kind(seg) {
                return Some((&path[offset..], kind));
            }
            offset += seg.len() + 1;
        }
        None
    }
}

/// What one event exposed. Buffers are reused across events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Access {
    /// Keyed patient hashes (may repeat).
    pub patients: Vec<u64>,
    /// Keyed record hashes (may repeat).
    pub records: Vec<u64>,
    /// Patient-data resource types touched.
    pub types: Vec<&'static str>,
    /// Whether the request returned patient data.
    pub phi: bool,
}

impl Access {
    fn clear(&mut self) {
        self.patients.clear();
        self.records.clear();
        self.types.clear();
        self.phi = false;
    }
}

/// Cheap gate, no allocation: a successful read with a path, URL or body.
#[inline]
pub(crate) fn candidate(event: &Event) -> bool {
    match event.status {
        Some(s) if (200..300).contains(&s) => {}
        _ => return false,
    }
    if let Some(m) = event.method.as_deref()
        && !(m.eq_ignore_ascii_case("GET") || m.eq_ignore_ascii_case("POST"))
    {
        return false;
    }
    event.path.is_some() || event.url.is_some() || event.body.is_some()
}

/// Path and query of an event, from its fields or its full URL.
fn path_and_query<'e>(event: &'e Event<'_>) -> (Option<&'e str>, Option<&'e str>) {
    if event.path.is_some() {
        return (event.path.as_deref(), event.query.as_deref());
    }
    let Some(url) = event.url.as_deref() else {
        return (None, event.query.as_deref());
    };
    let after_scheme = crate::text::after_scheme(url);
    let path_start = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let (path, query) = match path_start.split_once_b(b'?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_start, None),
    };
    let path = path.split_b(b'#').next().unwrap_or(path);
    (Some(path), query.or(event.query.as_deref()))
}

/// Extract the access in `event` into `out`; returns whether it exposed PHI.
pub(crate) fn extract(event: &Event, paths: &Paths, key: &Key, out: &mut Access) -> bool {
    out.clear();
    let (path, query) = path_and_query(event);
    if let Some(path) = path {
        let decoded: Cow<'_, str> = if path.contains('%') {
            percent_decode_str(path).decode_utf8_lossy()
        } else {
            Cow::Borrowed(path)
        };
        if let Some((rest, kind)) = paths.resource_part(&decoded) {
            let rtype = from_path(rest, kind, key, out);
            if let Some(q) = query {
                from_query(q, rtype, key, out);
            }
        }
    }
    if let Some(body) = event.body.as_deref()
        && memchr::memmem::find(body.as_bytes(), b"PID|").is_some()
    {
        from_hl7(body, key, out);
    }
    out.phi |= !out.patients.is_empty();
    out.phi
}

/// The resource-type segment (`rest` starts with it; it names `kind`) and what
/// follows it. Returns the resource type.
fn from_path(rest: &str, kind: ResourceKind, key: &Key, out: &mut Access) -> Option<&'static str> {
    let mut segs = rest.split_b(b'/').filter(|s| !s.is_empty());
    segs.next()?;
    let ResourceKind::PatientData(rtype) = kind else {
        return None;
    };
    out.phi = true;
    out.types.push(rtype);
    if let Some(id) = segs.next()
        && is_fhir_id(id)
    {
        out.records.push(record_hash(key, rtype, id));
        if rtype == "Patient" {
            out.patients.push(patient_hash(key, id));
        }
    }
    Some(rtype)
}

/// Decode a query component (`+` is a space, then percent-decoding).
fn form_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let spaced = s.replace('+', " ");
    Cow::Owned(percent_decode_str(&spaced).decode_utf8_lossy().into_owned())
}

/// Search parameters that name patients.
fn from_query(query: &str, rtype: Option<&'static str>, key: &Key, out: &mut Access) {
    for pair in query.split_b(b'&') {
        let (name, value) = pair.split_once_b(b'=').unwrap_or((pair, ""));
        if value.is_empty() {
            continue;
        }
        let name = form_decode(name);
        let (base, chain) = match name.split_once_b(b'.') {
            Some((b, c)) => (b, Some(c)),
            None => (name.as_ref(), None),
        };
        let (base, modifier) = match base.split_once_b(b':') {
            Some((b, m)) => (b, Some(m)),
            None => (base, None),
        };
        let by_reference = matches!(base, "patient" | "subject" | "beneficiary")
            && matches!(modifier, None | Some("Patient"));
        let is_patient_search = rtype == Some("Patient");
        let target = match (chain, by_reference) {
            (None, true) => Target::Reference,
            (Some("identifier"), true) => Target::Identifier,
            (Some("_id"), true) => Target::Id,
            (None, false) if is_patient_search && base == "_id" => Target::Id,
            (None, false) if is_patient_search && base == "identifier" => Target::Identifier,
            _ => continue,
        };
        let value = form_decode(value);
        for v in value.split_b(b',') {
            let v = v.trim();
            match target {
                Target::Reference => reference(v, key, out),
                Target::Id => {
                    if is_fhir_id(v) {
                        out.patients.push(patient_hash(key, v));
                    }
                }
                Target::Identifier => {
                    let ident = v.rsplit_once_b(b'|').map_or(v, |(_, val)| val);
                    if !ident.is_empty() {
                        out.patients.push(identifier_hash(key, ident));
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Target {
    Reference,
    Id,
    Identifier,
}

/// `Patient/<id>`, an absolute URL ending in it, or a bare id.
fn reference(v: &str, key: &Key, out: &mut Access) {
    let id = match v.rfind("Patient/") {
        Some(i) => v[i + 8..].split_b(b'/').next().unwrap_or(""),
        None if v.contains('/') => return,
        None => v,
    };
    if is_fhir_id(id) {
        out.patients.push(patient_hash(key, id));
    }
}

/// PID-3 (patient identifier list) of every PID segment of an HL7 v2 message.
fn from_hl7(body: &str, key: &Key, out: &mut Access) {
    for seg in body.split(['\r', '\n']) {
        let seg = seg.trim_start();
        let Some(fields) = seg.strip_prefix("PID") else {
            continue;
        };
        let mut chars = fields.chars();
        let Some(sep) = chars.next() else { continue };
        if sep.is_alphanumeric() {
            continue;
        }
        let Some(pid3) = fields[sep.len_utf8()..].split(sep).nth(2) else {
            continue;
        };
        for rep in pid3.split_b(b'~') {
            let id = rep.split_b(b'^').next().unwrap_or("").trim();
            if !id.is_empty() {
                out.patients.push(identifier_hash(key, id));
            }
        }
    }
}

/// Query parameters that carry a credential naming the caller (compared
/// without regard to case).
const QUERY_CREDENTIALS: [&str; 6] = [
    "api_key",
    "apikey",
    "api-key",
    "key",
    "access_token",
    "token",
];

// [`principal`] skips a query without a `k` in it: every name must hold one.
const _: () = {
    let mut i = 0;
    while i < QUERY_CREDENTIALS.len() {
        let name = QUERY_CREDENTIALS[i].as_bytes();
        let mut j = 0;
        while j < name.len() && name[j] != b'k' {
            j += 1;
        }
        assert!(j < name.len(), "a query credential name without `k`");
        i += 1;
    }
};

/// Who made the request: the principal the log names, else the JWT `sub` of a
/// bearer token (decoded, not verified), else a fingerprint `key:` + 12 hex of the
/// keyed HMAC of an API key or opaque token (the same HMAC a credential finding's
/// `value_hmac` starts with), else `None`.
pub fn principal(event: &Event, key: &Key) -> Option<String> {
    if let Some(p) = event.principal.as_deref()
        && !p.trim().is_empty()
    {
        return Some(p.to_string());
    }
    for (name, value) in &event.headers {
        match name.as_ref() {
            "authorization" | "proxy-authorization" => {
                let v = value.trim();
                let (scheme, cred) = v.split_once_b(b' ').unwrap_or(("", v));
                let cred = cred.trim();
                if cred.is_empty() {
                    continue;
                }
                if scheme.eq_ignore_ascii_case("basic") {
                    return Some(basic_user(cred).unwrap_or_else(|| fingerprint(key, cred)));
                }
                return Some(token_principal(cred, key));
            }
            "x-api-key" | "apikey" | "api-key" | "x-apikey" | "x-auth-token" | "x-access-token"
            | "x-goog-api-key" => {
                let v = value.trim();
                if !v.is_empty() {
                    return Some(token_principal(v, key));
                }
            }
            _ => {}
        }
    }
    let (_, query) = path_and_query(event);
    let query = query?;
    // Every parameter name read below holds a `k`: a query without one (most
    // queries) is not split.
    memchr::memchr2(b'k', b'K', query.as_bytes())?;
    for pair in query.split_b(b'&') {
        let Some((name, value)) = pair.split_once_b(b'=') else {
            continue;
        };
        if QUERY_CREDENTIALS
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
            && !value.is_empty()
        {
            return Some(token_principal(&form_decode(value), key));
        }
    }
    None
}

fn fingerprint(key: &Key, secret: &str) -> String {
    let mut h = key.hmac_hex(secret.as_bytes());
    h.truncate(12);
    format!("key:{h}")
}

/// Tokens seen recently on this thread, with the principal they resolved to.
/// The same API key or JWT comes back on request after request; resolving it is
/// a base64 and JSON decode or an HMAC, which costs more than the rest of the
/// event's exposure work. Keyed by (key id, token) through a keyed in-memory
/// hash; cleared when full.
const TOKEN_CACHE_CAP: usize = 4096;

thread_local! {
    static TOKEN_CACHE: std::cell::RefCell<(ahash::RandomState, std::collections::HashMap<u64, String>)> =
        std::cell::RefCell::new((ahash::RandomState::new(), std::collections::HashMap::new()));
}

fn token_principal(token: &str, key: &Key) -> String {
    TOKEN_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let (state, map) = &mut *c;
        let h = state.hash_one((key.id(), token));
        if let Some(p) = map.get(&h) {
            return p.clone();
        }
        let p = jwt_sub(token).unwrap_or_else(|| fingerprint(key, token));
        if map.len() >= TOKEN_CACHE_CAP {
            map.clear();
        }
        map.insert(h, p.clone());
        p
    })
}

/// The `sub` claim of a JWT, decoded without verification.
fn jwt_sub(token: &str) -> Option<String> {
    let mut parts = token.split_b(b'.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let sub = v.get("sub")?.as_str()?.trim();
    (!sub.is_empty()).then(|| sub.to_string())
}

/// The user name of HTTP Basic credentials.
fn basic_user(cred: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cred)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let user = text.split_once_b(b':')?.0;
    (!user.is_empty()).then(|| user.to_string())
}
