//! permessage-deflate (RFC 7692): the offer, the checks of the server's answer, and
//! the compressor and decompressor of one connection.
//!
//! The deflate itself is flate2's default backend, the pure-Rust miniz_oxide. It
//! always uses a 32 KiB (15-bit) window and cannot be told a smaller one, so the
//! offer does not include `client_max_window_bits` and a server cannot ask for a
//! smaller client window. Decompression with a 32 KiB window reads every smaller
//! window, so any `server_max_window_bits` the server picks is fine.
//!
//! Memory per connection (miniz_oxide 0.9): the compressor holds its 32 KiB
//! dictionary, 64 KiB hash chains, a 64 KiB hash table, a 64 KiB code buffer and an
//! 83 KiB output buffer (about 310 KiB), the decompressor its 32 KiB window and
//! tables (about 43 KiB), plus a 16 KiB scratch buffer for reading: about 370 KiB in
//! all, whatever the message sizes. Compressed output is written through a buffer
//! that grows to the largest compressed message and is shrunk back like the frame
//! buffer.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The `Sec-WebSocket-Extensions` value of our offer.
pub(crate) const OFFER: &str = "permessage-deflate";

/// The tail every sync-flushed deflate block ends with; RFC 7692 section 7.2.1 has
/// the sender remove it and the receiver append it again.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What the server agreed to (RFC 7692 section 7.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Agreed {
    /// The server resets its compression context after each message.
    pub server_no_context_takeover: bool,
    /// We must reset ours after each message.
    pub client_no_context_takeover: bool,
    /// The server's window, 8 to 15 bits (15 when not said).
    pub server_max_window_bits: u8,
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
    let mut agreed = Agreed {
        server_max_window_bits: 15,
        ..Agreed::default()
    };
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
