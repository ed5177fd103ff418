//! The size floor of the core alone: what a driver written in JavaScript would still load if
//! every driver of `src/web` (`generate()`, `stream()`, `Session`, `guardFetch()`, `Guard`) were
//! JavaScript and only the core decided, in Rust. Built only for bench row 2c (the crate's
//! feature `core-floor`, which compiles no driver); it is not part of the package.
//!
//! It hands a JavaScript driver every piece of the core the package's drivers use, and nothing
//! of theirs: the call machine in its answering mode, plain ([`Generation::new`], `generate()`'s) and guarded
//! (a [`GuardState`]'s, with hedging and continuation: the `Guard`'s calls); the same machine
//! in its relaying mode, as `guardFetch()` makes it in the browser ([`Relay::new`]), alone or with a guard's state
//! (`guard.fetch`); the options read and checked by the core's readers, every input of the
//! machines with values from the caller, and what they hand out (actions, deliveries, deadlines,
//! the outcome, the guard's stats) as JavaScript values, written by the package's own writer of
//! the core's `Serialize` types (`web::to_js`). Anything the JavaScript side does for itself
//! (building the request body, the platform's objects, errors, logging) is left to it, so the
//! figure is a lower bound for "JavaScript drivers around a Rust core". It must never decide
//! anything the core does not. Bench rows 7a and 8b also run their calls through minimal
//! JavaScript drivers of it (`bench/lib/core-driver.mjs`, `bench/lib/core-fetch.mjs`): the CPU
//! floor of the same design.
//!
//! The options are JavaScript values (the driver's plain-data copy of the caller's object, as
//! the package makes one), read through the core's [`OptionSource`] as the package's drivers
//! read them. Read from JSON text through the core's `JsonSource` instead, the module took
//! serde_json's parser and the `BTreeMap` of its values along: 37.0 KB raw, 16.3 KB gzipped more
//! after `wasm-opt` (279.6 / 120.6 KB against 242.6 / 104.3 KB, 2026-12-04), none of it the
//! core's.
//!
//! Shapes, for the JavaScript side: an action is `[0, attempt, provider, url, [name, value, …],
//! body]` (send), `[1, attempt]` (cancel) or `[2, attempt]` (finish); the relay's send has the
//! method and the body or `undefined` (the SDK's own) instead: `[0, attempt, method, url,
//! [name, value, …], body]`. A generation's delivery is `[0, attempt, text]` or `[1, event,
//! logLine]` (`logLine` only when the options' `log` prints it; `event` is `undefined` once
//! the driver said that nothing listens, `quiet()`, as the package's drivers then make no event
//! object); a relay's is `[0, event, logLine]`, `[1, attempt, status]` (commit),
//! `[2, status, body]` (its own response), `[3, bytes]`, `[4]` (close),
//! `[5, kind, message, provider, layer, phase]` (the body errors) or `[6]` (open). An outcome
//! is `[true, result, textAttempt, cause]` or `[false, error, partialTextAttempt, cause]`,
//! where `cause` is the attempt whose platform error it is, `"thrown"` (the callback's) or
//! `undefined`.

use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::core::deadline::{Millis, Timeouts};
use crate::core::events::{GuardEvent, LogLevel};
use crate::core::guard::state::{GuardState, GuardedCall};
use crate::core::machine::{
    Action, AttemptId, BodyError, Callback, CancelReason, CauseRef, DeliveredText, Delivery,
    Generation, GenerationConfig, Head,
};
use crate::core::options::{
    check_options_object, check_request_keys, on_cut, read_guard_options, read_options,
    unknown_key, OptionSource, OptionsData, GUARD_FETCH_OPTIONS,
};
use crate::core::policy::RetryPolicy;
use crate::core::relay::{
    OnCut, Relay, RelayAction, RelayConfig, RelayDelivery, RelayProvider, SdkRequest,
};
// Options are JavaScript values, read as the package's drivers read them.
use crate::web::objects::{get_named as get, set_named as set};
use crate::web::option_source::JsSource as Js;
use crate::web::to_js::to_js;

/// The options a guard hands to each of its calls (as `Guard` does).
const SHARED: [&str; 5] = ["providers", "timeouts", "retry", "fetch", "log"];

/// `generate()`'s data options, checked as its reader checks them.
fn read(options: &JsValue, has_base_url: bool) -> Result<OptionsData, String> {
    check_options_object(&Js, options)?;
    read_options(&Js, options, has_base_url)
}

/// The machine's configuration: the options read, and what the JavaScript side made (the
/// request body without `model`, a random seed).
fn config(data: OptionsData, body_without_model: String, jitter_seed: f64) -> GenerationConfig {
    data.into_config(body_without_model, jitter_seed as u64)
}

/// `[name, value, name, value, …]`.
fn pairs(headers: &[(String, String)]) -> Array {
    let list = Array::new();
    for (name, value) in headers {
        list.push(&JsValue::from_str(name));
        list.push(&JsValue::from_str(value));
    }
    list
}

/// `[name, value, name, value, …]` back into pairs.
fn unpair(flat: Vec<String>) -> Vec<(String, String)> {
    let mut flat = flat.into_iter();
    let mut headers = Vec::new();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        headers.push((name, value));
    }
    headers
}

/// A send action: `[0, attempt, which, url, [name, value, …], body]` (`which`: the provider's
/// index for a generation, the method for a relay).
fn send(
    id: AttemptId,
    which: &JsValue,
    url: &str,
    headers: &[(String, String)],
    body: &JsValue,
) -> JsValue {
    let list = Array::of3(&number(0), &attempt(id), which);
    list.push(&JsValue::from_str(url));
    list.push(&pairs(headers));
    list.push(body);
    list.into()
}

fn number(n: impl Into<f64>) -> JsValue {
    JsValue::from_f64(n.into())
}

fn attempt(id: AttemptId) -> JsValue {
    number(id.0)
}

/// An event (`undefined` when nothing listens: `quiet`) and its log line when `log` prints it.
fn event(log: LogLevel, quiet: bool, event: &GuardEvent) -> (JsValue, JsValue) {
    let line = match log {
        LogLevel::Off => JsValue::UNDEFINED,
        log => match event.log_line() {
            (level, line) if level <= log => JsValue::from_str(&line),
            _ => JsValue::UNDEFINED,
        },
    };
    let object = match quiet {
        true => JsValue::UNDEFINED,
        false => to_js(event),
    };
    (object, line)
}

fn delivered(text: Option<DeliveredText>) -> JsValue {
    text.map_or(JsValue::UNDEFINED, |text| attempt(text.attempt))
}

fn cause(cause: Option<CauseRef>) -> JsValue {
    match cause {
        None => JsValue::UNDEFINED,
        Some(CauseRef::Platform(id)) => attempt(id),
        Some(CauseRef::Thrown) => JsValue::from_str("thrown"),
    }
}

/// One generation (`generate()`'s, or a guard's call): see the module documentation.
#[wasm_bindgen]
pub struct CoreGeneration {
    machine: Generation,
    log: LogLevel,
    /// Nothing listens to its events: none is made into an object.
    quiet: bool,
    /// A guard's call: what its guard learns from when it is over.
    call: Option<GuardedCall>,
}

#[wasm_bindgen]
impl CoreGeneration {
    /// `generate()`'s machine over `options`, with the body the JavaScript side built.
    #[wasm_bindgen(constructor)]
    pub fn new(
        options: JsValue,
        body_without_model: String,
        jitter_seed: f64,
        has_base_url: bool,
    ) -> Result<CoreGeneration, String> {
        let data = read(&options, has_base_url)?;
        let log = data.log;
        Ok(CoreGeneration {
            machine: Generation::new(config(data, body_without_model, jitter_seed)),
            log,
            quiet: false,
            call: None,
        })
    }

    /// `by`: 0 the caller's signal, 1 `onText` threw, 2 `onEvent` threw, else `name`.
    pub fn cancel(&mut self, now: Millis, by: u32, name: String) {
        let reason = match by {
            0 => CancelReason::Signal,
            1 => CancelReason::Callback(Callback::OnText),
            2 => CancelReason::Callback(Callback::OnEvent),
            _ => CancelReason::Named(name),
        };
        self.machine.cancel(now, reason);
    }

    pub fn poll_action(&mut self) -> JsValue {
        match self.machine.poll_action() {
            None => JsValue::UNDEFINED,
            Some(Action::Send(request)) => send(
                request.attempt,
                &number(request.provider as u32),
                &request.url,
                &request.headers,
                &JsValue::from_str(&request.body),
            ),
            Some(Action::Cancel { attempt: id }) => Array::of2(&number(1), &attempt(id)).into(),
            Some(Action::Finish { attempt: id }) => Array::of2(&number(2), &attempt(id)).into(),
        }
    }

    pub fn poll_delivery(&mut self) -> JsValue {
        match self.machine.poll_delivery() {
            None => JsValue::UNDEFINED,
            Some(Delivery::Text { attempt: id, text }) => {
                Array::of3(&number(0), &attempt(id), &JsValue::from_str(&text)).into()
            }
            Some(Delivery::Event(e)) => {
                let (e, line) = event(self.log, self.quiet, &e);
                Array::of3(&number(1), &e, &line).into()
            }
        }
    }

    pub fn take_outcome(&mut self) -> JsValue {
        let list = match self.machine.take_outcome() {
            None => return JsValue::UNDEFINED,
            Some(Ok(result)) => Array::of4(
                &JsValue::TRUE,
                &to_js(&result),
                &attempt(result.text.attempt),
                &cause(result.cause.as_ref().and_then(|c| c.cause)),
            ),
            Some(Err(error)) => Array::of4(
                &JsValue::FALSE,
                &to_js(&error),
                &delivered(error.partial_text),
                &cause(error.cause),
            ),
        };
        list.into()
    }
}

/// What both modes of the machine take and tell alike, exported on `$class` for its machine in `$field`.
macro_rules! machine_inputs {
    ($class:ident, $field:ident) => {
        #[wasm_bindgen]
        impl $class {
            pub fn start(&mut self, now: Millis) {
                self.$field.start(now);
            }

            #[allow(clippy::too_many_arguments)]
            pub fn head(
                &mut self,
                attempt: u32,
                now: Millis,
                status: u16,
                content_type: Option<String>,
                retry_after: Option<String>,
                generation_id: Option<String>,
                has_body: bool,
                unix_ms: f64,
            ) {
                let head = Head {
                    status,
                    content_type,
                    retry_after,
                    generation_id,
                    has_body,
                    unix_ms,
                };
                self.$field.head(AttemptId(attempt), now, head);
            }

            pub fn body_bytes(&mut self, attempt: u32, now: Millis, bytes: &[u8]) {
                self.$field.body_bytes(AttemptId(attempt), now, bytes);
            }

            pub fn body_end(&mut self, attempt: u32, now: Millis) {
                self.$field.body_end(AttemptId(attempt), now);
            }

            /// A read failed with `message`, or (`undefined`) gave something that is not bytes.
            pub fn body_error(&mut self, attempt: u32, now: Millis, message: Option<String>) {
                let error = message.map_or(BodyError::NotBytes, BodyError::Read);
                self.$field.body_error(AttemptId(attempt), now, error);
            }

            pub fn request_error(&mut self, attempt: u32, now: Millis, message: &str) {
                self.$field.request_error(AttemptId(attempt), now, message);
            }

            pub fn handle_timeout(&mut self, now: Millis) {
                self.$field.handle_timeout(now);
            }

            pub fn poll_timeout(&self) -> Option<f64> {
                self.$field.poll_timeout()
            }

            pub fn is_settled(&self) -> bool {
                self.$field.is_settled()
            }

            /// Nothing listens to its events (no `onEvent`): an event delivery carries
            /// `undefined` in place of the event, as the package's drivers make none then.
            pub fn quiet(&mut self) {
                self.quiet = true;
            }
        }
    };
}

machine_inputs!(CoreGeneration, machine);
machine_inputs!(CoreRelay, relay);

/// `guardFetch()`'s options, read once (as `guardFetch(options)` reads them).
#[wasm_bindgen]
pub struct CoreFetch {
    fallbacks: Vec<RelayProvider>,
    timeouts: Timeouts,
    policy: RetryPolicy,
    max_event_bytes: usize,
    on_cut: OnCut,
    log: LogLevel,
}

#[wasm_bindgen]
impl CoreFetch {
    /// `guardFetch()`'s options (`undefined` or `null`: none).
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue, has_base_url: bool) -> Result<CoreFetch, String> {
        let options = match options.is_undefined() || options.is_null() {
            true => JsValue::from(Object::new()),
            false if Js.keys(&options).is_some() => options,
            false => return Err("guardFetch() takes an options object".into()),
        };
        let keys = Js.keys(&options).unwrap_or_default();
        if let Some(message) = unknown_key(keys.iter().map(String::as_str), GUARD_FETCH_OPTIONS, "")
        {
            return Err(message);
        }
        // generate()'s options: the shared ones, `messages`, and the own endpoint's stand-in
        // last, for its deadlines and retries.
        let shared = JsValue::from(Object::new());
        for key in keys
            .iter()
            .filter(|key| *key != "session" && *key != "onCut")
        {
            set(&shared, key, &get(&options, key));
        }
        let own = JsValue::from(Object::new());
        set(&own, "name", &"origin".into());
        set(&own, "url", &"http://origin.invalid/".into());
        set(&own, "model", &"origin".into());
        let providers = Js
            .field(&options, "providers")
            .unwrap_or_else(|| Array::new().into());
        if let Some(list) = providers.dyn_ref::<Array>() {
            let list = list.slice(0, list.length());
            list.push(&own);
            set(&shared, "providers", &list);
        }
        set(&shared, "messages", &Array::new());
        let data = read(&shared, has_base_url)?;
        let on_cut = match get(&options, "onCut") {
            name if name.is_undefined() => OnCut::default(),
            name => name
                .as_string()
                .as_deref()
                .and_then(on_cut)
                .ok_or("onCut must be \"error\" or \"finish\"")?,
        };
        let mut chain = data.providers;
        let own = chain.pop().ok_or("providers must be an array")?;
        Ok(CoreFetch {
            fallbacks: chain.into_iter().map(RelayProvider::from).collect(),
            timeouts: Timeouts {
                service_ms: data.service_ms,
                ..own.timeouts
            },
            policy: data.policy,
            max_event_bytes: data.max_event_bytes,
            on_cut,
            log: data.log,
        })
    }

    /// A relay of the SDK's request (`headers` as `[name, value, …]`; `body` when it is text).
    pub fn relay(
        &self,
        method: String,
        url: String,
        headers: Vec<String>,
        body: Option<String>,
        jitter_seed: f64,
    ) -> CoreRelay {
        let request = SdkRequest {
            method,
            url,
            headers: unpair(headers),
            body,
        };
        self.relay_over(request, self.fallbacks.clone(), jitter_seed)
    }
}

impl CoreFetch {
    fn relay_over(
        &self,
        request: SdkRequest,
        fallbacks: Vec<RelayProvider>,
        jitter_seed: f64,
    ) -> CoreRelay {
        let config = RelayConfig {
            request,
            timeouts: self.timeouts,
            max_retries: self.policy.max_retries,
            fallbacks,
            policy: self.policy,
            max_event_bytes: self.max_event_bytes,
            on_cut: self.on_cut,
            jitter_seed: jitter_seed as u64,
        };
        CoreRelay {
            relay: Relay::new(config),
            log: self.log,
            quiet: false,
            call: None,
        }
    }
}

/// One SDK request relayed (`guardFetch()`'s, or a guard's `fetch`'s): see the module
/// documentation.
#[wasm_bindgen]
pub struct CoreRelay {
    relay: Relay,
    log: LogLevel,
    /// Nothing listens to its events: none is made into an object.
    quiet: bool,
    /// A guard's request: what its guard learns from when it is over.
    call: Option<GuardedCall>,
}

#[wasm_bindgen]
impl CoreRelay {
    pub fn cancel(&mut self, now: Millis, reason: &str) {
        self.relay.cancel(now, reason);
    }

    /// Whether the relay judges its reader itself (never in the browser's mode).
    pub fn watches_client(&self) -> bool {
        self.relay.watches_client()
    }

    pub fn client_reading(&mut self, now: Millis, waiting: bool) {
        self.relay.client_reading(now, waiting);
    }

    pub fn poll_action(&mut self) -> JsValue {
        match self.relay.poll_action() {
            None => JsValue::UNDEFINED,
            Some(RelayAction::Send(out)) => send(
                out.attempt,
                &JsValue::from_str(&out.method),
                &out.url,
                &out.headers,
                &out.body
                    .as_deref()
                    .map_or(JsValue::UNDEFINED, JsValue::from_str),
            ),
            Some(RelayAction::Cancel { attempt: id }) => {
                Array::of2(&number(1), &attempt(id)).into()
            }
            Some(RelayAction::Finish { attempt: id }) => {
                Array::of2(&number(2), &attempt(id)).into()
            }
        }
    }

    pub fn poll_delivery(&mut self) -> JsValue {
        let Some(delivery) = self.relay.poll_delivery() else {
            return JsValue::UNDEFINED;
        };
        let list = match delivery {
            RelayDelivery::Event(e) => {
                let (e, line) = event(self.log, self.quiet, &e);
                Array::of3(&number(0), &e, &line)
            }
            RelayDelivery::Commit {
                attempt: id,
                status,
            } => Array::of3(&number(1), &attempt(id), &number(status)),
            RelayDelivery::Respond { status, body } => {
                Array::of3(&number(2), &number(status), &JsValue::from_str(&body))
            }
            RelayDelivery::Bytes(bytes) => {
                Array::of2(&number(3), &Uint8Array::from(bytes.as_slice()))
            }
            RelayDelivery::Close => Array::of1(&number(4)),
            RelayDelivery::Fail(cut) => {
                let text = |t: Option<&str>| t.map_or(JsValue::UNDEFINED, JsValue::from_str);
                let list = Array::of3(
                    &number(5),
                    &JsValue::from_str(cut.kind.as_str()),
                    &JsValue::from_str(&cut.message),
                );
                list.push(&JsValue::from_str(&cut.provider));
                list.push(&text(cut.layer));
                list.push(&text(cut.phase));
                list
            }
            RelayDelivery::Open => Array::of1(&number(6)),
        };
        list.into()
    }
}

/// A `Guard`'s state across its calls: see the module documentation.
#[wasm_bindgen]
pub struct CoreGuard {
    state: GuardState,
}

#[wasm_bindgen]
impl CoreGuard {
    /// `new Guard(options)`'s reading and checks.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue, has_base_url: bool) -> Result<CoreGuard, String> {
        if Js.keys(&options).is_none() {
            return Err("new Guard() takes an options object".into());
        }
        let guard = read_guard_options(&Js, &options)?;
        // The options its calls share, checked now by generate()'s reader.
        let probe = JsValue::from(Object::new());
        for key in SHARED {
            if let Some(value) = Js.field(&options, key) {
                set(&probe, key, &value);
            }
        }
        set(&probe, "messages", &Array::new());
        let chain = config(read(&probe, has_base_url)?, String::new(), 0.0);
        Ok(CoreGuard {
            state: GuardState::new(guard, &chain),
        })
    }

    /// One call of the guard at `now`: `request` is the call's own options (checked for those
    /// the guard holds), `options` the call's with the guard's merged in.
    pub fn generation(
        &mut self,
        now: Millis,
        request: JsValue,
        options: JsValue,
        body_without_model: String,
        jitter_seed: f64,
        has_base_url: bool,
    ) -> Result<CoreGeneration, String> {
        check_request_keys(&Js, &request)?;
        let data = read(&options, has_base_url)?;
        let log = data.log;
        let (machine, call) = self
            .state
            .start(now, config(data, body_without_model, jitter_seed));
        Ok(CoreGeneration {
            machine,
            log,
            quiet: false,
            call: Some(call),
        })
    }

    /// A request of the guard's `fetch` (`fetch`: the guard's options read as `guardFetch()`'s).
    #[allow(clippy::too_many_arguments)]
    pub fn relay(
        &mut self,
        now: Millis,
        fetch: &CoreFetch,
        method: String,
        url: String,
        headers: Vec<String>,
        body: Option<String>,
        jitter_seed: f64,
    ) -> CoreRelay {
        let (kept, skipped, call) = self.state.start_fetch(now, fetch.fallbacks.clone());
        let request = SdkRequest {
            method,
            url,
            headers: unpair(headers),
            body,
        };
        let mut relay = fetch.relay_over(request, kept, jitter_seed);
        for (provider, model, skip) in skipped {
            relay.relay.skipped(provider, model, &skip);
        }
        relay.call = Some(call);
        relay
    }

    /// A call of the guard is over at `now`: the guard learns from its attempts.
    pub fn finish(&mut self, now: Millis, generation: &mut CoreGeneration) {
        if let Some(call) = generation.call.take() {
            self.state
                .finish(now, call, generation.machine.observations());
        }
    }

    /// A request of the guard's `fetch` is over at `now`.
    pub fn finish_relay(&mut self, now: Millis, relay: &mut CoreRelay) {
        if let Some(call) = relay.call.take() {
            self.state.finish(now, call, relay.relay.observations());
        }
    }

    /// What the guard knows at `now` (`ProviderStats[]`).
    pub fn stats(&self, now: Millis) -> JsValue {
        to_js(&self.state.stats(now))
    }
}
