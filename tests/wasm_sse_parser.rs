//! The JavaScript `SseParser` binding, run by `wasm-pack test` in Chromium, Firefox and Node.

#![cfg(target_arch = "wasm32")]

use js_sys::{Object, Reflect, Uint8Array};
use llm_stream_guard::web::SseParser;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

fn field(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &name.into()).unwrap()
}

fn push_all(parser: &mut SseParser, pieces: &[&[u8]]) -> Vec<JsValue> {
    let mut out = Vec::new();
    for piece in pieces {
        // Through a real Uint8Array, as JavaScript callers pass it.
        let array = Uint8Array::from(*piece);
        let events = parser.push(&array.to_vec()).unwrap();
        out.extend(events.iter());
    }
    out
}

#[wasm_bindgen_test]
fn events_come_back_as_plain_objects_across_split_multibyte_text() {
    let mut parser = SseParser::new(None).unwrap();
    let bytes = "\u{FEFF}id: 7\r\nevent: note\r\ndata: Grüße 🎙️\r\n\r\ndata:plain\r".as_bytes();
    // Cut between a CR and its LF, inside the 4-byte emoji, and after the final CR.
    let cr_lf = "\u{FEFF}id: 7\r\nevent: note\r".len();
    let emoji = "\u{FEFF}id: 7\r\nevent: note\r\ndata: Grüße ".len() + 2;
    let last_cr = bytes.len();
    let pieces = [
        &bytes[..cr_lf],
        &bytes[cr_lf..emoji],
        &bytes[emoji..last_cr],
        b"\n\n",
    ];
    let events = push_all(&mut parser, &pieces);
    assert_eq!(events.len(), 2);
    assert_eq!(field(&events[0], "data").as_string().unwrap(), "Grüße 🎙️");
    assert_eq!(field(&events[0], "event").as_string().unwrap(), "note");
    assert_eq!(field(&events[0], "id").as_string().unwrap(), "7");
    assert_eq!(field(&events[1], "data").as_string().unwrap(), "plain");
    assert_eq!(field(&events[1], "event").as_string().unwrap(), "message");
    assert_eq!(
        field(&events[1], "id").as_string().unwrap(),
        "7",
        "the last event id persists"
    );
    assert_eq!(parser.end().length(), 0);
}

#[wasm_bindgen_test]
fn an_over_long_event_throws_a_guard_error_of_kind_protocol() {
    let options = Object::new();
    Reflect::set(&options, &"maxEventBytes".into(), &16.into()).unwrap();
    let mut parser = SseParser::new(Some(options)).unwrap();
    let error = parser.push(b"data: 0123456789abcdef\n\n").unwrap_err();
    assert_eq!(field(&error, "name").as_string().unwrap(), "GuardError");
    assert_eq!(field(&error, "kind").as_string().unwrap(), "protocol");
    assert!(error.is_instance_of::<js_sys::Error>());
}

#[wasm_bindgen_test]
fn a_bad_max_event_bytes_is_a_config_error() {
    for bad in [
        JsValue::from(0),
        JsValue::from(-5),
        JsValue::from(1.5),
        JsValue::from("big"),
    ] {
        let options = Object::new();
        Reflect::set(&options, &"maxEventBytes".into(), &bad).unwrap();
        let error = SseParser::new(Some(options)).err().expect("refused");
        assert_eq!(field(&error, "kind").as_string().unwrap(), "config");
    }
}
