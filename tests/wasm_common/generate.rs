//! Helpers of the `generate()` suite: deadlines and options, one call with no extras, and the
//! shapes of assertion its tests share (a guard error, a complete or partial answer, an event
//! seen once, fields of a JSON object, a connection released by the client).

use serde_json::{json, Value};
use wasm_bindgen_test::console_log;

use super::*;

/// Lower slack on a measured deadline (timers may fire a hair early against `Date.now()`).
pub const LOW_SLACK: f64 = 5.0;
/// Upper slack on a measured deadline (browsers on a loaded 2-core machine).
pub const HIGH_SLACK: f64 = 700.0;
/// How soon after the call ended (or was aborted) the ledger must show the connection closed.
pub const RELEASE_MS: f64 = 500.0;

/// `timeouts` with these deadlines (ms): headers, first token, idle, stream, service.
pub fn deadlines(headers: u32, first_token: u32, idle: u32, stream: u32, service: u32) -> Value {
    json!({ "headersMs": headers, "firstTokenMs": first_token, "idleMs": idle, "streamMs": stream, "serviceMs": service })
}

/// Short deadlines for the timing tests.
pub fn tight() -> Value {
    deadlines(300, 400, 300, 1500, 3000)
}

/// Deadlines that a well-behaved local answer never meets, but that still end a misbehaving call
/// well before the watchdog.
pub fn roomy() -> Value {
    deadlines(2000, 2000, 2000, 2500, 3000)
}

/// Options for `providers` with `timeouts` and quick retries.
pub fn opts(providers: Vec<Value>, timeouts: Value) -> Value {
    json!({
        "providers": providers,
        "messages": messages(),
        "timeouts": timeouts,
        "retry": { "baseDelayMs": 10, "maxDelayMs": 40 },
    })
}

/// Prints a measured figure (visible with `--nocapture` or when a test fails).
pub fn figure(what: &str, ms: f64) {
    console_log!("[figure] {what}: {ms:.1} ms");
}

/// Asserts `deadline - LOW_SLACK <= measured <= deadline + HIGH_SLACK` and prints the figure.
pub fn assert_near(what: &str, measured: f64, deadline: f64) {
    figure(what, measured);
    assert!(
        measured >= deadline - LOW_SLACK && measured <= deadline + HIGH_SLACK,
        "{what}: measured {measured:.1} ms, expected {deadline} ms (-{LOW_SLACK}/+{HIGH_SLACK})"
    );
}

/// Asserts that `err` is a GuardError (an Error named "GuardError") of `kind`.
pub fn assert_guard_error(err: &Value, kind: &str) {
    assert_eq!(err["isError"], json!(true), "rejects with an Error: {err}");
    assert_eq!(s(err, "name"), "GuardError", "error name: {err}");
    assert_eq!(s(err, "kind"), kind, "error kind: {err}");
    assert!(!s(err, "message").is_empty(), "error has a message: {err}");
}

/// Asserts a complete answer with `text` (also equal to the joined `onText` pieces).
pub fn assert_complete(run: &Run, text: &str) {
    let r = run.ok();
    assert_eq!(s(r, "text"), text, "result.text: {r}");
    assert_eq!(run.joined(), text, "onText pieces joined");
    assert_eq!(r["partial"], json!(false), "partial flag: {r}");
    assert!(
        r.get("cause").is_none_or(Value::is_null),
        "no cause on a complete answer: {r}"
    );
}

/// Asserts a partial answer with `text` whose cause is `kind` (and `phase`, when given).
pub fn assert_partial(run: &Run, text: &str, kind: &str, phase: Option<&str>) {
    let r = run.ok();
    assert_eq!(s(r, "text"), text, "result.text: {r}");
    assert_eq!(run.joined(), text, "onText pieces joined");
    assert_eq!(r["partial"], json!(true), "partial flag: {r}");
    let cause = &r["cause"];
    assert_eq!(s(cause, "kind"), kind, "cause.kind: {r}");
    if let Some(phase) = phase {
        assert_eq!(s(cause, "phase"), phase, "cause.phase: {r}");
    }
    assert!(!s(cause, "message").is_empty(), "cause.message: {r}");
    let done = run.only_event("done");
    assert_eq!(done["partial"], json!(true), "done.partial: {}", done);
}

/// `(provider, outcome, status)` for the attempt log.
pub fn att(provider: &str, outcome: &str, status: Option<u64>) -> (String, String, Option<u64>) {
    (provider.to_string(), outcome.to_string(), status)
}

/// The attempt log of a call whose first provider `alpha` failed with `outcome` (and `status`)
/// and whose second, `beta`, answered.
pub fn alpha_failed_then_beta(
    outcome: &str,
    status: Option<u64>,
) -> Vec<(String, String, Option<u64>)> {
    vec![
        att("alpha", outcome, status),
        att("beta", "complete", Some(200)),
    ]
}

/// Asserts the ledger shows the one POST of `tag` closed by the client within `RELEASE_MS` of
/// `since` (the call's end or the abort); prints the latency.
pub async fn assert_released_by_client(tag: &str, since: f64, what: &str) -> Conn {
    let view = assert_closed(tag, what).await;
    let conn = only_post(&view, what).clone();
    let closed_at = conn.closed_at_ms.unwrap();
    figure(
        &format!("{what}: connection closed after"),
        closed_at - since,
    );
    assert_eq!(
        conn.closed_by.as_deref(),
        Some("client"),
        "{what}: the guard (client) closed the connection: {conn:?}"
    );
    assert!(
        closed_at - since <= RELEASE_MS,
        "{what}: connection closed {:.1} ms after the call ended (limit {RELEASE_MS})",
        closed_at - since
    );
    conn
}

/// Calls `generate()` over `providers` with `timeouts` (see [`opts`]) and no signal, hooks or
/// patches.
pub async fn call_chain(providers: Vec<Value>, timeouts: Value) -> Run {
    run(opts(providers, timeouts), Extra::default()).await
}

/// Calls `generate()` with the one provider `alpha` on `scenario` (with `query`), tagged
/// `tag(label)`; returns the tag and the run.
pub async fn call_alpha(
    label: &str,
    scenario: &str,
    query: &str,
    timeouts: Value,
) -> (String, Run) {
    let t = tag(label);
    let run = call_chain(vec![provider("alpha", scenario, query, &t)], timeouts).await;
    (t, run)
}

/// Calls `generate()` with `alpha` on `scenario` (with `query`, tagged `tag("<label>-a")`) and
/// then `beta` on `normal` (tagged `tag("<label>-b")`); returns both tags and the run.
pub async fn call_alpha_then_beta(
    label: &str,
    scenario: &str,
    query: &str,
    timeouts: Value,
) -> (String, String, Run) {
    let (ta, tb) = (tag(&format!("{label}-a")), tag(&format!("{label}-b")));
    let providers = vec![
        provider("alpha", scenario, query, &ta),
        provider("beta", "normal", "", &tb),
    ];
    (ta, tb, call_chain(providers, timeouts).await)
}

/// Asserts that each `(key, value)` of `fields` is a string field of `v` with that value.
#[track_caller]
pub fn assert_fields(v: &Value, fields: &[(&str, &str)]) {
    for (key, value) in fields {
        assert_eq!(s(v, key), *value, "{key}: {v}");
    }
}

impl Run {
    /// The one event of type `ty`, asserting there was exactly one.
    #[track_caller]
    pub fn only_event(&self, ty: &str) -> &Value {
        let events = self.events_of(ty);
        assert_eq!(events.len(), 1, "one {ty} event: {}", self.event_summary());
        events[0]
    }
}
