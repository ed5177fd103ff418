//! What the edge worker asks of a relay beyond `guardFetch()`'s, as [`ProxyMode`] (off for
//! `guardFetch()`): its own chain of targets instead of the request's endpoint, the status held
//! until the first progress or the first heartbeat, heartbeats at event boundaries, the usage
//! chunk only for clients that asked, its guard events in the stream for clients that asked,
//! a client that stops reading treated as gone, and its own failure answers (the status, the
//! JSON error naming every provider, 429 with the smallest `Retry-After`, the final error chunk
//! after the status went out).
//!
//! The status is committed by the first byte sent: before it, a failure gets a real status;
//! after it (a heartbeat went out), a failover is still invisible (the held bytes of a failed
//! attempt are never sent) and a failure ends the stream with the final error chunk and
//! `[DONE]`.

use super::request::{cut_tail, request_keys, with_model};
use super::shape::Shaper;
use super::{
    limit, Relay, RelayConfig, RelayDelivery, RelayProvider, RequestKind, Target, PROXY_MODE,
};
use crate::core::call::ProviderLimits;
use crate::core::deadline::Millis;
use crate::core::events::GuardEvent;
use crate::core::machine::push_json_string;
use crate::core::machine::CallState;
use crate::core::policy::Failure;
use crate::core::progress::json::field_span;
use crate::core::progress::Format;
use crate::core::proxy::{
    failure_message, failure_status, final_failure, relayed_event, Refusal, Tried,
};

/// The SSE comment a heartbeat is.
pub const HEARTBEAT: &[u8] = b": heartbeat\n\n";

/// A liveness probe: one line break between events (an empty line, which SSE parsers ignore
/// when no event is pending).
pub const PROBE: &[u8] = b"\n";

/// The edge worker's relay settings (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyMode {
    /// The chain, in order: each gets the client's body with its `model` spliced in.
    pub targets: Vec<RelayProvider>,
    /// Ask every target for the usage chunk (`stream_options.include_usage: true`, streams).
    pub include_usage: bool,
    /// Leave the usage-only chunk out of what the client gets (it did not ask for it).
    pub strip_usage: bool,
    /// The heartbeat interval of a stream (`None`: no heartbeats; the status waits for progress).
    pub heartbeat_ms: Option<Millis>,
    /// The client asked for the worker's events (`X-LSG-Events: 1`), streams only.
    pub client_events: bool,
    /// Secrets that are not a target's key (the client's own token): never in what goes out.
    pub secrets: Vec<String>,
    /// The chunk id of a final error chunk when no upstream chunk went out.
    pub stream_id: String,
    /// The `created` of such a chunk.
    pub created: u64,
    /// A client that has not read for this long is gone.
    pub client_idle_ms: Millis,
    /// While the status is out and nothing else is, a [`PROBE`] this often (`None`: never).
    /// workerd tells a worker that its client left a response it is streaming only when it
    /// writes to it (its request signal does not fire once the response is returned).
    pub probe_ms: Option<Millis>,
}

/// A relay's proxy state.
#[derive(Debug)]
pub(super) struct ProxyState {
    pub mode: ProxyMode,
    pub shaper: Shaper,
    /// The status went out (a commit, or the first heartbeat).
    pub opened: bool,
    /// It went out with the first heartbeat: a later commit sends no head.
    pub opened_early: bool,
    /// The driver has taken the status (events handed out after it go into the stream).
    pub head_out: bool,
    /// The driver has closed the stream: nothing more goes into it.
    pub closed: bool,
    /// The guard's events waiting for the status.
    pub waiting_events: Vec<String>,
    /// When the relay began, for the events' `atMs`.
    pub began: Millis,
    /// The time of the latest input.
    pub now: Millis,
    /// Not before this (the last heartbeat's time plus the interval).
    pub heartbeat_at: Millis,
    /// Since when the client has not asked for bytes.
    pub stalled_since: Option<Millis>,
    /// When the last probe went out.
    pub last_probe: Millis,
    /// The failure the relay answered with, and its message.
    pub last_failure: Option<(Failure, String)>,
    /// The `Retry-After`s of the 429s seen.
    pub retry_after_ms: Vec<Millis>,
}

/// `body` with `stream_options.include_usage` set to `true` (every other byte unchanged):
/// the value replaced when the field is there, the field added to `stream_options` when that
/// is an object, `stream_options` added as the first field otherwise.
pub fn with_usage(body: &str) -> String {
    if let Some(span) = field_span(body, "stream_options") {
        let options = &body[span.clone()];
        if let Some(inner) = field_span(options, "include_usage") {
            let (at, end) = (span.start + inner.start, span.start + inner.end);
            return [&body[..at], "true", &body[end..]].concat();
        }
        if let Some(open) = options
            .find('{')
            .filter(|_| options.trim_start().starts_with('{'))
        {
            let at = span.start + open + 1;
            let rest = options[open + 1..].trim_start();
            let separator = if rest.starts_with('}') { "" } else { "," };
            return [
                &body[..at],
                "\"include_usage\":true",
                separator,
                &body[at..],
            ]
            .concat();
        }
        let with = "{\"include_usage\":true}";
        return [&body[..span.start], with, &body[span.end..]].concat();
    }
    let Some(open) = body.find('{') else {
        return body.to_owned();
    };
    let rest = body[open + 1..].trim_start();
    let separator = if rest.starts_with('}') { "" } else { "," };
    [
        &body[..open + 1],
        "\"stream_options\":{\"include_usage\":true}",
        separator,
        &body[open + 1..],
    ]
    .concat()
}

/// Whether the client's body asks for the usage chunk (`stream_options.include_usage: true`).
pub fn asks_usage(body: &str) -> bool {
    field_span(body, "stream_options")
        .and_then(|span| {
            let options = &body[span];
            field_span(options, "include_usage").map(|inner| options[inner].trim() == "true")
        })
        .unwrap_or(false)
}

/// The last event of a worker's stream that failed after its status went out: for chat, a
/// chunk with `finish_reason: "error"` and an OpenRouter-shaped `error` (`code`: the status the
/// failure would have had, `metadata.kind`), then `[DONE]`; the other formats' own error event.
/// `role` says no chunk went out before it (so it carries the assistant role, as a first chunk
/// does). `pending_line`: the stream stopped inside a line, which a line break ends first.
#[allow(clippy::too_many_arguments)]
pub fn worker_tail(
    format: Option<Format>,
    id: &str,
    created: u64,
    model: &str,
    kind: &str,
    code: u16,
    message: &str,
    role: bool,
    pending_line: bool,
) -> Vec<u8> {
    if !matches!(format, None | Some(Format::ChatCompletions)) {
        return cut_tail(format, id, model, kind, message, pending_line);
    }
    let mut out = String::with_capacity(message.len() + 256);
    if pending_line {
        out.push_str("\n\n");
    }
    out.push_str("data: {\"id\":");
    push_json_string(&mut out, id);
    out.push_str(",\"object\":\"chat.completion.chunk\",\"created\":");
    out.push_str(&created.to_string());
    out.push_str(",\"model\":");
    push_json_string(&mut out, model);
    out.push_str(",\"choices\":[{\"index\":0,\"delta\":{");
    if role {
        out.push_str("\"role\":\"assistant\",");
    }
    out.push_str("\"content\":\"\"},\"finish_reason\":\"error\"}],\"error\":{\"code\":");
    out.push_str(&code.to_string());
    out.push_str(",\"message\":");
    push_json_string(&mut out, message);
    out.push_str(",\"metadata\":{\"kind\":");
    push_json_string(&mut out, kind);
    out.push_str("}}}\n\ndata: [DONE]\n\n");
    out.into_bytes()
}

impl Relay {
    /// A relay of the edge worker's request through `mode.targets` (`config.request` is the
    /// client's request as the worker forwards it: its body is every target's, with the
    /// target's model spliced in; `config.fallbacks` is not read).
    pub fn with_proxy(config: RelayConfig, mode: ProxyMode) -> Relay {
        let config = RelayConfig {
            fallbacks: Vec::new(),
            on_cut: super::OnCut::Finish,
            ..config
        };
        let request = &config.request;
        let kind = RequestKind::of(&request.method, request.body.as_deref());
        let body = request.body.as_deref().unwrap_or("{}");
        let mut targets = Vec::with_capacity(mode.targets.len());
        let mut limits = Vec::with_capacity(mode.targets.len());
        let mut secrets = request_keys(&request.headers);
        for provider in &mode.targets {
            let spliced = with_model(body, &provider.model);
            // `stream_options` is chat's: the other formats end with their usage anyway.
            let chat = matches!(
                super::format_of(&provider.url),
                None | Some(Format::ChatCompletions)
            );
            let body = match (kind, mode.include_usage && chat) {
                (RequestKind::Stream, true) => spliced.map(|b| with_usage(&b)),
                _ => spliced,
            };
            targets.push(Target::fallback(provider, &request.headers, body));
            limits.push(ProviderLimits {
                name: provider.name.clone(),
                timeouts: limit(kind, provider.timeouts),
                max_retries: provider.max_retries,
            });
            secrets.extend(provider.api_key.clone().filter(|k| !k.is_empty()));
        }
        secrets.extend(mode.secrets.iter().filter(|s| !s.is_empty()).cloned());
        let stream = kind == RequestKind::Stream;
        let rename = (stream && mode.client_events).then(|| secrets.clone());
        let shaper = Shaper::new(mode.strip_usage && stream, rename, config.max_event_bytes);
        let proxy = Box::new(ProxyState {
            mode: ProxyMode {
                targets: Vec::new(),
                client_events: stream && mode.client_events,
                heartbeat_ms: mode.heartbeat_ms.filter(|_| stream),
                probe_ms: mode.probe_ms.filter(|_| stream),
                ..mode
            },
            shaper,
            opened: false,
            opened_early: false,
            head_out: false,
            closed: false,
            waiting_events: Vec::new(),
            began: 0.0,
            now: 0.0,
            heartbeat_at: 0.0,
            stalled_since: None,
            last_probe: 0.0,
            last_failure: None,
            retry_after_ms: Vec::new(),
        });
        Relay::build(&config, kind, targets, limits, secrets, Some(proxy))
    }

    /// Whether the client's reading is watched (the edge worker's relay): the driver reports it
    /// with [`Relay::client_reading`] and arms its timer whether or not the client reads.
    pub fn watches_client(&self) -> bool {
        PROXY_MODE && self.mode.proxy.is_some()
    }

    /// Whether the client waits for bytes (`true`) or has not asked for more (`false`) at `now`.
    /// While it does not ask, the upstream is not read and its deadlines wait; a client that
    /// has not asked for longer than `client_idle_ms` is gone.
    pub fn client_reading(&mut self, now: Millis, waiting: bool) {
        if let Some(proxy) = self.mode.proxy.as_mut().filter(|_| PROXY_MODE) {
            match (waiting, proxy.stalled_since) {
                (true, _) => proxy.stalled_since = None,
                (false, None) => proxy.stalled_since = Some(now),
                (false, Some(_)) => {}
            }
        }
    }

    /// The worker's answer to a request that failed before its status went out: the status,
    /// the JSON error naming every provider tried, `x-should-retry: false` (or 429 with the
    /// smallest `Retry-After` when every attempt was rate-limited). `None` before a failure,
    /// and for a cancelled request (nobody reads it).
    pub fn final_refusal(&self) -> Option<Refusal> {
        let proxy = self.mode.proxy.as_ref().filter(|_| PROXY_MODE)?;
        let (failure, message) = proxy.last_failure.as_ref()?;
        let tried = self.tried_list();
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let status = match failure {
            Failure::Http { status, .. } => Some(*status),
            _ => None,
        };
        final_failure(
            failure.kind(),
            status,
            message,
            &tried,
            &proxy.retry_after_ms,
            &secrets,
        )
    }

    /// The kind of the failure the worker's relay answered with (`None`: it did not fail).
    pub fn failure_kind(&self) -> Option<&'static str> {
        let proxy = self.mode.proxy.as_ref().filter(|_| PROXY_MODE)?;
        proxy
            .last_failure
            .as_ref()
            .map(|(failure, _)| failure.kind())
    }

    fn tried_list(&self) -> Vec<Tried> {
        self.call
            .plan
            .attempts()
            .iter()
            .map(|a| Tried {
                provider: a.provider.clone(),
                outcome: a.outcome.clone(),
                status: a.status,
            })
            .collect()
    }

    /// Notes the time of an input (events are stamped with it).
    pub(super) fn proxy_input(&mut self, now: Millis) {
        if let Some(proxy) = self.mode.proxy.as_mut().filter(|_| PROXY_MODE) {
            proxy.now = now;
        }
    }

    /// At the start: the first heartbeat's time.
    pub(super) fn proxy_start(&mut self, now: Millis) {
        if let Some(proxy) = self.mode.proxy.as_mut().filter(|_| PROXY_MODE) {
            proxy.began = now;
            proxy.now = now;
            if let Some(ms) = proxy.mode.heartbeat_ms {
                proxy.heartbeat_at = now + ms;
            }
        }
    }

    /// Whether the attempt's deadlines wait (the client does not read a committed stream).
    pub(super) fn paused(&self) -> bool {
        self.committed_attempt().is_some()
            && self
                .mode
                .proxy
                .as_ref()
                .is_some_and(|p| p.stalled_since.is_some())
    }

    /// The proxy's own next deadline: the client's stall, or the next heartbeat.
    pub(super) fn proxy_due(&self) -> Option<Millis> {
        let proxy = self.mode.proxy.as_ref().filter(|_| PROXY_MODE)?;
        if matches!(self.state, CallState::Idle | CallState::Settled) {
            return None;
        }
        if let Some(since) = proxy.stalled_since.filter(|_| proxy.opened) {
            return Some(since + proxy.mode.client_idle_ms);
        }
        let heartbeat = proxy
            .mode
            .heartbeat_ms
            .map(|every| proxy.heartbeat_at.max(proxy.shaper.last_write + every));
        let probe = probe_due(proxy);
        match (heartbeat, probe) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The clock read `now`: a client stalled too long is gone (`true`: the relay is over);
    /// a heartbeat that is due goes out (the first one sends the status).
    pub(super) fn proxy_timeout(&mut self, now: Millis) -> bool {
        let Some(proxy) = self.mode.proxy.as_mut().filter(|_| PROXY_MODE) else {
            return false;
        };
        proxy.now = now;
        if let Some(since) = proxy.stalled_since.filter(|_| proxy.opened) {
            if now >= since + proxy.mode.client_idle_ms {
                // Released like a cancel; the stream it no longer reads is ended.
                self.cancel(now, "client-stalled");
                self.deliveries.push_back(RelayDelivery::Close);
                return true;
            }
            return false;
        }
        if probe_due(proxy).is_some_and(|due| now >= due) {
            proxy.last_probe = now;
            self.deliveries
                .push_back(RelayDelivery::Bytes(PROBE.to_vec()));
        }
        let Some(every) = proxy.mode.heartbeat_ms else {
            return false;
        };
        if now < proxy.heartbeat_at.max(proxy.shaper.last_write + every) {
            return false;
        }
        proxy.heartbeat_at = now + every;
        if !proxy.opened {
            proxy.opened = true;
            proxy.opened_early = true;
            self.deliveries.push_back(RelayDelivery::Open);
            proxy
                .shaper
                .own(now, HEARTBEAT.to_vec(), &mut self.deliveries);
        } else if proxy.shaper.at_boundary {
            proxy
                .shaper
                .own(now, HEARTBEAT.to_vec(), &mut self.deliveries);
        }
        false
    }

    /// A commit: the status goes out now (unless a heartbeat sent it).
    pub(super) fn proxy_committed(&mut self) {
        if let Some(proxy) = self.mode.proxy.as_mut().filter(|_| PROXY_MODE) {
            proxy.opened = true;
        }
    }

    /// A delivery on its way out: a commit after an early status sends nothing; the status is
    /// followed by the events that waited for it; a guard event also goes into the stream of a
    /// client that asked for them (every delivery of bytes ends at an event boundary, so one
    /// can go between any two).
    pub(super) fn proxy_outgoing(&mut self, delivery: &RelayDelivery) -> bool {
        let Some(proxy) = self.mode.proxy.as_mut().filter(|_| PROXY_MODE) else {
            return true;
        };
        match delivery {
            RelayDelivery::Commit { .. } if proxy.head_out => false,
            RelayDelivery::Commit { .. } | RelayDelivery::Open => {
                proxy.head_out = true;
                for text in std::mem::take(&mut proxy.waiting_events).into_iter().rev() {
                    self.deliveries
                        .push_front(RelayDelivery::Bytes(text.into_bytes()));
                }
                true
            }
            RelayDelivery::Close => {
                proxy.closed = true;
                true
            }
            RelayDelivery::Event(event) if proxy.mode.client_events && !proxy.closed => {
                if let Some(text) = event_text(event, proxy.now - proxy.began, &self.secrets) {
                    if proxy.head_out {
                        self.deliveries
                            .push_front(RelayDelivery::Bytes(text.into_bytes()));
                    } else {
                        proxy.waiting_events.push(text);
                    }
                }
                true
            }
            _ => true,
        }
    }

    /// Everything failed: before the status, the worker's refusal; after it, the final error
    /// chunk and `[DONE]`. `false` when this is not the worker's relay.
    pub(super) fn proxy_respond(&mut self, failure: &Failure) -> bool {
        let message = self
            .mode
            .tried
            .last()
            .map(|t| t.1.clone())
            .unwrap_or_default();
        let tried = self.tried_list();
        let Some(proxy) = self.mode.proxy.as_mut().filter(|_| PROXY_MODE) else {
            return false;
        };
        proxy.last_failure = Some((failure.clone(), message.clone()));
        if proxy.opened {
            let now = proxy.now;
            let inside_line = proxy.shaper.flush(now, &mut self.deliveries);
            let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
            let kind = failure.kind();
            let status = match failure {
                Failure::Http { status, .. } => Some(*status),
                _ => None,
            };
            let (code, _) = failure_status(kind, status);
            let url = self
                .mode
                .targets
                .first()
                .map(|t| t.url.as_str())
                .unwrap_or("");
            let format = super::format_of(url);
            let tail = worker_tail(
                format,
                &proxy.mode.stream_id,
                proxy.mode.created,
                self.mode
                    .targets
                    .first()
                    .map(|t| t.model.as_str())
                    .unwrap_or(""),
                kind,
                code,
                &failure_message(&message, &tried, &secrets),
                true,
                inside_line,
            );
            self.deliveries.push_back(RelayDelivery::Bytes(tail));
            self.deliveries.push_back(RelayDelivery::Close);
            self.close();
            return true;
        }
        let refusal = self.final_refusal();
        let (status, body) = refusal
            .map(|r| (r.status, r.body()))
            .unwrap_or((502, String::new()));
        self.deliveries
            .push_back(RelayDelivery::Respond { status, body });
        self.close();
        true
    }

    /// Notes a 429's `Retry-After` of an attempt judged (the worker's 429 gives the smallest).
    pub(super) fn proxy_judged(&mut self, failure: &Failure) {
        if let (
            Some(proxy),
            Failure::Http {
                status: 429,
                retry_after_ms: Some(ms),
            },
        ) = (self.mode.proxy.as_mut().filter(|_| PROXY_MODE), failure)
        {
            proxy.retry_after_ms.push(*ms);
        }
    }
}

/// When the next probe is due: the status is out, the client waits for bytes, and what went
/// out last ends an event.
fn probe_due(proxy: &ProxyState) -> Option<Millis> {
    let every = proxy.mode.probe_ms.filter(|ms| *ms > 0.0)?;
    let ready = proxy.opened && proxy.stalled_since.is_none() && proxy.shaper.at_boundary;
    ready.then(|| proxy.last_probe.max(proxy.shaper.last_write) + every)
}

/// One guard event as the client that asked for them gets it: `event: guard`, its JSON with
/// `atMs` (milliseconds since the worker took the request up) and every secret taken out.
fn event_text(event: &GuardEvent, at_ms: Millis, secrets: &[String]) -> Option<String> {
    let mut value = serde_json::to_value(event).ok()?;
    if let GuardEvent::UpstreamEvent { event: data, .. } = event {
        // Its data is an upstream's JSON text: relayed as the value it is.
        if let Ok(parsed) = serde_json::from_str::<serde_json::Value>(data) {
            value["event"] = parsed;
        }
    }
    value["atMs"] = serde_json::Value::from(at_ms.max(0.0).round() as u64);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    relayed_event(event.type_name(), &value.to_string(), &secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_asked_for_with_every_other_byte_unchanged() {
        assert_eq!(
            with_usage("{\"model\":\"m\",\"stream\":true}"),
            "{\"stream_options\":{\"include_usage\":true},\"model\":\"m\",\"stream\":true}"
        );
        assert_eq!(
            with_usage("{\"stream\":true,\"stream_options\":{\"include_usage\":false}}"),
            "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
        );
        assert_eq!(
            with_usage("{\"stream_options\": { \"x\": 1 }}"),
            "{\"stream_options\": {\"include_usage\":true, \"x\": 1 }}"
        );
        assert_eq!(
            with_usage("{\"stream_options\":{}}"),
            "{\"stream_options\":{\"include_usage\":true}}"
        );
        assert_eq!(
            with_usage("{\"stream_options\":null,\"a\":1}"),
            "{\"stream_options\":{\"include_usage\":true},\"a\":1}"
        );
        assert_eq!(
            with_usage("{}"),
            "{\"stream_options\":{\"include_usage\":true}}"
        );
        assert!(asks_usage("{\"stream_options\":{\"include_usage\":true}}"));
        assert!(!asks_usage(
            "{\"stream_options\":{\"include_usage\":false}}"
        ));
        assert!(!asks_usage("{\"stream\":true}"));
    }

    #[test]
    fn the_worker_tail_is_an_openrouter_error_chunk_then_done() {
        let tail = worker_tail(
            None,
            "chatcmpl-1",
            7,
            "m",
            "timeout",
            504,
            "idle \"x\"",
            false,
            true,
        );
        let tail = String::from_utf8(tail).unwrap();
        assert!(
            tail.starts_with("\n\ndata: {\"id\":\"chatcmpl-1\""),
            "{tail}"
        );
        let data = tail
            .trim()
            .lines()
            .next()
            .unwrap()
            .strip_prefix("data: ")
            .unwrap();
        let chunk: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(chunk["error"]["code"], 504);
        assert_eq!(chunk["error"]["metadata"]["kind"], "timeout");
        assert_eq!(chunk["choices"][0]["finish_reason"], "error");
        assert!(chunk["choices"][0]["delta"]["role"].is_null());
        assert!(tail.ends_with("data: [DONE]\n\n"));
    }
}
