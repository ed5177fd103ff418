//! The idempotent set-up every task begins with: install what is missing, skip what is present.
//!
//! What it installs and from where (nothing is downloaded by URL; only package registries):
//! - the `wasm32-unknown-unknown` target (rustup)
//! - `wasm-pack` and `geckodriver` (crates.io, `cargo install --locked`)
//! - `wasm-bindgen-cli` at exactly the `wasm-bindgen` version in `Cargo.lock` (crates.io; without
//!   `--locked`, whose pinned webpki-roots is missing from the registry)
//! - Chromium, chromedriver and Firefox ESR (Debian packages, `apt-get`), and `python3-venv`
//!   where `python3` cannot make a venv
//! - the npm packages in `package-lock.json` (`npm ci`)
//! - a Python virtual environment in `target/py-venv` with the Python `openai` SDK at exactly
//!   [`PYTHON_OPENAI_VERSION`] (PyPI, `pip`), for the `sdk` suite; without a `python3` that
//!   can make one (after apt) the set-up fails and says so
//!
//! The apt installs run on a second thread while the cargo installs run one after another.

use crate::process::{self, output, run_env, succeeds};
use std::path::{Path, PathBuf};
use std::time::Instant;

const WASM_PACK_VERSION: &str = "0.15.1";
const GECKODRIVER_VERSION: &str = "0.37.1";

/// The Python `openai` package the `sdk` suite runs against the edge worker (pinned exactly).
pub const PYTHON_OPENAI_VERSION: &str = "3.57.0";

/// Run the whole set-up, printing one line per step and the time it took.
pub fn run() -> Result<(), String> {
    let started = Instant::now();
    let root = crate::root();

    let apt = std::thread::spawn(browsers);

    let target_result = wasm_target();
    let cargo_result = target_result
        .and_then(|()| cargo_tool("wasm-pack", "wasm-pack", WASM_PACK_VERSION, true))
        .and_then(|()| wasm_bindgen_cli(&root))
        .and_then(|()| cargo_tool("geckodriver", "geckodriver", GECKODRIVER_VERSION, true));
    let npm_result = npm_packages(&root);
    let apt_result = apt
        .join()
        .unwrap_or_else(|_| Err("the apt thread panicked".into()));
    // After apt: it installs python3-venv where the machine's python3 lacks it.
    let python_result = python_venv(&root);

    cargo_result?;
    npm_result?;
    python_result?;
    apt_result?;
    println!("set-up: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn step(name: &str, present: bool) -> bool {
    if present {
        println!("set-up: {name}: present");
    } else {
        println!("set-up: {name}: installing");
    }
    present
}

fn wasm_target() -> Result<(), String> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if step(
        "wasm32-unknown-unknown target",
        installed
            .lines()
            .any(|l| l.trim() == "wasm32-unknown-unknown"),
    ) {
        return Ok(());
    }
    process::run(
        "rustup",
        &["target", "add", "wasm32-unknown-unknown"],
        &crate::root(),
    )
}

/// The first word after the program name in `--version` output, e.g. `wasm-pack 0.15.1`.
fn tool_version(program: &str) -> Option<String> {
    let text = output(program, &["--version"]).or_else(|| {
        let in_cargo_bin = cargo_bin().join(program);
        output(in_cargo_bin.to_str()?, &["--version"])
    })?;
    text.split_whitespace()
        .nth(1)
        .map(|v| v.trim_start_matches('v').to_owned())
}

/// `~/.cargo/bin` (or `$CARGO_HOME/bin`).
pub fn cargo_bin() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
        .join("bin")
}

fn cargo_tool(program: &str, krate: &str, version: &str, locked: bool) -> Result<(), String> {
    let have = tool_version(program);
    if step(&format!("{program} {version}"), have.is_some()) {
        return Ok(());
    }
    let mut args = vec!["install", krate, "--version", version];
    if locked {
        args.push("--locked");
    }
    process::run("cargo", &args, &crate::root())
}

/// The `wasm-bindgen` version pinned in `Cargo.lock`.
pub fn locked_wasm_bindgen_version(root: &Path) -> Result<String, String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    locked_version(&lock, "wasm-bindgen")
        .ok_or_else(|| "Cargo.lock has no wasm-bindgen package".into())
}

use edge_worker::locked_version;

fn wasm_bindgen_cli(root: &Path) -> Result<(), String> {
    let wanted = locked_wasm_bindgen_version(root)?;
    let have = tool_version("wasm-bindgen");
    if step(
        &format!("wasm-bindgen-cli {wanted}"),
        have.as_deref() == Some(wanted.as_str()),
    ) {
        return Ok(());
    }
    // Not --locked: its lockfile pins a webpki-roots version the registry no longer has.
    process::run(
        "cargo",
        &[
            "install",
            "wasm-bindgen-cli",
            "--version",
            &wanted,
            "--force",
        ],
        root,
    )
}

fn browsers() -> Result<(), String> {
    let wanted = [
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
        ("firefox-esr", "firefox-esr"),
    ];
    let mut missing: Vec<&str> = wanted
        .iter()
        .filter(|(program, _)| !succeeds("sh", &["-c", &format!("command -v {program}")]))
        .map(|(_, package)| *package)
        .collect();
    if !python_has_venv() {
        missing.extend(["python3", "python3-venv"]);
    }
    if step(
        "chromium, chromedriver, firefox-esr, python3-venv (apt)",
        missing.is_empty(),
    ) {
        return Ok(());
    }
    let root = crate::root();
    let sudo = output("id", &["-u"]).is_none_or(|id| id.trim() != "0");
    let apt = |args: &[&str]| -> Result<(), String> {
        let env = [("DEBIAN_FRONTEND", "noninteractive")];
        if sudo {
            let mut with = vec!["apt-get"];
            with.extend_from_slice(args);
            run_env("sudo", &with, &root, &env)
        } else {
            run_env("apt-get", args, &root, &env)
        }
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq"];
    install.extend(missing.iter().copied());
    apt(&install)
}

/// `npm ci`, unless `node_modules` already matches `package-lock.json`.
fn npm_packages(root: &Path) -> Result<(), String> {
    let lock = root.join("package-lock.json");
    let Ok(wanted) = std::fs::read(&lock) else {
        return Err("package-lock.json is missing".into());
    };
    let stamp = root.join("node_modules").join(".xtask-package-lock.json");
    let present = std::fs::read(&stamp).is_ok_and(|have| have == wanted);
    if step("npm packages (package-lock.json)", present) {
        return Ok(());
    }
    process::run("npm", &["ci", "--no-audit", "--no-fund"], root)?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}

/// Whether `python3` can make a virtual environment with pip in it.
fn python_has_venv() -> bool {
    succeeds("python3", &["-c", "import venv, ensurepip"])
}

/// The virtual environment the Python SDK tests run in (under `target/`, so git ignores it).
pub fn python_venv_dir(root: &Path) -> PathBuf {
    root.join("target").join("py-venv")
}

/// The requirement the venv is made from, also its stamp (a changed pin reinstalls).
fn python_requirement() -> String {
    format!("openai=={PYTHON_OPENAI_VERSION}")
}

/// `python3 -m venv target/py-venv` and `pip install openai==<pinned>`, unless the venv's
/// stamp already says that requirement. No `python3` is an error, never a silent skip.
fn python_venv(root: &Path) -> Result<(), String> {
    let venv = python_venv_dir(root);
    let stamp = venv.join(".xtask-requirement");
    let wanted = python_requirement();
    let present = std::fs::read_to_string(&stamp).is_ok_and(|have| have == wanted)
        && venv.join("bin").join("python").exists();
    if step(
        &format!("Python venv with {wanted} (target/py-venv)"),
        present,
    ) {
        return Ok(());
    }
    if !python_has_venv() {
        return Err(
            "python3 with its venv and ensurepip modules is needed for the Python SDK tests \
             (Debian: apt-get install python3 python3-venv)"
                .into(),
        );
    }
    let venv_arg = venv.display().to_string();
    process::run("python3", &["-m", "venv", "--clear", &venv_arg], root)?;
    let pip = venv.join("bin").join("pip").display().to_string();
    process::run(
        &pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            &wanted,
        ],
        root,
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_python_sdk_is_pinned_exactly() {
        assert_eq!(
            super::python_requirement(),
            format!("openai=={}", super::PYTHON_OPENAI_VERSION)
        );
        assert!(super::PYTHON_OPENAI_VERSION
            .split('.')
            .all(|p| p.parse::<u32>().is_ok()));
    }

    #[test]
    fn finds_the_exact_package_not_a_prefix_of_it() {
        let lock = "[[package]]\nname = \"wasm-bindgen-futures\"\nversion = \"0.4.1\"\n\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(
            super::locked_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(super::locked_version(lock, "js-sys"), None);
    }
}
