//! The test vectors (`tests/vectors/`, described in `docs/formats.md` at the repository root), byte for byte: every snapshot of
//! `snapshots.ndjson` through the parser and the encoder, in every format and error
//! setting, against the expected messages; and the compact style against
//! `compact.json`.

use std::path::PathBuf;

use serde_json::Value as J;
use tagwire_encode::{encode_ndjson, EncodeOptions, Encoder, Format, Style};
use tagwire_model::{parse_snapshot, Snapshot};

fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors"));
    assert!(
        dir.join("snapshots.ndjson").is_file(),
        "test vectors not found at {} (they are part of this crate: is the checkout complete?)",
        dir.display()
    );
    dir
}

fn read(name: &str) -> String {
    let path = vectors_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn snapshots() -> Vec<Snapshot> {
    read("snapshots.ndjson")
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let mut bytes = line.as_bytes().to_vec();
            parse_snapshot(&mut bytes, 0)
                .unwrap_or_else(|e| panic!("snapshots.ndjson line {}: {e}", i + 1))
        })
        .collect()
}

/// Encodes every snapshot (with one encoder, so the layout cache is exercised across
/// groups) and returns the sent messages, one per line.
fn encode_all(snaps: &[Snapshot], encoder: &mut Encoder) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = Vec::new();
    for s in snaps {
        out.clear();
        if encoder.encode(s, &mut out) {
            lines.push(String::from_utf8(out.clone()).expect("output is UTF-8"));
        } else {
            assert!(out.is_empty(), "a skipped snapshot must append nothing");
        }
    }
    lines
}

fn check(format: Format, upload_err: bool, file: &str) {
    let snaps = snapshots();
    let expected: Vec<String> = read(file).lines().map(str::to_owned).collect();
    let options = EncodeOptions::new()
        .with_format(format)
        .with_style(Style::Neuron)
        .with_upload_err(upload_err);
    // Twice with the same encoder: the second round runs on a warm layout cache.
    let mut encoder = Encoder::new(options);
    for round in 1..=2 {
        let got = encode_all(&snaps, &mut encoder);
        assert_eq!(
            got.len(),
            expected.len(),
            "{file} (round {round}): {} messages sent, {} expected",
            got.len(),
            expected.len()
        );
        for (n, (g, e)) in got.iter().zip(&expected).enumerate() {
            if g != e {
                let at = g
                    .bytes()
                    .zip(e.bytes())
                    .position(|(a, b)| a != b)
                    .unwrap_or(g.len().min(e.len()));
                let from = at.saturating_sub(60);
                panic!(
                    "{file} line {} (round {round}): first difference at byte {at}\n  got:      …{}\n  expected: …{}",
                    n + 1,
                    String::from_utf8_lossy(&g.as_bytes()[from..(at + 60).min(g.len())]),
                    String::from_utf8_lossy(&e.as_bytes()[from..(at + 60).min(e.len())]),
                );
            }
        }
    }
}

/// The parse-and-encode loop of `tagwire encode` (borrowed views, no owned snapshot)
/// writes the same bytes as the owned path checked by [`check`].
fn check_ndjson_loop(format: Format, upload_err: bool, file: &str) {
    let expected = read(file);
    let options = EncodeOptions::new()
        .with_format(format)
        .with_upload_err(upload_err);
    let mut encoder = Encoder::new(options);
    let mut out = Vec::new();
    let input = read("snapshots.ndjson");
    let summary = encode_ndjson(
        input.as_bytes(),
        &mut out,
        &mut encoder,
        || 0,
        |e| panic!("{file}: {e}"),
    )
    .expect("in-memory I/O");
    assert_eq!(summary.bad, 0);
    assert_eq!(summary.sent as usize, expected.lines().count(), "{file}");
    assert!(
        String::from_utf8(out).expect("UTF-8") == expected,
        "{file}: encode_ndjson's output differs from the vectors"
    );
}

#[test]
fn ndjson_loop_writes_the_vectors() {
    check_ndjson_loop(Format::Values, true, "values.neuron.txt");
    check_ndjson_loop(Format::Values, false, "values.neuron.noerr.txt");
    check_ndjson_loop(Format::Tags, true, "tags.neuron.txt");
    check_ndjson_loop(Format::Tags, false, "tags.neuron.noerr.txt");
}

#[test]
fn values_neuron() {
    check(Format::Values, true, "values.neuron.txt");
}

#[test]
fn values_neuron_noerr() {
    check(Format::Values, false, "values.neuron.noerr.txt");
}

#[test]
fn tags_neuron() {
    check(Format::Tags, true, "tags.neuron.txt");
}

#[test]
fn tags_neuron_noerr() {
    check(Format::Tags, false, "tags.neuron.noerr.txt");
}

/// The same encoder reused across all formats' inputs in a different order gives the
/// same bytes as fresh encoders (the cache never leaks one group's names into another).
#[test]
fn warm_cache_in_any_order_matches_cold() {
    let snaps = snapshots();
    for format in [Format::Values, Format::Tags] {
        for style in [Style::Neuron, Style::Compact] {
            let options = EncodeOptions::new()
                .with_format(format)
                .with_style(style)
                .with_upload_err(true);
            let mut warm = Encoder::new(options);
            for s in snaps.iter().rev().chain(&snaps).chain(snaps.iter().rev()) {
                let cold = Encoder::new(options).encode_to_vec(s);
                assert_eq!(warm.encode_to_vec(s), cold, "{}/{}", s.node, s.group);
            }
        }
    }
}

/// Characters outside JSON strings, to check that compact output has no whitespace.
fn outside_strings(text: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut esc = false;
    for c in text.chars() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// Compares one tag's compact value with `compact.json`'s expectation.
fn same_value(got: &J, want: &J, f32_compare: bool) -> bool {
    match (got, want) {
        (J::Number(g), J::Number(w)) if f32_compare => {
            g.as_f64().map(|x| x as f32) == w.as_f64().map(|x| x as f32)
        }
        (J::Number(g), J::Number(w)) => {
            if let (Some(a), Some(b)) = (g.as_i64(), w.as_i64()) {
                a == b
            } else if let (Some(a), Some(b)) = (g.as_u64(), w.as_u64()) {
                a == b
            } else {
                g.as_f64() == w.as_f64()
                    && g.as_f64().map(f64::is_sign_negative)
                        == w.as_f64().map(f64::is_sign_negative)
            }
        }
        (J::Array(g), J::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same_value(a, b, f32_compare))
        }
        (J::Object(g), J::Object(w)) => {
            g.len() == w.len()
                && g.iter()
                    .zip(w)
                    .all(|((ka, a), (kb, b))| ka == kb && same_value(a, b, f32_compare))
        }
        _ => got == want,
    }
}

#[test]
fn compact_matches_compact_json() {
    let snaps = snapshots();
    let expected: J = serde_json::from_str(&read("compact.json")).expect("compact.json is JSON");
    let expected = expected.as_array().expect("compact.json is an array");
    assert_eq!(
        expected.len(),
        snaps.len(),
        "one compact.json entry per snapshot"
    );
    for format in [Format::Values, Format::Tags] {
        let mut encoder = Encoder::new(
            EncodeOptions::new()
                .with_format(format)
                .with_style(Style::Compact)
                .with_upload_err(true),
        );
        for (n, (snap, want_tags)) in snaps.iter().zip(expected).enumerate() {
            let bytes = encoder.encode_to_vec(snap).expect("sent with upload_err");
            let text = std::str::from_utf8(&bytes).unwrap();
            let ctx = format!("{format} snapshot {}", n + 1);
            let outside = outside_strings(text);
            assert!(
                !outside.contains([' ', '\n', '\t', '\r']),
                "{ctx}: whitespace outside strings in {text}"
            );
            let msg: J = serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("{ctx}: not JSON ({e}): {text}"));
            assert_eq!(msg["node"], J::from(snap.node.as_str()), "{ctx}");
            assert_eq!(msg["group"], J::from(snap.group.as_str()), "{ctx}");
            assert_eq!(msg["timestamp"], J::from(snap.timestamp_ms), "{ctx}");
            let want_tags = want_tags.as_array().expect("entry is an array of tags");
            for want in want_tags {
                let name = want["name"].as_str().expect("name");
                let f32_compare = want.get("f32").and_then(J::as_bool).unwrap_or(false);
                let got = match format {
                    Format::Values => {
                        if let Some(e) = want.get("error") {
                            assert_eq!(&msg["errors"][name], e, "{ctx} tag {name:?} error");
                            continue;
                        }
                        msg["values"][name].clone()
                    }
                    Format::Tags => {
                        let obj = msg["tags"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|t| t["name"] == name)
                            .unwrap_or_else(|| panic!("{ctx}: tag {name:?} missing"))
                            .clone();
                        if let Some(e) = want.get("error") {
                            assert_eq!(&obj["error"], e, "{ctx} tag {name:?} error");
                            continue;
                        }
                        obj["value"].clone()
                    }
                };
                assert!(
                    same_value(&got, &want["value"], f32_compare),
                    "{ctx} tag {name:?}: got {got}, want {} (f32: {f32_compare})",
                    want["value"]
                );
            }
            // Exactly the expected tags, no more.
            let count = match format {
                Format::Values => {
                    msg["values"].as_object().unwrap().len()
                        + msg["errors"].as_object().unwrap().len()
                }
                Format::Tags => msg["tags"].as_array().unwrap().len(),
            };
            assert_eq!(count, want_tags.len(), "{ctx}: tag count");
        }
    }
}
