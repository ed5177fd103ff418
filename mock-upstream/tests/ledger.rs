//! The connection ledger over HTTP and in-process, CORS, the index page, and server lifecycle.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::*;
use http_body_util::BodyExt;
use mock_upstream::*;
use serde_json::Value;
use tower::ServiceExt;

/// `GET target` and the JSON answer.
async fn get_json(addr: SocketAddr, target: &str) -> (Head, Value) {
    let mut c = Client::send_with(addr, "GET", target, &[], "").await;
    let head = c.head().await;
    let body = c.fixed_body(&head).await;
    (head, serde_json::from_slice(&body).expect("JSON"))
}

#[tokio::test]
async fn long_poll_returns_when_the_connection_closes() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let addr = server.addr;
    let mut c = Client::send(
        addr,
        "POST",
        "/scenario/stall-after-chunks/v1/chat/completions?tag=lp&chunks=1",
        &chat_body("m"),
    )
    .await;
    assert_eq!(c.head().await.status, 200);
    c.chunk().await.unwrap().unwrap();

    let poll = tokio::spawn(async move {
        let r = get_json(addr, "/_ledger?tag=lp&wait_closed_ms=5000").await;
        (r, now_ms())
    });
    // The long-poll stays pending while the stream is open (a deadline, not a sleep).
    let mut poll = poll;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut poll)
            .await
            .is_err(),
        "the long-poll answered while the connection was open"
    );
    let dropped = drop_client(c);
    let ((head, v), answered_at) = poll.await.unwrap();
    head.assert_common();
    assert_eq!(head.get("content-type"), Some("application/json"));
    assert_eq!(v["timed_out"], false);
    let conns = v["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0]["closed_by"], "client");
    assert_eq!(conns[0]["tag"], "lp");
    let latency = answered_at - dropped;
    println!("long-poll answered {latency:.3} ms after the client left");
    assert!(
        latency < 500.0,
        "long-poll answered {latency:.3} ms after the close"
    );
    let rec: ConnectionRecord = serde_json::from_value(conns[0].clone()).unwrap();
    assert_client_closed(&rec, dropped, "long-poll (stall-after-chunks)");
    assert!(v["now_ms"].as_f64().unwrap() >= rec.closed_at_ms.unwrap());
}

#[tokio::test]
async fn long_poll_times_out_while_open_or_absent() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let c = open_ok(
        server.addr,
        "/scenario/headers-then-silence/v1/chat/completions?tag=open",
        &chat_body("m"),
    )
    .await;

    let start = Instant::now();
    let (_, v) = get_json(server.addr, "/_ledger?tag=open&wait_closed_ms=120").await;
    let waited = start.elapsed();
    assert_eq!(v["timed_out"], true);
    assert!(waited >= Duration::from_millis(120), "{waited:?}");
    let conns = v["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1);
    assert!(conns[0]["closed_at_ms"].is_null() && conns[0]["closed_by"].is_null());

    // Nothing matches at all: still a timeout.
    let (_, v) = get_json(server.addr, "/_ledger?tag=never&wait_closed_ms=50").await;
    assert_eq!(v["timed_out"], true);
    assert_eq!(v["connections"], serde_json::json!([]));

    // The Rust API agrees.
    let out = server
        .ledger
        .wait_closed_matching(&Filter::tag("open"), Duration::from_millis(30))
        .await;
    assert!(out.timed_out && out.connections.len() == 1);
    drop(c);
    assert!(
        !server
            .ledger
            .wait_closed_matching(&Filter::tag("open"), Duration::from_secs(5))
            .await
            .timed_out
    );
}

#[tokio::test]
async fn filters_exclusion_and_clear() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    for (scenario, tag) in [("normal", "a"), ("cr-only", "b"), ("normal", "b")] {
        let mut c = Client::send(
            server.addr,
            "POST",
            &format!("/scenario/{scenario}/v1/chat/completions?tag={tag}"),
            "{}",
        )
        .await;
        c.head().await;
        c.all_chunks().await;
    }
    let mut c = Client::send_with(server.addr, "GET", "/healthz", &[], "").await;
    let head = c.head().await;
    assert_eq!(c.fixed_body(&head).await, b"ok");

    let (_, all) = get_json(server.addr, "/_ledger").await;
    let conns = all["connections"].as_array().unwrap();
    assert_eq!(
        conns.len(),
        4,
        "the ledger's own requests are excluded: {all}"
    );
    assert!(conns.iter().all(|c| c["path"] != "/_ledger"));
    let ids: Vec<u64> = conns.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(all["now_ms"].as_f64().unwrap() > 1.6e12);

    let (_, b) = get_json(server.addr, "/_ledger?tag=b&wait_closed_ms=2000").await;
    assert_eq!(b["connections"].as_array().unwrap().len(), 2);
    assert_eq!(b["timed_out"], false);
    let (_, normal) = get_json(server.addr, "/_ledger?scenario=normal").await;
    assert_eq!(normal["connections"].as_array().unwrap().len(), 2);
    let (_, both) = get_json(server.addr, "/_ledger?scenario=normal&tag=b").await;
    assert_eq!(both["connections"].as_array().unwrap().len(), 1);
    assert!(both.get("timed_out").is_none());
    assert_eq!(server.ledger.query(&Filter::tag("b")).len(), 2);

    let mut c = Client::send_with(server.addr, "DELETE", "/_ledger", &[], "").await;
    let head = c.head().await;
    assert_eq!(head.status, 200);
    c.fixed_body(&head).await;
    let (_, after) = get_json(server.addr, "/_ledger").await;
    assert_eq!(after["connections"], serde_json::json!([]));
    assert!(server.ledger.snapshot().is_empty());
}

#[tokio::test]
async fn authorization_is_redacted_everywhere() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send_with(
        server.addr,
        "POST",
        "/v1/chat/completions?tag=auth",
        &[
            ("Authorization", &format!("Bearer {SECRET}")),
            ("HTTP-Referer", "http://localhost/app"),
            ("X-Title", "test"),
        ],
        "{}",
    )
    .await;
    c.head().await;
    c.all_chunks().await;
    let rec = closed_record(&server.ledger, "auth").await;
    assert!(rec.authorization_seen);
    assert_eq!(rec.headers["authorization"], "<redacted len=38>");
    assert_eq!(rec.headers["http-referer"], "http://localhost/app");
    assert_eq!(rec.headers["x-title"], "test");
    let (_, v) = get_json(server.addr, "/_ledger").await;
    assert!(!v.to_string().contains(SECRET));
    assert!(!format!("{:?}", server.ledger.snapshot()).contains(SECRET));

    let mut c = Client::send_with(
        server.addr,
        "POST",
        "/v1/chat/completions?tag=noauth",
        &[],
        "{}",
    )
    .await;
    c.head().await;
    c.all_chunks().await;
    let rec = closed_record(&server.ledger, "noauth").await;
    assert!(!rec.authorization_seen);
    assert!(!rec.headers.contains_key("authorization"));
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send_with(
        server.addr,
        "OPTIONS",
        "/scenario/normal/v1/chat/completions",
        &[
            ("Origin", "http://localhost:5173"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization,content-type,x-custom",
            ),
        ],
        "",
    )
    .await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.status, 204);
    assert_eq!(
        head.get("access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
    assert_eq!(
        head.get("access-control-allow-headers"),
        Some("authorization,content-type,x-custom")
    );
    assert_eq!(head.get("access-control-max-age"), Some("600"));

    let mut c = Client::send_with(server.addr, "OPTIONS", "/v1/chat/completions", &[], "").await;
    let head = c.head().await;
    assert_eq!(head.status, 204);
    let allowed = head.get("access-control-allow-headers").unwrap();
    for h in [
        "authorization",
        "content-type",
        "accept",
        "http-referer",
        "x-openrouter-title",
        "x-title",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }

    let mut c = Client::send_with(server.addr, "GET", "/nowhere", &[], "").await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.status, 404);
    assert_eq!(
        head.get("access-control-expose-headers"),
        Some("X-Generation-Id, Retry-After")
    );
}

#[tokio::test]
async fn index_and_healthz() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send_with(server.addr, "GET", "/", &[], "").await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.status, 200);
    let text = String::from_utf8(c.fixed_body(&head).await).unwrap();
    for scenario in SCENARIOS {
        let line = format!("  {:<24} {}\n", scenario.name, scenario.about);
        assert!(text.contains(&line), "{line:?} missing from the index");
    }
    for p in [
        "head_delay_ms",
        "first_delay_ms",
        "delay_ms",
        "keepalive_ms",
        "keepalives",
        "chunks",
        "retry_after",
        "size",
        "usage [always]",
        "restate [0]",
        "POST /v1/responses",
        "POST /v1/messages",
        "POST /_control/<id>",
    ] {
        assert!(text.contains(p), "{p} missing from the index");
    }
    assert!(text.contains(&format!(
        "curl -N -X POST http://{}/scenario/normal/v1/chat/completions -H 'Content-Type: application/json' \
         -d '{{\"model\":\"mock/model\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}],\"stream\":true}}'",
        server.addr
    )));
}

#[tokio::test]
async fn client_reset_is_recorded() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let c = open_ok(
        server.addr,
        "/scenario/headers-then-silence/v1/chat/completions?tag=crst",
        "{}",
    )
    .await;
    c.stream.set_zero_linger().unwrap();
    let rec = client_leaves(&server.ledger, c, "crst", "client reset").await;
    assert!(rec.client_reset, "{rec:?}");
    no_active_scenarios(&server.ledger).await;
}

#[tokio::test]
async fn connect_without_request_is_listed_once_closed() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // Open connections without a request are not listed.
    assert!(server.ledger.snapshot().is_empty());
    drop(s);
    let ok = server
        .ledger
        .wait_for(Duration::from_secs(5), |l| l.snapshot().len() == 1)
        .await;
    assert!(ok);
    let rec = &server.ledger.snapshot()[0];
    assert_eq!(rec.method, "");
    assert_eq!(rec.closed_by, Some(ClosedBy::Client));
}

#[tokio::test]
async fn shutdown_closes_open_connections() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let ledger = server.ledger.clone();
    let mut c = open_ok(
        server.addr,
        "/scenario/headers-then-silence/v1/chat/completions?tag=sd",
        "{}",
    )
    .await;
    let addr = server.addr;
    server.shutdown().await;
    let rec = closed_record(&ledger, "sd").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Server));
    // The client sees the end of the connection, and nobody listens any more.
    assert!(c.chunk().await.is_err());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    no_active_scenarios(&ledger).await;
}

#[tokio::test]
async fn spawn_refuses_non_loopback_addresses() {
    for addr in ["0.0.0.0:0", "192.0.2.1:0", "example:0", "nonsense"] {
        let err = spawn(addr).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{addr}");
    }
    let s = spawn("localhost:0").await.unwrap();
    assert!(s.addr.ip().is_loopback());
    assert_eq!(s.url(), format!("http://{}", s.addr));
}

#[tokio::test]
async fn in_process_oneshot() {
    let ledger = Ledger::new();
    let req = Request::builder()
        .method("POST")
        .uri("/scenario/normal/v1/chat/completions?tag=inproc&text=one%20two")
        .header("authorization", format!("Bearer {SECRET}"))
        .body(Body::from(chat_body("in/proc")))
        .unwrap();
    let resp = app(ledger.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["connection"], "close");
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let payloads: Vec<Value> = split_events(&text, "\n\n")
        .iter()
        .filter_map(|e| payload(e))
        .collect();
    assert_eq!(content_of(&payloads), "one two");
    assert_eq!(payloads[0]["model"], "in/proc");
    let rec = closed_record(&ledger, "inproc").await;
    assert_eq!(rec.peer, "in-process");
    assert_eq!(rec.closed_by, Some(ClosedBy::Server));
    assert_eq!(rec.headers["authorization"], "<redacted len=38>");

    // A dropped unfinished stream counts as the client leaving.
    let req = Request::builder()
        .method("POST")
        .uri("/scenario/headers-then-silence/v1/chat/completions?tag=inproc-drop")
        .body(Body::empty())
        .unwrap();
    let resp = app(ledger.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    let rec = closed_record(&ledger, "inproc-drop").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Client));
    no_active_scenarios(&ledger).await;
}
