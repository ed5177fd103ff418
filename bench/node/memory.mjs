// Memory bound (row 5), in a fresh Node process: a long stream made on the fly (nothing of it is
// kept on the JavaScript side) through `SseParser` or through `generate()`, sampling the wasm
// linear memory (`memory.buffer.byteLength`) and the process RSS at every 64 KiB chunk.
//
//   node bench/node/memory.mjs '{"package": <nodejs package dir>, "mode": "parser"|"generate", "bytes": <n>}'
// prints one JSON line; a wrong count or text exits non-zero.
import { loadNodePackage } from "./load.mjs";
import { eventBlock, blockStream } from "../lib/stream.mjs";

const { package: packageDir, mode, bytes: wanted } = JSON.parse(process.argv[2]);
const { lib, memory } = loadNodePackage(packageDir);
const block = eventBlock({ targetBytes: 1 << 20, seed: 7 });
const repeats = Math.max(1, Math.round(wanted / block.bytes.length));
const source = blockStream(block, repeats);
const totalBytes = source.totalBytes;
const WARM_UP = 16 * 1024 * 1024;

let read = 0;
let wasmPeak = 0;
let wasmAfterWarmUp = null;
let rssPeak = 0;
let textBytes = 0;
/** `[bytes read, wasm bytes]` each time the wasm memory grew. */
const growth = [];
function sample() {
  const wasm = memory.buffer.byteLength;
  if (wasm > wasmPeak) {
    wasmPeak = wasm;
    growth.push([read, wasm]);
  }
  if (wasmAfterWarmUp === null && read >= WARM_UP) wasmAfterWarmUp = wasm;
  const rss = process.memoryUsage.rss();
  if (rss > rssPeak) rssPeak = rss;
}

const wasmAtStart = memory.buffer.byteLength;
const started = performance.now();
let check;
let wasmAtEndOfStream = null;
if (mode === "parser") {
  const parser = new lib.SseParser();
  let events = 0;
  for (let chunk = source.next(); chunk; chunk = source.next()) {
    events += parser.push(chunk).length;
    read += chunk.length;
    sample();
  }
  parser.end();
  parser.free();
  const expected = block.events * repeats + 3;
  check = events === expected ? null : `SseParser counted ${events} events, expected ${expected}`;
} else {
  const stream = new ReadableStream({
    pull(controller) {
      const chunk = source.next();
      if (!chunk) {
        wasmAtEndOfStream = memory.buffer.byteLength;
        controller.close();
        return;
      }
      controller.enqueue(chunk);
      read += chunk.length;
      sample();
    },
  });
  const result = await lib.generate({
    providers: [{ name: "bench", url: "http://127.0.0.1:9/v1/chat/completions", model: "openai/gpt-4o-mini" }],
    messages: [{ role: "user", content: "bench" }],
    timeouts: { headersMs: 3.6e6, firstTokenMs: 3.6e6, idleMs: 3.6e6, streamMs: 3.6e6, serviceMs: 3.6e6 },
    fetch: async () => new Response(stream, { headers: { "content-type": "text/event-stream" } }),
  });
  sample();
  const expectedLength = block.text.length * repeats;
  check =
    result.text.length === expectedLength && result.text.startsWith(block.text) && result.text.endsWith(block.text)
      ? null
      : `generate() returned ${result.text.length} chars, expected ${expectedLength} (the block's text ${repeats} times)`;
  // The answer text the call had to hold (UTF-8 bytes), to tell it apart from the guard's own memory.
  textBytes = new TextEncoder().encode(block.text).length * repeats;
}
const seconds = (performance.now() - started) / 1000;
console.log(
  JSON.stringify({
    mode,
    bytes: totalBytes,
    seconds,
    wasmAtStart,
    wasmAfterWarmUp,
    wasmPeak,
    rssPeak,
    wasmAtEndOfStream,
    textBytes,
    growth,
    error: check,
  }),
);
if (check) process.exitCode = 1;
