// A module worker that runs the README's first example in a request (the runtime allows no I/O
// at the top level; example.js, written by install.test.mjs, wraps it in `example()`) and
// answers with the report; a later request to /rejections lists the promise rejections nobody
// handled meanwhile.
import * as lib from "llm-stream-guard";
import { example } from "./example.js";
import { describe } from "./report.js";

const rejections = [];
addEventListener("unhandledrejection", (event) => {
  rejections.push(String(event.reason?.stack ?? event.reason));
});

export default {
  async fetch(request) {
    if (new URL(request.url).pathname === "/rejections") return Response.json(rejections);
    const result = await example();
    return Response.json(await describe(lib, result));
  },
};
