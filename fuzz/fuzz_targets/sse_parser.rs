//! Fuzz the SSE parser and the chunk decoder: no input may panic, and the events must not
//! depend on where the input is split (the first byte picks the split points).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_stream_guard::core::chunk::decode_event_data;
use llm_stream_guard::core::sse::{SseItem, SseParser};

fn parse(pieces: &[&[u8]]) -> (Vec<SseItem>, bool) {
    let mut parser = SseParser::new(4096);
    let mut items = Vec::new();
    let mut failed = false;
    for piece in pieces {
        if parser.push(piece, &mut items).is_err() {
            failed = true;
            break;
        }
    }
    parser.end();
    (items, failed)
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else { return };
    let whole = parse(&[data]);
    let step = 1 + seed as usize % 7;
    let pieces: Vec<&[u8]> = data.chunks(step).collect();
    let split = parse(&pieces);
    if !whole.1 && !split.1 {
        assert_eq!(whole.0, split.0, "events depend on the split");
    }
    for item in &whole.0 {
        if let SseItem::Event(event) = item {
            let _ = decode_event_data(&event.data);
        }
    }
});
