//! The answer text leaves the machine as it is handed out: the machine keeps only its length,
//! and the outcome names the attempt whose handed-out text is the result or the `partialText`.
//! A driver joins the pieces (in JavaScript, outside the wasm memory), so a long answer does
//! not grow the machine.

#![cfg(not(target_arch = "wasm32"))]

mod machine_support;

use llm_stream_guard::core::machine::{AttemptId, CancelReason, DeliveredText, Delivery};
use machine_support::*;

#[test]
fn a_long_answer_is_not_kept_by_the_machine() {
    let mut d = Driver::streaming(&["a"]);
    let mut expected = String::new();
    for i in 0..2_000 {
        let piece = format!("piece-{i} ");
        d.bytes(20.0 + i as f64 * 0.05, &content(&piece));
        expected.push_str(&piece);
        if i == 1_000 {
            let state = format!("{:?}", d.machine);
            assert!(
                !state.contains("piece-1 "),
                "the machine kept text it handed out"
            );
            assert!(
                !state.contains("piece-999 "),
                "the machine kept text it handed out"
            );
        }
    }
    d.bytes(200.0, &(finish("stop") + DONE));
    d.end(201.0);
    let result = d.result();
    assert_eq!(
        result.text,
        DeliveredText {
            attempt: AttemptId(0),
            bytes: expected.len()
        }
    );
    assert_eq!(d.result_text(), expected);
    assert!(d
        .heard
        .iter()
        .all(|h| !matches!(h, Delivery::Text { attempt, .. } if *attempt != AttemptId(0))));
    d.assert_over_and_released();
}

#[test]
fn partial_text_is_what_was_handed_out_of_the_last_attempt_that_received_text() {
    // Attempt 0 is cut short after some text and the answer is partial... unless the caller
    // cancels first: then partialText is what attempt 0 handed out, not what it read.
    let mut d = Driver::new(config(vec![provider("a"), provider("b")]));
    d.throws = Some(Box::new(
        |delivery| matches!(delivery, Delivery::Text { text, .. } if text == "two "),
    ));
    d.start(0.0);
    d.head(10.0, sse_head());
    d.bytes(20.0, &content("one "));
    d.bytes(30.0, &(content("two ") + &content("three")));
    let error = d.error();
    assert_eq!(
        error.partial_text,
        Some(DeliveredText {
            attempt: AttemptId(0),
            bytes: "one two ".len()
        })
    );
    assert_eq!(d.partial_text(), "one two ");

    // No text at all: no partial text.
    let mut d = Driver::streaming(&["a"]);
    d.cancel(20.0, CancelReason::Signal);
    assert_eq!(d.error().partial_text, None);
    assert_eq!(d.partial_text(), "");
}
