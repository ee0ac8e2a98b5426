//! permessage-deflate (RFC 7692): the offer, the checks of the server's answer, and
//! the compressor and decompressor of one connection.
//!
//! The deflate itself is flate2 on the pure-Rust zlib-rs backend. The compressor
//! always uses a 32 KiB (15-bit) window, so the offer does not include
//! `client_max_window_bits` and a server cannot ask for a smaller client window.
//!
//! Why zlib-rs and not flate2's default backend, miniz_oxide: miniz_oxide inflates
//! a back-reference to before the start of the data (or before a context reset under
//! `server_no_context_takeover`) as zeros instead of failing, so a hostile or broken
//! server's message arrived as made-up bytes. zlib-rs fails such a stream ("invalid
//! distance too far back"), which ends the connection with Close 1007.
//!
//! Not checked: a distance beyond the server's announced `server_max_window_bits` but
//! within the 32 KiB the decompressor always keeps (zlib-rs allocates the full window
//! whatever it is told, and zlib only checks distances against the data it holds).
//! Such a reference reads bytes the server really sent, so the message is what the
//! server meant; only the server's promise about its window is broken.
//!
//! Memory per connection (zlib-rs 0.6, counted with a counting allocator): the
//! compressor's state at level 6 with a 15-bit window, about 370 KiB, the
//! decompressor's 32 KiB window and tables, about 46 KiB, plus a 16 KiB scratch buffer
//! for reading: about 430 KiB, whatever the message sizes.
//! Compressed output is written through a buffer that grows to the largest compressed
//! message and is shrunk back like the frame buffer.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The `Sec-WebSocket-Extensions` value of our offer.
pub(crate) const OFFER: &str = "permessage-deflate";

/// The tail every sync-flushed deflate block ends with; RFC 7692 section 7.2.1 has
/// the sender remove it and the receiver append it again.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What the server agreed to (RFC 7692 section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// The server resets its compression context after each message.
    pub server_no_context_takeover: bool,
    /// We must reset ours after each message.
    pub client_no_context_takeover: bool,
    /// The server's window, 8 to 15 bits (15 when not said).
    pub server_max_window_bits: u8,
}

impl Default for Agreed {
    /// `permessage-deflate` without parameters: context takeover, 15-bit windows.
    fn default() -> Self {
        Agreed {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
        }
    }
}

/// Checks the server's `Sec-WebSocket-Extensions` answer to our offer (all of its
/// header lines joined): exactly one `permessage-deflate` with parameters we
/// understand, each at most once (RFC 7692 section 5 and 7.1). `Ok(None)`: the
/// server declined (no extension).
pub(crate) fn parse_response(value: &str) -> Result<Option<Agreed>, String> {
    let elements: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let [element] = elements.as_slice() else {
        return match elements.len() {
            0 => Ok(None),
            _ => Err(format!(
                "the server enabled {} extensions (`{value}`) but only permessage-deflate was offered",
                elements.len()
            )),
        };
    };
    let mut parts = element.split(';').map(str::trim);
    let name = parts.next().unwrap_or_default();
    if !name.eq_ignore_ascii_case("permessage-deflate") {
        return Err(format!(
            "the server enabled extension `{name}` but only permessage-deflate was offered"
        ));
    }
    let mut agreed = Agreed::default();
    let mut seen = Vec::new();
    for param in parts {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (
                k.trim().to_ascii_lowercase(),
                Some(v.trim().trim_matches('"')),
            ),
            None => (param.to_ascii_lowercase(), None),
        };
        if seen.contains(&key) {
            return Err(format!(
                "permessage-deflate parameter `{key}` appears twice"
            ));
        }
        seen.push(key.clone());
        match (key.as_str(), value) {
            ("server_no_context_takeover", None) => agreed.server_no_context_takeover = true,
            ("client_no_context_takeover", None) => agreed.client_no_context_takeover = true,
            ("server_max_window_bits", Some(bits)) => {
                agreed.server_max_window_bits = match bits.parse::<u8>() {
                    Ok(b @ 8..=15) => b,
                    _ => {
                        return Err(format!(
                            "permessage-deflate server_max_window_bits={bits} is not 8 to 15"
                        ))
                    }
                }
            }
            ("client_max_window_bits", _) => {
                return Err(
                    "the server set permessage-deflate client_max_window_bits, which the client did not offer (its deflate always uses a 32 KiB window)".into(),
                )
            }
            _ => {
                return Err(format!(
                    "unknown or malformed permessage-deflate parameter `{param}`"
                ))
            }
        }
    }
    Ok(Some(agreed))
}

/// Compresses the messages we send.
pub(crate) struct Deflater {
    compress: Compress,
    reset_each: bool,
}

impl Deflater {
    pub(crate) fn new(agreed: &Agreed) -> Self {
        Deflater {
            // Raw deflate (no zlib header), the default level 6.
            compress: Compress::new(Compression::default(), false),
            reset_each: agreed.client_no_context_takeover,
        }
    }

    /// Compresses one message into `out` (replacing its contents): a sync flush with
    /// its empty-block tail removed (RFC 7692 section 7.2.1). With context takeover
    /// the next message may refer back into this one.
    pub(crate) fn compress(&mut self, message: &[u8], out: &mut Vec<u8>) {
        out.clear();
        // Deflate can expand incompressible data slightly: room for it and the tail.
        out.reserve(message.len() + message.len() / 1000 + 64);
        let start_in = self.compress.total_in();
        loop {
            let consumed = (self.compress.total_in() - start_in) as usize;
            let status = self
                .compress
                .compress_vec(&message[consumed..], out, FlushCompress::Sync)
                .expect("deflate of in-memory data cannot fail");
            let consumed = (self.compress.total_in() - start_in) as usize;
            // Done when all input is in and the flush fit (room left in `out`).
            if consumed == message.len() && out.len() < out.capacity() {
                break;
            }
            debug_assert!(matches!(status, Status::Ok | Status::BufError));
            out.reserve(out.capacity().max(64));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if self.reset_each {
            self.compress.reset();
        }
    }
}

/// Decompresses the messages the server sends, piece by piece through a scratch
/// buffer, so the caller checks the size limit before keeping each piece.
pub(crate) struct Inflater {
    decompress: Decompress,
    reset_each: bool,
    scratch: Box<[u8]>,
}

/// Size of the buffer decompressed output goes through.
const SCRATCH: usize = 16 * 1024;

impl Inflater {
    pub(crate) fn new(agreed: &Agreed) -> Self {
        Inflater {
            // Raw deflate (no zlib header). zlib-rs refuses a reference to before the
            // data it holds instead of reading zeroed memory.
            decompress: Decompress::new(false),
            // Not required (our 32 KiB history covers anything the server refers
            // to), but keeps nothing alive the server promised not to use.
            reset_each: agreed.server_no_context_takeover,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
        }
    }

    /// Decompresses one frame's payload; `last`: the message's final frame (the tail
    /// is appended). Each piece of output goes to `sink`; an error of `sink` stops
    /// the work and is returned. Invalid deflate data is an error message.
    pub(crate) fn inflate<E>(
        &mut self,
        payload: &[u8],
        last: bool,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Result<(), E>, String> {
        let inputs: [&[u8]; 2] = [payload, if last { &TAIL } else { &[] }];
        for input in inputs {
            let mut offset = 0;
            loop {
                let before_in = self.decompress.total_in();
                let before_out = self.decompress.total_out();
                self.decompress
                    .decompress(&input[offset..], &mut self.scratch, FlushDecompress::Sync)
                    .map_err(|e| format!("compressed message is not valid deflate data: {e}"))?;
                offset += (self.decompress.total_in() - before_in) as usize;
                let produced = (self.decompress.total_out() - before_out) as usize;
                if let Err(e) = sink(&self.scratch[..produced]) {
                    return Ok(Err(e));
                }
                // More output may be pending while the scratch buffer was full.
                if offset >= input.len() && produced < self.scratch.len() {
                    break;
                }
                if produced == 0 && offset < input.len() && self.decompress.total_in() == before_in
                {
                    return Err("compressed message is not valid deflate data: no progress".into());
                }
            }
        }
        if last && self.reset_each {
            self.decompress.reset(false);
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7692_examples() {
        // Section 7.2.3.1 and 7.2.3.2: "Hello" compressed, then again with the
        // context taken over.
        let agreed = parse_response("permessage-deflate").unwrap().unwrap();
        let mut inflater = Inflater::new(&agreed);
        for payload in [
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
            &[0xf2, 0x00, 0x11, 0x00, 0x00],
        ] {
            let mut out = Vec::new();
            inflater
                .inflate(payload, true, |b| {
                    out.extend_from_slice(b);
                    Ok::<(), ()>(())
                })
                .unwrap()
                .unwrap();
            assert_eq!(out, b"Hello");
        }
    }

    fn round_trip(agreed: &Agreed, messages: &[Vec<u8>]) -> Vec<usize> {
        let mut deflater = Deflater::new(agreed);
        let mut inflater = Inflater::new(&Agreed::default());
        let mut sizes = Vec::new();
        let mut wire = Vec::new();
        for m in messages {
            deflater.compress(m, &mut wire);
            sizes.push(wire.len());
            let mut out = Vec::new();
            inflater
                .inflate(&wire, true, |b| {
                    out.extend_from_slice(b);
                    Ok::<(), ()>(())
                })
                .unwrap()
                .unwrap();
            assert_eq!(&out, m);
        }
        sizes
    }

    #[test]
    fn context_takeover_shrinks_repeated_messages_unless_refused() {
        let message =
            br#"{"node": "sim", "group": "fast", "timestamp": 1, "values": {"counter": 1}}"#
                .to_vec();
        let messages = vec![message.clone(), message.clone(), message];
        let taken_over = round_trip(&Agreed::default(), &messages);
        assert!(taken_over[1] < taken_over[0] / 3, "{taken_over:?}");
        let agreed = parse_response("permessage-deflate; client_no_context_takeover")
            .unwrap()
            .unwrap();
        let fresh = round_trip(&agreed, &messages);
        assert_eq!(fresh[1], fresh[0], "no reference to the previous message");
    }

    #[test]
    fn the_vectors_compress_in_one_pass() {
        // Each of the 13 values-format vector messages once, in order: the ratio a
        // server sees for data it has not seen before (README "Compression"). A copy of
        // tagwire-encode's vectors, so the published package is self-contained; a daemon
        // test (push_example.rs) keeps it equal to the original.
        let vectors = include_str!("../tests/data/values.neuron.txt");
        let messages: Vec<Vec<u8>> = vectors.lines().map(|l| l.as_bytes().to_vec()).collect();
        let before: usize = messages.iter().map(Vec::len).sum();
        let after: usize = round_trip(&Agreed::default(), &messages).iter().sum();
        eprintln!(
            "vectors, one pass: {before} -> {after} bytes ({:.2}x)",
            before as f64 / after as f64
        );
        assert!(after * 2 < before, "{before} -> {after}");
    }

    #[test]
    fn large_and_incompressible_messages_round_trip() {
        let random: Vec<u8> = (0..200_000).map(|_| rand::random::<u8>()).collect();
        let zeros = vec![0u8; 300_000];
        round_trip(&Agreed::default(), &[random, zeros, Vec::new()]);
    }

    /// Writes a raw deflate stream bit by bit (RFC 1951 section 3.1.1: values LSB
    /// first, Huffman codes MSB first), with fixed Huffman codes (section 3.2.6).
    #[derive(Default)]
    struct Bits {
        out: Vec<u8>,
        used: u32,
    }

    impl Bits {
        fn value(&mut self, value: u32, count: u32) {
            for i in 0..count {
                if self.used.is_multiple_of(8) {
                    self.out.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                *self.out.last_mut().unwrap() |= bit << (self.used % 8);
                self.used += 1;
            }
        }
        fn code(&mut self, code: u32, len: u32) {
            for i in (0..len).rev() {
                self.value((code >> i) & 1, 1);
            }
        }
        /// A non-final block with fixed codes.
        fn fixed_block(&mut self) {
            self.value(0, 1);
            self.value(1, 2);
        }
        fn literal(&mut self, byte: u8) {
            match byte {
                0..=143 => self.code(0x30 + u32::from(byte), 8),
                _ => self.code(0x190 + u32::from(byte) - 144, 9),
            }
        }
        /// Length 3 (code 257) at `distance` (codes 0..=29 with their extra bits).
        fn copy3(&mut self, distance: u32) {
            self.code(1, 7); // 257 - 256
            let (code, base, extra) = (0u32..30)
                .map(|c| {
                    let extra = if c < 4 { 0 } else { c / 2 - 1 };
                    let base = if c < 4 {
                        c + 1
                    } else {
                        (2 + (c & 1)) * (1 << extra) + 1
                    };
                    (c, base, extra)
                })
                .rfind(|&(_, base, _)| base <= distance)
                .unwrap();
            self.code(code, 5);
            self.value(distance - base, extra);
        }
        /// End of block, then the 3-bit header of the sync flush's empty stored block,
        /// padded to a byte: the message as permessage-deflate sends it (tail removed).
        fn finish(mut self) -> Vec<u8> {
            self.code(0, 7);
            self.value(0, 3);
            self.out
        }
    }

    fn inflate_all(inflater: &mut Inflater, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        inflater
            .inflate(payload, true, |b| {
                out.extend_from_slice(b);
                Ok::<(), ()>(())
            })
            .map(|_| out)
    }

    fn message(literals: &[u8], distance: Option<u32>) -> Vec<u8> {
        let mut bits = Bits::default();
        bits.fixed_block();
        for &b in literals {
            bits.literal(b);
        }
        if let Some(distance) = distance {
            bits.copy3(distance);
        }
        bits.finish()
    }

    #[test]
    fn crafted_streams_inflate_as_written() {
        // The writer itself, checked against a valid reference: "ab" then 3 from 2 back.
        let mut inflater = Inflater::new(&Agreed::default());
        assert_eq!(
            inflate_all(&mut inflater, &message(b"ab", Some(2))).unwrap(),
            b"ababa"
        );
        let mut inflater = Inflater::new(&Agreed::default());
        let long = vec![b'x'; 700];
        let mut expected = long.clone();
        expected.extend_from_slice(b"xxx");
        assert_eq!(
            inflate_all(&mut inflater, &message(&long, Some(600))).unwrap(),
            expected
        );
    }

    #[test]
    fn a_reference_before_the_start_of_the_data_is_refused() {
        // "a", then 3 bytes from 5 back: there is only 1 byte. miniz_oxide made "a\0\0\0".
        let mut inflater = Inflater::new(&Agreed::default());
        let err = inflate_all(&mut inflater, &message(b"a", Some(5))).unwrap_err();
        assert!(err.contains("not valid deflate data"), "{err}");
        assert!(err.contains("too far back"), "{err}");
    }

    #[test]
    fn a_reference_across_a_context_reset_is_refused() {
        // With server_no_context_takeover, the second message may not refer to the first.
        let agreed = parse_response("permessage-deflate; server_no_context_takeover")
            .unwrap()
            .unwrap();
        let mut inflater = Inflater::new(&agreed);
        assert_eq!(
            inflate_all(&mut inflater, &message(b"hello", None)).unwrap(),
            b"hello"
        );
        let err = inflate_all(&mut inflater, &message(b"", Some(5))).unwrap_err();
        assert!(err.contains("too far back"), "{err}");

        // With context takeover it may: the same bytes inflate to "hel".
        let mut inflater = Inflater::new(&Agreed::default());
        inflate_all(&mut inflater, &message(b"hello", None)).unwrap();
        assert_eq!(
            inflate_all(&mut inflater, &message(b"", Some(5))).unwrap(),
            b"hel"
        );
    }

    #[test]
    fn answers_are_checked() {
        let ok = parse_response(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
        )
        .unwrap()
        .unwrap();
        assert!(ok.server_no_context_takeover && !ok.client_no_context_takeover);
        assert_eq!(ok.server_max_window_bits, 10);
        assert_eq!(parse_response("").unwrap(), None);
        for bad in [
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; x-foo",
            "permessage-deflate, permessage-deflate",
            "x-webkit-deflate-frame",
        ] {
            assert!(parse_response(bad).is_err(), "{bad}");
        }
    }
}
