//! The controllable provider: `/scenario/controlled/<id>/v1/chat/completions` does what
//! `POST /_control/<id>` last set, read afresh by every request.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mock_upstream::*;
use serde_json::{json, Value};

fn path(id: &str, tag: &str) -> String {
    format!("/scenario/controlled/{id}/v1/chat/completions?tag={tag}")
}

/// Sends `method` to `/_control/<id>` with `body`: (status, JSON answer).
async fn control(server: &Running, method: &str, id: &str, body: &str) -> (u16, Value) {
    let mut c = Client::send(server.addr, method, &format!("/_control/{id}"), body).await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.get("content-type"), Some("application/json"));
    let v = serde_json::from_slice(&c.fixed_body(&head).await).unwrap();
    (head.status, v)
}

async fn set(server: &Running, id: &str, body: Value) -> Value {
    let (status, v) = control(server, "POST", id, &body.to_string()).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Streams a whole answer from provider `id`; returns its text and the ledger's mode.
async fn answer(server: &Running, id: &str, tag: &str) -> (String, Option<String>) {
    let (head, bytes) = post_all(server.addr, &path(id, tag), &chat_body("m")).await;
    assert_eq!(head.status, 200);
    let payloads: Vec<Value> = parse_sse(&String::from_utf8(bytes).unwrap())
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(Sse::json)
        .collect();
    let rec = closed_record(&server.ledger, tag).await;
    assert_eq!(rec.scenario.as_deref(), Some("controlled"));
    (content_of(&payloads), rec.mode)
}

#[tokio::test]
async fn a_provider_nobody_set_answers_normally() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (text, mode) = answer(&server, "fresh", "c0").await;
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(mode.as_deref(), Some("ok first_token_ms=0"));
    let (status, v) = control(&server, "GET", "fresh", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"id": "fresh", "first_token_ms": 0, "mode": "ok", "served": 1})
    );
    // The control requests stay out of the ledger.
    assert_eq!(server.ledger.snapshot().len(), 1);
}

#[tokio::test]
async fn first_token_delay_is_read_per_request() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let v = set(&server, "slow", json!({"first_token_ms": 150})).await;
    assert_eq!(v["first_token_ms"], 150);
    assert_eq!(v["mode"], "ok");
    let mut c = open_ok(server.addr, &path("slow", "d1"), &chat_body("m")).await;
    let head_at = Instant::now();
    let first = c.chunk().await.unwrap().unwrap();
    let waited = head_at.elapsed();
    assert!(
        waited >= Duration::from_millis(140),
        "first token after {waited:?}"
    );
    assert!(String::from_utf8(first)
        .unwrap()
        .contains("\"content\":\"Hello \""));
    c.all_chunks().await;
    let rec = closed_record(&server.ledger, "d1").await;
    assert_eq!(rec.mode.as_deref(), Some("ok first_token_ms=150"));

    // Back to no delay: the next request sees it.
    set(&server, "slow", json!({"first_token_ms": 0})).await;
    let (text, mode) = answer(&server, "slow", "d2").await;
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(mode.as_deref(), Some("ok first_token_ms=0"));
}

#[tokio::test]
async fn stall_then_ok_while_the_stalled_request_is_still_open() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    set(&server, "p", json!({"mode": "stall"})).await;
    let mut stalled = Client::send(server.addr, "POST", &path("p", "s1"), &chat_body("m")).await;
    let head = stalled.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.get("content-type"), Some("text/event-stream"));
    // Another provider is not affected.
    let (text, _) = answer(&server, "q", "other").await;
    assert_eq!(text, DEFAULT_TEXT);
    // The provider recovers; a new request streams while the first is still silent.
    set(&server, "p", json!({"mode": "ok"})).await;
    let (text, mode) = answer(&server, "p", "s2").await;
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(mode.as_deref(), Some("ok first_token_ms=0"));
    stalled.assert_silent_for(100).await;
    let dropped = drop_client(stalled);
    let rec = closed_record(&server.ledger, "s1").await;
    assert_eq!(rec.mode.as_deref(), Some("stall first_token_ms=0"));
    assert_client_closed(&rec, dropped, "controlled stall");
    no_active_scenarios(&server.ledger).await;
    let (_, v) = control(&server, "GET", "p", "").await;
    assert_eq!(v["served"], 2);
}

#[tokio::test]
async fn stall_after_n_chunks() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let v = set(
        &server,
        "p",
        json!({"mode": "stall-after=2", "first_token_ms": 20}),
    )
    .await;
    assert_eq!(v["mode"], "stall-after=2");
    let mut c = open_ok(server.addr, &path("p", "sa"), &chat_body("m")).await;
    let mut text = String::new();
    for _ in 0..2 {
        let chunk = c.chunk().await.unwrap().unwrap();
        let v = chunk_payload(&chunk).unwrap();
        text.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap());
    }
    assert_eq!(text, "Hello from ");
    c.assert_silent_for(150).await;
    let rec = client_leaves(&server.ledger, c, "sa", "controlled stall-after").await;
    assert_eq!(rec.mode.as_deref(), Some("stall-after=2 first_token_ms=20"));
}

#[tokio::test]
async fn http_503_with_retry_after() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    set(&server, "down", json!({"mode": "http-503"})).await;
    let target = format!("{}&retry_after=4", path("down", "h"));
    let (head, bytes) = post_all(server.addr, &target, &chat_body("m")).await;
    assert_eq!(head.status, 503);
    assert_eq!(head.get("retry-after"), Some("4"));
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["error"]["code"], 503);
    let rec = closed_record(&server.ledger, "h").await;
    assert_eq!(rec.mode.as_deref(), Some("http-503 first_token_ms=0"));
    // DELETE puts it back to ok.
    let (status, v) = control(&server, "DELETE", "down", "").await;
    assert_eq!(status, 200);
    assert_eq!(v["mode"], "ok");
    let (text, _) = answer(&server, "down", "h2").await;
    assert_eq!(text, DEFAULT_TEXT);
}

#[tokio::test]
async fn bad_updates_are_refused_and_change_nothing() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    set(
        &server,
        "p",
        json!({"mode": "stall-after=1", "first_token_ms": 5}),
    )
    .await;
    for body in [
        r#"{"mode":"slow"}"#,
        r#"{"mode":"http-200"}"#,
        r#"{"first_token_ms":"soon"}"#,
        r#"{"first_token_ms":5,"delay":1}"#,
        "not json",
        "[]",
    ] {
        let (status, v) = control(&server, "POST", "p", body).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert!(v["error"]["message"].is_string());
    }
    let (_, v) = control(&server, "GET", "p", "").await;
    assert_eq!(
        v,
        json!({"id": "p", "first_token_ms": 5, "mode": "stall-after=1", "served": 0})
    );
    let (status, _) = control(&server, "PUT", "p", "{}").await;
    assert_eq!(status, 405);
    // The provider needs an id, and only answers the chat endpoint.
    let (head, _) = post_all(
        server.addr,
        "/scenario/controlled/v1/chat/completions",
        &chat_body("m"),
    )
    .await;
    assert_eq!(
        head.status, 200,
        "the id is the segment after controlled/ (here v1)"
    );
    let (_, v) = control(&server, "GET", "v1", "").await;
    assert_eq!(v["served"], 1);
    let (head, bytes) = post_all(
        server.addr,
        "/scenario/controlled/p/v1/responses",
        &chat_body("m"),
    )
    .await;
    assert_eq!(head.status, 404);
    assert!(String::from_utf8(bytes)
        .unwrap()
        .contains("answers POST /scenario/controlled/<id>/v1/chat/completions"));
}
