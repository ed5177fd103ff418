// The types of the `Guard` class (one guard, many calls: learned deadlines, breakers, hedging,
// continuation), beside llm-stream-guard.d.ts and stream.d.ts (one package .d.ts: wasm-bindgen
// joins them; the contract test reads all three).

/**
 * A long-lived guard over one failover chain: every call it makes shares what it learned.
 *
 * - Learned deadlines (`adaptive`, on by default): per provider and model, the time to first
 *   token and the longest silence inside each answer are learned online; once `minSamples`
 *   attempts were seen, `firstTokenMs` and `idleMs` become `factor ×` the learned quantile,
 *   never above the configured value and never below 250 ms.
 * - Breakers: a provider failing `failureThreshold` times in a row (timeouts, stalls, network,
 *   upstream and protocol errors, empty answers, 408/429/5xx; never a 400 or an abort) is
 *   skipped for `cooldownMs` (a `skipped` event, an attempt with outcome `"skipped"`); then
 *   exactly one call probes it: success closes the breaker, failure opens it again. A call
 *   whose every provider is skipped rejects with kind `"unavailable"` at once.
 * - Hedging and continuation as `hedge` and `continuation` say.
 *
 * @example
 * const guard = new Guard({ providers, hedge: { afterMs: "auto" } });
 * const result = await guard.generate({ messages });
 * for await (const delta of guard.stream({ messages })) output.append(delta);
 * console.table(guard.stats());
 * guard.close();
 */
export class Guard {
  /** Throws a {@link GuardError} of kind `"config"` for invalid options. */
  constructor(options: GuardOptions);
  /** Like {@link generate}, with this guard's providers, deadlines, retries and state. */
  generate(request: GenerateRequest): Promise<GenerateResult>;
  /** Like {@link stream}, with this guard's providers, deadlines, retries and state. */
  stream(request: GenerateRequest): GenerationStream;
  /**
   * {@link guardFetch} with this guard's providers as fallbacks (after the request's own
   * endpoint), its deadlines, retries, session, `onEvent`, log and `fetch`, and its state:
   * a provider whose breaker is open is skipped (a `skipped` event), learned deadlines apply,
   * and every request is learned from (not the request's own endpoint, which is not one of the
   * guard's providers). Pass it as an SDK's `fetch` option. The same function every time until
   * the guard is closed, which closes it too (its requests then reject with an `AbortError`).
   */
  readonly fetch: FetchFunction;
  /** What the guard knows now, one entry per provider of its chain, in order. */
  stats(): ProviderStats[];
  /**
   * Cancels every call in flight (they reject as `"aborted"`, reason `"closed"`); later calls
   * reject the same way. Idempotent.
   */
  close(): void;
  /** Closes the guard (as {@link Guard.close}) and releases its memory. */
  free(): void;
}

/** The options of a {@link Guard}. Only `providers` is required. */
export interface GuardOptions {
  /** The failover chain, as in {@link GenerateOptions.providers}. */
  providers: Provider[];
  /** Deadlines for every call (the ceiling learned deadlines never pass). */
  timeouts?: Partial<Timeouts>;
  /** Retry settings for every call. */
  retry?: RetryOptions;
  /**
   * Continue an answer cut after text on the next provider instead of resolving it partial
   * (default `false`).
   */
  continuation?: boolean;
  /** Ask the next provider in parallel when the first shows no progress for a while. */
  hedge?: HedgeOptions;
  /** Learned deadlines: `true` (the default), `false`, or settings. */
  adaptive?: boolean | AdaptiveOptions;
  /** When a provider is skipped, and for how long. */
  breaker?: BreakerOptions;
  /** Every call is tracked by this session and cancelled with it. */
  session?: Session;
  /** Every {@link GuardEvent} of every call (beside a call's own `onEvent`). */
  onEvent?: (event: GuardEvent) => void;
  /** Console logging for every call (a call's own `log` wins). */
  log?: LogLevel;
  /** The `fetch` every call uses (default: the global one). */
  fetch?: FetchFunction;
}

/** `GuardOptions.hedge`. */
export interface HedgeOptions {
  /**
   * Milliseconds without progress before the next provider is asked in parallel, or `"auto"`:
   * the first provider's learned p95 time to first token (no hedge until it is learned).
   */
  afterMs: number | "auto";
}

/** `GuardOptions.adaptive` as an object. */
export interface AdaptiveOptions {
  /** The quantile learned (default 0.95). */
  quantile?: number;
  /** The multiple of it that becomes the deadline (default 3). */
  factor?: number;
  /** Attempts seen before a learned deadline is used (default 20). */
  minSamples?: number;
}

/** `GuardOptions.breaker`. */
export interface BreakerOptions {
  /** Counted failures in a row that open the breaker (default 5). */
  failureThreshold?: number;
  /** How long it stays open before one call may probe (default 30000 ms). */
  cooldownMs?: number;
}

/** One call of a {@link Guard}: {@link GenerateOptions} without what the guard holds. */
export type GenerateRequest = Omit<GenerateOptions, "providers" | "timeouts" | "retry" | "fetch">;

/** What a {@link Guard} knows about one provider and model (`guard.stats()`). */
export interface ProviderStats {
  /** The provider's name. */
  provider: string;
  /** Its model. */
  model: string;
  /** Attempts whose time to first token was learned. */
  samples: number;
  /** Times to first token, once one was learned. */
  firstTokenMs?: Quantiles;
  /** The longest silence between two progresses of each answer, once one was learned. */
  gapMs?: Quantiles;
  /** The deadlines learned and in force (absent: the configured one holds). */
  learned: LearnedTimeouts;
  /** Its breaker. */
  breaker: BreakerStats;
}

/** Quantiles of a learned distribution, in milliseconds (within 1 %). */
export interface Quantiles {
  /** The median. */
  p50: number;
  /** The 95th percentile. */
  p95: number;
  /** The 99th percentile. */
  p99: number;
}

/** `ProviderStats.learned`. */
export interface LearnedTimeouts {
  /** The first-token deadline in force, once learned. */
  firstTokenMs?: number;
  /** The idle deadline in force, once learned. */
  idleMs?: number;
}

/** `ProviderStats.breaker`. */
export interface BreakerStats {
  /** Closed: calls go through; open: skipped; half-open: the next call probes it. */
  state: "closed" | "open" | "half-open";
  /** Counted failures in a row (closed). */
  failures: number;
  /** The failure kind that opened it (open, half-open). */
  reason?: string;
  /** Milliseconds until one call may probe it (open). */
  retryInMs?: number;
}

/** A {@link Guard} left a provider out of this call: its breaker is open. Nothing was sent. */
export interface SkippedEvent {
  /** The discriminant. */
  type: "skipped";
  /** The provider left out. */
  provider: string;
  /** Its model. */
  model: string;
  /** The failure kind that opened its breaker. */
  reason: string;
  /** Milliseconds until one call may probe it (absent while another call probes it). */
  retryInMs?: number;
}
