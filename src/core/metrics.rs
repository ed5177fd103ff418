//! Counters for the edge worker, rendered in the Prometheus text exposition format (0.0.4).
//!
//! Fed from the guard's events and the worker's own decisions; rendered on `GET /metrics`.
//! Pure: no clock (durations come in as numbers), no I/O.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::core::guard::state::ProviderStats;

/// First-token latency histogram bucket bounds, in seconds.
pub const FIRST_TOKEN_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// All the worker's metrics.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    requests: BTreeMap<String, u64>,
    timeouts: BTreeMap<(String, String), u64>,
    retries: u64,
    failovers: u64,
    cancellations: u64,
    active_streams: i64,
    first_token_counts: [u64; FIRST_TOKEN_BUCKETS.len()],
    first_token_sum: f64,
    first_token_count: u64,
    /// Exchanges with the guard's Durable Object (`LSG_GUARD_DO`), by outcome.
    shared_syncs: BTreeMap<&'static str, u64>,
}

impl Metrics {
    /// A request finished with `outcome` (`complete`, `partial`, `timeout`, `upstream`,
    /// `unauthorized`, `bad_request`, `cancelled`, …).
    pub fn request(&mut self, outcome: &str) {
        *self.requests.entry(outcome.to_owned()).or_default() += 1;
    }

    /// A deadline passed in `layer` during `phase`.
    pub fn timeout(&mut self, layer: &str, phase: &str) {
        *self
            .timeouts
            .entry((layer.to_owned(), phase.to_owned()))
            .or_default() += 1;
    }

    /// A provider was asked again.
    pub fn retry(&mut self) {
        self.retries += 1;
    }

    /// The next provider was tried.
    pub fn failover(&mut self) {
        self.failovers += 1;
    }

    /// A client went away and its generation was cancelled.
    pub fn cancellation(&mut self) {
        self.cancellations += 1;
    }

    /// A streamed response started (`+1`) or ended (`-1`).
    pub fn active_streams(&mut self, delta: i64) {
        self.active_streams += delta;
    }

    /// The first progress came `milliseconds` after the request.
    pub fn first_token(&mut self, milliseconds: f64) {
        let seconds = milliseconds / 1000.0;
        for (bound, count) in FIRST_TOKEN_BUCKETS
            .iter()
            .zip(self.first_token_counts.iter_mut())
        {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.first_token_sum += seconds;
        self.first_token_count += 1;
    }

    /// An exchange with the guard's Durable Object ended as `outcome` (`ok`, or why it failed:
    /// `unreachable`, `timeout`, `status`, `malformed`, `not_a_namespace`, `wait_until`).
    pub fn shared_sync(&mut self, outcome: &'static str) {
        *self.shared_syncs.entry(outcome).or_default() += 1;
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP lsg_requests_total Chat completion requests by outcome."
        );
        let _ = writeln!(out, "# TYPE lsg_requests_total counter");
        for (outcome, n) in &self.requests {
            let _ = writeln!(
                out,
                "lsg_requests_total{{outcome=\"{}\"}} {n}",
                escape(outcome)
            );
        }
        let _ = writeln!(
            out,
            "# HELP lsg_timeouts_total Deadlines that passed, by layer and phase."
        );
        let _ = writeln!(out, "# TYPE lsg_timeouts_total counter");
        for ((layer, phase), n) in &self.timeouts {
            let _ = writeln!(
                out,
                "lsg_timeouts_total{{layer=\"{}\",phase=\"{}\"}} {n}",
                escape(layer),
                escape(phase)
            );
        }
        for (name, help, value) in [
            (
                "lsg_retries_total",
                "Retries of the same provider.",
                self.retries,
            ),
            (
                "lsg_failovers_total",
                "Failovers to the next provider.",
                self.failovers,
            ),
            (
                "lsg_cancellations_total",
                "Generations cancelled because the client went away.",
                self.cancellations,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {value}");
        }
        let _ = writeln!(
            out,
            "# HELP lsg_active_streams Streamed responses in progress."
        );
        let _ = writeln!(out, "# TYPE lsg_active_streams gauge");
        let _ = writeln!(out, "lsg_active_streams {}", self.active_streams);
        let _ = writeln!(
            out,
            "# HELP lsg_first_token_seconds Time from request to first progress."
        );
        let _ = writeln!(out, "# TYPE lsg_first_token_seconds histogram");
        for (bound, count) in FIRST_TOKEN_BUCKETS
            .iter()
            .zip(self.first_token_counts.iter())
        {
            let _ = writeln!(
                out,
                "lsg_first_token_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "lsg_first_token_seconds_bucket{{le=\"+Inf\"}} {}",
            self.first_token_count
        );
        let _ = writeln!(out, "lsg_first_token_seconds_sum {}", self.first_token_sum);
        let _ = writeln!(
            out,
            "lsg_first_token_seconds_count {}",
            self.first_token_count
        );
        if !self.shared_syncs.is_empty() {
            let _ = writeln!(
                out,
                "# HELP lsg_guard_shared_syncs_total Exchanges with the guard's Durable Object \
                 (LSG_GUARD_DO), by outcome."
            );
            let _ = writeln!(out, "# TYPE lsg_guard_shared_syncs_total counter");
            for (outcome, n) in &self.shared_syncs {
                let _ = writeln!(
                    out,
                    "lsg_guard_shared_syncs_total{{outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        out
    }
}

/// The Prometheus text of a guard's breakers (the edge worker's `LSG_GUARD`): one
/// `lsg_provider_breaker` line per provider, labelled with its current state (`closed`,
/// `open`, `half-open`), and its learned samples.
pub fn render_guard(stats: &[ProviderStats]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP lsg_provider_breaker A provider's breaker (LSG_GUARD), by its state now."
    );
    let _ = writeln!(out, "# TYPE lsg_provider_breaker gauge");
    for s in stats {
        let _ = writeln!(
            out,
            "lsg_provider_breaker{{provider=\"{}\",state=\"{}\"}} 1",
            escape(&s.provider),
            s.breaker.state
        );
    }
    let _ = writeln!(
        out,
        "# HELP lsg_provider_samples Attempts a provider's learned deadlines are made from."
    );
    let _ = writeln!(out, "# TYPE lsg_provider_samples gauge");
    for s in stats {
        let _ = writeln!(
            out,
            "lsg_provider_samples{{provider=\"{}\",model=\"{}\"}} {}",
            escape(&s.provider),
            escape(&s.model),
            s.samples
        );
    }
    out
}

/// Label values escape backslash, double quote and line feed.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_a_cumulative_histogram() {
        let mut m = Metrics::default();
        m.request("complete");
        m.request("complete");
        m.request("timeout");
        m.timeout("provider", "first-token");
        m.retry();
        m.failover();
        m.cancellation();
        m.active_streams(1);
        m.first_token(80.0);
        m.first_token(700.0);
        let text = m.render();
        for line in [
            "lsg_requests_total{outcome=\"complete\"} 2",
            "lsg_requests_total{outcome=\"timeout\"} 1",
            "lsg_timeouts_total{layer=\"provider\",phase=\"first-token\"} 1",
            "lsg_retries_total 1",
            "lsg_failovers_total 1",
            "lsg_cancellations_total 1",
            "lsg_active_streams 1",
            "lsg_first_token_seconds_bucket{le=\"0.05\"} 0",
            "lsg_first_token_seconds_bucket{le=\"0.1\"} 1",
            "lsg_first_token_seconds_bucket{le=\"0.5\"} 1",
            "lsg_first_token_seconds_bucket{le=\"1\"} 2",
            "lsg_first_token_seconds_bucket{le=\"+Inf\"} 2",
            "lsg_first_token_seconds_count 2",
            "# TYPE lsg_first_token_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        let sum: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("lsg_first_token_seconds_sum "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!((sum - 0.78).abs() < 1e-9, "{sum}");
        assert!(
            !text.contains("lsg_guard_shared_syncs_total"),
            "none yet: {text}"
        );
        m.shared_sync("ok");
        m.shared_sync("unreachable");
        m.shared_sync("unreachable");
        let text = m.render();
        for line in [
            "lsg_guard_shared_syncs_total{outcome=\"ok\"} 1",
            "lsg_guard_shared_syncs_total{outcome=\"unreachable\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut m = Metrics::default();
        m.request("we\"ird\\");
        assert!(m.render().contains("outcome=\"we\\\"ird\\\\\""));
    }

    #[test]
    fn renders_a_guards_breakers_and_samples() {
        use crate::core::guard::state::{GuardConfig, GuardState};
        use crate::core::relay::RelayProvider;
        let provider = |name: &str| RelayProvider {
            name: name.into(),
            url: "http://127.0.0.1:9/v1/chat/completions".into(),
            model: "m\"x".into(),
            api_key: None,
            headers: Vec::new(),
            timeouts: crate::core::deadline::Timeouts::default(),
            max_retries: 0,
        };
        let state = GuardState::for_relay(GuardConfig::default(), &[provider("a"), provider("b")]);
        let text = render_guard(&state.stats(0.0));
        assert!(
            text.contains("lsg_provider_breaker{provider=\"a\",state=\"closed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("lsg_provider_samples{provider=\"b\",model=\"m\\\"x\"} 0"),
            "{text}"
        );
    }
}
