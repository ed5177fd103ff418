// `llm-stream-guard/sse` for workerd and Cloudflare Workers (exports condition `workerd`): the
// `.wasm` import is a compiled `WebAssembly.Module` there (see workerd.js), instantiated at once.
import { initSync } from "./llm_stream_guard_sse.js";
import module from "./llm_stream_guard_sse_bg.wasm";

export * from "./sse-api.js";

initSync({ module });
