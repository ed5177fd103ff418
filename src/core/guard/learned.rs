//! Deadlines learned per provider and model: first-token times and inter-token gaps are
//! recorded online in [`QuantileSketch`]es; once `min_samples` calls were seen, `firstTokenMs`
//! and `idleMs` become `factor ×` the learned quantile, never above the configured values and
//! never below [`Adaptive::floor_ms`].
//!
//! The rule, in order: `learned = factor × quantile`; `max(learned, floor)`;
//! `min(that, configured)`. The configured value is a ceiling that always wins, even over the
//! floor (a caller who configured 100 ms gets 100 ms). Until `min_samples` calls were seen,
//! or when no gap was ever seen (one-chunk answers), the configured value stands.

use super::sketch::QuantileSketch;
use crate::core::deadline::{Millis, Timeouts};

/// The `adaptive` option, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    /// The quantile learned (default 0.95).
    pub quantile: f64,
    /// The multiple of it that becomes the deadline (default 3).
    pub factor: f64,
    /// Calls seen before a learned deadline is used (default 20).
    pub min_samples: u64,
    /// The least a learned deadline can be (default 250 ms): a burst of fast answers must not
    /// make the guard give up on the first slow-but-healthy one.
    pub floor_ms: Millis,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive {
            quantile: 0.95,
            factor: 3.0,
            min_samples: 20,
            floor_ms: 250.0,
        }
    }
}

/// What was learned about one provider and model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Learned {
    /// Time from request to first progress, per call that had one.
    pub first_token: QuantileSketch,
    /// Time between two progresses of one answer.
    pub gaps: QuantileSketch,
    /// Calls whose first token was recorded.
    pub samples: u64,
}

impl Learned {
    /// One call's first progress came `first_token_ms` after its request.
    pub fn record_first_token(&mut self, first_token_ms: Millis) {
        self.first_token.record(first_token_ms);
        self.samples += 1;
    }

    /// One gap between two progresses of an answer.
    pub fn record_gap(&mut self, gap_ms: Millis) {
        self.gaps.record(gap_ms);
    }

    /// The learned first-token deadline, once `min_samples` calls were seen (before the
    /// configured ceiling is applied).
    pub fn learned_first_token_ms(&self, adaptive: &Adaptive) -> Option<Millis> {
        self.learned(&self.first_token, adaptive)
    }

    /// The learned idle deadline, once `min_samples` calls were seen and gaps were recorded.
    pub fn learned_idle_ms(&self, adaptive: &Adaptive) -> Option<Millis> {
        self.learned(&self.gaps, adaptive)
    }

    fn learned(&self, sketch: &QuantileSketch, adaptive: &Adaptive) -> Option<Millis> {
        if self.samples < adaptive.min_samples.max(1) {
            return None;
        }
        let quantile = sketch.quantile(adaptive.quantile)?;
        Some((adaptive.factor * quantile).max(adaptive.floor_ms))
    }

    /// `configured` with the learned first-token and idle deadlines applied: each is
    /// `min(max(factor × quantile, floor), configured)`; every other deadline as configured.
    pub fn timeouts(&self, configured: Timeouts, adaptive: &Adaptive) -> Timeouts {
        let cap = |learned: Option<Millis>, configured: Millis| {
            learned.map_or(configured, |learned| learned.min(configured))
        };
        Timeouts {
            first_token_ms: cap(
                self.learned_first_token_ms(adaptive),
                configured.first_token_ms,
            ),
            idle_ms: cap(self.learned_idle_ms(adaptive), configured.idle_ms),
            ..configured
        }
    }
}

/// What was learned, per provider name and model, with a bound on how many pairs are kept
/// (the least-sampled pair gives way to a new one beyond [`LearnedDeadlines::MAX_PAIRS`]).
#[derive(Debug, Clone, Default)]
pub struct LearnedDeadlines {
    /// The settings.
    pub adaptive: Adaptive,
    /// A `Vec`, not a map: a chain has a few pairs, and the module carries no map code.
    pairs: Vec<(String, String, Learned)>,
}

impl LearnedDeadlines {
    /// At most this many provider+model pairs are remembered.
    pub const MAX_PAIRS: usize = 256;

    /// Nothing learned yet.
    pub fn new(adaptive: Adaptive) -> LearnedDeadlines {
        LearnedDeadlines {
            adaptive,
            pairs: Vec::new(),
        }
    }

    /// What was learned about `provider` and `model`, if anything.
    pub fn get(&self, provider: &str, model: &str) -> Option<&Learned> {
        self.pairs
            .iter()
            .find(|(p, m, _)| p == provider && m == model)
            .map(|(_, _, learned)| learned)
    }

    /// The entry for `provider` and `model`, made if new.
    pub fn entry(&mut self, provider: &str, model: &str) -> &mut Learned {
        let found = self
            .pairs
            .iter()
            .position(|(p, m, _)| p == provider && m == model);
        let at = match found {
            Some(at) => at,
            None => {
                if self.pairs.len() >= Self::MAX_PAIRS {
                    let least = (0..self.pairs.len()).min_by_key(|&i| self.pairs[i].2.samples);
                    if let Some(least) = least {
                        self.pairs.remove(least);
                    }
                }
                let learned = Learned::default();
                self.pairs
                    .push((provider.to_owned(), model.to_owned(), learned));
                self.pairs.len() - 1
            }
        };
        &mut self.pairs[at].2
    }

    /// The deadlines for a call to `provider` and `model` configured with `configured`.
    pub fn timeouts(&self, provider: &str, model: &str, configured: Timeouts) -> Timeouts {
        self.get(provider, model).map_or(configured, |learned| {
            learned.timeouts(configured, &self.adaptive)
        })
    }

    /// Every pair and what was learned, in the order they were first seen.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str, &Learned)> {
        self.pairs
            .iter()
            .map(|(p, m, learned)| (p.as_str(), m.as_str(), learned))
    }
}
