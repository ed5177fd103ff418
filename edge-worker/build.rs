//! Marks the workerd tests ignored, with the reason, on a machine that cannot run them.
//!
//! The tests need the workerd binary and a worker bundle; the harness builds the bundle itself
//! when wasm-pack, wasm-bindgen-cli (the `Cargo.lock` version) and the wasm32 target are here.
//! When something is missing, this script sets `lsg_skip` (and `lsg_no_workerd` when workerd is
//! what is missing: the harness's own check needs nothing else), which the tests turn into
//! `#[ignore = "<reason>"]`, and says exactly what is missing in a build warning. With
//! `LSG_WORKER_DIR` set (`cargo xtask test` sets it after building the bundle) nothing is ever
//! skipped: a missing piece then fails the tests.

#[path = "src/probe.rs"]
#[allow(dead_code)]
mod probe;

use probe::{Bundle, Plan};
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("edge-worker lives one level below the workspace root");
    println!("cargo::rustc-check-cfg=cfg(lsg_skip)");
    println!("cargo::rustc-check-cfg=cfg(lsg_no_workerd)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/probe.rs");
    for name in [
        "LSG_WORKER_DIR",
        "WORKERD_BIN",
        "CARGO_TARGET_DIR",
        "PATH",
        "CARGO_HOME",
        "HOME",
    ] {
        println!("cargo::rerun-if-env-changed={name}");
    }

    let plan = Plan::find(root);
    if matches!(plan.bundle, Ok(Bundle::Given(_))) {
        return;
    }
    // Look again when the tools or the bundle appear (a path that does not exist makes cargo
    // run this script on every build, which is what is wanted while something is missing).
    let watch = |path: &Path| println!("cargo::rerun-if-changed={}", path.display());
    watch(&root.join("Cargo.lock"));
    match &plan.workerd {
        Ok(bin) => watch(bin),
        Err(_) => watch(&root.join("node_modules/.bin/workerd")),
    }
    let cargo_bin = probe::cargo_bin().unwrap_or_default();
    for tool in ["wasm-pack", "wasm-bindgen"] {
        watch(&probe::find_program(tool).unwrap_or_else(|| cargo_bin.join(tool)));
    }
    // Without the tools to build it, an existing bundle is used as it is: watch it, and the
    // wasm32 target whose arrival would make it buildable.
    let bundle_dir = match &plan.bundle {
        Ok(Bundle::Build { .. } | Bundle::Given(_)) => None,
        Ok(Bundle::Existing { dir, .. }) => Some(dir.clone()),
        Err(_) => Some(probe::worker_dir(root)),
    };
    if let Some(dir) = bundle_dir {
        for file in probe::BUNDLE_FILES {
            watch(&dir.join(file));
        }
        if let Some(sysroot) = probe::sysroot() {
            watch(&sysroot.join("lib/rustlib/wasm32-unknown-unknown/lib"));
        }
    }

    if plan.workerd.is_err() {
        println!("cargo::rustc-cfg=lsg_no_workerd");
    }
    if plan.skip_reason().is_some() {
        println!("cargo::rustc-cfg=lsg_skip");
    }
    if let Some(reason) = plan.skip_reason() {
        println!(
            "cargo::warning=the workerd tests (edge-worker/tests) will be ignored: {reason}. {}.",
            probe::HOW_TO_RUN
        );
    }
}
