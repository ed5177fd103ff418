// The `bundler` npm package as users import it: packed with `npm pack`, installed from the
// tarball into the tiny Vite app next to this file, type-checked with `tsc --noEmit`, built with
// `vite build` (vite-plugin-wasm), and the built page run once in headless Chromium, where it
// reports what SseParser parsed and what generate() answered over an injected fetch.
//
//   cargo xtask build --target bundler     # builds <target-dir>/pkg/bundler
//   node --test tests/bundler/
//
// Needs no network at test time: the tarball has no dependencies, and vite, vite-plugin-wasm,
// typescript and playwright-core are the repository's pinned devDependencies (`npm ci` at the
// root), linked into the app's node_modules. Environment:
//   LSG_PKG_BUNDLER   the package folder (default <target-dir>/pkg/bundler)
//   LSG_CHROMIUM      the browser (default /usr/bin/chromium)
//   LSG_KEEP          keep the work folder (<target-dir>/bundler-test/run-*) even on success
// The browser step is skipped only when playwright-core is not a devDependency of the root.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink } from "node:fs/promises";
import { gzipSync, constants as zlib } from "node:zlib";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM_PATH, launchChromium } from "../support/chromium.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, "target");
const pkgDir = process.env.LSG_PKG_BUNDLER
  ? path.resolve(process.env.LSG_PKG_BUNDLER)
  : path.join(targetDir, "pkg", "bundler");
const rootModules = path.join(repo, "node_modules");
const rootManifest = JSON.parse(readFileSync(path.join(repo, "package.json"), "utf8"));
/** Tools the app needs, linked from the root's node_modules (all pinned there). */
const TOOLS = ["vite", "vite-plugin-wasm", "typescript"];

/** Shared between the steps, which run in order; a step whose input is missing fails. */
const state = { built: false, work: "", app: "", tarball: "", dist: "", failed: false };

/** A step: fails (and marks the run failed, keeping the work folder) when `body` throws. */
function step(name, options, body) {
  test(name, options, async (t) => {
    try {
      await body(t);
    } catch (error) {
      state.failed = true;
      throw error;
    }
  });
}

after(async () => {
  if (!state.work) return;
  if (state.failed || process.env.LSG_KEEP) {
    console.log(`work folder kept: ${state.work}`);
  } else {
    await rm(state.work, { recursive: true, force: true });
  }
});

/** Run a program; resolves with its output, rejects with the output in the message. */
function run(file, args, { cwd, timeout = 120_000, env } = {}) {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, timeout, env: { ...process.env, ...env }, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error) {
          const how = error.killed ? `killed after ${timeout} ms` : `exit ${error.code}`;
          reject(
            new Error(
              `${path.basename(file)} ${args.join(" ")} (in ${cwd}) failed: ${how}\n${stdout}\n${stderr}`,
            ),
          );
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const bin = (name) => path.join(rootModules, ".bin", name);

step("the bundler package is built", {}, async () => {
  assert.ok(
    existsSync(path.join(pkgDir, "package.json")),
    `no package at ${pkgDir}: run \`cargo xtask build --target bundler\` first (or set LSG_PKG_BUNDLER)`,
  );
  const manifest = JSON.parse(await readFile(path.join(pkgDir, "package.json"), "utf8"));
  assert.equal(manifest.name, "llm-stream-guard");
  const glue = await readFile(path.join(pkgDir, manifest.main ?? manifest.module), "utf8");
  assert.match(
    glue,
    /from ["']\.\/llm_stream_guard_bg\.wasm["']/,
    `${pkgDir} is not a --target bundler package (its entry does not import the .wasm as a module)`,
  );
  for (const tool of TOOLS) {
    assert.ok(
      existsSync(path.join(rootModules, tool, "package.json")),
      `${tool} is not installed in ${rootModules}: run \`npm ci\` at the repository root`,
    );
  }
  state.built = true;
});

step("npm pack makes a tarball with the wasm, the glue and the types", {}, async () => {
  assert.ok(state.built, "no package to pack (see the first step)");
  await mkdir(path.join(targetDir, "bundler-test"), { recursive: true });
  state.work = await mkdtemp(path.join(targetDir, "bundler-test", "run-"));
  const { stdout } = await run(
    npm,
    ["pack", pkgDir, "--json", "--ignore-scripts", "--pack-destination", state.work],
    { cwd: state.work },
  );
  const [packed] = JSON.parse(stdout);
  const files = packed.files.map((f) => f.path).sort();
  for (const name of [
    "package.json",
    "llm_stream_guard.js",
    "llm_stream_guard_bg.js",
    "llm_stream_guard_bg.wasm",
    "llm_stream_guard.d.ts",
  ]) {
    assert.ok(files.includes(name), `the tarball lacks ${name}: ${files.join(", ")}`);
  }
  state.tarball = path.join(state.work, packed.filename);
  assert.ok(existsSync(state.tarball), `npm pack wrote no ${state.tarball}`);
  console.log(`packed ${packed.id}: ${packed.size} bytes (${packed.unpackedSize} unpacked)`);
});

step("the app installs the tarball offline", {}, async () => {
  assert.ok(state.tarball, "no tarball (the packing step failed)");
  state.app = path.join(state.work, "app");
  await cp(here, state.app, {
    recursive: true,
    filter: (src) => {
      const name = path.basename(src);
      return !["node_modules", "dist", "bundler.test.mjs"].includes(name);
    },
  });
  await run(
    npm,
    ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", state.tarball],
    { cwd: state.app, env: { npm_config_update_notifier: "false" } },
  );
  const installed = path.join(state.app, "node_modules", "llm-stream-guard");
  assert.ok(existsSync(path.join(installed, "llm_stream_guard_bg.wasm")), `nothing installed at ${installed}`);
  const appManifest = JSON.parse(await readFile(path.join(state.app, "package.json"), "utf8"));
  assert.match(appManifest.dependencies?.["llm-stream-guard"] ?? "", /\.tgz$/);
  // The tools, from the root's pinned devDependencies (installed after the tarball: npm would
  // prune links it did not make).
  for (const tool of TOOLS) {
    await symlink(path.join(rootModules, tool), path.join(state.app, "node_modules", tool), "dir");
  }
});

step("tsc --noEmit accepts the app against the package's types", {}, async () => {
  assert.ok(state.app, "no app (the install step failed)");
  await run(process.execPath, [path.join(rootModules, "typescript", "bin", "tsc"), "--noEmit", "-p", "tsconfig.json"], {
    cwd: state.app,
  });
});

step("vite build bundles the app with the wasm as an asset", {}, async () => {
  assert.ok(state.app, "no app (the install step failed)");
  await run(process.execPath, [path.join(rootModules, "vite", "bin", "vite.js"), "build"], {
    cwd: state.app,
    env: { NODE_ENV: "production" },
  });
  state.dist = path.join(state.app, "dist");
  const assets = await readdir(path.join(state.dist, "assets"));
  const wasm = assets.filter((f) => f.endsWith(".wasm"));
  const js = assets.filter((f) => f.endsWith(".js"));
  assert.equal(wasm.length, 1, `expected one .wasm asset, got: ${assets.join(", ")}`);
  assert.ok(js.length >= 1, `no JS chunk in: ${assets.join(", ")}`);
  const original = await stat(path.join(pkgDir, "llm_stream_guard_bg.wasm"));
  const bundled = await stat(path.join(state.dist, "assets", wasm[0]));
  assert.equal(bundled.size, original.size, "the bundled .wasm differs in size from the package's");
  const html = await readFile(path.join(state.dist, "index.html"), "utf8");
  assert.match(html, /<script type="module"[^>]*src="\/assets\/[^"]+\.js"/);
  const code = (await Promise.all(js.map((f) => readFile(path.join(state.dist, "assets", f), "utf8")))).join("\n");
  assert.ok(code.includes(wasm[0]), "no JS chunk refers to the .wasm asset");

  // Sizes of what a browser downloads.
  const rows = [];
  for (const file of [...js, ...wasm]) {
    const bytes = await readFile(path.join(state.dist, "assets", file));
    const gz = gzipSync(bytes, { level: zlib.Z_BEST_COMPRESSION }).length;
    rows.push({ file, raw: bytes.length, gzip: gz });
  }
  const total = rows.reduce((a, r) => ({ raw: a.raw + r.raw, gzip: a.gzip + r.gzip }), { raw: 0, gzip: 0 });
  console.log(
    [
      "| built asset | bytes | gzip -9 |",
      "|---|---:|---:|",
      ...rows.map((r) => `| ${r.file} | ${r.raw} | ${r.gzip} |`),
      `| total | ${total.raw} | ${total.gzip} |`,
    ].join("\n"),
  );
});

const hasPlaywright = Boolean(
  rootManifest.devDependencies?.["playwright-core"] ?? rootManifest.dependencies?.["playwright-core"],
);

step(
  "the built page runs SseParser and generate() in headless Chromium",
  { skip: hasPlaywright ? false : "playwright-core is not a devDependency of the repository" },
  async () => {
    assert.ok(state.dist, "no build (the vite step failed)");
    assert.ok(existsSync(CHROMIUM_PATH), `no browser at ${CHROMIUM_PATH} (set LSG_CHROMIUM)`);

    const { server, url, requests } = await serve(state.dist);
    let browser;
    try {
      browser = await launchChromium({ timeout: 30_000 });
      const page = await browser.newPage();
      const problems = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (msg) => {
        if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
      });
      await page.goto(url, { waitUntil: "load", timeout: 20_000 });
      await page.waitForFunction(() => document.getElementById("status")?.textContent !== "loading", null, {
        timeout: 20_000,
      });
      const report = await page.evaluate(() => ({
        status: document.getElementById("status")?.textContent,
        events: document.getElementById("events")?.textContent,
        answer: document.getElementById("answer")?.textContent,
        log: document.getElementById("log")?.textContent,
        session: document.getElementById("session")?.textContent,
      }));
      assert.equal(report.status, "done", `the page reports: ${JSON.stringify(report, null, 2)}\n${problems.join("\n")}`);
      assert.deepEqual(problems, []);

      // SseParser over a stream cut inside a UTF-8 character, between CR and LF, in a field.
      assert.deepEqual(JSON.parse(report.events), [
        { data: "h\u00e9llo", event: "message" },
        { data: "one\ntwo", event: "update", id: "7" },
        { data: "[DONE]", event: "message", id: "7" },
      ]);

      // generate() over the page's injected fetch.
      const answer = Object.fromEntries(report.answer.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      assert.equal(report.session, "Hello active=0 held=0", "a Session's call, then nothing held");
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
      const log = report.log.split("\n");
      assert.equal(log[0], "request-start local m-asked #1");
      assert.ok(log.includes("headers local 200"), report.log);
      assert.equal(log.at(-1), "done local partial=false");

      // Only the page, its chunk and the .wasm were fetched; the .wasm with its MIME type, so
      // the glue could compile it while streaming.
      assert.ok(requests.some((r) => r.path.endsWith(".wasm") && r.type === "application/wasm"), JSON.stringify(requests));
      assert.deepEqual(requests.filter((r) => r.status !== 200), []);
      console.log(`chromium: ${report.events.length}-byte event list, answer "${answer.text}", ${requests.length} requests`);
    } finally {
      await browser?.close();
      await new Promise((resolve) => server.close(resolve));
    }
  },
);

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".svg": "image/svg+xml",
};

/** A static server for `root` on 127.0.0.1 (a free port); records every request. */
async function serve(root) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const file = path.join(root, urlPath === "/" ? "index.html" : urlPath);
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
    const type = status === 200 ? (MIME[path.extname(file)] ?? "application/octet-stream") : "text/plain";
    requests.push({ path: urlPath, status, type });
    res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store", Connection: "close" });
    res.end(body ?? String(status));
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  return { server, url: `http://127.0.0.1:${port}/`, requests };
}
