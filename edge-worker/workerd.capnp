# Local runs in workerd: `cargo xtask worker` builds pkg/ next to a copy of this file (under
# target/edge-worker/); the launcher (edge-worker/src/launch.rs) runs workerd on a private copy
# with a binding added for every other variable it is given (the key of each `apiKeyEnv`), on a
# socket on 127.0.0.1 that it binds itself (`--socket-fd http=0`; the address below serves a
# plain `workerd serve workerd.capnp`).
# Every binding is read from the environment of the workerd process, under the same name, but
# LSG_GUARD_DO: the Durable Object namespace through which the isolates share their guard's
# breakers (used with LSG_GUARD), stored in memory here (`localDisk` would keep it on disk). It
# names the service "main", so that another service running `.guardWorker` in the same process
# (a second isolate) shares the same object.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .guardWorker),
    # Outbound fetch: the upstreams (loopback included, for a local LLM or the mock upstream).
    (name = "upstreams", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "main") ],
);

const guardWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "pkg/llm_stream_guard.js", esModule = embed "pkg/llm_stream_guard.js"),
    (name = "pkg/llm_stream_guard_bg.wasm", wasm = embed "pkg/llm_stream_guard_bg.wasm"),
  ],
  compatibilityDate = "2025-09-01",
  compatibilityFlags = ["enable_request_signal"],
  globalOutbound = "upstreams",
  durableObjectNamespaces = [
    (className = "GuardBreakers", uniqueKey = "llm-stream-guard-breakers"),
  ],
  durableObjectStorage = (inMemory = void),
  bindings = [
    (name = "LSG_GUARD_DO", durableObjectNamespace = (className = "GuardBreakers", serviceName = "main")),
    (name = "LSG_PROVIDERS", fromEnvironment = "LSG_PROVIDERS"),
    (name = "LSG_CLIENT_TOKENS", fromEnvironment = "LSG_CLIENT_TOKENS"),
    (name = "LSG_ALLOWED_ORIGINS", fromEnvironment = "LSG_ALLOWED_ORIGINS"),
    (name = "LSG_MODELS", fromEnvironment = "LSG_MODELS"),
    (name = "LSG_TIMEOUTS", fromEnvironment = "LSG_TIMEOUTS"),
    (name = "LSG_RETRY", fromEnvironment = "LSG_RETRY"),
    (name = "LSG_HEARTBEAT_MS", fromEnvironment = "LSG_HEARTBEAT_MS"),
    (name = "LSG_MAX_BODY_BYTES", fromEnvironment = "LSG_MAX_BODY_BYTES"),
    (name = "LSG_PROBE_MS", fromEnvironment = "LSG_PROBE_MS"),
    (name = "LSG_BODY_MS", fromEnvironment = "LSG_BODY_MS"),
    (name = "LSG_FORWARD_FIELDS", fromEnvironment = "LSG_FORWARD_FIELDS"),
    (name = "LSG_MAX_TOKENS", fromEnvironment = "LSG_MAX_TOKENS"),
    (name = "LSG_GUARD", fromEnvironment = "LSG_GUARD"),
  ],
);
