//! Decoding OpenAI-compatible chat chunks, as OpenRouter streams them.
//!
//! Input: the `data` of one SSE event (or a whole non-streaming JSON body). Output: what that
//! event means for an answer: text, reasoning, tool-call fragments, finish, usage, an upstream
//! error, the `[DONE]` sentinel, or a malformed payload the caller counts and skips.
//! Pure Rust: no platform crate, no clock, no I/O; never panics on any input.
//!
//! The JSON is read by a small hand-written walker (below), not serde: it reads only these
//! fields, borrows every string without escapes, and keeps the wasm module small (serde_json and
//! its float formatting weighed more than the rest of the decoder). Its unit tests hold it to
//! serde_json's verdict on generated chunks, valid or not.
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
//! Only what the guard uses is decoded: `id`, `model`, `choices[0]`'s `delta` (or `message`)
//! with its `content`, `reasoning` / `reasoning_content` and `tool_calls` (`index`, `id`,
//! `function.name`, `function.arguments`), its `finish_reason` and `error`, `usage` (three
//! counts) and a top-level `error` (`code`, `message`). Every other field (`object`, `created`,
//! `provider`, `native_finish_reason`, `logprobs`, an error's `metadata`, …) is skipped unread,
//! whatever its value, as a field nobody knows is.
//!
//! ## What counts as progress
//! *Progress* (which feeds the first-token and idle deadlines) is any of: non-empty `content`,
//! non-empty `reasoning` / `reasoning_content`, at least one `tool_calls` fragment, a
//! `finish_reason`, or `usage`. Not progress: SSE comments (`: OPENROUTER PROCESSING`), chunks
//! whose delta is empty or carries only a `role`, malformed payloads, and errors (an error ends
//! the attempt instead).

use super::bytes as swar;
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

/// Token counts (a missing count is 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Their sum, as the server reported it.
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
    let mut walker = Walker::new(json);
    if !json.starts_with('{') {
        // Only an object is a chunk; anything else is the wrong shape if it is JSON at all.
        let kind = match walker.value(false).and_then(|()| walker.end()) {
            Ok(()) => MalformedKind::Shape,
            Err(_) => MalformedKind::Syntax,
        };
        return Decoded::Malformed(Malformed {
            kind,
            line: 1,
            column: 1,
        });
    }
    // Filled in place: a chunk is large, and each move of it is a `memory.copy` in wasm.
    let mut chunk = Chunk::default();
    match walker.chunk(&mut chunk) {
        Ok(()) => Decoded::Chunk(chunk),
        Err(fault) => Decoded::Malformed(walker.malformed(fault)),
    }
}

// ---- the walker ----
//
// A single pass over the payload that reads exactly the fields above and skips everything else,
// borrowing every string that has no escapes. It accepts and refuses what a serde_json
// deserializer of these shapes (`Option` fields, unknown fields ignored, duplicate fields
// refused) does, and classifies the first problem in document order the same way:
// - *Syntax*: not JSON (RFC 8259): bad tokens, a bad escape or a lone surrogate in a string that
//   is read (skipped strings only need well-formed escapes), a control character in a string,
//   a read number beyond the range of `f64`, nesting deeper than 127 containers in what is read,
//   anything after the object;
// - *Shape*: valid JSON of the wrong type for a field (`"content": 5`, `"choices": {}`, a
//   negative or fractional token count), or a field given twice.
// Like serde, a record (`delta`, `usage`, …) may also be sent as an array of its fields in order.

/// Nesting limit of the containers that are read (serde_json's recursion limit).
const MAX_DEPTH: u32 = 128;

/// The first problem in a payload: what kind, and the byte offset where it was found.
#[derive(Debug, Clone, Copy)]
struct Fault {
    kind: MalformedKind,
    at: usize,
}

type Step<T> = Result<T, Fault>;

/// The fields of one choice (`choices[i]`).
#[derive(Default)]
struct Choice<'a> {
    delta: Option<Message<'a>>,
    message: Option<Message<'a>>,
    finish_reason: Option<Cow<'a, str>>,
    error: Option<UpstreamError>,
}

/// `delta` (streamed) or `message` (a whole answer).
#[derive(Default)]
struct Message<'a> {
    content: Option<Cow<'a, str>>,
    reasoning: Option<Cow<'a, str>>,
    reasoning_content: Option<Cow<'a, str>>,
    tool_calls: Vec<ToolCallDelta<'a>>,
}

/// How a record (a struct of the wire format) was sent.
#[derive(Clone, Copy)]
enum Record {
    /// `{…}`: fields by name.
    Object,
    /// `[…]`: fields by position.
    Array,
}

/// A cursor over one payload.
struct Walker<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: u32,
}

impl<'a> Walker<'a> {
    fn new(text: &'a str) -> Self {
        Walker {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
        }
    }

    /// The fault as the decoder reports it: 1-based line and column of the byte it names.
    fn malformed(&self, fault: Fault) -> Malformed {
        let at = (fault.at + 1).min(self.bytes.len());
        let before = &self.bytes[..at];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Malformed {
            kind: fault.kind,
            line: 1 + before[..line_start].iter().filter(|&&b| b == b'\n').count(),
            column: at - line_start,
        }
    }

    fn syntax(&self) -> Fault {
        Fault {
            kind: MalformedKind::Syntax,
            at: self.pos,
        }
    }

    fn shape(&self) -> Fault {
        Fault {
            kind: MalformedKind::Shape,
            at: self.pos,
        }
    }

    /// Skip JSON whitespace; the next byte, if any.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// After the value: only whitespace may follow.
    fn end(&mut self) -> Step<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.syntax()),
        }
    }

    /// The literal `word` at the current byte.
    fn literal(&mut self, word: &[u8]) -> Step<()> {
        for &expected in word {
            if self.bytes.get(self.pos) != Some(&expected) {
                return Err(self.syntax());
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn slice(&self, start: usize, end: usize) -> Step<&'a str> {
        // Both ends sit next to ASCII bytes, so this never fails; no panic path either way.
        self.text.get(start..end).ok_or(Fault {
            kind: MalformedKind::Syntax,
            at: start,
        })
    }

    /// Consume the `{` or `[` at the current byte, one level deeper.
    fn enter(&mut self) -> Step<()> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(self.syntax());
        }
        self.pos += 1;
        Ok(())
    }

    /// Inside an object: the next key, or `None` once its `}` is consumed.
    fn next_key(&mut self, first: &mut bool) -> Step<Option<Cow<'a, str>>> {
        let mut next = self.peek();
        if next == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(None);
        }
        if !*first {
            if next != Some(b',') {
                return Err(self.syntax());
            }
            self.pos += 1;
            next = self.peek();
        }
        *first = false;
        if next != Some(b'"') {
            return Err(self.syntax());
        }
        self.pos += 1;
        self.string().map(Some)
    }

    /// The `:` after a key.
    fn colon(&mut self) -> Step<()> {
        // Usually right after the key, without whitespace.
        if self.bytes.get(self.pos) == Some(&b':') {
            self.pos += 1;
            return Ok(());
        }
        if self.peek() != Some(b':') {
            return Err(self.syntax());
        }
        self.pos += 1;
        Ok(())
    }

    /// Inside an array: whether another element follows (`false` once its `]` is consumed).
    fn next_element(&mut self, first: &mut bool) -> Step<bool> {
        let mut next = self.peek();
        if next == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        if !*first {
            if next != Some(b',') {
                return Err(self.syntax());
            }
            self.pos += 1;
            next = self.peek();
        }
        *first = false;
        match next {
            Some(b']') | None => Err(self.syntax()),
            Some(_) => Ok(true),
        }
    }

    /// A value of the wrong type for its field: the wrong shape, unless it is not valid JSON
    /// either (a broken number, string or literal), which is a syntax error. A container is
    /// the wrong shape at once, without looking inside.
    #[inline(never)]
    fn wrong_type(&mut self) -> Fault {
        let at = self.pos;
        let checked = match self.bytes.get(self.pos) {
            Some(b'-' | b'0'..=b'9') => self.number(true).map(drop),
            Some(b'"') => {
                self.pos += 1;
                self.string_rest(None, false)
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'[' | b'{') => Ok(()),
            _ => Err(self.syntax()),
        };
        match checked {
            Ok(()) => Fault {
                kind: MalformedKind::Shape,
                at,
            },
            Err(fault) => fault,
        }
    }

    /// The start of a record (`{` or `[` consumed), or `None` for `null` when `optional`.
    #[inline(never)]
    fn open_record(&mut self, optional: bool) -> Step<Option<Record>> {
        match self.peek() {
            Some(b'n') if optional => self.literal(b"null").map(|()| None),
            Some(b'{') => self.enter().map(|()| Some(Record::Object)),
            Some(b'[') => self.enter().map(|()| Some(Record::Array)),
            _ => Err(self.wrong_type()),
        }
    }

    /// The fields of a record opened by [`Walker::open_record`], each handed to `field` by its
    /// index in `names`. An object names them (unknown ones are skipped; one given twice is the
    /// wrong shape); an array lists them in order, as serde reads a struct from an array
    /// (missing ones keep their defaults; more elements than fields are a syntax error).
    ///
    /// `field` is a trait object: one copy of this loop serves every record.
    fn fields(
        &mut self,
        record: Record,
        names: &[&str],
        field: &mut dyn FnMut(&mut Self, usize) -> Step<()>,
    ) -> Step<()> {
        let mut first = true;
        match record {
            Record::Object => {
                let mut seen = 0u8;
                while let Some(key) = self.next_key(&mut first)? {
                    // The first bytes are compared inline: most names differ there, and
                    // `==` on equal lengths is a `memcmp` call (a byte loop in wasm).
                    let key = key.as_bytes();
                    let index = names
                        .iter()
                        .position(|name| name.len() == key.len() && same(name.as_bytes(), key));
                    if let Some(index) = index {
                        // Refused before the colon is even read, as serde does.
                        if seen & (1 << index) != 0 {
                            return Err(self.shape());
                        }
                        seen |= 1 << index;
                    }
                    self.colon()?;
                    match index {
                        Some(index) => field(self, index)?,
                        None => self.skip()?,
                    }
                }
                Ok(())
            }
            Record::Array => {
                for index in 0..names.len() {
                    if !self.next_element(&mut first)? {
                        return Ok(());
                    }
                    field(self, index)?;
                }
                if self.peek() != Some(b']') {
                    return Err(self.syntax());
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(())
            }
        }
    }

    /// `null` (false), or an array whose `[` is consumed (true).
    fn optional_array(&mut self) -> Step<bool> {
        match self.peek() {
            Some(b'n') => self.literal(b"null").map(|()| false),
            Some(b'[') => self.enter().map(|()| true),
            _ => Err(self.wrong_type()),
        }
    }

    /// An optional string: `null` is `None`; anything but a string is the wrong shape.
    #[inline(never)]
    fn text(&mut self) -> Step<Option<Cow<'a, str>>> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.string().map(Some)
            }
            Some(b'n') => self.literal(b"null").map(|()| None),
            _ => Err(self.wrong_type()),
        }
    }

    /// A whole non-negative number that fits a `u64`; any other number is the wrong shape.
    #[inline(never)]
    fn count(&mut self) -> Step<u64> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => {
                let at = self.pos;
                self.number(true)?.ok_or(Fault {
                    kind: MalformedKind::Shape,
                    at,
                })
            }
            _ => Err(self.wrong_type()),
        }
    }

    // ---- the chat-chunk shapes (fields in the order serde's structs declared them) ----

    /// The whole payload (it starts with `{`).
    fn chunk(&mut self, chunk: &mut Chunk<'a>) -> Step<()> {
        let mut choice = None;
        let record = self.open_record(false)?.unwrap_or(Record::Object);
        self.fields(
            record,
            &["id", "model", "choices", "usage", "error"],
            &mut |w, field| {
                match field {
                    0 => chunk.id = w.text()?,
                    1 => chunk.model = w.text()?,
                    2 => w.choices(&mut choice)?,
                    3 => chunk.usage = w.usage()?,
                    _ => chunk.error = w.error()?,
                }
                Ok(())
            },
        )?;
        self.end()?;
        // "choices[0]": the first choice carries the answer (n > 1 is not streamed by chat UIs).
        if let Some(choice) = choice {
            chunk.finish_reason = choice.finish_reason;
            if chunk.error.is_none() {
                chunk.error = choice.error;
            }
            if let Some(message) = choice.delta.or(choice.message) {
                chunk.content = message.content;
                chunk.reasoning = message.reasoning.or(message.reasoning_content);
                chunk.tool_calls = message.tool_calls;
            }
        }
        Ok(())
    }

    /// `choices`: every element is checked; the first one is kept.
    /// (`kept` is `None` when called: a second `choices` is refused before.)
    fn choices(&mut self, kept: &mut Option<Choice<'a>>) -> Step<()> {
        if !self.optional_array()? {
            return Ok(());
        }
        let mut first = true;
        while self.next_element(&mut first)? {
            if kept.is_none() {
                self.choice(kept.insert(Choice::default()))?;
            } else {
                self.choice(&mut Choice::default())?;
            }
        }
        Ok(())
    }

    fn choice(&mut self, choice: &mut Choice<'a>) -> Step<()> {
        let record = self.open_record(false)?.unwrap_or(Record::Object);
        self.fields(
            record,
            &["delta", "message", "finish_reason", "error"],
            &mut |w, field| {
                match field {
                    0 => choice.delta = w.message()?,
                    1 => choice.message = w.message()?,
                    2 => choice.finish_reason = w.text()?,
                    _ => choice.error = w.error()?,
                }
                Ok(())
            },
        )
    }

    fn message(&mut self) -> Step<Option<Message<'a>>> {
        let Some(record) = self.open_record(true)? else {
            return Ok(None);
        };
        let mut message = Message::default();
        self.fields(
            record,
            &["content", "reasoning", "reasoning_content", "tool_calls"],
            &mut |w, field| {
                match field {
                    0 => message.content = w.text()?,
                    1 => message.reasoning = w.text()?,
                    2 => message.reasoning_content = w.text()?,
                    _ => message.tool_calls = w.tool_calls()?,
                }
                Ok(())
            },
        )?;
        Ok(Some(message))
    }

    fn tool_calls(&mut self) -> Step<Vec<ToolCallDelta<'a>>> {
        let mut calls = Vec::new();
        if !self.optional_array()? {
            return Ok(calls);
        }
        let mut first = true;
        while self.next_element(&mut first)? {
            let position = calls.len() as u32;
            calls.push(self.tool_call(position)?);
        }
        Ok(calls)
    }

    /// One `tool_calls` element; `index` defaults to its position.
    fn tool_call(&mut self, position: u32) -> Step<ToolCallDelta<'a>> {
        let mut call = ToolCallDelta {
            index: position,
            ..ToolCallDelta::default()
        };
        let record = self.open_record(false)?.unwrap_or(Record::Object);
        self.fields(record, &["index", "id", "function"], &mut |w, field| {
            match field {
                0 => {
                    if w.peek() == Some(b'n') {
                        w.literal(b"null")?;
                    } else {
                        let at = w.pos;
                        call.index = u32::try_from(w.count()?).map_err(|_| Fault {
                            kind: MalformedKind::Shape,
                            at,
                        })?;
                    }
                }
                1 => call.id = w.text()?,
                _ => {
                    if let Some(record) = w.open_record(true)? {
                        w.fields(record, &["name", "arguments"], &mut |w, field| {
                            match field {
                                0 => call.name = w.text()?,
                                _ => call.arguments = w.text()?,
                            }
                            Ok(())
                        })?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(call)
    }

    fn usage(&mut self) -> Step<Option<Usage>> {
        let Some(record) = self.open_record(true)? else {
            return Ok(None);
        };
        let mut usage = Usage::default();
        self.fields(
            record,
            &["prompt_tokens", "completion_tokens", "total_tokens"],
            &mut |w, field| {
                match field {
                    0 => usage.prompt_tokens = w.count()?,
                    1 => usage.completion_tokens = w.count()?,
                    _ => usage.total_tokens = w.count()?,
                }
                Ok(())
            },
        )?;
        Ok(Some(usage))
    }

    /// An `error` object: `code` (any JSON), `message` (a string).
    fn error(&mut self) -> Step<Option<UpstreamError>> {
        let Some(record) = self.open_record(true)? else {
            return Ok(None);
        };
        let mut error = UpstreamError::default();
        self.fields(record, &["code", "message"], &mut |w, field| {
            match field {
                0 => {
                    error.code = if w.peek() == Some(b'"') {
                        w.pos += 1;
                        Some(w.string()?.into_owned())
                    } else {
                        w.any_json()?
                    }
                }
                _ => error.message = w.text()?.map(Cow::into_owned).unwrap_or_default(),
            }
            Ok(())
        })?;
        Ok(Some(error))
    }

    /// Any JSON value but `null`, as compact text; `null` is `None`.
    #[inline(never)]
    fn any_json(&mut self) -> Step<Option<String>> {
        if self.peek() == Some(b'n') {
            return self.literal(b"null").map(|()| None);
        }
        let start = self.pos;
        self.value(true)?;
        Ok(Some(compact(self.slice(start, self.pos)?)))
    }

    // ---- tokens ----

    /// After the opening quote: the string, borrowed from the payload when it has no escapes.
    fn string(&mut self) -> Step<Cow<'a, str>> {
        let start = self.pos;
        let end = scan_string(self.bytes, start);
        match self.bytes.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                self.slice(start, end).map(Cow::Borrowed)
            }
            Some(b'\\') => {
                let mut owned = String::from(self.slice(start, end)?);
                self.pos = end;
                self.string_rest(Some(&mut owned), false)?;
                Ok(Cow::Owned(owned))
            }
            _ => Err(Fault {
                kind: MalformedKind::Syntax,
                at: end,
            }),
        }
    }

    /// Inside a string: the rest of it through the closing quote, escapes checked and, when
    /// `out` is given, decoded into it. Surrogates must pair unless `lenient` (a skipped string,
    /// whose `\u` escapes need only be four hex digits).
    #[inline(never)]
    fn string_rest(&mut self, mut out: Option<&mut String>, lenient: bool) -> Step<()> {
        loop {
            let start = self.pos;
            let end = scan_string(self.bytes, start);
            if let Some(out) = out.as_deref_mut() {
                out.push_str(self.slice(start, end)?);
            }
            self.pos = end;
            match self.bytes.get(end) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.escape(lenient)?;
                    if let Some(out) = out.as_deref_mut() {
                        out.push(c);
                    }
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    /// After a backslash: the character it stands for (see [`Walker::string_rest`]).
    fn escape(&mut self, lenient: bool) -> Step<char> {
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.syntax());
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                if lenient {
                    return Ok(char::REPLACEMENT_CHARACTER);
                }
                let code = match first {
                    0xDC00..=0xDFFF => return Err(self.syntax()),
                    0xD800..=0xDBFF => {
                        // A leading surrogate: `\uDC00`–`\uDFFF` must follow at once.
                        self.literal(b"\\u")?;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.syntax());
                        }
                        0x1_0000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    _ => first,
                };
                char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
            }
            _ => {
                self.pos -= 1;
                return Err(self.syntax());
            }
        };
        Ok(c)
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Step<u32> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self
                .bytes
                .get(self.pos)
                .and_then(|&b| (b as char).to_digit(16))
                .ok_or(self.syntax())?;
            value = value * 16 + digit;
            self.pos += 1;
        }
        Ok(value)
    }

    /// A number: RFC 8259's grammar and, when `checked` (a number that is read, not skipped),
    /// within the range of `f64`. Returns its value when it is a whole number without sign,
    /// fraction or exponent that fits a `u64`.
    #[inline(never)]
    fn number(&mut self, checked: bool) -> Step<Option<u64>> {
        let start = self.pos;
        let negative = self.bytes.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        // Decimal exponent of the first significant digit, to refuse what overflows an f64.
        let mut magnitude: i64 = 0;
        let mut significant = false;
        let mut whole = Some(0u64);
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                let digits = self.pos;
                while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
                    self.pos += 1;
                }
                significant = true;
                magnitude = (self.pos - digits) as i64 - 1;
                // The value only for a number that is read (a skipped one is only checked).
                // Compared, not `checked_mul`: wasm32 has no overflow flag, and LLVM makes
                // that a 128-bit multiplication call.
                if checked {
                    let digits = self.bytes.get(digits..self.pos).unwrap_or_default();
                    whole = digits.iter().try_fold(0u64, |w, &b| {
                        let digit = u64::from(b - b'0');
                        (w < u64::MAX / 10 || (w == u64::MAX / 10 && digit <= 5))
                            .then(|| w * 10 + digit)
                    });
                }
            }
            _ => return Err(self.syntax()),
        }
        if matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
            return Err(self.syntax()); // a leading zero
        }
        let mut plain = !negative;
        if self.bytes.get(self.pos) == Some(&b'.') {
            plain = false;
            self.pos += 1;
            let digits = self.pos;
            while let Some(&b @ b'0'..=b'9') = self.bytes.get(self.pos) {
                if !significant {
                    magnitude -= 1;
                    significant = b != b'0';
                }
                self.pos += 1;
            }
            if self.pos == digits {
                return Err(self.syntax());
            }
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            plain = false;
            self.pos += 1;
            let sign = match self.bytes.get(self.pos) {
                Some(b'-') => -1,
                Some(b'+') => 1,
                _ => 0,
            };
            if sign != 0 {
                self.pos += 1;
            }
            let digits = self.pos;
            let mut exponent: i64 = 0;
            while let Some(&b @ b'0'..=b'9') = self.bytes.get(self.pos) {
                exponent = (exponent * 10 + i64::from(b - b'0')).min(1 << 40);
                self.pos += 1;
            }
            if self.pos == digits {
                return Err(self.syntax());
            }
            magnitude += if sign < 0 { -exponent } else { exponent };
        }
        if checked
            && significant
            && (magnitude > 308 || (magnitude == 308 && self.rounds_to_infinity(start)))
        {
            return Err(self.syntax()); // beyond f64::MAX
        }
        Ok(if plain { whole } else { None })
    }

    /// Whether the number from `start` to here, of magnitude 1e308, is at least halfway from
    /// `f64::MAX` (1.7976931348623157081e308) to the next power of two, so reads as infinity.
    fn rounds_to_infinity(&self, start: usize) -> bool {
        const HALFWAY: &[u8] = b"17976931348623158079";
        let mut digits = (self.bytes.get(start..self.pos).unwrap_or_default().iter())
            .take_while(|b| !matches!(b, b'e' | b'E'))
            .filter(|b| b.is_ascii_digit())
            .skip_while(|b| **b == b'0');
        for &limit in HALFWAY {
            match digits.next() {
                Some(&digit) if digit == limit => continue,
                Some(&digit) => return digit > limit,
                None => return false,
            }
        }
        true
    }

    /// Any JSON value, iteratively (deep nesting costs no stack). `read`: as serde reads a
    /// value it keeps (`code`): strings fully checked, numbers within the range of
    /// `f64`, nesting counted against the limit. Otherwise as serde skips a field it does not
    /// know: only well-formed (escapes need only be well-formed), with no nesting limit.
    #[inline(never)]
    fn value(&mut self, read: bool) -> Step<()> {
        // Open containers, innermost last: a bit per level (1 = object), spilling past 64.
        let (mut bits, mut depth, mut deep) = (0u64, 0usize, Vec::<bool>::new());
        loop {
            // A value.
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    self.string_rest(None, !read)?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number(read)?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(open @ (b'[' | b'{')) => {
                    if read {
                        self.enter()?;
                    } else {
                        self.pos += 1;
                    }
                    let object = open == b'{';
                    if depth < 64 {
                        bits = (bits & !(1 << depth)) | (u64::from(object) << depth);
                    } else {
                        deep.push(object);
                    }
                    depth += 1;
                    let close = if object { b'}' } else { b']' };
                    if self.peek() != Some(close) {
                        if object {
                            self.key(read)?;
                        }
                        continue;
                    }
                    // An empty container: closed below.
                }
                _ => return Err(self.syntax()),
            }
            // After a value: close containers until one continues with `,`.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let object = if depth <= 64 {
                    bits & (1 << (depth - 1)) != 0
                } else {
                    deep.last() == Some(&true)
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            self.key(read)?;
                        }
                        break;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ => return Err(self.syntax()),
                }
                self.pos += 1;
                depth -= 1;
                if read {
                    self.depth -= 1;
                }
                if depth >= 64 {
                    deep.pop();
                }
            }
        }
    }

    /// The value of a field that is not read: [`Walker::value`], with the scalars that
    /// OpenRouter's chunks carry (`"provider"`, `"created"`, `"index"`, `"logprobs"`...)
    /// taken directly.
    fn skip(&mut self) -> Step<()> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.string_rest(None, true)
            }
            Some(b'-' | b'0'..=b'9') => self.number(false).map(drop),
            Some(b'n') => self.literal(b"null"),
            _ => self.value(false),
        }
    }

    /// In an object walked by [`Walker::value`]: a key and its colon.
    fn key(&mut self, read: bool) -> Step<()> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax());
        }
        self.pos += 1;
        self.string_rest(None, !read)?;
        self.colon()
    }
}

/// The index of the first byte from `at` on that ends a run of plain string text: a quote,
/// a backslash or a control character (or the end). Eight bytes at a time.
fn scan_string(bytes: &[u8], at: usize) -> usize {
    swar::find(
        bytes,
        at,
        |word| swar::equal(word, b'"') | swar::equal(word, b'\\') | swar::below(word, 0x20),
        |b| b == b'"' || b == b'\\' || b < 0x20,
    )
}

/// Whether two byte strings of the same length (the caller checks) are equal: words, the
/// last two overlapping (`==` on slices calls `memcmp`, a byte loop in wasm).
#[inline(never)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if word::<8>(a, at) != word::<8>(b, at) {
                return false;
            }
            at += 8;
        }
        word::<8>(a, n - 8) == word::<8>(b, n - 8)
    } else if n >= 4 {
        word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4)
    } else {
        a == b // short enough for memcmp's byte loop
    }
}

/// The `N` bytes of `bytes` from `at` (zeros past its end, which callers never reach).
fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|w| <[u8; N]>::try_from(w).ok())
        .unwrap_or([0; N])
}

/// JSON text without the whitespace outside its strings.
fn compact(json: &str) -> String {
    // Runs between whitespace bytes are copied whole (every byte looked at is ASCII, so the
    // runs start and end on character boundaries).
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped, mut run) = (false, false, 0);
    for (at, b) in json.bytes().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.push_str(json.get(run..at).unwrap_or_default());
            run = at + 1;
        }
    }
    out.push_str(json.get(run..).unwrap_or_default());
    out
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    //! The walker against serde_json (the decoder this one replaced, kept here as the oracle):
    //! generated chunks of every shape, valid and not, must decode to the same thing, and no
    //! input may panic.

    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    // ---- the oracle: serde_json with borrowed structs ----

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
        #[serde(borrow, default)]
        choices: Option<Vec<RawChoice<'a>>>,
        #[serde(default)]
        usage: Option<RawUsage>,
        #[serde(default)]
        error: Option<RawError>,
    }

    #[derive(Deserialize)]
    struct RawUsage {
        #[serde(default)]
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
        #[serde(default)]
        total_tokens: u64,
    }

    #[derive(Deserialize)]
    struct RawChoice<'a> {
        #[serde(borrow, default)]
        delta: Option<RawMessage<'a>>,
        #[serde(borrow, default)]
        message: Option<RawMessage<'a>>,
        #[serde(borrow, default, deserialize_with = "optional_text")]
        finish_reason: Option<Cow<'a, str>>,
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
            }
        }
    }

    fn oracle(data: &str) -> Decoded<'_> {
        let json = data.trim();
        if json == DONE_SENTINEL {
            return Decoded::Done;
        }
        if json.is_empty() {
            return Decoded::Malformed(Malformed {
                kind: MalformedKind::Empty,
                line: 0,
                column: 0,
            });
        }
        if !json.starts_with('{') {
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
        let raw = match serde_json::from_str::<RawChunk<'_>>(json) {
            Ok(raw) => raw,
            Err(error) => {
                return Decoded::Malformed(Malformed {
                    kind: match error.classify() {
                        serde_json::error::Category::Data => MalformedKind::Shape,
                        _ => MalformedKind::Syntax,
                    },
                    line: error.line(),
                    column: error.column(),
                })
            }
        };
        let mut chunk = Chunk {
            id: raw.id,
            model: raw.model,
            usage: raw.usage.map(|u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                total_tokens: u.total_tokens,
            }),
            error: raw.error.map(RawError::into_error),
            ..Chunk::default()
        };
        if let Some(choice) = raw.choices.and_then(|c| c.into_iter().next()) {
            chunk.finish_reason = choice.finish_reason;
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
        Decoded::Chunk(chunk)
    }

    // ---- comparing ----

    fn same_text(
        what: &str,
        a: &Option<Cow<'_, str>>,
        b: &Option<Cow<'_, str>>,
    ) -> Result<(), String> {
        if a != b {
            return Err(format!("{what}: walker {a:?}, serde {b:?}"));
        }
        if let (Some(a), Some(b)) = (a, b) {
            if matches!(a, Cow::Borrowed(_)) != matches!(b, Cow::Borrowed(_)) {
                return Err(format!("{what}: borrowed differently ({a:?})"));
            }
        }
        Ok(())
    }

    /// Equal JSON values, numbers within rounding (serde_json's own float reading is not
    /// exact, so its printed value may not read back to the same `f64`).
    fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
            }
            _ => a == b,
        }
    }

    /// Equal JSON texts, or texts of equal JSON values (the walker keeps a value as it was sent;
    /// serde_json printed its own reading of it).
    fn same_json(what: &str, a: &Option<String>, b: &Option<String>) -> Result<(), String> {
        let equal = match (a, b) {
            (Some(a), Some(b)) if a != b => {
                let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
                matches!((parse(a), parse(b)), (Some(x), Some(y)) if close(&x, &y))
            }
            _ => a == b,
        };
        if equal {
            Ok(())
        } else {
            Err(format!("{what}: walker {a:?}, serde {b:?}"))
        }
    }

    fn agree(data: &str) -> Result<(), String> {
        let (walker, serde) = (decode_event_data(data), oracle(data));
        let context = |e: String| format!("{e}\n  in {data:?}");
        match (&walker, &serde) {
            (Decoded::Done, Decoded::Done) => Ok(()),
            (Decoded::Malformed(a), Decoded::Malformed(b)) if a.kind == b.kind => Ok(()),
            (Decoded::Chunk(a), Decoded::Chunk(b)) => same_text("id", &a.id, &b.id)
                .and(same_text("model", &a.model, &b.model))
                .and(same_text("content", &a.content, &b.content))
                .and(same_text("reasoning", &a.reasoning, &b.reasoning))
                .and(same_text(
                    "finish_reason",
                    &a.finish_reason,
                    &b.finish_reason,
                ))
                .and(if a.usage == b.usage && a.tool_calls == b.tool_calls {
                    Ok(())
                } else {
                    Err(format!("usage or tool calls: walker {a:?}, serde {b:?}"))
                })
                .and(match (&a.error, &b.error) {
                    (None, None) => Ok(()),
                    (Some(x), Some(y)) if x.message == y.message => {
                        same_json("code", &x.code, &y.code)
                    }
                    _ => Err(format!("error: walker {:?}, serde {:?}", a.error, b.error)),
                })
                .map_err(context),
            _ => Err(context(format!("walker {walker:?}, serde {serde:?}"))),
        }
    }

    // ---- generated payloads ----

    /// A small deterministic generator (xorshift), so one proptest seed is one payload.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        /// True one time in `n`.
        fn one_in(&mut self, n: u64) -> bool {
            self.below(n) == 0
        }
        fn pick<'p>(&mut self, items: &[&'p str]) -> &'p str {
            items[self.below(items.len() as u64) as usize]
        }
    }

    /// JSON with objects as field lists (so a field can be given twice) and numbers as text.
    #[derive(Clone)]
    enum J {
        Null,
        Bool(bool),
        Num(String),
        Str(String),
        Arr(Vec<J>),
        Obj(Vec<(String, J)>),
    }

    const PIECES: &[&str] = &[
        "a", "Hel", "lo", " ", "world", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1f}", "é", "🎙",
        "語", "\u{2028}", "\u{7f}", "{", "}", "[", "]", ":", ",", "0", "null",
    ];

    fn gen_string(g: &mut Gen) -> String {
        (0..g.below(6)).map(|_| g.pick(PIECES)).collect()
    }

    const NUMBERS: &[&str] = &[
        "0",
        "7",
        "42",
        "-1",
        "-0",
        "1.5",
        "1e2",
        "1E+2",
        "-2.5e-3",
        "0.0",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "1e308",
        "1e309",
        "-1e400",
        "123456789012345678901234567890",
        "0.000001",
        "1e-400",
        "2e308",
        "1.7e308",
        "1.8e308",
        "-179e306",
        "0.00000000000000000000000000000000000000000000000000000001e363",
    ];

    fn gen_scalar(g: &mut Gen) -> J {
        match g.below(5) {
            0 => J::Null,
            1 => J::Bool(g.one_in(2)),
            2 => J::Num(g.pick(NUMBERS).into()),
            _ => J::Str(gen_string(g)),
        }
    }

    fn gen_any(g: &mut Gen, depth: u32) -> J {
        if depth == 0 || g.below(3) != 0 {
            return gen_scalar(g);
        }
        let n = g.below(4);
        if g.one_in(2) {
            J::Arr((0..n).map(|_| gen_any(g, depth - 1)).collect())
        } else {
            J::Obj(
                (0..n)
                    .map(|_| (gen_string(g), gen_any(g, depth - 1)))
                    .collect(),
            )
        }
    }

    /// A value of the wrong type for a field: any scalar, or (when `containers`) `{}`/`[]`.
    fn gen_wrong(g: &mut Gen, containers: bool) -> J {
        if containers && g.one_in(3) {
            if g.one_in(2) {
                J::Arr(vec![gen_scalar(g)])
            } else {
                J::Obj(vec![("x".into(), gen_scalar(g))])
            }
        } else {
            match gen_scalar(g) {
                J::Null => J::Num("1".into()),
                other => other,
            }
        }
    }

    fn gen_text(g: &mut Gen) -> J {
        match g.below(12) {
            0 => J::Null,
            1 => gen_wrong(g, true),
            _ => J::Str(gen_string(g)),
        }
    }

    /// An optional record built by `f`, `null`, or a scalar of the wrong type.
    fn gen_object_field(g: &mut Gen, f: impl FnOnce(&mut Gen) -> J) -> J {
        match g.below(12) {
            0 => J::Null,
            1 => gen_wrong(g, false),
            _ => f(g),
        }
    }

    fn gen_count(g: &mut Gen) -> J {
        match g.below(10) {
            0 => J::Null,
            1 => J::Num(g.pick(NUMBERS).into()),
            2 => gen_wrong(g, true),
            _ => J::Num(g.below(100_000).to_string()),
        }
    }

    /// Fields the wire format carries that the decoder skips unread (as it skips unknown ones),
    /// generated with any value so that skipping them is tested too.
    const UNREAD: &[&str] = &[
        "type",
        "prompt_tokens_details",
        "created",
        "object",
        "native_finish_reason",
        "metadata",
    ];

    /// An object of the fields `fields` makes, in random order, some left out, sometimes one
    /// twice, with unknown fields between them; sometimes (when `record`) the array of its
    /// declared fields in order, as serde also reads a struct, maybe cut short or one too long.
    fn gen_object(g: &mut Gen, fields: Vec<(&str, J)>, record: bool) -> J {
        if record && g.one_in(12) {
            let declared: Vec<J> = fields
                .iter()
                .filter(|(name, _)| !UNREAD.contains(name))
                .map(|(_, value)| value.clone())
                .collect();
            let keep = g.below(declared.len() as u64 + 2) as usize;
            let mut items: Vec<J> = declared.into_iter().take(keep).collect();
            if keep > items.len() {
                items.push(gen_scalar(g));
            }
            return J::Arr(items);
        }
        let mut list: Vec<(String, J)> = fields
            .into_iter()
            .filter(|_| g.below(4) != 0)
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for _ in 0..g.below(3) {
            list.push((
                g.pick(&["role", "index", "logprobs", "x", "provider", ""])
                    .into(),
                gen_any(g, 3),
            ));
        }
        if !list.is_empty() && g.one_in(25) {
            let twice = list[g.below(list.len() as u64) as usize].clone();
            list.push(twice);
        }
        for i in (1..list.len()).rev() {
            list.swap(i, g.below(i as u64 + 1) as usize);
        }
        J::Obj(list)
    }

    fn gen_error(g: &mut Gen) -> J {
        let fields = vec![
            ("code", gen_any(g, 2)),
            ("message", gen_text(g)),
            ("metadata", gen_any(g, 3)),
        ];
        gen_object(g, fields, true)
    }

    fn gen_message(g: &mut Gen) -> J {
        let calls = match g.below(8) {
            0 => J::Null,
            1 => gen_wrong(g, false),
            _ => J::Arr(
                (0..g.below(3))
                    .map(|_| {
                        let index = match g.below(6) {
                            0 => J::Null,
                            1 => gen_count(g),
                            _ => J::Num(g.below(4).to_string()),
                        };
                        let function = gen_object_field(g, |g| {
                            let fields = vec![("name", gen_text(g)), ("arguments", gen_text(g))];
                            gen_object(g, fields, true)
                        });
                        let fields = vec![
                            ("index", index),
                            ("id", gen_text(g)),
                            ("type", J::Str("function".into())),
                            ("function", function),
                        ];
                        gen_object(g, fields, true)
                    })
                    .collect(),
            ),
        };
        let fields = vec![
            ("content", gen_text(g)),
            ("reasoning", gen_text(g)),
            ("reasoning_content", gen_text(g)),
            ("tool_calls", calls),
        ];
        gen_object(g, fields, true)
    }

    fn gen_chunk(g: &mut Gen) -> J {
        let choices = match g.below(10) {
            0 => J::Null,
            1 => gen_wrong(g, false),
            _ => J::Arr(
                (0..g.below(3))
                    .map(|_| {
                        let fields = vec![
                            ("delta", gen_object_field(g, gen_message)),
                            ("message", gen_object_field(g, gen_message)),
                            ("finish_reason", gen_text(g)),
                            ("native_finish_reason", gen_text(g)),
                            ("error", gen_object_field(g, gen_error)),
                        ];
                        gen_object(g, fields, true)
                    })
                    .collect(),
            ),
        };
        let usage = gen_object_field(g, |g| {
            let fields = vec![
                ("prompt_tokens", gen_count(g)),
                ("completion_tokens", gen_count(g)),
                ("total_tokens", gen_count(g)),
                ("prompt_tokens_details", gen_any(g, 2)),
            ];
            gen_object(g, fields, true)
        });
        let fields = vec![
            ("id", gen_text(g)),
            ("model", gen_text(g)),
            ("object", gen_text(g)),
            ("created", J::Num("1740000000".into())),
            ("choices", choices),
            ("usage", usage),
            ("error", gen_object_field(g, gen_error)),
        ];
        gen_object(g, fields, false)
    }

    /// JSON text of `j`, with random whitespace and random (valid) escapes; one time in
    /// `broken` a string gets a lone surrogate escape.
    fn emit(j: &J, g: &mut Gen, broken: u64, out: &mut String) {
        let space = |g: &mut Gen, out: &mut String| {
            if g.one_in(6) {
                out.push_str(g.pick(&[" ", "\n", "\t", "\r\n  "]));
            }
        };
        space(g, out);
        match j {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => emit_string(s, g, broken, out),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    emit(item, g, broken, out);
                }
                space(g, out);
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    space(g, out);
                    emit_string(key, g, broken, out);
                    space(g, out);
                    out.push(':');
                    emit(value, g, broken, out);
                }
                space(g, out);
                out.push('}');
            }
        }
        space(g, out);
    }

    fn emit_string(s: &str, g: &mut Gen, broken: u64, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            let escape_anyway = g.one_in(8);
            match c {
                '"' => out.push_str(if escape_anyway { "\\u0022" } else { "\\\"" }),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '/' if escape_anyway => out.push_str("\\/"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c if escape_anyway => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{:04X}", unit));
                    }
                }
                c => out.push(c),
            }
        }
        if broken > 0 && g.one_in(broken) {
            out.push_str(g.pick(&["\\ud800", "\\udc00x", "\\ud83c\\u0041", "\\ud83c\\n"]));
        }
        out.push('"');
    }

    fn payload(seed: u64, broken: u64) -> String {
        let mut g = Gen(seed | 1);
        let j = gen_chunk(&mut g);
        let mut out = String::new();
        emit(&j, &mut g, broken, &mut out);
        out
    }

    // ---- the properties ----

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 4000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Generated chunks of every shape (valid, wrong types, duplicate fields, escapes,
        /// whitespace, odd numbers) decode as serde_json decoded them.
        #[test]
        fn agrees_with_serde_json_on_generated_chunks(seed in any::<u64>()) {
            let data = payload(seed, 0);
            if let Err(e) = agree(&data) {
                prop_assert!(false, "{}", e);
            }
        }

        /// ... including lone surrogates, refused in strings that are read, accepted in skipped
        /// ones.
        #[test]
        fn agrees_with_serde_json_on_lone_surrogates(seed in any::<u64>()) {
            let data = payload(seed, 6);
            if let Err(e) = agree(&data) {
                prop_assert!(false, "{}", e);
            }
        }

        /// A few random edits of a generated chunk: still the same verdict as serde_json (so
        /// the first problem in document order is classified alike).
        #[test]
        fn agrees_with_serde_json_after_random_edits(seed in any::<u64>(), edits in proptest::collection::vec((any::<u16>(), 0u8..3, any::<u8>()), 1..4)) {
            let mut chars: Vec<char> = payload(seed, 0).chars().collect();
            const ALPHABET: &[u8] = b"{}[]:,\"\\ -0123456789.eEtrufalsn\nxu";
            for (at, how, what) in edits {
                let at = at as usize % (chars.len() + 1);
                let c = ALPHABET[what as usize % ALPHABET.len()] as char;
                match how {
                    0 if at < chars.len() => { chars.remove(at); }
                    1 if at < chars.len() => chars[at] = c,
                    _ => chars.insert(at, c),
                }
            }
            let data: String = chars.into_iter().collect();
            if let Err(e) = agree(&data) {
                prop_assert!(false, "{}", e);
            }
        }

        /// No input panics: random bytes (as text), random text.
        #[test]
        fn never_panics_on_random_input(bytes in proptest::collection::vec(any::<u8>(), 0..256), text in ".{0,64}") {
            let lossy = String::from_utf8_lossy(&bytes);
            let _ = decode_event_data(&lossy);
            let _ = decode_body(&lossy);
            let _ = decode_event_data(&text);
            let _ = decode_event_data(&format!("{{\"choices\":[{{\"delta\":{text}}}]}}"));
        }
    }

    #[test]
    fn handpicked_cases_agree_with_serde_json() {
        let cases = [
            r#"{"choices":[{"delta":{"content":"\ud800"}}]}"#,
            r#"{"choices":[{"delta":{"content":"x"}}],"skipped":"\ud800"}"#,
            r#"{"id":"a","id":"b"}"#,
            r#"{"id":"a","x":1,"x":2}"#,
            r#"{"usage":{"prompt_tokens":-0}}"#,
            r#"{"usage":{"prompt_tokens":1e400}}"#,
            r#"{"usage":{"prompt_tokens":1e4}}"#,
            r#"{"usage":{"prompt_tokens":01}}"#,
            r#"{"usage":{"prompt_tokens":18446744073709551615}}"#,
            r#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
            r#"{"usage":{"prompt_tokens":18446744073709551609}}"#,
            r#"{"usage":{"prompt_tokens":18446744073709551620}}"#,
            r#"{"usage":{"prompt_tokens":1844674407370955162}}"#,
            r#"{"usage":{"prompt_tokens":99999999999999999999}}"#,
            r#"{"usage":{"prompt_tokens":184467440737095516150}}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":4294967296}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1.0}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":null,"id":"c"},{"id":"d"}]}}]}"#,
            r#"{"choices":[]} x"#,
            r#"{"choices":[],}"#,
            r#"{"choices":[1,]}"#,
            "{\"choices\":[{\"delta\":{\"content\":\"a\u{1}b\"}}]}",
            r#"{"error":{"code":502.0,"message":"m","metadata":{"b": [1, 2.50, "x y"], "a": null}}}"#,
            r#"{"error":{"code":{"k":[true]},"message":null}}"#,
            r#"{"error":{"message":5}}"#,
            r#"{"object":5,"object":[],"choices":[{"native_finish_reason":{},"delta":{"content":"x"}}]}"#,
            r#"{"error":{"metadata":"\ud800","metadata":1e999,"message":"m"}}"#,
            r#"{"\u0069d":"escaped key","choices":[{"\u0064elta":{"content":"ok"}}]}"#,
            r#"{"choices":[{"delta":{"content":"a\/b\u00e9\ud83c\udf99"}}]}"#,
            r#"{"choices":[{"delta":{"content":tru}}]}"#,
            r#"{"choices":[{"delta":{"content":-}}]}"#,
            r#"{"choices":[{"delta":{"content":"x"},"message":{"content":"y"}}]}"#,
            r#"{"choices":[{"delta":null,"message":{"content":"y"}}]}"#,
            r#"{"choices":[{"delta":{}},{"delta":{"content":5}}]}"#,
            r#"{"usage":null,"error":null,"choices":null}"#,
            r#"{"x":[[[[{"a":[{}]}]]]],"choices":[{"delta":{"content":"deep"}}]}"#,
            r#"{"x":{"a" 1}}"#,
            r#"{"x":[1 2]}"#,
            r#"{"x":"\q"}"#,
            r#"{"x":"\u12G4"}"#,
            r#"{"x":1.}"#,
            r#"{"x":1e}"#,
            r#"{"x":-01}"#,
            "[DONE]",
            "\"a string\"",
            "[1, 2",
        ];
        for data in cases {
            if let Err(e) = agree(data) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn nesting_limits_match_serde_json_and_deep_input_is_safe() {
        for depth in [100, 120, 121, 122, 123, 124, 125, 126, 127, 128, 200] {
            let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            // A read value (an error's `code`) counts against the limit...
            let data = format!(r#"{{"choices":[{{"error":{{"message":"m","code":{nested}}}}}]}}"#);
            agree(&data).unwrap();
            // ... a skipped one (an unknown field, an error's `metadata`) does not.
            let skipped = format!(r#"{{"x":{nested},"id":"a"}}"#);
            agree(&skipped).unwrap();
            let metadata =
                format!(r#"{{"choices":[{{"error":{{"message":"m","metadata":{nested}}}}}]}}"#);
            agree(&metadata).unwrap();
        }
        // Skipped values nest without limit and without stack.
        let deep = format!(
            "{{\"x\":{}1{}}}",
            "[{\"a\":".repeat(100_000),
            "}]".repeat(100_000)
        );
        assert!(matches!(decode_event_data(&deep), Decoded::Chunk(_)));
        let open = "[".repeat(100_000);
        assert!(matches!(
            decode_event_data(&open),
            Decoded::Malformed(Malformed {
                kind: MalformedKind::Syntax,
                ..
            })
        ));
        let metadata = format!(
            "{{\"error\":{{\"metadata\":{}0{}}}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(matches!(decode_event_data(&metadata), Decoded::Chunk(_)));
        for unclosed in ["code", "metadata"] {
            let data = format!("{{\"error\":{{\"{unclosed}\":{}}}}}", "[".repeat(100_000));
            assert!(matches!(
                decode_event_data(&data),
                Decoded::Malformed(Malformed {
                    kind: MalformedKind::Syntax,
                    ..
                })
            ));
        }
    }

    #[test]
    fn the_first_special_byte_of_a_string_is_found_at_every_offset() {
        // Bytes next to the special ones (and with the high bit set) must not be taken for
        // them; the special ones must be found wherever they sit in an 8-byte word.
        let fillers = [
            b'a', b' ', b'!', b'#', b'[', b']', 0x7F, 0x80, 0xA2, 0xDC, 0xFF,
        ];
        let specials = [b'"', b'\\', 0x00, 0x1F, b'\n'];
        for len in 0..40 {
            for filler in fillers {
                let mut bytes = vec![filler; len];
                assert_eq!(scan_string(&bytes, 0), len);
                for special in specials {
                    for at in 0..len {
                        bytes[at] = special;
                        for from in 0..=at {
                            assert_eq!(scan_string(&bytes, from), at, "{bytes:?} from {from}");
                        }
                        bytes[len - 1] = special; // a later one does not hide it
                        assert_eq!(scan_string(&bytes, 0), at, "{bytes:?}");
                        bytes[len - 1] = filler;
                        bytes[at] = filler;
                    }
                }
            }
        }
    }

    #[test]
    fn names_equal_only_when_every_byte_is_equal() {
        for len in 0..40 {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same(&a, &a.clone()), "{len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same(&a, &b), "{len} {at}");
                assert!(!same(&b, &a), "{len} {at}");
            }
        }
    }

    #[test]
    fn codes_are_compact_json_text() {
        let code = |body: &str| match decode_body(body) {
            Decoded::Chunk(c) => c.error.and_then(|e| e.code),
            other => panic!("not a chunk: {other:?}"),
        };
        assert_eq!(
            code("{\"error\":{\"code\": 502 ,\"message\":\"m\"}}").as_deref(),
            Some("502")
        );
        assert_eq!(
            code("{\"error\":{\"code\":{ \"provider_name\" : \"Mock A\",\n \"raw\": [1, {\"x\": \"a b\\\" c\"}] }}}")
                .as_deref(),
            Some(r#"{"provider_name":"Mock A","raw":[1,{"x":"a b\" c"}]}"#)
        );
    }
}
