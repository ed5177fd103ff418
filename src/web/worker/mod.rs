//! The edge worker's request handling (`handleRequest(request, env, ctx)`), for workerd and
//! Cloudflare Workers: an OpenAI-compatible, guarded proxy.
//!
//! Every decision (configuration, routes, access, request checks, provider order, statuses,
//! every byte written, metrics) is the core's ([`crate::core::proxy`], the call machine's relaying
//! mode in [`crate::core::relay`], [`crate::core::metrics`]); this module moves requests, bodies and
//! timers, and [`chat`] hands one request to `guardFetch()`'s driver. No client ever sees a configuration problem's details: the configuration
//! is read once per isolate (on its first request: a module worker gets `env` only with a
//! request), each problem is logged to the console naming its variable, and clients get a
//! generic 500.

mod chat;
mod shared;

use crate::core::metrics::Metrics;
use crate::core::proxy::{
    body_timeout_refusal, check_content_length, misconfigured, route, route_refusal,
    too_large_refusal, Api, ConfigError, ProxyConfig, Refusal, Route,
};
use crate::web::executor::{future_to_promise, spawn_local};
use crate::web::resources::Sleep;
use crate::web::transport::ReadResult;
use futures::future::{select, Either, FutureExt};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

thread_local! {
    static METRICS: RefCell<Metrics> = RefCell::new(Metrics::default());
    /// The configuration, read on the isolate's first request.
    static CONFIG: RefCell<Option<Rc<Result<ProxyConfig, ConfigError>>>> =
        const { RefCell::new(None) };
}

fn metrics(update: impl FnOnce(&mut Metrics)) {
    METRICS.with(|m| update(&mut m.borrow_mut()));
}

use crate::web::objects::get_named as get;

/// A header of a request or a response.
fn header(message: &JsValue, name: &str) -> Option<String> {
    let headers = get(message, "headers");
    let get_fn = get(&headers, "get").dyn_into::<Function>().ok()?;
    get_fn
        .call1(&headers, &JsValue::from_str(name))
        .ok()?
        .as_string()
}

/// A line for the operator (the worker's console log), never for a client.
fn log_error(line: &str) {
    web_sys::console::error_1(&JsValue::from_str(&format!(
        "llm-stream-guard worker: {line}"
    )));
}

/// The configuration, read from `env` once per isolate; its problem (or a provider key variable
/// that is not set) is logged once, when it is read.
fn config(env: &JsValue) -> Rc<Result<ProxyConfig, ConfigError>> {
    if let Some(config) = CONFIG.with(|c| c.borrow().clone()) {
        return config;
    }
    let read = |name: &str| get(env, name).as_string();
    let config = ProxyConfig::from_env(read).and_then(|config| match config.missing_key(read) {
        Some(problem) => Err(problem),
        None => Ok(config),
    });
    if let Err(problem) = &config {
        log_error(&format!(
            "configuration error, every API request is answered 500 until it is fixed: {problem}"
        ));
    }
    let config = Rc::new(config);
    CONFIG.with(|c| *c.borrow_mut() = Some(config.clone()));
    config
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

/// A JSON body with these headers and the CORS ones.
fn json_response(status: u16, body: &str, headers: &[(&str, String)]) -> JsValue {
    let mut all = vec![("content-type", "application/json".to_owned())];
    all.extend(headers.iter().cloned());
    response(&JsValue::from_str(body), status, &all)
}

/// A refusal's status, JSON error and headers, plus the CORS headers.
fn refusal_response(refusal: &Refusal, cors: &[(&'static str, String)]) -> JsValue {
    let mut headers = refusal.headers.clone();
    headers.extend(cors.iter().cloned());
    json_response(refusal.status, &refusal.body(), &headers)
}

/// The worker's entry point: `handleRequest(request, env, ctx)` → `Promise<Response>`.
#[wasm_bindgen(js_name = handleRequest, skip_typescript)]
pub fn handle_request(request: JsValue, env: JsValue, ctx: JsValue) -> Promise {
    future_to_promise(async move { Ok(handle(request, env, ctx).await) })
}

fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("/", |at| &after_scheme[at..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

async fn handle(request: JsValue, env: JsValue, ctx: JsValue) -> JsValue {
    let url = get(&request, "url").as_string().unwrap_or_default();
    let method = get(&request, "method").as_string().unwrap_or_default();
    let path = path_of(&url).to_owned();
    let origin = header(&request, "origin");
    let route = route(&method, &path, env_has_assets(&env));

    match route {
        // Liveness needs no configuration: a misconfigured worker still answers, and says why
        // in its log.
        Route::Health => response(&"ok".into(), 200, &[("content-type", "text/plain".into())]),
        Route::Metrics => {
            chat::refresh_guard(&env, &ctx);
            let text = METRICS.with(|m| m.borrow().render()) + &chat::guard_metrics();
            response(
                &text.into(),
                200,
                &[("content-type", "text/plain; version=0.0.4".into())],
            )
        }
        Route::Asset => {
            // Static files (the demo page), when an `ASSETS` service binding is configured.
            serve_asset(&env, &url, &path).await.unwrap_or_else(|| {
                refusal_response(
                    &Refusal::new(502, "server_error", "assets", "the assets service failed"),
                    &[],
                )
            })
        }
        Route::Preflight | Route::Chat | Route::Responses | Route::Messages => {
            let config = config(&env);
            let Ok(config) = config.as_ref() else {
                metrics(|m| m.request("misconfigured"));
                return refusal_response(&misconfigured(), &[]);
            };
            if route == Route::Chat {
                chat::chat(request, env, ctx, config, origin, Api::Chat).await
            } else if route == Route::Responses {
                chat::chat(request, env, ctx, config, origin, Api::Responses).await
            } else if route == Route::Messages {
                chat::chat(request, env, ctx, config, origin, Api::Messages).await
            } else {
                let requested = header(&request, "access-control-request-headers");
                match config.preflight(origin.as_deref(), requested.as_deref()) {
                    Ok(headers) => response(&JsValue::NULL, 204, &headers),
                    Err(refusal) => refusal_response(&refusal, &[]),
                }
            }
        }
        Route::MethodNotAllowed { .. } | Route::NotFound => {
            let cors = match config(&env).as_ref() {
                Ok(config) => config.cors_headers(origin.as_deref()),
                Err(_) => Vec::new(),
            };
            match route_refusal(route, &method, &path) {
                Some(refusal) => refusal_response(&refusal, &cors),
                None => refusal_response(&misconfigured(), &cors),
            }
        }
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

/// Calls `reader.cancel()` and waits for nothing: the promise it returns gets a handler, so its
/// rejection (a body that errored already) is never unhandled.
fn cancel_reader(reader: &JsValue) {
    if let Ok(cancel) = get(reader, "cancel").dyn_into::<Function>() {
        if let Ok(promise) = cancel.call0(reader) {
            spawn_local(async move {
                let _ = JsFuture::from(Promise::resolve(&promise)).await;
            });
        }
    }
}

/// Read the request body as UTF-8: a declared `Content-Length` over `limit` is refused before a
/// byte is read (413), a body that grows past it while read too, and a body that has not
/// arrived whole within `deadline_ms` is cut off (408; the reader is cancelled).
async fn read_body(request: &JsValue, limit: usize, deadline_ms: f64) -> Result<String, Refusal> {
    check_content_length(header(request, "content-length").as_deref(), limit)?;
    let body = get(request, "body");
    if body.is_null() || body.is_undefined() {
        return Ok(String::new());
    }
    let unreadable = || {
        Refusal::new(
            400,
            "invalid_request_error",
            "invalid_body",
            "the request body could not be read",
        )
    };
    let reader = get(&body, "getReader")
        .dyn_into::<Function>()
        .ok()
        .and_then(|f| f.call0(&body).ok())
        .ok_or_else(unreadable)?;
    let read = get(&reader, "read")
        .dyn_into::<Function>()
        .map_err(|_| unreadable())?;
    let reading = {
        let reader = reader.clone();
        async move {
            let mut bytes = Vec::new();
            loop {
                let promise = read.call0(&reader).map_err(|_| unreadable())?;
                let chunk = JsFuture::from(Promise::resolve(&promise))
                    .await
                    .map_err(|_| unreadable())?;
                let chunk = chunk.unchecked_into::<ReadResult>();
                if chunk.ended(true) {
                    return Ok(bytes);
                }
                if let Some(value) = chunk.value().dyn_ref::<Uint8Array>() {
                    if bytes.len() + value.length() as usize > limit {
                        cancel_reader(&reader);
                        return Err(too_large_refusal(limit));
                    }
                    bytes.extend(value.to_vec());
                }
            }
        }
    };
    let bytes = match select(reading.boxed_local(), Sleep::new(deadline_ms)).await {
        Either::Left((read, _)) => read?,
        Either::Right(_) => {
            cancel_reader(&reader);
            return Err(body_timeout_refusal(deadline_ms));
        }
    };
    String::from_utf8(bytes).map_err(|_| {
        Refusal::new(
            400,
            "invalid_request_error",
            "invalid_body",
            "the request body could not be read as UTF-8",
        )
    })
}
