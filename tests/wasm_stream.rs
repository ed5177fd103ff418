//! `stream()` against the real mock upstream (`cargo xtask test --only node|chrome|firefox`
//! starts the mock and passes its URL as `MOCK_UPSTREAM_URL`): the deltas joined are
//! `result.text`, it is an async iterable, a failure reaches the loop once and `result` is
//! never an unhandled rejection, and `cancel()` or leaving the loop releases the upstream at
//! once. Every call has a watchdog; nothing sleeps.

#![cfg(target_arch = "wasm32")]

mod wasm_common;

use js_sys::{Function, Promise, Reflect, Symbol, JSON};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_common::*;

/// `stream(options)` with the test's providers and deadlines.
fn start(providers: Vec<Value>, timeouts: Value) -> JsValue {
    watch_rejections();
    assert_no_unhandled_rejections("before this call (left by an earlier test)");
    let options = JSON::parse(&opts(providers, timeouts).to_string()).unwrap();
    llm_stream_guard::web::stream(options)
}

fn call(object: &JsValue, method: &str, args: &[JsValue]) -> JsValue {
    let f: Function = field(object, method).dyn_into().expect("a method");
    let args: js_sys::Array = args.iter().collect();
    f.apply(object, &args).expect("does not throw")
}

/// One `next()`: `Ok(Some(delta))`, `Ok(None)` at the end, or the rejection.
async fn next(stream: &JsValue) -> Result<Option<String>, JsValue> {
    let promise: Promise = call(stream, "next", &[]).unchecked_into();
    let item = settle_within(promise, 4_000)
        .await
        .expect("next() settles within 4 s")?;
    if field(&item, "done").as_bool() == Some(true) {
        return Ok(None);
    }
    Ok(Some(field(&item, "value").as_string().expect("a string")))
}

/// Every delta until the end, then the error if it ended with one.
async fn drain(stream: &JsValue) -> (Vec<String>, Option<JsValue>) {
    let mut deltas = Vec::new();
    loop {
        match next(stream).await {
            Ok(Some(delta)) => deltas.push(delta),
            Ok(None) => return (deltas, None),
            Err(error) => return (deltas, Some(error)),
        }
    }
}

async fn result(stream: &JsValue) -> Result<JsValue, JsValue> {
    let promise: Promise = field(stream, "result").unchecked_into();
    settle_within(promise, 4_000)
        .await
        .expect("result settles within 4 s")
}

#[wasm_bindgen_test]
async fn the_deltas_joined_are_the_result_text() {
    let t = tag("stream-normal");
    let st = start(vec![provider("alpha", "normal", "", &t)], roomy());
    // The iterator protocol: `[Symbol.asyncIterator]()` is the stream itself.
    let iterator = Reflect::get(&st, &Symbol::async_iterator()).unwrap();
    let iterator: Function = iterator
        .dyn_into()
        .expect("[Symbol.asyncIterator] is a method");
    assert!(iterator.call0(&st).unwrap() == st);
    let (deltas, error) = drain(&st).await;
    assert!(error.is_none(), "{:?}", error.map(|e| error_json(&e)));
    assert!(deltas.len() > 1, "in pieces: {deltas:?}");
    assert_eq!(deltas.concat(), DEFAULT_TEXT);
    let r = to_json(&result(&st).await.expect("resolves"));
    assert_eq!(s(&r, "text"), DEFAULT_TEXT);
    assert_eq!(r["partial"], Value::Bool(false));
    // After the end, the end again.
    assert_eq!(next(&st).await.unwrap(), None);
    assert_closed(&t, "stream normal").await;
    assert_no_unhandled_rejections("after a complete stream");
}

#[wasm_bindgen_test]
async fn a_partial_answer_streams_what_the_result_holds() {
    let (ta, tb) = (tag("stream-stall-a"), tag("stream-stall-b"));
    let st = start(
        vec![
            provider("alpha", "stall-after-chunks", "chunks=3", &ta),
            provider("beta", "normal", "", &tb),
        ],
        tight(),
    );
    let (deltas, error) = drain(&st).await;
    assert!(error.is_none());
    let r = to_json(&result(&st).await.expect("resolves partial"));
    assert_eq!(r["partial"], Value::Bool(true));
    assert_eq!(deltas.concat(), FIRST_THREE);
    assert_eq!(s(&r, "text"), FIRST_THREE);
    assert_closed(&ta, "stream partial").await;
    assert_untouched(&tb, "stream partial: no failover").await;
}

#[wasm_bindgen_test]
async fn a_failure_reaches_the_loop_once_and_is_never_unhandled() {
    let t = tag("stream-400");
    let st = start(vec![provider("alpha", "http-400", "", &t)], roomy());
    let (deltas, error) = drain(&st).await;
    assert!(deltas.is_empty());
    let error = error_json(&error.expect("next() rejects with the error"));
    assert_eq!(
        (s(&error, "kind"), error["status"].as_f64()),
        ("http", Some(400.0))
    );
    assert_eq!(next(&st).await.unwrap(), None, "once; then the end");
    // Nobody has looked at `result` yet: its rejection must not be unhandled. The ledger read
    // is a network round trip, past the turn where the runtime reports one.
    assert_closed(&t, "stream 400").await;
    assert_no_unhandled_rejections("a failed stream whose result nobody awaited");
    let failed = error_json(&result(&st).await.expect_err("result rejects too"));
    assert_eq!(s(&failed, "kind"), "http");

    // Bad options: the same, as a config error.
    let st = llm_stream_guard::web::stream(JsValue::from_str("not options"));
    let (_, error) = drain(&st).await;
    assert_eq!(s(&error_json(&error.unwrap()), "kind"), "config");
    let _ = llm_stream_guard::web::stream(JsValue::NULL);
    assert_closed(&t, "stream 400 again").await;
    assert_no_unhandled_rejections("streams nobody iterated or awaited");
}

#[wasm_bindgen_test]
async fn cancel_releases_the_upstream_at_once_and_ends_the_iteration() {
    let t = tag("stream-cancel");
    let st = start(
        vec![provider("alpha", "endless", "delay_ms=40", &t)],
        roomy(),
    );
    for _ in 0..2 {
        assert!(next(&st).await.unwrap().is_some());
    }
    let waiting: Promise = call(&st, "next", &[]).unchecked_into();
    let cancelled_at = now();
    call(&st, "cancel", &[JsValue::from_str("user-stop")]);
    let item = JsFuture::from(waiting)
        .await
        .expect("a waiting next() ends");
    assert_eq!(field(&item, "done").as_bool(), Some(true));
    let error = error_json(&result(&st).await.expect_err("result rejects"));
    assert_eq!(
        (s(&error, "kind"), s(&error, "reason")),
        ("aborted", "user-stop")
    );
    assert_released_by_client(&t, cancelled_at, "stream cancel").await;
    assert_no_unhandled_rejections("after a cancel");
}

#[wasm_bindgen_test]
async fn leaving_the_loop_early_cancels_the_call() {
    let t = tag("stream-return");
    let st = start(
        vec![provider("alpha", "endless", "delay_ms=40", &t)],
        roomy(),
    );
    assert!(next(&st).await.unwrap().is_some());
    let left_at = now();
    let done = JsFuture::from(call(&st, "return", &[]).unchecked_into::<Promise>())
        .await
        .unwrap();
    assert_eq!(field(&done, "done").as_bool(), Some(true));
    assert_eq!(next(&st).await.unwrap(), None);
    let error = error_json(&result(&st).await.expect_err("result rejects"));
    assert_eq!(
        (s(&error, "kind"), s(&error, "reason")),
        ("aborted", "cancel")
    );
    assert_released_by_client(&t, left_at, "stream return").await;
    assert_no_unhandled_rejections("after leaving the loop");
}
