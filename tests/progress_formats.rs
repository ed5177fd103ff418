//! The progress watcher over real-looking streams of the three formats: progress, keepalives,
//! the end, errors, cuts and format detection, at every split of the bytes.

#![cfg(not(target_arch = "wasm32"))]

use llm_stream_guard::core::progress::{End, Ending, Format, ProgressWatcher, Report};
use proptest::prelude::*;
use serde_json::{json, Value};

/// What an event of a fixture is expected to mean.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Quiet,
    Keepalive,
    Progress,
    Fragment,
    Finish,
    End(End),
}

/// A stream built event by event, each with what it should mean, so every expectation below is
/// derived from the fixture rather than written out.
#[derive(Debug, Clone, Default)]
struct Fixture {
    bytes: Vec<u8>,
    /// (offset just after the event, its kind)
    events: Vec<(usize, Kind)>,
    /// The next `sequence_number` [`Fixture::typed`] gives, in a fixture that numbers its events.
    sequence: Option<u64>,
}

impl Fixture {
    fn raw(mut self, text: &str, kind: Kind) -> Self {
        // An event counts at its blank line; a comment as soon as its own line ends.
        let counted_at = match text.strip_prefix(':') {
            Some(_) => self.bytes.len() + text.find(['\r', '\n']).unwrap() + 1,
            None => self.bytes.len() + text.len(),
        };
        self.bytes.extend_from_slice(text.as_bytes());
        self.events.push((counted_at, kind));
        self
    }

    /// `data: {json}`, with an `event:` line when `name` is given.
    fn event(self, name: Option<&str>, data: Value, kind: Kind) -> Self {
        let text = match name {
            Some(name) => format!("event: {name}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        };
        self.raw(&text, kind)
    }

    /// A fixture whose typed events carry `sequence_number` 0, 1, 2, … (as the Responses API's do).
    fn numbered() -> Self {
        Fixture {
            sequence: Some(0),
            ..Fixture::default()
        }
    }

    /// An event whose `data` has a `type` (numbered when the fixture numbers its events), with
    /// an `event:` line naming that type when `named`.
    fn typed(mut self, named: bool, mut data: Value, kind: Kind) -> Self {
        if let Some(n) = self.sequence {
            data["sequence_number"] = json!(n);
            self.sequence = Some(n + 1);
        }
        let name = data["type"].as_str().map(str::to_owned);
        self.event(name.as_deref().filter(|_| named), data, kind)
    }

    /// The offset just after the fixture's first fragment (its first text or tool-call bytes).
    fn first_fragment_end(&self) -> usize {
        let (end, _) = self
            .events
            .iter()
            .find(|(_, k)| *k == Kind::Fragment)
            .unwrap();
        *end
    }

    /// What a watcher should have concluded after the first `len` bytes.
    fn expected_after(&self, len: usize) -> Expected {
        let mut expected = Expected::default();
        for &(_, kind) in self.events.iter().filter(|(end, _)| *end <= len) {
            if expected.end.is_some() {
                break;
            }
            match kind {
                Kind::Quiet => {}
                Kind::Keepalive => expected.keepalives += 1,
                Kind::Progress => expected.progress += 1,
                Kind::Fragment => {
                    expected.progress += 1;
                    expected.fragment = true;
                }
                Kind::Finish => {
                    expected.progress += 1;
                    expected.finished = true;
                }
                Kind::End(end) => expected.end = Some(end),
            }
        }
        expected
    }

    fn expected(&self) -> Expected {
        self.expected_after(self.bytes.len())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Expected {
    progress: u64,
    keepalives: u64,
    fragment: bool,
    finished: bool,
    end: Option<End>,
}

/// Feed `bytes` cut at `cuts`; the summed per-push counts and the final state.
fn watch(
    hint: Option<Format>,
    bytes: &[u8],
    cuts: &[usize],
) -> (Expected, Report, ProgressWatcher) {
    let mut watcher = ProgressWatcher::new(hint, 0);
    let mut seen = Expected::default();
    let mut last = Report::default();
    let mut from = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
    cuts.sort_unstable();
    cuts.push(bytes.len());
    for cut in cuts {
        last = watcher.push(&bytes[from..cut]);
        seen.progress += u64::from(last.progress_events);
        seen.keepalives += u64::from(last.keepalives);
        from = cut;
    }
    seen.fragment = last.fragment_seen;
    seen.finished = last.finished;
    seen.end = last.end;
    assert_eq!(
        seen.progress,
        watcher.progress_events(),
        "per-push counts add up"
    );
    assert_eq!(
        seen.keepalives,
        watcher.keepalives(),
        "per-push keepalives add up"
    );
    (seen, last, watcher)
}

fn chat_chunk(delta: Value, finish_reason: Value) -> Value {
    json!({"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m/x","provider":"P",
           "choices":[{"index":0,"delta":delta,"finish_reason":finish_reason,"native_finish_reason":finish_reason}]})
}

/// OpenRouter-shaped chat completions: a keepalive comment, role-only and empty deltas,
/// reasoning, text with multibyte characters, a tool call in fragments, finish, usage, `[DONE]`.
fn chat() -> Fixture {
    Fixture::default()
        .raw(": OPENROUTER PROCESSING\n\n", Kind::Keepalive)
        .event(None, chat_chunk(json!({"role":"assistant","content":""}), Value::Null), Kind::Quiet)
        .raw(": OPENROUTER PROCESSING\n\n", Kind::Keepalive)
        .event(None, chat_chunk(json!({"role":"assistant","content":null,"reasoning":"Thinking "}), Value::Null), Kind::Progress)
        .event(None, chat_chunk(json!({"reasoning_content":"about it."}), Value::Null), Kind::Progress)
        .event(None, chat_chunk(json!({"content":"Caf\u{e9} "}), Value::Null), Kind::Fragment)
        .event(None, chat_chunk(json!({"content":""}), Value::Null), Kind::Quiet)
        .event(None, chat_chunk(json!({"content":"\u{1F642} ok"}), Value::Null), Kind::Fragment)
        .event(None, chat_chunk(json!({"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}), Value::Null), Kind::Fragment)
        .event(None, chat_chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}), Value::Null), Kind::Fragment)
        .event(None, chat_chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}), Value::Null), Kind::Fragment)
        .event(None, chat_chunk(json!({}), json!("tool_calls")), Kind::Finish)
        .event(None, json!({"id":"gen-1","object":"chat.completion.chunk","choices":[],
                            "usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}), Kind::Progress)
        .raw("data: [DONE]\n\n", Kind::End(End::Done))
}

fn response_object(status: &str, output: Value) -> Value {
    json!({"id":"resp_1","object":"response","created_at":1,"status":status,"model":"gpt-x",
           "output":output,"error":null,"incomplete_details":null,
           "usage":{"input_tokens":5,"output_tokens":9,"total_tokens":14}})
}

/// OpenAI Responses with `event:` lines (`named`) or without: lifecycle, a reasoning summary, a
/// keepalive, output text (one empty delta), a function call, `response.completed` whose
/// response object nests many other `"type"` fields.
fn responses(named: bool) -> Fixture {
    let message = json!({"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]});
    let call = json!({"id":"fc_1","type":"function_call","call_id":"call_1","name":"get_weather","arguments":"","status":"in_progress"});
    let reasoning = json!({"id":"rs_1","type":"reasoning","summary":[]});
    Fixture::numbered()
        .typed(named, json!({"type":"response.created","response":response_object("in_progress", json!([]))}), Kind::Quiet)
        .typed(named, json!({"type":"response.in_progress","response":response_object("in_progress", json!([]))}), Kind::Quiet)
        .typed(named, json!({"type":"response.output_item.added","output_index":0,"item":reasoning}), Kind::Quiet)
        .typed(named, json!({"type":"response.reasoning_summary_part.added","item_id":"rs_1","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}}), Kind::Quiet)
        .typed(named, json!({"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":0,"delta":"Weighing the options"}), Kind::Progress)
        .typed(named, json!({"type":"keepalive"}), Kind::Keepalive)
        .typed(named, json!({"type":"response.reasoning_summary_text.done","item_id":"rs_1","output_index":0,"summary_index":0,"text":"Weighing the options"}), Kind::Quiet)
        .typed(named, json!({"type":"response.output_item.added","output_index":1,"item":message}), Kind::Quiet)
        .typed(named, json!({"type":"response.content_part.added","item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}), Kind::Quiet)
        .typed(named, json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":"Caf\u{e9} \u{1F642}","logprobs":[]}), Kind::Fragment)
        .typed(named, json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":"","logprobs":[]}), Kind::Quiet)
        .raw(": keep the connection\n\n", Kind::Keepalive)
        .typed(named, json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":" with \"quotes\"","logprobs":[]}), Kind::Fragment)
        .typed(named, json!({"type":"response.output_text.done","item_id":"msg_1","output_index":1,"content_index":0,"text":"Caf\u{e9} \u{1F642} with \"quotes\"","logprobs":[]}), Kind::Quiet)
        .typed(named, json!({"type":"response.output_item.added","output_index":2,"item":call}), Kind::Fragment)
        .typed(named, json!({"type":"response.function_call_arguments.delta","item_id":"fc_1","output_index":2,"delta":"{\"city\":\"Paris\"}"}), Kind::Fragment)
        .typed(named, json!({"type":"response.function_call_arguments.done","item_id":"fc_1","output_index":2,"arguments":"{\"city\":\"Paris\"}"}), Kind::Quiet)
        .typed(named, json!({"type":"response.output_item.done","output_index":2,"item":call}), Kind::Quiet)
        .typed(named, json!({"type":"response.completed","response":response_object("completed", json!([reasoning, message, call]))}), Kind::End(End::Completed))
}

/// Anthropic Messages: thinking with its signature, pings, text, a tool use whose input starts
/// empty, `message_delta` with the stop reason, `message_stop`.
fn anthropic() -> Fixture {
    let usage = json!({"input_tokens":25,"output_tokens":1});
    Fixture::default()
        .typed(true, json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":usage}}), Kind::Quiet)
        .typed(true, json!({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}), Kind::Quiet)
        .typed(true, json!({"type":"ping"}), Kind::Keepalive)
        .typed(true, json!({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me see."}}), Kind::Progress)
        .typed(true, json!({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}), Kind::Progress)
        .typed(true, json!({"type":"content_block_stop","index":0}), Kind::Quiet)
        .typed(true, json!({"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}), Kind::Quiet)
        .typed(true, json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Caf\u{e9} \u{1F642}"}}), Kind::Fragment)
        .typed(true, json!({"type":"ping"}), Kind::Keepalive)
        .typed(true, json!({"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":""}}), Kind::Quiet)
        .typed(true, json!({"type":"content_block_stop","index":1}), Kind::Quiet)
        .typed(true, json!({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}), Kind::Fragment)
        .typed(true, json!({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}), Kind::Quiet)
        .typed(true, json!({"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Paris\"}"}}), Kind::Fragment)
        .typed(true, json!({"type":"content_block_stop","index":2}), Kind::Quiet)
        .typed(true, json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}), Kind::Finish)
        .typed(true, json!({"type":"message_stop"}), Kind::End(End::MessageStop))
}

fn fixtures() -> Vec<(&'static str, Option<Format>, Format, Fixture)> {
    vec![
        (
            "chat",
            Some(Format::ChatCompletions),
            Format::ChatCompletions,
            chat(),
        ),
        (
            "responses",
            Some(Format::Responses),
            Format::Responses,
            responses(true),
        ),
        (
            "responses without event names",
            None,
            Format::Responses,
            responses(false),
        ),
        (
            "anthropic",
            Some(Format::AnthropicMessages),
            Format::AnthropicMessages,
            anthropic(),
        ),
    ]
}

#[test]
fn each_format_whole_gives_its_progress_keepalives_fragments_and_end() {
    for (name, hint, format, fixture) in fixtures() {
        let expected = fixture.expected();
        assert!(
            expected.progress > 2 && expected.keepalives > 0 && expected.fragment,
            "{name}"
        );
        assert!(expected.end.is_some(), "{name}: the fixture ends");
        let (seen, report, mut watcher) = watch(hint, &fixture.bytes, &[]);
        assert_eq!(seen, expected, "{name}");
        assert_eq!(report.format, Some(format), "{name}");
        assert_eq!(watcher.detected_format(), Some(format), "{name}");
        assert!(
            !report.upstream_error && !report.too_large && report.is_over(),
            "{name}"
        );
        // Every event of the fixture but its comment lines is dispatched, and none after the end.
        assert_eq!(
            watcher.events() as usize,
            fixture.events.len() - comments(&fixture),
            "{name}"
        );
        assert_eq!(
            watcher.end_of_body(),
            Ending::Ended(expected.end.unwrap()),
            "{name}"
        );
    }
}

/// How many of a fixture's keepalives are comment lines (not dispatched as events).
fn comments(fixture: &Fixture) -> usize {
    let text = String::from_utf8_lossy(&fixture.bytes);
    text.lines().filter(|line| line.starts_with(':')).count()
}

#[test]
fn one_byte_at_a_time_gives_the_same_as_whole() {
    for (name, hint, _, fixture) in fixtures() {
        let cuts: Vec<usize> = (1..fixture.bytes.len()).collect();
        let (seen, _, _) = watch(hint, &fixture.bytes, &cuts);
        assert_eq!(seen, fixture.expected(), "{name}");
    }
}

#[test]
fn a_stream_cut_anywhere_before_its_end_marker_is_cut_and_knows_what_it_saw() {
    for (name, hint, _, fixture) in fixtures() {
        let (end_offset, _) = *fixture.events.last().unwrap();
        for len in 0..=fixture.bytes.len() {
            let (seen, _, mut watcher) = watch(hint, &fixture.bytes[..len], &[len / 2]);
            let expected = fixture.expected_after(len);
            assert_eq!(seen, expected, "{name} cut at {len}");
            let ending = watcher.end_of_body();
            if len >= end_offset {
                assert_eq!(
                    ending,
                    Ending::Ended(expected.end.unwrap()),
                    "{name} at {len}"
                );
            } else {
                assert_eq!(ending, Ending::Cut, "{name} cut at {len}");
                assert_eq!(
                    watcher.fragment_seen(),
                    expected.fragment,
                    "{name} cut at {len}"
                );
            }
        }
    }
}

#[test]
fn nothing_after_the_end_marker_counts() {
    for (name, hint, _, fixture) in fixtures() {
        let mut bytes = fixture.bytes.clone();
        bytes.extend_from_slice(chat().bytes.as_slice());
        bytes.extend_from_slice(b"event: error\ndata: {\"error\":{\"message\":\"late\"}}\n\n");
        let (seen, report, _) = watch(hint, &bytes, &[fixture.bytes.len() + 3]);
        assert_eq!(seen, fixture.expected(), "{name}");
        assert!(!report.upstream_error, "{name}");
    }
}

#[test]
fn chat_errors_mid_stream_after_text_are_reported_with_their_message() {
    let fixture = chat();
    let text_end = fixture.first_fragment_end();
    let mut bytes = fixture.bytes[..text_end].to_vec();
    let error = json!({"id":"gen-1","object":"chat.completion.chunk","error":{"code":502,"message":"Provider returned error: sk-or-v1-abc"},
                       "choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]});
    bytes.extend_from_slice(format!("data: {error}\n\n").as_bytes());
    bytes.extend_from_slice(b"data: [DONE]\n\n");
    let (_, report, mut watcher) = watch(None, &bytes, &[text_end + 5]);
    assert!(report.upstream_error && report.fragment_seen && report.end.is_none());
    let reported = watcher.error().unwrap();
    assert_eq!(reported.code.as_deref(), Some("502"));
    assert_eq!(
        reported.message, "Provider returned error: sk-or-v1-abc",
        "unredacted: callers redact"
    );
    assert_eq!(watcher.end_of_body(), Ending::UpstreamError);

    // `finish_reason: "error"` alone, and an `event: error` with text data.
    for (data, message) in [
        (
            format!("data: {}\n\n", chat_chunk(json!({}), json!("error"))),
            None,
        ),
        (
            "event: error\ndata: upstream timed out\n\n".to_owned(),
            Some("upstream timed out"),
        ),
    ] {
        let (_, report, watcher) = watch(Some(Format::ChatCompletions), data.as_bytes(), &[]);
        assert!(report.upstream_error && !report.fragment_seen, "{data}");
        if let Some(message) = message {
            assert_eq!(watcher.error().unwrap().message, message);
        }
    }
}

#[test]
fn responses_errors_and_failures_are_reported() {
    let cases = [
        (
            json!({"type":"error","code":"server_error","message":"The server had an error while processing your request.","param":null,"sequence_number":4}),
            Some("server_error"),
            "The server had an error while processing your request.",
        ),
        (
            json!({"type":"error","error":{"type":"invalid_request_error","code":"context_length_exceeded","message":"Too long"},"sequence_number":2}),
            Some("context_length_exceeded"),
            "Too long",
        ),
        (
            json!({"type":"response.failed","sequence_number":9,"response":{"id":"resp_1","type":"x","status":"failed","output":[],
                "error":{"code":"rate_limit_exceeded","message":"Slow down"}}}),
            Some("rate_limit_exceeded"),
            "Slow down",
        ),
    ];
    let start = responses(true);
    let text_end = start.first_fragment_end();
    for (data, code, message) in cases {
        for named in [true, false] {
            let mut bytes = start.bytes[..text_end].to_vec();
            let name = data["type"].as_str().unwrap();
            let event = match named {
                true => format!("event: {name}\ndata: {data}\n\n"),
                false => format!("data: {data}\n\n"),
            };
            bytes.extend_from_slice(event.as_bytes());
            let (_, report, mut watcher) = watch(None, &bytes, &[]);
            assert!(
                report.upstream_error && report.fragment_seen && report.end.is_none(),
                "{event}"
            );
            let error = watcher.error().unwrap();
            assert_eq!(
                (error.code.as_deref(), error.message.as_str()),
                (code, message),
                "{event}"
            );
            assert_eq!(watcher.end_of_body(), Ending::UpstreamError);
        }
    }
}

#[test]
fn an_incomplete_response_is_an_end_not_an_error() {
    let fixture = responses(true);
    let (last_start, _) = fixture.events[fixture.events.len() - 2];
    let mut bytes = fixture.bytes[..last_start].to_vec();
    let data = json!({"type":"response.incomplete","sequence_number":30,"response":response_object("incomplete", json!([]))});
    bytes.extend_from_slice(format!("event: response.incomplete\ndata: {data}\n\n").as_bytes());
    let (_, report, mut watcher) = watch(None, &bytes, &[]);
    assert_eq!(report.end, Some(End::Incomplete));
    assert!(!report.upstream_error);
    assert_eq!(watcher.end_of_body(), Ending::Ended(End::Incomplete));
}

#[test]
fn anthropic_errors_are_reported_with_their_type() {
    let fixture = anthropic();
    let text_end = fixture.first_fragment_end();
    let mut bytes = fixture.bytes[..text_end].to_vec();
    bytes.extend_from_slice(b"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n");
    let (_, report, mut watcher) = watch(None, &bytes, &[text_end + 7]);
    assert!(report.upstream_error && report.fragment_seen);
    assert_eq!(report.format, Some(Format::AnthropicMessages));
    let error = watcher.error().unwrap();
    assert_eq!(
        (error.code.as_deref(), error.message.as_str()),
        (Some("overloaded_error"), "Overloaded")
    );
    assert_eq!(watcher.end_of_body(), Ending::UpstreamError);
}

#[test]
fn an_error_before_any_other_event_is_reported_in_any_format() {
    let error = r#"{"error":{"message":"no capacity","code":503}}"#;
    let named = format!(": hello\n\nevent: error\ndata: {error}\n\n");
    let bare = format!(": hello\n\ndata: {error}\n\n");
    for body in [named, bare] {
        for hint in [
            None,
            Some(Format::ChatCompletions),
            Some(Format::Responses),
            Some(Format::AnthropicMessages),
        ] {
            let (seen, report, mut watcher) = watch(hint, body.as_bytes(), &[]);
            assert!(report.upstream_error, "{hint:?} {body}");
            assert_eq!(seen.progress, 0);
            assert_eq!(watcher.detected_format(), None, "an error names no format");
            assert_eq!(report.format, hint);
            let error = watcher.error().unwrap();
            assert_eq!(
                (error.code.as_deref(), error.message.as_str()),
                (Some("503"), "no capacity")
            );
            assert_eq!(watcher.end_of_body(), Ending::UpstreamError);
        }
    }
}

#[test]
fn the_format_is_detected_from_the_first_decisive_event_whatever_the_hint() {
    for (name, _, format, fixture) in fixtures() {
        for hint in [
            None,
            Some(Format::ChatCompletions),
            Some(Format::Responses),
            Some(Format::AnthropicMessages),
        ] {
            let mut watcher = ProgressWatcher::new(hint, 0);
            assert_eq!(watcher.format(), hint);
            // Leading comments decide nothing.
            let mut at = 0;
            for &(end, kind) in &fixture.events {
                let is_comment = fixture.bytes[at] == b':';
                let report = watcher.push(&fixture.bytes[at..end]);
                at = end;
                if is_comment {
                    assert_eq!(report.format, hint, "{name}: a comment decides nothing");
                    assert_eq!(kind, Kind::Keepalive);
                } else {
                    break;
                }
            }
            assert_eq!(
                watcher.detected_format(),
                Some(format),
                "{name} hinted {hint:?}"
            );
            watcher.push(&fixture.bytes[at..]);
            assert_eq!(
                watcher.report().end,
                fixture.expected().end,
                "{name} hinted {hint:?}"
            );
            assert_eq!(
                watcher.progress_events(),
                fixture.expected().progress,
                "{name} hinted {hint:?}"
            );
        }
    }
}

#[test]
fn an_oversized_event_stops_the_watch_and_says_so() {
    let fixture = chat();
    let mut watcher = ProgressWatcher::new(None, 64);
    let report = watcher.push(&fixture.bytes);
    assert!(report.too_large && report.is_over());
    assert_eq!(watcher.end_of_body(), Ending::TooLarge);
    // The same stream within the bound is read whole.
    let mut watcher = ProgressWatcher::new(None, 4096);
    assert!(!watcher.push(&fixture.bytes).too_large);
    assert_eq!(watcher.end_of_body(), Ending::Ended(End::Done));
}

/// Events that are never progress in `format`: keepalives and the quiet events of the
/// fixtures, plus generated variants.
fn never_progress(format: Format) -> Vec<(String, Kind)> {
    let fixture = match format {
        Format::ChatCompletions => chat(),
        Format::Responses => responses(true),
        Format::AnthropicMessages => anthropic(),
    };
    let mut from = 0;
    let mut out = Vec::new();
    for &(end, kind) in &fixture.events {
        if matches!(kind, Kind::Quiet | Kind::Keepalive) {
            out.push((
                String::from_utf8(fixture.bytes[from..end].to_vec()).unwrap(),
                kind,
            ));
        }
        from = end;
    }
    out.push((":\n\n".into(), Kind::Keepalive));
    out.push((
        ": ping - 2026-12-02 20:00:00\r\n\r\n".into(),
        Kind::Keepalive,
    ));
    out
}

fn interleaving() -> impl Strategy<Value = (Format, Vec<prop::sample::Index>, Vec<usize>)> {
    (
        prop_oneof![
            Just(Format::ChatCompletions),
            Just(Format::Responses),
            Just(Format::AnthropicMessages)
        ],
        proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        proptest::collection::vec(0usize..4000, 0..12),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn any_split_of_any_stream_gives_the_same_report(
        which in 0usize..4,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        let (name, hint, _, fixture) = fixtures().swap_remove(which);
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(fixture.bytes.len() + 1)).collect();
        let (seen, _, mut watcher) = watch(hint, &fixture.bytes, &cuts);
        prop_assert_eq!(seen, fixture.expected(), "{}", name);
        prop_assert_eq!(watcher.end_of_body(), Ending::Ended(fixture.expected().end.unwrap()));
    }

    #[test]
    fn keepalives_and_empty_events_never_make_progress((format, picks, cuts) in interleaving()) {
        let pool = never_progress(format);
        let chosen: Vec<&(String, Kind)> = picks.iter().map(|p| p.get(&pool)).collect();
        let bytes: Vec<u8> = chosen.iter().flat_map(|(text, _)| text.bytes()).collect();
        let keepalives = chosen.iter().filter(|(_, kind)| *kind == Kind::Keepalive).count() as u64;
        for hint in [None, Some(format)] {
            let (seen, report, mut watcher) = watch(hint, &bytes, &cuts);
            prop_assert_eq!(seen.progress, 0);
            prop_assert_eq!(seen.keepalives, keepalives);
            prop_assert!(!report.fragment_seen && !report.finished && !report.is_over());
            prop_assert_eq!(watcher.end_of_body(), Ending::Cut);
        }
    }
}

/// Event names the watcher reads specially, and a few it does not.
const NAMES: [&str; 14] = [
    "message",
    "error",
    "ping",
    "keepalive",
    "message_start",
    "content_block_start",
    "content_block_delta",
    "message_delta",
    "message_stop",
    "response.output_text.delta",
    "response.output_item.added",
    "response.failed",
    "response.completed",
    "guard",
];

/// Data that looks like the formats' JSON, mangled: fragments glued at random.
fn json_ish() -> impl Strategy<Value = String> {
    const PIECES: [&str; 22] = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"type\":",
        "\"delta\":",
        "\"error\":",
        "\"message\":",
        "\"content_block\":",
        "\"choices\":",
        "\"\\\"",
        "\"\\ud83d\"",
        "null",
        "\"",
        "\\",
        " ",
        "\u{e9}",
        "\"text_delta\"",
        "\"tool_use\"",
        "\"\"",
    ];
    proptest::collection::vec(0..PIECES.len(), 0..24)
        .prop_map(|picks| picks.into_iter().map(|i| PIECES[i]).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn mangled_events_never_panic_and_the_report_stays_consistent(
        events in proptest::collection::vec((0usize..NAMES.len(), json_ish()), 1..12),
        hint in prop_oneof![Just(None), Just(Some(Format::ChatCompletions)), Just(Some(Format::Responses)), Just(Some(Format::AnthropicMessages))],
    ) {
        let mut bytes = Vec::new();
        for (name, data) in &events {
            bytes.extend_from_slice(format!("event: {}\ndata: {}\n\n", NAMES[*name], data).as_bytes());
        }
        let (whole, report, mut watcher) = watch(hint, &bytes, &[]);
        let (split, _, _) = watch(hint, &bytes, &(1..bytes.len()).step_by(7).collect::<Vec<_>>());
        prop_assert_eq!(whole, split);
        prop_assert!(watcher.events() <= events.len() as u64);
        prop_assert!(watcher.progress_events() <= watcher.events());
        prop_assert!(!(report.end.is_some() && report.upstream_error), "one way to stop");
        let ending = watcher.end_of_body();
        prop_assert_eq!(ending == Ending::UpstreamError, report.upstream_error);
        prop_assert_eq!(matches!(ending, Ending::Ended(_)), report.end.is_some());
    }
}
