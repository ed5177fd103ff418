//! The JavaScript objects a generation hands out: its events (for `onEvent`), its result
//! (`GenerateResult`) and its error (`GuardError`), built in one place from what the machine
//! decided (see `llm-stream-guard.d.ts` for every field).
//!
//! It must never decide: every field comes from the machine's event or outcome, and the only
//! values that are not the machine's are the ones it points at (the answer text the driver
//! joined, the platform's error or the thrown value as `cause`).

use crate::core::call::AttemptRecord;
use crate::core::chunk::Usage;
use crate::core::events::{EventFields, GuardEvent, LogLevel};
use crate::core::machine::Callback;
use crate::core::machine::{GenerationError, GenerationResult};
use js_sys::{Array, JsString, Object, Reflect};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `JSON.parse(text)`.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;
}

/// Sets a plain data property (on objects made here: it cannot fail).
pub(crate) fn set(object: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn set_text(object: &JsValue, key: &str, value: &str) {
    set(object, key, &JsValue::from_str(value));
}

/// An event's fields, set on a fresh object.
struct JsFields(JsValue);

impl EventFields for JsFields {
    fn text(&mut self, name: &'static str, value: &str) {
        set_text(&self.0, name, value);
    }

    fn number(&mut self, name: &'static str, value: f64) {
        set(&self.0, name, &JsValue::from_f64(value));
    }

    fn flag(&mut self, name: &'static str, value: bool) {
        set(&self.0, name, &JsValue::from_bool(value));
    }

    fn relayed(&mut self, name: &'static str, data: &str) {
        let text = JsValue::from_str(data);
        set(&self.0, name, &json_parse(&text).unwrap_or(text));
    }
}

/// The object `onEvent` receives.
pub(crate) fn event_object(event: &GuardEvent) -> JsValue {
    let mut fields = JsFields(Object::new().into());
    event.write_fields(&mut fields);
    fields.0
}

/// A `GuardError` with `kind: "config"`, for options that were refused.
pub(crate) fn config_error(message: &str) -> JsValue {
    let error = guard_error(message, "config");
    set_text(&error, "partialText", "");
    set(&error, "attempts", &Array::new());
    error
}

fn guard_error(message: &str, kind: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("GuardError");
    let error = JsValue::from(error);
    set_text(&error, "kind", kind);
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
    let object = guard_error(&error.message, error.kind);
    if let Some(layer) = error.layer {
        set_text(&object, "layer", layer);
    }
    if let Some(phase) = error.phase {
        set_text(&object, "phase", phase);
    }
    if let Some(status) = error.status {
        set(&object, "status", &JsValue::from(status));
    }
    set(&object, "partialText", partial_text);
    set(&object, "attempts", &attempts_array(&error.attempts));
    set_text(&object, "provider", &error.provider);
    if let Some(reason) = &error.reason {
        set_text(&object, "reason", reason);
    }
    if let Some(cause) = cause {
        set(&object, "cause", &cause);
    }
    object
}

/// The call's result (optional fields are left out when absent): `text` is what the machine's
/// `text` points at, `cause` what its partial cause points at.
#[inline(never)]
pub(crate) fn result_object(
    result: &GenerationResult,
    text: &JsString,
    cause: Option<JsValue>,
) -> JsValue {
    let object = JsValue::from(Object::new());
    set(&object, "text", text);
    set(&object, "partial", &JsValue::from_bool(result.partial));
    if let Some(reason) = &result.finish_reason {
        set_text(&object, "finishReason", reason);
    }
    set_text(&object, "provider", &result.provider);
    set_text(&object, "model", &result.model);
    if let Some(usage) = &result.usage {
        set(&object, "usage", &usage_object(usage));
    }
    if let Some(partial) = &result.cause {
        let why = JsValue::from(Object::new());
        set_text(&why, "kind", partial.kind);
        if let Some(phase) = partial.phase {
            set_text(&why, "phase", phase);
        }
        set_text(&why, "message", &partial.message);
        if let Some(cause) = cause {
            set(&why, "cause", &cause);
        }
        set(&object, "cause", &why);
    }
    if let Some(id) = &result.generation_id {
        set_text(&object, "generationId", id);
    }
    if !result.tool_calls.is_empty() {
        let calls: Array = result
            .tool_calls
            .iter()
            .map(|call| {
                let entry = JsValue::from(Object::new());
                set_text(&entry, "id", &call.id);
                set_text(&entry, "name", &call.name);
                set_text(&entry, "arguments", &call.arguments);
                entry
            })
            .collect();
        set(&object, "toolCalls", &calls);
    }
    let stats = JsValue::from(Object::new());
    set(
        &stats,
        "lines",
        &JsValue::from_f64(result.stats.lines as f64),
    );
    set(
        &stats,
        "chunks",
        &JsValue::from_f64(result.stats.chunks as f64),
    );
    if let Some(ms) = result.stats.first_token_ms {
        set(&stats, "firstTokenMs", &JsValue::from_f64(ms));
    }
    set(
        &stats,
        "elapsedMs",
        &JsValue::from_f64(result.stats.elapsed_ms),
    );
    set(&object, "stats", &stats);
    set(&object, "attempts", &attempts_array(&result.attempts));
    object
}

/// `attempts`: `{ provider, outcome, status?, elapsedMs }` per attempt.
fn attempts_array(attempts: &[AttemptRecord]) -> Array {
    attempts
        .iter()
        .map(|attempt| {
            let object = JsValue::from(Object::new());
            set_text(&object, "provider", &attempt.provider);
            set_text(&object, "outcome", &attempt.outcome);
            if let Some(status) = attempt.status {
                set(&object, "status", &JsValue::from(status));
            }
            set(&object, "elapsedMs", &JsValue::from_f64(attempt.elapsed_ms));
            object
        })
        .collect()
}

/// `usage`, with the provider's own field names.
fn usage_object(usage: &Usage) -> JsValue {
    let object = JsValue::from(Object::new());
    for (name, count) in [
        ("prompt_tokens", usage.prompt_tokens),
        ("completion_tokens", usage.completion_tokens),
        ("total_tokens", usage.total_tokens),
    ] {
        set(&object, name, &JsValue::from_f64(count as f64));
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
