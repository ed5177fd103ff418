//! Decoding OpenAI-compatible chat chunks, as OpenRouter streams them.
//!
//! Input: the `data` of one SSE event (or a whole non-streaming JSON body). Output: what that
//! event means for an answer: text, reasoning, tool-call fragments, finish, usage, an upstream
//! error, the `[DONE]` sentinel, or a malformed payload the caller counts and skips.
//!
//! ## What it must never do
//! - Touch the platform: no platform crate, no clock, no I/O. It runs natively under
//!   `cargo test` exactly as in wasm.
//! - Panic, on any input, or recurse on nesting (skipped values are walked with a bit stack).
//! - Decode what the guard does not read: such fields are skipped like unknown ones, whatever
//!   they hold, so a chunk is never refused over them.
//! - Copy a string it can borrow (only strings with escapes are built), or format a message
//!   for a malformed payload (a [`Malformed`] is a small `Copy` value).
//! - Use serde: serde_json and its float formatting weighed more in the wasm module than the
//!   rest of the decoder. serde_json is the tests' oracle instead: `tests.rs` holds the walker
//!   to its verdict on generated chunks, valid or not.
//!
//! The parts: `types.rs` (the decoded types), `walker.rs` (the JSON scanner: tokens, records,
//! skipping), `shapes.rs` (which fields of a chat chunk are read), `repeat.rs` (a stream's
//! decoder, [`ChunkDecoder`], which reads a chunk that repeats the last one's bytes around a new
//! text by that text alone), `tests.rs`.
//!
//! ## The stream format (OpenRouter's API reference, "Streaming")
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
//! ## The JSON it accepts
//! JSON (RFC 8259) of this shape, accepted and refused as a serde_json deserializer of these
//! structs (`Option` fields, unknown fields ignored, duplicate fields refused) would:
//!
//! ```text
//! chunk     = object of  id, model: string | null;  choices: [choice, …] | null;
//!                        usage: usage | null;  error: error | null
//! choice    = record of  delta, message: message | null;  finish_reason: string | null;
//!                        error: error | null
//! message   = record of  content, reasoning, reasoning_content: string | null;
//!                        tool_calls: [tool_call, …] | null
//! tool_call = record of  index: count below 2^32 | null (absent: its position);
//!                        id: string | null;  function: (record of name, arguments:
//!                        string | null) | null
//! usage     = record of  prompt_tokens, completion_tokens, total_tokens: count (absent: 0)
//! error     = record of  code: any JSON (kept as a string's value, or as compact JSON text);
//!                        message: string | null (absent or null: "")
//! count     = a whole number from 0 to 2^64 - 1, without fraction or exponent
//! record    = {"field": value, …}  fields in any order, each at most once, others skipped
//!           | [value, …]           the fields by position, in the order listed (serde's way)
//! ```
//!
//! Only the first choice is kept (chat UIs do not stream n > 1); the others are checked. Only
//! `id`, `model`, the first choice's `delta` (or `message`, for a whole answer) and
//! `finish_reason`, `usage`, and an `error` (top level, else the choice's) are decoded; every
//! other field (`object`, `created`, `provider`, `native_finish_reason`, `logprobs`, an error's
//! `metadata`, …) is skipped unread. The first problem in document order decides the verdict:
//! - *Syntax*: not JSON: bad tokens, a bad escape or a lone surrogate in a string that is read
//!   (a skipped string only needs well-formed escapes), a control character in a string, a
//!   read number beyond the range of `f64`, nesting deeper than 127 containers in what is read
//!   (what is skipped nests without limit), anything after the object;
//! - *Shape*: valid JSON of the wrong type for a field (`"content": 5`, `"choices": {}`, a
//!   negative or fractional count), a field given twice, or JSON that is not an object;
//! - *Empty*: nothing but whitespace.
//!
//! ## What counts as progress
//! *Progress* (which feeds the first-token and idle deadlines) is any of: non-empty `content`,
//! non-empty `reasoning` / `reasoning_content`, at least one `tool_calls` fragment, a
//! `finish_reason`, or `usage`. Not progress: SSE comments (`: OPENROUTER PROCESSING`), chunks
//! whose delta is empty or carries only a `role`, malformed payloads, and errors (an error ends
//! the attempt instead).

mod repeat;
mod shapes;
mod types;
mod walker;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use repeat::ChunkDecoder;
pub use types::{Chunk, Decoded, Malformed, MalformedKind, ToolCallDelta, UpstreamError, Usage};
use walker::Walker;

/// The sentinel OpenAI-compatible servers send as the last event's data.
pub const DONE_SENTINEL: &str = "[DONE]";

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
    decode_json_spanned(json).0
}

/// [`decode_json`], with where the chunk's `content` value lies in `json` when it kept one.
fn decode_json_spanned(json: &str) -> (Decoded<'_>, Option<(usize, usize)>) {
    if json.is_empty() {
        let empty = Malformed {
            kind: MalformedKind::Empty,
            line: 0,
            column: 0,
        };
        return (Decoded::Malformed(empty), None);
    }
    let mut walker = Walker::new(json);
    if !json.starts_with('{') {
        // Only an object is a chunk; anything else is the wrong shape if it is JSON at all.
        let kind = match walker.value(false).and_then(|()| walker.end()) {
            Ok(()) => MalformedKind::Shape,
            Err(_) => MalformedKind::Syntax,
        };
        let malformed = Malformed {
            kind,
            line: 1,
            column: 1,
        };
        return (Decoded::Malformed(malformed), None);
    }
    // Filled in place: a chunk is large, and each move of it is a `memory.copy` in wasm.
    let mut chunk = Chunk::default();
    match walker.chunk(&mut chunk) {
        Ok(()) => (Decoded::Chunk(chunk), walker.content_span),
        Err(fault) => (Decoded::Malformed(walker.malformed(fault)), None),
    }
}
