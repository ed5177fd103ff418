//! Hand-written TypeScript types for the published API (pulled into the generated `.d.ts`).
//!
//! `generate` is exported with `skip_typescript`: its options, result, events and error are
//! plain JavaScript objects, so their types are written by hand, with their documentation, in
//! `llm-stream-guard.d.ts`. Two checks keep them true: `core::contract`'s native test compares
//! every interface with the Rust type whose serialized form JavaScript receives (field names,
//! optionality, types; `cargo test`), and `cargo xtask test --only types` compiles
//! `tests/types/usage.ts` against the built package. `SseParser`'s generated class refers to
//! `SseEvent` and `SseParserOptions` from the same file.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS: &'static str = include_str!("llm-stream-guard.d.ts");
