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
