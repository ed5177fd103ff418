//! The decoded types: what one payload means, with only what the guard reads. Strings borrow
//! from the payload when they contain no JSON escapes.

use std::borrow::Cow;
use std::fmt;

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
    /// Answer text in this chunk (`delta.content`, or `message.content` of a whole answer).
    pub content: Option<Cow<'a, str>>,
    /// Reasoning text (`reasoning`, or `reasoning_content` as some providers name it).
    pub reasoning: Option<Cow<'a, str>>,
    /// Tool-call fragments (streamed) or whole tool calls (non-streaming).
    pub tool_calls: Vec<ToolCallDelta<'a>>,
    /// Why generation stopped: `stop`, `length`, `tool_calls`, `content_filter`, `error`.
    pub finish_reason: Option<Cow<'a, str>>,
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCallDelta<'a> {
    /// Which tool call this fragment continues (its position in the list when not sent).
    pub index: u32,
    /// The call id, in the first fragment.
    pub id: Option<Cow<'a, str>>,
    /// The function name, in the first fragment.
    pub name: Option<Cow<'a, str>>,
    /// A piece of the JSON arguments text.
    pub arguments: Option<Cow<'a, str>>,
}

/// Token counts (a missing count is 0), serialized with the provider's own field names, as
/// JavaScript numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Usage {
    /// Tokens in the prompt.
    #[serde(with = "crate::core::contract::number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(with = "crate::core::contract::number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub completion_tokens: u64,
    /// Their sum, as the server reported it.
    #[serde(with = "crate::core::contract::number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub total_tokens: u64,
}

/// An error the upstream reported in a body or mid-stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamError {
    /// `code`: OpenRouter sends HTTP-like numbers; some providers send strings. Kept as text: a
    /// string's value, or any other JSON value as it was sent (compacted).
    pub code: Option<String>,
    /// `message`.
    pub message: String,
}
