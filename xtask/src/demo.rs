//! `cargo xtask demo`: the mock upstream, and the edge worker serving the `www/` page and the
//! guarded proxy, on 127.0.0.1.
//!
//! With no key the worker's providers are the mock upstream: a local fallback (a canned answer
//! at a realistic pace, model `mock/local`) and one provider per fault scenario (model
//! `mock/<scenario>`); the page's scenario picker chooses the model, and the worker's chain puts
//! that provider first and the local fallback second. With `OPENROUTER_API_KEY` set, the first
//! provider is OpenRouter (model `LSG_OPENROUTER_MODEL`, default `openai/gpt-4o-mini`) and the
//! mock upstream is the local fallback. `LSG_PORT` picks the port (default 8787, 0 = any).

use crate::process::{self, target_dir, MockUpstream};
use crate::worker;
use edge_worker::{lsg_env, workerd_bin, Launch, Workerd};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The fault scenarios the page offers, with a label and the query that paces them.
pub const SCENARIOS: &[(&str, &str, &str)] = &[
    (
        "keepalive-forever",
        "Stalled provider: keepalives, never a token",
        "keepalive_ms=500",
    ),
    (
        "stall-after-chunks",
        "Goes silent after a few chunks",
        "chunks=6&delay_ms=120",
    ),
    ("no-headers", "Never answers the request", ""),
    (
        "http-503",
        "Overloaded: 503 with Retry-After",
        "retry_after=1",
    ),
    (
        "error-after-content",
        "Provider error mid-answer",
        "chunks=8&delay_ms=120",
    ),
    ("endless", "Never ends (try Cancel)", "delay_ms=150"),
];

/// The worker's deadlines, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Request sent → response headers.
    pub headers: u32,
    /// Request sent → first token.
    pub first_token: u32,
    /// Token → next token.
    pub idle: u32,
    /// One attempt.
    pub stream: u32,
    /// The whole call.
    pub service: u32,
}

impl Deadlines {
    /// As `LSG_TIMEOUTS` reads them.
    pub fn json(&self) -> String {
        format!(
            r#"{{"headersMs":{},"firstTokenMs":{},"idleMs":{},"streamMs":{},"serviceMs":{}}}"#,
            self.headers, self.first_token, self.idle, self.stream, self.service
        )
    }
}

/// The demo's deadlines (`LSG_TIMEOUTS` overrides them). Headers come before the first token,
/// so a provider that never answers the request shows a headers timeout, not a first-token one.
pub const DEMO_DEADLINES: Deadlines = Deadlines {
    headers: 2000,
    first_token: 3000,
    idle: 3000,
    stream: 60_000,
    service: 90_000,
};

/// The same, shortened for the end-to-end tests.
pub const TEST_DEADLINES: Deadlines = Deadlines {
    headers: 700,
    first_token: 1000,
    idle: 1000,
    stream: 20_000,
    service: 30_000,
};

/// How often the worker sends the page a keepalive comment while nothing else goes out
/// (`LSG_HEARTBEAT_MS` overrides it); the page counts them while it waits.
const HEARTBEAT_MS: &str = "500";

/// The canned answer the local fallback streams.
const LOCAL_ANSWER: &str = "This answer comes from the local fallback, streamed in small pieces at a realistic pace: the guard watched the first provider, cut it off at its deadline and moved on, so nobody waits forever for a silent stream.";

/// The whole demo, stopped (each process by its own id) on drop.
pub struct DemoStack {
    /// The mock upstream.
    pub mock: MockUpstream,
    /// workerd, serving the page and the proxy.
    pub workerd: Workerd,
}

impl DemoStack {
    /// The page's URL.
    pub fn url(&self) -> String {
        format!("{}/", self.workerd.url())
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("create {}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("read {}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest).map_err(|e| format!("copy {}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Build and start everything on `port` (0 = any free port). `timeouts_json` overrides the
/// worker's deadlines (tests use short ones).
pub fn start(port: u16, timeouts_json: Option<&str>) -> Result<DemoStack, String> {
    let root = crate::root();
    let worker_dir = worker::build()?;
    let mock = MockUpstream::start("0")?;
    let mock_url = mock.url().to_owned();
    // Bound here, so that the page's origin (which the worker must allow) is known before the
    // start, also with port 0.
    let listener = TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let origin = format!("http://127.0.0.1:{port}");

    let openrouter_key = std::env::var("OPENROUTER_API_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty());
    let openrouter_model = std::env::var("LSG_OPENROUTER_MODEL")
        .ok()
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "openai/gpt-4o-mini".into());
    let text_query: String = LOCAL_ANSWER
        .replace(' ', "%20")
        .replace(':', "%3A")
        .replace(',', "%2C");
    let mut providers = Vec::new();
    let mut models = Vec::new();
    if openrouter_key.is_some() {
        providers.push(format!(
            r#"{{"name":"openrouter","url":"https://openrouter.ai/api/v1/chat/completions","model":{model},"apiKeyEnv":"OPENROUTER_API_KEY","headers":{{"HTTP-Referer":{origin},"X-OpenRouter-Title":"llm-stream-guard demo"}}}}"#,
            model = json_string(&openrouter_model),
            origin = json_string(&origin),
        ));
        models.push(format!(
            r#"{{"id":{},"label":"OpenRouter: {}"}}"#,
            json_string(&openrouter_model),
            openrouter_model.replace('"', "")
        ));
    }
    providers.push(format!(
        r#"{{"name":"local fallback","url":"{mock_url}/v1/chat/completions?delay_ms=70&text={text_query}","model":"mock/local"}}"#
    ));
    models.push(r#"{"id":"mock/local","label":"Normal answer (local)"}"#.to_owned());
    for (scenario, label, query) in SCENARIOS {
        providers.push(format!(
            r#"{{"name":"{scenario}","url":"{mock_url}/scenario/{scenario}/v1/chat/completions?{query}","model":"mock/{scenario}","maxRetries":1}}"#
        ));
        models.push(format!(
            r#"{{"id":"mock/{scenario}","label":{}}}"#,
            json_string(label)
        ));
    }
    let providers_json = format!("[{}]", providers.join(","));
    let from_env = std::env::var("LSG_TIMEOUTS")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let timeouts = timeouts_json
        .map(str::to_owned)
        .or(from_env)
        .unwrap_or_else(|| DEMO_DEADLINES.json());

    let heartbeat_ms = std::env::var("LSG_HEARTBEAT_MS")
        .ok()
        .filter(|ms| !ms.trim().is_empty())
        .unwrap_or_else(|| HEARTBEAT_MS.into());

    // The site: the page, the package for the `web` target, and what the page needs to know.
    let site = target_dir().join("demo").join("site");
    let _ = std::fs::remove_dir_all(&site);
    copy_dir(&root.join("www"), &site)?;
    copy_dir(&worker_dir.join("pkg"), &site.join("pkg"))?;
    let config = format!(
        r#"{{"mode":"{mode}","models":[{models}],"defaultModel":{default},"workerTimeouts":{timeouts},"heartbeatMs":{heartbeat},"mockUrl":{mock}}}"#,
        mode = if openrouter_key.is_some() {
            "openrouter"
        } else {
            "mock"
        },
        models = models.join(","),
        default = if openrouter_key.is_some() {
            json_string(&openrouter_model)
        } else {
            json_string("mock/keepalive-forever")
        },
        heartbeat = heartbeat_ms
            .trim()
            .parse::<f64>()
            .map_or_else(|_| "null".to_owned(), |ms| ms.to_string()),
        mock = json_string(&mock_url),
    );
    std::fs::write(site.join("config.json"), config)
        .map_err(|e| format!("write config.json: {e}"))?;

    // The `LSG_*` variables of this process, then the demo's own.
    let mut env = lsg_env();
    env.extend([
        ("LSG_PROVIDERS".to_owned(), providers_json),
        ("LSG_ALLOWED_ORIGINS".to_owned(), origin),
        (
            "LSG_CLIENT_TOKENS".to_owned(),
            std::env::var("LSG_CLIENT_TOKENS").unwrap_or_default(),
        ),
        ("LSG_TIMEOUTS".to_owned(), timeouts),
        ("LSG_HEARTBEAT_MS".to_owned(), heartbeat_ms),
        (
            "LSG_RETRY".to_owned(),
            r#"{"maxRetries":1,"baseDelayMs":200,"maxDelayMs":1000}"#.to_owned(),
        ),
    ]);
    if let Some(key) = openrouter_key {
        env.push(("OPENROUTER_API_KEY".to_owned(), key));
    }
    let workerd = Launch::new(workerd_bin()?, &worker_dir)
        .env(env)
        .site(&absolute(&site)?)
        .listener(listener)
        .start()?;
    Ok(DemoStack { mock, workerd })
}

fn absolute(path: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `cargo xtask demo`.
pub fn run() -> Result<(), String> {
    let stack = start(worker::port_from_env()?, None)?;
    println!();
    println!("mock upstream: {}", stack.mock.url());
    println!(
        "edge worker:   {}  (POST /v1/chat/completions, GET /metrics)",
        stack.workerd.url()
    );
    println!("open {}", stack.url());
    println!("Ctrl-C stops everything.");
    process::wait_for_termination();
    drop(stack);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_come_due_before_the_first_token() {
        for deadlines in [DEMO_DEADLINES, TEST_DEADLINES] {
            assert!(deadlines.headers < deadlines.first_token, "{deadlines:?}");
            assert!(deadlines.first_token <= deadlines.stream, "{deadlines:?}");
        }
        assert_eq!(
            TEST_DEADLINES.json(),
            r#"{"headersMs":700,"firstTokenMs":1000,"idleMs":1000,"streamMs":20000,"serviceMs":30000}"#
        );
    }

    #[test]
    fn every_offered_scenario_is_the_mocks_with_parameters_it_reads() {
        for (name, label, query) in SCENARIOS {
            assert!(
                mock_upstream::scenario(name).is_some(),
                "the demo offers {name:?}, which the mock upstream does not have"
            );
            assert!(!label.is_empty(), "{name} has no label");
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{name}: {pair:?} is not key=value"));
                let params = mock_upstream::Params::from_pairs([(key, value)]);
                assert!(params.is_ok(), "{name}: {params:?}");
                // The mock ignores keys it does not know, but rejects a bad number for one it
                // reads: so a misspelled key shows here.
                let known = mock_upstream::Params::from_pairs([(key, "not a number")]).is_err();
                assert!(
                    known,
                    "{name}: the mock does not read the parameter {key:?}"
                );
            }
        }
    }
}
