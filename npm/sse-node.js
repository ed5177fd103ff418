// `llm-stream-guard/sse` for Node 20+ (exports condition `node`), built as CommonJS (`sse.cjs`);
// `sse.mjs` re-exports it for `import`, so both module systems share one instance. The `.wasm` is
// read from next to this file and instantiated synchronously.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { initSync } from "./llm_stream_guard_sse.js";

export * from "./sse-api.js";

// `__dirname`: this source is bundled into CommonJS.
initSync({ module: readFileSync(join(__dirname, "llm_stream_guard_sse_bg.wasm")) });
