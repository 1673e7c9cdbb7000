//! Bounded keyed state: every rule's per-key state lives in one map of at most
//! `max_keys` entries, kept as two generations (a cheap approximation of
//! least-recently-used eviction). New and touched keys go to the young
//! generation; when it holds half the cap, the old generation is dropped (its
//! keys counted as evictions) and the young one becomes old. Lookups are one or
//! two hash probes; memory never exceeds the cap whatever the input.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::LazyLock;

/// Hasher for keys that already are hashes.
#[derive(Default)]
pub(crate) struct PassHasher(u64);

impl Hasher for PassHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by 64-bit hashes.
pub(crate) type HashKeyed<V> = HashMap<u64, V, BuildHasherDefault<PassHasher>>;

/// Process-wide random seed for in-memory keys: state keys are hashes under a
/// key nobody outside the process knows, never raw values (aHash: keyed like
/// SipHash against flooding, several times faster on short strings).
static SEED: LazyLock<ahash::RandomState> = LazyLock::new(ahash::RandomState::new);

/// In-memory hash of a value (principal, route, object id ...).
pub(crate) fn mem_hash<T: Hash + ?Sized>(value: &T) -> u64 {
    SEED.hash_one(value)
}

/// The state key of `key` under rule number `rule`.
pub(crate) fn rule_key(rule: usize, key: u64) -> u64 {
    let salt = (rule as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (key ^ salt)
        .rotate_left(17)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ salt
}

/// A two-generation map capped at `cap` entries.
#[derive(Debug)]
pub(crate) struct Bounded<V> {
    young: HashKeyed<V>,
    old: HashKeyed<V>,
    half: usize,
    evictions: u64,
}

impl<V> Bounded<V> {
    /// An empty map holding at most `cap` entries (at least 2).
    pub(crate) fn new(cap: usize) -> Self {
        Bounded {
            young: HashKeyed::default(),
            old: HashKeyed::default(),
            half: (cap / 2).max(1),
            evictions: 0,
        }
    }

    /// Keys dropped to stay within the cap.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Keys tracked now.
    pub(crate) fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Hash-table slots allocated (for memory accounting).
    pub(crate) fn capacity(&self) -> usize {
        self.young.capacity() + self.old.capacity()
    }

    fn rotate_if_full(&mut self) {
        if self.young.len() >= self.half {
            std::mem::swap(&mut self.young, &mut self.old);
            self.evictions += self.young.len() as u64;
            self.young.clear();
        }
    }

    /// The state of `key`, moved to the young generation, if tracked.
    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        if !self.young.contains_key(&key) {
            let v = self.old.remove(&key)?;
            self.rotate_if_full();
            self.young.insert(key, v);
        }
        self.young.get_mut(&key)
    }

    /// The state of `key`, created with `make` when it is not tracked.
    pub(crate) fn get_or_insert_with(&mut self, key: u64, make: impl FnOnce() -> V) -> &mut V {
        if !self.young.contains_key(&key) {
            let v = match self.old.remove(&key) {
                Some(v) => v,
                None => make(),
            };
            self.rotate_if_full();
            self.young.insert(key, v);
        }
        match self.young.get_mut(&key) {
            Some(v) => v,
            None => unreachable!("inserted above"),
        }
    }

    /// Every tracked value (for memory accounting).
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.young.values().chain(self.old.values())
    }
}

/// An alert episode of one key: open from the firing event until `until`,
/// extended by every later event that would have fired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Episode {
    open: bool,
    /// When the episode fired.
    pub start: i64,
    until: i64,
}

impl Episode {
    /// Whether an episode is open at `t`.
    pub(crate) fn active(&self, t: i64) -> bool {
        self.open && t <= self.until
    }

    /// Keep an open episode alive for `span_us` after `t`.
    pub(crate) fn extend(&mut self, t: i64, span_us: i64) {
        if self.active(t) {
            self.until = self.until.max(t.saturating_add(span_us));
        }
    }

    /// Open an episode at `t` lasting `span_us` unless extended.
    pub(crate) fn open(&mut self, t: i64, span_us: i64) {
        self.open = true;
        self.start = t;
        self.until = t.saturating_add(span_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_holds_and_evictions_are_counted() {
        let mut m: Bounded<u32> = Bounded::new(10);
        for k in 0..100u64 {
            *m.get_or_insert_with(k, || 0) += 1;
            assert!(m.len() <= 10, "len {} at key {k}", m.len());
        }
        assert_eq!(m.evictions() + m.len() as u64, 100);
    }

    #[test]
    fn touched_keys_survive_rotation() {
        let mut m: Bounded<u32> = Bounded::new(4);
        m.get_or_insert_with(1, || 1);
        for k in 10..30u64 {
            m.get_or_insert_with(k, || 0);
            assert!(m.get_mut(1).is_some(), "key 1 evicted at {k}");
        }
    }

    #[test]
    fn episode_opens_extends_and_closes() {
        let mut e = Episode::default();
        assert!(!e.active(0));
        e.open(100, 50);
        assert!(e.active(150));
        e.extend(140, 50);
        assert!(e.active(190));
        assert!(!e.active(191));
    }
}
