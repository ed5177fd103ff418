//! Hedging: when the attempt running alone has shown no progress
//! [`GuardSettings::hedge_after_ms`](super::GuardSettings::hedge_after_ms) after its request, the next provider of the chain is asked in parallel. The first of the
//! two to show progress (its first token) wins; the other is released at once (a `Cancel`
//! action in the same turn) and logged as `aborted`. One that fails before the other shows
//! progress is logged with its failure and the other carries on alone: no retry or failover is
//! decided while two run. Whichever is left is then judged as any attempt is, from its own
//! provider's place in the chain. At most one hedge per call, and none while a cut answer is
//! being continued; both attempts' deadlines are clipped to the service deadline as every
//! attempt's are.

use super::{AttemptId, CallState, Generation, Step};
use crate::core::deadline::Millis;
use crate::core::events::GuardEvent;

/// Hedging's entry points for the machine: reached only through [`HEDGE`], which only
/// [`Generation::guarded`] hands to a generation.
pub(super) trait Hedging: std::fmt::Debug {
    /// When the hedge is due, if one may still start.
    fn due(&self, g: &Generation) -> Option<Millis>;
    /// The clock read `now`: start the hedge if it is due.
    fn if_due(&self, g: &mut Generation, now: Millis);
    /// The hedge's step: announce it and send its request.
    fn start(&self, g: &mut Generation, at: Millis);
    /// Attempt `id` read: if it progressed first, it wins the race.
    fn won_by(&self, g: &mut Generation, id: AttemptId);
}

/// The hedging of a guarded generation.
#[derive(Debug)]
pub(super) struct Hedge;

/// The one [`Hedge`].
pub(super) static HEDGE: Hedge = Hedge;

impl Hedging for Hedge {
    fn due(&self, g: &Generation) -> Option<Millis> {
        g.hedge_due()
    }

    fn if_due(&self, g: &mut Generation, now: Millis) {
        g.hedge_if_due(now);
    }

    fn start(&self, g: &mut Generation, at: Millis) {
        g.hedge(at);
    }

    fn won_by(&self, g: &mut Generation, id: AttemptId) {
        g.hedge_won_by(id);
    }
}

impl Generation {
    /// When the hedge is due, if one may still start.
    fn hedge_due(&self) -> Option<Millis> {
        let after = self.mode.settings.hedge_after_ms?;
        if self.mode.hedged
            || self.mode.continuing.is_some()
            || self.state != CallState::Running
            || self.attempts.len() != 1
        {
            return None;
        }
        let attempt = &self.attempts[0];
        let waiting = attempt.is_waiting() && attempt.ex.deadlines.first_token_ms().is_none();
        let next = attempt.provider + 1;
        (waiting && next < self.mode.config.providers.len() && self.call.skipped_at(next).is_none())
            .then(|| attempt.ex.deadlines.started() + after)
    }

    /// The clock read `now`: start the hedge if it is due (once the deliveries before it are out).
    fn hedge_if_due(&mut self, now: Millis) {
        if self.hedge_due().is_some_and(|due| now >= due) {
            self.mode.hedged = true;
            self.steps.push_back(Step::Hedge { at: now });
        }
    }

    /// Announce the hedge and the request, then send it (unless the lone attempt progressed or
    /// ended while this step waited).
    fn hedge(&mut self, at: Millis) {
        let [attempt] = self.attempts.as_slice() else {
            return;
        };
        if !attempt.is_waiting() || attempt.ex.deadlines.first_token_ms().is_some() {
            return;
        }
        let (from, to) = (attempt.provider, attempt.provider + 1);
        let providers = &self.mode.config.providers;
        let hedge = GuardEvent::Hedge {
            provider: providers[from].name.clone(),
            to: providers[to].name.clone(),
            after_ms: self.mode.settings.hedge_after_ms.unwrap_or(0.0),
        };
        let start = GuardEvent::RequestStart {
            provider: providers[to].name.clone(),
            model: providers[to].model.clone(),
            attempt: 1,
        };
        self.report(hedge);
        self.report(start);
        self.steps.push_back(Step::SendHedge { at, provider: to });
    }

    /// Attempt `id` just read: if it is one of two and has shown progress, it wins; the other is
    /// released now and logged.
    fn hedge_won_by(&mut self, id: AttemptId) {
        if self.attempts.len() < 2 {
            return;
        }
        let Some(winner) = self.attempts.iter().find(|a| a.ex.id == id) else {
            return;
        };
        let Some(first_token_ms) = winner.ex.deadlines.first_token_ms() else {
            return;
        };
        let at = winner.ex.deadlines.started() + first_token_ms;
        let provider = winner.provider;
        let (won, lost): (Vec<_>, Vec<_>) = std::mem::take(&mut self.attempts)
            .into_iter()
            .partition(|a| a.ex.id == id);
        self.attempts = won;
        for mut loser in lost {
            loser.release(&mut self.actions);
            let started = loser.ex.deadlines.started();
            let at = at.max(started);
            let outcome = loser.outcome();
            self.call
                .plan
                .record(loser.provider, &outcome, loser.ex.status, started, at);
            self.observe(&loser, &outcome);
        }
        self.call.plan.switch_to(provider);
    }
}
