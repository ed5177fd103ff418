//! `Session`: lifecycle cancellation of generations, run by `wasm-pack test` in Chromium,
//! Firefox and Node against the real mock upstream (`MOCK_UPSTREAM_URL`, set by `cargo xtask
//! test`).
//!
//! Every cancellation is checked end to end: the generation rejects with a `GuardError` of kind
//! `"aborted"` and the expected `reason`, `onEvent` got `{type: "cancelled", reason}`, and the
//! mock's ledger shows the upstream connection closed by the client within 100 ms of the cancel
//! (every measurement is printed with the running median and worst). After every test the
//! module's `liveResources()` is all zeros. Tests that need a page (WebRTC, WebSocket,
//! `pagehide`) print a note and return early in Node.

#![cfg(target_arch = "wasm32")]

mod wasm_common;
mod wasm_session_support;

use js_sys::Function;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;
use wasm_session_support::*;

/// How long a cancelled generation may take to settle before the test fails.
const SETTLE_MS: u32 = 3000;

/// Opens a WebSocket to the mock's `/ws`, tagged `ws_tag`.
async fn websocket(ws_tag: &str) -> JsValue {
    let url = ws_url(&format!("tag={}", enc(ws_tag)));
    must_resolve(open_web_socket(&url), 4000, &format!("open {url}")).await
}

/// The WebSocket record of `ws_tag` once closed.
async fn ws_record(ws_tag: &str) -> serde_json::Value {
    let view = ledger_closed(ws_tag).await;
    let gets = conns(&view, "GET");
    assert_eq!(gets.len(), 1, "one WebSocket tagged {ws_tag}: {view}");
    assert_eq!(s(gets[0], "path"), "/ws");
    assert_eq!(gets[0]["status"], 101, "{view}");
    assert!(
        gets[0]["closed_at_ms"].is_number(),
        "WebSocket still open: {view}"
    );
    gets[0].clone()
}

// ---------------------------------------------------------------------------------------------
// WebRTC: a real loopback pair in the page.

#[wasm_bindgen_test]
async fn rtc_far_side_close_cancels_through_the_data_channel() {
    const TEST: &str = "rtc_far_side_close_cancels_through_the_data_channel";
    if !is_page() || !has_peer_connection() {
        return skip(TEST, "needs a page with RTCPeerConnection");
    }
    let pair = must_resolve(rtc_pair(), 10_000, "loopback RTCPeerConnection pair").await;
    let (pc1, pc2, dc1) = (
        field(&pair, "pc1"),
        field(&pair, "pc2"),
        field(&pair, "dc1"),
    );
    // Added before the session's listeners, so it runs first: its time is the moment the
    // session learns of the close.
    let dc_closing = next_event(&dc1, "closing");
    let session = session(serde_json::Value::Null);
    watch(&session, &pc1);
    watch(&session, &dc1);
    let gen = Gen::start(Some(&session), Upstream::endless(), "rtc-far");
    gen.streaming().await;
    assert_eq!(session.active(), 1);

    let closed_at = now();
    call(&pc2, "close", &[]);
    let out = gen.settle(SETTLE_MS).await;
    let (reason, cancelled_at) = out.assert_cancelled(PEER_REASONS);
    // The cancel moment: the near data channel's `closing` when that is what cancelled.
    let cancel_at = match settle_within(dc_closing, 0).await {
        Some(Ok(ev)) if reason == "datachannel:close" => {
            field(&ev, "at").as_f64().unwrap_or(closed_at)
        }
        _ => closed_at,
    };
    console_log!(
        "[{}] far-side close: cancel moment {:.1} ms after pc2.close(), cancelled ({reason}) \
         event {:.1} ms after it",
        runtime(),
        cancel_at - closed_at,
        cancelled_at - closed_at
    );
    assert_eq!(session.active(), 0);
    assert_upstream_closed(&out.tag, cancel_at, "far side pc.close()").await;

    close_pair(&pair);
    close_all(vec![session], TEST);
}

#[wasm_bindgen_test]
async fn rtc_local_close_is_cancelled_by_the_app_with_its_reason() {
    const TEST: &str = "rtc_local_close_is_cancelled_by_the_app_with_its_reason";
    if !is_page() || !has_peer_connection() {
        return skip(TEST, "needs a page with RTCPeerConnection");
    }
    let pair = must_resolve(rtc_pair(), 10_000, "loopback RTCPeerConnection pair").await;
    let (pc1, dc1) = (field(&pair, "pc1"), field(&pair, "dc1"));
    let session = session(serde_json::Value::Null);
    watch(&session, &pc1);
    watch(&session, &dc1);
    let gen = Gen::start(Some(&session), Upstream::endless(), "rtc-local");
    gen.streaming().await;

    // A local close fires no `connectionstatechange`, so the app cancels itself, in the same
    // turn (any event the close queues runs after this).
    let cancel_at = now();
    call(&pc1, "close", &[]);
    session.cancel(Some("peer-closed-by-app".into()));
    let out = gen.settle(SETTLE_MS).await;
    out.assert_cancelled(&["peer-closed-by-app"]);
    assert_upstream_closed(&out.tag, cancel_at, "pc.close() + cancel(reason)").await;

    close_pair(&pair);
    close_all(vec![session], TEST);
}

// ---------------------------------------------------------------------------------------------
// Peer-connection states, driven on a stand-in (a loopback pair cannot be forced to "failed").

#[wasm_bindgen_test]
async fn peer_failed_cancels_at_once() {
    const TEST: &str = "peer_failed_cancels_at_once";
    let (session, peer, gen) = streaming_with_fake_peer(
        serde_json::json!({ "disconnectGraceMs": 200 }),
        Upstream::endless(),
        "peer-failed",
    )
    .await;
    // The accounting sees what is held while streaming (so all zeros later means released).
    let [_, readers, listeners, in_flight] = resources();
    assert_eq!(
        (readers, in_flight),
        (1.0, 1.0),
        "liveResources() while one generation streams: {:?}",
        resources()
    );
    assert!(
        listeners >= 1.0,
        "the watched peer's listener is not counted"
    );

    let cancel_at = now();
    set_connection_state(&peer, "failed");
    let out = gen.settle(SETTLE_MS).await;
    let (_, cancelled_at) = out.assert_cancelled(&["peer-connection:failed"]);
    assert!(
        cancelled_at - cancel_at < 50.0,
        "\"failed\" must cancel at once, the cancelled event came after {:.1} ms",
        cancelled_at - cancel_at
    );
    assert_upstream_closed(&out.tag, cancel_at, "connectionState failed").await;

    // "closed" too, on a later generation of the same (still usable) session.
    let peer2 = fake_peer();
    watch(&session, &peer2);
    let gen = Gen::start(Some(&session), Upstream::endless(), "peer-closed");
    gen.streaming().await;
    let cancel_at = now();
    set_connection_state(&peer2, "closed");
    let out = gen.settle(SETTLE_MS).await;
    out.assert_cancelled(&["peer-connection:closed"]);
    assert_upstream_closed(&out.tag, cancel_at, "connectionState closed").await;

    close_all(vec![session], TEST);
}

#[wasm_bindgen_test]
async fn peer_disconnected_that_recovers_within_the_grace_cancels_nothing() {
    const TEST: &str = "peer_disconnected_that_recovers_within_the_grace_cancels_nothing";
    // 11 pieces 50 ms apart: the answer takes about 550 ms, well past the grace.
    let (session, peer, gen) = streaming_with_fake_peer(
        serde_json::json!({ "disconnectGraceMs": 200 }),
        Upstream::normal(50),
        "peer-recovers",
    )
    .await;
    let disconnected_at = now();
    set_connection_state(&peer, "disconnected");
    // The stream is the clock: one piece (about 50 ms) later the link is back.
    gen.texts_arrived(2, 2000).await;
    let recovered_at = now();
    assert!(
        recovered_at - disconnected_at < 190.0,
        "the recovery came {:.1} ms after the disconnect: not within the 200 ms grace (the mock \
         was slow), so this run proves nothing",
        recovered_at - disconnected_at
    );
    set_connection_state(&peer, "connected");
    let out = gen.settle(SETTLE_MS).await;
    out.assert_complete();
    assert!(
        out.settled_at - disconnected_at > 250.0,
        "the generation ended {:.1} ms after the disconnect, before the grace would have run \
         out: this run proves nothing",
        out.settled_at - disconnected_at
    );
    assert_all_closed(&out.tag, TEST).await;
    // The grace timer was cleared on recovery: nothing armed any more.
    close_all(vec![session], TEST);
}

#[wasm_bindgen_test]
async fn peer_disconnected_past_the_grace_cancels_after_the_grace() {
    const TEST: &str = "peer_disconnected_past_the_grace_cancels_after_the_grace";
    const GRACE: f64 = 200.0;
    let (session, peer, gen) = streaming_with_fake_peer(
        serde_json::json!({ "disconnectGraceMs": GRACE }),
        Upstream::endless(),
        "peer-lost",
    )
    .await;
    let disconnected_at = now();
    set_connection_state(&peer, "disconnected");
    // While the grace runs, the generation keeps streaming (the link may come back).
    gen.texts_arrived(gen.text_count() + 2, 2000).await;
    let out = gen.settle(SETTLE_MS).await;
    let (_, cancelled_at) = out.assert_cancelled(&["peer-connection:disconnected"]);
    let after = cancelled_at - disconnected_at;
    console_log!(
        "[{}] disconnected held: cancelled {after:.1} ms after the disconnect (grace {GRACE} ms)",
        runtime()
    );
    assert!(
        (GRACE - CLOCK_SLACK_MS..GRACE + 200.0).contains(&after),
        "cancelled {after:.1} ms after the disconnect, expected about {GRACE} ms"
    );
    assert!(out.joined().starts_with(TICK));
    // The cancel happened when the grace ran out: measure from the cancelled event.
    assert_upstream_closed(&out.tag, cancelled_at, "disconnected past the grace").await;
    close_all(vec![session], TEST);
}

#[wasm_bindgen_test]
async fn peer_disconnected_again_after_a_recovery_gets_a_whole_grace() {
    const TEST: &str = "peer_disconnected_again_after_a_recovery_gets_a_whole_grace";
    const GRACE: f64 = 200.0;
    let (session, peer, gen) = streaming_with_fake_peer(
        serde_json::json!({ "disconnectGraceMs": GRACE }),
        Upstream::endless(),
        "peer-flap",
    )
    .await;
    // disconnected, connected two ticks (about 40 ms) later, disconnected again two ticks later.
    let first_at = now();
    set_connection_state(&peer, "disconnected");
    gen.texts_arrived(gen.text_count() + 2, 2000).await;
    set_connection_state(&peer, "connected");
    gen.texts_arrived(gen.text_count() + 2, 2000).await;
    let second_at = now();
    set_connection_state(&peer, "disconnected");
    assert!(
        second_at - first_at < GRACE - 10.0,
        "the second disconnect came {:.1} ms after the first: not within one grace (the mock was \
         slow), so this run proves nothing",
        second_at - first_at
    );
    let out = gen.settle(SETTLE_MS).await;
    let (_, cancelled_at) = out.assert_cancelled(&["peer-connection:disconnected"]);
    let after = cancelled_at - second_at;
    console_log!(
        "[{}] flapping link: cancelled {after:.1} ms after the second disconnect ({:.1} ms after \
         the first; grace {GRACE} ms)",
        runtime(),
        cancelled_at - first_at
    );
    assert!(
        (GRACE - CLOCK_SLACK_MS..GRACE + 200.0).contains(&after),
        "cancelled {after:.1} ms after the second disconnect: the recovery should have restarted \
         the grace ({GRACE} ms)"
    );
    assert_upstream_closed(&out.tag, cancelled_at, "disconnected again past the grace").await;
    close_all(vec![session], TEST);
}

// ---------------------------------------------------------------------------------------------
// A real WebSocket to the mock's /ws.

/// A session watching a new WebSocket to the mock's `/ws` (tagged `<label>`), with one endless
/// generation (tagged `<label>-gen`) streaming in it.
struct WsCase {
    ws_tag: String,
    ws: JsValue,
    /// The socket's next `close` event. Its listener is added before the session's, so it runs
    /// first: its time is the cancel moment.
    closed: js_sys::Promise,
    session: llm_stream_guard::web::Session,
    gen: Gen,
}

async fn ws_case(label: &str) -> WsCase {
    let ws_tag = tag(label);
    let ws = websocket(&ws_tag).await;
    let closed = next_event(&ws, "close");
    let session = session(serde_json::Value::Null);
    watch(&session, &ws);
    let gen = Gen::start(Some(&session), Upstream::endless(), &format!("{label}-gen"));
    gen.streaming().await;
    WsCase {
        ws_tag,
        ws,
        closed,
        session,
        gen,
    }
}

/// Asserts that the socket's close (clean or not, as `was_clean` says; `acted_at` is when the test
/// made it happen) cancelled the generation, that the upstream connection closed in time
/// (measured as `what`), and that the mock saw `closed_by` end the socket; then closes the session.
async fn assert_ws_close_cancels(
    case: WsCase,
    acted_at: f64,
    what: &str,
    was_clean: bool,
    closed_by: &str,
    test: &str,
) {
    let out = case.gen.settle(SETTLE_MS).await;
    out.assert_cancelled(&["websocket:close"]);
    let close = must_resolve(case.closed, 2000, "WebSocket close event").await;
    assert_eq!(
        field(&close, "wasClean").as_bool(),
        Some(was_clean),
        "{test}: a dropped connection is not a clean close, a closed one is"
    );
    let cancel_at = field(&close, "at").as_f64().unwrap();
    console_log!(
        "[{}] {what}: WebSocket close event (code {:?}) {:.1} ms after the test acted",
        runtime(),
        field(&close, "code").as_f64(),
        cancel_at - acted_at
    );
    assert_upstream_closed(&out.tag, cancel_at, what).await;
    let rec = ws_record(&case.ws_tag).await;
    assert_eq!(s(&rec, "closed_by"), closed_by, "{rec}");
    close_all(vec![case.session], test);
}

#[wasm_bindgen_test]
async fn websocket_dropped_by_the_server_cancels() {
    const TEST: &str = "websocket_dropped_by_the_server_cancels";
    if !is_page() || !has_web_socket() {
        return skip(TEST, "needs a page with WebSocket");
    }
    let case = ws_case("ws-drop").await;
    let sent_at = now();
    call(&case.ws, "send", &[JsValue::from_str("drop")]);
    assert_ws_close_cancels(
        case,
        sent_at,
        "WebSocket dropped by the server",
        false,
        "server",
        TEST,
    )
    .await;
}

#[wasm_bindgen_test]
async fn websocket_closed_by_the_client_cancels() {
    const TEST: &str = "websocket_closed_by_the_client_cancels";
    if !is_page() || !has_web_socket() {
        return skip(TEST, "needs a page with WebSocket");
    }
    let case = ws_case("ws-close").await;
    let called_at = now();
    call(&case.ws, "close", &[]);
    assert_ws_close_cancels(
        case,
        called_at,
        "WebSocket closed by the client",
        true,
        "client",
        TEST,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// pagehide

#[wasm_bindgen_test]
async fn pagehide_cancels_page_sessions_and_not_page_false_ones() {
    const TEST: &str = "pagehide_cancels_page_sessions_and_not_page_false_ones";
    if !is_page() {
        return skip(TEST, "needs a page (window)");
    }
    let page = session(serde_json::Value::Null);
    let detached = session(serde_json::json!({ "page": false }));
    let a = Gen::start(Some(&page), Upstream::endless(), "pagehide-page");
    let b = Gen::start(Some(&detached), Upstream::normal(30), "pagehide-detached");
    a.streaming().await;
    b.streaming().await;

    let cancel_at = now();
    fire_pagehide();
    let a = a.settle(SETTLE_MS).await;
    a.assert_cancelled(&["pagehide"]);
    let b = b.settle(SETTLE_MS).await;
    b.assert_complete();
    assert_upstream_closed(&a.tag, cancel_at, "pagehide").await;
    assert_all_closed(&b.tag, TEST).await;

    // The page session stays usable after a pagehide (the page may come back from the cache).
    let again = Gen::start(Some(&page), Upstream::normal(0), "pagehide-again");
    again.settle(SETTLE_MS).await.assert_complete();

    close_all(vec![page, detached], TEST);
}

// ---------------------------------------------------------------------------------------------
// AbortSignal

#[wasm_bindgen_test]
async fn a_watched_signal_cancels_and_unwatch_stops_that() {
    const TEST: &str = "a_watched_signal_cancels_and_unwatch_stops_that";
    let session = session(serde_json::json!({ "page": false }));
    let controller = web_sys::AbortController::new().unwrap();
    watch(&session, controller.signal().as_ref());
    let gen = Gen::start(Some(&session), Upstream::endless(), "signal");
    gen.streaming().await;
    let cancel_at = now();
    controller.abort();
    let out = gen.settle(SETTLE_MS).await;
    out.assert_cancelled(&["signal"]);
    assert_upstream_closed(&out.tag, cancel_at, "watched AbortSignal").await;

    // unwatch(): the signal no longer reaches the session.
    let listeners_before = resources()[2];
    let other = web_sys::AbortController::new().unwrap();
    let unwatch: Function = watch(&session, other.signal().as_ref());
    assert!(
        resources()[2] > listeners_before,
        "watch() should add a listener"
    );
    unwatch.call0(&JsValue::UNDEFINED).unwrap();
    assert_eq!(
        resources()[2],
        listeners_before,
        "unwatch() should remove the listener"
    );
    let gen = Gen::start(Some(&session), Upstream::normal(30), "signal-unwatched");
    gen.streaming().await;
    other.abort();
    gen.settle(SETTLE_MS).await.assert_complete();

    close_all(vec![session], TEST);
}

// ---------------------------------------------------------------------------------------------
// Sessions are independent.

#[wasm_bindgen_test]
async fn cancelling_one_session_leaves_the_other_finishing() {
    const TEST: &str = "cancelling_one_session_leaves_the_other_finishing";
    let a = session(serde_json::json!({ "page": false }));
    let b = session(serde_json::json!({ "page": false }));
    let a_gens: Vec<Gen> = (0..3)
        .map(|i| Gen::start(Some(&a), Upstream::endless(), &format!("two-a{i}")))
        .collect();
    let b_gens: Vec<Gen> = (0..3)
        .map(|i| Gen::start(Some(&b), Upstream::normal(30), &format!("two-b{i}")))
        .collect();
    for g in a_gens.iter().chain(&b_gens) {
        g.streaming().await;
    }
    assert_eq!((a.active(), b.active()), (3, 3));

    let cancel_at = now();
    a.cancel(None);
    let a_out = settle_all(a_gens, SETTLE_MS).await;
    for o in &a_out {
        o.assert_cancelled(&["cancel"]);
    }
    assert_eq!(a.active(), 0);
    for g in b_gens {
        g.settle(SETTLE_MS).await.assert_complete();
    }
    assert_eq!(b.active(), 0);
    assert_upstreams_closed(&a_out, cancel_at, "cancel() of 3 in flight").await;

    // The cancelled session stays usable.
    let again = Gen::start(Some(&a), Upstream::normal(0), "two-a-again");
    again.settle(SETTLE_MS).await.assert_complete();

    close_all(vec![a, b], TEST);
}

#[wasm_bindgen_test]
async fn one_session_losing_its_peer_leaves_the_other_finishing() {
    const TEST: &str = "one_session_losing_its_peer_leaves_the_other_finishing";
    let a = session(serde_json::json!({ "page": false, "disconnectGraceMs": 200 }));
    let b = session(serde_json::json!({ "page": false, "disconnectGraceMs": 200 }));
    let (peer_a, peer_b) = (fake_peer(), fake_peer());
    watch(&a, &peer_a);
    watch(&b, &peer_b);
    let a_gens: Vec<Gen> = (0..3)
        .map(|i| Gen::start(Some(&a), Upstream::endless(), &format!("peer-a{i}")))
        .collect();
    let b_gens: Vec<Gen> = (0..3)
        .map(|i| Gen::start(Some(&b), Upstream::normal(30), &format!("peer-b{i}")))
        .collect();
    for g in a_gens.iter().chain(&b_gens) {
        g.streaming().await;
    }
    let cancel_at = now();
    set_connection_state(&peer_a, "failed");
    let a_out = settle_all(a_gens, SETTLE_MS).await;
    for o in &a_out {
        o.assert_cancelled(&["peer-connection:failed"]);
    }
    for g in b_gens {
        g.settle(SETTLE_MS).await.assert_complete();
    }
    assert_upstreams_closed(&a_out, cancel_at, "peer failed, 3 in flight").await;
    close_all(vec![a, b], TEST);
}

#[wasm_bindgen_test]
async fn plain_generate_is_not_cancelled_by_a_session() {
    const TEST: &str = "plain_generate_is_not_cancelled_by_a_session";
    let session = session(serde_json::json!({ "page": false }));
    let tracked = Gen::start(Some(&session), Upstream::endless(), "plain-tracked");
    let plain = Gen::start(None, Upstream::normal(30), "plain-untracked");
    tracked.streaming().await;
    plain.streaming().await;
    assert_eq!(
        session.active(),
        1,
        "only the session's own generation is tracked"
    );
    let cancel_at = now();
    session.cancel(Some("user pressed stop".into()));
    let tracked = tracked.settle(SETTLE_MS).await;
    tracked.assert_cancelled(&["user pressed stop"]);
    plain.settle(SETTLE_MS).await.assert_complete();
    assert_upstream_closed(&tracked.tag, cancel_at, "cancel(reason)").await;
    close_all(vec![session], TEST);
}

// ---------------------------------------------------------------------------------------------
// close() and dispose

#[wasm_bindgen_test]
async fn close_cancels_in_flight_and_refuses_later_generations() {
    const TEST: &str = "close_cancels_in_flight_and_refuses_later_generations";
    let session = session(serde_json::Value::Null);
    let peer = fake_peer();
    watch(&session, &peer);
    let gens: Vec<Gen> = (0..2)
        .map(|i| Gen::start(Some(&session), Upstream::endless(), &format!("close{i}")))
        .collect();
    for g in &gens {
        g.streaming().await;
    }
    assert_eq!(session.active(), 2);
    let cancel_at = now();
    session.close();
    let outs = settle_all(gens, SETTLE_MS).await;
    for o in &outs {
        o.assert_cancelled(&["closed"]);
    }
    assert_eq!(session.active(), 0);
    assert_upstreams_closed(&outs, cancel_at, "close()").await;
    // Every listener is gone right after close(), before the session itself is dropped.
    assert_eq!(
        resources()[2],
        0.0,
        "close() should remove every listener (pagehide, the watched peer)"
    );
    // A later state change of the watched peer does nothing.
    set_connection_state(&peer, "failed");

    // Later generations reject at once, without contacting the upstream.
    let late = Gen::start(Some(&session), Upstream::normal(0), "close-late");
    let late_tag = late.tag.clone();
    let late = late.settle(SETTLE_MS).await;
    late.assert_closed_rejection();
    assert_eq!(session.active(), 0);
    // close() twice is harmless.
    close_all(vec![session], TEST);
    let view = ledger_now(&late_tag).await;
    assert!(
        view["connections"].as_array().is_some_and(|c| c.is_empty()),
        "a generation of a closed session reached the upstream: {view}"
    );
}

#[wasm_bindgen_test]
async fn symbol_dispose_closes_the_session() {
    const TEST: &str = "symbol_dispose_closes_the_session";
    if !has_symbol_dispose() {
        return skip(TEST, "no Symbol.dispose in this runtime");
    }
    let session = session(serde_json::Value::Null);
    let gen = Gen::start(Some(&session), Upstream::endless(), "dispose");
    gen.streaming().await;
    let object: JsValue = session.into();
    let cancel_at = now();
    assert!(dispose(&object), "Session has no [Symbol.dispose]()");
    let out = gen.settle(SETTLE_MS).await;
    out.assert_cancelled(&["closed"]);
    assert_upstream_closed(&out.tag, cancel_at, "[Symbol.dispose]()").await;
    assert_no_live_resources(TEST);
}

#[wasm_bindgen_test]
fn an_options_getter_that_makes_another_session_is_answered_too() {
    // Reading the caller's options runs the caller's getters. One that makes another Session
    // puts the library on the stack twice while the first is still reading: the inner one reads
    // its own options (here refused), and the outer one is made.
    use llm_stream_guard::web::Session;
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen::prelude::Closure;
    let made: Rc<RefCell<Option<Result<Session, JsValue>>>> = Rc::default();
    let slot = made.clone();
    let make = Closure::<dyn FnMut() -> JsValue>::new(move || {
        let options = js_sys::JSON::parse(r#"{"page":false,"disconnectGraceMs":-1}"#).unwrap();
        *slot.borrow_mut() = Some(Session::new(options));
        JsValue::FALSE
    });
    let options = Function::new_with_args(
        "make",
        "const o = {}; Object.defineProperty(o, 'page', { enumerable: true, get: make }); return o;",
    )
    .call1(&JsValue::NULL, make.as_ref())
    .unwrap();
    let outer = Session::new(options).expect("the outer session is made");
    let inner = made.borrow_mut().take().expect("the getter ran");
    let error = inner.err().expect("the inner session read its own options");
    let kind = js_sys::Reflect::get(&error, &"kind".into()).unwrap();
    assert_eq!(kind.as_string().as_deref(), Some("config"));
    outer.close();
    drop(make);
}
