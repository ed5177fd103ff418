// The loopback server of the end-to-end decode rows (1e, 1f): one OpenRouter-shaped stream
// (../lib/stream.mjs, the same seed as the readers use, so they know the answer it carries),
// made once in memory and sent to every request in `CHUNK`-sized writes, each written when the
// socket has taken the previous one. Answers CORS preflights, for the Chromium page.
//
//   node bench/node/sse-server.mjs '{"bytes": N}'   prints `{"url": ..., "bytes": ...}` once listening
//
// Listens on 127.0.0.1 port 0; stops when its stdin closes (the parent's end) or on SIGTERM.
import http from "node:http";
import { stream } from "../lib/stream.mjs";
import { CHUNK } from "../lib/decode.mjs";

const { bytes: targetBytes } = JSON.parse(process.argv[2]);
const { bytes } = stream({ targetBytes });
const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "POST, GET, OPTIONS",
  "access-control-allow-headers": "content-type, authorization",
  "access-control-max-age": "600",
};

/** Resolves when `response` has taken what was written (`drain`) or is gone (`close`). */
function writable(response) {
  return new Promise((resolve) => {
    const done = () => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}

const server = http.createServer(async (request, response) => {
  if (request.method === "OPTIONS") {
    response.writeHead(204, CORS);
    response.end();
    return;
  }
  request.resume();
  response.writeHead(200, { ...CORS, "content-type": "text/event-stream", "cache-control": "no-store" });
  let closed = false;
  response.on("close", () => {
    closed = true;
  });
  for (let offset = 0; offset < bytes.length && !closed; offset += CHUNK) {
    if (!response.write(bytes.subarray(offset, offset + CHUNK))) await writable(response);
  }
  response.end();
});
server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}/v1/chat/completions`, bytes: bytes.length }));
});
const stop = () => {
  server.closeAllConnections();
  server.close();
  process.exit(0);
};
process.stdin.on("end", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
