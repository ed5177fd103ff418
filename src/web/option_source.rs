//! A JavaScript value as the core's option checks read it ([`OptionSource`]): the one reader of
//! a caller's options object for every driver (and for bench row 2c's core-only module).
//!
//! It must never decide what an option means: the core's readers do.

use crate::core::options::OptionSource;
use js_sys::{Array, Object};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::web::objects::get_named;

#[wasm_bindgen]
extern "C" {
    /// `String(number)`: JavaScript's own number formatting, for messages.
    #[wasm_bindgen(js_name = String)]
    fn number_text(value: f64) -> String;
}

/// A JavaScript value as the core's validator reads it (as JSON has it: `undefined` and `null`
/// are "not set"; functions are not objects).
pub(crate) struct JsSource;

impl OptionSource for JsSource {
    type Value = JsValue;

    fn field(&self, object: &JsValue, name: &str) -> Option<JsValue> {
        let value = get_named(object, name);
        (!value.is_undefined() && !value.is_null()).then_some(value)
    }

    fn keys(&self, value: &JsValue) -> Option<Vec<String>> {
        if !value.is_object() || value.is_function() || Array::is_array(value) {
            return None;
        }
        let keys = Object::keys(value.unchecked_ref::<Object>());
        Some(keys.iter().filter_map(|key| key.as_string()).collect())
    }

    fn items(&self, value: &JsValue) -> Option<Vec<JsValue>> {
        value.dyn_ref::<Array>().map(|list| list.iter().collect())
    }

    fn string(&self, value: &JsValue) -> Option<String> {
        value.as_string()
    }

    fn number(&self, value: &JsValue) -> Option<f64> {
        value.as_f64()
    }

    fn boolean(&self, value: &JsValue) -> Option<bool> {
        value.as_bool()
    }

    fn number_text(&self, number: f64) -> Option<String> {
        Some(number_text(number))
    }
}
