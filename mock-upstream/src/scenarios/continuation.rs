//! `continue`: continues a prefill or a quoted text, and says in the ledger how it read the request.

use super::*;

use serde_json::Value;

/// The text of a chat message's `content`: a string, or the `text` of its parts joined.
pub(crate) fn message_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// The length of the longest prefix of `text` (at a character boundary) that occurs in `hay`.
pub fn longest_prefix_in(text: &str, hay: &str) -> usize {
    let ends: Vec<usize> = text
        .char_indices()
        .map(|(i, ch)| i + ch.len_utf8())
        .collect();
    // Whether a prefix occurs is monotone in its length: search for the last one that does.
    let (mut lo, mut hi) = (0, ends.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if hay.contains(&text[..ends[mid - 1]]) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 {
        0
    } else {
        ends[lo - 1]
    }
}

/// The fewest characters of the answer text a continuation instruction must quote for
/// `continue` to take them as the given text.
pub const MIN_GIVEN_CHARS: usize = 8;

/// What `continue` answers: how it read the request (`prefill`, `instruction` or `fresh`, with
/// `-unmatched` when the given text is not where the answer text starts), and the answer.
pub fn continuation_of(messages: &Value, text: &str, restate: usize) -> (String, String) {
    let last = messages.as_array().and_then(|m| m.last());
    let role = last.and_then(|m| m.get("role")).and_then(Value::as_str);
    let content = last.and_then(|m| message_text(m.get("content")));
    let (mode, given) = match (role, content) {
        (Some("assistant"), Some(prefill)) => (
            "prefill",
            if text.starts_with(&prefill) {
                Some(prefill.len())
            } else {
                None
            },
        ),
        (Some("user"), Some(ask)) if ask.to_lowercase().contains("continue") => {
            let n = longest_prefix_in(text, &ask);
            // A few letters of the answer turn up in any sentence ("He" in "Here"): only a
            // longer match, or the whole answer, says where the given text stops.
            let enough = text[..n].chars().count() >= MIN_GIVEN_CHARS || n == text.len();
            ("instruction", (n > 0 && enough).then_some(n))
        }
        _ => ("fresh", Some(0)),
    };
    let Some(at) = given else {
        return (format!("{mode}-unmatched"), text.to_string());
    };
    let said = pieces(&text[..at]);
    let restated = said[said.len().saturating_sub(restate)..].concat();
    (mode.to_string(), restated + &text[at..])
}

/// `continue`.
pub(crate) fn continuation(c: &Ctx) -> Reply {
    let messages = c.req.json.get("messages").unwrap_or(&Value::Null);
    let (mode, answer) = continuation_of(messages, &c.text, c.params.restate as usize);
    c.note(mode);
    c.events_of(c.builder(), LF, &pieces(&answer))
        .finish(Tail::End)
}
