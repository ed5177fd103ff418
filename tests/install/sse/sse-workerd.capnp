# `llm-stream-guard/sse` as the package's workerd entry configures: the entry under its package
# name and its own .wasm as a wasm module beside it. install.test.mjs starts
# `workerd serve sse-workerd.capnp --socket-fd http=<fd>` on a socket it bound (port 0).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .sseCheck) ],
  sockets = [ (name = "http", http = (), service = "main") ],
);

const sseCheck :Workerd.Worker = (
  modules = [
    (name = "sse-worker.js", esModule = embed "sse-worker.js"),
    (name = "stream.js", esModule = embed "stream.js"),
    (name = "llm-stream-guard/sse", esModule = embed "node_modules/llm-stream-guard/sse-workerd.js"),
    (name = "llm-stream-guard/llm_stream_guard_sse_bg.wasm", wasm = embed "node_modules/llm-stream-guard/llm_stream_guard_sse_bg.wasm"),
  ],
  compatibilityDate = "2025-09-01",
);
