//! What parsing a body costs in memory, known before parsing it: simd-json builds a
//! tape node per JSON value and an index entry per structural character, so a body of
//! many tiny values (`[0,0,0,…]`) takes many times its size. The API reserves this
//! much of its parse budget before it parses.

/// An upper bound of the bytes the parse of `body` allocates at its peak: a padded
/// copy and a string buffer (twice the body), one tape node per value and one 4-byte
/// index entry per structural character. Counted over the raw bytes, strings included,
/// so it errs on the high side, never the low.
pub fn parse_memory_estimate(body: &[u8]) -> usize {
    let mut values = 1usize;
    let mut quotes = 0usize;
    for &b in body {
        match b {
            b',' | b':' | b'[' | b'{' => values += 1,
            b'"' => quotes += 1,
            _ => {}
        }
    }
    let node = std::mem::size_of::<simd_json::Node<'static>>();
    2 * body.len() + values * (node + 4) + quotes * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_values_cost_far_more_than_their_bytes() {
        let dense = "0,".repeat(1000);
        let words = format!("\"{}\"", "a".repeat(2000));
        assert!(parse_memory_estimate(dense.as_bytes()) > 10 * dense.len());
        assert!(parse_memory_estimate(words.as_bytes()) < 3 * words.len());
    }
}
