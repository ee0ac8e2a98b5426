//! Parse errors in words: what simd-json reports as an internal tape error (NaN,
//! Infinity, data after the value, a byte-order mark) is named, with what to send, and
//! a single object is never reported as NDJSON's `line 1`.

use tagwire_model::parse_snapshots;

fn err(body: &str) -> String {
    parse_snapshots(&mut body.as_bytes().to_vec(), 0)
        .unwrap_err()
        .to_string()
}

const OK: &str =
    r#"{"node": "n", "group": "g", "tags": [{"name": "t", "type": "INT32", "value": 1}]}"#;

#[test]
fn nan_and_infinity_are_named() {
    let nan = err(&OK.replace("\"value\": 1", "\"value\": NaN"));
    assert!(
        nan.starts_with(
            "snapshot 1: invalid JSON: NaN and Infinity are not JSON numbers (byte 77)"
        ),
        "{nan}"
    );
    let inf = err(&format!(
        "[{}]",
        OK.replace("\"value\": 1", "\"value\": -Infinity")
    ));
    assert!(
        inf.starts_with("body: invalid JSON: NaN and Infinity"),
        "{inf}"
    );
    assert!(!inf.contains("TapeError"), "{inf}");
}

#[test]
fn trailing_data_after_a_single_object_is_named_as_such_not_line_1() {
    for body in [
        format!("{OK} garbage"),
        format!("{OK}}}"),
        format!("{OK}  {OK}\n"),
    ] {
        let e = err(&body);
        assert!(
            e.starts_with(
                "snapshot 1: invalid JSON: unexpected data after the end of the JSON value"
            ),
            "{body:?} -> {e}"
        );
    }
    let e = err(&format!("[{OK}] x"));
    assert!(
        e.starts_with("body: invalid JSON: unexpected data after"),
        "{e}"
    );
    // NDJSON still works, and its errors still have lines.
    let mut two = format!("{OK}\n{OK}\n").into_bytes();
    assert_eq!(parse_snapshots(&mut two, 0).unwrap().len(), 2);
    let e = err(&format!("{OK}\n{OK} x\n"));
    assert!(
        e.starts_with("line 2: invalid JSON: unexpected data after"),
        "{e}"
    );
}

#[test]
fn a_byte_order_mark_is_named() {
    let e = err(&format!("\u{feff}{OK}"));
    assert_eq!(
        e,
        "snapshot 1: invalid JSON: the text starts with a UTF-8 byte-order mark (EF BB BF): send JSON without it"
    );
}
