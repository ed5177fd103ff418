// The library in Node (the nodejs package), one measurement per fresh process:
//
//   node bench/node/library.mjs '<json>'   with json = { what, package, ... }:
//
// - decode { bytes, runs }: rows 1a-1d (see ../lib/decode.mjs)
// - decode-fetch { url, bytes, runs }: row 1e, the stream the loopback server at `url` sends
//   (sse-server.mjs, made from `bytes` with the same seed) read through Node's own fetch
// - deadlines { mock, trials, deadlines }: row 3 (see ../lib/trials.mjs)
// - cancel { mock, trials }: row 4
// - concurrency { mock, streams }: `streams` concurrent `generate()` calls against the mock's
//   `normal` scenario, each checked for the exact text; wall time and this process's CPU.
// - concurrency-baseline { mock, streams }: the same with fetch + eventsource-parser + JSON.parse.
// - concurrency-floor { mock, streams }: the baseline with what any guard adds before it decides
//   anything: its own `AbortController` for the request and an idle timer re-armed per read.
// - concurrency-core { mock, streams, floor }: the same calls as `concurrency`, run by a
//   JavaScript driver of the core-only module in `floor` (../lib/core-driver.mjs).
//
// Prints one JSON line; a wrong answer throws (non-zero exit).
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { createParser } from "eventsource-parser";
import { loadNodePackage } from "./load.mjs";
import { stream } from "../lib/stream.mjs";
import { decodeBench, decodeFetchBench } from "../lib/decode.mjs";
import { makeCoreGenerate } from "../lib/core-driver.mjs";
import { deadlineBench, cancelBench, assertNothingLive, MOCK_TEXT } from "../lib/trials.mjs";

const config = JSON.parse(process.argv[2]);
const { lib } = loadNodePackage(config.package);

function chatUrl(mock) {
  return `${mock}/scenario/normal/v1/chat/completions?tag=concurrency`;
}

/**
 * The JavaScript baseline for one stream: fetch, eventsource-parser, JSON.parse, concatenation.
 * With `watch`, the floor of any guard: the request gets an `AbortController`'s signal and an idle
 * timer (never due here) is re-armed on every read and cleared at the end.
 */
async function baselineCall(mock, i, watch = false) {
  const controller = watch ? new AbortController() : null;
  let timer;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error("idle")), 60_000);
  };
  if (watch) arm();
  const response = await fetch(chatUrl(mock), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "bench/model", messages: [{ role: "user", content: `stream ${i}` }], stream: true }),
    signal: controller?.signal,
  });
  const decoder = new TextDecoder();
  let text = "";
  const parser = createParser({
    onEvent(event) {
      if (event.data === "[DONE]") return;
      text += JSON.parse(event.data).choices?.[0]?.delta?.content ?? "";
    },
  });
  for await (const chunk of response.body) {
    if (watch) arm();
    parser.feed(decoder.decode(chunk, { stream: true }));
  }
  clearTimeout(timer);
  return { text, partial: false };
}

function callOptions(mock, i) {
  return {
    providers: [{ name: "mock", url: chatUrl(mock), model: "bench/model" }],
    messages: [{ role: "user", content: `stream ${i}` }],
    retry: { maxRetries: 0 },
  };
}

function libraryCall(mock, i) {
  return lib.generate(callOptions(mock, i));
}

/** The core-only module (its `web` build, instantiated here) and a JavaScript driver of it. */
async function coreGenerate(floorDir) {
  const core = await import(pathToFileURL(path.join(floorDir, "llm_stream_guard_floor.js")));
  core.initSync({ module: readFileSync(path.join(floorDir, "llm_stream_guard_floor_bg.wasm")) });
  return makeCoreGenerate(core);
}

/** `streams` calls at once; every answer must be the mock's exact text. */
async function concurrency(mock, streams, call) {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const results = await Promise.allSettled(Array.from({ length: streams }, (_, i) => call(mock, i)));
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const wrong = results.filter((r) => r.status !== "fulfilled" || r.value.text !== MOCK_TEXT || r.value.partial);
  if (wrong.length) {
    const first = wrong[0];
    const detail =
      first.status === "fulfilled" ? JSON.stringify(first.value.text) : `${first.reason?.kind ?? ""} ${first.reason?.message}`;
    throw new Error(`${wrong.length} of ${streams} streams did not return the exact text (first: ${detail})`);
  }
  return { streams, wallMs, cpuMsPerStream: (cpu.user + cpu.system) / 1000 / streams };
}

let result;
switch (config.what) {
  case "decode":
    result = await decodeBench({ lib, createParser, input: stream({ targetBytes: config.bytes }), runs: config.runs });
    break;
  case "decode-fetch":
    result = await decodeFetchBench({ lib, createParser, url: config.url, input: stream({ targetBytes: config.bytes }), runs: config.runs });
    await assertNothingLive(lib);
    break;
  case "deadlines":
    result = await deadlineBench({ lib, mock: config.mock, trials: config.trials, deadlines: config.deadlines, label: "node" });
    break;
  case "cancel":
    result = await cancelBench({ lib, mock: config.mock, trials: config.trials, label: "node" });
    break;
  case "concurrency":
    result = await concurrency(config.mock, config.streams, libraryCall);
    await assertNothingLive(lib);
    break;
  case "concurrency-baseline":
    result = await concurrency(config.mock, config.streams, (mock, i) => baselineCall(mock, i));
    break;
  case "concurrency-core": {
    const generate = await coreGenerate(config.floor);
    result = await concurrency(config.mock, config.streams, (mock, i) => generate(callOptions(mock, i)));
    break;
  }
  case "concurrency-floor":
    result = await concurrency(config.mock, config.streams, (mock, i) => baselineCall(mock, i, true));
    break;
  default:
    throw new Error(`unknown measurement ${config.what}`);
}
console.log(JSON.stringify(result));
