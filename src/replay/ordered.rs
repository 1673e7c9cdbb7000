//! Block results in (input, block) order: finished blocks arrive in any order from
//! the workers; what depends on order waits here until the blocks before it are in.
//! Per input, exposure rows are merged in block order and written out in parts
//! whenever they pass a row budget (so memory stays bounded however many scopes
//! a log has, and the part names are the same on every run); the anomaly
//! detector is fed accesses in the same order.

use super::Error;
use crate::anomaly::{self, Access};
use crate::exposure::Accumulator;
use crate::finding::Finding;
use crate::sink::parquet::{self, Written};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// An emptied access vector kept for a worker to fill again (a block's vector
/// grows to tens of thousands of accesses; reusing it saves the regrowth). One
/// at most: each holds megabytes.
pub(crate) type AccessPool = std::sync::Mutex<Vec<Vec<Access>>>;

/// Exposure rows held per input before they are written out as a part.
pub(crate) const EXPOSURE_ROWS_PER_PART: usize = 50_000;

/// What of a finished block must be applied in order.
pub(crate) struct Ordered {
    pub(crate) slug: Arc<str>,
    pub(crate) exposure: Option<Accumulator>,
    pub(crate) accesses: Option<Vec<Access>>,
}

#[derive(Default)]
struct InputState {
    next: u64,
    pending: BTreeMap<u64, Ordered>,
    blocks: Option<u64>,
    slug: Option<Arc<str>>,
    exposure: Option<Accumulator>,
    parts: u32,
}

/// Applies block results in order; see the module docs.
pub(crate) struct Collector<'a> {
    inputs: HashMap<usize, InputState>,
    pub(crate) anomaly: Option<&'a mut anomaly::Detector>,
    /// Anomaly findings so far.
    pub(crate) anomaly_findings: Vec<Finding>,
    out_dir: &'a Path,
    key_id: String,
    rows_per_part: usize,
    /// Exposure files written.
    pub(crate) written: Vec<Written>,
    pool: &'a AccessPool,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(
        anomaly: Option<&'a mut anomaly::Detector>,
        out_dir: &'a Path,
        key_id: String,
        rows_per_part: usize,
        pool: &'a AccessPool,
    ) -> Self {
        Collector {
            inputs: HashMap::new(),
            anomaly,
            anomaly_findings: Vec::new(),
            out_dir,
            key_id,
            rows_per_part: rows_per_part.max(1),
            written: Vec::new(),
            pool,
        }
    }

    /// A finished block of `input`.
    pub(crate) fn block(&mut self, input: usize, index: u64, b: Ordered) -> Result<(), Error> {
        self.inputs
            .entry(input)
            .or_default()
            .pending
            .insert(index, b);
        self.drain(input)
    }

    /// `input` was read to its end in `blocks` blocks.
    pub(crate) fn input_done(&mut self, input: usize, blocks: u64) -> Result<(), Error> {
        self.inputs.entry(input).or_default().blocks = Some(blocks);
        self.drain(input)
    }

    fn drain(&mut self, input: usize) -> Result<(), Error> {
        let Some(st) = self.inputs.get_mut(&input) else {
            return Ok(());
        };
        while let Some(b) = st.pending.remove(&st.next) {
            st.next += 1;
            st.slug.get_or_insert(b.slug);
            if let (Some(det), Some(mut accesses)) = (self.anomaly.as_deref_mut(), b.accesses) {
                det.observe_all(&mut accesses, &mut self.anomaly_findings);
                if let Ok(mut pool) = self.pool.lock()
                    && pool.is_empty()
                {
                    pool.push(accesses);
                }
            }
            if let Some(acc) = b.exposure.filter(|a| !a.is_empty()) {
                match st.exposure.as_mut() {
                    Some(all) => all.merge(acc),
                    None => st.exposure = Some(acc),
                }
            }
            if st
                .exposure
                .as_ref()
                .is_some_and(|a| a.len() >= self.rows_per_part)
            {
                spill(st, self.out_dir, &self.key_id, &mut self.written)?;
            }
        }
        if st.blocks == Some(st.next) {
            spill(st, self.out_dir, &self.key_id, &mut self.written)?;
            self.inputs.remove(&input);
        }
        Ok(())
    }
}

fn spill(
    st: &mut InputState,
    out_dir: &Path,
    key_id: &str,
    written: &mut Vec<Written>,
) -> Result<(), Error> {
    let (Some(acc), Some(slug)) = (st.exposure.take(), st.slug.as_ref()) else {
        return Ok(());
    };
    if acc.is_empty() {
        return Ok(());
    }
    let batch = acc.to_record_batch(key_id)?;
    let rel = format!("exposure/{slug}/part-{:04}.parquet", st.parts);
    st.parts += 1;
    written.push(parquet::write(out_dir, &rel, &[batch])?);
    Ok(())
}
