// The npm package as users get it: the tarball `npm pack` made (`cargo xtask build`), installed
// offline from the file into a Node ES module project, a Node CommonJS project, a Vite app, a
// webpack app, a static page and a workerd worker (copies of the folders next to this file, in a
// work folder under <target-dir>/install-test/). Each runs the package README's first example
// against the mock upstream, with the example's two provider URLs pointed at the mock: the first
// at a scenario that fails with an upstream error, the second at the normal answer, so every
// environment streams through a failover. The answer must be the mock's canned text (read from
// mock-upstream/src/texts.rs), and the environment reports the exports it sees, how init()
// behaves and what the module still holds. The parser-only entry `llm-stream-guard/sse` (the
// `sse` folder) parses one stream at every split point in Node (import, require, its types under
// tsc), in a webpack app in Chromium and in a workerd worker, loading only its own small module.
// One `Guard` in a workerd worker (continuation, hedging, learned deadlines, its breaker) is
// guard-workerd.test.mjs's; the helpers both files use are in support.mjs.
//
//   cargo xtask test --only install      # builds and packs the package, starts the mock
//
// Environment: LSG_PACKAGE_TARBALL (the .tgz), LSG_PACKAGE_DIR (the folder it was packed from),
// MOCK_URL (the mock upstream), LSG_CHROMIUM (default /usr/bin/chromium), LSG_KEEP (keep the
// work folder even on success). Needs no network: the tarball has no dependencies, and vite,
// webpack, typescript, playwright-core and workerd are the repository's pinned devDependencies.
// Every server listens on 127.0.0.1 port 0 and is closed by the test that opened it; workerd is
// stopped by its process id. An unhandled promise rejection anywhere (this process, the Node
// projects, the pages, the worker) fails the test it happened in.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { gzipSync, constants as zlib } from "node:zlib";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { CHROMIUM_PATH, launchChromium } from "../support/chromium.mjs";
import {
  DEFAULT_TEXT,
  MOCK,
  PACKAGE_DIR,
  TARBALL,
  here,
  inWorkerd,
  installedManifest,
  lastJson,
  ledger,
  project,
  rootModules,
  run,
  state,
  step,
  workFolder,
} from "./support.mjs";

const IDLE = { timers: 0, readers: 0, listeners: 0, inFlight: 0 };

/** Copy the shared report module into a project. */
async function addReport(file) {
  await cp(path.join(here, "shared", "report.js"), file);
}

/** The README's first example: its import line and the code after it. */
function readmeExample() {
  assert.ok(existsSync(path.join(PACKAGE_DIR, "README.md")), `no README.md in ${JSON.stringify(PACKAGE_DIR)}`);
  const readme = readFileSync(path.join(PACKAGE_DIR, "README.md"), "utf8");
  const block = /```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, "the package README has no js code block");
  const importLine = 'import { generate } from "llm-stream-guard";';
  assert.ok(block[1].startsWith(`${importLine}\n`), `the README's first example starts with: ${importLine}`);
  return { importLine, body: block[1].slice(importLine.length).trim() };
}

/** A unique ledger tag for one environment's requests. */
const tagFor = (environment) => `install-${environment}-${process.pid}`;

/**
 * The README's first example for `environment`, with its provider URLs pointed at the mock
 * (tagged for the ledger) and its key variable defined. `form`: "esm" (as written, exporting
 * `result`), "cjs" (`require`, the body in `example()`: CommonJS has no top-level await) or
 * "function" (an ES module whose `example()` runs the body: workerd allows no I/O at the top
 * level).
 */
function exampleFor(environment, form) {
  const { importLine, body: original } = readmeExample();
  const tag = tagFor(environment);
  let body = original;
  for (const [from, scenario] of [
    ["https://openrouter.ai/api/v1/chat/completions", "error-before-content"],
    ["http://127.0.0.1:11434/v1/chat/completions", "normal"],
  ]) {
    assert.equal(body.split(from).length, 2, `the README's first example names ${from} once`);
    body = body.replace(from, `${MOCK}/scenario/${scenario}/v1/chat/completions?tag=${tag}`);
  }
  const key = 'const OPENROUTER_API_KEY = "sk-or-install-check";';
  switch (form) {
    case "esm":
      return `${importLine}\n\n${key}\n${body}\n\nexport { result };\n`;
    case "cjs":
      return `const { generate } = require("llm-stream-guard");\n\nasync function example() {\n${key}\n${body}\nreturn result;\n}\n\nmodule.exports = { example };\n`;
    case "function":
      return `${importLine}\n\nexport async function example() {\n${key}\n${body}\nreturn result;\n}\n`;
    default:
      throw new Error(`no form ${form}`);
  }
}

/** The runtime exports the package's types declare (functions, classes, the default). */
async function declaredExports() {
  const types = await readFile(path.join(PACKAGE_DIR, "index.d.ts"), "utf8");
  const names = new Set([...types.matchAll(/^export (?:declare )?(?:function|class|const) (\w+)/gm)].map((m) => m[1]));
  if (/^export default /m.test(types)) names.add("default");
  return [...names].sort();
}

/** What every environment's report must say, and what the mock's ledger must hold for it. */
async function checkReport(report, environment) {
  assert.equal(report.text, DEFAULT_TEXT, "the answer is the mock's canned text");
  assert.equal(report.partial, false);
  assert.equal(report.attempts.length, 2, `two attempts: ${report.attempts}`);
  assert.match(report.attempts[0], /:upstream$/, "the first provider failed with an upstream error");
  assert.equal(report.attempts[1], `${report.provider}:complete`, "the second provider answered");
  assert.deepEqual(report.exports, await declaredExports(), "the exports are the ones the types declare");
  assert.deepEqual(report.init, { samePromise: true, isDefault: true, resolvesWith: "undefined" });
  assert.deepEqual(report.live, IDLE, "the module holds nothing once the call is over");
  const posts = (await ledger(tagFor(environment))).filter((c) => c.method === "POST");
  assert.deepEqual(
    posts.map((c) => c.scenario),
    ["error-before-content", "normal"],
    "the mock saw the failing request, then the answered one",
  );
  assert.equal(posts[0].authorization_seen, true, "the first provider's key was sent");
  assert.equal(posts[1].authorization_seen, false, "the second provider has no key");
}

// ---- the tarball ----------------------------------------------------------------------------

step("npm pack: the tarball holds the entries, the .wasm, the types, the README and both licenses", async () => {
  assert.ok(MOCK, "MOCK_URL is not set");
  assert.ok(existsSync(TARBALL), `no tarball at ${JSON.stringify(TARBALL)} (set LSG_PACKAGE_TARBALL)`);
  const { stdout: listing } = await run("tar", ["-tzvf", TARBALL], { cwd: path.dirname(TARBALL) });
  const entries = listing
    .trim()
    .split("\n")
    .map((line) => {
      const fields = line.trim().split(/\s+/);
      return { size: Number(fields[2]), name: fields.at(-1) };
    });
  const { stdout: text } = await run("tar", ["-xzOf", TARBALL, "package/package.json"], { cwd: path.dirname(TARBALL) });
  const manifest = JSON.parse(text);
  assert.equal(manifest.name, "llm-stream-guard");
  assert.equal(manifest.license, "MIT OR Apache-2.0");
  const names = entries.map((e) => e.name.replace(/^package\//, "")).sort();
  assert.deepEqual(names, [...manifest.files, "package.json", "README.md"].sort());
  for (const license of ["LICENSE-MIT", "LICENSE-APACHE"]) assert.ok(names.includes(license), license);

  // Every file the exports map, `main` and `types` name is in the tarball.
  const targets = [];
  const walk = (value) => (typeof value === "string" ? targets.push(value) : Object.values(value).forEach(walk));
  walk(manifest.exports["."]);
  for (const file of [...targets, manifest.main, manifest.types]) {
    assert.ok(names.includes(file.replace(/^\.\//, "")), `${file} is named in package.json but not packed`);
  }
  assert.deepEqual(Object.keys(manifest.exports["."]), ["workerd", "node", "browser", "worker", "default"]);
  assert.deepEqual(Object.keys(manifest.exports["."].node), ["import", "require"]);

  const packed = readFileSync(TARBALL).length;
  const unpacked = entries.reduce((sum, e) => sum + e.size, 0);
  const rows = [];
  for (const e of entries.sort((a, b) => b.size - a.size)) {
    const bytes = readFileSync(path.join(PACKAGE_DIR, e.name.replace(/^package\//, "")));
    rows.push(`| ${e.name.replace(/^package\//, "")} | ${e.size} | ${gzipSync(bytes, { level: zlib.Z_BEST_COMPRESSION }).length} |`);
  }
  console.log(
    [`| file | bytes | gzip -9 |`, `|---|---:|---:|`, ...rows, `| tarball (${path.basename(TARBALL)}) | ${packed} packed | ${unpacked} unpacked |`].join("\n"),
  );
});

// ---- Node --------------------------------------------------------------------------------------

step("Node ES module project: `import` runs the README's first example (exports condition node/import)", async () => {
  const dir = await project("node-esm");
  await writeFile(path.join(dir, "example.js"), exampleFor("node-esm", "esm"));
  await addReport(path.join(dir, "report.js"));
  const { stdout } = await run(process.execPath, ["main.js"], { cwd: dir, timeout: 60_000 });
  const report = lastJson(stdout);
  assert.deepEqual(report.rejections, []);
  const entry = (await installedManifest(dir)).exports["."].node.import.default;
  assert.ok(report.resolved.endsWith(`/node_modules/llm-stream-guard/${entry.replace(/^\.\//, "")}`), report.resolved);
  assert.equal(report.shared, true, "`import` and `require` in one process share one instance");
  await checkReport(report, "node-esm");
});

step("Node: messages of every OpenAI shape reach the server unchanged", async () => {
  const dir = path.join(await workFolder(), "node-esm");
  assert.ok(existsSync(path.join(dir, "node_modules", "llm-stream-guard")), "no node-esm project (its test failed)");
  const tag = `install-passthrough-${process.pid}`;
  const url = `${MOCK}/scenario/normal/v1/chat/completions?tag=${tag}`;
  const { stdout } = await run(process.execPath, ["passthrough.js", url], { cwd: dir, timeout: 60_000 });
  const sent = lastJson(stdout);
  assert.equal(sent.text, DEFAULT_TEXT);
  const [request, ...more] = (await ledger(tag)).filter((c) => c.method === "POST");
  assert.deepEqual(more, [], "one request");
  const body = JSON.parse(request.body);
  assert.deepEqual(body.messages, sent.messages, "the request's messages are the ones given");
  assert.equal(body.model, "mock/model");
  assert.equal(body.stream, true);
});

step("Node CommonJS project: `require` runs the README's first example (exports condition node/require)", async () => {
  const dir = await project("node-cjs");
  await writeFile(path.join(dir, "example.js"), exampleFor("node-cjs", "cjs"));
  await addReport(path.join(dir, "report.mjs"));
  const { stdout } = await run(process.execPath, ["main.js"], { cwd: dir, timeout: 60_000 });
  const report = lastJson(stdout);
  assert.deepEqual(report.rejections, []);
  const entry = (await installedManifest(dir)).exports["."].node.require.default;
  assert.ok(report.resolved.endsWith(`/node_modules/llm-stream-guard/${entry.replace(/^\.\//, "")}`), report.resolved);
  await checkReport(report, "node-cjs");
});

// ---- the parser-only entry `llm-stream-guard/sse` -----------------------------------------------

/** What the `sse` project's Node program and webpack app must report (their stream.js fixture). */
async function checkSseParsed(report, dir) {
  const { EVENTS } = await import(pathToFileURL(path.join(dir, "stream.js")).href);
  assert.deepEqual(report.exports, ["SseParser"], "the entry exports SseParser alone");
  assert.deepEqual(report.parsed.wrong, [], `split points giving other events than the standard's`);
  assert.ok(report.parsed.splits > 100, "every split point of the stream was tried");
  assert.deepEqual(report.parsed.whole, EVENTS);
  assert.deepEqual(report.errors, [
    { name: "GuardError", kind: "config" },
    { name: "GuardError", kind: "protocol" },
  ]);
}

step("Node: `llm-stream-guard/sse` through import and require parses a stream at every split, loading only its own module", async () => {
  const dir = await project("sse");
  const { stdout } = await run(process.execPath, ["main.js"], { cwd: dir, timeout: 60_000 });
  const report = lastJson(stdout);
  assert.deepEqual(report.rejections, []);
  const sse = (await installedManifest(dir)).exports["./sse"];
  assert.ok(report.resolved.endsWith(`/node_modules/llm-stream-guard/${sse.node.import.default.replace(/^\.\//, "")}`), report.resolved);
  assert.deepEqual(report.requireExports, ["SseParser"]);
  assert.equal(report.shared, true, "`import` and `require` share one instance");
  assert.deepEqual(report.loaded, [sse.node.require.default.replace(/^\.\//, "")], "the main entry was not loaded");
  await checkSseParsed(report, dir);
  // Its types, from an ES module (sse.d.ts) and from CommonJS (sse.d.cts), never skipLibCheck.
  const tsc = path.join(rootModules, "typescript", "bin", "tsc");
  const flags = ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--lib", "es2022"];
  await run(process.execPath, [tsc, ...flags, "types.mts", "types.cts"], { cwd: dir, timeout: 120_000 });
});

// ---- browsers ----------------------------------------------------------------------------------

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
};

/** A static server for `root` on 127.0.0.1 (port 0) that records every request. */
async function serve(root, { wasmType = "application/wasm" } = {}) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const file = path.join(root, urlPath.endsWith("/") ? `${urlPath}index.html` : urlPath);
    let status = 200;
    let body;
    if (!file.startsWith(root + path.sep)) {
      status = 403;
    } else {
      try {
        body = await readFile(file);
      } catch {
        status = 404;
      }
    }
    const ext = path.extname(file);
    const type = status !== 200 ? "text/plain" : ext === ".wasm" ? wasmType : (MIME[ext] ?? "application/octet-stream");
    requests.push({ path: urlPath, status, type });
    res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store", Connection: "close" });
    res.end(body ?? String(status));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const close = () => new Promise((resolve) => server.close(resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, requests, close };
}

/**
 * Open `url` in headless Chromium (one browser for the run, a fresh context per page) and wait
 * until the page's #status leaves "loading" or the page throws. Returns the status, the parsed
 * #report, the unhandled rejections the page saw, its errors, and the other elements' text.
 */
async function runPage(url) {
  assert.ok(existsSync(CHROMIUM_PATH), `no browser at ${CHROMIUM_PATH} (set LSG_CHROMIUM)`);
  state.browser ??= await launchChromium({ timeout: 30_000 });
  const context = await state.browser.newContext();
  try {
    const page = await context.newPage();
    await page.addInitScript(() => {
      window.__rejections = [];
      window.addEventListener("unhandledrejection", (event) => {
        window.__rejections.push(String(event.reason?.stack ?? event.reason));
      });
    });
    const problems = [];
    let pageError;
    const firstError = new Promise((resolve) => (pageError = resolve));
    page.on("pageerror", (error) => {
      problems.push(`page error: ${error.message}`);
      pageError(error);
    });
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("response", (response) => {
      if (response.status() >= 400) problems.push(`HTTP ${response.status()}: ${response.url()}`);
    });
    const wasm = [];
    page.on("response", (response) => {
      if (new URL(response.url()).pathname.endsWith(".wasm")) {
        wasm.push({ path: new URL(response.url()).pathname, status: response.status(), type: response.headers()["content-type"] });
      }
    });
    await page.goto(url, { waitUntil: "load", timeout: 30_000 });
    const settled = page
      .waitForFunction(() => document.getElementById("status")?.textContent !== "loading", null, { timeout: 60_000 })
      .then(
        () => undefined,
        (error) => error,
      );
    const failure = await Promise.race([settled, firstError]);
    const dom = await page.evaluate(() =>
      Object.fromEntries([...document.querySelectorAll("[id]")].map((el) => [el.id, el.textContent ?? ""])),
    );
    const rejections = await page.evaluate(() => window.__rejections);
    assert.equal(failure, undefined, `the page did not finish: ${failure}\n${problems.join("\n")}\n${JSON.stringify(dom)}`);
    assert.equal(dom.status, "done", `the page reports: ${JSON.stringify(dom, null, 2)}\n${problems.join("\n")}`);
    assert.deepEqual(rejections, [], "unhandled promise rejections in the page");
    assert.deepEqual(problems, []);
    return { report: JSON.parse(dom.report), dom, wasm };
  } finally {
    await context.close();
  }
}

/** The Vite app's own checks (SseParser, generate() over an injected fetch, a Session). */
function checkViteApp(dom) {
  assert.deepEqual(JSON.parse(dom.events), [
    { data: "h\u00e9llo", event: "message" },
    { data: "one\ntwo", event: "update", id: "7" },
    { data: "[DONE]", event: "message", id: "7" },
  ]);
  const answer = Object.fromEntries(dom.answer.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
  assert.equal(dom.session, "Hello active=0 held=0", "a Session's call, then nothing held");
  assert.equal(answer.text, "Hello");
  assert.equal(answer.deltas, "Hel|lo");
  assert.equal(answer.partial, "false");
  assert.equal(answer.finish, "stop");
  assert.equal(answer.provider, "local");
  assert.equal(answer.model, "m-served");
  assert.equal(answer.usage, "5");
  assert.equal(answer.cause, "-");
  assert.equal(answer.generation, "gen-1");
  assert.match(answer.attempts, /^local:complete:200:true$/);
  const log = dom.log.split("\n");
  assert.equal(log[0], "request-start local m-asked #1");
  assert.ok(log.includes("headers local 200"), dom.log);
  assert.equal(log.at(-1), "done local partial=false");
}

/** The app folder has no bundler configuration of its own. */
async function assertNoConfig(dir, tool) {
  const configs = (await readdir(dir)).filter((f) => f.startsWith(`${tool}.config.`));
  assert.deepEqual(configs, [], `the ${tool} app must have no configuration file`);
}

const vite = {};

step("Vite app, no plugin and no config: tsc accepts it against the package's types (lib ES2022 + DOM, no skipLibCheck)", async () => {
  vite.dir = await project("vite");
  await assertNoConfig(vite.dir, "vite");
  await writeFile(path.join(vite.dir, "src", "example.js"), exampleFor("vite", "esm"));
  await addReport(path.join(vite.dir, "src", "report.js"));
  await run(process.execPath, [path.join(rootModules, "typescript", "bin", "tsc"), "--noEmit", "-p", "tsconfig.json"], {
    cwd: vite.dir,
  });
});

step("Vite app: `vite build` emits the .wasm as an asset and the page runs in Chromium (exports condition browser)", async () => {
  assert.ok(vite.dir, "no Vite app (its first test failed)");
  const { stdout, stderr } = await run(process.execPath, [path.join(rootModules, "vite", "bin", "vite.js"), "build"], {
    cwd: vite.dir,
    env: { NODE_ENV: "production" },
  });
  assert.doesNotMatch(`${stdout}\n${stderr}`, /warn|doesn't exist at build time/i, "vite build warned");
  const dist = path.join(vite.dir, "dist");
  const assets = await readdir(path.join(dist, "assets"));
  const wasm = assets.filter((f) => f.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one .wasm asset: ${assets.join(", ")}`);
  assert.ok(
    readFileSync(path.join(dist, "assets", wasm[0])).equals(readFileSync(path.join(PACKAGE_DIR, "llm_stream_guard_bg.wasm"))),
    "the emitted .wasm is the package's",
  );
  const sizes = [];
  for (const file of assets) {
    const bytes = readFileSync(path.join(dist, "assets", file));
    sizes.push(`${file} ${bytes.length} B (${gzipSync(bytes, { level: zlib.Z_BEST_COMPRESSION }).length} B gzipped)`);
  }
  console.log(`vite build: ${sizes.join(", ")}`);

  const server = await serve(dist);
  try {
    const { report, dom, wasm: loaded } = await runPage(server.url);
    checkViteApp(dom);
    await checkReport(report, "vite");
    assert.deepEqual(loaded, [{ path: `/assets/${wasm[0]}`, status: 200, type: "application/wasm" }]);
  } finally {
    await server.close();
  }
});

step("Vite dev server: the page runs in Chromium with the dependency pre-bundled", async () => {
  assert.ok(vite.dir, "no Vite app (its first test failed)");
  // Fresh ledger entries for this run of the same app.
  await writeFile(path.join(vite.dir, "src", "example.js"), exampleFor("vite-dev", "esm"));
  const { createServer: createViteServer } = await import("vite");
  const server = await createViteServer({
    root: vite.dir,
    logLevel: "warn",
    clearScreen: false,
    server: { host: "127.0.0.1", port: 0, strictPort: true },
  });
  try {
    await server.listen();
    const url = server.resolvedUrls.local[0];
    const { report, dom, wasm } = await runPage(url);
    checkViteApp(dom);
    await checkReport(report, "vite-dev");
    assert.deepEqual(
      wasm.map((w) => `${w.path} ${w.status}`),
      ["/node_modules/llm-stream-guard/llm_stream_guard_bg.wasm 200"],
      "the pre-bundled entry loads the .wasm from the package folder",
    );
    assert.ok(
      existsSync(path.join(vite.dir, "node_modules", ".vite", "deps", "llm-stream-guard.js")),
      "Vite pre-bundled the package (the case this test is for)",
    );
  } finally {
    await server.close();
  }
});

/** Whether a webpack warning is its asset-size or entrypoint-size hint naming no asset but `wasmName`. */
function sizeHintOnlyFor(message, wasmName) {
  if (!/^(asset size limit|entrypoint size limit): /.test(message)) return false;
  const named = [...message.matchAll(/^\s+(\S+\.(?:js|wasm|css|mjs))\s/gm)].map((m) => m[1]);
  return named.length > 0 && named.every((name) => name === wasmName);
}

step("webpack 5 app, no plugin and no config: built and run in Chromium (exports condition browser)", async () => {
  const dir = await project("webpack");
  await assertNoConfig(dir, "webpack");
  await writeFile(path.join(dir, "src", "example.js"), exampleFor("webpack", "esm"));
  await addReport(path.join(dir, "src", "report.js"));
  const info = await webpackBuild(dir);
  assert.deepEqual(info.errors.map((e) => e.message), [], "webpack errors");
  const wasm = info.assets.filter((a) => a.name.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one .wasm asset: ${info.assets.map((a) => a.name).join(", ")}`);
  console.log(`webpack: ${info.assets.map((a) => `${a.name} ${a.size} B`).join(", ")}`);
  // The one warning allowed: webpack's size hint (default 250,000 bytes, 244 KiB) with its
  // closing recommendation, and only for the .wasm, which the README's Size section says is
  // past it. A JS asset past it, or any other warning, fails.
  const messages = info.warnings.map((w) => w.message);
  const hinted = messages.some((m) => sizeHintOnlyFor(m, wasm[0].name));
  const other = messages.filter(
    (m) => !sizeHintOnlyFor(m, wasm[0].name) && !(hinted && m.startsWith("webpack performance recommendations:")),
  );
  if (hinted) console.log(`webpack: the size hint for ${wasm[0].name} (${wasm[0].size} B > 250,000)`);
  assert.deepEqual(other, [], "webpack warnings besides the .wasm's size hint");

  const server = await serve(dir);
  try {
    const { report, wasm: loaded } = await runPage(server.url);
    await checkReport(report, "webpack");
    assert.deepEqual(loaded, [{ path: `/dist/${wasm[0].name}`, status: 200, type: "application/wasm" }]);
  } finally {
    await server.close();
  }
});

step("webpack 5 app importing `llm-stream-guard/sse`, no plugin and no config: one small .wasm, parses in Chromium", async () => {
  const dir = path.join(await workFolder(), "sse");
  assert.ok(existsSync(path.join(dir, "node_modules", "llm-stream-guard")), "no sse project (its Node test failed)");
  await assertNoConfig(dir, "webpack");
  const info = await webpackBuild(dir);
  assert.deepEqual(info.errors.map((e) => e.message), [], "webpack errors");
  assert.deepEqual(info.warnings.map((w) => w.message), [], "webpack warnings");
  const wasm = info.assets.filter((a) => a.name.endsWith(".wasm"));
  assert.equal(wasm.length, 1, `one .wasm asset: ${info.assets.map((a) => a.name).join(", ")}`);
  const own = readFileSync(path.join(dir, "node_modules", "llm-stream-guard", "llm_stream_guard_sse_bg.wasm"));
  assert.equal(wasm[0].size, own.length, "the asset is the parser-only module");
  console.log(`webpack (sse): ${info.assets.map((a) => `${a.name} ${a.size} B`).join(", ")}`);

  const server = await serve(dir);
  try {
    const { report, wasm: loaded } = await runPage(server.url);
    await checkSseParsed(report, dir);
    assert.deepEqual(loaded, [{ path: `/dist/${wasm[0].name}`, status: 200, type: "application/wasm" }]);
  } finally {
    await server.close();
  }
});

const statics = {};

step("static page, module script and import map, no bundler: runs in Chromium (the browser entry as a file)", async () => {
  statics.dir = await project("static");
  await writeFile(path.join(statics.dir, "example.js"), exampleFor("static", "esm"));
  await addReport(path.join(statics.dir, "report.js"));
  // The import map points at the file the exports map gives browsers.
  const html = await readFile(path.join(statics.dir, "index.html"), "utf8");
  const map = JSON.parse(/<script type="importmap">([\s\S]*?)<\/script>/.exec(html)[1]);
  const entry = (await installedManifest(statics.dir)).exports["."].browser.default;
  assert.equal(map.imports["llm-stream-guard"], `./node_modules/llm-stream-guard/${entry.replace(/^\.\//, "")}`);

  const server = await serve(statics.dir);
  try {
    const { report, wasm } = await runPage(server.url);
    await checkReport(report, "static");
    assert.deepEqual(wasm, [{ path: "/node_modules/llm-stream-guard/llm_stream_guard_bg.wasm", status: 200, type: "application/wasm" }]);
    assert.deepEqual(server.requests.filter((r) => r.status !== 200), []);
  } finally {
    await server.close();
  }
});

step("static page whose server sends the .wasm as application/octet-stream: still runs", async () => {
  assert.ok(statics.dir, "no static page (its test failed)");
  await writeFile(path.join(statics.dir, "example.js"), exampleFor("static-octet", "esm"));
  const server = await serve(statics.dir, { wasmType: "application/octet-stream" });
  try {
    const { report, wasm } = await runPage(server.url);
    await checkReport(report, "static-octet");
    assert.deepEqual(wasm.map((w) => w.type), ["application/octet-stream"]);
  } finally {
    await server.close();
  }
});

// ---- workerd -----------------------------------------------------------------------------------

step("workerd module worker: the README's first example in a request (exports condition workerd)", async () => {
  const dir = await project("workerd");
  await writeFile(path.join(dir, "example.js"), exampleFor("workerd", "function"));
  await addReport(path.join(dir, "report.js"));
  // config.capnp embeds the entry the exports map gives workerd.
  const entry = (await installedManifest(dir)).exports["."].workerd.default;
  const config = await readFile(path.join(dir, "config.capnp"), "utf8");
  assert.ok(
    config.includes(`(name = "llm-stream-guard", esModule = embed "node_modules/llm-stream-guard/${entry.replace(/^\.\//, "")}")`),
    `config.capnp embeds ${entry}`,
  );

  await inWorkerd(dir, "config.capnp", (answer) => checkReport(answer, "workerd"));
});

step("workerd module worker importing `llm-stream-guard/sse`: parses a stream at every split in a request (exports condition workerd)", async () => {
  const dir = path.join(await workFolder(), "sse");
  assert.ok(existsSync(path.join(dir, "node_modules", "llm-stream-guard")), "no sse project (its Node test failed)");
  // sse-workerd.capnp embeds the entry the exports map gives workerd.
  const entry = (await installedManifest(dir)).exports["./sse"].workerd.default;
  const config = await readFile(path.join(dir, "sse-workerd.capnp"), "utf8");
  assert.ok(
    config.includes(`(name = "llm-stream-guard/sse", esModule = embed "node_modules/llm-stream-guard/${entry.replace(/^\.\//, "")}")`),
    `sse-workerd.capnp embeds ${entry}`,
  );
  await inWorkerd(dir, "sse-workerd.capnp", (answer) => checkSseParsed(answer, dir));
});


/**
 * What `webpack --mode production` run in the app folder does with no configuration file:
 * ./src/index.js to ./dist (the defaults, which the API takes from the process's directory).
 * Returns the stats' errors, warnings and assets.
 */
async function webpackBuild(dir) {
  const { default: webpack } = await import("webpack");
  const stats = await new Promise((resolve, reject) => {
    const compiler = webpack({ mode: "production", context: dir, output: { path: path.join(dir, "dist") } });
    compiler.run((error, result) => {
      compiler.close(() => (error ? reject(error) : resolve(result)));
    });
  });
  return stats.toJson({ all: false, errors: true, warnings: true, assets: true });
}
