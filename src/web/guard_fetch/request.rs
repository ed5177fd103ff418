//! The SDK's request read as `fetch` reads it (`new Request(input, init)`): method, URL,
//! headers, and its body as text when it is text.

use super::*;

/// The request as `fetch` reads it: method, URL, headers, and its body as text when it is text
/// (the value to send as the SDK's own body comes back too).
pub(super) async fn read_request(
    input: &JsValue,
    init: &JsValue,
) -> Result<(SdkRequest, JsValue, AbortSignal), JsValue> {
    if let Some(direct) = direct_parts(input, init) {
        return direct;
    }
    let (request, mut sdk, given) = request_parts(input, init)?;
    let original = if sdk.body.is_some() || !given.is_undefined() {
        given
    } else {
        // A `Request` with a body: read once; sent as text when it is text, else as bytes.
        let read = get(&request, "arrayBuffer").dyn_into::<Function>()?;
        let buffer = JsFuture::from(Promise::resolve(&read.call0(&request)?)).await?;
        body_of(&mut sdk, Uint8Array::new(&buffer).to_vec())
    };
    let signal: AbortSignal = get(&request, "signal").unchecked_into();
    Ok((sdk, original, signal))
}

/// What SDKs pass (an absolute URL string, and an `init` whose method is a standard one in
/// capitals, whose headers are a `Headers` or what `new Headers()` takes, whose signal is an
/// `AbortSignal`) read as `new Request(input, init)` would read it, without making the
/// `Request`: its constructor is about a tenth of a millisecond of CPU per call in Node. `None`:
/// anything else, read through the `Request` (relative URLs, `Request` inputs, lower-case
/// methods, and every error `fetch` would throw, with its own message).
#[inline(never)]
fn direct_parts(
    input: &JsValue,
    init: &JsValue,
) -> Option<Result<(SdkRequest, JsValue, AbortSignal), JsValue>> {
    if !input.is_string() || !(init.is_undefined() || init.is_object()) {
        return None;
    }
    let field = |name: &'static str| match init.is_object() {
        true => get(init, name),
        false => JsValue::UNDEFINED,
    };
    let method = match field("method").as_string() {
        Some(method) if STANDARD_METHODS.contains(&method.as_str()) => method,
        Some(_) => return None,
        None if field("method").is_undefined() => "GET".to_owned(),
        None => return None,
    };
    let signal = match field("signal") {
        absent if absent.is_undefined() || absent.is_null() => {
            web_sys::AbortController::new().ok()?.signal()
        }
        signal => signal.dyn_into::<AbortSignal>().ok()?,
    };
    let url = JsUrl::new(input).ok()?.href();
    let headers = match field("headers") {
        absent if absent.is_undefined() || absent.is_null() => None,
        given => match given.dyn_into::<web_sys::Headers>() {
            Ok(headers) => Some(JsValue::from(headers)),
            Err(given) => match JsHeaders::new(&given) {
                Ok(headers) => Some(headers.into()),
                Err(thrown) => return Some(Err(thrown)),
            },
        },
    };
    let given = match field("body") {
        body if body.is_null() => JsValue::UNDEFINED,
        body => body,
    };
    if !given.is_undefined() && matches!(method.as_str(), "GET" | "HEAD") {
        return None; // `new Request()` refuses it, with its own message
    }
    let body = match given.is_undefined() {
        true => None,
        false => given.as_string(),
    };
    let sdk = SdkRequest {
        method,
        url,
        headers: headers.map(|h| header_pairs(&h)).unwrap_or_default(),
        body,
    };
    let given = match given.is_undefined() {
        true => JsValue::NULL,
        false => given,
    };
    Some(Ok((sdk, given, signal)))
}

/// The methods `new Request()` keeps as they are written (and that these are written in).
const STANDARD_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = URL)]
    type JsUrl;
    #[wasm_bindgen(constructor, js_class = "URL", catch)]
    fn new(input: &JsValue) -> Result<JsUrl, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn href(this: &JsUrl) -> String;
}

/// The name/value pairs of a `Headers` (lower-case names, as it iterates them).
fn header_pairs(headers: &JsValue) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    if let Ok(Some(entries)) = js_sys::try_iter(headers) {
        for entry in entries.flatten() {
            let name = Reflect::get_u32(&entry, 0).ok().and_then(|v| v.as_string());
            let value = Reflect::get_u32(&entry, 1).ok().and_then(|v| v.as_string());
            if let (Some(name), Some(value)) = (name, value) {
                pairs.push((name, value));
            }
        }
    }
    pairs
}

/// `new Request(input, init)` and what can be read of it at once: the request, its parts, and
/// the body `init` gave (`undefined` when it gave none, or when a `Request`'s own body is still
/// to be read: then `sdk.body` is `None` too).
#[inline(never)]
fn request_parts(
    input: &JsValue,
    init: &JsValue,
) -> Result<(JsValue, SdkRequest, JsValue), JsValue> {
    let request: JsValue = JsRequest::new(input, init)?.into();
    let method = get(&request, "method").as_string().unwrap_or_default();
    let url = get(&request, "url").as_string().unwrap_or_default();
    let headers = header_pairs(&get(&request, "headers"));
    let given = match init.is_object() {
        true => get(init, "body"),
        false => JsValue::UNDEFINED,
    };
    let given = match given.is_null() {
        true => JsValue::UNDEFINED,
        false => given,
    };
    // No body given: there is none unless `input` is a `Request` that may carry one (read by
    // the caller; Firefox has no `Request.body` to tell, so a `Request` is read unless its
    // method cannot have a body).
    let may_carry = input.is_object()
        && get(input, "arrayBuffer").is_function()
        && !matches!(method.as_str(), "GET" | "HEAD");
    let nothing = given.is_undefined() && !may_carry;
    let body = given.as_string().or_else(|| nothing.then(String::new));
    let sdk = SdkRequest {
        method,
        url,
        headers,
        body: body.filter(|text| !(nothing && text.is_empty())),
    };
    let given = match nothing {
        true => JsValue::NULL,
        false => given,
    };
    Ok((request, sdk, given))
}

/// A `Request`'s own body, read: text when it is UTF-8, else the bytes as they are.
#[inline(never)]
fn body_of(sdk: &mut SdkRequest, bytes: Vec<u8>) -> JsValue {
    if bytes.is_empty() {
        return JsValue::NULL; // no body after all (a GET must not be sent one)
    }
    match String::from_utf8(bytes) {
        Ok(text) => {
            let value = JsValue::from_str(&text);
            sdk.body = Some(text);
            value
        }
        Err(e) => Uint8Array::from(e.as_bytes()).into(),
    }
}
