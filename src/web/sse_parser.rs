//! `SseParser` for JavaScript: the core's standards-exact parser, exposed on its own.

use crate::core::contract::ErrorKind;
use crate::core::sse::{self, Event, SseSink};
use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;

/// An incremental Server-Sent Events parser (WHATWG rules): push bytes as they arrive, get the
/// complete events back. Comments and `retry` fields are not returned.
#[wasm_bindgen]
pub struct SseParser {
    inner: sse::SseParser,
}

/// Collects dispatched events as `{ data, event, id? }` objects.
struct JsEvents(Array);

impl SseSink for JsEvents {
    fn event(&mut self, event: Event<'_>) {
        let object = Object::new();
        // Plain data properties on a fresh object: these sets cannot fail.
        let _ = Reflect::set(&object, &"data".into(), &event.data.into());
        let _ = Reflect::set(&object, &"event".into(), &event.event_type.into());
        if !event.last_event_id.is_empty() {
            let _ = Reflect::set(&object, &"id".into(), &event.last_event_id.into());
        }
        self.0.push(&object);
    }
}

#[wasm_bindgen]
impl SseParser {
    /// `new SseParser({ maxEventBytes? })`: `maxEventBytes` bounds one line and one event's
    /// data (default 1 MiB); past it, `push` throws a `GuardError` of kind `"protocol"`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_optional_param_type = "SseParserOptions")] options: Option<Object>,
    ) -> Result<SseParser, JsValue> {
        let mut max_event_bytes = sse::DEFAULT_MAX_EVENT_BYTES;
        if let Some(options) = options {
            let value = Reflect::get(&options, &"maxEventBytes".into())?;
            if !value.is_undefined() && !value.is_null() {
                match value.as_f64() {
                    Some(n) if n >= 1.0 && n <= u32::MAX as f64 && n.fract() == 0.0 => {
                        max_event_bytes = n as usize
                    }
                    _ => {
                        return Err(crate::web::guard_error(
                            ErrorKind::Config,
                            "maxEventBytes must be a positive whole number of bytes",
                        ))
                    }
                }
            }
        }
        Ok(SseParser {
            inner: sse::SseParser::new(max_event_bytes),
        })
    }

    /// Feed the next bytes (split anywhere); returns the events they completed.
    #[wasm_bindgen(unchecked_return_type = "SseEvent[]")]
    pub fn push(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array")] bytes: &[u8],
    ) -> Result<Array, JsValue> {
        let mut events = JsEvents(Array::new());
        match self.inner.push(bytes, &mut events) {
            Ok(()) => Ok(events.0),
            Err(error) => Err(crate::web::guard_error(
                ErrorKind::Protocol,
                &error.to_string(),
            )),
        }
    }

    /// The stream ended: an unfinished event is discarded, as the standard says, so this returns
    /// an empty array; the parser is then ready for a new stream.
    #[wasm_bindgen(unchecked_return_type = "SseEvent[]")]
    pub fn end(&mut self) -> Array {
        self.inner.end();
        Array::new()
    }
}
