//! Attacks on the ingest API over real sockets: slow headers, endless and stalled
//! bodies, connection floods under a low open-file limit, and a refuse-policy log flood.
//! Each asserts the bound: connections closed within the timeout, memory under the
//! body budget, the healthy uplink's `counter` without a gap, log lines counted.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

fn connect(dir: &Path) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", api_port(dir))).expect("API connect");
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    s
}

/// True once the server has closed `s` (EOF or reset); reads and drops any answer.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

const LIMITS: &str = "[api]\nlisten = \"127.0.0.1:0\"\nheader_timeout_ms = 1000\nbody_timeout_ms = 1500\nidle_timeout_ms = 2000\n";

#[test]
fn slowloris_headers_are_closed_within_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let _daemon = start_daemon(
        dir.path(),
        &format!("{LIMITS}[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n"),
    );
    let mut conns: Vec<TcpStream> = (0..40).map(|_| connect(dir.path())).collect();
    let header = b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let start = Instant::now();
    let mut open = conns.len();
    let mut i = 0;
    // One byte per connection every 100 ms: each head never completes.
    while open > 0 && start.elapsed() < Duration::from_secs(8) {
        open = 0;
        for c in &mut conns {
            let _ = c.write_all(&[header[i % header.len()]]);
            if !closed(c) {
                open += 1;
            }
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = start.elapsed();
    assert_eq!(open, 0, "connections still open after {took:?}");
    // Header timeout 1 s; the idle watchdog may fire first at 2 s; allow scheduling slack.
    assert!(took < Duration::from_secs(4), "closed only after {took:?}");
    assert_eq!(api_request(dir.path(), "GET", "/health", "", b"").0, 200);
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    // hyper's head timer also runs while a keep-alive connection waits for its next
    // request, so the idle timeout is the shorter of the two: make it the shorter here.
    let _daemon = start_daemon(
        dir.path(),
        "[api]\nlisten = \"127.0.0.1:0\"\nheader_timeout_ms = 6000\nidle_timeout_ms = 1000\n[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n",
    );
    let mut c = connect(dir.path());
    c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    wait_for(
        "the idle connection to close",
        Duration::from_secs(8),
        || closed(&mut c),
    );
    let took = start.elapsed();
    assert!(
        (Duration::from_millis(800)..Duration::from_secs(3)).contains(&took),
        "closed after {took:?}, not after the 1 s idle timeout"
    );
}

#[test]
fn endless_chunked_bodies_get_408_within_the_body_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let _daemon = start_daemon(
        dir.path(),
        &format!("{LIMITS}[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n"),
    );
    let mut conns: Vec<TcpStream> = (0..30)
        .map(|_| {
            let mut c = connect(dir.path());
            c.write_all(
                b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .unwrap();
            c
        })
        .collect();
    let start = Instant::now();
    let mut answers = vec![String::new(); conns.len()];
    let mut done = vec![false; conns.len()];
    // A one-byte chunk per connection every 50 ms: it never ends.
    while done.iter().any(|d| !d) && start.elapsed() < Duration::from_secs(8) {
        for (i, c) in conns.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            let _ = c.write_all(b"1\r\n \r\n");
            let mut buf = [0u8; 4096];
            match c.read(&mut buf) {
                Ok(0) => done[i] = true,
                Ok(n) => answers[i].push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => done[i] = true,
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    assert!(done.iter().all(|d| *d), "bodies still held after {took:?}");
    assert!(took < Duration::from_secs(4), "closed only after {took:?}");
    let timed_out = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 408"))
        .count();
    assert_eq!(timed_out, conns.len(), "answers: {:?}", &answers[..3]);
    assert!(answers[0].contains("body_timeout_ms"), "{}", answers[0]);
}

#[test]
fn stalled_large_bodies_stay_within_the_body_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(
        dir.path(),
        "[api]\nlisten = \"127.0.0.1:0\"\nbody_timeout_ms = 3000\nmax_body_bytes = 8388608\nmax_body_memory_bytes = 16777216\n[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n",
    );
    let pid = daemon.child.id();
    api_get(dir.path(), "/health");
    let before = rss(pid);
    let body = vec![b' '; 8 * 1024 * 1024 - 1];
    // 20 clients each announce 8 MiB and send all but the last byte in 64 KiB pieces.
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let port = api_port(dir.path());
            let body = body.clone();
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.write_all(
                    b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n",
                )
                .unwrap();
                for piece in body.chunks(64 * 1024) {
                    if c.write_all(piece).is_err() {
                        break;
                    }
                }
                let mut answer = String::new();
                let _ = c.read_to_string(&mut answer);
                answer
            })
        })
        .collect();
    let mut peak = 0;
    let start = Instant::now();
    while clients.iter().any(|c| !c.is_finished()) && start.elapsed() < Duration::from_secs(10) {
        peak = peak.max(rss(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let status = |code: &str| {
        answers
            .iter()
            .filter(|a| a.starts_with(&format!("HTTP/1.1 {code}")))
            .count()
    };
    eprintln!(
        "rss before {} MiB, peak {} MiB; 408: {}, 503: {}, in {took:?}",
        before >> 20,
        peak >> 20,
        status("408"),
        status("503")
    );
    assert_eq!(
        status("408") + status("503"),
        20,
        "{:?}",
        answers.iter().map(|a| a.lines().next()).collect::<Vec<_>>()
    );
    // 16 MiB of bodies at most, plus socket buffers and allocator slack.
    assert!(
        peak < before + 48 * 1024 * 1024,
        "RSS grew from {} to {} MiB",
        before >> 20,
        peak >> 20
    );
    assert!(took < Duration::from_secs(6), "bodies held for {took:?}");
}

#[test]
fn one_byte_chunks_keep_no_per_chunk_memory() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_daemon(
        dir.path(),
        "[api]\nlisten = \"127.0.0.1:0\"\nbody_timeout_ms = 60000\n[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n",
    );
    let pid = daemon.child.id();
    api_get(dir.path(), "/health");
    let before = rss(pid);
    let mut c = TcpStream::connect(("127.0.0.1", api_port(dir.path()))).unwrap();
    c.write_all(b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .unwrap();
    // 2 Mi one-byte chunks (each " "), written in large blocks.
    let block = b"1\r\n \r\n".repeat(64 * 1024);
    let mut peak = 0;
    for _ in 0..32 {
        c.write_all(&block).unwrap();
        peak = peak.max(rss(pid));
    }
    c.write_all(b"0\r\n\r\n").unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    peak = peak.max(rss(pid));
    eprintln!("rss before {} MiB, peak {} MiB", before >> 20, peak >> 20);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // 2 MiB of body; at ~34 bytes per kept chunk it would be 70 MiB more.
    assert!(
        peak < before + 24 * 1024 * 1024,
        "RSS grew from {} to {} MiB",
        before >> 20,
        peak >> 20
    );
}

#[test]
fn a_connection_flood_under_a_low_open_file_limit_leaves_the_uplink_and_health_working() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let config = format!(
        "[api]\nlisten = \"127.0.0.1:0\"\nidle_timeout_ms = 600000\nheader_timeout_ms = 600000\n{}",
        one_uplink_config(
            FAST_SIMULATOR,
            &format!("ws://127.0.0.1:{}/", peer.port),
            ""
        )
    );
    let cfg = dir.path().join("tagwire.toml");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.path().join("tagwire.log")).unwrap();
    // The daemon itself runs with 64 open files at most.
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 64 && exec {} run --config {}",
            env!("CARGO_BIN_EXE_tagwire"),
            cfg.display()
        ))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _daemon = Proc {
        child,
        name: "tagwire run (ulimit -n 64)".into(),
    };
    wait_for("the first messages", Duration::from_secs(10), || {
        peer.messages().len() > 10
    });
    let log = daemon_log(dir.path());
    assert!(log.contains("max_connections lowered"), "{log}");
    // 80 idle connections: only the first 32 are kept.
    let mut conns: Vec<TcpStream> = (0..80).map(|_| connect(dir.path())).collect();
    std::thread::sleep(Duration::from_millis(500));
    let refused = conns.iter_mut().map(closed).filter(|c| *c).count();
    assert!(refused >= 80 - 32, "only {refused} of 80 closed");
    // The uplink can still reconnect: cut it by restarting nothing, just check it keeps
    // delivering, without a gap, for 3 s while the flood holds.
    let before = peer.messages().len();
    std::thread::sleep(Duration::from_secs(3));
    assert!(peer.messages().len() > before + 100, "the uplink stalled");
    peer.counter_report().assert_no_gaps();
    drop(conns);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api_request(dir.path(), "GET", "/health", "", b"").0, 200);
    let accept_failed = daemon_log(dir.path()).matches("accept failed").count();
    assert!(accept_failed <= 2, "{accept_failed} accept-failed lines");
    let cap_lines = daemon_log(dir.path())
        .matches("closing new ones at once")
        .count();
    assert_eq!(cap_lines, 1, "the connection cap is logged once a minute");
}

#[test]
fn the_refuse_policy_with_the_server_down_logs_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = start_daemon(
        dir.path(),
        &one_uplink_config(
            FAST_SIMULATOR,
            "ws://127.0.0.1:9/",
            "[north.cache]\nmax_messages = 2\npolicy = \"refuse\"\n",
        ),
    );
    api_port(dir.path());
    // 5 ms reports for 4 s: ~800 refusals.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(daemon.terminate(Duration::from_secs(10)), Some(0));
    let log = daemon_log(dir.path());
    let refused = log.lines().filter(|l| l.contains("report refused")).count();
    let failures = log.lines().filter(|l| l.contains("cannot deliver")).count();
    eprintln!("report refused lines: {refused}, cannot deliver lines: {failures}");
    assert_eq!(refused, 1, "{log}");
    assert!(failures <= 2, "{log}");
}

#[test]
fn a_server_failing_every_connection_is_logged_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &["--close-after", "5"]) else {
        return;
    };
    let mut daemon = start_daemon(
        dir.path(),
        &one_uplink_config(
            FAST_SIMULATOR,
            &format!("ws://127.0.0.1:{}/", peer.port),
            "backoff_min_ms = 50\nbackoff_max_ms = 200\n",
        ),
    );
    wait_for("ten connection cycles", Duration::from_secs(20), || {
        peer.lines().iter().filter(|l| l.starts_with("X ")).count() >= 10
    });
    std::thread::sleep(Duration::from_secs(2));
    let _ = daemon.terminate(Duration::from_secs(10));
    let log = daemon_log(dir.path());
    let cycles = peer.lines().iter().filter(|l| l.starts_with("C ")).count();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("cannot deliver"))
        .collect();
    let reconnected = log
        .lines()
        .filter(|l| l.contains("connected again"))
        .count();
    eprintln!(
        "{cycles} cycles, {} warnings, {reconnected} reconnect lines",
        warnings.len()
    );
    assert!(cycles >= 10);
    assert!(warnings.len() <= 2, "{warnings:#?}");
    assert!(reconnected <= 1, "{log}");
    // Only the first line of the episode may say it has just begun.
    assert!(
        warnings
            .iter()
            .skip(1)
            .all(|w| !w.contains("failing_for=0ns")),
        "{warnings:#?}"
    );
}

/// `tagwire check` on a configuration file: (exit code, stdout).
fn check_file(path: &Path) -> (i32, String) {
    let out = tagwire()
        .arg("check")
        .arg("--config")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn check_refuses_an_empty_token_and_impossible_limits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        "[api]\ntoken = \"\"\nmax_body_bytes = 2000000\nmax_body_memory_bytes = 1000000\nheader_timeout_ms = 0\n",
    )
    .unwrap();
    let (code, out) = check_file(&path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("api.token: is empty"), "{out}");
    assert!(
        out.contains("api.max_body_memory_bytes: 1000000 is below max_body_bytes"),
        "{out}"
    );
    assert!(
        out.contains("api.header_timeout_ms: 0 is out of range"),
        "{out}"
    );
    std::fs::write(
        &path,
        "[api]\ntoken = \"x\"\nheader_timeout_ms = 5000\nbody_timeout_ms = 5000\nidle_timeout_ms = 5000\nmax_connections = 10\n",
    )
    .unwrap();
    let (code, out) = check_file(&path);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn check_of_an_endless_file_stops_at_the_size_limit() {
    let out = tagwire()
        .args(["check", "--config", "/dev/zero"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = out.id();
    let start = Instant::now();
    let mut peak = 0;
    let mut child = out;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if let Some(bytes) = try_rss(pid) {
            peak = peak.max(bytes);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "check of /dev/zero still running"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("larger than 4 MiB"), "{text}");
    assert!(peak < 64 * 1024 * 1024, "RSS reached {} MiB", peak >> 20);
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_401_says_how_to_authenticate() {
    let dir = tempfile::tempdir().unwrap();
    let _daemon = start_daemon(
        dir.path(),
        "[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret\"\n[[north]]\nname = \"peer\"\nurl = \"ws://127.0.0.1:9/\"\n",
    );
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("Authorization: {scheme} s3cret\r\n");
        assert_eq!(
            api_request(dir.path(), "GET", "/health", &auth, b"").0,
            200,
            "{scheme}"
        );
    }
    // The raw answer, for its headers.
    let mut s = TcpStream::connect(("127.0.0.1", api_port(dir.path()))).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic czNjcmV0\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("www-authenticate: bearer realm=\"tagwire\""),
        "{answer}"
    );
}
