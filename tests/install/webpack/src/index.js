// webpack's default entry: the README's first example (example.js, written by install.test.mjs), then the report.
import * as lib from "llm-stream-guard";
import { result } from "./example.js";
import { describe } from "./report.js";

document.getElementById("report").textContent = JSON.stringify(await describe(lib, result));
document.getElementById("status").textContent = "done";
