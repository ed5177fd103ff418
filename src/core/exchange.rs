//! What every attempt is, in either mode of the call machine: one request to one provider, its
//! deadlines, its response's head and, when the head is a refusal, the refusal's body.
//!
//! Both modes' attempts hold one: the answering mode's (`generate()`, `Guard`), whose answer is
//! decoded, and the relaying mode's (`guardFetch()`, the edge worker), whose answer is passed
//! through. What they share is written once here, on top of [`verdict`]'s words: when
//! the transport may still be open (and so must be released), the `headers` event and the
//! head's verdict, a refusal's body held and judged, a failed request, and a deadline's
//! `timeout` event with its message. What follows a 2xx head (reading an answer, holding and
//! committing a stream) is each mode's own.

use crate::core::deadline::{AttemptDeadlines, Expired, Millis};
use crate::core::events::GuardEvent;
use crate::core::machine::{AttemptId, Head};
use crate::core::policy::Failure;
use crate::core::verdict::{self, HeadVerdict};

/// One request and its response, up to its body.
///
/// Its four builders of events and messages are kept out of line: inlined into both modes'
/// attempts they made the gzipped web module 0.3 KB larger (135,187 against 134,858 bytes).
#[derive(Debug)]
pub(crate) struct Exchange {
    /// The attempt's id.
    pub id: AttemptId,
    /// Its deadlines, started when the request was sent.
    pub deadlines: AttemptDeadlines,
    /// The HTTP status, once the head arrived.
    pub status: Option<u16>,
    /// A refusal's `Retry-After`, as a delay.
    pub retry_after_ms: Option<Millis>,
    /// A refusal's body, as much as is held (up to [`verdict::ERROR_BODY_BYTES`] and a read).
    pub refusal: Vec<u8>,
    /// Its transport may still be open: no end, no read error, no failed request reported, and
    /// no release asked for yet.
    open: bool,
}

impl Exchange {
    /// A request sent when `deadlines` started.
    pub fn sent(id: AttemptId, deadlines: AttemptDeadlines) -> Exchange {
        Exchange {
            id,
            deadlines,
            status: None,
            retry_after_ms: None,
            refusal: Vec::new(),
            open: true,
        }
    }

    /// When its request was sent.
    pub fn started(&self) -> Millis {
        self.deadlines.started()
    }

    /// Whether its transport may still be open, once: `true` tells the caller to ask its driver
    /// to release it (or to let it end), and every later call says `false`.
    pub fn take_open(&mut self) -> bool {
        std::mem::take(&mut self.open)
    }

    /// The platform is done with its transport (the body ended or failed, no body came, or
    /// nothing was sent): there is nothing to release.
    pub fn closed(&mut self) {
        self.open = false;
    }

    /// Its request failed before any response: the failure's message.
    #[inline(never)]
    pub fn request_failed(&mut self, name: &str, message: &str, secrets: &[&str]) -> String {
        self.open = false;
        verdict::request_failed(name, message, secrets)
    }

    /// Its response head arrived at `now`: the deadlines learn it, and the `headers` event and
    /// the head's verdict come back (a refusal's `Retry-After` is kept). A head without a body
    /// leaves nothing open.
    #[inline(never)]
    pub fn head(&mut self, now: Millis, head: &Head, name: &str) -> (GuardEvent, HeadVerdict) {
        self.deadlines.on_headers(now);
        self.status = Some(head.status);
        if !head.has_body {
            self.open = false;
        }
        let event = GuardEvent::Headers {
            provider: name.to_owned(),
            status: head.status,
            elapsed_ms: now - self.started(),
        };
        let judged = verdict::judge_head(name, head);
        if let HeadVerdict::Refused { retry_after_ms } = judged {
            self.retry_after_ms = retry_after_ms;
        }
        (event, judged)
    }

    /// Bytes of a refusal's body: whether enough are held to judge it.
    pub fn hold_refusal(&mut self, bytes: &[u8]) -> bool {
        verdict::hold_error_body(&mut self.refusal, bytes)
    }

    /// The refusal, judged by its status and what is held of its body.
    #[inline(never)]
    pub fn refused(&self, name: &str, secrets: &[&str]) -> (Failure, String) {
        let status = self.status.unwrap_or(0);
        verdict::refused(name, status, &self.refusal, self.retry_after_ms, secrets)
    }

    /// A refusal the attempt was cut off in (a cancel while its body was read): it still failed
    /// with its status.
    pub fn refusal_failure(&self) -> Failure {
        Failure::Http {
            status: self.status.unwrap_or(0),
            retry_after_ms: self.retry_after_ms,
        }
    }

    /// `expired` passed at `now`: the `timeout` event, the failure and its message. `lines` and
    /// `chunks` are what the event counts, `tally` the same in the message's words.
    #[inline(never)]
    pub fn timed_out(
        &self,
        now: Millis,
        expired: Expired,
        name: &str,
        (lines, chunks): (u64, u64),
        tally: &str,
    ) -> (GuardEvent, Failure, String) {
        let elapsed = now - self.started();
        let event = GuardEvent::Timeout {
            provider: name.to_owned(),
            layer: expired.layer.as_str(),
            phase: expired.phase.as_str(),
            lines: lines as f64,
            chunks: chunks as f64,
            elapsed_ms: elapsed,
        };
        let message = verdict::timed_out(name, &expired, elapsed, tally);
        (event, Failure::Timeout(expired), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::deadline::{Layer, Phase, Timeouts};

    fn exchange() -> Exchange {
        let timeouts = Timeouts::default();
        Exchange::sent(
            AttemptId(1),
            AttemptDeadlines::start(100.0, timeouts, 100.0 + 90_000.0),
        )
    }

    fn head(status: u16, content_type: &str, has_body: bool) -> Head {
        Head {
            status,
            content_type: Some(content_type.to_owned()),
            retry_after: Some("3".to_owned()),
            generation_id: None,
            has_body,
            unix_ms: 0.0,
        }
    }

    #[test]
    fn the_transport_is_released_once_and_never_after_the_platform_closed_it() {
        let mut ex = exchange();
        assert!(ex.take_open());
        assert!(!ex.take_open());
        let mut ex = exchange();
        ex.closed();
        assert!(!ex.take_open());
        let mut ex = exchange();
        let message = ex.request_failed("p", "connection refused sk-secret", &["sk-secret"]);
        assert!(!ex.take_open());
        assert!(!message.contains("sk-secret"), "{message}");
        let mut ex = exchange();
        ex.head(150.0, &head(200, "text/event-stream", false), "p");
        assert!(
            !ex.take_open(),
            "a head without a body leaves nothing to release"
        );
    }

    #[test]
    fn a_refusal_keeps_its_status_retry_after_and_body_for_its_message() {
        let mut ex = exchange();
        let (event, judged) = ex.head(130.0, &head(429, "application/json", true), "p");
        match event {
            GuardEvent::Headers {
                status, elapsed_ms, ..
            } => assert_eq!((status, elapsed_ms), (429, 30.0)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            judged,
            HeadVerdict::Refused {
                retry_after_ms: Some(3000.0)
            }
        );
        assert!(!ex.hold_refusal(br#"{"error":{"message":"slow down"}}"#));
        let (failure, message) = ex.refused("p", &[]);
        assert_eq!(failure, ex.refusal_failure());
        assert_eq!(
            failure,
            Failure::Http {
                status: 429,
                retry_after_ms: Some(3000.0)
            }
        );
        assert!(
            message.contains("HTTP 429 from p") && message.contains("slow down"),
            "{message}"
        );
        assert!(
            ex.hold_refusal(&vec![b'x'; verdict::ERROR_BODY_BYTES]),
            "enough is held"
        );
    }

    #[test]
    fn a_timeout_says_the_same_in_its_event_and_its_message() {
        let ex = exchange();
        let expired = Expired {
            layer: Layer::Provider,
            phase: Phase::FirstToken,
            due: 250.0,
        };
        let (event, failure, message) =
            ex.timed_out(252.0, expired, "p", (3, 1), "3 lines, 1 content chunks");
        match event {
            GuardEvent::Timeout {
                layer,
                phase,
                lines,
                chunks,
                elapsed_ms,
                ..
            } => assert_eq!(
                (layer, phase, lines, chunks, elapsed_ms),
                (
                    expired.layer.as_str(),
                    expired.phase.as_str(),
                    3.0,
                    1.0,
                    152.0
                )
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(failure, Failure::Timeout(expired));
        assert!(
            message.contains("after 152 ms (3 lines, 1 content chunks)"),
            "{message}"
        );
    }
}
