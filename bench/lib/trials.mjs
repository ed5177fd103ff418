// Deadline precision (row 3) and cancel latency (row 4) of the library itself, against the mock
// upstream over real HTTP. Works in Node (the nodejs package) and in browsers (the web package).
// The scenarios and their parameters are the ones xtask/src/bench.rs gives the edge worker's
// providers for the same rows, so the three environments are measured on the same upstreams.

/** The mock upstream's answer when no `text` is asked for (`DEFAULT_TEXT` in mock-upstream/src/texts.rs). */
export const MOCK_TEXT = "Hello from the mock upstream. This answer streams in small pieces.";

/** Every deadline a trial does not measure (ms): far away. */
const LONG = 30_000;

/** A label unique to this run, so that the tags of its upstream requests are new to the mock's ledger. */
export const RUN = Math.random().toString(36).slice(2, 8);

/** Percentile by nearest rank (p in 0..100) of a list of numbers. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

function options(mock, scenario, query, timeouts, extra = {}) {
  return {
    providers: [{ name: "mock", url: `${mock}/scenario/${scenario}/v1/chat/completions?${query}`, model: "bench/model" }],
    messages: [{ role: "user", content: "bench" }],
    retry: { maxRetries: 0 },
    timeouts: { headersMs: LONG, firstTokenMs: LONG, idleMs: LONG, streamMs: LONG, serviceMs: LONG, ...timeouts },
    ...extra,
  };
}

/** Settle a promise into `{ ok, value | error }` without throwing. */
async function settle(promise) {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * One deadline trial; returns how late (ms) the call settled after its deadline, seen from the
 * caller: the idle deadline from the last text delivered to `onText`, the first-token and
 * service deadlines from the `generate()` call.
 */
async function deadlineTrial(lib, mock, kind, tag, deadlines) {
  let lastText = null;
  const onText = () => {
    lastText = performance.now();
  };
  const tagged = `tag=${tag}`;
  const run = async (o) => {
    const start = performance.now();
    const outcome = await settle(lib.generate(o));
    return { start, end: performance.now(), outcome };
  };
  if (kind === "idle") {
    const o = options(mock, "stall-after-chunks", `chunks=1&${tagged}`, { idleMs: deadlines.idleMs }, { onText });
    const { end, outcome } = await run(o);
    const cause = outcome.ok ? outcome.value.cause : null;
    if (!outcome.ok || !outcome.value.partial || cause?.kind !== "timeout" || cause?.phase !== "idle" || lastText === null) {
      throw new Error(`idle trial: expected a partial answer cut by the idle deadline, got ${describe(outcome)}`);
    }
    return end - lastText - deadlines.idleMs;
  }
  if (kind === "first-token") {
    const o = options(mock, "keepalive-forever", `keepalive_ms=20&${tagged}`, { firstTokenMs: deadlines.firstTokenMs });
    const { start, end, outcome } = await run(o);
    if (outcome.ok || outcome.error?.kind !== "timeout" || outcome.error?.phase !== "first-token") {
      throw new Error(`first-token trial: expected a first-token timeout, got ${describe(outcome)}`);
    }
    return end - start - deadlines.firstTokenMs;
  }
  // service: a chunk every 20 ms keeps the idle deadline from ever passing.
  const o = options(mock, "endless", `delay_ms=20&${tagged}`, { serviceMs: deadlines.serviceMs }, { onText });
  const { start, end, outcome } = await run(o);
  const cause = outcome.ok ? outcome.value.cause : null;
  if (!outcome.ok || !outcome.value.partial || cause?.kind !== "timeout") {
    throw new Error(`service trial: expected a partial answer cut by the service deadline, got ${describe(outcome)}`);
  }
  return end - start - deadlines.serviceMs;
}

function describe(outcome) {
  if (outcome.ok) {
    const v = outcome.value;
    return `a ${v.partial ? "partial" : "complete"} answer (cause ${JSON.stringify(v.cause ?? null)})`;
  }
  const e = outcome.error;
  return `${e?.name} kind=${e?.kind} phase=${e?.phase} reason=${e?.reason}: ${e?.message}`;
}

/**
 * Row 3 in one environment: for each deadline kind, `{ p50, p99, max, trials }` of how late
 * (ms) the call settled. `deadlines` is `{ idleMs, firstTokenMs, serviceMs }`. One warm-up
 * trial of each kind is not counted.
 */
export async function deadlineBench({ lib, mock, trials, deadlines, label: env }) {
  const label = `${env}-${RUN}`;
  const results = {};
  for (const kind of ["idle", "first-token", "service"]) {
    await deadlineTrial(lib, mock, kind, `${label}-dl-warm`, deadlines);
    const late = [];
    for (let i = 0; i < trials; i += 1) {
      late.push(await deadlineTrial(lib, mock, kind, `${label}-dl-${kind}-${i}`, deadlines));
    }
    results[kind] = summary(late);
  }
  await assertNothingLive(lib);
  return results;
}

export function summary(values) {
  return {
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    max: Math.max(...values),
    trials: values.length,
  };
}

/**
 * The mock's ledger records of the chat requests (POST) tagged `tag`, once every connection
 * with that tag has closed. (A browser's CORS preflight is an OPTIONS request on a connection
 * of its own, with the same tag.)
 */
export async function closedRecords(mock, tag, waitMs = 5000) {
  const response = await fetch(`${mock}/_ledger?tag=${encodeURIComponent(tag)}&wait_closed_ms=${waitMs}`);
  const body = await response.json();
  const posts = body.connections.filter((record) => record.method === "POST");
  if (body.timed_out || posts.length === 0) {
    throw new Error(`the upstream connection tagged ${tag} did not close within ${waitMs} ms`);
  }
  return posts;
}

/** This environment's clock in Unix milliseconds: monotonic, with sub-millisecond steps. */
export function clock() {
  return performance.timeOrigin + performance.now();
}

/**
 * The mock's clock minus {@link clock} (ms), from the quickest of `samples` round trips to its
 * ledger (whose answers carry `now_ms`), and that round trip's time. Clocks of different
 * processes need not agree (headless Chromium's was seconds off the system clock here), so
 * every cancel latency is taken on the mock's clock through this offset.
 */
export async function clockOffset(mock, samples = 20) {
  let best = null;
  for (let i = 0; i < samples; i += 1) {
    const before = clock();
    const response = await fetch(`${mock}/_ledger?tag=clock-probe`);
    const { now_ms: mockNow } = await response.json();
    const after = clock();
    if (!best || after - before < best.rttMs) best = { rttMs: after - before, offsetMs: mockNow - (before + after) / 2 };
  }
  return best;
}

/** {@link clockOffset} before and after `work()`; throws if the clocks drifted apart meanwhile. */
export async function onMockClock(mock, work) {
  const before = await clockOffset(mock);
  const result = await work((at) => at + before.offsetMs);
  const after = await clockOffset(mock);
  const drift = Math.abs(after.offsetMs - before.offsetMs);
  if (drift > 2 + (before.rttMs + after.rttMs) / 2) {
    throw new Error(`the clock offset to the mock moved by ${drift.toFixed(1)} ms during the trials`);
  }
  return { result, uncertaintyMs: Math.max(before.rttMs, after.rttMs) / 2 };
}

/**
 * One cancel trial: an endless stream, cancelled (by `how`) once the first text arrived;
 * returns the milliseconds from the cancel to the upstream connection's close in the mock's
 * ledger, both on the mock's clock (`toMock` converts ours).
 */
async function cancelTrial(lib, mock, how, tag, toMock) {
  let firstText;
  const arrived = new Promise((resolve) => {
    firstText = resolve;
  });
  const o = options(mock, "endless", `delay_ms=20&tag=${tag}`, {}, { onText: () => firstText() });
  let call;
  let cancel;
  let session;
  if (how === "abort") {
    const controller = new AbortController();
    o.signal = controller.signal;
    call = lib.generate(o);
    cancel = () => controller.abort();
  } else if (how === "session-cancel") {
    session = new lib.Session({ page: false });
    call = session.generate(o);
    cancel = () => session.cancel("bench");
  } else {
    // A Session watching a signal (what a disconnect watcher amounts to), aborted.
    session = new lib.Session({ page: false });
    const link = new AbortController();
    session.watch(link.signal);
    call = session.generate(o);
    cancel = () => link.abort();
  }
  const outcome = settle(call);
  await arrived;
  const cancelledAt = toMock(clock());
  cancel();
  const settled = await outcome;
  if (settled.ok || settled.error?.kind !== "aborted") {
    throw new Error(`cancel trial (${how}): expected an "aborted" rejection, got ${describe(settled)}`);
  }
  session?.close();
  session?.free();
  const [record] = await closedRecords(mock, tag);
  return record.closed_at_ms - cancelledAt;
}

/**
 * Row 4 in one environment: per way of cancelling, `{ p50, p99, max, trials }` in ms, and the
 * clock comparison's `uncertaintyMs`.
 */
export async function cancelBench({ lib, mock, trials, label: env }) {
  const label = `${env}-${RUN}`;
  const { result, uncertaintyMs } = await onMockClock(mock, async (toMock) => {
    const results = {};
    for (const how of ["abort", "session-cancel", "session-signal"]) {
      await cancelTrial(lib, mock, how, `${label}-cancel-warm-${how}`, toMock);
      const latency = [];
      for (let i = 0; i < trials; i += 1) {
        latency.push(await cancelTrial(lib, mock, how, `${label}-cancel-${how}-${i}`, toMock));
      }
      results[how] = summary(latency);
    }
    return results;
  });
  await assertNothingLive(lib);
  return { ...result, uncertaintyMs };
}

/** After the trials nothing may be left running: no timers, readers, listeners, calls. */
export async function assertNothingLive(lib) {
  // Cancelled readers and cleared timers settle within a few turns of the event loop.
  for (let i = 0; i < 50; i += 1) {
    const live = lib.liveResources();
    if (live.timers + live.readers + live.listeners + live.inFlight === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`resources still live after the trials: ${JSON.stringify(lib.liveResources())}`);
}
