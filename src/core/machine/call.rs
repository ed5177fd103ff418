//! The call itself, apart from its mode: the plan across attempts, the back-off's jitter, the
//! providers a guard left out, what every attempt showed, and the two decisions every call
//! makes the same way whatever its mode: whether a provider may be asked, and what follows an
//! attempt that is over (with its events).
//!
//! Not generic: each mode's machine calls the one copy of this code (the web package carries
//! both modes, and their decisions once).

use crate::core::answer::Outcome;
use crate::core::call::{CallPlan, Next, ProviderLimits};
use crate::core::deadline::{AttemptDeadlines, Expired, Millis, WakeAt};
use crate::core::events::{whole, GuardEvent};
use crate::core::policy::{Failure, RetryPolicy};

use super::{AttemptId, Jitter, Observation, Skip, Verdict};

/// How a call is planned: its chain's limits, back-off and deadline.
pub(crate) struct Plan {
    /// Each provider's name and limits, in the chain's order.
    pub limits: Vec<ProviderLimits>,
    /// The model asked of each, in the same order.
    pub models: Vec<String>,
    pub policy: RetryPolicy,
    pub service_ms: Millis,
    pub jitter_seed: u64,
}

/// The call's own state (see the module documentation).
#[derive(Debug)]
pub(crate) struct Call {
    /// Decides between attempts.
    pub plan: CallPlan,
    limits: Vec<ProviderLimits>,
    models: Vec<String>,
    policy: RetryPolicy,
    service_ms: Millis,
    jitter: Jitter,
    next_attempt: u32,
    /// Providers a guard left out of this call, by index.
    skips: Vec<(usize, Skip)>,
    /// What every attempt that ended showed, for a guard.
    pub observed: Vec<Observation>,
}

/// Whether the current provider may be asked.
pub(crate) enum Asking {
    /// The service deadline passed before it could be: this failure, said by this message.
    Expired(Expired, String),
    /// A guard left it out: an attempt that fails at once, said by this message.
    Skipped(AttemptId, AttemptDeadlines, String),
    /// Ask it: announce it with this event, then send.
    Ask(GuardEvent),
}

/// An attempt that is over, as the call judges it.
pub(crate) struct Over<'a> {
    pub provider: usize,
    pub status: Option<u16>,
    pub deadlines: &'a AttemptDeadlines,
    pub at: Millis,
    pub verdict: &'a Verdict,
    /// The provider of an attempt still running beside it (a hedge), if any.
    pub beside: Option<usize>,
}

/// What follows an attempt that is over.
pub(crate) enum Decision {
    /// The call resolves with its answer (cut short by this failure, if any).
    Resolve(Option<Failure>),
    /// Ask again once this has passed.
    Retry(WakeAt),
    /// Ask the next provider.
    Failover,
    /// Nothing is left to try.
    Reject(Failure),
    /// The attempt beside it carries on alone.
    CarryOn,
}

impl Call {
    pub fn new(plan: Plan) -> Call {
        Call {
            // The real plan is made by `start`, at the time it is given.
            plan: CallPlan::new(0.0, Vec::new(), plan.policy, 0.0),
            limits: plan.limits,
            models: plan.models,
            policy: plan.policy,
            service_ms: plan.service_ms,
            jitter: Jitter::new(plan.jitter_seed),
            next_attempt: 0,
            skips: Vec::new(),
            observed: Vec::new(),
        }
    }

    /// The call begins at `now`.
    pub fn start(&mut self, now: Millis) {
        self.plan = CallPlan::new(now, self.limits.clone(), self.policy, self.service_ms);
    }

    /// Leave provider `index` out of this call.
    pub fn skip(&mut self, index: usize, skip: Skip) {
        self.skips.push((index, skip));
    }

    /// The skip of provider `index`, if a guard left it out.
    pub fn skipped_at(&self, index: usize) -> Option<&Skip> {
        self.skips.iter().find(|(i, _)| *i == index).map(|(_, s)| s)
    }

    /// The name of provider `index`.
    pub fn name(&self, index: usize) -> &str {
        &self.limits[index].name
    }

    /// A new attempt's id.
    pub fn next_id(&mut self) -> AttemptId {
        let id = AttemptId(self.next_attempt);
        self.next_attempt += 1;
        id
    }

    /// Notes what an attempt at `provider`, timed by `deadlines`, showed as it ends with
    /// `outcome`.
    pub fn observe(&mut self, provider: usize, deadlines: &AttemptDeadlines, outcome: &Outcome) {
        let failure = match outcome {
            Outcome::Complete => None,
            Outcome::Failed(Failure::Skipped) => return,
            Outcome::Partial(failure) | Outcome::Failed(failure) => Some(failure.clone()),
        };
        self.observed.push(Observation {
            provider,
            failure,
            first_token_ms: deadlines.first_token_ms(),
            longest_gap_ms: deadlines.longest_gap_ms(),
        });
    }

    /// Whether the current provider may be asked at `at`.
    #[inline(never)]
    pub fn ask(&mut self, at: Millis) -> Asking {
        let index = self.plan.provider_index();
        let name = self.name(index);
        if let Some(expired) = self.plan.service_expired(at) {
            let message = format!(
                "service timeout: {} ms passed before {name} could be asked",
                whole(self.service_ms),
            );
            return Asking::Expired(expired, message);
        }
        if let Some(skip) = self.skipped_at(index) {
            // Nothing is sent: the call passes over it as over an attempt that failed at once.
            let message = format!(
                "{name} skipped: its breaker is open (after failures of kind {})",
                skip.reason
            );
            let deadlines = self.plan.begin_attempt(at);
            return Asking::Skipped(self.next_id(), deadlines, message);
        }
        Asking::Ask(GuardEvent::RequestStart {
            provider: name.to_owned(),
            model: self.models[index].clone(),
            attempt: self.plan.attempt_number(),
        })
    }

    /// An attempt is over: its events (into `events`, in order), what it showed, and what
    /// follows it.
    #[inline(never)]
    pub fn judge(&mut self, over: Over<'_>, events: &mut Vec<GuardEvent>) -> Decision {
        let Over {
            provider,
            status,
            deadlines,
            at,
            verdict,
            beside,
        } = over;
        let outcome = &verdict.outcome;
        let name = self.name(provider).to_owned();
        if let (Outcome::Failed(Failure::Skipped), Some(skip)) =
            (outcome, self.skipped_at(provider))
        {
            events.push(GuardEvent::Skipped {
                provider: name.clone(),
                model: self.models[provider].clone(),
                reason: skip.reason.to_owned(),
                retry_in_ms: skip.retry_in_ms,
            });
        } else if let Outcome::Failed(failure) = outcome {
            if *failure == Failure::Empty {
                events.push(GuardEvent::EmptyResponse {
                    provider: name.clone(),
                    lines: verdict.lines,
                });
            }
            events.push(GuardEvent::AttemptFailed {
                provider: name.clone(),
                kind: failure.kind(),
                status: status.filter(|_| matches!(failure, Failure::Http { .. })),
                message: verdict.message.clone(),
            });
        }
        let started = deadlines.started();
        self.observe(provider, deadlines, outcome);
        if let (Outcome::Failed(_), Some(other)) = (outcome, beside) {
            // One of two hedged attempts failed while the other runs: that one carries on.
            self.plan.record(provider, outcome, status, started, at);
            self.plan.switch_to(other);
            return Decision::CarryOn;
        }
        let jitter = self.jitter.draw();
        let next = self
            .plan
            .finish_attempt(outcome, status, started, at, jitter);
        let reason = match outcome {
            Outcome::Failed(failure) | Outcome::Partial(failure) => failure.kind(),
            Outcome::Complete => "complete",
        };
        match next {
            Next::Resolve { cause } => Decision::Resolve(cause),
            Next::Retry { delay_ms } => {
                events.push(GuardEvent::Retry {
                    provider: name,
                    attempt: self.plan.attempt_number(),
                    delay_ms,
                    reason: reason.into(),
                });
                Decision::Retry(WakeAt(at + delay_ms))
            }
            Next::Failover { to } => {
                let to = self.limits[to].name.clone();
                events.push(GuardEvent::Failover {
                    from: name,
                    to,
                    reason: reason.into(),
                });
                Decision::Failover
            }
            Next::Reject(failure) => Decision::Reject(failure),
        }
    }
}
