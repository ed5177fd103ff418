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

#[cfg(target_arch = "wasm32")]
pub mod web;

/// Talc instead of Rust's default wasm allocator: smaller, as fast here (see `Cargo.toml`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
