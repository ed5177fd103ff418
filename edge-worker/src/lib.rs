//! Test harness for the edge worker: runs the built worker bundle (`cargo xtask worker --build`
//! writes it to `target/edge-worker/`) in a real `workerd` on 127.0.0.1, configured through
//! environment variables, and stops that process (by its own handle) when dropped.
//!
//! - `LSG_WORKER_DIR`: the bundle folder (default `<workspace>/target/edge-worker`, or
//!   `$CARGO_TARGET_DIR/edge-worker` when that is set).
//! - `WORKERD_BIN`: the workerd binary (default `<workspace>/node_modules/.bin/workerd`).
//!
//! The listening socket is bound here (port 0, so no race for a free port) and handed to workerd
//! as its standard input with `--socket-fd http=0`: connections made before workerd is ready
//! wait in the socket's backlog, so readiness is one `GET /healthz` whose answer is awaited
//! (bounded), not a polling loop.
//!
//! Bindings: the bundle's `workerd.capnp` binds the `LSG_*` variables; a variable given to
//! [`Workerd::start`] that the config does not bind (an API key named by a provider's
//! `apiKeyEnv`) gets a binding in a private copy of the config, removed again on drop.

#![warn(missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long workerd may take to answer its first `GET /healthz`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (the folder above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("edge-worker lives one level below the workspace root")
        .to_path_buf()
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(|v| workspace_root().join(PathBuf::from(v)))
}

/// The built worker bundle: `LSG_WORKER_DIR`, else `<target>/edge-worker`.
pub fn worker_dir() -> PathBuf {
    env_path("LSG_WORKER_DIR").unwrap_or_else(|| {
        env_path("CARGO_TARGET_DIR")
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("edge-worker")
    })
}

/// The workerd binary: `WORKERD_BIN`, else `<workspace>/node_modules/.bin/workerd`.
pub fn workerd_bin() -> PathBuf {
    env_path("WORKERD_BIN").unwrap_or_else(|| workspace_root().join("node_modules/.bin/workerd"))
}

/// Checks that `dir` holds a built worker bundle; the error says how to build one.
pub fn check_bundle(dir: &Path) -> Result<(), String> {
    let needed = [
        "workerd.capnp",
        "worker.js",
        "pkg/llm_stream_guard.js",
        "pkg/llm_stream_guard_bg.wasm",
    ];
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the edge worker is not built in {} (missing {}): run `cargo xtask worker --build` \
             first (or point LSG_WORKER_DIR at a built bundle)",
            dir.display(),
            missing.join(", ")
        ))
    }
}

/// `config` with a `fromEnvironment` binding added for every name in `names` it does not bind.
pub fn with_bindings(config: &str, names: &[&str]) -> Result<String, String> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !config.contains(&format!("fromEnvironment = \"{name}\"")))
        .collect();
    if missing.is_empty() {
        return Ok(config.to_owned());
    }
    for name in &missing {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{name:?} cannot be a binding name"));
        }
    }
    let anchor = "bindings = [";
    let at = config
        .find(anchor)
        .ok_or("the workerd config has no `bindings = [` list")?
        + anchor.len();
    let lines: String = missing
        .iter()
        .map(|name| format!("\n    (name = \"{name}\", fromEnvironment = \"{name}\"),"))
        .collect();
    Ok(format!("{}{}{}", &config[..at], lines, &config[at..]))
}

/// A running workerd serving the edge worker on 127.0.0.1; killed and reaped on drop.
pub struct Workerd {
    child: Child,
    addr: SocketAddr,
    private_config: Option<PathBuf>,
}

impl Workerd {
    /// Start the worker from [`worker_dir`] with [`workerd_bin`], with exactly `env` as its
    /// `LSG_*` configuration (inherited `LSG_*` variables are removed), and wait for `/healthz`.
    pub fn start(env: &[(&str, &str)]) -> Result<Workerd, String> {
        Workerd::start_with(&worker_dir(), &workerd_bin(), env)
    }

    /// [`Workerd::start`] with an explicit bundle folder and binary.
    pub fn start_with(dir: &Path, bin: &Path, env: &[(&str, &str)]) -> Result<Workerd, String> {
        check_bundle(dir)?;
        if !bin.exists() {
            return Err(format!(
                "no workerd at {} (run `cargo xtask setup`, or set WORKERD_BIN)",
                bin.display()
            ));
        }
        let base_config = std::fs::read_to_string(dir.join("workerd.capnp"))
            .map_err(|e| format!("read {}: {e}", dir.join("workerd.capnp").display()))?;
        let names: Vec<&str> = env.iter().map(|(name, _)| *name).collect();
        let config = with_bindings(&base_config, &names)?;
        let private_config = if config == base_config {
            None
        } else {
            // Next to the bundle, so the config's relative `embed` paths still resolve.
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let path = dir.join(format!(
                ".workerd-test-{}-{}.capnp",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, config).map_err(|e| format!("write {}: {e}", path.display()))?;
            Some(path)
        };
        let config_name = private_config
            .as_deref()
            .and_then(Path::file_name)
            .map_or_else(|| "workerd.capnp".into(), |n| n.to_owned());

        let cleanup = |private: &Option<PathBuf>| {
            if let Some(path) = private {
                let _ = std::fs::remove_file(path);
            }
        };
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(l) => l,
            Err(e) => {
                cleanup(&private_config);
                return Err(format!("bind 127.0.0.1:0: {e}"));
            }
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => {
                cleanup(&private_config);
                return Err(format!("local address of the listener: {e}"));
            }
        };
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg(&config_name)
            .args(["--socket-fd", "http=0"])
            .current_dir(dir)
            .stdin(Stdio::from(OwnedFd::from(listener)));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LSG_") {
                command.env_remove(&name);
            }
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let spawned = command.spawn();
        // The command holds the parent's copy of the listening socket: close it, so that the
        // socket dies with workerd.
        drop(command);
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                cleanup(&private_config);
                return Err(format!("cannot start {}: {e}", bin.display()));
            }
        };
        let mut running = Workerd {
            child,
            addr,
            private_config,
        };
        match healthz(addr, READY_TIMEOUT) {
            Ok(()) => Ok(running),
            Err(problem) => {
                let exited = running.child.try_wait().ok().flatten();
                Err(match exited {
                    Some(status) => format!("workerd exited during start-up ({status}): {problem}"),
                    None => format!("workerd did not become ready: {problem}"),
                })
            }
        }
    }

    /// The address workerd serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The workerd process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = self.private_config.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One `GET /healthz` that must answer `200` with `ok` within `timeout`.
pub fn healthz(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send GET /healthz: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer to GET /healthz within {timeout:?}"));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read GET /healthz answer: {e}")),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    if answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok") {
        Ok(())
    } else {
        Err(format!("GET /healthz answered {answer:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_bindings_only_for_unbound_names() {
        let config = "bindings = [\n    (name = \"LSG_PROVIDERS\", fromEnvironment = \"LSG_PROVIDERS\"),\n  ],";
        assert_eq!(with_bindings(config, &["LSG_PROVIDERS"]).unwrap(), config);
        let out = with_bindings(config, &["LSG_PROVIDERS", "MY_KEY"]).unwrap();
        assert!(out.contains("(name = \"MY_KEY\", fromEnvironment = \"MY_KEY\"),"));
        assert_eq!(out.matches("LSG_PROVIDERS\"),").count(), 1);
        assert!(with_bindings(config, &["bad name"]).is_err());
        assert!(with_bindings("nothing", &["K"]).is_err());
    }

    #[test]
    fn a_missing_bundle_says_how_to_build_it() {
        let err = check_bundle(Path::new("/nonexistent/edge-worker")).unwrap_err();
        assert!(err.contains("cargo xtask worker --build"), "{err}");
    }
}
