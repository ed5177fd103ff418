//! `Guard`: one long-lived guard whose calls share what it learned, a thin driver of the guard's
//! core ([`GuardState`]) over `generate()`'s and `stream()`'s own driver. Each call's options
//! are the guard's (`providers`, `timeouts`, `retry`, `fetch`, `log`) with the call's own, read
//! by `generate()`'s reader; the core makes the call's machine (learned deadlines, skipped
//! providers, hedging, continuation) and learns from it when it is over.
//!
//! `guard.fetch` is `guardFetch()` with the guard's providers as fallbacks (and its deadlines,
//! retries, session, `onEvent`, log and `fetch`): the core leaves out the fallbacks whose
//! breaker is open, applies the learned deadlines to the others and learns from each request's
//! attempts (the request's own endpoint is not one of the guard's providers, and is not
//! learned).
//!
//! It must never decide: no deadline, breaker, event or message is made here. It only keeps the
//! calls in flight so that `close()` (and the guard's `session`) can cancel them.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::web::executor::future_to_promise;
use js_sys::{Array, Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, AbortSignal};

use crate::core::contract::ErrorKind;
use crate::core::deadline::Millis;
use crate::core::guard::state::{GuardState, GuardedCall};
use crate::core::machine::{Generation, GenerationConfig, Skip};
use crate::core::options::{check_request_keys, read_guard_options};
use crate::core::relay::{Relay, RelayProvider};
use crate::web::error::guard_error;
use crate::web::generate::{drive, GuardHook, TextTap};
use crate::web::guard_fetch::{fetch_of, read_guard_fetch_options, FetchFinish, FetchHook};
use crate::web::objects::{config_error, get, set};
use crate::web::option_source::JsSource;
use crate::web::options::{json_parse, read_options, Options};
use crate::web::resources::Listener;
use crate::web::stream::streaming;
use crate::web::to_js::to_js;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = include_str!("guard.d.ts");

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// The options a guard hands to each of its calls.
const SHARED: [&str; 5] = ["providers", "timeouts", "retry", "fetch", "log"];

/// The reason its calls are cancelled with when the guard closes.
const CLOSED: &str = "closed";

fn given(value: &JsValue) -> bool {
    !value.is_undefined() && !value.is_null()
}

/// What a guard and its calls share.
struct Inner {
    state: RefCell<GuardState>,
    /// The guard's options every call is given.
    shared: Object,
    on_event: Option<Function>,
    /// A `Session` (its `trackRequest()` ties each call to it).
    session: Option<JsValue>,
    closed: Cell<bool>,
    /// The calls in flight, by id: their controllers (aborting one cancels the call).
    in_flight: RefCell<Vec<(u64, AbortController)>>,
    next_id: Cell<u64>,
    /// Aborted by `close()`: the signal of every request of the guard's `fetch`.
    closer: AbortController,
    /// The guard's `fetch`, once asked for (the same function every time).
    fetch: RefCell<Option<JsValue>>,
}

/// A long-lived guard: see the module documentation and the TypeScript types.
#[wasm_bindgen(skip_typescript)]
pub struct Guard {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl Guard {
    /// `new Guard(options)`: throws a `GuardError` of kind `"config"` for invalid options.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Guard, JsValue> {
        if !options.is_object() || Array::is_array(&options) {
            return Err(config_error("new Guard() takes an options object"));
        }
        let config = read_guard_options(&JsSource, &options).map_err(|m| config_error(&m))?;
        let shared = Object::new();
        for key in SHARED {
            let value = get(&options, key);
            if given(&value) {
                set(&shared, key, &value);
            }
        }
        // Checked now, by generate()'s reader, so a typo fails here and not at the first call.
        let probe = Object::assign(&Object::new(), &shared);
        set(&probe, "messages", &Array::new());
        let read = read_options(&probe.into()).map_err(|m| config_error(&m))?;
        // The guard's own copy of its data options (checked above, so they are JSON data): a
        // caller who changes the objects later changes nothing, and stats() keeps its chain.
        for key in ["providers", "timeouts", "retry"] {
            let value = get(&shared, key);
            let copy = js_sys::JSON::stringify(&value).and_then(|text| json_parse(&text.into()));
            if let (true, Ok(copy)) = (given(&value), copy) {
                set(&shared, key, &copy);
            }
        }
        let on_event = get(&options, "onEvent");
        let on_event = match given(&on_event) {
            false => None,
            true => Some(
                on_event
                    .dyn_into::<Function>()
                    .map_err(|_| config_error("onEvent must be a function"))?,
            ),
        };
        let session = get(&options, "session");
        let session = match given(&session) {
            false => None,
            true if get(&session, "trackRequest").is_function() => Some(session),
            true => return Err(config_error("session must be a Session")),
        };
        Ok(Guard {
            inner: Rc::new(Inner {
                state: RefCell::new(GuardState::new(config, &read.config)),
                shared,
                on_event,
                session,
                closed: Cell::new(false),
                in_flight: RefCell::default(),
                next_id: Cell::new(0),
                closer: AbortController::new()?,
                fetch: RefCell::default(),
            }),
        })
    }

    /// Like `generate()`, with this guard's providers, deadlines, retries and state.
    pub fn generate(&self, request: JsValue) -> Promise {
        promise(self.call(request), None)
    }

    /// Like `stream()`, with this guard's providers, deadlines, retries and state.
    pub fn stream(&self, request: JsValue) -> JsValue {
        let call = self.call(request);
        let controller = call.as_ref().ok().map(|call| call.controller.clone());
        streaming(controller, move |_, tap| promise(call, Some(tap)))
    }

    /// What the guard knows now (`ProviderStats[]`).
    pub fn stats(&self) -> JsValue {
        to_js(&self.inner.state.borrow().stats(performance_now()))
    }

    /// `guardFetch()` with this guard's providers as fallbacks, its deadlines, retries,
    /// session, `onEvent`, log and `fetch`, and its state: open breakers skip their provider,
    /// learned deadlines apply, every request is learned from. Closed with the guard.
    #[wasm_bindgen(getter)]
    pub fn fetch(&self) -> Result<JsValue, JsValue> {
        if let Some(fetch) = self.inner.fetch.borrow().as_ref() {
            return Ok(fetch.clone());
        }
        let own = Object::new();
        for key in SHARED {
            let value = get(&self.inner.shared, key);
            if given(&value) {
                set(&own, key, &value);
            }
        }
        if let Some(on_event) = &self.inner.on_event {
            set(&own, "onEvent", on_event);
        }
        if let Some(session) = &self.inner.session {
            set(&own, "session", session);
        }
        set(&own, "signal", &self.inner.closer.signal());
        let mut options = read_guard_fetch_options(&own.into()).map_err(|m| config_error(&m))?;
        options.hook = Some(Rc::new(FetchState(self.inner.clone())));
        let fetch = fetch_of(options);
        // Kept until close(): the function holds the guard's state, and the guard holds the
        // function, a cycle that close() (and free()) breaks.
        if !self.inner.closed.get() {
            *self.inner.fetch.borrow_mut() = Some(fetch.clone());
        }
        Ok(fetch)
    }

    /// Cancels every call in flight (reason `"closed"`); later calls reject the same way.
    pub fn close(&self) {
        self.inner
            .closer
            .abort_with_reason(&JsValue::from_str(CLOSED));
        self.inner.closed.set(true);
        self.inner.fetch.borrow_mut().take();
        let calls = std::mem::take(&mut *self.inner.in_flight.borrow_mut());
        for (_, controller) in calls {
            controller.abort_with_reason(&JsValue::from_str(CLOSED));
        }
    }
}

impl Drop for Guard {
    /// `free()` closes the guard.
    fn drop(&mut self) {
        self.close();
    }
}

impl Guard {
    /// A call of this guard over `request`, registered in flight (or why it cannot run).
    fn call(&self, request: JsValue) -> Result<Call, JsValue> {
        let inner = &self.inner;
        if inner.closed.get() {
            let error = guard_error(ErrorKind::Aborted, "the guard is closed");
            set(&error, "reason", &JsValue::from_str(CLOSED));
            set(&error, "partialText", &JsValue::from_str(""));
            set(&error, "attempts", &Array::new());
            return Err(error);
        }
        let controller = AbortController::new()?;
        let id = inner.next_id.get();
        inner.next_id.set(id + 1);
        inner.in_flight.borrow_mut().push((id, controller.clone()));
        Ok(Call {
            inner: inner.clone(),
            id,
            controller,
            options: self.options(&request),
        })
    }

    /// The call's options: the request's own and the guard's, read by `generate()`'s reader.
    fn options(&self, request: &JsValue) -> Result<Options, String> {
        if !request.is_object() || Array::is_array(request) {
            return Err("a Guard's call takes an options object".into());
        }
        check_request_keys(&JsSource, request)?;
        let merged = Object::assign(&Object::new(), request.unchecked_ref());
        for key in SHARED {
            let value = get(&self.inner.shared, key);
            // A call's own `log` wins over the guard's.
            if given(&value) && !(key == "log" && given(&get(request, key))) {
                set(&merged, key, &value);
            }
        }
        read_options(&merged.into())
    }
}

/// The promise of `call` (its text also to `tap`, for a stream): a boxed future, as
/// `generate()`'s is, so the module carries one copy of `future_to_promise`'s code.
fn promise(call: Result<Call, JsValue>, tap: Option<Rc<dyn TextTap>>) -> Promise {
    let future: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>> = Box::pin(async move {
        match call {
            Ok(call) => call.run(tap).await,
            Err(error) => {
                let outcome = Err(error);
                // A stream hears of it too (its iteration throws it once).
                if let Some(tap) = tap {
                    tap.end(&outcome);
                }
                outcome
            }
        }
    });
    future_to_promise(future)
}

/// One call of a guard, registered in flight until it ends.
struct Call {
    inner: Rc<Inner>,
    id: u64,
    controller: AbortController,
    options: Result<Options, String>,
}

impl Call {
    /// Runs the call to its end (the text also to `tap`, for a stream).
    async fn run(self, tap: Option<Rc<dyn TextTap>>) -> Result<JsValue, JsValue> {
        let Call {
            inner,
            id,
            controller,
            options,
        } = self;
        let end = |inner: &Inner| inner.in_flight.borrow_mut().retain(|(i, _)| *i != id);
        let signal = controller.signal();
        // The guard's session cancels the call as it cancels its own generations.
        let mut _listener = None;
        let mut untrack = None;
        if let Some(session) = &inner.session {
            let track = get(session, "trackRequest").unchecked_into::<Function>();
            match track.call0(session) {
                Ok(pair) => {
                    let pair: Array = pair.unchecked_into();
                    let session_signal: AbortSignal = pair.get(0).unchecked_into();
                    untrack = pair.get(1).dyn_into::<Function>().ok();
                    let controller = controller.clone();
                    let forward = move |reason: &AbortSignal| {
                        controller.abort_with_reason(&reason.reason());
                    };
                    if session_signal.aborted() {
                        forward(&session_signal);
                    } else {
                        let target = session_signal.clone();
                        _listener = Some(Listener::new(&session_signal, "abort", move |_| {
                            forward(&target)
                        }));
                    }
                }
                Err(error) => {
                    end(&inner);
                    return Err(error);
                }
            }
        }
        let hook: Rc<dyn GuardHook> = Rc::new(Hook {
            inner: inner.clone(),
            call: RefCell::default(),
        });
        let outcome = drive(options, Some(signal), tap, Some(hook)).await;
        if let Some(untrack) = untrack {
            let _ = untrack.call0(&JsValue::UNDEFINED);
        }
        end(&inner);
        outcome
    }
}

/// The guard's part in one call: the core makes its machine and learns from it.
struct Hook {
    inner: Rc<Inner>,
    call: RefCell<Option<GuardedCall>>,
}

impl GuardHook for Hook {
    fn machine(&self, now: Millis, config: GenerationConfig) -> Generation {
        let (generation, call) = self.inner.state.borrow_mut().start(now, config);
        *self.call.borrow_mut() = Some(call);
        generation
    }

    fn finished(&self, now: Millis, machine: &Generation) {
        if let Some(call) = self.call.borrow_mut().take() {
            let observations = machine.observations();
            self.inner
                .state
                .borrow_mut()
                .finish(now, call, observations);
        }
    }

    fn on_event(&self) -> Option<Function> {
        self.inner.on_event.clone()
    }
}

/// The guard's part in each request of its `fetch`.
struct FetchState(Rc<Inner>);

impl FetchHook for FetchState {
    fn start(
        &self,
        now: f64,
        fallbacks: Vec<RelayProvider>,
    ) -> (Vec<RelayProvider>, Vec<(String, String, Skip)>, FetchFinish) {
        let (kept, skipped, call) = self.0.state.borrow_mut().start_fetch(now, fallbacks);
        let inner = self.0.clone();
        let finish = move |now: f64, relay: &Relay| {
            inner
                .state
                .borrow_mut()
                .finish(now, call, relay.observations());
        };
        (kept, skipped, Box::new(finish))
    }
}
