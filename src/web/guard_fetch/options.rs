//! `guardFetch()`'s options: read once, when the guarded `fetch` is made, and checked (unknown
//! names, types, ranges, URLs) so that a typo fails at once with a `GuardError` of kind
//! `"config"`, never at the first request.
//!
//! It must never decide anything about a request: that is the relay machine's.

use crate::core::deadline::{TimeoutOverrides, Timeouts};
use crate::core::events::LogLevel;
use crate::core::options::{check_url, unknown_key, PROVIDER_FIELDS, RETRY_FIELDS, TIMEOUT_FIELDS};
use crate::core::policy::RetryPolicy;
use crate::core::relay::{OnCut, RelayProvider};
use crate::core::sse::DEFAULT_MAX_EVENT_BYTES;
use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

/// The names `guardFetch()` knows.
const OPTIONS: &[&str] = &[
    "providers",
    "timeouts",
    "retry",
    "maxEventBytes",
    "session",
    "signal",
    "onCut",
    "onEvent",
    "log",
    "fetch",
];

/// What `guardFetch(options)` was asked for.
pub(crate) struct GuardOptions {
    pub fallbacks: Vec<RelayProvider>,
    pub timeouts: Timeouts,
    pub policy: RetryPolicy,
    pub max_event_bytes: usize,
    pub on_cut: OnCut,
    pub signal: Option<AbortSignal>,
    /// The `Session` whose cancel and close cancel every request.
    pub session: Option<JsValue>,
    pub on_event: Option<Function>,
    pub log: LogLevel,
    pub fetch: Option<Function>,
}

fn get(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// A field that is there (not `undefined` or `null`).
fn present(object: &JsValue, name: &str) -> Option<JsValue> {
    let value = get(object, name);
    (!value.is_undefined() && !value.is_null()).then_some(value)
}

fn check_keys(object: &JsValue, known: &[&str], place: &str) -> Result<(), String> {
    if !object.is_object() || object.is_function() {
        return Ok(());
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

fn string(object: &JsValue, path: &str, name: &str) -> Result<Option<String>, String> {
    present(object, name)
        .map(|v| {
            v.as_string()
                .ok_or(format!("{path}{name} must be a string"))
        })
        .transpose()
}

fn required(object: &JsValue, path: &str, name: &str) -> Result<String, String> {
    string(object, path, name)?
        .filter(|s| !s.is_empty())
        .ok_or(format!("{path}{name} is required"))
}

fn number(object: &JsValue, path: &str, name: &str) -> Result<Option<f64>, String> {
    present(object, name)
        .map(|v| {
            v.as_f64()
                .filter(|n| n.is_finite())
                .ok_or(format!("{path}{name} must be a finite number"))
        })
        .transpose()
}

fn count(object: &JsValue, path: &str, name: &str) -> Result<Option<u32>, String> {
    number(object, path, name)?
        .map(|n| {
            if n >= 0.0 && n.fract() == 0.0 && n <= 10.0 {
                Ok(n as u32)
            } else {
                Err(format!("{path}{name} must be a whole number from 0 to 10"))
            }
        })
        .transpose()
}

fn timeouts(object: &JsValue, path: &str, base: Timeouts) -> Result<Timeouts, String> {
    let Some(t) = present(object, "timeouts") else {
        return Ok(base);
    };
    let place = format!("{path}timeouts");
    check_keys(&t, TIMEOUT_FIELDS, &place)?;
    let path = format!("{place}.");
    let over = TimeoutOverrides {
        headers_ms: number(&t, &path, "headersMs")?,
        first_token_ms: number(&t, &path, "firstTokenMs")?,
        idle_ms: number(&t, &path, "idleMs")?,
        stream_ms: number(&t, &path, "streamMs")?,
        service_ms: number(&t, &path, "serviceMs")?,
    };
    base.with(&over).map_err(|e| {
        format!(
            "{path}{} must be a positive number of milliseconds",
            e.field
        )
    })
}

fn function(object: &JsValue, name: &str) -> Result<Option<Function>, String> {
    present(object, name)
        .map(|v| {
            v.dyn_into::<Function>()
                .map_err(|_| format!("{name} must be a function"))
        })
        .transpose()
}

fn signal(value: Option<JsValue>, what: &str) -> Result<Option<AbortSignal>, String> {
    value
        .map(|v| {
            let ok = Reflect::has(&v, &"aborted".into()).unwrap_or(false)
                && Reflect::has(&v, &"addEventListener".into()).unwrap_or(false);
            ok.then(|| v.unchecked_into::<AbortSignal>())
                .ok_or(format!("{what} must be an AbortSignal"))
        })
        .transpose()
}

fn has_base_url() -> bool {
    let location = get(&js_sys::global(), "location");
    location.is_object() && get(&location, "href").is_string()
}

/// Reads and checks `guardFetch()`'s options (`undefined` is no options).
pub(crate) fn read(options: &JsValue) -> Result<GuardOptions, String> {
    let options = match options.is_undefined() || options.is_null() {
        true => JsValue::from(Object::new()),
        false if options.is_object() && !Array::is_array(options) => options.clone(),
        false => return Err("guardFetch() takes an options object".into()),
    };
    check_keys(&options, OPTIONS, "")?;
    let base = timeouts(&options, "", Timeouts::default())?;
    let defaults = RetryPolicy::default();
    let policy = match present(&options, "retry") {
        None => defaults,
        Some(retry) => {
            check_keys(&retry, RETRY_FIELDS, "retry")?;
            let delay = |name| -> Result<Option<f64>, String> {
                number(&retry, "retry.", name)?
                    .map(|n| match n >= 0.0 {
                        true => Ok(n),
                        false => Err(format!("retry.{name} must not be negative")),
                    })
                    .transpose()
            };
            RetryPolicy {
                max_retries: count(&retry, "retry.", "maxRetries")?.unwrap_or(defaults.max_retries),
                base_delay_ms: delay("baseDelayMs")?.unwrap_or(defaults.base_delay_ms),
                max_delay_ms: delay("maxDelayMs")?.unwrap_or(defaults.max_delay_ms),
            }
        }
    };
    let max_event_bytes = match number(&options, "", "maxEventBytes")? {
        None => DEFAULT_MAX_EVENT_BYTES,
        Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => n as usize,
        Some(_) => return Err("maxEventBytes must be a positive whole number".into()),
    };
    let mut fallbacks = Vec::new();
    if let Some(list) = present(&options, "providers") {
        let list = list
            .dyn_into::<Array>()
            .map_err(|_| "providers must be an array".to_owned())?;
        for (i, p) in list.iter().enumerate() {
            let place = format!("providers[{i}]");
            if !p.is_object() || Array::is_array(&p) {
                return Err(format!("{place} must be an object"));
            }
            check_keys(&p, PROVIDER_FIELDS, &place)?;
            let path = format!("{place}.");
            let url = required(&p, &path, "url")?;
            check_url(&url, has_base_url()).map_err(|why| format!("{path}url {why}"))?;
            let mut headers = Vec::new();
            if let Some(object) = present(&p, "headers") {
                for entry in Object::entries(object.unchecked_ref()).iter() {
                    let key = Reflect::get_u32(&entry, 0)
                        .ok()
                        .and_then(|k| k.as_string())
                        .unwrap_or_default();
                    match Reflect::get_u32(&entry, 1).ok().and_then(|v| v.as_string()) {
                        Some(value) => headers.push((key, value)),
                        None => return Err(format!("{path}headers.{key} must be a string")),
                    }
                }
            }
            fallbacks.push(RelayProvider {
                name: required(&p, &path, "name")?,
                url,
                model: required(&p, &path, "model")?,
                api_key: string(&p, &path, "apiKey")?.filter(|k| !k.is_empty()),
                headers,
                timeouts: timeouts(&p, &path, base)?,
                max_retries: count(&p, &path, "maxRetries")?.unwrap_or(policy.max_retries),
            });
        }
    }
    let on_cut = match string(&options, "", "onCut")?.as_deref() {
        None | Some("error") => OnCut::Error,
        Some("finish") => OnCut::Finish,
        Some(other) => {
            return Err(format!(
                "onCut must be \"error\" or \"finish\" (got \"{other}\")"
            ))
        }
    };
    let log = match string(&options, "", "log")? {
        None => LogLevel::Off,
        Some(text) => LogLevel::parse(&text).ok_or(format!(
            "log must be \"off\", \"error\", \"info\" or \"debug\" (got \"{text}\")"
        ))?,
    };
    let session = match present(&options, "session") {
        None => None,
        Some(session) => match get(&session, "trackRequest").is_function() {
            true => Some(session),
            false => return Err("session must be a Session".into()),
        },
    };
    Ok(GuardOptions {
        fallbacks,
        timeouts: base,
        policy,
        max_event_bytes,
        on_cut,
        signal: signal(present(&options, "signal"), "signal")?,
        session,
        on_event: function(&options, "onEvent")?,
        log,
        fetch: function(&options, "fetch")?,
    })
}
