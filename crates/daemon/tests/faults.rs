//! Faults on purpose: servers restarted mid-stream, connections cut or stalled by a
//! proxy, hostile servers. The `counter` tag of every simulated group must arrive
//! complete every time; duplicates (at-least-once) are counted and reported.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

fn config(url: &str, north_extra: &str) -> String {
    format!(
        r#"
[[south]]
name = "sim"
kind = "simulator"
[[south.groups]]
name = "fast"
interval_ms = 5
tags = 8

[[north]]
name = "peer"
url = "{url}"
backoff_min_ms = 50
backoff_max_ms = 400
{north_extra}
"#
    )
}

/// Stops the daemon gracefully (its queue drains to the server) and returns what arrived.
fn finish(mut daemon: Proc, dir: &std::path::Path, peer: &Peer, what: &str) -> CounterReport {
    let queued = metric(dir, "queued_msgs_total", "peer");
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
    let msgs = peer.messages();
    let report = CounterReport::from_payloads(msgs.iter().map(|(_, p)| p.as_str()));
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
    wait_for("link_state 0 after the stall", Duration::from_secs(5), || {
        metric(dir.path(), "link_state", "peer") == 0
    });
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
                let Some(key) = req
                    .lines()
                    .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ").or_else(|| l.strip_prefix("sec-websocket-key: ")))
                else {
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
        b"\xff\xff\xff\xff garbage",                    // reserved opcode 0xF, RSV bits
        b"\x83\x03abc",                                 // reserved data opcode 3
        b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff",    // 2^63-byte frame
        b"\x88\x02\x03\xe7",                            // Close with code 999
        b"\x81\x02\xc3\x28",                            // text that is not UTF-8
    ];
    let mut north = String::new();
    for (i, garbage) in hostile.into_iter().enumerate() {
        let port = hostile_server(garbage);
        north.push_str(&format!(
            "[[north]]\nname = \"hostile{i}\"\nurl = \"ws://127.0.0.1:{port}/\"\nbackoff_min_ms = 50\nbackoff_max_ms = 200\ndrain_timeout_ms = 300\n"
        ));
    }
    let cfg = format!("{}\n{north}", config(&format!("ws://127.0.0.1:{}/", peer.port), ""));
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
