// Entry for workerd and Cloudflare Workers (exports condition `workerd`). Both hand a `.wasm`
// import over as a compiled `WebAssembly.Module` (wrangler by default; a workerd config by
// listing the file as a `wasm` module next to this one), which is instantiated synchronously
// here; `init()` is optional.
import { initSync } from "./llm_stream_guard.js";
import module from "./llm_stream_guard_bg.wasm";

export * from "./api.js";

initSync({ module });

const ready = Promise.resolve();

/** Resolves when the module is ready (it already is once this module has been imported). */
export function init() {
  return ready;
}

export default init;
