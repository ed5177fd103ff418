// End-to-end tests of the demo page in real headless Chromium: the page, the library's
// generate() and Session in the browser, the edge worker in workerd and the mock upstream.
//
// Run with `cargo xtask test --only e2e`, which starts the demo stack with short worker
// deadlines and sets DEMO_URL (the page) and MOCK_URL (the mock upstream). Nothing here sleeps:
// page states are awaited with Playwright's auto-waiting locators, upstream closure with the
// mock's long-poll ledger.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../support/chromium.mjs";

const DEMO_URL = process.env.DEMO_URL;
const MOCK_URL = process.env.MOCK_URL?.replace(/\/+$/, "");
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUT = path.join(ROOT, "target", "e2e");

/** The worker's first-token deadline the test command configures, and the slack allowed over it. */
const FIRST_TOKEN_MS = 1000;
const FALLBACK_VISIBLE_BEFORE_MS = 3000;
/** The start of the local fallback's canned answer. */
const LOCAL_ANSWER_START = "This answer comes from the local fallback";

const id = (name) => `[data-testid="${name}"]`;

let browser;
/** Console errors and uncaught exceptions of every page, with the test that saw them. */
const problems = [];

before(async () => {
  if (!DEMO_URL || !MOCK_URL) {
    throw new Error(
      "DEMO_URL and MOCK_URL are not set: run these tests via `cargo xtask test --only e2e`, " +
        "which starts the demo stack and sets both",
    );
  }
  mkdirSync(OUT, { recursive: true });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

/** A fresh page on the demo, loaded and ready (config read, wasm initialised). */
async function openDemo(t, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`${t.name}: console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${t.name}: uncaught: ${error.message}`));
  t.after(() => context.close());
  await page.goto(DEMO_URL);
  await page.locator("html[data-ready='true']").waitFor();
  return page;
}

async function screenshot(page, name) {
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
  return file;
}

async function ledger(query) {
  const response = await fetch(`${MOCK_URL}/_ledger?${query}`);
  assert.equal(response.status, 200, `GET /_ledger?${query}`);
  return response.json();
}

async function clearLedger() {
  const response = await fetch(`${MOCK_URL}/_ledger`, { method: "DELETE" });
  assert.equal(response.status, 200, "DELETE /_ledger");
}

/** Waits (long-poll) until every `endless` upstream connection has closed, and checks who closed it. */
async function assertEndlessUpstreamClosed() {
  const body = await ledger("scenario=endless&wait_closed_ms=3000");
  assert.ok(body.connections.length >= 1, "the worker opened an upstream connection to `endless`");
  assert.equal(body.timed_out, false, `every upstream connection closed: ${JSON.stringify(body.connections)}`);
  for (const connection of body.connections) {
    assert.ok(connection.closed_at_ms !== null, "closed");
    assert.equal(connection.closed_by, "client", "the worker (the mock's client) closed it");
  }
}

async function send(page, model) {
  await page.selectOption(id("scenario"), model);
  await page.click(id("send"));
}

const state = (page, name) => page.locator(`${id("status")}[data-state="${name}"]`);

test("normal answer (mock/local) streams in and ends done", async (t) => {
  const page = await openDemo(t);
  await page.selectOption(id("scenario"), "mock/local");
  await page.locator(id("prompt")).fill("Say hello.");
  await page.locator(id("prompt")).press("Control+Enter"); // the keyboard way to Send
  await state(page, "generating").waitFor();
  await state(page, "done").waitFor();

  const answer = await page.locator(id("answer")).textContent();
  assert.ok(answer.startsWith(LOCAL_ANSWER_START), `answer: ${answer}`);
  assert.match(answer, /silent stream\.$/);
  const chunks = Number(await page.locator("#stat-chunks").textContent());
  assert.ok(chunks > 5, `streamed in pieces (${chunks} chunks)`);
  assert.equal(await page.locator(id("notice")).isVisible(), false, "no notice on a normal answer");
  const timeline = page.locator(id("timeline"));
  await timeline.locator("li[data-source='page'][data-type='first-token']").waitFor();
  await timeline.locator("li[data-source='page'][data-type='done']").waitFor();
  await timeline.locator("li[data-source='worker'][data-type='first-token']").waitFor();
  assert.equal(await timeline.locator("li[data-type='failover']").count(), 0, "no failover");
  await screenshot(page, "normal-done");
});

test("a stalled first provider (mock/keepalive-forever) falls back within the deadline", async (t) => {
  const page = await openDemo(t);
  await page.selectOption(id("scenario"), "mock/keepalive-forever");
  const notice = page.locator(id("notice")).filter({ hasText: "local fallback" });
  const started = Date.now();
  await page.click(id("send"));
  await notice.waitFor();
  const visibleAfter = Date.now() - started;
  assert.ok(
    visibleAfter < FALLBACK_VISIBLE_BEFORE_MS,
    `fallback notice visible after ${visibleAfter} ms (deadline ${FIRST_TOKEN_MS} ms + slack)`,
  );

  await state(page, "done").waitFor();
  const text = await page.locator(id("notice")).textContent();
  assert.match(text, /^keepalive-forever stalled \(first-token timeout after \d+ ms\): answered by local fallback$/);
  const answer = await page.locator(id("answer")).textContent();
  assert.ok(answer.startsWith(LOCAL_ANSWER_START), `the fallback's answer: ${answer}`);

  const timeline = page.locator(id("timeline"));
  const timeout = timeline.locator("li[data-source='worker'][data-type='timeout']");
  assert.match(await timeout.textContent(), /keepalive-forever: first-token timeout \(provider layer\)/);
  const failover = timeline.locator("li[data-source='worker'][data-type='failover']");
  assert.match(await failover.textContent(), /keepalive-forever → local fallback \(timeout\)/);
  const failoverMs = Number(await failover.getAttribute("data-ms"));
  assert.ok(
    failoverMs >= FIRST_TOKEN_MS - 50 && failoverMs < FALLBACK_VISIBLE_BEFORE_MS,
    `failover at ${failoverMs} ms since Send`,
  );
  assert.equal(await page.locator("#stat-provider").textContent(), "local fallback");
  await screenshot(page, "fallback");
});

test("Cancel during mock/endless ends cancelled and closes the upstream connection", async (t) => {
  await clearLedger();
  const page = await openDemo(t);
  await send(page, "mock/endless");
  await state(page, "generating").waitFor();
  await page.click(id("cancel"));
  await state(page, "cancelled").waitFor();
  assert.match(await page.locator(id("status")).textContent(), /Cancelled · cancel$/);
  assert.match(await page.locator(id("notice")).textContent(), /^Cancelled \(cancel\): you pressed Cancel/);
  assert.ok((await page.locator(id("answer")).textContent()).length > 0, "the text received is kept");
  await assertEndlessUpstreamClosed();
  await page.locator("#resources").filter({ hasText: "0 generations in flight" }).waitFor();
  await screenshot(page, "cancelled");
});

test("Drop connection during mock/endless cancels via the data channel and closes the upstream", async (t) => {
  await clearLedger();
  const page = await openDemo(t);
  await page.locator(`${id("link")}[data-link="open"]`).waitFor();
  await send(page, "mock/endless");
  await state(page, "generating").waitFor();
  await page.click(id("drop"));
  await state(page, "cancelled").waitFor();
  assert.match(await page.locator(id("status")).textContent(), /Cancelled · datachannel:close$/);
  assert.match(
    await page.locator(id("notice")).textContent(),
    /^Cancelled \(datachannel:close\): the WebRTC data channel closed/,
  );
  await page.locator(`${id("timeline")} li[data-type='cancelled']`).filter({ hasText: "datachannel:close" }).waitFor();
  await assertEndlessUpstreamClosed();
  await page.locator("#resources").filter({ hasText: "0 generations in flight" }).waitFor();
  await page.locator(`${id("link")}[data-link="dropped"]`).waitFor();
  await screenshot(page, "dropped");
});

test("the page loads without console errors", async (t) => {
  const before = problems.length;
  const page = await openDemo(t);
  await page.locator(`${id("link")}[data-link="open"]`).waitFor();
  await page.locator(`${id("send")}:enabled`).waitFor();
  assert.equal(await state(page, "idle").count(), 1, "idle after loading");
  const options = await page.locator(`${id("scenario")} option`).count();
  assert.ok(options >= 2, `the scenario picker lists the models (${options})`);
  assert.deepEqual(problems.slice(before), [], "no console errors while loading");
  assert.deepEqual(problems, [], "no console errors or uncaught exceptions in any test");
});
