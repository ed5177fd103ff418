//! Running commands and the processes a task starts (each stopped by its own id).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Run a command to completion with inherited output; an error names it and its status.
pub fn run(program: &str, args: &[&str], dir: &Path) -> Result<(), String> {
    run_env(program, args, dir, &[])
}

/// [`run`] with extra environment variables.
pub fn run_env(
    program: &str,
    args: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// Whether a command runs and exits successfully (output discarded).
pub fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A command's standard output, if it ran and succeeded.
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Where cargo puts build output.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"))
}

/// A child process that prints `listening on http://…` when ready; killed (by its own id) and
/// reaped on drop.
pub struct Server {
    name: &'static str,
    child: Child,
    url: String,
}

impl Server {
    /// Start `program` and wait (up to `timeout`) for its `listening on <url>` line.
    pub fn start(
        name: &'static str,
        program: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> Result<Server, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name} ({}): {e}", program.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match line.strip_prefix("listening on ") {
                    Some(url) if ready.is_some() => {
                        let _ = ready.take().expect("checked").send(url.trim().to_owned());
                    }
                    _ => println!("[{name}] {line}"),
                }
            }
        });
        let mut server = Server {
            name,
            child,
            url: String::new(),
        };
        match ready_rx.recv_timeout(timeout) {
            Ok(url) => {
                server.url = url;
                Ok(server)
            }
            Err(_) => Err(format!(
                "{name} did not print `listening on …` within {timeout:?}"
            )),
        }
    }

    /// The base URL it printed.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("[{}] stopped (pid {})", self.name, self.child.id());
    }
}

/// The mock upstream, built from this workspace and started on `port` (0 = any free port).
pub struct MockUpstream(Server);

impl MockUpstream {
    /// Build and start it on 127.0.0.1.
    pub fn start(port: &str) -> Result<MockUpstream, String> {
        run(
            "cargo",
            &["build", "--quiet", "--package", "mock-upstream"],
            &crate::root(),
        )?;
        let binary = target_dir().join("debug").join("mock-upstream");
        let server = Server::start(
            "mock-upstream",
            &binary,
            &["--port", port],
            Duration::from_secs(30),
        )?;
        Ok(MockUpstream(server))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        self.0.url()
    }
}

/// Block until SIGINT (Ctrl-C) or SIGTERM.
pub fn wait_for_termination() {
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .expect("install the Ctrl-C/SIGTERM handler once");
    let _ = rx.recv();
}
