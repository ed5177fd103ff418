//! The chat-chunk decoder against the shapes OpenRouter and other OpenAI-compatible servers send.

#![cfg(not(target_arch = "wasm32"))]

use llm_stream_guard::core::chunk::{
    decode_body, decode_event_data, Chunk, Decoded, MalformedKind, ToolCallDelta, UpstreamError,
    Usage,
};
use proptest::prelude::*;
use std::borrow::Cow;

fn chunk(data: &str) -> Chunk<'_> {
    match decode_event_data(data) {
        Decoded::Chunk(c) => c,
        other => panic!("expected a chunk, got {other:?}"),
    }
}

#[test]
fn a_content_delta_is_progress_and_borrows_its_text() {
    let data = r#"{"id":"gen-1","object":"chat.completion.chunk","created":1,"model":"m/x","provider":"P","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}"#;
    let c = chunk(data);
    assert_eq!(c.content.as_deref(), Some("Hel"));
    assert!(
        matches!(c.content, Some(Cow::Borrowed(_))),
        "no escapes, no copy"
    );
    assert_eq!(c.id.as_deref(), Some("gen-1"));
    assert_eq!(c.model.as_deref(), Some("m/x"));
    assert!(c.is_progress());
    assert!(!c.is_finish());
    assert!(!c.is_error());
}

#[test]
fn escapes_are_decoded() {
    let c = chunk(r#"{"choices":[{"delta":{"content":"line\nnext \"q\" \u00e9 \ud83c\udf99"}}]}"#);
    assert_eq!(c.content.as_deref(), Some("line\nnext \"q\" é 🎙"));
}

#[test]
fn role_only_and_empty_deltas_are_not_progress() {
    for data in [
        r#"{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":null,"reasoning":null,"tool_calls":null}}]}"#,
        r#"{"choices":[{"index":0,"delta":{}}]}"#,
        r#"{"choices":[]}"#,
        r#"{}"#,
    ] {
        let c = chunk(data);
        assert!(!c.is_progress(), "{data}");
    }
}

#[test]
fn reasoning_under_either_name_is_progress() {
    let a = chunk(r#"{"choices":[{"delta":{"content":"","reasoning":"Let me think"}}]}"#);
    assert_eq!(a.reasoning.as_deref(), Some("Let me think"));
    assert!(a.is_progress());
    let b = chunk(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#);
    assert_eq!(b.reasoning.as_deref(), Some("hmm"));
    assert!(b.is_progress());
}

#[test]
fn tool_call_fragments_are_decoded_in_order() {
    let first = chunk(
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"ci"}}]}}]}"#,
    );
    assert_eq!(
        first.tool_calls,
        [ToolCallDelta {
            index: 0,
            id: Some("call_1".into()),
            name: Some("get_weather".into()),
            arguments: Some("{\"ci".into()),
        }]
    );
    assert!(first.is_progress());
    let next = chunk(
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]}}]}"#,
    );
    assert_eq!(
        next.tool_calls[0].arguments.as_deref(),
        Some("ty\":\"Paris\"}")
    );
    assert_eq!(next.tool_calls[0].name, None);
    let end = chunk(r#"{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#);
    assert!(end.is_finish());
}

#[test]
fn a_finish_chunk_is_progress_and_carries_its_reason() {
    let c = chunk(
        r#"{"choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop","native_finish_reason":"end_turn"}]}"#,
    );
    assert!(c.is_progress());
    assert!(c.is_finish());
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
}

#[test]
fn usage_in_a_final_chunk_with_empty_choices() {
    let c = chunk(
        r#"{"id":"gen-1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"cost":0.00042,"prompt_tokens_details":{"cached_tokens":0}}}"#,
    );
    assert_eq!(
        c.usage,
        Some(Usage {
            prompt_tokens: 9,
            completion_tokens: 12,
            total_tokens: 21
        })
    );
    assert!(c.is_progress());
    assert!(!c.is_finish());
}

#[test]
fn a_top_level_mid_stream_error_with_a_numeric_code() {
    let c = chunk(
        r#"{"id":"gen-1","object":"chat.completion.chunk","error":{"code":502,"message":"Provider returned error","metadata":{"provider_name":"Mock"}},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error","native_finish_reason":"error"}]}"#,
    );
    assert_eq!(
        c.error,
        Some(UpstreamError {
            code: Some("502".into()),
            message: "Provider returned error".into(),
        })
    );
    assert_eq!(c.finish_reason.as_deref(), Some("error"));
    assert!(c.is_error());
    assert!(!c.is_finish(), "finish_reason error is not a normal finish");
}

#[test]
fn an_error_inside_the_choice_with_a_string_code() {
    let c = chunk(
        r#"{"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error","error":{"code":"server_error","message":"upstream failed"}}]}"#,
    );
    let error = c.error.clone().expect("choice error decoded");
    assert_eq!(error.code.as_deref(), Some("server_error"));
    assert_eq!(error.message, "upstream failed");
    assert!(c.is_error());
}

#[test]
fn finish_reason_error_alone_is_an_error() {
    let c = chunk(r#"{"choices":[{"delta":{"content":""},"finish_reason":"error"}]}"#);
    assert!(c.error.is_none());
    assert!(c.is_error());
}

#[test]
fn fields_the_guard_does_not_read_are_skipped_whatever_they_hold() {
    // `object`, `created`, `native_finish_reason`, `logprobs` and an error's `metadata` are
    // skipped as unknown fields are: any value, given any number of times, changes nothing.
    let c = chunk(
        r#"{"object":5,"object":{"a":[1,"\ud800"]},"created":"soon","id":"gen-2","choices":[{"native_finish_reason":[],"native_finish_reason":7,"logprobs":{"content":[]},"delta":{"content":"kept"},"finish_reason":"stop"}],"error":{"metadata":1e999,"metadata":null,"code":"c","message":"m"}}"#,
    );
    assert_eq!(c.id.as_deref(), Some("gen-2"));
    assert_eq!(c.content.as_deref(), Some("kept"));
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        c.error,
        Some(UpstreamError {
            code: Some("c".into()),
            message: "m".into(),
        })
    );
}

#[test]
fn the_done_sentinel_with_or_without_surrounding_space() {
    assert_eq!(decode_event_data("[DONE]"), Decoded::Done);
    assert_eq!(decode_event_data(" [DONE] \n"), Decoded::Done);
    assert!(matches!(decode_event_data("[DONE"), Decoded::Malformed(_)));
}

#[test]
fn a_whole_non_streaming_completion() {
    let body = r#"{"id":"gen-9","object":"chat.completion","created":1,"model":"m/x","choices":[{"index":0,"message":{"role":"assistant","content":"The whole answer."},"finish_reason":"stop","native_finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;
    let Decoded::Chunk(c) = decode_body(body) else {
        panic!("not a chunk")
    };
    assert_eq!(c.id.as_deref(), Some("gen-9"));
    assert_eq!(c.model.as_deref(), Some("m/x"));
    assert_eq!(c.content.as_deref(), Some("The whole answer."));
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    assert_eq!(c.usage.map(|u| u.total_tokens), Some(7));
    assert!(c.is_finish());
}

#[test]
fn a_non_streaming_answer_with_tool_calls() {
    let body = r#"{"object":"chat.completion","choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#;
    let Decoded::Chunk(c) = decode_body(body) else {
        panic!("not a chunk")
    };
    assert_eq!(c.content, None);
    assert_eq!(c.tool_calls.len(), 1);
    assert_eq!(c.tool_calls[0].index, 0, "a missing index is the position");
    assert_eq!(c.tool_calls[0].id.as_deref(), Some("call_9"));
}

#[test]
fn an_http_error_body() {
    let Decoded::Chunk(c) =
        decode_body(r#"{"error":{"code":429,"message":"Rate limit exceeded","metadata":{}}}"#)
    else {
        panic!("not a chunk")
    };
    assert_eq!(
        c.error.as_ref().map(|e| e.message.as_str()),
        Some("Rate limit exceeded")
    );
    assert!(c.is_error());
    assert!(!c.is_progress());
}

#[test]
fn malformed_payloads_are_classified_not_panicked_on() {
    let cases = [
        (r#"{"id":"gen-mock", "choices": ["#, MalformedKind::Syntax),
        ("not json", MalformedKind::Syntax),
        (
            r#"{"choices":[{"delta":{"content":5}}]}"#,
            MalformedKind::Shape,
        ),
        (r#"{"choices":{"0":{}}}"#, MalformedKind::Shape),
        ("42", MalformedKind::Shape),
        (r#"["a"]"#, MalformedKind::Shape),
        ("", MalformedKind::Empty),
        ("   ", MalformedKind::Empty),
    ];
    for (data, kind) in cases {
        match decode_event_data(data) {
            Decoded::Malformed(m) => {
                assert_eq!(m.kind, kind, "{data:?}");
                assert!(!m.to_string().is_empty());
            }
            other => panic!("{data:?} decoded as {other:?}"),
        }
    }
    let Decoded::Malformed(m) = decode_event_data("{\n  \"a\": tru }") else {
        panic!()
    };
    assert_eq!((m.line, m.kind), (2, MalformedKind::Syntax), "{m}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    /// No input makes the decoder panic, and a chunk built from any text decodes back to it.
    #[test]
    fn never_panics_and_round_trips_any_text(noise in ".{0,64}", text in any::<String>()) {
        let _ = decode_event_data(&noise);
        let _ = decode_body(&noise);
        let json = serde_json::json!({"choices":[{"index":0,"delta":{"content": text}}]}).to_string();
        let c = chunk(&json);
        prop_assert_eq!(c.content.as_deref(), Some(text.as_str()));
        prop_assert_eq!(c.is_progress(), !text.is_empty());
    }
}
