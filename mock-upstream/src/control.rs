//! The settings of the `controlled/<id>` providers: what each one does, changed at run time by
//! `POST /_control/<id>` and read afresh by every request it answers.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

/// What a controlled provider does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The normal stream.
    #[default]
    Ok,
    /// SSE headers, then nothing ever.
    Stall,
    /// `stall-after=N`: N content chunks, then nothing ever.
    StallAfter(u64),
    /// `http-<status>` (400 to 599): that status with a JSON error body (`Retry-After` for 429
    /// and 503).
    Http(u16),
}

impl Mode {
    /// Parses `ok`, `stall`, `stall-after=N` or `http-<status>`.
    pub fn parse(s: &str) -> Result<Mode, String> {
        let bad = || {
            format!("bad mode {s:?} (expected ok, stall, stall-after=N or http-<status 400..599>)")
        };
        match s {
            "ok" => Ok(Mode::Ok),
            "stall" => Ok(Mode::Stall),
            _ => {
                if let Some(n) = s.strip_prefix("stall-after=") {
                    n.parse().map(Mode::StallAfter).map_err(|_| bad())
                } else if let Some(code) = s.strip_prefix("http-") {
                    match code.parse::<u16>() {
                        Ok(c) if (400..=599).contains(&c) => Ok(Mode::Http(c)),
                        _ => Err(bad()),
                    }
                } else {
                    Err(bad())
                }
            }
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Ok => f.write_str("ok"),
            Mode::Stall => f.write_str("stall"),
            Mode::StallAfter(n) => write!(f, "stall-after={n}"),
            Mode::Http(code) => write!(f, "http-{code}"),
        }
    }
}

/// The current setting of one controlled provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Control {
    /// Wait after the headers before the first event (SSE modes only).
    pub first_token_ms: u64,
    /// What it does.
    pub mode: Mode,
}

impl Control {
    /// The setting as the ledger records it for a request: `ok first_token_ms=200`.
    pub fn describe(&self) -> String {
        format!("{} first_token_ms={}", self.mode, self.first_token_ms)
    }
}

/// One provider's setting and how many requests it answered.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    control: Control,
    served: u64,
}

/// Every controlled provider's setting, shared by all connections of one server.
#[derive(Debug, Clone, Default)]
pub(crate) struct Controls {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Controls {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The setting of `id` for a request it is about to answer (counted as served).
    pub fn take(&self, id: &str) -> Control {
        let mut map = self.lock();
        let e = map.entry(id.to_string()).or_default();
        e.served += 1;
        e.control
    }

    /// Applies a JSON update (`first_token_ms` and/or `mode`; absent fields keep their value).
    pub fn update(&self, id: &str, body: &[u8]) -> Result<Value, String> {
        let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?
        };
        let obj = v
            .as_object()
            .ok_or_else(|| "expected a JSON object".to_string())?;
        let first = match obj.get("first_token_ms") {
            None => None,
            Some(n) => Some(
                n.as_u64()
                    .ok_or("first_token_ms must be a non-negative integer")?,
            ),
        };
        let mode = match obj.get("mode") {
            None => None,
            Some(m) => Some(Mode::parse(m.as_str().ok_or("mode must be a string")?)?),
        };
        if let Some(k) = obj.keys().find(|k| *k != "first_token_ms" && *k != "mode") {
            return Err(format!(
                "unknown field {k:?} (expected first_token_ms, mode)"
            ));
        }
        let mut map = self.lock();
        let e = map.entry(id.to_string()).or_default();
        if let Some(ms) = first {
            e.control.first_token_ms = ms;
        }
        if let Some(m) = mode {
            e.control.mode = m;
        }
        Ok(Self::json(id, e))
    }

    /// The current setting of `id` as JSON.
    pub fn get(&self, id: &str) -> Value {
        let map = self.lock();
        let e = map.get(id).copied().unwrap_or_default();
        Self::json(id, &e)
    }

    /// Puts `id` back to its default (`ok`, no delay, nothing served).
    pub fn reset(&self, id: &str) -> Value {
        self.lock().remove(id);
        Self::json(id, &Entry::default())
    }

    fn json(id: &str, e: &Entry) -> Value {
        json!({
            "id": id,
            "first_token_ms": e.control.first_token_ms,
            "mode": e.control.mode.to_string(),
            "served": e.served,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print_back() {
        for s in [
            "ok",
            "stall",
            "stall-after=0",
            "stall-after=3",
            "http-503",
            "http-429",
        ] {
            assert_eq!(Mode::parse(s).unwrap().to_string(), s);
        }
        for s in [
            "",
            "OK",
            "stall-after=",
            "stall-after=x",
            "http-200",
            "http-600",
            "http-",
        ] {
            assert!(Mode::parse(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn updates_are_partial_and_checked() {
        let c = Controls::default();
        assert_eq!(c.take("a"), Control::default());
        let v = c.update("a", br#"{"first_token_ms":200}"#).unwrap();
        assert_eq!(v["mode"], "ok");
        assert_eq!(v["served"], 1);
        c.update("a", br#"{"mode":"stall-after=2"}"#).unwrap();
        assert_eq!(
            c.take("a"),
            Control {
                first_token_ms: 200,
                mode: Mode::StallAfter(2)
            }
        );
        assert_eq!(c.take("b"), Control::default(), "ids are independent");
        assert!(c.update("a", br#"{"mode":"slow"}"#).is_err());
        assert!(c.update("a", br#"{"first_token_ms":-1}"#).is_err());
        assert!(c.update("a", br#"{"delay":1}"#).is_err());
        assert!(c.update("a", b"[]").is_err());
        assert_eq!(c.get("a")["served"], 2, "a failed update changes nothing");
        assert_eq!(c.reset("a")["mode"], "ok");
        assert_eq!(c.take("a"), Control::default());
    }
}
