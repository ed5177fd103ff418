//! The texts the scenarios stream, as plain constants: the one source for the mock and for the
//! test suites that check what a client made of them.
//!
//! Only `const` items, no dependency and no `use`: the wasm test suites, which cannot depend on
//! this native crate, compile this file as their own module (`tests/wasm_common/mod.rs`), so
//! there is no copy to drift. The mock's unit tests check the derived ones (the pieces of
//! [`DEFAULT_TEXT`]) against what the scenarios really send.

/// The answer text streamed when no `text` parameter is given.
pub const DEFAULT_TEXT: &str = "Hello from the mock upstream. This answer streams in small pieces.";

/// How many content chunks the normal stream sends for [`DEFAULT_TEXT`] (its word-sized pieces).
pub const DEFAULT_PIECES: usize = 11;

/// The first three pieces of [`DEFAULT_TEXT`]: what a `chunks=3` scenario sends before it
/// misbehaves.
pub const FIRST_THREE: &str = "Hello from the ";

/// The answer text of `multibyte-crlf` when no `text` parameter is given.
pub const MULTIBYTE_TEXT: &str = "Grüße, 世界! 🎙️ voice → text ✓ ";

/// The model name echoed when the request names none.
pub const DEFAULT_MODEL: &str = "mock/model";

/// The SSE comment OpenRouter sends while a request is queued or processing.
pub const KEEPALIVE_COMMENT: &str = ": OPENROUTER PROCESSING";

/// The content of each `endless` chunk.
pub const TICK: &str = "tick ";

/// The content of each `long` chunk.
pub const LONG_TOKEN: &str = "tok ";

/// The argument string that `tool-calls` streams in fragments.
pub const TOOL_ARGUMENTS: &str = "{\"city\":\"Paris\"}";

/// The fragments `tool-calls` splits [`TOOL_ARGUMENTS`] into.
pub const TOOL_ARGUMENT_FRAGMENTS: &[&str] = &["{\"ci", "ty\":\"Pa", "ris\"}"];

/// How every reasoning piece of `reasoning-then-content` starts (`Thinking step N. `).
pub const REASONING_PREFIX: &str = "Thinking step";

/// The invalid event that `malformed-event` puts in the middle of its stream.
pub const MALFORMED_EVENT: &str = "data: {\"id\":\"gen-mock\", \"choices\": [\n\n";

/// Size of each write of `huge-line`.
pub const HUGE_WRITE: usize = 64 * 1024;

/// The function every tool-call scenario calls.
pub const TOOL_NAME: &str = "get_weather";

/// The call id of the chat and Responses tool calls.
pub const TOOL_CALL_ID: &str = "call_1";

/// The id of `anthropic-tool-use`'s `tool_use` block.
pub const ANTHROPIC_TOOL_USE_ID: &str = "toolu_mock_1";

/// The event type (and SSE event name) of the Responses API's data-level keepalive.
pub const RESPONSES_KEEPALIVE: &str = "keepalive";

/// The message of `anthropic-error`'s `overloaded_error`.
pub const OVERLOADED_MESSAGE: &str = "Overloaded";

/// The URL of the citation `logprobs-annotations` sends (a reserved name that resolves nowhere).
pub const CITATION_URL: &str = "https://mock-upstream.invalid/source";

/// The title of that citation.
pub const CITATION_TITLE: &str = "Mock upstream source";

/// The log probabilities `logprobs-annotations` gives its tokens in turn, written as OpenAI
/// writes them (some with a two-digit exponent, which a re-serialising proxy would not keep).
pub const LOGPROBS: &[&str] = &[
    "-0.31725305",
    "-1.9361265e-07",
    "-0.0014890312",
    "-2.3841855e-07",
    "-0.00012094693",
];
