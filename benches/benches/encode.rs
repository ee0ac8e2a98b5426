//! The encoder against a serde_json baseline, in the same run.
//!
//! Groups:
//! - `encode/mixed100`: a realistic 100-tag group (integers, floats with and without
//!   precision, scaled values, booleans, strings, a few errors and metas);
//! - `encode/big1000`: the 1000-tag "big" snapshot of `crates/encode/tests/vectors`.
//!
//! Each group measures tagwire's encoder (values/tags × neuron/compact) writing into a
//! reused buffer, and serde_json writing the equivalent compact message: once from a
//! prebuilt `serde_json::Value` (`to_writer` only, the most favourable case for
//! serde_json) and once building the `Value` from the snapshot first (what a
//! serde_json-based encoder would have to do per message).
//! `parse/big1000` measures the ingest parser (simd-json tape) on the same snapshot.
//!
//! Run: `cargo bench -p tagwire-benches --bench encode`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{Map, Value as J};
use tagwire_encode::{EncodeOptions, Encoder, Format, Style};
use tagwire_model::{parse_snapshot, Json, Reading, Snapshot, Tag, Value};

/// A 100-tag group as a PLC driver would produce it.
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

/// The "big" snapshot of the test vectors (the line with 1000 tags).
fn big1000() -> Snapshot {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/encode/tests/vectors/snapshots.ndjson"
    ));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): the vectors live in crates/encode/tests/vectors/",
            path.display()
        )
    });
    text.lines()
        .map(|l| parse_snapshot(&mut l.as_bytes().to_vec(), 0).expect("vector parses"))
        .find(|s| s.tags.len() == 1000)
        .expect("a 1000-tag snapshot in snapshots.ndjson")
}

fn big1000_line() -> Vec<u8> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/encode/tests/vectors/snapshots.ndjson"
    ));
    let text = std::fs::read_to_string(path).expect("vectors readable");
    text.lines()
        .find(|l| l.contains("\"big\""))
        .expect("the big snapshot")
        .as_bytes()
        .to_vec()
}

// ---- the serde_json equivalent (compact style) ------------------------------------

fn j_of_json(j: &Json) -> J {
    match j {
        Json::Null => J::Null,
        Json::Bool(b) => J::Bool(*b),
        Json::Int(i) => J::from(*i),
        Json::Uint(u) => J::from(*u),
        Json::Float(f) => J::from(*f),
        Json::String(s) => J::String(s.clone()),
        Json::Array(a) => J::Array(a.iter().map(j_of_json).collect()),
        Json::Object(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), j_of_json(v))).collect()),
    }
}

/// The value the compact style writes (scaling applied), or the error code.
fn j_of_tag(t: &Tag) -> Result<J, i32> {
    let v = match &t.reading {
        Reading::Error(c) => return Err(*c),
        Reading::Value(v) => v,
    };
    let scaled = t.decimal != 0.0 || t.bias != 0.0;
    let factor = if t.decimal != 0.0 { t.decimal } else { 1.0 };
    let real = |x: f64| {
        if x.is_finite() {
            Ok(J::from(x))
        } else {
            Err(3008)
        }
    };
    match v {
        Value::Float(f) if !scaled => {
            if f.is_finite() {
                Ok(J::from(*f))
            } else {
                Err(3008)
            }
        }
        Value::Float(f) => real(f64::from(*f) * factor + t.bias),
        Value::Double(d) => real(if scaled { d * factor + t.bias } else { *d }),
        Value::Int16(x) if scaled => real(f64::from(*x) * factor + t.bias),
        Value::Uint16(x) if scaled => real(f64::from(*x) * factor + t.bias),
        Value::Int32(x) if scaled => real(f64::from(*x) * factor + t.bias),
        Value::Uint32(x) if scaled => real(f64::from(*x) * factor + t.bias),
        Value::Int8(x) => Ok(J::from(*x)),
        Value::Uint8(x) => Ok(J::from(*x)),
        Value::Int16(x) => Ok(J::from(*x)),
        Value::Uint16(x) => Ok(J::from(*x)),
        Value::Int32(x) => Ok(J::from(*x)),
        Value::Uint32(x) => Ok(J::from(*x)),
        Value::Int64(x) => Ok(J::from(*x)),
        Value::Uint64(x) => Ok(J::from(*x)),
        Value::Bit(b) => Ok(J::from(u8::from(*b))),
        Value::Bool(b) => Ok(J::Bool(*b)),
        Value::String(s) => Ok(J::String(s.clone())),
        Value::Custom(j) => Ok(j_of_json(j)),
        other => panic!("benchmark data has no {:?}", other.data_type()),
    }
}

fn serde_message(s: &Snapshot, format: Format) -> J {
    let mut m = Map::new();
    m.insert("node".into(), J::String(s.node.clone()));
    m.insert("group".into(), J::String(s.group.clone()));
    m.insert("timestamp".into(), J::from(s.timestamp_ms));
    match format {
        Format::Values => {
            let (mut values, mut errors, mut metas) = (Map::new(), Map::new(), Map::new());
            for t in &s.tags {
                match j_of_tag(t) {
                    Ok(v) => values.insert(t.name.clone(), v),
                    Err(c) => errors.insert(t.name.clone(), J::from(c)),
                };
                if !t.metas.is_empty() {
                    let obj = t
                        .metas
                        .iter()
                        .map(|(k, v)| (k.clone(), j_of_json(v)))
                        .collect();
                    metas.insert(t.name.clone(), J::Object(obj));
                }
            }
            m.insert("values".into(), J::Object(values));
            m.insert("errors".into(), J::Object(errors));
            m.insert("metas".into(), J::Object(metas));
        }
        Format::Tags => {
            let tags = s
                .tags
                .iter()
                .map(|t| {
                    let mut o = Map::new();
                    o.insert("name".into(), J::String(t.name.clone()));
                    match j_of_tag(t) {
                        Ok(v) => o.insert("value".into(), v),
                        Err(c) => o.insert("error".into(), J::from(c)),
                    };
                    for (k, v) in &t.metas {
                        o.insert(k.clone(), j_of_json(v));
                    }
                    J::Object(o)
                })
                .collect();
            m.insert("tags".into(), J::Array(tags));
        }
    }
    J::Object(m)
}

// ---- benchmarks -------------------------------------------------------------------

fn bench_group(c: &mut Criterion, name: &str, snap: &Snapshot) {
    let mut group = c.benchmark_group(format!("encode/{name}"));
    let mut out = Vec::with_capacity(256 * 1024);
    for format in [Format::Values, Format::Tags] {
        for style in [Style::Neuron, Style::Compact] {
            let mut encoder = Encoder::new(EncodeOptions {
                format,
                style,
                upload_err: true,
            });
            out.clear();
            encoder.encode(snap, &mut out);
            group.throughput(Throughput::Bytes(out.len() as u64));
            group.bench_function(BenchmarkId::new(format!("tagwire-{style}"), format), |b| {
                b.iter(|| {
                    out.clear();
                    encoder.encode(black_box(snap), &mut out);
                    black_box(out.len())
                })
            });
        }
        let prebuilt = serde_message(snap, format);
        out.clear();
        serde_json::to_writer(&mut out, &prebuilt).unwrap();
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_function(BenchmarkId::new("serde_json-to_writer", format), |b| {
            b.iter(|| {
                out.clear();
                serde_json::to_writer(&mut out, black_box(&prebuilt)).unwrap();
                black_box(out.len())
            })
        });
        group.bench_function(
            BenchmarkId::new("serde_json-build+to_writer", format),
            |b| {
                b.iter(|| {
                    out.clear();
                    let v = serde_message(black_box(snap), format);
                    serde_json::to_writer(&mut out, &v).unwrap();
                    black_box(out.len())
                })
            },
        );
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    bench_group(c, "mixed100", &mixed100());
    bench_group(c, "big1000", &big1000());
}

fn parse(c: &mut Criterion) {
    let line = big1000_line();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(line.len() as u64));
    let mut buf = Vec::with_capacity(line.len());
    group.bench_function("big1000", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&line);
            black_box(parse_snapshot(&mut buf, 0).expect("parses"))
        })
    });
    group.finish();
}

criterion_group!(benches, encode, parse);
criterion_main!(benches);
