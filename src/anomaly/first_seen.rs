//! `first_seen`: a principal used from a network it was never seen on (IPv4 /24,
//! IPv6 /48 by default: no GeoIP or ASN database is needed), or a service
//! principal reaching a destination host it never reached.
//!
//! A principal must have been watched for `learning_ms` and `min_events` before
//! anything new about it is reported; a principal with more than `max_known`
//! networks (hosts) is treated as roaming and no longer reported. When the state
//! of a principal is evicted, it starts learning again (no false alarm).

use super::access::Access;
use super::eval::{Alert, Compiled, Ctx, Slot, us};
use super::params::{FirstSeen, FirstSeenMode};
use super::state::{mem_hash, rule_key};
use std::net::IpAddr;

/// Per-principal state.
#[derive(Debug, Default)]
pub(crate) struct State {
    first: i64,
    events: u32,
    known: Vec<u64>,
    roaming: bool,
}

impl State {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.known.capacity() * 8
    }
}

/// The network prefix of an IP address, as text (`203.0.113.0/24`).
fn network(ip: &str, v4: u8, v6: u8) -> Option<String> {
    let ip: IpAddr = ip.trim().parse().ok()?;
    Some(match ip {
        IpAddr::V4(a) => {
            let bits = v4.min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            let net = std::net::Ipv4Addr::from(u32::from(a) & mask);
            format!("{net}/{bits}")
        }
        IpAddr::V6(a) => {
            let bits = v6.min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            let net = std::net::Ipv6Addr::from(u128::from(a) & mask);
            format!("{net}/{bits}")
        }
    })
}

/// Evaluate one access.
pub(crate) fn observe(idx: usize, rule: &Compiled, p: &FirstSeen, a: &Access, cx: &mut Ctx<'_>) {
    let Some(who) = a.principal.as_deref() else {
        return;
    };
    if p.success_only && !a.success() {
        return;
    }
    if !p.principal_prefixes.is_empty()
        && !p
            .principal_prefixes
            .iter()
            .any(|x| who.starts_with(x.as_str()))
    {
        return;
    }
    let (what, location) = match p.mode {
        FirstSeenMode::Network => {
            let Some(net) = a
                .client_ip
                .as_deref()
                .and_then(|ip| network(ip, p.ipv4_prefix, p.ipv6_prefix))
            else {
                return;
            };
            (net, "principal+network")
        }
        FirstSeenMode::DestHost => {
            let Some(h) = a.dest_host.as_deref() else {
                return;
            };
            (h.to_string(), "principal+dest_host")
        }
    };
    let t = cx.now;
    let h = mem_hash(what.as_str());
    let k = rule_key(idx, mem_hash(who));
    let slot = cx.state.get_or_insert_with(k, || {
        Slot::FirstSeen(Box::new(State {
            first: t,
            ..State::default()
        }))
    });
    let Slot::FirstSeen(st) = slot else { return };
    st.events = st.events.saturating_add(1);
    if st.known.contains(&h) || st.roaming {
        return;
    }
    let learned = t.saturating_sub(st.first) >= us(p.learning_ms) && st.events > p.min_events;
    if st.known.len() >= p.max_known as usize {
        st.roaming = true;
        st.known = Vec::new();
        return;
    }
    st.known.push(h);
    if !learned {
        return;
    }
    let known = st.known.len() - 1;
    let history_ms = t.saturating_sub(st.first) / 1000;
    let events = st.events - 1;
    let field = match p.mode {
        FirstSeenMode::Network => "network",
        FirstSeenMode::DestHost => "dest_host",
    };
    let alert = Alert {
        key_canon: format!("{who}\u{0}{what}"),
        masked: format!("{who} {field} {what}"),
        value_hmac: None,
        location,
        start: t,
        detail: serde_json::json!({
            field: what,
            "known": known,
            "history_ms": history_ms,
            "events_before": events,
            "learning_ms": p.learning_ms,
        }),
    };
    cx.emit(rule, a, alert);
}

#[cfg(test)]
mod tests {
    use super::network;

    #[test]
    fn networks_are_prefixes() {
        assert_eq!(
            network("203.0.113.77", 24, 48).as_deref(),
            Some("203.0.113.0/24")
        );
        assert_eq!(
            network("2001:db8:1:2::5", 24, 48).as_deref(),
            Some("2001:db8:1::/48")
        );
        assert_eq!(network("not-an-ip", 24, 48), None);
    }
}
