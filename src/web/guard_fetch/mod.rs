//! `guardFetch(options)`: the guard as a drop-in `fetch` for SDKs (openai, the AI SDK,
//! Anthropic's, any that takes a `fetch` option), a thin driver of [`Relay`].
//!
//! Each call `(input, init)` reads the request as `fetch` would (`new Request(input, init)`:
//! a URL string, a `URL` or a `Request`), hands it to the call machine in its relaying mode, performs what the
//! machine asks (send with an `AbortController` of its own, release an attempt), reports what
//! the platform did (heads, reads, ends, errors, the clock, aborts), and answers with a
//! `Response`: the committed attempt's status and headers over a body it fills as the SDK
//! pulls, or the machine's own failure response. The SDK's signal rejects the promise (or
//! errors the body) with the signal's reason, as `fetch` does; the options' `signal` and
//! `session` with an `AbortError`. Nothing is ever left to reject unhandled.
//!
//! It must never decide: no deadline, retry, failover, status or byte is chosen here.

mod body;
mod options;
mod request;

use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use crate::web::executor::spawn_local;
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use crate::core::events::GuardEvent;
use crate::core::machine::{AttemptId, BodyError};
use crate::core::relay::{
    CutError, Outgoing, Relay, RelayAction, RelayConfig, RelayDelivery, SdkRequest,
};
use crate::web::objects::{config_error, event_object, get, log_event, set, set_named};
use crate::web::resources::{Alarm, Counted, Kind, Listener, Wakeup};
use crate::web::transport::{js_error_message, Heard, Transport, Transports};
pub(crate) use body::BodyStream;
pub(crate) use options::{read as read_guard_fetch_options, FetchFinish, FetchHook, GuardOptions};
use request::read_request;

/// What the driver's caller makes of the relay's deliveries: `guardFetch()` (the SDK's
/// `Response`, its `onEvent` and log) or the edge worker (its client's `Response`, its
/// metrics). It never decides: it builds what the machine said.
pub(crate) trait Host {
    /// An event happened.
    fn event(&mut self, event: &GuardEvent);
    /// The `Response` of a commit: `status`, the attempt's upstream `Response` (its headers),
    /// over `body` (`null` for a status without one).
    fn commit(
        &mut self,
        status: u16,
        upstream: &JsValue,
        body: &JsValue,
    ) -> Result<JsValue, JsValue>;
    /// The `Response` of an early status (the worker's first heartbeat) over `body`.
    fn open(&mut self, body: &JsValue) -> Result<JsValue, JsValue> {
        self.commit(200, &JsValue::UNDEFINED, body)
    }
    /// The `Response` of the relay's own failure answer.
    fn respond(&mut self, relay: &Relay, status: u16, body: &str) -> Result<JsValue, JsValue>;
    /// The request is over (after every delivery).
    fn settled(&mut self, _relay: &Relay) {}
}

/// `guardFetch()`'s host: the SDK's `Response`, `onEvent`, the log (and a `Guard`'s learning,
/// for the guard's `fetch`).
struct SdkHost(Rc<GuardOptions>, Option<FetchFinish>);

impl Host for SdkHost {
    fn event(&mut self, event: &GuardEvent) {
        log_event(self.0.log, event);
        if let Some(on_event) = &self.0.on_event {
            // A throwing `onEvent` does not stop the request (the SDK owns it).
            let _ = on_event.call1(&JsValue::UNDEFINED, &event_object(event));
        }
    }

    /// The attempt's status, status text and headers (the platform already decoded the
    /// upstream's bytes, so the length and encoding headers no longer describe them).
    fn commit(
        &mut self,
        status: u16,
        upstream: &JsValue,
        body: &JsValue,
    ) -> Result<JsValue, JsValue> {
        // The new `Response` copies the upstream's headers into its own, which may be changed
        // (one copy, not two).
        let init = JsValue::from(Object::new());
        set(&init, "status", &JsValue::from_f64(f64::from(status)));
        set(&init, "statusText", &get(upstream, "statusText"));
        set(&init, "headers", &get(upstream, "headers"));
        let response = JsResponse::new(body, &init)?;
        let headers = response.headers();
        let _ = headers.remove("content-length");
        let _ = headers.remove("content-encoding");
        if status >= 400 {
            let _ = headers.put("x-should-retry", "false");
        }
        Ok(response.into())
    }

    fn respond(&mut self, _relay: &Relay, status: u16, body: &str) -> Result<JsValue, JsValue> {
        let headers = JsValue::from(Object::new());
        set(&headers, "content-type", &"application/json".into());
        set(&headers, "x-should-retry", &"false".into());
        let init = JsValue::from(Object::new());
        set(&init, "status", &JsValue::from_f64(f64::from(status)));
        set(&init, "headers", &headers);
        JsResponse::new(&JsValue::from_str(body), &init).map(JsValue::from)
    }

    fn settled(&mut self, relay: &Relay) {
        if let Some(finish) = self.1.take() {
            finish(performance_now(), relay);
        }
    }
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    #[wasm_bindgen(js_name = Request)]
    type JsRequest;
    #[wasm_bindgen(constructor, js_class = "Request", catch)]
    fn new(input: &JsValue, init: &JsValue) -> Result<JsRequest, JsValue>;

    #[wasm_bindgen(js_name = Response)]
    type JsResponse;
    #[wasm_bindgen(constructor, js_class = "Response", catch)]
    fn new(body: &JsValue, init: &JsValue) -> Result<JsResponse, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn headers(this: &JsResponse) -> JsHeaders;

    #[wasm_bindgen(js_name = Headers)]
    type JsHeaders;
    #[wasm_bindgen(constructor, js_class = "Headers", catch)]
    fn new(init: &JsValue) -> Result<JsHeaders, JsValue>;
    #[wasm_bindgen(method, catch, js_name = delete)]
    fn remove(this: &JsHeaders, name: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch, js_name = set)]
    fn put(this: &JsHeaders, name: &str, value: &str) -> Result<(), JsValue>;

    #[wasm_bindgen(js_name = DOMException)]
    type DomException;
    #[wasm_bindgen(constructor, js_class = "DOMException", catch)]
    fn new(message: &str, name: &str) -> Result<DomException, JsValue>;
}

/// `guardFetch(options?)`: a `fetch` that guards every request it is given. Throws a
/// `GuardError` of kind `"config"` for invalid options.
#[wasm_bindgen(js_name = guardFetch, skip_typescript)]
pub fn guard_fetch(options: JsValue) -> Result<JsValue, JsValue> {
    let options = options::read(&options).map_err(|m| config_error(&m))?;
    Ok(fetch_of(options))
}

/// The guarded `fetch` of options already read (`guardFetch()`'s, or a `Guard`'s with its hook).
pub(crate) fn fetch_of(options: GuardOptions) -> JsValue {
    let options = Rc::new(options);
    let fetch = Closure::<dyn FnMut(JsValue, JsValue) -> Promise>::new(
        move |input: JsValue, init: JsValue| relay_call(options.clone(), input, init),
    );
    fetch.into_js_value()
}

/// One call of the guarded `fetch`.
fn relay_call(options: Rc<GuardOptions>, input: JsValue, init: JsValue) -> Promise {
    let (promise, answer) = Answer::new();
    if let Some(answer) = answer {
        spawn_local(run(options, input, init, answer));
    }
    promise
}

/// The caller's promise, settled once.
pub(crate) struct Answer {
    resolve: Option<Function>,
    reject: Function,
}

impl Answer {
    /// The promise and its answer.
    pub(crate) fn new() -> (Promise, Option<Answer>) {
        let mut settle = None;
        let promise = Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let answer = settle.map(|(resolve, reject)| Answer {
            resolve: Some(resolve),
            reject,
        });
        (promise, answer)
    }

    fn pending(&self) -> bool {
        self.resolve.is_some()
    }

    fn resolve(&mut self, value: &JsValue) {
        if let Some(resolve) = self.resolve.take() {
            let _ = resolve.call1(&JsValue::UNDEFINED, value);
        }
    }

    fn reject(&mut self, error: &JsValue) {
        if self.resolve.take().is_some() {
            let _ = self.reject.call1(&JsValue::UNDEFINED, error);
        }
    }
}

/// An `AbortError` as `fetch` rejects with when nothing better is at hand.
fn abort_error(message: &str) -> JsValue {
    DomException::new(message, "AbortError")
        .map(JsValue::from)
        .unwrap_or_else(|_| js_sys::Error::new(message).into())
}

/// What cancels a request, noted by listeners and read by the driver.
pub(crate) struct Cancels {
    /// The SDK's signal (its reason is what the promise rejects with; the worker's request's).
    pub sdk: AbortSignal,
    /// The options' signal, and the session's (its reason names what happened).
    pub guard: Vec<(AbortSignal, &'static str)>,
}

impl Cancels {
    /// The first cancel that happened: the machine's reason, and the error the SDK gets before
    /// its `Response` and after it. The SDK's own signal gives its reason both times, as
    /// `fetch` does. The guard's signal or session gives an `AbortError` before the `Response`
    /// (SDKs do not retry one) and a `GuardError` of kind `"aborted"` after it (SDKs end a
    /// stream quietly on an `AbortError`, which would pass a cut answer off as whole).
    fn check(&self) -> Option<(String, JsValue, JsValue)> {
        if self.sdk.aborted() {
            let reason = self.sdk.reason();
            let error = match reason.is_undefined() {
                true => abort_error("This operation was aborted"),
                false => reason,
            };
            return Some(("signal".into(), error.clone(), error));
        }
        self.guard
            .iter()
            .find(|(s, _)| s.aborted())
            .map(|(s, what)| {
                let reason = match *what {
                    "session" => s.reason().as_string().unwrap_or_else(|| "cancel".into()),
                    other => other.to_owned(),
                };
                let message = ["llm-stream-guard: cancelled (", &reason, ")"].concat();
                let after =
                    crate::web::guard_error(crate::core::contract::ErrorKind::Aborted, &message);
                set(&after, "reason", &JsValue::from_str(&reason));
                set(&after, "partial", &JsValue::TRUE);
                (reason, abort_error(&message), after)
            })
    }
}

/// The request, from its reading to its last byte. (The steps between the waits are plain
/// functions: an `async` body holds every value alive across an `await` in its state, and
/// the smaller it is, the smaller the module.)
async fn run(options: Rc<GuardOptions>, input: JsValue, init: JsValue, mut answer: Answer) {
    let _in_flight = Counted::new(Kind::InFlight);
    let read = match read_request(&input, &init).await {
        Ok(read) => read,
        Err(error) => return answer.reject(&error),
    };
    let Some(driver) = Driver::new(options, read, answer) else {
        return;
    };
    drive(driver).await;
}

/// Runs a request's driver to its end.
pub(crate) async fn drive(mut driver: Driver) {
    driver.relay.start(performance_now());
    while driver.step() {
        let woke = driver.wait().await;
        driver.woke(woke);
    }
    driver.end();
}

/// What ended a wait.
enum Woke {
    Settled(AttemptId, Result<JsValue, JsValue>),
    Alarm,
    Nudged,
}

pub(crate) struct Driver {
    relay: Relay,
    host: Box<dyn Host>,
    /// The `fetch` to send with (`None`: the global one).
    fetch: Option<Function>,
    /// How many bytes the caller's body holds before it waits for its reader (0: none).
    pub buffer_bytes: f64,
    /// The SDK's own body, as given (sent to its own endpoint).
    original_body: JsValue,
    answer: Answer,
    cancels: Cancels,
    /// Woken by a signal's abort, the body's pull or its cancel.
    nudge: Rc<Wakeup>,
    alarm: Alarm,
    transports: Transports,
    /// Each attempt's `Response`, once it arrived (its status text and headers are the SDK's
    /// if it is committed).
    responses: Vec<(AttemptId, JsValue)>,
    body: Option<BodyStream>,
    committed: Option<AttemptId>,
    /// The platform's chunk of the last read (whose bytes the transports hold): handed out as it is
    /// when the relay passes that read on whole (most reads), instead of a copy.
    last_chunk: Option<Uint8Array>,
    /// Ends the session's tracking of this request.
    untrack: Option<Function>,
    /// The abort listeners on the signals, while the request runs.
    _listeners: Vec<Listener>,
}

impl Driver {
    /// The driver of a request read, tracked by the session when there is one (`None`: the
    /// session is closed, and the SDK's promise rejected).
    #[inline(never)]
    fn new(
        options: Rc<GuardOptions>,
        (request, original_body, sdk_signal): (SdkRequest, JsValue, AbortSignal),
        mut answer: Answer,
    ) -> Option<Driver> {
        let mut untrack = None;
        let mut guard_signals = Vec::new();
        if let Some(signal) = options.signal.clone() {
            guard_signals.push((signal, "signal"));
        }
        if let Some(session) = &options.session {
            let track = get(session, "trackRequest").unchecked_into::<Function>();
            match track.call0(session) {
                Ok(pair) => {
                    let pair: Array = pair.unchecked_into();
                    guard_signals.push((pair.get(0).unchecked_into(), "session"));
                    untrack = Some(pair.get(1).unchecked_into::<Function>());
                }
                Err(_) => {
                    answer.reject(&abort_error("llm-stream-guard: the session is closed"));
                    return None;
                }
            }
        }
        let cancels = Cancels {
            sdk: sdk_signal,
            guard: guard_signals,
        };
        let (fallbacks, skipped, finish) = match &options.hook {
            Some(hook) => {
                let (kept, skipped, finish) =
                    hook.start(performance_now(), options.fallbacks.clone());
                (kept, skipped, Some(finish))
            }
            None => (options.fallbacks.clone(), Vec::new(), None),
        };
        let config = RelayConfig {
            request,
            timeouts: options.timeouts,
            max_retries: options.policy.max_retries,
            fallbacks,
            policy: options.policy,
            max_event_bytes: options.max_event_bytes,
            on_cut: options.on_cut,
            jitter_seed: jitter_seed(),
        };
        let mut relay = Relay::new(config);
        for (provider, model, skip) in skipped {
            relay.skipped(provider, model, &skip);
        }
        let mut driver = Driver::with_relay(
            relay,
            Box::new(SdkHost(options.clone(), finish)),
            options.fetch.clone(),
            answer,
            cancels,
        );
        driver.original_body = original_body;
        driver.untrack = untrack;
        driver.listen();
        Some(driver)
    }

    /// A driver of `relay` for `host`, cancelled by `cancels` (see [`Driver::listen`]).
    pub(crate) fn with_relay(
        relay: Relay,
        host: Box<dyn Host>,
        fetch: Option<Function>,
        answer: Answer,
        cancels: Cancels,
    ) -> Driver {
        Driver {
            relay,
            host,
            fetch,
            buffer_bytes: 0.0,
            original_body: JsValue::NULL,
            answer,
            cancels,
            nudge: Rc::new(Wakeup::default()),
            alarm: Alarm::default(),
            transports: Transports::default(),
            responses: Vec::new(),
            body: None,
            committed: None,
            last_chunk: None,
            untrack: None,
            _listeners: Vec::new(),
        }
    }

    /// Listens to the cancels' signals (the worker's: its request's signal).
    pub(crate) fn listen(&mut self) {
        let nudge = self.nudge.clone();
        let listeners = std::iter::once(&self.cancels.sdk)
            .chain(self.cancels.guard.iter().map(|(s, _)| s))
            .map(|signal| {
                let nudge = nudge.clone();
                Listener::new(signal, "abort", move |_| nudge.fire())
            })
            .collect::<Vec<_>>();
        self._listeners.extend(listeners);
    }

    /// Acts on everything that happened; `false` once the request is over. Otherwise arms the
    /// alarm and puts the reads in flight for the next wait.
    #[inline(never)]
    fn step(&mut self) -> bool {
        self.nudge.reset();
        self.check_cancels();
        self.drain();
        if self.relay.is_settled() {
            return false;
        }
        let wants = self.body.as_ref().is_none_or(BodyStream::wants);
        if let Some(body) = self.body.as_ref().filter(|_| !wants) {
            body.wait_for_pull();
        }
        let watched = self.relay.watches_client();
        if watched {
            self.relay.client_reading(performance_now(), wants);
            self.drain();
        }
        // Nothing is read while the SDK does not ask, so nothing can be judged meanwhile (the
        // worker's relay judges that itself: a client that stops reading is gone after a while).
        match self.relay.poll_timeout().filter(|_| wants || watched) {
            Some(due) => self.alarm.ensure(due, performance_now()),
            None => self.alarm.disarm(),
        }
        // The committed body is read only as the SDK asks.
        let paused = self.committed.filter(|_| !wants);
        self.transports.start_reads(paused);
        true
    }

    /// Tells the machine what ended the wait.
    #[inline(never)]
    fn woke(&mut self, woke: Woke) {
        match woke {
            Woke::Settled(attempt, result) => self.report(attempt, result),
            Woke::Alarm => self.relay.handle_timeout(performance_now()),
            Woke::Nudged => {}
        }
    }

    /// The request is over: every upstream released, the session's tracking ended.
    #[inline(never)]
    fn end(&mut self) {
        self.transports.clear();
        if let Some(body) = &self.body {
            // Its stream calls nothing more once the driver is gone: ended, if the relay did
            // not end it (on a body already over this does nothing).
            body.close();
        }
        self.host.settled(&self.relay);
        if let Some(untrack) = self.untrack.take() {
            let _ = untrack.call0(&JsValue::UNDEFINED);
        }
    }

    /// A cancel from the SDK's signal, the guard's signal or session, or the body's reader.
    #[inline(never)]
    fn check_cancels(&mut self) {
        if self.relay.is_settled() {
            return;
        }
        let (reason, before, after) = match self.cancels.check() {
            Some(found) => found,
            None if self.body.as_ref().is_some_and(BodyStream::cancelled) => (
                "body-cancel".to_owned(),
                JsValue::UNDEFINED,
                JsValue::UNDEFINED,
            ),
            None => return,
        };
        self.relay.cancel(performance_now(), &reason);
        self.drain();
        if self.answer.pending() {
            self.answer.reject(&before);
        } else if let Some(body) = &self.body {
            body.error(&after);
        }
    }

    #[inline(never)]
    fn drain(&mut self) {
        loop {
            if let Some(action) = self.relay.poll_action() {
                match action {
                    RelayAction::Send(out) => self.send(out),
                    RelayAction::Cancel { attempt } => self.transports.release(attempt),
                    RelayAction::Finish { attempt } => self.transports.finish(attempt),
                }
            } else if let Some(delivery) = self.relay.poll_delivery() {
                self.deliver(delivery);
            } else {
                // A later delivery never stands for this read's chunk.
                self.last_chunk = None;
                return;
            }
        }
    }

    #[inline(never)]
    fn send(&mut self, out: Outgoing) {
        let headers = JsValue::from(Object::new());
        for (name, value) in &out.headers {
            set_named(&headers, name, &JsValue::from_str(value));
        }
        let init = JsValue::from(Object::new());
        set(&init, "method", &JsValue::from_str(&out.method));
        set(&init, "headers", &headers);
        let body = match &out.body {
            Some(text) => JsValue::from_str(text),
            None => self.original_body.clone(),
        };
        if !body.is_undefined() && !body.is_null() {
            set(&init, "body", &body);
        }
        let url = JsValue::from_str(&out.url);
        let attempt = out.attempt;
        let sent = Transport::send_init(attempt, &url, &init, self.fetch.as_ref());
        if let Err(error) = self.transports.add(sent) {
            let message = js_error_message(&error);
            self.relay
                .request_error(attempt, performance_now(), &message);
        }
    }

    #[inline(never)]
    fn deliver(&mut self, delivery: RelayDelivery) {
        match delivery {
            RelayDelivery::Event(event) => self.host.event(&event),
            RelayDelivery::Commit { attempt, status } => self.commit(Some(attempt), status),
            RelayDelivery::Open => self.commit(None, 200),
            RelayDelivery::Respond { status, body } => {
                match self.host.respond(&self.relay, status, &body) {
                    Ok(response) => self.answer.resolve(&response),
                    Err(error) => self.answer.reject(&error),
                }
            }
            RelayDelivery::Bytes(bytes) => {
                let whole = match self.last_chunk {
                    Some(_) if bytes == self.transports.last_read() => self.last_chunk.take(),
                    _ => None,
                };
                if let Some(body) = &self.body {
                    match &whole {
                        Some(chunk) => body.enqueue_chunk(chunk),
                        None => body.enqueue(&bytes),
                    }
                }
            }
            RelayDelivery::Close => {
                if let Some(body) = &self.body {
                    body.close();
                }
            }
            RelayDelivery::Fail(cut) => {
                if let Some(body) = &self.body {
                    body.error(&cut_error(&cut));
                }
            }
        }
    }

    /// The caller's `Response` (the host builds it) over a body the driver fills: `attempt`'s
    /// commit, or (`None`) an early status. A commit after an early status has its body already.
    #[inline(never)]
    fn commit(&mut self, attempt: Option<AttemptId>, status: u16) {
        if attempt.is_some() {
            self.committed = attempt;
        }
        if self.body.is_some() {
            return;
        }
        let upstream = self
            .responses
            .iter()
            .find(|(id, _)| Some(*id) == attempt)
            .map(|(_, r)| r.clone())
            .unwrap_or(JsValue::UNDEFINED);
        let null_body = matches!(status, 101 | 103 | 204 | 205 | 304);
        let body = match null_body {
            true => JsValue::NULL,
            false => match BodyStream::new(self.nudge.clone(), self.buffer_bytes) {
                Ok(stream) => {
                    let value = stream.stream().clone();
                    self.body = Some(stream);
                    value
                }
                Err(error) => return self.answer.reject(&error),
            },
        };
        let response = match attempt {
            Some(_) => self.host.commit(status, &upstream, &body),
            None => self.host.open(&body),
        };
        match response {
            Ok(response) => self.answer.resolve(&response),
            Err(error) => self.answer.reject(&error),
        }
    }

    async fn wait(&mut self) -> Woke {
        let (transports, alarm, nudge) = (&mut self.transports, &self.alarm, &self.nudge);
        poll_fn(|cx| match transports.poll_settled(cx) {
            Poll::Ready((attempt, result)) => Poll::Ready(Woke::Settled(attempt, result)),
            Poll::Pending if nudge.poll_fired(cx) => Poll::Ready(Woke::Nudged),
            Poll::Pending if alarm.poll_fired(cx) => Poll::Ready(Woke::Alarm),
            Poll::Pending => Poll::Pending,
        })
        .await
    }

    /// Tells the machine what a `fetch` or a read of `attempt` gave.
    #[inline(never)]
    fn report(&mut self, attempt: AttemptId, result: Result<JsValue, JsValue>) {
        let now = performance_now();
        let relay = &mut self.relay;
        match self.transports.heard(attempt, result) {
            None => {}
            Some(Heard::Failed { error, before_head }) => {
                let message = js_error_message(&error);
                match before_head {
                    true => relay.request_error(attempt, now, &message),
                    false => relay.body_error(attempt, now, BodyError::Read(message)),
                }
            }
            Some(Heard::Head { head, response }) => {
                self.responses.push((attempt, response));
                relay.head(attempt, now, head);
            }
            Some(Heard::Bytes { bytes, chunk }) => {
                self.last_chunk = Some(chunk);
                relay.body_bytes(attempt, now, bytes);
            }
            Some(Heard::End) => relay.body_end(attempt, now),
            Some(Heard::NotBytes) => relay.body_error(attempt, now, BodyError::NotBytes),
        }
    }
}

/// A seed for the back-off jitter.
pub(crate) fn jitter_seed() -> u64 {
    (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64
}

/// The `GuardError` a cut body errors with (`onCut: "error"`).
fn cut_error(cut: &CutError) -> JsValue {
    let error = crate::web::guard_error(cut.kind, &cut.message);
    set(&error, "partial", &JsValue::TRUE);
    set(&error, "provider", &JsValue::from_str(&cut.provider));
    if let Some(layer) = cut.layer {
        set(&error, "layer", &JsValue::from_str(layer));
    }
    if let Some(phase) = cut.phase {
        set(&error, "phase", &JsValue::from_str(phase));
    }
    error
}
