//! The generation machine does not care how the platform cuts the body into reads: any split
//! of the same bytes, at the same moment, gives the same text, events and outcome.

#![cfg(not(target_arch = "wasm32"))]

mod machine_support;

use llm_stream_guard::core::machine::{AttemptId, BodyError};
use machine_support::*;
use proptest::prelude::*;

/// A whole answer with multi-byte text, CRLF line ends, a keepalive and a malformed event.
fn stream() -> String {
    let crlf = |event: String| event.replace('\n', "\r\n");
    [
        KEEPALIVE.to_owned(),
        crlf(content("Grüße, ")),
        content("世界 🎙️"),
        "data: {\"id\": [\n\n".to_owned(),
        crlf(content(" ✓")),
        finish("stop"),
        usage(3, 3),
        DONE.to_owned(),
    ]
    .concat()
}

/// What a driver hears and ends with when the body arrives in reads cut at `cuts`.
fn run(bytes: &[u8], cuts: &[usize]) -> (Vec<String>, String, bool, u64) {
    let mut d = Driver::streaming(&["a"]);
    let id = d.last();
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        d.machine.body_bytes(id, 20.0, &bytes[from..cut]);
        d.drain();
        from = cut;
    }
    d.end(20.0);
    d.assert_over_and_released();
    let result = d.result();
    (
        d.transcript(),
        d.result_text(),
        result.partial,
        result.stats.lines,
    )
}

proptest! {
    #[test]
    fn any_split_gives_the_same_deliveries_and_outcome(
        mut cuts in proptest::collection::vec(0usize..1000, 0..12)
    ) {
        let bytes = stream().into_bytes();
        let whole = run(&bytes, &[]);
        cuts.iter_mut().for_each(|c| *c %= bytes.len() + 1);
        cuts.sort_unstable();
        prop_assert_eq!(run(&bytes, &cuts), whole);
    }
}

#[test]
fn the_unsplit_stream_is_what_the_split_ones_are_compared_with() {
    let bytes = stream().into_bytes();
    let (transcript, text, partial, _) = run(&bytes, &[]);
    assert_eq!(text, "Grüße, 世界 🎙️ ✓");
    assert!(!partial);
    assert_eq!(
        transcript,
        [
            "request-start",
            "headers",
            "first-token",
            "text:Grüße, ",
            "text:世界 🎙️",
            "malformed",
            "text: ✓",
            "stream-end",
            "done"
        ]
    );
}

#[test]
fn a_read_that_is_not_bytes_is_a_protocol_failure_and_releases_the_body() {
    let mut d = Driver::streaming(&["a"]);
    d.machine
        .body_error(AttemptId(0), 20.0, BodyError::NotBytes);
    d.drain();
    let error = d.error();
    assert_eq!(
        (error.kind, error.message.as_str()),
        ("protocol", "the body yielded a non-byte chunk")
    );
    assert_eq!(
        d.cancelled,
        [AttemptId(0)],
        "the body is still open: released"
    );
}
