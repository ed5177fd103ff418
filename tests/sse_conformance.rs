//! Conformance of the core SSE parser with the WHATWG HTML standard's event-stream rules:
//! the standard's own examples, every vector at every split point and byte by byte, and
//! property tests against a second, deliberately naive reading of the standard.

#![cfg(not(target_arch = "wasm32"))]

use llm_stream_guard::core::sse::{decode_utf8, SseError, SseItem, SseParser};
use proptest::prelude::*;
use std::borrow::Cow;

/// (event type, data, last event id) of every dispatched event, comments and retries dropped.
type Ev = (String, String, String);

fn only_events(items: &[SseItem]) -> Vec<Ev> {
    items
        .iter()
        .filter_map(|item| match item {
            SseItem::Event(e) => Some((
                e.event_type.clone(),
                e.data.clone(),
                e.last_event_id.clone(),
            )),
            _ => None,
        })
        .collect()
}

fn ev(event_type: &str, data: &str, id: &str) -> Ev {
    (event_type.to_owned(), data.to_owned(), id.to_owned())
}

/// Parse `input` pushed in the given pieces.
fn parse_pieces(pieces: &[&[u8]]) -> Vec<SseItem> {
    let mut parser = SseParser::default();
    let mut items = Vec::new();
    for piece in pieces {
        parser.push(piece, &mut items).expect("within limits");
    }
    parser.end();
    items
}

/// Every way of feeding `input`: whole, split once at every point, split twice at every pair
/// of points (for short inputs), and byte by byte. All must give `expected` items.
fn assert_all_splits(input: &[u8], expected: &[SseItem]) {
    assert_eq!(parse_pieces(&[input]), expected, "whole input");
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(parse_pieces(&[a, b]), expected, "split at {at}");
    }
    if input.len() <= 160 {
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let got = parse_pieces(&[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(got, expected, "split at {i} and {j}");
            }
        }
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(parse_pieces(&bytes), expected, "byte by byte");
}

fn assert_events(input: &[u8], expected: &[Ev]) {
    let items = parse_pieces(&[input]);
    assert_eq!(only_events(&items), expected);
    assert_all_splits(input, &items);
}

// ---- The standard's examples (HTML, §9.2.6 "Interpreting an event stream") ----

#[test]
fn spec_example_stock_ticker_joins_data_lines_with_lf() {
    // "The following event stream, once followed by a blank line: … would cause an event
    // message with the interface MessageEvent to be dispatched on the EventSource object. The
    // event's data attribute would contain the string "YHOO\n+2\n10"."
    assert_events(
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        &[ev("message", "YHOO\n+2\n10", "")],
    );
}

#[test]
fn spec_example_ids_persist_and_reset_and_the_unterminated_block_is_dropped() {
    // "The first block fires events with the data set to the string "first event". … The second
    // block has an id field with no value, so the last event ID is reset to the empty string …
    // The third block fires an event with data " third event" (with a single leading space
    // character). Note that the last still has to end with a blank line, the end of the stream
    // is not enough to trigger the dispatch of the last event."
    let input = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
    assert_events(
        input,
        &[
            ev("message", "first event", "1"),
            ev("message", "second event", ""),
            ev("message", " third event", ""),
        ],
    );
    let without_final_blank = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n";
    assert_events(
        without_final_blank,
        &[
            ev("message", "first event", "1"),
            ev("message", "second event", ""),
        ],
    );
}

#[test]
fn spec_example_empty_data_lines() {
    // "The following stream fires two events: … The first block fires events with the data set
    // to the empty string, as would the last block if it was followed by a blank line. The
    // middle block fires an event with the data set to a single newline character."
    assert_events(
        b"data\n\ndata\ndata\n\ndata:",
        &[ev("message", "", ""), ev("message", "\n", "")],
    );
}

#[test]
fn spec_example_one_optional_space_after_the_colon() {
    // "The following stream fires two identical events: … This is because the space after the
    // colon is ignored if present."
    assert_events(
        b"data:test\n\ndata: test\n\n",
        &[ev("message", "test", ""), ev("message", "test", "")],
    );
}

#[test]
fn spec_example_event_types_and_their_reset() {
    let input = b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\ndata: plain\n\n";
    assert_events(
        input,
        &[
            ev("add", "73857293", ""),
            ev("remove", "2153", ""),
            ev("add", "113411", ""),
            ev("message", "plain", ""),
        ],
    );
}

// ---- Line ends ----

#[test]
fn cr_lf_and_crlf_line_ends_are_equivalent() {
    let lf = b"event: a\ndata: 1\ndata: 2\n\ndata: 3\n\n".to_vec();
    let crlf = b"event: a\r\ndata: 1\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n".to_vec();
    let cr = b"event: a\rdata: 1\rdata: 2\r\rdata: 3\r\r".to_vec();
    let mixed = b"event: a\rdata: 1\r\ndata: 2\n\r\ndata: 3\n\r".to_vec();
    let expected = [ev("a", "1\n2", ""), ev("message", "3", "")];
    for input in [lf, crlf, cr, mixed] {
        assert_events(&input, &expected);
    }
}

#[test]
fn a_cr_ending_one_push_and_its_lf_starting_the_next_are_one_line_end() {
    let items = parse_pieces(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(only_events(&items), [ev("message", "a\nb", "")]);
    // An empty push between the CR and the LF changes nothing.
    let items = parse_pieces(&[b"data: a\r", b"", b"\n\r\n"]);
    assert_eq!(only_events(&items), [ev("message", "a", "")]);
    // But CR, CR is two line ends: a blank line dispatches.
    let items = parse_pieces(&[b"data: a\r", b"\r"]);
    assert_eq!(only_events(&items), [ev("message", "a", "")]);
}

// ---- Fields ----

#[test]
fn a_line_without_a_colon_is_a_field_with_an_empty_value() {
    assert_events(b"data\ndata\n\n", &[ev("message", "\n", "")]);
    // "event" with no colon sets an empty type, which means "message".
    assert_events(b"event: x\nevent\ndata: d\n\n", &[ev("message", "d", "")]);
}

#[test]
fn only_one_space_is_removed_and_only_a_space() {
    assert_events(
        b"data:  two\n\ndata:\ttab\n\ndata: a: b\n\n",
        &[
            ev("message", " two", ""),
            ev("message", "\ttab", ""),
            ev("message", "a: b", ""),
        ],
    );
}

#[test]
fn unknown_fields_are_ignored_and_field_names_are_case_sensitive() {
    assert_events(
        b"foo: bar\nData: no\nDATA: no\ndata: yes\nEvent: no\n\n",
        &[ev("message", "yes", "")],
    );
}

#[test]
fn an_event_without_data_is_not_dispatched_and_its_type_does_not_leak() {
    // "If the data buffer is an empty string, set the data buffer and the event type buffer to
    // the empty string and return."
    assert_events(
        b"event: lonely\n\ndata: next\n\n",
        &[ev("message", "next", "")],
    );
    assert_events(b"id: 7\n\ndata: next\n\n", &[ev("message", "next", "7")]);
}

#[test]
fn an_id_containing_null_is_ignored_and_ids_persist_until_changed() {
    assert_events(
        b"id: 1\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\nid: 9\ndata: e\n\n",
        &[
            ev("message", "a", "1"),
            ev("message", "b", "1"),
            ev("message", "c", "1"),
            ev("message", "d", ""),
            ev("message", "e", "9"),
        ],
    );
}

#[test]
fn retry_accepts_ascii_digits_only() {
    let items =
        parse_pieces(&[b"retry: 1500\nretry: 15x\nretry:\nretry: -1\nretry: 0\nretry: \xd9\xa1\n"]);
    assert_eq!(items, [SseItem::Retry(1500), SseItem::Retry(0)]);
}

#[test]
fn comments_are_surfaced_separately_and_are_not_events() {
    let input = b": OPENROUTER PROCESSING\n\n:no-space\n\ndata: x\n: inside\n\n";
    let items = parse_pieces(&[input]);
    assert_eq!(
        items,
        [
            SseItem::Comment("OPENROUTER PROCESSING".into()),
            SseItem::Comment("no-space".into()),
            SseItem::Comment("inside".into()),
            SseItem::Event(llm_stream_guard::core::sse::OwnedEvent {
                event_type: "message".into(),
                data: "x".into(),
                last_event_id: "".into(),
            }),
        ]
    );
    assert_all_splits(input, &items);
}

// ---- Decoding ----

#[test]
fn one_leading_bom_is_stripped_and_a_second_one_is_not() {
    assert_events(b"\xEF\xBB\xBFdata: a\n\n", &[ev("message", "a", "")]);
    // A second BOM is part of the first line, whose field name is then "\u{FEFF}data": ignored.
    assert_events(
        b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n",
        &[ev("message", "b", "")],
    );
    // A BOM later in the stream is data.
    assert_events(
        b"data: \xEF\xBB\xBFa\n\n",
        &[ev("message", "\u{FEFF}a", "")],
    );
}

#[test]
fn multibyte_characters_split_across_pushes_decode_intact() {
    let input = "data: Grüße, 世界 🎙️ → ✓\r\n\r\n".as_bytes();
    assert_events(input, &[ev("message", "Grüße, 世界 🎙️ → ✓", "")]);
}

#[test]
fn invalid_utf8_becomes_replacement_characters() {
    assert_events(
        b"data: a\xFFb\xF0\x9F\n\n",
        &[ev("message", "a\u{FFFD}b\u{FFFD}", "")],
    );
}

// ---- End of input ----

#[test]
fn an_unterminated_event_at_end_of_input_is_discarded() {
    let mut parser = SseParser::default();
    let items = parser.push_collect(b"data: complete\n\ndata: cut").unwrap();
    assert_eq!(only_events(&items), [ev("message", "complete", "")]);
    assert!(parser.end(), "end() reports the discarded event");
    // A terminated line without the blank line is discarded too.
    let mut parser = SseParser::default();
    assert!(parser.push_collect(b"data: cut\n").unwrap().is_empty());
    assert!(parser.end());
}

// ---- The size bound ----

#[test]
fn an_over_long_line_is_a_terminal_error_even_without_a_line_end() {
    let mut parser = SseParser::new(64);
    let mut items = Vec::new();
    parser.push(b"data: ", &mut items).unwrap();
    let err = parser.push(&[b'x'; 100], &mut items).unwrap_err();
    assert_eq!(err, SseError::EventTooLarge { limit: 64 });
    // Terminal: even a harmless push fails the same way.
    assert_eq!(parser.push(b"\n\ndata: ok\n\n", &mut items), Err(err));
    assert!(items.is_empty());
}

#[test]
fn an_event_whose_data_lines_add_up_past_the_bound_is_an_error() {
    let mut parser = SseParser::new(64);
    let line = b"data: 01234567890123456789012345678901\n"; // 32 bytes of value: a 38-byte line
    let mut items = Vec::new();
    parser.push(line, &mut items).unwrap();
    assert!(
        parser.push(line, &mut items).is_err(),
        "2 x (32 + LF) = 66 > 64"
    );
    // One byte less per line fits exactly: 2 x (31 + LF) = 64.
    let mut parser = SseParser::new(64);
    let fits = b"data: 0123456789012345678901234567890\n";
    parser.push(fits, &mut items).unwrap();
    parser.push(fits, &mut items).unwrap();
    parser.push(b"\n", &mut items).unwrap();
    assert_eq!(only_events(&items).len(), 1);
}

#[test]
fn the_bound_is_inclusive_and_resets_per_event() {
    // A data value of exactly limit-1 bytes plus its LF fits.
    let limit = 32;
    let value = "v".repeat(limit - 1);
    let input = format!("data: {value}\n\ndata: {value}\n\n");
    let mut parser = SseParser::new(limit + 6); // the line "data: " + value is limit+5 bytes
    let items = parser.push_collect(input.as_bytes()).unwrap();
    assert_eq!(only_events(&items).len(), 2);
    let mut tight = SseParser::new(limit + 4);
    assert!(
        tight.push_collect(input.as_bytes()).is_err(),
        "the line itself is over the bound"
    );
}

#[test]
fn the_default_bound_is_one_mebibyte() {
    let mut parser = SseParser::default();
    assert_eq!(parser.max_event_bytes(), 1 << 20);
    let big = vec![b'x'; (1 << 20) + 1];
    assert!(parser.push_collect(&big).is_err());
}

// ---- Property tests: any chunking, and a naive second reading of the standard ----

/// A straightforward, whole-input implementation of the standard, for comparison.
fn reference(input: &[u8]) -> Vec<SseItem> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = String::from_utf8_lossy(input);
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut current));
            }
            '\n' => lines.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    // `current` is an unterminated line: discarded at end of input.
    let (mut data, mut event_type, mut id) = (String::new(), String::new(), String::new());
    let mut out = Vec::new();
    for line in lines {
        if line.is_empty() {
            if !data.is_empty() {
                if data.ends_with('\n') {
                    data.pop();
                }
                let t = if event_type.is_empty() {
                    "message".to_string()
                } else {
                    event_type.clone()
                };
                out.push(SseItem::Event(llm_stream_guard::core::sse::OwnedEvent {
                    event_type: t,
                    data: data.clone(),
                    last_event_id: id.clone(),
                }));
            }
            data.clear();
            event_type.clear();
        } else if let Some(c) = line.strip_prefix(':') {
            out.push(SseItem::Comment(
                c.strip_prefix(' ').unwrap_or(c).to_string(),
            ));
        } else {
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "data" => {
                    data.push_str(&value);
                    data.push('\n');
                }
                "event" => event_type = value,
                "id" if !value.contains('\0') => id = value,
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    out.push(SseItem::Retry(value.parse().unwrap_or(u64::MAX)))
                }
                _ => {}
            }
        }
    }
    out
}

fn line_strategy() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        "[a-z0-9 :]{0,12}",
        Just("Grüße 世界 🎙️".to_string()),
        Just(" leading space".to_string()),
        Just("with\0null".to_string()),
        Just("123".to_string()),
        Just(String::new()),
    ];
    let field = prop_oneof![
        Just("data"),
        Just("data"),
        Just("data"),
        Just("event"),
        Just("id"),
        Just("retry"),
        Just(""),
        Just("unknown"),
    ];
    let end = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\r"[..])];
    let colon = prop_oneof![Just(": "), Just(":"), Just("")];
    prop_oneof![
        8 => (field, colon, value, end.clone()).prop_map(|(f, c, v, e)| {
            let mut line = format!("{f}{c}{v}").into_bytes();
            line.extend_from_slice(e);
            line
        }),
        3 => end.clone().prop_map(|e| e.to_vec()),
        1 => (proptest::collection::vec(any::<u8>(), 0..6), end).prop_map(|(mut noise, e)| {
            noise.extend_from_slice(e);
            noise
        }),
    ]
}

fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        proptest::collection::vec(line_strategy(), 0..40),
        "[a-z: ]{0,8}",
    )
        .prop_map(|(bom, lines, tail)| {
            let mut bytes = if bom {
                b"\xEF\xBB\xBF".to_vec()
            } else {
                Vec::new()
            };
            for line in lines {
                bytes.extend_from_slice(&line);
            }
            bytes.extend_from_slice(tail.as_bytes()); // an unterminated tail, sometimes
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn any_chunking_gives_the_events_of_the_whole_stream(
        input in stream_strategy(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let whole = parse_pieces(&[&input]);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut pieces = Vec::new();
        let mut last = 0;
        for p in points {
            pieces.push(&input[last..p]);
            last = p;
        }
        pieces.push(&input[last..]);
        prop_assert_eq!(parse_pieces(&pieces), whole);
    }

    #[test]
    fn the_parser_agrees_with_a_naive_reading_of_the_standard(input in stream_strategy()) {
        prop_assert_eq!(parse_pieces(&[&input]), reference(&input));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_agree_with_the_reference(
        input in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b'd'), any::<u8>()], 0..200),
        split in any::<prop::sample::Index>(),
    ) {
        let at = split.index(input.len() + 1);
        let (a, b) = input.split_at(at);
        prop_assert_eq!(parse_pieces(&[a, b]), reference(&input));
    }

    /// `decode_utf8` (from_utf8 and its errors) replaces exactly what `from_utf8_lossy` does:
    /// bytes biased towards UTF-8 sequences, cut and broken anywhere.
    #[test]
    fn decode_utf8_agrees_with_from_utf8_lossy(
        parts in proptest::collection::vec(prop_oneof![
            Just(&b"a"[..]), Just(&b"\xC3\xA9"[..]), Just(&b"\xE4\xB8\x96"[..]),
            Just(&b"\xF0\x9F\x99\x82"[..]), Just(&b"\xF0\x9F\x99"[..]), Just(&b"\xC3"[..]),
            Just(&b"\xED\xA0\x80"[..]), Just(&b"\xF4\x90\x80\x80"[..]), Just(&b"\xC0\x80"[..]),
            Just(&b"\x80"[..]), Just(&b"\xFF"[..]),
        ], 0..24),
        noise in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        let mut bytes: Vec<u8> = parts.concat();
        prop_assert_eq!(decode_utf8(&bytes), String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&noise);
        let decoded = decode_utf8(&bytes);
        prop_assert_eq!(&decoded, &String::from_utf8_lossy(&bytes));
        // Valid input is borrowed, not copied.
        prop_assert_eq!(matches!(decoded, Cow::Borrowed(_)), std::str::from_utf8(&bytes).is_ok());
    }
}
