//! The isolates' shared breaker decisions (`LSG_GUARD_DO`, a Durable Object namespace): the
//! Durable Object's step for `worker.js`'s `GuardBreakers` class, and each isolate's reports
//! and refreshes. What is shared, how it merges and when to ask are the core's
//! ([`crate::core::guard::shared`]); this module moves the JSON.
//!
//! It must never: wait for the Durable Object on a request's path (reports and refreshes run
//! under `ctx.waitUntil`, after the response or beside it), fail a request because the Durable
//! Object failed (the isolate keeps serving with its own state; the failure is counted and
//! logged by kind, with no value in it), or send it anything but provider names, failure kinds
//! and times.

use super::chat::GUARD;
use super::{get, log_error, metrics};
use crate::core::guard::breaker::Decision;
use crate::core::guard::shared::{self, SharedBreaker, SharedView};
use crate::web::executor::{future_to_promise, spawn_local};
use crate::web::resources::Sleep;
use futures::future::{select, Either, FutureExt};
use js_sys::{Function, Object, Promise, Reflect};
use std::cell::RefCell;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The binding that names the Durable Object namespace.
const BINDING: &str = "LSG_GUARD_DO";

/// The one object of the namespace that every isolate talks to.
const OBJECT_NAME: &str = "lsg-guard-breakers";

/// How long one exchange with the Durable Object may take before it counts as failed.
const SYNC_TIMEOUT_MS: f64 = 2_000.0;

thread_local! {
    /// This isolate's side of the sharing.
    static VIEW: RefCell<SharedView> = RefCell::new(SharedView::new(shared::REFRESH_MS));
}

/// The Durable Object's step (`worker.js`'s `GuardBreakers`): its store with the report merged
/// in, which is also the answer; a bad report throws an `Error` whose message is the reason.
#[wasm_bindgen(js_name = guardBreakersSync, skip_typescript)]
pub fn guard_breakers_sync(stored: &str, report: &str) -> Result<String, JsValue> {
    shared::sync_store(stored, report).map_err(|e| js_sys::Error::new(e.as_str()).into())
}

/// Why an exchange with the Durable Object failed (a metric label and a log word).
fn count(outcome: &'static str) {
    metrics(|m| m.shared_sync(outcome));
    if outcome != "ok" {
        log_error(&format!(
            "the guard's Durable Object ({BINDING}) failed ({outcome}): this isolate goes on \
             with its own breakers"
        ));
    }
}

/// Whether `env` binds a Durable Object namespace for the guard (anything under the name
/// counts: a binding of the wrong kind is a failure to count, not a reason to ignore it).
pub(super) fn bound(env: &JsValue) -> bool {
    let binding = get(env, BINDING);
    !binding.is_undefined() && !binding.is_null()
}

/// At a request's start (or a `/metrics` read), when the binding is there and the view is due:
/// asks the Durable Object for its store, beside the request.
pub(super) fn refresh_if_due(env: &JsValue, ctx: &JsValue) {
    if bound(env) && VIEW.with(|v| v.borrow_mut().due(js_sys::Date::now())) {
        beside(ctx, exchange(env.clone(), Vec::new()));
    }
}

/// A guarded request ended: its breakers' decisions went from `before` to `after`; what
/// changed goes to the Durable Object (and its answer is adopted), beside the response.
pub(super) fn report(
    env: &JsValue,
    ctx: &JsValue,
    before: &[(String, Decision)],
    after: &[(String, Decision)],
) {
    if !bound(env) {
        return;
    }
    let now = js_sys::Date::now();
    let changes = VIEW.with(|v| v.borrow_mut().changes(now, before, after));
    if !changes.is_empty() {
        beside(ctx, exchange(env.clone(), changes));
    }
}

/// Runs `work` under `ctx.waitUntil` (so the isolate is kept for it, and the response does not
/// wait); without one, as a task of its own.
fn beside(ctx: &JsValue, work: impl std::future::Future<Output = ()> + 'static) {
    let wait_until = get(ctx, "waitUntil").dyn_into::<Function>();
    match wait_until {
        Ok(wait_until) => {
            let promise = future_to_promise(work.map(|()| Ok(JsValue::UNDEFINED)));
            if wait_until.call1(ctx, &promise).is_err() {
                count("wait_until");
            }
        }
        Err(_) => spawn_local(work),
    }
}

/// Sends `report` to the Durable Object and adopts the store it answers with; bounded by
/// [`SYNC_TIMEOUT_MS`], every failure counted.
async fn exchange(env: JsValue, report: Vec<SharedBreaker>) {
    let body = serde_json::to_string(&report).unwrap_or_else(|_| "[]".into());
    let asked = ask(&env, body).boxed_local();
    let outcome = match select(asked, Sleep::new(SYNC_TIMEOUT_MS)).await {
        Either::Left((Ok(text), _)) => match shared::parse(&text) {
            Ok(view) => {
                let now = js_sys::Date::now();
                GUARD.with(|cell| {
                    if let Some(state) = cell.borrow_mut().as_mut() {
                        VIEW.with(|v| v.borrow().adopt(state, now, &view));
                    }
                });
                "ok"
            }
            Err(_) => "malformed",
        },
        Either::Left((Err(outcome), _)) => outcome,
        Either::Right(_) => "timeout",
    };
    count(outcome);
}

/// One `POST` of `body` to the namespace's object: its answer's text, or why not.
async fn ask(env: &JsValue, body: String) -> Result<String, &'static str> {
    let namespace = get(env, BINDING);
    let call = |target: &JsValue, name: &str, arg: &JsValue| -> Result<JsValue, &'static str> {
        let method = get(target, name)
            .dyn_into::<Function>()
            .map_err(|_| "not_a_namespace")?;
        method.call1(target, arg).map_err(|_| "not_a_namespace")
    };
    let id = call(&namespace, "idFromName", &JsValue::from_str(OBJECT_NAME))?;
    let stub = call(&namespace, "get", &id)?;
    let init = Object::new();
    let _ = Reflect::set(&init, &"method".into(), &"POST".into());
    let _ = Reflect::set(&init, &"body".into(), &JsValue::from_str(&body));
    let fetch = get(&stub, "fetch")
        .dyn_into::<Function>()
        .map_err(|_| "not_a_namespace")?;
    let promise = fetch
        .call2(
            &stub,
            &JsValue::from_str("https://lsg-guard-do/sync"),
            &init,
        )
        .map_err(|_| "unreachable")?;
    let response = JsFuture::from(Promise::resolve(&promise))
        .await
        .map_err(|_| "unreachable")?;
    if get(&response, "status").as_f64() != Some(200.0) {
        return Err("status");
    }
    let text = get(&response, "text")
        .dyn_into::<Function>()
        .and_then(|f| f.call0(&response))
        .map_err(|_| "unreachable")?;
    JsFuture::from(Promise::resolve(&text))
        .await
        .ok()
        .and_then(|t| t.as_string())
        .ok_or("unreachable")
}
