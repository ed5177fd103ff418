//! Development tasks for llm-stream-guard: `cargo xtask <task>`.
//!
//! Every task that needs tools begins with the same idempotent set-up, which installs what is
//! missing and skips what is present, so a fresh machine needs nothing but Rust and this
//! repository. Run `cargo xtask help` for the list.

mod bench;
mod build;
mod demo;
mod process;
mod setup;
mod test;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <task>

  demo     set up, build, start the mock upstream and the edge worker serving the demo page;
           prints `open http://127.0.0.1:<port>/` (LSG_PORT, default 8787); Ctrl-C stops it all
  test     set up, then run every suite below, one after another; prints a table per suite and
           a line `N passed, N failed, N skipped`; `--only <suite>` runs one suite:
             native       `cargo test --workspace` but edge-worker: the pure core (SSE parser,
                          chunk decoder, deadlines, policy, answers), the mock upstream, xtask
             chrome       `wasm-pack test --headless --chrome`: the wasm tests (generate(),
                          Session, SseParser) in headless Chromium against the mock upstream
             firefox      the same wasm tests in headless Firefox
             node         the same wasm tests in Node
             types        `tsc` on tests/types against the packed package's .d.ts, with the
                          DOM lib and with lib es2022 alone (never skipLibCheck)
             workerd      edge-worker/tests: the edge worker in real workerd against the mock
                          upstream; a test fails on any unhandled rejection or uncaught
                          exception workerd reports during it
             install      the one npm package, packed, installed from the tarball into a
                          Node ESM and a Node CJS project, a Vite app without wasm plugin
                          (built, and under the dev server), a webpack 5 app, a static page
                          and a workerd worker, each running the first example (tests/install)
             sdk          the real SDKs pinned in package.json (openai, the AI SDK,
                          @anthropic-ai/sdk) with guardFetch() against the mock upstream, and
                          openai, the AI SDK, Python openai (a venv in target/py-venv), openai
                          in Chromium across origins and wrangler (under the pinned Node 22)
                          against the edge worker in workerd (tests/sdk)
             e2e          the demo stack driven in headless Chromium by playwright-core
                          (tests/e2e): answer, fallback, Cancel, Drop connection, accessibility
             bench-quick  `cargo xtask bench --quick`: every benchmark row on small inputs
           (plain `cargo test` needs no set-up: the workerd tests build the worker themselves
           when wasm-pack and wasm-bindgen-cli are installed, and are otherwise ignored with the
           reason)
  build    set up, then build the one npm package (release, `wasm-opt -Oz`) into
           target/pkg/llm-stream-guard, pack it (target/pkg/llm-stream-guard-0.1.0.tgz) and print
           the sizes per environment, raw and gzipped
  setup    only the set-up: wasm32 target, wasm-pack, wasm-bindgen-cli (the Cargo.lock version),
           Chromium + chromedriver, Firefox + geckodriver, npm packages (package-lock.json),
           the Python venv the sdk suite's Python openai runs in (target/py-venv)
  worker   set up, build the edge worker and run it in workerd on 127.0.0.1 (LSG_PORT, default
           8787; 0 = any free port), configured by LSG_PROVIDERS, LSG_CLIENT_TOKENS,
           LSG_ALLOWED_ORIGINS, LSG_MODELS, LSG_TIMEOUTS, LSG_RETRY, LSG_HEARTBEAT_MS, LSG_GUARD;
           `--build` only builds (target/edge-worker, and edge-worker/pkg for wrangler)
  bench    set up, then measure throughput against eventsource-parser (parser alone and
           end to end over a real fetch), size (main and parser-only entry), deadline precision,
           cancel latency, memory, worker overhead, concurrency and guardFetch() inside the openai
           SDK against the SDK alone (`LSG_BENCH_ONLY=decode,memory` picks rows by name prefix);
           prints one Markdown table and writes target/bench/results.md; `--quick` runs every row
           on small inputs
  fuzz     run the SSE parser fuzz target (needs the nightly toolchain; installs cargo-fuzz);
           `cargo xtask fuzz --seconds 60`
  help     this text
";

/// The repository root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the root")
        .to_path_buf()
}

fn main() -> ExitCode {
    // Tools installed by `cargo install` must be found by the commands the tasks run.
    let bin = setup::cargo_bin();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if !paths.contains(&bin) {
        paths.insert(0, bin);
        std::env::set_var("PATH", std::env::join_paths(paths).expect("valid PATH"));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "setup" => setup::run(),
        "test" => setup::run().and_then(|()| test::run(rest)),
        "build" => setup::run().and_then(|()| build::run_task(rest)),
        "demo" => setup::run().and_then(|()| demo::run()),
        "worker" => setup::run().and_then(|()| worker::run(rest)),
        "bench" => setup::run().and_then(|()| bench::run(rest)),
        "fuzz" => fuzz(rest),
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown task {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask {task}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Run the parser's libFuzzer target for a bounded time.
fn fuzz(args: &[String]) -> Result<(), String> {
    let seconds = match args {
        [flag, value] if flag == "--seconds" => value
            .parse::<u32>()
            .map_err(|_| format!("--seconds wants a number, got {value:?}"))?,
        [] => 60,
        _ => return Err("usage: cargo xtask fuzz [--seconds N]".into()),
    };
    if !process::succeeds("cargo", &["+nightly", "--version"]) {
        return Err(
            "the fuzz target needs the nightly toolchain (rustup toolchain install nightly)".into(),
        );
    }
    if !process::succeeds("cargo", &["fuzz", "--version"]) {
        process::run("cargo", &["install", "cargo-fuzz", "--locked"], &root())?;
    }
    process::run(
        "cargo",
        &[
            "+nightly",
            "fuzz",
            "run",
            "sse_parser",
            "--",
            &format!("-max_total_time={seconds}"),
        ],
        &root(),
    )
}

#[cfg(test)]
mod tests {
    use super::HELP;

    /// The lines of the `test` task's suite list: `  <name>  <what it runs>`.
    fn listed_suites() -> Vec<&'static str> {
        HELP.lines()
            .skip_while(|l| !l.starts_with("  test "))
            .take_while(|l| !l.starts_with("  build "))
            .filter(|l| l.starts_with("             ") && !l.starts_with("              "))
            .filter_map(|l| l.split_whitespace().next())
            .collect()
    }

    #[test]
    fn help_lists_every_suite_with_what_it_runs() {
        let listed = listed_suites();
        for suite in crate::test::suite_names() {
            assert!(
                listed.contains(&suite),
                "`cargo xtask help` does not list the suite {suite:?} (it lists {listed:?})"
            );
        }
        for line in HELP.lines() {
            assert!(line.len() <= 100, "help line too long: {line:?}");
        }
    }
}
