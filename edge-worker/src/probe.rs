//! What the workerd tests need from this machine, and whether it is here: the workerd binary,
//! and a worker bundle (built already, or buildable with wasm-pack, wasm-bindgen-cli at the
//! `Cargo.lock` version and the wasm32 target).
//!
//! Shared by the harness (`src/lib.rs`) and the build script (`build.rs`, which includes this
//! file by path), so that the tests are marked ignored exactly when the harness could not run
//! them. Only `std`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder holding the worker bundle given by `LSG_WORKER_DIR`, when that is set: then the
/// bundle was built for this run (`cargo xtask test` does) and nothing is built or skipped.
pub fn given_worker_dir(root: &Path) -> Option<PathBuf> {
    env_path(root, "LSG_WORKER_DIR")
}

/// The worker bundle's folder: `LSG_WORKER_DIR`, else `<target>/edge-worker`.
pub fn worker_dir(root: &Path) -> PathBuf {
    given_worker_dir(root).unwrap_or_else(|| {
        env_path(root, "CARGO_TARGET_DIR")
            .unwrap_or_else(|| root.join("target"))
            .join("edge-worker")
    })
}

/// An environment variable as a path, relative ones taken from the workspace root.
fn env_path(root: &Path, name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(|v| root.join(PathBuf::from(v)))
}

/// The files a built bundle has.
pub const BUNDLE_FILES: [&str; 4] = [
    "workerd.capnp",
    "worker.js",
    "pkg/llm_stream_guard.js",
    "pkg/llm_stream_guard_bg.wasm",
];

/// The bundle files missing from `dir`.
pub fn missing_bundle_files(dir: &Path) -> Vec<&'static str> {
    BUNDLE_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect()
}

/// `~/.cargo/bin` (or `$CARGO_HOME/bin`), where `cargo install` puts wasm-pack and wasm-bindgen.
pub fn cargo_bin() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin"))
}

/// `PATH` with the cargo bin folder added at its end (when it is not there already).
pub fn search_path() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if let Some(bin) = cargo_bin() {
        if !dirs.contains(&bin) {
            dirs.push(bin);
        }
    }
    std::env::join_paths(dirs).unwrap_or(path)
}

/// `program` as found on [`search_path`].
pub fn find_program(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&search_path())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The workerd binary: `WORKERD_BIN`, else `<workspace>/node_modules/.bin/workerd` (the npm
/// package `npm ci` installs), else `workerd` on the `PATH`. `Err` says what was looked for.
pub fn workerd_bin(root: &Path) -> Result<PathBuf, String> {
    if let Some(bin) = env_path(root, "WORKERD_BIN") {
        return Ok(bin);
    }
    let npm = root.join("node_modules/.bin/workerd");
    if npm.is_file() {
        return Ok(npm);
    }
    find_program("workerd").ok_or_else(|| {
        format!(
            "no workerd binary ({} is missing: `npm ci` installs it; or set WORKERD_BIN)",
            npm.display()
        )
    })
}

/// The version word of `<program> --version` (`wasm-bindgen 0.2.130` gives `0.2.130`).
fn version_of(program: &Path) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(|v| v.trim_start_matches('v').to_owned())
}

/// The version of package `name` in a `Cargo.lock` text.
pub fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim().strip_prefix("version = ")?;
            return Some(version.trim_matches('"').to_owned());
        }
    }
    None
}

/// The sysroot of the rustc cargo uses (`RUSTC`, else `rustc`).
pub fn sysroot() -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Whether that rustc has the `wasm32-unknown-unknown` standard library.
fn has_wasm32_target() -> bool {
    sysroot().is_some_and(|s| s.join("lib/rustlib/wasm32-unknown-unknown/lib").is_dir())
}

/// The tools that build the bundle (wasm-pack and wasm-bindgen-cli at the `Cargo.lock`
/// version, the wasm32 target): `Ok(wasm-pack)` when all are here, else what is missing.
pub fn bundle_tools(root: &Path) -> Result<PathBuf, Vec<String>> {
    let mut missing = Vec::new();
    let wasm_pack = find_program("wasm-pack");
    if wasm_pack.is_none() {
        missing.push("wasm-pack (`cargo install wasm-pack`)".to_owned());
    }
    let wanted = std::fs::read_to_string(root.join("Cargo.lock"))
        .ok()
        .and_then(|lock| locked_version(&lock, "wasm-bindgen"));
    let have = find_program("wasm-bindgen").and_then(|p| version_of(&p));
    match (wanted, have) {
        (Some(wanted), Some(have)) if wanted == have => {}
        (Some(wanted), Some(have)) => missing.push(format!(
            "wasm-bindgen-cli {wanted} (found {have}; `cargo install wasm-bindgen-cli --version {wanted}`)"
        )),
        (Some(wanted), None) => missing.push(format!(
            "wasm-bindgen-cli {wanted} (`cargo install wasm-bindgen-cli --version {wanted}`)"
        )),
        (None, _) => missing.push("a wasm-bindgen entry in Cargo.lock".to_owned()),
    }
    if !has_wasm32_target() {
        missing.push(
            "the wasm32-unknown-unknown target (`rustup target add wasm32-unknown-unknown`)"
                .to_owned(),
        );
    }
    match wasm_pack {
        Some(wasm_pack) if missing.is_empty() => Ok(wasm_pack),
        _ => Err(missing),
    }
}

/// How the tests get their worker bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bundle {
    /// `LSG_WORKER_DIR` names it: used as it is (a missing one fails the tests).
    Given(PathBuf),
    /// Built (or brought up to date) by the harness with this wasm-pack, once per test run.
    Build {
        /// Where it goes.
        dir: PathBuf,
        /// The wasm-pack binary.
        wasm_pack: PathBuf,
    },
    /// Built earlier and not buildable now (the tools are missing): used as it is.
    Existing {
        /// Where it is.
        dir: PathBuf,
        /// The tools that would rebuild it.
        missing_tools: Vec<String>,
    },
}

/// What the workerd tests will run on, or why they cannot run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The workerd binary.
    pub workerd: Result<PathBuf, String>,
    /// The worker bundle.
    pub bundle: Result<Bundle, String>,
}

impl Plan {
    /// Looks at this machine.
    pub fn find(root: &Path) -> Plan {
        let workerd = workerd_bin(root);
        let bundle = match given_worker_dir(root) {
            Some(dir) => Ok(Bundle::Given(dir)),
            None => {
                let dir = worker_dir(root);
                match bundle_tools(root) {
                    Ok(wasm_pack) => Ok(Bundle::Build { dir, wasm_pack }),
                    Err(missing_tools) if missing_bundle_files(&dir).is_empty() => {
                        Ok(Bundle::Existing { dir, missing_tools })
                    }
                    Err(missing_tools) => Err(format!(
                        "the worker bundle is not built in {} and cannot be built here: missing {}",
                        dir.display(),
                        missing_tools.join(", ")
                    )),
                }
            }
        };
        Plan { workerd, bundle }
    }

    /// Why the tests cannot run, when they cannot: every missing piece, in one sentence.
    pub fn skip_reason(&self) -> Option<String> {
        if matches!(self.bundle, Ok(Bundle::Given(_))) {
            // Built for this run: whatever is missing is a failure, not a reason to skip.
            return None;
        }
        let reasons: Vec<&str> = [self.workerd.as_ref().err(), self.bundle.as_ref().err()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// How to run the tests when they were skipped.
pub const HOW_TO_RUN: &str =
    "`cargo xtask test --only workerd` installs what is missing, builds the worker and runs them";
