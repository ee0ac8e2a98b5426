//! NDJSON in, messages out: the loop behind `tagwire encode` and the
//! `encode_ndjson` example, as a library function so that a test can drive it.
//!
//! Everything it needs is allocated once per call and reused for every line (the line
//! buffer, the [`Parser`] with its tape, the message buffer), so the steady state
//! allocates nothing per snapshot; `tests/no_alloc.rs` counts it.

use std::fmt;
use std::io::{self, Read, Write};

use tagwire_model::{Parser, SnapshotError};

use crate::Encoder;

/// What [`encode_ndjson`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NdjsonSummary {
    /// Lines read, blank ones included (the numbering of error positions).
    pub lines: u64,
    /// Messages written.
    pub sent: u64,
    /// Snapshots that were valid but not to be sent (`upload_err = false` and only
    /// error tags).
    pub skipped: u64,
    /// Lines rejected (each reported to the caller's `on_error`).
    pub bad: u64,
}

/// Why [`encode_ndjson`] stopped before the end of its input.
#[derive(Debug)]
pub enum NdjsonError {
    /// Reading the input failed.
    Read(io::Error),
    /// Writing the output failed.
    Write(io::Error),
}

impl fmt::Display for NdjsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cause is left to `source()`, so `{:#}`-style reports print it once.
        match self {
            NdjsonError::Read(_) => f.write_str("cannot read the input"),
            NdjsonError::Write(_) => f.write_str("cannot write the output"),
        }
    }
}

impl std::error::Error for NdjsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NdjsonError::Read(e) | NdjsonError::Write(e) => Some(e),
        }
    }
}

/// Reads NDJSON snapshots from `input` (blank lines skipped, `\r\n` accepted), writes
/// one encoded message per line to `output`, and hands each bad line's error (located
/// at its line number) to `on_error` before going on with the next. `now_ms` gives the
/// timestamp of snapshots that have none. `output` is flushed at the end.
pub fn encode_ndjson(
    input: impl Read,
    mut output: impl Write,
    encoder: &mut Encoder,
    mut now_ms: impl FnMut() -> u64,
    mut on_error: impl FnMut(SnapshotError),
) -> Result<NdjsonSummary, NdjsonError> {
    let mut summary = NdjsonSummary::default();
    let mut parser = Parser::new();
    let mut lines = Lines::new(input);
    let mut message = Vec::with_capacity(4096);
    while let Some(mut line) = lines.next_line().map_err(NdjsonError::Read)? {
        summary.lines += 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parser.parse(line, now_ms()) {
            Ok(snapshot) => {
                message.clear();
                if encoder.encode_view(&snapshot, &mut message) {
                    message.push(b'\n');
                    output.write_all(&message).map_err(NdjsonError::Write)?;
                    summary.sent += 1;
                } else {
                    summary.skipped += 1;
                }
            }
            Err(e) => {
                summary.bad += 1;
                // Line numbers fit: no input has 2^64 lines.
                on_error(e.at_line(summary.lines as usize));
            }
        }
    }
    output.flush().map_err(NdjsonError::Write)?;
    Ok(summary)
}

/// The lines of `input`, handed out in place from one buffer that is read into
/// directly: no copy of each line into a second buffer (the parser needs a mutable
/// line, which a `BufRead`'s buffer is not), and the newline is found with the memchr
/// crate's vectorised search (std's `read_until` went a word at a time: 3.5% of
/// `tagwire encode`'s instructions). The buffer grows to the longest line and is reused.
struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    /// `buf[start..end]` is read and not handed out yet.
    start: usize,
    end: usize,
    /// `buf[start..scanned]` has no newline (a long line is not searched again).
    scanned: usize,
    eof: bool,
}

impl<R: Read> Lines<R> {
    const INITIAL: usize = 256 * 1024;

    fn new(input: R) -> Self {
        Lines {
            input,
            buf: vec![0; Self::INITIAL],
            start: 0,
            end: 0,
            scanned: 0,
            eof: false,
        }
    }

    /// The next line without its `\n` (the last one may have none), or `None` at the
    /// end of the input.
    fn next_line(&mut self) -> io::Result<Option<&mut [u8]>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.scanned..self.end]) {
                let line = self.start..self.scanned + i;
                self.start = line.end + 1;
                self.scanned = self.start;
                return Ok(Some(&mut self.buf[line]));
            }
            self.scanned = self.end;
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let line = self.start..self.end;
                self.start = self.end;
                return Ok(Some(&mut self.buf[line]));
            }
            // Keep the partial line, at the front; grow only when it fills the buffer.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    /// Hands out its bytes `chunk` at a time, with an `Interrupted` error before each
    /// chunk, so that lines straddle reads and the retry is exercised.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = self.chunk.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn lines_match_std_across_reads_and_buffer_growth() {
        let long = "x".repeat(3 * Lines::<&[u8]>::INITIAL + 17);
        let data = format!("first line\n\n{long}\r\nthird\n{long}\nno newline at the end");
        for chunk in [1, 3, 7, 4096, 70_000, usize::MAX] {
            let mut ours = Lines::new(Trickle {
                data: data.as_bytes(),
                chunk,
                interrupt: false,
            });
            let mut std = data.as_bytes().split(|&b| b == b'\n');
            loop {
                let a = ours.next_line().unwrap().map(|l| l.to_vec());
                let b = std.next().map(<[u8]>::to_vec);
                assert_eq!(a, b, "chunk {chunk}");
                if a.is_none() {
                    break;
                }
            }
        }
        // A final newline ends the last line; it does not start an empty one.
        let mut lines = Lines::new(&b"a\nb\n"[..]);
        assert_eq!(lines.next_line().unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(lines.next_line().unwrap().as_deref(), Some(&b"b"[..]));
        assert_eq!(lines.next_line().unwrap(), None);
        assert_eq!(Lines::new(&b""[..]).next_line().unwrap(), None);
        // The same count of lines as `BufRead::lines` on the long input.
        let mut n = 0;
        let mut ours = Lines::new(data.as_bytes());
        while ours.next_line().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, data.as_bytes().lines().count());
    }

    #[test]
    fn lines_report_read_errors() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
        }
        let err = Lines::new(Broken).next_line().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
