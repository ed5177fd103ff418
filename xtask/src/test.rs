//! `cargo xtask test`: every suite, one after another, then one summary.
//!
//! Suites: the native workspace tests (`cargo test --workspace`: the pure core, the mock
//! upstream, xtask itself), then the wasm tests through `wasm-pack test` in headless Chromium,
//! headless Firefox and Node, against a mock upstream this task starts (its URL is passed as
//! `MOCK_UPSTREAM_URL`). `--only <suite>` runs one suite (native, chrome, firefox, node).

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

struct Suite {
    name: &'static str,
    program: String,
    args: Vec<&'static str>,
    env: Vec<(&'static str, String)>,
}

fn suites() -> Vec<Suite> {
    let geckodriver = cargo_bin().join("geckodriver").display().to_string();
    vec![
        Suite {
            name: "native",
            program: "cargo".into(),
            args: vec!["test", "--workspace"],
            env: vec![],
        },
        Suite {
            name: "chrome",
            program: "wasm-pack".into(),
            args: vec!["test", "--headless", "--chrome"],
            env: vec![
                ("CHROMEDRIVER", "/usr/bin/chromedriver".into()),
                ("WASM_BINDGEN_USE_BROWSER", "1".into()),
            ],
        },
        Suite {
            name: "firefox",
            program: "wasm-pack".into(),
            args: vec!["test", "--headless", "--firefox"],
            env: vec![
                ("GECKODRIVER", geckodriver),
                ("WASM_BINDGEN_USE_BROWSER", "1".into()),
            ],
        },
        Suite {
            name: "node",
            program: "wasm-pack".into(),
            args: vec!["test", "--node"],
            env: vec![],
        },
    ]
}

/// Run the suites (all, or the one `--only` names) and print the summary.
pub fn run(args: &[String]) -> Result<(), String> {
    let only = match args {
        [] => None,
        [flag, name] if flag == "--only" => Some(name.as_str()),
        _ => return Err("usage: cargo xtask test [--only native|chrome|firefox|node]".into()),
    };
    let root = crate::root();
    let selected: Vec<Suite> = suites().into_iter().filter(|s| only.is_none_or(|o| o == s.name)).collect();
    // The wasm suites talk to a real mock upstream on 127.0.0.1, started here and stopped (by its
    // own process id) when this function returns. Its address reaches the tests at compile time.
    let mock = if selected.iter().any(|s| s.program == "wasm-pack") {
        Some(MockUpstream::start("0")?)
    } else {
        None
    };
    let mock_url = mock.as_ref().map(|m| m.url().to_owned()).unwrap_or_default();
    let mut rows = Vec::new();
    let mut total = Counts::default();
    let mut broken = Vec::new();
    for suite in suites()
        .into_iter()
        .filter(|s| only.is_none_or(|o| o == s.name))
    {
        println!(
            "\n==== {} ({} {}) ====",
            suite.name,
            suite.program,
            suite.args.join(" ")
        );
        let started = Instant::now();
        let mut child = Command::new(&suite.program)
            .args(&suite.args)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", target_dir())
            .env("MOCK_UPSTREAM_URL", &mock_url)
            .envs(suite.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", suite.program))?;
        let mut counts = Counts::default();
        let mut result_lines = 0;
        for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
            let Ok(line) = line else { break };
            println!("{line}");
            if let Some(c) = parse_result_line(&line) {
                counts.add(c);
                result_lines += 1;
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() || result_lines == 0 {
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
}
