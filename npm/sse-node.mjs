// `import "llm-stream-guard/sse"` in Node: the CommonJS build's export (one shared instance).
export { SseParser } from "./sse.cjs";
