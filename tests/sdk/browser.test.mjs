// guardFetch() inside the real `openai` SDK in headless Chromium: the SDK (the version pinned in
// package.json) bundled by esbuild for the browser, the built package's browser entry imported
// as a file, a page on 127.0.0.1 talking to the mock upstream across origins (the mock answers
// CORS preflights). Run by `cargo xtask test --only sdk` with tests/sdk/sdk.test.mjs.
//
// Environment: LSG_PACKAGE_DIR, MOCK_URL, LSG_CHROMIUM (default /usr/bin/chromium). The page
// server listens on 127.0.0.1 port 0 and is closed, with the browser, after the tests. A page
// error or an unhandled rejection in the page fails the test.

import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { CHROMIUM_PATH, launchChromium } from "../support/chromium.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const PACKAGE_DIR = process.env.LSG_PACKAGE_DIR ?? path.join(repo, "target", "pkg", "llm-stream-guard");
const MOCK = (process.env.MOCK_URL ?? "").replace(/\/$/, "");
const DEFAULT_TEXT = /pub const DEFAULT_TEXT: &str = "([^"\\]*)";/.exec(
  readFileSync(path.join(repo, "mock-upstream", "src", "texts.rs"), "utf8"),
)[1];

/** What the page runs: openai with guardFetch as its fetch, three cases. */
const APP = `
import OpenAI from "openai";
import { guardFetch } from "/pkg/browser.js";
window.pageErrors = [];
window.addEventListener("unhandledrejection", (e) => window.pageErrors.push(String(e.reason)));
const MESSAGES = [{ role: "user", content: "hi" }];
const base = (mock, scenario) => mock + "/scenario/" + scenario + "/v1";
window.failover = async (mock, tag) => {
  const client = new OpenAI({ baseURL: base(mock, "headers-then-silence"), apiKey: "sk-own-0123456789abcdef",
    dangerouslyAllowBrowser: true, defaultQuery: { tag },
    fetch: guardFetch({ timeouts: { firstTokenMs: 400 }, providers: [{ name: "fb",
      url: base(mock, "normal") + "/chat/completions?tag=" + tag, model: "fb-model" }] }) });
  const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  return text;
};
window.cut = async (mock) => {
  const client = new OpenAI({ baseURL: base(mock, "stall-after-chunks"), apiKey: "k", dangerouslyAllowBrowser: true,
    fetch: guardFetch({ timeouts: { idleMs: 300 } }) });
  let text = "";
  try {
    const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    return { text, error: null };
  } catch (e) {
    return { text, error: { name: e.name, kind: e.kind, phase: e.phase } };
  }
};
window.abort = async (mock, tag) => {
  const client = new OpenAI({ baseURL: base(mock, "stall-after-chunks"), apiKey: "k", dangerouslyAllowBrowser: true,
    defaultQuery: { tag }, fetch: guardFetch() });
  const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
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
  if (!MOCK || !existsSync(CHROMIUM_PATH)) return;
  const bundled = await build({
    stdin: { contents: APP, resolveDir: repo, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "browser",
    external: ["/pkg/*"],
    write: false,
  });
  const app = bundled.outputFiles[0].text;
  state.server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://x").pathname;
    let type = "text/html";
    let body = `<!doctype html><title>loading</title><script type="module" src="/app.js"></script>`;
    if (url === "/app.js") {
      type = "text/javascript";
      body = app;
    } else if (url.startsWith("/pkg/")) {
      const name = path.basename(url);
      type = name.endsWith(".wasm") ? "application/wasm" : "text/javascript";
      body = await readFile(path.join(PACKAGE_DIR, name)).catch(() => "");
    }
    res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
    res.end(body);
  });
  await new Promise((ready) => state.server.listen(0, "127.0.0.1", ready));
  state.browser = await launchChromium({ timeout: 30_000 });
  state.page = await state.browser.newPage();
  state.errors = [];
  state.page.on("pageerror", (e) => state.errors.push(String(e)));
  await state.page.goto(`http://127.0.0.1:${state.server.address().port}/`);
  await state.page.waitForFunction(() => document.title === "ready", null, { timeout: 20_000 });
});

after(async () => {
  await state.browser?.close();
  if (state.server) await new Promise((done) => state.server.close(done));
});

async function ledger(tag) {
  const response = await fetch(`${MOCK}/_ledger?tag=${tag}&wait_closed_ms=2000`);
  return (await response.json()).connections;
}

function check(name, body) {
  test(name, { timeout: 60_000 }, async () => {
    assert.ok(MOCK, "MOCK_URL is not set");
    assert.ok(existsSync(CHROMIUM_PATH), `no browser at ${CHROMIUM_PATH}`);
    await body(state.page);
    assert.deepEqual(state.errors.splice(0), [], "page errors");
    assert.deepEqual(await state.page.evaluate(() => window.pageErrors.splice(0)), [], "unhandled rejections in the page");
  });
}

check("Chromium, openai: a stall before the first token fails over invisibly", async (page) => {
  const tag = `sdk-browser-failover-${process.pid}`;
  assert.equal(await page.evaluate(([mock, tag]) => window.failover(mock, tag), [MOCK, tag]), DEFAULT_TEXT);
  const posts = (await ledger(tag)).filter((c) => c.method === "POST");
  assert.deepEqual(posts.map((c) => c.scenario), ["headers-then-silence", "normal"]);
  assert.ok(posts[0].closed_at_ms, "the stalled upstream was released");
});

check("Chromium, openai: a stall after text throws the guard's error", async (page) => {
  const { text, error } = await page.evaluate((mock) => window.cut(mock), MOCK);
  assert.ok(text.length > 0 && DEFAULT_TEXT.startsWith(text), JSON.stringify(text));
  assert.deepEqual(error, { name: "GuardError", kind: "timeout", phase: "idle" });
});

check("Chromium, openai: aborting the stream closes the upstream within 100 ms", async (page) => {
  const tag = `sdk-browser-abort-${process.pid}`;
  const at = await page.evaluate(([mock, tag]) => window.abort(mock, tag), [MOCK, tag]);
  assert.ok(at > 0, "text arrived before the abort");
  const [post] = (await ledger(tag)).filter((c) => c.method === "POST");
  assert.ok(post.closed_at_ms, "closed");
  assert.ok(post.closed_at_ms - at < 100, `closed ${(post.closed_at_ms - at).toFixed(1)} ms after the abort`);
});
