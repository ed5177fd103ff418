// Entry for Node 20+ (exports condition `node`), built as CommonJS (`node.cjs`); `node.mjs`
// re-exports it for `import`, so both module systems share one instance of the module. The
// `.wasm` is read from next to this file and instantiated synchronously; `init()` is optional.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { initSync } from "./llm_stream_guard.js";

export * from "./api.js";

// `__dirname`: this source is bundled into CommonJS.
initSync({ module: readFileSync(join(__dirname, "llm_stream_guard_bg.wasm")) });

const ready = Promise.resolve();

/** Resolves when the module is ready (it already is once this module has been loaded). */
export function init() {
  return ready;
}

export default init;
