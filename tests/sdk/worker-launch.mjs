// The edge worker in real workerd for the SDK tests: the bundle `cargo xtask test --only sdk`
// builds (LSG_WORKER_DIR: pkg/, worker.js, workerd.capnp) run by the pinned npm workerd
// (WORKERD_BIN), the way edge-worker/src/launch.rs runs it for the Rust tests:
//
// - a private copy of the config template next to it, with an observer module in front of the
//   worker that records every promise rejection nobody handled (workerd prints none itself);
// - the listening socket bound here on 127.0.0.1 port 0 and handed to workerd as its standard
//   input (`--socket-fd http=0`), so there is no port race and readiness is one `GET /healthz`;
// - exactly the `LSG_*` variables given (inherited ones removed), each bound from the
//   environment; a provider key named by `apiKeyEnv` gets a binding of its own;
// - `stop()` kills that process by its own id, then reports what went wrong: unhandled
//   rejections the observer kept and every line workerd printed about an uncaught exception.
//
// Each test file starts the workers it needs (each a chain of providers) and stops them.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");

export const WORKER_DIR = process.env.LSG_WORKER_DIR ?? path.join(repo, "target", "edge-worker");
export const WORKERD_BIN = process.env.WORKERD_BIN ?? path.join(repo, "node_modules", ".bin", "workerd");

/** The path the observer answers with the rejections still unhandled. */
const UNHANDLED_PATH = "/__lsg-test/unhandled-rejections";

const OBSERVER_JS = `// The worker unchanged, plus a record of the promise rejections nobody handled.
import worker from "./worker.js";
export * from "./worker.js"; // the Durable Object class the shipped config names
const unhandled = new Map();
const describe = (reason) => {
  try {
    return reason instanceof Error ? reason.stack || reason.name + ": " + reason.message : String(reason);
  } catch {
    return Object.prototype.toString.call(reason);
  }
};
addEventListener("unhandledrejection", (event) => unhandled.set(event.promise, describe(event.reason)));
addEventListener("rejectionhandled", (event) => unhandled.delete(event.promise));
export default {
  ...worker,
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname === ${JSON.stringify(UNHANDLED_PATH)}) {
      const texts = [...unhandled.values()];
      unhandled.clear();
      return Response.json(texts);
    }
    return worker.fetch(request, env, ctx);
  },
};
`;

/** Whether a line workerd printed reports an error nobody handled. */
export function reportsUnhandled(line) {
  const lower = line.toLowerCase();
  return ["uncaught (in promise)", "uncaught exception", "unhandled rejection", "unhandled promise rejection"].some((p) =>
    lower.includes(p),
  );
}

let launches = 0;

/**
 * Start the worker with `env` (`LSG_*` variables and provider keys, all strings). Resolves to
 * `{ url, pid, lines, stop }`; `stop()` resolves to the list of problems seen (empty when clean).
 */
export async function startWorker(env) {
  for (const file of ["worker.js", "workerd.capnp", "pkg/llm_stream_guard.js", "pkg/llm_stream_guard_bg.wasm"]) {
    if (!existsSync(path.join(WORKER_DIR, file))) {
      throw new Error(`the edge worker is not built in ${WORKER_DIR} (missing ${file}): run \`cargo xtask worker --build\``);
    }
  }
  if (!existsSync(WORKERD_BIN)) throw new Error(`no workerd at ${WORKERD_BIN} (run \`cargo xtask setup\`)`);
  let config = readFileSync(path.join(WORKER_DIR, "workerd.capnp"), "utf8");
  const missing = Object.keys(env).filter((name) => !config.includes(`fromEnvironment = "${name}"`));
  for (const name of missing) {
    if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`${JSON.stringify(name)} cannot be a binding name`);
  }
  const insertAfter = (anchor, text) => {
    const at = config.indexOf(anchor);
    if (at < 0) throw new Error(`workerd.capnp has no ${JSON.stringify(anchor)}`);
    config = config.slice(0, at + anchor.length) + text + config.slice(at + anchor.length);
  };
  if (missing.length) insertAfter("bindings = [", missing.map((n) => `\n    (name = "${n}", fromEnvironment = "${n}"),`).join(""));
  const stem = `.workerd-sdk-${process.pid}-${++launches}`;
  insertAfter("modules = [", `\n    (name = "lsg-test-observer.js", esModule = embed "${stem}-observer.js"),`);
  const files = [path.join(WORKER_DIR, `${stem}-observer.js`), path.join(WORKER_DIR, `${stem}.capnp`)];
  writeFileSync(files[0], OBSERVER_JS);
  writeFileSync(files[1], config);
  const removeFiles = () => files.forEach((f) => rmSync(f, { force: true }));

  const listener = createServer();
  await new Promise((ready, fail) => {
    listener.once("error", fail);
    listener.listen({ port: 0, host: "127.0.0.1" }, ready);
  });
  const url = `http://127.0.0.1:${listener.address().port}`;
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LSG_")));
  const child = spawn(WORKERD_BIN, ["serve", `${stem}.capnp`, "--socket-fd", "http=0", "--verbose"], {
    cwd: WORKER_DIR,
    env: { ...childEnv, ...env },
    // The listening socket becomes workerd's standard input (fd 0).
    stdio: [listener._handle, "pipe", "pipe"],
  });
  listener.close(); // this process's copy; workerd keeps its own
  const lines = [];
  const unhandled = [];
  for (const stream of [child.stdout, child.stderr]) {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (text) => {
      const parts = (rest + text).split("\n");
      rest = parts.pop();
      for (const line of parts) {
        lines.push(line);
        if (process.env.LSG_WORKER_LOG) console.error(`[workerd ${child.pid}] ${line}`);
        if (reportsUnhandled(line)) unhandled.push(line);
      }
    });
  }
  const exited = new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));
  child.once("error", () => {});

  const deadline = Date.now() + 30_000;
  let ready = false;
  while (!ready && Date.now() < deadline && child.exitCode === null) {
    // Connections made before workerd is ready wait in the socket's backlog: this waits for
    // the answer, it does not poll on a timer.
    ready = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(deadline - Date.now()) })
      .then((r) => r.text())
      .then((t) => t === "ok", () => false);
  }
  if (!ready) {
    child.kill("SIGKILL");
    await exited;
    removeFiles();
    throw new Error(`workerd did not answer /healthz: ${lines.slice(-20).join("\n")}`);
  }

  let stopped = null;
  return {
    url,
    pid: child.pid,
    lines,
    /** Stop it (by its pid) and return the unhandled errors it reported. */
    stop() {
      stopped ??= (async () => {
        const kept = await fetch(`${url}${UNHANDLED_PATH}`, { signal: AbortSignal.timeout(5_000) })
          .then((r) => r.json())
          .catch((e) => [`the observer did not answer: ${e}`]);
        process.kill(child.pid, "SIGTERM");
        const timer = setTimeout(() => child.exitCode === null && process.kill(child.pid, "SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
        removeFiles();
        return [...kept.map((t) => `Uncaught (in promise) ${t}`), ...unhandled];
      })();
      return stopped;
    },
  };
}
