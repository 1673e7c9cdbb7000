//! `exfiltration`: egress (proxy / network-sensor formats) to external hosts that
//! carries PHI findings, or that uploads large request bodies to a destination
//! not seen during the baseline.
//!
//! Known destinations are a table of their first-seen times in the shared,
//! bounded state. A destination is new when the detector had already watched
//! `learning_ms` of traffic before it first appeared and it appeared less than
//! `new_for_ms` ago. Uploads per (client, destination) are summed over a sliding
//! window of at most 64 entries.

use super::access::Access;
use super::eval::{Alert, Compiled, Ctx, Slot, key_of, us};
use super::params::{ExfilMode, Exfiltration, KeyBy};
use super::state::{Episode, mem_hash, rule_key};
use std::collections::VecDeque;

const MAX_UPLOADS: usize = 64;

/// Per (client, destination) state.
#[derive(Debug, Default)]
pub(crate) struct Pair {
    uploads: VecDeque<(i64, u64)>,
    sum: u64,
    episode: Episode,
}

impl Pair {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.uploads.capacity() * 16
    }
}

fn is_egress<'a>(p: &Exfiltration, a: &'a Access) -> Option<&'a str> {
    if !p.egress_formats.iter().any(|f| f == a.format.name()) {
        return None;
    }
    let host = a.dest_host.as_deref()?;
    let internal = p
        .internal_host_suffixes
        .iter()
        .any(|s| host.ends_with(s.as_str()) || host == s.trim_start_matches('.'));
    let ip_internal = host.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    });
    (!internal && !ip_internal).then_some(host)
}

/// Evaluate one access.
pub(crate) fn observe(idx: usize, rule: &Compiled, p: &Exfiltration, a: &Access, cx: &mut Ctx<'_>) {
    let Some(host) = is_egress(p, a) else { return };
    let Some((location, who)) = key_of(KeyBy::Principal, a) else {
        return;
    };
    match p.mode {
        ExfilMode::PhiEgress => phi_egress(idx, rule, p, a, cx, host, location, who),
        ExfilMode::NewDestination => new_destination(idx, rule, p, a, cx, host, location, who),
    }
}

#[allow(clippy::too_many_arguments)]
fn phi_egress(
    idx: usize,
    rule: &Compiled,
    p: &Exfiltration,
    a: &Access,
    cx: &mut Ctx<'_>,
    host: &str,
    location: &'static str,
    who: &str,
) {
    let kinds: Vec<&str> = a
        .phi_kinds()
        .iter()
        .map(|k| &**k)
        .filter(|k| !p.exclude_kinds.iter().any(|x| x == k))
        .collect();
    if kinds.is_empty() {
        return;
    }
    let t = cx.now;
    let window = us(p.window_ms);
    let k = rule_key(idx, mem_hash(&(who, host)));
    let slot = cx
        .state
        .get_or_insert_with(k, || Slot::ExfilPair(Box::default()));
    let Slot::ExfilPair(st) = slot else { return };
    if st.episode.active(t) {
        st.episode.extend(t, window);
        return;
    }
    st.episode.open(t, window);
    let alert = Alert {
        key_canon: format!("{who}\u{0}{host}"),
        masked: format!("{who} -> {host}"),
        value_hmac: None,
        location: if location == "principal" {
            "principal+dest_host"
        } else {
            "client_ip+dest_host"
        },
        start: t,
        detail: serde_json::json!({
            "mode": "phi_egress",
            "phi_kinds": kinds,
            "bytes_in": a.bytes_in,
            "window_ms": p.window_ms,
        }),
    };
    cx.emit(rule, a, alert);
}

#[allow(clippy::too_many_arguments)]
fn new_destination(
    idx: usize,
    rule: &Compiled,
    p: &Exfiltration,
    a: &Access,
    cx: &mut Ctx<'_>,
    host: &str,
    location: &'static str,
    who: &str,
) {
    let t = cx.now;
    let dk = rule_key(idx, mem_hash(&("dest", host)));
    let dest_first = match cx.state.get_or_insert_with(dk, || Slot::Destination(t)) {
        Slot::Destination(first) => *first,
        _ => return,
    };
    let learned = dest_first.saturating_sub(cx.start) >= us(p.learning_ms);
    let recent = t.saturating_sub(dest_first) <= us(p.new_for_ms);
    if !(learned && recent) || a.bytes_in == 0 {
        return;
    }
    let window = us(p.window_ms);
    let k = rule_key(idx, mem_hash(&(who, host)));
    let slot = cx
        .state
        .get_or_insert_with(k, || Slot::ExfilPair(Box::default()));
    let Slot::ExfilPair(st) = slot else { return };
    st.uploads.push_back((t, a.bytes_in));
    st.sum = st.sum.saturating_add(a.bytes_in);
    let horizon = t.saturating_sub(window);
    while st
        .uploads
        .front()
        .is_some_and(|&(x, _)| x < horizon || st.uploads.len() > MAX_UPLOADS)
    {
        if let Some((_, b)) = st.uploads.pop_front() {
            st.sum = st.sum.saturating_sub(b);
        }
    }
    if st.episode.active(t) {
        st.episode.extend(t, window);
        return;
    }
    if st.sum < p.min_bytes_in {
        return;
    }
    let first = st.uploads.front().map_or(t, |u| u.0);
    st.episode.open(first, window);
    st.episode.extend(t, window);
    let alert = Alert {
        key_canon: format!("{who}\u{0}{host}"),
        masked: format!("{who} -> {host}"),
        value_hmac: None,
        location: if location == "principal" {
            "principal+dest_host"
        } else {
            "client_ip+dest_host"
        },
        start: first,
        detail: serde_json::json!({
            "mode": "new_destination",
            "bytes_in": st.sum,
            "uploads": st.uploads.len(),
            "min_bytes_in": p.min_bytes_in,
            "window_ms": p.window_ms,
            "destination_first_seen_us": dest_first,
            "baseline_ms": dest_first.saturating_sub(cx.start) / 1000,
        }),
    };
    cx.emit(rule, a, alert);
}
