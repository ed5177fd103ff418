// What the worker-facing SDK tests share: the mock upstream's address and canned text, ledger
// queries, a worker per test (a chain of providers at mock scenarios, each tagged for the ledger,
// stopped by its pid at the end of the test), and the raw SSE helpers.
//
// Environment: MOCK_URL (the mock upstream), LSG_WORKER_DIR / WORKERD_BIN (see worker-launch.mjs).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startWorker } from "./worker-launch.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "..", "..");
export const MOCK = (process.env.MOCK_URL ?? "").replace(/\/$/, "");

/** The mock upstream's canned answer, from its source. */
export const DEFAULT_TEXT = (() => {
  const source = readFileSync(path.join(repo, "mock-upstream", "src", "texts.rs"), "utf8");
  const match = /pub const DEFAULT_TEXT: &str = "([^"\\]*)";/.exec(source);
  assert.ok(match, "mock-upstream/src/texts.rs has no DEFAULT_TEXT");
  return match[1];
})();

/** The token clients of the test workers send (`LSG_CLIENT_TOKENS`). */
export const CLIENT_TOKEN = "client-token-for-sdk-tests";
/** A provider key, to check it never reaches a client. */
export const PROVIDER_KEY = "sk-provider-key-5550123456789";
export const MESSAGES = [{ role: "user", content: "hi" }];

const rejections = [];
process.on("unhandledRejection", (reason) => rejections.push(reason));

/** Fails when a promise was rejected with no handler since the last check. */
export function assertNoRejections() {
  assert.deepEqual(rejections.splice(0), [], "unhandled promise rejections");
}

let tags = 0;
/** A ledger tag for one test's requests. */
export const tagged = (name) => `worker-${name}-${process.pid}-${++tags}`;

/** The mock's ledger for `tag` (waiting until its connections closed, when asked). */
export async function ledger(tag, waitClosedMs = 0) {
  const wait = waitClosedMs ? `&wait_closed_ms=${waitClosedMs}` : "";
  const response = await fetch(`${MOCK}/_ledger?tag=${encodeURIComponent(tag)}${wait}`);
  return (await response.json()).connections.filter((c) => c.method === "POST");
}

/** A provider at a mock scenario's chat endpoint, its requests tagged `tag`. */
export function provider(name, scenario, tag, { query = "", model = `mock/${name}`, ...extra } = {}) {
  return {
    name,
    url: `${MOCK}/scenario/${scenario}/v1/chat/completions?tag=${tag}${query ? `&${query}` : ""}`,
    model,
    ...extra,
  };
}

/**
 * A test with workers: `body(start, t)` may call `start(providers, env)` for a worker (a chain of
 * those providers, a client token, no retries unless `env` says otherwise), which is stopped
 * by its pid when the test ends; the test fails on any unhandled rejection, here or in workerd.
 */
export function check(name, body, { timeout = 60_000 } = {}) {
  test(name, { timeout }, async (t) => {
    assert.ok(MOCK, "MOCK_URL is not set");
    const workers = [];
    const start = async (providers, env = {}) => {
      const worker = await startWorker({
        LSG_PROVIDERS: JSON.stringify(providers),
        LSG_CLIENT_TOKENS: CLIENT_TOKEN,
        LSG_RETRY: JSON.stringify({ maxRetries: 0 }),
        PROVIDER_KEY,
        ...env,
      });
      workers.push(worker);
      return worker;
    };
    try {
      await body(start, t);
    } finally {
      const problems = (await Promise.all(workers.map((w) => w.stop()))).flat();
      assert.deepEqual(problems, [], "workerd reported unhandled errors");
    }
    assertNoRejections();
  });
}

/** POST a JSON body to a worker (or the mock) and return the response. */
export function post(url, body, headers = {}, signal) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${CLIENT_TOKEN}`, ...headers },
    body: JSON.stringify(body),
    signal,
  });
}

/** The same bytes with what differs between two runs of one mock scenario made equal: the
 * connection number in ids and the clock in `created`. */
export function normalized(text) {
  return text
    .replace(/\b(chatcmpl|gen|resp|msg|item)-mock-\d+/g, "$1-mock-N")
    .replace(/"(created|created_at)":\d+/g, '"$1":0');
}

/** SSE text without what the issue lets the worker add: `:` comment lines (heartbeats) and the
 * blank lines of probes between events (an empty line dispatches nothing). */
export function withoutWorkerAdditions(text) {
  return text
    .split("\n")
    .filter((line) => !line.startsWith(":"))
    .join("\n")
    .replace(/\n{3,}/g, "\n\n")
    .replace(/^\n+/, "");
}

/** The SSE events of a text (`data` joined, `event` kept), comments left out. */
export function sseEvents(text) {
  const events = [];
  for (const block of text.replace(/\r\n?/g, "\n").split(/\n\n+/)) {
    let data = null;
    let event = null;
    for (const line of block.split("\n")) {
      if (line.startsWith("data:")) data = (data === null ? "" : `${data}\n`) + line.slice(5).replace(/^ /, "");
      else if (line.startsWith("event:")) event = line.slice(6).trim();
    }
    if (data !== null) events.push({ event, data });
  }
  return events;
}

/** The parsed `data:` payloads of SSE text, `[DONE]` left out. */
export function dataEvents(text) {
  return sseEvents(text)
    .filter((e) => e.data !== "[DONE]")
    .map((e) => JSON.parse(e.data));
}
