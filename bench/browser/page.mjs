// The benchmark page: the web package initialised, and the measurements the Chromium driver
// calls as `window.bench.<name>(...)`. `data-ready` on <html> says the page is ready (or failed).
import init, * as lib from "/pkg/llm_stream_guard.js";
import { createParser } from "/esp/index.js";
import { stream } from "/lib/stream.mjs";
import { decodeBench, decodeFetchBench } from "/lib/decode.mjs";
import { deadlineBench, cancelBench } from "/lib/trials.mjs";

try {
  await init();
  window.bench = {
    decode: (bytes, runs) => decodeBench({ lib, createParser, input: stream({ targetBytes: bytes }), runs }),
    decodeFetch: (url, bytes, runs) => decodeFetchBench({ lib, createParser, url, input: stream({ targetBytes: bytes }), runs }),
    deadlines: (mock, trials, deadlines) => deadlineBench({ lib, mock, trials, deadlines, label: "chromium" }),
    cancel: (mock, trials) => cancelBench({ lib, mock, trials, label: "chromium" }),
  };
  document.documentElement.dataset.ready = "true";
} catch (error) {
  window.benchError = String(error?.stack ?? error);
  document.documentElement.dataset.ready = "failed";
}
