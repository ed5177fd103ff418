//! What an attempt's platform reports mean, in both modes of the call machine: answering
//! (`generate()`, `Guard`) and relaying (`guardFetch()`, the edge worker) judge a
//! response head, a failed request, a failed read and a refusal's body the same way and say so
//! in the same words. Each mode then acts on the verdict in its own way (relaying may pass an
//! answer through as it came; answering decodes it).

use crate::core::answer::{classify_response, error_body_message, BodyKind};
use crate::core::deadline::{Expired, Millis};
use crate::core::events::whole;
use crate::core::machine::{BodyError, Head};
use crate::core::policy::{parse_retry_after, Failure};
use crate::core::secrets::{excerpt, redact};

/// How much of a refusal's body is held for its message (and, by the relay, to pass it
/// through) before the attempt is judged anyway.
pub const ERROR_BODY_BYTES: usize = 16 * 1024;

/// Holds `bytes` of a refusal's body in `held`; whether enough is held to judge it.
pub fn hold_error_body(held: &mut Vec<u8>, bytes: &[u8]) -> bool {
    held.extend_from_slice(bytes);
    held.len() >= ERROR_BODY_BYTES
}

/// What a response head says.
#[derive(Debug, Clone, PartialEq)]
pub enum HeadVerdict {
    /// A refusal (an error status): its body is read for the server's words, then the attempt
    /// fails with [`refused`].
    Refused {
        /// The server's `Retry-After`, as a delay.
        retry_after_ms: Option<Millis>,
    },
    /// Neither SSE nor JSON: the attempt fails with this, in these words.
    Unreadable(Failure, String),
    /// An answer of this kind.
    Answer(BodyKind),
}

/// Judges `name`'s response head.
pub fn judge_head(name: &str, head: &Head) -> HeadVerdict {
    let retry_after = head
        .retry_after
        .as_deref()
        .and_then(|value| parse_retry_after(value, head.unix_ms));
    match classify_response(head.status, head.content_type.as_deref(), retry_after) {
        Err(Failure::Http { retry_after_ms, .. }) => HeadVerdict::Refused { retry_after_ms },
        Err(failure) => {
            let message = format!(
                "{name} answered {} with content type {}, not SSE or JSON",
                head.status,
                head.content_type.as_deref().unwrap_or("(none)")
            );
            HeadVerdict::Unreadable(failure, message)
        }
        Ok(kind) => HeadVerdict::Answer(kind),
    }
}

/// A stream answered with no body at all.
pub fn no_body(name: &str, status: u16) -> String {
    format!("{name} answered {status} without a body")
}

/// The request to `name` failed before any response (the platform's `message`, redacted).
pub fn request_failed(name: &str, message: &str, secrets: &[&str]) -> String {
    redact(
        &["request to ", name, " failed: ", message].concat(),
        secrets,
    )
}

/// Reading `name`'s body failed: the failure and its words (the platform's, redacted).
pub fn read_failed(name: &str, error: BodyError, secrets: &[&str]) -> (Failure, String) {
    match error {
        BodyError::Read(message) => (
            Failure::Network,
            redact(
                &["reading from ", name, " failed: ", &message].concat(),
                secrets,
            ),
        ),
        BodyError::NotBytes => (
            Failure::Protocol,
            "the body yielded a non-byte chunk".to_owned(),
        ),
    }
}

/// `name` refused with `status`: the failure, and the server's own words from `body` (as much of
/// it as arrived; secrets removed).
pub fn refused(
    name: &str,
    status: u16,
    body: &[u8],
    retry_after_ms: Option<Millis>,
    secrets: &[&str],
) -> (Failure, String) {
    let detail = error_body_message(&String::from_utf8_lossy(body), secrets);
    let failure = Failure::Http {
        status,
        retry_after_ms,
    };
    (failure, format!("HTTP {status} from {name}: {detail}"))
}

/// `name` reported an error in its answer (an error event or an error body): its `code` and
/// words (secrets removed).
pub fn upstream_error(name: &str, code: Option<&str>, text: &str, secrets: &[&str]) -> String {
    let code = code.map(|c| [" ", c].concat()).unwrap_or_default();
    [
        name,
        " reported an error",
        &code,
        ": ",
        &excerpt(text, secrets),
    ]
    .concat()
}

/// A deadline of `name`'s attempt passed `elapsed` ms after its request; `tally` is what the
/// attempt had received by then, in words.
pub fn timed_out(name: &str, expired: &Expired, elapsed: Millis, tally: &str) -> String {
    let (layer, phase) = (expired.layer.as_str(), expired.phase.as_str());
    format!(
        "{layer} {phase} timeout: {name} after {} ms ({tally})",
        whole(elapsed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(status: u16, content_type: Option<&str>, retry_after: Option<&str>) -> Head {
        Head {
            status,
            content_type: content_type.map(str::to_owned),
            retry_after: retry_after.map(str::to_owned),
            generation_id: None,
            has_body: true,
            unix_ms: 0.0,
        }
    }

    #[test]
    fn heads_are_judged_by_status_and_content_type() {
        assert_eq!(
            judge_head("a", &head(200, Some("text/event-stream"), None)),
            HeadVerdict::Answer(BodyKind::EventStream)
        );
        assert_eq!(
            judge_head("a", &head(429, Some("application/json"), Some("2"))),
            HeadVerdict::Refused {
                retry_after_ms: Some(2000.0)
            }
        );
        match judge_head("a", &head(200, Some("text/html"), None)) {
            HeadVerdict::Unreadable(_, message) => assert_eq!(
                message,
                "a answered 200 with content type text/html, not SSE or JSON"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_words_of_failures_never_carry_a_secret() {
        let key = "sk-secret-0123456789";
        let said = request_failed("a", &format!("bad header {key}"), &[key]);
        assert!(
            said.starts_with("request to a failed: ") && !said.contains(key),
            "{said}"
        );
        let (failure, said) = read_failed("a", BodyError::Read(format!("reset {key}")), &[key]);
        assert_eq!(failure, Failure::Network);
        assert!(!said.contains(key), "{said}");
        let body = format!(r#"{{"error":{{"message":"no such key {key}"}}}}"#);
        let (failure, said) = refused("a", 401, body.as_bytes(), None, &[key]);
        assert_eq!(
            failure,
            Failure::Http {
                status: 401,
                retry_after_ms: None
            }
        );
        assert!(
            said.starts_with("HTTP 401 from a: ") && !said.contains(key),
            "{said}"
        );
    }
}
