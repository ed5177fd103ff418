// Decode throughput (row 1): the library against the usual JavaScript way, over the same bytes.
// Works in Node (the nodejs package) and in browsers (the web package): `lib` is the package's
// exports, `createParser` is eventsource-parser's.

/** Size of every read, as a network stack delivers them. */
export const CHUNK = 64 * 1024;

/** A `ReadableStream` handing out `bytes` in `CHUNK`-sized views. */
export function chunkedStream(bytes, chunkSize = CHUNK) {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const end = Math.min(offset + chunkSize, bytes.length);
      controller.enqueue(bytes.subarray(offset, end));
      offset = end;
    },
  });
}

/** A `fetch` that answers every request with `bytes` as an SSE body, with no network. */
export function fetchOf(bytes) {
  return async () =>
    new Response(chunkedStream(bytes), { headers: { "content-type": "text/event-stream" } });
}

const HOUR = 3_600_000;
const GENEROUS = { headersMs: HOUR, firstTokenMs: HOUR, idleMs: HOUR, streamMs: HOUR, serviceMs: HOUR };

/** `generate()` over `bytes` through an injected fetch; returns the answer text. */
export async function ours(lib, bytes) {
  const result = await lib.generate({
    providers: [{ name: "bench", url: "http://127.0.0.1:9/v1/chat/completions", model: "openai/gpt-4o-mini" }],
    messages: [{ role: "user", content: "bench" }],
    timeouts: GENEROUS,
    fetch: fetchOf(bytes),
  });
  if (result.partial) throw new Error(`generate() returned a partial answer: ${result.cause?.message}`);
  return result.text;
}

/**
 * The baseline: the same `Response` body (or, given a `Response`, that one's) read with a reader, decoded with `TextDecoder`,
 * parsed by eventsource-parser, every event `JSON.parse`d and its content concatenated.
 */
export async function baseline(createParser, bytes) {
  const response = bytes instanceof Response ? bytes : await fetchOf(bytes)();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let done = false;
  const parser = createParser({
    onEvent(event) {
      if (event.data === "[DONE]") {
        done = true;
        return;
      }
      const chunk = JSON.parse(event.data);
      const content = chunk.choices?.[0]?.delta?.content;
      if (content) text += content;
    },
  });
  while (!done) {
    const { value, done: end } = await reader.read();
    if (end) break;
    parser.feed(decoder.decode(value, { stream: true }));
  }
  if (done) await reader.cancel();
  return text;
}

/** `generate()` over the stream at `url` through the environment's own `fetch`; returns the text. */
export async function oursOverFetch(lib, url) {
  const result = await lib.generate({
    providers: [{ name: "bench", url, model: "openai/gpt-4o-mini" }],
    messages: [{ role: "user", content: "bench" }],
    timeouts: GENEROUS,
    retry: { maxRetries: 0 },
  });
  if (result.partial) throw new Error(`generate() returned a partial answer: ${result.cause?.message}`);
  return result.text;
}

/**
 * The baseline over the same `fetch`: the same POST `generate()` sends (a JSON body), the body
 * read with a reader, decoded with `TextDecoder`, parsed by eventsource-parser, every event
 * `JSON.parse`d and its content concatenated.
 */
export async function baselineOverFetch(createParser, url) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "bench" }], stream: true }),
  });
  if (!response.ok) throw new Error(`the stream server answered ${response.status}`);
  return baseline(createParser, response);
}

/** `SseParser` alone: push `CHUNK`-sized pieces, count the events. */
export function sseParserOnly(lib, bytes) {
  const parser = new lib.SseParser();
  let events = 0;
  for (let offset = 0; offset < bytes.length; offset += CHUNK) {
    events += parser.push(bytes.subarray(offset, offset + CHUNK)).length;
  }
  parser.end();
  parser.free();
  return events;
}

/** eventsource-parser alone (with the `TextDecoder` it needs): the same pieces, events counted. */
export function eventsourceParserOnly(createParser, bytes) {
  let events = 0;
  const parser = createParser({ onEvent() { events += 1; } });
  const decoder = new TextDecoder();
  for (let offset = 0; offset < bytes.length; offset += CHUNK) {
    parser.feed(decoder.decode(bytes.subarray(offset, offset + CHUNK), { stream: true }));
  }
  return events;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Time `a` and `b` (each `() => Promise<result>`) over the same input, alternating which goes
 * first, after one warm-up each; `check(result)` must hold for every run. Returns the median
 * milliseconds of each and every run's figures.
 */
async function race(a, b, runs, check) {
  check(await a(), "warm-up a");
  check(await b(), "warm-up b");
  const times = { a: [], b: [] };
  for (let run = 0; run < runs; run += 1) {
    const order = run % 2 ? ["b", "a"] : ["a", "b"];
    for (const which of order) {
      const fn = which === "a" ? a : b;
      const start = performance.now();
      const result = await fn();
      times[which].push(performance.now() - start);
      check(result, `run ${run} ${which}`);
    }
  }
  return { a: median(times.a), b: median(times.b), runs: times };
}

/**
 * Row 1 in one environment: `{ bytes, generate: {ours, baseline}, parser: {ours, baseline} }`,
 * each figure in MB/s (10^6 bytes per second) from the median time of `runs` runs.
 */
export async function decodeBench({ lib, createParser, input, runs }) {
  const { bytes, text, events } = input;
  const mbps = (ms) => bytes.length / 1e6 / (ms / 1000);
  const sameText = (result, what) => {
    if (result !== text) {
      throw new Error(`${what}: the decoded text differs from the stream's (${result.length} vs ${text.length} chars)`);
    }
  };
  const sameCount = (result, what) => {
    if (result !== events) throw new Error(`${what}: ${result} events, expected ${events}`);
  };
  const whole = await race(() => ours(lib, bytes), () => baseline(createParser, bytes), runs, sameText);
  const alone = await race(
    async () => sseParserOnly(lib, bytes),
    async () => eventsourceParserOnly(createParser, bytes),
    runs,
    sameCount,
  );
  return {
    bytes: bytes.length,
    runs,
    generate: { ours: mbps(whole.a), baseline: mbps(whole.b) },
    parser: { ours: mbps(alone.a), baseline: mbps(alone.b) },
  };
}

/**
 * Rows 1e/1f in one environment: `generate()` against the baseline, both reading the stream the
 * loopback server at `url` sends (`input`, made from the same seed, is what it carries) through
 * the environment's real `fetch`: `{ bytes, runs, ours, baseline }` in MB/s from the median time
 * of `runs` runs each, alternating.
 */
export async function decodeFetchBench({ lib, createParser, url, input, runs }) {
  const { bytes, text } = input;
  const mbps = (ms) => bytes.length / 1e6 / (ms / 1000);
  const sameText = (result, what) => {
    if (result !== text) {
      throw new Error(`${what}: the text read over fetch differs from the stream's (${result.length} vs ${text.length} chars)`);
    }
  };
  const times = await race(() => oursOverFetch(lib, url), () => baselineOverFetch(createParser, url), runs, sameText);
  return { bytes: bytes.length, runs, ours: mbps(times.a), baseline: mbps(times.b) };
}
