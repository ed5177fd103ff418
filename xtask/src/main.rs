//! Development tasks for llm-stream-guard: `cargo xtask <task>`.
//!
//! Every task that needs tools begins with the same idempotent set-up, which installs what is
//! missing and skips what is present, so a fresh machine needs nothing but Rust and this
//! repository. Run `cargo xtask help` for the list.

mod process;
mod setup;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
cargo xtask <task>

  demo     set up, then start the mock upstream and print how to try it (Ctrl-C stops it)
  test     set up, then run every test: native core and mock upstream, and the wasm tests in
           headless Chromium, Firefox and Node; prints a summary line
  setup    only the set-up: wasm32 target, wasm-pack, wasm-bindgen-cli (the Cargo.lock version),
           Chromium + chromedriver, Firefox + geckodriver, npm packages (package-lock.json)
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
        "demo" => setup::run().and_then(|()| demo()),
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

/// For now the demo is the mock upstream on its own: start it and say how to use it.
fn demo() -> Result<(), String> {
    let port = std::env::var("LSG_PORT").unwrap_or_else(|_| "0".into());
    let mock = process::MockUpstream::start(&port)?;
    let url = mock.url();
    println!();
    println!("mock upstream listening on {url}");
    println!("try a streamed answer:");
    println!(
        "  curl -N -X POST {url}/v1/chat/completions -H 'Content-Type: application/json' \\\n    \
         -d '{{\"model\":\"mock/model\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}],\"stream\":true}}'"
    );
    println!("or a misbehaving one (silence after three chunks), paced at 200 ms:");
    println!(
        "  curl -N -X POST '{url}/scenario/stall-after-chunks/v1/chat/completions?delay_ms=200' \\\n    \
         -H 'Content-Type: application/json' -d '{{\"messages\":[]}}'"
    );
    println!("scenarios and parameters: curl {url}/");
    println!("the connection ledger:    curl {url}/_ledger");
    println!("Ctrl-C stops it.");
    process::wait_for_termination();
    drop(mock);
    Ok(())
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
