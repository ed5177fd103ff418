//! The guard's learning and deciding parts, natively, time as an argument: the quantile sketch
//! against exact quantiles, learned deadlines, the breaker, overlap removal and the
//! continuation request.

#![cfg(not(target_arch = "wasm32"))]

use llm_stream_guard::core::deadline::Timeouts;
use llm_stream_guard::core::deadline::{Expired, Layer, Phase};
use llm_stream_guard::core::guard::breaker::{
    Admission, Breaker, BreakerSettings, BreakerState, CallReport,
};
use llm_stream_guard::core::guard::continuation::{
    continuation_body, ContinuationMode, INSTRUCTION,
};
use llm_stream_guard::core::guard::learned::{Adaptive, LearnedDeadlines};
use llm_stream_guard::core::guard::overlap::{junction, overlap, OverlapFilter, MAX_OVERLAP_CHARS};
use llm_stream_guard::core::guard::sketch::{QuantileSketch, MAX_BUCKETS, RELATIVE_ACCURACY};
use llm_stream_guard::core::policy::Failure;
use proptest::prelude::*;

/// A small deterministic generator (xorshift64*), so the data differ per seed but not per run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn exact(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

#[test]
fn the_sketch_is_within_its_accuracy_of_exact_quantiles_on_random_data() {
    for seed in 1..=5u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Latency-like data: a log-uniform body from 5 ms to 5 s, with a heavy tail.
        let mut values: Vec<f64> = (0..20_000)
            .map(|i| {
                let base = (5f64.ln() + rng.next() * (5_000f64 / 5.0).ln()).exp();
                if i % 50 == 0 {
                    base * 20.0
                } else {
                    base
                }
            })
            .collect();
        let mut sketch = QuantileSketch::new();
        for v in &values {
            sketch.record(*v);
        }
        values.sort_by(f64::total_cmp);
        for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let truth = exact(&values, q);
            let answer = sketch.quantile(q).unwrap();
            let error = (answer - truth).abs() / truth;
            assert!(
                error <= RELATIVE_ACCURACY + 1e-9,
                "seed {seed} q {q}: {answer} vs exact {truth} ({error})"
            );
        }
        assert_eq!(sketch.count(), 20_000);
    }
}

#[test]
fn the_sketch_memory_is_bounded_whatever_is_recorded() {
    let mut sketch = QuantileSketch::new();
    let mut v = 1e-3;
    while v < 1e12 {
        sketch.record(v);
        v *= 1.001;
    }
    for odd in [0.0, -5.0, f64::NAN, f64::INFINITY, 1e300] {
        sketch.record(odd);
    }
    assert!(sketch.buckets() <= MAX_BUCKETS, "{}", sketch.buckets());
    assert!(sketch.buckets() > 1_000, "the range is really spread");
    assert!(sketch.quantile(1.0).unwrap() <= 1e8 * (1.0 + RELATIVE_ACCURACY));
}

fn configured() -> Timeouts {
    Timeouts {
        headers_ms: 10_000.0,
        first_token_ms: 30_000.0,
        idle_ms: 20_000.0,
        stream_ms: 60_000.0,
        service_ms: 90_000.0,
    }
}

#[test]
fn learned_deadlines_start_after_min_samples_at_factor_times_the_quantile() {
    let adaptive = Adaptive {
        quantile: 0.9,
        factor: 2.0,
        min_samples: 10,
        floor_ms: 100.0,
    };
    let mut learned = LearnedDeadlines::new(adaptive);
    for i in 0..9 {
        let entry = learned.entry("a", "m");
        entry.record_first_token(400.0 + i as f64 * 10.0);
        entry.record_gap(50.0);
    }
    assert_eq!(
        learned.timeouts("a", "m", configured()),
        configured(),
        "nine calls are not enough"
    );
    learned.entry("a", "m").record_first_token(490.0);
    let t = learned.timeouts("a", "m", configured());
    // p90 of 400..=490 is 480; ×2 = 960, within 1 %.
    assert!((t.first_token_ms - 960.0).abs() <= 9.6 + 1e-9, "{t:?}");
    assert!((t.idle_ms - 100.0).abs() <= 1.0 + 1e-9, "{t:?}");
    assert_eq!(
        (t.headers_ms, t.stream_ms, t.service_ms),
        (10_000.0, 60_000.0, 90_000.0),
        "the other layers are as configured"
    );
    // Another pair learned nothing.
    assert_eq!(learned.timeouts("a", "other", configured()), configured());
    assert_eq!(learned.timeouts("b", "m", configured()), configured());
}

#[test]
fn a_learned_deadline_is_floored_and_never_above_the_configuration() {
    let adaptive = Adaptive {
        quantile: 0.95,
        factor: 3.0,
        min_samples: 1,
        floor_ms: 250.0,
    };
    let mut learned = LearnedDeadlines::new(adaptive);
    learned.entry("fast", "m").record_first_token(2.0);
    learned.entry("fast", "m").record_gap(1.0);
    let t = learned.timeouts("fast", "m", configured());
    assert_eq!((t.first_token_ms, t.idle_ms), (250.0, 250.0), "the floor");
    learned.entry("slow", "m").record_first_token(50_000.0);
    learned.entry("slow", "m").record_gap(50_000.0);
    let t = learned.timeouts("slow", "m", configured());
    assert_eq!(
        (t.first_token_ms, t.idle_ms),
        (30_000.0, 20_000.0),
        "the ceiling"
    );
    // A configured value below the floor still wins.
    let tight = Timeouts {
        first_token_ms: 100.0,
        idle_ms: 80.0,
        ..configured()
    };
    let t = learned.timeouts("fast", "m", tight);
    assert_eq!((t.first_token_ms, t.idle_ms), (100.0, 80.0));
}

proptest! {
    #[test]
    fn learned_deadlines_are_never_above_the_configured_ones(
        samples in prop::collection::vec(0.0f64..200_000.0, 1..60),
        first in 1.0f64..100_000.0,
        idle in 1.0f64..100_000.0,
        factor in 0.1f64..10.0,
        quantile in 0.0f64..=1.0,
        floor in 0.0f64..5_000.0,
    ) {
        let adaptive = Adaptive { quantile, factor, min_samples: 1, floor_ms: floor };
        let mut learned = LearnedDeadlines::new(adaptive);
        for s in &samples {
            learned.entry("p", "m").record_first_token(*s);
            learned.entry("p", "m").record_gap(*s / 3.0);
        }
        let config = Timeouts { first_token_ms: first, idle_ms: idle, ..configured() };
        let t = learned.timeouts("p", "m", config);
        prop_assert!(t.first_token_ms <= first && t.idle_ms <= idle);
        prop_assert!(t.first_token_ms >= floor.min(first) && t.idle_ms >= floor.min(idle));
    }
}

fn timeout() -> Failure {
    Failure::Timeout(Expired {
        layer: Layer::Provider,
        phase: Phase::FirstToken,
        due: 0.0,
    })
}

fn http(status: u16) -> Failure {
    Failure::Http {
        status,
        retry_after_ms: None,
    }
}

#[test]
fn the_breaker_opens_after_the_threshold_of_counted_failures_in_a_row() {
    let mut b = Breaker::new(BreakerSettings {
        failure_threshold: 3,
        cooldown_ms: 1_000.0,
    });
    for at in [0.0, 10.0] {
        assert_eq!(b.admit(at), Admission::Allowed);
        b.report(at, &CallReport::Failed(timeout()));
    }
    // A 400 and the caller's abort neither count nor break the streak.
    for failure in [http(400), http(404), Failure::Aborted] {
        assert_eq!(b.admit(20.0), Admission::Allowed);
        b.report(20.0, &CallReport::Failed(failure));
    }
    assert_eq!(b.state(20.0), BreakerState::Closed { failures: 2 });
    assert_eq!(b.admit(30.0), Admission::Allowed);
    b.report(30.0, &CallReport::Failed(http(503)));
    assert_eq!(b.state_name(30.0), "open");
    assert_eq!(
        b.admit(500.0),
        Admission::Skip {
            until: Some(1_030.0),
            why: "http"
        }
    );
    // A success resets a streak.
    let mut c = Breaker::new(BreakerSettings {
        failure_threshold: 2,
        cooldown_ms: 1_000.0,
    });
    c.report(0.0, &CallReport::Failed(Failure::Network));
    c.report(1.0, &CallReport::Success);
    c.report(2.0, &CallReport::Failed(Failure::Network));
    assert_eq!(c.state_name(2.0), "closed");
    c.report(3.0, &CallReport::Failed(Failure::Upstream));
    assert_eq!(c.state_name(3.0), "open");
}

#[test]
fn a_half_open_breaker_lets_exactly_one_probe_through() {
    let mut b = Breaker::new(BreakerSettings {
        failure_threshold: 1,
        cooldown_ms: 1_000.0,
    });
    b.report(0.0, &CallReport::Failed(timeout()));
    assert!(matches!(b.admit(999.0), Admission::Skip { .. }));
    assert_eq!(b.state_name(1_000.0), "half-open");
    assert_eq!(b.admit(1_000.0), Admission::Probe);
    for at in [1_000.0, 1_001.0, 5_000.0] {
        assert_eq!(
            b.admit(at),
            Admission::Skip {
                until: None,
                why: "timeout"
            },
            "only one probe at {at}"
        );
    }
    // The probe fails: open again for a whole cool-down from then.
    b.report(5_000.0, &CallReport::Failed(Failure::Network));
    assert_eq!(
        b.admit(5_999.0),
        Admission::Skip {
            until: Some(6_000.0),
            why: "network"
        }
    );
    assert_eq!(b.admit(6_000.0), Admission::Probe);
    // A probe the caller aborted gives its turn back.
    b.report(6_100.0, &CallReport::Failed(Failure::Aborted));
    assert_eq!(b.admit(6_100.0), Admission::Probe);
    assert_eq!(
        b.admit(6_100.0).clone(),
        Admission::Skip {
            until: None,
            why: "network"
        }
    );
    // It succeeds: closed.
    b.report(6_200.0, &CallReport::Success);
    assert_eq!(b.state(6_200.0), BreakerState::Closed { failures: 0 });
    assert_eq!(b.admit(6_200.0), Admission::Allowed);
    assert_eq!(b.admit(6_200.0), Admission::Allowed);
}

#[test]
fn overlap_drops_the_longest_restated_end() {
    assert_eq!(
        overlap("The cat sat on the", " on the mat."),
        " on the".len()
    );
    assert_eq!(overlap("The cat sat on the", "the mat."), "the".len());
    assert_eq!(
        overlap("The cat sat on lathe", "the mat."),
        0,
        "needs a boundary before"
    );
    assert_eq!(overlap("The cat sat on the ", "the mat."), "the ".len());
    assert_eq!(
        overlap("The cat sat on a mat", "the mat."),
        0,
        "no common end"
    );
    assert_eq!(overlap("The cat sat on the", " the mat."), " the".len());
    // Repeated words: the longest repeat wins.
    assert_eq!(overlap("go go go", "go go go away"), "go go go".len());
    assert_eq!(
        overlap("I said that that", " that that is"),
        " that that".len()
    );
    assert_eq!(overlap("that that", " that that is"), " that".len());
    assert_eq!(overlap("I said that", " that that is"), " that".len());
}

#[test]
fn overlap_keeps_coincidental_short_and_mid_word_matches() {
    // One or two letters are not a repeat.
    assert_eq!(overlap("I have a", "a plan"), 0);
    assert_eq!(overlap("Go to", "to school"), 0);
    // `the` then `then`: the match would end inside a word.
    assert_eq!(overlap("in the", " then"), 0);
    assert_eq!(
        overlap("walking", "king of the hill"),
        0,
        "starts inside a word"
    );
    assert_eq!(overlap("", "anything"), 0);
    assert_eq!(overlap("anything", ""), 0);
}

#[test]
fn overlap_is_measured_in_characters_on_multibyte_text() {
    assert_eq!(
        overlap("Grüße aus Köln", "aus Köln und Bonn"),
        "aus Köln".len()
    );
    assert_eq!(overlap("Grüße aus Köln", "Köln, Bonn"), "Köln".len());
    assert_eq!(
        overlap("Ça va très bien 🙂", "bien 🙂 merci"),
        "bien 🙂".len()
    );
    // Scripts without spaces: every character is a boundary.
    assert_eq!(
        overlap("私は日本語を話します", "話します。そして"),
        "話します".len()
    );
    assert_eq!(
        overlap("私は日本語を話します", "すそして"),
        0,
        "one character"
    );
    // Two characters of a spaced script are too short, even multibyte.
    assert_eq!(overlap("вот он", "он идёт"), 0);
    assert_eq!(overlap("вот они", "они идут"), "они".len());
}

/// The filter's output for `pieces`, joined, and whether any piece it handed out was (part of)
/// the repeat.
fn filtered(previous: &str, pieces: &[&str]) -> String {
    let mut filter = OverlapFilter::new(previous);
    let mut out = String::new();
    for piece in pieces {
        out.push_str(&filter.push(piece));
    }
    out.push_str(&filter.finish());
    out
}

#[test]
fn whitespace_at_the_junction_is_not_doubled() {
    // A prefill is sent trimmed; the model writes the space again.
    assert_eq!(junction("Hello from ", " the mock"), 1);
    assert_eq!(
        junction("line one\n", "\n\nline two"),
        1,
        "one newline was delivered"
    );
    assert_eq!(junction("Hello from", " the mock"), 0);
    assert_eq!(junction("Hello from ", "the mock"), 0);
    // A repeat takes precedence.
    assert_eq!(junction("Hello from ", "from the"), "from ".len());
    assert_eq!(filtered("Hello from ", &[" ", "the", " mock"]), "the mock");
}

#[test]
fn the_filter_holds_back_a_possible_repeat_until_it_can_decide() {
    let mut f = OverlapFilter::new("The cat sat on the");
    assert_eq!(f.push(" o"), "", "could be ` on the`");
    assert_eq!(f.push("n th"), "");
    assert_eq!(f.push("e"), "", "a repeat to its end, but is it ` then`?");
    assert_eq!(f.push(" mat"), " mat");
    assert_eq!(f.push("."), ".");
    assert_eq!(f.finish(), "");
    assert_eq!(f.dropped(), " on the".len());

    let mut f = OverlapFilter::new("The cat sat on the");
    assert_eq!(f.push(" t"), "");
    assert_eq!(f.push("hen"), " then", "not a repeat after all: all of it");

    let mut f = OverlapFilter::new("The cat sat on the");
    assert_eq!(f.push("Moreover"), "Moreover", "decided at once");
    assert_eq!(f.finish(), "");

    // A continuation that only repeats and ends: nothing is handed out.
    assert_eq!(filtered("The cat sat on the", &[" on", " the"]), "");
}

proptest! {
    #[test]
    fn the_filter_gives_the_same_text_for_any_split(
        previous in "[ab ü日\n]{0,12}",
        next in "[ab ü日.\n]{0,12}",
        cuts in prop::collection::vec(0usize..13, 0..4),
    ) {
        let whole = next[junction(&previous, &next)..].to_owned();
        let mut bounds: Vec<usize> = cuts
            .into_iter()
            .map(|c| c.min(next.len()))
            .filter(|c| next.is_char_boundary(*c))
            .collect();
        bounds.push(0);
        bounds.push(next.len());
        bounds.sort_unstable();
        let pieces: Vec<&str> = bounds.windows(2).map(|w| &next[w[0]..w[1]]).collect();
        prop_assert_eq!(filtered(&previous, &pieces), whole);
    }
}

#[test]
fn only_the_end_of_a_long_text_is_compared() {
    let long = "word ".repeat(10_000) + "and the end";
    let filter = OverlapFilter::new(&long);
    assert!(format!("{filter:?}").len() < 4 * MAX_OVERLAP_CHARS + 200);
    assert_eq!(
        filtered(&long, &[" and the", " end", " is near"]),
        " is near"
    );
}

#[test]
fn a_continuation_request_carries_the_text_as_prefill_or_with_an_instruction() {
    let body = r#"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"stream":true,"temperature":0.2}"#;
    let text = "He said \"go\"\nand 日本 🙂";
    let prefill = continuation_body(body, text, ContinuationMode::Prefill).unwrap();
    let value: serde_json::Value = serde_json::from_str(&prefill).unwrap();
    let messages = value["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1]["content"], "hi");
    assert_eq!(messages[2]["role"], "assistant");
    assert_eq!(messages[2]["content"], text);
    assert_eq!(value["stream"], true);
    assert_eq!(value["temperature"], 0.2);
    assert!(prefill.ends_with(r#"],"stream":true,"temperature":0.2}"#));

    let instruction = continuation_body(body, text, ContinuationMode::Instruction).unwrap();
    let value: serde_json::Value = serde_json::from_str(&instruction).unwrap();
    let messages = value["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[2]["role"], "user");
    assert_eq!(messages[2]["content"], format!("{INSTRUCTION}\n\n{text}"));

    let empty = continuation_body(
        r#"{"messages":[ ],"stream":true}"#,
        "x",
        ContinuationMode::Prefill,
    )
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&empty).unwrap();
    assert_eq!(value["messages"].as_array().unwrap().len(), 1);
    assert!(continuation_body(r#"{"prompt":"x"}"#, "x", ContinuationMode::Prefill).is_err());
    assert!(continuation_body(r#"{"messages":"x"}"#, "x", ContinuationMode::Prefill).is_err());
}

#[test]
fn prefill_is_chosen_where_the_provider_continues_an_assistant_message() {
    let or = "https://openrouter.ai/api/v1/chat/completions";
    assert_eq!(
        ContinuationMode::for_provider(or, "anthropic/claude-sonnet-4"),
        ContinuationMode::Prefill
    );
    assert_eq!(
        ContinuationMode::for_provider(or, "openai/gpt-4o-mini"),
        ContinuationMode::Instruction
    );
    assert_eq!(ContinuationMode::Prefill.as_str(), "prefill");
    assert_eq!(ContinuationMode::Instruction.as_str(), "instruction");
}
