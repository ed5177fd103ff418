//! `generate()` against the real mock upstream, in Chromium, Firefox and Node (`cargo xtask test
//! --only chrome|firefox|node` starts the mock and passes its URL as `MOCK_UPSTREAM_URL`).
//!
//! Every provider URL carries a unique `tag`, so each test reads its own connections from the
//! mock's ledger (long-polled until they are closed): that is how the tests prove that every exit
//! path released the upstream connection. Nothing sleeps: deadlines are a few hundred
//! milliseconds, elapsed times are checked with a tight lower bound and generous upper slack, and
//! the measured figures are printed (visible with `--nocapture` or when a test fails).
//!
//! wasm-bindgen-test runs the tests of a file one after another, and in browsers the whole file
//! must finish within `WASM_BINDGEN_TEST_TIMEOUT` (20 s by default): independent cases run
//! concurrently inside one test (`join_all`), and every call has a watchdog so that a call that
//! never settles fails its own test instead of stalling the page.

#![cfg(target_arch = "wasm32")]

mod wasm_common;

use std::cell::Cell;
use std::rc::Rc;

use futures::future::join_all;
use gloo_timers::callback::Timeout;
use js_sys::Reflect;
use serde_json::{json, Value};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
use wasm_common::*;

// ---------------------------------------------------------------------------------------------
// The seed's scenarios
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn normal_answer_streams_the_exact_text_with_usage_and_generation_id() {
    const KEY: &str = "sk-or-v1-TESTSECRET-4f1c2a9e77";
    let t = tag("normal");
    let mut p = provider("alpha", "normal", "", &t);
    p["apiKey"] = json!(KEY);
    p["headers"] = json!({ "X-Title": "wasm-generate-tests" });
    let mut options = opts(vec![p], roomy());
    options["params"] = json!({ "temperature": 0.25, "max_tokens": 64 });
    let run = run(options, Extra::default()).await;
    assert_complete(&run, DEFAULT_TEXT);
    let r = run.ok();
    assert!(
        run.texts.len() > 1,
        "the text arrived in pieces: {:?}",
        run.texts
    );
    assert_fields(
        r,
        &[
            ("finishReason", "stop"),
            ("provider", "alpha"),
            ("model", "test/alpha"),
        ],
    );
    assert_eq!(run.attempts(), vec![att("alpha", "complete", Some(200))]);

    let stats = &r["stats"];
    assert_eq!(
        n(stats, "chunks"),
        DEFAULT_PIECES as f64,
        "stats.chunks: {stats}"
    );
    assert!(
        n(stats, "lines") >= 14.0,
        "stats.lines counts every data line: {stats}"
    );
    let first = n(stats, "firstTokenMs");
    let elapsed = n(stats, "elapsedMs");
    assert!(
        first >= 0.0 && first <= elapsed,
        "stats.firstTokenMs <= elapsedMs: {stats}"
    );
    assert!(
        elapsed <= run.elapsed() + 1.0,
        "stats.elapsedMs within the call: {stats}"
    );
    figure("normal: first token", first);
    figure("normal: whole answer", run.elapsed());

    let view = assert_closed(&t, "normal").await;
    let post = only_post(&view, "normal");
    assert_eq!(
        s(r, "generationId"),
        format!("gen-mock-{}", post.id),
        "generationId: {r}"
    );

    let body = post.body_json();
    assert_eq!(body["model"], json!("test/alpha"), "request body: {body}");
    assert_eq!(body["messages"], messages(), "request body: {body}");
    assert_eq!(body["stream"], json!(true), "request body: {body}");
    assert_eq!(body["temperature"], json!(0.25), "params merged: {body}");
    assert_eq!(body["max_tokens"], json!(64), "params merged: {body}");

    assert!(
        post.authorization_seen,
        "Authorization sent: {:?}",
        post.headers
    );
    let bearer_len = "Bearer ".len() + KEY.len();
    assert_eq!(
        post.headers.get("authorization").map(String::as_str),
        Some(format!("<redacted len={bearer_len}>").as_str()),
        "Authorization is `Bearer <apiKey>`"
    );
    assert_eq!(
        post.headers.get("x-title").map(String::as_str),
        Some("wasm-generate-tests"),
        "provider headers sent: {:?}",
        post.headers
    );
    assert!(
        post.headers
            .get("content-type")
            .is_some_and(|v| v.contains("application/json")),
        "JSON request: {:?}",
        post.headers
    );

    let usage = &r["usage"];
    let prompt = (post.body.len() as f64 / 4.0).ceil().max(1.0);
    assert_eq!(n(usage, "prompt_tokens"), prompt, "usage: {usage}");
    assert_eq!(
        n(usage, "completion_tokens"),
        DEFAULT_PIECES as f64,
        "usage: {usage}"
    );
    assert_eq!(
        n(usage, "total_tokens"),
        prompt + DEFAULT_PIECES as f64,
        "usage: {usage}"
    );

    assert_eq!(
        run.event_types(),
        [
            "request-start",
            "headers",
            "first-token",
            "stream-end",
            "done"
        ],
        "events: {}",
        run.event_summary()
    );
    let start = run.events_of("request-start")[0];
    assert_fields(start, &[("provider", "alpha"), ("model", "test/alpha")]);
    assert_eq!(n(start, "attempt"), 1.0);
    assert_eq!(n(run.events_of("headers")[0], "status"), 200.0);
    let done = run.events_of("done")[0];
    assert_eq!(done["partial"], json!(false));
    assert_eq!(s(done, "provider"), "alpha");
    assert!(
        !run.everything().contains(KEY) && !run.everything().contains("TESTSECRET"),
        "the API key leaked into the result or the events"
    );
}

#[wasm_bindgen_test]
async fn stall_after_chunks_resolves_partial_once_idle_passes() {
    let (ta, tb, run) =
        call_alpha_then_beta("stall", "stall-after-chunks", "chunks=3", tight()).await;
    assert_partial(&run, FIRST_THREE, "timeout", Some("idle"));
    assert_eq!(s(run.ok(), "provider"), "alpha");
    assert_eq!(run.attempts(), vec![att("alpha", "partial", Some(200))]);
    let idle = run.settled_at - run.last_text_at().unwrap();
    assert_near("stall-after-chunks: last text to partial", idle, 300.0);
    let timeouts = run.only_event("timeout");
    assert_fields(timeouts, &[("phase", "idle"), ("layer", "provider")]);
    assert_eq!(n(timeouts, "chunks"), 3.0, "timeout.chunks: {}", timeouts);
    assert!(
        run.events_of("failover").is_empty(),
        "a partial answer does not fail over"
    );
    assert_released_by_client(&ta, run.settled_at, "stall-after-chunks").await;
    assert_untouched(&tb, "stall-after-chunks: partial answer, no failover").await;
}

/// The first provider's first-token deadline (600 ms) ends its attempt inside the service
/// deadline (1000 ms); the second provider gets only what is left, so the call ends at 1000 ms
/// with `layer: "service"`, and both upstream connections were released.
#[wasm_bindgen_test]
async fn service_deadline_spans_the_failover_chain() {
    let (ta, tb) = (tag("service-a"), tag("service-b"));
    let timeouts = deadlines(2000, 600, 2000, 2500, 1000);
    let run = call_chain(
        vec![
            provider("alpha", "keepalive-forever", "keepalive_ms=50", &ta),
            provider("beta", "keepalive-forever", "keepalive_ms=50", &tb),
        ],
        timeouts,
    )
    .await;
    let err = run.err();
    assert_guard_error(err, "timeout");
    assert_fields(
        err,
        &[
            ("layer", "service"),
            ("phase", "first-token"),
            ("partialText", ""),
            ("provider", "beta"),
        ],
    );
    assert_near("service across providers: elapsed", run.elapsed(), 1000.0);
    assert_eq!(
        run.attempts(),
        vec![
            att("alpha", "timeout", Some(200)),
            att("beta", "timeout", Some(200))
        ]
    );
    let failover = run.only_event("failover");
    assert_fields(failover, &[("from", "alpha"), ("to", "beta")]);
    let timeouts = run.events_of("timeout");
    assert_eq!(timeouts.len(), 2, "{}", run.event_summary());
    assert_eq!(s(timeouts[0], "layer"), "provider", "{}", timeouts[0]);
    assert_eq!(s(timeouts[1], "layer"), "service", "{}", timeouts[1]);
    let (failover_at, _) = run.timed_events_of("failover")[0];
    assert_near(
        "service across providers: first provider's first-token timeout",
        failover_at - run.started_at,
        600.0,
    );
    let a = assert_closed(&ta, "service: first provider").await;
    let b = assert_closed(&tb, "service: second provider").await;
    for (view, what) in [(a, "first"), (b, "second")] {
        let conn = only_post(&view, what);
        assert_eq!(
            conn.closed_by.as_deref(),
            Some("client"),
            "{what}: {conn:?}"
        );
    }
}

/// A first-token deadline beyond `serviceMs` is clipped to it, and once the service deadline
/// has passed no other provider is tried.
#[wasm_bindgen_test]
async fn service_deadline_clips_a_longer_first_token_deadline() {
    let timeouts = deadlines(5000, 5000, 5000, 5000, 700);
    let (ta, tb, run) =
        call_alpha_then_beta("clip", "keepalive-forever", "keepalive_ms=50", timeouts).await;
    let err = run.err();
    assert_guard_error(err, "timeout");
    assert_fields(err, &[("layer", "service"), ("phase", "first-token")]);
    assert_near("service clips first-token: elapsed", run.elapsed(), 700.0);
    assert_eq!(run.attempts(), vec![att("alpha", "timeout", Some(200))]);
    assert_released_by_client(&ta, run.settled_at, "service clip").await;
    assert_untouched(&tb, "service clip: no time left for another provider").await;
}

/// How soon after the caller's abort the promise must reject.
const ABORT_REJECT_MS: f64 = 100.0;

/// An AbortController whose `abort()` time is recorded.
fn controller() -> (web_sys::AbortController, Rc<Cell<f64>>) {
    (
        web_sys::AbortController::new().unwrap(),
        Rc::new(Cell::new(f64::NAN)),
    )
}

/// [`call_chain`] with `controller`'s signal.
async fn call_with_signal(
    providers: Vec<Value>,
    timeouts: Value,
    controller: &web_sys::AbortController,
) -> Run {
    let extra = Extra {
        signal: Some(controller.signal()),
        ..Extra::default()
    };
    run(opts(providers, timeouts), extra).await
}

/// An `onText` hook that aborts `c` at the first text and records when in `at`.
fn abort_at_first_text(c: &web_sys::AbortController, at: &Rc<Cell<f64>>) -> TextHook {
    let (c, at) = (c.clone(), at.clone());
    Box::new(move |_| {
        if at.get().is_nan() {
            at.set(now());
            c.abort();
        }
    })
}

fn abort_after(ms: u32, c: &web_sys::AbortController, at: &Rc<Cell<f64>>) -> Timeout {
    let (c, at) = (c.clone(), at.clone());
    Timeout::new(ms, move || {
        at.set(now());
        c.abort();
    })
}

fn assert_aborted(run: &Run, aborted_at: f64, partial_text: &str, what: &str) {
    let err = run.err();
    assert_guard_error(err, "aborted");
    assert_eq!(s(err, "reason"), "signal", "{what}: {err}");
    assert_eq!(s(err, "partialText"), partial_text, "{what}: {err}");
    assert!(!aborted_at.is_nan(), "{what}: the abort ran");
    let latency = run.settled_at - aborted_at;
    figure(&format!("{what}: abort to rejection"), latency);
    assert!(
        (0.0..=ABORT_REJECT_MS).contains(&latency),
        "{what}: rejected {latency:.1} ms after the abort (limit {ABORT_REJECT_MS})"
    );
    assert!(
        !run.events_of("cancelled").is_empty(),
        "{what}: a cancelled event: {}",
        run.event_summary()
    );
}

#[wasm_bindgen_test]
async fn abort_before_the_first_token_rejects_at_once_and_releases_the_connection() {
    let (ta, tb) = (tag("abort-wait-a"), tag("abort-wait-b"));
    let (c, at) = controller();
    let _timer = abort_after(150, &c, &at);
    let run = call_with_signal(
        vec![
            provider("alpha", "keepalive-forever", "keepalive_ms=50", &ta),
            provider("beta", "normal", "", &tb),
        ],
        roomy(),
        &c,
    )
    .await;
    assert_aborted(&run, at.get(), "", "abort before first token");
    assert_eq!(s(run.err(), "provider"), "alpha");
    assert_eq!(
        run.attempts(),
        vec![att("alpha", "aborted", Some(200))],
        "the aborted attempt is logged"
    );
    let cancelled = run.events_of("cancelled");
    assert_eq!(s(cancelled[0], "reason"), "signal", "{}", cancelled[0]);
    assert_released_by_client(&ta, at.get(), "abort before first token: cancel to close").await;
    assert_untouched(&tb, "abort before first token: an abort never fails over").await;
}

#[wasm_bindgen_test]
async fn abort_from_on_text_after_the_first_delta_keeps_that_delta() {
    let t = tag("abort-ontext");
    let (c, at) = controller();
    let run = run(
        opts(
            vec![provider("alpha", "normal", "delay_ms=100", &t)],
            roomy(),
        ),
        Extra {
            signal: Some(c.signal()),
            on_text: Some(abort_at_first_text(&c, &at)),
            ..Extra::default()
        },
    )
    .await;
    assert_aborted(&run, at.get(), "Hello ", "abort inside onText");
    assert_eq!(run.joined(), "Hello ", "no text delivered after the abort");
    assert_released_by_client(&t, at.get(), "abort inside onText: cancel to close").await;
}

#[wasm_bindgen_test]
async fn abort_mid_stream_from_a_timer_keeps_the_text_so_far() {
    let t = tag("abort-endless");
    let (c, at) = controller();
    let _timer = abort_after(200, &c, &at);
    let run = call_with_signal(
        vec![provider("alpha", "endless", "delay_ms=20", &t)],
        roomy(),
        &c,
    )
    .await;
    let partial = s(run.err(), "partialText").to_string();
    assert_aborted(&run, at.get(), &partial, "abort mid-stream");
    assert!(
        partial.len() >= 3 * TICK.len() && partial == TICK.repeat(partial.len() / TICK.len()),
        "partialText is whole ticks: {partial:?}"
    );
    assert_eq!(
        run.joined(),
        partial,
        "partialText equals the text delivered"
    );
    assert_released_by_client(&t, at.get(), "abort mid-stream: cancel to close").await;
}

#[wasm_bindgen_test]
async fn an_already_aborted_signal_rejects_without_waiting() {
    let t = tag("abort-early");
    let (c, at) = controller();
    at.set(now());
    c.abort();
    let run = call_with_signal(
        vec![provider("alpha", "keepalive-forever", "", &t)],
        roomy(),
        &c,
    )
    .await;
    assert_aborted(&run, at.get(), "", "already aborted");
    let view = ledger_now(&t).await;
    if !view.connections.is_empty() {
        assert_closed(&t, "already aborted").await;
    }
}

#[wasm_bindgen_test]
async fn concurrent_calls_half_aborted_the_rest_finish_with_their_own_text() {
    const CALLS: usize = 6;
    let mut futures = Vec::new();
    let mut meta = Vec::new();
    for i in 0..CALLS {
        let text = format!("call {i} answers in a few words");
        let t = tag(&format!("concurrent-{i}"));
        let query = format!("delay_ms=40&text={}", enc(&text));
        let (c, at) = controller();
        let timer = (i % 2 == 0).then(|| abort_after(120, &c, &at));
        let options = opts(vec![provider("alpha", "normal", &query, &t)], roomy());
        futures.push(run(
            options,
            Extra {
                signal: Some(c.signal()),
                watchdog_ms: Some(6000),
                ..Extra::default()
            },
        ));
        meta.push((text, t, at, timer));
    }
    let runs = join_all(futures).await;
    for (i, (run, (text, t, at, _timer))) in runs.iter().zip(&meta).enumerate() {
        if i % 2 == 0 {
            let partial = s(run.err(), "partialText").to_string();
            assert!(
                text.starts_with(&partial),
                "call {i}: partialText {partial:?} is a prefix of {text:?}"
            );
            assert_aborted(run, at.get(), &partial, &format!("concurrent call {i}"));
            assert_released_by_client(
                t,
                at.get(),
                &format!("concurrent call {i}: cancel to close"),
            )
            .await;
        } else {
            assert_complete(run, text);
            let view = assert_closed(t, &format!("concurrent call {i}")).await;
            only_post(&view, &format!("concurrent call {i}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Every scenario of the mock
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn keepalive_then_content_completes_and_keepalives_are_not_the_first_token() {
    let t = tag("keepalive-then-content");
    let run = call_chain(
        vec![provider(
            "alpha",
            "keepalive-then-content",
            "keepalives=5&keepalive_ms=50",
            &t,
        )],
        roomy(),
    )
    .await;
    assert_complete(&run, DEFAULT_TEXT);
    let first = n(&run.ok()["stats"], "firstTokenMs");
    figure("keepalive-then-content: first token", first);
    assert!(
        first >= 250.0 - LOW_SLACK,
        "first token after the 5 keepalives (~250 ms): {first}"
    );
    let ev = run.only_event("first-token");
    assert!(n(ev, "firstTokenMs") >= 250.0 - LOW_SLACK, "{}", ev);
    assert_closed(&t, "keepalive-then-content").await;
}

#[wasm_bindgen_test]
async fn keepalive_forever_hits_first_token_and_fails_over() {
    let (ta, tb) = (tag("keepalive-forever-a"), tag("keepalive-forever-b"));
    let run = call_chain(
        vec![
            provider("alpha", "keepalive-forever", "keepalive_ms=50", &ta),
            provider(
                "beta",
                "normal",
                &format!("text={}", enc("answer from beta")),
                &tb,
            ),
        ],
        tight(),
    )
    .await;
    assert_complete(&run, "answer from beta");
    assert_fields(run.ok(), &[("provider", "beta"), ("model", "test/beta")]);
    assert_eq!(run.attempts(), alpha_failed_then_beta("timeout", Some(200)));
    let timeout = run.only_event("timeout");
    assert_fields(timeout, &[("phase", "first-token"), ("layer", "provider")]);
    let failover = run.timed_events_of("failover");
    assert_eq!(failover.len(), 1, "{}", run.event_summary());
    assert_fields(
        failover[0].1,
        &[("from", "alpha"), ("to", "beta"), ("reason", "timeout")],
    );
    let attempt_ms = run.ok()["attempts"][0]["elapsedMs"]
        .as_f64()
        .unwrap_or(f64::NAN);
    assert_near(
        "keepalive-forever: attempts[0].elapsedMs",
        attempt_ms,
        400.0,
    );
    assert_near(
        "keepalive-forever: failover after",
        failover[0].0 - run.started_at,
        400.0,
    );
    assert_released_by_client(&ta, failover[0].0, "keepalive-forever").await;
    assert_closed(&tb, "keepalive-forever: second provider").await;
}

#[wasm_bindgen_test]
async fn per_provider_timeouts_override_the_call_timeouts() {
    let (ta, tb) = (tag("override-a"), tag("override-b"));
    let mut a = provider("alpha", "keepalive-forever", "keepalive_ms=50", &ta);
    a["timeouts"] = json!({ "firstTokenMs": 250 });
    let run = call_chain(vec![a, provider("beta", "normal", "", &tb)], roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(run.attempts(), alpha_failed_then_beta("timeout", Some(200)));
    let (at, _) = run.timed_events_of("failover")[0];
    assert_near(
        "provider firstTokenMs 250: failover after",
        at - run.started_at,
        250.0,
    );
    assert_closed(&ta, "override").await;
}

#[wasm_bindgen_test]
async fn no_headers_times_out_in_the_headers_phase() {
    let (t, run) = call_alpha("no-headers", "no-headers", "", tight()).await;
    let err = run.err();
    assert_guard_error(err, "timeout");
    assert_fields(
        err,
        &[
            ("layer", "provider"),
            ("phase", "headers"),
            ("partialText", ""),
            ("provider", "alpha"),
        ],
    );
    assert_eq!(run.attempts(), vec![att("alpha", "timeout", None)]);
    let timeout = run.only_event("timeout");
    assert_fields(
        timeout,
        &[
            ("provider", "alpha"),
            ("layer", "provider"),
            ("phase", "headers"),
        ],
    );
    assert_eq!(n(timeout, "lines"), 0.0, "{}", timeout);
    assert_eq!(n(timeout, "chunks"), 0.0, "{}", timeout);
    assert_near(
        "no-headers: timeout event elapsedMs",
        n(timeout, "elapsedMs"),
        300.0,
    );
    assert_near("no-headers: elapsed", run.elapsed(), 300.0);
    assert_released_by_client(&t, run.settled_at, "no-headers").await;
}

/// Firefox resolves `fetch()` only when the first body bytes arrive, so there a response that
/// sends its head and then nothing is indistinguishable from one that sends no head. The headers
/// deadline is therefore set above the first-token deadline (both run from the request): every
/// runtime must end the attempt at `firstTokenMs` in the first-token phase; where `fetch()`
/// resolves on the head (Chromium, Node) the head's status and `headers` event are checked too.
#[wasm_bindgen_test]
async fn headers_then_silence_times_out_in_the_first_token_phase() {
    let timeouts = deadlines(2000, 400, 300, 1500, 3000);
    let (t, run) = call_alpha("headers-then-silence", "headers-then-silence", "", timeouts).await;
    let err = run.err();
    assert_guard_error(err, "timeout");
    assert_fields(
        err,
        &[
            ("layer", "provider"),
            ("phase", "first-token"),
            ("partialText", ""),
        ],
    );
    assert_near("headers-then-silence: elapsed", run.elapsed(), 400.0);
    if fetch_resolves_on_the_head() {
        assert_eq!(run.attempts(), vec![att("alpha", "timeout", Some(200))]);
        let headers = run.only_event("headers");
        assert_eq!(n(headers, "status"), 200.0, "{}", headers);
    } else {
        assert_eq!(run.attempts().len(), 1, "{:?}", run.attempts());
        assert_eq!(run.attempts()[0].1, "timeout", "{:?}", run.attempts());
    }
    let timeout = run.only_event("timeout");
    assert_eq!(s(timeout, "phase"), "first-token", "{}", timeout);
    assert_released_by_client(&t, run.settled_at, "headers-then-silence").await;
}

#[wasm_bindgen_test]
async fn stall_with_keepalives_does_not_reset_idle() {
    let t = tag("stall-with-keepalives");
    let run = call_chain(
        vec![provider(
            "alpha",
            "stall-with-keepalives",
            "chunks=3&keepalive_ms=50",
            &t,
        )],
        tight(),
    )
    .await;
    assert_partial(&run, FIRST_THREE, "timeout", Some("idle"));
    let idle = run.settled_at - run.last_text_at().unwrap();
    assert_near("stall-with-keepalives: last text to partial", idle, 300.0);
    assert_released_by_client(&t, run.settled_at, "stall-with-keepalives").await;
}

#[wasm_bindgen_test]
async fn close_without_done_is_partial_with_a_network_cause() {
    let (ta, tb, run) = call_alpha_then_beta(
        "close-without-done",
        "close-without-done",
        "chunks=3",
        roomy(),
    )
    .await;
    assert_partial(&run, FIRST_THREE, "network", None);
    assert_eq!(run.attempts(), vec![att("alpha", "partial", Some(200))]);
    assert_closed(&ta, "close-without-done").await;
    assert_untouched(&tb, "close-without-done: partial answer, no failover").await;
}

async fn assert_exact_text(scenario: &str, text: &str) {
    let (t, run) = call_alpha(scenario, scenario, "", roomy()).await;
    assert_complete(&run, text);
    assert_eq!(s(run.ok(), "finishReason"), "stop", "{scenario}");
    assert_eq!(
        run.attempts(),
        vec![att("alpha", "complete", Some(200))],
        "{scenario}"
    );
    assert_closed(&t, scenario).await;
}

#[wasm_bindgen_test]
async fn multibyte_text_with_crlf_split_everywhere_is_exact() {
    assert_exact_text("multibyte-crlf", MULTIBYTE_TEXT).await;
}

#[wasm_bindgen_test]
async fn cr_only_line_ends_give_the_exact_text() {
    assert_exact_text("cr-only", DEFAULT_TEXT).await;
}

#[wasm_bindgen_test]
async fn bom_and_no_space_after_the_colon_give_the_exact_text() {
    assert_exact_text("bom-nospace", DEFAULT_TEXT).await;
}

#[wasm_bindgen_test]
async fn error_before_content_fails_over() {
    let (ta, _tb, run) =
        call_alpha_then_beta("error-before", "error-before-content", "", roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(s(run.ok(), "provider"), "beta");
    assert_eq!(
        run.attempts(),
        alpha_failed_then_beta("upstream", Some(200))
    );
    let failed = run.only_event("attempt-failed");
    assert_eq!(s(failed, "kind"), "upstream", "{}", failed);
    assert_eq!(
        run.events_of("failover").len(),
        1,
        "{}",
        run.event_summary()
    );
    let a = assert_closed(&ta, "error-before-content").await;
    only_post(&a, "error-before-content: upstream errors are not retried");
}

#[wasm_bindgen_test]
async fn error_before_content_alone_rejects_with_kind_upstream() {
    let (t, run) = call_alpha("error-before-alone", "error-before-content", "", roomy()).await;
    let err = run.err();
    assert_guard_error(err, "upstream");
    assert_fields(err, &[("partialText", ""), ("provider", "alpha")]);
    assert_eq!(run.attempts(), vec![att("alpha", "upstream", Some(200))]);
    assert_closed(&t, "error-before-content alone").await;
}

async fn assert_mid_stream_error(scenario: &str) {
    let (ta, tb) = (tag(scenario), tag(&format!("{scenario}-b")));
    let run = call_chain(
        vec![
            provider("alpha", scenario, "chunks=3", &ta),
            provider("beta", "normal", "", &tb),
        ],
        roomy(),
    )
    .await;
    assert_partial(&run, FIRST_THREE, "upstream", None);
    assert_eq!(
        run.attempts(),
        vec![att("alpha", "partial", Some(200))],
        "{scenario}"
    );
    assert_closed(&ta, scenario).await;
    assert_untouched(&tb, &format!("{scenario}: partial answer, no failover")).await;
}

#[wasm_bindgen_test]
async fn error_after_content_is_partial_with_an_upstream_cause() {
    assert_mid_stream_error("error-after-content").await;
}

#[wasm_bindgen_test]
async fn choice_error_is_partial_with_an_upstream_cause() {
    assert_mid_stream_error("choice-error").await;
}

#[wasm_bindgen_test]
async fn http_400_413_422_reject_at_once_without_failover() {
    let cases = [400u16, 413, 422].map(|status| {
        let (ta, tb) = (
            tag(&format!("http-{status}-a")),
            tag(&format!("http-{status}-b")),
        );
        let options = opts(
            vec![
                provider("alpha", &format!("http-{status}"), "", &ta),
                provider("beta", "normal", "", &tb),
            ],
            roomy(),
        );
        async move { (status, ta, tb, run(options, Extra::default()).await) }
    });
    for (status, ta, tb, run) in join_all(cases).await {
        let err = run.err();
        assert_guard_error(err, "http");
        assert_eq!(n(err, "status"), status as f64, "{err}");
        assert_fields(err, &[("provider", "alpha"), ("partialText", "")]);
        assert_eq!(
            run.attempts(),
            vec![att("alpha", "http", Some(status as u64))],
            "{status}"
        );
        assert!(run.events_of("retry").is_empty(), "{status}: no retry");
        let a = assert_closed(&ta, &format!("http-{status}")).await;
        only_post(&a, &format!("http-{status}: not retried"));
        assert_untouched(&tb, &format!("http-{status}: the second provider")).await;
    }
}

#[wasm_bindgen_test]
async fn http_401_402_403_404_fail_over_and_never_show_the_key() {
    const KEY: &str = "sk-or-v1-FAILOVERSECRET-99";
    let cases = [401u16, 402, 403, 404].map(|status| {
        let (ta, tb) = (
            tag(&format!("http-{status}-a")),
            tag(&format!("http-{status}-b")),
        );
        let mut a = provider("alpha", &format!("http-{status}"), "", &ta);
        a["apiKey"] = json!(KEY);
        let options = opts(vec![a, provider("beta", "normal", "", &tb)], roomy());
        async move { (status, ta, run(options, Extra::default()).await) }
    });
    for (status, ta, run) in join_all(cases).await {
        assert_complete(&run, DEFAULT_TEXT);
        assert_eq!(s(run.ok(), "provider"), "beta", "{status}");
        assert_eq!(
            run.attempts(),
            vec![
                att("alpha", "http", Some(status as u64)),
                att("beta", "complete", Some(200))
            ],
            "{status}"
        );
        let failed = run.events_of("attempt-failed");
        assert_eq!(failed.len(), 1, "{status}: {}", run.event_summary());
        assert_eq!(s(failed[0], "kind"), "http", "{}", failed[0]);
        assert_eq!(n(failed[0], "status"), status as f64, "{}", failed[0]);
        let failover = run.events_of("failover");
        assert_eq!(failover.len(), 1, "{status}: {}", run.event_summary());
        assert_fields(failover[0], &[("from", "alpha"), ("to", "beta")]);
        assert!(run.events_of("retry").is_empty(), "{status}: not retried");
        let a = assert_closed(&ta, &format!("http-{status}")).await;
        assert!(only_post(&a, &format!("http-{status}")).authorization_seen);
        assert!(
            !run.everything().contains(KEY),
            "{status}: the API key leaked"
        );
    }
}

#[wasm_bindgen_test]
async fn http_429_and_503_are_retried_per_max_retries_then_fail_over() {
    // 429: the provider's own maxRetries; 503: the call's retry.maxRetries.
    let cases = [429u16, 503].map(|status| {
        let (ta, tb) = (
            tag(&format!("retry-{status}-a")),
            tag(&format!("retry-{status}-b")),
        );
        let mut a = provider("alpha", &format!("http-{status}"), "retry_after=0", &ta);
        let mut options;
        if status == 429 {
            a["maxRetries"] = json!(1);
            options = opts(vec![a, provider("beta", "normal", "", &tb)], roomy());
        } else {
            options = opts(vec![a, provider("beta", "normal", "", &tb)], roomy());
            options["retry"]["maxRetries"] = json!(1);
        }
        async move { (status, ta, run(options, Extra::default()).await) }
    });
    for (status, ta, run) in join_all(cases).await {
        assert_complete(&run, DEFAULT_TEXT);
        let st = Some(status as u64);
        assert_eq!(
            run.attempts(),
            vec![
                att("alpha", "http", st),
                att("alpha", "http", st),
                att("beta", "complete", Some(200))
            ],
            "{status}"
        );
        let retries = run.events_of("retry");
        assert_eq!(retries.len(), 1, "{status}: {}", run.event_summary());
        assert_eq!(s(retries[0], "provider"), "alpha");
        assert_eq!(n(retries[0], "attempt"), 2.0, "{}", retries[0]);
        assert!(
            n(retries[0], "delayMs") <= 1.0,
            "Retry-After: 0 honoured: {}",
            retries[0]
        );
        let starts: Vec<f64> = run
            .events_of("request-start")
            .iter()
            .map(|e| n(e, "attempt"))
            .collect();
        assert_eq!(
            starts,
            vec![1.0, 2.0, 1.0],
            "{status}: {}",
            run.event_summary()
        );
        assert_eq!(run.events_of("failover").len(), 1, "{status}");
        let a = assert_closed(&ta, &format!("http-{status}")).await;
        assert_eq!(
            a.posts().len(),
            2,
            "{status}: two requests at the first provider"
        );
    }
}

#[wasm_bindgen_test]
async fn http_429_with_an_http_date_retry_after_is_honoured() {
    let (ta, tb) = (tag("retry-date-a"), tag("retry-date-b"));
    let mut a = provider("alpha", "http-429-date", "retry_after=0", &ta);
    a["maxRetries"] = json!(1);
    let run = call_chain(vec![a, provider("beta", "normal", "", &tb)], roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(
        run.attempts(),
        vec![
            att("alpha", "http", Some(429)),
            att("alpha", "http", Some(429)),
            att("beta", "complete", Some(200))
        ]
    );
    let retry = run.timed_events_of("retry");
    assert_eq!(retry.len(), 1, "{}", run.event_summary());
    let delay = n(retry[0].1, "delayMs");
    figure("http-429-date: retry delay", delay);
    assert!(
        (0.0..=1100.0).contains(&delay),
        "delay from the date: {}",
        retry[0].1
    );
    let view = assert_closed(&ta, "http-429-date").await;
    let posts = view.posts();
    assert_eq!(posts.len(), 2, "{:?}", view.connections);
    // The mock sends the next whole second after its clock (+ retry_after 0) as the date.
    let not_before = ((posts[0].opened_at_ms / 1000.0).floor() + 1.0) * 1000.0;
    figure(
        "http-429-date: retry sent after the date by",
        posts[1].opened_at_ms - not_before,
    );
    assert!(
        posts[1].opened_at_ms >= not_before - 30.0,
        "the retry went out {:.1} ms before the Retry-After date",
        not_before - posts[1].opened_at_ms
    );
}

#[wasm_bindgen_test]
async fn http_500_and_502_are_retried_then_fail_over() {
    let (ta, tb, tc) = (tag("http-500"), tag("http-502"), tag("http-5xx-c"));
    let run = call_chain(
        vec![
            provider("alpha", "http-500", "", &ta),
            provider("beta", "http-502", "", &tb),
            provider("gamma", "normal", "", &tc),
        ],
        roomy(),
    )
    .await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(s(run.ok(), "provider"), "gamma");
    let (e500, e502) = (Some(500), Some(502));
    assert_eq!(
        run.attempts(),
        vec![
            att("alpha", "http", e500),
            att("alpha", "http", e500),
            att("alpha", "http", e500),
            att("beta", "http", e502),
            att("beta", "http", e502),
            att("beta", "http", e502),
            att("gamma", "complete", Some(200)),
        ]
    );
    assert_eq!(run.events_of("retry").len(), 4, "{}", run.event_summary());
    for r in run.events_of("retry") {
        assert!(
            n(r, "delayMs") <= 40.0,
            "back-off within retry.maxDelayMs: {r}"
        );
    }
    assert_eq!(
        run.events_of("failover").len(),
        2,
        "{}",
        run.event_summary()
    );
    assert_eq!(assert_closed(&ta, "http-500").await.posts().len(), 3);
    assert_eq!(assert_closed(&tb, "http-502").await.posts().len(), 3);
}

#[wasm_bindgen_test]
async fn a_retry_after_beyond_the_service_deadline_fails_over_at_once() {
    let (_ta, _tb, run) =
        call_alpha_then_beta("retry-late", "http-503", "retry_after=5", roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(run.attempts(), alpha_failed_then_beta("http", Some(503)));
    assert!(run.events_of("retry").is_empty(), "{}", run.event_summary());
    figure("retry-after 5 s > service left: elapsed", run.elapsed());
    assert!(
        run.elapsed() < 1500.0,
        "no wait for Retry-After: {:.0} ms",
        run.elapsed()
    );
}

#[wasm_bindgen_test]
async fn an_unreachable_provider_is_a_network_failure_retried_then_failed_over() {
    let tb = tag("unreachable-b");
    // Port 9 (discard) is refused or blocked by every runtime: fetch rejects with a TypeError.
    let mut a = json!({ "name": "alpha", "url": "http://127.0.0.1:9/v1/chat/completions", "model": "test/alpha" });
    a["maxRetries"] = json!(1);
    let run = call_chain(vec![a, provider("beta", "normal", "", &tb)], roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(
        run.attempts(),
        vec![
            att("alpha", "network", None),
            att("alpha", "network", None),
            att("beta", "complete", Some(200))
        ]
    );
    let failover = run.only_event("failover");
    assert_eq!(s(failover, "reason"), "network", "{}", failover);
}

#[wasm_bindgen_test]
async fn html_200_is_a_protocol_failure_that_fails_over() {
    let (ta, _tb, run) = call_alpha_then_beta("html-200", "html-200", "", roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(
        run.attempts(),
        alpha_failed_then_beta("protocol", Some(200))
    );
    let a = assert_closed(&ta, "html-200").await;
    only_post(&a, "html-200: protocol errors are not retried");
}

#[wasm_bindgen_test]
async fn a_json_answer_to_a_streaming_request_is_accepted() {
    let (t, run) = call_alpha("json", "json", "", roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    let r = run.ok();
    assert_eq!(s(r, "finishReason"), "stop", "{r}");
    assert_eq!(
        n(&r["usage"], "completion_tokens"),
        DEFAULT_PIECES as f64,
        "{r}"
    );
    let view = assert_closed(&t, "json").await;
    let post = only_post(&view, "json");
    assert_eq!(s(r, "generationId"), format!("gen-mock-{}", post.id), "{r}");
    assert_eq!(post.body_json()["stream"], json!(true));
}

#[wasm_bindgen_test]
async fn stream_false_asks_for_one_json_answer() {
    let t = tag("stream-false");
    let mut options = opts(vec![provider("alpha", "json", "", &t)], roomy());
    options["stream"] = json!(false);
    let run = run(options, Extra::default()).await;
    assert_complete(&run, DEFAULT_TEXT);
    let r = run.ok();
    assert_eq!(s(r, "finishReason"), "stop", "{r}");
    assert!(r["usage"].is_object(), "{r}");
    assert_eq!(run.attempts(), vec![att("alpha", "complete", Some(200))]);
    let view = assert_closed(&t, "stream false").await;
    let body = only_post(&view, "stream false").body_json();
    assert_eq!(body["stream"], json!(false), "request body: {body}");
    assert_eq!(body["messages"], messages(), "request body: {body}");
}

#[wasm_bindgen_test]
async fn a_malformed_event_is_reported_and_skipped() {
    let (t, run) = call_alpha("malformed-event", "malformed-event", "", roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    let malformed = run.only_event("malformed");
    assert_eq!(s(malformed, "provider"), "alpha", "{}", malformed);
    assert!(n(malformed, "bytes") > 0.0, "{}", malformed);
    assert!(!s(malformed, "reason").is_empty(), "{}", malformed);
    assert_closed(&t, "malformed-event").await;
}

#[wasm_bindgen_test]
async fn an_event_over_max_event_bytes_is_a_protocol_failure_that_fails_over() {
    let (ta, tb) = (tag("huge-line-a"), tag("huge-line-b"));
    let mut options = opts(
        vec![
            provider("alpha", "huge-line", "size=1048576", &ta),
            provider("beta", "normal", "", &tb),
        ],
        roomy(),
    );
    options["maxEventBytes"] = json!(65536);
    let run = run(options, Extra::default()).await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(
        run.attempts(),
        alpha_failed_then_beta("protocol", Some(200))
    );
    assert_closed(&ta, "huge-line").await;
}

#[wasm_bindgen_test]
async fn reset_after_content_is_partial_with_a_network_cause() {
    let (ta, tb, run) =
        call_alpha_then_beta("reset", "reset-after-content", "chunks=3", roomy()).await;
    assert_partial(&run, FIRST_THREE, "network", None);
    // A browser may drop bytes it had not read yet when the reset arrives; that attempt then
    // saw no text, counts as a network failure and is retried. The answer is partial either way.
    let attempts = run.attempts();
    let (last, earlier) = attempts.split_last().expect("at least one attempt");
    assert_eq!(last, &att("alpha", "partial", Some(200)), "{attempts:?}");
    assert!(
        earlier
            .iter()
            .all(|a| a == &att("alpha", "network", Some(200))),
        "earlier attempts can only be resets that lost the text: {attempts:?}"
    );
    assert_closed(&ta, "reset-after-content").await;
    assert_untouched(&tb, "reset-after-content: partial answer, no failover").await;
}

#[wasm_bindgen_test]
async fn data_after_done_is_ignored_and_the_connection_released_at_once() {
    let (t, run) = call_alpha("data-after-done", "data-after-done", "", roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(s(run.ok(), "finishReason"), "stop");
    assert_released_by_client(&t, run.settled_at, "data-after-done: answer to close").await;
}

#[wasm_bindgen_test]
async fn an_endless_stream_is_cut_at_the_stream_limit() {
    let timeouts = deadlines(2000, 2000, 2000, 500, 3000);
    let (t, run) = call_alpha("endless", "endless", "delay_ms=20", timeouts).await;
    let text = s(run.ok(), "text").to_string();
    assert!(
        text.len() >= 5 * TICK.len() && text == TICK.repeat(text.len() / TICK.len()),
        "whole ticks: {text:?}"
    );
    assert_partial(&run, &text, "timeout", Some("stream"));
    assert_eq!(run.attempts(), vec![att("alpha", "partial", Some(200))]);
    assert_near("endless: elapsed", run.elapsed(), 500.0);
    assert_released_by_client(&t, run.settled_at, "endless").await;
}

#[wasm_bindgen_test]
async fn reasoning_is_not_part_of_the_text() {
    let (t, run) = call_alpha("reasoning", "reasoning-then-content", "chunks=3", roomy()).await;
    assert_complete(&run, DEFAULT_TEXT);
    assert!(
        run.texts.iter().all(|(_, t)| !t.contains(REASONING_PREFIX)),
        "no reasoning in onText: {:?}",
        run.texts
    );
    assert_closed(&t, "reasoning-then-content").await;
}

#[wasm_bindgen_test]
async fn tool_calls_are_assembled_from_fragments() {
    let (t, run) = call_alpha("tool-calls", "tool-calls", "", roomy()).await;
    assert_complete(&run, "");
    let r = run.ok();
    assert_eq!(s(r, "finishReason"), "tool_calls", "{r}");
    assert_eq!(
        r["toolCalls"],
        json!([{ "id": "call_1", "name": "get_weather", "arguments": TOOL_ARGUMENTS }]),
        "{r}"
    );
    assert_eq!(run.attempts(), vec![att("alpha", "complete", Some(200))]);
    assert_closed(&t, "tool-calls").await;
}

#[wasm_bindgen_test]
async fn a_long_stream_of_2000_chunks_is_exact() {
    let t = tag("long");
    let timeouts = deadlines(5000, 5000, 5000, 8000, 8000);
    let run = run(
        opts(vec![provider("alpha", "long", "n=2000", &t)], timeouts),
        Extra {
            watchdog_ms: Some(10_000),
            ..Extra::default()
        },
    )
    .await;
    assert_complete(&run, &LONG_TOKEN.repeat(2000));
    let r = run.ok();
    assert_eq!(n(&r["stats"], "chunks"), 2000.0, "{}", r["stats"]);
    assert_eq!(
        n(&r["usage"], "completion_tokens"),
        2000.0,
        "{}",
        r["usage"]
    );
    figure("long n=2000: elapsed", run.elapsed());
    assert_closed(&t, "long").await;
}

#[wasm_bindgen_test]
async fn a_custom_fetch_is_used_for_the_request() {
    let t = tag("custom-fetch");
    let (fetch, count) = counting_fetch();
    let run = run(
        opts(vec![provider("alpha", "normal", "", &t)], roomy()),
        Extra {
            fetch: Some(fetch),
            ..Extra::default()
        },
    )
    .await;
    assert_complete(&run, DEFAULT_TEXT);
    assert_eq!(count.get(), 1, "the custom fetch made the one request");
    assert_closed(&t, "custom fetch").await;
}

// ---------------------------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn config_errors_reject_with_kind_config() {
    let t = tag("config");
    let good = || provider("alpha", "normal", "", &t);
    let without = |key: &str| {
        let mut p = good();
        p.as_object_mut().unwrap().remove(key);
        p
    };
    let cases: Vec<(&str, Value, Option<Patch>)> = vec![
        (
            "no providers",
            json!({ "providers": [], "messages": messages() }),
            None,
        ),
        ("providers missing", json!({ "messages": messages() }), None),
        (
            "provider without url",
            json!({ "providers": [without("url")], "messages": messages() }),
            None,
        ),
        (
            "provider without model",
            json!({ "providers": [without("model")], "messages": messages() }),
            None,
        ),
        (
            "provider without name",
            json!({ "providers": [without("name")], "messages": messages() }),
            None,
        ),
        ("messages missing", json!({ "providers": [good()] }), None),
        (
            "messages not an array",
            json!({ "providers": [good()], "messages": "hi" }),
            None,
        ),
        (
            "idleMs 0",
            json!({ "providers": [good()], "messages": messages(), "timeouts": { "idleMs": 0 } }),
            None,
        ),
        (
            "headersMs -1",
            json!({ "providers": [good()], "messages": messages(), "timeouts": { "headersMs": -1 } }),
            None,
        ),
        (
            "provider firstTokenMs 0",
            {
                let mut p = good();
                p["timeouts"] = json!({ "firstTokenMs": 0 });
                json!({ "providers": [p], "messages": messages() })
            },
            None,
        ),
        (
            "log verbose",
            json!({ "providers": [good()], "messages": messages(), "log": "verbose" }),
            None,
        ),
    ];
    assert_config_errors(cases).await;
    assert_untouched(&t, "config errors never reach the network").await;
}

/// A NaN deadline (call-level or a provider's) is an invalid timeout.
#[wasm_bindgen_test]
async fn nan_timeouts_are_config_errors() {
    let t = tag("config-nan");
    let set_nan = |path: &'static [&'static str], key: &'static str| -> Option<Patch> {
        Some(Box::new(move |o: &JsValue| {
            let mut target = o.clone();
            for step in path {
                target = Reflect::get(&target, &JsValue::from_str(step)).unwrap();
            }
            Reflect::set(&target, &key.into(), &JsValue::from_f64(f64::NAN)).unwrap();
        }))
    };
    let mut p = provider("alpha", "normal", "", &t);
    p["timeouts"] = json!({});
    let cases: Vec<(&str, Value, Option<Patch>)> = vec![
        (
            "timeouts.streamMs NaN",
            json!({ "providers": [provider("alpha", "normal", "", &t)], "messages": messages(), "timeouts": {} }),
            set_nan(&["timeouts"], "streamMs"),
        ),
        (
            "providers[0].timeouts.firstTokenMs NaN",
            json!({ "providers": [p], "messages": messages() }),
            set_nan(&["providers", "0", "timeouts"], "firstTokenMs"),
        ),
    ];
    assert_config_errors(cases).await;
}

/// Runs each case and fails listing every one that did not reject with a config GuardError.
async fn assert_config_errors(cases: Vec<(&str, Value, Option<Patch>)>) {
    let mut failures = Vec::new();
    for (what, options, patch) in cases {
        let run = run(
            options,
            Extra {
                patch,
                watchdog_ms: Some(2000),
                ..Extra::default()
            },
        )
        .await;
        match &run.json {
            Err(e)
                if s(e, "kind") == "config"
                    && s(e, "name") == "GuardError"
                    && e["isError"] == json!(true) =>
            {
                figure(
                    &format!("config error '{what}': rejected after"),
                    run.elapsed(),
                );
            }
            Ok(v) => failures.push(format!(
                "{what}: resolved (text {:?}, attempts {})",
                s(v, "text"),
                v["attempts"]
            )),
            Err(e) => failures.push(format!("{what}: rejected with {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "not rejected with kind config:\n{}",
        failures.join("\n")
    );
}

#[wasm_bindgen_test]
async fn a_close_or_reset_before_any_text_is_retried_then_fails_over() {
    let cases = ["close-without-done", "reset-after-content"].map(|scenario| {
        let (ta, tb) = (
            tag(&format!("{scenario}-0-a")),
            tag(&format!("{scenario}-0-b")),
        );
        let mut a = provider("alpha", scenario, "chunks=0", &ta);
        a["maxRetries"] = json!(1);
        let options = opts(vec![a, provider("beta", "normal", "", &tb)], roomy());
        async move { (scenario, ta, run(options, Extra::default()).await) }
    });
    for (scenario, ta, run) in join_all(cases).await {
        assert_complete(&run, DEFAULT_TEXT);
        let outcomes: Vec<(String, String)> =
            run.attempts().into_iter().map(|(p, o, _)| (p, o)).collect();
        let pair = |p: &str, o: &str| (p.to_string(), o.to_string());
        assert_eq!(
            outcomes,
            vec![
                pair("alpha", "network"),
                pair("alpha", "network"),
                pair("beta", "complete")
            ],
            "{scenario}: network failures before text are retried, then fail over"
        );
        assert_eq!(
            run.events_of("retry").len(),
            1,
            "{scenario}: {}",
            run.event_summary()
        );
        let failover = run.events_of("failover");
        assert_eq!(failover.len(), 1, "{scenario}: {}", run.event_summary());
        assert_eq!(s(failover[0], "reason"), "network", "{}", failover[0]);
        let a = assert_closed(&ta, scenario).await;
        assert_eq!(a.posts().len(), 2, "{scenario}: {:?}", a.connections);
    }
}

#[wasm_bindgen_test]
async fn debug_logging_prints_progress_and_never_the_key() {
    const KEY: &str = "sk-or-v1-LOGSECRET-5150";
    let (ta, tb) = (tag("log-a"), tag("log-b"));
    let mut a = provider("alpha", "http-401", "", &ta);
    a["apiKey"] = json!(KEY);
    let mut b = provider("beta", "normal", "", &tb);
    b["apiKey"] = json!(KEY);
    let mut options = opts(vec![a, b], roomy());
    options["log"] = json!("debug");
    let capture = ConsoleCapture::start();
    let run = run(options, Extra::default()).await;
    let lines = capture.stop();
    assert_complete(&run, DEFAULT_TEXT);
    assert!(!lines.is_empty(), "log: \"debug\" printed nothing");
    let leaked: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(KEY) || l.contains("LOGSECRET"))
        .collect();
    assert!(leaked.is_empty(), "the API key was logged: {leaked:?}");
    assert!(
        !run.everything().contains("LOGSECRET"),
        "the API key leaked into the result or events"
    );
    console_log!("[figure] log debug: {} console lines", lines.len());
}

// ---------------------------------------------------------------------------------------------
// Hardening: no unhandled rejection, one deadline rule, callbacks end with the call, options
// checked, secrets never shown in part
// ---------------------------------------------------------------------------------------------

/// A JS function made from source (test helpers only).
fn js_fn(args: &str, body: &str) -> js_sys::Function {
    js_sys::Function::new_with_args(args, body)
}

/// An injected `fetch` answering every request with one SSE body, all of it in ONE read: the
/// content pieces of `pieces`, then `[DONE]`.
fn one_read_fetch(pieces: &[&str]) -> JsValue {
    let mut sse = String::new();
    for piece in pieces {
        sse.push_str(&format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {"content": piece}}]})
        ));
    }
    sse.push_str("data: [DONE]\n\n");
    js_fn(
        "sse",
        "return () => Promise.resolve(new Response(new ReadableStream({ start(c) { \
           c.enqueue(new TextEncoder().encode(sse)); c.close(); } }), \
           { headers: { 'content-type': 'text/event-stream' } }));",
    )
    .call1(&JsValue::NULL, &JsValue::from_str(&sse))
    .unwrap()
}

/// Calls `generate()` once (no retries) with provider `alpha`, whose requests `fetch` answers.
async fn one_try_with_fetch(fetch: JsValue, timeouts: Value) -> Run {
    let mut options = opts(vec![provider("alpha", "normal", "", "unused")], timeouts);
    options["retry"]["maxRetries"] = json!(0);
    let extra = Extra {
        fetch: Some(fetch),
        ..Extra::default()
    };
    run(options, extra).await
}

/// The module's live resources are all released.
fn assert_nothing_live(what: &str) {
    let r = llm_stream_guard::web::live_resources();
    for key in ["timers", "readers", "listeners", "inFlight"] {
        assert_eq!(
            field(&r, key).as_f64(),
            Some(0.0),
            "{what}: liveResources().{key} {:?}",
            to_json(&r)
        );
    }
}

#[wasm_bindgen_test]
async fn abort_inside_on_text_ends_delivery_within_one_read() {
    let pieces = ["one ", "two ", "three ", "four"];
    let (c, at) = controller();
    let run = run(
        opts(vec![provider("alpha", "normal", "", "unused")], roomy()),
        Extra {
            signal: Some(c.signal()),
            fetch: Some(one_read_fetch(&pieces)),
            on_text: Some(abort_at_first_text(&c, &at)),
            ..Extra::default()
        },
    )
    .await;
    // The whole answer was in the one read, and still the call is aborted, not answered.
    assert_aborted(&run, at.get(), "one ", "abort inside onText, one read");
    assert_eq!(run.joined(), "one ", "no piece delivered after the abort");
    // The first piece came with the first-token event; after the abort, only `cancelled`.
    assert_eq!(
        run.event_types(),
        ["request-start", "headers", "first-token", "cancelled"],
        "{}",
        run.event_summary()
    );
    assert_nothing_live("abort inside onText");
    assert_no_unhandled_rejections("abort inside onText");
}

#[wasm_bindgen_test]
async fn a_throwing_callback_cancels_the_call_with_its_error_as_cause() {
    for which in ["onText", "onEvent"] {
        let t = tag(&format!("throw-{which}"));
        let capture = ConsoleCapture::start();
        let run = run(
            opts(vec![provider("alpha", "normal", "delay_ms=20", &t)], roomy()),
            Extra {
                patch: Some(Box::new(move |o| {
                    let thrower = js_fn(
                        "",
                        "return function () { globalThis.__lsgThrows = (globalThis.__lsgThrows || 0) + 1; \
                           throw new Error('boom from the callback'); };",
                    )
                    .call0(&JsValue::NULL)
                    .unwrap();
                    Reflect::set(o, &which.into(), &thrower).unwrap();
                    Reflect::set(&js_sys::global(), &"__lsgThrows".into(), &JsValue::from(0)).unwrap();
                })),
                ..Extra::default()
            },
        )
        .await;
        let lines = capture.stop();
        let err = run.err();
        assert_guard_error(err, "aborted");
        assert_eq!(s(err, "reason"), "callback", "{which}: {err}");
        let message = s(err, "message").to_string();
        assert!(
            message.contains(which),
            "{which}: the message names it: {message}"
        );
        let cause = field(run.raw.as_ref().unwrap_err(), "cause");
        assert_eq!(
            field(&cause, "message").as_string().as_deref(),
            Some("boom from the callback"),
            "{which}: the thrown error is the cause"
        );
        let throws = field(&js_sys::global(), "__lsgThrows").as_f64();
        assert_eq!(throws, Some(1.0), "{which}: called once, then never again");
        assert!(
            lines.iter().filter(|l| l.contains("boom")).count() <= 1,
            "{which}: logged at most once: {lines:?}"
        );
        if which == "onText" {
            assert!(
                run.joined().is_empty(),
                "the recorder was replaced: {:?}",
                run.joined()
            );
            assert_eq!(
                run.event_types().last().map(String::as_str),
                Some("cancelled")
            );
        }
        if which == "onText" {
            assert_closed(&t, "throwing onText: upstream released").await;
        } else {
            // onEvent throws at the first event (`request-start`): nothing is sent.
            assert_untouched(&t, "throwing onEvent: no request").await;
        }
        assert_nothing_live(which);
    }
}

/// A change to a call's options.
type Edit = Box<dyn Fn(&mut Value)>;

#[wasm_bindgen_test]
async fn unknown_option_names_are_refused_with_the_nearest_known_one() {
    let t = tag("typos");
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|o: &mut Value| o["providers"][0]["apikey"] = json!("sk-test-123456789")),
            "unknown option `apikey` in providers[0]; did you mean `apiKey`?",
        ),
        (
            Box::new(|o: &mut Value| o["timeout"] = json!(1000)),
            "unknown option `timeout`; did you mean `timeouts`?",
        ),
        (
            Box::new(|o: &mut Value| o["timeouts"]["firstTokenMS"] = json!(10)),
            "unknown option `firstTokenMS` in timeouts; did you mean `firstTokenMs`?",
        ),
        (
            Box::new(|o: &mut Value| o["retry"]["maxRetires"] = json!(1)),
            "unknown option `maxRetires` in retry; did you mean `maxRetries`?",
        ),
    ];
    for (change, expected) in cases {
        let mut options = opts(vec![provider("alpha", "normal", "", &t)], roomy());
        change(&mut options);
        let run = run(options, Extra::default()).await;
        let err = run.err();
        assert_guard_error(err, "config");
        assert_eq!(s(err, "message"), expected);
        assert!(
            !run.everything().contains("sk-test-123456789"),
            "no key in the error"
        );
    }
    // A function-valued typo (`onToken`) is seen too, though JSON would drop it.
    let run = run(
        opts(vec![provider("alpha", "normal", "", &t)], roomy()),
        Extra {
            patch: Some(Box::new(|o| {
                let f = js_fn("", "return () => {};").call0(&JsValue::NULL).unwrap();
                Reflect::set(o, &"onToken".into(), &f).unwrap();
            })),
            ..Extra::default()
        },
    )
    .await;
    assert_eq!(
        s(run.err(), "message"),
        "unknown option `onToken`; did you mean `onText`?"
    );
    assert_untouched(&t, "a refused option sends nothing").await;
}

#[wasm_bindgen_test]
async fn credential_and_relative_urls_are_config_errors_where_they_cannot_work() {
    let t = tag("urls");
    let mut p = provider("alpha", "normal", "", &t);
    p["url"] = json!(scenario_url("normal", "", &t).replacen("://", "://user:hunter2@", 1));
    let refused = call_chain(vec![p], roomy()).await;
    let err = refused.err();
    assert_guard_error(err, "config");
    assert!(
        s(err, "message").starts_with("providers[0].url must not carry"),
        "{err}"
    );
    assert!(
        !refused.everything().contains("hunter2"),
        "the password is never quoted"
    );
    let has_location = field(&js_sys::global(), "location").is_object();
    let mut p = provider("alpha", "normal", "", &t);
    p["url"] = json!("/v1/chat/completions");
    let mut options = opts(vec![p], roomy());
    options["retry"]["maxRetries"] = json!(0);
    let relative = run(options, Extra::default()).await;
    if has_location {
        // A page or worker resolves it against its own location: not a configuration error.
        assert_ne!(s(relative.err(), "kind"), "config", "{}", relative.err());
    } else {
        let err = relative.err();
        assert_guard_error(err, "config");
        assert!(s(err, "message").contains("absolute"), "{err}");
        assert_eq!(relative.attempts().len(), 0, "nothing was retried: {err}");
    }
    assert_untouched(&t, "refused URLs send nothing").await;
}

#[wasm_bindgen_test]
async fn network_errors_keep_the_platform_error_as_cause() {
    let mut p = provider("alpha", "normal", "", "unused");
    p["url"] = json!("http://127.0.0.1:9/v1/chat/completions"); // nothing listens on port 9
    let mut options = opts(vec![p], roomy());
    options["retry"]["maxRetries"] = json!(0);
    let run = run(options, Extra::default()).await;
    let err = run.err();
    assert_guard_error(err, "network");
    let cause = field(run.raw.as_ref().unwrap_err(), "cause");
    assert!(
        wasm_bindgen::JsCast::is_instance_of::<js_sys::Error>(&cause),
        "cause is the platform's error: {:?}",
        to_json(&cause)
    );
    assert_nothing_live("network error");
}

#[wasm_bindgen_test]
async fn a_body_that_errors_midway_is_partial_with_no_unhandled_rejection() {
    let chunk = format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": "so far "}}]})
    );
    let fetch = js_fn(
        "sse",
        "return () => Promise.resolve(new Response(new ReadableStream({ \
           start(c) { c.enqueue(new TextEncoder().encode(sse)); }, \
           pull(c) { return new Promise((r) => setTimeout(r, 5)).then(() => c.error(new TypeError('terminated'))); } }), \
           { headers: { 'content-type': 'text/event-stream' } }));",
    )
    .call1(&JsValue::NULL, &JsValue::from_str(&chunk))
    .unwrap();
    let run = one_try_with_fetch(fetch, roomy()).await;
    // A round trip to the mock lets the runtime report any rejection left behind.
    assert_untouched(&tag("after-midway-error"), "body error: rejections").await;
    assert_partial(&run, "so far ", "network", None);
    let cause = field(&field(run.raw.as_ref().unwrap(), "cause"), "cause");
    assert_eq!(
        field(&cause, "message").as_string().as_deref(),
        Some("terminated"),
        "the body's error is kept as cause.cause"
    );
    assert_nothing_live("body error");
}

#[wasm_bindgen_test]
async fn a_reader_whose_cancel_throws_still_settles_on_time_and_releases_everything() {
    let fetch = js_fn(
        "",
        "return () => Promise.resolve({ status: 200, \
           headers: new Headers({ 'content-type': 'text/event-stream' }), \
           body: { getReader() { return { read() { return new Promise(() => {}); }, \
                                          cancel() { throw new Error('cancel throws'); } }; } } });",
    )
    .call0(&JsValue::NULL)
    .unwrap();
    let run = one_try_with_fetch(fetch, tight()).await;
    assert_untouched(&tag("after-cancel-throws"), "cancel throws: rejections").await;
    let err = run.err();
    assert_guard_error(err, "timeout");
    assert_eq!(s(err, "phase"), "first-token", "{err}");
    assert_near("cancel throws: first-token timeout", run.elapsed(), 400.0);
    assert_nothing_live("cancel throws");
}

#[wasm_bindgen_test]
async fn never_settling_fetches_all_time_out_whatever_the_timers_do() {
    let never = js_fn("", "return () => new Promise(() => {});")
        .call0(&JsValue::NULL)
        .unwrap();
    // Round 1: the real clock. Round 2: `performance.now()` runs 10 % slow, so every timer
    // fires early by the guard's clock. Round 3: a clock that only timers move, and every timer
    // fires 0.3 ms before its due time by it (the window a rounding timer falls into). Each
    // early wake-up must re-arm, never be a failure.
    let clock = js_fn(
        "mode",
        "const g = globalThis; \
         if (mode === 'real') { delete performance.now; \
           if (g.__lsgRealSetTimeout) { g.setTimeout = g.__lsgRealSetTimeout; delete g.__lsgRealSetTimeout; } \
           return; } \
         const real = Performance.prototype.now.bind(performance); const t0 = real(); \
         if (mode === 'slow') { performance.now = () => t0 + (real() - t0) * 0.9; return; } \
         let clock = t0; performance.now = () => clock; \
         const realSet = g.setTimeout; g.__lsgRealSetTimeout = realSet; \
         g.setTimeout = (f, ms, ...rest) => { \
           if (ms >= 5000) return realSet(f, ms, ...rest); \
           const due = clock + ms; \
           return realSet(() => { clock = Math.max(clock, due - 0.3); f(...rest); }, 0); };",
    );
    for mode in ["real", "slow", "early"] {
        clock
            .call1(&JsValue::NULL, &JsValue::from_str(mode))
            .unwrap();
        let calls = (0..300).map(|_| {
            let mut options = opts(
                vec![provider("alpha", "normal", "", "unused")],
                json!({ "headersMs": 50 }),
            );
            options["retry"]["maxRetries"] = json!(0);
            run(
                options,
                Extra {
                    fetch: Some(never.clone()),
                    no_callbacks: true,
                    watchdog_ms: Some(10_000),
                    ..Extra::default()
                },
            )
        });
        let runs = join_all(calls).await;
        clock
            .call1(&JsValue::NULL, &JsValue::from_str("real"))
            .unwrap();
        let kinds: Vec<String> = runs
            .iter()
            .map(|r| format!("{}/{}", s(r.err(), "kind"), s(r.err(), "phase")))
            .filter(|k| k != "timeout/headers")
            .collect();
        assert!(
            kinds.is_empty(),
            "clock {mode}: {} of 300 were not a headers timeout: {kinds:?}",
            kinds.len()
        );
        // By the guard's own clock no attempt ended before its deadline (`elapsedMs` is read
        // on that clock): a wake-up that came early was never taken for the deadline.
        let early: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.err()["attempts"][0]["elapsedMs"].as_f64())
            .filter(|ms| *ms < 50.0)
            .collect();
        assert!(
            early.is_empty() && runs.iter().all(|r| r.attempts().len() == 1),
            "clock {mode}: attempts ended before the 50 ms deadline by the guard's clock: {early:?}"
        );
        let earliest = runs.iter().map(Run::elapsed).fold(f64::INFINITY, f64::min);
        figure(
            &format!("300 never-settling fetches (clock {mode}): earliest"),
            earliest,
        );
        // (With the timer-driven clock, real time does not pass: nothing to compare.)
        if mode != "early" {
            assert!(
                earliest >= 50.0 - LOW_SLACK,
                "none before its deadline: {earliest}"
            );
        }
    }
    assert_nothing_live("never-settling fetches");
}

#[wasm_bindgen_test]
async fn an_echoed_key_never_shows_in_part_at_any_offset_around_the_cut() {
    const KEY: &str = "sk-or-v1-ECHOED0123456789abcdefXYZ";
    // A 401 whose message echoes the key after `pad` characters of text.
    let fetch = js_fn(
        "",
        "return (url, init) => { const key = init.headers.Authorization.slice(7); \
           const pad = Number(new URL(url).searchParams.get('pad')); \
           const message = 'x'.repeat(pad) + key + ' is not a valid key'; \
           return Promise.resolve(new Response(JSON.stringify({ error: { message } }), \
             { status: 401, headers: { 'content-type': 'application/json' } })); };",
    )
    .call0(&JsValue::NULL)
    .unwrap();
    let calls = (250..=310).map(|pad| {
        let mut p = provider("alpha", "normal", &format!("pad={pad}"), "unused");
        p["apiKey"] = json!(KEY);
        let options = opts(vec![p], roomy());
        run(
            options,
            Extra {
                fetch: Some(fetch.clone()),
                ..Extra::default()
            },
        )
    });
    for (pad, run) in (250..).zip(join_all(calls).await) {
        assert_guard_error(run.err(), "http");
        let everything = run.everything();
        for start in 0..=KEY.len() - 8 {
            let part = &KEY[start..start + 8];
            assert!(
                !everything.contains(part),
                "pad {pad}: {part:?} of the key shows: {}",
                s(run.err(), "message")
            );
        }
    }
}

/// The own keys of `object` whose value is `undefined` (an optional field must be absent).
fn undefined_keys(object: &JsValue) -> Vec<String> {
    js_sys::Object::keys(wasm_bindgen::JsCast::unchecked_ref::<js_sys::Object>(
        object,
    ))
    .iter()
    .filter_map(|key| key.as_string())
    .filter(|key| field(object, key).is_undefined())
    .collect()
}

#[wasm_bindgen_test]
async fn relayed_events_arrive_as_values_and_absent_fields_are_absent() {
    let content = json!({"choices": [{"index": 0, "delta": {"content": "hi"}}]});
    let sse = format!(
        "event: guard\ndata: {{\"type\":\"retry\",\"attempt\":2,\"nested\":{{\"a\":[1,2.5]}}}}\n\n\
         event: guard\ndata: not json\n\ndata: {content}\n\ndata: [DONE]\n\n"
    );
    let fetch = js_fn(
        "sse",
        "return () => Promise.resolve(new Response(new ReadableStream({ start(c) { \
           c.enqueue(new TextEncoder().encode(sse)); c.close(); } }), \
           { headers: { 'content-type': 'text/event-stream' } }));",
    )
    .call1(&JsValue::NULL, &JsValue::from_str(&sse))
    .unwrap();
    let raw_events: Rc<std::cell::RefCell<Vec<JsValue>>> = Rc::default();
    let sink = raw_events.clone();
    let on_event = wasm_bindgen::closure::Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        sink.borrow_mut().push(e)
    });
    let on_event_fn = on_event.as_ref().clone();
    on_event.forget();
    let run = run(
        opts(vec![provider("alpha", "normal", "", "unused")], roomy()),
        Extra {
            fetch: Some(fetch),
            patch: Some(Box::new(move |options| {
                Reflect::set(options, &"onEvent".into(), &on_event_fn).unwrap();
            })),
            ..Extra::default()
        },
    )
    .await;
    let result = run.raw.as_ref().expect("an answer");
    assert_eq!(s(run.ok(), "text"), "hi");
    let relayed: Vec<Value> = raw_events
        .borrow()
        .iter()
        .map(to_json)
        .filter(|e| e["type"] == "upstream-event")
        .collect();
    assert_eq!(
        relayed,
        vec![
            json!({"type": "upstream-event", "provider": "alpha",
                   "event": {"type": "retry", "attempt": 2, "nested": {"a": [1, 2.5]}}}),
            json!({"type": "upstream-event", "provider": "alpha", "event": "not json"}),
        ]
    );
    // No optional field is present as `undefined`: absent ones are left out.
    for event in raw_events.borrow().iter() {
        assert_eq!(
            undefined_keys(event),
            Vec::<String>::new(),
            "{}",
            to_json(event)
        );
    }
    assert_eq!(
        undefined_keys(result),
        Vec::<String>::new(),
        "{}",
        to_json(result)
    );
    for absent in ["cause", "usage", "toolCalls", "finishReason"] {
        assert!(
            !Reflect::has(result, &absent.into()).unwrap(),
            "{absent} in {}",
            to_json(result)
        );
    }
    let stats = field(result, "stats");
    assert_eq!(undefined_keys(&stats), Vec::<String>::new());
    let attempt = js_sys::Array::from(&field(result, "attempts")).get(0);
    assert_eq!(
        to_json(&attempt)["provider"],
        "alpha",
        "{}",
        to_json(&attempt)
    );
    assert_eq!(field(&attempt, "status").as_f64(), Some(200.0));
}

#[wasm_bindgen_test]
async fn a_stream_of_reads_arms_a_few_timeouts_not_one_per_read() {
    // 300 reads of one chunk each, from a stream that needs no timer of its own; every
    // `setTimeout` made during the call is counted (the wrapper is removed afterwards).
    let count = js_fn(
        "on",
        "const g = globalThis; \
         if (!on) { g.setTimeout = g.__lsgCountedSetTimeout; const n = g.__lsgTimeouts; \
           delete g.__lsgCountedSetTimeout; delete g.__lsgTimeouts; return n; } \
         const real = g.setTimeout; g.__lsgCountedSetTimeout = real; g.__lsgTimeouts = 0; \
         g.setTimeout = (...args) => { g.__lsgTimeouts += 1; return real(...args); }; return 0;",
    );
    let fetch = js_fn(
        "",
        "return () => { let i = 0; const e = new TextEncoder(); \
           return Promise.resolve(new Response(new ReadableStream({ pull(c) { \
             if (i === 300) { c.enqueue(e.encode('data: [DONE]\\n\\n')); c.close(); return; } \
             i += 1; c.enqueue(e.encode('data: ' + JSON.stringify( \
               { choices: [{ index: 0, delta: { content: 'x' } }] }) + '\\n\\n')); } }), \
             { headers: { 'content-type': 'text/event-stream' } })); };",
    )
    .call0(&JsValue::NULL)
    .unwrap();
    count.call1(&JsValue::NULL, &JsValue::TRUE).unwrap();
    let run = run(
        opts(vec![provider("alpha", "normal", "", "unused")], roomy()),
        Extra {
            fetch: Some(fetch),
            ..Extra::default()
        },
    )
    .await;
    let armed = count
        .call1(&JsValue::NULL, &JsValue::FALSE)
        .unwrap()
        .as_f64()
        .unwrap();
    assert_eq!(run.joined(), "x".repeat(300), "{}", run.everything());
    assert!(
        (1.0..=6.0).contains(&armed),
        "{armed} timeouts armed for 300 reads"
    );
    assert_nothing_live("after the stream");
}
