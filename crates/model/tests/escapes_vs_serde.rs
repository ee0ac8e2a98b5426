//! The parser's verdict on string escapes against serde_json's: whatever serde_json
//! refuses (lone surrogates, invalid escapes, bad UTF-8, control characters) we refuse,
//! and whatever it accepts we accept with the same decoded text. simd-json alone would
//! turn a lone surrogate into U+0000.

use proptest::prelude::*;
use tagwire_model::{parse_snapshot, Reading, Value};

/// One piece of a JSON string body, biased towards escapes and surrogates.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z é😀]{1,3}",
        prop::sample::select(vec![
            "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t"
        ])
        .prop_map(str::to_owned),
        any::<char>().prop_map(|c| format!("\\{c}")),
        (0xD7F0u32..0xE010).prop_map(|u| format!("\\u{u:04x}")),
        (0xD800u32..0xDC00, 0xDC00u32..0xE000).prop_map(|(h, l)| format!("\\u{h:04X}\\u{l:04x}")),
        any::<u16>().prop_map(|u| format!("\\u{u:04x}")),
        "\\\\u[0-9a-fA-Fg]{0,4}",
    ]
}

fn body() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..6).prop_map(|p| p.concat())
}

/// Our verdict and decoded (node, tag name, string value, meta value).
fn ours(json: &[u8]) -> Result<(String, String, String, String), String> {
    let mut b = json.to_vec();
    let s = parse_snapshot(&mut b, 0).map_err(|e| e.to_string())?;
    let t = &s.tags[0];
    let Reading::Value(Value::String(v)) = &t.reading else {
        panic!("not a string: {t:?}")
    };
    let meta = match &t.metas[0].1 {
        tagwire_model::Json::String(m) => m.clone(),
        other => panic!("meta {other:?}"),
    };
    Ok((s.node, t.name.clone(), v.clone(), meta))
}

fn serde(json: &[u8]) -> Result<(String, String, String, String), String> {
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let s = |v: &serde_json::Value| v.as_str().expect("string").to_owned();
    let tag = &v["tags"][0];
    Ok((
        s(&v["node"]),
        s(&tag["name"]),
        s(&tag["value"]),
        s(&tag["metas"]["m"]),
    ))
}

fn snapshot(node: &str, name: &str, value: &str, meta: &str) -> String {
    format!(
        r#"{{"node":"{node}","group":"g","tags":[{{"name":"{name}","type":"STRING","value":"{value}","metas":{{"m":"{meta}"}}}}]}}"#
    )
}

fn same_verdict(json: &[u8]) -> Result<(), TestCaseError> {
    match (ours(json), serde(json)) {
        (Ok(a), Ok(b)) => prop_assert_eq!(
            a,
            b,
            "decoded differently: {}",
            String::from_utf8_lossy(json)
        ),
        (Err(_), Err(_)) => {}
        (a, b) => prop_assert!(
            false,
            "verdicts differ on {}: ours {:?}, serde_json {:?}",
            String::from_utf8_lossy(json),
            a,
            b
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Arbitrary escapes in every string field a snapshot delivers.
    #[test]
    fn escapes_match_serde_json(
        node in body(), name in body(), value in body(), meta in body(), which in 0usize..4,
    ) {
        // All four fields at once, and one field at a time so that a bad escape in one
        // is not masked by another.
        same_verdict(snapshot(&node, &name, &value, &meta).as_bytes())?;
        let plain = "p";
        let one = match which {
            0 => snapshot(&node, plain, plain, plain),
            1 => snapshot(plain, &name, plain, plain),
            2 => snapshot(plain, plain, &value, plain),
            _ => snapshot(plain, plain, plain, &meta),
        };
        same_verdict(one.as_bytes())?;
    }

    /// Arbitrary bytes (but no quote, so the document keeps its shape) in a string.
    #[test]
    fn arbitrary_bytes_match_serde_json(
        bytes in prop::collection::vec(any::<u8>().prop_filter("no quote", |b| *b != b'"'), 0..24),
    ) {
        let mut json = br#"{"node":"n","group":"g","tags":[{"name":"t","type":"STRING","value":""#.to_vec();
        json.extend_from_slice(&bytes);
        json.extend_from_slice(br#"","metas":{"m":"x"}}]}"#);
        same_verdict(&json)?;
    }
}
