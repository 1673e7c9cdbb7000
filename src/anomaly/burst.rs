//! `auth_failure_burst`: many 401/403 responses for one client IP (or principal)
//! inside a window, or many distinct credentials failing (key spraying).
//!
//! The times of the last `min_failures` failures are kept: a burst is when the
//! oldest of them is still inside the window. Distinct credentials are kept as
//! in-memory hashes with their last failure time, at most
//! `2 * min_distinct_credentials` of them.

use super::access::Access;
use super::eval::{Alert, Compiled, Ctx, Slot, key_of, us};
use super::params::{AuthFailureBurst, KeyBy};
use super::state::{Episode, mem_hash, rule_key};
use std::collections::VecDeque;

/// Per-key state.
#[derive(Debug, Default)]
pub(crate) struct State {
    fails: VecDeque<i64>,
    creds: Vec<(u64, i64)>,
    episode: Episode,
}

impl State {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.fails.capacity() * 8 + self.creds.capacity() * 16
    }
}

/// Evaluate one access.
pub(crate) fn observe(
    idx: usize,
    rule: &Compiled,
    p: &AuthFailureBurst,
    a: &Access,
    cx: &mut Ctx<'_>,
) {
    let Some(status) = a.status else { return };
    if !p.statuses.contains(&status) {
        return;
    }
    if p.key == KeyBy::Principal && a.principal.is_none() {
        return;
    }
    let Some((location, who)) = key_of(p.key, a) else {
        return;
    };
    let t = cx.now;
    let window = us(p.window_ms);
    let horizon = t.saturating_sub(window);
    let k = rule_key(idx, mem_hash(who));
    let slot = cx
        .state
        .get_or_insert_with(k, || Slot::Burst(Box::default()));
    let Slot::Burst(st) = slot else { return };
    st.fails.push_back(t);
    while st.fails.len() > p.min_failures as usize {
        st.fails.pop_front();
    }
    if let Some(fp) = a.credential_fp {
        let cap = (p.min_distinct_credentials as usize)
            .saturating_mul(2)
            .max(1);
        match st.creds.iter_mut().find(|(h, _)| *h == fp) {
            Some(c) => c.1 = t,
            None => {
                st.creds.retain(|(_, last)| *last >= horizon);
                if st.creds.len() >= cap
                    && let Some(oldest) = st
                        .creds
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, c)| c.1)
                        .map(|(i, _)| i)
                {
                    st.creds.swap_remove(oldest);
                }
                st.creds.push((fp, t));
            }
        }
    }
    if st.episode.active(t) {
        st.episode.extend(t, window);
        return;
    }
    let failures = st.fails.iter().filter(|&&x| x >= horizon).count();
    let distinct = st.creds.iter().filter(|c| c.1 >= horizon).count();
    let burst = failures >= p.min_failures as usize;
    let spray = p.min_distinct_credentials > 0 && distinct >= p.min_distinct_credentials as usize;
    if !(burst || spray) {
        return;
    }
    let first = st
        .fails
        .iter()
        .copied()
        .find(|&x| x >= horizon)
        .unwrap_or(t);
    st.episode.open(first, window);
    st.episode.extend(t, window);
    let alert = Alert {
        key_canon: who.to_string(),
        masked: who.to_string(),
        value_hmac: None,
        location,
        start: first,
        detail: serde_json::json!({
            "window_ms": p.window_ms,
            "failures": failures,
            "min_failures": p.min_failures,
            "distinct_credentials": distinct,
            "min_distinct_credentials": p.min_distinct_credentials,
            "statuses": p.statuses,
            "reason": if burst { "burst" } else { "distinct_credentials" },
            "first_time_us": first,
        }),
    };
    cx.emit(rule, a, alert);
}
