// The README's first example as a CommonJS project runs it (example.js: `require` instead of
// `import`, the body in an async function; written by install.test.mjs). The report is printed
// once the event loop is empty.
const rejections = [];
process.on("unhandledRejection", (reason) => {
  rejections.push(String(reason?.stack ?? reason));
  process.exitCode = 1;
});

const lib = require("llm-stream-guard");
const { example } = require("./example.js");

example()
  .then(async (result) => {
    const { describe } = await import("./report.mjs");
    const report = await describe(lib, result);
    process.once("beforeExit", () => {
      console.log(JSON.stringify({ ...report, resolved: require.resolve("llm-stream-guard"), rejections }));
    });
  })
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
