// A CommonJS module of the same project: `require` resolves the package's index.d.cts, whose
// default export is `init` as it is at run time (`require("llm-stream-guard").default`).
import guard = require("llm-stream-guard");
import type { ChatMessage } from "llm-stream-guard";

const messages: ChatMessage[] = [{ role: "user", content: "Hello" }];

export async function answer(): Promise<string> {
  await guard.init();
  await guard.default();
  const result = await guard.generate({
    providers: [{ name: "local", url: "http://127.0.0.1:11434/v1/chat/completions", model: "llama3.2" }],
    messages,
  });
  // @ts-expect-error `text` is a string
  const length: number = result.text;
  return `${result.text} ${length}`;
}
