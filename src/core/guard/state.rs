//! A long-lived guard's state across calls (the `Guard` class's core): before a call, at `now`,
//! it adjusts the call's configuration (learned deadlines per provider and model, providers
//! skipped by an open breaker, the hedge wait with `"auto"` resolved) and makes the call's
//! [`Generation`]; after the call it learns from what each attempt showed and reports to the
//! breakers; [`GuardState::stats`] says what it knows.
//!
//! Learned deadlines ([`super::learned`]): every attempt that showed progress adds its time to
//! first token, and every answer with two progresses or more adds its *longest* silence between
//! two of them (the idle deadline must outlast the longest pause of a healthy answer, not the
//! typical gap between two tokens). Breakers ([`super::breaker`]) are per provider name and hear
//! every attempt (a retry is a request too); a provider a call admitted as the half-open probe
//! but never reached gives its turn back when the call ends.
//!
//! It must never: read a clock (time is an argument), touch a platform API, or hold a key
//! (provider names, models and deadlines only).

use serde::Serialize;

use super::breaker::{Admission, Breaker, BreakerSettings, BreakerState, CallReport, Decision};
use super::learned::{Adaptive, LearnedDeadlines};
use crate::core::deadline::{Millis, Timeouts};
use crate::core::machine::{Generation, GenerationConfig, GuardSettings, Observation, Skip};
use crate::core::policy::Failure;
use crate::core::relay::RelayProvider;

/// `hedge.afterMs`, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeAfter {
    /// A fixed wait in milliseconds.
    Millis(Millis),
    /// The first provider's learned p95 time to first token; no hedge until it is learned.
    Auto,
}

/// A guard's own options (`GuardOptions` but for the providers, deadlines and retries, which
/// `generate()`'s reader reads), resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    /// `adaptive` (on by default; `None`: off, deadlines as configured, though still learned
    /// for `stats()` and `hedge: "auto"`).
    pub adaptive: Option<Adaptive>,
    /// `breaker`.
    pub breaker: BreakerSettings,
    /// `hedge` (off by default).
    pub hedge: Option<HedgeAfter>,
    /// `continuation` (off by default).
    pub continuation: bool,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            adaptive: Some(Adaptive::default()),
            breaker: BreakerSettings::default(),
            hedge: None,
            continuation: false,
        }
    }
}

/// The quantile `hedge: "auto"` waits for.
pub const AUTO_HEDGE_QUANTILE: f64 = 0.95;

/// One provider of the guard's chain, as configured.
#[derive(Debug, Clone, PartialEq)]
struct Known {
    name: String,
    model: String,
    timeouts: Timeouts,
}

/// What a guard keeps across calls: see the module documentation.
#[derive(Debug, Clone)]
pub struct GuardState {
    config: GuardConfig,
    chain: Vec<Known>,
    learned: LearnedDeadlines,
    /// Per provider name (a `Vec`: a chain has a few providers, and no map code is carried).
    breakers: Vec<(String, Breaker)>,
}

/// What [`GuardState::start`] decided for one call, to hand back to [`GuardState::finish`].
#[derive(Debug, Clone, PartialEq)]
pub struct GuardedCall {
    /// The call's providers (name, model), by index in its chain.
    chain: Vec<(String, String)>,
    /// Providers admitted as their breaker's one half-open probe.
    probes: Vec<String>,
}

impl GuardState {
    /// A guard over `chain` (its providers as configured) that has learned nothing yet.
    pub fn new(config: GuardConfig, chain: &GenerationConfig) -> GuardState {
        let known = chain.providers.iter().map(|p| Known {
            name: p.name.clone(),
            model: p.model.clone(),
            timeouts: p.timeouts,
        });
        GuardState::over(config, known.collect())
    }

    fn over(config: GuardConfig, chain: Vec<Known>) -> GuardState {
        GuardState {
            learned: LearnedDeadlines::new(config.adaptive.unwrap_or_default()),
            config,
            chain,
            breakers: Vec::new(),
        }
    }

    /// The call configured by `config` begins at `now`: its generation, with the learned
    /// deadlines applied, the providers whose breaker is open skipped, and hedging and
    /// continuation set; and what to hand to [`GuardState::finish`] when it is over.
    pub fn start(
        &mut self,
        now: Millis,
        mut config: GenerationConfig,
    ) -> (Generation, GuardedCall) {
        let mut skips = Vec::new();
        let mut probes = Vec::new();
        let mut first_asked = None;
        for (index, provider) in config.providers.iter_mut().enumerate() {
            match self.breaker(&provider.name).admit(now) {
                Admission::Skip { until, why } => {
                    let retry_in_ms = until.map(|until| (until - now).max(0.0));
                    skips.push((
                        index,
                        Skip {
                            reason: why,
                            retry_in_ms,
                        },
                    ));
                    continue;
                }
                Admission::Probe => probes.push(provider.name.clone()),
                Admission::Allowed => {}
            }
            first_asked.get_or_insert(index);
            if self.config.adaptive.is_some() {
                provider.timeouts =
                    self.learned
                        .timeouts(&provider.name, &provider.model, provider.timeouts);
            }
        }
        let hedge_after_ms = match self.config.hedge {
            None => None,
            Some(HedgeAfter::Millis(ms)) => Some(ms),
            Some(HedgeAfter::Auto) => first_asked.and_then(|index| {
                let p = &config.providers[index];
                self.learned_first_token(&p.name, &p.model, AUTO_HEDGE_QUANTILE)
            }),
        };
        let settings = GuardSettings {
            hedge_after_ms,
            continuation: self.config.continuation,
        };
        let call = GuardedCall {
            chain: config
                .providers
                .iter()
                .map(|p| (p.name.clone(), p.model.clone()))
                .collect(),
            probes,
        };
        let mut generation = Generation::guarded(config, settings);
        for (index, skip) in skips {
            generation.skip(index, skip);
        }
        (generation, call)
    }

    /// A call of the guard's `fetch` begins at `now` with the guard's providers as `fallbacks`
    /// (after the request's own endpoint, which is not one of them and is not learned): those
    /// whose breaker is open are left out (each with its model and why, for the `skipped`
    /// event), the others get the learned deadlines; and what to hand to
    /// [`GuardState::finish`] with [`crate::core::relay::Relay::observations`].
    pub fn start_fetch(
        &mut self,
        now: Millis,
        fallbacks: Vec<RelayProvider>,
    ) -> (Vec<RelayProvider>, Vec<(String, String, Skip)>, GuardedCall) {
        self.start_relay_chain(now, fallbacks, true)
    }

    /// A guard over a proxy's chain (the edge worker's `LSG_GUARD`): the providers as
    /// configured, in order, that has learned nothing yet.
    pub fn for_relay(config: GuardConfig, chain: &[RelayProvider]) -> GuardState {
        let known = chain.iter().map(|p| Known {
            name: p.name.clone(),
            model: p.model.clone(),
            timeouts: p.timeouts,
        });
        GuardState::over(config, known.collect())
    }

    /// A proxy's request begins at `now` with `targets` (every one a provider of the guard,
    /// the relay's targets in order): as [`GuardState::start_fetch`] does for fallbacks.
    pub fn start_relay(
        &mut self,
        now: Millis,
        targets: Vec<RelayProvider>,
    ) -> (Vec<RelayProvider>, Vec<(String, String, Skip)>, GuardedCall) {
        self.start_relay_chain(now, targets, false)
    }

    fn start_relay_chain(
        &mut self,
        now: Millis,
        fallbacks: Vec<RelayProvider>,
        own_endpoint: bool,
    ) -> (Vec<RelayProvider>, Vec<(String, String, Skip)>, GuardedCall) {
        let mut kept = Vec::with_capacity(fallbacks.len());
        let mut skipped = Vec::new();
        let mut probes = Vec::new();
        for mut provider in fallbacks {
            match self.breaker(&provider.name).admit(now) {
                Admission::Skip { until, why } => {
                    let retry_in_ms = until.map(|until| (until - now).max(0.0));
                    let skip = Skip {
                        reason: why,
                        retry_in_ms,
                    };
                    skipped.push((provider.name, provider.model, skip));
                    continue;
                }
                Admission::Probe => probes.push(provider.name.clone()),
                Admission::Allowed => {}
            }
            if self.config.adaptive.is_some() {
                provider.timeouts =
                    self.learned
                        .timeouts(&provider.name, &provider.model, provider.timeouts);
            }
            kept.push(provider);
        }
        // A fetch's target 0 is the request's own endpoint: named "" so that nothing is
        // learned of it.
        let own = own_endpoint.then(|| (String::new(), String::new()));
        let chain = own
            .into_iter()
            .chain(kept.iter().map(|p| (p.name.clone(), p.model.clone())))
            .collect();
        (kept, skipped, GuardedCall { chain, probes })
    }

    /// The call `call` ended at `now`; its attempts showed `observations`
    /// ([`Generation::observations`], or a relay's for a call of the guard's `fetch`).
    pub fn finish(&mut self, now: Millis, call: GuardedCall, observations: &[Observation]) {
        for seen in observations {
            let Some((name, model)) = call.chain.get(seen.provider) else {
                continue;
            };
            if name.is_empty() {
                continue; // a fetch's own endpoint
            }
            let learned = self.learned.entry(name, model);
            if let Some(ms) = seen.first_token_ms {
                learned.record_first_token(ms);
            }
            if let Some(ms) = seen.longest_gap_ms {
                learned.record_gap(ms);
            }
            let report = match &seen.failure {
                None => CallReport::Success,
                Some(failure) => CallReport::Failed(failure.clone()),
            };
            self.breaker(name).report(now, &report);
        }
        for name in call.probes {
            let reached = observations.iter().any(|seen| {
                call.chain
                    .get(seen.provider)
                    .is_some_and(|(n, _)| *n == name)
            });
            if !reached {
                // Neither health nor sickness: the next call probes instead.
                self.breaker(&name)
                    .report(now, &CallReport::Failed(Failure::Aborted));
            }
        }
    }

    /// What each breaker of the chain stands on (the edge worker shares these between its
    /// isolates: [`super::shared`]), in chain order.
    pub fn decisions(&self) -> Vec<(String, Decision)> {
        self.chain
            .iter()
            .map(|known| {
                let decision = self
                    .breakers
                    .iter()
                    .find(|(n, _)| *n == known.name)
                    .map_or(Decision::Closed, |(_, b)| b.decision());
                (known.name.clone(), decision)
            })
            .collect()
    }

    /// At `now`, adopts the decision about `provider`'s breaker made elsewhere at `at` (see
    /// [`Breaker::adopt`]); a provider that is not of the chain is ignored.
    pub fn adopt(&mut self, now: Millis, provider: &str, at: Millis, decision: Decision) {
        if self.chain.iter().any(|known| known.name == provider) {
            self.breaker(provider).adopt(now, at, decision);
        }
    }

    /// What the guard knows at `now`, one entry per provider of its chain, in order.
    pub fn stats(&self, now: Millis) -> Vec<ProviderStats> {
        self.chain
            .iter()
            .map(|known| {
                let learned = self.learned.get(&known.name, &known.model);
                let quantiles = |gaps: bool| {
                    let sketch = learned.map(|l| if gaps { &l.gaps } else { &l.first_token })?;
                    Some(Quantiles {
                        p50: sketch.quantile(0.5)?,
                        p95: sketch.quantile(0.95)?,
                        p99: sketch.quantile(0.99)?,
                    })
                };
                let adaptive = self.config.adaptive.as_ref();
                let deadline = |idle: bool| {
                    let (learned, adaptive) = (learned?, adaptive?);
                    let ms = match idle {
                        false => learned.learned_first_token_ms(adaptive)?,
                        true => learned.learned_idle_ms(adaptive)?,
                    };
                    let configured = match idle {
                        false => known.timeouts.first_token_ms,
                        true => known.timeouts.idle_ms,
                    };
                    Some(ms.min(configured))
                };
                ProviderStats {
                    provider: known.name.clone(),
                    model: known.model.clone(),
                    samples: learned.map_or(0, |l| l.samples),
                    first_token_ms: quantiles(false),
                    gap_ms: quantiles(true),
                    learned: LearnedTimeouts {
                        first_token_ms: deadline(false),
                        idle_ms: deadline(true),
                    },
                    breaker: self.breaker_stats(&known.name, now),
                }
            })
            .collect()
    }

    /// The `q` quantile of `provider`'s first-token times with `model`, once learned (as many
    /// samples as `adaptive.minSamples` asks, its default when adaptive is off).
    fn learned_first_token(&self, provider: &str, model: &str, q: f64) -> Option<Millis> {
        let learned = self.learned.get(provider, model)?;
        (learned.samples >= self.learned.adaptive.min_samples.max(1))
            .then(|| learned.first_token.quantile(q))
            .flatten()
    }

    fn breaker(&mut self, name: &str) -> &mut Breaker {
        let at = match self.breakers.iter().position(|(n, _)| n == name) {
            Some(at) => at,
            None => {
                let breaker = Breaker::new(self.config.breaker);
                self.breakers.push((name.to_owned(), breaker));
                self.breakers.len() - 1
            }
        };
        &mut self.breakers[at].1
    }

    fn breaker_stats(&self, name: &str, now: Millis) -> BreakerStats {
        let state = self
            .breakers
            .iter()
            .find(|(n, _)| n == name)
            .map_or(BreakerState::Closed { failures: 0 }, |(_, b)| b.state(now));
        let (state, failures, reason, retry_in_ms) = match state {
            BreakerState::Closed { failures } => ("closed", failures, None, None),
            BreakerState::Open { until, why } => ("open", 0, Some(why), Some(until - now)),
            BreakerState::HalfOpen { why, .. } => ("half-open", 0, Some(why), None),
        };
        BreakerStats {
            state,
            failures: f64::from(failures),
            reason,
            retry_in_ms,
        }
    }
}

/// Three quantiles of a learned distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Quantiles {
    /// The median.
    pub p50: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
}

/// The deadlines a guard learned and uses now (configured ones when absent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
pub struct LearnedTimeouts {
    /// `firstTokenMs` in force, once learned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token_ms: Option<Millis>,
    /// `idleMs` in force, once learned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<Millis>,
}

/// A provider's breaker, as `stats()` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
pub struct BreakerStats {
    /// `"closed"`, `"open"` or `"half-open"`.
    #[cfg_attr(test, ts(type = "\"closed\" | \"open\" | \"half-open\""))]
    pub state: &'static str,
    /// Counted failures in a row (closed).
    pub failures: f64,
    /// The failure kind that opened it (open, half-open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// How long until one call may probe it (open).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<Millis>,
}

/// What a guard knows about one provider and model (`Guard.stats()`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
pub struct ProviderStats {
    /// The provider's name.
    pub provider: String,
    /// Its model.
    pub model: String,
    /// Attempts whose time to first token was learned.
    #[serde(with = "crate::core::contract::number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub samples: u64,
    /// Times to first token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token_ms: Option<Quantiles>,
    /// The longest silence between two progresses of each answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap_ms: Option<Quantiles>,
    /// The deadlines learned and in force.
    pub learned: LearnedTimeouts,
    /// Its breaker.
    pub breaker: BreakerStats,
}
