// The types of stream() and of the guard's hedging and continuation (their events and the
// result's `continuation`), beside llm-stream-guard.d.ts (one package .d.ts: wasm-bindgen joins
// both; the contract test reads both).

/**
 * Like {@link generate}, as an async iterable of text deltas: `for await (const delta of s)`.
 * The deltas joined equal `result.text`. A failure reaches the loop once (it throws the
 * `GuardError`); `result` is never an unhandled rejection. `cancel()`, or leaving the loop
 * early, releases the upstream at once and rejects `result` as `aborted`.
 */
export function stream(options: GenerateOptions): GenerationStream;

/** What {@link stream} returns. */
export interface GenerationStream extends AsyncIterable<string> {
  /** Settles as `generate()` would have. */
  readonly result: Promise<GenerateResult>;
  /** Ends the call now (`result` rejects as `aborted`, reason `"cancel"` unless given). */
  cancel(reason?: string): void;
}

/** How a cut answer was continued (`GenerateResult.continuation`). */
export interface Continuation {
  /** The provider whose answer was cut. */
  from: string;
  /** The characters (code points) of the text at the cut; the continuation follows them. */
  chars: number;
  /** The cut text as a trailing assistant message, or quoted in a request to continue it. */
  mode: "prefill" | "instruction";
}

/** No progress after `hedge.afterMs`: the next provider is asked in parallel, the first to progress wins. */
export interface HedgeEvent {
  /** The discriminant. */
  type: "hedge";
  /** The provider that showed no progress. */
  provider: string;
  /** The provider asked in parallel. */
  to: string;
  /** The wait that passed, in milliseconds. */
  afterMs: number;
}

/** An answer cut after text will be continued by the next provider (`continuation: true`). */
export interface ContinuationEvent {
  /** The discriminant. */
  type: "continuation";
  /** The provider whose answer was cut. */
  from: string;
  /** The provider asked to continue it. */
  to: string;
  /** The characters of the text so far. */
  chars: number;
  /** The kind of failure that cut it. */
  reason: string;
}

