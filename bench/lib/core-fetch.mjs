// Row 8b's design floor: `guardFetch()` as a JavaScript driver of the core-only module's relay
// machine (`src/core_floor.rs`, feature `core-floor`, the module of row 2c) would run it, with
// the core deciding in Rust and nothing of the package's drivers. As thin as the measurement
// allows: one `fetch` per attempt, its body read as fast as it comes (no pull from the SDK's
// pace), every read handed to the machine and the machine's actions and deliveries polled after
// it, the committed bytes enqueued as the machine hands them out, one timer at the machine's
// next deadline (moved only when it comes due sooner), the SDK's signal tied to a cancel, no
// event made into an object (`quiet()`). It serves the benchmark only: no `onEvent`, no log.

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
      const method = init.method ?? "GET";
      const pairs = [];
      new Headers(init.headers).forEach((value, name) => pairs.push(name, value));
      const textBody = typeof init.body === "string" ? init.body : undefined;
      const relay = fetchOptions.relay(method, url, pairs, textBody, Math.random() * 2 ** 52);
      relay.quiet();
      const transports = new Map();
      const responses = new Map();
      let body = null;
      let answered = false;
      let settled = false;
      let timer = null;
      let timerDue = Infinity;
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
      const pump = () => {
        if (settled) return;
        for (;;) {
          const action = relay.poll_action();
          if (action !== undefined) {
            perform(action);
            continue;
          }
          const delivery = relay.poll_delivery();
          if (delivery === undefined) break;
          switch (delivery[0]) {
            case 1: {
              const headers = responses.get(delivery[1])?.headers;
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
              answer(new Response(stream, { status: delivery[2], headers }));
              break;
            }
            case 2:
              answer(new Response(delivery[2], { status: delivery[1], headers: { "content-type": "application/json" } }));
              break;
            // A body the SDK cancelled throws on each of these: nothing is left to tell it.
            case 3:
              tryOn(() => body?.enqueue(delivery[1]));
              break;
            case 4:
              tryOn(() => body?.close());
              break;
            case 5:
              tryOn(() => body?.error(new Error(delivery[2])));
              break;
          }
        }
        if (relay.is_settled()) {
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          for (const t of transports.values()) t.controller.abort();
          relay.free();
          if (!answered) reject(new Error("the relay settled without an answer"));
          return;
        }
        const due = relay.poll_timeout();
        if (due === undefined) {
          clearTimeout(timer);
          timer = null;
          timerDue = Infinity;
        } else if (due < timerDue) {
          clearTimeout(timer);
          timerDue = due;
          timer = setTimeout(() => {
            timer = null;
            timerDue = Infinity;
            if (settled) return;
            relay.handle_timeout(performance.now());
            pump();
          }, Math.max(0, due - performance.now()));
        }
      };
      const perform = (action) => {
        switch (action[0]) {
          case 0: {
            const [, attempt, sendMethod, sendUrl, sendPairs, sendBody] = action;
            const headers = {};
            for (let i = 0; i < sendPairs.length; i += 2) headers[sendPairs[i]] = sendPairs[i + 1];
            const controller = new AbortController();
            const t = { controller, reader: null, released: false };
            transports.set(attempt, t);
            fetch(sendUrl, { method: sendMethod, headers, body: sendBody ?? init.body, signal: controller.signal }).then(
              (response) => {
                if (t.released || settled) return;
                responses.set(attempt, response);
                const h = response.headers;
                relay.head(attempt, performance.now(), response.status, h.get("content-type") ?? undefined,
                  h.get("retry-after") ?? undefined, h.get("x-generation-id") ?? undefined,
                  response.body !== null, Date.now());
                if (response.body) {
                  t.reader = response.body.getReader();
                  read(attempt, t);
                }
                pump();
              },
              (error) => {
                if (t.released || settled) return;
                relay.request_error(attempt, performance.now(), String(error?.message ?? error));
                pump();
              },
            );
            break;
          }
          case 1: {
            const t = transports.get(action[1]);
            if (t) {
              t.released = true;
              transports.delete(action[1]);
              t.controller.abort();
              t.reader?.cancel().catch(() => {});
            }
            break;
          }
          case 2: {
            const t = transports.get(action[1]);
            if (t) {
              t.released = true;
              transports.delete(action[1]);
            }
            break;
          }
        }
      };
      const read = (attempt, t) => {
        t.reader.read().then(
          ({ done: end, value }) => {
            if (settled) return;
            if (end) {
              transports.delete(attempt);
              if (!t.released) relay.body_end(attempt, performance.now());
            } else {
              if (!t.released) relay.body_bytes(attempt, performance.now(), value);
              read(attempt, t);
            }
            pump();
          },
          (error) => {
            if (settled || t.released) return;
            relay.body_error(attempt, performance.now(), String(error?.message ?? error));
            pump();
          },
        );
      };
      relay.start(performance.now());
      pump();
    });
  };
}
