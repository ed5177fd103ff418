// What a user of the package writes in a Vite app with no plugin and no configuration: named
// imports, no init() call, the package's own types used for real. First the README's first
// example runs against the mock upstream (example.js, written by install.test.mjs), then the
// page checks SseParser and generate() over an injected fetch, and reports everything into the
// DOM for a headless browser; #status ends as "done" or "error: ...".

import * as lib from "llm-stream-guard";
import { result as exampleResult } from "./example.js";
import { describe as report } from "./report.js";
import {
  generate,
  liveResources,
  Session,
  SseParser,
  type GenerateOptions,
  type GenerateResult,
  type GuardError,
  type GuardEvent,
  type SseEvent,
} from "llm-stream-guard";

const statusEl = document.getElementById("status")!;
const eventsEl = document.getElementById("events")!;
const answerEl = document.getElementById("answer")!;
const logEl = document.getElementById("log")!;
const sessionEl = document.getElementById("session")!;
const reportEl = document.getElementById("report")!;

function isGuardError(error: unknown): error is GuardError {
  return error instanceof Error && error.name === "GuardError";
}

/** Exhaustiveness: a new event type that is not handled below fails to type-check. */
function unreachable(value: never): never {
  throw new Error(`unhandled event ${JSON.stringify(value)}`);
}

/** One line per event, narrowed by `type`. */
function describe(event: GuardEvent): string {
  switch (event.type) {
    case "request-start":
      return `request-start ${event.provider} ${event.model} #${event.attempt}`;
    case "headers":
      return `headers ${event.provider} ${event.status}`;
    case "first-token":
      return `first-token ${event.provider} ${event.firstTokenMs >= 0}`;
    case "stream-end":
      return `stream-end ${event.provider} lines=${event.lines} chunks=${event.chunks}`;
    case "timeout":
      return `timeout ${event.provider} ${event.layer} ${event.phase} ${event.elapsedMs}`;
    case "empty-response":
      return `empty-response ${event.provider} lines=${event.lines}`;
    case "attempt-failed":
      return `attempt-failed ${event.provider} ${event.kind} ${event.status ?? "-"} ${event.message}`;
    case "retry":
      return `retry ${event.provider} #${event.attempt} ${event.delayMs} ${event.reason}`;
    case "failover":
      return `failover ${event.from} -> ${event.to} ${event.reason}`;
    case "malformed":
      return `malformed ${event.provider} ${event.reason} ${event.bytes}`;
    case "cancelled":
      return `cancelled ${event.reason}`;
    case "upstream-event":
      return `upstream-event ${event.provider} ${JSON.stringify(event.event)}`;
    case "hedge":
      return `hedge ${event.provider} -> ${event.to} after ${event.afterMs}`;
    case "continuation":
      return `continuation ${event.from} -> ${event.to} at ${event.chars} (${event.reason})`;
    case "skipped":
      return `skipped ${event.provider}/${event.model} (${event.reason}) ${event.retryInMs ?? "-"}`;
    case "done":
      return `done ${event.provider} partial=${event.partial}`;
    default:
      return unreachable(event);
  }
}

/** Every field of the result, read with its declared type. */
function summarize(result: GenerateResult): string {
  const text: string = result.text;
  const partial: boolean = result.partial;
  const finish: string | undefined = result.finishReason;
  const total: number | undefined = result.usage?.total_tokens;
  const cause: string | undefined = result.cause && `${result.cause.kind}/${result.cause.phase ?? "-"}`;
  const tools: string[] = (result.toolCalls ?? []).map((call) => `${call.id}:${call.name}(${call.arguments})`);
  const attempts: string[] = result.attempts.map(
    (attempt) => `${attempt.provider}:${attempt.outcome}:${attempt.status ?? "-"}:${attempt.elapsedMs >= 0}`,
  );
  const { lines, chunks, firstTokenMs, elapsedMs } = result.stats;
  return [
    `text=${text}`,
    `partial=${partial}`,
    `finish=${finish ?? "-"}`,
    `provider=${result.provider}`,
    `model=${result.model}`,
    `usage=${total ?? "-"}`,
    `cause=${cause ?? "-"}`,
    `generation=${result.generationId ?? "-"}`,
    `tools=${tools.join(",")}`,
    `stats=${lines}/${chunks}/${firstTokenMs !== undefined}/${elapsedMs >= 0}`,
    `attempts=${attempts.join(",")}`,
  ].join("\n");
}

// 1. SseParser: one stream split at awkward places (inside a UTF-8 character, between CR and
//    LF, inside a field name), with a comment, an id and a named event.
const encoder = new TextEncoder();
const stream = encoder.encode(
  ": keepalive\r\ndata: h\u00e9llo\r\n\r\nid: 7\nevent: update\ndata: one\ndata: two\n\ndata: [DONE]\n\n",
);
const parser = new SseParser({ maxEventBytes: 4096 });
const parsed: SseEvent[] = [];
let from = 0;
for (const cut of [1, 21, 26, 28, 40, 52, stream.length]) {
  parsed.push(...parser.push(stream.subarray(from, cut)));
  from = cut;
}
parsed.push(...parser.end());
parser.free();
eventsEl.textContent = JSON.stringify(parsed);

// 2. generate() over an injected fetch that streams a short answer as an OpenAI-compatible
//    server does, so the page needs no network.
const body = [
  `data: {"id":"gen-1","model":"m-served","choices":[{"delta":{"role":"assistant"}}]}\n\n`,
  `data: {"id":"gen-1","model":"m-served","choices":[{"delta":{"content":"Hel"}}]}\n\n`,
  `: OPENROUTER PROCESSING\n\n`,
  `data: {"id":"gen-1","model":"m-served","choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}\n\n`,
  `data: {"id":"gen-1","model":"m-served","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n`,
  `data: [DONE]\n\n`,
];
const fakeFetch: typeof fetch = async () =>
  new Response(
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const piece of body) controller.enqueue(encoder.encode(piece));
        controller.close();
      },
    }),
    { status: 200, headers: { "content-type": "text/event-stream" } },
  );

const seen: string[] = [];
const texts: string[] = [];
const controller = new AbortController();
// Every option, so a renamed or retyped one fails to compile here.
const options = {
  providers: [
    {
      name: "local",
      url: "https://llm.invalid/v1/chat/completions",
      model: "m-asked",
      apiKey: "sk-never-sent",
      headers: { "X-Title": "install check" },
      timeouts: { headersMs: 5000, firstTokenMs: 5000 },
      maxRetries: 0,
    },
  ],
  messages: [{ role: "user", content: "Hello" }],
  params: { temperature: 0, max_tokens: 16 },
  stream: true,
  timeouts: { headersMs: 5000, firstTokenMs: 5000, idleMs: 5000, streamMs: 10000, serviceMs: 15000 },
  retry: { maxRetries: 1, baseDelayMs: 10, maxDelayMs: 100 },
  maxEventBytes: 65536,
  signal: controller.signal,
  onText: (delta: string) => texts.push(delta),
  onEvent: (event: GuardEvent) => seen.push(describe(event)),
  fetch: fakeFetch,
  log: "error",
} satisfies Required<GenerateOptions>;

// The same call through a Session, which must hold nothing once it is over.
const session = new Session({ page: false });
try {
  const tracked = await session.generate({ ...options, onText: undefined, onEvent: undefined, signal: undefined });
  session.close();
  const held = liveResources();
  sessionEl.textContent = `${tracked.text} active=${session.active} held=${held.timers + held.readers + held.listeners + held.inFlight}`;
} catch (error) {
  sessionEl.textContent = `failed: ${String(error)}`;
}

try {
  const result = await generate(options);
  answerEl.textContent = `${summarize(result)}\ndeltas=${texts.join("|")}`;
  logEl.textContent = seen.join("\n");
  reportEl.textContent = JSON.stringify(await report(lib, exampleResult));
  statusEl.textContent = "done";
} catch (error) {
  logEl.textContent = seen.join("\n");
  statusEl.textContent = isGuardError(error)
    ? `error: GuardError ${error.kind}: ${error.message}`
    : `error: ${String(error)}`;
}
