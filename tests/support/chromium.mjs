// Headless Chromium as the e2e and bundler tests and the benchmarks start it: Debian's
// /usr/bin/chromium (or LSG_CHROMIUM) driven by playwright-core, with the network features
// that would call out of a closed machine turned off.
export const CHROMIUM_PATH = process.env.LSG_CHROMIUM ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/** Launch it; `options` go to playwright's `chromium.launch` (e.g. `timeout`). */
export async function launchChromium(options = {}) {
  const pw = await import("playwright-core");
  const { chromium } = pw.chromium ? pw : pw.default;
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, ...options });
}
