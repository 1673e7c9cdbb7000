//! [`Access`]: the compact record of one decoded event (and its pattern findings)
//! that anomaly rules keep and compare across events.

use super::state::mem_hash;
use crate::decode::Format;
use crate::event::{Event, Provenance};
use crate::finding::{Category, Finding};
use crate::redact::Key;
use crate::text::SplitByte;
use smol_str::SmolStr;
use std::sync::Arc;

/// Request header locations whose credential is the request's own credential
/// (a credential found anywhere else counts as leaked into the log).
pub const USE_LOCATIONS: &[&str] = &[
    "header:authorization",
    "header:proxy-authorization",
    "header:x-api-key",
    "header:apikey",
    "header:api-key",
    "header:x-apikey",
    "header:x-auth-token",
    "header:x-access-token",
    "header:x-goog-api-key",
];

/// A credential seen in a finding: its keyed HMAC (the finding's `value_hmac`),
/// mask, kind and where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// Hex HMAC of the credential (the finding's `value_hmac`).
    pub hmac: Arc<str>,
    /// The finding's mask.
    pub masked: Arc<str>,
    /// The finding's kind (`jwt`, `api_key` ...).
    pub kind: Arc<str>,
    /// The finding's location.
    pub location: Arc<str>,
}

impl Credential {
    /// 64-bit state key of the credential (from its HMAC).
    pub(crate) fn state_key(&self) -> u64 {
        let head = self.hmac.get(..16).unwrap_or(&self.hmac);
        u64::from_str_radix(head, 16).unwrap_or_else(|_| mem_hash(&*self.hmac))
    }
}

/// The object a request addressed: the last id-like path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    /// In-memory keyed hash of the id.
    pub hash: u64,
    /// The id's value when it is a decimal number (for stride analysis).
    pub number: Option<u64>,
}

/// One access, owned and compact: what anomaly rules need from an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Access {
    /// Event time, microseconds since the Unix epoch (UTC).
    pub time: Option<i64>,
    /// Who: the logged principal, a JWT `sub`, or `key:` + a keyed fingerprint of an API key.
    pub principal: Option<SmolStr>,
    /// Client IP.
    pub client_ip: Option<SmolStr>,
    /// Destination host.
    pub dest_host: Option<SmolStr>,
    /// HTTP method.
    pub method: Option<SmolStr>,
    /// The path with ids replaced by `{id}` (never a raw id).
    pub route: Option<Arc<str>>,
    /// The object addressed.
    pub object: Option<Object>,
    /// Keyed hashes of the patients named (same hashes as the exposure counts).
    pub patients: Vec<u64>,
    /// HTTP status.
    pub status: Option<u16>,
    /// Request bytes.
    pub bytes_in: u64,
    /// Response bytes.
    pub bytes_out: u64,
    /// What the event's pattern findings flagged; `None` when nothing was
    /// (most accesses: boxed to keep the access small).
    pub flagged: Option<Box<Flagged>>,
    /// In-memory hash of the credential presented in an auth header, flagged or not
    /// (to count distinct keys tried).
    pub credential_fp: Option<u64>,
    /// Where the event came from.
    pub prov: Provenance,
    /// The decoder that read the event.
    pub format: Format,
}

/// PHI kinds and credentials an access's pattern findings flagged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flagged {
    /// Kinds of PHI findings in the request (response headers excluded).
    pub phi_kinds: Vec<Arc<str>>,
    /// Credentials used as the request's own credential (see [`USE_LOCATIONS`]).
    pub credentials_used: Vec<Credential>,
    /// Credentials found anywhere else in the event.
    pub credentials_leaked: Vec<Credential>,
}

/// Slots of a thread's interner (a direct-mapped cache: a collision only
/// costs an allocation).
const INTERN_SLOTS: usize = 1024;

thread_local! {
    /// Per-thread interner for the low-cardinality strings of an access
    /// (principal, method, route, host): repeats share one allocation, which
    /// also keeps the reorder buffer small.
    static INTERNED: std::cell::RefCell<Vec<Option<Arc<str>>>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// Scratch buffer for route templates.
    static ROUTE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    /// Per-thread cache of recent paths' routes (health checks, list endpoints
    /// and static files repeat line after line).
    static ROUTES: std::cell::RefCell<Vec<RouteSlot>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Slots of a thread's route cache (direct-mapped, like the interner).
const ROUTE_SLOTS: usize = 256;
/// Longer paths are templated without the cache.
const ROUTE_CACHE_MAX: usize = 256;

/// A path as an event held it, and what [`route_of`] told of it (`None`:
/// an empty slot).
#[derive(Default)]
struct RouteSlot {
    path: String,
    found: Option<RouteOf>,
}

/// What [`route_of`] tells of a path.
#[derive(Debug, Clone, PartialEq)]
struct RouteOf {
    /// The length of the path before its query or fragment.
    cut: usize,
    /// The route template of the path before its query (interned; `None`
    /// when that is empty).
    route: Option<Arc<str>>,
    /// The object the path addresses.
    object: Option<Object>,
    /// The path (before its query) holds `Patient/`: only such a path can
    /// name a patient (see [`path_patients`]).
    names_patient: bool,
}

/// The route of `raw`, a path that may still carry its query or fragment:
/// where the path ends, its template and object, and whether it names a
/// patient. Remembered per thread, keyed by `raw`: a path seen lately is
/// neither cut, templated nor searched again.
fn route_of(raw: &str) -> RouteOf {
    let compute = |raw: &str| {
        let cut = memchr::memchr2(b'?', b'#', raw.as_bytes()).unwrap_or(raw.len());
        let path = &raw[..cut];
        if path.is_empty() {
            return RouteOf {
                cut,
                route: None,
                object: None,
                names_patient: false,
            };
        }
        let names_patient = crate::text::find_str(path, "Patient/").is_some();
        ROUTE.with_borrow_mut(|r| {
            let object = template_into(path, r);
            RouteOf {
                cut,
                route: Some(intern(r)),
                object,
                names_patient,
            }
        })
    };
    if raw.len() > ROUTE_CACHE_MAX {
        return compute(raw);
    }
    ROUTES.with_borrow_mut(|slots| {
        if slots.is_empty() {
            slots.resize_with(ROUTE_SLOTS, RouteSlot::default);
        }
        let slot = &mut slots[(crate::text::quick_hash(raw.as_bytes()) as usize) % ROUTE_SLOTS];
        if let Some(found) = &slot.found
            && slot.path == raw
        {
            return found.clone();
        }
        let found = compute(raw);
        slot.path.clear();
        slot.path.push_str(raw);
        slot.found = Some(found.clone());
        found
    })
}

/// Forget this thread's interned strings. A replay worker calls it at the start
/// of each block: the block's accesses then share strings only among
/// themselves, so the thread that consumes (and drops) an earlier block never
/// touches the reference counts this thread is updating.
pub(crate) fn reset_interner() {
    INTERNED.with_borrow_mut(|slots| slots.iter_mut().for_each(|s| *s = None));
    ROUTES.with_borrow_mut(|slots| slots.iter_mut().for_each(|s| s.found = None));
}

/// `s` as a compact string: kept inline when short (no allocation, and nothing
/// shared with the thread that drops the access), otherwise this thread's
/// shared copy. Inlined: a string returned from a call travels through
/// memory, and reading it back right after the callee wrote it in pieces
/// stalls the load (four of these go into every access).
#[inline(always)]
fn short(s: &str) -> SmolStr {
    if s.len() <= INLINE {
        SmolStr::new(s)
    } else {
        shared(s)
    }
}

/// [`short`] of a string too long to keep inline.
#[inline(never)]
fn shared(s: &str) -> SmolStr {
    SmolStr::from(intern(s))
}

/// The longest string a [`SmolStr`] holds inline.
const INLINE: usize = 23;

/// `s` as a shared string, reusing this thread's copy when it has one.
fn intern(s: &str) -> Arc<str> {
    INTERNED.with_borrow_mut(|slots| {
        if slots.is_empty() {
            slots.resize(INTERN_SLOTS, None);
        }
        let slot = &mut slots[(crate::text::quick_hash(s.as_bytes()) as usize) % INTERN_SLOTS];
        match slot {
            Some(a) if **a == *s => a.clone(),
            _ => slot.insert(Arc::from(s)).clone(),
        }
    })
}

impl Access {
    /// Extract an access from a decoded event and the pattern findings of that event.
    pub fn from_event(
        ev: &Event,
        prov: &Provenance,
        format: Format,
        findings: &[Finding],
        key: &Key,
    ) -> Access {
        let who = crate::exposure::principal(ev, key);
        Access::from_event_as(ev, prov, format, findings, key, who.as_deref())
    }

    /// [`Access::from_event`] with the event's principal already resolved (by
    /// [`crate::exposure::principal`]).
    pub fn from_event_as(
        ev: &Event,
        prov: &Provenance,
        format: Format,
        findings: &[Finding],
        key: &Key,
        who: Option<&str>,
    ) -> Access {
        let mut patient_hashes = Vec::new();
        let (route, object) = match raw_path_of(ev) {
            Some(raw) => {
                let found = route_of(raw);
                patients(
                    &raw[..found.cut],
                    found.names_patient,
                    ev.query.as_deref(),
                    key,
                    &mut patient_hashes,
                );
                (found.route, found.object)
            }
            None => (None, None),
        };
        let mut flagged: Option<Box<Flagged>> = None;
        for f in findings {
            match f.category {
                Category::Phi if !f.location.starts_with("response") => {
                    let flagged = flagged.get_or_insert_default();
                    if !flagged.phi_kinds.contains(&f.kind) {
                        flagged.phi_kinds.push(f.kind.clone());
                    }
                }
                Category::Credential => {
                    let c = Credential {
                        hmac: Arc::from(f.value_hmac.as_str()),
                        masked: Arc::from(f.value_masked.as_str()),
                        kind: f.kind.clone(),
                        location: Arc::from(f.location.as_str()),
                    };
                    let flagged = flagged.get_or_insert_default();
                    let list = if USE_LOCATIONS.contains(&f.location.as_str()) {
                        &mut flagged.credentials_used
                    } else {
                        &mut flagged.credentials_leaked
                    };
                    if !list.iter().any(|x| x.hmac == c.hmac) {
                        list.push(c);
                    }
                }
                _ => {}
            }
        }
        // Built in one expression, after everything it holds: the access can
        // be written straight to where the caller keeps it.
        Access {
            time: ev.time,
            principal: who.map(short),
            client_ip: ev.client_ip.as_deref().map(short),
            dest_host: ev.dest_host.as_deref().map(|h| {
                if h.bytes().any(|b| b.is_ascii_uppercase()) {
                    short(&h.to_ascii_lowercase())
                } else {
                    short(h)
                }
            }),
            method: ev.method.as_deref().map(short),
            route,
            object,
            patients: patient_hashes,
            status: ev.status,
            bytes_in: ev.bytes_in.unwrap_or(0),
            bytes_out: ev.bytes_out.unwrap_or(0),
            flagged,
            credential_fp: credential_fp(ev),
            prov: prov.clone(),
            format,
        }
    }

    /// Kinds of PHI findings in the request (response headers excluded).
    pub fn phi_kinds(&self) -> &[Arc<str>] {
        self.flagged.as_deref().map_or(&[], |f| &f.phi_kinds)
    }

    /// Credentials used as the request's own credential (see [`USE_LOCATIONS`]).
    pub fn credentials_used(&self) -> &[Credential] {
        self.flagged.as_deref().map_or(&[], |f| &f.credentials_used)
    }

    /// Credentials found anywhere else in the event.
    pub fn credentials_leaked(&self) -> &[Credential] {
        self.flagged
            .as_deref()
            .map_or(&[], |f| &f.credentials_leaked)
    }

    /// Whether the request succeeded (a 2xx status).
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The path of an event, from its path field or its full URL, with whatever
/// query or fragment it still carries ([`route_of`] finds where it ends).
fn raw_path_of<'e>(ev: &'e Event<'_>) -> Option<&'e str> {
    if let Some(p) = ev.path.as_deref() {
        return Some(p);
    }
    let url = ev.url.as_deref()?;
    let rest = crate::text::after_scheme(url);
    Some(rest.find('/').map_or("", |i| &rest[i..]))
}

// Byte classes of path segments, so one pass gives everything [`is_id`] asks.
const SEG_DIGIT: u8 = 1;
/// `@ % =`.
const SEG_SPECIAL: u8 = 2;
const SEG_ALNUM: u8 = 4;
/// A hex digit or `-`.
const SEG_HEX_DASH: u8 = 8;

static SEG_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_digit() {
            SEG_DIGIT | SEG_ALNUM | SEG_HEX_DASH
        } else if b.is_ascii_hexdigit() {
            SEG_ALNUM | SEG_HEX_DASH
        } else if b.is_ascii_alphabetic() {
            SEG_ALNUM
        } else {
            match b {
                b'@' | b'%' | b'=' => SEG_SPECIAL,
                b'-' => SEG_HEX_DASH,
                _ => 0,
            }
        };
        i += 1;
    }
    t
};

/// What one pass over a path segment tells.
#[derive(Clone, Copy)]
struct SegShape {
    digits: usize,
    /// Classes of any byte.
    any: u8,
    /// Classes of every byte.
    all: u8,
}

impl SegShape {
    fn of(seg: &str) -> SegShape {
        let (mut digits, mut any, mut all) = (0usize, 0u8, u8::MAX);
        for &b in seg.as_bytes() {
            let c = SEG_CLASS[usize::from(b)];
            digits += usize::from(c & SEG_DIGIT);
            any |= c;
            all &= c;
        }
        SegShape { digits, any, all }
    }
}

/// Whether a path segment is an identifier rather than a fixed route word.
#[cfg(test)]
fn is_id(seg: &str, prev: &str) -> bool {
    is_id_shaped(seg, &SegShape::of(seg), prev, &SegShape::of(prev))
}

/// [`is_id`] with the shapes of the segment and the one before already taken.
fn is_id_shaped(seg: &str, shape: &SegShape, prev: &str, prev_shape: &SegShape) -> bool {
    let b = seg.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    let resource_before = prev.len() > 1
        && prev.as_bytes()[0].is_ascii_uppercase()
        && prev_shape.all & SEG_ALNUM != 0;
    if resource_before && first != b'$' && first != b'_' {
        return true;
    }
    let digits = shape.digits;
    let version = b.len() <= 4 && (first == b'v' || first == b'V') && digits == b.len() - 1;
    digits == b.len()
        || shape.any & SEG_SPECIAL != 0
        || b.len() > 40
        || (digits > 0 && b.len() >= 6 && !version)
        || (digits > 0 && !version && shape.all & SEG_HEX_DASH != 0)
}

/// The route template of a path and the object it addresses.
#[cfg(test)]
fn template(path: &str) -> (String, Option<Object>) {
    let mut out = String::new();
    let object = template_into(path, &mut out);
    (out, object)
}

/// Write the route template of a path to `out`; return the object it addresses.
fn template_into(path: &str, out: &mut String) -> Option<Object> {
    out.clear();
    let mut object = None;
    let (mut prev, mut prev_shape) = ("", SegShape::of(""));
    for (i, seg) in path.split_b(b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let shape = SegShape::of(seg);
        if is_id_shaped(seg, &shape, prev, &prev_shape) {
            out.push_str("{id}");
            if prev != "_history" {
                let number = (seg.len() <= 18 && shape.digits == seg.len())
                    .then(|| seg.parse::<u64>().ok())
                    .flatten();
                object = Some(Object {
                    hash: mem_hash(seg),
                    number,
                });
            }
        } else {
            out.push_str(seg);
        }
        (prev, prev_shape) = (seg, shape);
    }
    object
}

/// Patients named by a FHIR path (`Patient/<id>`) or a `patient=` / `subject=`
/// parameter, hashed like the exposure counts. `names_patient` is whether the
/// path holds `Patient/`, as [`route_of`] remembers it.
fn patients(path: &str, names_patient: bool, query: Option<&str>, key: &Key, out: &mut Vec<u64>) {
    // Most paths and queries name no patient: a substring search turns them
    // down before they are split (a `Patient` segment followed by an id holds
    // `Patient/`; every parameter read below starts `patient` or `subject`).
    // Paths and queries are short: a first-byte scan beats building or
    // dispatching a general searcher.
    use crate::text::find_str;
    if names_patient {
        path_patients(path, key, out);
    }
    if let Some(q) =
        query.filter(|q| find_str(q, "patient").is_some() || find_str(q, "subject").is_some())
    {
        query_patients(q, key, out);
    }
}

fn path_patients(path: &str, key: &Key, out: &mut Vec<u64>) {
    let mut prev = "";
    for seg in path.split_b(b'/') {
        if prev == "Patient" && is_fhir_id(seg) {
            out.push(crate::exposure::patient_hash(key, seg));
        }
        prev = seg;
    }
}

fn query_patients(query: &str, key: &Key, out: &mut Vec<u64>) {
    for pair in query.split_b(b'&') {
        let Some((name, value)) = pair.split_once_b(b'=') else {
            continue;
        };
        if !matches!(
            name,
            "patient" | "subject" | "patient:Patient" | "subject:Patient"
        ) {
            continue;
        }
        let value = value.strip_prefix("Patient%2F").unwrap_or(value);
        let id = value.rsplit_once_b(b'/').map_or(value, |(_, id)| id);
        if is_fhir_id(id) {
            let hash = crate::exposure::patient_hash(key, id);
            if !out.contains(&hash) {
                out.push(hash);
            }
        }
    }
}

/// A FHIR logical id: 1-64 of `[A-Za-z0-9.-]`.
fn is_fhir_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// In-memory hash of the credential presented in an auth header.
fn credential_fp(ev: &Event) -> Option<u64> {
    ev.headers.iter().find_map(|(name, value)| {
        is_use_header(name)
            .then(|| value.trim())
            .filter(|v| !v.is_empty())
            .map(mem_hash)
    })
}

/// Whether `header:<name>` is one of [`USE_LOCATIONS`] (one `match` on the
/// name instead of a walk over the list: this runs for every header).
fn is_use_header(name: &str) -> bool {
    matches!(
        name,
        "authorization"
            | "proxy-authorization"
            | "x-api-key"
            | "apikey"
            | "api-key"
            | "x-apikey"
            | "x-auth-token"
            | "x-access-token"
            | "x-goog-api-key"
    )
}

/// A masked form of a numeric id: stars and its last two digits.
pub(crate) fn mask_number(n: u64) -> String {
    let s = n.to_string();
    if s.len() <= 3 {
        return String::from("***");
    }
    format!("{}{}", "*".repeat(s.len() - 2), &s[s.len() - 2..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain statement of the identifier test, to check the one-pass version against.
    fn is_id_reference(seg: &str, prev: &str) -> bool {
        if seg.is_empty() {
            return false;
        }
        let b = seg.as_bytes();
        let resource_before = prev.len() > 1
            && prev.as_bytes()[0].is_ascii_uppercase()
            && prev.bytes().all(|c| c.is_ascii_alphanumeric());
        if resource_before && b[0] != b'$' && b[0] != b'_' {
            return true;
        }
        let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
        let version = b.len() <= 4 && (b[0] == b'v' || b[0] == b'V') && digits == b.len() - 1;
        digits == b.len()
            || b.iter().any(|c| matches!(c, b'@' | b'%' | b'='))
            || b.len() > 40
            || (digits > 0 && b.len() >= 6 && !version)
            || (digits > 0 && !version && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-'))
    }

    /// The list walk the `match` replaced.
    fn is_use_header_reference(name: &str) -> bool {
        USE_LOCATIONS
            .iter()
            .any(|l| l.strip_prefix("header:") == Some(name))
    }

    proptest! {
        /// The `match` accepts exactly the names of [`USE_LOCATIONS`]: listed
        /// names, near misses of them and random header names.
        #[test]
        fn use_headers_are_the_use_locations(
            pick in 0..USE_LOCATIONS.len(),
            edit in 0usize..4,
            random in "[a-z-]{0,24}",
        ) {
            let listed = &USE_LOCATIONS[pick]["header:".len()..];
            let names = [
                listed.to_string(),
                match edit {
                    0 => format!("{listed}s"),
                    1 => listed[1..].to_string(),
                    2 => listed.replacen('-', "_", 1),
                    _ => listed.to_uppercase(),
                },
                random,
            ];
            for name in &names {
                prop_assert_eq!(is_use_header(name), is_use_header_reference(name), "{}", name);
            }
        }
    }

    proptest! {
        #[test]
        fn one_pass_id_test_matches_the_plain_one(
            seg in "[0-9a-fA-FvVxyzPQ$_@%=.~-]{0,44}",
            prev in "[0-9a-zA-Z$_.-]{0,6}|Patient|Observation|_history",
        ) {
            prop_assert_eq!(is_id(&seg, &prev), is_id_reference(&seg, &prev), "{} after {}", seg, prev);
        }
    }

    proptest! {
        /// The substring checks in front of the patient walks never change
        /// what they find: paths and queries built from patient-shaped pieces,
        /// near misses and noise.
        #[test]
        fn patient_prechecks_lose_nothing(
            segs in proptest::collection::vec(
                "Patient|patient|Patients|Observation|[A-Za-z0-9.-]{0,8}|",
                0..6,
            ),
            params in proptest::collection::vec(
                "(patient|subject|patient:Patient|subject:Patient|Patient|subjects|x)=(Patient%2F|Patient/|)[A-Za-z0-9.-]{0,8}|[a-z=&]{0,6}",
                0..4,
            ),
        ) {
            let key = Key::from_bytes(b"patient precheck test key");
            let path = format!("/{}", segs.join("/"));
            let query = params.join("&");
            let mut got = Vec::new();
            // Twice: the second time the route cache answers for the path.
            for _ in 0..2 {
                got.clear();
                patients(&path, route_of(&path).names_patient, Some(&query), &key, &mut got);
            }
            let mut want = Vec::new();
            path_patients(&path, &key, &mut want);
            query_patients(&query, &key, &mut want);
            prop_assert_eq!(got, want, "{}?{}", path, query);
        }
    }

    #[test]
    fn cached_routes_are_the_templates_of_their_paths() -> Result<(), Box<dyn std::error::Error>> {
        // More paths than cache slots, each seen twice: every answer, from the
        // cache or not, is the path's own template.
        let paths: Vec<String> = (0..(3 * ROUTE_SLOTS))
            .map(|i| match i % 3 {
                0 => format!("/fhir/Patient/{i}"),
                1 => format!("/api/v{}/items", i % 7),
                _ => format!("/static/app-{i}.js"),
            })
            .collect();
        for round in 0..2 {
            for p in &paths {
                for raw in [p.clone(), format!("{p}?page={round}"), format!("{p}#top")] {
                    let got = route_of(&raw);
                    let (want, want_object) = template(p);
                    assert_eq!(
                        (got.cut, got.route.as_deref(), got.object, got.names_patient),
                        (
                            p.len(),
                            Some(want.as_str()),
                            want_object,
                            p.contains("Patient/")
                        ),
                        "{raw} round {round}"
                    );
                }
            }
        }
        for raw in ["", "?x=1", "#f"] {
            for _ in 0..2 {
                let got = route_of(raw);
                assert_eq!((got.cut, got.route, got.object), (0, None, None), "{raw:?}");
            }
        }
        let route = |raw: &str| route_of(raw).route.ok_or("no route");
        let (a, b) = (route("/health")?, route("/health")?);
        assert!(Arc::ptr_eq(&a, &b), "a repeated path reuses its route");
        reset_interner();
        let c = route("/health")?;
        assert!(
            !Arc::ptr_eq(&a, &c),
            "a new block shares nothing with the last"
        );
        Ok(())
    }

    #[test]
    fn templates_replace_ids() {
        let cases = [
            ("/fhir/Patient/100234", "/fhir/Patient/{id}", Some(100234)),
            ("/api/v1/orders/42", "/api/v1/orders/{id}", Some(42)),
            (
                "/fhir/Patient/abc-def/_history/3",
                "/fhir/Patient/{id}/_history/{id}",
                None,
            ),
            (
                "/users/jane@example.org/profile",
                "/users/{id}/profile",
                None,
            ),
            ("/static/app.js", "/static/app.js", None),
            (
                "/v2/items/3f2504e0-4f89-11d3-9a0c-0305e82c3301",
                "/v2/items/{id}",
                None,
            ),
        ];
        for (path, route, number) in cases {
            let (r, o) = template(path);
            assert_eq!(r, route, "{path}");
            assert_eq!(o.and_then(|o| o.number), number, "{path}");
        }
    }

    #[test]
    fn masks_keep_two_digits_at_most() {
        assert_eq!(mask_number(100234), "****34");
        assert_eq!(mask_number(7), "***");
        assert_eq!(mask_number(123), "***");
    }

    #[test]
    fn patients_from_path_and_query() {
        let key = Key::from_bytes(b"0123456789abcdef");
        let mut out = Vec::new();
        patients("/fhir/Patient/p1", true, Some("x=1"), &key, &mut out);
        patients(
            "/fhir/Observation",
            false,
            Some("patient=Patient/p2"),
            &key,
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                crate::exposure::patient_hash(&key, "p1"),
                crate::exposure::patient_hash(&key, "p2")
            ]
        );
    }
}
