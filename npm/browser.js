// Entry for browsers, Web Workers, bundlers (Vite, webpack, ...) and any other ES module runtime
// with `fetch` (exports conditions `browser`, `worker`, `default`).
//
// The module is fetched from next to this file: `new URL("./…", import.meta.url)` is the pattern
// Vite and webpack 5 turn into an emitted asset and its final URL, so no bundler plugin is
// needed. A top-level await finishes loading before the importer runs, so every export works
// as soon as the import resolves; `init()` is optional.
import { initSync } from "./llm_stream_guard.js";

export * from "./api.js";

const url = wasmUrl();

/** Where the `.wasm` is: next to this file, or, from Vite's dev server, in the package folder. */
function wasmUrl() {
  const here = new URL("./llm_stream_guard_bg.wasm", import.meta.url);
  // Vite's dev server pre-bundles dependencies into `node_modules/.vite/deps/`, away from the
  // `.wasm`; it serves the package's own folder under `/node_modules/` as well. (Relative to
  // `here`, not to `import.meta.url`: build tools take only the latter form for an asset.)
  if (/\/node_modules\/\.vite\/deps(_temp_[^/]*)?\/[^/]*$/.test(here.pathname)) {
    return new URL("../../llm-stream-guard/llm_stream_guard_bg.wasm", here);
  }
  return here;
}

async function load() {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`llm-stream-guard: cannot load ${url} (HTTP ${response.status})`);
  }
  // Compile while downloading when the server sends the right MIME type (streaming compilation
  // requires it); otherwise compile the downloaded bytes.
  const type = (response.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  const module =
    type === "application/wasm" && typeof WebAssembly.compileStreaming === "function"
      ? await WebAssembly.compileStreaming(response)
      : await WebAssembly.compile(await response.arrayBuffer());
  initSync({ module });
}

const ready = load();
await ready;

/** Resolves when the module is ready (it already is once this module has been imported). */
export function init() {
  return ready;
}

export default init;
