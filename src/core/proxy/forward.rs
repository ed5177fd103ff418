//! What the worker forwards: the client's body as it sent it (after the request checks, with
//! `max_tokens` added when the cap applies and the request names no limit), and the relay's
//! settings from the configuration (the chain with each provider's key, headers, deadlines and
//! retries; the call's retry policy). The relay splices each provider's `model` in, and asks
//! for usage on streams.
//!
//! It must never re-encode the client's body: what the checks read is a parsed copy.

use super::config::ProxyConfig;
use super::request::{parse_chat_request, Refusal};
use crate::core::progress::json::field_span;
use crate::core::relay::{asks_usage, RelayProvider};
use serde_json::{Map, Value};

/// The API a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/responses` (OpenAI's Responses API).
    Responses,
    /// `POST /v1/messages` (Anthropic's Messages API).
    Messages,
}

/// A client's request, checked, as it goes upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    /// The body every provider gets (with its own `model`).
    pub body: String,
    /// The model asked for, if any (on the allowlist).
    pub model: Option<String>,
    /// Whether it asks for a stream.
    pub stream: bool,
    /// Whether it asks for the usage chunk.
    pub asks_usage: bool,
}

/// Checks `body` against the configuration (the same checks for both APIs: a JSON object, a
/// model on the allowlist, `stream` a boolean, gated fields, the token cap; chat also needs
/// `messages`, the Responses API `input`).
pub fn forward(body: &str, config: &ProxyConfig, api: Api) -> Result<Forward, Refusal> {
    let checked = match api {
        // Messages has `messages`, `model`, `stream` and `max_tokens` where chat has them.
        Api::Chat | Api::Messages => parse_chat_request(body, config)?,
        Api::Responses => {
            // The Responses API's input takes the place of messages for the shared checks;
            // its token limit is `max_output_tokens`.
            let mut object = match serde_json::from_str::<Value>(body) {
                Ok(Value::Object(object)) => object,
                _ => parse_chat_request(body, config).map(|_| Map::new())?,
            };
            let input = object.remove("input").filter(|v| !v.is_null());
            let Some(input) = input else {
                return Err(Refusal::new(
                    400,
                    "invalid_request_error",
                    "invalid_input",
                    "input is required",
                ));
            };
            if let Some(limit) = object.remove("max_output_tokens") {
                object.insert("max_tokens".into(), limit);
            }
            object.insert("messages".into(), Value::Array(vec![input]));
            let text = Value::Object(object).to_string();
            parse_chat_request(&text, config)?
        }
    };
    let token_field = match api {
        Api::Chat | Api::Messages => "max_tokens",
        Api::Responses => "max_output_tokens",
    };
    let names_limit = ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .any(|f| field_span(body, f).is_some_and(|span| body[span].trim() != "null"));
    let body = match (config.max_tokens, names_limit) {
        (Some(cap), false) => with_field(body, token_field, &cap.to_string()),
        _ => body.to_owned(),
    };
    Ok(Forward {
        asks_usage: asks_usage(&body),
        body,
        model: checked.model,
        stream: checked.stream,
    })
}

/// `body` with `"name":value` added as its first field, every other byte unchanged.
fn with_field(body: &str, name: &str, value: &str) -> String {
    let Some(open) = body.find('{') else {
        return body.to_owned();
    };
    let rest = body[open + 1..].trim_start();
    let separator = if rest.starts_with('}') { "" } else { "," };
    [
        &body[..open + 1],
        "\"",
        name,
        "\":",
        value,
        separator,
        &body[open + 1..],
    ]
    .concat()
}

/// A provider's URL for `api`: the configured chat completions URL, or its `/responses` or
/// `/messages` sibling (the query kept).
pub fn endpoint(url: &str, api: Api) -> String {
    if api == Api::Chat {
        return url.to_owned();
    }
    let (path, query) = match url.find(['?', '#']) {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let path = path.strip_suffix('/').unwrap_or(path);
    let sibling = match api {
        Api::Messages => "/messages",
        _ => "/responses",
    };
    match path.strip_suffix("/chat/completions") {
        Some(base) => [base, sibling, query].concat(),
        None => url.to_owned(),
    }
}

impl ProxyConfig {
    /// The relay's chain for a request naming `model` (see [`ProxyConfig::chain_for`]), each
    /// provider with its key (looked up by `key`), headers, deadlines and retry allowance (read
    /// and checked with the configuration).
    pub fn targets(
        &self,
        model: Option<&str>,
        api: Api,
        key: impl Fn(&str) -> Option<String>,
    ) -> Vec<RelayProvider> {
        self.chain_for(model)
            .into_iter()
            .map(|p| RelayProvider {
                name: p.name.clone(),
                url: endpoint(&p.url, api),
                model: p.model.clone(),
                api_key: p.api_key_env.as_deref().and_then(&key),
                headers: p.headers.clone(),
                timeouts: p.timeouts,
                max_retries: p.max_retries,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(env: &[(&str, &str)]) -> ProxyConfig {
        let providers = r#"[{"name":"a","url":"http://127.0.0.1:9/v1/chat/completions?tag=x","model":"m","apiKeyEnv":"KEY","timeouts":{"idleMs":50}},{"name":"b","url":"http://127.0.0.1:9/b/v1/chat/completions","model":"n","maxRetries":0}]"#;
        ProxyConfig::from_env(|name| match name {
            "LSG_PROVIDERS" => Some(providers.to_owned()),
            _ => env
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string()),
        })
        .unwrap()
    }

    #[test]
    fn the_body_goes_on_as_sent_with_the_cap_added_only_when_no_limit_is_named() {
        let body = "{ \"model\":\"m\", \"messages\":[{\"role\":\"user\",\"content\":\"x\"}], \"tools\":[{\"type\":\"function\"}], \"stream\":true, \"stream_options\":{\"include_usage\":true} }";
        let out = forward(body, &config(&[]), Api::Chat).unwrap();
        assert_eq!(out.body, body);
        assert!(out.stream && out.asks_usage);
        assert_eq!(out.model.as_deref(), Some("m"));
        let capped = forward(body, &config(&[("LSG_MAX_TOKENS", "64")]), Api::Chat).unwrap();
        assert_eq!(capped.body, body.replacen('{', "{\"max_tokens\":64,", 1));
        let named = body.replace("\"stream\":true", "\"max_tokens\":10,\"stream\":true");
        let out = forward(&named, &config(&[("LSG_MAX_TOKENS", "64")]), Api::Chat).unwrap();
        assert_eq!(out.body, named);
        assert!(forward("{\"messages\":[]}", &config(&[]), Api::Chat).is_err());
        assert!(forward(
            "{\"messages\":[1],\"provider\":{}}",
            &config(&[]),
            Api::Chat
        )
        .is_err_and(|r| r.param.as_deref() == Some("provider")));
    }

    #[test]
    fn a_responses_request_needs_input_and_is_checked_alike() {
        let body = "{\"model\":\"m\",\"input\":\"hi\",\"stream\":true}";
        let out = forward(body, &config(&[("LSG_MAX_TOKENS", "9")]), Api::Responses).unwrap();
        assert_eq!(
            out.body,
            "{\"max_output_tokens\":9,\"model\":\"m\",\"input\":\"hi\",\"stream\":true}"
        );
        assert!(forward("{\"model\":\"m\"}", &config(&[]), Api::Responses).is_err());
        assert!(forward(
            "{\"model\":\"zz\",\"input\":\"x\"}",
            &config(&[]),
            Api::Responses
        )
        .is_err());
        assert!(forward(
            "{\"input\":\"x\",\"max_output_tokens\":99}",
            &config(&[("LSG_MAX_TOKENS", "9")]),
            Api::Responses
        )
        .is_err());
    }

    #[test]
    fn a_messages_request_is_checked_as_chat_and_capped_in_max_tokens() {
        let body = "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],\"stream\":true}";
        let out = forward(body, &config(&[]), Api::Messages).unwrap();
        assert_eq!(out.body, body, "forwarded as sent");
        assert!(out.stream);
        assert!(forward("{\"model\":\"m\"}", &config(&[]), Api::Messages).is_err());
        let uncapped = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
        let out = forward(uncapped, &config(&[("LSG_MAX_TOKENS", "9")]), Api::Messages).unwrap();
        assert!(out.body.starts_with("{\"max_tokens\":9,"), "{}", out.body);
        assert!(forward(body, &config(&[("LSG_MAX_TOKENS", "4")]), Api::Messages).is_err());
    }

    #[test]
    fn targets_carry_keys_deadlines_retries_and_the_apis_endpoint() {
        let config = config(&[
            ("LSG_TIMEOUTS", "{\"headersMs\":70}"),
            ("LSG_RETRY", "{\"maxRetries\":1}"),
        ]);
        let key = |name: &str| (name == "KEY").then(|| "sk-1".to_owned());
        let chain = config.targets(Some("n"), Api::Chat, key);
        assert_eq!(chain[0].name, "b", "the model's providers first");
        assert_eq!(chain[0].max_retries, 0);
        assert_eq!(chain[1].max_retries, 1);
        assert_eq!(chain[1].api_key.as_deref(), Some("sk-1"));
        assert_eq!(chain[1].timeouts.idle_ms, 50.0);
        assert_eq!(chain[1].timeouts.headers_ms, 70.0);
        let responses = config.targets(None, Api::Responses, key);
        assert_eq!(responses[0].url, "http://127.0.0.1:9/v1/responses?tag=x");
        let messages = config.targets(None, Api::Messages, key);
        assert_eq!(messages[0].url, "http://127.0.0.1:9/v1/messages?tag=x");
        assert_eq!(config.retry.max_retries, 1);
    }
}
