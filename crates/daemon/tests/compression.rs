//! `compression = "deflate"` against Python `websockets` and Node `ws` with
//! permessage-deflate on: what the peers decompress equals the test vectors, the
//! bytes a proxy counts on the wire shrink by the ratio the metrics report, and a
//! connection cut mid-stream loses no `counter`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../encode/tests/vectors")
}

fn north(name: &str, port: u16, extra: &str) -> String {
    format!(
        "\n[[north]]\nname = \"{name}\"\nurl = \"ws://127.0.0.1:{port}/{name}\"\n\
         backoff_min_ms = 50\nbackoff_max_ms = 300\n{extra}\n"
    )
}

/// Starts a peer in its own folder (each writes its own `.out`).
fn peer_in(dir: &Path, name: &str, start: impl FnOnce(&Path) -> Option<Peer>) -> Option<Peer> {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    start(&sub)
}

/// The ratio of two byte counts, for the report.
fn ratio(before: u64, after: u64) -> f64 {
    before as f64 / after.max(1) as f64
}

#[test]
fn vectors_arrive_intact_through_deflate_and_the_wire_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let Some(python) = peer_in(dir.path(), "py", |d| Peer::python(d, &[])) else {
        return;
    };
    let Some(node) = peer_in(dir.path(), "node", |d| Peer::node(d, &["--deflate", "1"])) else {
        return;
    };
    let plain_peer = peer_in(dir.path(), "plain", |d| Peer::python(d, &[])).unwrap();
    // One counting proxy in front of each server.
    let to = |peer: &Peer| Proxy::start(([127, 0, 0, 1], peer.port).into());
    let (py_proxy, node_proxy, plain_proxy) = (to(&python), to(&node), to(&plain_peer));
    let config = [
        north("py", py_proxy.port, "compression = \"deflate\""),
        north("node", node_proxy.port, "compression = \"deflate\""),
        north("plain", plain_proxy.port, ""),
    ]
    .concat();
    let mut daemon = start_daemon(dir.path(), &config);

    // The vectors' snapshots, many times over: repetition is what context takeover
    // exploits, as in a plant whose names repeat and values change slowly.
    const ROUNDS: usize = 40;
    let snapshots = std::fs::read_to_string(vectors().join("snapshots.ndjson")).unwrap();
    let expected: Vec<String> = std::fs::read_to_string(vectors().join("values.neuron.txt"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for _ in 0..ROUNDS {
        let (status, body) = api_request(
            dir.path(),
            "POST",
            "/api/v1/ingest",
            "",
            snapshots.as_bytes(),
        );
        assert_eq!(status, 202, "{body}");
    }
    let total = ROUNDS * expected.len();
    for peer in [&python, &node, &plain_peer] {
        wait_for("every vector message", Duration::from_secs(30), || {
            peer.messages().len() >= total
        });
    }
    // The daemon's count of payload bytes before and after compression.
    let counted: Vec<(u64, u64)> = ["py", "node", "plain"]
        .iter()
        .map(|n| {
            (
                metric(dir.path(), "written_msg_bytes_total", n),
                metric(dir.path(), "written_wire_bytes_total", n),
            )
        })
        .collect();
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));

    for (name, peer) in [("python", &python), ("node", &node)] {
        let lines = peer.lines();
        assert!(
            lines.iter().any(|l| l.starts_with("E permessage-deflate")),
            "{name} did not negotiate permessage-deflate: {:?}",
            &lines[..2]
        );
        let got: Vec<String> = peer.messages().into_iter().map(|(_, p)| p).collect();
        assert_eq!(got.len(), total, "{name}");
        for (i, message) in got.iter().enumerate() {
            assert_eq!(message, &expected[i % expected.len()], "{name} message {i}");
        }
    }
    assert!(!plain_peer.lines().iter().any(|l| l.starts_with("E ")));

    let payload: usize = expected.iter().map(String::len).sum::<usize>() * ROUNDS;
    let plain_wire = plain_proxy.upstream_bytes();
    assert_eq!(
        counted[2],
        (payload as u64, payload as u64),
        "plain: no compression"
    );
    for (i, (name, proxy)) in [("py", &py_proxy), ("node", &node_proxy)]
        .into_iter()
        .enumerate()
    {
        let wire = proxy.upstream_bytes();
        let (before, after) = counted[i];
        eprintln!(
            "{name}: vectors x{ROUNDS}: {before} payload bytes, {after} compressed ({:.2}x); \
             the proxy counted {wire} bytes on the wire, {plain_wire} without compression ({:.2}x)",
            ratio(before, after),
            ratio(plain_wire, wire)
        );
        assert_eq!(before, payload as u64, "{name}");
        assert!(after * 3 < before, "{name}: {before} -> {after}");
        // The proxy sees the compressed payloads plus the handshake, frame headers
        // (at most 14 bytes each) and the confirming Pings: nothing uncompressed.
        let overhead = 1024 + 14 * total as u64 + 20 * total as u64;
        assert!(
            wire >= after && wire <= after + overhead,
            "{name}: {wire} vs {after}"
        );
    }
    // Without compression the wire carries the payload plus frame overhead.
    assert!(plain_wire as usize > payload);
}

#[test]
fn simulator_data_through_deflate_survives_cuts_at_python() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(python) = Peer::python(dir.path(), &[]) {
        cuts_without_a_gap(dir.path(), &python);
    }
}

#[test]
fn simulator_data_through_deflate_survives_cuts_at_node() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(node) = Peer::node(dir.path(), &["--deflate", "1"]) {
        cuts_without_a_gap(dir.path(), &node);
    }
}

/// The simulator through a cutting proxy to `peer` with compression on: three cuts,
/// the unconfirmed messages compressed again on each new connection, and no gap.
/// Bytes before and after compression as the metrics report them are checked
/// against the proxy's count.
fn cuts_without_a_gap(dir: &Path, peer: &Peer) {
    let proxy = Proxy::start(([127, 0, 0, 1], peer.port).into());
    // A 100-tag group as in the figure, and a fast small one.
    let config = format!(
        "[[south]]\nname = \"sim\"\nkind = \"simulator\"\n\
         [[south.groups]]\nname = \"wide\"\ninterval_ms = 20\ntags = 100\n\
         [[south.groups]]\nname = \"fast\"\ninterval_ms = 10\ntags = 4\n{}",
        north("py", proxy.port, "compression = \"deflate\"")
    );
    let mut daemon = start_daemon(dir, &config);
    let counters = || CounterReport::from_payloads(peer.messages().iter().map(|(_, p)| p.as_str()));
    for round in 1..=3u64 {
        wait_for("messages before the cut", Duration::from_secs(30), || {
            counters().max("wide") >= 40 * round
        });
        proxy.cut();
        wait_for("the reconnect", Duration::from_secs(30), || {
            proxy.accepted() > round
        });
    }
    wait_for(
        "messages after the last cut",
        Duration::from_secs(30),
        || counters().max("wide") >= 160,
    );
    let before = metric(dir, "written_msg_bytes_total", "py");
    let after = metric(dir, "written_wire_bytes_total", "py");
    let resent = metric(dir, "resent_msgs_total", "py");
    let wire = proxy.upstream_bytes();
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));

    let report = counters();
    report.assert_no_gaps();
    assert!(report.max("fast") > 0);
    let negotiated = peer
        .lines()
        .iter()
        .filter(|l| l.starts_with("E permessage-deflate"))
        .count();
    assert!(
        negotiated >= 4,
        "every connection negotiated deflate: {negotiated}"
    );
    eprintln!(
        "simulator data: {before} bytes before compression, {after} after: {:.2}x; \
         {wire} bytes counted by the proxy; {resent} messages resent after the cuts",
        ratio(before, after)
    );
    assert!(after * 2 < before, "{before} -> {after}");
    // The proxy saw at least the compressed payloads (it counts until the stop, the
    // metrics were read a little earlier), and far fewer bytes than uncompressed.
    assert!(wire >= after, "{wire} < {after}");
    assert!(wire < before, "{wire} >= {before}");
}
