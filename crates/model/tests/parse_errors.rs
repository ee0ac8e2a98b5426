//! Every rejection rule of the snapshot parser, asserted on the full message so that
//! the wording users see (tag, field, what to do) is part of the contract.

use tagwire_model::{parse_snapshot, parse_snapshots, Json, Position, Reading, Value};

/// Parses `{"node": "n", "group": "g", "tags": [<tags>]}` and returns the error text.
fn tag_err(tags: &str) -> String {
    let mut json = format!(r#"{{"node": "n", "group": "g", "tags": [{tags}]}}"#).into_bytes();
    match parse_snapshot(&mut json, 0) {
        Ok(s) => panic!("accepted: {tags} -> {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn snap_err(json: &str) -> String {
    let mut json = json.as_bytes().to_vec();
    match parse_snapshot(&mut json, 0) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn ok_value(ty: &str, value: &str) -> Value {
    let mut json = format!(
        r#"{{"node": "n", "group": "g", "tags": [{{"name": "t", "type": {ty}, "value": {value}}}]}}"#
    )
    .into_bytes();
    let s = parse_snapshot(&mut json, 0).unwrap_or_else(|e| panic!("{ty} {value}: {e}"));
    match &s.tags[0].reading {
        Reading::Value(v) => v.clone(),
        Reading::Error(c) => panic!("error {c}"),
    }
}

#[test]
fn unknown_type() {
    assert_eq!(
        tag_err(r#"{"name": "t", "type": "FLOAT32", "value": 1}"#),
        r#"snapshot 1, tag "t", field "type": unknown type "FLOAT32"; expected a Neuron type name such as "INT16" or "FLOAT", or its numeric code"#
    );
    assert_eq!(
        tag_err(r#"{"name": "t", "type": 15, "value": 1}"#),
        r#"snapshot 1, tag "t", field "type": unknown type code 15; Neuron's codes are 1-14, 16-18, 20-34 and 40"#
    );
    assert_eq!(
        tag_err(r#"{"name": "t", "type": -1, "value": 1}"#),
        r#"snapshot 1, tag "t", field "type": unknown type code -1; Neuron's codes are 1-14, 16-18, 20-34 and 40"#
    );
    assert_eq!(
        tag_err(r#"{"name": "t", "type": true, "value": 1}"#),
        r#"snapshot 1, tag "t", field "type": expected a type name or numeric code, got a boolean"#
    );
}

#[test]
fn wrong_json_type_for_value() {
    assert_eq!(
        tag_err(r#"{"name": "temp", "type": "FLOAT", "value": "hot"}"#),
        r#"snapshot 1, tag "temp", field "value": expected a number for FLOAT, got a string (the only strings accepted are "NaN", "Infinity" and "-Infinity")"#
    );
    assert_eq!(
        tag_err(r#"{"name": "i", "type": "INT16", "value": 1.5}"#),
        r#"snapshot 1, tag "i", field "value": expected an integer for INT16, got a number with a fraction or exponent"#
    );
    assert_eq!(
        tag_err(r#"{"name": "i", "type": "INT16", "value": 5.0}"#),
        r#"snapshot 1, tag "i", field "value": expected an integer for INT16, got a number with a fraction or exponent"#
    );
    assert_eq!(
        tag_err(r#"{"name": "b", "type": "BOOL", "value": 1}"#),
        r#"snapshot 1, tag "b", field "value": expected true or false for BOOL, got an integer"#
    );
    assert_eq!(
        tag_err(r#"{"name": "s", "type": "STRING", "value": null}"#),
        r#"snapshot 1, tag "s", field "value": expected a string for STRING, got null"#
    );
    assert_eq!(
        tag_err(r#"{"name": "a", "type": "ARRAY_INT8", "value": 3}"#),
        r#"snapshot 1, tag "a", field "value": expected an array of integers for ARRAY_INT8, got an integer"#
    );
    assert_eq!(
        tag_err(r#"{"name": "a", "type": "ARRAY_BOOL", "value": [true, 0]}"#),
        r#"snapshot 1, tag "a", field "value[1]": expected true or false for ARRAY_BOOL, got an integer"#
    );
    assert_eq!(
        tag_err(r#"{"name": "a", "type": "ARRAY_STRING", "value": ["x", ["y"]]}"#),
        r#"snapshot 1, tag "a", field "value[1]": expected a string for ARRAY_STRING, got an array"#
    );
    assert_eq!(
        tag_err(r#"{"name": "bit", "type": "BIT", "value": "1"}"#),
        r#"snapshot 1, tag "bit", field "value": expected 0, 1, true or false for BIT, got a string"#
    );
}

#[test]
fn out_of_range() {
    assert_eq!(
        tag_err(r#"{"name": "u", "type": "UINT8", "value": 256}"#),
        r#"snapshot 1, tag "u", field "value": 256 is out of range for UINT8 (0 to 255)"#
    );
    assert_eq!(
        tag_err(r#"{"name": "i", "type": "INT8", "value": -129}"#),
        r#"snapshot 1, tag "i", field "value": -129 is out of range for INT8 (-128 to 127)"#
    );
    assert_eq!(
        tag_err(r#"{"name": "w", "type": "WORD", "value": -1}"#),
        r#"snapshot 1, tag "w", field "value": -1 is out of range for WORD (0 to 65535)"#
    );
    assert_eq!(
        tag_err(r#"{"name": "l", "type": "INT64", "value": 9223372036854775808}"#),
        r#"snapshot 1, tag "l", field "value": 9223372036854775808 is out of range for INT64 (-9223372036854775808 to 9223372036854775807)"#
    );
    assert_eq!(
        tag_err(r#"{"name": "by", "type": "BYTES", "value": [0, 255, 256]}"#),
        r#"snapshot 1, tag "by", field "value[2]": 256 is out of range for BYTES (0 to 255)"#
    );
    assert_eq!(
        tag_err(r#"{"name": "bit", "type": "BIT", "value": 2}"#),
        r#"snapshot 1, tag "bit", field "value": 2 is out of range for BIT (0 or 1)"#
    );
    assert_eq!(
        tag_err(r#"{"name": "f", "type": "FLOAT", "value": 1e39}"#),
        r#"snapshot 1, tag "f", field "value": 1e39 is out of range for FLOAT (largest magnitude 3.4028235e38)"#
    );
    assert_eq!(
        tag_err(r#"{"name": "e", "error": 2147483648}"#),
        r#"snapshot 1, tag "e", field "error": 2147483648 is out of range; error codes are 32-bit signed integers"#
    );
}

#[test]
fn precision_and_scaling() {
    assert_eq!(
        tag_err(r#"{"name": "p", "type": "FLOAT", "value": 1, "precision": 18}"#),
        r#"snapshot 1, tag "p", field "precision": 18 is above the maximum 17"#
    );
    assert_eq!(
        tag_err(r#"{"name": "p", "type": "FLOAT", "value": 1, "precision": -1}"#),
        r#"snapshot 1, tag "p", field "precision": -1 is negative; expected 0 to 17"#
    );
    assert_eq!(
        tag_err(r#"{"name": "p", "type": "FLOAT", "value": 1, "precision": 1.5}"#),
        r#"snapshot 1, tag "p", field "precision": expected an integer 0 to 17, got a number with a fraction or exponent"#
    );
    assert_eq!(
        tag_err(r#"{"name": "d", "type": "INT16", "value": 1, "decimal": "0.1"}"#),
        r#"snapshot 1, tag "d", field "decimal": expected a number, got a string"#
    );
    assert_eq!(
        tag_err(r#"{"name": "d", "type": "INT16", "value": 1, "bias": null}"#),
        r#"snapshot 1, tag "d", field "bias": expected a number, got null"#
    );
}

#[test]
fn names() {
    assert_eq!(
        tag_err(r#"{"type": "INT8", "value": 1}"#),
        r#"snapshot 1, tag #1, field "name": missing; every tag needs a name"#
    );
    assert_eq!(
        tag_err(
            r#"{"name": "a", "type": "INT8", "value": 1}, {"name": 7, "type": "INT8", "value": 1}"#
        ),
        r#"snapshot 1, tag #2, field "name": expected the tag name as a string, got an integer"#
    );
    assert_eq!(
        tag_err(r#"{"name": "a", "type": "INT8", "value": 1}, {"name": "a", "error": 1}"#),
        r#"snapshot 1, tag "a", field "name": used by an earlier tag of this snapshot; tag names must be unique"#
    );
}

#[test]
fn value_or_error() {
    assert_eq!(
        tag_err(r#"{"name": "t", "type": "INT8", "value": 1, "error": 3002}"#),
        r#"snapshot 1, tag "t", field "error": a tag has either "error" or "type" and "value", not both"#
    );
    assert_eq!(
        tag_err(r#"{"name": "t", "value": 1}"#),
        r#"snapshot 1, tag "t", field "type": missing; give the Neuron data type (name or code), or "error" instead"#
    );
    assert_eq!(
        tag_err(r#"{"name": "t", "type": "INT8"}"#),
        r#"snapshot 1, tag "t", field "value": missing; give the value, or "error" instead of "type" and "value""#
    );
    assert_eq!(
        tag_err(r#"{"name": "t", "error": "bad"}"#),
        r#"snapshot 1, tag "t", field "error": expected an integer error code, got a string"#
    );
}

#[test]
fn unknown_and_duplicate_keys() {
    assert_eq!(
        tag_err(r#"{"name": "t", "type": "FLOAT", "value": 1, "precison": 2}"#),
        r#"snapshot 1, tag "t", field "precison": unknown key; a tag has "name", "type", "value", "error", "precision", "decimal", "bias" and "metas""#
    );
    assert_eq!(
        tag_err(r#"{"name": "t", "type": "FLOAT", "value": 1, "value": 2}"#),
        r#"snapshot 1, tag "t", field "value": given twice"#
    );
    assert_eq!(
        snap_err(r#"{"node": "n", "group": "g", "tags": [], "extra": 1}"#),
        r#"snapshot 1, field "extra": unknown key; a snapshot has "node", "group", "timestamp" and "tags""#
    );
    assert_eq!(
        snap_err(r#"{"node": "n", "node": "m", "group": "g", "tags": []}"#),
        r#"snapshot 1, field "node": given twice"#
    );
}

#[test]
fn metas() {
    assert_eq!(
        tag_err(r#"{"name": "m", "type": "INT8", "value": 1, "metas": {"unit": {"x": 1}}}"#),
        r#"snapshot 1, tag "m", field "metas.unit": expected a string, number or boolean, got an object"#
    );
    assert_eq!(
        tag_err(r#"{"name": "m", "type": "INT8", "value": 1, "metas": ["unit"]}"#),
        r#"snapshot 1, tag "m", field "metas": expected an object of string, number or boolean values, got an array"#
    );
    assert_eq!(
        tag_err(r#"{"name": "m", "type": "INT8", "value": 1, "metas": {"u": 1, "u": 2}}"#),
        r#"snapshot 1, tag "m", field "metas.u": given twice"#
    );
    // Large metas objects take the set-based duplicate check.
    let many: Vec<String> = (0..40).map(|i| format!(r#""k{i}": {i}"#)).collect();
    assert_eq!(
        tag_err(&format!(
            r#"{{"name": "m", "type": "INT8", "value": 1, "metas": {{{}, "k7": 0}}}}"#,
            many.join(", ")
        )),
        r#"snapshot 1, tag "m", field "metas.k7": given twice"#
    );
}

#[test]
fn snapshot_fields() {
    assert_eq!(
        snap_err(r#"{"group": "g", "tags": []}"#),
        r#"snapshot 1, field "node": missing; every snapshot names its south node"#
    );
    assert_eq!(
        snap_err(r#"{"node": "n", "tags": []}"#),
        r#"snapshot 1, field "group": missing; every snapshot names its group"#
    );
    assert_eq!(
        snap_err(r#"{"node": "n", "group": "g"}"#),
        r#"snapshot 1, field "tags": missing; give the group's tags as an array (possibly empty)"#
    );
    assert_eq!(
        snap_err(r#"{"node": 1, "group": "g", "tags": []}"#),
        r#"snapshot 1, field "node": expected the south node name as a string, got an integer"#
    );
    assert_eq!(
        snap_err(r#"{"node": "n", "group": "g", "tags": {}}"#),
        r#"snapshot 1, field "tags": expected an array of tags, got an object"#
    );
    assert_eq!(
        snap_err(r#"{"node": "n", "group": "g", "timestamp": -5, "tags": []}"#),
        r#"snapshot 1, field "timestamp": -5 is negative; expected Unix epoch milliseconds"#
    );
    assert_eq!(
        snap_err(r#"{"node": "n", "group": "g", "timestamp": 1.5, "tags": []}"#),
        r#"snapshot 1, field "timestamp": expected Unix epoch milliseconds as an integer, got a number with a fraction or exponent"#
    );
    assert_eq!(
        snap_err(r#"[1]"#),
        r#"snapshot 1: expected a snapshot object with "node", "group" and "tags", got an array"#
    );
    assert_eq!(
        tag_err(r#""t""#),
        r#"snapshot 1, tag #1: expected a tag object with "name" and "type"/"value" or "error", got a string"#
    );
    assert!(snap_err(r#"{"node": "n""#).starts_with("snapshot 1: invalid JSON: "));
    assert!(snap_err(r#"{"node": "n", "group": "g", "tags": []} x"#)
        .starts_with("snapshot 1: invalid JSON: "));
}

#[test]
fn custom_depth_is_bounded() {
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    assert_eq!(
        tag_err(&format!(
            r#"{{"name": "c", "type": "CUSTOM", "value": {deep}}}"#
        )),
        r#"snapshot 1, tag "c", field "value": nested deeper than 128 levels"#
    );
    let ok = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let _ = ok_value("\"CUSTOM\"", &ok);
}

#[test]
fn accepted_forms() {
    assert_eq!(ok_value("\"float\"", "\"NaN\"").data_type().code(), 9);
    assert!(matches!(ok_value("9", "\"-Infinity\""), Value::Float(f) if f == f32::NEG_INFINITY));
    assert!(
        matches!(ok_value("\"DOUBLE\"", "\"Infinity\""), Value::Double(f) if f == f64::INFINITY)
    );
    assert_eq!(ok_value("\"FLOAT\"", "1.1"), Value::Float(1.1));
    assert_eq!(ok_value("\"FLOAT\"", "7"), Value::Float(7.0));
    assert_eq!(ok_value("\"BIT\"", "true"), Value::Bit(true));
    assert_eq!(ok_value("\"BIT\"", "0"), Value::Bit(false));
    assert_eq!(
        ok_value("\"UINT64\"", "18446744073709551615"),
        Value::Uint64(u64::MAX)
    );
    assert_eq!(
        ok_value("\"ARRAY_FLOAT\"", "[1, \"NaN\", 2.5]")
            .data_type()
            .name(),
        "ARRAY_FLOAT"
    );
    assert_eq!(
        ok_value("40", r#"{"z": 1, "a": [1.0, null, 18446744073709551615]}"#),
        Value::Custom(Json::Object(vec![
            ("z".into(), Json::Int(1)),
            (
                "a".into(),
                Json::Array(vec![Json::Float(1.0), Json::Null, Json::Uint(u64::MAX)])
            ),
        ]))
    );
    // Error tags may carry any i32, metas too.
    let mut json = br#"{"node": "n", "group": "g", "timestamp": 5, "tags": [
        {"name": "e", "error": -2147483648, "metas": {"unit": "bar", "q": 192, "ok": true, "f": 0.5}}]}"#
        .to_vec();
    let s = parse_snapshot(&mut json, 99).unwrap();
    assert_eq!(s.timestamp_ms, 5);
    assert_eq!(s.tags[0].reading, Reading::Error(i32::MIN));
    assert_eq!(
        s.tags[0].metas,
        vec![
            ("unit".to_string(), Json::from("bar")),
            ("q".to_string(), Json::Int(192)),
            ("ok".to_string(), Json::Bool(true)),
            ("f".to_string(), Json::Float(0.5)),
        ]
    );
}

fn body_err(body: &str) -> tagwire_model::SnapshotError {
    let mut b = body.as_bytes().to_vec();
    parse_snapshots(&mut b, 0).expect_err("must be rejected")
}

#[test]
fn bodies() {
    let one = r#"{"node": "n", "group": "g", "tags": []}"#;
    let bad = r#"{"node": "n", "group": "g", "tags": [{"name": "x", "type": "BOOL", "value": 1}]}"#;
    // Single object, pretty-printed over several lines.
    let mut b = "{\n \"node\": \"n\",\n \"group\": \"g\",\n \"tags\": []\n}\n"
        .as_bytes()
        .to_vec();
    assert_eq!(parse_snapshots(&mut b, 0).unwrap().len(), 1);
    // Array.
    let mut b = format!("[{one}, {one}]").into_bytes();
    assert_eq!(parse_snapshots(&mut b, 0).unwrap().len(), 2);
    let mut b = b"  []  ".to_vec();
    assert_eq!(parse_snapshots(&mut b, 0).unwrap().len(), 0);
    // NDJSON with blank lines and CRLF.
    let mut b = format!("{one}\r\n\r\n{one}\n  \n{one}").into_bytes();
    assert_eq!(parse_snapshots(&mut b, 0).unwrap().len(), 3);

    let e = body_err(&format!("[{one}, {bad}]"));
    assert_eq!(e.position(), Position::Snapshot(2));
    assert_eq!(e.index(), Some(2));
    assert_eq!(e.tag(), Some("x"));
    assert_eq!(e.tag_index(), Some(1));
    assert_eq!(e.field(), Some("value"));
    assert_eq!(
        e.message(),
        "expected true or false for BOOL, got an integer"
    );

    let e = body_err(&format!("{one}\n\n{bad}\n{one}\n"));
    assert_eq!(
        e.to_string(),
        r#"line 3, tag "x", field "value": expected true or false for BOOL, got an integer"#
    );
    let e = body_err(&format!("{one}\n{{\"node\": \n"));
    assert_eq!(e.position(), Position::Line(2));
    assert!(e.to_string().starts_with("line 2: invalid JSON: "), "{e}");

    let e = body_err("   \n\n ");
    assert_eq!(e.position(), Position::Body);
    assert_eq!(e.index(), None);
    assert_eq!(
        e.to_string(),
        "body: empty body: expected a snapshot object, a JSON array of snapshots, or NDJSON"
    );
    let e = body_err(&format!("[{one}, "));
    assert!(e.to_string().starts_with("body: invalid JSON: "), "{e}");
    let e = body_err("42");
    assert!(e.to_string().starts_with("snapshot 1: "), "{e}");

    // at_line re-locates an error for callers splitting lines themselves.
    let mut b = bad.as_bytes().to_vec();
    let e = parse_snapshot(&mut b, 0).unwrap_err().at_line(7);
    assert!(e.to_string().starts_with("line 7, tag \"x\""));
}

/// simd-json decodes a lone surrogate to U+0000; the parser must refuse it instead of
/// delivering a changed value, and name where it is.
#[test]
fn lone_surrogates_and_invalid_escapes_are_refused_with_their_place() {
    let cases: [(&str, &str); 7] = [
        (
            r#"{"node":"n\ud800","group":"g","tags":[]}"#,
            r#"snapshot 1, field "node": the string "n\ud800" has an invalid escape (lone surrogate \ud800"#,
        ),
        (
            r#"{"node":"n","group":"g","tags":[{"name":"a\udbff","type":"INT8","value":1}]}"#,
            r#"snapshot 1, tag #1, field "name": the string "a\udbff" has an invalid escape"#,
        ),
        (
            r#"{"node":"n","group":"g","tags":[{"name":"t","type":"STRING","value":"x\udc00y"}]}"#,
            r#"snapshot 1, tag "t", field "value": the string "x\udc00y" has an invalid escape (lone surrogate \udc00: a low surrogate"#,
        ),
        (
            r#"{"node":"n","group":"g","tags":[{"name":"t","type":"STRING","value":"x\qy"}]}"#,
            r#"snapshot 1, tag "t", field "value": the string "x\qy" has an invalid escape (invalid escape \ followed by 'q'"#,
        ),
        (
            r#"{"node":"n","group":"g","tags":[{"name":"a","type":"INT8","value":1},{"name":"t","type":"ARRAY_STRING","value":["ok","\ud800\u0041"]}]}"#,
            r#"snapshot 1, tag "t", field "value[1]": the string "\ud800\u0041""#,
        ),
        (
            r#"{"node":"n","group":"g","tags":[{"name":"t","type":"INT8","value":1,"metas":{"u\ud800":"x"}}]}"#,
            r#"snapshot 1, tag "t", field "metas": the string "u\ud800""#,
        ),
        (
            r#"{"node":"n","group":"g","tags":[{"name":"t","type":"CUSTOM","value":{"a":[1,"\udfff"]}}]}"#,
            r#"snapshot 1, tag "t", field "value.a[1]": the string "\udfff""#,
        ),
    ];
    for (json, want) in cases {
        let mut b = json.as_bytes().to_vec();
        let e = parse_snapshot(&mut b, 0).expect_err(json).to_string();
        assert!(e.starts_with(want), "{json}\n got  {e}\n want {want}…");
        assert!(e.contains("refused rather than delivered changed"), "{e}");
    }
}

#[test]
fn bad_escapes_are_located_in_arrays_and_ndjson() {
    let one = r#"{"node":"n","group":"g","tags":[]}"#;
    let bad = r#"{"node":"n","group":"g","tags":[{"name":"a\ud800","type":"INT8","value":1}]}"#;
    let mut array = format!("[{one},{bad}]").into_bytes();
    let e = parse_snapshots(&mut array, 0).unwrap_err();
    assert_eq!(e.position(), Position::Snapshot(2));
    assert_eq!((e.tag_index(), e.field()), (Some(1), Some("name")));
    let mut nd = format!("{one}\n\n{bad}\n").into_bytes();
    let e = parse_snapshots(&mut nd, 0).unwrap_err();
    assert_eq!(e.position(), Position::Line(3));
    // Two names that simd-json would both decode to "a\0" are refused, not reported as
    // duplicates of each other.
    let mut dup = br#"{"node":"n","group":"g","tags":[{"name":"a\ud800","error":1},{"name":"a\udbff","error":1}]}"#.to_vec();
    let e = parse_snapshot(&mut dup, 0).unwrap_err();
    assert_eq!((e.tag_index(), e.field()), (Some(1), Some("name")));
    // A valid pair and an escaped backslash before "ud800" are accepted unchanged.
    let mut ok = br#"{"node":"n\ud83d\ude00\\ud800","group":"g","tags":[]}"#.to_vec();
    assert_eq!(
        parse_snapshot(&mut ok, 0).unwrap().node,
        "n\u{1F600}\\ud800"
    );
}

/// One reused `Parser` gives the same errors as `parse_snapshot`, recovers after each,
/// and its views hold the same data as the owned parse (names, arrays from the tape,
/// metas, `CUSTOM` values).
#[test]
fn reused_parser_matches_parse_snapshot() {
    let mut parser = tagwire_model::Parser::new();
    let good = r#"{"node":"n","group":"g","timestamp":5,"tags":[
        {"name":"a\n","type":"ARRAY_INT16","value":[1,-2,300]},
        {"name":"f","type":"ARRAY_FLOAT","value":[1.5,"-Infinity"]},
        {"name":"s","type":"ARRAY_STRING","value":["x","y\"z"]},
        {"name":"c","type":"CUSTOM","value":{"k":[1,{"m":null}],"u":18446744073709551615}},
        {"name":"m","type":"INT8","value":1,"metas":{"unit":"C","n":2.5}},
        {"name":"e","error":3002}]}"#;
    let bads = [
        r#"{"node":"n","group":"g","tags":[{"name":"a","type":"INT8","value":300}]}"#,
        r#"{"node":"n","group":"g","tags":[{"name":"a","error":1},{"name":"a","error":2}]}"#,
        r#"{"node":"n","group":"g","tags":[{"name":"a","type":"ARRAY_UINT8","value":[1,256]}]}"#,
        r#"{"node":"n","group":"g","tags":[{"name":"a","type":"INT8","value":1,"metas":{"x":1,"x":2}}]}"#,
        r#"{"node":"n","group":"g","tags":[{"name":"a\ud800","error":1}]}"#,
        r#"{"node":"n","group":"g","tags":[}"#,
    ];
    for bad in bads {
        let want = parse_snapshot(&mut bad.as_bytes().to_vec(), 0).unwrap_err();
        let mut buf = bad.as_bytes().to_vec();
        let got = parser.parse(&mut buf, 0).unwrap_err();
        assert_eq!(got, want, "{bad}");
        // The advice is in Debug too, for `fn main() -> Result<..>` users.
        assert!(
            format!("{got:?}").contains(&format!("{:?}", got.message())),
            "{got:?}"
        );
        let owned = parse_snapshot(&mut good.as_bytes().to_vec(), 0).unwrap();
        let mut buf = good.as_bytes().to_vec();
        let view = parser.parse(&mut buf, 0).unwrap();
        assert_eq!(view.to_snapshot(), owned);
        assert_eq!(view.tags[0].name, "a\n");
    }
}
