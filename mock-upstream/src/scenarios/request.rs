//! What a request asks of a scenario: the query parameters that shape it ([`Params`]), the parts
//! of the request body the mock reads ([`ChatRequest`]), and how the answer text is cut into pieces.

use serde_json::Value;

use crate::texts::*;

/// Splits `text` into word-sized pieces, each keeping its trailing whitespace, so that the pieces
/// concatenate back to exactly `text`.
pub fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for ch in text.chars() {
        if ch.is_whitespace() {
            in_space = true;
        } else if in_space && !cur.trim().is_empty() {
            out.push(std::mem::take(&mut cur));
            in_space = false;
        } else {
            in_space = false;
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The reasoning pieces `reasoning-then-content` streams for `chunks` chunks.
pub fn reasoning_pieces(chunks: usize) -> Vec<String> {
    (1..=chunks)
        .map(|i| format!("{REASONING_PREFIX} {i}. "))
        .collect()
}

/// The prompt token count reported in usage for a request body of `len` bytes.
pub fn prompt_tokens(len: usize) -> u64 {
    (len as u64).div_ceil(4).max(1)
}

/// Query parameters that shape a scenario (all durations in milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Wait before sending response headers.
    pub head_delay_ms: u64,
    /// Wait after the headers before the first event.
    pub first_delay_ms: u64,
    /// Wait between events; `None` means the scenario's default (0, or 50 for `endless`).
    pub delay_ms: Option<u64>,
    /// Interval between keepalive comments.
    pub keepalive_ms: u64,
    /// Number of keepalive comments where finite.
    pub keepalives: u64,
    /// Content chunks before a stall, close, reset or error.
    pub chunks: u64,
    /// Chunk count of `long`.
    pub n: u64,
    /// Line size of `huge-line`.
    pub size: u64,
    /// Seconds announced by `Retry-After`.
    pub retry_after: u64,
    /// Overrides the answer text.
    pub text: Option<String>,
    /// When chat scenarios send their usage chunk (`usage=always|asked`).
    pub usage: UsagePolicy,
    /// Words of the given text that `continue` restates before continuing.
    pub restate: u64,
}

/// When a chat scenario sends its usage chunk (`choices: []`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsagePolicy {
    /// Always (the default, as OpenRouter does).
    #[default]
    Always,
    /// Only when the request says `"stream_options": {"include_usage": true}` (as OpenAI does).
    Asked,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            head_delay_ms: 0,
            first_delay_ms: 0,
            delay_ms: None,
            keepalive_ms: 50,
            keepalives: 3,
            chunks: 3,
            n: 1000,
            size: 2 * 1024 * 1024,
            retry_after: 1,
            text: None,
            usage: UsagePolicy::Always,
            restate: 0,
        }
    }
}

impl Params {
    /// Reads the parameters from decoded query pairs; unknown keys are ignored, a bad number is an
    /// error naming the key.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut p = Params::default();
        for (k, v) in pairs {
            let num = || -> Result<u64, String> {
                v.trim().parse::<u64>().map_err(|_| {
                    format!("bad value for {k}: {v:?} (expected a non-negative integer)")
                })
            };
            match k {
                "head_delay_ms" => p.head_delay_ms = num()?,
                "first_delay_ms" => p.first_delay_ms = num()?,
                "delay_ms" => p.delay_ms = Some(num()?),
                "keepalive_ms" => p.keepalive_ms = num()?,
                "keepalives" => p.keepalives = num()?.min(100_000),
                "chunks" => p.chunks = num()?.min(100_000),
                "n" => p.n = num()?.min(1_000_000),
                "size" => p.size = num()?.min(64 * 1024 * 1024),
                "retry_after" => p.retry_after = num()?,
                "text" => p.text = Some(v.to_string()),
                "restate" => p.restate = num()?.min(100_000),
                "usage" => {
                    p.usage = match v.trim() {
                        "always" => UsagePolicy::Always,
                        "asked" => UsagePolicy::Asked,
                        _ => {
                            return Err(format!(
                                "bad value for usage: {v:?} (expected always or asked)"
                            ))
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(p)
    }
}

/// What the request asked for, as far as the mock cares.
#[derive(Debug, Clone)]
pub(crate) struct ChatRequest {
    pub model: String,
    pub body_len: usize,
    /// The body as JSON (`null` when it is not JSON).
    pub json: Value,
}

impl ChatRequest {
    /// Reads `model` from a JSON body, defaulting to [`DEFAULT_MODEL`].
    pub fn parse(body: &[u8]) -> Self {
        let json = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        let model = json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_MODEL)
            .to_string();
        ChatRequest {
            model,
            body_len: body.len(),
            json,
        }
    }

    /// Whether the body says `"stream": true` (the Responses and Messages APIs default to false).
    pub fn stream(&self) -> bool {
        self.json.get("stream").and_then(Value::as_bool) == Some(true)
    }

    /// Whether the body says `"stream_options": {"include_usage": true}`.
    pub fn include_usage(&self) -> bool {
        self.json
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true)
    }
}
