//! `guardFetch()` against the real mock upstream, in Chromium, Firefox and Node (`cargo xtask
//! test --only chrome|firefox|node`): the guarded `fetch` called as an SDK calls it, its
//! `Response` read as an SDK reads it, the mock's ledger read to prove every upstream was
//! released. (The SDKs themselves are tested in tests/sdk.)

#![cfg(target_arch = "wasm32")]

mod wasm_common;

use js_sys::{Function, Promise, Reflect};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;
use wasm_common::*;

/// How soon after a cancel the upstream must be closed.
const RELEASE_MS: f64 = 100.0;

fn guarded(options: Value) -> Function {
    watch_rejections();
    let options = serde_wasm_options(&options);
    llm_stream_guard::web::guard_fetch(options)
        .expect("valid options")
        .unchecked_into()
}

/// JSON options as a JS object.
fn serde_wasm_options(options: &Value) -> JsValue {
    js_sys::JSON::parse(&options.to_string()).expect("JSON")
}

/// Nothing is left held (timers, readers, listeners, requests in flight) once a request is over.
fn assert_nothing_held(what: &str) {
    let live = llm_stream_guard::web::live_resources();
    let counts: Vec<f64> = ["timers", "readers", "listeners", "inFlight"]
        .iter()
        .map(|k| Reflect::get(&live, &(*k).into()).unwrap().as_f64().unwrap())
        .collect();
    assert_eq!(
        counts, [0.0; 4],
        "{what}: liveResources() timers, readers, listeners, inFlight"
    );
}

/// `init` for a chat POST with `body`.
fn post(body: &Value, signal: Option<&web_sys::AbortSignal>) -> JsValue {
    let init = serde_wasm_options(&json!({
        "method": "POST",
        "headers": { "content-type": "application/json", "authorization": "Bearer sk-own-0123456789abcdef" },
        "body": body.to_string(),
    }));
    if let Some(signal) = signal {
        Reflect::set(&init, &"signal".into(), signal).unwrap();
    }
    init
}

fn chat_body(stream: bool) -> Value {
    json!({ "model": "own-model", "messages": messages(), "stream": stream })
}

/// The guarded fetch's promise for `url` with `init`.
fn send(fetch: &Function, url: &str, init: &JsValue) -> Promise {
    fetch
        .call2(&JsValue::UNDEFINED, &url.into(), init)
        .expect("the guarded fetch returns")
        .unchecked_into()
}

/// `promise` rejects, within 2 s, with an `AbortError`, as `fetch` does for an aborted signal.
async fn assert_abort_error(promise: Promise) {
    let error = settle_within(promise, 2_000)
        .await
        .expect("settles")
        .expect_err("rejects");
    let name = Reflect::get(&error, &"name".into()).unwrap().as_string();
    assert_eq!(name.as_deref(), Some("AbortError"));
}

async fn call(fetch: &Function, url: &str, init: &JsValue) -> Result<web_sys::Response, JsValue> {
    settle_within(send(fetch, url, init), 8_000)
        .await
        .expect("the guarded fetch settles")
        .map(JsCast::unchecked_into)
}

async fn text(response: &web_sys::Response) -> String {
    let promise = response.text().expect("text()");
    settle_within(promise, 8_000)
        .await
        .expect("the body settles")
        .expect("the body reads")
        .as_string()
        .unwrap_or_default()
}

/// The answer text in SSE chat chunks.
fn content(sse: &str) -> String {
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_stall_before_the_first_token_fails_over_and_the_sdk_sees_only_the_answer() {
    let tag = tag("gf-failover");
    let fetch = guarded(json!({
        "timeouts": { "firstTokenMs": 300 },
        "providers": [{ "name": "fb", "url": scenario_url("normal", "", &tag), "model": "fb-model", "apiKey": "sk-fb-0123456789abcdef" }],
    }));
    let url = scenario_url("headers-then-silence", "", &tag);
    let response = call(&fetch, &url, &post(&chat_body(true), None))
        .await
        .expect("a response");
    assert_eq!(response.status(), 200);
    let body = text(&response).await;
    assert_eq!(content(&body), DEFAULT_TEXT);
    assert!(body.trim_end().ends_with("data: [DONE]"));
    let view = assert_closed(&tag, "failover").await;
    let posts = view.posts();
    assert_eq!(posts.len(), 2, "{:?}", view.connections);
    assert_eq!(posts[0].body_json()["model"], "own-model");
    let expected = chat_body(true).to_string().replace("own-model", "fb-model");
    assert_eq!(
        posts[1].body, expected,
        "the fallback's body: only the model changed"
    );
}

#[wasm_bindgen_test]
async fn everything_failing_answers_502_with_a_json_error_the_sdks_do_not_retry() {
    let tag = tag("gf-fail");
    let fetch = guarded(json!({
        "retry": { "maxRetries": 0 },
        "providers": [{ "name": "fb", "url": scenario_url("http-500", "", &tag), "model": "m" }],
    }));
    let url = scenario_url("http-503", "", &tag);
    let response = call(&fetch, &url, &post(&chat_body(true), None))
        .await
        .expect("a response");
    assert_eq!(response.status(), 502);
    assert_eq!(
        response
            .headers()
            .get("x-should-retry")
            .ok()
            .flatten()
            .as_deref(),
        Some("false")
    );
    let body: Value = serde_json::from_str(&text(&response).await).expect("JSON");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("HTTP 503") && message.contains("fb: HTTP 500"),
        "{message}"
    );
    assert!(!message.contains("sk-own-0123456789abcdef"), "{message}");
    assert_eq!(body["error"]["attempts"].as_array().map(Vec::len), Some(2));
    assert_eq!(assert_closed(&tag, "fail").await.posts().len(), 2);
    assert_nothing_held("fail");
}

#[wasm_bindgen_test]
async fn cancelling_the_body_closes_the_upstream_at_once() {
    let tag = tag("gf-cancel");
    let fetch = guarded(json!({}));
    let url = scenario_url("stall-after-chunks", "", &tag);
    let response = call(&fetch, &url, &post(&chat_body(true), None))
        .await
        .expect("a response");
    let body = response.body().expect("a body");
    let reader: web_sys::ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let first = JsFuture::from(reader.read()).await.expect("a first chunk");
    assert_eq!(Reflect::get(&first, &"done".into()).unwrap(), false);
    let at = now();
    let _ = JsFuture::from(reader.cancel()).await;
    let view = assert_closed(&tag, "body cancel").await;
    let closed = only_post(&view, "body cancel").closed_at_ms.unwrap();
    assert!(
        closed - at < RELEASE_MS,
        "closed {} ms after the cancel",
        closed - at
    );
    assert_nothing_held("body cancel");
}

#[wasm_bindgen_test]
async fn the_callers_signal_rejects_with_its_reason_and_nothing_is_left_open() {
    let tag = tag("gf-signal");
    let fetch = guarded(json!({}));
    let controller = web_sys::AbortController::new().unwrap();
    let url = scenario_url("headers-then-silence", "", &tag);
    let promise = send(
        &fetch,
        &url,
        &post(&chat_body(true), Some(&controller.signal())),
    );
    controller.abort();
    assert_abort_error(promise).await;
    assert_untouched(&tag, "aborted before it was sent").await;

    // Aborted while the response is held: the upstream is released.
    let tag = crate::tag("gf-signal-held");
    let fetch = guarded(json!({}));
    let controller = web_sys::AbortController::new().unwrap();
    let url = scenario_url("stall-after-chunks", "first_delay_ms=5000", &tag);
    let promise = send(
        &fetch,
        &url,
        &post(&chat_body(true), Some(&controller.signal())),
    );
    // Abort once the mock has the request (its ledger says so), never on a timer.
    loop {
        if !ledger_now(&tag).await.posts().is_empty() {
            break;
        }
    }
    controller.abort();
    assert_abort_error(promise).await;
    assert_closed(&tag, "aborted while held").await;
    assert_nothing_held("aborted while held");
}

#[wasm_bindgen_test]
async fn other_requests_pass_through() {
    let fetch = guarded(
        json!({ "providers": [{ "name": "fb", "url": scenario_url("normal", "", "x"), "model": "m" }] }),
    );
    let init = serde_wasm_options(&json!({ "method": "GET" }));
    let response = call(&fetch, &format!("{}/", mock()), &init)
        .await
        .expect("a response");
    let status = response.status();
    let body = text(&response).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("scenario"));
}

#[wasm_bindgen_test]
async fn a_request_object_is_read_as_fetch_reads_it() {
    let tag = tag("gf-request");
    let fetch = guarded(json!({
        "timeouts": { "firstTokenMs": 300 },
        "providers": [{ "name": "fb", "url": scenario_url("normal", "", &tag), "model": "fb-model" }],
    }));
    let url = scenario_url("headers-then-silence", "", &tag);
    let constructor: Function = Reflect::get(&js_sys::global(), &"Request".into())
        .unwrap()
        .unchecked_into();
    let args = js_sys::Array::of2(&url.into(), &post(&chat_body(true), None));
    let request = Reflect::construct(&constructor, &args).expect("a Request");
    let promise: Promise = fetch
        .call1(&JsValue::UNDEFINED, &request)
        .unwrap()
        .unchecked_into();
    let response: web_sys::Response = settle_within(promise, 8_000)
        .await
        .expect("settles")
        .expect("a response")
        .unchecked_into();
    assert_eq!(content(&text(&response).await), DEFAULT_TEXT);
    let view = assert_closed(&tag, "Request input").await;
    let posts = view.posts();
    assert_eq!(posts.len(), 2);
    assert_eq!(
        posts[0].body,
        chat_body(true).to_string(),
        "the SDK's own body, as sent"
    );
    assert_eq!(posts[1].body_json()["model"], "fb-model");
    assert_nothing_held("Request input");
}

#[wasm_bindgen_test]
fn bad_options_throw_a_config_error() {
    let error =
        llm_stream_guard::web::guard_fetch(serde_wasm_options(&json!({ "onCut": "ignore" })))
            .expect_err("refused");
    assert_eq!(
        Reflect::get(&error, &"kind".into())
            .unwrap()
            .as_string()
            .as_deref(),
        Some("config")
    );
    let error = llm_stream_guard::web::guard_fetch(serde_wasm_options(&json!({ "timeout": {} })))
        .expect_err("refused");
    let message = Reflect::get(&error, &"message".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert!(message.contains("did you mean `timeouts`"), "{message}");
}
