// A module worker that drives ONE long-lived `Guard` through what it keeps across calls
// (continuation, hedging, learned deadlines, its breaker), all inside one request: the runtime
// allows no I/O at the top level. It answers with what it saw, and judges nothing: every call's
// result or error, its events with their time since the call began, `guard.stats()` between
// calls, and how many requests the controlled provider served. guard-workerd.test.mjs checks the
// report, and the mock upstream's ledger of the same requests. A later request to /rejections
// lists the promise rejections nobody handled (see below).
//
// `GET /?mock=<the mock's URL>&id=<id>`. "primary" is the mock's controlled provider `<id>`,
// set before each phase through `/_control/<id>`; "backup" is its `continue` scenario (a fresh
// request gets the canned answer, a request to continue a cut answer gets the rest, two words
// of the cut text restated first). Both are tagged `<id>` in the ledger.
import { Guard } from "llm-stream-guard";

/**
 * Millisecond-scale settings. The hedge comes after 500 ms: above the learned first-token
 * deadline (never below 250 ms, and quick answers teach about that), so a stall once deadlines
 * are learned is cut by that deadline, not hedged; below the configured 3000 ms and below the
 * slow start of the hedging phase (1500 ms), so that start is hedged.
 */
const SETTINGS = {
  timeouts: { headersMs: 2000, firstTokenMs: 3000, idleMs: 300, streamMs: 6000, serviceMs: 10000 },
  retry: { maxRetries: 0 },
  continuation: true,
  hedge: { afterMs: 500 },
  adaptive: { minSamples: 20 },
  breaker: { failureThreshold: 3, cooldownMs: 1000 },
};

/** What primary does in each phase (`POST /_control/<id>`); the ledger records it per request. */
const PRIMARY = {
  cut: { mode: "stall-after=4", first_token_ms: 0 },
  slowStart: { mode: "ok", first_token_ms: 1500 },
  quick: { mode: "ok", first_token_ms: 0 },
  stall: { mode: "stall", first_token_ms: 0 },
  // Distinct delays mark the requests of the skipping call (there must be none) and the probe.
  whileOpen: { mode: "ok", first_token_ms: 1 },
  probe: { mode: "ok", first_token_ms: 2 },
};

/** The quick calls that teach the guard primary's deadlines (more than `minSamples`). */
const QUICK_CALLS = 30;

/** The question. The mock's `continue` scenario reads a last user message saying "continue" as a request to continue: this one must not say it. */
const MESSAGES = [{ role: "user", content: "Say hello to the test suite." }];

// Rejections with no handler, kept until a handler comes: workerd's own streams reject an
// internal promise with "Stream was cancelled." when a fetch body is cancelled while a read is
// pending (every cut, hedge and stall here) and handle it a moment later (`rejectionhandled`),
// as the edge worker's test observer notes (edge-worker/src/launch.rs). Those still here when
// /rejections is asked were never handled.
const unhandled = new Map();
addEventListener("unhandledrejection", (event) => {
  unhandled.set(event.promise, String(event.reason?.stack ?? event.reason));
});
addEventListener("rejectionhandled", (event) => {
  unhandled.delete(event.promise);
});

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === "/rejections") return Response.json([...unhandled.values()]);
    try {
      return Response.json(await drive(url.searchParams.get("mock"), url.searchParams.get("id")));
    } catch (error) {
      return new Response(String(error?.stack ?? error), { status: 500 });
    }
  },
};

/** Every phase, in order, on one guard. */
async function drive(mock, id) {
  const control = async (method, body) => {
    const response = await fetch(`${mock}/_control/${id}`, { method, body: body && JSON.stringify(body) });
    if (!response.ok) throw new Error(`${method} /_control/${id}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const set = (setting) => control("POST", setting);
  const served = async () => (await control("GET")).served;
  await control("DELETE");

  const query = `tag=${encodeURIComponent(id)}`;
  const guard = new Guard({
    ...SETTINGS,
    providers: [
      { name: "primary", url: `${mock}/scenario/controlled/${id}/v1/chat/completions?${query}`, model: "mock/primary" },
      { name: "backup", url: `${mock}/scenario/continue/v1/chat/completions?restate=2&${query}`, model: "mock/backup" },
    ],
  });
  const primary = () => guard.stats().find((s) => s.provider === "primary");
  const report = { settings: SETTINGS, quickCalls: QUICK_CALLS };

  // 1. Continuation: primary sends four pieces and goes silent; backup continues the answer.
  await set(PRIMARY.cut);
  report.continuation = await call(guard);

  // 2. Hedging: primary's first token would come after 1500 ms; backup is asked at `afterMs`.
  await set(PRIMARY.slowStart);
  report.hedge = await call(guard);

  // 3. Learned deadlines: quick answers, then a stall.
  await set(PRIMARY.quick);
  const quick = [];
  for (let i = 0; i < QUICK_CALLS; i += 1) quick.push(await call(guard));
  const learnedStats = primary();
  await set(PRIMARY.stall);
  const stall = await call(guard);
  report.learned = { quick, stats: learnedStats, stall, statsAfter: primary() };

  // 4. The breaker: one answer ends the stall's streak, then three stalls in a row open it.
  await set(PRIMARY.quick);
  const reset = await call(guard);
  const resetStats = primary();
  await set(PRIMARY.stall);
  const stalls = [];
  for (let i = 0; i < SETTINGS.breaker.failureThreshold; i += 1) {
    const stalled = await call(guard);
    stalls.push({ call: stalled, stats: primary() });
  }
  await set(PRIMARY.whileOpen);
  const servedBeforeSkip = await served();
  const skip = await call(guard);
  const servedAfterSkip = await served();
  const halfOpen = await untilHalfOpen(primary, SETTINGS.breaker.cooldownMs + 5000);
  await set(PRIMARY.probe);
  const servedBeforeProbe = await served();
  const probe = await call(guard);
  const servedAfterProbe = await served();
  report.breaker = {
    reset: { call: reset, stats: resetStats },
    stalls,
    skip: { call: skip, servedBefore: servedBeforeSkip, servedAfter: servedAfterSkip },
    halfOpen,
    probe: { call: probe, servedBefore: servedBeforeProbe, servedAfter: servedAfterProbe, stats: primary() },
  };
  guard.close();
  return report;
}

/** One `guard.generate()`: its result or error, its events (each with `atMs` since the call began) and how long it took. */
async function call(guard) {
  const began = Date.now();
  const events = [];
  const onEvent = (event) => events.push({ ...event, atMs: Date.now() - began });
  try {
    const result = await guard.generate({ messages: MESSAGES, onEvent });
    return { result, events, elapsedMs: Date.now() - began };
  } catch (error) {
    const { name, message, kind, attempts } = error ?? {};
    return { error: { name, message, kind, attempts }, events, elapsedMs: Date.now() - began };
  }
}

/**
 * Waits for the cool-down, which is time itself: until the guard's own state says the breaker
 * is half-open, read every 20 ms (as a page waits for its stats table to say so), or `limitMs`.
 * Returns that state and how long it took.
 */
async function untilHalfOpen(primary, limitMs) {
  const began = Date.now();
  for (;;) {
    const { breaker } = primary();
    if (breaker.state === "half-open" || Date.now() - began > limitMs) return { breaker, waitedMs: Date.now() - began };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
