//! The request that asks a provider to continue a cut answer.
//!
//! The original messages, then either the text so far as a trailing assistant message, where
//! the provider continues such a message by itself (prefill), or a user message asking to
//! continue exactly where the text stops, with the text quoted after the request (instruction;
//! quoted once, not also as an assistant message, so the text is not sent twice). The body is
//! edited as text (the original's fields stay byte for byte): no JSON library on this path.

use crate::core::machine::push_json_string;
use crate::core::progress::json::field_span;

/// The words that ask for a continuation where prefill is not available; the text so far
/// follows them after a blank line.
pub const INSTRUCTION: &str = "Your answer was cut off. Continue it exactly where it stops, \
even in the middle of a word or sentence. Do not repeat any of it, do not comment, and do not \
start over: write only the text that comes next. Your answer so far:";

/// How a provider is asked to continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContinuationMode {
    /// The text so far (without trailing whitespace) as a trailing assistant message, which
    /// the model continues.
    Prefill,
    /// A user message: [`INSTRUCTION`], a blank line, and the text so far.
    Instruction,
}

impl ContinuationMode {
    /// `"prefill"` or `"instruction"` (the result's `continuation.mode`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContinuationMode::Prefill => "prefill",
            ContinuationMode::Instruction => "instruction",
        }
    }

    /// The mode for a provider at `url` serving `model`: prefill for Anthropic's models (their
    /// API, and OpenRouter's `anthropic/…` models, continue a trailing assistant message),
    /// the instruction for every other one (an OpenAI-style model answers a trailing assistant
    /// message with a new message instead).
    pub fn for_provider(url: &str, model: &str) -> ContinuationMode {
        let model = model.to_ascii_lowercase();
        if model.starts_with("anthropic/")
            || model.contains("claude")
            || url.contains("anthropic.com")
        {
            ContinuationMode::Prefill
        } else {
            ContinuationMode::Instruction
        }
    }
}

/// `body` (a chat-completions request body's JSON text, with a `messages` array) asking to
/// continue `text_so_far` in `mode`. Refused when `body` has no `messages` array.
pub fn continuation_body(
    body: &str,
    text_so_far: &str,
    mode: ContinuationMode,
) -> Result<String, String> {
    let span = field_span(body, "messages")
        .filter(|span| body[span.clone()].starts_with('['))
        .ok_or("the request body has no messages array to continue")?;
    let array = &body[span.clone()];
    let inner = array[1..array.len() - 1].trim();
    let mut out = String::with_capacity(body.len() + text_so_far.len() + INSTRUCTION.len() + 64);
    out.push_str(&body[..span.start]);
    out.push('[');
    out.push_str(inner);
    if !inner.is_empty() {
        out.push(',');
    }
    match mode {
        ContinuationMode::Prefill => {
            // Anthropic refuses a final assistant message that ends with whitespace; the model
            // writes it again, and the overlap rule drops it once.
            out.push_str("{\"role\":\"assistant\",\"content\":");
            push_json_string(&mut out, text_so_far.trim_end());
        }
        ContinuationMode::Instruction => {
            out.push_str("{\"role\":\"user\",\"content\":");
            push_json_string(&mut out, &format!("{INSTRUCTION}\n\n{text_so_far}"));
        }
    }
    out.push_str("}]");
    out.push_str(&body[span.end..]);
    Ok(out)
}
