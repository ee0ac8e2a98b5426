//! Driver states (`upload_drv_state`) end to end, with Python `websockets` servers: a
//! state message right after each connection and then at the interval, byte for byte in
//! the uplink's style, for the south nodes its subscriptions take; a fresh one after a
//! server restart; and the counters keep data and states apart.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::*;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The state messages a peer received, in order.
fn states(peer: &Peer) -> Vec<String> {
    peer.messages()
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| m.contains("\"states\""))
        .collect()
}

/// The data messages a peer received.
fn data(peer: &Peer) -> Vec<String> {
    peer.messages()
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| !m.contains("\"states\""))
        .collect()
}

fn timestamp(state: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(state).unwrap();
    v["timestamp"].as_u64().unwrap()
}

/// A field of the final-counts line split into `name=value` pairs
/// (`drv_states=queued=3,delivered=3`).
fn final_pairs(dir: &Path, uplink: &str, field: &str) -> std::collections::BTreeMap<String, u64> {
    let value = final_count(dir, Some(uplink), field);
    value
        .split(',')
        .filter(|p| *p != "none")
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn driver_states_arrive_after_each_connect_and_at_the_interval() {
    let Some(python) = peer_env("TAGWIRE_PYTHON") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let each_second = Peer::python_named(&python, d, "a", None);
    let hourly = Peer::python_named(&python, d, "b", None);
    let config = format!(
        r#"
[[south]]
name = "sim"
kind = "simulator"
[[south.groups]]
name = "g"
interval_ms = 100
tags = 2
[[south]]
name = "other"
kind = "simulator"
[[south.groups]]
name = "h"
interval_ms = 500
tags = 1

[[north]]
name = "fast"
url = "ws://127.0.0.1:{}/"
subscriptions = [{{ node = "sim", group = "*" }}]
upload_drv_state = true

[[north]]
name = "hourly"
url = "ws://127.0.0.1:{}/"
style = "compact"
upload_drv_state = true
upload_drv_state_interval = 3600
"#,
        each_second.port, hourly.port
    );
    let mut daemon = start_daemon(d, &config);

    // `fast`: one at the connection, then one a second; only the node it subscribes to,
    // in Neuron's layout.
    wait_for("4 state messages at a", Duration::from_secs(20), || {
        states(&each_second).len() >= 4
    });
    let got = states(&each_second);
    for s in &got {
        let want = format!(
            r#"{{"timestamp": {}, "states": [{{"node": "sim", "link": 1, "running": 3}}]}}"#,
            timestamp(s)
        );
        assert_eq!(s, &want);
    }
    for pair in got.windows(2) {
        let gap = timestamp(&pair[1]) - timestamp(&pair[0]);
        assert!(
            (900..=3000).contains(&gap),
            "states {gap} ms apart, 1 s configured; the server saw (C: a connection, \
             X: its close):\n{}\nthe daemon's log:\n{}",
            each_second.lines().join("\n"),
            daemon_log(d)
        );
    }

    // `hourly`: the interval is an hour, so what arrives comes from the connection; both
    // configured nodes (no subscriptions: everything), in the compact style. A node
    // known only from the ingest API is not a configured south node: not listed.
    wait_for("a state message at b", Duration::from_secs(10), || {
        !states(&hourly).is_empty()
    });
    let body =
        br#"{"node": "ext", "group": "x", "tags": [{"name": "t", "type": "INT8", "value": 1}]}"#;
    assert_eq!(api_request(d, "POST", "/api/v1/ingest", "", body).0, 202);
    let compact = |ts: u64| {
        format!(
            r#"{{"timestamp":{ts},"states":[{{"node":"sim","link":1,"running":3}},{{"node":"other","link":1,"running":3}}]}}"#
        )
    };
    let first = states(&hourly)[0].clone();
    assert_eq!(first, compact(timestamp(&first)));

    // The server restarts: the reconnection brings a fresh state at once.
    let port = hourly.port;
    drop(hourly);
    let restarted_at = now_ms();
    let hourly2 = Peer::python_named(&python, d, "b2", Some(port));
    wait_for(
        "a state message after the restart",
        Duration::from_secs(20),
        || !states(&hourly2).is_empty(),
    );
    let fresh = states(&hourly2)[0].clone();
    assert!(
        timestamp(&fresh) >= restarted_at,
        "a fresh state, not a resent one: {fresh}"
    );
    assert_eq!(fresh, compact(timestamp(&fresh)));

    // Counters: data and states apart, while running and at the stop.
    let metrics = api_get(d, "/metrics");
    for event in ["queued", "delivered", "dropped"] {
        let series = format!("drv_state_msgs_total{{node=\"fast\",event=\"{event}\"}} ");
        assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    }
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
    let (a_states, a_data) = (
        states(&each_second).len() as u64,
        data(&each_second).len() as u64,
    );
    let drv = final_pairs(d, "fast", "drv_states");
    assert_eq!(drv.get("delivered"), Some(&a_states), "{drv:?}");
    assert_eq!(drv.get("queued"), Some(&a_states), "{drv:?}");
    assert_eq!(
        final_count(d, Some("fast"), "delivered")
            .parse::<u64>()
            .unwrap(),
        a_data,
        "delivered counts the data messages only"
    );
    assert_eq!(
        final_count(d, Some("fast"), "queued"),
        final_count(d, Some("fast"), "delivered")
    );
    // The data arrived without a gap around the state messages.
    CounterReport::from_payloads(data(&each_second).iter().map(String::as_str)).assert_no_gaps();
    let hourly_states = final_pairs(d, "hourly", "drv_states");
    assert!(
        hourly_states.get("delivered").is_some_and(|n| *n >= 2),
        "{hourly_states:?}"
    );
}
