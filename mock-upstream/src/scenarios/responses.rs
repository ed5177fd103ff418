//! The OpenAI Responses API (`POST …/v1/responses`): its typed event stream, each event written
//! as `event: <type>` + `data: {"type": …, "sequence_number": n, …}`, and the whole `Response`
//! object for `stream: false`. Field names follow the OpenAI SDKs' `ResponseStreamEvent` types.

use serde_json::{json, Value};

use super::plan::{named_event, type_first};
use super::{Builder, Ctx, Fixed, Reply, Tail};
use crate::texts::*;

/// Writes one generation's events with increasing sequence numbers.
struct Stream<'c, 'a> {
    c: &'c Ctx<'a>,
    b: Builder,
    seq: u64,
}

impl<'c, 'a> Stream<'c, 'a> {
    /// A stream that has written its opening events: `response.created` and
    /// `response.in_progress`.
    fn started(c: &'c Ctx<'a>) -> Self {
        let mut s = Stream {
            c,
            b: c.builder(),
            seq: 0,
        };
        s.start();
        s
    }

    /// Writes event `kind` with these fields (plus `type` and `sequence_number`).
    fn emit(&mut self, kind: &str, fields: Value) {
        let data = type_first(kind, Some(self.seq), &fields);
        self.seq += 1;
        self.b.event(named_event(kind, &data));
    }

    /// `response.created` and `response.in_progress`.
    fn start(&mut self) {
        let r = response(self.c, "in_progress", Vec::new(), Value::Null);
        self.emit("response.created", json!({ "response": r }));
        let r = response(self.c, "in_progress", Vec::new(), Value::Null);
        self.emit("response.in_progress", json!({ "response": r }));
    }

    /// The message item added and its text part opened.
    fn open_message(&mut self) {
        let item = message_item(self.c, "in_progress", Vec::new());
        self.emit(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        );
        self.emit(
            "response.content_part.added",
            json!({"item_id": message_id(self.c), "output_index": 0, "content_index": 0,
                   "part": text_part("")}),
        );
    }

    /// One `response.output_text.delta`.
    fn delta(&mut self, piece: &str) {
        self.emit(
            "response.output_text.delta",
            json!({"item_id": message_id(self.c), "output_index": 0, "content_index": 0,
                   "delta": piece, "logprobs": []}),
        );
    }

    fn finish(self, tail: Tail) -> Reply {
        self.b.finish(tail)
    }
}

/// `msg_mock_<connection>`.
fn message_id(c: &Ctx) -> String {
    format!("msg_mock_{}", c.conn_id)
}

/// `fc_mock_<connection>`.
fn call_item_id(c: &Ctx) -> String {
    format!("fc_mock_{}", c.conn_id)
}

/// An `output_text` content part.
fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

/// The assistant message item.
fn message_item(c: &Ctx, status: &str, content: Vec<Value>) -> Value {
    json!({"id": message_id(c), "type": "message", "status": status, "content": content,
           "role": "assistant"})
}

/// The `function_call` item of `get_weather`.
fn call_item(c: &Ctx, status: &str, arguments: &str) -> Value {
    json!({"id": call_item_id(c), "type": "function_call", "status": status,
           "arguments": arguments, "call_id": TOOL_CALL_ID, "name": TOOL_NAME})
}

/// Usage for `output` tokens.
fn usage(c: &Ctx, output: usize) -> Value {
    let output = output as u64;
    json!({"input_tokens": c.prompt, "input_tokens_details": {"cached_tokens": 0},
           "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
           "total_tokens": c.prompt + output})
}

/// A `Response` object.
fn response(c: &Ctx, status: &str, output: Vec<Value>, usage: Value) -> Value {
    json!({
        "id": format!("resp_mock_{}", c.conn_id),
        "object": "response",
        "created_at": c.created(),
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": null,
        "instructions": null,
        "max_output_tokens": null,
        "model": c.req.model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": {"effort": null, "summary": null},
        "store": false,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": null,
        "metadata": {},
    })
}

/// The whole answer as one JSON `Response` (`stream: false`).
fn whole(output: Value, tokens: usize, c: &Ctx) -> Reply {
    Reply::Fixed(Fixed {
        status: 200,
        content_type: "application/json",
        headers: Vec::new(),
        body: response(c, "completed", vec![output], usage(c, tokens)).to_string(),
    })
}

/// `responses-normal`.
pub(crate) fn normal(c: &Ctx) -> Reply {
    let text = &c.text;
    let done_item = message_item(c, "completed", vec![text_part(text)]);
    if !c.req.stream() {
        return whole(done_item, c.pieces.len(), c);
    }
    let mut s = Stream::started(c);
    s.open_message();
    for piece in &c.pieces {
        s.delta(piece);
    }
    let id = message_id(c);
    s.emit(
        "response.output_text.done",
        json!({"item_id": id, "output_index": 0, "content_index": 0, "text": text,
               "logprobs": []}),
    );
    s.emit(
        "response.content_part.done",
        json!({"item_id": id, "output_index": 0, "content_index": 0, "part": text_part(text)}),
    );
    s.emit(
        "response.output_item.done",
        json!({"output_index": 0, "item": done_item}),
    );
    let r = response(c, "completed", vec![done_item], usage(c, c.pieces.len()));
    s.emit("response.completed", json!({ "response": r }));
    s.finish(Tail::End)
}

/// `responses-tool-call`.
pub(crate) fn tool_call(c: &Ctx) -> Reply {
    let done_item = call_item(c, "completed", TOOL_ARGUMENTS);
    let n = TOOL_ARGUMENT_FRAGMENTS.len();
    if !c.req.stream() {
        return whole(done_item, n, c);
    }
    let mut s = Stream::started(c);
    s.emit(
        "response.output_item.added",
        json!({"output_index": 0, "item": call_item(c, "in_progress", "")}),
    );
    let id = call_item_id(c);
    for frag in TOOL_ARGUMENT_FRAGMENTS {
        s.emit(
            "response.function_call_arguments.delta",
            json!({"item_id": id, "output_index": 0, "delta": frag}),
        );
    }
    s.emit(
        "response.function_call_arguments.done",
        json!({"item_id": id, "output_index": 0, "name": TOOL_NAME, "arguments": TOOL_ARGUMENTS}),
    );
    s.emit(
        "response.output_item.done",
        json!({"output_index": 0, "item": done_item}),
    );
    let r = response(c, "completed", vec![done_item], usage(c, n));
    s.emit("response.completed", json!({ "response": r }));
    s.finish(Tail::End)
}

/// `responses-keepalive-then-stall`: created, in progress, `keepalives` keepalive events every
/// `keepalive_ms`, then silence.
pub(crate) fn keepalive_then_stall(c: &Ctx) -> Reply {
    if !c.req.stream() {
        return Reply::NoHeaders;
    }
    let mut s = Stream::started(c);
    for _ in 0..c.params.keepalives {
        s.b.sleep(c.params.keepalive_ms);
        s.emit(RESPONSES_KEEPALIVE, json!({}));
    }
    s.finish(Tail::Silence)
}

/// `responses-stall-after-deltas`: the opening events and `chunks` text deltas, then silence.
pub(crate) fn stall_after_deltas(c: &Ctx) -> Reply {
    if !c.req.stream() {
        return Reply::NoHeaders;
    }
    let mut s = Stream::started(c);
    s.open_message();
    for piece in c.first_pieces() {
        s.delta(piece);
    }
    s.finish(Tail::Silence)
}
