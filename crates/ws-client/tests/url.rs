//! `WsUrl` parsing: what is accepted, how it is normalised, and the errors.

use tagwire_ws_client::{Scheme, UrlError, WsUrl};

fn parse(s: &str) -> WsUrl {
    WsUrl::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn parse_err(s: &str) -> UrlError {
    match WsUrl::parse(s) {
        Ok(url) => panic!("{s:?} should be rejected, parsed as {url}"),
        Err(e) => e,
    }
}

#[test]
fn host_name_with_defaults() {
    let url = parse("ws://Example.COM");
    assert_eq!(url.scheme(), Scheme::Ws);
    assert_eq!(url.host(), "example.com", "host names are lower-cased");
    assert_eq!(url.port(), 80);
    assert_eq!(url.path_and_query(), "/");
    assert_eq!(url.host_header(), "example.com");
    assert_eq!(url.to_string(), "ws://example.com/");

    let url = parse("WSS://example.com/");
    assert_eq!(url.scheme(), Scheme::Wss);
    assert_eq!(url.port(), 443);
    assert!(url.is_tls());
}

#[test]
fn ipv4_with_port() {
    let url = parse("ws://192.168.1.20:8080/ws");
    assert_eq!(url.host(), "192.168.1.20");
    assert_eq!(url.port(), 8080);
    assert_eq!(url.host_header(), "192.168.1.20:8080");
    assert_eq!(url.to_string(), "ws://192.168.1.20:8080/ws");
}

#[test]
fn ipv6_in_brackets() {
    let url = parse("wss://[2001:db8::1]:9443/a");
    assert_eq!(url.host(), "2001:db8::1", "no brackets in host()");
    assert_eq!(url.port(), 9443);
    assert_eq!(url.host_header(), "[2001:db8::1]:9443");
    assert_eq!(url.to_string(), "wss://[2001:db8::1]:9443/a");

    let url = parse("ws://[::1]");
    assert_eq!((url.host(), url.port()), ("::1", 80));
    assert_eq!(url.host_header(), "[::1]");
}

#[test]
fn explicit_default_port_is_not_repeated() {
    assert_eq!(parse("ws://h:80/x").host_header(), "h");
    assert_eq!(parse("wss://h:443/x").to_string(), "wss://h/x");
    // ...but the other scheme's default is not a default.
    assert_eq!(parse("wss://h:80/x").host_header(), "h:80");
}

#[test]
fn path_and_query_are_kept() {
    let url = parse("ws://h:1/api/v1/push?token=abc&site=7");
    assert_eq!(url.path_and_query(), "/api/v1/push?token=abc&site=7");
    assert_eq!(parse("ws://h?x=1").path_and_query(), "/?x=1");
    assert_eq!(
        parse("ws://h/%41b").path_and_query(),
        "/%41b",
        "escapes kept as written"
    );
}

#[test]
fn display_round_trips() {
    for s in [
        "ws://example.com/",
        "wss://example.com:8443/p?q=1",
        "ws://[::1]:9001/",
        "ws://10.0.0.1/x/y",
    ] {
        let url = parse(s);
        assert_eq!(url.to_string(), s);
        assert_eq!(url.to_string().parse::<WsUrl>().unwrap(), url);
    }
}

#[test]
fn surrounding_whitespace_is_ignored() {
    assert_eq!(parse("  ws://h/ \n").to_string(), "ws://h/");
}

#[test]
fn bad_scheme() {
    let e = parse_err("http://example.com/");
    assert_eq!(e, UrlError::UnsupportedScheme("http".into()));
    let text = e.to_string();
    assert!(
        text.contains("`http`") && text.contains("ws://") && text.contains("wss://"),
        "{text}"
    );

    assert_eq!(parse_err("example.com:80/ws"), UrlError::MissingScheme);
    assert_eq!(parse_err("://h/"), UrlError::MissingScheme);
    assert_eq!(parse_err(""), UrlError::Empty);
    assert_eq!(parse_err("   "), UrlError::Empty);
}

#[test]
fn empty_host() {
    for s in ["ws:///path", "ws://:8080/", "ws://", "ws://[]:80/"] {
        assert_eq!(parse_err(s), UrlError::EmptyHost, "{s}");
    }
    assert!(UrlError::EmptyHost.to_string().contains("no host"));
}

#[test]
fn bad_port() {
    for (s, port) in [
        ("ws://h:abc/", "abc"),
        ("ws://h:0/", "0"),
        ("ws://h:65536/", "65536"),
        ("ws://h:-1/", "-1"),
        ("ws://h:+80/", "+80"),
        ("ws://[::1]:99999/", "99999"),
    ] {
        let e = parse_err(s);
        assert_eq!(e, UrlError::InvalidPort(port.into()), "{s}");
        assert!(e.to_string().contains("1 to 65535"), "{e}");
    }
}

#[test]
fn userinfo_is_rejected_without_echoing_it() {
    for s in [
        "ws://admin:hunter2@example.com/",
        "wss://admin@example.com:443/",
        "ws://:hunter2@[::1]/",
    ] {
        let e = parse_err(s);
        assert_eq!(e, UrlError::UserInfo, "{s}");
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("admin"),
            "{text}"
        );
        assert!(
            text.contains("Authorization"),
            "points to the header: {text}"
        );
    }
}

#[test]
fn bad_hosts() {
    let e = parse_err("ws://::1/");
    assert!(matches!(e, UrlError::InvalidHost { .. }), "{e:?}");
    assert!(e.to_string().contains("brackets"), "{e}");

    assert!(matches!(
        parse_err("ws://[::1/"),
        UrlError::InvalidHost { .. }
    ));
    assert!(matches!(
        parse_err("ws://[nope]/"),
        UrlError::InvalidHost { .. }
    ));
    assert!(matches!(
        parse_err("ws://[fe80::1%25eth0]/"),
        UrlError::InvalidHost { .. }
    ));
    assert!(matches!(
        parse_err("ws://[::1]x/"),
        UrlError::InvalidHost { .. }
    ));
    assert!(matches!(
        parse_err("ws://256.1.1.1/"),
        UrlError::InvalidHost { .. }
    ));
    assert!(matches!(
        parse_err("ws://a..b/"),
        UrlError::InvalidHost { .. }
    ));
    assert!(matches!(
        parse_err("ws://bad host/"),
        UrlError::InvalidHost { .. }
    ));
    let e = parse_err("ws://ex%41mple.com/");
    assert!(
        e.to_string().contains("`ex%41mple.com`"),
        "names the host: {e}"
    );
}

#[test]
fn fragment_is_rejected() {
    let e = parse_err("ws://h/path#frag");
    assert_eq!(e, UrlError::Fragment);
    assert!(e.to_string().contains("%23"), "{e}");
}

#[test]
fn from_str_matches_parse() {
    let url: WsUrl = "ws://h:9/p".parse().unwrap();
    assert_eq!(url, parse("ws://h:9/p"));
    assert!("nope".parse::<WsUrl>().is_err());
}
