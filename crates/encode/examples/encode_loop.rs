//! Encodes one synthetic snapshot many times into a reused buffer: the loop to run
//! under callgrind when working on the encoder's speed (instruction counts are stable
//! on a loaded machine, criterion's times are not).
//!
//! ```sh
//! cargo build --release -p tagwire-encode --example encode_loop
//! valgrind --tool=callgrind target/release/examples/encode_loop mixed100 values neuron 20000
//! ```
//!
//! Shapes: `mixed100` (the criterion group of that name), `int1000`, `float1000`,
//! `str1000`, `neuron100`; formats `values`/`tags`; styles `neuron`/`compact`.

use std::hint::black_box;
use std::process::ExitCode;

use tagwire_encode::{EncodeOptions, Encoder, Format, Style};
use tagwire_model::{Snapshot, Tag, Value};

/// The `mixed100` group of `benches/benches/encode.rs`.
fn mixed100() -> Snapshot {
    let mut s = Snapshot::new("modbus-plc-01", "line1/cell3", 1_650_006_388_943);
    for i in 0..100u32 {
        let name = format!("line1.cell3.tag{i:03}");
        let x = f64::from(i);
        let tag = match i % 10 {
            0 => Tag::value(name, Value::Int16(i as i16 * 7 - 300)),
            1 => Tag::value(name, Value::Float((21.5 + x * 0.37) as f32)),
            2 => Tag::value(name, Value::Float((1013.25 - x * 0.11) as f32)).with_precision(2),
            3 => Tag::value(name, Value::Double(12_345.678_9 + x / 3.0)),
            4 => Tag::value(name, Value::Uint16(2000 + i as u16)).with_scaling(0.1, 0.0),
            5 => Tag::value(name, Value::Bool(i % 20 == 5)),
            6 => Tag::value(name, Value::Uint32(100_000 + i * 977)),
            7 => Tag::value(name, Value::String(format!("RUNNING step {i}"))),
            8 if i % 30 == 8 => Tag::error(name, 3002),
            8 => Tag::value(name, Value::Int32(-(i as i32) * 1000)),
            _ => Tag::value(name, Value::Double(0.5 + x * 1e-3))
                .with_meta("unit", "bar")
                .with_meta("quality", 192i64),
        };
        s.tags.push(tag);
    }
    s
}

/// The `{int,float,str}N` groups of `benches/benches/encode.rs`: 80% of one kind.
fn shaped(n: u32, mix: u32) -> Snapshot {
    let mut s = Snapshot::new("modbus-plc-01", "line1/cell3", 1_650_006_388_943);
    for i in 0..n {
        let name = format!("line1.cell3.tag{i:04}");
        let x = f64::from(i);
        let kind = if i % 5 != 4 {
            mix
        } else {
            (mix + 1 + i / 5 % 2) % 3
        };
        let tag = match kind {
            0 => Tag::value(name, Value::Int32(i as i32 * 7919 - 40_000)),
            1 if i % 2 == 0 => Tag::value(name, Value::Float((21.5 + x * 0.37) as f32)),
            1 => Tag::value(name, Value::Double(12_345.678_9 + x / 3.0)),
            _ => Tag::value(name, Value::String(format!("RUNNING step {i}"))),
        };
        s.tags.push(tag);
    }
    s
}

/// The shape of Neuron's own 100-tag benchmark.
fn neuron100() -> Snapshot {
    let mut s = Snapshot::new("node", "group", 1_650_006_388_943);
    for i in 0..100 {
        let name = format!("tag{i}");
        s.tags.push(if i % 2 == 0 {
            Tag::value(name, Value::Int32(i * 1000 + 7))
        } else {
            Tag::value(name, Value::Float(i as f32 * 1.25 + 0.5)).with_precision(2)
        });
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.into());
    let snapshot = match arg(0, "mixed100").as_str() {
        "mixed100" => mixed100(),
        "neuron100" => neuron100(),
        "int100" => shaped(100, 0),
        "float100" => shaped(100, 1),
        "str100" => shaped(100, 2),
        "int1000" => shaped(1000, 0),
        "float1000" => shaped(1000, 1),
        "str1000" => shaped(1000, 2),
        other => {
            eprintln!("unknown shape {other:?}");
            return ExitCode::from(2);
        }
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
