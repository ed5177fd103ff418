//! The worker's configuration: read once per isolate from its `LSG_*` bindings, checked, and
//! every problem named by the variable it is in.
//!
//! What the bindings share with `generate()`'s options (deadlines, retries, a guard's settings,
//! unknown names with the nearest one, provider URLs) is read by the core's option reader
//! ([`crate::core::options`]) over their JSON, so a mistake gets the same verdict and the same
//! words in both places, and the configuration holds the reader's typed values; only what is
//! the worker's own (provider names, key variables and headers, origins, limits) is checked here.
//!
//! A [`ConfigError`] is for the operator's log, never for a client: it names the variable and
//! what is wrong, and it never quotes a value that may be secret (`LSG_CLIENT_TOKENS`, a
//! provider's `headers`, an API key; no number either: the bindings are read through
//! [`JsonSource::BINDING`]). Values that are not secret (an origin, a field name) are quoted
//! where that helps to find the mistake.

use super::request::GATED_FIELDS;
use crate::core::deadline::Timeouts;
use crate::core::guard::state::GuardConfig;
use crate::core::options::{
    check_url, nearest, read_guard_options, read_max_retries, read_retry, read_timeouts,
    unknown_key, JsonSource,
};
use crate::core::policy::RetryPolicy;
use serde_json::Value;
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

/// One configured provider (as `LSG_PROVIDERS` lists it), checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// Name for events, metrics and errors.
    pub name: String,
    /// The chat completions URL.
    pub url: String,
    /// The model to ask for.
    pub model: String,
    /// The name of the variable or secret holding the API key.
    pub api_key_env: Option<String>,
    /// Extra request headers (e.g. OpenRouter's `HTTP-Referer`, `X-OpenRouter-Title`).
    pub headers: Vec<(String, String)>,
    /// Its deadlines: its own `timeouts` over `LSG_TIMEOUTS` over the guard's defaults.
    pub timeouts: Timeouts,
    /// Its retry allowance: its own `maxRetries`, else `LSG_RETRY`'s.
    pub max_retries: u32,
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
    /// Every call's deadlines: `LSG_TIMEOUTS` over the guard's defaults.
    pub timeouts: Timeouts,
    /// Every call's retry policy: `LSG_RETRY` over the guard's defaults.
    pub retry: RetryPolicy,
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

/// A binding holding a JSON object (`LSG_TIMEOUTS`, `LSG_RETRY`, `LSG_GUARD`), if set.
/// serde_json's message is not passed on: it may quote the text.
fn json_object(variable: &str, value: Option<String>) -> Result<Option<Value>, ConfigError> {
    let Some(text) = set(value) else {
        return Ok(None);
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(value @ Value::Object(_)) => Ok(Some(value)),
        _ => Err(ConfigError::new(variable, "must be a JSON object")),
    }
}

/// `LSG_GUARD`, read by the guard's own option reader (so it is checked as `new Guard()`
/// checks its options).
fn guard(value: Option<String>) -> Result<Option<GuardConfig>, ConfigError> {
    let problem = |p: String| ConfigError::new("LSG_GUARD", p);
    let Some(value) = json_object("LSG_GUARD", value)? else {
        return Ok(None);
    };
    let keys = value.as_object().into_iter().flat_map(|o| o.keys());
    if let Some(unknown) = unknown_key(keys.map(String::as_str), WORKER_GUARD_OPTIONS, "") {
        return Err(problem(unknown));
    }
    read_guard_options(&JsonSource::BINDING, &value)
        .map(Some)
        .map_err(problem)
}

/// `LSG_TIMEOUTS` over the guard's defaults, read as `generate()` reads its `timeouts`.
fn timeouts(value: Option<String>) -> Result<Timeouts, ConfigError> {
    const VAR: &str = "LSG_TIMEOUTS";
    match json_object(VAR, value)? {
        None => Ok(Timeouts::default()),
        Some(value) => read_timeouts(&JsonSource::BINDING, &value, "", &Timeouts::default())
            .map_err(|problem| ConfigError::new(VAR, problem)),
    }
}

/// `LSG_RETRY` over the guard's defaults, read as `generate()` reads its `retry`.
fn retry(value: Option<String>) -> Result<RetryPolicy, ConfigError> {
    const VAR: &str = "LSG_RETRY";
    match json_object(VAR, value)? {
        None => Ok(RetryPolicy::default()),
        Some(value) => read_retry(&JsonSource::BINDING, &value, "")
            .map_err(|problem| ConfigError::new(VAR, problem)),
    }
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

/// Reads one `LSG_PROVIDERS` entry over the call's `timeouts` and `policy`; `place` is `[i]`.
/// Its `timeouts` and `maxRetries` are read as `generate()` reads a provider's. Nothing from
/// `headers` (where keys may be) is ever quoted.
fn provider(
    entry: &Value,
    place: &str,
    timeouts: &Timeouts,
    policy: &RetryPolicy,
) -> Result<ProviderConfig, String> {
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
    let text = |field: &str| {
        map.get(field)
            .and_then(Value::as_str)
            .filter(|text| !text.trim().is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("{place}.{field} must be a non-empty string"))
    };
    let (name, url, model) = (text("name")?, text("url")?, text("model")?);
    if let Err(problem) = check_url(&url, false) {
        return Err(format!("{place}.url {problem}"));
    }
    let api_key_env = match map.get("apiKeyEnv") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if is_binding_name(name) => Some(name.clone()),
        Some(_) => {
            return Err(format!(
                "{place}.apiKeyEnv must be the name of the variable or secret that holds the \
                 key (letters, digits and `_`), never the key itself"
            ))
        }
    };
    let headers = match map.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(headers)) => headers
            .iter()
            .map(|(name, value)| value.as_str().map(|value| (name.clone(), value.to_owned())))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("{place}.headers must be an object of strings"))?,
        Some(_) => return Err(format!("{place}.headers must be an object of strings")),
    };
    let path = format!("{place}.");
    let source = JsonSource::BINDING;
    let timeouts = match map.get("timeouts").filter(|v| !v.is_null()) {
        None => *timeouts,
        Some(own) => read_timeouts(&source, own, &format!("{path}timeouts."), timeouts)?,
    };
    let max_retries = read_max_retries(&source, entry, &path)?.unwrap_or(policy.max_retries);
    Ok(ProviderConfig {
        name,
        url,
        model,
        api_key_env,
        headers,
        timeouts,
        max_retries,
    })
}

fn providers(
    value: Option<String>,
    timeouts: &Timeouts,
    policy: &RetryPolicy,
) -> Result<Vec<ProviderConfig>, ConfigError> {
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
        let provider = provider(entry, &format!("[{i}]"), timeouts, policy)
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
        // The providers' deadlines and retries are over the call's: those are read first.
        let timeouts = timeouts(get("LSG_TIMEOUTS"))?;
        let retry = retry(get("LSG_RETRY"))?;
        let providers = providers(get("LSG_PROVIDERS"), &timeouts, &retry)?;
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
            timeouts,
            retry,
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
