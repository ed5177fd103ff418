//! The relay machine in the edge worker's mode (`Relay::with_proxy`) on a fake clock: the
//! worker's chain with the client's body forwarded (model spliced, usage asked for), the status
//! held until progress or the first heartbeat, heartbeats at event boundaries only, an
//! invisible failover after a heartbeat, the usage chunk only for a client that asked, the
//! worker's failure answers before and after the status, a client that stops reading, and the
//! worker's events in the stream of a client that asked.

use llm_stream_guard::core::deadline::Timeouts;
use llm_stream_guard::core::events::GuardEvent;
use llm_stream_guard::core::machine::{AttemptId, Head};
use llm_stream_guard::core::policy::RetryPolicy;
use llm_stream_guard::core::relay::{
    asks_usage, OnCut, Outgoing, ProxyMode, Relay, RelayAction, RelayConfig, RelayDelivery,
    RelayProvider, SdkRequest, HEARTBEAT, PROBE,
};

const KEY_A: &str = "sk-x7Qa-0123456789";
const KEY_B: &str = "sk-y8Rb-9876543210";
const CLIENT_TOKEN: &str = "ct-z9Sc-5555";

fn timeouts() -> Timeouts {
    Timeouts {
        headers_ms: 100.0,
        first_token_ms: 200.0,
        idle_ms: 150.0,
        stream_ms: 5_000.0,
        service_ms: 10_000.0,
    }
}

fn provider(name: &str, key: &str) -> RelayProvider {
    RelayProvider {
        name: name.into(),
        url: format!("http://127.0.0.1:9/{name}/v1/chat/completions"),
        model: format!("{name}-model"),
        api_key: Some(key.into()),
        headers: vec![("X-Title".into(), "t".into())],
        timeouts: timeouts(),
        max_retries: 0,
    }
}

const STREAM_BODY: &str = "{\"model\":\"asked\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"stream\":true}";

fn mode(heartbeat_ms: Option<f64>, strip_usage: bool, client_events: bool) -> ProxyMode {
    ProxyMode {
        targets: vec![provider("a", KEY_A), provider("b", KEY_B)],
        include_usage: true,
        strip_usage,
        heartbeat_ms,
        client_events,
        secrets: vec![CLIENT_TOKEN.into()],
        stream_id: "chatcmpl-lsg-1".into(),
        created: 1_700_000_000,
        client_idle_ms: 150.0,
        probe_ms: None,
    }
}

fn relay_of(body: &str, mode: ProxyMode) -> Relay {
    let config = RelayConfig {
        request: SdkRequest {
            method: "POST".into(),
            url: "http://worker.invalid/v1/chat/completions".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(body.into()),
        },
        timeouts: timeouts(),
        max_retries: 0,
        fallbacks: Vec::new(),
        policy: RetryPolicy {
            max_retries: 0,
            base_delay_ms: 10.0,
            max_delay_ms: 10.0,
        },
        max_event_bytes: 64 * 1024,
        on_cut: OnCut::Error,
        jitter_seed: 1,
    };
    Relay::with_proxy(config, mode)
}

#[derive(Default, Debug)]
struct Seen {
    sent: Vec<Outgoing>,
    cancelled: Vec<AttemptId>,
    /// Attempts whose answer was whole: their transport reads the body's end.
    finished: Vec<AttemptId>,
    events: Vec<GuardEvent>,
    order: Vec<String>,
    body: Vec<u8>,
    responds: Vec<(u16, String)>,
    closed: bool,
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
                    seen.order.push(e.type_name().into());
                    seen.events.push(e)
                }
                RelayDelivery::Commit { status, .. } => seen.order.push(format!("commit {status}")),
                RelayDelivery::Open => seen.order.push("open".into()),
                RelayDelivery::Respond { status, body } => {
                    seen.order.push("respond".into());
                    seen.responds.push((status, body))
                }
                RelayDelivery::Bytes(b) => {
                    seen.order.push("bytes".into());
                    seen.body.extend_from_slice(&b)
                }
                RelayDelivery::Close => {
                    seen.order.push("close".into());
                    seen.closed = true
                }
                RelayDelivery::Fail(e) => panic!("the worker's relay never errors a body: {e:?}"),
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

/// A relay of `body` in `mode`, started at 0 ms with its first request sent: the relay, what
/// it did so far, and the first attempt's id.
fn started(body: &str, mode: ProxyMode) -> (Relay, Seen, AttemptId) {
    let mut relay = relay_of(body, mode);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let a = seen.sent[0].attempt;
    (relay, seen, a)
}

/// Attempt `a`'s event-stream head at 5 ms, with the client reading.
fn streaming(relay: &mut Relay, a: AttemptId) {
    relay.head(a, 5.0, sse_head(200));
    relay.client_reading(5.0, true);
}

const ROLE: &str = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
const TEXT: &str = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"x_extra\":1}\n\n";
const TOOL: &str = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n";
const FINISH: &str = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
const USAGE: &str = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

fn text(seen: &Seen) -> String {
    String::from_utf8(seen.body.clone()).unwrap()
}

#[test]
fn each_target_gets_the_clients_body_with_its_model_and_usage_asked_for() {
    let mut relay = relay_of(STREAM_BODY, mode(None, true, false));
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let out = &seen.sent[0];
    assert_eq!(out.url, "http://127.0.0.1:9/a/v1/chat/completions");
    let body = out.body.as_deref().unwrap();
    let want = STREAM_BODY.replace("\"asked\"", "\"a-model\"").replacen(
        '{',
        "{\"stream_options\":{\"include_usage\":true},",
        1,
    );
    assert_eq!(body, want, "every other byte as the client sent it");
    assert!(asks_usage(body));
    assert!(out
        .headers
        .contains(&("Authorization".into(), format!("Bearer {KEY_A}"))));
    assert!(out.headers.contains(&("X-Title".into(), "t".into())));
    // A non-streaming body is not asked for a usage chunk (there is none).
    let json = STREAM_BODY.replace("\"stream\":true", "\"stream\":false");
    let mut relay = relay_of(&json, mode(None, true, false));
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    assert_eq!(
        seen.sent[0].body.as_deref().unwrap(),
        json.replace("\"asked\"", "\"a-model\"")
    );
}

#[test]
fn chunks_pass_byte_for_byte_and_the_usage_chunk_only_when_asked() {
    for strip in [false, true] {
        let mut relay = relay_of(STREAM_BODY, mode(Some(1_000.0), strip, false));
        let mut seen = Seen::default();
        relay.start(0.0);
        drain(&mut relay, &mut seen);
        let id = seen.sent[0].attempt;
        relay.head(id, 10.0, sse_head(200));
        let upstream = [ROLE, TEXT, TOOL, ": ping\n\n", FINISH, USAGE, DONE].concat();
        // Reads that split events anywhere.
        for (i, piece) in upstream.as_bytes().chunks(37).enumerate() {
            relay.client_reading(20.0 + i as f64, true);
            relay.body_bytes(id, 20.0 + i as f64, piece);
        }
        drain(&mut relay, &mut seen);
        let want = match strip {
            false => upstream.clone(),
            true => upstream.replace(USAGE, ""),
        };
        assert_eq!(text(&seen), want, "strip {strip}");
        assert_eq!(seen.order[..2], ["request-start", "headers"]);
        assert!(seen.order.contains(&"commit 200".to_string()));
        assert!(seen.closed && relay.is_settled());
    }
}

#[test]
fn the_first_heartbeat_sends_the_status_and_a_failover_after_it_stays_invisible() {
    let (mut relay, mut seen, a) = started(STREAM_BODY, mode(Some(50.0), true, false));
    relay.head(a, 10.0, sse_head(200));
    relay.body_bytes(a, 20.0, ROLE.as_bytes());
    relay.client_reading(20.0, true);
    assert_eq!(relay.poll_timeout(), Some(50.0), "the first heartbeat");
    relay.handle_timeout(50.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.order.last().map(String::as_str), Some("bytes"));
    assert!(seen.order.contains(&"open".to_string()));
    assert_eq!(
        text(&seen),
        ": heartbeat\n\n",
        "the held role chunk stays held"
    );
    // Attempt a never makes progress: its first-token deadline passes, b takes over.
    relay.handle_timeout(200.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.cancelled, [a]);
    let b = seen.sent[1].attempt;
    assert_eq!(seen.sent[1].url, "http://127.0.0.1:9/b/v1/chat/completions");
    relay.head(b, 210.0, sse_head(200));
    relay.body_bytes(b, 220.0, [ROLE, TEXT, FINISH, DONE].concat().as_bytes());
    drain(&mut relay, &mut seen);
    let body = text(&seen);
    assert!(body.starts_with(": heartbeat\n\n"));
    assert_eq!(
        body.replace(": heartbeat\n\n", ""),
        [ROLE, TEXT, FINISH, DONE].concat(),
        "a's held bytes never went out; b's all did"
    );
    assert!(
        !seen.order.iter().any(|o| o.starts_with("commit")),
        "no second status: {:?}",
        seen.order
    );
    assert!(seen.closed);
}

#[test]
fn later_heartbeats_go_out_only_at_an_event_boundary() {
    let (mut relay, mut seen, a) = started(STREAM_BODY, mode(Some(50.0), false, false));
    streaming(&mut relay, a);
    relay.body_bytes(a, 10.0, [ROLE, TEXT].concat().as_bytes());
    drain(&mut relay, &mut seen);
    // Half an event arrives: it waits (a heartbeat cannot split it), so the client's stream
    // still ends at a boundary and the heartbeat goes out there.
    relay.body_bytes(a, 20.0, &TOOL.as_bytes()[..30]);
    drain(&mut relay, &mut seen);
    assert_eq!(text(&seen), [ROLE, TEXT].concat());
    assert_eq!(
        relay.poll_timeout(),
        Some(60.0),
        "50 ms after the last write"
    );
    relay.handle_timeout(60.0);
    drain(&mut relay, &mut seen);
    assert_eq!(text(&seen), [ROLE, TEXT, ": heartbeat\n\n"].concat());
    relay.body_bytes(a, 70.0, &TOOL.as_bytes()[30..]);
    relay.body_bytes(a, 80.0, [FINISH, DONE].concat().as_bytes());
    drain(&mut relay, &mut seen);
    assert_eq!(
        text(&seen),
        [ROLE, TEXT, ": heartbeat\n\n", TOOL, FINISH, DONE].concat()
    );
    let heartbeats = text(&seen)
        .matches(std::str::from_utf8(HEARTBEAT).unwrap())
        .count();
    assert_eq!(heartbeats, 1);
}

#[test]
fn everything_failing_before_the_status_gets_one_refusal_naming_every_provider() {
    let mut relay = relay_of(STREAM_BODY, mode(Some(10_000.0), true, false));
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    relay.handle_timeout(100.0); // a: no headers
    drain(&mut relay, &mut seen);
    relay.handle_timeout(200.0); // b: no headers
    drain(&mut relay, &mut seen);
    assert_eq!(seen.responds.len(), 1, "{:?}", seen.order);
    let (status, body) = &seen.responds[0];
    assert_eq!(*status, 504);
    let refusal = relay.final_refusal().expect("a refusal");
    assert_eq!(refusal.status, 504);
    assert!(refusal
        .headers
        .contains(&("x-should-retry", "false".into())));
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["error"]["code"], "timeout");
    let message = json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a (timeout)") && message.contains("b (timeout)"),
        "{message}"
    );
    assert!(seen.body.is_empty() && !seen.order.contains(&"open".into()));
}

#[test]
fn every_provider_rate_limited_gets_429_with_the_smallest_retry_after() {
    let mut relay = relay_of(STREAM_BODY, mode(None, true, false));
    let mut seen = Seen::default();
    relay.start(0.0);
    for (i, after) in [("7", 0), ("3", 1)] {
        drain(&mut relay, &mut seen);
        let id = seen.sent[after].attempt;
        let head = Head {
            status: 429,
            content_type: Some("application/json".into()),
            has_body: false,
            retry_after: Some(i.into()),
            ..Head::default()
        };
        relay.head(id, 10.0 * (after + 1) as f64, head);
    }
    drain(&mut relay, &mut seen);
    let refusal = relay.final_refusal().expect("a refusal");
    assert_eq!(refusal.status, 429);
    assert!(refusal.headers.contains(&("retry-after", "3".into())));
    assert_eq!(seen.responds[0].0, 429);
    assert!(refusal.message.contains("a (http 429)") && refusal.message.contains("b (http 429)"));
}

#[test]
fn everything_failing_after_the_status_ends_with_the_error_chunk_and_done() {
    let mut relay = relay_of(STREAM_BODY, mode(Some(20.0), true, false));
    let mut seen = Seen::default();
    relay.start(0.0);
    relay.client_reading(0.0, true);
    drain(&mut relay, &mut seen);
    relay.handle_timeout(20.0); // the first heartbeat: the status goes out
    relay.handle_timeout(100.0); // a: no headers
    drain(&mut relay, &mut seen);
    relay.handle_timeout(200.0); // b: no headers
    drain(&mut relay, &mut seen);
    assert!(seen.responds.is_empty());
    let body = text(&seen);
    assert!(body.starts_with(": heartbeat\n\n"), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let chunk = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .find(|d| d.starts_with('{'))
        .unwrap();
    let chunk: serde_json::Value = serde_json::from_str(chunk).unwrap();
    assert_eq!(chunk["id"], "chatcmpl-lsg-1");
    assert_eq!(chunk["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunk["error"]["code"], 504);
    assert_eq!(chunk["error"]["metadata"]["kind"], "timeout");
    let message = chunk["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("a (timeout)") && message.contains("b (timeout)"),
        "{message}"
    );
    assert!(seen.closed && relay.is_settled());
}

#[test]
fn a_cut_after_text_ends_with_the_error_chunk_after_the_upstreams_last_whole_event() {
    let (mut relay, mut seen, a) = started(STREAM_BODY, mode(None, true, false));
    streaming(&mut relay, a);
    relay.body_bytes(a, 10.0, [ROLE, TEXT, &TOOL[..20]].concat().as_bytes());
    relay.handle_timeout(160.0); // idle
    drain(&mut relay, &mut seen);
    let body = text(&seen);
    assert!(
        body.starts_with(&[ROLE, TEXT, &TOOL[..20], "\n\n"].concat()),
        "{body}"
    );
    assert!(body.contains("\"id\":\"c-1\""));
    assert!(
        body.contains("\"metadata\":{\"kind\":\"timeout\"}"),
        "{body}"
    );
    assert!(body.ends_with("data: [DONE]\n\n"));
    assert_eq!(seen.cancelled, [a]);
}

#[test]
fn a_client_that_stops_reading_longer_than_the_idle_deadline_is_gone() {
    let (mut relay, mut seen, a) = started(STREAM_BODY, mode(Some(1_000.0), true, false));
    streaming(&mut relay, a);
    relay.body_bytes(a, 10.0, [ROLE, TEXT].concat().as_bytes());
    drain(&mut relay, &mut seen);
    relay.client_reading(10.0, false);
    // While it does not read, the upstream's deadlines wait: only the client's is due.
    assert_eq!(relay.poll_timeout(), Some(160.0));
    relay.handle_timeout(159.0);
    drain(&mut relay, &mut seen);
    assert!(seen.cancelled.is_empty() && !relay.is_settled());
    relay.handle_timeout(160.0);
    drain(&mut relay, &mut seen);
    assert_eq!(seen.cancelled, [a], "the upstream released");
    assert!(relay.is_settled());
    assert!(
        matches!(seen.events.last(), Some(GuardEvent::Cancelled { reason }) if reason == "client-stalled")
    );
}

#[test]
fn a_client_that_asked_gets_the_workers_events_at_boundaries_and_no_secret() {
    let (mut relay, mut seen, a) = started(STREAM_BODY, mode(None, false, true));
    streaming(&mut relay, a);
    let upstream_guard =
        format!("event: guard\ndata: {{\"type\":\"timeout\",\"note\":\"{KEY_A}\"}}\n\n");
    relay.body_bytes(
        a,
        10.0,
        [ROLE, TEXT, &upstream_guard, FINISH, DONE]
            .concat()
            .as_bytes(),
    );
    drain(&mut relay, &mut seen);
    let body = text(&seen);
    assert!(
        !body.contains(KEY_A) && !body.contains(CLIENT_TOKEN),
        "{body}"
    );
    let blocks: Vec<&str> = body.split_inclusive("\n\n").collect();
    let names: Vec<&str> = blocks
        .iter()
        .map(|b| b.lines().next().unwrap_or(""))
        .map(|l| l.strip_prefix("event: ").unwrap_or("data"))
        .collect();
    assert_eq!(names[..3], ["guard", "guard", "guard"], "{body}");
    assert!(
        blocks[0].contains("\"type\":\"request-start\"") && blocks[0].contains("\"atMs\":0"),
        "{body}"
    );
    assert!(names.contains(&"guard-upstream"), "{body}");
    for block in &blocks {
        assert!(block.ends_with("\n\n"));
    }
    assert!(body.contains(&[ROLE, TEXT].concat()) && body.contains(&[FINISH, DONE].concat()));
    // The relay learns that the stream is whole from its end marker, in the read that carried
    // it: its `done` goes before that read's bytes (a client stops reading at `[DONE]`).
    let done = blocks
        .iter()
        .position(|b| b.contains("\"type\":\"done\""))
        .expect("a done event");
    let end = blocks.iter().position(|b| *b == DONE).expect("[DONE]");
    assert!(done < end && end == blocks.len() - 1, "{body}");
}

#[test]
fn probes_go_out_only_while_the_status_is_out_the_client_reads_and_nothing_else_does() {
    let mut with_probes = mode(Some(1_000.0), true, false);
    with_probes.probe_ms = Some(25.0);
    let mut relay = relay_of(STREAM_BODY, with_probes);
    let mut seen = Seen::default();
    relay.start(0.0);
    drain(&mut relay, &mut seen);
    let a = seen.sent[0].attempt;
    streaming(&mut relay, a);
    assert_eq!(
        relay.poll_timeout(),
        Some(200.0),
        "no probe before the status: the first-token deadline"
    );
    relay.body_bytes(a, 10.0, [ROLE, TEXT].concat().as_bytes());
    drain(&mut relay, &mut seen);
    assert_eq!(
        relay.poll_timeout(),
        Some(35.0),
        "25 ms after the last write"
    );
    relay.handle_timeout(35.0);
    drain(&mut relay, &mut seen);
    assert_eq!(
        text(&seen),
        [ROLE, TEXT, std::str::from_utf8(PROBE).unwrap()].concat()
    );
    assert_eq!(relay.poll_timeout(), Some(60.0));
    relay.client_reading(40.0, false);
    assert_eq!(
        relay.poll_timeout(),
        Some(190.0),
        "a client that does not read is not probed"
    );
}

#[test]
fn an_upstreams_own_error_after_text_passes_as_sent_and_counts_as_partial() {
    let (mut relay, mut seen, a) = started(STREAM_BODY, mode(None, true, false));
    streaming(&mut relay, a);
    let error = "data: {\"id\":\"c-1\",\"object\":\"chat.completion.chunk\",\"error\":{\"code\":502,\"message\":\"Provider returned error\"},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n";
    relay.body_bytes(a, 10.0, [ROLE, TEXT, error].concat().as_bytes());
    drain(&mut relay, &mut seen);
    assert_eq!(
        text(&seen),
        [ROLE, TEXT, error].concat(),
        "as the upstream sent it"
    );
    assert!(seen.closed && relay.is_settled());
    assert!(
        matches!(
            seen.events.last(),
            Some(GuardEvent::Done { partial: true, .. })
        ),
        "{:?}",
        seen.events
    );
}
