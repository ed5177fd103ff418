//! The walker against serde_json (the decoder this one replaced, kept here as the oracle):
//! generated chunks of every shape, valid and not, must decode to the same thing, and no
//! input may panic.

use super::walker::{same, scan_string};
use super::*;
use proptest::prelude::*;
use serde::Deserialize;
use std::borrow::Cow;

// ---- the oracle: serde_json with borrowed structs ----

#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

fn optional_text<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::<Text<'a>>::deserialize(deserializer)?.map(|text| text.0))
}

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(borrow, default, deserialize_with = "optional_text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<RawChoice<'a>>>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: u64,
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<RawMessage<'a>>,
    #[serde(borrow, default)]
    message: Option<RawMessage<'a>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(borrow, default, deserialize_with = "optional_text")]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<RawToolCall<'a>>>,
}

#[derive(Deserialize)]
struct RawToolCall<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<RawFunction<'a>>,
}

#[derive(Deserialize)]
struct RawFunction<'a> {
    #[serde(borrow, default, deserialize_with = "optional_text")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "optional_text")]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
}

impl RawError {
    fn into_error(self) -> UpstreamError {
        let code = match self.code {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(text)) => Some(text),
            Some(other) => Some(other.to_string()),
        };
        UpstreamError {
            code,
            message: self.message.unwrap_or_default(),
        }
    }
}

fn oracle(data: &str) -> Decoded<'_> {
    let json = data.trim();
    if json == DONE_SENTINEL {
        return Decoded::Done;
    }
    if json.is_empty() {
        return Decoded::Malformed(Malformed {
            kind: MalformedKind::Empty,
            line: 0,
            column: 0,
        });
    }
    if !json.starts_with('{') {
        let kind = match serde_json::from_str::<serde::de::IgnoredAny>(json) {
            Ok(_) => MalformedKind::Shape,
            Err(_) => MalformedKind::Syntax,
        };
        return Decoded::Malformed(Malformed {
            kind,
            line: 1,
            column: 1,
        });
    }
    let raw = match serde_json::from_str::<RawChunk<'_>>(json) {
        Ok(raw) => raw,
        Err(error) => {
            return Decoded::Malformed(Malformed {
                kind: match error.classify() {
                    serde_json::error::Category::Data => MalformedKind::Shape,
                    _ => MalformedKind::Syntax,
                },
                line: error.line(),
                column: error.column(),
            })
        }
    };
    let mut chunk = Chunk {
        id: raw.id,
        model: raw.model,
        usage: raw.usage.map(|u| Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
        }),
        error: raw.error.map(RawError::into_error),
        ..Chunk::default()
    };
    if let Some(choice) = raw.choices.and_then(|c| c.into_iter().next()) {
        chunk.finish_reason = choice.finish_reason;
        if chunk.error.is_none() {
            chunk.error = choice.error.map(RawError::into_error);
        }
        if let Some(message) = choice.delta.or(choice.message) {
            chunk.content = message.content;
            chunk.reasoning = message.reasoning.or(message.reasoning_content);
            chunk.tool_calls = message
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(position, call)| {
                    let (name, arguments) = match call.function {
                        Some(f) => (f.name, f.arguments),
                        None => (None, None),
                    };
                    ToolCallDelta {
                        index: call.index.unwrap_or(position as u32),
                        id: call.id,
                        name,
                        arguments,
                    }
                })
                .collect();
        }
    }
    Decoded::Chunk(chunk)
}

// ---- comparing ----

fn same_text(what: &str, a: &Option<Cow<'_, str>>, b: &Option<Cow<'_, str>>) -> Result<(), String> {
    if a != b {
        return Err(format!("{what}: walker {a:?}, serde {b:?}"));
    }
    if let (Some(a), Some(b)) = (a, b) {
        if matches!(a, Cow::Borrowed(_)) != matches!(b, Cow::Borrowed(_)) {
            return Err(format!("{what}: borrowed differently ({a:?})"));
        }
    }
    Ok(())
}

/// Equal JSON values, numbers within rounding (serde_json's own float reading is not
/// exact, so its printed value may not read back to the same `f64`).
fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

/// Equal JSON texts, or texts of equal JSON values (the walker keeps a value as it was sent;
/// serde_json printed its own reading of it).
fn same_json(what: &str, a: &Option<String>, b: &Option<String>) -> Result<(), String> {
    let equal = match (a, b) {
        (Some(a), Some(b)) if a != b => {
            let parse = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
            matches!((parse(a), parse(b)), (Some(x), Some(y)) if close(&x, &y))
        }
        _ => a == b,
    };
    if equal {
        Ok(())
    } else {
        Err(format!("{what}: walker {a:?}, serde {b:?}"))
    }
}

fn agree(data: &str) -> Result<(), String> {
    let (walker, serde) = (decode_event_data(data), oracle(data));
    let context = |e: String| format!("{e}\n  in {data:?}");
    match (&walker, &serde) {
        (Decoded::Done, Decoded::Done) => Ok(()),
        (Decoded::Malformed(a), Decoded::Malformed(b)) if a.kind == b.kind => Ok(()),
        (Decoded::Chunk(a), Decoded::Chunk(b)) => same_text("id", &a.id, &b.id)
            .and(same_text("model", &a.model, &b.model))
            .and(same_text("content", &a.content, &b.content))
            .and(same_text("reasoning", &a.reasoning, &b.reasoning))
            .and(same_text(
                "finish_reason",
                &a.finish_reason,
                &b.finish_reason,
            ))
            .and(if a.usage == b.usage && a.tool_calls == b.tool_calls {
                Ok(())
            } else {
                Err(format!("usage or tool calls: walker {a:?}, serde {b:?}"))
            })
            .and(match (&a.error, &b.error) {
                (None, None) => Ok(()),
                (Some(x), Some(y)) if x.message == y.message => same_json("code", &x.code, &y.code),
                _ => Err(format!("error: walker {:?}, serde {:?}", a.error, b.error)),
            })
            .map_err(context),
        _ => Err(context(format!("walker {walker:?}, serde {serde:?}"))),
    }
}

// ---- generated payloads ----

/// A small deterministic generator (xorshift), so one proptest seed is one payload.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True one time in `n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    fn pick<'p>(&mut self, items: &[&'p str]) -> &'p str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// JSON with objects as field lists (so a field can be given twice) and numbers as text.
#[derive(Clone)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

const PIECES: &[&str] = &[
    "a", "Hel", "lo", " ", "world", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1f}", "é", "🎙", "語",
    "\u{2028}", "\u{7f}", "{", "}", "[", "]", ":", ",", "0", "null",
];

fn gen_string(g: &mut Gen) -> String {
    (0..g.below(6)).map(|_| g.pick(PIECES)).collect()
}

const NUMBERS: &[&str] = &[
    "0",
    "7",
    "42",
    "-1",
    "-0",
    "1.5",
    "1e2",
    "1E+2",
    "-2.5e-3",
    "0.0",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e309",
    "-1e400",
    "123456789012345678901234567890",
    "0.000001",
    "1e-400",
    "2e308",
    "1.7e308",
    "1.8e308",
    "-179e306",
    "0.00000000000000000000000000000000000000000000000000000001e363",
];

fn gen_scalar(g: &mut Gen) -> J {
    match g.below(5) {
        0 => J::Null,
        1 => J::Bool(g.one_in(2)),
        2 => J::Num(g.pick(NUMBERS).into()),
        _ => J::Str(gen_string(g)),
    }
}

fn gen_any(g: &mut Gen, depth: u32) -> J {
    if depth == 0 || g.below(3) != 0 {
        return gen_scalar(g);
    }
    let n = g.below(4);
    if g.one_in(2) {
        J::Arr((0..n).map(|_| gen_any(g, depth - 1)).collect())
    } else {
        J::Obj(
            (0..n)
                .map(|_| (gen_string(g), gen_any(g, depth - 1)))
                .collect(),
        )
    }
}

/// A value of the wrong type for a field: any scalar, or (when `containers`) `{}`/`[]`.
fn gen_wrong(g: &mut Gen, containers: bool) -> J {
    if containers && g.one_in(3) {
        if g.one_in(2) {
            J::Arr(vec![gen_scalar(g)])
        } else {
            J::Obj(vec![("x".into(), gen_scalar(g))])
        }
    } else {
        match gen_scalar(g) {
            J::Null => J::Num("1".into()),
            other => other,
        }
    }
}

fn gen_text(g: &mut Gen) -> J {
    match g.below(12) {
        0 => J::Null,
        1 => gen_wrong(g, true),
        _ => J::Str(gen_string(g)),
    }
}

/// An optional record built by `f`, `null`, or a scalar of the wrong type.
fn gen_object_field(g: &mut Gen, f: impl FnOnce(&mut Gen) -> J) -> J {
    match g.below(12) {
        0 => J::Null,
        1 => gen_wrong(g, false),
        _ => f(g),
    }
}

fn gen_count(g: &mut Gen) -> J {
    match g.below(10) {
        0 => J::Null,
        1 => J::Num(g.pick(NUMBERS).into()),
        2 => gen_wrong(g, true),
        _ => J::Num(g.below(100_000).to_string()),
    }
}

/// Fields the wire format carries that the decoder skips unread (as it skips unknown ones),
/// generated with any value so that skipping them is tested too.
const UNREAD: &[&str] = &[
    "type",
    "prompt_tokens_details",
    "created",
    "object",
    "native_finish_reason",
    "metadata",
];

/// An object of the fields `fields` makes, in random order, some left out, sometimes one
/// twice, with unknown fields between them; sometimes (when `record`) the array of its
/// declared fields in order, as serde also reads a struct, maybe cut short or one too long.
fn gen_object(g: &mut Gen, fields: Vec<(&str, J)>, record: bool) -> J {
    if record && g.one_in(12) {
        let declared: Vec<J> = fields
            .iter()
            .filter(|(name, _)| !UNREAD.contains(name))
            .map(|(_, value)| value.clone())
            .collect();
        let keep = g.below(declared.len() as u64 + 2) as usize;
        let mut items: Vec<J> = declared.into_iter().take(keep).collect();
        if keep > items.len() {
            items.push(gen_scalar(g));
        }
        return J::Arr(items);
    }
    let mut list: Vec<(String, J)> = fields
        .into_iter()
        .filter(|_| g.below(4) != 0)
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for _ in 0..g.below(3) {
        list.push((
            g.pick(&["role", "index", "logprobs", "x", "provider", ""])
                .into(),
            gen_any(g, 3),
        ));
    }
    if !list.is_empty() && g.one_in(25) {
        let twice = list[g.below(list.len() as u64) as usize].clone();
        list.push(twice);
    }
    for i in (1..list.len()).rev() {
        list.swap(i, g.below(i as u64 + 1) as usize);
    }
    J::Obj(list)
}

fn gen_error(g: &mut Gen) -> J {
    let fields = vec![
        ("code", gen_any(g, 2)),
        ("message", gen_text(g)),
        ("metadata", gen_any(g, 3)),
    ];
    gen_object(g, fields, true)
}

fn gen_message(g: &mut Gen) -> J {
    let calls = match g.below(8) {
        0 => J::Null,
        1 => gen_wrong(g, false),
        _ => J::Arr(
            (0..g.below(3))
                .map(|_| {
                    let index = match g.below(6) {
                        0 => J::Null,
                        1 => gen_count(g),
                        _ => J::Num(g.below(4).to_string()),
                    };
                    let function = gen_object_field(g, |g| {
                        let fields = vec![("name", gen_text(g)), ("arguments", gen_text(g))];
                        gen_object(g, fields, true)
                    });
                    let fields = vec![
                        ("index", index),
                        ("id", gen_text(g)),
                        ("type", J::Str("function".into())),
                        ("function", function),
                    ];
                    gen_object(g, fields, true)
                })
                .collect(),
        ),
    };
    let fields = vec![
        ("content", gen_text(g)),
        ("reasoning", gen_text(g)),
        ("reasoning_content", gen_text(g)),
        ("tool_calls", calls),
    ];
    gen_object(g, fields, true)
}

fn gen_chunk(g: &mut Gen) -> J {
    let choices = match g.below(10) {
        0 => J::Null,
        1 => gen_wrong(g, false),
        _ => J::Arr(
            (0..g.below(3))
                .map(|_| {
                    let fields = vec![
                        ("delta", gen_object_field(g, gen_message)),
                        ("message", gen_object_field(g, gen_message)),
                        ("finish_reason", gen_text(g)),
                        ("native_finish_reason", gen_text(g)),
                        ("error", gen_object_field(g, gen_error)),
                    ];
                    gen_object(g, fields, true)
                })
                .collect(),
        ),
    };
    let usage = gen_object_field(g, |g| {
        let fields = vec![
            ("prompt_tokens", gen_count(g)),
            ("completion_tokens", gen_count(g)),
            ("total_tokens", gen_count(g)),
            ("prompt_tokens_details", gen_any(g, 2)),
        ];
        gen_object(g, fields, true)
    });
    let fields = vec![
        ("id", gen_text(g)),
        ("model", gen_text(g)),
        ("object", gen_text(g)),
        ("created", J::Num("1740000000".into())),
        ("choices", choices),
        ("usage", usage),
        ("error", gen_object_field(g, gen_error)),
    ];
    gen_object(g, fields, false)
}

/// JSON text of `j`, with random whitespace and random (valid) escapes; one time in
/// `broken` a string gets a lone surrogate escape.
fn emit(j: &J, g: &mut Gen, broken: u64, out: &mut String) {
    let space = |g: &mut Gen, out: &mut String| {
        if g.one_in(6) {
            out.push_str(g.pick(&[" ", "\n", "\t", "\r\n  "]));
        }
    };
    space(g, out);
    match j {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.push_str(n),
        J::Str(s) => emit_string(s, g, broken, out),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                emit(item, g, broken, out);
            }
            space(g, out);
            out.push(']');
        }
        J::Obj(fields) => {
            out.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(g, out);
                emit_string(key, g, broken, out);
                space(g, out);
                out.push(':');
                emit(value, g, broken, out);
            }
            space(g, out);
            out.push('}');
        }
    }
    space(g, out);
}

fn emit_string(s: &str, g: &mut Gen, broken: u64, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let escape_anyway = g.one_in(8);
        match c {
            '"' => out.push_str(if escape_anyway { "\\u0022" } else { "\\\"" }),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '/' if escape_anyway => out.push_str("\\/"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if escape_anyway => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04X}", unit));
                }
            }
            c => out.push(c),
        }
    }
    if broken > 0 && g.one_in(broken) {
        out.push_str(g.pick(&["\\ud800", "\\udc00x", "\\ud83c\\u0041", "\\ud83c\\n"]));
    }
    out.push('"');
}

/// `text` after `edits` (at, remove/replace/insert, which byte of JSON's alphabet), each at a
/// char position.
fn edited(text: &str, edits: &[(u16, u8, u8)]) -> String {
    const ALPHABET: &[u8] = b"{}[]:,\"\\ -0123456789.eEtrufalsn\nxu";
    let mut chars: Vec<char> = text.chars().collect();
    for &(at, how, what) in edits {
        let at = at as usize % (chars.len() + 1);
        let c = ALPHABET[what as usize % ALPHABET.len()] as char;
        match how {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => chars[at] = c,
            _ => chars.insert(at, c),
        }
    }
    chars.into_iter().collect()
}

fn payload(seed: u64, broken: u64) -> String {
    let mut g = Gen(seed | 1);
    let j = gen_chunk(&mut g);
    let mut out = String::new();
    emit(&j, &mut g, broken, &mut out);
    out
}

// ---- the properties ----

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Generated chunks of every shape (valid, wrong types, duplicate fields, escapes,
    /// whitespace, odd numbers) decode as serde_json decoded them.
    #[test]
    fn agrees_with_serde_json_on_generated_chunks(seed in any::<u64>()) {
        let data = payload(seed, 0);
        if let Err(e) = agree(&data) {
            prop_assert!(false, "{}", e);
        }
    }

    /// ... including lone surrogates, refused in strings that are read, accepted in skipped
    /// ones.
    #[test]
    fn agrees_with_serde_json_on_lone_surrogates(seed in any::<u64>()) {
        let data = payload(seed, 6);
        if let Err(e) = agree(&data) {
            prop_assert!(false, "{}", e);
        }
    }

    /// A few random edits of a generated chunk: still the same verdict as serde_json (so
    /// the first problem in document order is classified alike).
    #[test]
    fn agrees_with_serde_json_after_random_edits(seed in any::<u64>(), edits in proptest::collection::vec((any::<u16>(), 0u8..3, any::<u8>()), 1..4)) {
        let data = edited(&payload(seed, 0), &edits);
        if let Err(e) = agree(&data) {
            prop_assert!(false, "{}", e);
        }
    }

    /// No input panics: random bytes (as text), random text.
    #[test]
    fn never_panics_on_random_input(bytes in proptest::collection::vec(any::<u8>(), 0..256), text in ".{0,64}") {
        let lossy = String::from_utf8_lossy(&bytes);
        let _ = decode_event_data(&lossy);
        let _ = decode_body(&lossy);
        let _ = decode_event_data(&text);
        let _ = decode_event_data(&format!("{{\"choices\":[{{\"delta\":{text}}}]}}"));
    }
}

#[test]
fn handpicked_cases_agree_with_serde_json() {
    let cases = [
        r#"{"choices":[{"delta":{"content":"\ud800"}}]}"#,
        r#"{"choices":[{"delta":{"content":"x"}}],"skipped":"\ud800"}"#,
        r#"{"id":"a","id":"b"}"#,
        r#"{"id":"a","x":1,"x":2}"#,
        r#"{"usage":{"prompt_tokens":-0}}"#,
        r#"{"usage":{"prompt_tokens":1e400}}"#,
        r#"{"usage":{"prompt_tokens":1e4}}"#,
        r#"{"usage":{"prompt_tokens":01}}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551615}}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551609}}"#,
        r#"{"usage":{"prompt_tokens":18446744073709551620}}"#,
        r#"{"usage":{"prompt_tokens":1844674407370955162}}"#,
        r#"{"usage":{"prompt_tokens":99999999999999999999}}"#,
        r#"{"usage":{"prompt_tokens":184467440737095516150}}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":4294967296}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":1.0}]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":null,"id":"c"},{"id":"d"}]}}]}"#,
        r#"{"choices":[]} x"#,
        r#"{"choices":[],}"#,
        r#"{"choices":[1,]}"#,
        "{\"choices\":[{\"delta\":{\"content\":\"a\u{1}b\"}}]}",
        r#"{"error":{"code":502.0,"message":"m","metadata":{"b": [1, 2.50, "x y"], "a": null}}}"#,
        r#"{"error":{"code":{"k":[true]},"message":null}}"#,
        r#"{"error":{"message":5}}"#,
        r#"{"object":5,"object":[],"choices":[{"native_finish_reason":{},"delta":{"content":"x"}}]}"#,
        r#"{"error":{"metadata":"\ud800","metadata":1e999,"message":"m"}}"#,
        r#"{"\u0069d":"escaped key","choices":[{"\u0064elta":{"content":"ok"}}]}"#,
        r#"{"choices":[{"delta":{"content":"a\/b\u00e9\ud83c\udf99"}}]}"#,
        r#"{"choices":[{"delta":{"content":tru}}]}"#,
        r#"{"choices":[{"delta":{"content":-}}]}"#,
        r#"{"choices":[{"delta":{"content":"x"},"message":{"content":"y"}}]}"#,
        r#"{"choices":[{"delta":null,"message":{"content":"y"}}]}"#,
        r#"{"choices":[{"delta":{}},{"delta":{"content":5}}]}"#,
        r#"{"usage":null,"error":null,"choices":null}"#,
        r#"{"x":[[[[{"a":[{}]}]]]],"choices":[{"delta":{"content":"deep"}}]}"#,
        r#"{"x":{"a" 1}}"#,
        r#"{"x":[1 2]}"#,
        r#"{"x":"\q"}"#,
        r#"{"x":"\u12G4"}"#,
        r#"{"x":1.}"#,
        r#"{"x":1e}"#,
        r#"{"x":-01}"#,
        "[DONE]",
        "\"a string\"",
        "[1, 2",
    ];
    for data in cases {
        if let Err(e) = agree(data) {
            panic!("{e}");
        }
    }
}

#[test]
fn nesting_limits_match_serde_json_and_deep_input_is_safe() {
    for depth in [100, 120, 121, 122, 123, 124, 125, 126, 127, 128, 200] {
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        // A read value (an error's `code`) counts against the limit...
        let data = format!(r#"{{"choices":[{{"error":{{"message":"m","code":{nested}}}}}]}}"#);
        agree(&data).unwrap();
        // ... a skipped one (an unknown field, an error's `metadata`) does not.
        let skipped = format!(r#"{{"x":{nested},"id":"a"}}"#);
        agree(&skipped).unwrap();
        let metadata =
            format!(r#"{{"choices":[{{"error":{{"message":"m","metadata":{nested}}}}}]}}"#);
        agree(&metadata).unwrap();
    }
    // Skipped values nest without limit and without stack.
    let deep = format!(
        "{{\"x\":{}1{}}}",
        "[{\"a\":".repeat(100_000),
        "}]".repeat(100_000)
    );
    assert!(matches!(decode_event_data(&deep), Decoded::Chunk(_)));
    let open = "[".repeat(100_000);
    assert!(matches!(
        decode_event_data(&open),
        Decoded::Malformed(Malformed {
            kind: MalformedKind::Syntax,
            ..
        })
    ));
    let metadata = format!(
        "{{\"error\":{{\"metadata\":{}0{}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(matches!(decode_event_data(&metadata), Decoded::Chunk(_)));
    for unclosed in ["code", "metadata"] {
        let data = format!("{{\"error\":{{\"{unclosed}\":{}}}}}", "[".repeat(100_000));
        assert!(matches!(
            decode_event_data(&data),
            Decoded::Malformed(Malformed {
                kind: MalformedKind::Syntax,
                ..
            })
        ));
    }
}

#[test]
fn the_first_special_byte_of_a_string_is_found_at_every_offset() {
    // Bytes next to the special ones (and with the high bit set) must not be taken for
    // them; the special ones must be found wherever they sit in an 8-byte word.
    let fillers = [
        b'a', b' ', b'!', b'#', b'[', b']', 0x7F, 0x80, 0xA2, 0xDC, 0xFF,
    ];
    let specials = [b'"', b'\\', 0x00, 0x1F, b'\n'];
    for len in 0..40 {
        for filler in fillers {
            let mut bytes = vec![filler; len];
            assert_eq!(scan_string(&bytes, 0), len);
            for special in specials {
                for at in 0..len {
                    bytes[at] = special;
                    for from in 0..=at {
                        assert_eq!(scan_string(&bytes, from), at, "{bytes:?} from {from}");
                    }
                    bytes[len - 1] = special; // a later one does not hide it
                    assert_eq!(scan_string(&bytes, 0), at, "{bytes:?}");
                    bytes[len - 1] = filler;
                    bytes[at] = filler;
                }
            }
        }
    }
}

#[test]
fn names_equal_only_when_every_byte_is_equal() {
    for len in 0..40 {
        let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        assert!(same(&a, &a.clone()), "{len}");
        for at in 0..len {
            let mut b = a.clone();
            b[at] ^= 0x20;
            assert!(!same(&a, &b), "{len} {at}");
            assert!(!same(&b, &a), "{len} {at}");
        }
    }
}

#[test]
fn codes_are_compact_json_text() {
    let code = |body: &str| match decode_body(body) {
        Decoded::Chunk(c) => c.error.and_then(|e| e.code),
        other => panic!("not a chunk: {other:?}"),
    };
    assert_eq!(
        code("{\"error\":{\"code\": 502 ,\"message\":\"m\"}}").as_deref(),
        Some("502")
    );
    assert_eq!(
        code("{\"error\":{\"code\":{ \"provider_name\" : \"Mock A\",\n \"raw\": [1, {\"x\": \"a b\\\" c\"}] }}}")
            .as_deref(),
        Some(r#"{"provider_name":"Mock A","raw":[1,{"x":"a b\" c"}]}"#)
    );
}

// ---- a stream's decoder, which reads only the text of a repeated chunk ----

/// A chunk that carries text and nothing else the decoder reads (every other read field null
/// or left out), in the generator's every shape: what a stream repeats, token after token.
fn gen_text_chunk(g: &mut Gen) -> J {
    // Every field kept, in random order, maybe with an unknown one.
    let object = |g: &mut Gen, fields: Vec<(&str, J)>| {
        let mut list: Vec<(String, J)> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if g.one_in(3) {
            list.push(("x".into(), gen_any(g, 2)));
        }
        for i in (1..list.len()).rev() {
            list.swap(i, g.below(i as u64 + 1) as usize);
        }
        J::Obj(list)
    };
    let choices = (0..1 + g.below(2))
        .map(|_| {
            let delta = vec![
                ("content", J::Str(gen_string(g))),
                ("reasoning", J::Null),
                ("tool_calls", J::Null),
                ("role", J::Str("assistant".into())),
            ];
            let fields = vec![
                ("delta", object(g, delta)),
                ("finish_reason", J::Null),
                ("native_finish_reason", gen_text(g)),
                ("logprobs", gen_any(g, 2)),
            ];
            object(g, fields)
        })
        .collect();
    let name = |g: &mut Gen| match g.below(8) {
        0 => J::Null,
        1 => J::Str(gen_string(g)),
        _ => J::Str(g.pick(&["gen-1", "openai/gpt-4o", "m"]).into()),
    };
    let fields = vec![
        ("id", name(g)),
        ("provider", gen_any(g, 1)),
        ("model", name(g)),
        ("object", gen_text(g)),
        ("created", J::Num("1740000000".into())),
        ("choices", J::Arr(choices)),
        ("usage", J::Null),
    ];
    object(g, fields)
}

/// `a` with its content value replaced by `token`, when `a` decodes with one.
fn with_content(a: &str, token: &str) -> Option<String> {
    let json = a.trim();
    let (_, span) = decode_json_spanned(json);
    let (start, end) = span?;
    Some(format!("{}{token}{}", &json[..start], &json[end..]))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// A stream's decoder gives exactly what each payload decodes to alone (which the
    /// properties above hold to serde_json): for a generated chunk, the same chunk with another
    /// text (escapes and lone surrogates included), that one edited at random, and another
    /// generated chunk; and a chunk with only a new text is read by its text alone.
    #[test]
    fn a_stream_decoder_gives_what_each_payload_decodes_to(seed in any::<u64>(), edits in proptest::collection::vec((any::<u16>(), 0u8..3, any::<u8>()), 1..3)) {
        let mut g = Gen(seed.rotate_left(17) | 1);
        let a = if seed % 4 == 0 {
            payload(seed, 0)
        } else {
            let mut out = String::new();
            emit(&gen_text_chunk(&mut g), &mut g, 0, &mut out);
            out
        };
        let mut token = String::new();
        emit_string(&gen_string(&mut g), &mut g, 6, &mut token);
        let b = with_content(&a, &token);
        let c = b.as_deref().map(|b| edited(b, &edits));
        let d = payload(seed ^ 0x9e37_79b9_7f4a_7c15, 6);
        let mut decoder = ChunkDecoder::default();
        prop_assert_eq!(decoder.decode_event_data(&a), decode_event_data(&a));
        let remembered = !decoder.prefix_is_empty();
        if let Some(b) = &b {
            let alone = decode_event_data(b);
            prop_assert_eq!(decoder.decode_event_data(b), alone.clone(), "in {:?} after {:?}", b, a);
            if remembered && matches!(alone, Decoded::Chunk(_)) {
                prop_assert_eq!(decoder.repeated, 1, "not read by its text alone: {:?}", b);
            }
        }
        for next in [c.as_deref(), Some(d.as_str()), b.as_deref(), Some(a.as_str())].into_iter().flatten() {
            prop_assert_eq!(decoder.decode_event_data(next), decode_event_data(next), "in {:?}", next);
        }
    }
}

#[test]
fn a_stream_decoder_reads_a_repeated_chunk_by_its_text() {
    let line = |text: &str, finish: &str| {
        format!(
            r#"{{"id":"gen-1","provider":"OpenAI","model":"m","object":"chat.completion.chunk","created":1,"choices":[{{"index":0,"delta":{{"role":"assistant","content":{}}},"finish_reason":{finish},"logprobs":null}}]}}"#,
            serde_json::to_string(text).unwrap()
        )
    };
    let mut decoder = ChunkDecoder::default();
    let texts = ["Hel", "lo \"you\"", "", " 世界 🙂", "x"];
    for (i, text) in texts.iter().enumerate() {
        let data = line(text, "null");
        let Decoded::Chunk(chunk) = decoder.decode_event_data(&data) else {
            panic!("not a chunk: {data}");
        };
        assert_eq!(chunk.content.as_deref(), Some(*text));
        assert_eq!(
            (chunk.id.as_deref(), chunk.model.as_deref()),
            (Some("gen-1"), Some("m"))
        );
        assert_eq!(decoder.repeated, i as u64, "after {data}");
    }
    // The finish chunk and [DONE] are decoded whole, and what follows still repeats.
    let finish = line("", "\"stop\"");
    assert_eq!(
        decoder.decode_event_data(&finish),
        decode_event_data(&finish)
    );
    assert_eq!(decoder.decode_event_data(" [DONE] "), Decoded::Done);
    assert_eq!(decoder.repeated, 4);
    let again = line("more", "null");
    assert_eq!(decoder.decode_event_data(&again), decode_event_data(&again));
    assert_eq!(decoder.repeated, 5);
    // Two values where the text was, and a text that is not JSON, are not taken for it.
    for data in [
        line("a", "null").replace(r#""a""#, r#""a","content":"b""#),
        line("a", "null").replace(r#""a""#, r#""a\x""#),
        line("a", "null").replace(r#""a""#, "7"),
    ] {
        assert_eq!(
            decoder.decode_event_data(&data),
            decode_event_data(&data),
            "{data}"
        );
        assert!(
            matches!(decode_event_data(&data), Decoded::Malformed(_)),
            "{data}"
        );
    }
    assert_eq!(decoder.repeated, 5);
}
