//! The `encode` and `check` commands: vectors byte for byte, and bad input with its message.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};

use support::tagwire;

fn vectors() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../encode/tests/vectors"
    ));
    assert!(
        dir.join("snapshots.ndjson").exists(),
        "test vectors not found at {} (they live in crates/encode/tests/vectors/)",
        dir.display()
    );
    dir
}

fn encode(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = tagwire()
        .arg("encode")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn every_vector_passes_through_the_encode_command() {
    let dir = vectors();
    let input = std::fs::read(dir.join("snapshots.ndjson")).unwrap();
    for (format, upload_err, file) in [
        ("values", "true", "values.neuron.txt"),
        ("values", "false", "values.neuron.noerr.txt"),
        ("tags", "true", "tags.neuron.txt"),
        ("tags", "false", "tags.neuron.noerr.txt"),
    ] {
        let out = encode(
            &[
                "--format",
                format,
                "--style",
                "neuron",
                "--upload-err",
                upload_err,
            ],
            &input,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = std::fs::read_to_string(dir.join(file)).unwrap();
        let got = String::from_utf8(out.stdout).unwrap();
        let (want_lines, got_lines): (Vec<_>, Vec<_>) =
            (want.lines().collect(), got.lines().collect());
        assert_eq!(got_lines.len(), want_lines.len(), "{file}: line count");
        for (i, (g, w)) in got_lines.iter().zip(&want_lines).enumerate() {
            assert_eq!(g, w, "{file}: line {}", i + 1);
        }
    }
}

#[test]
fn neuron_format_codes_work_on_the_command_line() {
    let line = br#"{"node": "n", "group": "g", "timestamp": 1, "tags": [{"name": "a", "type": "INT8", "value": 1}]}"#;
    let out = encode(&["--format", "1"], line);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"node\": \"n\", \"group\": \"g\", \"timestamp\": 1, \"tags\": [{\"name\": \"a\", \"value\": 1}]}\n"
    );
}

#[test]
fn bad_lines_are_reported_with_their_number_and_the_rest_is_encoded() {
    let good = r#"{"node": "n", "group": "g", "timestamp": 1, "tags": []}"#;
    let input = format!(
        "{good}\nnot json\n{good}\n{}\n{}\n{good}\n",
        r#"{"node": "n", "group": "g", "tags": [{"name": "t", "type": "INT8", "value": 300}]}"#,
        r#"{"node": "n", "group": "g", "tags": [{"name": "t", "type": "NOPE", "value": 1}]}"#,
    );
    let out = encode(&[], input.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: invalid JSON"), "{err}");
    assert!(
        err.contains("line 4, tag \"t\", field \"value\": 300 is out of range for INT8"),
        "{err}"
    );
    assert!(
        err.contains("line 5, tag \"t\", field \"type\"") && err.contains("NOPE"),
        "{err}"
    );
    assert!(
        !err.contains("line 1") && !err.contains("line 3") && !err.contains("line 6"),
        "{err}"
    );
}

/// A lone surrogate used to be delivered as U+0000 (exit 0); it is a line error now,
/// and the line buffer reused between lines carries nothing over (CRLF, last line
/// without a newline).
#[test]
fn lone_surrogates_are_line_errors_not_changed_values() {
    let good = r#"{"node": "n", "group": "g", "timestamp": 1, "tags": []}"#;
    let input = format!(
        "{good}\r\n{}\n{}",
        r#"{"node": "n", "group": "g", "tags": [{"name": "t", "type": "STRING", "value": "a\ud800"}]}"#,
        r#"{"node": "m", "group": "g", "timestamp": 2, "tags": []}"#,
    );
    let out = encode(&["--style", "compact"], input.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"line 2, tag "t", field "value": the string "a\ud800" has an invalid escape (lone surrogate"#),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"node\":\"n\",\"group\":\"g\",\"timestamp\":1,\"values\":{},\"errors\":{},\"metas\":{}}\n\
         {\"node\":\"m\",\"group\":\"g\",\"timestamp\":2,\"values\":{},\"errors\":{},\"metas\":{}}\n"
    );
}

fn check(config: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).unwrap();
    let out = tagwire()
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn check_accepts_a_usable_config() {
    let (code, out) = check(
        "[[south]]\nname = \"sim\"\nkind = \"simulator\"\n[[north]]\nname = \"c\"\nurl = \"ws://[::1]:9000/x\"\nformat = \"tags\"\n",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("usable"), "{out}");
}

#[test]
fn check_names_each_bad_key() {
    for (config, expect) in [
        (
            "[[north]]\nname = \"c\"\nurl = \"ws://h/\"\nurll = \"x\"\n",
            "north[0].urll: unknown key (did you mean \"url\"?)",
        ),
        (
            "[[north]]\nname = \"c\"\nurl = \"http://h/\"\n",
            "north[0].url:",
        ),
        ("[[north]]\nname = \"c\"\n", "north[0].url: missing"),
        (
            "[[north]]\nname = \"c\"\nurl = \"ws://h/\"\nformat = \"xml\"\n",
            "north[0].format: unknown format \"xml\"",
        ),
        (
            "[[south]]\nname = \"s\"\nkind = \"modbus\"\n",
            "south[0].kind: unknown kind \"modbus\"",
        ),
        ("[[north]\nname = 1", "not valid TOML"),
        (
            "[[north]]\nname = \"c\"\nurl = \"wss://h/\"\nca = \"/nonexistent/ca.pem\"\n",
            "north[0].ca:",
        ),
        (
            "[[north]]\nname = \"c\"\nurl = \"ws://h/\"\nupload_drv_state = true\nupload_drv_state_interval = 0\n",
            "north[0].upload_drv_state_interval: 0 is out of range: use 1 to 3600",
        ),
        (
            "[[north]]\nname = \"c\"\nurl = \"ws://h/\"\nupload_drv_state = \"yes\"\n",
            "north[0].upload_drv_state: expected true or false, found string",
        ),
        (
            "[[north]]\nname = \"c\"\nurl = \"ws://h/\"\nupload_drv_state_interval = 10\n",
            "north[0].upload_drv_state_interval: has no effect without upload_drv_state = true",
        ),
    ] {
        let (code, out) = check(config);
        assert_eq!(code, 1, "{config}\n{out}");
        assert!(out.contains(expect), "expected {expect:?} in:\n{out}");
    }
}

#[test]
fn check_reports_every_problem_at_once() {
    let (code, out) =
        check("[[north]]\nname = \"c\"\nurl = \"ftp://h/\"\nformat = 7\nupload_err = 1\n");
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[test]
fn the_deploy_example_configuration_is_usable() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/tagwire.example.toml"
    );
    let out = tagwire()
        .arg("check")
        .arg("--config")
        .arg(example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bench_reports_ws_and_wss_figures() {
    let out = tagwire()
        .args(["bench", "--seconds", "1", "--tags", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for scheme in ["ws ", "wss ", "raw "] {
        let row = text
            .lines()
            .find(|l| l.starts_with(scheme) && !l.contains("confirmed"))
            .unwrap_or_else(|| panic!("no {scheme}row in:\n{text}"));
        let msgs: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(msgs > 0.0, "{row}");
        // The last column is the ratio to the raw-TCP baseline, 1.00x for itself.
        let ratio = row.split_whitespace().last().unwrap();
        assert!(ratio.ends_with('x'), "{row}");
        if scheme == "raw " {
            assert_eq!(ratio, "1.00x", "{row}");
        }
    }
    assert!(text.contains("peak RSS"), "{text}");
}

#[test]
fn tagwire_workers_selects_the_runtime_and_a_bad_value_is_a_usage_error() {
    let out = tagwire()
        .env("TAGWIRE_WORKERS", "many")
        .args(["demo", "--seconds", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TAGWIRE_WORKERS: \"many\" is not a number"),
        "{err}"
    );
    // Both runtimes deliver: one thread (the default of demo and run) and two workers.
    for workers in ["1", "2"] {
        let out = tagwire()
            .env("TAGWIRE_WORKERS", workers)
            .args(["demo", "--seconds", "1"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{workers}: {text}");
        assert!(text.contains("0 gaps, 0 duplicates"), "{workers}: {text}");
    }
}
