//! The option reader's own tests: defaults, and every kind of mistake refused with its path.

use super::*;
use serde_json::{json, Value};

const JSON: JsonSource = JsonSource::OPTIONS;

fn options(change: impl FnOnce(&mut Value)) -> Value {
    let mut options = json!({
        "providers": [
            {"name": "a", "url": "https://a.example/v1/chat/completions", "model": "m"},
            {"name": "b", "url": "http://127.0.0.1:1/v1", "model": "n", "apiKey": "k",
             "maxRetries": 0, "timeouts": {"idleMs": 5}, "headers": {"X-Title": "t"}}
        ],
        "messages": [{"role": "user", "content": "hi"}],
    });
    change(&mut options);
    options
}

fn read(options: &Value) -> Result<OptionsData, String> {
    check_options_object(&JSON, options)?;
    read_options(&JSON, options, false)
}

#[test]
fn a_guard_reads_its_own_options_with_defaults() {
    let guard = |v: Value| read_guard_options(&JSON, &v);
    let d = guard(json!({"providers": []})).unwrap();
    assert_eq!(d, GuardConfig::default());
    assert_eq!(
        d.adaptive,
        Some(Adaptive::default()),
        "adaptive is on by default"
    );
    let g = guard(json!({
        "continuation": true,
        "hedge": {"afterMs": "auto"},
        "adaptive": {"quantile": 0.9, "factor": 2, "minSamples": 7},
        "breaker": {"failureThreshold": 2, "cooldownMs": 500},
    }))
    .unwrap();
    assert!(g.continuation);
    assert_eq!(g.hedge, Some(HedgeAfter::Auto));
    let a = g.adaptive.unwrap();
    assert_eq!((a.quantile, a.factor, a.min_samples), (0.9, 2.0, 7));
    assert_eq!(
        (g.breaker.failure_threshold, g.breaker.cooldown_ms),
        (2, 500.0)
    );
    assert_eq!(guard(json!({"adaptive": false})).unwrap().adaptive, None);
    assert_eq!(
        guard(json!({"hedge": {"afterMs": 800}})).unwrap().hedge,
        Some(HedgeAfter::Millis(800.0))
    );
}

#[test]
fn a_guard_refuses_bad_options_with_their_path() {
    for (options, expected) in [
        (
            json!({"hege": {}}),
            "unknown option `hege`; did you mean `hedge`?",
        ),
        (json!({"messages": []}), "unknown option `messages`"),
        (
            json!({"hedge": {"after": 1}}),
            "unknown option `after` in hedge; did you mean `afterMs`?",
        ),
        (json!({"hedge": {}}), "hedge.afterMs is required"),
        (
            json!({"hedge": {"afterMs": "soon"}}),
            "hedge.afterMs must be a positive number of milliseconds or \"auto\"",
        ),
        (
            json!({"hedge": {"afterMs": 0}}),
            "hedge.afterMs must be a positive number",
        ),
        (
            json!({"adaptive": "yes"}),
            "invalid options: adaptive must be a boolean or an object",
        ),
        (
            json!({"adaptive": {"quantile": 1.5}}),
            "adaptive.quantile must be a number above 0 and at most 1 (got 1.5)",
        ),
        (
            json!({"adaptive": {"factor": -1}}),
            "adaptive.factor must be a positive number (got -1)",
        ),
        (
            json!({"adaptive": {"minSample": 3}}),
            "unknown option `minSample` in adaptive; did you mean `minSamples`?",
        ),
        (
            json!({"breaker": {"failureThreshold": 0}}),
            "breaker.failureThreshold must be a whole number from 1 to 1000 (got 0)",
        ),
        (
            json!({"breaker": {"cooldownMs": -5}}),
            "breaker.cooldownMs must be a non-negative number of milliseconds (got -5)",
        ),
        (
            json!({"continuation": 1}),
            "invalid options: continuation must be a boolean",
        ),
    ] {
        let error = read_guard_options(&JSON, &options).unwrap_err();
        assert!(error.starts_with(expected), "{error:?} vs {expected:?}");
    }
}

#[test]
fn a_guards_call_takes_only_a_calls_options() {
    let check = |v: Value| check_request_keys(&JSON, &v);
    assert_eq!(
        check(json!({"messages": [], "onText": 1, "signal": 1})),
        Ok(())
    );
    assert_eq!(
        check(json!({"messages": [], "providers": []})).unwrap_err(),
        "`providers` is set on the Guard, not per call"
    );
    assert_eq!(
        check(json!({"mesages": []})).unwrap_err(),
        "unknown option `mesages`; did you mean `messages`?"
    );
    assert!(check(json!([])).is_err());
}

#[test]
fn defaults_and_overrides() {
    let data = read(&options(|o| {
        o["timeouts"] = json!({"idleMs": 7, "serviceMs": 9})
    }))
    .unwrap();
    assert_eq!(data.policy, RetryPolicy::default());
    assert!(data.stream);
    assert_eq!(data.log, LogLevel::Off);
    assert_eq!(data.max_event_bytes, DEFAULT_MAX_EVENT_BYTES);
    assert_eq!(data.service_ms, 9.0);
    let (a, b) = (&data.providers[0], &data.providers[1]);
    assert_eq!((a.timeouts.idle_ms, a.timeouts.headers_ms), (7.0, 20_000.0));
    assert_eq!((a.max_retries, a.api_key.as_deref()), (2, None));
    assert_eq!((b.timeouts.idle_ms, b.timeouts.service_ms), (5.0, 9.0));
    assert_eq!((b.max_retries, b.api_key.as_deref()), (0, Some("k")));
    assert_eq!(b.headers, vec![("X-Title".to_owned(), "t".to_owned())]);
}

#[test]
fn unknown_names_at_every_level_name_the_nearest_one() {
    for (change, expected) in [
        (
            json!({"timeout": {}}),
            "unknown option `timeout`; did you mean `timeouts`?",
        ),
        (
            json!({"retry": {"maxRetires": 1}}),
            "unknown option `maxRetires` in retry; did you mean `maxRetries`?",
        ),
    ] {
        let o = options(|o| {
            for (k, v) in change.as_object().unwrap() {
                o[k] = v.clone();
            }
        });
        assert_eq!(read(&o).unwrap_err(), expected);
    }
    let o = options(|o| o["providers"][1]["apikey"] = json!("k"));
    assert_eq!(
        read(&o).unwrap_err(),
        "unknown option `apikey` in providers[1]; did you mean `apiKey`?"
    );
    let o = options(|o| o["providers"][0]["timeouts"] = json!({"firstTokenMS": 1}));
    assert_eq!(
        read(&o).unwrap_err(),
        "unknown option `firstTokenMS` in providers[0].timeouts; did you mean `firstTokenMs`?"
    );
}

#[test]
fn wrong_types_and_ranges_are_refused_with_their_path() {
    type Case = (fn(&mut Value), &'static str);
    let cases: [Case; 9] = [
        (
            |o| o["providers"][0]["maxRetries"] = json!("3"),
            "invalid options: providers[0].maxRetries must be a number",
        ),
        (
            |o| o["stream"] = json!("yes"),
            "invalid options: stream must be a boolean",
        ),
        (
            |o| o["retry"] = json!({"maxRetries": 11}),
            "retry.maxRetries must be a whole number from 0 to 10 (got 11)",
        ),
        (
            |o| o["timeouts"] = json!({"idleMs": 0}),
            "timeouts.idleMs must be a positive number of milliseconds (got 0)",
        ),
        (
            |o| o["providers"][1]["timeouts"] = json!({"headersMs": -1}),
            "providers[1].timeouts.headersMs must be a positive number of milliseconds (got -1)",
        ),
        (
            |o| o["maxEventBytes"] = json!(0.5),
            "maxEventBytes must be a positive whole number (got 0.5)",
        ),
        (
            |o| o["providers"][1]["headers"] = json!({"X-N": 1}),
            "providers[1].headers.X-N must be a string",
        ),
        (
            |o| o["providers"][0]["url"] = json!("/v1/chat/completions"),
            "providers[0].url must be an absolute http(s) URL",
        ),
        (|o| o["messages"] = json!("hi"), "messages must be an array"),
    ];
    for (change, expected) in cases {
        let error = read(&options(change)).unwrap_err();
        assert!(error.starts_with(expected), "{error:?} vs {expected:?}");
    }
    let error = read(&options(|o| o["providers"] = json!([]))).unwrap_err();
    assert_eq!(error, "providers must be a non-empty array");
    let error = read(&options(|o| o["providers"][0]["model"] = json!(""))).unwrap_err();
    assert_eq!(error, "providers[0].model is required");
    let error = read(&options(|o| o["log"] = json!("loud"))).unwrap_err();
    assert!(error.starts_with("log must be"), "{error}");
}
