# A worker that drives one `Guard` through continuation, hedging, learned deadlines and its
# breaker (guard-check.js), with the package's workerd entry under the name "llm-stream-guard"
# and its .wasm as a wasm module, as config.capnp has them. guard-workerd.test.mjs starts
# `workerd serve guard.capnp --socket-fd http=<fd>` on a socket it bound (port 0).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .guardCheck),
    # Outbound fetch to the mock upstream on 127.0.0.1.
    (name = "network", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", http = (), service = "main") ],
);

const guardCheck :Workerd.Worker = (
  modules = [
    (name = "guard-check.js", esModule = embed "guard-check.js"),
    (name = "llm-stream-guard", esModule = embed "node_modules/llm-stream-guard/workerd.js"),
    (name = "llm_stream_guard_bg.wasm", wasm = embed "node_modules/llm-stream-guard/llm_stream_guard_bg.wasm"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "network",
);
