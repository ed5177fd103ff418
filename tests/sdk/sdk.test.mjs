// guardFetch() inside the real SDKs, as users plug it in: `openai` (chat completions and the
// Responses API), the AI SDK (`ai` + `@ai-sdk/openai-compatible`) and `@anthropic-ai/sdk`, each
// the exact version pinned in the root package.json, against the mock upstream. The guard is the
// built package (`cargo xtask build`), imported from its folder.
//
//   cargo xtask test --only sdk      # builds the package, starts the mock upstream
//
// Environment: LSG_PACKAGE_DIR (the built package's folder), MOCK_URL (the mock upstream).
// Every request is tagged for the mock's ledger, which says how many requests reached the
// upstream and when each connection closed. The one extra server (a JSON answer with tool calls,
// which no mock scenario sends) listens on 127.0.0.1 port 0 and is closed by its test. An
// unhandled promise rejection fails the test it happened in.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { streamText } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { jsonToolServer } from "./tools.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const PACKAGE_DIR = process.env.LSG_PACKAGE_DIR ?? path.join(repo, "target", "pkg", "llm-stream-guard");
const MOCK = (process.env.MOCK_URL ?? "").replace(/\/$/, "");
const { Guard, guardFetch, Session } = await import(pathToFileURL(path.join(PACKAGE_DIR, "node.mjs")).href);

/** The mock upstream's canned answer, from its source. */
const DEFAULT_TEXT = (() => {
  const source = readFileSync(path.join(repo, "mock-upstream", "src", "texts.rs"), "utf8");
  const match = /pub const DEFAULT_TEXT: &str = "([^"\\]*)";/.exec(source);
  assert.ok(match, "mock-upstream/src/texts.rs has no DEFAULT_TEXT");
  return match[1];
})();

const OWN_KEY = "sk-own-key-0123456789abcdef";
const FALLBACK_KEY = "sk-fallback-key-9876543210";
const MESSAGES = [{ role: "user", content: "hi" }];

const rejections = [];
process.on("unhandledRejection", (reason) => rejections.push(reason));

let tags = 0;
/** A ledger tag for one test's requests. */
const tagged = (name) => `sdk-${name}-${process.pid}-${++tags}`;

function check(name, body) {
  test(name, { timeout: 60_000 }, async () => {
    assert.ok(MOCK, "MOCK_URL is not set");
    await body();
    assert.deepEqual(rejections.splice(0), [], "unhandled promise rejections");
  });
}

/** The mock's ledger for `tag` (waiting until its connections closed, when asked). */
async function ledger(tag, waitClosedMs = 0) {
  const wait = waitClosedMs ? `&wait_closed_ms=${waitClosedMs}` : "";
  const response = await fetch(`${MOCK}/_ledger?tag=${encodeURIComponent(tag)}${wait}`);
  return (await response.json()).connections;
}

/** A scenario's base URL for an SDK (the SDK appends its endpoint). */
const base = (scenario) => `${MOCK}/scenario/${scenario}/v1`;

/** A fallback provider at a scenario's endpoint, tagged. */
function fallback(scenario, tag, endpoint = "chat/completions", extra = {}) {
  return {
    name: "fallback",
    url: `${MOCK}/scenario/${scenario}/v1/${endpoint}?tag=${tag}`,
    model: "fallback-model",
    apiKey: FALLBACK_KEY,
    ...extra,
  };
}

/** A body passed on while its chunks are kept. */
function recorded(response, chunks) {
  if (!response.body) return response;
  const body = response.body.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        chunks.push(Buffer.from(chunk));
        controller.enqueue(chunk);
      },
    }),
  );
  return new Response(body, response);
}

/** A `fetch` for the guard to wrap that keeps what the upstream sent, per request. */
function upstreamRecorder(log) {
  return async (url, init) => {
    const chunks = [];
    log.push({ url: String(url), body: init?.body, headers: init?.headers, chunks });
    return recorded(await fetch(url, init), chunks);
  };
}

/** The SDK's `fetch`: the guard, with what the SDK got kept, per request. */
function sdkRecorder(guarded, log) {
  return async (url, init) => {
    const chunks = [];
    log.push(chunks);
    return recorded(await guarded(url, init), chunks);
  };
}

/** The `data:` payloads of SSE bytes, parsed (the `[DONE]` left out). */
function dataEvents(bytes) {
  return bytes
    .toString("utf8")
    .split(/\r?\n/)
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).trim())
    .filter((data) => data !== "[DONE]")
    .map((data) => JSON.parse(data));
}

check("openai: chunks are byte-identical to the upstream's; usage when asked, none when not", async () => {
  for (const includeUsage of [true, false]) {
    const tag = tagged("bytes");
    const upstream = [];
    const sdk = [];
    const client = new OpenAI({
      baseURL: base("logprobs-annotations"),
      apiKey: OWN_KEY,
      defaultQuery: { tag, usage: "asked" },
      fetch: sdkRecorder(guardFetch({ fetch: upstreamRecorder(upstream) }), sdk),
    });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: MESSAGES,
      stream: true,
      logprobs: true,
      ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(upstream.length, 1);
    const sent = Buffer.concat(upstream[0].chunks);
    const got = Buffer.concat(sdk[0]);
    assert.ok(sent.length > 200, "the upstream sent a stream");
    assert.ok(got.equals(sent), "the SDK got the upstream's bytes, every one, in order");
    assert.deepEqual(JSON.parse(JSON.stringify(chunks)), dataEvents(sent), "the SDK parsed the same chunks");
    const withUsage = chunks.filter((c) => c.usage);
    assert.equal(withUsage.length, includeUsage ? 1 : 0, `usage chunks when include_usage=${includeUsage}`);
    if (includeUsage) assert.ok(withUsage[0].usage.total_tokens > 0);
    assert.ok(chunks.some((c) => c.choices[0]?.logprobs), "logprobs passed through");
  }
});

check("openai: tool calls streamed arrive intact", async () => {
  const tag = tagged("tools");
  const upstream = [];
  const client = new OpenAI({
    baseURL: base("tool-calls"),
    apiKey: OWN_KEY,
    defaultQuery: { tag },
    fetch: guardFetch({ fetch: upstreamRecorder(upstream) }),
  });
  const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.deepEqual(JSON.parse(JSON.stringify(chunks)), dataEvents(Buffer.concat(upstream[0].chunks)));
  const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  const name = calls.map((c) => c.function?.name ?? "").join("");
  const args = calls.map((c) => c.function?.arguments ?? "").join("");
  assert.ok(name.length > 0, "a tool name");
  assert.equal(typeof JSON.parse(args), "object", "the fragments join into JSON arguments");
  assert.equal(chunks.at(-2)?.choices[0]?.finish_reason ?? chunks.at(-1)?.choices[0]?.finish_reason, "tool_calls");
});

check("openai: a JSON answer with tool calls arrives intact, through a failover that changed only the model", async () => {
  const upstream = await jsonToolServer();
  const tag = tagged("json");
  try {
    const client = new OpenAI({
      baseURL: base("http-503"),
      apiKey: OWN_KEY,
      defaultQuery: { tag },
      fetch: guardFetch({ retry: { maxRetries: 0 }, providers: [{ name: "local", url: upstream.url, model: "fallback-model", apiKey: FALLBACK_KEY }] }),
    });
    const result = await client.chat.completions.create({ model: "gpt-4o", messages: MESSAGES, temperature: 0.25 });
    assert.deepEqual(JSON.parse(JSON.stringify(result)), upstream.answer);
    const own = await ledger(tag);
    assert.equal(own.length, 1, "the SDK's own endpoint was asked once");
    assert.equal(upstream.bodies.length, 1);
    assert.equal(upstream.bodies[0], own[0].body.replace("\"model\":\"gpt-4o\"", "\"model\":\"fallback-model\""), "only the model changed");
    assert.equal(upstream.authorizations[0], `Bearer ${FALLBACK_KEY}`);
  } finally {
    await upstream.close();
  }
});

check("openai: a stall before the first token fails over invisibly", async () => {
  const tag = tagged("stall-first");
  const events = [];
  const client = new OpenAI({
    baseURL: base("headers-then-silence"),
    apiKey: OWN_KEY,
    defaultQuery: { tag },
    fetch: guardFetch({
      timeouts: { firstTokenMs: 300 },
      providers: [fallback("normal", tag)],
      onEvent: (e) => events.push(e),
    }),
  });
  const started = Date.now();
  const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  assert.equal(text, DEFAULT_TEXT);
  const connections = await ledger(tag, 2_000);
  assert.equal(connections.length, 2, "one stalled request, one answered");
  assert.equal(connections[0].scenario, "headers-then-silence");
  assert.ok(connections[0].closed_at_ms, "the stalled upstream was released");
  assert.ok(connections[0].closed_at_ms - started < 300 + 200, "released at the first-token deadline");
  assert.equal(JSON.parse(connections[1].body).model, "fallback-model");
  const types = events.map((e) => e.type);
  assert.deepEqual(types.filter((t) => ["timeout", "failover", "first-token", "done"].includes(t)), ["timeout", "failover", "first-token", "done"]);
  assert.ok(!JSON.stringify(events).includes(OWN_KEY) && !JSON.stringify(events).includes(FALLBACK_KEY), "no key in events");
});

check("a stall after text surfaces as the SDK's error (onCut: \"error\")", async () => {
  const tag = tagged("cut-error");
  const client = new OpenAI({
    baseURL: base("stall-after-chunks"),
    apiKey: OWN_KEY,
    defaultQuery: { tag },
    fetch: guardFetch({ timeouts: { idleMs: 250 }, providers: [fallback("normal", tag)] }),
  });
  let text = "";
  const error = await (async () => {
    const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
  })().then(() => null, (e) => e);
  assert.ok(error, "the SDK's stream threw");
  assert.equal(error.name, "GuardError");
  assert.equal(error.kind, "timeout");
  assert.equal(error.phase, "idle");
  assert.equal(error.partial, true);
  assert.ok(text.length > 0 && DEFAULT_TEXT.startsWith(text), `the text before the cut: ${JSON.stringify(text)}`);
  const connections = await ledger(tag, 2_000);
  assert.equal(connections.length, 1, "no failover after text");
  assert.ok(connections[0].closed_at_ms, "the stalled upstream was released");

  const provider = createOpenAICompatible({
    name: "mock",
    baseURL: base("stall-after-chunks"),
    apiKey: OWN_KEY,
    fetch: guardFetch({ timeouts: { idleMs: 250 } }),
  });
  const result = streamText({ model: provider.chatModel("m"), prompt: "hi", maxRetries: 0, onError: () => {} });
  const thrown = await (async () => {
    for await (const _ of result.textStream);
  })().then(() => null, (e) => e);
  const cause = thrown?.cause ?? thrown;
  assert.ok(thrown, "the AI SDK's stream threw");
  assert.equal(cause.name, "GuardError", `the AI SDK's error carries the guard's: ${thrown}`);
});

check("a stall after text surfaces as the SDK's finish (onCut: \"finish\")", async () => {
  const errors = [];
  const provider = createOpenAICompatible({
    name: "mock",
    baseURL: base("stall-after-chunks"),
    apiKey: OWN_KEY,
    fetch: guardFetch({ timeouts: { idleMs: 250 }, onCut: "finish" }),
  });
  const result = streamText({ model: provider.chatModel("m"), prompt: "hi", maxRetries: 0, onError: ({ error }) => errors.push(error) });
  let text = "";
  for await (const piece of result.textStream) text += piece;
  assert.ok(text.length > 0 && DEFAULT_TEXT.startsWith(text) && text !== DEFAULT_TEXT, `a partial answer: ${JSON.stringify(text)}`);
  assert.equal(await result.finishReason, "error");
  assert.ok(errors.some((e) => String(e?.message ?? e).includes("idle timeout")), "the guard's error object reached onError");

  // openai-node reads an `error` field in a chunk as the stream's error: it throws an APIError
  // with the guard's message (and the text before it was delivered).
  const client = new OpenAI({ baseURL: base("stall-after-chunks"), apiKey: OWN_KEY, fetch: guardFetch({ timeouts: { idleMs: 250 }, onCut: "finish" }) });
  let partial = "";
  const error = await (async () => {
    const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
    for await (const chunk of stream) partial += chunk.choices[0]?.delta?.content ?? "";
  })().then(() => null, (e) => e);
  assert.ok(error instanceof OpenAI.APIError, `openai throws its APIError: ${error}`);
  assert.match(error.message, /idle timeout/);
  assert.ok(partial.length > 0 && DEFAULT_TEXT.startsWith(partial));
});

check("everything failing gives one request per provider, not the SDK's three, and a status it does not retry", async () => {
  const control = tagged("unguarded");
  const unguarded = new OpenAI({ baseURL: base("http-503"), apiKey: OWN_KEY, defaultQuery: { control, tag: control }, maxRetries: 2 });
  await assert.rejects(unguarded.chat.completions.create({ model: "m", messages: MESSAGES, stream: true }));
  assert.equal((await ledger(control)).length, 3, "unguarded, the SDK asks three times");

  const tag = tagged("all-fail");
  const client = new OpenAI({
    baseURL: base("http-503"),
    apiKey: OWN_KEY,
    defaultQuery: { tag },
    maxRetries: 2,
    fetch: guardFetch({ retry: { maxRetries: 0 }, providers: [fallback("http-500", tag)] }),
  });
  const error = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true }).then(() => null, (e) => e);
  assert.ok(error instanceof OpenAI.APIError, String(error));
  assert.equal(error.status, 502);
  assert.equal(error.headers.get("x-should-retry"), "false");
  assert.match(error.message, /HTTP 503 from 127\.0\.0\.1:\d+/);
  assert.match(error.message, /fallback: HTTP 500/);
  assert.ok(!error.message.includes(OWN_KEY) && !error.message.includes(FALLBACK_KEY));
  const connections = await ledger(tag);
  assert.deepEqual(connections.map((c) => c.scenario), ["http-503", "http-500"], "one request each");

  const timeoutTag = tagged("all-timeout");
  const timingOut = new OpenAI({
    baseURL: base("no-headers"),
    apiKey: OWN_KEY,
    defaultQuery: { tag: timeoutTag },
    fetch: guardFetch({ timeouts: { headersMs: 200 }, retry: { maxRetries: 0 } }),
  });
  const timeout = await timingOut.chat.completions.create({ model: "m", messages: MESSAGES, stream: true }).then(() => null, (e) => e);
  assert.equal(timeout?.status, 504);
  assert.match(timeout.message, /headers timeout/);
  assert.equal((await ledger(timeoutTag, 2_000)).length, 1);
});

check("aborting the SDK's stream closes the upstream within 100 ms", async () => {
  const tag = tagged("abort");
  const client = new OpenAI({ baseURL: base("stall-after-chunks"), apiKey: OWN_KEY, defaultQuery: { tag }, fetch: guardFetch() });
  const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
  let aborted = 0;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta?.content) {
      aborted = Date.now();
      stream.controller.abort();
      break;
    }
  }
  const [connection] = await ledger(tag, 2_000);
  assert.ok(connection.closed_at_ms, "closed");
  const delay = connection.closed_at_ms - aborted;
  assert.ok(delay < 100, `closed ${delay.toFixed(1)} ms after the abort`);

  const aiTag = tagged("abort-ai");
  const controller = new AbortController();
  const provider = createOpenAICompatible({ name: "mock", baseURL: base("stall-after-chunks"), apiKey: OWN_KEY, queryParams: { tag: aiTag }, fetch: guardFetch() });
  const result = streamText({ model: provider.chatModel("m"), prompt: "hi", abortSignal: controller.signal, maxRetries: 0, onError: () => {} });
  let aiAborted = 0;
  await (async () => {
    for await (const _ of result.textStream) {
      aiAborted = Date.now();
      controller.abort();
    }
  })().catch(() => {});
  const [aiConnection] = await ledger(aiTag, 2_000);
  assert.ok(aiConnection.closed_at_ms - aiAborted < 100, `AI SDK: closed ${(aiConnection.closed_at_ms - aiAborted).toFixed(1)} ms after the abort`);
});

check("a session's cancel ends the SDK's stream and closes the upstream", async () => {
  const tag = tagged("session");
  const session = new Session({ page: false });
  const client = new OpenAI({ baseURL: base("stall-after-chunks"), apiKey: OWN_KEY, defaultQuery: { tag }, fetch: guardFetch({ session }) });
  const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
  let cancelled = 0;
  const error = await (async () => {
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content && !cancelled) {
        cancelled = Date.now();
        session.cancel("user-left");
      }
    }
  })().then(() => null, (e) => e);
  assert.ok(error, "the stream ended with an error");
  assert.equal(error.name, "GuardError", String(error));
  assert.equal(error.kind, "aborted");
  assert.equal(error.reason, "user-left");
  const [connection] = await ledger(tag, 2_000);
  assert.ok(connection.closed_at_ms - cancelled < 100, "the upstream closed at once");
  assert.equal(session.active, 0, "the request is no longer tracked");
  session.close();
});

check("the Responses API is guarded: keepalives are not progress, a stall fails over", async () => {
  const tag = tagged("responses");
  const client = new OpenAI({
    baseURL: base("responses-keepalive-then-stall"),
    apiKey: OWN_KEY,
    defaultQuery: { tag, keepalive_ms: "50" },
    fetch: guardFetch({ timeouts: { firstTokenMs: 400 }, providers: [fallback("responses-normal", tag, "responses")] }),
  });
  const stream = await client.responses.create({ model: "gpt-4o", input: "hi", stream: true });
  let text = "";
  const types = [];
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === "response.output_text.delta") text += event.delta;
  }
  assert.equal(text, DEFAULT_TEXT);
  assert.ok(!types.includes("keepalive"), "the stalled attempt's keepalives never reached the SDK");
  assert.equal(types.at(-1), "response.completed");
  const connections = await ledger(tag, 2_000);
  assert.deepEqual(connections.map((c) => c.scenario), ["responses-keepalive-then-stall", "responses-normal"]);
  assert.ok(connections[0].closed_at_ms);
});

check("the Anthropic SDK is guarded: pings are not progress, a stall fails over with the fallback's own key", async () => {
  const tag = tagged("anthropic");
  const upstream = [];
  const client = new Anthropic({
    baseURL: `${MOCK}/scenario/anthropic-ping-forever`,
    apiKey: OWN_KEY,
    defaultQuery: { tag },
    fetch: guardFetch({
      timeouts: { firstTokenMs: 400 },
      providers: [fallback("anthropic-normal", tag, "messages")],
      fetch: upstreamRecorder(upstream),
    }),
  });
  const stream = await client.messages.create({ model: "claude-x", max_tokens: 50, messages: MESSAGES, stream: true });
  let text = "";
  for await (const event of stream) {
    if (event.type === "content_block_delta") text += event.delta.text;
  }
  assert.equal(text, DEFAULT_TEXT);
  assert.equal(upstream.length, 2);
  // The fallback gets its own key in the header the SDK used for its own.
  const keyHeader = (headers, key) => Object.keys(headers).find((n) => String(headers[n]).includes(key))?.toLowerCase();
  const own = keyHeader(upstream[0].headers, OWN_KEY);
  assert.ok(own, "the SDK's own request carried its key");
  assert.equal(keyHeader(upstream[1].headers, FALLBACK_KEY), own, `the fallback's key in ${own}`);
  assert.equal(keyHeader(upstream[1].headers, OWN_KEY), undefined, "the SDK's key is not sent to the fallback");
  assert.equal(JSON.parse(upstream[1].body).model, "fallback-model");
  const connections = await ledger(tag, 2_000);
  assert.equal(connections.length, 2);
  assert.ok(connections[0].closed_at_ms, "the pinging upstream was released");
});

check("the AI SDK: a stall before the first token fails over invisibly", async () => {
  const tag = tagged("ai-failover");
  const provider = createOpenAICompatible({
    name: "mock",
    baseURL: base("headers-then-silence"),
    apiKey: OWN_KEY,
    queryParams: { tag },
    fetch: guardFetch({ timeouts: { firstTokenMs: 300 }, providers: [fallback("normal", tag)] }),
  });
  const result = streamText({ model: provider.chatModel("m"), prompt: "hi", maxRetries: 0 });
  let text = "";
  for await (const piece of result.textStream) text += piece;
  assert.equal(text, DEFAULT_TEXT);
  assert.equal(await result.finishReason, "stop");
  assert.equal((await ledger(tag)).length, 2);
});

check("a Guard's fetch in openai: its providers are the fallbacks, a stalled one's breaker opens and the next request skips it; closed with the guard", async () => {
  const tag = tagged("guard-fetch");
  const events = [];
  const guard = new Guard({
    providers: [
      { ...fallback("headers-then-silence", tag), name: "stalled", timeouts: { firstTokenMs: 300 } },
      { ...fallback("normal", tag), name: "steady" },
    ],
    retry: { maxRetries: 0 },
    breaker: { failureThreshold: 1, cooldownMs: 60_000 },
    onEvent: (event) => events.push(event),
  });
  assert.equal(guard.fetch, guard.fetch, "one function");
  // The request's own endpoint answers 500: the guard's providers are tried after it.
  const client = new OpenAI({ baseURL: base("http-500"), apiKey: OWN_KEY, defaultQuery: { tag }, maxRetries: 0, fetch: guard.fetch });
  const ask = async () => {
    const stream = await client.chat.completions.create({ model: "m", messages: MESSAGES, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    return text;
  };
  assert.equal(await ask(), DEFAULT_TEXT);
  // The ledger lists connections as the mock accepted them, which two requests sent one after
  // the other on fresh connections may not keep: the order is the guard's own, from its events.
  assert.deepEqual((await ledger(tag, 2_000)).map((c) => c.scenario).sort(), ["headers-then-silence", "http-500", "normal"]);
  const started = events.filter((e) => e.type === "request-start").map((e) => e.provider);
  assert.deepEqual(started.slice(1), ["stalled", "steady"], `after the request's own endpoint: ${started}`);
  assert.equal(started.length, 3);
  const stalled = () => guard.stats().find((s) => s.provider === "stalled");
  assert.equal(stalled().breaker.state, "open", JSON.stringify(guard.stats()));
  assert.equal(guard.stats().find((s) => s.provider === "steady").samples, 1, "the answer was learned");

  events.length = 0;
  assert.equal(await ask(), DEFAULT_TEXT);
  assert.deepEqual(
    (await ledger(tag, 2_000)).map((c) => c.scenario).sort(),
    ["headers-then-silence", "http-500", "http-500", "normal", "normal"],
    "nothing was sent to the open provider",
  );
  const skipped = events.filter((e) => e.type === "skipped");
  assert.deepEqual(skipped.map((e) => [e.provider, e.reason]), [["stalled", "timeout"]]);
  const again = events.filter((e) => e.type === "request-start").map((e) => e.provider);
  assert.deepEqual(again, [started[0], "steady"], "the request's own endpoint, then the steady one");

  guard.close();
  // The guard's fetch rejects with an AbortError, as a guardFetch() whose signal aborted does
  // (which openai reports as its APIConnectionTimeoutError: the abort was not its own signal's).
  await assert.rejects(guard.fetch(`${base("normal")}/chat/completions?tag=${tag}`, { method: "POST", body: "{}" }), { name: "AbortError" });
  await assert.rejects(ask(), OpenAI.APIConnectionTimeoutError);
  assert.equal((await ledger(tag)).length, 5, "nothing sent after the close");
  guard.free();
});
