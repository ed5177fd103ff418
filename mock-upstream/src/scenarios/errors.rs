//! Chat scenarios that answer with an error status (and the OpenRouter-style error body).

use super::*;

use std::time::{Duration, UNIX_EPOCH};

use serde_json::json;

use super::ctx::unix_seconds;

/// The canonical reason phrase of `status`.
pub(crate) fn reason(status: u16) -> &'static str {
    http_status_reason(status).unwrap_or("Error")
}

/// The canonical reason phrase, if the status has one.
pub(crate) fn http_status_reason(status: u16) -> Option<&'static str> {
    axum::http::StatusCode::from_u16(status)
        .ok()?
        .canonical_reason()
}

/// An OpenRouter-style JSON error body.
pub(crate) fn error_body(status: u16, message: &str) -> String {
    json!({"error": {"code": status, "message": message, "metadata": {}}}).to_string()
}

/// `http-429-date`.
pub(crate) fn http_429_date(c: &Ctx) -> Reply {
    // Round up to the next whole second so the date is at least `retry_after` ahead.
    let at = UNIX_EPOCH + Duration::from_secs(unix_seconds() + 1 + c.params.retry_after);
    Reply::Fixed(Fixed {
        status: 429,
        content_type: "application/json",
        headers: vec![("Retry-After", httpdate::fmt_http_date(at))],
        body: error_body(429, reason(429)),
    })
}

/// `html-200`.
pub(crate) fn html_200(_: &Ctx) -> Reply {
    Reply::Fixed(Fixed {
        status: 200,
        content_type: "text/html; charset=utf-8",
        headers: Vec::new(),
        body: "<!doctype html>\n<html><head><title>Mock upstream</title></head>\
               <body><h1>Welcome</h1><p>This is an HTML page, not an API response.</p></body></html>\n"
            .to_string(),
    })
}
