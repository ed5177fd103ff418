//! `cargo xtask bench [--quick]`: the benchmark suite, one Markdown table.
//!
//! This task prepares and owns everything the measurements need, then hands over to
//! `bench/run.mjs` (Node), which measures and writes the table's rows:
//!
//! - the release packages for the `nodejs` and `web` targets, built into `<target>/bench/pkg/`
//!   (not `<target>/pkg/`, which other tasks rebuild, some as dev builds) and put through the
//!   same `wasm-opt -Oz` as `cargo xtask build`; the web package's sizes are row 2, and those of
//!   the parser-only module (feature `sse-only`, `<target>/bench/pkg/sse/`) row 2b, each with the
//!   package's browser entry bundled as `cargo xtask build` bundles it (`browser.js`, `sse.js`);
//!   in the full run only, the core-only module (feature `core-floor`, `<target>/bench/pkg/floor/`,
//!   its wasm-bindgen glue minified as the web package's is) row 2c: the size floor of the core
//!   alone, with every driver in JavaScript, for comparison with row 2's target (no target of its
//!   own; `--quick` leaves it out, so that the CI suite does not build a third module), and row
//!   7a's design floor (`generate()`'s calls run by a JavaScript driver of that module);
//! - the edge worker bundle as `cargo xtask worker --build` makes it (the crate with its `worker`
//!   feature), copied to `<target>/bench/worker/` with a config without key bindings;
//! - the mock upstream on 127.0.0.1: a release build in the full run (the debug build streams at
//!   a few MB/s and would be the bottleneck of the throughput and concurrency rows), the debug
//!   build the tests use in `--quick`, which judges nothing about speed;
//! - five workerd instances on 127.0.0.1: the worker with short deadlines for each of the idle,
//!   first-token and service timeouts (one provider each, so a timeout is not followed by a
//!   failover), the worker for cancel, overhead and concurrency, and a plain pass-through proxy
//!   (`bench/workerd/passthrough.js`) as the comparison for the worker's overhead.
//!
//! Every process is stopped by its own id when this function returns. The table goes to stdout
//! and to `<target>/bench/results.md`, under a line naming the machine and its load. The exit
//! status is the verdict on correctness only (a wrong answer, a missing event, a crash): a missed
//! speed target is reported in its row, not failed.

use crate::build::{
    browser_entry, optimize, wasm_pack_build, wasm_pack_build_floor, wasm_pack_build_sse, Sizes,
};
use crate::process::{self, output, target_dir, MockUpstream, Server};
use crate::worker;
use edge_worker::{workerd_bin, Launch, Workerd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The deadlines the deadline-precision trials configure (ms): idle, first token, service.
const DEADLINES: (u32, u32, u32) = (100, 150, 200);

/// The client token the benchmark's workerd instances accept.
const CLIENT_TOKEN: &str = "bench-token";

/// Chunks of the `long` answer in the throughput measurement (full run, `--quick`).
const LONG_CHUNKS: (u32, u32) = (20_000, 2_000);

/// `cargo xtask bench [--quick]`.
pub fn run(args: &[String]) -> Result<(), String> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => return Err("usage: cargo xtask bench [--quick]".into()),
    };
    let root = crate::root();
    let out = target_dir().join("bench");

    println!(
        "\n==== bench: packages (release, wasm-opt -Oz) → {} ====",
        out.display()
    );
    let node_package = out.join("pkg").join("nodejs");
    let web_package = out.join("pkg").join("web");
    wasm_pack_build("nodejs", true, &node_package)?;
    optimize(&node_package, "nodejs")?;
    wasm_pack_build("web", true, &web_package)?;
    let mut sizes = optimize(&web_package, "web")?;
    let sse_package = out.join("pkg").join("sse");
    wasm_pack_build_sse("web", &sse_package)?;
    let mut sse_sizes = optimize(&sse_package, "web")?;
    // The JavaScript a browser downloads is the package's entry, bundled with the glue.
    (sizes.js, sizes.js_gzip) = browser_entry(&web_package, false)?;
    (sse_sizes.js, sse_sizes.js_gzip) = browser_entry(&sse_package, true)?;
    // Row 2c, in the full run only: the core alone (no entry of the package; its glue as built).
    // Row 7a's design floor runs a JavaScript driver of the same module in Node.
    let floor_package = out.join("pkg").join("floor");
    let floor_sizes = match quick {
        true => None,
        false => {
            wasm_pack_build_floor("web", &floor_package)?;
            Some(optimize(&floor_package, "web")?)
        }
    };
    println!("\n==== bench: edge worker bundle ====");
    let worker_dir = worker_bundle(&root, &worker::build()?, &out.join("worker"))?;

    println!("\n==== bench: mock upstream and workerd ====");
    let mock = Mock::start(quick)?;
    let long_chunks = if quick { LONG_CHUNKS.1 } else { LONG_CHUNKS.0 };
    let workers = Workers::start(&worker_dir, mock.url(), long_chunks)?;

    let config = config_json(&ConfigJson {
        quick,
        node_package: &node_package,
        web_package: &web_package,
        mock: mock.url(),
        workers: &workers,
        long_chunks,
        sizes,
        sse_sizes,
        floor_package: floor_sizes.as_ref().map(|_| floor_package.as_path()),
        floor_sizes,
    })?;
    let config_path = out.join("config.json");
    std::fs::write(&config_path, config)
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    // The load when the measurements start (the builds above are not part of it).
    let load_at_start = load_average();

    println!(
        "\n==== bench: measuring (bench/run.mjs{}) ====",
        if quick { ", --quick" } else { "" }
    );
    let measured = Command::new("node")
        .arg(root.join("bench").join("run.mjs"))
        .arg(&config_path)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start node: {e}"))?;
    drop(workers);
    drop(mock);

    let rows = String::from_utf8_lossy(&measured.stdout).into_owned();
    let machine = Machine::read(load_at_start, load_average(), quick);
    let report = format!("{}\n\n{}", machine.line(), rows.trim_end());
    println!("\n{report}");
    let results = out.join("results.md");
    std::fs::write(&results, format!("{report}\n"))
        .map_err(|e| format!("cannot write {}: {e}", results.display()))?;
    println!("\n(written to {})", results.display());
    if measured.status.success() && !rows.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "some measurements failed ({}); see the FAILED rows above",
            measured.status
        ))
    }
}

/// A private copy of the worker bundle `built` (`worker.js`, `pkg/`, the `workerd.capnp`
/// template, which binds no keys), and the pass-through proxy's files beside them.
fn worker_bundle(root: &Path, built: &Path, dir: &Path) -> Result<PathBuf, String> {
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(&pkg).map_err(|e| format!("cannot create {}: {e}", pkg.display()))?;
    let copy = |from: PathBuf, to: PathBuf| {
        std::fs::copy(&from, &to)
            .map(|_| ())
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
    };
    for file in ["llm_stream_guard.js", "llm_stream_guard_bg.wasm"] {
        copy(built.join("pkg").join(file), pkg.join(file))?;
    }
    for file in ["worker.js", "workerd.capnp"] {
        copy(built.join(file), dir.join(file))?;
    }
    for file in ["passthrough.js", "passthrough.capnp"] {
        copy(root.join("bench/workerd").join(file), dir.join(file))?;
    }
    Ok(dir.to_path_buf())
}

/// The mock upstream: a release build for the full run, the tests' debug build for `--quick`.
enum Mock {
    Debug(MockUpstream),
    Release(Server),
}

impl Mock {
    fn start(quick: bool) -> Result<Mock, String> {
        if quick {
            return MockUpstream::start("0").map(Mock::Debug);
        }
        let root = crate::root();
        process::run(
            "cargo",
            &[
                "build",
                "--release",
                "--quiet",
                "--package",
                "mock-upstream",
            ],
            &root,
        )?;
        let binary = target_dir().join("release").join("mock-upstream");
        Server::start(
            "mock-upstream",
            &binary,
            &["--port", "0"],
            Duration::from_secs(30),
        )
        .map(Mock::Release)
    }

    fn url(&self) -> &str {
        match self {
            Mock::Debug(mock) => mock.url(),
            Mock::Release(server) => server.url(),
        }
    }
}

/// One running workerd instance (its URL, and its process id for its CPU time).
struct Instance {
    workerd: Workerd,
}

impl Instance {
    fn start(dir: &Path, config: &str, env: Vec<(String, String)>) -> Result<Instance, String> {
        let workerd = Launch::new(workerd_bin()?, dir)
            .config(config)
            .env(env)
            .start()?;
        Ok(Instance { workerd })
    }
}

/// The workerd instances of one run (each stopped by its own id when dropped).
struct Workers {
    idle: Instance,
    first_token: Instance,
    service: Instance,
    main: Instance,
    passthrough: Instance,
}

impl Workers {
    fn start(dir: &Path, mock: &str, long_chunks: u32) -> Result<Workers, String> {
        let (idle_ms, first_token_ms, service_ms) = DEADLINES;
        let scenario =
            |name: &str, query: &str| format!("{mock}/scenario/{name}/v1/chat/completions?{query}");
        // One provider per deadline, so that a timeout ends the call instead of failing over.
        let guarded = |url: String, timeouts: String| -> Vec<(String, String)> {
            vec![
                (
                    "LSG_PROVIDERS".into(),
                    format!(r#"[{{"name":"mock","url":"{url}","model":"bench"}}]"#),
                ),
                ("LSG_CLIENT_TOKENS".into(), CLIENT_TOKEN.into()),
                ("LSG_TIMEOUTS".into(), timeouts),
                ("LSG_RETRY".into(), r#"{"maxRetries":0}"#.into()),
            ]
        };
        let idle = Instance::start(
            dir,
            "workerd.capnp",
            guarded(
                scenario("stall-after-chunks", "chunks=1"),
                format!(r#"{{"idleMs":{idle_ms}}}"#),
            ),
        )?;
        let first_token = Instance::start(
            dir,
            "workerd.capnp",
            guarded(
                scenario("keepalive-forever", "keepalive_ms=20"),
                format!(r#"{{"firstTokenMs":{first_token_ms}}}"#),
            ),
        )?;
        let service = Instance::start(
            dir,
            "workerd.capnp",
            guarded(
                scenario("endless", "delay_ms=20"),
                format!(r#"{{"serviceMs":{service_ms}}}"#),
            ),
        )?;
        let long = scenario("long", &format!("n={long_chunks}"));
        let normal = scenario("normal", "tag=worker");
        let providers = format!(
            r#"[{{"name":"long","url":"{long}","model":"long"}},{{"name":"normal","url":"{normal}","model":"normal"}},{{"name":"endless","url":"{}","model":"endless"}},{{"name":"stall","url":"{}","model":"stall"}},{{"name":"load","url":"{}","model":"load"}}]"#,
            scenario("endless", "delay_ms=20&tag=wk-cancel"),
            scenario("stall-after-chunks", "chunks=1&tag=wk-stall"),
            // Departures under load (row 4i): the pace of the worker suite's load test.
            scenario("endless", "delay_ms=50&tag=wk-load"),
        );
        let main = Instance::start(
            dir,
            "workerd.capnp",
            vec![
                ("LSG_PROVIDERS".into(), providers),
                ("LSG_CLIENT_TOKENS".into(), CLIENT_TOKEN.into()),
                ("LSG_RETRY".into(), r#"{"maxRetries":0}"#.into()),
            ],
        )?;
        let upstreams = format!(
            r#"{{"long":"{long}","normal":"{}","endless":"{}","stall":"{}"}}"#,
            scenario("normal", "tag=passthrough"),
            scenario("endless", "delay_ms=20&tag=pt-cancel"),
            scenario("stall-after-chunks", "chunks=1&tag=pt-stall"),
        );
        let passthrough = Instance::start(
            dir,
            "passthrough.capnp",
            vec![("UPSTREAMS".into(), upstreams)],
        )?;
        Ok(Workers {
            idle,
            first_token,
            service,
            main,
            passthrough,
        })
    }
}

/// The 1-minute load average (`/proc/loadavg`), if readable.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What the table's first line says about the machine and the run.
struct Machine {
    cpus: usize,
    cpu_model: String,
    node: String,
    chromium: String,
    load_at_start: Option<f64>,
    load_at_end: Option<f64>,
    quick: bool,
    date: String,
}

impl Machine {
    fn read(load_at_start: Option<f64>, load_at_end: Option<f64>, quick: bool) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let trimmed = |text: Option<String>| {
            text.map(|t| t.trim().to_owned())
                .unwrap_or_else(|| "unknown".into())
        };
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".into()),
            node: trimmed(output("node", &["--version"])),
            chromium: trimmed(output("chromium", &["--version"]).map(|v| chromium_version(&v))),
            load_at_start,
            load_at_end,
            quick,
            date: trimmed(output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])),
        }
    }

    fn line(&self) -> String {
        let load = |l: Option<f64>| l.map_or("?".to_owned(), |l| format!("{l:.2}"));
        let run = if self.quick {
            "`--quick` run (small inputs; figures are not judged)"
        } else {
            "full run"
        };
        format!(
            "**{run}**, {}: {} CPUs ({}), Node {}, Chromium {}; load average (1 min) {} at start, {} at end",
            self.date,
            self.cpus,
            self.cpu_model,
            self.node,
            self.chromium,
            load(self.load_at_start),
            load(self.load_at_end),
        )
    }
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

/// `156.0.8078.108` from `Chromium 156.0.8078.108 built on Debian …`.
fn chromium_version(text: &str) -> String {
    text.split_whitespace()
        .find(|word| word.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .unwrap_or(text.trim())
        .to_owned()
}

/// What `bench/run.mjs` is told.
struct ConfigJson<'a> {
    quick: bool,
    node_package: &'a Path,
    web_package: &'a Path,
    mock: &'a str,
    workers: &'a Workers,
    long_chunks: u32,
    sizes: Sizes,
    sse_sizes: Sizes,
    /// Row 2c's (`None` in `--quick`).
    floor_sizes: Option<Sizes>,
    /// The core-only module's `web` build, for row 7a's design floor (`None` in `--quick`).
    floor_package: Option<&'a Path>,
}

fn config_json(c: &ConfigJson<'_>) -> Result<String, String> {
    let path = |p: &Path| {
        p.to_str()
            .map(json_string)
            .ok_or_else(|| format!("{} is not UTF-8", p.display()))
    };
    let instance = |i: &Instance| {
        format!(
            r#"{{"url":{},"pid":{}}}"#,
            json_string(&i.workerd.url()),
            i.workerd.pid()
        )
    };
    let w = c.workers;
    let (idle_ms, first_token_ms, service_ms) = DEADLINES;
    let sizes = |s: Sizes| {
        format!(
            r#"{{"wasmBeforeOpt":{},"wasm":{},"wasmGzip":{},"js":{},"jsGzip":{}}}"#,
            s.wasm_before_opt, s.wasm, s.wasm_gzip, s.js, s.js_gzip
        )
    };
    Ok(format!(
        concat!(
            r#"{{"quick":{},"nodePackage":{},"webPackage":{},"mock":{},"longN":{},"#,
            r#""deadlines":{{"idleMs":{},"firstTokenMs":{},"serviceMs":{}}},"#,
            r#""workers":{{"idle":{},"firstToken":{},"service":{},"main":{},"passthrough":{}}},"#,
            r#""sizes":{},"sseSizes":{},"floorSizes":{},"floorPackage":{}}}"#,
        ),
        c.quick,
        path(c.node_package)?,
        path(c.web_package)?,
        json_string(c.mock),
        c.long_chunks,
        idle_ms,
        first_token_ms,
        service_ms,
        instance(&w.idle),
        instance(&w.first_token),
        instance(&w.service),
        instance(&w.main),
        instance(&w.passthrough),
        sizes(c.sizes),
        sizes(c.sse_sizes),
        c.floor_sizes.map_or_else(|| "null".to_owned(), sizes),
        c.floor_package.map_or(Ok("null".to_owned()), path)?,
    ))
}

/// A JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_cpu_and_the_chromium_version() {
        let cpuinfo =
            "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(cpu_model("processor: 0\n"), None);
        assert_eq!(
            chromium_version("Chromium 156.0.8078.108 built on Debian GNU/Linux 12 (bookworm)\n"),
            "156.0.8078.108"
        );
    }

    #[test]
    fn the_machine_line_names_the_run_and_the_load() {
        let machine = Machine {
            cpus: 2,
            cpu_model: "Xeon".into(),
            node: "v20.20.2".into(),
            chromium: "156.0".into(),
            load_at_start: Some(0.5),
            load_at_end: None,
            quick: true,
            date: "2026-11-25 17:00 UTC".into(),
        };
        let line = machine.line();
        assert!(line.contains("`--quick` run"), "{line}");
        assert!(
            line.contains("2 CPUs (Xeon), Node v20.20.2, Chromium 156.0"),
            "{line}"
        );
        assert!(line.ends_with("0.50 at start, ? at end"), "{line}");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string(r#"/a "b"\c"#), r#""/a \"b\"\\c""#);
        assert_eq!(json_string("x\ny"), r#""x\u000ay""#);
    }
}
