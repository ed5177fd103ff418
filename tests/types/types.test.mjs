// The published TypeScript contract: `tsc` on each tsconfig*.json next to this file, against the
// built package (`cargo xtask build`, whose folder LSG_PACKAGE_DIR names), linked into a work
// folder's node_modules as an installed dependency, so TypeScript resolves it through the
// package's own `exports` map and `types`. One test per configuration; a test fails when tsc
// reports any error (an `@ts-expect-error` line that no longer fails is one).
//
//   cargo xtask test --only types

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { cp, mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, "target");
const packageDir = process.env.LSG_PACKAGE_DIR ?? path.join(targetDir, "pkg", "llm-stream-guard");
const tsc = path.join(repo, "node_modules", "typescript", "bin", "tsc");

const rejections = [];
process.on("unhandledRejection", (reason) => rejections.push(reason));

let work = "";
let failed = false;
after(async () => {
  if (!work) return;
  if (failed || process.env.LSG_KEEP) console.log(`work folder kept: ${work}`);
  else await rm(work, { recursive: true, force: true });
});

/** The work folder: the sources and configurations, and node_modules/llm-stream-guard. */
async function workFolder() {
  if (work) return work;
  assert.ok(existsSync(path.join(packageDir, "package.json")), `no package at ${packageDir}: run \`cargo xtask build\``);
  await mkdir(path.join(targetDir, "types-test"), { recursive: true });
  work = await mkdtemp(path.join(targetDir, "types-test", "run-"));
  for (const file of readdirSync(here)) {
    if (/\.(ts|mts|cts|json)$/.test(file)) await cp(path.join(here, file), path.join(work, file));
  }
  await mkdir(path.join(work, "node_modules"));
  await symlink(packageDir, path.join(work, "node_modules", "llm-stream-guard"), "dir");
  return work;
}

function tscProject(config) {
  return new Promise((resolve) => {
    execFile(process.execPath, [tsc, "-p", config, "--pretty", "false"], { cwd: work, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? (error.code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

const configs = readdirSync(here).filter((f) => /^tsconfig.*\.json$/.test(f)).sort();

for (const config of configs) {
  test(`tsc -p ${config}`, { timeout: 120_000 }, async () => {
    try {
      await workFolder();
      const { code, output } = await tscProject(config);
      assert.equal(code, 0, `tsc reported errors:\n${output}`);
      assert.deepEqual(rejections.splice(0), [], "unhandled promise rejections");
    } catch (error) {
      failed = true;
      throw error;
    }
  });
}
