//! Helpers for `tests/wasm_session.rs`: the mock upstream's URL and ledger, generations started
//! through a `Session` (or the plain `generate()`) with every callback recorded, the measurement
//! of cancel → upstream-close latency, and JavaScript helpers (`helpers.js`) for WebRTC,
//! WebSocket, fake targets and `pagehide`.
//!
//! Nothing here sleeps to synchronise: generations and events are awaited (with a watchdog so a
//! promise that never settles fails its test instead of hanging the suite), and the ledger is read
//! with its long-poll (`wait_closed_ms`), which answers once every tagged connection is closed.

#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function, Promise, JSON};
use llm_stream_guard::web::{live_resources, Session};
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::console_log;

pub use crate::wasm_common::{
    enc, error_json, field, ledger_base, mock, now, s, set_callbacks, settle_within, to_json,
    DEFAULT_TEXT, TICK,
};
/// Cancel → upstream-close latency budget, in milliseconds.
pub const CLOSE_BUDGET_MS: f64 = 100.0;
/// How far a ledger time may lie before the browser's `Date.now()` of the same instant (clock
/// granularity: Firefox rounds `Date.now()`), in milliseconds.
pub const CLOCK_SLACK_MS: f64 = 5.0;
/// Every reason a cancelled generation may report when a peer connection or its data channel
/// went away.
pub const PEER_REASONS: &[&str] = &[
    "datachannel:close",
    "peer-connection:failed",
    "peer-connection:closed",
    "peer-connection:disconnected",
];

#[wasm_bindgen(module = "/tests/wasm_session_support/helpers.js")]
extern "C" {
    #[wasm_bindgen(js_name = isPage)]
    pub fn is_page() -> bool;
    #[wasm_bindgen(js_name = hasWebSocket)]
    pub fn has_web_socket() -> bool;
    #[wasm_bindgen(js_name = hasPeerConnection)]
    pub fn has_peer_connection() -> bool;
    #[wasm_bindgen(js_name = hasSymbolDispose)]
    pub fn has_symbol_dispose() -> bool;
    /// `value[Symbol.dispose]()`; false when there is no such method.
    pub fn dispose(value: &JsValue) -> bool;
    /// `{ pc1, pc2, dc1, dc2 }`: a connected loopback pair with an open data channel.
    #[wasm_bindgen(js_name = rtcPair)]
    pub fn rtc_pair() -> Promise;
    #[wasm_bindgen(js_name = closePair)]
    pub fn close_pair(pair: &JsValue);
    /// Resolves with the WebSocket once open.
    #[wasm_bindgen(js_name = openWebSocket)]
    pub fn open_web_socket(url: &str) -> Promise;
    /// Resolves with `{ at, code, wasClean }` when `target` fires `ty`.
    #[wasm_bindgen(js_name = nextEvent)]
    pub fn next_event(target: &JsValue, ty: &str) -> Promise;
    /// An `EventTarget` with a writable `connectionState` (`"connected"`).
    #[wasm_bindgen(js_name = fakePeer)]
    pub fn fake_peer() -> JsValue;
    /// Sets `connectionState` and dispatches `connectionstatechange`.
    #[wasm_bindgen(js_name = setConnectionState)]
    pub fn set_connection_state(peer: &JsValue, state: &str);
    /// Dispatches `pagehide` on `window`.
    #[wasm_bindgen(js_name = firePagehide)]
    pub fn fire_pagehide();

    /// `promise.then(() => "settled")`.
    #[wasm_bindgen(js_name = settledMarker)]
    fn settled_marker(promise: &Promise) -> Promise;
}

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str) -> Promise;
}

/// `ws://127.0.0.1:<port>/ws?<query>`.
pub fn ws_url(query: &str) -> String {
    let base = mock();
    let base = base
        .strip_prefix("http://")
        .map(|rest| format!("ws://{rest}"))
        .unwrap_or(base);
    format!("{base}/ws?{query}")
}

thread_local! {
    static LATENCIES: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// A tag unique to this run, `session-<label>-…` (the same mock serves every runtime of one
/// `cargo xtask test`).
pub fn tag(label: &str) -> String {
    crate::wasm_common::tag(&format!("session-{label}"))
}

/// Awaits `promise`, failing the test if it rejects or does not settle within `ms`.
pub async fn must_resolve(promise: Promise, ms: u32, what: &str) -> JsValue {
    match settle_within(promise, ms).await {
        Some(Ok(v)) => v,
        Some(Err(e)) => panic!("{what}: rejected with {}", error_json(&e)),
        None => panic!("{what}: did not settle within {ms} ms"),
    }
}

/// Calls `target[method](...args)`.
pub fn call(target: &JsValue, method: &str, args: &[JsValue]) -> JsValue {
    let f: Function = field(target, method)
        .dyn_into()
        .unwrap_or_else(|_| panic!("{method} is not a function"));
    let args: Array = args.iter().collect();
    f.apply(target, &args)
        .unwrap_or_else(|e| panic!("{method}() threw {}", error_json(&e)))
}

/// Where a generation's URL points.
pub struct Upstream {
    pub scenario: &'static str,
    pub query: String,
}

impl Upstream {
    /// The `endless` scenario ("tick " every 20 ms until the client leaves).
    pub fn endless() -> Upstream {
        Upstream {
            scenario: "endless",
            query: "delay_ms=20".into(),
        }
    }

    /// The `normal` scenario with `delay_ms` between its 11 pieces.
    pub fn normal(delay_ms: u32) -> Upstream {
        Upstream {
            scenario: "normal",
            query: format!("delay_ms={delay_ms}"),
        }
    }
}

/// Waiters for "at least N text deltas arrived".
type Waiters = Rc<RefCell<Vec<(usize, Function)>>>;

/// One generation in flight, with its callbacks recorded.
pub struct Gen {
    pub tag: String,
    pub started_at: f64,
    promise: Promise,
    texts: Rc<RefCell<Vec<(f64, String)>>>,
    events: Rc<RefCell<Vec<(f64, Value)>>>,
    waiters: Waiters,
}

/// A settled generation.
pub struct Outcome {
    pub tag: String,
    pub settled_at: f64,
    pub result: Result<Value, Value>,
    pub texts: Vec<(f64, String)>,
    pub events: Vec<(f64, Value)>,
}

/// The options object of a generation against `upstream`, tagged `tag`.
fn options(upstream: &Upstream, tag: &str) -> JsValue {
    let url = format!(
        "{}/scenario/{}/v1/chat/completions?{}&tag={}",
        mock(),
        upstream.scenario,
        upstream.query,
        enc(tag)
    );
    let json = serde_json::json!({
        "providers": [{ "name": "mock", "url": url, "model": "test/session" }],
        "messages": [{ "role": "user", "content": "Say hello to the session tests." }],
        "retry": { "maxRetries": 0 },
    });
    JSON::parse(&json.to_string()).expect("options are JSON")
}

impl Gen {
    /// Starts a generation in `session` (or through the plain `generate()` when `None`).
    pub fn start(session: Option<&Session>, upstream: Upstream, label: &str) -> Gen {
        crate::wasm_common::watch_rejections();
        let tag = tag(label);
        let object = options(&upstream, &tag);
        let texts: Rc<RefCell<Vec<(f64, String)>>> = Rc::default();
        let events: Rc<RefCell<Vec<(f64, Value)>>> = Rc::default();
        let waiters: Waiters = Rc::default();
        let (sink, wake) = (texts.clone(), waiters.clone());
        let on_text = move |delta: JsValue| {
            let delta = delta
                .as_string()
                .unwrap_or_else(|| "<onText got a non-string>".into());
            sink.borrow_mut().push((now(), delta));
            let count = sink.borrow().len();
            let ready: Vec<Function> = {
                let mut w = wake.borrow_mut();
                let (ready, waiting): (Vec<_>, Vec<_>) =
                    w.drain(..).partition(|(n, _)| *n <= count);
                *w = waiting;
                ready.into_iter().map(|(_, f)| f).collect()
            };
            for resolve in ready {
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        };
        set_callbacks(&object, on_text, &events);
        let started_at = now();
        let promise = match session {
            Some(session) => session.generate(object),
            None => llm_stream_guard::web::generate(object),
        };
        Gen {
            tag,
            started_at,
            promise,
            texts,
            events,
            waiters,
        }
    }

    /// Waits until at least `n` text deltas arrived (fails the test after `ms`).
    pub async fn texts_arrived(&self, n: usize, ms: u32) {
        if self.texts.borrow().len() >= n {
            return;
        }
        let waiters = self.waiters.clone();
        let arrived = Promise::new(&mut |resolve, _reject| {
            waiters.borrow_mut().push((n, resolve));
        });
        // The generation may also settle first (then the text never comes): race both.
        let either = Promise::race(&Array::of2(&arrived, &settled_marker(&self.promise)));
        match settle_within(either, ms).await {
            Some(Ok(v)) if v.as_string().as_deref() == Some("settled") => panic!(
                "generation {} settled before {n} text deltas arrived (got {}; events: {})",
                self.tag,
                self.texts.borrow().len(),
                summary(&self.events.borrow(), self.started_at)
            ),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!(
                "generation {} rejected before {n} text deltas arrived: {} (events: {})",
                self.tag,
                error_json(&e),
                summary(&self.events.borrow(), self.started_at)
            ),
            None => panic!(
                "generation {}: {n} text deltas did not arrive within {ms} ms (got {}; events: {})",
                self.tag,
                self.texts.borrow().len(),
                summary(&self.events.borrow(), self.started_at)
            ),
        }
    }

    /// How many text deltas arrived so far.
    pub fn text_count(&self) -> usize {
        self.texts.borrow().len()
    }

    /// Waits for the first text delta (the upstream connection is then streaming).
    pub async fn streaming(&self) {
        self.texts_arrived(1, 4000).await;
    }

    /// Waits for the generation to settle (fails the test after `ms`).
    pub async fn settle(self, ms: u32) -> Outcome {
        let raw = settle_within(self.promise.clone(), ms).await;
        let settled_at = now();
        let raw = raw.unwrap_or_else(|| {
            panic!(
                "generation {} did not settle within {ms} ms (events: {})",
                self.tag,
                summary(&self.events.borrow(), self.started_at)
            )
        });
        Outcome {
            tag: self.tag,
            settled_at,
            result: match &raw {
                Ok(v) => Ok(to_json(v)),
                Err(e) => Err(error_json(e)),
            },
            texts: self.texts.borrow().clone(),
            events: self.events.borrow().clone(),
        }
    }
}

fn summary(events: &[(f64, Value)], since: f64) -> String {
    events
        .iter()
        .map(|(t, e)| format!("+{:.0}ms {e}", t - since))
        .collect::<Vec<_>>()
        .join(" | ")
}

impl Outcome {
    /// The joined text deltas.
    pub fn joined(&self) -> String {
        self.texts.iter().map(|(_, t)| t.as_str()).collect()
    }

    /// Asserts the generation was cancelled with one of `reasons`: rejected with a `GuardError`
    /// of kind `"aborted"` and that reason, and a `cancelled` event with the same reason. Returns
    /// the reason and when the `cancelled` event arrived.
    pub fn assert_cancelled(&self, reasons: &[&str]) -> (String, f64) {
        let error = match &self.result {
            Err(e) => e,
            Ok(v) => panic!(
                "{}: expected a cancellation ({reasons:?}), the generation resolved with {v}",
                self.tag
            ),
        };
        assert_eq!(error["isError"], true, "{}: {error}", self.tag);
        assert_eq!(s(error, "name"), "GuardError", "{}: {error}", self.tag);
        assert_eq!(s(error, "kind"), "aborted", "{}: {error}", self.tag);
        let reason = s(error, "reason").to_string();
        assert!(
            reasons.contains(&reason.as_str()),
            "{}: reason {reason:?}, expected one of {reasons:?} ({error})",
            self.tag
        );
        let cancelled: Vec<&(f64, Value)> = self
            .events
            .iter()
            .filter(|(_, e)| s(e, "type") == "cancelled")
            .collect();
        assert_eq!(
            cancelled.len(),
            1,
            "{}: expected one cancelled event, got {:?}",
            self.tag,
            self.events
        );
        assert_eq!(
            s(&cancelled[0].1, "reason"),
            reason,
            "{}: the cancelled event's reason differs from the error's",
            self.tag
        );
        // Text that arrived before the cancel is the error's partialText.
        assert_eq!(s(error, "partialText"), self.joined(), "{}", self.tag);
        (reason, cancelled[0].0)
    }

    /// Asserts the generation was refused by a closed session: rejected with a `GuardError` of
    /// kind `"aborted"` and reason `"closed"`, without any text.
    pub fn assert_closed_rejection(&self) {
        let error = match &self.result {
            Err(e) => e,
            Ok(v) => panic!(
                "{}: generate() on a closed session resolved with {v}",
                self.tag
            ),
        };
        assert_eq!(error["isError"], true, "{}: {error}", self.tag);
        assert_eq!(s(error, "name"), "GuardError", "{}: {error}", self.tag);
        assert_eq!(s(error, "kind"), "aborted", "{}: {error}", self.tag);
        assert_eq!(s(error, "reason"), "closed", "{}: {error}", self.tag);
        assert!(
            self.texts.is_empty(),
            "{}: text from a closed session",
            self.tag
        );
    }

    /// Asserts the generation resolved with the whole `normal` answer and no cancellation.
    pub fn assert_complete(&self) {
        let v = match &self.result {
            Ok(v) => v,
            Err(e) => panic!(
                "{}: expected the whole answer, the generation rejected with {e} (events: {:?})",
                self.tag, self.events
            ),
        };
        assert_eq!(s(v, "text"), DEFAULT_TEXT, "{}: {v}", self.tag);
        assert_eq!(v["partial"], false, "{}: {v}", self.tag);
        assert_eq!(self.joined(), DEFAULT_TEXT, "{}", self.tag);
        assert!(
            !self.events.iter().any(|(_, e)| s(e, "type") == "cancelled"),
            "{}: a cancelled event on a finished generation: {:?}",
            self.tag,
            self.events
        );
    }
}

/// The mock's ledger for `tag` (with `wait_closed_ms=2000`: answers once all are closed).
pub async fn ledger_closed(tag: &str) -> Value {
    let url = format!(
        "{}/_ledger?tag={}&wait_closed_ms=2000",
        ledger_base(),
        enc(tag)
    );
    let response = must_resolve(global_fetch(&url), 8000, &format!("GET {url}")).await;
    let response: web_sys::Response = response.unchecked_into();
    assert_eq!(response.status(), 200, "GET {url}");
    let json = must_resolve(response.json().expect("json()"), 8000, "ledger JSON").await;
    to_json(&json)
}

/// The mock's ledger for `tag` as it is now (no waiting).
pub async fn ledger_now(tag: &str) -> Value {
    let url = format!("{}/_ledger?tag={}", ledger_base(), enc(tag));
    let response = must_resolve(global_fetch(&url), 8000, &format!("GET {url}")).await;
    let response: web_sys::Response = response.unchecked_into();
    assert_eq!(response.status(), 200, "GET {url}");
    let json = must_resolve(response.json().expect("json()"), 8000, "ledger JSON").await;
    to_json(&json)
}

/// The connections of a ledger answer whose method is `method`.
pub fn conns<'a>(view: &'a Value, method: &str) -> Vec<&'a Value> {
    view["connections"]
        .as_array()
        .map(|a| a.iter().filter(|c| s(c, "method") == method).collect())
        .unwrap_or_default()
}

/// Asserts that the upstream connection of a cancelled generation (tagged `tag`) was closed by
/// the client within [`CLOSE_BUDGET_MS`] of `cancel_at`; records and prints the latency.
pub async fn assert_upstream_closed(tag: &str, cancel_at: f64, label: &str) -> f64 {
    let view = ledger_closed(tag).await;
    let posts = conns(&view, "POST");
    assert_eq!(
        posts.len(),
        1,
        "{label}: expected one upstream request tagged {tag}: {view}"
    );
    let post = posts[0];
    assert!(
        view["timed_out"] != true && post["closed_at_ms"].is_number(),
        "{label}: the upstream connection tagged {tag} is still open 2 s after the cancel: {view}"
    );
    assert_eq!(
        s(post, "closed_by"),
        "client",
        "{label}: the client should have closed the upstream connection: {post}"
    );
    let latency = post["closed_at_ms"].as_f64().unwrap() - cancel_at;
    record_latency(label, latency);
    assert!(
        latency > -CLOCK_SLACK_MS,
        "{label}: the upstream connection closed {:.1} ms before the cancel: {post}",
        -latency
    );
    assert!(
        latency < CLOSE_BUDGET_MS,
        "{label}: the upstream connection closed {latency:.1} ms after the cancel (budget \
         {CLOSE_BUDGET_MS} ms)"
    );
    latency
}

/// Asserts that every connection tagged `tag` is closed (a finished generation's).
pub async fn assert_all_closed(tag: &str, what: &str) {
    let view = ledger_closed(tag).await;
    let all = view["connections"].as_array().cloned().unwrap_or_default();
    assert!(!all.is_empty(), "{what}: the mock saw nothing tagged {tag}");
    assert!(
        view["timed_out"] != true && all.iter().all(|c| c["closed_at_ms"].is_number()),
        "{what}: connection(s) tagged {tag} still open: {view}"
    );
}

/// Records one cancel → upstream-close latency and prints it with the running median and worst
/// of this test file's run.
pub fn record_latency(label: &str, ms: f64) {
    let (n, median, worst) = LATENCIES.with(|l| {
        let mut l = l.borrow_mut();
        l.push(ms);
        let mut sorted = l.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        (n, median, sorted[n - 1])
    });
    console_log!(
        "[{}] cancel -> upstream close, {label}: {ms:.1} ms (this run so far: n={n}, median \
         {median:.1} ms, worst {worst:.1} ms)",
        runtime()
    );
}

/// "chrome", "firefox", "node" or "other", for log lines.
pub fn runtime() -> &'static str {
    let global = js_sys::global();
    let navigator = field(&global, "navigator");
    let agent = field(&navigator, "userAgent")
        .as_string()
        .unwrap_or_default();
    if !is_page() {
        "node"
    } else if agent.contains("Firefox") {
        "firefox"
    } else if agent.contains("Chrome") {
        "chrome"
    } else {
        "other"
    }
}

/// The module's live resources as `[timers, readers, listeners, inFlight]`.
pub fn resources() -> [f64; 4] {
    let r = live_resources();
    ["timers", "readers", "listeners", "inFlight"]
        .map(|k| field(&r, k).as_f64().unwrap_or(f64::NAN))
}

/// Asserts the module holds no timer, reader, listener or generation any more.
pub fn assert_no_live_resources(what: &str) {
    crate::wasm_common::assert_no_unhandled_rejections(what);
    let r = resources();
    assert_eq!(
        r,
        [0.0; 4],
        "{what}: liveResources() is not all zeros: timers {}, readers {}, listeners {}, inFlight {} \
         (if an earlier test failed, its session may still be open)",
        r[0],
        r[1],
        r[2],
        r[3]
    );
}

/// `new Session(options)` from JSON (`Value::Null` for the defaults).
pub fn session(options: Value) -> Session {
    let options = if options.is_null() {
        JsValue::UNDEFINED
    } else {
        JSON::parse(&options.to_string()).unwrap()
    };
    Session::new(options).unwrap_or_else(|e| panic!("new Session() threw {}", error_json(&e)))
}

/// `session.watch(target)`, failing the test if it throws.
pub fn watch(session: &Session, target: &JsValue) -> Function {
    session
        .watch(target.clone())
        .unwrap_or_else(|e| panic!("watch() threw {}", error_json(&e)))
}

/// Prints why a test does nothing in this runtime.
pub fn skip(test: &str, why: &str) {
    console_log!("[{}] {test}: skipped ({why})", runtime());
}

/// Closes every session of `sessions`, drops them, and asserts that the module holds no live
/// resource (and that no promise rejection went unhandled) after `test`.
pub fn close_all(sessions: Vec<Session>, test: &str) {
    for session in &sessions {
        session.close();
    }
    drop(sessions);
    assert_no_live_resources(test);
}

/// Settles every generation of `gens` in turn, each within `ms`.
pub async fn settle_all(gens: Vec<Gen>, ms: u32) -> Vec<Outcome> {
    let mut outs = Vec::new();
    for gen in gens {
        outs.push(gen.settle(ms).await);
    }
    outs
}

/// [`assert_upstream_closed`] for every outcome of `outs` (labelled `<what>, #<i>`).
pub async fn assert_upstreams_closed(outs: &[Outcome], cancel_at: f64, what: &str) {
    for (i, out) in outs.iter().enumerate() {
        assert_upstream_closed(&out.tag, cancel_at, &format!("{what}, #{i}")).await;
    }
}

/// A session made with `options` watching a new fake peer, and a generation against `upstream`
/// in it that has started streaming.
pub async fn streaming_with_fake_peer(
    options: Value,
    upstream: Upstream,
    label: &str,
) -> (Session, JsValue, Gen) {
    let session = session(options);
    let peer = fake_peer();
    watch(&session, &peer);
    let gen = Gen::start(Some(&session), upstream, label);
    gen.streaming().await;
    (session, peer, gen)
}
