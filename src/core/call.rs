//! One `generate()` call across its failover chain: which provider to ask, with which
//! deadlines, and what to do after each attempt, as a clock-free state machine.
//!
//! The edge loops: [`CallPlan::begin_attempt`] → run the request → [`CallPlan::finish_attempt`]
//! with the attempt's [`Outcome`] → act on the returned [`Next`]. Everything it needs to
//! resolve or reject the call (the attempt log, the error's fields) comes from here.

use crate::core::answer::Outcome;
use crate::core::deadline::{AttemptDeadlines, Expired, Millis, Timeouts};
use crate::core::policy::{decide, Decision, Failure, RetryPolicy};

/// What the plan knows of one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderLimits {
    /// The provider's name (for events and the attempt log).
    pub name: String,
    /// Its deadlines (call defaults with its own overrides applied).
    pub timeouts: Timeouts,
    /// Its retry allowance.
    pub max_retries: u32,
}

/// One line of the attempt log (`result.attempts`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Attempt", optional_fields))]
pub struct AttemptRecord {
    /// Provider name.
    pub provider: String,
    /// `"complete"`, `"partial"`, or the failure kind (`"timeout"`, `"http"`, …).
    pub outcome: String,
    /// HTTP status, when headers arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// How long the attempt took.
    pub elapsed_ms: f64,
}

/// What the edge does after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Resolve with the attempt's answer (`partial` set when it was cut short).
    Resolve {
        /// The failure that cut it short, for a partial answer.
        cause: Option<Failure>,
    },
    /// Wait, then ask the same provider again.
    Retry {
        /// The wait.
        delay_ms: Millis,
    },
    /// Ask the next provider now.
    Failover {
        /// Index of the provider to ask.
        to: usize,
    },
    /// Reject the call with this failure.
    Reject(Failure),
}

/// The state of one call.
#[derive(Debug, Clone)]
pub struct CallPlan {
    providers: Vec<ProviderLimits>,
    policy: RetryPolicy,
    started: Millis,
    service_deadline: Millis,
    index: usize,
    retries_done: u32,
    attempts: Vec<AttemptRecord>,
}

impl CallPlan {
    /// A call started at `now` that must end by `now + service_ms`.
    pub fn new(
        now: Millis,
        providers: Vec<ProviderLimits>,
        policy: RetryPolicy,
        service_ms: Millis,
    ) -> Self {
        CallPlan {
            providers,
            policy,
            started: now,
            service_deadline: now + service_ms,
            index: 0,
            retries_done: 0,
            attempts: Vec::new(),
        }
    }

    /// The provider to ask now (index into the chain).
    pub fn provider_index(&self) -> usize {
        self.index
    }

    /// 1 for the first attempt at the current provider, 2 for its first retry, …
    pub fn attempt_number(&self) -> u32 {
        self.retries_done + 1
    }

    /// When the call must be over.
    pub fn service_deadline(&self) -> Millis {
        self.service_deadline
    }

    /// When the call began.
    pub fn started(&self) -> Millis {
        self.started
    }

    /// What is left of the service deadline at `now`.
    pub fn time_left(&self, now: Millis) -> Millis {
        self.service_deadline - now
    }

    /// The attempt log so far.
    pub fn attempts(&self) -> &[AttemptRecord] {
        &self.attempts
    }

    /// Deadlines for an attempt at the current provider whose request is sent at `now`.
    pub fn begin_attempt(&self, now: Millis) -> AttemptDeadlines {
        AttemptDeadlines::start(
            now,
            self.providers[self.index].timeouts,
            self.service_deadline,
        )
    }

    /// The call's service deadline passed before an attempt could begin (during a back-off).
    pub fn service_expired(&self, now: Millis) -> Option<Expired> {
        (now >= self.service_deadline).then_some(Expired {
            layer: crate::core::deadline::Layer::Service,
            phase: crate::core::deadline::Phase::Headers,
            due: self.service_deadline,
        })
    }

    /// Logs an attempt of provider `index` without deciding anything on it: one of two hedged
    /// attempts that lost the race or failed while the other ran, or one a cancel cut off.
    pub fn record(
        &mut self,
        index: usize,
        outcome: &Outcome,
        status: Option<u16>,
        attempt_started: Millis,
        now: Millis,
    ) {
        let label = match outcome {
            Outcome::Complete => "complete".to_owned(),
            Outcome::Partial(_) => "partial".to_owned(),
            Outcome::Failed(Failure::Skipped) => "skipped".to_owned(),
            Outcome::Failed(failure) => failure.kind().to_owned(),
        };
        self.attempts.push(AttemptRecord {
            provider: self.providers[index].name.clone(),
            outcome: label,
            status,
            elapsed_ms: now - attempt_started,
        });
    }

    /// Makes provider `index` the current one without an attempt decided on (a hedged attempt
    /// that took over, or a continuation asked of the next provider). Moving to another
    /// provider starts its retries from none; staying changes nothing.
    pub fn switch_to(&mut self, index: usize) {
        if index != self.index {
            self.index = index;
            self.retries_done = 0;
        }
    }

    /// Record how the current attempt went and decide what follows.
    /// `jitter` is a uniform draw from `[0, 1)` for the back-off.
    pub fn finish_attempt(
        &mut self,
        outcome: &Outcome,
        status: Option<u16>,
        attempt_started: Millis,
        now: Millis,
        jitter: f64,
    ) -> Next {
        self.record(self.index, outcome, status, attempt_started, now);
        let provider = &self.providers[self.index];
        let failure = match outcome {
            Outcome::Complete => return Next::Resolve { cause: None },
            Outcome::Partial(failure) => {
                return Next::Resolve {
                    cause: Some(failure.clone()),
                }
            }
            Outcome::Failed(failure) => failure,
        };
        let has_next = self.index + 1 < self.providers.len();
        match decide(
            failure,
            &self.policy,
            provider.max_retries,
            self.retries_done,
            has_next,
            self.time_left(now),
            jitter,
        ) {
            Decision::Retry { delay_ms } => {
                self.retries_done += 1;
                Next::Retry { delay_ms }
            }
            Decision::Failover => {
                self.index += 1;
                self.retries_done = 0;
                Next::Failover { to: self.index }
            }
            Decision::Stop => Next::Reject(failure.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::deadline::{Layer, Phase};

    fn provider(name: &str, retries: u32) -> ProviderLimits {
        ProviderLimits {
            name: name.into(),
            timeouts: Timeouts {
                headers_ms: 100.0,
                first_token_ms: 200.0,
                idle_ms: 100.0,
                stream_ms: 1_000.0,
                service_ms: 3_000.0,
            },
            max_retries: retries,
        }
    }

    fn timeout(layer: Layer, phase: Phase) -> Outcome {
        Outcome::Failed(Failure::Timeout(Expired {
            layer,
            phase,
            due: 0.0,
        }))
    }

    #[test]
    fn a_stalled_first_provider_fails_over_and_the_second_answers() {
        let mut plan = CallPlan::new(
            0.0,
            vec![provider("a", 2), provider("b", 2)],
            RetryPolicy::default(),
            3_000.0,
        );
        let d = plan.begin_attempt(0.0);
        let due = d.next();
        assert_eq!((due.phase, due.due), (Phase::Headers, 100.0));
        let next = plan.finish_attempt(
            &timeout(Layer::Provider, Phase::FirstToken),
            Some(200),
            0.0,
            200.0,
            0.5,
        );
        assert_eq!(next, Next::Failover { to: 1 });
        assert_eq!(plan.provider_index(), 1);
        assert_eq!(plan.attempt_number(), 1);
        let next = plan.finish_attempt(&Outcome::Complete, Some(200), 200.0, 450.0, 0.5);
        assert_eq!(next, Next::Resolve { cause: None });
        let log: Vec<(&str, &str, f64)> = plan
            .attempts()
            .iter()
            .map(|a| (a.provider.as_str(), a.outcome.as_str(), a.elapsed_ms))
            .collect();
        assert_eq!(log, [("a", "timeout", 200.0), ("b", "complete", 250.0)]);
    }

    #[test]
    fn retries_are_per_provider_and_reset_on_failover() {
        let mut plan = CallPlan::new(
            0.0,
            vec![provider("a", 1), provider("b", 1)],
            RetryPolicy::default(),
            3_000.0,
        );
        let busy = Outcome::Failed(Failure::Http {
            status: 503,
            retry_after_ms: Some(10.0),
        });
        assert_eq!(
            plan.finish_attempt(&busy, Some(503), 0.0, 5.0, 0.5),
            Next::Retry { delay_ms: 10.0 }
        );
        assert_eq!(plan.attempt_number(), 2);
        assert_eq!(
            plan.finish_attempt(&busy, Some(503), 15.0, 20.0, 0.5),
            Next::Failover { to: 1 }
        );
        assert_eq!(plan.attempt_number(), 1);
        assert!(matches!(
            plan.finish_attempt(&busy, Some(503), 20.0, 25.0, 0.5),
            Next::Retry { .. }
        ));
        assert_eq!(
            plan.finish_attempt(&busy, Some(503), 40.0, 45.0, 0.5),
            Next::Reject(Failure::Http {
                status: 503,
                retry_after_ms: Some(10.0)
            })
        );
        assert_eq!(plan.attempts().len(), 4);
    }

    #[test]
    fn a_partial_answer_resolves_without_failing_over() {
        let mut plan = CallPlan::new(
            0.0,
            vec![provider("a", 2), provider("b", 2)],
            RetryPolicy::default(),
            3_000.0,
        );
        let cut = Outcome::Partial(Failure::Timeout(Expired {
            layer: Layer::Provider,
            phase: Phase::Idle,
            due: 0.0,
        }));
        assert!(matches!(
            plan.finish_attempt(&cut, Some(200), 0.0, 300.0, 0.5),
            Next::Resolve { cause: Some(_) }
        ));
        assert_eq!(plan.attempts()[0].outcome, "partial");
    }

    #[test]
    fn attempts_are_clipped_to_the_service_deadline() {
        let plan = CallPlan::new(
            1_000.0,
            vec![provider("a", 0)],
            RetryPolicy::default(),
            150.0,
        );
        let d = plan.begin_attempt(1_050.0);
        let next = d.next();
        assert_eq!((next.layer, next.due), (Layer::Service, 1_150.0));
        assert!(plan.service_expired(1_149.0).is_none());
        assert_eq!(
            plan.service_expired(1_150.0).map(|e| e.layer),
            Some(Layer::Service)
        );
    }

    #[test]
    fn a_bad_request_rejects_at_once() {
        let mut plan = CallPlan::new(
            0.0,
            vec![provider("a", 2), provider("b", 2)],
            RetryPolicy::default(),
            3_000.0,
        );
        let bad = Outcome::Failed(Failure::Http {
            status: 400,
            retry_after_ms: None,
        });
        assert!(matches!(
            plan.finish_attempt(&bad, Some(400), 0.0, 5.0, 0.5),
            Next::Reject(_)
        ));
    }
}
