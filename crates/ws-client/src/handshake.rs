//! Opening a connection: resolve, TCP, TLS, the HTTP upgrade request and the RFC 6455
//! checks of its response (the HTTP/1.1 underneath is in `http.rs`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};
use tracing::debug;

use crate::accept::{accept_key, new_key};
use crate::connection::{Connection, Stream};
use crate::deflate::{self, Agreed};
use crate::error::{ConnectError, HttpError, Phase};
use crate::http::{self, Io, Prefixed, ResponseHead};
use crate::options::{Compression, ConnectOptions};
use crate::proxy::{needs_local_resolution, open_tunnel, target_host};
use crate::select::{first, First};
use crate::url::{Scheme, WsUrl};

/// Headers the handshake sets itself; `extra_headers` may not override them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-accept",
    // Only `compression` may offer an extension: others would set bits we cannot decode.
    "sec-websocket-extensions",
    "content-length",
    "transfer-encoding",
];

/// How much of a refused upgrade's body is read, and how much of it is kept.
const BODY_READ_LIMIT: usize = 1024;
const BODY_EXCERPT_CHARS: usize = 200;
/// How long a refused upgrade's body is read for its excerpt.
const BODY_EXCERPT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Opens a WebSocket connection to `url`.
///
/// Steps, each bounded by its timeout: resolve the host and try each address
/// in turn (`connect_timeout` per step); TLS for `wss://` (SNI and certificate
/// name from `server_name` or the URL host); the HTTP/1.1 upgrade with a random
/// `Sec-WebSocket-Key` (TLS and upgrade share `handshake_timeout`). The
/// response must be `101` with `Upgrade: websocket`, `Connection: upgrade` and
/// the right `Sec-WebSocket-Accept`.
///
/// Options that cannot work (no TLS config for `wss://`, a zero keep-alive
/// interval, a malformed header) are rejected before any network traffic.
pub async fn connect(url: &WsUrl, options: &ConnectOptions) -> Result<Connection, ConnectError> {
    check_options(options)?;
    let tls = match url.scheme() {
        Scheme::Ws => None,
        Scheme::Wss => Some(tls_setup(url, options)?),
    };
    let key = new_key();
    let (request, offered) = build_request(url, options, &key)?;

    // The query is left out of logs: some servers take a token there.
    debug!(scheme = %url.scheme(), host = url.host(), port = url.port(), "connecting");
    let (tcp, peer) = open_transport(url, options).await?;
    // Frames are written whole (one write per frame); Nagle would only delay pings and small messages.
    if let Err(e) = tcp.set_nodelay(true) {
        debug!(error = %e, "could not set TCP_NODELAY");
    }
    debug!(%peer, "TCP connected");

    let deadline = Instant::now() + options.handshake_timeout;
    let upgraded = match tls {
        None => upgrade_before(deadline, tcp, &request, &key, &offered, None).await?,
        Some((connector, server_name)) => {
            let name_text = server_name.to_str().into_owned();
            let sends_client_cert = options
                .tls
                .as_ref()
                .is_some_and(|c| c.client_auth_cert_resolver.has_certs());
            let stream = timeout_at(deadline, connector.connect(server_name, tcp))
                .await
                .map_err(|_| ConnectError::Timeout(Phase::Tls))?
                .map_err(|e| tls_error(e, name_text.clone()))?;
            debug!(%peer, "TLS established");
            upgrade_before(
                deadline,
                stream,
                &request,
                &key,
                &offered,
                Some(TlsInfo {
                    server_name: &name_text,
                    sends_client_cert,
                }),
            )
            .await?
        }
    };
    let (upgraded, negotiated) = upgraded;
    debug!(host = url.host(), %peer, ?negotiated, "WebSocket open");
    Ok(Connection::start(upgraded, peer, options, negotiated))
}

/// A TCP stream that carries bytes to and from the server: connected directly, or
/// through a proxy's tunnel. Returns it with the address of its TCP peer.
async fn open_transport(
    url: &WsUrl,
    options: &ConnectOptions,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let limit = options.connect_timeout;
    let Some(proxy) = &options.proxy else {
        let addrs = resolve(url, options).await?;
        return connect_any(&addrs, limit).await;
    };
    let proxy_addrs = resolve_host(proxy.host(), proxy.port(), None, limit).await?;
    let (mut tcp, peer) = connect_any(&proxy_addrs, limit).await?;
    // socks5:// means the client resolves the server's name; the proxy gets an address.
    let target = if needs_local_resolution(proxy, url.host()) {
        target_host(resolve(url, options).await?[0])
    } else {
        url.host().to_owned()
    };
    timeout(limit, open_tunnel(proxy, &mut tcp, &target, url.port()))
        .await
        .map_err(|_| ConnectError::Timeout(Phase::Proxy))??;
    debug!(%proxy, %peer, "proxy tunnel open");
    Ok((tcp, peer))
}

fn check_options(options: &ConnectOptions) -> Result<(), ConnectError> {
    if let Some(keep_alive) = &options.keep_alive {
        if keep_alive.interval.is_zero() {
            return Err(ConnectError::InvalidOption {
                option: "keep_alive.interval",
                reason: "must be greater than zero (use keep_alive: None to disable keep-alive)"
                    .into(),
            });
        }
        if keep_alive.pong_timeout.is_zero() {
            return Err(ConnectError::InvalidOption {
                option: "keep_alive.pong_timeout",
                reason: "must be greater than zero".into(),
            });
        }
    }
    Ok(())
}

fn tls_setup(
    url: &WsUrl,
    options: &ConnectOptions,
) -> Result<(tokio_rustls::TlsConnector, ServerName<'static>), ConnectError> {
    let config = options.tls.clone().ok_or(ConnectError::MissingTls)?;
    let name = options.server_name.as_deref().unwrap_or(url.host());
    let server_name = crate::options::server_name(name).map_err(|reason| {
        let option = if options.server_name.is_some() {
            "server_name"
        } else {
            "url"
        };
        ConnectError::InvalidOption { option, reason }
    })?;
    Ok((tokio_rustls::TlsConnector::from(config), server_name))
}

/// Turns tokio-rustls' io::Error back into the rustls error it usually wraps.
fn tls_error(error: io::Error, server_name: String) -> ConnectError {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match rustls_error {
        Some(error) => ConnectError::Tls { server_name, error },
        None => ConnectError::Io {
            phase: Phase::Tls,
            error,
        },
    }
}

/// The upgrade request's bytes, and what it offered.
fn build_request(
    url: &WsUrl,
    options: &ConnectOptions,
    key: &str,
) -> Result<(Vec<u8>, Offered), ConnectError> {
    let host = url.host_header();
    let mut headers: Vec<(&str, &str)> = vec![
        ("Host", &host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ];
    let mut offered_protocols = Vec::new();
    let mut has_user_agent = false;
    for (name, value) in &options.extra_headers {
        let (name, value) =
            header_pair(name, value).map_err(|reason| ConnectError::InvalidOption {
                option: "extra_headers",
                reason: format!("header `{}`: {reason}", name.trim()),
            })?;
        if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            offered_protocols.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            );
        }
        has_user_agent |= name.eq_ignore_ascii_case("user-agent");
        headers.push((name, value));
    }
    if options.compression == Compression::Deflate {
        headers.push(("Sec-WebSocket-Extensions", deflate::OFFER));
    }
    if !has_user_agent {
        headers.push((
            "User-Agent",
            concat!("tagwire-ws-client/", env!("CARGO_PKG_VERSION")),
        ));
    }
    let offered = Offered {
        protocols: offered_protocols,
        deflate: options.compression == Compression::Deflate,
    };
    // Origin-form target ("/path?query", RFC 9112 section 3.2.1), never absolute form.
    Ok((http::get_request(url.path_and_query(), headers), offered))
}

/// Checks one extra header: a valid name that the handshake does not set itself, and
/// a value an HTTP header can carry. The error says what is wrong; it never repeats
/// the value, which is often a credential.
///
/// ```
/// use tagwire_ws_client::check_header;
///
/// assert!(check_header("Authorization", "Bearer s3cret").is_ok());
/// assert!(check_header("Sec-WebSocket-Key", "x").unwrap_err().contains("handshake"));
/// assert!(!check_header("X-Token", "s3\ncret").unwrap_err().contains("cret"));
/// ```
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    header_pair(name, value).map(|_| ())
}

/// The header's name and value without surrounding whitespace, or why it cannot be sent.
fn header_pair<'a>(name: &'a str, value: &'a str) -> Result<(&'a str, &'a str), String> {
    let name = name.trim();
    if !http::is_header_name(name) {
        return Err("not a valid HTTP header name".to_owned());
    }
    if RESERVED_HEADERS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err("set by the WebSocket handshake itself and cannot be overridden".into());
    }
    // Never echo the value: it is often a credential.
    let value = value.trim();
    if !http::is_header_value(value) {
        return Err(
            "value contains characters not allowed in an HTTP header (control characters or non-ASCII)"
                .to_owned(),
        );
    }
    Ok((name, value))
}

/// The URL host's addresses: `resolve_override` when set, else the system resolver's.
async fn resolve(url: &WsUrl, options: &ConnectOptions) -> Result<Vec<SocketAddr>, ConnectError> {
    resolve_host(
        url.host(),
        url.port(),
        options.resolve_override.as_deref(),
        options.connect_timeout,
    )
    .await
}

async fn resolve_host(
    host: &str,
    port: u16,
    override_ips: Option<&[IpAddr]>,
    limit: Duration,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let resolve_error = |error| ConnectError::Resolve {
        host: host.to_owned(),
        error,
    };
    if let Some(ips) = override_ips {
        if ips.is_empty() {
            return Err(resolve_error(io::Error::new(
                io::ErrorKind::NotFound,
                "resolve_override lists no address",
            )));
        }
        return Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = timeout(limit, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| ConnectError::Timeout(Phase::Resolve))?
        .map_err(resolve_error)?
        .collect();
    if addrs.is_empty() {
        return Err(resolve_error(io::Error::new(
            io::ErrorKind::NotFound,
            "the resolver returned no addresses",
        )));
    }
    debug!(host, ?addrs, "resolved");
    Ok(addrs)
}

/// How long an attempt has to itself before the next address is tried alongside
/// (RFC 8305 section 5 recommends 250 ms).
pub(crate) const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The order of attempts (RFC 8305 section 4): families alternate, starting with the
/// family of the resolver's first answer; within a family the resolver's order stays.
fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut same, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|a| a.is_ipv6() == first.is_ipv6());
    let mut out = Vec::with_capacity(addrs.len());
    let (mut a, mut b) = (same.drain(..), other.drain(..));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// Happy Eyeballs (RFC 8305): tries every address, IPv6 and IPv4 interleaved, starting
/// the next attempt when the previous one failed or after [`CONNECTION_ATTEMPT_DELAY`],
/// whichever comes first. Each attempt is bounded by `limit`. The first connection
/// wins and the attempts still running are dropped. Without any connection, the
/// error is the last failure.
pub(crate) async fn connect_any(
    addrs: &[SocketAddr],
    limit: Duration,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let order = interleave(addrs);
    let mut pending = order.iter().copied();
    // Dropping the set (when one attempt wins) aborts the others.
    let mut attempts = tokio::task::JoinSet::new();
    let start = |attempts: &mut tokio::task::JoinSet<_>, addr: SocketAddr| {
        debug!(%addr, "TCP connect attempt");
        attempts.spawn(async move { (addr, timeout(limit, TcpStream::connect(addr)).await) });
    };
    let mut last_error = None;
    let mut more = true;
    loop {
        if attempts.is_empty() {
            match pending.next() {
                Some(addr) => start(&mut attempts, addr),
                None => break,
            }
        }
        // A finished attempt first; else, while addresses remain, the next one after
        // the attempt delay (Happy Eyeballs).
        let next_delay = async {
            if more {
                tokio::time::sleep(CONNECTION_ATTEMPT_DELAY).await
            } else {
                std::future::pending().await
            }
        };
        match first(attempts.join_next(), next_delay).await {
            First::A(joined) => {
                let Some(Ok((addr, result))) = joined else {
                    continue; // a panicked attempt task: nothing to learn from it
                };
                match result {
                    Ok(Ok(stream)) => return Ok((stream, addr)),
                    Ok(Err(error)) => {
                        debug!(%addr, %error, "TCP connect failed");
                        last_error = Some(ConnectError::Connect {
                            addr,
                            error,
                            attempts: order.len(),
                        });
                    }
                    Err(_) => {
                        debug!(%addr, ?limit, "TCP connect timed out");
                        last_error = Some(ConnectError::Timeout(Phase::Connect));
                    }
                }
                // A failure starts the next attempt at once (RFC 8305 section 5).
                if let Some(addr) = pending.next() {
                    start(&mut attempts, addr);
                }
            }
            First::B(()) => match pending.next() {
                Some(addr) => start(&mut attempts, addr),
                None => more = false,
            },
        }
    }
    Err(last_error.unwrap_or_else(|| ConnectError::Resolve {
        host: String::new(),
        error: io::Error::new(io::ErrorKind::NotFound, "no address to connect to"),
    }))
}

/// What the upgrade needs to know of the TLS layer under it, to explain failures.
struct TlsInfo<'a> {
    server_name: &'a str,
    /// Whether a client certificate is configured (the server may require one).
    sends_client_cert: bool,
}

async fn upgrade_before<S: Io>(
    deadline: Instant,
    io: S,
    request: &[u8],
    key: &str,
    offered: &Offered,
    tls: Option<TlsInfo<'_>>,
) -> Result<(Stream, Negotiated), ConnectError> {
    timeout_at(deadline, upgrade(io, request, key, offered))
        .await
        .map_err(|_| ConnectError::Timeout(Phase::Upgrade))?
        .map_err(|e| match (e, tls) {
            (ConnectError::Http(e), Some(tls)) => http_error_over_tls(e, &tls),
            (e, _) => e,
        })
}

/// With TLS 1.3 the server checks our certificate (or its absence) after the
/// client considers the handshake done, so its refusal arrives as an alert
/// while reading the HTTP response. Report it as the TLS error it is.
///
/// Some servers (Python's ssl module among them) instead close the connection without an
/// alert when a required client certificate is missing; with none configured, that is
/// the likely cause and the error says so.
fn http_error_over_tls(error: HttpError, tls: &TlsInfo<'_>) -> ConnectError {
    let server_name = tls.server_name;
    if let HttpError::Io(io) = &error {
        if let Some(tls_error) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            return ConnectError::Tls {
                server_name: server_name.to_owned(),
                error: tls_error.clone(),
            };
        }
    }
    if !tls.sends_client_cert && closed_early(&error) {
        return ConnectError::ClosedAfterTls {
            server_name: server_name.to_owned(),
            error,
        };
    }
    ConnectError::Http(error)
}

/// Whether the server closed (or reset) the connection instead of answering.
fn closed_early(error: &HttpError) -> bool {
    match error {
        HttpError::Closed { .. } => true,
        HttpError::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// Sends the request, reads the response head and checks it. The stream handed back
/// first yields what the server sent after the head (its first frames may have come
/// in the same packet).
async fn upgrade<S: Io>(
    mut io: S,
    request: &[u8],
    key: &str,
    offered: &Offered,
) -> Result<(Stream, Negotiated), ConnectError> {
    let sent = async {
        io.write_all(request).await?;
        // Over TLS the request sits in the session's buffer until flushed.
        io.flush().await
    };
    sent.await
        .map_err(|e| ConnectError::Http(HttpError::Io(e)))?;
    let (head, rest) = http::read_head(&mut io).await.map_err(ConnectError::Http)?;
    debug!(status = head.status, "upgrade response");

    if head.status != 101 {
        let location = head.first("location").map(clean_excerpt);
        let body = http::body_start(&mut io, &head, rest, BODY_READ_LIMIT, BODY_EXCERPT_WAIT).await;
        return Err(ConnectError::HandshakeRejected {
            status: head.status,
            body: clean_excerpt(&body),
            location,
        });
    }
    let negotiated = check_upgrade_response(&head, key, offered)?;
    let stream: Box<dyn Io> = Box::new(io);
    Ok((Prefixed::new(rest, stream), negotiated))
}

/// What the request offered the server to choose from.
#[derive(Debug)]
struct Offered {
    protocols: Vec<String>,
    deflate: bool,
}

/// What the server chose, from its 101 response.
#[derive(Debug, Default)]
pub(crate) struct Negotiated {
    /// The subprotocol, if any.
    pub protocol: Option<String>,
    /// permessage-deflate's parameters, when the server accepted it.
    pub deflate: Option<Agreed>,
}

/// RFC 6455 section 4.1, the client's checks of a 101 response, and RFC 7692's of
/// the extension answer. Returns what the server chose.
fn check_upgrade_response(
    head: &ResponseHead,
    key: &str,
    offered: &Offered,
) -> Result<Negotiated, ConnectError> {
    let offered_protocols = &offered.protocols;
    let mut negotiated = Negotiated::default();
    let bad = |reason: String| ConnectError::BadUpgrade { reason };

    let upgrade_ok = head
        .first("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"websocket"));
    if !upgrade_ok {
        return Err(bad("missing `Upgrade: websocket` header".into()));
    }
    // Connection is a comma-separated token list ("keep-alive, Upgrade" is valid).
    let connection_ok = head
        .all("connection")
        .flat_map(|v| v.split(|&b| b == b','))
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"));
    if !connection_ok {
        return Err(bad("missing `Connection: upgrade` header".into()));
    }

    let mut accepts = head.all("sec-websocket-accept");
    let expected = accept_key(key);
    let accept_ok = match (accepts.next(), accepts.next()) {
        (Some(value), None) => value == expected.as_bytes(),
        _ => false,
    };
    if !accept_ok {
        debug!(
            %expected,
            received = ?head.first("sec-websocket-accept").map(String::from_utf8_lossy),
            "Sec-WebSocket-Accept mismatch"
        );
        return Err(ConnectError::BadAccept);
    }

    let extensions: Vec<String> = head
        .all("sec-websocket-extensions")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let extensions = extensions.join(", ");
    if offered.deflate {
        negotiated.deflate =
            deflate::parse_response(&extensions).map_err(|e| bad(clean_excerpt(e.as_bytes())))?;
    } else if !extensions.trim().trim_matches(',').trim().is_empty() {
        return Err(bad(format!(
            "the server enabled extension(s) `{}` that the client did not offer",
            clean_excerpt(extensions.as_bytes())
        )));
    }
    if let Some(protocol) = head.first("sec-websocket-protocol") {
        let protocol = String::from_utf8_lossy(protocol).into_owned();
        if !offered_protocols.contains(&protocol) {
            return Err(bad(format!(
                "the server selected subprotocol `{}` that the client did not offer",
                clean_excerpt(protocol.as_bytes())
            )));
        }
        negotiated.protocol = Some(protocol);
    }
    Ok(negotiated)
}

/// Makes server-supplied text safe for one log line: lossy UTF-8, control
/// characters and runs of whitespace folded to one space, at most
/// `BODY_EXCERPT_CHARS` characters.
fn clean_excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut chars = 0;
    let mut pending_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if chars >= BODY_EXCERPT_CHARS {
            out.push('…');
            break;
        }
        if pending_space {
            out.push(' ');
            chars += 1;
            pending_space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_one_clean_line() {
        assert_eq!(
            clean_excerpt(b"  <h1>Forbidden</h1>\r\n\x1b[31m no\tway \xff "),
            "<h1>Forbidden</h1> [31m no way \u{fffd}"
        );
        let long = "x".repeat(500);
        assert_eq!(
            clean_excerpt(long.as_bytes()).chars().count(),
            BODY_EXCERPT_CHARS + 1
        );
    }

    #[tokio::test]
    async fn connect_any_falls_back_to_the_next_address() {
        // A port with no listener (bound then released) refuses; the second address works.
        let refused = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = listener.local_addr().unwrap();
        let (_, addr) = connect_any(&[refused, good], Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(addr, good);

        match connect_any(&[refused, refused], Duration::from_secs(5)).await {
            Err(ConnectError::Connect {
                addr, attempts: 2, ..
            }) => assert_eq!(addr, refused),
            other => panic!("expected Connect error, got {:?}", other.map(|(_, a)| a)),
        }
    }

    #[test]
    fn attempts_alternate_families_starting_with_the_first_answer() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let order = interleave(&[
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("1.0.0.1:1"),
            a("1.0.0.2:1"),
        ]);
        assert_eq!(
            order,
            [
                a("[::1]:1"),
                a("1.0.0.1:1"),
                a("[::2]:1"),
                a("1.0.0.2:1"),
                a("[::3]:1")
            ]
        );
    }

    #[test]
    fn reserved_and_invalid_headers_are_rejected() {
        let url = WsUrl::parse("ws://h/").unwrap();
        for (name, value) in [
            ("Sec-WebSocket-Key", "x"),
            ("host", "evil"),
            ("bad name", "x"),
            ("X-Token", "line\r\nbreak"),
        ] {
            let options = ConnectOptions {
                extra_headers: vec![(name.into(), value.into())],
                ..ConnectOptions::default()
            };
            let err = build_request(&url, &options, "k").unwrap_err();
            let text = err.to_string();
            assert!(text.contains("extra_headers"), "{text}");
            assert!(!text.contains("break"), "value must not be echoed: {text}");
        }
    }
}
