//! The encoder against a serde_json baseline, in the same run.
//!
//! Groups:
//! - `encode/mixed100`: a realistic 100-tag group (integers, floats with and without
//!   precision, scaled values, booleans, strings, a few errors and metas);
//! - `encode/big1000`: the 1000-tag "big" snapshot of `crates/encode/tests/vectors`.
//!
//! - `encode/neuron100`: the shape of Neuron's own 100-tag benchmark (INT32 and FLOAT);
//! - `encode/{int,float,str}{10,100,1000}`: synthetic groups, 80% of one kind.
//!
//! Each group measures tagwire's encoder (values/tags × neuron/compact) writing into a
//! reused buffer against the honest alternatives, in the same run: serde derive on
//! typed structs borrowing from the snapshot (`derive-prebuilt-*`: built once, only
//! the write is timed; `derive-built-*`: built from the snapshot per message), with
//! compact or Neuron spacing, and the `floor-compact` row (numbers through the compact
//! style's formatters, itoa and zmij; strings copied in their escaped form, made once;
//! every constant byte copied, the `errors` and `metas` objects included; no JSON
//! logic). The
//! two realistic groups keep the old prebuilt `serde_json::Value` row.
//! `parse/*` compares the ingest parser with serde derive on the same line and with
//! simd-json's bare tape.
//!
//! Run: `cargo bench -p tagwire-benches --bench encode`.

use std::hint::black_box;
use std::path::PathBuf;

#[path = "support/derive.rs"]
mod derive;
/// The synthetic shapes, shared with the encoder's callgrind loop
/// (`crates/encode/examples/encode_loop.rs`).
#[path = "../../crates/encode/examples/support/shapes.rs"]
mod shapes;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{Map, Value as J};
use shapes::{mixed100, neuron100, shaped, Mix};
use tagwire_encode::{EncodeOptions, Encoder, Format, Style};
use tagwire_model::{parse_snapshot, Json, Parser, Reading, Snapshot, Tag};

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

/// The value the compact style writes (scaling applied), or the error code: the derive
/// baseline's value, as a `serde_json::Value`.
fn j_of_tag(t: &Tag) -> Result<J, i32> {
    derive::val_of_tag(t).map(|v| serde_json::to_value(v).expect("in-memory"))
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

/// tagwire's four outputs, serde derive (prebuilt and built per message, compact and
/// with Neuron's spacing) and the floor, for one snapshot; `serde_value` adds the old
/// prebuilt `serde_json::Value` row.
fn bench_group(c: &mut Criterion, name: &str, snap: &Snapshot, serde_value: bool) {
    let mut group = c.benchmark_group(format!("encode/{name}"));
    let mut out = Vec::with_capacity(256 * 1024);
    for format in [Format::Values, Format::Tags] {
        for style in [Style::Neuron, Style::Compact] {
            let mut encoder = Encoder::new(
                EncodeOptions::new()
                    .with_format(format)
                    .with_style(style)
                    .with_upload_err(true),
            );
            out.clear();
            assert!(encoder.encode(snap, &mut out), "every shape is sent");
            group.throughput(Throughput::Bytes(out.len() as u64));
            group.bench_function(BenchmarkId::new(format!("tagwire-{style}"), format), |b| {
                b.iter(|| {
                    out.clear();
                    black_box(encoder.encode(black_box(snap), &mut out));
                    black_box(out.len())
                })
            });
        }
        // The comparison is only honest if derive and the floor write the same message:
        // check the bytes before timing anything.
        derive::assert_same_bytes(name, snap, format);
        let floor = derive::Floor::new(snap, format);
        for neuron in [true, false] {
            let spacing = if neuron { "neuron" } else { "compact" };
            let prebuilt = derive::Msg::build(snap, format);
            group.bench_function(
                BenchmarkId::new(format!("derive-prebuilt-{spacing}"), format),
                |b| {
                    b.iter(|| {
                        out.clear();
                        black_box(&prebuilt).write(&mut out, neuron);
                        black_box(out.len())
                    })
                },
            );
            group.bench_function(
                BenchmarkId::new(format!("derive-built-{spacing}"), format),
                |b| {
                    b.iter(|| {
                        out.clear();
                        derive::Msg::build(black_box(snap), format).write(&mut out, neuron);
                        black_box(out.len())
                    })
                },
            );
        }
        group.bench_function(BenchmarkId::new("floor-compact", format), |b| {
            b.iter(|| {
                out.clear();
                black_box(&floor).write(
                    &mut out,
                    black_box(snap.timestamp_ms),
                    format == Format::Values,
                );
                black_box(out.len())
            })
        });
        if serde_value {
            let prebuilt = serde_message(snap, format);
            group.bench_function(BenchmarkId::new("serde_json-value-prebuilt", format), |b| {
                b.iter(|| {
                    out.clear();
                    serde_json::to_writer(&mut out, black_box(&prebuilt)).unwrap();
                    black_box(out.len())
                })
            });
        }
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    bench_group(c, "mixed100", &mixed100(), true);
    bench_group(c, "big1000", &big1000(), true);
    bench_group(c, "neuron100", &neuron100(), false);
    for n in [10, 100, 1000] {
        for mix in Mix::ALL {
            let name = format!("{}{n}", mix.name());
            bench_group(c, &name, &shaped(n, mix), false);
        }
    }
}

/// What a serde derive user would parse the snapshot line into.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the fields are the point of the parse, not read afterwards
struct SnapIn<'a> {
    #[serde(borrow)]
    node: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    group: std::borrow::Cow<'a, str>,
    timestamp: Option<u64>,
    #[serde(borrow)]
    tags: Vec<TagIn<'a>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TagIn<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    #[serde(rename = "type")]
    ty: Option<J>,
    value: Option<J>,
    error: Option<i32>,
    precision: Option<u8>,
    decimal: Option<f64>,
    bias: Option<f64>,
    metas: Option<Map<String, J>>,
}

/// The ingest line for a snapshot without scaling (the synthetic shapes).
fn input_line(s: &Snapshot) -> Vec<u8> {
    let tags: Vec<J> = s
        .tags
        .iter()
        .map(|t| {
            let mut o = Map::new();
            o.insert("name".into(), J::String(t.name.clone()));
            match &t.reading {
                Reading::Error(c) => {
                    o.insert("error".into(), J::from(*c));
                }
                Reading::Value(v) => {
                    o.insert("type".into(), J::String(v.data_type().name().to_owned()));
                    let json = serde_json::to_value(derive::val_of_tag(t).expect("a value"))
                        .expect("in-memory");
                    o.insert("value".into(), json);
                }
            }
            if t.precision > 0 {
                o.insert("precision".into(), J::from(t.precision));
            }
            J::Object(o)
        })
        .collect();
    let mut m = Map::new();
    m.insert("node".into(), J::String(s.node.clone()));
    m.insert("group".into(), J::String(s.group.clone()));
    m.insert("timestamp".into(), J::from(s.timestamp_ms));
    m.insert("tags".into(), J::Array(tags));
    serde_json::to_vec(&J::Object(m)).expect("in-memory")
}

/// Our parse against serde derive on the same line, and simd-json's bare tape (the
/// part of our parse that is simd-json's).
fn parse(c: &mut Criterion) {
    let lines = [
        ("big1000", big1000_line()),
        ("neuron100", input_line(&neuron100())),
        ("float100", input_line(&shaped(100, Mix::Float))),
        ("str100", input_line(&shaped(100, Mix::Str))),
    ];
    let mut group = c.benchmark_group("parse");
    for (name, line) in &lines {
        group.throughput(Throughput::Bytes(line.len() as u64));
        let mut buf = Vec::with_capacity(line.len());
        group.bench_function(BenchmarkId::new("tagwire", name), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(line);
                black_box(parse_snapshot(&mut buf, 0).expect("parses"))
            })
        });
        // The zero-copy parse: one reused parser, a view borrowing the line.
        let mut parser = Parser::new();
        group.bench_function(BenchmarkId::new("tagwire-view", name), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(line);
                black_box(parser.parse(&mut buf, 0).expect("parses").tags.len())
            })
        });
        group.bench_function(BenchmarkId::new("serde-derive", name), |b| {
            b.iter(|| {
                black_box(
                    serde_json::from_slice::<SnapIn<'_>>(line)
                        .expect("parses")
                        .tags
                        .len(),
                )
            })
        });
        group.bench_function(BenchmarkId::new("simd-json-tape", name), |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(line);
                black_box(simd_json::to_tape(&mut buf).expect("parses").0.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, parse);
criterion_main!(benches);
