// The comparison for the edge worker's overhead: the plainest streaming proxy a worker can be.
// It forwards `POST /v1/chat/completions` to the upstream URL that `UPSTREAMS` (a JSON object
// from model to URL) names for the request's `model`, and returns the upstream's response as it
// is: no guard, no deadlines, no re-encoding. `GET /healthz` answers `ok`.
//
// With `X-Bench-Relay: reads` it relays the body through a JavaScript `ReadableStream` instead,
// one `enqueue` per upstream read; with `X-Bench-Relay: events`, one `enqueue` per SSE event
// (what a proxy that re-encodes every chunk does). These two isolate what per-chunk JavaScript
// streaming costs in workerd.
function relay(body, perEvent) {
  const reader = body.getReader();
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  let pending = "";
  return new ReadableStream({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        if (pending) controller.enqueue(encoder.encode(pending));
        controller.close();
        return;
      }
      if (!perEvent) {
        controller.enqueue(value);
        return;
      }
      pending += decoder.decode(value, { stream: true });
      let end;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        controller.enqueue(encoder.encode(pending.slice(0, end + 2)));
        pending = pending.slice(end + 2);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/** Reads `stream` to its end in JavaScript, looking at nothing. */
function drain(stream) {
  const reader = stream.getReader();
  const next = async () => {
    while (!(await reader.read()).done);
  };
  next().catch(() => {});
}

// With `X-Bench-Relay: tee`, the upstream's body goes to the client natively (one branch of a
// `tee()`) while JavaScript reads the other branch and looks at nothing: the floor of a proxy
// that watches every byte without writing it.
function watched(response) {
  const [out, seen] = response.body.tee();
  drain(seen);
  return new Response(out, { status: response.status, headers: { "content-type": "text/event-stream" } });
}

// With `X-Bench-Relay: identity`, JavaScript reads every upstream chunk and writes it into
// workerd's native `IdentityTransformStream`, whose readable side is the response body (no
// JavaScript stream for the runtime to pull from).
function written(body) {
  const { readable, writable } = new IdentityTransformStream();
  const writer = writable.getWriter();
  const reader = body.getReader();
  const pump = async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return writer.close();
      await writer.write(value);
    }
  };
  pump().catch((error) => {
    writer.abort(error).catch(() => {});
    reader.cancel(error).catch(() => {});
  });
  return readable;
}

// With `X-Bench-Relay: teepipe`, a `tee()` whose one branch JavaScript reads (watching) and
// whose other is piped natively into an `IdentityTransformStream` (the response body) after a
// write of its own, and the body closed by JavaScript after the pipe: the shape of a proxy that
// watches every byte natively and still owns the body (held bytes before, a last chunk after).
function teePiped(response) {
  const [out, seen] = response.body.tee();
  drain(seen);
  const { readable, writable } = new IdentityTransformStream();
  const head = new TextEncoder().encode(": held\n\n");
  const pump = async () => {
    const writer = writable.getWriter();
    await writer.write(head);
    writer.releaseLock();
    await out.pipeTo(writable, { preventClose: true });
    const last = writable.getWriter();
    await last.write(new TextEncoder().encode(": end\n\n"));
    await last.close();
  };
  pump().catch(() => {});
  return new Response(readable, { status: response.status, headers: { "content-type": "text/event-stream" } });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname === "/healthz") return new Response("ok");
    if (request.method !== "POST" || url.pathname !== "/v1/chat/completions") {
      return new Response("not found", { status: 404 });
    }
    const body = await request.text();
    const upstream = JSON.parse(env.UPSTREAMS)[JSON.parse(body).model];
    if (!upstream) return new Response("unknown model", { status: 400 });
    const response = await fetch(upstream, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: request.signal,
    });
    const mode = request.headers.get("x-bench-relay");
    if (mode === "tee") return watched(response);
    if (mode === "teepipe") return teePiped(response);
    if (mode === "identity") {
      return new Response(written(response.body), {
        status: response.status,
        headers: { "content-type": "text/event-stream" },
      });
    }
    if (mode !== "reads" && mode !== "events") return response;
    return new Response(relay(response.body, mode === "events"), {
      status: response.status,
      headers: { "content-type": "text/event-stream" },
    });
  },
};
