# The plain pass-through proxy of bench/workerd/passthrough.js, for `cargo xtask bench`: the
# same workerd, the same loopback network, no guard. `UPSTREAMS` comes from the environment.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .passthrough),
    (name = "upstreams", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8788", http = (), service = "main") ],
);

const passthrough :Workerd.Worker = (
  modules = [ (name = "passthrough.js", esModule = embed "passthrough.js") ],
  compatibilityDate = "2025-09-01",
  compatibilityFlags = ["enable_request_signal"],
  globalOutbound = "upstreams",
  bindings = [ (name = "UPSTREAMS", fromEnvironment = "UPSTREAMS") ],
);
