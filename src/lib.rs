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

#[cfg(all(
    target_arch = "wasm32",
    not(any(feature = "sse-only", feature = "core-floor"))
))]
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

/// With the feature `core-floor` (bench row 2c only, not a package entry): no driver at all, but
/// the core's machines behind the minimal API a driver written in JavaScript would need
/// ([`core_floor`]). Of the platform edge only the writer of the core's `Serialize` types into
/// JavaScript values is compiled, with the one property setter it uses.
#[cfg(all(
    target_arch = "wasm32",
    feature = "core-floor",
    not(feature = "sse-only")
))]
pub mod web {
    #[allow(dead_code)] // `write_fields` serves the drivers' errors only
    pub(crate) mod to_js;

    /// The drivers' reader of options objects, which the core's option checks read through.
    pub(crate) mod option_source;

    /// The drivers' property access as `to_js`, `option_source` and the core-only module use it
    /// (without its cache of names).
    pub(crate) mod objects {
        use wasm_bindgen::JsValue;

        /// Sets a plain data property.
        pub(crate) fn set(object: &JsValue, key: &'static str, value: &JsValue) {
            let _ = js_sys::Reflect::set(object, &JsValue::from_str(key), value);
        }

        /// Sets a plain data property named at run time.
        pub(crate) fn set_named(object: &JsValue, key: &str, value: &JsValue) {
            let _ = js_sys::Reflect::set(object, &JsValue::from_str(key), value);
        }

        /// A property (`undefined` when it has none or reading it threw).
        pub(crate) fn get_named(object: &JsValue, key: &str) -> JsValue {
            js_sys::Reflect::get(object, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
        }
    }
}

#[cfg(all(
    target_arch = "wasm32",
    feature = "core-floor",
    not(feature = "sse-only")
))]
pub mod core_floor;

#[cfg(all(feature = "sse-only", feature = "worker"))]
compile_error!("the features `sse-only` and `worker` exclude each other");

#[cfg(all(feature = "core-floor", feature = "sse-only"))]
compile_error!("the features `core-floor` and `sse-only` exclude each other");

#[cfg(all(feature = "core-floor", feature = "worker"))]
compile_error!("the features `core-floor` and `worker` exclude each other");

/// Talc instead of Rust's default wasm allocator: smaller, as fast here (see `Cargo.toml`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
