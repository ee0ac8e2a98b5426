//! The end-to-end check of one packaged binary under qemu-user: unpacked from its
//! archive, it (1) encodes the test vectors byte for byte, and (2) pushes a simulator
//! group over `wss://`, with a client certificate and an encrypted key made by the openssl
//! CLI, to a host-side `tagwire sink --client-ca`; every message must arrive, the group's
//! `counter` rising by exactly 1 from 1.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::setup::require_bin;
use crate::targets::DistTarget;
use crate::util::{cargo, free_port, run as run_cmd, target_dir, workspace_root};

/// The vector files the packaged `encode` must reproduce: (format, upload_err, file).
const VECTORS: &[(&str, &str, &str)] = &[
    ("values", "true", "values.neuron.txt"),
    ("values", "false", "values.neuron.noerr.txt"),
    ("tags", "true", "tags.neuron.txt"),
    ("tags", "false", "tags.neuron.noerr.txt"),
];

/// Messages the sink waits for (the simulated group reports every 20 ms).
const MESSAGES: u64 = 250;

/// How long the whole push may take under qemu before the test fails.
const PUSH_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs the end-to-end check of `t`'s archive; returns a one-line account.
pub fn run(t: &DistTarget, archive: &Path) -> Result<String> {
    let work = target_dir().join("test-arm").join(t.triple);
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    run_cmd(
        Command::new("tar")
            .arg("-xzf")
            .arg(archive)
            .arg("-C")
            .arg(&work),
    )?;
    let stem = archive
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .context("archive name")?;
    let unpacked = work.join(stem);
    for f in [
        "tagwire",
        "README.md",
        "LICENSE",
        "tagwire.service",
        "tagwire.example.toml",
    ] {
        ensure!(
            unpacked.join(f).is_file(),
            "{}: {f} missing from the archive",
            archive.display()
        );
    }
    let guest = Guest::new(t, unpacked.join("tagwire"))?;
    eprintln!("xtask test-arm: {} under {}", t.triple, guest.describe());

    let encoded = encode_vectors(&guest)?;
    let pushed = push_over_wss(&guest, &work)?;
    Ok(format!(
        "packaged binary under {}: {encoded}; {pushed}",
        guest.describe()
    ))
}

/// How to start the packaged binary: through qemu-user (with the cross libc for glibc
/// builds), or directly on the host's own architecture.
struct Guest {
    qemu: Option<(PathBuf, Option<&'static str>)>,
    binary: PathBuf,
}

impl Guest {
    fn new(t: &DistTarget, binary: PathBuf) -> Result<Self> {
        let qemu = match t.qemu {
            Some((q, sysroot)) => Some((require_bin(q, "qemu-user")?, sysroot)),
            None => None,
        };
        Ok(Guest { qemu, binary })
    }

    fn command(&self) -> Command {
        match &self.qemu {
            Some((qemu, sysroot)) => {
                let mut c = Command::new(qemu);
                if let Some(s) = sysroot {
                    c.args(["-L", s]);
                }
                c.arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        }
    }

    fn describe(&self) -> String {
        match &self.qemu {
            Some((q, Some(s))) => format!("{} -L {s}", q.display()),
            Some((q, None)) => q.display().to_string(),
            None => "the host".into(),
        }
    }
}

/// `tagwire encode` of `snapshots.ndjson` against each expected file, byte for byte.
fn encode_vectors(guest: &Guest) -> Result<String> {
    let dir = workspace_root().join("crates/encode/tests/vectors");
    let input = std::fs::read(dir.join("snapshots.ndjson"))?;
    let mut messages = 0;
    for (format, upload_err, file) in VECTORS {
        let expected = std::fs::read(dir.join(file))?;
        let mut child = guest
            .command()
            .args(["encode", "--format", format, "--upload-err", upload_err])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the packaged binary")?;
        // Feed stdin from a thread so a full stdout pipe cannot deadlock us.
        let mut stdin = child.stdin.take().expect("piped");
        let input = input.clone();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let mut got = Vec::new();
        child.stdout.take().expect("piped").read_to_end(&mut got)?;
        feeder.join().expect("feeder")?;
        let status = child.wait()?;
        ensure!(
            status.success(),
            "encode --format {format} --upload-err {upload_err}: {status}"
        );
        if got != expected {
            let line = got
                .split(|&b| b == b'\n')
                .zip(expected.split(|&b| b == b'\n'))
                .position(|(g, e)| g != e)
                .map_or("the length".to_string(), |n| format!("line {}", n + 1));
            bail!("encode --format {format} --upload-err {upload_err}: output differs from {file} at {line}");
        }
        messages += expected.iter().filter(|&&b| b == b'\n').count();
    }
    Ok(format!(
        "encode reproduced {} vector files byte for byte ({messages} messages)",
        VECTORS.len()
    ))
}

/// The wss:// push to a host-side sink; returns the account of what arrived.
fn push_over_wss(guest: &Guest, work: &Path) -> Result<String> {
    let keypass = "e2e-Secret-7";
    let pki = make_pki(work, keypass)?;
    let host = host_tagwire()?;
    let port = free_port()?;
    let received = work.join("received.ndjson");

    let mut sink = Command::new(&host)
        .args(["sink", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(&pki.server_cert)
        .arg("--tls-key")
        .arg(&pki.server_key)
        .arg("--client-ca")
        .arg(&pki.ca)
        .arg("--out")
        .arg(&received)
        .args(["--count", &MESSAGES.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the host's tagwire sink")?;
    let sink = KillOnDrop(&mut sink);
    wait_listening(sink.0)?;

    let config = work.join("e2e.toml");
    std::fs::write(&config, e2e_config(port, &pki))?;
    let log = work.join("daemon.log");
    let mut daemon = guest
        .command()
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("TAGWIRE_E2E_KEYPASS", keypass)
        .env("NO_COLOR", "1")
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("cannot start the packaged binary")?;
    let daemon = KillOnDrop(&mut daemon);

    let started = Instant::now();
    loop {
        if let Some(status) = sink.0.try_wait()? {
            ensure!(status.success(), "the sink failed ({status})");
            break;
        }
        if let Some(status) = daemon.0.try_wait()? {
            bail!("the packaged binary exited ({status}) before the sink got {MESSAGES} messages; its log:\n{}", read_log(&log));
        }
        if started.elapsed() > PUSH_TIMEOUT {
            bail!(
                "no {MESSAGES} messages after {PUSH_TIMEOUT:?}; the daemon's log:\n{}",
                read_log(&log)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = started.elapsed();
    // SIGTERM: the graceful stop (qemu-user forwards the signal to the guest).
    run_cmd(Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]))?;
    let stop = Instant::now();
    let status = loop {
        if let Some(s) = daemon.0.try_wait()? {
            break s;
        }
        ensure!(
            stop.elapsed() < Duration::from_secs(30),
            "the daemon did not stop within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    ensure!(
        status.success(),
        "the daemon's stop failed ({status}); its log:\n{}",
        read_log(&log)
    );

    let text = std::fs::read_to_string(&received)?;
    check_counters(&text, MESSAGES)?;
    // What the daemon says it did: its "final counts" line at stop.
    let log_text = read_log(&log);
    let delivered = final_count(&log_text, "delivered")
        .with_context(|| format!("no final counts in the daemon's log:\n{log_text}"))?;
    // The sink exits on its last message without answering the Ping after it, so the
    // last batch stays unconfirmed: the daemon may count fewer, never more.
    ensure!(
        delivered > 0 && delivered <= MESSAGES,
        "the daemon counts {delivered} messages delivered (confirmed), the sink received {MESSAGES}"
    );
    Ok(format!(
        "wss:// with a client certificate and an encrypted PKCS#8 key: the sink received {MESSAGES} messages in {:.1} s, counter 1..={MESSAGES} without a gap or repeat; the daemon counted queued={}, delivered (confirmed by Pong before the sink left)={delivered}, resent={}",
        took.as_secs_f64(),
        final_count(&log_text, "queued").unwrap_or_default(),
        final_count(&log_text, "resent").unwrap_or_default(),
    ))
}

/// Every line a message of group "g" of node "sim", line i carrying counter i+1.
fn check_counters(text: &str, expected: u64) -> Result<()> {
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        let msg: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("received message {} is not JSON: {line}", i + 1))?;
        ensure!(
            msg["node"] == "sim" && msg["group"] == "g",
            "message {}: unexpected node/group: {line}",
            i + 1
        );
        let counter = msg["values"]["counter"]
            .as_u64()
            .with_context(|| format!("message {} has no counter: {line}", i + 1))?;
        ensure!(
            counter == i as u64 + 1,
            "message {} carries counter {counter}: a gap or a repeat",
            i + 1
        );
        n += 1;
    }
    ensure!(n == expected, "{n} messages received, {expected} expected");
    Ok(())
}

/// `key=N` of the daemon's "final counts" log line.
fn final_count(log: &str, key: &str) -> Option<u64> {
    let line = log.lines().rev().find(|l| l.contains("final counts"))?;
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn e2e_config(port: u16, pki: &Pki) -> String {
    format!(
        r#"[api]
listen = "127.0.0.1:0"

[[south]]
name = "sim"
kind = "simulator"
[[south.groups]]
name = "g"
interval_ms = 20
tags = 10

[[north]]
name = "host-sink"
url = "wss://127.0.0.1:{port}/e2e"
format = "values"
ca = "{ca}"
cert = "{cert}"
key = "{key}"
keypass = "env:TAGWIRE_E2E_KEYPASS"
drain_timeout_ms = 1000
"#,
        ca = pki.ca.display(),
        cert = pki.client_cert.display(),
        key = pki.client_key.display(),
    )
}

/// The certificates and keys of the run.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate whose key is
/// encrypted with `keypass` (PKCS#8, AES-256-CBC: openssl's default), all made by the
/// openssl CLI. EC P-256 keeps the handshakes quick under qemu.
fn make_pki(work: &Path, keypass: &str) -> Result<Pki> {
    let openssl = require_bin("openssl", "openssl")?;
    let dir = work.join("pki");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )?;
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")?;
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256";
    let sign = "-CA ca.pem -CAkey ca.key -CAcreateserial -days 2";
    for args in [
        format!("req -x509 {ec} -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=tagwire-e2e-CA"),
        format!("req {ec} -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1"),
        format!("x509 -req -in server.csr {sign} -extfile server.ext -out server.pem"),
        format!("req {ec} -keyout client.key -passout pass:{keypass} -out client.csr -subj /CN=tagwire-e2e-gateway"),
        format!("x509 -req -in client.csr {sign} -extfile client.ext -out client.pem"),
    ] {
        let out = Command::new(&openssl)
            .current_dir(&dir)
            .args(args.split_whitespace())
            .output()
            .context("cannot start openssl")?;
        // The command line holds the key password: name the step, not the line.
        let step = args.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        ensure!(
            out.status.success(),
            "openssl {step} ... failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let key = std::fs::read_to_string(dir.join("client.key"))?;
    ensure!(
        key.contains("BEGIN ENCRYPTED PRIVATE KEY"),
        "openssl made an unencrypted client key"
    );
    Ok(Pki {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    })
}

/// The host's own tagwire (a debug build) for the sink.
fn host_tagwire() -> Result<PathBuf> {
    run_cmd(cargo().args(["build", "--locked", "--quiet", "-p", "tagwire"]))?;
    Ok(target_dir().join("debug").join("tagwire"))
}

/// Waits for the sink's "listening on" line, then forwards the rest of its stderr.
fn wait_listening(sink: &mut Child) -> Result<()> {
    let stderr = sink.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .context("the sink stopped before listening")??;
        eprintln!("{line}");
        if line.contains("listening on") {
            break;
        }
    }
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("{line}");
        }
    });
    Ok(())
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()))
}

/// Kills the child when a check fails half-way, so no process outlives the run.
struct KillOnDrop<'a>(&'a mut Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_counters;

    fn msg(counter: u64) -> String {
        format!(
            r#"{{"node": "sim", "group": "g", "timestamp": 1, "values": {{"counter": {counter}}}, "errors": {{}}, "metas": {{}}}}"#
        )
    }

    #[test]
    fn reads_final_counts() {
        let log = "2026 INFO tagwire::run: final counts uplink=x queued=260 delivered=251 resent=0 refused=0 dropped=none";
        assert_eq!(super::final_count(log, "delivered"), Some(251));
        assert_eq!(super::final_count(log, "queued"), Some(260));
        assert_eq!(super::final_count(log, "missing"), None);
    }

    #[test]
    fn counters_must_rise_by_one_from_one() {
        let ok: Vec<String> = (1..=3).map(msg).collect();
        check_counters(&ok.join("\n"), 3).unwrap();
        let gap = [msg(1), msg(3), msg(4)].join("\n");
        assert!(check_counters(&gap, 3).is_err());
        let repeat = [msg(1), msg(2), msg(2)].join("\n");
        assert!(check_counters(&repeat, 3).is_err());
        assert!(check_counters(&ok[..2].join("\n"), 3).is_err());
    }
}
