//! `cargo xtask build`: the npm package `llm-stream-guard`, size-tuned, with a size table.
//!
//! One package for every environment, in `<target-dir>/pkg/llm-stream-guard`, assembled from:
//! - `wasm-pack build --release --target web` (into `<target-dir>/pkg/wasm-bindgen-web`), then
//!   the npm `binaryen` package's `wasm-opt -Oz` on its `_bg.wasm` (wasm-pack's own wasm-opt is
//!   off in `Cargo.toml`: it would try to download binaryen);
//! - the hand-written entries in `npm/` (`browser.js`, `workerd.js`, `node.js`, `node.mjs`), each
//!   bundled by esbuild with the wasm-bindgen glue it imports (whitespace and syntax minified,
//!   names kept): `browser.js` (ESM), `workerd.js` (ESM, imports the `.wasm` as a module),
//!   `node.cjs` (CommonJS) and `node.mjs` (its ESM face), all sharing the one `.wasm`;
//! - the types: wasm-bindgen's `.d.ts` (the hand-written `src/web/llm-stream-guard.d.ts` plus the
//!   generated classes) without its loader section, plus `npm/init.d.ts`, as `index.d.ts` and
//!   `index.d.cts`;
//! - `npm/package.json` (the exports map), `npm/README.md`, `LICENSE-MIT`, `LICENSE-APACHE`;
//! - the parser-only entry `llm-stream-guard/sse`: a second module built with the crate's
//!   feature `sse-only` (only `SseParser`'s bindings; `wasm-pack --out-name
//!   llm_stream_guard_sse`, into `<target-dir>/pkg/wasm-bindgen-sse`, the same `wasm-opt -Oz`),
//!   its entries `npm/sse-*.js` bundled as the main ones are (`sse.js`, `sse-workerd.js`,
//!   `sse.cjs`, `sse.mjs`), and `sse.d.ts`/`sse.d.cts`: the generated class, whose option and
//!   event types are the main entry's, imported from `index.d.ts`.
//!
//! Then `npm pack` writes `<target-dir>/pkg/llm-stream-guard-<version>.tgz`, and one table shows
//! raw and gzipped bytes of the `.wasm` and of the JavaScript each environment loads, and the
//! tarball's size. The release profile itself (opt-level, LTO, ...) is in the root `Cargo.toml`.

use crate::process::{run, target_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// The package's name on npm (and of its folder under `<target-dir>/pkg`).
pub const PACKAGE_NAME: &str = "llm-stream-guard";

/// The name wasm-bindgen gives the module and its glue (the crate's name).
const OUT_NAME: &str = "llm_stream_guard";

/// The name of the parser-only module and its glue (`llm-stream-guard/sse`).
const SSE_OUT_NAME: &str = "llm_stream_guard_sse";

/// The crate feature that builds the parser-only module.
pub const SSE_FEATURE: &str = "sse-only";

/// The name of the core-only module (`cargo xtask bench`'s row 2c, not part of the package).
const FLOOR_OUT_NAME: &str = "llm_stream_guard_floor";

/// The crate feature that builds the core-only module: the size floor of the core alone, with
/// no driver (`src/core_floor.rs`).
pub const FLOOR_FEATURE: &str = "core-floor";

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

/// The built package and its tarball.
#[derive(Debug, Clone)]
pub struct Package {
    /// `<target-dir>/pkg/llm-stream-guard`.
    pub dir: PathBuf,
    /// The tarball `npm pack` wrote.
    pub tarball: PathBuf,
    /// The tarball's size in bytes.
    pub packed: u64,
    /// The size of the files in it, unpacked.
    pub unpacked: u64,
    /// What each environment loads: (environment, its sizes).
    pub rows: Vec<(&'static str, Sizes)>,
}

/// The entries: (environment, source in `npm/`, file in the package, how esbuild bundles it).
/// `None` as the format means the file is copied as it is.
const ENTRIES: [(&str, &str, &str, Option<&[&str]>); 4] = [
    (
        "browser",
        "browser.js",
        "browser.js",
        Some(&["--format=esm"]),
    ),
    (
        "workerd",
        "workerd.js",
        "workerd.js",
        Some(&["--format=esm", "--external:./llm_stream_guard_bg.wasm"]),
    ),
    (
        "node",
        "node.js",
        "node.cjs",
        // The glue's default loader (never called here, and dropped as unused) names
        // `import.meta.url`; the package check below makes sure none is left.
        Some(&[
            "--format=cjs",
            "--platform=node",
            "--log-override:empty-import-meta=silent",
        ]),
    ),
    ("node", "node.mjs", "node.mjs", None),
];

/// The parser-only entry's files, as [`ENTRIES`] (environment names end in `/sse`).
const SSE_ENTRIES: [(&str, &str, &str, Option<&[&str]>); 4] = [
    (
        "browser /sse",
        "sse-browser.js",
        "sse.js",
        Some(&["--format=esm"]),
    ),
    (
        "workerd /sse",
        "sse-workerd.js",
        "sse-workerd.js",
        Some(&["--format=esm", "--external:./llm_stream_guard_sse_bg.wasm"]),
    ),
    (
        "node /sse",
        "sse-node.js",
        "sse.cjs",
        Some(&[
            "--format=cjs",
            "--platform=node",
            "--log-override:empty-import-meta=silent",
        ]),
    ),
    ("node /sse", "sse-node.mjs", "sse.mjs", None),
];

/// `cargo xtask build`.
pub fn run_task(args: &[String]) -> Result<(), String> {
    if !args.is_empty() {
        return Err("usage: cargo xtask build (builds the one npm package; no options)".into());
    }
    let package = build_package()?;
    println!();
    print!("{}", table(&package.rows));
    println!("\n{}", tarball_line(&package));
    Ok(())
}

/// The tarball in one line: name, packed and unpacked bytes.
pub fn tarball_line(package: &Package) -> String {
    format!(
        "npm pack: {} — {} bytes packed ({:.1} KB), {} bytes unpacked ({:.1} KB)",
        package.tarball.display(),
        package.packed,
        package.packed as f64 / 1000.0,
        package.unpacked,
        package.unpacked as f64 / 1000.0,
    )
}

/// `<target-dir>/pkg/llm-stream-guard`.
pub fn package_dir() -> PathBuf {
    target_dir().join("pkg").join(PACKAGE_NAME)
}

/// Build the release package into [`package_dir`] and pack it.
pub fn build_package() -> Result<Package, String> {
    let root = crate::root();
    let staging = target_dir().join("pkg").join("wasm-bindgen-web");
    let dir = package_dir();
    println!("\n==== {PACKAGE_NAME} → {} ====", dir.display());
    wasm_pack_build("web", true, &staging)?;
    let staged_wasm = staging.join(format!("{OUT_NAME}_bg.wasm"));
    let wasm_before_opt = file_len(&staged_wasm)?;
    wasm_opt(&staged_wasm)?;
    let sse_staging = target_dir().join("pkg").join("wasm-bindgen-sse");
    wasm_pack_build_sse("web", &sse_staging)?;
    let sse_staged_wasm = sse_staging.join(format!("{SSE_OUT_NAME}_bg.wasm"));
    let sse_wasm_before_opt = file_len(&sse_staged_wasm)?;
    wasm_opt(&sse_staged_wasm)?;

    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let npm = root.join("npm");
    // The entries import the glue as `./llm_stream_guard.js`: bundle them from next to it.
    for source in ["api.js", "browser.js", "workerd.js", "node.js", "node.mjs"] {
        copy(&npm.join(source), &staging.join(source))?;
    }
    for (_, source, file, format) in ENTRIES {
        match format {
            Some(flags) => bundle(&staging.join(source), &dir.join(file), flags)?,
            None => copy(&staging.join(source), &dir.join(file))?,
        }
    }
    let wasm = dir.join(format!("{OUT_NAME}_bg.wasm"));
    copy(&staged_wasm, &wasm)?;
    let types = package_types(
        &read(&staging.join(format!("{OUT_NAME}.d.ts")))?,
        &read(&npm.join("init.d.ts"))?,
    )?;
    write(&dir.join("index.d.ts"), &types)?;
    write(&dir.join("index.d.cts"), &types)?;

    for source in [
        "sse-api.js",
        "sse-browser.js",
        "sse-workerd.js",
        "sse-node.js",
        "sse-node.mjs",
    ] {
        copy(&npm.join(source), &sse_staging.join(source))?;
    }
    for (_, source, file, format) in SSE_ENTRIES {
        match format {
            Some(flags) => bundle(&sse_staging.join(source), &dir.join(file), flags)?,
            None => copy(&sse_staging.join(source), &dir.join(file))?,
        }
    }
    let sse_wasm = dir.join(format!("{SSE_OUT_NAME}_bg.wasm"));
    copy(&sse_staged_wasm, &sse_wasm)?;
    let sse_generated = read(&sse_staging.join(format!("{SSE_OUT_NAME}.d.ts")))?;
    write(
        &dir.join("sse.d.ts"),
        &sse_types(&sse_generated, "./index.js")?,
    )?;
    write(
        &dir.join("sse.d.cts"),
        &sse_types(&sse_generated, "./index.cjs")?,
    )?;
    let manifest = read(&npm.join("package.json"))?;
    check_version(&manifest, &read(&root.join("Cargo.toml"))?)?;
    write(&dir.join("package.json"), &manifest)?;
    copy(&npm.join("README.md"), &dir.join("README.md"))?;
    for license in ["LICENSE-MIT", "LICENSE-APACHE"] {
        copy(&root.join(license), &dir.join(license))?;
    }
    check_package(&dir, &manifest)?;

    let mut rows = Vec::new();
    for environment in ["browser", "workerd", "node"] {
        let mut sizes = Sizes {
            wasm_before_opt,
            wasm: file_len(&wasm)?,
            wasm_gzip: gzip_len(&wasm)?,
            ..Sizes::default()
        };
        for (_, _, file, _) in ENTRIES.iter().filter(|e| e.0 == environment) {
            sizes.js += file_len(&dir.join(file))?;
            sizes.js_gzip += gzip_len(&dir.join(file))?;
        }
        rows.push((environment, sizes));
    }
    for environment in ["browser /sse", "workerd /sse", "node /sse"] {
        let mut sizes = Sizes {
            wasm_before_opt: sse_wasm_before_opt,
            wasm: file_len(&sse_wasm)?,
            wasm_gzip: gzip_len(&sse_wasm)?,
            ..Sizes::default()
        };
        for (_, _, file, _) in SSE_ENTRIES.iter().filter(|e| e.0 == environment) {
            sizes.js += file_len(&dir.join(file))?;
            sizes.js_gzip += gzip_len(&dir.join(file))?;
        }
        rows.push((environment, sizes));
    }
    let (tarball, packed, unpacked) = npm_pack(&dir)?;
    Ok(Package {
        dir,
        tarball,
        packed,
        unpacked,
        rows,
    })
}

/// The package's types: wasm-bindgen's `.d.ts` for the `web` target without its loader section
/// (`InitInput`, `initSync`, the default `__wbg_init`: they name DOM and `WebAssembly` types, and
/// the package loads itself), followed by the package's own `init` declarations.
pub fn package_types(generated: &str, init: &str) -> Result<String, String> {
    const LOADER: &str = "\nexport type InitInput";
    let at = generated
        .find(LOADER)
        .ok_or("wasm-bindgen's .d.ts has no `export type InitInput` (its loader section moved?)")?;
    let api = generated[..at].trim_end();
    if api.contains("initSync") || api.contains("__wbg_init") {
        return Err("wasm-bindgen's .d.ts names its loader before `InitInput`".into());
    }
    Ok(format!("{api}\n{init}"))
}

/// The parser-only entry's types: the generated `SseParser` class (wasm-bindgen's `.d.ts` of the
/// `sse-only` build, without its loader section) and the main entry's types it names, imported
/// from `main` (`./index.js` for `sse.d.ts`, `./index.cjs` for `sse.d.cts`), so both entries
/// share one declaration of each.
pub fn sse_types(generated: &str, main: &str) -> Result<String, String> {
    let api = package_types(generated, "")?;
    if !api.contains("export class SseParser") {
        return Err("the sse-only build's .d.ts declares no `SseParser` class".into());
    }
    let extra = api
        .lines()
        .filter_map(|l| {
            l.strip_prefix("export function ")
                .or(l.strip_prefix("export class "))
        })
        .filter_map(|rest| rest.split(['(', ' ', '<']).next())
        .find(|name| *name != "SseParser");
    if let Some(name) = extra {
        return Err(format!(
            "the sse-only build exports `{name}`: only `SseParser` belongs to it"
        ));
    }
    Ok(format!(
        "// `llm-stream-guard/sse`: `SseParser` alone. Its option, event and error types are the main\n\
         // entry's, imported from it.\n\
         import type {{ SseEvent, SseParserOptions }} from \"{main}\";\n\
         export type {{ SseEvent, SseParserOptions, GuardError, GuardErrorKind }} from \"{main}\";\n\n\
         {}\n",
        api.trim_end()
    ))
}

/// `npm/package.json` must carry the crate's version.
fn check_version(manifest: &str, cargo_toml: &str) -> Result<(), String> {
    let version = cargo_toml
        .split("\n[package]")
        .nth(1)
        .and_then(|section| {
            section
                .lines()
                .take_while(|l| !l.starts_with('['))
                .find_map(|l| l.trim().strip_prefix("version = "))
        })
        .map(|v| v.trim().trim_matches('"').to_owned())
        .ok_or("Cargo.toml has no [package] version")?;
    if manifest.contains(&format!("\"version\": \"{version}\"")) {
        Ok(())
    } else {
        Err(format!(
            "npm/package.json must have \"version\": \"{version}\" (the crate's version)"
        ))
    }
}

/// The package folder holds exactly what `package.json` ships, and the entries are what they
/// must be: the browser entry finds the `.wasm` next to itself the way bundlers understand, and
/// the Node and workerd entries never reach for `import.meta`.
fn check_package(dir: &Path, manifest: &str) -> Result<(), String> {
    let mut expected: Vec<String> = ["package.json", "README.md"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let files = manifest
        .split("\"files\":")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .ok_or("npm/package.json has no \"files\" list")?;
    expected.extend(files.split('"').skip(1).step_by(2).map(str::to_owned));
    expected.sort();
    let mut present: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    present.sort();
    if present != expected {
        return Err(format!(
            "the package holds {present:?}, but package.json ships {expected:?}"
        ));
    }
    for (file, name) in [("browser.js", OUT_NAME), ("sse.js", SSE_OUT_NAME)] {
        if !read(&dir.join(file))?
            .contains(&format!("new URL(\"./{name}_bg.wasm\",import.meta.url)"))
        {
            return Err(format!(
                "{file} does not load its .wasm with new URL(\"./…\", import.meta.url)"
            ));
        }
    }
    for file in ["node.cjs", "workerd.js", "sse.cjs", "sse-workerd.js"] {
        if read(&dir.join(file))?.contains("import.meta") {
            return Err(format!("{file} refers to import.meta"));
        }
    }
    Ok(())
}

/// Bundle `entry` with what it imports into `outfile` with the npm `esbuild` package.
fn bundle(entry: &Path, outfile: &Path, flags: &[&str]) -> Result<(), String> {
    let esbuild = crate::root().join("node_modules/.bin/esbuild");
    let entry = entry.display().to_string();
    let outfile = format!("--outfile={}", outfile.display());
    let mut args = vec![
        entry.as_str(),
        "--bundle",
        // Identifiers are kept: class and function names stay readable in stack traces and
        // consoles (renaming them too would save 0.5 KB gzipped). The doc comments live in the
        // `.d.ts`.
        "--minify-whitespace",
        "--minify-syntax",
        "--log-level=warning",
        outfile.as_str(),
    ];
    args.extend_from_slice(flags);
    run(&esbuild.display().to_string(), &args, &crate::root())
}

/// `npm pack` the package folder into its parent: (tarball, packed bytes, unpacked bytes).
fn npm_pack(dir: &Path) -> Result<(PathBuf, u64, u64), String> {
    let destination = dir.parent().ok_or("the package folder has no parent")?;
    let out = Command::new("npm")
        .args(["pack", "--json", "--ignore-scripts", "--pack-destination"])
        .arg(destination)
        .current_dir(dir)
        .env("npm_config_update_notifier", "false")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start npm: {e}"))?;
    if !out.status.success() {
        return Err(format!("npm pack failed ({})", out.status));
    }
    let json = String::from_utf8_lossy(&out.stdout);
    let filename = json_field(&json, "filename")
        .map(|v| v.trim_matches('"').to_owned())
        .ok_or("npm pack printed no filename")?;
    let number = |name: &str| -> Result<u64, String> {
        json_field(&json, name)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("npm pack printed no {name}"))
    };
    Ok((
        destination.join(filename),
        number("size")?,
        number("unpackedSize")?,
    ))
}

/// The raw value of the first `"name": value` in a JSON text (a string keeps its quotes).
pub fn json_field<'a>(json: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":");
    let rest = json[json.find(&key)? + key.len()..].trim_start();
    let end = match rest.strip_prefix('"') {
        Some(string) => string.find('"')? + 2,
        None => rest.find([',', '}', '\n']).unwrap_or(rest.len()),
    };
    Some(rest[..end].trim())
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
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

/// `wasm-pack build --release` of the parser-only module (feature [`SSE_FEATURE`], named
/// `llm_stream_guard_sse`) for one target.
pub fn wasm_pack_build_sse(target: &str, out_dir: &Path) -> Result<(), String> {
    wasm_pack_build_feature(target, out_dir, SSE_OUT_NAME, SSE_FEATURE)
}

/// `wasm-pack build --release` of the core-only module (feature [`FLOOR_FEATURE`], named
/// `llm_stream_guard_floor`) for one target: `cargo xtask bench`'s row 2c.
pub fn wasm_pack_build_floor(target: &str, out_dir: &Path) -> Result<(), String> {
    wasm_pack_build_feature(target, out_dir, FLOOR_OUT_NAME, FLOOR_FEATURE)
}

/// `wasm-pack build --release` of the crate with `feature` (and no other), named `out_name`.
fn wasm_pack_build_feature(
    target: &str,
    out_dir: &Path,
    out_name: &str,
    feature: &str,
) -> Result<(), String> {
    let out = out_dir.display().to_string();
    run(
        "wasm-pack",
        &[
            "build",
            "--release",
            "--target",
            target,
            "--out-dir",
            &out,
            "--out-name",
            out_name,
            "--",
            "--features",
            feature,
        ],
        &crate::root(),
    )
}

/// `wasm-opt -Oz` (the npm `binaryen` package's) on one `.wasm`, in place.
pub fn wasm_opt(wasm: &Path) -> Result<(), String> {
    let wasm_opt = crate::root().join("node_modules/.bin/wasm-opt");
    let path = wasm.display().to_string();
    let mut args = vec![
        "-Oz",
        // Repeat the passes until the module stops shrinking: -0.2 KB raw, -0.3 KB gzipped on
        // the web module, decode speed the same within noise (README, section "Size").
        // `--flatten --rereloop` before it would take 0.6 KB more but left Chromium's decode
        // possibly slower, and `--low-memory-unused`/`--traps-never-happen` assume things about
        // the program that a size gain of 0.4 KB does not justify.
        "--converge",
        "--strip-debug",
        "--strip-producers",
        "--strip-target-features",
    ];
    args.extend(WASM_FEATURES);
    args.extend([path.as_str(), "-o", path.as_str()]);
    run(&wasm_opt.display().to_string(), &args, &crate::root())
}

/// Run `wasm-opt -Oz` on a wasm-pack output's `_bg.wasm` in place (and, for the `web` target,
/// minify its JS glue as the npm package's is) and measure it (the benchmarks' own builds).
pub fn optimize(out_dir: &Path, target: &str) -> Result<Sizes, String> {
    let wasm = files_with_suffix(out_dir, "_bg.wasm")?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no _bg.wasm in {}", out_dir.display()))?;
    let before = file_len(&wasm)?;
    wasm_opt(&wasm)?;
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

/// The browser entry of the package (`browser.js`, or `sse.js` with `sse`) bundled as
/// `cargo xtask build` bundles it, from a wasm-pack `web` output in `out_dir` (whose glue it
/// imports), into `out_dir/<entry>`; returns (bytes, `gzip -9` bytes): the JavaScript a browser
/// downloads for that entry (the benchmarks' size rows).
pub fn browser_entry(out_dir: &Path, sse: bool) -> Result<(u64, u64), String> {
    let npm = crate::root().join("npm");
    let entries = if sse { &SSE_ENTRIES } else { &ENTRIES };
    let (_, source, file, flags) = entries[0];
    let api = if sse { "sse-api.js" } else { "api.js" };
    for name in [api, source] {
        copy(&npm.join(name), &out_dir.join(name))?;
    }
    let outfile = out_dir.join("entry").join(file);
    bundle(
        &out_dir.join(source),
        &outfile,
        flags.ok_or("the browser entry is bundled")?,
    )?;
    Ok((file_len(&outfile)?, gzip_len(&outfile)?))
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
        "| environment | .wasm before wasm-opt | .wasm | .wasm gzip | JS | JS gzip |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for (environment, s) in rows {
        text.push_str(&format!(
            "| {environment} | {} | {} | {} | {} | {} |\n",
            s.wasm_before_opt, s.wasm, s.wasm_gzip, s.js, s.js_gzip
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_one_row_per_environment() {
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

    #[test]
    fn the_types_lose_the_loader_and_gain_init() {
        let generated = "export function generate(): void;\n\nexport type InitInput = RequestInfo;\nexport function initSync(m: SyncInitInput): InitOutput;\n";
        let types = package_types(generated, "\nexport function init(): Promise<void>;\n").unwrap();
        assert_eq!(
            types,
            "export function generate(): void;\n\nexport function init(): Promise<void>;\n"
        );
        assert!(package_types("export function generate(): void;\n", "").is_err());
    }

    #[test]
    fn the_sse_types_are_the_class_and_the_main_entrys_types() {
        let generated = "export class SseParser {\n  push(bytes: Uint8Array): SseEvent[];\n}\n\nexport type InitInput = RequestInfo;\n";
        let types = sse_types(generated, "./index.cjs").unwrap();
        assert!(types.contains("import type { SseEvent, SseParserOptions } from \"./index.cjs\";"));
        assert!(types.contains("export class SseParser {"));
        assert!(!types.contains("InitInput"));
        let more = "export class SseParser {}\nexport function generate(): void;\n\nexport type InitInput = X;\n";
        assert!(sse_types(more, "./index.js")
            .unwrap_err()
            .contains("`generate`"));
        assert!(sse_types(
            "export function f(): void;\n\nexport type InitInput = X;\n",
            "./index.js"
        )
        .is_err());
    }

    #[test]
    fn reads_npm_pack_json_fields() {
        let json = "[\n  {\n    \"id\": \"llm-stream-guard@0.1.0\",\n    \"size\": 71234,\n    \"unpackedSize\": 250000,\n    \"filename\": \"llm-stream-guard-0.1.0.tgz\",\n    \"files\": []\n  }\n]\n";
        assert_eq!(json_field(json, "size"), Some("71234"));
        assert_eq!(json_field(json, "unpackedSize"), Some("250000"));
        assert_eq!(
            json_field(json, "filename"),
            Some("\"llm-stream-guard-0.1.0.tgz\"")
        );
        assert_eq!(json_field(json, "missing"), None);
    }

    #[test]
    fn the_manifest_must_carry_the_crate_version() {
        let cargo = "[workspace]\nmembers = []\n\n[package]\nname = \"x\"\nversion = \"0.3.1\"\n\n[dependencies]\nversion = \"9\"\n";
        assert!(check_version("{ \"version\": \"0.3.1\" }", cargo).is_ok());
        assert!(check_version("{ \"version\": \"0.3.0\" }", cargo).is_err());
    }
}
