//! The checks on a caller's options that do not depend on where they came from: which names are
//! known, the nearest known name for a typo, and which provider URLs can be sent to.
//!
//! A typo must never pass silently: `apikey` for `apiKey` would send the request without
//! `Authorization` and leave the user debugging a 401, `timeout` for `timeouts` would leave the
//! defaults in force. So every object the options are made of has a fixed list of names, and
//! an unknown one is refused naming the key, where it is, and the known name nearest to it.
//! Free-form objects (`params`, `headers`) are not checked: they go to the provider as given.
//!
//! Pure functions over strings; nothing here may touch a platform API.

use crate::core::relay::OnCut;
use crate::core::secrets::url_has_credentials;

mod read;
pub use read::{
    check_options_object, check_request_keys, read_guard_options, read_max_retries, read_options,
    read_retry, read_timeouts, JsonSource, OptionSource, OptionsData,
};

/// The top-level options of `generate()` and `Session.generate()`.
pub const GENERATE_OPTIONS: &[&str] = &[
    "providers",
    "messages",
    "params",
    "stream",
    "timeouts",
    "retry",
    "maxEventBytes",
    "signal",
    "onText",
    "onEvent",
    "log",
    "fetch",
];

/// The options of `guardFetch()`.
pub const GUARD_FETCH_OPTIONS: &[&str] = &[
    "providers",
    "timeouts",
    "retry",
    "maxEventBytes",
    "session",
    "signal",
    "onCut",
    "onEvent",
    "log",
    "fetch",
];

/// The options of `new Guard()`.
pub const GUARD_OPTIONS: &[&str] = &[
    "providers",
    "timeouts",
    "retry",
    "continuation",
    "hedge",
    "adaptive",
    "breaker",
    "session",
    "onEvent",
    "log",
    "fetch",
];

/// The options of one of a guard's calls (`guard.generate()`, `guard.stream()`):
/// `generate()`'s but for those the guard holds (`providers`, `timeouts`, `retry`, `fetch`).
pub const GENERATE_REQUEST_OPTIONS: &[&str] = &[
    "messages",
    "params",
    "stream",
    "maxEventBytes",
    "signal",
    "onText",
    "onEvent",
    "log",
];

/// The fields of a guard's `adaptive` (when an object).
pub const ADAPTIVE_FIELDS: &[&str] = &["quantile", "factor", "minSamples"];

/// The fields of a guard's `breaker`.
pub const BREAKER_FIELDS: &[&str] = &["failureThreshold", "cooldownMs"];

/// The fields of a guard's `hedge`.
pub const HEDGE_FIELDS: &[&str] = &["afterMs"];

/// The values of `guardFetch()`'s `onCut`, each with what it means.
pub const ON_CUT_NAMES: &[(&str, OnCut)] = &[("error", OnCut::Error), ("finish", OnCut::Finish)];

/// `onCut` from its name (`None`: not one of [`ON_CUT_NAMES`]).
pub fn on_cut(name: &str) -> Option<OnCut> {
    ON_CUT_NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, on_cut)| *on_cut)
}

/// The fields of one provider.
pub const PROVIDER_FIELDS: &[&str] = &[
    "name",
    "url",
    "model",
    "apiKey",
    "headers",
    "timeouts",
    "maxRetries",
];

/// The fields of `timeouts` (in the options and in a provider).
pub const TIMEOUT_FIELDS: &[&str] = &[
    "headersMs",
    "firstTokenMs",
    "idleMs",
    "streamMs",
    "serviceMs",
];

/// The fields of `retry`.
pub const RETRY_FIELDS: &[&str] = &["maxRetries", "baseDelayMs", "maxDelayMs"];

/// The first name in `keys` that is not in `known`, as the message that refuses it:
/// ``unknown option `apikey` in providers[0]; did you mean `apiKey`?``. `place` names the
/// object (empty for the top level: "unknown option `timeout`; did you mean `timeouts`?").
pub fn unknown_key<'a>(
    keys: impl IntoIterator<Item = &'a str>,
    known: &[&str],
    place: &str,
) -> Option<String> {
    let key = keys.into_iter().find(|key| !known.contains(key))?;
    let mut message = format!("unknown option `{key}`");
    if !place.is_empty() {
        message.push_str(" in ");
        message.push_str(place);
    }
    match nearest(key, known) {
        Some(near) => {
            message.push_str("; did you mean `");
            message.push_str(near);
            message.push_str("`?");
        }
        None => {
            message.push_str(" (known: ");
            message.push_str(&known.join(", "));
            message.push(')');
        }
    }
    Some(message)
}

/// The known name closest to `key`, if one is close enough to be what was meant: within an
/// edit distance of about a third of the name (at least 2), or of two thirds when both start
/// with the same two letters, comparing without case. Ties go to the earlier name in `known`.
pub fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for &name in known {
        let distance = edit_distance(&lower, &name.to_ascii_lowercase());
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, name));
        }
    }
    let (distance, name) = best?;
    let longer = key.chars().count().max(name.len());
    // A shared start (`onToken` / `onText`) makes a wider miss still the likely meaning.
    let same_start = lower
        .get(..2)
        .is_some_and(|start| name.to_ascii_lowercase().starts_with(start));
    let allowed = if same_start {
        longer * 2 / 3
    } else {
        (longer / 3).max(2)
    };
    (distance <= allowed).then_some(name)
}

/// The Levenshtein distance (insertions, deletions, substitutions) between two strings, by
/// characters, with adjacent transpositions counted as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the optimal-string-alignment table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// Why a provider URL cannot be used, if it cannot. `has_base` says whether the runtime has a
/// base to resolve a relative URL against (a page's or a worker's `location`); without one
/// (Node, workerd) a relative URL can only fail, so it is refused here instead of being
/// retried as a network error. A URL with a user name or password is always refused: `fetch`
/// rejects it, and its credentials would end up in messages.
pub fn check_url(url: &str, has_base: bool) -> Result<(), String> {
    let lower = url.trim_start().to_ascii_lowercase();
    let after_scheme = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    if let Some(host) = after_scheme {
        if host.is_empty() || host.starts_with('/') || host.starts_with('?') {
            return Err("must name a host".into());
        }
        if url_has_credentials(url) {
            return Err(
                "must not carry a user name or password (put a key in `apiKey`, or a header in \
                 `headers`)"
                    .into(),
            );
        }
        return Ok(());
    }
    if let Some((scheme, _)) = lower.split_once(':') {
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(format!(
                "must be an http: or https: URL (got a {scheme}: URL)"
            ));
        }
    }
    if has_base {
        Ok(())
    } else {
        Err(
            "must be an absolute http(s) URL: this runtime has no page to resolve a relative \
             URL against"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_name_the_key_the_place_and_the_nearest_name() {
        assert_eq!(
            unknown_key(["name", "apikey"], PROVIDER_FIELDS, "providers[0]").as_deref(),
            Some("unknown option `apikey` in providers[0]; did you mean `apiKey`?")
        );
        assert_eq!(
            unknown_key(["timeout"], GENERATE_OPTIONS, "").as_deref(),
            Some("unknown option `timeout`; did you mean `timeouts`?")
        );
        assert_eq!(
            unknown_key(["onToken"], GENERATE_OPTIONS, "").as_deref(),
            Some("unknown option `onToken`; did you mean `onText`?")
        );
        assert_eq!(
            unknown_key(["firstTokenMS"], TIMEOUT_FIELDS, "timeouts").as_deref(),
            Some("unknown option `firstTokenMS` in timeouts; did you mean `firstTokenMs`?")
        );
        assert_eq!(nearest("maxRetires", RETRY_FIELDS), Some("maxRetries"));
        assert_eq!(nearest("idelMs", TIMEOUT_FIELDS), Some("idleMs"));
    }

    #[test]
    fn far_names_list_the_known_ones_instead() {
        let message = unknown_key(["temperature"], GENERATE_OPTIONS, "").unwrap();
        assert!(message.starts_with("unknown option `temperature` (known: providers, "));
        assert_eq!(nearest("zzz", RETRY_FIELDS), None);
        assert_eq!(nearest("é", RETRY_FIELDS), None);
        assert_eq!(nearest("mé", RETRY_FIELDS), None);
    }

    #[test]
    fn known_names_pass() {
        assert_eq!(
            unknown_key(GENERATE_OPTIONS.iter().copied(), GENERATE_OPTIONS, ""),
            None
        );
        assert_eq!(unknown_key([], PROVIDER_FIELDS, "providers[0]"), None);
    }

    #[test]
    fn edit_distance_counts_edits_and_swaps() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "abc", 0),
            ("abc", "", 3),
            ("kitten", "sitting", 3),
            ("apikey", "apikey", 0),
            ("idelms", "idlems", 1),
            ("ab", "ba", 1),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} / {b}");
            assert_eq!(edit_distance(b, a), d, "{b} / {a}");
        }
    }

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert_eq!(
            check_url("https://openrouter.ai/api/v1/chat/completions", false),
            Ok(())
        );
        assert_eq!(check_url("HTTP://127.0.0.1:11434/v1", false), Ok(()));
        assert!(check_url("/v1/chat/completions", false)
            .unwrap_err()
            .contains("absolute"));
        assert_eq!(check_url("/v1/chat/completions", true), Ok(()));
        assert!(check_url("https://user:pass@host/v1", true)
            .unwrap_err()
            .contains("user name or password"));
        assert!(check_url("https://user@host/v1", false).is_err());
        assert!(check_url("ftp://host/x", true)
            .unwrap_err()
            .contains("ftp:"));
        assert!(check_url("https:///path", false)
            .unwrap_err()
            .contains("host"));
        assert_eq!(check_url("https://h/v1?email=a@b.c", false), Ok(()));
    }
}
