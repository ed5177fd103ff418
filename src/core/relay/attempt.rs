//! One attempt of a relayed request: one request to one target, from the moment it is sent
//! until its response is committed and read to its end, or until it fails before the commit.
//!
//! It never decides what follows a failure (retry, fail over, answer with a failure): that is
//! the relay's business, in the parent module. Every message it makes is redacted.

use std::collections::VecDeque;

use super::proxy::{worker_tail, ProxyMode};
use super::request::{cut_tail, first_chunk_id, RequestKind};
use super::shape::Shaper;
use super::{watcher, CutError, OnCut, RelayAction, RelayDelivery, PROXY_MODE};
use crate::core::answer::BodyKind;
use crate::core::deadline::{AttemptDeadlines, Due, Expired, Layer, Millis};
use crate::core::events::GuardEvent;
use crate::core::exchange::Exchange;
use crate::core::machine::{AttemptId, BodyError, Head};
use crate::core::policy::Failure;
use crate::core::progress::{Ending, ProgressWatcher, Report};
use crate::core::verdict::{self, HeadVerdict};

/// Where an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// The request is out; no head yet.
    AwaitingHead,
    /// A 2xx SSE head arrived: bytes are held until the first progress.
    Holding,
    /// A non-2xx head arrived: its body is held for its message (and to pass it through).
    ErrorBody,
    /// Its response is the SDK's: every read is handed out as it comes.
    Committed,
    /// Failed before the commit; waits to be judged.
    Over,
    /// Committed and ended (whole, or cut as `onCut` says).
    Finished,
}

/// Borrowed parts of the relay an attempt reports into.
pub(super) struct Ctx<'a> {
    pub kind: RequestKind,
    pub name: &'a str,
    pub model: &'a str,
    pub url: &'a str,
    pub secrets: &'a [String],
    pub max_event_bytes: usize,
    pub on_cut: OnCut,
    pub service_deadline: Millis,
    pub deliveries: &'a mut VecDeque<RelayDelivery>,
    pub actions: &'a mut VecDeque<RelayAction>,
    /// The edge worker's relay: how its stream's bytes go out, and its settings.
    pub proxy: Option<(&'a mut Shaper, &'a ProxyMode)>,
}

impl Ctx<'_> {
    fn event(&mut self, event: GuardEvent) {
        self.deliveries.push_back(RelayDelivery::Event(event));
    }

    /// Committed upstream bytes on their way out (an event stream's through the worker's
    /// shaper, when there is one).
    fn pass(&mut self, now: Millis, bytes: &[u8], event_stream: bool) {
        match self
            .proxy
            .as_mut()
            .filter(|_| PROXY_MODE)
            .filter(|_| event_stream)
        {
            Some((shaper, _)) => shaper.feed(now, bytes, self.deliveries),
            None => self
                .deliveries
                .push_back(RelayDelivery::Bytes(bytes.to_vec())),
        }
    }

    /// The committed stream ends: what the shaper still holds goes out. Returns whether it
    /// ended inside a line (`None`: not the worker's relay).
    fn flush(&mut self, now: Millis) -> Option<bool> {
        let (shaper, _) = self.proxy.as_mut().filter(|_| PROXY_MODE)?;
        Some(shaper.flush(now, self.deliveries))
    }

    fn secrets(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }
}

/// One attempt.
#[derive(Debug)]
pub struct Attempt {
    /// Its request and response head: id, deadlines, status, a refusal's body, whether its
    /// transport may still be open.
    pub ex: Exchange,
    /// Its target (index into the chain): the call's provider.
    pub provider: usize,
    pub phase: Phase,
    /// The phase it failed in (a refusal is passed through only from `ErrorBody`).
    pub phase_before_over: Phase,
    /// When it went over or finished.
    pub over_at: Millis,
    /// Why it failed before the commit, and the message.
    pub failure: Option<(Failure, String)>,
    /// Why its committed body was cut.
    pub cut: Option<Failure>,
    /// The body ended (or failed): nothing more will be read.
    body_ended: bool,
    /// After the commit, only the service deadline applies (a JSON body, a passed-through
    /// refusal, a stream whose watch is over).
    service_only: bool,
    watcher: Option<ProgressWatcher>,
    /// A stream's bytes held until its first progress.
    held: Vec<u8>,
    /// The first chat chunk's id, for the last chunk of a cut.
    chunk_id: String,
    /// The last byte handed out was not a line break: a cut falls inside a line.
    inside_line: bool,
}

impl Attempt {
    /// An attempt whose request was sent when `deadlines` started.
    pub fn sent(id: AttemptId, provider: usize, deadlines: AttemptDeadlines) -> Attempt {
        Attempt {
            over_at: deadlines.started(),
            ex: Exchange::sent(id, deadlines),
            provider,
            phase: Phase::AwaitingHead,
            phase_before_over: Phase::AwaitingHead,
            failure: None,
            cut: None,
            body_ended: false,
            service_only: false,
            watcher: None,
            held: Vec::new(),
            chunk_id: String::new(),
            inside_line: false,
        }
    }

    /// Releases its transport, if it may still be open.
    pub fn release(&mut self, actions: &mut VecDeque<RelayAction>) {
        if self.ex.take_open() {
            actions.push_back(RelayAction::Cancel {
                attempt: self.ex.id,
            });
        }
    }

    /// Whether it waits on the platform or the clock.
    pub fn is_waiting(&self) -> bool {
        !matches!(self.phase, Phase::Over | Phase::Finished)
    }

    /// Its next deadline.
    pub fn due(&self, service_deadline: Millis) -> Millis {
        match self.service_only {
            true => service_deadline,
            false => self.ex.deadlines.due(),
        }
    }

    fn expired(&self, now: Millis, service_deadline: Millis) -> Option<Expired> {
        match self.service_only {
            true => (now >= service_deadline).then(|| Expired {
                layer: Layer::Service,
                phase: self.ex.deadlines.phase(),
                due: service_deadline,
            }),
            false => self.ex.deadlines.check(now),
        }
    }

    #[inline(never)]
    pub(super) fn fail(&mut self, now: Millis, failure: Failure, message: String) {
        self.failure = Some((failure, message));
        self.phase_before_over = self.phase;
        self.phase = Phase::Over;
        self.over_at = now;
    }

    /// The request failed before any response.
    pub fn request_error(&mut self, now: Millis, message: &str, cx: &mut Ctx<'_>) {
        if self.phase != Phase::AwaitingHead {
            return;
        }
        let message = self.ex.request_failed(cx.name, message, &cx.secrets());
        self.fail(now, Failure::Network, message);
    }

    /// The response head arrived.
    pub fn head(&mut self, now: Millis, head: Head, cx: &mut Ctx<'_>) {
        if self.phase != Phase::AwaitingHead {
            return;
        }
        let (event, judged) = self.ex.head(now, &head, cx.name);
        cx.event(event);
        self.body_ended = !head.has_body;
        if cx.kind == RequestKind::Other {
            return self.commit(now, true, cx);
        }
        match judged {
            HeadVerdict::Refused { .. } => {
                self.phase = Phase::ErrorBody;
                if self.body_ended {
                    self.finish_error_body(now, cx);
                }
            }
            HeadVerdict::Unreadable(failure, message) => self.fail(now, failure, message),
            // A JSON request, or a stream answered with JSON: the SDK reads it as it is.
            HeadVerdict::Answer(BodyKind::Json) => self.commit(now, true, cx),
            HeadVerdict::Answer(_) if cx.kind == RequestKind::Json => self.commit(now, true, cx),
            HeadVerdict::Answer(BodyKind::EventStream) if self.body_ended => {
                let message = verdict::no_body(cx.name, head.status);
                self.fail(now, Failure::Network, message);
            }
            HeadVerdict::Answer(BodyKind::EventStream) => {
                self.watcher = Some(watcher(cx.url, cx.max_event_bytes));
                self.phase = Phase::Holding;
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
            Phase::Holding => {
                self.held.extend_from_slice(bytes);
                let Some(report) = self.watcher.as_mut().map(|w| w.push(bytes)) else {
                    return;
                };
                if report.progressed() {
                    self.ex.deadlines.on_progress(now);
                    let first_token_ms = self.ex.deadlines.first_token_ms().unwrap_or_default();
                    cx.event(GuardEvent::FirstToken {
                        provider: cx.name.to_owned(),
                        first_token_ms,
                    });
                    self.chunk_id = first_chunk_id(&self.held);
                    self.commit(now, false, cx);
                    self.after_committed_read(now, report, cx);
                } else if report.is_over() {
                    self.fail_unanswered(now, report, cx);
                }
            }
            Phase::Committed => {
                if bytes.is_empty() {
                    return;
                }
                self.inside_line = bytes.last() != Some(&b'\n');
                cx.pass(now, bytes, self.watcher.is_some());
                if self.service_only {
                    return;
                }
                if let Some(report) = self.watcher.as_mut().map(|w| w.push(bytes)) {
                    if report.progressed() {
                        self.ex.deadlines.on_progress(now);
                    }
                    self.after_committed_read(now, report, cx);
                }
            }
            _ => {}
        }
    }

    /// After a committed read: the stream's end or the upstream's own error ends it (the SDK
    /// has every byte of it); an oversized event ends the watch, not the stream.
    #[inline(never)]
    fn after_committed_read(&mut self, now: Millis, report: Report, cx: &mut Ctx<'_>) {
        if report.upstream_error {
            // The upstream's own error event ended an answer after text: the SDK (or the
            // worker's client) has it as sent, and the answer counts as partial, as it does
            // in a generation (its `done` says so, and a guard learns it as a failure).
            self.cut = Some(Failure::Upstream);
        }
        if report.end.is_some() && !report.upstream_error && self.ex.take_open() {
            // Whole: the transport may read the body's end rather than cut the connection.
            cx.actions.push_back(RelayAction::Finish {
                attempt: self.ex.id,
            });
            self.finish(now, cx);
        } else if report.end.is_some() || report.upstream_error {
            self.finish(now, cx);
        } else if report.too_large {
            self.service_only = true;
        }
    }

    /// A stream over before any progress: why, in words.
    #[inline(never)]
    fn fail_unanswered(&mut self, now: Millis, report: Report, cx: &mut Ctx<'_>) {
        let name = cx.name;
        let (failure, message) = if report.upstream_error {
            let (code, text) = self
                .watcher
                .as_ref()
                .and_then(|w| w.error())
                .map(|e| (e.code.clone(), e.message.clone()))
                .unwrap_or_default();
            let message = verdict::upstream_error(name, code.as_deref(), &text, &cx.secrets());
            (Failure::Upstream, message)
        } else if report.too_large {
            let message = format!(
                "{name} sent an event larger than maxEventBytes ({} bytes)",
                cx.max_event_bytes
            );
            (Failure::Protocol, message)
        } else {
            let message = [name, " ended its stream without any answer"].concat();
            (Failure::Empty, message)
        };
        self.fail(now, failure, message);
    }

    /// The body ended.
    pub fn end(&mut self, now: Millis, cx: &mut Ctx<'_>) {
        self.ex.closed();
        self.body_ended = true;
        match self.phase {
            Phase::ErrorBody => self.finish_error_body(now, cx),
            Phase::Holding => {
                let Some(watcher) = self.watcher.as_mut() else {
                    return;
                };
                let ending = watcher.end_of_body();
                let report = watcher.report();
                match ending {
                    Ending::Cut => {
                        let message =
                            ["the stream from ", cx.name, " ended before any answer"].concat();
                        self.fail(now, Failure::Network, message);
                    }
                    _ => self.fail_unanswered(now, report, cx),
                }
            }
            Phase::Committed => {
                let cut = match self.watcher.as_mut().filter(|_| !self.service_only) {
                    Some(watcher) => watcher.end_of_body() == Ending::Cut && !watcher.finished(),
                    None => false,
                };
                if cut {
                    let message =
                        ["the stream from ", cx.name, " ended before its end marker"].concat();
                    self.cut(now, Failure::Network, message, cx);
                } else {
                    self.finish(now, cx);
                }
            }
            _ => {}
        }
    }

    /// Reading the body failed.
    pub fn body_error(&mut self, now: Millis, error: BodyError, cx: &mut Ctx<'_>) {
        if self.phase == Phase::AwaitingHead {
            return;
        }
        if matches!(error, BodyError::Read(_)) {
            self.ex.closed();
        }
        self.body_ended = true;
        let (failure, message) = verdict::read_failed(cx.name, error, &cx.secrets());
        match self.phase {
            Phase::ErrorBody => self.finish_error_body(now, cx),
            Phase::Holding => self.fail(now, failure, message),
            Phase::Committed => self.cut(now, failure, message, cx),
            _ => {}
        }
    }

    /// A clock reading: act on a deadline that has passed.
    pub fn timeout(&mut self, now: Millis, cx: &mut Ctx<'_>) {
        let Some(expired) = self.expired(now, cx.service_deadline) else {
            return;
        };
        match self.phase {
            Phase::ErrorBody => self.finish_error_body(now, cx),
            Phase::AwaitingHead | Phase::Holding | Phase::Committed => {
                let progress = self.watcher.as_ref().map_or(0, |w| w.progress_events());
                let tally = format!("{progress} progress events");
                let (event, failure, message) =
                    self.ex
                        .timed_out(now, expired, cx.name, (0, progress), &tally);
                cx.event(event);
                match self.phase {
                    Phase::Committed => self.cut(now, failure, message, cx),
                    _ => self.fail(now, failure, message),
                }
            }
            Phase::Over | Phase::Finished => {}
        }
    }

    /// The refusal's body is held (or as much as came): the attempt fails with its status.
    #[inline(never)]
    fn finish_error_body(&mut self, now: Millis, cx: &mut Ctx<'_>) {
        let (failure, message) = self.ex.refused(cx.name, &cx.secrets());
        self.fail(now, failure, message);
    }

    /// This attempt's response becomes the SDK's: its head, then what was held.
    #[inline(never)]
    fn commit(&mut self, now: Millis, service_only: bool, cx: &mut Ctx<'_>) {
        self.phase = Phase::Committed;
        self.service_only = service_only;
        cx.deliveries.push_back(RelayDelivery::Commit {
            attempt: self.ex.id,
            status: self.ex.status.unwrap_or(0),
        });
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            self.inside_line = held.last() != Some(&b'\n');
            cx.pass(now, &held, self.watcher.is_some());
        }
        if self.body_ended {
            self.finish(now, cx);
        }
    }

    /// The last attempt was refused (a 4xx): its own response goes to the SDK, as it came.
    pub fn commit_refusal(&mut self, cx: &mut Ctx<'_>) {
        self.failure = None;
        self.held = std::mem::take(&mut self.ex.refusal);
        let now = self.over_at;
        self.commit(now, true, cx);
    }

    /// The committed body is over: the SDK's body closes, the upstream is released.
    #[inline(never)]
    fn finish(&mut self, now: Millis, cx: &mut Ctx<'_>) {
        self.phase = Phase::Finished;
        self.over_at = now;
        self.release(cx.actions);
        cx.flush(now);
        cx.deliveries.push_back(RelayDelivery::Close);
    }

    /// The committed body was cut: it ends as `onCut` says.
    #[inline(never)]
    fn cut(&mut self, now: Millis, failure: Failure, message: String, cx: &mut Ctx<'_>) {
        self.phase = Phase::Finished;
        self.over_at = now;
        self.release(cx.actions);
        let kind = failure.kind();
        match cx.on_cut {
            OnCut::Error => {
                let (layer, phase) = match &failure {
                    Failure::Timeout(e) => (Some(e.layer.as_str()), Some(e.phase.as_str())),
                    _ => (None, None),
                };
                cx.deliveries.push_back(RelayDelivery::Fail(CutError {
                    kind: failure.error_kind(),
                    layer,
                    phase,
                    message,
                    provider: cx.name.to_owned(),
                }));
            }
            OnCut::Finish if PROXY_MODE && cx.proxy.is_some() => {
                let inside_line = cx.flush(now).unwrap_or(self.inside_line);
                let format = self.watcher.as_ref().and_then(|w| w.format());
                let (code, _) = crate::core::proxy::failure_status(kind, None);
                let Some((_, mode)) = cx.proxy.as_ref().filter(|_| PROXY_MODE) else {
                    return;
                };
                let id = match self.chunk_id.is_empty() {
                    true => mode.stream_id.as_str(),
                    false => self.chunk_id.as_str(),
                };
                let tail = worker_tail(
                    format,
                    id,
                    mode.created,
                    cx.model,
                    kind,
                    code,
                    &message,
                    self.chunk_id.is_empty(),
                    inside_line,
                );
                cx.deliveries.push_back(RelayDelivery::Bytes(tail));
                cx.deliveries.push_back(RelayDelivery::Close);
            }
            OnCut::Finish => {
                let format = self.watcher.as_ref().and_then(|w| w.format());
                let tail = cut_tail(
                    format,
                    &self.chunk_id,
                    cx.model,
                    kind,
                    &message,
                    self.inside_line,
                );
                cx.deliveries.push_back(RelayDelivery::Bytes(tail));
                cx.deliveries.push_back(RelayDelivery::Close);
            }
        }
        self.cut = Some(failure);
    }
}
