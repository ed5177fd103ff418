//! One chat (or Responses API, or Anthropic Messages API) request: access, body, the request checks, then `guardFetch()`'s
//! driver running the call machine's relaying mode, in the worker's way ([`ProxyMode`]): the client's body
//! goes to the chain as it sent it (each provider's `model` spliced in, usage asked for on
//! streams), the upstream's bytes come back unchanged, and the machine alone decides the
//! status (held until progress or the first heartbeat), heartbeats, failover, the final error
//! chunk, the worker's refusals (504/502 JSON naming every provider with
//! `x-should-retry: false`, 429 with the smallest `Retry-After`), and when a client that stopped
//! reading is gone.
//!
//! The client leaving is noticed by the request's `signal` (workerd's `enable_request_signal`)
//! until the `Response` is returned (before the upstream answers, while the status is held),
//! and after that by the body's cancel, which workerd calls only when it writes to the gone
//! client: while the upstream is silent after the status, the relay writes a one-byte probe
//! every `LSG_PROBE_MS` so that a departed client is noticed within it. Either releases the
//! upstream at once.
//!
//! Metrics come from the machine's events as they are ([`GuardEvent`]); nothing is read back
//! from a JavaScript object by name.

use super::{get, header, json_response, metrics, refusal_response, response};
use crate::core::events::GuardEvent;
use crate::core::guard::state::{GuardState, GuardedCall};
use crate::core::proxy::{
    bearer_token, client_authorization, forward, messages_headers, misconfigured, Access, Api,
    ProxyConfig, Refusal,
};
use crate::core::relay::{OnCut, ProxyMode, Relay, RelayConfig, RequestKind, SdkRequest};
use crate::web::executor::spawn_local;
use crate::web::guard_fetch::{drive, jitter_seed, Answer, Cancels, Driver, Host};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal};

/// The bound on one SSE event the worker holds (a longer one goes out as it is).
const MAX_EVENT_BYTES: usize = 256 * 1024;

/// What the response body queues for a client that reads slowly (the upstream is read no
/// further meanwhile): room for the next upstream read while workerd writes the last one.
const BODY_BUFFER_BYTES: f64 = 64.0 * 1024.0;

thread_local! {
    /// The isolate's guard (`LSG_GUARD`): breakers and learned deadlines over the providers,
    /// made at its first request; its breakers' decisions are shared with other isolates when
    /// `LSG_GUARD_DO` is bound ([`super::shared`]).
    pub(super) static GUARD: RefCell<Option<GuardState>> = const { RefCell::new(None) };
}

/// The isolate's guard's breakers and samples for `/metrics` (nothing without `LSG_GUARD`, or
/// before its first request).
pub(super) fn guard_metrics() -> String {
    GUARD.with(|cell| match cell.borrow().as_ref() {
        Some(state) => crate::core::metrics::render_guard(&state.stats(js_sys::Date::now())),
        None => String::new(),
    })
}

/// A refusal before the relay: counted under `outcome`, answered with the CORS headers.
fn refuse(outcome: &str, refusal: &Refusal, cors: &[(&'static str, String)]) -> JsValue {
    metrics(|m| m.request(outcome));
    refusal_response(refusal, cors)
}

/// Refreshes the isolate's view of the shared breakers beside a request that is not a chat
/// (`/metrics`), once the guard exists.
pub(super) fn refresh_guard(env: &JsValue, ctx: &JsValue) {
    if GUARD.with(|cell| cell.borrow().is_some()) {
        super::shared::refresh_if_due(env, ctx);
    }
}

pub(super) async fn chat(
    request: JsValue,
    env: JsValue,
    ctx: JsValue,
    config: &ProxyConfig,
    origin: Option<String>,
    api: Api,
) -> JsValue {
    let cors = config.cors_headers(origin.as_deref());
    let messages = api == Api::Messages;
    let authorization = client_authorization(
        messages,
        header(&request, "authorization"),
        header(&request, "x-api-key"),
    );
    if config.authorize(authorization.as_deref(), origin.as_deref()) == Access::Denied {
        let refusal = Refusal::new(
            401,
            "authentication_error",
            "unauthorized",
            "a client token (Authorization: Bearer …) or an allowed Origin is required",
        );
        return refuse("unauthorized", &refusal, &cors);
    }
    let body = match super::read_body(&request, config.max_body_bytes, config.body_ms).await {
        Ok(body) => body,
        Err(refusal) => {
            let outcome = match refusal.status {
                413 => "too_large",
                408 => "body_timeout",
                _ => "bad_request",
            };
            return refuse(outcome, &refusal, &cors);
        }
    };
    let forwarded = match forward(&body, config, api) {
        Ok(forwarded) => forwarded,
        Err(refusal) => return refuse("bad_request", &refusal, &cors),
    };
    let key = |name: &str| get(&env, name).as_string();
    let targets = config.targets(forwarded.model.as_deref(), api, key);
    let call = config.timeouts;
    let (targets, skipped, guarded) = match &config.guard {
        None => (targets, Vec::new(), None),
        Some(settings) => GUARD.with(|cell| {
            let mut cell = cell.borrow_mut();
            let state =
                cell.get_or_insert_with(|| GuardState::for_relay(settings.clone(), &targets));
            let (kept, skipped, call) = state.start_relay(js_sys::Date::now(), targets);
            (kept, skipped, Some(call))
        }),
    };
    if guarded.is_some() {
        // Beside the request: this one goes with the view the isolate has.
        super::shared::refresh_if_due(&env, &ctx);
    }
    if targets.is_empty() {
        let refusal = Refusal::new(
            503,
            "server_error",
            "unavailable",
            "every provider is skipped: their breakers are open after failures in a row",
        );
        return refuse("unavailable", &refusal, &cors);
    }
    let policy = config.retry;
    let id = format!(
        "chatcmpl-lsg-{:012x}",
        (js_sys::Math::random() * 2f64.powi(48)) as u64
    );
    let client_events = header(&request, "x-lsg-events").is_some_and(|v| v.trim() == "1");
    let mode = ProxyMode {
        targets,
        include_usage: true,
        strip_usage: !forwarded.asks_usage,
        heartbeat_ms: Some(config.heartbeat_ms),
        client_events,
        secrets: authorization
            .as_deref()
            .and_then(bearer_token)
            .map(str::to_owned)
            .into_iter()
            .collect(),
        stream_id: id.clone(),
        created: (js_sys::Date::now() / 1000.0) as u64,
        client_idle_ms: call.idle_ms,
        probe_ms: Some(config.probe_ms).filter(|ms| *ms > 0.0),
    };
    let mut relay = Relay::with_proxy(
        RelayConfig {
            request: SdkRequest {
                method: "POST".into(),
                url: String::new(),
                headers: {
                    let mut headers = vec![("content-type".into(), "application/json".into())];
                    if messages {
                        headers.extend(messages_headers(
                            header(&request, "anthropic-version"),
                            header(&request, "anthropic-beta"),
                        ));
                    }
                    headers
                },
                body: Some(forwarded.body),
            },
            timeouts: call,
            max_retries: policy.max_retries,
            fallbacks: Vec::new(),
            policy,
            max_event_bytes: MAX_EVENT_BYTES,
            on_cut: OnCut::Finish,
            jitter_seed: jitter_seed(),
        },
        mode,
    );
    for (provider, model, skip) in skipped {
        relay.skipped(provider, model, &skip);
    }
    let host = WorkerHost {
        stream: relay.kind() == RequestKind::Stream,
        id,
        cors: cors.clone(),
        counted: false,
        active: false,
        guarded,
        env,
        ctx,
    };
    let (promise, Some(answer)) = Answer::new() else {
        return refuse("internal", &misconfigured(), &cors);
    };
    // The request's signal aborts when the client goes (workerd's `enable_request_signal`);
    // without one, nothing but the body's cancel tells.
    let signal = get(&request, "signal")
        .dyn_into::<AbortSignal>()
        .ok()
        .or_else(|| AbortController::new().ok().map(|c| c.signal()));
    let Some(signal) = signal else {
        return refuse("internal", &misconfigured(), &cors);
    };
    let cancels = Cancels {
        sdk: signal,
        guard: Vec::new(),
    };
    let mut driver = Driver::with_relay(relay, Box::new(host), None, answer, cancels);
    driver.buffer_bytes = BODY_BUFFER_BYTES;
    driver.listen();
    spawn_local(drive(driver));
    match JsFuture::from(promise).await {
        Ok(response) => response,
        // The client left before the status: nobody reads this.
        Err(_) => json_response(499, "{}", &cors),
    }
}

/// The worker's side of the driver: its client's `Response`s and its metrics.
struct WorkerHost {
    stream: bool,
    id: String,
    cors: Vec<(&'static str, String)>,
    /// The request's outcome was counted.
    counted: bool,
    /// It is counted among the active streams.
    active: bool,
    /// The isolate's guard's part in this request (`LSG_GUARD`), learned from when it ends.
    guarded: Option<GuardedCall>,
    /// The request's `env` and `ctx`, for reporting to the shared breakers when it ends.
    env: JsValue,
    ctx: JsValue,
}

impl WorkerHost {
    fn count(&mut self, outcome: &str) {
        if !std::mem::replace(&mut self.counted, true) {
            metrics(|m| m.request(outcome));
        }
    }

    /// The status of a streamed or whole answer, with the worker's own headers.
    fn answer(&mut self, status: u16, body: &JsValue) -> JsValue {
        let content_type = match self.stream {
            true => "text/event-stream; charset=utf-8",
            false => "application/json",
        };
        let mut headers = vec![
            ("content-type", content_type.to_owned()),
            ("cache-control", "no-cache".to_owned()),
            ("x-request-id", self.id.clone()),
        ];
        headers.extend(self.cors.iter().cloned());
        if self.stream && !self.active {
            self.active = true;
            metrics(|m| m.active_streams(1));
        }
        response(body, status, &headers)
    }
}

impl Host for WorkerHost {
    fn event(&mut self, event: &GuardEvent) {
        match event {
            GuardEvent::FirstToken { first_token_ms, .. } => {
                metrics(|m| m.first_token(*first_token_ms))
            }
            GuardEvent::Retry { .. } => metrics(|m| m.retry()),
            GuardEvent::Failover { .. } => metrics(|m| m.failover()),
            GuardEvent::Timeout { layer, phase, .. } => metrics(|m| m.timeout(layer, phase)),
            GuardEvent::Done { partial, .. } => {
                self.count(if *partial { "partial" } else { "complete" })
            }
            GuardEvent::Cancelled { .. } => {
                if !self.counted {
                    metrics(|m| m.cancellation());
                }
                self.count("cancelled");
            }
            _ => {}
        }
    }

    fn commit(
        &mut self,
        status: u16,
        _upstream: &JsValue,
        body: &JsValue,
    ) -> Result<JsValue, JsValue> {
        Ok(self.answer(status, body))
    }

    fn open(&mut self, body: &JsValue) -> Result<JsValue, JsValue> {
        Ok(self.answer(200, body))
    }

    fn respond(&mut self, relay: &Relay, status: u16, body: &str) -> Result<JsValue, JsValue> {
        self.count(relay.failure_kind().unwrap_or("network"));
        Ok(match relay.final_refusal() {
            Some(refusal) => refusal_response(&refusal, &self.cors),
            None => json_response(status, body, &self.cors),
        })
    }

    fn settled(&mut self, relay: &Relay) {
        if let Some(call) = self.guarded.take() {
            let changed = GUARD.with(|cell| {
                let mut cell = cell.borrow_mut();
                let state = cell.as_mut()?;
                let before = state.decisions();
                state.finish(js_sys::Date::now(), call, relay.observations());
                Some((before, state.decisions()))
            });
            if let Some((before, after)) = changed {
                super::shared::report(&self.env, &self.ctx, &before, &after);
            }
        }
        // A stream that failed after its status: the final error chunk went out.
        if let Some(kind) = relay.failure_kind() {
            self.count(kind);
        }
        if std::mem::take(&mut self.active) {
            metrics(|m| m.active_streams(-1));
        }
    }
}
