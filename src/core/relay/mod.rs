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
//! It reuses the core's parts: [`CallPlan`] decides between attempts (the same retry and
//! failover rules as `generate()`), [`AttemptDeadlines`](crate::core::deadline::AttemptDeadlines) times each attempt, [`GuardEvent`]s
//! report what happens, [`crate::core::secrets`] keeps keys (the fallbacks' and the SDK's own)
//! out of every message. It is a machine of its own rather than a mode of
//! [`crate::core::machine::Generation`] because what it does with an answer is different in
//! kind: it never reads text, it holds and passes bytes, and it commits a response once.
//!
//! It must never: change, reorder or drop a byte of a committed response, read a clock, or
//! hand anything out after a cancel (but the `cancelled` event).
//!
//! # How a driver calls it
//! a. [`Relay::new`], then [`Relay::start`] with the time.
//! b. Drain: [`Relay::poll_action`] (send a request; release an attempt) and
//!    [`Relay::poll_delivery`] (events, the commit, body bytes, the end) until both are `None`.
//! c. Once [`Relay::is_settled`], nothing more comes.
//! d. Otherwise wait for the platform or [`Relay::poll_timeout`], feed what happened
//!    ([`Relay::head`], [`Relay::body_bytes`], [`Relay::body_end`], [`Relay::body_error`],
//!    [`Relay::request_error`], [`Relay::handle_timeout`], [`Relay::cancel`]) and go to b.
//!    After the commit, a driver reads the committed body only as fast as its reader asks.

mod attempt;
mod proxy;
pub mod request;
mod shape;
mod types;

use std::collections::VecDeque;

use crate::core::answer::Outcome;
use crate::core::call::{CallPlan, Next, ProviderLimits};
use crate::core::deadline::{Due, Millis, Timeouts, WakeAt};
use crate::core::events::{whole, GuardEvent};
use crate::core::machine::{AttemptId, BodyError, Head, Jitter, Observation, Skip};
use crate::core::policy::{Failure, RetryPolicy};
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

/// Where the relay is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Idle,
    Running,
    BackingOff(WakeAt),
    Committed,
    Settled,
}

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

/// One relayed request: see the module documentation.
#[derive(Debug)]
pub struct Relay {
    kind: RequestKind,
    method: String,
    targets: Vec<Target>,
    secrets: Vec<String>,
    max_event_bytes: usize,
    on_cut: OnCut,
    plan: CallPlan,
    limits: Vec<ProviderLimits>,
    policy: RetryPolicy,
    service_ms: Millis,
    jitter: Jitter,
    state: State,
    started: Millis,
    next_id: u32,
    attempt: Option<Attempt>,
    /// Per attempt judged before the commit: who, what happened.
    tried: Vec<(String, String)>,
    deliveries: VecDeque<RelayDelivery>,
    actions: VecDeque<RelayAction>,
    /// The edge worker's settings and state ([`Relay::with_proxy`]).
    proxy: Option<Box<ProxyState>>,
    /// What each attempt showed as it ended ([`Relay::observations`]).
    observed: Vec<Observation>,
}

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
        Relay {
            kind,
            method: request.method.clone(),
            targets,
            secrets,
            max_event_bytes: config.max_event_bytes,
            on_cut: config.on_cut,
            plan: CallPlan::new(0.0, Vec::new(), config.policy, 0.0),
            limits,
            policy: config.policy,
            service_ms: config.timeouts.service_ms,
            jitter: Jitter::new(config.jitter_seed),
            state: State::Idle,
            started: 0.0,
            next_id: 0,
            attempt: None,
            tried: Vec::new(),
            deliveries: VecDeque::new(),
            actions: VecDeque::new(),
            proxy: None,
            observed: Vec::new(),
        }
    }

    /// What kind of request this is.
    pub fn kind(&self) -> RequestKind {
        self.kind
    }

    // ------------------------------------------------------------------ inputs

    /// The relay begins at `now`.
    pub fn start(&mut self, now: Millis) {
        if self.state != State::Idle {
            return;
        }
        self.started = now;
        self.plan = CallPlan::new(now, self.limits.clone(), self.policy, self.service_ms);
        self.state = State::Running;
        self.proxy_start(now);
        self.begin(now);
    }

    /// The response head of `attempt` arrived.
    pub fn head(&mut self, attempt: AttemptId, now: Millis, head: Head) {
        let mut head = Some(head);
        self.with(attempt, now, &mut |a, cx| {
            if let Some(head) = head.take() {
                a.head(now, head, cx)
            }
        });
    }

    /// Body bytes of `attempt` arrived.
    pub fn body_bytes(&mut self, attempt: AttemptId, now: Millis, bytes: &[u8]) {
        self.with(attempt, now, &mut |a, cx| a.bytes(now, bytes, cx));
    }

    /// The body of `attempt` ended.
    pub fn body_end(&mut self, attempt: AttemptId, now: Millis) {
        self.with(attempt, now, &mut |a, cx| a.end(now, cx));
    }

    /// Reading the body of `attempt` failed.
    pub fn body_error(&mut self, attempt: AttemptId, now: Millis, error: BodyError) {
        let mut error = Some(error);
        self.with(attempt, now, &mut |a, cx| {
            if let Some(error) = error.take() {
                a.body_error(now, error, cx)
            }
        });
    }

    /// The request of `attempt` failed before any response.
    pub fn request_error(&mut self, attempt: AttemptId, now: Millis, message: &str) {
        self.with(attempt, now, &mut |a, cx| a.request_error(now, message, cx));
    }

    /// The clock read `now`: whatever is due happens; nothing else does.
    pub fn handle_timeout(&mut self, now: Millis) {
        if self.proxy_timeout(now) {
            return;
        }
        if self.paused() {
            return;
        }
        match self.state {
            State::Idle | State::Settled => {}
            State::BackingOff(until) => {
                if until.passed(now) {
                    self.state = State::Running;
                    self.begin(now);
                }
            }
            State::Running | State::Committed => {
                if let Some(id) = self.attempt.as_ref().map(|a| a.ex.id) {
                    self.with(id, now, &mut |a, cx| a.timeout(now, cx));
                }
            }
        }
    }

    /// The SDK (its signal, or its reader's cancel) or the guard's own signal or session
    /// cancelled at `now`, for `reason`: every attempt is released, one `cancelled` event,
    /// nothing else. A relay already settled stays as it was.
    pub fn cancel(&mut self, _now: Millis, reason: &str) {
        if matches!(self.state, State::Settled | State::Idle) {
            return;
        }
        self.deliveries.clear();
        if let Some(mut attempt) = self.attempt.take() {
            // A request not sent yet is never sent (nothing to release then).
            let unsent = self.actions.len();
            self.actions
                .retain(|a| !matches!(a, RelayAction::Send(out) if out.attempt == attempt.ex.id));
            if self.actions.len() == unsent {
                attempt.release(&mut self.actions);
            }
        }
        self.event(GuardEvent::Cancelled {
            reason: reason.to_owned(),
        });
        self.state = State::Settled;
    }

    // ------------------------------------------------------------------ outputs

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<RelayAction> {
        self.actions.pop_front()
    }

    /// The next thing for the SDK.
    pub fn poll_delivery(&mut self) -> Option<RelayDelivery> {
        loop {
            let delivery = self.deliveries.pop_front()?;
            if self.proxy_outgoing(&delivery) {
                return Some(delivery);
            }
        }
    }

    /// When [`Relay::handle_timeout`] is wanted; `None` when nothing waits on the clock.
    pub fn poll_timeout(&self) -> Option<Millis> {
        let own = self.proxy_due();
        if self.paused() {
            return own;
        }
        let due = match self.state {
            State::BackingOff(until) => Some(until.due()),
            State::Running | State::Committed => self
                .attempt
                .as_ref()
                .filter(|a| a.is_waiting())
                .map(|a| a.due(self.plan.service_deadline())),
            State::Idle | State::Settled => None,
        };
        match (due, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether nothing more will happen (all deliveries may not be out yet: drain them).
    pub fn is_settled(&self) -> bool {
        self.state == State::Settled
    }

    /// The committed attempt, while its body is being read.
    pub fn committed_attempt(&self) -> Option<AttemptId> {
        self.attempt
            .as_ref()
            .filter(|a| a.phase == Phase::Committed)
            .map(|a| a.ex.id)
    }

    // ------------------------------------------------------------------ the steps

    #[inline(never)]
    fn event(&mut self, event: GuardEvent) {
        if let (Some(proxy), Some(RelayDelivery::Close)) = (
            self.proxy.as_ref().filter(|_| PROXY_MODE),
            self.deliveries.back(),
        ) {
            // The worker's client gets its events in the stream: this one before its end, and
            // before the read that ended it (a client stops at `[DONE]` or an error chunk).
            let close = self.deliveries.len() - 1;
            let at = match proxy.mode.client_events {
                true => self
                    .deliveries
                    .iter()
                    .rposition(|d| matches!(d, RelayDelivery::Bytes(_)))
                    .unwrap_or(close),
                false => close,
            };
            return self.deliveries.insert(at, RelayDelivery::Event(event));
        }
        self.deliveries.push_back(RelayDelivery::Event(event));
    }

    /// Ask the current target, unless the service deadline has passed.
    #[inline(never)]
    fn begin(&mut self, now: Millis) {
        let index = self.plan.provider_index();
        if let Some(expired) = self.plan.service_expired(now) {
            let message = format!(
                "service timeout: {} ms passed before {} could be asked",
                whole(self.service_ms),
                self.targets[index].name
            );
            self.tried.push((self.targets[index].name.clone(), message));
            return self.respond(&Failure::Timeout(expired));
        }
        let target = &self.targets[index];
        self.deliveries
            .push_back(RelayDelivery::Event(GuardEvent::RequestStart {
                provider: target.name.clone(),
                model: target.model.clone(),
                attempt: self.plan.attempt_number(),
            }));
        let id = AttemptId(self.next_id);
        self.next_id += 1;
        let deadlines = self.plan.begin_attempt(now);
        let mut attempt = Attempt::sent(id, index, deadlines);
        if index > 0 && target.body.is_none() {
            // The SDK's body is not a JSON object: a fallback cannot be given its model.
            let mut cx = self.ctx(index);
            attempt.refuse(now, &mut cx);
        } else {
            self.actions.push_back(RelayAction::Send(Outgoing {
                attempt: id,
                method: self.method.clone(),
                url: target.url.clone(),
                headers: target.headers.clone(),
                body: target.body.clone(),
            }));
        }
        self.attempt = Some(attempt);
        self.after_input();
    }

    /// What an attempt at target `index` reports into.
    fn ctx(&mut self, index: usize) -> Ctx<'_> {
        Ctx {
            kind: self.kind,
            name: &self.targets[index].name,
            model: &self.targets[index].model,
            url: &self.targets[index].url,
            secrets: &self.secrets,
            max_event_bytes: self.max_event_bytes,
            on_cut: self.on_cut,
            service_deadline: self.plan.service_deadline(),
            deliveries: &mut self.deliveries,
            actions: &mut self.actions,
            proxy: self
                .proxy
                .as_deref_mut()
                .filter(|_| PROXY_MODE)
                .map(|p| (&mut p.shaper, &p.mode)),
        }
    }

    /// Hands an input to the current attempt `id` (reports about any other are ignored), then
    /// acts on where it left the relay.
    #[inline(never)]
    fn with(
        &mut self,
        id: AttemptId,
        now: Millis,
        input: &mut dyn FnMut(&mut Attempt, &mut Ctx<'_>),
    ) {
        if matches!(self.state, State::Settled | State::Idle) {
            return;
        }
        self.proxy_input(now);
        if self.attempt.as_ref().is_none_or(|a| a.ex.id != id) {
            return; // an attempt that is over: a late report
        }
        let Some(mut attempt) = self.attempt.take() else {
            return;
        };
        let mut cx = self.ctx(attempt.target);
        input(&mut attempt, &mut cx);
        self.attempt = Some(attempt);
        self.after_input();
    }

    /// After an input: a commit moves the relay on; an attempt that is over is judged; a
    /// committed body that ended settles the relay.
    #[inline(never)]
    fn after_input(&mut self) {
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        if matches!(attempt.phase, Phase::Committed | Phase::Finished) {
            self.proxy_committed();
        }
        let Some(attempt) = self.attempt.as_mut() else {
            return;
        };
        match attempt.phase {
            Phase::Committed => self.state = State::Committed,
            Phase::Finished => {
                let mut attempt = self.attempt.take().expect("checked");
                attempt.release(&mut self.actions);
                let at = attempt.over_at;
                let outcome = match &attempt.cut {
                    Some(failure) => Outcome::Partial(failure.clone()),
                    None => Outcome::Complete,
                };
                let started = attempt.ex.deadlines.started();
                self.observe(&attempt, attempt.cut.clone());
                let _ = self
                    .plan
                    .finish_attempt(&outcome, attempt.ex.status, started, at, 0.0);
                self.event(GuardEvent::Done {
                    provider: self.targets[attempt.target].name.clone(),
                    partial: attempt.cut.is_some(),
                    elapsed_ms: at - self.started,
                });
                self.state = State::Settled;
            }
            Phase::Over => {
                let attempt = self.attempt.take().expect("checked");
                self.judge(attempt);
            }
            Phase::AwaitingHead | Phase::Holding | Phase::ErrorBody => {}
        }
    }

    /// An attempt before the commit is over: report its failure, then retry, fail over, pass a
    /// refusal through or answer with the guard's own failure response.
    #[inline(never)]
    fn judge(&mut self, mut attempt: Attempt) {
        let at = attempt.over_at;
        let (failure, message) = attempt.failure.clone().expect("an attempt over has failed");
        let name = self.targets[attempt.target].name.clone();
        if failure == Failure::Empty {
            self.event(GuardEvent::EmptyResponse {
                provider: name.clone(),
                lines: 0.0,
            });
        }
        let status = attempt
            .ex
            .status
            .filter(|_| matches!(failure, Failure::Http { .. }));
        self.event(GuardEvent::AttemptFailed {
            provider: name.clone(),
            kind: failure.kind(),
            status,
            message: message.clone(),
        });
        self.tried.push((name.clone(), message));
        self.observe(&attempt, Some(failure.clone()));
        self.proxy_judged(&failure);
        let started = attempt.ex.deadlines.started();
        let jitter = self.jitter.draw();
        let outcome = Outcome::Failed(failure.clone());
        match self
            .plan
            .finish_attempt(&outcome, attempt.ex.status, started, at, jitter)
        {
            Next::Retry { delay_ms } => {
                attempt.release(&mut self.actions);
                self.event(GuardEvent::Retry {
                    provider: name,
                    attempt: self.plan.attempt_number(),
                    delay_ms,
                    reason: failure.kind().into(),
                });
                self.state = State::BackingOff(WakeAt(at + delay_ms));
            }
            Next::Failover { to } => {
                attempt.release(&mut self.actions);
                self.event(GuardEvent::Failover {
                    from: name,
                    to: self.targets[to].name.clone(),
                    reason: failure.kind().into(),
                });
                self.begin(at);
            }
            Next::Reject(_) | Next::Resolve { .. } => {
                if let (
                    Failure::Http {
                        status: 400..=499, ..
                    },
                    None,
                ) = (&failure, self.proxy.as_ref().filter(|_| PROXY_MODE))
                {
                    if attempt.phase_before_over == Phase::ErrorBody {
                        // The upstream refused the request: its own answer goes to the SDK.
                        let mut cx = self.ctx(attempt.target);
                        attempt.commit_refusal(&mut cx);
                        self.attempt = Some(attempt);
                        return self.after_input();
                    }
                }
                attempt.release(&mut self.actions);
                self.respond(&failure);
            }
        }
    }

    /// Notes what `attempt` showed as it ends (`failure`: what ended or cut it, if anything).
    fn observe(&mut self, attempt: &Attempt, failure: Option<Failure>) {
        self.observed.push(Observation {
            provider: attempt.target,
            failure,
            first_token_ms: attempt.ex.deadlines.first_token_ms(),
            longest_gap_ms: attempt.ex.deadlines.longest_gap_ms(),
        });
    }

    /// A guard left `provider` (of `model`) out of this call's fallbacks (its breaker is
    /// open): the `skipped` event, delivered with the call's first.
    pub fn skipped(&mut self, provider: String, model: String, skip: &Skip) {
        self.event(GuardEvent::Skipped {
            provider,
            model,
            reason: skip.reason.into(),
            retry_in_ms: skip.retry_in_ms,
        });
    }

    /// What each attempt showed as it ended, in order (a guard learns from it): its target's
    /// index (0 the request's own endpoint, then the fallbacks), its failure, its time to the
    /// first progress and its longest silence after it.
    pub fn observations(&self) -> &[Observation] {
        &self.observed
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
        let count = self.tried.len();
        let mut message = format!(
            "llm-stream-guard: no answer after {count} attempt{}: ",
            if count == 1 { "" } else { "s" }
        );
        for (i, (name, what)) in self.tried.iter().enumerate() {
            if i > 0 {
                message.push_str("; ");
            }
            message.push_str(name);
            message.push_str(": ");
            message.push_str(what);
        }
        let tried: Vec<(String, String, Option<u16>)> = self
            .plan
            .attempts()
            .iter()
            .map(|a| (a.provider.clone(), a.outcome.clone(), a.status))
            .collect();
        let body = failure_body(&message, failure.kind(), &tried);
        self.deliveries
            .push_back(RelayDelivery::Respond { status, body });
        self.state = State::Settled;
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
