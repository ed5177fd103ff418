// A minimal streaming HTTP client for the benchmarks' own measurements of servers whose output
// is known (the mock upstream and the edge worker write LF-separated events): every event is
// handed over with the `performance.now()` of the read that completed it. One request, one
// fresh connection.
import http from "node:http";

/**
 * POST `body` (JSON) to `url`; `onEvent({ event, data, at })` for every event, `onBytes(n)`
 * for every read. Returns `{ done, destroy, started }`: `done` resolves with
 * `{ status, bytes, headersAt, endAt }` when the body ends (or rejects on a network error),
 * `destroy()` drops the connection at once.
 */
export function post(url, body, { headers = {}, onEvent = () => {}, onBytes = () => {} } = {}) {
  const payload = JSON.stringify(body);
  let request;
  let started;
  const done = new Promise((resolve, reject) => {
    request = http.request(url, {
      method: "POST",
      agent: false,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload), ...headers },
    });
    started = performance.now();
    request.on("error", reject);
    request.on("response", (response) => {
      const headersAt = performance.now();
      let bytes = 0;
      let buffer = "";
      response.setEncoding("utf8");
      response.on("data", (text) => {
        const at = performance.now();
        bytes += Buffer.byteLength(text);
        onBytes(bytes);
        buffer += text;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("data:")) data.push(line.slice(line[5] === " " ? 6 : 5));
            else if (line.startsWith("event:")) event = line.slice(6).trim();
          }
          if (data.length) onEvent({ event, data: data.join("\n"), at });
        }
      });
      response.on("error", reject);
      response.on("aborted", () => reject(new Error("the response was aborted")));
      response.on("end", () => resolve({ status: response.statusCode, bytes, headersAt, endAt: performance.now() }));
    });
    request.end(payload);
  });
  return {
    done,
    started: () => started,
    destroy() {
      request.destroy();
    },
  };
}

/** The content of a chat chunk's first choice, or "" (also for `[DONE]` and non-chunks). */
export function contentOf(data) {
  if (data === "[DONE]") return "";
  try {
    return JSON.parse(data).choices?.[0]?.delta?.content ?? "";
  } catch {
    return "";
  }
}
