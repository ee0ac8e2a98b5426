//! The synthetic snapshots of the encoder benchmarks, in one place: the criterion
//! groups (`benches/benches/encode.rs`) and the callgrind loop
//! (`crates/encode/examples/encode_loop.rs`) both include this file by path, so a
//! profile and a criterion row always measure the same data. It needs only
//! `tagwire-model`, which the encoder depends on anyway.

use tagwire_model::{Snapshot, Tag, Value};

/// A 100-tag group as a PLC driver would produce it: integers, floats with and without
/// precision, scaled values, booleans, strings, a few errors and metas.
pub fn mixed100() -> Snapshot {
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

/// Which values dominate a synthetic group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// INT32.
    Int,
    /// FLOAT and DOUBLE, alternating.
    Float,
    /// STRING.
    Str,
}

impl Mix {
    /// Every mix, in the order of the criterion groups.
    pub const ALL: [Mix; 3] = [Mix::Int, Mix::Float, Mix::Str];

    /// The start of the group names of this mix (`int100`, …).
    pub fn name(self) -> &'static str {
        match self {
            Mix::Int => "int",
            Mix::Float => "float",
            Mix::Str => "str",
        }
    }
}

/// `n` tags, 80% of `mix`'s kind and the rest spread over the others, so that each
/// mix still exercises every formatter a little.
pub fn shaped(n: u32, mix: Mix) -> Snapshot {
    let mut s = Snapshot::new("modbus-plc-01", "line1/cell3", 1_650_006_388_943);
    for i in 0..n {
        let name = format!("line1.cell3.tag{i:04}");
        let x = f64::from(i);
        let kind = if i % 5 != 4 {
            mix as u32
        } else {
            (mix as u32 + 1 + i / 5 % 2) % 3
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

/// The shape of Neuron's own 100-tag encoding benchmark as we reproduce it: `tag0` …
/// `tag99`, INT32 and FLOAT (precision 2) alternating.
pub fn neuron100() -> Snapshot {
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

/// The synthetic shape called `name` (the criterion group's name without `encode/`):
/// `mixed100`, `neuron100`, or `int`/`float`/`str` followed by 10, 100 or 1000.
#[allow(dead_code)] // the criterion file builds its groups directly
pub fn by_name(name: &str) -> Option<Snapshot> {
    match name {
        "mixed100" => return Some(mixed100()),
        "neuron100" => return Some(neuron100()),
        _ => {}
    }
    let (mix, n) = Mix::ALL
        .into_iter()
        .find_map(|mix| Some((mix, name.strip_prefix(mix.name())?)))?;
    match n {
        "10" | "100" | "1000" => Some(shaped(n.parse().ok()?, mix)),
        _ => None,
    }
}
