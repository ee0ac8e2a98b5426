//! Operating the daemon: exit codes, JSON logs, status lines, `[api] listen = "off"`.

mod support;

use std::time::Duration;

use support::{daemon_log, start_daemon_with_env, tagwire, wait_for, FAST_SIMULATOR};

fn code_of(args: &[&str]) -> (Option<i32>, String) {
    let out = tagwire().args(args).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn exit_codes_are_as_documented() {
    // Usage problems, clap's own errors included: 1.
    for args in [
        &["run"][..],
        &["bogus"],
        &["demo", "--seconds", "x"],
        &["--log-format", "xml", "check", "--config", "x"],
    ] {
        let (code, text) = code_of(args);
        assert_eq!(code, Some(1), "{args:?}: {text}");
        assert!(text.contains("error"), "{args:?}: {text}");
    }
    // Help and version: 0, and the help names the exit codes and TAGWIRE_LOG.
    let (code, help) = code_of(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(help.contains("Exit codes: 0 success; 1 a usage"), "{help}");
    assert!(help.contains("TAGWIRE_LOG"), "{help}");
    assert_eq!(code_of(&["--version"]).0, Some(0));
    // A runtime failure: 2 (the sink's address is taken).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, text) = code_of(&["sink", "--listen", &addr]);
    assert_eq!(code, Some(2), "{text}");
}

/// A daemon logging JSON (chosen by `TAGWIRE_LOG_FORMAT`), with the API off and a status
/// line every second, pushing to an uplink whose server is down.
#[test]
fn json_logs_parse_line_by_line_and_speak_the_words_of_the_config() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "[api]\nlisten = \"off\"\n[log]\nstatus_interval = 1\n{FAST_SIMULATOR}\n\
         [[north]]\nname = \"down\"\nurl = \"ws://127.0.0.1:{port}/x\"\n"
    );
    let mut daemon = start_daemon_with_env(dir.path(), &config, &[("TAGWIRE_LOG_FORMAT", "json")]);
    wait_for("two status lines", Duration::from_secs(15), || {
        daemon_log(dir.path()).matches("\"status\"").count() >= 2
    });
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));

    let log = daemon_log(dir.path());
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for e in &events {
        for key in ["timestamp", "level", "message"] {
            assert!(e.get(key).is_some(), "no {key:?} in {e}");
        }
    }
    let find = |message: &str| {
        events
            .iter()
            .find(|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .unwrap_or_else(|| panic!("no {message:?} in:\n{log}"))
    };
    assert!(find("management and ingest API off").is_object());
    assert!(!log.contains("API listening"), "{log}");
    let configured = find("uplink configured");
    assert_eq!(configured["uplink"], "down");
    assert_eq!(configured["frame"], "binary");
    assert_eq!(configured["policy"], "drop_oldest");
    let failing = find("cannot deliver");
    assert_eq!(failing["uplink"], "down");
    let failing_for = failing["failing_for"].as_str().unwrap();
    assert!(
        failing_for.ends_with('s') && !failing_for.ends_with("ns") && !failing_for.contains('µ'),
        "failing_for = {failing_for:?}"
    );
    let status: Vec<_> = events.iter().filter(|e| e["message"] == "status").collect();
    assert!(status.len() >= 2, "{log}");
    for s in &status {
        assert_eq!(s["uplink"], "down");
        assert_eq!(s["connected"], false);
        assert_eq!(s["interval"], "1s");
        assert_eq!(s["delivered"], 0);
        // The simulator reports every 5 ms: the counts since the last line, not totals.
        let queued = s["queued"].as_u64().unwrap();
        assert!((20..=600).contains(&queued), "queued per 1 s: {s}");
    }
}

#[test]
fn status_lines_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[api]\nlisten = \"off\"\n[log]\nstatus_interval = 0\n{FAST_SIMULATOR}\n\
         [[north]]\nname = \"down\"\nurl = \"ws://127.0.0.1:9/x\"\n"
    );
    let mut daemon = start_daemon_with_env(dir.path(), &config, &[]);
    wait_for("the start", Duration::from_secs(10), || {
        daemon_log(dir.path()).contains("tagwire running")
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));
    let log = daemon_log(dir.path());
    assert!(!log.contains(" status "), "{log}");
}

/// One unlabelled gauge from the exposition.
fn gauge(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[test]
fn metrics_export_the_process_figures() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        format!("{FAST_SIMULATOR}\n[[north]]\nname = \"down\"\nurl = \"ws://127.0.0.1:9/x\"\n");
    let mut daemon = start_daemon_with_env(dir.path(), &config, &[]);
    std::thread::sleep(Duration::from_millis(1100));
    let text = support::api_get(dir.path(), "/metrics");
    let rss = gauge(&text, "process_resident_memory_bytes");
    assert!((1 << 20..1 << 30).contains(&rss), "RSS {rss}");
    // stdin, stdout, stderr, the API listener and this scrape's connection at least.
    assert!(gauge(&text, "process_open_fds") >= 5, "{text}");
    assert!(gauge(&text, "process_uptime_seconds") >= 1, "{text}");
    assert_eq!(gauge(&text, "uplink_connections_open"), 0, "{text}");
    assert!(
        text.contains("# TYPE process_resident_memory_bytes gauge"),
        "{text}"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(15)), Some(0));
}

fn deploy_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The systemd unit passes `systemd-analyze verify` without a single warning (an unknown
/// or misspelt key is only a warning there), with its binary path pointed at the one
/// under test.
#[test]
fn the_systemd_unit_verifies_cleanly() {
    if std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert_ne!(
            std::env::var("TAGWIRE_REQUIRE_PEERS").as_deref(),
            Ok("1"),
            "systemd-analyze is missing: install systemd"
        );
        eprintln!("SKIPPED: systemd-analyze is missing");
        return;
    }
    let unit = std::fs::read_to_string(deploy_dir().join("tagwire.service")).unwrap();
    for key in [
        "DynamicUser=yes",
        "StateDirectory=tagwire",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l == key), "the unit lacks {key}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tagwire.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/tagwire", env!("CARGO_BIN_EXE_tagwire")),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

/// Every example configuration in `deploy/examples/` (and the commented full example) is
/// accepted by `tagwire check`; file paths are pointed at a temporary directory holding
/// openssl-made certificates and an encrypted key, secrets come from the environment.
#[test]
fn every_example_configuration_passes_check() {
    use support::certs::{KeyVariant, Pki, PASSWORD};
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let variant = KeyVariant::Pkcs8EncDefault;
    std::fs::copy(&pki.ca, etc.join("ca.pem")).unwrap();
    std::fs::copy(pki.cert_for(variant), etc.join("client.pem")).unwrap();
    std::fs::copy(pki.key(variant), etc.join("client.key")).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(deploy_dir().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files.push(deploy_dir().join("tagwire.example.toml"));
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace("/etc/tagwire/", &format!("{}/", etc.display()))
            .replace("/var/lib/tagwire/", &format!("{}/", dir.path().display()));
        let copy = dir.path().join(file.file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        let out = tagwire()
            .arg("check")
            .arg("--config")
            .arg(&copy)
            .env("TAGWIRE_KEYPASS", PASSWORD)
            .env("TAGWIRE_TOKEN", "example-token")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The repository stands alone: no tracked file refers to the `shared/` directory that
/// once sat next to it (test vectors and the format account now live inside).
#[test]
fn no_tracked_file_refers_outside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let Ok(out) = std::process::Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["ls-files", "-z"])
        .output()
    else {
        eprintln!("SKIPPED: no git");
        return;
    };
    if !out.status.success() {
        // An exported tarball has no git metadata: nothing to list.
        eprintln!("SKIPPED: not a git checkout");
        return;
    }
    let files: Vec<&[u8]> = out
        .stdout
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .collect();
    assert!(files.len() > 50, "only {} tracked files", files.len());
    // Spelt in two pieces so that this file does not match itself.
    let needle = format!("../{}", "shared");
    let mut offenders = Vec::new();
    for f in files {
        let path = root.join(String::from_utf8_lossy(f).as_ref());
        if let Ok(text) = std::fs::read_to_string(&path) {
            if text.contains(&needle) {
                offenders.push(path.display().to_string());
            }
        }
    }
    assert!(offenders.is_empty(), "refer to {needle}: {offenders:?}");
}
