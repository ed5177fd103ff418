//! Removing what a continuation repeats of the text it continues.
//!
//! Asked to continue a cut answer, models often restate its last words. The rule: drop the
//! longest prefix of the continuation that equals a suffix of the text so far, provided that
//! - it is at least [`MIN_OVERLAP_CHARS`] characters long (a coincidental one- or two-letter
//!   match, such as an `a` after an `a`, is kept);
//! - it starts at a word boundary of the text so far and ends at a word boundary of the
//!   continuation, so that `in the` followed by ` then` keeps its `n` instead of losing ` the`
//!   (a boundary is anywhere but between two letters or digits of a script written with
//!   spaces; scripts written without them, from U+2E80 on (CJK, kana, Hangul), have one
//!   between every two characters);
//! - it is at most [`MAX_OVERLAP_CHARS`] characters long (only that much of the text is
//!   compared, so the memory and the work stay bounded).
//!
//! When nothing is repeated and the text so far ends with whitespace that the continuation
//! also starts with, that whitespace is dropped once: a prefill is sent without its trailing
//! whitespace (Anthropic refuses it), so the model writes it again (`Hello ` then ` world`).
//!
//! Everything is measured in characters and cut on character boundaries: multibyte text is
//! never split. [`OverlapFilter`] applies the rule to a continuation arriving in pieces: it holds
//! back text while it could still be part of a repeat, so no repeated piece is ever handed out,
//! and hands everything out once it can decide (or when the continuation ends).

/// The shortest repeat that is removed.
pub const MIN_OVERLAP_CHARS: usize = 3;
/// The longest repeat looked for.
pub const MAX_OVERLAP_CHARS: usize = 400;

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && (c as u32) < 0x2E80
}

/// Whether there is a word boundary between `before` and `after` (`None`: an end of text).
fn boundary(before: Option<char>, after: Option<char>) -> bool {
    match (before, after) {
        (Some(a), Some(b)) => !(is_word_char(a) && is_word_char(b)),
        _ => true,
    }
}

/// The bytes of `next` to drop because they repeat the end of `previous` (see the module
/// documentation for the rule). `next` is taken as complete: its end is a word boundary.
pub fn overlap(previous: &str, next: &str) -> usize {
    let tail = tail(previous);
    let mut best = 0;
    let mut chars = 0;
    for (at, c) in next.char_indices() {
        let end = at + c.len_utf8();
        chars += 1;
        if chars > MAX_OVERLAP_CHARS || end > tail.len() {
            break;
        }
        if chars < MIN_OVERLAP_CHARS || !tail.ends_with(&next[..end]) {
            continue;
        }
        let start_before = previous[..previous.len() - end].chars().next_back();
        let end_after = next[end..].chars().next();
        if boundary(start_before, next.chars().next()) && boundary(Some(c), end_after) {
            best = end;
        }
    }
    best
}

/// The bytes of `next` to drop where it joins `previous`: the repeat ([`overlap`]), or, when
/// there is none, the trailing whitespace of `previous` that `next` starts with (see the module
/// documentation). `next` is taken as complete.
pub fn junction(previous: &str, next: &str) -> usize {
    match overlap(previous, next) {
        0 => {
            let space = &previous[previous.trim_end().len()..];
            if !space.is_empty() && next.starts_with(space) {
                space.len()
            } else {
                0
            }
        }
        repeat => repeat,
    }
}

/// The last [`MAX_OVERLAP_CHARS`] characters of `text`.
fn tail(text: &str) -> &str {
    let start = text
        .char_indices()
        .rev()
        .nth(MAX_OVERLAP_CHARS - 1)
        .map_or(0, |(at, _)| at);
    &text[start..]
}

/// The rule applied to a continuation that arrives in pieces.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlapFilter {
    /// The end of the text so far, and the character before it (for the boundary rule).
    previous: String,
    /// Continuation text held back until the repeat can be decided.
    held: String,
    /// Decided: everything from here on passes through.
    decided: bool,
    /// Bytes dropped as a repeat, once decided.
    dropped: usize,
}

impl OverlapFilter {
    /// A filter for a continuation of `previous` (the text so far; only its end is kept).
    pub fn new(previous: &str) -> OverlapFilter {
        // One character more than compared, so the boundary before the longest repeat is known.
        let start = previous
            .char_indices()
            .rev()
            .nth(MAX_OVERLAP_CHARS)
            .map_or(0, |(at, _)| at);
        OverlapFilter {
            previous: previous[start..].to_owned(),
            held: String::new(),
            decided: previous.is_empty(),
            dropped: 0,
        }
    }

    /// A piece of the continuation arrived: what may be handed out now (maybe nothing).
    pub fn push(&mut self, piece: &str) -> String {
        if self.decided {
            return piece.to_owned();
        }
        self.held.push_str(piece);
        if self.could_still_repeat() {
            return String::new();
        }
        self.decide()
    }

    /// The continuation ended (or stopped): what is still held back, decided now.
    pub fn finish(&mut self) -> String {
        if self.decided {
            return String::new();
        }
        self.decide()
    }

    /// Bytes dropped as a repeat so far.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Whether what is held is the start of some suffix of the text so far: then more of the
    /// continuation could still make it (or a longer) repeat, and the end boundary of a repeat
    /// that is all of it is not known yet.
    fn could_still_repeat(&self) -> bool {
        let tail = tail(&self.previous);
        self.held.chars().count() <= MAX_OVERLAP_CHARS
            && tail
                .char_indices()
                .any(|(at, _)| tail[at..].starts_with(self.held.as_str()))
    }

    fn decide(&mut self) -> String {
        self.decided = true;
        let cut = junction(&self.previous, &self.held);
        self.dropped = cut;
        let rest = self.held.split_off(cut);
        self.held.clear();
        rest
    }
}
