//! The JavaScript objects a generation hands out: its events (for `onEvent`), its result
//! (`GenerateResult`) and its error (`GuardError`), written in one place from what the machine
//! decided (see `llm-stream-guard.d.ts` for every field).
//!
//! One writer: each value is the serialized form of the core's type ([`to_js`]; the
//! field names and which fields are left out are the types' serde attributes, checked against the
//! `.d.ts` by `core::contract`'s test). It must never decide: the only values set here that are
//! not serialized are the ones the machine points at and the driver holds (the answer text the
//! driver joined, the platform's error or the thrown value as `cause`), the error's `name`, and
//! a relayed upstream event, delivered as the value its JSON text stands for.
//!
//! Also the web drivers' one way to read and write a JavaScript object's properties ([`get`],
//! [`set`], and `get_named`/`set_named` for names made at run time).

use crate::core::contract::ErrorKind;
use crate::core::events::{GuardEvent, LogLevel};
use crate::core::machine::Callback;
use crate::core::machine::{GenerationError, GenerationResult};
use crate::web::error::guard_error;
use crate::web::options::json_parse;
use crate::web::to_js::{to_js, write_fields};
use js_sys::{Array, JsString, Reflect};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

thread_local! {
    /// The JavaScript strings of the property names the library reads and writes, each made
    /// once (64 slots, by the name's address): a string made afresh for every access costs a
    /// UTF-8 decode and V8 internalising it again, several times per request.
    static NAMES: RefCell<Vec<(u32, u32, JsValue)>> = const { RefCell::new(Vec::new()) };
}

/// `f` given `key` as a JavaScript string. Only a `'static` name is kept: its address and
/// length stand for its bytes, which never move or change. A call made while `f` runs (a
/// getter that calls back into the library) makes its own string.
fn with_name<R>(key: &'static str, f: impl FnOnce(&JsValue) -> R) -> R {
    let (at, len) = (key.as_ptr() as u32, key.len() as u32);
    let slot = (at.wrapping_mul(0x9E37_79B9) >> 26) as usize;
    NAMES.with(|names| match names.try_borrow_mut() {
        Ok(mut names) => {
            if names.is_empty() {
                names.resize(64, (0, 0, JsValue::UNDEFINED));
            }
            let entry = &mut names[slot];
            if entry.0 != at || entry.1 != len {
                *entry = (at, len, JsValue::from_str(key));
            }
            f(&entry.2)
        }
        Err(_) => f(&JsValue::from_str(key)),
    })
}

/// Sets a plain data property (on objects made here: it cannot fail).
pub(crate) fn set(object: &JsValue, key: &'static str, value: &JsValue) {
    with_name(key, |key| {
        let _ = Reflect::set(object, key, value);
    });
}

/// [`set`] for a name made at run time (a header's).
pub(crate) fn set_named(object: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

/// A property of a JavaScript value (`undefined` when it has none or reading it threw).
pub(crate) fn get(object: &JsValue, key: &'static str) -> JsValue {
    with_name(key, |key| {
        Reflect::get(object, key).unwrap_or(JsValue::UNDEFINED)
    })
}

/// [`get`] for a name made at run time (an option's, a header's).
pub(crate) fn get_named(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// The object `onEvent` receives.
pub(crate) fn event_object(event: &GuardEvent) -> JsValue {
    let object = to_js(event);
    if let GuardEvent::UpstreamEvent { event: data, .. } = event {
        let text = JsValue::from_str(data);
        set(&object, "event", &json_parse(&text).unwrap_or(text));
    }
    object
}

/// A `GuardError` with `kind: "config"`, for options that were refused.
pub(crate) fn config_error(message: &str) -> JsValue {
    let error = guard_error(ErrorKind::Config, message);
    set(&error, "partialText", &JsValue::from_str(""));
    set(&error, "attempts", &Array::new());
    error
}

/// The call's rejection: `text` is what the machine's `partial_text` points at, `cause` what
/// its `cause` points at.
#[inline(never)]
pub(crate) fn error_object(
    error: &GenerationError,
    partial_text: &JsString,
    cause: Option<JsValue>,
) -> JsValue {
    let object = guard_error(error.failure.error_kind(), &error.message);
    write_fields(object.unchecked_ref(), error);
    set(&object, "partialText", partial_text);
    if let Some(cause) = cause {
        set(&object, "cause", &cause);
    }
    object
}

/// The call's result: `text` is what the machine's `text` points at, `cause` what its partial
/// cause points at.
#[inline(never)]
pub(crate) fn result_object(
    result: &GenerationResult,
    text: &JsString,
    cause: Option<JsValue>,
) -> JsValue {
    let object = to_js(result);
    set(&object, "text", text);
    if let Some(cause) = cause {
        let why = get(&object, "cause");
        if why.is_object() {
            set(&why, "cause", &cause);
        }
    }
    object
}

/// Prints `event` when logging is on at its level.
pub(crate) fn log_event(log: LogLevel, event: &GuardEvent) {
    if log == LogLevel::Off {
        return;
    }
    let (level, line) = event.log_line();
    if level <= log {
        let line = JsValue::from_str(&format!("[llm-stream-guard] {line}"));
        match level {
            LogLevel::Error => web_sys::console::error_1(&line),
            _ => web_sys::console::log_1(&line),
        }
    }
}

/// Prints what a callback threw (which cancels the call), when logging is on.
pub(crate) fn log_thrown(log: LogLevel, which: Callback, thrown: &JsValue) {
    if log != LogLevel::Off {
        let what = format!(
            "[llm-stream-guard] {} threw; the call is cancelled:",
            which.as_str()
        );
        web_sys::console::error_2(&what.into(), thrown);
    }
}
