//! One SDK request relayed through the guard, as a sans-IO machine: `guardFetch()`'s every
//! decision, with no platform, no clock and no I/O of its own.
//!
//! An SDK (openai, the AI SDK, Anthropic's) hands its `fetch` a request; the guard sends it to
//! the request's own endpoint exactly as given (attempt 0), and on failure to each fallback
//! provider with `model` replaced and the provider's own key and URL. It answers the SDK with
//! one `Response`:
//!
//! - A streaming request ([`RequestKind::Stream`]) runs every deadline layer. The attempt's
//!   bytes are held until the first progress ([`ProgressWatcher`], in the three formats it
//!   knows), so a failover before the first token is invisible: at first progress the machine
//!   commits ([`RelayDelivery::Commit`]), then hands out the held bytes and every later read
//!   unchanged ([`RelayDelivery::Bytes`]). After the commit nothing fails over; a cut ends as
//!   [`OnCut`] says (an errored body, or the format's own final error event).
//! - A JSON request ([`RequestKind::Json`]): the headers and service deadlines, retries and
//!   failover until a 2xx head, which commits at once.
//! - Anything else ([`RequestKind::Other`]): one attempt, the headers and service deadlines,
//!   committed at its head whatever its status.
//! - Everything failing before the commit: the guard's own response
//!   ([`RelayDelivery::Respond`]: 504 after a timeout, 502 otherwise, an OpenAI-style JSON error
//!   naming every attempt), or, when the last attempt was refused with a 4xx, that response
//!   itself, passed through.
//!
//! It is the call [`Machine`] in its relaying mode: the same call as a
//! [`crate::core::machine::Generation`]'s (one `begin`, one judgement, one back-off, the same
//! retry and failover rules of [`crate::core::call::CallPlan`], the same events), with an
//! answer that is never read as text but held, committed once and passed through. Every
//! message is kept free of keys (the fallbacks' and the SDK's own) by
//! [`crate::core::secrets`].
//!
//! It must never: change, reorder or drop a byte of a committed response, read a clock, or
//! hand anything out after a cancel (but the `cancelled` event).
//!
//! # How a driver calls it
//! a. [`Relay::new`], then [`Machine::start`] with the time.
//! b. Drain: [`Machine::poll_action`] (send a request; release an attempt) and
//!    [`Relay::poll_delivery`] (events, the commit, body bytes, the end) until both are `None`.
//! c. Once [`Machine::is_settled`], nothing more comes.
//! d. Otherwise wait for the platform or [`Machine::poll_timeout`], feed what happened
//!    ([`Machine::head`], [`Machine::body_bytes`], [`Machine::body_end`],
//!    [`Machine::body_error`], [`Machine::request_error`], [`Machine::handle_timeout`],
//!    [`Relay::cancel`]) and go to b.
//!    After the commit, a driver reads the committed body only as fast as its reader asks.

#[allow(private_interfaces)]
mod attempt;
mod proxy;
pub mod request;
mod shape;
mod types;

use std::collections::VecDeque;

use crate::core::answer::Outcome;
use crate::core::call::ProviderLimits;
use crate::core::deadline::{AttemptDeadlines, Expired, Millis, Timeouts};
use crate::core::events::GuardEvent;
use crate::core::machine::{AttemptId, CallState, Input, Machine, Mode, Plan, Skip, Step, Verdict};
use crate::core::policy::Failure;
use crate::core::progress::ProgressWatcher;
use attempt::{Attempt, Ctx, Phase};
use proxy::ProxyState;

/// Whether the edge worker's mode ([`Relay::with_proxy`]) is compiled in: natively (its tests
/// drive it) and in the worker's build, never in the browser package, whose `guardFetch()`
/// cannot reach it. Every use of the relay's proxy state is filtered by it, so the optimizer
/// drops the worker's shaping, heartbeats and refusals from the package's `.wasm`.
pub(super) const PROXY_MODE: bool = cfg!(any(feature = "worker", not(target_arch = "wasm32")));
pub use proxy::{asks_usage, with_usage, worker_tail, ProxyMode, HEARTBEAT, PROBE};
pub use request::RequestKind;
use request::{failure_body, fallback_headers, host_name, model_of, request_keys, with_model};
pub use types::{
    CutError, OnCut, Outgoing, RelayAction, RelayConfig, RelayDelivery, RelayProvider, SdkRequest,
};

/// One relayed request: the call machine in its relaying mode (see the module documentation).
pub type Relay = Machine<Relaying>;

/// One target of the chain, its request made once.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    model: String,
    url: String,
    headers: Vec<(String, String)>,
    /// `None`: the SDK's own body.
    body: Option<String>,
}

impl Target {
    /// `provider` in place of the SDK's endpoint: the SDK's headers with the provider's own
    /// key and headers, and `body` (the SDK's with the provider's model spliced in).
    fn fallback(
        provider: &RelayProvider,
        sdk_headers: &[(String, String)],
        body: Option<String>,
    ) -> Target {
        Target {
            name: provider.name.clone(),
            model: provider.model.clone(),
            url: provider.url.clone(),
            headers: fallback_headers(sdk_headers, &provider.headers, provider.api_key.as_deref()),
            body,
        }
    }
}

/// What a relay keeps besides the call: the request's kind and method, its targets, how a cut
/// ends, what each failed attempt said, and the edge worker's state.
#[derive(Debug)]
pub struct Relaying {
    kind: RequestKind,
    method: String,
    targets: Vec<Target>,
    max_event_bytes: usize,
    on_cut: OnCut,
    /// Per attempt judged before the commit: who, what happened.
    tried: Vec<(String, String)>,
    /// The edge worker's settings and state ([`Relay::with_proxy`]).
    proxy: Option<Box<ProxyState>>,
}

crate::core::machine::attempted!(Attempt);

impl Relay {
    /// A relay of `config.request` through its chain.
    pub fn new(config: RelayConfig) -> Relay {
        let request = &config.request;
        let kind = RequestKind::of(&request.method, request.body.as_deref());
        let own_model = request.body.as_deref().map(model_of).unwrap_or_default();
        let mut targets = vec![Target {
            name: host_name(&request.url),
            model: own_model,
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: None,
        }];
        let mut limits = vec![ProviderLimits {
            name: targets[0].name.clone(),
            timeouts: limit(kind, config.timeouts),
            max_retries: match kind {
                RequestKind::Other => 0,
                _ => config.max_retries,
            },
        }];
        let mut secrets = request_keys(&request.headers);
        if kind != RequestKind::Other {
            let body = request.body.as_deref().unwrap_or("{}");
            for provider in &config.fallbacks {
                targets.push(Target::fallback(
                    provider,
                    &request.headers,
                    with_model(body, &provider.model),
                ));
                limits.push(ProviderLimits {
                    name: provider.name.clone(),
                    timeouts: limit(kind, provider.timeouts),
                    max_retries: provider.max_retries,
                });
                secrets.extend(provider.api_key.clone().filter(|k| !k.is_empty()));
            }
        }
        Relay::build(&config, kind, targets, limits, secrets, None)
    }

    /// A relay of `config.request` of `kind` through `targets`.
    fn build(
        config: &RelayConfig,
        kind: RequestKind,
        targets: Vec<Target>,
        limits: Vec<ProviderLimits>,
        secrets: Vec<String>,
        proxy: Option<Box<ProxyState>>,
    ) -> Relay {
        let models = targets.iter().map(|t| t.model.clone()).collect();
        let mode = Relaying {
            kind,
            method: config.request.method.clone(),
            targets,
            max_event_bytes: config.max_event_bytes,
            on_cut: config.on_cut,
            tried: Vec::new(),
            proxy,
        };
        let plan = Plan {
            limits,
            models,
            policy: config.policy,
            service_ms: config.timeouts.service_ms,
            jitter_seed: config.jitter_seed,
        };
        Machine::with_mode(mode, plan, secrets)
    }

    /// What kind of request this is.
    pub fn kind(&self) -> RequestKind {
        self.mode.kind
    }

    /// The SDK (its signal, or its reader's cancel) or the guard's own signal or session
    /// cancelled at `now`, for `reason`: every attempt is released, one `cancelled` event,
    /// nothing else. A relay already settled stays as it was.
    pub fn cancel(&mut self, _now: Millis, reason: &str) {
        if matches!(self.state, CallState::Settled | CallState::Idle) {
            return;
        }
        self.deliveries.clear();
        for mut attempt in std::mem::take(&mut self.attempts) {
            // A request not sent yet is never sent (nothing to release then).
            let unsent = self.actions.len();
            self.actions
                .retain(|a| !matches!(a, RelayAction::Send(out) if out.attempt == attempt.ex.id));
            if self.actions.len() == unsent {
                attempt.release(&mut self.actions);
            }
        }
        self.report(GuardEvent::Cancelled {
            reason: reason.to_owned(),
        });
        self.close();
    }

    /// The next thing for the SDK.
    pub fn poll_delivery(&mut self) -> Option<RelayDelivery> {
        self.run_steps();
        loop {
            let delivery = self.deliveries.pop_front()?;
            if self.proxy_outgoing(&delivery) {
                return Some(delivery);
            }
        }
    }

    /// The committed attempt, while its body is being read.
    pub fn committed_attempt(&self) -> Option<AttemptId> {
        self.attempts
            .first()
            .filter(|a| a.phase == Phase::Committed)
            .map(|a| a.ex.id)
    }

    /// A guard left `provider` (of `model`) out of this call's fallbacks (its breaker is
    /// open): the `skipped` event, delivered with the call's first.
    pub fn skipped(&mut self, provider: String, model: String, skip: &Skip) {
        self.report(GuardEvent::Skipped {
            provider,
            model,
            reason: skip.reason.into(),
            retry_in_ms: skip.retry_in_ms,
        });
    }

    /// What an attempt at target `index` reports into.
    fn ctx(&mut self, index: usize) -> Ctx<'_> {
        let target = &self.mode.targets[index];
        Ctx {
            kind: self.mode.kind,
            name: &target.name,
            model: &target.model,
            url: &target.url,
            secrets: &self.secrets,
            max_event_bytes: self.mode.max_event_bytes,
            on_cut: self.mode.on_cut,
            service_deadline: self.call.plan.service_deadline(),
            deliveries: &mut self.deliveries,
            actions: &mut self.actions,
            proxy: self
                .mode
                .proxy
                .as_deref_mut()
                .filter(|_| PROXY_MODE)
                .map(|p| (&mut p.shaper, &p.mode)),
        }
    }

    /// After an input: a commit opens the status; an attempt that is over or finished is
    /// judged.
    #[inline(never)]
    fn after_input(&mut self) {
        let Some(attempt) = self.attempts.first() else {
            return;
        };
        let (id, phase) = (attempt.ex.id, attempt.phase);
        if matches!(phase, Phase::Committed | Phase::Finished) {
            self.proxy_committed();
        }
        if matches!(phase, Phase::Finished | Phase::Over) {
            self.steps.push_back(Step::Judge(id));
        }
    }

    /// Everything failed before the commit: the guard's own response.
    #[inline(never)]
    fn respond(&mut self, failure: &Failure) {
        if self.proxy_respond(failure) {
            return;
        }
        let status = match failure {
            Failure::Timeout(_) => 504,
            _ => 502,
        };
        let tried = &self.mode.tried;
        let count = tried.len();
        let mut message = format!(
            "llm-stream-guard: no answer after {count} attempt{}: ",
            if count == 1 { "" } else { "s" }
        );
        for (i, (name, what)) in tried.iter().enumerate() {
            if i > 0 {
                message.push_str("; ");
            }
            message.push_str(name);
            message.push_str(": ");
            message.push_str(what);
        }
        let tried: Vec<(String, String, Option<u16>)> = self
            .call
            .plan
            .attempts()
            .iter()
            .map(|a| (a.provider.clone(), a.outcome.clone(), a.status))
            .collect();
        let body = failure_body(&message, failure.kind(), &tried);
        self.deliveries
            .push_back(RelayDelivery::Respond { status, body });
        self.close();
    }
}

impl Mode for Relaying {
    type Attempt = Attempt;
    type Queued = RelayDelivery;
    type Action = RelayAction;
    const WAITS_FOR_DELIVERIES: bool = false;

    fn started(m: &mut Relay, now: Millis) {
        m.proxy_start(now);
    }

    #[inline(never)]
    fn event(m: &mut Relay, event: GuardEvent) {
        if let (Some(proxy), Some(RelayDelivery::Close)) = (
            m.mode.proxy.as_ref().filter(|_| PROXY_MODE),
            m.deliveries.back(),
        ) {
            // The worker's client gets its events in the stream: this one before its end, and
            // before the read that ended it (a client stops at `[DONE]` or an error chunk).
            let close = m.deliveries.len() - 1;
            let at = match proxy.mode.client_events {
                true => m
                    .deliveries
                    .iter()
                    .rposition(|d| matches!(d, RelayDelivery::Bytes(_)))
                    .unwrap_or(close),
                false => close,
            };
            return m.deliveries.insert(at, RelayDelivery::Event(event));
        }
        m.deliveries.push_back(RelayDelivery::Event(event));
    }

    /// Hands an input to the current attempt `id` (reports about any other are ignored), then
    /// looks at where it left the relay.
    #[inline(never)]
    fn feed(m: &mut Relay, id: AttemptId, input: Input<'_>) {
        if let Some(now) = input.now() {
            m.proxy_input(now);
        }
        if m.attempts.first().is_none_or(|a| a.ex.id != id) {
            return; // an attempt that is over: a late report
        }
        let Some(mut attempt) = m.attempts.pop() else {
            return;
        };
        let cx = &mut m.ctx(attempt.provider);
        crate::core::machine::tell!(attempt, input, cx, ());
        m.attempts.push(attempt);
        m.after_input();
    }

    fn send(m: &mut Relay, index: usize, deadlines: AttemptDeadlines) {
        let id = m.next_id();
        let target = &m.mode.targets[index];
        if index > 0 && target.body.is_none() {
            // The SDK's body is not a JSON object: a fallback cannot be given its model.
            let message = [
                "the request body is not a JSON object, so ",
                &target.name,
                " cannot be given its model",
            ]
            .concat();
            return Relaying::refuse(m, id, index, deadlines, Failure::Protocol, message);
        }
        m.actions.push_back(RelayAction::Send(Outgoing {
            attempt: id,
            method: m.mode.method.clone(),
            url: target.url.clone(),
            headers: target.headers.clone(),
            body: target.body.clone(),
        }));
        m.attempts.push(Attempt::sent(id, index, deadlines));
    }

    fn refuse(
        m: &mut Relay,
        id: AttemptId,
        index: usize,
        deadlines: AttemptDeadlines,
        failure: Failure,
        message: String,
    ) {
        let now = deadlines.started();
        let mut attempt = Attempt::sent(id, index, deadlines);
        attempt.ex.closed();
        attempt.fail(now, failure, message);
        m.attempts.push(attempt);
        m.after_input();
    }

    fn release(attempt: &mut Attempt, actions: &mut VecDeque<RelayAction>) {
        attempt.release(actions);
    }

    fn due(m: &Relay, attempt: &Attempt) -> Millis {
        attempt.due(m.call.plan.service_deadline())
    }

    fn own_due(m: &Relay) -> (Option<Millis>, bool) {
        (m.proxy_due(), m.paused())
    }

    fn clock(m: &mut Relay, now: Millis) -> bool {
        m.proxy_timeout(now) || m.paused()
    }

    fn clock_after(_: &mut Relay, _: Millis) {}

    fn step(_: &mut Relay, _: Step) {}

    fn hold_judge(_: &mut Relay, _: AttemptId) -> bool {
        false
    }

    fn verdict(m: &mut Relay, attempt: &Attempt) -> Verdict {
        let (outcome, message) = match &attempt.failure {
            Some((failure, message)) => {
                let name = m.mode.targets[attempt.provider].name.clone();
                m.mode.tried.push((name, message.clone()));
                m.proxy_judged(failure);
                (Outcome::Failed(failure.clone()), message.clone())
            }
            None => match &attempt.cut {
                Some(failure) => (Outcome::Partial(failure.clone()), String::new()),
                None => (Outcome::Complete, String::new()),
            },
        };
        Verdict {
            outcome,
            message,
            cause: None,
            lines: 0.0,
        }
    }

    /// The committed body is over (whole, or cut): `done`, and the relay is over.
    fn resolve(m: &mut Relay, mut attempt: Attempt, _: Option<Failure>, _: Verdict, at: Millis) {
        attempt.release(&mut m.actions);
        m.report(GuardEvent::Done {
            provider: m.mode.targets[attempt.provider].name.clone(),
            partial: attempt.cut.is_some(),
            elapsed_ms: at - m.started,
        });
        m.close();
    }

    /// Nothing is left to try: a refusal is passed through, or the guard answers with its own
    /// failure response.
    fn reject(m: &mut Relay, mut attempt: Attempt, failure: Failure, _: Verdict, _: Millis) {
        if let (
            Failure::Http {
                status: 400..=499, ..
            },
            None,
        ) = (&failure, m.mode.proxy.as_ref().filter(|_| PROXY_MODE))
        {
            if attempt.phase_before_over == Phase::ErrorBody {
                // The upstream refused the request: its own answer goes to the SDK.
                let mut cx = m.ctx(attempt.provider);
                attempt.commit_refusal(&mut cx);
                m.attempts.push(attempt);
                return m.after_input();
            }
        }
        attempt.release(&mut m.actions);
        m.respond(&failure);
    }

    fn expired(m: &mut Relay, _: Millis, expired: Expired, index: usize, message: String) {
        let name = m.mode.targets[index].name.clone();
        m.mode.tried.push((name, message));
        m.respond(&Failure::Timeout(expired));
    }
}

/// The deadlines a request of `kind` runs: every layer for a stream, else the headers and
/// service deadlines only (the others never come due).
fn limit(kind: RequestKind, timeouts: Timeouts) -> Timeouts {
    match kind {
        RequestKind::Stream => timeouts,
        RequestKind::Json | RequestKind::Other => Timeouts {
            first_token_ms: f64::INFINITY,
            idle_ms: f64::INFINITY,
            stream_ms: f64::INFINITY,
            ..timeouts
        },
    }
}

/// A watcher for a stream sent to `url`.
fn watcher(url: &str, max_event_bytes: usize) -> ProgressWatcher {
    ProgressWatcher::new(format_of(url), max_event_bytes)
}

/// The stream format of an endpoint, by its path.
fn format_of(url: &str) -> Option<crate::core::progress::Format> {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.find('/').map_or("", |at| &path[at..]);
    crate::core::progress::Format::from_path(path)
}
