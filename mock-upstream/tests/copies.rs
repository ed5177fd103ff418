//! The places outside Rust's reach that must say what the mock sends: the benchmark's
//! JavaScript checks answers against the mock's texts. Each copy is read from its file and
//! compared with the mock's constant, so a change on either side fails here first.
//! (The wasm test suites need no copy: they compile `src/texts.rs` itself.)

use mock_upstream::{DEFAULT_TEXT, LONG_TOKEN};

/// The text of `file` (relative to the workspace root).
fn read(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The JavaScript string literal (double-quoted, without escapes) right after `before` in `text`.
fn literal_after<'a>(text: &'a str, before: &str, file: &str) -> &'a str {
    let start = text
        .find(before)
        .unwrap_or_else(|| panic!("{file} no longer has `{before}`: update this check"))
        + before.len();
    let rest = text[start..]
        .strip_prefix('"')
        .unwrap_or_else(|| panic!("{file}: `{before}` is not followed by a string"));
    let end = rest
        .find('"')
        .unwrap_or_else(|| panic!("{file}: unterminated string"));
    let literal = &rest[..end];
    assert!(!literal.contains('\\'), "{file}: escapes are not read here");
    literal
}

#[test]
fn the_benchmark_expects_the_default_text() {
    let file = "bench/lib/trials.mjs";
    assert_eq!(
        literal_after(&read(file), "export const MOCK_TEXT = ", file),
        DEFAULT_TEXT
    );
}

#[test]
fn the_benchmark_expects_the_long_token() {
    let file = "bench/node/workerd.mjs";
    assert_eq!(
        literal_after(&read(file), "const expected = ", file),
        LONG_TOKEN
    );
}

#[test]
fn a_changed_copy_is_noticed() {
    let js = r#"export const MOCK_TEXT = "Hello from elsewhere";"#;
    assert_ne!(
        literal_after(js, "export const MOCK_TEXT = ", "x.mjs"),
        DEFAULT_TEXT
    );
    let moved = std::panic::catch_unwind(|| literal_after("nothing", "const expected = ", "x"));
    assert!(moved.is_err());
}
