//! Reaching servers that are not a bare `ws://host:port/`: `headers`, `auth`,
//! `subprotocols` and credentials in the URL checked by Python `websockets`; an IPv6
//! literal URL; HTTP CONNECT through tinyproxy and SOCKS5 through microsocks, over
//! `ws://` and `wss://` with a client certificate, and their refusals named in the log.

mod support;

use std::path::Path;
use std::time::Duration;

use support::certs::{self, KeyVariant, Pki};
use support::proxies::{microsocks, tinyproxy};
use support::*;

/// One `[[north]]` of a test configuration: its own simulated group, a report every
/// 40 ms, and `extra` TOML lines.
struct North {
    name: &'static str,
    url: String,
    extra: String,
}

fn north(name: &'static str, url: String, extra: &str) -> North {
    North {
        name,
        url,
        extra: extra.to_owned(),
    }
}

fn config(uplinks: &[North]) -> String {
    let mut c = String::from("[[south]]\nname = \"sim\"\nkind = \"simulator\"\n");
    for u in uplinks {
        c += &format!(
            "[[south.groups]]\nname = \"{}\"\ninterval_ms = 40\ntags = 2\n",
            u.name
        );
    }
    for u in uplinks {
        c += &format!(
            "\n[[north]]\nname = \"{name}\"\nurl = {url}\nbackoff_min_ms = 50\n\
             backoff_max_ms = 500\nsubscriptions = [{{ node = \"sim\", group = \"{name}\" }}]\n{extra}\n",
            name = u.name,
            url = certs::toml_str(&u.url),
            extra = u.extra
        );
    }
    c
}

/// Every line of every module, so that a secret in any log line would show.
fn start_debug(dir: &Path, config: &str, env: &[(&str, &str)]) -> Proc {
    let mut env = env.to_vec();
    env.push(("TAGWIRE_LOG", "debug"));
    start_daemon_with_env(dir, config, &env)
}

fn payloads(peer: &Peer) -> Vec<String> {
    peer.messages().into_iter().map(|(_, p)| p).collect()
}

/// Waits until group `name` has reached counter `n` at `peer`.
fn wait_for_counter(peer: &Peer, name: &str, n: u64) {
    wait_for(
        &format!("{n} messages of {name}"),
        Duration::from_secs(30),
        || CounterReport::from_payloads(payloads(peer).iter().map(String::as_str)).max(name) >= n,
    );
}

/// The daemon's "connected" log line of `uplink`.
fn connected_line(dir: &Path, uplink: &str) -> String {
    let field = format!("uplink={uplink} ");
    daemon_log(dir)
        .lines()
        .find(|l| l.contains(&field) && l.contains(" connected"))
        .unwrap_or_else(|| panic!("no `connected` line for {uplink}:\n{}", daemon_log(dir)))
        .to_owned()
}

/// Waits for `uplink`'s "cannot deliver" line in the log and returns it.
fn failure_line(dir: &Path, uplink: &str) -> String {
    let field = format!("uplink={uplink} ");
    let find = || {
        daemon_log(dir)
            .lines()
            .find(|l| l.contains("cannot deliver") && l.contains(&field))
            .map(str::to_owned)
    };
    wait_for(
        &format!("{uplink}'s failure in the log"),
        Duration::from_secs(20),
        || find().is_some(),
    );
    find().unwrap()
}

/// Stops the daemon and checks that each group arrived without a gap.
fn stop_and_check(mut daemon: Proc, peer: &Peer) {
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
    CounterReport::from_payloads(payloads(peer).iter().map(String::as_str)).assert_no_gaps();
}

const TOKEN: &str = "t0ken-9f2c";

#[test]
fn python_checks_the_authorization_header_and_the_subprotocol() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::create_dir_all(&bad).unwrap();
    let auth = format!("Bearer {TOKEN}");
    let Some(peer) = Peer::python(
        &good,
        &["--expect-auth", &auth, "--subprotocols", "neuron.v1"],
    ) else {
        return;
    };
    let refusing = Peer::python(&bad, &["--expect-auth", &auth]).unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "wr0ng-token\n").unwrap();
    let uplinks = [
        north(
            "bearer",
            format!("ws://127.0.0.1:{}/in", peer.port),
            "auth = { bearer = \"env:TAGWIRE_TEST_TOKEN\" }\n\
             subprotocols = [\"neuron.v2\", \"neuron.v1\"]\n\
             headers = { \"X-Site\" = \"7\" }",
        ),
        north(
            "wrong",
            format!("ws://127.0.0.1:{}/in", refusing.port),
            &format!(
                "headers = {{ Authorization = \"file:{}\" }}",
                token_file.display()
            ),
        ),
    ];
    let daemon = start_debug(
        dir.path(),
        &config(&uplinks),
        &[("TAGWIRE_TEST_TOKEN", TOKEN)],
    );
    wait_for_counter(&peer, "bearer", 30);
    let lines = peer.lines();
    assert_eq!(lines[0], "C /in");
    assert_eq!(lines[1], "S neuron.v1", "the server's choice: {lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("R ")), "{lines:?}");
    let nodes: serde_json::Value =
        serde_json::from_str(&api_get(dir.path(), "/api/v1/nodes")).unwrap();
    let node = |name: &str| {
        nodes["north"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(node("bearer")["subprotocol"], "neuron.v1", "{nodes}");
    assert!(node("wrong")["subprotocol"].is_null(), "{nodes}");
    assert!(connected_line(dir.path(), "bearer").contains("subprotocol=neuron.v1"));

    let failure = failure_line(dir.path(), "wrong");
    assert!(failure.contains("HTTP 401"), "{failure}");
    assert!(failure.contains("Authorization"), "{failure}");
    assert!(refusing.lines().iter().any(|l| l == "R 401"));
    assert!(refusing.messages().is_empty());

    stop_and_check(daemon, &peer);
    let log = daemon_log(dir.path());
    for secret in [TOKEN, "wr0ng-token"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[test]
fn credentials_in_the_url_become_basic_auth_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    // "ops:p@ss" in base64.
    let Some(peer) = Peer::python(dir.path(), &["--expect-auth", "Basic b3BzOnBAc3M="]) else {
        return;
    };
    let uplinks = [north(
        "userinfo",
        format!("ws://ops:p%40ss@127.0.0.1:{}/in", peer.port),
        "",
    )];
    let daemon = start_debug(dir.path(), &config(&uplinks), &[]);
    wait_for_counter(&peer, "userinfo", 20);
    stop_and_check(daemon, &peer);
    let log = daemon_log(dir.path());
    assert!(
        log.contains("north[0].url: the URL contains user:password@, sent as Basic authentication"),
        "{log}"
    );
    assert!(!log.contains("p@ss") && !log.contains("p%40ss"), "{log}");
}

#[test]
fn an_ipv6_literal_url_connects() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &["--host", "::1"]) else {
        return;
    };
    let uplinks = [north("v6", format!("ws://[::1]:{}/six", peer.port), "")];
    let daemon = start_daemon(dir.path(), &config(&uplinks));
    wait_for_counter(&peer, "v6", 20);
    assert!(
        connected_line(dir.path(), "v6").contains(&format!("peer=[::1]:{}", peer.port)),
        "the log names the address that connected"
    );
    stop_and_check(daemon, &peer);
}

const PROXY_PASSWORD: &str = "pr0xy-pw";

/// A Python `websockets` server requiring a client certificate of the test CA.
fn python_wss(dir: &Path, pki: &Pki, name: &str) -> Option<Peer> {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    Peer::python(
        &sub,
        &[
            "--tls-cert",
            certs::p(&pki.server.cert),
            "--tls-key",
            certs::p(&pki.server.key),
            "--client-ca",
            certs::p(&pki.ca),
        ],
    )
}

/// The TLS keys of an uplink with the test CA and a client certificate.
fn client_tls(pki: &Pki) -> String {
    format!(
        "ca = {}\ncert = {}\nkey = {}\n",
        certs::toml_str(certs::p(&pki.ca)),
        certs::toml_str(certs::p(pki.cert_for(KeyVariant::Pkcs8Plain))),
        certs::toml_str(certs::p(pki.key(KeyVariant::Pkcs8Plain))),
    )
}

#[test]
fn tinyproxy_and_microsocks_tunnel_ws_and_wss_with_and_without_proxy_auth() {
    let Some(pki) = Pki::shared() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plain_dir = dir.path().join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let Some(plain) = Peer::python(&plain_dir, &[]) else {
        return;
    };
    let Some(secure) = python_wss(dir.path(), pki, "secure") else {
        return;
    };
    let Some(http_open) = tinyproxy(dir.path(), None, &[]) else {
        return;
    };
    let http_auth = tinyproxy(dir.path(), Some(("gw", PROXY_PASSWORD)), &[]).unwrap();
    let Some(socks_open) = microsocks(None) else {
        return;
    };
    let socks_auth = microsocks(Some(("gw", PROXY_PASSWORD))).unwrap();

    let ws = |path: &str| format!("ws://127.0.0.1:{}/{path}", plain.port);
    let wss = |path: &str| format!("wss://localhost:{}/{path}", secure.port);
    let tls = client_tls(pki);
    let http = format!("proxy = \"http://127.0.0.1:{}\"", http_open.port);
    let http_with_auth = format!(
        "proxy = \"http://gw:{PROXY_PASSWORD}@127.0.0.1:{}\"",
        http_auth.port
    );
    let socks = format!("proxy = \"socks5://127.0.0.1:{}\"", socks_open.port);
    let socks_with_auth = format!(
        "proxy = \"socks5h://gw:{PROXY_PASSWORD}@127.0.0.1:{}\"",
        socks_auth.port
    );
    let uplinks = [
        north("http-ws", ws("http-ws"), &http),
        north(
            "http-auth-wss",
            wss("http-auth-wss"),
            &format!("{http_with_auth}\n{tls}"),
        ),
        north("socks-wss", wss("socks-wss"), &format!("{socks}\n{tls}")),
        // socks5h: the proxy resolves `localhost`.
        north(
            "socks-auth-ws",
            format!("ws://localhost:{}/socks-auth-ws", plain.port),
            &socks_with_auth,
        ),
        north(
            "socks-auth-wss",
            wss("socks-auth-wss"),
            &format!("{socks_with_auth}\n{tls}"),
        ),
        // From the environment: https_proxy for wss:// (to 127.0.0.1, which NO_PROXY
        // does not list); NO_PROXY exempts `localhost` from the (dead) http_proxy.
        north(
            "env-wss",
            format!("wss://127.0.0.1:{}/env-wss", secure.port),
            &format!("proxy = \"env\"\n{tls}"),
        ),
        north(
            "env-bypass",
            format!("ws://localhost:{}/env-bypass", plain.port),
            "proxy = \"env\"",
        ),
    ];
    let https_proxy = format!("http://127.0.0.1:{}", http_open.port);
    let dead_proxy = format!("http://127.0.0.1:{}", free_port());
    let daemon = start_debug(
        dir.path(),
        &config(&uplinks),
        &[
            ("https_proxy", &https_proxy),
            ("http_proxy", &dead_proxy),
            ("NO_PROXY", "example.invalid, localhost"),
        ],
    );
    for (peer, name) in [
        (&plain, "http-ws"),
        (&secure, "http-auth-wss"),
        (&secure, "socks-wss"),
        (&plain, "socks-auth-ws"),
        (&secure, "socks-auth-wss"),
        (&secure, "env-wss"),
        (&plain, "env-bypass"),
    ] {
        wait_for_counter(peer, name, 20);
    }
    // Each connection went to its proxy, not to the server directly (env-bypass: the
    // server itself).
    for (name, proxy_port) in [
        ("http-ws", http_open.port),
        ("http-auth-wss", http_auth.port),
        ("socks-wss", socks_open.port),
        ("socks-auth-ws", socks_auth.port),
        ("socks-auth-wss", socks_auth.port),
        ("env-wss", http_open.port),
        ("env-bypass", plain.port),
    ] {
        let line = connected_line(dir.path(), name);
        assert!(
            line.contains(&format!("peer=127.0.0.1:{proxy_port}")),
            "{line}"
        );
    }
    let mut daemon = daemon;
    assert_eq!(daemon.terminate(Duration::from_secs(20)), Some(0));
    for peer in [&plain, &secure] {
        CounterReport::from_payloads(payloads(peer).iter().map(String::as_str)).assert_no_gaps();
    }
    let log = daemon_log(dir.path());
    assert!(
        !log.contains(PROXY_PASSWORD),
        "the proxy password in the log:\n{log}"
    );
}

#[test]
fn proxy_refusals_are_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let Some(peer) = Peer::python(dir.path(), &[]) else {
        return;
    };
    let Some(http_auth) = tinyproxy(dir.path(), Some(("gw", PROXY_PASSWORD)), &[]) else {
        return;
    };
    let only_443 = tinyproxy(dir.path(), None, &[443]).unwrap();
    let Some(socks_auth) = microsocks(Some(("gw", PROXY_PASSWORD))) else {
        return;
    };
    let socks_open = microsocks(None).unwrap();
    let url = format!("ws://127.0.0.1:{}/", peer.port);
    let dead = format!("ws://127.0.0.1:{}/", free_port());
    let uplinks = [
        north(
            "no-creds",
            url.clone(),
            &format!("proxy = \"http://127.0.0.1:{}\"", http_auth.port),
        ),
        north(
            "bad-creds",
            url.clone(),
            &format!(
                "proxy = \"http://gw:wr0ng-pw@127.0.0.1:{}\"",
                http_auth.port
            ),
        ),
        north(
            "port-forbidden",
            url.clone(),
            &format!("proxy = \"http://127.0.0.1:{}\"", only_443.port),
        ),
        north(
            "socks-no-creds",
            url.clone(),
            &format!("proxy = \"socks5://127.0.0.1:{}\"", socks_auth.port),
        ),
        north(
            "socks-dead-server",
            dead,
            &format!("proxy = \"socks5://127.0.0.1:{}\"", socks_open.port),
        ),
    ];
    let _daemon = start_debug(dir.path(), &config(&uplinks), &[]);
    for (name, expected) in [
        ("no-creds", "requires authentication (HTTP 407, proxy authentication required): write `proxy = \"http://user:password@host:port\"`"),
        ("bad-creds", "refused the proxy credentials (HTTP 401, proxy authentication required): check the user and password"),
        ("port-forbidden", "with HTTP 403: the proxy does not allow this target or port"),
        ("socks-no-creds", "it requires a user and password"),
        ("socks-dead-server", "connection refused by the server: check the URL's port (SOCKS reply 5)"),
    ] {
        let line = failure_line(dir.path(), name);
        assert!(line.contains(expected), "{name}: {line}");
    }
    assert!(peer.messages().is_empty());
    let log = daemon_log(dir.path());
    assert!(!log.contains("wr0ng-pw"), "{log}");
}
