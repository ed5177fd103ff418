//! The `mock-upstream` binary: startup line, serving, signals and argument checks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// Kills and reaps the child when the test ends, whether it passed or not.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ChildGuard {
    /// Waits for the child to exit, once its stdout has closed (`lines` disconnected).
    fn exit_status(&mut self, lines: &Receiver<String>) -> ExitStatus {
        loop {
            match lines.recv_timeout(Duration::from_secs(10)) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("the process did not exit"),
            }
        }
        self.0.wait().expect("wait")
    }
}

/// Starts the binary; its stdout lines arrive on the receiver, which disconnects at exit.
fn start(args: &[&str]) -> (ChildGuard, Receiver<String>, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mock-upstream");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (etx, erx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut s);
        let _ = etx.send(s);
    });
    (ChildGuard(child), rx, erx)
}

fn port_from(line: &str) -> u16 {
    line.strip_prefix("listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("port")
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read response");
    out
}

#[test]
fn binary_prints_its_address_and_serves() {
    let (mut child, lines, _stderr) = start(&["--port", "0"]);
    let line = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the 'listening on' line");
    let port = port_from(&line);
    assert_ne!(port, 0);
    let resp = http_get(port, "/healthz");
    assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
    assert!(resp
        .to_ascii_lowercase()
        .contains("\r\nconnection: close\r\n"));
    assert!(resp.ends_with("\r\n\r\nok"), "{resp}");
    let index = http_get(port, "/");
    assert!(index.contains(&format!(
        "curl -N -X POST http://127.0.0.1:{port}/scenario/normal/"
    )));

    // SIGTERM ends it cleanly.
    let pid = child.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = child.exit_status(&lines);
    assert!(status.success(), "{status:?}");
}

#[test]
fn binary_refuses_non_loopback_hosts() {
    let (mut child, lines, stderr) = start(&["--host", "0.0.0.0", "--port", "0"]);
    let status = child.exit_status(&lines);
    assert_eq!(status.code(), Some(2));
    let err = stderr.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(err.contains("non-loopback"), "{err}");
}

#[test]
fn binary_accepts_host_and_equals_syntax() {
    let (_child, lines, _stderr) = start(&["--host=localhost", "--port=0"]);
    let line = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("the 'listening on' line");
    let port = port_from(&line);
    assert!(http_get(port, "/healthz").ends_with("ok"));
}
