//! An incremental, standards-exact Server-Sent Events parser.
//!
//! Bytes go in as they arrive from the network, split anywhere; events, comments and `retry`
//! values come out exactly as the WHATWG HTML standard's "Server-sent events" section
//! (§9.2.5 "Parsing an event stream", §9.2.6 "Interpreting an event stream") defines them.
//! Pure Rust: no platform crate, no clock, no I/O.
//!
//! The grammar, quoted from the standard:
//!
//! ```text
//! stream        = [ bom ] *event
//! event         = *( comment / field ) end-of-line
//! comment       = colon *any-char end-of-line
//! field         = 1*name-char [ colon [ space ] *any-char ] end-of-line
//! end-of-line   = ( cr lf / cr / lf )
//!
//! ; characters
//! lf            = %x000A ; U+000A LINE FEED (LF)
//! cr            = %x000D ; U+000D CARRIAGE RETURN (CR)
//! space         = %x0020 ; U+0020 SPACE
//! colon         = %x003A ; U+003A COLON (:)
//! bom           = %xFEFF ; U+FEFF BYTE ORDER MARK
//! name-char     = %x0000-0009 / %x000B-000C / %x000E-0039 / %x003B-10FFFF
//! any-char      = %x0000-0009 / %x000B-000C / %x000E-10FFFF
//! ```
//!
//! How the parser stays linear in its input: a line that lies wholly inside one pushed chunk is
//! processed in place, straight from the caller's slice; only the unfinished tail of a chunk is
//! copied, once, into a line buffer that the next chunk extends. Nothing is ever re-scanned and
//! no string is rebuilt by concatenation.
//!
//! What it must never do: grow without bound. A line or an event's data longer than
//! `max_event_bytes` puts the parser into a terminal [`SseError::EventTooLarge`] state.

use super::bytes as swar;
use std::borrow::Cow;
use std::fmt;

/// The default bound on one line and on one event's data: 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// One dispatched event, borrowed from the parser until the sink returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event type: the last `event:` field of the block, or `"message"` when there was none
    /// (or it was empty).
    pub event_type: &'a str,
    /// The data lines of the block joined with LF (the final LF removed).
    pub data: &'a str,
    /// The last event ID: set by an `id:` field without NULL, kept across events until changed,
    /// reset by an empty `id:`.
    pub last_event_id: &'a str,
}

/// Where the parser delivers what it finds, as it finds it (no allocation per event).
pub trait SseSink {
    /// A complete event was dispatched (a blank line ended a block with data).
    fn event(&mut self, event: Event<'_>);
    /// A comment line (`:` first): bytes arrived, but no content. `text` is what follows the
    /// colon, with one leading space removed (as for field values).
    fn comment(&mut self, _text: &str) {}
    /// A valid `retry:` field (ASCII digits only) set the reconnection time, in milliseconds.
    fn retry(&mut self, _milliseconds: u64) {}
}

/// The parser's one error: terminal, every later push returns it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    /// A single line, or one event's accumulated data, exceeded the configured bound.
    EventTooLarge {
        /// The configured bound, in bytes.
        limit: usize,
    },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::EventTooLarge { limit } => {
                write!(f, "SSE line or event larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for SseError {}

/// An owned item, for callers that prefer a `Vec` to a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A dispatched event.
    Event(OwnedEvent),
    /// A comment line's text.
    Comment(String),
    /// A reconnection time in milliseconds.
    Retry(u64),
}

/// An owned copy of an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedEvent {
    /// See [`Event::event_type`].
    pub event_type: String,
    /// See [`Event::data`].
    pub data: String,
    /// See [`Event::last_event_id`].
    pub last_event_id: String,
}

impl From<Event<'_>> for OwnedEvent {
    fn from(e: Event<'_>) -> Self {
        OwnedEvent {
            event_type: e.event_type.to_owned(),
            data: e.data.to_owned(),
            last_event_id: e.last_event_id.to_owned(),
        }
    }
}

impl SseSink for Vec<SseItem> {
    fn event(&mut self, event: Event<'_>) {
        self.push(SseItem::Event(event.into()));
    }
    fn comment(&mut self, text: &str) {
        self.push(SseItem::Comment(text.to_owned()));
    }
    fn retry(&mut self, milliseconds: u64) {
        self.push(SseItem::Retry(milliseconds));
    }
}

/// How far the check for the one leading byte order mark has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BomCheck {
    /// This many bytes of the BOM have been seen at the very start of the stream and held back.
    Matched(u8),
    /// The start of the stream has been decided (BOM stripped, or there was none).
    Done,
}

/// The incremental SSE parser. Feed it with [`SseParser::push`], close it with [`SseParser::end`].
#[derive(Debug, Clone)]
pub struct SseParser {
    max_event_bytes: usize,
    bom: BomCheck,
    /// The previous chunk ended with CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
    /// The unfinished line carried over from earlier chunks (bytes: it may end mid-character).
    line: Vec<u8>,
    /// "data buffer" of the standard.
    data: String,
    /// "event type buffer" of the standard.
    event_type: String,
    /// "last event ID buffer" of the standard.
    last_event_id: String,
    failed: Option<SseError>,
    lines: u64,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser that refuses lines and events longer than `max_event_bytes` (0 means the default).
    pub fn new(max_event_bytes: usize) -> Self {
        let max_event_bytes = if max_event_bytes == 0 {
            DEFAULT_MAX_EVENT_BYTES
        } else {
            max_event_bytes
        };
        SseParser {
            max_event_bytes,
            bom: BomCheck::Matched(0),
            after_cr: false,
            line: Vec::new(),
            data: String::new(),
            event_type: String::new(),
            last_event_id: String::new(),
            failed: None,
            lines: 0,
        }
    }

    /// The configured bound on a line and on an event's data.
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// How many complete lines (including blank ones) have been read so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The last event ID as it stands now.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Feed the next bytes of the stream, split anywhere. Everything completed by them goes to
    /// `sink` before this returns. After an error, nothing more is parsed.
    ///
    /// The sink is a trait object: one copy of the parser serves every kind of sink (a call
    /// per event costs nothing next to parsing it, and the wasm module stays smaller).
    pub fn push(&mut self, bytes: &[u8], sink: &mut dyn SseSink) -> Result<(), SseError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let mut bytes = bytes;
        if let BomCheck::Matched(held) = self.bom {
            // "One leading U+FEFF BYTE ORDER MARK character must be ignored if any are present."
            // The BOM may itself arrive split across chunks, so matched bytes are held back.
            let mut matched = held as usize;
            let mut taken = 0;
            while matched < BOM.len() && taken < bytes.len() && bytes[taken] == BOM[matched] {
                matched += 1;
                taken += 1;
            }
            if matched == BOM.len() {
                self.bom = BomCheck::Done;
                bytes = &bytes[taken..];
            } else if taken == bytes.len() {
                self.bom = BomCheck::Matched(matched as u8);
                return Ok(());
            } else {
                // Not a BOM after all: the held-back bytes are ordinary stream bytes.
                self.bom = BomCheck::Done;
                self.scan(&BOM[..matched], sink)?;
                bytes = &bytes[taken..];
            }
        }
        self.scan(bytes, sink)
    }

    /// Feed many chunks and collect what they produce (convenient in tests and small callers).
    pub fn push_collect(&mut self, bytes: &[u8]) -> Result<Vec<SseItem>, SseError> {
        let mut items = Vec::new();
        self.push(bytes, &mut items)?;
        Ok(items)
    }

    /// The stream ended. Per the standard, "any pending data must be discarded. (If the file
    /// ends in the middle of an event, before the final empty line, the incomplete event is not
    /// dispatched.)" Returns whether something was discarded (an unfinished line or event),
    /// which tells a caller the stream was cut rather than finished. The parser is reset for a
    /// new stream afterwards, keeping the last event ID (as a reconnecting client would).
    pub fn end(&mut self) -> bool {
        let discarded = !self.line.is_empty()
            || !self.data.is_empty()
            || !self.event_type.is_empty()
            || matches!(self.bom, BomCheck::Matched(n) if n > 0);
        self.line.clear();
        self.data.clear();
        self.event_type.clear();
        self.after_cr = false;
        self.bom = BomCheck::Matched(0);
        self.failed = None;
        discarded
    }

    fn fail<T>(&mut self) -> Result<T, SseError> {
        let error = SseError::EventTooLarge {
            limit: self.max_event_bytes,
        };
        self.failed = Some(error);
        self.line = Vec::new();
        self.data = String::new();
        Err(error)
    }

    /// Split `bytes` into lines (CRLF, CR or LF) and interpret each complete one.
    fn scan(&mut self, bytes: &[u8], sink: &mut dyn SseSink) -> Result<(), SseError> {
        let mut rest = bytes;
        if self.after_cr && !rest.is_empty() {
            // A CR ended the previous chunk; if this chunk starts with LF, the pair is one
            // end-of-line that was split by the network, not an extra blank line.
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(at) = find_line_end(rest) {
            let terminator = rest[at];
            if self.line.is_empty() {
                if at > self.max_event_bytes {
                    return self.fail();
                }
                // The usual event: one `data:` line, then the blank line, both in this chunk
                // (LF LF or CRLF CRLF). Dispatched straight from the chunk.
                let blank = if rest.get(at..at + 2) == Some(b"\n\n") {
                    2
                } else if rest.get(at..at + 4) == Some(b"\r\n\r\n") {
                    4
                } else {
                    0
                };
                if blank > 0 && self.data.is_empty() && self.data_event(&rest[..at], sink) {
                    rest = &rest[at + blank..];
                    continue;
                }
                self.interpret_line(&rest[..at], sink)?;
            } else {
                if self.line.len() + at > self.max_event_bytes {
                    return self.fail();
                }
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..at]);
                let result = self.interpret_line(&line, sink);
                line.clear();
                self.line = line; // keep the allocation for the next split line
                result?;
            }
            rest = &rest[at + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        if !rest.is_empty() {
            if self.line.len() + rest.len() > self.max_event_bytes {
                return self.fail();
            }
            self.line.extend_from_slice(rest);
        }
        Ok(())
    }

    /// A `data:` line followed by a blank line, with nothing buffered: what interpreting the
    /// two lines does (append the value and an LF, dispatch, which removes that LF), without
    /// copying the value into the data buffer. `false` (nothing done) for any other line, and
    /// for a value that is invalid UTF-8 or over the bound (left to the general path).
    fn data_event(&mut self, raw: &[u8], sink: &mut dyn SseSink) -> bool {
        let Some(value) = raw.strip_prefix(b"data:") else {
            return false;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let Ok(data) = std::str::from_utf8(value) else {
            return false;
        };
        if data.len() + 1 > self.max_event_bytes {
            return false;
        }
        self.lines += 2;
        emit(&mut self.event_type, data, &self.last_event_id, sink);
        true
    }

    /// "Interpreting an event stream": one complete line, without its end-of-line.
    fn interpret_line(&mut self, raw: &[u8], sink: &mut dyn SseSink) -> Result<(), SseError> {
        self.lines += 1;
        // Lines are cut at CR/LF bytes, which never occur inside a UTF-8 sequence, so decoding
        // line by line equals decoding the whole stream; invalid bytes become U+FFFD, as the
        // standard's "UTF-8 decode" does.
        let line = decode_utf8(raw);
        let line: &str = &line;

        // "If the line is empty (a blank line): Dispatch the event."
        if line.is_empty() {
            self.dispatch(sink);
            return Ok(());
        }
        // "If the line starts with a U+003A COLON character (:): Ignore the line."
        // Ignored for content, but surfaced: the caller learns that bytes arrived.
        if let Some(comment) = line.strip_prefix(':') {
            sink.comment(comment.strip_prefix(' ').unwrap_or(comment));
            return Ok(());
        }
        // "If the line contains a U+003A COLON character: collect the characters before the
        // first colon as field, the rest as value; if value starts with a U+0020 SPACE,
        // remove it. Otherwise, the string is not empty but does not contain a colon: the
        // whole line is the field name, and the empty string is the value."
        // (A byte loop: the colon is a few bytes in, where a substring search costs more.)
        let colon = line.bytes().position(|b| b == b':');
        let (field, value) = match colon.and_then(|colon| line.split_at_checked(colon)) {
            Some((field, value)) => {
                let value = value.strip_prefix(':').unwrap_or(value);
                (field, value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        self.process_field(field, value, sink)
    }

    /// "Process the field."
    fn process_field(
        &mut self,
        field: &str,
        value: &str,
        sink: &mut dyn SseSink,
    ) -> Result<(), SseError> {
        match field {
            // "Set the event type buffer to field value."
            "event" => {
                if value.len() > self.max_event_bytes {
                    return self.fail();
                }
                self.event_type.clear();
                self.event_type.push_str(value);
            }
            // "Append the field value to the data buffer, then append a single U+000A LINE
            // FEED (LF) character to the data buffer."
            "data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    return self.fail();
                }
                self.data.push_str(value);
                self.data.push('\n');
            }
            // "If the field value does not contain U+0000 NULL, then set the last event ID
            // buffer to the field value. Otherwise, ignore the field."
            "id" if !value.contains('\0') => {
                self.last_event_id.clear();
                self.last_event_id.push_str(value);
            }
            // "If the field value consists of only ASCII digits, then interpret the field value
            // as an integer in base ten, and set the event stream's reconnection time to that
            // integer. Otherwise, ignore the field."
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Saturate instead of failing on absurd values.
                let milliseconds = value
                    .bytes()
                    .try_fold(0u64, |n, digit| {
                        n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
                    })
                    .unwrap_or(u64::MAX);
                sink.retry(milliseconds);
            }
            // "Otherwise: The field is ignored."
            _ => {}
        }
        Ok(())
    }

    /// "Dispatch the event", steps 1 to 6 (the last event ID string is the buffer itself).
    fn dispatch(&mut self, sink: &mut dyn SseSink) {
        // "If the data buffer is an empty string, set the data buffer and the event type buffer
        // to the empty string and return."
        if self.data.is_empty() {
            self.event_type.clear();
            return;
        }
        // "If the data buffer's last character is a U+000A LINE FEED (LF) character, then
        // remove the last character from the data buffer."
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        emit(&mut self.event_type, &self.data, &self.last_event_id, sink);
        // "Set the data buffer and the event type buffer to the empty string."
        self.data.clear();
    }
}

/// The end of "dispatch the event": the event goes to the sink, and the event type buffer is
/// emptied.
fn emit(event_type: &mut String, data: &str, last_event_id: &str, sink: &mut dyn SseSink) {
    // "Initialize event's type attribute to "message" ... If the event type buffer has a
    // value other than the empty string, change the type of the newly created event to
    // equal the value of the event type buffer."
    sink.event(Event {
        event_type: if event_type.is_empty() {
            "message"
        } else {
            event_type
        },
        data,
        last_event_id,
    });
    event_type.clear();
}

/// UTF-8 decode, as the Encoding standard's "UTF-8 decode without BOM" does (and as
/// `String::from_utf8_lossy`): each maximal invalid subpart becomes one U+FFFD. Valid input
/// (nearly all) is borrowed after one `from_utf8` check, which runs a word at a time over
/// ASCII where `from_utf8_lossy` steps a byte at a time; only invalid input goes through
/// `from_utf8_lossy` (which the module carries anyway: a decoder of its own built on
/// `from_utf8` errors measured 0.7 KB more).
pub fn decode_utf8(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The index of the first CR or LF in `bytes`, eight bytes at a time.
fn find_line_end(bytes: &[u8]) -> Option<usize> {
    let at = swar::find(
        bytes,
        0,
        |word| swar::equal(word, b'\n') | swar::equal(word, b'\r'),
        |b| b == b'\r' || b == b'\n',
    );
    (at < bytes.len()).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[u8]) -> Vec<SseItem> {
        let mut parser = SseParser::default();
        parser.push_collect(input).unwrap()
    }

    #[test]
    fn a_bom_split_across_three_pushes_is_stripped_once() {
        let mut parser = SseParser::default();
        let mut items = Vec::new();
        for piece in [&[0xEF][..], &[0xBB], &[0xBF], b"data: x\n\n"] {
            parser.push(piece, &mut items).unwrap();
        }
        assert_eq!(items.len(), 1);
        match &items[0] {
            SseItem::Event(e) => assert_eq!(e.data, "x"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_partial_bom_followed_by_other_bytes_is_kept_as_data() {
        // EF BB followed by 'x' is not a BOM: the bytes are invalid UTF-8 and become U+FFFD.
        let items = events(b"\xEF\xBBdata: x\n\n");
        // The line starts with U+FFFD, so its field name is "\u{FFFD}data": ignored.
        assert!(items.is_empty(), "{items:?}");
    }

    #[test]
    fn line_ends_are_found_at_every_position_among_look_alike_bytes() {
        // Bytes one off CR or LF, with the high bit set, and CR/LF themselves, at every offset
        // of lines longer and shorter than a word.
        let fillers = [b'a', 0x0B, 0x0C, 0x0E, 0x09, 0x8A, 0x8D, 0xFF, 0x00, 0x80];
        for len in 0..40 {
            for filler in fillers {
                let mut line = vec![filler; len];
                assert_eq!(find_line_end(&line), None);
                for end in [b'\r', b'\n'] {
                    for at in 0..len {
                        line[at] = end;
                        assert_eq!(find_line_end(&line), Some(at), "{line:?}");
                        // A second end later on does not hide the first.
                        if at + 1 < len {
                            line[len - 1] = end;
                            assert_eq!(find_line_end(&line), Some(at), "{line:?}");
                            line[len - 1] = filler;
                        }
                        line[at] = filler;
                    }
                }
            }
        }
    }

    #[test]
    fn invalid_utf8_at_every_position_of_a_line_becomes_u_fffd() {
        let line = "data: {\"content\":\"caf\u{e9} \u{1F642} plain ascii text\"}";
        let bad: [&[u8]; 4] = [b"\xFF", b"\xC3", b"\xF0\x9F\x99", b"\xED\xA0\x80"];
        for at in 0..=line.len() {
            for bytes in bad {
                let mut raw = line.as_bytes()[..at].to_vec();
                raw.extend_from_slice(bytes);
                raw.extend_from_slice(&line.as_bytes()[at..]);
                let expected = String::from_utf8_lossy(&raw).into_owned();
                let Some(data) = expected.strip_prefix("data: ") else {
                    continue; // the field name itself was broken: nothing dispatched
                };
                raw.extend_from_slice(b"\n\n");
                match events(&raw).as_slice() {
                    [SseItem::Event(e)] => assert_eq!(e.data, data, "{raw:?}"),
                    other => panic!("{raw:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_data_line_and_its_blank_line_in_one_chunk_dispatch_as_when_split() {
        // Whole, these take the direct dispatch; byte by byte, the general path.
        let inputs: [&[u8]; 6] = [
            b"event: x\nid: 7\ndata: v\n\ndata: w\n\n",
            b"data: \xFF caf\xC3\xA9\n\n",
            b"data:\r\n\r\ndata:  two spaces\r\n\r\n",
            b"data: a\ndata: b\n\n",
            b"retry: 5\n: comment\ndata\n\ndata: last\n\n",
            b"data: 0123456789\n\n",
        ];
        for input in inputs {
            for limit in [0, 12, 17] {
                let mut whole = SseParser::new(limit);
                let mut split = SseParser::new(limit);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let whole_result = whole.push(input, &mut a);
                let mut split_result = Ok(());
                for byte in input.chunks(1) {
                    split_result = split_result.and_then(|()| split.push(byte, &mut b));
                }
                assert_eq!(whole_result, split_result, "{input:?} limit {limit}");
                assert_eq!(a, b, "{input:?} limit {limit}");
                assert_eq!(whole.lines(), split.lines(), "{input:?} limit {limit}");
            }
        }
    }

    #[test]
    fn end_reports_a_cut_event() {
        let mut parser = SseParser::default();
        parser.push_collect(b"data: half").unwrap();
        assert!(parser.end());
        parser.push_collect(b"data: whole\n\n").unwrap();
        assert!(!parser.end());
    }
}
