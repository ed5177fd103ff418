//! One call machine, two modes: a generation (`generate()`) and a relay (`guardFetch()`) given
//! the same chain, the same platform reports at the same times, run the same call: the same
//! attempts, the same `request-start`, `headers`, `attempt-failed`, `retry`, `failover`,
//! `first-token` and `done` events with the same fields, and the same observations for a guard.
//! Only what each does with an answer differs (a generation also says `stream-end`; a relay
//! commits and passes bytes).

use llm_stream_guard::core::deadline::{Millis, Timeouts};
use llm_stream_guard::core::events::GuardEvent;
use llm_stream_guard::core::machine::{
    Action, AttemptId, Delivery, Generation, GenerationConfig, Head, Observation, ProviderConfig,
};
use llm_stream_guard::core::policy::RetryPolicy;
use llm_stream_guard::core::relay::{
    OnCut, Relay, RelayAction, RelayConfig, RelayDelivery, RelayProvider, SdkRequest,
};

const OWN_URL: &str = "http://127.0.0.1:8/v1/chat/completions";
const FALLBACK_URL: &str = "http://127.0.0.1:9/v1/chat/completions";
const OWN_KEY: &str = "sk-own-0123456789abcdef";
const FALLBACK_KEY: &str = "sk-fallback-0123456789abcdef";

mod machine_support;

use machine_support::head;

fn timeouts() -> Timeouts {
    machine_support::limits()
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 1,
        base_delay_ms: 40.0,
        max_delay_ms: 400.0,
    }
}

/// The chain as `generate()` is given it: the endpoint a relay's SDK asks (named by its host,
/// as the relay names it), then the fallback.
fn generation() -> Generation {
    let provider = |name: &str, url: &str, model: &str, key: &str| ProviderConfig {
        name: name.into(),
        url: url.into(),
        model: model.into(),
        api_key: Some(key.into()),
        headers: Vec::new(),
        timeouts: timeouts(),
        max_retries: 1,
    };
    Generation::new(GenerationConfig {
        providers: vec![
            provider("127.0.0.1:8", OWN_URL, "gpt-4o-mini", OWN_KEY),
            provider("local", FALLBACK_URL, "local-model", FALLBACK_KEY),
        ],
        policy: policy(),
        service_ms: timeouts().service_ms,
        stream: true,
        max_event_bytes: 1 << 16,
        body_without_model: r#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#.into(),
        jitter_seed: 7,
    })
}

/// The same chain as `guardFetch()` is given it: the SDK's own request, then the fallback.
fn relay() -> Relay {
    Relay::new(RelayConfig {
        request: SdkRequest {
            method: "POST".into(),
            url: OWN_URL.into(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), format!("Bearer {OWN_KEY}")),
            ],
            body: Some(
                r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true}"#
                    .into(),
            ),
        },
        timeouts: timeouts(),
        max_retries: 1,
        fallbacks: vec![RelayProvider {
            name: "local".into(),
            url: FALLBACK_URL.into(),
            model: "local-model".into(),
            api_key: Some(FALLBACK_KEY.into()),
            headers: Vec::new(),
            timeouts: timeouts(),
            max_retries: 1,
        }],
        policy: policy(),
        max_event_bytes: 1 << 16,
        on_cut: OnCut::Error,
        jitter_seed: 7,
    })
}

/// What a test sees of either mode: the requests it sent (attempt and URL), its events, and
/// whether it settled.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    sent: Vec<(AttemptId, String)>,
    events: Vec<GuardEvent>,
}

/// Either mode, driven the same way: inputs in, everything out drained after each.
trait Driven {
    fn start(&mut self, now: Millis);
    fn head(&mut self, id: AttemptId, now: Millis, head: Head);
    fn bytes(&mut self, id: AttemptId, now: Millis, bytes: &[u8]);
    fn end(&mut self, id: AttemptId, now: Millis);
    fn request_error(&mut self, id: AttemptId, now: Millis, message: &str);
    fn timeout(&mut self, now: Millis);
    fn next_timeout(&self) -> Option<Millis>;
    /// The next action: `Some(Some(_))` a request sent (its attempt and URL), `Some(None)`
    /// another action.
    fn next_action(&mut self) -> Option<Option<(AttemptId, String)>>;
    /// The next delivery: `Some(Some(_))` an event, `Some(None)` anything else.
    fn next_delivery(&mut self) -> Option<Option<GuardEvent>>;
    /// Everything out, actions and deliveries in turn, as the drivers drain.
    fn drain(&mut self, seen: &mut Seen) {
        loop {
            let mut idle = true;
            while let Some(action) = self.next_action() {
                idle = false;
                seen.sent.extend(action);
            }
            if let Some(delivery) = self.next_delivery() {
                idle = false;
                seen.events.extend(delivery);
            }
            if idle {
                return;
            }
        }
    }
    fn settled(&self) -> bool;
    fn observed(&self) -> Vec<Observation>;
}

/// [`Driven`] for a mode whose send action and event delivery are these variants.
macro_rules! driven {
    ($machine:ty, $send:path, $event:path) => {
        fn next_action(&mut self) -> Option<Option<(AttemptId, String)>> {
            self.poll_action().map(|action| match action {
                $send(out) => Some((out.attempt, out.url)),
                _ => None,
            })
        }
        fn next_delivery(&mut self) -> Option<Option<GuardEvent>> {
            self.poll_delivery().map(|delivery| match delivery {
                $event(event) => Some(event),
                _ => None,
            })
        }
        fn start(&mut self, now: Millis) {
            <$machine>::start(self, now)
        }
        fn head(&mut self, id: AttemptId, now: Millis, head: Head) {
            <$machine>::head(self, id, now, head)
        }
        fn bytes(&mut self, id: AttemptId, now: Millis, bytes: &[u8]) {
            self.body_bytes(id, now, bytes)
        }
        fn end(&mut self, id: AttemptId, now: Millis) {
            self.body_end(id, now)
        }
        fn request_error(&mut self, id: AttemptId, now: Millis, message: &str) {
            <$machine>::request_error(self, id, now, message)
        }
        fn timeout(&mut self, now: Millis) {
            self.handle_timeout(now)
        }
        fn next_timeout(&self) -> Option<Millis> {
            self.poll_timeout()
        }
        fn settled(&self) -> bool {
            self.is_settled()
        }
        fn observed(&self) -> Vec<Observation> {
            self.observations().to_vec()
        }
    };
}

impl Driven for Generation {
    driven!(Generation, Action::Send, Delivery::Event);
}

impl Driven for Relay {
    driven!(Relay, RelayAction::Send, RelayDelivery::Event);
}

const ANSWER: &str = "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\ndata: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

/// The latest attempt sent.
fn last(seen: &Seen) -> AttemptId {
    seen.sent.last().expect("a request was sent").0
}

/// The call every test runs: the endpoint refuses (503), its retry fails to connect, and the
/// fallback answers. Returns what was seen.
fn refused_retried_failed_over(machine: &mut dyn Driven) -> Seen {
    let mut seen = Seen::default();
    machine.start(0.0);
    machine.drain(&mut seen);
    let first = last(&seen);
    machine.head(first, 20.0, head(503, "application/json"));
    machine.drain(&mut seen);
    machine.bytes(first, 22.0, br#"{"error":{"message":"overloaded"}}"#);
    machine.end(first, 23.0);
    machine.drain(&mut seen);
    // The back-off: nothing is sent until it has passed.
    let wake = machine
        .next_timeout()
        .expect("a back-off waits on the clock");
    assert!(wake > 23.0, "{wake}");
    machine.timeout(wake - 1.0);
    machine.drain(&mut seen);
    assert_eq!(
        seen.sent.len(),
        1,
        "nothing is sent before the back-off ends"
    );
    machine.timeout(wake);
    machine.drain(&mut seen);
    let retry = last(&seen);
    assert_ne!(retry, first);
    machine.request_error(retry, wake + 30.0, "connection refused");
    machine.drain(&mut seen);
    let fallback = last(&seen);
    assert_ne!(fallback, retry);
    machine.head(fallback, wake + 60.0, head(200, "text/event-stream"));
    machine.drain(&mut seen);
    machine.bytes(fallback, wake + 90.0, ANSWER.as_bytes());
    machine.drain(&mut seen);
    machine.end(fallback, wake + 91.0);
    machine.drain(&mut seen);
    assert!(machine.settled());
    seen
}

/// The call's events only: what a mode says of its answer itself is left out.
fn call_events(events: &[GuardEvent]) -> Vec<GuardEvent> {
    events
        .iter()
        .filter(|e| !matches!(e, GuardEvent::StreamEnd { .. }))
        .cloned()
        .collect()
}

/// Runs `script` on a generation and on a relay of the same chain, each to its end: what each
/// showed, and its observations.
fn both(script: fn(&mut dyn Driven) -> Seen) -> [(Seen, Vec<Observation>); 2] {
    let mut generation = generation();
    let mut relay = relay();
    let answered = script(&mut generation);
    let relayed = script(&mut relay);
    assert!(generation.settled() && relay.settled());
    [
        (answered, generation.observed()),
        (relayed, relay.observed()),
    ]
}

#[test]
fn both_modes_run_the_same_call_with_the_same_events() {
    let [(answered, generation), (relayed, relay)] = both(refused_retried_failed_over);
    assert_eq!(
        answered.sent, relayed.sent,
        "the same attempts, to the same URLs"
    );
    let urls: Vec<&str> = answered.sent.iter().map(|(_, url)| url.as_str()).collect();
    assert_eq!(urls, [OWN_URL, OWN_URL, FALLBACK_URL]);
    assert_eq!(
        call_events(&answered.events),
        call_events(&relayed.events),
        "the same events, field for field"
    );
    let kinds: Vec<&str> = relayed.events.iter().map(|e| e.type_name()).collect();
    assert_eq!(
        kinds,
        [
            "request-start",
            "headers",
            "attempt-failed",
            "retry",
            "request-start",
            "attempt-failed",
            "failover",
            "request-start",
            "headers",
            "first-token",
            "done",
        ]
    );
    assert!(
        answered
            .events
            .iter()
            .any(|e| matches!(e, GuardEvent::StreamEnd { .. })),
        "a generation also says that its stream ended"
    );
    assert_eq!(generation, relay, "the same observations");
    assert_eq!(generation.len(), 3);
    for event in &relayed.events {
        let text = format!("{event:?}");
        assert!(
            !text.contains(OWN_KEY) && !text.contains(FALLBACK_KEY),
            "{text}"
        );
    }
}

/// Nothing connects: every request fails at once, and the back-offs are waited out.
fn nothing_connects(machine: &mut dyn Driven) -> Seen {
    let mut seen = Seen::default();
    machine.start(0.0);
    machine.drain(&mut seen);
    let (mut now, mut failed) = (0.0, 0);
    while !machine.settled() && failed < 8 {
        if seen.sent.len() > failed {
            now += 10.0;
            machine.request_error(last(&seen), now, "connection refused");
            failed += 1;
        } else {
            now = machine
                .next_timeout()
                .expect("a back-off waits on the clock");
            machine.timeout(now);
        }
        machine.drain(&mut seen);
    }
    seen
}

#[test]
fn both_modes_give_up_after_the_same_attempts() {
    let [(answered, generation), (relayed, relay)] = both(nothing_connects);
    assert_eq!(answered.sent.len(), 4, "{:?}", answered.sent);
    assert_eq!(answered, relayed);
    assert_eq!(generation, relay);
    let kinds: Vec<&str> = relayed.events.iter().map(|e| e.type_name()).collect();
    assert_eq!(
        kinds,
        [
            "request-start",
            "attempt-failed",
            "retry",
            "request-start",
            "attempt-failed",
            "failover",
            "request-start",
            "attempt-failed",
            "retry",
            "request-start",
            "attempt-failed",
        ]
    );
}
