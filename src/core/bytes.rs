//! Finding bytes eight at a time (SWAR): wasm without SIMD has no faster primitive, and
//! memchr's portable fallback reads a 4-byte `usize` at a time there.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Flags (the high bit of each byte) the bytes of `word` equal to `byte`: the classic "has a
/// zero byte" test. Whether any byte is flagged is exact, and a false positive can only sit
/// above a true one (a borrow runs upwards), so the lowest flag is always a true one.
#[inline(always)]
pub(crate) fn equal(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Flags the bytes of `word` below `n` (`n` at most 0x80), with the same guarantee as [`equal`].
#[inline(always)]
pub(crate) fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH
}

/// The index of the first byte of `bytes`, from `at` on, that `flags` marks in its word (the
/// little-endian 8 bytes from some index) or, in the last fewer-than-8 bytes, that `is_special`
/// accepts; `bytes.len()` when there is none. `flags` and `is_special` must agree.
#[inline(always)]
pub(crate) fn find(
    bytes: &[u8],
    mut at: usize,
    flags: impl Fn(u64) -> u64,
    is_special: impl Fn(u8) -> bool,
) -> usize {
    while let Some(word) = bytes
        .get(at..at + 8)
        .and_then(|w| <[u8; 8]>::try_from(w).ok())
    {
        let found = flags(u64::from_le_bytes(word));
        if found != 0 {
            return at + (found.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if is_special(b) {
            break;
        }
        at += 1;
    }
    at
}
