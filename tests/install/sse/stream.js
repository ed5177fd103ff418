// One Server-Sent Events stream and the events the WHATWG rules dispatch from it (shared by the
// Node program and the webpack app): CRLF and CR line ends, a comment, a field without a colon,
// an event type, an id that carries over, multi-line data, multibyte text, a last unfinished
// event (discarded at the end).
export const STREAM =
  ": keepalive\r\n\r\n" +
  "data: h\u00e9llo \u4e16\u754c \ud83d\ude42\r\n\r\n" +
  "event: update\rid: 7\rdata: one\rdata:two\r\r" +
  "data\n\n" +
  "data: [DONE]\n\n" +
  "data: never dispatched";

export const EVENTS = [
  { data: "h\u00e9llo \u4e16\u754c \ud83d\ude42", event: "message" },
  { data: "one\ntwo", event: "update", id: "7" },
  { data: "", event: "message", id: "7" },
  { data: "[DONE]", event: "message", id: "7" },
];

/**
 * Parse `STREAM` with `SseParser` cut into two pushes at every byte offset (so every line end,
 * every multibyte character is split somewhere); returns the offsets whose events differ from
 * `EVENTS`, and the events of a whole push.
 */
export function everySplit(SseParser) {
  const bytes = new TextEncoder().encode(STREAM);
  const wrong = [];
  let whole;
  for (let at = 0; at <= bytes.length; at += 1) {
    // A fresh parser each time: the last event id outlives a stream's end, as the standard says.
    const parser = new SseParser();
    const events = [...parser.push(bytes.subarray(0, at)), ...parser.push(bytes.subarray(at)), ...parser.end()];
    parser.free();
    if (JSON.stringify(events) !== JSON.stringify(EVENTS)) wrong.push(at);
    if (at === bytes.length) whole = events;
  }
  return { splits: bytes.length + 1, wrong, whole };
}

/** What a bad option and an oversized event throw: `{ name, kind }` of each. */
export function errors(SseParser) {
  const seen = [];
  try {
    new SseParser({ maxEventBytes: 0 });
  } catch (error) {
    seen.push({ name: error.name, kind: error.kind });
  }
  const small = new SseParser({ maxEventBytes: 8 });
  try {
    small.push(new TextEncoder().encode("data: more than eight bytes\n\n"));
  } catch (error) {
    seen.push({ name: error.name, kind: error.kind });
  }
  small.free();
  return seen;
}
