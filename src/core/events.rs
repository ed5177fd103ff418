//! What a generation reports as it goes: the seed's log lines, as data.
//!
//! Each [`GuardEvent`] is a plain object with a `type` field (`"request-start"`,
//! `"first-token"`, …) and camelCase fields: its `Serialize` form, which the edge's one writer
//! turns into the object `onEvent` receives (`core::contract` checks it against the published
//! types); when logging is on, the edge prints [`GuardEvent::log_line`]. Events never carry
//! keys, headers or URLs with queries.

use serde::Serialize;
use std::fmt::Write;

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
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
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
        /// The relayed event's data as sent: JSON text (normally a `GuardEvent` of the proxy),
        /// or any other text. Serialized as this text; the writer of JavaScript objects
        /// delivers the value it stands for (`JSON.parse`), or the text when it is not JSON.
        #[cfg_attr(test, ts(type = "GuardEvent | Record<string, unknown> | string"))]
        event: String,
    },
    /// Hedging: the attempt running alone showed no progress after `afterMs`; the next
    /// provider is asked in parallel (the first to show progress wins, the other is released).
    #[serde(rename_all = "camelCase")]
    Hedge {
        /// The provider that showed no progress.
        provider: String,
        /// The provider asked in parallel.
        to: String,
        /// The wait that passed (`hedge.afterMs`).
        after_ms: f64,
    },
    /// A guard left a provider out of this call: its breaker is open (after failures in a row),
    /// or half-open with another call's probe out. Nothing was sent to it.
    #[serde(rename_all = "camelCase")]
    Skipped {
        /// The provider left out.
        provider: String,
        /// Its model.
        model: String,
        /// The failure kind that opened its breaker (`"timeout"`, `"http"`, …).
        reason: String,
        /// How long until one call may probe it again (absent while another call probes it).
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_in_ms: Option<f64>,
    },
    /// Continuation: an answer cut after text will be continued by the next provider.
    #[serde(rename_all = "camelCase")]
    Continuation {
        /// The provider whose answer was cut.
        from: String,
        /// The provider asked to continue it.
        to: String,
        /// The characters of the text so far.
        chars: f64,
        /// The failure kind that cut it.
        reason: String,
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
    /// The `type` field: `"request-start"`, `"first-token"`, ….
    pub fn type_name(&self) -> &'static str {
        match self {
            GuardEvent::RequestStart { .. } => "request-start",
            GuardEvent::Headers { .. } => "headers",
            GuardEvent::FirstToken { .. } => "first-token",
            GuardEvent::StreamEnd { .. } => "stream-end",
            GuardEvent::Timeout { .. } => "timeout",
            GuardEvent::EmptyResponse { .. } => "empty-response",
            GuardEvent::AttemptFailed { .. } => "attempt-failed",
            GuardEvent::Retry { .. } => "retry",
            GuardEvent::Failover { .. } => "failover",
            GuardEvent::Malformed { .. } => "malformed",
            GuardEvent::Cancelled { .. } => "cancelled",
            GuardEvent::UpstreamEvent { .. } => "upstream-event",
            GuardEvent::Hedge { .. } => "hedge",
            GuardEvent::Skipped { .. } => "skipped",
            GuardEvent::Continuation { .. } => "continuation",
            GuardEvent::Done { .. } => "done",
        }
    }

    /// The console line for this event and the level it belongs to, in the seed's style.
    /// Times are printed from whole milliseconds and counts as whole numbers (integer
    /// formatting only: float formatting would weigh 14 KB in the wasm module).
    pub fn log_line(&self) -> (LogLevel, String) {
        let mut line = String::new();
        let level = match self {
            GuardEvent::RequestStart {
                provider,
                model,
                attempt,
            } => {
                let _ = write!(
                    line,
                    "LLM [{provider}]: streaming request to model '{model}' (attempt {attempt})"
                );
                LogLevel::Info
            }
            GuardEvent::Headers {
                provider,
                status,
                elapsed_ms,
            } => {
                let _ = write!(
                    line,
                    "LLM [{provider}]: HTTP {status} after {} ms",
                    whole(*elapsed_ms)
                );
                LogLevel::Debug
            }
            GuardEvent::FirstToken {
                provider,
                first_token_ms,
            } => {
                let _ = write!(line, "LATENCY [LLM first chunk] [{provider}]: ");
                push_seconds(&mut line, *first_token_ms, 3);
                LogLevel::Info
            }
            GuardEvent::StreamEnd {
                provider,
                lines,
                chunks,
                ..
            } => {
                let _ = write!(
                    line,
                    "LLM [{provider}]: SSE stream ended after {} lines, {} content chunks",
                    whole(*lines),
                    whole(*chunks)
                );
                LogLevel::Info
            }
            GuardEvent::Timeout {
                provider,
                layer,
                phase,
                lines,
                chunks,
                elapsed_ms,
            } => {
                let _ = write!(line, "LLM [{provider}]: {layer} {phase} timeout after ");
                push_seconds(&mut line, *elapsed_ms, 1);
                let _ = write!(
                    line,
                    " (received {} lines, {} content chunks)",
                    whole(*lines),
                    whole(*chunks)
                );
                LogLevel::Error
            }
            GuardEvent::EmptyResponse { provider, lines } => {
                let _ = write!(
                    line,
                    "LLM [{provider}]: EMPTY RESPONSE - received {} SSE lines but 0 content chunks",
                    whole(*lines)
                );
                LogLevel::Error
            }
            GuardEvent::AttemptFailed {
                provider,
                kind,
                message,
                ..
            } => {
                let _ = write!(line, "LLM [{provider}]: {kind} failure: {message}");
                LogLevel::Error
            }
            GuardEvent::Retry {
                provider,
                attempt,
                delay_ms,
                reason,
            } => {
                let _ = write!(
                    line,
                    "LLM [{provider}]: retry {attempt} in {} ms after {reason}",
                    whole(*delay_ms)
                );
                LogLevel::Info
            }
            GuardEvent::Failover { from, to, reason } => {
                let _ = write!(line, "LLM: falling back from {from} to {to} after {reason}");
                LogLevel::Info
            }
            GuardEvent::Malformed {
                provider,
                reason,
                bytes,
            } => {
                let _ = write!(
                    line,
                    "LLM [{provider}]: skipped a malformed event ({reason}, {} bytes)",
                    whole(*bytes)
                );
                LogLevel::Debug
            }
            GuardEvent::Cancelled { reason } => {
                let _ = write!(line, "Cancelling active LLM generation ({reason})");
                LogLevel::Info
            }
            GuardEvent::UpstreamEvent { provider, event } => {
                let _ = write!(line, "LLM [{provider}]: upstream event {event}");
                LogLevel::Debug
            }
            GuardEvent::Hedge {
                provider,
                to,
                after_ms,
            } => {
                let _ = write!(
                    line,
                    "LLM [{provider}]: no progress after {} ms, asking {to} in parallel",
                    whole(*after_ms)
                );
                LogLevel::Info
            }
            GuardEvent::Skipped {
                provider,
                reason,
                retry_in_ms,
                ..
            } => {
                let _ = write!(
                    line,
                    "LLM [{provider}]: skipped, its breaker is open ({reason})"
                );
                if let Some(ms) = retry_in_ms {
                    let _ = write!(line, ", probed again in {} ms", whole(*ms));
                }
                LogLevel::Info
            }
            GuardEvent::Continuation {
                from,
                to,
                chars,
                reason,
            } => {
                let _ = write!(
                    line,
                    "LLM: {to} continues the answer from {from} after {} characters ({reason})",
                    whole(*chars)
                );
                LogLevel::Info
            }
            GuardEvent::Done {
                provider,
                partial,
                elapsed_ms,
            } => {
                let _ = write!(
                    line,
                    "LLM [{provider}]: {} answer in ",
                    if *partial { "partial" } else { "complete" }
                );
                push_seconds(&mut line, *elapsed_ms, 3);
                LogLevel::Info
            }
        };
        (level, line)
    }
}

/// A non-negative number rounded to a whole one (halves to even, as `{:.0}` rounds), for
/// integer formatting; negative and non-finite values count as 0.
pub fn whole(value: f64) -> u64 {
    if value > 0.0 {
        value.round_ties_even() as u64
    } else {
        0
    }
}

/// `ms` as seconds with `decimals` (1 to 3) decimals and an `s`: `1234.4` ms, 3 → `1.234s`.
fn push_seconds(line: &mut String, ms: f64, decimals: u32) {
    let scale = 10u64.pow(3 - decimals);
    let units = whole(ms / scale as f64);
    let per_second = 1000 / scale;
    let _ = write!(
        line,
        "{}.{:0width$}s",
        units / per_second,
        units % per_second,
        width = decimals as usize
    );
}

pub use crate::core::secrets::redact;

#[cfg(test)]
mod tests {
    use super::*;

    fn every_event() -> Vec<GuardEvent> {
        let p = || "p".to_owned();
        vec![
            GuardEvent::RequestStart {
                provider: p(),
                model: "m".into(),
                attempt: 2,
            },
            GuardEvent::Headers {
                provider: p(),
                status: 200,
                elapsed_ms: 12.5,
            },
            GuardEvent::FirstToken {
                provider: p(),
                first_token_ms: 1234.4,
            },
            GuardEvent::StreamEnd {
                provider: p(),
                lines: 7.0,
                chunks: 3.0,
                elapsed_ms: 99.0,
            },
            GuardEvent::Timeout {
                provider: p(),
                layer: "provider",
                phase: "idle",
                lines: 3.0,
                chunks: 1.0,
                elapsed_ms: 2049.9,
            },
            GuardEvent::EmptyResponse {
                provider: p(),
                lines: 4.0,
            },
            GuardEvent::AttemptFailed {
                provider: p(),
                kind: "http",
                status: Some(503),
                message: "busy".into(),
            },
            GuardEvent::AttemptFailed {
                provider: p(),
                kind: "network",
                status: None,
                message: "m".into(),
            },
            GuardEvent::Retry {
                provider: p(),
                attempt: 2,
                delay_ms: 250.5,
                reason: "http".into(),
            },
            GuardEvent::Failover {
                from: "a".into(),
                to: "b".into(),
                reason: "timeout".into(),
            },
            GuardEvent::Malformed {
                provider: p(),
                reason: "invalid JSON".into(),
                bytes: 12.0,
            },
            GuardEvent::Cancelled {
                reason: "signal".into(),
            },
            GuardEvent::UpstreamEvent {
                provider: p(),
                event: r#"{"type":"retry","attempt":2,"nested":{"a":[1,2.5]}}"#.into(),
            },
            GuardEvent::UpstreamEvent {
                provider: p(),
                event: "not json".into(),
            },
            GuardEvent::Done {
                provider: p(),
                partial: true,
                elapsed_ms: 1500.0,
            },
            GuardEvent::Hedge {
                provider: "a".into(),
                to: "b".into(),
                after_ms: 800.0,
            },
            GuardEvent::Continuation {
                from: "a".into(),
                to: "b".into(),
                chars: 42.0,
                reason: "timeout".into(),
            },
            GuardEvent::Skipped {
                provider: "a".into(),
                model: "m".into(),
                reason: "timeout".into(),
                retry_in_ms: Some(1200.0),
            },
        ]
    }

    #[test]
    fn every_event_serializes_its_type_name_as_type() {
        for event in every_event() {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.type_name(), "{event:?}");
        }
    }

    #[test]
    fn log_lines_print_whole_milliseconds_and_counts() {
        let lines: Vec<String> = every_event().iter().map(|e| e.log_line().1).collect();
        assert_eq!(lines[1], "LLM [p]: HTTP 200 after 12 ms");
        assert_eq!(lines[2], "LATENCY [LLM first chunk] [p]: 1.234s");
        assert_eq!(
            lines[3],
            "LLM [p]: SSE stream ended after 7 lines, 3 content chunks"
        );
        assert_eq!(
            lines[4],
            "LLM [p]: provider idle timeout after 2.0s (received 3 lines, 1 content chunks)"
        );
        assert_eq!(lines[8], "LLM [p]: retry 2 in 250 ms after http");
        assert_eq!(
            lines[10],
            "LLM [p]: skipped a malformed event (invalid JSON, 12 bytes)"
        );
        assert_eq!(lines[14], "LLM [p]: partial answer in 1.500s");
        assert_eq!(
            lines[15],
            "LLM [a]: no progress after 800 ms, asking b in parallel"
        );
        assert_eq!(
            lines[16],
            "LLM: b continues the answer from a after 42 characters (timeout)"
        );
        let mut seconds = String::new();
        push_seconds(&mut seconds, 59_999.6, 3);
        assert_eq!(seconds, "60.000s");
        assert_eq!(
            (whole(-1.0), whole(f64::NAN), whole(2.5), whole(3.5)),
            (0, 0, 2, 4)
        );
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
