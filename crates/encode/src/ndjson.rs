//! NDJSON in, messages out: the loop behind `tagwire encode` and the
//! `encode_ndjson` example, as a library function so that a test can drive it.
//!
//! Everything it needs is allocated once per call and reused for every line (the line
//! buffer, the [`Parser`] with its tape, the message buffer), so the steady state
//! allocates nothing per snapshot; `tests/no_alloc.rs` counts it.

use std::fmt;
use std::io::{self, BufRead, Write};

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
    mut input: impl BufRead,
    mut output: impl Write,
    encoder: &mut Encoder,
    mut now_ms: impl FnMut() -> u64,
    mut on_error: impl FnMut(SnapshotError),
) -> Result<NdjsonSummary, NdjsonError> {
    let mut summary = NdjsonSummary::default();
    let mut parser = Parser::new();
    let mut line = Vec::with_capacity(64 * 1024);
    let mut message = Vec::with_capacity(4096);
    loop {
        line.clear();
        if read_line(&mut input, &mut line).map_err(NdjsonError::Read)? == 0 {
            break;
        }
        summary.lines += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parser.parse(&mut line, now_ms()) {
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

/// [`BufRead::read_until`] of `b'\n'`, with the memchr crate's vectorised search: std's
/// own search goes a word at a time, about one instruction per byte, which was 3.8% of
/// `tagwire encode`'s instructions (20,000 lines of 5 KB). Appends the line, its
/// newline included, to `line` and returns the bytes read (0 at the end of the input).
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<usize> {
    let mut read = 0;
    loop {
        let (found, used) = {
            let available = match input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            match memchr::memchr(b'\n', available) {
                Some(i) => {
                    line.extend_from_slice(&available[..=i]);
                    (true, i + 1)
                }
                None => {
                    line.extend_from_slice(available);
                    (available.is_empty(), available.len())
                }
            }
        };
        input.consume(used);
        read += used;
        if found {
            return Ok(read);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its bytes `chunk` at a time, with an `Interrupted` error before each
    /// chunk, so that lines straddle buffer boundaries and the retry is exercised.
    struct Trickle<'a> {
        data: &'a [u8],
        chunk: usize,
        interrupt: bool,
    }

    impl io::Read for Trickle<'_> {
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
    fn read_line_matches_read_until_across_buffer_boundaries() {
        let data = b"first line\n\nthird, longer than the buffer of seven\r\nno newline at the end";
        for (capacity, chunk) in [(7, 3), (7, 7), (64, 5), (1, 1), (4096, 4096)] {
            let reader = |_| {
                io::BufReader::with_capacity(
                    capacity,
                    Trickle {
                        data,
                        chunk,
                        interrupt: false,
                    },
                )
            };
            let (mut ours, mut std) = (reader(()), reader(()));
            loop {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let n = read_line(&mut ours, &mut a).unwrap();
                let m = std.read_until(b'\n', &mut b).unwrap();
                assert_eq!((n, &a), (m, &b), "capacity {capacity}, chunk {chunk}");
                if n == 0 {
                    break;
                }
            }
        }
    }

    #[test]
    fn read_line_appends_and_reports_read_errors() {
        let mut line = b"kept ".to_vec();
        let n = read_line(&mut &b"a\nb"[..], &mut line).unwrap();
        assert_eq!((n, line.as_slice()), (2, &b"kept a\n"[..]));

        struct Broken;
        impl io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
        }
        let err = read_line(&mut io::BufReader::new(Broken), &mut line).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
