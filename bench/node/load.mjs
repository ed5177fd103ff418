// Loads the nodejs package and keeps a handle on its WebAssembly memory.
//
// The generated glue instantiates the module with `new WebAssembly.Instance(...)` and keeps the
// exports to itself; wrapping that constructor while the glue loads is the one way to see the
// instance (and its `memory`) without changing the package.
import { createRequire } from "node:module";
import path from "node:path";

/** `{ lib, memory }` for the nodejs package in `packageDir`. */
export function loadNodePackage(packageDir) {
  const require = createRequire(import.meta.url);
  const Original = WebAssembly.Instance;
  let instance = null;
  WebAssembly.Instance = function Instance(module, imports) {
    instance = new Original(module, imports);
    return instance;
  };
  WebAssembly.Instance.prototype = Original.prototype;
  let lib;
  try {
    lib = require(path.resolve(packageDir, "llm_stream_guard.js"));
  } finally {
    WebAssembly.Instance = Original;
  }
  if (!instance?.exports?.memory) throw new Error("could not reach the package's WebAssembly memory");
  return { lib, memory: instance.exports.memory };
}
