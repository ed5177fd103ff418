// The demo page's Guard panel: ONE long-lived `new Guard()` in this page, whose calls share what
// it learns (deadlines) and decides (breakers), shown call after call.
//
// Its two providers are the mock upstream's, called by the page directly (the mock answers CORS
// preflights): they take no key, so no key is ever in this page. "primary" is a controllable
// provider (`/scenario/controlled/<id>`): each button first sets how it behaves through the
// mock's `/_control/<id>`, then makes one call. "backup" is the mock's `continue` scenario: a
// fresh request gets the canned answer, a request to continue a cut answer gets the rest of it.
// This module never touches the edge worker's part of the page (app.js).
import init, { Guard, Session } from "./pkg/llm_stream_guard.js";

/**
 * The guard's settings, quick enough to watch and for the browser tests:
 * - the hedge comes after 200 ms, below 250 ms, the floor of a learned first-token deadline, so
 *   a slow start is hedged before the primary's own deadline can pass, learned or not;
 * - deadlines are learned after 3 answers (the library's default is 20);
 * - a breaker opens after 3 counted failures in a row, and lets one call probe after 4 s;
 * - no retries: one call asks each provider at most once, so every failure shows as one step.
 */
const GUARD_SETTINGS = {
  timeouts: { headersMs: 1500, firstTokenMs: 2500, idleMs: 800, streamMs: 10000, serviceMs: 15000 },
  retry: { maxRetries: 0 },
  continuation: true,
  hedge: { afterMs: 200 },
  adaptive: { minSamples: 3 },
  breaker: { failureThreshold: 3, cooldownMs: 4000 },
};

/** Milliseconds between the pieces of both providers' answers: slow enough to watch. */
const PACE_MS = 60;

/** What each button makes primary do: the mock's `/_control/<id>` settings. */
const BEHAVIOURS = {
  healthy: { mode: "ok", first_token_ms: 0 },
  stall: { mode: "stall-after=4", first_token_ms: 0 },
  slow: { mode: "ok", first_token_ms: 2000 },
  fail: { mode: "http-503", first_token_ms: 0 },
};

/**
 * The question asked. The mock answers its canned text whatever it is, but its `continue`
 * scenario takes a last user message that says "continue" as a request to continue: this one
 * must not say it.
 */
const PROMPT = "Explain in two sentences why a streaming answer needs deadlines.";

/** While a breaker is open, the table is refreshed this often (its count-down, then half-open). */
const OPEN_REFRESH_MS = 250;

const STATUS_LABELS = { idle: "Idle", generating: "Calling", done: "Done", failed: "Failed" };

const $ = (id) => document.getElementById(id);
const ui = {
  panel: $("guard-panel"),
  buttons: [...document.querySelectorAll("#guard-panel [data-behaviour]")],
  settings: $("guard-settings"),
  status: $("guard-status"),
  notice: $("guard-notice"),
  answer: $("guard-answer"),
  attempts: $("guard-attempts"),
  events: $("guard-events"),
  eventsEmpty: $("guard-events-empty"),
  stats: $("guard-stats"),
  legend: $("guard-legend"),
};

let guard = null;
/** The call in progress, or the last one. */
let call = null;
/** Calls settled so far (the panel's `data-calls`, for the browser tests). */
let settled = 0;
let openRefresh = 0;

const ms = (value) => `${Math.round(value)} ms`;
const seconds = (value) => `${(value / 1000).toFixed(1)} s`;
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
/** A timeout's time: headers and first token count from the request, so "after"; the others "at". */
const timeoutAt = (t) =>
  `${t.phase} timeout ${t.phase === "headers" || t.phase === "first-token" ? "after" : "at"} ${ms(t.elapsedMs)}`;

function element(tag, { text, className, data } = {}) {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  if (className) el.className = className;
  for (const [key, value] of Object.entries(data ?? {})) el.dataset[key] = String(value);
  return el;
}

/** The pill is a live region: written only when its text changes. */
function setStatus(state, detail = "") {
  const text = detail ? `${STATUS_LABELS[state]} · ${detail}` : STATUS_LABELS[state];
  if (ui.status.dataset.state !== state) ui.status.dataset.state = state;
  if (ui.status.textContent !== text) ui.status.textContent = text;
}

function showNotice(kind, text) {
  ui.notice.dataset.kind = kind;
  ui.notice.textContent = text;
  ui.notice.hidden = false;
}

function setBusy(busy) {
  // The buttons stay focusable while a call runs (aria-disabled), so focus stays where it was.
  for (const button of ui.buttons) {
    if (busy) button.setAttribute("aria-disabled", "true");
    else button.removeAttribute("aria-disabled");
  }
  ui.answer.toggleAttribute("data-streaming", busy);
}

// ------------------------------------------------------------------ the call's events

function logEvent(current, type, text) {
  const item = element("li", { data: { type, ms: Math.round(performance.now() - current.t0) } });
  item.append(
    element("span", { className: "t", text: `+${item.dataset.ms}` }),
    element("span", { className: "what", text }),
  );
  ui.events.append(item);
  ui.eventsEmpty.hidden = true;
  return item;
}

function onEvent(current, event) {
  if (current !== call) return;
  const who = event.provider;
  switch (event.type) {
    case "request-start": {
      const probe = current.halfOpenBefore.has(who) && !current.probed.has(who);
      if (probe) current.probed.add(who);
      const item = logEvent(current, event.type,
        `asks ${who}${probe ? " as the probe after its cool-down" : ""}`);
      if (probe) item.dataset.probe = "true";
      break;
    }
    case "headers":
      logEvent(current, event.type, `${who}: HTTP ${event.status} after ${ms(event.elapsedMs)}`);
      break;
    case "first-token":
      logEvent(current, event.type, `${who}: first token after ${ms(event.firstTokenMs)}`);
      break;
    case "hedge":
      current.hedge = event;
      logEvent(current, event.type,
        `no token from ${who} after ${ms(event.afterMs)}: ${event.to} asked in parallel`);
      break;
    case "timeout":
      current.timeouts.set(who, event);
      logEvent(current, event.type, `${who}: ${timeoutAt(event)}`);
      break;
    case "attempt-failed":
      current.failures.set(who, event);
      logEvent(current, event.type,
        `${who}: attempt failed (${event.kind === "http" ? `HTTP ${event.status}` : event.kind})`);
      break;
    case "continuation":
      current.continuation = event;
      logEvent(current, event.type,
        `${event.from} cut after ${plural(event.chars, "character")} (${event.reason}): ${event.to} continues it`);
      markSeamLive(current, event);
      break;
    case "skipped":
      current.skipped.set(who, event);
      logEvent(current, event.type,
        `${who} skipped, its breaker is open (${event.reason})` +
          (typeof event.retryInMs === "number" ? `: probe in ${seconds(event.retryInMs)}` : ": another call probes it"));
      break;
    case "failover":
      logEvent(current, event.type, `failover ${event.from} → ${event.to} (${event.reason})`);
      break;
    case "retry":
      logEvent(current, event.type, `retry ${who} in ${ms(event.delayMs)}`);
      break;
    case "stream-end":
      logEvent(current, event.type, `${who}: stream ended, ${plural(event.chunks, "chunk")}`);
      break;
    case "done":
      logEvent(current, event.type, `answered by ${who} in ${ms(event.elapsedMs)}`);
      break;
    case "cancelled":
      logEvent(current, event.type, `cancelled (${event.reason})`);
      break;
    default:
      logEvent(current, String(event.type ?? "event"), JSON.stringify(event));
  }
}

// ------------------------------------------------------------------ the answer and its seam

/** One provider's part of the answer. */
function part(kind, text, provider) {
  const span = element("span", { className: "part", text, data: { part: kind, provider } });
  span.title = `from ${provider}`;
  return span;
}

/** The seam: no text of its own (the answer's text stays exactly the answer), a visible mark. */
function seam(from, to, chars, mode) {
  const mark = element("span", { className: "seam", data: { testid: "guard-seam", chars, from, to } });
  if (mode) mark.dataset.mode = mode;
  mark.setAttribute("role", "img");
  mark.setAttribute("aria-label",
    `seam: ${from}'s text ends after ${plural(chars, "character")}, ${to}'s continuation follows`);
  return mark;
}

function onText(current, delta) {
  if (current !== call) return;
  if (!current.tail) {
    current.tail = part("streaming", "", "…");
    ui.answer.append(current.tail);
  }
  current.tail.append(delta);
}

/** While streaming: the continuation event says where the cut text ends; mark it there. */
function markSeamLive(current, event) {
  if (current !== call) return;
  if (current.tail) current.tail.dataset.provider = event.from;
  current.tail = part("streaming", "", event.to);
  ui.answer.append(seam(event.from, event.to, event.chars), current.tail);
  ui.legend.hidden = false;
}

/** The answer as the result tells it: split at `continuation.chars` (code points) when continued. */
function showAnswer(result) {
  const c = result.continuation;
  ui.legend.hidden = !c;
  if (!c) {
    ui.answer.replaceChildren(part("whole", result.text, result.provider));
    return;
  }
  const chars = Array.from(result.text);
  ui.answer.replaceChildren(
    part("cut", chars.slice(0, c.chars).join(""), c.from),
    seam(c.from, result.provider, c.chars, c.mode),
    part("continued", chars.slice(c.chars).join(""), result.provider),
  );
}

// ------------------------------------------------------------------ attempts and the story

/** What an attempt was to the answer. */
function roleOf(attempt, index, result, current) {
  const last = index === result.attempts.length - 1;
  if (last && attempt.provider === result.provider) {
    if (result.continuation) return ["winner", "continued the answer"];
    if (current.hedge) return ["winner", "won the hedge"];
    return ["winner", "answered"];
  }
  if (attempt.outcome === "skipped") return ["skipped", "breaker open, not asked"];
  if (attempt.outcome === "partial" && result.continuation?.from === attempt.provider) {
    return ["cut", "cut; its text kept up to the seam"];
  }
  if (attempt.outcome === "aborted" && current.hedge) return ["lost", "lost the hedge, cancelled"];
  return ["failed", "failed"];
}

function showAttempts(result, current) {
  ui.attempts.replaceChildren();
  result.attempts.forEach((attempt, index) => {
    const [role, text] = roleOf(attempt, index, result, current);
    const row = element("tr", { data: { provider: attempt.provider, outcome: attempt.outcome, role } });
    if (role === "winner") row.dataset.winner = "true";
    row.append(
      element("th", { text: attempt.provider }),
      element("td", { text: attempt.outcome }),
      element("td", { text: attempt.status === undefined ? "–" : String(attempt.status) }),
      element("td", { className: "num", text: ms(attempt.elapsedMs) }),
      element("td", { text }),
    );
    row.firstChild.scope = "row";
    ui.attempts.append(row);
  });
}

function why(current, provider) {
  const timeout = current.timeouts.get(provider);
  if (timeout) return timeoutAt(timeout);
  const failure = current.failures.get(provider);
  if (failure) return failure.kind === "http" ? `HTTP ${failure.status}` : failure.kind;
  return "failed";
}

/** What happened in this call, in a few sentences, and its main kind. */
function story(result, current, statsAfter) {
  const sentences = [];
  let kind = "direct";
  const breakerOf = (provider) => statsAfter.find((s) => s.provider === provider)?.breaker;
  for (const provider of current.probed) {
    const attempt = result.attempts.find((a) => a.provider === provider);
    const breaker = breakerOf(provider);
    const outcome = attempt?.outcome === "complete" || attempt?.outcome === "partial"
      ? "it answered, so its breaker closed"
      : `it failed again (${why(current, provider)}), so its breaker opened again`;
    sentences.push(`${provider} was probed after its cool-down: ${outcome}${breaker ? ` (${breaker.state})` : ""}.`);
    kind = "probe";
  }
  for (const [provider, skip] of current.skipped) {
    sentences.push(
      `${provider} was skipped: its breaker is open after ${skip.reason} failures` +
        (typeof skip.retryInMs === "number" ? ` (probe in ${seconds(skip.retryInMs)})` : "") +
        "; nothing was sent to it.",
    );
    if (kind === "direct") kind = "skipped";
  }
  if (result.continuation) {
    const c = result.continuation;
    sentences.push(
      `${c.from} stopped after ${plural(c.chars, "character")} (${why(current, c.from)}); ` +
        `${result.provider} continued the answer from there (${c.mode} mode); the bar in the text marks the seam.`,
    );
    kind = "continued";
  } else if (current.hedge) {
    const h = current.hedge;
    const loser = h.provider === result.provider ? h.to : h.provider;
    const lost = result.attempts.find((a) => a.provider === loser);
    const end = lost?.outcome === "aborted"
      ? `${loser}'s request was cancelled`
      : `${loser} ended with ${lost?.outcome ?? "no attempt"}`;
    sentences.push(
      `${h.provider} sent no token within ${ms(h.afterMs)}, so ${h.to} was asked in parallel; ` +
        `${result.provider} progressed first and won, ${end}.`,
    );
    kind = "hedged";
  } else {
    for (const attempt of result.attempts) {
      if (attempt.provider === result.provider || attempt.outcome === "skipped") continue;
      const breaker = breakerOf(attempt.provider);
      const count = breaker?.state === "closed"
        ? ` Its breaker counts ${plural(breaker.failures, "failure")} in a row (it opens at ${GUARD_SETTINGS.breaker.failureThreshold}).`
        : breaker?.state === "open" ? " Its breaker is now open." : "";
      sentences.push(`${attempt.provider} failed (${why(current, attempt.provider)}).${count}`);
      if (kind === "direct") kind = "failover";
    }
  }
  sentences.push(`Answered by ${result.provider} in ${ms(result.stats.elapsedMs)}.`);
  return { kind, text: sentences.join(" ") };
}

// ------------------------------------------------------------------ what the guard knows

function quantiles(q) {
  return q ? `${ms(q.p50)} / ${ms(q.p95)}` : "–";
}

function deadline(learned, configured) {
  const cell = element("td", { className: "num" });
  if (typeof learned === "number") {
    cell.append(ms(learned), element("span", { className: "muted", text: " learned" }));
  } else {
    cell.append(ms(configured), element("span", { className: "muted", text: " configured" }));
  }
  return cell;
}

function breakerText(b) {
  switch (b.state) {
    case "closed":
      return b.failures ? `closed · ${plural(b.failures, "failure")} in a row` : "closed";
    case "open":
      return `open · ${b.reason} · probe in ${seconds(b.retryInMs ?? 0)}`;
    default:
      return `half-open · ${b.reason} · the next call probes it`;
  }
}

function showStats() {
  if (!guard) return [];
  const all = guard.stats();
  ui.stats.replaceChildren();
  for (const s of all) {
    const row = element("tr", {
      data: { provider: s.provider, samples: s.samples, breaker: s.breaker.state, failures: s.breaker.failures },
    });
    if (typeof s.learned.firstTokenMs === "number") row.dataset.learnedFirstTokenMs = String(s.learned.firstTokenMs);
    if (typeof s.learned.idleMs === "number") row.dataset.learnedIdleMs = String(s.learned.idleMs);
    const name = element("th", { text: s.provider });
    name.scope = "row";
    name.append(element("span", { className: "muted model", text: s.model }));
    const breaker = element("td", { className: "breaker", text: breakerText(s.breaker), data: { state: s.breaker.state } });
    row.append(
      name,
      element("td", { className: "num", text: String(s.samples) }),
      element("td", { className: "num", text: quantiles(s.firstTokenMs) }),
      element("td", { className: "num", text: quantiles(s.gapMs) }),
      deadline(s.learned.firstTokenMs, GUARD_SETTINGS.timeouts.firstTokenMs),
      deadline(s.learned.idleMs, GUARD_SETTINGS.timeouts.idleMs),
      breaker,
    );
    ui.stats.append(row);
  }
  // An open breaker turns half-open with time alone: keep the table current while one is open.
  const anyOpen = all.some((s) => s.breaker.state === "open");
  if (anyOpen && !openRefresh) openRefresh = setInterval(showStats, OPEN_REFRESH_MS);
  if (!anyOpen && openRefresh) {
    clearInterval(openRefresh);
    openRefresh = 0;
  }
  return all;
}

// ------------------------------------------------------------------ one call

async function setPrimary(mockUrl, id, behaviour) {
  const response = await fetch(`${mockUrl}/_control/${id}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(BEHAVIOURS[behaviour]),
  });
  if (!response.ok) throw new Error(`the mock refused the setting: HTTP ${response.status}`);
}

async function run(mockUrl, id, behaviour) {
  if (!guard || call?.active) return;
  const before = guard.stats();
  const current = {
    t0: performance.now(),
    active: true,
    behaviour,
    tail: null,
    hedge: null,
    continuation: null,
    timeouts: new Map(),
    failures: new Map(),
    skipped: new Map(),
    halfOpenBefore: new Set(before.filter((s) => s.breaker.state === "half-open").map((s) => s.provider)),
    probed: new Set(),
  };
  call = current;
  ui.panel.dataset.behaviour = behaviour;
  ui.answer.replaceChildren();
  ui.legend.hidden = true;
  ui.attempts.replaceChildren();
  ui.events.replaceChildren();
  ui.eventsEmpty.hidden = false;
  ui.notice.hidden = true;
  setBusy(true);
  setStatus("generating", `primary ${document.querySelector(`[data-behaviour="${behaviour}"]`).textContent}`);
  try {
    await setPrimary(mockUrl, id, behaviour);
    current.t0 = performance.now();
    const result = await guard.generate({
      messages: [{ role: "user", content: PROMPT }],
      onText: (delta) => onText(current, delta),
    });
    current.active = false;
    showAnswer(result);
    showAttempts(result, current);
    const { kind, text } = story(result, current, showStats());
    showNotice(kind, text);
    ui.status.dataset.elapsedMs = String(Math.round(result.stats.elapsedMs));
    setStatus("done", `${result.provider} · ${ms(result.stats.elapsedMs)}`);
  } catch (error) {
    current.active = false;
    showStats();
    if (Array.isArray(error?.attempts)) {
      showAttempts({ attempts: error.attempts, provider: null }, current);
    }
    showNotice("failed", `No answer: ${error?.message ?? error}`);
    setStatus("failed", error?.kind ?? "error");
  } finally {
    setBusy(false);
    settled += 1;
    ui.panel.dataset.calls = String(settled);
  }
}

// ------------------------------------------------------------------ start-up

function describeSettings() {
  const s = GUARD_SETTINGS;
  ui.settings.textContent =
    `hedge after ${ms(s.hedge.afterMs)} · continuation on · deadlines learned after ` +
    `${s.adaptive.minSamples} answers (configured: first token ${ms(s.timeouts.firstTokenMs)}, ` +
    `idle ${ms(s.timeouts.idleMs)}) · breaker opens after ${s.breaker.failureThreshold} failures ` +
    `in a row, for ${seconds(s.breaker.cooldownMs)} · no retries`;
}

async function main() {
  try {
    const [config] = await Promise.all([
      fetch("config.json", { cache: "no-store" }).then((r) => {
        if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
        return r.json();
      }),
      init(),
    ]);
    const mockUrl = String(config.mockUrl ?? "").replace(/\/+$/, "");
    if (!mockUrl) throw new Error("the page's config names no mock upstream");
    // One controllable provider per page load, so that two open pages do not steer each other;
    // the same word tags this page's requests in the mock's ledger.
    const id = `page-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const query = `delay_ms=${PACE_MS}&tag=${id}`;
    guard = new Guard({
      providers: [
        { name: "primary", url: `${mockUrl}/scenario/controlled/${id}/v1/chat/completions?${query}`, model: "mock/primary" },
        // `restate=2`: asked to continue, it first repeats the last two words it was given, as
        // models do; the guard drops the repeat, so the stitched text reads as one answer.
        { name: "backup", url: `${mockUrl}/scenario/continue/v1/chat/completions?${query}&restate=2`, model: "mock/backup" },
      ],
      ...GUARD_SETTINGS,
      // The page's calls end with the page (pagehide).
      session: new Session(),
      onEvent: (event) => onEvent(call, event),
    });
    ui.panel.dataset.controlId = id;
    ui.panel.dataset.mockUrl = mockUrl;
  } catch (error) {
    setStatus("failed", "start-up");
    showNotice("failed", `The Guard panel could not start: ${error?.message ?? error}`);
    return;
  }
  describeSettings();
  showStats();
  for (const button of ui.buttons) {
    button.disabled = false;
    button.addEventListener("click", () => {
      if (button.getAttribute("aria-disabled") === "true") return;
      run(ui.panel.dataset.mockUrl, ui.panel.dataset.controlId, button.dataset.behaviour);
    });
  }
  ui.panel.dataset.calls = "0";
  ui.panel.dataset.ready = "true";
}

main();
