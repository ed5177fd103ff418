// A conversation with every message shape OpenAI's chat-completions API defines (content parts,
// an assistant's tool calls, a tool result, a refusal field, names), sent to the mock upstream,
// which records the request body in its ledger: install.test.mjs compares the two.
process.on("unhandledRejection", (reason) => {
  console.error(`unhandled rejection: ${reason?.stack ?? reason}`);
  process.exitCode = 1;
});

import { generate } from "llm-stream-guard";

const [url] = process.argv.slice(2);
/** @type {import("llm-stream-guard").ChatMessage[]} */
const messages = [
  { role: "system", content: "Answer briefly." },
  { role: "developer", content: [{ type: "text", text: "Use metric units." }], name: "style" },
  {
    role: "user",
    content: [
      { type: "text", text: "What is in this picture, and what is the weather there?" },
      { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "low" } },
      { type: "input_audio", input_audio: { data: "UklGRiQAAABXQVZF", format: "wav" } },
      { type: "file", file: { filename: "notes.pdf", file_data: "data:application/pdf;base64,JVBERi0xLjQ=" } },
    ],
    name: "ada",
  },
  {
    role: "assistant",
    content: null,
    refusal: null,
    tool_calls: [
      { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
      { id: "call_2", type: "function", function: { name: "get_time", arguments: "{}" } },
    ],
  },
  { role: "tool", tool_call_id: "call_1", content: '{"temp_c":21,"sky":"clear"}' },
  { role: "tool", tool_call_id: "call_2", content: [{ type: "text", text: "14:05" }] },
  { role: "assistant", content: [{ type: "text", text: "A tower; 21 °C and clear at 14:05." }], name: "helper" },
  { role: "user", content: "Thanks! ✓ «ok» \u2028 done" },
];
const result = await generate({ providers: [{ name: "mock", url, model: "mock/model" }], messages });
console.log(JSON.stringify({ messages, text: result.text }));
