//! `generate()`'s options: read once from the caller's object, checked (unknown names, types,
//! ranges, URLs, numbers that JSON would silently turn into `null`) and turned into the
//! machine's [`GenerationConfig`] plus what stays on the platform side (callbacks, signal,
//! an injected `fetch`, logging).
//!
//! It must never decide anything about the call itself: that is the machine's.

use crate::core::deadline::{InvalidTimeout, TimeoutOverrides, Timeouts};
use crate::core::events::LogLevel;
use crate::core::machine::{GenerationConfig, ProviderConfig};
use crate::core::options::{
    check_url, unknown_key, GENERATE_OPTIONS, PROVIDER_FIELDS, RETRY_FIELDS, TIMEOUT_FIELDS,
};
use crate::core::policy::RetryPolicy;
use crate::core::sse::DEFAULT_MAX_EVENT_BYTES;
use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

use crate::web::objects::set;

#[wasm_bindgen]
extern "C" {
    /// `JSON.stringify(value)`: throws on cycles and BigInt.
    #[wasm_bindgen(js_namespace = JSON, js_name = stringify, catch)]
    fn json_stringify(value: &JsValue) -> Result<JsValue, JsValue>;

    /// `JSON.parse(text)`.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    pub(crate) fn json_parse(text: &JsValue) -> Result<JsValue, JsValue>;

    /// `String(number)`: JavaScript's own number formatting, for messages.
    #[wasm_bindgen(js_name = String)]
    fn number_text(value: f64) -> String;
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

/// A field of the options' plain-data copy (see [`read_options`]): `None` when absent or
/// `null`, as JSON has it.
fn data(object: &JsValue, name: &str) -> Option<JsValue> {
    let value = get(object, name);
    (!value.is_undefined() && !value.is_null()).then_some(value)
}

fn invalid(path: &str, name: &str, what: &str) -> String {
    format!("invalid options: {path}{name} must be {what}")
}

fn string_data(object: &JsValue, path: &str, name: &str) -> Result<Option<String>, String> {
    data(object, name)
        .map(|value| {
            value
                .as_string()
                .ok_or_else(|| invalid(path, name, "a string"))
        })
        .transpose()
}

/// A string that must be there and not be empty.
fn required_string(object: &JsValue, path: &str, name: &str) -> Result<String, String> {
    string_data(object, path, name)?
        .filter(|text| !text.is_empty())
        .ok_or_else(|| format!("{path}{name} is required"))
}

fn number_data(object: &JsValue, path: &str, name: &str) -> Result<Option<f64>, String> {
    data(object, name)
        .map(|value| {
            value
                .as_f64()
                .ok_or_else(|| invalid(path, name, "a number"))
        })
        .transpose()
}

/// A JSON object (not an array).
fn object_data(object: &JsValue, path: &str, name: &str) -> Result<Option<JsValue>, String> {
    data(object, name)
        .map(|value| {
            if value.is_object() && !Array::is_array(&value) {
                Ok(value)
            } else {
                Err(invalid(path, name, "an object"))
            }
        })
        .transpose()
}

/// `{ headersMs, firstTokenMs, idleMs, streamMs, serviceMs }`, each optional.
fn timeout_data(object: &JsValue, path: &str) -> Result<TimeoutOverrides, String> {
    let Some(timeouts) = object_data(object, path, "timeouts")? else {
        return Ok(TimeoutOverrides::default());
    };
    let path = format!("{path}timeouts.");
    let field = |name| number_data(&timeouts, &path, name);
    Ok(TimeoutOverrides {
        headers_ms: field("headersMs")?,
        first_token_ms: field("firstTokenMs")?,
        idle_ms: field("idleMs")?,
        stream_ms: field("streamMs")?,
        service_ms: field("serviceMs")?,
    })
}

/// The message of a refused deadline (the core's text, with JavaScript's number formatting).
fn invalid_timeout(error: &InvalidTimeout) -> String {
    format!(
        "timeouts.{} must be a positive number of milliseconds (got {})",
        error.field,
        number_text(error.value)
    )
}

fn whole_count(value: f64, what: &str, max: u32) -> Result<u32, String> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= f64::from(max) {
        Ok(value as u32)
    } else {
        Err(format!(
            "{what} must be a whole number from 0 to {max} (got {})",
            number_text(value)
        ))
    }
}

fn non_negative(value: f64, what: &str) -> Result<f64, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "{what} must be a non-negative number of milliseconds (got {})",
            number_text(value)
        ))
    }
}

fn get(options: &JsValue, name: &str) -> JsValue {
    Reflect::get(options, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// The path of the first numeric option that is NaN or infinite, if any.
fn first_non_finite_number(options: &JsValue) -> Option<String> {
    const TIMEOUT_FIELDS: [&str; 5] = [
        "headersMs",
        "firstTokenMs",
        "idleMs",
        "streamMs",
        "serviceMs",
    ];
    let bad = |value: &JsValue| value.as_f64().is_some_and(|n| !n.is_finite());
    let in_object = |object: &JsValue, fields: &[&str], prefix: &str| -> Option<String> {
        fields
            .iter()
            .find(|f| bad(&get(object, f)))
            .map(|f| format!("{prefix}{f}"))
    };
    if bad(&get(options, "maxEventBytes")) {
        return Some("maxEventBytes".into());
    }
    if let Some(path) = in_object(&get(options, "timeouts"), &TIMEOUT_FIELDS, "timeouts.") {
        return Some(path);
    }
    if let Some(path) = in_object(
        &get(options, "retry"),
        &["maxRetries", "baseDelayMs", "maxDelayMs"],
        "retry.",
    ) {
        return Some(path);
    }
    let providers = get(options, "providers");
    if let Some(list) = providers.dyn_ref::<js_sys::Array>() {
        for (i, provider) in list.iter().enumerate() {
            if bad(&get(&provider, "maxRetries")) {
                return Some(format!("providers[{i}].maxRetries"));
            }
            if let Some(path) = in_object(
                &get(&provider, "timeouts"),
                &TIMEOUT_FIELDS,
                &format!("providers[{i}].timeouts."),
            ) {
                return Some(path);
            }
        }
    }
    None
}

/// Refuses a name in `object` that is not in `known` (`place` names the object in the message).
fn check_keys(object: &JsValue, known: &[&str], place: &str) -> Result<(), String> {
    if !object.is_object() || object.is_function() {
        return Ok(()); // not an object: its type is refused where it is read
    }
    let keys: Vec<String> = Object::keys(object.unchecked_ref::<Object>())
        .iter()
        .filter_map(|key| key.as_string())
        .collect();
    match unknown_key(keys.iter().map(String::as_str), known, place) {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

/// Every option name, at every level that has fixed names (`params` and `headers` are the
/// provider's own and go as given).
fn check_option_names(options: &JsValue) -> Result<(), String> {
    check_keys(options, GENERATE_OPTIONS, "")?;
    check_keys(&get(options, "timeouts"), TIMEOUT_FIELDS, "timeouts")?;
    check_keys(&get(options, "retry"), RETRY_FIELDS, "retry")?;
    if let Some(list) = get(options, "providers").dyn_ref::<Array>() {
        for (i, provider) in list.iter().enumerate() {
            if Array::is_array(&provider) {
                continue;
            }
            check_keys(&provider, PROVIDER_FIELDS, &format!("providers[{i}]"))?;
            check_keys(
                &get(&provider, "timeouts"),
                TIMEOUT_FIELDS,
                &format!("providers[{i}].timeouts"),
            )?;
        }
    }
    Ok(())
}

/// Whether this runtime has a base URL for relative URLs (a page's or a worker's `location`).
fn has_base_url() -> bool {
    let location = get(&js_sys::global(), "location");
    location.is_object() && get(&location, "href").is_string()
}

fn optional_function(options: &JsValue, name: &str) -> Result<Option<Function>, String> {
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
    check_option_names(options)?;
    // JSON turns NaN and Infinity into null ("not set"), so numbers are checked first.
    if let Some(path) = first_non_finite_number(options) {
        return Err(format!("{path} must be a finite number"));
    }
    // Plain data is read from a JSON copy, as JSON sees it: own enumerable fields,
    // `toJSON()` applied, functions and `undefined` left out (functions and the signal are
    // read from the options themselves). The copy is this call's own, so the request body
    // is built in it.
    let options_data = json_stringify(options)
        .ok()
        .filter(JsValue::is_string)
        .and_then(|text| json_parse(&text).ok())
        .ok_or("options must be JSON-serialisable data (plus onText, onEvent, fetch, signal)")?;
    let options_data = &options_data;

    let log = match string_data(options_data, "", "log")? {
        None => LogLevel::Off,
        Some(text) => LogLevel::parse(&text).ok_or_else(|| {
            format!("log must be \"off\", \"error\", \"info\" or \"debug\" (got \"{text}\")")
        })?,
    };
    let call_timeouts = Timeouts::default()
        .with(&timeout_data(options_data, "")?)
        .map_err(|e| invalid_timeout(&e))?;
    let defaults = RetryPolicy::default();
    let policy = match object_data(options_data, "", "retry")? {
        None => defaults,
        Some(retry) => RetryPolicy {
            max_retries: number_data(&retry, "retry.", "maxRetries")?
                .map(|v| whole_count(v, "retry.maxRetries", 10))
                .transpose()?
                .unwrap_or(defaults.max_retries),
            base_delay_ms: number_data(&retry, "retry.", "baseDelayMs")?
                .map(|v| non_negative(v, "retry.baseDelayMs"))
                .transpose()?
                .unwrap_or(defaults.base_delay_ms),
            max_delay_ms: number_data(&retry, "retry.", "maxDelayMs")?
                .map(|v| non_negative(v, "retry.maxDelayMs"))
                .transpose()?
                .unwrap_or(defaults.max_delay_ms),
        },
    };
    let max_event_bytes = match number_data(options_data, "", "maxEventBytes")? {
        None => DEFAULT_MAX_EVENT_BYTES,
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => {
            n as usize
        }
        Some(n) => {
            return Err(format!(
                "maxEventBytes must be a positive whole number (got {})",
                number_text(n)
            ))
        }
    };

    let raw_providers = match data(options_data, "providers") {
        None => Array::new(),
        Some(list) => list
            .dyn_into::<Array>()
            .map_err(|_| invalid("", "providers", "an array"))?,
    };
    if raw_providers.length() == 0 {
        return Err("providers must be a non-empty array".into());
    }
    let mut providers = Vec::with_capacity(raw_providers.length() as usize);
    for (i, p) in raw_providers.iter().enumerate() {
        if !p.is_object() || Array::is_array(&p) {
            return Err(invalid("", &format!("providers[{i}]"), "an object"));
        }
        let path = format!("providers[{i}].");
        let name = required_string(&p, &path, "name")?;
        let url = required_string(&p, &path, "url")?;
        check_url(&url, has_base_url()).map_err(|why| format!("providers[{i}].url {why}"))?;
        let model = required_string(&p, &path, "model")?;
        let api_key = string_data(&p, &path, "apiKey")?;
        let timeouts = call_timeouts
            .with(&timeout_data(&p, &path)?)
            .map_err(|e| format!("providers[{i}].{}", invalid_timeout(&e)))?;
        let max_retries = match number_data(&p, &path, "maxRetries")? {
            Some(v) => whole_count(v, &format!("providers[{i}].maxRetries"), 10)?,
            None => policy.max_retries,
        };
        let mut headers = Vec::new();
        if let Some(object) = object_data(&p, &path, "headers")? {
            for entry in Object::entries(object.unchecked_ref()).iter() {
                let key = Reflect::get_u32(&entry, 0)
                    .ok()
                    .and_then(|k| k.as_string())
                    .unwrap_or_default();
                match Reflect::get_u32(&entry, 1).ok().and_then(|v| v.as_string()) {
                    Some(text) => headers.push((key, text)),
                    None => return Err(format!("providers[{i}].headers.{key} must be a string")),
                }
            }
        }
        providers.push(ProviderConfig {
            name,
            url,
            model,
            api_key: api_key.filter(|k| !k.is_empty()),
            headers,
            timeouts,
            max_retries,
        });
    }

    let messages = data(options_data, "messages")
        .filter(Array::is_array)
        .ok_or("messages must be an array of { role, content }")?;
    let stream = match data(options_data, "stream") {
        None => true,
        Some(flag) => flag
            .as_bool()
            .ok_or_else(|| invalid("", "stream", "a boolean"))?,
    };
    // `{ ...params, messages, stream, model }`: params cannot replace the three fields the options
    // themselves control (set over them here; the machine adds each attempt's `model` last).
    let body =
        object_data(options_data, "", "params")?.map_or_else(Object::new, JsCast::unchecked_into);
    set(&body, "model", &JsValue::UNDEFINED); // left out by JSON.stringify
    set(&body, "messages", &messages);
    set(&body, "stream", &JsValue::from_bool(stream));
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
    Ok(Options {
        config: GenerationConfig {
            providers,
            policy,
            service_ms: call_timeouts.service_ms,
            stream,
            max_event_bytes,
            body_without_model,
            // Back-off stays random per call: the machine draws from this seed.
            jitter_seed: (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64,
        },
        signal,
        fetch: optional_function(options, "fetch")?,
        on_text: optional_function(options, "onText")?,
        on_event: optional_function(options, "onEvent")?,
        log,
    })
}
