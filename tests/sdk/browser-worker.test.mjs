// The real `openai` SDK (the version pinned in package.json, bundled by esbuild) in a page in
// headless Chromium, calling the edge worker across origins: the page on 127.0.0.1 port A, the
// worker (workerd, started per test by support.mjs) on port B with the page's origin in
// LSG_ALLOWED_ORIGINS, so every request is preceded by a real CORS preflight carrying the SDK's
// `x-stainless-*` headers (and `X-LSG-Events` where the page asks for guard events).
//
// Environment: MOCK_URL, LSG_WORKER_DIR, WORKERD_BIN, LSG_CHROMIUM (default /usr/bin/chromium).
// The page server listens on 127.0.0.1 port 0 and is closed, with the browser, after the tests.
// A page error or an unhandled rejection in the page fails the test.
//
// The abort test reaches the worker through a TCP relay of its own (127.0.0.1 port 0) that
// notes when the page's connection ended: Chromium does not always close an aborted HTTP/1.1
// response's connection. When the abort finds no read pending, it drains the rest of the body
// on that connection for up to 5 s (its response body drainer), reading like any client, so
// the worker can only be held to the moment the connection ends.

import { after, before } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { connect, createServer as createTcpServer } from "node:net";
import { existsSync } from "node:fs";
import { build } from "esbuild";
import { CHROMIUM_PATH, launchChromium } from "../support/chromium.mjs";
import { DEFAULT_TEXT, check, ledger, provider, repo, tagged } from "./support.mjs";

/** What the page runs: openai pointed at the worker, no key of any provider in sight. */
const APP = `
import OpenAI from "openai";
window.pageErrors = [];
window.addEventListener("unhandledrejection", (e) => window.pageErrors.push(String(e.reason)));
const MESSAGES = [{ role: "user", content: "hi" }];
const client = (worker, headers = {}) => new OpenAI({ baseURL: worker + "/v1", apiKey: "no-key-in-the-page",
  dangerouslyAllowBrowser: true, maxRetries: 0, defaultHeaders: headers });
window.stream = async (worker, model, headers) => {
  let text = "";
  const others = [];
  try {
    const stream = await client(worker, headers).chat.completions.create({ model, messages: MESSAGES, stream: true });
    for await (const chunk of stream) {
      if (chunk.object === "chat.completion.chunk") text += chunk.choices[0]?.delta?.content ?? "";
      else others.push(chunk);
    }
    return { text, others, error: null };
  } catch (e) {
    return { text, others, error: { apiError: e instanceof OpenAI.APIError, status: e.status ?? null, message: String(e.message) } };
  }
};
window.abort = async (worker, model) => {
  const stream = await client(worker).chat.completions.create({ model, messages: MESSAGES, stream: true });
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content) {
      const at = Date.now();
      stream.controller.abort();
      return at;
    }
  }
  return 0;
};
document.title = "ready";
`;

const state = {};

before(async () => {
  if (!existsSync(CHROMIUM_PATH)) return;
  const bundled = await build({
    stdin: { contents: APP, resolveDir: repo, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
  });
  const app = bundled.outputFiles[0].text;
  state.server = createServer((req, res) => {
    const script = new URL(req.url, "http://x").pathname === "/app.js";
    res.writeHead(200, { "content-type": script ? "text/javascript" : "text/html", "cache-control": "no-store" });
    res.end(script ? app : `<!doctype html><title>loading</title><script type="module" src="/app.js"></script>`);
  });
  await new Promise((ready) => state.server.listen(0, "127.0.0.1", ready));
  state.origin = `http://127.0.0.1:${state.server.address().port}`;
  state.browser = await launchChromium({ timeout: 30_000 });
  state.page = await state.browser.newPage();
  state.errors = [];
  state.page.on("pageerror", (e) => state.errors.push(String(e)));
  await state.page.goto(`${state.origin}/`);
  await state.page.waitForFunction(() => document.title === "ready", null, { timeout: 20_000 });
});

after(async () => {
  await state.browser?.close();
  if (state.server) await new Promise((done) => state.server.close(done));
});

/** A worker test in the page: the worker allows the page's origin and no other. */
function inPage(name, body) {
  check(name, async (start) => {
    assert.ok(existsSync(CHROMIUM_PATH), `no browser at ${CHROMIUM_PATH}`);
    const startForPage = (providers, env = {}) => start(providers, { LSG_ALLOWED_ORIGINS: state.origin, ...env });
    await body(state.page, startForPage);
    assert.deepEqual(state.errors.splice(0), [], "page errors");
    assert.deepEqual(await state.page.evaluate(() => window.pageErrors.splice(0)), [], "unhandled rejections in the page");
  });
}

inPage("Chromium, openai → worker: the preflight allows the SDK's headers and X-LSG-Events; a stall before the first token fails over", async (page, start) => {
  const tag = tagged("browser-failover");
  const worker = await start([provider("stalled", "headers-then-silence", tag), provider("fallback", "normal", tag)], {
    LSG_TIMEOUTS: JSON.stringify({ firstTokenMs: 400 }),
  });
  // The preflight Chromium sends for the SDK's request, made by hand to read its answer.
  const requested = "authorization,content-type,x-stainless-arch,x-stainless-lang,x-stainless-os,x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout,x-lsg-events";
  const preflight = await fetch(`${worker.url}/v1/chat/completions`, {
    method: "OPTIONS",
    headers: { origin: state.origin, "access-control-request-method": "POST", "access-control-request-headers": requested },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), state.origin);
  const allowed = new Set((preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/\s*,\s*/));
  for (const header of requested.split(",")) assert.ok(allowed.has(header), `${header} allowed`);
  const other = await fetch(`${worker.url}/v1/chat/completions`, {
    method: "OPTIONS",
    headers: { origin: "http://127.0.0.1:1", "access-control-request-method": "POST", "access-control-request-headers": requested },
  });
  assert.equal(other.headers.get("access-control-allow-origin"), null, "no CORS for an origin not on the list");

  const result = await page.evaluate(([url]) => window.stream(url, "mock/stalled", { "X-LSG-Events": "1" }), [worker.url]);
  assert.equal(result.error, null, JSON.stringify(result.error));
  assert.equal(result.text, DEFAULT_TEXT);
  assert.ok(result.others.length > 0, "the worker's guard events reached the page (X-LSG-Events passed the preflight)");
  const connections = await ledger(tag, 2_000);
  assert.deepEqual(connections.map((c) => c.scenario), ["headers-then-silence", "normal"]);
  assert.ok(connections[0].closed_at_ms, "the stalled upstream was released");
});

inPage("Chromium, openai → worker: a stall after text surfaces as the SDK's error after the partial text", async (page, start) => {
  const tag = tagged("browser-cut");
  const worker = await start([provider("cut", "stall-after-chunks", tag)], { LSG_TIMEOUTS: JSON.stringify({ idleMs: 300 }) });
  const { text, error } = await page.evaluate(([url]) => window.stream(url, "mock/cut"), [worker.url]);
  assert.ok(text.length > 0 && DEFAULT_TEXT.startsWith(text) && text !== DEFAULT_TEXT, JSON.stringify(text));
  assert.equal(error?.apiError, true, `the SDK threw its APIError: ${JSON.stringify(error)}`);
  assert.match(error.message, /idle/);
  assert.equal((await ledger(tag, 2_000)).length, 1);
});

/**
 * A TCP relay on 127.0.0.1 port 0 to `target` (a worker's URL): `url` to give the page, and
 * `ends`, for each connection that carried a POST, when the page ended it (FIN or reset; the
 * relay then closes its side to the worker). `close()` stops it and every connection.
 */
async function tcpRelay(target) {
  const { hostname, port } = new URL(target);
  const ends = [];
  const sockets = new Set();
  const server = createTcpServer((page) => {
    const worker = connect(Number(port), hostname);
    let posted = false;
    for (const socket of [page, worker]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.once("close", () => sockets.delete(socket));
    }
    page.on("data", (bytes) => {
      posted ||= bytes.includes("POST ");
      worker.write(bytes);
    });
    worker.pipe(page);
    const pageEnded = () => {
      if (posted && !page.ended) ends.push(Date.now());
      page.ended = true;
      worker.destroy();
      page.destroy();
    };
    page.once("end", pageEnded);
    page.once("error", pageEnded);
    worker.once("close", () => page.destroy());
  });
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    ends,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((done) => server.close(done));
    },
  };
}

inPage("Chromium, openai → worker: aborting the stream closes the upstream within 100 ms of the page's connection ending", async (page, start) => {
  const tag = tagged("browser-abort");
  const worker = await start([provider("endless", "stall-after-chunks", tag)]);
  const relay = await tcpRelay(worker.url);
  try {
    const at = await page.evaluate(([url]) => window.abort(url, "mock/endless"), [relay.url]);
    assert.ok(at > 0, "text arrived before the abort");
    // Up to Chromium's 5 s drain, then the worker's part.
    const [connection] = await ledger(tag, 6_000);
    const [gone] = relay.ends;
    const seen = `aborted at ${at}, the page's connection ended at ${gone}, upstream ${JSON.stringify(connection)}`;
    assert.ok(gone > at - 5, `the page's connection ended after the abort: ${seen}`);
    assert.ok(connection.closed_at_ms, `the upstream closed: ${seen}`);
    const delay = connection.closed_at_ms - gone;
    assert.ok(delay < 100, `upstream closed ${delay.toFixed(1)} ms after the page's connection ended (${(gone - at).toFixed(0)} ms after the abort)`);
  } finally {
    await relay.close();
  }
});
