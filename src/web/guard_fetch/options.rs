//! `guardFetch()`'s options: read once, when the guarded `fetch` is made, so that a typo fails
//! at once with a `GuardError` of kind `"config"`, never at the first request.
//!
//! The options it shares with `generate()` (`providers`, `timeouts`, `retry`, `maxEventBytes`,
//! `signal`, `onEvent`, `log`, `fetch`) are read and checked by `generate()`'s own reader, so
//! both check them with the same rules and words (and the module carries one copy of them):
//! they are handed to it with the two fields it requires set aside (`messages`, and one more
//! provider after the caller's, standing for the request's own endpoint, whose deadlines and
//! retry allowance are then the call's). Only `session` and `onCut` are read here.
//!
//! It must never decide anything about a request: that is the call machine's (its relaying mode).

use crate::core::deadline::Timeouts;
use crate::core::events::LogLevel;
use crate::core::machine::Skip;
use crate::core::options::{on_cut, unknown_key, GUARD_FETCH_OPTIONS};
use crate::core::policy::RetryPolicy;
use crate::core::relay::{OnCut, Relay, RelayProvider};
use js_sys::{Array, Function, Object};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

use crate::web::objects::{get, get_named, set, set_named};
use crate::web::options::read_options;

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
    /// A `Guard`'s part in each request, for the guard's `fetch` (`None` for `guardFetch()`).
    pub hook: Option<Rc<dyn FetchHook>>,
}

/// What ends a request for a `Guard`: it learns from the relay's attempts at the time given.
pub(crate) type FetchFinish = Box<dyn FnOnce(f64, &Relay)>;

/// A `Guard`'s part in a request of its `fetch`: given the fallbacks at `now`, the ones to
/// ask (learned deadlines applied), those left out (name, model, why) and what to call when
/// the request is over. The core decides all of it (`GuardState::start_fetch`).
pub(crate) trait FetchHook {
    fn start(
        &self,
        now: f64,
        fallbacks: Vec<RelayProvider>,
    ) -> (Vec<RelayProvider>, Vec<(String, String, Skip)>, FetchFinish);
}

/// Reads and checks `guardFetch()`'s options (`undefined` is no options).
pub(crate) fn read(options: &JsValue) -> Result<GuardOptions, String> {
    let options = match options.is_undefined() || options.is_null() {
        true => JsValue::from(Object::new()),
        false if options.is_object() && !Array::is_array(options) => options.clone(),
        false => return Err("guardFetch() takes an options object".into()),
    };
    let keys: Vec<String> = Object::keys(options.unchecked_ref::<Object>())
        .iter()
        .filter_map(|key| key.as_string())
        .collect();
    if let Some(message) = unknown_key(keys.iter().map(String::as_str), GUARD_FETCH_OPTIONS, "") {
        return Err(message);
    }
    // generate()'s options: the shared ones, `messages`, and the own endpoint's stand-in last.
    let shared = JsValue::from(Object::new());
    for key in &keys {
        if key != "session" && key != "onCut" {
            set_named(&shared, key, &get_named(&options, key));
        }
    }
    let own = JsValue::from(Object::new());
    set(&own, "name", &"origin".into());
    set(&own, "url", &"http://origin.invalid/".into());
    set(&own, "model", &"origin".into());
    let given = get(&options, "providers");
    let providers = match given.is_undefined() || given.is_null() {
        true => Array::new().into(),
        false => given,
    };
    if let Some(list) = providers.dyn_ref::<Array>() {
        let list = list.slice(0, list.length());
        list.push(&own);
        set(&shared, "providers", &list);
    }
    set(&shared, "messages", &Array::new());
    let read = read_options(&shared)?;
    let mut chain = read.config.providers;
    let own = chain.pop().ok_or("providers must be an array")?;
    let given = get(&options, "onCut");
    let on_cut = match given.as_string() {
        None if given.is_undefined() => OnCut::default(),
        name => name
            .as_deref()
            .and_then(on_cut)
            .ok_or("onCut must be \"error\" or \"finish\"")?,
    };
    let session = get(&options, "session");
    let session = match session.is_undefined() || session.is_null() {
        true => None,
        false if get(&session, "trackRequest").is_function() => Some(session),
        false => return Err("session must be a Session".into()),
    };
    Ok(GuardOptions {
        fallbacks: chain.into_iter().map(RelayProvider::from).collect(),
        timeouts: Timeouts {
            service_ms: read.config.service_ms,
            ..own.timeouts
        },
        policy: read.config.policy,
        max_event_bytes: read.config.max_event_bytes,
        on_cut,
        signal: read.signal,
        session,
        on_event: read.on_event,
        log: read.log,
        fetch: read.fetch,
        hook: None,
    })
}
