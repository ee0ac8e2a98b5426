//! JSON string escaping for both styles.
//!
//! Both styles escape exactly `"`, `\` and the control characters below U+0020, and
//! write everything else (including `/`, U+007F and non-ASCII) raw. They differ only in
//! the hex digits of `\u00XX`: jansson (neuron style) writes upper case, serde_json
//! (compact style) lower case.

/// Upper- or lower-case hex digits for `\u00XX` escapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hex {
    /// jansson: `\u001F`.
    Upper,
    /// serde_json: `\u001f`.
    Lower,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// A mask with the high bit set in (at least) the first byte of `w` (little-endian
/// order) that needs escaping. Bytes above the first match may be false positives
/// (borrows propagate upwards), so only the lowest set bit is meaningful.
///
/// The control characters and `"` are one test: `b ^ 0x02` maps 0x00–0x1F onto
/// itself and `"` (0x22) onto 0x20, and nothing else below 0x21, so `b` needs escaping
/// exactly when `b ^ 0x02 < 0x21` or `b` is `\` (see [`needs_escape`]).
#[inline(always)]
fn escape_mask(w: u64) -> u64 {
    // byte < 0x21 after the XOR; valid because 0x21 <= 0x80 (the "hasless" trick).
    let x = w ^ (LO * 0x02);
    let low = x.wrapping_sub(LO * 0x21) & !x;
    let b = w ^ (LO * u64::from(b'\\'));
    let backslash = b.wrapping_sub(LO) & !b;
    (low | backslash) & HI
}

/// Whether `b` is escaped: below 0x20, `"` or `\\`, as two compares (the first
/// covers both the control characters and `"`, see [`escape_mask`]). Written without
/// short-circuits so that a loop over a fixed-size lane becomes vector compares.
#[inline(always)]
fn needs_escape(b: u8) -> bool {
    ((b ^ 0x02) < 0x21) | (b == b'\\')
}

/// Index of the first byte at or after `from` that needs escaping.
#[inline]
fn find_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut base = from;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let m = escape_mask(u64::from_le_bytes(word));
        if m != 0 {
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| needs_escape(b))
        .map(|i| base + i)
}

/// The 8 bytes of `s` at `at` as a little-endian word.
#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Whether the 16 bytes of `s` at `at` or the 16 at `at2` hold a byte to escape.
/// Written as a plain loop over two fixed-size arrays so that the compiler turns it
/// into vector compares, one OR of the two lanes and one mask test (SSE2 `pxor`,
/// `pminub`, `pcmpeqb`, `pmovmskb` on x86-64, NEON on aarch64) without `unsafe`.
#[inline(always)]
fn dirty16x2(s: &[u8], at: usize, at2: usize) -> bool {
    let a: &[u8; 16] = s[at..at + 16].try_into().expect("16 bytes");
    let b: &[u8; 16] = s[at2..at2 + 16].try_into().expect("16 bytes");
    let mut any = false;
    for k in 0..16 {
        any |= needs_escape(a[k]) | needs_escape(b[k]);
    }
    any
}

/// Whether `s` (8 to 32 bytes) has no byte to escape: its first and last 16 bytes
/// (two overlapping vector checks) or, below 16 bytes, its first and last 8 (two
/// overlapping word checks), with no loop and no byte-wise remainder.
#[inline(always)]
fn clean_short(s: &[u8]) -> bool {
    let n = s.len();
    debug_assert!((8..=32).contains(&n));
    if n >= 16 {
        !dirty16x2(s, 0, n - 16)
    } else {
        escape_mask(word(s, 0)) | escape_mask(word(s, n - 8)) == 0
    }
}

/// Whether `s` (0 to 7 bytes) has no byte to escape, checked as one word: for 4 to 7
/// bytes its first and last four, for fewer its first, middle and last byte (which
/// are all of them), the rest of the word filled with a harmless `x`.
#[inline(always)]
fn clean_tiny(s: &[u8]) -> bool {
    let n = s.len();
    debug_assert!(n < 8);
    let w = if n >= 4 {
        let four = |at: usize| -> [u8; 4] { s[at..at + 4].try_into().expect("4 bytes") };
        let (a, b) = (four(0), four(n - 4));
        [a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]]
    } else if n > 0 {
        [s[0], s[n / 2], s[n - 1], b'x', b'x', b'x', b'x', b'x']
    } else {
        return true;
    };
    escape_mask(u64::from_le_bytes(w)) == 0
}

/// Appends `s` (0 to 3 bytes) between quotes as one fixed-size block: its first,
/// middle and last byte placed (they overlap for fewer than three), then the quote.
#[inline(always)]
fn push_quoted_tiny(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    let mut buf = [b'"'; 8];
    if n > 0 {
        buf[1] = s[0];
        buf[1 + n / 2] = s[n / 2];
        buf[n] = s[n - 1];
    }
    buf[n + 1] = b'"';
    let end = out.len() + n + 2;
    out.extend_from_slice(&buf);
    out.truncate(end);
}

/// Appends `s` (`W` to `2W` bytes, at most 32) between quotes without a `memcpy`
/// call: the quoted text is laid out in a stack buffer from `s`'s first and last `W`
/// bytes (two fixed-size copies that overlap), the whole buffer appended as one
/// fixed-size block and the vector cut to length.
#[inline(always)]
fn push_quoted_short<const W: usize>(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    let mut buf = [b'"'; 48];
    let head: &[u8; W] = s[..W].try_into().expect("W bytes");
    let tail: &[u8; W] = s[n - W..].try_into().expect("W bytes");
    buf[1..1 + W].copy_from_slice(head);
    buf[n + 1 - W..n + 1].copy_from_slice(tail);
    buf[n + 1] = b'"';
    let end = out.len() + n + 2;
    out.extend_from_slice(&buf);
    out.truncate(end);
}

/// Appends `s` as a quoted JSON string (out of line: for headers, layouts, metas and
/// arrays; the per-tag value path uses [`write_str_inline`]).
#[inline(never)]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str, hex: Hex) {
    write_str_inline(out, s, hex);
}

/// Appends `s` as a quoted JSON string, its common cases (0 to 32 bytes, nothing to
/// escape) inlined into the caller: as a call of its own they paid a prologue,
/// an epilogue and the call (about 25 instructions on x86-64) for a check and a copy
/// of about 40. Longer strings and strings with escapes go to [`write_str_general`].
#[inline(always)]
pub(crate) fn write_str_inline(out: &mut Vec<u8>, s: &str, hex: Hex) {
    let bytes = s.as_bytes();
    // Most tag names and values are short and need no escaping: copied as fixed-size
    // blocks (see `push_quoted_short`).
    match bytes.len() {
        16..=32 if clean_short(bytes) => push_quoted_short::<16>(out, bytes),
        8..=15 if clean_short(bytes) => push_quoted_short::<8>(out, bytes),
        4..=7 if clean_tiny(bytes) => push_quoted_short::<4>(out, bytes),
        0..=3 if clean_tiny(bytes) => push_quoted_tiny(out, bytes),
        _ => write_str_general(out, bytes, hex),
    }
}

/// Any string: a word-at-a-time search for the next byte to escape, the clean run
/// before it copied in one go.
#[inline(never)]
fn write_str_general(out: &mut Vec<u8>, bytes: &[u8], hex: Hex) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(i) = find_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        write_escape(out, bytes[i], hex);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cold]
fn write_escape(out: &mut Vec<u8>, b: u8, hex: Hex) {
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => 0,
    };
    if short != 0 {
        out.extend_from_slice(&[b'\\', short]);
    } else {
        let digits: &[u8; 16] = match hex {
            Hex::Upper => b"0123456789ABCDEF",
            Hex::Lower => b"0123456789abcdef",
        };
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            digits[usize::from(b >> 4)],
            digits[usize::from(b & 0xf)],
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, hex: Hex) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s, hex);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_jansson_and_serde_json() {
        let s = "a\"b\\c/d\u{7f}é\n\r\t\u{8}\u{c}\u{1}\u{1f}";
        assert_eq!(
            esc(s, Hex::Upper),
            "\"a\\\"b\\\\c/d\u{7f}é\\n\\r\\t\\b\\f\\u0001\\u001F\""
        );
        assert_eq!(esc(s, Hex::Lower), serde_json::to_string(s).unwrap());
    }

    /// The definition the word and vector checks are held to: below 0x20, `"`, `\\`.
    fn is_escaped(b: u8) -> bool {
        b < 0x20 || b == b'"' || b == b'\\'
    }

    #[test]
    fn the_two_compare_test_is_exactly_the_escaped_bytes() {
        // `needs_escape` folds `"` into the control range through `b ^ 0x02`; every
        // byte value is checked, so an off-by-one bound (0x22 would take in `#`) or
        // a wrong XOR fails here.
        for b in 0..=255u8 {
            assert_eq!(needs_escape(b), is_escaped(b), "byte {b:#04x}");
        }
    }

    #[test]
    fn the_word_mask_finds_the_first_escaped_byte() {
        // Every byte value at every position of a word of harmless bytes, and behind
        // an earlier escaped byte: the lowest flagged byte is the first escaped one.
        for fill in [b'x', b' ', b'#', b'!', 0x80, 0xff] {
            for b in 0..=255u8 {
                for pos in 0..8 {
                    let mut w = [fill; 8];
                    w[pos] = b;
                    let m = escape_mask(u64::from_le_bytes(w));
                    let first = w.iter().position(|&c| is_escaped(c));
                    let found = (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
                    assert_eq!(found, first, "byte {b:#04x} at {pos} among {fill:#04x}");
                }
            }
        }
    }

    #[test]
    fn short_strings_match_serde_json_at_every_position() {
        // 0 to 40 bytes alone (no multi-byte padding around them), so that each of the
        // fixed-size paths (0-3, 4-7, 8-15, 16-32 bytes) meets each byte to escape in
        // each position, and the empty string.
        assert_eq!(esc("", Hex::Lower), "\"\"");
        for special in 0u8..0x80 {
            for len in 1..40 {
                for pos in 0..len {
                    let mut bytes: Vec<u8> = (0..len as u8).map(|i| b'A' + i % 26).collect();
                    bytes[pos] = special;
                    let s = std::str::from_utf8(&bytes).unwrap();
                    assert_eq!(esc(s, Hex::Lower), serde_json::to_string(s).unwrap());
                }
            }
        }
    }

    #[test]
    fn every_position_and_byte_matches_serde_json() {
        // Each byte that matters at every offset within and across 8-byte words, so
        // the word-at-a-time scan is checked against the byte-at-a-time definition.
        for special in 0u8..0x80 {
            for len in 0..40 {
                for pos in 0..len {
                    let mut bytes = vec![b'x'; len];
                    bytes[pos] = special;
                    // Put non-ASCII around to check it is never flagged.
                    let mut s = String::from("é");
                    s.push_str(std::str::from_utf8(&bytes).unwrap());
                    s.push('漢');
                    assert_eq!(esc(&s, Hex::Lower), serde_json::to_string(&s).unwrap());
                }
            }
        }
    }
}
