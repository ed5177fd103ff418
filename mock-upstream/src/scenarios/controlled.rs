//! `controlled`: does what `POST /_control/<id>` last set, read afresh by every request.

use super::*;

use crate::control::Mode;

/// `controlled`: the setting `POST /_control/<id>` last gave.
pub(crate) fn controlled(c: &Ctx) -> Reply {
    let control = c.control.unwrap_or_default();
    c.note(control.describe());
    let mut b = c.builder();
    b.first_delay += control.first_token_ms;
    match control.mode {
        Mode::Ok => c.normal_stream(b, LF),
        Mode::Stall => b.finish(Tail::Silence),
        Mode::StallAfter(n) => {
            for i in 0..n as usize {
                let piece = c.pieces.get(i % c.pieces.len().max(1));
                b.event(LF.data(&c.gen.content(piece.map_or("", String::as_str))));
            }
            b.finish(Tail::Silence)
        }
        Mode::Http(status) => c.status(status),
    }
}
