//! The edge worker's decisions: configuration, access control, request checks, provider order,
//! and the OpenAI-compatible bytes it answers with. Pure: strings in, strings and decisions out.
//!
//! Configuration comes from bindings / environment variables with these names:
//! - `LSG_PROVIDERS`: JSON array of `{ name, url, model, apiKeyEnv?, headers?, timeouts?, maxRetries? }`;
//!   `apiKeyEnv` names the variable or secret that holds the key (never the key itself).
//! - `LSG_CLIENT_TOKENS`: comma-separated bearer tokens that clients may present.
//! - `LSG_ALLOWED_ORIGINS`: comma-separated origins allowed without a token (browsers, with CORS).
//! - `LSG_MODELS`: comma-separated model allowlist; unset means the models in `LSG_PROVIDERS`.
//! - `LSG_TIMEOUTS`: JSON with the `Timeouts` fields (`headersMs`, `firstTokenMs`, …).
//! - `LSG_RETRY`: JSON `{ maxRetries?, baseDelayMs?, maxDelayMs? }`.
//! - `LSG_HEARTBEAT_MS`: SSE comment heartbeat interval (default 10 000).
//! - `LSG_MAX_BODY_BYTES`: request body limit (default 262 144).
//! - `LSG_PROBE_MS`: while nothing else is sent, a single LF every this many milliseconds
//!   (default 25; 0 turns probes off), so a vanished client is noticed promptly.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Default heartbeat interval.
pub const DEFAULT_HEARTBEAT_MS: f64 = 10_000.0;
/// Default liveness probe interval.
pub const DEFAULT_PROBE_MS: f64 = 25.0;
/// Default request body limit: 256 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

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
    /// Accepted origins.
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
}

fn list(value: Option<String>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn json_object(name: &str, value: Option<String>) -> Result<Map<String, Value>, String> {
    match value.filter(|v| !v.trim().is_empty()) {
        None => Ok(Map::new()),
        Some(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(format!("{name} must be a JSON object")),
        },
    }
}

impl ProxyConfig {
    /// Read the configuration through `get` (a binding or environment lookup).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<ProxyConfig, String> {
        let providers_text = get("LSG_PROVIDERS").ok_or("LSG_PROVIDERS is not set")?;
        let providers: Vec<ProviderConfig> =
            serde_json::from_str(&providers_text).map_err(|e| {
                format!(
                    "LSG_PROVIDERS must be a JSON array of {{name, url, model, apiKeyEnv?}}: {e}"
                )
            })?;
        if providers.is_empty() {
            return Err("LSG_PROVIDERS must name at least one provider".into());
        }
        let mut models = list(get("LSG_MODELS"));
        if models.is_empty() {
            for p in &providers {
                if !models.contains(&p.model) {
                    models.push(p.model.clone());
                }
            }
        }
        let heartbeat_ms = match get("LSG_HEARTBEAT_MS").filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_HEARTBEAT_MS,
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or("LSG_HEARTBEAT_MS must be a positive number of milliseconds")?,
        };
        let probe_ms = match get("LSG_PROBE_MS").filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_PROBE_MS,
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or("LSG_PROBE_MS must be a non-negative number of milliseconds")?,
        };
        let max_body_bytes = match get("LSG_MAX_BODY_BYTES").filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or("LSG_MAX_BODY_BYTES must be a positive whole number")?,
        };
        Ok(ProxyConfig {
            providers,
            client_tokens: list(get("LSG_CLIENT_TOKENS")),
            allowed_origins: list(get("LSG_ALLOWED_ORIGINS")),
            models,
            timeouts: json_object("LSG_TIMEOUTS", get("LSG_TIMEOUTS"))?,
            retry: json_object("LSG_RETRY", get("LSG_RETRY"))?,
            heartbeat_ms,
            probe_ms,
            max_body_bytes,
        })
    }

    /// Whether `origin` is on the allowlist (exact match, or `*`).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == "*" || o == origin)
    }

    /// Who may make this request: a client token, an allowed origin, or nobody.
    pub fn authorize(&self, authorization: Option<&str>, origin: Option<&str>) -> Access {
        if let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) {
            let token = token.trim();
            if self
                .client_tokens
                .iter()
                .any(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
            {
                return Access::Token;
            }
        }
        match origin {
            Some(origin) if self.origin_allowed(origin) => Access::Origin,
            _ => Access::Denied,
        }
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

/// Comparison whose time does not depend on where the inputs first differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The result of access control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A configured client token was presented.
    Token,
    /// The request came from an allowed origin.
    Origin,
    /// Neither: refuse with 401.
    Denied,
}

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

/// A refusal: HTTP status plus an OpenAI-style error.
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
}

impl Refusal {
    fn bad_request(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status: 400,
            error_type: "invalid_request_error",
            code,
            message: message.into(),
        }
    }

    /// `{"error":{"message","type","code"}}`.
    pub fn body(&self) -> String {
        error_body(&self.message, self.error_type, self.code)
    }
}

/// An OpenAI-style error body.
pub fn error_body(message: &str, error_type: &str, code: &str) -> String {
    serde_json::json!({"error": {"message": message, "type": error_type, "code": code}}).to_string()
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
            ))
        }
    };
    let model = match object.remove("model") {
        None | Some(Value::Null) => None,
        Some(Value::String(model)) => Some(model),
        Some(_) => {
            return Err(Refusal::bad_request(
                "invalid_model",
                "model must be a string",
            ))
        }
    };
    if let Some(model) = &model {
        if !config.models.iter().any(|m| m == model) {
            return Err(Refusal::bad_request(
                "model_not_allowed",
                format!("model {model:?} is not allowed here"),
            ));
        }
    }
    let stream = match object.remove("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => stream,
        Some(_) => {
            return Err(Refusal::bad_request(
                "invalid_stream",
                "stream must be a boolean",
            ))
        }
    };
    // Options that only make sense between the client and this worker are not passed on.
    object.remove("stream_options");
    Ok(ChatRequest {
        model,
        stream,
        messages,
        params: object,
    })
}

/// The HTTP status and OpenAI error `type` for a generation that failed before any byte was
/// sent: 504 for timeouts, 400 when the upstream refused the request itself, 502 otherwise.
pub fn failure_status(kind: &str, upstream_status: Option<u16>) -> (u16, &'static str) {
    match (kind, upstream_status) {
        ("timeout", _) => (504, "timeout_error"),
        ("http", Some(400 | 413 | 422)) => (400, "invalid_request_error"),
        ("config", _) => (500, "server_error"),
        ("aborted", _) => (499, "cancelled"),
        _ => (502, "upstream_error"),
    }
}

/// Builds the OpenAI `chat.completion.chunk` events of one streamed answer.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    id: String,
    created: u64,
    model: String,
    sent_role: bool,
}

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<OutChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    delta: OutDelta<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct OutDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

impl ChunkWriter {
    /// Chunks with this id, creation time (Unix seconds) and model.
    pub fn new(id: String, created: u64, model: String) -> ChunkWriter {
        ChunkWriter {
            id,
            created,
            model,
            sent_role: false,
        }
    }

    /// The model named in later chunks (the provider that is answering).
    pub fn set_model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
    }

    fn event(&self, chunk: &OutChunk<'_>) -> String {
        let json = serde_json::to_string(chunk).unwrap_or_default();
        format!("data: {json}\n\n")
    }

    fn chunk<'a>(&'a self, delta: OutDelta<'a>, finish_reason: Option<&'a str>) -> OutChunk<'a> {
        OutChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![OutChoice {
                index: 0,
                delta,
                finish_reason,
            }],
            usage: None,
            error: None,
        }
    }

    /// A piece of answer text (the first one also carries `role: "assistant"`).
    pub fn text(&mut self, text: &str) -> String {
        let role = (!self.sent_role).then_some("assistant");
        self.sent_role = true;
        self.event(&self.chunk(
            OutDelta {
                role,
                content: Some(text),
            },
            None,
        ))
    }

    /// The finish chunk, then a usage chunk (if known), then `[DONE]`.
    pub fn finish(&mut self, finish_reason: &str, usage: Option<&Value>) -> String {
        let mut out = self.event(&self.chunk(
            OutDelta {
                role: None,
                content: Some(""),
            },
            Some(finish_reason),
        ));
        if let Some(usage) = usage {
            let mut chunk = self.chunk(
                OutDelta {
                    role: None,
                    content: None,
                },
                None,
            );
            chunk.choices.clear();
            chunk.usage = Some(usage);
            out.push_str(&self.event(&chunk));
        }
        out.push_str("data: [DONE]\n\n");
        out
    }

    /// The final chunk of an answer cut short: OpenRouter's mid-stream error shape
    /// (`error: {code, message}` and `finish_reason: "error"`), then `[DONE]`.
    pub fn error(&mut self, code: u16, kind: &str, message: &str) -> String {
        // When no text went out, this is the first chunk: it carries the role like any first chunk.
        let role = (!self.sent_role).then_some("assistant");
        self.sent_role = true;
        let mut chunk = self.chunk(
            OutDelta {
                role,
                content: Some(""),
            },
            Some("error"),
        );
        chunk.error =
            Some(serde_json::json!({"code": code, "message": message, "metadata": {"kind": kind}}));
        let mut out = self.event(&chunk);
        out.push_str("data: [DONE]\n\n");
        out
    }
}

/// A whole non-streaming `chat.completion` body.
pub fn completion_body(
    id: &str,
    created: u64,
    model: &str,
    text: &str,
    finish_reason: &str,
    usage: Option<&Value>,
) -> String {
    let mut body = serde_json::json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
    });
    if let Some(usage) = usage {
        body["usage"] = usage.clone();
    }
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<ProxyConfig, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyConfig::from_env(|name| map.get(name).cloned())
    }

    const PROVIDERS: &str = r#"[{"name":"openrouter","url":"https://x/v1/chat/completions","model":"a/b","apiKeyEnv":"OPENROUTER_API_KEY"},{"name":"local","url":"http://127.0.0.1:1/v1/chat/completions","model":"local/m"}]"#;

    #[test]
    fn reads_the_configuration_with_defaults() {
        let c = config(&[
            ("LSG_PROVIDERS", PROVIDERS),
            ("LSG_CLIENT_TOKENS", " t1 , t2,"),
            ("LSG_TIMEOUTS", r#"{"idleMs":500}"#),
        ])
        .unwrap();
        assert_eq!(c.providers.len(), 2);
        assert_eq!(
            c.providers[0].api_key_env.as_deref(),
            Some("OPENROUTER_API_KEY")
        );
        assert_eq!(c.client_tokens, ["t1", "t2"]);
        assert_eq!(
            c.models,
            ["a/b", "local/m"],
            "unset LSG_MODELS means the providers' models"
        );
        assert_eq!(c.heartbeat_ms, 10_000.0);
        assert_eq!(c.probe_ms, 25.0);
        assert_eq!(c.max_body_bytes, 262_144);
        assert_eq!(c.timeouts["idleMs"], 500);
        let c = config(&[
            ("LSG_PROVIDERS", PROVIDERS),
            ("LSG_MODELS", "x/y"),
            ("LSG_HEARTBEAT_MS", "250"),
        ])
        .unwrap();
        assert_eq!(
            (c.models.as_slice(), c.heartbeat_ms),
            (&["x/y".to_string()][..], 250.0)
        );
    }

    #[test]
    fn refuses_bad_configuration() {
        assert!(config(&[]).unwrap_err().contains("LSG_PROVIDERS"));
        assert!(config(&[("LSG_PROVIDERS", "[]")]).is_err());
        assert!(config(&[("LSG_PROVIDERS", "{")]).is_err());
        assert!(config(&[("LSG_PROVIDERS", PROVIDERS), ("LSG_HEARTBEAT_MS", "-1")]).is_err());
        assert!(config(&[("LSG_PROVIDERS", PROVIDERS), ("LSG_TIMEOUTS", "[1]")]).is_err());
    }

    #[test]
    fn access_needs_a_token_or_an_allowed_origin() {
        let c = config(&[
            ("LSG_PROVIDERS", PROVIDERS),
            ("LSG_CLIENT_TOKENS", "secret-token"),
            ("LSG_ALLOWED_ORIGINS", "https://app.example"),
        ])
        .unwrap();
        assert_eq!(
            c.authorize(Some("Bearer secret-token"), None),
            Access::Token
        );
        assert_eq!(
            c.authorize(Some("Bearer secret-tokeX"), None),
            Access::Denied
        );
        assert_eq!(c.authorize(Some("secret-token"), None), Access::Denied);
        assert_eq!(
            c.authorize(None, Some("https://app.example")),
            Access::Origin
        );
        assert_eq!(
            c.authorize(None, Some("https://evil.example")),
            Access::Denied
        );
        assert_eq!(c.authorize(None, None), Access::Denied);
    }

    #[test]
    fn requests_are_checked_and_the_chain_puts_the_requested_model_first() {
        let c = config(&[("LSG_PROVIDERS", PROVIDERS)]).unwrap();
        let r = parse_chat_request(r#"{"model":"local/m","messages":[{"role":"user","content":"hi"}],"stream":true,"temperature":0.2,"stream_options":{}}"#, &c).unwrap();
        assert_eq!(r.model.as_deref(), Some("local/m"));
        assert!(r.stream);
        assert_eq!(r.params.keys().collect::<Vec<_>>(), ["temperature"]);
        let names: Vec<&str> = c
            .chain_for(r.model.as_deref())
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(names, ["local", "openrouter"]);
        let names: Vec<&str> = c.chain_for(None).iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["openrouter", "local"]);
        let refused = parse_chat_request(r#"{"model":"gpt/x","messages":[{}]}"#, &c).unwrap_err();
        assert_eq!((refused.status, refused.code), (400, "model_not_allowed"));
        assert_eq!(
            parse_chat_request("nope", &c).unwrap_err().code,
            "invalid_json"
        );
        assert_eq!(
            parse_chat_request(r#"{"messages":[]}"#, &c)
                .unwrap_err()
                .code,
            "invalid_messages"
        );
        assert!(
            !parse_chat_request(r#"{"messages":[{}]}"#, &c)
                .unwrap()
                .stream,
            "stream defaults to false"
        );
    }

    #[test]
    fn failure_statuses() {
        assert_eq!(failure_status("timeout", None).0, 504);
        assert_eq!(failure_status("http", Some(422)).0, 400);
        assert_eq!(failure_status("http", Some(503)).0, 502);
        assert_eq!(failure_status("upstream", None).0, 502);
        assert_eq!(failure_status("protocol", None).0, 502);
    }

    #[test]
    fn chunks_are_openai_shaped() {
        let mut w = ChunkWriter::new("chatcmpl-1".into(), 7, "m/x".into());
        let first: Value =
            serde_json::from_str(w.text("Hel").strip_prefix("data: ").unwrap().trim()).unwrap();
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(first["choices"][0]["delta"]["content"], "Hel");
        let second: Value =
            serde_json::from_str(w.text("lo").strip_prefix("data: ").unwrap().trim()).unwrap();
        assert!(second["choices"][0]["delta"].get("role").is_none());
        let usage = serde_json::json!({"prompt_tokens":1,"completion_tokens":2,"total_tokens":3});
        let end = w.finish("stop", Some(&usage));
        let events: Vec<&str> = end.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 3);
        assert!(events[0].contains("\"finish_reason\":\"stop\""));
        assert!(events[1].contains("\"choices\":[]") && events[1].contains("\"total_tokens\":3"));
        assert_eq!(events[2], "data: [DONE]");
        let mut fresh = ChunkWriter::new("chatcmpl-2".into(), 7, "m/x".into());
        let first: Value = serde_json::from_str(
            fresh
                .error(502, "upstream", "x")
                .split("\n\n")
                .next()
                .unwrap()
                .strip_prefix("data: ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            first["choices"][0]["delta"]["role"], "assistant",
            "an error as the first chunk has the role"
        );
        let error = w.error(504, "timeout", "idle timeout");
        assert!(
            error.contains("\"finish_reason\":\"error\"")
                && error.contains("\"code\":504")
                && error.ends_with("data: [DONE]\n\n")
        );
    }
}
