// `llm-stream-guard/sse` in a workerd module worker (exports condition workerd): one stream
// parsed at every split point in a request; a later request to /rejections lists the promise
// rejections nobody handled meanwhile.
import * as sse from "llm-stream-guard/sse";
import { everySplit, errors } from "./stream.js";

const rejections = [];
addEventListener("unhandledrejection", (event) => {
  rejections.push(String(event.reason?.stack ?? event.reason));
});

export default {
  async fetch(request) {
    if (new URL(request.url).pathname === "/rejections") return Response.json(rejections);
    return Response.json({ exports: Object.keys(sse).sort(), parsed: everySplit(sse.SseParser), errors: errors(sse.SseParser) });
  },
};
