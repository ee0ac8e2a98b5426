//! Shared pieces of the end-to-end tests: starting real peers and the `tagwire` binary,
//! waiting for conditions, and reading what the peers received.
#![allow(dead_code)] // each test file uses a different part of this module

pub mod proxies;

// Only the TLS tests use it; every test binary compiles this module.
#[allow(unused_imports)]
pub use tagwire_test_pki as certs;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `tagwire` binary under test.
pub fn tagwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tagwire"))
}

/// The repository's `crates/daemon/tests/peers` folder.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// The value of a peer's environment variable (set by `cargo xtask test`). Without it the
/// test is skipped with a message, unless `TAGWIRE_REQUIRE_PEERS=1`, where it fails.
pub fn peer_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("TAGWIRE_REQUIRE_PEERS").as_deref() == Ok("1") => {
            panic!(
                "{var} is not set: run the tests with `cargo xtask test`, which installs the peers"
            )
        }
        _ => {
            eprintln!(
                "SKIPPED: {var} is not set (run `cargo xtask test` to install the real peers)"
            );
            None
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Sends SIGTERM and waits (at most `timeout`) for the exit; returns the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if start.elapsed() > timeout {
                panic!("{} did not stop within {timeout:?} of SIGTERM", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A WebSocket server peer (Python `websockets` or Node `ws`) writing what it receives
/// to a file in the peers' line protocol (`C path`, `B payload`, `T payload`).
pub struct Peer {
    pub proc: Proc,
    pub port: u16,
    pub out: PathBuf,
}

impl Peer {
    /// Starts `cmd` (which must print `READY <port>`) with `--out <dir>/<name>.out`.
    pub fn start(name: &str, mut cmd: Command, dir: &Path) -> Peer {
        let out = dir.join(format!("{name}.out"));
        cmd.arg("--out").arg(&out);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("peer stdout");
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} did not print READY <port>, said {line:?}"));
        Peer {
            proc: Proc {
                child,
                name: name.into(),
            },
            port,
            out,
        }
    }

    /// The Python `websockets` peer, or None when skipped.
    pub fn python(dir: &Path, extra: &[&str]) -> Option<Peer> {
        let python = peer_env("TAGWIRE_PYTHON")?;
        let mut cmd = Command::new(python);
        cmd.arg(peers_dir().join("ws_server.py")).args(extra);
        Some(Peer::start("python-websockets", cmd, dir))
    }

    /// One of several Python `websockets` peers of a test, named `name` (its output in
    /// `<dir>/<name>/`), on `port` or a free one. `python` is `TAGWIRE_PYTHON`.
    pub fn python_named(python: &str, dir: &Path, name: &str, port: Option<u16>) -> Peer {
        let sub = dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let mut cmd = Command::new(python);
        cmd.arg(peers_dir().join("ws_server.py"));
        if let Some(p) = port {
            cmd.args(["--port", &p.to_string()]);
        }
        Peer::start(name, cmd, &sub)
    }

    /// The Node `ws` peer, or None when skipped.
    pub fn node(dir: &Path, extra: &[&str]) -> Option<Peer> {
        let node_path = peer_env("TAGWIRE_NODE_PATH")?;
        let mut cmd = Command::new("node");
        cmd.env("NODE_PATH", node_path)
            .arg(peers_dir().join("ws_server.js"))
            .args(extra);
        Some(Peer::start("node-ws", cmd, dir))
    }

    /// Every line received so far.
    pub fn lines(&self) -> Vec<String> {
        read_lines(&self.out)
    }

    /// The `counter` tags received so far, per group.
    pub fn counter_report(&self) -> CounterReport {
        CounterReport::from_payloads(self.messages().iter().map(|(_, p)| p.as_str()))
    }

    /// The messages received so far: `(frame kind 'B' | 'T', payload)`.
    pub fn messages(&self) -> Vec<(char, String)> {
        self.lines()
            .into_iter()
            .filter_map(|l| {
                let (kind, payload) = l.split_once(' ')?;
                match kind {
                    "B" => Some(('B', payload.to_string())),
                    "T" => Some(('T', payload.to_string())),
                    _ => None,
                }
            })
            .collect()
    }
}

/// The complete lines of a file (empty when it does not exist yet). A last line still
/// being written (no newline yet) is left out, so a reader never sees half a message.
pub fn read_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete.lines().map(str::to_string).collect()
}

/// `tagwire run` with a configuration, logging to `<dir>/tagwire.log`. Unless the
/// configuration has an `[api]` section, the API listens on a free loopback port (see
/// [`api_get`]), so that tests can run in parallel.
pub fn start_daemon(dir: &Path, config: &str) -> Proc {
    start_daemon_with_env(
        dir,
        config,
        &[(
            "TAGWIRE_LOG",
            "info,tagwire_pipeline=debug,tagwire_ws_client=debug",
        )],
    )
}

/// Like [`start_daemon`], with environment variables of the caller's (which may
/// override `TAGWIRE_LOG`).
pub fn start_daemon_with_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> Proc {
    let cfg = dir.join("tagwire.toml");
    let config = if config.contains("[api]") {
        config.to_string()
    } else {
        format!("[api]\nlisten = \"127.0.0.1:0\"\n{config}")
    };
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.join("tagwire.log")).unwrap();
    let child = tagwire()
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start tagwire run");
    Proc {
        child,
        name: "tagwire run".into(),
    }
}

/// The resident memory of a process, in bytes.
pub fn rss(pid: u32) -> u64 {
    try_rss(pid).expect("VmRSS of a running process")
}

/// The resident memory of a process, in bytes; `None` once it has exited.
pub fn try_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

/// The API's port, read from the daemon's log (waits until it is there).
pub fn api_port(dir: &Path) -> u16 {
    let mut port = None;
    wait_for(
        "the API address in the log",
        Duration::from_secs(10),
        || {
            port = daemon_log(dir)
                .lines()
                .find(|l| l.contains("API listening"))
                .and_then(|l| l.split("listen=").nth(1))
                .and_then(|a| a.split_whitespace().next())
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse::<u16>().ok());
            port.is_some()
        },
    );
    port.unwrap()
}

/// One HTTP request to the daemon's API; returns (status, body).
pub fn api_request(
    dir: &Path,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", api_port(dir))).expect("API connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .unwrap();
    // A body over the limit is refused before it is all read: ignore a broken pipe.
    let _ = s.write_all(body);
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {resp:?}"));
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// GETs `path` from the daemon's API; returns the body.
pub fn api_get(dir: &Path, path: &str) -> String {
    api_request(dir, "GET", path, "", b"").1
}

/// One metric's value from the API's Prometheus text, e.g. `metric(dir, "cached_msgs", "peer")`.
pub fn metric(dir: &Path, name: &str, node: &str) -> u64 {
    let text = api_get(dir, "/metrics");
    let prefix = format!("{name}{{node=\"{node}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in:\n{text}"))
}

/// A simulator source `sim` with one group, `fast`: 8 tags every 5 ms.
pub const FAST_SIMULATOR: &str = r#"
[[south]]
name = "sim"
kind = "simulator"
[[south.groups]]
name = "fast"
interval_ms = 5
tags = 8
"#;

/// A configuration of `south` (such as [`FAST_SIMULATOR`]) and one uplink `peer` to
/// `url` with `north_extra` keys (which may open sub-tables).
pub fn one_uplink_config(south: &str, url: &str, north_extra: &str) -> String {
    format!("{south}\n[[north]]\nname = \"peer\"\nurl = \"{url}\"\n{north_extra}\n")
}

/// A field of the daemon's "final counts" log line (for `uplink`, or the first line).
pub fn final_count(dir: &Path, uplink: Option<&str>, field: &str) -> String {
    let log = daemon_log(dir);
    let line = log
        .lines()
        .find(|l| {
            l.contains("final counts") && uplink.is_none_or(|u| l.contains(&format!("uplink={u}")))
        })
        .unwrap_or_else(|| panic!("no final counts for {uplink:?} in:\n{log}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{field}=")))
        .unwrap_or_else(|| panic!("no {field} in {line}"))
        .to_string()
}

/// The daemon's log so far.
pub fn daemon_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("tagwire.log")).unwrap_or_default()
}

/// The `counter` tag of a values- or tags-format message, with its group.
pub fn counter_of(json: &str) -> Option<(String, u64)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let group = v["group"].as_str()?.to_string();
    if let Some(c) = v["values"]["counter"].as_u64() {
        return Some((group, c));
    }
    v["tags"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == "counter")
        .and_then(|t| t["value"].as_u64())
        .map(|c| (group, c))
}

/// What a receiver saw of the `counter` tags, per group.
#[derive(Debug, Default)]
pub struct CounterReport {
    /// Distinct counters per group.
    pub seen: BTreeMap<String, std::collections::BTreeSet<u64>>,
    /// Messages whose counter was already seen (at-least-once duplicates).
    pub duplicates: u64,
}

impl CounterReport {
    /// Builds the report from message payloads.
    pub fn from_payloads<'a>(payloads: impl IntoIterator<Item = &'a str>) -> Self {
        let mut r = CounterReport::default();
        for p in payloads {
            let (group, c) = counter_of(p).unwrap_or_else(|| panic!("no counter in {p}"));
            if !r.seen.entry(group).or_default().insert(c) {
                r.duplicates += 1;
            }
        }
        r
    }

    /// Panics unless every group's counters are exactly 1..=max (nothing missing).
    pub fn assert_no_gaps(&self) {
        assert!(!self.seen.is_empty(), "no counters received at all");
        for (group, set) in &self.seen {
            let max = *set.iter().next_back().unwrap();
            let missing: Vec<u64> = (1..=max).filter(|c| !set.contains(c)).collect();
            assert!(
                missing.is_empty(),
                "group {group}: {} of {max} counters missing, first {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            );
        }
    }

    /// Highest counter of `group`.
    pub fn max(&self, group: &str) -> u64 {
        self.seen
            .get(group)
            .and_then(|s| s.iter().next_back().copied())
            .unwrap_or(0)
    }
}

/// A TCP proxy of the tests' own between tagwire and a server: it can cut every
/// connection (dropping whatever it holds) or stall (stop forwarding without closing).
pub struct Proxy {
    pub port: u16,
    state: std::sync::Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    stalled: std::sync::atomic::AtomicBool,
    accepted: std::sync::atomic::AtomicU64,
    /// Bytes forwarded from tagwire to the server.
    upstream_bytes: std::sync::atomic::AtomicU64,
    live: std::sync::Mutex<Vec<std::net::TcpStream>>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<port> to `upstream`.
    pub fn start(upstream: std::net::SocketAddr) -> Proxy {
        use std::sync::atomic::Ordering::SeqCst;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = std::sync::Arc::new(ProxyState::default());
        let st = std::sync::Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(upstream) else {
                    continue; // the client sees its connection closed, as with a dead server
                };
                st.accepted.fetch_add(1, SeqCst);
                {
                    let mut live = st.live.lock().unwrap();
                    live.push(client.try_clone().unwrap());
                    live.push(server.try_clone().unwrap());
                }
                for (upstream, mut from, mut to) in [
                    (
                        true,
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                    ),
                    (false, server, client),
                ] {
                    let st = std::sync::Arc::clone(&st);
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // While stalled, hold the bytes: the peer sees a silent link.
                            while st.stalled.load(SeqCst) {
                                std::thread::sleep(Duration::from_millis(10));
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            if upstream {
                                st.upstream_bytes.fetch_add(n as u64, SeqCst);
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                        let _ = from.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, state }
    }

    /// Cuts every live connection at once; bytes in transit are lost.
    pub fn cut(&self) {
        for s in self.state.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Stops (true) or resumes (false) forwarding, without closing anything.
    pub fn stall(&self, on: bool) {
        self.state
            .stalled
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Bytes forwarded from tagwire to the server so far (every connection, everything
    /// on the wire: handshakes, frame headers, payloads).
    pub fn upstream_bytes(&self) -> u64 {
        self.state
            .upstream_bytes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.state
            .accepted
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A free loopback port for a server the test starts later (or restarts on it).
pub fn free_port() -> u16 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::Mutex;
    // Below Linux's ephemeral range (32768-60999 by default): a port the kernel hands
    // out for `bind(0)` is also what it gives outgoing connections, so between this
    // check and the server's own bind, a client socket of another test (or process)
    // could take it, and the server would fail with "address already in use". Never
    // the same port twice in one test process either.
    const FIRST: u64 = 20_000;
    const COUNT: u64 = 12_000;
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let start = RandomState::new().build_hasher().finish();
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for i in 0..COUNT {
        let port = (FIRST + (start.wrapping_add(i) % COUNT)) as u16;
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!(
        "no free loopback port between {FIRST} and {}",
        FIRST + COUNT
    );
}

/// Starts `tagwire sink --listen 127.0.0.1:0 --out OUT` with `extra_args` (e.g. its
/// TLS flags); returns it, the address it prints (see [`sink_url`]) and its stderr, which
/// the caller keeps reading or drops.
pub fn start_sink(
    out: &Path,
    extra_args: &[&std::ffi::OsStr],
) -> (Proc, String, std::process::ChildStderr) {
    let mut child = tagwire()
        .args(["sink", "--listen", "127.0.0.1:0", "--out"])
        .arg(out)
        .args(extra_args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let url = sink_url(&mut stderr);
    let proc = Proc {
        child,
        name: "tagwire sink".into(),
    };
    (proc, url, stderr)
}

/// Reads the first line `tagwire sink` prints on stderr (byte by byte, so that nothing
/// after it is buffered away) and returns the `ws://` (or, with TLS, `wss://`) address
/// it names.
pub fn sink_url(stderr: &mut impl std::io::Read) -> String {
    let mut first = Vec::new();
    let mut byte = [0u8];
    while stderr.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    let first = String::from_utf8(first).unwrap();
    first
        .split_whitespace()
        .find(|w| w.starts_with("ws://") || w.starts_with("wss://"))
        .unwrap_or_else(|| panic!("sink said {first:?}"))
        .to_string()
}
