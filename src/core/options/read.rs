//! `generate()`'s options as data: read through an [`OptionSource`] (a JavaScript object's
//! plain-data copy on the edge, a JSON document for the edge worker's `LSG_*` bindings and in
//! tests), checked (unknown names with the nearest known one, types, ranges, URLs) and turned
//! into what the machine is configured with. One validator, whatever the options came from: the
//! worker reads its `LSG_TIMEOUTS`, `LSG_RETRY`, its providers' `timeouts` and `maxRetries` and
//! `LSG_GUARD` with the same functions, so a mistake gets the same verdict in both places.
//!
//! What is not data stays with the edge: callbacks, the signal, an injected `fetch`, and the
//! request body (`params` and `messages` go to the provider as given). Messages name the
//! option's path (`providers[0].timeouts.idleMs`); a refused number is quoted as the source
//! formats it (JavaScript's own formatting on the edge: float formatting would weigh 14 KB in
//! the wasm), or not at all for a source whose values may be secret (worker bindings).

use super::{
    check_url, unknown_key, ADAPTIVE_FIELDS, BREAKER_FIELDS, GENERATE_OPTIONS,
    GENERATE_REQUEST_OPTIONS, GUARD_OPTIONS, HEDGE_FIELDS, PROVIDER_FIELDS, RETRY_FIELDS,
    TIMEOUT_FIELDS,
};
use crate::core::deadline::{Millis, TimeoutOverrides, Timeouts};
use crate::core::events::LogLevel;
use crate::core::guard::breaker::BreakerSettings;
use crate::core::guard::learned::Adaptive;
use crate::core::guard::state::{GuardConfig, HedgeAfter};
use crate::core::machine::ProviderConfig;
use crate::core::policy::RetryPolicy;
use crate::core::sse::DEFAULT_MAX_EVENT_BYTES;

/// Where option values come from. Values are read as JSON has them: an absent field and
/// `null` are both "not set".
pub trait OptionSource {
    /// A value of the source (an object, an array, a string, a number, …).
    type Value;

    /// The field `name` of `object`, unless it is absent or `null` (or `object` is no object).
    fn field(&self, object: &Self::Value, name: &str) -> Option<Self::Value>;
    /// The field names of `value`, if it is an object (not an array), in order.
    fn keys(&self, value: &Self::Value) -> Option<Vec<String>>;
    /// The items of `value`, if it is an array.
    fn items(&self, value: &Self::Value) -> Option<Vec<Self::Value>>;
    /// `value` as a string, if it is one.
    fn string(&self, value: &Self::Value) -> Option<String>;
    /// `value` as a number, if it is one.
    fn number(&self, value: &Self::Value) -> Option<f64>;
    /// `value` as a boolean, if it is one.
    fn boolean(&self, value: &Self::Value) -> Option<bool>;
    /// A refused number as the caller's language writes it, for messages; `None` for a source
    /// whose values are never quoted (a worker binding may hold a secret in the wrong place).
    fn number_text(&self, number: f64) -> Option<String>;
}

/// The data part of the options, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionsData {
    /// The failover chain (at least one provider).
    pub providers: Vec<ProviderConfig>,
    /// Back-off settings.
    pub policy: RetryPolicy,
    /// The whole call's deadline.
    pub service_ms: Millis,
    /// Whether a stream is asked for.
    pub stream: bool,
    /// The bound on one SSE event.
    pub max_event_bytes: usize,
    /// Console verbosity.
    pub log: LogLevel,
}

impl OptionsData {
    /// The machine's configuration: these options, with the request body the driver built
    /// (without `model`) and the seed of its back-off's jitter.
    pub fn into_config(
        self,
        body_without_model: String,
        jitter_seed: u64,
    ) -> crate::core::machine::GenerationConfig {
        crate::core::machine::GenerationConfig {
            providers: self.providers,
            policy: self.policy,
            service_ms: self.service_ms,
            stream: self.stream,
            max_event_bytes: self.max_event_bytes,
            body_without_model,
            jitter_seed,
        }
    }
}

/// Reads and checks every data option of `options`. `has_base_url` says whether the runtime
/// can resolve a relative provider URL (a page's or a worker's `location`).
pub fn read_options<S: OptionSource>(
    source: &S,
    options: &S::Value,
    has_base_url: bool,
) -> Result<OptionsData, String> {
    let r = Reader(source);
    let log = match r.string(options, "", "log")? {
        None => LogLevel::Off,
        Some(text) => LogLevel::parse(&text).ok_or_else(|| {
            format!("log must be \"off\", \"error\", \"info\" or \"debug\" (got \"{text}\")")
        })?,
    };
    let call_timeouts = r.timeouts(options, "", &Timeouts::default())?;
    let policy = r.policy(options)?;
    let max_event_bytes = match r.number(options, "", "maxEventBytes")? {
        None => DEFAULT_MAX_EVENT_BYTES,
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => {
            n as usize
        }
        Some(n) => {
            return Err(format!(
                "maxEventBytes must be a positive whole number{}",
                r.got(n)
            ))
        }
    };
    let list = match source.field(options, "providers") {
        None => Vec::new(),
        Some(list) => source
            .items(&list)
            .ok_or_else(|| invalid("", "providers", "an array"))?,
    };
    if list.is_empty() {
        return Err("providers must be a non-empty array".into());
    }
    let mut providers = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        providers.push(r.provider(i, p, &call_timeouts, &policy, has_base_url)?);
    }
    if source
        .field(options, "messages")
        .and_then(|list| source.items(&list))
        .is_none()
    {
        return Err("messages must be an array of { role, content }".into());
    }
    let stream = match source.field(options, "stream") {
        None => true,
        Some(flag) => source
            .boolean(&flag)
            .ok_or_else(|| invalid("", "stream", "a boolean"))?,
    };
    Ok(OptionsData {
        providers,
        policy,
        service_ms: call_timeouts.service_ms,
        stream,
        max_event_bytes,
        log,
    })
}

/// Reads and checks a `timeouts` object over `base`, as `generate()` reads its own and its
/// providers': unknown names refused with the nearest one, each deadline a positive number.
/// `path` is where the object is, ending in a dot (`providers[0].timeouts.`), or empty for a
/// value that is the object itself (`LSG_TIMEOUTS`).
pub fn read_timeouts<S: OptionSource>(
    source: &S,
    timeouts: &S::Value,
    path: &str,
    base: &Timeouts,
) -> Result<Timeouts, String> {
    Reader(source).timeouts_in(timeouts, path, base)
}

/// Reads and checks a `retry` object over the defaults, as `generate()` reads its own
/// (`maxRetries` a whole number up to 10, delays non-negative); `path` as for [`read_timeouts`].
pub fn read_retry<S: OptionSource>(
    source: &S,
    retry: &S::Value,
    path: &str,
) -> Result<RetryPolicy, String> {
    Reader(source).retry_in(retry, path)
}

/// A provider's `maxRetries`, if set, checked as `generate()` checks a provider's; `path` is
/// the provider's, ending in a dot (`providers[0].`).
pub fn read_max_retries<S: OptionSource>(
    source: &S,
    provider: &S::Value,
    path: &str,
) -> Result<Option<u32>, String> {
    Reader(source).max_retries(provider, path)
}

/// The most retries one provider may be given (`retry.maxRetries`, a provider's `maxRetries`).
const MAX_RETRIES: u32 = 10;

fn invalid(path: &str, name: &str, what: &str) -> String {
    format!("invalid options: {path}{name} must be {what}")
}

/// The readers of typed fields, over one source.
struct Reader<'a, S>(&'a S);

impl<S: OptionSource> Reader<'_, S> {
    fn string(&self, object: &S::Value, path: &str, name: &str) -> Result<Option<String>, String> {
        self.0
            .field(object, name)
            .map(|value| {
                self.0
                    .string(&value)
                    .ok_or_else(|| invalid(path, name, "a string"))
            })
            .transpose()
    }

    /// A string that must be there and not be empty.
    fn required_string(&self, object: &S::Value, path: &str, name: &str) -> Result<String, String> {
        self.string(object, path, name)?
            .filter(|text| !text.is_empty())
            .ok_or_else(|| format!("{path}{name} is required"))
    }

    fn number(&self, object: &S::Value, path: &str, name: &str) -> Result<Option<f64>, String> {
        self.0
            .field(object, name)
            .map(|value| {
                self.0
                    .number(&value)
                    .ok_or_else(|| invalid(path, name, "a number"))
            })
            .transpose()
    }

    /// An object (not an array).
    fn object(
        &self,
        object: &S::Value,
        path: &str,
        name: &str,
    ) -> Result<Option<S::Value>, String> {
        match self.0.field(object, name) {
            None => Ok(None),
            Some(value) if self.0.keys(&value).is_some() => Ok(Some(value)),
            Some(_) => Err(invalid(path, name, "an object")),
        }
    }

    /// Refuses `value` unless it is an object; `path` is its own, ending in a dot (empty for a
    /// value that is the whole of what is read, as a worker binding's is).
    fn require_object(&self, value: &S::Value, path: &str) -> Result<(), String> {
        match (self.0.keys(value), path.strip_suffix('.')) {
            (Some(_), _) => Ok(()),
            (None, Some(place)) => Err(invalid("", place, "an object")),
            (None, None) => Err("must be an object".into()),
        }
    }

    /// ` (got 11)` after a message refusing `value`, or nothing if the source quotes no value.
    fn got(&self, value: f64) -> String {
        self.0
            .number_text(value)
            .map(|text| format!(" (got {text})"))
            .unwrap_or_default()
    }

    /// `object.timeouts` over `base`, if set; `path` is `object`'s.
    fn timeouts(&self, object: &S::Value, path: &str, base: &Timeouts) -> Result<Timeouts, String> {
        match self.object(object, path, "timeouts")? {
            None => Ok(*base),
            Some(timeouts) => self.timeouts_in(&timeouts, &format!("{path}timeouts."), base),
        }
    }

    /// `{ headersMs, firstTokenMs, idleMs, streamMs, serviceMs }`, each optional, over `base`;
    /// `path` is the object's.
    fn timeouts_in(
        &self,
        timeouts: &S::Value,
        path: &str,
        base: &Timeouts,
    ) -> Result<Timeouts, String> {
        self.require_object(timeouts, path)?;
        self.check_keys(Some(timeouts), TIMEOUT_FIELDS, path.trim_end_matches('.'))?;
        let field = |name| self.number(timeouts, path, name);
        let overrides = TimeoutOverrides {
            headers_ms: field("headersMs")?,
            first_token_ms: field("firstTokenMs")?,
            idle_ms: field("idleMs")?,
            stream_ms: field("streamMs")?,
            service_ms: field("serviceMs")?,
        };
        base.with(&overrides).map_err(|refused| {
            format!(
                "{path}{} must be a positive number of milliseconds{}",
                refused.field,
                self.got(refused.value)
            )
        })
    }

    fn whole_count(&self, value: f64, what: &str, max: u32) -> Result<u32, String> {
        if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= f64::from(max) {
            Ok(value as u32)
        } else {
            Err(format!(
                "{what} must be a whole number from 0 to {max}{}",
                self.got(value)
            ))
        }
    }

    fn non_negative(&self, value: f64, what: &str) -> Result<f64, String> {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(format!(
                "{what} must be a non-negative number of milliseconds{}",
                self.got(value)
            ))
        }
    }

    /// `adaptive` as an object, over the defaults.
    fn adaptive(&self, a: &S::Value) -> Result<Adaptive, String> {
        self.check_keys(Some(a), ADAPTIVE_FIELDS, "adaptive")?;
        let base = Adaptive::default();
        let quantile = match self.number(a, "adaptive.", "quantile")? {
            None => base.quantile,
            Some(q) if q > 0.0 && q <= 1.0 => q,
            Some(q) => {
                return Err(format!(
                    "adaptive.quantile must be a number above 0 and at most 1{}",
                    self.got(q)
                ))
            }
        };
        let factor = match self.number(a, "adaptive.", "factor")? {
            None => base.factor,
            Some(f) if f.is_finite() && f > 0.0 => f,
            Some(f) => {
                return Err(format!(
                    "adaptive.factor must be a positive number{}",
                    self.got(f)
                ))
            }
        };
        let min_samples = match self.number(a, "adaptive.", "minSamples")? {
            None => base.min_samples,
            Some(v) => u64::from(
                self.whole_count(v, "adaptive.minSamples", 1_000_000)?
                    .max(1),
            ),
        };
        Ok(Adaptive {
            quantile,
            factor,
            min_samples,
            ..base
        })
    }

    /// `options.retry` over the defaults, if set.
    fn policy(&self, options: &S::Value) -> Result<RetryPolicy, String> {
        match self.object(options, "", "retry")? {
            None => Ok(RetryPolicy::default()),
            Some(retry) => self.retry_in(&retry, "retry."),
        }
    }

    /// `{ maxRetries, baseDelayMs, maxDelayMs }`, each optional, over the defaults; `path` is
    /// the object's.
    fn retry_in(&self, retry: &S::Value, path: &str) -> Result<RetryPolicy, String> {
        self.require_object(retry, path)?;
        self.check_keys(Some(retry), RETRY_FIELDS, path.trim_end_matches('.'))?;
        let defaults = RetryPolicy::default();
        let delay = |name: &str, default| match self.number(retry, path, name)? {
            Some(v) => self.non_negative(v, &format!("{path}{name}")),
            None => Ok(default),
        };
        Ok(RetryPolicy {
            max_retries: self
                .max_retries(retry, path)?
                .unwrap_or(defaults.max_retries),
            base_delay_ms: delay("baseDelayMs", defaults.base_delay_ms)?,
            max_delay_ms: delay("maxDelayMs", defaults.max_delay_ms)?,
        })
    }

    /// `object.maxRetries` (in `retry` or a provider), if set: a whole number up to
    /// [`MAX_RETRIES`]; `path` is `object`'s.
    fn max_retries(&self, object: &S::Value, path: &str) -> Result<Option<u32>, String> {
        self.number(object, path, "maxRetries")?
            .map(|v| self.whole_count(v, &format!("{path}maxRetries"), MAX_RETRIES))
            .transpose()
    }

    /// `providers[i]`.
    fn provider(
        &self,
        i: usize,
        p: &S::Value,
        call_timeouts: &Timeouts,
        policy: &RetryPolicy,
        has_base_url: bool,
    ) -> Result<ProviderConfig, String> {
        if self.0.keys(p).is_none() {
            return Err(invalid("", &format!("providers[{i}]"), "an object"));
        }
        let path = format!("providers[{i}].");
        let name = self.required_string(p, &path, "name")?;
        let url = self.required_string(p, &path, "url")?;
        check_url(&url, has_base_url).map_err(|why| format!("providers[{i}].url {why}"))?;
        let model = self.required_string(p, &path, "model")?;
        let api_key = self.string(p, &path, "apiKey")?;
        let timeouts = self.timeouts(p, &path, call_timeouts)?;
        let max_retries = self.max_retries(p, &path)?.unwrap_or(policy.max_retries);
        let mut headers = Vec::new();
        if let Some(object) = self.object(p, &path, "headers")? {
            for key in self.0.keys(&object).unwrap_or_default() {
                let value = self.0.field(&object, &key);
                match value.and_then(|v| self.0.string(&v)) {
                    Some(text) => headers.push((key, text)),
                    None => return Err(format!("providers[{i}].headers.{key} must be a string")),
                }
            }
        }
        Ok(ProviderConfig {
            name,
            url,
            model,
            api_key: api_key.filter(|k| !k.is_empty()),
            headers,
            timeouts,
            max_retries,
        })
    }

    /// Refuses a name in `object` that is not in `known` (`place` names the object).
    fn check_keys(
        &self,
        object: Option<&S::Value>,
        known: &[&str],
        place: &str,
    ) -> Result<(), String> {
        let Some(keys) = object.and_then(|o| self.0.keys(o)) else {
            return Ok(()); // not an object: its type is refused where it is read
        };
        match unknown_key(keys.iter().map(String::as_str), known, place) {
            Some(message) => Err(message),
            None => Ok(()),
        }
    }

    /// `object.name` if it is a number that is NaN or infinite.
    fn non_finite(&self, object: Option<&S::Value>, name: &str) -> bool {
        object
            .and_then(|o| self.0.field(o, name))
            .and_then(|value| self.0.number(&value))
            .is_some_and(|n| !n.is_finite())
    }

    /// The path of the first field of `object` among `fields` that is NaN or infinite.
    fn non_finite_in(
        &self,
        object: Option<&S::Value>,
        fields: &[&str],
        prefix: &str,
    ) -> Option<String> {
        fields
            .iter()
            .find(|name| self.non_finite(object, name))
            .map(|name| format!("{prefix}{name}"))
    }
}

/// Reads and checks a guard's own options (`continuation`, `hedge`, `adaptive`, `breaker`)
/// from the caller's object itself (numbers as given: NaN and infinities are refused), and
/// refuses an unknown name at any of their levels. The options it shares with `generate()`
/// are read by [`read_options`].
pub fn read_guard_options<S: OptionSource>(
    source: &S,
    options: &S::Value,
) -> Result<GuardConfig, String> {
    let r = Reader(source);
    r.check_keys(Some(options), GUARD_OPTIONS, "")?;
    let defaults = GuardConfig::default();
    let continuation = match source.field(options, "continuation") {
        None => defaults.continuation,
        Some(flag) => source
            .boolean(&flag)
            .ok_or_else(|| invalid("", "continuation", "a boolean"))?,
    };
    let hedge =
        match r.object(options, "", "hedge")? {
            None => None,
            Some(hedge) => {
                r.check_keys(Some(&hedge), HEDGE_FIELDS, "hedge")?;
                let after = source.field(&hedge, "afterMs");
                Some(match after {
                    Some(v) if source.string(&v).as_deref() == Some("auto") => HedgeAfter::Auto,
                    Some(v) => match source.number(&v) {
                        Some(ms) if ms.is_finite() && ms > 0.0 => HedgeAfter::Millis(ms),
                        _ => return Err(
                            "hedge.afterMs must be a positive number of milliseconds or \"auto\""
                                .into(),
                        ),
                    },
                    None => return Err("hedge.afterMs is required".into()),
                })
            }
        };
    let adaptive = match source.field(options, "adaptive") {
        None => defaults.adaptive,
        Some(v) => match source.boolean(&v) {
            Some(true) => Some(Adaptive::default()),
            Some(false) => None,
            None if source.keys(&v).is_some() => Some(r.adaptive(&v)?),
            None => return Err(invalid("", "adaptive", "a boolean or an object")),
        },
    };
    let breaker = match r.object(options, "", "breaker")? {
        None => defaults.breaker,
        Some(b) => {
            r.check_keys(Some(&b), BREAKER_FIELDS, "breaker")?;
            let base = BreakerSettings::default();
            BreakerSettings {
                failure_threshold: match r.number(&b, "breaker.", "failureThreshold")? {
                    None => base.failure_threshold,
                    Some(v) if v.fract() == 0.0 && (1.0..=1000.0).contains(&v) => v as u32,
                    Some(v) => {
                        return Err(format!(
                            "breaker.failureThreshold must be a whole number from 1 to 1000{}",
                            r.got(v)
                        ))
                    }
                },
                cooldown_ms: match r.number(&b, "breaker.", "cooldownMs")? {
                    None => base.cooldown_ms,
                    Some(v) => r.non_negative(v, "breaker.cooldownMs")?,
                },
            }
        }
    };
    Ok(GuardConfig {
        adaptive,
        breaker,
        hedge,
        continuation,
    })
}

/// Refuses a name in one of a guard's calls that such a call does not take, naming the guard
/// for the options the guard holds (``providers` is set on the Guard, not per call``).
pub fn check_request_keys<S: OptionSource>(source: &S, request: &S::Value) -> Result<(), String> {
    let keys = source
        .keys(request)
        .ok_or("a Guard's call takes an options object")?;
    for key in &keys {
        if !GENERATE_REQUEST_OPTIONS.contains(&key.as_str())
            && GUARD_OPTIONS.contains(&key.as_str())
        {
            return Err(format!("`{key}` is set on the Guard, not per call"));
        }
    }
    match unknown_key(
        keys.iter().map(String::as_str),
        GENERATE_REQUEST_OPTIONS,
        "",
    ) {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

/// The checks on the caller's own options object (not a plain-data copy, which would have
/// dropped functions and turned NaN and Infinity into `null`): every option name at every level
/// with fixed names (`params` and `headers` are the provider's own and go as given), then every
/// numeric option that is NaN or infinite.
pub fn check_options_object<S: OptionSource>(source: &S, options: &S::Value) -> Result<(), String> {
    let r = Reader(source);
    let timeouts = source.field(options, "timeouts");
    let retry = source.field(options, "retry");
    let providers = source
        .field(options, "providers")
        .and_then(|list| source.items(&list))
        .unwrap_or_default();
    r.check_keys(Some(options), GENERATE_OPTIONS, "")?;
    r.check_keys(timeouts.as_ref(), TIMEOUT_FIELDS, "timeouts")?;
    r.check_keys(retry.as_ref(), RETRY_FIELDS, "retry")?;
    for (i, provider) in providers.iter().enumerate() {
        r.check_keys(Some(provider), PROVIDER_FIELDS, &format!("providers[{i}]"))?;
        let timeouts = source.field(provider, "timeouts");
        r.check_keys(
            timeouts.as_ref(),
            TIMEOUT_FIELDS,
            &format!("providers[{i}].timeouts"),
        )?;
    }
    // A plain-data copy turns NaN and Infinity into null ("not set"), so they are refused here.
    let non_finite = r
        .non_finite_in(Some(options), &["maxEventBytes"], "")
        .or_else(|| r.non_finite_in(timeouts.as_ref(), TIMEOUT_FIELDS, "timeouts."))
        .or_else(|| r.non_finite_in(retry.as_ref(), RETRY_FIELDS, "retry."))
        .or_else(|| {
            providers.iter().enumerate().find_map(|(i, provider)| {
                r.non_finite_in(Some(provider), &["maxRetries"], &format!("providers[{i}]."))
                    .or_else(|| {
                        let timeouts = source.field(provider, "timeouts");
                        r.non_finite_in(
                            timeouts.as_ref(),
                            TIMEOUT_FIELDS,
                            &format!("providers[{i}].timeouts."),
                        )
                    })
            })
        });
    match non_finite {
        Some(path) => Err(format!("{path} must be a finite number")),
        None => Ok(()),
    }
}

/// Options as a JSON document: how the edge worker's JSON bindings and the tests feed the
/// validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonSource {
    /// Whether a message quotes a refused number (`(got -1)`), as `generate()`'s do.
    pub quote_numbers: bool,
}

impl JsonSource {
    /// A caller's options as JSON: refused numbers quoted, as the JavaScript side quotes them.
    pub const OPTIONS: JsonSource = JsonSource {
        quote_numbers: true,
    };
    /// A worker binding: no value quoted (it may be a secret pasted into the wrong variable).
    pub const BINDING: JsonSource = JsonSource {
        quote_numbers: false,
    };
}

impl OptionSource for JsonSource {
    type Value = serde_json::Value;
    fn field(&self, object: &Self::Value, name: &str) -> Option<Self::Value> {
        object.get(name).filter(|v| !v.is_null()).cloned()
    }
    fn keys(&self, value: &Self::Value) -> Option<Vec<String>> {
        value.as_object().map(|o| o.keys().cloned().collect())
    }
    fn items(&self, value: &Self::Value) -> Option<Vec<Self::Value>> {
        value.as_array().cloned()
    }
    fn string(&self, value: &Self::Value) -> Option<String> {
        value.as_str().map(str::to_owned)
    }
    fn number(&self, value: &Self::Value) -> Option<f64> {
        value.as_f64()
    }
    fn boolean(&self, value: &Self::Value) -> Option<bool> {
        value.as_bool()
    }
    fn number_text(&self, number: f64) -> Option<String> {
        self.quote_numbers.then(|| format!("{number}"))
    }
}

#[cfg(test)]
mod tests;
