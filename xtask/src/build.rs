//! `cargo xtask build`: the npm packages, size-tuned, with a size table.
//!
//! For each target (`web`, `bundler`, `nodejs`; all three unless `--target` names one):
//! `wasm-pack build --release --target <t> --out-dir <target-dir>/pkg/<t>` (the crate's own
//! name: the package is `llm-stream-guard`), then the npm `binaryen` package's `wasm-opt -Oz`
//! on the `_bg.wasm` in place (wasm-pack's own wasm-opt is off in `Cargo.toml`: it would try to
//! download binaryen). Then one table: raw and gzipped bytes of the `.wasm` and of the JS glue.
//! The release profile itself (opt-level, LTO, ...) is in the root `Cargo.toml`.

use crate::process::{run, target_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The wasm-bindgen targets a package is built for.
pub const TARGETS: [&str; 3] = ["web", "bundler", "nodejs"];

/// The WebAssembly features the module may use: what rustc enables by default for
/// `wasm32-unknown-unknown` and what wasm-bindgen's output relies on (externref tables,
/// multi-value returns). `wasm-opt` refuses a module using a feature it was not told about;
/// the module's `target_features` section names only some of them (`memory.copy` needs bulk
/// memory, float-to-int casts need the non-trapping ones).
pub const WASM_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Sizes of one built package.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The `_bg.wasm` as wasm-bindgen wrote it.
    pub wasm_before_opt: u64,
    /// The `_bg.wasm` after `wasm-opt -Oz`.
    pub wasm: u64,
    /// The same, gzipped (`gzip -9`).
    pub wasm_gzip: u64,
    /// Every `.js` file of the package (the glue), summed.
    pub js: u64,
    /// The same files, each gzipped, summed.
    pub js_gzip: u64,
}

/// `cargo xtask build [--target web|bundler|nodejs]`.
pub fn run_task(args: &[String]) -> Result<(), String> {
    let targets: Vec<&str> = match args {
        [] => TARGETS.to_vec(),
        [flag, name] if flag == "--target" && TARGETS.contains(&name.as_str()) => {
            vec![name.as_str()]
        }
        _ => return Err("usage: cargo xtask build [--target web|bundler|nodejs]".into()),
    };
    let mut rows = Vec::new();
    for target in targets {
        let out_dir = package_dir(target);
        println!("\n==== {target} → {} ====", out_dir.display());
        wasm_pack_build(target, true, &out_dir)?;
        let sizes = optimize(&out_dir, target)?;
        rows.push((target, sizes));
    }
    println!();
    print!("{}", table(&rows));
    Ok(())
}

/// Where the package for `target` goes: `<target-dir>/pkg/<target>`.
pub fn package_dir(target: &str) -> PathBuf {
    crate::root().join(target_dir()).join("pkg").join(target)
}

/// `wasm-pack build` of the root crate for one target (`--release` or `--dev`).
pub fn wasm_pack_build(target: &str, release: bool, out_dir: &Path) -> Result<(), String> {
    let out = out_dir.display().to_string();
    let profile = if release { "--release" } else { "--dev" };
    run(
        "wasm-pack",
        &["build", profile, "--target", target, "--out-dir", &out],
        &crate::root(),
    )
}

/// Run `wasm-opt -Oz` on the package's `_bg.wasm` in place (and, for the `web` target, minify
/// its JS glue) and measure the package.
///
/// The `web` package is loaded by browsers as it is (`<script type="module">`), so its glue is
/// shipped minified (esbuild: whitespace and syntax, names kept; an ES module): the comments wasm-bindgen copies from the Rust
/// docs stay in the `.d.ts`, where editors read them. The `bundler` package is minified by the
/// app's bundler, and the `nodejs` one is not downloaded.
pub fn optimize(out_dir: &Path, target: &str) -> Result<Sizes, String> {
    let wasm = files_with_suffix(out_dir, "_bg.wasm")?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no _bg.wasm in {}", out_dir.display()))?;
    let wasm_opt = crate::root()
        .join("node_modules")
        .join(".bin")
        .join("wasm-opt");
    let before = file_len(&wasm)?;
    let path = wasm.display().to_string();
    let mut args = vec![
        "-Oz",
        "--strip-debug",
        "--strip-producers",
        "--strip-target-features",
    ];
    args.extend(WASM_FEATURES);
    args.extend([path.as_str(), "-o", path.as_str()]);
    run(&wasm_opt.display().to_string(), &args, &crate::root())?;
    if target == "web" {
        minify_glue(out_dir)?;
    }
    let mut sizes = Sizes {
        wasm_before_opt: before,
        wasm: file_len(&wasm)?,
        wasm_gzip: gzip_len(&wasm)?,
        ..Sizes::default()
    };
    for js in files_with_suffix(out_dir, ".js")? {
        sizes.js += file_len(&js)?;
        sizes.js_gzip += gzip_len(&js)?;
    }
    Ok(sizes)
}

/// Minify every `.js` file of a package in place with the npm `esbuild` package.
fn minify_glue(out_dir: &Path) -> Result<(), String> {
    let esbuild = crate::root()
        .join("node_modules")
        .join(".bin")
        .join("esbuild");
    for js in files_with_suffix(out_dir, ".js")? {
        let path = js.display().to_string();
        let outfile = format!("--outfile={path}");
        let args = [
            path.as_str(),
            // Identifiers are kept: class and function names stay readable in stack traces
            // and consoles (renaming them too would save 0.5 KB gzipped).
            "--minify-whitespace",
            "--minify-syntax",
            "--format=esm",
            "--log-level=warning",
            "--allow-overwrite",
            outfile.as_str(),
        ];
        run(&esbuild.display().to_string(), &args, &crate::root())?;
    }
    Ok(())
}

/// Files under `dir` (recursively: wasm-bindgen puts inline JS in `snippets/`) whose name ends
/// with `suffix`, sorted.
fn files_with_suffix(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            found.extend(files_with_suffix(&path, suffix)?);
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(suffix))
        {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn file_len(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The size of `gzip -9c <path>` (what a server sends with `Content-Encoding: gzip`).
fn gzip_len(path: &Path) -> Result<u64, String> {
    let out = Command::new("gzip")
        .arg("-9c")
        .arg(path)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start gzip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "gzip -9c {} failed ({})",
            path.display(),
            out.status
        ));
    }
    Ok(out.stdout.len() as u64)
}

/// The size table, as Markdown.
pub fn table(rows: &[(&str, Sizes)]) -> String {
    let mut text = String::from(
        "| target | .wasm before wasm-opt | .wasm | .wasm gzip | JS glue | JS glue gzip |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for (target, s) in rows {
        text.push_str(&format!(
            "| {target} | {} | {} | {} | {} | {} |\n",
            s.wasm_before_opt, s.wasm, s.wasm_gzip, s.js, s.js_gzip
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_row_per_target() {
        let sizes = Sizes {
            wasm_before_opt: 200,
            wasm: 150,
            wasm_gzip: 60,
            js: 30,
            js_gzip: 10,
        };
        let text = table(&[("web", sizes), ("nodejs", sizes)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2], "| web | 200 | 150 | 60 | 30 | 10 |");
        assert!(lines[3].starts_with("| nodejs |"));
    }
}
