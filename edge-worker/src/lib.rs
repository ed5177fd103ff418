//! The edge worker's workerd launcher and test harness.
//!
//! [`Launch`] (in `launch.rs`) is the one way this workspace runs workerd: on 127.0.0.1, from a
//! config template with a binding per variable given, on a socket bound here (port 0 or a
//! fixed one), stopped by its own process id when dropped, and, for tests, failing on every
//! unhandled rejection or uncaught exception workerd reports. `cargo xtask` (worker, demo,
//! bench) depends on this crate for it.
//!
//! The rest serves the tests in `tests/`: where the worker bundle and workerd are, and
//! [`Workerd::start`], which runs the bundle with exactly the `LSG_*` configuration given.
//!
//! - `LSG_WORKER_DIR`: a built bundle to use as it is (`cargo xtask test` builds one and sets
//!   it). Without it, the harness builds the bundle into `<target>/edge-worker` itself, once
//!   per test run, when wasm-pack, wasm-bindgen-cli (the `Cargo.lock` version) and the wasm32
//!   target are here; without those tools, a bundle built earlier is used as it is. When neither
//!   works, the build script (`build.rs`) has marked the tests ignored and said why.
//! - `WORKERD_BIN`: the workerd binary (default `<workspace>/node_modules/.bin/workerd`, which
//!   `npm ci` installs, else `workerd` on the `PATH`).

#![warn(missing_docs)]

mod launch;
mod probe;

/// The version of a package in a `Cargo.lock` text (shared with xtask's set-up).
pub use probe::locked_version;

pub use launch::{
    get, healthz, lsg_env, reports_unhandled, with_bindings, with_observer, with_site, Launch,
    Workerd, OBSERVER_JS, READY_TIMEOUT, UNHANDLED_PATH,
};
pub use probe::{Bundle, Plan, HOW_TO_RUN};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The workspace root (the folder above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("edge-worker lives one level below the workspace root")
        .to_path_buf()
}

/// The worker bundle's folder: `LSG_WORKER_DIR`, else `<target>/edge-worker`.
pub fn worker_dir() -> PathBuf {
    probe::worker_dir(&workspace_root())
}

/// The workerd binary: `WORKERD_BIN`, else `<workspace>/node_modules/.bin/workerd`, else
/// `workerd` on the `PATH`.
pub fn workerd_bin() -> Result<PathBuf, String> {
    probe::workerd_bin(&workspace_root())
}

/// Checks that `dir` holds a built worker bundle; the error says how to build one.
pub fn check_bundle(dir: &Path) -> Result<(), String> {
    let missing = probe::missing_bundle_files(dir);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the edge worker is not built in {} (missing {}): run `cargo xtask worker --build` \
             first (or point LSG_WORKER_DIR at a built bundle)",
            dir.display(),
            missing.join(", ")
        ))
    }
}

/// The worker bundle for this test run: the given one, or built (once per process) by
/// [`build_bundle`], or the one built earlier when the tools to rebuild it are missing.
pub fn bundle() -> Result<PathBuf, String> {
    static BUNDLE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let root = workspace_root();
            match Plan::find(&root).bundle? {
                Bundle::Given(dir) => Ok(dir),
                Bundle::Build { dir, wasm_pack } => {
                    build_bundle(&root, &dir, &wasm_pack)?;
                    Ok(dir)
                }
                Bundle::Existing { dir, missing_tools } => {
                    say(&format!(
                        "edge-worker tests: using the worker bundle in {} as it is: it cannot \
                         be rebuilt here (missing {}), so it may be older than the sources",
                        dir.display(),
                        missing_tools.join(", ")
                    ));
                    Ok(dir)
                }
            }
        })
        .clone()
}

/// A line on the test process's standard error, past the test harness's output capture (for
/// what the person running the tests should see even when every test passes).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Builds the worker bundle into `dir` (`cargo xtask worker --build` builds it with this too):
/// the wasm package (`--target web`, feature `worker`) in `pkg/`, and copies of
/// `edge-worker/worker.js` and `edge-worker/workerd.capnp` (the launcher adds the bindings).
pub fn build_bundle(root: &Path, dir: &Path, wasm_pack: &Path) -> Result<(), String> {
    say(&format!(
        "edge-worker: building the worker bundle into {} (wasm-pack, release, feature \
         `worker`; minutes the first time)",
        dir.display()
    ));
    let pkg = dir.join("pkg");
    let status = Command::new(wasm_pack)
        .args([
            "--log-level",
            "warn",
            "build",
            "--release",
            "--target",
            "web",
        ])
        .args(["--no-pack", "--out-name", "llm_stream_guard", "--out-dir"])
        .arg(&pkg)
        .args(["--", "--features", "worker"])
        .current_dir(root)
        .env("PATH", probe::search_path())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot start {}: {e}", wasm_pack.display()))?;
    if !status.success() {
        return Err(format!(
            "building the worker bundle failed ({status}): `{} build --release --target web \
             --out-dir {} -- --features worker`",
            wasm_pack.display(),
            pkg.display()
        ));
    }
    for file in ["worker.js", "workerd.capnp"] {
        std::fs::copy(root.join("edge-worker").join(file), dir.join(file))
            .map_err(|e| format!("copy edge-worker/{file} to {}: {e}", dir.display()))?;
    }
    check_bundle(dir)
}

impl Workerd {
    /// Start the worker from the [`bundle`] with [`workerd_bin`], with exactly `env` as its
    /// `LSG_*` configuration (inherited `LSG_*` variables are removed), checking for unhandled
    /// errors, and wait for `/healthz`.
    pub fn start(env: &[(&str, &str)]) -> Result<Workerd, String> {
        let dir = bundle()?;
        check_bundle(&dir)?;
        Launch::new(workerd_bin()?, dir)
            .env(env.iter().copied())
            .check_unhandled()
            .start()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bundle_says_how_to_build_it() {
        let err = check_bundle(Path::new("/nonexistent/edge-worker")).unwrap_err();
        assert!(err.contains("cargo xtask worker --build"), "{err}");
    }
}
