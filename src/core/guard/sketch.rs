//! A streaming quantile sketch with bounded memory and a bounded relative error.
//!
//! Values (milliseconds) go into logarithmic buckets: bucket `i` holds the values in
//! `(γ^(i-1), γ^i]` with `γ = (1 + α) / (1 - α)`, and a quantile is answered with the middle of
//! its bucket, `2γ^i / (γ + 1)`, which is within a relative error `α` of every value in the
//! bucket (the DDSketch construction). With `α` = 1 % and values clamped to
//! [`MIN_VALUE`, `MAX_VALUE`] there are at most [`MAX_BUCKETS`] buckets, whatever was recorded:
//! memory is bounded by construction. Values below [`MIN_VALUE`] (a zero, a clock reading that
//! did not move) share one bucket answered as [`MIN_VALUE`].
//!
//! The quantile is the nearest-rank one: the smallest recorded value `v` such that at least
//! `⌈q·n⌉` values are `≤ v`, answered within `α` of it.

/// The relative accuracy of every answer.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Values at or below this share the lowest bucket (0.1 ms).
pub const MIN_VALUE: f64 = 0.1;
/// Values above this are recorded as this (about 27.8 hours).
pub const MAX_VALUE: f64 = 1e8;
/// The most buckets a sketch can hold: `log_γ(MAX_VALUE / MIN_VALUE)` plus the low bucket.
pub const MAX_BUCKETS: usize = 1_040;

/// A quantile sketch of durations in milliseconds (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantileSketch {
    /// Count per bucket index, sorted by index (the low bucket is `i16::MIN`). A sorted `Vec`,
    /// not a map: at most [`MAX_BUCKETS`] entries, and no map code in the module.
    buckets: Vec<(i16, u64)>,
    count: u64,
}

const LOW_BUCKET: i16 = i16::MIN;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

fn bucket_of(value: f64) -> i16 {
    if value.is_nan() || value <= MIN_VALUE {
        return LOW_BUCKET;
    }
    let value = value.min(MAX_VALUE);
    (value.ln() / gamma().ln()).ceil() as i16
}

fn value_of(bucket: i16) -> f64 {
    if bucket == LOW_BUCKET {
        return MIN_VALUE;
    }
    let g = gamma();
    2.0 * g.powi(i32::from(bucket)) / (g + 1.0)
}

impl QuantileSketch {
    /// An empty sketch.
    pub fn new() -> QuantileSketch {
        QuantileSketch::default()
    }

    /// Records one value (negative, zero and NaN values count as the lowest bucket).
    pub fn record(&mut self, value: f64) {
        let bucket = bucket_of(value);
        match self.buckets.binary_search_by_key(&bucket, |&(b, _)| b) {
            Ok(at) => self.buckets[at].1 += 1,
            Err(at) => self.buckets.insert(at, (bucket, 1)),
        }
        self.count += 1;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Buckets in use (never more than [`MAX_BUCKETS`]).
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The `q` quantile (`0 ≤ q ≤ 1`, clamped), within [`RELATIVE_ACCURACY`] of the exact
    /// nearest-rank quantile; `None` when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        // Nearest rank: the ⌈q·n⌉-th smallest value (at least the first).
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(bucket, count) in &self.buckets {
            seen += count;
            if seen >= rank {
                return Some(value_of(bucket));
            }
        }
        self.buckets.last().map(|&(b, _)| value_of(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_bound_covers_the_value_range() {
        let highest = bucket_of(MAX_VALUE) as i64;
        let lowest = bucket_of(MIN_VALUE * 1.000_001) as i64;
        assert!((highest - lowest + 2) as usize <= MAX_BUCKETS);
    }

    #[test]
    fn an_empty_sketch_knows_nothing() {
        assert_eq!(QuantileSketch::new().quantile(0.5), None);
    }
}
