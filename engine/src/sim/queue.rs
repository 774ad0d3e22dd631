//! The pending-event queue: a min-heap on (time, sequence number).
//!
//! The sequence number is the order in which events were scheduled, so events at the same
//! time come out in the order they were put in, and a run is a pure function of its inputs.
//! Time and sequence are packed into one `u128` so each comparison is a single compare.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Entry<T> {
    key: u128,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// Events ordered by (time, scheduling order).
pub struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    next_seq: u64,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

impl<T> EventQueue<T> {
    /// An empty queue with room for `n` events.
    pub fn with_capacity(n: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(n),
            next_seq: 0,
        }
    }

    /// Schedule `item` at `time` (nanoseconds).
    #[inline]
    pub fn push(&mut self, time: u64, item: T) {
        let key = ((time as u128) << 64) | self.next_seq as u128;
        self.next_seq += 1;
        self.heap.push(Entry { key, item });
    }

    /// Remove and return the earliest event with its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        self.heap.pop().map(|e| ((e.key >> 64) as u64, e.item))
    }

    /// Time of the earliest event, if any.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|e| (e.key >> 64) as u64)
    }

    /// Keep only the events for which `keep` is true (the order of the rest is unchanged,
    /// since it is given by their keys).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        self.heap.retain(|e| keep(&e.item));
    }

    /// Number of pending events.
    #[inline]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut q = EventQueue::default();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        q.push(u64::MAX, "z");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![(1, "a"), (1, "b"), (5, "c"), (5, "d"), (u64::MAX, "z")]
        );
    }
}
