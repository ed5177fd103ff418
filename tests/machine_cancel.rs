//! Cancelling a generation machine: by the caller, by a session, or by a callback that threw.
//! After a cancel the caller hears nothing but one `cancelled` event, nothing more is sent,
//! and every attempt still open is released.

#![cfg(not(target_arch = "wasm32"))]

mod machine_support;

use llm_stream_guard::core::machine::{AttemptId, CancelReason, CauseRef, Delivery};
use machine_support::*;

#[test]
fn a_cancel_mid_stream_releases_the_attempt_and_says_only_cancelled() {
    let mut d = Driver::streaming(&["a", "b"]);
    d.bytes(50.0, &content("Hel"));
    let heard = d.heard.len();
    d.cancel(60.0, CancelReason::Named("hang-up".into()));
    assert_eq!(d.transcript()[heard..], ["cancelled"]);
    assert_eq!(d.cancelled, [AttemptId(0)]);
    let error = d.error();
    assert_eq!(
        (error.kind, error.reason.as_deref()),
        ("aborted", Some("hang-up"))
    );
    assert_eq!(error.message, "cancelled: hang-up");
    assert_eq!(d.partial_text(), "Hel");
    assert_eq!((error.provider.as_str(), error.cause), ("a", None));
    let record = &error.attempts[0];
    assert_eq!(
        (record.outcome.as_str(), record.status, record.elapsed_ms),
        ("aborted", Some(200), 60.0)
    );
    // What the platform still reports about the attempt is ignored.
    d.bytes(70.0, &(content("lo") + DONE));
    d.end(71.0);
    d.wake_at(10_000.0);
    d.cancel(10_001.0, CancelReason::Signal);
    assert_eq!(d.transcript()[heard..], ["cancelled"]);
    assert_eq!(d.sent.len(), 1);
    assert_eq!(
        d.machine.outcome().unwrap().as_ref().unwrap_err().message,
        "cancelled: hang-up"
    );
    d.assert_over_and_released();
}

#[test]
fn the_callers_signal_and_a_cancel_before_the_start() {
    let mut d = Driver::started(&["a"]);
    d.cancel(5.0, CancelReason::Signal);
    let error = d.error();
    assert_eq!(error.message, "aborted by the caller's signal");
    assert_eq!(error.reason.as_deref(), Some("signal"));
    assert_eq!(error.attempts[0].outcome, "aborted");
    assert_eq!(error.attempts[0].status, None, "no head arrived");
    d.assert_over_and_released();

    // An already aborted signal: nothing is announced or sent.
    let mut d = Driver::new(config(vec![provider("a")]));
    d.cancel(0.0, CancelReason::Named("pagehide".into()));
    d.start(0.0);
    assert_eq!(d.transcript(), ["cancelled"]);
    assert!(d.sent.is_empty());
    let error = d.error();
    assert_eq!(
        (error.message.as_str(), error.provider.as_str()),
        ("cancelled: pagehide", "a")
    );
    assert!(error.attempts.is_empty());
}

#[test]
fn a_throwing_on_text_stops_the_rest_of_the_read() {
    let mut d = Driver::new(config(vec![provider("a")]));
    d.throws = Some(Box::new(
        |delivery| matches!(delivery, Delivery::Text { text, .. } if text == "b"),
    ));
    d.start(0.0);
    d.head(10.0, sse_head());
    let read = content("a") + &content("b") + &content("c") + &finish("stop") + DONE;
    d.bytes(20.0, &read);
    assert_eq!(
        d.transcript(),
        [
            "request-start",
            "headers",
            "first-token",
            "text:a",
            "text:b",
            "cancelled"
        ]
    );
    let error = d.error();
    assert_eq!(error.reason.as_deref(), Some("callback"));
    assert_eq!(error.message, "cancelled: onText threw");
    assert_eq!(error.cause, Some(CauseRef::Thrown));
    assert_eq!(
        d.partial_text(),
        "ab",
        "what was handed out, not what was read"
    );
    assert_eq!(
        error.attempts[0].outcome, "aborted",
        "the read that finished the answer is not taken"
    );
    assert_eq!(d.cancelled, [AttemptId(0)]);
    d.assert_over_and_released();
}

#[test]
fn a_throwing_on_event_for_request_start_sends_nothing() {
    let mut d = Driver::new(config(vec![provider("a")]));
    d.throws = Some(Box::new(|delivery| matches!(delivery, Delivery::Event(_))));
    d.start(0.0);
    assert!(d.sent.is_empty());
    assert_eq!(d.transcript(), ["request-start", "cancelled"]);
    let error = d.error();
    assert_eq!(error.message, "cancelled: onEvent threw");
    assert!(error.attempts.is_empty());
    assert_eq!(d.machine.poll_timeout(), None);
}

#[test]
fn a_throw_on_a_timeout_event_stops_the_failover() {
    let mut d = Driver::new(config(vec![provider("a"), provider("b")]));
    d.throws = Some(Box::new(
        |delivery| matches!(delivery, Delivery::Event(e) if e.type_name() == "timeout"),
    ));
    d.start(0.0);
    assert_eq!(d.wake(), 100.0);
    assert_eq!(d.transcript(), ["request-start", "timeout", "cancelled"]);
    assert_eq!(d.sent.len(), 1, "b is never asked");
    let error = d.error();
    assert_eq!(error.kind, "aborted");
    // The attempt had already timed out when the callback threw: it is logged as such.
    assert_eq!(error.attempts[0].outcome, "timeout");
    assert_eq!(error.provider, "a");
    d.assert_over_and_released();
}

#[test]
fn a_throw_on_failover_cancels_before_the_next_provider_is_asked() {
    let mut d = Driver::new(config(vec![provider("a"), provider("b")]));
    d.throws = Some(Box::new(
        |delivery| matches!(delivery, Delivery::Event(e) if e.type_name() == "failover"),
    ));
    d.start(0.0);
    d.wake();
    assert_eq!(
        d.transcript(),
        [
            "request-start",
            "timeout",
            "attempt-failed",
            "failover",
            "cancelled"
        ]
    );
    assert_eq!(d.sent.len(), 1);
    let error = d.error();
    assert_eq!(error.provider, "b", "the call had moved on to b");
    assert_eq!(error.attempts.len(), 1);
}

#[test]
fn a_cancel_during_a_back_off_ends_the_wait() {
    let mut d = Driver::started(&["a"]);
    d.head(10.0, head(503, "application/json"));
    d.end(11.0);
    assert_eq!(d.types().last(), Some(&"retry"));
    assert!(d.machine.poll_timeout().is_some());
    d.cancel(12.0, CancelReason::Named("cancel".into()));
    assert_eq!(d.types().last(), Some(&"cancelled"));
    assert_eq!(d.machine.poll_timeout(), None);
    d.wake_at(60_000.0);
    assert_eq!(d.sent.len(), 1);
    let error = d.error();
    assert_eq!(error.attempts.len(), 1);
    assert_eq!(error.attempts[0].outcome, "http");
    d.assert_over_and_released();
}

#[test]
fn a_cancel_while_an_error_body_is_read_logs_the_status() {
    let mut d = Driver::started(&["a"]);
    d.head(10.0, head(502, "application/json"));
    d.cancel(20.0, CancelReason::Signal);
    let record = &d.error().attempts[0];
    assert_eq!(
        (record.outcome.as_str(), record.status),
        ("http", Some(502))
    );
    assert_eq!(d.cancelled, [AttemptId(0)]);
}

#[test]
fn after_the_outcome_a_cancel_changes_nothing() {
    let mut d = Driver::new(config(vec![provider("a")]));
    d.throws = Some(Box::new(
        |delivery| matches!(delivery, Delivery::Event(e) if e.type_name() == "done"),
    ));
    d.start(0.0);
    d.head(10.0, sse_head());
    d.bytes(20.0, &(content("ok") + &finish("stop") + DONE));
    // `done` threw, but the answer was already decided: it stands.
    assert_eq!(d.result_text(), "ok");
    assert!(!d.types().contains(&"cancelled"));
}

#[test]
fn a_cancel_after_the_outcome_was_taken_changes_nothing() {
    let mut d = Driver::started(&["a"]);
    d.head(10.0, head(400, "application/json"));
    d.end(11.0);
    let taken = d.machine.take_outcome().unwrap().unwrap_err();
    assert_eq!(taken.kind, "http");
    d.cancel(12.0, CancelReason::Signal);
    assert!(d.machine.outcome().is_none());
    assert!(!d.types().contains(&"cancelled"));
    assert!(d.machine.is_settled());
}
