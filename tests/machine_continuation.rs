//! Continuation in the generation machine, on a fake clock: an answer cut after text is
//! continued by the next provider (prefill or instruction), what the continuation repeats is
//! never handed out, the result is whole and says where it was continued, nothing is lost when
//! the continuation fails, never after a tool-call fragment, and every deadline still holds.

#![cfg(not(target_arch = "wasm32"))]

mod machine_support;

use llm_stream_guard::core::events::GuardEvent;
use llm_stream_guard::core::guard::continuation::INSTRUCTION;
use llm_stream_guard::core::guard::overlap::MIN_OVERLAP_CHARS;
use llm_stream_guard::core::machine::{
    AttemptId, CancelReason, Delivery, GuardSettings, ProviderConfig,
};
use machine_support::*;

const CUT: &str = "The cat sat on the";

fn continuing(providers: Vec<ProviderConfig>) -> Driver {
    let c = config(providers);
    let mut d = Driver::guarded(c, continuation_on());
    d.start(0.0);
    d.head(10.0, sse_head());
    d
}

/// `a` sends [`CUT`] and then goes quiet until its idle deadline (200 ms): the cut.
fn cut_by_idle(names: &[&str]) -> Driver {
    let mut d = continuing(names.iter().map(|n| provider(n)).collect());
    d.bytes(20.0, &(content("The cat ") + &content("sat on the")));
    assert_eq!(d.wake(), 220.0, "the idle deadline");
    d
}

fn messages(body: &str) -> Vec<serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    value["messages"].as_array().unwrap().clone()
}

/// Every piece of text handed out, in order.
fn pieces(d: &Driver) -> Vec<String> {
    d.heard
        .iter()
        .filter_map(|h| match h {
            Delivery::Text { text, .. } => Some(text.clone()),
            Delivery::Event(_) => None,
        })
        .collect()
}

#[test]
fn an_idle_cut_is_continued_by_the_next_provider_without_the_repeat() {
    let mut d = cut_by_idle(&["a", "b"]);
    assert_eq!(d.sent.len(), 2, "b is asked to continue");
    let request = &d.sent[1];
    assert_eq!(request.provider, 1);
    let m = messages(&request.body);
    assert_eq!(m.len(), 2);
    assert_eq!(m[0]["content"], "hi");
    assert_eq!(m[1]["role"], "user");
    assert_eq!(m[1]["content"], format!("{INSTRUCTION}\n\n{CUT}"));
    let event = d
        .events()
        .into_iter()
        .find(|e| e.type_name() == "continuation")
        .cloned();
    assert_eq!(
        event,
        Some(GuardEvent::Continuation {
            from: "a".into(),
            to: "b".into(),
            chars: CUT.chars().count() as f64,
            reason: "timeout".into()
        })
    );
    d.head(230.0, sse_head());
    d.bytes(240.0, &content(" on"));
    d.bytes(250.0, &content(" the"));
    assert_eq!(pieces(&d).concat(), CUT, "a possible repeat is held back");
    d.bytes(
        260.0,
        &(content(" mat") + &content(".") + &finish("stop") + DONE),
    );
    let result = d.result();
    assert_eq!(d.result_text(), "The cat sat on the mat.");
    assert!(!result.partial && result.cause.is_none());
    assert_eq!(result.provider, "b");
    assert_eq!(
        result.text.attempt,
        AttemptId(0),
        "every piece under a's id"
    );
    let continuation = result.continuation.clone().unwrap();
    assert_eq!(
        (
            continuation.from.as_str(),
            continuation.chars,
            continuation.mode
        ),
        ("a", 18, "instruction")
    );
    assert_eq!(
        pieces(&d),
        ["The cat ", "sat on the", " mat", "."],
        "no repeated piece is handed out"
    );
    let log: Vec<_> = result
        .attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(log, [("a", "partial"), ("b", "complete")]);
    assert_eq!(d.types().last(), Some(&"done"));
    d.assert_over_and_released();
}

#[test]
fn a_provider_that_continues_an_assistant_message_gets_the_text_as_prefill() {
    let mut claude = provider("b");
    claude.model = "anthropic/claude-sonnet-4".into();
    let mut d = continuing(vec![provider("a"), claude]);
    d.bytes(20.0, &content("Grüße aus Köln"));
    d.read_error(30.0, "connection reset");
    let m = messages(&d.sent[1].body);
    assert_eq!(m.len(), 2, "no instruction: {m:?}");
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(m[1]["content"], "Grüße aus Köln");
    d.head(40.0, sse_head());
    d.bytes(50.0, &(content("aus Köln") + &content(" und Bonn") + DONE));
    assert_eq!(d.result_text(), "Grüße aus Köln und Bonn");
    let c = d.result().continuation.clone().unwrap();
    assert_eq!((c.chars, c.mode), (14, "prefill"));
    assert!(pieces(&d).iter().all(|p| !p.contains("aus Köln und")));
}

#[test]
fn every_kind_of_cut_after_text_is_continued() {
    type Cut = fn(&mut Driver);
    let cuts: [(&str, Cut); 4] = [
        ("network", |d| d.read_error(30.0, "reset")),
        ("network", |d| d.end(30.0)),
        ("upstream", |d| {
            d.bytes(30.0, &upstream_error(502, "overloaded"))
        }),
        ("timeout", |d| {
            // The stream limit (2 000 ms) while it keeps sending.
            let mut t = 100.0;
            while !d.sent.iter().any(|r| r.provider == 1) {
                d.bytes(t, &content("."));
                t += 150.0;
                d.wake_at(t.min(2_000.0));
            }
        }),
    ];
    for (kind, cut) in cuts {
        let mut d = continuing(vec![provider("a"), provider("b")]);
        d.bytes(20.0, &content("Once upon"));
        cut(&mut d);
        assert_eq!(d.sent.len(), 2, "{kind}: continued");
        let reason = d.events().into_iter().find_map(|e| match e {
            GuardEvent::Continuation { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        assert_eq!(reason.as_deref(), Some(kind));
        let now = d.now;
        d.head(now + 1.0, sse_head());
        d.bytes(now + 2.0, &(content(" a time") + DONE));
        assert!(d.result_text().ends_with(" a time"), "{kind}");
        assert!(d.result_text().starts_with("Once upon"), "{kind}");
        assert!(!d.result().partial, "{kind}");
    }
}

#[test]
fn never_after_a_tool_call_fragment() {
    let mut d = continuing(vec![provider("a"), provider("b")]);
    let fragment = format!(
        "data: {}\n\n",
        serde_json::json!({"id": "x", "choices": [{"index": 0, "delta": {
            "content": "Let me look.",
            "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": "search", "arguments": "{\"q\":"}}]
        }, "finish_reason": null}]})
    );
    d.bytes(20.0, &fragment);
    d.read_error(30.0, "reset");
    assert_eq!(d.sent.len(), 1, "no continuation");
    let result = d.result();
    assert!(result.partial);
    assert_eq!(d.result_text(), "Let me look.");
    assert_eq!(result.tool_calls.len(), 1);
    assert!(result.continuation.is_none());
    assert!(!d.types().contains(&"continuation"));
}

#[test]
fn a_request_without_messages_is_not_continued() {
    let mut c = config(vec![provider("a"), provider("b")]);
    c.body_without_model = r#"{"prompt":"hi","stream":true}"#.into();
    let mut d = Driver::guarded(c, continuation_on());
    d.start(0.0);
    d.head(10.0, sse_head());
    d.bytes(20.0, &content("half"));
    d.read_error(30.0, "reset");
    assert_eq!(d.sent.len(), 1);
    assert!(d.result().partial);
    assert_eq!(d.result_text(), "half");
}

#[test]
fn without_the_option_a_cut_answer_resolves_partial_as_before() {
    let mut d = Driver::started(&["a", "b"]);
    d.head(10.0, sse_head());
    d.bytes(20.0, &content("half"));
    d.read_error(30.0, "reset");
    assert_eq!(d.sent.len(), 1);
    assert!(d.result().partial && d.result().continuation.is_none());
}

#[test]
fn a_failed_continuation_loses_nothing() {
    let mut b = provider("b");
    b.max_retries = 0;
    let mut d = continuing(vec![provider("a"), b]);
    d.bytes(20.0, &content("Half an answer"));
    d.read_error(30.0, "reset");
    d.head(40.0, head(503, "application/json"));
    d.bytes(41.0, r#"{"error":{"message":"busy"}}"#);
    d.end(42.0);
    let result = d.result();
    assert!(result.partial);
    assert_eq!(d.result_text(), "Half an answer");
    assert_eq!(result.provider, "a");
    assert_eq!(result.cause.as_ref().unwrap().kind, "network");
    assert!(result.continuation.is_none(), "nothing was added");
    let log: Vec<_> = result.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(log, ["partial", "http"]);
    assert_eq!(
        d.events().last(),
        Some(&&GuardEvent::Done {
            provider: "a".into(),
            partial: true,
            elapsed_ms: 42.0
        })
    );
}

#[test]
fn a_cut_continuation_is_continued_again_by_the_provider_after_it() {
    let mut d = continuing(vec![provider("a"), provider("b"), provider("c")]);
    d.bytes(20.0, &content("One, two,"));
    d.read_error(30.0, "reset");
    d.head(40.0, sse_head());
    d.bytes(50.0, &content(" two, three,"));
    d.read_error(60.0, "reset");
    assert_eq!(d.sent.len(), 3);
    let m = messages(&d.sent[2].body);
    assert_eq!(
        m[1]["content"],
        format!("{INSTRUCTION}\n\nOne, two, three,"),
        "the whole text so far"
    );
    d.head(70.0, sse_head());
    d.bytes(80.0, &(content(" three, four.") + DONE));
    assert_eq!(d.result_text(), "One, two, three, four.");
    let c = d.result().continuation.clone().unwrap();
    assert_eq!(
        (c.from.as_str(), c.chars),
        ("a", 9),
        "where it was first cut"
    );
    assert_eq!(d.result().provider, "c");
}

#[test]
fn the_service_deadline_holds_across_the_continuation() {
    let mut c = config(vec![provider("a"), provider("b")]);
    c.service_ms = 400.0;
    let mut d = Driver::guarded(c, continuation_on());
    d.start(0.0);
    d.head(10.0, sse_head());
    d.bytes(20.0, &content("Some"));
    d.read_error(30.0, "reset");
    d.head(40.0, sse_head());
    d.bytes(50.0, &content(" more"));
    // b goes quiet; its idle deadline (250) comes first, but there is no one left: the cut
    // answer with what b added resolves partial.
    let at = d.wake();
    assert!(at <= 400.0);
    let result = d.result();
    assert!(result.partial);
    assert_eq!(d.result_text(), "Some more");
    assert!(result.stats.elapsed_ms <= 400.0);
    assert!(result.continuation.is_some(), "b added text");
    d.assert_over_and_released();

    // The service deadline itself cuts the continuation.
    let mut c = config(vec![provider("a"), provider("b")]);
    c.service_ms = 150.0;
    let mut d = Driver::guarded(c, continuation_on());
    d.start(0.0);
    d.head(10.0, sse_head());
    d.bytes(20.0, &content("Some"));
    d.read_error(30.0, "reset");
    assert_eq!(d.sent.len(), 2);
    assert_eq!(
        d.wake(),
        130.0,
        "b's headers deadline (30 + 100) is inside the service's"
    );
    let result = d.result();
    assert!(result.partial);
    assert_eq!(d.result_text(), "Some");
    assert!(result.stats.elapsed_ms <= 150.0);
}

#[test]
fn a_cancel_during_the_continuation_keeps_the_whole_text_as_partial_text() {
    let mut d = continuing(vec![provider("a"), provider("b")]);
    d.bytes(20.0, &content("Hello wor"));
    d.read_error(30.0, "reset");
    d.head(40.0, sse_head());
    d.bytes(50.0, &content("ld and"));
    d.cancel(60.0, CancelReason::Signal);
    assert_eq!(d.error().kind, "aborted");
    assert_eq!(d.partial_text(), "Hello world and");
    d.assert_over_and_released();
}

#[test]
fn a_continuation_that_only_repeats_completes_the_answer() {
    let mut d = cut_by_idle(&["a", "b"]);
    d.head(230.0, sse_head());
    d.bytes(240.0, &(content("on the") + &finish("stop") + DONE));
    assert_eq!(d.result_text(), CUT);
    assert!(!d.result().partial);
    assert!(d.result().continuation.is_some());
    assert_eq!(pieces(&d), ["The cat ", "sat on the"]);
}

/// The mock upstream's `continue` scenario (its own reading of a continuation request) answers
/// the requests the machine sends: for every cut between pieces of the mock's texts, in both
/// modes, with 0 to 3 words restated, the continued text is the mock's whole answer.
#[test]
fn the_mock_continues_what_the_machine_asks_and_the_joined_text_is_whole() {
    use mock_upstream::{continuation_of, pieces as words, DEFAULT_TEXT, MULTIBYTE_TEXT};
    let (mut checked, mut short) = (0, 0);
    for text in [DEFAULT_TEXT, MULTIBYTE_TEXT] {
        let all = words(text);
        for cut in 1..all.len() {
            let given: String = all[..cut].concat();
            if given.chars().count() < mock_upstream::MIN_GIVEN_CHARS {
                continue; // the mock needs that much quoted to find its place
            }
            for (model, expected_mode) in [
                ("openai/gpt-4o-mini", "instruction"),
                ("anthropic/claude-sonnet-4", "prefill"),
            ] {
                for restate in 0..=3 {
                    let mut b = provider("b");
                    b.model = model.into();
                    let mut d = continuing(vec![provider("a"), b]);
                    let sent: String = all[..cut].iter().map(|w| content(w)).collect();
                    d.bytes(20.0, &sent);
                    d.read_error(30.0, "reset");
                    let body: serde_json::Value = serde_json::from_str(&d.sent[1].body).unwrap();
                    let (mode, answer) = continuation_of(&body["messages"], text, restate);
                    assert_eq!(mode, expected_mode, "{given:?}");
                    d.head(40.0, sse_head());
                    let chunks: String = words(&answer).iter().map(|w| content(w)).collect();
                    d.bytes(50.0, &(chunks + &finish("stop") + DONE));
                    // What the mock restated before the rest of its answer.
                    let at = match mode.as_str() {
                        "prefill" => given.trim_end().len(),
                        _ => given.len(),
                    };
                    // It repeats that, and the whitespace a prefill was sent without.
                    let restated = &answer[..answer.len() - (text.len() - at)];
                    let repeat = restated.chars().count() + text[at..given.len()].chars().count();
                    let expected = if !restated.is_empty() && repeat < MIN_OVERLAP_CHARS {
                        // A restatement shorter than the rule's minimum is kept (documented).
                        short += 1;
                        format!("{given}{answer}")
                    } else {
                        text.to_owned()
                    };
                    assert_eq!(
                        d.result_text(),
                        expected,
                        "cut after {given:?}, {mode}, {restate} restated: {answer:?}"
                    );
                    assert!(!d.result().partial);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50 && short < checked / 10, "{checked} {short}");
}

#[test]
fn a_hedge_winner_cut_after_text_is_continued_by_the_provider_after_it() {
    let c = config(vec![provider("a"), provider("b"), provider("c")]);
    let settings = GuardSettings {
        hedge_after_ms: Some(150.0),
        continuation: true,
    };
    let mut d = Driver::guarded(c, settings);
    d.start(0.0);
    let (a, b) = (AttemptId(0), AttemptId(1));
    d.feed(a, 10.0, Input::Head(sse_head()));
    d.wake_at(150.0);
    d.feed(b, 160.0, Input::Head(sse_head()));
    d.feed(b, 170.0, Input::Bytes(content("Once upon a").into_bytes()));
    assert_eq!(d.cancelled, [a], "b won");
    d.feed(b, 180.0, Input::ReadError("reset".into()));
    assert_eq!(d.sent.len(), 3);
    assert_eq!(d.sent[2].provider, 2, "c continues b's answer");
    let id = d.last();
    d.feed(id, 190.0, Input::Head(sse_head()));
    d.feed(
        id,
        200.0,
        Input::Bytes((content("upon a time.") + DONE).into_bytes()),
    );
    assert_eq!(d.result_text(), "Once upon a time.");
    let r = d.result();
    assert_eq!((r.provider.as_str(), r.partial), ("c", false));
    assert_eq!(r.continuation.as_ref().unwrap().from, "b");
    let log: Vec<_> = r
        .attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome.as_str()))
        .collect();
    assert_eq!(log, [("a", "aborted"), ("b", "partial"), ("c", "complete")]);
    assert!(!d.types().contains(&"failover"));
    d.closed.insert(id);
    d.assert_over_and_released();
}
