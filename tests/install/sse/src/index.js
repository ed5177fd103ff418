// `llm-stream-guard/sse` in a webpack 5 app with no configuration (exports condition browser):
// one stream parsed at every split point, the outcome in #report.
import * as sse from "llm-stream-guard/sse";
import { everySplit, errors } from "../stream.js";

const status = document.getElementById("status");
try {
  document.getElementById("report").textContent = JSON.stringify({
    exports: Object.keys(sse).sort(),
    parsed: everySplit(sse.SseParser),
    errors: errors(sse.SseParser),
  });
  status.textContent = "done";
} catch (error) {
  status.textContent = `failed: ${error?.stack ?? error}`;
}
