//! The pure core: bytes and clock readings in, events and decisions out.
//!
//! Nothing in this module (or below it) may import a platform crate: no JavaScript bindings,
//! no web API bindings, no browser timers. Everything here runs natively under `cargo test`.

pub mod answer;
mod bytes;
pub mod call;
pub mod chunk;
pub mod contract;
pub mod deadline;
pub mod events;
mod exchange;
pub mod guard;
pub mod machine;
pub mod metrics;
pub mod options;
pub mod policy;
pub mod progress;
pub mod proxy;
pub mod relay;
pub mod secrets;
pub mod sse;
pub mod verdict;
