//! `GuardError`: the one JavaScript error type the package throws or rejects with.
//!
//! JavaScript callers branch on its `kind` field, never on message text.

use crate::core::contract::ErrorKind;
use wasm_bindgen::JsValue;

/// A JS `Error` named `"GuardError"` with a `kind` field (`"protocol"`, `"config"`, ...).
pub fn guard_error(kind: ErrorKind, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("GuardError");
    // Setting a plain data property on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&error, &"kind".into(), &kind.as_str().into());
    error.into()
}
