//! The two halves of the machine's contract with its modes: what a mode supplies ([`Mode`])
//! and what the call tells it ([`Input`], [`Step`]). Public in name only: this module is
//! private, so nothing outside the crate can make a mode.

use std::collections::VecDeque;

use super::{AttemptId, BodyError, CauseRef, Head, Machine};
use crate::core::answer::Outcome;
use crate::core::deadline::{AttemptDeadlines, Expired, Millis, WakeAt};
use crate::core::events::GuardEvent;
use crate::core::exchange::Exchange;
use crate::core::policy::Failure;

/// What a mode's attempts all are: a request and its response head, to one provider.
pub trait Attempted: std::fmt::Debug {
    /// Its request and response head.
    fn ex(&self) -> &Exchange;
    /// Its provider (index into the chain).
    fn provider(&self) -> usize;
    /// Whether it still waits on the platform or the clock.
    fn is_waiting(&self) -> bool;
    /// When it went over (the time it is judged at).
    fn over_at(&self) -> Millis;
}

/// Implements [`Attempted`] for a mode's attempt type, whose fields `ex`, `provider` and
/// `over_at` and method `is_waiting` say it.
macro_rules! attempted {
    ($attempt:ty) => {
        #[allow(private_interfaces)]
        impl $crate::core::machine::Attempted for $attempt {
            fn ex(&self) -> &$crate::core::exchange::Exchange {
                &self.ex
            }

            fn provider(&self) -> usize {
                self.provider
            }

            fn is_waiting(&self) -> bool {
                <$attempt>::is_waiting(self)
            }

            fn over_at(&self) -> $crate::core::deadline::Millis {
                self.over_at
            }
        }
    };
}
pub(crate) use attempted;

/// Hands `$input` to `$attempt`, a mode's attempt whose methods are named for the inputs and
/// take `$cx` last; `AfterRead` is `$after_read`.
macro_rules! tell {
    ($attempt:ident, $input:expr, $cx:expr, $after_read:expr) => {
        match $input {
            $crate::core::machine::Input::Head(now, head) => $attempt.head(now, head, $cx),
            $crate::core::machine::Input::Bytes(now, bytes) => $attempt.bytes(now, bytes, $cx),
            $crate::core::machine::Input::End(now) => $attempt.end(now, $cx),
            $crate::core::machine::Input::BodyError(now, error) => {
                $attempt.body_error(now, error, $cx)
            }
            $crate::core::machine::Input::RequestError(now, message) => {
                $attempt.request_error(now, message, $cx)
            }
            $crate::core::machine::Input::Timeout(now) => $attempt.timeout(now, $cx),
            $crate::core::machine::Input::AfterRead => $after_read,
        }
    };
}
pub(crate) use tell;

/// How an attempt that is over is judged, as its mode sees it.
pub struct Verdict {
    /// What it amounted to.
    pub outcome: Outcome,
    /// Its failure's message (empty when it did not fail).
    pub message: String,
    /// The platform's error is its failure's cause.
    pub cause: Option<CauseRef>,
    /// SSE lines it read (the `empty-response` event's count).
    pub lines: f64,
}

/// What a call does with its attempts' answers: the machine's body mode. Its hooks get the
/// whole machine, so that a mode's state and the call's are reached the same way.
pub trait Mode: Sized + std::fmt::Debug {
    /// One attempt.
    type Attempt: Attempted;
    /// What waits in the delivery queue.
    type Queued: std::fmt::Debug;
    /// What the driver is asked to do.
    type Action: std::fmt::Debug;
    /// The call's steps wait until everything queued before them is handed out (a callback
    /// that throws on it must be able to stop them).
    const WAITS_FOR_DELIVERIES: bool;

    /// The call began at `now`.
    fn started(m: &mut Machine<Self>, now: Millis);
    /// Queues an event.
    fn event(m: &mut Machine<Self>, event: GuardEvent);
    /// Hands `input` to attempt `id`, if it is still there.
    fn feed(m: &mut Machine<Self>, id: AttemptId, input: Input<'_>);
    /// Sends a request to provider `index`, its attempt's deadlines started.
    fn send(m: &mut Machine<Self>, index: usize, deadlines: AttemptDeadlines);
    /// Attempt `id` at provider `index` is over before anything was sent.
    fn refuse(
        m: &mut Machine<Self>,
        id: AttemptId,
        index: usize,
        deadlines: AttemptDeadlines,
        failure: Failure,
        message: String,
    );
    /// Releases `attempt`'s transport, if it may still be open.
    fn release(attempt: &mut Self::Attempt, actions: &mut VecDeque<Self::Action>);
    /// When `attempt` wants the clock.
    fn due(m: &Machine<Self>, attempt: &Self::Attempt) -> Millis;
    /// The mode's own next deadline, and whether the attempts' deadlines wait meanwhile.
    fn own_due(m: &Machine<Self>) -> (Option<Millis>, bool);
    /// The clock read `now`, before the attempts see it: `true` when nothing more happens.
    fn clock(m: &mut Machine<Self>, now: Millis) -> bool;
    /// The clock read `now`, after the attempts saw it.
    fn clock_after(m: &mut Machine<Self>, now: Millis);
    /// A step of the mode's own.
    fn step(m: &mut Machine<Self>, step: Step);
    /// Before attempt `id` is judged: whether something must be handed out first.
    fn hold_judge(m: &mut Machine<Self>, id: AttemptId) -> bool;
    /// How `attempt`, over, is judged.
    fn verdict(m: &mut Machine<Self>, attempt: &Self::Attempt) -> Verdict;
    /// The plan resolves the call with `attempt`'s answer (cut short by `cause`).
    fn resolve(
        m: &mut Machine<Self>,
        attempt: Self::Attempt,
        cause: Option<Failure>,
        verdict: Verdict,
        at: Millis,
    );
    /// The plan gives up after `attempt` failed with `failure`.
    fn reject(
        m: &mut Machine<Self>,
        attempt: Self::Attempt,
        failure: Failure,
        verdict: Verdict,
        at: Millis,
    );
    /// The service deadline passed before provider `index` could be asked.
    fn expired(m: &mut Machine<Self>, at: Millis, expired: Expired, index: usize, message: String);
}

/// A step of the call that waits until everything queued before it has been handed out (in a
/// mode whose steps wait for deliveries).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Ask the current provider: the service deadline, then the `request-start` event.
    Begin { at: Millis },
    /// Send the request that `request-start` announced.
    Send { at: Millis },
    /// Look at an attempt after a read: did it stop, did a deadline pass?
    AfterRead(AttemptId),
    /// An attempt is over: judge it, then resolve, retry, fail over or reject.
    Judge(AttemptId),
    /// The hedge is due: announce it, then ask the next provider in parallel.
    Hedge { at: Millis },
    /// Send the hedged request that `request-start` announced, to this provider.
    SendHedge { at: Millis, provider: usize },
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CallState {
    /// Made; [`Machine::start`] not called yet.
    Idle,
    /// Attempts running, or steps waiting for deliveries.
    Running,
    /// Waiting out a retry's back-off: the next attempt begins once this has passed.
    BackingOff(WakeAt),
    /// The outcome is decided; nothing more happens.
    Settled,
}

/// What an attempt is told.
pub enum Input<'a> {
    Head(Millis, Head),
    Bytes(Millis, &'a [u8]),
    End(Millis),
    BodyError(Millis, BodyError),
    RequestError(Millis, &'a str),
    Timeout(Millis),
    /// The deliveries of its last read are out.
    AfterRead,
}

impl Input<'_> {
    /// The time it carries (`None`: a step, not a report).
    pub fn now(&self) -> Option<Millis> {
        match self {
            Input::Head(now, _)
            | Input::Bytes(now, _)
            | Input::End(now)
            | Input::BodyError(now, _)
            | Input::RequestError(now, _)
            | Input::Timeout(now) => Some(*now),
            Input::AfterRead => None,
        }
    }
}
