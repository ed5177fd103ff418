//! What goes into the call machine and what comes out of it: what both modes share (attempt
//! ids, the response head a driver reports, body errors, observations, skips) and the answering
//! mode's own (its configuration, the actions and deliveries it hands out, and the outcome; the
//! relaying mode's are in `core::relay`).
//!
//! Plain data only; nothing here decides anything.

use crate::core::answer::ToolCall;
use crate::core::call::AttemptRecord;
use crate::core::chunk::Usage;
use crate::core::deadline::{Millis, Timeouts};
use crate::core::events::GuardEvent;
use crate::core::policy::{Failure, RetryPolicy};
use serde::Serialize;

/// Names one attempt (one request) of a generation: 0 for the first, then 1, 2, … in the order
/// they are sent. Every input about an attempt carries its id, so a late report about an
/// attempt that is already over (a read that was in flight when it was cancelled) is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u32);

/// One provider of the failover chain, as the caller's options gave it (the driver checks the
/// options; the machine trusts them). Its fields are the `Provider` option's, resolved (the
/// contract test checks their names and types against it, written as the option takes them).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    test,
    derive(ts_rs::TS),
    ts(rename = "Provider", rename_all = "camelCase", optional_fields)
)]
pub struct ProviderConfig {
    /// The provider's name, for events, messages and the attempt log.
    pub name: String,
    /// Where the request goes.
    pub url: String,
    /// The model asked for (set as `model` in the request body).
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` and kept out of every message.
    pub api_key: Option<String>,
    /// Extra request headers, in order, sent as given.
    #[cfg_attr(test, ts(type = "Record<string, string>"))]
    pub headers: Vec<(String, String)>,
    /// Its deadlines (the call's, with its own overrides applied).
    #[cfg_attr(test, ts(type = "Partial<Timeouts>"))]
    pub timeouts: Timeouts,
    /// Its retry allowance.
    pub max_retries: u32,
}

/// Everything one generation needs, read and checked once by the driver.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// The failover chain, tried in order (at least one).
    pub providers: Vec<ProviderConfig>,
    /// Back-off settings.
    pub policy: RetryPolicy,
    /// The whole call's deadline (`serviceMs`).
    pub service_ms: Millis,
    /// Whether the request asks for a stream (`Accept: text/event-stream`) or a JSON answer.
    pub stream: bool,
    /// The bound on one SSE event, and on a JSON body.
    pub max_event_bytes: usize,
    /// The request body as JSON object text *without* `model` (`{"messages":[…],"stream":true,
    /// …params}`); each attempt adds its provider's `model` as the last field.
    pub body_without_model: String,
    /// Seeds the back-off jitter (the driver passes a random number; tests a fixed one).
    pub jitter_seed: u64,
}

/// What a guard adds to a generation ([`super::Generation::guarded`]); both off by default.
/// The machine trusts them (the guard's option reader checks them): a hedge wait that is not a
/// finite number never comes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GuardSettings {
    /// Hedging (`hedge.afterMs`): when the attempt running alone has shown no progress this
    /// long after its request, the next provider of the chain is asked in parallel; the first
    /// to show progress wins and the other is released at once. At most one hedge per call.
    pub hedge_after_ms: Option<Millis>,
    /// Continuation (`continuation`): an answer cut after text (and no tool-call fragment) is
    /// continued by the next provider instead of resolving partial.
    pub continuation: bool,
}

/// A provider a guard leaves out of one call ([`super::Generation::skip`]): its breaker is
/// open. The call passes over it as over a failed attempt that sent nothing: a `skipped` event,
/// an attempt logged as `"skipped"`, then the next provider (or, if it was the last, the call
/// rejects with kind `"unavailable"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    /// The failure kind that opened the breaker.
    pub reason: &'static str,
    /// How long until one call may probe it (`None`: another call's probe is out).
    pub retry_in_ms: Option<Millis>,
}

/// What one attempt showed, for a guard to learn from ([`super::Generation::observations`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Which provider of the chain (index into [`GenerationConfig::providers`]).
    pub provider: usize,
    /// `None` for a complete answer; the failure that ended it (or cut it short) otherwise.
    pub failure: Option<Failure>,
    /// From its request to its first progress, if there was some.
    pub first_token_ms: Option<Millis>,
    /// The longest silence between two progresses of its answer, if there were two.
    pub longest_gap_ms: Option<Millis>,
}

/// The response head of an attempt, as the platform handed it over.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Head {
    /// The HTTP status.
    pub status: u16,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// `Retry-After`, if sent, unparsed.
    pub retry_after: Option<String>,
    /// `X-Generation-Id`, if sent (OpenRouter's id, to look usage up later).
    pub generation_id: Option<String>,
    /// Whether the response has a body to read (`response.body` is not `null`).
    pub has_body: bool,
    /// The wall clock (Unix milliseconds, `Date.now()`) when the head arrived: a `Retry-After`
    /// given as an HTTP date is measured from it.
    pub unix_ms: f64,
}

/// How reading a body failed.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyError {
    /// A read threw or rejected (a reset, a lost connection); the platform's message.
    Read(String),
    /// A read yielded something that is not bytes (an injected `fetch` misbehaving).
    NotBytes,
}

/// Who cancelled the call.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelReason {
    /// The caller's `signal` was aborted.
    Signal,
    /// A callback threw while the machine's text or events were being delivered.
    Callback(Callback),
    /// Anything else, by the name the caller sees as `reason` (`"pagehide"`, `"cancel"`, …).
    Named(String),
}

impl CancelReason {
    /// The error's `reason`: `"signal"`, `"callback"`, or the name given.
    pub fn as_str(&self) -> &str {
        match self {
            CancelReason::Signal => "signal",
            CancelReason::Callback(_) => "callback",
            CancelReason::Named(name) => name,
        }
    }
}

/// The caller's callbacks, for a cancel caused by one that threw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    /// `onText`.
    OnText,
    /// `onEvent`.
    OnEvent,
}

impl Callback {
    /// `"onText"` or `"onEvent"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Callback::OnText => "onText",
            Callback::OnEvent => "onEvent",
        }
    }
}

/// A request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The attempt it belongs to: report its head, body and errors under this id.
    pub attempt: AttemptId,
    /// Which provider of the chain (index into [`GenerationConfig::providers`]).
    pub provider: usize,
    /// Where to send it (`POST`).
    pub url: String,
    /// The headers, in order: `Content-Type`, `Accept`, the provider's own, `Authorization`.
    pub headers: Vec<(String, String)>,
    /// The JSON body, with the provider's `model`.
    pub body: String,
}

/// Something the driver must do on the platform.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this request (and report what comes back under its attempt id).
    Send(Request),
    /// Release this attempt now: abort its request and cancel its body reader. Nothing more
    /// about it is wanted; reports that still arrive are ignored.
    Cancel {
        /// The attempt to release.
        attempt: AttemptId,
    },
    /// This attempt's answer is whole (its end marker was read) but its body may not have
    /// ended: let its transport read the rest and end there (a connection read to its end can
    /// be used again; cancelling it closes it), releasing it as for `Cancel` if more comes
    /// or the end is slow. Nothing more about it is wanted.
    Finish {
        /// The attempt to let end.
        attempt: AttemptId,
    },
}

/// What the caller hears, in order: answer text for `onText` and events for `onEvent`.
///
/// One queue for both, because their order is part of the contract (an attempt's
/// `first-token` comes before its first text, a `malformed` event between the texts around it).
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// A piece of answer text from `attempt`. The machine keeps none of it (only its length):
    /// a driver that needs the answer joins the pieces of each attempt, and the outcome says
    /// which attempt's pieces make the result's text ([`DeliveredText`]).
    Text {
        /// The attempt it came from; for a continuation's text, the attempt whose answer it
        /// continues (so one id's pieces, joined, are the whole answer).
        attempt: AttemptId,
        /// The piece.
        text: String,
    },
    /// An event.
    Event(GuardEvent),
}

/// The text handed out for one attempt: its [`Delivery::Text`] pieces, joined. The machine
/// points at it instead of holding it, so that a long answer does not grow the machine's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveredText {
    /// The attempt whose pieces these are.
    pub attempt: AttemptId,
    /// Their length in bytes (UTF-8), for a driver's own check.
    pub bytes: usize,
}

/// Where the driver finds a `cause` the machine cannot hold (a platform or JavaScript value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseRef {
    /// What the platform threw or rejected with for this attempt (its request or a read).
    Platform(AttemptId),
    /// What the callback that threw threw.
    Thrown,
}

/// Why a partial answer was cut short (`result.cause`). Serialized as JavaScript sees it, but
/// for `cause` (a platform value the driver sets).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
pub struct PartialCause {
    /// The failure itself.
    #[serde(skip)]
    pub failure: Failure,
    /// `failure.kind()`.
    pub kind: &'static str,
    /// The timeout's phase, for a timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
    /// What happened.
    pub message: String,
    /// The platform's error, when a network failure cut the answer.
    #[serde(skip)]
    pub cause: Option<CauseRef>,
}

/// `result.stats`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "GenerateStats", optional_fields))]
pub struct Stats {
    /// SSE lines read by the answering attempt.
    #[serde(with = "crate::core::contract::number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub lines: u64,
    /// Its chunks that carried text.
    #[serde(with = "crate::core::contract::number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub chunks: u64,
    /// From its request to its first progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token_ms: Option<Millis>,
    /// From the start of the call to its end.
    pub elapsed_ms: Millis,
}

/// A generation that answered (`GenerateResult`). Serialized as JavaScript sees it, but for
/// `text` (the driver joined it outside the wasm memory and sets it).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(
    test,
    derive(ts_rs::TS),
    ts(rename = "GenerateResult", optional_fields)
)]
pub struct GenerationResult {
    /// The answer text: what was handed out for the answering attempt.
    #[serde(skip)]
    pub text: DeliveredText,
    /// Whether it was cut short (then `cause` says why).
    pub partial: bool,
    /// The finish reason, if one arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered (as the server said, else as asked).
    pub model: String,
    /// Token counts, if they arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Why the answer was cut short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<PartialCause>,
    /// `X-Generation-Id`, else the first chunk's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<String>,
    /// Tool calls assembled from fragments (left out when there are none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(test, ts(optional = nullable))]
    pub tool_calls: Vec<ToolCall>,
    /// Counts and times.
    pub stats: Stats,
    /// One entry per attempt.
    pub attempts: Vec<AttemptRecord>,
    /// Set when the text was continued on another provider after a cut: from whom and where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation: Option<ContinuationInfo>,
}

/// Where a continued answer was cut and how it was continued (`result.continuation`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "Continuation"))]
pub struct ContinuationInfo {
    /// The provider whose answer was cut and continued.
    pub from: String,
    /// The characters (Unicode scalar values) of the text at the cut: the continuation starts
    /// after them.
    #[serde(with = "crate::core::contract::number")]
    #[cfg_attr(test, ts(type = "number"))]
    pub chars: u64,
    /// `"prefill"` (the text as a trailing assistant message) or `"instruction"` (then a user
    /// message asking to continue), as the continuing provider was asked.
    #[cfg_attr(test, ts(type = "\"prefill\" | \"instruction\""))]
    pub mode: &'static str,
}

/// A generation that failed (`GuardError`). Serialized as the fields JavaScript sees on the
/// error, but for `partialText` and `cause` (values the driver holds and sets).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "GuardError", optional_fields))]
pub struct GenerationError {
    /// The error's message.
    pub message: String,
    /// The failure itself (for typed checks; the fields below are derived from it).
    #[serde(skip)]
    pub failure: Failure,
    /// `"timeout"`, `"aborted"`, `"http"`, `"upstream"`, `"protocol"` or `"network"`.
    pub kind: &'static str,
    /// `"provider"` or `"service"`, for a timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<&'static str>,
    /// `"headers"`, `"first-token"`, `"idle"` or `"stream"`, for a timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
    /// The HTTP status, for an `http` failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The text the caller was given before the call failed: what was handed out for the last
    /// attempt that received text (`None`: no text, `""`).
    #[serde(skip)]
    pub partial_text: Option<DeliveredText>,
    /// One entry per attempt.
    pub attempts: Vec<AttemptRecord>,
    /// The provider the call was at.
    pub provider: String,
    /// Who cancelled it, for an `aborted` failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where the driver finds the error's `cause`.
    #[serde(skip)]
    pub cause: Option<CauseRef>,
}

/// How the generation ended.
pub type Finished = Result<GenerationResult, GenerationError>;
