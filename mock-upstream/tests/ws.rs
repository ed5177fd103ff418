//! `GET /ws`: the WebSocket echo endpoint, driven over a real socket by a raw client that writes
//! and reads frames byte by byte, so the tests see exactly what the server sends (or does not).

mod common;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use mock_upstream::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The key of RFC 6455's example handshake, and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A frame the server sent.
#[derive(Debug, PartialEq)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// A raw WebSocket client connection.
struct Ws {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// How the connection ended when the next frame was expected.
#[derive(Debug, PartialEq)]
enum Ended {
    /// A clean EOF (FIN).
    Eof,
    /// A socket error (e.g. `ConnectionReset`).
    Error(io::ErrorKind),
}

impl Ws {
    /// Connects and completes the handshake for `target`, checking the 101 answer.
    async fn connect(addr: SocketAddr, target: &str) -> (Ws, Head) {
        let mut c = Client::send_with(
            addr,
            "GET",
            target,
            &[
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", KEY),
                ("Sec-WebSocket-Version", "13"),
                ("Origin", "http://127.0.0.1"),
            ],
            "",
        )
        .await;
        let head = c.head().await;
        assert_eq!(head.status, 101, "{head:?}");
        assert_eq!(head.get("sec-websocket-accept"), Some(ACCEPT), "{head:?}");
        assert!(
            head.get("upgrade")
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
            "{head:?}"
        );
        // Browsers require the `upgrade` token in `Connection`; `close` must not be there.
        let connection = head.get("connection").unwrap_or("").to_ascii_lowercase();
        assert!(connection.contains("upgrade"), "{head:?}");
        assert!(!connection.contains("close"), "{head:?}");
        (
            Ws {
                stream: c.stream,
                buf: Vec::new(),
            },
            head,
        )
    }

    /// Sends one masked frame.
    async fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let bytes = client_frame(fin, opcode, payload, [0x12, 0x34, 0x56, 0x78]);
        self.stream.write_all(&bytes).await.expect("write frame");
    }

    async fn send_text(&mut self, text: &str) {
        self.send(true, 0x1, text.as_bytes()).await;
    }

    /// The next frame, or how the connection ended. Fails the test after [`READ_DEADLINE`].
    async fn next(&mut self) -> Result<Frame, Ended> {
        loop {
            if self.buf.len() >= 2 {
                assert_eq!(self.buf[1] & 0x80, 0, "server frames must not be masked");
                let (len, at) = match self.buf[1] & 0x7F {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (n as usize, 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let frame = Frame {
                        fin: self.buf[0] & 0x80 != 0,
                        opcode: self.buf[0] & 0x0F,
                        payload: self.buf[at..at + len].to_vec(),
                    };
                    self.buf.drain(..at + len);
                    return Ok(frame);
                }
            }
            let mut tmp = [0u8; 8192];
            let r = tokio::time::timeout(READ_DEADLINE, self.stream.read(&mut tmp))
                .await
                .expect("read timed out");
            match r {
                Ok(0) => return Err(Ended::Eof),
                Ok(n) => self.buf.extend_from_slice(&tmp[..n]),
                Err(e) => return Err(Ended::Error(e.kind())),
            }
        }
    }

    /// The next frame, which must be a text frame; returns its text.
    async fn text(&mut self) -> String {
        let f = self.next().await.expect("a frame");
        assert_eq!((f.fin, f.opcode), (true, 0x1), "{f:?}");
        String::from_utf8(f.payload).expect("utf-8")
    }
}

/// A masked client frame.
fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The one record tagged `tag`, once closed.
async fn ws_record(server: &Running, tag: &str) -> ConnectionRecord {
    let rec = closed_record(&server.ledger, tag).await;
    assert_eq!(rec.method, "GET");
    assert_eq!(rec.path, "/ws");
    assert_eq!(rec.status, Some(101));
    assert_eq!(rec.scenario, None);
    assert!(rec.response_started_at_ms.is_some(), "{rec:?}");
    rec
}

#[tokio::test]
async fn echoes_text_binary_fragments_and_pings_then_the_client_closes() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (mut ws, _) = Ws::connect(server.addr, "/ws?tag=echo").await;
    request_seen(&server.ledger, "echo").await;
    assert_eq!(
        server.ledger.active_scenarios(),
        1,
        "the session counts as active"
    );

    ws.send_text("hello").await;
    assert_eq!(ws.text().await, "hello");
    ws.send_text("Grüße 🎙️").await;
    assert_eq!(ws.text().await, "Grüße 🎙️");

    let big = vec![7u8; 70_000];
    ws.send(true, 0x2, &big).await;
    let f = ws.next().await.unwrap();
    assert_eq!((f.fin, f.opcode, f.payload.len()), (true, 0x2, big.len()));
    assert_eq!(f.payload, big);

    // A fragmented text message with a ping between its fragments.
    ws.send(false, 0x1, b"frag").await;
    ws.send(true, 0x9, b"p1").await;
    ws.send(true, 0x0, b"mented").await;
    let pong = ws.next().await.unwrap();
    assert_eq!(
        pong,
        Frame {
            fin: true,
            opcode: 0xA,
            payload: b"p1".to_vec()
        }
    );
    assert_eq!(ws.text().await, "fragmented");

    // `drop` and `close` are commands only as whole messages.
    ws.send_text("dropped?").await;
    assert_eq!(ws.text().await, "dropped?");

    // The client closes: the server answers with the same code, then ends the connection.
    assert!(server.ledger.query(&Filter::tag("echo"))[0]
        .closed_at_ms
        .is_none());
    let sent_at = now_ms();
    ws.send(true, 0x8, &4001u16.to_be_bytes()).await;
    let reply = ws.next().await.unwrap();
    assert_eq!(reply.opcode, 0x8);
    assert_eq!(reply.payload, 4001u16.to_be_bytes());
    assert_eq!(ws.next().await, Err(Ended::Eof));
    let rec = ws_record(&server, "echo").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Client), "{rec:?}");
    let latency = rec.closed_at_ms.unwrap() - sent_at;
    println!("client close frame recorded {latency:.3} ms after it was sent");
    assert!(latency < CLOSE_LATENCY_MS);
    no_active_scenarios(&server.ledger).await;
}

#[tokio::test]
async fn drop_ends_the_connection_without_a_close_frame() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (mut ws, _) = Ws::connect(server.addr, "/ws?tag=drop").await;
    ws.send_text("before").await;
    assert_eq!(ws.text().await, "before");
    let sent_at = now_ms();
    ws.send_text("drop").await;
    // No close frame and no echo: the next read sees the connection end (reset or EOF).
    let end = ws.next().await;
    let seen_at = now_ms();
    assert!(
        matches!(end, Err(Ended::Eof) | Err(Ended::Error(_))),
        "expected the connection to end, got {end:?}"
    );
    println!(
        "drop: client saw {end:?} {:.3} ms after sending",
        seen_at - sent_at
    );
    let rec = ws_record(&server, "drop").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Server), "{rec:?}");
    assert!(
        rec.closed_at_ms.unwrap() - sent_at < CLOSE_LATENCY_MS,
        "{rec:?}"
    );
    no_active_scenarios(&server.ledger).await;
}

#[tokio::test]
async fn drop_after_ms_drops_by_itself() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (mut ws, _) = Ws::connect(server.addr, "/ws?tag=timed&drop_after_ms=150").await;
    // Still echoing before the deadline.
    ws.send_text("still there").await;
    assert_eq!(ws.text().await, "still there");
    let end = ws.next().await;
    assert!(end.is_err(), "{end:?}");
    let rec = ws_record(&server, "timed").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Server), "{rec:?}");
    let lived = rec.closed_at_ms.unwrap() - rec.response_started_at_ms.unwrap();
    println!("drop_after_ms=150: dropped {lived:.3} ms after the upgrade");
    assert!((145.0..1000.0).contains(&lived), "lived {lived} ms");
}

#[tokio::test]
async fn close_sends_a_normal_close_frame() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (mut ws, _) = Ws::connect(server.addr, "/ws?tag=close").await;
    ws.send_text("close").await;
    let f = ws.next().await.unwrap();
    assert_eq!((f.fin, f.opcode), (true, 0x8), "{f:?}");
    assert_eq!(f.payload, 1000u16.to_be_bytes());
    // The server initiated the close; it is recorded as the server's at once.
    let rec = ws_record(&server, "close").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Server), "{rec:?}");
    // The client answers; the server then ends the TCP connection cleanly.
    ws.send(true, 0x8, &1000u16.to_be_bytes()).await;
    assert_eq!(ws.next().await, Err(Ended::Eof));
    no_active_scenarios(&server.ledger).await;
}

#[tokio::test]
async fn a_client_that_just_leaves_is_recorded_as_the_client() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (mut ws, _) = Ws::connect(server.addr, "/ws?tag=gone").await;
    ws.send_text("x").await;
    assert_eq!(ws.text().await, "x");
    let dropped = now_ms();
    drop(ws);
    let rec = ws_record(&server, "gone").await;
    assert_client_closed(&rec, dropped, "ws client left without a close frame");
    no_active_scenarios(&server.ledger).await;
}

#[tokio::test]
async fn protocol_errors_close_with_1002() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (mut ws, _) = Ws::connect(server.addr, "/ws?tag=unmasked").await;
    ws.stream
        .write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .unwrap();
    let f = ws.next().await.unwrap();
    assert_eq!(
        (f.opcode, f.payload.as_slice()),
        (0x8, &1002u16.to_be_bytes()[..])
    );
    ws.send(true, 0x8, &1002u16.to_be_bytes()).await;
    assert_eq!(ws.next().await, Err(Ended::Eof));
    let rec = ws_record(&server, "unmasked").await;
    assert_eq!(rec.closed_by, Some(ClosedBy::Server));
}

#[tokio::test]
async fn shutdown_ends_open_websockets() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let (mut ws, _) = Ws::connect(server.addr, "/ws?tag=shut").await;
    request_seen(&server.ledger, "shut").await;
    let ledger = server.ledger.clone();
    server.shutdown().await;
    assert!(ws.next().await.is_err());
    let recs = ledger.wait_closed("shut", Duration::from_secs(5)).await;
    assert_eq!(recs[0].closed_by, Some(ClosedBy::Server), "{recs:?}");
}

#[tokio::test]
async fn non_websocket_requests_are_refused() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    // A plain GET: 426 with `Upgrade: websocket`, and the usual headers.
    let mut c = Client::send_with(server.addr, "GET", "/ws?tag=plain", &[], "").await;
    let head = c.head().await;
    head.assert_common();
    assert_eq!(head.status, 426);
    assert_eq!(head.get("upgrade"), Some("websocket"));
    // A wrong version.
    let mut c = Client::send_with(
        server.addr,
        "GET",
        "/ws?tag=v8",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "keep-alive, Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "8"),
        ],
        "",
    )
    .await;
    assert_eq!(c.head().await.status, 426);
    // A bad parameter.
    let mut c = Client::send_with(
        server.addr,
        "GET",
        "/ws?drop_after_ms=soon",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", KEY),
            ("Sec-WebSocket-Version", "13"),
        ],
        "",
    )
    .await;
    assert_eq!(c.head().await.status, 400);
    // Another method.
    let mut c = Client::send(server.addr, "POST", "/ws", "{}").await;
    let head = c.head().await;
    assert_eq!(head.status, 405);
    assert_eq!(head.get("allow"), Some("GET"));
    let rec = closed_record(&server.ledger, "plain").await;
    assert_eq!((rec.path.as_str(), rec.status), ("/ws", Some(426)));
    assert_eq!(accept_key(KEY), ACCEPT);
}
