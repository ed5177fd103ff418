//! The one way this workspace runs workerd: the edge-worker tests, `cargo xtask worker`,
//! `cargo xtask demo` and `cargo xtask bench` all start it through [`Launch`].
//!
//! - Config: a config file from the worker's folder (a template such as
//!   `edge-worker/workerd.capnp`), copied privately next to it (so its relative `embed` paths
//!   still resolve) with a `fromEnvironment` binding added for every variable given that it does
//!   not bind yet (an API key named by a provider's `apiKeyEnv`), and optionally a folder served
//!   as `ASSETS` (the demo page). The private files are removed when workerd stops.
//! - Environment: workerd gets exactly the `LSG_*` variables given (inherited ones are removed;
//!   [`lsg_env`] hands on this process's own when that is wanted), plus any other variable given.
//! - Socket: the listening socket is bound here on 127.0.0.1 (port 0 picks a free one, with no
//!   race) and handed to workerd as its standard input with `--socket-fd http=0`; connections
//!   made before workerd is ready wait in the socket's backlog, so readiness is one `GET
//!   /healthz` whose answer (`ok`) is awaited (bounded), not a polling loop.
//! - More sockets ([`Launch::socket`], for a config with a second service, i.e. a second
//!   isolate): each bound here too and handed over by its descriptor (`--socket-fd name=<fd>`,
//!   the descriptor kept open across `exec` in the child only).
//! - Stop: dropping the [`Workerd`] kills that process by its own handle (its pid) and reaps it.
//!
//! Errors nobody handled ([`Launch::check_unhandled`], which the tests use): workerd runs with
//! `--verbose`, which makes it print every uncaught exception (`uncaught exception`), and in
//! front of the worker's own entry module the launcher puts a small one ([`OBSERVER_JS`]) that
//! keeps every promise rejection still without a handler (workerd itself prints none). Every
//! line workerd prints is kept. Before stopping, the launcher asks the observer for the
//! rejections still unhandled; then workerd is stopped, and each of those (`Uncaught (in
//! promise) …`) and each printed line reporting an uncaught exception or unhandled rejection
//! fails the test (a panic on drop), named with the stack lines after it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long workerd may take to answer its first `GET /healthz`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the observer's report (the last request before a checked stop) may take.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// This process's `LSG_*` variables, to hand on to workerd where the caller's environment is the
/// configuration (`cargo xtask worker`, the demo).
pub fn lsg_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| name.starts_with("LSG_"))
        .collect()
}

/// How to start workerd: the binary, the folder with the config, and what to run it with.
#[derive(Debug)]
pub struct Launch {
    bin: PathBuf,
    dir: PathBuf,
    config: String,
    template: Option<String>,
    env: Vec<(String, String)>,
    socket: Socket,
    more_sockets: Vec<String>,
    site: Option<PathBuf>,
    check_unhandled: bool,
}

/// Where workerd listens.
#[derive(Debug)]
enum Socket {
    /// Bind this port on 127.0.0.1 at start (0 = a free one).
    Port(u16),
    /// A socket the caller bound already (to know the port before the start).
    Bound(TcpListener),
}

impl Launch {
    /// workerd `bin` on the config `workerd.capnp` in `dir`, on any free port, with no
    /// variables, no site and no check.
    pub fn new(bin: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Launch {
        Launch {
            bin: bin.into(),
            dir: dir.into(),
            config: "workerd.capnp".into(),
            template: None,
            env: Vec::new(),
            socket: Socket::Port(0),
            more_sockets: Vec::new(),
            site: None,
            check_unhandled: false,
        }
    }

    /// Another config file in the folder (it needs a `bindings` list and a socket named `http`,
    /// and its worker must answer `GET /healthz` with `ok`).
    pub fn config(mut self, file: &str) -> Launch {
        self.config = file.into();
        self
    }

    /// This config text in place of the config file's (its relative `embed` paths resolve in
    /// the folder, as the file's do): a variant of the template, made by the caller.
    pub fn template(mut self, text: String) -> Launch {
        self.template = Some(text);
        self
    }

    /// Another socket of the config, by name, bound on a free port of 127.0.0.1 and handed to
    /// workerd with the main one ([`Workerd::socket`] says where it is).
    pub fn socket(mut self, name: &str) -> Launch {
        self.more_sockets.push(name.into());
        self
    }

    /// Variables for workerd, each bound under its own name; a later one replaces an earlier
    /// one of the same name.
    pub fn env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Launch {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The port on 127.0.0.1 (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Launch {
        self.socket = Socket::Port(port);
        self
    }

    /// Serve on this socket, bound by the caller (who needed its port before the start, for a
    /// variable naming the worker's own origin).
    pub fn listener(mut self, listener: TcpListener) -> Launch {
        self.socket = Socket::Bound(listener);
        self
    }

    /// Serve this folder as the binding `ASSETS`.
    pub fn site(mut self, dir: &Path) -> Launch {
        self.site = Some(dir.to_path_buf());
        self
    }

    /// Fail (panic when dropped) on any unhandled rejection or uncaught exception workerd
    /// reports: `--verbose` and the [`OBSERVER_JS`] entry module.
    pub fn check_unhandled(mut self) -> Launch {
        self.check_unhandled = true;
        self
    }

    /// Start workerd and wait until `GET /healthz` answers `ok` (at most [`READY_TIMEOUT`]).
    pub fn start(self) -> Result<Workerd, String> {
        let Launch {
            bin,
            dir,
            config,
            template,
            env,
            socket,
            more_sockets,
            site,
            check_unhandled,
        } = self;
        if !bin.exists() {
            return Err(format!(
                "no workerd at {} (run `cargo xtask setup`, or set WORKERD_BIN)",
                bin.display()
            ));
        }
        let template = match template {
            Some(text) => text,
            None => std::fs::read_to_string(dir.join(&config))
                .map_err(|e| format!("read {}: {e}", dir.join(&config).display()))?,
        };
        let names: Vec<&str> = env.iter().map(|(name, _)| name.as_str()).collect();
        let mut private_config = with_bindings(&template, &names)?;
        if let Some(site) = &site {
            private_config = with_site(&private_config, site)?;
        }
        // Next to the config, so its relative `embed` paths still resolve.
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let stem = format!(
            ".workerd-launch-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut files = PrivateFiles(Vec::new());
        if check_unhandled {
            let observer = format!("{stem}-observer.js");
            private_config = with_observer(&private_config, &observer)?;
            files.write(
                &dir,
                &observer,
                &OBSERVER_JS.replace("__PATH__", UNHANDLED_PATH),
            )?;
        }
        let config_file = format!("{stem}.capnp");
        files.write(&dir, &config_file, &private_config)?;

        let listener = match socket {
            Socket::Bound(listener) => listener,
            Socket::Port(port) => TcpListener::bind(("127.0.0.1", port))
                .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?,
        };
        let addr = listener
            .local_addr()
            .map_err(|e| format!("local address of the listener: {e}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("workerd serves on loopback only, not on {addr}"));
        }
        let mut more = Vec::new();
        for name in &more_sockets {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(format!("{name:?} cannot be a socket name"));
            }
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .map_err(|e| format!("bind 127.0.0.1:0 for {name}: {e}"))?;
            let addr = listener
                .local_addr()
                .map_err(|e| format!("local address of the listener for {name}: {e}"))?;
            more.push((name.clone(), addr, listener));
        }
        let mut command = Command::new(&bin);
        let inherited: Vec<RawFd> = more.iter().map(|(_, _, l)| l.as_raw_fd()).collect();
        if !inherited.is_empty() {
            // SAFETY: between fork and exec the closure only calls fcntl, which is
            // async-signal-safe, on descriptors this process owns (the listeners, alive until
            // after the spawn); it allocates nothing.
            unsafe {
                command.pre_exec(move || {
                    for fd in &inherited {
                        if libc::fcntl(*fd, libc::F_SETFD, 0) == -1 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        command
            .arg("serve")
            .arg(&config_file)
            .args(["--socket-fd", "http=0"])
            .args(more.iter().flat_map(|(name, _, listener)| {
                [
                    "--socket-fd".to_owned(),
                    format!("{name}={}", listener.as_raw_fd()),
                ]
            }))
            .args(check_unhandled.then_some("--verbose"))
            .current_dir(&dir)
            .env("PWD", &dir)
            .stdin(Stdio::from(OwnedFd::from(listener)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LSG_") {
                command.env_remove(&name);
            }
        }
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let spawned = command.spawn();
        // The command holds the parent's copy of the listening socket: close it, so that the
        // socket dies with workerd (the other ones too).
        drop(command);
        let sockets: Vec<(String, SocketAddr)> = more
            .into_iter()
            .map(|(name, addr, _listener)| (name, addr))
            .collect();
        let mut child = spawned.map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id();
        let output = Arc::new(Mutex::new(Output::default()));
        let printed = Arc::new(Condvar::new());
        let watchers = vec![
            watch_stream(
                child.stdout.take().expect("piped"),
                "stdout",
                pid,
                output.clone(),
                printed.clone(),
            ),
            watch_stream(
                child.stderr.take().expect("piped"),
                "stderr",
                pid,
                output.clone(),
                printed.clone(),
            ),
        ];
        let mut running = Workerd {
            child,
            addr,
            sockets,
            files,
            output,
            printed,
            watchers,
            check_unhandled,
        };
        let ready = std::iter::once(addr)
            .chain(running.sockets.iter().map(|(_, a)| *a))
            .try_for_each(|a| healthz(a, READY_TIMEOUT));
        match ready {
            Ok(()) => Ok(running),
            Err(problem) => {
                // It never served: there is nothing to ask the observer, only a process to stop.
                running.check_unhandled = false;
                let exited = running.child.try_wait().ok().flatten();
                Err(match exited {
                    Some(status) => format!("workerd exited during start-up ({status}): {problem}"),
                    None => format!("workerd did not become ready: {problem}"),
                })
            }
        }
    }
}

/// Files written for one workerd, removed when dropped.
#[derive(Debug)]
struct PrivateFiles(Vec<PathBuf>);

impl PrivateFiles {
    fn write(&mut self, dir: &Path, name: &str, text: &str) -> Result<(), String> {
        let path = dir.join(name);
        let written =
            std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()));
        self.0.push(path);
        written
    }
}

impl Drop for PrivateFiles {
    fn drop(&mut self) {
        for path in self.0.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `config` with a `fromEnvironment` binding added for every name in `names` it does not bind.
pub fn with_bindings(config: &str, names: &[&str]) -> Result<String, String> {
    let mut missing: Vec<&str> = Vec::new();
    for name in names.iter().copied() {
        if !config.contains(&format!("fromEnvironment = \"{name}\"")) && !missing.contains(&name) {
            missing.push(name);
        }
    }
    if missing.is_empty() {
        return Ok(config.to_owned());
    }
    for name in &missing {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{name:?} cannot be a binding name"));
        }
    }
    let lines: String = missing
        .iter()
        .map(|name| format!("\n    (name = \"{name}\", fromEnvironment = \"{name}\"),"))
        .collect();
    insert_after(config, "bindings = [", &lines)
}

/// `config` with the folder `site` served as the binding `ASSETS` (a disk service, read-only).
pub fn with_site(config: &str, site: &Path) -> Result<String, String> {
    let path = site
        .to_str()
        .ok_or_else(|| format!("{} is not UTF-8", site.display()))?
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let service = format!("\n    (name = \"site\", disk = (path = \"{path}\", writable = false)),");
    let config = insert_after(config, "services = [", &service)?;
    insert_after(
        &config,
        "bindings = [",
        "\n    (name = \"ASSETS\", service = \"site\"),",
    )
}

/// `config` with `text` right after the first `anchor` (the opening of a list).
fn insert_after(config: &str, anchor: &str, text: &str) -> Result<String, String> {
    let at = config
        .find(anchor)
        .ok_or_else(|| format!("the workerd config has no `{anchor}` list"))?
        + anchor.len();
    Ok(format!("{}{}{}", &config[..at], text, &config[at..]))
}

/// The path the [`OBSERVER_JS`] module answers itself: the rejections still unhandled.
pub const UNHANDLED_PATH: &str = "/__lsg-test/unhandled-rejections";

/// The entry module the launcher puts in front (when asked to check, as the tests do) of the worker's own (`worker.js`). workerd fires
/// `unhandledrejection` when a promise is rejected with no handler and `rejectionhandled` when
/// a handler comes later (its own streams do that: cancelling a fetch body while a read is
/// pending rejects an internal promise with "Stream was cancelled." that gets its handler a
/// moment later), but prints neither. This module keeps the rejections that
/// have no handler yet, prints a note for each (and when it is handled after all), and answers
/// `GET` [`UNHANDLED_PATH`] with the ones still unhandled, each as a line starting
/// `Uncaught (in promise)` and its stack, separated by U+001E; every other request goes to the
/// worker unchanged.
pub const OBSERVER_JS: &str = r#"// Written by the workerd launcher (edge-worker/src/launch.rs) next to a private copy of
// the config: the worker unchanged (its named exports too: the Durable Object classes), plus a
// record of the promise rejections nobody handled.
import worker from "./worker.js";
export * from "./worker.js";

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
    let module = format!("\n    (name = \"{OBSERVER_MODULE}\", esModule = embed \"{file}\"),");
    insert_after(config, "modules = [", &module)
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
    printed: Arc<Condvar>,
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
            drop(output);
            printed.notify_all();
        }
    })
}

/// A running workerd on 127.0.0.1, started by [`Launch::start`]; killed (by its own process
/// id) and reaped on drop, and then, when it was checking (and the thread is not panicking
/// already), a panic if it reported an error nobody handled.
pub struct Workerd {
    child: Child,
    addr: SocketAddr,
    /// The other sockets asked for ([`Launch::socket`]), by name.
    sockets: Vec<(String, SocketAddr)>,
    /// The private config (and observer module) it runs with.
    files: PrivateFiles,
    output: Arc<Mutex<Output>>,
    /// Notified after each line workerd prints.
    printed: Arc<Condvar>,
    watchers: Vec<JoinHandle<()>>,
    check_unhandled: bool,
}

impl Workerd {
    /// The address workerd serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the socket `name` asked for with [`Launch::socket`] serves.
    pub fn socket(&self, name: &str) -> Option<SocketAddr> {
        self.sockets
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
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

    /// Waits (at most `timeout`) until workerd has printed a line for which `wanted` holds, and
    /// returns it; `None` when none came. (The worker's `console` output is printed with
    /// `--verbose`, which [`Launch::check_unhandled`] turns on.)
    pub fn wait_for_line(
        &self,
        wanted: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut output = self.lock_output();
        loop {
            if let Some(line) = output.lines.iter().find(|line| wanted(line)) {
                return Some(line.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            output = self
                .printed
                .wait_timeout(output, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Every line workerd printed so far (standard output and error).
    pub fn lines(&self) -> Vec<String> {
        self.lock_output().lines.clone()
    }

    fn lock_output(&self) -> std::sync::MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When checking, asks the worker for the rejections still unhandled (the last request: what
    /// the test set going in the worker has had its turns by the time it is answered); stops
    /// workerd (by its own process id), reads its output to the end, and returns every report
    /// of an unhandled error.
    fn stop(&mut self) -> Vec<String> {
        let mut asked = Vec::new();
        let every = std::iter::once(self.addr).chain(self.sockets.iter().map(|(_, a)| *a));
        let addrs: Vec<SocketAddr> = every.collect();
        for addr in addrs {
            if !self.check_unhandled || self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            match get(addr, UNHANDLED_PATH, SETTLE_TIMEOUT) {
                Ok((200, body)) => asked.extend(
                    body.split('\u{1e}')
                        .filter(|r| !r.trim().is_empty())
                        .map(str::to_owned),
                ),
                Ok((status, body)) => asked.push(format!(
                    "the launcher could not check for unhandled rejections: GET {UNHANDLED_PATH} \
                     answered {status} {body:?}"
                )),
                Err(e) => asked.push(format!(
                    "the launcher could not check for unhandled rejections: {e}"
                )),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("[workerd {}] stopped", self.child.id());
        for watcher in self.watchers.drain(..) {
            let _ = watcher.join();
        }
        drop(std::mem::replace(&mut self.files, PrivateFiles(Vec::new())));
        let mut output = self.lock_output();
        output.unhandled.extend(asked);
        output.unhandled.clone()
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let unhandled = self.stop();
        if !self.check_unhandled || unhandled.is_empty() {
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
        let out = with_bindings(config, &["LSG_PROVIDERS", "MY_KEY", "MY_KEY"]).unwrap();
        assert_eq!(
            out.matches("(name = \"MY_KEY\", fromEnvironment = \"MY_KEY\"),")
                .count(),
            1
        );
        assert_eq!(out.matches("LSG_PROVIDERS\"),").count(), 1);
        assert!(with_bindings(config, &["bad name"]).is_err());
        assert!(with_bindings("nothing", &["K"]).is_err());
    }

    #[test]
    fn a_site_is_a_disk_service_bound_as_assets() {
        let config = "services = [\n    (name = \"main\"),\n  ],\n  bindings = [\n  ],";
        let out = with_site(config, Path::new("/srv/a \"b\"")).unwrap();
        assert!(
            out.contains(r#"(name = "site", disk = (path = "/srv/a \"b\"", writable = false)),"#),
            "{out}"
        );
        assert!(
            out.contains(r#"(name = "ASSETS", service = "site"),"#),
            "{out}"
        );
        assert!(with_site("bindings = [", Path::new("/srv")).is_err());
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
}
