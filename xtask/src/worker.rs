//! `cargo xtask worker`: build the edge worker and run it in workerd on 127.0.0.1.
//!
//! The build goes to `target/edge-worker/`: the wasm package for the `web` target in `pkg/`, a
//! copy of `edge-worker/worker.js`, and `workerd.capnp` made from `edge-worker/workerd.capnp`
//! with a binding for every `apiKeyEnv` named in `LSG_PROVIDERS`. workerd reads every binding
//! from its environment under the same name, so the variables the README lists configure it.

use crate::process::{self, target_dir};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Build the worker bundle and return its folder.
pub fn build() -> Result<PathBuf, String> {
    let root = crate::root();
    let out = target_dir().join("edge-worker");
    let pkg = out.join("pkg");
    process::run(
        "wasm-pack",
        &[
            "build",
            "--release",
            "--target",
            "web",
            "--no-pack",
            "--out-dir",
            path_str(&pkg)?,
            "--out-name",
            "llm_stream_guard",
            "--",
            "--features",
            "worker",
        ],
        &root,
    )?;
    std::fs::copy(root.join("edge-worker/worker.js"), out.join("worker.js"))
        .map_err(|e| format!("copy worker.js: {e}"))?;
    write_config(
        &root,
        &out,
        &std::env::var("LSG_PROVIDERS").unwrap_or_default(),
    )?;
    // Also next to wrangler.toml, for `wrangler deploy`.
    let deploy_pkg = root.join("edge-worker/pkg");
    std::fs::create_dir_all(&deploy_pkg).map_err(|e| e.to_string())?;
    for file in ["llm_stream_guard.js", "llm_stream_guard_bg.wasm"] {
        std::fs::copy(pkg.join(file), deploy_pkg.join(file))
            .map_err(|e| format!("copy {file}: {e}"))?;
    }
    Ok(out)
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
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

fn write_config(root: &Path, out: &Path, providers_json: &str) -> Result<(), String> {
    let config = config_text(root, providers_json, None)?;
    std::fs::write(out.join("workerd.capnp"), config)
        .map_err(|e| format!("write workerd.capnp: {e}"))
}

/// The workerd config: the template with a binding per `apiKeyEnv` and, when `site` is given,
/// an `ASSETS` service serving that folder (the demo page).
pub fn config_text(
    root: &Path,
    providers_json: &str,
    site: Option<&Path>,
) -> Result<String, String> {
    let template = std::fs::read_to_string(root.join("edge-worker/workerd.capnp"))
        .map_err(|e| format!("read workerd.capnp: {e}"))?;
    let mut bindings: Vec<String> = api_key_env_names(providers_json)
        .iter()
        .filter(|name| !name.starts_with("LSG_"))
        .map(|name| format!("(name = \"{name}\", fromEnvironment = \"{name}\"),"))
        .collect();
    let mut services = Vec::new();
    if let Some(site) = site {
        let path = site
            .to_str()
            .ok_or("the site path is not UTF-8")?
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        services.push(format!(
            "(name = \"site\", disk = (path = \"{path}\", writable = false)),"
        ));
        bindings.push("(name = \"ASSETS\", service = \"site\"),".into());
    }
    Ok(template
        .replace("# {{EXTRA_BINDINGS}}", &bindings.join("\n    "))
        .replace("# {{EXTRA_SERVICES}}", &services.join("\n    ")))
}

/// A running workerd, stopped (by its own process id) on drop.
pub struct Workerd {
    child: Child,
    port: u16,
}

impl Workerd {
    /// Start workerd on 127.0.0.1:`port` (0 = a free port) and wait until `/healthz` answers.
    pub fn start(dir: &Path, port: u16) -> Result<Workerd, String> {
        Workerd::start_with(dir, "workerd.capnp", port, &[])
    }

    /// [`Workerd::start`] with another config file in `dir` and extra environment variables.
    pub fn start_with(
        dir: &Path,
        config: &str,
        port: u16,
        env: &[(String, String)],
    ) -> Result<Workerd, String> {
        let port = if port == 0 { free_port()? } else { port };
        let workerd = crate::root().join("node_modules/.bin/workerd");
        let child = Command::new(&workerd)
            .args([
                "serve",
                config,
                "--socket-addr",
                &format!("http=127.0.0.1:{port}"),
            ])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(dir)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", workerd.display()))?;
        let mut running = Workerd { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if healthz(port) {
                return Ok(running);
            }
            if let Ok(Some(status)) = running.child.try_wait() {
                return Err(format!("workerd exited during start-up ({status})"));
            }
            if Instant::now() > deadline {
                return Err("workerd did not answer /healthz within 30 s".into());
            }
            // Start-up readiness of a separate process: poll briefly.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("[workerd] stopped (pid {})", self.child.id());
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn healthz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
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
    if std::env::var_os("LSG_PROVIDERS").is_none() {
        return Err(
            "set LSG_PROVIDERS (a JSON array of {name, url, model, apiKeyEnv?}) first".into(),
        );
    }
    let workerd = Workerd::start(&dir, port_from_env()?)?;
    println!("listening on {}", workerd.url());
    process::wait_for_termination();
    drop(workerd);
    Ok(())
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

/// `LSG_PORT` (default 8787; 0 means any free port), for `cargo xtask worker` and `demo`.
pub fn port_from_env() -> Result<u16, String> {
    let port = std::env::var("LSG_PORT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "8787".into());
    port.parse()
        .map_err(|_| format!("LSG_PORT must be a port number (got {port:?})"))
}
