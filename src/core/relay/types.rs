//! The relay's vocabulary with its driver: what it is configured with ([`RelayConfig`], its
//! fallbacks and the SDK's request), what it asks the driver to do ([`RelayAction`]) and what it
//! hands the SDK ([`RelayDelivery`]).

use crate::core::deadline::Timeouts;
use crate::core::events::GuardEvent;
use crate::core::machine::AttemptId;
use crate::core::policy::RetryPolicy;

/// How a stream cut after its first progress ends for the SDK (`onCut`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCut {
    /// The body errors with a `GuardError` (the SDK throws).
    #[default]
    Error,
    /// The body ends with the format's own final error event (chat: a chunk with
    /// `finish_reason: "error"` and an `error` object, then `[DONE]`).
    Finish,
}

/// A fallback provider, as the caller's options gave it (checked by the driver).
#[derive(Debug, Clone, PartialEq)]
pub struct RelayProvider {
    /// Its name, for events and messages.
    pub name: String,
    /// The endpoint the request is sent to, in full.
    pub url: String,
    /// The model put in the request's body in place of the SDK's.
    pub model: String,
    /// Its key, sent in the header the SDK used for its own.
    pub api_key: Option<String>,
    /// Extra headers, replacing the SDK's of the same name.
    pub headers: Vec<(String, String)>,
    /// Its deadlines.
    pub timeouts: Timeouts,
    /// Its retry allowance.
    pub max_retries: u32,
}

impl From<crate::core::machine::ProviderConfig> for RelayProvider {
    /// A provider of the options as a fallback: the same fields.
    fn from(p: crate::core::machine::ProviderConfig) -> RelayProvider {
        RelayProvider {
            name: p.name,
            url: p.url,
            model: p.model,
            api_key: p.api_key,
            headers: p.headers,
            timeouts: p.timeouts,
            max_retries: p.max_retries,
        }
    }
}

/// The SDK's request, as its `fetch` call gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct SdkRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// Its headers, in order.
    pub headers: Vec<(String, String)>,
    /// Its body, when it is text (`None`: no body, or one the guard does not read).
    pub body: Option<String>,
}

/// Everything one relayed request needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    /// The SDK's request.
    pub request: SdkRequest,
    /// The deadlines and retry allowance of the request's own endpoint.
    pub timeouts: Timeouts,
    /// Its retry allowance.
    pub max_retries: u32,
    /// Tried in order after the request's own endpoint (streaming and JSON requests only).
    pub fallbacks: Vec<RelayProvider>,
    /// Back-off settings.
    pub policy: RetryPolicy,
    /// The bound on one SSE event.
    pub max_event_bytes: usize,
    /// How a cut after text ends.
    pub on_cut: OnCut,
    /// Seeds the back-off jitter.
    pub jitter_seed: u64,
}

/// A request to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Report what comes back under this id.
    pub attempt: AttemptId,
    /// The method.
    pub method: String,
    /// Where.
    pub url: String,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body: `None` means the SDK's own body, exactly as it gave it.
    pub body: Option<String>,
}

/// Something the driver must do on the platform.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayAction {
    /// Send this request.
    Send(Outgoing),
    /// Release this attempt: abort its request, cancel its body.
    Cancel {
        /// The attempt.
        attempt: AttemptId,
    },
    /// This attempt's answer is whole (its end marker was read) but its body may not have
    /// ended: let its transport read the rest and end there, as [`Action::Finish`] says.
    ///
    /// [`Action::Finish`]: crate::core::machine::Action::Finish
    Finish {
        /// The attempt.
        attempt: AttemptId,
    },
}

/// Why a committed body errors (`onCut: "error"`): a `GuardError`'s fields.
#[derive(Debug, Clone, PartialEq)]
pub struct CutError {
    /// `failure.error_kind()`.
    pub kind: crate::core::contract::ErrorKind,
    /// `"provider"` or `"service"`, for a timeout.
    pub layer: Option<&'static str>,
    /// The timeout's phase.
    pub phase: Option<&'static str>,
    /// What happened (no key in it).
    pub message: String,
    /// The provider that was answering.
    pub provider: String,
}

/// What the SDK gets, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayDelivery {
    /// An event for `onEvent`.
    Event(GuardEvent),
    /// Answer with `attempt`'s response: its status and headers; its body follows as
    /// [`RelayDelivery::Bytes`].
    Commit {
        /// The attempt whose response it is.
        attempt: AttemptId,
        /// Its status.
        status: u16,
    },
    /// Answer with the guard's own failure response (JSON, `x-should-retry: false`); complete.
    Respond {
        /// 502 or 504.
        status: u16,
        /// The OpenAI-style JSON error.
        body: String,
    },
    /// Body bytes of the committed response, unchanged (or the cut's final event).
    Bytes(Vec<u8>),
    /// The committed body ended.
    Close,
    /// The committed body errors with this (`onCut: "error"`).
    Fail(CutError),
    /// The edge worker's relay only ([`ProxyMode`](super::ProxyMode)): answer 200 as an event stream now (the
    /// first heartbeat came due before any progress); its body follows as
    /// [`RelayDelivery::Bytes`], and no [`RelayDelivery::Commit`] comes after it.
    Open,
}
