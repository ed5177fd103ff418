//! The typed contract between the core and JavaScript: the types whose serialized form is what
//! JavaScript receives (events, results, errors, attempts, stats, usage, tool calls) and the
//! options it reads are plain Rust types with `Serialize` derives carrying the JavaScript names;
//! the edge turns them into JavaScript objects with one writer (`serde-wasm-bindgen`).
//!
//! The published TypeScript types (`src/web/llm-stream-guard.d.ts`) are written by hand for
//! their documentation; a native test (`tests.rs`) checks them against these types (derived
//! with `ts-rs`, a dev-dependency only, so the wasm carries none of it): adding, renaming or
//! retyping a field in Rust without the `.d.ts` fails `cargo test`.
//!
//! Nothing here may touch a platform API.

use serde::Serialize;

/// What went wrong, as JavaScript branches on it (`GuardError.kind`, a partial answer's
/// `cause.kind`, an `attempt-failed` event's `kind`): decided once, here, never re-parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ErrorKind {
    /// A deadline passed.
    Timeout,
    /// The caller (or a session, or a callback that threw) cancelled the call.
    Aborted,
    /// The provider answered with a non-2xx status.
    Http,
    /// The provider reported an error in the stream, or sent no answer at all.
    Upstream,
    /// The response was not what an OpenAI-compatible server sends.
    Protocol,
    /// The request or the body failed to transfer.
    Network,
    /// The options were refused; nothing was sent.
    Config,
    /// A guard's breakers left every provider of the chain out: nothing was sent.
    Unavailable,
}

impl ErrorKind {
    /// The name JavaScript sees (`"timeout"`, …, `"config"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Aborted => "aborted",
            ErrorKind::Http => "http",
            ErrorKind::Upstream => "upstream",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Network => "network",
            ErrorKind::Config => "config",
            ErrorKind::Unavailable => "unavailable",
        }
    }
}

/// What the module holds right now (`liveResources()`): all zeros when nothing is running.
/// The edge counts; this is the shape JavaScript receives.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LiveResources {
    /// Armed timers.
    pub timers: f64,
    /// Response body readers held.
    pub readers: f64,
    /// Event listeners added to other objects.
    pub listeners: f64,
    /// Generations in flight.
    pub in_flight: f64,
}

/// `#[serde(with = "crate::core::contract::number")]`: a count as a JavaScript number (the
/// nearest `f64`), as JavaScript has no 64-bit integers and a count past 2^53 must not fail the
/// whole object.
pub mod number {
    use serde::Serializer;

    /// Serializes `count` as an `f64`.
    pub fn serialize<S: Serializer>(count: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(*count as f64)
    }
}

#[cfg(test)]
mod tests;
