//! Building an attempt's request (body and headers) and drawing the back-off jitter: the small
//! pure pieces the machine needs so that a driver only sends what it is given.

use super::types::ProviderConfig;

/// The request body for `model`: `body_without_model` (a JSON object's text) with `"model"`
/// added as its last field, as `JSON.stringify` orders a field set last. The text must not
/// already carry `model` (the driver leaves it out). Refused when it is not an object's text.
pub fn body_with_model(body_without_model: &str, model: &str) -> Result<String, String> {
    let object = body_without_model.trim();
    let inner = object
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .ok_or("the request body must be a JSON object")?;
    let mut body = String::with_capacity(object.len() + model.len() + 12);
    body.push('{');
    body.push_str(inner);
    if !inner.trim().is_empty() {
        body.push(',');
    }
    body.push_str("\"model\":");
    push_json_string(&mut body, model);
    body.push('}');
    Ok(body)
}

/// `text` as a JSON string literal (RFC 8259 §7: quote, backslash and control characters
/// escaped; everything else as is). Runs without escapes are copied whole.
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut copied = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "\\u00",
            _ => continue,
        };
        // Every escaped byte is ASCII, so `at` is a char boundary.
        out.push_str(&text[copied..at]);
        out.push_str(escape);
        if escape.ends_with('0') {
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xf)] as char);
        }
        copied = at + 1;
    }
    out.push_str(&text[copied..]);
    out.push('"');
}

/// The request headers of `provider`, in the order a plain object would hold them:
/// `Content-Type`, `Accept`, the provider's own headers, `Authorization`. A later header of
/// exactly the same name replaces the earlier one's value in place (as setting a property does).
pub fn request_headers(provider: &ProviderConfig, stream: bool) -> Vec<(String, String)> {
    fn put(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
        match headers.iter_mut().find(|(n, _)| n == name) {
            Some(header) => header.1 = value.to_owned(),
            None => headers.push((name.to_owned(), value.to_owned())),
        }
    }
    let mut headers = Vec::with_capacity(provider.headers.len() + 3);
    put(&mut headers, "Content-Type", "application/json");
    let accept = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    put(&mut headers, "Accept", accept);
    for (name, value) in &provider.headers {
        put(&mut headers, name, value);
    }
    if let Some(key) = provider.api_key.as_deref().filter(|k| !k.is_empty()) {
        put(&mut headers, "Authorization", &format!("Bearer {key}"));
    }
    headers
}

/// Uniform draws from `[0, 1)` for the back-off's full jitter: SplitMix64 from a seed the driver
/// gives, so the machine needs no platform randomness and a test can replay the same draws.
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// Draws seeded with `seed`.
    pub fn new(seed: u64) -> Jitter {
        Jitter { state: seed }
    }

    /// The next draw, in `[0, 1)`.
    pub fn draw(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::deadline::Timeouts;

    #[test]
    fn the_model_is_added_as_the_last_field_and_escaped() {
        let body = body_with_model(r#"{"messages":[],"stream":true}"#, "a/b").unwrap();
        assert_eq!(body, r#"{"messages":[],"stream":true,"model":"a/b"}"#);
        assert_eq!(body_with_model(" {} ", "m").unwrap(), r#"{"model":"m"}"#);
        let odd = body_with_model("{}", "q\"\\\n\u{1}é").unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&odd).unwrap();
        assert_eq!(parsed["model"], "q\"\\\n\u{1}é");
        assert!(body_with_model("[1]", "m").is_err());
        assert!(body_with_model("", "m").is_err());
    }

    #[test]
    fn headers_keep_object_order_and_replace_in_place() {
        let provider = ProviderConfig {
            name: "p".into(),
            url: "https://x/v1".into(),
            model: "m".into(),
            api_key: Some("sk-1".into()),
            headers: vec![
                ("X-Title".into(), "t".into()),
                ("Accept".into(), "*/*".into()),
            ],
            timeouts: Timeouts::default(),
            max_retries: 2,
        };
        let headers = request_headers(&provider, true);
        let names: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("Content-Type", "application/json"),
                ("Accept", "*/*"),
                ("X-Title", "t"),
                ("Authorization", "Bearer sk-1"),
            ]
        );
        let keyless = ProviderConfig {
            api_key: Some(String::new()),
            headers: Vec::new(),
            ..provider
        };
        let headers = request_headers(&keyless, false);
        assert_eq!(headers[1].1, "application/json");
        assert!(headers.iter().all(|(n, _)| n != "Authorization"));
    }

    #[test]
    fn jitter_is_uniform_enough_and_replayable() {
        let mut a = Jitter::new(7);
        let mut b = Jitter::new(7);
        let draws: Vec<f64> = (0..1000).map(|_| a.draw()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        assert!(draws
            .iter()
            .zip((0..1000).map(|_| b.draw()))
            .all(|(x, y)| *x == y));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.45..0.55).contains(&mean), "{mean}");
        assert_ne!(Jitter::new(8).draw(), Jitter::new(7).draw());
    }
}
