//! Continuation: an answer cut after text (a deadline, a mid-stream error, a reset, a close
//! without `[DONE]`) is continued by the next provider instead of resolving partial, when
//! [`GuardSettings::continuation`](super::GuardSettings::continuation) is on.
//!
//! The next provider is sent the original messages plus the text so far
//! ([`continuation_body`], prefill or an instruction by [`ContinuationMode::for_provider`]). Its
//! text is passed through an [`OverlapFilter`]: what it repeats of the end of the text so far is
//! dropped, and what could still be a repeat is held back until it can be decided, so no
//! repeated piece is ever handed out. Its pieces are handed out under the id of the attempt
//! whose answer they continue, so a driver joining text per attempt holds the whole answer
//! under the one id the result points at. A continuation that is itself cut after text is
//! continued again by the provider after it; when no provider is left, the time is up, or the
//! continuation fails, the cut answer (with whatever was added to it) resolves partial, as it
//! would have without continuation: nothing is lost. Never after a tool-call fragment, nor for
//! a request without a `messages` array (nothing to append the text to).
//!
//! With continuation on, the machine keeps the text it hands out (for the request and the
//! overlap); without it, it keeps only lengths, as always.

use super::attempt::{Attempt, Phase};
use super::types::{AttemptId, ContinuationInfo, DeliveredText, GenerationResult, PartialCause};
use super::{Generation, Queued, Step};
use crate::core::deadline::Millis;
use crate::core::events::GuardEvent;
use crate::core::guard::continuation::{continuation_body, ContinuationMode};
use crate::core::guard::overlap::OverlapFilter;
use crate::core::policy::Failure;
use crate::core::progress::json::field_span;

/// A cut answer being continued.
#[derive(Debug)]
pub(super) struct Continuing {
    /// The attempt whose id every piece of the answer is handed out under.
    answer: AttemptId,
    /// The provider whose answer was cut first, and its characters then.
    origin: (String, u64),
    /// Bytes of the text at the first cut.
    bytes_at_first_cut: usize,
    /// How the last continuation request was made.
    mode: ContinuationMode,
    /// The continuation attempt running, and its filter.
    filter: Option<(AttemptId, OverlapFilter)>,
    /// The partial result of the last cut: what the call answers if no continuation completes.
    cut: GenerationResult,
}

impl Continuing {
    fn info(&self) -> ContinuationInfo {
        ContinuationInfo {
            from: self.origin.0.clone(),
            chars: self.origin.1,
            mode: self.mode.as_str(),
        }
    }
}

/// Continuation's entry points for the machine: reached only through [`CONTINUER`], which
/// only [`Generation::guarded`] hands to a generation.
pub(super) trait Continuer: std::fmt::Debug {
    /// Text handed out for `attempt`: kept, when continuation is on.
    fn keep(&self, g: &mut Generation, attempt: AttemptId, text: &str);
    /// While an answer is being continued: the whole text handed out so far.
    fn text(&self, g: &Generation) -> Option<DeliveredText>;
    /// The body of attempt `id`'s request to provider `index` (`None`: the original).
    fn body(
        &self,
        g: &mut Generation,
        id: AttemptId,
        index: usize,
    ) -> Result<Option<String>, String>;
    /// Attempt `id` queued deliveries from `before` on: filter a continuation's text.
    fn filter(&self, g: &mut Generation, id: AttemptId, before: usize);
    /// Before attempt `id` is judged: queue what is held back; whether anything was.
    fn flush(&self, g: &mut Generation, id: AttemptId) -> bool;
    /// `attempt` answered: continue it, or resolve.
    fn resolve_or_continue(
        &self,
        g: &mut Generation,
        attempt: Attempt,
        cause: Option<PartialCause>,
        at: Millis,
    );
    /// No continuation completed: the cut answer resolves partial.
    fn resolve_cut(&self, g: &mut Generation, at: Millis);
}

/// The continuation of a guarded generation.
#[derive(Debug)]
pub(super) struct Continue;

/// The one [`Continue`].
pub(super) static CONTINUER: Continue = Continue;

impl Continuer for Continue {
    fn keep(&self, g: &mut Generation, attempt: AttemptId, text: &str) {
        if g.mode.settings.continuation {
            g.keep(attempt, text);
        }
    }

    fn text(&self, g: &Generation) -> Option<DeliveredText> {
        g.continued()
    }

    fn body(
        &self,
        g: &mut Generation,
        id: AttemptId,
        index: usize,
    ) -> Result<Option<String>, String> {
        g.continuation_body(id, index)
    }

    fn filter(&self, g: &mut Generation, id: AttemptId, before: usize) {
        g.filter_continuation(id, before);
    }

    fn flush(&self, g: &mut Generation, id: AttemptId) -> bool {
        g.flush_continuation(id)
    }

    fn resolve_or_continue(
        &self,
        g: &mut Generation,
        attempt: Attempt,
        cause: Option<PartialCause>,
        at: Millis,
    ) {
        g.resolve_or_continue(attempt, cause, at);
    }

    fn resolve_cut(&self, g: &mut Generation, at: Millis) {
        g.resolve_cut(at);
    }
}

impl Generation {
    /// Keeps text handed out for `attempt` (a new id starts over).
    fn keep(&mut self, attempt: AttemptId, text: &str) {
        match &mut self.mode.kept {
            Some((id, kept)) if *id == attempt => kept.push_str(text),
            _ => self.mode.kept = Some((attempt, text.to_owned())),
        }
    }

    fn kept_text(&self, attempt: AttemptId) -> &str {
        match &self.mode.kept {
            Some((id, text)) if *id == attempt => text,
            _ => "",
        }
    }

    /// While an answer is being continued: the whole text handed out so far.
    fn continued(&self) -> Option<DeliveredText> {
        let continuing = self.mode.continuing.as_ref()?;
        Some(DeliveredText {
            attempt: continuing.answer,
            bytes: self.kept_text(continuing.answer).len(),
        })
    }

    /// The body of the request attempt `id` sends to provider `index`: `None` (the original)
    /// unless an answer is being continued.
    fn continuation_body(&mut self, id: AttemptId, index: usize) -> Result<Option<String>, String> {
        let Some(continuing) = self.mode.continuing.as_ref() else {
            return Ok(None);
        };
        let provider = &self.mode.config.providers[index];
        let mode = ContinuationMode::for_provider(&provider.url, &provider.model);
        let text = self.kept_text(continuing.answer);
        let body = continuation_body(&self.mode.config.body_without_model, text, mode)?;
        let filter = OverlapFilter::new(text);
        if let Some(continuing) = self.mode.continuing.as_mut() {
            continuing.mode = mode;
            continuing.filter = Some((id, filter));
        }
        Ok(Some(body))
    }

    /// Attempt `id` queued deliveries from index `before` on: if it is the continuation, its
    /// text goes through the filter (and under the answer's id); when its reading stopped,
    /// what the filter held back is decided and handed out after its text.
    fn filter_continuation(&mut self, id: AttemptId, before: usize) {
        let stopped = self
            .attempts
            .iter()
            .find(|a| a.ex.id == id)
            .is_none_or(|a| a.stopped.is_some() || a.phase == Phase::Over);
        let Some(continuing) = self.mode.continuing.as_mut() else {
            return;
        };
        let answer = continuing.answer;
        let Some((_, filter)) = continuing.filter.as_mut().filter(|(f, _)| *f == id) else {
            return;
        };
        let mut index = before;
        let mut after_text = before;
        while index < self.deliveries.len() {
            if let Queued::Text(from, text) = &self.deliveries[index] {
                if *from == id {
                    let out = filter.push(text);
                    if out.is_empty() {
                        self.deliveries.remove(index);
                        continue;
                    }
                    self.deliveries[index] = Queued::Text(answer, out);
                    after_text = index + 1;
                }
            }
            index += 1;
        }
        if stopped {
            let rest = filter.finish();
            if !rest.is_empty() {
                self.deliveries
                    .insert(after_text, Queued::Text(answer, rest));
            }
        }
    }

    /// Before attempt `id` is judged: what its filter still holds is decided and queued.
    /// Whether anything was (then the judgement waits until it is handed out).
    fn flush_continuation(&mut self, id: AttemptId) -> bool {
        let Some(continuing) = self.mode.continuing.as_mut() else {
            return false;
        };
        let answer = continuing.answer;
        let Some((_, filter)) = continuing.filter.as_mut().filter(|(f, _)| *f == id) else {
            return false;
        };
        let rest = filter.finish();
        if rest.is_empty() {
            return false;
        }
        self.deliveries.push_back(Queued::Text(answer, rest));
        true
    }

    /// `attempt` answered (cut short when `cause` is set): continue it on the next provider if
    /// the rules allow, else resolve (a continued answer with its whole text).
    fn resolve_or_continue(&mut self, attempt: Attempt, cause: Option<PartialCause>, at: Millis) {
        let cause = match cause {
            Some(cause) if self.may_continue(&attempt, &cause, at) => {
                self.start_continuation(attempt, cause, at);
                return;
            }
            cause => cause,
        };
        let Some(continuing) = self.mode.continuing.take() else {
            self.resolve(attempt, cause, at);
            return;
        };
        let mut result = self.result_of(attempt, cause, at);
        result.text = DeliveredText {
            attempt: continuing.answer,
            bytes: self.kept_text(continuing.answer).len(),
        };
        result.continuation = Some(continuing.info());
        self.answer(result);
    }

    /// No continuation completed (none left to ask, the time is up, or it failed): the cut
    /// answer resolves partial, with whatever continuations added to it.
    fn resolve_cut(&mut self, at: Millis) {
        let Some(continuing) = self.mode.continuing.take() else {
            return;
        };
        let bytes = self.kept_text(continuing.answer).len();
        let info = continuing.info();
        let mut result = continuing.cut;
        result.text = DeliveredText {
            attempt: continuing.answer,
            bytes,
        };
        result.stats.elapsed_ms = at - self.started;
        result.attempts = self.call.plan.attempts().to_vec();
        result.continuation = (bytes > continuing.bytes_at_first_cut).then_some(info);
        self.answer(result);
    }

    fn may_continue(&self, attempt: &Attempt, cause: &PartialCause, at: Millis) -> bool {
        let answer = self
            .mode
            .continuing
            .as_ref()
            .map_or(attempt.ex.id, |c| c.answer);
        let no_tool_call = attempt
            .reader
            .as_ref()
            .is_some_and(|reader| reader.answer.tool_calls.is_empty());
        let has_messages = field_span(&self.mode.config.body_without_model, "messages")
            .is_some_and(|span| self.mode.config.body_without_model[span].starts_with('['));
        self.mode.settings.continuation
            && has_messages
            && cause.failure != Failure::Aborted
            && no_tool_call
            && !self.kept_text(answer).is_empty()
            && attempt.provider + 1 < self.mode.config.providers.len()
            && self.call.plan.service_expired(at).is_none()
    }

    fn start_continuation(&mut self, attempt: Attempt, cause: PartialCause, at: Millis) {
        let (from, to) = (attempt.provider, attempt.provider + 1);
        let previous = self.mode.continuing.take();
        let answer = previous.as_ref().map_or(attempt.ex.id, |c| c.answer);
        let text = self.kept_text(answer);
        let (chars, bytes) = (text.chars().count() as u64, text.len());
        let reason = cause.kind;
        let mut cut = self.result_of(attempt, Some(cause), at);
        cut.text = DeliveredText {
            attempt: answer,
            bytes,
        };
        let name = |index: usize| self.mode.config.providers[index].name.clone();
        let (origin, bytes_at_first_cut) = match previous {
            Some(previous) => (previous.origin, previous.bytes_at_first_cut),
            None => ((name(from), chars), bytes),
        };
        self.report(GuardEvent::Continuation {
            from: name(from),
            to: name(to),
            chars: chars as f64,
            reason: reason.into(),
        });
        self.mode.continuing = Some(Continuing {
            answer,
            origin,
            bytes_at_first_cut,
            mode: ContinuationMode::Instruction,
            filter: None,
            cut,
        });
        self.mode.partial_text = self.continued();
        self.call.plan.switch_to(to);
        self.steps.push_back(Step::Begin { at });
    }
}
