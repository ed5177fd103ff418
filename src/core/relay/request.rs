//! The pure pieces of a relayed request: what kind of request an SDK sent, the request each
//! fallback provider gets (the SDK's own body with `model` spliced in place, its own key and
//! URL), the keys to keep out of messages, and the bytes the guard writes itself (the failure
//! response's JSON, the final event of a stream cut after text).
//!
//! It must never re-encode the SDK's body: a fallback's body is the caller's text with one
//! string value replaced, every other byte as sent.

use crate::core::machine::push_json_string;
use crate::core::progress::json::{field_span, string};
use crate::core::progress::Format;

/// What an SDK's request is, for the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A JSON `POST` with `"stream": true`: every deadline layer, held until first progress.
    Stream,
    /// Any other JSON `POST` (a completion asked for whole): headers and service deadlines,
    /// retries and failover before the response head.
    Json,
    /// Anything else (a models list, a file upload, a `GET`): passed through once, with the
    /// headers and service deadlines only.
    Other,
}

impl RequestKind {
    /// The kind of a request with this method and body text (`None`: no body, or not text).
    pub fn of(method: &str, body: Option<&str>) -> RequestKind {
        let Some(body) = body.filter(|_| method.eq_ignore_ascii_case("POST")) else {
            return RequestKind::Other;
        };
        if !body.trim_start().starts_with('{') || !is_object(body) {
            return RequestKind::Other;
        }
        match field_span(body, "stream").map(|span| &body[span]) {
            Some("true") => RequestKind::Stream,
            _ => RequestKind::Json,
        }
    }
}

/// Whether `text` is one JSON object's text (braces first and last, brackets balanced).
fn is_object(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.starts_with('{') && trimmed.ends_with('}') && balanced(trimmed)
}

/// Whether brackets outside strings balance (a cheap check that the object is not cut).
fn balanced(text: &str) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0i64, false, false);
    for byte in text.bytes() {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'{' | b'[') => depth += 1,
            (false, _, b'}' | b']') => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0 && !in_string
}

/// The `model` the body asks for (`""` when it names none).
pub fn model_of(body: &str) -> String {
    field_span(body, "model")
        .and_then(|span| string(&body[span]).map(|model| model.into_owned()))
        .unwrap_or_default()
}

/// `body` with its `model` replaced by `model`: the old value's bytes swapped for the new JSON
/// string, every other byte unchanged; added as the first field when the body has none.
/// `None` when `body` is not a JSON object.
pub fn with_model(body: &str, model: &str) -> Option<String> {
    let mut quoted = String::with_capacity(model.len() + 2);
    push_json_string(&mut quoted, model);
    if let Some(span) = field_span(body, "model") {
        return Some([&body[..span.start], &quoted, &body[span.end..]].concat());
    }
    let open = body.find('{')?;
    let rest = &body[open + 1..];
    let separator = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    Some(format!(
        "{}{{\"model\":{quoted}{separator}{rest}",
        &body[..open]
    ))
}

/// The request's own endpoint's name for events and messages: its host (and port), without
/// any user or password.
pub fn host_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.is_empty() {
        "origin".to_owned()
    } else {
        host.to_owned()
    }
}

/// Headers that carry a key: replaced for a fallback, their values kept out of messages.
const KEY_HEADERS: [&str; 3] = ["authorization", "x-api-key", "api-key"];

/// The keys the SDK's own request carries (`Authorization: Bearer …`, `x-api-key`, `api-key`).
pub fn request_keys(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(name, _)| KEY_HEADERS.iter().any(|k| name.eq_ignore_ascii_case(k)))
        .map(|(_, value)| {
            let value = value.trim();
            let key = value
                .get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .map_or(value, |_| value[7..].trim());
            key.to_owned()
        })
        .filter(|key| !key.is_empty())
        .collect()
}

/// The headers a fallback provider gets: the SDK's own, without its key and the headers the
/// platform sets (`content-length`, `host`), then the provider's own (replacing any of the same
/// name), then its key, in the header the SDK used for its own (`x-api-key` for Anthropic's,
/// else `Authorization: Bearer`).
pub fn fallback_headers(
    sdk_headers: &[(String, String)],
    provider_headers: &[(String, String)],
    api_key: Option<&str>,
) -> Vec<(String, String)> {
    let dropped = |name: &str| {
        KEY_HEADERS
            .iter()
            .chain(&["content-length", "host"])
            .any(|k| name.eq_ignore_ascii_case(k))
    };
    let mut headers: Vec<(String, String)> = sdk_headers
        .iter()
        .filter(|(name, _)| !dropped(name))
        .cloned()
        .collect();
    for (name, value) in provider_headers {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.clone(), value.clone()));
    }
    if let Some(key) = api_key.filter(|k| !k.is_empty()) {
        let anthropic = sdk_headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("x-api-key"));
        match anthropic {
            true => headers.push(("x-api-key".into(), key.into())),
            false => headers.push(("Authorization".into(), ["Bearer ", key].concat())),
        }
    }
    headers
}

/// The JSON body of the guard's own failure response, shaped as OpenAI's errors are
/// (`{"error":{"message","type","code",…}}`), with one entry per attempt.
pub fn failure_body(message: &str, kind: &str, tried: &[(String, String, Option<u16>)]) -> String {
    let mut out = String::with_capacity(message.len() + 128);
    out.push_str("{\"error\":{\"message\":");
    push_json_string(&mut out, message);
    out.push_str(",\"type\":");
    push_json_string(&mut out, error_type(kind));
    out.push_str(",\"code\":");
    push_json_string(&mut out, kind);
    out.push_str(",\"param\":null,\"attempts\":[");
    for (i, (provider, outcome, status)) in tried.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"provider\":");
        push_json_string(&mut out, provider);
        out.push_str(",\"outcome\":");
        push_json_string(&mut out, outcome);
        if let Some(status) = status {
            out.push_str(&format!(",\"status\":{status}"));
        }
        out.push('}');
    }
    out.push_str("]}}");
    out
}

/// OpenAI's error `type` for a failure kind.
fn error_type(kind: &str) -> &'static str {
    match kind {
        "timeout" => "timeout_error",
        _ => "upstream_error",
    }
}

/// The bytes that end a stream cut after text, in the stream's format, when the caller asked
/// for a finish (`onCut: "finish"`): chat gets a last chunk with `finish_reason: "error"` and an
/// `error` object, then `[DONE]`; the Responses API its `error` event; Anthropic its `error`
/// event. `pending_line` says the cut fell inside a line: a line break ends it first.
pub fn cut_tail(
    format: Option<Format>,
    chunk_id: &str,
    model: &str,
    kind: &str,
    message: &str,
    pending_line: bool,
) -> Vec<u8> {
    let mut out = String::with_capacity(message.len() + 256);
    if pending_line {
        out.push_str("\n\n");
    }
    match format.unwrap_or(Format::ChatCompletions) {
        Format::ChatCompletions => {
            out.push_str("data: {\"id\":");
            push_json_string(&mut out, chunk_id);
            out.push_str(",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":");
            push_json_string(&mut out, model);
            out.push_str(
                ",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"error\"}],\"error\":{\"message\":",
            );
            push_json_string(&mut out, message);
            out.push_str(",\"type\":");
            push_json_string(&mut out, error_type(kind));
            out.push_str(",\"code\":");
            push_json_string(&mut out, kind);
            out.push_str("}}\n\ndata: [DONE]\n\n");
        }
        Format::Responses => {
            out.push_str("event: error\ndata: {\"type\":\"error\",\"code\":");
            push_json_string(&mut out, kind);
            out.push_str(",\"message\":");
            push_json_string(&mut out, message);
            out.push_str(",\"param\":null}\n\n");
        }
        Format::AnthropicMessages => {
            out.push_str("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":");
            let kind = match kind {
                "timeout" => "timeout_error",
                _ => "api_error",
            };
            push_json_string(&mut out, kind);
            out.push_str(",\"message\":");
            push_json_string(&mut out, message);
            out.push_str("}}\n\n");
        }
    }
    out.into_bytes()
}

/// The `id` of the first chat chunk in `bytes` (the held start of a stream), for the last chunk
/// of a cut stream; `""` when there is none.
pub fn first_chunk_id(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| data.starts_with('{'))
        .and_then(|data| field_span(data, "id").and_then(|span| string(&data[span])))
        .map(|id| id.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_method_and_body() {
        assert_eq!(
            RequestKind::of("POST", Some(r#"{"model":"m","stream":true}"#)),
            RequestKind::Stream
        );
        assert_eq!(
            RequestKind::of(
                "post",
                Some(r#" {"stream" : true , "a":[1,{"stream":false}]}"#)
            ),
            RequestKind::Stream
        );
        assert_eq!(
            RequestKind::of("POST", Some(r#"{"a":{"stream":true}}"#)),
            RequestKind::Json
        );
        assert_eq!(
            RequestKind::of("POST", Some(r#"{"stream":false}"#)),
            RequestKind::Json
        );
        assert_eq!(RequestKind::of("GET", None), RequestKind::Other);
        assert_eq!(RequestKind::of("POST", Some("[1,2]")), RequestKind::Other);
        assert_eq!(
            RequestKind::of("POST", Some(r#"{"stream":true"#)),
            RequestKind::Other
        );
        assert_eq!(
            RequestKind::of("GET", Some(r#"{"stream":true}"#)),
            RequestKind::Other
        );
    }

    #[test]
    fn the_model_is_spliced_in_place_and_nothing_else_changes() {
        let body = "{\"messages\":[{\"role\":\"user\",\"content\":\"model \\\"x\\\"\"}],\n  \"model\" : \"gpt-4o\", \"temperature\":0.50, \"stream\":true}";
        let out = with_model(body, "local/\"q\"").unwrap();
        assert_eq!(
            out,
            body.replace("\"gpt-4o\"", "\"local/\\\"q\\\"\""),
            "only the value changed"
        );
        assert_eq!(model_of(body), "gpt-4o");
        assert_eq!(model_of(&out), "local/\"q\"");
        assert_eq!(with_model("{}", "m").unwrap(), "{\"model\":\"m\"}");
        assert_eq!(
            with_model("{\"stream\":true}", "m").unwrap(),
            "{\"model\":\"m\",\"stream\":true}"
        );
        assert_eq!(with_model("nope", "m"), None);
    }

    #[test]
    fn fallback_headers_swap_the_key_and_keep_the_rest() {
        let sdk = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("Authorization".to_owned(), "Bearer sk-own".to_owned()),
            ("x-stainless-retry-count".to_owned(), "0".to_owned()),
            ("content-length".to_owned(), "42".to_owned()),
        ];
        let own = vec![("X-Title".to_owned(), "t".to_owned())];
        let out = fallback_headers(&sdk, &own, Some("sk-fallback"));
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "x-stainless-retry-count",
                "X-Title",
                "Authorization"
            ]
        );
        assert_eq!(out[3].1, "Bearer sk-fallback");
        assert_eq!(request_keys(&sdk), ["sk-own"]);
        let anthropic = vec![("x-api-key".to_owned(), "ant-key".to_owned())];
        let out = fallback_headers(&anthropic, &[], Some("other"));
        assert_eq!(out, [("x-api-key".to_owned(), "other".to_owned())]);
        assert!(fallback_headers(&anthropic, &[], None).is_empty());
    }

    #[test]
    fn names_failures_and_tails() {
        assert_eq!(host_name("http://u:p@127.0.0.1:9/v1/chat"), "127.0.0.1:9");
        assert_eq!(host_name("https://api.openai.com"), "api.openai.com");
        let body = failure_body(
            "all failed",
            "timeout",
            &[
                ("a".into(), "timeout".into(), None),
                ("b".into(), "http".into(), Some(503)),
            ],
        );
        assert_eq!(
            body,
            r#"{"error":{"message":"all failed","type":"timeout_error","code":"timeout","param":null,"attempts":[{"provider":"a","outcome":"timeout"},{"provider":"b","outcome":"http","status":503}]}}"#
        );
        let tail = cut_tail(None, "c1", "m", "timeout", "idle \"x\"", true);
        let tail = String::from_utf8(tail).unwrap();
        assert!(tail.starts_with("\n\ndata: {\"id\":\"c1\""), "{tail}");
        assert!(tail.contains("\"finish_reason\":\"error\""));
        assert!(tail.contains("\"message\":\"idle \\\"x\\\"\""));
        assert!(tail.ends_with("data: [DONE]\n\n"));
        let anthropic = cut_tail(
            Some(Format::AnthropicMessages),
            "",
            "",
            "network",
            "cut",
            false,
        );
        assert_eq!(
            String::from_utf8(anthropic).unwrap(),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"cut\"}}\n\n"
        );
        assert_eq!(
            first_chunk_id(b": hi\n\ndata: {\"id\":\"gen-1\",\"choices\":[]}\n\n"),
            "gen-1"
        );
    }
}
