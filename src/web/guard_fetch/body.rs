//! The body of a guarded `Response`: a `ReadableStream` the driver fills, pulled by the SDK.
//!
//! For `guardFetch()` its high-water mark is 0, so the stream asks (`pull`) only when its
//! reader waits for a chunk: the driver reads the upstream only as fast as the SDK reads. The
//! edge worker's holds up to a bounded number of bytes ([`BodyStream::new`]'s
//! `buffer_bytes`), so that the next upstream read is already under way while workerd writes
//! the last one to the client, and still no faster than the client reads. A `cancel` from the
//! reader (the SDK aborting its stream) is noted and the driver woken, which releases the
//! upstream at once. It must never decide: it moves bytes and says what the reader did.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Object, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::web::objects::set;
use crate::web::resources::Wakeup;

#[wasm_bindgen]
extern "C" {
    /// A `ReadableStreamDefaultController`; every method may throw (a stream already closed).
    type StreamController;
    #[wasm_bindgen(method, catch)]
    fn enqueue(this: &StreamController, chunk: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn close(this: &StreamController) -> Result<(), JsValue>;
    #[wasm_bindgen(method, catch)]
    fn error(this: &StreamController, error: &JsValue) -> Result<(), JsValue>;
    /// How many more bytes (or chunks) the queue takes; `null` once the stream errored.
    #[wasm_bindgen(method, getter, js_name = desiredSize)]
    fn desired_size(this: &StreamController) -> Option<f64>;

    /// `new ByteLengthQueuingStrategy({ highWaterMark })`.
    #[wasm_bindgen(js_name = ByteLengthQueuingStrategy)]
    type ByteStrategy;
    #[wasm_bindgen(constructor, js_class = "ByteLengthQueuingStrategy", catch)]
    fn new(init: &JsValue) -> Result<ByteStrategy, JsValue>;

    #[wasm_bindgen(js_name = ReadableStream)]
    type JsReadableStream;
    #[wasm_bindgen(constructor, js_class = "ReadableStream", catch)]
    fn new(source: &JsValue, strategy: &JsValue) -> Result<JsReadableStream, JsValue>;
}

/// What the stream's reader did, shared with the stream's callbacks.
#[derive(Default)]
struct Shared {
    controller: RefCell<Option<JsValue>>,
    /// The reader waits for a chunk.
    wants: Cell<bool>,
    /// The reader cancelled the stream.
    cancelled: Cell<bool>,
    /// The driver waits for a pull (only then does a pull wake it).
    idle: Cell<bool>,
    /// The stream is over (closed, errored or cancelled): its controller would only throw
    /// (and building that error, with its stack, is most of what such a call costs).
    over: Cell<bool>,
}

/// One response body. Dropping it is safe once it was closed or errored (the stream calls
/// nothing after that).
pub(crate) struct BodyStream {
    stream: JsValue,
    shared: Rc<Shared>,
    _pull: Closure<dyn FnMut(JsValue)>,
    _cancel: Closure<dyn FnMut(JsValue)>,
}

impl BodyStream {
    /// A stream whose pulls (while the driver waits for one) and cancel wake `nudge`, holding
    /// up to `buffer_bytes` (0: nothing; it asks only when its reader waits).
    pub fn new(nudge: Rc<Wakeup>, buffer_bytes: f64) -> Result<BodyStream, JsValue> {
        let shared = Rc::new(Shared::default());
        let (at_start, at_pull, at_cancel) = (shared.clone(), shared.clone(), shared.clone());
        let (pull_nudge, cancel_nudge) = (nudge.clone(), nudge);
        let start = Closure::once_into_js(move |controller: JsValue| {
            *at_start.controller.borrow_mut() = Some(controller);
        });
        let pull = Closure::<dyn FnMut(JsValue)>::new(move |_controller: JsValue| {
            at_pull.wants.set(true);
            if at_pull.idle.replace(false) {
                pull_nudge.fire();
            }
        });
        let cancel = Closure::<dyn FnMut(JsValue)>::new(move |_reason: JsValue| {
            at_cancel.cancelled.set(true);
            at_cancel.over.set(true);
            cancel_nudge.fire();
        });
        let source = JsValue::from(Object::new());
        set(&source, "start", &start);
        set(&source, "pull", pull.as_ref());
        set(&source, "cancel", cancel.as_ref());
        let strategy = JsValue::from(Object::new());
        set(&strategy, "highWaterMark", &JsValue::from_f64(buffer_bytes));
        let strategy = match buffer_bytes > 0.0 {
            true => ByteStrategy::new(&strategy)
                .map(JsValue::from)
                .unwrap_or_else(|_| {
                    let none = JsValue::from(Object::new());
                    set(&none, "highWaterMark", &JsValue::from_f64(0.0));
                    none
                }),
            false => strategy,
        };
        let stream = JsReadableStream::new(&source, &strategy)?;
        Ok(BodyStream {
            stream: stream.into(),
            shared,
            _pull: pull,
            _cancel: cancel,
        })
    }

    /// The `ReadableStream`.
    pub fn stream(&self) -> &JsValue {
        &self.stream
    }

    /// Whether the reader waits for a chunk, or the buffer has room.
    pub fn wants(&self) -> bool {
        if self.shared.wants.get() {
            return true;
        }
        let controller = self.shared.controller.borrow();
        controller
            .as_ref()
            .and_then(|c| c.unchecked_ref::<StreamController>().desired_size())
            .is_some_and(|room| room > 0.0)
    }

    /// The driver waits for the reader: its next pull wakes the driver.
    pub fn wait_for_pull(&self) {
        self.shared.idle.set(true);
    }

    /// Whether the reader cancelled.
    pub fn cancelled(&self) -> bool {
        self.shared.cancelled.get()
    }

    fn with(&self, act: impl FnOnce(&StreamController)) {
        if self.shared.over.get() {
            return;
        }
        if let Some(controller) = self.shared.controller.borrow().as_ref() {
            act(controller.unchecked_ref());
        }
    }

    /// Hands `bytes` to the reader.
    pub fn enqueue(&self, bytes: &[u8]) {
        self.enqueue_chunk(&Uint8Array::from(bytes));
    }

    /// Hands the reader a chunk that holds exactly the bytes to hand out (an upstream read
    /// passed on whole: no copy made).
    pub fn enqueue_chunk(&self, chunk: &Uint8Array) {
        self.shared.wants.set(false);
        self.with(|c| {
            let _ = c.enqueue(chunk);
        });
    }

    /// Ends the body (once: later calls do nothing).
    pub fn close(&self) {
        self.with(|c| {
            let _ = c.close();
        });
        self.shared.over.set(true);
    }

    /// Errors the body with `error` (unless it is already over).
    pub fn error(&self, error: &JsValue) {
        self.with(|c| {
            let _ = c.error(error);
        });
        self.shared.over.set(true);
    }
}
