//! End to end against real peers: `tagwire run` with the simulator delivering to a
//! Python `websockets` server, a Node `ws` server, and `tagwire sink`.

mod support;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use support::*;

fn sim_config(url: &str, extra_north: &str) -> String {
    format!(
        r#"
[[south]]
name = "sim"
kind = "simulator"
[[south.groups]]
name = "fast"
interval_ms = 10
tags = 6
[[south.groups]]
name = "slow"
interval_ms = 100
tags = 40

[[north]]
name = "peer"
url = "{url}"
{extra_north}
"#
    )
}

#[test]
fn python_websockets_receives_every_counter_as_binary_values_messages() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let url = format!(
        "ws://127.0.0.1:{}/ingest/data?site=plant-1&x=%20y",
        peer.port
    );
    let mut daemon = start_daemon(dir.path(), &sim_config(&url, ""));
    wait_for(
        "200 messages at the Python server",
        Duration::from_secs(30),
        || peer.messages().len() >= 200,
    );
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));
    // After a graceful stop, everything the sources produced was confirmed and is there.
    let lines = peer.lines();
    assert_eq!(
        lines[0], "C /ingest/data?site=plant-1&x=%20y",
        "path and query kept"
    );
    let msgs = peer.messages();
    assert!(
        msgs.iter().all(|(k, _)| *k == 'B'),
        "Neuron sends binary frames"
    );
    for (_, m) in &msgs {
        assert!(m.starts_with(r#"{"node": "sim", "group": ""#), "{m}");
        assert!(m.contains(r#", "values": {"counter": "#), "{m}");
        assert!(m.ends_with('}'), "{m}");
    }
    let report = CounterReport::from_payloads(msgs.iter().map(|(_, p)| p.as_str()));
    report.assert_no_gaps();
    assert_eq!(
        report.duplicates, 0,
        "no reconnect happened, so no duplicates"
    );
    assert!(report.max("fast") >= 100);
    let log = daemon_log(dir.path());
    assert!(log.contains("connected"), "{log}");
    // A query may carry a token: logs show the URL without it.
    assert!(log.contains("/ingest/data?…"), "{log}");
    assert!(
        !log.contains("site=plant-1"),
        "the query leaked into the log:\n{log}"
    );
}

#[test]
fn node_ws_receives_tags_format_as_text_frames() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::node(dir.path(), &[]) else {
        return;
    };
    let url = format!("ws://localhost:{}/", peer.port);
    let mut daemon = start_daemon(
        dir.path(),
        &sim_config(
            &url,
            "format = \"tags\"\nframe = \"text\"\nstyle = \"compact\"",
        ),
    );
    wait_for(
        "100 messages at the Node server",
        Duration::from_secs(30),
        || peer.messages().len() >= 100,
    );
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));
    let msgs = peer.messages();
    assert!(msgs.iter().all(|(k, _)| *k == 'T'));
    for (_, m) in &msgs {
        assert!(
            m.starts_with(r#"{"node":"sim","group":""#),
            "compact style: {m}"
        );
        assert!(m.contains(r#""tags":[{"name":"counter","value":"#), "{m}");
    }
    CounterReport::from_payloads(msgs.iter().map(|(_, p)| p.as_str())).assert_no_gaps();
}

#[test]
fn tagwire_sink_receives_what_tagwire_run_sends() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sink.out");
    let mut sink = tagwire()
        .args(["sink", "--listen", "127.0.0.1:0", "--count", "150", "--out"])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The sink prints its address first.
    let mut stderr = sink.stderr.take().unwrap();
    let url = sink_url(&mut stderr);
    let mut daemon = start_daemon(dir.path(), &sim_config(&format!("{url}/sink"), ""));
    let status = {
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = sink.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "sink never got 150 messages"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(status.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("messages"), "summary on stderr: {rest}");
    daemon.terminate(Duration::from_secs(15));
    let lines = read_lines(&out);
    assert!(lines.len() >= 150, "{} lines", lines.len());
    CounterReport::from_payloads(lines.iter().map(String::as_str)).assert_no_gaps();
}

/// A raw TCP server answering every request with `response`, for upgrade failures.
fn raw_http_server(response: &'static str) -> u16 {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(response.as_bytes());
        }
    });
    port
}

#[test]
fn a_refused_upgrade_and_a_wrong_accept_are_logged_with_the_cause_and_retried() {
    for (response, expect) in [
        (
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\nConnection: close\r\n\r\nforbidden",
            "403",
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
            "Sec-WebSocket-Accept",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let port = raw_http_server(response);
        let mut daemon = start_daemon(
            dir.path(),
            &sim_config(&format!("ws://127.0.0.1:{port}/"), "backoff_min_ms = 50\nbackoff_max_ms = 200"),
        );
        wait_for(&format!("the daemon to log {expect:?}"), Duration::from_secs(20), || {
            daemon_log(dir.path()).contains(expect)
        });
        // It keeps running (and queueing) rather than giving up.
        std::thread::sleep(Duration::from_millis(300));
        assert!(daemon.child.try_wait().unwrap().is_none(), "daemon exited");
        daemon.terminate(Duration::from_secs(15));
        let log = daemon_log(dir.path());
        // Logged once with the cause, not once per attempt (attempts: every 50-200 ms).
        let attempts = log.matches("connection attempt failed").count();
        assert_eq!(log.matches("cannot deliver").count(), 1, "{log}");
        assert!(attempts >= 2, "retried ({attempts} attempts logged at debug):\n{log}");
    }
}

#[test]
fn subscriptions_route_each_group_to_the_uplinks_that_want_it() {
    let dir = tempfile::tempdir().unwrap();
    // Each peer writes python-websockets.out in its own directory.
    let second = dir.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    let (Some(fast_peer), Some(all_peer)) =
        (Peer::python(dir.path(), &[]), Peer::python(&second, &[]))
    else {
        return;
    };
    let config = format!(
        r#"
[[south]]
name = "sim"
kind = "simulator"
[[south.groups]]
name = "fast"
interval_ms = 10
tags = 2
[[south.groups]]
name = "slow"
interval_ms = 50
tags = 2

[[north]]
name = "only-fast"
url = "ws://127.0.0.1:{}/"
subscriptions = [{{ node = "sim", group = "fa*" }}]

[[north]]
name = "everything"
url = "ws://127.0.0.1:{}/"
"#,
        fast_peer.port, all_peer.port
    );
    let mut daemon = start_daemon(dir.path(), &config);
    wait_for(
        "both groups at the second server",
        Duration::from_secs(20),
        || {
            let r =
                CounterReport::from_payloads(all_peer.messages().iter().map(|(_, p)| p.as_str()));
            r.max("fast") >= 20 && r.max("slow") >= 4
        },
    );
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));
    let only_fast =
        CounterReport::from_payloads(fast_peer.messages().iter().map(|(_, p)| p.as_str()));
    let everything =
        CounterReport::from_payloads(all_peer.messages().iter().map(|(_, p)| p.as_str()));
    assert_eq!(
        only_fast.seen.keys().collect::<Vec<_>>(),
        ["fast"],
        "the subscribed group only"
    );
    assert_eq!(everything.seen.keys().collect::<Vec<_>>(), ["fast", "slow"]);
    only_fast.assert_no_gaps();
    everything.assert_no_gaps();
}
