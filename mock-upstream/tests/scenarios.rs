//! Every scenario driven over a real socket with a raw HTTP/1.1 client.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::*;
use mock_upstream::*;
use serde_json::Value;

fn path(scenario: &str, query: &str) -> String {
    format!("/scenario/{scenario}/v1/chat/completions?{query}")
}

/// Reads a whole chunked SSE response: (head, chunks).
async fn fetch(server: &Running, scenario: &str, query: &str) -> (Head, Vec<Vec<u8>>) {
    let mut c = Client::send(
        server.addr,
        "POST",
        &path(scenario, query),
        &chat_body("test/model"),
    )
    .await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.status, 200);
    let chunks = c.all_chunks().await;
    assert_eq!(c.read_until_closed().await, Ok(()));
    (head, chunks)
}

fn text_of(chunks: &[Vec<u8>]) -> String {
    String::from_utf8(chunks.concat()).expect("utf-8 stream")
}

fn assert_sse_head(head: &Head, id: u64) {
    assert_eq!(head.get("content-type"), Some("text/event-stream"));
    assert_eq!(head.get("cache-control"), Some("no-cache"));
    assert_eq!(head.get("transfer-encoding"), Some("chunked"));
    assert_eq!(
        head.get("x-generation-id"),
        Some(format!("gen-mock-{id}").as_str())
    );
    assert_eq!(
        head.get("access-control-expose-headers"),
        Some("X-Generation-Id, Retry-After")
    );
}

/// The usual ending: finish chunk, usage chunk, `[DONE]`.
fn assert_normal_end(events: &[String], pieces: usize, body_len: usize) {
    let n = events.len();
    assert_eq!(events[n - 1], "data: [DONE]");
    let usage = payload(&events[n - 2]).unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    let prompt = prompt_tokens(body_len);
    assert_eq!(usage["usage"]["prompt_tokens"], prompt);
    assert_eq!(usage["usage"]["completion_tokens"], pieces as u64);
    assert_eq!(usage["usage"]["total_tokens"], prompt + pieces as u64);
    let finish = payload(&events[n - 3]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["native_finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"]["content"], "");
}

/// Opens a chat request to `scenario` (with `query`) and returns the client once the head says
/// 200.
async fn open_chat(server: &Running, scenario: &str, query: &str) -> Client {
    open_ok(server.addr, &path(scenario, query), &chat_body("m")).await
}

#[tokio::test]
async fn normal_stream_exact_events_and_ledger() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let body = chat_body("acme/model-1");
    let mut c = Client::send(server.addr, "POST", &path("normal", "tag=normal"), &body).await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.status, 200);
    let chunks = c.all_chunks().await;
    assert_eq!(c.read_until_closed().await, Ok(()));

    let rec = closed_record(&server.ledger, "normal").await;
    assert_sse_head(&head, rec.id);
    let expected = pieces(DEFAULT_TEXT);
    // One logical write = one HTTP chunk = one event.
    assert_eq!(chunks.len(), expected.len() + 3);
    let events: Vec<String> = chunks
        .iter()
        .map(|c| {
            let s = String::from_utf8(c.clone()).unwrap();
            assert!(s.ends_with("\n\n") && s.starts_with("data: "), "{s:?}");
            s.trim_end_matches('\n').to_string()
        })
        .collect();
    let payloads: Vec<Value> = events.iter().filter_map(|e| payload(e)).collect();
    assert_eq!(content_of(&payloads), DEFAULT_TEXT);
    for (i, piece) in expected.iter().enumerate() {
        let p = &payloads[i];
        assert_eq!(p["id"], format!("gen-mock-{}", rec.id));
        assert_eq!(p["object"], "chat.completion.chunk");
        assert_eq!(p["model"], "acme/model-1");
        assert_eq!(p["provider"], "Mock");
        assert!(p["created"].as_u64().unwrap() > 1_600_000_000);
        let choice = &p["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["delta"]["role"], "assistant");
        assert_eq!(choice["delta"]["content"], piece.as_str());
        assert!(choice["finish_reason"].is_null());
        assert!(choice["native_finish_reason"].is_null());
        assert!(choice.get("logprobs").unwrap().is_null());
    }
    // The exact first event, byte for byte.
    let created = payloads[0]["created"].as_u64().unwrap();
    assert_eq!(
        String::from_utf8(chunks[0].clone()).unwrap(),
        format!(
            "data: {{\"id\":\"gen-mock-{}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\
             \"model\":\"acme/model-1\",\"provider\":\"Mock\",\"choices\":[{{\"index\":0,\"delta\":\
             {{\"role\":\"assistant\",\"content\":\"Hello \"}},\"finish_reason\":null,\
             \"native_finish_reason\":null,\"logprobs\":null}}]}}\n\n",
            rec.id
        )
    );
    assert_normal_end(&events, expected.len(), body.len());

    // The ledger record.
    assert_eq!(rec.method, "POST");
    assert_eq!(rec.path, "/scenario/normal/v1/chat/completions");
    assert_eq!(rec.query, "tag=normal");
    assert_eq!(rec.scenario.as_deref(), Some("normal"));
    assert_eq!(rec.body, body);
    assert!(rec.authorization_seen);
    assert_eq!(
        rec.headers["authorization"],
        format!("<redacted len={}>", "Bearer ".len() + SECRET.len())
    );
    assert_eq!(rec.headers["content-type"], "application/json");
    assert_eq!(rec.status, Some(200));
    assert_eq!(rec.closed_by, Some(ClosedBy::Server));
    assert!(!rec.client_reset);
    let started = rec.response_started_at_ms.unwrap();
    assert!(rec.opened_at_ms <= started && started <= rec.closed_at_ms.unwrap());
    assert!(rec.peer.starts_with("127.0.0.1:"));
    let json = serde_json::to_string(&server.ledger.snapshot()).unwrap();
    assert!(!json.contains(SECRET), "the secret leaked into the ledger");
}

#[tokio::test]
async fn plain_path_text_param_and_default_model() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send(
        server.addr,
        "POST",
        "/v1/chat/completions?tag=plain&text=Hi%20there,%20%E4%B8%96%E7%95%8C!",
        "not json",
    )
    .await;
    let head = c.head().await;
    assert_eq!(head.status, 200);
    let chunks = c.all_chunks().await;
    let text = text_of(&chunks);
    let payloads: Vec<Value> = split_events(&text, "\n\n")
        .iter()
        .filter_map(|e| payload(e))
        .collect();
    assert_eq!(content_of(&payloads), "Hi there, 世界!");
    assert_eq!(payloads.len(), pieces("Hi there, 世界!").len() + 2);
    assert_eq!(payloads[0]["model"], DEFAULT_MODEL);
    let rec = closed_record(&server.ledger, "plain").await;
    assert_eq!(rec.scenario.as_deref(), Some("normal"));
    assert_eq!(rec.body, "not json");
}

#[tokio::test]
async fn keepalive_then_content_paces_comments() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send(
        server.addr,
        "POST",
        &path("keepalive-then-content", "keepalive_ms=30&keepalives=3"),
        &chat_body("m"),
    )
    .await;
    let head = c.head().await;
    assert_eq!(head.status, 200);
    let mut comment_times = Vec::new();
    for _ in 0..3 {
        let chunk = c.chunk().await.unwrap().unwrap();
        assert_eq!(chunk, b": OPENROUTER PROCESSING\n\n");
        comment_times.push(Instant::now());
    }
    let first = c.chunk().await.unwrap().unwrap();
    let waited = comment_times[0].elapsed();
    assert!(
        waited >= Duration::from_millis(85),
        "content came {waited:?} after the first comment"
    );
    let mut chunks = vec![first];
    chunks.extend(c.all_chunks().await);
    let text = text_of(&chunks);
    let payloads: Vec<Value> = split_events(&text, "\n\n")
        .iter()
        .filter_map(|e| payload(e))
        .collect();
    assert_eq!(content_of(&payloads), DEFAULT_TEXT);
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn keepalive_forever_until_client_leaves() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = open_chat(&server, "keepalive-forever", "tag=kaf&keepalive_ms=10").await;
    for _ in 0..4 {
        assert_eq!(
            c.chunk().await.unwrap().unwrap(),
            b": OPENROUTER PROCESSING\n\n"
        );
    }
    client_leaves_and_scenario_ends(&server.ledger, c, "kaf", "keepalive-forever").await;
}

#[tokio::test]
async fn no_headers_until_client_leaves() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send(
        server.addr,
        "POST",
        &path("no-headers", "tag=nohead"),
        &chat_body("m"),
    )
    .await;
    request_seen(&server.ledger, "nohead").await;
    assert_eq!(server.ledger.active_scenarios(), 1);
    c.assert_silent_for(150).await;
    let open = server.ledger.query(&Filter::tag("nohead"));
    assert!(open[0].response_started_at_ms.is_none() && !open[0].is_closed());
    let rec = client_leaves(&server.ledger, c, "nohead", "no-headers").await;
    assert!(!rec.client_reset);
    assert!(rec.response_started_at_ms.is_none());
    assert_eq!(rec.body, chat_body("m"));
    // The handler that held back the headers is gone too.
    no_active_scenarios(&server.ledger).await;
}

#[tokio::test]
async fn headers_then_silence_until_client_leaves() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send(
        server.addr,
        "POST",
        &path("headers-then-silence", "tag=hts"),
        &chat_body("m"),
    )
    .await;
    let head = c.head().await;
    assert_eq!(head.status, 200);
    assert_eq!(head.get("content-type"), Some("text/event-stream"));
    c.assert_silent_for(150).await;
    let rec = client_leaves(&server.ledger, c, "hts", "headers-then-silence").await;
    assert!(!rec.client_reset, "a FIN, not a reset: {rec:?}");
    assert!(rec.response_started_at_ms.is_some());
    no_active_scenarios(&server.ledger).await;
}

#[tokio::test]
async fn stall_after_chunks_until_client_leaves() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = open_chat(&server, "stall-after-chunks", "tag=stall&chunks=2").await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(c.chunk().await.unwrap().unwrap());
    }
    let payloads: Vec<Value> = got.iter().filter_map(|c| chunk_payload(c)).collect();
    assert_eq!(content_of(&payloads), "Hello from ");
    c.assert_silent_for(150).await;
    client_leaves_and_scenario_ends(&server.ledger, c, "stall", "stall-after-chunks").await;
}

#[tokio::test]
async fn stall_with_keepalives() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = open_chat(&server, "stall-with-keepalives", "tag=swk&keepalive_ms=10").await;
    let mut content = String::new();
    for _ in 0..3 {
        let chunk = c.chunk().await.unwrap().unwrap();
        content.push_str(
            chunk_payload(&chunk).unwrap()["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap(),
        );
    }
    assert_eq!(content, "Hello from the ");
    for _ in 0..3 {
        assert_eq!(
            c.chunk().await.unwrap().unwrap(),
            b": OPENROUTER PROCESSING\n\n"
        );
    }
    client_leaves_and_scenario_ends(&server.ledger, c, "swk", "stall-with-keepalives").await;
}

#[tokio::test]
async fn close_without_done() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "close-without-done", "tag=cwd&chunks=4").await;
    assert_eq!(chunks.len(), 4);
    let text = text_of(&chunks);
    assert!(!text.contains("[DONE]") && !text.contains("finish_reason\":\"stop"));
    let payloads: Vec<Value> = split_events(&text, "\n\n")
        .iter()
        .filter_map(|e| payload(e))
        .collect();
    assert_eq!(content_of(&payloads), "Hello from the mock ");
    let rec = closed_record(&server.ledger, "cwd").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Server));
}

#[tokio::test]
async fn multibyte_crlf_splits_characters_and_line_ends() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "multibyte-crlf", "tag=mb").await;
    assert!(
        chunks.iter().all(|c| (1..=7).contains(&c.len())),
        "write sizes"
    );
    let bytes = chunks.concat();
    // Boundaries between chunks, as offsets into the byte stream.
    let mut cuts = Vec::new();
    let mut off = 0;
    for c in &chunks[..chunks.len() - 1] {
        off += c.len();
        cuts.push(off);
    }
    assert!(
        cuts.iter()
            .any(|&i| bytes[i - 1] == b'\r' && bytes[i] == b'\n'),
        "no write boundary between CR and LF"
    );
    let emoji = bytes
        .iter()
        .position(|&b| b >= 0xF0)
        .expect("a 4-byte character");
    assert!(
        cuts.iter().any(|&i| i > emoji && i < emoji + 4),
        "no write boundary inside the emoji"
    );
    assert!(
        chunks.iter().any(|c| std::str::from_utf8(c).is_err()),
        "some write must be invalid UTF-8 on its own"
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(!text.replace("\r\n", "").contains('\n'), "bare LF found");
    let events = split_events(&text, "\r\n\r\n");
    let payloads: Vec<Value> = events.iter().filter_map(|e| payload(e)).collect();
    assert_eq!(content_of(&payloads), MULTIBYTE_TEXT);
    assert_eq!(events.last().unwrap(), "data: [DONE]");
}

#[tokio::test]
async fn cr_only_line_ends() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "cr-only", "").await;
    let text = text_of(&chunks);
    assert!(!text.contains('\n'), "LF found in a CR-only stream");
    assert!(text.ends_with("data: [DONE]\r\r"));
    let payloads: Vec<Value> = split_events(&text, "\r\r")
        .iter()
        .filter_map(|e| payload(e))
        .collect();
    assert_eq!(content_of(&payloads), DEFAULT_TEXT);
}

#[tokio::test]
async fn bom_and_no_space_after_colon() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "bom-nospace", "").await;
    assert_eq!(chunks[0], [0xEF, 0xBB, 0xBF]);
    let text = text_of(&chunks[1..]);
    let events = split_events(&text, "\n\n");
    assert!(events
        .iter()
        .all(|e| e.starts_with("data:") && !e.starts_with("data: ")));
    assert!(events[0].starts_with("data:{\"id\""));
    assert_eq!(events.last().unwrap(), "data:[DONE]");
    let payloads: Vec<Value> = events.iter().filter_map(|e| payload(e)).collect();
    assert_eq!(content_of(&payloads), DEFAULT_TEXT);
}

fn assert_top_level_error(v: &Value) {
    assert_eq!(v["error"]["code"], 502);
    assert_eq!(v["error"]["message"], "Provider returned error");
    assert_eq!(v["error"]["metadata"]["provider_name"], "Mock");
    assert_eq!(v["choices"][0]["finish_reason"], "error");
    assert_eq!(v["choices"][0]["native_finish_reason"], "error");
    assert_eq!(v["choices"][0]["delta"]["content"], "");
}

#[tokio::test]
async fn error_before_content() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (head, chunks) = fetch(&server, "error-before-content", "").await;
    assert_eq!(head.status, 200);
    let events = split_events(&text_of(&chunks), "\n\n");
    assert_eq!(events.len(), 2);
    assert_top_level_error(&payload(&events[0]).unwrap());
    assert_eq!(events[1], "data: [DONE]");
}

#[tokio::test]
async fn error_after_content() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "error-after-content", "chunks=2").await;
    let events = split_events(&text_of(&chunks), "\n\n");
    assert_eq!(events.len(), 4);
    let payloads: Vec<Value> = events[..2].iter().filter_map(|e| payload(e)).collect();
    assert_eq!(content_of(&payloads), "Hello from ");
    assert_top_level_error(&payload(&events[2]).unwrap());
    assert_eq!(events[3], "data: [DONE]");
}

#[tokio::test]
async fn choice_error() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "choice-error", "").await;
    let events = split_events(&text_of(&chunks), "\n\n");
    assert_eq!(events.len(), 5);
    let err = payload(&events[3]).unwrap();
    assert!(
        err.get("error").is_none(),
        "error must sit inside the choice"
    );
    assert_eq!(err["choices"][0]["finish_reason"], "error");
    assert_eq!(err["choices"][0]["error"]["code"], 500);
    assert_eq!(err["choices"][0]["error"]["message"], "upstream failed");
    assert_eq!(events[4], "data: [DONE]");
}

#[tokio::test]
async fn http_error_statuses() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let reasons = [
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (402, "Payment Required"),
        (403, "Forbidden"),
        (404, "Not Found"),
        (408, "Request Timeout"),
        (413, "Payload Too Large"),
        (422, "Unprocessable Entity"),
        (429, "Too Many Requests"),
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
    ];
    for (status, reason) in reasons {
        let name = format!("http-{status}");
        assert!(scenario(&name).is_some(), "{name} is not in the table");
        let mut c = Client::send(
            server.addr,
            "POST",
            &path(&name, "retry_after=7"),
            &chat_body("m"),
        )
        .await;
        let head = c.head().await;
        head.assert_common();
        assert_eq!(head.status, status);
        assert_eq!(head.get("content-type"), Some("application/json"));
        let retry = head.get("retry-after");
        if status == 429 || status == 503 {
            assert_eq!(retry, Some("7"), "{name}");
        } else {
            assert_eq!(retry, None, "{name}");
        }
        let body: Value = serde_json::from_slice(&c.fixed_body(&head).await).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": status, "message": reason, "metadata": {}}})
        );
    }
}

#[tokio::test]
async fn http_429_with_date() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send(
        server.addr,
        "POST",
        &path("http-429-date", "retry_after=30"),
        "{}",
    )
    .await;
    let head = c.head().await;
    assert_eq!(head.status, 429);
    let date = httpdate::parse_http_date(head.get("retry-after").unwrap()).unwrap();
    let ahead = date.duration_since(SystemTime::now()).unwrap();
    assert!(
        ahead >= Duration::from_secs(29) && ahead <= Duration::from_secs(32),
        "{ahead:?}"
    );
}

#[tokio::test]
async fn html_200() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send(server.addr, "POST", &path("html-200", ""), "{}").await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.status, 200);
    assert!(head.get("content-type").unwrap().starts_with("text/html"));
    let body = String::from_utf8(c.fixed_body(&head).await).unwrap();
    assert!(body.contains("<html>") && body.contains("</html>"));
}

#[tokio::test]
async fn json_completion_despite_stream_flag() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let body = chat_body("acme/json");
    let mut c = Client::send(server.addr, "POST", &path("json", "tag=json"), &body).await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.status, 200);
    assert_eq!(head.get("content-type"), Some("application/json"));
    let v: Value = serde_json::from_slice(&c.fixed_body(&head).await).unwrap();
    let rec = closed_record(&server.ledger, "json").await;
    assert_eq!(
        head.get("x-generation-id"),
        Some(format!("gen-mock-{}", rec.id).as_str())
    );
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "acme/json");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], DEFAULT_TEXT);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let n = pieces(DEFAULT_TEXT).len() as u64;
    assert_eq!(v["usage"]["completion_tokens"], n);
    assert_eq!(v["usage"]["total_tokens"], prompt_tokens(body.len()) + n);
    assert_eq!(rec.closed_by, Some(ClosedBy::Server));
}

#[tokio::test]
async fn malformed_event_in_the_middle() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "malformed-event", "").await;
    let pos = chunks
        .iter()
        .position(|c| c == MALFORMED_EVENT.as_bytes())
        .expect("the malformed event");
    assert!(
        pos > 0 && pos < chunks.len() - 4,
        "not between good chunks: {pos}"
    );
    let good: Vec<Value> = chunks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != pos)
        .filter_map(|(_, c)| chunk_payload(c))
        .collect();
    assert_eq!(content_of(&good), DEFAULT_TEXT);
    assert!(serde_json::from_str::<Value>(MALFORMED_EVENT.trim_start_matches("data: ")).is_err());
}

#[tokio::test]
async fn huge_line_in_64k_writes() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "huge-line", "").await;
    let size = 2_097_152;
    let text = text_of(&chunks);
    let events = split_events(&text, "\n\n");
    assert_eq!(events.len(), 4);
    assert!(events[0].len() > size && !events[0].contains('\n'));
    let first = payload(&events[0]).unwrap();
    let content = first["choices"][0]["delta"]["content"].as_str().unwrap();
    assert_eq!(content.len(), size);
    assert!(content.bytes().all(|b| b == b'x'));
    let line_chunks = (events[0].len() + 2).div_ceil(HUGE_WRITE);
    assert!(chunks[..line_chunks - 1]
        .iter()
        .all(|c| c.len() == HUGE_WRITE));
    assert_eq!(events[3], "data: [DONE]");
}

#[tokio::test]
async fn reset_after_content_resets_the_client() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = open_chat(&server, "reset-after-content", "tag=rst&chunks=3").await;
    let mut content = String::new();
    let err = loop {
        match c.chunk().await {
            Ok(Some(chunk)) => {
                let v = chunk_payload(&chunk).unwrap();
                content.push_str(v["choices"][0]["delta"]["content"].as_str().unwrap());
            }
            Ok(None) => panic!("clean end of body instead of a reset"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert_eq!(content, "Hello from the ");
    let rec = closed_record(&server.ledger, "rst").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Server));
    assert!(!rec.client_reset);
    no_active_scenarios(&server.ledger).await;
}

#[tokio::test]
async fn data_after_done_keeps_the_body_open() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = open_chat(&server, "data-after-done", "tag=dad").await;
    let n = pieces(DEFAULT_TEXT).len() + 4;
    let mut chunks = Vec::new();
    for _ in 0..n {
        chunks.push(c.chunk().await.unwrap().unwrap());
    }
    let events = split_events(&text_of(&chunks), "\n\n");
    assert_eq!(events[n - 2], "data: [DONE]");
    let after = payload(&events[n - 1]).unwrap();
    assert_eq!(after["choices"][0]["delta"]["content"], "after done");
    // No terminating chunk, the connection stays open.
    c.assert_silent_for(150).await;
    client_leaves_and_scenario_ends(&server.ledger, c, "dad", "data-after-done").await;
}

#[tokio::test]
async fn endless_ticks_until_client_leaves() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = open_chat(&server, "endless", "tag=endless&delay_ms=10").await;
    let start = Instant::now();
    for _ in 0..5 {
        let chunk = c.chunk().await.unwrap().unwrap();
        let v = chunk_payload(&chunk).unwrap();
        assert_eq!(v["choices"][0]["delta"]["content"], TICK);
    }
    // Four gaps of at least 10 ms each.
    assert!(
        start.elapsed() >= Duration::from_millis(38),
        "{:?}",
        start.elapsed()
    );
    client_leaves_and_scenario_ends(&server.ledger, c, "endless", "endless").await;
}

#[tokio::test]
async fn reasoning_then_content() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "reasoning-then-content", "chunks=2").await;
    let events = split_events(&text_of(&chunks), "\n\n");
    let payloads: Vec<Value> = events.iter().filter_map(|e| payload(e)).collect();
    let reasoning: String = payloads
        .iter()
        .filter_map(|v| v["choices"][0]["delta"]["reasoning"].as_str())
        .collect();
    assert_eq!(reasoning, reasoning_pieces(2).concat());
    assert!(payloads[1]["choices"][0]["delta"]["reasoning"].is_string());
    assert!(payloads[2]["choices"][0]["delta"]
        .get("reasoning")
        .is_none());
    assert!(payloads
        .iter()
        .all(|v| v["choices"][0]["delta"].get("reasoning_details").is_none()));
    assert_eq!(content_of(&payloads), DEFAULT_TEXT);
    assert_eq!(events.last().unwrap(), "data: [DONE]");
}

#[tokio::test]
async fn tool_call_fragments() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "tool-calls", "").await;
    let events = split_events(&text_of(&chunks), "\n\n");
    let payloads: Vec<Value> = events.iter().filter_map(|e| payload(e)).collect();
    let first = &payloads[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["index"], 0);
    assert_eq!(first["id"], "call_1");
    assert_eq!(first["type"], "function");
    assert_eq!(first["function"]["name"], "get_weather");
    assert_eq!(first["function"]["arguments"], "{\"ci");
    let args: String = payloads
        .iter()
        .filter_map(|v| v["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, TOOL_ARGUMENTS);
    let finish = payloads
        .iter()
        .find(|v| !v["choices"][0]["finish_reason"].is_null())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(events.last().unwrap(), "data: [DONE]");
}

#[tokio::test]
async fn long_stream() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (_, chunks) = fetch(&server, "long", "").await;
    let text = text_of(&chunks);
    let events = split_events(&text, "\n\n");
    let comments = events.iter().filter(|e| e.starts_with(':')).count();
    assert_eq!(comments, 9);
    let payloads: Vec<Value> = events.iter().filter_map(|e| payload(e)).collect();
    let content = content_of(&payloads);
    assert_eq!(content, LONG_TOKEN.repeat(1000));
    assert_eq!(payloads.last().unwrap()["usage"]["completion_tokens"], 1000);
    assert_eq!(events.last().unwrap(), "data: [DONE]");
}

#[tokio::test]
async fn head_and_event_delays() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let start = Instant::now();
    let mut c = Client::send(
        server.addr,
        "POST",
        &path(
            "normal",
            "tag=delays&head_delay_ms=60&first_delay_ms=40&delay_ms=5&text=a%20b%20c",
        ),
        &chat_body("m"),
    )
    .await;
    let head = c.head().await;
    let head_at = start.elapsed();
    assert_eq!(head.status, 200);
    let first = c.chunk().await.unwrap().unwrap();
    let first_at = start.elapsed();
    assert!(std::str::from_utf8(&first)
        .unwrap()
        .contains("\"content\":\"a \""));
    let rest = c.all_chunks().await;
    let total = start.elapsed();
    assert_eq!(rest.len(), 5);
    assert!(
        head_at >= Duration::from_millis(60),
        "head after {head_at:?}"
    );
    assert!(
        first_at >= Duration::from_millis(100),
        "first event after {first_at:?}"
    );
    assert!(
        total >= Duration::from_millis(125),
        "all events after {total:?}"
    );
    let rec = closed_record(&server.ledger, "delays").await;
    let head_delay = rec.response_started_at_ms.unwrap() - rec.opened_at_ms;
    assert!(head_delay >= 59.0, "ledger head delay {head_delay}");
}

#[tokio::test]
async fn unknown_scenario_and_bad_params() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let mut c = Client::send(server.addr, "POST", &path("nope", "tag=nope"), "{}").await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.status, 404);
    let body: Value = serde_json::from_slice(&c.fixed_body(&head).await).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": {"code": 404, "message": "unknown scenario nope"}})
    );
    let rec = closed_record(&server.ledger, "nope").await;
    assert_eq!(rec.scenario.as_deref(), Some("nope"));

    let mut c = Client::send(server.addr, "POST", &path("normal", "delay_ms=soon"), "{}").await;
    let head = c.head().await;
    assert_eq!(head.status, 400);
    let body: Value = serde_json::from_slice(&c.fixed_body(&head).await).unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("delay_ms"));

    let mut c = Client::send(server.addr, "GET", &path("normal", ""), "").await;
    let head = c.head().await;
    assert_eq!(head.status, 405);
    assert_eq!(head.get("allow"), Some("POST, OPTIONS"));
}

#[tokio::test]
async fn every_scenario_answers_and_is_recorded() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    for Scenario { name, api, .. } in SCENARIOS {
        let tag = format!("all-{name}");
        let at = if *name == "controlled" {
            "controlled/all".to_string()
        } else {
            name.to_string()
        };
        let target = format!(
            "/scenario/{at}/api{}?tag={tag}&size=1000&n=10&keepalive_ms=5&delay_ms=5",
            api.path()
        );
        let mut c = Client::send(server.addr, "POST", &target, &chat_body("m")).await;
        if *name == "no-headers" {
            request_seen(&server.ledger, &tag).await;
        } else {
            let head = c.head().await;
            head.assert_common();
            let expected = name
                .strip_prefix("http-")
                .map(|s| s.trim_end_matches("-date").parse::<u16>().unwrap())
                .unwrap_or(200);
            assert_eq!(head.status, expected, "{name}");
        }
        drop(c);
        let rec = closed_record(&server.ledger, &tag).await;
        assert_eq!(rec.scenario.as_deref(), Some(*name));
        assert_eq!(rec.body, chat_body("m"));
    }
    no_active_scenarios(&server.ledger).await;
    assert_eq!(
        server.ledger.query(&Filter::default()).len(),
        SCENARIOS.len()
    );
}

/// The backticked words of the README's section on the mock upstream, up to its paragraph on
/// timing (the lists of scenarios).
fn readme_scenario_words() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README is readable");
    let start = readme
        .find("## The mock upstream")
        .expect("the README has a section on the mock upstream");
    let section = &readme[start..];
    let end = section
        .find("\nTiming is set per request")
        .expect("the section has its paragraph on timing");
    section[..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_names_the_scenarios_of_the_table_and_no_others() {
    let words = readme_scenario_words();
    let is_status = |name: &str| {
        name.strip_prefix("http-")
            .is_some_and(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
    };
    // The README gives the plain statuses as a range, `http-400` … `http-503`.
    let statuses: Vec<&str> = SCENARIOS
        .iter()
        .map(|s| s.name)
        .filter(|n| is_status(n))
        .collect();
    let range = [statuses[0], statuses[statuses.len() - 1]];
    for name in SCENARIOS.iter().map(|s| s.name) {
        if is_status(name) && !range.contains(&name) {
            continue;
        }
        assert!(
            words.iter().any(|w| w == name),
            "the README's list of scenarios does not name {name:?}"
        );
    }
    // Every hyphenated word there that reads like a scenario name is one.
    for word in &words {
        let name_like = word.contains('-')
            && !word.starts_with('-')
            && word
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if name_like && word != "mock-upstream" {
            assert!(
                scenario(word).is_some(),
                "the README names {word:?}, which is not in the scenario table"
            );
        }
    }
}
