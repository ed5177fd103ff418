// The result table: one Markdown row per figure, each with its comparison, its target and
// whether the target was met. A measurement that broke shows FAILED (and fails the run).

const COLUMNS = "| # | measure | result | comparison | target | verdict |\n|---|---|---|---|---|---|";

const mbps = (x) => `${x.toFixed(1)} MB/s`;
const ms = (x) => `${x.toFixed(1)} ms`;
const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`;
const mb = (bytes) => `${(bytes / 1e6).toFixed(2)} MB`;
const streamSize = (bytes) => (bytes >= 1 << 30 ? `${(bytes / (1 << 30)).toFixed(0)} GiB` : `${(bytes / (1 << 20)).toFixed(0)} MiB`);
const ratio = (x) => `${x.toFixed(2)}×`;
/** `x` against `base`, as a signed percentage. */
const pct = (x, base) => `${x >= base ? "+" : ""}${((x / base - 1) * 100).toFixed(0)} %`;
const late = (s) => `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}`;

/**
 * The rows for `results` (name → result or `{ error }`), `config` (what bench.rs passed) and
 * `size` (the inputs of this run). Returns `{ lines, failed }`.
 */
export function rows({ results, config, size }) {
  // A `--quick` run's inputs are too small for its figures to mean anything: it judges nothing.
  const verdict = (ok) => (config.quick ? "not judged (quick)" : ok ? "met" : "**missed**");
  const lines = [COLUMNS];
  let failed = false;
  const reported = new Set();
  const get = (name) =>
    results[name] ?? { error: results.chromium?.error ?? `${name} was not measured` };
  /** One row, or a FAILED row when a result it needs is an error. */
  const row = (key, measure, needs, cells) => {
    needs.forEach((name) => reported.add(name));
    const broken = needs.map(get).find((r) => r.error);
    if (broken) {
      failed = true;
      lines.push(`| ${key} | ${measure} | FAILED: ${broken.error.replaceAll("|", "/")} | | | FAILED |`);
      return;
    }
    const [result, comparison, target, ok] = cells(...needs.map(get));
    const judged = ok === null ? "—" : ok === "exact" ? "met" : verdict(ok);
    lines.push(`| ${key} | ${measure} | ${result} | ${comparison} | ${target} | ${judged} |`);
  };
  const runs = `${(size.decodeBytes / 1e6).toFixed(0)} MB, median of ${size.decodeRuns}`;

  // 1. Decode throughput.
  for (const [key, env] of [["1a", "node"], ["1b", "chromium"]]) {
    const name = env === "node" ? "Node" : "Chromium";
    row(key, `decode: \`generate()\` (injected fetch, 64 KiB reads), ${name} (${runs})`, [`decode.${env}`], (d) => [
      mbps(d.generate.ours),
      `eventsource-parser + JSON.parse + concatenation: ${mbps(d.generate.baseline)} → ${ratio(d.generate.ours / d.generate.baseline)}`,
      "≥ 4.00× baseline",
      d.generate.ours / d.generate.baseline >= 4,
    ]);
  }
  for (const [key, env] of [["1c", "node"], ["1d", "chromium"]]) {
    const name = env === "node" ? "Node" : "Chromium";
    row(key, `decode: \`SseParser.push\` alone, events counted, ${name} (${runs})`, [`decode.${env}`], (d) => [
      mbps(d.parser.ours),
      `eventsource-parser alone (+ TextDecoder): ${mbps(d.parser.baseline)} → ${ratio(d.parser.ours / d.parser.baseline)}`,
      "— (reported)",
      null,
    ]);
  }

  const fetchRuns = `${(size.decodeFetchBytes / 1e6).toFixed(0)} MB from a loopback server in 64 KiB writes, median of ${size.decodeRuns}`;
  for (const [key, env] of [["1e", "node"], ["1f", "chromium"]]) {
    const name = env === "node" ? "Node" : "Chromium";
    row(key, `decode end to end: \`generate()\` through the real \`fetch\`, ${name} (${fetchRuns})`, [`decode-fetch.${env}`], (d) => [
      mbps(d.ours),
      `the same \`fetch\` + eventsource-parser + JSON.parse + concatenation: ${mbps(d.baseline)} → ${ratio(d.ours / d.baseline)}`,
      "≥ 2.50× baseline",
      d.ours / d.baseline >= 2.5,
    ]);
  }

  // 2. Size.
  const s = config.sizes;
  const total = s.wasmGzip + s.jsGzip;
  lines.push(
    `| 2 | size: web package, all the main entry loads (\`wasm-opt -Oz\`, \`gzip -9\`) | .wasm ${kb(s.wasm)} raw, ${kb(s.wasmGzip)} gz; JS (the browser entry with its glue) ${kb(s.js)} raw, ${kb(s.jsGzip)} gz; **total ${kb(total)} gz** | .wasm before wasm-opt ${kb(s.wasmBeforeOpt)} | < 40.0 KB gz total | ${verdict(total < 40_000)} |`,
  );
  const p = config.sseSizes;
  const parserOnly = p.wasmGzip + p.jsGzip;
  lines.push(
    `| 2b | size: parser-only entry \`llm-stream-guard/sse\` (\`SseParser\` alone, feature \`sse-only\`; \`wasm-opt -Oz\`, \`gzip -9\`) | .wasm ${kb(p.wasm)} raw, ${kb(p.wasmGzip)} gz; JS (the browser entry with its glue) ${kb(p.js)} raw, ${kb(p.jsGzip)} gz; **total ${kb(parserOnly)} gz** | .wasm before wasm-opt ${kb(p.wasmBeforeOpt)} | < 12.0 KB gz total | ${verdict(parserOnly < 12_000)} |`,
  );

  // The full run only: the size floor under row 2, judged against nothing.
  const f = config.floorSizes;
  if (f) {
    lines.push(
      `| 2c | size floor: the core alone, with its drivers in JavaScript, for comparison with row 2's 40 KB target (\`src/core_floor.rs\`, feature \`core-floor\`: every machine and the guard's state with the option reading they need, no driver; \`wasm-opt -Oz\`, \`gzip -9\`) | **.wasm ${kb(f.wasm)} raw, ${kb(f.wasmGzip)} gz**; its wasm-bindgen glue (minified; a driver's JavaScript would come on top) ${kb(f.js)} raw, ${kb(f.jsGzip)} gz | .wasm before wasm-opt ${kb(f.wasmBeforeOpt)}; row 2's .wasm ${kb(s.wasmGzip)} gz | — (a floor, not a target) | — |`,
    );
  }

  // 3. Deadline precision.
  const d = config.deadlines;
  const kinds = [
    ["idle", `idle (${d.idleMs} ms, \`stall-after-chunks\`)`, "from the last `onText` to the call settling"],
    ["first-token", `first-token (${d.firstTokenMs} ms, \`keepalive-forever\`)`, "from the `generate()` call to its rejection"],
    ["service", `service (${d.serviceMs} ms, \`endless\`)`, "from the `generate()` call to its partial answer"],
  ];
  let letter = 0;
  const next = () => `3${"abcdefghi"[letter++]}`;
  for (const env of ["node", "chromium"]) {
    const name = env === "node" ? "Node" : "Chromium";
    for (const [kind, label, how] of kinds) {
      row(next(), `deadline lateness: ${label}, ${name}`, [`deadlines.${env}`], (r) => [
        late(r[kind]),
        `max ${ms(r[kind].max)} over ${r[kind].trials} trials; ${how}`,
        "p99 < 25 ms late",
        r[kind].p99 < 25,
      ]);
    }
  }
  for (const [kind, label] of kinds) {
    const how = {
      idle: "client: last text chunk → `timeout` event",
      "first-token": "client: request start → the worker's 504 (the status is held until progress or a heartbeat; includes the client → worker hop)",
    }[kind] ?? "client: request start → `timeout` event (includes the client → worker hop)";
    row(next(), `deadline lateness: ${label}, workerd (edge worker)`, [`deadlines.workerd.${kind}`], (r) => [
      late(r.client),
      `${how}; the guard's own clock (\`elapsedMs\`): ${r.guard ? late(r.guard) : "no event carries it"}; ${r.client.trials} trials`,
      "p99 < 25 ms late",
      r.client.p99 < 25,
    ]);
  }

  // 4. Cancel latency.
  const ways = [
    ["abort", "caller's `AbortController.abort()`"],
    ["session-cancel", "`session.cancel()`"],
    ["session-signal", "`Session` watching a signal, signal aborted"],
  ];
  letter = 0;
  const nextCancel = () => `4${"abcdefghi"[letter++]}`;
  for (const env of ["node", "chromium"]) {
    const name = env === "node" ? "Node" : "Chromium";
    for (const [how, label] of ways) {
      row(nextCancel(), `cancel → upstream connection closed: ${label}, ${name}`, [`cancel.${env}`], (r) => [
        late(r[how]),
        `max ${ms(r[how].max)} over ${r[how].trials} trials (mock ledger \`closed_at_ms\`; clocks matched to ±${ms(r.uncertaintyMs)})`,
        "p99 < 50 ms",
        r[how].p99 < 50,
      ]);
    }
  }
  row(nextCancel(), "cancel → upstream connection closed: client drops its connection to the worker, upstream sending (`endless`, a chunk every 20 ms), workerd", ["cancel.workerd"], (r) => [
    late(r.worker),
    `plain pass-through proxy in the same workerd: ${late(r.passthrough)}; both notice the drop at their next write to the client (here the upstream's next chunk); ${r.worker.trials} trials`,
    "p99 < 50 ms",
    r.worker.p99 < 50,
  ]);
  row(nextCancel(), "cancel → upstream connection closed: client drops its connection to the worker, upstream silent (`stall-after-chunks`), workerd", ["cancel.workerd"], (r) => [
    late(r.workerSilent),
    `plain pass-through proxy: ${
      r.passthroughSilent.closedAfterMs === null
        ? `upstream still open ${(r.passthroughSilent.waitMs / 1000).toFixed(0)} s after the drop`
        : `closed after ${ms(r.passthroughSilent.closedAfterMs)}`
    }; workerd notices a vanished client only when it writes, and the worker writes a liveness probe every \`LSG_PROBE_MS\` (its default here); ${r.workerSilent.trials} trials`,
    "p99 < 50 ms",
    r.workerSilent.p99 < 50,
  ]);

  row(nextCancel(), `cancel → upstream connection closed, under load: ${size.departureStreams} streams of \`endless\` (a chunk every 50 ms) through the edge worker at once, every other client leaves (all in the same instant), workerd`, ["departures.workerd"], (r) => [
    late(r.latency),
    `max ${ms(r.latency.max)}; ${r.departed} clients left (each found in the mock's ledger by its own request body, clocks matched), the ${r.stayedOpen} that stayed kept their upstreams`,
    "p99 ≤ 100 ms",
    r.latency.p99 <= 100,
  ]);

  // 5. Memory bound.
  const memoryTarget = "wasm memory flat after warm-up, < 4 MB";
  const flat = (m) => m.wasmPeak === m.wasmAfterWarmUp && m.wasmPeak < 4_000_000;
  row("5a", `memory: ${streamSize(size.memoryBytes)} of stream through \`SseParser\`, Node`, ["memory.parser"], (m) => [
    `wasm peak ${mb(m.wasmPeak)} (after 16 MiB: ${mb(m.wasmAfterWarmUp)}); RSS peak ${mb(m.rssPeak)}`,
    `wasm at start ${mb(m.wasmAtStart)}; ${(m.bytes / m.seconds / 1e6).toFixed(0)} MB/s`,
    memoryTarget,
    flat(m),
  ]);
  row("5b", `memory: ${streamSize(size.memoryBytes)} of stream through \`generate()\` (made on the fly), Node`, ["memory.generate"], (m) => [
    `wasm peak ${mb(m.wasmPeak)} (after 16 MiB: ${mb(m.wasmAfterWarmUp)}; at end of stream: ${mb(m.wasmAtEndOfStream)}); RSS peak ${mb(m.rssPeak)}`,
    `the answer itself (\`result.text\`, ${mb(m.textBytes)} of UTF-8) is held to the end, in a JavaScript string (in RSS, not in wasm memory); wasm at start ${mb(m.wasmAtStart)}`,
    memoryTarget,
    flat(m),
  ]);

  // 6. Worker overhead.
  row("6a", `edge worker: time to first token (\`normal\`), p50 of ${size.ttftTrials}`, ["overhead"], (o) => [
    `through the worker ${ms(o.ttft.worker.p50)} (+${ms(o.ttft.worker.p50 - o.ttft.direct.p50)} over direct, **+${ms(o.ttft.worker.p50 - o.ttft.passthrough.p50)} over the pass-through**)`,
    `direct to the mock ${ms(o.ttft.direct.p50)}; plain pass-through proxy in workerd ${ms(o.ttft.passthrough.p50)} (+${ms(o.ttft.passthrough.p50 - o.ttft.direct.p50)}); p99: worker ${ms(o.ttft.worker.p99)}, pass-through ${ms(o.ttft.passthrough.p99)}, direct ${ms(o.ttft.direct.p99)}`,
    "≤ +1 ms over the pass-through at p50",
    o.ttft.worker.p50 - o.ttft.passthrough.p50 <= 1,
  ]);
  row("6b", `edge worker: throughput (\`long\`, ${config.longN} chunks), median of ${size.longRuns}`, ["overhead"], (o) => [
    `through the worker ${mbps(o.long.worker)} (${ratio(o.long.worker / o.long.direct)} of direct)`,
    `direct ${mbps(o.long.direct)}; plain pass-through ${mbps(o.long.passthrough)}; MB of the upstream's ${(o.long.bytes / 1e6).toFixed(1)} MB stream per second to its last byte`,
    "— (reported)",
    null,
  ]);

  // 7. Concurrency.
  // The design floor needs the core-only module, built in the full run only.
  reported.add("concurrency.core");
  const core = results["concurrency.core"];
  const coreSide = (b) =>
    !config.floorPackage
      ? "the design floor (the core driven from JavaScript): full run only"
      : core?.error
        ? `the design floor FAILED: ${core.error.replaceAll("|", "/")}`
        : `the design floor, the same calls run by a JavaScript driver of the core-only module of row 2c (the core deciding in Rust, no driver of the package; \`bench/lib/core-driver.mjs\`): CPU ${ms(core.cpuMsPerStream)} per stream (${pct(core.cpuMsPerStream, b.cpuMsPerStream)})`;
  if (core?.error) failed = true;
  const rounds = size.concurrencyRounds;
  row("7a", `concurrency: ${size.streams} streams at once, \`generate()\` in Node against the mock (\`normal\`)`, ["concurrency.node", "concurrency.baseline", "concurrency.floor"], (c, b, f) => [
    `${c.streams}/${c.streams} exact; wall ${ms(c.wallMs)}; **CPU ${ms(c.cpuMsPerStream)} per stream** (${pct(c.cpuMsPerStream, b.cpuMsPerStream)})`,
    `fetch + eventsource-parser + JSON.parse: wall ${ms(b.wallMs)}, CPU ${ms(b.cpuMsPerStream)} per stream; floor, the same with what any guard adds before it decides anything (an \`AbortController\` whose signal the request carries, an idle timer re-armed per read): CPU ${ms(f.cpuMsPerStream)} per stream (${pct(f.cpuMsPerStream, b.cpuMsPerStream)}); ${coreSide(b)}; each side a fresh process per round, \`process.cpuUsage()\` over its ${size.streams} streams, the sides taking turns, the median of ${rounds} round${rounds === 1 ? "" : "s"}`,
    "every answer exact; CPU per stream ≤ the baseline's",
    c.cpuMsPerStream <= b.cpuMsPerStream,
  ]);
  row("7b", `concurrency: ${size.streams} streams at once through the edge worker, workerd`, ["concurrency.workerd"], (c) => [
    `${c.worker.streams}/${c.worker.streams} exact; wall ${ms(c.worker.wallMs)}; workerd CPU ${ms(c.worker.cpuMsPerStream)} per stream`,
    `plain pass-through proxy: wall ${ms(c.passthrough.wallMs)}, workerd CPU ${ms(c.passthrough.cpuMsPerStream)} per stream (the worker ${(c.worker.cpuMsPerStream / c.passthrough.cpuMsPerStream).toFixed(1)}x); the same proxy relaying the body through a JavaScript stream (a read and an enqueue per upstream chunk, nothing else): workerd CPU ${ms(c.jsRelay.cpuMsPerStream)} per stream (${(c.jsRelay.cpuMsPerStream / c.passthrough.cpuMsPerStream).toFixed(1)}x the pass-through; the worker ${(c.worker.cpuMsPerStream / c.jsRelay.cpuMsPerStream).toFixed(1)}x this relay); the body to the client natively through a \`tee()\` with JavaScript reading the other branch (watching without writing): ${ms(c.tee.cpuMsPerStream)} per stream (${(c.tee.cpuMsPerStream / c.passthrough.cpuMsPerStream).toFixed(1)}x); every chunk read in JavaScript and written into workerd's native \`IdentityTransformStream\` (the response body): ${ms(c.identity.cpuMsPerStream)} per stream (${(c.identity.cpuMsPerStream / c.passthrough.cpuMsPerStream).toFixed(1)}x); the \`tee()\` with the body owned (one branch piped natively into an \`IdentityTransformStream\` between a write before and a write after, the other read in JavaScript): ${ms(c.teepipe.cpuMsPerStream)} per stream (${(c.teepipe.cpuMsPerStream / c.passthrough.cpuMsPerStream).toFixed(1)}x)`,
    "every answer exact",
    "exact",
  ]);
  // 8. guardFetch() inside the openai SDK, against the same SDK without it.
  const sdk = "the `openai` SDK (6.49.0) in Node against the mock over loopback";
  row("8a", `guardFetch: time to first token (\`normal\`), ${sdk}, ${size.sdkTrials} calls per side`, ["guardfetch"], (g) => [
    `with guardFetch p50 ${ms(g.ttft.guarded.p50)}, p99 ${ms(g.ttft.guarded.p99)}: **+${ms(g.ttft.guarded.p50 - g.ttft.plain.p50)} at p50**, +${ms(g.ttft.guarded.p99 - g.ttft.plain.p99)} at p99`,
    `without: p50 ${ms(g.ttft.plain.p50)}, p99 ${ms(g.ttft.plain.p99)}; difference per pair of neighbouring calls: p50 ${ms(g.ttft.added.p50)}, p99 ${ms(g.ttft.added.p99)}`,
    "≤ +1 ms at p50",
    g.ttft.guarded.p50 - g.ttft.plain.p50 <= 1,
  ]);
  row("8b", `guardFetch: CPU per stream (\`normal\`, read to the end), ${sdk}, ${size.sdkRounds * size.sdkStreams} streams per side in blocks, the sides taking turns block by block, median of the blocks`, ["guardfetch"], (g) => [
    `with guardFetch ${ms(g.cpu.guarded)} (${pct(g.cpu.guarded, g.cpu.plain)})`,
    `without: ${ms(g.cpu.plain)}; \`process.cpuUsage()\` of the SDK's process (the mock runs apart), ${g.cpu.turns} blocks of ${g.cpu.block} per side; floors, with nothing of the guard in them: the SDK's \`fetch\` wrapped by a JavaScript relay of the body (a read and an enqueue per upstream chunk, pulled by the SDK) ${ms(g.cpu.relay)} (${pct(g.cpu.relay, g.cpu.plain)}), the same relay with its own \`AbortController\` tied to the SDK's signal and an idle timer re-armed per read ${ms(g.cpu.watch)} (${pct(g.cpu.watch, g.cpu.plain)}): guardFetch adds ${ms(g.cpu.guarded - g.cpu.watch)} over that floor; ${g.cpu.core == null ? "the design floor (the core's relay machine driven from JavaScript): full run only" : `the design floor, the SDK's \`fetch\` a JavaScript driver of the core-only module's relay machine (row 2c's module: the core deciding in Rust, no driver of the package; \`bench/lib/core-fetch.mjs\`) ${ms(g.cpu.core)} (${pct(g.cpu.core, g.cpu.plain)})`}`,
    "≤ +10 %",
    g.cpu.guarded <= g.cpu.plain * 1.1,
  ]);
  row("8c", `guardFetch: throughput (\`long\`, ${config.longN} chunks), ${sdk}, median of ${size.sdkLongRuns}`, ["guardfetch"], (g) => [
    `with guardFetch ${mbps(g.long.guarded)} (${ratio(g.long.guarded / g.long.plain)} of without)`,
    `without: ${mbps(g.long.plain)}; MB of the upstream's ${(g.long.bytes / 1e6).toFixed(1)} MB stream per second, create() to the last chunk`,
    "— (reported)",
    null,
  ]);
  // 9. A Guard on a provider's slow tail: what hedging costs, what hedging and learned deadlines save.
  // The workload's settings come with the figures (bench/node/tail.mjs); a broken run has none.
  const workload = (name) => (results[name]?.sides ? results[name] : null);
  const cost = workload("tail.hedge-cost");
  const stalling = workload("tail.stalls");
  const spread = (t) =>
    t ? `${t.ttft.medianMs} ms median (lognormal, σ ${t.ttft.sigma}: p95 ≈ ${Math.round(t.ttft.medianMs * Math.exp(1.645 * t.ttft.sigma))} ms), fallback ${t.fallbackTtftMs} ms` : "a spread of times";
  const three = (q) => `p50 ${ms(q.p50)}, p95 ${ms(q.p95)}, p99 ${ms(q.p99)}`;
  const perCall = (side) => (side.requests / side.calls).toFixed(2);
  const hedges = (side) => `${side.hedges} hedge${side.hedges === 1 ? "" : "s"}`;
  const unsent = (side) => (side.sent > side.requests ? `, ${side.sent - side.requests} released before the request reached it` : "");
  const learnedMs = (side) => (side.learned.deadlines.firstTokenMs ? `${Math.round(side.learned.deadlines.firstTokenMs)} ms` : "none learned");
  row("9a", `hedging's cost: a \`Guard\` with \`hedge: {afterMs: "auto"}\` (the first provider's learned p95 time to first token) against one without, ${size.tailCalls} calls each to a provider whose first token takes ${spread(cost)}, Node`, ["tail.hedge-cost"], (t) => {
    const { hedged, plain } = t.sides;
    const extra = (hedged.requests - plain.requests) / hedged.calls;
    const prompt = hedged.promptTokensPerRequest;
    return [
      `**+${extra.toFixed(2)} upstream requests per call** (the mock's ledger; ${hedges(hedged)} in ${hedged.calls} calls, ${hedged.hedgesWon} won by the fallback${unsent(hedged)}); +${(extra * prompt).toFixed(1)} prompt tokens per call (${prompt} per request, sent again by each hedge); ${hedged.losingContentChunks} completion tokens received by the losing attempts`,
      `without hedging ${perCall(plain)} requests per call; time to first token with hedging ${three(hedged.firstTokenMs)}, without ${three(plain.firstTokenMs)}; the hedges waited ${hedged.hedgeAfterMs ? `${ms(hedged.hedgeAfterMs.p50)} (p50)` : "— (none)"}`,
      "— (reported)",
      null,
    ];
  });
  const stalls = stalling ? `${size.tailCalls / stalling.stallEvery} of ${size.tailCalls} calls (one in ${stalling.stallEvery}, the same calls for every side)` : "one call in ten";
  row("9b", `time to first token saved by hedging: a provider as in 9a that stalls before its first token on ${stalls}, learned deadlines on both sides, Node`, ["tail.stalls"], (t) => {
    const { hedged, adaptive } = t.sides;
    return [
      `with hedging ${three(hedged.firstTokenMs)}: **${ms(adaptive.firstTokenMs.p99 - hedged.firstTokenMs.p99)} saved at p99**, ${ms(adaptive.firstTokenMs.p95 - hedged.firstTokenMs.p95)} at p95`,
      `without hedging (a stall waits for the learned first-token deadline, ${learnedMs(adaptive)} at the end, then fails over): ${three(adaptive.firstTokenMs)}; the stalled calls' p50 ${ms(hedged.stalledFirstTokenMs.p50)} with, ${ms(adaptive.stalledFirstTokenMs.p50)} without; ${perCall(hedged)} requests per call with (${hedges(hedged)}), ${perCall(adaptive)} without`,
      "— (reported)",
      null,
    ];
  });
  row("9c", `time to first token saved by learned deadlines (\`adaptive\`: 3 × the learned p95 after ${size.tailMinSamples} samples): the same stalling provider and calls as 9b, no hedging, Node`, ["tail.stalls"], (t) => {
    const { adaptive, fixed } = t.sides;
    return [
      `learned (first-token deadline ${learnedMs(adaptive)} at the end) ${three(adaptive.firstTokenMs)}: **${ms(fixed.firstTokenMs.p99 - adaptive.firstTokenMs.p99)} saved at p99**, ${ms(fixed.firstTokenMs.p95 - adaptive.firstTokenMs.p95)} at p95`,
      `configured \`firstTokenMs: ${t.timeouts.firstTokenMs}\` alone (\`adaptive: false\`): ${three(fixed.firstTokenMs)}; time to the answer p99 ${ms(adaptive.answerMs.p99)} learned, ${ms(fixed.answerMs.p99)} configured`,
      "— (reported)",
      null,
    ];
  });
  // Anything else that broke (the Chromium page itself, say) gets a row of its own.
  for (const [name, result] of Object.entries(results)) {
    if (result?.error && !reported.has(name)) {
      failed = true;
      lines.push(`| ! | ${name} | FAILED: ${result.error.replaceAll("|", "/")} | | | FAILED |`);
    }
  }
  return { lines, failed };
}
