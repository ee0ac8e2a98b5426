//! The offline disk cache through the daemon: `kill -9` with the strictest sync, a
//! damaged cache file, a full disk.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

fn config(port: u16, cache: &str, with_source: bool) -> String {
    one_uplink_config(
        if with_source { FAST_SIMULATOR } else { "" },
        &format!("ws://127.0.0.1:{port}/"),
        &format!(
            "backoff_min_ms = 50\nbackoff_max_ms = 300\ndrain_timeout_ms = 300\n[north.cache]\n{cache}"
        ),
    )
}

/// After a `kill -9`: starts the daemon again on the same cache (no source) against a
/// fresh counting server on `port`, waits until the `accepted` messages arrived and the
/// cache is empty, and stops it. Returns what the server counted and the restart's
/// directory (for its log); `None` (test skipped) without the Python peer.
fn restart_and_deliver(
    port: u16,
    cache_cfg: &str,
    accepted: u64,
) -> Option<(CounterReport, tempfile::TempDir)> {
    let restart_dir = tempfile::tempdir().unwrap();
    let port_arg = port.to_string();
    let peer = Peer::python(restart_dir.path(), &["--port", &port_arg])?;
    let daemon = start_daemon(restart_dir.path(), &config(port, cache_cfg, false));
    wait_for("the cached messages", Duration::from_secs(20), || {
        peer.counter_report().max("fast") >= accepted
    });
    wait_for("the cache to empty", Duration::from_secs(20), || {
        metric(restart_dir.path(), "cached_msgs", "peer") == 0
    });
    drop(daemon);
    Some((peer.counter_report(), restart_dir))
}

#[test]
fn messages_accepted_before_kill_9_are_delivered_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_cfg = format!("dir = \"{}\"\nsync = \"always\"", cache.display());
    let port = free_port();
    let mut daemon = start_daemon(dir.path(), &config(port, &cache_cfg, true));
    wait_for("300 queued messages", Duration::from_secs(20), || {
        metric(dir.path(), "queued_msgs_total", "peer") >= 300
    });
    let accepted = metric(dir.path(), "queued_msgs_total", "peer");
    daemon.child.kill().unwrap(); // SIGKILL: no shutdown code runs
    daemon.child.wait().unwrap();

    let Some((report, restart_dir)) = restart_and_deliver(port, &cache_cfg, accepted) else {
        return;
    };
    eprintln!(
        "kill -9: {accepted} accepted before the kill (at least), {} delivered after the restart, {} duplicates",
        report.max("fast"),
        report.duplicates
    );
    report.assert_no_gaps();
    assert!(report.seen["fast"].contains(&1));
    let log = daemon_log(restart_dir.path());
    assert!(
        log.contains("messages from the previous run will be sent first"),
        "{log}"
    );
}

/// Confirmations are persisted in batches (the `head` file is written at most once a
/// second): `kill -9` while messages are being confirmed resends at most about one
/// second of them, and loses none. FAST_SIMULATOR makes 200 messages a second, so
/// the bound asserted is two seconds' worth (the interval plus the timer's phase and
/// the batch in flight).
#[test]
fn kill_9_between_a_confirmation_and_the_head_write_resends_a_bounded_few() {
    const RATE: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_cfg = format!("dir = \"{}\"\nsync = \"always\"", cache.display());
    let port = free_port();
    let port_arg = port.to_string();
    let Some(peer) = Peer::python(dir.path(), &["--port", &port_arg]) else {
        return;
    };
    let mut daemon = start_daemon(dir.path(), &config(port, &cache_cfg, true));
    // Long enough for several head writes; the kill lands between two of them.
    wait_for("700 delivered messages", Duration::from_secs(30), || {
        peer.counter_report().max("fast") >= 700
    });
    daemon.child.kill().unwrap(); // SIGKILL
    daemon.child.wait().unwrap();
    let before = peer.counter_report();

    let restart_dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(restart_dir.path(), &config(port, &cache_cfg, false));
    wait_for("the cache to empty", Duration::from_secs(20), || {
        metric(restart_dir.path(), "cached_msgs", "peer") == 0
    });
    drop(daemon);
    let after = peer.counter_report();
    let resent = after.duplicates - before.duplicates;
    eprintln!(
        "kill -9 while confirming: {} delivered before the kill, {} after the restart, {resent} resent",
        before.max("fast"),
        after.max("fast")
    );
    after.assert_no_gaps();
    assert!(after.max("fast") >= before.max("fast"));
    assert!(
        resent <= 2 * RATE,
        "{resent} messages resent after kill -9: the head is not persisted about once a second"
    );
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs
}

#[test]
fn a_damaged_cache_file_is_salvaged_record_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_cfg = format!("dir = \"{}\"\nsync = 100", cache.display());
    let port = free_port();
    let mut daemon = start_daemon(dir.path(), &config(port, &cache_cfg, true));
    wait_for("400 queued messages", Duration::from_secs(20), || {
        metric(dir.path(), "queued_msgs_total", "peer") >= 400
    });
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
    let accepted: u64 = final_count(dir.path(), None, "queued").parse().unwrap();

    // Damage 200 bytes in the middle of the first segment.
    let seg = segments(&cache.join("peer"))[0].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 200].fill(0x5A);
    std::fs::write(&seg, &bytes).unwrap();

    let restart_dir = tempfile::tempdir().unwrap();
    let port_arg = port.to_string();
    let Some(peer) = Peer::python(restart_dir.path(), &["--port", &port_arg]) else {
        return;
    };
    let daemon = start_daemon(restart_dir.path(), &config(port, &cache_cfg, false));
    wait_for("the cache to empty", Duration::from_secs(20), || {
        metric(restart_dir.path(), "cached_msgs", "peer") == 0
            && metric(restart_dir.path(), "link_state", "peer") == 1
    });
    drop(daemon);
    let report = peer.counter_report();
    let got = report.seen["fast"].len() as u64;
    let missing: Vec<u64> = (1..=accepted)
        .filter(|c| !report.seen["fast"].contains(c))
        .collect();
    eprintln!(
        "damaged cache: {accepted} cached, {got} salvaged and delivered, missing {missing:?}"
    );
    // 200 damaged bytes touch at most a few records of ~300 bytes; all others arrive.
    assert!(!missing.is_empty(), "the damage destroyed something");
    assert!(missing.len() <= 3, "{missing:?}");
    assert!(
        missing.windows(2).all(|w| w[1] == w[0] + 1),
        "one damaged stretch: {missing:?}"
    );
    assert_eq!(
        report.max("fast"),
        accepted,
        "records after the damage arrived"
    );
    let log = daemon_log(restart_dir.path());
    assert!(log.contains("disk cache was damaged"), "{log}");
}

/// A 192 KiB tmpfs, unmounted when dropped.
struct SmallFs(std::path::PathBuf);

impl SmallFs {
    fn mount(at: &Path) -> Option<SmallFs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=192k", "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(SmallFs(at.to_path_buf()))
        } else if std::env::var("TAGWIRE_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("cannot mount a small tmpfs (the full-disk test needs root)")
        } else {
            eprintln!("SKIPPED: cannot mount a small tmpfs (needs root)");
            None
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_falls_back_to_memory_says_so_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = SmallFs::mount(&dir.path().join("small")) else {
        return;
    };
    let cache_cfg = format!(
        "dir = \"{}\"\nsync = \"always\"\ndisk_mb = 64",
        fs.0.display()
    );
    let port = free_port();
    let daemon = start_daemon(dir.path(), &config(port, &cache_cfg, true));
    wait_for(
        "the daemon to notice the full disk",
        Duration::from_secs(30),
        || daemon_log(dir.path()).contains("the disk is full"),
    );
    // Keep going in memory for a while, then let the server come.
    std::thread::sleep(Duration::from_millis(500));
    let port_arg = port.to_string();
    let Some(peer) = Peer::python(dir.path(), &["--port", &port_arg]) else {
        return;
    };
    wait_for("the link", Duration::from_secs(10), || {
        metric(dir.path(), "link_state", "peer") == 1
    });
    let queued = metric(dir.path(), "queued_msgs_total", "peer");
    wait_for(
        "everything queued so far to arrive",
        Duration::from_secs(20),
        || peer.counter_report().max("fast") >= queued,
    );
    let dropped = dropped_total(dir.path());
    drop(daemon);
    let report = peer.counter_report();
    eprintln!(
        "full disk: {} delivered without a gap, {} duplicates",
        report.max("fast"),
        report.duplicates
    );
    report.assert_no_gaps();
    assert_eq!(dropped, 0, "nothing dropped: memory took over");
}

/// A cache that filled its file system to the last byte is emptied by delivery after a
/// restart: every segment is deleted once confirmed, so a later restart resends
/// nothing. (The same-run case, where the segment being appended to is kept and the
/// `head` write meets a full disk, is `a_full_disk_is_reported_and_the_log_stays_consistent`
/// in `crates/queue/tests/disk_log.rs`.)
#[test]
fn a_full_disk_is_emptied_by_delivery_and_nothing_is_resent_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = SmallFs::mount(&dir.path().join("small")) else {
        return;
    };
    let cache_cfg = format!("dir = \"{}\"\nsync = \"always\"", fs.0.display());
    let port = free_port();
    let mut daemon = start_daemon(dir.path(), &config(port, &cache_cfg, true));
    wait_for("the disk to fill", Duration::from_secs(30), || {
        daemon_log(dir.path()).contains("the disk is full")
    });
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    // Take the last free byte too.
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(fs.0.join("filler")).unwrap();
        while filler.write_all(&[0; 512]).is_ok() {}
        while filler.write_all(&[0]).is_ok() {}
    }
    let cache = fs.0.join("peer");
    assert!(!segments(&cache).is_empty());

    let port_arg = port.to_string();
    let Some(peer) = Peer::python(dir.path(), &["--port", &port_arg]) else {
        return;
    };
    let run2 = tempfile::tempdir().unwrap();
    let daemon = start_daemon(run2.path(), &config(port, &cache_cfg, false));
    wait_for("the cache to empty", Duration::from_secs(20), || {
        metric(run2.path(), "cached_msgs", "peer") == 0
    });
    wait_for(
        "every segment to be deleted",
        Duration::from_secs(5),
        || segments(&cache).is_empty(),
    );
    drop(daemon);
    let delivered = peer.counter_report();
    delivered.assert_no_gaps();

    let run3 = tempfile::tempdir().unwrap();
    let daemon = start_daemon(run3.path(), &config(port, &cache_cfg, false));
    wait_for("the link", Duration::from_secs(10), || {
        metric(run3.path(), "link_state", "peer") == 1
    });
    std::thread::sleep(Duration::from_millis(500));
    drop(daemon);
    let after = peer.counter_report();
    eprintln!(
        "full disk emptied: {} delivered, {} resent after the restart",
        delivered.max("fast"),
        after.duplicates - delivered.duplicates
    );
    assert_eq!(
        after.duplicates, delivered.duplicates,
        "delivered messages were resent"
    );
}

/// Sum of `dropped_msgs_total` over every reason, from the API.
fn dropped_total(dir: &Path) -> u64 {
    api_get(dir, "/metrics")
        .lines()
        .filter(|l| l.starts_with("dropped_msgs_total{node=\"peer\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Deletes the cache directory of a running daemon (server down, so every message
/// waits in the cache); see `damaged_cache_then_kill_9`.
#[test]
fn a_deleted_cache_directory_is_recreated_and_kill_9_then_loses_nothing() {
    damaged_cache_then_kill_9("the cache directory was deleted", |cache| {
        std::fs::remove_dir_all(cache).unwrap();
    });
}

/// Replaces the segment file being written by another file of the same name.
#[test]
fn a_replaced_segment_file_is_rewritten_and_kill_9_then_loses_nothing() {
    damaged_cache_then_kill_9("the segment file being written was replaced", |cache| {
        let uplink_dir = cache.join("peer");
        let newest = segments(&uplink_dir).pop().expect("a segment");
        let other = uplink_dir.join("replacement");
        std::fs::write(&other, b"someone else's file").unwrap();
        std::fs::rename(&other, newest).unwrap();
    });
}

/// Runs the daemon with no server, so that messages accumulate in the disk cache;
/// `damage`s the cache; waits until the daemon said `what` (once) and accepted more
/// messages; `kill -9`; restarts against a counting server: every `counter` value
/// accepted arrives, with no gap.
fn damaged_cache_then_kill_9(what: &str, damage: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_cfg = format!("dir = \"{}\"", cache.display());
    let port = free_port();
    let mut daemon = start_daemon(dir.path(), &config(port, &cache_cfg, true));
    wait_for("300 queued messages", Duration::from_secs(20), || {
        metric(dir.path(), "queued_msgs_total", "peer") >= 300
    });
    damage(&cache);
    let damaged_at = metric(dir.path(), "queued_msgs_total", "peer");
    wait_for("the damage to be noticed", Duration::from_secs(10), || {
        daemon_log(dir.path()).contains(what)
    });
    // More messages after the repair, and several timer ticks that must stay quiet.
    wait_for("300 more queued messages", Duration::from_secs(20), || {
        metric(dir.path(), "queued_msgs_total", "peer") >= damaged_at + 300
    });
    std::thread::sleep(Duration::from_millis(2500));
    let accepted = metric(dir.path(), "queued_msgs_total", "peer");
    daemon.child.kill().unwrap(); // SIGKILL: no shutdown code runs
    daemon.child.wait().unwrap();
    let log = daemon_log(dir.path());
    assert_eq!(log.matches(what).count(), 1, "said once:\n{log}");

    let Some((report, restart_dir)) = restart_and_deliver(port, &cache_cfg, accepted) else {
        return;
    };
    eprintln!(
        "{what}: {damaged_at} accepted before, {accepted} before the kill, {} delivered after the restart",
        report.max("fast"),
    );
    report.assert_no_gaps();
    assert!(report.seen["fast"].contains(&1));
    let log = daemon_log(restart_dir.path());
    assert!(!log.contains("damaged"), "{log}");
}
