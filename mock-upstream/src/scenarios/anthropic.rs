//! Anthropic Messages (`POST …/v1/messages`): its event stream, each event written as
//! `event: <type>` + `data: {"type": …, …}`, and the whole `Message` for `stream: false`. Field
//! names follow `@anthropic-ai/sdk`'s `RawMessageStreamEvent` and `Message` types.

use serde_json::{json, Value};

use super::plan::{named_event, type_first};
use super::{Builder, Ctx, Fixed, Reply, Tail};
use crate::texts::*;

/// Writes event `kind` (its `type`) with these fields.
fn emit(b: &mut Builder, kind: &str, fields: Value) {
    b.event(named_event(kind, &type_first(kind, None, &fields)));
}

/// A `Message` with this content, stop reason and output token count.
fn message(c: &Ctx, content: Vec<Value>, stop_reason: Value, output_tokens: u64) -> Value {
    json!({
        "id": format!("msg_mock_{}", c.conn_id),
        "type": "message",
        "role": "assistant",
        "model": c.req.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {
            "input_tokens": c.prompt,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        },
    })
}

/// `message_start` (empty content, one output token so far).
fn start(c: &Ctx, b: &mut Builder) {
    let m = message(c, Vec::new(), Value::Null, 1);
    emit(b, "message_start", json!({ "message": m }));
}

/// `content_block_start` of an empty text block at index 0, then a `ping`.
fn open_text(b: &mut Builder) {
    emit(
        b,
        "content_block_start",
        json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    emit(b, "ping", json!({}));
}

/// One `text_delta`.
fn text_delta(b: &mut Builder, piece: &str) {
    emit(
        b,
        "content_block_delta",
        json!({"index": 0, "delta": {"type": "text_delta", "text": piece}}),
    );
}

/// `content_block_stop`, `message_delta` with the stop reason and usage, `message_stop`.
fn end(b: &mut Builder, stop_reason: &str, output_tokens: usize) {
    emit(b, "content_block_stop", json!({"index": 0}));
    emit(
        b,
        "message_delta",
        json!({"delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": output_tokens}}),
    );
    emit(b, "message_stop", json!({}));
}

/// The whole `Message` (`stream: false`).
fn whole(c: &Ctx, content: Value, stop_reason: &str, tokens: usize) -> Reply {
    Reply::Fixed(Fixed {
        status: 200,
        content_type: "application/json",
        headers: Vec::new(),
        body: message(c, vec![content], json!(stop_reason), tokens as u64).to_string(),
    })
}

/// The error object of `overloaded_error`.
fn overloaded() -> String {
    let error = json!({"error": {"type": "overloaded_error", "message": OVERLOADED_MESSAGE}});
    type_first("error", None, &error)
}

/// `anthropic-normal`.
pub(crate) fn normal(c: &Ctx) -> Reply {
    if !c.req.stream() {
        let block = json!({"type": "text", "text": c.text});
        return whole(c, block, "end_turn", c.pieces.len());
    }
    let mut b = c.builder();
    start(c, &mut b);
    open_text(&mut b);
    for piece in &c.pieces {
        text_delta(&mut b, piece);
    }
    end(&mut b, "end_turn", c.pieces.len());
    b.finish(Tail::End)
}

/// `anthropic-tool-use`.
pub(crate) fn tool_use(c: &Ctx) -> Reply {
    let n = TOOL_ARGUMENT_FRAGMENTS.len();
    let input: Value = serde_json::from_str(TOOL_ARGUMENTS).expect("the tool arguments are JSON");
    if !c.req.stream() {
        let block = json!({"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID, "name": TOOL_NAME,
                           "input": input});
        return whole(c, block, "tool_use", n);
    }
    let mut b = c.builder();
    start(c, &mut b);
    emit(
        &mut b,
        "content_block_start",
        json!({"index": 0, "content_block": {"type": "tool_use", "id": ANTHROPIC_TOOL_USE_ID,
               "name": TOOL_NAME, "input": {}}}),
    );
    emit(&mut b, "ping", json!({}));
    // The API's first input_json_delta carries an empty string.
    for frag in std::iter::once(&"").chain(TOOL_ARGUMENT_FRAGMENTS) {
        emit(
            &mut b,
            "content_block_delta",
            json!({"index": 0, "delta": {"type": "input_json_delta", "partial_json": frag}}),
        );
    }
    end(&mut b, "tool_use", n);
    b.finish(Tail::End)
}

/// `anthropic-ping-forever`: `message_start`, then a `ping` every `keepalive_ms` until the
/// client leaves.
pub(crate) fn ping_forever(c: &Ctx) -> Reply {
    if !c.req.stream() {
        return Reply::NoHeaders;
    }
    let mut b = c.builder();
    start(c, &mut b);
    let ping = named_event("ping", &type_first("ping", None, &json!({})));
    b.finish(Tail::Repeat {
        every_ms: c.params.keepalive_ms.max(1),
        bytes: ping,
    })
}

/// `anthropic-stall-after-deltas`: the opening events and `chunks` text deltas, then silence.
pub(crate) fn stall_after_deltas(c: &Ctx) -> Reply {
    if !c.req.stream() {
        return Reply::NoHeaders;
    }
    let mut b = c.builder();
    start(c, &mut b);
    open_text(&mut b);
    for piece in c.first_pieces() {
        text_delta(&mut b, piece);
    }
    b.finish(Tail::Silence)
}

/// `anthropic-error`: the opening events, `chunks` text deltas, an `error` event
/// (`overloaded_error`), and the end of the body; `stream: false` gets 529 with that error.
pub(crate) fn error(c: &Ctx) -> Reply {
    if !c.req.stream() {
        return Reply::Fixed(Fixed {
            status: 529,
            content_type: "application/json",
            headers: Vec::new(),
            body: overloaded(),
        });
    }
    let mut b = c.builder();
    start(c, &mut b);
    open_text(&mut b);
    for piece in c.first_pieces() {
        text_delta(&mut b, piece);
    }
    b.event(named_event("error", &overloaded()));
    b.finish(Tail::End)
}
