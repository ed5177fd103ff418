//! Leak accounting: every timer, body reader, event listener and in-flight generation this
//! module holds is counted while it lives, so tests (and apps) can check that nothing is left
//! behind. `liveResources()` reads the counts.
//!
//! Also the few small primitives the edge waits with: a counted timeout ([`Timer`], gloo-timers'
//! `Timeout`, which binds the global `setTimeout` and clears it on drop), the generation's one
//! deadline timer ([`Alarm`]), a future over a timer ([`Sleep`]), and [`Wakeup`], a one-shot
//! flag a future can wait on.

use crate::core::contract::LiveResources;
use crate::web::to_js::to_js;
use gloo_timers::callback::Timeout;
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
    let count = |kind: Kind| COUNTS.with(|c| c[kind as usize].get() as f64);
    to_js(&LiveResources {
        timers: count(Kind::Timer),
        readers: count(Kind::Reader),
        listeners: count(Kind::Listener),
        in_flight: count(Kind::InFlight),
    })
}

/// A timeout that calls `callback` once, counted while this lives, cleared on drop.
#[must_use = "the timeout is cleared when this is dropped"]
pub struct Timer {
    _timeout: Timeout,
    _counted: Counted,
}

impl Timer {
    /// Call `callback` after `ms` milliseconds (rounded up, clamped to what `setTimeout` takes).
    pub fn new(ms: f64, callback: impl FnOnce() + 'static) -> Timer {
        Timer {
            _timeout: Timeout::new(whole_ms(ms), callback),
            _counted: Counted::new(Kind::Timer),
        }
    }
}

/// `ms` rounded up and clamped to what `setTimeout` takes (it fires at once past 2^31 - 1).
fn whole_ms(ms: f64) -> u32 {
    ms.ceil().clamp(0.0, i32::MAX as f64) as u32
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

/// The generation's one deadline timer: [`Alarm::ensure`] makes sure it fires no later than the
/// machine's next deadline, arming a new timeout only when that deadline changed to an earlier
/// time than the armed one (or the armed one has fired). Deadlines only move later as progress
/// arrives, so a stream of reads arms one timeout per quiet spell, never one per read; a timeout
/// that fires before the (since moved) deadline only makes the driver read the clock: the
/// machine's `handle_timeout` decides whether anything is due, and the alarm is armed again for
/// the rest.
#[derive(Default)]
pub struct Alarm {
    wake: Rc<Wakeup>,
    /// The armed timeout and the deadline (a clock reading) it was armed for.
    armed: RefCell<Option<(Timer, f64)>>,
}

impl Alarm {
    /// Fire no later than `due` (a clock reading), `now` being the current reading.
    pub fn ensure(&self, due: f64, now: f64) {
        let mut armed = self.armed.borrow_mut();
        if let Some((_, at)) = &*armed {
            if *at <= due && !self.wake.fired.get() {
                return;
            }
        }
        // The old timeout (if any) is cleared before the new one is armed.
        *armed = None;
        self.wake.reset();
        let flag = self.wake.clone();
        *armed = Some((Timer::new(due - now, move || flag.fire()), due));
    }

    /// Whether it has fired; if not, `cx`'s task is woken when it does.
    pub fn poll_fired(&self, cx: &mut Context<'_>) -> bool {
        self.wake.poll_fired(cx)
    }

    /// Clear the timer.
    pub fn disarm(&self) {
        self.armed.borrow_mut().take();
        self.wake.reset();
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
