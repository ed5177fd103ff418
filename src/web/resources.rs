//! Leak accounting: every timer, body reader, event listener and in-flight generation this
//! module holds is counted while it lives, so tests (and apps) can check that nothing is left
//! behind. `liveResources()` reads the counts.
//!
//! Also the few small primitives the edge waits with: a counted `setTimeout` ([`Timer`]) and a
//! future over it ([`Sleep`]), both cleared on drop, and [`Wakeup`], a one-shot flag a future can
//! wait on. (Small on purpose: the timer crates and channel combinators they replace weighed
//! several kilobytes in the wasm module.)

use std::cell::{Cell, RefCell};
#[cfg(feature = "worker")]
use std::future::Future;
#[cfg(feature = "worker")]
use std::pin::Pin;
use std::rc::Rc;
#[cfg(feature = "worker")]
use std::task::Poll;
use std::task::{Context, Waker};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &JsValue, ms: f64) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

/// The kinds of resource counted.
#[derive(Clone, Copy)]
pub enum Kind {
    /// An armed `setTimeout`.
    Timer,
    /// A body reader holding a response stream.
    Reader,
    /// An event listener added to someone else's target.
    Listener,
    /// A generation in flight.
    InFlight,
}

thread_local! {
    static COUNTS: [Cell<i64>; 4] = const { [Cell::new(0), Cell::new(0), Cell::new(0), Cell::new(0)] };
}

fn add(kind: Kind, delta: i64) {
    COUNTS.with(|c| c[kind as usize].set(c[kind as usize].get() + delta));
}

/// Counts one resource for as long as it lives.
pub struct Counted(Kind);

impl Counted {
    /// Count a resource of `kind` until this is dropped.
    pub fn new(kind: Kind) -> Counted {
        add(kind, 1);
        Counted(kind)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        add(self.0, -1);
    }
}

/// `liveResources()`: `{ timers, readers, listeners, inFlight }` held by this module right now.
#[wasm_bindgen(js_name = liveResources, skip_typescript)]
pub fn live_resources() -> JsValue {
    let object = js_sys::Object::new();
    COUNTS.with(|c| {
        for (name, kind) in [
            ("timers", Kind::Timer),
            ("readers", Kind::Reader),
            ("listeners", Kind::Listener),
            ("inFlight", Kind::InFlight),
        ] {
            let _ = js_sys::Reflect::set(
                &object,
                &name.into(),
                &(c[kind as usize].get() as f64).into(),
            );
        }
    });
    object.into()
}

/// A `setTimeout` that calls `callback` once, counted while this lives, cleared on drop.
pub struct Timer {
    handle: JsValue,
    _callback: Closure<dyn FnMut()>,
    _counted: Counted,
}

impl Timer {
    /// Call `callback` after `ms` milliseconds (rounded up, clamped to what `setTimeout` takes).
    pub fn new(ms: f64, callback: impl FnMut() + 'static) -> Timer {
        let callback = Closure::<dyn FnMut()>::new(callback);
        let handle = set_timeout(callback.as_ref(), ms.ceil().clamp(0.0, i32::MAX as f64));
        Timer {
            handle,
            _callback: callback,
            _counted: Counted::new(Kind::Timer),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        clear_timeout(&self.handle);
    }
}

/// A one-shot flag that wakes the future waiting on it (one waiter at a time).
#[derive(Default)]
pub struct Wakeup {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Wakeup {
    /// Set the flag and wake the waiter, if any.
    pub fn fire(&self) {
        self.fired.set(true);
        let waker = self.waker.borrow_mut().take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Clear the flag (the alarm is armed again).
    pub fn reset(&self) {
        self.fired.set(false);
    }

    /// Whether the flag is set; if not, `cx`'s task is woken when it is.
    pub fn poll_fired(&self, cx: &mut Context<'_>) -> bool {
        if !self.fired.get() {
            *self.waker.borrow_mut() = Some(cx.waker().clone());
        }
        self.fired.get()
    }
}

/// One reusable deadline timer: [`Alarm::ensure`] makes sure it fires no later than a given
/// time, re-arming only when the armed time is later than that (or has fired). Deadlines only
/// move later as progress arrives, so a stream of reads arms it once per quiet spell instead of
/// once per read; a wait that wakes early simply arms it again for the rest.
pub struct Alarm {
    wake: Rc<Wakeup>,
    callback: Closure<dyn FnMut()>,
    armed: RefCell<Option<(JsValue, f64, Counted)>>,
}

impl Default for Alarm {
    fn default() -> Self {
        let wake = Rc::new(Wakeup::default());
        let flag = wake.clone();
        Alarm {
            wake,
            callback: Closure::<dyn FnMut()>::new(move || flag.fire()),
            armed: RefCell::new(None),
        }
    }
}

impl Alarm {
    /// Fire no later than `due` (a clock reading), `now` being the current reading.
    pub fn ensure(&self, due: f64, now: f64) {
        let mut armed = self.armed.borrow_mut();
        if let Some((_, at, _)) = &*armed {
            if *at <= due && !self.wake.fired.get() {
                return;
            }
        }
        if let Some((handle, _, _)) = armed.take() {
            clear_timeout(&handle);
        }
        self.wake.reset();
        let ms = (due - now).ceil().clamp(0.0, i32::MAX as f64);
        let handle = set_timeout(self.callback.as_ref(), ms);
        *armed = Some((handle, due, Counted::new(Kind::Timer)));
    }

    /// Whether it has fired; if not, `cx`'s task is woken when it does.
    pub fn poll_fired(&self, cx: &mut Context<'_>) -> bool {
        self.wake.poll_fired(cx)
    }

    /// Clear the timer.
    pub fn disarm(&self) {
        if let Some((handle, _, _)) = self.armed.borrow_mut().take() {
            clear_timeout(&handle);
        }
        self.wake.reset();
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// A timer future that is counted while armed (cleared on drop). Used by the edge worker.
#[cfg(feature = "worker")]
pub struct Sleep {
    fired: Rc<Wakeup>,
    _timer: Timer,
}

#[cfg(feature = "worker")]
impl Sleep {
    /// Sleep for `ms` milliseconds (rounded up, clamped to what `setTimeout` takes).
    pub fn new(ms: f64) -> Sleep {
        let fired = Rc::new(Wakeup::default());
        let flag = fired.clone();
        Sleep {
            fired,
            _timer: Timer::new(ms, move || flag.fire()),
        }
    }
}

#[cfg(feature = "worker")]
impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.fired.poll_fired(cx) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// An event listener on a target, removed (and uncounted) on drop.
pub struct Listener {
    target: web_sys::EventTarget,
    event: &'static str,
    callback: Closure<dyn FnMut(JsValue)>,
    _counted: Counted,
}

impl Listener {
    /// Listen for `event` on `target`.
    pub fn new(
        target: &web_sys::EventTarget,
        event: &'static str,
        callback: impl FnMut(JsValue) + 'static,
    ) -> Listener {
        let callback = Closure::<dyn FnMut(JsValue)>::new(callback);
        let _ = target.add_event_listener_with_callback(event, callback.as_ref().unchecked_ref());
        Listener {
            target: target.clone(),
            event,
            callback,
            _counted: Counted::new(Kind::Listener),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(
            self.event,
            self.callback.as_ref().unchecked_ref(),
        );
    }
}
