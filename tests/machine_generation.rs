//! The generation machine on a fake clock: answers, every deadline layer, retries, failover,
//! the partial rule and the messages, driven as a platform driver drives it.

#![cfg(not(target_arch = "wasm32"))]

mod machine_support;

use llm_stream_guard::core::events::GuardEvent;
use llm_stream_guard::core::machine::{AttemptId, CauseRef, Delivery, Generation, Head, Jitter};
use llm_stream_guard::core::policy::{Failure, RetryPolicy};
use machine_support::*;

fn lines_in(text: &str) -> f64 {
    text.matches('\n').count() as f64
}

#[test]
fn a_complete_answer_with_its_events_in_order() {
    let mut d = Driver::new(config(vec![provider("a"), provider("b")]));
    d.start(1_000.0);
    assert_eq!(d.types(), ["request-start"]);
    let request = d.sent[0].clone();
    assert_eq!((request.attempt, request.provider), (AttemptId(0), 0));
    assert_eq!(request.url, "https://a.example/v1/chat/completions");
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("Authorization"), Some(format!("Bearer {KEY}")));
    assert_eq!(header("Accept").as_deref(), Some("text/event-stream"));
    assert_eq!(header("X-Title").as_deref(), Some("test"));
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["model"], "a/model");
    assert_eq!(body["messages"][0]["content"], "hi");
    assert_eq!(
        d.machine.poll_timeout(),
        Some(1_100.0),
        "the headers deadline"
    );

    d.head(
        1_010.0,
        Head {
            generation_id: Some("gen-head".into()),
            ..sse_head()
        },
    );
    assert_eq!(
        d.machine.poll_timeout(),
        Some(1_300.0),
        "the first-token deadline"
    );
    let first = content("Hel");
    let rest = content("lo") + &finish("stop") + &usage(9, 2) + DONE;
    d.bytes(1_050.0, &first);
    assert_eq!(d.machine.poll_timeout(), Some(1_250.0), "the idle deadline");
    d.bytes(1_080.0, &rest);

    assert_eq!(
        d.transcript(),
        [
            "request-start",
            "headers",
            "first-token",
            "text:Hel",
            "text:lo",
            "stream-end",
            "done"
        ]
    );
    let events = d.events();
    assert_eq!(
        *events[1],
        GuardEvent::Headers {
            provider: "a".into(),
            status: 200,
            elapsed_ms: 10.0
        }
    );
    assert_eq!(
        *events[2],
        GuardEvent::FirstToken {
            provider: "a".into(),
            first_token_ms: 50.0
        }
    );
    let lines = lines_in(&first) + lines_in(&rest);
    assert_eq!(
        *events[3],
        GuardEvent::StreamEnd {
            provider: "a".into(),
            lines,
            chunks: 2.0,
            elapsed_ms: 80.0
        }
    );
    assert_eq!(
        *events[4],
        GuardEvent::Done {
            provider: "a".into(),
            partial: false,
            elapsed_ms: 80.0
        }
    );
    let result = d.result();
    assert_eq!(d.result_text(), "Hello");
    assert!(!result.partial && result.cause.is_none());
    assert_eq!(result.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        (result.provider.as_str(), result.model.as_str()),
        ("a", "served/model")
    );
    let usage = result.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (9, 2, 11)
    );
    assert_eq!(result.generation_id.as_deref(), Some("gen-head"));
    assert_eq!(result.stats.lines as f64, lines);
    assert_eq!(result.stats.chunks, 2);
    assert_eq!(result.stats.first_token_ms, Some(50.0));
    assert_eq!(result.stats.elapsed_ms, 80.0);
    assert_eq!(result.attempts.len(), 1);
    let record = &result.attempts[0];
    assert_eq!(
        (
            record.provider.as_str(),
            record.outcome.as_str(),
            record.status,
            record.elapsed_ms
        ),
        ("a", "complete", Some(200), 80.0)
    );
    // The body was still open after [DONE]: the machine lets it read its end (a connection
    // cut a few bytes early cannot be used again), and cuts nothing.
    assert_eq!(d.finished, [AttemptId(0)]);
    assert!(d.cancelled.is_empty());
    d.assert_over_and_released();
    assert!(!d.everything_said().contains(KEY));
}

#[test]
fn nothing_is_sent_before_request_start_is_handed_out() {
    let mut machine = Generation::new(config(vec![provider("a")]));
    machine.start(0.0);
    assert_eq!(
        machine.poll_action(),
        None,
        "the send waits for its announcement"
    );
    assert!(matches!(
        machine.poll_delivery(),
        Some(Delivery::Event(GuardEvent::RequestStart { attempt: 1, .. }))
    ));
    assert!(matches!(
        machine.poll_action(),
        Some(llm_stream_guard::core::machine::Action::Send(_))
    ));
}

#[test]
fn an_early_or_spurious_timer_does_nothing() {
    let mut d = Driver::started(&["a"]);
    let heard = d.heard.len();
    for early in [0.0, 50.0, 99.0, 99.999] {
        d.wake_at(early);
        assert_eq!(d.heard.len(), heard, "woken at {early}");
        assert_eq!(d.machine.poll_timeout(), Some(100.0));
        assert!(d.cancelled.is_empty() && d.sent.len() == 1);
    }
    d.head(99.999, sse_head());
    d.bytes(100.0, &content("x"));
    d.wake_at(299.9); // the idle deadline is 300
    assert_eq!(d.text(), "x");
    assert!(!d.machine.is_settled());
    d.wake_at(300.0);
    assert!(d.result().partial);
    d.assert_over_and_released();
}

/// How a single-provider call with one deadline cut it ended.
fn timed_out_error(d: &Driver) -> (&'static str, &'static str, String) {
    let error = d.error();
    assert_eq!(error.kind, "timeout");
    (
        error.layer.unwrap(),
        error.phase.unwrap(),
        error.message.clone(),
    )
}

#[test]
fn no_headers_is_a_provider_headers_timeout() {
    let mut d = Driver::started(&["a"]);
    assert_eq!(d.wake(), 100.0);
    assert_eq!(
        timed_out_error(&d),
        (
            "provider",
            "headers",
            "provider headers timeout: a after 100 ms (0 lines, 0 content chunks)".into()
        )
    );
    assert_eq!(d.types(), ["request-start", "timeout", "attempt-failed"]);
    assert_eq!(
        *d.events()[1],
        GuardEvent::Timeout {
            provider: "a".into(),
            layer: "provider",
            phase: "headers",
            lines: 0.0,
            chunks: 0.0,
            elapsed_ms: 100.0
        }
    );
    let error = d.error();
    assert_eq!(error.status, None);
    assert_eq!(error.attempts[0].outcome, "timeout");
    assert_eq!(error.attempts[0].status, None);
    assert_eq!(d.cancelled, [AttemptId(0)]);
    d.assert_over_and_released();
}

#[test]
fn keepalives_are_not_progress_so_first_token_times_out() {
    let mut d = Driver::streaming(&["a"]);
    for t in [60.0, 160.0, 260.0] {
        d.bytes(t, KEEPALIVE);
    }
    assert_eq!(d.wake(), 300.0);
    let lines = 3.0 * lines_in(KEEPALIVE);
    assert_eq!(
        timed_out_error(&d),
        (
            "provider",
            "first-token",
            format!(
                "provider first-token timeout: a after 300 ms ({lines} lines, 0 content chunks)"
            )
        )
    );
    assert_eq!(d.error().attempts[0].status, Some(200));
    assert_eq!(
        d.error().status,
        None,
        "only an http failure carries a status"
    );
    d.assert_over_and_released();
}

#[test]
fn silence_after_text_is_an_idle_timeout_and_a_partial_answer() {
    let mut d = Driver::streaming(&["a", "b"]);
    d.bytes(50.0, &content("Hi"));
    d.bytes(150.0, KEEPALIVE); // bytes, not progress: idle still counts from 50
    assert_eq!(d.wake(), 250.0);
    let result = d.result();
    assert!(result.partial);
    assert_eq!(d.result_text(), "Hi");
    let cause = result.cause.as_ref().unwrap();
    assert_eq!((cause.kind, cause.phase), ("timeout", Some("idle")));
    let lines = lines_in(&content("Hi")) + lines_in(KEEPALIVE);
    assert_eq!(
        cause.message,
        format!("provider idle timeout: a after 250 ms ({lines} lines, 1 content chunks)")
    );
    assert_eq!(cause.cause, None);
    assert_eq!(
        d.transcript(),
        [
            "request-start",
            "headers",
            "first-token",
            "text:Hi",
            "timeout",
            "done"
        ]
    );
    assert!(matches!(
        d.events()[4],
        GuardEvent::Done { partial: true, .. }
    ));
    assert_eq!(d.sent.len(), 1, "a partial answer never fails over");
    assert_eq!(result.attempts[0].outcome, "partial");
    d.assert_over_and_released();
}

#[test]
fn steady_progress_is_cut_by_the_stream_deadline() {
    let mut d = Driver::streaming(&["a"]);
    let mut t = 100.0;
    while t < 2_000.0 {
        d.bytes(t, &content("."));
        t += 150.0;
    }
    assert_eq!(d.wake(), 2_000.0);
    let result = d.result();
    assert!(result.partial);
    assert_eq!(result.cause.as_ref().unwrap().phase, Some("stream"));
    assert_eq!(d.result_text(), ".".repeat(result.stats.chunks as usize));
    assert!(matches!(
        d.events().iter().find(|e| e.type_name() == "timeout"),
        Some(GuardEvent::Timeout {
            layer: "provider",
            phase: "stream",
            ..
        })
    ));
    d.assert_over_and_released();
}

#[test]
fn the_service_deadline_wins_and_stops_the_chain() {
    let mut cfg = config(vec![provider("a"), provider("b")]);
    cfg.service_ms = 250.0; // before a's first-token deadline (300)
    let mut d = Driver::new(cfg);
    d.start(0.0);
    d.head(10.0, sse_head());
    assert_eq!(d.wake(), 250.0);
    let (layer, phase, message) = timed_out_error(&d);
    assert_eq!((layer, phase), ("service", "first-token"));
    assert!(
        message.starts_with("service first-token timeout: a after 250 ms"),
        "{message}"
    );
    assert_eq!(d.sent.len(), 1, "a service timeout does not fail over");
    d.assert_over_and_released();
}

#[test]
fn a_503_is_retried_after_a_jittered_back_off_then_the_chain_fails_over() {
    let mut a = provider("a");
    a.max_retries = 1;
    let cfg = config(vec![a, provider("b")]);
    let expected_delay = RetryPolicy::default().backoff_ms(0, Jitter::new(cfg.jitter_seed).draw());
    let mut d = Driver::new(cfg);
    d.start(0.0);
    let busy = r#"{"error":{"code":503,"message":"busy right now"}}"#;
    d.head(10.0, head(503, "application/json"));
    d.bytes(12.0, busy);
    d.end(15.0);
    assert_eq!(
        d.types(),
        ["request-start", "headers", "attempt-failed", "retry"]
    );
    assert_eq!(
        *d.events()[2],
        GuardEvent::AttemptFailed {
            provider: "a".into(),
            kind: "http",
            status: Some(503),
            message: "HTTP 503 from a: busy right now".into()
        }
    );
    assert_eq!(
        *d.events()[3],
        GuardEvent::Retry {
            provider: "a".into(),
            attempt: 2,
            delay_ms: expected_delay,
            reason: "http".into()
        }
    );
    let due = 15.0 + expected_delay;
    assert_eq!(d.machine.poll_timeout(), Some(due));
    d.wake_at(due - 0.001);
    assert_eq!(d.sent.len(), 1, "the back-off is not over yet");
    d.wake_at(due);
    assert_eq!(d.sent.len(), 2);
    assert_eq!((d.sent[1].attempt, d.sent[1].provider), (AttemptId(1), 0));
    assert!(matches!(
        d.events().last(),
        Some(GuardEvent::RequestStart { attempt: 2, .. })
    ));

    d.head(due + 5.0, head(503, "application/json"));
    d.end(due + 6.0);
    let failover = GuardEvent::Failover {
        from: "a".into(),
        to: "b".into(),
        reason: "http".into(),
    };
    assert!(d.events().contains(&&failover));
    assert_eq!((d.sent[2].attempt, d.sent[2].provider), (AttemptId(2), 1));
    assert!(
        d.sent[2].headers.iter().all(|(n, _)| n != "Authorization"),
        "b has no key"
    );
    let body: serde_json::Value = serde_json::from_str(&d.sent[2].body).unwrap();
    assert_eq!(body["model"], "b/model");

    d.head(due + 10.0, sse_head());
    d.bytes(due + 20.0, &(content("from b") + &finish("stop") + DONE));
    d.end(due + 21.0);
    let result = d.result();
    assert_eq!(
        (d.result_text().as_str(), result.provider.as_str()),
        ("from b", "b")
    );
    let log: Vec<(&str, &str, Option<u16>)> = result
        .attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome.as_str(), a.status))
        .collect();
    assert_eq!(
        log,
        [
            ("a", "http", Some(503)),
            ("a", "http", Some(503)),
            ("b", "complete", Some(200))
        ]
    );
    d.assert_over_and_released();
}

#[test]
fn http_400_stops_the_call_with_the_servers_message() {
    let mut d = Driver::started(&["a", "b"]);
    d.head(10.0, head(400, "application/json"));
    d.bytes(11.0, r#"{"error":{"message":"messages: field required"}}"#);
    d.end(12.0);
    let error = d.error();
    assert_eq!((error.kind, error.status), ("http", Some(400)));
    assert_eq!(error.message, "HTTP 400 from a: messages: field required");
    assert_eq!(error.provider, "a");
    assert_eq!(
        d.sent.len(),
        1,
        "every provider would refuse the same request"
    );
    assert_eq!(d.types(), ["request-start", "headers", "attempt-failed"]);
    d.assert_over_and_released();
}

#[test]
fn retry_after_is_honoured_in_seconds_and_as_a_date() {
    for (retry_after, unix_ms, delay) in [
        ("2", 0.0, 2_000.0),
        ("Sun, 06 Nov 1994 08:49:40 GMT", 784_111_777_000.0, 3_000.0),
    ] {
        let mut d = Driver::started(&["a"]);
        d.head(
            10.0,
            Head {
                retry_after: Some(retry_after.into()),
                unix_ms,
                ..head(429, "application/json")
            },
        );
        d.end(20.0);
        assert!(
            matches!(d.events().last(), Some(GuardEvent::Retry { delay_ms, .. }) if *delay_ms == delay),
            "{retry_after}: {:?}",
            d.events()
        );
        assert_eq!(d.machine.poll_timeout(), Some(20.0 + delay));
        assert_eq!(d.wake(), 20.0 + delay);
        assert_eq!(d.sent.len(), 2);
    }
}

#[test]
fn an_error_body_is_read_only_up_to_its_bound_and_its_deadline() {
    let mut d = Driver::started(&["a"]);
    d.head(10.0, head(404, "text/plain"));
    d.bytes(20.0, "no such ");
    // The server's message is best effort: at the first-token deadline it is what arrived.
    assert_eq!(d.wake(), 300.0);
    let error = d.error();
    assert_eq!(error.message, "HTTP 404 from a: no such");
    assert!(
        !d.types().contains(&"timeout"),
        "an error body has no timeout event"
    );
    assert_eq!(d.cancelled, [AttemptId(0)]);
    d.assert_over_and_released();

    let mut d = Driver::started(&["a"]);
    d.head(10.0, head(404, "text/plain"));
    d.bytes(20.0, &"x".repeat(16 * 1024 + 10));
    assert!(d.machine.is_settled(), "16 KiB is enough to quote");
    assert_eq!(d.cancelled, [AttemptId(0)], "the rest is not read");
}

#[test]
fn an_upstream_error_after_text_is_partial_and_before_text_fails_over() {
    let mut d = Driver::streaming(&["a", "b"]);
    d.bytes(
        20.0,
        &(content("Hal") + &upstream_error(502, "Provider returned error") + DONE),
    );
    let result = d.result();
    assert!(result.partial);
    let cause = result.cause.as_ref().unwrap();
    assert_eq!(cause.kind, "upstream");
    assert_eq!(
        cause.message,
        "a reported an error 502: Provider returned error"
    );
    assert_eq!(cause.phase, None);
    d.assert_over_and_released();

    let mut d = Driver::streaming(&["a", "b"]);
    d.bytes(
        20.0,
        &(upstream_error(502, &format!("bad key {KEY}")) + DONE),
    );
    assert!(d.events().iter().any(|e| matches!(e,
        GuardEvent::AttemptFailed { kind: "upstream", message, .. }
            if message == "a reported an error 502: bad key [redacted]")));
    assert_eq!(d.sent.len(), 2);
    assert!(!d.everything_said().contains(&KEY[..8]));
}

#[test]
fn an_empty_answer_is_reported_and_fails() {
    let mut d = Driver::streaming(&["a"]);
    d.bytes(20.0, &(KEEPALIVE.to_owned() + DONE));
    d.end(21.0);
    assert_eq!(
        d.types(),
        [
            "request-start",
            "headers",
            "stream-end",
            "empty-response",
            "attempt-failed"
        ]
    );
    let lines = lines_in(KEEPALIVE) + lines_in(DONE);
    assert_eq!(
        *d.events()[3],
        GuardEvent::EmptyResponse {
            provider: "a".into(),
            lines
        }
    );
    let error = d.error();
    assert_eq!(
        (error.kind, error.message.as_str()),
        ("upstream", "empty response from a")
    );
    assert_eq!(error.failure, Failure::Empty);
    d.assert_over_and_released();
}

#[test]
fn a_page_instead_of_a_stream_is_a_protocol_failure() {
    let mut d = Driver::started(&["a", "b"]);
    d.head(10.0, head(200, "text/html; charset=utf-8"));
    assert_eq!(d.cancelled, [AttemptId(0)], "its body is never read");
    assert!(d.events().iter().any(|e| matches!(e,
        GuardEvent::AttemptFailed { kind: "protocol", message, .. }
            if message == "a answered 200 with content type text/html; charset=utf-8, not SSE or JSON")));
    assert_eq!(d.sent[1].provider, 1);

    let mut d = Driver::started(&["a"]);
    d.head(
        10.0,
        Head {
            has_body: false,
            ..sse_head()
        },
    );
    assert!(d.events().iter().any(|e| matches!(e,
        GuardEvent::AttemptFailed { kind: "network", message, .. }
            if message == "a answered 200 without a body")));
    assert!(d.cancelled.is_empty(), "there is nothing to release");
}

#[test]
fn network_failures_keep_keys_out_and_point_at_the_platforms_error() {
    // A failed request: retried (network errors are retryable), message redacted.
    let mut d = Driver::started(&["a"]);
    d.request_error(
        5.0,
        &format!("connect refused for https://u:p@h/?key={KEY}"),
    );
    let failed = d.events()[1].clone();
    assert_eq!(
        failed,
        GuardEvent::AttemptFailed {
            provider: "a".into(),
            kind: "network",
            status: None,
            message:
                "request to a failed: connect refused for https://[redacted]@h/?key=[redacted]"
                    .into()
        }
    );
    assert_eq!(d.types().last(), Some(&"retry"));

    // A read that fails after text: a partial answer whose cause is the platform's error.
    let mut d = Driver::streaming(&["a"]);
    d.bytes(20.0, &content("partly"));
    d.read_error(30.0, &format!("socket hang up ({})", &KEY[4..20]));
    let result = d.result();
    assert!(result.partial);
    let cause = result.cause.as_ref().unwrap();
    assert_eq!(
        cause.message,
        "reading from a failed: socket hang up ([redacted])"
    );
    assert_eq!(cause.cause, Some(CauseRef::Platform(AttemptId(0))));
    assert!(d.cancelled.is_empty(), "the platform closed it already");
    d.assert_over_and_released();
}

#[test]
fn a_json_answer_and_tool_calls_are_assembled() {
    let mut cfg = config(vec![provider("a")]);
    cfg.stream = false;
    let mut d = Driver::new(cfg);
    d.start(0.0);
    assert!(d.sent[0]
        .headers
        .contains(&("Accept".into(), "application/json".into())));
    d.head(10.0, head(200, "application/json"));
    let body = serde_json::json!({
        "id": "gen-json", "model": "m/x", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole",
            "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            "finish_reason": "tool_calls"}]
    })
    .to_string();
    let (one, two) = body.split_at(body.len() / 2);
    d.bytes(20.0, one);
    d.bytes(30.0, two);
    d.end(31.0);
    let result = d.result();
    assert_eq!(d.result_text(), "whole");
    assert_eq!(result.generation_id.as_deref(), Some("gen-json"));
    assert_eq!(result.tool_calls.len(), 1);
    assert_eq!(result.tool_calls[0].name, "get_weather");
    assert_eq!(result.tool_calls[0].arguments, "{\"city\":\"Paris\"}");
    assert_eq!(result.stats.first_token_ms, Some(31.0));
    d.assert_over_and_released();

    let mut d = Driver::started(&["a"]);
    d.head(10.0, head(200, "application/json"));
    d.bytes(20.0, r#"{"choices": [{"delta""#);
    d.end(21.0);
    assert!(d.events().iter().any(|e| matches!(e,
        GuardEvent::AttemptFailed { kind: "protocol", message, .. }
            if message == "a sent a JSON body that is not a chat completion")));
}

#[test]
fn a_stream_that_ends_without_done_is_cut_unless_it_finished() {
    let mut d = Driver::streaming(&["a"]);
    d.bytes(20.0, &content("cut"));
    d.end(30.0);
    let cause = d.result().cause.clone().unwrap();
    assert_eq!(cause.kind, "network");
    assert_eq!(cause.message, "the stream from a ended before [DONE]");
    assert!(!d.types().contains(&"stream-end"));

    let mut d = Driver::streaming(&["a"]);
    d.bytes(20.0, &(content("done") + &finish("stop")));
    d.end(30.0);
    assert!(!d.result().partial);
    assert!(d.types().contains(&"stream-end"));
    // Bytes after the end, or after [DONE], change nothing.
    d.bytes(40.0, &content("late"));
    assert_eq!(d.text(), "done");
    d.assert_over_and_released();
}

#[test]
fn a_back_off_woken_after_the_service_deadline_asks_no_one() {
    let mut d = Driver::started(&["a"]);
    d.head(10.0, head(503, "application/json"));
    d.end(11.0);
    assert!(d.machine.poll_timeout().unwrap() < limits().service_ms);
    // The timer comes back late, after the whole call's deadline.
    d.wake_at(limits().service_ms + 1.0);
    assert_eq!(d.sent.len(), 1);
    let error = d.error();
    assert_eq!(
        (error.kind, error.layer, error.phase),
        ("timeout", Some("service"), Some("headers"))
    );
    assert_eq!(
        error.message,
        format!(
            "service timeout: {} ms passed before a could be asked",
            limits().service_ms
        )
    );
    assert_eq!(d.types().last(), Some(&"retry"), "no request-start for it");
    d.assert_over_and_released();
}

#[test]
fn relayed_and_malformed_events_come_between_the_texts_around_them() {
    let mut d = Driver::streaming(&["a"]);
    let relayed = r#"{"type":"retry","attempt":2}"#;
    let malformed = "{\"id\": [";
    let read = content("one ")
        + &format!("event: guard\ndata: {relayed}\n\n")
        + &format!("data: {malformed}\n\n")
        + &content("two")
        + &finish("stop")
        + DONE;
    d.bytes(20.0, &read);
    assert_eq!(
        d.transcript(),
        [
            "request-start",
            "headers",
            "first-token",
            "text:one ",
            "upstream-event",
            "malformed",
            "text:two",
            "stream-end",
            "done"
        ]
    );
    assert_eq!(
        *d.events()[3],
        GuardEvent::UpstreamEvent {
            provider: "a".into(),
            event: relayed.into()
        }
    );
    assert!(matches!(d.events()[4],
        GuardEvent::Malformed { provider, reason, bytes }
            if provider == "a" && reason.contains("JSON")
                && *bytes == malformed.len() as f64));
    assert_eq!(d.result_text(), "one two");
}
