//! The worker's configuration: read once per isolate from its `LSG_*` bindings, checked, and
//! every problem named by the variable it is in.
//!
//! A [`ConfigError`] is for the operator's log, never for a client: it names the variable and
//! what is wrong, and it never quotes a value that may be secret (`LSG_CLIENT_TOKENS`, a
//! provider's `headers`, an API key). Values that are not secret (an origin, a field name) are
//! quoted where that helps to find the mistake.

use super::request::GATED_FIELDS;
use crate::core::guard::state::GuardConfig;
use crate::core::options::{
    check_url, nearest, read_guard_options, unknown_key, JsonSource, RETRY_FIELDS, TIMEOUT_FIELDS,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::fmt;

/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT_MS: f64 = 10_000.0;
/// Default liveness probe interval.
pub const DEFAULT_PROBE_MS: f64 = 25.0;
/// Default request body limit: 256 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// Default time a client has to send its whole request body.
pub const DEFAULT_BODY_MS: f64 = 5_000.0;

/// The fields of one `LSG_PROVIDERS` entry.
pub const PROVIDER_CONFIG_FIELDS: &[&str] = &[
    "name",
    "url",
    "model",
    "apiKeyEnv",
    "headers",
    "timeouts",
    "maxRetries",
];

/// One configured provider (as `LSG_PROVIDERS` lists it).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfig {
    /// Name for events, metrics and errors.
    pub name: String,
    /// The chat completions URL.
    pub url: String,
    /// The model to ask for.
    pub model: String,
    /// The name of the variable or secret holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Extra request headers (e.g. OpenRouter's `HTTP-Referer`, `X-OpenRouter-Title`).
    #[serde(default)]
    pub headers: Option<Map<String, Value>>,
    /// Per-provider deadline overrides (the `Timeouts` fields).
    #[serde(default)]
    pub timeouts: Option<Map<String, Value>>,
    /// Per-provider retry allowance.
    #[serde(default)]
    pub max_retries: Option<u32>,
}

/// The whole worker configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// The failover chain, in order.
    pub providers: Vec<ProviderConfig>,
    /// Accepted bearer tokens.
    pub client_tokens: Vec<String>,
    /// Accepted origins (lowercase `scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    /// Accepted models.
    pub models: Vec<String>,
    /// Deadline overrides for every call.
    pub timeouts: Map<String, Value>,
    /// Retry settings for every call.
    pub retry: Map<String, Value>,
    /// Heartbeat interval in milliseconds.
    pub heartbeat_ms: f64,
    /// Liveness probe interval in milliseconds (0 = off).
    pub probe_ms: f64,
    /// Request body limit in bytes.
    pub max_body_bytes: usize,
    /// How long a client may take to send its request body, in milliseconds.
    pub body_ms: f64,
    /// The gated request fields ([`GATED_FIELDS`]) that are passed on anyway.
    pub forward_fields: Vec<String>,
    /// The largest `max_tokens` / `max_completion_tokens` accepted (and the `max_tokens` sent
    /// when a request names neither).
    pub max_tokens: Option<u64>,
    /// `LSG_GUARD`: a guard over the providers (learned deadlines, breakers), kept per isolate;
    /// `None` when not set.
    pub guard: Option<GuardConfig>,
}

/// A configuration problem: the variable it is in and what is wrong (no secret value in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The `LSG_*` variable (or the API key variable a provider names).
    pub variable: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            variable: variable.to_owned(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A value that is set and not blank.
fn set(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The options `LSG_GUARD` takes: a `Guard`'s that apply to a proxy (its providers, deadlines
/// and retries are `LSG_PROVIDERS`, `LSG_TIMEOUTS` and `LSG_RETRY`; hedging and continuation
/// would change the bytes relayed).
pub const WORKER_GUARD_OPTIONS: &[&str] = &["adaptive", "breaker"];

/// `LSG_GUARD`, read by the guard's own option reader (so it is checked as `new Guard()`
/// checks its options).
fn guard(value: Option<String>) -> Result<Option<GuardConfig>, ConfigError> {
    let Some(text) = set(value) else {
        return Ok(None);
    };
    let problem = |p: String| ConfigError::new("LSG_GUARD", p);
    let value = match serde_json::from_str::<Value>(&text) {
        Ok(value @ Value::Object(_)) => value,
        _ => return Err(problem("must be a JSON object".into())),
    };
    let keys = value.as_object().into_iter().flat_map(|o| o.keys());
    if let Some(unknown) = unknown_key(keys.map(String::as_str), WORKER_GUARD_OPTIONS, "") {
        return Err(problem(unknown));
    }
    read_guard_options(&JsonSource::OPTIONS, &value)
        .map(Some)
        .map_err(problem)
}

/// The most retries per provider the guard takes (its `maxRetries` limit).
pub const MAX_RETRIES: u64 = 10;

/// What a number in `LSG_TIMEOUTS`, `LSG_RETRY` or a provider's `timeouts` must be, as the guard
/// checks it: deadlines positive, back-offs non-negative, retries a whole number up to
/// [`MAX_RETRIES`]. Checked here so that a mistake shows on the first request, named by its
/// variable, instead of failing every generation.
fn number_problem(key: &str, value: &Value) -> Option<String> {
    let n = value.as_f64().filter(|v| v.is_finite());
    let fits = match key {
        "maxRetries" => value.as_u64().is_some_and(|v| v <= MAX_RETRIES),
        "baseDelayMs" | "maxDelayMs" => n.is_some_and(|v| v >= 0.0),
        _ => n.is_some_and(|v| v > 0.0),
    };
    (!fits).then(|| match key {
        "maxRetries" => format!("must be a whole number from 0 to {MAX_RETRIES}"),
        "baseDelayMs" | "maxDelayMs" => "must be a non-negative number of milliseconds".into(),
        _ => "must be a positive number of milliseconds".into(),
    })
}

/// An object of numbers whose names are in `known` (`LSG_TIMEOUTS`, `LSG_RETRY`, a provider's
/// `timeouts`); `place` is where it is inside its variable (empty at the top). Values are not
/// quoted: the name is enough to find the mistake.
fn check_numbers(map: &Map<String, Value>, known: &[&str], place: &str) -> Result<(), String> {
    if let Some(problem) = unknown_key(map.keys().map(String::as_str), known, place) {
        return Err(problem);
    }
    let prefix = if place.is_empty() {
        String::new()
    } else {
        format!("{place}.")
    };
    for (key, value) in map {
        if let Some(problem) = number_problem(key, value) {
            return Err(format!("{prefix}{key} {problem}"));
        }
    }
    Ok(())
}

fn json_numbers(
    variable: &str,
    value: Option<String>,
    known: &[&str],
) -> Result<Map<String, Value>, ConfigError> {
    let Some(text) = set(value) else {
        return Ok(Map::new());
    };
    let map = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => map,
        _ => return Err(ConfigError::new(variable, "must be a JSON object")),
    };
    check_numbers(&map, known, "").map_err(|problem| ConfigError::new(variable, problem))?;
    Ok(map)
}

fn number(
    variable: &str,
    value: Option<String>,
    default: f64,
    zero_allowed: bool,
) -> Result<f64, ConfigError> {
    let Some(text) = set(value) else {
        return Ok(default);
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (*v > 0.0 || (zero_allowed && *v == 0.0)))
        .ok_or_else(|| {
            ConfigError::new(
                variable,
                if zero_allowed {
                    "must be a non-negative number of milliseconds"
                } else {
                    "must be a positive number of milliseconds"
                },
            )
        })
}

fn whole_number(variable: &str, value: Option<String>) -> Result<Option<u64>, ConfigError> {
    let Some(text) = set(value) else {
        return Ok(None);
    };
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .map(Some)
        .ok_or_else(|| ConfigError::new(variable, "must be a positive whole number"))
}

/// Whether `name` can name a binding (`OPENROUTER_API_KEY`).
fn is_binding_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks one `LSG_PROVIDERS` entry; `place` is `[i]`. Nothing from `headers`
/// (where keys may be) is ever quoted.
fn check_provider(entry: &Value, place: &str) -> Result<ProviderConfig, String> {
    let Value::Object(map) = entry else {
        return Err(format!("{place} must be an object"));
    };
    if let Some(problem) = unknown_key(
        map.keys().map(String::as_str),
        PROVIDER_CONFIG_FIELDS,
        place,
    ) {
        return Err(problem);
    }
    for field in ["name", "url", "model"] {
        let text = map.get(field).and_then(Value::as_str).unwrap_or_default();
        if text.trim().is_empty() {
            return Err(format!("{place}.{field} must be a non-empty string"));
        }
    }
    if let Err(problem) = check_url(map["url"].as_str().unwrap_or_default(), false) {
        return Err(format!("{place}.url {problem}"));
    }
    match map.get("apiKeyEnv") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) if is_binding_name(name) => {}
        Some(_) => {
            return Err(format!(
                "{place}.apiKeyEnv must be the name of the variable or secret that holds the \
                 key (letters, digits and `_`), never the key itself"
            ))
        }
    }
    match map.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(headers)) if headers.values().all(Value::is_string) => {}
        Some(_) => return Err(format!("{place}.headers must be an object of strings")),
    }
    match map.get("timeouts") {
        None | Some(Value::Null) => {}
        Some(Value::Object(timeouts)) => {
            check_numbers(timeouts, TIMEOUT_FIELDS, &format!("{place}.timeouts"))?
        }
        Some(_) => return Err(format!("{place}.timeouts must be an object")),
    }
    match map.get("maxRetries") {
        None | Some(Value::Null) => {}
        Some(v) => {
            if let Some(problem) = number_problem("maxRetries", v) {
                return Err(format!("{place}.maxRetries {problem}"));
            }
        }
    }
    // Checked above field by field, so this cannot fail on a value; serde's own message (which
    // may quote a value) is never passed on.
    serde_json::from_value(entry.clone()).map_err(|_| format!("{place} is not a provider"))
}

fn providers(value: Option<String>) -> Result<Vec<ProviderConfig>, ConfigError> {
    const VAR: &str = "LSG_PROVIDERS";
    let text = set(value).ok_or_else(|| ConfigError::new(VAR, "is not set"))?;
    // serde_json's syntax errors say where (line, column), never what.
    let entries = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(entries)) => entries,
        Ok(_) => {
            return Err(ConfigError::new(
                VAR,
                "must be a JSON array of {name, url, model, apiKeyEnv?, headers?, timeouts?, \
                 maxRetries?}",
            ))
        }
        Err(e) => {
            return Err(ConfigError::new(
                VAR,
                format!(
                    "is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            ))
        }
    };
    if entries.is_empty() {
        return Err(ConfigError::new(VAR, "must name at least one provider"));
    }
    let mut providers: Vec<ProviderConfig> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let provider = check_provider(entry, &format!("[{i}]"))
            .map_err(|problem| ConfigError::new(VAR, problem))?;
        if providers.iter().any(|p| p.name == provider.name) {
            return Err(ConfigError::new(
                VAR,
                format!(
                    "[{i}].name repeats the name {:?}: events, metrics and errors name providers by it",
                    provider.name
                ),
            ));
        }
        providers.push(provider);
    }
    Ok(providers)
}

/// `LSG_ALLOWED_ORIGINS`: each entry a `http(s)://host[:port]` origin, lowercased. `*` and
/// `null` are refused: either would hand the worker's keys to any page (and an `Origin` header
/// is no proof of anything outside a browser).
fn origins(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    const VAR: &str = "LSG_ALLOWED_ORIGINS";
    let mut origins = Vec::new();
    for origin in list(value) {
        if origin == "*" {
            return Err(ConfigError::new(
                VAR,
                "must list origins: `*` would let any web page spend the worker's keys (use \
                 LSG_CLIENT_TOKENS for clients that are not pages of known origins)",
            ));
        }
        let lower = origin.to_ascii_lowercase();
        let host = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        let valid = host.is_some_and(|host| {
            !host.is_empty()
                && !host.contains(['/', '?', '#', '@', '*', ' '])
                && !host.starts_with(':')
        });
        if !valid {
            return Err(ConfigError::new(
                VAR,
                format!(
                    "entry {origin:?} is not an origin: scheme://host[:port] (http or https, no \
                     path, no trailing slash, no wildcard)"
                ),
            ));
        }
        if !origins.contains(&lower) {
            origins.push(lower);
        }
    }
    Ok(origins)
}

/// `LSG_FORWARD_FIELDS`: names from [`GATED_FIELDS`] (a typo is refused with the nearest name).
fn forward_fields(value: Option<String>) -> Result<Vec<String>, ConfigError> {
    const VAR: &str = "LSG_FORWARD_FIELDS";
    let fields = list(value);
    for field in &fields {
        if !GATED_FIELDS.contains(&field.as_str()) {
            let hint = match nearest(field, GATED_FIELDS) {
                Some(near) => format!("did you mean `{near}`?"),
                None => "other fields are passed on without being listed".to_owned(),
            };
            return Err(ConfigError::new(
                VAR,
                format!(
                    "lists `{field}`, which is not a gated field ({}); {hint}",
                    GATED_FIELDS.join(", ")
                ),
            ));
        }
    }
    Ok(fields)
}

impl ProxyConfig {
    /// Read the configuration through `get` (a binding or environment lookup).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<ProxyConfig, ConfigError> {
        let providers = providers(get("LSG_PROVIDERS"))?;
        let mut models = list(get("LSG_MODELS"));
        if models.is_empty() {
            for p in &providers {
                if !models.contains(&p.model) {
                    models.push(p.model.clone());
                }
            }
        }
        let max_body_bytes = match whole_number("LSG_MAX_BODY_BYTES", get("LSG_MAX_BODY_BYTES"))? {
            None => DEFAULT_MAX_BODY_BYTES,
            // A body is held whole in memory: a limit past 1 GiB is a mistake (and past 4 GiB
            // would not fit the wasm32 address space).
            Some(n) if n <= 1 << 30 => n as usize,
            Some(_) => {
                return Err(ConfigError::new(
                    "LSG_MAX_BODY_BYTES",
                    "must be at most 1 GiB (1073741824)",
                ))
            }
        };
        Ok(ProxyConfig {
            providers,
            client_tokens: list(get("LSG_CLIENT_TOKENS")),
            allowed_origins: origins(get("LSG_ALLOWED_ORIGINS"))?,
            models,
            timeouts: json_numbers("LSG_TIMEOUTS", get("LSG_TIMEOUTS"), TIMEOUT_FIELDS)?,
            retry: json_numbers("LSG_RETRY", get("LSG_RETRY"), RETRY_FIELDS)?,
            heartbeat_ms: number(
                "LSG_HEARTBEAT_MS",
                get("LSG_HEARTBEAT_MS"),
                DEFAULT_HEARTBEAT_MS,
                false,
            )?,
            probe_ms: number("LSG_PROBE_MS", get("LSG_PROBE_MS"), DEFAULT_PROBE_MS, true)?,
            max_body_bytes,
            body_ms: number("LSG_BODY_MS", get("LSG_BODY_MS"), DEFAULT_BODY_MS, false)?,
            forward_fields: forward_fields(get("LSG_FORWARD_FIELDS"))?,
            max_tokens: whole_number("LSG_MAX_TOKENS", get("LSG_MAX_TOKENS"))?,
            guard: guard(get("LSG_GUARD"))?,
        })
    }

    /// The first provider whose `apiKeyEnv` names a variable that is not set (its key would be
    /// missing from every request to it, and the upstream would answer 401).
    pub fn missing_key(&self, get: impl Fn(&str) -> Option<String>) -> Option<ConfigError> {
        self.providers.iter().enumerate().find_map(|(i, p)| {
            let name = p.api_key_env.as_deref()?;
            set(get(name)).is_none().then(|| {
                ConfigError::new(
                    "LSG_PROVIDERS",
                    format!(
                        "[{i}].apiKeyEnv names {name}, which is not set (as a variable or secret)"
                    ),
                )
            })
        })
    }

    /// Whether `origin` is on the allowlist (exact match, ignoring ASCII case).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The failover chain for a request: providers serving the requested model first (in
    /// configured order), then the rest as fallbacks; the configured chain when no model is named.
    pub fn chain_for(&self, model: Option<&str>) -> Vec<&ProviderConfig> {
        let mut chain: Vec<&ProviderConfig> = Vec::with_capacity(self.providers.len());
        if let Some(model) = model {
            chain.extend(self.providers.iter().filter(|p| p.model == model));
        }
        chain.extend(
            self.providers
                .iter()
                .filter(|p| Some(p.model.as_str()) != model),
        );
        chain
    }
}
