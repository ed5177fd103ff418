//! The scenario table: what each named scenario sends, built as a [`Plan`] of timed writes (for
//! streams) or a fixed response.
//!
//! [`SCENARIOS`] (here) is the one list of scenario names; the index page, the endpoints, the
//! tests and the demo read it. The replies live beside it, one file per family: `stalls` (timing),
//! `formats` (wire format), `errors` (statuses), `extras` (tool calls, reasoning, logprobs),
//! `continuation`, `controlled`, `responses` (the Responses API) and `anthropic` (Messages);
//! what they are built from is in `request` (parameters and request), `ctx`, `chunks` (the chat
//! chunk JSON) and `plan` (timed writes and SSE framing).

mod anthropic;
mod chunks;
mod continuation;
mod controlled;
mod ctx;
mod errors;
mod extras;
mod formats;
mod plan;
mod request;
mod responses;
mod stalls;
#[cfg(test)]
mod tests;

use crate::control::Control;
use crate::texts::*;

pub use continuation::{continuation_of, longest_prefix_in, MIN_GIVEN_CHARS};
pub use request::{pieces, prompt_tokens, reasoning_pieces, Params, UsagePolicy};

pub(crate) use ctx::Ctx;
pub(crate) use plan::{Builder, Fixed, Plan, Reply, Step, Style, Tail, LF};
pub(crate) use request::ChatRequest;

/// One scenario: the name a path selects it by, its line on the index page, and what it sends.
/// [`SCENARIOS`] holds them all; the index page, the chat endpoint and the tests read it.
#[derive(Debug)]
pub struct Scenario {
    /// The path segment that selects it: `POST /scenario/<name>/v1/chat/completions`.
    pub name: &'static str,
    /// What it does, in one line (`GET /` lists it).
    pub about: &'static str,
    /// The endpoint it answers under `/scenario/<name>/`.
    pub api: Api,
    /// Builds its answer to one request.
    reply: ReplyFn,
}

/// The API a scenario speaks, and so the endpoint it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI-compatible chat completions: `POST …/v1/chat/completions`.
    Chat,
    /// The OpenAI Responses API: `POST …/v1/responses`.
    Responses,
    /// Anthropic Messages: `POST …/v1/messages`.
    Messages,
}

impl Api {
    /// The path a scenario of this API is served at, after `/scenario/<name>`.
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Responses => "/v1/responses",
            Api::Messages => "/v1/messages",
        }
    }

    /// The API whose endpoint `path` ends with (`…/chat/completions`, `…/responses`, `…/messages`).
    pub fn of_path(path: &str) -> Option<Api> {
        [Api::Chat, Api::Responses, Api::Messages]
            .into_iter()
            .find(|api| {
                let tail = api.path().trim_start_matches("/v1");
                path == &tail[1..] || path.ends_with(tail)
            })
    }
}

/// The scenario called `name`, if there is one.
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// What builds a scenario's answer to one request.
type ReplyFn = fn(&Ctx) -> Reply;

impl Scenario {
    const fn new(api: Api, name: &'static str, about: &'static str, reply: ReplyFn) -> Self {
        Scenario {
            name,
            about,
            api,
            reply,
        }
    }
}

/// A chat-completions scenario.
const fn chat(name: &'static str, about: &'static str, reply: ReplyFn) -> Scenario {
    Scenario::new(Api::Chat, name, about, reply)
}

/// A Responses API scenario.
const fn responses_api(name: &'static str, about: &'static str, reply: ReplyFn) -> Scenario {
    Scenario::new(Api::Responses, name, about, reply)
}

/// An Anthropic Messages scenario.
const fn messages(name: &'static str, about: &'static str, reply: ReplyFn) -> Scenario {
    Scenario::new(Api::Messages, name, about, reply)
}

/// The line of every `http-<status>` scenario but the `Retry-After` ones.
const STATUS_ABOUT: &str = "that status with an OpenRouter-style JSON error body";
/// The line of the statuses that announce a `Retry-After`.
const RETRY_ABOUT: &str = "that status with a JSON error body and 'Retry-After: <retry_after>'";

/// Every scenario, in the order the index page lists them.
pub const SCENARIOS: &[Scenario] = &[
    chat("normal", "the default stream: content chunks, finish chunk, usage chunk, [DONE]", |c| c.normal_stream(c.builder(), LF)),
    chat("keepalive-then-content", "`keepalives` ': OPENROUTER PROCESSING' comments every `keepalive_ms`, then the normal stream", stalls::keepalive_then_content),
    chat("keepalive-forever", "SSE headers, then a keepalive comment every `keepalive_ms` until the client leaves", stalls::keepalive_forever),
    chat("no-headers", "reads the request, never sends response headers", |_| Reply::NoHeaders),
    chat("headers-then-silence", "SSE headers, then nothing ever", |c| c.builder().finish(Tail::Silence)),
    chat("stall-after-chunks", "`chunks` content chunks, then silence", |c| c.first_chunks().finish(Tail::Silence)),
    chat("stall-with-keepalives", "`chunks` content chunks, then keepalive comments forever", |c| c.first_chunks().finish(c.keepalives_forever())),
    chat("close-without-done", "`chunks` content chunks, then a clean end of body without finish chunk or [DONE]", |c| c.first_chunks().finish(Tail::End)),
    chat("multibyte-crlf", "multi-byte text with CRLF line ends, written 1 to 7 bytes at a time (splits inside characters and between CR and LF)", formats::multibyte_crlf),
    chat("cr-only", "the normal stream with bare CR line ends", formats::cr_only),
    chat("bom-nospace", "a UTF-8 BOM, then events written as 'data:{...}' (no space)", formats::bom_nospace),
    chat("error-before-content", "200 SSE, one chunk with a top-level error (code 502) and finish_reason error, [DONE]", |c| c.then_done(c.builder(), &c.gen.error_top())),
    chat("error-after-content", "`chunks` content chunks, then the top-level error chunk, [DONE]", |c| c.then_done(c.first_chunks(), &c.gen.error_top())),
    chat("choice-error", "`chunks` content chunks, then a chunk whose error sits inside the choice, [DONE]", |c| c.then_done(c.first_chunks(), &c.gen.choice_error())),
    chat("http-400", STATUS_ABOUT, |c| c.status(400)),
    chat("http-401", STATUS_ABOUT, |c| c.status(401)),
    chat("http-402", STATUS_ABOUT, |c| c.status(402)),
    chat("http-403", STATUS_ABOUT, |c| c.status(403)),
    chat("http-404", STATUS_ABOUT, |c| c.status(404)),
    chat("http-408", STATUS_ABOUT, |c| c.status(408)),
    chat("http-413", STATUS_ABOUT, |c| c.status(413)),
    chat("http-422", STATUS_ABOUT, |c| c.status(422)),
    chat("http-429", RETRY_ABOUT, |c| c.status(429)),
    chat("http-429-date", "429 with Retry-After as an HTTP date `retry_after` seconds ahead", errors::http_429_date),
    chat("http-500", STATUS_ABOUT, |c| c.status(500)),
    chat("http-502", STATUS_ABOUT, |c| c.status(502)),
    chat("http-503", RETRY_ABOUT, |c| c.status(503)),
    chat("html-200", "200 text/html page", errors::html_200),
    chat("json", "a whole non-streaming chat.completion JSON body, whatever `stream` says", extras::json),
    chat("malformed-event", "the normal stream with one invalid-JSON event in the middle", formats::malformed_event),
    chat("huge-line", "one 'data: ' line carrying `size` bytes of 'x', in 64 KiB writes, then the normal end", formats::huge_line),
    chat("reset-after-content", "`chunks` content chunks, then (after `delay_ms`, at least 50 ms) a TCP reset", stalls::reset_after_content),
    chat("data-after-done", "the normal stream, [DONE], one more content event, and the body left open", formats::data_after_done),
    chat("endless", "one 'tick ' chunk every `delay_ms` (default 50) until the client leaves", stalls::endless),
    chat("reasoning-then-content", "`chunks` delta.reasoning chunks, then the normal stream", extras::reasoning_then_content),
    chat("tool-calls", "delta.tool_calls fragments for get_weather, finish_reason tool_calls, [DONE]", extras::tool_calls),
    chat("long", "`n` 'tok ' chunks as fast as possible (a keepalive comment every 100), then the normal end", stalls::long),
    chat("logprobs-annotations", "OpenAI-shaped chunks (service_tier, system_fingerprint, refusal: null, logprobs per token, a url_citation annotation); the usage chunk (and usage: null on every chunk) only when stream_options.include_usage asks", extras::logprobs_annotations),
    chat("continue", "continues a prefill (last message the assistant's) or a last user message asking to continue where a quoted text stops, with the rest of the answer text (`restate` words of it repeated first); the ledger's mode says which", continuation::continuation),
    chat("controlled", "at /scenario/controlled/<id>/v1/chat/completions: does what POST /_control/<id> last set ({\"first_token_ms\":N,\"mode\":\"ok|stall|stall-after=N|http-503\"}), read per request", controlled::controlled),
    responses_api("responses-normal", "Responses API: created, in_progress, output_item.added, content_part.added, output_text.delta per piece, the .done events, completed with usage; stream:false gets the Response JSON", responses::normal),
    responses_api("responses-tool-call", "Responses API: a function_call item for get_weather with function_call_arguments.delta fragments and .done", responses::tool_call),
    responses_api("responses-keepalive-then-stall", "Responses API: created, in_progress, `keepalives` {\"type\":\"keepalive\"} events every `keepalive_ms`, then silence", responses::keepalive_then_stall),
    responses_api("responses-stall-after-deltas", "Responses API: the opening events and `chunks` output_text.delta events, then silence", responses::stall_after_deltas),
    messages("anthropic-normal", "Anthropic Messages: message_start, content_block_start, ping, text_delta per piece, content_block_stop, message_delta (end_turn, usage), message_stop; stream:false gets the Message JSON", anthropic::normal),
    messages("anthropic-tool-use", "Anthropic Messages: a tool_use block for get_weather with input_json_delta fragments, stop_reason tool_use", anthropic::tool_use),
    messages("anthropic-ping-forever", "Anthropic Messages: message_start, then a ping every `keepalive_ms` until the client leaves", anthropic::ping_forever),
    messages("anthropic-stall-after-deltas", "Anthropic Messages: the opening events and `chunks` text deltas, then silence", anthropic::stall_after_deltas),
    messages("anthropic-error", "Anthropic Messages: the opening events, `chunks` text deltas, an error event (overloaded_error), end; stream:false gets 529", anthropic::error),
];

/// Builds the reply of scenario `name` (and what it made of the request, for the ledger), or
/// `None` when there is no such scenario. `control` is the setting of a `controlled` provider.
pub(crate) fn build(
    name: &str,
    p: &Params,
    req: &ChatRequest,
    conn_id: u64,
    control: Option<Control>,
) -> Option<(Reply, Option<String>)> {
    let reply = scenario(name)?.reply;
    let mut ctx = Ctx::new(p, req, conn_id);
    ctx.control = control;
    let r = reply(&ctx);
    Some((r, ctx.mode.into_inner()))
}
