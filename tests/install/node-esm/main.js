// The README's first example (example.js, written by install.test.mjs with the mock upstream's
// URLs) as an ES module project runs it; the report is printed once the event loop is empty, so
// a timer or socket left behind would keep the process alive and fail the test by its timeout.
const rejections = [];
process.on("unhandledRejection", (reason) => {
  rejections.push(String(reason?.stack ?? reason));
  process.exitCode = 1;
});

const { createRequire } = await import("node:module");
const lib = await import("llm-stream-guard");
const { result } = await import("./example.js");
const { describe } = await import("./report.js");
const report = await describe(lib, result);
// `import` and `require` share one instance of the module.
const shared = lib.generate === createRequire(import.meta.url)("llm-stream-guard").generate;
process.once("beforeExit", () => {
  console.log(JSON.stringify({ ...report, resolved: import.meta.resolve("llm-stream-guard"), shared, rejections }));
});
