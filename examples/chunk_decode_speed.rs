//! Native throughput of the chat-chunk decoder on OpenRouter-shaped chunks.
//!
//! The payloads are the `data` of the events `bench/lib/stream.mjs` generates (the same token
//! mix, the same chunk fields), decoded one by one with `decode_event_data`. Prints the median
//! of several passes over the same payloads in MB/s (MB = 10^6 bytes of payload).
//!
//! ```text
//! cargo run --release --example chunk_decode_speed              # 26 MB, 7 passes
//! cargo run --release --example chunk_decode_speed -- 3 1       # 3 MB, 1 pass (for callgrind;
//! cargo run --release --example chunk_decode_speed -- 3 0       #  minus this, which only makes them)
//! ```

use llm_stream_guard::core::chunk::{decode_event_data, Decoded};
use std::hint::black_box;
use std::time::Instant;

const GENERATION_ID: &str = "gen-1764086400-x7Kq2LmN9pRt4VwYz1Ab";
const MODEL: &str = "openai/gpt-4o-mini";

#[rustfmt::skip]
const ASCII: &[&str] = &[
    " the", " a", " stream", " of", " tokens", " and", " to", " is", " in", " that", " it",
    " for", " with", " as", " on", " answer", " model", " guard", " deadline", " reader",
    " connection", " provider", " response", " first", " idle", " service", ",", ".", ":",
    " we", " can", " be", " this", " not", " when", " every", " time", "ing", "ed", "s",
    " Hello", " world", " JSON", " `fetch`", " (see", " below)", " -", " 42", " 2026",
];
#[rustfmt::skip]
const MULTIBYTE: &[&str] = &[
    " café", " naïve", " Grüße", " 世界", " 日本語", " 🙂", " —", " →", " Привет", " ✓",
];
const ESCAPED: &[&str] = &["\\n\\n", "\\n", " \\\"quoted\\\"", " \\\\path", "\\t"];

/// xorshift64: the same seed gives the same payloads.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One token's JSON string body (already escaped).
fn token(random: &mut Random) -> &'static str {
    let r = random.below(100);
    let list = if r < 5 {
        MULTIBYTE
    } else if r < 8 {
        ESCAPED
    } else {
        ASCII
    };
    list[random.below(list.len())]
}

fn content_chunk(text: &str) -> String {
    format!(
        "{{\"id\":\"{GENERATION_ID}\",\"provider\":\"OpenAI\",\"model\":\"{MODEL}\",\
         \"object\":\"chat.completion.chunk\",\"created\":1764086400,\"choices\":[{{\"index\":0,\
         \"delta\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"finish_reason\":null,\
         \"native_finish_reason\":null,\"logprobs\":null}}]}}"
    )
}

fn payloads(target_bytes: usize) -> Vec<String> {
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    let (mut out, mut bytes) = (Vec::new(), 0);
    while bytes < target_bytes {
        let chunk = content_chunk(token(&mut random));
        bytes += chunk.len();
        out.push(chunk);
    }
    out.push(format!(
        "{{\"id\":\"{GENERATION_ID}\",\"provider\":\"OpenAI\",\"model\":\"{MODEL}\",\
         \"object\":\"chat.completion.chunk\",\"created\":1764086400,\"choices\":[{{\"index\":0,\
         \"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":\"stop\",\
         \"native_finish_reason\":\"stop\",\"logprobs\":null}}]}}"
    ));
    out.push(format!(
        "{{\"id\":\"{GENERATION_ID}\",\"provider\":\"OpenAI\",\"model\":\"{MODEL}\",\
         \"object\":\"chat.completion.chunk\",\"created\":1764086400,\"choices\":[],\"usage\":\
         {{\"prompt_tokens\":12,\"completion_tokens\":{n},\"total_tokens\":{t}}}}}",
        n = out.len(),
        t = out.len() + 12
    ));
    out.push("[DONE]".into());
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let megabytes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(26);
    let passes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let data = payloads(megabytes * 1_000_000);
    let total: usize = data.iter().map(String::len).sum();
    let mut rates = Vec::new();
    for _ in 0..passes {
        let start = Instant::now();
        let mut text = 0usize;
        for payload in &data {
            match decode_event_data(black_box(payload)) {
                Decoded::Chunk(chunk) => text += chunk.content.map_or(0, |c| c.len()),
                Decoded::Done => text += 1,
                Decoded::Malformed(m) => panic!("{m} in {payload}"),
            }
        }
        black_box(text);
        rates.push(total as f64 / 1e6 / start.elapsed().as_secs_f64());
    }
    if rates.is_empty() {
        // Zero passes: only the payloads are made (a baseline for instruction counts).
        println!(
            "{} payloads, {:.1} MB, not decoded",
            data.len(),
            total as f64 / 1e6
        );
        return;
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "{} payloads, {:.1} MB: median {:.0} MB/s over {passes} passes (min {:.0}, max {:.0})",
        data.len(),
        total as f64 / 1e6,
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    );
}
