// Headless Chromium for the benchmarks: a static server on 127.0.0.1 for the page, the web
// package and eventsource-parser, and one page on it whose `window.bench` functions run there.
import http from "node:http";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launchChromium } from "../../tests/support/chromium.mjs";

const BENCH = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ROOT = path.dirname(BENCH);

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
};

/** Serve `routes` (`{ "/prefix/": dir }`, plus `/` for the page) on 127.0.0.1; resolves to the server. */
function serve(routes) {
  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url, "http://127.0.0.1");
    if (url.pathname === "/favicon.ico") {
      response.writeHead(204);
      response.end();
      return;
    }
    let file = null;
    if (url.pathname === "/") file = path.join(BENCH, "browser", "index.html");
    for (const [prefix, dir] of Object.entries(routes)) {
      if (url.pathname.startsWith(prefix)) {
        const candidate = path.resolve(dir, "." + url.pathname.slice(prefix.length - 1));
        if (candidate.startsWith(path.resolve(dir) + path.sep)) file = candidate;
      }
    }
    try {
      if (!file) throw new Error("not found");
      const body = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
      response.end(body);
    } catch {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not found");
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/**
 * Start the server and Chromium, open the page, run `work(page, version)`, then close everything
 * (the browser first, then the server).
 */
export async function withChromium(webPackageDir, work) {
  const server = await serve({
    "/pkg/": webPackageDir,
    "/lib/": path.join(BENCH, "lib"),
    "/browser/": path.join(BENCH, "browser"),
    "/esp/": path.join(ROOT, "node_modules", "eventsource-parser", "dist"),
  });
  let browser;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction(() => document.documentElement.dataset.ready, null, { timeout: 30_000 });
    const failed = await page.evaluate(() => window.benchError ?? null);
    if (failed) throw new Error(`the benchmark page failed to load: ${failed}`);
    const result = await work(page, browser.version());
    if (problems.length) throw new Error(`the benchmark page reported: ${problems.join("; ")}`);
    return result;
  } finally {
    await browser?.close();
    await new Promise((resolve) => server.close(resolve));
  }
}
