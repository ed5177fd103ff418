//! An attempt's answer assembled from bytes, with a fake clock: progress, deadlines, outcomes.

#![cfg(not(target_arch = "wasm32"))]

use llm_stream_guard::core::answer::{
    classify_response, AnswerReader, AnswerSink, BodyKind, Outcome, Stop,
};
use llm_stream_guard::core::chunk::Malformed;
use llm_stream_guard::core::deadline::{AttemptDeadlines, Layer, Phase, Timeouts};
use llm_stream_guard::core::policy::Failure;

#[derive(Default)]
struct Heard {
    texts: Vec<String>,
    first: Option<f64>,
    malformed: usize,
    side: Vec<(String, String)>,
}

impl AnswerSink for Heard {
    fn text(&mut self, delta: &str) {
        self.texts.push(delta.to_owned());
    }
    fn first_progress(&mut self, ms: f64) {
        self.first = Some(ms);
    }
    fn malformed(&mut self, _m: Malformed, _bytes: usize) {
        self.malformed += 1;
    }
    fn side_event(&mut self, event_type: &str, data: &str) {
        self.side.push((event_type.to_owned(), data.to_owned()));
    }
}

fn limits() -> Timeouts {
    Timeouts {
        headers_ms: 100.0,
        first_token_ms: 300.0,
        idle_ms: 200.0,
        stream_ms: 2_000.0,
        service_ms: 5_000.0,
    }
}

fn content(text: &str) -> String {
    format!(
        "data: {}\n\n",
        serde_json::json!({"id":"gen-7","model":"m/x","choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]})
    )
}

const FINISH: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n";
const USAGE: &str = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3,\"total_tokens\":5}}\n\n";
const DONE: &str = "data: [DONE]\n\n";
const KEEPALIVE: &str = ": OPENROUTER PROCESSING\n\n";

struct Run {
    reader: AnswerReader,
    deadlines: AttemptDeadlines,
    heard: Heard,
}

impl Run {
    fn sse() -> Run {
        Run {
            reader: AnswerReader::new(BodyKind::EventStream, 1 << 20),
            deadlines: AttemptDeadlines::start(0.0, limits(), 5_000.0),
            heard: Heard::default(),
        }
    }
    fn push(&mut self, bytes: &str, now: f64) -> Option<Stop> {
        self.reader
            .push(bytes.as_bytes(), now, &mut self.deadlines, &mut self.heard)
    }
    fn end(&mut self, now: f64) -> Stop {
        self.reader.end(now, &mut self.deadlines, &mut self.heard)
    }
}

#[test]
fn a_normal_stream_is_complete_with_text_usage_and_ids() {
    let mut run = Run::sse();
    assert_eq!(run.push(&content("Hel"), 40.0), None);
    assert_eq!(run.push(&(content("lo") + FINISH + USAGE), 60.0), None);
    assert_eq!(run.push(DONE, 70.0), Some(Stop::Done));
    let answer = &run.reader.answer;
    assert_eq!(answer.text, "Hello");
    assert_eq!(run.heard.texts, ["Hel", "lo"]);
    assert_eq!(run.heard.first, Some(40.0));
    assert_eq!(answer.finish_reason.as_deref(), Some("stop"));
    assert_eq!(answer.usage.map(|u| u.total_tokens), Some(5));
    assert_eq!(answer.chunk_id.as_deref(), Some("gen-7"));
    assert_eq!(answer.content_chunks, 2);
    assert_eq!(answer.outcome(&Stop::Done), Outcome::Complete);
    assert_eq!(run.reader.lines(), 10);
}

#[test]
fn keepalives_are_bytes_not_progress() {
    let mut run = Run::sse();
    for t in [50.0, 100.0, 150.0, 250.0] {
        assert_eq!(run.push(KEEPALIVE, t), None);
    }
    assert_eq!(run.reader.answer.comments, 4);
    // Headers arrived (bytes did), but the first-token deadline still stands at 300.
    let due = run.deadlines.next();
    assert_eq!(
        (due.layer, due.phase, due.due),
        (Layer::Provider, Phase::FirstToken, 300.0)
    );
    let expired = run.deadlines.check(300.0).expect("first-token passed");
    let stop = Stop::Failed(Failure::Timeout(expired));
    assert_eq!(
        run.reader.answer.outcome(&stop),
        Outcome::Failed(Failure::Timeout(expired))
    );
}

#[test]
fn keepalives_after_text_do_not_reset_idle_and_the_answer_is_partial() {
    let mut run = Run::sse();
    run.push(&content("Partial "), 50.0);
    run.push(&content("answer"), 80.0);
    run.push(KEEPALIVE, 200.0);
    run.push(KEEPALIVE, 270.0);
    let expired = run.deadlines.check(280.0).expect("idle passed at 80 + 200");
    assert_eq!((expired.phase, expired.due), (Phase::Idle, 280.0));
    let outcome = run
        .reader
        .answer
        .outcome(&Stop::Failed(Failure::Timeout(expired)));
    assert_eq!(outcome, Outcome::Partial(Failure::Timeout(expired)));
    assert_eq!(run.reader.answer.text, "Partial answer");
}

#[test]
fn text_moved_out_as_it_arrives_still_makes_the_answer_partial_or_complete() {
    // The browser edge empties `text` after every read (it keeps the text on its side).
    let mut run = Run::sse();
    run.push(&content("Partial "), 50.0);
    let moved = std::mem::take(&mut run.reader.answer.text);
    run.push(&content("answer"), 80.0);
    let moved = moved + &std::mem::take(&mut run.reader.answer.text);
    assert_eq!(moved, "Partial answer");
    assert_eq!(run.reader.answer.text_bytes(), "Partial answer".len());
    let expired = run.deadlines.check(280.0).expect("idle passed at 80 + 200");
    let outcome = run
        .reader
        .answer
        .outcome(&Stop::Failed(Failure::Timeout(expired)));
    assert_eq!(outcome, Outcome::Partial(Failure::Timeout(expired)));
    assert_eq!(run.push(DONE, 90.0), Some(Stop::Done));
    assert_eq!(run.reader.answer.outcome(&Stop::Done), Outcome::Complete);
}

#[test]
fn reasoning_is_progress_but_not_text() {
    let mut run = Run::sse();
    run.push(
        "data: {\"choices\":[{\"delta\":{\"reasoning\":\"thinking\"}}]}\n\n",
        120.0,
    );
    assert_eq!(run.heard.first, Some(120.0));
    assert_eq!(run.deadlines.next().phase, Phase::Idle);
    assert_eq!(run.reader.answer.reasoning_bytes(), 8);
    assert!(run.heard.texts.is_empty());
}

#[test]
fn nothing_after_done_counts() {
    let mut run = Run::sse();
    let stop = run.push(&(content("a") + DONE + &content("extra")), 10.0);
    assert_eq!(stop, Some(Stop::Done));
    assert_eq!(run.reader.answer.text, "a");
    assert_eq!(run.push(&content("more"), 20.0), Some(Stop::Done));
    assert_eq!(run.heard.texts, ["a"]);
}

#[test]
fn a_malformed_event_is_counted_and_skipped() {
    let mut run = Run::sse();
    run.push(
        &(content("a")
            + "data: {\"id\":\"gen\", \"choices\": [\n\n"
            + &content("b")
            + FINISH
            + DONE),
        10.0,
    );
    assert_eq!(run.reader.answer.text, "ab");
    assert_eq!((run.reader.answer.malformed, run.heard.malformed), (1, 1));
}

#[test]
fn mid_stream_errors_before_and_after_text() {
    let error = "data: {\"error\":{\"code\":502,\"message\":\"Provider returned error\"},\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"error\"}]}\n\n";
    let mut before = Run::sse();
    let stop = before.push(error, 10.0).expect("an error stops reading");
    assert_eq!(stop, Stop::Failed(Failure::Upstream));
    assert_eq!(
        before.reader.answer.outcome(&stop),
        Outcome::Failed(Failure::Upstream)
    );
    assert_eq!(
        before.reader.answer.error.as_ref().map(|e| e.1.as_str()),
        Some("Provider returned error")
    );

    let mut after = Run::sse();
    after.push(&content("some"), 10.0);
    let stop = after.push(error, 20.0).unwrap();
    assert_eq!(
        after.reader.answer.outcome(&stop),
        Outcome::Partial(Failure::Upstream)
    );
}

#[test]
fn end_of_body_without_done_is_cut_unless_finished() {
    let mut cut = Run::sse();
    cut.push(&content("half"), 10.0);
    let stop = cut.end(20.0);
    assert_eq!(stop, Stop::EndOfBody);
    assert_eq!(
        cut.reader.answer.outcome(&stop),
        Outcome::Partial(Failure::Network)
    );

    let mut finished = Run::sse();
    finished.push(&(content("whole") + FINISH), 10.0);
    let stop = finished.end(20.0);
    assert_eq!(finished.reader.answer.outcome(&stop), Outcome::Complete);

    let mut nothing = Run::sse();
    nothing.push(KEEPALIVE, 10.0);
    let stop = nothing.end(20.0);
    assert_eq!(
        nothing.reader.answer.outcome(&stop),
        Outcome::Failed(Failure::Network)
    );
}

#[test]
fn done_without_any_answer_is_an_empty_response() {
    let mut run = Run::sse();
    let stop = run.push(
        &("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n".to_owned() + DONE),
        10.0,
    );
    assert_eq!(
        run.reader.answer.outcome(&stop.unwrap()),
        Outcome::Failed(Failure::Empty)
    );
}

#[test]
fn a_timeout_after_the_finish_chunk_still_completes() {
    let mut run = Run::sse();
    run.push(&(content("all") + FINISH), 10.0);
    let expired = run.deadlines.check(10.0 + 200.0).unwrap();
    assert_eq!(
        run.reader
            .answer
            .outcome(&Stop::Failed(Failure::Timeout(expired))),
        Outcome::Complete
    );
}

#[test]
fn the_callers_abort_is_never_a_partial_answer() {
    let mut run = Run::sse();
    run.push(&content("some"), 10.0);
    assert_eq!(
        run.reader.answer.outcome(&Stop::Failed(Failure::Aborted)),
        Outcome::Failed(Failure::Aborted)
    );
}

#[test]
fn an_over_long_event_is_a_protocol_failure() {
    let mut run = Run {
        reader: AnswerReader::new(BodyKind::EventStream, 1024),
        ..Run::sse()
    };
    let stop = run.push(&format!("data: {}", "x".repeat(2000)), 10.0);
    assert_eq!(stop, Some(Stop::Failed(Failure::Protocol)));
}

#[test]
fn tool_call_fragments_assemble() {
    let mut run = Run::sse();
    run.push("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"ci\"}}]}}]}\n\n", 10.0);
    run.push("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\":1}\"}}]}}]}\n\n", 20.0);
    run.push(
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        30.0,
    );
    let stop = run.push(DONE, 40.0).unwrap();
    let calls = &run.reader.answer.tool_calls;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (
            calls[0].id.as_str(),
            calls[0].name.as_str(),
            calls[0].arguments.as_str()
        ),
        ("call_1", "get_weather", "{\"city\":1}")
    );
    assert_eq!(run.reader.answer.outcome(&stop), Outcome::Complete);
}

#[test]
fn a_json_body_is_one_whole_answer() {
    let mut reader = AnswerReader::new(BodyKind::Json, 1 << 20);
    let mut deadlines = AttemptDeadlines::start(0.0, limits(), 5_000.0);
    let mut heard = Heard::default();
    let body = r#"{"id":"gen-9","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"Whole."},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
    let (a, b) = body.split_at(40);
    assert_eq!(
        reader.push(a.as_bytes(), 10.0, &mut deadlines, &mut heard),
        None
    );
    assert_eq!(
        reader.push(b.as_bytes(), 20.0, &mut deadlines, &mut heard),
        None
    );
    assert!(heard.texts.is_empty(), "nothing before the body is whole");
    let stop = reader.end(30.0, &mut deadlines, &mut heard);
    assert_eq!(stop, Stop::Done);
    assert_eq!(heard.texts, ["Whole."]);
    assert_eq!(heard.first, Some(30.0));
    assert_eq!(reader.answer.outcome(&stop), Outcome::Complete);
}

#[test]
fn a_json_error_body_in_a_200_is_an_upstream_failure() {
    let mut reader = AnswerReader::new(BodyKind::Json, 1 << 20);
    let mut deadlines = AttemptDeadlines::start(0.0, limits(), 5_000.0);
    let mut heard = Heard::default();
    reader.push(
        br#"{"error":{"code":502,"message":"no"}}"#,
        10.0,
        &mut deadlines,
        &mut heard,
    );
    let stop = reader.end(10.0, &mut deadlines, &mut heard);
    assert_eq!(
        reader.answer.outcome(&stop),
        Outcome::Failed(Failure::Upstream)
    );
}

#[test]
fn responses_are_classified_by_status_and_content_type() {
    assert_eq!(
        classify_response(200, Some("text/event-stream; charset=utf-8"), None),
        Ok(BodyKind::EventStream)
    );
    assert_eq!(
        classify_response(200, None, None),
        Ok(BodyKind::EventStream)
    );
    assert_eq!(
        classify_response(200, Some("Application/JSON"), None),
        Ok(BodyKind::Json)
    );
    assert_eq!(
        classify_response(200, Some("application/problem+json"), None),
        Ok(BodyKind::Json)
    );
    assert_eq!(
        classify_response(200, Some("text/html"), None),
        Err(Failure::Protocol)
    );
    assert_eq!(
        classify_response(429, Some("application/json"), Some(2_000.0)),
        Err(Failure::Http {
            status: 429,
            retry_after_ms: Some(2_000.0)
        })
    );
}

#[test]
fn events_of_other_types_are_side_events_not_answer_or_progress() {
    let mut run = Run::sse();
    run.push("event: guard\ndata: {\"type\":\"failover\"}\n\n", 10.0);
    assert_eq!(
        run.heard.side,
        [("guard".to_owned(), "{\"type\":\"failover\"}".to_owned())]
    );
    assert_eq!(run.heard.first, None, "not progress");
    assert_eq!(
        run.reader.answer.malformed, 0,
        "not a malformed chunk either"
    );
    run.push(&(content("ok") + DONE), 20.0);
    assert_eq!(run.reader.answer.text, "ok");
}
