//! `volume_spike`: requests or response bytes of one key in the current bucket
//! far above its baseline. The baseline is an EWMA over past buckets (empty
//! buckets decay it); once `slot_min_weeks` weeks of hourly history exist, the
//! EWMA of the same hour-of-week slot is used instead, so a key that is busy
//! every Monday morning is compared with earlier Monday mornings.

use super::access::Access;
use super::eval::{Alert, Compiled, Ctx, Slot, key_of, us};
use super::params::VolumeSpike;
use super::state::{Episode, mem_hash, rule_key};

const WEEK_SLOTS: usize = 168;
const HOUR_US: i64 = 3_600_000_000;

/// Per-key state.
#[derive(Debug, Default)]
pub(crate) struct State {
    bucket: i64,
    started: bool,
    requests: u32,
    bytes: u64,
    ewma_requests: f32,
    ewma_bytes: f32,
    history: u32,
    /// Hour-of-week EWMAs of requests and bytes, allocated after a week of history.
    slots: Option<Box<[[f32; 2]; WEEK_SLOTS]>>,
    episode: Episode,
}

impl State {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<[[f32; 2]; WEEK_SLOTS]>())
    }

    fn slot_of(bucket: i64, bucket_us: i64) -> usize {
        // 1970-01-01 was a Thursday; slot 0 is Monday 00:00 UTC.
        let hours = (bucket * bucket_us).div_euclid(HOUR_US) + 72;
        hours.rem_euclid(WEEK_SLOTS as i64) as usize
    }

    fn roll(&mut self, bucket: i64, bucket_us: i64, p: &VolumeSpike) {
        if !self.started {
            self.started = true;
            self.bucket = bucket;
            return;
        }
        if bucket <= self.bucket {
            return;
        }
        let (r, b) = (self.requests as f32, self.bytes as f32);
        let a = p.alpha;
        if self.history == 0 {
            self.ewma_requests = r;
            self.ewma_bytes = b;
        } else {
            self.ewma_requests = a * r + (1.0 - a) * self.ewma_requests;
            self.ewma_bytes = a * b + (1.0 - a) * self.ewma_bytes;
        }
        let hourly = bucket_us == HOUR_US;
        if hourly && self.slots.is_none() && self.history as usize >= WEEK_SLOTS {
            let init = [self.ewma_requests, self.ewma_bytes];
            self.slots = Some(Box::new([init; WEEK_SLOTS]));
        }
        if let Some(slots) = self.slots.as_mut() {
            let s = &mut slots[Self::slot_of(self.bucket, bucket_us)];
            s[0] = 0.5 * r + 0.5 * s[0];
            s[1] = 0.5 * b + 0.5 * s[1];
        }
        let skipped = (bucket - self.bucket - 1).clamp(0, 100_000);
        let decay = (1.0 - a).powi(skipped.min(10_000) as i32);
        self.ewma_requests *= decay;
        self.ewma_bytes *= decay;
        self.history = self.history.saturating_add(1 + skipped as u32);
        self.bucket = bucket;
        self.requests = 0;
        self.bytes = 0;
    }

    /// Baseline (requests, bytes) and whether it is the hour-of-week slot's.
    fn baseline(&self, bucket_us: i64, p: &VolumeSpike) -> (f32, f32, bool) {
        match &self.slots {
            Some(s) if self.history as usize >= WEEK_SLOTS * p.slot_min_weeks as usize => {
                let v = s[Self::slot_of(self.bucket, bucket_us)];
                (v[0], v[1], true)
            }
            _ => (self.ewma_requests, self.ewma_bytes, false),
        }
    }
}

/// Evaluate one access.
pub(crate) fn observe(idx: usize, rule: &Compiled, p: &VolumeSpike, a: &Access, cx: &mut Ctx<'_>) {
    let Some((location, who)) = key_of(p.key, a) else {
        return;
    };
    let t = cx.now;
    let bucket_us = us(p.bucket_ms).max(1);
    let k = rule_key(idx, mem_hash(who));
    let slot = cx
        .state
        .get_or_insert_with(k, || Slot::Volume(Box::default()));
    let Slot::Volume(st) = slot else { return };
    let bucket = t.div_euclid(bucket_us);
    st.roll(bucket, bucket_us, p);
    st.requests = st.requests.saturating_add(1);
    st.bytes = st.bytes.saturating_add(a.bytes_out);
    if st.history < p.min_history_buckets {
        return;
    }
    if st.episode.active(t) {
        st.episode.extend(t, bucket_us);
        return;
    }
    let (base_r, base_b, by_slot) = st.baseline(bucket_us, p);
    let thr_r = (p.factor * base_r.max(1.0)).max(p.min_requests as f32);
    let thr_b = (p.factor * base_b.max(1.0)).max(p.min_bytes as f32);
    let by_requests = st.requests as f32 >= thr_r;
    let by_bytes = st.bytes as f32 >= thr_b;
    if !(by_requests || by_bytes) {
        return;
    }
    let start = bucket * bucket_us;
    st.episode.open(start, bucket_us);
    st.episode.extend(t, bucket_us);
    let alert = Alert {
        key_canon: who.to_string(),
        masked: who.to_string(),
        value_hmac: None,
        location,
        start,
        detail: serde_json::json!({
            "bucket_start_us": start,
            "bucket_ms": p.bucket_ms,
            "requests": st.requests,
            "bytes_out": st.bytes,
            "baseline_requests": base_r,
            "baseline_bytes": base_b,
            "hour_of_week_baseline": by_slot,
            "factor": p.factor,
            "history_buckets": st.history,
            "reason": if by_requests { "requests" } else { "bytes" },
        }),
    };
    cx.emit(rule, a, alert);
}
