// The edge worker's module entry: load the wasm module that workerd (or Cloudflare) hands over,
// then let the Rust crate handle every request (see src/web/worker/).
import { initSync, handleRequest } from "./pkg/llm_stream_guard.js";
import wasmModule from "./pkg/llm_stream_guard_bg.wasm";

initSync({ module: wasmModule });

export default {
  fetch(request, env, ctx) {
    return handleRequest(request, env, ctx);
  },
};
