//! `GET /ws`: a minimal WebSocket (RFC 6455) echo endpoint that can drop its client on request,
//! to test clients that watch a WebSocket (a voice link, a signalling channel) and must react when
//! it goes away.
//!
//! - Text and binary messages are echoed; pings are answered with pongs.
//! - The text message `drop` ends the TCP connection at once from the server side, without a
//!   close frame (a TCP reset, as after a network failure); the ledger says `closed_by: "server"`.
//! - The text message `close` starts a proper close handshake (code 1000); the ledger says
//!   `closed_by: "server"`.
//! - `?drop_after_ms=N` drops the connection like `drop` after N ms.
//! - A client that sends a close frame, or just leaves, is recorded as `closed_by: "client"`.
//!
//! Only what a browser client needs is implemented (no extensions, no subprotocols); the
//! handshake's SHA-1 and Base64 are written out here to keep the crate's dependencies small.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::conn::ConnShared;
use crate::ledger::{ActiveGuard, ClosedBy};

/// The GUID that RFC 6455 appends to the client's key.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Largest message (after reassembly of fragments) accepted; bigger ones close with 1009.
pub(crate) const MAX_MESSAGE: usize = 1024 * 1024;
/// How long the server waits for the client's close frame after sending its own.
const CLOSE_REPLY_WAIT: Duration = Duration::from_millis(1000);

/// Frame opcodes.
const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Close codes used by the server.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_TOO_BIG: u16 = 1009;

/// Query parameters of `/ws`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WsParams {
    /// Drop the connection (like the `drop` message) this many ms after the upgrade.
    pub drop_after_ms: Option<u64>,
}

impl WsParams {
    /// Parses the query pairs; unknown keys are ignored (e.g. `tag`).
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut p = WsParams::default();
        for (k, v) in pairs {
            if k == "drop_after_ms" {
                let ms = v
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| format!("bad value for drop_after_ms: {v:?}"))?;
                p.drop_after_ms = Some(ms);
            }
        }
        Ok(p)
    }
}

/// Why a handshake request is refused: (status, message).
pub(crate) fn check_handshake(
    method: &Method,
    headers: &HeaderMap,
) -> Result<String, (u16, String)> {
    if method != Method::GET {
        return Err((405, "method not allowed".into()));
    }
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .unwrap_or("")
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    };
    if !has_token(header::UPGRADE, "websocket") || !has_token(header::CONNECTION, "upgrade") {
        return Err((
            426,
            "this endpoint speaks WebSocket only (Upgrade: websocket)".into(),
        ));
    }
    match headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
    {
        Some(b"13") => {}
        _ => return Err((426, "Sec-WebSocket-Version must be 13".into())),
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() {
        return Err((400, "missing Sec-WebSocket-Key".into()));
    }
    Ok(accept_key(key))
}

/// The `101 Switching Protocols` answer for a handshake whose accept value is `accept`.
pub(crate) fn switching_response(accept: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(accept).expect("base64 is a valid header value"),
        )
        .body(Body::empty())
        .expect("valid response")
}

/// Runs the WebSocket session once hyper hands over the upgraded connection.
pub(crate) async fn run(
    on_upgrade: OnUpgrade,
    params: WsParams,
    shared: Arc<ConnShared>,
    active: ActiveGuard,
) {
    let Ok(upgraded) = on_upgrade.await else {
        // The 101 never went out (client gone, server stopping): the socket task records it.
        return;
    };
    let io = TokioIo::new(upgraded);
    session(io, params, &shared).await;
    drop(active);
}

/// What ended a session, decided while the connection is still held.
enum End {
    /// Drop the socket without a close frame, as a network failure would (TCP reset).
    Abrupt,
    /// Close the socket normally (after a finished close handshake, or when the peer is gone).
    Clean,
}

/// Echoes messages until the client leaves, asks to be dropped, or a close handshake finishes.
async fn session<S>(io: S, params: WsParams, shared: &ConnShared)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut reader = FrameReader::default();
    let drop_timer = async {
        match params.drop_after_ms {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(drop_timer);
    // A message being reassembled from fragments: (opcode, bytes).
    let mut partial: Option<(u8, Vec<u8>)> = None;
    let end = loop {
        let frame = tokio::select! {
            f = reader.next(&mut rd) => f,
            _ = &mut drop_timer => break End::Abrupt,
            // The server is stopping (or the socket layer saw the client leave).
            _ = shared.wait_closed() => break End::Clean,
        };
        let frame = match frame {
            Ok(Some(f)) => f,
            // EOF or a socket error: the socket layer has recorded who left.
            Ok(None) | Err(ReadError::Io) => break End::Clean,
            Err(ReadError::Protocol(code)) => {
                break close_handshake(&mut rd, &mut wr, &mut reader, shared, code).await;
            }
        };
        match frame.opcode {
            OP_PING => {
                if write_frame(&mut wr, OP_PONG, &frame.payload).await.is_err() {
                    break End::Clean;
                }
            }
            OP_PONG => {}
            OP_CLOSE => {
                // The client started the close handshake: answer it with its own code, then close.
                shared.mark_closed(ClosedBy::Client, false);
                let reply = if frame.payload.len() >= 2 {
                    frame.payload[..2].to_vec()
                } else {
                    Vec::new()
                };
                let _ = write_frame(&mut wr, OP_CLOSE, &reply).await;
                break End::Clean;
            }
            OP_TEXT | OP_BINARY | OP_CONTINUATION => {
                let message = match (frame.opcode, partial.take()) {
                    (OP_CONTINUATION, Some((op, mut bytes))) => {
                        bytes.extend_from_slice(&frame.payload);
                        (op, bytes)
                    }
                    (OP_CONTINUATION, None) | (_, Some(_)) => {
                        break close_handshake(
                            &mut rd,
                            &mut wr,
                            &mut reader,
                            shared,
                            CLOSE_PROTOCOL,
                        )
                        .await;
                    }
                    (op, None) => (op, frame.payload),
                };
                if message.1.len() > MAX_MESSAGE {
                    break close_handshake(&mut rd, &mut wr, &mut reader, shared, CLOSE_TOO_BIG)
                        .await;
                }
                if !frame.fin {
                    partial = Some(message);
                    continue;
                }
                let (op, bytes) = message;
                if op == OP_TEXT {
                    let Ok(text) = std::str::from_utf8(&bytes) else {
                        break close_handshake(
                            &mut rd,
                            &mut wr,
                            &mut reader,
                            shared,
                            CLOSE_INVALID_DATA,
                        )
                        .await;
                    };
                    match text {
                        "drop" => break End::Abrupt,
                        "close" => {
                            break close_handshake(
                                &mut rd,
                                &mut wr,
                                &mut reader,
                                shared,
                                CLOSE_NORMAL,
                            )
                            .await;
                        }
                        _ => {}
                    }
                }
                if write_frame(&mut wr, op, &bytes).await.is_err() {
                    break End::Clean;
                }
            }
            _ => {
                break close_handshake(&mut rd, &mut wr, &mut reader, shared, CLOSE_PROTOCOL).await
            }
        }
    };
    match end {
        End::Abrupt => {
            // Recorded now (the socket is dropped right below, with SO_LINGER 0: a reset).
            shared.arm_reset();
            shared.mark_closed(ClosedBy::Server, false);
        }
        End::Clean => {
            let _ = wr.shutdown().await;
        }
    }
    drop(rd);
    drop(wr);
}

/// Starts a close handshake from the server side: sends a close frame with `code`, then waits
/// (briefly) for the client's close frame before closing the socket.
async fn close_handshake<R, W>(
    rd: &mut R,
    wr: &mut W,
    reader: &mut FrameReader,
    shared: &ConnShared,
    code: u16,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    shared.mark_closed(ClosedBy::Server, false);
    if write_frame(wr, OP_CLOSE, &code.to_be_bytes())
        .await
        .is_err()
    {
        return End::Clean;
    }
    let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, async {
        loop {
            match reader.next(rd).await {
                Ok(Some(f)) if f.opcode == OP_CLOSE => break,
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
    })
    .await;
    End::Clean
}

/// One frame as received (payload unmasked).
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// Why no frame could be read.
enum ReadError {
    /// The socket failed.
    Io,
    /// The peer broke the protocol; close with this code.
    Protocol(u16),
}

/// Reads client frames from a byte stream.
#[derive(Default)]
struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    /// The next frame; `Ok(None)` at EOF.
    async fn next<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> Result<Option<Frame>, ReadError> {
        loop {
            match parse_frame(&self.buf)? {
                Some((frame, used)) => {
                    self.buf.drain(..used);
                    return Ok(Some(frame));
                }
                None => {
                    let mut tmp = [0u8; 8192];
                    let n = rd.read(&mut tmp).await.map_err(|_| ReadError::Io)?;
                    if n == 0 {
                        return Ok(None);
                    }
                    self.buf.extend_from_slice(&tmp[..n]);
                }
            }
        }
    }
}

/// Parses one client frame from the start of `buf`: the frame and the bytes it used, or `None`
/// when more bytes are needed.
fn parse_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, ReadError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    if buf[0] & 0x70 != 0 {
        // No extension was negotiated, so the reserved bits must be clear.
        return Err(ReadError::Protocol(CLOSE_PROTOCOL));
    }
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    if !masked {
        // Clients must mask every frame.
        return Err(ReadError::Protocol(CLOSE_PROTOCOL));
    }
    let (len, mut at) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (u64::from(n), 2),
    };
    let control = opcode & 0x8 != 0;
    if control && (!fin || len > 125) {
        return Err(ReadError::Protocol(CLOSE_PROTOCOL));
    }
    if len > MAX_MESSAGE as u64 {
        return Err(ReadError::Protocol(CLOSE_TOO_BIG));
    }
    let len = len as usize;
    if buf.len() < at + 4 + len {
        return Ok(None);
    }
    let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    at += 4;
    let payload = buf[at..at + len]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    Ok(Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        at + len,
    )))
}

/// Writes one unfragmented, unmasked server frame.
async fn write_frame<W: AsyncWrite + Unpin>(
    wr: &mut W,
    opcode: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    wr.write_all(&out).await?;
    wr.flush().await
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: Base64 of the SHA-1 of the key
/// followed by the RFC 6455 GUID.
pub fn accept_key(key: &str) -> String {
    let mut input = key.as_bytes().to_vec();
    input.extend_from_slice(GUID.as_bytes());
    base64(&sha1(&input))
}

/// SHA-1 (FIPS 180-4) of `data`; used only for the handshake, where it is not a security measure.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard Base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3F) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_matches_the_standard_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 1000])),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output, "{input:?}");
        }
    }

    #[test]
    fn accept_key_matches_rfc_6455() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_parse_only_when_complete_and_masked() {
        // "Hi" masked with 37 fa 21 3d (RFC 6455 §5.7 uses "Hello"; this is the same scheme).
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut bytes = vec![0x81, 0x82];
        bytes.extend_from_slice(&mask);
        bytes.extend(b"Hi".iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        for cut in 0..bytes.len() {
            assert!(matches!(parse_frame(&bytes[..cut]), Ok(None)), "cut {cut}");
        }
        let Ok(Some((frame, used))) = parse_frame(&bytes) else {
            panic!("complete frame not parsed");
        };
        assert_eq!(
            (frame.fin, frame.opcode, used),
            (true, OP_TEXT, bytes.len())
        );
        assert_eq!(frame.payload, b"Hi");
        // Unmasked client frames are a protocol error.
        assert!(matches!(
            parse_frame(&[0x81, 0x02, b'H', b'i']),
            Err(ReadError::Protocol(CLOSE_PROTOCOL))
        ));
        // Control frames must be short and final.
        assert!(matches!(
            parse_frame(&[0x09, 0x80, 0, 0, 0, 0]),
            Err(ReadError::Protocol(CLOSE_PROTOCOL))
        ));
    }
}
