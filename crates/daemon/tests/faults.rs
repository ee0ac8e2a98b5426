//! Faults on purpose: servers restarted mid-stream, connections cut or stalled by a
//! proxy, hostile servers. The `counter` tag of every simulated group must arrive
//! complete every time; duplicates (at-least-once) are counted and reported.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

fn config(url: &str, north_extra: &str) -> String {
    one_uplink_config(
        FAST_SIMULATOR,
        url,
        &format!("backoff_min_ms = 50\nbackoff_max_ms = 400\n{north_extra}"),
    )
}

/// Stops the daemon gracefully (its queue drains to the server) and returns what arrived.
fn finish(mut daemon: Proc, dir: &std::path::Path, peer: &Peer, what: &str) -> CounterReport {
    let queued = metric(dir, "queued_msgs_total", "peer");
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
    let msgs = peer.messages();
    let report = peer.counter_report();
    eprintln!(
        "{what}: {} messages queued before the stop, {} received, {} distinct counters, {} duplicates",
        queued,
        msgs.len(),
        report.max("fast"),
        report.duplicates
    );
    report.assert_no_gaps();
    assert!(report.max("fast") >= queued, "everything queued arrived");
    report
}

#[test]
fn a_server_restarted_five_times_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_arg = port.to_string();
    let Some(mut peer) = Peer::python(dir.path(), &["--port", &port_arg]) else {
        return;
    };
    let daemon = start_daemon(dir.path(), &config(&format!("ws://127.0.0.1:{port}/"), ""));
    for round in 0..5 {
        std::thread::sleep(Duration::from_millis(400));
        peer.proc.terminate(Duration::from_secs(10));
        // The server is down for a while; reports keep coming and must wait in the queue.
        std::thread::sleep(Duration::from_millis(300));
        peer = Peer::python(dir.path(), &["--port", &port_arg]).unwrap();
        eprintln!("restart {} done", round + 1);
    }
    std::thread::sleep(Duration::from_millis(500));
    let log = daemon_log(dir.path());
    assert!(log.contains("connected again"), "{log}");
    finish(daemon, dir.path(), &peer, "server restarted 5 times");
}

#[test]
fn a_proxy_cutting_connections_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let proxy = Proxy::start(([127, 0, 0, 1], peer.port).into());
    let daemon = start_daemon(
        dir.path(),
        &config(&format!("ws://127.0.0.1:{}/", proxy.port), ""),
    );
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        proxy.cut();
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(proxy.accepted() >= 6, "reconnected after every cut");
    assert!(metric(dir.path(), "reconnects_total", "peer") >= 5);
    finish(daemon, dir.path(), &peer, "proxy cut 5 times");
}

#[test]
fn a_stalled_connection_is_detected_within_the_pong_timeout_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let proxy = Proxy::start(([127, 0, 0, 1], peer.port).into());
    let daemon = start_daemon(
        dir.path(),
        &config(
            &format!("ws://127.0.0.1:{}/", proxy.port),
            "ping_interval_ms = 200\npong_timeout_ms = 1000",
        ),
    );
    wait_for("the link to come up", Duration::from_secs(10), || {
        metric(dir.path(), "link_state", "peer") == 1
    });
    std::thread::sleep(Duration::from_millis(300));
    proxy.stall(true);
    let stalled_at = Instant::now();
    wait_for(
        "link_state 0 after the stall",
        Duration::from_secs(5),
        || metric(dir.path(), "link_state", "peer") == 0,
    );
    let detected = stalled_at.elapsed();
    eprintln!("stall detected after {detected:?} (pong timeout 1 s)");
    assert!(detected < Duration::from_millis(2500), "{detected:?}");
    // While stalled, reports keep queueing.
    std::thread::sleep(Duration::from_millis(300));
    proxy.cut();
    proxy.stall(false);
    wait_for("the link to come back", Duration::from_secs(10), || {
        metric(dir.path(), "link_state", "peer") == 1
    });
    finish(daemon, dir.path(), &peer, "stalled proxy");
}

/// A server that completes the upgrade and then sends `garbage`.
fn hostile_server(garbage: &'static [u8]) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let Some(key) = req.lines().find_map(|l| {
                    l.strip_prefix("Sec-WebSocket-Key: ")
                        .or_else(|| l.strip_prefix("sec-websocket-key: "))
                }) else {
                    return;
                };
                let accept = ws_accept(key.trim());
                let _ = write!(
                    s,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                );
                let _ = s.write_all(garbage);
                std::thread::sleep(Duration::from_millis(500));
            });
        }
    });
    port
}

/// Sec-WebSocket-Accept computed with the `openssl` command line (no SHA-1 in the test
/// dependencies; it is also an independent check of the client's own computation).
fn ws_accept(key: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '%s' '{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11' | openssl sha1 -binary | openssl base64"
        ))
        .output()
        .expect("openssl");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn hostile_servers_end_their_own_connection_and_affect_no_other_uplink() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let hostile: [&'static [u8]; 5] = [
        b"\xff\xff\xff\xff garbage", // reserved opcode 0xF, RSV bits
        b"\x83\x03abc",              // reserved data opcode 3
        b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff", // 2^63-byte frame
        b"\x88\x02\x03\xe7",         // Close with code 999
        b"\x81\x02\xc3\x28",         // text that is not UTF-8
    ];
    let mut north = String::new();
    for (i, garbage) in hostile.into_iter().enumerate() {
        let port = hostile_server(garbage);
        north.push_str(&format!(
            "[[north]]\nname = \"hostile{i}\"\nurl = \"ws://127.0.0.1:{port}/\"\nbackoff_min_ms = 50\nbackoff_max_ms = 200\ndrain_timeout_ms = 300\n"
        ));
    }
    let cfg = format!(
        "{}\n{north}",
        config(&format!("ws://127.0.0.1:{}/", peer.port), "")
    );
    let daemon = start_daemon(dir.path(), &cfg);
    std::thread::sleep(Duration::from_secs(3));
    for i in 0..5 {
        let reconnects = metric(dir.path(), "reconnects_total", &format!("hostile{i}"));
        assert!(reconnects >= 1, "hostile{i} was not retried");
    }
    let log = daemon_log(dir.path());
    assert!(!log.contains("panicked"), "{log}");
    finish(daemon, dir.path(), &peer, "next to 5 hostile servers");
}

#[test]
fn starting_while_the_server_is_down_queues_from_the_first_report() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let daemon = start_daemon(dir.path(), &config(&format!("ws://127.0.0.1:{port}/"), ""));
    wait_for("reports to queue", Duration::from_secs(10), || {
        metric(dir.path(), "cached_msgs", "peer") >= 100
    });
    assert_eq!(metric(dir.path(), "link_state", "peer"), 0);
    let port_arg = port.to_string();
    let Some(peer) = Peer::python(dir.path(), &["--port", &port_arg]) else {
        return;
    };
    wait_for("the link to come up", Duration::from_secs(10), || {
        metric(dir.path(), "link_state", "peer") == 1
    });
    let report = finish(daemon, dir.path(), &peer, "server down at start");
    assert!(report.seen["fast"].contains(&1), "the first report arrived");
}

#[test]
fn a_graceful_stop_drains_the_queue_and_sends_a_close_frame() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let daemon = start_daemon(
        dir.path(),
        &config(&format!("ws://127.0.0.1:{}/", peer.port), ""),
    );
    wait_for("100 messages", Duration::from_secs(10), || {
        peer.messages().len() >= 100
    });
    finish(daemon, dir.path(), &peer, "graceful stop");
    // The peer writes its "X <code>" line when its handler sees the connection end,
    // which may be a moment after the daemon exited.
    wait_for(
        "the peer to record the end of the connection",
        Duration::from_secs(5),
        || peer.lines().last().is_some_and(|l| l.starts_with("X ")),
    );
    let lines = peer.lines();
    assert_eq!(
        lines.last().map(String::as_str),
        Some("X 1000"),
        "Close 1000 at the end"
    );
    assert_eq!(final_count(dir.path(), Some("peer"), "dropped"), "none");
    assert_eq!(
        final_count(dir.path(), Some("peer"), "queued"),
        final_count(dir.path(), Some("peer"), "delivered")
    );
}

#[test]
fn a_slow_reader_keeps_memory_within_the_configured_bound_and_drops_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &["--delay-ms", "20"]) else {
        return;
    };
    // ~9 KB messages every 2 ms (~4.5 MB/s) into a server that reads 50 messages a second.
    let cfg = format!(
        r#"
[[south]]
name = "sim"
kind = "simulator"
[[south.groups]]
name = "fast"
interval_ms = 2
tags = 300

[[north]]
name = "peer"
url = "ws://127.0.0.1:{}/"
drain_timeout_ms = 500
[north.cache]
memory_mb = 1
"#,
        peer.port
    );
    let mut daemon = start_daemon(dir.path(), &cfg);
    let mut peak_rss = 0;
    let mut peak_cached = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        peak_rss = peak_rss.max(rss(daemon.child.id()) / 1024);
        peak_cached = peak_cached.max(metric(dir.path(), "cached_bytes", "peer"));
    }
    let dropped_while_running = {
        let text = api_get(dir.path(), "/metrics");
        text.lines()
            .find(|l| {
                l.starts_with("dropped_msgs_total{node=\"peer\",reason=\"queue_full_oldest\"}")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap()
    };
    eprintln!(
        "slow reader: peak cached {peak_cached} bytes (bound 1048576), peak RSS {peak_rss} KiB, {dropped_while_running} dropped (oldest first)"
    );
    assert!(peak_cached <= 1024 * 1024, "{peak_cached}");
    assert!(
        dropped_while_running > 0,
        "the queue overflowed, so drops must be counted"
    );
    assert!(peak_rss < 48 * 1024, "RSS {peak_rss} KiB");
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
    // Every report is accounted for: delivered, or dropped with a reason.
    let queued: u64 = final_count(dir.path(), Some("peer"), "queued")
        .parse()
        .unwrap();
    let delivered: u64 = final_count(dir.path(), Some("peer"), "delivered")
        .parse()
        .unwrap();
    let dropped: u64 = final_count(dir.path(), Some("peer"), "dropped")
        .split(',')
        .filter_map(|kv| kv.split_once('=')?.1.parse::<u64>().ok())
        .sum();
    assert_eq!(queued, delivered + dropped, "queued = delivered + dropped");
    // What arrived: every confirmed message, plus perhaps some that were still unconfirmed
    // when the drain timeout ended (counted as dropped at shutdown, yet on the wire).
    let received = CounterReport::from_payloads(peer.messages().iter().map(|(_, p)| p.as_str()));
    let distinct = received.seen["fast"].len() as u64;
    let shutdown_dropped: u64 = final_count(dir.path(), Some("peer"), "dropped")
        .split(',')
        .find_map(|kv| kv.strip_prefix("shutdown=")?.parse().ok())
        .unwrap_or(0);
    eprintln!(
        "slow reader: queued {queued}, delivered {delivered}, dropped {dropped} ({shutdown_dropped} at shutdown), received {distinct} distinct"
    );
    assert!(distinct >= delivered, "every confirmed message arrived");
    assert!(
        distinct <= delivered + shutdown_dropped,
        "nothing counted as dropped while running arrived"
    );
}
