//! Decoding OpenAI-compatible chat chunks, as OpenRouter streams them.
//!
//! Input: the `data` of one SSE event (or a whole non-streaming JSON body). Output: what that
//! event means for an answer: text, reasoning, tool-call fragments, finish, usage, an upstream
//! error, the `[DONE]` sentinel, or a malformed payload the caller counts and skips.
//! Pure Rust: no platform crate, no clock, no I/O; never panics on any input.
//!
//! The stream format (OpenRouter's API reference, "Streaming"):
//!
//! ```text
//! data: {"id":"gen-…","object":"chat.completion.chunk","created":…,"model":"…","provider":"…",
//!        "choices":[{"index":0,"delta":{"role":"assistant","content":"Hel","reasoning":null},
//!                    "finish_reason":null,"native_finish_reason":null}]}
//! …
//! data: {"id":"gen-…","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop",…}]}
//! data: {"id":"gen-…","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}
//! data: [DONE]
//! ```
//!
//! "If an error occurs mid-stream … the error will be sent as an SSE event with the error
//! details [a top-level `error` object with `code` and `message`] and `finish_reason: "error"`."
//! Some providers put the error inside the choice instead (`choices[].error`); both count here.
//!
//! ## What counts as progress
//! *Progress* (which feeds the first-token and idle deadlines) is any of: non-empty `content`,
//! non-empty `reasoning` / `reasoning_content`, at least one `tool_calls` fragment, a
//! `finish_reason`, or `usage`. Not progress: SSE comments (`: OPENROUTER PROCESSING`), chunks
//! whose delta is empty or carries only a `role`, malformed payloads, and errors (an error ends
//! the attempt instead).

use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// The sentinel OpenAI-compatible servers send as the last event's data.
pub const DONE_SENTINEL: &str = "[DONE]";

/// What one SSE data payload means.
// Returned by value once per event: boxing the large variant would allocate per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded<'a> {
    /// `data: [DONE]`: the stream is complete.
    Done,
    /// A chat chunk (or a whole `chat.completion`), with everything it carried.
    Chunk(Chunk<'a>),
    /// Not a chat chunk: invalid JSON, or JSON of the wrong shape. Count it and skip it.
    Malformed(Malformed),
}

/// Why a payload could not be decoded. Small and cheap: the decoder allocates no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    /// What kind of problem it was.
    pub kind: MalformedKind,
    /// 1-based line and column in the payload where the JSON parser gave up (0 when unknown).
    pub line: usize,
    /// See `line`.
    pub column: usize,
}

/// The kinds of malformed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedKind {
    /// Not JSON at all (or cut short).
    Syntax,
    /// Valid JSON, but not the shape of a chat chunk (wrong types, not an object).
    Shape,
    /// The payload was empty.
    Empty,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            MalformedKind::Syntax => "invalid JSON",
            MalformedKind::Shape => "JSON that is not a chat chunk",
            MalformedKind::Empty => "empty payload",
        };
        if self.line > 0 {
            write!(f, "{what} at line {} column {}", self.line, self.column)
        } else {
            f.write_str(what)
        }
    }
}

/// Everything one chunk (or one non-streaming body) carried. Strings borrow from the payload
/// when they contain no JSON escapes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk<'a> {
    /// The generation id (`gen-…` on OpenRouter).
    pub id: Option<Cow<'a, str>>,
    /// The model that answered.
    pub model: Option<Cow<'a, str>>,
    /// `"chat.completion.chunk"` when streaming, `"chat.completion"` for a whole answer.
    pub object: Option<Cow<'a, str>>,
    /// Answer text in this chunk (`delta.content`, or `message.content` of a whole answer).
    pub content: Option<Cow<'a, str>>,
    /// Reasoning text (`reasoning`, or `reasoning_content` as some providers name it).
    pub reasoning: Option<Cow<'a, str>>,
    /// Tool-call fragments (streamed) or whole tool calls (non-streaming).
    pub tool_calls: Vec<ToolCallDelta<'a>>,
    /// Why generation stopped: `stop`, `length`, `tool_calls`, `content_filter`, `error`.
    pub finish_reason: Option<Cow<'a, str>>,
    /// The provider's own finish reason, passed through by OpenRouter.
    pub native_finish_reason: Option<Cow<'a, str>>,
    /// Token counts, often in a last chunk whose `choices` is empty.
    pub usage: Option<Usage>,
    /// A mid-stream error (top level, or inside the first choice).
    pub error: Option<UpstreamError>,
}

impl Chunk<'_> {
    /// Whether this chunk is progress (see the module documentation).
    pub fn is_progress(&self) -> bool {
        non_empty(&self.content)
            || non_empty(&self.reasoning)
            || !self.tool_calls.is_empty()
            || self.finish_reason.is_some()
            || self.usage.is_some()
    }

    /// Whether this chunk says the generation is finished (a finish reason other than `error`).
    pub fn is_finish(&self) -> bool {
        matches!(&self.finish_reason, Some(r) if r != "error")
    }

    /// Whether this chunk reports an upstream failure: an `error` object, or
    /// `finish_reason: "error"` on its own.
    pub fn is_error(&self) -> bool {
        self.error.is_some() || matches!(&self.finish_reason, Some(r) if r == "error")
    }
}

fn non_empty(text: &Option<Cow<'_, str>>) -> bool {
    matches!(text, Some(t) if !t.is_empty())
}

/// One tool-call fragment (`choices[0].delta.tool_calls[i]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ToolCallDelta<'a> {
    /// Which tool call this fragment continues.
    #[serde(default)]
    pub index: u32,
    /// The call id, in the first fragment.
    #[serde(borrow, default, deserialize_with = "optional_text")]
    pub id: Option<Cow<'a, str>>,
    /// The function name, in the first fragment.
    #[serde(borrow, default, deserialize_with = "optional_text")]
    pub name: Option<Cow<'a, str>>,
    /// A piece of the JSON arguments text.
    #[serde(borrow, default, deserialize_with = "optional_text")]
    pub arguments: Option<Cow<'a, str>>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum, as the server reported it.
    #[serde(default)]
    pub total_tokens: u64,
}

/// An error the upstream reported in a body or mid-stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamError {
    /// `code`: OpenRouter sends HTTP-like numbers; some providers send strings. Kept as text.
    pub code: Option<String>,
    /// `message`.
    pub message: String,
    /// `metadata` as compact JSON text, when present (provider name, raw provider error).
    pub metadata: Option<String>,
}

/// Decode the data of one SSE event.
///
/// `[DONE]` (surrounding whitespace ignored) is [`Decoded::Done`]; a JSON object is a
/// [`Chunk`]; anything else is [`Decoded::Malformed`].
pub fn decode_event_data(data: &str) -> Decoded<'_> {
    let trimmed = data.trim();
    if trimmed == DONE_SENTINEL {
        return Decoded::Done;
    }
    decode_json(trimmed)
}

/// Decode a whole JSON body: a non-streaming `chat.completion`, an error body such as
/// `{"error":{"code":429,"message":"…"}}`, or a single chunk sent without SSE framing.
pub fn decode_body(body: &str) -> Decoded<'_> {
    decode_json(body.trim())
}

fn decode_json(json: &str) -> Decoded<'_> {
    if json.is_empty() {
        return Decoded::Malformed(Malformed {
            kind: MalformedKind::Empty,
            line: 0,
            column: 0,
        });
    }
    if !json.starts_with('{') {
        // serde would read a JSON array positionally into a struct: only an object is a chunk.
        let kind = match serde_json::from_str::<serde::de::IgnoredAny>(json) {
            Ok(_) => MalformedKind::Shape,
            Err(_) => MalformedKind::Syntax,
        };
        return Decoded::Malformed(Malformed {
            kind,
            line: 1,
            column: 1,
        });
    }
    match serde_json::from_str::<RawChunk<'_>>(json) {
        Ok(raw) => Decoded::Chunk(raw.into_chunk()),
        Err(error) => Decoded::Malformed(Malformed {
            kind: match error.classify() {
                serde_json::error::Category::Data => MalformedKind::Shape,
                _ => MalformedKind::Syntax,
            },
            line: error.line(),
            column: error.column(),
        }),
    }
}

// ---- the wire shapes (borrowed wherever the JSON has no escapes) ----

/// A string that borrows from the payload when it can: serde borrows a `Cow<str>` only when the
/// field is exactly that type, so optional strings go through this newtype.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

fn optional_text<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Text<'a>>::deserialize(deserializer)?.map(|text| text.0))
}

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(borrow, default, deserialize_with = "optional_text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    object: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<RawChoice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<RawMessage<'a>>,
    /// A whole answer (`chat.completion`) carries `message` instead of `delta`.
    #[serde(borrow, default)]
    message: Option<RawMessage<'a>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    native_finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(borrow, default, deserialize_with = "optional_text")]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<RawToolCall<'a>>>,
}

#[derive(Deserialize)]
struct RawToolCall<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<RawFunction<'a>>,
}

#[derive(Deserialize)]
struct RawFunction<'a> {
    #[serde(borrow, default, deserialize_with = "optional_text")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

impl RawError {
    fn into_error(self) -> UpstreamError {
        let code = match self.code {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(text)) => Some(text),
            Some(other) => Some(other.to_string()),
        };
        UpstreamError {
            code,
            message: self.message.unwrap_or_default(),
            metadata: self
                .metadata
                .filter(|m| !m.is_null())
                .map(|m| m.to_string()),
        }
    }
}

impl<'a> RawChunk<'a> {
    fn into_chunk(self) -> Chunk<'a> {
        let mut chunk = Chunk {
            id: self.id,
            model: self.model,
            object: self.object,
            usage: self.usage,
            error: self.error.map(RawError::into_error),
            ..Chunk::default()
        };
        // "choices[0]": the first choice carries the answer (n > 1 is not streamed by chat UIs).
        if let Some(choice) = self.choices.and_then(|c| c.into_iter().next()) {
            chunk.finish_reason = choice.finish_reason;
            chunk.native_finish_reason = choice.native_finish_reason;
            if chunk.error.is_none() {
                chunk.error = choice.error.map(RawError::into_error);
            }
            if let Some(message) = choice.delta.or(choice.message) {
                chunk.content = message.content;
                chunk.reasoning = message.reasoning.or(message.reasoning_content);
                chunk.tool_calls = message
                    .tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .map(|(position, call)| {
                        let (name, arguments) = match call.function {
                            Some(f) => (f.name, f.arguments),
                            None => (None, None),
                        };
                        ToolCallDelta {
                            index: call.index.unwrap_or(position as u32),
                            id: call.id,
                            name,
                            arguments,
                        }
                    })
                    .collect();
            }
        }
        chunk
    }
}
