//! Retry and failover policy: what to do after an attempt fails, decided once, here.
//!
//! Pure functions of the failure, the attempt count, the clock reading and a jitter value the
//! caller draws (`Math.random()` on the edge), so every decision is reproducible in tests.
//!
//! The rules:
//! - **Retry the same provider** (up to its `max_retries`, default 2) on HTTP 408, 429 and 5xx and
//!   on network errors, before any text arrived: exponential back-off with full jitter
//!   (`delay = jitter × min(max_delay, base × 2^retry)`), or the server's `Retry-After` when it
//!   sent one; never sleeping past the service deadline.
//! - **Fail over to the next provider** on timeouts, network errors, mid-stream upstream errors,
//!   empty answers, protocol errors, and HTTP 401/402/403/404/408/429/5xx (once retries are spent),
//!   and on any other status that says the provider, not the request, is wrong.
//! - **Stop** on HTTP 400, 413 and 422 (the request itself is wrong: every provider would refuse
//!   it), on the caller's abort, and when the service deadline has passed.

use crate::core::contract::ErrorKind;
use crate::core::deadline::{Expired, Layer, Millis};

/// Back-off settings (`retry` in the JavaScript options).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename_all = "camelCase"))]
pub struct RetryPolicy {
    /// Retries per provider after its first attempt (default 2).
    pub max_retries: u32,
    /// The first back-off's upper bound, in milliseconds (default 500).
    pub base_delay_ms: Millis,
    /// The largest back-off, in milliseconds (default 8 000).
    pub max_delay_ms: Millis,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            base_delay_ms: 500.0,
            max_delay_ms: 8_000.0,
        }
    }
}

impl RetryPolicy {
    /// The full-jitter back-off before retry number `retry` (0 for the first retry).
    /// `jitter` is a uniform draw from `[0, 1)`.
    pub fn backoff_ms(&self, retry: u32, jitter: f64) -> Millis {
        let ceiling = (self.base_delay_ms * 2f64.powi(retry.min(30) as i32)).min(self.max_delay_ms);
        ceiling * jitter.clamp(0.0, 1.0)
    }
}

/// Why an attempt produced no answer (before any text), or why it was cut short (after text).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// A deadline passed.
    Timeout(Expired),
    /// A non-2xx status. `retry_after_ms` is the server's `Retry-After`, already converted.
    Http {
        /// The status code.
        status: u16,
        /// How long the server asked us to wait, if it said.
        retry_after_ms: Option<Millis>,
    },
    /// The upstream reported an error in the stream or in a 200 body.
    Upstream,
    /// The response ended cleanly but carried no answer at all (no text, tool call or finish).
    Empty,
    /// The response broke the protocol: not SSE or JSON, or an event over the size bound.
    Protocol,
    /// The connection failed or ended before the answer was complete.
    Network,
    /// The caller aborted.
    Aborted,
    /// A guard left the provider out of the call: its breaker is open (nothing was sent).
    Skipped,
}

impl Failure {
    /// The kind of error this failure is (never [`ErrorKind::Config`]: options are refused
    /// before anything is sent).
    pub fn error_kind(&self) -> ErrorKind {
        match self {
            Failure::Timeout(_) => ErrorKind::Timeout,
            Failure::Http { .. } => ErrorKind::Http,
            Failure::Upstream | Failure::Empty => ErrorKind::Upstream,
            Failure::Protocol => ErrorKind::Protocol,
            Failure::Network => ErrorKind::Network,
            Failure::Aborted => ErrorKind::Aborted,
            Failure::Skipped => ErrorKind::Unavailable,
        }
    }

    /// The `kind` JavaScript sees on a `GuardError` (or a partial result's `cause`).
    pub fn kind(&self) -> &'static str {
        self.error_kind().as_str()
    }

    /// Whether the same provider may be asked again (before any text arrived).
    pub fn is_retryable(&self) -> bool {
        match self {
            Failure::Http { status, .. } => {
                *status == 408 || *status == 429 || (500..600).contains(status)
            }
            Failure::Network => true,
            _ => false,
        }
    }

    /// Whether the request itself is at fault, so no provider should be tried.
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            Failure::Http {
                status: 400 | 413 | 422,
                ..
            }
        )
    }
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Ask the same provider again after this many milliseconds.
    Retry {
        /// The wait before the retry.
        delay_ms: Millis,
    },
    /// Try the next provider now.
    Failover,
    /// Give up: reject the call with this failure.
    Stop,
}

/// The decision after an attempt that produced no text failed.
///
/// `retries_done` counts earlier retries of this provider, `max_retries` is this provider's
/// allowance, `has_next_provider` says whether the chain has another provider, and
/// `time_left_ms` is what remains of the service deadline.
pub fn decide(
    failure: &Failure,
    policy: &RetryPolicy,
    max_retries: u32,
    retries_done: u32,
    has_next_provider: bool,
    time_left_ms: Millis,
    jitter: f64,
) -> Decision {
    if matches!(failure, Failure::Aborted) || failure.is_request_error() || time_left_ms <= 0.0 {
        return Decision::Stop;
    }
    if let Failure::Timeout(expired) = failure {
        if expired.layer == Layer::Service {
            return Decision::Stop;
        }
    }
    if failure.is_retryable() && retries_done < max_retries {
        let backoff = policy.backoff_ms(retries_done, jitter);
        let delay_ms = match failure {
            Failure::Http {
                retry_after_ms: Some(asked),
                ..
            } => *asked,
            _ => backoff,
        };
        if delay_ms < time_left_ms {
            return Decision::Retry { delay_ms };
        }
        // Waiting would end the call: better to try the next provider at once.
    }
    if has_next_provider {
        Decision::Failover
    } else {
        Decision::Stop
    }
}

/// Parse a `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to
/// `now_unix_ms` (wall-clock milliseconds). Past dates mean "now" (0); garbage means `None`.
pub fn parse_retry_after(value: &str, now_unix_ms: f64) -> Option<Millis> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: summed as a float (no float parser needed, exact up to 2^53 seconds).
        let seconds = value
            .bytes()
            .fold(0.0, |sum, digit| sum * 10.0 + f64::from(digit - b'0'));
        return Some(seconds * 1000.0);
    }
    let at = parse_imf_fixdate(value)?;
    Some((at - now_unix_ms).max(0.0))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → Unix milliseconds (the only HTTP-date form senders use).
fn parse_imf_fixdate(value: &str) -> Option<f64> {
    // After the first ", " (found bytewise: a substring search would weigh more than this).
    let comma = value.as_bytes().windows(2).position(|pair| pair == b", ")?;
    let rest = value.get(comma + 2..)?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let day = integer(day)?;
    let month = 1 + [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)? as i64;
    let year = integer(year)?;
    let hms: Vec<i64> = time.split(':').map(integer).collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + h * 3_600 + m * 60 + s) * 1000) as f64)
}

/// `text` as an `i64` exactly as `str::parse` reads one (an optional sign, then ASCII digits),
/// written out because the generic parser weighs more in the wasm module.
fn integer(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        all => (false, all),
    };
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0i64, |n, &digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(digit - b'0');
        let n = n.checked_mul(10)?;
        if negative {
            n.checked_sub(digit)
        } else {
            n.checked_add(digit)
        }
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::deadline::Phase;

    fn http(status: u16) -> Failure {
        Failure::Http {
            status,
            retry_after_ms: None,
        }
    }

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_ceiling() {
        let p = RetryPolicy {
            max_retries: 5,
            base_delay_ms: 100.0,
            max_delay_ms: 1_000.0,
        };
        assert_eq!(p.backoff_ms(0, 0.5), 50.0);
        assert_eq!(p.backoff_ms(2, 0.5), 200.0);
        assert_eq!(p.backoff_ms(10, 0.999), 999.0);
        assert_eq!(p.backoff_ms(3, 0.0), 0.0);
        assert_eq!(p.backoff_ms(u32::MAX, 1.0), 1_000.0);
    }

    #[test]
    fn retry_then_failover_then_stop() {
        let p = RetryPolicy::default();
        let f = http(503);
        assert!(matches!(
            decide(&f, &p, 2, 0, true, 10_000.0, 0.5),
            Decision::Retry { .. }
        ));
        assert!(matches!(
            decide(&f, &p, 2, 1, true, 10_000.0, 0.5),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(&f, &p, 2, 2, true, 10_000.0, 0.5),
            Decision::Failover
        );
        assert_eq!(decide(&f, &p, 2, 2, false, 10_000.0, 0.5), Decision::Stop);
    }

    #[test]
    fn which_statuses_retry_fail_over_or_stop() {
        let p = RetryPolicy::default();
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert!(
                matches!(
                    decide(&http(status), &p, 2, 0, true, 1e6, 0.1),
                    Decision::Retry { .. }
                ),
                "{status}"
            );
        }
        for status in [401, 402, 403, 404, 405, 409] {
            assert_eq!(
                decide(&http(status), &p, 2, 0, true, 1e6, 0.1),
                Decision::Failover,
                "{status}"
            );
        }
        for status in [400, 413, 422] {
            assert_eq!(
                decide(&http(status), &p, 2, 0, true, 1e6, 0.1),
                Decision::Stop,
                "{status}"
            );
        }
    }

    #[test]
    fn timeouts_fail_over_but_a_service_timeout_stops() {
        let p = RetryPolicy::default();
        let provider = Failure::Timeout(Expired {
            layer: Layer::Provider,
            phase: Phase::FirstToken,
            due: 0.0,
        });
        assert_eq!(
            decide(&provider, &p, 2, 0, true, 1e6, 0.1),
            Decision::Failover
        );
        let service = Failure::Timeout(Expired {
            layer: Layer::Service,
            phase: Phase::Idle,
            due: 0.0,
        });
        assert_eq!(decide(&service, &p, 2, 0, true, 1e6, 0.1), Decision::Stop);
        for f in [Failure::Upstream, Failure::Empty, Failure::Protocol] {
            assert_eq!(
                decide(&f, &p, 2, 0, true, 1e6, 0.1),
                Decision::Failover,
                "{f:?}"
            );
        }
        assert_eq!(
            decide(&Failure::Aborted, &p, 2, 0, true, 1e6, 0.1),
            Decision::Stop
        );
    }

    #[test]
    fn retry_after_is_honoured_but_never_past_the_service_deadline() {
        let p = RetryPolicy::default();
        let asked = Failure::Http {
            status: 429,
            retry_after_ms: Some(1_500.0),
        };
        assert_eq!(
            decide(&asked, &p, 2, 0, true, 10_000.0, 0.9),
            Decision::Retry { delay_ms: 1_500.0 }
        );
        assert_eq!(
            decide(&asked, &p, 2, 0, true, 1_000.0, 0.9),
            Decision::Failover
        );
        assert_eq!(
            decide(&asked, &p, 2, 0, false, 1_000.0, 0.9),
            Decision::Stop
        );
        assert_eq!(decide(&http(500), &p, 2, 0, true, 0.0, 0.9), Decision::Stop);
    }

    #[test]
    fn integers_are_read_as_str_parse_reads_them() {
        for text in [
            "0",
            "7",
            "-7",
            "+7",
            "",
            "+",
            "-",
            "1a",
            " 1",
            "1 ",
            "007",
            "-0",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "١",
        ] {
            assert_eq!(integer(text), text.parse::<i64>().ok(), "{text:?}");
        }
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = 784_111_777_000.0; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(120_000.0));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0.0));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(3_000.0)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(0.0),
            "past"
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
            Some(0.0)
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 16:00:00 GMT", 0.0),
            Some(1_795_622_400_000.0)
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 32 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
