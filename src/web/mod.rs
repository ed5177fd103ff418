//! The platform edge: JavaScript bindings over the pure core.
//!
//! Code here only moves bytes and values between JavaScript and [`crate::core`]; every decision
//! (what an event is, what an error means) is made in the core. Globals only, never `window`,
//! so the same module runs in pages, workers, workerd and Node.

mod error;
mod sse_parser;

pub use error::guard_error;
pub use sse_parser::SseParser;
