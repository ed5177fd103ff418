// The demo page: asks the edge worker for a streamed answer with the library's own generate()
// (inside a Session), and shows what the guards on both sides did. No framework, no build step.
import init, { Session, liveResources } from "./pkg/llm_stream_guard.js";

/** The page's own deadlines for its request to the worker: generous, the worker guards the upstream. */
const PAGE_TIMEOUTS = {
  headersMs: 30000,
  firstTokenMs: 30000,
  idleMs: 30000,
  streamMs: 120000,
  serviceMs: 120000,
};
/** No text for this long while generating shows "stalled" (or 40 % of the worker's idle deadline, if shorter). */
const STALL_MS = 1500;
const MAX_TIMELINE = 300;
/** A relayed worker event that arrives this much later than it happened says so on the timeline. */
const LATE_MS = 100;

const STATE_LABELS = {
  idle: "Idle",
  connecting: "Connecting",
  "waiting-for-first-token": "Waiting for first token",
  generating: "Generating",
  stalled: "Stalled",
  "falling-back": "Falling back",
  done: "Done",
  partial: "Partial answer",
  cancelled: "Cancelled",
  failed: "Failed",
};

const REASONS = {
  cancel: "you pressed Cancel",
  "datachannel:close": "the WebRTC data channel closed",
  "peer-connection:failed": "the WebRTC connection failed",
  "peer-connection:closed": "the WebRTC connection closed",
  "peer-connection:disconnected": "the WebRTC connection stayed disconnected",
  "websocket:close": "the WebSocket closed",
  pagehide: "the page was hidden",
  closed: "the session was closed",
  signal: "a watched signal aborted",
};

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("ask"),
  scenario: $("scenario"),
  scenarioHint: $("scenario-hint"),
  prompt: $("prompt"),
  send: $("send"),
  cancel: $("cancel"),
  drop: $("drop"),
  linkState: $("link-state"),
  linkDot: $("link-dot"),
  mode: $("mode"),
  deadlines: $("worker-deadlines"),
  status: $("status"),
  statusDetail: $("status-detail"),
  notice: $("notice"),
  answer: $("answer"),
  timeline: $("timeline"),
  timelineEmpty: $("timeline-empty"),
  resources: $("resources"),
  statProvider: $("stat-provider"),
  statFirst: $("stat-first"),
  statChunks: $("stat-chunks"),
  statKeepalives: $("stat-keepalives"),
  statElapsed: $("stat-elapsed"),
};

let config = null;
let session = null;
/** The loopback WebRTC pair: { pc1, pc2, dc1, dc2, unwatch }; pc1/dc1 are the near side. */
let link = null;
let linking = null;
/** The generation in progress (or the last one). */
let run = null;

// ------------------------------------------------------------------ small helpers

const ms = (value) => `${Math.round(value)} ms`;
const seconds = (value) => `${(value / 1000).toFixed(1)} s`;
const chunks = (n) => `${n} chunk${n === 1 ? "" : "s"}`;
const keepalives = (n) => `${n} keepalive${n === 1 ? "" : "s"}`;

/** How long without text shows "stalled": before the worker's idle deadline cuts the provider off. */
function stallMs() {
  const idle = config?.workerTimeouts?.idleMs;
  return typeof idle === "number" ? Math.min(STALL_MS, idle * 0.4) : STALL_MS;
}

/**
 * The status pill is a live region: its text is written only when it changes, so a screen
 * reader announces each change once. What ticks (seconds waited) is in `#status-detail`, outside it.
 */
function setState(state, detail = "") {
  const text = detail ? `${STATE_LABELS[state]} · ${detail}` : STATE_LABELS[state];
  if (ui.status.dataset.state !== state) ui.status.dataset.state = state;
  if (ui.status.textContent !== text) ui.status.textContent = text;
  if (run) run.state = state;
  showDetail(run);
}

/** The ticking detail next to the pill: time waited and keepalives, or time without text. */
function showDetail(current, now = performance.now()) {
  let text = "";
  if (current?.active) {
    if (current.state === "stalled" && current.lastTextAt !== null) {
      text = `no text for ${seconds(now - current.lastTextAt)}`;
    } else if (current.chunks === 0) {
      text = `waiting ${seconds(now - current.t0)} · ${keepalives(current.keepalives)}`;
    }
  }
  if (ui.statusDetail.textContent !== text) ui.statusDetail.textContent = text;
  ui.statusDetail.hidden = !text;
}

/**
 * Disable a control; focus on it moves to Send rather than vanish with it (without scrolling:
 * on a narrow screen Send may be out of view while the outcome is in view).
 */
function disable(control) {
  if (document.activeElement === control) ui.send.focus({ preventScroll: true });
  control.disabled = true;
}

function showNotice(kind, text) {
  ui.notice.dataset.kind = kind;
  ui.notice.textContent = text;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  ui.notice.textContent = "";
  delete ui.notice.dataset.kind;
}

/**
 * Add an event to the timeline at `at` (ms since Send; default: now), in time order: a relayed
 * worker event can arrive after page events that happened later.
 */
function log(current, source, type, text, at = performance.now() - current?.t0) {
  if (!current) return null;
  const when = Math.round(at);
  const item = document.createElement("li");
  item.dataset.source = source;
  item.dataset.type = type;
  item.dataset.ms = String(when);
  const time = document.createElement("span");
  time.className = "t";
  time.textContent = `+${Math.round(at)}`;
  const tag = document.createElement("span");
  tag.className = "src";
  tag.textContent = source;
  const what = document.createElement("span");
  what.className = "what";
  what.textContent = text;
  item.append(time, tag, what);
  let next = null;
  for (let el = ui.timeline.lastElementChild; el && Number(el.dataset.ms) > when; el = el.previousElementSibling) {
    next = el;
  }
  ui.timeline.insertBefore(item, next);
  while (ui.timeline.childElementCount > MAX_TIMELINE) ui.timeline.firstElementChild.remove();
  ui.timelineEmpty.hidden = true;
  return item;
}

/**
 * A relayed worker event, placed when it happened: its `atMs` is on the worker's clock, counted
 * from when the worker took the request up, which is (within the loopback's latency) when this
 * page sent it. Never later than its arrival; one that arrived late says so.
 */
function logWorker(current, event, text) {
  const arrived = performance.now() - current.t0;
  const at =
    typeof event.atMs === "number" && Number.isFinite(event.atMs) && current.requestAt !== null
      ? Math.min(arrived, current.requestAt + Math.max(0, event.atMs))
      : arrived;
  const item = log(current, "worker", String(event.type ?? "event"), text, at);
  if (item && arrived - at >= LATE_MS) {
    item.dataset.arrivedMs = String(Math.round(arrived));
    const late = document.createElement("span");
    late.className = "late";
    late.textContent = ` (relayed at +${Math.round(arrived)} ms)`;
    item.querySelector(".what").append(late);
  }
  return item;
}

function showResources() {
  try {
    const r = liveResources();
    ui.resources.textContent =
      `Library holds now: ${r.timers} timers · ${r.readers} body readers · ` +
      `${r.listeners} listeners · ${r.inFlight} generations in flight`;
  } catch {
    ui.resources.textContent = "";
  }
}

function setLink(state, text) {
  ui.linkDot.dataset.link = state;
  ui.linkState.dataset.link = state;
  ui.linkState.textContent = text;
  if (state === "open") ui.drop.disabled = false;
  else disable(ui.drop);
}

// ------------------------------------------------------------------ the loopback WebRTC link

/**
 * Two RTCPeerConnections in this page, connected over loopback (no STUN), with an open data
 * channel. The Session watches the near side (pc1 and its data channel dc1); "Drop connection"
 * closes the far side (pc2), so dc1 fires closing/close and the Session cancels.
 */
async function connectLink() {
  if (typeof RTCPeerConnection !== "function") {
    setLink("unavailable", "not available in this browser");
    return;
  }
  setLink("connecting", "connecting…");
  const pc1 = new RTCPeerConnection({ iceServers: [] });
  const pc2 = new RTCPeerConnection({ iceServers: [] });
  const wire = (from, to) => {
    const queue = [];
    let ready = false;
    from.addEventListener("icecandidate", (e) => {
      if (!e.candidate) return;
      if (ready) to.addIceCandidate(e.candidate).catch(() => {});
      else queue.push(e.candidate);
    });
    return () => {
      ready = true;
      for (const c of queue.splice(0)) to.addIceCandidate(c).catch(() => {});
    };
  };
  const flushTo2 = wire(pc1, pc2);
  const flushTo1 = wire(pc2, pc1);
  const dc1 = pc1.createDataChannel("voice-control");
  const remote = new Promise((resolve) =>
    pc2.addEventListener("datachannel", (e) => resolve(e.channel), { once: true }),
  );
  const opened = (dc) =>
    dc.readyState === "open"
      ? Promise.resolve()
      : new Promise((resolve) => dc.addEventListener("open", resolve, { once: true }));
  try {
    const offer = await pc1.createOffer();
    await pc1.setLocalDescription(offer);
    await pc2.setRemoteDescription(offer);
    flushTo2();
    const answer = await pc2.createAnswer();
    await pc2.setLocalDescription(answer);
    await pc1.setRemoteDescription(answer);
    flushTo1();
    await opened(dc1);
    const dc2 = await remote;
    await opened(dc2);
    const unwatch = [session.watch(pc1), session.watch(dc1)];
    link = { pc1, pc2, dc1, dc2, unwatch };
    dc1.addEventListener("close", () => onLinkClosed(link), { once: true });
    setLink("open", "open, watched by the session");
    showResources();
  } catch (error) {
    pc1.close();
    pc2.close();
    setLink("unavailable", `could not connect (${error?.message ?? error})`);
  }
}

function ensureLink() {
  if (link || typeof RTCPeerConnection !== "function") return Promise.resolve();
  if (!linking) linking = connectLink().finally(() => (linking = null));
  return linking;
}

function onLinkClosed(closed) {
  if (link !== closed) return;
  for (const unwatch of closed.unwatch) unwatch();
  closed.pc1.close();
  closed.pc2.close();
  link = null;
  setLink("dropped", "dropped (reconnects on the next Send)");
  showResources();
}

function dropLink() {
  if (!link) return;
  log(run?.active ? run : null, "page", "drop", "far side of the WebRTC link closed");
  setLink("dropping", "dropping…");
  link.pc2.close();
}

// ------------------------------------------------------------------ what the worker did

/** Why the worker left `provider`, from its relayed events. */
function whyLeft(worker, provider) {
  const timeout = worker.timeouts.findLast((t) => t.provider === provider);
  if (timeout) {
    const verb =
      timeout.phase === "headers"
        ? "never answered"
        : timeout.phase === "idle"
          ? "went silent"
          : timeout.phase === "stream"
            ? "ran too long"
            : "stalled";
    const layer = timeout.layer === "service" ? ", whole-call deadline" : "";
    // Headers and first token are counted from the request; idle from the last token.
    const when = timeout.phase === "headers" || timeout.phase === "first-token" ? "after" : "at";
    return `${provider} ${verb} (${timeout.phase} timeout${layer} ${when} ${ms(timeout.elapsedMs)})`;
  }
  const failure = worker.failures.findLast((f) => f.provider === provider);
  if (failure) {
    const what = failure.kind === "http" ? `HTTP ${failure.status}` : `${failure.kind} error`;
    return `${provider} failed (${what})`;
  }
  return `${provider} failed`;
}

function fallbackStory(current) {
  const w = current.worker;
  if (!w.failovers.length) return "";
  const left = [...new Set(w.failovers.map((f) => f.from))].map((p) => whyLeft(w, p));
  return left.join("; ");
}

function onWorkerEvent(current, event) {
  if (!event || typeof event !== "object") return;
  const w = current.worker;
  switch (event.type) {
    case "request-start":
      w.asking = event.provider;
      logWorker(current, event,
        `asks ${event.provider} (${event.model}${event.attempt > 1 ? `, attempt ${event.attempt}` : ""})`);
      break;
    case "headers":
      logWorker(current, event, `${event.provider}: HTTP ${event.status} after ${ms(event.elapsedMs)}`);
      break;
    case "first-token":
      w.answeredBy = event.provider;
      logWorker(current, event, `${event.provider}: first token after ${ms(event.firstTokenMs)}`);
      break;
    case "timeout":
      w.timeouts.push(event);
      logWorker(current, event,
        `${event.provider}: ${event.phase} timeout (${event.layer} layer) after ${ms(event.elapsedMs)}, ` +
        `${chunks(event.chunks)} in ${event.lines} SSE line${event.lines === 1 ? "" : "s"}`);
      break;
    case "attempt-failed":
      w.failures.push(event);
      logWorker(current, event, `${event.provider}: attempt failed (${event.kind}${event.status ? ` ${event.status}` : ""})`);
      break;
    case "retry":
      w.retries += 1;
      logWorker(current, event,
        `retry ${event.provider} (attempt ${event.attempt}) in ${ms(event.delayMs)} after ${event.reason}`);
      break;
    case "failover":
      w.failovers.push(event);
      logWorker(current, event, `failover ${event.from} → ${event.to} (${event.reason})`);
      if (current.active) {
        setState("falling-back", `to ${event.to}`);
        showNotice("fallback", `${fallbackStory(current)}: falling back to ${event.to}`);
      }
      break;
    case "stream-end":
      logWorker(current, event, `${event.provider}: stream ended, ${chunks(event.chunks)}`);
      break;
    case "empty-response":
      logWorker(current, event, `${event.provider}: empty response`);
      break;
    case "malformed":
      logWorker(current, event, `${event.provider}: skipped a malformed event`);
      break;
    case "cancelled":
      logWorker(current, event, `cancelled (${event.reason})`);
      break;
    case "done": {
      w.answeredBy = event.provider;
      w.partial = event.partial;
      const item = logWorker(current, event,
        `${event.partial ? "partial" : "complete"} answer from ${event.provider} in ${ms(event.elapsedMs)}`);
      if (item && event.partial) item.dataset.partial = "true";
      break;
    }
    default:
      logWorker(current, event, JSON.stringify(event));
  }
}

// ------------------------------------------------------------------ the page's own events

function onPageEvent(current, event) {
  if (event.type === "upstream-event") {
    onWorkerEvent(current, event.event);
    return;
  }
  switch (event.type) {
    case "request-start":
      log(current, "page", event.type, `request to the ${event.provider}${event.attempt > 1 ? ` (attempt ${event.attempt})` : ""}`);
      if (current.active) setState("connecting");
      break;
    case "headers":
      log(current, "page", event.type, `HTTP ${event.status} from the ${event.provider} after ${ms(event.elapsedMs)}`);
      if (current.active && current.state === "connecting") setState("waiting-for-first-token");
      break;
    case "first-token":
      current.firstTokenMs = event.firstTokenMs;
      ui.statFirst.textContent = ms(event.firstTokenMs);
      log(current, "page", event.type, `first token after ${ms(event.firstTokenMs)}`);
      break;
    case "stream-end":
      log(current, "page", event.type, `stream ended: ${chunks(event.chunks)}, ${event.lines} lines`);
      break;
    case "timeout":
      log(current, "page", event.type, `${event.phase} timeout (${event.layer} layer) after ${ms(event.elapsedMs)}`);
      break;
    case "attempt-failed":
      log(current, "page", event.type, `attempt failed (${event.kind}${event.status ? ` ${event.status}` : ""}): ${event.message}`);
      break;
    case "retry":
      log(current, "page", event.type, `retry in ${ms(event.delayMs)} after ${event.reason}`);
      break;
    case "failover":
      log(current, "page", event.type, `failover ${event.from} → ${event.to} (${event.reason})`);
      break;
    case "malformed":
      log(current, "page", event.type, `skipped a malformed event (${event.reason})`);
      break;
    case "empty-response":
      log(current, "page", event.type, "empty response");
      break;
    case "cancelled":
      log(current, "page", event.type, `cancelled (${event.reason})`);
      break;
    case "done":
      current.doneItem = log(current, "page", event.type,
        `${event.partial ? "partial" : "complete"} answer, ${chunks(current.chunks)} in ${ms(event.elapsedMs)}`);
      if (event.partial) current.doneItem.dataset.partial = "true";
      break;
    default:
      log(current, "page", String(event.type ?? "event"), JSON.stringify(event));
  }
}

function onText(current, delta) {
  if (!current.active) return;
  current.chunks += 1;
  current.lastTextAt = performance.now();
  ui.answer.append(delta);
  ui.statChunks.textContent = String(current.chunks);
  if (current.chunks === 1) {
    const by = current.worker.answeredBy ?? current.worker.asking;
    if (by) ui.statProvider.textContent = by;
  }
  if (current.state !== "generating") {
    if (current.state === "stalled") log(current, "page", "resumed", "text resumed");
    if (current.state === "falling-back") {
      const to = current.worker.answeredBy ?? current.worker.asking;
      showNotice("fallback", `${fallbackStory(current)}: answered by ${to}`);
    }
    setState("generating");
  }
}

function tick(current) {
  const now = performance.now();
  ui.statElapsed.textContent = ms(now - current.t0);
  showResources();
  if (current.state === "generating" && current.lastTextAt !== null && now - current.lastTextAt > stallMs()) {
    setState("stalled");
    log(current, "page", "stalled", `no text for ${ms(stallMs())}`);
  }
  showDetail(current, now);
}

/** A keepalive (an SSE comment line) from the worker: the connection lives, no text yet. */
function onKeepalive(current) {
  if (!current.active) return;
  current.keepalives += 1;
  ui.statKeepalives.textContent = String(current.keepalives);
  showDetail(current);
}

/**
 * Counts the SSE comment lines (`: heartbeat`, the worker's keepalives) of a response body as
 * it streams by; the bytes pass through unchanged.
 */
function commentCounter(onComment) {
  let lineStart = true;
  return new TransformStream({
    transform(chunk, controller) {
      for (let i = 0; i < chunk.length; i += 1) {
        const byte = chunk[i];
        if (lineStart && byte === 0x3a) onComment();
        lineStart = byte === 0x0a || byte === 0x0d;
      }
      controller.enqueue(chunk);
    },
  });
}

/**
 * The `fetch` the page's generate() uses: notes when the request went out (the origin of the
 * worker's `atMs`) and counts the keepalives in the streamed body. Cancelling the body the
 * guard reads cancels the response underneath.
 */
function watchedFetch(current) {
  return async (url, init) => {
    current.requestAt = performance.now() - current.t0;
    const response = await fetch(url, init);
    if (!response.body) return response;
    const body = response.body.pipeThrough(commentCounter(() => onKeepalive(current)));
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

// ------------------------------------------------------------------ one generation

async function send() {
  if (run?.active || !session) return;
  const prompt = ui.prompt.value.trim();
  if (!prompt) {
    ui.prompt.focus();
    return;
  }
  const model = ui.scenario.value;
  const current = {
    t0: performance.now(),
    active: true,
    state: "idle",
    chunks: 0,
    lastTextAt: null,
    firstTokenMs: null,
    keepalives: 0,
    /** When the request to the worker went out, in ms since Send. */
    requestAt: null,
    doneItem: null,
    worker: { asking: null, answeredBy: null, partial: false, timeouts: [], failures: [], failovers: [], retries: 0 },
    ticker: 0,
    started: false,
    cancelledEarly: null,
  };
  run = current;
  ui.answer.textContent = "";
  ui.answer.dataset.streaming = "true";
  ui.timeline.replaceChildren();
  hideNotice();
  ui.statProvider.textContent = "–";
  ui.statFirst.textContent = "–";
  ui.statChunks.textContent = "0";
  ui.statKeepalives.textContent = "0";
  // Send stays focusable (aria-disabled), so focus stays where the user left it.
  ui.send.setAttribute("aria-disabled", "true");
  disable(ui.scenario);
  ui.cancel.disabled = false;
  document.body.dataset.generating = "true";
  setState("connecting");
  log(current, "page", "send", `send to ${model}`);
  revealAnswer();
  current.ticker = setInterval(() => tick(current), 100);

  // A dropped link is set up again first (tens of ms on loopback), so Drop works again; a link
  // that cannot be set up within 2 s is not waited for.
  let linkWait;
  await Promise.race([ensureLink(), new Promise((resolve) => (linkWait = setTimeout(resolve, 2000)))]);
  clearTimeout(linkWait);
  if (current.cancelledEarly) {
    const error = new Error("cancelled before the request was sent");
    fail(current, Object.assign(error, { name: "GuardError", kind: "aborted", reason: current.cancelledEarly }));
    return;
  }
  current.started = true;

  try {
    const result = await session.generate({
      providers: [{
        name: "edge worker",
        url: "/v1/chat/completions",
        model,
        headers: { "X-LSG-Events": "1" },
      }],
      messages: [{ role: "user", content: prompt }],
      timeouts: PAGE_TIMEOUTS,
      // The worker retries and fails over behind its endpoint; the page shows what it decided.
      retry: { maxRetries: 0 },
      fetch: watchedFetch(current),
      onText: (delta) => onText(current, delta),
      onEvent: (event) => onPageEvent(current, event),
    });
    finish(current, result);
  } catch (error) {
    fail(current, error);
  }
}

/** On a narrow screen the answer is below the form: bring it into view. */
function revealAnswer() {
  if (!matchMedia("(max-width: 899px)").matches) return;
  const card = ui.answer.closest(".result");
  if (card.getBoundingClientRect().top < window.innerHeight * 0.6) return;
  const smooth = !matchMedia("(prefers-reduced-motion: reduce)").matches;
  card.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
}

function settle(current) {
  current.active = false;
  clearInterval(current.ticker);
  ui.statElapsed.textContent = ms(performance.now() - current.t0);
  delete ui.answer.dataset.streaming;
  delete document.body.dataset.generating;
  ui.send.removeAttribute("aria-disabled");
  ui.scenario.disabled = false;
  disable(ui.cancel);
  showDetail(current);
  showResources();
}

function finish(current, result) {
  settle(current);
  const w = current.worker;
  const by = w.answeredBy ?? result.provider;
  ui.statProvider.textContent = by;
  const story = fallbackStory(current);
  if (result.partial) {
    const cause = result.cause ?? {};
    // The error that cut the answer short, on the timeline just before the partial "done".
    const error = log(current, "page", "error",
      `${cause.kind ?? "unknown"} error after ${chunks(current.chunks)}: ${cause.message ?? "no message"}`,
      current.doneItem ? Number(current.doneItem.dataset.ms) : undefined);
    if (error && current.doneItem?.isConnected) ui.timeline.insertBefore(error, current.doneItem);
    const why = w.timeouts.some((t) => t.provider === by) || w.failures.some((f) => f.provider === by)
      ? whyLeft(w, by)
      : `${by} was cut short (${cause.message ?? "unknown cause"})`;
    const prefix = story ? `${story}: answered by ${by}. ` : "";
    showNotice("partial", `${prefix}Partial answer: ${why}; the ${chunks(current.chunks)} received are kept`);
    setState("partial", chunks(current.chunks));
  } else {
    if (story) showNotice("fallback", `${story}: answered by ${by}`);
    setState("done", ui.statElapsed.textContent);
  }
}

function fail(current, error) {
  settle(current);
  const isGuard = error instanceof Error && error.name === "GuardError";
  if (isGuard && error.kind === "aborted") {
    const reason = error.reason ?? "cancel";
    const why = REASONS[reason] ?? reason;
    showNotice("cancelled",
      `Cancelled (${reason}): ${why}. The request to the edge worker was aborted, so the worker ` +
      `released its upstream connection${current.chunks ? `; the ${chunks(current.chunks)} received are kept` : ""}.`);
    setState("cancelled", reason);
    return;
  }
  const kind = isGuard ? error.kind : "error";
  const message = error?.message ?? String(error);
  const story = fallbackStory(current);
  showNotice("failed", `${story ? `${story}. ` : ""}No answer: ${message}`);
  setState("failed", isGuard && error.status ? `HTTP ${error.status}` : kind);
}

// ------------------------------------------------------------------ start-up

function describeModel(id) {
  if (!config) return "";
  if (id === "mock/local") return "The local fallback answers directly, at a realistic pace.";
  if (id.startsWith("mock/")) {
    return `The edge worker asks the “${id.slice(5)}” scenario of the mock upstream first, then the local fallback.`;
  }
  return "The edge worker asks OpenRouter first, then the local fallback.";
}

function fillModels() {
  const models = Array.isArray(config.models) ? config.models : [];
  ui.scenario.replaceChildren();
  const mock = models.filter((m) => m.id.startsWith("mock/"));
  const other = models.filter((m) => !m.id.startsWith("mock/"));
  const option = (m) => {
    const o = document.createElement("option");
    o.value = m.id;
    o.textContent = m.label ?? m.id;
    return o;
  };
  if (other.length) {
    const group = document.createElement("optgroup");
    group.label = "OpenRouter";
    group.append(...other.map(option));
    ui.scenario.append(group);
    const scenarios = document.createElement("optgroup");
    scenarios.label = "Mock scenarios";
    scenarios.append(...mock.map(option));
    ui.scenario.append(scenarios);
  } else {
    ui.scenario.append(...mock.map(option));
  }
  if (models.some((m) => m.id === config.defaultModel)) ui.scenario.value = config.defaultModel;
  ui.scenarioHint.textContent = describeModel(ui.scenario.value);
  ui.scenario.disabled = false;
}

function fillDeadlines() {
  if (typeof config.heartbeatMs === "number") $("heartbeat").textContent = ms(config.heartbeatMs);
  const t = config.workerTimeouts ?? {};
  const rows = [
    ["headers", t.headersMs],
    ["first token", t.firstTokenMs],
    ["idle", t.idleMs],
    ["one attempt", t.streamMs],
    ["whole call", t.serviceMs],
  ];
  ui.deadlines.replaceChildren();
  for (const [name, value] of rows) {
    if (typeof value !== "number") continue;
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = ms(value);
    div.append(dt, dd);
    ui.deadlines.append(div);
  }
}

async function main() {
  try {
    const [loaded] = await Promise.all([
      fetch("config.json", { cache: "no-store" }).then((r) => {
        if (!r.ok) throw new Error(`config.json: HTTP ${r.status}`);
        return r.json();
      }),
      init(),
    ]);
    config = loaded;
    session = new Session();
  } catch (error) {
    setState("failed", "start-up");
    showNotice("failed", `The page could not start: ${error?.message ?? error}`);
    return;
  }
  ui.mode.textContent = config.mode === "openrouter" ? "OpenRouter + mock fallback" : "mock upstream";
  ui.mode.hidden = false;
  fillModels();
  fillDeadlines();
  ui.send.disabled = false;
  showResources();
  document.documentElement.dataset.ready = "true";
  connectLink();
}

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
ui.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    send();
  }
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") cancel();
});
function cancel() {
  if (!run?.active) return;
  if (run.started) session.cancel();
  else run.cancelledEarly = "cancel";
}

ui.cancel.addEventListener("click", cancel);
ui.drop.addEventListener("click", dropLink);
ui.scenario.addEventListener("change", () => {
  ui.scenarioHint.textContent = describeModel(ui.scenario.value);
});

main();
