//! One chat request: access, body, the generation, and its answer. The HTTP status is held
//! until an upstream answers with 2xx headers or the first heartbeat is due: a failure before
//! that gets a real status and a JSON error (with `x-should-retry: false`, or 429 and
//! `Retry-After` when every provider was rate-limited); after it, a final error chunk and
//! `[DONE]`. When the client goes away (the response stream is cancelled, or the request's
//! signal aborts), the generation is cancelled and its upstream connection released.

use super::{get, header, log_error, metrics, now, read_body, refusal_response, response};
use crate::core::metrics::Metrics;
use crate::core::policy::parse_retry_after;
use crate::core::proxy::{
    bearer_token, completion_body, failure_message, failure_status, final_failure, misconfigured,
    parse_chat_request, relayed_event, Access, ChunkWriter, ProxyConfig, Refusal, Tried,
};
use crate::core::secrets::redact;
use crate::web::generate::run_generation;
use crate::web::resources::{Listener, Sleep};
use futures::channel::oneshot;
use futures::future::{select, Either, FutureExt};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array, JSON};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, spawn_local, JsFuture};
use web_sys::AbortController;

#[wasm_bindgen]
extern "C" {
    /// The response stream's `ReadableStreamDefaultController`. `enqueue` is bound by name in
    /// the glue, not looked up per write; it throws once the client has gone.
    type StreamController;
    #[wasm_bindgen(method, catch, structural)]
    fn enqueue(this: &StreamController, chunk: &Uint8Array) -> Result<(), JsValue>;
}

/// The downstream side of one streamed answer.
struct Downstream {
    controller: Option<JsValue>,
    pending: String,
    writer: ChunkWriter,
    client_gone: bool,
    committed: bool,
    /// When the last heartbeat or content went out (heartbeats are due after a quiet spell).
    last_write: f64,
    /// When the last byte of any kind went out (probes count).
    last_byte: f64,
    /// Output waiting for the next flush (one chunk per upstream read, not per delta).
    outbox: String,
    commit: Option<oneshot::Sender<()>>,
}

/// Queue `text` and flush on the next microtask, after the rest of this upstream read.
fn queue(downstream: &Rc<RefCell<Downstream>>, text: &str) {
    if downstream.borrow_mut().write(text) {
        let downstream = downstream.clone();
        spawn_local(async move { downstream.borrow_mut().flush() });
    }
}

impl Downstream {
    /// Queue `text` for the client. Text that arrives together (every delta of one upstream
    /// read) goes out as one chunk: returns `true` when the caller must schedule a [`flush`]
    /// (the outbox was empty), which [`queue`] does on the next microtask.
    fn write(&mut self, text: &str) -> bool {
        if self.client_gone {
            return false;
        }
        if self.controller.is_some() && self.committed {
            let schedule = self.outbox.is_empty();
            self.outbox.push_str(text);
            schedule
        } else {
            self.pending.push_str(text);
            false
        }
    }

    /// Send everything queued, as one chunk.
    fn flush(&mut self) {
        if self.outbox.is_empty() || self.client_gone {
            self.outbox.clear();
            return;
        }
        if let Some(controller) = &self.controller {
            let controller = controller.unchecked_ref::<StreamController>();
            if controller
                .enqueue(&Uint8Array::from(self.outbox.as_bytes()))
                .is_err()
            {
                self.client_gone = true;
            }
            self.last_write = now();
            self.last_byte = self.last_write;
        }
        self.outbox.clear();
    }

    /// A liveness probe: one LF between events (a blank line, which SSE parsers ignore when no
    /// event is pending). workerd notices that a client has gone only when it writes to it, so
    /// a silent upstream would otherwise keep a vanished client's generation running until the
    /// next heartbeat.
    fn probe(&mut self) {
        if let (Some(controller), true, false) =
            (&self.controller, self.committed, self.client_gone)
        {
            let controller = controller.unchecked_ref::<StreamController>();
            if controller.enqueue(&Uint8Array::from(&b"\n"[..])).is_err() {
                self.client_gone = true;
            }
            self.last_byte = now();
        }
    }
}

/// Watches the answers of a generation's requests: the `Retry-After` of each 429 (converted to
/// milliseconds), which the generation's error does not carry. A `fetch` for the generation's
/// options that calls the global one and looks at each response's head on the way.
fn watching_fetch(
    retry_after_ms: Rc<RefCell<Vec<f64>>>,
) -> Closure<dyn FnMut(JsValue, JsValue) -> Promise> {
    Closure::new(move |input: JsValue, init: JsValue| {
        let sent = match global_fetch(&input, &init) {
            Ok(promise) => promise,
            Err(thrown) => return Promise::reject(&thrown),
        };
        let retry_after_ms = retry_after_ms.clone();
        future_to_promise(async move {
            let answer = JsFuture::from(sent).await?;
            if get(&answer, "status").as_f64() == Some(429.0) {
                if let Some(ms) = header(&answer, "retry-after")
                    .and_then(|value| parse_retry_after(&value, now()))
                {
                    retry_after_ms.borrow_mut().push(ms);
                }
            }
            Ok(answer)
        })
    })
}

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (workerd and Workers have no `window`).
    #[wasm_bindgen(js_name = fetch, catch)]
    fn global_fetch(input: &JsValue, init: &JsValue) -> Result<Promise, JsValue>;
}

/// A refusal before the generation: counted under `outcome`, answered with the CORS headers.
fn refuse(outcome: &str, refusal: &Refusal, cors: &[(&'static str, String)]) -> JsValue {
    metrics(|m| m.request(outcome));
    refusal_response(refusal, cors)
}

pub(super) async fn chat(
    request: JsValue,
    env: JsValue,
    config: &ProxyConfig,
    origin: Option<String>,
) -> JsValue {
    let cors = config.cors_headers(origin.as_deref());
    let authorization = header(&request, "authorization");
    if config.authorize(authorization.as_deref(), origin.as_deref()) == Access::Denied {
        let refusal = Refusal::new(
            401,
            "authentication_error",
            "unauthorized",
            "a client token (Authorization: Bearer …) or an allowed Origin is required",
        );
        return refuse("unauthorized", &refusal, &cors);
    }
    let body = match read_body(&request, config.max_body_bytes, config.body_ms).await {
        Ok(body) => body,
        Err(refusal) => {
            let outcome = match refusal.status {
                413 => "too_large",
                408 => "body_timeout",
                _ => "bad_request",
            };
            return refuse(outcome, &refusal, &cors);
        }
    };
    let chat = match parse_chat_request(&body, config) {
        Ok(chat) => chat,
        Err(refusal) => return refuse("bad_request", &refusal, &cors),
    };

    // The guard's options: the configured chain, keys looked up by name, the client's messages.
    // Every key (and the client's own token) is taken out of anything relayed to the client.
    let mut secrets: Vec<String> = authorization
        .as_deref()
        .and_then(bearer_token)
        .map(str::to_owned)
        .into_iter()
        .collect();
    let providers: Vec<Value> = config
        .chain_for(chat.model.as_deref())
        .into_iter()
        .map(|p| {
            let mut provider = json!({"name": p.name, "url": p.url, "model": p.model});
            if let Some(key) = p
                .api_key_env
                .as_deref()
                .and_then(|name| get(&env, name).as_string())
            {
                secrets.push(key.clone());
                provider["apiKey"] = Value::String(key);
            }
            if let Some(headers) = &p.headers {
                provider["headers"] = Value::Object(headers.clone());
            }
            if let Some(timeouts) = &p.timeouts {
                provider["timeouts"] = Value::Object(timeouts.clone());
            }
            if let Some(retries) = p.max_retries {
                provider["maxRetries"] = json!(retries);
            }
            provider
        })
        .collect();
    let options_json = json!({
        "providers": providers,
        "messages": chat.messages,
        "params": chat.params,
        "stream": chat.stream,
        "timeouts": config.timeouts,
        "retry": config.retry,
    });
    let Ok(options) = JSON::parse(&options_json.to_string()) else {
        let refusal = Refusal::new(
            500,
            "server_error",
            "internal",
            "could not build the request",
        );
        return refuse("internal", &refusal, &cors);
    };
    let retry_after_ms = Rc::new(RefCell::new(Vec::new()));
    let fetch = watching_fetch(retry_after_ms.clone());
    let _ = Reflect::set(&options, &"fetch".into(), fetch.as_ref());
    let ending = Ending {
        secrets: Rc::new(secrets),
        retry_after_ms,
        cors,
    };

    let id = format!(
        "chatcmpl-lsg-{:012x}",
        (js_sys::Math::random() * 2f64.powi(48)) as u64
    );
    let created = (now() / 1000.0) as u64;
    let model = chat
        .model
        .clone()
        .unwrap_or_else(|| config.providers[0].model.clone());
    let (commit_tx, commit_rx) = oneshot::channel::<()>();
    let downstream = Rc::new(RefCell::new(Downstream {
        controller: None,
        pending: String::new(),
        writer: ChunkWriter::new(id.clone(), created, model.clone()),
        client_gone: false,
        committed: false,
        last_write: now(),
        last_byte: now(),
        outbox: String::new(),
        commit: Some(commit_tx),
    }));

    let on_text = {
        let downstream = downstream.clone();
        Closure::<dyn FnMut(String)>::new(move |delta: String| {
            let chunk = downstream.borrow_mut().writer.text(&delta);
            queue(&downstream, &chunk);
        })
    };
    // Clients that ask (`X-LSG-Events: 1`) also get the guard's events as `event: guard`,
    // each stamped with `atMs`: when it happened, in milliseconds on the worker's clock since
    // the worker took this request up, so a client can place it on its own timeline at the
    // time it happened rather than when it arrived. What an upstream sent as its own guard
    // events goes out under another name; keys are taken out of all of it (the core decides).
    let relay_events =
        chat.stream && header(&request, "x-lsg-events").is_some_and(|v| v.trim() == "1");
    let began = now();
    let on_event = {
        let downstream = downstream.clone();
        let secrets = ending.secrets.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let kind = get(&event, "type").as_string().unwrap_or_default();
            if relay_events {
                let at_ms = JsValue::from_f64((now() - began).max(0.0));
                let _ = Reflect::set(&event, &"atMs".into(), &at_ms);
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                if let Some(text) = JSON::stringify(&event)
                    .ok()
                    .and_then(|s| s.as_string())
                    .and_then(|json| relayed_event(&kind, &json, &secrets))
                {
                    queue(&downstream, &text);
                }
            }
            match kind.as_str() {
                "request-start" => {
                    if let Some(model) = get(&event, "model").as_string() {
                        downstream.borrow_mut().writer.set_model(&model);
                    }
                }
                "headers" => {
                    let status = get(&event, "status").as_f64().unwrap_or(0.0);
                    if (200.0..300.0).contains(&status) {
                        if let Some(commit) = downstream.borrow_mut().commit.take() {
                            let _ = commit.send(());
                        }
                    }
                }
                "first-token" => {
                    let ms = get(&event, "firstTokenMs").as_f64().unwrap_or(0.0);
                    metrics(|m| m.first_token(ms));
                }
                "retry" => metrics(Metrics::retry),
                "failover" => metrics(Metrics::failover),
                "timeout" => {
                    let layer = get(&event, "layer").as_string().unwrap_or_default();
                    let phase = get(&event, "phase").as_string().unwrap_or_default();
                    metrics(|m| m.timeout(&layer, &phase));
                }
                _ => {}
            }
        })
    };
    let _ = Reflect::set(&options, &"onText".into(), on_text.as_ref());
    let _ = Reflect::set(&options, &"onEvent".into(), on_event.as_ref());

    // Client disconnect: the response stream's cancel, or the request's own signal.
    let cancel = AbortController::new().expect("AbortController exists");
    let request_signal = get(&request, "signal");
    let request_listener = request_signal
        .dyn_ref::<web_sys::EventTarget>()
        .filter(|_| request_signal.is_object())
        .map(|target| {
            let (cancel, downstream) = (cancel.clone(), downstream.clone());
            Listener::new(target, "abort", move |_| {
                downstream.borrow_mut().client_gone = true;
                cancel.abort_with_reason(&"client-disconnect".into());
            })
        });

    let (done_tx, done_rx) = oneshot::channel::<Result<JsValue, JsValue>>();
    let generation = run_generation(options, Some(cancel.signal()));
    spawn_local(async move {
        let result = generation.await;
        let _ = done_tx.send(result);
    });
    let mut done = done_rx.fuse();

    if !chat.stream {
        let result = (&mut done)
            .await
            .unwrap_or_else(|_| Err(JsValue::UNDEFINED));
        drop((on_text, on_event, fetch));
        return finish_json(result, &id, created, &model, &ending);
    }

    // Hold the status until an upstream answers 2xx, the first heartbeat is due, or it is over.
    let wait = select(commit_rx, Sleep::new(config.heartbeat_ms));
    let early = match select(&mut done, wait).await {
        Either::Left((result, _)) => Some(result.unwrap_or_else(|_| Err(JsValue::UNDEFINED))),
        Either::Right(_) => None,
    };
    if let Some(Err(error)) = &early {
        // Nothing was sent yet: a real status and a JSON error.
        drop((on_text, on_event, fetch));
        return ending.failure_response(error);
    }

    let start = {
        let downstream = downstream.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |controller: JsValue| {
            downstream.borrow_mut().controller = Some(controller);
        })
    };
    let on_cancel = {
        let (downstream, cancel) = (downstream.clone(), cancel.clone());
        Closure::<dyn FnMut(JsValue)>::new(move |_reason: JsValue| {
            downstream.borrow_mut().client_gone = true;
            cancel.abort_with_reason(&"client-disconnect".into());
        })
    };
    let source = Object::new();
    let _ = Reflect::set(&source, &"start".into(), start.as_ref());
    let _ = Reflect::set(&source, &"cancel".into(), on_cancel.as_ref());
    let stream_constructor = get(&js_sys::global(), "ReadableStream").unchecked_into::<Function>();
    let stream =
        Reflect::construct(&stream_constructor, &Array::of1(&source)).unwrap_or(JsValue::NULL);
    {
        let mut d = downstream.borrow_mut();
        d.committed = true;
        let pending = std::mem::take(&mut d.pending);
        if early.is_none() && pending.is_empty() {
            d.write(": heartbeat\n\n");
        } else {
            d.write(&pending);
        }
        d.flush();
    }
    metrics(|m| m.active_streams(1));

    let (heartbeat_ms, probe_ms) = (config.heartbeat_ms, config.probe_ms);
    let cors = ending.cors.clone();
    let downstream_task = downstream.clone();
    spawn_local(async move {
        let result = match early {
            Some(result) => result,
            None => loop {
                let wait = {
                    let d = downstream_task.borrow();
                    let heartbeat_in = heartbeat_ms - (now() - d.last_write);
                    let probe_in = if probe_ms > 0.0 {
                        probe_ms - (now() - d.last_byte)
                    } else {
                        f64::INFINITY
                    };
                    heartbeat_in.min(probe_in).max(1.0)
                };
                match select(&mut done, Sleep::new(wait)).await {
                    Either::Left((result, _)) => {
                        break result.unwrap_or_else(|_| Err(JsValue::UNDEFINED))
                    }
                    Either::Right(_) => {
                        let mut d = downstream_task.borrow_mut();
                        if now() - d.last_write >= heartbeat_ms - 1.0 {
                            d.write(": heartbeat\n\n");
                            d.flush();
                        } else if probe_ms > 0.0 && now() - d.last_byte >= probe_ms - 1.0 {
                            d.probe();
                        }
                    }
                }
            },
        };
        let mut d = downstream_task.borrow_mut();
        let outcome = finish_stream(&mut d, &result, &ending);
        d.flush();
        metrics(|m| {
            m.request(&outcome);
            m.active_streams(-1);
            if outcome == "cancelled" {
                m.cancellation();
            }
        });
        if !d.client_gone {
            if let Some(controller) = &d.controller {
                if let Ok(close) = get(controller, "close").dyn_into::<Function>() {
                    let _ = close.call0(controller);
                }
            }
        }
        drop(d);
        // The callbacks live until the stream is over.
        drop((on_text, on_event, fetch, start, on_cancel, request_listener));
    });

    let mut headers = vec![
        (
            "content-type",
            "text/event-stream; charset=utf-8".to_owned(),
        ),
        ("cache-control", "no-cache".to_owned()),
        ("x-request-id", id),
    ];
    headers.extend(cors.iter().cloned());
    response(&stream, 200, &headers)
}

/// What a generation's end needs: the secrets to take out of messages, the `Retry-After`s of
/// the 429s seen, and the CORS headers.
struct Ending {
    secrets: Rc<Vec<String>>,
    retry_after_ms: Rc<RefCell<Vec<f64>>>,
    cors: Vec<(&'static str, String)>,
}

/// A `GuardError`'s `kind`, `status`, `message` and `attempts`.
struct Failed {
    kind: String,
    status: Option<u16>,
    message: String,
    tried: Vec<Tried>,
}

impl Failed {
    fn of(error: &JsValue) -> Failed {
        let attempts = get(error, "attempts");
        let tried = if Array::is_array(&attempts) {
            Array::from(&attempts)
                .iter()
                .map(|attempt| Tried {
                    provider: get(&attempt, "provider").as_string().unwrap_or_default(),
                    outcome: get(&attempt, "outcome").as_string().unwrap_or_default(),
                    status: get(&attempt, "status").as_f64().map(|s| s as u16),
                })
                .collect()
        } else {
            Vec::new()
        };
        Failed {
            kind: get(error, "kind")
                .as_string()
                .unwrap_or_else(|| "network".into()),
            status: get(error, "status").as_f64().map(|s| s as u16),
            message: get(error, "message")
                .as_string()
                .unwrap_or_else(|| "the generation failed".into()),
            tried,
        }
    }
}

impl Ending {
    fn secrets(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }

    /// The answer to a generation that failed before anything was sent. A `config` failure
    /// (options the worker built from its configuration were refused) is logged, and the
    /// client gets the generic 500.
    fn failure_response(&self, error: &JsValue) -> JsValue {
        let failed = Failed::of(error);
        let secrets = self.secrets();
        metrics(|m| {
            m.request(if failed.kind == "aborted" {
                "cancelled"
            } else {
                &failed.kind
            });
            if failed.kind == "aborted" {
                m.cancellation();
            }
        });
        if failed.kind == "config" {
            log_refused_configuration(&failed.message, &secrets);
        }
        let retry_after_ms = self.retry_after_ms.borrow();
        let refusal = final_failure(
            &failed.kind,
            failed.status,
            &failed.message,
            &failed.tried,
            &retry_after_ms,
            &secrets,
        )
        // Cancelled: the client is gone, and nobody reads this answer.
        .unwrap_or_else(|| Refusal::new(499, "cancelled", "aborted", "cancelled"));
        refusal_response(&refusal, &self.cors)
    }
}

/// Logs why the guard refused the options built from the configuration (a `config` failure).
fn log_refused_configuration(message: &str, secrets: &[&str]) {
    log_error(&format!(
        "the configuration was refused by the guard: {}",
        redact(message, secrets)
    ));
}

/// Write the end of a streamed answer; returns the outcome label for the metrics.
fn finish_stream(d: &mut Downstream, result: &Result<JsValue, JsValue>, ending: &Ending) -> String {
    let secrets = ending.secrets();
    match result {
        Ok(answer) => {
            let usage = JSON::stringify(&get(answer, "usage"))
                .ok()
                .and_then(|s| s.as_string())
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .filter(Value::is_object);
            if get(answer, "partial").as_bool() == Some(true) {
                let cause = get(answer, "cause");
                let kind = get(&cause, "kind").as_string().unwrap_or_default();
                let message = redact(
                    &get(&cause, "message").as_string().unwrap_or_default(),
                    &secrets,
                );
                let (status, _) = failure_status(&kind, None);
                let tail = d.writer.error(status, &kind, &message);
                d.write(&tail);
                "partial".into()
            } else {
                let reason = get(answer, "finishReason")
                    .as_string()
                    .unwrap_or_else(|| "stop".into());
                let tail = d.writer.finish(&reason, usage.as_ref());
                d.write(&tail);
                "complete".into()
            }
        }
        Err(error) => {
            let failed = Failed::of(error);
            if failed.kind == "aborted" {
                return "cancelled".into();
            }
            let (code, _) = failure_status(&failed.kind, failed.status);
            let message = if failed.kind == "config" {
                // As before the status: the details are for the log, not the client.
                log_refused_configuration(&failed.message, &secrets);
                misconfigured().message
            } else {
                failure_message(&failed.message, &failed.tried, &secrets)
            };
            let tail = d.writer.error(code, &failed.kind, &message);
            d.write(&tail);
            failed.kind
        }
    }
}

fn finish_json(
    result: Result<JsValue, JsValue>,
    id: &str,
    created: u64,
    model: &str,
    ending: &Ending,
) -> JsValue {
    match result {
        Ok(answer) => {
            let partial = get(&answer, "partial").as_bool() == Some(true);
            metrics(|m| m.request(if partial { "partial" } else { "complete" }));
            let text = get(&answer, "text").as_string().unwrap_or_default();
            let answered_model = get(&answer, "model")
                .as_string()
                .unwrap_or_else(|| model.to_owned());
            let finish = if partial {
                "error".to_owned()
            } else {
                get(&answer, "finishReason")
                    .as_string()
                    .unwrap_or_else(|| "stop".into())
            };
            let usage = JSON::stringify(&get(&answer, "usage"))
                .ok()
                .and_then(|s| s.as_string())
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .filter(Value::is_object);
            let body =
                completion_body(id, created, &answered_model, &text, &finish, usage.as_ref());
            let mut headers = vec![
                ("content-type", "application/json".to_owned()),
                ("x-request-id", id.to_owned()),
            ];
            headers.extend(ending.cors.iter().cloned());
            response(&JsValue::from_str(&body), 200, &headers)
        }
        Err(error) => ending.failure_response(&error),
    }
}
