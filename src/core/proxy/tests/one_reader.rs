//! One reader for `generate()`'s options and the worker's bindings: the same value in the same
//! place gets the same verdict from both, in the same words (the worker's name the variable
//! instead of the option's head, and quote no value), and a valid one the same typed settings.
//! A check of the worker's own that drifted from the core's would fail here.

use super::super::ProxyConfig;
use crate::core::options::{check_options_object, read_options, JsonSource, OptionsData};
use serde_json::{json, Value};

/// Where a value is put: the same spot of `generate()`'s options and of the worker's bindings.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// `timeouts` / `LSG_TIMEOUTS`.
    Timeouts,
    /// `retry` / `LSG_RETRY`.
    Retry,
    /// A field of `providers[i]` / of `LSG_PROVIDERS`' entry `[i]`.
    Provider(usize, &'static str),
}

fn providers() -> Value {
    json!([
        {"name": "a", "url": "https://a.example/v1/chat/completions", "model": "m"},
        {"name": "b", "url": "http://127.0.0.1:1/v1/chat/completions", "model": "n"},
    ])
}

/// `generate()`'s options with `values` in their places.
fn options(values: &[(Place, Value)]) -> Value {
    let mut options = json!({
        "providers": providers(),
        "messages": [{"role": "user", "content": "hi"}],
    });
    for (place, value) in values {
        match *place {
            Place::Timeouts => options["timeouts"] = value.clone(),
            Place::Retry => options["retry"] = value.clone(),
            Place::Provider(i, field) => options["providers"][i][field] = value.clone(),
        }
    }
    options
}

/// `generate()`'s verdict, as its options are checked in JavaScript (the caller's object, then
/// its data), numbers quoted as there.
fn generate_verdict(values: &[(Place, Value)]) -> Result<OptionsData, String> {
    let options = options(values);
    check_options_object(&JsonSource::OPTIONS, &options)?;
    read_options(&JsonSource::OPTIONS, &options, false)
}

/// The worker's verdict with `values` in its bindings.
fn worker_verdict(values: &[(Place, Value)]) -> Result<ProxyConfig, super::ConfigError> {
    let mut list = providers();
    let (mut timeouts, mut retry) = (None, None);
    for (place, value) in values {
        match *place {
            Place::Timeouts => timeouts = Some(value.to_string()),
            Place::Retry => retry = Some(value.to_string()),
            Place::Provider(i, field) => list[i][field] = value.clone(),
        }
    }
    ProxyConfig::from_env(|name| match name {
        "LSG_PROVIDERS" => Some(list.to_string()),
        "LSG_TIMEOUTS" => timeouts.clone(),
        "LSG_RETRY" => retry.clone(),
        _ => None,
    })
}

#[test]
fn a_bad_value_gets_the_same_verdict_from_generate_and_from_the_worker() {
    use Place::*;
    for (place, value, in_generate, in_worker) in [
        (
            Timeouts,
            json!({"idleMs": -5}),
            "timeouts.idleMs must be a positive number of milliseconds (got -5)",
            "LSG_TIMEOUTS: idleMs must be a positive number of milliseconds",
        ),
        (
            Provider(1, "timeouts"),
            json!({"idleMs": -5}),
            "providers[1].timeouts.idleMs must be a positive number of milliseconds (got -5)",
            "LSG_PROVIDERS: [1].timeouts.idleMs must be a positive number of milliseconds",
        ),
        (
            Timeouts,
            json!({"idelMs": 500}),
            "unknown option `idelMs` in timeouts; did you mean `idleMs`?",
            "LSG_TIMEOUTS: unknown option `idelMs`; did you mean `idleMs`?",
        ),
        (
            Provider(0, "timeouts"),
            json!({"idelMs": 500}),
            "unknown option `idelMs` in providers[0].timeouts; did you mean `idleMs`?",
            "LSG_PROVIDERS: unknown option `idelMs` in [0].timeouts; did you mean `idleMs`?",
        ),
        (
            Timeouts,
            json!({"streamMs": "soon"}),
            "invalid options: timeouts.streamMs must be a number",
            "LSG_TIMEOUTS: invalid options: streamMs must be a number",
        ),
        (
            Provider(1, "timeouts"),
            json!([500]),
            "invalid options: providers[1].timeouts must be an object",
            "LSG_PROVIDERS: invalid options: [1].timeouts must be an object",
        ),
        (
            Retry,
            json!({"maxRetries": 11}),
            "retry.maxRetries must be a whole number from 0 to 10 (got 11)",
            "LSG_RETRY: maxRetries must be a whole number from 0 to 10",
        ),
        (
            Retry,
            json!({"maxRetries": 1.5}),
            "retry.maxRetries must be a whole number from 0 to 10 (got 1.5)",
            "LSG_RETRY: maxRetries must be a whole number from 0 to 10",
        ),
        (
            Retry,
            json!({"maxRetires": 1}),
            "unknown option `maxRetires` in retry; did you mean `maxRetries`?",
            "LSG_RETRY: unknown option `maxRetires`; did you mean `maxRetries`?",
        ),
        (
            Retry,
            json!({"baseDelayMs": -1}),
            "retry.baseDelayMs must be a non-negative number of milliseconds (got -1)",
            "LSG_RETRY: baseDelayMs must be a non-negative number of milliseconds",
        ),
        (
            Provider(0, "maxRetries"),
            json!(11),
            "providers[0].maxRetries must be a whole number from 0 to 10 (got 11)",
            "LSG_PROVIDERS: [0].maxRetries must be a whole number from 0 to 10",
        ),
        (
            Provider(0, "maxRetries"),
            json!("3"),
            "invalid options: providers[0].maxRetries must be a number",
            "LSG_PROVIDERS: invalid options: [0].maxRetries must be a number",
        ),
    ] {
        let values = [(place, value.clone())];
        let generate = generate_verdict(&values).expect_err("refused by generate()");
        let worker = worker_verdict(&values).expect_err("refused by the worker");
        assert_eq!(generate, in_generate, "{place:?} {value}");
        assert_eq!(worker.to_string(), in_worker, "{place:?} {value}");
    }
}

#[test]
fn the_worker_never_quotes_the_number_generate_quotes() {
    let values = [(Place::Retry, json!({"maxRetries": 5550123}))];
    let generate = generate_verdict(&values).unwrap_err();
    let worker = worker_verdict(&values).unwrap_err();
    assert!(generate.ends_with("(got 5550123)"), "{generate}");
    assert!(!worker.to_string().contains("5550123"), "{worker}");
    let guard = ProxyConfig::from_env(|name| match name {
        "LSG_PROVIDERS" => Some(providers().to_string()),
        "LSG_GUARD" => Some(r#"{"breaker":{"failureThreshold":5550123}}"#.into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(
        guard.to_string(),
        "LSG_GUARD: breaker.failureThreshold must be a whole number from 1 to 1000"
    );
}

#[test]
fn valid_values_give_the_same_settings_in_both() {
    use Place::*;
    let values = [
        (Timeouts, json!({"idleMs": 700, "serviceMs": 9_000})),
        (
            Retry,
            json!({"maxRetries": 1, "baseDelayMs": 3, "maxDelayMs": null}),
        ),
        (
            Provider(1, "timeouts"),
            json!({"idleMs": 50, "headersMs": 60}),
        ),
        (Provider(1, "maxRetries"), json!(0)),
        (Provider(0, "timeouts"), json!({"streamMs": null})),
    ];
    let generate = generate_verdict(&values).unwrap();
    let worker = worker_verdict(&values).unwrap();
    assert_eq!(worker.retry, generate.policy);
    assert_eq!(worker.timeouts.service_ms, generate.service_ms);
    assert_eq!(worker.timeouts, generate.providers[0].timeouts);
    for (w, g) in worker.providers.iter().zip(&generate.providers) {
        assert_eq!(
            (w.timeouts, w.max_retries),
            (g.timeouts, g.max_retries),
            "{}",
            w.name
        );
    }
    // Read over the defaults, as given: a test of the values, not only of their agreement.
    assert_eq!(worker.timeouts.idle_ms, 700.0);
    assert_eq!(
        (
            worker.providers[1].timeouts.idle_ms,
            worker.providers[1].timeouts.service_ms
        ),
        (50.0, 9_000.0)
    );
    assert_eq!(
        (
            worker.providers[0].max_retries,
            worker.providers[1].max_retries
        ),
        (1, 0)
    );
}
