//! `examples/encode_ndjson.rs` run as a user would (`cargo run --example`): the test
//! vectors' snapshots in, Neuron's messages out, a bad line reported with its number.

use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn encode_ndjson_example_writes_the_vectors_and_reports_a_bad_line() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
    let mut input = std::fs::read(format!("{dir}/snapshots.ndjson")).expect("vectors");
    let good_lines = input.split(|b| *b == b'\n').count() - 1;
    input.extend_from_slice(
        b"{\"node\": \"n\", \"group\": \"g\", \"tags\": [{\"name\": \"t\", \"type\": \"INT8\", \"value\": 300}]}\n",
    );
    let expected = std::fs::read_to_string(format!("{dir}/values.neuron.txt")).expect("vectors");

    let mut child = Command::new(env!("CARGO"))
        .args([
            "run",
            "-q",
            "-p",
            "tagwire-encode",
            "--example",
            "encode_ndjson",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(&input)
        .expect("write stdin");
    let out = child.wait_with_output().expect("the example finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad line exits 1; stderr: {stderr}"
    );
    assert_eq!(
        String::from_utf8(out.stdout).expect("UTF-8"),
        expected,
        "the example's messages differ from the vectors"
    );
    let bad_line = good_lines + 1;
    assert!(
        stderr.contains(&format!(
            "line {bad_line}, tag \"t\", field \"value\": 300 is out of range for INT8 (-128 to 127)"
        )),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("1 bad"), "stderr: {stderr}");
}
