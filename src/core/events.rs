//! What a generation reports as it goes: the seed's log lines, as data.
//!
//! Each [`GuardEvent`] serializes to a plain object with a `type` field (`"request-start"`,
//! `"first-token"`, …) and camelCase fields; the edge hands it to `onEvent` and, when logging is
//! on, prints [`GuardEvent::log_line`]. Events never carry keys, headers or URLs with queries.

use serde::Serialize;

/// Console verbosity (`log` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Nothing is printed (the default).
    #[default]
    Off,
    /// Failures only.
    Error,
    /// Progress of every attempt.
    Info,
    /// Also keepalives, malformed events and headers.
    Debug,
}

impl LogLevel {
    /// `"off"`, `"error"`, `"info"`, `"debug"`.
    pub fn parse(text: &str) -> Option<LogLevel> {
        Some(match text {
            "off" => LogLevel::Off,
            "error" => LogLevel::Error,
            "info" => LogLevel::Info,
            "debug" => LogLevel::Debug,
            _ => return None,
        })
    }
}

/// One event of a generation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum GuardEvent {
    /// A request is being sent.
    #[serde(rename_all = "camelCase")]
    RequestStart {
        /// Provider name.
        provider: String,
        /// Model asked for.
        model: String,
        /// 1 for the first attempt at this provider, 2 for its first retry, …
        attempt: u32,
    },
    /// Response headers arrived.
    #[serde(rename_all = "camelCase")]
    Headers {
        /// Provider name.
        provider: String,
        /// HTTP status.
        status: u16,
        /// Milliseconds since the request was sent.
        elapsed_ms: f64,
    },
    /// The first progress arrived.
    #[serde(rename_all = "camelCase")]
    FirstToken {
        /// Provider name.
        provider: String,
        /// Milliseconds since the request was sent.
        first_token_ms: f64,
    },
    /// The stream ended normally.
    #[serde(rename_all = "camelCase")]
    StreamEnd {
        /// Provider name.
        provider: String,
        /// SSE lines read.
        lines: f64,
        /// Chunks that carried text.
        chunks: f64,
        /// Milliseconds since the request was sent.
        elapsed_ms: f64,
    },
    /// A deadline passed.
    #[serde(rename_all = "camelCase")]
    Timeout {
        /// Provider name.
        provider: String,
        /// `"provider"` or `"service"`.
        layer: &'static str,
        /// `"headers"`, `"first-token"`, `"idle"` or `"stream"`.
        phase: &'static str,
        /// SSE lines read.
        lines: f64,
        /// Chunks that carried text.
        chunks: f64,
        /// Milliseconds since the request was sent.
        elapsed_ms: f64,
    },
    /// The response ended with no answer in it.
    #[serde(rename_all = "camelCase")]
    EmptyResponse {
        /// Provider name.
        provider: String,
        /// SSE lines read.
        lines: f64,
    },
    /// An attempt failed (kind and message as a `GuardError` would carry them).
    #[serde(rename_all = "camelCase")]
    AttemptFailed {
        /// Provider name.
        provider: String,
        /// The failure kind.
        kind: &'static str,
        /// HTTP status, for `http` failures.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// What happened.
        message: String,
    },
    /// The same provider will be asked again.
    #[serde(rename_all = "camelCase")]
    Retry {
        /// Provider name.
        provider: String,
        /// The attempt number that follows.
        attempt: u32,
        /// The back-off before it.
        delay_ms: f64,
        /// The failure kind that caused it.
        reason: String,
    },
    /// The next provider will be tried.
    #[serde(rename_all = "camelCase")]
    Failover {
        /// The provider given up on.
        from: String,
        /// The provider tried next.
        to: String,
        /// The failure kind that caused it.
        reason: String,
    },
    /// An event whose data was not a chat chunk was skipped.
    #[serde(rename_all = "camelCase")]
    Malformed {
        /// Provider name.
        provider: String,
        /// What was wrong with it.
        reason: String,
        /// Its size in bytes.
        bytes: f64,
    },
    /// The generation was cancelled (caller's signal, session, page).
    #[serde(rename_all = "camelCase")]
    Cancelled {
        /// What cancelled it.
        reason: String,
    },
    /// An event relayed by the upstream itself (an edge worker's `event: guard` SSE events,
    /// sent when the request carries `X-LSG-Events: 1`): what happened behind the proxy.
    #[serde(rename_all = "camelCase")]
    UpstreamEvent {
        /// The provider (proxy) that relayed it.
        provider: String,
        /// The relayed event (a `GuardEvent` of the proxy), as sent.
        event: serde_json::Value,
    },
    /// The generation resolved.
    #[serde(rename_all = "camelCase")]
    Done {
        /// The provider that answered.
        provider: String,
        /// Whether the answer was cut short.
        partial: bool,
        /// Milliseconds since `generate()` was called.
        elapsed_ms: f64,
    },
}

impl GuardEvent {
    /// The console line for this event and the level it belongs to, in the seed's style.
    pub fn log_line(&self) -> (LogLevel, String) {
        match self {
            GuardEvent::RequestStart { provider, model, attempt } => (
                LogLevel::Info,
                format!("LLM [{provider}]: streaming request to model '{model}' (attempt {attempt})"),
            ),
            GuardEvent::Headers { provider, status, elapsed_ms } => (
                LogLevel::Debug,
                format!("LLM [{provider}]: HTTP {status} after {elapsed_ms:.0} ms"),
            ),
            GuardEvent::FirstToken { provider, first_token_ms } => (
                LogLevel::Info,
                format!("LATENCY [LLM first chunk] [{provider}]: {:.3}s", first_token_ms / 1000.0),
            ),
            GuardEvent::StreamEnd { provider, lines, chunks, .. } => (
                LogLevel::Info,
                format!("LLM [{provider}]: SSE stream ended after {lines} lines, {chunks} content chunks"),
            ),
            GuardEvent::Timeout { provider, layer, phase, lines, chunks, elapsed_ms } => (
                LogLevel::Error,
                format!(
                    "LLM [{provider}]: {layer} {phase} timeout after {:.1}s (received {lines} lines, {chunks} content chunks)",
                    elapsed_ms / 1000.0
                ),
            ),
            GuardEvent::EmptyResponse { provider, lines } => (
                LogLevel::Error,
                format!("LLM [{provider}]: EMPTY RESPONSE - received {lines} SSE lines but 0 content chunks"),
            ),
            GuardEvent::AttemptFailed { provider, kind, message, .. } => {
                (LogLevel::Error, format!("LLM [{provider}]: {kind} failure: {message}"))
            }
            GuardEvent::Retry { provider, attempt, delay_ms, reason } => (
                LogLevel::Info,
                format!("LLM [{provider}]: retry {attempt} in {delay_ms:.0} ms after {reason}"),
            ),
            GuardEvent::Failover { from, to, reason } => {
                (LogLevel::Info, format!("LLM: falling back from {from} to {to} after {reason}"))
            }
            GuardEvent::Malformed { provider, reason, bytes } => (
                LogLevel::Debug,
                format!("LLM [{provider}]: skipped a malformed event ({reason}, {bytes} bytes)"),
            ),
            GuardEvent::Cancelled { reason } => {
                (LogLevel::Info, format!("Cancelling active LLM generation ({reason})"))
            }
            GuardEvent::UpstreamEvent { provider, event } => {
                (LogLevel::Debug, format!("LLM [{provider}]: upstream event {event}"))
            }
            GuardEvent::Done { provider, partial, elapsed_ms } => (
                LogLevel::Info,
                format!(
                    "LLM [{provider}]: {} answer in {:.3}s",
                    if *partial { "partial" } else { "complete" },
                    elapsed_ms / 1000.0
                ),
            ),
        }
    }
}

/// `text` with every occurrence of each secret (of 4 bytes or more) replaced by `[redacted]`.
/// Applied to anything a server sent before it reaches an event, an error or a log line.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_short_ones_ignored() {
        let text = "bad key sk-or-v1-abc for sk-or-v1-abc, x";
        assert_eq!(
            redact(text, &["sk-or-v1-abc", "x"]),
            "bad key [redacted] for [redacted], x"
        );
        assert_eq!(redact("clean", &["sk-or-v1-abc"]), "clean");
    }

    #[test]
    fn events_serialize_with_a_type_and_camel_case_fields() {
        let event = GuardEvent::Timeout {
            provider: "p".into(),
            layer: "service",
            phase: "first-token",
            lines: 3.0,
            chunks: 0.0,
            elapsed_ms: 412.5,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "timeout");
        assert_eq!(json["elapsedMs"], 412.5);
        assert_eq!(json["phase"], "first-token");
        let (level, line) = event.log_line();
        assert_eq!(level, LogLevel::Error);
        assert!(
            line.contains("service first-token timeout after 0.4s"),
            "{line}"
        );
        let failed = GuardEvent::AttemptFailed {
            provider: "p".into(),
            kind: "network",
            status: None,
            message: "m".into(),
        };
        assert!(serde_json::to_value(&failed)
            .unwrap()
            .get("status")
            .is_none());
    }
}
