//! String escapes that simd-json would decode into a different value.
//!
//! simd-json decodes a lone surrogate such as `\ud800` to U+0000 instead of rejecting
//! it, so `"n\ud800"` would silently become `"n\0"` and the tags `a\ud800` and
//! `a\udbff` would collide. Every JSON text is therefore scanned for escapes before
//! it reaches simd-json; the scan looks only at backslashes (found with `memchr`), so
//! it costs nothing measurable on input without escapes.
//!
//! On the error path only, the bad escapes are patched into harmless ones of the same
//! length so that simd-json can build the tape, and the bad string is found again in
//! the tape by its ordinal (the tape lists strings, keys included, in document order).
//! That lets the error name the snapshot, the tag and the field like every other
//! parse error.

/// The first escape in a JSON text that is not a valid JSON escape, or a surrogate
/// that is not part of a high+low pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadEscape {
    /// Byte offset of the backslash.
    pub at: usize,
    /// How many bytes the bad escape spans (1 to 6).
    pub len: usize,
    /// What is wrong, for the error message.
    pub what: String,
}

/// Finds the first bad escape at or after `from`. Backslashes only occur inside
/// strings in valid JSON (anything else is rejected by simd-json later), so walking
/// from one escape to the next without tracking quotes is exact.
pub(crate) fn find_bad_escape(text: &[u8], from: usize) -> Option<BadEscape> {
    let mut i = from;
    while let Some(off) = memchr::memchr(b'\\', &text[i..]) {
        let at = i + off;
        match check_escape(text, at) {
            Ok(len) => i = at + len,
            Err((len, what)) => return Some(BadEscape { at, len, what }),
        }
        if i >= text.len() {
            break;
        }
    }
    None
}

/// The length of the valid escape at `at`, or the length and description of the bad
/// one.
fn check_escape(text: &[u8], at: usize) -> Result<usize, (usize, String)> {
    let Some(&c) = text.get(at + 1) else {
        return Err((1, "a backslash ends the text".to_owned()));
    };
    match c {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(2),
        b'u' => {
            let Some(unit) = hex4(text, at + 2) else {
                return Err((
                    2,
                    "\\u must be followed by four hex digits (\\u0000 to \\uffff)".to_owned(),
                ));
            };
            match unit {
                0xD800..=0xDBFF => {
                    let low = (text.get(at + 6) == Some(&b'\\') && text.get(at + 7) == Some(&b'u'))
                        .then(|| hex4(text, at + 8))
                        .flatten();
                    match low {
                        Some(0xDC00..=0xDFFF) => Ok(12),
                        _ => Err((
                            6,
                            format!(
                                "lone surrogate \\u{unit:04x}: a high surrogate must be followed \
                                 by a low one (\\udc00 to \\udfff)"
                            ),
                        )),
                    }
                }
                0xDC00..=0xDFFF => Err((
                    6,
                    format!(
                        "lone surrogate \\u{unit:04x}: a low surrogate must follow a high one \
                         (\\ud800 to \\udbff)"
                    ),
                )),
                _ => Ok(6),
            }
        }
        _ => {
            let shown = std::str::from_utf8(&text[at + 1..text.len().min(at + 5)])
                .ok()
                .and_then(|s| s.chars().next())
                .map_or_else(|| format!("byte 0x{c:02x}"), |ch| format!("{ch:?}"));
            Err((
                2,
                format!(
                    "invalid escape \\ followed by {shown}; JSON escapes are \\\" \\\\ \\/ \\b \
                     \\f \\n \\r \\t and \\uXXXX"
                ),
            ))
        }
    }
}

fn hex4(text: &[u8], at: usize) -> Option<u32> {
    let digits = text.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc * 16 + v)
    })
}

/// Replaces every bad escape (starting with `first`) by a valid escape of the same
/// length, so that the text can be parsed to find where the first one is. The
/// replacements keep the quote structure: none of them contains a quote.
pub(crate) fn patch_all(text: &mut [u8], first: &BadEscape) {
    let mut bad = Some(first.clone());
    while let Some(b) = bad {
        let with: &[u8] = match b.len {
            6 => b"\\u0020",
            2 => b"\\\\",
            _ => b" ",
        };
        text[b.at..b.at + b.len].copy_from_slice(with);
        bad = find_bad_escape(text, b.at + b.len);
    }
}

/// The 0-based ordinal (in document order) of the string that contains byte `at`,
/// and the raw text of that string (without quotes, cut to a readable length).
pub(crate) fn string_containing(text: &[u8], at: usize) -> (usize, String) {
    let mut ordinal = 0usize;
    let mut start = 0usize;
    let mut in_string = false;
    let mut i = 0;
    while i < at {
        match text[i] {
            b'\\' if in_string => i += 1,
            b'"' if in_string => in_string = false,
            b'"' => {
                in_string = true;
                ordinal += 1;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let mut end = at;
    while end < text.len() {
        match text[end] {
            b'\\' => end += 1,
            b'"' => break,
            _ => {}
        }
        end += 1;
    }
    let raw = String::from_utf8_lossy(&text[start..end.min(text.len())]);
    let shown = match raw.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &raw[..cut]),
        None => raw.into_owned(),
    };
    (ordinal.saturating_sub(1), shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(s: &str) -> Option<(usize, usize)> {
        find_bad_escape(s.as_bytes(), 0).map(|b| (b.at, b.len))
    }

    #[test]
    fn valid_escapes_pass() {
        assert_eq!(bad(r#""a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\uffff""#), None);
    }

    #[test]
    fn bad_escapes_are_found() {
        assert_eq!(bad(r#""n\ud800""#), Some((2, 6)));
        assert_eq!(bad(r#""n\udbff\u0041""#), Some((2, 6)));
        assert_eq!(bad(r#""n\udc00""#), Some((2, 6)));
        assert_eq!(bad(r#""n\x""#), Some((2, 2)));
        assert_eq!(bad(r#""n\u12g4""#), Some((2, 2)));
        assert_eq!(bad("\"n\\"), Some((2, 1)));
        // `\\ud800` is an escaped backslash followed by text, not a surrogate.
        assert_eq!(bad(r#""n\\ud800""#), None);
    }

    #[test]
    fn ordinal_counts_keys_and_escaped_quotes() {
        let t = br#"{"a\"":"x","b":"y\ud800z"}"#;
        let b = find_bad_escape(t, 0).unwrap();
        assert_eq!(string_containing(t, b.at), (3, r"y\ud800z".to_owned()));
    }
}
