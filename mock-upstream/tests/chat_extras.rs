//! The chat-completions extras: `usage=asked` (the usage chunk only when the request asks for
//! it), `logprobs-annotations` (OpenAI's chunk shape, byte for byte) and `continue`.

mod common;

use common::*;
use mock_upstream::*;
use serde_json::{json, Value};

fn path(scenario: &str, query: &str) -> String {
    format!("/scenario/{scenario}/v1/chat/completions?{query}")
}

/// A chat body with these messages, optionally asking for usage.
fn chat(model: &str, messages: Value, include_usage: Option<bool>) -> String {
    let mut v = json!({"model": model, "messages": messages, "stream": true});
    if let Some(asked) = include_usage {
        v["stream_options"] = json!({"include_usage": asked});
    }
    v.to_string()
}

fn hi(include_usage: Option<bool>) -> String {
    chat(
        "m",
        json!([{"role": "user", "content": "hi"}]),
        include_usage,
    )
}

/// The data of every event, as text (`[DONE]` included).
async fn datas(server: &Running, target: &str, body: &str) -> Vec<String> {
    let (head, bytes) = post_all(server.addr, target, body).await;
    assert_eq!(head.status, 200, "{target}");
    parse_sse(&String::from_utf8(bytes).unwrap())
        .into_iter()
        .map(|e| e.data)
        .collect()
}

/// Whether a chunk is the usage chunk (`choices: []` and a usage object).
fn is_usage(data: &str) -> bool {
    serde_json::from_str::<Value>(data)
        .is_ok_and(|v| v["choices"] == json!([]) && v["usage"].is_object())
}

#[tokio::test]
async fn usage_asked_sends_the_usage_chunk_only_when_the_request_asks() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let q = "usage=asked&size=100&n=5";
    for name in [
        "normal",
        "tool-calls",
        "long",
        "huge-line",
        "malformed-event",
        "reasoning-then-content",
    ] {
        for (asked, expected) in [(None, 0), (Some(false), 0), (Some(true), 1)] {
            let d = datas(&server, &path(name, q), &hi(asked)).await;
            let n = d.iter().filter(|d| is_usage(d)).count();
            assert_eq!(n, expected, "{name} with include_usage {asked:?}");
            assert_eq!(d.last().unwrap(), "[DONE]", "{name}");
            if expected == 1 {
                assert!(
                    is_usage(&d[d.len() - 2]),
                    "{name}: usage comes just before [DONE]"
                );
            }
        }
        // The default is unchanged: always.
        let d = datas(&server, &path(name, "size=100&n=5"), &hi(None)).await;
        assert_eq!(
            d.iter().filter(|d| is_usage(d)).count(),
            1,
            "{name} by default"
        );
    }
    // multibyte-crlf writes CRLF line ends.
    for (asked, expected) in [(None, false), (Some(true), true)] {
        let (_, bytes) = post_all(
            server.addr,
            &path("multibyte-crlf", "usage=asked"),
            &hi(asked),
        )
        .await;
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text.contains("\"choices\":[],\"usage\""),
            expected,
            "{text}"
        );
    }
    let (head, bytes) = post_all(server.addr, &path("normal", "usage=sometimes"), &hi(None)).await;
    assert_eq!(head.status, 400);
    assert!(String::from_utf8(bytes).unwrap().contains("usage"));
}

#[tokio::test]
async fn logprobs_annotations_chunks_are_openai_shaped_byte_for_byte() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let d = datas(&server, &path("logprobs-annotations", "tag=lp"), &hi(None)).await;
    let rec = closed_record(&server.ledger, "lp").await;
    let n = pieces(DEFAULT_TEXT).len();
    // Role chunk, one chunk per piece, annotation, finish, [DONE].
    assert_eq!(d.len(), n + 4);
    assert_eq!(d[n + 3], "[DONE]");
    let chunks: Vec<Value> = d[..n + 3]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    let created = chunks[0]["created"].as_u64().unwrap();
    assert_eq!(
        d[0],
        format!(
            "{{\"id\":\"chatcmpl-mock-{}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\
             \"model\":\"m\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock0001\",\
             \"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\
             \"refusal\":null,\"annotations\":[]}},\"logprobs\":{{\"content\":[],\"refusal\":null}},\
             \"finish_reason\":null}}]}}",
            rec.id
        )
    );
    assert_eq!(
        d[1],
        format!(
            "{{\"id\":\"chatcmpl-mock-{}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\
             \"model\":\"m\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock0001\",\
             \"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"Hello \"}},\"logprobs\":{{\"content\":\
             [{{\"token\":\"Hello \",\"logprob\":-0.31725305,\"bytes\":[72,101,108,108,111,32],\
             \"top_logprobs\":[{{\"token\":\"Hello \",\"logprob\":-0.31725305,\"bytes\":\
             [72,101,108,108,111,32]}}]}}],\"refusal\":null}},\"finish_reason\":null}}]}}",
            rec.id
        )
    );
    for c in &chunks {
        assert!(c.get("usage").is_none(), "no usage field unless asked: {c}");
        assert_eq!(c["object"], "chat.completion.chunk");
    }
    let mut text = String::new();
    for (i, c) in chunks[1..=n].iter().enumerate() {
        let piece = c["choices"][0]["delta"]["content"].as_str().unwrap();
        let lp = &c["choices"][0]["logprobs"]["content"][0];
        assert_eq!(lp["token"], piece);
        assert_eq!(lp["bytes"], json!(piece.as_bytes()));
        let expected: f64 = LOGPROBS[i % LOGPROBS.len()].parse().unwrap();
        assert_eq!(lp["logprob"].as_f64(), Some(expected));
        assert!(c["choices"][0]["logprobs"]["refusal"].is_null());
        text.push_str(piece);
    }
    assert_eq!(text, DEFAULT_TEXT);
    // The numbers keep OpenAI's spelling, which a parse and re-serialise would change: a
    // pass-through compared byte for byte can tell.
    assert!(d[2].contains("\"logprob\":-1.9361265e-07"), "{}", d[2]);
    for s in &d[..n + 3] {
        let reserialised =
            serde_json::to_string(&serde_json::from_str::<Value>(s).unwrap()).unwrap();
        assert_ne!(
            &reserialised, s,
            "this chunk would survive a re-serialisation unchanged"
        );
    }
    let annotation = &chunks[n + 1]["choices"][0]["delta"];
    assert_eq!(annotation["content"], "");
    assert_eq!(
        annotation["annotations"],
        json!([{"type": "url_citation", "url_citation": {"url": CITATION_URL, "title": CITATION_TITLE,
                "start_index": 0, "end_index": DEFAULT_TEXT.chars().count()}}])
    );
    let finish = &chunks[n + 2]["choices"][0];
    assert_eq!(finish["finish_reason"], "stop");
    assert_eq!(finish["delta"], json!({}));
    assert!(finish["logprobs"].is_null());
}

#[tokio::test]
async fn logprobs_annotations_with_usage_asked() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let body = hi(Some(true));
    let d = datas(&server, &path("logprobs-annotations", ""), &body).await;
    let n = pieces(DEFAULT_TEXT).len();
    assert_eq!(d.len(), n + 5);
    for s in &d[..n + 3] {
        let v: Value = serde_json::from_str(s).unwrap();
        assert!(
            v["usage"].is_null() && v.get("usage").is_some(),
            "usage: null on every chunk: {s}"
        );
        assert!(s.ends_with("],\"usage\":null}"), "{s}");
    }
    let usage: Value = serde_json::from_str(&d[n + 3]).unwrap();
    assert_eq!(usage["choices"], json!([]));
    let p = prompt_tokens(body.len());
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": p, "completion_tokens": n, "total_tokens": p + n as u64,
               "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                   "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}})
    );
    assert_eq!(d[n + 4], "[DONE]");
}

/// Plays `continue` with these messages and query; returns the streamed text and the ledger's
/// mode.
async fn continued(
    server: &Running,
    messages: Value,
    query: &str,
    tag: &str,
) -> (String, Option<String>) {
    let target = path("continue", &format!("tag={tag}&{query}"));
    let d = datas(server, &target, &chat("m", messages, None)).await;
    assert_eq!(d.last().unwrap(), "[DONE]");
    let payloads: Vec<Value> = d[..d.len() - 1]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
    assert_eq!(
        payloads[payloads.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    let rec = closed_record(&server.ledger, tag).await;
    (content_of(&payloads), rec.mode)
}

#[tokio::test]
async fn continue_from_a_prefill() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let prefill = |text: &str| json!([{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": text}]);
    let rest = &DEFAULT_TEXT[FIRST_THREE.len()..];
    let (text, mode) = continued(&server, prefill(FIRST_THREE), "", "p1").await;
    assert_eq!(text, rest);
    assert_eq!(mode.as_deref(), Some("prefill"));
    // Trailing whitespace trimmed from the prefill (as Anthropic requires).
    let (text, _) = continued(&server, prefill(FIRST_THREE.trim_end()), "", "p2").await;
    assert_eq!(text, format!(" {rest}"));
    // Restating the last two words: the client must remove the overlap.
    let (text, _) = continued(&server, prefill(FIRST_THREE), "restate=2", "p3").await;
    assert_eq!(text, format!("from the {rest}"));
    // A prefill that is not how the answer starts: the whole answer.
    let (text, mode) = continued(&server, prefill("Goodbye"), "", "p4").await;
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(mode.as_deref(), Some("prefill-unmatched"));
    // Content as parts, and the `text` parameter.
    let parts = json!([{"role": "assistant", "content": [{"type": "text", "text": "one "}]}]);
    let (text, mode) = continued(&server, parts, "text=one%20two%20three", "p5").await;
    assert_eq!(text, "two three");
    assert_eq!(mode.as_deref(), Some("prefill"));
}

#[tokio::test]
async fn continue_from_an_instruction() {
    let server = spawn("127.0.0.1:0").await.unwrap();
    let ask = |given: &str| {
        json!([
            {"role": "user", "content": "Say hello."},
            {"role": "user", "content": format!(
                "Your answer was cut off. Continue exactly where this text stops, without repeating it:\n\n\"{given}\"")}
        ])
    };
    let given = "Hello from the mo";
    let (text, mode) = continued(&server, ask(given), "", "i1").await;
    assert_eq!(text, &DEFAULT_TEXT[given.len()..]);
    assert_eq!(mode.as_deref(), Some("instruction"));
    let (text, _) = continued(&server, ask(given), "restate=1", "i2").await;
    assert_eq!(text, &DEFAULT_TEXT["Hello from the ".len()..]);
    let (text, _) = continued(&server, ask(given), "restate=3", "i3").await;
    assert_eq!(text, &DEFAULT_TEXT["Hello ".len()..]);
    // Asked to continue, but none of the answer given: from the start.
    let (text, mode) = continued(&server, ask("Nothing like it"), "", "i4").await;
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(mode.as_deref(), Some("instruction-unmatched"));
    // A few letters that happen to start the answer ("He" in "Here") are not the given text.
    let short = json!([{"role": "user", "content": "Here is where to continue: \"Nothing\""}]);
    let (text, mode) = continued(&server, short, "", "i7").await;
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(mode.as_deref(), Some("instruction-unmatched"));
    // A short answer given whole is matched.
    let whole = json!([{"role": "user", "content": "Continue after \"Hi\""}]);
    let (text, mode) = continued(&server, whole, "text=Hi", "i8").await;
    assert_eq!((text.as_str(), mode.as_deref()), ("", Some("instruction")));
    // A plain question: the whole answer.
    let fresh = json!([{"role": "user", "content": "Hello from the mock?"}]);
    let (text, mode) = continued(&server, fresh, "", "i5").await;
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(mode.as_deref(), Some("fresh"));
    // Multi-byte text, cut inside the words.
    let given = "Grüße, 世";
    let (text, _) = continued(
        &server,
        ask(given),
        &format!("text={}", "Gr%C3%BC%C3%9Fe,%20%E4%B8%96%E7%95%8C!"),
        "i6",
    )
    .await;
    assert_eq!(text, "界!");
}

#[test]
fn longest_prefix_in_finds_where_the_given_text_stops() {
    assert_eq!(
        longest_prefix_in("Hello world", "say \"Hello wo\" please"),
        8
    );
    assert_eq!(longest_prefix_in("Hello world", "no match"), 0);
    assert_eq!(longest_prefix_in("Hello", "Hello world"), 5);
    assert_eq!(longest_prefix_in("", "anything"), 0);
    // Character boundaries: 'é' is two bytes.
    assert_eq!(longest_prefix_in("café au lait", "…café…"), "café".len());
    let (mode, answer) = continuation_of(&json!([]), "abc", 0);
    assert_eq!((mode.as_str(), answer.as_str()), ("fresh", "abc"));
    let (mode, answer) = continuation_of(&json!("not a list"), "abc", 5);
    assert_eq!((mode.as_str(), answer.as_str()), ("fresh", "abc"));
}
