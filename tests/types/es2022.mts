// An ES module of a project with only `lib: ["es2022"]` (tsconfig.es2022.json): the package's
// types compile there, `Symbol.dispose` included, and DOM-only types fall back to what the
// package itself needs. Compiled, never run.
import init, {
  generate,
  Guard,
  liveResources,
  Session,
  SseParser,
  type ChatMessage,
  type GenerateResult,
  type LiveResources,
} from "llm-stream-guard";

const messages: ChatMessage[] = [
  { role: "system", content: "Answer briefly." },
  { role: "user", content: [{ type: "text", text: "Hello" }] },
  { role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }] },
  { role: "tool", tool_call_id: "c1", content: "{}" },
];

export async function answer(signal: { readonly aborted: boolean; addEventListener(type: "abort", listener: () => void): void }): Promise<GenerateResult> {
  await init();
  const parser = new SseParser();
  const events = parser.push(new Uint8Array([100, 97, 116, 97, 58, 32, 104, 105, 10, 10]));
  parser[Symbol.dispose]();
  const session = new Session({ page: false });
  const held: LiveResources = liveResources();
  const result = await session.generate({
    providers: [{ name: "local", url: "http://127.0.0.1:11434/v1/chat/completions", model: "llama3.2" }],
    messages,
    signal,
    onText: (delta) => void delta.length,
  });
  session[Symbol.dispose]();
  const guard = new Guard({ providers: [{ name: "local", url: "http://127.0.0.1:11434/v1/chat/completions", model: "llama3.2" }], session });
  const guarded = await guard.generate({ messages, signal });
  guard.close();
  const learned = `${guarded.text} ${guard.stats().length}`;
  // @ts-expect-error a signal must at least say whether it aborted
  void generate({ providers: [], messages, signal: {} });
  return { ...result, text: `${events.length} ${held.timers} ${result.text} ${learned}` };
}
