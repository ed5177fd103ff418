//! Keeping secrets out of what the guard says: API keys and URL credentials are taken out of
//! every text a server or the platform produced before it reaches an event, an error, a log
//! line or a client.
//!
//! The order matters and is fixed here: redact first, cut to length after. Cutting first would
//! leave the part of a key that falls before the cut (an upstream that echoes a 33-character key
//! across character 300 would show 32 of its characters). And a key is not only hidden whole:
//! any run of [`MIN_RUN`] or more of its characters is hidden too, so a server that echoes part
//! of a key (`sk-or-v1-…` cut by its own limit) reveals nothing usable.
//!
//! Pure functions over strings; nothing here may touch a platform API.

/// The shortest run of a key's characters that is hidden wherever it appears.
pub const MIN_RUN: usize = 8;

/// Secrets shorter than this are not redacted at all (they would match ordinary words).
pub const MIN_SECRET: usize = 4;

/// The longest excerpt of a server's text that a message quotes, in characters.
pub const EXCERPT_CHARS: usize = 300;

/// How much of a server's text is looked at for an excerpt, in bytes (a bound on the work; the
/// excerpt itself is [`EXCERPT_CHARS`] long).
pub const SCAN_BYTES: usize = 16 * 1024;

const MARK: &str = "[redacted]";

/// `text` with every secret taken out: each whole secret of [`MIN_SECRET`] bytes or more, every
/// run of [`MIN_RUN`] or more characters of a secret, and the user and password of any URL
/// (`https://user:pass@host` becomes `https://[redacted]@host`). Each hidden stretch becomes
/// `[redacted]`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut hidden: Vec<(usize, usize)> = Vec::new();
    for secret in secrets.iter().filter(|s| s.len() >= MIN_SECRET) {
        mark_secret(text, secret, &mut hidden);
    }
    mark_url_credentials(text, &mut hidden);
    if hidden.is_empty() {
        return text.to_owned();
    }
    merge(&mut hidden);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in hidden {
        out.push_str(&text[at..start]);
        out.push_str(MARK);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// What a message may quote of a server's text: at most [`SCAN_BYTES`] of it looked at,
/// redacted, trimmed, then cut to [`EXCERPT_CHARS`] characters (in that order).
pub fn excerpt(text: &str, secrets: &[&str]) -> String {
    let mut end = text.len().min(SCAN_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    redact(&text[..end], secrets)
        .trim()
        .chars()
        .take(EXCERPT_CHARS)
        .collect()
}

/// Adds the byte ranges of `text` that show `secret`: the whole secret, and (for secrets of
/// [`MIN_RUN`] characters or more) every stretch that matches a run of at least [`MIN_RUN`] of
/// its characters. Any such run contains a window of exactly [`MIN_RUN`] characters of the
/// secret, so marking every occurrence of every window (merged where they touch or overlap)
/// marks every run whole.
fn mark_secret(text: &str, secret: &str, hidden: &mut Vec<(usize, usize)>) {
    mark_all(text, secret, hidden);
    let bounds: Vec<usize> = secret
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(secret.len()))
        .collect();
    if bounds.len() <= MIN_RUN + 1 {
        return; // the secret is MIN_RUN characters or fewer: only whole matches count
    }
    for pair in 0..bounds.len() - MIN_RUN {
        mark_all(text, &secret[bounds[pair]..bounds[pair + MIN_RUN]], hidden);
    }
    merge(hidden);
}

/// Adds every occurrence of `needle` in `text` (overlapping ones too).
fn mark_all(text: &str, needle: &str, hidden: &mut Vec<(usize, usize)>) {
    let (hay, needle) = (text.as_bytes(), needle.as_bytes());
    if needle.is_empty() || needle.len() > hay.len() {
        return;
    }
    for (at, window) in hay.windows(needle.len()).enumerate() {
        // A match of a whole UTF-8 string starts and ends on char boundaries.
        if window == needle {
            hidden.push((at, at + needle.len()));
        }
    }
}

/// Sorts and merges ranges that overlap or touch.
fn merge(ranges: &mut Vec<(usize, usize)>) {
    // An insertion sort: the ranges arrive as sorted runs (each needle's in order, then the
    // merged ones), where it is near linear, and it weighs a few hundred bytes of wasm where
    // `sort_unstable` weighs 7 KB.
    for i in 1..ranges.len() {
        let mut j = i;
        while j > 0 && ranges[j - 1] > ranges[j] {
            ranges.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for &(start, end) in ranges.iter() {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    *ranges = merged;
}

/// Adds the user-information part of every `scheme://user[:password]@host` in `text`.
fn mark_url_credentials(text: &str, hidden: &mut Vec<(usize, usize)>) {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let end = bytes[start..]
            .iter()
            .position(|&b| {
                matches!(
                    b,
                    b'/' | b'?' | b'#' | b' ' | b'\t' | b'\r' | b'\n' | b'"' | b'\'' | b'<' | b'>'
                )
            })
            .map_or(bytes.len(), |n| start + n);
        if let Some(at) = bytes[start..end].iter().rposition(|&b| b == b'@') {
            if at > 0 {
                hidden.push((start, start + at));
            }
        }
        from = end.max(start);
        if from >= text.len() {
            break;
        }
    }
    merge(hidden);
}

/// Whether `url` carries a user name or password (`scheme://user:pass@host/...`).
pub fn url_has_credentials(url: &str) -> bool {
    let mut marks = Vec::new();
    mark_url_credentials(url, &mut marks);
    !marks.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-or-v1-0123456789abcdef0123456789"; // 35 characters

    /// Every run of MIN_RUN characters of `secret` that is still in `text`.
    fn leaked_runs<'a>(text: &str, secret: &'a str) -> Vec<&'a str> {
        (0..=secret.len().saturating_sub(MIN_RUN))
            .map(|i| &secret[i..i + MIN_RUN])
            .filter(|run| text.contains(run))
            .collect()
    }

    #[test]
    fn whole_secrets_are_redacted_and_short_ones_ignored() {
        let text = "bad key sk-or-v1-abc for sk-or-v1-abc, x";
        assert_eq!(
            redact(text, &["sk-or-v1-abc", "x"]),
            "bad key [redacted] for [redacted], x"
        );
        assert_eq!(redact("clean", &["sk-or-v1-abc"]), "clean");
        assert_eq!(redact("abcd at start", &["abcd"]), "[redacted] at start");
        assert_eq!(redact("", &[KEY]), "");
    }

    #[test]
    fn any_run_of_eight_characters_of_a_key_is_redacted() {
        // Every part of the key of MIN_RUN characters or more, wherever it stands.
        for start in 0..KEY.len() - MIN_RUN {
            for end in start + MIN_RUN..=KEY.len() {
                let part = &KEY[start..end];
                let text = format!("the server said: invalid key '{part}' (see docs)");
                let out = redact(&text, &[KEY]);
                assert!(leaked_runs(&out, KEY).is_empty(), "{part:?} -> {out:?}");
                assert!(out.contains("[redacted]"), "{out:?}");
                assert!(out.starts_with("the server said: invalid key '"), "{out:?}");
                assert!(out.ends_with("' (see docs)"), "{out:?}");
            }
        }
        // Seven characters are not a run: ordinary words must survive.
        assert_eq!(redact("sk-or-v", &[KEY]), "sk-or-v");
    }

    #[test]
    fn overlapping_and_adjacent_echoes_become_one_mark() {
        let text = format!("{KEY}{KEY} and {}", &KEY[3..20]);
        assert_eq!(redact(&text, &[KEY]), "[redacted] and [redacted]");
    }

    #[test]
    fn multibyte_secrets_and_text_keep_char_boundaries() {
        let secret = "ключ-секрет-🔑-12345";
        let text = format!("é {} ü {}", &secret[..secret.len()], "секрет-🔑-12");
        let out = redact(&text, &[secret]);
        assert_eq!(out, "é [redacted] ü [redacted]");
    }

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(
            redact("fetch https://user:pa55@host.example/v1 failed", &[]),
            "fetch https://[redacted]@host.example/v1 failed"
        );
        assert_eq!(
            redact("\"http://me@h/\" and https://h/x@y", &[]),
            "\"http://[redacted]@h/\" and https://h/x@y"
        );
        assert!(url_has_credentials("https://a:b@h/v1"));
        assert!(url_has_credentials("https://a@h"));
        assert!(!url_has_credentials("https://h/v1?mail=a@b"));
        assert!(!url_has_credentials("/v1/chat"));
    }

    #[test]
    fn excerpts_redact_before_they_cut() {
        // A key echoed at every offset around the cut: no run of it may survive.
        for offset in EXCERPT_CHARS - KEY.len() - 2..EXCERPT_CHARS + 2 {
            let text = format!("{}{KEY} trailing words", "a".repeat(offset));
            let out = excerpt(&text, &[KEY]);
            assert!(out.chars().count() <= EXCERPT_CHARS, "{offset}");
            assert!(
                leaked_runs(&out, KEY).is_empty(),
                "offset {offset}: {:?}",
                &out[out.len().saturating_sub(40)..]
            );
            // Not even a shorter tail of the key: cut after redaction, the tail is a mark or gone.
            let tail = out.get(offset.min(out.len())..).unwrap_or_default();
            assert!(
                "[redacted] trailing words".starts_with(tail),
                "offset {offset}: tail {tail:?}"
            );
        }
    }

    #[test]
    fn excerpts_bound_the_work_and_the_length() {
        let long = "é".repeat(SCAN_BYTES);
        let out = excerpt(&long, &[KEY]);
        assert_eq!(out.chars().count(), EXCERPT_CHARS);
        assert_eq!(excerpt("  short  ", &[]), "short");
    }
}
