//! The platform edge: JavaScript bindings over the pure core.
//!
//! Code here only moves bytes and values between JavaScript and [`crate::core`]; every decision
//! (what an event is, what an error means, when a deadline passes) is made in the core. Globals
//! only, never `window`, so the same module runs in pages, workers, workerd and Node.

mod aborts;
mod error;
mod executor;
mod generate;
mod guard;
mod guard_fetch;
mod objects;
mod option_source;
mod options;
mod resources;
mod session;
mod sse_parser;
mod stream;
mod to_js;
mod transport;
mod typescript;
#[cfg(feature = "worker")]
mod worker;

pub use error::guard_error;
pub use generate::generate;
pub use guard::Guard;
pub use guard_fetch::guard_fetch;
pub use resources::live_resources;
pub use session::Session;
pub use sse_parser::SseParser;
pub use stream::{stream, GenerationStream};
#[cfg(feature = "worker")]
pub use worker::handle_request;
