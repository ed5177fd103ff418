// Row 8b's design floor: `guardFetch()` as a JavaScript driver of the core-only module's relay
// machine (`src/core_floor.rs`, feature `core-floor`, the module of row 2c) would run it, with
// the core deciding in Rust and nothing of the package's drivers. As thin as the measurement
// allows: the platform side of core-platform.mjs (the upstream read as fast as it comes, not
// at the SDK's pace), the machine's actions and deliveries polled after every input, the
// committed bytes enqueued as the machine hands them out, the SDK's signal tied to a cancel,
// no event made into an object (`quiet()`). It serves the benchmark only: no `onEvent`, no log.
import { corePlatform } from "./core-platform.mjs";

function tryOn(operation) {
  try {
    operation();
  } catch {
    // the stream is over
  }
}

/** `guardFetch(options)` over `core`, the core-only module's exports. */
export function makeCoreGuardFetch(core, options) {
  const fetchOptions = new core.CoreFetch(options, false);
  return function coreGuardFetch(input, init = {}) {
    return new Promise((resolve, reject) => {
      const url = typeof input === "string" ? input : String(input.url ?? input);
      const pairs = [];
      new Headers(init.headers).forEach((value, name) => pairs.push(name, value));
      const textBody = typeof init.body === "string" ? init.body : undefined;
      const relay = fetchOptions.relay(init.method ?? "GET", url, pairs, textBody, Math.random() * 2 ** 52);
      relay.quiet();
      let body = null;
      let answered = false;
      let settled = false;
      const signal = init.signal;
      const onAbort = () => {
        relay.cancel(performance.now(), "aborted");
        pump();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const answer = (response) => {
        answered = true;
        resolve(response);
      };
      const deliver = (delivery) => {
        switch (delivery[0]) {
          case 1: {
            // `start` runs within the constructor: `body` is the stream's controller.
            const stream = new ReadableStream({
              start(controller) {
                body = controller;
              },
              cancel() {
                relay.cancel(performance.now(), "cancelled");
                pump();
              },
            });
            const headers = platform.responses.get(delivery[1])?.headers;
            return answer(new Response(stream, { status: delivery[2], headers }));
          }
          case 2:
            return answer(new Response(delivery[2], { status: delivery[1], headers: { "content-type": "application/json" } }));
          // A body the SDK cancelled throws on each of these: nothing is left to tell it.
          case 3:
            return tryOn(() => body?.enqueue(delivery[1]));
          case 4:
            return tryOn(() => body?.close());
          case 5:
            return tryOn(() => body?.error(new Error(delivery[2])));
        }
      };
      const pump = () => {
        if (settled) return;
        for (;;) {
          const action = relay.poll_action();
          if (action !== undefined) {
            platform.perform(action);
            continue;
          }
          const delivery = relay.poll_delivery();
          if (delivery === undefined) break;
          deliver(delivery);
        }
        if (!relay.is_settled()) return platform.arm();
        settled = true;
        platform.close();
        signal?.removeEventListener("abort", onAbort);
        relay.free();
        if (!answered) reject(new Error("the relay settled without an answer"));
      };
      const platform = corePlatform(relay, pump, () => settled, (method, sendBody) => [method, sendBody ?? init.body]);
      relay.start(performance.now());
      pump();
    });
  };
}
