use super::swar;
use std::borrow::Cow;

/// The raw text of the value of `key` in the object `json` (its own fields only, not those
/// of nested objects). `None` when `json` is not an object, has no such field, or is cut.
pub(super) fn field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    field_span(json, key).map(|span| &json[span])
}

/// Where the value of `key` in the object `json` lies (its own fields only): the byte range of
/// its raw text, for a caller that replaces the value in place without touching the rest.
pub(crate) fn field_span(json: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let b = json.as_bytes();
    let mut at = skip_space(b, 0);
    if b.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_space(b, at + 1);
    if b.get(at) == Some(&b'}') {
        return None;
    }
    loop {
        if b.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(b, at)?;
        let name = &json[at + 1..key_end - 1];
        at = skip_space(b, key_end);
        if b.get(at) != Some(&b':') {
            return None;
        }
        at = skip_space(b, at + 1);
        let value_end = value_end(b, at)?;
        if name == key {
            return Some(at..value_end);
        }
        at = skip_space(b, value_end);
        match b.get(at) {
            Some(b',') => at = skip_space(b, at + 1),
            _ => return None,
        }
    }
}

/// The value at a path of fields, each in the object found by the previous one.
pub(super) fn path<'a>(json: &'a str, keys: &[&str]) -> Option<&'a str> {
    keys.iter().try_fold(json, |object, key| field(object, key))
}

/// The value of a raw JSON string (`"…"`), escapes decoded; `None` for any other value.
/// A bad escape or a lone surrogate becomes U+FFFD.
pub(crate) fn string(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let high = hex4(&mut chars);
                let c = match high {
                    Some(h @ 0xD800..=0xDBFF) => {
                        // A high surrogate must be followed by `\u` and a low one.
                        let mut ahead = chars.clone();
                        let low = (ahead.next() == Some('\\') && ahead.next() == Some('u'))
                            .then(|| hex4(&mut ahead))
                            .flatten()
                            .filter(|l| (0xDC00..=0xDFFF).contains(l));
                        match low {
                            Some(l) => {
                                chars = ahead;
                                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (l - 0xDC00))
                            }
                            None => None,
                        }
                    }
                    Some(code) => char::from_u32(code),
                    None => None,
                };
                out.push(c.unwrap_or('\u{FFFD}'));
            }
            // `\"`, `\\`, `\/`; anything else is not JSON: kept as sent.
            Some(other) => out.push(other),
            None => out.push('\u{FFFD}'),
        }
    }
    Some(Cow::Owned(out))
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    (0..4).try_fold(0u32, |n, _| Some(n * 16 + chars.next()?.to_digit(16)?))
}

fn skip_space(b: &[u8], mut at: usize) -> usize {
    while matches!(b.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Where the string starting with the quote at `at` ends (just after its closing quote).
fn string_end(b: &[u8], at: usize) -> Option<usize> {
    let mut at = at + 1;
    loop {
        at = swar::find(
            b,
            at,
            |word| swar::equal(word, b'"') | swar::equal(word, b'\\'),
            |c| c == b'"' || c == b'\\',
        );
        match b.get(at)? {
            b'"' => return Some(at + 1),
            _ => at += 2, // a backslash and the character it escapes
        }
    }
}

/// Where the value starting at `at` ends.
fn value_end(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at)? {
        b'"' => string_end(b, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut at = at;
            loop {
                match b.get(at)? {
                    b'"' => {
                        at = string_end(b, at)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        _ => {
            let end = b[at..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(b.len(), |n| at + n);
            (end > at).then_some(end)
        }
    }
}
