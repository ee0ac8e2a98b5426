//! tagwire-ws-client's `examples/push.rs`, compiled into this test as it is, pushes a
//! snapshot to `tagwire sink` over ws:// and over wss:// with a client certificate the
//! sink requires; the message it sent is the one line in the sink's output when the Pong
//! arrives (the sink writes and flushes each message before answering a later Ping).
//! The README's "Using the crates" program is this example, character for character.

mod support;

#[allow(dead_code)] // its `main`: the example's command line, not used here
#[path = "../../ws-client/examples/push.rs"]
mod push;

#[allow(dead_code)] // its `main`, as above
#[path = "../../ws-client/examples/deliver.rs"]
mod deliver;

use std::path::Path;

use support::{read_lines, Proc};
use tagwire_test_pki::{KeyAlg, Pki};

/// Starts `tagwire sink --out FILE` with `tls_args` (certificate, key, client CA, as
/// many as given); returns it and its URL.
fn start_sink(out: &Path, tls_args: &[&Path]) -> (Proc, String, std::process::ChildStderr) {
    let args: Vec<&std::ffi::OsStr> = ["--tls-cert", "--tls-key", "--client-ca"]
        .iter()
        .zip(tls_args)
        .flat_map(|(flag, value)| [flag.as_ref(), value.as_os_str()])
        .collect();
    support::start_sink(out, &args)
}

/// Runs the example with `args` and checks the sink received exactly its message.
async fn push_and_check(out: &Path, args: Vec<String>) -> push::Pushed {
    let args = push::Args::parse(args.into_iter()).unwrap();
    let pushed = push::push(args)
        .await
        .unwrap_or_else(|e| panic!("push: {e}"));
    let sent = String::from_utf8(pushed.message.clone()).unwrap();
    assert!(
        sent.starts_with(r#"{"node": "plc-1", "group": "line-a""#),
        "{sent}"
    );
    // Counted: one message sent, one line written by the sink when the Pong came.
    assert_eq!(read_lines(out), vec![sent]);
    pushed
}

#[tokio::test]
async fn push_example_over_ws() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sink.out");
    let (_sink, url, _stderr) = start_sink(&out, &[]);
    assert!(url.starts_with("ws://"), "{url}");
    let pushed = push_and_check(&out, vec![url]).await;
    eprintln!("ws:// pushed and confirmed in {:?}", pushed.confirmed_in);
}

#[tokio::test]
async fn push_example_over_wss_with_a_client_certificate() {
    let Some(pki) = Pki::shared() else { return };
    let client = pki.client(KeyAlg::EcP256);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sink.out");
    let (_sink, url, _stderr) = start_sink(&out, &[&pki.server.cert, &pki.server.key, &pki.ca]);
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let s = |p: &Path| p.display().to_string();
    let args = vec![
        url,
        "--ca".into(),
        s(&pki.ca),
        "--cert".into(),
        s(&client.cert),
        "--key".into(),
        s(&client.key),
    ];
    let pushed = push_and_check(&out, args).await;
    eprintln!("wss:// pushed and confirmed in {:?}", pushed.confirmed_in);
}

/// `--server-name`, set once, is the name checked and sent: the sink's certificate is
/// for `gateway.test` only, and the URL names 127.0.0.1.
#[tokio::test]
async fn push_example_with_server_name() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sink.out");
    let (_sink, url, _stderr) = start_sink(&out, &[&pki.gateway.cert, &pki.gateway.key]);
    let s = |p: &Path| p.display().to_string();
    let without = push::Args::parse(vec![url.clone(), "--ca".into(), s(&pki.ca)].into_iter());
    let err = push::push(without.unwrap())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("set `server_name`"), "{err}");
    let args = vec![
        url,
        "--ca".into(),
        s(&pki.ca),
        "--server-name".into(),
        "gateway.test".into(),
    ];
    push_and_check(&out, args).await;
}

/// ws-client's deflate test reads a copy of encode's vectors (a published package holds
/// only its own files); the copy must not drift.
#[test]
fn ws_client_keeps_an_exact_copy_of_the_values_vectors() {
    assert_eq!(
        include_str!("../../ws-client/tests/data/values.neuron.txt"),
        include_str!("../../encode/tests/vectors/values.neuron.txt"),
        "copy crates/encode/tests/vectors/values.neuron.txt to crates/ws-client/tests/data/"
    );
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let readme = include_str!("../../../README.md");
    let example = include_str!("../../ws-client/examples/push.rs");
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README.md's \"Using the crates\" program differs from crates/ws-client/examples/push.rs: copy the file into it"
    );
}

/// The README's `Delivery` program (`examples/deliver.rs`) against `tagwire sink`: all 100
/// messages confirmed, and the sink wrote exactly those 100, in order, before confirming.
#[tokio::test]
async fn deliver_example_has_every_message_confirmed_and_received() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sink.out");
    let (_sink, url, _stderr) = start_sink(&out, &[]);
    let through = deliver::deliver(&url)
        .await
        .unwrap_or_else(|e| panic!("deliver: {e}"));
    assert_eq!(through, 100);
    let expected: Vec<String> = (1..=100).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
    assert_eq!(read_lines(&out), expected);
}

/// The README shows `examples/encode_one.rs` and `examples/deliver.rs` as they are.
#[test]
fn the_readme_shows_the_snippets_as_they_are() {
    let readme = include_str!("../../../README.md");
    for (name, example) in [
        (
            "encode_one.rs",
            include_str!("../../ws-client/examples/encode_one.rs"),
        ),
        (
            "deliver.rs",
            include_str!("../../ws-client/examples/deliver.rs"),
        ),
    ] {
        assert!(
            readme.contains(&format!("```rust\n{example}```")),
            "README.md's \"Using the crates\" differs from crates/ws-client/examples/{name}: copy the file into it"
        );
    }
}
