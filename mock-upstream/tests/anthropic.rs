//! The Anthropic Messages scenarios over a real socket, read as `@anthropic-ai/sdk` reads them:
//! SSE events whose `event:` name is their data's `type`, JSON that parses, the fields of its
//! `RawMessageStreamEvent` types, and the real event order.

mod common;

use common::*;
use mock_upstream::*;
use serde_json::{json, Value};

fn path(scenario: &str, query: &str) -> String {
    format!("/scenario/{scenario}/v1/messages?{query}")
}

fn body(model: &str, stream: Option<bool>) -> String {
    let mut v = json!({"model": model, "max_tokens": 64,
                       "messages": [{"role": "user", "content": "hi"}]});
    if let Some(s) = stream {
        v["stream"] = json!(s);
    }
    v.to_string()
}

/// The keys each event type carries, as the SDK's types require them.
fn expected_keys(kind: &str) -> Vec<String> {
    let all: &[&str] = match kind {
        "message_start" => &["type", "message"],
        "content_block_start" => &["type", "index", "content_block"],
        "content_block_delta" => &["type", "index", "delta"],
        "content_block_stop" => &["type", "index"],
        "message_delta" => &["type", "delta", "usage"],
        "message_stop" | "ping" => &["type"],
        "error" => &["type", "error"],
        other => panic!("unexpected event type {other}"),
    };
    sorted(all)
}

/// Checks every event as the SDK would, and returns their data as JSON.
fn checked(events: &[Sse]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let v = e.json();
            let kind = v["type"].as_str().expect("a type");
            assert_eq!(e.event.as_deref(), Some(kind), "event name and type differ");
            assert_eq!(keys(&v), expected_keys(kind), "{kind}");
            assert!(
                e.data.starts_with(&format!("{{\"type\":\"{kind}\"")),
                "{}",
                e.data
            );
            v
        })
        .collect()
}

/// The fields of a `Message`.
fn assert_message(m: &Value, model: &str) {
    assert_eq!(
        keys(m),
        sorted(&[
            "id",
            "type",
            "role",
            "model",
            "content",
            "stop_reason",
            "stop_sequence",
            "usage"
        ])
    );
    assert_eq!(m["type"], "message");
    assert_eq!(m["role"], "assistant");
    assert_eq!(m["model"], model);
    assert!(m["id"].as_str().unwrap().starts_with("msg_"));
    assert!(m["stop_sequence"].is_null());
}

async fn stream_of(server: &Running, scenario: &str, query: &str, req: &str) -> Vec<Value> {
    let (head, bytes) = post_all(server.addr, &path(scenario, query), req).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.get("content-type"), Some("text/event-stream"));
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.contains("[DONE]"));
    checked(&parse_sse(&text))
}

/// Opens a streaming request to `scenario` (with `query`) and returns the client once the head
/// says 200.
async fn open_stream(server: &Running, scenario: &str, query: &str) -> Client {
    open_ok(server.addr, &path(scenario, query), &body("m", Some(true))).await
}

#[tokio::test]
async fn normal_stream_has_the_real_event_sequence() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let req = body("acme/claude", Some(true));
    let events = stream_of(&server, "anthropic-normal", "tag=an", &req).await;
    let n = pieces(DEFAULT_TEXT).len();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", n));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(types(&events), expected);

    let start = &events[0]["message"];
    assert_message(start, "acme/claude");
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert_eq!(start["usage"]["input_tokens"], prompt_tokens(req.len()));
    assert_eq!(
        events[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(events[1]["index"], 0);
    let text: String = events[3..3 + n]
        .iter()
        .map(|v| {
            assert_eq!(v["index"], 0);
            assert_eq!(v["delta"]["type"], "text_delta");
            v["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(events[3 + n]["index"], 0);
    let delta = &events[4 + n];
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(delta["usage"]["output_tokens"], n as u64);
    let rec = closed_record(&server.ledger, "an").await;
    assert_eq!(rec.scenario.as_deref(), Some("anthropic-normal"));
}

#[tokio::test]
async fn tool_use_streams_input_json_deltas() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let events = stream_of(&server, "anthropic-tool-use", "", &body("m", Some(true))).await;
    let k = TOOL_ARGUMENT_FRAGMENTS.len() + 1;
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", k));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(types(&events), expected);
    assert_eq!(
        events[1]["content_block"],
        json!({"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID, "name": TOOL_NAME, "input": {}})
    );
    let partial: Vec<&str> = events[3..3 + k]
        .iter()
        .map(|v| {
            assert_eq!(v["delta"]["type"], "input_json_delta");
            v["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        partial[0], "",
        "the first input_json_delta is empty, as the API sends it"
    );
    let input: Value = serde_json::from_str(&partial.concat()).unwrap();
    assert_eq!(input, json!({"city": "Paris"}));
    assert_eq!(events[4 + k]["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn pings_forever_after_message_start() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = open_stream(&server, "anthropic-ping-forever", "tag=apf&keepalive_ms=10").await;
    let events = checked(&c.sse_chunks(6).await);
    assert_eq!(
        types(&events),
        ["message_start", "ping", "ping", "ping", "ping", "ping"]
    );
    client_leaves_and_scenario_ends(&server.ledger, c, "apf", "anthropic-ping-forever").await;
}

#[tokio::test]
async fn stall_after_deltas_until_the_client_leaves() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = open_stream(&server, "anthropic-stall-after-deltas", "tag=asd&chunks=2").await;
    let events = checked(&c.sse_chunks(5).await);
    assert_eq!(
        types(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta"
        ]
    );
    let text: String = events[3..]
        .iter()
        .map(|v| v["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello from ");
    c.assert_silent_for(150).await;
    client_leaves_and_scenario_ends(&server.ledger, c, "asd", "anthropic-stall-after-deltas").await;
}

#[tokio::test]
async fn overloaded_error_event_ends_the_stream() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let streaming = body("m", Some(true));
    let events = stream_of(&server, "anthropic-error", "tag=ae&chunks=1", &streaming).await;
    assert_eq!(
        types(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(events[3]["delta"]["text"], "Hello ");
    assert_eq!(
        events[4]["error"],
        json!({"type": "overloaded_error", "message": OVERLOADED_MESSAGE})
    );
    let rec = closed_record(&server.ledger, "ae").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Server));

    // chunks=0: the error before any content.
    let events = stream_of(&server, "anthropic-error", "chunks=0", &streaming).await;
    assert_eq!(
        types(&events),
        ["message_start", "content_block_start", "ping", "error"]
    );

    // Without streaming: 529 and the error object.
    let (head, bytes) = post_all(server.addr, &path("anthropic-error", ""), &body("m", None)).await;
    assert_eq!(head.status, 529);
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": OVERLOADED_MESSAGE}})
    );
}

#[tokio::test]
async fn stream_false_or_absent_is_one_message() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    for stream in [Some(false), None] {
        let req = body("acme/whole", stream);
        let (head, bytes) = post_all(server.addr, &path("anthropic-normal", ""), &req).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.get("content-type"), Some("application/json"));
        let m: Value = serde_json::from_slice(&bytes).unwrap();
        assert_message(&m, "acme/whole");
        assert_eq!(
            m["content"],
            json!([{"type": "text", "text": DEFAULT_TEXT}])
        );
        assert_eq!(m["stop_reason"], "end_turn");
        let n = pieces(DEFAULT_TEXT).len() as u64;
        assert_eq!(m["usage"]["input_tokens"], prompt_tokens(req.len()));
        assert_eq!(m["usage"]["output_tokens"], n);
    }
    let (_, bytes) = post_all(
        server.addr,
        &path("anthropic-tool-use", ""),
        &body("m", Some(false)),
    )
    .await;
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        m["content"],
        json!([{"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID, "name": TOOL_NAME,
                "input": {"city": "Paris"}}])
    );
}

#[tokio::test]
async fn the_plain_messages_endpoint_is_anthropic_normal() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (head, bytes) = post_all(
        server.addr,
        "/v1/messages?tag=plain",
        &body("m", Some(true)),
    )
    .await;
    assert_eq!(head.status, 200);
    let events = checked(&parse_sse(&String::from_utf8(bytes).unwrap()));
    assert_eq!(events.last().unwrap()["type"], "message_stop");
    let rec = closed_record(&server.ledger, "plain").await;
    assert_eq!(rec.scenario.as_deref(), Some("anthropic-normal"));
    let (head, _) = post_all(server.addr, &path("anthropic-normal", ""), "").await;
    assert_eq!(
        head.status, 200,
        "a body that is not JSON is answered without streaming"
    );
    let (head, _) = post_all(server.addr, "/scenario/anthropic-normal/v1/responses", "").await;
    assert_eq!(head.status, 404);
}
