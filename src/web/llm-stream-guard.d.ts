/**
 * Streams one chat answer from the first provider of `options.providers` that gives one, with
 * every read raced against layered deadlines, so the promise always settles.
 *
 * - Resolves with the answer: complete, or `partial: true` when text arrived and the attempt was
 *   then cut short (deadline, network, upstream error); `result.cause` says why.
 * - Rejects with a {@link GuardError} when no provider produced any text (every attempt failed,
 *   the service deadline passed, the request was refused, the options were invalid) or when
 *   `options.signal` aborted the call.
 *
 * Retries happen per provider on HTTP 408, 429, 5xx and network errors before any text arrived;
 * failover to the next provider happens on timeouts, upstream and protocol errors, empty answers
 * and HTTP 401/402/403/404/408/429/5xx. HTTP 400, 413 and 422 and an abort stop the call.
 *
 * @example
 * const result = await generate({
 *   providers: [{ name: "openrouter", url: "https://openrouter.ai/api/v1/chat/completions",
 *                 model: "openai/gpt-4o-mini", apiKey }],
 *   messages: [{ role: "user", content: "Hello" }],
 *   onText: (delta) => output.append(delta),
 * });
 */
export function generate(options: GenerateOptions): Promise<GenerateResult>;

/** The options of one {@link generate} call. Only `providers` and `messages` are required. */
export interface GenerateOptions {
  /**
   * The failover chain, tried in order: each provider gets its first attempt and its retries
   * before the next one is asked (for example OpenRouter, then a local OpenAI-compatible server).
   * Must not be empty.
   */
  providers: Provider[];
  /**
   * The conversation, sent unchanged as the request body's `messages` (as `JSON.stringify`
   * writes it): tool results, an assistant's `tool_calls`, content parts and any other field a
   * provider accepts reach it as given.
   */
  messages: ChatMessage[];
  /**
   * Extra fields merged into every request body (`temperature`, `max_tokens`, `top_p`,
   * `tools`, ...), next to `model`, `messages` and `stream`, which they cannot replace.
   */
  params?: Record<string, unknown>;
  /**
   * `true` (the default) asks for a Server-Sent Events stream; `false` asks for one JSON answer,
   * read under the same deadlines (the first-token and idle deadlines then cover the body).
   */
  stream?: boolean;
  /** Deadlines for the whole call; each provider may override them in `Provider.timeouts`. */
  timeouts?: Partial<Timeouts>;
  /** Retries of the same provider before failing over to the next one. */
  retry?: RetryOptions;
  /**
   * The largest line, and the largest event data, accepted from a stream, in bytes (default
   * 1 MiB = 1048576). A bigger one is a `"protocol"` failure of that attempt instead of
   * unbounded memory growth.
   */
  maxEventBytes?: number;
  /**
   * Aborting it ends the call at once: the upstream request is cancelled (the connection
   * closes) and the promise rejects with a `GuardError` of kind `"aborted"`.
   */
  signal?: GlobalType<"AbortSignal", AbortSignalLike>;
  /**
   * Called with every piece of answer text, in order, as it arrives. Joined, the pieces equal
   * `result.text` (after a failover, only the answering provider's text is delivered: a
   * provider that failed had sent none). Never called after the call was aborted or
   * cancelled. If it throws, the call is cancelled: it rejects with kind `"aborted"`,
   * `reason: "callback"` and what was thrown as `cause`.
   */
  onText?: (delta: string) => void;
  /**
   * Called with every {@link GuardEvent} of the call, in order (progress, retries, failovers).
   * After an abort or cancel only the `cancelled` event comes. If it throws, the call is
   * cancelled as for `onText`.
   */
  onEvent?: (event: GuardEvent) => void;
  /** The `fetch` to use (default: the global `fetch`); inject one for tests or proxies. */
  fetch?: typeof globalThis extends { fetch: infer F } ? F : FetchLike;
  /**
   * Console lines about the call, in the style `LLM [provider]: ...` (default `"off"`):
   * `"error"` failures only, `"info"` also the progress of every attempt, `"debug"` also
   * headers and malformed events. Lines never contain keys or headers.
   */
  log?: LogLevel;
}

/**
 * A `fetch` that guards every request an SDK sends through it: pass it as the `fetch` option of
 * `openai`, the AI SDK's providers, `@anthropic-ai/sdk` or any SDK that takes one.
 *
 * - A streaming request (a JSON `POST` with `"stream": true`) gets every deadline layer. Its
 *   `Response` is held until the first progress (chat-completion chunks, Responses API
 *   `response.*.delta` events, Anthropic `content_block_delta`; keepalives and pings are not
 *   progress), so a failover before the first token is invisible. Its body is then the
 *   upstream's bytes, unchanged; a stream cut after text ends as `onCut` says.
 * - A non-streaming JSON `POST` gets the headers and service deadlines, retries and failover.
 * - Any other request (a models list, a file) is passed through once, with the headers and
 *   service deadlines.
 * - When everything fails before the `Response`: status 504 (a timeout) or 502, an
 *   OpenAI-style JSON error naming every attempt, and `x-should-retry: false` (so SDKs do not
 *   retry what the guard already retried); or the upstream's own 4xx when it refused the request.
 *
 * The request's own endpoint is attempt 0, exactly as the SDK sent it; each of `providers` is
 * tried after it with the body's `model` replaced (nothing else in the body changes) and its own
 * URL and key. Throws a {@link GuardError} of kind `"config"` for invalid options.
 *
 * @example
 * const client = new OpenAI({ baseURL, apiKey, fetch: guardFetch({
 *   timeouts: { firstTokenMs: 15000 },
 *   providers: [{ name: "local", url: "http://127.0.0.1:11434/v1/chat/completions", model: "llama3.2" }],
 * }) });
 */
export function guardFetch(options?: GuardFetchOptions): FetchFunction;

/** `fetch` as the program's libraries declare it (the DOM's, `@types/node`'s), else {@link FetchLike}. */
export type FetchFunction = typeof globalThis extends { fetch: infer F } ? F : FetchLike;

/** The options of {@link guardFetch}; all optional. */
export interface GuardFetchOptions {
  /**
   * Fallbacks, tried in order after the request's own endpoint (streaming and JSON `POST`s
   * only). `url` is the full endpoint the request goes to (of the same API as the SDK's: chat
   * completions, responses or messages); `model` replaces the body's; `apiKey` goes in the
   * header the SDK used for its own key (`Authorization: Bearer`, or `x-api-key`).
   */
  providers?: Provider[];
  /** Deadlines; the request's own endpoint uses these, each provider may override them. */
  timeouts?: Partial<Timeouts>;
  /** Retries per endpoint before failing over (`maxRetries` also applies to the SDK's own). */
  retry?: RetryOptions;
  /** The largest SSE event watched, in bytes (default 1 MiB): a bigger one fails the attempt before the first progress; after it, only the service deadline watches. */
  maxEventBytes?: number;
  /** A session whose `cancel()` and `close()` cancel every request in flight. */
  session?: Session;
  /** Aborting it cancels every request in flight and every later one. */
  signal?: GlobalType<"AbortSignal", AbortSignalLike>;
  /**
   * A stream cut after its first progress (a deadline, a reset): `"error"` (the default) errors
   * the body with a {@link GuardError} (`partial: true`), so the SDK throws; `"finish"` ends it
   * with the format's own error event (chat: a chunk with `finish_reason: "error"` and an
   * `error` object, then `[DONE]`; Responses and Anthropic: an `error` event).
   */
  onCut?: "error" | "finish";
  /** Every {@link GuardEvent} of every request, in order. A throw from it is ignored. */
  onEvent?: (event: GuardEvent) => void;
  /** Console lines about each request (default `"off"`); never keys or headers. */
  log?: LogLevel;
  /** The `fetch` it wraps (default: the global one). */
  fetch?: FetchFunction;
}

/**
 * One message of the conversation, as OpenAI's chat-completions API defines it (a union
 * discriminated by `role`). It is sent unchanged, so OpenAI-compatible servers receive exactly
 * these fields.
 */
export type ChatMessage =
  | SystemMessage
  | DeveloperMessage
  | UserMessage
  | AssistantMessage
  | ToolMessage;

/** Instructions for the model. */
export interface SystemMessage {
  /** The discriminant. */
  role: "system";
  /** The instructions: text, or text parts. */
  content: string | TextContentPart[];
  /** An optional name for the author, to tell participants of the same role apart. */
  name?: string;
}

/** Instructions for the model that newer OpenAI models prefer over `system`. */
export interface DeveloperMessage {
  /** The discriminant. */
  role: "developer";
  /** The instructions: text, or text parts. */
  content: string | TextContentPart[];
  /** An optional name for the author, to tell participants of the same role apart. */
  name?: string;
}

/** What the user said: text, or parts (text, images, audio, files). */
export interface UserMessage {
  /** The discriminant. */
  role: "user";
  /** Text, or an array of content parts. */
  content: string | UserContentPart[];
  /** An optional name for the author, to tell participants of the same role apart. */
  name?: string;
}

/** An earlier answer of the model, sent back as part of the conversation. */
export interface AssistantMessage {
  /** The discriminant. */
  role: "assistant";
  /**
   * What the model said; `null` (or absent) when it only called tools. Parts are text or
   * refusals.
   */
  content?: string | (TextContentPart | RefusalContentPart)[] | null;
  /** The model's refusal, when it refused. */
  refusal?: string | null;
  /** An optional name for the author, to tell participants of the same role apart. */
  name?: string;
  /** The tool calls the model made (`result.toolCalls` holds the ones of a new answer). */
  tool_calls?: ChatToolCall[];
  /** A reference to an earlier audio answer of the model. */
  audio?: { id: string } | null;
}

/** The result of one tool call, answering an assistant message's `tool_calls` entry. */
export interface ToolMessage {
  /** The discriminant. */
  role: "tool";
  /** The tool's output: text, or text parts. */
  content: string | TextContentPart[];
  /** The `id` of the tool call this answers. */
  tool_call_id: string;
}

/** A tool call inside an {@link AssistantMessage} (OpenAI's wire shape). */
export interface ChatToolCall {
  /** The call's id, repeated by the {@link ToolMessage} that answers it. */
  id: string;
  /** Always `"function"`. */
  type: "function";
  /** The function called. */
  function: {
    /** The function's name. */
    name: string;
    /** Its arguments as JSON text, as the model wrote them. */
    arguments: string;
  };
}

/** A content part of a user message. */
export type UserContentPart =
  | TextContentPart
  | ImageContentPart
  | AudioContentPart
  | FileContentPart;

/** Text. */
export interface TextContentPart {
  /** The discriminant. */
  type: "text";
  /** The text. */
  text: string;
}

/** An image, by URL or as a `data:` URL. */
export interface ImageContentPart {
  /** The discriminant. */
  type: "image_url";
  /** Where the image is. */
  image_url: {
    /** An `https:` URL or a base64 `data:` URL. */
    url: string;
    /** How closely the model looks at it (default `"auto"`). */
    detail?: "auto" | "low" | "high";
  };
}

/** Audio, base64-encoded. */
export interface AudioContentPart {
  /** The discriminant. */
  type: "input_audio";
  /** The audio. */
  input_audio: {
    /** The base64-encoded audio data. */
    data: string;
    /** Its format. */
    format: "wav" | "mp3";
  };
}

/** A file (for example a PDF), inline or by an uploaded file's id. */
export interface FileContentPart {
  /** The discriminant. */
  type: "file";
  /** The file. */
  file: {
    /** The base64-encoded file data (a `data:` URL). */
    file_data?: string;
    /** The id of an uploaded file. */
    file_id?: string;
    /** The file's name. */
    filename?: string;
  };
}

/** A refusal inside an assistant message's content parts. */
export interface RefusalContentPart {
  /** The discriminant. */
  type: "refusal";
  /** The refusal text. */
  refusal: string;
}

/**
 * The type of the global `Name`'s instances where the project's type definitions declare that
 * global (the DOM library, `@types/node`, workerd's types), else `Fallback`. It keeps these types
 * compiling under `lib: ["es2022"]` alone.
 */
export type GlobalType<Name extends string, Fallback = never> = typeof globalThis extends {
  [K in Name]: { prototype: infer T };
}
  ? T
  : Fallback;

/** What a signal must offer, where no `AbortSignal` type is declared. */
export interface AbortSignalLike {
  /** Whether it has aborted. */
  readonly aborted: boolean;
  /** Listens for `"abort"`. */
  addEventListener(type: "abort", listener: () => void): void;
}

/** A `fetch` function, where no global `fetch` type is declared. */
export type FetchLike = (input: string, init?: Record<string, unknown>) => Promise<unknown>;

/** The `log` option's levels, from quietest to loudest. */
export type LogLevel = "off" | "error" | "info" | "debug";

/** Retry settings (`GenerateOptions.retry`). Back-off is exponential with full jitter. */
export interface RetryOptions {
  /** Retries per provider after its first attempt (a whole number, default 2; 0 disables retries). */
  maxRetries?: number;
  /** Upper bound of the first back-off, in milliseconds (default 500); doubles per retry. */
  baseDelayMs?: number;
  /**
   * The largest back-off, in milliseconds (default 8000). A server's `Retry-After` is honoured
   * instead when it sent one; no wait ever runs past the service deadline.
   */
  maxDelayMs?: number;
}

/** One OpenAI-compatible chat-completions endpoint in the failover chain. */
export interface Provider {
  /** A name for events, logs, `result.provider` and the attempt log (e.g. `"openrouter"`). */
  name: string;
  /** The full chat-completions URL, e.g. `https://openrouter.ai/api/v1/chat/completions`. */
  url: string;
  /** The model to ask for (the request body's `model`). */
  model: string;
  /** Sent as `Authorization: Bearer <apiKey>` when present. Never logged nor reported. */
  apiKey?: string;
  /** Extra request headers (e.g. `HTTP-Referer`, `X-Title`). Never logged nor reported. */
  headers?: Record<string, string>;
  /**
   * This provider's own deadlines, over the call's `timeouts` (`serviceMs` bounds the whole
   * call, so only `GenerateOptions.timeouts.serviceMs` sets it).
   */
  timeouts?: Partial<Timeouts>;
  /** This provider's own retry allowance, over `retry.maxRetries`. */
  maxRetries?: number;
}

/** The layered deadlines, in milliseconds; each must be a positive number. */
export interface Timeouts {
  /** Request sent → response headers (default 20000). */
  headersMs: number;
  /** Request sent → first progress: text, reasoning, a tool call, a finish reason (default 30000). Keepalive comments do not count. */
  firstTokenMs: number;
  /** Progress → next progress (default 20000). Keepalive comments do not count. */
  idleMs: number;
  /** One attempt, request to end of stream (default 60000). */
  streamMs: number;
  /** The whole call, all attempts and back-offs included (default 90000); every attempt is clipped to what is left of it. */
  serviceMs: number;
}

/** What {@link generate} resolves with. */
export interface GenerateResult {
  /** The answer text (the concatenation of every `onText` delta). */
  text: string;
  /** `true` when text arrived and the attempt was then cut short; `cause` says why. */
  partial: boolean;
  /** The finish reason the provider sent (`"stop"`, `"length"`, `"tool_calls"`, ...), if any. */
  finishReason?: string;
  /** The name of the provider that answered. */
  provider: string;
  /** The model that answered (as the server reported it, else the one asked for). */
  model: string;
  /** Token counts, when the provider sent them. */
  usage?: Usage;
  /** Why a partial answer was cut short; absent on a complete answer. */
  cause?: PartialCause;
  /** The provider's id of this generation (the chunks' `id`, e.g. OpenRouter's `gen-...`), if sent. */
  generationId?: string;
  /** Tool calls assembled from their streamed fragments, if the model made any. */
  toolCalls?: ToolCall[];
  /** Counters of the answering attempt. */
  stats: GenerateStats;
  /** Every attempt of the call, in order, the answering one last. */
  attempts: Attempt[];
  /** Set when the text was continued on another provider after a cut: from whom and where. */
  continuation?: Continuation;
}

/** Token counts as the provider reported them (its own field names). */
export interface Usage {
  /** Tokens in the prompt. */
  prompt_tokens: number;
  /** Tokens in the answer. */
  completion_tokens: number;
  /** Their sum. */
  total_tokens: number;
}

/** Why an answer is partial (`GenerateResult.cause`). */
export interface PartialCause {
  /** The kind of failure that cut the answer short. */
  kind: GuardErrorKind;
  /** For `kind: "timeout"`: the deadline that passed. */
  phase?: TimeoutPhase;
  /** What happened, for people. */
  message: string;
  /** For `kind: "network"`: the platform's own error that cut the stream. */
  cause?: unknown;
}

/** One tool call of the answer. */
export interface ToolCall {
  /** The call id the model gave it. */
  id: string;
  /** The function's name. */
  name: string;
  /** The arguments as JSON text (parse it yourself: a cut-short answer may hold partial JSON). */
  arguments: string;
}

/** Counters of the answering attempt (`GenerateResult.stats`). */
export interface GenerateStats {
  /** Server-Sent Events lines read (comments included). */
  lines: number;
  /** Chunks that carried answer text. */
  chunks: number;
  /** Milliseconds from the request to the first progress, if any arrived. */
  firstTokenMs?: number;
  /** Milliseconds from the `generate()` call to its end. */
  elapsedMs: number;
}

/** One line of the attempt log (`GenerateResult.attempts`, `GuardError.attempts`). */
export interface Attempt {
  /** The provider asked. */
  provider: string;
  /**
   * `"complete"`, `"partial"`, `"skipped"` (a {@link Guard} left the provider out: its breaker
   * is open; nothing was sent), or the failure kind that ended it (a hedged attempt that lost:
   * `"aborted"`).
   */
  outcome: "complete" | "partial" | "skipped" | GuardErrorKind;
  /** The HTTP status, when headers arrived. */
  status?: number;
  /** How long the attempt took, in milliseconds. */
  elapsedMs: number;
}

/**
 * What went wrong, for branching (never branch on message text):
 * - `"timeout"`: a deadline passed (see `layer` and `phase`);
 * - `"aborted"`: the caller's `signal` (or another cancellation) ended the call;
 * - `"http"`: the provider answered with a non-2xx status (see `status`);
 * - `"upstream"`: the provider reported an error in the stream, or sent no answer at all;
 * - `"protocol"`: the response was not what an OpenAI-compatible server sends (an over-long
 *   event, HTML instead of a stream, ...);
 * - `"network"`: the request or the body failed to transfer;
 * - `"config"`: the options (or `SseParser` options) were invalid; nothing was sent;
 * - `"unavailable"`: a {@link Guard}'s breakers left every provider of the chain out; nothing
 *   was sent.
 */
export type GuardErrorKind =
  | "timeout"
  | "aborted"
  | "http"
  | "upstream"
  | "protocol"
  | "network"
  | "config"
  | "unavailable";

/** Which deadline caused a timeout: the provider's own ones, or the whole call's `serviceMs`. */
export type TimeoutLayer = "provider" | "service";

/** What was being waited for when a deadline passed. */
export type TimeoutPhase = "headers" | "first-token" | "idle" | "stream";

/**
 * The error {@link generate} rejects with (and `SseParser` throws): a plain JavaScript `Error`
 * whose `name` is `"GuardError"`. There is no `GuardError` class at run time, so check
 * `error instanceof Error && error.name === "GuardError"`, then branch on `kind`:
 *
 * ```ts
 * function isGuardError(error: unknown): error is GuardError {
 *   return error instanceof Error && error.name === "GuardError";
 * }
 * ```
 *
 * Errors thrown by `SseParser` carry only `name`, `message` and `kind` (`"protocol"` or
 * `"config"`); the call-related fields are set on rejections of `generate()`.
 */
export interface GuardError extends Error {
  /** Always `"GuardError"`. */
  name: "GuardError";
  /** What went wrong; branch on this. */
  kind: GuardErrorKind;
  /** What happened, for people (never contains keys or headers). */
  message: string;
  /** For `kind: "timeout"`: whether a provider deadline or the service deadline passed. */
  layer?: TimeoutLayer;
  /** For `kind: "timeout"`: what was being waited for. */
  phase?: TimeoutPhase;
  /** For `kind: "http"`: the last HTTP status. */
  status?: number;
  /**
   * Answer text received before the failure: after an abort, what had arrived; otherwise empty
   * (any other failure after text resolves as a partial answer instead of rejecting).
   */
  partialText: string;
  /** Every attempt of the call, in order. */
  attempts: Attempt[];
  /** The provider of the last attempt, if one was made. */
  provider?: string;
  /**
   * For `kind: "aborted"`: what cancelled the call (`"signal"` for `options.signal`,
   * `"callback"` when `onText` or `onEvent` threw, a `Session`'s reason, ...).
   */
  reason?: string;
  /**
   * For `kind: "network"`: the platform's own error (what `fetch` or a body read rejected
   * with). For `reason: "callback"`: what the callback threw.
   */
  cause?: unknown;
}

/** Every event of a call (`GenerateOptions.onEvent`), discriminated by `type`. */
export type GuardEvent =
  | RequestStartEvent
  | HeadersEvent
  | FirstTokenEvent
  | StreamEndEvent
  | TimeoutEvent
  | EmptyResponseEvent
  | AttemptFailedEvent
  | RetryEvent
  | FailoverEvent
  | MalformedEvent
  | CancelledEvent
  | UpstreamEvent
  | HedgeEvent
  | ContinuationEvent
  | SkippedEvent
  | DoneEvent;

/** A request is being sent. */
export interface RequestStartEvent {
  /** The discriminant. */
  type: "request-start";
  /** The provider asked. */
  provider: string;
  /** The model asked for. */
  model: string;
  /** 1 for the first attempt at this provider, 2 for its first retry, ... */
  attempt: number;
}

/** Response headers arrived. */
export interface HeadersEvent {
  /** The discriminant. */
  type: "headers";
  /** The provider that answered. */
  provider: string;
  /** The HTTP status. */
  status: number;
  /** Milliseconds since the request was sent. */
  elapsedMs: number;
}

/** The first progress (text, reasoning, a tool call, a finish reason) arrived. */
export interface FirstTokenEvent {
  /** The discriminant. */
  type: "first-token";
  /** The provider that sent it. */
  provider: string;
  /** Milliseconds since the request was sent. */
  firstTokenMs: number;
}

/** The stream ended normally. */
export interface StreamEndEvent {
  /** The discriminant. */
  type: "stream-end";
  /** The provider that sent it. */
  provider: string;
  /** Server-Sent Events lines read. */
  lines: number;
  /** Chunks that carried text. */
  chunks: number;
  /** Milliseconds since the request was sent. */
  elapsedMs: number;
}

/** A deadline passed. */
export interface TimeoutEvent {
  /** The discriminant. */
  type: "timeout";
  /** The provider being waited for. */
  provider: string;
  /** A provider deadline, or the whole call's service deadline. */
  layer: TimeoutLayer;
  /** What was being waited for. */
  phase: TimeoutPhase;
  /** Server-Sent Events lines read until then. */
  lines: number;
  /** Chunks that carried text until then. */
  chunks: number;
  /** Milliseconds since the request was sent. */
  elapsedMs: number;
}

/** The response ended with no answer in it. */
export interface EmptyResponseEvent {
  /** The discriminant. */
  type: "empty-response";
  /** The provider that sent it. */
  provider: string;
  /** Server-Sent Events lines read. */
  lines: number;
}

/** An attempt failed (with the kind and message a `GuardError` would carry). */
export interface AttemptFailedEvent {
  /** The discriminant. */
  type: "attempt-failed";
  /** The provider asked. */
  provider: string;
  /** The kind of failure. */
  kind: GuardErrorKind;
  /** The HTTP status, for `kind: "http"`. */
  status?: number;
  /** What happened. */
  message: string;
}

/** The same provider will be asked again after a back-off. */
export interface RetryEvent {
  /** The discriminant. */
  type: "retry";
  /** The provider asked again. */
  provider: string;
  /** The number of the attempt that follows (2 for the first retry). */
  attempt: number;
  /** The back-off before it, in milliseconds. */
  delayMs: number;
  /** The kind of failure that caused it. */
  reason: string;
}

/** The next provider of the chain will be tried. */
export interface FailoverEvent {
  /** The discriminant. */
  type: "failover";
  /** The provider given up on. */
  from: string;
  /** The provider tried next. */
  to: string;
  /** The kind of failure that caused it. */
  reason: string;
}

/** An event whose data was not a chat chunk was counted and skipped. */
export interface MalformedEvent {
  /** The discriminant. */
  type: "malformed";
  /** The provider that sent it. */
  provider: string;
  /** What was wrong with it. */
  reason: string;
  /** Its size in bytes. */
  bytes: number;
}

/** The call was cancelled (the caller's signal, ...). */
export interface CancelledEvent {
  /** The discriminant. */
  type: "cancelled";
  /** What cancelled it (`"signal"`, ...). */
  reason: string;
}

/**
 * An event relayed by the provider itself: an llm-stream-guard edge worker asked with the
 * header `X-LSG-Events: 1` streams its own guard events (its retries, failovers and timeouts
 * behind the proxy) as `event: guard` SSE events, delivered here. Not part of the answer.
 */
export interface UpstreamEvent {
  /** The discriminant. */
  type: "upstream-event";
  /** The provider (the proxy) that relayed it. */
  provider: string;
  /** The relayed event as the proxy sent it (normally one of its own `GuardEvent`s). */
  event: GuardEvent | Record<string, unknown> | string;
}

/** The call resolved (the last event of a successful call). */
export interface DoneEvent {
  /** The discriminant. */
  type: "done";
  /** The provider that answered. */
  provider: string;
  /** Whether the answer was cut short. */
  partial: boolean;
  /** Milliseconds since `generate()` was called. */
  elapsedMs: number;
}

/** One event dispatched by `SseParser` (comments and `retry` fields are not returned). */
export interface SseEvent {
  /** The event's data: its `data` lines joined with `"\n"`. */
  data: string;
  /** The event type (`event` field); `"message"` when none was given. */
  event: string;
  /** The last event id (`id` field), present when it is not empty. */
  id?: string;
}

/** Options of `new SseParser(options)`. */
export interface SseParserOptions {
  /**
   * The largest line, and the largest event data, in bytes (a positive whole number; default
   * 1 MiB = 1048576). Past it, `push` throws a `GuardError` of kind `"protocol"`; an invalid
   * value makes the constructor throw one of kind `"config"`.
   */
  maxEventBytes?: number;
}

/** Options of `new Session(options)`. */
export interface SessionOptions {
  /** Cancel on the page's `pagehide` (default `true` where a page exists; ignored elsewhere). */
  page?: boolean;
  /**
   * How long a watched `RTCPeerConnection` may sit in `"disconnected"` before it counts as lost,
   * in milliseconds (default 5000); `"failed"` and `"closed"` cancel at once.
   */
  disconnectGraceMs?: number;
}

/**
 * Generations tied to a lifecycle: everything a session started is cancelled together when the
 * page is hidden (`pagehide`), a watched WebRTC connection, data channel or WebSocket goes away,
 * a watched signal aborts, or the app calls `cancel()`. A cancelled generation rejects with a
 * {@link GuardError} of kind `"aborted"` whose `reason` says what happened (`"pagehide"`,
 * `"peer-connection:failed"`, `"peer-connection:closed"`, `"peer-connection:disconnected"`,
 * `"datachannel:close"`, `"websocket:close"`, `"signal"`, `"cancel"` or the reason given to
 * `cancel()`, `"closed"`), and its upstream request is aborted. Sessions are independent.
 *
 * An `RTCPeerConnection` closed by the app itself fires no event: call `cancel()` then.
 */
export class Session {
  /** A session; throws a `GuardError` of kind `"config"` for invalid options. */
  constructor(options?: SessionOptions);
  /**
   * Cancel this session's generations when `target` goes away. Returns a function that stops
   * watching it. A target already closed (or a signal already aborted) cancels what is in flight.
   */
  watch(
    target:
      | GlobalType<"RTCPeerConnection">
      | GlobalType<"RTCDataChannel">
      | GlobalType<"WebSocket">
      | GlobalType<"AbortSignal", AbortSignalLike>,
  ): () => void;
  /** Like {@link generate}, tracked by this session and cancelled with it. */
  generate(options: GenerateOptions): Promise<GenerateResult>;
  /** Cancel everything in flight (reason `"cancel"` unless given); the session stays usable. */
  cancel(reason?: string): void;
  /**
   * Cancel everything in flight (reason `"closed"`), then remove every listener; later
   * `generate()` calls reject with kind `"aborted"`, reason `"closed"`.
   */
  close(): void;
  /** Generations in flight. */
  readonly active: number;
  /** Closes the session and releases it (`using session = new Session()`). */
  [Symbol.dispose](): void;
  /** Closes the session and releases its memory; the object is unusable afterwards. */
  free(): void;
}

/** What the module holds right now: all zeros when nothing is running. */
export interface LiveResources {
  /** Armed timers (`setTimeout`). */
  timers: number;
  /** Response body readers held. */
  readers: number;
  /** Event listeners added to other objects (signals, connections, the page). */
  listeners: number;
  /** Generations in flight. */
  inFlight: number;
}

/** Leak accounting: the timers, readers, listeners and generations this module holds now. */
export function liveResources(): LiveResources;

declare global {
  /**
   * `Symbol.dispose` (explicit resource management), declared here as TypeScript's
   * `lib.esnext.disposable` declares it, so that `[Symbol.dispose]()` above compiles under
   * `lib: ["es2022"]` too; with that library present, the two declarations merge.
   */
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
}
