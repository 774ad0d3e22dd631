//! The pending-event queue: (time, sequence) order, as a monotone radix heap.
//!
//! Events come out by time, and events at the same time in the order they were put in, so a
//! run is a pure function of its inputs. The queue is *monotone*: nothing is ever scheduled
//! before the last event taken out (simulated time does not go back), which is what lets a
//! radix heap replace a comparison heap.
//!
//! ```text
//!   now:    entries at time == last, last one first  ◀── pop takes the back
//!   fresh:  entries pushed at time == last meanwhile, FIFO (reversed into `now` when it is
//!           used up)
//!   run:    one level-1 bucket of at most 4,096 entries, sorted by (time, order), earliest
//!           last                                     ◀── or the back of the run, unless a
//!                                                        level-0 bucket comes first
//!   buckets (p, d): entries whose highest 8-bit digit differing from `last` is digit p,
//!           and whose digit p is d                   ◀── push appends to bucket(t, last)
//!   now, fresh and run used up ─▶ lowest non-empty (p, d): a level-0 bucket becomes `now`;
//!           a short level-1 bucket is sorted into the run; any other: last = its smallest
//!           time, its entries spread into lower levels (those at `last` into `fresh`)
//! ```
//!
//! An entry is the event's time and the event itself: no side table, so taking an event out
//! reads memory that was written in order instead of one random slot per event. The kernel
//! keeps its queued item small (24 bytes, a 32-byte entry) and parks larger message bodies
//! elsewhere. A bucket is a chain of fixed-size chunks from one shared arena, so the queue
//! holds the pending entries plus at most one partly filled chunk per non-empty bucket, and
//! chunks freed by one bucket serve the next: no allocation once the arena has grown to the
//! run's peak, and no bucket keeps room sized for the largest bucket it ever held. An entry
//! moves down at least one level each time it is spread, so at most 7 times and in practice
//! once or twice: with 8-bit digits an event less than 65 µs ahead is spread at most once
//! before it reaches the front.
//!
//! Why the sequence order holds without storing a sequence number: every bucket is in
//! scheduling order. Pushes append (they come after everything queued), and a bucket is spread
//! only when every bucket below it is empty, so each receiving bucket gets a subsequence of an
//! ordered bucket. `now` and `fresh` hold one time only, and everything in `fresh` was pushed
//! after everything in `now`, so the back of `now` is the next (time, sequence) event. The run
//! is sorted stably, and it is made only when level 0 is empty, so a level-0 bucket at the same
//! time as some of its entries holds later ones; when the run's next time is reached, all its
//! entries at that time go to `now` together unless there is just one.
//!
//! Why the run: where events are sparse (PHOLD with 1,000 pending events: about one per
//! nanosecond), spreading a level-1 bucket gives nearly every event a level-0 bucket of its
//! own, a chunk to take and free and a bucket to find, where a counting sort on the lowest
//! digit costs two passes.

/// An entry: the event's time and the event.
struct Entry<T> {
    time: u64,
    item: T,
}

/// An entry's place in a chunk. The item is `ManuallyDrop` so that writing a slot does not
/// first read (to drop) what it held, which is always a taken-out default: that read would
/// be a cache miss on every push to a far bucket. The queue's `Drop` takes out the entries
/// still queued.
struct Slot<T> {
    time: u64,
    item: ManuallyDrop<T>,
}

use std::mem::ManuallyDrop;

impl<T: Default> Slot<T> {
    /// Take the entry out, leaving a default behind.
    #[inline(always)]
    fn take(&mut self) -> Entry<T> {
        Entry {
            time: self.time,
            item: ManuallyDrop::into_inner(std::mem::take(&mut self.item)),
        }
    }
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
/// Entries per chunk: 512 bytes of 32-byte entries.
const CHUNK: usize = 16;
/// Most entries a level-1 bucket may hold to be sorted into the run (128 KiB of 32-byte
/// entries, whatever the number of pending events): larger ones hold several events per
/// nanosecond, where level-0 buckets are full and spreading is cheap.
const RUN_MAX: usize = 4096;
/// No chunk.
const NIL: u32 = u32::MAX;

/// A chunk's fill and the next chunk of the same bucket; its entries are
/// `slots[c * CHUNK..][..len]`.
#[derive(Clone, Copy)]
struct Chunk {
    len: u32,
    next: u32,
}

/// A bucket's chain of chunks; `tail` is where pushes go.
#[derive(Clone, Copy)]
struct Chain {
    head: u32,
    tail: u32,
}

/// Events ordered by (time, scheduling order). Items are moved out of the queue's storage with
/// [`std::mem::take`], hence `T: Default`.
pub struct EventQueue<T: Default> {
    /// Entries at time `last`, in reverse scheduling order: the next one is at the back, and
    /// taking it out is a `Vec::pop`.
    now: Vec<Entry<T>>,
    /// Entries at time `last` not yet in `now`, in scheduling order.
    fresh: Vec<Entry<T>>,
    /// The entries of one level-1 bucket sorted by (time, scheduling order), the earliest at
    /// `run_len - 1`: where events are sparse (about one per nanosecond), spreading a bucket
    /// into level 0 would give each event a bucket of its own. Slots from `run_len` on hold
    /// entries already taken out, or defaults.
    run: Vec<Slot<T>>,
    run_len: usize,
    /// Scratch for sorting a bucket into `run`: entries per digit, then where each digit ends.
    ends: Box<[u32; DIGITS]>,
    /// Bucket `p * DIGITS + d`: entries whose highest 8-bit digit differing from `last` is
    /// digit `p`, where their digit is `d`. A lower bucket number means earlier, whatever the
    /// entries inside.
    buckets: Box<[Chain; BUCKETS]>,
    /// The entries of every chunk ever needed, [`CHUNK`] slots per chunk (a slot outside a
    /// chunk's `len` holds an entry already taken out, or a default one).
    slots: Vec<Slot<T>>,
    /// Every chunk ever needed; `free` lists the ones no bucket uses.
    chunks: Vec<Chunk>,
    free: Vec<u32>,
    /// Scratch: the chunks of the bucket being taken, head first.
    chain: Vec<u32>,
    /// Bit b % 64 of `occupied[b / 64]` is set when bucket `b` is non-empty.
    occupied: [u64; WORDS],
    /// Bit w set when `occupied[w]` is non-zero: the first non-empty bucket is two
    /// trailing-zero counts away.
    summary: u32,
    /// The time of the last event taken out.
    last: u64,
    len: usize,
}

/// The bits of [`EventQueue::summary`] for the level-0 buckets.
const LEVEL0_WORDS: u32 = (1 << (DIGITS / 64)) - 1;

/// Ask the CPU to bring `item` into the cache (a hint: it changes no value).
#[inline(always)]
fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint that never faults and reads or writes nothing the
        // program can observe; the pointer comes from a live reference anyway.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

impl<T: Default> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue::new()
    }
}

/// The bucket number of `time` relative to `last`; `None` when they are equal.
#[inline]
fn bucket_of(time: u64, last: u64) -> Option<usize> {
    let x = time ^ last;
    if x == 0 {
        return None;
    }
    let level = (63 - x.leading_zeros()) / DIGIT_BITS;
    let digit = ((time >> (level * DIGIT_BITS)) as usize) & (DIGITS - 1);
    Some(level as usize * DIGITS + digit)
}

impl<T: Default> EventQueue<T> {
    /// Bytes one pending event takes in the queue: its entry (the chunks of a bucket may have
    /// room for up to 15 more).
    pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry<T>>();

    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            now: Vec::new(),
            fresh: Vec::new(),
            run: Vec::new(),
            run_len: 0,
            ends: Box::new([0; DIGITS]),
            buckets: Box::new(
                [Chain {
                    head: NIL,
                    tail: NIL,
                }; BUCKETS],
            ),
            slots: Vec::new(),
            chunks: Vec::new(),
            free: Vec::new(),
            chain: Vec::new(),
            occupied: [0; WORDS],
            summary: 0,
            last: 0,
            len: 0,
        }
    }

    /// Schedule `item` at `time` (nanoseconds), which must not be before the last event taken
    /// out.
    #[inline(always)]
    pub fn push(&mut self, time: u64, item: T) {
        assert!(
            time >= self.last,
            "event scheduled at {time} ns, before the current time {} ns",
            self.last
        );
        self.place(Entry { time, item });
        self.len += 1;
    }

    /// A chunk no bucket uses (from the free list, or a new one while the arena grows).
    #[inline]
    fn new_chunk(&mut self) -> u32 {
        match self.free.pop() {
            Some(c) => c,
            None => {
                assert!(self.chunks.len() < NIL as usize, "fewer than 2^32 chunks");
                self.chunks.push(Chunk { len: 0, next: NIL });
                if self.slots.capacity() - self.slots.len() < CHUNK {
                    // Grow by an eighth rather than double: the arena is most of the queue's
                    // memory, and doubling could leave it half empty at a new peak.
                    let more = (self.slots.len() / 8).next_multiple_of(CHUNK) + 64 * CHUNK;
                    self.slots.reserve_exact(more);
                }
                self.slots.extend((0..CHUNK).map(|_| Slot {
                    time: 0,
                    item: ManuallyDrop::new(T::default()),
                }));
                (self.chunks.len() - 1) as u32
            }
        }
    }

    #[inline(always)]
    fn place(&mut self, e: Entry<T>) {
        let Some(b) = bucket_of(e.time, self.last) else {
            self.fresh.push(e);
            return;
        };
        let tail = self.buckets[b].tail;
        let tail = if tail == NIL {
            let c = self.new_chunk();
            self.buckets[b] = Chain { head: c, tail: c };
            self.occupied[b / 64] |= 1 << (b % 64);
            self.summary |= 1 << (b / 64);
            c
        } else if self.chunks[tail as usize].len == CHUNK as u32 {
            let c = self.new_chunk();
            self.chunks[tail as usize].next = c;
            self.buckets[b].tail = c;
            c
        } else {
            tail
        };
        let chunk = &mut self.chunks[tail as usize];
        self.slots[tail as usize * CHUNK + chunk.len as usize] = Slot {
            time: e.time,
            item: ManuallyDrop::new(e.item),
        };
        chunk.len += 1;
    }

    /// Empty chunk `c`, handing its entries in order to `each`, and free it; returns the chunk
    /// that followed it. (`each` may take `c` again from the free list: it writes slot k only
    /// after k + 1 entries have been handed out, so only slots already read.)
    #[inline]
    fn drain_chunk(&mut self, c: u32, mut each: impl FnMut(&mut Self, Entry<T>)) -> u32 {
        let Chunk { len, next } =
            std::mem::replace(&mut self.chunks[c as usize], Chunk { len: 0, next: NIL });
        if next != NIL {
            self.prefetch_chunk(next);
        }
        self.free.push(c);
        let start = c as usize * CHUNK;
        for i in start..start + len as usize {
            let e = self.slots[i].take();
            each(self, e);
        }
        next
    }

    /// Ask for every cache line of chunk `c`'s entries.
    #[inline(always)]
    fn prefetch_chunk(&self, c: u32) {
        let per_line = (64 / std::mem::size_of::<Slot<T>>()).max(1);
        let start = c as usize * CHUNK;
        for slot in self.slots[start..start + CHUNK].iter().step_by(per_line) {
            prefetch(slot);
        }
    }

    /// Remove and return the earliest event with its time.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let e = match self.now.pop() {
            Some(e) => e,
            None => self.next()?,
        };
        self.len -= 1;
        Some((e.time, e.item))
    }

    /// `now` is used up: the next entry, from `fresh` (more events at time `last`), the sorted
    /// run or the earliest bucket. `None` when the queue is empty.
    #[inline]
    fn next(&mut self) -> Option<Entry<T>> {
        if !self.fresh.is_empty() {
            self.fresh_to_now();
            return self.now.pop();
        }
        if self.run_len == 0 {
            return self.refill();
        }
        self.take_from_run()
    }

    /// `now` and `fresh` are used up and the run is not: its next entry, unless a level-0
    /// bucket comes first. A level-0 bucket holds only entries pushed after the run was
    /// sorted (level 0 was empty then), so at a time they share, the run's come first.
    #[inline]
    fn take_from_run(&mut self) -> Option<Entry<T>> {
        let t = self.run[self.run_len - 1].time;
        if self.summary & LEVEL0_WORDS != 0 {
            let w = self.summary.trailing_zeros() as usize;
            let b = w * 64 + self.occupied[w].trailing_zeros() as usize;
            // `last` is in the run's window: level 0 is empty until the run's first event.
            let t0 = (self.last & !(DIGITS as u64 - 1)) | b as u64;
            if t0 <= t {
                if t0 == t {
                    // The bucket's entries come after the run's at `t`, so they go into `now`
                    // first (it is popped from the back).
                    self.take_bucket(w, b);
                    self.run_to_now(t);
                } else {
                    self.take_bucket(w, b);
                }
                self.last = t0;
                return self.now.pop();
            }
        }
        self.last = t;
        if self.run_len >= 2 && self.run[self.run_len - 2].time == t {
            // Several at `t`: into `now` together, so that what is pushed at `t` meanwhile
            // (into `fresh`) comes after all of them.
            self.run_to_now(t);
            return self.now.pop();
        }
        self.run_len -= 1;
        Some(self.run[self.run_len].take())
    }

    /// Move the run's entries at time `t` (at its end) to the back of `now`, the earliest last.
    #[inline]
    fn run_to_now(&mut self, t: u64) {
        let mut k = self.run_len;
        while k > 0 && self.run[k - 1].time == t {
            k -= 1;
        }
        for slot in &mut self.run[k..self.run_len] {
            self.now.push(slot.take());
        }
        self.run_len = k;
    }

    /// `now` is empty: the entries of `fresh` become it, last one first.
    #[inline]
    fn fresh_to_now(&mut self) {
        std::mem::swap(&mut self.now, &mut self.fresh);
        self.now.reverse();
    }

    /// Move chunk `c`'s entries to the back of `now`, last one first, and free it (its `next`
    /// is the caller's business).
    #[inline(always)]
    fn chunk_to_now(&mut self, c: u32) {
        let len = std::mem::replace(&mut self.chunks[c as usize].len, 0);
        self.free.push(c);
        let start = c as usize * CHUNK;
        for slot in self.slots[start..start + len as usize].iter_mut().rev() {
            self.now.push(slot.take());
        }
    }

    /// Take bucket `b` (in occupancy word `w`, which has its bit set) out of the buckets: its
    /// chain, emptied.
    #[inline]
    fn unlink(&mut self, w: usize, b: usize) -> Chain {
        self.occupied[w] &= !(1 << (b % 64));
        if self.occupied[w] == 0 {
            self.summary &= !(1 << w);
        }
        std::mem::replace(
            &mut self.buckets[b],
            Chain {
                head: NIL,
                tail: NIL,
            },
        )
    }

    /// Move bucket `b`'s entries to the back of `now`, the first scheduled last: its chunks
    /// from the tail back.
    fn take_bucket(&mut self, w: usize, b: usize) {
        let Chain { head, tail } = self.unlink(w, b);
        self.chain_to_now(head, tail);
    }

    /// Move the chain from `head` to `tail` to the back of `now`, the first scheduled last,
    /// and free its chunks.
    #[inline(always)]
    fn chain_to_now(&mut self, head: u32, tail: u32) {
        if head == tail {
            self.chunk_to_now(head);
        } else {
            self.long_chain_to_now(head);
        }
    }

    /// [`EventQueue::chain_to_now`] for a chain of several chunks.
    fn long_chain_to_now(&mut self, head: u32) {
        self.chain.clear();
        let mut c = head;
        while c != NIL {
            self.chain.push(c);
            c = std::mem::replace(&mut self.chunks[c as usize].next, NIL);
        }
        for k in (0..self.chain.len()).rev() {
            if k > 0 {
                // A long chain was written by a spread long ago and is out of cache by now:
                // ask for the next chunk while this one is copied.
                self.prefetch_chunk(self.chain[k - 1]);
            }
            self.chunk_to_now(self.chain[k]);
        }
    }

    /// `now`, `fresh` and the run are used up: take the earliest bucket and return its first
    /// entry. A single entry (the common case in service models, where events are far apart)
    /// comes straight out; a level-0 bucket (all at one time) becomes `now`; a short level-1
    /// bucket is sorted into the run; any other is spread into the buckets below, its
    /// smallest time the new `last`. `None` when the queue is empty.
    fn refill(&mut self) -> Option<Entry<T>> {
        if self.summary == 0 {
            return None;
        }
        let w = self.summary.trailing_zeros() as usize;
        let b = w * 64 + self.occupied[w].trailing_zeros() as usize;
        let Chain { head, tail } = self.unlink(w, b);
        let next = if head == tail && self.chunks[head as usize].len == 1 {
            self.chunks[head as usize].len = 0;
            self.free.push(head);
            let e = self.slots[head as usize * CHUNK].take();
            self.last = e.time;
            Some(e)
        } else if b < DIGITS {
            // Every entry of a level-0 bucket shares all its digits with `last` but the
            // lowest, which is the bucket's digit: they are all at one time, in scheduling
            // order.
            self.chain_to_now(head, tail);
            self.last = self.now[0].time;
            self.now.pop()
        } else if b < 2 * DIGITS && self.sort_into_run(head) {
            self.take_from_run()
        } else {
            self.spread(head);
            self.now.pop()
        };
        if self.summary & LEVEL0_WORDS != 0 {
            self.prefetch_next_times();
        }
        next
    }

    /// Make the smallest time in the chain from `head` the new `last` and spread the chain's
    /// entries into the buckets below it (those at `last` into `fresh`, then `now`).
    fn spread(&mut self, head: u32) {
        let mut c = head;
        let mut min = u64::MAX;
        while c != NIL {
            let Chunk { len, next } = self.chunks[c as usize];
            if next != NIL {
                self.prefetch_chunk(next);
            }
            let start = c as usize * CHUNK;
            min = self.slots[start..start + len as usize]
                .iter()
                .fold(min, |m, e| m.min(e.time));
            c = next;
        }
        self.last = min;
        // Every entry here shares the digits above its level with the new `last`, so each
        // lands on a lower level (or in `fresh`), keeping its order relative to the others.
        let mut c = head;
        while c != NIL {
            c = self.drain_chunk(c, |q, e| q.place(e));
        }
        // The entries at the new `last` (there is one at least: the minimum) went to `fresh`.
        self.fresh_to_now();
    }

    /// Sort the level-1 bucket whose chain starts at `head` into the run, if it holds at most
    /// [`RUN_MAX`] entries (else false, and nothing moved). Its entries differ only in their
    /// lowest digit, so a counting sort on that digit, stable, orders them by (time,
    /// scheduling order): two passes, where spreading them would give each distinct time a
    /// level-0 bucket and a chunk.
    fn sort_into_run(&mut self, head: u32) -> bool {
        let (mut c, mut n) = (head, 0);
        while c != NIL {
            let Chunk { len, next } = self.chunks[c as usize];
            n += len as usize;
            if n > RUN_MAX {
                return false;
            }
            c = next;
        }
        self.ends.fill(0);
        let mut c = head;
        while c != NIL {
            let Chunk { len, next } = self.chunks[c as usize];
            let start = c as usize * CHUNK;
            for slot in &self.slots[start..start + len as usize] {
                self.ends[slot.time as usize % DIGITS] += 1;
            }
            c = next;
        }
        // Later digits first, so that the earliest entry is at the end: `ends[d]` is where
        // digit d's entries end, and each is written just below the one before it.
        let mut total = 0;
        for end in self.ends.iter_mut().rev() {
            total += *end;
            *end = total;
        }
        if self.run.len() < n {
            self.run.resize_with(n, || Slot {
                time: 0,
                item: ManuallyDrop::new(T::default()),
            });
        }
        let mut c = head;
        while c != NIL {
            c = self.drain_chunk(c, |q, e| {
                let end = &mut q.ends[e.time as usize % DIGITS];
                *end -= 1;
                q.run[*end as usize] = Slot {
                    time: e.time,
                    item: ManuallyDrop::new(e.item),
                };
            });
        }
        self.run_len = n;
        true
    }

    /// Ask for the first events of the next two times at level 0 (the last entry of each
    /// bucket's tail chunk, which is read first): with few events per time, each time's
    /// entries sit in their own chunk, and without this every event's entry would be a cache
    /// miss.
    #[inline]
    fn prefetch_next_times(&self) {
        let mut wanted = 2;
        for (w, &word) in self.occupied[..DIGITS / 64].iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let b = w * 64 + bits.trailing_zeros() as usize;
                let tail = self.buckets[b].tail as usize;
                let last = (self.chunks[tail].len as usize).saturating_sub(1);
                prefetch(&self.slots[tail * CHUNK + last]);
                wanted -= 1;
                if wanted == 0 {
                    return;
                }
                bits &= bits - 1;
            }
        }
    }

    /// Call `f` on every queued event, in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(&T)) {
        for e in self.now.iter().chain(&self.fresh) {
            f(&e.item);
        }
        for slot in &self.run[..self.run_len] {
            f(&slot.item);
        }
        for b in 0..BUCKETS {
            let mut c = self.buckets[b].head;
            while c != NIL {
                let Chunk { len, next } = self.chunks[c as usize];
                let start = c as usize * CHUNK;
                for slot in &self.slots[start..start + len as usize] {
                    f(&slot.item);
                }
                c = next;
            }
        }
    }

    /// Keep only the events for which `keep` is true (the order of the rest is unchanged).
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let before = self.len;
        self.now.retain(|e| keep(&e.item));
        self.fresh.retain(|e| keep(&e.item));
        self.retain_run(&mut keep);
        let mut kept = self.now.len() + self.fresh.len() + self.run_len;
        for b in 0..BUCKETS {
            let head = self.buckets[b].head;
            if head != NIL {
                kept += self.retain_chain(b, head, &mut keep);
            }
        }
        debug_assert!(kept <= before);
        self.len = kept;
    }

    /// Compact the run in place, keeping its order.
    fn retain_run(&mut self, keep: &mut impl FnMut(&T) -> bool) {
        let mut to = 0;
        for from in 0..self.run_len {
            if !keep(&self.run[from].item) {
                drop(self.run[from].take());
                continue;
            }
            if to != from {
                let e = self.run[from].take();
                self.run[to] = Slot {
                    time: e.time,
                    item: ManuallyDrop::new(e.item),
                };
            }
            to += 1;
        }
        self.run_len = to;
    }

    /// Compact bucket `b`'s chain in place: the kept entries move towards its head, in order,
    /// and the chunks left empty are freed (no allocation: purges run in steady state).
    /// Returns how many entries it keeps.
    fn retain_chain(&mut self, b: usize, head: u32, keep: &mut impl FnMut(&T) -> bool) -> usize {
        let (mut to_chunk, mut to_index) = (head, 0);
        let mut kept = 0;
        let mut c = head;
        while c != NIL {
            let Chunk { len, next } = self.chunks[c as usize];
            for i in 0..len as usize {
                let from = c as usize * CHUNK + i;
                if !keep(&self.slots[from].item) {
                    drop(self.slots[from].take());
                    continue;
                }
                if to_index == CHUNK {
                    self.chunks[to_chunk as usize].len = CHUNK as u32;
                    to_chunk = self.chunks[to_chunk as usize].next;
                    to_index = 0;
                }
                let to = to_chunk as usize * CHUNK + to_index;
                if to != from {
                    let time = self.slots[from].time;
                    let item = std::mem::take(&mut self.slots[from].item);
                    self.slots[to] = Slot { time, item };
                }
                to_index += 1;
                kept += 1;
            }
            c = next;
        }
        // Free what follows the last chunk written (all of the chain if nothing is kept).
        let mut rest = if kept == 0 {
            head
        } else {
            self.chunks[to_chunk as usize].len = to_index as u32;
            std::mem::replace(&mut self.chunks[to_chunk as usize].next, NIL)
        };
        while rest != NIL {
            let chunk =
                std::mem::replace(&mut self.chunks[rest as usize], Chunk { len: 0, next: NIL });
            self.free.push(rest);
            rest = chunk.next;
        }
        if kept == 0 {
            self.buckets[b] = Chain {
                head: NIL,
                tail: NIL,
            };
            self.occupied[b / 64] &= !(1 << (b % 64));
            if self.occupied[b / 64] == 0 {
                self.summary &= !(1 << (b / 64));
            }
        } else {
            self.buckets[b].tail = to_chunk;
        }
        kept
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

    /// Bytes the queue holds on the heap (capacities, not lengths: what it asked the
    /// allocator for). Walks no entry; for the memory budget's cold path.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let entries = (self.now.capacity() + self.fresh.capacity()) * size_of::<Entry<T>>();
        let slots = (self.run.capacity() + self.slots.capacity()) * size_of::<Slot<T>>();
        let chunks = self.chunks.capacity() * size_of::<Chunk>();
        let lists = (self.free.capacity() + self.chain.capacity()) * size_of::<u32>();
        let fixed = size_of::<[u32; DIGITS]>() + size_of::<[Chain; BUCKETS]>();
        entries + slots + chunks + lists + fixed
    }
}

impl<T: Default> Drop for EventQueue<T> {
    /// Drop the items still queued in chunks and in the run (the rest of the slots hold
    /// defaults).
    fn drop(&mut self) {
        for slot in &mut self.run[..self.run_len] {
            drop(slot.take());
        }
        for b in 0..BUCKETS {
            let mut c = self.buckets[b].head;
            while c != NIL {
                c = self.drain_chunk(c, |_, e| drop(e));
            }
        }
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
        q.push(5, "e");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![
                (1, "a"),
                (1, "b"),
                (5, "c"),
                (5, "d"),
                (5, "e"),
                (u64::MAX, "z")
            ]
        );
    }

    /// A purge compacts long chains in place (entries move across chunks) and keeps order;
    /// every item is dropped exactly once, whether taken out, purged or left in the queue.
    #[test]
    fn purging_long_chains_keeps_order_and_drops_each_item_once() {
        use std::rc::Rc;
        let token = Rc::new(());
        let mut q = EventQueue::default();
        // 1,000 entries in one far bucket (a chain of 63 chunks), and some spread around.
        for i in 0..1000u64 {
            q.push(1 << 40, (i, Rc::clone(&token)));
            q.push(i * 997, (10_000 + i, Rc::clone(&token)));
        }
        assert_eq!(Rc::strong_count(&token), 2001);
        q.retain(|(i, _)| i % 3 != 0);
        assert_eq!(Rc::strong_count(&token), 1 + q.len());
        for _ in 0..400 {
            q.pop();
        }
        assert_eq!(Rc::strong_count(&token), 1 + q.len());
        let far: Vec<u64> = std::iter::from_fn(|| q.pop())
            .filter(|&(t, _)| t == 1 << 40)
            .map(|(_, (i, _))| i)
            .collect();
        let want: Vec<u64> = (0..1000).filter(|i| i % 3 != 0).collect();
        assert_eq!(far, want);
        for i in 0..100u64 {
            q.push((1 << 41) + i % 7, (i, Rc::clone(&token)));
        }
        drop(q);
        assert_eq!(Rc::strong_count(&token), 1);
    }

    /// A radix heap and a binary heap on (time, sequence) fed the same pushes: every pop
    /// must give the same event.
    struct Checked {
        q: EventQueue<u64>,
        reference: BinaryHeap<std::cmp::Reverse<(u64, u64)>>,
        seq: u64,
        now: u64,
    }

    impl Checked {
        fn new() -> Checked {
            Checked {
                q: EventQueue::default(),
                reference: BinaryHeap::new(),
                seq: 0,
                now: 0,
            }
        }

        fn push(&mut self, t: u64) {
            self.q.push(t, self.seq);
            self.reference.push(std::cmp::Reverse((t, self.seq)));
            self.seq += 1;
        }

        /// Pop both and compare; `at` names the step in a failure.
        fn pop(&mut self, at: &str) {
            let std::cmp::Reverse(want) = self.reference.pop().expect("non-empty");
            assert_eq!(self.q.pop(), Some(want), "{at}");
            self.now = want.0;
        }
    }

    /// A deterministic stream of pseudo-random words.
    fn stream(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state = crate::sim::rng::mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            state
        }
    }

    /// Many short runs with pushes a few ns to a millisecond ahead, checked against a binary
    /// heap after every pop: dense times (several events per ns) and pushes that land on a time
    /// already queued in a lower bucket are where a radix heap's tie order breaks first.
    #[test]
    fn same_order_as_a_heap_when_times_are_dense() {
        for run in 0..5_000u64 {
            let span = [3u64, 300, 700, 5_000, 70_000, 1 << 20][run as usize % 6];
            let (mut c, mut next) = (Checked::new(), stream(run));
            for step in 0..200 {
                if next() % 3 != 0 || c.reference.is_empty() {
                    c.push(c.now + next() % span);
                } else {
                    c.pop(&format!("run {run}, step {step}"));
                }
                if step == 150 && run % 7 == 0 {
                    // A purge part-way, when the run may hold entries.
                    c.q.retain(|s| s % 5 != 0);
                    c.reference.retain(|std::cmp::Reverse((_, s))| s % 5 != 0);
                }
            }
        }
    }

    /// The order of a binary heap on (time, sequence), which the radix heap must reproduce
    /// exactly, under interleaved pushes, pops and purges with many ties; and `for_each` sees
    /// exactly the queued events.
    #[test]
    fn same_order_as_a_heap_on_time_and_sequence() {
        let (mut c, mut next) = (Checked::new(), stream(12345));
        for round in 0..200_000u64 {
            if next() % 3 != 0 || c.reference.is_empty() {
                // Spans from "same instant" to far ahead, to cross every bucket.
                let shift = next() % 40;
                c.push(c.now + ((next() >> 24) >> shift) % (1 << (40 - shift)));
            } else {
                c.pop(&format!("round {round}"));
            }
            if round % 50_000 == 49_999 {
                c.q.retain(|s| s % 7 != 0);
                c.reference.retain(|std::cmp::Reverse((_, s))| s % 7 != 0);
            }
            assert_eq!(c.q.len(), c.reference.len());
            if round % 10_000 == 5_000 {
                let mut seen = Vec::new();
                c.q.for_each(|s| seen.push(*s));
                seen.sort_unstable();
                let mut want: Vec<u64> = c.reference.iter().map(|r| r.0.1).collect();
                want.sort_unstable();
                assert_eq!(seen, want, "for_each visits every queued event once");
            }
        }
        while !c.reference.is_empty() {
            c.pop("draining");
        }
        assert_eq!(c.q.pop(), None);
    }
}
