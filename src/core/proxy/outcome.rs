//! How a generation's end reaches the client: the status and error of a failure, the message
//! that names every provider tried, and the guard events relayed to clients that asked.
//!
//! A final failure is final: every provider was tried (and retried) already, so it carries
//! `x-should-retry: false`, which the OpenAI SDKs honour instead of trying the whole chain
//! again. The one exception is when every provider answered 429: the client gets 429 with the
//! smallest `Retry-After` any of them sent, and may come back after it.

use super::request::Refusal;
use crate::core::deadline::Millis;
use crate::core::secrets::redact;

/// The event name of the worker's own guard events (`X-LSG-Events: 1`): the name the library
/// reads as a proxy's relayed events (`upstream-event`).
pub const WORKER_EVENT: &str = "guard";
/// The event name of guard events an upstream sent itself (another worker behind this one):
/// never relayed under [`WORKER_EVENT`], so they cannot pass for this worker's.
pub const UPSTREAM_EVENT: &str = "guard-upstream";

/// The HTTP status and OpenAI error `type` for a generation that failed before any byte was
/// sent: 504 for timeouts, 400 when the upstream refused the request itself, 502 otherwise.
pub fn failure_status(kind: &str, upstream_status: Option<u16>) -> (u16, &'static str) {
    match (kind, upstream_status) {
        ("timeout", _) => (504, "timeout_error"),
        ("http", Some(400 | 413 | 422)) => (400, "invalid_request_error"),
        ("config", _) => (500, "server_error"),
        ("aborted", _) => (499, "cancelled"),
        _ => (502, "upstream_error"),
    }
}

/// One attempt of a failed generation, as its error's `attempts` list says.
#[derive(Debug, Clone, PartialEq)]
pub struct Tried {
    /// Provider name.
    pub provider: String,
    /// The failure kind (`timeout`, `http`, …).
    pub outcome: String,
    /// The HTTP status, when headers arrived.
    pub status: Option<u16>,
}

/// The providers tried, in order, one entry per run of attempts at the same provider with the
/// same result: `one (http 500, 2 attempts), two (timeout)`.
pub fn tried_summary(tried: &[Tried]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut at = 0;
    while at < tried.len() {
        let first = &tried[at];
        let run = tried[at..].iter().take_while(|t| *t == first).count();
        let mut part = format!("{} ({}", first.provider, first.outcome);
        if let Some(status) = first.status {
            part.push_str(&format!(" {status}"));
        }
        if run > 1 {
            part.push_str(&format!(", {run} attempts"));
        }
        part.push(')');
        parts.push(part);
        at += run;
    }
    parts.join(", ")
}

/// A failure's message for the client: what the last attempt said (secrets taken out), after
/// the list of every provider tried.
pub fn failure_message(message: &str, tried: &[Tried], secrets: &[&str]) -> String {
    let message = redact(message, secrets);
    if tried.is_empty() {
        return message;
    }
    format!("tried {}: {message}", tried_summary(tried))
}

/// The generic answer to a configuration problem: the details go to the operator's log, never
/// to a client (who may not even be authenticated yet).
pub fn misconfigured() -> Refusal {
    Refusal::new(
        500,
        "server_error",
        "misconfigured",
        "the worker is misconfigured; its log says why",
    )
    .header("x-should-retry", "false")
}

/// The answer to a generation that failed before anything was sent. `retry_after_ms` are the
/// `Retry-After` values (converted) of the 429 answers seen. `None` for a cancelled one (its
/// client is gone).
pub fn final_failure(
    kind: &str,
    status: Option<u16>,
    message: &str,
    tried: &[Tried],
    retry_after_ms: &[Millis],
    secrets: &[&str],
) -> Option<Refusal> {
    if kind == "aborted" {
        return None;
    }
    if kind == "config" {
        return Some(misconfigured());
    }
    let message = failure_message(message, tried, secrets);
    if !tried.is_empty() && tried.iter().all(|t| t.status == Some(429)) {
        let mut refusal = Refusal::new(429, "rate_limit_error", "rate_limited", message);
        if let Some(seconds) = smallest_retry_after_seconds(retry_after_ms) {
            refusal = refusal.header("retry-after", seconds.to_string());
        }
        return Some(refusal);
    }
    let (code, error_type) = failure_status(kind, status);
    let code_name = match kind {
        "timeout" => "timeout",
        "http" => "http",
        "upstream" => "upstream",
        "protocol" => "protocol",
        _ => "network",
    };
    Some(Refusal::new(code, error_type, code_name, message).header("x-should-retry", "false"))
}

/// The smallest of the waits, in whole seconds (rounded up: a client must not come back early).
pub fn smallest_retry_after_seconds(retry_after_ms: &[Millis]) -> Option<u64> {
    retry_after_ms
        .iter()
        .copied()
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .reduce(f64::min)
        .map(|ms| (ms / 1000.0).ceil() as u64)
}

/// One guard event for a client that asked for them: `event: <name>` and the event's JSON with
/// every secret taken out. `kind` is the event's `type`; an `upstream-event` (what an upstream
/// sent as its own guard event) goes out as [`UPSTREAM_EVENT`], everything else as
/// [`WORKER_EVENT`]. `None` when the text is no longer one line of JSON after redaction.
pub fn relayed_event(kind: &str, json: &str, secrets: &[&str]) -> Option<String> {
    let name = if kind == "upstream-event" {
        UPSTREAM_EVENT
    } else {
        WORKER_EVENT
    };
    let data = redact(json, secrets);
    if data.contains(['\n', '\r']) || serde_json::from_str::<serde_json::Value>(&data).is_err() {
        return None;
    }
    Some(format!("event: {name}\ndata: {data}\n\n"))
}
