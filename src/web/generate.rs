//! `generate()`: one guarded chat call, on `fetch` and the response's `ReadableStream`.
//!
//! This is the thin edge around the core: it reads options, sends requests, reads body bytes,
//! sleeps until the next deadline the core names, and reports clock readings back. Every
//! decision (is it progress, did a deadline pass, partial or failed, retry or fail over) is the
//! core's. Every exit path aborts the attempt's `AbortController` and cancels its reader, so the
//! upstream connection is released at once; every timer is cleared when its future is dropped,
//! and the listener on the caller's `AbortSignal` is removed when the call ends.
//!
//! Globals only (`fetch`, `performance`, `setTimeout`, `AbortController`): no `window`.

use crate::core::answer::{
    classify_response, error_body_message, AnswerReader, AnswerSink, BodyKind, Outcome, Stop,
};
use crate::core::call::{AttemptRecord, CallPlan, Next, ProviderLimits};
use crate::core::chunk::{Malformed, Usage};
use crate::core::deadline::{
    AttemptDeadlines, Due, Expired, InvalidTimeout, Millis, TimeoutOverrides, Timeouts, WakeAt,
};
use crate::core::events::{redact, whole, EventFields, GuardEvent, LogLevel};
use crate::core::options::{
    check_url, unknown_key, GENERATE_OPTIONS, PROVIDER_FIELDS, RETRY_FIELDS, TIMEOUT_FIELDS,
};
use crate::core::policy::{parse_retry_after, Failure, RetryPolicy};
use crate::core::secrets::excerpt;
use crate::core::sse::DEFAULT_MAX_EVENT_BYTES;
use js_sys::{Array, Function, JsString, Object, Promise, Reflect, Uint8Array};
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};
use web_sys::{AbortController, AbortSignal};

use crate::web::resources::{Alarm, Counted, Kind, Listener, Wakeup};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &JsValue, init: &JsValue) -> Promise;

    /// `JSON.stringify(value)`: throws on cycles and BigInt.
    #[wasm_bindgen(js_namespace = JSON, js_name = stringify, catch)]
    fn json_stringify(value: &JsValue) -> Result<JsValue, JsValue>;

    /// `JSON.parse(text)`.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;

    /// `String(number)`: JavaScript's own number formatting, for messages.
    #[wasm_bindgen(js_name = String)]
    fn number_text(value: f64) -> String;

    /// `performance.now()`, looked up at each call: the one clock every deadline is read on.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// A body's reader, as a reader from an injected `fetch` may behave: any method may throw.
    type BodyReader;
    /// `reader.cancel()`.
    #[wasm_bindgen(method, catch, js_name = cancel)]
    fn try_cancel(this: &BodyReader) -> Result<JsValue, JsValue>;
    /// `reader.read()`.
    #[wasm_bindgen(method, catch, js_name = read)]
    fn try_read(this: &BodyReader) -> Result<JsValue, JsValue>;

    /// What a stream reader's `read()` resolves with, `{ done, value }`. Read through these
    /// getters, whose property names live in the glue: a `Reflect.get` with a name made from a
    /// Rust string would decode that name on every read.
    pub(crate) type ReadResult;
    #[wasm_bindgen(method, getter, structural)]
    pub(crate) fn done(this: &ReadResult) -> JsValue;
    #[wasm_bindgen(method, getter, structural)]
    pub(crate) fn value(this: &ReadResult) -> JsValue;
}

impl ReadResult {
    /// Whether the stream ended (a result without `done` counts as `if_missing`).
    pub(crate) fn ended(&self, if_missing: bool) -> bool {
        self.done().as_bool().unwrap_or(if_missing)
    }
}

/// Sets a plain data property (on objects made here: it cannot fail).
pub(crate) fn set(object: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

/// Stream an answer through the failover chain in `options`, within its deadlines.
/// Resolves with a `GenerateResult`; rejects with a `GuardError` (see the TypeScript types).
#[wasm_bindgen(js_name = generate, skip_typescript)]
pub fn generate(options: JsValue) -> Promise {
    future_to_promise(run_generation(options, None))
}

/// A generation that a session's signal can also cancel (its abort reason says why).
pub(crate) async fn run_generation(
    options: JsValue,
    session: Option<AbortSignal>,
) -> Result<JsValue, JsValue> {
    let _in_flight = Counted::new(Kind::InFlight);
    let call = match Call::from_options(&options, Rc::new(Ending::default())) {
        Ok(call) => call,
        Err(message) => return Err(config_error(&message)),
    };
    let mut sources = Vec::new();
    if let Some(signal) = &call.signal {
        sources.push(AbortSource {
            signal: signal.clone(),
            reason: Some("signal"),
        });
    }
    if let Some(signal) = session {
        sources.push(AbortSource {
            signal,
            reason: None,
        });
    }
    let abort = AbortWatch::new(sources, call.report.ending.clone());
    call.run(abort).await
}

// ---------------------------------------------------------------- options

/// A field of the options' plain-data copy (see [`Call::from_options`]): `None` when absent or
/// `null`, as JSON has it.
fn data(object: &JsValue, name: &str) -> Option<JsValue> {
    let value = get(object, name);
    (!value.is_undefined() && !value.is_null()).then_some(value)
}

fn invalid(path: &str, name: &str, what: &str) -> String {
    format!("invalid options: {path}{name} must be {what}")
}

fn string_data(object: &JsValue, path: &str, name: &str) -> Result<Option<String>, String> {
    data(object, name)
        .map(|value| {
            value
                .as_string()
                .ok_or_else(|| invalid(path, name, "a string"))
        })
        .transpose()
}

/// A string that must be there and not be empty.
fn required_string(object: &JsValue, path: &str, name: &str) -> Result<String, String> {
    string_data(object, path, name)?
        .filter(|text| !text.is_empty())
        .ok_or_else(|| format!("{path}{name} is required"))
}

fn number_data(object: &JsValue, path: &str, name: &str) -> Result<Option<f64>, String> {
    data(object, name)
        .map(|value| {
            value
                .as_f64()
                .ok_or_else(|| invalid(path, name, "a number"))
        })
        .transpose()
}

/// A JSON object (not an array).
fn object_data(object: &JsValue, path: &str, name: &str) -> Result<Option<JsValue>, String> {
    data(object, name)
        .map(|value| {
            if value.is_object() && !Array::is_array(&value) {
                Ok(value)
            } else {
                Err(invalid(path, name, "an object"))
            }
        })
        .transpose()
}

/// `{ headersMs, firstTokenMs, idleMs, streamMs, serviceMs }`, each optional.
fn timeout_data(object: &JsValue, path: &str) -> Result<TimeoutOverrides, String> {
    let Some(timeouts) = object_data(object, path, "timeouts")? else {
        return Ok(TimeoutOverrides::default());
    };
    let path = format!("{path}timeouts.");
    let field = |name| number_data(&timeouts, &path, name);
    Ok(TimeoutOverrides {
        headers_ms: field("headersMs")?,
        first_token_ms: field("firstTokenMs")?,
        idle_ms: field("idleMs")?,
        stream_ms: field("streamMs")?,
        service_ms: field("serviceMs")?,
    })
}

/// The message of a refused deadline (the core's text, with JavaScript's number formatting).
fn invalid_timeout(error: &InvalidTimeout) -> String {
    format!(
        "timeouts.{} must be a positive number of milliseconds (got {})",
        error.field,
        number_text(error.value)
    )
}

/// One provider, ready to be asked.
struct Provider {
    name: String,
    url: String,
    model: String,
    api_key: Option<String>,
    headers: Vec<(String, String)>,
}

/// Everything one call needs, read and checked once.
struct Call {
    providers: Vec<Provider>,
    limits: Vec<ProviderLimits>,
    service_ms: Millis,
    policy: RetryPolicy,
    /// The request body without `model`: a plain-data object (`params`, with `messages` and
    /// `stream` set over them) made for this call; each attempt sets `model` and stringifies it.
    body: Object,
    stream: bool,
    max_event_bytes: usize,
    signal: Option<AbortSignal>,
    fetch: Option<Function>,
    report: Report,
}

fn whole_count(value: f64, what: &str, max: u32) -> Result<u32, String> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= f64::from(max) {
        Ok(value as u32)
    } else {
        Err(format!(
            "{what} must be a whole number from 0 to {max} (got {})",
            number_text(value)
        ))
    }
}

fn non_negative(value: f64, what: &str) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "{what} must be a non-negative number of milliseconds (got {})",
            number_text(value)
        ))
    }
}

fn get(options: &JsValue, name: &str) -> JsValue {
    Reflect::get(options, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// The path of the first numeric option that is NaN or infinite, if any.
fn first_non_finite_number(options: &JsValue) -> Option<String> {
    const TIMEOUT_FIELDS: [&str; 5] = [
        "headersMs",
        "firstTokenMs",
        "idleMs",
        "streamMs",
        "serviceMs",
    ];
    let bad = |value: &JsValue| value.as_f64().is_some_and(|n| !n.is_finite());
    let in_object = |object: &JsValue, fields: &[&str], prefix: &str| -> Option<String> {
        fields
            .iter()
            .find(|f| bad(&get(object, f)))
            .map(|f| format!("{prefix}{f}"))
    };
    if bad(&get(options, "maxEventBytes")) {
        return Some("maxEventBytes".into());
    }
    if let Some(path) = in_object(&get(options, "timeouts"), &TIMEOUT_FIELDS, "timeouts.") {
        return Some(path);
    }
    if let Some(path) = in_object(
        &get(options, "retry"),
        &["maxRetries", "baseDelayMs", "maxDelayMs"],
        "retry.",
    ) {
        return Some(path);
    }
    let providers = get(options, "providers");
    if let Some(list) = providers.dyn_ref::<js_sys::Array>() {
        for (i, provider) in list.iter().enumerate() {
            if bad(&get(&provider, "maxRetries")) {
                return Some(format!("providers[{i}].maxRetries"));
            }
            if let Some(path) = in_object(
                &get(&provider, "timeouts"),
                &TIMEOUT_FIELDS,
                &format!("providers[{i}].timeouts."),
            ) {
                return Some(path);
            }
        }
    }
    None
}

/// Refuses a name in `object` that is not in `known` (`place` names the object in the message).
fn check_keys(object: &JsValue, known: &[&str], place: &str) -> Result<(), String> {
    if !object.is_object() || object.is_function() {
        return Ok(()); // not an object: its type is refused where it is read
    }
    let keys: Vec<String> = Object::keys(object.unchecked_ref::<Object>())
        .iter()
        .filter_map(|key| key.as_string())
        .collect();
    match unknown_key(keys.iter().map(String::as_str), known, place) {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

/// Every option name, at every level that has fixed names (`params` and `headers` are the
/// provider's own and go as given).
fn check_option_names(options: &JsValue) -> Result<(), String> {
    check_keys(options, GENERATE_OPTIONS, "")?;
    check_keys(&get(options, "timeouts"), TIMEOUT_FIELDS, "timeouts")?;
    check_keys(&get(options, "retry"), RETRY_FIELDS, "retry")?;
    if let Some(list) = get(options, "providers").dyn_ref::<Array>() {
        for (i, provider) in list.iter().enumerate() {
            if Array::is_array(&provider) {
                continue;
            }
            check_keys(&provider, PROVIDER_FIELDS, &format!("providers[{i}]"))?;
            check_keys(
                &get(&provider, "timeouts"),
                TIMEOUT_FIELDS,
                &format!("providers[{i}].timeouts"),
            )?;
        }
    }
    Ok(())
}

/// Whether this runtime has a base URL for relative URLs (a page's or a worker's `location`).
fn has_base_url() -> bool {
    let location = get(&js_sys::global(), "location");
    location.is_object() && get(&location, "href").is_string()
}

fn optional_function(options: &JsValue, name: &str) -> Result<Option<Function>, String> {
    let value = get(options, name);
    if value.is_undefined() || value.is_null() {
        Ok(None)
    } else {
        value
            .dyn_into::<Function>()
            .map(Some)
            .map_err(|_| format!("{name} must be a function"))
    }
}

impl Call {
    #[inline(never)]
    fn from_options(options: &JsValue, ending: Rc<Ending>) -> Result<Call, String> {
        if !options.is_object() {
            return Err("generate() takes an options object".into());
        }
        check_option_names(options)?;
        // JSON turns NaN and Infinity into null ("not set"), so numbers are checked first.
        if let Some(path) = first_non_finite_number(options) {
            return Err(format!("{path} must be a finite number"));
        }
        // Plain data is read from a JSON copy, as JSON sees it: own enumerable fields,
        // `toJSON()` applied, functions and `undefined` left out (functions and the signal are
        // read from the options themselves). The copy is this call's own, so the request body
        // is built in it.
        let options_data = json_stringify(options)
            .ok()
            .filter(JsValue::is_string)
            .and_then(|text| json_parse(&text).ok())
            .ok_or(
                "options must be JSON-serialisable data (plus onText, onEvent, fetch, signal)",
            )?;
        let options_data = &options_data;

        let log = match string_data(options_data, "", "log")? {
            None => LogLevel::Off,
            Some(text) => LogLevel::parse(&text).ok_or_else(|| {
                format!("log must be \"off\", \"error\", \"info\" or \"debug\" (got \"{text}\")")
            })?,
        };
        let call_timeouts = Timeouts::default()
            .with(&timeout_data(options_data, "")?)
            .map_err(|e| invalid_timeout(&e))?;
        let defaults = RetryPolicy::default();
        let policy = match object_data(options_data, "", "retry")? {
            None => defaults,
            Some(retry) => RetryPolicy {
                max_retries: number_data(&retry, "retry.", "maxRetries")?
                    .map(|v| whole_count(v, "retry.maxRetries", 10))
                    .transpose()?
                    .unwrap_or(defaults.max_retries),
                base_delay_ms: number_data(&retry, "retry.", "baseDelayMs")?
                    .map(|v| non_negative(v, "retry.baseDelayMs"))
                    .transpose()?
                    .unwrap_or(defaults.base_delay_ms),
                max_delay_ms: number_data(&retry, "retry.", "maxDelayMs")?
                    .map(|v| non_negative(v, "retry.maxDelayMs"))
                    .transpose()?
                    .unwrap_or(defaults.max_delay_ms),
            },
        };
        let max_event_bytes = match number_data(options_data, "", "maxEventBytes")? {
            None => DEFAULT_MAX_EVENT_BYTES,
            Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => {
                n as usize
            }
            Some(n) => {
                return Err(format!(
                    "maxEventBytes must be a positive whole number (got {})",
                    number_text(n)
                ))
            }
        };

        let raw_providers = match data(options_data, "providers") {
            None => Array::new(),
            Some(list) => list
                .dyn_into::<Array>()
                .map_err(|_| invalid("", "providers", "an array"))?,
        };
        if raw_providers.length() == 0 {
            return Err("providers must be a non-empty array".into());
        }
        let mut providers = Vec::with_capacity(raw_providers.length() as usize);
        let mut limits = Vec::with_capacity(raw_providers.length() as usize);
        for (i, p) in raw_providers.iter().enumerate() {
            if !p.is_object() || Array::is_array(&p) {
                return Err(invalid("", &format!("providers[{i}]"), "an object"));
            }
            let path = format!("providers[{i}].");
            let name = required_string(&p, &path, "name")?;
            let url = required_string(&p, &path, "url")?;
            check_url(&url, has_base_url()).map_err(|why| format!("providers[{i}].url {why}"))?;
            let model = required_string(&p, &path, "model")?;
            let api_key = string_data(&p, &path, "apiKey")?;
            let timeouts = call_timeouts
                .with(&timeout_data(&p, &path)?)
                .map_err(|e| format!("providers[{i}].{}", invalid_timeout(&e)))?;
            let max_retries = match number_data(&p, &path, "maxRetries")? {
                Some(v) => whole_count(v, &format!("providers[{i}].maxRetries"), 10)?,
                None => policy.max_retries,
            };
            let mut headers = Vec::new();
            if let Some(object) = object_data(&p, &path, "headers")? {
                for entry in Object::entries(object.unchecked_ref()).iter() {
                    let key = Reflect::get_u32(&entry, 0)
                        .ok()
                        .and_then(|k| k.as_string())
                        .unwrap_or_default();
                    match Reflect::get_u32(&entry, 1).ok().and_then(|v| v.as_string()) {
                        Some(text) => headers.push((key, text)),
                        None => {
                            return Err(format!("providers[{i}].headers.{key} must be a string"))
                        }
                    }
                }
            }
            limits.push(ProviderLimits {
                name: name.clone(),
                timeouts,
                max_retries,
            });
            providers.push(Provider {
                name,
                url,
                model,
                api_key: api_key.filter(|k| !k.is_empty()),
                headers,
            });
        }

        let messages = data(options_data, "messages")
            .filter(Array::is_array)
            .ok_or("messages must be an array of { role, content }")?;
        let stream = match data(options_data, "stream") {
            None => true,
            Some(flag) => flag
                .as_bool()
                .ok_or_else(|| invalid("", "stream", "a boolean"))?,
        };
        // `{ model, messages, stream, ...params }`, except that params cannot replace the three
        // fields the options themselves control (set over them here, `model` per attempt).
        let body = object_data(options_data, "", "params")?
            .map_or_else(Object::new, JsCast::unchecked_into);
        set(&body, "messages", &messages);
        set(&body, "stream", &JsValue::from_bool(stream));

        let signal_value = get(options, "signal");
        let signal = if signal_value.is_undefined() || signal_value.is_null() {
            None
        } else {
            let is_signal = Reflect::has(&signal_value, &"aborted".into()).unwrap_or(false)
                && Reflect::has(&signal_value, &"addEventListener".into()).unwrap_or(false);
            if !is_signal {
                return Err("signal must be an AbortSignal".into());
            }
            Some(signal_value.unchecked_into::<AbortSignal>())
        };
        let secrets = providers.iter().filter_map(|p| p.api_key.clone()).collect();
        Ok(Call {
            providers,
            limits,
            service_ms: call_timeouts.service_ms,
            policy,
            body,
            stream,
            max_event_bytes,
            signal,
            fetch: optional_function(options, "fetch")?,
            report: Report {
                on_text: optional_function(options, "onText")?,
                on_event: optional_function(options, "onEvent")?,
                log,
                secrets,
                ending,
            },
        })
    }
}

// ---------------------------------------------------------------- reporting

/// Where text and events go: the caller's callbacks and, when asked, the console.
struct Report {
    on_text: Option<Function>,
    on_event: Option<Function>,
    log: LogLevel,
    secrets: Vec<String>,
    /// Set once the call is being ended by its caller: from then on nothing is delivered.
    ending: Rc<Ending>,
}

impl Report {
    fn secrets(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }

    #[inline(never)]
    fn redact(&self, text: &str) -> String {
        redact(text, &self.secrets())
    }

    /// What a message may quote of a server's text: redacted, then cut.
    fn excerpt(&self, text: &str) -> String {
        excerpt(text, &self.secrets())
    }

    /// Delivers `event`, unless the call is ending: after a cancel only `cancelled` goes out
    /// (and not to an `onEvent` that threw).
    #[inline(never)]
    fn event(&self, event: GuardEvent) {
        let cancelled = matches!(event, GuardEvent::Cancelled { .. });
        if self.ending.is_set() && !cancelled {
            return;
        }
        if self.log != LogLevel::Off {
            let (level, line) = event.log_line();
            if level <= self.log {
                let line = JsValue::from_str(&format!("[llm-stream-guard] {line}"));
                if level == LogLevel::Error {
                    web_sys::console::error_1(&line);
                } else {
                    web_sys::console::log_1(&line);
                }
            }
        }
        if let Some(on_event) = &self.on_event {
            if cancelled && self.ending.thrower() == Some("onEvent") {
                return;
            }
            let mut fields = JsFields(Object::new().into());
            event.write_fields(&mut fields);
            self.call_back(on_event, &fields.0, "onEvent");
        }
    }

    /// Delivers a piece of text, unless the call is ending.
    fn text(&self, delta: &str) {
        if let (Some(on_text), false) = (&self.on_text, self.ending.is_set()) {
            self.call_back(on_text, &JsValue::from_str(delta), "onText");
        }
    }

    /// A callback that throws ends the call: it is cancelled (reason `"callback"`, what was
    /// thrown as the error's `cause`), and the error is logged once, when logging is on.
    fn call_back(&self, callback: &Function, value: &JsValue, which: &'static str) {
        if let Err(thrown) = callback.call1(&JsValue::UNDEFINED, value) {
            if self.ending.callback_threw(which, thrown.clone()) && self.log != LogLevel::Off {
                web_sys::console::error_2(
                    &format!("[llm-stream-guard] {which} threw; the call is cancelled:").into(),
                    &thrown,
                );
            }
        }
    }
}

/// How a call is being ended by its caller, shared by the abort listeners, the callbacks and
/// every wait. Once set it stays set: no more text or events go out (but `cancelled`), and
/// the call rejects as `aborted` whatever the attempt in hand would have given.
#[derive(Default)]
struct Ending {
    reason: RefCell<Option<String>>,
    /// What a throwing callback threw, and which callback it was.
    thrown: RefCell<Option<(&'static str, JsValue)>>,
    wake: Wakeup,
}

impl Ending {
    fn is_set(&self) -> bool {
        self.reason.borrow().is_some()
    }

    fn reason(&self) -> Option<String> {
        self.reason.borrow().clone()
    }

    /// End the call for `reason` (the first reason given stands) and wake the wait.
    fn end(&self, reason: impl FnOnce() -> String) {
        self.reason.borrow_mut().get_or_insert_with(reason);
        self.wake.fire();
    }

    /// A callback threw: end the call, unless it was already ending. Whether this was the
    /// first throw (the one that is reported).
    fn callback_threw(&self, which: &'static str, thrown: JsValue) -> bool {
        if self.is_set() {
            return false;
        }
        *self.thrown.borrow_mut() = Some((which, thrown));
        self.end(|| "callback".into());
        true
    }

    fn thrower(&self) -> Option<&'static str> {
        self.thrown.borrow().as_ref().map(|(which, _)| *which)
    }

    fn thrown(&self) -> Option<JsValue> {
        self.thrown
            .borrow()
            .as_ref()
            .map(|(_, value)| value.clone())
    }
}

/// An event's fields, set on a fresh object.
struct JsFields(JsValue);

impl EventFields for JsFields {
    fn text(&mut self, name: &'static str, value: &str) {
        set(&self.0, name, &JsValue::from_str(value));
    }

    fn number(&mut self, name: &'static str, value: f64) {
        set(&self.0, name, &JsValue::from_f64(value));
    }

    fn flag(&mut self, name: &'static str, value: bool) {
        set(&self.0, name, &JsValue::from_bool(value));
    }

    fn relayed(&mut self, name: &'static str, data: &str) {
        let text = JsValue::from_str(data);
        set(&self.0, name, &json_parse(&text).unwrap_or(text));
    }
}

/// The core's sink for one attempt: text to `onText`, notices to `onEvent`.
struct AttemptSink<'a> {
    report: &'a Report,
    provider: &'a str,
    /// Bytes of text that arrived after the call began ending (never delivered, so never
    /// part of the text the call reports).
    undelivered: usize,
}

impl AttemptSink<'_> {
    /// Take back what was not delivered (the end of the read's text) before it is kept.
    fn drop_undelivered(&mut self, answer: &mut AnswerReader) {
        let text = &mut answer.answer.text;
        text.truncate(
            text.len()
                .saturating_sub(std::mem::take(&mut self.undelivered)),
        );
    }
}

impl AnswerSink for AttemptSink<'_> {
    fn text(&mut self, delta: &str) {
        if self.report.ending.is_set() {
            self.undelivered += delta.len();
        } else {
            self.report.text(delta);
        }
    }

    fn first_progress(&mut self, first_token_ms: Millis) {
        self.report.event(GuardEvent::FirstToken {
            provider: self.provider.to_owned(),
            first_token_ms,
        });
    }

    fn side_event(&mut self, event_type: &str, data: &str) {
        if event_type == "guard" {
            self.report.event(GuardEvent::UpstreamEvent {
                provider: self.provider.to_owned(),
                event: data.to_owned(),
            });
        }
    }

    fn malformed(&mut self, malformed: Malformed, data_bytes: usize) {
        self.report.event(GuardEvent::Malformed {
            provider: self.provider.to_owned(),
            reason: malformed.to_string(),
            bytes: data_bytes as f64,
        });
    }
}

// ---------------------------------------------------------------- clock and races

/// The clock every deadline is read on (and the only one: timers only wake the edge up).
fn now() -> Millis {
    performance_now()
}

/// How a wait ended.
enum Raced<T> {
    Ready(T),
    Deadline,
    Aborted,
}

/// Where a cancellation can come from: the caller's `signal` (reason `"signal"`), or a
/// session's own signal, whose abort reason names what happened (`"pagehide"`, …).
pub(crate) struct AbortSource {
    /// The signal to watch.
    pub signal: AbortSignal,
    /// The fixed reason to report, or `None` to report the signal's own `reason` string.
    pub reason: Option<&'static str>,
}

fn abort_reason(source_reason: Option<&'static str>, signal: &AbortSignal) -> String {
    match source_reason {
        Some(reason) => reason.to_owned(),
        None => signal
            .reason()
            .as_string()
            .unwrap_or_else(|| "cancel".into()),
    }
}

/// Every abort source of a call, as one flag that can be raced many times (one race at a
/// time). Its listeners are removed when it is dropped.
struct AbortWatch {
    ending: Rc<Ending>,
    /// The call's one deadline timer, reused by every wait.
    alarm: Alarm,
    _listeners: Vec<Listener>,
}

impl AbortWatch {
    fn new(sources: Vec<AbortSource>, ending: Rc<Ending>) -> AbortWatch {
        let mut listeners = Vec::new();
        for source in sources {
            if source.signal.aborted() {
                ending.end(|| abort_reason(source.reason, &source.signal));
                continue;
            }
            let (ending, signal) = (ending.clone(), source.signal.clone());
            listeners.push(Listener::new(&source.signal, "abort", move |_| {
                ending.end(|| abort_reason(source.reason, &signal));
            }));
        }
        AbortWatch {
            ending,
            alarm: Alarm::default(),
            _listeners: listeners,
        }
    }

    /// Why the call was cancelled, once it was.
    fn reason(&self) -> Option<String> {
        self.ending.reason()
    }

    /// Wait for `future` until `deadline` has passed, unless the call is cancelled first
    /// (checked in that order when several are ready). Whether the deadline has passed is the
    /// core's rule ([`Due::passed`]) on the one clock; the timer only wakes this wait up, and
    /// one that fires early is armed again.
    async fn race<T>(&self, future: impl Future<Output = T>, deadline: &dyn Due) -> Raced<T> {
        if self.ending.is_set() {
            return Raced::Aborted;
        }
        let mut future = pin!(future);
        self.alarm.ensure(deadline.due(), now());
        poll_fn(|cx| {
            if let Poll::Ready(value) = future.as_mut().poll(cx) {
                return Poll::Ready(Raced::Ready(value));
            }
            while self.alarm.poll_fired(cx) {
                let at = now();
                if deadline.passed(at) {
                    self.alarm.disarm();
                    return Poll::Ready(Raced::Deadline);
                }
                self.alarm.ensure(deadline.due(), at);
            }
            if self.ending.wake.poll_fired(cx) {
                Poll::Ready(Raced::Aborted)
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

// ---------------------------------------------------------------- one attempt

/// What an attempt produced, for the plan and for the result.
struct AttemptReport {
    stop: Stop,
    reader: Option<AnswerReader>,
    /// The attempt's answer text, moved out of the reader after every read.
    text: JsString,
    status: Option<u16>,
    generation_id: Option<String>,
    message: String,
    /// What the platform threw or rejected with, for a network failure.
    cause: Option<JsValue>,
}

impl AttemptReport {
    #[inline(never)]
    fn failed(failure: Failure, status: Option<u16>, message: String) -> AttemptReport {
        AttemptReport {
            stop: Stop::Failed(failure),
            reader: None,
            text: JsString::from(""),
            status,
            generation_id: None,
            message,
            cause: None,
        }
    }

    fn caused_by(self, cause: JsValue) -> AttemptReport {
        AttemptReport {
            cause: Some(cause),
            ..self
        }
    }
}

thread_local! {
    /// A rejection handler that does nothing, for promises nobody else waits on.
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
}

/// Lets `value` (a promise, a thenable or anything else) settle with nobody waiting, without
/// an unhandled rejection if it rejects.
fn ignore_settlement(value: &JsValue) {
    IGNORE.with(|ignore| {
        let _ = Promise::resolve(value).catch(ignore);
    });
}

/// Releases an attempt's connection on every path: abort the request, cancel the reader.
struct Release {
    controller: AbortController,
    reader: RefCell<Option<(web_sys::ReadableStreamDefaultReader, Counted)>>,
}

impl Drop for Release {
    fn drop(&mut self) {
        if let Some((reader, _counted)) = self.reader.borrow_mut().take() {
            // Nothing waits for the cancel: its promise rejects when the stream had already
            // errored (a reset), and a reader from an injected `fetch` may even throw.
            if let Ok(settles) = reader.unchecked_ref::<BodyReader>().try_cancel() {
                ignore_settlement(&settles);
            }
        }
        self.controller.abort();
    }
}

#[inline(never)]
fn header(response: &JsValue, name: &str) -> Option<String> {
    let headers = get(response, "headers");
    let get_fn = get(&headers, "get").dyn_into::<Function>().ok()?;
    get_fn
        .call1(&headers, &JsValue::from_str(name))
        .ok()?
        .as_string()
}

#[inline(never)]
fn js_error_message(error: &JsValue) -> String {
    let message = get(error, "message").as_string();
    message
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".into())
}

impl Call {
    #[inline(never)]
    fn request_init(&self, provider: &Provider, signal: &AbortSignal) -> Result<JsValue, String> {
        set(&self.body, "model", &JsValue::from_str(&provider.model));
        let body = json_stringify(&self.body).map_err(|e| js_error_message(&e))?;
        let headers = Object::new();
        let text = |target: &Object, key: &str, value: &str| {
            set(target, key, &JsValue::from_str(value));
        };
        text(&headers, "Content-Type", "application/json");
        text(
            &headers,
            "Accept",
            if self.stream {
                "text/event-stream"
            } else {
                "application/json"
            },
        );
        for (key, value) in &provider.headers {
            text(&headers, key, value);
        }
        if let Some(key) = &provider.api_key {
            text(&headers, "Authorization", &format!("Bearer {key}"));
        }
        let init = Object::new();
        text(&init, "method", "POST");
        set(&init, "body", &body);
        set(&init, "headers", &headers);
        set(&init, "signal", signal);
        Ok(init.into())
    }

    async fn attempt(
        &self,
        index: usize,
        deadlines: &mut AttemptDeadlines,
        abort: &AbortWatch,
    ) -> AttemptReport {
        let provider = &self.providers[index];
        let controller = match AbortController::new() {
            Ok(c) => c,
            Err(e) => return AttemptReport::failed(Failure::Network, None, js_error_message(&e)),
        };
        let release = Release {
            controller,
            reader: RefCell::new(None),
        };
        let init = match self.request_init(provider, &release.controller.signal()) {
            Ok(init) => init,
            Err(message) => return AttemptReport::failed(Failure::Protocol, None, message),
        };
        let url = JsValue::from_str(&provider.url);
        let sent = match &self.fetch {
            Some(fetch) => fetch.call2(&JsValue::UNDEFINED, &url, &init),
            None => Ok(global_fetch(&url, &init).into()),
        };
        // A `fetch` that throws is a `fetch` that rejects: one path for both.
        let promise = match sent {
            Ok(value) => Promise::resolve(&value),
            Err(thrown) => Promise::reject(&thrown),
        };

        // Phase 1: headers.
        let response = match abort.race(JsFuture::from(promise), deadlines).await {
            Raced::Ready(Ok(response)) => response,
            Raced::Ready(Err(error)) => {
                let message = format!(
                    "request to {} failed: {}",
                    provider.name,
                    js_error_message(&error)
                );
                return AttemptReport::failed(Failure::Network, None, self.report.redact(&message))
                    .caused_by(error);
            }
            Raced::Deadline => {
                return self.timed_out(provider, deadlines.next(), deadlines, None, None)
            }
            Raced::Aborted => return AttemptReport::failed(Failure::Aborted, None, String::new()),
        };
        let at = now();
        deadlines.on_headers(at);
        let status = get(&response, "status").as_f64().unwrap_or(0.0) as u16;
        self.report.event(GuardEvent::Headers {
            provider: provider.name.clone(),
            status,
            elapsed_ms: at - deadlines.started(),
        });
        let generation_id = header(&response, "x-generation-id");
        let retry_after = header(&response, "retry-after")
            .and_then(|v| parse_retry_after(&v, js_sys::Date::now()));
        let content_type = header(&response, "content-type");
        let kind = match classify_response(status, content_type.as_deref(), retry_after) {
            Ok(kind) => Some(kind),
            Err(Failure::Http { .. }) => None,
            Err(failure) => {
                let message = format!(
                    "{} answered {} with content type {}, not SSE or JSON",
                    provider.name,
                    status,
                    content_type.as_deref().unwrap_or("(none)")
                );
                return AttemptReport {
                    generation_id,
                    ..AttemptReport::failed(failure, Some(status), message)
                };
            }
        };

        let body = get(&response, "body");
        let reader = get(&body, "getReader")
            .dyn_into::<Function>()
            .ok()
            .and_then(|get_reader| get_reader.call0(&body).ok())
            .map(|r| r.unchecked_into::<web_sys::ReadableStreamDefaultReader>());
        *release.reader.borrow_mut() = reader.clone().map(|r| (r, Counted::new(Kind::Reader)));

        let Some(kind) = kind else {
            // A non-2xx status: read a little of the body for the server's message.
            let text = match &reader {
                Some(reader) => self.read_error_body(reader, deadlines, abort).await,
                None => String::new(),
            };
            let detail = error_body_message(&text, &self.report.secrets());
            let message = format!("HTTP {status} from {}: {detail}", provider.name);
            let failure = Failure::Http {
                status,
                retry_after_ms: retry_after,
            };
            return AttemptReport {
                generation_id,
                ..AttemptReport::failed(failure, Some(status), message)
            };
        };
        let Some(reader) = reader else {
            let message = format!("{} answered {status} without a body", provider.name);
            return AttemptReport {
                generation_id,
                ..AttemptReport::failed(Failure::Network, Some(status), message)
            };
        };

        // Phase 2: the body, every read raced against the next deadline.
        let mut answer = AnswerReader::new(kind, self.max_event_bytes);
        let mut sink = AttemptSink {
            report: &self.report,
            provider: &provider.name,
            undelivered: 0,
        };
        let mut buffer = Vec::new();
        let mut text = JsString::from("");
        let mut cause = None;
        let (stop, message) = loop {
            let read = match reader.unchecked_ref::<BodyReader>().try_read() {
                Ok(read) => JsFuture::from(Promise::resolve(&read)),
                Err(thrown) => {
                    let message = format!(
                        "reading from {} failed: {}",
                        provider.name,
                        js_error_message(&thrown)
                    );
                    cause = Some(thrown);
                    break (Stop::Failed(Failure::Network), self.report.redact(&message));
                }
            };
            match abort.race(read, deadlines).await {
                Raced::Ready(Ok(chunk)) => {
                    let at = now();
                    let chunk = chunk.unchecked_into::<ReadResult>();
                    if chunk.ended(false) {
                        let stop = answer.end(at, deadlines, &mut sink);
                        sink.drop_undelivered(&mut answer);
                        move_text(&mut answer, &mut text);
                        if self.report.ending.is_set() {
                            break (Stop::Failed(Failure::Aborted), String::new());
                        }
                        let message = match (&stop, kind) {
                            (Stop::Failed(Failure::Protocol), BodyKind::Json) => {
                                format!(
                                    "{} sent a JSON body that is not a chat completion",
                                    provider.name
                                )
                            }
                            _ => format!("the stream from {} ended before [DONE]", provider.name),
                        };
                        break (stop, message);
                    }
                    let value = chunk.value();
                    let Some(bytes) = value.dyn_ref::<Uint8Array>() else {
                        break (
                            Stop::Failed(Failure::Protocol),
                            "the body yielded a non-byte chunk".into(),
                        );
                    };
                    buffer.resize(bytes.length() as usize, 0);
                    bytes.copy_to(&mut buffer);
                    let stopped = answer.push(&buffer, at, deadlines, &mut sink);
                    sink.drop_undelivered(&mut answer);
                    move_text(&mut answer, &mut text);
                    if self.report.ending.is_set() {
                        // Cancelled from a callback during this read: nothing more of it.
                        break (Stop::Failed(Failure::Aborted), String::new());
                    }
                    if let Some(stop) = stopped {
                        let message = match &stop {
                            Stop::Failed(Failure::Protocol) => format!(
                                "{} sent an event or body larger than maxEventBytes ({} bytes)",
                                provider.name, self.max_event_bytes
                            ),
                            Stop::Failed(Failure::Upstream) => {
                                let (code, text) = answer.answer.error.clone().unwrap_or_default();
                                let code = code.map(|c| format!(" {c}")).unwrap_or_default();
                                format!(
                                    "{} reported an error{code}: {}",
                                    provider.name,
                                    self.report.excerpt(&text)
                                )
                            }
                            _ => String::new(),
                        };
                        break (stop, message);
                    }
                }
                Raced::Ready(Err(error)) => {
                    let message = format!(
                        "reading from {} failed: {}",
                        provider.name,
                        js_error_message(&error)
                    );
                    cause = Some(error);
                    break (Stop::Failed(Failure::Network), self.report.redact(&message));
                }
                Raced::Deadline => {}
                Raced::Aborted => break (Stop::Failed(Failure::Aborted), String::new()),
            }
            // The timer fired, or data arrived without progress: a deadline may have passed.
            if let Some(expired) = self.expired(deadlines) {
                let report =
                    self.timed_out(provider, expired, deadlines, Some(&answer), Some(status));
                break (report.stop, report.message);
            }
        };
        let at = now();
        if matches!(stop, Stop::Done)
            || (matches!(stop, Stop::EndOfBody) && answer.answer.finish_reason.is_some())
        {
            self.report.event(GuardEvent::StreamEnd {
                provider: provider.name.clone(),
                lines: answer.lines() as f64,
                chunks: answer.answer.content_chunks as f64,
                elapsed_ms: at - deadlines.started(),
            });
        }
        drop(release); // abort + cancel now, before the caller hears anything more
        AttemptReport {
            stop,
            reader: Some(answer),
            text,
            status: Some(status),
            generation_id,
            message,
            cause,
        }
    }

    fn expired(&self, deadlines: &AttemptDeadlines) -> Option<Expired> {
        deadlines.check(now())
    }

    #[inline(never)]
    fn timed_out(
        &self,
        provider: &Provider,
        expired: Expired,
        deadlines: &AttemptDeadlines,
        answer: Option<&AnswerReader>,
        status: Option<u16>,
    ) -> AttemptReport {
        let elapsed = now() - deadlines.started();
        let (lines, chunks) = answer.map_or((0, 0), |a| (a.lines(), a.answer.content_chunks));
        self.report.event(GuardEvent::Timeout {
            provider: provider.name.clone(),
            layer: expired.layer.as_str(),
            phase: expired.phase.as_str(),
            lines: lines as f64,
            chunks: chunks as f64,
            elapsed_ms: elapsed,
        });
        let message = format!(
            "{} {} timeout: {} after {} ms ({} lines, {} content chunks)",
            expired.layer.as_str(),
            expired.phase.as_str(),
            provider.name,
            whole(elapsed),
            lines,
            chunks
        );
        AttemptReport::failed(Failure::Timeout(expired), status, message)
    }

    /// Up to 16 KiB of an error response's body, within the attempt's deadlines.
    async fn read_error_body(
        &self,
        reader: &web_sys::ReadableStreamDefaultReader,
        deadlines: &AttemptDeadlines,
        abort: &AbortWatch,
    ) -> String {
        let mut bytes = Vec::new();
        while bytes.len() < 16 * 1024 {
            let Ok(read) = reader.unchecked_ref::<BodyReader>().try_read() else {
                break;
            };
            match abort
                .race(JsFuture::from(Promise::resolve(&read)), deadlines)
                .await
            {
                Raced::Ready(Ok(chunk)) => {
                    let chunk = chunk.unchecked_into::<ReadResult>();
                    if chunk.ended(true) {
                        break;
                    }
                    if let Some(value) = chunk.value().dyn_ref::<Uint8Array>() {
                        bytes.extend(value.to_vec());
                    }
                }
                _ => break,
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

// ---------------------------------------------------------------- the call

/// The fields of a `GuardError` besides its message (see the TypeScript types).
struct ErrorFields<'a> {
    kind: &'static str,
    layer: Option<&'static str>,
    phase: Option<&'static str>,
    status: Option<u16>,
    partial_text: Option<&'a JsString>,
    attempts: &'a [AttemptRecord],
    provider: Option<&'a str>,
    reason: Option<&'a str>,
    /// The error's `cause`: what the platform (or a callback) threw.
    cause: Option<&'a JsValue>,
}

fn config_error(message: &str) -> JsValue {
    guard_error_with(
        message,
        &ErrorFields {
            kind: "config",
            layer: None,
            phase: None,
            status: None,
            partial_text: None,
            attempts: &[],
            provider: None,
            reason: None,
            cause: None,
        },
    )
}

fn guard_error_with(message: &str, fields: &ErrorFields<'_>) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("GuardError");
    let error = JsValue::from(error);
    let text = |key: &str, value: &str| set(&error, key, &JsValue::from_str(value));
    text("kind", fields.kind);
    if let Some(layer) = fields.layer {
        text("layer", layer);
    }
    if let Some(phase) = fields.phase {
        text("phase", phase);
    }
    if let Some(status) = fields.status {
        set(&error, "status", &JsValue::from(status));
    }
    match fields.partial_text {
        Some(partial) => set(&error, "partialText", partial),
        None => text("partialText", ""),
    }
    set(&error, "attempts", &attempts_array(fields.attempts));
    if let Some(provider) = fields.provider {
        text("provider", provider);
    }
    if let Some(reason) = fields.reason {
        text("reason", reason);
    }
    if let Some(cause) = fields.cause {
        set(&error, "cause", cause);
    }
    error
}

/// `attempts`: `{ provider, outcome, status?, elapsedMs }` per attempt.
fn attempts_array(attempts: &[AttemptRecord]) -> Array {
    attempts
        .iter()
        .map(|attempt| {
            let object = JsValue::from(Object::new());
            set(&object, "provider", &JsValue::from_str(&attempt.provider));
            set(&object, "outcome", &JsValue::from_str(&attempt.outcome));
            if let Some(status) = attempt.status {
                set(&object, "status", &JsValue::from(status));
            }
            set(&object, "elapsedMs", &JsValue::from_f64(attempt.elapsed_ms));
            object
        })
        .collect()
}

/// `usage`, with the provider's own field names.
fn usage_object(usage: &Usage) -> JsValue {
    let object = JsValue::from(Object::new());
    for (name, count) in [
        ("prompt_tokens", usage.prompt_tokens),
        ("completion_tokens", usage.completion_tokens),
        ("total_tokens", usage.total_tokens),
    ] {
        set(&object, name, &JsValue::from_f64(count as f64));
    }
    object
}

fn timeout_parts(failure: &Failure) -> (Option<&'static str>, Option<&'static str>) {
    match failure {
        Failure::Timeout(expired) => (Some(expired.layer.as_str()), Some(expired.phase.as_str())),
        _ => (None, None),
    }
}

impl Call {
    async fn run(self, abort: AbortWatch) -> Result<JsValue, JsValue> {
        let started = now();
        let mut plan = CallPlan::new(started, self.limits.clone(), self.policy, self.service_ms);
        let mut partial_text = JsString::from("");
        loop {
            let index = plan.provider_index();
            let provider = &self.providers[index];
            if let Some(expired) = plan.service_expired(now()) {
                let message = format!(
                    "service timeout: {} ms passed before {} could be asked",
                    whole(self.service_ms),
                    provider.name
                );
                return Err(self.reject(
                    &Failure::Timeout(expired),
                    &message,
                    &plan,
                    &partial_text,
                    Some(index),
                    None,
                    None,
                ));
            }
            self.report.event(GuardEvent::RequestStart {
                provider: provider.name.clone(),
                model: provider.model.clone(),
                attempt: plan.attempt_number(),
            });
            if abort.ending.is_set() {
                return Err(self.cancelled(&abort, &plan, &partial_text, index));
            }
            let mut deadlines = plan.begin_attempt(now());
            let report = self.attempt(index, &mut deadlines, &abort).await;
            let at = now();
            let outcome = match &report.reader {
                Some(reader) => reader.answer.outcome(&report.stop),
                None => match &report.stop {
                    Stop::Failed(failure) => Outcome::Failed(failure.clone()),
                    _ => Outcome::Failed(Failure::Network),
                },
            };
            if let Some(reader) = &report.reader {
                if reader.answer.text_bytes() > 0 {
                    partial_text = report.text.clone();
                }
            }
            // Cancelled during the attempt (a signal, a session, a throwing callback): the call
            // ends as cancelled, whatever the attempt would have given.
            if matches!(outcome, Outcome::Failed(Failure::Aborted)) || abort.ending.is_set() {
                plan.finish_attempt(&outcome, report.status, deadlines.started(), at, 0.0);
                return Err(self.cancelled(&abort, &plan, &partial_text, index));
            }
            if let Outcome::Failed(failure) = &outcome {
                if matches!(failure, Failure::Empty) {
                    self.report.event(GuardEvent::EmptyResponse {
                        provider: provider.name.clone(),
                        lines: report.reader.as_ref().map_or(0.0, |r| r.lines() as f64),
                    });
                }
                let message = if matches!(failure, Failure::Empty) {
                    format!("empty response from {}", provider.name)
                } else {
                    report.message.clone()
                };
                self.report.event(GuardEvent::AttemptFailed {
                    provider: provider.name.clone(),
                    kind: failure.kind(),
                    status: report
                        .status
                        .filter(|_| matches!(failure, Failure::Http { .. })),
                    message,
                });
            }
            match plan.finish_attempt(
                &outcome,
                report.status,
                deadlines.started(),
                at,
                js_sys::Math::random(),
            ) {
                Next::Resolve { cause } => {
                    return Ok(self.resolve(
                        &plan,
                        index,
                        &report,
                        &deadlines,
                        cause.as_ref(),
                        started,
                    ));
                }
                Next::Retry { delay_ms } => {
                    self.report.event(GuardEvent::Retry {
                        provider: provider.name.clone(),
                        attempt: plan.attempt_number(),
                        delay_ms,
                        reason: outcome_kind(&outcome).into(),
                    });
                    let until = WakeAt(now() + delay_ms);
                    if let Raced::Aborted = abort.race(std::future::pending::<()>(), &until).await {
                        return Err(self.cancelled(&abort, &plan, &partial_text, index));
                    }
                }
                Next::Failover { to } => {
                    self.report.event(GuardEvent::Failover {
                        from: provider.name.clone(),
                        to: self.providers[to].name.clone(),
                        reason: outcome_kind(&outcome).into(),
                    });
                }
                Next::Reject(failure) => {
                    let message = match &failure {
                        Failure::Empty => format!("empty response from {}", provider.name),
                        _ => report.message.clone(),
                    };
                    return Err(self.reject(
                        &failure,
                        &message,
                        &plan,
                        &partial_text,
                        Some(index),
                        None,
                        report.cause.as_ref(),
                    ));
                }
            }
        }
    }

    /// The rejection of a cancelled call: kind `aborted`, with the reason that cancelled it.
    #[inline(never)]
    fn cancelled(
        &self,
        abort: &AbortWatch,
        plan: &CallPlan,
        partial_text: &JsString,
        index: usize,
    ) -> JsValue {
        let reason = abort.reason().unwrap_or_else(|| "signal".into());
        self.report.event(GuardEvent::Cancelled {
            reason: reason.clone(),
        });
        let message = match (reason.as_str(), abort.ending.thrower()) {
            ("signal", _) => "aborted by the caller's signal".to_owned(),
            ("callback", Some(which)) => format!("cancelled: {which} threw"),
            (other, _) => format!("cancelled: {other}"),
        };
        let thrown = abort.ending.thrown();
        self.reject(
            &Failure::Aborted,
            &message,
            plan,
            partial_text,
            Some(index),
            Some(&reason),
            thrown.as_ref(),
        )
    }

    #[inline(never)]
    fn reject(
        &self,
        failure: &Failure,
        message: &str,
        plan: &CallPlan,
        partial_text: &JsString,
        provider: Option<usize>,
        reason: Option<&str>,
        cause: Option<&JsValue>,
    ) -> JsValue {
        let (layer, phase) = timeout_parts(failure);
        let status = match failure {
            Failure::Http { status, .. } => Some(*status),
            _ => None,
        };
        guard_error_with(
            message,
            &ErrorFields {
                kind: failure.kind(),
                layer,
                phase,
                status,
                partial_text: Some(partial_text),
                attempts: plan.attempts(),
                provider: provider.map(|i| self.providers[i].name.as_str()),
                reason,
                cause,
            },
        )
    }

    #[inline(never)]
    fn resolve(
        &self,
        plan: &CallPlan,
        index: usize,
        report: &AttemptReport,
        deadlines: &AttemptDeadlines,
        cause: Option<&Failure>,
        started: Millis,
    ) -> JsValue {
        let provider = &self.providers[index];
        let reader = report
            .reader
            .as_ref()
            .expect("a resolved attempt read a body");
        let answer = &reader.answer;
        let elapsed = now() - started;
        self.report.event(GuardEvent::Done {
            provider: provider.name.clone(),
            partial: cause.is_some(),
            elapsed_ms: elapsed,
        });
        // `GenerateResult`: optional fields are left out when absent.
        let result = JsValue::from(Object::new());
        let text = |key: &str, value: &str| set(&result, key, &JsValue::from_str(value));
        set(&result, "text", &report.text);
        set(&result, "partial", &JsValue::from_bool(cause.is_some()));
        if let Some(reason) = &answer.finish_reason {
            text("finishReason", reason);
        }
        text("provider", &provider.name);
        text("model", answer.model.as_deref().unwrap_or(&provider.model));
        if let Some(usage) = &answer.usage {
            set(&result, "usage", &usage_object(usage));
        }
        if let Some(failure) = cause {
            let object = JsValue::from(Object::new());
            set(&object, "kind", &JsValue::from_str(failure.kind()));
            if let Some(phase) = timeout_parts(failure).1 {
                set(&object, "phase", &JsValue::from_str(phase));
            }
            set(&object, "message", &JsValue::from_str(&report.message));
            if let Some(platform) = &report.cause {
                set(&object, "cause", platform);
            }
            set(&result, "cause", &object);
        }
        if let Some(id) = report
            .generation_id
            .as_deref()
            .or(answer.chunk_id.as_deref())
        {
            text("generationId", id);
        }
        if !answer.tool_calls.is_empty() {
            let calls: Array = answer
                .tool_calls
                .iter()
                .map(|call| {
                    let object = JsValue::from(Object::new());
                    set(&object, "id", &JsValue::from_str(&call.id));
                    set(&object, "name", &JsValue::from_str(&call.name));
                    set(&object, "arguments", &JsValue::from_str(&call.arguments));
                    object
                })
                .collect();
            set(&result, "toolCalls", &calls);
        }
        let stats = JsValue::from(Object::new());
        set(&stats, "lines", &JsValue::from_f64(reader.lines() as f64));
        set(
            &stats,
            "chunks",
            &JsValue::from_f64(answer.content_chunks as f64),
        );
        if let Some(ms) = deadlines.first_token_ms() {
            set(&stats, "firstTokenMs", &JsValue::from_f64(ms));
        }
        set(&stats, "elapsedMs", &JsValue::from_f64(elapsed));
        set(&result, "stats", &stats);
        set(&result, "attempts", &attempts_array(plan.attempts()));
        result
    }
}

/// Move the text the reader received into `into`, a JavaScript string: wasm memory never
/// shrinks, so the whole answer must not grow in it (one read's text at most stays there).
fn move_text(reader: &mut AnswerReader, into: &mut JsString) {
    let text = &mut reader.answer.text;
    if !text.is_empty() {
        *into = into.concat(&JsValue::from_str(text));
        text.clear();
    }
}

fn outcome_kind(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Failed(failure) | Outcome::Partial(failure) => failure.kind(),
        Outcome::Complete => "complete",
    }
}
