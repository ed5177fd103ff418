// `llm-stream-guard/sse` in Node through `import` and `require` (exports conditions node/import
// and node/require): one stream parsed at every split point; the report says which entry files
// were loaded, so a parser-only import that pulled the main module in would show.
const rejections = [];
process.on("unhandledRejection", (reason) => {
  rejections.push(String(reason?.stack ?? reason));
  process.exitCode = 1;
});

const { createRequire } = await import("node:module");
const require = createRequire(import.meta.url);
const imported = await import("llm-stream-guard/sse");
const required = require("llm-stream-guard/sse");
const { everySplit, errors } = await import("./stream.js");
const loaded = Object.keys(require.cache)
  .filter((file) => file.includes("/node_modules/llm-stream-guard/"))
  .map((file) => file.slice(file.lastIndexOf("/") + 1));
const report = {
  exports: Object.keys(imported).sort(),
  requireExports: Object.keys(required).sort(),
  shared: imported.SseParser === required.SseParser,
  resolved: import.meta.resolve("llm-stream-guard/sse"),
  loaded,
  parsed: everySplit(imported.SseParser),
  errors: errors(required.SseParser),
};
process.once("beforeExit", () => console.log(JSON.stringify({ ...report, rejections })));
