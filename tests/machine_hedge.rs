//! Hedging in the generation machine, on a fake clock: after `hedge_after_ms` without progress
//! the next provider is asked in parallel, the first to show progress wins and the other is
//! released at once, both show in the attempt log, and every deadline still holds.

#![cfg(not(target_arch = "wasm32"))]

mod machine_support;

use llm_stream_guard::core::events::GuardEvent;
use llm_stream_guard::core::machine::{AttemptId, CancelReason, Delivery};
use machine_support::*;

const A: AttemptId = AttemptId(0);
const B: AttemptId = AttemptId(1);

/// A call over `names` hedging after 150 ms, started at 0, `a` answering its head at 10.
fn hedging(names: &[&str]) -> Driver {
    let c = config(names.iter().map(|n| provider(n)).collect());
    let mut d = Driver::guarded(c, hedge_after(150.0));
    d.start(0.0);
    d.feed(A, 10.0, Input::Head(sse_head()));
    d
}

fn bytes(text: &str) -> Input {
    Input::Bytes(text.as_bytes().to_vec())
}

fn log(d: &Driver) -> Vec<(String, String)> {
    let attempts = match d.machine.outcome() {
        Some(Ok(result)) => &result.attempts,
        Some(Err(error)) => &error.attempts,
        None => panic!("not over"),
    };
    attempts
        .iter()
        .map(|a| (a.provider.clone(), a.outcome.clone()))
        .collect()
}

fn pair(provider: &str, outcome: &str) -> (String, String) {
    (provider.into(), outcome.into())
}

#[test]
fn no_progress_after_the_wait_asks_the_next_provider_in_parallel() {
    let mut d = hedging(&["a", "b", "c"]);
    assert_eq!(
        d.machine.poll_timeout(),
        Some(150.0),
        "the hedge is due first"
    );
    d.wake_at(149.0);
    assert_eq!(d.sent.len(), 1, "nothing before it is due");
    assert_eq!(d.wake(), 150.0);
    assert_eq!(d.sent.len(), 2);
    assert_eq!((d.sent[1].attempt, d.sent[1].provider), (B, 1));
    assert!(d.sent[1].url.starts_with("https://b."));
    assert_eq!(
        d.types(),
        ["request-start", "headers", "hedge", "request-start"]
    );
    assert_eq!(
        *d.events()[2],
        GuardEvent::Hedge {
            provider: "a".into(),
            to: "b".into(),
            after_ms: 150.0
        }
    );
    assert!(d.cancelled.is_empty(), "both run");
    // Both attempts' deadlines are watched: b's headers deadline (250) comes before a's
    // first-token deadline (300).
    assert_eq!(d.machine.poll_timeout(), Some(250.0));
}

#[test]
fn the_hedge_that_shows_progress_first_wins_and_the_other_is_released_at_once() {
    let mut d = hedging(&["a", "b"]);
    d.wake_at(150.0);
    d.feed(B, 170.0, Input::Head(sse_head()));
    d.feed(A, 180.0, bytes(KEEPALIVE));
    assert!(d.cancelled.is_empty(), "a keepalive is not progress");
    d.feed(B, 200.0, bytes(&content("Hi")));
    assert_eq!(d.cancelled, [A], "a is released in the same turn");
    // What a still sends is ignored.
    d.feed(A, 210.0, bytes(&(content("late") + DONE)));
    d.feed(
        B,
        220.0,
        bytes(&(content(" there") + &finish("stop") + DONE)),
    );
    d.closed.insert(A);
    assert_eq!(d.result_text(), "Hi there");
    assert!(!d.text().contains("late"));
    let result = d.result();
    assert_eq!(result.provider, "b");
    assert!(!result.partial);
    assert_eq!(log(&d), [pair("a", "aborted"), pair("b", "complete")]);
    assert_eq!(result.attempts[0].elapsed_ms, 200.0, "a ran until b won");
    assert_eq!(result.attempts[1].elapsed_ms, 70.0);
    d.end(230.0);
    d.assert_over_and_released();
}

#[test]
fn the_first_provider_can_still_win_the_race() {
    let mut d = hedging(&["a", "b"]);
    d.wake_at(150.0);
    d.feed(A, 160.0, bytes(&content("Hello")));
    assert_eq!(d.cancelled, [B], "the hedge is released at once");
    d.feed(B, 170.0, Input::Head(sse_head()));
    d.feed(A, 180.0, bytes(&(finish("stop") + DONE)));
    assert_eq!(d.result_text(), "Hello");
    assert_eq!(d.result().provider, "a");
    assert_eq!(log(&d), [pair("b", "aborted"), pair("a", "complete")]);
    assert_eq!(
        d.types().iter().filter(|t| **t == "headers").count(),
        1,
        "nothing is heard of the released hedge: {:?}",
        d.types()
    );
    d.closed.insert(A);
    d.assert_over_and_released();
}

#[test]
fn a_failure_while_the_other_runs_is_logged_and_the_other_carries_on() {
    let mut d = hedging(&["a", "b", "c"]);
    d.wake_at(150.0);
    d.feed(B, 160.0, Input::Head(head(503, "application/json")));
    d.feed(B, 161.0, bytes(r#"{"error":{"message":"busy"}}"#));
    d.feed(B, 162.0, Input::End);
    assert!(
        !d.types().contains(&"retry") && !d.types().contains(&"failover"),
        "nothing is decided while a runs: {:?}",
        d.types()
    );
    assert!(d.types().contains(&"attempt-failed"));
    assert_eq!(d.sent.len(), 2, "no third request");
    d.feed(A, 200.0, bytes(&(content("ok") + &finish("stop") + DONE)));
    assert_eq!(d.result_text(), "ok");
    assert_eq!(log(&d), [pair("b", "http"), pair("a", "complete")]);
    d.closed.insert(A);
    d.assert_over_and_released();
}

#[test]
fn when_the_survivor_fails_the_chain_goes_on_from_its_place() {
    let mut d = hedging(&["a", "b", "c"]);
    d.wake_at(150.0);
    d.feed(B, 160.0, Input::Head(sse_head()));
    // a stalls to its first-token deadline (300) while b waits for its first token.
    assert_eq!(d.wake(), 300.0);
    assert!(d.types().contains(&"timeout"));
    assert_eq!(d.sent.len(), 2, "b carries on");
    // b stalls to its own (150 + 300 = 450): then the next provider, c, is asked.
    assert_eq!(d.wake(), 450.0);
    let failovers: Vec<_> = d
        .events()
        .into_iter()
        .filter(|e| matches!(e, GuardEvent::Failover { .. }))
        .cloned()
        .collect();
    assert_eq!(
        failovers,
        [GuardEvent::Failover {
            from: "b".into(),
            to: "c".into(),
            reason: "timeout".into()
        }]
    );
    assert_eq!((d.sent[2].provider, d.sent[2].attempt), (2, AttemptId(2)));
    let id = d.last();
    d.feed(id, 460.0, Input::Head(sse_head()));
    d.feed(id, 470.0, bytes(&(content("c!") + &finish("stop") + DONE)));
    assert_eq!(d.result_text(), "c!");
    assert_eq!(
        log(&d),
        [
            pair("a", "timeout"),
            pair("b", "timeout"),
            pair("c", "complete")
        ]
    );
    assert_eq!(
        d.types().iter().filter(|t| **t == "hedge").count(),
        1,
        "at most one hedge per call"
    );
    d.closed.insert(id);
    d.assert_over_and_released();
}

#[test]
fn there_is_no_hedge_after_progress_without_a_next_provider_or_without_the_option() {
    // Progress before the wait: no hedge.
    let mut d = hedging(&["a", "b"]);
    d.feed(A, 100.0, bytes(&content("x")));
    assert_ne!(d.machine.poll_timeout(), Some(150.0));
    d.wake_at(400.0);
    assert_eq!(d.sent.len(), 1);
    assert!(!d.types().contains(&"hedge"));
    // One provider: nothing to hedge to.
    let mut d = hedging(&["a"]);
    assert_eq!(d.machine.poll_timeout(), Some(300.0));
    d.wake_at(200.0);
    assert_eq!(d.sent.len(), 1);
    // The option off: as before.
    let mut d = Driver::started(&["a", "b"]);
    d.feed(A, 10.0, Input::Head(sse_head()));
    assert_eq!(d.machine.poll_timeout(), Some(300.0));
}

#[test]
fn the_service_deadline_holds_for_both_attempts() {
    let mut c = config(vec![provider("a"), provider("b")]);
    c.service_ms = 250.0;
    for p in &mut c.providers {
        p.timeouts.first_token_ms = 1_000.0;
        p.timeouts.headers_ms = 1_000.0;
    }
    let mut d = Driver::guarded(c, hedge_after(150.0));
    d.start(0.0);
    d.wake_at(150.0);
    assert_eq!(d.sent.len(), 2);
    assert_eq!(d.machine.poll_timeout(), Some(250.0));
    d.wake_at(250.0);
    let error = d.error();
    assert_eq!(
        (error.kind, error.layer),
        ("timeout", Some("service")),
        "{error:?}"
    );
    assert_eq!(error.attempts.len(), 2, "{:?}", error.attempts);
    assert!(error.attempts.iter().all(|a| a.elapsed_ms <= 250.0));
    d.assert_over_and_released();
}

#[test]
fn a_cancel_during_the_race_releases_both() {
    let mut d = hedging(&["a", "b"]);
    d.wake_at(150.0);
    d.cancel(160.0, CancelReason::Signal);
    let mut cancelled = d.cancelled.clone();
    cancelled.sort();
    assert_eq!(cancelled, [A, B]);
    assert_eq!(d.error().kind, "aborted");
    let providers: Vec<_> = d
        .error()
        .attempts
        .iter()
        .map(|a| a.provider.as_str())
        .collect();
    assert_eq!(providers, ["a", "b"], "each under its own provider");
    d.assert_over_and_released();
    // Nothing was handed out for the released attempts after the cancel.
    assert!(matches!(
        d.heard.last(),
        Some(Delivery::Event(GuardEvent::Cancelled { .. }))
    ));
}

#[test]
fn a_json_answer_wins_the_race_at_its_end() {
    let mut c = config(vec![provider("a"), provider("b")]);
    c.stream = false;
    c.body_without_model = r#"{"messages":[{"role":"user","content":"hi"}],"stream":false}"#.into();
    let mut d = Driver::guarded(c, hedge_after(150.0));
    d.start(0.0);
    d.feed(A, 10.0, Input::Head(head(200, "application/json")));
    d.wake_at(150.0);
    assert_eq!(d.sent.len(), 2);
    let json = serde_json::json!({
        "id": "gen-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"},
                     "finish_reason": "stop"}]
    })
    .to_string();
    d.feed(A, 200.0, bytes(&json));
    assert!(
        d.cancelled.is_empty(),
        "a JSON body shows progress only once it is whole"
    );
    d.feed(A, 210.0, Input::End);
    assert!(d.cancelled.contains(&B), "the hedge is released");
    assert_eq!(d.result_text(), "whole");
    assert_eq!(log(&d), [pair("b", "aborted"), pair("a", "complete")]);
    d.assert_over_and_released();
}
