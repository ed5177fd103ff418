//! Hand-written TypeScript types for the published API (pulled into the generated `.d.ts`).
//!
//! `generate` is exported with `skip_typescript`: its options, result, events and error are
//! JavaScript objects built and read by hand, so their types are written by hand too, in
//! `llm-stream-guard.d.ts`, and checked by `cargo xtask test --only types`
//! (`tests/types/usage.ts` against the built package). `SseParser`'s generated class refers to
//! `SseEvent` and `SseParserOptions` from the same file.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = include_str!("llm-stream-guard.d.ts");
