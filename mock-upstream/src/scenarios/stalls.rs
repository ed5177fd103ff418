//! Chat scenarios about timing: keepalives, stalls, resets, endless and long streams.

use super::*;

/// `keepalive-then-content`.
pub(crate) fn keepalive_then_content(c: &Ctx) -> Reply {
    let p = c.params;
    let mut b = c.builder();
    for i in 0..p.keepalives {
        if i == 0 {
            b.event(LF.comment());
        } else {
            b.sleep(p.keepalive_ms);
            b.raw(LF.comment());
        }
    }
    if p.keepalives > 0 {
        b.sleep(p.keepalive_ms);
    }
    c.normal_stream(b, LF)
}

/// `long`.
pub(crate) fn long(c: &Ctx) -> Reply {
    let (g, n) = (&c.gen, c.params.n);
    let mut b = c.builder();
    let tok = LF.data(&g.content(LONG_TOKEN));
    for i in 0..n {
        if i > 0 && i % 100 == 0 {
            b.event(LF.comment());
        }
        b.event(tok.clone());
    }
    b.event(LF.data(&g.finish("stop")));
    c.usage_event(&mut b, n as usize);
    b.event(LF.done());
    b.finish(Tail::End)
}

/// `keepalive-forever`.
pub(crate) fn keepalive_forever(c: &Ctx) -> Reply {
    let mut b = c.builder();
    b.event(LF.comment());
    b.finish(c.keepalives_forever())
}

/// `reset-after-content`.
pub(crate) fn reset_after_content(c: &Ctx) -> Reply {
    let mut b = c.first_chunks();
    // A reset discards what the peer has not read yet (browsers drop it), so give the
    // client time to read the chunks first: `delay_ms`, at least 50 ms.
    let grace = b.delay.max(50);
    b.sleep(grace);
    b.finish(Tail::Reset)
}

/// `endless`.
pub(crate) fn endless(c: &Ctx) -> Reply {
    let mut b = Builder::new(c.params, 50);
    let tick = LF.data(&c.gen.content(TICK));
    let every_ms = b.delay.max(1);
    b.event(tick.clone());
    b.finish(Tail::Repeat {
        every_ms,
        bytes: tick,
    })
}
