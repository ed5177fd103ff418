//! Watching an LLM answer stream for progress and for its end, without touching it.
//!
//! A transparent guard (one that sits inside an SDK's `fetch`) hands the upstream's body to
//! its caller byte for byte; it only needs to know, as the bytes go by, whether the model is
//! making progress (to drive the first-token and idle deadlines), whether the stream ended
//! properly, whether the upstream reported an error, and whether any answer text or tool call
//! has been seen (a stream cut after text is a partial answer, before it a failed attempt).
//! [`ProgressWatcher`] answers exactly that, per push of raw body bytes split anywhere.
//!
//! Three stream formats are recognised, from the events themselves (the first event that only
//! one format sends decides), or, until then, from the request path ([`Format::from_path`]):
//! OpenAI chat completions, the OpenAI Responses API, and Anthropic Messages. The rules for
//! each, with their sources, sit beside the code that applies them (`chat_event`,
//! `responses_event`, `anthropic_event`).
//!
//! In short (the end markers and errors are not progress; they stop the watch):
//!
//! | format | progress | keepalive | end | error |
//! |---|---|---|---|---|
//! | chat completions | content, reasoning, tool-call fragment, `finish_reason`, `usage` | `:` comments | `[DONE]` | `{"error":…}`, `finish_reason: "error"`, `event: error` |
//! | Responses | non-empty `response.*.delta`, `partial_image`, function-call item added | comments, `keepalive` | `response.completed`, `response.incomplete` | `error`, `response.failed` |
//! | Anthropic | non-empty `content_block_delta`, `tool_use` block started, `message_delta` with `stop_reason` | comments, `ping` | `message_stop` | `error` |
//!
//! The hint from the path holds until the first decisive event; an event that contradicts it
//! wins (a proxy may answer in another format than the path suggests). An event counts once
//! its blank line has arrived; a comment once its own line has.
//!
//! Pure Rust: no platform crate, no clock, no I/O. What it must never do: change or hold the
//! bytes it watches (it only borrows them), or grow without bound (the SSE parser's
//! `max_event_bytes` bounds a line and an event; past it the watcher stops watching and says
//! so). It parses only what it needs: the event's type and a few fields, by a small scan of
//! the JSON (`json` below) or, for chat chunks, the chunk decoder.

use super::bytes as swar;
use super::chunk::{ChunkDecoder, Decoded};
use super::sse::{Event, SseParser, SseSink};
use std::borrow::Cow;

/// The stream formats the watcher knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI chat completions (`POST /chat/completions`): `data: {chunk}` … `data: [DONE]`.
    ChatCompletions,
    /// The OpenAI Responses API (`POST /responses`): typed events `response.*`.
    Responses,
    /// Anthropic Messages (`POST /messages`): `message_start` … `message_stop`.
    AnthropicMessages,
}

impl Format {
    /// The format a request path asks for, by its last segment (a query string and a trailing
    /// slash ignored): `…/chat/completions`, `…/responses`, `…/messages`. `None` for any other
    /// path; the events then decide alone.
    pub fn from_path(path: &str) -> Option<Format> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let path = path.strip_suffix('/').unwrap_or(path);
        if path.ends_with("/chat/completions") || path == "chat/completions" {
            Some(Format::ChatCompletions)
        } else if path.ends_with("/responses") || path == "responses" {
            Some(Format::Responses)
        } else if path.ends_with("/messages") || path == "messages" {
            Some(Format::AnthropicMessages)
        } else {
            None
        }
    }
}

/// How a stream ended properly: its format's end marker arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Chat completions: `data: [DONE]`.
    Done,
    /// Responses: `response.completed`.
    Completed,
    /// Responses: `response.incomplete` (the response stopped early, for instance at
    /// `max_output_tokens`; the stream itself is whole).
    Incomplete,
    /// Anthropic: `message_stop`.
    MessageStop,
}

/// An error the upstream reported in the stream. Unredacted: callers redact before showing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportedError {
    /// The error's code or type as sent (`"server_error"`, `"overloaded_error"`, `"429"`), when
    /// there was one.
    pub code: Option<String>,
    /// The error's message, or the event's whole data when it carried no message.
    pub message: String,
}

/// What one push showed, and where the stream stands after it. Small and `Copy`: the error's
/// text stays in the watcher ([`ProgressWatcher::error`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Progress events in this push (each one restarts the idle deadline).
    pub progress_events: u32,
    /// Keepalives in this push: comments, Anthropic `ping`, Responses `keepalive`. Bytes
    /// arrived, but no progress.
    pub keepalives: u32,
    /// The format as known after this push: detected from an event, else the caller's hint.
    pub format: Option<Format>,
    /// How the stream ended, once its end marker has arrived (it stays set).
    pub end: Option<End>,
    /// Whether the upstream has reported an error (it stays set; the message is in
    /// [`ProgressWatcher::error`]).
    pub upstream_error: bool,
    /// Whether the generation has said it is finished (a chat `finish_reason` other than
    /// `error`, an Anthropic `stop_reason`): a body that ends after it lost only its end marker.
    pub finished: bool,
    /// Whether any answer text or tool-call fragment has been seen so far (reasoning is
    /// progress but not answer text).
    pub fragment_seen: bool,
    /// An SSE line or event exceeded the bound: the watcher has stopped watching (terminal).
    pub too_large: bool,
}

impl Report {
    /// Whether this push carried progress.
    pub fn progressed(&self) -> bool {
        self.progress_events > 0
    }

    /// Whether nothing more will be watched: the stream ended, failed, or outgrew the bound.
    pub fn is_over(&self) -> bool {
        self.end.is_some() || self.upstream_error || self.too_large
    }
}

/// How the body's end left the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The end marker had arrived: the stream is whole.
    Ended(End),
    /// The upstream had reported an error ([`ProgressWatcher::error`]).
    UpstreamError,
    /// The body ended before any end marker: the stream was cut. The watcher's
    /// [`fragment_seen`](ProgressWatcher::fragment_seen) and
    /// [`finished`](ProgressWatcher::finished) tell a partial answer from nothing.
    Cut,
    /// An event outgrew the bound, so the end could not be watched for.
    TooLarge,
}

/// Watches one response body: feed it with [`push`](Self::push), close it with
/// [`end_of_body`](Self::end_of_body).
///
/// A driver, per attempt:
/// 1. creates it with the request path's format (`Format::from_path`) once the response
///    headers say `text/event-stream`;
/// 2. passes each body chunk on unchanged and calls `push` with it: on
///    [`Report::progressed`] it tells the deadlines (first token, idle) of the read's time;
///    on [`Report::is_over`] it stops its deadlines (the end, an error: its message from
///    [`error`](Self::error), redacted; an oversized event);
/// 3. when the body ends, calls `end_of_body`: [`Ending::Cut`] with
///    [`fragment_seen`](Self::fragment_seen) is a partial answer, without it a failed attempt;
///    after [`finished`](Self::finished), an answer complete but for its end marker (as
///    `Answer::outcome` rules for chat).
#[derive(Debug, Clone)]
pub struct ProgressWatcher {
    parser: SseParser,
    state: State,
}

/// Everything the watcher has concluded so far (borrowed apart from the parser as its sink).
#[derive(Debug, Clone, Default)]
struct State {
    /// Chat chunks, read by their text alone when they repeat the last one's shape.
    decoder: ChunkDecoder,
    hint: Option<Format>,
    detected: Option<Format>,
    end: Option<End>,
    error: Option<ReportedError>,
    finished: bool,
    fragment_seen: bool,
    too_large: bool,
    progress_events: u64,
    keepalives: u64,
    events: u64,
    /// Counted in the current push.
    push_progress: u32,
    push_keepalives: u32,
}

impl ProgressWatcher {
    /// A watcher for a body whose format the request suggests (`hint`, from
    /// [`Format::from_path`]; `None` when unknown). `max_event_bytes` bounds one SSE line and
    /// one event (0 means the SSE parser's default, 1 MiB).
    pub fn new(hint: Option<Format>, max_event_bytes: usize) -> Self {
        ProgressWatcher {
            parser: SseParser::new(max_event_bytes),
            state: State {
                hint,
                ..State::default()
            },
        }
    }

    /// Watch the next body bytes, split anywhere. Once the stream is over (ended, failed, too
    /// large), later bytes are not parsed.
    pub fn push(&mut self, bytes: &[u8]) -> Report {
        self.state.push_progress = 0;
        self.state.push_keepalives = 0;
        if !self.state.is_over() && self.parser.push(bytes, &mut self.state).is_err() {
            self.state.too_large = true;
        }
        self.report()
    }

    /// The body ended: whether the stream was whole, failed, or cut.
    pub fn end_of_body(&mut self) -> Ending {
        self.parser.end();
        if let Some(end) = self.state.end {
            Ending::Ended(end)
        } else if self.state.error.is_some() {
            Ending::UpstreamError
        } else if self.state.too_large {
            Ending::TooLarge
        } else {
            Ending::Cut
        }
    }

    /// Where the stream stands (the per-push counts are those of the last push).
    pub fn report(&self) -> Report {
        let s = &self.state;
        Report {
            progress_events: s.push_progress,
            keepalives: s.push_keepalives,
            format: s.format(),
            end: s.end,
            upstream_error: s.error.is_some(),
            finished: s.finished,
            fragment_seen: s.fragment_seen,
            too_large: s.too_large,
        }
    }

    /// The format as detected from an event (the caller's hint does not count here).
    pub fn detected_format(&self) -> Option<Format> {
        self.state.detected
    }

    /// The format: detected, else the caller's hint.
    pub fn format(&self) -> Option<Format> {
        self.state.format()
    }

    /// The error the upstream reported, if it did.
    pub fn error(&self) -> Option<&ReportedError> {
        self.state.error.as_ref()
    }

    /// How the stream ended, if its end marker arrived.
    pub fn end(&self) -> Option<End> {
        self.state.end
    }

    /// Whether any answer text or tool-call fragment has been seen.
    pub fn fragment_seen(&self) -> bool {
        self.state.fragment_seen
    }

    /// Whether the generation said it was finished (see [`Report::finished`]).
    pub fn finished(&self) -> bool {
        self.state.finished
    }

    /// Progress events seen in all.
    pub fn progress_events(&self) -> u64 {
        self.state.progress_events
    }

    /// Keepalives seen in all.
    pub fn keepalives(&self) -> u64 {
        self.state.keepalives
    }

    /// SSE events dispatched in all (of any kind, up to the end of watching).
    pub fn events(&self) -> u64 {
        self.state.events
    }
}

/// What one event means, whatever its format.
#[derive(Debug, PartialEq)]
enum Meaning {
    /// Not progress, not an end: lifecycle events, unknown events, malformed data.
    Nothing,
    /// A keepalive event.
    Keepalive,
    /// Progress; `fragment` when it carried answer text or a tool-call fragment; `finish` when
    /// it said the generation is finished.
    Progress { fragment: bool, finish: bool },
    /// The format's end marker.
    End(End),
    /// The upstream reported an error.
    Error(ReportedError),
}

const PROGRESS: Meaning = Meaning::Progress {
    fragment: false,
    finish: false,
};
const FRAGMENT: Meaning = Meaning::Progress {
    fragment: true,
    finish: false,
};

impl State {
    fn format(&self) -> Option<Format> {
        self.detected.or(self.hint)
    }

    fn is_over(&self) -> bool {
        self.end.is_some() || self.error.is_some() || self.too_large
    }

    fn apply(&mut self, meaning: Meaning) {
        match meaning {
            Meaning::Nothing => {}
            Meaning::Keepalive => {
                self.keepalives += 1;
                self.push_keepalives += 1;
            }
            Meaning::Progress { fragment, finish } => {
                self.progress_events += 1;
                self.push_progress += 1;
                self.fragment_seen |= fragment;
                self.finished |= finish;
            }
            Meaning::End(end) => self.end = Some(end),
            Meaning::Error(error) => self.error = Some(error),
        }
    }
}

impl SseSink for State {
    fn event(&mut self, event: Event<'_>) {
        if self.is_over() {
            return; // nothing after the end marker or an error counts
        }
        self.events += 1;
        // The event's kind: its SSE name when it has one (Anthropic's SDK dispatches on it),
        // else the data's top-level `"type"` (OpenAI's SDK reads it; proxies may drop names).
        // A chat chunk has neither, so once the stream is known to be chat, nothing is scanned.
        let named = (event.event_type != "message").then_some(event.event_type);
        let kind = || named.map(Cow::Borrowed).or_else(|| data_type(event.data));
        if self.detected.is_none() {
            self.detected = detect(kind().as_deref(), event.data);
        }
        // Until an event decides, the hint does; with neither, only an error is understood
        // (every format sends `error` events alike).
        let Some(format) = self.format() else {
            if kind().as_deref() == Some("error") || is_bare_error(event.data) {
                self.apply(Meaning::Error(error_of(event.data)));
            }
            return;
        };
        let meaning = match (format, kind_if_typed(format, kind)) {
            (Format::ChatCompletions, _) => chat_event(&mut self.decoder, named, event.data),
            (Format::Responses, Some(kind)) => responses_event(&kind, event.data),
            (Format::AnthropicMessages, Some(kind)) => anthropic_event(&kind, event.data),
            // Data with no type in a typed format: an error object, or nothing.
            (_, None) if is_bare_error(event.data) => Meaning::Error(error_of(event.data)),
            (_, None) => Meaning::Nothing,
        };
        self.apply(meaning);
    }

    fn comment(&mut self, _text: &str) {
        // "If the line starts with a U+003A COLON character (:): Ignore the line." Servers send
        // comments to keep idle connections open (`: OPENROUTER PROCESSING`): not progress.
        if !self.is_over() {
            self.apply(Meaning::Keepalive);
        }
    }
}

/// The event's kind for a typed format (Responses, Anthropic); chat chunks are not scanned.
fn kind_if_typed<'a>(
    format: Format,
    kind: impl FnOnce() -> Option<Cow<'a, str>>,
) -> Option<Cow<'a, str>> {
    match format {
        Format::ChatCompletions => None,
        Format::Responses | Format::AnthropicMessages => kind(),
    }
}

/// Whether the data is an object with an `error` object (and no `type`, checked before).
fn is_bare_error(data: &str) -> bool {
    json::field(data, "error").is_some_and(|error| error.starts_with('{'))
}

/// The top-level `"type"` of an event's JSON data, when it is a string.
fn data_type(data: &str) -> Option<Cow<'_, str>> {
    json::field(data, "type").and_then(json::string)
}

/// The format only one of the three sends this event in, if any.
///
/// - `data: [DONE]`, or a JSON object with no `"type"` but `choices` or `object` (a chat chunk)
///   under the default event name: chat completions.
/// - A kind `response.*`, or `keepalive` (the Responses keepalive event): Responses.
/// - A kind of Anthropic's event list (`message_start`, `content_block_*`, `message_delta`,
///   `message_stop`, `ping`): Anthropic Messages.
/// - `error` events and a bare `{"error":{…}}` may come in any of the three: not decisive.
fn detect(kind: Option<&str>, data: &str) -> Option<Format> {
    match kind {
        None => {
            let chunk = || {
                ["choices", "object"]
                    .iter()
                    .any(|k| json::field(data, k).is_some())
            };
            (data.trim() == "[DONE]" || chunk()).then_some(Format::ChatCompletions)
        }
        Some(kind) if kind.starts_with("response.") || kind == "keepalive" => {
            Some(Format::Responses)
        }
        Some(
            "message_start"
            | "content_block_start"
            | "content_block_delta"
            | "content_block_stop"
            | "message_delta"
            | "message_stop"
            | "ping",
        ) => Some(Format::AnthropicMessages),
        Some(_) => None,
    }
}

/// OpenAI chat completions, as the chunk decoder reads them (`core::chunk`'s module
/// documentation quotes OpenRouter's "Streaming" reference):
///
/// - Progress: non-empty `content`, non-empty `reasoning` / `reasoning_content`, a
///   `tool_calls` fragment, a `finish_reason`, or `usage` ([`Chunk::is_progress`]). Not
///   progress: comments, empty or role-only deltas, malformed data.
/// - Answer fragment: non-empty `content` or a `tool_calls` fragment (what
///   `Answer::has_text` counts).
/// - End: `data: [DONE]`, "the stream terminated by a `data: [DONE]` message" (OpenAI API
///   reference, Chat Completions, `stream`).
/// - Error: a chunk with an `error` object or `finish_reason: "error"` ("If an error occurs
///   mid-stream … sent as an SSE event with the error details"), or an `event: error`, which
///   openai-node's `Stream` (src/core/streaming.ts) throws on as on `data.error`.
///
/// Other named events are not chat chunks (the edge's `event: guard` relays): ignored.
///
/// [`Chunk::is_progress`]: super::chunk::Chunk::is_progress
fn chat_event(decoder: &mut ChunkDecoder, named: Option<&str>, data: &str) -> Meaning {
    match named {
        Some("error") => return Meaning::Error(error_of(data)),
        Some(_) => return Meaning::Nothing,
        None => {}
    }
    match decoder.decode_event_data(data) {
        Decoded::Done => Meaning::End(End::Done),
        Decoded::Chunk(chunk) if chunk.is_error() => Meaning::Error(match chunk.error {
            Some(error) => ReportedError {
                code: error.code,
                message: error.message,
            },
            None => ReportedError {
                code: None,
                message: "the upstream ended the stream with finish_reason \"error\"".into(),
            },
        }),
        Decoded::Chunk(chunk) if chunk.is_progress() => Meaning::Progress {
            fragment: chunk.content.as_deref().is_some_and(|c| !c.is_empty())
                || !chunk.tool_calls.is_empty(),
            finish: chunk.is_finish(),
        },
        Decoded::Chunk(_) | Decoded::Malformed(_) => Meaning::Nothing,
    }
}

/// The OpenAI Responses API. Event names from openai-node's `ResponseStreamEvent` union
/// (src/resources/responses/responses.ts) and the API reference, "Streaming events"
/// (<https://platform.openai.com/docs/api-reference/responses-streaming>):
///
/// - Progress: every `response.….delta` event ("Emitted when there is a partial …": output
///   text, refusal, reasoning text and summary text, function-call and custom-tool-call input,
///   audio and its transcript, code-interpreter code, MCP arguments, shell output), unless its
///   `delta` is the empty string (an empty delta, as in chat, is not progress);
///   `response.image_generation_call.partial_image` (model output too); and
///   `response.output_item.added` when the item is a `function_call` or `custom_tool_call`: the
///   call's name arrived, as chat's first tool-call fragment does (a `message` or `reasoning`
///   item added carries no content yet, like chat's role-only delta).
/// - Not progress: the lifecycle (`response.created`, `.queued`, `.in_progress`,
///   `.content_part.*`, `.output_item.done`, every `….done`, the built-in tools'
///   `in_progress` / `searching` / `completed`) and `{"type":"keepalive"}`, "a transport
///   keepalive event that leaves the accumulated response unchanged" (openai-node
///   src/lib/responses/ResponseAccumulator.ts), counted as a keepalive.
/// - Answer fragment: a non-empty `response.output_text.delta`, `response.refusal.delta` or
///   `response.audio.transcript.delta`; a function-call or custom-tool-call item added, or a
///   delta of its input.
/// - End: `response.completed` ("Emitted when the model response is complete"), or
///   `response.incomplete` ("An event that is emitted when a response finishes as
///   incomplete"): there is no `[DONE]`.
/// - Error: `response.failed` (its `response.error`), and the `error` event (`code`,
///   `message`, `param`; a nested `error` object is read first, as openai-node's
///   `ResponseStream` does).
fn responses_event(kind: &str, data: &str) -> Meaning {
    match kind {
        "response.completed" => Meaning::End(End::Completed),
        "response.incomplete" => Meaning::End(End::Incomplete),
        "response.failed" => Meaning::Error(failed_response(data)),
        "error" => Meaning::Error(error_of(data)),
        "keepalive" => Meaning::Keepalive,
        "response.image_generation_call.partial_image" => PROGRESS,
        "response.output_item.added" => {
            match json::path(data, &["item", "type"])
                .and_then(json::string)
                .as_deref()
            {
                Some("function_call" | "custom_tool_call") => FRAGMENT,
                _ => Meaning::Nothing,
            }
        }
        _ if kind.starts_with("response.") && kind.ends_with(".delta") => {
            if json::field(data, "delta") == Some("\"\"") {
                return Meaning::Nothing;
            }
            let fragment = matches!(
                kind,
                "response.output_text.delta"
                    | "response.refusal.delta"
                    | "response.audio.transcript.delta"
                    | "response.function_call_arguments.delta"
                    | "response.custom_tool_call_input.delta"
            );
            Meaning::Progress {
                fragment,
                finish: false,
            }
        }
        _ => Meaning::Nothing,
    }
}

/// The error of a `response.failed` event: `response.error` (`code`, `message`).
fn failed_response(data: &str) -> ReportedError {
    match json::path(data, &["response", "error"]) {
        Some(error) if error.starts_with('{') => error_of(error),
        _ => ReportedError {
            code: None,
            message: "the response failed (response.failed)".into(),
        },
    }
}

/// Anthropic Messages. Event names from the Messages streaming reference
/// (<https://docs.anthropic.com/en/api/messages-streaming>) and anthropic-sdk-typescript's
/// `RawMessageStreamEvent` (src/resources/messages/messages.ts):
///
/// - Progress: `content_block_delta` whose delta carries something: `text_delta` (`text`),
///   `input_json_delta` (`partial_json`), `thinking_delta` (`thinking`), `signature_delta`
///   (`signature`) when that string is not empty; `citations_delta` and delta types added
///   later always. `content_block_start` of a `tool_use` block (the call's id and name
///   arrived, as chat's first tool-call fragment), or of a block that starts with non-empty
///   `text` / `thinking`. `message_delta` with a `stop_reason`: the analogue of chat's
///   `finish_reason` (its `usage` alone does not count: every `message_delta` carries it).
/// - Not progress: `message_start`, `content_block_stop`, a `content_block_start` of an empty
///   text or thinking block (like a role-only delta), the server's own tools
///   (`server_tool_use` and their results: no model tokens for the caller), and `ping`: "Event
///   streams may also include any number of `ping` events" (the SDK skips them), counted as a
///   keepalive. Unknown events ("we may add new event types"): nothing.
/// - Answer fragment: a non-empty `text_delta` or `input_json_delta`, a `tool_use` block
///   started, a block started with text.
/// - End: `message_stop`.
/// - Error: the `error` event, `{"type":"error","error":{"type":"overloaded_error",
///   "message":"Overloaded"}}` (the SDK throws an `APIError` of `error.type`).
fn anthropic_event(kind: &str, data: &str) -> Meaning {
    match kind {
        "message_stop" => Meaning::End(End::MessageStop),
        "error" => Meaning::Error(error_of(data)),
        "ping" => Meaning::Keepalive,
        "content_block_delta" => {
            let Some(delta) = json::field(data, "delta") else {
                return Meaning::Nothing;
            };
            let delta_type = json::field(delta, "type").and_then(json::string);
            // Each delta type carries its piece in one string field; empty, it is no progress.
            let (text_field, fragment) = match delta_type.as_deref() {
                Some("text_delta") => ("text", true),
                Some("input_json_delta") => ("partial_json", true),
                Some("thinking_delta") => ("thinking", false),
                Some("signature_delta") => ("signature", false),
                _ => return PROGRESS,
            };
            match json::field(delta, text_field) {
                None | Some("\"\"") => Meaning::Nothing,
                Some(_) => Meaning::Progress {
                    fragment,
                    finish: false,
                },
            }
        }
        "content_block_start" => {
            let Some(block) = json::field(data, "content_block") else {
                return Meaning::Nothing;
            };
            let has = |field| !matches!(json::field(block, field), None | Some("\"\""));
            match json::field(block, "type").and_then(json::string).as_deref() {
                Some("tool_use") => FRAGMENT,
                Some("text") if has("text") => FRAGMENT,
                Some("thinking") if has("thinking") => PROGRESS,
                _ => Meaning::Nothing,
            }
        }
        "message_delta" => match json::path(data, &["delta", "stop_reason"]) {
            None | Some("null") => Meaning::Nothing,
            Some(_) => Meaning::Progress {
                fragment: false,
                finish: true,
            },
        },
        _ => Meaning::Nothing,
    }
}

/// An error's code and message from JSON data, for every shape the three formats send:
/// `{"error":{"code"|"type":…,"message":…}}` (chat, Anthropic, nested Responses) or a flat
/// `{"code":…,"message":…}` (the Responses `error` event). Data that is not JSON, or carries no
/// message, is the message itself (bounded by the event size).
fn error_of(data: &str) -> ReportedError {
    let nested = json::field(data, "error").filter(|e| e.starts_with('{'));
    // Nested, the error's kind may be its `type` (Anthropic); flat, `type` is the event's.
    let (object, code_keys): (&str, &[&str]) = match nested {
        Some(error) => (error, &["code", "type"]),
        None => (data, &["code"]),
    };
    let message = json::field(object, "message").and_then(json::string);
    let code = code_keys
        .iter()
        .find_map(|key| json::field(object, key).filter(|raw| *raw != "null"))
        .map(|raw| json::string(raw).map_or_else(|| raw.to_owned(), Cow::into_owned));
    ReportedError {
        code,
        message: match message {
            Some(message) => message.into_owned(),
            None => data.to_owned(),
        },
    }
}

/// Just enough JSON to find a few fields: the raw text of a top-level field's value, and a
/// string's value. A scan, not a validator: it trusts the brackets and skips everything it
/// does not look for (strings eight bytes at a time), with no recursion and no allocation
/// unless a string it returns has escapes. Data that is not JSON yields `None` somewhere, never
/// a panic. Keys are compared as sent: a key spelled with escapes does not match.
pub(crate) mod json;

#[cfg(test)]
mod tests;
