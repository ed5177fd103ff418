//! A stream's chunks repeat themselves: OpenRouter (and OpenAI) send the same `id`, `provider`,
//! `model`, `object` and `created` before every token, and the same `finish_reason: null`,
//! `native_finish_reason: null`, `logprobs: null` after it. [`ChunkDecoder`] remembers the bytes
//! before and after the last chunk's `content` value, and decodes a payload that has exactly
//! those bytes around one string by reading only that string.
//!
//! Why that is the same verdict as a whole walk: the walker reads a payload left to right and
//! its state after a prefix depends on the prefix's bytes alone. Both payloads walk the same
//! prefix to the same state, read one string token as `content`, and then walk the same suffix
//! from the same state (the token's length shifts offsets, which only a fault would report, and
//! the remembered walk had none). So the result is the remembered one with the new text. Only a
//! chunk whose sole values are `content` and an `id`/`model` read inside the prefix is
//! remembered; anything else in a payload is decoded by the whole walk.

use super::types::{Chunk, Decoded};
use super::walker::{same, Walker};
use super::{decode_json_spanned, DONE_SENTINEL};
use std::borrow::Cow;

/// [`super::decode_event_data`] for one stream's events in order, faster on repeated shapes.
/// It gives exactly what `decode_event_data` gives for every payload.
#[derive(Debug, Clone, Default)]
pub struct ChunkDecoder {
    /// The bytes before the remembered chunk's `content` value (empty: nothing remembered).
    prefix: Vec<u8>,
    /// The bytes after it.
    suffix: Vec<u8>,
    /// Where its `id` and `model` lie, inside the prefix.
    id: Option<(usize, usize)>,
    model: Option<(usize, usize)>,
    /// Payloads decoded by reading their text alone.
    pub repeated: u64,
}

impl ChunkDecoder {
    /// The data of the stream's next SSE event, as [`super::decode_event_data`] decodes it.
    pub fn decode_event_data<'a>(&mut self, data: &'a str) -> Decoded<'a> {
        let json = data.trim();
        if json == DONE_SENTINEL {
            return Decoded::Done;
        }
        if let Some(chunk) = self.repeat(json) {
            self.repeated += 1;
            return Decoded::Chunk(chunk);
        }
        let (decoded, span) = decode_json_spanned(json);
        if let (Decoded::Chunk(chunk), Some(span)) = (&decoded, span) {
            self.remember(json, chunk, span);
        }
        decoded
    }

    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub(super) fn prefix_is_empty(&self) -> bool {
        self.prefix.is_empty()
    }

    /// `json` decoded as the remembered chunk with its own text, if it has that chunk's shape.
    fn repeat<'a>(&self, json: &'a str) -> Option<Chunk<'a>> {
        let (p, s) = (self.prefix.len(), self.suffix.len());
        let bytes = json.as_bytes();
        // The prefix starts with `{`, so an empty one is never a match.
        if p == 0 || bytes.len() < p + s + 2 {
            return None;
        }
        let end = bytes.len() - s;
        if !same(&bytes[..p], &self.prefix) || !same(&bytes[end..], &self.suffix) {
            return None;
        }
        let mut walker = Walker::new(json);
        walker.pos = p;
        let content = walker.text().ok()??;
        if walker.pos != end {
            return None; // more than one value between them
        }
        let at = |span: Option<(usize, usize)>| match span {
            Some((from, to)) => json.get(from..to).map(|text| Some(Cow::Borrowed(text))),
            None => Some(None),
        };
        Some(Chunk {
            id: at(self.id)?,
            model: at(self.model)?,
            content: Some(content),
            ..Chunk::default()
        })
    }

    /// Remember `chunk` (decoded from `json`, its content at `span`) if its shape repeats.
    fn remember(&mut self, json: &str, chunk: &Chunk<'_>, (start, end): (usize, usize)) {
        let only_text = chunk.reasoning.is_none()
            && chunk.tool_calls.is_empty()
            && chunk.finish_reason.is_none()
            && chunk.usage.is_none()
            && chunk.error.is_none();
        // `id` and `model` are re-read from the prefix by offset: only borrowed ones qualify.
        let inside = |text: &Option<Cow<'_, str>>| match text {
            None => Some(None),
            Some(Cow::Borrowed(text)) => {
                let from = (text.as_ptr() as usize).wrapping_sub(json.as_ptr() as usize);
                (from + text.len() <= start).then_some(Some((from, from + text.len())))
            }
            Some(Cow::Owned(_)) => None,
        };
        let (Some(id), Some(model)) = (inside(&chunk.id), inside(&chunk.model)) else {
            return;
        };
        if !only_text || chunk.content.is_none() {
            return;
        }
        self.prefix.clear();
        self.prefix.extend_from_slice(&json.as_bytes()[..start]);
        self.suffix.clear();
        self.suffix.extend_from_slice(&json.as_bytes()[end..]);
        self.id = id;
        self.model = model;
    }
}
