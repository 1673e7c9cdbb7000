//! `distinct_patients`: one principal reading many distinct patients in a sliding
//! window, above a fixed threshold or far above the principal's own baseline
//! (an EWMA of the distinct patients it read per window).

use super::access::Access;
use super::eval::{Alert, Compiled, Ctx, Slot, key_of, us};
use super::params::{DistinctPatients, KeyBy};
use super::state::{Episode, HashKeyed, mem_hash, rule_key};

/// Per-principal state.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Patient hash -> last time read.
    seen: HashKeyed<i64>,
    bucket: i64,
    bucket_new: u32,
    ewma: f32,
    windows: u32,
    episode: Episode,
}

impl State {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.seen.capacity() * 17
    }

    /// Close the buckets before `bucket` into the baseline.
    fn roll(&mut self, bucket: i64, p: &DistinctPatients) {
        if self.windows == 0 && self.bucket_new == 0 {
            self.bucket = bucket;
            return;
        }
        if bucket <= self.bucket {
            return;
        }
        let x = self.bucket_new as f32;
        self.ewma = if self.windows == 0 {
            x
        } else {
            p.alpha * x + (1.0 - p.alpha) * self.ewma
        };
        let skipped = (bucket - self.bucket - 1).clamp(0, 10_000) as i32;
        self.ewma *= (1.0 - p.alpha).powi(skipped);
        self.windows = self.windows.saturating_add(1 + skipped as u32);
        self.bucket = bucket;
        self.bucket_new = 0;
    }
}

/// Evaluate one access.
pub(crate) fn observe(
    idx: usize,
    rule: &Compiled,
    p: &DistinctPatients,
    a: &Access,
    cx: &mut Ctx<'_>,
) {
    if a.patients.is_empty() || !a.success() {
        return;
    }
    let Some((location, who)) = key_of(KeyBy::Principal, a) else {
        return;
    };
    let t = cx.now;
    let window = us(p.window_ms);
    let k = rule_key(idx, mem_hash(who));
    let slot = cx
        .state
        .get_or_insert_with(k, || Slot::Patients(Box::default()));
    let Slot::Patients(st) = slot else { return };
    st.roll(t.div_euclid(window.max(1)), p);
    let cap = (p.min_patients.max(p.min_baseline_patients) as usize).saturating_mul(4);
    let horizon = t.saturating_sub(window);
    let mut added = false;
    for &h in &a.patients {
        match st.seen.get_mut(&h) {
            Some(last) if *last >= horizon => *last = t,
            Some(last) => {
                *last = t;
                st.bucket_new += 1;
                added = true;
            }
            None => {
                if st.seen.len() >= cap {
                    st.seen.retain(|_, last| *last >= horizon);
                }
                if st.seen.len() < cap {
                    st.seen.insert(h, t);
                }
                st.bucket_new += 1;
                added = true;
            }
        }
    }
    if !added {
        return;
    }
    if st.episode.active(t) {
        st.episode.extend(t, window);
        return;
    }
    let lowest = p.min_patients.min(p.min_baseline_patients) as usize;
    if st.seen.len() < lowest {
        return;
    }
    st.seen.retain(|_, last| *last >= horizon);
    let count = st.seen.len() as u32;
    let baseline = st.ewma.max(1.0);
    let by_threshold = count >= p.min_patients;
    let by_baseline = st.windows >= p.min_history_windows
        && count >= p.min_baseline_patients
        && count as f32 >= p.baseline_factor * baseline;
    if !(by_threshold || by_baseline) {
        return;
    }
    let first = st.seen.values().copied().min().unwrap_or(t);
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
            "distinct_patients": count,
            "threshold": p.min_patients,
            "baseline": st.ewma,
            "baseline_factor": p.baseline_factor,
            "history_windows": st.windows,
            "reason": if by_threshold { "threshold" } else { "baseline" },
            "first_time_us": first,
        }),
    };
    cx.emit(rule, a, alert);
}
