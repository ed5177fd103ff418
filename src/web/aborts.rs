//! A call's abort signals (the caller's `signal`, a session's), heard as one: the first abort
//! of any of them, as the reason the machine cancels with, and a wake-up for the driver's wait.

use std::cell::RefCell;
use std::rc::Rc;

use web_sys::AbortSignal;

use crate::core::machine::CancelReason;
use crate::web::resources::{Listener, Wakeup};

/// The first abort of any of the call's signals, and a wake-up for the wait.
#[derive(Default)]
pub(crate) struct Aborted {
    reason: RefCell<Option<String>>,
    pub wake: Wakeup,
}

impl Aborted {
    /// Watches `signal` (already aborted: noted at once); the listener, while it must live.
    pub fn watch(self: &Rc<Self>, signal: AbortSignal, callers: bool) -> Option<Listener> {
        if signal.aborted() {
            self.note(abort_reason(&signal, callers));
            return None;
        }
        let (me, target) = (self.clone(), signal.clone());
        Some(Listener::new(&signal, "abort", move |_| {
            me.note(abort_reason(&target, callers))
        }))
    }

    fn note(&self, reason: String) {
        self.reason.borrow_mut().get_or_insert(reason);
        self.wake.fire();
    }

    pub fn reason(&self) -> Option<CancelReason> {
        self.reason.borrow().as_deref().map(|reason| match reason {
            "signal" => CancelReason::Signal,
            other => CancelReason::Named(other.to_owned()),
        })
    }
}

/// Why `signal` cancels the call: `"signal"` for the caller's own, else its abort reason.
#[inline(never)]
fn abort_reason(signal: &AbortSignal, callers: bool) -> String {
    match callers {
        true => "signal".to_owned(),
        false => signal
            .reason()
            .as_string()
            .unwrap_or_else(|| "cancel".into()),
    }
}
