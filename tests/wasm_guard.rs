//! `Guard` against the real mock upstream (`cargo xtask test --only node|chrome|firefox` starts
//! the mock and passes its URL as `MOCK_UPSTREAM_URL`): its calls answer as `generate()`'s and
//! `stream()`'s do, `stats()` shows what it learned, a provider that stalls in a row is skipped
//! (an event, an attempt outcome, no request) while a 400 never opens its breaker, a call with
//! every provider skipped rejects as `"unavailable"` without a request, `close()` cancels what
//! is in flight, and bad options are `"config"` errors. Millisecond deadlines; nothing sleeps.

#![cfg(target_arch = "wasm32")]

mod wasm_common;

use js_sys::{Function, Promise, JSON};
use llm_stream_guard::web::Guard;
use serde_json::{json, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;
use wasm_common::*;

fn js(value: &Value) -> JsValue {
    JSON::parse(&value.to_string()).unwrap()
}

/// A guard over `providers` with `extra` options (deadlines: first token 400 ms, roomy others).
fn guard(providers: Vec<Value>, extra: Value) -> Guard {
    watch_rejections();
    assert_no_unhandled_rejections("before this guard (left by an earlier test)");
    let mut options = json!({
        "providers": providers,
        "timeouts": deadlines(2000, 400, 2000, 2500, 3000),
        "retry": { "maxRetries": 0 },
    });
    for (k, v) in extra.as_object().unwrap() {
        options[k] = v.clone();
    }
    Guard::new(js(&options)).unwrap_or_else(|e| panic!("{:?}", error_json(&e)))
}

/// One `guard.generate()` with an `onEvent` that records the events' types.
async fn generate(guard: &Guard) -> (Result<Value, Value>, Vec<Value>) {
    let events = js_sys::Array::new();
    let sink = events.clone();
    let on_event = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        sink.push(&e);
    });
    let request = js(&json!({ "messages": messages() }));
    js_sys::Reflect::set(&request, &"onEvent".into(), on_event.as_ref()).unwrap();
    let settled = settle_within(guard.generate(request), 5_000)
        .await
        .expect("settles within 5 s");
    drop(on_event);
    let events = events.iter().map(|e| to_json(&e)).collect();
    (
        settled.map(|r| to_json(&r)).map_err(|e| error_json(&e)),
        events,
    )
}

fn outcomes(attempts: &Value) -> Vec<(String, String)> {
    attempts
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| (s(a, "provider").to_owned(), s(a, "outcome").to_owned()))
        .collect()
}

fn pair(provider: &str, outcome: &str) -> (String, String) {
    (provider.into(), outcome.into())
}

fn stats_of(guard: &Guard, provider: &str) -> Value {
    let all = to_json(&guard.stats());
    all.as_array()
        .expect("an array")
        .iter()
        .find(|s| s["provider"] == provider)
        .cloned()
        .expect("listed")
}

#[wasm_bindgen_test]
async fn calls_answer_and_stats_show_what_was_learned() {
    let t = tag("guard-learn");
    let g = guard(
        vec![provider("alpha", "normal", "", &t)],
        json!({ "adaptive": { "minSamples": 2 } }),
    );
    let before = stats_of(&g, "alpha");
    assert_eq!(before["samples"], json!(0));
    assert_eq!(before["breaker"]["state"], "closed");
    assert!(before.get("firstTokenMs").is_none(), "{before}");
    for _ in 0..2 {
        let (result, events) = generate(&g).await;
        let r = result.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s(&r, "text"), DEFAULT_TEXT);
        assert!(events.iter().any(|e| e["type"] == "done"), "{events:?}");
    }
    let after = stats_of(&g, "alpha");
    assert_eq!(after["model"], "test/alpha");
    assert_eq!(after["samples"], json!(2));
    let p95 = n(&after["firstTokenMs"], "p95");
    assert!(p95 > 0.0 && p95 < 2_000.0, "{after}");
    // Learned, and never above the configured 400 ms (nor below the 250 ms floor).
    let learned = n(&after["learned"], "firstTokenMs");
    assert!((250.0..=400.0).contains(&learned), "{after}");
    assert_eq!(
        after["breaker"],
        json!({ "state": "closed", "failures": 0 })
    );
    assert_closed(&t, "after the guard's calls").await;
    assert_no_unhandled_rejections("after the guard's calls");
}

#[wasm_bindgen_test]
async fn its_stream_is_stream_and_feeds_the_same_state() {
    let t = tag("guard-stream");
    watch_rejections();
    let options = js(&json!({ "providers": [provider("alpha", "normal", "", &t)] }));
    let g = Guard::new(options.clone()).unwrap_or_else(|e| panic!("{:?}", error_json(&e)));
    // The guard keeps its own copy: changing the caller's objects later changes nothing.
    let first = js_sys::Reflect::get_u32(&field(&options, "providers"), 0).unwrap();
    js_sys::Reflect::set(&first, &"url".into(), &"http://127.0.0.1:1/nowhere".into()).unwrap();
    let request = js(&json!({ "messages": messages() }));
    let st = g.stream(request);
    let mut deltas = String::new();
    loop {
        let next: Function = field(&st, "next").dyn_into().unwrap();
        let promise: Promise = next.call0(&st).unwrap().unchecked_into();
        let item = settle_within(promise, 4_000).await.expect("next() settles");
        let item = item.unwrap_or_else(|e| panic!("{:?}", error_json(&e)));
        if field(&item, "done").as_bool() == Some(true) {
            break;
        }
        deltas.push_str(&field(&item, "value").as_string().unwrap());
    }
    assert_eq!(deltas, DEFAULT_TEXT);
    let result: Promise = field(&st, "result").unchecked_into();
    let r = settle_within(result, 4_000)
        .await
        .unwrap()
        .expect("resolves");
    assert_eq!(to_json(&r)["text"], DEFAULT_TEXT);
    assert_eq!(stats_of(&g, "alpha")["samples"], json!(1));
    assert_closed(&t, "after the guard's stream").await;
    assert_no_unhandled_rejections("after the guard's stream");
}

#[wasm_bindgen_test]
async fn stalls_in_a_row_open_the_breaker_and_the_provider_is_skipped() {
    let t = tag("guard-breaker");
    let ta = format!("{t}-a");
    let g = guard(
        vec![
            provider("stalling", "headers-then-silence", "", &ta),
            provider("backup", "normal", "", &t),
        ],
        json!({ "breaker": { "failureThreshold": 2, "cooldownMs": 60000 } }),
    );
    for _ in 0..2 {
        let (result, _) = generate(&g).await;
        let r = result.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            outcomes(&r["attempts"]),
            [pair("stalling", "timeout"), pair("backup", "complete")]
        );
    }
    let breaker = stats_of(&g, "stalling")["breaker"].clone();
    assert_eq!(breaker["state"], "open", "{breaker}");
    assert_eq!(breaker["reason"], "timeout");
    assert!(n(&breaker, "retryInMs") > 50_000.0, "{breaker}");
    let (result, events) = generate(&g).await;
    let r = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        outcomes(&r["attempts"]),
        [pair("stalling", "skipped"), pair("backup", "complete")]
    );
    assert_eq!(s(&r, "text"), DEFAULT_TEXT);
    let skipped = events
        .iter()
        .find(|e| e["type"] == "skipped")
        .unwrap_or_else(|| panic!("no skipped event: {events:?}"));
    assert_eq!(skipped["provider"], "stalling");
    assert_eq!(skipped["model"], "test/stalling");
    assert_eq!(skipped["reason"], "timeout");
    assert!(n(skipped, "retryInMs") > 50_000.0);
    let asked: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "request-start")
        .collect();
    assert_eq!(asked.len(), 1, "only backup is asked: {events:?}");
    assert_eq!(asked[0]["provider"], "backup");
    // Two requests reached the stalling provider, not three.
    let view = ledger_closed(&ta).await;
    assert_eq!(view.posts().len(), 2);
    assert_no_unhandled_rejections("after the skipping call");
}

#[wasm_bindgen_test]
async fn a_400_never_opens_the_breaker() {
    let t = tag("guard-400");
    let g = guard(
        vec![provider("picky", "http-400", "", &t)],
        json!({ "breaker": { "failureThreshold": 1 } }),
    );
    for _ in 0..2 {
        let (result, _) = generate(&g).await;
        let e = result.expect_err("rejects");
        assert_eq!((s(&e, "kind"), e["status"].as_u64()), ("http", Some(400)));
    }
    assert_eq!(stats_of(&g, "picky")["breaker"]["state"], "closed");
    assert_eq!(ledger_closed(&t).await.posts().len(), 2, "both were sent");
    assert_no_unhandled_rejections("after the 400s");
}

#[wasm_bindgen_test]
async fn every_provider_skipped_rejects_as_unavailable_without_a_request() {
    let t = tag("guard-unavailable");
    let g = guard(
        vec![provider("stalling", "headers-then-silence", "", &t)],
        json!({ "breaker": { "failureThreshold": 1, "cooldownMs": 60000 } }),
    );
    let (first, _) = generate(&g).await;
    assert_eq!(s(&first.expect_err("rejects"), "kind"), "timeout");
    let (second, events) = generate(&g).await;
    let e = second.expect_err("rejects");
    assert_guard_error(&e, "unavailable");
    assert_eq!(outcomes(&e["attempts"]), [pair("stalling", "skipped")]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "skipped");
    assert_eq!(ledger_closed(&t).await.posts().len(), 1);
    assert_no_unhandled_rejections("after the unavailable call");
}

#[wasm_bindgen_test]
async fn half_open_probes_the_provider_again() {
    let t = tag("guard-probe");
    let ta = format!("{t}-a");
    let g = guard(
        vec![
            provider("stalling", "headers-then-silence", "", &ta),
            provider("backup", "normal", "", &t),
        ],
        json!({ "breaker": { "failureThreshold": 1, "cooldownMs": 1 } }),
    );
    let (first, _) = generate(&g).await;
    assert_eq!(
        outcomes(&first.unwrap()["attempts"]),
        [pair("stalling", "timeout"), pair("backup", "complete")]
    );
    // Once the cool-down (1 ms) is over, the next call probes, the probe stalls, it reopens.
    // (The first call's fallback can finish within that millisecond on a fast machine.)
    until_not_open(&g, "stalling").await;
    let (second, _) = generate(&g).await;
    assert_eq!(
        outcomes(&second.unwrap()["attempts"]),
        [pair("stalling", "timeout"), pair("backup", "complete")]
    );
    assert_eq!(ledger_closed(&ta).await.posts().len(), 2);
    assert_no_unhandled_rejections("after the probe");
}

/// Waits (a timer turn at a time, at most 1 s) until `provider`'s breaker is no longer open.
async fn until_not_open(guard: &Guard, provider: &str) {
    for _ in 0..1000 {
        if stats_of(guard, provider)["breaker"]["state"] != "open" {
            return;
        }
        gloo_timers::future::TimeoutFuture::new(1).await;
    }
    panic!("the breaker of {provider} stayed open for 1 s");
}

fn method(object: &JsValue, name: &str, args: &[JsValue]) -> JsValue {
    let f: Function = field(object, name).dyn_into().expect("a method");
    let args: js_sys::Array = args.iter().collect();
    f.apply(object, &args).expect("does not throw")
}

#[wasm_bindgen_test]
async fn close_cancels_what_is_in_flight_and_later_calls() {
    let t = tag("guard-close");
    let g = guard(
        vec![provider("stalling", "keepalive-forever", "", &t)],
        json!({}),
    );
    // The guard as JavaScript holds it; closed from an event once a request is in flight (its
    // head seen: a keepalive-only stream, as Firefox's fetch resolves only with body bytes).
    let g = JsValue::from(g);
    let target = g.clone();
    let on_event = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        if field(&e, "type").as_string().as_deref() == Some("headers") {
            method(&target, "close", &[]);
        }
    });
    let request = js(&json!({ "messages": messages() }));
    js_sys::Reflect::set(&request, &"onEvent".into(), on_event.as_ref()).unwrap();
    let st = method(&g, "stream", &[js(&json!({ "messages": messages() }))]);
    let pending: Promise = method(&g, "generate", &[request]).unchecked_into();
    // Aborted by the close, not timed out at the first-token deadline.
    let e = settle_within(pending, 2_000).await.expect("settles");
    let e = error_json(&e.expect_err("rejects"));
    assert_guard_error(&e, "aborted");
    assert_eq!(e["reason"], "closed");
    let result: Promise = field(&st, "result").unchecked_into();
    let e = settle_within(result, 2_000).await.expect("settles at once");
    assert_eq!(error_json(&e.expect_err("rejects"))["reason"], "closed");
    let later: Promise =
        method(&g, "generate", &[js(&json!({ "messages": messages() }))]).unchecked_into();
    let later = error_json(
        &settle_within(later, 2_000)
            .await
            .unwrap()
            .expect_err("rejects"),
    );
    assert_eq!(
        (s(&later, "kind"), s(&later, "reason")),
        ("aborted", "closed")
    );
    drop(on_event);
    assert_closed(&t, "after close()").await;
    assert_no_unhandled_rejections("after close()");
}

#[wasm_bindgen_test]
async fn bad_options_are_config_errors() {
    let p = provider("alpha", "normal", "", &tag("guard-config"));
    for (options, words) in [
        (
            json!({ "providers": [] }),
            "providers must be a non-empty array",
        ),
        (
            json!({ "providers": [p.clone()], "hedge": { "afterMs": "soon" } }),
            "hedge.afterMs must be",
        ),
        (
            json!({ "providers": [p.clone()], "breaker": { "treshold": 1 } }),
            "unknown option `treshold` in breaker",
        ),
        (
            json!({ "providers": [p.clone()], "messages": [] }),
            "unknown option `messages`",
        ),
    ] {
        let error = match Guard::new(js(&options)) {
            Ok(_) => panic!("accepted {options}"),
            Err(e) => error_json(&e),
        };
        assert_guard_error(&error, "config");
        assert!(s(&error, "message").contains(words), "{error}");
    }
    let g = guard(vec![p.clone()], json!({}));
    let request = js(&json!({ "messages": messages(), "providers": [p] }));
    let e = settle_within(g.generate(request), 2_000).await.unwrap();
    let e = error_json(&e.expect_err("rejects"));
    assert_guard_error(&e, "config");
    assert!(s(&e, "message").contains("set on the Guard"), "{e}");
    assert_no_unhandled_rejections("after the config errors");
}

#[wasm_bindgen_test]
async fn its_hedge_asks_the_next_provider_and_its_on_event_hears_every_call() {
    let t = tag("guard-hedge");
    watch_rejections();
    assert_no_unhandled_rejections("before the hedging guard");
    let options = js(&json!({
        "providers": [
            provider("stalling", "headers-then-silence", "", &t),
            provider("backup", "normal", "", &t),
        ],
        "timeouts": deadlines(2000, 1500, 2000, 2500, 3000),
        "hedge": { "afterMs": 100 },
    }));
    // The guard's onEvent hears every event, after the call's own.
    let heard = js_sys::Array::new();
    let sink = heard.clone();
    let on_guard_event =
        wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
            sink.push(&JsValue::from_str(&format!(
                "guard:{}",
                field(&e, "type").as_string().unwrap_or_default()
            )));
        });
    js_sys::Reflect::set(&options, &"onEvent".into(), on_guard_event.as_ref()).unwrap();
    let g = Guard::new(options).unwrap_or_else(|e| panic!("{:?}", error_json(&e)));
    let sink = heard.clone();
    let on_call_event =
        wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
            sink.push(&JsValue::from_str(&format!(
                "call:{}",
                field(&e, "type").as_string().unwrap_or_default()
            )));
        });
    let request = js(&json!({ "messages": messages() }));
    js_sys::Reflect::set(&request, &"onEvent".into(), on_call_event.as_ref()).unwrap();
    let started = now();
    let r = settle_within(g.generate(request), 4_000)
        .await
        .expect("settles");
    let r = to_json(&r.unwrap_or_else(|e| panic!("{:?}", error_json(&e))));
    let elapsed = now() - started;
    assert_eq!(s(&r, "provider"), "backup");
    assert_eq!(s(&r, "text"), DEFAULT_TEXT);
    assert_eq!(
        outcomes(&r["attempts"]),
        [pair("stalling", "aborted"), pair("backup", "complete")]
    );
    assert!(
        elapsed < 1_500.0,
        "hedged, not failed over at 1.5 s: {elapsed} ms"
    );
    let heard: Vec<String> = heard.iter().filter_map(|h| h.as_string()).collect();
    let calls: Vec<&str> = heard
        .iter()
        .filter_map(|h| h.strip_prefix("call:"))
        .collect();
    let guards: Vec<&str> = heard
        .iter()
        .filter_map(|h| h.strip_prefix("guard:"))
        .collect();
    assert_eq!(calls, guards, "the guard hears what the call hears");
    assert!(calls.contains(&"hedge"), "{heard:?}");
    for pair in heard.chunks(2) {
        assert!(
            pair[0].starts_with("call:") && pair[1].starts_with("guard:"),
            "{heard:?}"
        );
    }
    drop((on_guard_event, on_call_event));
    assert_closed(&t, "after the hedge").await;
    assert_no_unhandled_rejections("after the hedge");
}

#[wasm_bindgen_test]
async fn an_answer_cut_after_text_is_continued_when_continuation_is_on() {
    let t = tag("guard-continue");
    let g = guard(
        vec![
            provider("cut", "stall-after-chunks", "chunks=4", &t),
            provider("continuer", "continue", "", &t),
        ],
        json!({
            "continuation": true,
            "timeouts": deadlines(2000, 1000, 300, 2500, 3000),
        }),
    );
    let (result, events) = generate(&g).await;
    let r = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s(&r, "text"), DEFAULT_TEXT, "{r}");
    assert_eq!(r["partial"], json!(false));
    assert_eq!(r["continuation"]["from"], "cut", "{r}");
    assert!(
        events.iter().any(|e| e["type"] == "continuation"),
        "{events:?}"
    );
    assert_closed(&t, "after the continuation").await;
    assert_no_unhandled_rejections("after the continuation");
}

#[wasm_bindgen_test]
async fn its_session_cancels_its_calls() {
    let t = tag("guard-session");
    watch_rejections();
    let session = llm_stream_guard::web::Session::new(js(&json!({ "page": false })))
        .unwrap_or_else(|e| panic!("{:?}", error_json(&e)));
    let session = JsValue::from(session);
    let options = js(&json!({
        "providers": [provider("stalling", "keepalive-forever", "", &t)],
        "timeouts": deadlines(2000, 1500, 2000, 2500, 3000),
    }));
    js_sys::Reflect::set(&options, &"session".into(), &session).unwrap();
    let g = Guard::new(options).unwrap_or_else(|e| panic!("{:?}", error_json(&e)));
    let target = session.clone();
    let on_event = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        if field(&e, "type").as_string().as_deref() == Some("headers") {
            method(&target, "cancel", &["hang-up".into()]);
        }
    });
    let request = js(&json!({ "messages": messages() }));
    js_sys::Reflect::set(&request, &"onEvent".into(), on_event.as_ref()).unwrap();
    let e = settle_within(g.generate(request), 2_000)
        .await
        .expect("settles");
    let e = error_json(&e.expect_err("rejects"));
    assert_guard_error(&e, "aborted");
    assert_eq!(e["reason"], "hang-up", "the session's reason: {e}");
    assert_eq!(field(&session, "active").as_f64(), Some(0.0), "untracked");
    method(&session, "close", &[]);
    drop(on_event);
    assert_closed(&t, "after the session's cancel").await;
    assert_no_unhandled_rejections("after the session's cancel");
}
