//! The stop line's counts: `queued = delivered + dropped + still_queued` at every stop,
//! across a restart from the disk cache, and `resent` only for messages written again.

mod support;

use std::time::Duration;

use support::*;

fn snapshots(from: u64, n: u64) -> String {
    let one = |c: u64| {
        format!(
            r#"{{"node": "plc", "group": "g", "tags": [{{"name": "counter", "type": "UINT64", "value": {c}}}]}}"#
        )
    };
    format!(
        "[{}]",
        (from..from + n).map(one).collect::<Vec<_>>().join(",")
    )
}

fn counts(dir: &std::path::Path) -> (u64, u64, u64, u64, String) {
    let n = |f: &str| final_count(dir, Some("peer"), f);
    let dropped = n("dropped");
    let dropped_total: u64 = if dropped == "none" {
        0
    } else {
        dropped
            .split(',')
            .filter_map(|kv| kv.split_once('=')?.1.parse::<u64>().ok())
            .sum()
    };
    (
        n("queued").parse().unwrap(),
        n("delivered").parse().unwrap(),
        dropped_total,
        n("still_queued").parse().unwrap(),
        n("resent"),
    )
}

#[test]
fn queued_is_delivered_plus_dropped_plus_still_queued_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cache = dir.path().join("cache");
    let config = format!(
        "[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:{port}/\"\ndrain_timeout_ms = 500\n[north.cache]\ndir = \"{}\"\n",
        cache.display()
    );
    // The server is down: 50 accepted, all kept on disk at the stop.
    let first = dir.path().join("first");
    std::fs::create_dir(&first).unwrap();
    let mut daemon = start_daemon(&first, &config);
    let (status, _) = api_request(
        &first,
        "POST",
        "/api/v1/ingest",
        "",
        snapshots(1, 50).as_bytes(),
    );
    assert_eq!(status, 202);
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
    let (queued, delivered, dropped, still, resent) = counts(&first);
    assert_eq!((queued, delivered, dropped, still), (50, 0, 0, 50));
    assert_eq!(resent, "0");

    // The server is up: the 50 from the disk and 10 new ones are delivered.
    let second = dir.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let port_arg = port.to_string();
    let Some(peer) = Peer::python(&second, &["--port", &port_arg]) else {
        return;
    };
    let mut daemon = start_daemon(&second, &config);
    let (status, _) = api_request(
        &second,
        "POST",
        "/api/v1/ingest",
        "",
        snapshots(51, 10).as_bytes(),
    );
    assert_eq!(status, 202);
    wait_for("60 messages", Duration::from_secs(20), || {
        peer.messages().len() >= 60
    });
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
    let (queued, delivered, dropped, still, resent) = counts(&second);
    assert_eq!(
        queued,
        delivered + dropped + still,
        "{}",
        daemon_log(&second)
    );
    assert_eq!((queued, delivered, still), (60, 60, 0));
    assert_eq!(resent, "0");
}
