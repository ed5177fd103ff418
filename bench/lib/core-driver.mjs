// Row 7a's design floor: `generate()` as a JavaScript driver of the core-only module
// (`src/core_floor.rs`, feature `core-floor`, the module of row 2c) would run it, with the core
// deciding in Rust and nothing of the package's drivers. It is as thin as the measurement
// allows: the platform side of core-platform.mjs, the machine's actions and deliveries polled
// after every input, the answer's text joined per attempt, no event made into an object while
// nothing listens (`quiet()`). It serves the benchmark only: no abort signal, no
// `onText`/`onEvent`, no log.
import { corePlatform } from "./core-platform.mjs";

/** `generate(options)` over `core`, the core-only module's exports. */
export function makeCoreGenerate(core) {
  return function coreGenerate(options) {
    return new Promise((resolve, reject) => {
      const body = JSON.stringify({ messages: options.messages, stream: true });
      const g = new core.CoreGeneration(options, body, Math.random() * 2 ** 52, false);
      if (!options.onEvent) g.quiet();
      const texts = new Map();
      let done = false;
      const pump = () => {
        if (done) return;
        for (;;) {
          const action = g.poll_action();
          if (action !== undefined) {
            platform.perform(action);
            continue;
          }
          const delivery = g.poll_delivery();
          if (delivery === undefined) break;
          if (delivery[0] === 0) texts.set(delivery[1], (texts.get(delivery[1]) ?? "") + delivery[2]);
        }
        const outcome = g.take_outcome();
        if (outcome === undefined) return platform.arm();
        done = true;
        platform.close();
        g.free();
        const [ok, value, attempt] = outcome;
        if (!ok) return reject(value);
        value.text = texts.get(attempt) ?? "";
        resolve(value);
      };
      const platform = corePlatform(g, pump, () => done, (_provider, sendBody) => ["POST", sendBody]);
      g.start(performance.now());
      pump();
    });
  };
}
