// The edge worker in workerd, measured from a Node client (one measurement per process):
//
//   node bench/node/workerd.mjs '<json>'   with json = { what, ... } (below)
//
// - deadlines { worker, kind: idle|first-token|service, deadlineMs, trials }: the worker relays
//   its guard events (`X-LSG-Events: 1`); lateness is measured at the client: idle from the
//   last text chunk's arrival to the `timeout` event's arrival, first-token and service from
//   the request's start (so it also holds the client-to-worker hop); first-token to the worker's
//   504 (the status is held until progress or a heartbeat, so no event stream carries it). The
//   guard's own figure (`elapsedMs` of its `timeout` event, minus `firstTokenMs` for idle) is
//   reported beside it where an event carries it.
// - cancel { worker, passthrough, mock, trials }: the client drops its connection after the
//   first text; the time from the drop to the upstream connection's close in the mock's ledger,
//   on the mock's clock. Upstreams: `endless` (a chunk every 20 ms; tagged `wk-cancel`, and
//   `pt-cancel` through the pass-through proxy) and `stall` (one chunk, then silence; `wk-stall`;
//   through the pass-through proxy, `pt-stall`, one trial: does it close within 2 s at all).
// - overhead { worker, passthrough, mock, trials, longRuns, longN }: time to first token
//   (`normal`) and throughput (`long`) straight to the mock, through the pass-through proxy
//   (bench/workerd/passthrough.js) and through the worker, in rotating order.
// - concurrency { worker, workerPid, passthrough, passthroughPid, streams }: `streams` answers
//   at once through each proxy (and through the pass-through's JavaScript relay, the floor of a
//   proxy that sees every byte), every one checked for the exact text; wall time and the
//   workerd process's CPU (utime + stime of /proc/<pid>/stat) per stream.
// Prints one JSON line; a wrong answer exits non-zero.
import { readFileSync } from "node:fs";
import { post, contentOf } from "./sse-client.mjs";
import { summary, closedRecords, onMockClock, clock, MOCK_TEXT } from "../lib/trials.mjs";

const TOKEN = "bench-token";
const config = JSON.parse(process.argv[2]);

function chat(worker, model, { events = false, relay = null, content = "bench", ...handlers } = {}) {
  const headers = { authorization: `Bearer ${TOKEN}` };
  if (events) headers["x-lsg-events"] = "1";
  // The pass-through's relays (bench/workerd/passthrough.js): `reads`, `tee`, `identity`, `teepipe`.
  if (relay) headers["x-bench-relay"] = relay;
  const body = { model, messages: [{ role: "user", content }], stream: true };
  return post(`${worker}/v1/chat/completions`, body, { headers, ...handlers });
}

function direct(mock, scenario, query = "") {
  const body = { model: "bench/model", messages: [{ role: "user", content: "bench" }], stream: true };
  return (handlers) => post(`${mock}/scenario/${scenario}/v1/chat/completions${query}`, body, handlers);
}

async function deadlineTrial({ worker, kind, deadlineMs }) {
  let lastText = null;
  let timeout = null;
  let firstTokenMs = null;
  const call = chat(worker, "bench", {
    events: true,
    onEvent({ event, data, at }) {
      if (event === "guard") {
        const guard = JSON.parse(data);
        if (guard.type === "first-token") firstTokenMs = guard.firstTokenMs;
        if (guard.type === "timeout" && !timeout) timeout = { at, guard };
      } else if (contentOf(data)) {
        lastText = at;
      }
    },
  });
  const done = await call.done;
  if (!timeout && kind === "first-token" && done.status === 504) {
    // The status is held until the first progress or heartbeat: a first-token timeout before
    // either is the worker's 504, sent when the deadline passes (no event stream to carry the
    // guard's own `timeout` event).
    return { client: done.headersAt - call.started() - deadlineMs, guard: null };
  }
  if (!timeout) throw new Error(`${kind} trial through the worker: no timeout event arrived (HTTP ${done.status})`);
  if (kind === "idle") {
    if (lastText === null || firstTokenMs === null) throw new Error("idle trial through the worker: no text before the timeout");
    return {
      client: timeout.at - lastText - deadlineMs,
      guard: timeout.guard.elapsedMs - firstTokenMs - deadlineMs,
    };
  }
  return { client: timeout.at - call.started() - deadlineMs, guard: timeout.guard.elapsedMs - deadlineMs };
}

async function deadlines({ worker, kind, deadlineMs, trials }) {
  await deadlineTrial({ worker, kind, deadlineMs });
  const client = [];
  const guard = [];
  for (let i = 0; i < trials; i += 1) {
    const late = await deadlineTrial({ worker, kind, deadlineMs });
    client.push(late.client);
    if (late.guard !== null) guard.push(late.guard);
  }
  return { client: summary(client), guard: guard.length ? summary(guard) : null };
}

/**
 * One cancel trial: `model` through `worker`, the connection dropped once the first text
 * arrived; milliseconds from the drop to the close of the new upstream connection tagged `tag`
 * (on the mock's clock), or `null` when it did not close within `waitMs`.
 */
async function cancelTrial({ worker, mock, model, tag, waitMs }, before, toMock) {
  let dropped;
  const gotText = new Promise((resolve) => {
    dropped = resolve;
  });
  const call = chat(worker, model, {
    onEvent({ data }) {
      if (contentOf(data)) dropped();
    },
  });
  const finished = call.done.catch(() => null);
  await gotText;
  const droppedAt = toMock(clock());
  call.destroy();
  await finished;
  let records;
  try {
    records = await closedRecords(mock, tag, waitMs);
  } catch (error) {
    if (waitMs !== undefined) return null;
    throw error;
  }
  if (records.length !== before + 1) {
    throw new Error(`expected ${before + 1} upstream connections tagged ${tag}, found ${records.length}`);
  }
  const newest = records.reduce((a, b) => (b.id > a.id ? b : a));
  return newest.closed_at_ms - droppedAt;
}

async function cancelAll({ worker, mock, trials, model, tag }) {
  const { result, uncertaintyMs } = await onMockClock(mock, async (toMock) => {
    let count = 0;
    const one = { worker, mock, model, tag };
    await cancelTrial(one, count++, toMock);
    const latency = [];
    for (let i = 0; i < trials; i += 1) latency.push(await cancelTrial(one, count++, toMock));
    return summary(latency);
  });
  return { ...result, uncertaintyMs };
}

/** Whether the pass-through proxy releases a silent upstream within `waitMs` of the drop. */
async function passthroughSilent({ passthrough, mock, waitMs }) {
  const { result } = await onMockClock(mock, (toMock) =>
    cancelTrial({ worker: passthrough, mock, model: "stall", tag: "pt-stall", waitMs }, 0, toMock),
  );
  return { closedAfterMs: result, waitMs };
}

async function cancel({ worker, passthrough, mock, trials }) {
  return {
    worker: await cancelAll({ worker, mock, trials, model: "endless", tag: "wk-cancel" }),
    passthrough: await cancelAll({ worker: passthrough, mock, trials, model: "endless", tag: "pt-cancel" }),
    workerSilent: await cancelAll({ worker, mock, trials, model: "stall", tag: "wk-stall" }),
    passthroughSilent: await passthroughSilent({ passthrough, mock, waitMs: 2000 }),
  };
}

/** Time to the first content event, and the whole answer's text. */
async function timeToFirstToken(start) {
  let first = null;
  let text = "";
  const call = start({
    onEvent({ data, at }) {
      const content = contentOf(data);
      if (content && first === null) first = at;
      text += content;
    },
  });
  const { status } = await call.done;
  if (status !== 200 || first === null) throw new Error(`no text arrived (status ${status})`);
  return { ttft: first - call.started(), text };
}

async function throughput(start, expected) {
  let text = "";
  const call = start({ onEvent: ({ data }) => (text += contentOf(data)) });
  const { status, endAt } = await call.done;
  if (status !== 200 || text !== expected) {
    throw new Error(`the long answer differs (status ${status}, ${text.length} chars, expected ${expected.length})`);
  }
  return endAt - call.started();
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function overhead({ worker, passthrough, mock, trials, longRuns, longN }) {
  const routes = {
    direct: direct(mock, "normal"),
    passthrough: (handlers) => chat(passthrough, "normal", handlers),
    worker: (handlers) => chat(worker, "normal", handlers),
  };
  const names = Object.keys(routes);
  const ttft = { direct: [], passthrough: [], worker: [] };
  for (let i = 0; i < trials + 3; i += 1) {
    // Rotate the order, so that no route always goes first.
    for (let k = 0; k < names.length; k += 1) {
      const which = names[(i + k) % names.length];
      const { ttft: ms, text } = await timeToFirstToken(routes[which]);
      if (text !== MOCK_TEXT) throw new Error(`${which}: the normal answer differs: ${JSON.stringify(text)}`);
      if (i >= 3) ttft[which].push(ms); // the first three of each warm up
    }
  }
  // Throughput: the upstream's bytes over the time to the last byte at the client.
  const expected = "tok ".repeat(longN);
  let upstreamBytes = 0;
  const longDirect = (handlers) =>
    direct(mock, "long", `?n=${longN}`)({ ...handlers, onBytes: (n) => (upstreamBytes = n) });
  const longRoutes = {
    direct: longDirect,
    passthrough: (handlers) => chat(passthrough, "long", handlers),
    worker: (handlers) => chat(worker, "long", handlers),
  };
  const long = { direct: [], passthrough: [], worker: [] };
  for (let i = 0; i < longRuns + 1; i += 1) {
    for (const which of names) {
      const ms = await throughput(longRoutes[which], expected);
      if (i > 0) long[which].push(ms); // the first of each warms up
    }
  }
  const mbps = (ms) => upstreamBytes / 1e6 / (ms / 1000);
  return {
    ttft: Object.fromEntries(names.map((n) => [n, summary(ttft[n])])),
    long: { bytes: upstreamBytes, chunks: longN, ...Object.fromEntries(names.map((n) => [n, mbps(median(long[n]))])) },
  };
}

/** utime + stime of a process, in milliseconds. */
function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

async function concurrencyOf({ worker, pid, streams, relay = null }) {
  const before = cpuMs(pid);
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  const texts = await Promise.allSettled(
    Array.from({ length: streams }, () => {
      let text = "";
      const call = chat(worker, "normal", { relay, onEvent: ({ data }) => (text += contentOf(data)) });
      return call.done.then(({ status }) => (status === 200 ? text : `HTTP ${status}`));
    }),
  );
  const wallMs = performance.now() - started;
  const workerdMs = cpuMs(pid) - before;
  const client = process.cpuUsage(clientBefore);
  const wrong = texts.filter((t) => t.status !== "fulfilled" || t.value !== MOCK_TEXT);
  if (wrong.length) {
    const first = wrong[0];
    throw new Error(
      `${wrong.length} of ${streams} streams through the worker did not return the exact text (first: ${
        first.status === "fulfilled" ? JSON.stringify(first.value) : first.reason?.message
      })`,
    );
  }
  return {
    streams,
    wallMs,
    cpuMsPerStream: workerdMs / streams,
    clientCpuMsPerStream: (client.user + client.system) / 1000 / streams,
  };
}

async function concurrency({ worker, workerPid, passthrough, passthroughPid, streams }) {
  return {
    worker: await concurrencyOf({ worker, pid: workerPid, streams }),
    passthrough: await concurrencyOf({ worker: passthrough, pid: passthroughPid, streams }),
    // The floor of any proxy that sees every byte in JavaScript: the same pass-through, its
    // body relayed through a JavaScript stream (one read and one enqueue per upstream chunk).
    jsRelay: await concurrencyOf({ worker: passthrough, pid: passthroughPid, streams, relay: "reads" }),
    // A proxy that watches every byte without writing it: the body to the client natively (a
    // `tee()` branch), the other branch read in JavaScript.
    tee: await concurrencyOf({ worker: passthrough, pid: passthroughPid, streams, relay: "tee" }),
    identity: await concurrencyOf({ worker: passthrough, pid: passthroughPid, streams, relay: "identity" }),
    // The same tee with the body owned, as a proxy that writes before and after the upstream's
    // bytes must: one branch piped natively into an `IdentityTransformStream`.
    teepipe: await concurrencyOf({ worker: passthrough, pid: passthroughPid, streams, relay: "teepipe" }),
  };
}

/** The mock's ledger records tagged `tag` (POSTs only), as they are now. */
async function ledger(mock, tag) {
  const body = await (await fetch(`${mock}/_ledger?tag=${encodeURIComponent(tag)}`)).json();
  return body.connections.filter((record) => record.method === "POST");
}

/**
 * Departures under load: `streams` answers of `endless` (a chunk every 50 ms, the `load`
 * provider) through the worker at once; once every
 * one has text, every other client drops its connection. Milliseconds from each drop to the
 * close of that client's own upstream connection (found in the ledger by the client's name in
 * the request body the worker forwarded), on the mock's clock; the clients that stay must keep
 * theirs.
 */
async function departures({ worker, mock, streams, waitMs = 5000 }) {
  const name = (i) => `departure ${String(i).padStart(4, "0")}`;
  // Connections of an earlier run with the same names are not this run's.
  const earlier = new Set((await ledger(mock, "wk-load")).map((r) => r.id));
  const calls = [];
  const texts = [];
  for (let i = 0; i < streams; i += 1) {
    let first;
    let failed;
    texts.push(new Promise((resolve, reject) => ((first = resolve), (failed = reject))));
    const call = chat(worker, "load", { content: name(i), onEvent: ({ data }) => contentOf(data) && first() });
    // A call that ends (or fails) before its first text fails the row instead of leaving it
    // waiting; once the text came, settling `texts[i]` again does nothing (a dropped call rejects).
    call.done.then(
      ({ status }) => failed(new Error(`${name(i)} ended before any text (HTTP ${status})`)),
      (error) => failed(error),
    );
    calls.push(call);
  }
  await Promise.all(texts);
  const { result } = await onMockClock(mock, async (toMock) => {
    const dropped = new Map();
    for (let i = 0; i < streams; i += 2) {
      dropped.set(name(i), toMock(clock()));
      calls[i].destroy();
    }
    const until = performance.now() + waitMs;
    let records = [];
    for (;;) {
      records = (await ledger(mock, "wk-load")).filter((r) => !earlier.has(r.id) && r.body.includes('"departure '));
      const closed = records.filter((r) => r.closed_at_ms !== null && dropped.has(r.body.match(/departure \d+/)?.[0]));
      if (closed.length === dropped.size || performance.now() > until) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const latency = [];
    let stayedOpen = 0;
    for (const record of records) {
      const who = record.body.match(/departure \d+/)?.[0];
      if (dropped.has(who)) {
        if (record.closed_at_ms === null) throw new Error(`${who}'s upstream was still open ${waitMs} ms after its client left`);
        latency.push(record.closed_at_ms - dropped.get(who));
      } else if (record.closed_at_ms === null) {
        stayedOpen += 1;
      }
    }
    if (latency.length !== dropped.size) throw new Error(`${latency.length} of ${dropped.size} departed clients' upstreams found in the ledger`);
    return { departed: dropped.size, stayedOpen, latency: summary(latency) };
  });
  for (let i = 1; i < streams; i += 2) calls[i].destroy();
  if (result.stayedOpen !== streams - result.departed) {
    throw new Error(`${result.stayedOpen} of ${streams - result.departed} staying clients kept their upstream`);
  }
  return { streams, ...result };
}

const run = { deadlines, cancel, overhead, concurrency, departures }[config.what];
if (!run) throw new Error(`unknown measurement ${config.what}`);
console.log(JSON.stringify(await run(config)));
