//! # llm-stream-guard
//!
//! Hang-proof streaming of OpenAI-compatible chat answers (Server-Sent Events over `fetch`).
//!
//! The crate has two halves:
//! - [`core`]: pure, deterministic Rust: the SSE parser, the chat-chunk decoder, layered
//!   deadlines, the retry/failover policy, answer assembly, a call across its failover chain,
//!   events (with secrets redacted), and the edge worker's decisions and metrics. It imports no
//!   platform crate (no wasm-bindgen, web-sys or js-sys), takes time as an argument, and is
//!   tested natively with `cargo test`.
//! - `web` (wasm only): the platform edge over the core: `generate()` (fetch, body readers,
//!   its own counted `setTimeout` timers), `Session` (page, WebRTC, WebSocket and signal
//!   lifecycles), `SseParser` and `liveResources()` for JavaScript, and, with the feature
//!   `worker`, the edge worker's `handleRequest`. It only moves bytes and clock readings into the
//!   core and acts on its decisions.

pub mod core;

#[cfg(all(target_arch = "wasm32", not(feature = "sse-only")))]
pub mod web;

/// With the feature `sse-only` (the package's `llm-stream-guard/sse` entry): `SseParser` for
/// JavaScript and the `GuardError` it throws, nothing else of the platform edge.
#[cfg(all(target_arch = "wasm32", feature = "sse-only"))]
pub mod web {
    mod error;
    mod sse_parser;

    pub use error::guard_error;
    pub use sse_parser::SseParser;
}

#[cfg(all(feature = "sse-only", feature = "worker"))]
compile_error!("the features `sse-only` and `worker` exclude each other");

/// Talc instead of Rust's default wasm allocator: smaller, as fast here (see `Cargo.toml`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
