//! Block results in (input, block) order: finished blocks arrive in any order from
//! the workers; what depends on order waits here until the blocks before it are in.
//! Per input, findings and dead letters are gathered in block order and written
//! out in parts whenever they pass a row budget (few files of reader-sized row
//! groups instead of one small file per block; memory stays bounded; the part
//! names and contents are the same on every run), exposure rows are merged the
//! same way, and the anomaly detector is fed accesses in the same order.

use super::Error;
use crate::anomaly::{self, Access};
use crate::exposure::Accumulator;
use crate::finding::Finding;
use crate::sink::parquet::{self, PartWriter, Written};
use arrow::array::RecordBatch;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// An emptied access vector kept for a worker to fill again (a block's vector
/// grows to tens of thousands of accesses; reusing it saves the regrowth). One
/// at most: each holds megabytes.
pub(crate) type AccessPool = std::sync::Mutex<Vec<Vec<Access>>>;

/// Exposure rows held per input before they are written out as a part.
pub(crate) const EXPOSURE_ROWS_PER_PART: usize = 50_000;

/// Findings (and, separately, dead letters) held per input before they are
/// written out as a part: one row group of the size readers like.
pub(crate) const FINDING_ROWS_PER_PART: usize = 64 * 1024;

/// What of a finished block must be applied in order.
pub(crate) struct Ordered {
    pub(crate) slug: Arc<str>,
    pub(crate) exposure: Option<Accumulator>,
    pub(crate) accesses: Option<Vec<Access>>,
    /// The block's findings, in record order.
    pub(crate) findings: Option<RecordBatch>,
    /// The block's dead letters, in record order.
    pub(crate) dead_letters: Option<RecordBatch>,
}

/// The part being written of one output folder (`findings`, `dead_letter`):
/// `DIR/<folder>/<slug>/part-NNNN.parquet`. Batches are encoded as they come
/// (a part's rows are never all held as columns at once).
struct Parts {
    folder: &'static str,
    open: Option<PartWriter>,
    written: u32,
}

impl Parts {
    fn new(folder: &'static str) -> Self {
        Parts {
            folder,
            open: None,
            written: 0,
        }
    }

    /// Append a block's batch to the open part (opening one if needed); a part
    /// is finished when it holds `budget` rows, so every part but an input's
    /// last holds exactly that many (a batch that crosses the line is split).
    fn add(
        &mut self,
        batch: Option<RecordBatch>,
        budget: usize,
        out_dir: &Path,
        slug: &str,
        written: &mut Vec<Written>,
    ) -> Result<(), Error> {
        let Some(mut batch) = batch.filter(|b| b.num_rows() > 0) else {
            return Ok(());
        };
        let budget = budget as u64;
        loop {
            let part = match &mut self.open {
                Some(part) => part,
                None => {
                    let rel = format!("{}/{slug}/part-{:04}.parquet", self.folder, self.written);
                    self.open.insert(PartWriter::create(out_dir, &rel, &batch)?)
                }
            };
            // A part below its budget (at least 1, see Collector::new) always has
            // room: a full one is finished.
            let room = usize::try_from(budget.saturating_sub(part.rows())).unwrap_or(usize::MAX);
            if batch.num_rows() < room {
                return part.write(&batch).map_err(Error::from);
            }
            part.write(&batch.slice(0, room))?;
            self.finish(written)?;
            if batch.num_rows() == room {
                return Ok(());
            }
            batch = batch.slice(room, batch.num_rows() - room);
        }
    }

    /// Finish the open part, if any.
    fn finish(&mut self, written: &mut Vec<Written>) -> Result<(), Error> {
        if let Some(part) = self.open.take() {
            written.push(part.finish()?);
            self.written += 1;
        }
        Ok(())
    }
}

struct InputState {
    next: u64,
    pending: BTreeMap<u64, Ordered>,
    blocks: Option<u64>,
    slug: Option<Arc<str>>,
    exposure: Option<Accumulator>,
    parts: u32,
    findings: Parts,
    dead_letters: Parts,
}

impl Default for InputState {
    fn default() -> Self {
        InputState {
            next: 0,
            pending: BTreeMap::new(),
            blocks: None,
            slug: None,
            exposure: None,
            parts: 0,
            findings: Parts::new("findings"),
            dead_letters: Parts::new("dead_letter"),
        }
    }
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
    finding_rows_per_part: usize,
    /// Files written (findings, dead letters, exposure).
    pub(crate) written: Vec<Written>,
    pool: &'a AccessPool,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(
        anomaly: Option<&'a mut anomaly::Detector>,
        out_dir: &'a Path,
        key_id: String,
        rows_per_part: usize,
        finding_rows_per_part: usize,
        pool: &'a AccessPool,
    ) -> Self {
        Collector {
            inputs: HashMap::new(),
            anomaly,
            anomaly_findings: Vec::new(),
            out_dir,
            key_id,
            rows_per_part: rows_per_part.max(1),
            finding_rows_per_part: finding_rows_per_part.max(1),
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
            let slug = st.slug.get_or_insert(b.slug).clone();
            let budget = self.finding_rows_per_part;
            let w = &mut self.written;
            st.findings
                .add(b.findings, budget, self.out_dir, &slug, w)?;
            st.dead_letters
                .add(b.dead_letters, budget, self.out_dir, &slug, w)?;
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
            st.findings.finish(&mut self.written)?;
            st.dead_letters.finish(&mut self.written)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use arrow::array::{Array, UInt64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    fn lines(from: u64, n: u64) -> Option<RecordBatch> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "line",
            DataType::UInt64,
            false,
        )]));
        let col = UInt64Array::from_iter_values(from..from + n);
        RecordBatch::try_new(schema, vec![Arc::new(col)]).ok()
    }

    fn block(findings: Option<RecordBatch>) -> Ordered {
        Ordered {
            slug: Arc::from("in-0000"),
            exposure: None,
            accesses: None,
            findings,
            dead_letters: lines(1000, 1),
        }
    }

    fn read(path: &Path) -> Vec<u64> {
        let file = std::fs::File::open(path).expect("part exists");
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.build())
            .expect("part is Parquet");
        let mut out = Vec::new();
        for b in reader {
            let b = b.expect("batch reads");
            let col = b
                .column(0)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .expect("u64");
            out.extend((0..col.len()).map(|i| col.value(i)));
        }
        out
    }

    #[test]
    fn a_failed_run_leaves_no_partial_part() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = AccessPool::default();
        let mut c = Collector::new(None, dir.path(), "k".into(), 10, 100, &pool);
        c.block(0, 0, block(lines(0, 3))).expect("block 0");
        assert!(
            dir.path()
                .join("findings/in-0000/part-0000.parquet.tmp")
                .exists(),
            "the open part is being written"
        );
        // The run stops before the input ends (an error elsewhere): the collector goes.
        drop(c);
        for folder in ["findings", "dead_letter"] {
            let left: Vec<_> = std::fs::read_dir(dir.path().join(folder).join("in-0000"))
                .expect("dir")
                .collect();
            assert!(left.is_empty(), "{folder}: {left:?}");
        }
    }

    #[test]
    fn findings_are_written_in_block_order_in_parts_of_the_budget() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = AccessPool::default();
        let mut c = Collector::new(None, dir.path(), "k".into(), 10, 5, &pool);
        // Blocks arrive out of order; block 1 found nothing.
        c.block(0, 2, block(lines(20, 4))).expect("block 2");
        c.block(0, 0, block(lines(0, 3))).expect("block 0");
        assert!(c.written.is_empty(), "3 rows are under the budget of 5");
        c.block(0, 1, block(None)).expect("block 1");
        // Blocks 0..=2 are in: 7 findings rows fill one part of 5 (block 2's rows
        // are split across parts); 3 dead letters do not.
        assert_eq!(c.written.len(), 1);
        c.block(0, 3, block(lines(30, 2))).expect("block 3");
        c.input_done(0, 4).expect("input done");
        let paths: Vec<&str> = c.written.iter().map(|w| w.rel_path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "findings/in-0000/part-0000.parquet",
                "findings/in-0000/part-0001.parquet",
                "dead_letter/in-0000/part-0000.parquet",
            ]
        );
        let rows: Vec<u64> = c.written.iter().map(|w| w.rows).collect();
        assert_eq!(rows, [5, 4, 4]);
        let at = |i: usize| dir.path().join(&c.written[i].rel_path);
        assert_eq!(read(&at(0)), [0, 1, 2, 20, 21]);
        assert_eq!(read(&at(1)), [22, 23, 30, 31]);
        assert_eq!(read(&at(2)), [1000, 1000, 1000, 1000]);
        // Nothing half-written is left behind.
        let mut names = Vec::new();
        for folder in ["findings", "dead_letter"] {
            for e in std::fs::read_dir(dir.path().join(folder).join("in-0000")).expect("dir") {
                names.push(e.expect("entry").file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        assert_eq!(
            names,
            [
                "part-0000.parquet",
                "part-0000.parquet",
                "part-0001.parquet"
            ]
        );
    }
}
