//! The HTTP layer: routing, CORS, the ledger endpoint and the chat endpoint that plays scenarios.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use axum::Router;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::upgrade::OnUpgrade;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::conn::ConnShared;
use crate::control::Controls;
use crate::ledger::{now_ms, ActiveGuard, ClosedBy, ConnectionRecord, Filter, Ledger};
use crate::scenarios::{self, Api, ChatRequest, Params, Plan, Reply, Step, Tail, SCENARIOS};
use crate::ws::{self, WsParams};

/// Largest request body read (bigger bodies get 413).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Longest long-poll wait honoured by `GET /_ledger?wait_closed_ms=N`.
const MAX_WAIT_MS: u64 = 60_000;
/// Headers whose values are never stored in the ledger.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
];
/// Allowed request headers when a preflight does not list any.
const DEFAULT_ALLOW_HEADERS: &str =
    "authorization, content-type, accept, http-referer, x-openrouter-title, x-title";

/// Connection state handed from the accept loop to the handler through request extensions.
#[derive(Clone)]
pub(crate) struct ConnHandle(pub Arc<ConnShared>);

/// The application: every route of the mock, recording into `ledger`.
///
/// Requests that arrive through [`crate::serve`] carry their connection's state; requests driven
/// in-process (e.g. with `tower::ServiceExt::oneshot`) get a ledger record with peer
/// `in-process`, closed when the response body is finished (`server`) or dropped (`client`).
///
/// The settings of the `controlled/<id>` providers belong to the application: every connection
/// served by one `app` shares them.
pub fn app(ledger: Ledger) -> Router {
    let controls = Controls::default();
    Router::new().fallback(move |req: Request| handle(ledger.clone(), controls.clone(), req))
}

/// The scenario a path selects: `/v1/chat/completions` is `normal`, `/v1/responses`
/// `responses-normal`, `/v1/messages` `anthropic-normal`, and any path under `/scenario/<name>/`
/// ending in `/chat/completions`, `/responses` or `/messages` is `<name>`.
pub fn scenario_of(path: &str) -> Option<String> {
    endpoint_of(path).map(|(name, _)| name)
}

/// The scenario a path selects and the API whose endpoint the path names.
fn endpoint_of(path: &str) -> Option<(String, Api)> {
    let plain = match path {
        "/v1/chat/completions" => Some(("normal", Api::Chat)),
        "/v1/responses" => Some(("responses-normal", Api::Responses)),
        "/v1/messages" => Some(("anthropic-normal", Api::Messages)),
        _ => None,
    };
    if let Some((name, api)) = plain {
        return Some((name.to_string(), api));
    }
    let rest = path.strip_prefix("/scenario/")?;
    let (name, tail) = rest.split_once('/')?;
    if name.is_empty() {
        return None;
    }
    Some((name.to_string(), Api::of_path(tail)?))
}

/// The `<id>` of `/scenario/controlled/<id>/…`.
fn control_id(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/scenario/controlled/")?;
    let (id, _) = rest.split_once('/')?;
    (!id.is_empty()).then_some(id)
}

/// Records the request in the ledger, answers it, and adds the headers every response carries.
async fn handle(ledger: Ledger, controls: Controls, req: Request) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let on_upgrade = parts.extensions.remove::<OnUpgrade>();
    let shared = match parts.extensions.get::<ConnHandle>() {
        Some(h) => h.0.clone(),
        None => {
            let id = ledger.open("in-process".to_string());
            Arc::new(ConnShared::new(id, ledger.clone(), None, true))
        }
    };
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let endpoint = endpoint_of(&path);
    let scenario = endpoint.as_ref().map(|(name, _)| name.clone());
    let body = axum::body::to_bytes(body, MAX_BODY).await;

    let (headers, authorization_seen) = record_headers(&parts.headers);
    if path == "/_ledger" || path.starts_with("/_control/") {
        ledger.forget(shared.id);
    } else {
        let tag = pairs
            .iter()
            .find(|(k, _)| k == "tag")
            .map(|(_, v)| v.clone());
        ledger.request(shared.id, |r| {
            r.method = parts.method.to_string();
            r.path = path.clone();
            r.query = query.clone();
            r.scenario = scenario.clone();
            r.tag = tag;
            r.body = body
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            r.headers = headers;
            r.authorization_seen = authorization_seen;
        });
    }

    let preflight = parts.method == Method::OPTIONS;
    let mut resp = match body {
        Err(_) => json_error(413, "request body unreadable or larger than 16 MiB"),
        Ok(_) if preflight => preflight_response(&parts.headers, &path),
        Ok(body) => {
            route(Routed {
                method: &parts.method,
                headers: &parts.headers,
                path: &path,
                pairs: &pairs,
                endpoint,
                body,
                on_upgrade,
                shared: &shared,
                ledger: &ledger,
                controls: &controls,
            })
            .await
        }
    };

    let h = resp.headers_mut();
    if !shared.is_upgraded() {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if !preflight {
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("X-Generation-Id, Retry-After"),
        );
    }
    ledger.status(shared.id, resp.status().as_u16());
    if shared.in_process {
        shared.mark_started();
        resp = resp.map(|inner| {
            Body::new(Guarded {
                inner,
                shared: Some(shared),
            })
        });
    }
    resp
}

/// Request headers as stored in the ledger, and whether `Authorization` was present.
fn record_headers(headers: &HeaderMap) -> (BTreeMap<String, String>, bool) {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str();
        let value = if SECRET_HEADERS.contains(&name) {
            format!("<redacted len={}>", value.len())
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        out.entry(name.to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    (out, headers.contains_key(header::AUTHORIZATION))
}

/// A (non-preflight) request, as [`route`] needs it.
struct Routed<'a> {
    method: &'a Method,
    headers: &'a HeaderMap,
    path: &'a str,
    pairs: &'a [(String, String)],
    endpoint: Option<(String, Api)>,
    body: Bytes,
    /// Present when the request asked for a protocol upgrade over a real socket.
    on_upgrade: Option<OnUpgrade>,
    shared: &'a Arc<ConnShared>,
    ledger: &'a Ledger,
    controls: &'a Controls,
}

/// Dispatches a (non-preflight) request by path and method.
async fn route(req: Routed<'_>) -> Response<Body> {
    let Routed {
        method,
        headers,
        path,
        pairs,
        endpoint,
        body,
        on_upgrade,
        shared,
        ledger,
        controls,
    } = req;
    if let Some(id) = path.strip_prefix("/_control/") {
        return control_endpoint(method, id, &body, controls);
    }
    match path {
        "/ws" => ws_endpoint(method, headers, pairs, on_upgrade, shared),
        "/_ledger" => ledger_endpoint(method, pairs, ledger).await,
        "/healthz" if is_get(method) => text(200, "text/plain; charset=utf-8", "ok".into()),
        "/" if is_get(method) => text(200, "text/plain; charset=utf-8", index_text(shared)),
        "/healthz" | "/" => method_not_allowed("GET, OPTIONS"),
        _ => match endpoint {
            Some((name, api)) if method == Method::POST => {
                let control = (name == "controlled").then(|| control_id(path));
                let control =
                    match control {
                        None => None,
                        Some(Some(id)) => Some(controls.take(id)),
                        Some(None) => return json_error(
                            404,
                            "controlled needs an id: /scenario/controlled/<id>/v1/chat/completions",
                        ),
                    };
                chat(&name, api, control, pairs, body, shared).await
            }
            Some(_) => method_not_allowed("POST, OPTIONS"),
            None => json_error(404, &format!("no route for {path}")),
        },
    }
}

/// `POST /_control/<id>` (a JSON update of `first_token_ms` and/or `mode`), `GET` (the current
/// setting) and `DELETE` (back to the default) of a controlled provider.
fn control_endpoint(method: &Method, id: &str, body: &[u8], controls: &Controls) -> Response<Body> {
    if id.is_empty() || id.contains('/') {
        return json_error(404, "expected /_control/<id>");
    }
    let v = match *method {
        Method::POST => match controls.update(id, body) {
            Ok(v) => v,
            Err(msg) => return json_error(400, &msg),
        },
        Method::GET | Method::HEAD => controls.get(id),
        Method::DELETE => controls.reset(id),
        _ => return method_not_allowed("GET, POST, DELETE, OPTIONS"),
    };
    text(200, "application/json", v.to_string())
}

/// `GET /ws`: upgrades to a WebSocket echo session (see [`crate::ws`]).
fn ws_endpoint(
    method: &Method,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    on_upgrade: Option<OnUpgrade>,
    shared: &Arc<ConnShared>,
) -> Response<Body> {
    let accept = match ws::check_handshake(method, headers) {
        Ok(accept) => accept,
        Err((405, _)) => return method_not_allowed("GET"),
        Err((status, msg)) => {
            let mut r = json_error(status, &msg);
            if status == 426 {
                r.headers_mut()
                    .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            }
            return r;
        }
    };
    let params = match WsParams::from_pairs(pairs) {
        Ok(p) => p,
        Err(msg) => return json_error(400, &msg),
    };
    let Some(on_upgrade) = on_upgrade else {
        return json_error(
            501,
            "a WebSocket needs a real socket (not an in-process request)",
        );
    };
    shared.mark_upgraded();
    let active = shared.ledger.scenario_task();
    tokio::spawn(ws::run(on_upgrade, params, shared.clone(), active));
    ws::switching_response(&accept)
}

/// GET, or HEAD (answered like GET).
fn is_get(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// A whole response with this status, content type and body.
fn text(status: u16, content_type: &'static str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("valid response")
}

/// A JSON error of the mock itself: `{"error":{"code":N,"message":"..."}}`.
fn json_error(status: u16, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": {"code": status, "message": message}});
    text(status, "application/json", body.to_string())
}

/// 405 with an `Allow` header.
fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = json_error(405, "method not allowed");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// The 204 answer to a CORS preflight.
fn preflight_response(req_headers: &HeaderMap, path: &str) -> Response<Body> {
    let allow_headers = req_headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_ALLOW_HEADERS));
    let methods = if path == "/_ledger" || path.starts_with("/_control/") {
        "GET, POST, DELETE, OPTIONS"
    } else {
        "GET, POST, OPTIONS"
    };
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, methods)
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers)
        .header(header::ACCESS_CONTROL_MAX_AGE, "600")
        .body(Body::empty())
        .expect("valid response")
}

/// The JSON answer of `GET /_ledger`.
#[derive(Serialize)]
struct LedgerBody {
    now_ms: f64,
    connections: Vec<ConnectionRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timed_out: Option<bool>,
}

/// `GET` (with optional long-poll) and `DELETE` of `/_ledger`.
async fn ledger_endpoint(
    method: &Method,
    pairs: &[(String, String)],
    ledger: &Ledger,
) -> Response<Body> {
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let body = match *method {
        Method::GET | Method::HEAD => {
            let filter = Filter {
                tag: get("tag"),
                scenario: get("scenario"),
            };
            match get("wait_closed_ms") {
                None => LedgerBody {
                    now_ms: now_ms(),
                    connections: ledger.query(&filter),
                    timed_out: None,
                },
                Some(ms) => {
                    let Ok(ms) = ms.trim().parse::<u64>() else {
                        return json_error(400, "bad value for wait_closed_ms");
                    };
                    let wait = Duration::from_millis(ms.min(MAX_WAIT_MS));
                    let outcome = ledger.wait_closed_matching(&filter, wait).await;
                    LedgerBody {
                        now_ms: now_ms(),
                        connections: outcome.connections,
                        timed_out: Some(outcome.timed_out),
                    }
                }
            }
        }
        Method::DELETE => {
            ledger.clear();
            LedgerBody {
                now_ms: now_ms(),
                connections: Vec::new(),
                timed_out: None,
            }
        }
        _ => return method_not_allowed("GET, DELETE, OPTIONS"),
    };
    let json = serde_json::to_string(&body).expect("ledger serializes");
    text(200, "application/json", json)
}

/// The plain-text index page: endpoints, scenarios, parameters and an example.
fn index_text(shared: &ConnShared) -> String {
    let base = match shared.local {
        Some(addr) => format!("http://{addr}"),
        None => "http://127.0.0.1:<port>".to_string(),
    };
    let mut s = String::from(
        "mock-upstream: streaming LLM upstreams (OpenAI-compatible chat, the Responses API, Anthropic\n\
         Messages) that misbehave on purpose.\n\n\
         Endpoints:\n  \
         POST /v1/chat/completions                      scenario 'normal'\n  \
         POST /v1/responses                             scenario 'responses-normal' (OpenAI Responses API)\n  \
         POST /v1/messages                              scenario 'anthropic-normal' (Anthropic Messages)\n  \
         POST /scenario/<name>/v1/chat/completions      any path under /scenario/<name>/ ending in /chat/completions,\n                                                 \
         /responses or /messages, whichever the scenario speaks\n  \
         POST /scenario/controlled/<id>/v1/chat/completions   the provider <id>, set by /_control/<id>\n  \
         POST /_control/<id>  {\"first_token_ms\":N,\"mode\":\"ok|stall|stall-after=N|http-<status>\"}\n                                                 \
         sets it (absent fields unchanged); GET reads it, DELETE resets it\n  \
         GET  /_ledger[?tag=X][&scenario=N][&wait_closed_ms=MS]   connection ledger (long-poll with wait_closed_ms)\n  \
         DELETE /_ledger                                clears the ledger\n  \
         GET  /healthz                                  'ok'\n  \
         GET  /ws[?drop_after_ms=MS][&tag=X]            WebSocket echo; the text message 'drop' drops the\n                                                 \
         connection (no close frame), 'close' closes it with code 1000\n\n\
         Scenarios:\n",
    );
    for scenario in SCENARIOS {
        s.push_str(&format!("  {:<24} {}\n", scenario.name, scenario.about));
    }
    s.push_str(
        "\nQuery parameters (milliseconds unless noted, defaults in brackets):\n  \
         head_delay_ms [0]    wait before response headers\n  \
         first_delay_ms [0]   wait after headers before the first event\n  \
         delay_ms [0]         wait between events (endless: 50)\n  \
         keepalive_ms [50]    interval between keepalive comments\n  \
         keepalives [3]       keepalive comments where finite\n  \
         chunks [3]           content chunks before a stall/close/reset/error\n  \
         n [1000]             chunk count of 'long'\n  \
         size [2097152]       line size (bytes) of 'huge-line'\n  \
         retry_after [1]      seconds, for 429/503\n  \
         text                 answer text (URL-encoded)\n  \
         usage [always]       'asked': chat usage chunk only if stream_options.include_usage is true\n  \
         restate [0]          words of the given text 'continue' repeats before continuing\n  \
         tag                  free label recorded in the ledger\n\n\
         Example:\n",
    );
    s.push_str(&format!(
        "  curl -N -X POST {base}/scenario/normal/v1/chat/completions -H 'Content-Type: application/json' \
         -d '{{\"model\":\"mock/model\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}],\"stream\":true}}'\n"
    ));
    s
}

/// Resolves when the client is gone; otherwise never.
async fn client_gone(shared: &ConnShared) {
    shared.wait_closed().await
}

/// Plays scenario `name` for a request to the endpoint of `api`.
async fn chat(
    name: &str,
    api: Api,
    control: Option<crate::control::Control>,
    pairs: &[(String, String)],
    body: Bytes,
    shared: &Arc<ConnShared>,
) -> Response<Body> {
    let params = match Params::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(p) => p,
        Err(msg) => return json_error(400, &msg),
    };
    let req = ChatRequest::parse(&body);
    match scenarios::scenario(name) {
        None => return json_error(404, &format!("unknown scenario {name}")),
        Some(s) if s.api != api => {
            let at = if name == "controlled" {
                "controlled/<id>"
            } else {
                name
            };
            let msg = format!(
                "scenario {name} answers POST /scenario/{at}{}",
                s.api.path()
            );
            return json_error(404, &msg);
        }
        Some(_) => {}
    }
    let Some((reply, mode)) = scenarios::build(name, &params, &req, shared.id, control) else {
        return json_error(404, &format!("unknown scenario {name}"));
    };
    if let Some(mode) = mode {
        shared.ledger.mode(shared.id, mode);
    }
    let active = shared.ledger.scenario_task();
    if params.head_delay_ms > 0 {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(params.head_delay_ms)) => {}
            _ = client_gone(shared) => return gone_response(),
        }
    }
    match reply {
        Reply::NoHeaders => {
            client_gone(shared).await;
            drop(active);
            gone_response()
        }
        Reply::Fixed(f) => {
            drop(active);
            let mut b = Response::builder()
                .status(f.status)
                .header(header::CONTENT_TYPE, f.content_type);
            for (k, v) in f.headers {
                b = b.header(k, v);
            }
            b.body(Body::from(f.body)).expect("valid response")
        }
        Reply::Sse(plan) => {
            let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(1);
            tokio::spawn(run_plan(plan, tx, shared.clone(), active));
            let taker = shared.clone();
            let stream = futures_util::stream::poll_fn(move |cx| {
                let r = rx.poll_recv(cx);
                if let Poll::Ready(Some(_)) = r {
                    taker.frame_taken();
                }
                r
            });
            Response::builder()
                .status(200)
                .header(header::CONTENT_TYPE, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-cache")
                .header("X-Generation-Id", format!("gen-mock-{}", shared.id))
                .body(Body::from_stream(stream))
                .expect("valid response")
        }
    }
}

/// The response of a request whose client already left (never actually delivered).
fn gone_response() -> Response<Body> {
    json_error(499, "client closed request")
}

/// The client left, or the body was dropped.
struct Gone;

/// Feeds a plan's writes into a response body, stopping as soon as the client is gone.
struct Sink {
    tx: mpsc::Sender<io::Result<Bytes>>,
    shared: Arc<ConnShared>,
}

impl Sink {
    async fn gone(&self) {
        tokio::select! {
            _ = self.tx.closed() => {}
            _ = self.shared.wait_closed() => {}
        }
    }

    async fn write(&self, bytes: Bytes) -> Result<(), Gone> {
        tokio::select! {
            r = self.tx.send(Ok(bytes)) => r.map_err(|_| Gone),
            _ = self.gone() => Err(Gone),
        }
    }

    async fn sleep(&self, ms: u64) -> Result<(), Gone> {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => Ok(()),
            _ = self.gone() => Err(Gone),
        }
    }

    async fn run(&self, plan: Plan) -> Result<(), Gone> {
        for step in plan.steps {
            match step {
                Step::Write(b) => self.write(b).await?,
                Step::Sleep(ms) => self.sleep(ms).await?,
            }
        }
        match plan.tail {
            Tail::End => Ok(()),
            Tail::Silence => {
                self.gone().await;
                Err(Gone)
            }
            Tail::Repeat { every_ms, bytes } => loop {
                self.sleep(every_ms).await?;
                self.write(bytes.clone()).await?;
            },
            Tail::Reset => {
                // Holding the only slot proves hyper took the last frame; then wait until hyper
                // flushed it to the socket, so the reset does not discard it.
                let permit = tokio::select! {
                    p = self.tx.reserve() => p.map_err(|_| Gone)?,
                    _ = self.gone() => return Err(Gone),
                };
                tokio::select! {
                    _ = self.shared.wait_flushed() => {}
                    _ = self.gone() => return Err(Gone),
                }
                self.shared.arm_reset();
                permit.send(Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "deliberate reset",
                )));
                Ok(())
            }
        }
    }
}

/// The producer task of a streamed body; counted as active until it ends.
async fn run_plan(
    plan: Plan,
    tx: mpsc::Sender<io::Result<Bytes>>,
    shared: Arc<ConnShared>,
    active: ActiveGuard,
) {
    let sink = Sink { tx, shared };
    let _ = sink.run(plan).await;
    drop(sink);
    drop(active);
}

/// A response body that, for in-process requests, records the end of the "connection": `server`
/// when the body finished, `client` when it was dropped unfinished.
struct Guarded {
    inner: Body,
    shared: Option<Arc<ConnShared>>,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = r {
            if let Some(shared) = this.shared.take() {
                shared.mark_closed(ClosedBy::Server, false);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
