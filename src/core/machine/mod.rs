//! One generation, whole, as a sans-IO machine: every decision `generate()` makes once its
//! options are read, with no platform, no clock and no I/O of its own.
//!
//! A [`Generation`] is what one call of `generate()` (or one request of the edge worker) is,
//! from the first request to the result or the error: which provider to ask, the request to
//! send, reading the head and the body, the layered deadlines, retries with back-off, failover,
//! the partial rule, the service deadline across attempts, the events in order with their
//! fields, every message in its words, and a cancel at any moment. It is the core's parts put
//! together: [`CallPlan`] decides between attempts,
//! [`crate::core::deadline::AttemptDeadlines`] and [`crate::core::answer::AnswerReader`] run
//! each attempt, [`crate::core::secrets`] keeps keys out of what it says. A driver (the browser's `fetch`, the edge worker) only moves bytes and
//! clock readings in and performs what comes out.
//!
//! It must never: import a platform crate, read a clock (every input carries `now`, in
//! milliseconds on one monotonic clock), sleep or spawn, decide anything twice (it reuses the
//! core's rules instead), or hand out text or events after a cancel (but the `cancelled` event).
//!
//! # How a driver calls it
//!
//! a. Make it with [`Generation::new`] and call [`Generation::start`] with the time.
//! b. Drain it: [`Generation::poll_action`] and [`Generation::poll_delivery`] in turn until
//!    both give `None`. Perform each [`Action`] at once (send a request; cancel an attempt's
//!    request and reader). Hand each [`Delivery`] to the caller (`onText`, `onEvent`); if a
//!    callback throws, call [`Generation::cancel`] with [`CancelReason::Callback`] before
//!    polling again. Text and events come out one at a time on purpose: the machine does not
//!    act past an undelivered event (it sends no request a throwing callback should have
//!    stopped), and a cancel drops whatever was not handed out yet.
//! c. Once [`Generation::outcome`] is `Some`, the call is over: settle it.
//! d. Otherwise wait until [`Generation::poll_timeout`] or until the platform reports something,
//!    then feed it: [`Generation::head`], [`Generation::body_bytes`], [`Generation::body_end`],
//!    [`Generation::body_error`], [`Generation::request_error`], [`Generation::cancel`], or
//!    [`Generation::handle_timeout`] with the clock's reading (a timer that fired early is
//!    harmless: nothing that is not due happens). Then go to b.
//!
//! What stays with a driver: reading and checking the caller's options into a
//! [`GenerationConfig`]; keeping what the platform threw (the machine points at it with
//! [`CauseRef`]); joining the text it hands out per attempt (the machine keeps only its length,
//! so a long answer does not grow it; the outcome points at an attempt's text with
//! [`DeliveredText`]); not handing the `cancelled` event to an `onEvent` that threw; printing
//! [`GuardEvent::log_line`] when logging is on; building the result and error objects.
//!
//! Attempts carry ids ([`AttemptId`]); reports about an attempt that is over are ignored, so a
//! read still in flight when its attempt was cancelled does no harm. One attempt runs at a time,
//! but for a hedge ([`GuardSettings::hedge_after_ms`], in `hedge.rs`): then two do, until one
//! shows progress. A cut answer may be continued on the next provider
//! ([`GuardSettings::continuation`], in `continuing.rs`). Both come with
//! [`Generation::guarded`] only, through trait objects that nothing else makes: a build that
//! never calls it (the npm package's `generate()`) carries none of their code.

mod attempt;
mod continuing;
mod ending;
mod hedge;
mod request;
mod types;

use std::collections::VecDeque;

pub(crate) use request::push_json_string;
pub use request::{body_with_model, request_headers, Jitter};
pub use types::*;

use crate::core::answer::Outcome;
use crate::core::call::{CallPlan, Next, ProviderLimits};
use crate::core::deadline::{AttemptDeadlines, Due, Millis, WakeAt};
use crate::core::events::{whole, GuardEvent};
use crate::core::policy::Failure;
use attempt::{Attempt, Ctx, Phase};
use continuing::Continuer;
use ending::timeout_parts;
use hedge::Hedging;

/// Text or an event waiting to be handed out (text remembers its attempt, so that a cancel can
/// take back what was never handed out).
#[derive(Debug, Clone, PartialEq)]
enum Queued {
    Text(AttemptId, String),
    Event(GuardEvent),
}

/// A step of the call that waits until everything queued before it has been handed out: a
/// callback that throws on what came before must be able to stop it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    /// Ask the current provider: the service deadline, then the `request-start` event.
    Begin { at: Millis },
    /// Send the request that `request-start` announced.
    Send { at: Millis },
    /// Look at an attempt after a read: did it stop, did a deadline pass?
    AfterRead(AttemptId),
    /// An attempt is over: judge it, then resolve, retry, fail over or reject.
    Judge(AttemptId),
    /// The hedge is due: announce it, then ask the next provider in parallel.
    Hedge { at: Millis },
    /// Send the hedged request that `request-start` announced, to this provider.
    SendHedge { at: Millis, provider: usize },
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CallState {
    /// Made; [`Generation::start`] not called yet.
    Idle,
    /// Attempts running, or steps waiting for deliveries.
    Running,
    /// Waiting out a retry's back-off: the next attempt begins once this has passed.
    BackingOff(WakeAt),
    /// The outcome is decided; nothing more happens.
    Settled,
}

/// One generation: see the module documentation for what it does and how to drive it.
#[derive(Debug)]
pub struct Generation {
    config: GenerationConfig,
    secrets: Vec<String>,
    plan: CallPlan,
    jitter: Jitter,
    state: CallState,
    started: Millis,
    next_attempt: u32,
    attempts: Vec<Attempt>,
    steps: VecDeque<Step>,
    deliveries: VecDeque<Queued>,
    actions: VecDeque<Action>,
    /// The text handed out by the last attempt that received some: a rejection's `partialText`.
    partial_text: Option<DeliveredText>,
    outcome: Option<Finished>,
    /// Hedging and continuation, as [`Generation::guarded`] set them.
    settings: GuardSettings,
    /// Hedging's code, present only in a guarded generation.
    hedging: Option<&'static dyn Hedging>,
    /// Continuation's code, present only in a guarded generation.
    continuer: Option<&'static dyn Continuer>,
    /// A hedge was started in this call (there is at most one).
    hedged: bool,
    /// With continuation on: the text handed out for one attempt id, kept to be continued.
    kept: Option<(AttemptId, String)>,
    /// A cut answer being continued.
    continuing: Option<continuing::Continuing>,
    /// Providers a guard left out of this call, by index.
    skips: Vec<(usize, Skip)>,
    /// What every attempt that ended showed, for a guard.
    observed: Vec<Observation>,
}

impl Generation {
    /// A generation over `config`'s chain. Panics if the chain is empty (the driver refuses
    /// such options before it gets here).
    pub fn new(config: GenerationConfig) -> Generation {
        assert!(
            !config.providers.is_empty(),
            "a generation needs a provider"
        );
        let secrets = config
            .providers
            .iter()
            .filter_map(|p| p.api_key.clone())
            .filter(|key| !key.is_empty())
            .collect();
        Generation {
            // The real plan is made by `start`, at the time it is given.
            plan: CallPlan::new(0.0, Vec::new(), config.policy, 0.0),
            jitter: Jitter::new(config.jitter_seed),
            config,
            secrets,
            state: CallState::Idle,
            started: 0.0,
            next_attempt: 0,
            attempts: Vec::new(),
            steps: VecDeque::new(),
            deliveries: VecDeque::new(),
            actions: VecDeque::new(),
            partial_text: None,
            outcome: None,
            settings: GuardSettings::default(),
            hedging: None,
            continuer: None,
            hedged: false,
            kept: None,
            continuing: None,
            skips: Vec::new(),
            observed: Vec::new(),
        }
    }

    /// A generation over `config`'s chain with what a guard adds: hedging and continuation as
    /// `settings` say.
    pub fn guarded(config: GenerationConfig, settings: GuardSettings) -> Generation {
        let mut generation = Generation::new(config);
        generation.settings = settings;
        generation.hedging = Some(&hedge::HEDGE);
        generation.continuer = Some(&continuing::CONTINUER);
        generation
    }

    /// Leave provider `index` out of this call (before [`Generation::start`]): see [`Skip`].
    pub fn skip(&mut self, index: usize, skip: Skip) {
        self.skips.push((index, skip));
    }

    /// What every attempt that ended showed (skipped providers are not attempts): for a guard
    /// to learn from once the call is over.
    pub fn observations(&self) -> &[Observation] {
        &self.observed
    }

    /// The skip of provider `index`, if a guard left it out.
    fn skipped(&self, index: usize) -> Option<&Skip> {
        self.skips.iter().find(|(i, _)| *i == index).map(|(_, s)| s)
    }

    /// Notes what `attempt` showed as it ends with `outcome`.
    fn observe(&mut self, attempt: &Attempt, outcome: &Outcome) {
        let failure = match outcome {
            Outcome::Complete => None,
            Outcome::Failed(Failure::Skipped) => return,
            Outcome::Partial(failure) | Outcome::Failed(failure) => Some(failure.clone()),
        };
        self.observed.push(Observation {
            provider: attempt.provider,
            failure,
            first_token_ms: attempt.ex.deadlines.first_token_ms(),
            longest_gap_ms: attempt.ex.deadlines.longest_gap_ms(),
        });
    }

    // ------------------------------------------------------------------ inputs

    /// The call begins at `now`: the first provider is announced, then asked.
    pub fn start(&mut self, now: Millis) {
        if self.state != CallState::Idle {
            return;
        }
        self.started = now;
        self.plan = plan(&self.config, now);
        self.state = CallState::Running;
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
        if matches!(self.state, CallState::Idle | CallState::Settled) {
            return;
        }
        for index in 0..self.attempts.len() {
            let id = self.attempts[index].ex.id;
            self.with_attempt_unsettled(id, Input::Timeout(now));
        }
        if let CallState::BackingOff(until) = self.state {
            if until.passed(now) {
                self.state = CallState::Running;
                self.steps.push_back(Step::Begin { at: now });
            }
        }
        if let Some(hedging) = self.hedging {
            hedging.if_due(self, now);
        }
        self.run_steps();
    }

    /// Cancel the call at `now`. Whatever was not handed out yet never will be; every attempt
    /// still open is released; the call rejects as `aborted` with this reason, after one
    /// `cancelled` event. Once the outcome is decided, a cancel changes nothing.
    pub fn cancel(&mut self, now: Millis, reason: CancelReason) {
        if self.state == CallState::Settled {
            return;
        }
        // What was not handed out never will be (and was never counted as delivered).
        self.deliveries.clear();
        self.steps.clear();
        let index = self.plan.provider_index();
        for mut attempt in std::mem::take(&mut self.attempts) {
            attempt.release(&mut self.actions);
            let outcome = attempt.outcome();
            let at = if attempt.phase == Phase::Over {
                attempt.over_at
            } else {
                now
            };
            if let Some(delivered) = attempt.delivered_text() {
                self.partial_text = Some(delivered);
            }
            let started = attempt.ex.deadlines.started();
            self.plan
                .record(attempt.provider, &outcome, attempt.ex.status, started, at);
            self.observe(&attempt, &outcome);
        }
        if let Some(text) = self.continued_text() {
            self.partial_text = Some(text);
        }
        self.queue(GuardEvent::Cancelled {
            reason: reason.as_str().to_owned(),
        });
        let message = match (reason.as_str(), &reason) {
            ("signal", _) => "aborted by the caller's signal".to_owned(),
            (_, CancelReason::Callback(which)) => format!("cancelled: {} threw", which.as_str()),
            (other, _) => format!("cancelled: {other}"),
        };
        let cause = matches!(reason, CancelReason::Callback(_)).then_some(CauseRef::Thrown);
        let error = self.error(
            &Failure::Aborted,
            message,
            index,
            Some(reason.as_str()),
            cause,
        );
        self.settle(Err(error));
    }

    // ------------------------------------------------------------------ outputs

    /// The next thing the driver must do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.run_steps();
        self.actions.pop_front()
    }

    /// The next piece of text or event for the caller, if any.
    pub fn poll_delivery(&mut self) -> Option<Delivery> {
        self.run_steps();
        self.deliveries.pop_front().map(|queued| match queued {
            Queued::Text(attempt, text) => {
                if let Some(a) = self.attempts.iter_mut().find(|a| a.ex.id == attempt) {
                    a.delivered += text.len();
                }
                if let Some(continuer) = self.continuer {
                    continuer.keep(self, attempt, &text);
                }
                Delivery::Text { attempt, text }
            }
            Queued::Event(event) => Delivery::Event(event),
        })
    }

    /// When the machine wants [`Generation::handle_timeout`] called: the earliest deadline of a
    /// running attempt, or the end of a back-off. `None` when nothing waits on the clock.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let backoff = match self.state {
            CallState::BackingOff(until) => Some(until.due()),
            CallState::Idle | CallState::Settled => return None,
            CallState::Running => None,
        };
        self.attempts
            .iter()
            .filter(|a| a.is_waiting())
            .map(|a| a.ex.deadlines.due())
            .chain(backoff)
            .chain(self.hedging.and_then(|hedging| hedging.due(self)))
            .reduce(Millis::min)
    }

    /// How the call ended, once it has.
    pub fn outcome(&self) -> Option<&Finished> {
        self.outcome.as_ref()
    }

    /// Takes the outcome out (after it, [`Generation::outcome`] is `None` but the call stays
    /// over).
    pub fn take_outcome(&mut self) -> Option<Finished> {
        self.outcome.take()
    }

    /// Whether the call is over.
    pub fn is_settled(&self) -> bool {
        self.state == CallState::Settled
    }

    // ------------------------------------------------------------------ the call's steps

    /// Runs the steps that wait for the deliveries before them, while nothing is undelivered.
    fn run_steps(&mut self) {
        while self.deliveries.is_empty() && self.state != CallState::Settled {
            let Some(step) = self.steps.pop_front() else {
                break;
            };
            match step {
                Step::Begin { at } => self.begin(at),
                Step::Send { at } => self.send(at),
                Step::AfterRead(id) => self.with_attempt_unsettled(id, Input::AfterRead),
                Step::Judge(id) if self.flush_held(id) => {
                    // What the continuation held back goes out before it is judged.
                    self.steps.push_front(Step::Judge(id));
                }
                Step::Judge(id) => self.judge(id),
                Step::Hedge { at } => {
                    if let Some(hedging) = self.hedging {
                        hedging.start(self, at);
                    }
                }
                Step::SendHedge { at, provider } => {
                    let timeouts = self.config.providers[provider].timeouts;
                    let deadlines =
                        AttemptDeadlines::start(at, timeouts, self.plan.service_deadline());
                    self.send_to(provider, deadlines);
                }
            }
        }
    }

    /// Ask the current provider, unless the service deadline has passed.
    fn begin(&mut self, at: Millis) {
        let index = self.plan.provider_index();
        let provider = &self.config.providers[index];
        if let Some(expired) = self.plan.service_expired(at) {
            if let (Some(continuer), Some(_)) = (self.continuer, &self.continuing) {
                // The cut answer stands: nothing is lost to a continuation that ran out of time.
                continuer.resolve_cut(self, at);
                return;
            }
            let message = format!(
                "service timeout: {} ms passed before {} could be asked",
                whole(self.config.service_ms),
                provider.name
            );
            let error = self.error(&Failure::Timeout(expired), message, index, None, None);
            self.settle(Err(error));
            return;
        }
        if let Some(skip) = self.skipped(index) {
            // Nothing is sent: the call passes over it as over an attempt that failed at once.
            let message = format!(
                "{} skipped: its breaker is open (after failures of kind {})",
                provider.name, skip.reason
            );
            let deadlines = self.plan.begin_attempt(at);
            let id = AttemptId(self.next_attempt);
            self.next_attempt += 1;
            self.refused(id, index, deadlines, Failure::Skipped, message);
            return;
        }
        let event = GuardEvent::RequestStart {
            provider: provider.name.clone(),
            model: provider.model.clone(),
            attempt: self.plan.attempt_number(),
        };
        self.queue(event);
        self.steps.push_back(Step::Send { at });
    }

    /// Send the announced request.
    fn send(&mut self, at: Millis) {
        let index = self.plan.provider_index();
        let deadlines = self.plan.begin_attempt(at);
        self.send_to(index, deadlines);
    }

    /// Send a request to provider `index` with `deadlines` (the continuation request while an
    /// answer is being continued).
    fn send_to(&mut self, index: usize, deadlines: AttemptDeadlines) {
        let id = AttemptId(self.next_attempt);
        self.next_attempt += 1;
        let body = match self.continuer {
            Some(continuer) => continuer.body(self, id, index),
            None => Ok(None),
        };
        let provider = &self.config.providers[index];
        let body = body.and_then(|body| {
            let body = body.as_deref().unwrap_or(&self.config.body_without_model);
            body_with_model(body, &provider.model)
        });
        match body {
            Ok(body) => {
                self.actions.push_back(Action::Send(Request {
                    attempt: id,
                    provider: index,
                    url: provider.url.clone(),
                    headers: request_headers(provider, self.config.stream),
                    body,
                }));
                self.attempts.push(Attempt::sent(id, index, deadlines));
            }
            Err(message) => self.refused(id, index, deadlines, Failure::Protocol, message),
        }
    }

    /// Attempt `id` at provider `index` is over before anything was sent (`failure`, said by
    /// `message`).
    fn refused(
        &mut self,
        id: AttemptId,
        index: usize,
        deadlines: AttemptDeadlines,
        failure: Failure,
        message: String,
    ) {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let mut cx = Ctx {
            provider: &self.config.providers[index],
            secrets: &secrets,
            max_event_bytes: self.config.max_event_bytes,
            deliveries: &mut self.deliveries,
            actions: &mut self.actions,
            steps: &mut self.steps,
        };
        let attempt = Attempt::refused(id, index, deadlines, failure, message, &mut cx);
        self.attempts.push(attempt);
    }

    /// An attempt is over: report its failure, let the plan decide, and act on the decision.
    fn judge(&mut self, id: AttemptId) {
        let Some(position) = self.attempts.iter().position(|a| a.ex.id == id) else {
            return;
        };
        let attempt = self.attempts.remove(position);
        let at = attempt.over_at;
        let outcome = attempt.outcome();
        if let Some(delivered) = attempt.delivered_text() {
            self.partial_text = Some(delivered);
        }
        let name = self.config.providers[attempt.provider].name.clone();
        let (message, platform_cause) = attempt.message();
        let message = match &outcome {
            Outcome::Failed(Failure::Empty) => format!("empty response from {name}"),
            _ => message.to_owned(),
        };
        let cause = platform_cause.then_some(CauseRef::Platform(attempt.ex.id));
        if let Some(text) = self.continued_text() {
            self.partial_text = Some(text);
        }
        if let (Outcome::Failed(Failure::Skipped), Some(skip)) =
            (&outcome, self.skipped(attempt.provider).cloned())
        {
            let provider = &self.config.providers[attempt.provider];
            self.queue(GuardEvent::Skipped {
                provider: name.clone(),
                model: provider.model.clone(),
                reason: skip.reason.to_owned(),
                retry_in_ms: skip.retry_in_ms,
            });
        } else if let Outcome::Failed(failure) = &outcome {
            if *failure == Failure::Empty {
                let lines = attempt.counts().0 as f64;
                self.queue(GuardEvent::EmptyResponse {
                    provider: name.clone(),
                    lines,
                });
            }
            let status = attempt
                .ex
                .status
                .filter(|_| matches!(failure, Failure::Http { .. }));
            self.queue(GuardEvent::AttemptFailed {
                provider: name.clone(),
                kind: failure.kind(),
                status,
                message: message.clone(),
            });
        }
        let started = attempt.ex.deadlines.started();
        self.observe(&attempt, &outcome);
        if let (Outcome::Failed(_), Some(other)) = (&outcome, self.attempts.first()) {
            // One of two hedged attempts failed while the other runs: that one carries on.
            let other = other.provider;
            self.plan
                .record(attempt.provider, &outcome, attempt.ex.status, started, at);
            self.plan.switch_to(other);
            return;
        }
        let jitter = self.jitter.draw();
        let next = self
            .plan
            .finish_attempt(&outcome, attempt.ex.status, started, at, jitter);
        let reason = match &outcome {
            Outcome::Failed(failure) | Outcome::Partial(failure) => failure.kind(),
            Outcome::Complete => "complete",
        };
        match next {
            Next::Resolve { cause: failure } => {
                let partial = failure.map(|failure| PartialCause {
                    kind: failure.kind(),
                    phase: timeout_parts(&failure).1,
                    message,
                    cause,
                    failure,
                });
                match self.continuer {
                    Some(continuer) => continuer.resolve_or_continue(self, attempt, partial, at),
                    None => self.resolve(attempt, partial, at),
                }
            }
            Next::Retry { delay_ms } => {
                self.queue(GuardEvent::Retry {
                    provider: name,
                    attempt: self.plan.attempt_number(),
                    delay_ms,
                    reason: reason.into(),
                });
                self.state = CallState::BackingOff(WakeAt(at + delay_ms));
            }
            Next::Failover { to } => {
                self.queue(GuardEvent::Failover {
                    from: name,
                    to: self.config.providers[to].name.clone(),
                    reason: reason.into(),
                });
                self.steps.push_back(Step::Begin { at });
            }
            Next::Reject(_) if self.continuing.is_some() => {
                if let Some(continuer) = self.continuer {
                    continuer.resolve_cut(self, at);
                }
            }
            Next::Reject(failure) => {
                let error = self.error(&failure, message, attempt.provider, None, cause);
                self.settle(Err(error));
            }
        }
    }

    fn queue(&mut self, event: GuardEvent) {
        attempt::push_event(&mut self.deliveries, event);
    }

    /// Hands `input` to attempt `id`, then runs the steps it unblocked.
    fn with_attempt(&mut self, id: AttemptId, input: Input<'_>) {
        if self.state == CallState::Settled {
            return;
        }
        self.with_attempt_unsettled(id, input);
        self.run_steps();
    }

    /// Hands `input` to attempt `id`, if it is still there (one function for every input, so
    /// that the module carries one copy of what they share).
    #[inline(never)]
    fn with_attempt_unsettled(&mut self, id: AttemptId, input: Input<'_>) {
        let before = self.deliveries.len();
        // A stream shows progress in a read; a JSON answer at its end.
        let may_progress = matches!(input, Input::Bytes(..) | Input::End(_));
        let Some(attempt) = self.attempts.iter_mut().find(|a| a.ex.id == id) else {
            return;
        };
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let cx = &mut Ctx {
            provider: &self.config.providers[attempt.provider],
            secrets: &secrets,
            max_event_bytes: self.config.max_event_bytes,
            deliveries: &mut self.deliveries,
            actions: &mut self.actions,
            steps: &mut self.steps,
        };
        match input {
            Input::Head(now, head) => attempt.head(now, head, cx),
            Input::Bytes(now, bytes) => attempt.bytes(now, bytes, cx),
            Input::End(now) => attempt.end(now, cx),
            Input::BodyError(now, error) => attempt.body_error(now, error, cx),
            Input::RequestError(now, message) => attempt.request_error(now, message, cx),
            Input::Timeout(now) => attempt.timeout(now, cx),
            Input::AfterRead => attempt.after_read(cx),
        }
        if let (true, Some(hedging)) = (may_progress, self.hedging) {
            hedging.won_by(self, id);
        }
        if let Some(continuer) = self.continuer {
            continuer.filter(self, id, before);
        }
    }

    /// While an answer is being continued: the whole text handed out so far.
    fn continued_text(&self) -> Option<DeliveredText> {
        self.continuer.and_then(|continuer| continuer.text(self))
    }

    /// Before attempt `id` is judged: queues what a continuation still holds back; whether
    /// anything was.
    fn flush_held(&mut self, id: AttemptId) -> bool {
        match self.continuer {
            Some(continuer) => continuer.flush(self, id),
            None => false,
        }
    }
}

/// What an attempt is told.
enum Input<'a> {
    Head(Millis, Head),
    Bytes(Millis, &'a [u8]),
    End(Millis),
    BodyError(Millis, BodyError),
    RequestError(Millis, &'a str),
    Timeout(Millis),
    /// The deliveries of its last read are out.
    AfterRead,
}

/// The plan of a call over `config`'s chain, started at `now`.
fn plan(config: &GenerationConfig, now: Millis) -> CallPlan {
    let limits = config
        .providers
        .iter()
        .map(|p| ProviderLimits {
            name: p.name.clone(),
            timeouts: p.timeouts,
            max_retries: p.max_retries,
        })
        .collect();
    CallPlan::new(now, limits, config.policy, config.service_ms)
}
