// The `Guard` class inside workerd, from the installed tarball (exports condition workerd): one
// long-lived guard in one request of a module worker (workerd/guard-check.js, configured by
// workerd/guard.capnp) over the mock upstream's controlled provider "primary" and its `continue`
// scenario "backup". The worker reports what every call did; this file checks the report, and
// the mock's ledger of the same requests:
// - an answer cut mid-way is completed by the fallback with exactly the mock's canned text;
// - a slow start is hedged: the fast provider answers at about `afterMs` plus its first token,
//   the slow one's connection is closed within 100 ms of the winner's answer starting;
// - after 30 quick calls a stall is cut at the learned first-token deadline, well under the
//   configured one;
// - three stalls open the breaker, the next call sends nothing to that provider, and the call
//   after the cool-down sends it exactly one probe.
// Millisecond-scale deadlines; nothing sleeps (timings are asserted with slack).
//
//   cargo xtask test --only install      # builds and packs the package, starts the mock

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { DEFAULT_TEXT, MOCK, inWorkerd, installedManifest, project, step } from "./support.mjs";

/** The ledger tag and controlled provider id of this run. */
const ID = `install-guard-workerd-${process.pid}`;

/** Slack for timings measured across the worker, the mock and a busy machine. */
const SLACK_MS = 250;

/** Filled by the first step: the worker's report and the ledger's POSTs, each provider's in order. */
const run = { report: undefined, primary: [], backup: [] };

const outcomes = (call) => (call.result ?? call.error).attempts.map((a) => `${a.provider}:${a.outcome}`);
const eventsOf = (call, type) => call.events.filter((e) => e.type === type);

/** A call that resolved, with its result (else fails with what it rejected with). */
function answered(call, what) {
  assert.ok(call.result, `${what} resolved: ${JSON.stringify(call.error)}`);
  return call.result;
}

/** The report, once the first step produced it. */
function report() {
  assert.ok(run.report, "no report from the worker (the first workerd Guard step failed)");
  return run.report;
}

step("workerd: a Guard completes an answer cut mid-way on the fallback, with exactly the canned text", async () => {
  assert.ok(MOCK, "MOCK_URL is not set");
  const dir = await project("workerd");
  // guard.capnp embeds the entry the exports map gives workerd.
  const entry = (await installedManifest(dir)).exports["."].workerd.default;
  const config = await readFile(path.join(dir, "guard.capnp"), "utf8");
  assert.ok(
    config.includes(`(name = "llm-stream-guard", esModule = embed "node_modules/llm-stream-guard/${entry.replace(/^\.\//, "")}")`),
    `guard.capnp embeds ${entry}`,
  );
  const route = `/?mock=${encodeURIComponent(MOCK)}&id=${encodeURIComponent(ID)}`;
  await inWorkerd(dir, "guard.capnp", (answer) => (run.report = answer), { route });

  // Every request of the run has closed; each provider's, in the order they were made.
  const response = await fetch(`${MOCK}/_ledger?tag=${encodeURIComponent(ID)}&wait_closed_ms=3000`);
  const ledger = await response.json();
  assert.equal(ledger.timed_out, false, `every connection closed: ${JSON.stringify(ledger.connections)}`);
  const posts = ledger.connections.filter((c) => c.method === "POST").sort((a, b) => a.id - b.id);
  run.primary = posts.filter((c) => c.path.startsWith("/scenario/controlled/"));
  run.backup = posts.filter((c) => c.path.startsWith("/scenario/continue/"));
  assert.equal(run.primary.length + run.backup.length, posts.length, "every request went to one of the two");

  const cut = report().continuation;
  const result = answered(cut, "the cut call");
  assert.equal(result.text, DEFAULT_TEXT, "the stitched answer is the canned text exactly");
  assert.equal(result.partial, false);
  assert.equal(result.provider, "backup");
  assert.deepEqual(outcomes(cut), ["primary:partial", "backup:complete"]);
  assert.equal(result.continuation?.from, "primary", `continued from primary: ${JSON.stringify(result.continuation)}`);
  assert.equal(result.continuation.mode, "instruction", "backup (an OpenAI-style model) is asked with an instruction");
  const chars = result.continuation.chars;
  assert.ok(chars > 0 && chars < [...DEFAULT_TEXT].length, `cut after some of the text: ${chars} characters`);
  const [timeout] = eventsOf(cut, "timeout");
  assert.equal(timeout?.phase, "idle", `primary was cut by its idle deadline: ${JSON.stringify(cut.events)}`);
  assert.deepEqual(
    eventsOf(cut, "continuation").map(({ from, to, chars: at, reason }) => ({ from, to, at, reason })),
    [{ from: "primary", to: "backup", at: chars, reason: "timeout" }],
  );
  // What the mock made of the two requests: the cut one, then a continuation it matched.
  assert.equal(run.primary[0]?.mode, "stall-after=4 first_token_ms=0");
  assert.equal(run.backup[0]?.mode, "instruction", "the mock matched the request to continue");
});

step("workerd: the same Guard hedges a slow start: the fast provider answers at about afterMs plus its first token, the slow one's connection closed", async () => {
  const { settings, hedge: call } = report();
  const afterMs = settings.hedge.afterMs;
  const result = answered(call, "the hedged call");
  assert.equal(result.provider, "backup");
  assert.equal(result.text, DEFAULT_TEXT);
  assert.deepEqual(outcomes(call), ["primary:aborted", "backup:complete"], "both attempts, the fast one won");
  const hedges = eventsOf(call, "hedge");
  assert.deepEqual(
    hedges.map(({ provider, to, afterMs: after }) => ({ provider, to, after })),
    [{ provider: "primary", to: "backup", after: afterMs }],
  );
  assert.ok(hedges[0].atMs >= afterMs - 1 && hedges[0].atMs < afterMs + SLACK_MS, `hedged at ${hedges[0].atMs} ms`);
  const [first] = eventsOf(call, "first-token").filter((e) => e.provider === "backup");
  assert.ok(first, `backup's first token: ${JSON.stringify(call.events)}`);
  const [done] = eventsOf(call, "done");
  assert.ok(
    done.atMs >= afterMs && done.atMs <= afterMs + first.firstTokenMs + SLACK_MS,
    `answered at ${done.atMs} ms: about ${afterMs} ms + backup's first token (${first.firstTokenMs} ms)`,
  );
  // The mock's side: primary's request was closed by the guard before its first token was due
  // (1500 ms), within 100 ms of backup's answer starting; backup was asked the question itself.
  const slow = run.primary[1];
  const fast = run.backup[1];
  assert.equal(slow?.mode, "ok first_token_ms=1500");
  assert.equal(slow.closed_by, "client", "the guard closed the slow request");
  assert.ok(slow.closed_at_ms - slow.opened_at_ms < 1500, "closed before its first token was due");
  assert.equal(fast?.mode, "fresh");
  const closedAfter = slow.closed_at_ms - fast.response_started_at_ms;
  assert.ok(closedAfter < 100, `the slow connection closed ${closedAfter.toFixed(1)} ms after backup's answer started`);
  console.log(
    `workerd Guard hedge: hedged at ${hedges[0].atMs} ms, backup's first token ${first.firstTokenMs} ms later, ` +
      `answered at ${done.atMs} ms; the slow connection closed ${closedAfter.toFixed(1)} ms after backup's answer started`,
  );
});

step("workerd: the same Guard learns: after 30 quick calls a stall is cut at the learned first-token deadline, well under the configured one", async () => {
  const { settings, quickCalls, learned } = report();
  assert.equal(learned.quick.length, quickCalls);
  for (const call of learned.quick) assert.deepEqual(outcomes(call), ["primary:complete"]);
  // Every attempt of primary that showed progress is a sample: the cut answer and the quick ones.
  assert.equal(learned.stats.samples, quickCalls + 1, JSON.stringify(learned.stats));
  const deadline = learned.stats.learned.firstTokenMs;
  const configured = settings.timeouts.firstTokenMs;
  assert.ok(deadline >= 250 && deadline < configured / 4, `learned first-token deadline ${deadline} ms (configured ${configured} ms)`);
  assert.ok(deadline < settings.hedge.afterMs, "below the hedge, so the stall is cut rather than hedged");

  const result = answered(learned.stall, "the stalling call");
  assert.deepEqual(outcomes(learned.stall), ["primary:timeout", "backup:complete"]);
  assert.equal(result.text, DEFAULT_TEXT);
  assert.deepEqual(eventsOf(learned.stall, "hedge"), [], "not hedged");
  const timeouts = eventsOf(learned.stall, "timeout");
  assert.deepEqual(
    timeouts.map(({ provider, layer, phase }) => ({ provider, layer, phase })),
    [{ provider: "primary", layer: "provider", phase: "first-token" }],
  );
  const cutAt = timeouts[0].elapsedMs;
  assert.ok(cutAt >= deadline - 1 && cutAt < deadline + SLACK_MS, `cut at ${cutAt} ms, the learned deadline is ${deadline} ms`);
  assert.ok(cutAt < configured / 2, `well under the configured ${configured} ms`);
  // The mock's side: the quick requests, then the stall, closed by the guard at the deadline.
  const quick = run.primary.slice(2, 2 + quickCalls);
  assert.deepEqual(new Set(quick.map((c) => c.mode)), new Set(["ok first_token_ms=0"]));
  const stall = run.primary[2 + quickCalls];
  assert.equal(stall?.mode, "stall first_token_ms=0");
  assert.equal(stall.closed_by, "client");
  assert.ok(stall.closed_at_ms - stall.opened_at_ms < deadline + SLACK_MS, "closed at the learned deadline");
  const p95 = learned.stats.firstTokenMs.p95.toFixed(1);
  console.log(`workerd Guard learned: first token p95 ${p95} ms, deadline ${deadline} ms (configured ${configured} ms), the stall cut at ${cutAt} ms`);
});

step("workerd: the same Guard's breaker: three stalls open it, the next call sends that provider nothing, after the cool-down exactly one probe", async () => {
  const { settings, quickCalls, breaker } = report();
  const { failureThreshold, cooldownMs } = settings.breaker;
  assert.equal(failureThreshold, 3);
  assert.deepEqual(outcomes(breaker.reset.call), ["primary:complete"]);
  assert.deepEqual(breaker.reset.stats.breaker, { state: "closed", failures: 0 }, "an answer ends the streak");

  assert.equal(breaker.stalls.length, failureThreshold);
  breaker.stalls.forEach(({ call, stats }, i) => {
    assert.deepEqual(outcomes(call), ["primary:timeout", "backup:complete"], `stall ${i + 1}`);
    if (i + 1 < failureThreshold) {
      assert.deepEqual(stats.breaker, { state: "closed", failures: i + 1 }, `after stall ${i + 1}`);
    } else {
      assert.equal(stats.breaker.state, "open", `open after ${failureThreshold} stalls: ${JSON.stringify(stats.breaker)}`);
      assert.equal(stats.breaker.reason, "timeout");
      assert.ok(stats.breaker.retryInMs > 0 && stats.breaker.retryInMs <= cooldownMs, JSON.stringify(stats.breaker));
    }
  });

  // Open: skipped (an event, an attempt), nothing sent.
  const skip = breaker.skip;
  const skipped = answered(skip.call, "the call while open");
  assert.deepEqual(outcomes(skip.call), ["primary:skipped", "backup:complete"]);
  assert.equal(skipped.text, DEFAULT_TEXT);
  const [event] = eventsOf(skip.call, "skipped");
  assert.equal(event?.provider, "primary", JSON.stringify(skip.call.events));
  assert.equal(event.reason, "timeout");
  assert.ok(event.retryInMs > 0 && event.retryInMs <= cooldownMs, `probe in ${event.retryInMs} ms`);
  assert.deepEqual(eventsOf(skip.call, "request-start").map((e) => e.provider), ["backup"]);
  assert.equal(skip.servedAfter, skip.servedBefore, "primary served nothing during the call");

  // After the cool-down: half-open, and one call probes primary, which answers; closed again.
  assert.equal(breaker.halfOpen.breaker.state, "half-open", JSON.stringify(breaker.halfOpen));
  assert.ok(breaker.halfOpen.waitedMs <= cooldownMs + SLACK_MS, `half-open once the cool-down is over: ${breaker.halfOpen.waitedMs} ms`);
  console.log(`workerd Guard breaker: half-open ${breaker.halfOpen.waitedMs} ms after the skipping call (cool-down ${cooldownMs} ms)`);
  const probe = breaker.probe;
  answered(probe.call, "the probing call");
  assert.deepEqual(outcomes(probe.call), ["primary:complete"]);
  assert.deepEqual(eventsOf(probe.call, "request-start").map((e) => e.provider), ["primary"]);
  assert.equal(probe.servedAfter, probe.servedBefore + 1, "exactly one request to primary");
  assert.deepEqual(probe.stats.breaker, { state: "closed", failures: 0 });

  // The mock's side, every request primary got, in order: no request in the skipping call's
  // setting, then the probe's one.
  const stall = "stall first_token_ms=0";
  assert.deepEqual(
    run.primary.map((c) => c.mode),
    [
      "stall-after=4 first_token_ms=0",
      "ok first_token_ms=1500",
      ...Array(quickCalls).fill("ok first_token_ms=0"),
      stall,
      "ok first_token_ms=0",
      ...Array(failureThreshold).fill(stall),
      "ok first_token_ms=2",
    ],
  );
  // backup: the continuation, the hedge, and the fallback of every stall and of the skipping call.
  assert.deepEqual(run.backup.map((c) => c.mode), ["instruction", ...Array(2 + failureThreshold + 1).fill("fresh")]);
});
