//! `cargo xtask worker`: build the edge worker and run it in workerd on 127.0.0.1.
//!
//! The build goes to `target/edge-worker/`: the wasm package for the `web` target in `pkg/` and
//! copies of `edge-worker/worker.js` and `edge-worker/workerd.capnp` (built by the edge-worker
//! crate, as its tests build it). workerd is started by that crate's launcher
//! ([`edge_worker::Launch`]), with this process's `LSG_*` variables and the key of every
//! `apiKeyEnv` named in `LSG_PROVIDERS`, each bound under its own name, so the variables the
//! README lists configure it.

use crate::process::{self, target_dir};
use edge_worker::{lsg_env, workerd_bin, Launch};
use std::path::{Path, PathBuf};

/// Build the worker bundle and return its folder.
pub fn build() -> Result<PathBuf, String> {
    let root = crate::root();
    let out = target_dir().join("edge-worker");
    edge_worker::build_bundle(&root, &out, Path::new("wasm-pack"))?;
    // Also next to wrangler.toml, for `wrangler deploy`.
    let deploy_pkg = root.join("edge-worker/pkg");
    std::fs::create_dir_all(&deploy_pkg).map_err(|e| e.to_string())?;
    for file in ["llm_stream_guard.js", "llm_stream_guard_bg.wasm"] {
        std::fs::copy(out.join("pkg").join(file), deploy_pkg.join(file))
            .map_err(|e| format!("copy {file}: {e}"))?;
    }
    Ok(out)
}

/// Every `"apiKeyEnv": "NAME"` in a providers JSON text (names only: letters, digits, `_`).
pub fn api_key_env_names(providers_json: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = providers_json;
    while let Some(at) = rest.find("\"apiKeyEnv\"") {
        rest = &rest[at + "\"apiKeyEnv\"".len()..];
        let value = rest
            .trim_start()
            .strip_prefix(':')
            .map(str::trim_start)
            .and_then(|v| v.strip_prefix('"'));
        if let Some(value) = value {
            let name: String = value
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && value[name.len()..].starts_with('"') && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// `cargo xtask worker [--build]`: build, then (without `--build`) run until Ctrl-C.
pub fn run(args: &[String]) -> Result<(), String> {
    let build_only = match args {
        [] => false,
        [flag] if flag == "--build" => true,
        _ => return Err("usage: cargo xtask worker [--build]".into()),
    };
    let dir = build()?;
    if build_only {
        println!("worker built in {}", dir.display());
        return Ok(());
    }
    let Ok(providers) = std::env::var("LSG_PROVIDERS") else {
        return Err(
            "set LSG_PROVIDERS (a JSON array of {name, url, model, apiKeyEnv?}) first".into(),
        );
    };
    let keys = api_key_env_names(&providers)
        .into_iter()
        .filter(|name| !name.starts_with("LSG_"))
        .filter_map(|name| std::env::var(&name).ok().map(|key| (name, key)));
    let workerd = Launch::new(workerd_bin()?, &dir)
        .env(lsg_env())
        .env(keys)
        .port(port_from_env()?)
        .start()?;
    println!("listening on {}", workerd.url());
    process::wait_for_termination();
    drop(workerd);
    Ok(())
}

/// `LSG_PORT` (default 8787; 0 means any free port), for `cargo xtask worker` and `demo`.
pub fn port_from_env() -> Result<u16, String> {
    let port = std::env::var("LSG_PORT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "8787".into());
    port.parse()
        .map_err(|_| format!("LSG_PORT must be a port number (got {port:?})"))
}

#[cfg(test)]
mod tests {
    use super::api_key_env_names;

    #[test]
    fn finds_the_key_variable_names() {
        let json = r#"[{"name":"a","apiKeyEnv":"OPENROUTER_API_KEY"},{"apiKeyEnv" : "LOCAL_KEY"},{"apiKeyEnv":"OPENROUTER_API_KEY"},{"apiKeyEnv":"bad name"}]"#;
        assert_eq!(api_key_env_names(json), ["OPENROUTER_API_KEY", "LOCAL_KEY"]);
        assert!(api_key_env_names("[]").is_empty());
    }
}
