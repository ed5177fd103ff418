// A whole answer leaves its connection to be used again: after `[DONE]` the guard lets the body
// reach its end instead of cancelling it a few bytes early (which closes the connection, so the
// next call pays for a new TCP and TLS handshake). Checked with the pinned `openai` SDK through
// guardFetch() and with generate(), against a local keep-alive upstream that ends each body
// 20 ms after `[DONE]` (as servers that flush the marker before finishing their work do), and
// counts the connections it accepted and saw closed. A body left open after `[DONE]` is still
// cut: at once when more data comes, else within the guard's 250 ms bound.
//
//   cargo xtask test --only sdk      # builds the package
//
// The upstream listens on 127.0.0.1 port 0 and is closed by its test. An unhandled promise
// rejection fails the test it happened in.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import OpenAI from "openai";

const here = path.dirname(fileURLToPath(import.meta.url));
const PACKAGE_DIR = process.env.LSG_PACKAGE_DIR ?? path.join(here, "..", "..", "target", "pkg", "llm-stream-guard");
const { generate, guardFetch } = await import(pathToFileURL(path.join(PACKAGE_DIR, "node.mjs")).href);

const rejections = [];
process.on("unhandledRejection", (reason) => rejections.push(reason));

/** How long after `[DONE]` the upstream ends its body (well inside the guard's 250 ms). */
const END_AFTER_MS = 20;
const WORDS = ["Kept ", "alive ", "twice."];
const chunk = (delta, finish = null) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/** A keep-alive upstream streaming WORDS; END_AFTER_MS after `[DONE]` it writes `after` (if
 * any) and ends the body, unless `open`. Counts the connections it accepted and the ones that
 * closed. */
async function upstream(after = "", open = false) {
  const seen = { connections: 0, requests: 0, closed: 0 };
  const server = createServer({ keepAlive: true, keepAliveTimeout: 30_000 }, (req, res) => {
    seen.requests += 1;
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write(chunk({ role: "assistant", content: "" }));
      for (const word of WORDS) res.write(chunk({ content: word }));
      res.write(chunk({}, "stop"));
      res.write("data: [DONE]\n\n");
      // The end comes 20 ms later (a server that flushes the marker, then finishes its work).
      setTimeout(() => {
        if (after) res.write(after);
        if (!open) res.end();
      }, END_AFTER_MS);
    });
  });
  server.on("connection", (socket) => {
    seen.connections += 1;
    socket.on("close", () => (seen.closed += 1));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/v1`;
  const close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    });
  return { url, seen, close };
}

function check(name, body) {
  test(name, { timeout: 30_000 }, async () => {
    await body();
    assert.deepEqual(rejections.splice(0), [], "unhandled promise rejections");
  });
}

async function streamed(client) {
  const stream = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }], stream: true });
  let text = "";
  for await (const part of stream) text += part.choices[0]?.delta?.content ?? "";
  return text;
}

/** Waits until `ready()` holds (a bound for a failure, not a pause). */
async function until(ready, what, ms = 5_000) {
  const end = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > end) assert.fail(`${what} within ${ms} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const CALLS = 5;

/** Runs `call` CALLS times, one after another, against a fresh upstream: the connections it
 * opened and the ones closed meanwhile. */
async function connections(call) {
  const server = await upstream();
  try {
    for (let i = 0; i < CALLS; i++) assert.equal(await call(server.url), WORDS.join(""));
    assert.equal(server.seen.requests, CALLS);
    return { opened: server.seen.connections, closed: server.seen.closed };
  } finally {
    await server.close();
  }
}

const clients = new Map();
/** One client per upstream and side (its connection pool is the platform's). */
const sdkClient = (guarded) => async (url) => {
  if (!clients.has(url + guarded)) {
    const options = { baseURL: url, apiKey: "sk-keepalive-test", maxRetries: 0 };
    clients.set(url + guarded, new OpenAI(guarded ? { ...options, fetch: guardFetch() } : options));
  }
  return streamed(clients.get(url + guarded));
};

// A connection still receiving its body's end is not free, so the next call may open another
// (the SDK alone does too); what must not happen is a connection closed under a whole answer.
check("openai through guardFetch: whole answers leave their connections open for the next", async () => {
  const plain = await connections(sdkClient(false));
  const guarded = await connections(sdkClient(true));
  assert.equal(plain.closed, 0, `without guardFetch, connections closed during ${CALLS} calls`);
  assert.equal(guarded.closed, 0, `with guardFetch, connections closed during ${CALLS} calls`);
});

check("generate(): whole answers leave their connections open for the next", async () => {
  const used = await connections(async (url) => {
    const providers = [{ name: "kept", url: `${url}/chat/completions`, model: "m", apiKey: "sk-keepalive-test" }];
    const result = await generate({ providers, messages: [{ role: "user", content: "hi" }] });
    assert.equal(result.partial, false);
    return result.text;
  });
  assert.equal(used.closed, 0, `connections closed during ${CALLS} calls`);
});

check("a body left open after [DONE], with more data or silent, is cut, and the answer is whole", async () => {
  for (const after of [chunk({ content: " and more" }), ""]) {
    const server = await upstream(after, true);
    try {
      const client = new OpenAI({ baseURL: server.url, apiKey: "sk-keepalive-test", maxRetries: 0, fetch: guardFetch() });
      assert.equal(await streamed(client), WORDS.join(""));
      const providers = [{ name: "kept", url: `${server.url}/chat/completions`, model: "m", apiKey: "sk-keepalive-test" }];
      const result = await generate({ providers, messages: [{ role: "user", content: "hi" }] });
      assert.equal(result.text, WORDS.join(""));
      await until(() => server.seen.closed === 2, `${after ? "data after [DONE]" : "a silent open body"}: both connections closed (${JSON.stringify(server.seen)})`);
    } finally {
      await server.close();
    }
  }
});
