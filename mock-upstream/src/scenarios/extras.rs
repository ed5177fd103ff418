//! Chat scenarios with more than text: tool calls, reasoning, logprobs and annotations.

use super::plan::quoted;
use super::*;

/// `tool-calls`.
pub(crate) fn tool_calls(c: &Ctx) -> Reply {
    let g = &c.gen;
    let mut b = c.builder();
    for (i, frag) in TOOL_ARGUMENT_FRAGMENTS.iter().enumerate() {
        b.event(LF.data(&g.tool_fragment(i == 0, frag)));
    }
    b.event(LF.data(&g.finish("tool_calls")));
    c.usage_event(&mut b, TOOL_ARGUMENT_FRAGMENTS.len());
    b.event(LF.done());
    b.finish(Tail::End)
}

/// `logprobs-annotations`: OpenAI's chunk shape, field order and number formatting, written by
/// hand so that a pass-through can be compared byte for byte (serde_json would sort and
/// reformat).
pub(crate) fn logprobs_annotations(c: &Ctx) -> Reply {
    let asked = c.req.include_usage();
    let chunk = |choices: &str, usage: &str| {
        let usage = if asked {
            format!(",\"usage\":{usage}")
        } else {
            String::new()
        };
        format!(
            "{{\"id\":\"chatcmpl-mock-{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\
             \"model\":{},\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock0001\",\
             \"choices\":[{choices}]{usage}}}",
            c.conn_id,
            c.created(),
            quoted(&c.req.model)
        )
    };
    let mut b = c.builder();
    b.event(LF.data(&chunk(
        "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null,\
         \"annotations\":[]},\"logprobs\":{\"content\":[],\"refusal\":null},\"finish_reason\":null}",
        "null",
    )));
    for (i, piece) in c.pieces.iter().enumerate() {
        let lp = LOGPROBS[i % LOGPROBS.len()];
        let bytes = piece
            .bytes()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let token = quoted(piece);
        b.event(LF.data(&chunk(
            &format!(
                "{{\"index\":0,\"delta\":{{\"content\":{token}}},\"logprobs\":{{\"content\":[{{\
                 \"token\":{token},\"logprob\":{lp},\"bytes\":[{bytes}],\"top_logprobs\":[{{\
                 \"token\":{token},\"logprob\":{lp},\"bytes\":[{bytes}]}}]}}],\"refusal\":null}},\
                 \"finish_reason\":null}}"
            ),
            "null",
        )));
    }
    b.event(LF.data(&chunk(
        &format!(
            "{{\"index\":0,\"delta\":{{\"content\":\"\",\"annotations\":[{{\"type\":\"url_citation\",\
             \"url_citation\":{{\"url\":{},\"title\":{},\"start_index\":0,\"end_index\":{}}}}}]}},\
             \"logprobs\":null,\"finish_reason\":null}}",
            quoted(CITATION_URL),
            quoted(CITATION_TITLE),
            c.text.chars().count()
        ),
        "null",
    )));
    b.event(LF.data(&chunk(
        "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}",
        "null",
    )));
    if asked {
        let (p, n) = (c.prompt, c.pieces.len() as u64);
        b.event(LF.data(&chunk(
            "",
            &format!(
                "{{\"prompt_tokens\":{p},\"completion_tokens\":{n},\"total_tokens\":{},\
                 \"prompt_tokens_details\":{{\"cached_tokens\":0,\"audio_tokens\":0}},\
                 \"completion_tokens_details\":{{\"reasoning_tokens\":0,\"audio_tokens\":0,\
                 \"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}}",
                p + n
            ),
        )));
    }
    b.event(LF.done());
    b.finish(Tail::End)
}

/// `json`.
pub(crate) fn json(c: &Ctx) -> Reply {
    Reply::Fixed(Fixed {
        status: 200,
        content_type: "application/json",
        headers: vec![("X-Generation-Id", c.gen.id.clone())],
        body: c.gen.completion(&c.text, c.usage(c.pieces.len())),
    })
}

/// `reasoning-then-content`.
pub(crate) fn reasoning_then_content(c: &Ctx) -> Reply {
    let mut b = c.builder();
    for piece in reasoning_pieces(c.chunks) {
        b.event(LF.data(&c.gen.reasoning(&piece)));
    }
    c.normal_stream(b, LF)
}
