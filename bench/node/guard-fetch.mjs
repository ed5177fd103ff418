// guardFetch() inside the real openai SDK (the version pinned in package.json) against the same
// SDK without it, both streaming from the mock upstream over loopback, in one fresh process:
//
//   node bench/node/guard-fetch.mjs '<json>'   with json = { package, floor, mock, trials, streams, rounds, longN, longRuns }
//
// - time to first token: from `chat.completions.create()` to the first chunk carrying text
//   (`normal`), `trials` per side after warm-up, the sides alternating call by call;
// - CPU per stream: `process.cpuUsage()` of this process over `streams` x `rounds` `normal`
//   streams per side read to the end one after another, in blocks of 25 with the sides taking
//   turns block by block, the median of the blocks (the mock runs in its own process, so only
//   the SDK's and the guard's work is counted); besides
//   the two sides, two floors with nothing of this library in them (`relayFetch` below) say what
//   any guard that watches the body from a `fetch` wrapper costs, and (with `floor`, the
//   core-only module's `web` build) the design floor: a JavaScript driver of the core's relay
//   machine as the `fetch` (../lib/core-fetch.mjs);
// - throughput: the `long` scenario (`longN` chunks) read to the end, `longRuns` per side,
//   alternating; MB/s of the upstream's bytes (counted once with a plain fetch).
//
// Every stream's text is checked: `normal` must give the mock's canned text, `long` the same text
// both ways. Prints one JSON line; a wrong answer throws (non-zero exit).
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import OpenAI from "openai";
import { loadNodePackage } from "./load.mjs";
import { makeCoreGuardFetch } from "../lib/core-fetch.mjs";
import { MOCK_TEXT, assertNothingLive, percentile, summary } from "../lib/trials.mjs";

const config = JSON.parse(process.argv[2]);
const { lib } = loadNodePackage(config.package);
const { mock, trials, streams, rounds, longN, longRuns } = config;
const MESSAGES = [{ role: "user", content: "bench" }];
let core = null;
if (config.floor) {
  core = await import(pathToFileURL(path.join(config.floor, "llm_stream_guard_floor.js")));
  core.initSync({ module: readFileSync(path.join(config.floor, "llm_stream_guard_floor_bg.wasm")) });
}

/**
 * The floors any guard written as a `fetch` wrapper stands on, with nothing of this library in it:
 * - `relay`: the upstream's body handed to the SDK through a JavaScript `ReadableStream` that
 *   reads one upstream chunk per pull and enqueues it (what watching every byte with the SDK's
 *   reading pace as the only pace costs);
 * - `watch`: the same, plus what a guard needs around it: its own `AbortController` for the
 *   upstream request, tied to the SDK's signal, and an idle timer re-armed on every read.
 */
function relayFetch({ watch }) {
  return async (input, init) => {
    let controller;
    let untie = () => {};
    if (watch) {
      controller = new AbortController();
      const signal = init?.signal;
      if (signal) {
        const abort = () => controller.abort(signal.reason);
        signal.addEventListener("abort", abort, { once: true });
        untie = () => signal.removeEventListener("abort", abort);
      }
      init = { ...init, signal: controller.signal };
    }
    const upstream = await fetch(input, init);
    if (!upstream.body) return upstream;
    const reader = upstream.body.getReader();
    let timer;
    const arm = () => {
      if (!watch) return;
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new Error("idle")), 60_000);
    };
    const done = () => {
      clearTimeout(timer);
      untie();
    };
    arm();
    const body = new ReadableStream(
      {
        async pull(c) {
          try {
            const { value, done: end } = await reader.read();
            if (end) {
              done();
              c.close();
            } else {
              arm();
              c.enqueue(value);
            }
          } catch (error) {
            done();
            c.error(error);
          }
        },
        cancel(reason) {
          done();
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status: upstream.status, statusText: upstream.statusText, headers: upstream.headers });
  };
}

/** The two clients of one scenario: the SDK alone, and the SDK with guardFetch() as its fetch. */
function clients(scenario, query = {}) {
  const options = { baseURL: `${mock}/scenario/${scenario}/v1`, apiKey: "sk-bench", maxRetries: 0, defaultQuery: query };
  return {
    plain: new OpenAI(options),
    guarded: new OpenAI({ ...options, fetch: lib.guardFetch({ retry: { maxRetries: 0 } }) }),
    relay: new OpenAI({ ...options, fetch: relayFetch({ watch: false }) }),
    watch: new OpenAI({ ...options, fetch: relayFetch({ watch: true }) }),
    core: core && new OpenAI({ ...options, fetch: makeCoreGuardFetch(core, { retry: { maxRetries: 0 } }) }),
  };
}

/** One streamed answer: `{ text, firstTokenMs, totalMs }` (times from the `create()` call). */
async function streamed(client) {
  const start = performance.now();
  const stream = await client.chat.completions.create({ model: "bench/model", messages: MESSAGES, stream: true });
  let text = "";
  let firstTokenMs = null;
  for await (const chunk of stream) {
    const content = chunk.choices[0]?.delta?.content;
    if (content) {
      firstTokenMs ??= performance.now() - start;
      text += content;
    }
  }
  return { text, firstTokenMs, totalMs: performance.now() - start };
}

function expect(text, wanted, what) {
  if (text !== wanted) {
    throw new Error(`${what}: got ${text.length} chars (${JSON.stringify(text.slice(0, 60))}…), expected ${wanted.length}`);
  }
}

const SIDES = ["plain", "guarded"];
const order = (i) => (i % 2 ? [...SIDES].reverse() : SIDES);

// Time to first token.
const normal = clients("normal", { tag: "bench-guard-fetch" });
for (let i = 0; i < 20; i += 1) {
  for (const side of SIDES) expect((await streamed(normal[side])).text, MOCK_TEXT, `warm-up (${side})`);
}
const ttft = { plain: [], guarded: [] };
for (let i = 0; i < trials; i += 1) {
  for (const side of order(i)) {
    const { text, firstTokenMs } = await streamed(normal[side]);
    expect(text, MOCK_TEXT, `time-to-first-token trial ${i} (${side})`);
    ttft[side].push(firstTokenMs);
  }
}
// The difference per pair of neighbouring calls, so that a slow moment weighs on both sides.
const added = ttft.guarded.map((ms, i) => ms - ttft.plain[i]);

// CPU per stream, the floors beside the two sides.
const CPU_SIDES = ["plain", "guarded", "relay", "watch", ...(core ? ["core"] : [])];
for (const side of CPU_SIDES.slice(2)) {
  for (let i = 0; i < 20; i += 1) expect((await streamed(normal[side])).text, MOCK_TEXT, `warm-up (${side})`);
}
const cpu = { plain: [], guarded: [], relay: [], watch: [], core: [] };
// The sides take turns in blocks of `BLOCK` streams (the order rotating from one turn to the
// next), so that a slow moment of the machine falls on every side alike; what one block leaves
// to finish after its last stream (a socket's close) lands in the next at most once per block.
const BLOCK = Math.min(25, streams * rounds);
const turns = Math.max(1, Math.round((streams * rounds) / BLOCK));
for (let turn = 0; turn < turns; turn += 1) {
  const rotated = CPU_SIDES.map((_, i) => CPU_SIDES[(i + turn) % CPU_SIDES.length]);
  for (const side of rotated) {
    const before = process.cpuUsage();
    for (let i = 0; i < BLOCK; i += 1) {
      expect((await streamed(normal[side])).text, MOCK_TEXT, `CPU turn ${turn} stream ${i} (${side})`);
    }
    const used = process.cpuUsage(before);
    cpu[side].push((used.user + used.system) / 1000 / BLOCK);
  }
}

// Throughput on a long answer.
const longUrl = `${mock}/scenario/long/v1/chat/completions?n=${longN}&tag=bench-guard-fetch-long`;
const raw = await fetch(longUrl, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ model: "bench/model", messages: MESSAGES, stream: true }),
});
const bytes = (await raw.arrayBuffer()).byteLength;
const long = clients("long", { n: String(longN), tag: "bench-guard-fetch-long" });
const longText = (await streamed(long.plain)).text;
if (longText.length === 0) throw new Error("the long answer had no text");
expect((await streamed(long.guarded)).text, longText, "long warm-up (guarded)");
const longMs = { plain: [], guarded: [] };
for (let run = 0; run < longRuns; run += 1) {
  for (const side of order(run)) {
    const { text, totalMs } = await streamed(long[side]);
    expect(text, longText, `long run ${run} (${side})`);
    longMs[side].push(totalMs);
  }
}
const mbps = (ms) => bytes / 1e6 / (ms / 1000);

await assertNothingLive(lib);

console.log(
  JSON.stringify({
    ttft: { plain: summary(ttft.plain), guarded: summary(ttft.guarded), added: summary(added) },
    cpu: {
      block: BLOCK,
      turns,
      plain: percentile(cpu.plain, 50),
      guarded: percentile(cpu.guarded, 50),
      relay: percentile(cpu.relay, 50),
      watch: percentile(cpu.watch, 50),
      core: core ? percentile(cpu.core, 50) : null,
      perBlock: cpu,
    },
    long: {
      bytes,
      chunks: longN,
      runs: longRuns,
      plain: mbps(percentile(longMs.plain, 50)),
      guarded: mbps(percentile(longMs.guarded, 50)),
    },
  }),
);
