//! Shared helpers for the wasm test suites that talk to the real mock upstream: its URL (passed at
//! compile time by `cargo xtask test`), unique tags, the connection ledger over `fetch`, and a
//! runner for `generate()` that records every callback with its time.
//!
//! Nothing here sleeps to synchronise: outcomes are awaited (with a watchdog so that a call that
//! never settles fails its test instead of hanging the suite), and the ledger is read with its
//! long-poll (`wait_closed_ms`), which answers as soon as every tagged connection is closed.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use futures::future::{select, Either};
use gloo_timers::future::TimeoutFuture;
use js_sys::{Date, Function, Promise, Reflect, JSON};
use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The mock upstream's base URL, baked in at compile time by `cargo xtask test`.
pub const MOCK: Option<&str> = option_env!("MOCK_UPSTREAM_URL");

/// The mock upstream's scenario texts, compiled from the mock's own file (this crate cannot
/// depend on the native-only `mock-upstream` crate; the file holds nothing but constants).
#[path = "../../mock-upstream/src/texts.rs"]
mod mock_texts;

// Each suite uses some of them (as with the rest of this module).
#[allow(unused_imports)]
pub use mock_texts::{
    DEFAULT_PIECES, DEFAULT_TEXT, FIRST_THREE, LONG_TOKEN, MULTIBYTE_TEXT, REASONING_PREFIX, TICK,
    TOOL_ARGUMENTS,
};

// The `generate()` suite's options and assertion shapes.
mod generate;
#[allow(unused_imports)]
pub use generate::*;

/// The mock's base URL without a trailing slash; fails the test clearly when it is missing.
pub fn mock() -> String {
    match MOCK {
        Some(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_string(),
        _ => panic!(
            "MOCK_UPSTREAM_URL was not set when this test was compiled: run the wasm suites with \
             `cargo xtask test --only chrome|firefox|node`, which starts the mock upstream and \
             passes its URL"
        ),
    }
}

/// The base URL used for ledger reads. It names the mock by `localhost` instead of `127.0.0.1`,
/// so browsers put ledger requests in another per-host connection pool (6 sockets each) than the
/// calls under test: connections leaked by a call can then not starve the ledger reads that
/// would report the leak.
pub fn ledger_base() -> String {
    let base = mock();
    base.replacen("://127.0.0.1:", "://localhost:", 1)
}

thread_local! {
    static RUN_ID: String = format!("{:08x}", (js_sys::Math::random() * 4_294_967_295.0) as u64);
    static COUNTER: Cell<u32> = const { Cell::new(0) };
}

/// A tag unique to this run (the same mock may serve several runtimes in one `cargo xtask test`).
pub fn tag(label: &str) -> String {
    let n = COUNTER.with(|c| {
        let n = c.get() + 1;
        c.set(n);
        n
    });
    RUN_ID.with(|run| format!("{label}-{n}-{run}"))
}

/// URL-encodes a query value.
pub fn enc(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}

/// `${MOCK}/scenario/<scenario>/v1/chat/completions?<query>&tag=<tag>` (`query` may be empty).
pub fn scenario_url(scenario: &str, query: &str, tag: &str) -> String {
    let sep = if query.is_empty() { "" } else { "&" };
    format!(
        "{}/scenario/{scenario}/v1/chat/completions?{query}{sep}tag={}",
        mock(),
        enc(tag)
    )
}

/// A provider object for `scenario` with model `test/<name>`.
pub fn provider(name: &str, scenario: &str, query: &str, tag: &str) -> Value {
    serde_json::json!({
        "name": name,
        "url": scenario_url(scenario, query, tag),
        "model": format!("test/{name}"),
    })
}

/// The one user message every test sends.
pub fn messages() -> Value {
    serde_json::json!([{ "role": "user", "content": "Say hello to the test suite." }])
}

/// Milliseconds since the Unix epoch (the mock's ledger uses the same clock).
pub fn now() -> f64 {
    Date::now()
}

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (browsers and Node 20).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str) -> Promise;

    /// The global `fetch` with its two arguments (for a custom `fetch` option).
    #[wasm_bindgen(js_name = fetch)]
    pub fn global_fetch_with(input: &JsValue, init: &JsValue) -> Promise;
}

/// The runtime's user agent (`navigator.userAgent`), or "" where there is none.
pub fn user_agent() -> String {
    let navigator =
        Reflect::get(&js_sys::global(), &"navigator".into()).unwrap_or(JsValue::UNDEFINED);
    if navigator.is_object() {
        field(&navigator, "userAgent")
            .as_string()
            .unwrap_or_default()
    } else {
        String::new()
    }
}

/// Whether `fetch()` resolves as soon as the response head arrives. Firefox resolves it only
/// with the first body bytes (seen against the mock's `headers-then-silence`: the head went out
/// within 1 ms, and `fetch()` had not resolved 1.5 s later); Chromium and Node resolve on the head.
pub fn fetch_resolves_on_the_head() -> bool {
    !user_agent().contains("Firefox")
}

/// Awaits `promise`, or gives up after `ms` (returns `None`).
pub async fn settle_within(promise: Promise, ms: u32) -> Option<Result<JsValue, JsValue>> {
    let fut = Box::pin(JsFuture::from(promise));
    let timer = Box::pin(TimeoutFuture::new(ms));
    match select(fut, timer).await {
        Either::Left((r, _)) => Some(r),
        Either::Right(_) => None,
    }
}

/// Any JS value as JSON (`null` for `undefined` and for values JSON cannot hold).
pub fn to_json(value: &JsValue) -> Value {
    if value.is_undefined() {
        return Value::Null;
    }
    match JSON::stringify(value) {
        Ok(s) => s
            .as_string()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// One field of a JS object.
pub fn field(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// The fields of a rejection as JSON (Error's `name` and `message` are not enumerable, so they
/// are read one by one), plus `isError` (`instanceof Error`) and `typeofValue`.
pub fn error_json(error: &JsValue) -> Value {
    let mut out = serde_json::Map::new();
    out.insert(
        "isError".into(),
        Value::Bool(error.is_instance_of::<js_sys::Error>()),
    );
    out.insert(
        "typeofValue".into(),
        Value::String(error.js_typeof().as_string().unwrap_or_default()),
    );
    for key in [
        "name",
        "message",
        "kind",
        "layer",
        "phase",
        "status",
        "partialText",
        "attempts",
        "provider",
        "reason",
    ] {
        let v = field(error, key);
        if !v.is_undefined() {
            out.insert(key.into(), to_json(&v));
        }
    }
    if !error.is_object() {
        out.insert("value".into(), to_json(error));
    }
    Value::Object(out)
}

/// A string field of a JSON value, or "" when absent.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A number field of a JSON value, or NaN when absent.
pub fn n(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// A hook called with each `onText` delta.
pub type TextHook = Box<dyn FnMut(&str)>;
/// A change applied to the options object before the call.
pub type Patch = Box<dyn FnOnce(&JsValue)>;

/// What the caller supplies besides the JSON options.
#[derive(Default)]
pub struct Extra {
    /// Set as `signal`.
    pub signal: Option<web_sys::AbortSignal>,
    /// Called (after recording) with each `onText` delta.
    pub on_text: Option<TextHook>,
    /// Set as `fetch`.
    pub fetch: Option<JsValue>,
    /// Applied to the options object last (e.g. to put a NaN in it).
    pub patch: Option<Patch>,
    /// Leave out `onText` / `onEvent` (config tests).
    pub no_callbacks: bool,
    /// How long to wait for the call to settle before failing the test (default 4000 ms).
    pub watchdog_ms: Option<u32>,
}

/// One `generate()` call, recorded.
pub struct Run {
    /// `Date.now()` just before `generate()` was called.
    pub started_at: f64,
    /// `Date.now()` when the promise settled.
    pub settled_at: f64,
    /// The raw outcome.
    pub raw: Result<JsValue, JsValue>,
    /// The result (Ok) or the error's fields (Err) as JSON.
    pub json: Result<Value, Value>,
    /// Every `onText` delta with its time.
    pub texts: Vec<(f64, String)>,
    /// Every `onEvent` event (as JSON) with its time.
    pub events: Vec<(f64, Value)>,
}

impl Run {
    /// Settle time minus start time.
    pub fn elapsed(&self) -> f64 {
        self.settled_at - self.started_at
    }

    /// The result; fails the test with the error when the call rejected.
    pub fn ok(&self) -> &Value {
        match &self.json {
            Ok(v) => v,
            Err(e) => panic!(
                "expected generate() to resolve, it rejected with {e} (events: {})",
                self.event_summary()
            ),
        }
    }

    /// The error's fields; fails the test with the result when the call resolved.
    pub fn err(&self) -> &Value {
        match &self.json {
            Err(e) => e,
            Ok(v) => panic!(
                "expected generate() to reject, it resolved with {v} (events: {})",
                self.event_summary()
            ),
        }
    }

    /// The `onText` deltas joined.
    pub fn joined(&self) -> String {
        self.texts.iter().map(|(_, t)| t.as_str()).collect()
    }

    /// When the last `onText` delta arrived.
    pub fn last_text_at(&self) -> Option<f64> {
        self.texts.last().map(|(t, _)| *t)
    }

    /// The `type`s of the events, in order.
    pub fn event_types(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|(_, e)| s(e, "type").to_string())
            .collect()
    }

    /// The events of one type.
    pub fn events_of(&self, ty: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|(_, e)| s(e, "type") == ty)
            .map(|(_, e)| e)
            .collect()
    }

    /// The events of one type with their times.
    pub fn timed_events_of(&self, ty: &str) -> Vec<(f64, &Value)> {
        self.events
            .iter()
            .filter(|(_, e)| s(e, "type") == ty)
            .map(|(t, e)| (*t, e))
            .collect()
    }

    /// A one-line summary of the events for failure messages.
    pub fn event_summary(&self) -> String {
        self.events
            .iter()
            .map(|(t, e)| format!("+{:.0}ms {e}", t - self.started_at))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// `result.attempts` or `error.attempts` as (provider, outcome, status) triples.
    pub fn attempts(&self) -> Vec<(String, String, Option<u64>)> {
        let v = match &self.json {
            Ok(v) | Err(v) => v,
        };
        v.get("attempts")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            s(x, "provider").to_string(),
                            s(x, "outcome").to_string(),
                            x.get("status").and_then(Value::as_u64),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Everything the caller saw, as one string (to look for leaked secrets).
    pub fn everything(&self) -> String {
        let mut all = String::new();
        match &self.json {
            Ok(v) | Err(v) => all.push_str(&v.to_string()),
        }
        for (_, e) in &self.events {
            all.push_str(&e.to_string());
        }
        if let Err(e) = &self.raw {
            if let Some(s) = e.as_string() {
                all.push_str(&s);
            }
            if let Ok(s) = e.clone().dyn_into::<js_sys::Error>() {
                all.push_str(&String::from(s.to_string()));
            }
        }
        all
    }
}

/// Sets the options `object`'s `onText` to `on_text` and its `onEvent` to a recorder of every
/// event, with its time, into `events`.
pub fn set_callbacks(
    object: &JsValue,
    on_text: impl FnMut(JsValue) + 'static,
    events: &Rc<RefCell<Vec<(f64, Value)>>>,
) {
    let on_text = Closure::<dyn FnMut(JsValue)>::new(on_text);
    let sink = events.clone();
    let on_event = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        sink.borrow_mut().push((now(), to_json(&event)));
    });
    Reflect::set(object, &"onText".into(), on_text.as_ref()).unwrap();
    Reflect::set(object, &"onEvent".into(), on_event.as_ref()).unwrap();
    // Kept alive for good: a late callback must not hit a dropped closure.
    on_text.forget();
    on_event.forget();
}

/// Calls `generate(options)` with `onText`/`onEvent` recorders (unless `extra.no_callbacks`) and
/// waits for it to settle (failing the test if it does not within the watchdog).
pub async fn run(options: Value, mut extra: Extra) -> Run {
    watch_rejections();
    assert_no_unhandled_rejections("before this call (left by an earlier test)");
    let texts: Rc<RefCell<Vec<(f64, String)>>> = Rc::default();
    let events: Rc<RefCell<Vec<(f64, Value)>>> = Rc::default();
    let object = JSON::parse(&options.to_string()).expect("options are JSON");
    if !extra.no_callbacks {
        let sink = texts.clone();
        let mut hook = extra.on_text.take();
        let on_text = move |delta: JsValue| {
            let delta = delta.as_string().unwrap_or_else(|| {
                format!(
                    "<onText got a non-string: {:?}>",
                    delta.js_typeof().as_string()
                )
            });
            sink.borrow_mut().push((now(), delta.clone()));
            if let Some(hook) = hook.as_mut() {
                hook(&delta);
            }
        };
        set_callbacks(&object, on_text, &events);
    }
    if let Some(signal) = &extra.signal {
        Reflect::set(&object, &"signal".into(), signal).unwrap();
    }
    if let Some(fetch) = &extra.fetch {
        Reflect::set(&object, &"fetch".into(), fetch).unwrap();
    }
    if let Some(patch) = extra.patch.take() {
        patch(&object);
    }
    let watchdog = extra.watchdog_ms.unwrap_or(4000);
    let started_at = now();
    let promise = llm_stream_guard::web::generate(object);
    let raw = settle_within(promise, watchdog).await;
    let settled_at = now();
    let raw = raw.unwrap_or_else(|| {
        let seen: Vec<String> = events
            .borrow()
            .iter()
            .map(|(t, e)| format!("+{:.0}ms {e}", t - started_at))
            .collect();
        panic!(
            "generate() did not settle within {watchdog} ms (text so far {:?}; events: {})",
            texts
                .borrow()
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<String>(),
            seen.join(" | ")
        )
    });
    let json = match &raw {
        Ok(v) => Ok(to_json(v)),
        Err(e) => Err(error_json(e)),
    };
    let texts = texts.borrow().clone();
    let events = events.borrow().clone();
    Run {
        started_at,
        settled_at,
        raw,
        json,
        texts,
        events,
    }
}

/// One connection as the mock's ledger records it.
#[derive(Debug, Clone, Deserialize)]
pub struct Conn {
    pub id: u64,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub scenario: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub authorization_seen: bool,
    #[serde(default)]
    pub status: Option<u16>,
    pub opened_at_ms: f64,
    #[serde(default)]
    pub response_started_at_ms: Option<f64>,
    #[serde(default)]
    pub closed_at_ms: Option<f64>,
    #[serde(default)]
    pub closed_by: Option<String>,
    #[serde(default)]
    pub client_reset: bool,
}

impl Conn {
    /// The request body as JSON (`null` when it is not JSON).
    pub fn body_json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The answer of `GET /_ledger`.
#[derive(Debug, Clone, Deserialize)]
pub struct LedgerView {
    pub now_ms: f64,
    pub connections: Vec<Conn>,
    #[serde(default)]
    pub timed_out: Option<bool>,
}

impl LedgerView {
    /// The chat requests (browsers add CORS preflight `OPTIONS` connections with the same tag).
    pub fn posts(&self) -> Vec<&Conn> {
        self.connections
            .iter()
            .filter(|c| c.method == "POST")
            .collect()
    }

    /// Whether every listed connection is closed.
    pub fn all_closed(&self) -> bool {
        self.connections.iter().all(|c| c.closed_at_ms.is_some())
    }
}

async fn get_ledger(query: &str) -> LedgerView {
    let url = format!("{}/_ledger?{query}", ledger_base());
    let response = settle_within(global_fetch(&url), 8000)
        .await
        .unwrap_or_else(|| panic!("GET {url} did not answer within 8 s"))
        .unwrap_or_else(|e| panic!("GET {url} failed: {:?}", error_json(&e)));
    let response: web_sys::Response = response.unchecked_into();
    assert_eq!(response.status(), 200, "GET {url}");
    let json = JsFuture::from(response.json().expect("json()"))
        .await
        .expect("ledger JSON");
    serde_json::from_value(to_json(&json)).expect("ledger shape")
}

/// The tagged connections once all are closed (long-poll up to 2 s; `timed_out` tells).
pub async fn ledger_closed(tag: &str) -> LedgerView {
    get_ledger(&format!("tag={}&wait_closed_ms=2000", enc(tag))).await
}

/// The tagged connections as they are now (no waiting).
pub async fn ledger_now(tag: &str) -> LedgerView {
    get_ledger(&format!("tag={}", enc(tag))).await
}

/// Waits (long-poll) until every connection of `tag` is closed and asserts that it happened; returns
/// the view. `what` names the check in failure messages.
pub async fn assert_closed(tag: &str, what: &str) -> LedgerView {
    let view = ledger_closed(tag).await;
    assert!(
        !view.connections.is_empty(),
        "{what}: the mock saw no connection tagged {tag}"
    );
    assert!(
        view.timed_out != Some(true) && view.all_closed(),
        "{what}: connection(s) tagged {tag} still open 2 s after the call settled: {:?}",
        view.connections
    );
    assert_no_unhandled_rejections(what);
    view
}

/// Asserts that no connection was ever tagged `tag` (a provider that must not be contacted).
pub async fn assert_untouched(tag: &str, what: &str) {
    let view = ledger_now(tag).await;
    assert!(
        view.connections.is_empty(),
        "{what}: provider tagged {tag} was contacted: {:?}",
        view.connections
    );
    assert_no_unhandled_rejections(what);
}

/// The one and only POST of `view` (fails otherwise).
pub fn only_post<'a>(view: &'a LedgerView, what: &str) -> &'a Conn {
    let posts = view.posts();
    assert_eq!(
        posts.len(),
        1,
        "{what}: expected exactly one request, the ledger shows {:?}",
        view.connections
    );
    posts[0]
}

/// A JS function `(input, init) => fetch(input, init)` that counts its calls.
pub fn counting_fetch() -> (JsValue, Rc<Cell<u32>>) {
    let count = Rc::new(Cell::new(0u32));
    let c = count.clone();
    let f = Closure::<dyn FnMut(JsValue, JsValue) -> Promise>::new(
        move |input: JsValue, init: JsValue| {
            c.set(c.get() + 1);
            global_fetch_with(&input, &init)
        },
    );
    let value: JsValue = f.as_ref().clone();
    f.forget();
    (value, count)
}

/// Calls a JS function value with no arguments (used to check a value is callable).
pub fn is_function(value: &JsValue) -> bool {
    value.dyn_ref::<Function>().is_some()
}

/// Records what is written to `console.log/info/warn/error/debug` (still passing it on) until
/// [`ConsoleCapture::stop`], which puts the previous functions back.
pub struct ConsoleCapture {
    console: JsValue,
    saved: Vec<(&'static str, JsValue)>,
    lines: Rc<RefCell<Vec<String>>>,
}

impl ConsoleCapture {
    const METHODS: [&'static str; 5] = ["log", "info", "warn", "error", "debug"];

    /// Starts recording.
    pub fn start() -> ConsoleCapture {
        let console = Reflect::get(&js_sys::global(), &"console".into()).expect("console");
        let lines: Rc<RefCell<Vec<String>>> = Rc::default();
        let mut saved = Vec::new();
        for method in Self::METHODS {
            let previous = field(&console, method);
            let sink = lines.clone();
            let pass_on = previous.clone();
            let console_ref = console.clone();
            let wrapper = Closure::<dyn FnMut(js_sys::Array)>::new(move |args: js_sys::Array| {
                let text: Vec<String> = args
                    .iter()
                    .map(|a| a.as_string().unwrap_or_else(|| to_json(&a).to_string()))
                    .collect();
                sink.borrow_mut().push(text.join(" "));
                if let Some(f) = pass_on.dyn_ref::<Function>() {
                    let _ = f.apply(&console_ref, &args);
                }
            });
            // A rest-parameter adapter: (...args) => wrapper(args).
            let adapter = Function::new_with_args("w", "return function (...args) { w(args); };")
                .call1(&JsValue::NULL, wrapper.as_ref())
                .expect("adapter");
            wrapper.forget();
            Reflect::set(&console, &method.into(), &adapter).unwrap();
            saved.push((method, previous));
        }
        ConsoleCapture {
            console,
            saved,
            lines,
        }
    }

    /// Stops recording and returns the lines.
    pub fn stop(self) -> Vec<String> {
        for (method, previous) in &self.saved {
            Reflect::set(&self.console, &(*method).into(), previous).unwrap();
        }
        let lines = self.lines.borrow().clone();
        lines
    }
}

thread_local! {
    /// The list the runtime's unhandled-rejection hook pushes to (installed once per module).
    static REJECTIONS: js_sys::Array = install_rejection_hook();
}

/// Hooks the runtime's report of unhandled promise rejections: Node's
/// `process.on("unhandledRejection")`, the browsers' `unhandledrejection` event. Each one is
/// recorded (its stack or text) for [`assert_no_unhandled_rejections`]; in Node the hook also
/// keeps the runner alive long enough to fail the test instead of dying mid-suite.
fn install_rejection_hook() -> js_sys::Array {
    let install = Function::new_no_args(
        r#"
        const seen = [];
        const describe = (reason) => {
          try {
            return reason && reason.stack ? String(reason.stack) : String(reason);
          } catch (_) {
            return "(a reason that cannot be printed)";
          }
        };
        if (typeof process === "object" && process && typeof process.on === "function") {
          process.on("unhandledRejection", (reason) => { seen.push(describe(reason)); });
        } else if (typeof addEventListener === "function") {
          addEventListener("unhandledrejection", (event) => {
            seen.push(describe(event.reason));
            event.preventDefault();
          });
        }
        return seen;
        "#,
    );
    install
        .call0(&JsValue::UNDEFINED)
        .expect("the rejection hook installs")
        .unchecked_into()
}

/// Installs the unhandled-rejection hook (idempotent). [`run`] calls it.
pub fn watch_rejections() {
    REJECTIONS.with(|_| ());
}

/// Fails the test if any promise rejection went unhandled since the last check (each is
/// printed with a `UNHANDLED REJECTION:` prefix, so a run's log can be counted).
pub fn assert_no_unhandled_rejections(what: &str) {
    let seen: Vec<String> = REJECTIONS.with(|list| {
        let items = list
            .iter()
            .map(|v| v.as_string().unwrap_or_default())
            .collect();
        list.set_length(0);
        items
    });
    for reason in &seen {
        web_sys::console::log_1(&format!("UNHANDLED REJECTION: {what}: {reason}").into());
    }
    assert!(
        seen.is_empty(),
        "{what}: {} unhandled promise rejection(s): {seen:?}",
        seen.len()
    );
}
