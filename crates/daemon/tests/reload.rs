//! Reload under load: uplinks added, changed (URL and format) and removed while the
//! simulator reports 100 times a second, with the changed uplink's new server down for a
//! second; every `counter` accepted arrives. An invalid reload keeps the old config.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::{
    api_get, api_port, api_request, counter_of, daemon_log, final_count, peer_env, start_daemon,
    wait_for, Peer,
};

/// The simulator at 100 reports/s (group `fast`), and the `[[north]]` entries given.
fn config(north: &str) -> String {
    format!(
        "[[south]]\nname = \"sim\"\nkind = \"simulator\"\n[[south.groups]]\nname = \"fast\"\n\
         interval_ms = 10\ntags = 4\n{north}"
    )
}

fn uplink(name: &str, port: u16, extra: &str) -> String {
    format!("[[north]]\nname = \"{name}\"\nurl = \"ws://127.0.0.1:{port}/{name}\"\n{extra}\n")
}

/// Rewrites the daemon's configuration as `start_daemon` wrote it (same `[api]`).
fn rewrite(dir: &Path, body: &str) {
    std::fs::write(
        dir.join("tagwire.toml"),
        format!("[api]\nlisten = \"127.0.0.1:0\"\n{body}"),
    )
    .unwrap();
}

fn counters(peers: &[&Peer]) -> BTreeSet<u64> {
    peers
        .iter()
        .flat_map(|p| p.messages())
        .map(|(_, m)| {
            counter_of(&m)
                .unwrap_or_else(|| panic!("no counter in {m}"))
                .1
        })
        .collect()
}

/// Panics unless `got` is exactly `from..=to`, naming the first counters missing.
fn assert_all(got: &BTreeSet<u64>, from: u64, to: u64, what: &str) {
    let missing: Vec<u64> = (from..=to).filter(|c| !got.contains(c)).collect();
    assert!(
        missing.is_empty() && got.len() as u64 == to - from + 1,
        "{what}: {} of {from}..={to} missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

fn sighup(daemon: &support::Proc) {
    assert!(Command::new("kill")
        .args(["-HUP", &daemon.child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

fn reloads(dir: &Path) -> usize {
    daemon_log(dir).matches("configuration reloaded").count()
}

#[test]
fn reload_under_load_loses_nothing_accepted() {
    let Some(python) = peer_env("TAGWIRE_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let a = Peer::python_named(&python, d, "a", None);
    let b1 = Peer::python_named(&python, d, "b1", None);
    let c = Peer::python_named(&python, d, "c", None);
    let new_d = Peer::python_named(&python, d, "d", None);
    let b2_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let first = config(&format!(
        "{}{}{}",
        uplink("a", a.port, ""),
        uplink("b", b1.port, ""),
        uplink("c", c.port, "")
    ));
    let mut daemon = start_daemon(d, &first);
    wait_for("messages at a, b and c", Duration::from_secs(15), || {
        [&a, &b1, &c].iter().all(|p| p.messages().len() >= 50)
    });

    // b's server goes down, so that messages wait in b's queue; then b moves to a server
    // that is down for a second more and changes format; c goes; d comes.
    let mut b1 = b1;
    let _ = b1.proc.child.kill();
    let _ = b1.proc.child.wait();
    std::thread::sleep(Duration::from_millis(500));
    rewrite(
        d,
        &config(&format!(
            "{}{}{}",
            uplink("a", a.port, ""),
            uplink("b", b2_port, "format = \"tags\""),
            uplink("d", new_d.port, "")
        )),
    );
    sighup(&daemon);
    wait_for("the reload", Duration::from_secs(10), || reloads(d) == 1);
    let log = daemon_log(d);
    assert!(
        log.contains("north: added d, changed b, removed c, unchanged a; south: added none, changed none, removed none, unchanged sim"),
        "{log}"
    );
    std::thread::sleep(Duration::from_secs(1));
    let b2 = Peer::python_named(&python, d, "b2", Some(b2_port));
    wait_for("messages at b2 and d", Duration::from_secs(15), || {
        b2.messages().len() >= 100 && new_d.messages().len() >= 50
    });

    // An invalid configuration is refused with its problem named; the old one runs on.
    rewrite(d, &config(&uplink("a", a.port, "format = \"xml\"")));
    let (status, body) = api_request(d, "POST", "/api/v1/reload", "", b"");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("north[0].format: unknown format"), "{body}");
    let log = daemon_log(d);
    assert!(log.contains("reload refused: north[0].format"), "{log}");
    let (before_b, before_d) = (b2.messages().len(), new_d.messages().len());
    wait_for("b and d still served", Duration::from_secs(10), || {
        b2.messages().len() > before_b + 50 && new_d.messages().len() > before_d + 50
    });
    assert_eq!(reloads(d), 1);

    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));

    // Everything the simulator reported reached a, and b's two servers between them.
    let all = counters(&[&a]);
    let last = *all.iter().next_back().unwrap();
    assert_all(&all, 1, last, "a");
    assert!(last >= 200, "only {last} reports");
    let b_all = counters(&[&b1, &b2]);
    assert_all(&b_all, 1, last, "b1 + b2");
    // c drained before it went: every counter up to its last, from 1.
    let c_all = counters(&[&c]);
    let c_last = *c_all.iter().next_back().unwrap();
    assert_all(&c_all, 1, c_last, "c");
    // d started mid-stream and got every counter from then on.
    let d_all = counters(&[&new_d]);
    let d_first = *d_all.iter().next().unwrap();
    assert_all(&d_all, d_first, last, "d");
    // Messages encoded after the reload use b's new format; queued ones kept theirs.
    let b2_msgs = b2.messages();
    assert!(
        b2_msgs.last().unwrap().1.contains("\"tags\": [{"),
        "{:?}",
        b2_msgs.last()
    );
    assert!(b1
        .messages()
        .iter()
        .all(|(_, m)| m.contains("\"values\": {")));
    // a kept its one connection through both reloads.
    let connections = a.lines().iter().filter(|l| l.starts_with("C ")).count();
    assert_eq!(connections, 1, "a reconnected");
    for name in ["a", "b", "c", "d"] {
        assert_eq!(
            final_count(d, Some(name), "queued"),
            final_count(d, Some(name), "delivered"),
            "uplink {name}"
        );
    }
}

#[test]
fn the_nodes_list_follows_the_running_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let south = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("[[south]]\nname = \"{n}\"\nkind = \"simulator\"\n"))
            .collect::<String>()
    };
    let names = || -> Vec<String> {
        let nodes: serde_json::Value = serde_json::from_str(&api_get(d, "/api/v1/nodes")).unwrap();
        nodes["south"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                assert_eq!(n["running_state"], 3, "{n}");
                n["name"].as_str().unwrap().to_string()
            })
            .collect()
    };
    let mut daemon = start_daemon(d, &south(&["sim"]));
    api_port(d);
    assert_eq!(names(), ["sim"]);
    rewrite(d, &south(&["plc-2", "sim-b"]));
    let (status, body) = api_request(d, "POST", "/api/v1/reload", "", b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        names(),
        ["plc-2", "sim-b"],
        "the reloaded sources, in file order"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
}

/// POSTs one snapshot with `counter` to the API at `port`; returns the status.
fn post_counter(port: u16, counter: u64) -> u16 {
    use std::io::{Read, Write};
    let body = format!(
        r#"{{"node": "plc", "group": "g", "tags": [{{"name": "counter", "type": "UINT64", "value": {counter}}}]}}"#
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn ingest_racing_the_removal_of_an_uplink_loses_nothing_accepted() {
    let Some(python) = peer_env("TAGWIRE_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keep = Peer::python_named(&python, d, "keep", None);
    let old = Peer::python_named(&python, d, "old", None);
    let new = Peer::python_named(&python, d, "new", None);
    let mut daemon = start_daemon(
        d,
        &format!(
            "{}{}",
            uplink("keep", keep.port, ""),
            uplink("old", old.port, "")
        ),
    );
    let port = api_port(d);

    // One client posting without pause, one snapshot per request, while a reload
    // removes `old` and adds `new`.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poster = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut accepted = Vec::new();
            let mut counter = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                counter += 1;
                let status = post_counter(port, counter);
                assert_eq!(status, 202, "counter {counter}");
                accepted.push(counter);
            }
            accepted
        })
    };
    wait_for("posts reaching keep", Duration::from_secs(15), || {
        keep.messages().len() >= 200
    });
    rewrite(
        d,
        &format!(
            "{}{}",
            uplink("keep", keep.port, ""),
            uplink("new", new.port, "")
        ),
    );
    sighup(&daemon);
    wait_for("the reload", Duration::from_secs(10), || reloads(d) == 1);
    wait_for("posts reaching new", Duration::from_secs(15), || {
        new.messages().len() >= 200
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let accepted = poster.join().expect("every post answered 202");
    let last = *accepted.last().unwrap();
    wait_for("keep and new caught up", Duration::from_secs(15), || {
        counters(&[&keep]).len() as u64 == last && counters(&[&new]).contains(&last)
    });
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));

    // keep: every accepted snapshot, once.
    assert_all(&counters(&[&keep]), 1, last, "keep");
    assert_eq!(keep.messages().len() as u64, last, "no duplicates at keep");
    // The reload cut the stream cleanly: old drained 1..=k before it closed, new has
    // k+1..=last; between them every accepted snapshot, none twice.
    let old_got = counters(&[&old]);
    let k = *old_got.iter().next_back().unwrap();
    assert_all(&old_got, 1, k, "old (drained)");
    assert_all(&counters(&[&new]), k + 1, last, "new");
    assert!(
        old.lines().iter().any(|l| l == "X 1000"),
        "old closed with a Close frame after its drain"
    );
    let log = daemon_log(d);
    assert!(!log.contains("panicked"), "{log}");
    assert_eq!(
        final_count(d, Some("old"), "queued"),
        final_count(d, Some("old"), "delivered"),
        "{log}"
    );
}

#[test]
fn the_status_interval_applies_at_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with_interval = |secs: u64| {
        format!(
            "[log]\nstatus_interval = {secs}\n{}",
            uplink("nowhere", 9, "")
        )
    };
    let mut daemon = start_daemon(d, &with_interval(0));
    api_port(d);
    std::thread::sleep(Duration::from_millis(1500));
    let status_lines = || daemon_log(d).matches(" status uplink=").count();
    assert_eq!(status_lines(), 0, "status lines are off");
    rewrite(d, &with_interval(1));
    sighup(&daemon);
    wait_for("the reload", Duration::from_secs(10), || reloads(d) == 1);
    let log = daemon_log(d);
    assert!(log.contains("[log] status_interval now 1s"), "{log}");
    wait_for(
        "status lines after the reload",
        Duration::from_secs(10),
        || status_lines() >= 2,
    );
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
}
