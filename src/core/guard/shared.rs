//! Breaker decisions shared between the edge worker's isolates through a Durable Object
//! (`LSG_GUARD_DO`), so that a breaker opened in one isolate protects every one.
//!
//! What is shared is each provider's *decision* ([`Decision`]: open until a time, because of a
//! failure kind, or closed), with the time it was made; streaks and probes stay in each isolate
//! (counting every attempt in one place would put the Durable Object on every attempt's path).
//! Two parts, both plain data:
//!
//! - The Durable Object's store ([`sync_store`]): one [`SharedBreaker`] per provider, merged
//!   from the isolates' reports. Of two open decisions the one open longer wins; otherwise the
//!   later decision wins (a provider that answered after it was opened is closed again; an open
//!   made after a close opens it).
//! - An isolate's side ([`SharedView`]): what to report after a request (the decisions its own
//!   breakers changed), when to ask for the store again (at most every
//!   [`SharedView::interval_ms`] without anything to report), and which of the store's decisions
//!   to adopt (those made after this isolate's own last decision about the provider, so that a
//!   view that left the store before this isolate's own report cannot undo it).
//!
//! It must never: read a clock (times are arguments, milliseconds since the epoch: the
//! isolates' common clock), touch a platform API, keep a key (provider names, failure kinds and
//! times only), or grow without bound (at most [`MAX_PROVIDERS`] entries of names of at most
//! [`MAX_NAME_BYTES`]).

use serde::{Deserialize, Serialize};

use super::breaker::Decision;
use super::state::GuardState;
use crate::core::deadline::Millis;

/// How often an isolate asks the Durable Object for its store when it has nothing to report.
pub const REFRESH_MS: Millis = 1_000.0;

/// The most providers the store keeps (a report or a store with more is refused).
pub const MAX_PROVIDERS: usize = 64;

/// The longest provider name the store keeps, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// One provider's breaker decision as shared: open until `open_until` because of `why`, or
/// closed (no `open_until`), decided at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedBreaker {
    /// The provider's name.
    pub provider: String,
    /// Open: when one call may probe it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<Millis>,
    /// Open: the failure kind that opened it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// When the decision was made.
    pub at: Millis,
}

impl SharedBreaker {
    /// `decision` about `provider`, made at `at` (`None` for a half-open breaker, which stands
    /// on no decision of its own: its probe decides).
    pub fn new(provider: &str, at: Millis, decision: Decision) -> Option<SharedBreaker> {
        let (open_until, why) = match decision {
            Decision::Closed => (None, None),
            Decision::Open { until, why } => (Some(until), Some(why.to_owned())),
            Decision::HalfOpen => return None,
        };
        Some(SharedBreaker {
            provider: provider.to_owned(),
            open_until,
            why,
            at,
        })
    }

    /// The decision, as a breaker takes it.
    pub fn decision(&self) -> Decision {
        match self.open_until {
            None => Decision::Closed,
            Some(until) => Decision::Open {
                until,
                why: failure_kind(self.why.as_deref().unwrap_or("")),
            },
        }
    }

    fn is_valid(&self) -> bool {
        !self.provider.is_empty()
            && self.provider.len() <= MAX_NAME_BYTES
            && self.at.is_finite()
            && self.open_until.is_none_or(f64::is_finite)
            && self.why.as_ref().is_none_or(|why| why.len() <= 32)
    }
}

/// A counted failure kind (`Failure::kind` of what opens a breaker), as a breaker keeps it; an
/// unknown one reads as `"upstream"`.
fn failure_kind(why: &str) -> &'static str {
    match why {
        "timeout" => "timeout",
        "http" => "http",
        "network" => "network",
        "protocol" => "protocol",
        _ => "upstream",
    }
}

/// Why a report or a store was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncError {
    /// Not a JSON array of valid decisions.
    Malformed,
    /// More than [`MAX_PROVIDERS`] entries.
    TooLarge,
}

impl SyncError {
    /// A short name for logs and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncError::Malformed => "malformed",
            SyncError::TooLarge => "too_large",
        }
    }
}

/// Reads a report or a store: a JSON array of decisions (empty text: none).
pub fn parse(text: &str) -> Result<Vec<SharedBreaker>, SyncError> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<SharedBreaker> = serde_json::from_str(text).map_err(|_| SyncError::Malformed)?;
    if list.len() > MAX_PROVIDERS {
        return Err(SyncError::TooLarge);
    }
    match list.iter().all(SharedBreaker::is_valid) {
        true => Ok(list),
        false => Err(SyncError::Malformed),
    }
}

/// Whether `incoming` replaces `existing` (decisions about the same provider).
fn supersedes(incoming: &SharedBreaker, existing: &SharedBreaker) -> bool {
    match (incoming.open_until, existing.open_until) {
        (Some(theirs), Some(ours)) => theirs > ours,
        _ => incoming.at > existing.at,
    }
}

/// Merges `incoming` into `store`; a new provider beyond [`MAX_PROVIDERS`] is dropped.
pub fn record(store: &mut Vec<SharedBreaker>, incoming: SharedBreaker) {
    let full = store.len() >= MAX_PROVIDERS;
    match store.iter_mut().find(|e| e.provider == incoming.provider) {
        Some(existing) if supersedes(&incoming, existing) => *existing = incoming,
        Some(_) => {}
        None if !full => store.push(incoming),
        None => {}
    }
}

/// The Durable Object's step: the store as `stored` (JSON; empty: nothing yet) with `report`
/// (JSON) merged in, as JSON, which is also its answer to the isolate that reported. A bad
/// report is refused and changes nothing; a bad store (which only this function writes) is
/// started again from empty.
pub fn sync_store(stored: &str, report: &str) -> Result<String, SyncError> {
    let report = parse(report)?;
    let mut store = parse(stored).unwrap_or_default();
    for incoming in report {
        record(&mut store, incoming);
    }
    serde_json::to_string(&store).map_err(|_| SyncError::Malformed)
}

/// An isolate's side of the sharing: see the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedView {
    /// How often to ask the store when there is nothing to report.
    pub interval_ms: Millis,
    /// When the store was last asked (with or without a report).
    last_asked: Option<Millis>,
    /// When this isolate's own breaker last changed its decision, per provider.
    own: Vec<(String, Millis)>,
}

impl SharedView {
    /// An isolate that has not asked yet.
    pub fn new(interval_ms: Millis) -> SharedView {
        SharedView {
            interval_ms,
            last_asked: None,
            own: Vec::new(),
        }
    }

    /// Whether to ask the store at `now` with nothing to report (never asked, or not for
    /// `interval_ms`); if so, it counts as asked.
    pub fn due(&mut self, now: Millis) -> bool {
        let due = self
            .last_asked
            .is_none_or(|last| now - last >= self.interval_ms || now < last);
        if due {
            self.last_asked = Some(now);
        }
        due
    }

    /// A request ended at `now` and the breakers' decisions went from `before` to `after`
    /// ([`GuardState::decisions`]): the decisions to report (each one that changed, but to
    /// half-open); when there are some, the store counts as asked.
    pub fn changes(
        &mut self,
        now: Millis,
        before: &[(String, Decision)],
        after: &[(String, Decision)],
    ) -> Vec<SharedBreaker> {
        let mut report = Vec::new();
        for (name, decision) in after {
            let old = before.iter().find(|(n, _)| n == name).map(|(_, d)| *d);
            if old == Some(*decision) {
                continue;
            }
            let Some(shared) = SharedBreaker::new(name, now, *decision) else {
                continue;
            };
            match self.own.iter_mut().find(|(n, _)| n == name) {
                Some((_, at)) => *at = now,
                None => self.own.push((name.clone(), now)),
            }
            report.push(shared);
        }
        if !report.is_empty() {
            self.last_asked = Some(now);
        }
        report
    }

    /// The store's `view` arrived at `now`: `state` adopts each decision made after this
    /// isolate's own last decision about that provider ([`GuardState::adopt`] says how).
    pub fn adopt(&self, state: &mut GuardState, now: Millis, view: &[SharedBreaker]) {
        for shared in view {
            let own = self.own.iter().find(|(n, _)| *n == shared.provider);
            if own.is_some_and(|(_, at)| *at >= shared.at) {
                continue;
            }
            state.adopt(now, &shared.provider, shared.at, shared.decision());
        }
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
