//! Lets compressed frames through fastwebsockets' reader.
//!
//! fastwebsockets 0.10 rejects every frame with RSV1 set and checks the UTF-8 of
//! unfragmented text frames, both of which break on permessage-deflate frames. When
//! the extension is negotiated, this reader sits between the socket and
//! fastwebsockets: it follows the frame headers in the byte stream, and for each
//! data frame that starts a message it records whether RSV1 was set (and whether it
//! was text), then clears RSV1 and turns a compressed text frame into a binary one.
//! The connection's reader takes these records in frame order and decompresses
//! (and checks) the message itself. Control and continuation frames pass
//! unchanged, so an RSV1 on them is still refused by fastwebsockets.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// How a data message started on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageStart {
    /// RSV1 was set: the message is compressed.
    pub compressed: bool,
    /// The opcode was Text (it is handed on as Binary when compressed).
    pub text: bool,
}

/// The records of message starts, in wire order, shared with the connection's reader.
pub(crate) type Starts = Arc<Mutex<VecDeque<MessageStart>>>;

/// Where in a frame the next byte belongs.
#[derive(Debug)]
enum Position {
    /// In the header, `have` bytes of `need` read (need grows once the length byte is seen).
    Header { have: usize, need: usize, len: u64 },
    /// In the payload, this many bytes left.
    Payload(u64),
}

/// The reader that rewrites data frame headers (see the module documentation).
pub(crate) struct RsvReader<R> {
    inner: R,
    /// False without permessage-deflate: bytes pass untouched, and an RSV1 is
    /// refused by fastwebsockets as it must be.
    enabled: bool,
    position: Position,
    starts: Starts,
}

impl<R> RsvReader<R> {
    pub(crate) fn new(inner: R, enabled: bool, starts: Starts) -> Self {
        RsvReader {
            inner,
            enabled,
            position: Position::Header {
                have: 0,
                need: 2,
                len: 0,
            },
            starts,
        }
    }

    /// Walks the newly read bytes, rewriting first header bytes in place.
    fn track(&mut self, bytes: &mut [u8]) {
        let mut i = 0;
        while i < bytes.len() {
            match &mut self.position {
                Position::Payload(left) => {
                    let take = (*left).min((bytes.len() - i) as u64);
                    *left -= take;
                    i += take as usize;
                    if *left == 0 {
                        self.position = Position::Header {
                            have: 0,
                            need: 2,
                            len: 0,
                        };
                    }
                }
                Position::Header { have, need, len } => {
                    let byte = bytes[i];
                    match *have {
                        0 => {
                            let opcode = byte & 0x0F;
                            if opcode == 0x1 || opcode == 0x2 {
                                let compressed = byte & 0x40 != 0;
                                let text = opcode == 0x1;
                                self.starts
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push_back(MessageStart { compressed, text });
                                if compressed {
                                    bytes[i] = (byte & !0x40 & 0xF0) | 0x2;
                                }
                            }
                        }
                        1 => {
                            let masked = byte & 0x80 != 0;
                            let short = u64::from(byte & 0x7F);
                            let ext = match short {
                                126 => 2,
                                127 => 8,
                                _ => 0,
                            };
                            *need = 2 + ext + if masked { 4 } else { 0 };
                            *len = if ext == 0 { short } else { 0 };
                        }
                        n if n < 2 + extended_len_bytes(*need) => {
                            *len = (*len << 8) | u64::from(byte);
                        }
                        _ => {} // masking key: fastwebsockets refuses masked server frames
                    }
                    *have += 1;
                    i += 1;
                    if *have == *need && *have >= 2 {
                        self.position = if *len == 0 {
                            Position::Header {
                                have: 0,
                                need: 2,
                                len: 0,
                            }
                        } else {
                            Position::Payload(*len)
                        };
                    }
                }
            }
        }
    }
}

/// The number of extended-length bytes of a header of `need` bytes (masked or not).
fn extended_len_bytes(need: usize) -> usize {
    match need {
        2 | 6 => 0,
        4 | 8 => 2,
        _ => 8,
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for RsvReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let (true, Poll::Ready(Ok(()))) = (this.enabled, &result) {
            let filled = buf.filled_mut();
            let new = &mut filled[before..];
            this.track(new);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first: u8, payload_len: usize) -> Vec<u8> {
        let mut f = vec![first];
        if payload_len < 126 {
            f.push(payload_len as u8);
        } else if payload_len <= 0xFFFF {
            f.push(126);
            f.extend_from_slice(&(payload_len as u16).to_be_bytes());
        } else {
            f.push(127);
            f.extend_from_slice(&(payload_len as u64).to_be_bytes());
        }
        f.extend(std::iter::repeat_n(0xC1, payload_len)); // payload bytes that look like headers
        f
    }

    #[test]
    fn rewrites_only_data_frame_starts_in_any_chunking() {
        let mut stream = Vec::new();
        stream.extend(frame(0xC1, 5)); // compressed text
        stream.extend(frame(0x89, 3)); // ping
        stream.extend(frame(0x42, 300)); // compressed binary, not final
        stream.extend(frame(0x80, 70_000)); // continuation
        stream.extend(frame(0x81, 0)); // plain text, empty
        let mut expected = stream.clone();
        expected[0] = 0x82;
        let third = 2 + 5 + 2 + 3;
        expected[third] = 0x02;
        for chunk in [1, 2, 3, 7, 1000, stream.len()] {
            let starts: Starts = Arc::default();
            let mut reader = RsvReader::new(tokio::io::empty(), true, starts.clone());
            let mut out = stream.clone();
            for piece in out.chunks_mut(chunk) {
                reader.track(piece);
            }
            assert_eq!(out, expected, "chunk size {chunk}");
            let starts: Vec<_> = starts.lock().unwrap().drain(..).collect();
            let s = |compressed, text| MessageStart { compressed, text };
            assert_eq!(starts, [s(true, true), s(true, false), s(false, true)]);
        }
    }
}
