use super::*;

#[test]
fn a_field_is_found_only_at_the_top_level_and_whatever_precedes_it() {
    let data = r#"{"response":{"type":"inner","output":[{"type":"message","text":"a \"type\": b"}]},"sequence_number":3,"type":"response.completed"}"#;
    assert_eq!(json::field(data, "type"), Some("\"response.completed\""));
    assert_eq!(json::field(data, "sequence_number"), Some("3"));
    assert_eq!(json::path(data, &["response", "type"]), Some("\"inner\""));
    assert_eq!(json::field(data, "missing"), None);
    assert_eq!(
        json::field(" { \"a\" : [1, {\"b\": \"]\"}] , \"c\" : null } ", "c"),
        Some("null")
    );
    assert_eq!(json::field("{}", "a"), None);
    assert_eq!(json::field("[DONE]", "type"), None);
}

#[test]
fn cut_or_broken_json_yields_nothing_and_never_panics() {
    let data = r#"{"a":{"b":"c\"é\\"},"type":"x\u00e9","n":-1.5e3}"#;
    for end in 0..data.len() {
        if let Some(cut) = data.get(..end) {
            // A cut object never shows its last field whole.
            let _ = json::field(cut, "type");
            let _ = json::field(cut, "n");
            let _ = json::path(cut, &["a", "b"]);
        }
    }
    assert_eq!(json::field(data, "n"), Some("-1.5e3"));
    // A value cut inside a string or a container is not found.
    let type_at = data.find("\"type\"").unwrap();
    for end in type_at + 8..type_at + 16 {
        assert_eq!(json::field(&data[..end], "type"), None, "{}", &data[..end]);
    }
    assert_eq!(json::path(&data[..12], &["a", "b"]), None);
    assert_eq!(json::field(r#"{"type" "x"}"#, "type"), None);
    assert_eq!(json::field(r#"{"a":1 "type":"x"}"#, "type"), None);
}

#[test]
fn strings_decode_their_escapes_like_serde_json() {
    for text in [
        "plain",
        "quote \" back \\ slash /",
        "tab\tnew\nline\r",
        "caf\u{e9} \u{1F642}",
        "\u{1}\u{1f}",
    ] {
        let raw = serde_json::to_string(text).unwrap();
        assert_eq!(json::string(&raw).as_deref(), Some(text), "{raw}");
    }
    assert_eq!(
        json::string(r#""\ud83d\ude42 \u00e9""#).as_deref(),
        Some("\u{1F642} \u{e9}")
    );
    assert_eq!(json::string(r#""\ud83d x""#).as_deref(), Some("\u{FFFD} x"));
    assert_eq!(json::string("12"), None);
}

#[test]
fn the_path_names_its_format() {
    for (path, format) in [
        ("/v1/chat/completions", Some(Format::ChatCompletions)),
        (
            "https://openrouter.ai/api/v1/chat/completions?x=1",
            Some(Format::ChatCompletions),
        ),
        ("/v1/responses/", Some(Format::Responses)),
        ("/v1/messages", Some(Format::AnthropicMessages)),
        ("/v1/completions", None),
        ("/v1/responses/resp_1/input_items", None),
        ("", None),
    ] {
        assert_eq!(Format::from_path(path), format, "{path}");
    }
}

#[test]
fn errors_are_read_from_every_shape() {
    let cases = [
        (
            r#"{"error":{"code":429,"message":"Rate limited"}}"#,
            Some("429"),
            "Rate limited",
        ),
        (
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            Some("overloaded_error"),
            "Overloaded",
        ),
        (
            r#"{"type":"error","code":"server_error","message":"The server had an error","param":null}"#,
            Some("server_error"),
            "The server had an error",
        ),
        (
            r#"{"type":"error","code":null,"message":"m \"q\""}"#,
            None,
            "m \"q\"",
        ),
        ("upstream went away", None, "upstream went away"),
    ];
    for (data, code, message) in cases {
        let error = error_of(data);
        assert_eq!(error.code.as_deref(), code, "{data}");
        assert_eq!(error.message, message, "{data}");
    }
}

/// One event read in a stream already known to be `format`.
fn meaning(format: Format, name: Option<&str>, data: &str) -> Meaning {
    let kind = name.map(Cow::Borrowed).or_else(|| data_type(data));
    match format {
        Format::ChatCompletions => chat_event(&mut ChunkDecoder::default(), name, data),
        Format::Responses => responses_event(&kind.unwrap(), data),
        Format::AnthropicMessages => anthropic_event(&kind.unwrap(), data),
    }
}

#[test]
fn each_rule_on_events_the_fixtures_do_not_carry() {
    use Format::*;
    let finish = Meaning::Progress {
        fragment: false,
        finish: true,
    };
    let cases: [(Format, Option<&str>, &str, Meaning); 16] = [
        // Deltas of other outputs are progress but not answer text.
        (
            Responses,
            None,
            r#"{"type":"response.audio.delta","delta":"UklGRg=="}"#,
            PROGRESS,
        ),
        (
            Responses,
            None,
            r#"{"type":"response.mcp_call_arguments.delta","delta":"{"}"#,
            PROGRESS,
        ),
        (
            Responses,
            None,
            r#"{"type":"response.refusal.delta","delta":"I can't"}"#,
            FRAGMENT,
        ),
        (
            Responses,
            None,
            r#"{"type":"response.custom_tool_call_input.delta","delta":"x"}"#,
            FRAGMENT,
        ),
        (
            Responses,
            None,
            r#"{"type":"response.image_generation_call.partial_image","partial_image_b64":"iVBO"}"#,
            PROGRESS,
        ),
        // A server-side tool's item and its lifecycle are not the model's output.
        (
            Responses,
            None,
            r#"{"type":"response.output_item.added","item":{"type":"web_search_call","id":"ws_1"}}"#,
            Meaning::Nothing,
        ),
        (
            Responses,
            None,
            r#"{"type":"response.web_search_call.searching","item_id":"ws_1"}"#,
            Meaning::Nothing,
        ),
        (
            Responses,
            Some("response.output_item.added"),
            r#"{"item":{"type":"custom_tool_call","name":"x"}}"#,
            FRAGMENT,
        ),
        // Anthropic: a delta type added later, a block that starts with text, server tools.
        (
            AnthropicMessages,
            None,
            r#"{"type":"content_block_delta","delta":{"type":"citations_delta","citation":{}}}"#,
            PROGRESS,
        ),
        (
            AnthropicMessages,
            None,
            r#"{"type":"content_block_delta","delta":{"type":"text_delta"}}"#,
            Meaning::Nothing,
        ),
        (
            AnthropicMessages,
            None,
            r#"{"type":"content_block_start","content_block":{"type":"text","text":"Hi"}}"#,
            FRAGMENT,
        ),
        (
            AnthropicMessages,
            None,
            r#"{"type":"content_block_start","content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search"}}"#,
            Meaning::Nothing,
        ),
        (
            AnthropicMessages,
            None,
            r#"{"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":3}}"#,
            Meaning::Nothing,
        ),
        (
            AnthropicMessages,
            None,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#,
            finish,
        ),
        // Chat: the edge's own named events and malformed data are not chunks.
        (
            ChatCompletions,
            Some("guard"),
            r#"{"choices":[{"delta":{"content":"x"}}]}"#,
            Meaning::Nothing,
        ),
        (
            ChatCompletions,
            None,
            r#"{"choices":[{"delta":{"content":"x"}}"#,
            Meaning::Nothing,
        ),
    ];
    for (format, name, data, expected) in cases {
        assert_eq!(
            meaning(format, name, data),
            expected,
            "{format:?} {name:?} {data}"
        );
    }
}
