//! A guard's state across calls (`core::guard::state`, the `Guard` class's core) on a fake
//! clock: whole calls run through the generation machine it makes, and it learns from each.
//! Learned deadlines kick in after `minSamples` and never exceed the configured ones; a breaker
//! opens after N stalls in a row (not on a 400), skips with an event and an attempt outcome,
//! lets exactly one probe through when half-open; `hedge: "auto"` waits until it has learned.

#![cfg(not(target_arch = "wasm32"))]

mod machine_support;

use llm_stream_guard::core::deadline::Millis;
use llm_stream_guard::core::events::GuardEvent;
use llm_stream_guard::core::guard::breaker::BreakerSettings;
use llm_stream_guard::core::guard::learned::Adaptive;
use llm_stream_guard::core::guard::state::{GuardConfig, GuardState, HedgeAfter, ProviderStats};
use llm_stream_guard::core::machine::{GenerationConfig, Head, ProviderConfig};
use llm_stream_guard::core::policy::RetryPolicy;
use llm_stream_guard::core::relay::{
    OnCut, Relay, RelayAction, RelayConfig, RelayDelivery, RelayProvider, SdkRequest,
};
use machine_support::*;

/// How a provider behaves in one call.
#[derive(Debug, Clone, Copy)]
enum Behave {
    /// Head after 5 ms, first content after `first` ms, a second after `gap` more, then done.
    Answer { first: Millis, gap: Millis },
    /// Head after 5 ms, then nothing (the first-token deadline ends it).
    Stall,
    /// This status with a JSON error body.
    Status(u16),
}

fn chain(names: &[&str], change: impl Fn(&mut ProviderConfig)) -> GenerationConfig {
    let mut providers: Vec<ProviderConfig> = names.iter().map(|n| provider(n)).collect();
    for p in &mut providers {
        p.max_retries = 0;
        change(p);
    }
    config(providers)
}

/// One whole call at `t0` through `guard`, each provider behaving as `behave` says; the driver
/// after the guard has learned from it.
fn call(
    guard: &mut GuardState,
    config: &GenerationConfig,
    t0: Millis,
    behave: impl Fn(&str) -> Behave,
) -> Driver {
    let (generation, guarded) = guard.start(t0, config.clone());
    let mut d = Driver::new(config.clone());
    d.machine = generation;
    d.start(t0);
    let mut handled = 0;
    while !d.machine.is_settled() {
        if d.sent.len() == handled {
            d.wake();
            continue;
        }
        handled = d.sent.len();
        let request = d.sent.last().unwrap().clone();
        let name = config.providers[request.provider].name.clone();
        let sent_at = d.now;
        match behave(&name) {
            Behave::Answer { first, gap } => {
                d.head(sent_at + 5.0, sse_head());
                // Each read comes at its time, unless a deadline before it ended the attempt.
                let still = |d: &mut Driver, at: Millis| {
                    while d.machine.poll_timeout().is_some_and(|due| due <= at) {
                        d.wake();
                    }
                    d.at(at);
                    !d.machine.is_settled() && d.sent.len() == handled
                };
                if still(&mut d, sent_at + first) {
                    d.bytes(sent_at + first, &content("Hello"));
                }
                if still(&mut d, sent_at + first + gap) {
                    d.bytes(sent_at + first + gap, &content(" world"));
                    d.bytes(sent_at + first + gap, &(finish("stop") + DONE));
                    d.end(sent_at + first + gap);
                }
            }
            Behave::Stall => d.head(sent_at + 5.0, sse_head()),
            Behave::Status(status) => {
                d.head(sent_at + 5.0, head(status, "application/json"));
                d.bytes(sent_at + 6.0, r#"{"error":{"message":"no"}}"#);
                d.end(sent_at + 6.0);
            }
        }
    }
    guard.finish(d.now, guarded, d.machine.observations());
    d
}

fn answers(first: Millis, gap: Millis) -> impl Fn(&str) -> Behave {
    move |_| Behave::Answer { first, gap }
}

fn stats<'a>(all: &'a [ProviderStats], name: &str) -> &'a ProviderStats {
    all.iter().find(|s| s.provider == name).expect("listed")
}

fn attempts(d: &Driver) -> Vec<(String, String)> {
    let attempts = match d.machine.outcome() {
        Some(Ok(result)) => &result.attempts,
        Some(Err(error)) => &error.attempts,
        None => panic!("not over"),
    };
    attempts
        .iter()
        .map(|a| (a.provider.clone(), a.outcome.clone()))
        .collect()
}

fn pair(provider: &str, outcome: &str) -> (String, String) {
    (provider.into(), outcome.into())
}

fn adaptive(min_samples: u64) -> Option<Adaptive> {
    Some(Adaptive {
        min_samples,
        ..Adaptive::default()
    })
}

fn near(value: f64, expected: f64) -> bool {
    (value - expected).abs() <= expected * 0.02
}

#[test]
fn learned_deadlines_kick_in_after_min_samples_and_cut_a_slow_first_token() {
    let config = chain(&["a"], |p| {
        p.timeouts.first_token_ms = 10_000.0;
        p.timeouts.idle_ms = 10_000.0;
    });
    let settings = GuardConfig {
        adaptive: adaptive(5),
        ..GuardConfig::default()
    };
    let mut guard = GuardState::new(settings, &config);
    let mut t = 0.0;
    for i in 0..5 {
        let before = guard.stats(t);
        let a = stats(&before, "a");
        assert_eq!(a.samples, i);
        assert_eq!(a.learned.first_token_ms, None, "nothing learned after {i}");
        let d = call(&mut guard, &config, t, answers(200.0, 100.0));
        assert!(d.machine.outcome().unwrap().is_ok());
        t = d.now + 10.0;
    }
    let after = guard.stats(t);
    let a = stats(&after, "a");
    assert_eq!(a.samples, 5);
    let first = a.first_token_ms.expect("quantiles");
    assert!(near(first.p95, 200.0), "{first:?}");
    // factor 3 × p95: 600 ms and 300 ms, within the sketch's 1 %.
    let learned_first = a.learned.first_token_ms.expect("learned");
    let learned_idle = a.learned.idle_ms.expect("learned");
    assert!(near(learned_first, 600.0), "{learned_first}");
    assert!(near(learned_idle, 300.0), "{learned_idle}");
    // The next call uses it: a first token at 700 ms is too late now (configured: 10 s).
    let d = call(&mut guard, &config, t, answers(700.0, 10.0));
    let error = d.machine.outcome().unwrap().as_ref().unwrap_err();
    assert_eq!((error.kind, error.phase), ("timeout", Some("first-token")));
    let timed_out = d
        .events()
        .into_iter()
        .find_map(|e| match e {
            GuardEvent::Timeout { elapsed_ms, .. } => Some(*elapsed_ms),
            _ => None,
        })
        .unwrap();
    assert!(
        near(timed_out, learned_first),
        "{timed_out} vs {learned_first}"
    );
}

#[test]
fn a_learned_deadline_never_exceeds_the_configured_one() {
    let config = chain(&["a"], |p| {
        p.timeouts.first_token_ms = 500.0;
        p.timeouts.idle_ms = 10_000.0;
    });
    let settings = GuardConfig {
        adaptive: adaptive(3),
        ..GuardConfig::default()
    };
    let mut guard = GuardState::new(settings, &config);
    let mut t = 0.0;
    for _ in 0..3 {
        t = call(&mut guard, &config, t, answers(400.0, 100.0)).now + 1.0;
    }
    let all = guard.stats(t);
    let a = stats(&all, "a");
    // 3 × 400 = 1200 is learned; 500 is configured and wins.
    assert_eq!(a.learned.first_token_ms, Some(500.0));
    assert!(near(a.learned.idle_ms.unwrap(), 300.0));
    // And with adaptive off, nothing is applied (but still learned for stats).
    let off = GuardConfig {
        adaptive: None,
        ..GuardConfig::default()
    };
    let mut guard = GuardState::new(off, &config);
    for _ in 0..25 {
        t = call(&mut guard, &config, t, answers(100.0, 10.0)).now + 1.0;
    }
    let all = guard.stats(t);
    let a = stats(&all, "a");
    assert_eq!(a.samples, 25);
    assert_eq!(a.learned.first_token_ms, None);
    let d = call(&mut guard, &config, t, answers(450.0, 10.0));
    assert!(
        d.machine.outcome().unwrap().is_ok(),
        "configured 500 ms holds"
    );
}

fn breaker_guard(config: &GenerationConfig) -> GuardState {
    let settings = GuardConfig {
        adaptive: None,
        breaker: BreakerSettings {
            failure_threshold: 3,
            cooldown_ms: 1_000.0,
        },
        ..GuardConfig::default()
    };
    GuardState::new(settings, config)
}

/// `a` stalls, `b` answers.
fn a_stalls(name: &str) -> Behave {
    match name {
        "a" => Behave::Stall,
        _ => Behave::Answer {
            first: 20.0,
            gap: 5.0,
        },
    }
}

#[test]
fn the_breaker_opens_after_stalls_in_a_row_but_not_on_a_400_and_skips_with_an_event() {
    let config = chain(&["a", "b"], |_| {});
    let mut guard = breaker_guard(&config);
    let mut t = 0.0;
    for _ in 0..2 {
        let d = call(&mut guard, &config, t, a_stalls);
        assert_eq!(attempts(&d), [pair("a", "timeout"), pair("b", "complete")]);
        t = d.now + 1.0;
    }
    // A 400 stops the call; it neither counts nor breaks the streak.
    let d = call(&mut guard, &config, t, |_| Behave::Status(400));
    assert_eq!(attempts(&d), [pair("a", "http")]);
    t = d.now + 1.0;
    let a = stats(&guard.stats(t), "a").breaker.clone();
    assert_eq!((a.state, a.failures), ("closed", 2.0));
    // The third stall opens it.
    let d = call(&mut guard, &config, t, a_stalls);
    t = d.now + 1.0;
    let a = stats(&guard.stats(t), "a").breaker.clone();
    assert_eq!((a.state, a.reason), ("open", Some("timeout")));
    assert!(a.retry_in_ms.unwrap() <= 1_000.0 && a.retry_in_ms.unwrap() > 990.0);
    // Now `a` is skipped: an event and an attempt outcome, and no request.
    let d = call(&mut guard, &config, t, a_stalls);
    assert_eq!(attempts(&d), [pair("a", "skipped"), pair("b", "complete")]);
    assert_eq!(d.sent.len(), 1);
    assert_eq!(d.sent[0].provider, 1);
    let skipped = d
        .events()
        .into_iter()
        .find(|e| matches!(e, GuardEvent::Skipped { .. }))
        .cloned()
        .expect("a skipped event");
    match skipped {
        GuardEvent::Skipped {
            provider,
            model,
            reason,
            retry_in_ms,
        } => {
            assert_eq!((provider.as_str(), model.as_str()), ("a", "a/model"));
            assert_eq!(reason, "timeout");
            assert!(retry_in_ms.unwrap() > 0.0 && retry_in_ms.unwrap() <= 1_000.0);
        }
        _ => unreachable!(),
    }
    assert_eq!(
        &d.types()[..3],
        ["skipped", "failover", "request-start"],
        "{:?}",
        d.types()
    );
}

#[test]
fn four_hundreds_never_open_the_breaker() {
    let config = chain(&["a"], |_| {});
    let mut guard = breaker_guard(&config);
    let mut t = 0.0;
    for _ in 0..10 {
        t = call(&mut guard, &config, t, |_| Behave::Status(400)).now + 1.0;
    }
    assert_eq!(stats(&guard.stats(t), "a").breaker.state, "closed");
    // A 503 does count (three in a row, no retries).
    for _ in 0..3 {
        t = call(&mut guard, &config, t, |_| Behave::Status(503)).now + 1.0;
    }
    let a = stats(&guard.stats(t), "a").breaker.clone();
    assert_eq!((a.state, a.reason), ("open", Some("http")));
}

/// Opens `a`'s breaker with three stalls; the time after.
fn opened(guard: &mut GuardState, config: &GenerationConfig) -> Millis {
    let mut t = 0.0;
    for _ in 0..3 {
        t = call(guard, config, t, a_stalls).now + 1.0;
    }
    assert_eq!(stats(&guard.stats(t), "a").breaker.state, "open");
    t
}

#[test]
fn half_open_lets_exactly_one_probe_through_and_its_success_closes() {
    let config = chain(&["a", "b"], |_| {});
    let mut guard = breaker_guard(&config);
    let t = opened(&mut guard, &config) + 1_000.0;
    assert_eq!(stats(&guard.stats(t), "a").breaker.state, "half-open");
    // Two calls at once: the first probes `a`, the second skips it (no retry time: the probe
    // is out).
    let (probe, probe_call) = guard.start(t, config.clone());
    let mut first = Driver::new(config.clone());
    first.machine = probe;
    first.start(t);
    assert_eq!(first.sent.len(), 1);
    assert_eq!(first.sent[0].provider, 0, "the probe asks a");
    let second = call(&mut guard, &config, t, a_stalls);
    assert_eq!(
        attempts(&second),
        [pair("a", "skipped"), pair("b", "complete")]
    );
    assert!(second.events().iter().any(|e| matches!(
        e,
        GuardEvent::Skipped {
            retry_in_ms: None,
            ..
        }
    )));
    // The probe succeeds: closed, and the next call asks `a` again.
    first.head(t + 5.0, sse_head());
    first.bytes(t + 20.0, &(content("ok") + &finish("stop") + DONE));
    first.end(t + 20.0);
    assert!(first.machine.outcome().unwrap().is_ok());
    guard.finish(first.now, probe_call, first.machine.observations());
    let a = stats(&guard.stats(first.now), "a").breaker.clone();
    assert_eq!((a.state, a.failures), ("closed", 0.0));
    let d = call(&mut guard, &config, first.now + 1.0, answers(10.0, 1.0));
    assert_eq!(attempts(&d), [pair("a", "complete")]);
}

#[test]
fn a_failed_probe_reopens_and_a_probe_never_reached_gives_its_turn_back() {
    let config = chain(&["a", "b"], |_| {});
    let mut guard = breaker_guard(&config);
    let t = opened(&mut guard, &config) + 1_000.0;
    let d = call(&mut guard, &config, t, a_stalls);
    assert_eq!(attempts(&d), [pair("a", "timeout"), pair("b", "complete")]);
    let a = stats(&guard.stats(d.now), "a").breaker.clone();
    assert_eq!(a.state, "open", "the failed probe reopens it");
    assert!(a.retry_in_ms.unwrap() > 990.0);
    // `b` half-open, `a` closed: a call answered by `a` never reaches `b`, whose turn comes back.
    let config = chain(&["b", "a"], |_| {});
    let mut guard = breaker_guard(&config);
    let mut t = 0.0;
    for _ in 0..3 {
        t = call(&mut guard, &config, t, |n| match n {
            "b" => Behave::Stall,
            _ => Behave::Answer {
                first: 10.0,
                gap: 1.0,
            },
        })
        .now + 1.0;
    }
    let config_ab = chain(&["a", "b"], |_| {});
    let t = t + 1_000.0;
    let d = call(&mut guard, &config_ab, t, answers(10.0, 1.0));
    assert_eq!(attempts(&d), [pair("a", "complete")]);
    assert_eq!(stats(&guard.stats(d.now), "b").breaker.state, "half-open");
    let d = call(&mut guard, &config, d.now + 1.0, answers(10.0, 1.0));
    assert_eq!(attempts(&d), [pair("b", "complete")], "b was probed");
    assert_eq!(stats(&guard.stats(d.now), "b").breaker.state, "closed");
}

#[test]
fn every_provider_skipped_rejects_as_unavailable_without_a_request() {
    let config = chain(&["a"], |_| {});
    let mut guard = breaker_guard(&config);
    let mut t = 0.0;
    for _ in 0..3 {
        t = call(&mut guard, &config, t, |_| Behave::Stall).now + 1.0;
    }
    let d = call(&mut guard, &config, t, |_| Behave::Stall);
    assert!(d.sent.is_empty());
    let error = d.machine.outcome().unwrap().as_ref().unwrap_err();
    assert_eq!(error.kind, "unavailable");
    assert_eq!(error.provider, "a");
    assert!(
        error.message.contains("breaker is open"),
        "{}",
        error.message
    );
    assert_eq!(attempts(&d), [pair("a", "skipped")]);
    assert_eq!(d.types(), ["skipped"]);
}

#[test]
fn an_auto_hedge_waits_until_the_first_provider_is_learned() {
    let config = chain(&["a", "b"], |_| {});
    let settings = GuardConfig {
        adaptive: None,
        hedge: Some(HedgeAfter::Auto),
        breaker: BreakerSettings {
            failure_threshold: 100,
            cooldown_ms: 1.0,
        },
        ..GuardConfig::default()
    };
    let mut guard = GuardState::new(settings, &config);
    // Not learned: `a` stalls, no hedge (b is asked after the first-token deadline).
    let d = call(&mut guard, &config, 0.0, a_stalls);
    assert!(!d.types().contains(&"hedge"), "{:?}", d.types());
    let mut t = d.now + 1.0;
    // 20 answers (the default minSamples) with a first token at 50 ms.
    for _ in 0..20 {
        t = call(&mut guard, &config, t, answers(50.0, 5.0)).now + 1.0;
    }
    let (generation, _) = guard.start(t, config.clone());
    let mut d = Driver::new(config.clone());
    d.machine = generation;
    d.start(t);
    d.head(t + 5.0, sse_head());
    let woke = d.wake();
    assert!(near(woke - t, 50.0), "hedged after {} ms", woke - t);
    assert_eq!(d.sent.len(), 2, "b asked in parallel");
    assert!(d.types().contains(&"hedge"));
}

/// The guard's providers as a guarded `fetch`'s fallbacks, in chain order.
fn fallbacks(config: &GenerationConfig) -> Vec<RelayProvider> {
    config
        .providers
        .iter()
        .map(|p| RelayProvider {
            name: p.name.clone(),
            url: format!("http://127.0.0.1:9/{}/v1/chat/completions", p.name),
            model: p.model.clone(),
            api_key: None,
            headers: Vec::new(),
            timeouts: p.timeouts,
            max_retries: 0,
        })
        .collect()
}

/// One call of the guard's `fetch` at `t0`: the request's own endpoint answers 500, then each
/// fallback behaves as `behave` says (a stall or an answer); the relay's events, after the
/// guard learned from its attempts.
fn fetch_call(
    guard: &mut GuardState,
    config: &GenerationConfig,
    t0: Millis,
    behave: impl Fn(&str) -> Behave,
) -> Vec<GuardEvent> {
    let (kept, skipped, guarded) = guard.start_fetch(t0, fallbacks(config));
    let names: Vec<String> = std::iter::once("own".to_owned())
        .chain(kept.iter().map(|p| p.name.clone()))
        .collect();
    let body =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}";
    let mut relay = Relay::new(RelayConfig {
        request: SdkRequest {
            method: "POST".into(),
            url: "http://127.0.0.1:8/v1/chat/completions".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(body.into()),
        },
        timeouts: config.providers[0].timeouts,
        max_retries: 0,
        fallbacks: kept,
        policy: RetryPolicy {
            max_retries: 0,
            base_delay_ms: 10.0,
            max_delay_ms: 10.0,
        },
        max_event_bytes: 64 * 1024,
        on_cut: OnCut::Error,
        jitter_seed: 1,
    });
    for (name, model, skip) in skipped {
        relay.skipped(name, model, &skip);
    }
    let mut now = t0;
    let mut events = Vec::new();
    let mut sent = 0;
    relay.start(now);
    while !relay.is_settled() {
        let mut asked = None;
        while let Some(action) = relay.poll_action() {
            if let RelayAction::Send(out) = action {
                asked = Some(out.attempt);
            }
        }
        while let Some(delivery) = relay.poll_delivery() {
            if let RelayDelivery::Event(event) = delivery {
                events.push(event);
            }
        }
        let Some(attempt) = asked else {
            // Waiting on a deadline.
            now = relay.poll_timeout().expect("a settled relay or a deadline");
            relay.handle_timeout(now);
            continue;
        };
        let name = names[sent].clone();
        sent += 1;
        if name == "own" {
            let head = Head {
                status: 500,
                content_type: Some("application/json".into()),
                has_body: true,
                ..Head::default()
            };
            relay.head(attempt, now + 5.0, head);
            relay.body_bytes(attempt, now + 6.0, b"{\"error\":{\"message\":\"down\"}}");
            relay.body_end(attempt, now + 6.0);
            now += 6.0;
            continue;
        }
        let head = Head {
            status: 200,
            content_type: Some("text/event-stream".into()),
            has_body: true,
            ..Head::default()
        };
        relay.head(attempt, now + 5.0, head);
        match behave(&name) {
            Behave::Answer { first, gap } => {
                relay.body_bytes(attempt, now + first, content("Hello").as_bytes());
                let end = now + first + gap;
                let rest = content(" world") + &finish("stop") + DONE;
                relay.body_bytes(attempt, end, rest.as_bytes());
                relay.body_end(attempt, end);
                now = end;
            }
            Behave::Stall | Behave::Status(_) => now += 5.0,
        }
    }
    while let Some(delivery) = relay.poll_delivery() {
        if let RelayDelivery::Event(event) = delivery {
            events.push(event);
        }
    }
    guard.finish(now, guarded, relay.observations());
    events
}

#[test]
fn a_fetch_call_learns_from_the_relays_attempts_and_skips_an_open_breaker() {
    let config = chain(&["slow", "good"], |_| {});
    let settings = GuardConfig {
        breaker: BreakerSettings {
            failure_threshold: 1,
            cooldown_ms: 10_000.0,
        },
        ..GuardConfig::default()
    };
    let mut guard = GuardState::new(settings, &config);
    let behave = |name: &str| match name {
        "slow" => Behave::Stall,
        _ => Behave::Answer {
            first: 40.0,
            gap: 10.0,
        },
    };
    let first = fetch_call(&mut guard, &config, 0.0, behave);
    assert!(
        !first
            .iter()
            .any(|e| matches!(e, GuardEvent::Skipped { .. })),
        "{first:?}"
    );
    assert!(first
        .iter()
        .any(|e| matches!(e, GuardEvent::Done { provider, .. } if provider == "good")));
    let stats = guard.stats(1_000.0);
    let slow = stats.iter().find(|s| s.provider == "slow").unwrap();
    assert_eq!(slow.breaker.state, "open", "the stall opened its breaker");
    let good = stats.iter().find(|s| s.provider == "good").unwrap();
    assert_eq!(good.samples, 1, "the answer was learned");
    // The own endpoint is not one of the guard's providers: nothing is learned of it.
    assert_eq!(stats.len(), 2);

    let second = fetch_call(&mut guard, &config, 2_000.0, behave);
    let skipped: Vec<&str> = second
        .iter()
        .filter_map(|e| match e {
            GuardEvent::Skipped { provider, .. } => Some(provider.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(skipped, ["slow"]);
    assert!(
        !second
            .iter()
            .any(|e| matches!(e, GuardEvent::AttemptFailed { provider, .. } if provider == "slow")),
        "nothing was sent to the skipped provider: {second:?}"
    );
    assert!(second
        .iter()
        .any(|e| matches!(e, GuardEvent::Done { provider, .. } if provider == "good")));
}
