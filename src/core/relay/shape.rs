//! What the edge worker's relay does to a committed stream's bytes on their way to the client:
//! nothing but cut them at SSE event boundaries, so that its own writes (heartbeats, its guard
//! events, the final error event) never land inside an upstream's event, and, where the worker
//! was asked to, leave out one kind of event or rename another:
//!
//! - the usage-only chat chunk (`"choices": []` with a `usage` object), when the client did not
//!   ask for usage (the worker asks every upstream for it, for its own accounting);
//! - an upstream's own `event: guard` (another guard behind this one), when the client asked for
//!   the worker's events (`X-LSG-Events: 1`): it goes out as `event: guard-upstream`, its data
//!   wrapped as an `upstream-event` with every secret taken out, so it never passes for the
//!   worker's.
//!
//! Every other byte goes out as it came, in order. It must never re-encode an event it keeps.
//!
//! The boundary, as the SSE spec puts it: "If the line is empty (a blank line): dispatch the
//! event". A line ends at CRLF, LF or CR; an event ends at the end of a line that is empty.

use std::collections::VecDeque;

use super::RelayDelivery;
use crate::core::deadline::Millis;
use crate::core::progress::json::field_span;
use crate::core::proxy::UPSTREAM_EVENT;
use crate::core::secrets::redact;

/// The line-ending state at the end of the bytes scanned so far.
#[derive(Debug, Clone, Copy)]
struct Scan {
    /// The last byte ended a line (or nothing was scanned yet: the stream starts at a boundary).
    after_line_end: bool,
    /// The last byte was a CR (an LF right after it belongs to the same line end).
    after_cr: bool,
    /// That CR ended a blank line (the event ends after its LF, if one follows).
    blank_cr: bool,
}

impl Scan {
    const START: Scan = Scan {
        after_line_end: true,
        after_cr: false,
        blank_cr: false,
    };

    /// Scans `bytes`, calling `boundary(i)` for every index just past an event's end (twice for
    /// a CRLF that ends one: after its CR, then after its LF).
    fn run(&mut self, bytes: &[u8], mut boundary: impl FnMut(usize)) {
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' if self.after_cr => {
                    self.after_cr = false;
                    if std::mem::take(&mut self.blank_cr) {
                        boundary(i + 1);
                    }
                }
                b'\n' | b'\r' => {
                    let blank = self.after_line_end;
                    self.after_line_end = true;
                    self.after_cr = b == b'\r';
                    self.blank_cr = blank && self.after_cr;
                    if blank {
                        boundary(i + 1);
                    }
                }
                _ => {
                    self.after_line_end = false;
                    self.after_cr = false;
                    self.blank_cr = false;
                }
            }
        }
    }
}

/// The client-facing shape of one committed stream (see the module documentation).
#[derive(Debug)]
pub(super) struct Shaper {
    strip_usage: bool,
    /// The secrets to take out of a renamed upstream guard event, when the client asked for the
    /// worker's events.
    rename_guard: Option<Vec<String>>,
    /// The start of an event not complete yet.
    pending: Vec<u8>,
    scan: Scan,
    /// Past this many pending bytes, they go out as they are (an event larger than the
    /// stream's bound is not the worker's to judge; the watch already gave up on it).
    max_pending: usize,
    /// When bytes last went to the client.
    pub last_write: Millis,
    /// What went out last ends an event (the worker may write its own).
    pub at_boundary: bool,
}

impl Shaper {
    pub fn new(strip_usage: bool, rename_guard: Option<Vec<String>>, max_pending: usize) -> Self {
        Shaper {
            strip_usage,
            rename_guard,
            pending: Vec::new(),
            scan: Scan::START,
            max_pending,
            last_write: 0.0,
            at_boundary: true,
        }
    }

    /// The guard's own bytes (a heartbeat, an event), written at a boundary.
    pub fn own(&mut self, now: Millis, bytes: Vec<u8>, out: &mut VecDeque<RelayDelivery>) {
        self.last_write = now;
        out.push_back(RelayDelivery::Bytes(bytes));
    }

    /// Upstream bytes: every event they complete goes out (filtered as asked), the rest waits.
    pub fn feed(&mut self, now: Millis, bytes: &[u8], out: &mut VecDeque<RelayDelivery>) {
        let mut last = None;
        self.scan.run(bytes, |i| last = Some(i));
        let Some(end) = last else {
            self.pending.extend_from_slice(bytes);
            if self.pending.len() > self.max_pending {
                self.flush(now, out);
            }
            return;
        };
        let complete = match self.pending.is_empty() {
            true => bytes[..end].to_vec(),
            false => {
                let mut joined = std::mem::take(&mut self.pending);
                joined.extend_from_slice(&bytes[..end]);
                joined
            }
        };
        self.pending.extend_from_slice(&bytes[end..]);
        let kept = self.filter(complete);
        if !kept.is_empty() {
            self.last_write = now;
            self.at_boundary = true;
            out.push_back(RelayDelivery::Bytes(kept));
        }
    }

    /// Whatever is pending goes out as it is (the stream ends, or an event outgrew the bound);
    /// returns whether it ended inside a line.
    pub fn flush(&mut self, now: Millis, out: &mut VecDeque<RelayDelivery>) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        let rest = std::mem::take(&mut self.pending);
        let inside_line = !matches!(rest.last(), Some(b'\n' | b'\r'));
        self.at_boundary = false;
        self.last_write = now;
        out.push_back(RelayDelivery::Bytes(rest));
        inside_line
    }

    /// Complete events, minus those the client is not to see as they are.
    fn filter(&self, complete: Vec<u8>) -> Vec<u8> {
        let strip = self.strip_usage && contains(&complete, b"\"usage\"");
        let rename = self.rename_guard.is_some() && contains(&complete, b"guard");
        if !strip && !rename {
            return complete;
        }
        let mut kept = Vec::with_capacity(complete.len());
        let mut start = 0;
        let mut scan = Scan::START;
        let mut ends = Vec::new();
        scan.run(&complete, |i| {
            // The LF of a CRLF that ended an event: the event ends after it.
            if ends.last() == Some(&(i - 1)) && complete[i - 1] == b'\n' {
                ends.pop();
            }
            ends.push(i)
        });
        for end in ends.into_iter().chain(std::iter::once(complete.len())) {
            if end <= start {
                continue;
            }
            let event = &complete[start..end];
            start = end;
            if strip && is_usage_only(event) {
                continue;
            }
            match self.rename_guard.as_deref().filter(|_| rename) {
                Some(secrets) if is_guard_event(event) => {
                    if let Some(renamed) = renamed_guard_event(event, secrets) {
                        kept.extend_from_slice(renamed.as_bytes());
                    }
                }
                _ => kept.extend_from_slice(event),
            }
        }
        kept
    }
}

/// Whether `needle` (non-empty) occurs in `haystack`: a scan for its first byte, compared
/// there (every read's bytes go through this, so it avoids comparing a window at every byte).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut at = 0;
    while let Some(found) = haystack[at..].iter().position(|&b| b == first) {
        let start = at + found + 1;
        if haystack[start..].starts_with(rest) {
            return true;
        }
        at = start;
    }
    false
}

/// The fields of one event: `(name, value)` per line, the value without its one leading space.
fn fields(event: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    let text = std::str::from_utf8(event).unwrap_or("");
    text.split(['\n', '\r'])
        .filter(|line| !line.is_empty() && !line.starts_with(':'))
        .map(|line| match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        })
}

/// A chat chunk that carries only usage: one data line, `"choices": []` and a `usage` object.
pub(super) fn is_usage_only(event: &[u8]) -> bool {
    let mut data = None;
    for (name, value) in fields(event) {
        match name {
            "data" if data.is_none() => data = Some(value),
            "data" | "event" => return false,
            _ => {}
        }
    }
    let Some(data) = data.filter(|d| d.trim_start().starts_with('{')) else {
        return false;
    };
    let choices = field_span(data, "choices").map(|span| data[span].trim());
    let usage = field_span(data, "usage").map(|span| data[span].trim());
    let empty = choices.is_some_and(|c| {
        c.strip_prefix('[')
            .and_then(|c| c.strip_suffix(']'))
            .is_some_and(|inner| inner.trim().is_empty())
    });
    empty && usage.is_some_and(|u| u.starts_with('{'))
}

/// An event named `guard` (an upstream guard's own).
fn is_guard_event(event: &[u8]) -> bool {
    fields(event).any(|(name, value)| name == "event" && value.trim() == "guard")
}

/// An upstream's guard event as the worker relays it: named [`UPSTREAM_EVENT`], its data the
/// `upstream-event` wrapper with every secret taken out. `None` when its data is not one JSON
/// value after that (it is left out rather than passed on in a shape nobody expects).
fn renamed_guard_event(event: &[u8], secrets: &[String]) -> Option<String> {
    let data: Vec<&str> = fields(event)
        .filter(|(name, _)| *name == "data")
        .map(|(_, value)| value)
        .collect();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let data = redact(&data.join("\n"), &secrets);
    serde_json::from_str::<serde_json::Value>(&data).ok()?;
    if data.contains(['\n', '\r']) {
        return None;
    }
    Some(format!(
        "event: {UPSTREAM_EVENT}\ndata: {{\"type\":\"upstream-event\",\"event\":{data}}}\n\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(shaper: &mut Shaper, reads: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = VecDeque::new();
        for read in reads {
            shaper.feed(1.0, read, &mut out);
        }
        shaper.flush(2.0, &mut out);
        out.into_iter()
            .map(|d| match d {
                RelayDelivery::Bytes(b) => b,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    const STREAM: &str = "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n: keep\n\ndata: {\"id\":\"c\",\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\ndata: [DONE]\n\n";

    #[test]
    fn every_split_gives_the_same_bytes_cut_at_event_ends() {
        for split in 0..STREAM.len() {
            let (a, b) = STREAM.as_bytes().split_at(split);
            let mut shaper = Shaper::new(false, None, 1 << 16);
            let out = run(&mut shaper, &[a, b]);
            assert_eq!(out.concat(), STREAM.as_bytes(), "split at {split}");
            for piece in &out {
                assert!(piece.ends_with(b"\n\n"), "split at {split}: {piece:?}");
            }
        }
    }

    #[test]
    fn the_usage_only_chunk_is_left_out_and_nothing_else() {
        let want = STREAM.replace(
            "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n",
            "",
        );
        for split in 0..STREAM.len() {
            let (a, b) = STREAM.as_bytes().split_at(split);
            let mut shaper = Shaper::new(true, None, 1 << 16);
            assert_eq!(
                run(&mut shaper, &[a, b]).concat(),
                want.as_bytes(),
                "{split}"
            );
        }
        assert!(!is_usage_only(
            b"data: {\"choices\":[{}],\"usage\":{\"a\":1}}\n\n"
        ));
        assert!(!is_usage_only(b"data: {\"choices\":[],\"usage\":null}\n\n"));
        assert!(is_usage_only(
            b"data:{\"usage\":{\"a\":1},\"choices\":[ ]}\r\n\r\n"
        ));
    }

    #[test]
    fn crlf_and_cr_line_ends_are_event_ends_too() {
        let text = "data: a\r\n\r\ndata: b\r\rdata: c\n\n";
        for split in 0..text.len() {
            let (a, b) = text.as_bytes().split_at(split);
            let mut shaper = Shaper::new(true, None, 1 << 16);
            assert_eq!(
                run(&mut shaper, &[a, b]).concat(),
                text.as_bytes(),
                "{split}"
            );
        }
    }

    #[test]
    fn an_upstream_guard_event_is_renamed_and_redacted() {
        let text = "event: guard\ndata: {\"type\":\"timeout\",\"note\":\"key sk-secret-1\"}\n\ndata: {\"choices\":[]}\n\n";
        let mut shaper = Shaper::new(false, Some(vec!["sk-secret-1".into()]), 1 << 16);
        let out = String::from_utf8(run(&mut shaper, &[text.as_bytes()]).concat()).unwrap();
        assert!(out.starts_with("event: guard-upstream\ndata: {\"type\":\"upstream-event\",\"event\":{\"type\":\"timeout\""), "{out}");
        assert!(!out.contains("sk-secret-1"), "{out}");
        assert!(out.ends_with("data: {\"choices\":[]}\n\n"), "{out}");
    }

    #[test]
    fn contains_finds_a_needle_anywhere_and_nothing_else() {
        assert!(contains(b"ab\"usage\"", b"\"usage\""));
        assert!(contains(b"\"\"usage\"x", b"\"usage\""));
        assert!(!contains(b"\"usag\"", b"\"usage\""));
        assert!(!contains(b"", b"guard"));
        assert!(contains(b"event: guard", b"guard"));
    }

    #[test]
    fn an_event_past_the_bound_goes_out_as_it_is() {
        let mut shaper = Shaper::new(true, None, 8);
        let mut out = VecDeque::new();
        shaper.feed(1.0, b"data: 0123456789", &mut out);
        assert_eq!(out.len(), 1);
        assert!(!shaper.at_boundary);
    }
}
