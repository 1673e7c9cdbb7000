//! The reorder buffer's priority queue: a min-queue that is cheap for input that is
//! already (nearly) in order.
//!
//! Logs arrive mostly in time order, and an access later than the tolerance is
//! placed at the watermark, usually in front of everything waiting. So most pushes land
//! at one end of what is queued. Those go to a sorted double-ended run in O(1);
//! only the rest go to a binary heap. The smallest item is the smaller of the
//! run's front and the heap's top, so items come out in exactly the order a
//! single heap would give.

use std::collections::{BinaryHeap, VecDeque};

/// A min-queue of totally ordered items (see the module docs).
#[derive(Debug)]
pub(crate) struct ReorderQueue<T: Ord> {
    /// Sorted ascending.
    run: VecDeque<T>,
    /// Everything that did not fit at an end of `run`.
    heap: BinaryHeap<std::cmp::Reverse<T>>,
}

impl<T: Ord> Default for ReorderQueue<T> {
    fn default() -> Self {
        ReorderQueue {
            run: VecDeque::new(),
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord> ReorderQueue<T> {
    /// Add an item.
    pub(crate) fn push(&mut self, item: T) {
        match (self.run.front(), self.run.back()) {
            (None, _) => self.run.push_back(item),
            (_, Some(back)) if item >= *back => self.run.push_back(item),
            (Some(front), _) if item <= *front => self.run.push_front(item),
            _ => self.heap.push(std::cmp::Reverse(item)),
        }
    }

    /// The smallest item.
    pub(crate) fn peek(&self) -> Option<&T> {
        match (self.run.front(), self.heap.peek()) {
            (Some(a), Some(std::cmp::Reverse(b))) => Some(if a <= b { a } else { b }),
            (a, b) => a.or(b.map(|r| &r.0)),
        }
    }

    /// Remove and return the smallest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let from_run = match (self.run.front(), self.heap.peek()) {
            (Some(a), Some(std::cmp::Reverse(b))) => a <= b,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if from_run {
            self.run.pop_front()
        } else {
            self.heap.pop().map(|r| r.0)
        }
    }

    /// Items queued.
    pub(crate) fn len(&self) -> usize {
        self.run.len() + self.heap.len()
    }

    /// Drop every item and the memory that held them.
    pub(crate) fn release(&mut self) {
        self.run = VecDeque::new();
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
        fn pops_like_a_binary_heap(ops in proptest::collection::vec((any::<bool>(), 0u16..64), 0..400)) {
            let mut q = ReorderQueue::default();
            let mut reference = BinaryHeap::new();
            for (seq, (push, value)) in ops.into_iter().enumerate() {
                // (value, seq): totally ordered, with many equal values.
                if push || reference.is_empty() {
                    q.push((value, seq));
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
            q.push(i);
        }
        for i in (0..10).rev() {
            q.push(i);
        }
        assert!(q.heap.is_empty());
        q.push(15);
        assert_eq!(q.heap.len(), 1);
        let out: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        let mut want: Vec<_> = (0..20).collect();
        want.push(15);
        want.sort();
        assert_eq!(out, want);
    }
}
