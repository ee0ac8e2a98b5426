//! wss:// end to end: `tagwire run` with the simulator against real TLS peers (Python
//! `websockets` with `ssl.CERT_REQUIRED`, nginx with `ssl_verify_client on` in front of a
//! plain WebSocket server, `tagwire sink` with `--client-ca`), with certificates and keys
//! made by the `openssl` command line in every format the issue names; and every TLS
//! problem, found by `tagwire check`, at start-up, or when connecting, with its message.
//!
//! To keep the wall time low, a test runs one daemon with several uplinks, each with its
//! own simulated group (`subscriptions`) and its own URL path: the group's `counter` tags
//! arriving complete prove that *this* uplink, with *its* key, delivered everything.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::certs::{
    self, toml_str, Form, KeyVariant, Pki, Recipes, CLIENT_EXT, PASSWORD, SERVER_EXT_NO_SAN,
};
use support::*;

/// One `[[north]]` uplink of a test configuration.
struct Uplink {
    name: &'static str,
    url: String,
    /// `(key, value)` TLS parameters, written as TOML strings.
    tls: Vec<(&'static str, String)>,
}

impl Uplink {
    fn new(name: &'static str, url: String) -> Uplink {
        Uplink {
            name,
            url,
            tls: Vec::new(),
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<String>) -> Uplink {
        self.tls.push((key, value.into()));
        self
    }

    /// `ca` = the test CA, and the client certificate and key of `variant`, each in the
    /// given form; `keypass` = the password literally when the key is encrypted.
    fn client(self, pki: &Pki, variant: KeyVariant, forms: [Form; 3]) -> Uplink {
        let uplink = self
            .with("ca", forms[0].value(&pki.ca))
            .with("cert", forms[1].value(pki.cert_for(variant)))
            .with("key", forms[2].value(pki.key(variant)));
        if variant.is_encrypted() {
            uplink.with("keypass", PASSWORD)
        } else {
            uplink
        }
    }
}

/// A configuration with one simulated group per uplink (named like the uplink, a report
/// every 40 ms), each uplink subscribed to its own group only.
fn config(uplinks: &[Uplink]) -> String {
    let mut c = String::from("[[south]]\nname = \"sim\"\nkind = \"simulator\"\n");
    for u in uplinks {
        c += &format!(
            "[[south.groups]]\nname = \"{}\"\ninterval_ms = 40\ntags = 2\n",
            u.name
        );
    }
    for u in uplinks {
        c += &format!(
            "\n[[north]]\nname = \"{name}\"\nurl = \"{url}\"\nbackoff_min_ms = 50\n\
             backoff_max_ms = 500\nsubscriptions = [{{ node = \"sim\", group = \"{name}\" }}]\n",
            name = u.name,
            url = u.url
        );
        for (key, value) in &u.tls {
            c += &format!("{key} = {}\n", toml_str(value));
        }
    }
    c
}

/// `support::start_daemon_with_env` with every log line of every module (`debug`), so
/// that a password in any log would show.
fn start_daemon_debug(dir: &Path, config: &str, env: &[(&str, &str)]) -> Proc {
    let mut env = env.to_vec();
    env.push(("TAGWIRE_LOG", "debug"));
    start_daemon_with_env(dir, config, &env)
}

/// The `counter` tags received per group (= per uplink: each has a group of its own).
fn counters(payloads: &[String]) -> CounterReport {
    CounterReport::from_payloads(payloads.iter().map(String::as_str))
}

fn peer_payloads(peer: &Peer) -> Vec<String> {
    peer.messages().into_iter().map(|(_, p)| p).collect()
}

/// Waits until every named uplink's group has at least `n` counters at the receiver.
fn wait_for_groups(what: &str, names: &[&str], n: u64, payloads: impl Fn() -> Vec<String>) {
    wait_for(what, Duration::from_secs(30), || {
        let report = counters(&payloads());
        names.iter().all(|name| report.max(name) >= n)
    });
}

/// Stops the daemon gracefully, then checks that every named uplink delivered its group
/// completely: no gap, and every message it had queued before the stop arrived (a
/// graceful stop drains the queues); and that the daemon counted confirmed messages for
/// each of those uplinks.
fn stop_and_check_delivery(
    mut daemon: Proc,
    dir: &Path,
    names: &[&str],
    payloads: impl Fn() -> Vec<String>,
) {
    let before: Vec<(&str, u64, u64)> = names
        .iter()
        .map(|name| {
            let confirmed = metric(dir, "send_msgs_total", name);
            let queued = metric(dir, "queued_msgs_total", name);
            (*name, confirmed, queued)
        })
        .collect();
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
    let report = counters(&payloads());
    report.assert_no_gaps();
    for (name, confirmed, queued) in before {
        assert!(confirmed > 0, "{name}: no message confirmed by the server");
        assert!(
            report.max(name) >= queued,
            "{name}: {queued} queued before the stop, {} received",
            report.max(name)
        );
    }
}

/// The daemon's log line about `uplink`'s failed connection.
fn failure_line(dir: &Path, uplink: &str) -> Option<String> {
    let field = format!("uplink={uplink} ");
    daemon_log(dir)
        .lines()
        .find(|l| l.contains("cannot deliver") && l.contains(&field))
        .map(str::to_owned)
}

fn wait_for_failure(dir: &Path, uplink: &str) -> String {
    wait_for(
        &format!("uplink {uplink}'s connection failure in the log"),
        Duration::from_secs(20),
        || failure_line(dir, uplink).is_some(),
    );
    failure_line(dir, uplink).unwrap()
}

/// A Python `websockets` server with a server certificate, requiring client certificates
/// issued by the test CA (`ssl.CERT_REQUIRED`).
fn python_wss(dir: &Path, pki: &Pki, server: &certs::Identity, name: &str) -> Option<Peer> {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    Peer::python(
        &sub,
        &[
            "--tls-cert",
            certs::p(&server.cert),
            "--tls-key",
            certs::p(&server.key),
            "--client-ca",
            certs::p(&pki.ca),
        ],
    )
}

/// The key-format matrix: one uplink per key variant, every variant connecting to a
/// server that requires a client certificate and delivering its group completely; `ca`,
/// `cert` and `key` given as paths, PEM text and base64 across the cases; `keypass`
/// literal, `env:` and `file:`.
#[test]
fn every_key_format_delivers_over_wss_with_client_certificates_required() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = python_wss(dir.path(), pki, &pki.server, "python") else {
        return;
    };
    let url = |name: &str| format!("wss://localhost:{}/e2e/{name}", peer.port);
    use Form::{Base64 as B64, Path as P, Pem};
    use KeyVariant::*;
    let matrix: [(&'static str, KeyVariant, [Form; 3]); 12] = [
        ("pkcs8-plain", Pkcs8Plain, [P, P, P]),
        ("pkcs8-aes256-sha256", Pkcs8EncDefault, [Pem, Pem, Pem]),
        ("pkcs8-aes256-sha1", Pkcs8Sha1Prf, [B64, B64, B64]),
        ("pkcs8-des3", Pkcs8Des3, [P, Pem, B64]),
        ("pkcs8-scrypt", Pkcs8Scrypt, [B64, P, Pem]),
        ("rsa-pkcs1-plain", RsaPkcs1Plain, [P, B64, Pem]),
        ("rsa-legacy-aes256", RsaLegacyAes256, [Pem, P, P]),
        ("rsa-legacy-des3", RsaLegacyDes3, [P, P, B64]),
        ("ec-sec1-plain", EcSec1Plain, [B64, Pem, P]),
        ("ec-legacy-aes256", EcLegacyAes256, [P, B64, Pem]),
        ("req-newkey", ReqNewkey, [Pem, B64, P]),
        ("ed25519-plain", Ed25519Plain, [P, P, B64]),
    ];
    let mut uplinks: Vec<Uplink> = matrix
        .iter()
        .map(|(name, variant, forms)| Uplink::new(name, url(name)).client(pki, *variant, *forms))
        .collect();
    // keypass from an environment variable and from a file (first line; the newline is
    // not part of the password).
    let pass_file = dir.path().join("keypass.txt");
    std::fs::write(&pass_file, format!("{PASSWORD}\n")).unwrap();
    for (name, variant, keypass) in [
        (
            "keypass-env",
            Pkcs8EncDefault,
            "env:TAGWIRE_E2E_KEYPASS".to_owned(),
        ),
        (
            "keypass-file",
            RsaLegacyAes256,
            format!("file:{}", pass_file.display()),
        ),
    ] {
        uplinks.push(
            Uplink::new(name, url(name))
                .with("ca", P.value(&pki.ca))
                .with("cert", P.value(pki.cert_for(variant)))
                .with("key", P.value(pki.key(variant)))
                .with("keypass", keypass),
        );
    }
    let names: Vec<&str> = uplinks.iter().map(|u| u.name).collect();
    let config = config(&uplinks);

    // The configuration is usable as `tagwire check` sees it, too.
    let check = tagwire()
        .args(["check", "--config"])
        .arg(write(dir.path(), "check.toml", &config))
        .env("TAGWIRE_E2E_KEYPASS", PASSWORD)
        .output()
        .unwrap();
    let check_out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{check_out}");
    assert!(!check_out.contains(PASSWORD));

    let started = Instant::now();
    let daemon = start_daemon_debug(dir.path(), &config, &[("TAGWIRE_E2E_KEYPASS", PASSWORD)]);
    wait_for_groups("every uplink's group at the server", &names, 10, || {
        peer_payloads(&peer)
    });
    eprintln!(
        "{} uplinks delivered in {:?}",
        names.len(),
        started.elapsed()
    );
    // Every uplink connected on its own path (the server logs `C <path>` per connection).
    let lines = peer.lines();
    for name in &names {
        let path = format!("C /e2e/{name}");
        assert!(lines.contains(&path), "no connection on {path}");
    }
    stop_and_check_delivery(daemon, dir.path(), &names, || peer_payloads(&peer));
    let log = daemon_log(dir.path());
    assert!(
        !log.contains(PASSWORD),
        "the password is in the daemon's log"
    );
    assert!(
        !log.contains("cannot deliver"),
        "a connection failed:\n{log}"
    );
    // Nor is any key, whether given as a path, inline or as base64: a line of its PEM body
    // or the start of its base64 would show.
    for (_, variant, _) in &matrix {
        let key = pki.key(*variant);
        let pem = std::fs::read_to_string(key).unwrap();
        let body_line = pem
            .lines()
            .find(|l| !l.starts_with("-----") && !l.contains(':') && l.len() > 40);
        let body_line = body_line.expect("a PEM body line");
        let b64 = Form::Base64.value(key);
        assert!(!log.contains(body_line), "{variant:?} key text in the log");
        assert!(
            !log.contains(&b64[..40]),
            "{variant:?} key base64 in the log"
        );
    }
}

/// Connection-time problems, each logged by the daemon with advice naming the parameter to
/// change; and `server_name` making a certificate for another name usable.
#[test]
fn connect_time_tls_errors_are_logged_with_advice() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(localhost) = python_wss(dir.path(), pki, &pki.server, "localhost") else {
        return;
    };
    let gateway = python_wss(dir.path(), pki, &pki.gateway, "gateway").unwrap();
    let expired = python_wss(dir.path(), pki, &pki.expired, "expired").unwrap();
    let future = python_wss(dir.path(), pki, &pki.not_yet_valid, "future").unwrap();
    let client = |u: Uplink| u.client(pki, KeyVariant::Pkcs8Plain, [Form::Path; 3]);
    let url = |host: &str, peer: &Peer| format!("wss://{host}:{}/", peer.port);

    let uplinks = [
        // No `ca`: the public web CAs do not know the test CA.
        Uplink::new("no-ca", url("localhost", &localhost))
            .with("cert", certs::p(&pki.client(certs::KeyAlg::EcP256).cert))
            .with("key", certs::p(pki.key(KeyVariant::Pkcs8Plain))),
        // `ca` is another CA.
        Uplink::new("wrong-ca", url("localhost", &localhost))
            .with("ca", certs::p(&pki.other_ca))
            .with("cert", certs::p(&pki.client(certs::KeyAlg::EcP256).cert))
            .with("key", certs::p(pki.key(KeyVariant::Pkcs8Plain))),
        // The certificate is for gateway.test, the URL says 127.0.0.1.
        client(Uplink::new("name-mismatch", url("127.0.0.1", &gateway))),
        // ... and server_name fixes that.
        client(Uplink::new("server-name", url("127.0.0.1", &gateway)))
            .with("server_name", "gateway.test"),
        client(Uplink::new("expired", url("localhost", &expired))),
        client(Uplink::new("not-yet-valid", url("localhost", &future))),
        // The server requires a client certificate; none is configured. Python's asyncio
        // TLS drops such a connection without sending the TLS alert (checked with
        // `openssl s_client`: "unexpected eof"); the daemon still names the likely cause,
        // since no client certificate is configured. The sink test below covers a server
        // that sends the `certificate_required` alert.
        Uplink::new("no-client-cert", url("localhost", &localhost)).with("ca", certs::p(&pki.ca)),
    ];
    let daemon = start_daemon(dir.path(), &config(&uplinks));

    let expectations: [(&str, &[&str]); 6] = [
        (
            "no-ca",
            &[
                "not signed by a CA this client trusts",
                "set `ca` to the CA",
            ],
        ),
        (
            "wrong-ca",
            &[
                "not signed by a CA this client trusts",
                "set `ca` to the CA",
            ],
        ),
        (
            "name-mismatch",
            &[
                "not valid for the name 127.0.0.1",
                "gateway.test",
                "set `server_name`",
            ],
        ),
        (
            "expired",
            &[
                "expired at 2020-01-02 00:00:00 UTC",
                "renew the server certificate",
            ],
        ),
        (
            "not-yet-valid",
            &["valid only from 2099-01-01 00:00:00 UTC", "clock"],
        ),
        (
            "no-client-cert",
            &[
                "wss://localhost:",
                "right after the TLS handshake",
                "set `cert` and `key`",
            ],
        ),
    ];
    for (uplink, wanted) in expectations {
        let line = wait_for_failure(dir.path(), uplink);
        eprintln!("{uplink}: {line}");
        for w in wanted {
            assert!(line.contains(w), "{uplink}: {w:?} not in:\n{line}");
        }
    }
    // server_name = "gateway.test" connects to 127.0.0.1 and delivers.
    wait_for_groups(
        "the server-name uplink's data",
        &["server-name"],
        10,
        || peer_payloads(&gateway),
    );
    stop_and_check_delivery(daemon, dir.path(), &["server-name"], || {
        peer_payloads(&gateway)
    });
    assert!(failure_line(dir.path(), "server-name").is_none());
    // Nothing reached the servers the failing uplinks talked to.
    for peer in [&localhost, &expired, &future] {
        assert!(peer.messages().is_empty(), "{:?}", peer.lines());
    }
}

/// nginx from Debian terminating TLS with `ssl_verify_client on` in front of a plain
/// WebSocket server: data arrives through it; an uplink without a client certificate is
/// refused and the daemon's log says why.
#[test]
fn nginx_with_client_certificate_check_in_front_of_a_plain_websocket_server() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(upstream) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let Some((_nginx, port)) = start_nginx(dir.path(), &pki.server, &pki.ca, upstream.port) else {
        return;
    };

    let url = format!("wss://localhost:{port}/through-nginx");
    let uplinks = [
        Uplink::new("via-nginx", url.clone()).client(
            pki,
            KeyVariant::EcLegacyAes256,
            [Form::Path; 3],
        ),
        Uplink::new("via-nginx-no-cert", url).with("ca", certs::p(&pki.ca)),
    ];
    let daemon = start_daemon(dir.path(), &config(&uplinks));
    let line = wait_for_failure(dir.path(), "via-nginx-no-cert");
    assert!(line.contains("HTTP 400"), "{line}");
    assert!(
        line.contains("No required SSL certificate was sent"),
        "the daemon's log should carry nginx's reason:\n{line}"
    );
    wait_for_groups("data through nginx", &["via-nginx"], 10, || {
        peer_payloads(&upstream)
    });
    stop_and_check_delivery(daemon, dir.path(), &["via-nginx"], || {
        peer_payloads(&upstream)
    });
    assert!(upstream.lines().contains(&"C /through-nginx".to_owned()));
    let report = counters(&peer_payloads(&upstream));
    assert_eq!(
        report.max("via-nginx-no-cert"),
        0,
        "nothing may pass without a certificate"
    );
    let nginx_log = std::fs::read_to_string(dir.path().join("nginx-error.log")).unwrap();
    assert!(
        nginx_log.contains("client sent no required SSL certificate"),
        "{nginx_log}"
    );
}

/// `tagwire sink --tls-cert --tls-key --client-ca`: an uplink with a client certificate
/// delivers; one without is refused by the sink, and the daemon's log says to set `cert`
/// and `key`.
#[test]
fn tagwire_sink_serves_wss_and_requires_client_certificates() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The sink's key as SEC1 (`openssl ec`), read by the same code as an uplink's key.
    let sink_key = dir.path().join("sink-key.pem");
    let status = Command::new("openssl")
        .args([
            "ec",
            "-in",
            certs::p(&pki.server.key),
            "-out",
            certs::p(&sink_key),
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let out = dir.path().join("sink.out");
    let sink_log = dir.path().join("sink.log");
    let mut sink = Proc {
        child: tagwire()
            .args(["sink", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&pki.server.cert)
            .arg("--tls-key")
            .arg(&sink_key)
            .arg("--client-ca")
            .arg(&pki.ca)
            .arg("--out")
            .arg(&out)
            .stderr(std::fs::File::create(&sink_log).unwrap())
            .spawn()
            .unwrap(),
        name: "tagwire sink".into(),
    };
    let mut url = String::new();
    wait_for("the sink's address", Duration::from_secs(10), || {
        let log = std::fs::read_to_string(&sink_log).unwrap_or_default();
        if let Some(u) = log.split_whitespace().find(|w| w.starts_with("wss://")) {
            url = u.to_owned();
        }
        !url.is_empty()
    });
    assert!(std::fs::read_to_string(&sink_log)
        .unwrap()
        .contains("(client certificates required)"));
    let uplinks = [
        Uplink::new("sink-with-cert", format!("{url}/sink")).client(
            pki,
            KeyVariant::Pkcs8Scrypt,
            [Form::Base64, Form::Pem, Form::Path],
        ),
        Uplink::new("sink-no-cert", format!("{url}/sink")).with("ca", certs::p(&pki.ca)),
    ];
    let mut daemon = start_daemon(dir.path(), &config(&uplinks));
    let line = wait_for_failure(dir.path(), "sink-no-cert");
    assert!(line.contains("requires a client certificate"), "{line}");
    assert!(line.contains("set `cert` and `key`"), "{line}");
    wait_for("50 confirmed messages", Duration::from_secs(30), || {
        metric(dir.path(), "send_msgs_total", "sink-with-cert") >= 50
    });
    let sent = metric(dir.path(), "send_msgs_total", "sink-with-cert");
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
    // SIGTERM makes the sink flush its output and exit.
    assert_eq!(sink.terminate(Duration::from_secs(10)), Some(0));
    let lines = read_lines(&out);
    let report = CounterReport::from_payloads(lines.iter().map(String::as_str));
    report.assert_no_gaps();
    assert!(report.max("sink-with-cert") >= sent, "{sent} confirmed");
    assert_eq!(report.max("sink-no-cert"), 0);
    let sink_log = std::fs::read_to_string(&sink_log).unwrap();
    assert!(sink_log.contains("TLS handshake failed"), "{sink_log}");
}

/// `tagwire sink`'s TLS options are read like an uplink's parameters and a problem stops
/// it at once with a message naming the option.
#[test]
fn tagwire_sink_tls_option_errors_name_the_option() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let not_pem = write(dir.path(), "not-pem.txt", "hello\n");
    let missing = dir.path().join("missing.pem");
    let server_cert = pki.server.cert.clone();
    let server_key = pki.server.key.clone();
    let encrypted = pki.key(KeyVariant::Pkcs8EncDefault).to_path_buf();
    let other_key = pki.key(KeyVariant::EcSec1Plain).to_path_buf();
    let cases: [(&PathBuf, &PathBuf, Option<&PathBuf>, String); 5] = [
        (
            &missing,
            &server_key,
            None,
            format!(
                "--tls-cert: file {} not found: check the path",
                missing.display()
            ),
        ),
        (
            &server_key,
            &server_key,
            None,
            format!(
                "--tls-cert: no certificate (-----BEGIN CERTIFICATE-----) in {} (it holds: \
                 PRIVATE KEY)",
                server_key.display()
            ),
        ),
        (
            &server_cert,
            &encrypted,
            None,
            format!(
                "--tls-key: {} is encrypted, and tagwire sink takes only an unencrypted key: \
                 write a decrypted copy with `openssl pkey -in {} -out server-plain.key`",
                encrypted.display(),
                encrypted.display()
            ),
        ),
        (
            &server_cert,
            &other_key,
            None,
            format!(
                "--tls-key: the private key in {} does not belong to the certificate in {} \
                 (their public keys differ)",
                other_key.display(),
                server_cert.display()
            ),
        ),
        (
            &server_cert,
            &server_key,
            Some(&not_pem),
            format!(
                "--client-ca: {} is not PEM (there is no -----BEGIN line)",
                not_pem.display()
            ),
        ),
    ];
    for (cert, key, client_ca, expected) in cases {
        let mut cmd = tagwire();
        cmd.args(["sink", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(cert)
            .arg("--tls-key")
            .arg(key);
        if let Some(ca) = client_ca {
            cmd.arg("--client-ca").arg(ca);
        }
        let output = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{expected}: {stderr}");
        assert!(
            stderr.contains(&format!("tagwire sink: {expected}")),
            "expected {expected:?} in:\n{stderr}"
        );
    }
}

/// A TLS problem in the configuration, as `tagwire check` and `tagwire run` report it.
struct CheckCase {
    what: &'static str,
    tls: Vec<(&'static str, String)>,
    /// The whole problem line.
    expected: String,
}

/// `tagwire check` names each TLS problem with its key path and what to do, and
/// `tagwire run` refuses to start with the same line; neither ever shows a password.
#[test]
fn tls_configuration_errors_are_found_by_check_and_at_start_up() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("missing-ca.pem");
    let not_pem = write(d, "not-pem.txt", "this is not a certificate\n");
    let ec_cert = certs::p(pki.cert_for(KeyVariant::Pkcs8Plain)).to_owned();
    let rsa_cert = certs::p(pki.cert_for(KeyVariant::RsaPkcs1Plain)).to_owned();
    let plain = certs::p(pki.key(KeyVariant::Pkcs8Plain)).to_owned();
    let enc = certs::p(pki.key(KeyVariant::Pkcs8EncDefault)).to_owned();
    let legacy = certs::p(pki.key(KeyVariant::RsaLegacyDes3)).to_owned();
    let pbes1 = certs::p(pki.key(KeyVariant::Pbes1Md5Des)).to_owned();
    let pkcs12 = certs::p(pki.key(KeyVariant::Pkcs12Sha13Des)).to_owned();
    let ca = certs::p(&pki.ca).to_owned();
    let wrong = "WRONG-secret-Pass-42";
    let client = |cert: &str, key: &str| {
        vec![
            ("ca", ca.clone()),
            ("cert", cert.to_owned()),
            ("key", key.to_owned()),
        ]
    };
    let with = |mut v: Vec<(&'static str, String)>, k: &'static str, val: &str| {
        v.push((k, val.to_owned()));
        v
    };
    let cases = vec![
        CheckCase {
            what: "ca file not found",
            tls: vec![("ca", missing.display().to_string())],
            expected: format!(
                "north[0].ca: file {} not found: check the path, or paste the PEM text or its \
                 base64",
                missing.display()
            ),
        },
        CheckCase {
            what: "ca not PEM",
            tls: vec![("ca", not_pem.display().to_string())],
            expected: format!(
                "north[0].ca: {} is not PEM (there is no -----BEGIN line): give a PEM file, the \
                 PEM text, or its base64",
                not_pem.display()
            ),
        },
        CheckCase {
            what: "cert file without a certificate",
            tls: client(&plain, &plain),
            expected: format!(
                "north[0].cert: no certificate (-----BEGIN CERTIFICATE-----) in {plain} (it \
                 holds: PRIVATE KEY); `cert` must be the certificate, `key` the private key"
            ),
        },
        CheckCase {
            what: "encrypted key without keypass",
            tls: client(&ec_cert, &enc),
            expected: format!(
                "north[0].key: the encrypted PKCS#8 key in {enc} needs a password, but `keypass` \
                 is not set: set keypass to the password, to file:/path/of/a/password/file or \
                 to env:VARIABLE"
            ),
        },
        CheckCase {
            what: "wrong password (PKCS#8)",
            tls: with(client(&ec_cert, &enc), "keypass", wrong),
            expected: format!("north[0].key: wrong password for the encrypted PKCS#8 key in {enc}"),
        },
        CheckCase {
            what: "wrong password (legacy PEM)",
            tls: with(client(&rsa_cert, &legacy), "keypass", wrong),
            expected: format!(
                "north[0].key: wrong password for the encrypted RSA key (OpenSSL legacy PEM, \
                 DES-EDE3-CBC) in {legacy}"
            ),
        },
        CheckCase {
            what: "keypass from an unset environment variable",
            tls: with(client(&ec_cert, &enc), "keypass", "env:TAGWIRE_E2E_UNSET_VARIABLE"),
            expected: "north[0].keypass: environment variable TAGWIRE_E2E_UNSET_VARIABLE is \
                       not set"
                .to_owned(),
        },
        CheckCase {
            what: "key not matching the certificate",
            tls: client(&rsa_cert, &plain),
            expected: format!(
                "north[0].key: the private key in {plain} does not belong to the certificate in \
                 {rsa_cert} (their public keys differ): give the key the certificate was issued \
                 for"
            ),
        },
        CheckCase {
            what: "PBES1 key",
            tls: with(client(&ec_cert, &pbes1), "keypass", PASSWORD),
            expected: format!(
                "north[0].key: the encrypted PKCS#8 key in {pbes1} uses pbeWithMD5AndDES-CBC \
                 (1.2.840.113549.1.5.3) (PKCS#5 v1.5, PBES1), which tagwire does not decrypt: convert it to PBES2 with \
                 `openssl pkcs8 -provider legacy -provider default -topk8 -v2 aes-256-cbc -in \
                 {pbes1} -out key-v2.pem` and use the new file"
            ),
        },
        CheckCase {
            what: "PKCS#12 PBE key",
            tls: with(client(&ec_cert, &pkcs12), "keypass", PASSWORD),
            expected: format!(
                "north[0].key: the encrypted PKCS#8 key in {pkcs12} uses \
                 pbeWithSHA1And3-KeyTripleDES-CBC (1.2.840.113549.1.12.1.3) (PKCS#12 PBE), which tagwire does not \
                 decrypt: convert it to PBES2 with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in \
                 {pkcs12} -out key-v2.pem` and use the new file"
            ),
        },
    ];
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let mut uplink = Uplink::new("tls", "wss://localhost:9/".to_owned());
        uplink.tls = case.tls.clone();
        let path = write(d, &format!("case-{i}.toml"), &config(&[uplink]));
        let check = tagwire()
            .arg("check")
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let check_out = String::from_utf8_lossy(&check.stdout).into_owned();
        let run = tagwire()
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env("TAGWIRE_LOG", "debug")
            .output()
            .unwrap();
        let run_err = String::from_utf8_lossy(&run.stderr).into_owned();
        if check.status.code() != Some(1) || check_out.trim_end() != case.expected {
            failures.push(format!(
                "{}: check said (exit {:?}):\n{check_out}expected:\n{}",
                case.what,
                check.status.code(),
                case.expected
            ));
        }
        if run.status.code() != Some(1)
            || !run_err
                .lines()
                .any(|l| l.trim_start() == case.expected.as_str())
        {
            failures.push(format!(
                "{}: run said (exit {:?}):\n{run_err}",
                case.what,
                run.status.code()
            ));
        }
        for secret in [PASSWORD, wrong] {
            assert!(
                !check_out.contains(secret),
                "{}: password in {check_out}",
                case.what
            );
            assert!(
                !run_err.contains(secret),
                "{}: password in {run_err}",
                case.what
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A daemon started with a wrong password stops at start-up with a message naming `key`,
/// and its log holds no password: not the wrong one, not the right one.
#[test]
fn a_wrong_password_stops_the_daemon_and_never_reaches_its_log() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wrong = "Wr0ng-but-S3cret-pass";
    let uplinks = [
        Uplink::new("wrong-pass", "wss://localhost:9/".to_owned())
            .with("ca", certs::p(&pki.ca))
            .with("cert", certs::p(pki.cert_for(KeyVariant::EcLegacyAes256)))
            .with("key", Form::Pem.value(pki.key(KeyVariant::EcLegacyAes256)))
            .with("keypass", wrong),
        // A right password in the same file, from the environment: not shown either.
        Uplink::new("right-pass", "wss://localhost:9/".to_owned())
            .with("ca", certs::p(&pki.ca))
            .with("cert", certs::p(pki.cert_for(KeyVariant::Pkcs8Scrypt)))
            .with("key", certs::p(pki.key(KeyVariant::Pkcs8Scrypt)))
            .with("keypass", "env:TAGWIRE_E2E_KEYPASS"),
    ];
    let mut daemon = start_daemon_debug(
        dir.path(),
        &config(&uplinks),
        &[("TAGWIRE_E2E_KEYPASS", PASSWORD)],
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the daemon did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let log = daemon_log(dir.path());
    assert!(
        log.contains(
            "north[0].key: wrong password for the encrypted EC key (OpenSSL legacy PEM, \
             AES-256-CBC) in the PEM text given inline"
        ),
        "{log}"
    );
    assert_eq!(
        log.matches("north[").count(),
        1,
        "only the wrong one: {log}"
    );
    for secret in [wrong, PASSWORD] {
        assert!(!log.contains(secret), "a password is in the log:\n{log}");
    }
}

/// Writes `content` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

// ---------------------------------------------------------------------------------------
// The certificates users really have (issue 8): the openssl recipes of how-tos and IT
// departments, against OpenSSL-based peers (Python `ssl` with CERT_REQUIRED, nginx with
// `ssl_verify_client on`).

/// A Python `websockets` server with `server` as its certificate, requiring client
/// certificates that chain to `client_ca`.
fn python_wss_trusting(
    dir: &Path,
    server: &certs::Identity,
    client_ca: &Path,
    name: &str,
    port: Option<u16>,
) -> Option<Peer> {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    let port = port.map(|p| p.to_string());
    let mut args = vec![
        "--tls-cert",
        certs::p(&server.cert),
        "--tls-key",
        certs::p(&server.key),
        "--client-ca",
        certs::p(client_ca),
    ];
    if let Some(port) = &port {
        args.extend_from_slice(&["--port", port]);
    }
    Peer::python(&sub, &args)
}

/// nginx terminating TLS with `server`'s certificate and `ssl_verify_client on` against
/// `client_ca`, in front of the plain WebSocket server on `upstream`. Returns the process
/// and its port.
fn start_nginx(
    dir: &Path,
    server: &certs::Identity,
    client_ca: &Path,
    upstream: u16,
) -> Option<(Proc, u16)> {
    let nginx = peer_env("TAGWIRE_NGINX")?;
    let port = free_port();
    let conf = std::fs::read_to_string(peers_dir().join("nginx-mtls.conf.in"))
        .unwrap()
        .replace("@DIR@", certs::p(dir))
        .replace("@PORT@", &port.to_string())
        .replace("@UPSTREAM@", &upstream.to_string())
        .replace("@CERT@", certs::p(&server.cert))
        .replace("@KEY@", certs::p(&server.key))
        .replace("@CA@", certs::p(client_ca));
    std::fs::create_dir_all(dir.join("nginx-tmp")).unwrap();
    let conf_path = write(dir, "nginx.conf", &conf);
    let proc = Proc {
        child: Command::new(&nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nginx"),
        name: "nginx".into(),
    };
    wait_for("nginx to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    Some((proc, port))
}

/// The client certificate CNs a Python peer verified on connections to `path`, in order.
fn presented(lines: &[String], path: &str) -> Vec<String> {
    let prefix = format!("P {path} ");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

/// Every recipe that must be accepted delivers its group completely, and the server saw the
/// certificate it was given: v1 client certificates (`x509 -req` without `-extfile`), v3
/// ones with `-extfile`, a self-signed `req -x509` one the server trusts directly, one
/// issued by an intermediate CA, PKCS#12 bundles of current and `-legacy` OpenSSL; and, on
/// the server side, a v1 certificate issued by `ca` and a v3 one named only by its CN.
#[test]
fn certificates_from_the_usual_openssl_recipes_deliver_to_python_and_nginx() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = Recipes::new(pki, &d.join("recipes"));
    let v1 = r.x509_req("v1-client", "/CN=gw-v1", None, false);
    assert_eq!(
        r.version(&v1.cert),
        "Version: 1 (0x0)",
        "the recipe makes v1"
    );
    let ext = r.x509_req("ext-client", "/CN=gw-ext", Some(CLIENT_EXT), false);
    assert_eq!(r.version(&ext.cert), "Version: 3 (0x2)");
    let self_signed = r.self_signed("self-client", "/CN=gw-self");
    let inter = r.via_intermediate("inter-client", "/CN=gw-inter");
    let bundled = r.x509_req("p12-client", "/CN=gw-p12", None, false);
    let p12 = r.pkcs12(&bundled, PASSWORD, false);
    let p12_legacy = r.pkcs12(&bundled, PASSWORD, true);
    let v1_server = r.x509_req("v1-server", "/CN=localhost", None, false);
    assert_eq!(r.version(&v1_server.cert), "Version: 1 (0x0)");
    let cn_server = r.x509_req("cn-server", "/CN=localhost", Some(SERVER_EXT_NO_SAN), false);

    // The server trusts the test CA and, directly, the self-signed client certificate.
    let client_cas = write(
        d,
        "client-cas.pem",
        &(std::fs::read_to_string(&pki.ca).unwrap()
            + &std::fs::read_to_string(&self_signed.cert).unwrap()),
    );
    let Some(main) = python_wss_trusting(d, &pki.server, &client_cas, "main", None) else {
        return;
    };
    let v1_peer = python_wss_trusting(d, &v1_server, &pki.ca, "v1-server", None).unwrap();
    let cn_peer = python_wss_trusting(d, &cn_server, &pki.ca, "cn-server", None).unwrap();
    std::fs::create_dir_all(d.join("upstream")).unwrap();
    let upstream = Peer::python(&d.join("upstream"), &[]).unwrap();
    let nginx_dir = d.join("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let Some((_nginx, nginx_port)) =
        start_nginx(&nginx_dir, &v1_server, &client_cas, upstream.port)
    else {
        return;
    };

    let ca = certs::p(&pki.ca).to_owned();
    let at = |peer: &Peer, path: &str| format!("wss://localhost:{}/{path}", peer.port);
    let pem_pair = |name: &'static str, url: String, id: &certs::Identity| {
        Uplink::new(name, url)
            .with("ca", ca.clone())
            .with("cert", certs::p(&id.cert))
            .with("key", certs::p(&id.key))
    };
    let bundle = |name: &'static str, url: String, value: String| {
        Uplink::new(name, url)
            .with("ca", ca.clone())
            .with("cert", value)
            .with("keypass", PASSWORD)
    };
    let nginx_url = format!("wss://localhost:{nginx_port}/nginx");
    let uplinks = [
        pem_pair("v1-client", at(&main, "v1-client"), &v1),
        pem_pair("ext-client", at(&main, "ext-client"), &ext),
        pem_pair("self-signed", at(&main, "self-signed"), &self_signed),
        pem_pair("intermediate", at(&main, "intermediate"), &inter),
        bundle("p12", at(&main, "p12"), certs::p(&p12).to_owned()),
        bundle(
            "p12-legacy",
            at(&main, "p12-legacy"),
            certs::base64(&std::fs::read(&p12_legacy).unwrap()),
        ),
        pem_pair(
            "v1-server",
            at(&v1_peer, "v1-server"),
            pki.client(certs::KeyAlg::EcP256),
        ),
        pem_pair(
            "cn-only-server",
            at(&cn_peer, "cn-only-server"),
            pki.client(certs::KeyAlg::EcP256),
        ),
        pem_pair("nginx-v1", nginx_url.clone(), &v1),
        pem_pair("nginx-ext", nginx_url.clone(), &ext),
        pem_pair("nginx-self-signed", nginx_url.clone(), &self_signed),
        pem_pair("nginx-intermediate", nginx_url.clone(), &inter),
        bundle("nginx-p12", nginx_url.clone(), certs::p(&p12).to_owned()),
        bundle(
            "nginx-p12-legacy",
            nginx_url,
            certs::p(&p12_legacy).to_owned(),
        ),
    ];
    let names: Vec<&str> = uplinks.iter().map(|u| u.name).collect();
    let payloads = || {
        [&main, &v1_peer, &cn_peer, &upstream]
            .iter()
            .flat_map(|peer| peer_payloads(peer))
            .collect::<Vec<_>>()
    };
    let daemon = start_daemon(d, &config(&uplinks));
    wait_for_groups("every recipe delivering", &names, 10, payloads);
    stop_and_check_delivery(daemon, d, &names, payloads);

    // The servers verified what they were given.
    let lines = main.lines();
    for (path, cn) in [
        ("/v1-client", "gw-v1"),
        ("/ext-client", "gw-ext"),
        ("/self-signed", "gw-self"),
        ("/intermediate", "gw-inter"),
        ("/p12", "gw-p12"),
        ("/p12-legacy", "gw-p12"),
    ] {
        let seen = presented(&lines, path);
        assert!(
            !seen.is_empty() && seen.iter().all(|c| c == cn),
            "{path}: {seen:?}"
        );
    }
    assert_eq!(
        presented(&v1_peer.lines(), "/v1-server")[0],
        "client EcP256"
    );
    let nginx_log = std::fs::read_to_string(nginx_dir.join("nginx-error.log")).unwrap();
    assert!(
        !nginx_log.contains("client SSL certificate verify error"),
        "{nginx_log}"
    );

    // The fallbacks are logged once per uplink, and only for their uplinks.
    let log = daemon_log(d);
    let warnings = |what: &str| {
        log.lines()
            .filter(|l| l.contains("WARN") && l.contains(what))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let cn = warnings("has no subjectAltName");
    assert_eq!(cn.len(), 1, "{cn:#?}");
    assert!(cn[0].contains("uplink=cn-only-server"), "{}", cn[0]);
    let v1_warnings = warnings("is X.509 v1 (no extensions); it was accepted");
    assert_eq!(
        v1_warnings.len(),
        7,
        "v1-server and the six uplinks through nginx: {v1_warnings:#?}"
    );
    for name in names
        .iter()
        .filter(|n| **n == "v1-server" || n.starts_with("nginx-"))
    {
        let field = format!("uplink={name} ");
        assert!(
            v1_warnings.iter().any(|w| w.contains(&field)),
            "{name}: {v1_warnings:#?}"
        );
    }
    assert!(!log.contains("Other("), "{log}");
    assert!(!log.contains(PASSWORD), "a password is in the log");
}

/// Server certificates that must be refused are, with the cause named, and nothing is
/// sent: another CA's v1 certificate, an expired v1 one, a v1 one with a damaged
/// signature, a v1 one for another name, and a v3 one whose SAN does not match although
/// its CN does.
#[test]
fn server_certificates_that_must_be_refused_name_the_cause() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = Recipes::new(pki, &d.join("recipes"));
    let v1 = r.x509_req("v1-server", "/CN=localhost", None, false);
    let foreign = r.x509_req("foreign-v1", "/CN=localhost", None, true);
    let expired = r.v1_dated(
        "expired-v1",
        "/CN=localhost",
        "20200101000000Z",
        "20210101000000Z",
    );
    assert_eq!(r.version(&expired.cert), "Version: 1 (0x0)");
    let damaged = r.bad_signature(&v1);
    let san_elsewhere = r.x509_req(
        "san-elsewhere",
        "/CN=localhost",
        Some(&format!(
            "{SERVER_EXT_NO_SAN}subjectAltName=DNS:plant.example\n"
        )),
        false,
    );
    let servers = [
        ("foreign-v1", &foreign, None, "is X.509 v1 (no extensions) and its issuer \"CN=some other CA\" is not a certificate in `ca`"),
        ("expired-v1", &expired, None, "the server certificate expired at 2021-01-01 00:00:00 UTC"),
        ("damaged-v1", &damaged, None, "a signature in the server's certificate chain does not verify"),
        ("wrong-name-v1", &v1, Some("plant.example"), "not valid for the name plant.example (it is valid for CN=localhost)"),
        ("san-elsewhere", &san_elsewhere, None, "not valid for the name localhost (it is valid for plant.example)"),
    ];
    let mut peers = Vec::new();
    let mut uplinks = Vec::new();
    for (name, server, server_name, _) in &servers {
        let Some(peer) = python_wss_trusting(d, server, &pki.ca, name, None) else {
            return;
        };
        let mut uplink = Uplink::new(name, format!("wss://localhost:{}/{name}", peer.port)).client(
            pki,
            KeyVariant::Pkcs8Plain,
            [Form::Path; 3],
        );
        if let Some(sn) = server_name {
            uplink = uplink.with("server_name", *sn);
        }
        uplinks.push(uplink);
        peers.push(peer);
    }
    let mut daemon = start_daemon(d, &config(&uplinks));
    for (name, _, _, cause) in &servers {
        let line = wait_for_failure(d, name);
        assert!(
            line.contains(cause),
            "{name}: expected {cause:?} in\n{line}"
        );
        assert!(!line.contains("Other("), "{line}");
    }
    // Nothing reached a server: TLS failed before any HTTP request.
    for ((name, ..), peer) in servers.iter().zip(&peers) {
        assert_eq!(metric(d, "send_msgs_total", name), 0, "{name}");
        assert!(peer.lines().is_empty(), "{name}: {:?}", peer.lines());
    }
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
}

/// Renewal: the certificate and key files are replaced while tagwire runs. Without
/// `tls_watch_s` the new pair is presented at the next connection (the server is
/// restarted to cause one); with `tls_watch_s = 1` tagwire reconnects by itself. A broken
/// renewal keeps the last good pair. The server's side says what was presented, and no
/// counter is missing through all of it.
#[test]
fn renewed_certificates_are_presented_at_the_next_connection() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = Recipes::new(pki, &d.join("recipes"));
    let first = r.x509_req("first", "/CN=gw-first", Some(CLIENT_EXT), false);
    let second = r.x509_req("second", "/CN=gw-second", None, false);
    let live = |stem: &str| {
        (
            d.join(format!("{stem}-cert.pem")),
            d.join(format!("{stem}-key.pem")),
        )
    };
    let install = |stem: &str, id: &certs::Identity| {
        let (cert, key) = live(stem);
        std::fs::copy(&id.cert, cert).unwrap();
        std::fs::copy(&id.key, key).unwrap();
    };
    install("renewed", &first);
    install("watched", &first);

    let port = free_port();
    let start_server = || python_wss_trusting(d, &pki.server, &pki.ca, "server", Some(port));
    let Some(mut server) = start_server() else {
        return;
    };
    let out = server.out.clone();
    let lines = || read_lines(&out);
    let url = |path: &str| format!("wss://localhost:{port}/{path}");
    let files = |name: &'static str, stem: &str| {
        let (cert, key) = live(stem);
        Uplink::new(name, url(name))
            .with("ca", certs::p(&pki.ca))
            .with("cert", certs::p(&cert))
            .with("key", certs::p(&key))
    };
    let uplinks = [
        files("renewed", "renewed"),
        files("watched", "watched").with("tls_watch_s", "1"),
    ];
    // `tls_watch_s` is an integer: written without quotes.
    let conf = config(&uplinks).replace("tls_watch_s = \"1\"", "tls_watch_s = 1");
    let daemon = start_daemon(d, &conf);
    let payloads = || {
        lines()
            .into_iter()
            .filter_map(|l| l.strip_prefix("B ").map(str::to_owned))
            .collect::<Vec<_>>()
    };
    wait_for_groups("first certificates", &["renewed", "watched"], 5, payloads);
    assert_eq!(presented(&lines(), "/renewed"), ["gw-first"]);
    assert_eq!(presented(&lines(), "/watched"), ["gw-first"]);

    // Renewal. The watched uplink reconnects by itself; the other keeps its connection.
    install("watched", &second);
    install("renewed", &second);
    wait_for(
        "the watched uplink to present the new certificate",
        Duration::from_secs(15),
        || presented(&lines(), "/watched").last().map(String::as_str) == Some("gw-second"),
    );
    assert_eq!(
        presented(&lines(), "/renewed"),
        ["gw-first"],
        "no reconnect without tls_watch_s"
    );

    // A server restart: the next connection presents the renewed certificate.
    server.proc.terminate(Duration::from_secs(10));
    server = start_server().unwrap();
    wait_for(
        "the renewed certificate after the restart",
        Duration::from_secs(15),
        || presented(&lines(), "/renewed").last().map(String::as_str) == Some("gw-second"),
    );
    let log = daemon_log(d);
    let renewed_line = log
        .lines()
        .find(|l| l.contains("uplink=renewed") && l.contains("client certificate renewed"))
        .unwrap_or_else(|| panic!("no renewal line in\n{log}"));
    assert!(
        renewed_line.contains(
            "now presenting \"CN=gw-second\" issued by \"CN=tagwire e2e test CA\", expires in 365 days ("
        ),
        "{renewed_line}"
    );

    // A broken renewal (a certificate cut short) keeps the last good pair.
    let (cert, _) = live("renewed");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    server.proc.terminate(Duration::from_secs(10));
    server = start_server().unwrap();
    wait_for(
        "a reconnect with the last good certificate",
        Duration::from_secs(15),
        || presented(&lines(), "/renewed").len() >= 3,
    );
    assert_eq!(presented(&lines(), "/renewed").last().unwrap(), "gw-second");
    let log = daemon_log(d);
    assert!(
        log.lines().any(|l| l.contains("uplink=renewed")
            && l.contains("the changed TLS files cannot be used, so the previous certificate and key stay in use: cert:")),
        "{log}"
    );
    // Both uplinks deliver again after the last restart (a stop while one is still
    // reconnecting could not drain its queue).
    let report = counters(&payloads());
    for name in ["renewed", "watched"] {
        let n = report.max(name) + 10;
        wait_for_groups("data after the restarts", &[name], n, payloads);
    }
    stop_and_check_delivery(daemon, d, &["renewed", "watched"], payloads);
    drop(server);
}

/// `tagwire check` prints each uplink's client certificate (subject, issuer, expiry) and
/// warns when it expires within 30 days or has expired; `run` logs the same at start.
#[test]
fn check_reports_client_certificates_and_their_expiry() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r = Recipes::new(pki, &d.join("recipes"));
    let fresh = r.x509_req("fresh", "/CN=gw-fresh", Some(CLIENT_EXT), false);
    let soon = r.x509_req_days("soon", "/CN=gw-soon", None, false, "10");
    let old = r.v1_dated("old", "/CN=gw-old", "20200101000000Z", "20210101000000Z");
    let pair = |name: &'static str, id: &certs::Identity| {
        Uplink::new(name, "wss://localhost:1/".into())
            .with("ca", certs::p(&pki.ca))
            .with("cert", certs::p(&id.cert))
            .with("key", certs::p(&id.key))
    };
    let uplinks = [
        pair("fresh", &fresh),
        pair("soon", &soon),
        pair("old", &old),
    ];
    let path = write(d, "check.toml", &config(&uplinks));
    let check = tagwire()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert_eq!(check.status.code(), Some(0), "{out}");
    let lines: Vec<&str> = out.lines().skip(1).collect();
    let issuer = "issued by \"CN=tagwire e2e test CA\"";
    assert_eq!(lines.len(), 5, "{out}");
    assert!(
        lines[0].starts_with(&format!(
            "north \"fresh\": client certificate \"CN=gw-fresh\" {issuer}, expires in 365 days ("
        )),
        "{out}"
    );
    assert!(!lines[0].contains("v1"), "{out}");
    assert!(
        lines[1].starts_with(&format!(
            "north \"soon\": client certificate \"CN=gw-soon\" {issuer}, expires in 10 days ("
        )),
        "{out}"
    );
    assert!(
        lines[1].ends_with("(X.509 v1: sent as is; the server decides)"),
        "{out}"
    );
    assert!(
        lines[2].starts_with(
            "north \"soon\": warning: the client certificate \"CN=gw-soon\" expires in 10 days ("
        ),
        "{out}"
    );
    assert!(
        lines[3].starts_with(&format!(
            "north \"old\": client certificate \"CN=gw-old\" {issuer}, EXPIRED "
        )),
        "{out}"
    );
    assert_eq!(
        lines[4],
        "north \"old\": warning: the client certificate \"CN=gw-old\" expired on 2021-01-01 00:00:00 UTC: the server will probably refuse it; renew it",
        "{out}"
    );

    // A PKCS#12 bundle with the wrong password is named by `check`, which then reports no
    // certificate.
    let bundle = r.pkcs12(&fresh, PASSWORD, false);
    let wrong = [Uplink::new("p12", "wss://localhost:1/".into())
        .with("ca", certs::p(&pki.ca))
        .with("cert", certs::p(&bundle))
        .with("keypass", "not-the-password")];
    let wrong_path = write(d, "wrong.toml", &config(&wrong));
    let check = tagwire()
        .args(["check", "--config"])
        .arg(&wrong_path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout).into_owned();
    assert_eq!(check.status.code(), Some(1), "{out}");
    assert_eq!(
        out.trim_end(),
        format!(
            "north[0].keypass: wrong password for the PKCS#12 bundle {}",
            bundle.display()
        )
    );
    assert!(!out.contains("not-the-password"), "{out}");

    // The same warnings in the start-up log.
    let mut daemon = start_daemon(d, &config(&uplinks));
    wait_for(
        "the start-up certificate lines",
        Duration::from_secs(10),
        || daemon_log(d).contains("north \"old\": warning:"),
    );
    let log = daemon_log(d);
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("\"CN=gw-soon\" expires in 10 days")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("\"CN=gw-old\" expired on 2021-01-01")),
        "{log}"
    );
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
}
