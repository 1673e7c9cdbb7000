//! The reorder buffer's priority queue: a min-queue that is cheap for input that is
//! already (nearly) in order, or that interleaves two such streams.
//!
//! Logs arrive mostly in time order, and an access later than the tolerance is
//! placed at the watermark. So most pushes land at one end of one of two ordered
//! streams: the accesses that came in time, and the late ones pinned to the
//! watermark (which among themselves still come in arrival order). The caller
//! names the stream; each goes to a sorted double-ended run in O(1), and only an
//! item that fits at neither end of its stream's run goes to a binary heap. The
//! smallest item is the smallest of the runs' fronts and the heap's top, so items
//! come out in exactly the order a single heap would give.

use std::collections::{BinaryHeap, VecDeque};

/// Streams (sorted runs) a queue keeps: see [`Stream`].
const RUNS: usize = 2;

/// Which ordered stream an item most likely continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Items that arrived in time.
    InTime = 0,
    /// Late items placed at the watermark.
    Pinned = 1,
}

/// A min-queue of totally ordered items (see the module docs).
#[derive(Debug)]
pub(crate) struct ReorderQueue<T: Ord> {
    /// One sorted (ascending) run per [`Stream`].
    runs: [VecDeque<T>; RUNS],
    /// Everything that did not fit at an end of its stream's run.
    heap: BinaryHeap<std::cmp::Reverse<T>>,
}

impl<T: Ord> Default for ReorderQueue<T> {
    fn default() -> Self {
        ReorderQueue {
            runs: Default::default(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord> ReorderQueue<T> {
    /// Add an item that most likely continues `stream`.
    pub(crate) fn push(&mut self, item: T, stream: Stream) {
        let run = &mut self.runs[stream as usize];
        match (run.front(), run.back()) {
            (None, _) => run.push_back(item),
            (_, Some(back)) if item >= *back => run.push_back(item),
            (Some(front), _) if item <= *front => run.push_front(item),
            _ => self.heap.push(std::cmp::Reverse(item)),
        }
    }

    /// Where the smallest item is (`Some(i)`: the front of run `i`; `None`: the
    /// heap's top), and the item; `None` when the queue is empty.
    fn least(&self) -> Option<(Option<usize>, &T)> {
        let mut best = self.heap.peek().map(|r| (None, &r.0));
        for (i, run) in self.runs.iter().enumerate() {
            if let Some(f) = run.front()
                && best.is_none_or(|(_, b)| f <= b)
            {
                best = Some((Some(i), f));
            }
        }
        best
    }

    /// The smallest item.
    pub(crate) fn peek(&self) -> Option<&T> {
        self.least().map(|(_, item)| item)
    }

    /// Remove and return the smallest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        match self.least()?.0 {
            Some(i) => self.runs[i].pop_front(),
            None => self.heap.pop().map(|r| r.0),
        }
    }

    /// Items queued.
    pub(crate) fn len(&self) -> usize {
        self.runs.iter().map(VecDeque::len).sum::<usize>() + self.heap.len()
    }

    /// Drop every item and the memory that held them.
    pub(crate) fn release(&mut self) {
        self.runs = Default::default();
        self.heap = BinaryHeap::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;

    proptest! {
        /// Any mix of pushes and pops gives exactly the items, in exactly the
        /// order, of a plain binary heap.
        #[test]
        fn pops_like_a_binary_heap(ops in proptest::collection::vec((any::<bool>(), 0u16..64, any::<bool>()), 0..400)) {
            let mut q = ReorderQueue::default();
            let mut reference = BinaryHeap::new();
            for (seq, (push, value, pinned)) in ops.into_iter().enumerate() {
                // (value, seq): totally ordered, with many equal values.
                if push || reference.is_empty() {
                    q.push((value, seq), if pinned { Stream::Pinned } else { Stream::InTime });
                    reference.push(Reverse((value, seq)));
                } else {
                    prop_assert_eq!(q.peek().copied(), reference.peek().map(|r| r.0));
                    prop_assert_eq!(q.pop(), reference.pop().map(|r| r.0));
                }
                prop_assert_eq!(q.len(), reference.len());
            }
            while let Some(Reverse(want)) = reference.pop() {
                prop_assert_eq!(q.pop(), Some(want));
            }
            prop_assert_eq!(q.pop(), None);
        }
    }

    #[test]
    fn in_order_and_late_items_stay_out_of_the_heap() {
        let mut q = ReorderQueue::default();
        for i in 10..20 {
            q.push(i, Stream::InTime);
        }
        for i in (0..10).rev() {
            q.push(i, Stream::InTime);
        }
        assert!(q.heap.is_empty());
        q.push(15, Stream::InTime);
        assert_eq!(q.heap.len(), 1);
        let out: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        let mut want: Vec<_> = (0..20).collect();
        want.push(15);
        want.sort();
        assert_eq!(out, want);
    }

    /// An in-order stream interleaved with late items pinned at one time (the
    /// watermark), still in arrival order among themselves: neither needs the heap,
    /// with or without pops in between.
    #[test]
    fn interleaved_in_order_and_pinned_streams_stay_out_of_the_heap() {
        let mut q = ReorderQueue::default();
        let mut reference = BinaryHeap::new();
        for seq in 0..1000u32 {
            let (item, stream) = if seq % 3 == 0 {
                ((50, seq), Stream::Pinned)
            } else {
                ((100 + seq, seq), Stream::InTime)
            };
            q.push(item, stream);
            reference.push(Reverse(item));
            // Pops while items still arrive: each must be the smallest waiting.
            if q.len() > 64 {
                assert_eq!(q.pop(), reference.pop().map(|r| r.0));
            }
        }
        assert!(q.heap.is_empty());
        while let Some(Reverse(want)) = reference.pop() {
            assert_eq!(q.pop(), Some(want));
        }
        assert_eq!((q.pop(), q.len()), (None, 0));
    }
}
