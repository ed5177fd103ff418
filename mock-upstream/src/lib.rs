//! # mock-upstream
//!
//! A real HTTP/1.1 server that imitates an OpenAI-compatible (OpenRouter-shaped) streaming chat
//! upstream and misbehaves on purpose: stalls, silent connections, keepalive floods, resets,
//! malformed events, odd line ends, error statuses. It exists to test that streaming clients are
//! hang-proof against such upstreams.
//!
//! Every connection is recorded in a [`Ledger`] (who closed it first and when), readable over
//! HTTP at `GET /_ledger` (with a `wait_closed_ms` long-poll) or in-process with
//! [`Ledger::snapshot`] and [`Ledger::wait_closed`]. Every response carries `Connection: close`,
//! so one request is one TCP connection.
//!
//! Scenarios are selected by path: `POST /scenario/<name>/v1/chat/completions`, or
//! `…/v1/responses` (the OpenAI Responses API) or `…/v1/messages` (Anthropic Messages) for the
//! scenarios that speak those ([`Scenario::api`]). [`SCENARIOS`] is the one table of them (name,
//! description, API, what it sends), which `GET /` lists with their query parameters; the texts
//! they stream are the constants re-exported from `texts`.
//!
//! `controlled` answers at `/scenario/controlled/<id>/v1/chat/completions` with whatever
//! `POST /_control/<id>` last set ([`Control`]: a first-token delay and a [`Mode`]), read afresh
//! by every request.
//!
//! `GET /ws` is a WebSocket echo endpoint whose client can be dropped on request (the text
//! message `drop`, or `?drop_after_ms=N`), for clients that must notice a dead link.

#![warn(missing_docs)]

mod app;
mod conn;
mod control;
mod ledger;
mod scenarios;
mod texts;
mod ws;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_service::Service;

pub use app::{app, scenario_of};
pub use control::{Control, Mode};
pub use ledger::{now_ms, ClosedBy, ConnectionRecord, Filter, Ledger, WaitOutcome, MAX_RECORDS};
pub use scenarios::{
    continuation_of, longest_prefix_in, pieces, prompt_tokens, reasoning_pieces, scenario, Api,
    Params, Scenario, UsagePolicy, MIN_GIVEN_CHARS, SCENARIOS,
};
pub use texts::*;
pub use ws::accept_key;

use app::ConnHandle;
use conn::{ConnShared, RecordingIo};

/// Resolves `host` (an IP address or `localhost`) to a loopback address, refusing anything else.
pub fn loopback_ip(host: &str) -> io::Result<IpAddr> {
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        let trimmed = host.trim_start_matches('[').trim_end_matches(']');
        trimmed.parse::<IpAddr>().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not an IP address: {host}"),
            )
        })?
    };
    if !ip.is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to listen on non-loopback address {ip}"),
        ));
    }
    Ok(ip)
}

/// Serves the mock on `listener` until the process ends, recording into `ledger`.
pub async fn serve(listener: TcpListener, ledger: Ledger) {
    serve_with_shutdown(listener, ledger, std::future::pending()).await
}

/// Serves the mock on `listener` until `signal` resolves; then stops accepting and drops every
/// open connection (recorded as closed by the server).
pub async fn serve_with_shutdown(
    listener: TcpListener,
    ledger: Ledger,
    signal: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let router = app(ledger.clone());
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(serve_connection(
                        stream,
                        peer,
                        ledger.clone(),
                        router.clone(),
                        stop_rx.clone(),
                    ));
                }
                // Out of file descriptors and the like: back off briefly instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    let _ = stop_tx.send(true);
}

/// Serves one accepted connection (one request) and records its end.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    ledger: Ledger,
    router: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok();
    let id = ledger.open(peer.to_string());
    let shared = Arc::new(ConnShared::new(id, ledger, local, false));
    let io = TokioIo::new(RecordingIo::new(stream, shared.clone()));
    let handle = ConnHandle(shared.clone());
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(handle.clone());
            let mut router = router.clone();
            async move { router.call(req).await }
        });
    // Every response but a WebSocket's `101` says `Connection: close`, which ends the
    // connection after it; keep-alive stays on only so that hyper does not add `close` to the
    // `101`'s `Connection: Upgrade`.
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .with_upgrades();
    let finished = tokio::select! {
        _ = conn => true,
        // Stop requested, or the server future was dropped.
        _ = stop.wait_for(|s| *s) => false,
    };
    if finished && shared.is_upgraded() {
        // The socket now belongs to the WebSocket session, which records its end; it stops when
        // the connection is marked closed.
        tokio::select! {
            _ = shared.wait_closed() => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    shared.mark_closed(ClosedBy::Server, false);
}

/// A server started by [`spawn`]; stops when dropped or on [`Running::shutdown`].
#[derive(Debug)]
pub struct Running {
    /// The bound address (with the real port when port 0 was asked for).
    pub addr: SocketAddr,
    /// The server's connection ledger.
    pub ledger: Ledger,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// `http://<addr>` of the server.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drops open connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds `addr` (a loopback `host:port`; port 0 picks a free one) and serves the mock on a
/// background task of the current Tokio runtime.
pub async fn spawn(addr: &str) -> io::Result<Running> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "expected host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad port"))?;
    let ip = loopback_ip(host)?;
    let listener = TcpListener::bind(SocketAddr::new(ip, port)).await?;
    let addr = listener.local_addr()?;
    let ledger = Ledger::new();
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let signal = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    let task = tokio::spawn(serve_with_shutdown(listener, ledger.clone(), signal));
    Ok(Running {
        addr,
        ledger,
        stop: Some(stop_tx),
        task: Some(task),
    })
}
