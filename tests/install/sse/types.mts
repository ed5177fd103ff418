// `llm-stream-guard/sse`'s types as an ES module sees them (tsc, nodenext, no skipLibCheck): the
// class, and the option, event and error types shared with the main entry.
import { SseParser, type SseEvent, type SseParserOptions, type GuardError } from "llm-stream-guard/sse";
import type { SseEvent as MainSseEvent } from "llm-stream-guard";

const options: SseParserOptions = { maxEventBytes: 1024 };
const parser = new SseParser(options);
const events: SseEvent[] = parser.push(new Uint8Array([100, 97, 116, 97, 58, 10, 10]));
const same: MainSseEvent[] = events;
const kind: GuardError["kind"] | undefined = undefined;
export const used = [same.length, parser.end().length, kind];
// @ts-expect-error: the entry has SseParser alone
import { generate } from "llm-stream-guard/sse";
export { generate };
