//! The relay machine (`core::relay`, what `guardFetch()` drives) on a fake clock: held bytes
//! until the first progress, invisible failover, byte-identical pass-through, cuts as `onCut`
//! says, the failure response, refusals passed through, other requests, cancels.

use llm_stream_guard::core::deadline::Timeouts;
use llm_stream_guard::core::events::GuardEvent;
use llm_stream_guard::core::machine::{AttemptId, BodyError, Head};
use llm_stream_guard::core::policy::RetryPolicy;
use llm_stream_guard::core::relay::{
    OnCut, Outgoing, Relay, RelayAction, RelayConfig, RelayDelivery, RelayProvider, RequestKind,
    SdkRequest,
};

const OWN_KEY: &str = "sk-own-secret-0123456789";
const FALLBACK_KEY: &str = "sk-fallback-secret-9876543210";

fn timeouts() -> Timeouts {
    Timeouts {
        headers_ms: 100.0,
        first_token_ms: 200.0,
        idle_ms: 150.0,
        stream_ms: 5_000.0,
        service_ms: 10_000.0,
    }
}

fn sdk_request(method: &str, url: &str, body: Option<&str>) -> SdkRequest {
    SdkRequest {
        method: method.into(),
        url: url.into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {OWN_KEY}")),
            ("x-stainless-lang".into(), "js".into()),
        ],
        body: body.map(str::to_owned),
    }
}

fn config(request: SdkRequest, on_cut: OnCut, retries: u32) -> RelayConfig {
    RelayConfig {
        request,
        timeouts: timeouts(),
        max_retries: retries,
        fallbacks: vec![RelayProvider {
            name: "local".into(),
            url: "http://127.0.0.1:9/v1/chat/completions".into(),
            model: "local-model".into(),
            api_key: Some(FALLBACK_KEY.into()),
            headers: vec![("X-Extra".into(), "1".into())],
            timeouts: timeouts(),
            max_retries: 0,
        }],
        policy: RetryPolicy {
            max_retries: retries,
            base_delay_ms: 10.0,
            max_delay_ms: 10.0,
        },
        max_event_bytes: 64 * 1024,
        on_cut,
        jitter_seed: 7,
    }
}

const CHAT_BODY: &str = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,\"stream_options\":{\"include_usage\":true}}";

fn chat_relay(on_cut: OnCut, retries: u32) -> Relay {
    let request = sdk_request(
        "POST",
        "http://127.0.0.1:8/v1/chat/completions",
        Some(CHAT_BODY),
    );
    Relay::new(config(request, on_cut, retries))
}

/// Everything the relay handed out, drained.
#[derive(Default, Debug)]
struct Seen {
    sent: Vec<Outgoing>,
    cancelled: Vec<AttemptId>,
    /// Attempts whose answer was whole: their transport reads the body's end.
    finished: Vec<AttemptId>,
    events: Vec<GuardEvent>,
    commits: Vec<(AttemptId, u16)>,
    responds: Vec<(u16, String)>,
    body: Vec<u8>,
    closed: bool,
    failed: Option<llm_stream_guard::core::relay::CutError>,
    /// Deliveries in order, by name.
    order: Vec<&'static str>,
}

fn drain(relay: &mut Relay, seen: &mut Seen) {
    loop {
        if let Some(action) = relay.poll_action() {
            match action {
                RelayAction::Send(out) => seen.sent.push(out),
                RelayAction::Cancel { attempt } => seen.cancelled.push(attempt),
                RelayAction::Finish { attempt } => seen.finished.push(attempt),
            }
        } else if let Some(delivery) = relay.poll_delivery() {
            match delivery {
                RelayDelivery::Event(e) => {
                    seen.order.push(e.type_name());
                    seen.events.push(e)
                }
                RelayDelivery::Commit { attempt, status } => {
                    seen.order.push("commit");
                    seen.commits.push((attempt, status))
                }
                RelayDelivery::Respond { status, body } => {
                    seen.order.push("respond");
                    seen.responds.push((status, body))
                }
                RelayDelivery::Bytes(bytes) => {
                    seen.order.push("bytes");
                    seen.body.extend_from_slice(&bytes)
                }
                RelayDelivery::Close => {
                    seen.order.push("close");
                    seen.closed = true
                }
                RelayDelivery::Fail(error) => {
                    seen.order.push("fail");
                    seen.failed = Some(error)
                }
                RelayDelivery::Open => seen.order.push("open"),
            }
        } else {
            return;
        }
    }
}

fn sse_head(status: u16) -> Head {
    Head {
        status,
        content_type: Some("text/event-stream".into()),
        has_body: true,
        ..Head::default()
    }
}

fn json_head(status: u16) -> Head {
    Head {
        status,
        content_type: Some("application/json".into()),
        has_body: true,
        ..Head::default()
    }
}

const ROLE: &str = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
const TEXT: &str = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"logprobs\":{\"content\":[]}}],\"x_extra\":1}\n\n";
const TOOL: &str = "data: {\"id\":\"c-1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n";
const FINISH: &str = "data: {\"id\":\"c-1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

fn first(seen: &Seen) -> AttemptId {
    seen.sent[0].attempt
}

#[test]
fn a_stream_is_held_until_its_first_progress_then_passed_through_byte_for_byte() {
    let mut relay = chat_relay(OnCut::Error, 0);
    assert_eq!(relay.kind(), RequestKind::Stream);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.sent.len(), 1);
    let own = &seen.sent[0];
    assert_eq!(own.body, None, "attempt 0 sends the SDK's own body");
    assert_eq!(own.url, "http://127.0.0.1:8/v1/chat/completions");
    assert_eq!(own.headers, sdk_request("POST", "", None).headers);
    let id = first(&seen);
    relay.head(id, 10.0, sse_head(200));
    relay.body_bytes(id, 20.0, b": keepalive\n\n");
    relay.body_bytes(id, 30.0, ROLE.as_bytes());
    drain(&mut relay, &mut seen);
    assert!(
        seen.commits.is_empty(),
        "a comment and a role chunk are not progress"
    );
    assert!(seen.body.is_empty(), "nothing handed out before the commit");
    // Split in the middle of the text chunk: the commit waits for the whole event.
    let (a, b) = TEXT.split_at(40);
    relay.body_bytes(id, 40.0, a.as_bytes());
    drain(&mut relay, &mut seen);
    assert!(seen.commits.is_empty());
    relay.body_bytes(id, 50.0, b.as_bytes());
    drain(&mut relay, &mut seen);
    assert_eq!(seen.commits, [(id, 200)]);
    for (t, part) in [
        (60.0, TOOL),
        (70.0, ": ping\n\n"),
        (80.0, FINISH),
        (90.0, DONE),
    ] {
        relay.body_bytes(id, t, part.as_bytes());
    }
    drain(&mut relay, &mut seen);
    let upstream = [
        ": keepalive\n\n",
        ROLE,
        TEXT,
        TOOL,
        ": ping\n\n",
        FINISH,
        DONE,
    ]
    .concat();
    assert_eq!(String::from_utf8(seen.body.clone()).unwrap(), upstream);
    assert!(seen.closed && seen.failed.is_none());
    assert!(relay.is_settled());
    assert_eq!(seen.finished, [id], "let end once its end marker arrived");
    assert!(
        seen.cancelled.is_empty(),
        "a whole answer's connection is not cut"
    );
    let first_token = seen.events.iter().find_map(|e| match e {
        GuardEvent::FirstToken { first_token_ms, .. } => Some(*first_token_ms),
        _ => None,
    });
    assert_eq!(first_token, Some(50.0));
    assert_eq!(seen.order.last(), Some(&"done"));
}

#[test]
fn a_stall_before_the_first_token_fails_over_invisibly_with_the_model_replaced() {
    let mut relay = chat_relay(OnCut::Error, 0);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let own = first(&seen);
    relay.head(own, 10.0, sse_head(200));
    relay.body_bytes(own, 20.0, ROLE.as_bytes());
    relay.body_bytes(own, 120.0, b": still here\n\n");
    drain(&mut relay, &mut seen);
    assert_eq!(
        relay.poll_timeout(),
        Some(200.0),
        "keepalives do not move first-token"
    );
    relay.handle_timeout(199.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.sent.len(), 1, "nothing is due early");
    relay.handle_timeout(200.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.cancelled, [own], "the stalled attempt is released");
    assert_eq!(seen.sent.len(), 2);
    let fallback = &seen.sent[1];
    assert_eq!(fallback.url, "http://127.0.0.1:9/v1/chat/completions");
    assert_eq!(
        fallback.body.as_deref(),
        Some(CHAT_BODY.replace("gpt-4o-mini", "local-model").as_str()),
        "only the model changed, in place"
    );
    let auth: Vec<_> = fallback
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .collect();
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].1, format!("Bearer {FALLBACK_KEY}"));
    assert!(fallback
        .headers
        .iter()
        .any(|(n, v)| n == "X-Extra" && v == "1"));
    assert!(
        seen.commits.is_empty() && seen.body.is_empty(),
        "the SDK saw nothing yet"
    );
    let id = fallback.attempt;
    relay.head(id, 210.0, sse_head(200));
    relay.body_bytes(id, 220.0, [ROLE, TEXT].concat().as_bytes());
    relay.body_bytes(id, 230.0, [FINISH, DONE].concat().as_bytes());
    relay.body_end(id, 231.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.commits, [(id, 200)]);
    assert_eq!(seen.body, [ROLE, TEXT, FINISH, DONE].concat().as_bytes());
    assert!(seen.closed);
    let kinds: Vec<&str> = seen.events.iter().map(|e| e.type_name()).collect();
    assert!(
        kinds.contains(&"failover") && kinds.contains(&"timeout"),
        "{kinds:?}"
    );
    let text = format!("{:?}", seen.events);
    assert!(!text.contains(OWN_KEY) && !text.contains(FALLBACK_KEY));
}

#[test]
fn a_cut_after_text_errors_the_body_or_finishes_it_as_on_cut_says() {
    for on_cut in [OnCut::Error, OnCut::Finish] {
        let mut relay = chat_relay(on_cut, 0);
        let mut seen = Seen::default();
        relay.start(0.0);
        drain(&mut relay, &mut seen);
        let id = first(&seen);
        relay.head(id, 10.0, sse_head(200));
        relay.body_bytes(id, 20.0, [ROLE, TEXT].concat().as_bytes());
        drain(&mut relay, &mut seen);
        assert_eq!(seen.commits.len(), 1);
        assert_eq!(
            relay.poll_timeout(),
            Some(170.0),
            "idle from the last progress"
        );
        relay.body_bytes(id, 100.0, b": keepalive\n\n");
        relay.handle_timeout(170.0);
        drain(&mut relay, &mut seen);
        assert_eq!(seen.sent.len(), 1, "no failover after the commit");
        assert_eq!(seen.cancelled, [id], "the upstream is released at the cut");
        let text = String::from_utf8(seen.body.clone()).unwrap();
        assert!(text.starts_with(&[ROLE, TEXT, ": keepalive\n\n"].concat()));
        match on_cut {
            OnCut::Error => {
                let error = seen.failed.clone().expect("the body errors");
                assert_eq!(
                    (error.kind.as_str(), error.phase),
                    ("timeout", Some("idle"))
                );
                assert!(!seen.closed);
                assert_eq!(text, [ROLE, TEXT, ": keepalive\n\n"].concat());
            }
            OnCut::Finish => {
                assert!(seen.failed.is_none() && seen.closed);
                let tail = &text[[ROLE, TEXT, ": keepalive\n\n"].concat().len()..];
                assert!(tail.starts_with("data: {\"id\":\"c-1\""), "{tail}");
                assert!(tail.contains("\"finish_reason\":\"error\""), "{tail}");
                assert!(tail.contains("\"error\":{\"message\":\"provider idle timeout"));
                assert!(tail.ends_with("data: [DONE]\n\n"));
            }
        }
        assert!(matches!(
            seen.events.last(),
            Some(GuardEvent::Done { partial: true, .. })
        ));
    }
}

#[test]
fn a_body_cut_without_its_end_marker_is_a_cut_but_after_a_finish_reason_it_is_whole() {
    let mut relay = chat_relay(OnCut::Error, 0);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let id = first(&seen);
    relay.head(id, 10.0, sse_head(200));
    relay.body_bytes(id, 20.0, TEXT.as_bytes());
    relay.body_error(id, 30.0, BodyError::Read(format!("reset ({OWN_KEY})")));
    drain(&mut relay, &mut seen);
    let error = seen.failed.expect("cut");
    assert_eq!(error.kind.as_str(), "network");
    assert!(!error.message.contains(OWN_KEY), "{}", error.message);

    let mut relay = chat_relay(OnCut::Error, 0);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let id = first(&seen);
    relay.head(id, 10.0, sse_head(200));
    relay.body_bytes(id, 20.0, [TEXT, FINISH].concat().as_bytes());
    relay.body_end(id, 30.0);
    drain(&mut relay, &mut seen);
    assert!(seen.closed && seen.failed.is_none());
}

#[test]
fn everything_failing_gives_one_failure_response_naming_every_attempt() {
    let mut relay = chat_relay(OnCut::Error, 0);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    relay.handle_timeout(100.0); // own endpoint: no headers
    drain(&mut relay, &mut seen);
    let fallback = seen.sent[1].attempt;
    relay.head(fallback, 150.0, sse_head(200));
    relay.body_bytes(fallback, 160.0, b": x\n\n");
    relay.handle_timeout(300.0); // first token: 100 + 200
    drain(&mut relay, &mut seen);
    assert_eq!(seen.sent.len(), 2);
    assert!(seen.commits.is_empty() && seen.body.is_empty());
    assert_eq!(seen.responds.len(), 1);
    let (status, body) = &seen.responds[0];
    assert_eq!(*status, 504);
    assert!(
        body.contains("127.0.0.1:8: provider headers timeout"),
        "{body}"
    );
    assert!(
        body.contains("local: provider first-token timeout"),
        "{body}"
    );
    assert!(body.contains("\"code\":\"timeout\""), "{body}");
    assert!(body.contains("\"attempts\":[{\"provider\":\"127.0.0.1:8\",\"outcome\":\"timeout\"}"));
    assert!(!body.contains(OWN_KEY) && !body.contains(FALLBACK_KEY));
    assert!(relay.is_settled());
    assert_eq!(seen.cancelled.len(), 2, "both attempts released");
}

#[test]
fn a_server_error_is_retried_then_failed_over_and_reported_as_502() {
    let mut relay = chat_relay(OnCut::Error, 1);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let own = first(&seen);
    relay.head(own, 5.0, json_head(503));
    relay.body_bytes(
        own,
        6.0,
        format!("{{\"error\":{{\"message\":\"busy {OWN_KEY}\"}}}}").as_bytes(),
    );
    relay.body_end(own, 7.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.sent.len(), 1, "the retry waits out its back-off");
    let due = relay.poll_timeout().expect("a back-off");
    assert!(due > 7.0 && due <= 17.0, "{due}");
    relay.handle_timeout(due);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.sent.len(), 2);
    assert_eq!(
        seen.sent[1].body, None,
        "a retry of the own endpoint sends the SDK's body"
    );
    let again = seen.sent[1].attempt;
    relay.request_error(again, due + 1.0, "connection refused");
    drain(&mut relay, &mut seen);
    assert_eq!(seen.sent.len(), 3, "then the fallback");
    let fallback = seen.sent[2].attempt;
    relay.head(fallback, due + 2.0, json_head(500));
    relay.body_end(fallback, due + 3.0);
    drain(&mut relay, &mut seen);
    let (status, body) = &seen.responds[0];
    assert_eq!(*status, 502);
    assert!(body.contains("HTTP 503 from 127.0.0.1:8: busy"), "{body}");
    assert!(!body.contains(OWN_KEY), "{body}");
    assert!(body.contains("local: HTTP 500"), "{body}");
}

#[test]
fn a_refusal_is_passed_through_as_the_upstream_sent_it() {
    let mut relay = chat_relay(OnCut::Error, 2);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let own = first(&seen);
    let refusal = b"{\"error\":{\"message\":\"bad param\",\"type\":\"invalid_request_error\"}}";
    relay.head(own, 5.0, json_head(400));
    relay.body_bytes(own, 6.0, refusal);
    relay.body_end(own, 7.0);
    drain(&mut relay, &mut seen);
    assert_eq!(
        seen.sent.len(),
        1,
        "a bad request is not retried nor failed over"
    );
    assert_eq!(seen.commits, [(own, 400)]);
    assert_eq!(seen.body, refusal);
    assert!(seen.closed && seen.responds.is_empty());
}

#[test]
fn a_json_request_commits_at_its_head_and_fails_over_before_it() {
    let body = "{\"model\":\"m\",\"messages\":[],\"stream\":false}";
    let request = sdk_request("POST", "http://127.0.0.1:8/v1/chat/completions", Some(body));
    let mut relay = Relay::new(config(request, OnCut::Error, 0));
    assert_eq!(relay.kind(), RequestKind::Json);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    relay.head(first(&seen), 5.0, json_head(502));
    relay.body_end(first(&seen), 6.0);
    drain(&mut relay, &mut seen);
    let fallback = seen.sent[1].attempt;
    assert_eq!(
        seen.sent[1].body.as_deref(),
        Some("{\"model\":\"local-model\",\"messages\":[],\"stream\":false}")
    );
    relay.head(fallback, 10.0, json_head(200));
    drain(&mut relay, &mut seen);
    assert_eq!(seen.commits, [(fallback, 200)]);
    assert_eq!(
        relay.poll_timeout(),
        Some(10_000.0),
        "only the service deadline is left"
    );
    relay.handle_timeout(5_000.0);
    relay.body_bytes(fallback, 5_000.0, b"{\"choices\":[]}");
    relay.body_end(fallback, 5_001.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.body, b"{\"choices\":[]}");
    assert!(seen.closed);
}

#[test]
fn other_requests_pass_through_once_whatever_their_status() {
    let request = sdk_request("GET", "http://127.0.0.1:8/v1/models", None);
    let mut relay = Relay::new(config(request, OnCut::Error, 2));
    assert_eq!(relay.kind(), RequestKind::Other);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.sent[0].method, "GET");
    relay.head(first(&seen), 5.0, json_head(503));
    relay.body_bytes(first(&seen), 6.0, b"busy");
    relay.body_end(first(&seen), 7.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.sent.len(), 1);
    assert_eq!(seen.commits, [(first(&seen), 503)]);
    assert_eq!(seen.body, b"busy");

    let request = sdk_request("GET", "http://127.0.0.1:8/v1/models", None);
    let mut relay = Relay::new(config(request, OnCut::Error, 2));
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    relay.handle_timeout(100.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.sent.len(), 1, "no failover for other requests");
    assert_eq!(seen.responds[0].0, 504);
}

#[test]
fn keepalives_of_every_format_are_never_progress() {
    let cases = [
        (
            "http://h/v1/responses",
            "event: keepalive\ndata: {\"type\":\"keepalive\"}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
        ),
        (
            "http://h/v1/messages",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        ),
    ];
    for (url, keepalive, progress) in cases {
        let request = sdk_request("POST", url, Some("{\"model\":\"m\",\"stream\":true}"));
        let mut relay = Relay::new(config(request, OnCut::Finish, 0));
        let mut seen = Seen::default();
        relay.start(0.0);
        drain(&mut relay, &mut seen);
        let id = first(&seen);
        relay.head(id, 10.0, sse_head(200));
        relay.body_bytes(id, 20.0, keepalive.as_bytes());
        relay.body_bytes(id, 150.0, keepalive.as_bytes());
        drain(&mut relay, &mut seen);
        assert!(seen.commits.is_empty(), "{url}");
        relay.body_bytes(id, 160.0, progress.as_bytes());
        drain(&mut relay, &mut seen);
        assert_eq!(seen.commits.len(), 1, "{url}");
        relay.handle_timeout(310.0);
        drain(&mut relay, &mut seen);
        let text = String::from_utf8(seen.body.clone()).unwrap();
        assert!(
            text.starts_with(&[keepalive, keepalive, progress].concat()),
            "{url}"
        );
        assert!(
            text.ends_with("}\n\n") && text.contains("event: error\ndata: {\"type\":\"error\""),
            "{url}: {text}"
        );
    }
}

#[test]
fn a_cancel_releases_at_once_and_hands_out_nothing_more() {
    let mut relay = chat_relay(OnCut::Error, 0);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let id = first(&seen);
    relay.head(id, 10.0, sse_head(200));
    relay.body_bytes(id, 20.0, TEXT.as_bytes());
    drain(&mut relay, &mut seen);
    relay.cancel(30.0, "body-cancel");
    drain(&mut relay, &mut seen);
    assert_eq!(seen.cancelled, [id]);
    assert!(relay.is_settled());
    assert_eq!(relay.poll_timeout(), None);
    assert!(
        matches!(seen.events.last(), Some(GuardEvent::Cancelled { reason }) if reason == "body-cancel")
    );
    let before = seen.body.len();
    relay.body_bytes(id, 40.0, TEXT.as_bytes());
    drain(&mut relay, &mut seen);
    assert_eq!(seen.body.len(), before, "a late read is ignored");
}

#[test]
fn a_cancel_before_the_request_went_out_sends_nothing() {
    let mut relay = chat_relay(OnCut::Error, 0);
    let mut seen = Seen::default();
    relay.start(0.0);
    relay.cancel(0.0, "signal");
    drain(&mut relay, &mut seen);
    assert!(
        seen.sent.is_empty() && seen.cancelled.is_empty(),
        "{seen:?}"
    );
    assert!(relay.is_settled());
}

#[test]
fn a_late_report_about_a_released_attempt_changes_nothing() {
    let mut relay = chat_relay(OnCut::Error, 0);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let own = first(&seen);
    relay.handle_timeout(100.0); // no headers: fail over
    drain(&mut relay, &mut seen);
    let fallback = seen.sent[1].attempt;
    relay.head(own, 101.0, sse_head(200));
    relay.body_bytes(own, 102.0, TEXT.as_bytes());
    relay.body_end(own, 103.0);
    drain(&mut relay, &mut seen);
    assert!(
        seen.commits.is_empty(),
        "the released attempt's late bytes are ignored"
    );
    relay.head(fallback, 110.0, sse_head(200));
    relay.body_bytes(fallback, 120.0, [TEXT, DONE].concat().as_bytes());
    drain(&mut relay, &mut seen);
    assert_eq!(
        seen.commits,
        [(fallback, 200)],
        "the fallback is still the current attempt"
    );
    assert_eq!(seen.body, [TEXT, DONE].concat().as_bytes());
}
