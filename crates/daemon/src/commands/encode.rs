//! `tagwire encode`: NDJSON snapshots on stdin, one encoded message per line on stdout.

use std::io::BufWriter;
use std::process::ExitCode;

use tagwire_encode::{encode_ndjson, EncodeOptions, Encoder, NdjsonError};

/// Encodes every line; a bad line is reported on stderr with its number and the rest go
/// on, and the exit code is then 1. The loop itself is `tagwire_encode::encode_ndjson`
/// (reused buffers, no allocation per snapshot).
pub fn run(options: EncodeOptions) -> ExitCode {
    let stdin = std::io::stdin().lock();
    let out = BufWriter::new(std::io::stdout().lock());
    let mut encoder = Encoder::new(options);
    let result = encode_ndjson(stdin, out, &mut encoder, tagwire_pipeline::now_ms, |e| {
        eprintln!("{e}")
    });
    match result {
        Ok(summary) if summary.bad > 0 => {
            eprintln!("tagwire encode: {} bad line(s) skipped", summary.bad);
            ExitCode::from(crate::shutdown::EXIT_USAGE)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let what = match &e {
                NdjsonError::Read(_) => "cannot read stdin",
                NdjsonError::Write(_) => "cannot write stdout",
            };
            let cause =
                std::error::Error::source(&e).map_or_else(String::new, |c| format!(": {c}"));
            eprintln!("tagwire encode: {what}{cause}");
            ExitCode::from(crate::shutdown::EXIT_RUNTIME)
        }
    }
}
