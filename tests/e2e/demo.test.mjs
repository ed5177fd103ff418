// End-to-end tests of the demo page in real headless Chromium: the page, the library's
// generate() and Session in the browser, the edge worker in workerd and the mock upstream; and
// the page's Guard panel, one `Guard` in the page calling the mock upstream directly.
//
// Run with `cargo xtask test --only e2e`, which starts the demo stack with short worker
// deadlines and sets DEMO_URL (the page) and MOCK_URL (the mock upstream). Nothing here sleeps:
// page states are awaited with Playwright's auto-waiting locators, what happened in between is
// recorded in the page by MutationObservers, and upstream closure is awaited with the mock's
// long-poll ledger. A test fails on a console error, an uncaught exception or an unhandled
// rejection in its page, and on an unhandled rejection in Node.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../support/chromium.mjs";

const DEMO_URL = process.env.DEMO_URL;
const MOCK_URL = process.env.MOCK_URL?.replace(/\/+$/, "");
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const OUT = path.join(ROOT, "target", "e2e");
const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

/** How much later than its deadline a timeout may show on the timeline. */
const DEADLINE_SLACK_MS = 300;
const FALLBACK_VISIBLE_BEFORE_MS = 3000;
/** The start of the local fallback's canned answer. */
const LOCAL_ANSWER_START = "This answer comes from the local fallback";

const id = (name) => `[data-testid="${name}"]`;

let browser;
/** The page's config.json: the worker's deadlines and heartbeat, as the test command set them. */
let config;
/** Unhandled rejections in this process, failing the test that is running when they happen. */
const nodeProblems = [];
process.on("unhandledRejection", (reason) => {
  nodeProblems.push(`unhandled rejection in Node: ${reason?.stack ?? reason}`);
});

before(async () => {
  if (!DEMO_URL || !MOCK_URL) {
    throw new Error(
      "DEMO_URL and MOCK_URL are not set: run these tests via `cargo xtask test --only e2e`, " +
        "which starts the demo stack and sets both",
    );
  }
  mkdirSync(OUT, { recursive: true });
  const response = await fetch(new URL("config.json", DEMO_URL));
  assert.equal(response.status, 200, "GET config.json");
  config = await response.json();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
});

/**
 * A fresh page on the demo, loaded and ready (config read, wasm initialised). Console errors,
 * uncaught exceptions and unhandled rejections in it fail the test (checked when it ends).
 */
async function openDemo(t, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const problems = [];
  await context.addInitScript(() => {
    window.addEventListener("unhandledrejection", (event) => {
      const reason = event.reason;
      console.error(`unhandledrejection: ${reason?.stack ?? reason}`);
    });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  t.after(async () => {
    await context.close();
    assert.deepEqual(problems, [], "no console errors, uncaught exceptions or unhandled rejections in the page");
    assert.deepEqual(nodeProblems.splice(0), [], "no unhandled rejections in Node");
  });
  await page.goto(DEMO_URL);
  await page.locator("html[data-ready='true']").waitFor();
  page.problems = problems;
  return page;
}

async function screenshot(page, name, { fullPage = true } = {}) {
  const file = path.join(OUT, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  console.log(`screenshot: ${file}`);
  return file;
}

/** axe-core's violations on the page as it is now: none allowed. */
async function assertNoAxeViolations(page, when) {
  await page.addScriptTag({ path: AXE });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
    }));
  });
  assert.deepEqual(violations, [], `no axe-core violations ${when}`);
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

/** The timeline as data, in the order shown. */
async function timeline(page) {
  return page.locator(`${id("timeline")} li`).evaluateAll((items) =>
    items.map((li) => ({
      source: li.dataset.source,
      type: li.dataset.type,
      ms: Number(li.dataset.ms),
      arrivedMs: li.dataset.arrivedMs === undefined ? null : Number(li.dataset.arrivedMs),
      partial: li.dataset.partial === "true",
      text: li.querySelector(".what").textContent,
    })),
  );
}

function find(items, source, type, text = /./) {
  const item = items.find((i) => i.source === source && i.type === type && text.test(i.text));
  assert.ok(item, `a ${source} ${type} event matching ${text} on the timeline: ${JSON.stringify(items, null, 1)}`);
  return item;
}

function assertInTimeOrder(items) {
  for (let i = 1; i < items.length; i += 1) {
    assert.ok(
      items[i - 1].ms <= items[i].ms,
      `the timeline is in time order: ${JSON.stringify(items[i - 1])} before ${JSON.stringify(items[i])}`,
    );
  }
}

/**
 * Records, in the page, every change of the elements `selectors` name (their text), with the
 * status pill's state at that moment: `changes()` returns them.
 */
async function recordChanges(page, selectors) {
  await page.evaluate((selectors) => {
    window.__changes = [];
    const status = document.querySelector('[data-testid="status"]');
    for (const selector of selectors) {
      const element = document.querySelector(selector);
      if (!element) throw new Error(`the page has no ${selector}`);
      new MutationObserver(() => {
        window.__changes.push({
          selector,
          text: element.textContent,
          state: status.dataset.state,
          ms: Math.round(performance.now()),
        });
      }).observe(element, { childList: true, characterData: true, subtree: true });
    }
  }, selectors);
  return () => page.evaluate(() => window.__changes);
}

test("the harness fails a test on an unhandled rejection in the page", async (t) => {
  const page = await openDemo(t);
  // Seen twice: by the page's own `unhandledrejection` listener, and by Chromium as a page error.
  const seen = Promise.all([
    page.waitForEvent("console", (m) => m.type() === "error" && m.text().includes("unhandledrejection")),
    page.waitForEvent("pageerror", (e) => e.message.includes("on purpose")),
  ]);
  await page.evaluate(() => {
    Promise.reject(new Error("on purpose"));
  });
  await seen;
  assert.ok(
    page.problems.some((p) => /^console error: unhandledrejection: Error: on purpose/.test(p)),
    `recorded as a problem of this test: ${JSON.stringify(page.problems)}`,
  );
  page.problems.length = 0; // this one was on purpose
});

test("the page loads idle, without console errors or axe-core violations", async (t) => {
  const page = await openDemo(t);
  await page.locator(`${id("link")}[data-link="open"]`).waitFor();
  await page.locator(`${id("send")}:enabled`).waitFor();
  assert.equal(await state(page, "idle").count(), 1, "idle after loading");
  const options = await page.locator(`${id("scenario")} option`).count();
  assert.ok(options >= 2, `the scenario picker lists the models (${options})`);
  await assertNoAxeViolations(page, "on the idle page");
  await screenshot(page, "idle");
});

test("normal answer (mock/local) streams in and ends done, without axe-core violations", async (t) => {
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
  const items = await timeline(page);
  find(items, "page", "first-token");
  find(items, "page", "done");
  find(items, "worker", "first-token");
  assert.equal(items.filter((i) => i.type === "failover").length, 0, "no failover");
  assertInTimeOrder(items);
  await assertNoAxeViolations(page, "after an answer");
  await screenshot(page, "normal-done");
});

test("a stalled first provider (mock/keepalive-forever) falls back at its first-token deadline; keepalives count up while waiting", async (t) => {
  const page = await openDemo(t);
  await page.selectOption(id("scenario"), "mock/keepalive-forever");
  const changes = await recordChanges(page, [id("keepalives"), id("status-detail")]);
  const notice = page.locator(id("notice")).filter({ hasText: "local fallback" });
  const started = Date.now();
  await page.click(id("send"));
  await notice.waitFor();
  const visibleAfter = Date.now() - started;
  assert.ok(
    visibleAfter < FALLBACK_VISIBLE_BEFORE_MS,
    `fallback notice visible after ${visibleAfter} ms (deadline ${config.workerTimeouts.firstTokenMs} ms + slack)`,
  );

  await state(page, "done").waitFor();
  const text = await page.locator(id("notice")).textContent();
  assert.match(text, /^keepalive-forever stalled \(first-token timeout after \d+ ms\): answered by local fallback$/);
  const answer = await page.locator(id("answer")).textContent();
  assert.ok(answer.startsWith(LOCAL_ANSWER_START), `the fallback's answer: ${answer}`);

  const items = await timeline(page);
  assertInTimeOrder(items);
  const request = find(items, "page", "request-start");
  const timeout = find(items, "worker", "timeout", /keepalive-forever: first-token timeout \(provider layer\)/);
  const failover = find(items, "worker", "failover", /keepalive-forever → local fallback \(timeout\)/);
  const deadline = config.workerTimeouts.firstTokenMs;
  for (const item of [timeout, failover]) {
    const after = item.ms - request.ms;
    assert.ok(
      after >= deadline - 20 && after <= deadline + DEADLINE_SLACK_MS,
      `the worker's ${item.type} shows ${after} ms after the request (first-token deadline ${deadline} ms)`,
    );
  }
  assert.equal(await page.locator("#stat-provider").textContent(), "local fallback");

  // The worker's keepalives were counted while the page waited for the first token.
  const waiting = (await changes()).filter(
    (c) => c.selector === id("keepalives") && c.state === "waiting-for-first-token" && Number(c.text) >= 1,
  );
  assert.ok(waiting.length >= 1, `the keepalive counter went up while waiting: ${JSON.stringify(await changes())}`);
  assert.ok(
    (await changes()).some((c) => c.selector === id("status-detail") && /^waiting \d+\.\d s · [1-9]\d* keepalives?$/.test(c.text)),
    "the status detail shows the keepalives while waiting",
  );
  assert.ok(Number(await page.locator(id("keepalives")).textContent()) >= 1, "the count stays after the answer");
  await screenshot(page, "fallback");
});

test("worker events show when they happened, not when they arrived (mock/http-503: held, then relayed)", async (t) => {
  const page = await openDemo(t);
  // When each timeline item was added, measured here rather than taken from the page.
  await page.evaluate(() => {
    window.__added = [];
    const list = document.querySelector('[data-testid="timeline"]');
    new MutationObserver((records) => {
      for (const record of records) {
        for (const li of record.addedNodes) {
          window.__added.push({ type: li.dataset.type, source: li.dataset.source, at: performance.now() });
        }
      }
    }).observe(list, { childList: true });
  });
  await send(page, "mock/http-503");
  await state(page, "done").waitFor();
  const added = await page.evaluate(() => window.__added);
  const sentAt = added.find((a) => a.type === "send").at;
  const arrival = (source, type) => Math.round(added.find((a) => a.source === source && a.type === type).at - sentAt);

  const items = await timeline(page);
  assertInTimeOrder(items);
  const request = find(items, "page", "request-start");
  const first503 = find(items, "worker", "headers", /^http-503: HTTP 503/);
  const retry = find(items, "worker", "retry", /retry http-503 \(attempt 2\) in 1000 ms/);
  const second = find(items, "worker", "request-start", /attempt 2/);
  const pageHeaders = find(items, "page", "headers");

  // The worker holds its response until an upstream answers or its first heartbeat is due, so
  // its first events reach the page late: the precondition that makes this test telling.
  const arrived = arrival("worker", "headers");
  assert.ok(
    arrived - request.ms >= 300,
    `the first 503 reached the page ${arrived - request.ms} ms after the request`,
  );
  // ... and is placed when it happened: right after the request, not at its arrival.
  assert.ok(first503.ms - request.ms <= 250, `the 503 shows ${first503.ms - request.ms} ms after the request`);
  assert.ok(retry.ms - request.ms <= 250, `the retry decision shows ${retry.ms - request.ms} ms after the request`);
  assert.match(first503.text, /\(relayed at \+\d+ ms\)$/, "a late event says when it arrived");
  assert.ok(Math.abs(first503.arrivedMs - arrived) <= 50, `and that is when it arrived (${first503.arrivedMs} ms, ${arrived} ms)`);
  // The second attempt follows the first after Retry-After (1 s), on the timeline too.
  const gap = second.ms - first503.ms;
  assert.ok(gap >= 950 && gap <= 1000 + DEADLINE_SLACK_MS, `Retry-After gap on the timeline: ${gap} ms`);
  // The worker's decisions come before the page saw the worker's 200.
  assert.ok(items.indexOf(retry) < items.indexOf(pageHeaders), "the retry shows before the page's HTTP 200");
  await screenshot(page, "relayed-times");
});

test("a provider that never answers (mock/no-headers) shows a headers timeout", async (t) => {
  const timeouts = config.workerTimeouts;
  assert.ok(timeouts.headersMs < timeouts.firstTokenMs, `headers come due first: ${JSON.stringify(timeouts)}`);
  const page = await openDemo(t);
  await send(page, "mock/no-headers");
  await state(page, "done").waitFor();
  assert.match(
    await page.locator(id("notice")).textContent(),
    /^no-headers never answered \(headers timeout after \d+ ms\): answered by local fallback$/,
  );
  const items = await timeline(page);
  assertInTimeOrder(items);
  const request = find(items, "page", "request-start");
  const timeout = find(items, "worker", "timeout", /^no-headers: headers timeout \(provider layer\) after \d+ ms/);
  const after = timeout.ms - request.ms;
  assert.ok(
    after >= timeouts.headersMs - 20 && after <= timeouts.headersMs + DEADLINE_SLACK_MS,
    `the headers timeout shows ${after} ms after the request (deadline ${timeouts.headersMs} ms)`,
  );
  await screenshot(page, "headers-timeout");
});

test("a provider error mid-answer (mock/error-after-content) shows an error event and a partial notice not styled as success", async (t) => {
  const page = await openDemo(t);
  await send(page, "mock/error-after-content");
  await state(page, "partial").waitFor();
  assert.match(await page.locator(id("status")).textContent(), /^Partial answer · 8 chunks$/);
  const notice = page.locator(`${id("notice")}[data-kind="partial"]`);
  assert.match(await notice.textContent(), /^Partial answer: error-after-content was cut short \(.*502.*\); the 8 chunks received are kept$/);

  const items = await timeline(page);
  assertInTimeOrder(items);
  const error = find(items, "page", "error", /^upstream error after 8 chunks: .*502/);
  const pageDone = find(items, "page", "done", /^partial answer/);
  const workerDone = find(items, "worker", "done", /^partial answer from error-after-content/);
  assert.ok(pageDone.partial && workerDone.partial, "both done events are marked partial");
  assert.ok(items.indexOf(error) < items.indexOf(pageDone), "the error shows before the partial done");

  // Success is green on this page (a first token, a complete answer): nothing of a partial
  // answer looks like that.
  const colors = await page.evaluate(() => {
    const color = (selector, property = "color") =>
      getComputedStyle(document.querySelector(selector))[property];
    const timelineItem = (source, type) => `[data-testid="timeline"] li[data-source="${source}"][data-type="${type}"] .what`;
    return {
      success: color(timelineItem("page", "first-token")),
      error: color(timelineItem("page", "error")),
      pageDone: color(timelineItem("page", "done")),
      workerDone: color(timelineItem("worker", "done")),
      noticeText: color('[data-testid="notice"]'),
      noticeBorder: color('[data-testid="notice"]', "borderLeftColor"),
      pill: color('[data-testid="status"]'),
    };
  });
  for (const [what, value] of Object.entries(colors)) {
    if (what === "success") continue;
    assert.notEqual(value, colors.success, `${what} is not styled as success (${JSON.stringify(colors)})`);
  }
  await assertNoAxeViolations(page, "after a partial answer");
  await screenshot(page, "partial-error");
});

test("the status live region changes only with the state; the ticking timer is outside it (mock/stall-after-chunks)", async (t) => {
  const page = await openDemo(t);
  const changes = await recordChanges(page, [id("status"), id("status-detail")]);
  await send(page, "mock/stall-after-chunks");
  await state(page, "partial").waitFor();

  // What the pill and the detail showed on the way (recorded in the page as it happened).
  const all = await changes();
  const status = all.filter((c) => c.selector === id("status"));
  const detail = all.filter((c) => c.selector === id("status-detail"));
  const states = status.map((c) => c.state);
  for (const expected of ["connecting", "generating", "stalled", "partial"]) {
    assert.ok(states.includes(expected), `the pill showed ${expected}: ${JSON.stringify(status)}`);
  }
  for (let i = 1; i < status.length; i += 1) {
    assert.notEqual(status[i].state, status[i - 1].state, `the pill's text changed only with its state: ${JSON.stringify(status)}`);
  }
  // What ticks while stalled did tick, outside the live region.
  const ticking = detail.filter((c) => c.state === "stalled" && /^no text for \d+\.\d s$/.test(c.text));
  assert.ok(ticking.length >= 2, `the stall timer ticked: ${JSON.stringify(detail)}`);
  const live = '[aria-live]:not([aria-live="off"]), [role="status"], [role="log"], [role="alert"], [role="timer"], [role="marquee"]';
  for (const selector of [id("status-detail"), "#stat-elapsed", id("keepalives")]) {
    const inside = await page.locator(selector).evaluate((el, live) => el.closest(live)?.outerHTML.slice(0, 80) ?? null, live);
    assert.equal(inside, null, `${selector} is not inside a live region`);
  }
  await screenshot(page, "stalled-partial");
});

test("focus stays visible after Send and after Cancel (keyboard)", async (t) => {
  await clearLedger();
  const page = await openDemo(t);
  await page.selectOption(id("scenario"), "mock/endless");
  await page.locator(id("prompt")).click();
  await page.keyboard.press("Tab");
  const focus = () =>
    page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return {
        id: el.id,
        visible: el.matches(":focus-visible"),
        disabled: el.disabled === true,
        ariaDisabled: el.getAttribute("aria-disabled"),
        outline: `${style.outlineStyle} ${style.outlineWidth}`,
      };
    });
  assert.equal((await focus()).id, "send", "Tab from the prompt reaches Send");
  await page.keyboard.press("Enter");
  await state(page, "generating").waitFor();

  const during = await focus();
  assert.equal(during.id, "send", `focus stays on Send while generating: ${JSON.stringify(during)}`);
  assert.equal(during.disabled, false, "on a button that keeps its focus");
  assert.equal(during.ariaDisabled, "true", "announced as unavailable while generating");
  assert.equal(during.visible, true, "with a visible focus ring");
  assert.match(during.outline, /^solid [3-9]px$/, "a solid outline of 3 px or more");
  await screenshot(page, "focus-after-send", { fullPage: false });
  await page.keyboard.press("Enter"); // Send again: ignored while generating
  assert.equal(await state(page, "generating").count(), 1, "a second Enter does not start another answer");

  await page.keyboard.press("Tab");
  assert.equal((await focus()).id, "cancel", "Tab reaches Cancel");
  await page.keyboard.press("Enter");
  await state(page, "cancelled").waitFor();
  const afterCancel = await focus();
  assert.equal(afterCancel.id, "send", `focus moves from the disabled Cancel to Send: ${JSON.stringify(afterCancel)}`);
  assert.equal(afterCancel.visible, true, "with a visible focus ring");
  assert.equal(afterCancel.ariaDisabled, null, "Send is available again");
  await assertEndlessUpstreamClosed();
});

test("on a 390 px wide screen Cancel stays in view while generating", async (t) => {
  await clearLedger();
  const page = await openDemo(t, { width: 390, height: 844 });
  await send(page, "mock/endless");
  await state(page, "generating").waitFor();
  await page.locator(id("answer")).filter({ hasText: /\S/ }).waitFor();
  // The page brings the answer into view (smoothly): wait until it is there.
  await page.waitForFunction(() => {
    const top = document.querySelector('[data-testid="answer"]').getBoundingClientRect().top;
    return top >= 0 && top < innerHeight / 2;
  });
  const cancel = page.locator(id("cancel"));
  const where = await cancel.evaluate((el) => {
    const box = el.getBoundingClientRect();
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return {
      box: { left: box.left, top: box.top, right: box.right, bottom: box.bottom },
      viewport: { width: innerWidth, height: innerHeight },
      onTop: hit === el || el.contains(hit),
      enabled: !el.disabled,
      answerTop: document.querySelector('[data-testid="answer"]').getBoundingClientRect().top,
    };
  });
  assert.ok(where.enabled, "Cancel is enabled");
  assert.ok(
    where.box.left >= 0 && where.box.top >= 0 && where.box.right <= where.viewport.width && where.box.bottom <= where.viewport.height,
    `Cancel is inside the viewport: ${JSON.stringify(where)}`,
  );
  assert.ok(where.onTop, "nothing covers Cancel");
  assert.ok(where.answerTop >= 0 && where.answerTop < where.viewport.height, "the answer is in view too");
  await screenshot(page, "mobile-generating", { fullPage: false });
  await cancel.click();
  await state(page, "cancelled").waitFor();
  await assertEndlessUpstreamClosed();
  await screenshot(page, "mobile-cancelled", { fullPage: false });
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

// ------------------------------------------------------------------ the Guard panel
//
// One `new Guard()` in the page over two mock providers the page calls directly: "primary"
// (`controlled/<id>`, set by each button through `/_control/<id>`) and "backup" (`continue`).
// Each test opens a fresh page, so each starts with a fresh guard.

/** The mock's canned answer as its normal stream sends it: the pieces, in order. */
async function cannedPieces() {
  const response = await fetch(`${MOCK_URL}/scenario/normal/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "mock/model", stream: true, messages: [{ role: "user", content: "Hi" }] }),
  });
  assert.equal(response.status, 200, "the mock's normal stream");
  const pieces = [];
  for (const line of (await response.text()).split("\n")) {
    const data = line.match(/^data: ?(.*)$/)?.[1];
    if (!data || data === "[DONE]") continue;
    const content = JSON.parse(data).choices?.[0]?.delta?.content;
    if (content) pieces.push(content);
  }
  assert.ok(pieces.length > 4, `the canned answer comes in pieces: ${JSON.stringify(pieces)}`);
  return pieces;
}

/** The demo, with its Guard panel ready; returns the page and the panel's provider id. */
async function openGuardPanel(t) {
  const page = await openDemo(t);
  const panel = page.locator(`${id("guard-panel")}[data-ready="true"]`);
  await panel.waitFor();
  return { page, controlId: await panel.getAttribute("data-control-id") };
}

/** Presses a behaviour's button and waits until that call has settled. */
async function guardCall(page, behaviour) {
  const before = Number(await page.locator(id("guard-panel")).getAttribute("data-calls"));
  await page.click(id(`guard-${behaviour}`));
  await page.locator(`${id("guard-panel")}[data-calls="${before + 1}"]`).waitFor();
}

async function guardAttempts(page) {
  return page.locator(`${id("guard-attempts")} tbody tr`).evaluateAll((rows) =>
    rows.map((row) => ({ provider: row.dataset.provider, outcome: row.dataset.outcome, role: row.dataset.role })),
  );
}

async function guardEvents(page) {
  return page.locator(`${id("guard-events")} li`).evaluateAll((items) =>
    items.map((li) => ({
      type: li.dataset.type,
      ms: Number(li.dataset.ms),
      probe: li.dataset.probe === "true",
      text: li.querySelector(".what").textContent,
    })),
  );
}

/** The stats table's row of `provider`, as its data attributes say. */
async function guardStats(page, provider) {
  return page.locator(`${id("guard-stats")} tbody tr[data-provider="${provider}"]`).evaluate((row) => ({
    ...row.dataset,
    breakerText: row.querySelector(".breaker").textContent,
    cells: [...row.cells].map((cell) => cell.textContent),
  }));
}

/** The mock's count of requests the controlled provider answered. */
async function served(controlId) {
  const response = await fetch(`${MOCK_URL}/_control/${controlId}`);
  assert.equal(response.status, 200, `GET /_control/${controlId}`);
  return (await response.json()).served;
}

/** This page's POSTs in the mock's ledger (its preflights left out), once every one has closed. */
async function guardLedger(controlId) {
  const body = await ledger(`tag=${controlId}&wait_closed_ms=3000`);
  assert.equal(body.timed_out, false, `every connection of the page closed: ${JSON.stringify(body.connections)}`);
  return body.connections.filter((c) => c.method === "POST");
}

/**
 * Chromium logs every HTTP error a page's fetch receives as a console error; a test that makes
 * a provider answer `status` `count` times takes exactly those lines out of the page's problems.
 */
function takeExpectedHttpErrors(page, status, count) {
  const line = new RegExp(`^console error: Failed to load resource: the server responded with a status of ${status} `);
  const expected = page.problems.filter((p) => line.test(p));
  assert.equal(expected.length, count, `the browser logged the ${count} HTTP ${status} answers: ${JSON.stringify(page.problems)}`);
  const others = page.problems.filter((p) => !line.test(p));
  page.problems.splice(0, page.problems.length, ...others);
}

test("Guard panel: a provider that stalls mid-answer is continued on the fallback, the seam where its text stops", async (t) => {
  const pieces = await cannedPieces();
  const canned = pieces.join("");
  const { page, controlId } = await openGuardPanel(t);
  await guardCall(page, "stall");
  await state(page, "idle").waitFor(); // the worker's half of the page is untouched
  assert.equal(await page.locator(`${id("guard-status")}[data-state="done"]`).count(), 1, "the call ended done");

  // The stitched text is the canned text exactly: the backup restated two words of the cut
  // text (`restate=2`) and the guard dropped them; the seam adds no text of its own.
  const answer = page.locator(id("guard-answer"));
  assert.equal(await answer.textContent(), canned);
  const layout = await answer.evaluate((el) =>
    [...el.children].map((c) => ({
      kind: c.dataset.part ?? c.dataset.testid,
      provider: c.dataset.provider ?? null,
      text: c.textContent,
      chars: c.dataset.chars ?? null,
      mode: c.dataset.mode ?? null,
    })),
  );
  assert.deepEqual(layout.map((c) => c.kind), ["cut", "guard-seam", "continued"], JSON.stringify(layout));
  const [cut, seamMark, continued] = layout;
  // primary sent four pieces (`stall-after=4`), then nothing: the seam is where they end.
  assert.equal(cut.text, pieces.slice(0, 4).join(""), "the text before the seam is primary's four pieces");
  assert.equal(cut.provider, "primary");
  assert.equal(continued.text, pieces.slice(4).join(""), "the text after it is the rest, once");
  assert.equal(continued.provider, "backup");
  assert.equal(seamMark.text, "");
  assert.equal(Number(seamMark.chars), [...cut.text].length, "result.continuation.chars is where the seam is");
  assert.equal(seamMark.mode, "instruction", "backup (an OpenAI-style model) was asked with an instruction");
  assert.equal(await page.locator("#guard-legend").isVisible(), true, "the seam's legend shows");

  const cutChars = [...cut.text].length;
  assert.match(
    await page.locator(`${id("guard-notice")}[data-kind="continued"]`).textContent(),
    new RegExp(`^primary stopped after ${cutChars} characters \\(idle timeout at \\d+ ms\\); ` +
      "backup continued the answer from there \\(instruction mode\\); the bar in the text marks the seam\\."),
  );
  assert.deepEqual(await guardAttempts(page), [
    { provider: "primary", outcome: "partial", role: "cut" },
    { provider: "backup", outcome: "complete", role: "winner" },
  ]);
  const events = await guardEvents(page);
  const types = events.map((e) => e.type);
  const timeout = types.indexOf("timeout");
  const continuation = types.indexOf("continuation");
  assert.ok(timeout >= 0 && continuation > timeout, `a timeout, then the continuation: ${JSON.stringify(events)}`);
  assert.equal(events[continuation].text, `primary cut after ${cutChars} characters (timeout): backup continues it`);
  assert.ok(!types.includes("hedge"), "no hedge: primary's first token came at once");

  // What the mock made of the two requests: the cut one, and a continuation it matched.
  const posts = await guardLedger(controlId);
  assert.deepEqual(
    posts.map((c) => [c.path.includes("/controlled/") ? "primary" : "backup", c.mode]),
    [["primary", "stall-after=4 first_token_ms=0"], ["backup", "instruction"]],
  );
  // A cut answer counts against primary's breaker: one failure in a row.
  const primary = await guardStats(page, "primary");
  assert.equal(primary.breaker, "closed");
  assert.equal(primary.failures, "1");
  await assertNoAxeViolations(page, "after a continued answer");
  await screenshot(page, "guard");
});

test("Guard panel: a slow-starting provider is hedged: two attempts, the fallback wins, the loser's request is closed", async (t) => {
  const { page, controlId } = await openGuardPanel(t);
  await guardCall(page, "slow");
  assert.equal(await page.locator(`${id("guard-status")}[data-state="done"]`).count(), 1, "the call ended done");

  const events = await guardEvents(page);
  const hedge = events.find((e) => e.type === "hedge");
  assert.ok(hedge, `a hedge event: ${JSON.stringify(events)}`);
  assert.match(hedge.text, /^no token from primary after 200 ms: backup asked in parallel$/);
  assert.ok(hedge.ms >= 190 && hedge.ms < 200 + 1000, `the hedge came after 200 ms: at ${hedge.ms} ms`);
  assert.deepEqual(await guardAttempts(page), [
    { provider: "primary", outcome: "aborted", role: "lost" },
    { provider: "backup", outcome: "complete", role: "winner" },
  ]);
  assert.match(
    await page.locator(`${id("guard-notice")}[data-kind="hedged"]`).textContent(),
    /^primary sent no token within 200 ms, so backup was asked in parallel; backup progressed first and won, primary's request was cancelled\./,
  );
  assert.equal(await page.locator(id("guard-seam")).count(), 0, "no seam: nothing was continued");
  assert.equal(await page.locator("#guard-legend").isVisible(), false, "nor its legend");
  // primary's first token would have come after 2000 ms: the answer did not wait for it.
  const elapsed = Number(await page.locator(id("guard-status")).getAttribute("data-elapsed-ms"));
  assert.ok(elapsed < 2000, `answered in ${elapsed} ms`);

  const posts = await guardLedger(controlId);
  assert.equal(posts.length, 2, `one request each: ${JSON.stringify(posts)}`);
  const [first, second] = posts;
  assert.match(first.path, /\/scenario\/controlled\//);
  assert.equal(first.mode, "ok first_token_ms=2000");
  assert.equal(first.closed_by, "client", "the guard closed the losing request");
  assert.equal(second.mode, "fresh", "backup was asked the question itself, not to continue");
  await screenshot(page, "guard-hedge");
});

test("Guard panel: after three answers stats() shows the deadlines it learned", async (t) => {
  const { page } = await openGuardPanel(t);
  const configured = { firstTokenMs: NaN, idleMs: NaN };
  for (let call = 1; call <= 3; call += 1) {
    await guardCall(page, "healthy");
    assert.deepEqual(await guardAttempts(page), [{ provider: "primary", outcome: "complete", role: "winner" }]);
    const row = await guardStats(page, "primary");
    assert.equal(row.samples, String(call), `samples after ${call} answers`);
    if (call < 3) {
      assert.equal(row.learnedFirstTokenMs, undefined, `nothing learned after ${call} answers`);
      assert.equal(row.learnedIdleMs, undefined, `nothing learned after ${call} answers`);
      configured.firstTokenMs = Number(row.cells[4].match(/^(\d+) ms configured$/)?.[1]);
      configured.idleMs = Number(row.cells[5].match(/^(\d+) ms configured$/)?.[1]);
    }
  }
  assert.ok(configured.firstTokenMs > 0 && configured.idleMs > 0, `the configured deadlines were shown: ${JSON.stringify(configured)}`);
  const row = await guardStats(page, "primary");
  const first = Number(row.learnedFirstTokenMs);
  const idle = Number(row.learnedIdleMs);
  // Learned: 3 x p95, never above the configured deadline, never below 250 ms.
  assert.ok(first >= 250 && first <= configured.firstTokenMs, `learned first-token deadline ${first} ms`);
  assert.ok(idle >= 250 && idle <= configured.idleMs, `learned idle deadline ${idle} ms`);
  assert.ok(first < configured.firstTokenMs, "a fast provider's first-token deadline came down");
  assert.match(row.cells[2], /^\d+ ms \/ \d+ ms$/, "first-token quantiles shown");
  assert.match(row.cells[3], /^\d+ ms \/ \d+ ms$/, "longest-gap quantiles shown");
  assert.equal(row.cells[4], `${Math.round(first)} ms learned`);
  assert.equal(row.cells[5], `${Math.round(idle)} ms learned`);
  assert.equal(row.breaker, "closed");
});

test("Guard panel: three failures open the breaker, the next call skips the provider, after the cool-down one call probes it", async (t) => {
  const { page, controlId } = await openGuardPanel(t);
  for (let call = 1; call <= 3; call += 1) {
    await guardCall(page, "fail");
    assert.deepEqual(await guardAttempts(page), [
      { provider: "primary", outcome: "http", role: "failed" },
      { provider: "backup", outcome: "complete", role: "winner" },
    ]);
    const row = await guardStats(page, "primary");
    if (call < 3) {
      assert.equal(row.breaker, "closed", `closed after ${call} failures`);
      assert.equal(row.failures, String(call));
      assert.match(await page.locator(id("guard-notice")).textContent(), new RegExp(
        `^primary failed \\(HTTP 503\\)\\. Its breaker counts ${call} failures? in a row \\(it opens at 3\\)\\.`));
    } else {
      assert.equal(row.breaker, "open", "open after 3 failures in a row");
      assert.match(row.breakerText, /^open · http · probe in \d\.\d s$/);
    }
  }
  assert.equal(await served(controlId), 3, "primary got three requests");

  // Open: the next call leaves primary out and sends it nothing.
  await guardCall(page, "healthy");
  assert.deepEqual(await guardAttempts(page), [
    { provider: "primary", outcome: "skipped", role: "skipped" },
    { provider: "backup", outcome: "complete", role: "winner" },
  ]);
  const skipped = (await guardEvents(page)).find((e) => e.type === "skipped");
  assert.match(skipped?.text ?? "", /^primary skipped, its breaker is open \(http\): probe in \d\.\d s$/);
  assert.match(await page.locator(`${id("guard-notice")}[data-kind="skipped"]`).textContent(), /^primary was skipped: its breaker is open/);
  assert.equal(await served(controlId), 3, "nothing was sent to primary");
  await screenshot(page, "guard-breaker-open");

  // The table follows the cool-down by itself: half-open once it is over.
  await page.locator(`${id("guard-stats")} tbody tr[data-provider="primary"][data-breaker="half-open"]`).waitFor();
  assert.match((await guardStats(page, "primary")).breakerText, /^half-open · http · the next call probes it$/);

  // Half-open: one call probes primary, which answers now, and its breaker closes.
  await guardCall(page, "healthy");
  assert.deepEqual(await guardAttempts(page), [{ provider: "primary", outcome: "complete", role: "winner" }]);
  const probe = (await guardEvents(page)).find((e) => e.type === "request-start");
  assert.ok(probe?.probe, `the request to primary was the probe: ${JSON.stringify(probe)}`);
  assert.match(
    await page.locator(`${id("guard-notice")}[data-kind="probe"]`).textContent(),
    /^primary was probed after its cool-down: it answered, so its breaker closed \(closed\)\./,
  );
  const row = await guardStats(page, "primary");
  assert.equal(row.breaker, "closed");
  assert.equal(row.failures, "0");
  assert.equal(await served(controlId), 4, "exactly one request went to primary");
  await assertNoAxeViolations(page, "after the breaker's probe");
  await screenshot(page, "guard-breaker");
  takeExpectedHttpErrors(page, 503, 3);
});
