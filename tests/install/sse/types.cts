// `llm-stream-guard/sse`'s types as a CommonJS module sees them (tsc, nodenext): `sse.d.cts`.
import sse = require("llm-stream-guard/sse");
import type { SseEvent } from "llm-stream-guard/sse";

const parser = new sse.SseParser({ maxEventBytes: 64 });
const events: SseEvent[] = parser.push(new Uint8Array(0));
export const used = events.length;
