//! Distinct counting of keyed 64-bit hashes: an exact set up to a cap, then an
//! Apache DataSketches HLL sketch.
//!
//! The sketch is fed the hash as a 64-bit integer, which the DataSketches libraries
//! hash as 8 little-endian bytes with MurmurHash3 (seed 9001), so a sketch rebuilt by
//! the Java, C++ or Python library from the same hashes (as signed 64-bit integers)
//! has the same registers.

use datasketches::common::NumStdDev;
use datasketches::hll::{HllSketch, HllType, HllUnion};
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Smallest lgK the exposure sketches use (accuracy about 1.6% RSE at 2 sigma ~ 3.3%).
pub const MIN_LG_K: u8 = 12;
/// Largest lgK DataSketches HLL supports.
pub const MAX_LG_K: u8 = 21;
/// Register width of the serialized sketches: HLL_4, the most compact.
pub const HLL_TYPE: HllType = HllType::Hll4;

/// The values are HMAC outputs, already uniformly distributed: hash them as is.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
}

/// A set of keyed hashes with the identity hasher.
pub(crate) type HashSet64 = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// Clamp a configured lgK into the range the exposure sketches use.
pub fn clamp_lg_k(lg_k: u8) -> u8 {
    lg_k.clamp(MIN_LG_K, MAX_LG_K)
}

/// An empty sketch; `lg_k` is clamped so construction cannot fail.
pub fn new_sketch(lg_k: u8) -> HllSketch {
    match HllSketch::new(clamp_lg_k(lg_k), HLL_TYPE) {
        Ok(s) => s,
        Err(_) => unreachable!("lg_k is clamped to the supported range"),
    }
}

/// An empty union; `lg_k` is clamped so construction cannot fail.
pub fn new_union(lg_k: u8) -> HllUnion {
    match HllUnion::new(clamp_lg_k(lg_k)) {
        Ok(u) => u,
        Err(_) => unreachable!("lg_k is clamped to the supported range"),
    }
}

/// Feed one keyed hash to a sketch, as the other DataSketches libraries would.
#[inline]
pub fn sketch_update(sketch: &mut HllSketch, hash: u64) {
    sketch.update(hash as i64);
}

/// Distinct values of one row: exact while small, a sketch beyond the cap.
#[derive(Debug, Clone)]
pub(crate) enum Distinct {
    /// Every hash, exactly.
    Exact(HashSet64),
    /// An HLL sketch of every hash.
    Sketch(HllSketch),
}

impl Default for Distinct {
    fn default() -> Self {
        Distinct::Exact(HashSet64::default())
    }
}

impl Distinct {
    /// Add a hash; switch to a sketch once the set holds more than `cap` hashes.
    pub(crate) fn insert(&mut self, hash: u64, cap: usize, lg_k: u8) {
        match self {
            Distinct::Exact(set) => {
                set.insert(hash);
                if set.len() > cap {
                    self.promote(lg_k);
                }
            }
            Distinct::Sketch(s) => sketch_update(s, hash),
        }
    }

    fn promote(&mut self, lg_k: u8) {
        if let Distinct::Exact(set) = self {
            let mut s = new_sketch(lg_k);
            for h in set.iter() {
                sketch_update(&mut s, *h);
            }
            *self = Distinct::Sketch(s);
        }
    }

    /// Merge another row's values: exact with exact stays exact up to the cap.
    pub(crate) fn merge(&mut self, other: Distinct, cap: usize, lg_k: u8) {
        match other {
            Distinct::Exact(set) => {
                for h in set {
                    self.insert(h, cap, lg_k);
                }
            }
            Distinct::Sketch(theirs) => {
                self.promote(lg_k);
                if let Distinct::Sketch(mine) = self {
                    let mut u = new_union(lg_k);
                    u.update(mine);
                    u.update(&theirs);
                    *mine = u.to_sketch(HLL_TYPE);
                }
            }
        }
    }

    /// Whether every hash is held exactly.
    pub(crate) fn is_exact(&self) -> bool {
        matches!(self, Distinct::Exact(_))
    }

    /// The count: exact, or the rounded sketch estimate.
    pub(crate) fn count(&self) -> u64 {
        match self {
            Distinct::Exact(set) => set.len() as u64,
            Distinct::Sketch(s) => s.estimate().round().max(0.0) as u64,
        }
    }

    /// The hashes, sorted, while exact.
    pub(crate) fn sorted_hashes(&self) -> Option<Vec<u64>> {
        match self {
            Distinct::Exact(set) => {
                let mut v: Vec<u64> = set.iter().copied().collect();
                v.sort_unstable();
                Some(v)
            }
            Distinct::Sketch(_) => None,
        }
    }

    /// The sketch in the DataSketches binary format (built from the set while exact).
    pub(crate) fn sketch_bytes(&self, lg_k: u8) -> Vec<u8> {
        match self {
            Distinct::Exact(set) => {
                // Sorted, so the bytes do not depend on the order values arrived in
                // (parallel blocks merge in any order).
                let mut hashes: Vec<u64> = set.iter().copied().collect();
                hashes.sort_unstable();
                let mut s = new_sketch(lg_k);
                for h in hashes {
                    sketch_update(&mut s, h);
                }
                s.serialize()
            }
            Distinct::Sketch(s) => s.serialize(),
        }
    }
}

/// A distinct count with its confidence interval, as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// Best value: exact count, or the rounded sketch estimate.
    pub value: u64,
    /// True when `value` is an exact count.
    pub exact: bool,
    /// Lower bound (2 standard deviations; equals `value` when exact).
    pub lower: u64,
    /// Upper bound (2 standard deviations; equals `value` when exact).
    pub upper: u64,
}

impl Estimate {
    /// An exact count.
    pub fn exact(n: u64) -> Estimate {
        Estimate {
            value: n,
            exact: true,
            lower: n,
            upper: n,
        }
    }

    /// The estimate and 2-sigma bounds of a sketch, never below `floor` (a count
    /// known exactly to be included).
    pub fn from_sketch(s: &HllSketch, floor: u64) -> Estimate {
        let value = (s.estimate().round().max(0.0) as u64).max(floor);
        let lower = (s.lower_bound(NumStdDev::Two).floor().max(0.0) as u64).max(floor);
        let upper = (s.upper_bound(NumStdDev::Two).ceil().max(0.0) as u64).max(value);
        Estimate {
            value,
            exact: false,
            lower: lower.min(value),
            upper,
        }
    }
}

/// Union of many rows' distinct values, for the report: exact rows stay exact
/// with no cap; any sketched row turns the result into an estimate.
#[derive(Debug)]
pub struct UnionCounter {
    exact: HashSet64,
    union: Option<HllUnion>,
    lg_k: u8,
}

impl UnionCounter {
    /// An empty counter.
    pub fn new(lg_k: u8) -> UnionCounter {
        UnionCounter {
            exact: HashSet64::default(),
            union: None,
            lg_k,
        }
    }

    /// Add exactly known hashes.
    pub fn add_hashes(&mut self, hashes: &[u64]) {
        self.exact.extend(hashes.iter().copied());
    }

    /// Add a sketch of a row that is no longer exact.
    pub fn add_sketch(&mut self, sketch: &HllSketch) {
        let lg_k = self.lg_k;
        self.union
            .get_or_insert_with(|| new_union(lg_k))
            .update(sketch);
    }

    /// The exactly known hashes (a subset of everything when sketches were added).
    pub fn exact_hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.exact.iter().copied()
    }

    /// Whether every added value is known exactly.
    pub fn is_exact(&self) -> bool {
        self.union.is_none()
    }

    /// The distinct count with bounds.
    pub fn estimate(&self) -> Estimate {
        match &self.union {
            None => Estimate::exact(self.exact.len() as u64),
            Some(u) => {
                let mut u = u.clone();
                let mut s = new_sketch(self.lg_k);
                for h in &self.exact {
                    sketch_update(&mut s, *h);
                }
                u.update(&s);
                Estimate::from_sketch(&u.to_sketch(HLL_TYPE), self.exact.len() as u64)
            }
        }
    }
}
