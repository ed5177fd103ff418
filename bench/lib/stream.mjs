// OpenRouter-shaped Server-Sent Events streams for the benchmarks, generated once into memory
// (or block by block, for streams too large to hold). Works in Node and in browsers.
//
// Every content event is a whole `chat.completion.chunk` as OpenRouter sends it (id, provider,
// model, object, created, one choice with delta, finish_reason, native_finish_reason,
// logprobs), carrying one token of text: mostly ASCII words, some multi-byte text (accents,
// CJK, emoji), newlines and quotes that JSON escapes. `: OPENROUTER PROCESSING` keepalive
// comments open the stream and recur every `keepaliveEvery` events. The stream ends with a
// finish chunk, a usage chunk and `data: [DONE]`. The same seed gives the same bytes.

/** The generation id, model and creation time every chunk carries. */
export const GENERATION_ID = "gen-1764086400-x7Kq2LmN9pRt4VwYz1Ab";
export const MODEL = "openai/gpt-4o-mini";
const CREATED = 1764086400;
const KEEPALIVE = ": OPENROUTER PROCESSING\n\n";

// Tokens as a chat model streams them: a leading space, punctuation on its own, paragraphs.
const ASCII = [
  " the", " a", " stream", " of", " tokens", " and", " to", " is", " in", " that", " it",
  " for", " with", " as", " on", " answer", " model", " guard", " deadline", " reader",
  " connection", " provider", " response", " first", " idle", " service", ",", ".", ":",
  " we", " can", " be", " this", " not", " when", " every", " time", "ing", "ed", "s",
  " Hello", " world", " JSON", " `fetch`", " (see", " below)", " -", " 42", " 2026",
];
const MULTIBYTE = [" café", " naïve", " Grüße", " 世界", " 日本語", " 🙂", " —", " →", " Привет", " ✓"];
const ESCAPED = ["\n\n", "\n", " \"quoted\"", " \\path", "\t"];

/** A small deterministic PRNG (mulberry32): the same workload every run. */
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function token(next) {
  const r = next();
  const pick = (list) => list[Math.floor(next() * list.length)];
  if (r < 0.05) return pick(MULTIBYTE);
  if (r < 0.08) return pick(ESCAPED);
  return pick(ASCII);
}

function contentEvent(text) {
  return (
    `data: {"id":"${GENERATION_ID}","provider":"OpenAI","model":"${MODEL}",` +
    `"object":"chat.completion.chunk","created":${CREATED},"choices":[{"index":0,` +
    `"delta":{"role":"assistant","content":${JSON.stringify(text)}},"finish_reason":null,` +
    `"native_finish_reason":null,"logprobs":null}]}\n\n`
  );
}

function tailEvents(completionTokens) {
  const finish =
    `data: {"id":"${GENERATION_ID}","provider":"OpenAI","model":"${MODEL}",` +
    `"object":"chat.completion.chunk","created":${CREATED},"choices":[{"index":0,` +
    `"delta":{"role":"assistant","content":""},"finish_reason":"stop",` +
    `"native_finish_reason":"stop","logprobs":null}]}\n\n`;
  const usage =
    `data: {"id":"${GENERATION_ID}","provider":"OpenAI","model":"${MODEL}",` +
    `"object":"chat.completion.chunk","created":${CREATED},"choices":[],"usage":` +
    `{"prompt_tokens":12,"completion_tokens":${completionTokens},"total_tokens":${12 + completionTokens}}}\n\n`;
  return finish + usage + "data: [DONE]\n\n";
}

/**
 * A block of whole events of about `targetBytes` (content events and keepalives only), with its
 * text and counts: the unit that {@link stream} and {@link blockStream} are made of.
 */
export function eventBlock({ targetBytes, seed = 1, keepaliveEvery = 100 }) {
  const next = random(seed);
  const parts = [];
  const texts = [];
  let length = 0;
  let events = 0;
  let comments = 0;
  while (length < targetBytes) {
    if (events % keepaliveEvery === 0) {
      parts.push(KEEPALIVE);
      length += KEEPALIVE.length;
      comments += 1;
    }
    const text = token(next);
    const event = contentEvent(text);
    parts.push(event);
    texts.push(text);
    length += event.length; // close enough for sizing; the exact size is the encoded one
    events += 1;
  }
  const bytes = new TextEncoder().encode(parts.join(""));
  return { bytes, text: texts.join(""), events, comments };
}

/** The opening of every stream: three keepalives, as OpenRouter sends while it queues. */
export const HEAD = new TextEncoder().encode(KEEPALIVE.repeat(3));

/** The end of a stream of `events` content events: finish, usage, `[DONE]` (3 events). */
export function tail(events) {
  return new TextEncoder().encode(tailEvents(events));
}

/**
 * A whole stream of about `targetBytes`, in memory: `{ bytes, text, events }` where `text` is
 * the answer it carries and `events` the number of events (`data:` dispatches) in it.
 */
export function stream({ targetBytes, seed = 1 }) {
  const block = eventBlock({ targetBytes, seed });
  const end = tail(block.events);
  const bytes = new Uint8Array(HEAD.length + block.bytes.length + end.length);
  bytes.set(HEAD, 0);
  bytes.set(block.bytes, HEAD.length);
  bytes.set(end, HEAD.length + block.bytes.length);
  return { bytes, text: block.text, events: block.events + 3 };
}

/**
 * A stream made on the fly: `HEAD`, then `repeats` copies of `block.bytes`, then the tail, cut
 * into fresh `chunkSize` arrays as it is read. Nothing of it is kept once read.
 * Returns `{ next(): Uint8Array | null, totalBytes }`.
 */
export function blockStream(block, repeats, chunkSize = 64 * 1024) {
  const end = tail(block.events * repeats);
  const totalBytes = HEAD.length + block.bytes.length * repeats + end.length;
  let position = 0; // over the whole stream
  return {
    totalBytes,
    next() {
      if (position >= totalBytes) return null;
      const size = Math.min(chunkSize, totalBytes - position);
      const chunk = new Uint8Array(size);
      let filled = 0;
      while (filled < size) {
        const at = position + filled;
        let source;
        let offset;
        if (at < HEAD.length) {
          source = HEAD;
          offset = at;
        } else if (at < HEAD.length + block.bytes.length * repeats) {
          source = block.bytes;
          offset = (at - HEAD.length) % block.bytes.length;
        } else {
          source = end;
          offset = at - HEAD.length - block.bytes.length * repeats;
        }
        const count = Math.min(size - filled, source.length - offset);
        chunk.set(source.subarray(offset, offset + count), filled);
        filled += count;
      }
      position += size;
      return chunk;
    },
  };
}
