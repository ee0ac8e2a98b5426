//! Reads NDJSON group snapshots from stdin and writes one Neuron values-format message
//! per line to stdout (`--tags` for tags-format, `--compact` for the compact style).
//! A bad line is reported on stderr with its number; the others go through.
//!
//! ```sh
//! echo '{"node":"plc","group":"g","timestamp":1,"tags":[{"name":"t","type":"INT16","value":7}]}' \
//!   | cargo run -q -p tagwire-encode --example encode_ndjson
//! ```

use std::io::{stdin, stdout, BufWriter};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use tagwire_encode::{encode_ndjson, EncodeOptions, Encoder, Format, Style};

fn main() -> ExitCode {
    let mut options = EncodeOptions::default();
    for arg in std::env::args().skip(1) {
        options = match arg.as_str() {
            "--tags" => options.with_format(Format::Tags),
            "--compact" => options.with_style(Style::Compact),
            other => {
                eprintln!("unknown argument {other:?}: use --tags and/or --compact");
                return ExitCode::from(2);
            }
        };
    }
    let mut encoder = Encoder::new(options);
    let now_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
    let result = encode_ndjson(
        stdin().lock(),
        BufWriter::new(stdout().lock()),
        &mut encoder,
        now_ms,
        |e| eprintln!("{e}"),
    );
    match result {
        Ok(summary) => {
            eprintln!(
                "{} lines: {} sent, {} skipped, {} bad",
                summary.lines, summary.sent, summary.skipped, summary.bad
            );
            if summary.bad > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            let cause =
                std::error::Error::source(&e).map_or_else(String::new, |c| format!(": {c}"));
            eprintln!("{e}{cause}");
            ExitCode::from(2)
        }
    }
}
