// The parser-only entry's API (`llm-stream-guard/sse`): `SseParser` alone, from a module of its
// own (the crate's feature `sse-only`), re-exported by each of its environment entries.
export { SseParser } from "./llm_stream_guard_sse.js";
