//! One request of a generation on the platform: `fetch` with its own `AbortController`, the
//! response body's reader, and the release (abort the request, cancel the reader) that runs
//! when it is dropped, whatever the path.
//!
//! It must never decide: it does what the driver asks and hands back what the platform gave.

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortController;

use crate::core::machine::{AttemptId, Head, Request};
use crate::web::objects::set;
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
}

impl Drop for Transport {
    fn drop(&mut self) {
        if let Some((reader, _counted)) = self.reader.take() {
            // Nothing waits for the cancel: its promise rejects when the stream had already
            // errored (a reset), and a reader from an injected `fetch` may even throw.
            if let Ok(settles) = reader.unchecked_ref::<BodyReader>().try_cancel() {
                ignore_settlement(&settles);
            }
        }
        self.controller.abort();
    }
}

thread_local! {
    /// A rejection handler that does nothing, for promises nobody else waits on.
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
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
            set(&headers, name, &JsValue::from_str(value));
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
        })
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

fn get(object: &JsValue, name: &str) -> JsValue {
    js_sys::Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
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
