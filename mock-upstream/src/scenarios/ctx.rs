//! [`Ctx`]: what a scenario's reply is built from (the request, its parameters, the answer's
//! pieces), with the stream shapes several chat scenarios share.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::chunks::{Gen, Usage};
use super::errors::{error_body, reason};
use super::plan::{Builder, Fixed, Reply, Style, Tail, LF};
use super::request::{pieces, prompt_tokens, ChatRequest, Params, UsagePolicy};
use crate::control::Control;
use crate::texts::*;

/// What a scenario's reply is built from: the request, its parameters and the answer's pieces.
pub(crate) struct Ctx<'a> {
    pub params: &'a Params,
    /// The request.
    pub req: &'a ChatRequest,
    pub(crate) gen: Gen,
    /// The answer text (`text`, else [`DEFAULT_TEXT`]).
    pub text: String,
    /// [`pieces`] of `text`: one content chunk each.
    pub pieces: Vec<String>,
    /// The `chunks` parameter.
    pub(crate) chunks: usize,
    /// Prompt tokens reported in usage.
    pub prompt: u64,
    /// The connection's ledger id (ids of generated objects carry it).
    pub conn_id: u64,
    /// The setting of a `controlled` provider.
    pub(crate) control: Option<Control>,
    /// What the scenario made of the request, for the ledger's `mode`.
    pub(crate) mode: RefCell<Option<String>>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(params: &'a Params, req: &'a ChatRequest, conn_id: u64) -> Self {
        let text = params
            .text
            .clone()
            .unwrap_or_else(|| DEFAULT_TEXT.to_string());
        Ctx {
            params,
            req,
            gen: Gen {
                id: format!("gen-mock-{conn_id}"),
                created: unix_seconds(),
                model: req.model.clone(),
            },
            pieces: pieces(&text),
            text,
            chunks: params.chunks as usize,
            prompt: prompt_tokens(req.body_len),
            conn_id,
            control: None,
            mode: RefCell::new(None),
        }
    }

    /// A plan builder paced by `first_delay_ms` / `delay_ms` (default 0).
    pub(crate) fn builder(&self) -> Builder {
        Builder::new(self.params, 0)
    }

    /// When the answer was created (Unix seconds).
    pub(crate) fn created(&self) -> u64 {
        self.gen.created
    }

    /// The first `chunks` pieces (cycling through the pieces if there are fewer).
    pub(crate) fn first_pieces(&self) -> impl Iterator<Item = &str> {
        (0..self.chunks).map(|i| match self.pieces.len() {
            0 => "",
            n => self.pieces[i % n].as_str(),
        })
    }

    /// Records what the scenario made of the request (the ledger's `mode`).
    pub(crate) fn note(&self, mode: String) {
        *self.mode.borrow_mut() = Some(mode);
    }

    /// Usage for `completion` tokens.
    pub(crate) fn usage(&self, completion: usize) -> Usage {
        Usage::new(self.prompt, completion as u64)
    }

    /// Whether the usage chunk goes out: always, or with `usage=asked` only when the request
    /// asked for it.
    pub(crate) fn sends_usage(&self) -> bool {
        self.params.usage == UsagePolicy::Always || self.req.include_usage()
    }

    /// The usage chunk for `completion` tokens, when [`Ctx::sends_usage`].
    pub(crate) fn usage_event(&self, b: &mut Builder, completion: usize) {
        if self.sends_usage() {
            b.event(LF.data(&self.gen.usage(self.usage(completion))));
        }
    }

    /// The normal stream's events (content pieces, finish, usage, `[DONE]`), written with `style`.
    pub(crate) fn normal_events(&self, b: Builder, style: Style) -> Builder {
        self.events_of(b, style, &self.pieces)
    }

    /// Content chunks of `pieces`, finish, usage and `[DONE]`, written with `style`.
    pub(crate) fn events_of(&self, mut b: Builder, style: Style, pieces: &[String]) -> Builder {
        for piece in pieces {
            b.event(style.data(&self.gen.content(piece)));
        }
        b.event(style.data(&self.gen.finish("stop")));
        if self.sends_usage() {
            b.event(style.data(&self.gen.usage(self.usage(pieces.len()))));
        }
        b.event(style.done());
        b
    }

    /// The normal stream, then a clean end.
    pub(crate) fn normal_stream(&self, b: Builder, style: Style) -> Reply {
        self.normal_events(b, style).finish(Tail::End)
    }

    /// The first `chunks` content chunks (cycling through the pieces if there are fewer).
    pub(crate) fn first_chunks(&self) -> Builder {
        let mut b = self.builder();
        for piece in self.first_pieces() {
            b.event(LF.data(&self.gen.content(piece)));
        }
        b
    }

    /// `b`, then the chunk `json`, `[DONE]` and a clean end.
    pub(crate) fn then_done(&self, mut b: Builder, json: &str) -> Reply {
        b.event(LF.data(json));
        b.event(LF.done());
        b.finish(Tail::End)
    }

    /// A keepalive comment every `keepalive_ms` until the client leaves.
    pub(crate) fn keepalives_forever(&self) -> Tail {
        Tail::Repeat {
            every_ms: self.params.keepalive_ms.max(1),
            bytes: LF.comment(),
        }
    }

    /// `status` with an OpenRouter-style JSON error body (and `Retry-After` for 429 and 503).
    pub(crate) fn status(&self, status: u16) -> Reply {
        let mut headers = Vec::new();
        if status == 429 || status == 503 {
            headers.push(("Retry-After", self.params.retry_after.to_string()));
        }
        Reply::Fixed(Fixed {
            status,
            content_type: "application/json",
            headers,
            body: error_body(status, reason(status)),
        })
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
