//! `Session`: tracks every generation it starts and cancels them together when the page is
//! hidden, a WebRTC or WebSocket link drops, a watched signal aborts, or the app says so.
//!
//! Each generation gets its own `AbortController`, aborted with a reason string that the
//! generation reports (`GuardError.reason`, the `cancelled` event). Listeners live in
//! [`Listener`] guards and the grace timers in [`Timer`]s (the module's own counted
//! `setTimeout`, `web::resources`), both released on drop, so `close()` (or dropping the
//! session) leaves nothing behind; `liveResources()` counts what is left.
//! Targets are recognised by their properties, not their constructors, so the same code works
//! with real objects and with stand-ins that behave the same.

use crate::core::contract::ErrorKind;
use crate::web::executor::future_to_promise;
use crate::web::generate::run_generation;
use crate::web::guard_error;
use crate::web::objects::get;
use crate::web::resources::{Listener, Timer};
use js_sys::{Function, Promise, Reflect};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, EventTarget};

/// Default grace for an `RTCPeerConnection` in `"disconnected"` before it counts as lost.
const DEFAULT_DISCONNECT_GRACE_MS: f64 = 5_000.0;

/// A group of generations cancelled together. See the TypeScript types for the contract.
#[wasm_bindgen(skip_typescript)]
pub struct Session {
    inner: Rc<Inner>,
}

struct Inner {
    grace_ms: f64,
    closed: Cell<bool>,
    next_id: Cell<u64>,
    in_flight: RefCell<Vec<(u64, AbortController)>>,
    watches: RefCell<Vec<(u64, Watch)>>,
}

/// What one `watch()` holds: its listeners and, for a peer connection, the pending
/// "disconnected for too long" check (dropping it clears its timer).
struct Watch {
    _listeners: Vec<Listener>,
    _grace: Rc<RefCell<Option<Timer>>>,
}

fn has(target: &JsValue, name: &str) -> bool {
    Reflect::has(target, &JsValue::from_str(name)).unwrap_or(false)
}

/// What kind of thing a watched target is.
enum Target {
    PeerConnection,
    DataChannel,
    WebSocket,
    Signal,
}

fn kind_of(target: &JsValue) -> Option<Target> {
    if !has(target, "addEventListener") {
        return None;
    }
    if has(target, "connectionState") {
        Some(Target::PeerConnection)
    } else if has(target, "binaryType") && has(target, "url") {
        Some(Target::WebSocket)
    } else if has(target, "label") && has(target, "readyState") {
        Some(Target::DataChannel)
    } else if has(target, "aborted") {
        Some(Target::Signal)
    } else {
        None
    }
}

impl Inner {
    /// Abort every generation in flight with `reason`.
    fn cancel(&self, reason: &str) {
        let controllers: Vec<AbortController> = self
            .in_flight
            .borrow()
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        for controller in controllers {
            controller.abort_with_reason(&JsValue::from_str(reason));
        }
    }

    fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        self.cancel("closed");
        // Dropping the watches removes their listeners and clears their timers.
        let watches = std::mem::take(&mut *self.watches.borrow_mut());
        drop(watches);
    }
}

/// Whether this global scope is a page (has a `document`), where `pagehide` means something.
fn page_target() -> Option<EventTarget> {
    let global = js_sys::global();
    if has(&global, "document") && has(&global, "addEventListener") {
        Some(global.unchecked_into())
    } else {
        None
    }
}

#[wasm_bindgen]
impl Session {
    /// `new Session({ page?, disconnectGraceMs? })`.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Session, JsValue> {
        let mut page = true;
        let mut grace_ms = DEFAULT_DISCONNECT_GRACE_MS;
        if !options.is_undefined() && !options.is_null() {
            if !options.is_object() {
                return Err(guard_error(
                    ErrorKind::Config,
                    "Session options must be an object",
                ));
            }
            let page_value = get(&options, "page");
            if !page_value.is_undefined() {
                page = page_value.as_bool().ok_or_else(|| {
                    guard_error(ErrorKind::Config, "Session option page must be a boolean")
                })?;
            }
            let grace_value = get(&options, "disconnectGraceMs");
            if !grace_value.is_undefined() {
                grace_ms = grace_value
                    .as_f64()
                    .filter(|g| g.is_finite() && *g >= 0.0)
                    .ok_or_else(|| {
                        guard_error(
                            ErrorKind::Config,
                            "Session option disconnectGraceMs must be a non-negative number",
                        )
                    })?;
            }
        }
        let inner = Rc::new(Inner {
            grace_ms,
            closed: Cell::new(false),
            next_id: Cell::new(0),
            in_flight: RefCell::new(Vec::new()),
            watches: RefCell::new(Vec::new()),
        });
        if page {
            if let Some(window) = page_target() {
                let weak = Rc::downgrade(&inner);
                let listener = Listener::new(&window, "pagehide", move |_| {
                    if let Some(inner) = weak.upgrade() {
                        inner.cancel("pagehide");
                    }
                });
                let id = next_id(&inner);
                inner.watches.borrow_mut().push((
                    id,
                    Watch {
                        _listeners: vec![listener],
                        _grace: Rc::default(),
                    },
                ));
            }
        }
        Ok(Session { inner })
    }

    /// Cancel this session's generations when `target` (an `RTCPeerConnection`, `WebSocket`,
    /// `RTCDataChannel` or `AbortSignal`) goes away. Returns a function that stops watching.
    pub fn watch(&self, target: JsValue) -> Result<Function, JsValue> {
        if self.inner.closed.get() {
            return Err(guard_error(ErrorKind::Aborted, "the session is closed"));
        }
        let kind = kind_of(&target).ok_or_else(|| {
            guard_error(
                ErrorKind::Config,
                "watch() takes an RTCPeerConnection, WebSocket, RTCDataChannel or AbortSignal",
            )
        })?;
        let event_target: EventTarget = target.clone().unchecked_into();
        let weak = Rc::downgrade(&self.inner);
        let grace: Rc<RefCell<Option<Timer>>> = Rc::default();
        let cancel = move |weak: &Weak<Inner>, reason: &str| {
            if let Some(inner) = weak.upgrade() {
                inner.cancel(reason);
            }
        };
        let mut listeners = Vec::new();
        match kind {
            Target::PeerConnection => {
                let state = get(&target, "connectionState")
                    .as_string()
                    .unwrap_or_default();
                if state == "failed" || state == "closed" {
                    cancel(&weak, &format!("peer-connection:{state}"));
                }
                let (pc, grace_timer, grace_ms) =
                    (target.clone(), grace.clone(), self.inner.grace_ms);
                listeners.push(Listener::new(
                    &event_target,
                    "connectionstatechange",
                    move |_| {
                        let state = get(&pc, "connectionState").as_string().unwrap_or_default();
                        match state.as_str() {
                            "failed" | "closed" => {
                                grace_timer.borrow_mut().take();
                                cancel(&weak, &format!("peer-connection:{state}"));
                            }
                            "disconnected" => {
                                if grace_timer.borrow().is_some() {
                                    return;
                                }
                                let (weak, pc, slot) =
                                    (weak.clone(), pc.clone(), Rc::downgrade(&grace_timer));
                                let check = Timer::new(grace_ms, move || {
                                    let lost = get(&pc, "connectionState").as_string().as_deref()
                                        == Some("disconnected");
                                    let (weak, cancel) = (weak.clone(), cancel);
                                    // The check is done: drop (and uncount) its timer first.
                                    // (wasm-bindgen frees this closure only once it returns.)
                                    if let Some(slot) = slot.upgrade() {
                                        slot.borrow_mut().take();
                                    }
                                    if lost {
                                        cancel(&weak, "peer-connection:disconnected");
                                    }
                                });
                                *grace_timer.borrow_mut() = Some(check);
                            }
                            _ => {
                                // "connected", "connecting", "new": a recovery clears the grace timer.
                                grace_timer.borrow_mut().take();
                            }
                        }
                    },
                ));
            }
            Target::DataChannel => {
                let state = get(&target, "readyState").as_string().unwrap_or_default();
                if state == "closing" || state == "closed" {
                    cancel(&weak, "datachannel:close");
                }
                for event in ["closing", "close"] {
                    let weak = weak.clone();
                    listeners.push(Listener::new(&event_target, event, move |_| {
                        cancel(&weak, "datachannel:close")
                    }));
                }
            }
            Target::WebSocket => {
                // CLOSING = 2, CLOSED = 3.
                if get(&target, "readyState")
                    .as_f64()
                    .is_some_and(|s| s >= 2.0)
                {
                    cancel(&weak, "websocket:close");
                }
                let weak = weak.clone();
                listeners.push(Listener::new(&event_target, "close", move |_| {
                    cancel(&weak, "websocket:close")
                }));
            }
            Target::Signal => {
                if get(&target, "aborted").as_bool() == Some(true) {
                    cancel(&weak, "signal");
                }
                let weak = weak.clone();
                listeners.push(Listener::new(&event_target, "abort", move |_| {
                    cancel(&weak, "signal")
                }));
            }
        }
        let id = next_id(&self.inner);
        self.inner.watches.borrow_mut().push((
            id,
            Watch {
                _listeners: listeners,
                _grace: grace,
            },
        ));
        let weak = Rc::downgrade(&self.inner);
        let unwatch = Closure::once_into_js(move || {
            if let Some(inner) = weak.upgrade() {
                let removed = {
                    let mut watches = inner.watches.borrow_mut();
                    watches
                        .iter()
                        .position(|(w, _)| *w == id)
                        .map(|at| watches.remove(at))
                };
                drop(removed);
            }
        });
        Ok(unwatch.unchecked_into())
    }

    /// Like `generate()`, tracked by this session and cancelled with it.
    pub fn generate(&self, options: JsValue) -> Promise {
        if self.inner.closed.get() {
            let error = guard_error(ErrorKind::Aborted, "the session is closed");
            let _ = Reflect::set(&error, &"reason".into(), &"closed".into());
            let _ = Reflect::set(&error, &"partialText".into(), &"".into());
            let _ = Reflect::set(&error, &"attempts".into(), &js_sys::Array::new());
            return Promise::reject(&error);
        }
        let controller = match AbortController::new() {
            Ok(controller) => controller,
            Err(error) => return Promise::reject(&error),
        };
        let id = next_id(&self.inner);
        self.inner
            .in_flight
            .borrow_mut()
            .push((id, controller.clone()));
        let inner = self.inner.clone();
        future_to_promise(async move {
            let result = run_generation(options, Some(controller.signal())).await;
            inner.in_flight.borrow_mut().retain(|(g, _)| *g != id);
            result
        })
    }

    /// For `guardFetch({ session })`: one request tracked like a generation. Returns
    /// `[signal, untrack]`: the session aborts `signal` (its reason says why) when it cancels;
    /// `untrack()` ends the tracking when the request is over. Throws once the session is closed.
    #[wasm_bindgen(js_name = trackRequest, skip_typescript)]
    pub fn track_request(&self) -> Result<js_sys::Array, JsValue> {
        if self.inner.closed.get() {
            return Err(guard_error(ErrorKind::Aborted, "the session is closed"));
        }
        let controller = AbortController::new()?;
        let id = next_id(&self.inner);
        self.inner
            .in_flight
            .borrow_mut()
            .push((id, controller.clone()));
        let weak = Rc::downgrade(&self.inner);
        let untrack = Closure::once_into_js(move || {
            if let Some(inner) = weak.upgrade() {
                inner.in_flight.borrow_mut().retain(|(g, _)| *g != id);
            }
        });
        Ok(js_sys::Array::of2(&controller.signal(), &untrack))
    }

    /// Cancel everything in flight (reason `"cancel"` unless given); the session stays usable.
    pub fn cancel(&self, reason: Option<String>) {
        self.inner.cancel(reason.as_deref().unwrap_or("cancel"));
    }

    /// Cancel everything in flight (reason `"closed"`), then remove every listener. Later
    /// `generate()` calls reject with kind `"aborted"`, reason `"closed"`.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Generations in flight.
    #[wasm_bindgen(getter)]
    pub fn active(&self) -> u32 {
        self.inner.in_flight.borrow().len() as u32
    }
}

impl Drop for Session {
    /// `free()` and `[Symbol.dispose]()` close the session.
    fn drop(&mut self) {
        self.inner.close();
    }
}

fn next_id(inner: &Inner) -> u64 {
    let id = inner.next_id.get();
    inner.next_id.set(id + 1);
    id
}
