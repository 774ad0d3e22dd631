//! The pending-event queue: (time, sequence) order, as a monotone radix heap over a slab.
//!
//! Events come out by time, and events at the same time in the order they were put in, so a
//! run is a pure function of its inputs. The queue is *monotone*: nothing is ever scheduled
//! before the last event taken out (simulated time does not go back), which is what lets a
//! radix heap replace a comparison heap.
//!
//! ```text
//!   slab:   [ event | event | free | event | ... ]   events by u32 slot; freed slots reused
//!   now:    entries at time == last, FIFO            ◀── pop takes the front
//!   buckets (p, d): entries whose highest 8-bit digit differing from `last` is digit p,
//!           and whose digit p is d                   ◀── push appends to bucket(t, last)
//!   now used up ─▶ lowest non-empty (p, d): last = its smallest time; its entries spread
//!                  into lower levels (those at `last` into `now`); a level-0 bucket holds
//!                  one time only, so it simply becomes `now`
//! ```
//!
//! An entry is 16 bytes (time and slot) whatever the event's size, and moves down at least one
//! level each time it is spread, so at most 7 times and in practice once or twice: with 8-bit
//! digits an event less than 65 µs ahead is spread at most once before it reaches the front.
//!
//! Why the sequence order holds without storing a sequence number: every bucket is in
//! scheduling order. Pushes append (they come after everything queued), and a bucket is spread
//! only when every bucket below it is empty, so each receiving bucket gets a subsequence of an
//! ordered bucket. `now` holds one time only, so its front is the next (time, sequence) event.

/// An entry: the event's time, and the slab slot holding the event or (with [`INLINE`] set)
/// a caller's 31-bit token that needs no slab slot.
#[derive(Clone, Copy)]
struct Entry {
    time: u64,
    slot: u32,
}

/// Marks an entry whose `slot` is an inline token rather than a slab slot.
const INLINE: u32 = 1 << 31;

/// What [`EventQueue::pop`] hands back.
#[derive(Debug, PartialEq)]
pub enum Popped<T> {
    /// An event pushed with [`EventQueue::push`].
    Item(T),
    /// A token pushed with [`EventQueue::push_inline`].
    Inline(u32),
}

/// Bits of time per level: a bucket is (level, digit), 256 digits per level.
const DIGIT_BITS: u32 = 8;
const DIGITS: usize = 1 << DIGIT_BITS;
/// Levels needed to cover 64 bits of time.
const LEVELS: usize = 64_usize.div_ceil(DIGIT_BITS as usize);
/// Buckets in all: bucket (p, d) is number `p * DIGITS + d`, so bucket numbers are in time
/// order across levels.
const BUCKETS: usize = LEVELS * DIGITS;
/// Words of the occupancy bitmap.
const WORDS: usize = BUCKETS / 64;

/// Events ordered by (time, scheduling order).
pub struct EventQueue<T> {
    /// Entries at time `last`, in scheduling order; those before `head` are already taken.
    now: Vec<Entry>,
    head: usize,
    /// Bucket `p * DIGITS + d`: entries whose highest 8-bit digit differing from `last` is
    /// digit `p`, where their digit is `d`. A lower bucket number means earlier, whatever the
    /// entries inside.
    buckets: Box<[Vec<Entry>; BUCKETS]>,
    /// Bit b % 64 of `occupied[b / 64]` is set when bucket `b` is non-empty.
    occupied: [u64; WORDS],
    /// Bit w set when `occupied[w]` is non-zero: the first non-empty bucket is two
    /// trailing-zero counts away.
    summary: u32,
    /// The time of the last event taken out.
    last: u64,
    slab: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
    /// Emptied buckets' large vectors by level, handed to buckets of the same level that
    /// become non-empty: large capacity kept in every bucket ever used could add up to 2048
    /// times the largest bucket, allocating a fresh vector each time would allocate in steady
    /// state, and one pool for all levels would let the large vectors of far-future buckets
    /// end up in every small near one. Small vectors stay in their bucket
    /// ([`KEEP_CAPACITY`]).
    pool: [Vec<Vec<Entry>>; LEVELS],
}

/// The bits of [`EventQueue::summary`] for the level-0 buckets.
const LEVEL0_WORDS: u32 = (1 << (DIGITS / 64)) - 1;

/// An emptied bucket keeps its vector if it has room for at most this many entries (256
/// bytes; 2048 buckets: at most half a megabyte in all); larger ones go back to the pool.
const KEEP_CAPACITY: usize = 16;

/// How many events ahead of the one taken out the queue asks the CPU to fetch: with many
/// pending events the slab is larger than the caches, and one miss per event would otherwise
/// be most of an event's cost.
const PREFETCH_AHEAD: usize = 8;

/// Ask the CPU to bring `slab[slot]` into the cache (a hint: it changes no value).
#[inline(always)]
fn prefetch<T>(slab: &[T], slot: u32) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = slab.get(slot as usize) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint that never faults and reads or writes nothing the
        // program can observe; the pointer comes from a live reference anyway.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slab, slot);
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue::with_capacity(0)
    }
}

/// The level and bucket number of `time` relative to `last`; `None` when they are equal.
#[inline]
fn bucket_of(time: u64, last: u64) -> Option<(usize, usize)> {
    let x = time ^ last;
    if x == 0 {
        return None;
    }
    let level = ((63 - x.leading_zeros()) / DIGIT_BITS) as usize;
    let digit = ((time >> (level as u32 * DIGIT_BITS)) as usize) & (DIGITS - 1);
    Some((level, level * DIGITS + digit))
}

impl<T> EventQueue<T> {
    /// An empty queue with room for `n` events.
    pub fn with_capacity(n: usize) -> Self {
        EventQueue {
            now: Vec::new(),
            head: 0,
            buckets: Box::new(std::array::from_fn(|_| Vec::new())),
            occupied: [0; WORDS],
            summary: 0,
            last: 0,
            slab: Vec::with_capacity(n),
            free: Vec::with_capacity(n),
            len: 0,
            pool: std::array::from_fn(|_| Vec::new()),
        }
    }

    /// Schedule `item` at `time` (nanoseconds), which must not be before the last event taken
    /// out.
    #[inline]
    pub fn push(&mut self, time: u64, item: T) {
        assert!(
            time >= self.last,
            "event scheduled at {time} ns, before the current time {} ns",
            self.last
        );
        let slot = match self.free.pop() {
            Some(s) => {
                self.slab[s as usize] = Some(item);
                s
            }
            None => {
                self.slab.push(Some(item));
                let s = self.slab.len() - 1;
                assert!(s < INLINE as usize, "fewer than 2^31 pending events");
                s as u32
            }
        };
        self.place(Entry { time, slot });
        self.len += 1;
    }

    /// Schedule a bare `token` (below 2^31) at `time`: for events small enough to need no
    /// slab slot (the caller keeps what the token means, e.g. a timer table index).
    #[inline]
    pub fn push_inline(&mut self, time: u64, token: u32) {
        assert!(
            time >= self.last,
            "event scheduled at {time} ns, before the current time {} ns",
            self.last
        );
        debug_assert!(token < INLINE);
        self.place(Entry {
            time,
            slot: token | INLINE,
        });
        self.len += 1;
    }

    #[inline]
    fn place(&mut self, e: Entry) {
        match bucket_of(e.time, self.last) {
            None => self.now.push(e),
            Some((p, b)) => {
                let bucket = &mut self.buckets[b];
                if bucket.capacity() == 0
                    && let Some(v) = self.pool[p].pop()
                {
                    *bucket = v;
                }
                bucket.push(e);
                self.occupied[b / 64] |= 1 << (b % 64);
                self.summary |= 1 << (b / 64);
            }
        }
    }

    /// Remove and return the earliest event with its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, Popped<T>)> {
        if self.head == self.now.len() && !self.refill() {
            return None;
        }
        let e = self.now[self.head];
        if let Some(ahead) = self.now.get(self.head + PREFETCH_AHEAD) {
            prefetch(&self.slab, ahead.slot);
        }
        self.head += 1;
        self.len -= 1;
        if e.slot & INLINE != 0 {
            return Some((e.time, Popped::Inline(e.slot & !INLINE)));
        }
        self.free.push(e.slot);
        let item = self.slab[e.slot as usize]
            .take()
            .expect("a queued slot holds an item");
        Some((e.time, Popped::Item(item)))
    }

    /// The entries at time `last` are used up: take the earliest bucket, make its smallest time
    /// the new `last`, and spread its entries into the buckets below (those at `last` into
    /// `now`). False when the queue is empty.
    fn refill(&mut self) -> bool {
        self.now.clear();
        self.head = 0;
        if self.summary == 0 {
            return false;
        }
        let w = self.summary.trailing_zeros() as usize;
        let b = w * 64 + self.occupied[w].trailing_zeros() as usize;
        self.occupied[w] &= self.occupied[w] - 1;
        if self.occupied[w] == 0 {
            self.summary &= !(1 << w);
        }
        let p = b / DIGITS;
        if p == 0 {
            // Every entry of a level-0 bucket shares all its digits with `last` but the lowest,
            // which is the bucket's digit: they are all at one time, in scheduling order, and
            // become `now` as they are (the emptied `now` goes to the bucket, or to the pool if
            // large).
            let bucket = &mut self.buckets[b];
            std::mem::swap(&mut self.now, bucket);
            if bucket.capacity() > KEEP_CAPACITY {
                self.pool[0].push(std::mem::take(bucket));
            }
            self.last = self.now[0].time;
        } else if self.buckets[b].len() == 1 {
            // Sparse events (one per bucket) are the common case in service models: no spread.
            let bucket = &mut self.buckets[b];
            let e = bucket[0];
            bucket.clear();
            if bucket.capacity() > KEEP_CAPACITY {
                self.pool[p].push(std::mem::take(bucket));
            }
            self.last = e.time;
            self.now.push(e);
        } else {
            let mut from = std::mem::take(&mut self.buckets[b]);
            self.last = from.iter().map(|e| e.time).min().expect("non-empty bucket");
            // Every entry here shares the digits above `p` with the new `last`, so each lands
            // on a lower level (or in `now`), keeping its order relative to the others.
            for e in from.drain(..) {
                self.place(e);
            }
            self.pool[p].push(from);
        }
        for e in self.now.iter().take(PREFETCH_AHEAD) {
            prefetch(&self.slab, e.slot);
        }
        if self.summary & LEVEL0_WORDS != 0 {
            self.prefetch_next_times();
        }
        true
    }

    /// Ask for the first events of the next two times at level 0: with few events per time,
    /// `now` holds one or two entries, and without this every event's slot would be a miss.
    #[inline]
    fn prefetch_next_times(&self) {
        let mut wanted = 2;
        for (w, &word) in self.occupied[..DIGITS / 64].iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let b = w * 64 + bits.trailing_zeros() as usize;
                if let Some(e) = self.buckets[b].first() {
                    prefetch(&self.slab, e.slot);
                }
                wanted -= 1;
                if wanted == 0 {
                    return;
                }
                bits &= bits - 1;
            }
        }
    }

    /// Time of the earliest event, if any.
    pub fn peek_time(&mut self) -> Option<u64> {
        if self.head == self.now.len() && !self.refill() {
            return None;
        }
        Some(self.now[self.head].time)
    }

    /// Keep only the events for which `keep` is true and the inline tokens for which
    /// `keep_inline` is (the order of the rest is unchanged: `Vec::retain` keeps each bucket's
    /// order).
    pub fn retain(
        &mut self,
        mut keep: impl FnMut(&T) -> bool,
        mut keep_inline: impl FnMut(u32) -> bool,
    ) {
        let head = std::mem::take(&mut self.head);
        self.now.drain(..head);
        let (slab, free) = (&mut self.slab, &mut self.free);
        let mut removed = 0;
        let mut keep_entry = |e: &Entry| {
            if e.slot & INLINE != 0 {
                let kept = keep_inline(e.slot & !INLINE);
                removed += usize::from(!kept);
                return kept;
            }
            let slot = &mut slab[e.slot as usize];
            let kept = keep(slot.as_ref().expect("a queued slot holds an item"));
            if !kept {
                *slot = None;
                free.push(e.slot);
                removed += 1;
            }
            kept
        };
        self.now.retain(&mut keep_entry);
        for (b, bucket) in self.buckets.iter_mut().enumerate() {
            bucket.retain(&mut keep_entry);
            if bucket.is_empty() {
                self.occupied[b / 64] &= !(1 << (b % 64));
                if self.occupied[b / 64] == 0 {
                    self.summary &= !(1 << (b / 64));
                }
            }
        }
        self.len -= removed;
    }

    /// Number of pending events.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BinaryHeap;

    #[test]
    fn pops_in_time_then_insertion_order() {
        let mut q = EventQueue::default();
        q.push(5, "c");
        q.push(1, "a");
        q.push(5, "d");
        q.push(1, "b");
        q.push(u64::MAX, "z");
        q.push_inline(5, 7);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        use Popped::{Inline, Item};
        assert_eq!(
            order,
            vec![
                (1, Item("a")),
                (1, Item("b")),
                (5, Item("c")),
                (5, Item("d")),
                (5, Inline(7)),
                (u64::MAX, Item("z"))
            ]
        );
    }

    fn seq_of((t, p): (u64, Popped<u64>)) -> (u64, u64) {
        match p {
            Popped::Item(s) => (t, s),
            Popped::Inline(s) => (t, s as u64),
        }
    }

    /// The order of a binary heap on (time, sequence), which the radix heap must reproduce
    /// exactly, under interleaved pushes, pops and purges with many ties.
    #[test]
    fn same_order_as_a_heap_on_time_and_sequence() {
        let mut q = EventQueue::default();
        let mut reference = BinaryHeap::new();
        let mut seq = 0u64;
        let mut now = 0u64;
        let mut state = 12345u64;
        let mut next = || {
            state = crate::sim::rng::mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            state
        };
        for round in 0..200_000u64 {
            let r = next();
            if r % 3 != 0 || reference.is_empty() {
                // Spans from "same instant" to far ahead, to cross every bucket.
                let shift = next() % 40;
                let t = now + ((next() >> 24) >> shift) % (1 << (40 - shift));
                if seq.is_multiple_of(3) {
                    q.push_inline(t, (seq % (1 << 31)) as u32);
                } else {
                    q.push(t, seq);
                }
                reference.push(std::cmp::Reverse((t, seq)));
                seq += 1;
            } else {
                let std::cmp::Reverse(want) = reference.pop().expect("non-empty");
                assert_eq!(q.pop().map(seq_of), Some(want), "round {round}");
                now = want.0;
            }
            if round % 50_000 == 49_999 {
                q.retain(|s| s % 7 != 0, |s| s % 7 != 0);
                reference.retain(|std::cmp::Reverse((_, s))| s % 7 != 0);
            }
            assert_eq!(q.len(), reference.len());
        }
        while let Some(std::cmp::Reverse(want)) = reference.pop() {
            assert_eq!(q.pop().map(seq_of), Some(want));
        }
        assert_eq!(q.pop(), None);
    }
}
