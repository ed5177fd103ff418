// `llm-stream-guard/sse` for browsers, Web Workers and bundlers (exports conditions `browser`,
// `worker`, `default`): `SseParser` alone, with its own small `.wasm`, loaded the way the main
// entry loads its own (`browser.js`: `new URL("./…", import.meta.url)`, a top-level await).
import { initSync } from "./llm_stream_guard_sse.js";

export * from "./sse-api.js";

/** Where the `.wasm` is: next to this file, or, from Vite's dev server, in the package folder. */
function wasmUrl() {
  const here = new URL("./llm_stream_guard_sse_bg.wasm", import.meta.url);
  // Vite's dev server pre-bundles dependencies into `node_modules/.vite/deps/` (see browser.js).
  if (/\/node_modules\/\.vite\/deps(_temp_[^/]*)?\/[^/]*$/.test(here.pathname)) {
    return new URL("../../llm-stream-guard/llm_stream_guard_sse_bg.wasm", here);
  }
  return here;
}

const url = wasmUrl();
const response = await fetch(url);
if (!response.ok) {
  throw new Error(`llm-stream-guard/sse: cannot load ${url} (HTTP ${response.status})`);
}
const type = (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
initSync({
  module:
    type === "application/wasm" && typeof WebAssembly.compileStreaming === "function"
      ? await WebAssembly.compileStreaming(response)
      : await WebAssembly.compile(await response.arrayBuffer()),
});
