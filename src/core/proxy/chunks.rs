//! The OpenAI-compatible bytes the worker answers with: `chat.completion.chunk` events and
//! whole `chat.completion` bodies.

use serde::Serialize;
use serde_json::Value;

/// Builds the OpenAI `chat.completion.chunk` events of one streamed answer.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    id: String,
    created: u64,
    model: String,
    sent_role: bool,
}

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: Vec<OutChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    delta: OutDelta<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct OutDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

impl ChunkWriter {
    /// Chunks with this id, creation time (Unix seconds) and model.
    pub fn new(id: String, created: u64, model: String) -> ChunkWriter {
        ChunkWriter {
            id,
            created,
            model,
            sent_role: false,
        }
    }

    /// The model named in later chunks (the provider that is answering).
    pub fn set_model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
    }

    fn event(&self, chunk: &OutChunk<'_>) -> String {
        let json = serde_json::to_string(chunk).unwrap_or_default();
        format!("data: {json}\n\n")
    }

    fn chunk<'a>(&'a self, delta: OutDelta<'a>, finish_reason: Option<&'a str>) -> OutChunk<'a> {
        OutChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: vec![OutChoice {
                index: 0,
                delta,
                finish_reason,
            }],
            usage: None,
            error: None,
        }
    }

    /// A piece of answer text (the first one also carries `role: "assistant"`).
    pub fn text(&mut self, text: &str) -> String {
        let role = (!self.sent_role).then_some("assistant");
        self.sent_role = true;
        self.event(&self.chunk(
            OutDelta {
                role,
                content: Some(text),
            },
            None,
        ))
    }

    /// The finish chunk, then a usage chunk (if known), then `[DONE]`.
    pub fn finish(&mut self, finish_reason: &str, usage: Option<&Value>) -> String {
        let mut out = self.event(&self.chunk(
            OutDelta {
                role: None,
                content: Some(""),
            },
            Some(finish_reason),
        ));
        if let Some(usage) = usage {
            let mut chunk = self.chunk(
                OutDelta {
                    role: None,
                    content: None,
                },
                None,
            );
            chunk.choices.clear();
            chunk.usage = Some(usage);
            out.push_str(&self.event(&chunk));
        }
        out.push_str("data: [DONE]\n\n");
        out
    }

    /// The final chunk of an answer cut short: OpenRouter's mid-stream error shape
    /// (`error: {code, message}` and `finish_reason: "error"`), then `[DONE]`.
    pub fn error(&mut self, code: u16, kind: &str, message: &str) -> String {
        // When no text went out, this is the first chunk: it carries the role like any first chunk.
        let role = (!self.sent_role).then_some("assistant");
        self.sent_role = true;
        let mut chunk = self.chunk(
            OutDelta {
                role,
                content: Some(""),
            },
            Some("error"),
        );
        chunk.error =
            Some(serde_json::json!({"code": code, "message": message, "metadata": {"kind": kind}}));
        let mut out = self.event(&chunk);
        out.push_str("data: [DONE]\n\n");
        out
    }
}

/// A whole non-streaming `chat.completion` body.
pub fn completion_body(
    id: &str,
    created: u64,
    model: &str,
    text: &str,
    finish_reason: &str,
    usage: Option<&Value>,
) -> String {
    let mut body = serde_json::json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
    });
    if let Some(usage) = usage {
        body["usage"] = usage.clone();
    }
    body.to_string()
}
