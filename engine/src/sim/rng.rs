//! Random numbers: one ChaCha8 stream per named purpose, derived from (seed, name).
//!
//! The key comes from the run's seed and the stream number from a stable hash of the name
//! (usually the node name, sometimes `node/purpose`), so adding a node or a purpose never
//! changes the draws of another, and variants that share a seed share their arrivals.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The one random-number generator type of the engine.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    /// The stream for `name` under `seed`.
    pub fn derive(seed: u64, name: &str) -> SimRng {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stable_hash(name.as_bytes()));
        SimRng { inner }
    }

    /// A stream seeded directly from 64 random bits (for per-request draws).
    pub fn from_bits(bits: u64) -> SimRng {
        SimRng {
            inner: ChaCha8Rng::seed_from_u64(bits),
        }
    }

    /// 64 uniformly random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Where the stream is: how many 32-bit words it has given out.
    #[inline]
    pub fn word_pos(&self) -> u128 {
        self.inner.get_word_pos()
    }

    /// Move the stream to word `pos` (see [`SimRng::word_pos`]).
    pub fn set_word_pos(&mut self, pos: u128) {
        self.inner.set_word_pos(pos);
    }

    /// True with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        use RandomSource as _;
        p > 0.0 && self.uniform() < p
    }
}

/// A source of uniform random numbers: what distributions sample from.
pub trait RandomSource {
    /// 64 uniformly random bits.
    fn bits(&mut self) -> u64;

    /// Uniform in [0, 1), with 53 random bits.
    #[inline]
    fn uniform(&mut self) -> f64 {
        (self.bits() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    #[inline]
    fn uniform_open0(&mut self) -> f64 {
        1.0 - self.uniform()
    }

    /// Uniform integer in [0, n); `n` must be positive. Lemire's method, unbiased.
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = (self.bits() as u128) * (n as u128);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = (self.bits() as u128) * (n as u128);
            }
        }
        (m >> 64) as u64
    }
}

impl RandomSource for SimRng {
    #[inline]
    fn bits(&mut self) -> u64 {
        self.next_u64()
    }
}

/// The few draws one request needs, derived from the request's `work` bits (and, for one
/// execution of it, its attempt tag) and the serving component's name, so that the same
/// execution costs the same on any replica (common random numbers across variants).
/// SplitMix64: a ChaCha stream per request would cost more than the draw itself, and these
/// bits only need to be well mixed, not unpredictable.
#[derive(Clone, Debug)]
pub struct WorkRng(u64);

impl WorkRng {
    /// Draws for the request with `work` bits at the component whose name hashes to `salt`.
    #[inline]
    pub fn new(work: u64, salt: u64) -> WorkRng {
        WorkRng(work ^ salt)
    }

    /// Draws for execution `attempt` of the request with `work` bits at the component salted
    /// `salt`. The first execution (0) draws what [`WorkRng::new`] does, so a request sent
    /// once costs the same whether its cost belongs to the execution or to the request; any
    /// other tag goes through one more bijective mix, so different executions draw
    /// unrelated values (a plain offset would replay a shifted copy of the same stream).
    #[inline]
    pub fn execution(work: u64, attempt: u32, salt: u64) -> WorkRng {
        let bits = if attempt == 0 {
            work
        } else {
            mix64(work ^ u64::from(attempt).wrapping_mul(0xd1b5_4a32_d192_ed03))
        };
        WorkRng(bits ^ salt)
    }
}

impl RandomSource for WorkRng {
    #[inline]
    fn bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }
}

/// A hash of bytes that is the same on every platform and in every Rust version
/// (FNV-1a followed by the SplitMix64 finaliser to spread the bits).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// The SplitMix64 finaliser: a bijective mix of 64 bits.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_depend_on_seed_and_name_only() {
        let a1: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(SimRng::derive(7, "app-0"), |r, _| Some(r.next_u64()))
            .collect();
        let a2: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(SimRng::derive(7, "app-0"), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(SimRng::derive(7, "app-1"), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(SimRng::derive(8, "app-0"), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(a1, c);
    }

    #[test]
    fn stable_hash_is_pinned() {
        // Pinned so a change of hash (and so of every stream) is a deliberate act.
        assert_eq!(stable_hash(b""), mix64(0xcbf2_9ce4_8422_2325));
        assert_eq!(stable_hash(b"app-0"), stable_hash(b"app-0"));
        assert_ne!(stable_hash(b"app-0"), stable_hash(b"app-1"));
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut r = SimRng::derive(1, "t");
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            seen[r.below(5) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (1800..2200).contains(&n)), "{seen:?}");
    }
}
