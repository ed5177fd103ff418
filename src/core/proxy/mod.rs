//! The edge worker's decisions: configuration, routes, access control, request checks, provider
//! order, the body it forwards ([`forward`]) and what a failure answers (the call machine's
//! relaying mode, [`crate::core::relay`], decides the rest in the worker's way). Pure: strings in, strings
//! and decisions out; nothing here may touch a platform API.
//!
//! Configuration comes from bindings / environment variables with these names (read once per
//! isolate, on its first request: workerd hands a module worker its `env` only with a request):
//! - `LSG_PROVIDERS`: JSON array of `{ name, url, model, apiKeyEnv?, headers?, timeouts?, maxRetries? }`;
//!   `apiKeyEnv` names the variable or secret that holds the key (never the key itself).
//! - `LSG_CLIENT_TOKENS`: comma-separated bearer tokens that clients may present.
//! - `LSG_ALLOWED_ORIGINS`: comma-separated origins allowed without a token (browsers, with
//!   CORS); `*` is refused. An origin allowlist is not authentication: any non-browser client
//!   can send any `Origin`.
//! - `LSG_MODELS`: comma-separated model allowlist; unset means the models in `LSG_PROVIDERS`.
//! - `LSG_TIMEOUTS`: JSON with the `Timeouts` fields (`headersMs`, `firstTokenMs`, …), read
//!   as `generate()`'s `timeouts` are (by the same reader, as are a provider's `timeouts` and
//!   `maxRetries`).
//! - `LSG_RETRY`: JSON `{ maxRetries?, baseDelayMs?, maxDelayMs? }`, read as `generate()`'s
//!   `retry` is.
//! - `LSG_HEARTBEAT_MS`: SSE comment heartbeat interval (default 10 000).
//! - `LSG_MAX_BODY_BYTES`: request body limit (default 262 144).
//! - `LSG_BODY_MS`: the time a client has to send its request body (default 5 000; then 408).
//! - `LSG_FORWARD_FIELDS`: comma-separated [`GATED_FIELDS`] passed on anyway (default none).
//! - `LSG_GUARD`: JSON `{ adaptive?, breaker? }`, a guard over the providers kept per isolate
//!   (hedging and continuation would change the bytes relayed: refused).
//! - `LSG_MAX_TOKENS`: the largest `max_tokens` / `max_completion_tokens` accepted, and the
//!   `max_tokens` sent when a request names neither (default: no cap).
//! - `LSG_PROBE_MS`: once the status is out, while nothing else is sent and the client reads, a
//!   single LF between events every this many milliseconds (default 25; 0 turns probes off), so
//!   a client that closed its connection in order is noticed promptly (workerd learns of it only
//!   when it writes).

mod access;
mod config;
mod forward;
mod outcome;
mod request;

pub use access::{
    bearer_token, client_authorization, messages_headers, route, route_refusal, Access, Route,
    CHAT_PATH, DEFAULT_ALLOW_HEADERS, EXPOSE_HEADERS, MAX_REQUEST_HEADERS,
    MAX_REQUEST_HEADERS_BYTES, MESSAGES_PATH, RESPONSES_PATH,
};
pub use config::{
    ConfigError, ProviderConfig, ProxyConfig, DEFAULT_BODY_MS, DEFAULT_HEARTBEAT_MS,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_PROBE_MS, PROVIDER_CONFIG_FIELDS,
};
pub use forward::{endpoint, forward, Api, Forward};
pub use outcome::{
    failure_message, failure_status, final_failure, misconfigured, relayed_event,
    smallest_retry_after_seconds, tried_summary, Tried, UPSTREAM_EVENT, WORKER_EVENT,
};
pub use request::{
    body_timeout_refusal, check_content_length, error_body, parse_chat_request, too_large_refusal,
    ChatRequest, Refusal, GATED_FIELDS, TOKEN_FIELDS,
};

#[cfg(test)]
mod tests;
