//! The recording side of an HDR histogram, for the one-record-per-request hot path.
//!
//! `hdrhistogram`'s `record` is general (any lowest value, clamping, resizing, min/max
//! tracking) and costs about 60 instructions; a run records every request twice (its time
//! window and the summary). [`HdrCounts`] keeps the very same bucket array for histograms whose
//! lowest value is 1, and finds a value's bucket with one leading-zero count and two shifts.
//! When the numbers are needed, [`HdrCounts::histogram`] replays each non-empty bucket into a
//! real `hdrhistogram::Histogram` (one `record_n` at the bucket's lowest value). Everything that
//! histogram reports (quantiles, mean, max, count) depends only on the per-bucket counts, so it
//! is the histogram the values themselves would have built, bit for bit.

use hdrhistogram::{Counter, Histogram};

/// Per-bucket counts laid out as `hdrhistogram` lays them out for `new_with_bounds(1, high,
/// sigfig)`.
#[derive(Clone, Debug)]
pub struct HdrCounts<T: Counter> {
    counts: Vec<T>,
    high: u64,
    sigfig: u8,
    /// log2 of half the sub-buckets per bucket.
    half_magnitude: u32,
    /// Half the sub-buckets per bucket.
    half_count: u32,
    /// Values below this mask's bit width land in bucket 0.
    sub_bucket_mask: u64,
    /// 64 minus the bits of the largest value of bucket 0.
    leading_zero_count_base: u32,
}

impl<T: Counter> HdrCounts<T> {
    /// Empty counts for values from 1 to `high` with `sigfig` significant digits.
    pub fn new(high: u64, sigfig: u8) -> Self {
        // The same layout `new_with_bounds` computes (with unit magnitude 0, as low is 1); the
        // template tells how many buckets cover `high`, and rejects invalid bounds.
        let template =
            Histogram::<T>::new_with_bounds(1, high, sigfig).expect("valid histogram bounds");
        let largest = 2 * 10_u32.pow(u32::from(sigfig));
        let count_magnitude = f64::from(largest).log2().ceil() as u32;
        let sub_bucket_count = 1u32 << count_magnitude;
        HdrCounts {
            counts: vec![T::zero(); template.distinct_values()],
            high,
            sigfig,
            half_magnitude: count_magnitude - 1,
            half_count: sub_bucket_count / 2,
            sub_bucket_mask: u64::from(sub_bucket_count) - 1,
            leading_zero_count_base: 64 - count_magnitude,
        }
    }

    /// Empty counts of the same layout, without recomputing it. (Freshly allocated zeros rather
    /// than a clone: pages of buckets no value reaches are then never touched.)
    pub fn empty_like(&self) -> Self {
        HdrCounts {
            counts: vec![T::zero(); self.counts.len()],
            ..*self
        }
    }

    /// The bucket of `value`, as `hdrhistogram`'s `index_for` computes it.
    #[inline]
    fn index_for(&self, value: u64) -> usize {
        let bucket = self.leading_zero_count_base - (value | self.sub_bucket_mask).leading_zeros();
        let sub_bucket = (value >> bucket) as usize;
        ((bucket as usize + 1) << self.half_magnitude) + sub_bucket - self.half_count as usize
    }

    /// The lowest value of bucket `index`, as `hdrhistogram`'s `value_for` computes it.
    fn value_for(&self, index: usize) -> u64 {
        let bucket = (index >> self.half_magnitude) as i64 - 1;
        let sub_bucket =
            (index as u64 & u64::from(self.half_count - 1)) + u64::from(self.half_count);
        if bucket < 0 {
            sub_bucket - u64::from(self.half_count)
        } else {
            sub_bucket << bucket
        }
    }

    /// Count one `value`, which must lie in 1..=high (callers clamp).
    #[inline]
    pub fn record(&mut self, value: u64) {
        debug_assert!((1..=self.high).contains(&value), "{value} out of range");
        let i = self.index_for(value);
        let c = &mut self.counts[i];
        *c = c.saturating_add(T::one());
    }

    /// The histogram of the recorded values.
    pub fn histogram(&self) -> Histogram<T> {
        let mut h = Histogram::<T>::new_with_bounds(1, self.high, self.sigfig)
            .expect("valid histogram bounds");
        for (i, &count) in self.counts.iter().enumerate() {
            if count != T::zero() {
                h.record_n(self.value_for(i), count)
                    .expect("a bucket's lowest value is in range");
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::{RandomSource, SimRng};

    const HIGH: u64 = 3_600_000_000_000;

    /// Values across every bucket: small ones (bucket 0, unit resolution), powers of two and
    /// their neighbours (bucket edges), and log-uniform random ones up to the top.
    fn values() -> Vec<u64> {
        let mut v: Vec<u64> = (1..5000).collect();
        for p in 1..42 {
            let x = 1u64 << p;
            v.extend(
                [x - 1, x, x + 1]
                    .into_iter()
                    .filter(|&y| (1..=HIGH).contains(&y)),
            );
        }
        let mut rng = SimRng::derive(3, "hdr-counts");
        for _ in 0..20_000 {
            let x = libm::exp(rng.uniform() * libm::log(HIGH as f64)) as u64;
            v.push(x.clamp(1, HIGH));
        }
        v.push(HIGH);
        v
    }

    fn same<T: Counter + std::fmt::Debug>(sigfig: u8) {
        let mut direct = Histogram::<T>::new_with_bounds(1, HIGH, sigfig).unwrap();
        let mut counts = HdrCounts::<T>::new(HIGH, sigfig);
        for v in values() {
            direct.saturating_record(v);
            counts.record(v);
        }
        let replayed = counts.histogram();
        assert_eq!(replayed.len(), direct.len());
        assert_eq!(replayed.max(), direct.max());
        assert_eq!(replayed.min_nz(), direct.min_nz());
        assert_eq!(replayed.mean().to_bits(), direct.mean().to_bits());
        for i in 0..=1000 {
            let q = i as f64 / 1000.0;
            assert_eq!(
                replayed.value_at_quantile(q),
                direct.value_at_quantile(q),
                "q {q}"
            );
        }
        for q in [0.9999, 0.99999, 0.999999] {
            assert_eq!(
                replayed.value_at_quantile(q),
                direct.value_at_quantile(q),
                "q {q}"
            );
        }
    }

    #[test]
    fn replayed_counts_give_the_histogram_of_the_values() {
        same::<u64>(3);
        same::<u32>(2);
    }

    #[test]
    fn every_bucket_maps_to_the_index_hdrhistogram_uses() {
        for sigfig in [2, 3] {
            let c = HdrCounts::<u64>::new(HIGH, sigfig);
            let h = Histogram::<u64>::new_with_bounds(1, HIGH, sigfig).unwrap();
            for i in 1..c.counts.len() {
                let v = c.value_for(i);
                if v == 0 || v > HIGH {
                    continue;
                }
                assert_eq!(c.index_for(v), i, "sigfig {sigfig} index {i}");
                assert_eq!(h.lowest_equivalent(v), v, "sigfig {sigfig} index {i}");
            }
        }
    }
}
