// What the install tests share (install.test.mjs, guard-workerd.test.mjs): the environment the
// suite is given, the mock upstream's canned answer and ledger, one work folder per test file,
// the tarball installed into a copy of a project folder, a step that fails on unhandled
// rejections and keeps the work folder when it fails, and a workerd run stopped by its own
// process id. Each test file runs in its own process, so each has its own work folder.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import net from "node:net";
import { existsSync, readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "..", "..");
export const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, "target");
export const TARBALL = process.env.LSG_PACKAGE_TARBALL ?? "";
export const PACKAGE_DIR = process.env.LSG_PACKAGE_DIR ?? "";
export const MOCK = (process.env.MOCK_URL ?? "").replace(/\/$/, "");
export const rootModules = path.join(repo, "node_modules");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** The mock upstream's canned answer, from its source (its own tests check it streams it). */
export const DEFAULT_TEXT = (() => {
  const source = readFileSync(path.join(repo, "mock-upstream", "src", "texts.rs"), "utf8");
  const match = /pub const DEFAULT_TEXT: &str = "([^"\\]*)";/.exec(source);
  assert.ok(match, "mock-upstream/src/texts.rs has no DEFAULT_TEXT");
  return match[1];
})();

// Rejections nobody handled in this process: each test fails if one happened while it ran.
const rejections = [];
process.on("unhandledRejection", (reason) => rejections.push(reason));

export const state = { work: "", failed: false, browser: undefined };

/** A test that marks the run failed (keeping the work folder) and checks for rejections. */
export function step(name, body) {
  test(name, { timeout: 180_000 }, async (t) => {
    try {
      await body(t);
      assert.deepEqual(rejections.splice(0), [], "unhandled promise rejections in the test harness");
    } catch (error) {
      state.failed = true;
      throw error;
    }
  });
}

after(async () => {
  await state.browser?.close();
  if (!state.work) return;
  if (state.failed || process.env.LSG_KEEP) {
    console.log(`work folder kept: ${state.work}`);
  } else {
    await rm(state.work, { recursive: true, force: true });
  }
});

/** Run a program; resolves with its output, rejects with the output in the message. */
export function run(file, args, { cwd, timeout = 120_000, env } = {}) {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd, timeout, env: { ...process.env, npm_config_update_notifier: "false", ...env }, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error) {
          const how = error.killed ? `killed after ${timeout} ms` : `exit ${error.code}`;
          reject(new Error(`${path.basename(file)} ${args.join(" ")} (in ${cwd}) failed: ${how}\n${stdout}\n${stderr}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

/** The work folder, made once. */
export async function workFolder() {
  if (!state.work) {
    await mkdir(path.join(targetDir, "install-test"), { recursive: true });
    state.work = await mkdtemp(path.join(targetDir, "install-test", "run-"));
  }
  return state.work;
}

/** Copy the project folder `name` to the work folder and install the tarball into it, offline. */
export async function project(name) {
  assert.ok(existsSync(TARBALL), `no tarball at ${JSON.stringify(TARBALL)} (set LSG_PACKAGE_TARBALL)`);
  const dir = path.join(await workFolder(), name);
  await cp(path.join(here, name), dir, { recursive: true });
  await run(npm, ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", TARBALL], { cwd: dir });
  const installed = path.join(dir, "node_modules", "llm-stream-guard");
  assert.ok(existsSync(path.join(installed, "llm_stream_guard_bg.wasm")), `nothing installed at ${installed}`);
  const manifest = JSON.parse(await readFile(path.join(dir, "package.json"), "utf8"));
  assert.match(manifest.dependencies?.["llm-stream-guard"] ?? "", /\.tgz$/, "installed from the tarball");
  return dir;
}

/** The installed package's manifest. */
export async function installedManifest(dir) {
  return JSON.parse(await readFile(path.join(dir, "node_modules", "llm-stream-guard", "package.json"), "utf8"));
}

/** The mock upstream's ledger for a tag. */
export async function ledger(tag) {
  const response = await fetch(`${MOCK}/_ledger?tag=${encodeURIComponent(tag)}`);
  assert.equal(response.status, 200);
  return (await response.json()).connections;
}

/** The last line of a program's output, as JSON. */
export function lastJson(stdout) {
  const line = stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`the last line of the output is not JSON:\n${stdout}`);
  }
}

/**
 * Serves `capnp` of `dir` in workerd, requests `route` (default `/`) and hands its JSON answer
 * to `check`, then asks the worker for the unhandled rejections it saw; workerd is stopped by its
 * own process id.
 */
export async function inWorkerd(dir, capnp, check, { route = "/" } = {}) {
  // The listening socket is bound here (port 0) and handed to workerd as file descriptor 3;
  // connections made before workerd is ready wait in its backlog.
  const socket = net.createServer();
  await new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.listen(0, "127.0.0.1", resolve);
  });
  const { port } = socket.address();
  const workerd = spawn(
    path.join(rootModules, ".bin", "workerd"),
    ["serve", capnp, "--socket-fd", "http=3"],
    { cwd: dir, stdio: ["ignore", "pipe", "pipe", socket._handle.fd] },
  );
  const exited = new Promise((resolve) => workerd.once("exit", (code, signal) => resolve({ code, signal })));
  let output = "";
  workerd.stdout.on("data", (chunk) => (output += chunk));
  workerd.stderr.on("data", (chunk) => (output += chunk));
  // This process stops accepting on the socket; workerd holds its own copy.
  await new Promise((resolve) => socket.close(resolve));
  try {
    const answer = await Promise.race([
      fetch(`http://127.0.0.1:${port}${route}`),
      exited.then(({ code, signal }) => {
        throw new Error(`workerd exited (${code ?? signal}):\n${output}`);
      }),
    ]);
    const text = await answer.text();
    assert.equal(answer.status, 200, `${text}\n${output}`);
    await check(JSON.parse(text));
    const later = await fetch(`http://127.0.0.1:${port}/rejections`);
    assert.deepEqual(await later.json(), [], "unhandled promise rejections in the worker");
  } finally {
    workerd.kill("SIGTERM"); // by its own process id
    await exited;
  }
  assert.doesNotMatch(output, /Uncaught|unhandled/i, `workerd reported an error:\n${output}`);
}
