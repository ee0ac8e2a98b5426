//! Shared pieces of the end-to-end tests: starting real peers and the `tagwire` binary,
//! waiting for conditions, and reading what the peers received.
#![allow(dead_code)] // each test file uses a different part of this module

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
            panic!("{var} is not set: run the tests with `cargo xtask test`, which installs the peers")
        }
        _ => {
            eprintln!("SKIPPED: {var} is not set (run `cargo xtask test` to install the real peers)");
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
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
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

/// The lines of a file (empty when it does not exist yet).
pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `tagwire run` with a configuration, logging to `<dir>/tagwire.log`.
pub fn start_daemon(dir: &Path, config: &str) -> Proc {
    let cfg = dir.join("tagwire.toml");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.join("tagwire.log")).unwrap();
    let child = tagwire()
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .env("TAGWIRE_LOG", "info,tagwire_ws_client=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start tagwire run");
    Proc {
        child,
        name: "tagwire run".into(),
    }
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
