//! Helpers that fill [`Event`] fields the same way in every decoder.

use super::json::Scalar;
use super::util::{non_dash, parse_url, split_host_port, split_target};
use crate::event::{Event, Text};
use crate::text::SplitByte;
use std::borrow::Cow;

/// Set `slot` from a text value unless it is already set (first value wins).
pub(crate) fn set<'a>(slot: &mut Option<Text<'a>>, value: Option<&'a str>) {
    if slot.is_none()
        && let Some(v) = value.and_then(non_dash)
    {
        *slot = Some(Cow::Borrowed(v));
    }
}

/// Set `slot` from text unless it is already set or the text is empty or `-`.
pub(crate) fn set_text<'a>(slot: &mut Option<Text<'a>>, value: Option<Text<'a>>) {
    if slot.is_none() {
        *slot = value.and_then(|v| map_text(v, non_dash));
    }
}

/// Set `slot` from a JSON scalar unless it is already set.
pub(crate) fn set_scalar<'a>(slot: &mut Option<Text<'a>>, value: &Scalar<'a>) {
    if slot.is_none() {
        *slot = value.text();
    }
}

/// Header names common enough to keep as static text rather than a copy, by
/// length: a name is compared only with those of its own length.
fn common_headers(len: usize) -> &'static [&'static str] {
    match len {
        4 => &["host"],
        6 => &["accept", "cookie", "origin"],
        7 => &["referer"],
        9 => &["x-api-key", "x-real-ip"],
        10 => &["connection", "set-cookie", "user-agent", "x-trace-id"],
        12 => &["content-type", "x-request-id"],
        13 => &["authorization", "cache-control"],
        14 => &["content-length"],
        15 => &[
            "accept-encoding",
            "accept-language",
            "x-amzn-trace-id",
            "x-forwarded-for",
        ],
        16 => &["x-correlation-id", "x-forwarded-host"],
        17 => &["x-forwarded-proto"],
        19 => &["proxy-authorization"],
        _ => &[],
    }
}

/// A header name as events keep it: lower case.
pub(crate) fn header_name(name: &str) -> Text<'static> {
    let common = common_headers(name.len());
    // Most logs write names in lower case already: an exact compare first.
    let hit = common
        .iter()
        .find(|c| crate::text::same(c.as_bytes(), name.as_bytes()))
        .or_else(|| common.iter().find(|c| c.eq_ignore_ascii_case(name)));
    match hit {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(name.to_ascii_lowercase()),
    }
}

/// Set `slot` unless it is already set.
pub(crate) fn set_opt<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Fill path and query (and, for an absolute URL, `url` and the destination
/// host and port) from a request target as logged, unless the path is set.
pub(crate) fn set_target<'a>(ev: &mut Event<'a>, target: &'a str) {
    let Some(target) = non_dash(target) else {
        return;
    };
    if ev.path.is_some() {
        return;
    }
    if let Some(u) = parse_url(target) {
        set(&mut ev.url, Some(target));
        set(&mut ev.dest_host, u.host);
        set_opt(&mut ev.dest_port, u.port);
        set(&mut ev.path, u.path);
        set(&mut ev.query, u.query);
    } else {
        let (path, query) = split_target(target);
        set(&mut ev.path, Some(path));
        set(&mut ev.query, query);
    }
}

/// Set the query from a raw query string (a leading `?` is dropped).
pub(crate) fn set_query<'a>(ev: &mut Event<'a>, query: &'a str) {
    let q = query.strip_prefix('?').unwrap_or(query);
    set(&mut ev.query, Some(q));
}

/// Append a header with its name lower-cased; empty or `-` values are skipped.
pub(crate) fn push_header<'a>(
    headers: &mut Vec<(Text<'a>, Text<'a>)>,
    name: &str,
    value: &Scalar<'a>,
) {
    if let Some(v) = value.text() {
        headers.push((header_name(name), v));
    }
}

/// Fill `dest_host` (port dropped) and `user_agent` from the `host` and
/// `user-agent` headers when nothing else set them.
pub(crate) fn from_headers(ev: &mut Event<'_>) {
    if ev.dest_host.is_none()
        && let Some(h) = header_text(ev, "host")
    {
        set_text(
            &mut ev.dest_host,
            map_text(h, |h| Some(split_host_port(h).0)),
        );
    }
    if ev.user_agent.is_none() {
        let ua = header_text(ev, "user-agent");
        set_text(&mut ev.user_agent, ua);
    }
}

/// The text of the first request header with this (lower-case) name.
pub(crate) fn header_text<'a>(ev: &Event<'a>, name: &str) -> Option<Text<'a>> {
    ev.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Set client ip and port from `ip:port` (or `[v6]:port`, or a bare address).
pub(crate) fn set_client_addr<'a>(ev: &mut Event<'a>, addr: &'a str) {
    let (ip, port) = split_host_port(addr);
    set(&mut ev.client_ip, Some(ip));
    set_opt(&mut ev.client_port, port);
}

/// Set destination ip and port from `ip:port`, dropping a `scheme://` prefix.
pub(crate) fn set_dest_addr<'a>(ev: &mut Event<'a>, addr: &'a str) {
    let addr = crate::text::after_scheme(addr);
    let (ip, port) = split_host_port(addr);
    set(&mut ev.dest_ip, Some(ip));
    set_opt(&mut ev.dest_port, port);
}

/// Parse `METHOD target PROTOCOL` (the HTTP request line as access logs write it).
/// Returns false when the line does not have that shape.
pub(crate) fn set_request_line<'a>(ev: &mut Event<'a>, line: &'a str) -> bool {
    let mut parts = line.split_b(b' ').filter(|p| !p.is_empty());
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return false;
    };
    let proto_ok = parts
        .next()
        .is_none_or(|p| p.starts_with("HTTP/") || p == "-");
    if parts.next().is_some() || !proto_ok || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return false;
    }
    set(&mut ev.method, Some(method));
    set_target(ev, target);
    true
}

/// Append a rule id unless it is empty or already present.
pub(crate) fn push_rule<'a>(ev: &mut Event<'a>, id: Option<Text<'a>>) {
    if let Some(id) = id
        && !ev.rule_ids.contains(&id)
    {
        ev.rule_ids.push(id);
    }
}

/// Append an unmapped string field for detection to scan.
pub(crate) fn push_extra<'a>(ev: &mut Event<'a>, path: &str, value: &Scalar<'a>) {
    if let Scalar::Str(_) = value
        && let Some(v) = value.text()
    {
        ev.extra.push((Cow::Owned(path.to_owned()), v));
    }
}

/// Run a filler that slices its input (such as [`set_target`]) on text that
/// may be owned, and return what it returns: borrowed text fills `ev` directly;
/// owned text fills through the event moved aside, whose fields are then owned
/// (a rare path: only escaped JSON strings are owned).
pub(crate) fn with_text<'a, R>(
    ev: &mut Event<'a>,
    text: Text<'a>,
    fill: impl for<'b> FnOnce(&mut Event<'b>, &'b str) -> R,
) -> R {
    match text {
        Cow::Borrowed(t) => fill(ev, t),
        Cow::Owned(t) => {
            let mut scratch: Event<'_> = std::mem::take(ev);
            let r = fill(&mut scratch, &t);
            *ev = scratch.into_owned();
            r
        }
    }
}

/// A part of `text` that `f` picks, borrowed when `text` is.
pub(crate) fn map_text<'a>(
    text: Text<'a>,
    f: impl for<'b> FnOnce(&'b str) -> Option<&'b str>,
) -> Option<Text<'a>> {
    match text {
        Cow::Borrowed(t) => f(t).map(Cow::Borrowed),
        Cow::Owned(t) => f(&t).map(|s| Cow::Owned(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_text_fills_like_borrowed_text_and_keeps_what_was_set() {
        for text in [
            Cow::Borrowed("https://h.example:8443/fhir/Patient/7?x=1"),
            Cow::Owned(String::from("https://h.example:8443/fhir/Patient/7?x=1")),
        ] {
            let owned = matches!(text, Cow::Owned(_));
            let mut ev = Event {
                method: Some("GET".into()),
                ..Event::default()
            };
            with_text(&mut ev, text, set_target);
            assert_eq!(ev.method.as_deref(), Some("GET"), "owned: {owned}");
            assert_eq!(
                ev.path.as_deref(),
                Some("/fhir/Patient/7"),
                "owned: {owned}"
            );
            assert_eq!(ev.query.as_deref(), Some("x=1"), "owned: {owned}");
            assert_eq!(ev.dest_host.as_deref(), Some("h.example"), "owned: {owned}");
            assert_eq!(ev.dest_port, Some(8443), "owned: {owned}");
        }
        assert_eq!(
            map_text(Cow::Owned(String::from("a, b")), |t| t.split(',').next()),
            Some(Cow::Borrowed("a"))
        );
        let mut slot = None;
        set_text(&mut slot, Some(Cow::Borrowed("-")));
        assert_eq!(slot, None);
        assert_eq!(header_name("User-Agent"), "user-agent");
        assert_eq!(header_name("X-Custom"), "x-custom");
        assert!(matches!(
            header_name("X-Request-ID"),
            Cow::Borrowed("x-request-id")
        ));
        assert!(matches!(header_name("host"), Cow::Borrowed("host")));
        assert!(matches!(header_name("hostx"), Cow::Owned(_)));
    }

    #[test]
    fn common_headers_sit_under_their_length() {
        let mut all = Vec::new();
        for len in 0..64 {
            for name in common_headers(len) {
                assert_eq!(name.len(), len, "{name}");
                assert_eq!(name.to_ascii_lowercase(), *name, "{name}");
                assert!(
                    matches!(header_name(&name.to_ascii_uppercase()), Cow::Borrowed(n) if n == *name)
                );
                all.push(*name);
            }
        }
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!((all.len(), count), (24, 24));
    }
}
