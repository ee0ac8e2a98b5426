//! Hostile input: the parser must never panic, whatever the bytes, and whatever it
//! accepts must be a well-formed snapshot.

use proptest::prelude::*;
use tagwire_model::{parse_snapshot, parse_snapshots, Reading, Snapshot, Value, MAX_PRECISION};

/// A valid snapshot that uses every feature, as the seed for mutations.
const SEED: &str = r#"{"node": "plc \"1\"", "group": "grp\\1/ü", "timestamp": 1650006388943, "tags": [
 {"name": "i8", "type": "INT8", "value": -128}, {"name": "u64", "type": 8, "value": 18446744073709551615},
 {"name": "f", "type": "FLOAT", "value": 1.1, "precision": 2}, {"name": "d", "type": "DOUBLE", "value": "NaN"},
 {"name": "s", "type": "STRING", "value": "a\nb\u0001"}, {"name": "by", "type": "BYTES", "value": [1, 2, 255]},
 {"name": "bit", "type": "BIT", "value": true}, {"name": "af", "type": "ARRAY_FLOAT", "value": [1.5, "Infinity"]},
 {"name": "as", "type": "ARRAY_STRING", "value": ["x", ""]}, {"name": "sc", "type": "UINT16", "value": 7, "decimal": 0.1, "bias": -1},
 {"name": "c", "type": "CUSTOM", "value": {"z": [1, 2.5, {"k": null}], "e": {}}},
 {"name": "m", "type": "BOOL", "value": false, "metas": {"unit": "C", "q": 192}},
 {"name": "e", "error": 3002}]}"#;

/// Invariants of anything the parser accepts.
fn well_formed(s: &Snapshot) {
    let mut names = std::collections::HashSet::new();
    for t in &s.tags {
        assert!(names.insert(t.name.as_str()), "duplicate {:?}", t.name);
        assert!(t.precision <= MAX_PRECISION);
        assert!(t.decimal.is_finite() && t.bias.is_finite());
        if let Reading::Value(v) = &t.reading {
            // data_type() is total; calling it checks nothing panics for any variant.
            let _ = v.data_type().name();
        }
    }
}

fn run(bytes: &[u8]) {
    let mut a = bytes.to_vec();
    if let Ok(s) = parse_snapshot(&mut a, 1) {
        well_formed(&s);
    }
    let mut b = bytes.to_vec();
    if let Ok(v) = parse_snapshots(&mut b, 1) {
        v.iter().for_each(well_formed);
    }
}

#[test]
fn seed_is_valid() {
    let mut b = SEED.as_bytes().to_vec();
    let s = parse_snapshot(&mut b, 0).unwrap();
    assert_eq!(s.tags.len(), 13);
    well_formed(&s);
}

/// A mutation of the seed: replace, insert or delete bytes (biased towards the bytes
/// that matter to JSON), or cut it short.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![
        any::<u8>(),
        proptest::sample::select(b"{}[]\",:0123456789-.eE\\ntrue".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1usize..20).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len().max(1);
        match *e {
            Edit::Set(i, b) => {
                if !bytes.is_empty() {
                    bytes[i % len] = b;
                }
            }
            Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Edit::Delete(i, n) => {
                let start = i % len;
                let end = (start + n).min(bytes.len());
                if start < end {
                    bytes.drain(start..end);
                }
            }
            Edit::Truncate(i) => bytes.truncate(i % len),
        }
    }
    bytes
}

/// A random JSON text: arbitrary shapes with the keys and strings the parser looks
/// for, so that deep paths of the parser are reached, not only the syntax check.
fn json_text() -> impl Strategy<Value = String> {
    let key = proptest::sample::select(vec![
        "node",
        "group",
        "timestamp",
        "tags",
        "name",
        "type",
        "value",
        "error",
        "precision",
        "decimal",
        "bias",
        "metas",
        "x",
    ]);
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() {
            format!("{f:e}")
        } else {
            "1e400".into()
        }),
        proptest::sample::select(vec![
            "\"INT8\"",
            "\"FLOAT\"",
            "\"CUSTOM\"",
            "\"BIT\"",
            "\"ARRAY_UINT8\"",
            "\"NaN\"",
            "\"Infinity\"",
            "\"\"",
            "\"\\u0000\"",
            "17",
            "18",
            "40",
            "255",
            "-1",
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec((key.clone(), inner), 0..6).prop_map(|v| {
                let members: Vec<String> = v
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\": {v}"))
                    .collect();
                format!("{{{}}}", members.join(", "))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct("tests/fuzz.proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        run(&bytes);
    }

    #[test]
    fn mutated_snapshots_never_panic(edits in proptest::collection::vec(edit(), 1..8)) {
        let bytes = apply(SEED.as_bytes().to_vec(), &edits);
        run(&bytes);
        // The same snapshot in all three body shapes.
        let mut ndjson = bytes.clone();
        ndjson.push(b'\n');
        ndjson.extend_from_slice(&bytes);
        run(&ndjson);
        let mut array = b"[".to_vec();
        array.extend_from_slice(&bytes);
        array.extend_from_slice(b", ");
        array.extend_from_slice(&bytes);
        array.push(b']');
        run(&array);
    }

    /// Numbers are read exactly: the nearest f64 (FLOAT: then the nearest f32), and
    /// integers at full 64-bit range.
    #[test]
    fn numbers_parse_exactly(bits in any::<u64>(), i in any::<i64>(), u in any::<u64>()) {
        let d = f64::from_bits(bits);
        prop_assume!(d.is_finite());
        for text in [format!("{d:e}"), format!("{d:?}")] {
            let json = format!(
                r#"{{"node": "n", "group": "g", "tags": [{{"name": "d", "type": "DOUBLE", "value": {text}}},
                {{"name": "f", "type": "FLOAT", "value": {text}}}, {{"name": "i", "type": "INT64", "value": {i}}},
                {{"name": "u", "type": "UINT64", "value": {u}}}]}}"#
            );
            let mut bytes = json.into_bytes();
            match parse_snapshot(&mut bytes, 0) {
                Ok(s) => {
                    prop_assert_eq!(&s.tags[0].reading, &Reading::Value(Value::Double(d)));
                    prop_assert_eq!(&s.tags[1].reading, &Reading::Value(Value::Float(d as f32)));
                    prop_assert_eq!(&s.tags[2].reading, &Reading::Value(Value::Int64(i)));
                    prop_assert_eq!(&s.tags[3].reading, &Reading::Value(Value::Uint64(u)));
                }
                // Only a FLOAT out of f32 range may be refused.
                Err(e) => prop_assert!(
                    (d as f32).is_infinite() && e.tag() == Some("f"),
                    "{} for {}", e, text
                ),
            }
        }
    }

    #[test]
    fn random_json_never_panics(text in json_text()) {
        run(text.as_bytes());
        let wrapped = format!(r#"{{"node": "n", "group": "g", "tags": [{{"name": "t", "type": "CUSTOM", "value": {text}}}, {text}]}}"#);
        run(wrapped.as_bytes());
    }
}
