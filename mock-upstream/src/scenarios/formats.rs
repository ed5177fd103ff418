//! Chat scenarios about the wire format: split characters and CRLF, a malformed event, a huge line.

use super::*;

use std::ops::Range;

use bytes::Bytes;

/// Where the mandatory write boundaries of `multibyte-crlf` fall: inside every 4-byte character,
/// inside the first 2- and 3-byte characters, and between CR and LF of every other CRLF.
pub(crate) fn forced_cuts(b: &[u8]) -> Vec<usize> {
    let mut cuts = Vec::new();
    let (mut seen2, mut seen3, mut n4, mut crlf) = (false, false, 0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
            if crlf % 2 == 0 {
                cuts.push(i + 1);
            }
            crlf += 1;
            i += 2;
            continue;
        }
        let len = match c {
            0xF0..=0xF7 => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        match len {
            4 => {
                cuts.push(i + 1 + n4 % 3);
                n4 += 1;
            }
            3 if !seen3 => {
                cuts.push(i + 1);
                seen3 = true;
            }
            2 if !seen2 => {
                cuts.push(i + 1);
                seen2 = true;
            }
            _ => {}
        }
        i += len;
    }
    cuts
}

/// Splits `bytes` into writes of 1 to 7 bytes, deterministically, honouring [`forced_cuts`].
pub(crate) fn small_writes(bytes: &[u8]) -> Vec<Range<usize>> {
    const SIZES: [usize; 8] = [3, 1, 4, 1, 5, 7, 2, 6];
    let forced = forced_cuts(bytes);
    let mut out = Vec::new();
    let (mut pos, mut k) = (0, 0);
    while pos < bytes.len() {
        let mut end = (pos + SIZES[k % SIZES.len()]).min(bytes.len());
        if let Some(&f) = forced.iter().find(|&&f| f > pos && f < end) {
            end = f;
        }
        out.push(pos..end);
        pos = end;
        k += 1;
    }
    out
}

/// `multibyte-crlf`.
pub(crate) fn multibyte_crlf(c: &Ctx) -> Reply {
    let text = c
        .params
        .text
        .clone()
        .unwrap_or_else(|| MULTIBYTE_TEXT.to_string());
    let mb = pieces(&text);
    let crlf = Style {
        nl: "\r\n",
        sep: " ",
    };
    let g = &c.gen;
    let mut all_bytes = Vec::new();
    for piece in &mb {
        all_bytes.extend_from_slice(&crlf.data(&g.content(piece)));
    }
    all_bytes.extend_from_slice(&crlf.data(&g.finish("stop")));
    if c.sends_usage() {
        all_bytes.extend_from_slice(&crlf.data(&g.usage(c.usage(mb.len()))));
    }
    all_bytes.extend_from_slice(&crlf.done());
    let all_bytes = Bytes::from(all_bytes);
    let mut b = c.builder();
    for r in small_writes(&all_bytes) {
        b.event(all_bytes.slice(r));
    }
    b.finish(Tail::End)
}

/// `malformed-event`.
pub(crate) fn malformed_event(c: &Ctx) -> Reply {
    let (g, all) = (&c.gen, &c.pieces);
    let mut b = c.builder();
    let at = (all.len() / 2).max(1);
    for (i, piece) in all.iter().enumerate() {
        if i == at {
            b.event(Bytes::from_static(MALFORMED_EVENT.as_bytes()));
        }
        b.event(LF.data(&g.content(piece)));
    }
    if all.len() <= at {
        b.event(Bytes::from_static(MALFORMED_EVENT.as_bytes()));
    }
    b.event(LF.data(&g.finish("stop")));
    c.usage_event(&mut b, all.len());
    b.event(LF.done());
    b.finish(Tail::End)
}

/// `huge-line`.
pub(crate) fn huge_line(c: &Ctx) -> Reply {
    let g = &c.gen;
    let mut b = c.builder();
    let xs = "x".repeat(c.params.size as usize);
    let line = LF.data(&g.content(&xs));
    let mut start = 0;
    while start < line.len() {
        let end = (start + HUGE_WRITE).min(line.len());
        b.event(line.slice(start..end));
        start = end;
    }
    b.event(LF.data(&g.finish("stop")));
    c.usage_event(&mut b, 1);
    b.event(LF.done());
    b.finish(Tail::End)
}

/// `cr-only`.
pub(crate) fn cr_only(c: &Ctx) -> Reply {
    c.normal_stream(c.builder(), Style { nl: "\r", sep: " " })
}

/// `bom-nospace`.
pub(crate) fn bom_nospace(c: &Ctx) -> Reply {
    let mut b = c.builder();
    b.event(Bytes::from_static("\u{feff}".as_bytes()));
    c.normal_stream(b, Style { nl: "\n", sep: "" })
}

/// `data-after-done`.
pub(crate) fn data_after_done(c: &Ctx) -> Reply {
    let mut b = c.normal_events(c.builder(), LF);
    b.event(LF.data(&c.gen.content("after done")));
    b.finish(Tail::Silence)
}
