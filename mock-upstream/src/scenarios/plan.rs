//! What a scenario's reply is made of: a [`Plan`] of timed writes and how it ends (or a fixed
//! response), the [`Builder`] that paces the writes, and the SSE framing helpers every family shares.

use bytes::Bytes;
use serde_json::Value;

use super::request::Params;
use crate::texts::KEEPALIVE_COMMENT;

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
pub(crate) struct Style {
    pub(crate) nl: &'static str,
    pub(crate) sep: &'static str,
}

pub(crate) const LF: Style = Style { nl: "\n", sep: " " };

impl Style {
    pub(crate) fn data(&self, payload: &str) -> Bytes {
        let (nl, sep) = (self.nl, self.sep);
        Bytes::from(format!("data:{sep}{payload}{nl}{nl}"))
    }

    pub(crate) fn done(&self) -> Bytes {
        self.data("[DONE]")
    }

    pub(crate) fn comment(&self) -> Bytes {
        let nl = self.nl;
        Bytes::from(format!("{KEEPALIVE_COMMENT}{nl}{nl}"))
    }
}

/// Accumulates the steps of a plan, pacing events with `first_delay_ms` / `delay_ms`.
pub(crate) struct Builder {
    pub(crate) steps: Vec<Step>,
    pub(crate) started: bool,
    pub(crate) first_delay: u64,
    pub(crate) delay: u64,
}

impl Builder {
    pub(crate) fn new(p: &Params, default_delay: u64) -> Self {
        Builder {
            steps: Vec::new(),
            started: false,
            first_delay: p.first_delay_ms,
            delay: p.delay_ms.unwrap_or(default_delay),
        }
    }

    pub(crate) fn pace(&mut self) {
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
    pub(crate) fn raw(&mut self, bytes: Bytes) {
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

/// A JSON string literal.
pub(crate) fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}
