// What every environment reports back to install.test.mjs after running the README's first
// example: the answer, the module's exports as this environment sees them, how `init()`
// behaves, and what the module still holds. Plain data (JSON).
export async function describe(lib, result) {
  const first = lib.init();
  const second = lib.init();
  const ready = await first;
  return {
    text: result.text,
    provider: result.provider,
    partial: result.partial,
    attempts: result.attempts.map((attempt) => `${attempt.provider}:${attempt.outcome}`),
    exports: Object.keys(lib).sort(),
    init: {
      samePromise: first === second,
      isDefault: lib.default === lib.init,
      resolvesWith: ready === undefined ? "undefined" : typeof ready,
    },
    live: lib.liveResources(),
  };
}
