// The real SDKs against the edge worker (an OpenAI-compatible proxy in real workerd) in front of
// the mock upstream: `openai` (chat streaming and JSON, the Responses API) and the AI SDK (`ai` +
// `@ai-sdk/openai-compatible`), the versions pinned in package.json, in Node. Each test starts
// its own worker (support.mjs: a chain of providers at mock scenarios, the pinned npm workerd,
// stopped by its pid) with a client token, and reads the mock's ledger for what reached the
// upstream and when it was released.
//
//   cargo xtask test --only sdk      # builds the package and the worker, starts the mock
//
// What the worker may add to the upstream's bytes (issue 14): heartbeat comments and probe
// line feeds while nothing else is sent, `stream_options.include_usage` upstream (the usage
// chunk reaching the client only if it asked), and, on a cut, a final error chunk and `[DONE]`.
// Everything else passes through byte for byte.

import assert from "node:assert/strict";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { generateText, streamText } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import {
  CLIENT_TOKEN,
  DEFAULT_TEXT,
  MESSAGES,
  MOCK,
  PROVIDER_KEY,
  check,
  dataEvents,
  ledger,
  normalized,
  post,
  provider,
  sseEvents,
  tagged,
  withoutWorkerAdditions,
} from "./support.mjs";
import { TOOLS, jsonToolServer } from "./tools.mjs";

/** An openai client of a worker. */
const openai = (worker, extra = {}) => new OpenAI({ baseURL: `${worker.url}/v1`, apiKey: CLIENT_TOKEN, ...extra });

/** An AI SDK provider of a worker. */
const aiProvider = (worker) => createOpenAICompatible({ name: "worker", baseURL: `${worker.url}/v1`, apiKey: CLIENT_TOKEN });

check("worker, openai: chunks are byte-identical to the upstream's; usage when asked, none when not", async (start) => {
  const tag = tagged("bytes");
  // No heartbeats or probes while the answer streams, so the bytes can be compared as they are.
  const worker = await start([provider("bytes", "logprobs-annotations", tag, { query: "usage=asked" })], {
    LSG_HEARTBEAT_MS: "60000",
    LSG_PROBE_MS: "0",
  });
  for (const includeUsage of [true, false]) {
    const body = {
      model: "mock/bytes",
      messages: MESSAGES,
      stream: true,
      logprobs: true,
      ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
    };
    const before = (await ledger(tag)).length;
    const raw = await (await post(`${worker.url}/v1/chat/completions`, body)).text();
    const sent = (await ledger(tag, 2_000)).slice(before);
    assert.equal(sent.length, 1, "one upstream request");
    const upstreamBody = JSON.parse(sent[0].body);
    assert.deepEqual(upstreamBody, { ...body, stream_options: { include_usage: true } },
      "the client's body went upstream unchanged, plus stream_options.include_usage");
    // The mock's own bytes for the very request the worker made.
    const direct = await (await post(`${MOCK}/scenario/logprobs-annotations/v1/chat/completions?usage=asked&tag=${tag}-direct`, upstreamBody)).text();
    const directEvents = sseEvents(direct);
    const usageEvent = directEvents.find((e) => e.data !== "[DONE]" && JSON.parse(e.data).choices.length === 0);
    assert.ok(usageEvent, "the mock sent a usage chunk");
    const expected = includeUsage ? direct : direct.replace(`data: ${usageEvent.data}\n\n`, "");
    assert.equal(normalized(withoutWorkerAdditions(raw)), normalized(expected), "the upstream's bytes, in order");

    const stream = await openai(worker).chat.completions.create(body);
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks.filter((c) => c.usage).length, includeUsage ? 1 : 0, `usage chunks when include_usage=${includeUsage}`);
    if (!includeUsage) assert.ok(chunks.every((c) => c.choices.length > 0), "no `choices: []` chunk for a client that did not ask");
    assert.ok(chunks.some((c) => c.choices[0]?.logprobs?.content?.length), "logprobs passed through");
  }
});

check("worker, openai: tool calls streamed arrive intact", async (start) => {
  const tag = tagged("tools");
  const worker = await start([provider("tools", "tool-calls", tag), provider("fallback", "normal", tag)]);
  const body = { model: "mock/tools", messages: MESSAGES, stream: true };
  const stream = await openai(worker).chat.completions.create(body);
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const [sent] = await ledger(tag);
  const direct = await (await post(`${MOCK}/scenario/tool-calls/v1/chat/completions?tag=${tag}-direct`, JSON.parse(sent.body))).text();
  const expected = dataEvents(direct).filter((c) => c.choices.length > 0);
  assert.deepEqual(JSON.parse(normalized(JSON.stringify(chunks))), JSON.parse(normalized(JSON.stringify(expected))), "the upstream's chunks");
  const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.equal(calls.map((c) => c.function?.name ?? "").join(""), "get_weather");
  assert.deepEqual(JSON.parse(calls.map((c) => c.function?.arguments ?? "").join("")), { city: "Paris" });
  assert.equal(chunks.findLast((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason, "tool_calls");
});

check("worker, openai: a JSON answer with tool calls arrives intact", async (start) => {
  const upstream = await jsonToolServer();
  try {
    const worker = await start([{ name: "json", url: upstream.url, model: "mock/json" }]);
    const result = await openai(worker).chat.completions.create({ model: "mock/json", messages: MESSAGES, temperature: 0.25 });
    assert.deepEqual(JSON.parse(JSON.stringify(result)), upstream.answer);
    assert.equal(upstream.bodies.length, 1);
    assert.deepEqual(JSON.parse(upstream.bodies[0]), { model: "mock/json", messages: MESSAGES, temperature: 0.25 }, "the body went upstream unchanged");
  } finally {
    await upstream.close();
  }
});

check("worker, AI SDK: streamText and generateText with tools get the tool calls", async (start) => {
  const tag = tagged("ai-tools");
  const upstream = await jsonToolServer();
  try {
    const worker = await start([
      provider("tools", "tool-calls", tag),
      { name: "json", url: upstream.url, model: "mock/json" },
    ]);
    const models = aiProvider(worker);
    const streamed = streamText({ model: models.chatModel("mock/tools"), prompt: "weather?", tools: TOOLS, maxRetries: 0 });
    for await (const _ of streamed.fullStream);
    const streamedCalls = await streamed.toolCalls;
    assert.deepEqual(streamedCalls.map((c) => [c.toolName, c.input]), [["get_weather", { city: "Paris" }]]);
    assert.equal(await streamed.finishReason, "tool-calls");

    const generated = await generateText({ model: models.chatModel("mock/json"), prompt: "weather and time?", tools: TOOLS, maxRetries: 0 });
    assert.deepEqual(generated.toolCalls.map((c) => [c.toolCallId, c.toolName, c.input]), [
      ["call_a", "get_weather", { city: "Paris" }],
      ["call_b", "get_time", { tz: "CET" }],
    ]);
    assert.equal(generated.finishReason, "tool-calls");
  } finally {
    await upstream.close();
  }
});

check("worker: a stall before the first token fails over invisibly (openai, AI SDK)", async (start) => {
  const tag = tagged("failover");
  const worker = await start(
    [provider("stalled", "headers-then-silence", tag), provider("fallback", "normal", tag)],
    { LSG_TIMEOUTS: JSON.stringify({ firstTokenMs: 300 }) },
  );
  const started = Date.now();
  const stream = await openai(worker).chat.completions.create({ model: "mock/stalled", messages: MESSAGES, stream: true });
  let text = "";
  const chunks = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    text += chunk.choices[0]?.delta?.content ?? "";
  }
  assert.equal(text, DEFAULT_TEXT);
  assert.ok(!chunks.some((c) => c.error), "no trace of the stalled provider");
  const connections = await ledger(tag, 2_000);
  assert.deepEqual(connections.map((c) => c.scenario), ["headers-then-silence", "normal"]);
  assert.ok(connections[0].closed_at_ms - started < 300 + 250, "the stalled upstream was released at its deadline");
  assert.deepEqual(JSON.parse(connections[1].body).messages, MESSAGES);

  const result = streamText({ model: aiProvider(worker).chatModel("mock/stalled"), prompt: "hi", maxRetries: 0 });
  let aiText = "";
  for await (const piece of result.textStream) aiText += piece;
  assert.equal(aiText, DEFAULT_TEXT);
  assert.equal(await result.finishReason, "stop");
  assert.equal((await ledger(tag)).length, 4, "two upstream requests per SDK call");
});

check("worker: a stall after text ends with an error chunk and [DONE], which the SDKs surface", async (start) => {
  const tag = tagged("cut");
  const worker = await start(
    [provider("cut", "stall-after-chunks", tag), provider("fallback", "normal", tag)],
    { LSG_TIMEOUTS: JSON.stringify({ idleMs: 300 }) },
  );
  const raw = await (await post(`${worker.url}/v1/chat/completions`, { model: "mock/cut", messages: MESSAGES, stream: true })).text();
  const events = sseEvents(raw);
  assert.equal(events.at(-1)?.data, "[DONE]", "the stream ends with [DONE]");
  const last = JSON.parse(events.at(-2).data);
  assert.ok(last.error?.message, `a final chunk with an error object: ${events.at(-2).data}`);
  assert.equal(last.choices?.[0]?.finish_reason, "error");
  assert.ok(!raw.includes(PROVIDER_KEY));
  const text = dataEvents(raw).map((c) => c.choices?.[0]?.delta?.content ?? "").join("");
  assert.ok(text.length > 0 && DEFAULT_TEXT.startsWith(text) && text !== DEFAULT_TEXT, `partial text ${JSON.stringify(text)}`);
  const connections = await ledger(tag, 2_000);
  assert.equal(connections.length, 1, "no failover after text");
  assert.ok(connections[0].closed_at_ms, "the stalled upstream was released");

  // openai-node reads a chunk's `error` field as the stream's error: an APIError, after the text.
  let partial = "";
  const error = await (async () => {
    const stream = await openai(worker).chat.completions.create({ model: "mock/cut", messages: MESSAGES, stream: true });
    for await (const chunk of stream) partial += chunk.choices[0]?.delta?.content ?? "";
  })().then(() => null, (e) => e);
  assert.ok(error instanceof OpenAI.APIError, `openai throws its APIError: ${error}`);
  assert.equal(partial, text);

  // The AI SDK reports the error chunk to onError and finishes with reason "error".
  const errors = [];
  const result = streamText({ model: aiProvider(worker).chatModel("mock/cut"), prompt: "hi", maxRetries: 0, onError: ({ error }) => errors.push(error) });
  let aiText = "";
  for await (const piece of result.textStream) aiText += piece;
  assert.equal(aiText, text);
  assert.equal(await result.finishReason, "error");
  assert.equal(errors.length, 1, "one error reached onError");
});

check("worker: everything failing gives one request per provider, and a status the SDKs do not retry", async (start) => {
  const tag = tagged("all-fail");
  const worker = await start([provider("first", "http-503", tag), provider("second", "http-500", tag)]);
  const error = await openai(worker, { maxRetries: 2 })
    .chat.completions.create({ model: "mock/first", messages: MESSAGES, stream: true })
    .then(() => null, (e) => e);
  assert.ok(error instanceof OpenAI.APIError, String(error));
  assert.equal(error.status, 502);
  assert.equal(error.headers.get("x-should-retry"), "false");
  assert.ok(!error.message.includes(PROVIDER_KEY));
  assert.deepEqual((await ledger(tag)).map((c) => c.scenario), ["http-503", "http-500"], "one request each, not the SDK's three");

  // The AI SDK (6.0.326) retries every 5xx whatever `x-should-retry` says (its APICallError's
  // isRetryable looks at the status only), so each of its retries costs a whole chain: users
  // of the worker set `maxRetries: 0`, and then it is one request per provider too.
  const aiError = await generateText({ model: aiProvider(worker).chatModel("mock/first"), prompt: "hi", maxRetries: 0 }).then(() => null, (e) => e);
  assert.equal(aiError?.statusCode, 502, String(aiError));
  assert.equal(aiError.isRetryable, true, "the AI SDK would retry a 502 by itself");
  assert.deepEqual((await ledger(tag)).map((c) => c.scenario).slice(2), ["http-503", "http-500"]);

  const timeoutTag = tagged("all-timeout");
  const timingOut = await start([provider("silent", "no-headers", timeoutTag)], { LSG_TIMEOUTS: JSON.stringify({ headersMs: 200 }) });
  const timeout = await openai(timingOut, { maxRetries: 2 })
    .chat.completions.create({ model: "mock/silent", messages: MESSAGES, stream: true })
    .then(() => null, (e) => e);
  assert.equal(timeout?.status, 504, String(timeout));
  assert.equal(timeout.headers.get("x-should-retry"), "false");
  assert.equal((await ledger(timeoutTag, 2_000)).length, 1);
});

check("worker: aborting the SDK's stream closes the upstream within 100 ms (openai, AI SDK)", async (start) => {
  const tag = tagged("abort");
  const worker = await start([provider("endless", "stall-after-chunks", tag)]);
  const stream = await openai(worker).chat.completions.create({ model: "mock/endless", messages: MESSAGES, stream: true });
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
  const aiWorker = await start([provider("endless", "stall-after-chunks", aiTag)]);
  const controller = new AbortController();
  const result = streamText({ model: aiProvider(aiWorker).chatModel("mock/endless"), prompt: "hi", abortSignal: controller.signal, maxRetries: 0, onError: () => {} });
  let aiAborted = 0;
  await (async () => {
    for await (const _ of result.textStream) {
      aiAborted = Date.now();
      controller.abort();
    }
  })().catch(() => {});
  assert.ok(aiAborted > 0, "text arrived before the abort");
  const [aiConnection] = await ledger(aiTag, 2_000);
  const aiDelay = aiConnection.closed_at_ms - aiAborted;
  assert.ok(aiDelay < 100, `AI SDK: closed ${aiDelay.toFixed(1)} ms after the abort`);
});

check("worker, openai: the Responses API streams through, a stall before the first token fails over", async (start) => {
  const tag = tagged("responses");
  // The providers' URLs name the chat endpoint; the worker serves /v1/responses at the same
  // base (…/v1/responses), where these mock scenarios answer.
  const worker = await start(
    [
      provider("stalled", "responses-keepalive-then-stall", tag, { query: "keepalive_ms=50" }),
      provider("fallback", "responses-normal", tag),
    ],
    { LSG_TIMEOUTS: JSON.stringify({ firstTokenMs: 400 }) },
  );
  const stream = await openai(worker).responses.create({ model: "mock/stalled", input: "hi", stream: true });
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
  assert.ok(connections.every((c) => c.path.endsWith("/v1/responses")), "the Responses endpoint was asked");
  assert.ok(connections[0].closed_at_ms, "the stalled upstream was released");
});

check("worker, Anthropic SDK: Messages stream through, pings are not progress, a stall fails over with the provider's key in x-api-key", async (start) => {
  const tag = tagged("messages");
  // The providers' URLs name the chat endpoint; the worker serves /v1/messages at the same
  // base (…/v1/messages), where these mock scenarios answer.
  const worker = await start(
    [
      provider("stalled", "anthropic-ping-forever", tag, { query: "keepalive_ms=50", apiKeyEnv: "PROVIDER_KEY" }),
      provider("fallback", "anthropic-normal", tag, { apiKeyEnv: "PROVIDER_KEY" }),
    ],
    { LSG_TIMEOUTS: JSON.stringify({ firstTokenMs: 400 }) },
  );
  // The SDK sends its key as x-api-key: the worker takes it as the client token.
  const client = new Anthropic({ baseURL: worker.url, apiKey: CLIENT_TOKEN, maxRetries: 0 });
  const stream = await client.messages.create({ model: "mock/stalled", max_tokens: 50, messages: MESSAGES, stream: true });
  let text = "";
  const types = [];
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === "content_block_delta") text += event.delta.text;
  }
  assert.equal(text, DEFAULT_TEXT);
  assert.equal(types.at(-1), "message_stop");
  assert.equal(types.filter((t) => t === "message_start").length, 1, "the stalled attempt's events never reached the SDK");
  const connections = await ledger(tag, 2_000);
  assert.deepEqual(connections.map((c) => c.scenario), ["anthropic-ping-forever", "anthropic-normal"]);
  assert.ok(connections.every((c) => c.path.endsWith("/v1/messages")), "the Messages endpoint was asked");
  assert.ok(connections[0].closed_at_ms, "the stalled upstream was released");
  for (const c of connections) {
    assert.equal(c.headers["x-api-key"], `<redacted len=${PROVIDER_KEY.length}>`, "the provider's key, in Anthropic's header");
    assert.equal(c.headers.authorization, undefined, "no bearer token upstream");
    assert.ok(c.headers["anthropic-version"], "the SDK's anthropic-version goes upstream");
  }

  // Without a token the route is refused like the others.
  const refused = new Anthropic({ baseURL: worker.url, apiKey: "not-a-client-token", maxRetries: 0 });
  await assert.rejects(
    refused.messages.create({ model: "mock/stalled", max_tokens: 50, messages: MESSAGES }),
    (error) => error instanceof Anthropic.AuthenticationError,
  );
});
