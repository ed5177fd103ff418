// The benchmark suite's driver, started by `cargo xtask bench` (xtask/src/bench.rs), which
// builds the packages, starts the mock upstream and the workerd instances and passes their
// addresses here:
//
//   node bench/run.mjs <config.json>
//
// It runs every measurement (each Node one in a fresh process, the Chromium ones in one headless
// page), then prints the result table as Markdown on stdout (progress goes to stderr) and writes
// every raw figure to results.json beside the config.
// A measurement that breaks (a wrong answer, a missing event, a crash) shows as FAILED in its
// rows and makes the exit status 1; a missed target does not.
import { execFile, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { withChromium } from "./browser/chromium.mjs";
import { rows } from "./lib/rows.mjs";

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const quick = config.quick;

/** Inputs: the full run, and `--quick` (every row, small inputs). */
const SIZE = quick
  ? { decodeBytes: 1_000_000, decodeFetchBytes: 1_000_000, decodeRuns: 2, memoryBytes: 64 << 20, trials: 5, ttftTrials: 10, longRuns: 1, streams: 50, concurrencyRounds: 1, sdkTrials: 10, sdkStreams: 20, sdkRounds: 1, sdkLongRuns: 1, tailCalls: 10, tailMinSamples: 5, departureStreams: 20 }
  : { decodeBytes: 32_000_000, decodeFetchBytes: 26_000_000, decodeRuns: 7, memoryBytes: 1 << 30, trials: 50, ttftTrials: 50, longRuns: 3, streams: 1000, concurrencyRounds: 5, sdkTrials: 200, sdkStreams: 300, sdkRounds: 4, sdkLongRuns: 5, tailCalls: 100, tailMinSamples: 20, departureStreams: 200 };

function log(message) {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Run `node <script> '<json>'` in a fresh process; its last stdout line is the JSON result. */
function node(script, args) {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [path.join(BENCH, script), JSON.stringify(args)],
      { cwd: path.dirname(BENCH), maxBuffer: 16 << 20, timeout: 15 * 60_000 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`${script} ${args.what ?? args.mode ?? ""} failed: ${(stderr || error.message).trim().split("\n").slice(-3).join(" / ")}`));
          return;
        }
        resolve(JSON.parse(stdout.trim().split("\n").pop()));
      },
    );
    child.stdin?.end();
  });
}

/** `promise`, or a rejection after `ms` (the caller then closes what it was waiting on). */
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Every measurement's result (or `{ error }`), by name. */
const results = {};
// LSG_BENCH_ONLY=decode,memory (prefixes of the measurement names below) runs only those, for
// working on one row; the others then show as failed with "not run".
const only = (process.env.LSG_BENCH_ONLY ?? "").split(",").filter(Boolean);
async function measure(name, work) {
  if (only.length && !only.some((prefix) => name.startsWith(prefix)) && name !== "chromium") {
    results[name] = { error: "not run (LSG_BENCH_ONLY)" };
    return;
  }
  const started = performance.now();
  log(`${name} ...`);
  try {
    results[name] = await work();
    log(`${name}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    results[name] = { error: String(error?.message ?? error) };
    log(`${name} FAILED: ${results[name].error}`);
  }
}

/**
 * The loopback server of rows 1e/1f (node/sse-server.mjs) in its own process:
 * `{ url, bytes, stop() }`; `stop()` ends it by its own process id.
 */
function streamServer(bytes) {
  const child = spawn(process.execPath, [path.join(BENCH, "node", "sse-server.mjs"), JSON.stringify({ bytes })], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, "SIGTERM");
  };
  return new Promise((resolve, reject) => {
    let output = "";
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the stream server exited (${code}) before listening: ${output}`)));
    child.stdout.on("data", (data) => {
      output += data;
      if (output.includes("\n")) resolve({ ...JSON.parse(output.split("\n")[0]), stop });
    });
  });
}

const { mock, deadlines, workers } = config;
const pkg = config.nodePackage;

// Throughput first, while nothing else has run in this session.
await measure("decode.node", () => node("node/library.mjs", { what: "decode", package: pkg, bytes: SIZE.decodeBytes, runs: SIZE.decodeRuns }));
let server = null;
await measure("decode-fetch.server", async () => {
  server = await streamServer(SIZE.decodeFetchBytes);
  return { url: server.url, bytes: server.bytes };
});
const fetchUrl = server?.url;
try {
  await measure("decode-fetch.node", () =>
    node("node/library.mjs", { what: "decode-fetch", package: pkg, url: fetchUrl, bytes: SIZE.decodeFetchBytes, runs: SIZE.decodeRuns }),
  );
  await measure("chromium", () =>
    withChromium(config.webPackage, async (page, version) => {
      const run = async (name, fn, args) => {
        await measure(name, () => within(10 * 60_000, name, page.evaluate(fn, args)));
      };
      await run("decode.chromium", ([bytes, runs]) => window.bench.decode(bytes, runs), [SIZE.decodeBytes, SIZE.decodeRuns]);
      await run("decode-fetch.chromium", ([url, bytes, runs]) => window.bench.decodeFetch(url, bytes, runs), [
        fetchUrl,
        SIZE.decodeFetchBytes,
        SIZE.decodeRuns,
      ]);
      await run("deadlines.chromium", ([m, t, d]) => window.bench.deadlines(m, t, d), [mock, SIZE.trials, deadlines]);
      await run("cancel.chromium", ([m, t]) => window.bench.cancel(m, t), [mock, SIZE.trials]);
      return { version };
    }),
  );
} finally {
  server?.stop();
}
await measure("memory.parser", () => node("node/memory.mjs", { package: pkg, mode: "parser", bytes: SIZE.memoryBytes }));
await measure("memory.generate", () => node("node/memory.mjs", { package: pkg, mode: "generate", bytes: SIZE.memoryBytes }));
await measure("deadlines.node", () => node("node/library.mjs", { what: "deadlines", package: pkg, mock, trials: SIZE.trials, deadlines }));
for (const [kind, key, deadlineMs] of [
  ["idle", "idle", deadlines.idleMs],
  ["first-token", "firstToken", deadlines.firstTokenMs],
  ["service", "service", deadlines.serviceMs],
]) {
  await measure(`deadlines.workerd.${kind}`, () =>
    node("node/workerd.mjs", { what: "deadlines", worker: workers[key].url, kind, deadlineMs, trials: SIZE.trials }),
  );
}
await measure("cancel.node", () => node("node/library.mjs", { what: "cancel", package: pkg, mock, trials: SIZE.trials }));
await measure("cancel.workerd", () =>
  node("node/workerd.mjs", { what: "cancel", worker: workers.main.url, passthrough: workers.passthrough.url, mock, trials: SIZE.trials }),
);
await measure("departures.workerd", () =>
  node("node/workerd.mjs", { what: "departures", worker: workers.main.url, mock, streams: SIZE.departureStreams }),
);
await measure("overhead", () =>
  node("node/workerd.mjs", {
    what: "overhead",
    worker: workers.main.url,
    passthrough: workers.passthrough.url,
    mock,
    trials: SIZE.ttftTrials,
    longRuns: SIZE.longRuns,
    longN: config.longN,
  }),
);
await measure("guardfetch", () =>
  node("node/guard-fetch.mjs", {
    what: "guardfetch",
    package: pkg,
    floor: config.floorPackage,
    mock,
    trials: SIZE.sdkTrials,
    streams: SIZE.sdkStreams,
    rounds: SIZE.sdkRounds,
    longN: config.longN,
    longRuns: SIZE.sdkLongRuns,
  }),
);
for (const what of ["hedge-cost", "stalls"]) {
  await measure(`tail.${what}`, () =>
    node("node/tail.mjs", { what, package: pkg, mock, calls: SIZE.tailCalls, minSamples: SIZE.tailMinSamples }),
  );
}
// Row 7a: each side in a fresh process per round, the sides taking turns round by round, the
// median round per side (one round of one process per side moved the sides by 15 points).
// The design floor (a JavaScript driver of the core-only module) needs that module: full run.
const concurrencySides = { node: "concurrency", baseline: "concurrency-baseline", floor: "concurrency-floor" };
if (config.floorPackage) concurrencySides.core = "concurrency-core";
const concurrencyRounds = {};
for (let round = 0; round < SIZE.concurrencyRounds; round++) {
  for (const [side, what] of Object.entries(concurrencySides)) {
    await measure(`concurrency.${side}`, async () => {
      const rounds = (concurrencyRounds[side] ??= []);
      if (rounds.length < round) throw new Error(`an earlier round failed: ${results[`concurrency.${side}`]?.error}`);
      rounds.push(await node("node/library.mjs", { what, package: pkg, floor: config.floorPackage, mock, streams: SIZE.streams }));
      const middle = [...rounds].sort((a, b) => a.cpuMsPerStream - b.cpuMsPerStream)[Math.floor((rounds.length - 1) / 2)];
      return { ...middle, rounds: rounds.map((r) => r.cpuMsPerStream) };
    });
  }
}
await measure("concurrency.workerd", () =>
  node("node/workerd.mjs", {
    what: "concurrency",
    worker: workers.main.url,
    workerPid: workers.main.pid,
    passthrough: workers.passthrough.url,
    passthroughPid: workers.passthrough.pid,
    streams: SIZE.streams,
  }),
);

// Every raw figure, for whoever wants more than the table (next to the config).
writeFileSync(path.join(path.dirname(process.argv[2]), "results.json"), JSON.stringify({ config, size: SIZE, results }, null, 2));
const table = rows({ results, config, size: SIZE });
process.stdout.write(table.lines.join("\n") + "\n");
if (table.failed) process.exitCode = 1;
