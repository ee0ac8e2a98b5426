//! ws-client's `confirmed_push` example, run against `tagwire sink` over ws:// and
//! wss:// (with a client certificate): every payload is confirmed, and the sink's
//! output holds each exactly once, in order.

mod support;

#[allow(dead_code)] // the example's `main` is not called here: `run` is
#[path = "../../ws-client/examples/confirmed_push.rs"]
mod confirmed_push;

use std::time::Duration;

use support::{certs::Pki, read_lines, Proc};

const COUNT: u64 = 1500;

/// Starts `tagwire sink` with `tls_args`, returns it and its address.
fn start_sink(out: &std::path::Path, tls_args: &[&std::ffi::OsStr]) -> (Proc, String) {
    let (proc, url, mut stderr) = support::start_sink(out, tls_args);
    // Keep reading the sink's stderr so that it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (proc, url)
}

fn push(args: &[&str]) -> u64 {
    let args = confirmed_push::Args::parse(args.iter().map(|a| a.to_string())).unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(confirmed_push::run(args))
        .unwrap()
}

fn assert_received_once_in_order(mut sink: Proc, out: &std::path::Path) {
    // SIGTERM makes the sink flush its output and exit.
    assert_eq!(sink.terminate(Duration::from_secs(10)), Some(0));
    let lines = read_lines(out);
    let expected: Vec<String> = (1..=COUNT).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
    assert_eq!(lines.len(), expected.len(), "messages the sink received");
    assert!(lines == expected, "each payload once, in order");
}

#[test]
fn confirmed_push_over_ws_confirms_every_payload() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sink.out");
    let (sink, url) = start_sink(&out, &[]);
    assert!(url.starts_with("ws://"), "{url}");
    let confirmed = push(&[&format!("{url}/push"), &COUNT.to_string()]);
    assert_eq!(confirmed, COUNT);
    assert_received_once_in_order(sink, &out);
}

#[test]
fn confirmed_push_over_wss_with_a_client_certificate_confirms_every_payload() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sink.out");
    let (sink, url) = start_sink(
        &out,
        &[
            "--tls-cert".as_ref(),
            pki.server.cert.as_os_str(),
            "--tls-key".as_ref(),
            pki.server.key.as_os_str(),
            "--client-ca".as_ref(),
            pki.ca.as_os_str(),
        ],
    );
    assert!(url.starts_with("wss://"), "{url}");
    let client = pki.client(support::certs::KeyAlg::EcP256);
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let confirmed = push(&[
        &format!("{url}/push"),
        &COUNT.to_string(),
        "--ca",
        &path(&pki.ca),
        "--cert",
        &path(&client.cert),
        "--key",
        &path(&client.key),
    ]);
    assert_eq!(confirmed, COUNT);
    assert_received_once_in_order(sink, &out);
}
