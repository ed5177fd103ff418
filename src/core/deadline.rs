//! The layered deadlines of one generation, as a clock-free state machine.
//!
//! Time is an argument: every method takes `now`, a reading in milliseconds from any monotonic
//! clock (the platform edge passes `performance.now()`). The edge asks [`AttemptDeadlines::next`]
//! when to wake up, sleeps until then or until bytes arrive, and reports what happened; the
//! machine says whether a deadline has passed and which one. No timer, no I/O here.
//!
//! The layers (the seed's defence in depth, made explicit):
//! - `headers`: request sent → response headers.
//! - `first-token`: request sent → first *progress* (see [`crate::core::chunk`]).
//! - `idle`: progress → next progress. Comments and empty chunks do not reset it.
//! - `stream`: one attempt, start to end (the seed's layer 1, 60 s).
//! - `service`: the whole call, every attempt and every back-off (the seed's layer 2, 90 s).
//!
//! Every attempt's deadlines are clipped to the service deadline; when the service deadline is
//! the one that passes (ties included), the timeout's layer is [`Layer::Service`].

use std::fmt;

/// Milliseconds on the caller's monotonic clock.
pub type Millis = f64;

/// The configured limits, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename_all = "camelCase"))]
pub struct Timeouts {
    /// Request sent → response headers (default 20 000).
    pub headers_ms: Millis,
    /// Request sent → first progress (default 30 000).
    pub first_token_ms: Millis,
    /// Progress → next progress (default 20 000).
    pub idle_ms: Millis,
    /// One attempt, start to end (default 60 000).
    pub stream_ms: Millis,
    /// The whole call, all attempts (default 90 000).
    pub service_ms: Millis,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            headers_ms: 20_000.0,
            first_token_ms: 30_000.0,
            idle_ms: 20_000.0,
            stream_ms: 60_000.0,
            service_ms: 90_000.0,
        }
    }
}

/// A partial set of limits: what a caller or a provider overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename_all = "camelCase", optional_fields))]
pub struct TimeoutOverrides {
    /// See [`Timeouts::headers_ms`].
    pub headers_ms: Option<Millis>,
    /// See [`Timeouts::first_token_ms`].
    pub first_token_ms: Option<Millis>,
    /// See [`Timeouts::idle_ms`].
    pub idle_ms: Option<Millis>,
    /// See [`Timeouts::stream_ms`].
    pub stream_ms: Option<Millis>,
    /// See [`Timeouts::service_ms`].
    pub service_ms: Option<Millis>,
}

/// Why a set of limits was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidTimeout {
    /// The field's name as JavaScript spells it (`idleMs`).
    pub field: &'static str,
    /// The value given.
    pub value: Millis,
}

impl fmt::Display for InvalidTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timeouts.{} must be a positive number of milliseconds (got {})",
            self.field, self.value
        )
    }
}

impl Timeouts {
    /// These limits with `overrides` applied, each checked to be finite and positive.
    pub fn with(self, overrides: &TimeoutOverrides) -> Result<Timeouts, InvalidTimeout> {
        fn pick(
            base: Millis,
            over: Option<Millis>,
            field: &'static str,
        ) -> Result<Millis, InvalidTimeout> {
            match over {
                None => Ok(base),
                Some(value) if value.is_finite() && value > 0.0 => Ok(value),
                Some(value) => Err(InvalidTimeout { field, value }),
            }
        }
        Ok(Timeouts {
            headers_ms: pick(self.headers_ms, overrides.headers_ms, "headersMs")?,
            first_token_ms: pick(
                self.first_token_ms,
                overrides.first_token_ms,
                "firstTokenMs",
            )?,
            idle_ms: pick(self.idle_ms, overrides.idle_ms, "idleMs")?,
            stream_ms: pick(self.stream_ms, overrides.stream_ms, "streamMs")?,
            service_ms: pick(self.service_ms, overrides.service_ms, "serviceMs")?,
        })
    }
}

/// Which wait a timeout cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Waiting for response headers.
    Headers,
    /// Waiting for the first progress.
    FirstToken,
    /// Waiting for more progress after some arrived.
    Idle,
    /// The attempt's overall limit.
    Stream,
}

impl Phase {
    /// The name JavaScript sees: `"headers"`, `"first-token"`, `"idle"`, `"stream"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Headers => "headers",
            Phase::FirstToken => "first-token",
            Phase::Idle => "idle",
            Phase::Stream => "stream",
        }
    }
}

/// Which layer's deadline it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// One provider attempt's own limits.
    Provider,
    /// The whole call's `serviceMs`.
    Service,
}

impl Layer {
    /// `"provider"` or `"service"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Provider => "provider",
            Layer::Service => "service",
        }
    }
}

/// A deadline that passed: which layer, which phase, and when it was due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expired {
    /// Provider or service.
    pub layer: Layer,
    /// The phase the attempt was in (for the service layer too: what it was waiting for).
    pub phase: Phase,
    /// When the deadline was due, on the caller's clock.
    pub due: Millis,
}

/// Something the edge sleeps towards, and the one rule for whether it has come.
///
/// The edge never decides this itself: it arms a timer for [`Due::due`], and when the timer
/// fires (or anything else wakes it) it asks [`Due::passed`] with a clock reading. A timer that
/// fires before the deadline by the clock (timers and clocks are not the same thing: timers are
/// rounded, clamped and coalesced) is simply armed again; it is never a failure.
pub trait Due {
    /// When it is due, on the caller's clock.
    fn due(&self) -> Millis;

    /// Whether it has come at `now`: once `now >= due`, and never before.
    fn passed(&self, now: Millis) -> bool {
        now >= self.due()
    }
}

/// A plain point in time (a retry's back-off ends, say).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WakeAt(pub Millis);

impl Due for WakeAt {
    fn due(&self) -> Millis {
        self.0
    }
}

impl Due for AttemptDeadlines {
    fn due(&self) -> Millis {
        self.next().due
    }
}

/// The deadlines of one attempt. Create it when the request is sent.
#[derive(Debug, Clone)]
pub struct AttemptDeadlines {
    timeouts: Timeouts,
    started: Millis,
    service_deadline: Millis,
    headers_at: Option<Millis>,
    first_progress_at: Option<Millis>,
    last_progress_at: Option<Millis>,
    /// The longest time between two progresses seen so far (0 until two came at different times).
    longest_gap: Millis,
}

impl AttemptDeadlines {
    /// An attempt whose request is sent at `now`, inside a call that must end by `service_deadline`.
    pub fn start(now: Millis, timeouts: Timeouts, service_deadline: Millis) -> Self {
        AttemptDeadlines {
            timeouts,
            started: now,
            service_deadline,
            headers_at: None,
            first_progress_at: None,
            last_progress_at: None,
            longest_gap: 0.0,
        }
    }

    /// When the request was sent.
    pub fn started(&self) -> Millis {
        self.started
    }

    /// Response headers arrived.
    pub fn on_headers(&mut self, now: Millis) {
        self.headers_at.get_or_insert(now);
    }

    /// Progress arrived (content, reasoning, tool call, finish or usage). Implies headers.
    pub fn on_progress(&mut self, now: Millis) {
        self.on_headers(now);
        self.first_progress_at.get_or_insert(now);
        if let Some(last) = self.last_progress_at {
            self.longest_gap = self.longest_gap.max(now - last);
        }
        self.last_progress_at = Some(now);
    }

    /// The longest silence between two progresses of the answer so far (`None` until two
    /// progresses came at different times: progress within one read is no gap).
    pub fn longest_gap_ms(&self) -> Option<Millis> {
        (self.longest_gap > 0.0).then_some(self.longest_gap)
    }

    /// Milliseconds from the request to the first progress, once there was some.
    pub fn first_token_ms(&self) -> Option<Millis> {
        self.first_progress_at.map(|t| t - self.started)
    }

    /// The phase the attempt is in now.
    pub fn phase(&self) -> Phase {
        if self.headers_at.is_none() {
            Phase::Headers
        } else if self.last_progress_at.is_none() {
            Phase::FirstToken
        } else {
            Phase::Idle
        }
    }

    /// The earliest deadline still ahead of the attempt, with the layer and phase it would end.
    pub fn next(&self) -> Expired {
        let mut best = Expired {
            layer: Layer::Provider,
            phase: Phase::Stream,
            due: self.started + self.timeouts.stream_ms,
        };
        let mut consider = |phase: Phase, due: Millis| {
            if due < best.due {
                best = Expired {
                    layer: Layer::Provider,
                    phase,
                    due,
                };
            }
        };
        if self.headers_at.is_none() {
            consider(Phase::Headers, self.started + self.timeouts.headers_ms);
        }
        match self.last_progress_at {
            None => consider(
                Phase::FirstToken,
                self.started + self.timeouts.first_token_ms,
            ),
            Some(last) => consider(Phase::Idle, last + self.timeouts.idle_ms),
        }
        if self.service_deadline <= best.due {
            best = Expired {
                layer: Layer::Service,
                phase: self.phase(),
                due: self.service_deadline,
            };
        }
        best
    }

    /// `Some` when a deadline has passed at `now` (a deadline is passed once `now >= due`).
    pub fn check(&self, now: Millis) -> Option<Expired> {
        self.passed(now).then(|| self.next())
    }

    /// How long the edge may wait from `now` before it must check again (never negative).
    pub fn wait_ms(&self, now: Millis) -> Millis {
        (self.next().due - now).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Timeouts {
        Timeouts {
            headers_ms: 100.0,
            first_token_ms: 300.0,
            idle_ms: 200.0,
            stream_ms: 1_000.0,
            service_ms: 5_000.0,
        }
    }

    #[test]
    fn headers_then_first_token_then_idle_then_stream() {
        let mut d = AttemptDeadlines::start(0.0, limits(), 10_000.0);
        assert_eq!((d.next().phase, d.next().due), (Phase::Headers, 100.0));
        assert!(d.check(99.9).is_none());
        assert_eq!(d.check(100.0).map(|e| e.phase), Some(Phase::Headers));
        d.on_headers(50.0);
        assert_eq!((d.next().phase, d.next().due), (Phase::FirstToken, 300.0));
        d.on_progress(250.0);
        assert_eq!(d.first_token_ms(), Some(250.0));
        assert_eq!((d.next().phase, d.next().due), (Phase::Idle, 450.0));
        for t in [400.0, 550.0, 700.0, 850.0] {
            d.on_progress(t);
        }
        assert_eq!((d.next().phase, d.next().due), (Phase::Stream, 1_000.0));
        assert_eq!(d.next().layer, Layer::Provider);
        assert_eq!(
            d.first_token_ms(),
            Some(250.0),
            "the first progress is kept"
        );
    }

    #[test]
    fn the_service_deadline_clips_and_wins_ties() {
        let mut d = AttemptDeadlines::start(0.0, limits(), 250.0);
        d.on_headers(10.0);
        let next = d.next();
        assert_eq!(
            (next.layer, next.phase, next.due),
            (Layer::Service, Phase::FirstToken, 250.0)
        );
        let tie = AttemptDeadlines::start(0.0, limits(), 100.0);
        assert_eq!(tie.next().layer, Layer::Service);
        assert_eq!(tie.next().phase, Phase::Headers);
        assert_eq!(tie.wait_ms(30.0), 70.0);
        assert_eq!(tie.wait_ms(130.0), 0.0);
    }

    #[test]
    fn due_is_one_rule_for_every_deadline() {
        let d = AttemptDeadlines::start(0.0, limits(), 10_000.0);
        assert_eq!(d.due(), 100.0);
        // A timer that fires early by the clock: not due, whatever the margin.
        for early in [0.001, 0.4, 0.5, 0.9, 3.0] {
            assert!(!d.passed(100.0 - early), "{early} ms early");
            assert!(d.check(100.0 - early).is_none(), "{early} ms early");
        }
        assert!(d.passed(100.0) && d.check(100.0).is_some());
        let wake = WakeAt(250.5);
        assert!(!wake.passed(250.4999) && wake.passed(250.5) && wake.passed(1e9));
    }

    #[test]
    fn overrides_are_validated_by_field() {
        let over = TimeoutOverrides {
            idle_ms: Some(-1.0),
            ..Default::default()
        };
        let err = Timeouts::default().with(&over).unwrap_err();
        assert_eq!(err.field, "idleMs");
        let nan = TimeoutOverrides {
            service_ms: Some(f64::NAN),
            ..Default::default()
        };
        assert_eq!(
            Timeouts::default().with(&nan).unwrap_err().field,
            "serviceMs"
        );
        let ok = TimeoutOverrides {
            first_token_ms: Some(5.0),
            ..Default::default()
        };
        let t = Timeouts::default().with(&ok).unwrap();
        assert_eq!((t.first_token_ms, t.idle_ms), (5.0, 20_000.0));
    }
}
