// The published TypeScript contract, as a caller uses it. Compiled with `tsc --noEmit` against
// the built package (`cargo xtask test --only types`; tsconfig.json: lib ES2022 + DOM), never
// run. Every `@ts-expect-error` line must fail to type-check, so loosening a type makes this
// check fail too.

import init, {
  generate,
  Guard,
  guardFetch,
  liveResources,
  Session,
  SseParser,
  stream,
  type GenerationStream,
  type LiveResources,
  type Attempt,
  type AssistantMessage,
  type ChatMessage,
  type ChatToolCall,
  type ToolMessage,
  type UserContentPart,
  type GenerateOptions,
  type GenerateResult,
  type GuardFetchOptions,
  type GuardError,
  type GuardErrorKind,
  type GuardEvent,
  type GuardOptions,
  type GenerateRequest,
  type ProviderStats,
  type LogLevel,
  type Provider,
  type SseEvent,
  type TimeoutLayer,
  type TimeoutPhase,
  type Timeouts,
} from "llm-stream-guard";

/** The documented check: `generate()` rejects with an `Error` named `"GuardError"`. */
function isGuardError(error: unknown): error is GuardError {
  return error instanceof Error && error.name === "GuardError";
}

/** Exhaustiveness: adding or renaming an event type without handling it fails here. */
function unreachable(value: never): never {
  throw new Error(`unhandled ${JSON.stringify(value)}`);
}

function describe(event: GuardEvent): string {
  switch (event.type) {
    case "request-start":
      return `${event.provider}/${event.model} attempt ${event.attempt.toFixed(0)}`;
    case "headers":
      return `${event.provider} HTTP ${event.status} after ${event.elapsedMs} ms`;
    case "first-token":
      return `${event.provider} first token after ${event.firstTokenMs} ms`;
    case "stream-end":
      return `${event.provider}: ${event.lines} lines, ${event.chunks} chunks, ${event.elapsedMs} ms`;
    case "timeout": {
      const layer: TimeoutLayer = event.layer;
      const phase: TimeoutPhase = event.phase;
      return `${event.provider} ${layer} ${phase} timeout (${event.lines}/${event.chunks}, ${event.elapsedMs} ms)`;
    }
    case "empty-response":
      return `${event.provider} empty after ${event.lines} lines`;
    case "attempt-failed": {
      const kind: GuardErrorKind = event.kind;
      const status: number | undefined = event.status;
      return `${event.provider} ${kind} ${status ?? "-"}: ${event.message}`;
    }
    case "retry":
      return `${event.provider} retry ${event.attempt} in ${event.delayMs} ms (${event.reason})`;
    case "failover":
      // @ts-expect-error a failover names `from` and `to`, it has no `provider`
      return `${event.provider}`;
    case "malformed":
      return `${event.provider} skipped ${event.bytes} bytes: ${event.reason}`;
    case "cancelled":
      return `cancelled: ${event.reason}`;
    case "upstream-event": {
      const relayed = event.event;
      return typeof relayed === "string" ? relayed : `${event.provider} relayed ${JSON.stringify(relayed)}`;
    }
    case "hedge":
      return `${event.provider} slow after ${event.afterMs} ms, asking ${event.to} too`;
    case "continuation":
      return `${event.to} continues ${event.from} after ${event.chars} characters (${event.reason})`;
    case "skipped":
      return `${event.provider}/${event.model} skipped (${event.reason}), probe in ${event.retryInMs ?? "?"} ms`;
    case "done": {
      const partial: boolean = event.partial;
      return `${event.provider} done (partial: ${partial}) in ${event.elapsedMs} ms`;
    }
    default:
      return unreachable(event);
  }
}

function describeFailover(event: GuardEvent): string | undefined {
  if (event.type !== "failover") return undefined;
  return `${event.from} -> ${event.to} (${event.reason})`;
}

const openRouter: Provider = {
  name: "openrouter",
  url: "https://openrouter.ai/api/v1/chat/completions",
  model: "openai/gpt-4o-mini",
  apiKey: "sk-or-...",
  headers: { "HTTP-Referer": "https://example.com", "X-Title": "Example" },
  timeouts: { firstTokenMs: 15_000 },
  maxRetries: 1,
};

const local: Provider = {
  name: "local",
  url: "http://127.0.0.1:8080/v1/chat/completions",
  model: "llama-3.1-8b-instruct",
};

const defaults: Timeouts = {
  headersMs: 20_000,
  firstTokenMs: 30_000,
  idleMs: 20_000,
  streamMs: 60_000,
  serviceMs: 90_000,
};

async function everyOption(): Promise<GenerateResult> {
  await init();
  const controller = new AbortController();
  const messages: ChatMessage[] = [
    { role: "system", content: "Answer briefly." },
    { role: "user", content: "Why is the sky blue?" },
  ];
  const level: LogLevel = "info";
  let shown = "";
  const options: GenerateOptions = {
    providers: [openRouter, local],
    messages,
    params: { temperature: 0.2, max_tokens: 256, stop: ["\n\n"] },
    stream: true,
    timeouts: { ...defaults, idleMs: 10_000 },
    retry: { maxRetries: 2, baseDelayMs: 500, maxDelayMs: 8_000 },
    maxEventBytes: 1 << 20,
    signal: controller.signal,
    onText: (delta) => {
      shown += delta;
    },
    onEvent: (event) => {
      console.log(describe(event), describeFailover(event) ?? "");
    },
    fetch: (input, init) => fetch(input, init),
    log: level,
  };
  const result = await generate(options);
  if (result.text !== shown) throw new Error("onText deltas join to result.text");
  return result;
}

async function readResult(): Promise<void> {
  const result = await generate({
    providers: [local],
    messages: [{ role: "user", content: "Hi" }],
  });
  const text: string = result.text;
  const provider: string = result.provider;
  const model: string = result.model;
  const finish: string | undefined = result.finishReason;
  const generationId: string | undefined = result.generationId;
  if (result.partial && result.cause) {
    const kind: GuardErrorKind = result.cause.kind;
    const phase: TimeoutPhase | undefined = result.cause.phase;
    console.warn(`cut short (${kind} ${phase ?? ""}): ${result.cause.message}`);
  }
  if (result.usage) {
    const { prompt_tokens, completion_tokens, total_tokens } = result.usage;
    console.log(prompt_tokens + completion_tokens === total_tokens);
  }
  for (const call of result.toolCalls ?? []) {
    const args: unknown = JSON.parse(call.arguments);
    console.log(call.id, call.name, args);
  }
  const { lines, chunks, firstTokenMs, elapsedMs } = result.stats;
  console.log(text, provider, model, finish, generationId, lines, chunks, firstTokenMs ?? NaN, elapsedMs);
  const attempts: Attempt[] = result.attempts;
  for (const attempt of attempts) {
    const outcome: "complete" | "partial" | "skipped" | GuardErrorKind = attempt.outcome;
    console.log(attempt.provider, outcome, attempt.status ?? 0, attempt.elapsedMs);
  }
  if (result.continuation) {
    const mode: "prefill" | "instruction" = result.continuation.mode;
    console.log(`continued from ${result.continuation.from} at ${result.continuation.chars} (${mode})`);
  }
  // @ts-expect-error `partial` is a boolean
  const partialText: string = result.partial;
  // @ts-expect-error there is no `content` field: the answer is `text`
  console.log(result.content, partialText);
}

async function catchGuardError(): Promise<string> {
  try {
    const result = await generate({
      providers: [openRouter],
      messages: [{ role: "user", content: "Hi" }],
      stream: false,
      timeouts: { serviceMs: 5_000 },
    });
    return result.text;
  } catch (error) {
    if (!isGuardError(error)) throw error;
    const name: "GuardError" = error.name;
    switch (error.kind) {
      case "timeout": {
        const layer: TimeoutLayer | undefined = error.layer;
        const phase: TimeoutPhase | undefined = error.phase;
        return `${name}: ${layer}/${phase} timeout at ${error.provider ?? "?"}`;
      }
      case "aborted":
        return `aborted by ${error.reason ?? "?"} after "${error.partialText}"`;
      case "http":
        return `HTTP ${error.status ?? 0}: ${error.message}`;
      case "upstream":
      case "protocol":
      case "network":
      case "config":
      case "unavailable":
        return `${error.kind}: ${error.message} (${error.attempts.length} attempts)`;
      default:
        return unreachable(error.kind);
    }
  }
}

function parseStream(chunks: Uint8Array[]): SseEvent[] {
  const parser = new SseParser({ maxEventBytes: 64 * 1024 });
  const events: SseEvent[] = [];
  try {
    for (const chunk of chunks) events.push(...parser.push(chunk));
    events.push(...parser.end());
  } catch (error) {
    if (isGuardError(error) && error.kind === "protocol") return events;
    throw error;
  } finally {
    parser.free();
  }
  for (const { data, event, id } of events) {
    const lastId: string | undefined = id;
    console.log(event, data, lastId);
  }
  return events;
}

function disposableParser(): number {
  using parser = new SseParser();
  const events = parser.push(new TextEncoder().encode("data: hi\n\n"));
  const first: SseEvent | undefined = events[0];
  return first?.data.length ?? 0;
}

// Calls that must not type-check.
function misuse(): void {
  // @ts-expect-error `providers` is required
  void generate({ messages: [{ role: "user", content: "Hi" }] });
  void generate({
    providers: [local],
    messages: [],
    // @ts-expect-error not a log level
    log: "verbose",
  });
  void generate({
    providers: [local],
    messages: [],
    // @ts-expect-error timeouts are numbers of milliseconds
    timeouts: { idleMs: "20s" },
  });
  // @ts-expect-error a provider needs a url and a model
  const incomplete: Provider = { name: "nowhere" };
  // @ts-expect-error push takes bytes, not text
  new SseParser().push("data: hi\n\n");
  // @ts-expect-error no such option
  new SseParser({ maxBytes: 10 });
  // @ts-expect-error not a failure kind
  const kind: GuardErrorKind = "fatal";
  console.log(incomplete, kind);
}

/** A voice app's lifecycle wiring. */
async function voiceCall(pc: RTCPeerConnection, channel: RTCDataChannel, socket: WebSocket): Promise<string> {
  const session = new Session({ disconnectGraceMs: 3000 });
  const unwatch: () => void = session.watch(pc);
  session.watch(channel);
  session.watch(socket);
  session.watch(AbortSignal.timeout(60_000));
  const answer: GenerateResult = await session.generate({ providers: [local], messages: [] });
  const active: number = session.active;
  const held: LiveResources = liveResources();
  unwatch();
  session.cancel("hang-up");
  session.close();
  // @ts-expect-error `active` is read-only
  session.active = 0;
  // @ts-expect-error not something a session can watch
  session.watch(new EventTarget());
  // @ts-expect-error no such option
  new Session({ graceMs: 10 });
  return `${answer.text} ${active} ${held.timers + held.readers + held.listeners + held.inFlight}`;
}

/** A tool-using conversation in OpenAI's message shapes, continued with a new answer's calls. */
async function toolConversation(): Promise<ChatMessage[]> {
  const photo: UserContentPart[] = [
    { type: "text", text: "Where is this, and what is the weather there?" },
    { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "low" } },
    { type: "input_audio", input_audio: { data: "UklGRiQAAABXQVZF", format: "wav" } },
    { type: "file", file: { filename: "notes.pdf", file_data: "data:application/pdf;base64,JVBERi0=" } },
  ];
  const messages: ChatMessage[] = [
    { role: "system", content: "Answer briefly." },
    { role: "developer", content: [{ type: "text", text: "Use metric units." }], name: "style" },
    { role: "user", content: photo, name: "ada" },
    {
      role: "assistant",
      content: null,
      tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
    },
    { role: "tool", tool_call_id: "call_1", content: '{"temp_c":21}' },
    { role: "assistant", content: [{ type: "refusal", refusal: "No." }], refusal: "No." },
    { role: "tool", tool_call_id: "call_2", content: [{ type: "text", text: "14:05" }] },
  ];
  const result = await generate({ providers: [local], messages, params: { tools: [] } });
  // The answer's tool calls go back as the next assistant message, each answered by a tool message.
  const calls: ChatToolCall[] = (result.toolCalls ?? []).map((call) => ({
    id: call.id,
    type: "function",
    function: { name: call.name, arguments: call.arguments },
  }));
  const next: AssistantMessage = { role: "assistant", content: result.text || null, tool_calls: calls };
  const answers: ToolMessage[] = calls.map((call) => ({ role: "tool", tool_call_id: call.id, content: "{}" }));
  for (const message of messages) {
    // Narrowed by `role`.
    if (message.role === "tool") console.log(message.tool_call_id.length);
    if (message.role === "assistant") console.log(message.tool_calls?.[0]?.function.arguments, message.refusal);
    if (message.role === "user" && typeof message.content !== "string") console.log(message.content[0]?.type);
  }
  return [...messages, next, ...answers];
}

// Messages that must not type-check.
function wrongMessages(): ChatMessage[] {
  // @ts-expect-error a tool message needs the id of the call it answers
  const a: ChatMessage = { role: "tool", content: "42" };
  // @ts-expect-error not a role
  const b: ChatMessage = { role: "robot", content: "beep" };
  // @ts-expect-error a tool call's type is "function"
  const c: ChatMessage = { role: "assistant", content: null, tool_calls: [{ id: "1", type: "tool", function: { name: "f", arguments: "{}" } }] };
  // @ts-expect-error tool-call arguments are JSON text, not an object
  const d: ChatMessage = { role: "assistant", tool_calls: [{ id: "1", type: "function", function: { name: "f", arguments: { city: "Paris" } } }] };
  // @ts-expect-error images are parts of user messages only
  const e: ChatMessage = { role: "system", content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }] };
  // @ts-expect-error a user message's content is never null
  const f: ChatMessage = { role: "user", content: null };
  // @ts-expect-error not an image detail
  const g: ChatMessage = { role: "user", content: [{ type: "image_url", image_url: { url: "x", detail: "max" } }] };
  // @ts-expect-error audio is wav or mp3
  const h: ChatMessage = { role: "user", content: [{ type: "input_audio", input_audio: { data: "", format: "ogg" } }] };
  // @ts-expect-error a text part needs its text
  const i: ChatMessage = { role: "user", content: [{ type: "text" }] };
  // @ts-expect-error tool calls belong to assistant messages
  const j: ChatMessage = { role: "user", content: "hi", tool_calls: [] };
  // @ts-expect-error a tool call needs its id
  const k: ChatToolCall = { type: "function", function: { name: "f", arguments: "{}" } };
  return [a, b, c, d, e, f, g, h, i, j, { role: "assistant", content: null, tool_calls: [k] }];
}

/** guardFetch() as an SDK's `fetch` option takes it: the global `fetch`'s type. */
async function guardedFetch(session: Session): Promise<string> {
  const options: GuardFetchOptions = {
    providers: [{ name: "local", url: "http://127.0.0.1:11434/v1/chat/completions", model: "llama3.2", apiKey: "k" }],
    timeouts: { firstTokenMs: 15000 },
    retry: { maxRetries: 1 },
    session,
    signal: new AbortController().signal,
    onCut: "finish",
    onEvent: (event) => void event.type,
    log: "info",
    fetch,
  };
  const guarded: typeof fetch = guardFetch(options);
  const sdkOptions: { fetch: typeof fetch } = { fetch: guardFetch() };
  // @ts-expect-error onCut is "error" or "finish"
  guardFetch({ onCut: "ignore" });
  // @ts-expect-error the fallbacks are providers, with a model
  guardFetch({ providers: [{ name: "x", url: "http://h/v1/chat/completions" }] });
  const response: Response = await guarded("http://127.0.0.1:8/v1/models", { method: "GET" });
  void sdkOptions;
  return response.statusText;
}

async function streamed(): Promise<string> {
  const answer: GenerationStream = stream({ providers: [local], messages: [{ role: "user", content: "Hi" }] });
  let shown = "";
  for await (const delta of answer) {
    // @ts-expect-error the deltas are strings
    const wrong: number = delta;
    shown += delta;
    if (shown.length > 10_000 + wrong) answer.cancel("too long");
  }
  const result: GenerateResult = await answer.result;
  // @ts-expect-error a cancel's reason is a string
  answer.cancel(1);
  return result.text === shown ? shown : "";
}

/** One guard, many calls: learned deadlines, breakers, hedging, stats. */
async function guarded(): Promise<string> {
  const options: GuardOptions = {
    providers: [local],
    timeouts: { firstTokenMs: 15_000 },
    retry: { maxRetries: 1 },
    continuation: true,
    hedge: { afterMs: "auto" },
    adaptive: { quantile: 0.9, factor: 3, minSamples: 10 },
    breaker: { failureThreshold: 3, cooldownMs: 10_000 },
    onEvent: (event) => console.log(describe(event)),
    log: "info",
  };
  const guard = new Guard(options);
  new Guard({ providers: [local], adaptive: false, hedge: { afterMs: 800 } });
  const request: GenerateRequest = { messages: [{ role: "user", content: "Hi" }], onText: console.log };
  const result: GenerateResult = await guard.generate(request);
  let shown = "";
  for await (const delta of guard.stream(request)) shown += delta;
  const stats: ProviderStats[] = guard.stats();
  for (const s of stats) {
    const state: "closed" | "open" | "half-open" = s.breaker.state;
    console.log(s.provider, s.model, s.samples, s.firstTokenMs?.p95, s.gapMs?.p99, s.learned.idleMs, state, s.breaker.reason);
  }
  // The guard's fetch is a fetch: what an SDK's `fetch` option takes.
  const viaGuard: typeof fetch = guard.fetch;
  const answered: Response = await viaGuard("http://127.0.0.1:1/v1/chat/completions", { method: "POST" });
  void answered.status;
  // @ts-expect-error the guard's fetch is read-only
  guard.fetch = fetch;
  guard.close();
  // @ts-expect-error the providers are the guard's, not a call's
  void guard.generate({ providers: [local], messages: [] });
  // @ts-expect-error `afterMs` is a number or "auto"
  new Guard({ providers: [local], hedge: { afterMs: "soon" } });
  // @ts-expect-error no such breaker option
  new Guard({ providers: [local], breaker: { threshold: 3 } });
  // @ts-expect-error a guard needs providers
  new Guard({ continuation: true });
  return result.text + shown;
}

export {
  guarded,
  streamed,
  guardedFetch,
  everyOption,
  readResult,
  catchGuardError,
  parseStream,
  disposableParser,
  misuse,
  voiceCall,
  toolConversation,
  wrongMessages,
};
