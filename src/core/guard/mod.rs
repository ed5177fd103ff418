//! What a long-lived guard learns and decides across calls, as plain data with time as an
//! argument: a bounded streaming quantile sketch ([`sketch`]), per provider and model learned
//! deadlines ([`learned`]), a circuit breaker per provider ([`breaker`]), and the two pure
//! pieces of continuing a cut answer on another provider: removing what a continuation repeats
//! ([`overlap`]) and building the continuation request ([`continuation`]); and [`state`], which
//! puts them together across the calls of one `Guard`; [`shared`], the breaker decisions the edge
//! worker's isolates share through a Durable Object.
//!
//! It must never: import a platform crate, read a clock (every method that depends on time takes
//! `now`, in milliseconds on one monotonic clock), grow without bound (a sketch holds at most
//! [`sketch::MAX_BUCKETS`] buckets), or keep a key: nothing here sees one.

pub mod breaker;
pub mod continuation;
pub mod learned;
pub mod overlap;
pub mod shared;
pub mod sketch;
pub mod state;
