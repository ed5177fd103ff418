//! A circuit breaker per provider: closed → open after `failure_threshold` counted failures in
//! a row → half-open after `cooldown_ms`, where exactly one call probes it → closed when the
//! probe succeeds, open again (for another `cooldown_ms`) when it fails.
//!
//! What counts ([`counts_against`]): timeouts (stalls included), network failures, upstream
//! errors, empty answers, protocol breaks, and the statuses that say the provider is unwell
//! (408, 429, 5xx). What does not: the caller's abort, and the other 4xx (a 400 says the
//! request was wrong, not the provider). A call that does not count neither breaks a streak
//! nor extends it; a probe that ends that way gives its turn back, so the next call probes.
//! An answer cut short after text (a partial answer) counts as a failure: that is a stall.

use crate::core::deadline::Millis;
use crate::core::policy::Failure;

/// The `breaker` option, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Counted failures in a row that open the breaker (default 5).
    pub failure_threshold: u32,
    /// How long it stays open before one call may probe (default 30 000 ms).
    pub cooldown_ms: Millis,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_threshold: 5,
            cooldown_ms: 30_000.0,
        }
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, PartialEq)]
pub enum BreakerState {
    /// Calls go through; `failures` counted failures in a row so far.
    Closed {
        /// The current streak.
        failures: u32,
    },
    /// Calls are skipped until `until`.
    Open {
        /// When one call may probe.
        until: Millis,
        /// The failure kind that opened it last (`"timeout"`, `"http"`, …).
        why: &'static str,
    },
    /// The cool-down is over: one call probes; `probing` while it runs.
    HalfOpen {
        /// Whether the probe is out (others are skipped meanwhile).
        probing: bool,
        /// The failure kind that opened it last.
        why: &'static str,
    },
}

/// What a call may do with a provider.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Go ahead (closed).
    Allowed,
    /// Go ahead as the one probe (half-open): report how it went.
    Probe,
    /// Skip this provider: it is open until `until` (or half-open with its probe out, then
    /// `until` is `None`), because of `why`.
    Skip {
        /// When it may be asked again, if known.
        until: Option<Millis>,
        /// The failure kind that opened it.
        why: &'static str,
    },
}

/// What a breaker stands on, without its streak or its probe: what the edge worker's isolates
/// share ([`super::shared`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Calls go through.
    Closed,
    /// Skipped until `until`, because of `why`.
    Open {
        /// When one call may probe.
        until: Millis,
        /// The failure kind that opened it.
        why: &'static str,
    },
    /// The cool-down is over; a probe decides.
    HalfOpen,
}

/// How a call to the provider went, for the breaker.
#[derive(Debug, Clone, PartialEq)]
pub enum CallReport {
    /// A complete answer.
    Success,
    /// It failed (or was cut after text) with this failure.
    Failed(Failure),
}

/// Whether `failure` says the provider is unwell (see the module documentation).
pub fn counts_against(failure: &Failure) -> bool {
    match failure {
        Failure::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
        Failure::Aborted | Failure::Skipped => false,
        Failure::Timeout(_)
        | Failure::Upstream
        | Failure::Empty
        | Failure::Protocol
        | Failure::Network => true,
    }
}

/// One provider's breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            settings,
            state: BreakerState::Closed { failures: 0 },
        }
    }

    /// Where it is at `now` (an open breaker whose cool-down is over reads as half-open).
    pub fn state(&self, now: Millis) -> BreakerState {
        match self.state {
            BreakerState::Open { until, why } if now >= until => BreakerState::HalfOpen {
                probing: false,
                why,
            },
            ref state => state.clone(),
        }
    }

    /// `"closed"`, `"open"` or `"half-open"` at `now`.
    pub fn state_name(&self, now: Millis) -> &'static str {
        match self.state(now) {
            BreakerState::Closed { .. } => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half-open",
        }
    }

    /// A call wants the provider at `now`. A half-open breaker admits exactly one probe: the
    /// first caller gets [`Admission::Probe`], every other one is skipped until it reports.
    pub fn admit(&mut self, now: Millis) -> Admission {
        self.state = self.state(now);
        match &mut self.state {
            BreakerState::Closed { .. } => Admission::Allowed,
            BreakerState::Open { until, why } => Admission::Skip {
                until: Some(*until),
                why,
            },
            BreakerState::HalfOpen { probing: true, why } => Admission::Skip { until: None, why },
            BreakerState::HalfOpen { probing, .. } => {
                *probing = true;
                Admission::Probe
            }
        }
    }

    /// What it stands on now (an open breaker whose cool-down is over still reads as open
    /// until a call asks for it).
    pub fn decision(&self) -> Decision {
        match self.state {
            BreakerState::Closed { .. } => Decision::Closed,
            BreakerState::Open { until, why } => Decision::Open { until, why },
            BreakerState::HalfOpen { .. } => Decision::HalfOpen,
        }
    }

    /// At `now`, adopts `decision`, made elsewhere at `at`: an open one still running opens this
    /// breaker until then (or longer, if it is open longer already), unless its probe is out (the
    /// probe decides); a closed one made after this breaker opened closes it. A half-open
    /// breaker is closed only by its own probe: when it opened is no longer known.
    pub fn adopt(&mut self, now: Millis, at: Millis, decision: Decision) {
        match (decision, &self.state) {
            (Decision::Open { until, .. }, _) if until <= now => {}
            (_, BreakerState::HalfOpen { probing: true, .. }) => {}
            (Decision::Open { until: ours, .. }, BreakerState::Open { until, .. })
                if *until >= ours => {}
            (Decision::Open { until, why }, _) => self.state = BreakerState::Open { until, why },
            (Decision::Closed, BreakerState::Open { until, .. })
                if at > until - self.settings.cooldown_ms =>
            {
                self.state = BreakerState::Closed { failures: 0 }
            }
            (Decision::Closed | Decision::HalfOpen, _) => {}
        }
    }

    /// A call admitted earlier ended at `now` as `report`.
    pub fn report(&mut self, now: Millis, report: &CallReport) {
        let counted = match report {
            CallReport::Success => None,
            CallReport::Failed(failure) if counts_against(failure) => Some(failure.kind()),
            CallReport::Failed(_) => {
                // Neither health nor sickness: a probe gives its turn back.
                if let BreakerState::HalfOpen { probing, .. } = &mut self.state {
                    *probing = false;
                }
                return;
            }
        };
        let open = |why| BreakerState::Open {
            until: now + self.settings.cooldown_ms,
            why,
        };
        self.state = match (counted, &self.state) {
            (None, _) => BreakerState::Closed { failures: 0 },
            (Some(why), BreakerState::Closed { failures }) => {
                let failures = failures + 1;
                if failures >= self.settings.failure_threshold.max(1) {
                    open(why)
                } else {
                    BreakerState::Closed { failures }
                }
            }
            (Some(why), BreakerState::HalfOpen { .. }) => open(why),
            // A call admitted before the breaker opened, ending after: it stays open, from now.
            (Some(why), BreakerState::Open { .. }) => open(why),
        };
    }
}
