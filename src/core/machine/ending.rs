//! How a call ends: the result its answer makes, the error it rejects with, and the release
//! of every attempt still open when it settles.

use super::attempt::Attempt;
use super::types::*;
use super::Generation;
use crate::core::deadline::Millis;
use crate::core::events::GuardEvent;
use crate::core::policy::Failure;

impl Generation {
    /// The call answered with `attempt`'s answer (cut short when `cause` is set).
    pub(super) fn resolve(&mut self, attempt: Attempt, cause: Option<PartialCause>, at: Millis) {
        let result = self.result_of(attempt, cause, at);
        self.answer(result);
    }

    /// The call answers with `result`: the `done` event, and the outcome.
    pub(super) fn answer(&mut self, result: GenerationResult) {
        self.report(GuardEvent::Done {
            provider: result.provider.clone(),
            partial: result.partial,
            elapsed_ms: result.stats.elapsed_ms,
        });
        self.settle(Ok(result));
    }

    /// The result `attempt`'s answer makes at `at` (cut short when `cause` is set).
    pub(super) fn result_of(
        &self,
        mut attempt: Attempt,
        cause: Option<PartialCause>,
        at: Millis,
    ) -> GenerationResult {
        let provider = &self.mode.config.providers[attempt.provider];
        let elapsed_ms = at - self.started;
        let (lines, chunks) = attempt.counts();
        let answer = attempt.reader.take().map(|r| r.answer).unwrap_or_default();
        GenerationResult {
            text: DeliveredText {
                attempt: attempt.ex.id,
                bytes: attempt.delivered,
            },
            partial: cause.is_some(),
            finish_reason: answer.finish_reason,
            provider: provider.name.clone(),
            model: answer.model.unwrap_or_else(|| provider.model.clone()),
            usage: answer.usage,
            cause,
            generation_id: attempt.generation_id.take().or(answer.chunk_id),
            tool_calls: answer.tool_calls,
            stats: Stats {
                lines,
                chunks,
                first_token_ms: attempt.ex.deadlines.first_token_ms(),
                elapsed_ms,
            },
            attempts: self.call.plan.attempts().to_vec(),
            continuation: None,
        }
    }

    /// The error the call rejects with.
    pub(super) fn error(
        &self,
        failure: &Failure,
        message: String,
        provider: usize,
        reason: Option<&str>,
        cause: Option<CauseRef>,
    ) -> GenerationError {
        let (layer, phase) = timeout_parts(failure);
        GenerationError {
            message,
            failure: failure.clone(),
            kind: failure.kind(),
            layer,
            phase,
            status: match failure {
                Failure::Http { status, .. } => Some(*status),
                _ => None,
            },
            partial_text: self.mode.partial_text,
            attempts: self.call.plan.attempts().to_vec(),
            provider: self.mode.config.providers[provider].name.clone(),
            reason: reason.map(str::to_owned),
            cause,
        }
    }

    /// The call is over: release every attempt still open, forget what was left to do.
    pub(super) fn settle(&mut self, outcome: Finished) {
        for attempt in &mut self.attempts {
            attempt.release(&mut self.actions);
        }
        self.attempts.clear();
        self.close();
        self.mode.outcome = Some(outcome);
    }
}

/// A timeout's layer and phase names.
pub(super) fn timeout_parts(failure: &Failure) -> (Option<&'static str>, Option<&'static str>) {
    match failure {
        Failure::Timeout(expired) => (Some(expired.layer.as_str()), Some(expired.phase.as_str())),
        _ => (None, None),
    }
}
