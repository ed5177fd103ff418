// Row 7a's design floor: `generate()` as a JavaScript driver of the core-only module
// (`src/core_floor.rs`, feature `core-floor`, the module of row 2c) would run it, with the core
// deciding in Rust and nothing of the package's drivers. It is as thin as the measurement
// allows: one `fetch` and one reader per attempt, the machine's actions and deliveries polled
// after every input, one timer at the machine's next deadline (moved only when it comes due
// sooner), the answer's text joined per attempt, no event made into an object while nothing
// listens (`quiet()`). It serves the benchmark only: no abort signal, no `onText`/`onEvent`,
// no log.
/** `generate(options)` over `core`, the core-only module's exports. */
export function makeCoreGenerate(core) {
  return function coreGenerate(options) {
    return new Promise((resolve, reject) => {
      const body = JSON.stringify({ messages: options.messages, stream: true });
      const g = new core.CoreGeneration(options, body, Math.random() * 2 ** 52, false);
      if (!options.onEvent) g.quiet();
      const transports = new Map();
      const texts = new Map();
      let timer = null;
      let timerDue = Infinity;
      let done = false;
      const pump = () => {
        if (done) return;
        for (;;) {
          const action = g.poll_action();
          if (action !== undefined) {
            perform(action);
            continue;
          }
          const delivery = g.poll_delivery();
          if (delivery !== undefined) {
            if (delivery[0] === 0) texts.set(delivery[1], (texts.get(delivery[1]) ?? "") + delivery[2]);
            continue;
          }
          break;
        }
        const outcome = g.take_outcome();
        if (outcome !== undefined) {
          done = true;
          clearTimeout(timer);
          for (const t of transports.values()) t.controller.abort();
          g.free();
          const [ok, value, attempt] = outcome;
          if (ok) {
            value.text = texts.get(attempt) ?? "";
            resolve(value);
          } else reject(value);
          return;
        }
        const due = g.poll_timeout();
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
            if (done) return;
            g.handle_timeout(performance.now());
            pump();
          }, Math.max(0, due - performance.now()));
        }
      };
      const perform = (action) => {
        switch (action[0]) {
          case 0: {
            const [, attempt, , url, pairs, requestBody] = action;
            const headers = {};
            for (let i = 0; i < pairs.length; i += 2) headers[pairs[i]] = pairs[i + 1];
            const controller = new AbortController();
            const t = { controller, reader: null, released: false };
            transports.set(attempt, t);
            fetch(url, { method: "POST", headers, body: requestBody, signal: controller.signal }).then(
              (response) => {
                if (t.released || done) return;
                const h = response.headers;
                g.head(attempt, performance.now(), response.status, h.get("content-type") ?? undefined,
                  h.get("retry-after") ?? undefined, h.get("x-generation-id") ?? undefined,
                  response.body !== null, Date.now());
                if (response.body) {
                  t.reader = response.body.getReader();
                  read(attempt, t);
                }
                pump();
              },
              (error) => {
                if (t.released || done) return;
                g.request_error(attempt, performance.now(), String(error?.message ?? error));
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
            if (done) return;
            if (end) {
              transports.delete(attempt);
              if (!t.released) g.body_end(attempt, performance.now());
            } else {
              if (!t.released) g.body_bytes(attempt, performance.now(), value);
              read(attempt, t);
            }
            pump();
          },
          (error) => {
            if (done || t.released) return;
            g.body_error(attempt, performance.now(), String(error?.message ?? error));
            pump();
          },
        );
      };
      g.start(performance.now());
      pump();
    });
  };
}
