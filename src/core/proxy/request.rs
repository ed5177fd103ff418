//! A client's request, checked: its declared size, its JSON, its model, and which of its fields
//! may go upstream.
//!
//! Fields are passed on by policy. Most chat parameters (`temperature`, `tools`, …) go upstream
//! as the client sent them. The [`GATED_FIELDS`] choose *other* models, providers, routes,
//! presets or paid features than the worker's configuration (OpenRouter's `models`,
//! `provider`, `route`, `plugins`, …): they are refused with a 400 naming the field unless
//! `LSG_FORWARD_FIELDS` lists them. `LSG_MAX_TOKENS` caps `max_tokens` and
//! `max_completion_tokens`: a larger value is refused (not clamped: a client asking for more
//! than it can get should be told, not handed a shorter answer it did not expect), and a
//! request naming neither is sent with `max_tokens` set to the cap.

use super::config::ProxyConfig;
use serde_json::{Map, Value};

/// Request fields that pick models, providers, routes, presets or paid features beyond the
/// worker's configuration: refused unless `LSG_FORWARD_FIELDS` lists them.
///
/// - `models`, `route`: OpenRouter's model fallback list and its routing mode;
/// - `provider`: OpenRouter's provider routing (order, `allow_fallbacks`, `only`, prices);
/// - `plugins`: OpenRouter's plugins (web search, file parsing: billed per use);
/// - `preset`: an OpenRouter preset, which can set any of the above;
/// - `web_search_options`: web search (OpenAI and OpenRouter; billed per use);
/// - `service_tier`: OpenAI's processing tier (`priority` costs more);
/// - `n`: several answers billed for one (the worker relays one): any value but 1.
pub const GATED_FIELDS: &[&str] = &[
    "models",
    "provider",
    "route",
    "plugins",
    "preset",
    "web_search_options",
    "service_tier",
    "n",
];

/// The fields `LSG_MAX_TOKENS` caps.
pub const TOKEN_FIELDS: &[&str] = &["max_tokens", "max_completion_tokens"];

/// A client's chat request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The requested model, if any (already checked against the allowlist).
    pub model: Option<String>,
    /// Whether to stream (default false, as OpenAI's API says).
    pub stream: bool,
    /// The messages, passed on as they are.
    pub messages: Vec<Value>,
    /// Every other field, passed on as request parameters.
    pub params: Map<String, Value>,
}

/// A refusal or a final failure: HTTP status, an OpenAI-style error, and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// HTTP status to answer with.
    pub status: u16,
    /// OpenAI error `type`.
    pub error_type: &'static str,
    /// OpenAI error `code`.
    pub code: &'static str,
    /// What was wrong (never contains secrets).
    pub message: String,
    /// The request field at fault (OpenAI's `param`), if one is.
    pub param: Option<String>,
    /// Headers to answer with (`Allow`, `Retry-After`, `x-should-retry`).
    pub headers: Vec<(&'static str, String)>,
}

impl Refusal {
    /// A refusal with no `param` and no headers.
    pub fn new(
        status: u16,
        error_type: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Refusal {
        Refusal {
            status,
            error_type,
            code,
            message: message.into(),
            param: None,
            headers: Vec::new(),
        }
    }

    pub(super) fn bad_request(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal::new(400, "invalid_request_error", code, message)
    }

    fn param(mut self, field: &str) -> Refusal {
        self.param = Some(field.to_owned());
        self
    }

    /// The same refusal with one more header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Refusal {
        self.headers.push((name, value.into()));
        self
    }

    /// `{"error":{"message","type","code"}}`, with `param` when a field is at fault.
    pub fn body(&self) -> String {
        let mut error = serde_json::json!({
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
        });
        if let Some(param) = &self.param {
            error["param"] = Value::String(param.clone());
        }
        serde_json::json!({ "error": error }).to_string()
    }
}

/// An OpenAI-style error body.
pub fn error_body(message: &str, error_type: &str, code: &str) -> String {
    serde_json::json!({"error": {"message": message, "type": error_type, "code": code}}).to_string()
}

/// The refusal for a declared `Content-Length`, before a byte of the body is read: 413 when
/// it is over `limit`, whatever its size (it is compared as text, so 2^32 and 10^30 are refused
/// like 2^20, on a 32-bit `usize` too), 400 when it is not a length at all.
pub fn check_content_length(value: Option<&str>, limit: usize) -> Result<(), Refusal> {
    let Some(value) = value.map(str::trim) else {
        return Ok(());
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::bad_request(
            "invalid_content_length",
            "Content-Length must be a whole number of bytes",
        ));
    }
    let digits = value.trim_start_matches('0');
    // More than 19 digits does not fit a u64, and is over any limit.
    let too_large = digits.len() > 19
        || (!digits.is_empty() && digits.parse::<u64>().map_or(true, |n| n > limit as u64));
    if too_large {
        Err(too_large_refusal(limit))
    } else {
        Ok(())
    }
}

/// 413 for a body over `limit` bytes.
pub fn too_large_refusal(limit: usize) -> Refusal {
    Refusal::new(
        413,
        "invalid_request_error",
        "body_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

/// 408 for a body that did not arrive within `ms`.
pub fn body_timeout_refusal(ms: f64) -> Refusal {
    Refusal::new(
        408,
        "invalid_request_error",
        "body_timeout",
        format!("the request body did not arrive within {ms} ms"),
    )
}

/// The cap check of one token field: a positive whole number at most `cap`.
fn check_tokens(field: &str, value: &Value, cap: Option<u64>) -> Result<(), Refusal> {
    let Some(n) = value.as_u64().filter(|n| *n > 0) else {
        return Err(Refusal::bad_request(
            "invalid_max_tokens",
            format!("{field} must be a positive whole number"),
        )
        .param(field));
    };
    match cap {
        Some(cap) if n > cap => Err(Refusal::bad_request(
            "max_tokens_too_large",
            format!("{field} is {n}; this worker allows at most {cap}"),
        )
        .param(field)),
        _ => Ok(()),
    }
}

/// Check a request body against the configuration.
pub fn parse_chat_request(body: &str, config: &ProxyConfig) -> Result<ChatRequest, Refusal> {
    let mut object = match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(Refusal::bad_request(
                "invalid_body",
                "the request body must be a JSON object",
            ))
        }
        Err(e) => {
            return Err(Refusal::bad_request(
                "invalid_json",
                format!("the request body is not valid JSON: {e}"),
            ))
        }
    };
    let messages = match object.remove("messages") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        _ => {
            return Err(Refusal::bad_request(
                "invalid_messages",
                "messages must be a non-empty array",
            )
            .param("messages"))
        }
    };
    let model = match object.remove("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(model)) => Some(model),
        Some(_) => {
            return Err(
                Refusal::bad_request("invalid_model", "model must be a string").param("model"),
            )
        }
    };
    if let Some(model) = &model {
        if !config.models.iter().any(|m| m == model) {
            return Err(Refusal::bad_request(
                "model_not_allowed",
                format!("model {model:?} is not allowed here"),
            )
            .param("model"));
        }
    }
    let stream = match object.remove("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => stream,
        Some(_) => {
            return Err(
                Refusal::bad_request("invalid_stream", "stream must be a boolean").param("stream"),
            )
        }
    };
    // Options that only make sense between the client and this worker are not passed on.
    object.remove("stream_options");
    // Null means "not set" in OpenAI's API: a null gated or capped field is dropped, not
    // refused (and a null never counts as a value that would have been capped).
    object.retain(|key, value| {
        !(value.is_null()
            && (GATED_FIELDS.contains(&key.as_str()) || TOKEN_FIELDS.contains(&key.as_str())))
    });
    for field in GATED_FIELDS {
        let Some(value) = object.get(*field) else {
            continue;
        };
        if *field == "n" && value.as_u64() == Some(1) {
            continue;
        }
        if !config.forward_fields.iter().any(|f| f == field) {
            return Err(Refusal::bad_request(
                "field_not_allowed",
                format!(
                    "the field `{field}` is not accepted here: it chooses models, providers, \
                     routes or billed features beyond this worker's configuration"
                ),
            )
            .param(field));
        }
    }
    let mut named_tokens = false;
    for field in TOKEN_FIELDS {
        if let Some(value) = object.get(*field) {
            named_tokens = true;
            check_tokens(field, value, config.max_tokens)?;
        }
    }
    if let (Some(cap), false) = (config.max_tokens, named_tokens) {
        object.insert("max_tokens".into(), Value::from(cap));
    }
    Ok(ChatRequest {
        model,
        stream,
        messages,
        params: object,
    })
}
