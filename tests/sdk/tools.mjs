// Tool-call fixtures the SDK tests share: the AI SDK's tools for the mock's `tool-calls`
// scenario, and a local upstream answering with one JSON chat completion carrying two tool
// calls (no mock scenario sends a JSON one).

import { createServer } from "node:http";
import { jsonSchema, tool } from "ai";

/** The weather tool the mock's `tool-calls` scenario calls, for the AI SDK (no `execute`: the
 * call itself is the result the test reads). */
export const TOOLS = {
  get_weather: tool({
    description: "The weather in a city",
    inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
  }),
  get_time: tool({
    description: "The time in a zone",
    inputSchema: jsonSchema({ type: "object", properties: { tz: { type: "string" } }, required: ["tz"] }),
  }),
};

/** A local upstream answering every POST with one JSON chat completion carrying two tool calls
 * (no mock scenario sends one); it records the bodies and `Authorization` headers it got.
 * Closed by `close()`. */
export async function jsonToolServer() {
  const answer = {
    id: "chatcmpl-json-1",
    object: "chat.completion",
    created: 1,
    model: "mock/json",
    choices: [
      {
        index: 0,
        message: {
          role: "assistant",
          content: null,
          refusal: null,
          tool_calls: [
            { id: "call_a", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" } },
            { id: "call_b", type: "function", function: { name: "get_time", arguments: "{\"tz\":\"CET\"}" } },
          ],
        },
        logprobs: null,
        finish_reason: "tool_calls",
      },
    ],
    usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 },
    system_fingerprint: "fp_x",
  };
  const bodies = [];
  const authorizations = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (d) => (body += d));
    request.on("end", () => {
      bodies.push(body);
      authorizations.push(request.headers.authorization);
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(answer));
    });
  });
  await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
  return {
    answer,
    bodies,
    authorizations,
    url: `http://127.0.0.1:${server.address().port}/v1/chat/completions`,
    close: () => new Promise((done) => server.close(done)),
  };
}
