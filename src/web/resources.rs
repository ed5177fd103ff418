//! Leak accounting: every timer, body reader, event listener and in-flight generation this
//! module holds is counted while it lives, so tests (and apps) can check that nothing is left
//! behind. `liveResources()` reads the counts.

use std::cell::Cell;
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

/// A one-shot timer future that is counted while armed (cleared on drop, like gloo's).
pub struct Sleep {
    inner: gloo_timers::future::TimeoutFuture,
    _counted: Counted,
}

impl Sleep {
    /// Sleep for `ms` milliseconds (rounded up, clamped to what `setTimeout` takes).
    pub fn new(ms: f64) -> Sleep {
        Sleep {
            inner: gloo_timers::future::TimeoutFuture::new(
                ms.ceil().clamp(0.0, i32::MAX as f64) as u32
            ),
            _counted: Counted::new(Kind::Timer),
        }
    }
}

impl std::future::Future for Sleep {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        std::pin::Pin::new(&mut self.inner).poll(cx)
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
