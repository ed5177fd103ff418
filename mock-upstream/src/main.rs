//! `mock-upstream [--host 127.0.0.1] [--port 0]`: runs the misbehaving mock upstream until SIGINT
//! or SIGTERM, after printing `listening on http://<host>:<port>` once it accepts connections.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use mock_upstream::{loopback_ip, serve_with_shutdown, Ledger};
use tokio::net::TcpListener;

const USAGE: &str = "usage: mock-upstream [--host <loopback address>] [--port <port>]\n\
                     defaults: --host 127.0.0.1 --port 0 (a free port); GET / lists the scenarios";

/// Command-line options.
struct Options {
    host: String,
    port: u16,
}

/// Parses `--host`/`--port` (also as `--key=value`); `Err("")` asks for the usage text.
fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        host: "127.0.0.1".to_string(),
        port: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{key} needs a value"))
        };
        match key.as_str() {
            "--host" => opts.host = value()?,
            "--port" => {
                let v = value()?;
                opts.port = v.parse().map_err(|_| format!("bad port: {v}"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(opts)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Binds, prints the address, serves until a signal.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("mock-upstream: {msg}");
            }
            eprintln!("{USAGE}");
            return if msg.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let ip = match loopback_ip(&opts.host) {
        Ok(ip) => ip,
        Err(e) => {
            eprintln!("mock-upstream: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(SocketAddr::new(ip, opts.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mock-upstream: cannot listen on {ip}:{}: {e}", opts.port);
            return ExitCode::from(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mock-upstream: {e}");
            return ExitCode::from(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }
    serve_with_shutdown(listener, Ledger::new(), shutdown_signal()).await;
    ExitCode::SUCCESS
}
