//! The worker's decisions, natively: every check the workerd tests make end to end, here on
//! plain strings.

use super::*;
use std::collections::HashMap;

mod one_reader;

fn config(vars: &[(&str, &str)]) -> Result<ProxyConfig, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ProxyConfig::from_env(|name| map.get(name).cloned())
}

const PROVIDERS: &str = r#"[{"name":"openrouter","url":"https://x/v1/chat/completions","model":"a/b","apiKeyEnv":"OPENROUTER_API_KEY"},{"name":"local","url":"http://127.0.0.1:1/v1/chat/completions","model":"local/m"}]"#;

#[test]
fn reads_the_configuration_with_defaults() {
    let c = config(&[
        ("LSG_PROVIDERS", PROVIDERS),
        ("LSG_CLIENT_TOKENS", " t1 , t2,"),
        ("LSG_TIMEOUTS", r#"{"idleMs":500}"#),
    ])
    .unwrap();
    assert_eq!(c.providers.len(), 2);
    assert_eq!(
        c.providers[0].api_key_env.as_deref(),
        Some("OPENROUTER_API_KEY")
    );
    assert_eq!(c.client_tokens, ["t1", "t2"]);
    assert_eq!(
        c.models,
        ["a/b", "local/m"],
        "unset LSG_MODELS means the providers' models"
    );
    assert_eq!(c.heartbeat_ms, 10_000.0);
    assert_eq!(c.probe_ms, 25.0);
    assert_eq!(c.max_body_bytes, 262_144);
    assert_eq!(c.timeouts.idle_ms, 500.0);
    assert_eq!(
        c.providers[1].timeouts, c.timeouts,
        "a provider without timeouts has the call's"
    );
    let c = config(&[
        ("LSG_PROVIDERS", PROVIDERS),
        ("LSG_MODELS", "x/y"),
        ("LSG_HEARTBEAT_MS", "250"),
    ])
    .unwrap();
    assert_eq!(
        (c.models.as_slice(), c.heartbeat_ms),
        (&["x/y".to_string()][..], 250.0)
    );
}

#[test]
fn refuses_bad_configuration() {
    assert!(config(&[])
        .unwrap_err()
        .to_string()
        .contains("LSG_PROVIDERS"));
    assert!(config(&[("LSG_PROVIDERS", "[]")]).is_err());
    assert!(config(&[("LSG_PROVIDERS", "{")]).is_err());
    assert!(config(&[("LSG_PROVIDERS", PROVIDERS), ("LSG_HEARTBEAT_MS", "-1")]).is_err());
    assert!(config(&[("LSG_PROVIDERS", PROVIDERS), ("LSG_TIMEOUTS", "[1]")]).is_err());
}

#[test]
fn access_needs_a_token_or_an_allowed_origin() {
    let c = config(&[
        ("LSG_PROVIDERS", PROVIDERS),
        ("LSG_CLIENT_TOKENS", "secret-token"),
        ("LSG_ALLOWED_ORIGINS", "https://app.example"),
    ])
    .unwrap();
    assert_eq!(
        c.authorize(Some("Bearer secret-token"), None),
        Access::Token
    );
    assert_eq!(
        c.authorize(Some("Bearer secret-tokeX"), None),
        Access::Denied
    );
    assert_eq!(c.authorize(Some("secret-token"), None), Access::Denied);
    assert_eq!(
        c.authorize(None, Some("https://app.example")),
        Access::Origin
    );
    assert_eq!(
        c.authorize(None, Some("https://evil.example")),
        Access::Denied
    );
    assert_eq!(c.authorize(None, None), Access::Denied);
}

#[test]
fn requests_are_checked_and_the_chain_puts_the_requested_model_first() {
    let c = config(&[("LSG_PROVIDERS", PROVIDERS)]).unwrap();
    let r = parse_chat_request(r#"{"model":"local/m","messages":[{"role":"user","content":"hi"}],"stream":true,"temperature":0.2,"stream_options":{}}"#, &c).unwrap();
    assert_eq!(r.model.as_deref(), Some("local/m"));
    assert!(r.stream);
    assert_eq!(r.params.keys().collect::<Vec<_>>(), ["temperature"]);
    let names: Vec<&str> = c
        .chain_for(r.model.as_deref())
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["local", "openrouter"]);
    let names: Vec<&str> = c.chain_for(None).iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["openrouter", "local"]);
    let refused = parse_chat_request(r#"{"model":"gpt/x","messages":[{}]}"#, &c).unwrap_err();
    assert_eq!((refused.status, refused.code), (400, "model_not_allowed"));
    assert_eq!(
        parse_chat_request("nope", &c).unwrap_err().code,
        "invalid_json"
    );
    assert_eq!(
        parse_chat_request(r#"{"messages":[]}"#, &c)
            .unwrap_err()
            .code,
        "invalid_messages"
    );
    assert!(
        !parse_chat_request(r#"{"messages":[{}]}"#, &c)
            .unwrap()
            .stream,
        "stream defaults to false"
    );
}

#[test]
fn failure_statuses() {
    assert_eq!(failure_status("timeout", None).0, 504);
    assert_eq!(failure_status("http", Some(422)).0, 400);
    assert_eq!(failure_status("http", Some(503)).0, 502);
    assert_eq!(failure_status("upstream", None).0, 502);
    assert_eq!(failure_status("protocol", None).0, 502);
}

// ---------------------------------------------------------------------------------------------
// Configuration: every problem names its variable, and never a secret value.

fn problem(vars: &[(&str, &str)]) -> ConfigError {
    let mut all = vec![("LSG_PROVIDERS", PROVIDERS)];
    all.extend_from_slice(vars);
    // A later entry of the same name wins (the map keeps the last).
    config(&all).expect_err("refused")
}

#[test]
fn configuration_errors_name_the_variable_and_never_a_secret_value() {
    let secret = "sk-live-SECRET-0123456789";
    // A provider header (where keys go) of the wrong type, and a key where a name belongs.
    let header_type = format!(
        r#"[{{"name":"a","url":"https://x/v1","model":"m","headers":{{"Authorization":["{secret}"]}}}}]"#
    );
    let key_as_name =
        format!(r#"[{{"name":"a","url":"https://x/v1","model":"m","apiKeyEnv":"{secret}"}}]"#);
    let broken_json = format!(r#"[{{"name":"a","headers":{{"x":"{secret}"}}"#);
    let typo = format!(
        r#"[{{"nmae":"a","url":"https://x/v1","model":"m","headers":{{"x":"{secret}"}}}}]"#
    );
    let url_credentials =
        format!(r#"[{{"name":"a","url":"https://u:{secret}@x/v1","model":"m"}}]"#);
    let timeouts_value = format!(r#"{{"idleMs":"{secret}"}}"#);
    for (vars, variable, says) in [
        (
            vec![("LSG_PROVIDERS", header_type.as_str())],
            "LSG_PROVIDERS",
            "[0].headers",
        ),
        (
            vec![("LSG_PROVIDERS", key_as_name.as_str())],
            "LSG_PROVIDERS",
            "[0].apiKeyEnv",
        ),
        (
            vec![("LSG_PROVIDERS", broken_json.as_str())],
            "LSG_PROVIDERS",
            "not valid JSON",
        ),
        (
            vec![("LSG_PROVIDERS", typo.as_str())],
            "LSG_PROVIDERS",
            "did you mean `name`",
        ),
        (
            vec![("LSG_PROVIDERS", url_credentials.as_str())],
            "LSG_PROVIDERS",
            "[0].url",
        ),
        (
            vec![("LSG_TIMEOUTS", timeouts_value.as_str())],
            "LSG_TIMEOUTS",
            "idleMs",
        ),
        (
            vec![("LSG_HEARTBEAT_MS", secret)],
            "LSG_HEARTBEAT_MS",
            "positive",
        ),
        (
            vec![("LSG_MAX_TOKENS", secret)],
            "LSG_MAX_TOKENS",
            "whole number",
        ),
        (vec![("LSG_BODY_MS", secret)], "LSG_BODY_MS", "positive"),
    ] {
        let error = problem(&vars);
        let text = error.to_string();
        assert_eq!(error.variable, variable, "{text}");
        assert!(text.starts_with(&format!("{variable}: ")), "{text}");
        assert!(text.contains(says), "{text:?} should say {says:?}");
        assert!(!text.contains("SECRET"), "a secret in {text:?}");
    }
}

#[test]
fn a_wildcard_or_a_malformed_origin_is_a_configuration_error() {
    for origins in [
        "*",
        "https://a.example, *",
        "null",
        "https://a.example/",
        "app.example",
        "https://*.example",
    ] {
        let error = problem(&[("LSG_ALLOWED_ORIGINS", origins)]);
        assert_eq!(error.variable, "LSG_ALLOWED_ORIGINS", "{origins}: {error}");
    }
    let c = config(&[
        ("LSG_PROVIDERS", PROVIDERS),
        (
            "LSG_ALLOWED_ORIGINS",
            "https://App.Example, http://127.0.0.1:8080",
        ),
    ])
    .unwrap();
    assert_eq!(
        c.allowed_origins,
        ["https://app.example", "http://127.0.0.1:8080"]
    );
    assert!(c.origin_allowed("https://app.example"));
    assert!(c.origin_allowed("http://127.0.0.1:8080"));
    assert!(!c.origin_allowed("http://127.0.0.1:8081"));
    assert!(!c.origin_allowed("*"));
}

#[test]
fn new_settings_have_defaults_and_are_checked() {
    let c = config(&[("LSG_PROVIDERS", PROVIDERS)]).unwrap();
    assert_eq!(
        (c.body_ms, c.max_tokens, c.forward_fields.len()),
        (DEFAULT_BODY_MS, None, 0)
    );
    let c = config(&[
        ("LSG_PROVIDERS", PROVIDERS),
        ("LSG_BODY_MS", "250"),
        ("LSG_MAX_TOKENS", "512"),
        ("LSG_FORWARD_FIELDS", "provider, plugins"),
    ])
    .unwrap();
    assert_eq!((c.body_ms, c.max_tokens), (250.0, Some(512)));
    assert_eq!(c.forward_fields, ["provider", "plugins"]);
    let typo = problem(&[("LSG_FORWARD_FIELDS", "provders")]);
    assert!(
        typo.to_string().contains("did you mean `provider`"),
        "{typo}"
    );
    let ungated = problem(&[("LSG_FORWARD_FIELDS", "temperature")]);
    assert!(
        ungated.to_string().contains("not a gated field"),
        "{ungated}"
    );
    assert!(problem(&[("LSG_MAX_BODY_BYTES", "4294967296")])
        .to_string()
        .contains("at most 1 GiB"));
    assert!(problem(&[("LSG_RETRY", r#"{"maxRetry":1}"#)])
        .to_string()
        .contains("did you mean `maxRetries`"));
    let repeated = r#"[{"name":"a","url":"https://x/v1","model":"m"},{"name":"a","url":"https://y/v1","model":"n"}]"#;
    assert!(problem(&[("LSG_PROVIDERS", repeated)])
        .to_string()
        .contains("repeats"));
}

#[test]
fn a_provider_key_variable_that_is_not_set_is_named() {
    let c = config(&[("LSG_PROVIDERS", PROVIDERS)]).unwrap();
    let missing = c
        .missing_key(|_| None)
        .expect("OPENROUTER_API_KEY is not set");
    assert_eq!(missing.variable, "LSG_PROVIDERS");
    assert!(missing.problem.contains("OPENROUTER_API_KEY"), "{missing}");
    assert_eq!(
        c.missing_key(|name| (name == "OPENROUTER_API_KEY").then(|| "sk-x".to_owned())),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Routes, tokens, CORS.

#[test]
fn routes_refuse_other_methods_with_405_and_allow() {
    assert_eq!(route("POST", CHAT_PATH, false), Route::Chat);
    assert_eq!(route("GET", "/healthz", false), Route::Health);
    assert_eq!(route("HEAD", "/metrics", false), Route::Metrics);
    assert_eq!(route("OPTIONS", CHAT_PATH, false), Route::Preflight);
    for method in ["GET", "PUT", "DELETE", "PATCH", "HEAD"] {
        let r = route(method, CHAT_PATH, true);
        assert_eq!(
            r,
            Route::MethodNotAllowed {
                allow: "POST, OPTIONS"
            },
            "{method}"
        );
        let refusal = route_refusal(r, method, CHAT_PATH).unwrap();
        assert_eq!(refusal.status, 405);
        assert_eq!(refusal.headers, [("allow", "POST, OPTIONS".to_owned())]);
    }
    assert_eq!(
        route("POST", "/healthz", false),
        Route::MethodNotAllowed { allow: "GET, HEAD" }
    );
    // The Responses API is served (relayed like chat).
    assert_eq!(route("POST", RESPONSES_PATH, false), Route::Responses);
    assert_eq!(
        route_refusal(Route::Responses, "POST", RESPONSES_PATH),
        None
    );
    // So is Anthropic's Messages API.
    assert_eq!(route("POST", MESSAGES_PATH, false), Route::Messages);
    assert_eq!(
        route("GET", MESSAGES_PATH, false),
        Route::MethodNotAllowed {
            allow: "POST, OPTIONS"
        }
    );
    assert_eq!(route("GET", "/app.js", true), Route::Asset);
    assert_eq!(route("GET", "/app.js", false), Route::NotFound);
    assert_eq!(route("POST", "/v1/embeddings", true), Route::NotFound);
    assert_eq!(route_refusal(Route::Chat, "POST", CHAT_PATH), None);
}

#[test]
fn the_bearer_scheme_is_matched_without_case() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("bearer abc"), Some("abc"));
    assert_eq!(bearer_token("BEARER \t abc  "), Some("abc"));
    assert_eq!(bearer_token("Bearerabc"), None);
    assert_eq!(bearer_token("Bearer "), None);
    assert_eq!(bearer_token("Basic abc"), None);
    assert_eq!(bearer_token("abc"), None);
    assert_eq!(
        bearer_token("Beärer abc"),
        None,
        "no panic on a char boundary"
    );
    let c = config(&[
        ("LSG_PROVIDERS", PROVIDERS),
        ("LSG_CLIENT_TOKENS", "t-one,t-two"),
    ])
    .unwrap();
    assert_eq!(c.authorize(Some("bearer t-two"), None), Access::Token);
    assert_eq!(c.authorize(Some("BEARER t-one"), None), Access::Token);
    assert_eq!(c.authorize(Some("bearer t-three"), None), Access::Denied);
}

#[test]
fn preflight_echoes_requested_headers_for_allowed_origins_only() {
    let c = config(&[
        ("LSG_PROVIDERS", PROVIDERS),
        ("LSG_ALLOWED_ORIGINS", "https://app.example"),
    ])
    .unwrap();
    let headers = c
        .preflight(
            Some("https://app.example"),
            Some("X-Stainless-OS, x-lsg-events,authorization, content-type, X-Stainless-OS"),
        )
        .unwrap();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        get("access-control-allow-headers"),
        Some("x-stainless-os, x-lsg-events, authorization, content-type")
    );
    assert_eq!(
        get("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(get("vary")
        .unwrap()
        .contains("Access-Control-Request-Headers"));
    assert_eq!(get("access-control-expose-headers"), Some(EXPOSE_HEADERS));
    assert_eq!(
        c.preflight(Some("https://app.example"), None).unwrap()[4].1,
        DEFAULT_ALLOW_HEADERS
    );
    assert_eq!(
        c.preflight(Some("https://evil.example"), Some("a"))
            .unwrap_err()
            .status,
        403
    );
    assert_eq!(c.preflight(None, None).unwrap_err().status, 403);
    let long = vec!["x-a"; MAX_REQUEST_HEADERS_BYTES / 4 + 1].join(",");
    assert_eq!(
        c.preflight(Some("https://app.example"), Some(&long))
            .unwrap_err()
            .status,
        400
    );
    let many: Vec<String> = (0..=MAX_REQUEST_HEADERS)
        .map(|i| format!("x-{i}"))
        .collect();
    assert_eq!(
        c.preflight(Some("https://app.example"), Some(&many.join(",")))
            .unwrap_err()
            .status,
        400
    );
    assert_eq!(
        c.preflight(Some("https://app.example"), Some("x-a, bad header"))
            .unwrap_err()
            .code,
        "invalid_preflight_headers"
    );
    assert!(c.cors_headers(Some("https://evil.example")).is_empty());
}

// ---------------------------------------------------------------------------------------------
// The body: its declared size, and which fields go upstream.

#[test]
fn a_declared_length_over_the_limit_is_413_at_any_size() {
    for length in [
        "1025",
        "4294967296",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999999",
        " 2000 ",
    ] {
        assert_eq!(
            check_content_length(Some(length), 1024).unwrap_err().status,
            413,
            "{length}"
        );
    }
    for length in ["0", "1024", "0000000000000000000000001024"] {
        assert_eq!(check_content_length(Some(length), 1024), Ok(()), "{length}");
    }
    assert_eq!(check_content_length(None, 1024), Ok(()));
    for length in ["", "-1", "12a", "1e3", "+5"] {
        assert_eq!(
            check_content_length(Some(length), 1024).unwrap_err().status,
            400,
            "{length:?}"
        );
    }
    assert_eq!(body_timeout_refusal(250.0).status, 408);
    assert_eq!(too_large_refusal(7).code, "body_too_large");
}

fn request(body: serde_json::Value, c: &ProxyConfig) -> Result<ChatRequest, Refusal> {
    parse_chat_request(&body.to_string(), c)
}

#[test]
fn gated_fields_are_refused_by_name_unless_forwarded() {
    let c = config(&[("LSG_PROVIDERS", PROVIDERS)]).unwrap();
    let messages = serde_json::json!([{"role": "user", "content": "hi"}]);
    for field in GATED_FIELDS {
        let value = if *field == "n" {
            serde_json::json!(3)
        } else {
            serde_json::json!(["x"])
        };
        let refusal =
            request(serde_json::json!({"messages": messages, *field: value}), &c).unwrap_err();
        assert_eq!(
            (refusal.status, refusal.code),
            (400, "field_not_allowed"),
            "{field}"
        );
        assert_eq!(refusal.param.as_deref(), Some(*field));
        assert!(
            refusal.message.contains(&format!("`{field}`")),
            "{}",
            refusal.message
        );
        let body: serde_json::Value = serde_json::from_str(&refusal.body()).unwrap();
        assert_eq!(body["error"]["param"], *field);
    }
    // A null is "not set"; `n: 1` is one answer; other fields pass.
    let ok = request(
        serde_json::json!({"messages": messages, "provider": null, "n": 1, "temperature": 0.5, "tools": []}),
        &c,
    )
    .unwrap();
    assert_eq!(
        ok.params.keys().map(String::as_str).collect::<Vec<_>>(),
        ["n", "temperature", "tools"]
    );
    let open = config(&[
        ("LSG_PROVIDERS", PROVIDERS),
        ("LSG_FORWARD_FIELDS", "provider,models"),
    ])
    .unwrap();
    let forwarded = request(
        serde_json::json!({"messages": messages, "provider": {"order": ["x"]}, "models": ["a", "b"]}),
        &open,
    )
    .unwrap();
    assert_eq!(forwarded.params["provider"]["order"][0], "x");
    assert_eq!(
        request(
            serde_json::json!({"messages": messages, "route": "fallback"}),
            &open
        )
        .unwrap_err()
        .param
        .as_deref(),
        Some("route"),
        "only the listed fields pass"
    );
}

#[test]
fn max_tokens_over_the_cap_is_refused_and_a_missing_one_is_set_to_it() {
    let c = config(&[("LSG_PROVIDERS", PROVIDERS), ("LSG_MAX_TOKENS", "256")]).unwrap();
    let messages = serde_json::json!([{"role": "user", "content": "hi"}]);
    for field in TOKEN_FIELDS {
        let refusal =
            request(serde_json::json!({"messages": messages, *field: 257}), &c).unwrap_err();
        assert_eq!(
            (refusal.status, refusal.code),
            (400, "max_tokens_too_large"),
            "{field}"
        );
        assert_eq!(refusal.param.as_deref(), Some(*field));
        assert!(refusal.message.contains("256"), "{}", refusal.message);
        let ok = request(serde_json::json!({"messages": messages, *field: 256}), &c).unwrap();
        assert_eq!(ok.params[*field], 256);
        assert!(ok
            .params
            .get(if *field == "max_tokens" {
                "max_completion_tokens"
            } else {
                "max_tokens"
            })
            .is_none());
        for bad in [
            serde_json::json!(0),
            serde_json::json!(-3),
            serde_json::json!(2.5),
            serde_json::json!("9"),
        ] {
            assert_eq!(
                request(serde_json::json!({"messages": messages, *field: bad}), &c)
                    .unwrap_err()
                    .code,
                "invalid_max_tokens"
            );
        }
    }
    let set = request(
        serde_json::json!({"messages": messages, "max_tokens": null}),
        &c,
    )
    .unwrap();
    assert_eq!(set.params["max_tokens"], 256, "no value: the cap is sent");
    let uncapped = config(&[("LSG_PROVIDERS", PROVIDERS)]).unwrap();
    let r = request(
        serde_json::json!({"messages": messages, "max_tokens": 100000}),
        &uncapped,
    )
    .unwrap();
    assert_eq!(r.params["max_tokens"], 100000);
    assert!(
        request(serde_json::json!({"messages": messages}), &uncapped)
            .unwrap()
            .params
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// Final failures, and relayed events.

fn tried(list: &[(&str, &str, Option<u16>)]) -> Vec<Tried> {
    list.iter()
        .map(|(provider, outcome, status)| Tried {
            provider: provider.to_string(),
            outcome: outcome.to_string(),
            status: *status,
        })
        .collect()
}

#[test]
fn a_final_failure_names_every_provider_and_says_not_to_retry() {
    let attempts = tried(&[
        ("one", "http", Some(500)),
        ("one", "http", Some(500)),
        ("two", "timeout", None),
    ]);
    let refusal = final_failure("timeout", None, "headers timeout", &attempts, &[], &[]).unwrap();
    assert_eq!(
        (refusal.status, refusal.error_type, refusal.code),
        (504, "timeout_error", "timeout")
    );
    assert_eq!(
        refusal.message,
        "tried one (http 500, 2 attempts), two (timeout): headers timeout"
    );
    assert!(refusal
        .headers
        .contains(&("x-should-retry", "false".to_owned())));
    let http = final_failure(
        "http",
        Some(503),
        "HTTP 503",
        &tried(&[("a", "http", Some(503))]),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!((http.status, http.code), (502, "http"));
    assert!(http.message.contains("a (http 503)"));
    // Secrets never reach the message.
    let leaky = final_failure(
        "upstream",
        None,
        "bad key sk-secret-123456789",
        &[],
        &[],
        &["sk-secret-123456789"],
    )
    .unwrap();
    assert!(!leaky.message.contains("sk-secret"), "{}", leaky.message);
    assert_eq!(
        final_failure("aborted", None, "gone", &attempts, &[], &[]),
        None
    );
    let config_error =
        final_failure("config", None, "timeouts.idleMs is 'x'", &[], &[], &[]).unwrap();
    assert_eq!(config_error, misconfigured());
    assert!(!config_error.body().contains("idleMs"));
}

#[test]
fn every_provider_rate_limited_gives_429_with_the_smallest_retry_after() {
    let all_429 = tried(&[("one", "http", Some(429)), ("two", "http", Some(429))]);
    let refusal = final_failure(
        "http",
        Some(429),
        "HTTP 429",
        &all_429,
        &[7_000.0, 2_500.0, 9_000.0],
        &[],
    )
    .unwrap();
    assert_eq!(
        (refusal.status, refusal.error_type),
        (429, "rate_limit_error")
    );
    assert_eq!(
        refusal.headers,
        [("retry-after", "3".to_owned())],
        "2.5 s rounds up"
    );
    assert!(refusal.message.contains("one (http 429), two (http 429)"));
    let no_advice = final_failure("http", Some(429), "HTTP 429", &all_429, &[], &[]).unwrap();
    assert_eq!((no_advice.status, no_advice.headers.len()), (429, 0));
    let mixed = tried(&[("one", "http", Some(429)), ("two", "timeout", None)]);
    assert_eq!(
        final_failure("timeout", None, "t", &mixed, &[1_000.0], &[])
            .unwrap()
            .status,
        504,
        "one provider that was not rate-limited: not a 429"
    );
    assert_eq!(smallest_retry_after_seconds(&[0.0]), Some(0));
    assert_eq!(smallest_retry_after_seconds(&[f64::NAN, 1_001.0]), Some(2));
    assert_eq!(smallest_retry_after_seconds(&[]), None);
}

#[test]
fn relayed_events_are_redacted_and_an_upstreams_own_are_named_apart() {
    let key = "sk-provider-key-0123456789";
    let own = relayed_event(
        "failover",
        r#"{"type":"failover","from":"a","to":"b"}"#,
        &[key],
    )
    .unwrap();
    assert!(
        own.starts_with(&format!("event: {WORKER_EVENT}\ndata: ")),
        "{own}"
    );
    let upstream = format!(
        r#"{{"type":"upstream-event","provider":"a","event":{{"type":"failover","note":"{key}"}}}}"#
    );
    let relayed = relayed_event("upstream-event", &upstream, &[key]).unwrap();
    assert!(
        relayed.starts_with(&format!("event: {UPSTREAM_EVENT}\n")),
        "{relayed}"
    );
    assert_ne!(UPSTREAM_EVENT, WORKER_EVENT);
    assert!(!relayed.contains("0123456789"), "{relayed}");
    assert!(
        relayed.ends_with("\n\n") && relayed.matches('\n').count() == 3,
        "{relayed:?}"
    );
    let data: serde_json::Value = serde_json::from_str(
        relayed
            .lines()
            .nth(1)
            .unwrap()
            .strip_prefix("data: ")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(data["event"]["note"], "[redacted]");
    assert_eq!(relayed_event("x", "not json", &[]), None);
}

#[test]
fn numbers_are_checked_as_the_guard_checks_them() {
    for (variable, value, says) in [
        (
            "LSG_TIMEOUTS",
            r#"{"idleMs":0}"#,
            "idleMs must be a positive number",
        ),
        (
            "LSG_TIMEOUTS",
            r#"{"headersMs":-5}"#,
            "headersMs must be a positive number",
        ),
        (
            "LSG_RETRY",
            r#"{"maxRetries":11}"#,
            "maxRetries must be a whole number from 0 to 10",
        ),
        (
            "LSG_RETRY",
            r#"{"maxRetries":1.5}"#,
            "maxRetries must be a whole number",
        ),
        (
            "LSG_RETRY",
            r#"{"baseDelayMs":-1}"#,
            "baseDelayMs must be a non-negative number",
        ),
        (
            "LSG_PROVIDERS",
            r#"[{"name":"a","url":"https://x/v1","model":"m","maxRetries":11}]"#,
            "[0].maxRetries must be a whole number from 0 to 10",
        ),
        (
            "LSG_PROVIDERS",
            r#"[{"name":"a","url":"https://x/v1","model":"m","timeouts":{"streamMs":0}}]"#,
            "[0].timeouts.streamMs must be a positive number",
        ),
    ] {
        let error = problem(&[(variable, value)]);
        assert_eq!(error.variable, variable, "{error}");
        assert!(
            error.problem.contains(says),
            "{error:?} should say {says:?}"
        );
    }
    let c = config(&[
        ("LSG_PROVIDERS", PROVIDERS),
        (
            "LSG_RETRY",
            r#"{"maxRetries":0,"baseDelayMs":0,"maxDelayMs":0}"#,
        ),
        ("LSG_TIMEOUTS", r#"{"headersMs":1,"serviceMs":60000}"#),
    ])
    .unwrap();
    assert_eq!(
        (
            c.retry.max_retries,
            c.retry.base_delay_ms,
            c.retry.max_delay_ms
        ),
        (0, 0.0, 0.0)
    );
    assert_eq!(
        (c.timeouts.headers_ms, c.timeouts.service_ms),
        (1.0, 60_000.0)
    );
    assert_eq!(
        c.providers[0].max_retries, 0,
        "LSG_RETRY's, as no maxRetries of its own"
    );
}

#[test]
fn the_messages_route_takes_the_clients_token_from_x_api_key_too() {
    let bearer = Some("Bearer ct-1".to_owned());
    let key = Some("ct-2".to_owned());
    assert_eq!(
        client_authorization(true, bearer.clone(), key.clone()),
        bearer
    );
    assert_eq!(
        client_authorization(true, None, key.clone()).as_deref(),
        Some("Bearer ct-2")
    );
    assert_eq!(
        client_authorization(false, None, key),
        None,
        "chat reads Authorization only"
    );
    assert_eq!(client_authorization(true, None, Some("  ".into())), None);
    let headers = messages_headers(None, Some("tools-1".into()));
    assert_eq!(headers[0], ("x-api-key".to_owned(), String::new()));
    assert_eq!(headers[1].1, "2023-06-01");
    assert_eq!(
        headers[2],
        ("anthropic-beta".to_owned(), "tools-1".to_owned())
    );
}

#[test]
fn lsg_guard_is_read_by_the_guards_own_reader_and_takes_what_applies_to_a_proxy() {
    let with = |guard: &str| config(&[("LSG_PROVIDERS", PROVIDERS), ("LSG_GUARD", guard)]);
    assert_eq!(with("").unwrap().guard, None, "off unless set");
    let on = with(r#"{"breaker":{"failureThreshold":2,"cooldownMs":500},"adaptive":false}"#)
        .unwrap()
        .guard
        .expect("a guard");
    assert_eq!(on.breaker.failure_threshold, 2);
    assert_eq!(on.breaker.cooldown_ms, 500.0);
    assert_eq!(on.adaptive, None);
    for (value, says) in [
        ("[]", "must be a JSON object"),
        (r#"{"hedge":{"afterMs":100}}"#, "hedge"),
        (r#"{"continuation":true}"#, "continuation"),
        (r#"{"breaker":{"failureThreshold":0}}"#, "failureThreshold"),
        (r#"{"breaker":{"threshold":3}}"#, "threshold"),
    ] {
        let error = problem(&[("LSG_GUARD", value)]);
        assert_eq!(error.variable, "LSG_GUARD", "{value}");
        assert!(error.problem.contains(says), "{value}: {}", error.problem);
    }
}
