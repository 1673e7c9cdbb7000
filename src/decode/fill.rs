//! Helpers that fill [`Event`] fields the same way in every decoder.

use super::json::Scalar;
use super::util::{non_dash, parse_url, split_host_port, split_target};
use crate::event::Event;
use crate::text::SplitByte;

/// Set `slot` from a text value unless it is already set (first value wins).
pub(crate) fn set(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none()
        && let Some(v) = value.and_then(non_dash)
    {
        *slot = Some(v.to_owned());
    }
}

/// Set `slot` from a JSON scalar unless it is already set.
pub(crate) fn set_scalar(slot: &mut Option<String>, value: &Scalar<'_>) {
    if slot.is_none() {
        *slot = value.string();
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
pub(crate) fn set_target(ev: &mut Event, target: &str) {
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
pub(crate) fn set_query(ev: &mut Event, query: &str) {
    let q = query.strip_prefix('?').unwrap_or(query);
    set(&mut ev.query, Some(q));
}

/// Append a header with its name lower-cased; empty or `-` values are skipped.
pub(crate) fn push_header(headers: &mut Vec<(String, String)>, name: &str, value: &Scalar<'_>) {
    if let Some(v) = value.string() {
        headers.push((name.to_ascii_lowercase(), v));
    }
}

/// Fill `dest_host` (port dropped) and `user_agent` from the `host` and
/// `user-agent` headers when nothing else set them.
pub(crate) fn from_headers(ev: &mut Event) {
    if ev.dest_host.is_none()
        && let Some(h) = ev.header("host")
    {
        ev.dest_host = non_dash(split_host_port(h).0).map(str::to_owned);
    }
    if ev.user_agent.is_none() {
        ev.user_agent = ev
            .header("user-agent")
            .and_then(non_dash)
            .map(str::to_owned);
    }
}

/// Set client ip and port from `ip:port` (or `[v6]:port`, or a bare address).
pub(crate) fn set_client_addr(ev: &mut Event, addr: &str) {
    let (ip, port) = split_host_port(addr);
    set(&mut ev.client_ip, Some(ip));
    set_opt(&mut ev.client_port, port);
}

/// Set destination ip and port from `ip:port`, dropping a `scheme://` prefix.
pub(crate) fn set_dest_addr(ev: &mut Event, addr: &str) {
    let addr = addr.split_once("://").map_or(addr, |(_, a)| a);
    let (ip, port) = split_host_port(addr);
    set(&mut ev.dest_ip, Some(ip));
    set_opt(&mut ev.dest_port, port);
}

/// Parse `METHOD target PROTOCOL` (the HTTP request line as access logs write it).
/// Returns false when the line does not have that shape.
pub(crate) fn set_request_line(ev: &mut Event, line: &str) -> bool {
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
pub(crate) fn push_rule(ev: &mut Event, id: Option<String>) {
    if let Some(id) = id
        && !ev.rule_ids.contains(&id)
    {
        ev.rule_ids.push(id);
    }
}

/// Append an unmapped string field for detection to scan.
pub(crate) fn push_extra(ev: &mut Event, path: &str, value: &Scalar<'_>) {
    if let Scalar::Str(_) = value
        && let Some(v) = value.string()
    {
        ev.extra.push((path.to_owned(), v));
    }
}
