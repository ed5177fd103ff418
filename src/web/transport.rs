//! One request of a generation on the platform: `fetch` with its own `AbortController`, the
//! response body's reader, and the release (abort the request, cancel the reader) that runs
//! when it is dropped, whatever the path.
//!
//! It must never decide: it does what the driver asks and hands back what the platform gave.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use js_sys::{Function, Object, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortController;

use crate::core::machine::{AttemptId, Head, Request};
use crate::web::objects::{get, set, set_named};
use crate::web::resources::{Counted, Kind};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &JsValue, init: &JsValue) -> Promise;

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

/// One request on the platform; dropping it releases it (abort, cancel the reader).
pub(crate) struct Transport {
    pub attempt: AttemptId,
    controller: AbortController,
    /// Its response body's reader, once the head arrived with one.
    pub reader: Option<(JsValue, Counted)>,
    /// The `fetch` or the read in flight.
    pub pending: Option<JsFuture>,
    /// The platform ended it whole (its body read to the end, or a response without one):
    /// nothing is left to release.
    ended: bool,
}

impl Drop for Transport {
    fn drop(&mut self) {
        if self.ended {
            // Aborting a finished request still builds an `AbortError` (a `DOMException` with
            // its stack) and fires the signal's listeners: about a tenth of a millisecond of
            // CPU per call in Node, for nothing.
            return;
        }
        if let Some((reader, _counted)) = self.reader.take() {
            // Nothing waits for the cancel: its promise rejects when the stream had already
            // errored (a reset), and a reader from an injected `fetch` may even throw.
            if let Ok(settles) = reader.unchecked_ref::<BodyReader>().try_cancel() {
                ignore_settlement(&settles);
            }
        }
        // Firefox keeps the connection open after the body's cancel alone.
        self.controller.abort();
    }
}

thread_local! {
    /// A rejection handler that does nothing, for promises nobody else waits on.
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
    /// The steps of [`Transport::drain`], made once for every drain.
    static DRAIN: Drain = Drain::new();
}

/// How long a whole answer's body may take to end after its end marker before it is cut (a
/// server ends it with the marker, or one write later).
pub(crate) const DRAIN_MS: f64 = 250.0;

/// [`Transport::drain`]'s steps over a handle `[reader, controller]`: `next` gets `[handle,
/// read result, timer]`, `stop` gets the handle when the time is up, `failed` turns a rejection
/// into an end (nothing left to do).
struct Drain {
    next: Closure<dyn FnMut(JsValue)>,
    stop: Closure<dyn FnMut(JsValue)>,
    failed: Closure<dyn FnMut(JsValue) -> JsValue>,
}

impl Drain {
    fn new() -> Drain {
        Drain {
            next: Closure::new(|parts: JsValue| {
                let parts: js_sys::Array = parts.unchecked_into();
                clear_timeout(&parts.get(2));
                if !parts.get(1).unchecked_into::<ReadResult>().ended(true) {
                    // More than the end after the end marker: not worth keeping.
                    cut(&parts.get(0));
                }
            }),
            stop: Closure::new(|handle: JsValue| cut(&handle)),
            failed: Closure::new(|_: JsValue| {
                let end = JsValue::from(Object::new());
                set(&end, "done", &JsValue::TRUE);
                end
            }),
        }
    }
}

/// Releases a drained request as [`Transport`]'s `Drop` does: cancel its reader, abort it.
fn cut(handle: &JsValue) {
    let handle: &js_sys::Array = handle.unchecked_ref();
    if let Ok(settles) = handle.get(0).unchecked_ref::<BodyReader>().try_cancel() {
        ignore_settlement(&settles);
    }
    handle.get(1).unchecked_ref::<AbortController>().abort();
}

/// A drain's read: the next step gets its result (a rejection counts as the end).
fn drain_read(handle: JsValue, timer: JsValue) {
    let reader = handle.unchecked_ref::<js_sys::Array>().get(0);
    let read = match reader.unchecked_ref::<BodyReader>().try_read() {
        Ok(read) => Promise::resolve(&read),
        Err(_) => {
            clear_timeout(&timer);
            return cut(&handle);
        }
    };
    DRAIN.with(|d| {
        let failed: &Function = d.failed.as_ref().unchecked_ref();
        let read = read.unchecked_ref::<Settling>().catch_with(failed);
        let parts = js_sys::Array::of3(&handle, &read, &timer);
        let _ = Promise::all(&parts)
            .unchecked_ref::<Settling>()
            .then_with(d.next.as_ref().unchecked_ref())
            .catch_with(failed);
    });
}

#[wasm_bindgen]
extern "C" {
    /// `setTimeout(handler, ms, argument)`.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: f64, argument: &JsValue) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(timer: &JsValue);

    /// A promise, with handlers that are plain functions.
    type Settling;
    #[wasm_bindgen(method, js_name = then)]
    fn then_with(this: &Settling, handler: &Function) -> Settling;
    #[wasm_bindgen(method, js_name = catch)]
    fn catch_with(this: &Settling, handler: &Function) -> Settling;
}

/// Lets `value` (a promise, a thenable or anything else) settle with nobody waiting, without
/// an unhandled rejection if it rejects.
pub(crate) fn ignore_settlement(value: &JsValue) {
    IGNORE.with(|ignore| {
        let _ = Promise::resolve(value).catch(ignore);
    });
}

impl Transport {
    /// Sends `request` with `fetch` (the injected one, else the global one); what the platform
    /// threw if it could not even make the request's `AbortController`.
    pub fn send(request: Request, fetch: Option<&Function>) -> Result<Transport, JsValue> {
        let headers = JsValue::from(Object::new());
        for (name, value) in &request.headers {
            set_named(&headers, name, &JsValue::from_str(value));
        }
        let init = JsValue::from(Object::new());
        set(&init, "method", &JsValue::from_str("POST"));
        set(&init, "body", &JsValue::from_str(&request.body));
        set(&init, "headers", &headers);
        let url = JsValue::from_str(&request.url);
        Transport::send_init(request.attempt, &url, &init, fetch)
    }

    /// Sends `url` with `init` (its `signal` set to the transport's own) with `fetch` (the
    /// injected one, else the global one).
    pub fn send_init(
        attempt: AttemptId,
        url: &JsValue,
        init: &JsValue,
        fetch: Option<&Function>,
    ) -> Result<Transport, JsValue> {
        let controller = AbortController::new()?;
        set(init, "signal", &controller.signal());
        let sent = match fetch {
            Some(fetch) => fetch.call2(&JsValue::UNDEFINED, url, init),
            None => Ok(global_fetch(url, init).into()),
        };
        // A `fetch` that throws is a `fetch` that rejects: one path for both.
        let promise = match sent {
            Ok(value) => Promise::resolve(&value),
            Err(thrown) => Promise::reject(&thrown),
        };
        Ok(Transport {
            attempt,
            controller,
            reader: None,
            pending: Some(JsFuture::from(promise)),
            ended: false,
        })
    }

    /// The platform ended this request whole (its body's last read said `done`, or its response
    /// had no body): dropping it then releases nothing.
    pub fn ended(&mut self) {
        self.ended = true;
    }

    /// Its answer is whole: the next read of its body, apart from the driver, should be its
    /// end; if it brings anything else, or does not come within [`DRAIN_MS`], the body is
    /// cancelled as [`Drop`] would. A connection read
    /// to its end goes back to the platform's pool; one cancelled a few bytes before its end
    /// (the body's last read usually comes after the read holding the end marker) is closed,
    /// and the next call pays for a new one (TCP and TLS).
    pub fn drain(&mut self) {
        if let Some((reader, _counted)) = self.reader.take() {
            self.ended = true;
            let handle = js_sys::Array::of2(&reader, &self.controller).into();
            let timer =
                DRAIN.with(|d| set_timeout(d.stop.as_ref().unchecked_ref(), DRAIN_MS, &handle));
            drain_read(handle, timer);
        }
    }

    /// Its head has not arrived (its `fetch` is what is in flight).
    pub fn awaiting_head(&self) -> bool {
        self.reader.is_none()
    }

    /// Puts a read in flight, if its body is being read and none is.
    pub fn start_read(&mut self) {
        if let (None, Some((reader, _))) = (&self.pending, &self.reader) {
            // A `read()` that throws is a read that rejects: one path for both.
            let read = match reader.unchecked_ref::<BodyReader>().try_read() {
                Ok(read) => Promise::resolve(&read),
                Err(thrown) => Promise::reject(&thrown),
            };
            self.pending = Some(JsFuture::from(read));
        }
    }

    /// The response arrived: its head for the machine; its body's reader is kept, if it has one.
    pub fn head(&mut self, response: &JsValue) -> Head {
        let reader = body_reader(response);
        let head = Head {
            status: get(response, "status").as_f64().unwrap_or(0.0) as u16,
            content_type: header(response, "content-type"),
            retry_after: header(response, "retry-after"),
            generation_id: header(response, "x-generation-id"),
            has_body: reader.is_some(),
            unix_ms: js_sys::Date::now(),
        };
        self.reader = reader.map(|reader| (reader, Counted::new(Kind::Reader)));
        head
    }
}

/// The requests of one call on the platform, one per attempt in flight: what every driver of a
/// machine holds, and how what they give back is told to the machine.
#[derive(Default)]
pub(crate) struct Transports {
    list: Vec<Transport>,
    /// The last read's bytes (copied into wasm memory), the buffer reused.
    read: Vec<u8>,
}

/// What the platform gave for one request, as its machine is told it.
pub(crate) enum Heard<'a> {
    /// Its `fetch` failed (threw or rejected) before a head (`before_head`), or a read did.
    Failed { error: JsValue, before_head: bool },
    /// Its head, and the platform's `Response`.
    Head { head: Head, response: JsValue },
    /// Body bytes (in wasm memory), and the platform's chunk they were copied from.
    Bytes { bytes: &'a [u8], chunk: Uint8Array },
    /// Its body ended.
    End,
    /// A read gave something that is not bytes.
    NotBytes,
}

impl Transports {
    /// A request sent, or what the platform threw when it could not even be sent.
    pub fn add(&mut self, sent: Result<Transport, JsValue>) -> Result<(), JsValue> {
        sent.map(|transport| self.list.push(transport))
    }

    /// Releases `attempt`'s request (see [`Transport`]'s `Drop`).
    pub fn release(&mut self, attempt: AttemptId) {
        self.list.retain(|t| t.attempt != attempt);
    }

    /// `attempt`'s answer is whole: its body's end is read apart (see [`Transport::drain`]).
    pub fn finish(&mut self, attempt: AttemptId) {
        self.list
            .iter_mut()
            .filter(|t| t.attempt == attempt)
            .for_each(Transport::drain);
        self.release(attempt);
    }

    /// Releases every request.
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Puts a read in flight on every body being read that has none, but `paused`'s.
    pub fn start_reads(&mut self, paused: Option<AttemptId>) {
        self.list
            .iter_mut()
            .filter(|t| Some(t.attempt) != paused)
            .for_each(Transport::start_read);
    }

    /// The last read's bytes.
    pub fn last_read(&self) -> &[u8] {
        &self.read
    }

    /// The first `fetch` or read that has settled, in the order the requests were sent.
    pub fn poll_settled(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<(AttemptId, Result<JsValue, JsValue>)> {
        for transport in &mut self.list {
            let Some(pending) = transport.pending.as_mut() else {
                continue;
            };
            if let Poll::Ready(result) = Pin::new(pending).poll(cx) {
                transport.pending = None;
                return Poll::Ready((transport.attempt, result));
            }
        }
        Poll::Pending
    }

    /// What `attempt`'s settled `fetch` or read gave (`None`: it is released already). A
    /// request the platform ended (a failure, a body's end, a head without a body) is released
    /// here.
    pub fn heard(
        &mut self,
        attempt: AttemptId,
        result: Result<JsValue, JsValue>,
    ) -> Option<Heard<'_>> {
        let index = self.list.iter().position(|t| t.attempt == attempt)?;
        let transport = &mut self.list[index];
        let before_head = transport.awaiting_head();
        let heard = match result {
            Err(error) => Heard::Failed { error, before_head },
            Ok(response) if before_head => Heard::Head {
                head: transport.head(&response),
                response,
            },
            Ok(read) => {
                let read = read.unchecked_into::<ReadResult>();
                if read.ended(false) {
                    Heard::End
                } else if let Ok(chunk) = read.value().dyn_into::<Uint8Array>() {
                    self.read.resize(chunk.length() as usize, 0);
                    chunk.copy_to(&mut self.read);
                    return Some(Heard::Bytes {
                        bytes: &self.read,
                        chunk,
                    });
                } else {
                    Heard::NotBytes
                }
            }
        };
        // The platform ended this request (a failure, a body's end, a head without a body):
        // nothing more to read; nothing to abort when it ended whole.
        let (ends, whole) = match &heard {
            Heard::Failed { .. } => (true, false),
            Heard::Head { head, .. } => (!head.has_body, true),
            Heard::End => (true, true),
            Heard::Bytes { .. } | Heard::NotBytes => (false, false),
        };
        if ends {
            if whole {
                self.list[index].ended();
            }
            self.list.remove(index);
        }
        Some(heard)
    }
}

/// `response.body.getReader()`, if the response has a body that gives one.
fn body_reader(response: &JsValue) -> Option<JsValue> {
    let body = get(response, "body");
    let get_reader = get(&body, "getReader").dyn_into::<Function>().ok()?;
    get_reader.call0(&body).ok()
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

/// The platform's own words for what it threw.
#[inline(never)]
pub(crate) fn js_error_message(error: &JsValue) -> String {
    let message = get(error, "message").as_string();
    message
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown error".into())
}
