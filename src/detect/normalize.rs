//! Decoded views of event fields: JSON string escapes, URL percent-encoding (`+` as
//! space in query strings), query parameters as parts, and base64 segments that
//! decode to text. Detection runs on these views, so `%40`, `\u0040` and a base64
//! blob all reveal the same value as the raw text would.

use base64::Engine as _;
use std::ops::Range;
use std::sync::LazyLock;

/// Longest base64 segment decoded (bytes of encoded text).
pub const BASE64_MAX: usize = 16 * 1024;
/// Shortest base64 segment considered.
pub const BASE64_MIN: usize = 16;
/// How many base64 layers are peeled.
pub const BASE64_DEPTH: u8 = 2;

/// A named sub-range of a view (a query parameter).
#[derive(Debug, Clone)]
pub struct Part {
    /// Byte range in the view text (`name=value`).
    pub range: Range<usize>,
    /// Parameter name, decoded.
    pub name: String,
}

/// Text to scan, with where it is in the event.
#[derive(Debug, Clone)]
pub struct View {
    /// The decoded text.
    pub text: String,
    /// Location of the field (`url.path`, `url.query`, `header:x` ...).
    pub location: String,
    /// Lower-case field name for context (header name, extra field's last segment).
    pub field: Option<String>,
    /// Query parameters when the view is a query string.
    pub parts: Vec<Part>,
    /// How many base64 layers were peeled to get here.
    pub depth: u8,
    /// Which decodings were applied (for the finding's detail).
    pub decoded: Decoded,
}

/// Decodings applied to a view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// URL percent-decoding changed the text.
    pub percent: bool,
    /// JSON string escapes changed the text.
    pub json: bool,
    /// The text came from a base64 segment.
    pub base64: bool,
}

impl View {
    /// A view of a plain field: JSON escapes and percent-encoding decoded.
    pub fn field(raw: &str, location: String, field: Option<String>) -> View {
        View::field_owned(raw.to_string(), location, field)
    }

    /// [`View::field`] of a text already owned.
    pub fn field_owned(raw: String, location: String, field: Option<String>) -> View {
        let (text, decoded) = decode_owned(raw, false);
        View {
            text,
            location,
            field,
            parts: Vec::new(),
            depth: 0,
            decoded,
        }
    }

    /// A view of a query string: parameters decoded one by one and joined by `&`.
    pub fn query(raw: &str, location: String) -> View {
        let mut text = String::with_capacity(raw.len());
        let mut parts = Vec::new();
        let mut any = Decoded::default();
        for param in raw.split('&').filter(|p| !p.is_empty()) {
            if !text.is_empty() {
                text.push('&');
            }
            let start = text.len();
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (param, None),
            };
            let (name, d1) = decode(name, true);
            text.push_str(&name);
            if let Some(v) = value {
                let (v, d2) = decode(v, true);
                text.push('=');
                text.push_str(&v);
                any.percent |= d2.percent;
                any.json |= d2.json;
            }
            any.percent |= d1.percent;
            parts.push(Part {
                range: start..text.len(),
                name: if value.is_some() { name } else { String::new() },
            });
        }
        View {
            text,
            location,
            field: None,
            parts,
            depth: 0,
            decoded: any,
        }
    }

    /// The part holding byte `at`, if any.
    pub fn part_at(&self, at: usize) -> Option<&Part> {
        self.parts.iter().find(|p| p.range.contains(&at))
    }

    /// Location of a match starting at `at`: `url.query:<name>` inside a named
    /// parameter, the view's location otherwise.
    pub fn location_at(&self, at: usize) -> String {
        match self.part_at(at) {
            Some(p) if !p.name.is_empty() => format!("{}:{}", self.location, p.name),
            _ => self.location.clone(),
        }
    }
}

/// Decode JSON string escapes (when the text has a backslash) and then URL
/// percent-encoding, twice at most for double encoding; `plus` turns `+` into a space.
pub fn decode(raw: &str, plus: bool) -> (String, Decoded) {
    decode_owned(raw.to_string(), plus)
}

/// [`decode`] of a text already owned: no copy when nothing needs decoding.
pub fn decode_owned(raw: String, plus: bool) -> (String, Decoded) {
    let mut d = Decoded::default();
    let mut text = match json_unescape(&raw) {
        Some(t) => {
            d.json = true;
            t
        }
        None => raw,
    };
    if plus && text.contains('+') {
        text = text.replace('+', " ");
    }
    for _ in 0..2 {
        if !has_percent_escape(&text) {
            break;
        }
        let next = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if next == text {
            break;
        }
        d.percent = true;
        text = next;
    }
    (text, d)
}

fn has_percent_escape(s: &str) -> bool {
    let b = s.as_bytes();
    memchr::memchr_iter(b'%', b)
        .any(|i| i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit())
}

/// Resolve JSON string escapes; `None` when the text has none (or they are not JSON).
pub fn json_unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut changed = false;
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let repl = match chars.peek().copied() {
            Some('"') => Some('"'),
            Some('\\') => Some('\\'),
            Some('/') => Some('/'),
            Some('n') => Some('\n'),
            Some('t') => Some('\t'),
            Some('r') => Some('\r'),
            Some('b') => Some('\u{8}'),
            Some('f') => Some('\u{c}'),
            Some('u') => {
                let hex: String = chars.clone().skip(1).take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) if hex.len() == 4 => {
                        for _ in 0..4 {
                            chars.next();
                        }
                        Some(ch)
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match repl {
            Some(r) => {
                chars.next();
                out.push(r);
                changed = true;
            }
            None => out.push('\\'),
        }
    }
    changed.then_some(out)
}

static REQUEST_TARGET: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r#"(?:^|[\s"'\[])(?:(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) +)?((?:https?://[^\s"'<>]+)|(?:/[^\s"'<>]*))"#,
    )
    .unwrap_or_else(|_| unreachable!("constant pattern compiles"))
});

/// An HTTP method and request target found in a plain text line (a request line
/// or the first URL), with the target's byte range.
pub fn find_request_target(line: &str) -> Option<(Option<String>, Range<usize>)> {
    let caps = REQUEST_TARGET.captures(line)?;
    let target = caps.get(2)?;
    let method = caps.get(1).map(|m| m.as_str().to_string());
    if method.is_none() && !target.as_str().starts_with("http") && !target.as_str().contains('?') {
        return None;
    }
    Some((method, target.range()))
}

/// Where `://` of a leading `scheme://` is, if the target is an absolute URL (a
/// `://` inside the path or query, as in `?identifier=http://...`, does not count).
fn scheme_end(target: &str) -> Option<usize> {
    let i = crate::text::find_str(target, "://")?;
    target[..i]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .then_some(i)
        .filter(|&i| i > 0)
}

/// Split a request target or URL into (path, query): drops `scheme://host` and a fragment.
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    let rest = match scheme_end(target) {
        Some(i) => {
            let after = &target[i + 3..];
            match after.find(['/', '?']) {
                Some(j) => &after[j..],
                None => "",
            }
        }
        None => target,
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    }
}

/// Byte offset where the path of a URL or request target starts (after
/// `scheme://authority`; 0 for a bare path).
pub fn path_start(target: &str) -> usize {
    match scheme_end(target) {
        Some(i) => {
            let after = i + 3;
            target[after..]
                .find(['/', '?', '#'])
                .map_or(target.len(), |j| after + j)
        }
        None => 0,
    }
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// Base64 segments of `text` that decode to mostly printable UTF-8 text:
/// (byte range of the segment, decoded text).
pub fn base64_segments(text: &str) -> Vec<(Range<usize>, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_b64(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let (mut upper, mut lower) = (false, false);
        while i < b.len() && is_b64(b[i]) {
            upper |= b[i].is_ascii_uppercase();
            lower |= b[i].is_ascii_lowercase();
            i += 1;
        }
        let end = i;
        while i < b.len() && b[i] == b'=' && i - end < 2 {
            i += 1;
        }
        let len = end - start;
        if !((BASE64_MIN..=BASE64_MAX).contains(&len) && upper && lower) {
            continue;
        }
        let seg = &text[start..end];
        let decoded = if seg.contains(['-', '_']) {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(seg)
        } else {
            base64::engine::general_purpose::STANDARD_NO_PAD.decode(seg)
        };
        if let Ok(bytes) = decoded
            && let Ok(s) = String::from_utf8(bytes)
            && mostly_printable(&s)
        {
            out.push((start..i, s));
        }
    }
    out
}

fn mostly_printable(s: &str) -> bool {
    let total = s.chars().count();
    let good = s
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .count();
    total >= 4 && good * 100 >= total * 95
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_plus() {
        assert_eq!(decode("a%40b.com", false).0, "a@b.com");
        assert_eq!(decode("us-ssn%7C123", false).0, "us-ssn|123");
        assert_eq!(decode("John+Smith", true).0, "John Smith");
        assert_eq!(decode("John+Smith", false).0, "John+Smith");
        assert_eq!(decode("a%2540b", false).0, "a@b");
        assert_eq!(decode("100%", false).0, "100%");
    }

    #[test]
    fn json_escapes() {
        assert_eq!(
            json_unescape(r#"{\"ssn\":\"1\"}"#).as_deref(),
            Some(r#"{"ssn":"1"}"#)
        );
        assert_eq!(json_unescape(r"a\u0040b").as_deref(), Some("a@b"));
        assert_eq!(json_unescape("plain"), None);
        assert_eq!(json_unescape(r"c:\x").as_deref(), None);
    }

    #[test]
    fn query_parts() {
        let v = View::query(
            "identifier=http%3A%2F%2Fx%7C12&_count=10",
            "url.query".into(),
        );
        assert_eq!(v.text, "identifier=http://x|12&_count=10");
        assert_eq!(
            v.location_at(v.text.find("12&").expect("pos")),
            "url.query:identifier"
        );
        assert_eq!(v.location_at(v.text.len() - 1), "url.query:_count");
    }

    #[test]
    fn targets() {
        let (p, q) = split_target("/fhir/Patient?identifier=http://hl7.org/fhir/sid/us-ssn|1");
        assert_eq!(p, "/fhir/Patient");
        assert_eq!(q, Some("identifier=http://hl7.org/fhir/sid/us-ssn|1"));
        assert_eq!(path_start("/a?u=http://x/y"), 0);
        assert_eq!(path_start("https://h.example/a"), 17);
        let line = "10.0.0.1 - - \"GET /fhir/Patient?ssn=1 HTTP/1.1\" 200";
        let (m, r) = find_request_target(line).expect("target");
        assert_eq!(m.as_deref(), Some("GET"));
        assert_eq!(&line[r], "/fhir/Patient?ssn=1");
        assert_eq!(
            split_target("https://h.example/a/b?x=1#f"),
            ("/a/b", Some("x=1"))
        );
        assert_eq!(split_target("/a"), ("/a", None));
        assert!(find_request_target("no url here").is_none());
    }

    #[test]
    fn base64_text_only() {
        let segs = base64_segments("x=c3NuPTEyMy00NS02Nzg5IHRlc3Q= y=0123456789abcdef0123");
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].1, "ssn=123-45-6789 test");
    }
}
