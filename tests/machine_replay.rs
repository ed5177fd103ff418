//! The mock upstream's scenarios, replayed into the generation machine on a fake clock.
//!
//! Each scenario is played by the mock's own router, in-process (no socket), on tokio's paused
//! clock, and recorded as it came out: the head, every body frame as written and when, and how
//! the body ended (or that it was still open at the horizon). The recording is then replayed
//! into a `Generation`: every request it sends gets its provider's recording, shifted to the
//! time it was sent; the fake clock jumps to the next frame or the machine's next deadline,
//! whichever is first (a frame due at the same moment as a deadline is read first, as a read
//! that is ready wins the race in the driver). No test sleeps; the outcomes, texts and events
//! are the machine's decisions about the mock's real bytes and timings.

#![cfg(not(target_arch = "wasm32"))]

mod machine_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use http_body_util::BodyExt;
use llm_stream_guard::core::deadline::Millis;
use llm_stream_guard::core::events::GuardEvent;
use llm_stream_guard::core::machine::{AttemptId, BodyError, GenerationConfig, Head};
use llm_stream_guard::core::relay::{
    OnCut, Relay, RelayAction, RelayConfig, RelayDelivery, SdkRequest,
};
use machine_support::*;
use mock_upstream::{pieces, DEFAULT_TEXT, MULTIBYTE_TEXT, TICK, TOOL_ARGUMENTS};
use tokio::time::Instant;
use tower::ServiceExt;

/// How long a scenario is recorded for, on the paused clock: past every deadline used here.
const HORIZON_MS: u64 = 10_000;

/// The model the recorded requests asked for (the mock echoes it in every chunk).
const RECORDED_MODEL: &str = "recorded/model";

/// What a scenario sent, and when (milliseconds after the request).
#[derive(Debug, Clone, Default)]
struct Recording {
    head: Option<(Millis, Head)>,
    frames: Vec<(Millis, Vec<u8>)>,
    /// `None` when the body was still open at the horizon.
    end: Option<(Millis, Input)>,
}

/// Plays `scenario` with `query` through the mock's router and records it.
async fn record(scenario: &str, query: &str) -> Recording {
    let app = mock_upstream::app(mock_upstream::Ledger::new());
    let start = Instant::now();
    let horizon = start + Duration::from_millis(HORIZON_MS);
    let since = |t: Instant| (t - start).as_secs_f64() * 1_000.0;
    let request = axum::http::Request::post(format!(
        "/scenario/{scenario}/v1/chat/completions?{query}"
    ))
    .header("content-type", "application/json")
    .body(Body::from(format!(
        r#"{{"model":"{RECORDED_MODEL}","messages":[{{"role":"user","content":"hi"}}],"stream":true}}"#
    )))
    .unwrap();
    let mut recording = Recording::default();
    let Ok(response) = tokio::time::timeout_at(horizon, app.oneshot(request)).await else {
        return recording; // no head before the horizon
    };
    let response = response.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1_000.0;
    let head = Head {
        status: response.status().as_u16(),
        content_type: header("content-type"),
        retry_after: header("retry-after"),
        generation_id: header("x-generation-id"),
        has_body: true,
        unix_ms,
    };
    recording.head = Some((since(Instant::now()), head));
    let mut body = response.into_body();
    loop {
        match tokio::time::timeout_at(horizon, body.frame()).await {
            Err(_) => break,
            Ok(None) => {
                recording.end = Some((since(Instant::now()), Input::End));
                break;
            }
            Ok(Some(Err(error))) => {
                let failed = Input::ReadError(error.to_string());
                recording.end = Some((since(Instant::now()), failed));
                break;
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    recording
                        .frames
                        .push((since(Instant::now()), data.to_vec()));
                }
            }
        }
    }
    recording
}

/// A mode's fake platform, as a replay drives it.
trait Replays {
    fn now(&self) -> Millis;
    /// Every request sent so far: its attempt and its provider.
    fn sends(&self) -> Vec<(AttemptId, usize)>;
    /// Every attempt released or let end.
    fn released(&self) -> Vec<AttemptId>;
    fn settled(&self) -> bool;
    fn timer(&self) -> Option<Millis>;
    fn feed(&mut self, attempt: AttemptId, now: Millis, input: Input);
    fn wake_at(&mut self, now: Millis);
}

impl Replays for Driver {
    fn now(&self) -> Millis {
        self.now
    }
    fn sends(&self) -> Vec<(AttemptId, usize)> {
        self.sent.iter().map(|r| (r.attempt, r.provider)).collect()
    }
    fn released(&self) -> Vec<AttemptId> {
        self.cancelled
            .iter()
            .chain(&self.finished)
            .copied()
            .collect()
    }
    fn settled(&self) -> bool {
        self.machine.is_settled()
    }
    fn timer(&self) -> Option<Millis> {
        self.machine.poll_timeout()
    }
    fn feed(&mut self, attempt: AttemptId, now: Millis, input: Input) {
        Driver::feed(self, attempt, now, input)
    }
    fn wake_at(&mut self, now: Millis) {
        Driver::wake_at(self, now)
    }
}

/// Runs a generation over `config` whose provider `i` answers every request with
/// `recordings[i]`, until the call is over.
fn replay(config: GenerationConfig, recordings: &[Recording]) -> Driver {
    let mut d = Driver::new(config);
    d.start(0.0);
    replay_into(&mut d, recordings);
    d
}

/// Plays `recordings[i]` to every request `d` sends to provider `i`, until the call is over.
fn replay_into(d: &mut dyn Replays, recordings: &[Recording]) {
    // (when, order, attempt, what)
    let mut pending: Vec<(Millis, usize, AttemptId, Input)> = Vec::new();
    let (mut sends, mut order) = (0, 0);
    for _ in 0..1_000_000 {
        let sent = d.sends();
        for (attempt, provider) in &sent[sends..] {
            let recording = &recordings[*provider];
            let sent_at = d.now();
            let mut schedule = |at: Millis, input: Input| {
                pending.push((sent_at + at, order, *attempt, input));
                order += 1;
            };
            if let Some((at, head)) = &recording.head {
                schedule(*at, Input::Head(head.clone()));
                for (at, bytes) in &recording.frames {
                    schedule(*at, Input::Bytes(bytes.clone()));
                }
                if let Some((at, end)) = &recording.end {
                    schedule(*at, end.clone());
                }
            }
        }
        sends = sent.len();
        let released = d.released();
        pending.retain(|(_, _, attempt, _)| !released.contains(attempt));
        if d.settled() {
            return;
        }
        let next = pending
            .iter()
            .enumerate()
            .min_by(|(_, a), (_, b)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
            .map(|(i, p)| (i, p.0));
        let timer = d.timer();
        match next {
            Some((i, at)) if timer.is_none_or(|due| at <= due) => {
                let (at, _, attempt, input) = pending.remove(i);
                let now = at.max(d.now());
                d.feed(attempt, now, input);
            }
            _ => {
                let due = timer.expect("nothing to wait for and nothing arriving");
                let now = due.max(d.now());
                d.wake_at(now);
            }
        }
    }
    panic!("the call never ended")
}

/// A single provider `a` answering with `scenario`.
async fn one(scenario: &str, query: &str) -> Driver {
    let recording = record(scenario, query).await;
    replay(config(vec![provider("a")]), &[recording])
}

fn text_transcript(text: &str) -> Vec<String> {
    pieces(text).iter().map(|p| format!("text:{p}")).collect()
}

/// The events of a whole streamed answer, with its pieces of text.
fn answered(text: &str) -> Vec<String> {
    let mut expected: Vec<String> = ["request-start", "headers", "first-token"]
        .map(String::from)
        .to_vec();
    expected.extend(text_transcript(text));
    expected.extend(["stream-end".into(), "done".into()]);
    expected
}

#[tokio::test(start_paused = true)]
async fn whole_answers_in_every_line_style() {
    for (scenario, text) in [
        ("normal", DEFAULT_TEXT),
        ("cr-only", DEFAULT_TEXT),
        ("bom-nospace", DEFAULT_TEXT),
        ("multibyte-crlf", MULTIBYTE_TEXT),
        ("keepalive-then-content", DEFAULT_TEXT),
    ] {
        let d = one(scenario, "").await;
        assert_eq!(d.transcript(), answered(text), "{scenario}");
        let result = d.result();
        assert_eq!(d.result_text(), text, "{scenario}");
        assert!(!result.partial, "{scenario}");
        assert_eq!(result.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            result.model, RECORDED_MODEL,
            "the model the server says answered"
        );
        let usage = result.usage.expect(scenario);
        assert_eq!(
            usage.completion_tokens,
            pieces(text).len() as u64,
            "{scenario}"
        );
        assert!(result
            .generation_id
            .as_deref()
            .is_some_and(|id| id.starts_with("gen-mock-")));
        d.assert_over_and_released();
    }
    // Three keepalives 50 ms apart, then 50 ms more: the first token comes at 150 ms.
    let d = one("keepalive-then-content", "keepalives=3&keepalive_ms=50").await;
    assert_eq!(d.result().stats.first_token_ms, Some(150.0));
}

#[tokio::test(start_paused = true)]
async fn odd_but_whole_answers() {
    let d = one("malformed-event", "").await;
    let transcript = d.transcript();
    let malformed = transcript.iter().position(|t| t == "malformed").unwrap();
    assert!(transcript[..malformed]
        .iter()
        .any(|t| t.starts_with("text:")));
    assert!(transcript[malformed..]
        .iter()
        .any(|t| t.starts_with("text:")));
    assert_eq!(transcript.iter().filter(|t| *t == "malformed").count(), 1);
    assert_eq!(d.result_text(), DEFAULT_TEXT);

    let d = one("data-after-done", "").await;
    assert_eq!(d.transcript(), answered(DEFAULT_TEXT));
    assert_eq!(
        d.finished,
        [AttemptId(0)],
        "the body left open is let end (the driver cuts what comes after the end marker)"
    );
    d.assert_over_and_released();

    let d = one("json", "").await;
    let result = d.result();
    assert_eq!(d.result_text(), DEFAULT_TEXT);
    assert!(result.generation_id.is_some());
    assert_eq!(
        d.types(),
        [
            "request-start",
            "headers",
            "first-token",
            "stream-end",
            "done"
        ]
    );

    let d = one("tool-calls", "").await;
    let result = d.result();
    assert_eq!(d.result_text(), "");
    assert_eq!(result.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        (
            result.tool_calls[0].name.as_str(),
            result.tool_calls[0].arguments.as_str()
        ),
        ("get_weather", TOOL_ARGUMENTS)
    );

    // Reasoning is progress (first-token comes with it) but not text.
    let d = one("reasoning-then-content", "").await;
    assert_eq!(d.transcript(), answered(DEFAULT_TEXT));
}

#[tokio::test(start_paused = true)]
async fn silent_and_stalled_upstreams_hit_the_right_deadline() {
    for (scenario, layer, phase, at) in [
        ("no-headers", "provider", "headers", 100.0),
        ("headers-then-silence", "provider", "first-token", 300.0),
        ("keepalive-forever", "provider", "first-token", 300.0),
    ] {
        let d = one(scenario, "").await;
        let error = d.error();
        assert_eq!(
            (error.kind, error.layer, error.phase),
            ("timeout", Some(layer), Some(phase)),
            "{scenario}"
        );
        assert!(
            matches!(d.events().iter().find(|e| e.type_name() == "timeout"),
            Some(GuardEvent::Timeout { elapsed_ms, .. }) if *elapsed_ms == at),
            "{scenario}"
        );
        assert_eq!(d.partial_text(), "");
        assert_eq!(
            d.cancelled,
            [AttemptId(0)],
            "{scenario}: released at the deadline"
        );
        d.assert_over_and_released();
    }

    // Three chunks, then silence (or keepalives, which are not progress): idle, partial.
    for scenario in ["stall-after-chunks", "stall-with-keepalives"] {
        let d = one(scenario, "chunks=3").await;
        let first_three: String = pieces(DEFAULT_TEXT)[..3].concat();
        let result = d.result();
        assert!(result.partial, "{scenario}");
        assert_eq!(d.result_text(), first_three);
        assert_eq!(result.cause.as_ref().unwrap().phase, Some("idle"));
        let mut expected = answered(&first_three);
        expected.truncate(expected.len() - 2);
        expected.extend(["timeout".into(), "done".into()]);
        assert_eq!(d.transcript(), expected, "{scenario}");
        d.assert_over_and_released();
    }

    // A tick every 50 ms forever: progress, so only the stream deadline ends it.
    let d = one("endless", "delay_ms=50").await;
    let result = d.result();
    assert_eq!(result.cause.as_ref().unwrap().phase, Some("stream"));
    assert_eq!(d.result_text(), TICK.repeat(result.stats.chunks as usize));
    assert_eq!(result.stats.elapsed_ms, limits().stream_ms);
    d.assert_over_and_released();

    // A clean end of body without a finish or [DONE]: cut short.
    let d = one("close-without-done", "chunks=2").await;
    let cause = d.result().cause.clone().unwrap();
    assert_eq!(
        (cause.kind, cause.message.as_str()),
        ("network", "the stream from a ended before [DONE]")
    );
}

#[tokio::test(start_paused = true)]
async fn upstream_errors_before_text_fail_over_and_after_text_are_partial() {
    let error_first = record("error-before-content", "").await;
    let normal = record("normal", "").await;
    let d = replay(
        config(vec![provider("a"), provider("b")]),
        &[error_first, normal],
    );
    assert!(d.events().contains(&&GuardEvent::AttemptFailed {
        provider: "a".into(),
        kind: "upstream",
        status: None,
        message: "a reported an error 502: Provider returned error".into()
    }));
    assert!(d.events().contains(&&GuardEvent::Failover {
        from: "a".into(),
        to: "b".into(),
        reason: "upstream".into()
    }));
    let result = d.result();
    assert_eq!(
        (result.provider.as_str(), d.result_text().as_str()),
        ("b", DEFAULT_TEXT)
    );
    let log: Vec<&str> = result.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(log, ["upstream", "complete"]);
    d.assert_over_and_released();

    for (scenario, message) in [
        (
            "error-after-content",
            "a reported an error 502: Provider returned error",
        ),
        ("choice-error", "a reported an error 500: upstream failed"),
    ] {
        let d = one(scenario, "chunks=2").await;
        let result = d.result();
        assert!(result.partial, "{scenario}");
        assert_eq!(d.result_text(), pieces(DEFAULT_TEXT)[..2].concat());
        let cause = result.cause.as_ref().unwrap();
        assert_eq!((cause.kind, cause.message.as_str()), ("upstream", message));
    }
}

#[tokio::test(start_paused = true)]
async fn http_statuses_stop_retry_or_fail_over() {
    let bad = record("http-400", "").await;
    let normal = record("normal", "").await;
    let d = replay(
        config(vec![provider("a"), provider("b")]),
        &[bad, normal.clone()],
    );
    let error = d.error();
    assert_eq!((error.kind, error.status), ("http", Some(400)));
    assert_eq!(error.message, "HTTP 400 from a: Bad Request");
    assert_eq!(d.sent.len(), 1);
    d.assert_over_and_released();

    // 429 with `Retry-After: 1`, three times: two retries a second apart, then it gives up.
    let d = one("http-429", "retry_after=1").await;
    let delays: Vec<f64> = d
        .events()
        .iter()
        .filter_map(|e| match e {
            GuardEvent::Retry { delay_ms, .. } => Some(*delay_ms),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [1_000.0, 1_000.0]);
    let error = d.error();
    assert_eq!(
        (error.kind, error.status, error.attempts.len()),
        ("http", Some(429), 3)
    );
    assert_eq!(d.machine.outcome().map(|o| o.is_err()), Some(true));

    // 503 once retried, then the next provider answers.
    let mut a = provider("a");
    a.max_retries = 1;
    let busy = record("http-503", "retry_after=1").await;
    let d = replay(config(vec![a, provider("b")]), &[busy, normal]);
    assert_eq!(d.result().provider, "b");
    let log: Vec<(&str, Option<u16>)> = d
        .result()
        .attempts
        .iter()
        .map(|a| (a.outcome.as_str(), a.status))
        .collect();
    assert_eq!(
        log,
        [
            ("http", Some(503)),
            ("http", Some(503)),
            ("complete", Some(200))
        ]
    );
    d.assert_over_and_released();

    // Retry-After as an HTTP date (whole seconds, 1 s ahead and rounded up).
    let d = one("http-429-date", "retry_after=1").await;
    let delay = d.events().iter().find_map(|e| match e {
        GuardEvent::Retry { delay_ms, .. } => Some(*delay_ms),
        _ => None,
    });
    assert!(
        delay.is_some_and(|ms| (900.0..=2_000.0).contains(&ms)),
        "{delay:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn responses_that_break_the_protocol() {
    let d = one("html-200", "").await;
    assert!(d.events().iter().any(|e| matches!(e,
        GuardEvent::AttemptFailed { kind: "protocol", message, .. }
            if message == "a answered 200 with content type text/html; charset=utf-8, not SSE or JSON")));
    assert_eq!(d.error().kind, "protocol");
    d.assert_over_and_released();

    let recording = record("huge-line", "size=100000").await;
    let mut cfg = config(vec![provider("a")]);
    cfg.max_event_bytes = 64 * 1024;
    let d = replay(cfg, &[recording]);
    assert_eq!(
        d.error().message,
        "a sent an event or body larger than maxEventBytes (65536 bytes)"
    );
    assert_eq!(
        d.cancelled,
        [AttemptId(0)],
        "the rest of the line is not read"
    );
}

// ---------------------------------------------------------------- the relaying mode

/// The relaying mode's fake platform: `guardFetch()`'s driver, recording what the SDK gets.
struct RelayDriver {
    relay: Relay,
    now: Millis,
    sent: Vec<(AttemptId, usize)>,
    released: Vec<AttemptId>,
    /// Attempts whose transport the platform ended (end of body, read error).
    ended: Vec<AttemptId>,
    events: Vec<GuardEvent>,
    /// The status the SDK got (a committed attempt's, or the guard's own response's).
    status: Option<u16>,
    /// The body the SDK got.
    body: Vec<u8>,
    /// How the SDK's body ended: closed, or errored with this kind.
    closed: bool,
    errored: Option<&'static str>,
}

impl RelayDriver {
    /// `guardFetch()` over one endpoint, `a`, with the generation's limits, retries and seed.
    fn new() -> RelayDriver {
        let body = format!(
            r#"{{"model":"{RECORDED_MODEL}","messages":[{{"role":"user","content":"hi"}}],"stream":true}}"#
        );
        let generation = config(vec![provider("a")]);
        let a = &generation.providers[0];
        let relay = Relay::new(RelayConfig {
            request: SdkRequest {
                method: "POST".into(),
                url: a.url.clone(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("authorization".into(), format!("Bearer {KEY}")),
                ],
                body: Some(body),
            },
            timeouts: a.timeouts,
            max_retries: a.max_retries,
            fallbacks: Vec::new(),
            policy: generation.policy,
            max_event_bytes: generation.max_event_bytes,
            on_cut: OnCut::Error,
            jitter_seed: generation.jitter_seed,
        });
        let mut d = RelayDriver {
            relay,
            now: 0.0,
            sent: Vec::new(),
            released: Vec::new(),
            ended: Vec::new(),
            events: Vec::new(),
            status: None,
            body: Vec::new(),
            closed: false,
            errored: None,
        };
        d.relay.start(0.0);
        d.drain();
        d
    }

    fn drain(&mut self) {
        loop {
            if let Some(action) = self.relay.poll_action() {
                match action {
                    RelayAction::Send(out) => self.sent.push((out.attempt, 0)),
                    RelayAction::Cancel { attempt } | RelayAction::Finish { attempt } => {
                        self.released.push(attempt)
                    }
                }
                continue;
            }
            let Some(delivery) = self.relay.poll_delivery() else {
                return;
            };
            match delivery {
                RelayDelivery::Event(event) => self.events.push(event),
                RelayDelivery::Commit { status, .. } => self.status = Some(status),
                RelayDelivery::Respond { status, body } => {
                    self.status = Some(status);
                    self.body = body.into_bytes();
                    self.closed = true;
                }
                RelayDelivery::Bytes(bytes) => self.body.extend(bytes),
                RelayDelivery::Close => self.closed = true,
                RelayDelivery::Fail(error) => self.errored = Some(error.kind.as_str()),
                RelayDelivery::Open => self.status = Some(200),
            }
        }
    }
}

impl Replays for RelayDriver {
    fn now(&self) -> Millis {
        self.now
    }
    fn sends(&self) -> Vec<(AttemptId, usize)> {
        self.sent.clone()
    }
    fn released(&self) -> Vec<AttemptId> {
        self.released.clone()
    }
    fn settled(&self) -> bool {
        self.relay.is_settled()
    }
    fn timer(&self) -> Option<Millis> {
        self.relay.poll_timeout()
    }
    fn feed(&mut self, attempt: AttemptId, now: Millis, input: Input) {
        self.now = now;
        match input {
            Input::Head(head) => self.relay.head(attempt, now, head),
            Input::Bytes(bytes) => self.relay.body_bytes(attempt, now, &bytes),
            Input::End => {
                self.ended.push(attempt);
                self.relay.body_end(attempt, now)
            }
            Input::ReadError(message) => {
                self.ended.push(attempt);
                self.relay
                    .body_error(attempt, now, BodyError::Read(message))
            }
        }
        self.drain();
    }
    fn wake_at(&mut self, now: Millis) {
        self.now = now;
        self.relay.handle_timeout(now);
        self.drain();
    }
}

/// The call's own decisions in `events`, as words: who was asked, what each head and deadline
/// said, how each attempt failed, the retries, and the end. Names and messages are left out
/// (a relay names its endpoint by its host, and says what it saw of bytes it did not read).
fn call_of<'a>(events: impl IntoIterator<Item = &'a GuardEvent>) -> Vec<String> {
    events
        .into_iter()
        .filter_map(|event| match event {
            GuardEvent::RequestStart { attempt, .. } => Some(format!("request-start {attempt}")),
            GuardEvent::Headers {
                status, elapsed_ms, ..
            } => Some(format!("headers {status} at {elapsed_ms}")),
            GuardEvent::Timeout {
                layer,
                phase,
                elapsed_ms,
                ..
            } => Some(format!("timeout {layer} {phase} at {elapsed_ms}")),
            GuardEvent::AttemptFailed { kind, status, .. } => {
                Some(format!("attempt-failed {kind} {status:?}"))
            }
            GuardEvent::Retry {
                attempt,
                delay_ms,
                reason,
                ..
            } => Some(format!("retry {attempt} after {delay_ms} ({reason})")),
            GuardEvent::Done {
                partial,
                elapsed_ms,
                ..
            } => Some(format!("done partial={partial} at {elapsed_ms}")),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn every_chat_scenario_runs_the_same_call_in_both_modes() {
    let mut compared = 0;
    for scenario in mock_upstream::SCENARIOS {
        if scenario.api != mock_upstream::Api::Chat || scenario.name == "controlled" {
            continue;
        }
        let recording = record(scenario.name, "").await;
        let answered = replay(
            config(vec![provider("a")]),
            std::slice::from_ref(&recording),
        );
        let mut relayed = RelayDriver::new();
        replay_into(&mut relayed, std::slice::from_ref(&recording));
        let name = scenario.name;
        assert_eq!(answered.sends(), relayed.sent, "{name}: the same requests");
        let mut relayed_call = call_of(&relayed.events);
        if relayed.status.is_some_and(|s| (400..500).contains(&s)) {
            // The one difference in kind: where a generation rejects with a refusal, a relay
            // hands the SDK the refusal itself, and that response is its `done`.
            let done = relayed_call.pop().unwrap_or_default();
            assert!(done.starts_with("done partial=false"), "{name}: {done}");
            assert_eq!(answered.error().status, relayed.status, "{name}");
        }
        assert_eq!(
            call_of(answered.events()),
            relayed_call,
            "{name}: the same call"
        );
        // Every attempt was released, let end or ended by the platform, in both modes.
        for (attempt, _) in &relayed.sent {
            let over = relayed.released.contains(attempt) || relayed.ended.contains(attempt);
            assert!(over, "{name}: {attempt:?} left open");
        }
        answered.assert_over_and_released();
        // What the SDK got of an answer is the upstream's bytes, unchanged, up to where the
        // relay stopped reading.
        if relayed.status.is_some_and(|s| (200..300).contains(&s)) {
            let sent: Vec<u8> = recording
                .frames
                .iter()
                .flat_map(|(_, b)| b.clone())
                .collect();
            assert!(sent.starts_with(&relayed.body), "{name}: bytes changed");
        }
        compared += 1;
    }
    assert!(compared >= 30, "{compared} scenarios compared");
}
