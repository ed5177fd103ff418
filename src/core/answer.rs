//! One attempt's answer, assembled from response bytes, and how the attempt ended.
//!
//! The edge hands over the response's status and content type, then body bytes as they are
//! read, with clock readings; this module parses (SSE or JSON), decodes chunks, feeds progress to
//! the deadlines, hands every text delta to the caller's sink, and decides, when the attempt
//! stops for whatever reason, whether it produced a complete answer, a partial one, or nothing.
//! Pure Rust: no platform crate, no clock, no I/O.

use crate::core::chunk::{
    decode_body, decode_event_data, Chunk, ChunkDecoder, Decoded, Malformed, Usage,
};
use crate::core::deadline::{AttemptDeadlines, Millis};
use crate::core::policy::Failure;
use crate::core::secrets::excerpt;
use crate::core::sse::{Event, SseError, SseParser, SseSink};

/// How the response body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `text/event-stream` (or no content type): parsed incrementally as SSE.
    EventStream,
    /// JSON (`application/json` or `+json`): read whole, then decoded once.
    Json,
}

/// Decide from the status line and content type how to read a response, or why it failed.
/// `retry_after_ms` is the already parsed `Retry-After` header, kept for non-2xx statuses.
pub fn classify_response(
    status: u16,
    content_type: Option<&str>,
    retry_after_ms: Option<Millis>,
) -> Result<BodyKind, Failure> {
    if !(200..300).contains(&status) {
        return Err(Failure::Http {
            status,
            retry_after_ms,
        });
    }
    let media = content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if media.is_empty() || media == "text/event-stream" {
        Ok(BodyKind::EventStream)
    } else if media == "application/json" || media.ends_with("+json") {
        Ok(BodyKind::Json)
    } else {
        Err(Failure::Protocol)
    }
}

/// What the caller hears while an answer is assembled.
pub trait AnswerSink {
    /// A piece of answer text, in order. Joined, the pieces equal the answer's text.
    fn text(&mut self, delta: &str);
    /// The first progress of the attempt arrived, `first_token_ms` after the request.
    fn first_progress(&mut self, _first_token_ms: Millis) {}
    /// An event whose data was not a chat chunk; it was counted and skipped.
    fn malformed(&mut self, _malformed: Malformed, _data_bytes: usize) {}
    /// An event of a type other than `message` or `error` (chat chunks are always `message`):
    /// not part of the answer, and not progress. The edge worker uses `event: guard` to relay
    /// its own events to clients that ask for them.
    fn side_event(&mut self, _event_type: &str, _data: &str) {}
}

/// A tool call assembled from its streamed fragments.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ToolCall {
    /// The call id.
    pub id: String,
    /// The function name.
    pub name: String,
    /// The JSON arguments text, concatenated.
    pub arguments: String,
}

/// How the reading of an attempt stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// `data: [DONE]` arrived, or a whole JSON answer was read.
    Done,
    /// The body ended (end of stream) without `[DONE]`.
    EndOfBody,
    /// Something cut the attempt short: a deadline, the network, an upstream error, the caller.
    Failed(Failure),
}

/// What an attempt amounted to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A complete answer.
    Complete,
    /// Text arrived, then the attempt was cut short by this failure. Resolved, marked partial.
    Partial(Failure),
    /// No answer: the attempt failed (the policy decides what next).
    Failed(Failure),
}

/// Everything one attempt has received so far.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The answer text received and not yet moved out. A caller may take it as it arrives
    /// (the browser edge moves it into a JavaScript string after every read, so linear memory
    /// holds one read's text, not the whole answer); [`Answer::text_bytes`] counts all of it.
    pub text: String,
    /// Tool calls assembled from fragments, by index.
    pub tool_calls: Vec<ToolCall>,
    /// The finish reason, once one arrived.
    pub finish_reason: Option<String>,
    /// Token counts, once they arrived.
    pub usage: Option<Usage>,
    /// The first chunk id seen (OpenRouter's generation id).
    pub chunk_id: Option<String>,
    /// The model the server says answered.
    pub model: Option<String>,
    /// An error the upstream reported (code, message), once one arrived.
    pub error: Option<(Option<String>, String)>,
    /// Chunks that carried answer text.
    pub content_chunks: u64,
    /// Chunks decoded (any kind).
    pub chunks: u64,
    /// Event payloads that were not chat chunks.
    pub malformed: u64,
    /// Comment lines (keepalives) seen.
    pub comments: u64,
    /// Whether `[DONE]` arrived.
    pub done: bool,
    reasoning_bytes: usize,
    text_bytes: usize,
}

impl Answer {
    /// Whether anything a caller can use arrived: text or a tool call.
    pub fn has_text(&self) -> bool {
        self.text_bytes > 0 || !self.tool_calls.is_empty()
    }

    /// Bytes of answer text received in all, including any already moved out of `text`.
    pub fn text_bytes(&self) -> usize {
        self.text_bytes
    }

    /// Bytes of reasoning text received (reasoning is progress but not part of `text`).
    pub fn reasoning_bytes(&self) -> usize {
        self.reasoning_bytes
    }

    /// Apply one decoded chunk; returns `Some(Stop)` when the chunk ends the attempt.
    fn apply<S: AnswerSink + ?Sized>(
        &mut self,
        chunk: &Chunk<'_>,
        now: Millis,
        deadlines: &mut AttemptDeadlines,
        sink: &mut S,
    ) -> Option<Stop> {
        self.chunks += 1;
        if self.chunk_id.is_none() {
            self.chunk_id = chunk.id.as_deref().map(str::to_owned);
        }
        if self.model.is_none() {
            self.model = chunk.model.as_deref().map(str::to_owned);
        }
        if chunk.is_progress() {
            let first = deadlines.first_token_ms().is_none();
            deadlines.on_progress(now);
            if first {
                sink.first_progress(deadlines.first_token_ms().unwrap_or(0.0));
            }
        }
        if let Some(content) = chunk.content.as_deref().filter(|c| !c.is_empty()) {
            self.content_chunks += 1;
            self.text_bytes += content.len();
            self.text.push_str(content);
            sink.text(content);
        }
        if let Some(reasoning) = &chunk.reasoning {
            self.reasoning_bytes += reasoning.len();
        }
        for fragment in &chunk.tool_calls {
            let index = fragment.index as usize;
            if index > 1024 {
                continue; // absurd index: refuse to allocate for it
            }
            if self.tool_calls.len() <= index {
                self.tool_calls.resize_with(index + 1, ToolCall::default);
            }
            let call = &mut self.tool_calls[index];
            if let Some(id) = &fragment.id {
                call.id.push_str(id);
            }
            if let Some(name) = &fragment.name {
                call.name.push_str(name);
            }
            if let Some(arguments) = &fragment.arguments {
                call.arguments.push_str(arguments);
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        if chunk.is_error() {
            let (code, message) = match &chunk.error {
                Some(e) => (e.code.clone(), e.message.clone()),
                None => (
                    None,
                    "the upstream ended the stream with finish_reason \"error\"".into(),
                ),
            };
            self.error = Some((code, message));
            return Some(Stop::Failed(Failure::Upstream));
        }
        if let Some(reason) = &chunk.finish_reason {
            self.finish_reason = Some(reason.to_string());
        }
        None
    }

    /// What the attempt amounted to, given how its reading stopped.
    ///
    /// - `[DONE]`, or the end of the body after a finish reason: complete if anything arrived
    ///   (text, a tool call, or a finish reason), else [`Failure::Empty`].
    /// - The end of the body with neither: the stream was cut ([`Failure::Network`]).
    /// - A failure after a finish reason changes nothing: the answer was complete.
    /// - Otherwise a failure after text makes a partial answer; before text, a failed attempt.
    ///   The caller's abort is never a partial answer: it rejects (with the partial text).
    pub fn outcome(&self, stop: &Stop) -> Outcome {
        let finished = self.finish_reason.is_some();
        let failure = match stop {
            Stop::Done => {
                return if self.has_text() || finished {
                    Outcome::Complete
                } else {
                    Outcome::Failed(Failure::Empty)
                };
            }
            Stop::EndOfBody if finished => return Outcome::Complete,
            Stop::EndOfBody => Failure::Network,
            Stop::Failed(Failure::Aborted) => return Outcome::Failed(Failure::Aborted),
            Stop::Failed(_) if finished && self.error.is_none() => return Outcome::Complete,
            Stop::Failed(failure) => failure.clone(),
        };
        if self.has_text() {
            Outcome::Partial(failure)
        } else {
            Outcome::Failed(failure)
        }
    }
}

/// Reads one attempt's body: SSE incrementally, or JSON whole.
#[derive(Debug)]
pub struct AnswerReader {
    kind: BodyKind,
    parser: SseParser,
    decoder: ChunkDecoder,
    json: Vec<u8>,
    max_body_bytes: usize,
    /// What arrived so far.
    pub answer: Answer,
    stopped: Option<Stop>,
}

/// Feeds parsed SSE events into the answer (the parser and the answer are borrowed apart).
struct EventFeed<'a, S: ?Sized> {
    answer: &'a mut Answer,
    decoder: &'a mut ChunkDecoder,
    deadlines: &'a mut AttemptDeadlines,
    now: Millis,
    sink: &'a mut S,
    stop: Option<Stop>,
}

impl<S: AnswerSink + ?Sized> SseSink for EventFeed<'_, S> {
    fn event(&mut self, event: Event<'_>) {
        if self.stop.is_some() {
            return; // nothing after [DONE] or an error counts
        }
        if event.event_type == "error" {
            // Some servers send `event: error` with a JSON or text payload.
            let message = match decode_event_data(event.data) {
                Decoded::Chunk(chunk) if chunk.error.is_some() => {
                    chunk.error.map(|e| e.message).unwrap_or_default()
                }
                // Kept whole here (bounded by the event size): it is redacted, then cut, when
                // a message quotes it (`secrets::excerpt`).
                _ => event.data.to_owned(),
            };
            self.answer.error = Some((None, message));
            self.stop = Some(Stop::Failed(Failure::Upstream));
            return;
        }
        if event.event_type != "message" {
            self.sink.side_event(event.event_type, event.data);
            return;
        }
        match self.decoder.decode_event_data(event.data) {
            Decoded::Done => {
                self.answer.done = true;
                self.stop = Some(Stop::Done);
            }
            Decoded::Chunk(chunk) => {
                self.stop = self
                    .answer
                    .apply(&chunk, self.now, self.deadlines, self.sink);
            }
            Decoded::Malformed(malformed) => {
                self.answer.malformed += 1;
                self.sink.malformed(malformed, event.data.len());
            }
        }
    }

    fn comment(&mut self, _text: &str) {
        self.answer.comments += 1;
    }
}

impl AnswerReader {
    /// A reader for a body of this kind. `max_event_bytes` bounds one SSE event, and a JSON
    /// body (which is one event's worth of answer).
    pub fn new(kind: BodyKind, max_event_bytes: usize) -> Self {
        let parser = SseParser::new(max_event_bytes);
        AnswerReader {
            kind,
            max_body_bytes: parser.max_event_bytes(),
            parser,
            decoder: ChunkDecoder::default(),
            json: Vec::new(),
            answer: Answer::default(),
            stopped: None,
        }
    }

    /// Lines read so far (SSE), including blank and comment lines.
    pub fn lines(&self) -> u64 {
        self.parser.lines()
    }

    /// Feed body bytes read at `now`. Returns `Some(stop)` once the attempt's reading is over
    /// (`[DONE]`, an upstream error, a protocol error); the edge then releases the connection.
    pub fn push<S: AnswerSink + ?Sized>(
        &mut self,
        bytes: &[u8],
        now: Millis,
        deadlines: &mut AttemptDeadlines,
        sink: &mut S,
    ) -> Option<Stop> {
        if self.stopped.is_some() {
            return self.stopped.clone();
        }
        deadlines.on_headers(now);
        match self.kind {
            BodyKind::EventStream => {
                let mut feed = EventFeed {
                    answer: &mut self.answer,
                    decoder: &mut self.decoder,
                    deadlines,
                    now,
                    sink,
                    stop: None,
                };
                let result = self.parser.push(bytes, &mut feed);
                let stop = feed.stop;
                self.stopped = match (result, stop) {
                    (_, Some(stop)) => Some(stop),
                    (Err(SseError::EventTooLarge { .. }), None) => {
                        Some(Stop::Failed(Failure::Protocol))
                    }
                    (Ok(()), None) => None,
                };
            }
            BodyKind::Json => {
                if self.json.len() + bytes.len() > self.max_body_bytes {
                    self.stopped = Some(Stop::Failed(Failure::Protocol));
                } else {
                    self.json.extend_from_slice(bytes);
                }
            }
        }
        self.stopped.clone()
    }

    /// The body ended at `now`. For JSON, this is when the whole answer is decoded.
    pub fn end<S: AnswerSink + ?Sized>(
        &mut self,
        now: Millis,
        deadlines: &mut AttemptDeadlines,
        sink: &mut S,
    ) -> Stop {
        if let Some(stop) = &self.stopped {
            return stop.clone();
        }
        let stop = match self.kind {
            BodyKind::EventStream => {
                self.parser.end();
                Stop::EndOfBody
            }
            BodyKind::Json => {
                let body = String::from_utf8_lossy(&self.json).into_owned();
                match decode_body(&body) {
                    Decoded::Chunk(chunk) => {
                        match self.answer.apply(&chunk, now, deadlines, sink) {
                            Some(stop) => stop,
                            None => Stop::Done,
                        }
                    }
                    Decoded::Done => Stop::Failed(Failure::Protocol),
                    Decoded::Malformed(malformed) => {
                        self.answer.malformed += 1;
                        sink.malformed(malformed, body.len());
                        Stop::Failed(Failure::Protocol)
                    }
                }
            }
        };
        self.stopped = Some(stop.clone());
        stop
    }
}

/// Pull a human-readable message out of an error response body (OpenAI/OpenRouter shape
/// `{"error":{"message":…}}`), or an excerpt of the text, with `secrets` redacted before it is
/// cut to length ([`excerpt`]). Never more than 300 characters.
pub fn error_body_message(body: &str, secrets: &[&str]) -> String {
    if let Decoded::Chunk(chunk) = decode_body(body) {
        if let Some(error) = chunk.error {
            if !error.message.is_empty() {
                return excerpt(&error.message, secrets);
            }
        }
    }
    excerpt(body, secrets)
}
