//! A minimal raw HTTP/1.1 client over `tokio::net::TcpStream`, so tests see the exact bytes,
//! chunk boundaries and socket errors.
#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mock_upstream::{ConnectionRecord, Ledger};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single read may take before the test fails.
pub const READ_DEADLINE: Duration = Duration::from_secs(5);
/// The secret sent in test requests' Authorization header (must never reach the ledger).
pub const SECRET: &str = "sk-or-v1-test-secret-0123456789";
/// Upper bound for the delay between the client's close and the ledger's record of it.
pub const CLOSE_LATENCY_MS: f64 = 100.0;

/// A chat request body as a browser client would send it.
pub fn chat_body(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"stream":true}}"#)
}

/// The parsed status line and headers of a response.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The value of header `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the headers every response must carry.
    pub fn assert_common(&self) {
        assert_eq!(self.get("connection"), Some("close"), "{self:?}");
        assert_eq!(
            self.get("access-control-allow-origin"),
            Some("*"),
            "{self:?}"
        );
    }
}

/// One raw client connection.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    eof: bool,
}

impl Client {
    /// Connects and writes one request (with an Authorization header carrying [`SECRET`]).
    pub async fn send(addr: SocketAddr, method: &str, target: &str, body: &str) -> Client {
        Self::send_with(
            addr,
            method,
            target,
            &[
                ("Authorization", &format!("Bearer {SECRET}")),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .await
    }

    /// Connects and writes one request with exactly these extra headers.
    pub async fn send_with(
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Client {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        stream
            .write_all(req.as_bytes())
            .await
            .expect("write request");
        Client {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Reads more bytes; Ok(0) at EOF. Fails the test if nothing arrives within [`READ_DEADLINE`].
    async fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 16384];
        let n = tokio::time::timeout(READ_DEADLINE, self.stream.read(&mut tmp))
            .await
            .expect("read timed out")?;
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Reads the response head.
    pub async fn head(&mut self) -> Head {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let text = String::from_utf8(self.buf[..end].to_vec()).expect("utf-8 head");
                self.buf.drain(..end + 4);
                let mut lines = text.split("\r\n");
                let status_line = lines.next().unwrap_or_default();
                let status = status_line
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                return Head { status, headers };
            }
            let n = self.fill().await.expect("read head");
            assert!(n > 0, "EOF before the response head");
        }
    }

    /// The SSE events in the next `n` HTTP chunks (each must come).
    pub async fn sse_chunks(&mut self, n: usize) -> Vec<Sse> {
        let mut chunks = Vec::new();
        for _ in 0..n {
            chunks.push(self.chunk().await.unwrap().expect("a chunk, not the end"));
        }
        parse_sse(&String::from_utf8(chunks.concat()).unwrap())
    }

    /// Reads the next HTTP chunk: `Ok(Some(data))`, `Ok(None)` at the terminating chunk, or the
    /// socket error / `UnexpectedEof` if the connection ends first.
    pub async fn chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(line_end) = find(&self.buf, b"\r\n") {
                let size_text = std::str::from_utf8(&self.buf[..line_end]).expect("chunk size");
                let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                    .unwrap_or_else(|_| panic!("bad chunk size line {size_text:?}"));
                let need = line_end + 2 + size + 2;
                if self.buf.len() >= need {
                    assert_eq!(
                        &self.buf[need - 2..need],
                        b"\r\n",
                        "chunk not CRLF-terminated"
                    );
                    let data = self.buf[line_end + 2..line_end + 2 + size].to_vec();
                    self.buf.drain(..need);
                    return Ok(if size == 0 { None } else { Some(data) });
                }
            }
            if self.eof {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "EOF mid-body"));
            }
            self.fill().await?;
        }
    }

    /// Reads chunks up to and including the terminating chunk.
    pub async fn all_chunks(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await.expect("chunk") {
            out.push(c);
        }
        out
    }

    /// Reads a `Content-Length` body.
    pub async fn fixed_body(&mut self, head: &Head) -> Vec<u8> {
        let len: usize = head
            .get("content-length")
            .expect("content-length")
            .parse()
            .unwrap();
        while self.buf.len() < len {
            let n = self.fill().await.expect("read body");
            assert!(n > 0, "EOF inside body");
        }
        self.buf.drain(..len).collect()
    }

    /// Reads until the server closes the connection; returns the error kind if it was not a
    /// clean EOF.
    pub async fn read_until_closed(&mut self) -> Result<(), io::ErrorKind> {
        while !self.eof {
            self.fill().await.map_err(|e| e.kind())?;
        }
        Ok(())
    }

    /// Asserts that nothing arrives on the connection for `ms` milliseconds (a deadline, not a
    /// synchronisation sleep: the server must stay silent the whole time).
    pub async fn assert_silent_for(&mut self, ms: u64) {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", self.buf);
        let mut tmp = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(ms), self.stream.read(&mut tmp)).await {
            Err(_) => {}
            Ok(r) => panic!("expected silence, got {:?}", r.map(|n| tmp[..n].to_vec())),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits an LF-delimited event stream into events (without their blank-line terminator).
pub fn split_events(text: &str, delim: &str) -> Vec<String> {
    text.split(delim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

/// The JSON payload of a `data: ` event (`None` for comments and `[DONE]`).
pub fn payload(event: &str) -> Option<Value> {
    let data = event
        .strip_prefix("data: ")
        .or_else(|| event.strip_prefix("data:"))?;
    if data == "[DONE]" {
        return None;
    }
    Some(serde_json::from_str(data).unwrap_or_else(|e| panic!("bad JSON {data:?}: {e}")))
}

/// Concatenated `choices[0].delta.content` of all payloads.
pub fn content_of(payloads: &[Value]) -> String {
    payloads
        .iter()
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Waits (event-driven) until the connection tagged `tag` is closed and returns its record.
pub async fn closed_record(ledger: &Ledger, tag: &str) -> ConnectionRecord {
    let recs = ledger.wait_closed(tag, Duration::from_secs(5)).await;
    assert_eq!(recs.len(), 1, "one connection tagged {tag}: {recs:?}");
    assert!(
        recs[0].is_closed(),
        "connection {tag} still open: {:?}",
        recs[0]
    );
    recs[0].clone()
}

/// Waits (event-driven) until the request tagged `tag` has been received by the server.
pub async fn request_seen(ledger: &Ledger, tag: &str) {
    let seen = ledger
        .wait_for(Duration::from_secs(5), |l| {
            l.query(&mock_upstream::Filter::tag(tag))
                .iter()
                .any(|r| !r.method.is_empty())
        })
        .await;
    assert!(seen, "request {tag} never reached the server");
}

/// Waits until no scenario task is running any more.
pub async fn no_active_scenarios(ledger: &Ledger) {
    let idle = ledger
        .wait_for(Duration::from_secs(5), |l| l.active_scenarios() == 0)
        .await;
    assert!(
        idle,
        "scenario tasks still running: {}",
        ledger.active_scenarios()
    );
}

/// Drops `client` and returns the time of the drop (Unix epoch ms).
pub fn drop_client(client: Client) -> f64 {
    let t = mock_upstream::now_ms();
    drop(client);
    t
}

/// Asserts the record shows the client leaving within [`CLOSE_LATENCY_MS`] of `dropped_at`, and
/// returns the measured latency.
pub fn assert_client_closed(rec: &ConnectionRecord, dropped_at: f64, what: &str) -> f64 {
    assert_eq!(
        rec.closed_by,
        Some(mock_upstream::ClosedBy::Client),
        "{what}: {rec:?}"
    );
    let latency = rec.closed_at_ms.unwrap() - dropped_at;
    println!("{what}: client close noticed {latency:.3} ms after the drop");
    assert!(
        latency < CLOSE_LATENCY_MS,
        "{what}: close noticed after {latency:.3} ms"
    );
    latency
}

/// One server-sent event as an SDK's parser sees it: its `event:` name (if any) and its `data:`
/// lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sse {
    pub event: Option<String>,
    pub data: String,
}

impl Sse {
    /// The data as JSON; fails the test if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event {:?}: bad JSON {:?}: {e}", self.event, self.data))
    }
}

/// Parses a whole LF-delimited event stream the way the SSE standard says: fields per line,
/// events dispatched at blank lines, comments skipped, events without data dropped.
pub fn parse_sse(text: &str) -> Vec<Sse> {
    let mut out = Vec::new();
    let (mut event, mut data): (Option<String>, Vec<String>) = (None, Vec::new());
    for line in text.split('\n') {
        if line.is_empty() {
            if !data.is_empty() {
                out.push(Sse {
                    event: event.take(),
                    data: data.join("\n"),
                });
            }
            event = None;
            data.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_string()),
            "data" => data.push(value.to_string()),
            _ => {}
        }
    }
    assert!(
        data.is_empty() && event.is_none(),
        "the stream ends inside an event"
    );
    out
}

/// Sends `body` to `target` and reads the whole response: head and body bytes (chunked or not).
pub async fn post_all(addr: SocketAddr, target: &str, body: &str) -> (Head, Vec<u8>) {
    let mut c = Client::send(addr, "POST", target, body).await;
    let head = c.head().await;
    head.assert_common();
    let bytes = if head.get("transfer-encoding") == Some("chunked") {
        c.all_chunks().await.concat()
    } else {
        c.fixed_body(&head).await
    };
    assert_eq!(c.read_until_closed().await, Ok(()));
    (head, bytes)
}

/// The keys of a JSON object, sorted.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// `names` sorted, as owned strings (to compare with [`keys`]).
pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

/// The `type` of each event's JSON data, in order.
pub fn types(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().map(|v| v["type"].as_str().unwrap()).collect()
}

/// Sends `POST target` with `body` and asserts that the response head says 200.
pub async fn open_ok(addr: SocketAddr, target: &str, body: &str) -> Client {
    let mut c = Client::send(addr, "POST", target, body).await;
    assert_eq!(c.head().await.status, 200);
    c
}

/// Drops `client`, waits for the ledger to record the connection tagged `tag` closed, asserts
/// that the client closed it in time ([`assert_client_closed`]) and returns the record.
pub async fn client_leaves(
    ledger: &Ledger,
    client: Client,
    tag: &str,
    what: &str,
) -> ConnectionRecord {
    let dropped = drop_client(client);
    let rec = closed_record(ledger, tag).await;
    assert_client_closed(&rec, dropped, what);
    rec
}

/// [`client_leaves`], then waits until the scenario's task has ended too.
pub async fn client_leaves_and_scenario_ends(
    ledger: &Ledger,
    client: Client,
    tag: &str,
    what: &str,
) {
    client_leaves(ledger, client, tag, what).await;
    no_active_scenarios(ledger).await;
}

/// The JSON payload of one chunk that carries one whole `data: ` event (see [`payload`]).
pub fn chunk_payload(chunk: &[u8]) -> Option<Value> {
    payload(std::str::from_utf8(chunk).unwrap().trim_end())
}
