//! `enumeration`: one principal walking object ids on one route (BOLA / IDOR).
//!
//! Per (principal, route template) the last accesses inside the window are kept
//! in a ring; counters of small upward and downward id steps between consecutive
//! accesses are updated as entries enter and leave, so the common case is O(1).
//! Only when the steps could reach the threshold are distinct ids and the
//! success / not-found mix counted.

use super::access::{Access, mask_number};
use super::eval::{Alert, Compiled, Ctx, Slot, key_of, us};
use super::params::{Enumeration, KeyBy};
use super::state::{Episode, mem_hash, rule_key};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy)]
struct Entry {
    t: i64,
    number: Option<u64>,
    object: u64,
    status: u16,
}

/// Per-key state.
#[derive(Debug, Default)]
pub(crate) struct State {
    ring: VecDeque<Entry>,
    ups: usize,
    downs: usize,
    episode: Episode,
}

impl State {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<Entry>()
    }
}

/// +1 for a small upward step, -1 for a small downward one, 0 otherwise.
fn step(a: &Entry, b: &Entry, max: u64) -> i8 {
    match (a.number, b.number) {
        (Some(x), Some(y)) if y > x && y - x <= max => 1,
        (Some(x), Some(y)) if x > y && x - y <= max => -1,
        _ => 0,
    }
}

impl State {
    fn count(&mut self, s: i8, add: bool) {
        let c = match s {
            1 => &mut self.ups,
            -1 => &mut self.downs,
            _ => return,
        };
        if add {
            *c += 1;
        } else {
            *c = c.saturating_sub(1);
        }
    }

    fn push(&mut self, e: Entry, p: &Enumeration) {
        if let Some(last) = self.ring.back() {
            let s = step(last, &e, p.max_stride);
            self.count(s, true);
        }
        self.ring.push_back(e);
        let horizon = e.t.saturating_sub(us(p.window_ms));
        while self
            .ring
            .front()
            .is_some_and(|f| f.t < horizon || self.ring.len() > p.max_entries)
        {
            if let Some(f) = self.ring.pop_front()
                && let Some(next) = self.ring.front()
            {
                let s = step(&f, next, p.max_stride);
                self.count(s, false);
            }
        }
    }
}

/// Evaluate one access.
pub(crate) fn observe(idx: usize, rule: &Compiled, p: &Enumeration, a: &Access, cx: &mut Ctx<'_>) {
    let (Some(obj), Some(route)) = (a.object, a.route.as_deref()) else {
        return;
    };
    let Some((_, who)) = key_of(KeyBy::Principal, a) else {
        return;
    };
    let k = rule_key(idx, mem_hash(&(who, route)));
    let slot = cx
        .state
        .get_or_insert_with(k, || Slot::Enumeration(Box::default()));
    let Slot::Enumeration(st) = slot else { return };
    let t = cx.now;
    st.push(
        Entry {
            t,
            number: obj.number,
            object: obj.hash,
            status: a.status.unwrap_or(0),
        },
        p,
    );
    let window = us(p.window_ms);
    if st.episode.active(t) {
        st.episode.extend(t, window);
        return;
    }
    let monotone = st.ups.max(st.downs);
    if monotone + 1 < p.min_distinct {
        return;
    }
    let moves = st.ups + st.downs;
    let fraction = monotone as f64 / moves.max(1) as f64;
    if fraction < p.min_monotone_fraction {
        return;
    }
    let mut ids: Vec<u64> = st.ring.iter().map(|e| e.object).collect();
    ids.sort_unstable();
    ids.dedup();
    let success = st
        .ring
        .iter()
        .filter(|e| (200..300).contains(&e.status))
        .count();
    let not_found = st.ring.iter().filter(|e| e.status == 404).count();
    if ids.len() < p.min_distinct || success < p.min_success || not_found < p.min_not_found {
        return;
    }
    let first = st.ring.front().map_or(t, |e| e.t);
    st.episode.open(first, window);
    st.episode.extend(t, window);
    let samples: Vec<String> = st
        .ring
        .iter()
        .filter_map(|e| e.number.map(mask_number))
        .take(3)
        .collect();
    let alert = Alert {
        key_canon: format!("{who}\u{0}{route}"),
        masked: format!("{who} {route}"),
        value_hmac: None,
        location: "principal+route",
        start: first,
        detail: serde_json::json!({
            "route": route,
            "window_ms": p.window_ms,
            "requests": st.ring.len(),
            "distinct_objects": ids.len(),
            "monotone_steps": monotone,
            "direction": if st.ups >= st.downs { "up" } else { "down" },
            "max_stride": p.max_stride,
            "status_2xx": success,
            "status_404": not_found,
            "first_time_us": first,
            "sample_ids": samples,
        }),
    };
    cx.emit(rule, a, alert);
}
