// What a `Guard`'s hedging and learned deadlines cost and save on a provider's slow tail (rows
// 9a-9c), against the mock upstream over loopback, in one fresh process:
//
//   node bench/node/tail.mjs '<json>'   with json = { what, package, mock, calls, minSamples }
//
// The first provider is the mock's `controlled/<id>`: before each call its first-token delay is
// set to the next value of a fixed, seeded sequence (lognormal, `TTFT` below), and on the calls
// a fixed, seeded pattern picks (one in each ten) its mode is `stall` (SSE headers, then
// nothing). The fallback is the mock's `normal` with a fixed first-token delay. Every side of a
// comparison gets the same sequence and the same stalls; the sides run at the same time, each
// with a provider id of its own and one call after another.
// Each guard first makes `minSamples` + 5 healthy calls (not measured) so that it has learned.
//
// - hedge-cost (row 9a): a provider that never stalls; a guard hedging at `afterMs: "auto"` (the
//   first provider's learned p95 time to first token) against one that does not. The upstream
//   requests (those the mock's ledger holds: a hedge released at once may never reach it), and
//   per call the hedges, which attempt won, the completion chunks the losing attempt delivered before it was released (a
//   counting `fetch` between the guard and the network), and the prompt tokens re-sent.
// - stalls (rows 9b, 9c): the provider that stalls on one call in ten; three guards: hedging
//   with learned deadlines, learned deadlines alone, and the configured deadlines alone
//   (`adaptive: false`).
//
// Time to first token is from the `generate()` call to its first `onText`; time to answer to
// the call resolving. Every answer must be the mock's exact text, complete, from the provider the
// stall pattern implies. Prints one JSON line; a wrong answer or an unhandled rejection fails
// the process (non-zero exit).
import { loadNodePackage } from "./load.mjs";
import { MOCK_TEXT, RUN, assertNothingLive, closedRecords } from "../lib/trials.mjs";
import { random } from "../lib/stream.mjs";

/** Ends the process as failed, the reason on the last line of stderr (what bench/run.mjs shows). */
function fail(what, error) {
  process.stderr.write(`${error?.stack ?? ""}\n${what}: ${error?.message ?? error}\n`);
  process.exit(1);
}
// An unhandled rejection is a bug in the guard or in this file: it fails the measurement at once.
process.on("unhandledRejection", (reason) => fail("unhandled rejection", reason));

const config = JSON.parse(process.argv[2]);
const { lib } = loadNodePackage(config.package);
const { what, mock, calls, minSamples } = config;

/** The first provider's time to first token when it answers: lognormal, ms. */
const TTFT = { medianMs: 40, sigma: 0.6 };
/** The fallback's time to first token (the mock's `normal`, `first_delay_ms`). */
const FALLBACK_TTFT_MS = 50;
/** One call in this many stalls (rows 9b, 9c). */
const STALL_EVERY = 10;
/** The configured deadlines of every guard here (learned ones never exceed them). */
const TIMEOUTS = { headersMs: 1000, firstTokenMs: 1000, idleMs: 1000, streamMs: 5000, serviceMs: 10_000 };
const MESSAGES = [{ role: "user", content: "How long until the first token?" }];

if (calls % STALL_EVERY !== 0) throw new Error(`calls (${calls}) must be a multiple of ${STALL_EVERY}`);


/**
 * The workload: `{ ttftMs, stall }` per call, `warmUp` healthy calls first. The delays are whole
 * milliseconds (the mock's unit); the stalls one per block of ten, at a seeded place.
 */
function workload(warmUp, measured, stalls) {
  const next = random(0x9a9b9c);
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const ttft = () => Math.max(1, Math.round(TTFT.medianMs * Math.exp(TTFT.sigma * normal())));
  const warm = Array.from({ length: warmUp }, () => ({ ttftMs: ttft(), stall: false }));
  const calls = Array.from({ length: measured }, () => ({ ttftMs: ttft(), stall: false }));
  if (stalls) {
    for (let block = 0; block < measured; block += STALL_EVERY) {
      calls[block + Math.floor(next() * STALL_EVERY)].stall = true;
    }
  }
  return { warm, calls };
}

/**
 * A `fetch` that notes every request it sends and counts the answer text chunks (SSE `data:`
 * lines with a non-empty `delta.content`) the guard has read from each response. The counting
 * happens as the guard pulls, so a response released unread counts nothing it did not deliver.
 */
function countingFetch(requests) {
  return async (input, init) => {
    const request = { url: String(input?.url ?? input), contentChunks: 0 };
    requests.push(request);
    const response = await fetch(input, init);
    if (!response.body) return response;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    const body = new ReadableStream({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        pending += decoder.decode(value, { stream: true });
        const lines = pending.split("\n");
        pending = lines.pop();
        for (const line of lines) {
          const data = line.startsWith("data:") ? line.slice(5).trim() : "";
          if (data && data !== "[DONE]" && JSON.parse(data).choices?.[0]?.delta?.content) request.contentChunks += 1;
        }
        controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

const sum = (values) => values.reduce((a, b) => a + b, 0);

/** Sets the first provider `id` for its next request. */
async function control(id, setting) {
  const response = await fetch(`${mock}/_control/${id}`, { method: "POST", body: JSON.stringify(setting) });
  if (!response.ok) throw new Error(`/_control/${id}: ${response.status} ${await response.text()}`);
}

/** One side of a comparison: a guard over its own controlled provider and the fallback. */
function side(name, options) {
  const id = `tail-${RUN}-${what}-${name}`;
  const requests = [];
  const urls = {
    primary: `${mock}/scenario/controlled/${id}/v1/chat/completions?tag=${id}`,
    fallback: `${mock}/scenario/normal/v1/chat/completions?first_delay_ms=${FALLBACK_TTFT_MS}&tag=${id}`,
  };
  const guard = new lib.Guard({
    providers: [
      { name: "primary", url: urls.primary, model: "bench/primary" },
      { name: "fallback", url: urls.fallback, model: "bench/fallback" },
    ],
    timeouts: TIMEOUTS,
    retry: { maxRetries: 0 },
    fetch: countingFetch(requests),
    ...options,
  });
  return { name, id, urls, guard, requests, calls: [] };
}

/**
 * One call of side `s` with the provider set as `step` says; checks the answer and returns what
 * the call cost and how long it took.
 */
async function call(s, step, label) {
  await control(s.id, { first_token_ms: step.ttftMs, mode: step.stall ? "stall" : "ok" });
  const sentBefore = s.requests.length;
  const hedges = [];
  let firstTextAt = null;
  const start = performance.now();
  const result = await s.guard.generate({
    messages: MESSAGES,
    onText: () => {
      firstTextAt ??= performance.now();
    },
    onEvent: (event) => {
      if (event.type === "hedge") hedges.push(event.afterMs);
    },
  });
  const answerMs = performance.now() - start;
  const sent = s.requests.slice(sentBefore);
  const where = `${label}, side ${s.name}${step.stall ? " (a stall)" : ""}`;
  if (result.text !== MOCK_TEXT || result.partial || !result.usage?.prompt_tokens) {
    const got = `${JSON.stringify(result.text.slice(0, 60))} (partial ${result.partial}, usage ${JSON.stringify(result.usage)})`;
    throw new Error(`${where}: got ${got}, expected the mock's text and usage`);
  }
  const attempts = result.attempts.filter((a) => a.outcome !== "skipped");
  const complete = attempts.filter((a) => a.outcome === "complete");
  if (complete.length !== 1 || complete[0].provider !== result.provider || attempts.length !== sent.length) {
    throw new Error(`${where}: attempts ${JSON.stringify(result.attempts)} for ${sent.length} requests sent`);
  }
  if (step.stall && result.provider !== "fallback") {
    throw new Error(`${where}: a stalled first provider answered (${JSON.stringify(result.attempts)})`);
  }
  const answering = sent.filter((r) => r.url === s.urls[result.provider]);
  if (answering.length !== 1 || answering[0].contentChunks === 0) {
    throw new Error(`${where}: ${answering.length} requests to ${result.provider}, the one that answered`);
  }
  const losers = attempts.filter((a) => a.outcome !== "complete").map((a) => a.outcome);
  const expected = hedges.length ? ["aborted"] : step.stall ? ["timeout"] : [];
  if (losers.join() !== expected.join() || hedges.length > 1 || (hedges.length && attempts.length !== 2)) {
    throw new Error(`${where}: ${hedges.length} hedges and attempts ${JSON.stringify(result.attempts)}`);
  }
  return {
    stall: step.stall,
    firstTokenMs: firstTextAt - start,
    answerMs,
    sent: sent.length,
    hedgeAfterMs: hedges[0] ?? null,
    winner: result.provider,
    // Text the attempts that did not answer delivered before they were released: the waste.
    losingContentChunks: sum(sent.filter((r) => r !== answering[0]).map((r) => r.contentChunks)),
    promptTokens: result.usage.prompt_tokens,
  };
}

/**
 * Runs every side over the same workload, the sides at the same time (each one call after
 * another), so that a slow moment of the machine weighs on all of them; returns each side's
 * figures.
 */
async function run(sides, { warm, calls: steps }) {
  await Promise.all(
    sides.map(async (s) => {
      for (const [i, step] of warm.entries()) await call(s, step, `warm-up call ${i}`);
      s.warmUpReceived = (await closedRecords(mock, s.id)).length;
      for (const [i, step] of steps.entries()) s.calls.push(await call(s, step, `call ${i}`));
    }),
  );
  const out = {};
  for (const s of sides) {
    const stats = s.guard.stats()[0];
    s.guard.close();
    s.guard.free();
    // What the upstream saw: every connection closed, and no request the guard did not send.
    const received = (await closedRecords(mock, s.id)).length - s.warmUpReceived;
    const sent = sum(s.calls.map((c) => c.sent));
    if (received > sent || received < s.calls.length) {
      throw new Error(`side ${s.name}: the mock's ledger holds ${received} requests of the measured calls, the guard sent ${sent}`);
    }
    await fetch(`${mock}/_control/${s.id}`, { method: "DELETE" });
    out[s.name] = { ...summarise(s.calls, stats), requests: received, sent };
  }
  await assertNothingLive(lib);
  return out;
}

/** Nearest-rank percentiles (p in 0..100). */
function quantiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p) => sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
  return { p50: at(50), p95: at(95), p99: at(99), max: sorted[sorted.length - 1] };
}

/** One side's figures over its measured calls, and what its guard had learned of the first provider. */
function summarise(calls, stats) {
  const hedged = calls.filter((c) => c.hedgeAfterMs !== null);
  return {
    calls: calls.length,
    firstTokenMs: quantiles(calls.map((c) => c.firstTokenMs)),
    answerMs: quantiles(calls.map((c) => c.answerMs)),
    stalledFirstTokenMs: calls.some((c) => c.stall) ? quantiles(calls.filter((c) => c.stall).map((c) => c.firstTokenMs)) : null,
    hedges: hedged.length,
    hedgesWon: hedged.filter((c) => c.winner === "fallback").length,
    hedgeAfterMs: hedged.length ? quantiles(hedged.map((c) => c.hedgeAfterMs)) : null,
    losingContentChunks: sum(calls.map((c) => c.losingContentChunks)),
    promptTokensPerRequest: calls[0].promptTokens,
    learned: { samples: stats.samples, firstTokenMs: stats.firstTokenMs ?? null, deadlines: stats.learned },
  };
}

/** The measurement `what` names. */
async function measure() {
  const adaptive = { minSamples };
  const warmUp = minSamples + 5;
  const setting = { ttft: TTFT, fallbackTtftMs: FALLBACK_TTFT_MS, timeouts: TIMEOUTS, minSamples, warmUp };
  if (what === "hedge-cost") {
    const sides = [side("hedged", { adaptive, hedge: { afterMs: "auto" } }), side("plain", { adaptive })];
    return { ...setting, sides: await run(sides, workload(warmUp, calls, false)) };
  }
  if (what === "stalls") {
    const sides = [
      side("hedged", { adaptive, hedge: { afterMs: "auto" } }),
      side("adaptive", { adaptive }),
      side("fixed", { adaptive: false }),
    ];
    return { ...setting, stallEvery: STALL_EVERY, sides: await run(sides, workload(warmUp, calls, true)) };
  }
  throw new Error(`unknown measurement ${JSON.stringify(what)}`);
}

await measure().then((result) => console.log(JSON.stringify(result)), (error) => fail(what, error));
