//! The JSON of OpenRouter-shaped `chat.completion.chunk`s (field order as OpenRouter sends it)
//! and of a whole `chat.completion`.

use serde::Serialize;
use serde_json::{json, Value};

use crate::texts::*;

/// A `chat.completion.chunk` (field order as OpenRouter sends it).
#[derive(Serialize)]
pub(crate) struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    provider: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
    choices: Vec<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

/// One entry of `choices`.
#[derive(Serialize)]
pub(crate) struct Choice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    native_finish_reason: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

impl<'a> Choice<'a> {
    /// A choice in OpenRouter's usual shape (`native_finish_reason` and `logprobs` present).
    pub(crate) fn full(delta: Delta<'a>, finish: Option<&'a str>) -> Self {
        Choice {
            index: 0,
            delta,
            finish_reason: finish,
            native_finish_reason: Some(finish),
            logprobs: Some(()),
            error: None,
        }
    }

    /// A choice that ends the generation in an error (`finish_reason: "error"`, empty content,
    /// no `logprobs`), with this `native_finish_reason` and this `error` inside it.
    pub(crate) fn error(
        native_finish_reason: Option<Option<&'a str>>,
        error: Option<Value>,
    ) -> Self {
        Choice {
            index: 0,
            delta: Delta {
                content: Some(Some("")),
                ..Delta::default()
            },
            finish_reason: Some("error"),
            native_finish_reason,
            logprobs: None,
            error,
        }
    }
}

/// `choices[].delta`.
#[derive(Serialize, Default)]
pub(crate) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

impl<'a> Delta<'a> {
    pub(crate) fn content(text: &'a str) -> Self {
        Delta {
            role: Some("assistant"),
            content: Some(Some(text)),
            ..Delta::default()
        }
    }
}

/// One `delta.tool_calls` fragment.
#[derive(Serialize)]
pub(crate) struct ToolCall<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    function: ToolFunction<'a>,
}

/// The `function` of a tool-call fragment.
#[derive(Serialize)]
pub(crate) struct ToolFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Token counts of the usage chunk.
#[derive(Serialize, Clone, Copy)]
pub(crate) struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl Usage {
    pub(crate) fn new(prompt: u64, completion: u64) -> Self {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
        }
    }
}

/// Builds the JSON of one generation's chunks.
pub(crate) struct Gen {
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) model: String,
}

impl Gen {
    pub(crate) fn chunk(
        &self,
        choices: Vec<Choice<'_>>,
        usage: Option<Usage>,
        error: Option<Value>,
    ) -> String {
        let c = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            provider: "Mock",
            error,
            choices,
            usage,
        };
        serde_json::to_string(&c).expect("chunk serializes")
    }

    pub(crate) fn content(&self, piece: &str) -> String {
        self.chunk(vec![Choice::full(Delta::content(piece), None)], None, None)
    }

    pub(crate) fn reasoning(&self, piece: &str) -> String {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(Some("")),
            reasoning: Some(piece),
            tool_calls: None,
        };
        self.chunk(vec![Choice::full(delta, None)], None, None)
    }

    pub(crate) fn finish(&self, reason: &str) -> String {
        self.chunk(
            vec![Choice::full(Delta::content(""), Some(reason))],
            None,
            None,
        )
    }

    pub(crate) fn usage(&self, usage: Usage) -> String {
        self.chunk(Vec::new(), Some(usage), None)
    }

    pub(crate) fn tool_fragment(&self, first: bool, arguments: &str) -> String {
        let call = ToolCall {
            index: 0,
            id: first.then_some(TOOL_CALL_ID),
            kind: first.then_some("function"),
            function: ToolFunction {
                name: first.then_some(TOOL_NAME),
                arguments,
            },
        };
        let delta = Delta {
            role: Some("assistant"),
            content: Some(None),
            reasoning: None,
            tool_calls: Some(vec![call]),
        };
        self.chunk(vec![Choice::full(delta, None)], None, None)
    }

    pub(crate) fn error_top(&self) -> String {
        let choice = Choice::error(Some(Some("error")), None);
        let error = json!({
            "code": 502,
            "message": "Provider returned error",
            "metadata": {"provider_name": "Mock"}
        });
        self.chunk(vec![choice], None, Some(error))
    }

    pub(crate) fn choice_error(&self) -> String {
        let error = json!({"code": 500, "message": "upstream failed"});
        let choice = Choice::error(None, Some(error));
        self.chunk(vec![choice], None, None)
    }

    pub(crate) fn completion(&self, text: &str, usage: Usage) -> String {
        let v = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "provider": "Mock",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "native_finish_reason": "stop",
                "logprobs": null
            }],
            "usage": usage,
        });
        v.to_string()
    }
}
