//! `tagwire sink` against a real client (Python `websockets`): every message is in the
//! output file when the Pong of a later Ping arrives, the sink closes its clients with a
//! Close frame when it stops, and its summary counts every message written.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::Duration;

use support::{peer_env, peers_dir, read_lines, start_sink};

#[test]
fn sink_flushes_each_message_before_its_pong_and_closes_clients_on_stop() {
    let Some(python) = peer_env("TAGWIRE_PYTHON") else {
        return;
    };
    const N: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sink.out");
    let (mut sink, url, mut sink_stderr) = start_sink(&out, &[]);
    let mut client = std::process::Command::new(python)
        .arg(peers_dir().join("ws_client.py"))
        .arg(&url)
        .args(["--count", &N.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client_out = BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    client_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("PONGED {N}"));
    // The sink is still running: what is in the file now was flushed per message.
    let lines = read_lines(&out);
    assert_eq!(
        lines.len(),
        N,
        "lines in the file when the Pong arrived: {lines:?}"
    );
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l, &format!("{{\"n\": {i}}}"));
    }

    assert_eq!(sink.terminate(Duration::from_secs(10)), Some(0));
    line.clear();
    client_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "CLOSED 1001", "the client saw {line:?}");
    assert!(client.wait().unwrap().success());
    let mut summary = String::new();
    sink_stderr.read_to_string(&mut summary).unwrap();
    assert!(
        summary.contains(&format!("{N} messages received, {N} written")),
        "summary: {summary}"
    );
}
