//! The chat-chunk shapes: which fields of a chunk, a choice, a message, a tool call, usage and
//! an error are read, with the scanner in `walker.rs`. Fields are listed in the order the
//! grammar (in the module documentation) gives them, which a record sent as an array follows.

use super::types::{Chunk, MalformedKind, ToolCallDelta, UpstreamError, Usage};
use super::walker::{Fault, Record, Step, Walker};
use std::borrow::Cow;

/// The fields of one choice (`choices[i]`).
#[derive(Default)]
struct Choice<'a> {
    delta: Option<Message<'a>>,
    message: Option<Message<'a>>,
    finish_reason: Option<Cow<'a, str>>,
    error: Option<UpstreamError>,
}

/// `delta` (streamed) or `message` (a whole answer).
#[derive(Default)]
struct Message<'a> {
    content: Option<Cow<'a, str>>,
    reasoning: Option<Cow<'a, str>>,
    reasoning_content: Option<Cow<'a, str>>,
    tool_calls: Vec<ToolCallDelta<'a>>,
    /// Where `content`'s value lies in the payload (from the byte after its colon).
    content_span: (usize, usize),
}

impl<'a> Walker<'a> {
    /// The whole payload (it starts with `{`).
    pub(super) fn chunk(&mut self, chunk: &mut Chunk<'a>) -> Step<()> {
        let mut choice = None;
        let record = self.open_record(false)?.unwrap_or(Record::Object);
        self.fields(
            record,
            &["id", "model", "choices", "usage", "error"],
            &mut |w, field| {
                match field {
                    0 => chunk.id = w.text()?,
                    1 => chunk.model = w.text()?,
                    2 => w.choices(&mut choice)?,
                    3 => chunk.usage = w.usage()?,
                    _ => chunk.error = w.error()?,
                }
                Ok(())
            },
        )?;
        self.end()?;
        // "choices[0]": the first choice carries the answer (n > 1 is not streamed by chat UIs).
        if let Some(choice) = choice {
            chunk.finish_reason = choice.finish_reason;
            if chunk.error.is_none() {
                chunk.error = choice.error;
            }
            if let Some(message) = choice.delta.or(choice.message) {
                if message.content.is_some() {
                    self.content_span = Some(message.content_span);
                }
                chunk.content = message.content;
                chunk.reasoning = message.reasoning.or(message.reasoning_content);
                chunk.tool_calls = message.tool_calls;
            }
        }
        Ok(())
    }

    /// `choices`: every element is checked; the first one is kept.
    /// (`kept` is `None` when called: a second `choices` is refused before.)
    fn choices(&mut self, kept: &mut Option<Choice<'a>>) -> Step<()> {
        if !self.optional_array()? {
            return Ok(());
        }
        let mut first = true;
        while self.next_element(&mut first)? {
            if kept.is_none() {
                self.choice(kept.insert(Choice::default()))?;
            } else {
                self.choice(&mut Choice::default())?;
            }
        }
        Ok(())
    }

    fn choice(&mut self, choice: &mut Choice<'a>) -> Step<()> {
        let record = self.open_record(false)?.unwrap_or(Record::Object);
        self.fields(
            record,
            &["delta", "message", "finish_reason", "error"],
            &mut |w, field| {
                match field {
                    0 => choice.delta = w.message()?,
                    1 => choice.message = w.message()?,
                    2 => choice.finish_reason = w.text()?,
                    _ => choice.error = w.error()?,
                }
                Ok(())
            },
        )
    }

    fn message(&mut self) -> Step<Option<Message<'a>>> {
        let Some(record) = self.open_record(true)? else {
            return Ok(None);
        };
        let mut message = Message::default();
        self.fields(
            record,
            &["content", "reasoning", "reasoning_content", "tool_calls"],
            &mut |w, field| {
                match field {
                    0 => {
                        let start = w.pos;
                        message.content = w.text()?;
                        message.content_span = (start, w.pos);
                    }
                    1 => message.reasoning = w.text()?,
                    2 => message.reasoning_content = w.text()?,
                    _ => message.tool_calls = w.tool_calls()?,
                }
                Ok(())
            },
        )?;
        Ok(Some(message))
    }

    fn tool_calls(&mut self) -> Step<Vec<ToolCallDelta<'a>>> {
        let mut calls = Vec::new();
        if !self.optional_array()? {
            return Ok(calls);
        }
        let mut first = true;
        while self.next_element(&mut first)? {
            let position = calls.len() as u32;
            calls.push(self.tool_call(position)?);
        }
        Ok(calls)
    }

    /// One `tool_calls` element; `index` defaults to its position.
    fn tool_call(&mut self, position: u32) -> Step<ToolCallDelta<'a>> {
        let mut call = ToolCallDelta {
            index: position,
            ..ToolCallDelta::default()
        };
        let record = self.open_record(false)?.unwrap_or(Record::Object);
        self.fields(record, &["index", "id", "function"], &mut |w, field| {
            match field {
                0 => {
                    if w.peek() == Some(b'n') {
                        w.literal(b"null")?;
                    } else {
                        let at = w.pos;
                        call.index = u32::try_from(w.count()?).map_err(|_| Fault {
                            kind: MalformedKind::Shape,
                            at,
                        })?;
                    }
                }
                1 => call.id = w.text()?,
                _ => {
                    if let Some(record) = w.open_record(true)? {
                        w.fields(record, &["name", "arguments"], &mut |w, field| {
                            match field {
                                0 => call.name = w.text()?,
                                _ => call.arguments = w.text()?,
                            }
                            Ok(())
                        })?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(call)
    }

    fn usage(&mut self) -> Step<Option<Usage>> {
        let Some(record) = self.open_record(true)? else {
            return Ok(None);
        };
        let mut usage = Usage::default();
        self.fields(
            record,
            &["prompt_tokens", "completion_tokens", "total_tokens"],
            &mut |w, field| {
                match field {
                    0 => usage.prompt_tokens = w.count()?,
                    1 => usage.completion_tokens = w.count()?,
                    _ => usage.total_tokens = w.count()?,
                }
                Ok(())
            },
        )?;
        Ok(Some(usage))
    }

    /// An `error` object: `code` (any JSON), `message` (a string).
    fn error(&mut self) -> Step<Option<UpstreamError>> {
        let Some(record) = self.open_record(true)? else {
            return Ok(None);
        };
        let mut error = UpstreamError::default();
        self.fields(record, &["code", "message"], &mut |w, field| {
            match field {
                0 => {
                    error.code = if w.peek() == Some(b'"') {
                        w.pos += 1;
                        Some(w.string()?.into_owned())
                    } else {
                        w.any_json()?
                    }
                }
                _ => error.message = w.text()?.map(Cow::into_owned).unwrap_or_default(),
            }
            Ok(())
        })?;
        Ok(Some(error))
    }
}
