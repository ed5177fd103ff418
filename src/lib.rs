//! # llm-stream-guard
//!
//! Hang-proof streaming of OpenAI-compatible chat answers (Server-Sent Events over `fetch`).
//!
//! The crate has two halves:
//! - [`core`]: pure, deterministic Rust (SSE parser, chat-chunk decoder, and later the deadline
//!   state machine and retry/failover policy). It never imports wasm-bindgen, web-sys, js-sys or
//!   gloo, takes time as an argument, and is tested natively with `cargo test`.
//! - the platform edge (wasm only, added on top of the core): fetch, streams, timers and
//!   lifecycle, which only move bytes and clock readings into the core and act on its decisions.

pub mod core;

#[cfg(target_arch = "wasm32")]
pub mod web;

/// Talc instead of Rust's default wasm allocator: smaller, as fast here (see `Cargo.toml`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
