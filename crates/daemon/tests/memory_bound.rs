//! The memory model under attack: distinct huge groups ingested one after another must
//! leave the daemon's RSS under the bound the README computes from the configuration.
//!
//! The bound (README, "Memory model"), for this test's configuration:
//! baseline 32 MiB + queue `memory_mb` 16 MiB + layout cache budget 16 MiB (per uplink)
//! + API `max_body_memory_bytes` 32 MiB + `max_parse_memory_bytes` 64 MiB = 160 MiB.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// The README's worst case for one uplink with the defaults.
const BOUND: u64 = 160 * 1024 * 1024;

#[test]
fn distinct_huge_groups_keep_rss_under_the_documented_bound() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let daemon = start_daemon(
        dir.path(),
        &format!(
            "[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:{}/\"\n",
            peer.port
        ),
    );
    let pid = daemon.child.id();
    api_get(dir.path(), "/health");
    let start_rss = rss(pid);
    let tags: Vec<String> = (0..105_000)
        .map(|i| format!(r#"{{"name":"t{i:06}","type":"INT32","value":{i}}}"#))
        .collect();
    let tags = tags.join(",");
    let mut peak = 0;
    let start = Instant::now();
    for g in 0..20 {
        let body = format!(r#"{{"node":"plc","group":"huge{g}","tags":[{tags}]}}"#);
        let (status, answer) =
            api_request(dir.path(), "POST", "/api/v1/ingest", "", body.as_bytes());
        assert_eq!(status, 202, "{answer}");
        peak = peak.max(rss(pid));
    }
    wait_for("20 huge messages", Duration::from_secs(60), || {
        peer.messages().len() >= 20
    });
    std::thread::sleep(Duration::from_millis(500));
    let end = rss(pid);
    peak = peak.max(end);
    eprintln!(
        "distinct huge groups: RSS {} MiB at start, peak {} MiB, {} MiB after delivery (bound {} MiB), {:?}",
        start_rss >> 20,
        peak >> 20,
        end >> 20,
        BOUND >> 20,
        start.elapsed()
    );
    assert!(peak < BOUND, "peak RSS {} MiB over the bound", peak >> 20);
}

#[test]
fn the_worst_parse_stays_under_its_share_of_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(
        dir.path(),
        "[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n",
    );
    let pid = daemon.child.id();
    api_get(dir.path(), "/health");
    let start_rss = rss(pid);
    // The densest JSON there is: 4 Mi one-byte values, one tape node each.
    let mut body = "0,".repeat(4 * 1024 * 1024 - 2);
    body.insert(0, '[');
    body.push_str("0]");
    let mut peak = 0;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let body = body.clone();
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                api_request(&dir, "POST", "/api/v1/ingest", "", body.as_bytes()).0
            })
        })
        .collect();
    while clients.iter().any(|c| !c.is_finished()) {
        peak = peak.max(rss(pid));
        std::thread::sleep(Duration::from_millis(5));
    }
    // Each would take ~130 MiB to parse, over the 64 MiB parse budget: refused unparsed.
    for c in clients {
        assert_eq!(c.join().unwrap(), 413);
    }
    eprintln!(
        "4 x 8 MiB of [0,0,...] at once: RSS {} MiB at start, peak {} MiB (bound {} MiB)",
        start_rss >> 20,
        peak >> 20,
        BOUND >> 20
    );
    assert!(peak < BOUND, "peak RSS {} MiB over the bound", peak >> 20);
}
