# The worker as the package's README tells workerd users to configure it: the package's workerd
# entry under the name "llm-stream-guard" and its .wasm as a wasm module. install.test.mjs
# starts `workerd serve config.capnp --socket-fd http=<fd>` on a socket it bound (port 0).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .installCheck),
    # Outbound fetch to the mock upstream on 127.0.0.1.
    (name = "network", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", http = (), service = "main") ],
);

const installCheck :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "example.js", esModule = embed "example.js"),
    (name = "report.js", esModule = embed "report.js"),
    (name = "llm-stream-guard", esModule = embed "node_modules/llm-stream-guard/workerd.js"),
    (name = "llm_stream_guard_bg.wasm", wasm = embed "node_modules/llm-stream-guard/llm_stream_guard_bg.wasm"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "network",
);
