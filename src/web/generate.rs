//! `generate()`: one guarded chat call, a thin driver of [`Generation`] on `fetch`, the
//! response's `ReadableStream`, one timer and the caller's abort signals.
//!
//! It performs what the machine asks (send a request with an `AbortController` of its own;
//! release an attempt: abort it and cancel its reader), reports what the platform did (a head,
//! a read, an end, an error, the clock on `performance.now()`, an abort), hands the machine's
//! text and events to `onText` and `onEvent`, joins each attempt's text into a JavaScript
//! string (wasm memory never shrinks, so the answer must not grow in it), and settles the call
//! on the machine's outcome. It must never decide: no deadline, retry, event or message is
//! made here (the machine's module doc lists how a driver calls it and what stays with one).
//!
//! Globals only (`fetch`, `performance`, `setTimeout`, `AbortController`): no `window`.

use crate::core::deadline::Millis;
use crate::core::events::LogLevel;
use crate::core::machine::{
    Action, AttemptId, BodyError, Callback, CancelReason, CauseRef, DeliveredText, Delivery,
    Finished, Generation, GenerationConfig, Request,
};
use crate::web::executor::future_to_promise;
use js_sys::{Function, JsString, Promise};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

use crate::web::aborts::Aborted;
use crate::web::objects::{
    config_error, error_object, event_object, log_event, log_thrown, result_object,
};
use crate::web::options::{read_options, Options};
use crate::web::resources::{Alarm, Counted, Kind, Listener};
use crate::web::transport::{js_error_message, Heard, Transport, Transports};

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`, looked up at each call: the one clock every deadline is read on.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Stream an answer through the failover chain in `options`, within its deadlines.
/// Resolves with a `GenerateResult`; rejects with a `GuardError` (see the TypeScript types).
#[wasm_bindgen(js_name = generate, skip_typescript)]
pub fn generate(options: JsValue) -> Promise {
    // The same future as `stream()`'s and a `Guard`'s: one copy of it in the module.
    future_to_promise(drive(read_options(&options), None, None, None))
}

/// A generation that a session's signal can also cancel (its abort reason says why).
pub(crate) async fn run_generation(
    options: JsValue,
    session: Option<AbortSignal>,
) -> Result<JsValue, JsValue> {
    drive(read_options(&options), session, None, None).await
}

/// Hears every piece of text the call hands out, beside `onText`, and how the call ended
/// (`stream()`'s iterator).
pub(crate) trait TextTap {
    /// A piece of answer text.
    fn text(&self, text: &str);
    /// The call settled with `outcome` (just before its promise does).
    fn end(&self, outcome: &Result<JsValue, JsValue>);
}

/// A `Guard`'s part in one of its calls: it makes the call's machine and hears when it is over
/// (the guard's core decides; this only passes the time and the machine along).
pub(crate) trait GuardHook {
    /// The call's machine, for `config`, the call beginning at `now`.
    fn machine(&self, now: Millis, config: GenerationConfig) -> Generation;
    /// The call ended at `now`; `machine` says what its attempts showed.
    fn finished(&self, now: Millis, machine: &Generation);
    /// The guard's own `onEvent`, heard after the call's.
    fn on_event(&self) -> Option<Function>;
}

/// One call over options already read (or refused), a guard's when `hook` is set. Boxed, so
/// that every caller (generate(), stream(), a session's, a guard's) awaits one compiled copy of
/// the driver instead of inlining its own.
pub(crate) fn drive(
    options: Result<Options, String>,
    session: Option<AbortSignal>,
    tap: Option<Rc<dyn TextTap>>,
    hook: Option<Rc<dyn GuardHook>>,
) -> Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>> {
    Box::pin(async move {
        let outcome = run_tapped(options, session, tap.clone(), hook).await;
        if let Some(tap) = tap {
            tap.end(&outcome);
        }
        outcome
    })
}

async fn run_tapped(
    options: Result<Options, String>,
    session: Option<AbortSignal>,
    tap: Option<Rc<dyn TextTap>>,
    hook: Option<Rc<dyn GuardHook>>,
) -> Result<JsValue, JsValue> {
    let _in_flight = Counted::new(Kind::InFlight);
    let options = options.map_err(|message| config_error(&message))?;
    let aborted = Rc::new(Aborted::default());
    // The caller's signal reports `"signal"`; a session's names what happened in its reason.
    let sources = [(options.signal.clone(), true), (session, false)];
    let _listeners: Vec<Listener> = sources
        .into_iter()
        .filter_map(|(signal, callers)| aborted.watch(signal?, callers))
        .collect();
    let mut driver = Driver::new(options, aborted, hook);
    driver.tap = tap;
    driver.run().await
}

/// What ended a wait.
enum Woke {
    /// A transport's `fetch` or read settled.
    Settled(AttemptId, Result<JsValue, JsValue>),
    /// The alarm fired: read the clock.
    Alarm,
    /// A signal was aborted.
    Aborted,
}

/// The call in progress: the machine and what the platform holds for it.
struct Driver {
    machine: Generation,
    fetch: Option<Function>,
    on_text: Option<Function>,
    on_event: Option<Function>,
    log: LogLevel,
    aborted: Rc<Aborted>,
    /// The call's one deadline timer, armed at the machine's next deadline.
    alarm: Alarm,
    transports: Transports,
    /// The text handed out per attempt, joined (outside the wasm memory).
    texts: Vec<(AttemptId, JsString)>,
    /// Text handed out and not joined yet, and its attempt.
    unjoined: (AttemptId, String),
    /// What the platform threw or rejected with, per attempt.
    causes: Vec<(AttemptId, JsValue)>,
    /// The callback that threw and what it threw.
    thrown: Option<(Callback, JsValue)>,
    /// Hears the text too.
    tap: Option<Rc<dyn TextTap>>,
    /// The guard whose call this is.
    hook: Option<Rc<dyn GuardHook>>,
    /// The guard's own `onEvent`.
    guard_on_event: Option<Function>,
}

impl Driver {
    fn new(options: Options, aborted: Rc<Aborted>, hook: Option<Rc<dyn GuardHook>>) -> Driver {
        let machine = match &hook {
            Some(hook) => hook.machine(performance_now(), options.config),
            None => Generation::new(options.config),
        };
        Driver {
            guard_on_event: hook.as_ref().and_then(|hook| hook.on_event()),
            hook,
            machine,
            fetch: options.fetch,
            on_text: options.on_text,
            on_event: options.on_event,
            log: options.log,
            aborted,
            alarm: Alarm::default(),
            transports: Transports::default(),
            texts: Vec::new(),
            unjoined: (AttemptId(0), String::new()),
            causes: Vec::new(),
            thrown: None,
            tap: None,
        }
    }

    async fn run(mut self) -> Result<JsValue, JsValue> {
        self.machine.start(performance_now());
        loop {
            self.drain();
            if let Some(outcome) = self.machine.take_outcome() {
                if let Some(hook) = &self.hook {
                    hook.finished(performance_now(), &self.machine);
                }
                return self.settle(outcome);
            }
            let now = performance_now();
            match self.machine.poll_timeout() {
                Some(due) => self.alarm.ensure(due, now),
                None => self.alarm.disarm(),
            }
            self.transports.start_reads(None);
            match self.wait().await {
                Woke::Settled(attempt, result) => self.report(attempt, result),
                Woke::Alarm => self.machine.handle_timeout(performance_now()),
                Woke::Aborted => {} // the drain cancels
            }
        }
    }

    /// Performs the machine's actions and hands out its deliveries until there are none; an
    /// abort seen meanwhile (a callback may abort a signal) cancels before anything more.
    fn drain(&mut self) {
        loop {
            if !self.machine.is_settled() {
                if let Some(reason) = self.aborted.reason() {
                    self.machine.cancel(performance_now(), reason);
                }
            }
            if let Some(action) = self.machine.poll_action() {
                match action {
                    Action::Send(request) => self.send(request),
                    Action::Cancel { attempt } => self.transports.release(attempt),
                    Action::Finish { attempt } => self.transports.finish(attempt),
                }
            } else if let Some(delivery) = self.machine.poll_delivery() {
                self.deliver(delivery);
            } else {
                return self.join_text();
            }
        }
    }

    fn send(&mut self, request: Request) {
        let attempt = request.attempt;
        let sent = Transport::send(request, self.fetch.as_ref());
        if let Err(error) = self.transports.add(sent) {
            self.failed(attempt, error, true);
        }
    }

    /// The platform threw or rejected: the request failed (before its head) or a read did.
    fn failed(&mut self, attempt: AttemptId, error: JsValue, before_head: bool) {
        let now = performance_now();
        let message = js_error_message(&error);
        self.causes.push((attempt, error));
        match before_head {
            true => self.machine.request_error(attempt, now, &message),
            false => {
                let error = BodyError::Read(message);
                self.machine.body_error(attempt, now, error)
            }
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        let (thrown, which) = match delivery {
            Delivery::Text { attempt, text } => {
                if self.unjoined.0 != attempt {
                    self.join_text();
                    self.unjoined.0 = attempt;
                }
                self.unjoined.1.push_str(&text);
                if let Some(tap) = &self.tap {
                    tap.text(&text);
                }
                let Some(on_text) = self.on_text.as_ref() else {
                    return;
                };
                let value = JsValue::from_str(&text);
                (
                    on_text.call1(&JsValue::UNDEFINED, &value).err(),
                    Callback::OnText,
                )
            }
            Delivery::Event(event) => {
                log_event(self.log, &event);
                // An `onEvent` that threw does not hear of the cancel it caused.
                let threw = matches!(self.thrown, Some((Callback::OnEvent, _)));
                if threw || (self.on_event.is_none() && self.guard_on_event.is_none()) {
                    return;
                }
                let value = event_object(&event);
                // The call's own listener, then its guard's; the first that throws cancels.
                let thrown = [self.on_event.as_ref(), self.guard_on_event.as_ref()]
                    .into_iter()
                    .flatten()
                    .find_map(|f| f.call1(&JsValue::UNDEFINED, &value).err());
                (thrown, Callback::OnEvent)
            }
        };
        let Some(thrown) = thrown else { return };
        if self.machine.is_settled() {
            return; // the call is over: nothing left to cancel
        }
        log_thrown(self.log, which, &thrown);
        self.thrown = Some((which, thrown));
        self.machine
            .cancel(performance_now(), CancelReason::Callback(which));
    }

    /// Joins the text handed out since the last join to its attempt's JavaScript string: once
    /// per drain (one read's text), so the answer is a few large pieces in the JS heap, and
    /// never more than one read's text in wasm memory.
    fn join_text(&mut self) {
        let (attempt, text) = &mut self.unjoined;
        if text.is_empty() {
            return;
        }
        let piece = JsValue::from_str(text);
        text.clear();
        match self.texts.iter_mut().find(|(id, _)| id == attempt) {
            Some((_, joined)) => *joined = joined.concat(&piece),
            None => self.texts.push((*attempt, piece.unchecked_into())),
        }
    }

    /// Waits for a `fetch` or read to settle, the alarm or an abort (in that order when
    /// several are ready).
    async fn wait(&mut self) -> Woke {
        let (transports, alarm, aborted) = (&mut self.transports, &self.alarm, &self.aborted);
        poll_fn(|cx| match transports.poll_settled(cx) {
            Poll::Ready((attempt, result)) => Poll::Ready(Woke::Settled(attempt, result)),
            Poll::Pending if alarm.poll_fired(cx) => Poll::Ready(Woke::Alarm),
            Poll::Pending if aborted.wake.poll_fired(cx) => Poll::Ready(Woke::Aborted),
            Poll::Pending => Poll::Pending,
        })
        .await
    }

    /// Tells the machine what a `fetch` or a read of `attempt` gave.
    fn report(&mut self, attempt: AttemptId, result: Result<JsValue, JsValue>) {
        let now = performance_now();
        let machine = &mut self.machine;
        match self.transports.heard(attempt, result) {
            None => {}
            Some(Heard::Failed { error, before_head }) => self.failed(attempt, error, before_head),
            Some(Heard::Head { head, .. }) => machine.head(attempt, now, head),
            Some(Heard::Bytes { bytes, .. }) => machine.body_bytes(attempt, now, bytes),
            Some(Heard::End) => machine.body_end(attempt, now),
            Some(Heard::NotBytes) => machine.body_error(attempt, now, BodyError::NotBytes),
        }
    }

    /// Settles the call: the result or the error, from the machine's outcome.
    fn settle(&mut self, outcome: Finished) -> Result<JsValue, JsValue> {
        self.transports.clear();
        match outcome {
            Ok(result) => {
                let cause = result.cause.as_ref().and_then(|c| self.cause(c.cause));
                let text = self.text(Some(result.text));
                Ok(result_object(&result, &text, cause))
            }
            Err(error) => {
                let text = self.text(error.partial_text);
                Err(error_object(&error, &text, self.cause(error.cause)))
            }
        }
    }

    /// The text handed out that the machine points at (`""` for none).
    fn text(&self, delivered: Option<DeliveredText>) -> JsString {
        delivered
            .and_then(|d| self.texts.iter().find(|(id, _)| *id == d.attempt))
            .map_or_else(|| JsString::from(""), |(_, text)| text.clone())
    }

    /// The value the machine's cause points at.
    fn cause(&self, cause: Option<CauseRef>) -> Option<JsValue> {
        match cause? {
            CauseRef::Platform(attempt) => self
                .causes
                .iter()
                .find(|(id, _)| *id == attempt)
                .map(|(_, value)| value.clone()),
            CauseRef::Thrown => self.thrown.as_ref().map(|(_, value)| value.clone()),
        }
    }
}
