//! Steady-state encoding allocates nothing: once a group's layout is cached and the
//! output buffer has grown, encoding the same group again performs no heap allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tagwire_encode::{encode_ndjson, EncodeOptions, Encoder, Format, Style};
use tagwire_model::{Json, Parser, Snapshot, Tag, Value};

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// Counts allocations made by the current thread while counting is switched on.
struct CountingAllocator;

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn note() {
    // try_with: the thread-locals may already be gone while a thread shuts down.
    let _ = COUNTING.try_with(|c| {
        if c.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(|n| n.get())
}

/// Every type, floats that take both the fast and the exact formatting path,
/// precision, scaling, metas, errors and names that need escaping.
fn snapshot(ts: u64) -> Snapshot {
    Snapshot::new("plc \"1\"", "grp/ü", ts)
        .with_tag(Tag::value("i8", Value::Int8(-5)))
        .with_tag(Tag::value("u64", Value::Uint64(u64::MAX)))
        .with_tag(Tag::value("f", Value::Float(12.345678)))
        .with_tag(Tag::value("f_exact", Value::Float(1.1)).with_scaling(1.0, 0.0))
        .with_tag(Tag::value("d", Value::Double(1.0 / 3.0)))
        .with_tag(Tag::value("p", Value::Double(0.125)).with_precision(2))
        .with_tag(Tag::value("p17", Value::Double(123456.789)).with_precision(17))
        .with_tag(Tag::value("nan", Value::Double(f64::NAN)))
        .with_tag(Tag::value("scaled", Value::Int16(2345)).with_scaling(0.01, 0.5))
        .with_tag(Tag::value(
            "tab\tname",
            Value::String("line\nfeed \u{1}".into()),
        ))
        .with_tag(Tag::value("bytes", Value::Bytes(vec![0, 1, 255])))
        .with_tag(Tag::value(
            "af",
            Value::ArrayFloat(vec![1.1, f32::NAN, -0.5]),
        ))
        .with_tag(Tag::value(
            "ad",
            Value::ArrayDouble(vec![0.1, 1e300, 5e-324]),
        ))
        .with_tag(Tag::value("as", Value::ArrayString(vec!["a\"b".into()])))
        .with_tag(Tag::value(
            "custom",
            Value::Custom(Json::Object(vec![
                ("z".into(), Json::Float(2.5)),
                (
                    "a".into(),
                    Json::Array(vec![Json::Uint(u64::MAX), Json::Null]),
                ),
            ])),
        ))
        .with_tag(
            Tag::value("m", Value::Bit(true))
                .with_meta("unit", "°C")
                .with_meta("q", 192i64),
        )
        .with_tag(Tag::error("e", 3002).with_meta("why", "offline"))
}

#[test]
fn steady_state_encoding_does_not_allocate() {
    for format in [Format::Values, Format::Tags] {
        for style in [Style::Neuron, Style::Compact] {
            for upload_err in [true, false] {
                let mut encoder = Encoder::new(
                    EncodeOptions::new()
                        .with_format(format)
                        .with_style(style)
                        .with_upload_err(upload_err),
                );
                let snap = snapshot(1_650_006_388_943);
                let mut out = Vec::new();
                // Warm up: the layout is built and the buffer grows.
                for _ in 0..3 {
                    out.clear();
                    assert!(encoder.encode(&snap, &mut out));
                }
                let expected = out.clone();
                let n = allocations_during(|| {
                    for _ in 0..1000 {
                        out.clear();
                        let _ = encoder.encode(&snap, &mut out);
                    }
                });
                assert_eq!(out, expected);
                assert_eq!(
                    n, 0,
                    "{format}/{style}/upload_err={upload_err}: {n} allocations in 1000 encodes"
                );
            }
        }
    }
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let n = allocations_during(|| {
        let v: Vec<u8> = Vec::with_capacity(64);
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}

/// The test vectors' snapshots: every data type, arrays, metas, `CUSTOM` values,
/// escapes, error tags, several groups.
fn vector_lines() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/snapshots.ndjson"
    );
    std::fs::read_to_string(path)
        .expect("the vectors are part of this crate")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parsing into a reused [`Parser`] and encoding the borrowed view allocates nothing
/// once the buffers have grown: no owned snapshot, no tag list, no name set per line.
#[test]
fn steady_state_parse_and_encode_view_do_not_allocate() {
    let lines = vector_lines();
    let mut parser = Parser::new();
    let mut encoder = Encoder::new(EncodeOptions::default());
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut round = |parser: &mut Parser, encoder: &mut Encoder| {
        let mut sent = 0;
        for line in &lines {
            buf.clear();
            buf.extend_from_slice(line.as_bytes());
            let view = parser.parse(&mut buf, 0).expect("vectors parse");
            out.clear();
            sent += usize::from(encoder.encode_view(&view, &mut out));
        }
        sent
    };
    // Warm up: the parser's tape and tag list and the encoder's layouts grow.
    for _ in 0..3 {
        round(&mut parser, &mut encoder);
    }
    let mut sent = 0;
    let n = allocations_during(|| {
        for _ in 0..100 {
            sent += round(&mut parser, &mut encoder);
        }
    });
    assert!(sent > 0);
    assert_eq!(
        n,
        0,
        "{n} allocations in 100 rounds of {} parse + encode",
        lines.len()
    );
}

/// The whole `tagwire encode` loop (`encode_ndjson`: read a line, parse, encode,
/// write) allocates per run, never per line: twice the lines, the same count.
#[test]
fn ndjson_loop_allocates_nothing_per_line() {
    let lines = vector_lines();
    let input = |rounds: usize| {
        let mut text = String::new();
        for _ in 0..rounds {
            for line in &lines {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    };
    let count = |text: &str| {
        let mut encoder = Encoder::new(EncodeOptions::default());
        let mut summary = None;
        let n = allocations_during(|| {
            summary = Some(
                encode_ndjson(
                    text.as_bytes(),
                    std::io::sink(),
                    &mut encoder,
                    || 0,
                    |e| panic!("{e}"),
                )
                .expect("in-memory I/O"),
            );
        });
        (n, summary.expect("ran"))
    };
    let (small_text, large_text) = (input(10), input(20));
    // Once first: process-wide lazy state (hash seeds) is set up on the first run.
    count(&small_text);
    let (small, s1) = count(&small_text);
    let (large, s2) = count(&large_text);
    assert_eq!(s2.sent, 2 * s1.sent);
    assert!(s1.sent > 0);
    assert_eq!(
        small, large,
        "{small} allocations for {} lines, {large} for {}: the loop allocates per line",
        s1.lines, s2.lines
    );
}
