//! One call, whole, as a sans-IO machine: every decision the guard makes about a call once its
//! options are read, with no platform, no clock and no I/O of its own.
//!
//! A [`Machine`] is one call from its first request to its end: which provider to ask, reading
//! the head, the layered deadlines, retries with back-off, failover, the service deadline across
//! attempts, the events in order with their fields, every message in its words, and a cancel at
//! any moment. It is the core's parts put together: [`CallPlan`] decides between attempts,
//! [`crate::core::deadline::AttemptDeadlines`] times each, the core's exchange and
//! [`crate::core::verdict`] judge each head and refusal,
//! [`crate::core::secrets`] keeps keys out of what it says. A driver (the browser's `fetch`,
//! the edge worker) only moves bytes and clock readings in and performs what comes out.
//!
//! What it does with an answer is its mode (the crate's `Mode` trait), one of two:
//!
//! - **answering** ([`Generation`], `generate()`, `Session`, a `Guard`): the answer is read
//!   (SSE or JSON, by the core's [`crate::core::answer::AnswerReader`]) and handed out as text,
//!   with the partial rule, hedging and continuation;
//! - **relaying** ([`crate::core::relay::Relay`], `guardFetch()`, the edge worker,
//!   `guard.fetch`): the answer's bytes are held until the first progress, then committed and
//!   passed through unchanged.
//!
//! Both run the same call: the same `request-start`, `attempt-failed`, `retry`, `failover` and
//! `empty-response` events from the same judgement, the same back-off, the same service
//! deadline, the same observations for a guard. A mode supplies only its attempts, what it
//! sends, and how the call ends.
//!
//! It must never: import a platform crate, read a clock (every input carries `now`, in
//! milliseconds on one monotonic clock), sleep or spawn, decide anything twice (it reuses the
//! core's rules instead), or hand out anything after a cancel (but the `cancelled` event).
//!
//! # How a driver calls it
//!
//! a. Make it (`Generation::new`, `Relay::new`) and call [`Machine::start`] with the time.
//! b. Drain it: `poll_action` and `poll_delivery` in turn until both give `None`. Perform each
//!    action at once (send a request; release an attempt). Hand each delivery to the caller;
//!    in a generation, if a callback throws, cancel with [`CancelReason::Callback`] before
//!    polling again. A generation's text and events come out one at a time on purpose: it does
//!    not act past an undelivered event (it sends no request a throwing callback should have
//!    stopped), and a cancel drops whatever was not handed out yet.
//! c. Once [`Machine::is_settled`], the call is over.
//! d. Otherwise wait until [`Machine::poll_timeout`] or until the platform reports something,
//!    then feed it: [`Machine::head`], [`Machine::body_bytes`], [`Machine::body_end`],
//!    [`Machine::body_error`], [`Machine::request_error`], the mode's `cancel`, or
//!    [`Machine::handle_timeout`] with the clock's reading (a timer that fired early is
//!    harmless: nothing that is not due happens). Then go to b.
//!
//! Attempts carry ids ([`AttemptId`]); reports about an attempt that is over are ignored, so a
//! read still in flight when its attempt was cancelled does no harm. One attempt runs at a time,
//! but for a generation's hedge ([`GuardSettings::hedge_after_ms`], in `hedge.rs`): then two
//! do, until one shows progress.

// A mode's attempt and its helpers are reached from the public `Generation` and `Relay` only
// through the `Mode` trait, so the compiler counts them public; they are not (these modules are
// private).
#[allow(private_interfaces)]
mod attempt;
mod continuing;
mod ending;
#[allow(private_interfaces)]
mod generation;
mod hedge;
#[allow(private_interfaces)]
mod mode;
mod request;
mod types;

use std::collections::VecDeque;

pub use generation::Generation;
pub(crate) use generation::Queued;
pub(crate) use mode::{attempted, Attempted, CallState, Input, Mode, Step, Verdict};
pub(crate) use request::push_json_string;
pub use request::{body_with_model, request_headers, Jitter};
pub use types::*;

use crate::core::answer::Outcome;
use crate::core::call::{CallPlan, Next, ProviderLimits};
use crate::core::deadline::{Due, Millis, WakeAt};
use crate::core::events::{whole, GuardEvent};
use crate::core::policy::{Failure, RetryPolicy};

/// One call in one mode: see the module documentation.
#[derive(Debug)]
pub struct Machine<M: Mode> {
    /// What the mode keeps.
    pub(crate) mode: M,
    pub(crate) secrets: Vec<String>,
    pub(crate) plan: CallPlan,
    limits: Vec<ProviderLimits>,
    policy: RetryPolicy,
    service_ms: Millis,
    jitter: Jitter,
    pub(crate) state: CallState,
    pub(crate) started: Millis,
    next_attempt: u32,
    pub(crate) attempts: Vec<M::Attempt>,
    pub(crate) steps: VecDeque<Step>,
    pub(crate) deliveries: VecDeque<M::Queued>,
    pub(crate) actions: VecDeque<M::Action>,
    /// Providers a guard left out of this call, by index.
    skips: Vec<(usize, Skip)>,
    /// What every attempt that ended showed, for a guard.
    observed: Vec<Observation>,
}

/// How a call is planned: its chain's limits, back-off and deadline.
pub(crate) struct Plan {
    pub limits: Vec<ProviderLimits>,
    pub policy: RetryPolicy,
    pub service_ms: Millis,
    pub jitter_seed: u64,
}

impl<M: Mode> Machine<M> {
    /// A call in `mode`, planned as `plan` says, keeping `secrets` out of what it says.
    pub(crate) fn with_mode(mode: M, plan: Plan, secrets: Vec<String>) -> Machine<M> {
        Machine {
            mode,
            secrets,
            // The real plan is made by `start`, at the time it is given.
            plan: CallPlan::new(0.0, Vec::new(), plan.policy, 0.0),
            limits: plan.limits,
            policy: plan.policy,
            service_ms: plan.service_ms,
            jitter: Jitter::new(plan.jitter_seed),
            state: CallState::Idle,
            started: 0.0,
            next_attempt: 0,
            attempts: Vec::new(),
            steps: VecDeque::new(),
            deliveries: VecDeque::new(),
            actions: VecDeque::new(),
            skips: Vec::new(),
            observed: Vec::new(),
        }
    }

    /// Leave provider `index` out of this call (before [`Machine::start`]): see [`Skip`].
    pub fn skip(&mut self, index: usize, skip: Skip) {
        self.skips.push((index, skip));
    }

    /// What every attempt that ended showed (skipped providers are not attempts), in order:
    /// for a guard to learn from once the call is over.
    pub fn observations(&self) -> &[Observation] {
        &self.observed
    }

    /// The skip of provider `index`, if a guard left it out.
    pub(crate) fn skipped_at(&self, index: usize) -> Option<&Skip> {
        self.skips.iter().find(|(i, _)| *i == index).map(|(_, s)| s)
    }

    /// A new attempt's id.
    pub(crate) fn next_id(&mut self) -> AttemptId {
        let id = AttemptId(self.next_attempt);
        self.next_attempt += 1;
        id
    }

    /// Notes what `attempt` showed as it ends with `outcome`.
    pub(crate) fn observe(&mut self, attempt: &M::Attempt, outcome: &Outcome) {
        let failure = match outcome {
            Outcome::Complete => None,
            Outcome::Failed(Failure::Skipped) => return,
            Outcome::Partial(failure) | Outcome::Failed(failure) => Some(failure.clone()),
        };
        let deadlines = &attempt.ex().deadlines;
        self.observed.push(Observation {
            provider: attempt.provider(),
            failure,
            first_token_ms: deadlines.first_token_ms(),
            longest_gap_ms: deadlines.longest_gap_ms(),
        });
    }

    // ------------------------------------------------------------------ inputs

    /// The call begins at `now`: the first provider is announced, then asked.
    pub fn start(&mut self, now: Millis) {
        if self.state != CallState::Idle {
            return;
        }
        self.started = now;
        self.plan = CallPlan::new(now, self.limits.clone(), self.policy, self.service_ms);
        self.state = CallState::Running;
        M::started(self, now);
        self.steps.push_back(Step::Begin { at: now });
        self.run_steps();
    }

    /// The response head of `attempt` arrived at `now`.
    pub fn head(&mut self, attempt: AttemptId, now: Millis, head: Head) {
        self.with_attempt(attempt, Input::Head(now, head));
    }

    /// Body bytes of `attempt` arrived at `now` (one read).
    pub fn body_bytes(&mut self, attempt: AttemptId, now: Millis, bytes: &[u8]) {
        self.with_attempt(attempt, Input::Bytes(now, bytes));
    }

    /// The body of `attempt` ended at `now`.
    pub fn body_end(&mut self, attempt: AttemptId, now: Millis) {
        self.with_attempt(attempt, Input::End(now));
    }

    /// Reading the body of `attempt` failed at `now`.
    pub fn body_error(&mut self, attempt: AttemptId, now: Millis, error: BodyError) {
        self.with_attempt(attempt, Input::BodyError(now, error));
    }

    /// The request of `attempt` failed at `now` before any response (`fetch` threw or
    /// rejected); `message` is the platform's.
    pub fn request_error(&mut self, attempt: AttemptId, now: Millis, message: &str) {
        self.with_attempt(attempt, Input::RequestError(now, message));
    }

    /// The clock read `now`: whatever is due by [`Due::passed`] happens; nothing else does, so
    /// an early or spurious call is harmless.
    pub fn handle_timeout(&mut self, now: Millis) {
        if matches!(self.state, CallState::Idle | CallState::Settled) || M::clock(self, now) {
            return;
        }
        for index in 0..self.attempts.len() {
            if let Some(id) = self.attempts.get(index).map(|a| a.ex().id) {
                M::feed(self, id, Input::Timeout(now));
            }
        }
        if let CallState::BackingOff(until) = self.state {
            if until.passed(now) {
                self.state = CallState::Running;
                self.steps.push_back(Step::Begin { at: now });
            }
        }
        M::clock_after(self, now);
        self.run_steps();
    }

    // ------------------------------------------------------------------ outputs

    /// The next thing the driver must do, if any.
    pub fn poll_action(&mut self) -> Option<M::Action> {
        self.run_steps();
        self.actions.pop_front()
    }

    /// When the machine wants [`Machine::handle_timeout`] called: the earliest deadline of a
    /// running attempt, the end of a back-off, or the mode's own. `None` when nothing waits on
    /// the clock.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let (own, paused) = M::own_due(self);
        let backoff = match self.state {
            _ if paused => return own,
            CallState::BackingOff(until) => Some(until.due()),
            CallState::Idle | CallState::Settled => return None,
            CallState::Running => None,
        };
        self.attempts
            .iter()
            .filter(|a| a.is_waiting())
            .map(|a| M::due(self, a))
            .chain(backoff)
            .chain(own)
            .reduce(Millis::min)
    }

    /// Whether the call is over (a relay's last deliveries may still be queued: drain them).
    pub fn is_settled(&self) -> bool {
        self.state == CallState::Settled
    }

    // ------------------------------------------------------------------ the call's steps

    /// Runs the steps that wait for the deliveries before them, while nothing is undelivered.
    pub(crate) fn run_steps(&mut self) {
        while (!M::WAITS_FOR_DELIVERIES || self.deliveries.is_empty())
            && self.state != CallState::Settled
        {
            let Some(step) = self.steps.pop_front() else {
                break;
            };
            match step {
                Step::Begin { at } => self.begin(at),
                Step::Send { at } => {
                    let index = self.plan.provider_index();
                    let deadlines = self.plan.begin_attempt(at);
                    M::send(self, index, deadlines);
                }
                Step::AfterRead(id) => M::feed(self, id, Input::AfterRead),
                Step::Judge(id) if M::hold_judge(self, id) => {
                    self.steps.push_front(Step::Judge(id));
                }
                Step::Judge(id) => self.judge(id),
                other => M::step(self, other),
            }
        }
    }

    /// Ask the current provider, unless the service deadline has passed.
    fn begin(&mut self, at: Millis) {
        let index = self.plan.provider_index();
        if let Some(expired) = self.plan.service_expired(at) {
            let message = format!(
                "service timeout: {} ms passed before {} could be asked",
                whole(self.service_ms),
                M::name(self, index)
            );
            return M::expired(self, at, expired, index, message);
        }
        if let Some(skip) = self.skipped_at(index) {
            // Nothing is sent: the call passes over it as over an attempt that failed at once.
            let message = format!(
                "{} skipped: its breaker is open (after failures of kind {})",
                M::name(self, index),
                skip.reason
            );
            let deadlines = self.plan.begin_attempt(at);
            let id = self.next_id();
            return M::refuse(self, id, index, deadlines, Failure::Skipped, message);
        }
        let event = GuardEvent::RequestStart {
            provider: M::name(self, index).to_owned(),
            model: M::model(self, index).to_owned(),
            attempt: self.plan.attempt_number(),
        };
        M::event(self, event);
        self.steps.push_back(Step::Send { at });
    }

    /// An attempt is over: report its failure, let the plan decide, and act on the decision.
    fn judge(&mut self, id: AttemptId) {
        let Some(position) = self.attempts.iter().position(|a| a.ex().id == id) else {
            return;
        };
        let mut attempt = self.attempts.remove(position);
        let at = attempt.over_at();
        let verdict = M::verdict(self, &attempt);
        let provider = attempt.provider();
        let name = M::name(self, provider).to_owned();
        let status = attempt.ex().status;
        if let (Outcome::Failed(Failure::Skipped), Some(skip)) =
            (&verdict.outcome, self.skipped_at(provider).cloned())
        {
            self.report(GuardEvent::Skipped {
                provider: name.clone(),
                model: M::model(self, provider).to_owned(),
                reason: skip.reason.to_owned(),
                retry_in_ms: skip.retry_in_ms,
            });
        } else if let Outcome::Failed(failure) = &verdict.outcome {
            if *failure == Failure::Empty {
                self.report(GuardEvent::EmptyResponse {
                    provider: name.clone(),
                    lines: verdict.lines,
                });
            }
            self.report(GuardEvent::AttemptFailed {
                provider: name.clone(),
                kind: failure.kind(),
                status: status.filter(|_| matches!(failure, Failure::Http { .. })),
                message: verdict.message.clone(),
            });
        }
        let started = attempt.ex().deadlines.started();
        self.observe(&attempt, &verdict.outcome);
        if let (Outcome::Failed(_), Some(other)) = (&verdict.outcome, self.attempts.first()) {
            // One of two hedged attempts failed while the other runs: that one carries on.
            let other = other.provider();
            self.plan
                .record(provider, &verdict.outcome, status, started, at);
            self.plan.switch_to(other);
            return;
        }
        let jitter = self.jitter.draw();
        let next = self
            .plan
            .finish_attempt(&verdict.outcome, status, started, at, jitter);
        let reason = match &verdict.outcome {
            Outcome::Failed(failure) | Outcome::Partial(failure) => failure.kind(),
            Outcome::Complete => "complete",
        };
        match next {
            Next::Resolve { cause } => M::resolve(self, attempt, cause, verdict, at),
            Next::Retry { delay_ms } => {
                M::release(&mut attempt, &mut self.actions);
                self.report(GuardEvent::Retry {
                    provider: name,
                    attempt: self.plan.attempt_number(),
                    delay_ms,
                    reason: reason.into(),
                });
                self.state = CallState::BackingOff(WakeAt(at + delay_ms));
            }
            Next::Failover { to } => {
                M::release(&mut attempt, &mut self.actions);
                self.report(GuardEvent::Failover {
                    from: name,
                    to: M::name(self, to).to_owned(),
                    reason: reason.into(),
                });
                self.steps.push_back(Step::Begin { at });
            }
            Next::Reject(failure) => M::reject(self, attempt, failure, verdict, at),
        }
    }

    /// Queues `event` as the mode queues events.
    pub(crate) fn report(&mut self, event: GuardEvent) {
        M::event(self, event);
    }

    /// Hands `input` to attempt `id`, then runs the steps it unblocked.
    fn with_attempt(&mut self, id: AttemptId, input: Input<'_>) {
        if matches!(self.state, CallState::Settled | CallState::Idle) {
            return;
        }
        M::feed(self, id, input);
        self.run_steps();
    }

    /// The call is over: nothing more is done.
    pub(crate) fn close(&mut self) {
        self.steps.clear();
        self.state = CallState::Settled;
    }
}
