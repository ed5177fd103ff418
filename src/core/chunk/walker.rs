//! The scanner: one pass over a JSON payload that reads the fields it is asked for and skips
//! everything else, borrowing every string that has no escapes. It knows JSON, not chat
//! chunks (`shapes.rs` names their fields), and accepts and refuses what the module
//! documentation's grammar says: as serde_json would, with the first problem in document order
//! classified the same way. Like serde, a record (`delta`, `usage`, …) may also be sent as an
//! array of its fields in order.

use super::types::{Malformed, MalformedKind};
use crate::core::bytes as swar;
use std::borrow::Cow;

/// Nesting limit of the containers that are read (serde_json's recursion limit).
const MAX_DEPTH: u32 = 128;

/// The first problem in a payload: what kind, and the byte offset where it was found.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fault {
    pub(super) kind: MalformedKind,
    pub(super) at: usize,
}

/// A step of the walk: its result, or the first problem.
pub(super) type Step<T> = Result<T, Fault>;

/// How a record (a struct of the wire format) was sent.
#[derive(Clone, Copy)]
pub(super) enum Record {
    /// `{…}`: fields by name.
    Object,
    /// `[…]`: fields by position.
    Array,
}

/// A cursor over one payload.
pub(super) struct Walker<'a> {
    text: &'a str,
    bytes: &'a [u8],
    /// The byte offset of the next byte to read.
    pub(super) pos: usize,
    /// Containers open in what is read (see `MAX_DEPTH`).
    depth: u32,
    /// Where the decoded chunk's `content` value lies, once [`Walker::chunk`] kept one.
    pub(super) content_span: Option<(usize, usize)>,
}

impl<'a> Walker<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Walker {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
            content_span: None,
        }
    }

    /// The fault as the decoder reports it: 1-based line and column of the byte it names.
    pub(super) fn malformed(&self, fault: Fault) -> Malformed {
        let at = (fault.at + 1).min(self.bytes.len());
        let before = &self.bytes[..at];
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Malformed {
            kind: fault.kind,
            line: 1 + before[..line_start].iter().filter(|&&b| b == b'\n').count(),
            column: at - line_start,
        }
    }

    fn syntax(&self) -> Fault {
        Fault {
            kind: MalformedKind::Syntax,
            at: self.pos,
        }
    }

    fn shape(&self) -> Fault {
        Fault {
            kind: MalformedKind::Shape,
            at: self.pos,
        }
    }

    /// Skip JSON whitespace; the next byte, if any.
    pub(super) fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// After the value: only whitespace may follow.
    pub(super) fn end(&mut self) -> Step<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.syntax()),
        }
    }

    /// The literal `word` at the current byte.
    pub(super) fn literal(&mut self, word: &[u8]) -> Step<()> {
        for &expected in word {
            if self.bytes.get(self.pos) != Some(&expected) {
                return Err(self.syntax());
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn slice(&self, start: usize, end: usize) -> Step<&'a str> {
        // Both ends sit next to ASCII bytes, so this never fails; no panic path either way.
        self.text.get(start..end).ok_or(Fault {
            kind: MalformedKind::Syntax,
            at: start,
        })
    }

    /// Consume the `{` or `[` at the current byte, one level deeper.
    fn enter(&mut self) -> Step<()> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(self.syntax());
        }
        self.pos += 1;
        Ok(())
    }

    /// Inside an object: the next key, or `None` once its `}` is consumed.
    fn next_key(&mut self, first: &mut bool) -> Step<Option<Cow<'a, str>>> {
        let mut next = self.peek();
        if next == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(None);
        }
        if !*first {
            if next != Some(b',') {
                return Err(self.syntax());
            }
            self.pos += 1;
            next = self.peek();
        }
        *first = false;
        if next != Some(b'"') {
            return Err(self.syntax());
        }
        self.pos += 1;
        self.string().map(Some)
    }

    /// The `:` after a key.
    fn colon(&mut self) -> Step<()> {
        // Usually right after the key, without whitespace.
        if self.bytes.get(self.pos) == Some(&b':') {
            self.pos += 1;
            return Ok(());
        }
        if self.peek() != Some(b':') {
            return Err(self.syntax());
        }
        self.pos += 1;
        Ok(())
    }

    /// Inside an array: whether another element follows (`false` once its `]` is consumed).
    pub(super) fn next_element(&mut self, first: &mut bool) -> Step<bool> {
        let mut next = self.peek();
        if next == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        if !*first {
            if next != Some(b',') {
                return Err(self.syntax());
            }
            self.pos += 1;
            next = self.peek();
        }
        *first = false;
        match next {
            Some(b']') | None => Err(self.syntax()),
            Some(_) => Ok(true),
        }
    }

    /// A value of the wrong type for its field: the wrong shape, unless it is not valid JSON
    /// either (a broken number, string or literal), which is a syntax error. A container is
    /// the wrong shape at once, without looking inside.
    #[inline(never)]
    fn wrong_type(&mut self) -> Fault {
        let at = self.pos;
        let checked = match self.bytes.get(self.pos) {
            Some(b'-' | b'0'..=b'9') => self.number(true).map(drop),
            Some(b'"') => {
                self.pos += 1;
                self.string_rest(None, false)
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'[' | b'{') => Ok(()),
            _ => Err(self.syntax()),
        };
        match checked {
            Ok(()) => Fault {
                kind: MalformedKind::Shape,
                at,
            },
            Err(fault) => fault,
        }
    }

    /// The start of a record (`{` or `[` consumed), or `None` for `null` when `optional`.
    #[inline(never)]
    pub(super) fn open_record(&mut self, optional: bool) -> Step<Option<Record>> {
        match self.peek() {
            Some(b'n') if optional => self.literal(b"null").map(|()| None),
            Some(b'{') => self.enter().map(|()| Some(Record::Object)),
            Some(b'[') => self.enter().map(|()| Some(Record::Array)),
            _ => Err(self.wrong_type()),
        }
    }

    /// The fields of a record opened by [`Walker::open_record`], each handed to `field` by its
    /// index in `names`. An object names them (unknown ones are skipped; one given twice is the
    /// wrong shape); an array lists them in order, as serde reads a struct from an array
    /// (missing ones keep their defaults; more elements than fields are a syntax error).
    ///
    /// `field` is a trait object: one copy of this loop serves every record.
    pub(super) fn fields(
        &mut self,
        record: Record,
        names: &[&str],
        field: &mut dyn FnMut(&mut Self, usize) -> Step<()>,
    ) -> Step<()> {
        let mut first = true;
        match record {
            Record::Object => {
                let mut seen = 0u8;
                while let Some(key) = self.next_key(&mut first)? {
                    // The first bytes are compared inline: most names differ there, and
                    // `==` on equal lengths is a `memcmp` call (a byte loop in wasm).
                    let key = key.as_bytes();
                    let index = names
                        .iter()
                        .position(|name| name.len() == key.len() && same(name.as_bytes(), key));
                    if let Some(index) = index {
                        // Refused before the colon is even read, as serde does.
                        if seen & (1 << index) != 0 {
                            return Err(self.shape());
                        }
                        seen |= 1 << index;
                    }
                    self.colon()?;
                    match index {
                        Some(index) => field(self, index)?,
                        None => self.skip()?,
                    }
                }
                Ok(())
            }
            Record::Array => {
                for index in 0..names.len() {
                    if !self.next_element(&mut first)? {
                        return Ok(());
                    }
                    field(self, index)?;
                }
                if self.peek() != Some(b']') {
                    return Err(self.syntax());
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(())
            }
        }
    }

    /// `null` (false), or an array whose `[` is consumed (true).
    pub(super) fn optional_array(&mut self) -> Step<bool> {
        match self.peek() {
            Some(b'n') => self.literal(b"null").map(|()| false),
            Some(b'[') => self.enter().map(|()| true),
            _ => Err(self.wrong_type()),
        }
    }

    /// An optional string: `null` is `None`; anything but a string is the wrong shape.
    #[inline(never)]
    pub(super) fn text(&mut self) -> Step<Option<Cow<'a, str>>> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.string().map(Some)
            }
            Some(b'n') => self.literal(b"null").map(|()| None),
            _ => Err(self.wrong_type()),
        }
    }

    /// A whole non-negative number that fits a `u64`; any other number is the wrong shape.
    #[inline(never)]
    pub(super) fn count(&mut self) -> Step<u64> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => {
                let at = self.pos;
                self.number(true)?.ok_or(Fault {
                    kind: MalformedKind::Shape,
                    at,
                })
            }
            _ => Err(self.wrong_type()),
        }
    }

    /// Any JSON value but `null`, as compact text; `null` is `None`.
    #[inline(never)]
    pub(super) fn any_json(&mut self) -> Step<Option<String>> {
        if self.peek() == Some(b'n') {
            return self.literal(b"null").map(|()| None);
        }
        let start = self.pos;
        self.value(true)?;
        Ok(Some(compact(self.slice(start, self.pos)?)))
    }

    // ---- tokens ----

    /// After the opening quote: the string, borrowed from the payload when it has no escapes.
    pub(super) fn string(&mut self) -> Step<Cow<'a, str>> {
        let start = self.pos;
        let end = scan_string(self.bytes, start);
        match self.bytes.get(end) {
            Some(b'"') => {
                self.pos = end + 1;
                self.slice(start, end).map(Cow::Borrowed)
            }
            Some(b'\\') => {
                let mut owned = String::from(self.slice(start, end)?);
                self.pos = end;
                self.string_rest(Some(&mut owned), false)?;
                Ok(Cow::Owned(owned))
            }
            _ => Err(Fault {
                kind: MalformedKind::Syntax,
                at: end,
            }),
        }
    }

    /// Inside a string: the rest of it through the closing quote, escapes checked and, when
    /// `out` is given, decoded into it. Surrogates must pair unless `lenient` (a skipped string,
    /// whose `\u` escapes need only be four hex digits).
    #[inline(never)]
    fn string_rest(&mut self, mut out: Option<&mut String>, lenient: bool) -> Step<()> {
        loop {
            let start = self.pos;
            let end = scan_string(self.bytes, start);
            if let Some(out) = out.as_deref_mut() {
                out.push_str(self.slice(start, end)?);
            }
            self.pos = end;
            match self.bytes.get(end) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.escape(lenient)?;
                    if let Some(out) = out.as_deref_mut() {
                        out.push(c);
                    }
                }
                _ => return Err(self.syntax()),
            }
        }
    }

    /// After a backslash: the character it stands for (see [`Walker::string_rest`]).
    fn escape(&mut self, lenient: bool) -> Step<char> {
        let Some(&b) = self.bytes.get(self.pos) else {
            return Err(self.syntax());
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                if lenient {
                    return Ok(char::REPLACEMENT_CHARACTER);
                }
                let code = match first {
                    0xDC00..=0xDFFF => return Err(self.syntax()),
                    0xD800..=0xDBFF => {
                        // A leading surrogate: `\uDC00`–`\uDFFF` must follow at once.
                        self.literal(b"\\u")?;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.syntax());
                        }
                        0x1_0000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    _ => first,
                };
                char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
            }
            _ => {
                self.pos -= 1;
                return Err(self.syntax());
            }
        };
        Ok(c)
    }

    /// Four hex digits.
    fn hex4(&mut self) -> Step<u32> {
        let mut value = 0;
        for _ in 0..4 {
            let digit = self
                .bytes
                .get(self.pos)
                .and_then(|&b| (b as char).to_digit(16))
                .ok_or(self.syntax())?;
            value = value * 16 + digit;
            self.pos += 1;
        }
        Ok(value)
    }

    /// A number: RFC 8259's grammar and, when `checked` (a number that is read, not skipped),
    /// within the range of `f64`. Returns its value when it is a whole number without sign,
    /// fraction or exponent that fits a `u64`.
    #[inline(never)]
    fn number(&mut self, checked: bool) -> Step<Option<u64>> {
        let start = self.pos;
        let negative = self.bytes.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        // Decimal exponent of the first significant digit, to refuse what overflows an f64.
        let mut magnitude: i64 = 0;
        let mut significant = false;
        let mut whole = Some(0u64);
        match self.bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                let digits = self.pos;
                while let Some(b'0'..=b'9') = self.bytes.get(self.pos) {
                    self.pos += 1;
                }
                significant = true;
                magnitude = (self.pos - digits) as i64 - 1;
                // The value only for a number that is read (a skipped one is only checked).
                // Compared, not `checked_mul`: wasm32 has no overflow flag, and LLVM makes
                // that a 128-bit multiplication call.
                if checked {
                    let digits = self.bytes.get(digits..self.pos).unwrap_or_default();
                    whole = digits.iter().try_fold(0u64, |w, &b| {
                        let digit = u64::from(b - b'0');
                        (w < u64::MAX / 10 || (w == u64::MAX / 10 && digit <= 5))
                            .then(|| w * 10 + digit)
                    });
                }
            }
            _ => return Err(self.syntax()),
        }
        if matches!(self.bytes.get(self.pos), Some(b'0'..=b'9')) {
            return Err(self.syntax()); // a leading zero
        }
        let mut plain = !negative;
        if self.bytes.get(self.pos) == Some(&b'.') {
            plain = false;
            self.pos += 1;
            let digits = self.pos;
            while let Some(&b @ b'0'..=b'9') = self.bytes.get(self.pos) {
                if !significant {
                    magnitude -= 1;
                    significant = b != b'0';
                }
                self.pos += 1;
            }
            if self.pos == digits {
                return Err(self.syntax());
            }
        }
        if matches!(self.bytes.get(self.pos), Some(b'e' | b'E')) {
            plain = false;
            self.pos += 1;
            let sign = match self.bytes.get(self.pos) {
                Some(b'-') => -1,
                Some(b'+') => 1,
                _ => 0,
            };
            if sign != 0 {
                self.pos += 1;
            }
            let digits = self.pos;
            let mut exponent: i64 = 0;
            while let Some(&b @ b'0'..=b'9') = self.bytes.get(self.pos) {
                exponent = (exponent * 10 + i64::from(b - b'0')).min(1 << 40);
                self.pos += 1;
            }
            if self.pos == digits {
                return Err(self.syntax());
            }
            magnitude += if sign < 0 { -exponent } else { exponent };
        }
        if checked
            && significant
            && (magnitude > 308 || (magnitude == 308 && self.rounds_to_infinity(start)))
        {
            return Err(self.syntax()); // beyond f64::MAX
        }
        Ok(if plain { whole } else { None })
    }

    /// Whether the number from `start` to here, of magnitude 1e308, is at least halfway from
    /// `f64::MAX` (1.7976931348623157081e308) to the next power of two, so reads as infinity.
    fn rounds_to_infinity(&self, start: usize) -> bool {
        const HALFWAY: &[u8] = b"17976931348623158079";
        let mut digits = (self.bytes.get(start..self.pos).unwrap_or_default().iter())
            .take_while(|b| !matches!(b, b'e' | b'E'))
            .filter(|b| b.is_ascii_digit())
            .skip_while(|b| **b == b'0');
        for &limit in HALFWAY {
            match digits.next() {
                Some(&digit) if digit == limit => continue,
                Some(&digit) => return digit > limit,
                None => return false,
            }
        }
        true
    }

    /// Any JSON value, iteratively (deep nesting costs no stack). `read`: as serde reads a
    /// value it keeps (`code`): strings fully checked, numbers within the range of
    /// `f64`, nesting counted against the limit. Otherwise as serde skips a field it does not
    /// know: only well-formed (escapes need only be well-formed), with no nesting limit.
    #[inline(never)]
    pub(super) fn value(&mut self, read: bool) -> Step<()> {
        // Open containers, innermost last: a bit per level (1 = object), spilling past 64.
        let (mut bits, mut depth, mut deep) = (0u64, 0usize, Vec::<bool>::new());
        loop {
            // A value.
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    self.string_rest(None, !read)?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number(read)?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(open @ (b'[' | b'{')) => {
                    if read {
                        self.enter()?;
                    } else {
                        self.pos += 1;
                    }
                    let object = open == b'{';
                    if depth < 64 {
                        bits = (bits & !(1 << depth)) | (u64::from(object) << depth);
                    } else {
                        deep.push(object);
                    }
                    depth += 1;
                    let close = if object { b'}' } else { b']' };
                    if self.peek() != Some(close) {
                        if object {
                            self.key(read)?;
                        }
                        continue;
                    }
                    // An empty container: closed below.
                }
                _ => return Err(self.syntax()),
            }
            // After a value: close containers until one continues with `,`.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let object = if depth <= 64 {
                    bits & (1 << (depth - 1)) != 0
                } else {
                    deep.last() == Some(&true)
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            self.key(read)?;
                        }
                        break;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ => return Err(self.syntax()),
                }
                self.pos += 1;
                depth -= 1;
                if read {
                    self.depth -= 1;
                }
                if depth >= 64 {
                    deep.pop();
                }
            }
        }
    }

    /// The value of a field that is not read: [`Walker::value`], with the scalars that
    /// OpenRouter's chunks carry (`"provider"`, `"created"`, `"index"`, `"logprobs"`...)
    /// taken directly.
    fn skip(&mut self) -> Step<()> {
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                self.string_rest(None, true)
            }
            Some(b'-' | b'0'..=b'9') => self.number(false).map(drop),
            Some(b'n') => self.literal(b"null"),
            _ => self.value(false),
        }
    }

    /// In an object walked by [`Walker::value`]: a key and its colon.
    fn key(&mut self, read: bool) -> Step<()> {
        if self.peek() != Some(b'"') {
            return Err(self.syntax());
        }
        self.pos += 1;
        self.string_rest(None, !read)?;
        self.colon()
    }
}

/// The index of the first byte from `at` on that ends a run of plain string text: a quote,
/// a backslash or a control character (or the end). Eight bytes at a time.
pub(super) fn scan_string(bytes: &[u8], at: usize) -> usize {
    swar::find(
        bytes,
        at,
        |word| swar::equal(word, b'"') | swar::equal(word, b'\\') | swar::below(word, 0x20),
        |b| b == b'"' || b == b'\\' || b < 0x20,
    )
}

/// Whether two byte strings of the same length (the caller checks) are equal: words, the
/// last two overlapping (`==` on slices calls `memcmp`, a byte loop in wasm).
#[inline(never)]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if word::<8>(a, at) != word::<8>(b, at) {
                return false;
            }
            at += 8;
        }
        word::<8>(a, n - 8) == word::<8>(b, n - 8)
    } else if n >= 4 {
        word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4)
    } else {
        a == b // short enough for memcmp's byte loop
    }
}

/// The `N` bytes of `bytes` from `at` (zeros past its end, which callers never reach).
fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes
        .get(at..at + N)
        .and_then(|w| <[u8; N]>::try_from(w).ok())
        .unwrap_or([0; N])
}

/// JSON text without the whitespace outside its strings.
fn compact(json: &str) -> String {
    // Runs between whitespace bytes are copied whole (every byte looked at is ASCII, so the
    // runs start and end on character boundaries).
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped, mut run) = (false, false, 0);
    for (at, b) in json.bytes().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            out.push_str(json.get(run..at).unwrap_or_default());
            run = at + 1;
        }
    }
    out.push_str(json.get(run..).unwrap_or_default());
    out
}
