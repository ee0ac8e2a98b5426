//! Client frame encoding and the RFC 6455 checks fastwebsockets leaves to us.
//!
//! Frames are encoded here rather than with fastwebsockets' `WebSocketWrite`
//! because we need (a) masking that never touches the caller's bytes, into a
//! buffer reused across frames, and (b) the underlying stream back for a
//! proper shutdown (TLS close_notify, TCP FIN), which `WebSocketWrite` hides.

/// Frame opcodes this client writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpCode {
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

/// Largest payload of a control frame (RFC 6455 section 5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// Largest close reason we send: 125 bytes minus the 2-byte code.
pub(crate) const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// Encodes one final (FIN) client frame into `buf`, replacing its contents
/// (see [`append_client_frame`]).
pub(crate) fn encode_client_frame(
    buf: &mut Vec<u8>,
    opcode: OpCode,
    compressed: bool,
    payload: &[u8],
) {
    buf.clear();
    append_client_frame(buf, opcode, compressed, payload);
}

/// Appends one final (FIN) client frame to `buf`, so that a batch of frames
/// goes out in one write; `compressed` sets RSV1, permessage-deflate's mark of
/// a compressed message.
///
/// The payload is copied and masked inside `buf` with a fresh random key
/// (RFC 6455 section 5.3), so the caller's bytes stay intact for a resend.
pub(crate) fn append_client_frame(
    buf: &mut Vec<u8>,
    opcode: OpCode,
    compressed: bool,
    payload: &[u8],
) {
    let len = payload.len();
    buf.reserve(14 + len);
    buf.push(0x80 | if compressed { 0x40 } else { 0 } | opcode as u8);
    // Second byte: MASK bit plus the 7-bit length or an extended-length marker.
    if len < 126 {
        buf.push(0x80 | len as u8);
    } else if let Ok(len16) = u16::try_from(len) {
        buf.push(0x80 | 126);
        buf.extend_from_slice(&len16.to_be_bytes());
    } else {
        buf.push(0x80 | 127);
        buf.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask: [u8; 4] = rand::random();
    buf.extend_from_slice(&mask);
    let start = buf.len();
    buf.extend_from_slice(payload);
    // XOR masking is its own inverse, so fastwebsockets' (SIMD-friendly) unmask masks.
    fastwebsockets::unmask(&mut buf[start..], mask);
}

/// Builds a Close payload: the code, then the reason cut to fit a control frame
/// (at a character boundary, so it stays valid UTF-8).
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// Close codes an endpoint may put on the wire (RFC 6455 section 7.4 and the
/// IANA registry): 1000-1003, 1007-1014, and 3000-4999 for libraries and
/// applications. 1004 is reserved; 1005, 1006 and 1015 must never be sent.
pub(crate) fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The parsed body of a Close frame from the server.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CloseBody {
    pub code: Option<u16>,
    pub reason: String,
}

/// Validates a Close frame's payload (RFC 6455 section 5.5.1); on error returns
/// the message and the close code to answer with.
pub(crate) fn parse_close(payload: &[u8]) -> Result<CloseBody, (String, u16)> {
    match payload {
        [] => Ok(CloseBody {
            code: None,
            reason: String::new(),
        }),
        [_] => Err(("Close frame with a 1-byte payload".to_owned(), 1002)),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err((format!("Close frame with invalid close code {code}"), 1002));
            }
            let reason = std::str::from_utf8(reason)
                .map_err(|_| ("Close frame reason is not valid UTF-8".to_owned(), 1007))?;
            Ok(CloseBody {
                code: Some(code),
                reason: reason.to_owned(),
            })
        }
    }
}

/// Validates UTF-8 across the fragments of a text message without keeping the
/// message: only a character split between two fragments (at most 3 bytes) is carried.
#[derive(Debug, Default)]
pub(crate) struct Utf8Validator {
    carry: [u8; 4],
    carry_len: usize,
}

/// The text is not valid UTF-8.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Validator {
    /// Checks the next fragment.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        // First complete a character left over from the previous fragment, one byte at a time.
        while self.carry_len > 0 {
            let Some((&byte, rest)) = data.split_first() else {
                return Ok(()); // still incomplete: wait for the next fragment
            };
            data = rest;
            self.carry[self.carry_len] = byte;
            self.carry_len += 1;
            match std::str::from_utf8(&self.carry[..self.carry_len]) {
                Ok(_) => self.carry_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                // A UTF-8 sequence is at most 4 bytes; incomplete at 4 cannot happen,
                // but never index past the array.
                Err(_) if self.carry_len == 4 => return Err(InvalidUtf8),
                Err(_) => {}
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            // error_len() == None: the data ends inside a character that may
            // continue in the next fragment.
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// Checks that the message did not end inside a character.
    pub(crate) fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.carry_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a client frame the way a server would, checking the header.
    fn decode(frame: &[u8]) -> (u8, Vec<u8>) {
        assert_eq!(frame[0] & 0xF0, 0x80, "FIN set, no RSV bits");
        assert_eq!(frame[1] & 0x80, 0x80, "client frames are masked");
        let (len, mut pos) = match frame[1] & 0x7F {
            126 => (u16::from_be_bytes([frame[2], frame[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(frame[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let mask: [u8; 4] = frame[pos..pos + 4].try_into().unwrap();
        pos += 4;
        assert_eq!(frame.len(), pos + len, "no trailing bytes");
        let payload = frame[pos..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        (frame[0] & 0x0F, payload)
    }

    #[test]
    fn frames_round_trip_at_every_length_boundary() {
        let mut buf = Vec::new();
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let copy = payload.clone();
            encode_client_frame(&mut buf, OpCode::Binary, false, &payload);
            assert_eq!(payload, copy, "caller's bytes untouched");
            let (opcode, decoded) = decode(&buf);
            assert_eq!(opcode, 0x2);
            assert_eq!(decoded, payload, "length {len}");
        }
    }

    #[test]
    fn close_payload_cuts_reason_at_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let payload = close_payload(1000, &reason);
        assert!(payload.len() <= MAX_CONTROL_PAYLOAD);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        assert_eq!(&payload[..2], &1000u16.to_be_bytes());
    }

    #[test]
    fn close_codes() {
        for ok in [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(is_valid_close_code(ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            assert!(!is_valid_close_code(bad), "{bad}");
        }
    }

    #[test]
    fn parse_close_bodies() {
        assert_eq!(
            parse_close(&[]).unwrap(),
            CloseBody {
                code: None,
                reason: String::new()
            }
        );
        assert_eq!(parse_close(&[3]).unwrap_err().1, 1002);
        let mut ok = 1001u16.to_be_bytes().to_vec();
        ok.extend_from_slice("bye".as_bytes());
        assert_eq!(
            parse_close(&ok).unwrap(),
            CloseBody {
                code: Some(1001),
                reason: "bye".into()
            }
        );
        assert_eq!(parse_close(&999u16.to_be_bytes()).unwrap_err().1, 1002);
        let mut bad_utf8 = 1000u16.to_be_bytes().to_vec();
        bad_utf8.push(0xFF);
        assert_eq!(parse_close(&bad_utf8).unwrap_err().1, 1007);
    }

    #[test]
    fn utf8_split_at_every_position() {
        let text = "a€𝄞ü z".as_bytes();
        for cut1 in 0..=text.len() {
            for cut2 in cut1..=text.len() {
                let mut v = Utf8Validator::default();
                v.feed(&text[..cut1]).unwrap();
                v.feed(&text[cut1..cut2]).unwrap();
                v.feed(&text[cut2..]).unwrap();
                v.finish().unwrap();
            }
        }
    }

    #[test]
    fn utf8_rejects_bad_sequences_across_fragments() {
        let mut v = Utf8Validator::default();
        v.feed(&[0xE2, 0x82]).unwrap(); // first two bytes of '€'
        assert_eq!(v.feed(&[0x41]), Err(InvalidUtf8));

        let mut v = Utf8Validator::default();
        v.feed(&[0xF0, 0x9D]).unwrap();
        assert_eq!(v.finish(), Err(InvalidUtf8), "message ends mid-character");

        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(&[b'o', b'k', 0xFF]), Err(InvalidUtf8));

        let mut v = Utf8Validator::default();
        // Overlong encoding of '/', split across fragments.
        v.feed(&[0xC0]).unwrap_err();
    }
}
