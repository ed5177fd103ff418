// The AI SDK's tool calls through guardFetch() (the built package), against the mock upstream's
// `tool-calls` scenario (streamed) and a local JSON answer with two tool calls: the guardFetch
// half of the tool-call matrix whose worker half is in worker.test.mjs (sdk.test.mjs covers
// openai's). Environment: LSG_PACKAGE_DIR, MOCK_URL.

import assert from "node:assert/strict";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { generateText, streamText } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { MOCK, check, ledger, repo, tagged } from "./support.mjs";
import { TOOLS, jsonToolServer } from "./tools.mjs";

const PACKAGE_DIR = process.env.LSG_PACKAGE_DIR ?? path.join(repo, "target", "pkg", "llm-stream-guard");
const { guardFetch } = await import(pathToFileURL(path.join(PACKAGE_DIR, "node.mjs")).href);

check("guardFetch, AI SDK: streamText with tools gets the streamed tool call", async () => {
  const tag = tagged("guard-ai-tools");
  const provider = createOpenAICompatible({
    name: "mock",
    baseURL: `${MOCK}/scenario/tool-calls/v1`,
    apiKey: "sk-own-key",
    queryParams: { tag },
    fetch: guardFetch(),
  });
  const result = streamText({ model: provider.chatModel("m"), prompt: "weather?", tools: TOOLS, maxRetries: 0 });
  for await (const _ of result.fullStream);
  assert.deepEqual((await result.toolCalls).map((c) => [c.toolName, c.input]), [["get_weather", { city: "Paris" }]]);
  assert.equal(await result.finishReason, "tool-calls");
  assert.equal((await ledger(tag)).length, 1);
});

check("guardFetch, AI SDK: generateText gets a JSON answer's tool calls", async () => {
  const upstream = await jsonToolServer();
  try {
    const provider = createOpenAICompatible({
      name: "local",
      baseURL: upstream.url.replace(/\/chat\/completions$/, ""),
      apiKey: "sk-own-key",
      fetch: guardFetch(),
    });
    const result = await generateText({ model: provider.chatModel("m"), prompt: "weather and time?", tools: TOOLS, maxRetries: 0 });
    assert.deepEqual(result.toolCalls.map((c) => [c.toolCallId, c.toolName, c.input]), [
      ["call_a", "get_weather", { city: "Paris" }],
      ["call_b", "get_time", { tz: "CET" }],
    ]);
    assert.equal(result.finishReason, "tool-calls");
  } finally {
    await upstream.close();
  }
});
