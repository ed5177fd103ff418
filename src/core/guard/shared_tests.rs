//! Two isolates' guards and one Durable Object's store, on a fake clock (milliseconds since the
//! epoch as plain numbers).

use super::*;
use crate::core::deadline::Timeouts;
use crate::core::guard::breaker::BreakerSettings;
use crate::core::guard::state::{GuardConfig, GuardState};
use crate::core::machine::Observation;
use crate::core::policy::Failure;
use crate::core::relay::RelayProvider;

const T0: Millis = 1_800_000_000_000.0;
const COOLDOWN: Millis = 30_000.0;

fn chain() -> Vec<RelayProvider> {
    ["silent", "backup"]
        .into_iter()
        .map(|name| RelayProvider {
            name: name.into(),
            url: format!("http://127.0.0.1:1/{name}"),
            model: "m".into(),
            api_key: None,
            headers: Vec::new(),
            timeouts: Timeouts::default(),
            max_retries: 0,
        })
        .collect()
}

fn guard() -> GuardState {
    let config = GuardConfig {
        breaker: BreakerSettings {
            failure_threshold: 3,
            cooldown_ms: COOLDOWN,
        },
        ..GuardConfig::default()
    };
    GuardState::for_relay(config, &chain())
}

/// One isolate: its guard and its side of the sharing.
struct Isolate {
    guard: GuardState,
    view: SharedView,
}

impl Isolate {
    fn new() -> Isolate {
        Isolate {
            guard: guard(),
            view: SharedView::new(REFRESH_MS),
        }
    }

    /// A request at `now`: the providers it asks (names, in order, up to the first that
    /// answers), and, when it ends at `now`, what it reports. `silent` fails (when asked) with
    /// `failure`, `backup` answers.
    fn request(
        &mut self,
        now: Millis,
        failure: Option<Failure>,
    ) -> (Vec<String>, Vec<SharedBreaker>) {
        let (kept, _skipped, call) = self.guard.start_relay(now, chain());
        let mut asked = Vec::new();
        let mut observations = Vec::new();
        for (index, name) in kept.iter().map(|p| &p.name).enumerate() {
            asked.push(name.clone());
            let failure = if name == "silent" {
                failure.clone()
            } else {
                None
            };
            let answered = failure.is_none();
            observations.push(Observation {
                provider: index,
                failure,
                first_token_ms: None,
                longest_gap_ms: None,
            });
            if answered {
                break;
            }
        }
        let before = self.guard.decisions();
        self.guard.finish(now, call, &observations);
        let after = self.guard.decisions();
        (asked, self.view.changes(now, &before, &after))
    }

    /// Asks the store (with `report`) at `now` and adopts its answer.
    fn sync(&mut self, store: &mut String, now: Millis, report: &[SharedBreaker]) {
        *store = sync_store(store, &serde_json::to_string(report).unwrap()).unwrap();
        self.view
            .adopt(&mut self.guard, now, &parse(store).unwrap());
    }

    fn breaker(&self, now: Millis, name: &str) -> &'static str {
        let stats = self.guard.stats(now);
        stats
            .iter()
            .find(|s| s.provider == name)
            .unwrap()
            .breaker
            .state
    }
}

fn stall() -> Option<Failure> {
    Some(Failure::Network)
}

#[test]
fn a_breaker_opened_in_one_isolate_makes_the_other_skip_the_provider() {
    let (mut a, mut b) = (Isolate::new(), Isolate::new());
    let mut store = String::new();
    b.sync(&mut store, T0, &[]);
    assert_eq!(b.request(T0, None).0, ["silent"]);
    for i in 0..3 {
        let now = T0 + 1_000.0 * f64::from(i);
        let (asked, report) = a.request(now, stall());
        assert_eq!(asked, ["silent", "backup"]);
        // Only the third failure changes a decision: the streak itself is not shared.
        assert_eq!(report.len(), usize::from(i == 2), "{report:?}");
        a.sync(&mut store, now, &report);
    }
    assert_eq!(a.breaker(T0 + 2_000.0, "silent"), "open");
    // B has not asked since: it still asks the provider.
    assert_eq!(b.breaker(T0 + 2_500.0, "silent"), "closed");
    let later = T0 + 3_000.0;
    assert!(b.view.due(later), "a second has passed since B asked");
    b.sync(&mut store, later, &[]);
    assert_eq!(b.breaker(later, "silent"), "open");
    let (asked, report) = b.request(later, None);
    assert_eq!(
        asked,
        ["backup"],
        "nothing is sent to the provider opened in A"
    );
    assert!(
        report.is_empty(),
        "an adopted decision is not reported back: {report:?}"
    );
    // The cool-down runs from A's decision, in both.
    let opened_at = T0 + 2_000.0;
    assert_eq!(b.breaker(opened_at + COOLDOWN - 1.0, "silent"), "open");
    assert_eq!(b.breaker(opened_at + COOLDOWN, "silent"), "half-open");
}

#[test]
fn a_probe_that_succeeds_in_one_isolate_closes_the_breaker_in_the_others() {
    let (mut a, mut b) = (Isolate::new(), Isolate::new());
    let mut store = String::new();
    for i in 0..3 {
        let now = T0 + f64::from(i);
        let (_, report) = a.request(now, stall());
        a.sync(&mut store, now, &report);
    }
    b.sync(&mut store, T0 + 10.0, &[]);
    assert_eq!(b.breaker(T0 + 10.0, "silent"), "open");
    // After the cool-down, A probes and the provider answers.
    let probe_at = T0 + 2.0 + COOLDOWN;
    let (asked, report) = a.request(probe_at, None);
    assert_eq!(asked, ["silent"]);
    assert_eq!(report.len(), 1);
    assert_eq!(report[0].open_until, None);
    a.sync(&mut store, probe_at, &report);
    // B, still open (its cool-down is the same, but say it learned of a later reopening): a
    // later close closes it; an older one would not.
    let reopened = SharedBreaker {
        provider: "silent".into(),
        open_until: Some(probe_at + 10_000.0),
        why: Some("timeout".into()),
        at: probe_at - 5_000.0,
    };
    b.view.adopt(&mut b.guard, probe_at - 5_000.0, &[reopened]);
    assert_eq!(b.breaker(probe_at, "silent"), "open");
    b.sync(&mut store, probe_at + 1.0, &[]);
    assert_eq!(b.breaker(probe_at + 1.0, "silent"), "closed");
    assert_eq!(b.request(probe_at + 2.0, None).0, ["silent"]);
}

#[test]
fn the_store_keeps_the_longest_open_and_otherwise_the_latest_decision() {
    let open = |at: Millis, until: Millis| SharedBreaker {
        provider: "p".into(),
        open_until: Some(until),
        why: Some("timeout".into()),
        at,
    };
    let closed = |at: Millis| SharedBreaker {
        provider: "p".into(),
        open_until: None,
        why: None,
        at,
    };
    let mut store = Vec::new();
    record(&mut store, open(10.0, 100.0));
    record(&mut store, open(20.0, 90.0));
    assert_eq!(store, [open(10.0, 100.0)], "the longer open stands");
    record(&mut store, closed(5.0));
    assert_eq!(
        store,
        [open(10.0, 100.0)],
        "a close made before the open is stale"
    );
    record(&mut store, closed(50.0));
    assert_eq!(store, [closed(50.0)], "a close made after it closes it");
    record(&mut store, open(40.0, 200.0));
    assert_eq!(
        store,
        [closed(50.0)],
        "an open made before the close is stale"
    );
    record(&mut store, open(60.0, 200.0));
    assert_eq!(store, [open(60.0, 200.0)]);
    // The same through the Durable Object's step, as JSON.
    let text = sync_store("", &serde_json::to_string(&[open(1.0, 2.0)]).unwrap()).unwrap();
    assert_eq!(
        text,
        r#"[{"provider":"p","openUntil":2.0,"why":"timeout","at":1.0}]"#
    );
    assert_eq!(
        sync_store(&text, "").unwrap(),
        text,
        "an empty report only reads"
    );
    assert_eq!(sync_store(&text, "[]").unwrap(), text);
}

#[test]
fn bad_reports_are_refused_and_the_store_is_bounded() {
    for bad in [
        "{}",
        "[1]",
        r#"[{"provider":"","at":1}]"#,
        r#"[{"provider":"p"}]"#,
        r#"[{"provider":"p","at":1,"key":"sk-x"}]"#,
        "not json",
    ] {
        assert_eq!(sync_store("", bad), Err(SyncError::Malformed), "{bad}");
    }
    let long = "x".repeat(MAX_NAME_BYTES + 1);
    let report = format!(r#"[{{"provider":"{long}","at":1}}]"#);
    assert_eq!(sync_store("", &report), Err(SyncError::Malformed));
    let many: Vec<SharedBreaker> = (0..=MAX_PROVIDERS)
        .map(|i| SharedBreaker {
            provider: format!("p{i}"),
            open_until: None,
            why: None,
            at: 1.0,
        })
        .collect();
    let text = serde_json::to_string(&many).unwrap();
    assert_eq!(sync_store("", &text), Err(SyncError::TooLarge));
    // Reported in parts, the store stops at its bound.
    let mut store = String::new();
    for part in many.chunks(10) {
        store = sync_store(&store, &serde_json::to_string(part).unwrap()).unwrap();
    }
    assert_eq!(parse(&store).unwrap().len(), MAX_PROVIDERS);
    // A store that cannot be read (only this code writes it) starts again.
    assert_eq!(sync_store("garbage", "[]").unwrap(), "[]");
}

#[test]
fn an_isolate_asks_at_most_every_interval_unless_it_has_something_to_report() {
    let mut view = SharedView::new(1_000.0);
    assert!(view.due(T0), "never asked");
    assert!(!view.due(T0 + 999.0));
    assert!(view.due(T0 + 1_000.0));
    assert!(!view.due(T0 + 1_500.0));
    // A report is sent at once, and counts as asking.
    let before = [("p".to_owned(), Decision::Closed)];
    let after = [(
        "p".to_owned(),
        Decision::Open {
            until: T0 + 40_000.0,
            why: "timeout",
        },
    )];
    assert_eq!(view.changes(T0 + 1_600.0, &before, &after).len(), 1);
    assert!(!view.due(T0 + 2_500.0));
    assert!(view.due(T0 + 2_600.0));
    // Nothing changed: nothing to report; half-open is never reported.
    assert!(view.changes(T0 + 3_000.0, &after, &after).is_empty());
    let half = [("p".to_owned(), Decision::HalfOpen)];
    assert!(view.changes(T0 + 3_000.0, &after, &half).is_empty());
    // A clock that went back asks again.
    assert!(view.due(T0));
}

#[test]
fn a_view_older_than_the_isolates_own_decision_does_not_undo_it() {
    let mut a = Isolate::new();
    let mut store = String::new();
    for i in 0..3 {
        let now = T0 + f64::from(i);
        let (_, report) = a.request(now, stall());
        a.sync(&mut store, now, &report);
    }
    // A view read before A's own later close (its probe answered) arrives after it.
    let stale = parse(&store).unwrap();
    let probe_at = T0 + 2.0 + COOLDOWN;
    let (_, report) = a.request(probe_at, None);
    assert_eq!(report.len(), 1);
    a.view.adopt(&mut a.guard, probe_at + 5.0, &stale);
    assert_eq!(a.breaker(probe_at + 5.0, "silent"), "closed");
}

#[test]
fn a_probe_in_flight_and_an_expired_open_are_left_alone() {
    let mut a = Isolate::new();
    let open = |at: Millis, until: Millis| SharedBreaker {
        provider: "silent".into(),
        open_until: Some(until),
        why: Some("http".into()),
        at,
    };
    // An open decision that ran out already changes nothing.
    a.view
        .adopt(&mut a.guard, T0, &[open(T0 - 40_000.0, T0 - 10_000.0)]);
    assert_eq!(a.breaker(T0, "silent"), "closed");
    // Open, then half-open with its probe out: a newer open elsewhere waits for the probe.
    a.view.adopt(&mut a.guard, T0, &[open(T0, T0 + 100.0)]);
    assert_eq!(a.breaker(T0, "silent"), "open");
    let (kept, _, call) = a.guard.start_relay(T0 + 100.0, chain());
    assert_eq!(kept[0].name, "silent", "the probe");
    a.view
        .adopt(&mut a.guard, T0 + 150.0, &[open(T0 + 120.0, T0 + 9_000.0)]);
    let observations = [Observation {
        provider: 0,
        failure: None,
        first_token_ms: None,
        longest_gap_ms: None,
    }];
    a.guard.finish(T0 + 200.0, call, &observations);
    assert_eq!(
        a.breaker(T0 + 200.0, "silent"),
        "closed",
        "the probe decided"
    );
    // A provider that is not of the chain is ignored.
    let other = SharedBreaker {
        provider: "elsewhere".into(),
        ..open(T0, T0 + 100.0)
    };
    a.view.adopt(&mut a.guard, T0, &[other]);
    assert_eq!(a.guard.decisions().len(), 2);
}
