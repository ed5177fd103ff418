// The package's API, re-exported by every entry: one list, so the entries cannot drift apart.
// (`cargo xtask build` bundles each entry with the wasm-bindgen glue it imports.)
export { generate, Guard, guardFetch, liveResources, Session, SseParser, stream } from "./llm_stream_guard.js";
