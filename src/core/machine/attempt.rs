//! One attempt of a generation: one request to one provider, from the moment it is sent until
//! its reading is over and it waits to be judged.
//!
//! An attempt reads its response head, then either its answer (a 2xx: SSE or JSON, through the
//! core's [`AnswerReader`]) or a little of an error body (anything else: the server's message),
//! within its [`AttemptDeadlines`]. It never decides what follows it (retry, fail over, resolve):
//! that is the call's business, in the parent module. Every message an attempt's failure
//! carries is built here, in the words the caller has always seen.

use std::collections::VecDeque;

use super::types::{Action, AttemptId, BodyError, DeliveredText, Head, ProviderConfig};
use super::{Queued, Step};
use crate::core::answer::{AnswerReader, AnswerSink, BodyKind, Outcome, Stop};
use crate::core::chunk::Malformed;
use crate::core::deadline::{AttemptDeadlines, Due, Expired, Millis};
use crate::core::events::GuardEvent;
use crate::core::exchange::Exchange;
use crate::core::policy::Failure;
use crate::core::verdict::{self, HeadVerdict};

/// Where an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The request is out; waiting for the response head.
    AwaitingHead,
    /// A non-2xx head arrived: reading up to [`verdict::ERROR_BODY_BYTES`] of the body for the message.
    ErrorBody,
    /// A 2xx head arrived: reading the answer. Once `stopped` is set, the reading is over but
    /// the attempt still counts as running until the deliveries of its last read are out.
    Reading,
    /// Over: `stopped` says how. It waits to be judged by the call.
    Over,
}

/// How an attempt's reading stopped, and what its failure (if it is one) says.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Stopped {
    /// How it stopped.
    pub stop: Stop,
    /// The failure's message (empty for `[DONE]`).
    pub message: String,
    /// Whether the platform's error is the failure's cause (a failed request or read).
    pub platform_cause: bool,
}

/// Borrowed parts of the machine an attempt reports into.
pub(super) struct Ctx<'a> {
    /// The attempt's provider.
    pub provider: &'a ProviderConfig,
    /// Keys to keep out of messages.
    pub secrets: &'a [String],
    /// The bound on one event or JSON body.
    pub max_event_bytes: usize,
    /// Text and events for the caller.
    pub deliveries: &'a mut VecDeque<Queued>,
    /// Actions for the driver.
    pub actions: &'a mut VecDeque<Action>,
    /// Steps of the call that wait for the deliveries before them.
    pub steps: &'a mut VecDeque<Step>,
}

/// One attempt.
#[derive(Debug)]
pub struct Attempt {
    /// Its request and response head: id, deadlines, status, a refusal's body, whether its
    /// transport may still be open.
    pub ex: Exchange,
    /// Its provider (index into the chain).
    pub provider: usize,
    /// Where it is.
    pub phase: Phase,
    /// `X-Generation-Id`, if the head carried one.
    pub generation_id: Option<String>,
    /// The answer being read (2xx only).
    pub reader: Option<AnswerReader>,
    /// How its reading stopped, once it did.
    pub stopped: Option<Stopped>,
    /// When it went over (the time the judgement is made at).
    pub over_at: Millis,
    /// A check of the last read is queued for when its deliveries are out, at this time.
    pub check_at: Option<Millis>,
    /// Bytes of its answer text handed out to the caller (the text itself is not kept).
    pub delivered: usize,
    kind: Option<BodyKind>,
}

/// The call's sink for one attempt's answer: text and notices go to the delivery queue.
struct Sink<'a> {
    deliveries: &'a mut VecDeque<Queued>,
    attempt: AttemptId,
    provider: &'a str,
}

impl AnswerSink for Sink<'_> {
    fn text(&mut self, delta: &str) {
        self.deliveries
            .push_back(Queued::Text(self.attempt, delta.to_owned()));
    }

    fn first_progress(&mut self, first_token_ms: Millis) {
        push_event(
            self.deliveries,
            GuardEvent::FirstToken {
                provider: self.provider.to_owned(),
                first_token_ms,
            },
        );
    }

    fn malformed(&mut self, malformed: Malformed, data_bytes: usize) {
        push_event(
            self.deliveries,
            GuardEvent::Malformed {
                provider: self.provider.to_owned(),
                reason: malformed.to_string(),
                bytes: data_bytes as f64,
            },
        );
    }

    fn side_event(&mut self, event_type: &str, data: &str) {
        if event_type == "guard" {
            push_event(
                self.deliveries,
                GuardEvent::UpstreamEvent {
                    provider: self.provider.to_owned(),
                    event: data.to_owned(),
                },
            );
        }
    }
}

impl Ctx<'_> {
    fn event(&mut self, event: GuardEvent) {
        push_event(self.deliveries, event);
    }

    /// The keys, as the message builders take them (only a failure's message needs them).
    fn secrets(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }
}

/// Queues `event` for the caller (one copy of the queueing for every event).
#[inline(never)]
pub(super) fn push_event(deliveries: &mut VecDeque<Queued>, event: GuardEvent) {
    deliveries.push_back(Queued::Event(event));
}

impl Attempt {
    /// An attempt whose request was sent when `deadlines` started.
    pub fn sent(id: AttemptId, provider: usize, deadlines: AttemptDeadlines) -> Attempt {
        Attempt {
            over_at: deadlines.started(),
            ex: Exchange::sent(id, deadlines),
            provider,
            phase: Phase::AwaitingHead,
            generation_id: None,
            reader: None,
            stopped: None,
            check_at: None,
            delivered: 0,
            kind: None,
        }
    }

    /// An attempt that sends nothing and fails at once with `failure`: its request could not
    /// be built (`Protocol`), or a guard left its provider out (`Skipped`).
    pub fn refused(
        id: AttemptId,
        provider: usize,
        deadlines: AttemptDeadlines,
        failure: Failure,
        message: String,
        cx: &mut Ctx<'_>,
    ) -> Attempt {
        let at = deadlines.started();
        let mut attempt = Attempt::sent(id, provider, deadlines);
        attempt.ex.closed();
        attempt.over(at, Stop::Failed(failure), message, false, cx);
        attempt
    }

    /// Whether it still waits on the platform or the clock (not over, its reading not stopped).
    pub fn is_waiting(&self) -> bool {
        match self.phase {
            Phase::AwaitingHead | Phase::ErrorBody => true,
            Phase::Reading => self.stopped.is_none(),
            Phase::Over => false,
        }
    }

    /// Releases its transport, if it may still be open.
    pub fn release(&mut self, actions: &mut VecDeque<Action>) {
        if self.ex.take_open() {
            actions.push_back(Action::Cancel {
                attempt: self.ex.id,
            });
        }
    }

    /// Its answer is whole: its transport may read the body's end (if it may still be open).
    fn let_end(&mut self, actions: &mut VecDeque<Action>) {
        if self.ex.take_open() {
            actions.push_back(Action::Finish {
                attempt: self.ex.id,
            });
        }
    }

    /// Reading is over: release what is open and wait to be judged.
    fn over(
        &mut self,
        at: Millis,
        stop: Stop,
        message: String,
        platform_cause: bool,
        cx: &mut Ctx<'_>,
    ) {
        let done = stop == Stop::Done;
        self.stopped = Some(Stopped {
            stop,
            message,
            platform_cause,
        });
        self.phase = Phase::Over;
        self.over_at = at;
        match done {
            true => self.let_end(cx.actions),
            false => self.release(cx.actions),
        }
        cx.steps.push_back(Step::Judge(self.ex.id));
    }

    /// The request failed before any response (`fetch` threw or rejected).
    pub fn request_error(&mut self, now: Millis, message: &str, cx: &mut Ctx<'_>) {
        if self.phase != Phase::AwaitingHead {
            return;
        }
        let message = self
            .ex
            .request_failed(&cx.provider.name, message, &cx.secrets());
        self.over(now, Stop::Failed(Failure::Network), message, true, cx);
    }

    /// The response head arrived.
    pub fn head(&mut self, now: Millis, head: Head, cx: &mut Ctx<'_>) {
        if self.phase != Phase::AwaitingHead {
            return;
        }
        let (event, judged) = self.ex.head(now, &head, &cx.provider.name);
        cx.event(event);
        self.generation_id = head.generation_id;
        match judged {
            HeadVerdict::Refused { .. } => {
                self.phase = Phase::ErrorBody;
                if !head.has_body {
                    self.finish_error_body(now, cx);
                }
            }
            HeadVerdict::Unreadable(failure, message) => {
                self.over(now, Stop::Failed(failure), message, false, cx);
            }
            HeadVerdict::Answer(_) if !head.has_body => {
                let message = verdict::no_body(&cx.provider.name, head.status);
                self.over(now, Stop::Failed(Failure::Network), message, false, cx);
            }
            HeadVerdict::Answer(kind) => {
                self.kind = Some(kind);
                self.reader = Some(AnswerReader::new(kind, cx.max_event_bytes));
                self.phase = Phase::Reading;
            }
        }
    }

    /// Body bytes arrived.
    pub fn bytes(&mut self, now: Millis, bytes: &[u8], cx: &mut Ctx<'_>) {
        match self.phase {
            Phase::ErrorBody => {
                let enough = self.ex.hold_refusal(bytes);
                if enough {
                    self.finish_error_body(now, cx);
                }
            }
            Phase::Reading if self.stopped.is_none() => {
                let Some(reader) = self.reader.as_mut() else {
                    return;
                };
                let mut sink = Sink {
                    deliveries: cx.deliveries,
                    attempt: self.ex.id,
                    provider: &cx.provider.name,
                };
                let stopped = reader.push(bytes, now, &mut self.ex.deadlines, &mut sink);
                // Its text went out in the deliveries: only its length is kept.
                reader.answer.text.clear();
                if let Some(stop) = stopped {
                    let name = &cx.provider.name;
                    let message = match &stop {
                        Stop::Failed(Failure::Protocol) => format!(
                            "{name} sent an event or body larger than maxEventBytes ({} bytes)",
                            cx.max_event_bytes
                        ),
                        Stop::Failed(Failure::Upstream) => {
                            let (code, text) = reader.answer.error.clone().unwrap_or_default();
                            verdict::upstream_error(name, code.as_deref(), &text, &cx.secrets())
                        }
                        _ => String::new(),
                    };
                    self.stopped = Some(Stopped {
                        stop,
                        message,
                        platform_cause: false,
                    });
                }
                self.check_after_read(now, cx);
            }
            _ => {}
        }
    }

    /// The body ended.
    pub fn end(&mut self, now: Millis, cx: &mut Ctx<'_>) {
        match self.phase {
            Phase::ErrorBody => {
                self.ex.closed();
                self.finish_error_body(now, cx);
            }
            Phase::Reading => {
                self.ex.closed();
                if self.stopped.is_some() {
                    return; // already over ([DONE] came first): nothing more is read
                }
                let Some(reader) = self.reader.as_mut() else {
                    return;
                };
                let mut sink = Sink {
                    deliveries: cx.deliveries,
                    attempt: self.ex.id,
                    provider: &cx.provider.name,
                };
                let stop = reader.end(now, &mut self.ex.deadlines, &mut sink);
                reader.answer.text.clear();
                let message = match (&stop, self.kind) {
                    (Stop::Failed(Failure::Protocol), Some(BodyKind::Json)) => format!(
                        "{} sent a JSON body that is not a chat completion",
                        cx.provider.name
                    ),
                    _ => format!("the stream from {} ended before [DONE]", cx.provider.name),
                };
                self.stopped = Some(Stopped {
                    stop,
                    message,
                    platform_cause: false,
                });
                self.check_after_read(now, cx);
            }
            Phase::AwaitingHead | Phase::Over => {}
        }
    }

    /// Reading the body failed.
    pub fn body_error(&mut self, now: Millis, error: BodyError, cx: &mut Ctx<'_>) {
        if matches!(error, BodyError::Read(_)) && self.phase != Phase::AwaitingHead {
            self.ex.closed();
        }
        match (self.phase, error) {
            // The error body is best effort: what was read is what it says. A read that yields
            // no bytes ends it too, so a misbehaving reader cannot keep it reading.
            (Phase::ErrorBody, _) => self.finish_error_body(now, cx),
            (Phase::Reading, error) if self.stopped.is_none() => {
                let platform_cause = matches!(error, BodyError::Read(_));
                let (failure, message) =
                    verdict::read_failed(&cx.provider.name, error, &cx.secrets());
                self.stopped = Some(Stopped {
                    stop: Stop::Failed(failure),
                    message,
                    platform_cause,
                });
                self.check_after_read(now, cx);
            }
            _ => {}
        }
    }

    /// A clock reading: act on a deadline that has passed (nothing before it is due).
    pub fn timeout(&mut self, now: Millis, cx: &mut Ctx<'_>) {
        if !self.ex.deadlines.passed(now) {
            return;
        }
        match self.phase {
            Phase::AwaitingHead => self.time_out(self.ex.deadlines.next(), now, cx),
            // The server's message is best effort: what arrived in time is what it says.
            Phase::ErrorBody => self.finish_error_body(now, cx),
            // A read's own check is queued: it looks at the deadlines when its turn comes.
            Phase::Reading if self.stopped.is_none() && self.check_at.is_none() => {
                if let Some(expired) = self.ex.deadlines.check(now) {
                    self.time_out(expired, now, cx);
                }
            }
            Phase::Reading | Phase::Over => {}
        }
    }

    /// Queues the look at this read (stopped? a deadline passed?) behind its deliveries.
    fn check_after_read(&mut self, now: Millis, cx: &mut Ctx<'_>) {
        if self.check_at.replace(now).is_none() {
            cx.steps.push_back(Step::AfterRead(self.ex.id));
        }
    }

    /// The deliveries of the last read are out: end the reading if it stopped or a deadline
    /// passed meanwhile, else keep reading.
    pub fn after_read(&mut self, cx: &mut Ctx<'_>) {
        let Some(at) = self.check_at.take() else {
            return;
        };
        if self.phase != Phase::Reading {
            return;
        }
        if let Some(stopped) = self.stopped.take() {
            let finished = self
                .reader
                .as_ref()
                .is_some_and(|r| r.answer.finish_reason.is_some());
            if stopped.stop == Stop::Done || (stopped.stop == Stop::EndOfBody && finished) {
                let (lines, chunks) = self.counts();
                cx.event(GuardEvent::StreamEnd {
                    provider: cx.provider.name.clone(),
                    lines: lines as f64,
                    chunks: chunks as f64,
                    elapsed_ms: at - self.ex.started(),
                });
            }
            self.over(
                at,
                stopped.stop,
                stopped.message,
                stopped.platform_cause,
                cx,
            );
        } else if let Some(expired) = self.ex.deadlines.check(at) {
            self.time_out(expired, at, cx);
        }
    }

    /// A deadline passed: a `timeout` event, and the attempt is over.
    fn time_out(&mut self, expired: Expired, now: Millis, cx: &mut Ctx<'_>) {
        let (lines, chunks) = self.counts();
        let tally = format!("{lines} lines, {chunks} content chunks");
        let (event, failure, message) =
            self.ex
                .timed_out(now, expired, &cx.provider.name, (lines, chunks), &tally);
        cx.event(event);
        self.over(now, Stop::Failed(failure), message, false, cx);
    }

    /// The error body is read (or as much as could be): the attempt fails with its status.
    fn finish_error_body(&mut self, now: Millis, cx: &mut Ctx<'_>) {
        let (failure, message) = self.ex.refused(&cx.provider.name, &cx.secrets());
        self.ex.refusal = Vec::new();
        self.over(now, Stop::Failed(failure), message, false, cx);
    }

    /// SSE lines read and chunks that carried text.
    pub fn counts(&self) -> (u64, u64) {
        self.reader
            .as_ref()
            .map_or((0, 0), |r| (r.lines(), r.answer.content_chunks))
    }

    /// Bytes of answer text received.
    pub fn text_bytes(&self) -> usize {
        self.reader.as_ref().map_or(0, |r| r.answer.text_bytes())
    }

    /// What was handed out of its text, if it received any: the rejection's `partialText`.
    pub fn delivered_text(&self) -> Option<DeliveredText> {
        (self.text_bytes() > 0).then_some(DeliveredText {
            attempt: self.ex.id,
            bytes: self.delivered,
        })
    }

    /// What the attempt amounted to. An attempt cut off by a cancel while it ran is
    /// `aborted`, except while it read an error body: that one failed with its status anyway.
    pub fn outcome(&self) -> Outcome {
        let stop = match (&self.phase, &self.stopped) {
            (Phase::Over, Some(stopped)) => stopped.stop.clone(),
            (Phase::ErrorBody, _) => Stop::Failed(self.ex.refusal_failure()),
            _ => Stop::Failed(Failure::Aborted),
        };
        match (&self.reader, stop) {
            (Some(reader), stop) => reader.answer.outcome(&stop),
            (None, Stop::Failed(failure)) => Outcome::Failed(failure),
            (None, _) => Outcome::Failed(Failure::Network),
        }
    }

    /// The failure's message and whether the platform's error is its cause.
    pub fn message(&self) -> (&str, bool) {
        self.stopped
            .as_ref()
            .map_or(("", false), |s| (s.message.as_str(), s.platform_cause))
    }
}
