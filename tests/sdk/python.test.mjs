// The Python `openai` SDK against the edge worker: tests/sdk/python/cases.py run by the venv's
// python (`cargo xtask setup` makes target/py-venv with `openai` pinned exactly), one case per
// process, each stopped by its pid if it outlives its deadline. The worker runs in workerd in
// front of the mock upstream, started per test (support.mjs).
//
// Environment: LSG_SDK_PYTHON (the venv's python; default target/py-venv/bin/python), plus
// what support.mjs reads. No python there fails every test here: it is never skipped.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { CLIENT_TOKEN, DEFAULT_TEXT, PROVIDER_KEY, check, ledger, provider, repo, tagged } from "./support.mjs";
import { jsonToolServer } from "./tools.mjs";

const PYTHON = process.env.LSG_SDK_PYTHON ?? path.join(repo, "target", "py-venv", "bin", "python");
const SCRIPT = path.join(repo, "tests", "sdk", "python", "cases.py");
/** The pin `cargo xtask setup` installs, read from its source. */
const PINNED = /PYTHON_OPENAI_VERSION: &str = "([^"]+)"/.exec(readFileSync(path.join(repo, "xtask", "src", "setup.rs"), "utf8"))?.[1];

/** Run one case against a worker; resolves to the JSON it printed. */
function python(caseName, worker, model, deadlineMs = 30_000) {
  assert.ok(existsSync(PYTHON), `no Python venv at ${PYTHON}: run \`cargo xtask setup\``);
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT, caseName, `${worker.url}/v1`, CLIENT_TOKEN, model], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => {
      process.kill(child.pid, "SIGKILL");
      reject(new Error(`python ${caseName} did not finish within ${deadlineMs} ms: ${err}`));
    }, deadlineMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`python ${caseName} exited with ${code}: ${err}`));
      try {
        const result = JSON.parse(out.trim().split("\n").at(-1));
        assert.equal(result.version, PINNED, "the pinned Python openai ran");
        resolve(result);
      } catch (e) {
        reject(new Error(`python ${caseName} printed no JSON (${e}): ${out} ${err}`));
      }
    });
  });
}

check("Python openai: streaming text through the worker", async (start) => {
  const tag = tagged("py-stream");
  const worker = await start([provider("normal", "normal", tag)]);
  const result = await python("stream", worker, "mock/normal");
  assert.equal(result.text, DEFAULT_TEXT);
  assert.equal(result.finish_reason, "stop");
  assert.equal((await ledger(tag)).length, 1);
});

check("Python openai: usage when asked, none when not", async (start) => {
  const tag = tagged("py-usage");
  const worker = await start([provider("usage", "normal", tag, { query: "usage=asked" })]);
  const { asked, not_asked: notAsked } = await python("usage", worker, "mock/usage");
  assert.equal(asked.text, DEFAULT_TEXT);
  assert.equal(asked.usage.length, 1, "one usage chunk when asked");
  assert.ok(asked.usage[0].total_tokens > 0);
  assert.equal(notAsked.text, DEFAULT_TEXT);
  assert.deepEqual(notAsked.usage, [], "no usage when not asked");
  assert.equal(notAsked.empty_choices, 0, "no `choices: []` chunk when not asked");
});

check("Python openai: a JSON answer (and one with tool calls) arrives intact", async (start) => {
  const tag = tagged("py-json");
  const upstream = await jsonToolServer();
  try {
    const worker = await start([
      provider("json", "json", tag),
      { name: "tools-json", url: upstream.url, model: "mock/tools-json" },
    ]);
    const plain = await python("json", worker, "mock/json");
    assert.equal(plain.object, "chat.completion");
    assert.equal(plain.choices[0].message.content, DEFAULT_TEXT);
    const { version: _, ...withTools } = await python("json", worker, "mock/tools-json");
    assert.deepEqual(withTools, upstream.answer);
  } finally {
    await upstream.close();
  }
});

check("Python openai: tool calls streamed arrive intact", async (start) => {
  const tag = tagged("py-tools");
  const worker = await start([provider("tools", "tool-calls", tag)]);
  const result = await python("tools", worker, "mock/tools");
  assert.deepEqual(result.calls, [{ id: "call_1", name: "get_weather", arguments: "{\"city\":\"Paris\"}" }]);
  assert.equal(result.finish_reason, "tool_calls");
});

check("Python openai: a stall before the first token fails over invisibly", async (start) => {
  const tag = tagged("py-failover");
  const worker = await start(
    [provider("stalled", "headers-then-silence", tag), provider("fallback", "normal", tag)],
    { LSG_TIMEOUTS: JSON.stringify({ firstTokenMs: 300 }) },
  );
  const result = await python("stream", worker, "mock/stalled");
  assert.equal(result.text, DEFAULT_TEXT);
  assert.deepEqual((await ledger(tag, 2_000)).map((c) => c.scenario), ["headers-then-silence", "normal"]);
});

check("Python openai: a stall after text raises the SDK's APIError after the partial text", async (start) => {
  const tag = tagged("py-cut");
  const worker = await start([provider("cut", "stall-after-chunks", tag), provider("fallback", "normal", tag)], {
    LSG_TIMEOUTS: JSON.stringify({ idleMs: 300 }),
  });
  const result = await python("cut", worker, "mock/cut");
  assert.ok(result.text.length > 0 && DEFAULT_TEXT.startsWith(result.text) && result.text !== DEFAULT_TEXT, JSON.stringify(result.text));
  assert.equal(result.error?.class, "APIError", JSON.stringify(result));
  assert.ok(!JSON.stringify(result).includes(PROVIDER_KEY));
  assert.equal((await ledger(tag, 2_000)).length, 1, "no failover after text");
});

check("Python openai: everything failing is one request per provider; the SDK does not retry", async (start) => {
  const tag = tagged("py-fail");
  const worker = await start([provider("first", "http-503", tag), provider("second", "http-500", tag)]);
  const result = await python("retries", worker, "mock/first");
  assert.equal(result.error?.status, 502, JSON.stringify(result));
  assert.equal(result.error.class, "InternalServerError");
  assert.equal(result.error.should_retry, "false");
  assert.deepEqual((await ledger(tag)).map((c) => c.scenario), ["http-503", "http-500"]);
});
