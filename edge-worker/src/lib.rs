//! Test harness for the edge worker: runs the worker bundle in a real `workerd` on 127.0.0.1,
//! configured through environment variables, watches what workerd prints, and stops that
//! process (by its own handle) when dropped.
//!
//! - `LSG_WORKER_DIR`: a built bundle to use as it is (`cargo xtask test` builds one and sets
//!   it). Without it, the harness builds the bundle into `<target>/edge-worker` itself, once
//!   per test run, when wasm-pack, wasm-bindgen-cli (the `Cargo.lock` version) and the wasm32
//!   target are here; without those tools, a bundle built earlier is used as it is. When neither
//!   works, the build script (`build.rs`) has marked the tests ignored and said why.
//! - `WORKERD_BIN`: the workerd binary (default `<workspace>/node_modules/.bin/workerd`, which
//!   `npm ci` installs, else `workerd` on the `PATH`).
//!
//! The listening socket is bound here (port 0, so no race for a free port) and handed to workerd
//! as its standard input with `--socket-fd http=0`: connections made before workerd is ready
//! wait in the socket's backlog, so readiness is one `GET /healthz` whose answer is awaited
//! (bounded), not a polling loop.
//!
//! Errors nobody handled: workerd runs with `--verbose`, which makes it print every uncaught
//! exception (`uncaught exception`), and in front of the worker's own entry module the harness
//! puts a small one ([`OBSERVER_JS`]) that keeps every promise rejection still without a
//! handler (workerd itself prints none). Every line workerd prints is kept. The last request of
//! a test asks the observer for the rejections still unhandled; then workerd is stopped, and each
//! of those (`Uncaught (in promise) …`) and each printed line reporting an uncaught exception or
//! unhandled rejection fails the test, named in the failure with the stack lines after it.
//!
//! Bindings: the bundle's `workerd.capnp` binds the `LSG_*` variables; a variable given to
//! [`Workerd::start`] that the config does not bind (an API key named by a provider's
//! `apiKeyEnv`) gets a binding in the private copy of the config each workerd runs with.

#![warn(missing_docs)]

mod probe;

pub use probe::{Bundle, Plan, HOW_TO_RUN};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long workerd may take to answer its first `GET /healthz`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the last request of a test (the observer's report) may take.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The workspace root (the folder above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("edge-worker lives one level below the workspace root")
        .to_path_buf()
}

/// The worker bundle's folder: `LSG_WORKER_DIR`, else `<target>/edge-worker`.
pub fn worker_dir() -> PathBuf {
    probe::worker_dir(&workspace_root())
}

/// The workerd binary: `WORKERD_BIN`, else `<workspace>/node_modules/.bin/workerd`, else
/// `workerd` on the `PATH`.
pub fn workerd_bin() -> Result<PathBuf, String> {
    probe::workerd_bin(&workspace_root())
}

/// Checks that `dir` holds a built worker bundle; the error says how to build one.
pub fn check_bundle(dir: &Path) -> Result<(), String> {
    let missing = probe::missing_bundle_files(dir);
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

/// The worker bundle for this test run: the given one, or built (once per process) by
/// [`build_bundle`], or the one built earlier when the tools to rebuild it are missing.
pub fn bundle() -> Result<PathBuf, String> {
    static BUNDLE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let root = workspace_root();
            match Plan::find(&root).bundle? {
                Bundle::Given(dir) => Ok(dir),
                Bundle::Build { dir, wasm_pack } => {
                    build_bundle(&root, &dir, &wasm_pack)?;
                    Ok(dir)
                }
                Bundle::Existing { dir, missing_tools } => {
                    say(&format!(
                        "edge-worker tests: using the worker bundle in {} as it is: it cannot \
                         be rebuilt here (missing {}), so it may be older than the sources",
                        dir.display(),
                        missing_tools.join(", ")
                    ));
                    Ok(dir)
                }
            }
        })
        .clone()
}

/// A line on the test process's standard error, past the test harness's output capture (for
/// what the person running the tests should see even when every test passes).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Builds the worker bundle into `dir` as `cargo xtask worker --build` does: the wasm package
/// (`--target web`, feature `worker`) in `pkg/`, and copies of `edge-worker/worker.js` and
/// `edge-worker/workerd.capnp` (whose placeholders are comments; the harness adds bindings).
pub fn build_bundle(root: &Path, dir: &Path, wasm_pack: &Path) -> Result<(), String> {
    say(&format!(
        "edge-worker tests: building the worker bundle into {} (wasm-pack, release, feature \
         `worker`; minutes the first time)",
        dir.display()
    ));
    let pkg = dir.join("pkg");
    let status = Command::new(wasm_pack)
        .args([
            "--log-level",
            "warn",
            "build",
            "--release",
            "--target",
            "web",
        ])
        .args(["--no-pack", "--out-name", "llm_stream_guard", "--out-dir"])
        .arg(&pkg)
        .args(["--", "--features", "worker"])
        .current_dir(root)
        .env("PATH", probe::search_path())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot start {}: {e}", wasm_pack.display()))?;
    if !status.success() {
        return Err(format!(
            "building the worker bundle failed ({status}): `{} build --release --target web \
             --out-dir {} -- --features worker`",
            wasm_pack.display(),
            pkg.display()
        ));
    }
    for file in ["worker.js", "workerd.capnp"] {
        std::fs::copy(root.join("edge-worker").join(file), dir.join(file))
            .map_err(|e| format!("copy edge-worker/{file} to {}: {e}", dir.display()))?;
    }
    check_bundle(dir)
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

/// The path the [`OBSERVER_JS`] module answers itself: the rejections still unhandled.
pub const UNHANDLED_PATH: &str = "/__lsg-test/unhandled-rejections";

/// The entry module the harness puts in front of the worker's own (`worker.js`). workerd fires
/// `unhandledrejection` when a promise is rejected with no handler and `rejectionhandled` when
/// a handler comes later (its own streams do that: cancelling a fetch body while a read is
/// pending rejects an internal promise with "Stream was cancelled." that gets its handler a
/// moment later), but prints neither. This module keeps the rejections that
/// have no handler yet, prints a note for each (and when it is handled after all), and answers
/// `GET` [`UNHANDLED_PATH`] with the ones still unhandled, each as a line starting
/// `Uncaught (in promise)` and its stack, separated by U+001E; every other request goes to the
/// worker unchanged.
pub const OBSERVER_JS: &str = r#"// Written by the edge-worker test harness (edge-worker/src/lib.rs) next to a private copy of
// the config: the worker unchanged, plus a record of the promise rejections nobody handled.
import worker from "./worker.js";

const unhandled = new Map();
const describe = (reason) => {
  try {
    return reason instanceof Error ? reason.stack || `${reason.name}: ${reason.message}` : String(reason);
  } catch {
    return Object.prototype.toString.call(reason);
  }
};
addEventListener("unhandledrejection", (event) => {
  const text = describe(event.reason);
  unhandled.set(event.promise, text);
  console.error(`[lsg-test] a promise was rejected with no handler (yet): ${text}`);
});
addEventListener("rejectionhandled", (event) => {
  const text = unhandled.get(event.promise);
  if (unhandled.delete(event.promise)) {
    console.error(`[lsg-test] ... and was handled later: ${text}`);
  }
});

export default {
  ...worker,
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "__PATH__") {
      const texts = [...unhandled.values()].map((text) => `Uncaught (in promise) ${text}`);
      unhandled.clear();
      return new Response(texts.join("\u001e"));
    }
    return worker.fetch(request, env, ctx);
  },
};
"#;

/// The module name of [`OBSERVER_JS`] in the config.
const OBSERVER_MODULE: &str = "lsg-test-observer.js";

/// `config` with the module in file `file` (an [`OBSERVER_JS`]) as its first, main, module.
pub fn with_observer(config: &str, file: &str) -> Result<String, String> {
    let anchor = "modules = [";
    let at = config
        .find(anchor)
        .ok_or("the workerd config has no `modules = [` list")?
        + anchor.len();
    Ok(format!(
        "{}\n    (name = \"{OBSERVER_MODULE}\", esModule = embed \"{file}\"),{}",
        &config[..at],
        &config[at..]
    ))
}

/// Whether a line workerd printed reports an error nobody handled.
pub fn reports_unhandled(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    [
        "uncaught (in promise)",
        "uncaught exception",
        "unhandled rejection",
        "unhandled promise rejection",
    ]
    .iter()
    .any(|pattern| line.contains(pattern))
}

/// What workerd printed: every line, and the reports of unhandled errors among them (each the
/// reporting line and the indented stack lines after it).
#[derive(Debug, Default)]
struct Output {
    lines: Vec<String>,
    unhandled: Vec<String>,
}

/// Reads one of workerd's output streams to its end, line by line, into `output`; every line
/// is also printed (on the test's captured output, shown when the test fails).
fn watch_stream(
    stream: impl Read + Send + 'static,
    name: &'static str,
    pid: u32,
    output: Arc<Mutex<Output>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut raw = Vec::new();
        // Stack lines (indented) after a report belong to it.
        let mut report: Option<usize> = None;
        loop {
            raw.clear();
            match reader.read_until(b'\n', &mut raw) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
            eprintln!("[workerd {pid} {name}] {line}");
            let mut output = output.lock().unwrap_or_else(|e| e.into_inner());
            if reports_unhandled(&line) {
                report = Some(output.unhandled.len());
                output.unhandled.push(line.clone());
            } else if let Some(at) = report.filter(|_| line.starts_with([' ', '\t'])) {
                output.unhandled[at].push('\n');
                output.unhandled[at].push_str(&line);
            } else {
                report = None;
            }
            output.lines.push(line);
        }
    })
}

/// A running workerd serving the edge worker on 127.0.0.1; killed and reaped on drop, and then
/// (unless the test already failed) a panic if it reported an error nobody handled.
pub struct Workerd {
    child: Child,
    addr: SocketAddr,
    /// The private config and observer module it runs with, removed on drop.
    private_files: Vec<PathBuf>,
    output: Arc<Mutex<Output>>,
    watchers: Vec<JoinHandle<()>>,
}

impl Workerd {
    /// Start the worker from the [`bundle`] with [`workerd_bin`], with exactly `env` as its
    /// `LSG_*` configuration (inherited `LSG_*` variables are removed), and wait for `/healthz`.
    pub fn start(env: &[(&str, &str)]) -> Result<Workerd, String> {
        let dir = bundle()?;
        Workerd::start_with(&dir, &workerd_bin()?, env)
    }

    /// [`Workerd::start`] with an explicit bundle folder and binary.
    pub fn start_with(dir: &Path, bin: &Path, env: &[(&str, &str)]) -> Result<Workerd, String> {
        check_bundle(dir)?;
        Workerd::start_config(dir, "workerd.capnp", bin, env)
    }

    /// Start workerd on the config file `config` in `dir` (any worker: it needs a `modules`
    /// and a `bindings` list, and to answer `GET /healthz` with `ok`).
    pub fn start_config(
        dir: &Path,
        config: &str,
        bin: &Path,
        env: &[(&str, &str)],
    ) -> Result<Workerd, String> {
        if !bin.exists() {
            return Err(format!(
                "no workerd at {} (run `cargo xtask setup`, or set WORKERD_BIN)",
                bin.display()
            ));
        }
        let base_config = std::fs::read_to_string(dir.join(config))
            .map_err(|e| format!("read {}: {e}", dir.join(config).display()))?;
        let names: Vec<&str> = env.iter().map(|(name, _)| *name).collect();
        // Next to the bundle, so the config's relative `embed` paths still resolve.
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let stem = format!(
            ".workerd-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let observer = format!("{stem}-observer.js");
        let private_config = format!("{stem}.capnp");
        let config = with_observer(&with_bindings(&base_config, &names)?, &observer)?;
        let mut private_files = Vec::new();
        let mut write = |name: &str, text: &str| {
            let path = dir.join(name);
            let result =
                std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()));
            private_files.push(path);
            result
        };
        let observer_js = OBSERVER_JS.replace("__PATH__", UNHANDLED_PATH);
        let written = write(&observer, &observer_js).and_then(|()| write(&private_config, &config));
        let cleanup = |files: &[PathBuf]| {
            for path in files {
                let _ = std::fs::remove_file(path);
            }
        };
        if let Err(e) = written {
            cleanup(&private_files);
            return Err(e);
        }

        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(l) => l,
            Err(e) => {
                cleanup(&private_files);
                return Err(format!("bind 127.0.0.1:0: {e}"));
            }
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => {
                cleanup(&private_files);
                return Err(format!("local address of the listener: {e}"));
            }
        };
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg(&private_config)
            .args(["--socket-fd", "http=0", "--verbose"])
            .current_dir(dir)
            .env("PWD", dir)
            .stdin(Stdio::from(OwnedFd::from(listener)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                cleanup(&private_files);
                return Err(format!("cannot start {}: {e}", bin.display()));
            }
        };
        let pid = child.id();
        let output = Arc::new(Mutex::new(Output::default()));
        let watchers = vec![
            watch_stream(
                child.stdout.take().expect("piped"),
                "stdout",
                pid,
                output.clone(),
            ),
            watch_stream(
                child.stderr.take().expect("piped"),
                "stderr",
                pid,
                output.clone(),
            ),
        ];
        let mut running = Workerd {
            child,
            addr,
            private_files,
            output,
            watchers,
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

    /// The reports of unhandled errors workerd printed so far (each with its stack lines).
    pub fn unhandled(&self) -> Vec<String> {
        self.lock_output().unhandled.clone()
    }

    fn lock_output(&self) -> std::sync::MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the worker for the rejections still unhandled (the last request of a test: what
    /// the test set going in the worker has had its turns by the time it is answered), stops
    /// workerd (by its own process id), reads its output to the end, and returns every report
    /// of an unhandled error.
    fn stop(&mut self) -> Vec<String> {
        let mut asked = Vec::new();
        if self.child.try_wait().ok().flatten().is_none() {
            match get(self.addr, UNHANDLED_PATH, SETTLE_TIMEOUT) {
                Ok((200, body)) => asked.extend(
                    body.split('\u{1e}')
                        .filter(|r| !r.trim().is_empty())
                        .map(str::to_owned),
                ),
                Ok((status, body)) => asked.push(format!(
                    "the harness could not check for unhandled rejections: GET {UNHANDLED_PATH} \
                     answered {status} {body:?}"
                )),
                Err(e) => asked.push(format!(
                    "the harness could not check for unhandled rejections: {e}"
                )),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for watcher in self.watchers.drain(..) {
            let _ = watcher.join();
        }
        for path in self.private_files.drain(..) {
            let _ = std::fs::remove_file(path);
        }
        let mut output = self.lock_output();
        output.unhandled.extend(asked);
        output.unhandled.clone()
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let unhandled = self.stop();
        if unhandled.is_empty() {
            return;
        }
        let message = format!(
            "workerd (pid {}) reported {} unhandled rejection(s) or uncaught exception(s) \
             during this test:\n  {}",
            self.child.id(),
            unhandled.len(),
            unhandled.join("\n  ")
        );
        if std::thread::panicking() {
            // The test failed already; say it without a second panic.
            eprintln!("{message}");
        } else {
            panic!("{message}");
        }
    }
}

/// One `GET /healthz` that must answer `200` with `ok` within `timeout`.
pub fn healthz(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    match get(addr, "/healthz", timeout)? {
        (200, body) if body == "ok" => Ok(()),
        (status, body) => Err(format!("GET /healthz answered {status} {body:?}")),
    }
}

/// One `GET path` (HTTP/1.1, `Connection: close`) answered within `timeout`: status and body.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let deadline = Instant::now() + timeout;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .map_err(|e| format!("send GET {path}: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer to GET {path} within {timeout:?}"));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read the answer to GET {path}: {e}")),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("GET {path} answered {answer:?}"))?;
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("GET {path} answered {answer:?}"))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// A `Transfer-Encoding: chunked` body's content.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
        else {
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
    fn the_observer_becomes_the_main_module() {
        let config =
            "modules = [\n    (name = \"worker.js\", esModule = embed \"worker.js\"),\n  ],";
        let out = with_observer(config, ".x-observer.js").unwrap();
        let observer = out.find(OBSERVER_MODULE).expect("observer module added");
        assert!(observer < out.find("\"worker.js\"").unwrap(), "{out}");
        assert!(out.contains("embed \".x-observer.js\""), "{out}");
        assert!(with_observer("nothing", "x.js").is_err());
        assert!(OBSERVER_JS.contains("import worker from \"./worker.js\""));
        assert!(OBSERVER_JS.contains("\"__PATH__\""));
    }

    #[test]
    fn recognises_reports_of_unhandled_errors() {
        for line in [
            "Uncaught (in promise) (unhandledrejection) Error: boom",
            "workerd/io/worker.c++:3042: info: uncaught exception; source = Uncaught; stack = Error: x",
            "workerd/server/server/listen/mod.rs:372: error: Uncaught exception: failed: boom",
            "Unhandled promise rejection: AbortError",
        ] {
            assert!(reports_unhandled(line), "{line}");
        }
        for line in [
            "error line",
            "workerd/io/worker.c++:1: info: request canceled",
            "",
        ] {
            assert!(!reports_unhandled(line), "{line}");
        }
    }

    #[test]
    fn reads_chunked_bodies() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
        assert_eq!(dechunk("0\r\n\r\n"), "");
    }

    #[test]
    fn a_missing_bundle_says_how_to_build_it() {
        let err = check_bundle(Path::new("/nonexistent/edge-worker")).unwrap_err();
        assert!(err.contains("cargo xtask worker --build"), "{err}");
    }
}
