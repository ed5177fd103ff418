//! `stream()`: one guarded call as an async iterable of text deltas, over `generate()`'s
//! driver. Its pieces, joined, are `result.text`; `result` settles as `generate()` would;
//! `cancel(reason)` ends the call at once (the upstream is released) and rejects `result` as
//! `aborted` with that reason. It decides nothing: the call machine does.
//!
//! Never an unhandled rejection: `result` is marked handled (a caller who awaits it still sees
//! its rejection), and a failure reaches an iterating caller once, through `next()`. After the
//! caller's own `cancel()` or `return()` (a `break` out of `for await`), iteration just ends.
//!
//! The text waits in JavaScript strings (one per delta), never in wasm memory. No JavaScript is
//! evaluated: the iterator protocol's `[Symbol.asyncIterator]() { return this }` is
//! `Object.prototype.valueOf`, which returns its receiver.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::web::executor::future_to_promise;
use js_sys::{Function, Object, Promise, Reflect, Symbol};
use wasm_bindgen::prelude::*;
use web_sys::AbortController;

use crate::web::generate::{drive, TextTap};
use crate::web::objects::set;
use crate::web::options::read_options;
use crate::web::transport::ignore_settlement;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = include_str!("stream.d.ts");

/// The reason `cancel()` gives when called without one (and `return()` gives).
const DEFAULT_REASON: &str = "cancel";

/// Where the call is, as the iterator sees it.
enum End {
    /// Still running.
    Running,
    /// Over: iteration ends once the queue is empty.
    Finished,
    /// Failed: `next()` rejects with this once the queue is empty, then iteration ends.
    Failed(JsValue),
}

/// What the driver and the iterator share.
struct Shared {
    queue: RefCell<VecDeque<JsValue>>,
    end: RefCell<End>,
    /// The `next()` calls waiting for a delta or the end, in order: their promises' resolve
    /// and reject.
    waiting: RefCell<VecDeque<(Function, Function)>>,
    /// The caller ended the iteration (`cancel()` or `return()`).
    stopped: std::cell::Cell<bool>,
}

impl Shared {
    /// Hands the steps that are ready to the `next()` calls that wait, in order.
    fn wake(&self) {
        while !self.waiting.borrow().is_empty() {
            let Some(step) = self.step() else { return };
            let Some((resolve, reject)) = self.waiting.borrow_mut().pop_front() else {
                return;
            };
            let _ = match step {
                Step::Value(value) => resolve.call1(&JsValue::UNDEFINED, &item(&value, false)),
                Step::Done => resolve.call1(&JsValue::UNDEFINED, &item(&JsValue::UNDEFINED, true)),
                Step::Throw(error) => reject.call1(&JsValue::UNDEFINED, &error),
            };
        }
    }

    /// The next step, if one is ready: a delta, the end, or the failure (handed out once).
    fn step(&self) -> Option<Step> {
        if let Some(value) = self.queue.borrow_mut().pop_front() {
            return Some(Step::Value(value));
        }
        if self.stopped.get() {
            return Some(Step::Done);
        }
        let mut end = self.end.borrow_mut();
        match std::mem::replace(&mut *end, End::Finished) {
            End::Running => {
                *end = End::Running;
                None
            }
            End::Finished => Some(Step::Done),
            End::Failed(error) => Some(Step::Throw(error)),
        }
    }
}

enum Step {
    Value(JsValue),
    Done,
    Throw(JsValue),
}

impl TextTap for Shared {
    fn text(&self, text: &str) {
        if self.stopped.get() {
            return;
        }
        self.queue.borrow_mut().push_back(JsValue::from_str(text));
        self.wake();
    }

    fn end(&self, outcome: &Result<JsValue, JsValue>) {
        *self.end.borrow_mut() = match outcome {
            Ok(_) => End::Finished,
            Err(error) => End::Failed(error.clone()),
        };
        self.wake();
    }
}

/// `{ value, done }`.
fn item(value: &JsValue, done: bool) -> JsValue {
    let object = JsValue::from(Object::new());
    set(&object, "value", value);
    set(&object, "done", &JsValue::from_bool(done));
    object
}

/// An answer being streamed: see the module documentation and the TypeScript types.
#[wasm_bindgen(skip_typescript)]
pub struct GenerationStream {
    shared: Rc<Shared>,
    result: Promise,
    controller: Option<AbortController>,
}

#[wasm_bindgen]
impl GenerationStream {
    /// The next text delta (`{ value, done: false }`), the end (`{ done: true }`), or the
    /// call's `GuardError` (once), as the async iterator protocol asks.
    pub fn next(&self) -> Promise {
        if self.shared.waiting.borrow().is_empty() {
            if let Some(step) = self.shared.step() {
                return match step {
                    Step::Value(value) => Promise::resolve(&item(&value, false)),
                    Step::Done => Promise::resolve(&item(&JsValue::UNDEFINED, true)),
                    Step::Throw(error) => Promise::reject(&error),
                };
            }
        }
        let shared = self.shared.clone();
        Promise::new(&mut |resolve, reject| {
            shared.waiting.borrow_mut().push_back((resolve, reject));
        })
    }

    /// Ends the iteration (a `break` out of `for await` calls it): the call is cancelled if it
    /// is still running.
    #[wasm_bindgen(js_name = "return")]
    pub fn finish(&self) -> Promise {
        self.cancel(None);
        Promise::resolve(&item(&JsValue::UNDEFINED, true))
    }

    /// Cancels the call now (its upstream is released); `result` rejects as `aborted` with
    /// `reason` (default `"cancel"`). Iteration ends. Nothing happens once the call is over.
    pub fn cancel(&self, reason: Option<String>) {
        self.shared.stopped.set(true);
        self.shared.queue.borrow_mut().clear();
        if let Some(controller) = &self.controller {
            let reason = reason.unwrap_or_else(|| DEFAULT_REASON.to_owned());
            controller.abort_with_reason(&JsValue::from_str(&reason));
        }
        self.shared.wake();
    }

    /// Resolves with the `GenerateResult`, or rejects with the `GuardError`.
    #[wasm_bindgen(getter)]
    pub fn result(&self) -> Promise {
        self.result.clone()
    }
}

/// Streams an answer through the failover chain in `options` (as `generate()` does).
#[wasm_bindgen(js_name = stream, skip_typescript)]
pub fn stream(options: JsValue) -> JsValue {
    let controller = AbortController::new().ok();
    streaming(controller, |signal, tap| {
        future_to_promise(drive(read_options(&options), signal, Some(tap), None))
    })
}

/// A [`GenerationStream`] over the call `start` begins with the signal of `controller` (which
/// `cancel()` aborts) and the stream's tap: `stream()`'s, and a `Guard`'s.
pub(crate) fn streaming(
    controller: Option<AbortController>,
    start: impl FnOnce(Option<web_sys::AbortSignal>, Rc<dyn TextTap>) -> Promise,
) -> JsValue {
    let shared = Rc::new(Shared {
        queue: RefCell::default(),
        end: RefCell::new(End::Running),
        waiting: RefCell::default(),
        stopped: Default::default(),
    });
    let signal = controller.as_ref().map(AbortController::signal);
    let tap: Rc<dyn TextTap> = shared.clone();
    let result = start(signal, tap);
    // Whoever only iterates (or only cancels) must not leave a rejection unhandled.
    ignore_settlement(&result);
    let value = JsValue::from(GenerationStream {
        shared,
        result,
        controller,
    });
    make_async_iterable(&value);
    value
}

/// `[Symbol.asyncIterator]` on the class's prototype: `Object.prototype.valueOf`, which
/// returns its receiver (set once per call; setting it again changes nothing).
fn make_async_iterable(value: &JsValue) {
    let Ok(prototype) = Reflect::get_prototype_of(value) else {
        return;
    };
    let value_of = Reflect::get(&Object::new().into(), &"valueOf".into());
    if let Ok(value_of) = value_of {
        let _ = Reflect::set(&prototype, &Symbol::async_iterator(), &value_of);
    }
}
