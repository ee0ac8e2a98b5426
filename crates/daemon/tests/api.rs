//! The management and ingest API of `tagwire run`: health, metrics, nodes, ingest with
//! every answer the interface names (202, 400, 401, 413, 503).

mod support;

use std::time::Duration;

use support::*;

fn snapshot(counter: u64) -> String {
    format!(
        r#"{{"node": "plc", "group": "g", "tags": [{{"name": "counter", "type": "UINT64", "value": {counter}}}, {{"name": "t", "type": "FLOAT", "value": 21.5, "precision": 1}}]}}"#
    )
}

#[test]
fn ingest_health_metrics_and_nodes_work_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let _daemon = start_daemon(
        dir.path(),
        &format!(
            "[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:{}/\"\n",
            peer.port
        ),
    );
    let (status, body) = api_request(dir.path(), "GET", "/health", "", b"");
    assert_eq!(status, 200);
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    // One object, an array, and NDJSON.
    let (status, body) = api_request(
        dir.path(),
        "POST",
        "/api/v1/ingest",
        "",
        snapshot(1).as_bytes(),
    );
    assert_eq!(status, 202, "{body}");
    let array = format!("[{}, {}]", snapshot(2), snapshot(3));
    assert_eq!(
        api_request(dir.path(), "POST", "/api/v1/ingest", "", array.as_bytes()).0,
        202
    );
    let ndjson = format!("{}\n{}\n", snapshot(4), snapshot(5));
    assert_eq!(
        api_request(dir.path(), "POST", "/api/v1/ingest", "", ndjson.as_bytes()).0,
        202
    );

    // A bad snapshot: 400 naming the snapshot, tag and field; nothing of that body queued.
    let bad = format!(
        "{}\n{}\n",
        snapshot(6),
        r#"{"node": "plc", "group": "g", "tags": [{"name": "counter", "type": "UINT64", "value": -1}]}"#
    );
    let (status, body) = api_request(dir.path(), "POST", "/api/v1/ingest", "", bad.as_bytes());
    assert_eq!(status, 400);
    assert!(
        body.contains("line 2") && body.contains("counter") && body.contains("value"),
        "{body}"
    );

    // A lone surrogate is a 400 naming the tag and field, never a changed value (simd-json
    // alone would deliver "t\u0000"); nothing of that body is queued either.
    let surrogate = format!(
        "[{}, {}]",
        snapshot(7),
        r#"{"node": "plc", "group": "g", "tags": [{"name": "t\ud800", "type": "INT8", "value": 1}]}"#
    );
    let (status, body) = api_request(
        dir.path(),
        "POST",
        "/api/v1/ingest",
        "",
        surrogate.as_bytes(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("snapshot 2") && body.contains("name") && body.contains("lone surrogate"),
        "{body}"
    );

    wait_for("5 messages at the server", Duration::from_secs(10), || {
        peer.messages().len() >= 5
    });
    std::thread::sleep(Duration::from_millis(300));
    let msgs = peer.messages();
    assert_eq!(msgs.len(), 5, "the rejected body queued nothing");
    assert_eq!(
        msgs[0].1.split(", \"timestamp\"").next().unwrap(),
        r#"{"node": "plc", "group": "g""#
    );
    assert!(
        msgs[0]
            .1
            .ends_with(r#""values": {"counter": 1, "t": 21.5}, "errors": {}, "metas": {}}"#),
        "{}",
        msgs[0].1
    );
    CounterReport::from_payloads(msgs.iter().map(|(_, p)| p.as_str())).assert_no_gaps();

    let (status, metrics) = api_request(dir.path(), "GET", "/metrics", "", b"");
    assert_eq!(status, 200);
    for line in [
        // OpenMetrics names a counter family without its `_total` samples' suffix.
        "# TYPE send_msgs counter",
        "# TYPE link_state gauge",
        "link_state{node=\"peer\"} 1",
        "running_state{node=\"peer\"} 3",
        "dropped_msgs_total{node=\"peer\",reason=\"queue_full_oldest\"} 0",
        "reconnects_total{node=\"peer\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} missing in:\n{metrics}");
    }
    wait_for("5 confirmed", Duration::from_secs(5), || {
        metric(dir.path(), "send_msgs_total", "peer") == 5
    });
    let (status, nodes) = api_request(dir.path(), "GET", "/api/v1/nodes", "", b"");
    assert_eq!(status, 200);
    let nodes: serde_json::Value = serde_json::from_str(&nodes).unwrap();
    assert_eq!(nodes["north"][0]["name"], "peer");
    assert_eq!(nodes["north"][0]["link_state"], 1);
    assert_eq!(nodes["north"][0]["send_msgs_total"], 5);

    assert_eq!(api_request(dir.path(), "GET", "/nope", "", b"").0, 404);
    assert_eq!(
        api_request(dir.path(), "DELETE", "/metrics", "", b"").0,
        405
    );
}

#[test]
fn the_token_is_required_when_set_and_big_bodies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _daemon = start_daemon(
        dir.path(),
        "[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret-t0ken\"\n[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n",
    );
    // api_get (used by `request` to wait) sends no token: 401, still a response.
    let (status, body) = api_request(dir.path(), "GET", "/health", "", b"");
    assert_eq!(status, 401);
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let auth = "Authorization: Bearer s3cret-t0ken\r\n";
    assert_eq!(api_request(dir.path(), "GET", "/health", auth, b"").0, 200);
    assert_eq!(
        api_request(
            dir.path(),
            "GET",
            "/health",
            "Authorization: Bearer wrong\r\n",
            b""
        )
        .0,
        401
    );
    let big = vec![b' '; 9 * 1024 * 1024];
    assert_eq!(
        api_request(dir.path(), "POST", "/api/v1/ingest", auth, &big).0,
        413
    );
    assert!(
        !daemon_log(dir.path()).contains("s3cret-t0ken"),
        "the token is never logged"
    );
}

#[test]
fn a_full_queue_with_policy_refuse_answers_503() {
    let dir = tempfile::tempdir().unwrap();
    // The server is down, so the two-message queue fills up.
    let _daemon = start_daemon(
        dir.path(),
        "[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n[north.cache]\nmax_messages = 2\npolicy = \"refuse\"\n",
    );
    assert_eq!(
        api_request(
            dir.path(),
            "POST",
            "/api/v1/ingest",
            "",
            snapshot(1).as_bytes()
        )
        .0,
        202
    );
    assert_eq!(
        api_request(
            dir.path(),
            "POST",
            "/api/v1/ingest",
            "",
            snapshot(2).as_bytes()
        )
        .0,
        202
    );
    let (status, body) = api_request(
        dir.path(),
        "POST",
        "/api/v1/ingest",
        "",
        snapshot(3).as_bytes(),
    );
    assert_eq!(status, 503);
    assert!(
        body.contains("peer") && body.contains("retry later"),
        "{body}"
    );
    // A body of three: the first fits nowhere either; nothing of it was queued.
    let three = format!("[{}, {}, {}]", snapshot(3), snapshot(4), snapshot(5));
    let (status, body) = api_request(dir.path(), "POST", "/api/v1/ingest", "", three.as_bytes());
    assert_eq!(status, 503);
    assert!(
        body.contains("\"accepted\":0") && body.contains("from snapshot 1"),
        "{body}"
    );
    assert_eq!(metric(dir.path(), "cached_msgs", "peer"), 2);
}

/// The write syscalls the process has made so far (`syscw` of `/proc/PID/io`).
fn write_calls(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("syscw in /proc/PID/io")
}

/// An NDJSON body is published as one batch into a disk cache: one by one, each
/// snapshot was a write of the cache file of its own, plus wake-ups (538 write calls
/// measured for this body); as a batch, 40-100 (reconnect attempts and their log
/// lines run meanwhile), and never the 300 the cache alone took before.
#[test]
fn an_ndjson_body_goes_to_the_disk_cache_as_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon_with_env(
        dir.path(),
        &format!(
            "[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n[north.cache]\ndir = \"{}\"\n",
            dir.path().join("cache").display()
        ),
        &[("TAGWIRE_LOG", "info")],
    );
    api_get(dir.path(), "/health");
    let body: String = (1..=300).map(|c| snapshot(c) + "\n").collect();
    let pid = daemon.child.id();
    let before = write_calls(pid);
    let (status, answer) = api_request(dir.path(), "POST", "/api/v1/ingest", "", body.as_bytes());
    let writes = write_calls(pid) - before;
    assert_eq!(status, 202, "{answer}");
    assert!(answer.contains("\"accepted\":300"), "{answer}");
    assert_eq!(metric(dir.path(), "cached_msgs", "peer"), 300);
    eprintln!("write syscalls for a body of 300 snapshots: {writes}");
    assert!(
        writes < 200,
        "{writes} write syscalls for one body of 300 snapshots"
    );
}
