//! The edge worker in a real workerd, against the real mock upstream (in-process, on 127.0.0.1).
//!
//! `cargo test -p edge-worker` builds the worker bundle first when wasm-pack and
//! wasm-bindgen-cli are here (see `src/lib.rs`); on a machine without them or without workerd,
//! every test is ignored with the reason (`cargo xtask test --only workerd` sets them up and runs
//! the tests). Every test starts its own mock upstream and its own workerd (configured through
//! `LSG_*` variables) and stops both when it ends, panics included; an unhandled rejection or
//! uncaught exception workerd reports meanwhile fails the test. Upstream URLs carry a tag per
//! test, so the mock's connection ledger shows what each test made the worker do upstream.
//! Nothing sleeps to synchronise: tests wait on the response stream, on the ledger's long-poll,
//! on an upstream's own counts, on `/metrics` polled (bounded) for a state another isolate
//! caused, or on deadlines (two measurements read the process over a fixed
//! window: the memory test's least RSS over a second, and the ignored probe-cost measurement).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edge_worker::{Launch, Workerd};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use mock_upstream::{
    now_ms, pieces, ClosedBy, ConnectionRecord, Filter, Running, WaitOutcome, DEFAULT_TEXT,
};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// A client token the worker accepts.
const CLIENT_TOKEN: &str = "client-token-abc";
/// The variable naming the provider key, and the key (its length differs from the client
/// token's, so the ledger's redacted length tells which one went upstream).
const KEY_ENV: &str = "MOCK_PROVIDER_KEY";
const PROVIDER_KEY: &str = "sk-mock-provider-key-0123456789";
/// The browser origin the worker allows.
const ORIGIN: &str = "https://app.example";
const MODEL: &str = "mock/model";
/// Bound for any single network step of a test (connect, headers, one body read).
const STEP: Duration = Duration::from_secs(10);
/// Bound for long-polls on the ledger that are expected to succeed.
const LEDGER_WAIT: Duration = Duration::from_secs(5);
/// Client disconnect → upstream connection closed, at most.
const CANCEL_LATENCY_MS: f64 = 100.0;
/// The same, for 200 streams at once on a machine whose two cores the test shares with workerd,
/// the mock and 200 clients (what it measured is printed; see the test).
const LOAD_CANCEL_BOUND_MS: f64 = 1_000.0;

// ---------------------------------------------------------------------------------------------
// Set-up: the mock, providers, workerd.

async fn mock() -> Running {
    mock_upstream::spawn("127.0.0.1:0")
        .await
        .expect("start the mock upstream")
}

/// A provider entry for `LSG_PROVIDERS` pointing at a mock scenario, tagged `tag`.
fn provider(mock: &Running, name: &str, scenario: &str, tag: &str, query: &str) -> Value {
    let mut url = format!(
        "{}/scenario/{scenario}/v1/chat/completions?tag={tag}",
        mock.url()
    );
    if !query.is_empty() {
        url.push('&');
        url.push_str(query);
    }
    json!({"name": name, "url": url, "model": MODEL})
}

/// Starts workerd with exactly these variables (off the async threads: start-up blocks).
async fn worker(env: &[(&str, String)]) -> Workerd {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let started = Instant::now();
    let worker = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Workerd::start(&env)
    })
    .await
    .expect("start-up task")
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "[workerd pid {}] ready on {} in {} ms",
        worker.pid(),
        worker.url(),
        started.elapsed().as_millis()
    );
    worker
}

fn providers(list: &[Value]) -> String {
    Value::Array(list.to_vec()).to_string()
}

fn bearer() -> String {
    format!("Bearer {CLIENT_TOKEN}")
}

/// A chat request body; `stream: None` leaves the field out.
fn chat(stream: Option<bool>) -> Value {
    let mut body = json!({"messages": [{"role": "user", "content": "Say hello."}]});
    if let Some(stream) = stream {
        body["stream"] = json!(stream);
    }
    body
}

/// Who may run now: tests share the machine, but a load test (its latencies, its memory, its
/// CPU) runs alone, while no other test of this file runs beside it (tests of one file run in
/// parallel; the files run one after another).
static TURNS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A turn beside the other ordinary tests.
async fn shared() -> tokio::sync::RwLockReadGuard<'static, ()> {
    TURNS.read().await
}

/// A turn alone.
async fn alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    TURNS.write().await
}

async fn within<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: nothing within {limit:?}"),
    }
}

/// Waits (long-poll, bounded) until the connections tagged `tag` exist and are all closed.
async fn closed(mock: &Running, tag: &str) -> Vec<ConnectionRecord> {
    let outcome = mock
        .ledger
        .wait_closed_matching(&Filter::tag(tag), LEDGER_WAIT)
        .await;
    assert!(
        !outcome.timed_out,
        "the upstream connections tagged {tag} did not all close within {LEDGER_WAIT:?}: {:#?}",
        outcome.connections
    );
    outcome.connections
}

/// Gives a stray request `ms` to reach the mock (long-poll), then returns what arrived.
async fn none_arrive(mock: &Running, tag: &str, ms: u64) -> WaitOutcome {
    mock.ledger
        .wait_closed_matching(&Filter::tag(tag), Duration::from_millis(ms))
        .await
}

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 client: one connection per request, body read as it arrives, droppable.

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    conn: JoinHandle<()>,
    /// When the request was sent.
    sent: Instant,
    /// Request sent → response head received.
    head_after: Duration,
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> Response {
    within(&format!("{method} {path}"), STEP, async {
        let tcp = TcpStream::connect(addr).await.expect("connect to workerd");
        let _ = tcp.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .expect("HTTP handshake");
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let sent = Instant::now();
        let response = sender
            .send_request(request.body(body).expect("valid request"))
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let head_after = sent.elapsed();
        let (parts, body) = response.into_parts();
        Response {
            status: parts.status,
            headers: parts.headers,
            body,
            conn,
            sent,
            head_after,
        }
    })
    .await
}

/// `POST /v1/chat/completions` with a JSON body.
async fn post_chat(worker: &Workerd, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    send(
        worker.addr(),
        "POST",
        "/v1/chat/completions",
        &all,
        full(body.to_string()),
    )
    .await
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next piece of body, or `None` at its end.
    async fn chunk(&mut self) -> Option<Bytes> {
        loop {
            let frame = within("reading the response body", STEP, self.body.frame()).await;
            match frame {
                None => return None,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Some(data);
                        }
                    }
                }
                Some(Err(e)) => panic!("response body failed: {e}"),
            }
        }
    }

    async fn text(mut self) -> String {
        let mut all = Vec::new();
        while let Some(piece) = self.chunk().await {
            all.extend_from_slice(&piece);
        }
        String::from_utf8(all).expect("UTF-8 body")
    }

    async fn json(self) -> Value {
        let text = self.text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
    }

    fn sse(self) -> Sse {
        Sse {
            response: self,
            buf: Vec::new(),
        }
    }

    /// Drops the connection now; returns the moment (ledger clock) just before it went.
    async fn disconnect(self) -> f64 {
        let Response { body, conn, .. } = self;
        let at = now_ms();
        conn.abort();
        drop(body);
        // Once the aborted task is joined, its future (and the socket) has been dropped.
        let _ = conn.await;
        at
    }
}

// ---------------------------------------------------------------------------------------------
// The worker's event stream.

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Comment(String),
    Data(String),
}

struct Sse {
    response: Response,
    buf: Vec<u8>,
}

impl Sse {
    /// The next event and when it arrived (since the request was sent), or `None` at the end.
    async fn next(&mut self) -> Option<(Duration, Ev)> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..at + 2).collect();
                let block = String::from_utf8(block).expect("UTF-8 event");
                if let Some(ev) = parse_event(&block) {
                    return Some((self.response.sent.elapsed(), ev));
                }
                continue;
            }
            match self.response.chunk().await {
                Some(piece) => self.buf.extend_from_slice(&piece),
                None => {
                    assert!(
                        self.buf.iter().all(u8::is_ascii_whitespace),
                        "the stream ended inside an event: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return None;
                }
            }
        }
    }

    async fn all(mut self) -> Vec<(Duration, Ev)> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

fn parse_event(block: &str) -> Option<Ev> {
    let mut data: Vec<&str> = Vec::new();
    let mut comment = None;
    for line in block.split('\n').filter(|l| !l.is_empty()) {
        if let Some(text) = line.strip_prefix(':') {
            comment = Some(text.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        } else {
            panic!("unexpected line in the worker's stream: {line:?}");
        }
    }
    if !data.is_empty() {
        Some(Ev::Data(data.join("\n")))
    } else {
        comment.map(Ev::Comment)
    }
}

fn data_events(events: &[(Duration, Ev)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Ev::Data(d) => Some(d.clone()),
            Ev::Comment(_) => None,
        })
        .collect()
}

/// The JSON chunks of a stream (everything but `[DONE]`).
fn chunks(events: &[(Duration, Ev)]) -> Result<Vec<Value>, String> {
    data_events(events)
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).map_err(|e| format!("chunk is not JSON ({e}): {d}")))
        .collect()
}

fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Checks the stream's common shape: OpenAI chunks with one id, the role on the first, and
/// `[DONE]` as the one last data event. Returns the chunks.
fn check_chunks(events: &[(Duration, Ev)]) -> Result<Vec<Value>, String> {
    let data = data_events(events);
    if data.last().map(String::as_str) != Some("[DONE]") {
        return Err(format!("the stream does not end with [DONE]: {data:#?}"));
    }
    if data.iter().filter(|d| *d == "[DONE]").count() != 1 {
        return Err(format!("[DONE] more than once: {data:#?}"));
    }
    if !matches!(events.last(), Some((_, Ev::Data(d))) if d == "[DONE]") {
        return Err(format!("something after [DONE]: {events:#?}"));
    }
    let chunks = chunks(events)?;
    let Some(first) = chunks.first() else {
        return Err("no chunk at all".into());
    };
    // The chunks are the upstream's as it sent them (its id); the worker's own final error
    // chunk takes that id too, or the worker's `chatcmpl-lsg-…` when no chunk came before it.
    let id = first["id"].as_str().unwrap_or_default().to_owned();
    if id.is_empty() {
        return Err(format!("chunk id {id:?}"));
    }
    for c in &chunks {
        if c["object"] != "chat.completion.chunk" || c["id"] != id.as_str() {
            return Err(format!("not a chunk of {id}: {c}"));
        }
    }
    if let Some(first_text) = chunks.iter().find(|c| {
        c["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    }) {
        if first_text["choices"][0]["delta"]["role"] != "assistant" {
            return Err(format!(
                "the first text chunk carries no role: {first_text}"
            ));
        }
        let before = chunks
            .iter()
            .take_while(|c| !std::ptr::eq(*c, first_text))
            .count();
        if before > 0 {
            return Err(format!(
                "{before} chunks before the first text: {chunks:#?}"
            ));
        }
    }
    Ok(chunks)
}

/// Whether a chunk carries only usage (`choices: []` and a `usage` object).
fn usage_only(chunk: &Value) -> bool {
    chunk["choices"] == json!([]) && chunk["usage"].is_object()
}

/// A complete answer to a client that did not ask for usage: the exact text, a `stop` finish
/// chunk, `[DONE]`, and no usage chunk (the worker asks the upstream for one, and keeps it).
fn check_complete(events: &[(Duration, Ev)], text: &str) -> Result<Vec<Value>, String> {
    let chunks = check_text_and_stop(events, text)?;
    if let Some(usage) = chunks.iter().find(|c| usage_only(c)) {
        return Err(format!("a usage chunk the client did not ask for: {usage}"));
    }
    let last = chunks.last().unwrap();
    if last["choices"][0]["finish_reason"] != "stop" {
        return Err(format!("finish chunk {last}"));
    }
    Ok(chunks)
}

/// A complete answer to a client that asked for usage: a usage chunk last before `[DONE]`.
fn check_complete_with_usage(events: &[(Duration, Ev)], text: &str) -> Result<Vec<Value>, String> {
    let chunks = check_text_and_stop(events, text)?;
    let n = chunks.len();
    let (finish, usage) = (&chunks[n - 2], &chunks[n - 1]);
    if finish["choices"][0]["finish_reason"] != "stop" {
        return Err(format!("finish chunk {finish}"));
    }
    if !usage_only(usage) || !usage["usage"]["total_tokens"].is_u64() {
        return Err(format!("usage chunk {usage}"));
    }
    Ok(chunks)
}

/// The exact text, no error chunk, one `finish_reason`, and at least three chunks.
fn check_text_and_stop(events: &[(Duration, Ev)], text: &str) -> Result<Vec<Value>, String> {
    let chunks = check_chunks(events)?;
    let got = content_of(&chunks);
    if got != text {
        return Err(format!("text {got:?} instead of {text:?}"));
    }
    if let Some(c) = chunks.iter().find(|c| !c["error"].is_null()) {
        return Err(format!("error chunk in a complete answer: {c}"));
    }
    if chunks.len() < 3 {
        return Err(format!("too few chunks: {chunks:#?}"));
    }
    let finishes = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .count();
    if finishes != 1 {
        return Err(format!("{finishes} chunks carry a finish_reason"));
    }
    Ok(chunks)
}

/// The final error chunk of a cut-short answer (the chunk before `[DONE]`).
fn check_error_end(events: &[(Duration, Ev)], code: u64, kind: &str) -> Result<Value, String> {
    let chunks = check_chunks(events)?;
    let last = chunks.last().cloned().unwrap_or_default();
    let error = &last["error"];
    if last["choices"][0]["finish_reason"] != "error"
        || error["code"] != code
        || error["metadata"]["kind"] != kind
        || error["message"].as_str().is_none_or(|m| m.is_empty())
    {
        return Err(format!(
            "expected an error chunk (code {code}, kind {kind}) before [DONE], got {last}"
        ));
    }
    if chunks
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "stop")
    {
        return Err("a cut-short answer also says stop".into());
    }
    Ok(last)
}

/// `{"error":{"message","type","code"}}` with these `type` and `code`.
fn check_error_json(body: &Value, error_type: &str, code: &str) {
    let error = &body["error"];
    assert_eq!(error["type"], error_type, "{body}");
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

fn authorization_len(value: &str) -> usize {
    format!("Bearer {value}").len()
}

// ---------------------------------------------------------------------------------------------
// Metrics.

async fn metrics(worker: &Workerd) -> HashMap<String, f64> {
    let response = send(worker.addr(), "GET", "/metrics", &[], full("")).await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{:?}",
        response.headers
    );
    let text = response.text().await;
    for line in [
        "# TYPE lsg_requests_total counter",
        "# TYPE lsg_timeouts_total counter",
        "# TYPE lsg_retries_total counter",
        "# TYPE lsg_failovers_total counter",
        "# TYPE lsg_cancellations_total counter",
        "# TYPE lsg_active_streams gauge",
        "# TYPE lsg_first_token_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (key.to_owned(), value)
        })
        .collect()
}

fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

// ---------------------------------------------------------------------------------------------
// The harness's own check: errors nobody handled fail the test.

/// The worker of [`probe_run`]: each path does one thing with errors.
const ERRORS_WORKER: &str = r#"export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/reject") Promise.reject(new Error("probe: a rejection nobody handles"));
    if (path === "/throw") throw new Error("probe: an exception nobody catches");
    if (path === "/handled") Promise.reject(new Error("probe: handled")).catch(() => {});
    if (path === "/handled-later") {
      const late = Promise.reject(new Error("probe: handled a turn later"));
      await new Promise((resolve) => setTimeout(resolve, 0));
      late.catch(() => {});
    }
    return new Response("ok");
  },
};
"#;

/// A worker of a few lines (`source`) in a folder of its own, run by the harness as it runs the
/// real one.
fn probe_worker(name: &str, source: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the probe worker's folder");
    std::fs::write(dir.join("worker.js"), source).expect("write worker.js");
    std::fs::write(
        dir.join("workerd.capnp"),
        r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .probe) ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);
const probe :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = "2025-09-01",
  bindings = [ ],
);
"#,
    )
    .expect("write workerd.capnp");
    dir
}

/// Starts the worker in `dir` (see [`probe_worker`]), failing the test on an error it did not
/// handle.
async fn start_probe_worker(dir: &std::path::Path) -> Workerd {
    let bin = edge_worker::workerd_bin().unwrap_or_else(|e| panic!("{e}"));
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || Launch::new(bin, dir).check_unhandled().start())
        .await
        .expect("start-up task")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Starts the probe worker, sends `paths`, stops it; returns its stop's panic message, if any.
async fn probe_run(name: &str, paths: &[&str]) -> Option<String> {
    let dir = probe_worker(name, ERRORS_WORKER);
    let worker = start_probe_worker(&dir).await;
    for path in paths {
        let response = send(worker.addr(), "GET", path, &[], full("")).await;
        let _ = response.text().await;
    }
    let stopped = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(worker)))
    })
    .await
    .expect("stop task");
    let _ = std::fs::remove_dir_all(&dir);
    stopped.err().map(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_no_workerd,
    ignore = "cannot run here: no workerd binary (`npm ci` installs it); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn an_unhandled_rejection_or_uncaught_exception_in_the_worker_fails_the_test() {
    assert_eq!(
        probe_run("probe-clean", &["/ok", "/handled", "/handled-later"]).await,
        None,
        "a worker that handles its errors passes"
    );
    let rejected = probe_run("probe-reject", &["/reject"])
        .await
        .expect("an unhandled rejection fails the test");
    assert!(
        rejected.contains("Uncaught (in promise)")
            && rejected.contains("probe: a rejection nobody handles"),
        "the failure names the line: {rejected}"
    );
    let thrown = probe_run("probe-throw", &["/throw"])
        .await
        .expect("an uncaught exception fails the test");
    assert!(
        thrown.to_ascii_lowercase().contains("uncaught exception")
            && thrown.contains("probe: an exception nobody catches"),
        "the failure names the line: {thrown}"
    );
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn normal_stream_carries_the_exact_text_and_never_forwards_the_client_token() {
    let _turn = shared().await;
    let tag = "normal-stream";
    let mock = mock().await;
    let mut p = provider(&mock, "mock", "normal", tag, "");
    p["apiKeyEnv"] = json!(KEY_ENV);
    let worker = worker(&[
        ("LSG_PROVIDERS", providers(&[p])),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        (KEY_ENV, PROVIDER_KEY.into()),
    ])
    .await;

    let mut body = chat(Some(true));
    body["model"] = json!(MODEL);
    body["temperature"] = json!(0.25);
    body["max_tokens"] = json!(64);
    let response = post_chat(&worker, &[("authorization", &bearer())], &body).await;
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        response.headers
    );
    let request_id = response
        .header("x-request-id")
        .unwrap_or_default()
        .to_owned();
    let events = response.sse().all().await;
    let chunks = check_complete(&events, DEFAULT_TEXT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        request_id.starts_with("chatcmpl-lsg-"),
        "x-request-id names the worker's request: {request_id:?}"
    );
    assert!(
        chunks[0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("gen-mock-")),
        "the chunks are the upstream's, with its id: {}",
        chunks[0]
    );
    assert!(chunks.iter().all(|c| c["model"] == MODEL), "{chunks:#?}");

    let records = closed(&mock, tag).await;
    assert_eq!(records.len(), 1, "one upstream request: {records:#?}");
    let upstream = &records[0];
    assert!(
        upstream.authorization_seen,
        "the provider key goes upstream"
    );
    assert_eq!(
        upstream.headers.get("authorization").map(String::as_str),
        Some(format!("<redacted len={}>", authorization_len(PROVIDER_KEY)).as_str()),
        "upstream authorization must be the provider key (client token's would be len={}): {:?}",
        authorization_len(CLIENT_TOKEN),
        upstream.headers
    );
    assert!(
        !upstream.body.contains(CLIENT_TOKEN)
            && !upstream.headers.values().any(|v| v.contains(CLIENT_TOKEN)),
        "the client token reached the upstream: {upstream:#?}"
    );
    let sent: Value = serde_json::from_str(&upstream.body).expect("upstream body is JSON");
    assert_eq!(sent["messages"], body["messages"], "{sent}");
    assert_eq!(sent["temperature"], 0.25, "params are passed on: {sent}");
    assert_eq!(sent["max_tokens"], 64, "params are passed on: {sent}");
    assert_eq!(sent["model"], MODEL, "{sent}");

    // A client that asks for usage gets the upstream's usage chunk, last before [DONE].
    body["stream_options"] = json!({"include_usage": true});
    let response = post_chat(&worker, &[("authorization", &bearer())], &body).await;
    assert_eq!(response.status, 200);
    let events = response.sse().all().await;
    check_complete_with_usage(&events, DEFAULT_TEXT).unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn first_token_timeout_fails_over_to_the_next_provider() {
    let _turn = shared().await;
    let tag = "failover";
    let mock = mock().await;
    let mut silent = provider(&mock, "silent", "keepalive-forever", tag, "keepalive_ms=50");
    silent["model"] = json!("mock/silent");
    let mut backup = provider(&mock, "backup", "normal", tag, "");
    backup["model"] = json!("mock/backup");
    let worker = worker(&[
        ("LSG_PROVIDERS", providers(&[silent, backup])),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_TIMEOUTS", json!({"firstTokenMs": 500}).to_string()),
    ])
    .await;

    let started = Instant::now();
    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    assert_eq!(response.status, 200);
    let events = response.sse().all().await;
    let elapsed = started.elapsed();
    let chunks = check_complete(&events, DEFAULT_TEXT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        elapsed >= Duration::from_millis(450),
        "the answer came after {elapsed:?}, before the first-token deadline"
    );
    let content_models: Vec<&Value> = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["content"].is_string())
        .map(|c| &c["model"])
        .collect();
    assert!(
        content_models.iter().all(|m| *m == "mock/backup"),
        "the chunks name the answering provider's model: {content_models:?}"
    );

    let records = closed(&mock, tag).await;
    let scenarios: Vec<Option<&str>> = records.iter().map(|r| r.scenario.as_deref()).collect();
    assert_eq!(
        scenarios,
        [Some("keepalive-forever"), Some("normal")],
        "{records:#?}"
    );
    let silent = &records[0];
    assert_eq!(
        silent.closed_by,
        Some(ClosedBy::Client),
        "the worker drops the silent upstream"
    );
    let open_ms = silent.closed_at_ms.unwrap_or_default() - silent.opened_at_ms;
    assert!(
        (450.0..3_000.0).contains(&open_ms),
        "the silent upstream was held {open_ms:.0} ms (first-token deadline 500 ms)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn partial_answer_ends_with_an_error_chunk_and_done() {
    let _turn = shared().await;
    let (tag, backup_tag) = ("partial", "partial-backup");
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[
                provider(&mock, "staller", "stall-after-chunks", tag, "chunks=3"),
                provider(&mock, "backup", "normal", backup_tag, ""),
            ]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_TIMEOUTS", json!({"idleMs": 400}).to_string()),
    ])
    .await;

    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    assert_eq!(response.status, 200);
    let events = response.sse().all().await;
    check_error_end(&events, 504, "timeout").unwrap_or_else(|e| panic!("{e}: {events:#?}"));
    let chunks = chunks(&events).unwrap();
    let expected: String = pieces(DEFAULT_TEXT)[..3].concat();
    assert_eq!(content_of(&chunks), expected, "the partial text, exactly");
    let (at, _) = events.last().unwrap();
    assert!(
        *at >= Duration::from_millis(350),
        "the answer ended after {at:?}, before the idle deadline"
    );

    let records = closed(&mock, tag).await;
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        records[0].closed_by,
        Some(ClosedBy::Client),
        "the worker drops the stalled upstream"
    );
    assert!(
        mock.ledger.query(&Filter::tag(backup_tag)).is_empty(),
        "a partial answer does not fail over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn all_providers_timing_out_get_504_json() {
    let _turn = shared().await;
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[
                provider(&mock, "one", "no-headers", "all-timeout-1", ""),
                provider(&mock, "two", "no-headers", "all-timeout-2", ""),
            ]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_TIMEOUTS", json!({"headersMs": 300}).to_string()),
    ])
    .await;

    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    assert_eq!(response.status, 504, "{:?}", response.headers);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let head_after = response.head_after;
    let body = response.json().await;
    check_error_json(&body, "timeout_error", "timeout");
    assert!(
        head_after >= Duration::from_millis(550),
        "504 after {head_after:?}: both providers get their 300 ms"
    );
    for tag in ["all-timeout-1", "all-timeout-2"] {
        let records = closed(&mock, tag).await;
        assert_eq!(records.len(), 1, "{tag}: {records:#?}");
        assert_eq!(records[0].closed_by, Some(ClosedBy::Client), "{tag}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn all_providers_answering_500_get_502_json_after_retries() {
    let _turn = shared().await;
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[
                provider(&mock, "one", "http-500", "all-500-1", ""),
                provider(&mock, "two", "http-500", "all-500-2", ""),
            ]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        (
            "LSG_RETRY",
            json!({"maxRetries": 1, "baseDelayMs": 5, "maxDelayMs": 20}).to_string(),
        ),
    ])
    .await;

    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    assert_eq!(response.status, 502, "{:?}", response.headers);
    let body = response.json().await;
    check_error_json(&body, "upstream_error", "http");
    for tag in ["all-500-1", "all-500-2"] {
        let records = closed(&mock, tag).await;
        assert_eq!(
            records.len(),
            2,
            "{tag}: one try and one retry: {records:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn all_providers_erroring_before_content_get_502_json() {
    let _turn = shared().await;
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[
                provider(&mock, "one", "error-before-content", "all-error-1", ""),
                provider(&mock, "two", "error-before-content", "all-error-2", ""),
            ]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
    ])
    .await;

    // The status is held until the first progress or the first heartbeat (10 s): both
    // upstreams fail before either, so the client gets one real status and a JSON error naming
    // both. (A non-streaming request is relayed as its upstream answers it: see
    // `non_streaming_request_gets_one_completion`.)
    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    assert_eq!(response.status, 502, "{:?}", response.headers);
    assert_eq!(response.header("x-should-retry"), Some("false"));
    let body = response.json().await;
    check_error_json(&body, "upstream_error", "upstream");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("one (upstream") && message.contains("two (upstream"),
        "{message}"
    );
    for tag in ["all-error-1", "all-error-2"] {
        assert_eq!(closed(&mock, tag).await.len(), 1, "{tag}: once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn upstream_refusing_the_request_gets_400_without_failover() {
    let _turn = shared().await;
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[
                provider(&mock, "strict", "http-422", "refused-422", ""),
                provider(&mock, "backup", "normal", "refused-422-backup", ""),
            ]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
    ])
    .await;

    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    assert_eq!(response.status, 400, "{:?}", response.headers);
    check_error_json(&response.json().await, "invalid_request_error", "http");
    let records = closed(&mock, "refused-422").await;
    assert_eq!(records.len(), 1, "422 is not retried: {records:#?}");
    assert!(
        mock.ledger
            .query(&Filter::tag("refused-422-backup"))
            .is_empty(),
        "a request the upstream refused does not fail over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn heartbeats_flow_while_the_upstream_is_silent() {
    let _turn = shared().await;
    let tag = "heartbeat";
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mute", "no-headers", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_HEARTBEAT_MS", "100".into()),
        ("LSG_TIMEOUTS", json!({"firstTokenMs": 800}).to_string()),
    ])
    .await;

    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    let head_after = response.head_after;
    assert_eq!(response.status, 200, "committed by the first heartbeat");
    assert!(
        (Duration::from_millis(80)..Duration::from_millis(700)).contains(&head_after),
        "the status came {head_after:?} after the request: held until the first heartbeat \
         (100 ms), well before the first-token deadline (800 ms)"
    );
    let events = response.sse().all().await;
    let timeline: Vec<String> = events
        .iter()
        .map(|(at, e)| match e {
            Ev::Comment(c) => format!("{:>4} ms  :{c}", at.as_millis()),
            Ev::Data(d) => format!("{:>4} ms  data {}", at.as_millis(), &d[..d.len().min(60)]),
        })
        .collect();
    eprintln!(
        "heartbeat stream (status after {} ms):\n  {}",
        head_after.as_millis(),
        timeline.join("\n  ")
    );

    assert_eq!(
        events.first().map(|(_, e)| e.clone()),
        Some(Ev::Comment("heartbeat".into())),
        "the first bytes are a heartbeat"
    );
    let first_data = events
        .iter()
        .position(|(_, e)| matches!(e, Ev::Data(_)))
        .expect("an error chunk at the end");
    let heartbeats = events[..first_data]
        .iter()
        .filter(|(_, e)| *e == Ev::Comment("heartbeat".into()))
        .count();
    assert!(heartbeats >= 3, "{heartbeats} heartbeats before the end");
    let mut last = head_after;
    for (at, _) in &events[..=first_data] {
        assert!(
            at.saturating_sub(last) <= Duration::from_millis(400),
            "a silent gap of {:?} (heartbeat every 100 ms):\n{}",
            at.saturating_sub(last),
            timeline.join("\n")
        );
        last = *at;
    }
    check_error_end(&events, 504, "timeout").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        events[first_data].0 >= Duration::from_millis(750),
        "the error came at {:?}, before the first-token deadline",
        events[first_data].0
    );
    assert_eq!(content_of(&chunks(&events).unwrap()), "", "no text came");
    let records = closed(&mock, tag).await;
    assert_eq!(records[0].closed_by, Some(ClosedBy::Client));
}

/// `runs` times: open a stream, read until `content_chunks` text chunks arrived (0: until the
/// first event), drop the connection, and long-poll the ledger for the upstream's close.
/// Returns the latencies (client gone → upstream closed), in ms; asserts each is at most
/// [`CANCEL_LATENCY_MS`].
async fn disconnect_latencies(
    worker: &Workerd,
    mock: &Running,
    tag: &str,
    runs: usize,
    content_chunks: usize,
) -> Vec<f64> {
    let mut latencies = Vec::new();
    for run in 1..=runs {
        let response = post_chat(worker, &[("authorization", &bearer())], &chat(Some(true))).await;
        assert_eq!(response.status, 200);
        let mut sse = response.sse();
        let mut content = 0;
        loop {
            let (_, event) = sse.next().await.expect("the stream ended");
            if let Ev::Data(d) = event {
                let chunk: Value = serde_json::from_str(&d).expect("JSON chunk");
                assert!(chunk["error"].is_null(), "{chunk}");
                if chunk["choices"][0]["delta"]["content"].is_string() {
                    content += 1;
                }
            }
            if content >= content_chunks {
                break;
            }
        }
        let dropped_at = sse.response.disconnect().await;
        let records = closed(mock, tag).await;
        assert_eq!(
            records.len(),
            run,
            "one upstream connection per run: {records:#?}"
        );
        let upstream = records.last().unwrap();
        assert_eq!(
            upstream.closed_by,
            Some(ClosedBy::Client),
            "run {run}: the worker (the mock's client) closes the upstream"
        );
        let latency = upstream.closed_at_ms.unwrap() - dropped_at;
        assert!(
            latency >= -1.0,
            "run {run}: the upstream closed {latency:.1} ms before the client left"
        );
        latencies.push(latency);
        if latency > CANCEL_LATENCY_MS {
            // Already late: one run tells it, the others would only take as long.
            break;
        }
    }
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let (median, worst) = (sorted[sorted.len() / 2], sorted[sorted.len() - 1]);
    eprintln!(
        "{tag}: client gone → upstream closed, {} runs: worst {worst:.1} ms, median \
         {median:.1} ms (all: {})",
        latencies.len(),
        latencies
            .iter()
            .map(|l| format!("{l:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        worst <= CANCEL_LATENCY_MS,
        "{tag}: the upstream closed {worst:.1} ms after the client left (at most \
         {CANCEL_LATENCY_MS} ms); all: {latencies:?}"
    );
    assert!(
        mock.ledger
            .wait_for(LEDGER_WAIT, |l| l.active_scenarios() == 0)
            .await,
        "{tag}: scenario tasks left running upstream"
    );
    latencies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn client_disconnect_mid_stream_closes_the_upstream_within_100_ms() {
    let _turn = shared().await;
    let tag = "disconnect";
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "endless", "endless", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
    ])
    .await;
    disconnect_latencies(&worker, &mock, tag, 7, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn client_disconnect_while_the_upstream_is_silent_closes_it_within_100_ms() {
    let _turn = shared().await;
    let tag = "disconnect-silent";
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mute", "headers-then-silence", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        // Nothing is written to the client for 2 s after its first heartbeat (the ledger
        // long-poll allows 5 s, so a late close is still measured).
        ("LSG_HEARTBEAT_MS", "2000".into()),
    ])
    .await;
    disconnect_latencies(&worker, &mock, tag, 3, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn a_stream_without_any_text_still_starts_with_the_assistant_role() {
    let _turn = shared().await;
    let tag = "role";
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mute", "no-headers", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_HEARTBEAT_MS", "100".into()),
        ("LSG_TIMEOUTS", json!({"firstTokenMs": 300}).to_string()),
    ])
    .await;

    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    assert_eq!(response.status, 200);
    let events = response.sse().all().await;
    check_error_end(&events, 504, "timeout").unwrap_or_else(|e| panic!("{e}"));
    let chunks = chunks(&events).unwrap();
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "the first chunk of an OpenAI stream carries role assistant, also when it is the final \
         error chunk: {}",
        chunks[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn refused_requests_never_reach_the_upstream() {
    let _turn = shared().await;
    let tag = "refused";
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "normal", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_ALLOWED_ORIGINS", ORIGIN.into()),
        ("LSG_MAX_BODY_BYTES", "4096".into()),
    ])
    .await;
    let auth = bearer();
    let stream = chat(Some(true));

    // No credentials, a wrong token, a token without "Bearer", an origin not on the list.
    for (what, headers) in [
        ("no credentials", vec![]),
        (
            "wrong token",
            vec![("authorization", "Bearer client-token-abd")],
        ),
        (
            "token without Bearer",
            vec![("authorization", CLIENT_TOKEN)],
        ),
        ("wrong origin", vec![("origin", "https://evil.example")]),
    ] {
        let response = post_chat(&worker, &headers, &stream).await;
        assert_eq!(response.status, 401, "{what}");
        assert_eq!(
            response.header("access-control-allow-origin"),
            None,
            "{what}: no CORS for a refused origin"
        );
        check_error_json(
            &response.json().await,
            "authentication_error",
            "unauthorized",
        );
    }

    // Too large, declared in Content-Length and sent chunked without a length.
    let mut big = stream.clone();
    big["messages"][0]["content"] = json!("x".repeat(8_000));
    let response = post_chat(&worker, &[("authorization", &auth)], &big).await;
    assert_eq!(response.status, 413, "oversized body with Content-Length");
    check_error_json(
        &response.json().await,
        "invalid_request_error",
        "body_too_large",
    );
    let bytes = Bytes::from(big.to_string());
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
        Ok(Frame::data(bytes.slice(..3_000))),
        Ok(Frame::data(bytes.slice(3_000..6_000))),
        Ok(Frame::data(bytes.slice(6_000..))),
    ];
    let chunked = StreamBody::new(futures_util::stream::iter(frames)).boxed();
    let response = send(
        worker.addr(),
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        chunked,
    )
    .await;
    assert_eq!(response.status, 413, "oversized chunked body");
    check_error_json(
        &response.json().await,
        "invalid_request_error",
        "body_too_large",
    );

    // A model not on the list, and a body that is not JSON.
    let mut other_model = stream.clone();
    other_model["model"] = json!("gpt/not-here");
    let response = post_chat(&worker, &[("authorization", &auth)], &other_model).await;
    assert_eq!(response.status, 400);
    check_error_json(
        &response.json().await,
        "invalid_request_error",
        "model_not_allowed",
    );
    let response = send(
        worker.addr(),
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        full("{not json"),
    )
    .await;
    assert_eq!(response.status, 400);
    check_error_json(
        &response.json().await,
        "invalid_request_error",
        "invalid_json",
    );

    let stray = none_arrive(&mock, tag, 300).await;
    assert!(
        stray.connections.is_empty(),
        "refused requests reached the upstream: {:#?}",
        stray.connections
    );

    // The same worker and tag do reach the upstream for an accepted request.
    let response = post_chat(&worker, &[("authorization", &auth)], &chat(Some(false))).await;
    assert_eq!(response.status, 200);
    assert_eq!(closed(&mock, tag).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn allowed_origin_gets_cors_headers_and_preflight() {
    let _turn = shared().await;
    let tag = "cors";
    let mock = mock().await;
    // Whole answers come from a provider that answers them whole (the mock's `json`).
    let mut whole = provider(&mock, "whole", "json", tag, "");
    whole["model"] = json!("mock/json");
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "normal", tag, ""), whole]),
        ),
        ("LSG_ALLOWED_ORIGINS", ORIGIN.into()),
    ])
    .await;

    let health = send(worker.addr(), "GET", "/healthz", &[], full("")).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.text().await, "ok");

    let preflight = send(
        worker.addr(),
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("origin", ORIGIN),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
        full(""),
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(ORIGIN)
    );
    let methods = preflight
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(methods.contains("POST"), "allow-methods {methods:?}");
    let allowed = preflight
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "allow-headers {allowed:?}"
    );

    let refused = send(
        worker.addr(),
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
        full(""),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), None);

    let response = post_chat(&worker, &[("origin", ORIGIN)], &chat(Some(true))).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), Some(ORIGIN));
    assert!(
        response
            .header("vary")
            .is_some_and(|v| v.to_ascii_lowercase().contains("origin")),
        "{:?}",
        response.headers
    );
    let events = response.sse().all().await;
    check_complete(&events, DEFAULT_TEXT).unwrap_or_else(|e| panic!("{e}"));

    let mut whole = chat(None);
    whole["model"] = json!("mock/json");
    let response = post_chat(&worker, &[("origin", ORIGIN)], &whole).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        response.json().await["choices"][0]["message"]["content"],
        DEFAULT_TEXT
    );

    let records = closed(&mock, tag).await;
    assert_eq!(records.len(), 2, "{records:#?}");
    assert!(
        records.iter().all(|r| !r.authorization_seen),
        "no key configured, so no Authorization upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn metrics_counters_move_with_requests() {
    let _turn = shared().await;
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[
                provider(&mock, "flaky", "http-500", "metrics-flaky", ""),
                provider(&mock, "silent", "keepalive-forever", "metrics-silent", ""),
                provider(&mock, "good", "normal", "metrics-good", ""),
            ]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        (
            "LSG_RETRY",
            json!({"maxRetries": 1, "baseDelayMs": 5, "maxDelayMs": 20}).to_string(),
        ),
        ("LSG_TIMEOUTS", json!({"firstTokenMs": 400}).to_string()),
    ])
    .await;

    let before = metrics(&worker).await;
    // 500, retried once; failover; first-token timeout; failover; a complete answer.
    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    assert_eq!(response.status, 200);
    let events = response.sse().all().await;
    check_complete(&events, DEFAULT_TEXT).unwrap_or_else(|e| panic!("{e}"));
    // Refusals.
    let response = post_chat(&worker, &[], &chat(Some(true))).await;
    assert_eq!(response.status, 401);
    let mut other_model = chat(Some(true));
    other_model["model"] = json!("gpt/not-here");
    let response = post_chat(&worker, &[("authorization", &bearer())], &other_model).await;
    assert_eq!(response.status, 400);
    let after = metrics(&worker).await;

    let mut report = Vec::new();
    for (key, expected) in [
        ("lsg_requests_total{outcome=\"complete\"}", 1.0),
        ("lsg_requests_total{outcome=\"unauthorized\"}", 1.0),
        ("lsg_requests_total{outcome=\"bad_request\"}", 1.0),
        ("lsg_retries_total", 1.0),
        ("lsg_failovers_total", 2.0),
        (
            "lsg_timeouts_total{layer=\"provider\",phase=\"first-token\"}",
            1.0,
        ),
        ("lsg_cancellations_total", 0.0),
        ("lsg_first_token_seconds_count", 1.0),
        ("lsg_first_token_seconds_bucket{le=\"+Inf\"}", 1.0),
    ] {
        let got = delta(&before, &after, key);
        if got != expected {
            report.push(format!("{key}: moved by {got}, expected {expected}"));
        }
    }
    assert!(
        report.is_empty(),
        "{}\nafter:\n{after:#?}",
        report.join("\n")
    );
    assert_eq!(
        after.get("lsg_active_streams"),
        Some(&0.0),
        "no stream left open"
    );
    let first_token = delta(&before, &after, "lsg_first_token_seconds_sum");
    assert!(
        first_token > 0.0 && first_token < 10.0,
        "first-token seconds moved by {first_token}"
    );
    assert_eq!(closed(&mock, "metrics-flaky").await.len(), 2);
    assert_eq!(closed(&mock, "metrics-silent").await.len(), 1);
    assert_eq!(closed(&mock, "metrics-good").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn non_streaming_request_gets_one_completion() {
    let _turn = shared().await;
    let tag = "json";
    let mock = mock().await;
    // The upstream's completion, relayed as it sent it (the mock's `json` scenario answers as a
    // provider answers `stream: false`).
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "json", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
    ])
    .await;

    // `stream` left out: false, as OpenAI's API says.
    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(None)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json().await;
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("gen-mock-")),
        "the upstream's own completion: {body}"
    );
    assert_eq!(body["model"], MODEL, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant", "{body}");
    assert_eq!(choice["message"]["content"], DEFAULT_TEXT, "{body}");
    assert_eq!(choice["finish_reason"], "stop", "{body}");
    assert!(
        body["usage"]["total_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{body}"
    );
    assert_eq!(closed(&mock, tag).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn two_hundred_concurrent_streams_each_get_the_exact_text() {
    let _turn = alone().await;
    let tag = "load";
    let streams = 200;
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "normal", tag, "delay_ms=5")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
    ])
    .await;

    let addr = worker.addr();
    let started = Instant::now();
    let tasks: Vec<JoinHandle<Result<Duration, String>>> = (0..streams)
        .map(|_| {
            tokio::spawn(async move {
                let body = chat(Some(true)).to_string();
                let auth = bearer();
                let response = send(
                    addr,
                    "POST",
                    "/v1/chat/completions",
                    &[
                        ("authorization", &auth),
                        ("content-type", "application/json"),
                    ],
                    full(body),
                )
                .await;
                if response.status != 200 {
                    return Err(format!("status {}", response.status));
                }
                let sent = response.sent;
                let events = response.sse().all().await;
                check_complete(&events, DEFAULT_TEXT)?;
                Ok(sent.elapsed())
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut durations = Vec::new();
    for task in tasks {
        match within("a load stream", Duration::from_secs(40), task).await {
            Ok(Ok(d)) => durations.push(d),
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("panicked: {e}")),
        }
    }
    let wall = started.elapsed();
    durations.sort();
    let pick = |q: f64| {
        durations
            .get(((durations.len() as f64 - 1.0) * q) as usize)
            .map_or(0, |d| d.as_millis())
    };
    eprintln!(
        "load: {streams} concurrent streams, wall time {} ms, {} failures; per stream p50 {} ms, \
         p95 {} ms, max {} ms",
        wall.as_millis(),
        failures.len(),
        pick(0.5),
        pick(0.95),
        pick(1.0)
    );
    assert!(
        failures.is_empty(),
        "{} failures: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let records = closed(&mock, tag).await;
    assert_eq!(records.len(), streams, "one upstream request per stream");
    let after = metrics(&worker).await;
    assert_eq!(
        after.get("lsg_requests_total{outcome=\"complete\"}"),
        Some(&(streams as f64))
    );
    assert_eq!(after.get("lsg_active_streams"), Some(&0.0));
}

// ---------------------------------------------------------------------------------------------
// Request policy and safety: each fix of the worker's request handling, end to end.

/// An answer read off a raw connection: status, head (lowercase names) and the body text.
struct RawAnswer {
    status: u16,
    head: String,
    body: String,
    /// Request written → head received.
    after: Duration,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Writes `request` as it is on a fresh connection (which stays open for writing: a body
/// declared longer than what was sent stays unfinished) and reads the answer: the head, then
/// the body to its declared length, its last chunk, or the connection's end.
async fn raw(addr: SocketAddr, request: &[u8]) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within("a raw request", STEP, async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect to workerd");
        tcp.write_all(request).await.expect("write the request");
        let written = Instant::now();
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        let mut after = None;
        loop {
            let text = String::from_utf8_lossy(&bytes).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                after.get_or_insert_with(|| written.elapsed());
                let lower = head.to_ascii_lowercase();
                let length = lower
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok());
                let done = match length {
                    Some(n) => body.len() >= n,
                    None => {
                        lower.contains("transfer-encoding: chunked") && body.ends_with("0\r\n\r\n")
                    }
                };
                if done {
                    break;
                }
            }
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&bytes).to_string();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no answer head: {text:?}"));
        let status = head
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status: {head:?}"));
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        RawAnswer {
            status,
            head: head.to_owned(),
            body,
            after: after.unwrap_or_default(),
        }
    })
    .await
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// A chat request's head on a raw connection, with this `content-length` (or chunked).
fn raw_head(addr: SocketAddr, content_length: Option<&str>) -> String {
    let length = match content_length {
        Some(n) => format!("content-length: {n}\r\n"),
        None => "transfer-encoding: chunked\r\n".into(),
    };
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {CLIENT_TOKEN}\r\ncontent-type: application/json\r\n{length}\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn a_declared_length_of_4_gib_or_more_is_413_and_a_stalled_body_408() {
    let _turn = shared().await;
    let tag = "body-policy";
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "normal", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_BODY_MS", "300".into()),
    ])
    .await;

    // Declared lengths past any limit, 2^32 (which does not fit a wasm32 usize) and 2^53 + 1
    // (not a whole JavaScript number) included: 413 at once, with only a few bytes of the body
    // sent. (workerd itself answers 431 to 2^64 - 1 and 400 to 2^64 before the worker sees
    // them; the core's tests cover every size.)
    for length in ["4294967296", "9007199254740993", "300000"] {
        let mut request = raw_head(worker.addr(), Some(length)).into_bytes();
        request.extend_from_slice(b"{\"messages\":");
        let answer = raw(worker.addr(), &request).await;
        assert_eq!(
            answer.status, 413,
            "Content-Length {length}: {}",
            answer.head
        );
        let body: Value = serde_json::from_str(&answer.body).expect("JSON error");
        // 413, not the 408 of the 300 ms body deadline: refused before the body was awaited.
        check_error_json(&body, "invalid_request_error", "body_too_large");
    }

    // A body that stops arriving: declared and chunked. 408 once LSG_BODY_MS has passed.
    let mut declared = raw_head(worker.addr(), Some("100")).into_bytes();
    declared.extend_from_slice(b"{\"messages\":[");
    let mut chunked = raw_head(worker.addr(), None).into_bytes();
    chunked.extend_from_slice(b"d\r\n{\"messages\":[\r\n");
    for (what, request) in [("declared length", declared), ("chunked", chunked)] {
        let answer = raw(worker.addr(), &request).await;
        assert_eq!(answer.status, 408, "{what}: {}", answer.head);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_str(&answer.body).expect("JSON error");
        check_error_json(&body, "invalid_request_error", "body_timeout");
        assert!(
            answer.after >= Duration::from_millis(290)
                && answer.after < Duration::from_millis(3_000),
            "{what}: 408 after {:?}, for a 300 ms deadline",
            answer.after
        );
    }
    let stray = none_arrive(&mock, tag, 200).await;
    assert!(stray.connections.is_empty(), "{:#?}", stray.connections);

    // The same worker still answers a whole body.
    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(false))).await;
    assert_eq!(response.status, 200);
    assert_eq!(closed(&mock, tag).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn wrong_methods_get_405_with_allow_and_unknown_paths_404() {
    let _turn = shared().await;
    let tag = "methods";
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "normal", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
    ])
    .await;
    let auth = bearer();
    for (method, path, allow) in [
        ("GET", "/v1/chat/completions", "POST, OPTIONS"),
        ("PUT", "/v1/chat/completions", "POST, OPTIONS"),
        ("DELETE", "/v1/chat/completions", "POST, OPTIONS"),
        ("POST", "/healthz", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
        ("GET", "/v1/responses", "POST, OPTIONS"),
    ] {
        let response = send(
            worker.addr(),
            method,
            path,
            &[("authorization", &auth)],
            full(""),
        )
        .await;
        assert_eq!(response.status, 405, "{method} {path}");
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
        check_error_json(
            &response.json().await,
            "invalid_request_error",
            "method_not_allowed",
        );
    }
    for path in ["/healthz", "/metrics"] {
        let head = send(worker.addr(), "HEAD", path, &[], full("")).await;
        assert_eq!(head.status, 200, "HEAD {path}: allowed, as Allow says");
    }
    let response = send(worker.addr(), "GET", "/v1/models/x", &[], full("")).await;
    assert_eq!(response.status, 404);
    check_error_json(&response.json().await, "invalid_request_error", "not_found");
    let stray = none_arrive(&mock, tag, 200).await;
    assert!(stray.connections.is_empty(), "{:#?}", stray.connections);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn the_bearer_scheme_is_case_insensitive() {
    let _turn = shared().await;
    let tag = "bearer-case";
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "json", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
    ])
    .await;
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let value = format!("{scheme} {CLIENT_TOKEN}");
        let response = post_chat(&worker, &[("authorization", &value)], &chat(Some(false))).await;
        assert_eq!(response.status, 200, "{scheme}");
        assert_eq!(
            response.json().await["choices"][0]["message"]["content"],
            DEFAULT_TEXT
        );
    }
    let response = post_chat(
        &worker,
        &[("authorization", "bearer client-token-abd")],
        &chat(Some(false)),
    )
    .await;
    assert_eq!(
        response.status, 401,
        "a wrong token, whatever the case of the scheme"
    );
    assert_eq!(closed(&mock, tag).await.len(), 3);
}

/// Starts a worker with `env`, sends what an unauthenticated and an authenticated client
/// would (chat, preflight, an unknown path), and returns every answer's status, headers and
/// body as one text, after checking each is the generic configuration error where one is due.
async fn answers_of_a_misconfigured_worker(env: &[(&str, String)]) -> (Workerd, String) {
    let worker = worker(env).await;
    let mut seen = String::new();
    let auth = bearer();
    for headers in [
        vec![],
        vec![("authorization", auth.as_str())],
        vec![("origin", ORIGIN)],
    ] {
        let response = post_chat(&worker, &headers, &chat(Some(true))).await;
        assert_eq!(response.status, 500, "{headers:?}");
        assert_eq!(response.header("x-should-retry"), Some("false"));
        seen.push_str(&format!("{:?}", response.headers));
        let body = response.json().await;
        check_error_json(&body, "server_error", "misconfigured");
        seen.push_str(&body.to_string());
    }
    let preflight = send(
        worker.addr(),
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("origin", ORIGIN),
            ("access-control-request-method", "POST"),
        ],
        full(""),
    )
    .await;
    assert_eq!(preflight.status, 500);
    seen.push_str(&format!("{:?}", preflight.headers));
    seen.push_str(&preflight.text().await);
    let other = send(worker.addr(), "GET", "/nothing-here", &[], full("")).await;
    seen.push_str(&format!("{:?}", other.headers));
    seen.push_str(&other.text().await);
    (worker, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn a_wildcard_origin_is_refused_at_start_up_and_logged() {
    let _turn = shared().await;
    let tag = "wildcard";
    let mock = mock().await;
    let (worker, seen) = answers_of_a_misconfigured_worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "normal", tag, "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_ALLOWED_ORIGINS", "*".into()),
    ])
    .await;
    assert!(!seen.contains("LSG_ALLOWED_ORIGINS"), "{seen}");
    let line = worker
        .wait_for_line(|l| l.contains("LSG_ALLOWED_ORIGINS"), LEDGER_WAIT)
        .unwrap_or_else(|| {
            panic!(
                "no log line names LSG_ALLOWED_ORIGINS: {:#?}",
                worker.lines()
            )
        });
    assert!(line.contains("configuration error"), "{line}");
    let logged = worker
        .lines()
        .iter()
        .filter(|l| l.contains("configuration error"))
        .count();
    assert_eq!(
        logged,
        1,
        "read and logged once per isolate: {:#?}",
        worker.lines()
    );
    let stray = none_arrive(&mock, tag, 200).await;
    assert!(stray.connections.is_empty(), "{:#?}", stray.connections);
    // Liveness does not depend on the configuration.
    let health = send(worker.addr(), "GET", "/healthz", &[], full("")).await;
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn no_configuration_value_reaches_a_client_or_the_log() {
    let _turn = shared().await;
    let mock = mock().await;
    let marker = "sk-config-MARKER-5550123";
    let header_of_wrong_type = json!([{
        "name": "mock", "url": format!("{}/scenario/normal/v1/chat/completions", mock.url()),
        "model": MODEL, "headers": {"authorization": [marker]},
    }])
    .to_string();
    let url_with_credentials = json!([{
        "name": "mock", "url": format!("http://user:{marker}@127.0.0.1:1/v1/chat/completions"),
        "model": MODEL,
    }])
    .to_string();
    let good = providers(&[provider(&mock, "mock", "normal", "config-values", "")]);
    for (what, variable, env) in [
        (
            "a header of the wrong type",
            "LSG_PROVIDERS",
            vec![("LSG_PROVIDERS", header_of_wrong_type)],
        ),
        (
            "credentials in a URL",
            "LSG_PROVIDERS",
            vec![("LSG_PROVIDERS", url_with_credentials)],
        ),
        (
            "a timeout that is not a number",
            "LSG_TIMEOUTS",
            vec![
                ("LSG_PROVIDERS", good.clone()),
                ("LSG_TIMEOUTS", json!({"idleMs": marker}).to_string()),
            ],
        ),
        (
            "a retry count over the guard's limit",
            "LSG_RETRY",
            vec![
                ("LSG_PROVIDERS", good.clone()),
                ("LSG_RETRY", json!({"maxRetries": 5550123}).to_string()),
            ],
        ),
        (
            "a key variable that is not set",
            "LSG_PROVIDERS",
            vec![(
                "LSG_PROVIDERS",
                json!([{"name": "mock", "url": format!("{}/x", mock.url()), "model": MODEL, "apiKeyEnv": "MARKER_KEY_NOT_SET"}]).to_string(),
            )],
        ),
    ] {
        let mut env = env;
        env.push(("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()));
        env.push(("LSG_ALLOWED_ORIGINS", ORIGIN.into()));
        let (worker, seen) = answers_of_a_misconfigured_worker(&env).await;
        for hidden in ["MARKER", variable, "5550123"] {
            assert!(!seen.contains(hidden), "{what}: {hidden} in a client answer: {seen}");
        }
        let line = worker
            .wait_for_line(|l| l.contains("configuration error"), LEDGER_WAIT)
            .unwrap_or_else(|| panic!("{what}: nothing logged: {:#?}", worker.lines()));
        assert!(line.contains(variable), "{what}: {line}");
        if what == "a key variable that is not set" {
            assert!(line.contains("MARKER_KEY_NOT_SET"), "a variable's name is not secret: {line}");
        } else {
            assert!(!line.contains("5550123"), "{what}: the value in the log: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn every_provider_rate_limited_gets_429_with_the_smallest_retry_after() {
    let _turn = shared().await;
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[
                provider(&mock, "one", "http-429", "rate-1", "retry_after=7"),
                provider(&mock, "two", "http-429", "rate-2", "retry_after=3"),
                provider(&mock, "three", "http-429", "rate-3", "retry_after=5"),
            ]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_ALLOWED_ORIGINS", ORIGIN.into()),
        ("LSG_RETRY", json!({"maxRetries": 0}).to_string()),
    ])
    .await;
    for stream in [Some(true), Some(false)] {
        let response = post_chat(
            &worker,
            &[("authorization", &bearer()), ("origin", ORIGIN)],
            &chat(stream),
        )
        .await;
        assert_eq!(
            response.status, 429,
            "stream {stream:?}: {:?}",
            response.headers
        );
        assert_eq!(
            response.header("retry-after"),
            Some("3"),
            "the smallest of 7, 3 and 5 s"
        );
        assert!(
            response
                .header("access-control-expose-headers")
                .is_some_and(|v| v.contains("retry-after")),
            "a page can read it: {:?}",
            response.headers
        );
        let body = response.json().await;
        check_error_json(&body, "rate_limit_error", "rate_limited");
        let message = body["error"]["message"].as_str().unwrap();
        for name in ["one (http 429)", "two (http 429)", "three (http 429)"] {
            assert!(message.contains(name), "{message}");
        }
    }
    for tag in ["rate-1", "rate-2", "rate-3"] {
        assert_eq!(closed(&mock, tag).await.len(), 2, "{tag}: once per request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn final_failures_say_not_to_retry_and_name_every_provider() {
    let _turn = shared().await;
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[
                provider(&mock, "limited", "http-429", "final-1", "retry_after=1"),
                provider(&mock, "broken", "http-500", "final-2", ""),
                provider(&mock, "slow", "no-headers", "final-3", ""),
            ]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_RETRY", json!({"maxRetries": 0}).to_string()),
        ("LSG_TIMEOUTS", json!({"headersMs": 200}).to_string()),
    ])
    .await;
    let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
    assert_eq!(response.status, 504, "{:?}", response.headers);
    assert_eq!(response.header("x-should-retry"), Some("false"));
    assert_eq!(
        response.header("retry-after"),
        None,
        "not every provider was rate-limited"
    );
    let body = response.json().await;
    check_error_json(&body, "timeout_error", "timeout");
    let message = body["error"]["message"].as_str().unwrap();
    for name in ["limited (http 429)", "broken (http 500)", "slow (timeout)"] {
        assert!(message.contains(name), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn preflight_echoes_the_requested_headers_of_an_sdk_in_a_page() {
    let _turn = shared().await;
    let tag = "preflight-echo";
    let mock = mock().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "normal", tag, "")]),
        ),
        ("LSG_ALLOWED_ORIGINS", ORIGIN.into()),
    ])
    .await;
    let preflight = |requested: String| {
        let addr = worker.addr();
        async move {
            send(
                addr,
                "OPTIONS",
                "/v1/chat/completions",
                &[
                    ("origin", ORIGIN),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", &requested),
                ],
                full(""),
            )
            .await
        }
    };
    let answer = preflight("x-stainless-os, x-lsg-events".into()).await;
    assert_eq!(answer.status, 204);
    let allowed = answer
        .header("access-control-allow-headers")
        .unwrap_or_default();
    assert_eq!(allowed, "x-stainless-os, x-lsg-events");
    assert!(answer
        .header("vary")
        .is_some_and(|v| v.contains("Access-Control-Request-Headers")));
    let sdk = "authorization, content-type, x-stainless-arch, x-stainless-lang, \
               x-stainless-os, x-stainless-package-version, x-stainless-retry-count, \
               x-stainless-runtime, x-stainless-runtime-version, x-stainless-timeout";
    let answer = preflight(sdk.into()).await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("access-control-allow-headers"), Some(sdk));
    let too_long = preflight(vec!["x-a"; 700].join(",")).await;
    assert_eq!(too_long.status, 400, "a bound on what is echoed");
    assert_eq!(too_long.header("access-control-allow-headers"), None);

    // The request itself, with the SDK's headers and X-LSG-Events: the page can read the id.
    let response = post_chat(
        &worker,
        &[
            ("origin", ORIGIN),
            ("x-stainless-os", "Linux"),
            ("x-lsg-events", "1"),
        ],
        &chat(Some(true)),
    )
    .await;
    assert_eq!(response.status, 200);
    let exposed = response
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_owned();
    for name in ["x-request-id", "retry-after", "x-should-retry"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    let text = response.text().await;
    assert!(
        text.contains("event: guard\n"),
        "guard events for X-LSG-Events: {text}"
    );
    assert_eq!(closed(&mock, tag).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn fields_that_pick_providers_are_refused_unless_forwarded_and_max_tokens_is_capped() {
    let _turn = shared().await;
    let mock = mock().await;
    let strict = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "normal", "fields-strict", "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_MAX_TOKENS", "64".into()),
    ])
    .await;
    let auth = bearer();
    for (field, value) in [
        (
            "models",
            json!(["openai/gpt-4o", "anthropic/claude-opus-4"]),
        ),
        (
            "provider",
            json!({"order": ["Together"], "allow_fallbacks": true}),
        ),
        ("route", json!("fallback")),
        ("plugins", json!([{"id": "web"}])),
        ("n", json!(4)),
    ] {
        let mut body = chat(Some(true));
        body[field] = value;
        let response = post_chat(&strict, &[("authorization", &auth)], &body).await;
        assert_eq!(response.status, 400, "{field}");
        let body = response.json().await;
        check_error_json(&body, "invalid_request_error", "field_not_allowed");
        assert_eq!(body["error"]["param"], field);
        assert!(body["error"]["message"].as_str().unwrap().contains(field));
    }
    let mut over = chat(Some(false));
    over["max_completion_tokens"] = json!(65);
    let response = post_chat(&strict, &[("authorization", &auth)], &over).await;
    assert_eq!(response.status, 400);
    let body = response.json().await;
    check_error_json(&body, "invalid_request_error", "max_tokens_too_large");
    assert_eq!(body["error"]["param"], "max_completion_tokens");
    let stray = none_arrive(&mock, "fields-strict", 200).await;
    assert!(stray.connections.is_empty(), "{:#?}", stray.connections);
    // No max_tokens given: the cap goes upstream.
    let response = post_chat(&strict, &[("authorization", &auth)], &chat(Some(false))).await;
    assert_eq!(response.status, 200);
    let records = closed(&mock, "fields-strict").await;
    let sent: Value = serde_json::from_str(&records[0].body).unwrap();
    assert_eq!(sent["max_tokens"], 64, "{sent}");

    let open = worker(&[
        (
            "LSG_PROVIDERS",
            providers(&[provider(&mock, "mock", "normal", "fields-open", "")]),
        ),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ("LSG_FORWARD_FIELDS", "provider".into()),
    ])
    .await;
    let mut body = chat(Some(false));
    body["provider"] = json!({"order": ["Together"]});
    let response = post_chat(&open, &[("authorization", &auth)], &body).await;
    assert_eq!(response.status, 200);
    let records = closed(&mock, "fields-open").await;
    let sent: Value = serde_json::from_str(&records[0].body).unwrap();
    assert_eq!(
        sent["provider"]["order"][0], "Together",
        "listed in LSG_FORWARD_FIELDS: {sent}"
    );
    assert!(
        sent.get("max_tokens").is_none(),
        "no cap configured: {sent}"
    );
    let mut body = chat(Some(false));
    body["models"] = json!(["x/y"]);
    let response = post_chat(&open, &[("authorization", &auth)], &body).await;
    assert_eq!(response.status, 400, "only the listed fields pass");
}

/// An upstream of its own (on 127.0.0.1, port 0) that answers every request with a guard event
/// of its own carrying the `Authorization` it received, then a short answer. Returns its chat
/// URL and the task serving it.
async fn echoing_guard_upstream() -> (String, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let mut buf = [0u8; 4096];
                let head = loop {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => bytes.extend_from_slice(&buf[..n]),
                    }
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    if let Some((head, _)) = text.split_once("\r\n\r\n") {
                        break head.to_owned();
                    }
                };
                let authorization = head
                    .lines()
                    .find_map(|l| {
                        let (n, v) = l.split_once(':')?;
                        n.eq_ignore_ascii_case("authorization")
                            .then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                let guard =
                    json!({"type": "timeout", "note": format!("my key is {authorization}")});
                let chunk = |delta: Value, finish: Value| {
                    json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                };
                let body = format!(
                    "event: guard\ndata: {guard}\n\ndata: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
                    chunk(json!({"role": "assistant", "content": "Hi"}), Value::Null),
                    chunk(json!({}), json!("stop")),
                );
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    lsg_skip,
    ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
)]
async fn an_upstreams_guard_events_are_relayed_apart_and_without_keys() {
    let _turn = shared().await;
    let (url, upstream) = echoing_guard_upstream().await;
    let worker = worker(&[
        (
            "LSG_PROVIDERS",
            json!([{"name": "echo", "url": url, "model": MODEL, "apiKeyEnv": KEY_ENV}]).to_string(),
        ),
        (KEY_ENV, PROVIDER_KEY.into()),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
    ])
    .await;
    let text = streamed_with_events(&worker).await;
    upstream.abort();
    let mut own = Vec::new();
    let mut relayed = Vec::new();
    for block in text.split("\n\n") {
        let mut lines = block.lines().filter(|l| !l.is_empty());
        let Some(first) = lines.next() else { continue };
        if let Some(name) = first.strip_prefix("event: ") {
            let data = lines
                .next()
                .and_then(|l| l.strip_prefix("data: "))
                .unwrap_or_default();
            let data: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {block}"));
            match name {
                "guard" => own.push(data),
                "guard-upstream" => relayed.push(data),
                other => panic!("event {other:?}: {block}"),
            }
        }
    }
    assert!(
        own.iter().any(|e| e["type"] == "request-start"),
        "the worker's own events: {own:#?}"
    );
    assert!(
        own.iter().all(|e| e["type"] != "upstream-event"),
        "an upstream's event passed as the worker's: {own:#?}"
    );
    assert_eq!(relayed.len(), 1, "{text}");
    assert_eq!(relayed[0]["event"]["type"], "timeout");
    let note = relayed[0]["event"]["note"].as_str().unwrap();
    assert!(note.contains("[redacted]"), "{note}");
    assert!(
        !text.contains(&PROVIDER_KEY[3..11]),
        "a piece of the key reached the client: {text}"
    );
    assert!(
        text.contains("\"content\":\"Hi\""),
        "the answer still arrives: {text}"
    );
}

// ---------------------------------------------------------------------------------------------
// The transparent proxy (issue 14): the client's body and the upstream's bytes pass unchanged,
// usage only when asked, /v1/responses, a client leaving in every phase, backpressure, load.

/// The attribute pair of every test here, once, and its turn: `alone` for a load test (it
/// runs while no other test of this file does), shared for the others.
macro_rules! workerd_test {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        workerd_test!(@turn shared $(#[$meta])* async fn $name() $body);
    };
    (alone $(#[$meta:meta])* async fn $name:ident() $body:block) => {
        workerd_test!(@turn alone $(#[$meta])* async fn $name() $body);
    };
    (@turn $turn:ident $(#[$meta:meta])* async fn $name:ident() $body:block) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(
            lsg_skip,
            ignore = "cannot run here: edge-worker's build warning says what is missing (workerd, or the tools to build the worker); `cargo xtask test --only workerd` sets it up and runs it"
        )]
        $(#[$meta])*
        async fn $name() {
            let _turn = $turn().await;
            $body
        }
    };
}

/// Liveness probes off, for byte-for-byte comparisons: a probe is an empty line the worker adds
/// between events when the upstream is silent for `LSG_PROBE_MS` (25 ms), which a loaded machine
/// can make the mock's pauses last.
fn no_probes() -> (&'static str, String) {
    ("LSG_PROBE_MS", "0".to_owned())
}

/// A streamed chat through `worker` with its guard events asked for: the whole body of its 200.
async fn streamed_with_events(worker: &Workerd) -> String {
    let response = post_chat(
        worker,
        &[("authorization", &bearer()), ("x-lsg-events", "1")],
        &chat(Some(true)),
    )
    .await;
    assert_eq!(response.status, 200);
    response.text().await
}

/// The mock, and a worker whose chain is `chain` (`(name, scenario, tag, query)`), accepting
/// the client token, with `env` besides.
async fn mock_and_worker(
    chain: &[(&str, &str, &str, &str)],
    env: &[(&str, String)],
) -> (Running, Workerd) {
    let mock = mock().await;
    let list: Vec<Value> = chain
        .iter()
        .map(|(name, scenario, tag, query)| provider(&mock, name, scenario, tag, query))
        .collect();
    let mut all = vec![
        ("LSG_PROVIDERS", providers(&list)),
        ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.to_owned()),
    ];
    all.extend(env.iter().cloned());
    let worker = worker(&all).await;
    (mock, worker)
}

/// `body` POSTed straight to the mock at `path_and_query` (the way the worker asked it).
async fn direct(mock: &Running, path_and_query: &str, body: String) -> String {
    let response = send(
        mock.addr,
        "POST",
        path_and_query,
        &[("content-type", "application/json")],
        full(body),
    )
    .await;
    assert_eq!(response.status, 200);
    response.text().await
}

/// `text` with what differs between two answers of one mock scenario made the same: the
/// generation's id (`gen-mock-N`) and `created`.
fn same_shape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['"', '_']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        for prefix in ["\"gen-mock-", "\"created\":", "\"created_at\":", "_mock_"] {
            if let Some(after) = rest.strip_prefix(prefix) {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                if digits > 0 {
                    out.push_str(prefix);
                    out.push('N');
                    rest = &after[digits..];
                }
            }
        }
        if let Some(c) = rest.chars().next() {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push_str(rest);
    out
}

/// The event blocks of an SSE text, each with its blank line.
fn blocks(text: &str) -> Vec<&str> {
    text.split_inclusive("\n\n").collect()
}

workerd_test! {
    async fn tool_calls_and_every_byte_pass_through_unchanged_with_usage_only_when_asked() {
        let tag = "transparent";
        let (mock, worker) =
            mock_and_worker(&[("mock", "tool-calls", tag, "")], &[no_probes()]).await;
        let mut asked = chat(Some(true));
        asked["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
        asked["stream_options"] = json!({"include_usage": true});
        let mut silent = asked.clone();
        silent.as_object_mut().unwrap().remove("stream_options");
        let mut seen = Vec::new();
        for body in [&asked, &silent] {
            let text = body.to_string();
            let response = post_chat(&worker, &[("authorization", &bearer())], body).await;
            assert_eq!(response.status, 200);
            let relayed = response.text().await;
            let records = closed(&mock, tag).await;
            let upstream = &records.last().unwrap().body;
            // The client's body as it sent it, the provider's model first, usage asked for.
            let want = match body.get("stream_options") {
                Some(_) => text.replacen('{', &format!("{{\"model\":\"{MODEL}\","), 1),
                None => text.replacen(
                    '{',
                    &format!("{{\"stream_options\":{{\"include_usage\":true}},\"model\":\"{MODEL}\","),
                    1,
                ),
            };
            assert_eq!(upstream, &want, "the upstream got the client's bytes");
            // The same scenario asked directly, with the body the worker sent.
            let path = format!("/scenario/tool-calls/v1/chat/completions?tag={tag}-direct");
            let straight = direct(&mock, &path, upstream.clone()).await;
            seen.push((relayed, straight));
        }
        let (relayed, straight) = &seen[0];
        assert_eq!(same_shape(relayed), same_shape(straight), "byte for byte, usage asked");
        let usage_blocks = blocks(straight)
            .into_iter()
            .filter(|b| {
                b.strip_prefix("data: ")
                    .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok())
                    .is_some_and(|c| usage_only(&c))
            })
            .count();
        assert_eq!(usage_blocks, 1, "the upstream sent one usage chunk: {straight}");
        let (relayed, straight) = &seen[1];
        let without_usage: String = blocks(straight)
            .into_iter()
            .filter(|b| {
                !b.strip_prefix("data: ")
                    .and_then(|d| serde_json::from_str::<Value>(d.trim()).ok())
                    .is_some_and(|c| usage_only(&c))
            })
            .collect();
        assert_eq!(same_shape(relayed), same_shape(&without_usage), "byte for byte, no usage");
        // The tool call, reassembled from its fragments.
        let mut name = String::new();
        let mut arguments = String::new();
        for block in blocks(relayed) {
            let Some(data) = block.strip_prefix("data: ") else { continue };
            let Ok(chunk) = serde_json::from_str::<Value>(data.trim()) else { continue };
            for call in chunk["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
                name.push_str(call["function"]["name"].as_str().unwrap_or_default());
                arguments.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            }
        }
        assert_eq!(name, "get_weather", "{relayed}");
        let arguments: Value = serde_json::from_str(&arguments)
            .unwrap_or_else(|e| panic!("the tool call's arguments are whole JSON ({e}): {arguments}"));
        assert!(arguments.is_object(), "{arguments}");
        assert!(relayed.contains("\"finish_reason\":\"tool_calls\""), "{relayed}");
    }
}

/// An upstream of its own (on 127.0.0.1, port 0) answering every request with `body` as
/// `content_type`. Returns its chat URL and the task serving it.
async fn fixed_upstream(content_type: &'static str, body: String) -> (String, JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (url, task)
}

workerd_test! {
    async fn a_whole_answer_with_tool_calls_is_relayed_byte_for_byte() {
        // Spacing, field order and escapes a re-encoding would change.
        let completion = "{\"id\":\"chatcmpl-x\", \"object\":\"chat.completion\",\"created\":1,\"model\":\"mock/model\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Z\\u00fcrich\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}";
        let (url, upstream) = fixed_upstream("application/json", completion.to_owned()).await;
        let worker = worker(&[
            ("LSG_PROVIDERS", json!([{"name": "fixed", "url": url, "model": MODEL}]).to_string()),
            ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ])
        .await;
        let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(false))).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.text().await, completion);
        upstream.abort();
    }
}

workerd_test! {
    async fn the_responses_api_is_served_the_same_way() {
        let tag = "responses";
        let (mock, worker) =
            mock_and_worker(&[("mock", "responses-normal", tag, "")], &[no_probes()]).await;
        let request = |stream: bool| {
            json!({"model": MODEL, "input": "Say hello.", "stream": stream}).to_string()
        };
        let auth = bearer();
        let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
        let response = send(worker.addr(), "POST", "/v1/responses", &headers, full(request(true))).await;
        assert_eq!(response.status, 200);
        assert!(response.header("content-type").is_some_and(|t| t.starts_with("text/event-stream")));
        let relayed = response.text().await;
        let records = closed(&mock, tag).await;
        assert!(records[0].path.ends_with("/v1/responses"), "{:?}", records[0].path);
        assert_eq!(records[0].body, request(true), "the client's body, as sent");
        let path = format!("/scenario/responses-normal/v1/responses?tag={tag}-direct");
        let straight = direct(&mock, &path, records[0].body.clone()).await;
        assert_eq!(same_shape(&relayed), same_shape(&straight), "byte for byte");
        assert!(relayed.contains("response.output_text.delta") && relayed.contains("response.completed"));
        let response = send(worker.addr(), "POST", "/v1/responses", &headers, full(request(false))).await;
        assert_eq!(response.status, 200);
        let whole = response.json().await;
        assert_eq!(whole["object"], "response", "{whole}");
    }
}

/// Opens a raw connection to the worker, sends `body` to `path`, waits until the mock holds
/// the upstream request tagged `tag` in the state `ready` asks for, then drops the connection.
/// Returns how long after the drop the upstream connection closed (ledger clock, ms).
async fn leave_when(
    worker: &Workerd,
    mock: &Running,
    tag: &str,
    body: &Value,
    ready: impl Fn(&ConnectionRecord) -> bool,
) -> f64 {
    use tokio::io::AsyncWriteExt;
    let body = body.to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\nauthorization: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        worker.addr(),
        bearer(),
        body.len()
    );
    let before = mock.ledger.query(&Filter::tag(tag)).len();
    let mut tcp = TcpStream::connect(worker.addr()).await.expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("send");
    let reached = mock
        .ledger
        .wait_for(LEDGER_WAIT, |l| {
            l.query(&Filter::tag(tag)).get(before).is_some_and(&ready)
        })
        .await;
    assert!(reached, "{tag}: the upstream request never got there");
    // Reset, as a client that aborts with bytes unread does: workerd 1.20261117.1 aborts the
    // request's signal on a reset, but not on an orderly close (FIN), which it learns of only
    // when it writes to the client, and nothing can be written before the status.
    // (Deprecated because a linger time can block the dropping thread; a zero one resets at
    // once.)
    #[allow(deprecated)]
    tcp.set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
    let at = now_ms();
    drop(tcp);
    let records = closed(mock, tag).await;
    let upstream = &records[before];
    assert_eq!(
        upstream.closed_by,
        Some(ClosedBy::Client),
        "{tag}: the worker closed it"
    );
    upstream.closed_at_ms.unwrap() - at
}

workerd_test! {
    async fn a_client_leaving_in_any_phase_closes_the_upstream_within_100_ms() {
        let (mock, worker) = mock_and_worker(
            &[
                ("waits", "no-headers", "leave-before-headers", ""),
            ],
            &[("LSG_HEARTBEAT_MS", "5000".into())],
        )
        .await;
        let (mock2, worker2) = mock_and_worker(
            &[("silent", "headers-then-silence", "leave-held", "")],
            &[("LSG_HEARTBEAT_MS", "5000".into())],
        )
        .await;
        let mut report = Vec::new();
        for _ in 0..3 {
            // Before the upstream's headers: a stream, and a whole answer.
            let opened = |r: &ConnectionRecord| !r.method.is_empty();
            let a = leave_when(&worker, &mock, "leave-before-headers", &chat(Some(true)), opened).await;
            let b = leave_when(&worker, &mock, "leave-before-headers", &chat(Some(false)), opened).await;
            // The upstream answered 200 and says nothing: the status is held (first heartbeat
            // at 5 s), no byte has gone to the client.
            let answered = |r: &ConnectionRecord| r.response_started_at_ms.is_some();
            let c = leave_when(&worker2, &mock2, "leave-held", &chat(Some(true)), answered).await;
            report.push([a, b, c]);
        }
        eprintln!("client gone → upstream closed (ms), [before headers stream, before headers whole, status held]: {report:?}");
        for (phase, i) in [("before headers (stream)", 0), ("before headers (whole)", 1), ("status held", 2)] {
            let worst = report.iter().map(|r| r[i]).fold(f64::MIN, f64::max);
            assert!(worst <= CANCEL_LATENCY_MS, "{phase}: {worst:.1} ms: {report:?}");
        }
    }
}

/// What a counting upstream saw of one connection.
#[derive(Debug, Clone, Default)]
struct Counted {
    /// Bytes written to the worker.
    written: u64,
    /// A write has waited longer than the stall bound (the worker stopped reading).
    blocked: bool,
    /// The answer was written whole.
    finished: bool,
    /// When a write failed (the worker closed it), ledger clock.
    closed_at: Option<f64>,
}

/// An upstream of its own that streams `chunks` chat chunks (0: without end) as fast as the
/// worker takes them, counting what it wrote per connection and noting when a write waits
/// longer than `stall_ms`. Returns its chat URL, the counts and the task serving it.
async fn counting_upstream(
    chunks: usize,
    stall_ms: u64,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<Counted>>>,
    JoinHandle<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let counts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Counted>::new()));
    let shared = counts.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let counts = shared.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let index = {
                    let mut counts = counts.lock().unwrap();
                    counts.push(Counted::default());
                    counts.len() - 1
                };
                let note = |f: &dyn Fn(&mut Counted)| f(&mut counts.lock().unwrap()[index]);
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                let event = format!(
                    "data: {}\n\n",
                    json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
                           "choices": [{"index": 0, "delta": {"role": "assistant", "content": "tok "}, "finish_reason": null}]})
                );
                let batch = event.repeat(100);
                let mut pieces: Vec<u8> = head.as_bytes().to_vec();
                let mut sent = 0;
                loop {
                    if chunks > 0 && sent >= chunks {
                        let tail = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
                        pieces.extend_from_slice(tail.as_bytes());
                    } else {
                        pieces.extend_from_slice(batch.as_bytes());
                        sent += 100;
                    }
                    let len = pieces.len() as u64;
                    let mut write = Box::pin(tcp.write_all(&pieces));
                    let done =
                        match tokio::time::timeout(Duration::from_millis(stall_ms), &mut write)
                            .await
                        {
                            Ok(done) => done,
                            Err(_) => {
                                note(&|c| c.blocked = true);
                                write.await
                            }
                        };
                    if done.is_err() {
                        note(&|c| c.closed_at = Some(now_ms()));
                        return;
                    }
                    note(&|c| {
                        c.written += len;
                        c.blocked = false;
                    });
                    pieces.clear();
                    if chunks > 0 && sent >= chunks && len < batch.len() as u64 {
                        note(&|c| c.finished = true);
                        let _ = tcp.shutdown().await;
                        // Wait for the worker to close its side.
                        let _ = tcp.read(&mut buf).await;
                        note(&|c| c.closed_at = Some(now_ms()));
                        return;
                    }
                }
            });
        }
    });
    (url, counts, task)
}

/// Polls `check` on the counts every 10 ms (a bounded wait on a condition, like the ledger's
/// long-poll) until it holds or `limit` passes; returns whether it held.
async fn counts_until(
    counts: &std::sync::Mutex<Vec<Counted>>,
    limit: Duration,
    check: impl Fn(&[Counted]) -> bool,
) -> bool {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        if check(&counts.lock().unwrap()) {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
    }
}

/// Opens `n` raw requests for a stream that are never read; returns the connections.
async fn never_reading_clients(worker: &Workerd, n: usize) -> Vec<TcpStream> {
    use tokio::io::AsyncWriteExt;
    let body = chat(Some(true)).to_string();
    let mut clients = Vec::new();
    for _ in 0..n {
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: {}\r\nauthorization: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            worker.addr(),
            bearer(),
            body.len()
        );
        let mut tcp = TcpStream::connect(worker.addr()).await.expect("connect");
        tcp.write_all(head.as_bytes()).await.expect("send");
        clients.push(tcp);
    }
    clients
}

workerd_test! {
    alone
    async fn a_client_that_does_not_read_holds_the_upstream_back_and_is_gone_after_the_idle_deadline() {
        let (url, counts, upstream) = counting_upstream(0, 200).await;
        let worker = worker(&[
            ("LSG_PROVIDERS", json!([{"name": "fast", "url": url, "model": MODEL}]).to_string()),
            ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
            ("LSG_TIMEOUTS", json!({"idleMs": 2000}).to_string()),
        ])
        .await;
        let clients = never_reading_clients(&worker, 1).await;
        let started = now_ms();
        let held = counts_until(&counts, Duration::from_secs(10), |c| c.first().is_some_and(|c| c.blocked)).await;
        let written = counts.lock().unwrap()[0].written;
        eprintln!("a client that never reads: the upstream's writes wait after {written} bytes");
        assert!(held, "the upstream was never held back: {:?}", counts.lock().unwrap());
        // Socket buffers on both sides of workerd hold some MB; without backpressure the
        // upstream would write without end.
        assert!(written < 64 << 20, "{written} bytes went upstream → worker");
        let gone = counts_until(&counts, Duration::from_secs(10), |c| c[0].closed_at.is_some()).await;
        let closed_at = counts.lock().unwrap()[0].closed_at;
        assert!(gone, "the upstream was never released");
        let after = closed_at.unwrap() - started;
        eprintln!("the upstream released {after:.0} ms after the request (idle deadline 2000 ms)");
        assert!((1_500.0..6_000.0).contains(&after), "released after {after:.0} ms");
        let after_release = counts.lock().unwrap()[0].written;
        assert!(after_release - written < 64 << 20);
        drop(clients);
        upstream.abort();
    }
}

/// The resident memory of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

workerd_test! {
    alone
    async fn fifty_never_reading_clients_of_a_long_answer_add_under_100_mb() {
        let (url, counts, upstream) = counting_upstream(40_000, 300).await;
        let worker = worker(&[
            ("LSG_PROVIDERS", json!([{"name": "long", "url": url, "model": MODEL}]).to_string()),
            ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
        ])
        .await;
        // One read-through first, so the isolate and its module are warm before the baseline.
        let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
        assert_eq!(response.status, 200);
        let whole = response.text().await;
        assert!(whole.ends_with("data: [DONE]\n\n"));
        let before = rss_bytes(worker.pid());
        let clients = never_reading_clients(&worker, 50).await;
        let held = counts_until(&counts, Duration::from_secs(30), |c| {
            c.len() == 51 && c[1..].iter().all(|c| c.blocked || c.finished)
        })
        .await;
        // What stays, not the garbage of the moment: the least RSS seen over the next second
        // (every upstream is held back meanwhile, so nothing new is taken in).
        let mut after = rss_bytes(worker.pid());
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        for _ in 0..20 {
            tick.tick().await;
            after = after.min(rss_bytes(worker.pid()));
        }
        let written: u64 = counts.lock().unwrap()[1..].iter().map(|c| c.written).sum();
        let growth = after.saturating_sub(before) as f64 / (1 << 20) as f64;
        eprintln!(
            "50 never-reading clients of a 40 000-chunk answer: workerd RSS {:.1} → {:.1} MB (+{growth:.1} MB); {:.1} MB written upstream → worker in all",
            before as f64 / (1 << 20) as f64,
            after as f64 / (1 << 20) as f64,
            written as f64 / (1 << 20) as f64
        );
        assert!(held, "not every upstream was held back: {:?}", counts.lock().unwrap());
        // Unbounded (the upstream read as fast as it came) this grew by 213 MB; held back it
        // measured 42 to 57 MB (64 KiB of body per client plus socket buffers and the
        // runtime's own, more under a loaded machine). The bound is half the unbounded growth.
        assert!(growth < 100.0, "workerd grew by {growth:.1} MB");
        drop(clients);
        upstream.abort();
    }
}

workerd_test! {
    alone
    async fn two_hundred_streams_with_half_the_clients_leaving_close_every_departed_upstream() {
        let tag = "load-leave";
        // LSG_LOAD_STREAMS: fewer streams, to tell load from the rest when this fails.
        let streams: usize = std::env::var("LSG_LOAD_STREAMS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(200);
        let (mock, worker) =
            mock_and_worker(&[("endless", "endless", tag, "delay_ms=50")], &[]).await;
        let addr = worker.addr();
        let (go_tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(streams);
        let tasks: Vec<JoinHandle<(Option<f64>, Option<Sse>)>> = (0..streams)
            .map(|i| {
                let mut go = go_tx.subscribe();
                let ready = ready_tx.clone();
                tokio::spawn(async move {
                    let mut body = chat(Some(true));
                    body["messages"][0]["content"] = json!(format!("client {i:03}"));
                    let auth = bearer();
                    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
                    let response = send(addr, "POST", "/v1/chat/completions", &headers, full(body.to_string())).await;
                    assert_eq!(response.status, 200);
                    let mut sse = response.sse();
                    loop {
                        let (_, event) = sse.next().await.expect("the stream ended");
                        if matches!(event, Ev::Data(_)) {
                            break;
                        }
                    }
                    let _ = ready.send(()).await;
                    let _ = go.recv().await;
                    match i % 2 {
                        0 => (Some(sse.response.disconnect().await), None),
                        _ => {
                            // Still reading while the others leave, and staying on.
                            let _ = sse.next().await.expect("the stream goes on");
                            (None, Some(sse))
                        }
                    }
                })
            })
            .collect();
        for _ in 0..streams {
            within("every stream started", Duration::from_secs(40), ready_rx.recv()).await;
        }
        let _ = go_tx.send(());
        let mut left = Vec::new();
        let mut staying = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.expect("a client task") {
                (Some(at), _) => left.push((i, at)),
                (None, sse) => staying.extend(sse),
            }
        }
        let leaving: Vec<String> = left.iter().map(|(i, _)| format!("client {i:03}")).collect();
        let ok = mock
            .ledger
            .wait_for(LEDGER_WAIT, |l| {
                l.query(&Filter::tag(tag))
                    .iter()
                    .filter(|r| r.is_closed() && leaving.iter().any(|c| r.body.contains(c.as_str())))
                    .count()
                    == leaving.len()
            })
            .await;
        assert!(ok, "not every departed client's upstream closed within {LEDGER_WAIT:?}");
        let records = mock.ledger.query(&Filter::tag(tag));
        let mut latencies: Vec<f64> = left
            .iter()
            .map(|(i, at)| {
                let name = format!("client {i:03}");
                let record = records.iter().find(|r| r.body.contains(&name)).expect("its upstream");
                record.closed_at_ms.unwrap() - at
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
        eprintln!(
            "200 streams, 100 clients leaving: client gone → upstream closed p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            p(0.5),
            p(0.99),
            p(1.0)
        );
        // Alone on a quiet machine the p99 is about 60 ms (the goal is 100 ms); with a build
        // running beside it, 150 ms. A latency under load is a measurement, so the bound here is
        // the one that tells noticing from not noticing: an unnoticed departure keeps its
        // `endless` upstream open until the ledger's wait gives up.
        assert!(p(0.99) <= LOAD_CANCEL_BOUND_MS, "p99 {:.1} ms: {latencies:?}", p(0.99));
        let open = records.iter().filter(|r| !r.is_closed()).count();
        assert_eq!(open, streams / 2, "the clients that stay keep their upstreams");
        drop(staying);
    }
}

/// The CPU time workerd (process `pid`) has used, in ms (utime + stime, 100 ticks a second).
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat")
        .1
        .split_whitespace()
        .collect();
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) * 10.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check (about 25 s, with 2-second windows): cargo test -p edge-worker --test workerd -- --ignored --nocapture probe_cost"]
async fn probe_cost_of_200_streams_waiting_on_a_silent_upstream() {
    let _turn = alone().await;
    let streams = 200;
    let window = Duration::from_secs(2);
    let mut report = Vec::new();
    for (phase, heartbeat_ms, probe_ms) in [
        ("status held (before the first heartbeat)", "60000", "25"),
        ("status out, probes every 25 ms", "100", "25"),
        ("status out, probes off", "100", "0"),
    ] {
        let tag = "probe-cost";
        let (mock, worker) = mock_and_worker(
            &[("silent", "headers-then-silence", tag, "")],
            &[
                ("LSG_HEARTBEAT_MS", heartbeat_ms.into()),
                ("LSG_PROBE_MS", probe_ms.into()),
                (
                    "LSG_TIMEOUTS",
                    json!({"firstTokenMs": 120_000, "streamMs": 120_000, "serviceMs": 120_000})
                        .to_string(),
                ),
            ],
        )
        .await;
        let clients = never_reading_clients(&worker, streams).await;
        let waiting = mock
            .ledger
            .wait_for(Duration::from_secs(20), |l| {
                l.query(&Filter::tag(tag))
                    .iter()
                    .filter(|r| r.response_started_at_ms.is_some())
                    .count()
                    == streams
            })
            .await;
        assert!(waiting, "not every upstream answered");
        // Past the first heartbeat, when there is one to wait for.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = cpu_ms(worker.pid());
        let started = Instant::now();
        tokio::time::sleep(window).await;
        let used = cpu_ms(worker.pid()) - before;
        let share = used / started.elapsed().as_millis() as f64;
        report.push(format!(
            "{phase}: workerd CPU {used:.0} ms in {:?} ({:.1}% of a core)",
            started.elapsed(),
            share * 100.0
        ));
        drop(clients);
    }
    // The floor of any probe: a worker with nothing of the guard in it that writes one LF
    // every 25 ms into each never-reading client's response (a JavaScript stream, as the
    // worker's body is).
    let dir = probe_worker("probe-floor", WRITES_EVERY_25_MS);
    let floor = start_probe_worker(&dir).await;
    let clients = never_reading_clients(&floor, streams).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_ms(floor.pid());
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let used = cpu_ms(floor.pid()) - before;
    report.push(format!(
        "floor, a plain worker writing one LF every 25 ms: workerd CPU {used:.0} ms in {:?} ({:.1}% of a core)",
        started.elapsed(),
        used / started.elapsed().as_millis() as f64 * 100.0
    ));
    drop(clients);
    drop(floor);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "{streams} streams waiting on a silent upstream:\n  {}",
        report.join("\n  ")
    );
}

/// A worker that answers every request (but the launcher's `/healthz`) with a stream of one LF
/// every 25 ms, until the client goes: what a liveness probe costs workerd with nothing of the
/// guard in it.
const WRITES_EVERY_25_MS: &str = r#"export default {
  async fetch(request) {
    if (new URL(request.url).pathname === "/healthz") return new Response("ok");
    await request.arrayBuffer();
    const lf = new Uint8Array([10]);
    let timer;
    const body = new ReadableStream({
      start(controller) {
        const tick = () => {
          try {
            controller.enqueue(lf);
          } catch {
            return;
          }
          timer = setTimeout(tick, 25);
        };
        timer = setTimeout(tick, 25);
      },
      cancel() {
        clearTimeout(timer);
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  },
};
"#;

workerd_test! {
    async fn lsg_guard_opens_a_stalled_providers_breaker_and_the_next_request_skips_it() {
        let tag = "guard-breaker";
        let mock = mock().await;
        let silent = provider(&mock, "silent", "keepalive-forever", tag, "keepalive_ms=50");
        let backup = provider(&mock, "backup", "normal", tag, "");
        let worker = worker(&[
            ("LSG_PROVIDERS", providers(&[silent, backup])),
            ("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()),
            ("LSG_TIMEOUTS", json!({"firstTokenMs": 300}).to_string()),
            ("LSG_RETRY", json!({"maxRetries": 0}).to_string()),
            (
                "LSG_GUARD",
                json!({"breaker": {"failureThreshold": 1, "cooldownMs": 60_000}}).to_string(),
            ),
        ])
        .await;
        let ask = || streamed_with_events(&worker);
        // The first request: the silent provider's first-token deadline, then the backup.
        let first = ask().await;
        assert!(first.contains("data: [DONE]"), "{first}");
        assert!(!first.contains("\"type\":\"skipped\""), "{first}");
        let scenarios = |records: Vec<ConnectionRecord>| -> Vec<Option<String>> {
            records.into_iter().map(|r| r.scenario).collect()
        };
        assert_eq!(
            scenarios(closed(&mock, tag).await),
            [Some("keepalive-forever".into()), Some("normal".into())]
        );
        // The second: the silent provider's breaker is open, so it is not asked at all.
        let second = ask().await;
        assert!(second.contains("data: [DONE]"), "{second}");
        assert!(
            second.contains("\"type\":\"skipped\"") && second.contains("\"provider\":\"silent\""),
            "the skip is an event: {second}"
        );
        assert_eq!(
            scenarios(closed(&mock, tag).await),
            [
                Some("keepalive-forever".into()),
                Some("normal".into()),
                Some("normal".into())
            ],
            "nothing was sent to the skipped provider"
        );
        // An operator sees the breaker in /metrics.
        let metrics = send(worker.addr(), "GET", "/metrics", &[], full("")).await;
        let text = metrics.text().await;
        assert!(
            text.contains("lsg_provider_breaker{provider=\"silent\",state=\"open\"} 1")
                && text.contains("lsg_provider_breaker{provider=\"backup\",state=\"closed\"} 1"),
            "{text}"
        );
    }
}

workerd_test! {
    async fn a_bad_lsg_guard_is_a_configuration_error() {
        let (_mock, worker) = mock_and_worker(
            &[("one", "normal", "guard-config", "")],
            &[("LSG_GUARD", json!({"hedge": {"afterMs": 100}}).to_string())],
        )
        .await;
        let response = post_chat(&worker, &[("authorization", &bearer())], &chat(Some(true))).await;
        assert_eq!(response.status, 500);
        let body = response.text().await;
        assert!(!body.contains("hedge"), "the value is not shown to clients: {body}");
    }
}

// ---------------------------------------------------------------------------------------------
// Breakers shared between isolates through the Durable Object (`LSG_GUARD_DO`).

/// The bundle's config (the shipped `workerd.capnp`) with `edit` applied: a variant for one
/// test, started with `env` (and the client token), checked for unhandled errors, with the
/// extra `sockets` of the variant.
async fn variant(
    edit: impl FnOnce(String) -> String,
    sockets: &[&str],
    env: Vec<(&'static str, String)>,
) -> Workerd {
    let dir = edge_worker::bundle().unwrap_or_else(|e| panic!("{e}"));
    let shipped = std::fs::read_to_string(dir.join("workerd.capnp")).expect("the shipped config");
    assert!(
        shipped.contains("(name = \"LSG_GUARD_DO\", durableObjectNamespace"),
        "the shipped config binds the Durable Object: {shipped}"
    );
    let template = edit(shipped);
    let sockets: Vec<String> = sockets.iter().map(|s| s.to_string()).collect();
    let mut env = env;
    env.push(("LSG_CLIENT_TOKENS", CLIENT_TOKEN.into()));
    let worker = tokio::task::spawn_blocking(move || {
        let mut launch = Launch::new(edge_worker::workerd_bin()?, dir)
            .template(template)
            .env(env)
            .check_unhandled();
        for socket in &sockets {
            launch = launch.socket(socket);
        }
        launch.start()
    })
    .await
    .expect("start-up task")
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("[workerd pid {}] ready on {}", worker.pid(), worker.url());
    worker
}

/// A guarded streaming chat through `addr`: its status and text.
async fn ask_at(addr: SocketAddr) -> (StatusCode, String) {
    let response = send(
        addr,
        "POST",
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("authorization", &bearer()),
            ("x-lsg-events", "1"),
        ],
        full(chat(Some(true)).to_string()),
    )
    .await;
    let status = response.status;
    (status, response.text().await)
}

/// `GET /metrics` at `addr`, as text.
async fn metrics_at(addr: SocketAddr) -> String {
    send(addr, "GET", "/metrics", &[], full(""))
        .await
        .text()
        .await
}

/// Polls `/metrics` at `addr` (every 20 ms, each read also lets the isolate refresh its view)
/// until a line is `line`, at most `limit`; the time it took.
async fn until_metric(addr: SocketAddr, line: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let text = metrics_at(addr).await;
        if text.lines().any(|l| l == line) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "no {line:?} within {limit:?}; last:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The guard of the shared-breaker tests: three failures in a row open it for a minute.
fn shared_guard_env(mock: &Running, tag: &str) -> Vec<(&'static str, String)> {
    let silent = provider(mock, "silent", "keepalive-forever", tag, "keepalive_ms=50");
    let backup = provider(mock, "backup", "normal", tag, "");
    vec![
        ("LSG_PROVIDERS", providers(&[silent, backup])),
        ("LSG_TIMEOUTS", json!({"firstTokenMs": 300}).to_string()),
        ("LSG_RETRY", json!({"maxRetries": 0}).to_string()),
        (
            "LSG_GUARD",
            json!({"breaker": {"failureThreshold": 3, "cooldownMs": 60_000}}).to_string(),
        ),
    ]
}

fn scenarios(records: Vec<ConnectionRecord>) -> Vec<String> {
    records
        .into_iter()
        .map(|r| r.scenario.unwrap_or_default())
        .collect()
}

/// The shared Durable Object's refresh interval (`core::guard::shared::REFRESH_MS`): a view
/// may be this old, plus one exchange with the object.
const SHARED_REFRESH: Duration = Duration::from_millis(1_000);

workerd_test! {
    async fn two_isolates_share_an_open_breaker_through_the_durable_object() {
        let tag = "guard-shared";
        let mock = mock().await;
        // A second service running the same worker: a second isolate, bound (by the shipped
        // config) to the first one's Durable Object namespace.
        let worker = variant(
            |config| {
                config
                    .replacen(
                        "services = [",
                        "services = [\n    (name = \"second\", worker = .guardWorker),",
                        1,
                    )
                    .replacen(
                        "sockets = [",
                        "sockets = [\n    (name = \"second\", address = \"127.0.0.1:0\", http = (), service = \"second\"),",
                        1,
                    )
            },
            &["second"],
            shared_guard_env(&mock, tag),
        )
        .await;
        let a = worker.addr();
        let b = worker.socket("second").expect("the second socket");
        // B serves first (its guard exists from then on): the silent provider stalls, the
        // backup answers; one failure is no streak to open on.
        let (status, text) = ask_at(b).await;
        assert_eq!(status, 200);
        assert!(text.contains("data: [DONE]"), "{text}");
        assert_eq!(scenarios(closed(&mock, tag).await), ["keepalive-forever", "normal"]);
        // Three stalls through A open its breaker.
        for _ in 0..3 {
            let (status, text) = ask_at(a).await;
            assert_eq!(status, 200);
            assert!(!text.contains("\"type\":\"skipped\""), "{text}");
        }
        let opened = Instant::now();
        let a_metrics = metrics_at(a).await;
        assert!(
            a_metrics.contains("lsg_provider_breaker{provider=\"silent\",state=\"open\"} 1"),
            "{a_metrics}"
        );
        assert_eq!(closed(&mock, tag).await.len(), 2 + 2 * 3);
        // B learns of it within the refresh interval (plus the exchanges: bounded generously).
        let open = "lsg_provider_breaker{provider=\"silent\",state=\"open\"} 1";
        let took = until_metric(b, open, SHARED_REFRESH * 5).await;
        eprintln!(
            "B saw the breaker A opened {} ms after A's third answer ({} ms of polling)",
            opened.elapsed().as_millis(),
            took.as_millis()
        );
        // B now sends nothing to the silent provider: the ledger gains one connection, to
        // the backup.
        let (status, text) = ask_at(b).await;
        assert_eq!(status, 200);
        assert!(
            text.contains("\"type\":\"skipped\"") && text.contains("\"provider\":\"silent\""),
            "the skip is an event: {text}"
        );
        let ledger = scenarios(closed(&mock, tag).await);
        assert_eq!(ledger.len(), 2 + 2 * 3 + 1, "{ledger:?}");
        assert_eq!(ledger.last().map(String::as_str), Some("normal"), "{ledger:?}");
        // Both isolates counted their exchanges with the object, none failed.
        for addr in [a, b] {
            let text = metrics_at(addr).await;
            assert!(
                text.lines()
                    .any(|l| l.starts_with("lsg_guard_shared_syncs_total{outcome=\"ok\"}")),
                "{text}"
            );
            assert!(
                !text.lines().any(|l| l.starts_with("lsg_guard_shared_syncs_total")
                    && !l.contains("outcome=\"ok\"")),
                "{text}"
            );
        }
    }
}

/// Serves with its own breakers when the Durable Object binding is `binding` (a config line) in
/// a variant of the shipped config with `extra` services; counts and logs each exchange that
/// failed as `outcome` (with `None`, there is no exchange at all).
async fn serves_without_the_durable_object(
    tag: &str,
    extra: &str,
    binding: &str,
    outcome: Option<&str>,
) {
    let mock = mock().await;
    let shipped_binding = "(name = \"LSG_GUARD_DO\", durableObjectNamespace = (className = \"GuardBreakers\", serviceName = \"main\")),";
    let worker = variant(
        |config| {
            assert!(config.contains(shipped_binding), "{config}");
            let mut config = config.replacen(shipped_binding, binding, 1).replacen(
                "services = [",
                &format!("services = [{extra}"),
                1,
            );
            if !extra.is_empty() {
                config.push_str(BROKEN_WORKER);
            }
            config
        },
        &[],
        shared_guard_env(&mock, tag),
    )
    .await;
    // Three stalls open the isolate's own breaker; every request is served meanwhile.
    for _ in 0..3 {
        let (status, text) = ask_at(worker.addr()).await;
        assert_eq!(status, 200);
        assert!(text.contains("data: [DONE]"), "{text}");
    }
    let (status, text) = ask_at(worker.addr()).await;
    assert_eq!(status, 200);
    assert!(text.contains("\"type\":\"skipped\""), "{text}");
    assert_eq!(
        scenarios(closed(&mock, tag).await)
            .last()
            .map(String::as_str),
        Some("normal")
    );
    let Some(outcome) = outcome else {
        let text = metrics_at(worker.addr()).await;
        assert!(!text.contains("lsg_guard_shared_syncs_total"), "{text}");
        assert!(
            !worker.lines().iter().any(|l| l.contains("LSG_GUARD_DO")),
            "{:?}",
            worker.lines()
        );
        return;
    };
    let line = format!("lsg_guard_shared_syncs_total{{outcome=\"{outcome}\"}}");
    let started = Instant::now();
    loop {
        let text = metrics_at(worker.addr()).await;
        if text.lines().any(|l| l.starts_with(&line)) {
            assert!(!text.contains("outcome=\"ok\""), "{text}");
            break;
        }
        assert!(started.elapsed() < STEP, "no {line} in\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The operator is told, by kind, with no value in it.
    let logged = worker
        .wait_for_line(|l| l.contains("LSG_GUARD_DO") && l.contains(outcome), STEP)
        .expect("a log line");
    assert!(
        !logged.contains(CLIENT_TOKEN) && !logged.contains("keepalive"),
        "{logged}"
    );
}

workerd_test! {
    async fn a_misconfigured_durable_object_binding_leaves_the_worker_serving() {
        serves_without_the_durable_object(
            "guard-shared-misconfigured",
            "",
            "(name = \"LSG_GUARD_DO\", text = \"not-a-namespace\"),",
            Some("not_a_namespace"),
        )
        .await;
    }
}

/// A worker whose Durable Object class `Down` answers 503 to everything.
const BROKEN_WORKER: &str = r#"
const brokenWorker :Workerd.Worker = (
  modules = [
    (name = "broken.js", esModule = "export default { fetch() { return new Response('no'); } };\nexport class Down { fetch() { return new Response('down', { status: 503 }); } }"),
  ],
  compatibilityDate = "2025-09-01",
  durableObjectNamespaces = [(className = "Down", uniqueKey = "lsg-test-down")],
  durableObjectStorage = (inMemory = void),
);
"#;

workerd_test! {
    async fn a_failing_durable_object_leaves_the_worker_serving() {
        // A namespace whose object answers 503 to everything, in a service of its own (its
        // worker after the guard's in the config, whose first `modules` list the launcher's
        // observer joins).
        let broken = "\n    (name = \"broken\", worker = .brokenWorker),";
        serves_without_the_durable_object(
            "guard-shared-down",
            broken,
            "(name = \"LSG_GUARD_DO\", durableObjectNamespace = (className = \"Down\", serviceName = \"broken\")),",
            Some("status"),
        )
        .await;
    }
}

workerd_test! {
    async fn without_the_durable_object_binding_each_isolate_keeps_its_own_breakers() {
        serves_without_the_durable_object("guard-unshared", "", "", None).await;
    }
}
