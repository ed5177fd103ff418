//! The scenario table: what each named scenario sends, built as a [`Plan`] of timed writes (for
//! streams) or a fixed response.

use std::cell::RefCell;
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use crate::control::{Control, Mode};
use crate::texts::*;
use crate::{anthropic, responses};

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
    reply: fn(&Ctx) -> Reply,
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

/// The line of every `http-<status>` scenario but the `Retry-After` ones.
const STATUS_ABOUT: &str = "that status with an OpenRouter-style JSON error body";
/// The line of the statuses that announce a `Retry-After`.
const RETRY_ABOUT: &str = "that status with a JSON error body and 'Retry-After: <retry_after>'";

/// Every scenario, in the order the index page lists them.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "normal",
        about: "the default stream: content chunks, finish chunk, usage chunk, [DONE]", api: Api::Chat,
        reply: |c| c.normal_stream(c.builder(), LF),
    },
    Scenario {
        name: "keepalive-then-content",
        about: "`keepalives` ': OPENROUTER PROCESSING' comments every `keepalive_ms`, then the normal stream", api: Api::Chat,
        reply: keepalive_then_content,
    },
    Scenario {
        name: "keepalive-forever",
        about: "SSE headers, then a keepalive comment every `keepalive_ms` until the client leaves", api: Api::Chat,
        reply: |c| {
            let mut b = c.builder();
            b.event(LF.comment());
            b.finish(c.keepalives_forever())
        },
    },
    Scenario {
        name: "no-headers",
        about: "reads the request, never sends response headers", api: Api::Chat,
        reply: |_| Reply::NoHeaders,
    },
    Scenario {
        name: "headers-then-silence",
        about: "SSE headers, then nothing ever", api: Api::Chat,
        reply: |c| c.builder().finish(Tail::Silence),
    },
    Scenario {
        name: "stall-after-chunks",
        about: "`chunks` content chunks, then silence", api: Api::Chat,
        reply: |c| c.first_chunks().finish(Tail::Silence),
    },
    Scenario {
        name: "stall-with-keepalives",
        about: "`chunks` content chunks, then keepalive comments forever", api: Api::Chat,
        reply: |c| c.first_chunks().finish(c.keepalives_forever()),
    },
    Scenario {
        name: "close-without-done",
        about: "`chunks` content chunks, then a clean end of body without finish chunk or [DONE]", api: Api::Chat,
        reply: |c| c.first_chunks().finish(Tail::End),
    },
    Scenario {
        name: "multibyte-crlf",
        about: "multi-byte text with CRLF line ends, written 1 to 7 bytes at a time (splits inside characters and between CR and LF)", api: Api::Chat,
        reply: multibyte_crlf,
    },
    Scenario {
        name: "cr-only",
        about: "the normal stream with bare CR line ends", api: Api::Chat,
        reply: |c| c.normal_stream(c.builder(), Style { nl: "\r", sep: " " }),
    },
    Scenario {
        name: "bom-nospace",
        about: "a UTF-8 BOM, then events written as 'data:{...}' (no space)", api: Api::Chat,
        reply: |c| {
            let mut b = c.builder();
            b.event(Bytes::from_static("\u{feff}".as_bytes()));
            c.normal_stream(b, Style { nl: "\n", sep: "" })
        },
    },
    Scenario {
        name: "error-before-content",
        about: "200 SSE, one chunk with a top-level error (code 502) and finish_reason error, [DONE]", api: Api::Chat,
        reply: |c| c.then_done(c.builder(), &c.gen.error_top()),
    },
    Scenario {
        name: "error-after-content",
        about: "`chunks` content chunks, then the top-level error chunk, [DONE]", api: Api::Chat,
        reply: |c| c.then_done(c.first_chunks(), &c.gen.error_top()),
    },
    Scenario {
        name: "choice-error",
        about: "`chunks` content chunks, then a chunk whose error sits inside the choice, [DONE]", api: Api::Chat,
        reply: |c| c.then_done(c.first_chunks(), &c.gen.choice_error()),
    },
    Scenario { name: "http-400", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(400) },
    Scenario { name: "http-401", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(401) },
    Scenario { name: "http-402", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(402) },
    Scenario { name: "http-403", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(403) },
    Scenario { name: "http-404", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(404) },
    Scenario { name: "http-408", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(408) },
    Scenario { name: "http-413", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(413) },
    Scenario { name: "http-422", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(422) },
    Scenario { name: "http-429", about: RETRY_ABOUT, api: Api::Chat, reply: |c| c.status(429) },
    Scenario {
        name: "http-429-date",
        about: "429 with Retry-After as an HTTP date `retry_after` seconds ahead", api: Api::Chat,
        reply: http_429_date,
    },
    Scenario { name: "http-500", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(500) },
    Scenario { name: "http-502", about: STATUS_ABOUT, api: Api::Chat, reply: |c| c.status(502) },
    Scenario { name: "http-503", about: RETRY_ABOUT, api: Api::Chat, reply: |c| c.status(503) },
    Scenario {
        name: "html-200",
        about: "200 text/html page", api: Api::Chat,
        reply: |_| Reply::Fixed(Fixed {
            status: 200,
            content_type: "text/html; charset=utf-8",
            headers: Vec::new(),
            body: "<!doctype html>\n<html><head><title>Mock upstream</title></head>\
                   <body><h1>Welcome</h1><p>This is an HTML page, not an API response.</p></body></html>\n"
                .to_string(),
        }),
    },
    Scenario {
        name: "json",
        about: "a whole non-streaming chat.completion JSON body, whatever `stream` says", api: Api::Chat,
        reply: |c| Reply::Fixed(Fixed {
            status: 200,
            content_type: "application/json",
            headers: vec![("X-Generation-Id", c.gen.id.clone())],
            body: c.gen.completion(&c.text, c.usage(c.pieces.len())),
        }),
    },
    Scenario {
        name: "malformed-event",
        about: "the normal stream with one invalid-JSON event in the middle", api: Api::Chat,
        reply: malformed_event,
    },
    Scenario {
        name: "huge-line",
        about: "one 'data: ' line carrying `size` bytes of 'x', in 64 KiB writes, then the normal end", api: Api::Chat,
        reply: huge_line,
    },
    Scenario {
        name: "reset-after-content",
        about: "`chunks` content chunks, then (after `delay_ms`, at least 50 ms) a TCP reset", api: Api::Chat,
        reply: |c| {
            let mut b = c.first_chunks();
            // A reset discards what the peer has not read yet (browsers drop it), so give the
            // client time to read the chunks first: `delay_ms`, at least 50 ms.
            let grace = b.delay.max(50);
            b.sleep(grace);
            b.finish(Tail::Reset)
        },
    },
    Scenario {
        name: "data-after-done",
        about: "the normal stream, [DONE], one more content event, and the body left open", api: Api::Chat,
        reply: |c| {
            let mut b = c.normal_events(c.builder(), LF);
            b.event(LF.data(&c.gen.content("after done")));
            b.finish(Tail::Silence)
        },
    },
    Scenario {
        name: "endless",
        about: "one 'tick ' chunk every `delay_ms` (default 50) until the client leaves", api: Api::Chat,
        reply: |c| {
            let mut b = Builder::new(c.params, 50);
            let tick = LF.data(&c.gen.content(TICK));
            let every_ms = b.delay.max(1);
            b.event(tick.clone());
            b.finish(Tail::Repeat { every_ms, bytes: tick })
        },
    },
    Scenario {
        name: "reasoning-then-content",
        about: "`chunks` delta.reasoning chunks, then the normal stream", api: Api::Chat,
        reply: |c| {
            let mut b = c.builder();
            for piece in reasoning_pieces(c.chunks) {
                b.event(LF.data(&c.gen.reasoning(&piece)));
            }
            c.normal_stream(b, LF)
        },
    },
    Scenario {
        name: "tool-calls",
        about: "delta.tool_calls fragments for get_weather, finish_reason tool_calls, [DONE]", api: Api::Chat,
        reply: tool_calls,
    },
    Scenario {
        name: "long",
        about: "`n` 'tok ' chunks as fast as possible (a keepalive comment every 100), then the normal end", api: Api::Chat,
        reply: long,
    },
    Scenario {
        name: "logprobs-annotations",
        about: "OpenAI-shaped chunks (service_tier, system_fingerprint, refusal: null, logprobs per token, a url_citation annotation); the usage chunk (and usage: null on every chunk) only when stream_options.include_usage asks",
        api: Api::Chat,
        reply: logprobs_annotations,
    },
    Scenario {
        name: "continue",
        about: "continues a prefill (last message the assistant's) or a last user message asking to continue where a quoted text stops, with the rest of the answer text (`restate` words of it repeated first); the ledger's mode says which",
        api: Api::Chat,
        reply: continuation,
    },
    Scenario {
        name: "controlled",
        about: "at /scenario/controlled/<id>/v1/chat/completions: does what POST /_control/<id> last set ({\"first_token_ms\":N,\"mode\":\"ok|stall|stall-after=N|http-503\"}), read per request",
        api: Api::Chat,
        reply: controlled,
    },
    Scenario {
        name: "responses-normal",
        about: "Responses API: created, in_progress, output_item.added, content_part.added, output_text.delta per piece, the .done events, completed with usage; stream:false gets the Response JSON",
        api: Api::Responses,
        reply: responses::normal,
    },
    Scenario {
        name: "responses-tool-call",
        about: "Responses API: a function_call item for get_weather with function_call_arguments.delta fragments and .done",
        api: Api::Responses,
        reply: responses::tool_call,
    },
    Scenario {
        name: "responses-keepalive-then-stall",
        about: "Responses API: created, in_progress, `keepalives` {\"type\":\"keepalive\"} events every `keepalive_ms`, then silence",
        api: Api::Responses,
        reply: responses::keepalive_then_stall,
    },
    Scenario {
        name: "responses-stall-after-deltas",
        about: "Responses API: the opening events and `chunks` output_text.delta events, then silence",
        api: Api::Responses,
        reply: responses::stall_after_deltas,
    },
    Scenario {
        name: "anthropic-normal",
        about: "Anthropic Messages: message_start, content_block_start, ping, text_delta per piece, content_block_stop, message_delta (end_turn, usage), message_stop; stream:false gets the Message JSON",
        api: Api::Messages,
        reply: anthropic::normal,
    },
    Scenario {
        name: "anthropic-tool-use",
        about: "Anthropic Messages: a tool_use block for get_weather with input_json_delta fragments, stop_reason tool_use",
        api: Api::Messages,
        reply: anthropic::tool_use,
    },
    Scenario {
        name: "anthropic-ping-forever",
        about: "Anthropic Messages: message_start, then a ping every `keepalive_ms` until the client leaves",
        api: Api::Messages,
        reply: anthropic::ping_forever,
    },
    Scenario {
        name: "anthropic-stall-after-deltas",
        about: "Anthropic Messages: the opening events and `chunks` text deltas, then silence",
        api: Api::Messages,
        reply: anthropic::stall_after_deltas,
    },
    Scenario {
        name: "anthropic-error",
        about: "Anthropic Messages: the opening events, `chunks` text deltas, an error event (overloaded_error), end; stream:false gets 529",
        api: Api::Messages,
        reply: anthropic::error,
    },
];

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

/// One step of a streamed body.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Send these bytes as one body frame (one HTTP chunk).
    Write(Bytes),
    /// Wait this many milliseconds.
    Sleep(u64),
}

/// How a streamed body ends after its steps.
#[derive(Debug, Clone)]
pub(crate) enum Tail {
    /// End the body cleanly (terminating chunk).
    End,
    /// Keep the body open and send nothing until the client leaves.
    Silence,
    /// Forever: wait `every_ms`, send `bytes`; until the client leaves.
    Repeat { every_ms: u64, bytes: Bytes },
    /// Make sure everything went out, then reset the TCP connection.
    Reset,
}

/// A streamed body: timed writes and how it ends.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    pub tail: Tail,
}

/// A fixed (non-streamed) response.
#[derive(Debug, Clone)]
pub(crate) struct Fixed {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// What a scenario answers.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// 200 `text/event-stream` with this plan.
    Sse(Plan),
    /// A whole response.
    Fixed(Fixed),
    /// Never send response headers.
    NoHeaders,
}

/// Line-end and field-separator style of emitted events.
#[derive(Debug, Clone, Copy)]
struct Style {
    nl: &'static str,
    sep: &'static str,
}

const LF: Style = Style { nl: "\n", sep: " " };

impl Style {
    fn data(&self, payload: &str) -> Bytes {
        let (nl, sep) = (self.nl, self.sep);
        Bytes::from(format!("data:{sep}{payload}{nl}{nl}"))
    }

    fn done(&self) -> Bytes {
        self.data("[DONE]")
    }

    fn comment(&self) -> Bytes {
        let nl = self.nl;
        Bytes::from(format!("{KEEPALIVE_COMMENT}{nl}{nl}"))
    }
}

/// A `chat.completion.chunk` (field order as OpenRouter sends it).
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
    choices: Vec<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

/// One entry of `choices`.
#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    native_finish_reason: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

impl<'a> Choice<'a> {
    /// A choice in OpenRouter's usual shape (`native_finish_reason` and `logprobs` present).
    fn full(delta: Delta<'a>, finish: Option<&'a str>) -> Self {
        Choice {
            index: 0,
            delta,
            finish_reason: finish,
            native_finish_reason: Some(finish),
            logprobs: Some(()),
            error: None,
        }
    }
}

/// `choices[].delta`.
#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

impl<'a> Delta<'a> {
    fn content(text: &'a str) -> Self {
        Delta {
            role: Some("assistant"),
            content: Some(Some(text)),
            ..Delta::default()
        }
    }
}

/// One `delta.tool_calls` fragment.
#[derive(Serialize)]
struct ToolCall<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    function: ToolFunction<'a>,
}

/// The `function` of a tool-call fragment.
#[derive(Serialize)]
struct ToolFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Token counts of the usage chunk.
#[derive(Serialize, Clone, Copy)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl Usage {
    fn new(prompt: u64, completion: u64) -> Self {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }
}

/// Builds the JSON of one generation's chunks.
struct Gen {
    id: String,
    created: u64,
    model: String,
}

impl Gen {
    fn chunk(
        &self,
        choices: Vec<Choice<'_>>,
        usage: Option<Usage>,
        error: Option<Value>,
    ) -> String {
        let c = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            provider: "Mock",
            error,
            choices,
            usage,
        };
        serde_json::to_string(&c).expect("chunk serializes")
    }

    fn content(&self, piece: &str) -> String {
        self.chunk(vec![Choice::full(Delta::content(piece), None)], None, None)
    }

    fn reasoning(&self, piece: &str) -> String {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(Some("")),
            reasoning: Some(piece),
            tool_calls: None,
        };
        self.chunk(vec![Choice::full(delta, None)], None, None)
    }

    fn finish(&self, reason: &str) -> String {
        self.chunk(
            vec![Choice::full(Delta::content(""), Some(reason))],
            None,
            None,
        )
    }

    fn usage(&self, usage: Usage) -> String {
        self.chunk(Vec::new(), Some(usage), None)
    }

    fn tool_fragment(&self, first: bool, arguments: &str) -> String {
        let call = ToolCall {
            index: 0,
            id: first.then_some(TOOL_CALL_ID),
            kind: first.then_some("function"),
            function: ToolFunction {
                name: first.then_some(TOOL_NAME),
                arguments,
            },
        };
        let delta = Delta {
            role: Some("assistant"),
            content: Some(None),
            reasoning: None,
            tool_calls: Some(vec![call]),
        };
        self.chunk(vec![Choice::full(delta, None)], None, None)
    }

    fn error_top(&self) -> String {
        let choice = Choice {
            index: 0,
            delta: Delta {
                content: Some(Some("")),
                ..Delta::default()
            },
            finish_reason: Some("error"),
            native_finish_reason: Some(Some("error")),
            logprobs: None,
            error: None,
        };
        let error = json!({
            "code": 502,
            "message": "Provider returned error",
            "metadata": {"provider_name": "Mock"}
        });
        self.chunk(vec![choice], None, Some(error))
    }

    fn choice_error(&self) -> String {
        let choice = Choice {
            index: 0,
            delta: Delta {
                content: Some(Some("")),
                ..Delta::default()
            },
            finish_reason: Some("error"),
            native_finish_reason: None,
            logprobs: None,
            error: Some(json!({"code": 500, "message": "upstream failed"})),
        };
        self.chunk(vec![choice], None, None)
    }

    fn completion(&self, text: &str, usage: Usage) -> String {
        let v = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "provider": "Mock",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "native_finish_reason": "stop",
                "logprobs": null
            }],
            "usage": usage,
        });
        v.to_string()
    }
}

/// Accumulates the steps of a plan, pacing events with `first_delay_ms` / `delay_ms`.
pub(crate) struct Builder {
    steps: Vec<Step>,
    started: bool,
    first_delay: u64,
    delay: u64,
}

impl Builder {
    fn new(p: &Params, default_delay: u64) -> Self {
        Builder {
            steps: Vec::new(),
            started: false,
            first_delay: p.first_delay_ms,
            delay: p.delay_ms.unwrap_or(default_delay),
        }
    }

    fn pace(&mut self) {
        let ms = if self.started {
            self.delay
        } else {
            self.first_delay
        };
        self.started = true;
        self.sleep(ms);
    }

    /// A paced write.
    pub(crate) fn event(&mut self, bytes: Bytes) {
        self.pace();
        self.steps.push(Step::Write(bytes));
    }

    /// An unpaced write.
    fn raw(&mut self, bytes: Bytes) {
        self.steps.push(Step::Write(bytes));
    }

    pub(crate) fn sleep(&mut self, ms: u64) {
        if ms > 0 {
            self.steps.push(Step::Sleep(ms));
        }
    }

    pub(crate) fn finish(self, tail: Tail) -> Reply {
        Reply::Sse(Plan {
            steps: self.steps,
            tail,
        })
    }
}

/// Seconds since the Unix epoch.
fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The canonical reason phrase of `status`.
fn reason(status: u16) -> &'static str {
    http_status_reason(status).unwrap_or("Error")
}

/// The canonical reason phrase, if the status has one.
fn http_status_reason(status: u16) -> Option<&'static str> {
    axum::http::StatusCode::from_u16(status)
        .ok()?
        .canonical_reason()
}

/// An OpenRouter-style JSON error body.
pub(crate) fn error_body(status: u16, message: &str) -> String {
    json!({"error": {"code": status, "message": message, "metadata": {}}}).to_string()
}

/// Where the mandatory write boundaries of `multibyte-crlf` fall: inside every 4-byte character,
/// inside the first 2- and 3-byte characters, and between CR and LF of every other CRLF.
fn forced_cuts(b: &[u8]) -> Vec<usize> {
    let mut cuts = Vec::new();
    let (mut seen2, mut seen3, mut n4, mut crlf) = (false, false, 0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
            if crlf % 2 == 0 {
                cuts.push(i + 1);
            }
            crlf += 1;
            i += 2;
            continue;
        }
        let len = match c {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        match len {
            4 => {
                cuts.push(i + 1 + n4 % 3);
                n4 += 1;
            }
            3 if !seen3 => {
                cuts.push(i + 1);
                seen3 = true;
            }
            2 if !seen2 => {
                cuts.push(i + 1);
                seen2 = true;
            }
            _ => {}
        }
        i += len;
    }
    cuts
}

/// Splits `bytes` into writes of 1 to 7 bytes, deterministically, honouring [`forced_cuts`].
pub(crate) fn small_writes(bytes: &[u8]) -> Vec<Range<usize>> {
    const SIZES: [usize; 8] = [3, 1, 4, 1, 5, 7, 2, 6];
    let forced = forced_cuts(bytes);
    let mut out = Vec::new();
    let (mut pos, mut k) = (0, 0);
    while pos < bytes.len() {
        let mut end = (pos + SIZES[k % SIZES.len()]).min(bytes.len());
        if let Some(&f) = forced.iter().find(|&&f| f > pos && f < end) {
            end = f;
        }
        out.push(pos..end);
        pos = end;
        k += 1;
    }
    out
}

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

/// The JSON of a typed event, `type` first as the APIs write it (then `sequence_number` when
/// given), then the other fields of `fields` (an object).
pub(crate) fn type_first(kind: &str, sequence_number: Option<u64>, fields: &Value) -> String {
    let mut out = format!("{{\"type\":{}", quoted(kind));
    if let Some(n) = sequence_number {
        out.push_str(&format!(",\"sequence_number\":{n}"));
    }
    let rest = fields.to_string();
    let inner = &rest[1..rest.len() - 1];
    if !inner.is_empty() {
        out.push(',');
        out.push_str(inner);
    }
    out.push('}');
    out
}

/// One SSE event with an `event:` name: `event: <kind>\ndata: <payload>\n\n`.
pub(crate) fn named_event(kind: &str, payload: &str) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {payload}\n\n"))
}

/// What a scenario's reply is built from: the request, its parameters and the answer's pieces.
pub(crate) struct Ctx<'a> {
    pub params: &'a Params,
    /// The request.
    pub req: &'a ChatRequest,
    gen: Gen,
    /// The answer text (`text`, else [`DEFAULT_TEXT`]).
    pub text: String,
    /// [`pieces`] of `text`: one content chunk each.
    pub pieces: Vec<String>,
    /// The `chunks` parameter.
    chunks: usize,
    /// Prompt tokens reported in usage.
    pub prompt: u64,
    /// The connection's ledger id (ids of generated objects carry it).
    pub conn_id: u64,
    /// The setting of a `controlled` provider.
    control: Option<Control>,
    /// What the scenario made of the request, for the ledger's `mode`.
    mode: RefCell<Option<String>>,
}

impl<'a> Ctx<'a> {
    fn new(params: &'a Params, req: &'a ChatRequest, conn_id: u64) -> Self {
        let text = params
            .text
            .clone()
            .unwrap_or_else(|| DEFAULT_TEXT.to_string());
        Ctx {
            params,
            req,
            gen: Gen {
                id: format!("gen-mock-{conn_id}"),
                created: unix_seconds(),
                model: req.model.clone(),
            },
            pieces: pieces(&text),
            text,
            chunks: params.chunks as usize,
            prompt: prompt_tokens(req.body_len),
            conn_id,
            control: None,
            mode: RefCell::new(None),
        }
    }

    /// A plan builder paced by `first_delay_ms` / `delay_ms` (default 0).
    pub(crate) fn builder(&self) -> Builder {
        Builder::new(self.params, 0)
    }

    /// When the answer was created (Unix seconds).
    pub(crate) fn created(&self) -> u64 {
        self.gen.created
    }

    /// The first `chunks` pieces (cycling through the pieces if there are fewer).
    pub(crate) fn first_pieces(&self) -> impl Iterator<Item = &str> {
        (0..self.chunks).map(|i| match self.pieces.len() {
            0 => "",
            n => self.pieces[i % n].as_str(),
        })
    }

    /// Records what the scenario made of the request (the ledger's `mode`).
    fn note(&self, mode: String) {
        *self.mode.borrow_mut() = Some(mode);
    }

    /// Usage for `completion` tokens.
    fn usage(&self, completion: usize) -> Usage {
        Usage::new(self.prompt, completion as u64)
    }

    /// Whether the usage chunk goes out: always, or with `usage=asked` only when the request
    /// asked for it.
    fn sends_usage(&self) -> bool {
        self.params.usage == UsagePolicy::Always || self.req.include_usage()
    }

    /// The usage chunk for `completion` tokens, when [`Ctx::sends_usage`].
    fn usage_event(&self, b: &mut Builder, completion: usize) {
        if self.sends_usage() {
            b.event(LF.data(&self.gen.usage(self.usage(completion))));
        }
    }

    /// The normal stream's events (content pieces, finish, usage, `[DONE]`), written with `style`.
    fn normal_events(&self, b: Builder, style: Style) -> Builder {
        self.events_of(b, style, &self.pieces)
    }

    /// Content chunks of `pieces`, finish, usage and `[DONE]`, written with `style`.
    fn events_of(&self, mut b: Builder, style: Style, pieces: &[String]) -> Builder {
        for piece in pieces {
            b.event(style.data(&self.gen.content(piece)));
        }
        b.event(style.data(&self.gen.finish("stop")));
        if self.sends_usage() {
            b.event(style.data(&self.gen.usage(self.usage(pieces.len()))));
        }
        b.event(style.done());
        b
    }

    /// The normal stream, then a clean end.
    fn normal_stream(&self, b: Builder, style: Style) -> Reply {
        self.normal_events(b, style).finish(Tail::End)
    }

    /// The first `chunks` content chunks (cycling through the pieces if there are fewer).
    fn first_chunks(&self) -> Builder {
        let mut b = self.builder();
        for piece in self.first_pieces() {
            b.event(LF.data(&self.gen.content(piece)));
        }
        b
    }

    /// `b`, then the chunk `json`, `[DONE]` and a clean end.
    fn then_done(&self, mut b: Builder, json: &str) -> Reply {
        b.event(LF.data(json));
        b.event(LF.done());
        b.finish(Tail::End)
    }

    /// A keepalive comment every `keepalive_ms` until the client leaves.
    fn keepalives_forever(&self) -> Tail {
        Tail::Repeat {
            every_ms: self.params.keepalive_ms.max(1),
            bytes: LF.comment(),
        }
    }

    /// `status` with an OpenRouter-style JSON error body (and `Retry-After` for 429 and 503).
    fn status(&self, status: u16) -> Reply {
        let mut headers = Vec::new();
        if status == 429 || status == 503 {
            headers.push(("Retry-After", self.params.retry_after.to_string()));
        }
        Reply::Fixed(Fixed {
            status,
            content_type: "application/json",
            headers,
            body: error_body(status, reason(status)),
        })
    }
}

/// `keepalive-then-content`.
fn keepalive_then_content(c: &Ctx) -> Reply {
    let p = c.params;
    let mut b = c.builder();
    for i in 0..p.keepalives {
        if i == 0 {
            b.event(LF.comment());
        } else {
            b.sleep(p.keepalive_ms);
            b.raw(LF.comment());
        }
    }
    if p.keepalives > 0 {
        b.sleep(p.keepalive_ms);
    }
    c.normal_stream(b, LF)
}

/// `multibyte-crlf`.
fn multibyte_crlf(c: &Ctx) -> Reply {
    let text = c
        .params
        .text
        .clone()
        .unwrap_or_else(|| MULTIBYTE_TEXT.to_string());
    let mb = pieces(&text);
    let crlf = Style {
        nl: "\r\n",
        sep: " ",
    };
    let g = &c.gen;
    let mut all_bytes = Vec::new();
    for piece in &mb {
        all_bytes.extend_from_slice(&crlf.data(&g.content(piece)));
    }
    all_bytes.extend_from_slice(&crlf.data(&g.finish("stop")));
    if c.sends_usage() {
        all_bytes.extend_from_slice(&crlf.data(&g.usage(c.usage(mb.len()))));
    }
    all_bytes.extend_from_slice(&crlf.done());
    let all_bytes = Bytes::from(all_bytes);
    let mut b = c.builder();
    for r in small_writes(&all_bytes) {
        b.event(all_bytes.slice(r));
    }
    b.finish(Tail::End)
}

/// `http-429-date`.
fn http_429_date(c: &Ctx) -> Reply {
    // Round up to the next whole second so the date is at least `retry_after` ahead.
    let at = UNIX_EPOCH + Duration::from_secs(unix_seconds() + 1 + c.params.retry_after);
    Reply::Fixed(Fixed {
        status: 429,
        content_type: "application/json",
        headers: vec![("Retry-After", httpdate::fmt_http_date(at))],
        body: error_body(429, reason(429)),
    })
}

/// `malformed-event`.
fn malformed_event(c: &Ctx) -> Reply {
    let (g, all) = (&c.gen, &c.pieces);
    let mut b = c.builder();
    let at = (all.len() / 2).max(1);
    for (i, piece) in all.iter().enumerate() {
        if i == at {
            b.event(Bytes::from_static(MALFORMED_EVENT.as_bytes()));
        }
        b.event(LF.data(&g.content(piece)));
    }
    if all.len() <= at {
        b.event(Bytes::from_static(MALFORMED_EVENT.as_bytes()));
    }
    b.event(LF.data(&g.finish("stop")));
    c.usage_event(&mut b, all.len());
    b.event(LF.done());
    b.finish(Tail::End)
}

/// `huge-line`.
fn huge_line(c: &Ctx) -> Reply {
    let g = &c.gen;
    let mut b = c.builder();
    let xs = "x".repeat(c.params.size as usize);
    let line = LF.data(&g.content(&xs));
    let mut start = 0;
    while start < line.len() {
        let end = (start + HUGE_WRITE).min(line.len());
        b.event(line.slice(start..end));
        start = end;
    }
    b.event(LF.data(&g.finish("stop")));
    c.usage_event(&mut b, 1);
    b.event(LF.done());
    b.finish(Tail::End)
}

/// `tool-calls`.
fn tool_calls(c: &Ctx) -> Reply {
    let g = &c.gen;
    let mut b = c.builder();
    for (i, frag) in TOOL_ARGUMENT_FRAGMENTS.iter().enumerate() {
        b.event(LF.data(&g.tool_fragment(i == 0, frag)));
    }
    b.event(LF.data(&g.finish("tool_calls")));
    c.usage_event(&mut b, TOOL_ARGUMENT_FRAGMENTS.len());
    b.event(LF.done());
    b.finish(Tail::End)
}

/// `long`.
fn long(c: &Ctx) -> Reply {
    let (g, n) = (&c.gen, c.params.n);
    let mut b = c.builder();
    let tok = LF.data(&g.content(LONG_TOKEN));
    for i in 0..n {
        if i > 0 && i % 100 == 0 {
            b.event(LF.comment());
        }
        b.event(tok.clone());
    }
    b.event(LF.data(&g.finish("stop")));
    c.usage_event(&mut b, n as usize);
    b.event(LF.done());
    b.finish(Tail::End)
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// `logprobs-annotations`: OpenAI's chunk shape, field order and number formatting, written by
/// hand so that a pass-through can be compared byte for byte (serde_json would sort and
/// reformat).
fn logprobs_annotations(c: &Ctx) -> Reply {
    let asked = c.req.include_usage();
    let chunk = |choices: &str, usage: &str| {
        let usage = if asked {
            format!(",\"usage\":{usage}")
        } else {
            String::new()
        };
        format!(
            "{{\"id\":\"chatcmpl-mock-{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\
             \"model\":{},\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock0001\",\
             \"choices\":[{choices}]{usage}}}",
            c.conn_id,
            c.created(),
            quoted(&c.req.model)
        )
    };
    let mut b = c.builder();
    b.event(LF.data(&chunk(
        "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null,\
         \"annotations\":[]},\"logprobs\":{\"content\":[],\"refusal\":null},\"finish_reason\":null}",
        "null",
    )));
    for (i, piece) in c.pieces.iter().enumerate() {
        let lp = LOGPROBS[i % LOGPROBS.len()];
        let bytes = piece
            .bytes()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let token = quoted(piece);
        b.event(LF.data(&chunk(
            &format!(
                "{{\"index\":0,\"delta\":{{\"content\":{token}}},\"logprobs\":{{\"content\":[{{\
                 \"token\":{token},\"logprob\":{lp},\"bytes\":[{bytes}],\"top_logprobs\":[{{\
                 \"token\":{token},\"logprob\":{lp},\"bytes\":[{bytes}]}}]}}],\"refusal\":null}},\
                 \"finish_reason\":null}}"
            ),
            "null",
        )));
    }
    b.event(LF.data(&chunk(
        &format!(
            "{{\"index\":0,\"delta\":{{\"content\":\"\",\"annotations\":[{{\"type\":\"url_citation\",\
             \"url_citation\":{{\"url\":{},\"title\":{},\"start_index\":0,\"end_index\":{}}}}}]}},\
             \"logprobs\":null,\"finish_reason\":null}}",
            quoted(CITATION_URL),
            quoted(CITATION_TITLE),
            c.text.chars().count()
        ),
        "null",
    )));
    b.event(LF.data(&chunk(
        "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}",
        "null",
    )));
    if asked {
        let (p, n) = (c.prompt, c.pieces.len() as u64);
        b.event(LF.data(&chunk(
            "",
            &format!(
                "{{\"prompt_tokens\":{p},\"completion_tokens\":{n},\"total_tokens\":{},\
                 \"prompt_tokens_details\":{{\"cached_tokens\":0,\"audio_tokens\":0}},\
                 \"completion_tokens_details\":{{\"reasoning_tokens\":0,\"audio_tokens\":0,\
                 \"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}}",
                p + n
            ),
        )));
    }
    b.event(LF.done());
    b.finish(Tail::End)
}

/// The text of a chat message's `content`: a string, or the `text` of its parts joined.
fn message_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// The length of the longest prefix of `text` (at a character boundary) that occurs in `hay`.
pub fn longest_prefix_in(text: &str, hay: &str) -> usize {
    let ends: Vec<usize> = text
        .char_indices()
        .map(|(i, ch)| i + ch.len_utf8())
        .collect();
    // Whether a prefix occurs is monotone in its length: search for the last one that does.
    let (mut lo, mut hi) = (0, ends.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if hay.contains(&text[..ends[mid - 1]]) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        0
    } else {
        ends[lo - 1]
    }
}

/// The fewest characters of the answer text a continuation instruction must quote for
/// `continue` to take them as the given text.
pub const MIN_GIVEN_CHARS: usize = 8;

/// What `continue` answers: how it read the request (`prefill`, `instruction` or `fresh`, with
/// `-unmatched` when the given text is not where the answer text starts), and the answer.
pub fn continuation_of(messages: &Value, text: &str, restate: usize) -> (String, String) {
    let last = messages.as_array().and_then(|m| m.last());
    let role = last.and_then(|m| m.get("role")).and_then(Value::as_str);
    let content = last.and_then(|m| message_text(m.get("content")));
    let (mode, given) = match (role, content) {
        (Some("assistant"), Some(prefill)) => (
            "prefill",
            if text.starts_with(&prefill) {
                Some(prefill.len())
            } else {
                None
            },
        ),
        (Some("user"), Some(ask)) if ask.to_lowercase().contains("continue") => {
            let n = longest_prefix_in(text, &ask);
            // A few letters of the answer turn up in any sentence ("He" in "Here"): only a
            // longer match, or the whole answer, says where the given text stops.
            let enough = text[..n].chars().count() >= MIN_GIVEN_CHARS || n == text.len();
            ("instruction", (n > 0 && enough).then_some(n))
        }
        _ => ("fresh", Some(0)),
    };
    let Some(at) = given else {
        return (format!("{mode}-unmatched"), text.to_string());
    };
    let said = pieces(&text[..at]);
    let restated = said[said.len().saturating_sub(restate)..].concat();
    (mode.to_string(), restated + &text[at..])
}

/// `continue`.
fn continuation(c: &Ctx) -> Reply {
    let messages = c.req.json.get("messages").unwrap_or(&Value::Null);
    let (mode, answer) = continuation_of(messages, &c.text, c.params.restate as usize);
    c.note(mode);
    c.events_of(c.builder(), LF, &pieces(&answer))
        .finish(Tail::End)
}

/// `controlled`: the setting `POST /_control/<id>` last gave.
fn controlled(c: &Ctx) -> Reply {
    let control = c.control.unwrap_or_default();
    c.note(control.describe());
    let mut b = c.builder();
    b.first_delay += control.first_token_ms;
    match control.mode {
        Mode::Ok => c.normal_stream(b, LF),
        Mode::Stall => b.finish(Tail::Silence),
        Mode::StallAfter(n) => {
            for i in 0..n as usize {
                let piece = c.pieces.get(i % c.pieces.len().max(1));
                b.event(LF.data(&c.gen.content(piece.map_or("", String::as_str))));
            }
            b.finish(Tail::Silence)
        }
        Mode::Http(status) => c.status(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_described_and_built() {
        let req = ChatRequest {
            model: DEFAULT_MODEL.into(),
            body_len: 10,
            json: Value::Null,
        };
        let p = Params {
            size: 1000,
            n: 10,
            ..Params::default()
        };
        for (i, s) in SCENARIOS.iter().enumerate() {
            assert!(!s.about.is_empty(), "{} has no description", s.name);
            assert!(
                build(s.name, &p, &req, 1, None).is_some(),
                "{} is not built",
                s.name
            );
            let first = SCENARIOS.iter().position(|other| other.name == s.name);
            assert_eq!(first, Some(i), "{} is in the table twice", s.name);
        }
        assert!(build("nope", &p, &req, 1, None).is_none());
    }

    #[test]
    fn the_derived_texts_are_what_the_scenarios_send() {
        let default = pieces(DEFAULT_TEXT);
        assert_eq!(default.len(), DEFAULT_PIECES);
        assert_eq!(default[..3].concat(), FIRST_THREE);
        assert_eq!(TOOL_ARGUMENT_FRAGMENTS.concat(), TOOL_ARGUMENTS);
        assert!(reasoning_pieces(2)
            .iter()
            .all(|piece| piece.starts_with(REASONING_PREFIX)));
    }

    #[test]
    fn pieces_concatenate_back() {
        for t in [DEFAULT_TEXT, MULTIBYTE_TEXT, "", " lead", "a  b\n c", "one"] {
            assert_eq!(pieces(t).concat(), t);
        }
        assert_eq!(pieces("Hello from  it."), ["Hello ", "from  ", "it."]);
    }

    #[test]
    fn small_writes_split_inside_characters_and_crlf() {
        let bytes = format!("data: {MULTIBYTE_TEXT}\r\n\r\n").into_bytes();
        let writes = small_writes(&bytes);
        assert!(writes.iter().all(|r| (1..=7).contains(&r.len())));
        let joined: Vec<u8> = writes
            .iter()
            .flat_map(|r| bytes[r.clone()].to_vec())
            .collect();
        assert_eq!(joined, bytes);
        assert!(writes
            .windows(2)
            .any(|w| bytes[w[0].end - 1] == b'\r' && bytes[w[1].start] == b'\n'));
        let emoji = bytes.iter().position(|&c| c >= 0xF0).unwrap();
        assert!(writes
            .iter()
            .any(|r| r.start > emoji && r.start < emoji + 4));
    }
}
