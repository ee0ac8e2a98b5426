//! `tagwire encode`: NDJSON snapshots on stdin, one encoded message per line on stdout.

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

use tagwire_encode::{EncodeOptions, Encoder};
use tagwire_model::parse_snapshot;

/// Encodes every line; a bad line is reported on stderr with its number and the rest go
/// on, and the exit code is then 1.
pub fn run(options: EncodeOptions) -> ExitCode {
    let mut stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut encoder = Encoder::new(options);
    let mut buf = Vec::with_capacity(4096);
    // One line buffer for the whole run: a new vector per line was a malloc and a
    // free per snapshot.
    let mut line = Vec::with_capacity(64 * 1024);
    let mut bad_lines = 0u64;
    let mut n = 0usize;
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => n += 1,
            Err(e) => {
                eprintln!("tagwire encode: cannot read stdin: {e}");
                return ExitCode::from(crate::shutdown::EXIT_RUNTIME);
            }
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_snapshot(&mut line, tagwire_pipeline::now_ms()) {
            Ok(snapshot) => {
                buf.clear();
                if encoder.encode(&snapshot, &mut buf) {
                    buf.push(b'\n');
                    if let Err(e) = out.write_all(&buf) {
                        eprintln!("tagwire encode: cannot write stdout: {e}");
                        return ExitCode::from(crate::shutdown::EXIT_RUNTIME);
                    }
                }
            }
            Err(e) => {
                bad_lines += 1;
                eprintln!("{}", e.at_line(n));
            }
        }
    }
    if let Err(e) = out.flush() {
        eprintln!("tagwire encode: cannot write stdout: {e}");
        return ExitCode::from(crate::shutdown::EXIT_RUNTIME);
    }
    if bad_lines > 0 {
        eprintln!("tagwire encode: {bad_lines} bad line(s) skipped");
        ExitCode::from(crate::shutdown::EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}
