//! `generate()`'s options: read once from the caller's object, checked (unknown names, types,
//! ranges, URLs, numbers that JSON would silently turn into `null`) and turned into the
//! machine's [`GenerationConfig`] plus what stays on the platform side (callbacks, signal,
//! an injected `fetch`, logging).
//!
//! It must never decide anything about the call itself: that is the machine's.

use crate::core::events::LogLevel;
use crate::core::machine::GenerationConfig;
use crate::core::options::{check_options_object, read_options as core_read_options, OptionSource};
use js_sys::{Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

use crate::web::objects::{get, set};
use crate::web::option_source::JsSource;

#[wasm_bindgen]
extern "C" {
    /// `JSON.stringify(value)`: throws on cycles and BigInt.
    #[wasm_bindgen(js_namespace = JSON, js_name = stringify, catch)]
    fn json_stringify(value: &JsValue) -> Result<JsValue, JsValue>;

    /// `JSON.parse(text)`.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub(crate) fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;
}

/// What one call of `generate()` was asked for.
pub(crate) struct Options {
    /// Everything the machine needs.
    pub config: GenerationConfig,
    /// The caller's `signal`.
    pub signal: Option<AbortSignal>,
    /// An injected `fetch` (else the global one).
    pub fetch: Option<Function>,
    /// `onText`.
    pub on_text: Option<Function>,
    /// `onEvent`.
    pub on_event: Option<Function>,
    /// `log`.
    pub log: LogLevel,
}

/// Whether this runtime has a base URL for relative URLs (a page's or a worker's `location`).
fn has_base_url() -> bool {
    let location = get(&js_sys::global(), "location");
    location.is_object() && get(&location, "href").is_string()
}

fn optional_function(options: &JsValue, name: &'static str) -> Result<Option<Function>, String> {
    let value = get(options, name);
    if value.is_undefined() || value.is_null() {
        Ok(None)
    } else {
        value
            .dyn_into::<Function>()
            .map(Some)
            .map_err(|_| format!("{name} must be a function"))
    }
}

pub(crate) fn read_options(options: &JsValue) -> Result<Options, String> {
    if !options.is_object() {
        return Err("generate() takes an options object".into());
    }
    check_options_object(&JsSource, options)?;
    // Plain data is read from a JSON copy, as JSON sees it: own enumerable fields,
    // `toJSON()` applied, functions and `undefined` left out (functions and the signal are
    // read from the options themselves). The copy is this call's own, so the request body
    // is built in it.
    let options_data = json_stringify(options)
        .ok()
        .filter(JsValue::is_string)
        .and_then(|text| json_parse(&text).ok())
        .ok_or("options must be JSON-serialisable data (plus onText, onEvent, fetch, signal)")?;
    let data = core_read_options(&JsSource, &options_data, has_base_url())?;
    let messages = get(&options_data, "messages");
    // `{ ...params, messages, stream, model }`: params cannot replace the three fields the options
    // themselves control (set over them here; the machine adds each attempt's `model` last).
    let body = match JsSource.field(&options_data, "params") {
        None => Object::new(),
        Some(params) if JsSource.keys(&params).is_some() => params.unchecked_into(),
        Some(_) => return Err("invalid options: params must be an object".into()),
    };
    set(&body, "model", &JsValue::UNDEFINED); // left out by JSON.stringify
    set(&body, "messages", &messages);
    set(&body, "stream", &JsValue::from_bool(data.stream));
    let body_without_model = json_stringify(&body)
        .ok()
        .and_then(|text| text.as_string())
        .ok_or("params and messages must be JSON-serialisable data")?;

    let signal_value = get(options, "signal");
    let signal = if signal_value.is_undefined() || signal_value.is_null() {
        None
    } else {
        let is_signal = Reflect::has(&signal_value, &"aborted".into()).unwrap_or(false)
            && Reflect::has(&signal_value, &"addEventListener".into()).unwrap_or(false);
        if !is_signal {
            return Err("signal must be an AbortSignal".into());
        }
        Some(signal_value.unchecked_into::<AbortSignal>())
    };
    let log = data.log;
    Ok(Options {
        // Back-off stays random per call: the machine draws from this seed.
        config: data.into_config(
            body_without_model,
            (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64,
        ),
        signal,
        fetch: optional_function(options, "fetch")?,
        on_text: optional_function(options, "onText")?,
        on_event: optional_function(options, "onEvent")?,
        log,
    })
}
