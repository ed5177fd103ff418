// What the design floors' JavaScript drivers (core-driver.mjs, core-fetch.mjs) do on the
// platform for a machine of the core-only module (`src/core_floor.rs`): one `fetch` per send
// action, its body read as fast as it comes and every read handed to the machine, cancel and
// finish actions, and one timer at the machine's next deadline (moved only when it comes due
// sooner). The drivers poll the machine's deliveries; this moves bytes and clock readings only.

/**
 * The platform side of `machine` (a CoreGeneration or CoreRelay): `pump()` is called after
 * every input, `over()` says whether the driver is done, and `sendOf(which, body)` gives the
 * method and body of a send action (`which`: the provider's index or the method).
 * Returns `{ perform(action), arm(), close(), responses }` (`responses`: by attempt).
 */
export function corePlatform(machine, pump, over, sendOf) {
  const transports = new Map();
  const responses = new Map();
  let timer = null;
  let timerDue = Infinity;
  const read = (attempt, t) => {
    t.reader.read().then(
      ({ done: end, value }) => {
        if (over()) return;
        if (end) {
          transports.delete(attempt);
          if (!t.released) machine.body_end(attempt, performance.now());
        } else {
          if (!t.released) machine.body_bytes(attempt, performance.now(), value);
          read(attempt, t);
        }
        pump();
      },
      (error) => {
        if (over() || t.released) return;
        machine.body_error(attempt, performance.now(), String(error?.message ?? error));
        pump();
      },
    );
  };
  const send = (attempt, which, url, pairs, actionBody) => {
    const [method, body] = sendOf(which, actionBody);
    const headers = {};
    for (let i = 0; i < pairs.length; i += 2) headers[pairs[i]] = pairs[i + 1];
    const controller = new AbortController();
    const t = { controller, reader: null, released: false };
    transports.set(attempt, t);
    fetch(url, { method, headers, body, signal: controller.signal }).then(
      (response) => {
        if (t.released || over()) return;
        responses.set(attempt, response);
        const h = response.headers;
        machine.head(attempt, performance.now(), response.status, h.get("content-type") ?? undefined,
          h.get("retry-after") ?? undefined, h.get("x-generation-id") ?? undefined,
          response.body !== null, Date.now());
        if (response.body) {
          t.reader = response.body.getReader();
          read(attempt, t);
        }
        pump();
      },
      (error) => {
        if (t.released || over()) return;
        machine.request_error(attempt, performance.now(), String(error?.message ?? error));
        pump();
      },
    );
  };
  /** Lets go of `attempt`'s transport; `abort`: cut it off too. */
  const release = (attempt, abort) => {
    const t = transports.get(attempt);
    if (!t) return;
    t.released = true;
    transports.delete(attempt);
    if (abort) {
      t.controller.abort();
      t.reader?.cancel().catch(() => {});
    }
  };
  return {
    responses,
    perform(action) {
      if (action[0] === 0) send(action[1], action[2], action[3], action[4], action[5]);
      else release(action[1], action[0] === 1);
    },
    /** The timer at the machine's next deadline. */
    arm() {
      const due = machine.poll_timeout();
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
          if (over()) return;
          machine.handle_timeout(performance.now());
          pump();
        }, Math.max(0, due - performance.now()));
      }
    },
    /** The driver is done: the timer is cleared and every transport cut off. */
    close() {
      clearTimeout(timer);
      for (const t of transports.values()) t.controller.abort();
    },
  };
}
