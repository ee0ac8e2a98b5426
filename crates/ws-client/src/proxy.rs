//! Proxies in front of the server: HTTP `CONNECT` tunnels and SOCKS5 (RFC 1928, with
//! the user/password method of RFC 1929), chosen explicitly or from the environment
//! like curl does (`HTTPS_PROXY`, `http_proxy`, `ALL_PROXY`, `NO_PROXY`).
//!
//! The tunnel carries raw bytes, so TLS for `wss://` runs end to end through it: the
//! proxy never sees the WebSocket traffic or the certificates' private keys.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::error::HttpError;
use crate::url::{percent_decode, split_userinfo, Scheme, WsUrl};

/// The kinds of proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyKind {
    /// An HTTP proxy, asked for a tunnel with `CONNECT host:port` (also for `ws://`).
    Http,
    /// A SOCKS5 proxy; the client resolves the server's name (`socks5://`).
    Socks5,
    /// A SOCKS5 proxy that resolves the server's name itself (`socks5h://`).
    Socks5h,
}

/// A proxy to tunnel the connection through.
///
/// Parsed from `http://[user:password@]host:port`, `socks5://…` or `socks5h://…`.
/// Its `Debug` and [`Display`](fmt::Display) forms never show the password.
///
/// ```
/// use tagwire_ws_client::{Proxy, ProxyKind};
///
/// let proxy = Proxy::parse("socks5h://gw:s3cret@10.0.0.1:1080").unwrap();
/// assert_eq!(proxy.kind(), ProxyKind::Socks5h);
/// assert_eq!(proxy.to_string(), "socks5h://gw:…@10.0.0.1:1080");
/// assert!(!format!("{proxy:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    kind: ProxyKind,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self})")
    }
}

impl fmt::Display for Proxy {
    /// `scheme://[user:…@]host:port`: the password is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.kind {
            ProxyKind::Http => "http",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
        };
        write!(f, "{scheme}://")?;
        if let Some((user, _)) = &self.credentials {
            write!(f, "{user}:…@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a proxy setting cannot be used. Never contains the proxy password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid proxy `{shown}`: {reason}")]
pub struct ProxyParseError {
    /// The setting with any user information replaced by `…`.
    shown: String,
    reason: String,
}

impl Proxy {
    /// Parses a proxy URL: `http://host:port`, `socks5://host:port` or
    /// `socks5h://host:port`, each with optional `user:password@` (percent-encoded
    /// where needed). A URL without a scheme is an HTTP proxy (as in curl); the port
    /// defaults to 1080 for SOCKS5 and must be given for HTTP.
    pub fn parse(text: &str) -> Result<Proxy, ProxyParseError> {
        let text = text.trim();
        let (scheme, rest) = text.split_once("://").unwrap_or(("http", text));
        let (userinfo, hostport) = split_userinfo(rest.trim_end_matches('/'));
        let shown = match userinfo {
            Some(_) => format!("{scheme}://…@{hostport}"),
            None => format!("{scheme}://{hostport}"),
        };
        let fail = |reason: &str| ProxyParseError {
            shown: shown.clone(),
            reason: reason.to_owned(),
        };
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "http" => ProxyKind::Http,
            "socks5" => ProxyKind::Socks5,
            "socks5h" => ProxyKind::Socks5h,
            "https" => {
                return Err(fail(
                    "TLS to the proxy itself is not supported: use http:// (the tunnel still carries wss:// end to end)",
                ))
            }
            _ => {
                return Err(fail(
                    "unknown scheme: use http://, socks5:// or socks5h:// (remote DNS)",
                ))
            }
        };
        if hostport.contains(['/', '?', '#']) {
            return Err(fail("a proxy URL has no path: write scheme://host:port"));
        }
        // The proxy's host and port follow the same rules as a WebSocket URL's.
        let probe = WsUrl::parse(&format!("ws://{hostport}/"))
            .map_err(|_| fail("expected host:port (IPv6 in brackets)"))?;
        let explicit_port = hostport
            .rsplit_once(':')
            .is_some_and(|(h, p)| !p.is_empty() && (!h.starts_with('[') || h.ends_with(']')));
        let port = match (explicit_port, kind) {
            (true, _) => probe.port(),
            (false, ProxyKind::Http) => {
                return Err(fail(
                    "the port is missing: write http://host:port (e.g. :3128)",
                ))
            }
            (false, _) => 1080,
        };
        let credentials = match userinfo {
            None => None,
            Some(info) => {
                let (user, password) = info.split_once(':').unwrap_or((info, ""));
                let user = percent_decode(user)
                    .ok_or_else(|| fail("the user name is not valid percent-encoded UTF-8"))?;
                let password = percent_decode(password)
                    .ok_or_else(|| fail("the password is not valid percent-encoded UTF-8"))?;
                if kind != ProxyKind::Http && (user.len() > 255 || password.len() > 255) {
                    return Err(fail(
                        "SOCKS5 user names and passwords are at most 255 bytes",
                    ));
                }
                Some((user, password))
            }
        };
        Ok(Proxy {
            kind,
            host: probe.host().to_owned(),
            port,
            credentials,
        })
    }

    /// The proxy to use for `url` according to the environment, as curl decides:
    /// `NO_PROXY` first (a comma-separated list of host names, domain suffixes such as
    /// `.plant.local` or `plant.local`, IP addresses, or `*` for all), then
    /// `https_proxy`/`HTTPS_PROXY` for `wss://` or `http_proxy` for `ws://` (only
    /// lower case, as curl, because `HTTP_PROXY` can be set by a CGI request), then
    /// `all_proxy`/`ALL_PROXY`. Lower case wins over upper case. Empty values count
    /// as unset. `Ok(None)`: connect directly.
    ///
    /// `var` looks a variable up (`|name| std::env::var(name).ok()` in a program).
    pub fn from_env(
        url: &WsUrl,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Proxy>, ProxyParseError> {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
        };
        if let Some(no_proxy) = get(&["no_proxy", "NO_PROXY"]) {
            if no_proxy_matches(&no_proxy, url.host()) {
                return Ok(None);
            }
        }
        let scheme_vars: &[&str] = match url.scheme() {
            Scheme::Wss => &["https_proxy", "HTTPS_PROXY"],
            Scheme::Ws => &["http_proxy"],
        };
        match get(scheme_vars).or_else(|| get(&["all_proxy", "ALL_PROXY"])) {
            Some(value) => Proxy::parse(&value).map(Some),
            None => Ok(None),
        }
    }

    /// HTTP or SOCKS5.
    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// The proxy's host: a name, or an IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Whether `host` is exempt from the proxy by a `NO_PROXY` list (curl's rules).
fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    list.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry.trim_start_matches('.').trim_end_matches('.');
        let entry = entry
            .strip_prefix('[')
            .and_then(|e| e.strip_suffix(']'))
            .unwrap_or(entry)
            .to_ascii_lowercase();
        if entry.is_empty() {
            return false;
        }
        match (host_ip, entry.parse::<IpAddr>()) {
            (Some(h), Ok(e)) => h == e,
            (Some(_), Err(_)) | (None, Ok(_)) => false,
            (None, Err(_)) => {
                host == entry
                    || (host.len() > entry.len()
                        && host.ends_with(&entry)
                        && host.as_bytes()[host.len() - entry.len() - 1] == b'.')
            }
        }
    })
}

/// Why a proxy would not open the tunnel. The messages name the proxy's answer and
/// the fix; they never contain the proxy password. Like
/// [`ConnectError`](crate::ConnectError): a complete message, no `source`, a `Debug`
/// that prints the message.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The HTTP proxy answered `407` (or `401`, as tinyproxy does): it wants
    /// credentials, or refused the ones sent.
    #[error("{}", if *.sent_credentials {
        format!("the HTTP proxy {proxy} refused the proxy credentials (HTTP {status}, proxy authentication required): check the user and password in `proxy`")
    } else {
        format!("the HTTP proxy {proxy} requires authentication (HTTP {status}, proxy authentication required): write `proxy = \"http://user:password@host:port\"`")
    })]
    AuthRequired {
        /// The proxy (without password).
        proxy: String,
        /// 407, or 401 from proxies that use it (tinyproxy).
        status: u16,
        /// Whether credentials were sent.
        sent_credentials: bool,
    },
    /// The HTTP proxy refused the `CONNECT` with another status (403: the target
    /// or its port is not allowed; 502/503/504: the proxy could not reach the server).
    #[error("the HTTP proxy {proxy} refused `CONNECT {target}` with HTTP {status}: {hint}")]
    ConnectRefused {
        /// The proxy (without password).
        proxy: String,
        /// `host:port` asked for.
        target: String,
        /// The status code.
        status: u16,
        /// What it usually means.
        hint: &'static str,
    },
    /// The SOCKS5 proxy refused the request with a reply code of RFC 1928.
    #[error("the SOCKS5 proxy {proxy} refused the connection to {target}: {} (SOCKS reply {code})", socks_reply_text(*.code))]
    SocksRefused {
        /// The proxy (without password).
        proxy: String,
        /// `host:port` asked for.
        target: String,
        /// The reply code (1 to 8, or another).
        code: u8,
    },
    /// The SOCKS5 proxy accepts none of the offered authentication methods, or
    /// refused the user and password.
    #[error("the SOCKS5 proxy {proxy}: {reason}")]
    SocksAuth {
        /// The proxy (without password).
        proxy: String,
        /// What went wrong and what to do.
        reason: &'static str,
    },
    /// The proxy's answer is not HTTP or SOCKS5 as expected.
    #[error(
        "the proxy {proxy} sent an unexpected answer: {reason} (is it really an {kind} proxy?)"
    )]
    Malformed {
        /// The proxy (without password).
        proxy: String,
        /// What was wrong.
        reason: String,
        /// "HTTP" or "SOCKS5".
        kind: &'static str,
    },
    /// Reading from or writing to the proxy failed.
    #[error("I/O error talking to the proxy {proxy}: {error}")]
    Io {
        /// The proxy (without password).
        proxy: String,
        /// The error.
        error: std::io::Error,
    },
}

crate::error::debug_is_the_message!(ProxyError);

fn socks_reply_text(code: u8) -> &'static str {
    match code {
        1 => "general failure of the SOCKS server",
        2 => "connection not allowed by the proxy's rules: ask for the server to be allowed",
        3 => "network unreachable from the proxy",
        4 => "host unreachable from the proxy (or, with socks5h://, the proxy cannot resolve the name)",
        5 => "connection refused by the server: check the URL's port",
        6 => "TTL expired",
        7 => "command not supported by the proxy",
        8 => "address type not supported: try socks5h:// (the proxy resolves the name) or socks5://",
        _ => "unknown reply code",
    }
}

/// Asks the proxy on `stream` for a tunnel to `host:port` and returns once the tunnel
/// is open: from then on the stream carries bytes to and from the server. The caller
/// bounds the time this takes.
pub(crate) async fn open_tunnel(
    proxy: &Proxy,
    stream: &mut TcpStream,
    host: &str,
    port: u16,
) -> Result<(), ProxyError> {
    match proxy.kind {
        ProxyKind::Http => http_connect(proxy, stream, host, port).await,
        ProxyKind::Socks5 | ProxyKind::Socks5h => socks5_connect(proxy, stream, host, port).await,
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn http_connect(
    proxy: &Proxy,
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    host: &str,
    port: u16,
) -> Result<(), ProxyError> {
    let io_error = |error| ProxyError::Io {
        proxy: proxy.to_string(),
        error,
    };
    let target = authority(host, port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some((user, password)) = &proxy.credentials {
        let token = crate::accept::base64(format!("{user}:{password}").as_bytes());
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;

    // The same head reader as the WebSocket upgrade (bounded at 16 KiB). Nothing of the
    // tunnel may follow the head: the server speaks first on neither ws:// nor wss://.
    let (head, after) = crate::http::read_head(stream).await.map_err(|e| match e {
        HttpError::Io(error) => io_error(error),
        HttpError::Closed { .. } => malformed(
            proxy,
            "closed the connection without answering CONNECT".into(),
            "HTTP",
        ),
        other => malformed(proxy, format!("its answer to CONNECT: {other}"), "HTTP"),
    })?;
    let status = head.status;
    if (200..300).contains(&status) && !after.is_empty() {
        return Err(malformed(
            proxy,
            format!(
                "{} bytes followed its answer to CONNECT before the client sent anything",
                after.len()
            ),
            "HTTP",
        ));
    }
    match status {
        200..=299 => Ok(()),
        // 401 is what tinyproxy sends; from a proxy asked for CONNECT it means the same.
        401 | 407 => Err(ProxyError::AuthRequired {
            proxy: proxy.to_string(),
            status,
            sent_credentials: proxy.credentials.is_some(),
        }),
        _ => Err(ProxyError::ConnectRefused {
            proxy: proxy.to_string(),
            target,
            status,
            hint: match status {
                403 => "the proxy does not allow this target or port (tinyproxy: add `ConnectPort <port>`; squid: allow the port in `SSL_ports`/`http_access`)",
                400 | 405 | 501 => "the proxy does not support CONNECT tunnels",
                502..=504 => "the proxy could not reach the server: check the URL's host and port from the proxy's side",
                _ => "see the proxy's log",
            },
        }),
    }
}

fn malformed(proxy: &Proxy, reason: String, kind: &'static str) -> ProxyError {
    ProxyError::Malformed {
        proxy: proxy.to_string(),
        reason,
        kind,
    }
}

async fn socks5_connect(
    proxy: &Proxy,
    stream: &mut TcpStream,
    host: &str,
    port: u16,
) -> Result<(), ProxyError> {
    let io_error = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            malformed(
                proxy,
                "closed the connection mid-negotiation".into(),
                "SOCKS5",
            )
        } else {
            ProxyError::Io {
                proxy: proxy.to_string(),
                error: source,
            }
        }
    };
    let auth_error = |reason| ProxyError::SocksAuth {
        proxy: proxy.to_string(),
        reason,
    };

    // Greeting: offer "no authentication", and user/password when we have them.
    let greeting: &[u8] = if proxy.credentials.is_some() {
        &[5, 2, 0x00, 0x02]
    } else {
        &[5, 1, 0x00]
    };
    stream.write_all(greeting).await.map_err(io_error)?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await.map_err(io_error)?;
    if choice[0] != 5 {
        return Err(malformed(
            proxy,
            format!("version byte {} instead of 5", choice[0]),
            "SOCKS5",
        ));
    }
    match (choice[1], &proxy.credentials) {
        (0x00, _) => {}
        (0x02, Some((user, password))) => {
            // RFC 1929: version 1, user, password; the lengths were checked at parse time.
            let mut auth = vec![1, user.len() as u8];
            auth.extend_from_slice(user.as_bytes());
            auth.push(password.len() as u8);
            auth.extend_from_slice(password.as_bytes());
            stream.write_all(&auth).await.map_err(io_error)?;
            let mut status = [0u8; 2];
            stream.read_exact(&mut status).await.map_err(io_error)?;
            if status[1] != 0 {
                return Err(auth_error(
                    "it refused the user and password: check them in `proxy`",
                ));
            }
        }
        (0xFF, None) | (0x02, None) => {
            return Err(auth_error(
                "it requires a user and password: write `proxy = \"socks5://user:password@host:port\"`",
            ))
        }
        _ => {
            return Err(auth_error(
                "it accepts none of the offered authentication methods (no authentication, user/password)",
            ))
        }
    }

    // CONNECT request: an address, or a name for the proxy to resolve.
    let mut request = vec![5, 1, 0];
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        Ok(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        // A name: socks5h:// sends it for the proxy to resolve (socks5:// targets
        // arrive here already resolved to an address).
        Err(_) => {
            if host.len() > 255 {
                return Err(malformed(
                    proxy,
                    "host name longer than 255 bytes".into(),
                    "SOCKS5",
                ));
            }
            request.push(3);
            request.push(host.len() as u8);
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await.map_err(io_error)?;

    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).await.map_err(io_error)?;
    if reply[0] != 5 {
        return Err(malformed(
            proxy,
            format!("version byte {} instead of 5", reply[0]),
            "SOCKS5",
        ));
    }
    if reply[1] != 0 {
        return Err(ProxyError::SocksRefused {
            proxy: proxy.to_string(),
            target: authority(host, port),
            code: reply[1],
        });
    }
    // Skip the bound address the proxy reports: it is of no use to a client.
    let skip = match reply[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => stream.read_u8().await.map_err(io_error)? as usize + 2,
        other => {
            return Err(malformed(
                proxy,
                format!("unknown address type {other} in the reply"),
                "SOCKS5",
            ))
        }
    };
    let mut bound = vec![0u8; skip];
    stream.read_exact(&mut bound).await.map_err(io_error)?;
    Ok(())
}

/// For `socks5://` (client-side DNS): the target address the proxy is asked for.
pub(crate) fn needs_local_resolution(proxy: &Proxy, host: &str) -> bool {
    proxy.kind == ProxyKind::Socks5 && host.parse::<IpAddr>().is_err()
}

/// The text of a resolved target for a SOCKS5 request.
pub(crate) fn target_host(addr: SocketAddr) -> String {
    addr.ip().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> WsUrl {
        WsUrl::parse(s).unwrap()
    }

    /// `http_connect` against a proxy that reads the CONNECT request and answers
    /// `response`, then closes.
    async fn connect_answered(response: &'static [u8]) -> Result<(), ProxyError> {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let peer = tokio::spawn(async move {
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                request.push(server.read_u8().await.unwrap());
            }
            assert!(request.starts_with(b"CONNECT h.example:443 HTTP/1.1\r\n"));
            server.write_all(response).await.unwrap();
        });
        let proxy = Proxy::parse("http://127.0.0.1:3128").unwrap();
        let result = http_connect(&proxy, &mut client, "h.example", 443).await;
        peer.await.unwrap();
        result
    }

    #[tokio::test]
    async fn connect_answers_are_judged() {
        assert!(
            connect_answered(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_ok()
        );
        assert!(matches!(
            connect_answered(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").await,
            Err(ProxyError::AuthRequired { status: 407, .. })
        ));
        for (response, expect) in [
            (
                &b"SSH-2.0-OpenSSH_9.2\r\n\r\n"[..],
                "malformed HTTP response",
            ),
            (b"", "closed the connection without answering CONNECT"),
            (
                b"HTTP/1.1 200 OK\r\n",
                "closed the connection without answering CONNECT",
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\nSSH-2.0",
                "7 bytes followed its answer to CONNECT",
            ),
        ] {
            let err = connect_answered(response).await.unwrap_err().to_string();
            assert!(err.contains(expect), "{err}");
            assert!(err.contains("is it really an HTTP proxy?"), "{err}");
        }
        let huge: &'static [u8] = Box::leak(
            format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "x".repeat(20_000))
                .into_bytes()
                .into_boxed_slice(),
        );
        let err = connect_answered(huge).await.unwrap_err().to_string();
        assert!(err.contains("larger than 16384 bytes"), "{err}");
    }

    #[test]
    fn parses_kinds_ports_and_credentials() {
        let p = Proxy::parse("http://u%40x:p%3Aw@proxy.local:3128").unwrap();
        assert_eq!(p.kind(), ProxyKind::Http);
        assert_eq!((p.host(), p.port()), ("proxy.local", 3128));
        assert_eq!(p.credentials, Some(("u@x".into(), "p:w".into())));
        assert_eq!(Proxy::parse("socks5://[::1]").unwrap().port(), 1080);
        assert_eq!(Proxy::parse("proxy:8080").unwrap().kind(), ProxyKind::Http);
        for bad in [
            "http://proxy",
            "ftp://proxy:21",
            "https://proxy:443",
            "http://proxy:99999",
            "http://u:secret@proxy:1/x",
        ] {
            let err = Proxy::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid proxy"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn environment_follows_curl() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let vars = env(&[
            ("HTTPS_PROXY", "http://secure:3128"),
            ("HTTP_PROXY", "http://ignored-as-in-curl:3128"),
            ("ALL_PROXY", "socks5h://all:1080"),
            ("NO_PROXY", "localhost, .plant.local,10.0.0.7,[::1]"),
        ]);
        let pick = |u: &str| {
            Proxy::from_env(&url(u), vars)
                .unwrap()
                .map(|p| p.to_string())
        };
        assert_eq!(
            pick("wss://cloud.example/").as_deref(),
            Some("http://secure:3128")
        );
        assert_eq!(
            pick("ws://cloud.example/").as_deref(),
            Some("socks5h://all:1080")
        );
        assert_eq!(pick("ws://localhost:9000/"), None);
        assert_eq!(pick("ws://hmi.plant.local/"), None);
        assert_eq!(pick("ws://plant.local/"), None);
        assert_eq!(
            pick("ws://notplant.local/").as_deref(),
            Some("socks5h://all:1080")
        );
        assert_eq!(pick("ws://10.0.0.7/"), None);
        assert_eq!(
            pick("ws://10.0.0.70/").as_deref(),
            Some("socks5h://all:1080")
        );
        assert_eq!(pick("ws://[::1]:9/"), None);
        let lower_wins = env(&[("http_proxy", "http://lower:1"), ("no_proxy", "")]);
        assert_eq!(
            Proxy::from_env(&url("ws://x/"), lower_wins)
                .unwrap()
                .unwrap()
                .host(),
            "lower"
        );
        let star = env(&[("ALL_PROXY", "http://p:1"), ("NO_PROXY", "*")]);
        assert_eq!(Proxy::from_env(&url("ws://x/"), star).unwrap(), None);
    }
}
