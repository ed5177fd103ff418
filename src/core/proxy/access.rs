//! Who may ask what: routes and their methods, client tokens, and CORS for allowed origins.
//!
//! An `Origin` allowlist is not authentication: a browser cannot lie about its page's origin,
//! but any other client can send any `Origin` header. It is meant for a page that must call the
//! worker without holding a token; everything else should present a client token.

use super::config::ProxyConfig;
use super::request::Refusal;

/// The chat completions path.
pub const CHAT_PATH: &str = "/v1/chat/completions";
/// The Responses API path (served like the chat path, see [`Route::Responses`]).
pub const RESPONSES_PATH: &str = "/v1/responses";
/// The Anthropic Messages API path (served like the chat path, see [`Route::Messages`]).
pub const MESSAGES_PATH: &str = "/v1/messages";

/// The response headers a page's script may read: the request id the SDKs report, and the
/// retry advice of a failure.
pub const EXPOSE_HEADERS: &str = "x-request-id, retry-after, x-should-retry";

/// The headers a preflight allows when it names none.
pub const DEFAULT_ALLOW_HEADERS: &str = "authorization, content-type, accept";

/// The longest `Access-Control-Request-Headers` echoed, in bytes.
pub const MAX_REQUEST_HEADERS_BYTES: usize = 2048;
/// The most header names one preflight may ask for.
pub const MAX_REQUEST_HEADERS: usize = 64;

/// What a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET`/`HEAD /healthz`.
    Health,
    /// `GET`/`HEAD /metrics`.
    Metrics,
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/responses`, the Responses API: relayed like chat, to each provider's
    /// `/responses` endpoint.
    Responses,
    /// `POST /v1/messages`, Anthropic's Messages API: relayed like chat, to each provider's
    /// `/messages` endpoint, the client's token also taken from `x-api-key`.
    Messages,
    /// `OPTIONS`: a CORS preflight.
    Preflight,
    /// `GET`/`HEAD` of anything else, when an `ASSETS` service is bound (the demo page).
    Asset,
    /// A known path with another method: 405 with this `Allow`.
    MethodNotAllowed {
        /// The methods the path accepts.
        allow: &'static str,
    },
    /// Nothing here.
    NotFound,
}

/// The route for `method` and `path` (`has_assets`: an `ASSETS` service is bound).
pub fn route(method: &str, path: &str, has_assets: bool) -> Route {
    let read = matches!(method, "GET" | "HEAD");
    match (method, path) {
        ("OPTIONS", _) => Route::Preflight,
        (_, "/healthz") if read => Route::Health,
        (_, "/metrics") if read => Route::Metrics,
        (_, "/healthz" | "/metrics") => Route::MethodNotAllowed { allow: "GET, HEAD" },
        ("POST", CHAT_PATH) => Route::Chat,
        ("POST", RESPONSES_PATH) => Route::Responses,
        ("POST", MESSAGES_PATH) => Route::Messages,
        (_, CHAT_PATH | RESPONSES_PATH | MESSAGES_PATH) => Route::MethodNotAllowed {
            allow: "POST, OPTIONS",
        },
        _ if read && has_assets => Route::Asset,
        _ => Route::NotFound,
    }
}

/// The refusal of a route that is not served (405, 404), or `None`.
pub fn route_refusal(route: Route, method: &str, path: &str) -> Option<Refusal> {
    match route {
        Route::MethodNotAllowed { allow } => Some(
            Refusal::new(
                405,
                "invalid_request_error",
                "method_not_allowed",
                format!("{method} is not allowed on {path} (allowed: {allow})"),
            )
            .header("allow", allow),
        ),
        Route::NotFound => Some(Refusal::new(
            404,
            "invalid_request_error",
            "not_found",
            format!("no route for {method} {path}"),
        )),
        _ => None,
    }
}

/// The client's credential as an `Authorization` value: its own, or on the Messages route
/// (where Anthropic's SDK sends its key as `x-api-key`) that key as a bearer token.
pub fn client_authorization(
    messages: bool,
    authorization: Option<String>,
    x_api_key: Option<String>,
) -> Option<String> {
    match (authorization, x_api_key) {
        (Some(authorization), _) => Some(authorization),
        (None, Some(key)) if messages && !key.trim().is_empty() => {
            Some(["Bearer ", key.trim()].concat())
        }
        _ => None,
    }
}

/// The headers a Messages request goes upstream with besides its body's type: the key header
/// Anthropic's API reads (empty here: the relay puts each
/// provider's key in the header the request used), the client's `anthropic-version` (or the
/// one every Messages endpoint accepts) and its `anthropic-beta`, if any.
pub fn messages_headers(version: Option<String>, beta: Option<String>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("x-api-key".to_owned(), String::new()),
        (
            "anthropic-version".to_owned(),
            version.unwrap_or_else(|| "2023-06-01".to_owned()),
        ),
    ];
    headers.extend(beta.map(|beta| ("anthropic-beta".to_owned(), beta)));
    headers
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is matched without regard
/// to case (RFC 7235 §2.1: `bearer`, `BEARER` are the same scheme), and any run of spaces or
/// tabs may separate it from the token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let value = authorization.trim_start();
    let scheme = value.get(..6)?;
    let rest = value.get(6..)?;
    if !scheme.eq_ignore_ascii_case("bearer") || !rest.starts_with([' ', '\t']) {
        return None;
    }
    let token = rest.trim_matches([' ', '\t']);
    (!token.is_empty()).then_some(token)
}

/// Comparison whose time does not depend on where the inputs first differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The result of access control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A configured client token was presented.
    Token,
    /// The request came from an allowed origin.
    Origin,
    /// Neither: refuse with 401.
    Denied,
}

impl ProxyConfig {
    /// Who may make this request: a client token, an allowed origin, or nobody.
    pub fn authorize(&self, authorization: Option<&str>, origin: Option<&str>) -> Access {
        if let Some(token) = authorization.and_then(bearer_token) {
            // Every token is compared (no early exit), each in constant time.
            let matched = self.client_tokens.iter().fold(false, |found, t| {
                constant_time_eq(t.as_bytes(), token.as_bytes()) | found
            });
            if matched {
                return Access::Token;
            }
        }
        match origin {
            Some(origin) if self.origin_allowed(origin) => Access::Origin,
            _ => Access::Denied,
        }
    }

    /// CORS headers for a response to `origin` (none when it is not allowed).
    pub fn cors_headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
        match origin {
            Some(origin) if self.origin_allowed(origin) => vec![
                ("access-control-allow-origin", origin.to_owned()),
                ("vary", "Origin".to_owned()),
                ("access-control-expose-headers", EXPOSE_HEADERS.to_owned()),
            ],
            _ => Vec::new(),
        }
    }

    /// The answer to a preflight: the headers of a 204, or a refusal (403 for an origin that is
    /// not allowed, 400 for a request-headers list that is too long or not a list of names).
    /// The requested headers are echoed, lowercased and without repeats, so a page's SDK may
    /// send its own (`x-stainless-*`, `X-LSG-Events`); access is decided by the token or the
    /// origin, never by which headers a request carries.
    pub fn preflight(
        &self,
        origin: Option<&str>,
        request_headers: Option<&str>,
    ) -> Result<Vec<(&'static str, String)>, Refusal> {
        let mut headers = self.cors_headers(origin);
        if headers.is_empty() {
            return Err(Refusal::new(
                403,
                "permission_error",
                "origin_not_allowed",
                "this origin is not allowed",
            ));
        }
        let allow = allowed_request_headers(request_headers.unwrap_or(""))?;
        headers[1].1 = "Origin, Access-Control-Request-Headers".to_owned();
        headers.push(("access-control-allow-methods", "POST, GET, OPTIONS".into()));
        headers.push(("access-control-allow-headers", allow));
        headers.push(("access-control-max-age", "600".into()));
        Ok(headers)
    }
}

/// Whether `name` is an HTTP field name (RFC 9110 §5.1: a `token`).
fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The `Access-Control-Allow-Headers` for an `Access-Control-Request-Headers` value.
fn allowed_request_headers(requested: &str) -> Result<String, Refusal> {
    if requested.len() > MAX_REQUEST_HEADERS_BYTES {
        return Err(Refusal::bad_request(
            "preflight_headers_too_long",
            format!(
                "Access-Control-Request-Headers is longer than {MAX_REQUEST_HEADERS_BYTES} bytes"
            ),
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for name in requested
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        if !is_field_name(name) {
            return Err(Refusal::bad_request(
                "invalid_preflight_headers",
                "Access-Control-Request-Headers must be a comma-separated list of header names",
            ));
        }
        let name = name.to_ascii_lowercase();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.len() > MAX_REQUEST_HEADERS {
        return Err(Refusal::bad_request(
            "preflight_headers_too_long",
            format!("Access-Control-Request-Headers names more than {MAX_REQUEST_HEADERS} headers"),
        ));
    }
    if names.is_empty() {
        return Ok(DEFAULT_ALLOW_HEADERS.to_owned());
    }
    Ok(names.join(", "))
}
