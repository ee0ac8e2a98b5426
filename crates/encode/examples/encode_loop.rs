//! Encodes one synthetic snapshot many times into a reused buffer: the loop to run
//! under callgrind when working on the encoder's speed (instruction counts are stable
//! on a loaded machine, criterion's times are not).
//!
//! ```sh
//! cargo build --release -p tagwire-encode --example encode_loop
//! valgrind --tool=callgrind target/release/examples/encode_loop mixed100 values neuron 20000
//! ```
//!
//! Shapes: the criterion groups' synthetic snapshots (`support/shapes.rs`, shared
//! with the benchmark): `mixed100`, `neuron100`, `{int,float,str}{10,100,1000}`, and
//! `big1000`, the 1000-tag snapshot of `tests/vectors/snapshots.ndjson` (the
//! criterion group of that name), and `arrays100` (the simulator's float arrays, for
//! `%.15g`); formats `values`/`tags`; styles `neuron`/`compact`.

use std::hint::black_box;
use std::process::ExitCode;

use tagwire_encode::{EncodeOptions, Encoder, Format, Style};
use tagwire_model::{parse_snapshot, Snapshot, Tag, Value};

/// The benchmark shapes, shared with `benches/benches/encode.rs`.
#[path = "support/shapes.rs"]
mod shapes;

/// The 1000-tag snapshot of the test vectors, as the `encode/big1000` criterion group
/// reads it.
fn big1000() -> Option<Snapshot> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/snapshots.ndjson"
    );
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter_map(|l| parse_snapshot(&mut l.as_bytes().to_vec(), 0).ok())
        .find(|s| s.tags.len() == 1000)
}

/// 100 tags of ARRAY_FLOAT and ARRAY_DOUBLE as the daemon's simulator reports them
/// (`[1.5, wave]` and `[0.25, wave]`, `wave` a sine): in the Neuron style every
/// element goes through `%.15g`, and an `f32` widened to `f64` needs all 15 digits.
fn arrays100() -> Snapshot {
    let mut s = Snapshot::new("sim", "g0", 1_650_006_388_943);
    for i in 0..100u32 {
        let wave = (f64::from(i) * 0.37).sin();
        let name = format!("array_{i}");
        s.tags.push(if i % 2 == 0 {
            Tag::value(name, Value::ArrayFloat(vec![1.5, wave as f32]))
        } else {
            Tag::value(name, Value::ArrayDouble(vec![0.25, wave]))
        });
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.into());
    let name = arg(0, "mixed100");
    let snapshot = match name.as_str() {
        "big1000" => big1000(),
        "arrays100" => Some(arrays100()),
        _ => shapes::by_name(&name),
    };
    let Some(snapshot) = snapshot else {
        eprintln!(
            "unknown shape {name:?}: use mixed100, neuron100, big1000, or int/float/str with 10, 100 or 1000"
        );
        return ExitCode::from(2);
    };
    let format = if arg(1, "values") == "tags" {
        Format::Tags
    } else {
        Format::Values
    };
    let style = if arg(2, "neuron") == "compact" {
        Style::Compact
    } else {
        Style::Neuron
    };
    let Ok(count) = arg(3, "20000").parse::<u32>() else {
        eprintln!("the count must be a number");
        return ExitCode::from(2);
    };
    let mut encoder = Encoder::new(
        EncodeOptions::default()
            .with_format(format)
            .with_style(style),
    );
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for _ in 0..count {
        out.clear();
        let sent = encoder.encode(black_box(&snapshot), &mut out);
        bytes += usize::from(sent) * out.len();
        black_box(&out);
    }
    println!("{count} messages, {bytes} bytes");
    ExitCode::SUCCESS
}
