//! A fake platform for the generation machine: a clock that moves only when a test moves it,
//! and a driver that performs the machine's actions and records everything it hands out, the
//! way `generate()`'s driver does (drain actions and deliveries in turn after every input).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use llm_stream_guard::core::deadline::{Millis, Timeouts};
use llm_stream_guard::core::events::GuardEvent;
use llm_stream_guard::core::machine::{
    Action, AttemptId, BodyError, Callback, CancelReason, DeliveredText, Delivery, Generation,
    GenerationConfig, GenerationError, GenerationResult, GuardSettings, Head, ProviderConfig,
    Request,
};
use llm_stream_guard::core::policy::RetryPolicy;

/// A key that must never show in what the machine says.
pub const KEY: &str = "sk-or-v1-0123456789abcdef0123456789";

/// Short limits, so that a test reads like a timeline.
pub fn limits() -> Timeouts {
    Timeouts {
        headers_ms: 100.0,
        first_token_ms: 300.0,
        idle_ms: 200.0,
        stream_ms: 2_000.0,
        service_ms: 5_000.0,
    }
}

/// A provider `name` with [`limits`], a key for the first one only.
pub fn provider(name: &str) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        url: format!("https://{name}.example/v1/chat/completions"),
        model: format!("{name}/model"),
        api_key: (name == "a").then(|| KEY.to_owned()),
        headers: vec![("X-Title".into(), "test".into())],
        timeouts: limits(),
        max_retries: 2,
    }
}

/// A call over `providers` with the default policy and [`limits`].
pub fn config(providers: Vec<ProviderConfig>) -> GenerationConfig {
    GenerationConfig {
        providers,
        policy: RetryPolicy::default(),
        service_ms: limits().service_ms,
        stream: true,
        max_event_bytes: 1 << 20,
        body_without_model: r#"{"messages":[{"role":"user","content":"hi"}],"stream":true}"#.into(),
        jitter_seed: 42,
    }
}

/// Hedging after `after_ms`, no continuation.
pub fn hedge_after(after_ms: Millis) -> GuardSettings {
    GuardSettings {
        hedge_after_ms: Some(after_ms),
        continuation: false,
    }
}

/// Continuation on, no hedging.
pub fn continuation_on() -> GuardSettings {
    GuardSettings {
        hedge_after_ms: None,
        continuation: true,
    }
}

/// One SSE event carrying a content delta.
pub fn content(text: &str) -> String {
    sse(serde_json::json!({
        "id": "gen-chunk", "model": "served/model",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]
    }))
}

/// The finish chunk.
pub fn finish(reason: &str) -> String {
    sse(serde_json::json!({
        "id": "gen-chunk",
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": reason}]
    }))
}

/// The usage chunk.
pub fn usage(prompt: u64, completion: u64) -> String {
    sse(serde_json::json!({
        "id": "gen-chunk", "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion}
    }))
}

/// A mid-stream error chunk in OpenRouter's shape.
pub fn upstream_error(code: u16, message: &str) -> String {
    sse(serde_json::json!({
        "id": "gen-chunk", "error": {"code": code, "message": message},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
    }))
}

pub const DONE: &str = "data: [DONE]\n\n";
pub const KEEPALIVE: &str = ": OPENROUTER PROCESSING\n\n";

fn sse(value: serde_json::Value) -> String {
    format!("data: {value}\n\n")
}

/// A response head.
pub fn head(status: u16, content_type: &str) -> Head {
    Head {
        status,
        content_type: Some(content_type.into()),
        retry_after: None,
        generation_id: None,
        has_body: true,
        unix_ms: 1_764_000_000_000.0,
    }
}

/// An SSE head.
pub fn sse_head() -> Head {
    head(200, "text/event-stream")
}

/// What the platform reports about an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Head(Head),
    Bytes(Vec<u8>),
    End,
    ReadError(String),
}

/// A callback that throws when this returns true for what it is handed.
pub type Throws = Box<dyn FnMut(&Delivery) -> bool>;

/// The fake platform.
pub struct Driver {
    pub machine: Generation,
    /// The fake clock.
    pub now: Millis,
    /// Every request sent, in order.
    pub sent: Vec<Request>,
    /// Every attempt the machine released.
    pub cancelled: Vec<AttemptId>,
    /// Every attempt whose answer was whole, its transport let read its body's end.
    pub finished: Vec<AttemptId>,
    /// Attempts whose transport the platform ended (end of body, read error, failed request).
    pub closed: BTreeSet<AttemptId>,
    /// Everything handed to the caller, in order.
    pub heard: Vec<Delivery>,
    /// Makes the caller's callback throw.
    pub throws: Option<Throws>,
    /// The text handed out, joined per attempt (as a driver keeps it: the machine does not).
    pub texts: BTreeMap<AttemptId, String>,
}

impl Driver {
    pub fn new(config: GenerationConfig) -> Driver {
        Driver {
            machine: Generation::new(config),
            now: 0.0,
            sent: Vec::new(),
            cancelled: Vec::new(),
            finished: Vec::new(),
            closed: BTreeSet::new(),
            heard: Vec::new(),
            throws: None,
            texts: BTreeMap::new(),
        }
    }

    /// A driver over a guarded generation: hedging and continuation as `settings` say.
    pub fn guarded(config: GenerationConfig, settings: GuardSettings) -> Driver {
        let mut d = Driver::new(config.clone());
        d.machine = Generation::guarded(config, settings);
        d
    }

    /// A driver over providers named `names` (default settings), started at 0.
    pub fn started(names: &[&str]) -> Driver {
        let mut d = Driver::new(config(names.iter().map(|name| provider(name)).collect()));
        d.start(0.0);
        d
    }

    /// [`Driver::started`], then an SSE head for the first attempt at 10.
    pub fn streaming(names: &[&str]) -> Driver {
        let mut d = Driver::started(names);
        d.head(10.0, sse_head());
        d
    }

    /// Moves the clock (never back).
    pub fn at(&mut self, now: Millis) -> &mut Self {
        assert!(
            now >= self.now,
            "the clock went back: {} -> {now}",
            self.now
        );
        self.now = now;
        self
    }

    pub fn start(&mut self, now: Millis) {
        self.at(now);
        self.machine.start(now);
        self.drain();
    }

    /// Performs every action and hands out every delivery, in turn, until there are none.
    pub fn drain(&mut self) {
        loop {
            if let Some(action) = self.machine.poll_action() {
                match action {
                    Action::Send(request) => self.sent.push(request),
                    Action::Cancel { attempt } => self.cancelled.push(attempt),
                    Action::Finish { attempt } => self.finished.push(attempt),
                }
                continue;
            }
            if let Some(delivery) = self.machine.poll_delivery() {
                let threw = self.throws.as_mut().is_some_and(|throws| throws(&delivery));
                let which = match &delivery {
                    Delivery::Text { attempt, text } => {
                        self.texts.entry(*attempt).or_default().push_str(text);
                        Callback::OnText
                    }
                    Delivery::Event(_) => Callback::OnEvent,
                };
                self.heard.push(delivery);
                if threw {
                    self.machine.cancel(self.now, CancelReason::Callback(which));
                }
                continue;
            }
            break;
        }
    }

    /// The attempt of the last request sent.
    pub fn last(&self) -> AttemptId {
        self.sent.last().expect("a request was sent").attempt
    }

    pub fn head(&mut self, now: Millis, head: Head) {
        let id = self.last();
        self.at(now).machine.head(id, now, head);
        self.drain();
    }

    pub fn bytes(&mut self, now: Millis, bytes: &str) {
        let id = self.last();
        self.at(now).machine.body_bytes(id, now, bytes.as_bytes());
        self.drain();
    }

    pub fn end(&mut self, now: Millis) {
        let id = self.last();
        self.closed.insert(id);
        self.at(now).machine.body_end(id, now);
        self.drain();
    }

    pub fn read_error(&mut self, now: Millis, message: &str) {
        let id = self.last();
        self.closed.insert(id);
        self.at(now)
            .machine
            .body_error(id, now, BodyError::Read(message.into()));
        self.drain();
    }

    pub fn request_error(&mut self, now: Millis, message: &str) {
        let id = self.last();
        self.closed.insert(id);
        self.at(now).machine.request_error(id, now, message);
        self.drain();
    }

    /// Reports what the platform saw of attempt `id` at `now`.
    pub fn feed(&mut self, id: AttemptId, now: Millis, input: Input) {
        self.at(now);
        match input {
            Input::Head(head) => self.machine.head(id, now, head),
            Input::Bytes(bytes) => self.machine.body_bytes(id, now, &bytes),
            Input::End => {
                self.closed.insert(id);
                self.machine.body_end(id, now);
            }
            Input::ReadError(message) => {
                self.closed.insert(id);
                self.machine.body_error(id, now, BodyError::Read(message));
            }
        }
        self.drain();
    }

    pub fn cancel(&mut self, now: Millis, reason: CancelReason) {
        self.at(now).machine.cancel(now, reason);
        self.drain();
    }

    /// A timer fired at `now` (early, late or on time: the machine decides).
    pub fn wake_at(&mut self, now: Millis) {
        self.at(now).machine.handle_timeout(now);
        self.drain();
    }

    /// Sleeps until the machine's next deadline and wakes there; the time woken at.
    pub fn wake(&mut self) -> Millis {
        let due = self.machine.poll_timeout().expect("something to wait for");
        let now = due.max(self.now);
        self.wake_at(now);
        now
    }

    /// The text handed out, joined.
    pub fn text(&self) -> String {
        self.heard
            .iter()
            .filter_map(|d| match d {
                Delivery::Text { text, .. } => Some(text.as_str()),
                Delivery::Event(_) => None,
            })
            .collect()
    }

    /// The events handed out.
    pub fn events(&self) -> Vec<&GuardEvent> {
        self.heard
            .iter()
            .filter_map(|d| match d {
                Delivery::Event(event) => Some(event),
                Delivery::Text { .. } => None,
            })
            .collect()
    }

    /// The events' types, in order.
    pub fn types(&self) -> Vec<&'static str> {
        self.events().iter().map(|e| e.type_name()).collect()
    }

    /// Everything handed out as `type` names, with text shown as `text:<delta>`.
    pub fn transcript(&self) -> Vec<String> {
        self.heard
            .iter()
            .map(|d| match d {
                Delivery::Text { text, .. } => format!("text:{text}"),
                Delivery::Event(event) => event.type_name().to_owned(),
            })
            .collect()
    }

    pub fn result(&self) -> &GenerationResult {
        match self.machine.outcome() {
            Some(Ok(result)) => result,
            other => panic!("expected a result, got {other:?}"),
        }
    }

    /// The text handed out for one attempt, checked against the length the machine counted.
    pub fn delivered(&self, text: Option<DeliveredText>) -> String {
        let Some(text) = text else {
            return String::new();
        };
        let joined = self.texts.get(&text.attempt).cloned().unwrap_or_default();
        assert_eq!(joined.len(), text.bytes, "the machine's count of {text:?}");
        joined
    }

    /// The result's text, as a driver builds it from the deliveries.
    pub fn result_text(&self) -> String {
        self.delivered(Some(self.result().text))
    }

    /// The error's `partialText`, as a driver builds it from the deliveries.
    pub fn partial_text(&self) -> String {
        self.delivered(self.error().partial_text)
    }

    pub fn error(&self) -> &GenerationError {
        match self.machine.outcome() {
            Some(Err(error)) => error,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// The call is over, nothing waits on the clock, and every request sent ended: the
    /// platform closed it or the machine released it.
    pub fn assert_over_and_released(&self) {
        assert!(self.machine.is_settled(), "the call is not over");
        assert_eq!(
            self.machine.poll_timeout(),
            None,
            "a timer outlives the call"
        );
        for request in &self.sent {
            let id = request.attempt;
            let released = self.cancelled.contains(&id) || self.finished.contains(&id);
            let closed = self.closed.contains(&id);
            assert!(released || closed, "attempt {id:?} was left open");
            assert!(
                self.cancelled
                    .iter()
                    .chain(&self.finished)
                    .filter(|c| **c == id)
                    .count()
                    <= 1,
                "attempt {id:?} released twice"
            );
        }
    }

    /// Everything in what was handed out or in the outcome, as text, for leak checks.
    pub fn everything_said(&self) -> String {
        format!("{:?} {:?}", self.heard, self.machine.outcome())
    }
}
