//! The answering mode: a call whose answer is read and handed out as text, [`Generation`].
//!
//! A generation is what one call of `generate()` (or of a `Guard`) is: the machine's call, with
//! each 2xx answer read by the core's [`crate::core::answer::AnswerReader`], its text handed out
//! piece by piece, the partial rule, and the result or the error the call settles with.
//!
//! What stays with a driver: reading and checking the caller's options into a
//! [`GenerationConfig`]; keeping what the platform threw (the machine points at it with
//! [`CauseRef`]); joining the text it hands out per attempt (the machine keeps only its length,
//! so a long answer does not grow it; the outcome points at an attempt's text with
//! [`DeliveredText`]); not handing the `cancelled` event to an `onEvent` that threw; printing
//! [`GuardEvent::log_line`] when logging is on; building the result and error objects.
//!
//! A hedge ([`GuardSettings::hedge_after_ms`], in `hedge.rs`) and the continuation of a cut
//! answer ([`GuardSettings::continuation`], in `continuing.rs`) come with
//! [`Generation::guarded`] only, through trait objects that nothing else makes: a build that
//! never calls it (the npm package's `generate()`) carries none of their code.

use std::collections::VecDeque;

use super::attempt::{Attempt, Ctx, Phase};
use super::continuing::{self, Continuer};
use super::ending::timeout_parts;
use super::hedge::{self, Hedging};
use super::types::*;
use super::{
    body_with_model, request_headers, CallState, Input, Machine, Mode, Plan, Step, Verdict,
};
use crate::core::answer::Outcome;
use crate::core::call::ProviderLimits;
use crate::core::deadline::{AttemptDeadlines, Due, Expired, Millis};
use crate::core::events::GuardEvent;
use crate::core::policy::Failure;

/// One generation: the machine in its answering mode (see the module documentation).
pub type Generation = Machine<Answering>;

/// Text or an event waiting to be handed out (text remembers its attempt, so that a cancel can
/// take back what was never handed out).
#[derive(Debug, Clone, PartialEq)]
pub enum Queued {
    Text(AttemptId, String),
    Event(GuardEvent),
}

/// What a generation keeps besides the call: its configuration, hedging and continuation, the
/// text a rejection points at, and the outcome.
#[derive(Debug)]
pub struct Answering {
    pub(super) config: GenerationConfig,
    /// The text handed out by the last attempt that received some: a rejection's `partialText`.
    pub(super) partial_text: Option<DeliveredText>,
    pub(super) outcome: Option<Finished>,
    /// Hedging and continuation, as [`Generation::guarded`] set them.
    pub(super) settings: GuardSettings,
    /// Hedging's code, present only in a guarded generation.
    hedging: Option<&'static dyn Hedging>,
    /// Continuation's code, present only in a guarded generation.
    continuer: Option<&'static dyn Continuer>,
    /// A hedge was started in this call (there is at most one).
    pub(super) hedged: bool,
    /// With continuation on: the text handed out for one attempt id, kept to be continued.
    pub(super) kept: Option<(AttemptId, String)>,
    /// A cut answer being continued.
    pub(super) continuing: Option<continuing::Continuing>,
}

super::attempted!(Attempt);

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
        let limits = config
            .providers
            .iter()
            .map(|p| ProviderLimits {
                name: p.name.clone(),
                timeouts: p.timeouts,
                max_retries: p.max_retries,
            })
            .collect();
        let plan = Plan {
            limits,
            models: config.providers.iter().map(|p| p.model.clone()).collect(),
            policy: config.policy,
            service_ms: config.service_ms,
            jitter_seed: config.jitter_seed,
        };
        let mode = Answering {
            config,
            partial_text: None,
            outcome: None,
            settings: GuardSettings::default(),
            hedging: None,
            continuer: None,
            hedged: false,
            kept: None,
            continuing: None,
        };
        Machine::with_mode(mode, plan, secrets)
    }

    /// A generation over `config`'s chain with what a guard adds: hedging and continuation as
    /// `settings` say.
    pub fn guarded(config: GenerationConfig, settings: GuardSettings) -> Generation {
        let mut generation = Generation::new(config);
        generation.mode.settings = settings;
        generation.mode.hedging = Some(&hedge::HEDGE);
        generation.mode.continuer = Some(&continuing::CONTINUER);
        generation
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
        let index = self.call.plan.provider_index();
        for mut attempt in std::mem::take(&mut self.attempts) {
            attempt.release(&mut self.actions);
            let outcome = attempt.outcome();
            let at = if attempt.phase == Phase::Over {
                attempt.over_at
            } else {
                now
            };
            if let Some(delivered) = attempt.delivered_text() {
                self.mode.partial_text = Some(delivered);
            }
            let started = attempt.ex.deadlines.started();
            self.call
                .plan
                .record(attempt.provider, &outcome, attempt.ex.status, started, at);
            self.observe(&attempt, &outcome);
        }
        if let Some(text) = self.continued_text() {
            self.mode.partial_text = Some(text);
        }
        self.report(GuardEvent::Cancelled {
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

    /// The next piece of text or event for the caller, if any.
    pub fn poll_delivery(&mut self) -> Option<Delivery> {
        self.run_steps();
        self.deliveries.pop_front().map(|queued| match queued {
            Queued::Text(attempt, text) => {
                if let Some(a) = self.attempts.iter_mut().find(|a| a.ex.id == attempt) {
                    a.delivered += text.len();
                }
                if let Some(continuer) = self.mode.continuer {
                    continuer.keep(self, attempt, &text);
                }
                Delivery::Text { attempt, text }
            }
            Queued::Event(event) => Delivery::Event(event),
        })
    }

    /// How the call ended, once it has.
    pub fn outcome(&self) -> Option<&Finished> {
        self.mode.outcome.as_ref()
    }

    /// Takes the outcome out (after it, [`Generation::outcome`] is `None` but the call stays
    /// over).
    pub fn take_outcome(&mut self) -> Option<Finished> {
        self.mode.outcome.take()
    }

    /// Send a request to provider `index` with `deadlines` (the continuation request while an
    /// answer is being continued).
    pub(super) fn send_to(&mut self, index: usize, deadlines: AttemptDeadlines) {
        let id = self.next_id();
        let body = match self.mode.continuer {
            Some(continuer) => continuer.body(self, id, index),
            None => Ok(None),
        };
        let config = &self.mode.config;
        let provider = &config.providers[index];
        let body = body.and_then(|body| {
            let body = body.as_deref().unwrap_or(&config.body_without_model);
            body_with_model(body, &provider.model)
        });
        match body {
            Ok(body) => {
                self.actions.push_back(Action::Send(Request {
                    attempt: id,
                    provider: index,
                    url: provider.url.clone(),
                    headers: request_headers(provider, config.stream),
                    body,
                }));
                self.attempts.push(Attempt::sent(id, index, deadlines));
            }
            Err(message) => {
                Answering::refuse(self, id, index, deadlines, Failure::Protocol, message)
            }
        }
    }

    /// While an answer is being continued: the whole text handed out so far.
    pub(super) fn continued_text(&self) -> Option<DeliveredText> {
        self.mode
            .continuer
            .and_then(|continuer| continuer.text(self))
    }
}

impl Mode for Answering {
    type Attempt = Attempt;
    type Queued = Queued;
    type Action = Action;
    const WAITS_FOR_DELIVERIES: bool = true;

    fn started(_: &mut Generation, _: Millis) {}

    fn event(m: &mut Generation, event: GuardEvent) {
        super::attempt::push_event(&mut m.deliveries, event);
    }

    /// One function for every input, so that the module carries one copy of what they share.
    #[inline(never)]
    fn feed(m: &mut Generation, id: AttemptId, input: Input<'_>) {
        let before = m.deliveries.len();
        // A stream shows progress in a read; a JSON answer at its end.
        let may_progress = matches!(input, Input::Bytes(..) | Input::End(_));
        let Some(attempt) = m.attempts.iter_mut().find(|a| a.ex.id == id) else {
            return;
        };
        let cx = &mut Ctx {
            provider: &m.mode.config.providers[attempt.provider],
            secrets: &m.secrets,
            max_event_bytes: m.mode.config.max_event_bytes,
            deliveries: &mut m.deliveries,
            actions: &mut m.actions,
            steps: &mut m.steps,
        };
        super::tell!(attempt, input, cx, attempt.after_read(cx));
        if let (true, Some(hedging)) = (may_progress, m.mode.hedging) {
            hedging.won_by(m, id);
        }
        if let Some(continuer) = m.mode.continuer {
            continuer.filter(m, id, before);
        }
    }

    fn send(m: &mut Generation, index: usize, deadlines: AttemptDeadlines) {
        m.send_to(index, deadlines);
    }

    fn refuse(
        m: &mut Generation,
        id: AttemptId,
        index: usize,
        deadlines: AttemptDeadlines,
        failure: Failure,
        message: String,
    ) {
        let mut cx = Ctx {
            provider: &m.mode.config.providers[index],
            secrets: &m.secrets,
            max_event_bytes: m.mode.config.max_event_bytes,
            deliveries: &mut m.deliveries,
            actions: &mut m.actions,
            steps: &mut m.steps,
        };
        let attempt = Attempt::refused(id, index, deadlines, failure, message, &mut cx);
        m.attempts.push(attempt);
    }

    fn release(attempt: &mut Attempt, actions: &mut VecDeque<Action>) {
        attempt.release(actions);
    }

    fn due(_: &Generation, attempt: &Attempt) -> Millis {
        attempt.ex.deadlines.due()
    }

    fn own_due(m: &Generation) -> (Option<Millis>, bool) {
        (m.mode.hedging.and_then(|hedging| hedging.due(m)), false)
    }

    fn clock(_: &mut Generation, _: Millis) -> bool {
        false
    }

    fn clock_after(m: &mut Generation, now: Millis) {
        if let Some(hedging) = m.mode.hedging {
            hedging.if_due(m, now);
        }
    }

    fn step(m: &mut Generation, step: Step) {
        match step {
            Step::Hedge { at } => {
                if let Some(hedging) = m.mode.hedging {
                    hedging.start(m, at);
                }
            }
            Step::SendHedge { at, provider } => {
                let timeouts = m.mode.config.providers[provider].timeouts;
                let deadlines =
                    AttemptDeadlines::start(at, timeouts, m.call.plan.service_deadline());
                m.send_to(provider, deadlines);
            }
            _ => {}
        }
    }

    /// What a continuation held back goes out before its attempt is judged.
    fn hold_judge(m: &mut Generation, id: AttemptId) -> bool {
        match m.mode.continuer {
            Some(continuer) => continuer.flush(m, id),
            None => false,
        }
    }

    fn verdict(m: &mut Generation, attempt: &Attempt) -> Verdict {
        let outcome = attempt.outcome();
        if let Some(delivered) = attempt.delivered_text() {
            m.mode.partial_text = Some(delivered);
        }
        let name = &m.mode.config.providers[attempt.provider].name;
        let (message, platform_cause) = attempt.message();
        let message = match &outcome {
            Outcome::Failed(Failure::Empty) => format!("empty response from {name}"),
            _ => message.to_owned(),
        };
        if let Some(text) = m.continued_text() {
            m.mode.partial_text = Some(text);
        }
        Verdict {
            outcome,
            message,
            cause: platform_cause.then_some(CauseRef::Platform(attempt.ex.id)),
            lines: attempt.counts().0 as f64,
        }
    }

    fn resolve(
        m: &mut Generation,
        attempt: Attempt,
        cause: Option<Failure>,
        verdict: Verdict,
        at: Millis,
    ) {
        let partial = cause.map(|failure| PartialCause {
            kind: failure.kind(),
            phase: timeout_parts(&failure).1,
            message: verdict.message,
            cause: verdict.cause,
            failure,
        });
        match m.mode.continuer {
            Some(continuer) => continuer.resolve_or_continue(m, attempt, partial, at),
            None => m.resolve(attempt, partial, at),
        }
    }

    fn reject(
        m: &mut Generation,
        attempt: Attempt,
        failure: Failure,
        verdict: Verdict,
        at: Millis,
    ) {
        if let (Some(continuer), Some(_)) = (m.mode.continuer, &m.mode.continuing) {
            return continuer.resolve_cut(m, at);
        }
        let error = m.error(
            &failure,
            verdict.message,
            attempt.provider,
            None,
            verdict.cause,
        );
        m.settle(Err(error));
    }

    fn expired(m: &mut Generation, at: Millis, expired: Expired, index: usize, message: String) {
        if let (Some(continuer), Some(_)) = (m.mode.continuer, &m.mode.continuing) {
            // The cut answer stands: nothing is lost to a continuation that ran out of time.
            return continuer.resolve_cut(m, at);
        }
        let error = m.error(&Failure::Timeout(expired), message, index, None, None);
        m.settle(Err(error));
    }
}
