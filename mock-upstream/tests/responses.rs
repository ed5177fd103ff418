//! The OpenAI Responses API scenarios over a real socket, read as an SDK reads them: SSE events
//! whose `event:` name is their data's `type`, JSON that parses, the fields the SDK's
//! `ResponseStreamEvent` types require, sequence numbers 0, 1, 2… and the real event order.

mod common;

use common::*;
use mock_upstream::*;
use serde_json::{json, Value};

fn path(scenario: &str, query: &str) -> String {
    format!("/scenario/{scenario}/v1/responses?{query}")
}

fn body(model: &str, stream: Option<bool>) -> String {
    let mut v = json!({"model": model, "input": "hi"});
    if let Some(s) = stream {
        v["stream"] = json!(s);
    }
    v.to_string()
}

/// The keys each event type carries (besides `type` and `sequence_number`), as the SDK's types
/// require them.
fn expected_keys(kind: &str) -> Vec<String> {
    let extra: &[&str] = match kind {
        "response.created" | "response.in_progress" | "response.completed" => &["response"],
        "response.output_item.added" | "response.output_item.done" => &["output_index", "item"],
        "response.content_part.added" | "response.content_part.done" => {
            &["item_id", "output_index", "content_index", "part"]
        }
        "response.output_text.delta" => &[
            "item_id",
            "output_index",
            "content_index",
            "delta",
            "logprobs",
        ],
        "response.output_text.done" => &[
            "item_id",
            "output_index",
            "content_index",
            "text",
            "logprobs",
        ],
        "response.function_call_arguments.delta" => &["item_id", "output_index", "delta"],
        "response.function_call_arguments.done" => {
            &["item_id", "output_index", "name", "arguments"]
        }
        "keepalive" => &[],
        other => panic!("unexpected event type {other}"),
    };
    let mut all = vec!["type", "sequence_number"];
    all.extend_from_slice(extra);
    sorted(&all)
}

/// Checks every event as an SDK would, and returns their data as JSON.
fn checked(events: &[Sse]) -> Vec<Value> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let v = e.json();
            let kind = v["type"].as_str().expect("a type");
            assert_eq!(e.event.as_deref(), Some(kind), "event name and type differ");
            assert_eq!(v["sequence_number"], i as u64, "{kind}");
            assert_eq!(keys(&v), expected_keys(kind), "{kind}");
            // Written as the API writes it: type first, then the sequence number.
            let start = format!("{{\"type\":\"{kind}\",\"sequence_number\":{i}");
            assert!(e.data.starts_with(&start), "{}", e.data);
            v
        })
        .collect()
}

/// The fields of a `Response` object the SDK's type requires.
fn assert_response(r: &Value, status: &str, model: &str) {
    for k in [
        "id",
        "object",
        "created_at",
        "status",
        "error",
        "incomplete_details",
        "instructions",
        "metadata",
        "model",
        "output",
        "parallel_tool_calls",
        "temperature",
        "tool_choice",
        "tools",
        "top_p",
        "usage",
    ] {
        assert!(r.get(k).is_some(), "Response without {k}: {r}");
    }
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], status);
    assert_eq!(r["model"], model);
    assert!(r["id"].as_str().unwrap().starts_with("resp_"));
    assert!(r["created_at"].as_u64().unwrap() > 1_600_000_000);
}

fn assert_usage(u: &Value, body_len: usize, output: usize) {
    let input = prompt_tokens(body_len);
    assert_eq!(u["input_tokens"], input);
    assert_eq!(u["output_tokens"], output as u64);
    assert_eq!(u["total_tokens"], input + output as u64);
    assert_eq!(u["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 0);
}

/// Opens a streaming request to `scenario` (with `query`) and returns the client once the head
/// says 200.
async fn open_stream(server: &Running, scenario: &str, query: &str) -> Client {
    open_ok(server.addr, &path(scenario, query), &body("m", Some(true))).await
}

#[tokio::test]
async fn normal_stream_has_the_real_event_sequence() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let req = body("acme/resp", Some(true));
    let (head, bytes) = post_all(server.addr, &path("responses-normal", "tag=rn"), &req).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.get("content-type"), Some("text/event-stream"));
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        !text.contains("[DONE]"),
        "the Responses API sends no [DONE]"
    );
    let events = checked(&parse_sse(&text));
    let n = pieces(DEFAULT_TEXT).len();
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    expected.extend(std::iter::repeat_n("response.output_text.delta", n));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types(&events), expected);

    let created = &events[0]["response"];
    assert_response(created, "in_progress", "acme/resp");
    assert_eq!(created["output"], json!([]));
    assert!(created["usage"].is_null());
    let added = &events[2]["item"];
    assert_eq!(added["type"], "message");
    assert_eq!(added["role"], "assistant");
    assert_eq!(added["status"], "in_progress");
    assert_eq!(added["content"], json!([]));
    let item_id = added["id"].as_str().unwrap();
    assert!(item_id.starts_with("msg_"));
    assert_eq!(events[3]["part"]["type"], "output_text");
    assert_eq!(events[3]["part"]["text"], "");

    let deltas: String = events
        .iter()
        .filter(|v| v["type"] == "response.output_text.delta")
        .map(|v| {
            assert_eq!(v["item_id"], item_id);
            assert_eq!(
                (v["output_index"].as_u64(), v["content_index"].as_u64()),
                (Some(0), Some(0))
            );
            v["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(deltas, DEFAULT_TEXT);
    let done = &events[4 + n];
    assert_eq!(done["text"], DEFAULT_TEXT);
    assert_eq!(events[5 + n]["part"]["text"], DEFAULT_TEXT);
    let item = &events[6 + n]["item"];
    assert_eq!(item["status"], "completed");
    assert_eq!(item["id"], item_id);
    assert_eq!(item["content"][0]["text"], DEFAULT_TEXT);

    let completed = &events[7 + n]["response"];
    assert_response(completed, "completed", "acme/resp");
    assert_eq!(completed["id"], created["id"]);
    assert_eq!(completed["output"], json!([item]));
    assert_usage(&completed["usage"], req.len(), n);

    let rec = closed_record(&server.ledger, "rn").await;
    assert_eq!(rec.scenario.as_deref(), Some("responses-normal"));
    assert_eq!(rec.closed_by, Some(ClosedBy::Server));
}

#[tokio::test]
async fn tool_call_streams_function_call_arguments() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (head, bytes) = post_all(
        server.addr,
        &path("responses-tool-call", ""),
        &body("m", Some(true)),
    )
    .await;
    assert_eq!(head.status, 200);
    let events = checked(&parse_sse(&String::from_utf8(bytes).unwrap()));
    let k = TOOL_ARGUMENT_FRAGMENTS.len();
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ];
    expected.extend(std::iter::repeat_n(
        "response.function_call_arguments.delta",
        k,
    ));
    expected.extend([
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types(&events), expected);
    let added = &events[2]["item"];
    assert_eq!(added["type"], "function_call");
    assert_eq!(added["name"], TOOL_NAME);
    assert_eq!(added["call_id"], TOOL_CALL_ID);
    assert_eq!(added["arguments"], "");
    let args: String = events[3..3 + k]
        .iter()
        .map(|v| {
            assert_eq!(v["item_id"], added["id"]);
            v["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(args, TOOL_ARGUMENTS);
    assert_eq!(events[3 + k]["arguments"], TOOL_ARGUMENTS);
    assert_eq!(events[3 + k]["name"], TOOL_NAME);
    let item = &events[4 + k]["item"];
    assert_eq!(item["status"], "completed");
    assert_eq!(item["arguments"], TOOL_ARGUMENTS);
    let parsed: Value = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(parsed, json!({"city": "Paris"}));
    assert_eq!(events[5 + k]["response"]["output"], json!([item]));
}

#[tokio::test]
async fn keepalives_then_silence_until_the_client_leaves() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send(
        server.addr,
        "POST",
        &path(
            "responses-keepalive-then-stall",
            "tag=rks&keepalives=3&keepalive_ms=10",
        ),
        &body("m", Some(true)),
    )
    .await;
    assert_eq!(c.head().await.status, 200);
    let events = checked(&c.sse_chunks(5).await);
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            RESPONSES_KEEPALIVE,
            RESPONSES_KEEPALIVE,
            RESPONSES_KEEPALIVE
        ]
    );
    c.assert_silent_for(150).await;
    client_leaves_and_scenario_ends(&server.ledger, c, "rks", "responses-keepalive-then-stall")
        .await;
}

#[tokio::test]
async fn stall_after_deltas_until_the_client_leaves() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = open_stream(&server, "responses-stall-after-deltas", "tag=rsd&chunks=2").await;
    let events = checked(&c.sse_chunks(6).await);
    assert_eq!(
        types(&events)[4..],
        ["response.output_text.delta", "response.output_text.delta"]
    );
    let text: String = events[4..]
        .iter()
        .map(|v| v["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello from ");
    c.assert_silent_for(150).await;
    client_leaves_and_scenario_ends(&server.ledger, c, "rsd", "responses-stall-after-deltas").await;
}

#[tokio::test]
async fn stream_false_or_absent_is_one_response_object() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    for stream in [Some(false), None] {
        let req = body("acme/whole", stream);
        let (head, bytes) = post_all(server.addr, &path("responses-normal", ""), &req).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.get("content-type"), Some("application/json"));
        let r: Value = serde_json::from_slice(&bytes).unwrap();
        assert_response(&r, "completed", "acme/whole");
        let item = &r["output"][0];
        assert_eq!(item["type"], "message");
        assert_eq!(item["status"], "completed");
        assert_eq!(item["content"][0]["type"], "output_text");
        assert_eq!(item["content"][0]["text"], DEFAULT_TEXT);
        assert_usage(&r["usage"], req.len(), pieces(DEFAULT_TEXT).len());
    }
    let (_, bytes) = post_all(
        server.addr,
        &path("responses-tool-call", ""),
        &body("m", Some(false)),
    )
    .await;
    let r: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(r["output"][0]["type"], "function_call");
    assert_eq!(r["output"][0]["arguments"], TOOL_ARGUMENTS);
}

#[tokio::test]
async fn a_stall_without_stream_never_answers() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send(
        server.addr,
        "POST",
        &path("responses-stall-after-deltas", "tag=rnh"),
        &body("m", Some(false)),
    )
    .await;
    request_seen(&server.ledger, "rnh").await;
    c.assert_silent_for(150).await;
    let rec = client_leaves(&server.ledger, c, "rnh", "responses stall, stream false").await;
    assert!(rec.response_started_at_ms.is_none());
    no_active_scenarios(&server.ledger).await;
}

#[tokio::test]
async fn each_scenario_answers_only_its_own_endpoint() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    // The plain endpoint is responses-normal.
    let (head, bytes) = post_all(
        server.addr,
        "/v1/responses?tag=plain",
        &body("m", Some(true)),
    )
    .await;
    assert_eq!(head.status, 200);
    assert_eq!(
        checked(&parse_sse(&String::from_utf8(bytes).unwrap())).len(),
        pieces(DEFAULT_TEXT).len() + 8
    );
    let rec = closed_record(&server.ledger, "plain").await;
    assert_eq!(rec.scenario.as_deref(), Some("responses-normal"));
    // A Responses scenario at the chat endpoint, and a chat scenario at the Responses endpoint.
    for (target, answers) in [
        (
            "/scenario/responses-normal/v1/chat/completions",
            "/scenario/responses-normal/v1/responses",
        ),
        (
            "/scenario/normal/v1/responses",
            "/scenario/normal/v1/chat/completions",
        ),
    ] {
        let (head, bytes) = post_all(server.addr, target, &body("m", Some(true))).await;
        assert_eq!(head.status, 404, "{target}");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.ends_with(&format!("answers POST {answers}")), "{msg}");
    }
}
