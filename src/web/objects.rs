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

use crate::core::contract::ErrorKind;
use crate::core::events::{GuardEvent, LogLevel};
use crate::core::machine::Callback;
use crate::core::machine::{GenerationError, GenerationResult};
use crate::web::error::guard_error;
use crate::web::options::json_parse;
use crate::web::to_js::{to_js, write_fields};
use js_sys::{Array, JsString, Reflect};
use wasm_bindgen::prelude::*;

/// Sets a plain data property (on objects made here: it cannot fail).
pub(crate) fn set(object: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
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
        let why = Reflect::get(&object, &JsValue::from_str("cause")).unwrap_or_default();
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
