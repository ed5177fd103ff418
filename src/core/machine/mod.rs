//! One call, whole, as a sans-IO machine: every decision the guard makes about a call once its
//! options are read, with no platform, no clock and no I/O of its own.
//!
//! A [`Machine`] is one call from its first request to its end: which provider to ask, reading
//! the head, the layered deadlines, retries with back-off, failover, the service deadline across
//! attempts, the events in order with their fields, every message in its words, and a cancel at
//! any moment. It is the core's parts put together: [`crate::core::call::CallPlan`] decides
//! between attempts, [`crate::core::deadline::AttemptDeadlines`] times each, the core's exchange
//! and [`crate::core::verdict`] judge each head and refusal, [`crate::core::secrets`] keeps keys
//! out of what it says. A driver (the browser's `fetch`, the edge worker) only moves bytes and
//! clock readings in and performs what comes out.
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
//! deadline, the same observations for a guard: those decisions are one non-generic piece of
//! code (`call.rs`), and the generic machine only carries them between the call and its mode.
//! A mode supplies its attempts, what it sends, and how the call ends.
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
mod call;
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
pub(crate) use mode::{attempted, tell, Attempted, CallState, Input, Mode, Step, Verdict};
pub(crate) use request::push_json_string;
pub use request::{body_with_model, request_headers, Jitter};
pub use types::*;

use crate::core::answer::Outcome;
use crate::core::deadline::{Due, Millis};
use crate::core::events::GuardEvent;
use crate::core::policy::Failure;
pub(crate) use call::Plan;
use call::{Asking, Call, Decision, Over};

/// One call in one mode: see the module documentation.
#[derive(Debug)]
pub struct Machine<M: Mode> {
    /// What the mode keeps.
    pub(crate) mode: M,
    /// What the call keeps, whatever its mode.
    pub(crate) call: Call,
    pub(crate) secrets: Vec<String>,
    pub(crate) state: CallState,
    pub(crate) started: Millis,
    pub(crate) attempts: Vec<M::Attempt>,
    pub(crate) steps: VecDeque<Step>,
    pub(crate) deliveries: VecDeque<M::Queued>,
    pub(crate) actions: VecDeque<M::Action>,
}

impl<M: Mode> Machine<M> {
    /// A call in `mode`, planned as `plan` says, keeping `secrets` out of what it says.
    pub(crate) fn with_mode(mode: M, plan: Plan, secrets: Vec<String>) -> Machine<M> {
        Machine {
            mode,
            call: Call::new(plan),
            secrets,
            state: CallState::Idle,
            started: 0.0,
            attempts: Vec::new(),
            steps: VecDeque::new(),
            deliveries: VecDeque::new(),
            actions: VecDeque::new(),
        }
    }

    /// Leave provider `index` out of this call (before [`Machine::start`]): see [`Skip`].
    pub fn skip(&mut self, index: usize, skip: Skip) {
        self.call.skip(index, skip);
    }

    /// What every attempt that ended showed (skipped providers are not attempts), in order:
    /// for a guard to learn from once the call is over.
    pub fn observations(&self) -> &[Observation] {
        &self.call.observed
    }

    /// A new attempt's id.
    pub(crate) fn next_id(&mut self) -> AttemptId {
        self.call.next_id()
    }

    /// Notes what `attempt` showed as it ends with `outcome`.
    pub(crate) fn observe(&mut self, attempt: &M::Attempt, outcome: &Outcome) {
        let deadlines = &attempt.ex().deadlines;
        self.call.observe(attempt.provider(), deadlines, outcome);
    }

    // ------------------------------------------------------------------ inputs

    /// The call begins at `now`: the first provider is announced, then asked.
    pub fn start(&mut self, now: Millis) {
        if self.state != CallState::Idle {
            return;
        }
        self.started = now;
        self.call.start(now);
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
    #[inline(never)]
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
    #[inline(never)]
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
                    let index = self.call.plan.provider_index();
                    let deadlines = self.call.plan.begin_attempt(at);
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
    #[inline(never)]
    fn begin(&mut self, at: Millis) {
        let index = self.call.plan.provider_index();
        match self.call.ask(at) {
            Asking::Expired(expired, message) => M::expired(self, at, expired, index, message),
            Asking::Skipped(id, deadlines, message) => {
                M::refuse(self, id, index, deadlines, Failure::Skipped, message)
            }
            Asking::Ask(event) => {
                M::event(self, event);
                self.steps.push_back(Step::Send { at });
            }
        }
    }

    /// An attempt is over: the call judges it (its events, what follows), the mode acts.
    #[inline(never)]
    fn judge(&mut self, id: AttemptId) {
        let Some(position) = self.attempts.iter().position(|a| a.ex().id == id) else {
            return;
        };
        let mut attempt = self.attempts.remove(position);
        let at = attempt.over_at();
        let verdict = M::verdict(self, &attempt);
        let provider = attempt.provider();
        let over = Over {
            provider,
            status: attempt.ex().status,
            deadlines: &attempt.ex().deadlines,
            at,
            verdict: &verdict,
            beside: self.attempts.first().map(|a| a.provider()),
        };
        let mut events = Vec::new();
        let decision = self.call.judge(over, &mut events);
        for event in events {
            M::event(self, event);
        }
        match decision {
            Decision::Resolve(cause) => M::resolve(self, attempt, cause, verdict, at),
            Decision::Retry(until) => {
                M::release(&mut attempt, &mut self.actions);
                self.state = CallState::BackingOff(until);
            }
            Decision::Failover => {
                M::release(&mut attempt, &mut self.actions);
                self.steps.push_back(Step::Begin { at });
            }
            Decision::Reject(failure) => M::reject(self, attempt, failure, verdict, at),
            Decision::CarryOn => {}
        }
    }

    /// Queues `event` as the mode queues events.
    pub(crate) fn report(&mut self, event: GuardEvent) {
        M::event(self, event);
    }

    /// Hands `input` to attempt `id`, then runs the steps it unblocked.
    #[inline(never)]
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
