//! The edge worker's request handling (`handleRequest(request, env, ctx)`), for workerd and
//! Cloudflare Workers: an OpenAI-compatible, guarded proxy.
//!
//! Every decision (configuration, access, request checks, provider order, statuses, the bytes
//! of each chunk, metrics) is the core's ([`crate::core::proxy`], [`crate::core::metrics`]);
//! this module moves requests, bodies and timers. The HTTP status is held until an upstream
//! answers with 2xx headers or the first heartbeat is due: a failure before that gets a real
//! status and a JSON error; after it, a final error chunk and `[DONE]`. When the client goes
//! away (the response stream is cancelled, or the request's signal aborts), the generation is
//! cancelled and its upstream connection released.

use crate::core::events::redact;
use crate::core::metrics::Metrics;
use crate::core::proxy::{
    completion_body, error_body, failure_status, parse_chat_request, Access, ChunkWriter,
    ProxyConfig,
};
use crate::web::generate::run_generation;
use crate::web::resources::{Listener, Sleep};
use crate::web::transport::ReadResult;
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

thread_local! {
    static METRICS: RefCell<Metrics> = RefCell::new(Metrics::default());
}

fn metrics(update: impl FnOnce(&mut Metrics)) {
    METRICS.with(|m| update(&mut m.borrow_mut()));
}

fn get(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn header(request: &JsValue, name: &str) -> Option<String> {
    let headers = get(request, "headers");
    let get_fn = get(&headers, "get").dyn_into::<Function>().ok()?;
    get_fn
        .call1(&headers, &JsValue::from_str(name))
        .ok()?
        .as_string()
}

fn now() -> f64 {
    js_sys::Date::now()
}

/// `new Response(body, { status, headers })`.
fn response(body: &JsValue, status: u16, headers: &[(&str, String)]) -> JsValue {
    let init = Object::new();
    let _ = Reflect::set(&init, &"status".into(), &JsValue::from(status));
    let header_object = Object::new();
    for (key, value) in headers {
        let _ = Reflect::set(
            &header_object,
            &JsValue::from_str(key),
            &JsValue::from_str(value),
        );
    }
    let _ = Reflect::set(&init, &"headers".into(), &header_object);
    let constructor = get(&js_sys::global(), "Response").unchecked_into::<Function>();
    Reflect::construct(&constructor, &Array::of2(body, &init)).unwrap_or(JsValue::UNDEFINED)
}

fn json_response(status: u16, body: &str, cors: &[(&str, String)]) -> JsValue {
    let mut headers = vec![("content-type", "application/json".to_owned())];
    headers.extend(cors.iter().cloned());
    response(&JsValue::from_str(body), status, &headers)
}

/// CORS headers for an allowed origin (none otherwise).
fn cors_headers(config: Option<&ProxyConfig>, origin: Option<&str>) -> Vec<(&'static str, String)> {
    match (config, origin) {
        (Some(config), Some(origin)) if config.origin_allowed(origin) => vec![
            ("access-control-allow-origin", origin.to_owned()),
            ("vary", "Origin".to_owned()),
            ("access-control-expose-headers", "x-request-id".to_owned()),
        ],
        _ => Vec::new(),
    }
}

/// The worker's entry point: `handleRequest(request, env, ctx)` → `Promise<Response>`.
#[wasm_bindgen(js_name = handleRequest, skip_typescript)]
pub fn handle_request(request: JsValue, env: JsValue, _ctx: JsValue) -> Promise {
    future_to_promise(async move { Ok(handle(request, env).await) })
}

fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |at| &after_scheme[at..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

async fn handle(request: JsValue, env: JsValue) -> JsValue {
    let url = get(&request, "url").as_string().unwrap_or_default();
    let method = get(&request, "method").as_string().unwrap_or_default();
    let path = path_of(&url).to_owned();
    let origin = header(&request, "origin");
    let config = ProxyConfig::from_env(|name| get(&env, name).as_string());
    let cors = cors_headers(config.as_ref().ok(), origin.as_deref());

    match (method.as_str(), path.as_str()) {
        ("GET", "/healthz") => {
            response(&"ok".into(), 200, &[("content-type", "text/plain".into())])
        }
        ("GET", "/metrics") => {
            let text = METRICS.with(|m| m.borrow().render());
            response(
                &text.into(),
                200,
                &[("content-type", "text/plain; version=0.0.4".into())],
            )
        }
        ("OPTIONS", _) => {
            if cors.is_empty() {
                return response(&JsValue::NULL, 403, &[]);
            }
            let mut headers = cors;
            headers.push(("access-control-allow-methods", "POST, GET, OPTIONS".into()));
            headers.push((
                "access-control-allow-headers",
                "authorization, content-type, accept".into(),
            ));
            headers.push(("access-control-max-age", "600".into()));
            response(&JsValue::NULL, 204, &headers)
        }
        ("POST", "/v1/chat/completions") => match config {
            Ok(config) => chat(request, env, config, origin, cors).await,
            Err(problem) => {
                metrics(|m| m.request("misconfigured"));
                json_response(
                    500,
                    &error_body(
                        &format!("worker misconfigured: {problem}"),
                        "server_error",
                        "misconfigured",
                    ),
                    &cors,
                )
            }
        },
        ("GET" | "HEAD", _) if env_has_assets(&env) => {
            // Static files (the demo page), when an `ASSETS` service binding is configured.
            serve_asset(&env, &url, &path).await.unwrap_or_else(|| {
                json_response(
                    502,
                    &error_body("the assets service failed", "server_error", "assets"),
                    &cors,
                )
            })
        }
        _ => json_response(
            404,
            &error_body(
                &format!("no route for {method} {path}"),
                "invalid_request_error",
                "not_found",
            ),
            &cors,
        ),
    }
}

/// A static file from the `ASSETS` service (`/` means `/index.html`), with its content type
/// set from the extension (so `.wasm` streams with `application/wasm`).
async fn serve_asset(env: &JsValue, url: &str, path: &str) -> Option<JsValue> {
    let assets = get(env, "ASSETS");
    let fetch = get(&assets, "fetch").dyn_into::<Function>().ok()?;
    let (url, path) = if path.ends_with('/') {
        let base = url.split(['?', '#']).next().unwrap_or(url);
        (format!("{base}index.html"), format!("{path}index.html"))
    } else {
        (url.to_owned(), path.to_owned())
    };
    let promise = fetch.call1(&assets, &JsValue::from_str(&url)).ok()?;
    let answer = JsFuture::from(Promise::resolve(&promise)).await.ok()?;
    let status = get(&answer, "status").as_f64().unwrap_or(500.0) as u16;
    let content_type = match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => return Some(answer),
    };
    let headers = [
        ("content-type", content_type.to_owned()),
        ("cache-control", "no-cache".to_owned()),
    ];
    Some(response(&get(&answer, "body"), status, &headers))
}

fn env_has_assets(env: &JsValue) -> bool {
    get(&get(env, "ASSETS"), "fetch").is_function()
}

/// Read the request body, refusing more than `limit` bytes.
async fn read_body(request: &JsValue, limit: usize) -> Result<String, &'static str> {
    if let Some(length) =
        header(request, "content-length").and_then(|v| v.trim().parse::<usize>().ok())
    {
        if length > limit {
            return Err("too_large");
        }
        // A declared length within the limit: one `arrayBuffer()` instead of a read per chunk
        // (the runtime enforces the declared length).
        if let Ok(array_buffer) = get(request, "arrayBuffer").dyn_into::<Function>() {
            let promise = array_buffer.call0(request).map_err(|_| "unreadable")?;
            let buffer = JsFuture::from(Promise::resolve(&promise))
                .await
                .map_err(|_| "unreadable")?;
            let bytes = Uint8Array::new(&buffer).to_vec();
            if bytes.len() > limit {
                return Err("too_large");
            }
            return String::from_utf8(bytes).map_err(|_| "not_utf8");
        }
    }
    let body = get(request, "body");
    if body.is_null() || body.is_undefined() {
        return Ok(String::new());
    }
    let reader = get(&body, "getReader")
        .dyn_into::<Function>()
        .ok()
        .and_then(|f| f.call0(&body).ok())
        .ok_or("unreadable")?;
    let read = get(&reader, "read")
        .dyn_into::<Function>()
        .map_err(|_| "unreadable")?;
    let mut bytes = Vec::new();
    loop {
        let promise = read.call0(&reader).map_err(|_| "unreadable")?;
        let chunk = JsFuture::from(Promise::resolve(&promise))
            .await
            .map_err(|_| "unreadable")?;
        let chunk = chunk.unchecked_into::<ReadResult>();
        if chunk.ended(true) {
            break;
        }
        if let Some(value) = chunk.value().dyn_ref::<Uint8Array>() {
            if bytes.len() + value.length() as usize > limit {
                if let Ok(cancel) = get(&reader, "cancel").dyn_into::<Function>() {
                    let _ = cancel.call0(&reader);
                }
                return Err("too_large");
            }
            bytes.extend(value.to_vec());
        }
    }
    String::from_utf8(bytes).map_err(|_| "not_utf8")
}

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

async fn chat(
    request: JsValue,
    env: JsValue,
    config: ProxyConfig,
    origin: Option<String>,
    cors: Vec<(&'static str, String)>,
) -> JsValue {
    let authorization = header(&request, "authorization");
    if config.authorize(authorization.as_deref(), origin.as_deref()) == Access::Denied {
        metrics(|m| m.request("unauthorized"));
        let body = error_body(
            "a client token (Authorization: Bearer …) or an allowed Origin is required",
            "authentication_error",
            "unauthorized",
        );
        return json_response(401, &body, &cors);
    }
    let body = match read_body(&request, config.max_body_bytes).await {
        Ok(body) => body,
        Err("too_large") => {
            metrics(|m| m.request("too_large"));
            let message = format!(
                "the request body is larger than {} bytes",
                config.max_body_bytes
            );
            return json_response(
                413,
                &error_body(&message, "invalid_request_error", "body_too_large"),
                &cors,
            );
        }
        Err(_) => {
            metrics(|m| m.request("bad_request"));
            return json_response(
                400,
                &error_body(
                    "the request body could not be read as UTF-8",
                    "invalid_request_error",
                    "invalid_body",
                ),
                &cors,
            );
        }
    };
    let chat = match parse_chat_request(&body, &config) {
        Ok(chat) => chat,
        Err(refusal) => {
            metrics(|m| m.request("bad_request"));
            return json_response(refusal.status, &refusal.body(), &cors);
        }
    };

    // The guard's options: the configured chain, keys looked up by name, the client's messages.
    let mut secrets = Vec::new();
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
        return json_response(
            500,
            &error_body("could not build the request", "server_error", "internal"),
            &cors,
        );
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
    // time it happened rather than when it arrived.
    let relay_events =
        chat.stream && header(&request, "x-lsg-events").is_some_and(|v| v.trim() == "1");
    let began = now();
    let on_event = {
        let downstream = downstream.clone();
        Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            let kind = get(&event, "type").as_string().unwrap_or_default();
            if relay_events {
                let at_ms = JsValue::from_f64((now() - began).max(0.0));
                let _ = Reflect::set(&event, &"atMs".into(), &at_ms);
                if let Some(json) = JSON::stringify(&event).ok().and_then(|s| s.as_string()) {
                    queue(&downstream, &format!("event: guard\ndata: {json}\n\n"));
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
        drop((on_text, on_event));
        return finish_json(result, &id, created, &model, &secrets, &cors);
    }

    // Hold the status until an upstream answers 2xx, the first heartbeat is due, or it is over.
    let wait = select(commit_rx, Sleep::new(config.heartbeat_ms));
    let early = match select(&mut done, wait).await {
        Either::Left((result, _)) => Some(result.unwrap_or_else(|_| Err(JsValue::UNDEFINED))),
        Either::Right(_) => None,
    };
    if let Some(Err(error)) = &early {
        // Nothing was sent yet: a real status and a JSON error.
        drop((on_text, on_event));
        return finish_error_status(error, &secrets, &cors);
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
        let outcome = finish_stream(&mut d, &result, &secrets);
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
        drop((on_text, on_event, start, on_cancel, request_listener));
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

/// Write the end of a streamed answer; returns the outcome label for the metrics.
fn finish_stream(
    d: &mut Downstream,
    result: &Result<JsValue, JsValue>,
    secrets: &[String],
) -> String {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
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
            let kind = get(error, "kind")
                .as_string()
                .unwrap_or_else(|| "network".into());
            if kind == "aborted" {
                return "cancelled".into();
            }
            let status = get(error, "status").as_f64().map(|s| s as u16);
            let message = redact(
                &get(error, "message").as_string().unwrap_or_default(),
                &secrets,
            );
            let (code, _) = failure_status(&kind, status);
            let tail = d.writer.error(code, &kind, &message);
            d.write(&tail);
            kind
        }
    }
}

fn finish_error_status(
    error: &JsValue,
    secrets: &[String],
    cors: &[(&'static str, String)],
) -> JsValue {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let kind = get(error, "kind")
        .as_string()
        .unwrap_or_else(|| "network".into());
    let status = get(error, "status").as_f64().map(|s| s as u16);
    let (code, error_type) = failure_status(&kind, status);
    let message = redact(
        &get(error, "message")
            .as_string()
            .unwrap_or_else(|| "the generation failed".into()),
        &secrets,
    );
    metrics(|m| {
        m.request(if kind == "aborted" {
            "cancelled"
        } else {
            &kind
        });
        if kind == "aborted" {
            m.cancellation();
        }
    });
    json_response(code, &error_body(&message, error_type, &kind), cors)
}

fn finish_json(
    result: Result<JsValue, JsValue>,
    id: &str,
    created: u64,
    model: &str,
    secrets: &[String],
    cors: &[(&'static str, String)],
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
            let mut headers = vec![("content-type", "application/json".to_owned())];
            headers.extend(cors.iter().cloned());
            response(&JsValue::from_str(&body), 200, &headers)
        }
        Err(error) => finish_error_status(&error, secrets, cors),
    }
}
