//! Unit tests of the scenario table and the helpers the scenarios share.

use serde_json::Value;

use super::formats::small_writes;
use super::*;

#[test]
fn every_scenario_is_described_and_built() {
    let req = ChatRequest {
        model: DEFAULT_MODEL.into(),
        body_len: 10,
        json: Value::Null,
    };
    let p = Params {
        size: 1000,
        n: 10,
        ..Params::default()
    };
    for (i, s) in SCENARIOS.iter().enumerate() {
        assert!(!s.about.is_empty(), "{} has no description", s.name);
        assert!(
            build(s.name, &p, &req, 1, None).is_some(),
            "{} is not built",
            s.name
        );
        let first = SCENARIOS.iter().position(|other| other.name == s.name);
        assert_eq!(first, Some(i), "{} is in the table twice", s.name);
    }
    assert!(build("nope", &p, &req, 1, None).is_none());
}

#[test]
fn the_derived_texts_are_what_the_scenarios_send() {
    let default = pieces(DEFAULT_TEXT);
    assert_eq!(default.len(), DEFAULT_PIECES);
    assert_eq!(default[..3].concat(), FIRST_THREE);
    assert_eq!(TOOL_ARGUMENT_FRAGMENTS.concat(), TOOL_ARGUMENTS);
    assert!(reasoning_pieces(2)
        .iter()
        .all(|piece| piece.starts_with(REASONING_PREFIX)));
}

#[test]
fn pieces_concatenate_back() {
    for t in [DEFAULT_TEXT, MULTIBYTE_TEXT, "", " lead", "a  b\n c", "one"] {
        assert_eq!(pieces(t).concat(), t);
    }
    assert_eq!(pieces("Hello from  it."), ["Hello ", "from  ", "it."]);
}

#[test]
fn small_writes_split_inside_characters_and_crlf() {
    let bytes = format!("data: {MULTIBYTE_TEXT}\r\n\r\n").into_bytes();
    let writes = small_writes(&bytes);
    assert!(writes.iter().all(|r| (1..=7).contains(&r.len())));
    let joined: Vec<u8> = writes
        .iter()
        .flat_map(|r| bytes[r.clone()].to_vec())
        .collect();
    assert_eq!(joined, bytes);
    assert!(writes
        .windows(2)
        .any(|w| bytes[w[0].end - 1] == b'\r' && bytes[w[1].start] == b'\n'));
    let emoji = bytes.iter().position(|&c| c >= 0xF0).unwrap();
    assert!(writes
        .iter()
        .any(|r| r.start > emoji && r.start < emoji + 4));
}
