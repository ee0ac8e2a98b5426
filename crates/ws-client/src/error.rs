//! Errors of [`connect`](crate::connect) and of an open [`Connection`](crate::Connection).

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// The step of [`connect`](crate::connect) that timed out or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Resolving the host name (bounded by `connect_timeout`).
    Resolve,
    /// Opening the TCP connection (bounded by `connect_timeout` per address).
    Connect,
    /// Asking the proxy for a tunnel (bounded by `connect_timeout`).
    Proxy,
    /// The TLS handshake of a `wss://` URL (bounded by `handshake_timeout`).
    Tls,
    /// The HTTP upgrade request and response (bounded by `handshake_timeout`,
    /// shared with the TLS handshake).
    Upgrade,
}

impl Phase {
    /// The `ConnectOptions` field that bounds this phase.
    pub fn option(self) -> &'static str {
        match self {
            Phase::Resolve | Phase::Connect | Phase::Proxy => "connect_timeout",
            Phase::Tls | Phase::Upgrade => "handshake_timeout",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Resolve => "DNS resolution",
            Phase::Connect => "TCP connect",
            Phase::Proxy => "proxy tunnel (CONNECT or SOCKS5 negotiation)",
            Phase::Tls => "TLS handshake",
            Phase::Upgrade => "WebSocket upgrade (HTTP handshake)",
        })
    }
}

/// Why [`connect`](crate::connect) could not open a WebSocket connection.
///
/// The messages say what to change where one can tell; none contains a
/// header value, so they are safe to log.
///
/// The [`Display`](fmt::Display) message is complete, the underlying error's text
/// included, and [`source`](std::error::Error::source) is `None`: so `{}`, `{:#}` of an
/// `anyhow::Error` and error reporters that walk the chain all print each cause once.
/// The underlying errors stay reachable as the variants' fields. `Debug` prints the
/// same message, so `fn main() -> Result<(), ConnectError>` shows the advice.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A `wss://` URL but no `ConnectOptions::tls`.
    #[error(
        "wss:// URL but no TLS configuration: set ConnectOptions::tls to a rustls ClientConfig \
         (tagwire-tls-config builds one from the `ca`/`cert`/`key` parameters)"
    )]
    MissingTls,
    /// An option is unusable (the message names it and says why).
    #[error("invalid connect option `{option}`: {reason}")]
    InvalidOption {
        /// The `ConnectOptions` field.
        option: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The host name could not be resolved (or resolved to no address).
    #[error("cannot resolve host `{host}`: {error}")]
    Resolve {
        /// The host name from the URL.
        host: String,
        /// The resolver's error.
        error: io::Error,
    },
    /// Every resolved address refused or failed the TCP connection; this is the last failure.
    #[error("TCP connect to {addr} failed: {error}{}", attempts_note(*attempts))]
    Connect {
        /// The address of the last attempt.
        addr: SocketAddr,
        /// Its error (connection refused, unreachable, ...).
        error: io::Error,
        /// How many addresses were tried in total.
        attempts: usize,
    },
    /// A phase did not finish in time.
    #[error("{phase} timed out (raise `{option}` if the server is slow, or check the address)", phase = .0, option = .0.option())]
    Timeout(Phase),
    /// The TLS handshake failed; the message explains the usual causes.
    #[error("{}", tls_message(server_name, error))]
    Tls {
        /// The name the certificate was checked against (`server_name` or the URL host).
        server_name: String,
        /// The rustls error.
        error: rustls::Error,
    },
    /// An I/O error during the TLS handshake or the HTTP upgrade.
    #[error("I/O error during the {phase}: {error}")]
    Io {
        /// Where it happened.
        phase: Phase,
        /// The error.
        error: io::Error,
    },
    /// The HTTP exchange of the upgrade failed (connection closed before the
    /// response, a malformed response, ...).
    #[error(
        "the WebSocket upgrade failed: {0} (is this a WebSocket server, and is the scheme right?)"
    )]
    Http(HttpError),
    /// Over TLS with no client certificate configured, the server closed the connection
    /// right after the handshake without answering the upgrade: what servers that
    /// require a client certificate but send no TLS alert do.
    #[error(
        "`{server_name}` closed the connection right after the TLS handshake, before answering the WebSocket upgrade ({error}): servers that require a client certificate do this when none is sent: set `cert` and `key` (or check the server's logs)"
    )]
    ClosedAfterTls {
        /// The TLS name of the server.
        server_name: String,
        /// What the client saw.
        error: HttpError,
    },
    /// The server answered the upgrade request with something other than `101 Switching Protocols`.
    #[error("{}", rejected_message(*status, body, location.as_deref()))]
    HandshakeRejected {
        /// The HTTP status code (e.g. 401, 403, 404).
        status: u16,
        /// The start of the response body, cleaned of control characters (at most ~200 characters).
        body: String,
        /// The `Location` header of a redirect, if any (redirects are not followed).
        location: Option<String>,
    },
    /// The server's `Sec-WebSocket-Accept` does not match our `Sec-WebSocket-Key`
    /// (RFC 6455 section 4.1): the peer is not a WebSocket server, or something in
    /// between altered the handshake.
    #[error(
        "the server's Sec-WebSocket-Accept header is missing or does not match the key we \
         sent: the peer is not a conforming WebSocket server, or a proxy altered the handshake"
    )]
    BadAccept,
    /// `101 Switching Protocols` but the response is not a valid WebSocket upgrade
    /// (missing `Upgrade: websocket`, missing `Connection: upgrade`, an extension or
    /// subprotocol we did not ask for).
    #[error("invalid WebSocket upgrade response: {reason}")]
    BadUpgrade {
        /// What is wrong.
        reason: String,
    },
    /// The proxy refused or failed to open the tunnel (the message names its answer).
    #[error("{0}")]
    Proxy(crate::proxy::ProxyError),
}

/// How the HTTP exchange of the upgrade failed before a status could be judged, in
/// [`ConnectError::Http`] and [`ConnectError::ClosedAfterTls`].
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The server closed the connection before the response head was complete.
    #[error(
        "the server closed the connection before a complete HTTP response head ({received} bytes received)"
    )]
    Closed {
        /// How many bytes of the response had arrived.
        received: usize,
    },
    /// Writing the request or reading the response failed.
    #[error("I/O error: {0}")]
    Io(io::Error),
    /// The response head (status line and headers) is larger than the client accepts.
    #[error(
        "the HTTP response head is larger than {limit} bytes, the client's limit, without ending"
    )]
    HeadTooLarge {
        /// The limit in bytes (16 KiB).
        limit: usize,
    },
    /// The response head has more header lines than the client accepts.
    #[error("the HTTP response head has more than {limit} header lines, the client's limit")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The response is not valid HTTP/1.1 (a bad status line, header, line ending ...).
    #[error("malformed HTTP response ({reason}); its first line: \"{start}\"")]
    Malformed {
        /// What httparse found wrong.
        reason: String,
        /// The response's first line (at most 80 bytes, control characters as `?`).
        start: String,
    },
}

/// `Debug` as the message, with the advice: what `fn main() -> Result<..>` and
/// `unwrap()` print. The fields are public for code that wants them.
macro_rules! debug_is_the_message {
    ($($ty:ty),*) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    )*};
}
pub(crate) use debug_is_the_message;

debug_is_the_message!(ConnectError, WsError, HttpError);

impl From<crate::proxy::ProxyError> for ConnectError {
    fn from(error: crate::proxy::ProxyError) -> Self {
        ConnectError::Proxy(error)
    }
}

impl From<io::Error> for WsError {
    fn from(error: io::Error) -> Self {
        WsError::Io(error)
    }
}

fn attempts_note(attempts: usize) -> String {
    if attempts > 1 {
        format!(" ({attempts} addresses tried, all failed; this was the last)")
    } else {
        String::new()
    }
}

/// The advice itself comes from `tagwire-tls-config`, the one place that knows what each
/// rustls failure means for the `ca`/`cert`/`key`/`server_name` parameters.
#[cfg(feature = "tls-advice")]
fn tls_message(server_name: &str, error: &rustls::Error) -> String {
    format!(
        "TLS handshake with `{server_name}` failed: {}",
        tagwire_tls_config::explain_tls_error(error)
    )
}

/// Without the `tls-advice` feature: rustls's own words.
#[cfg(not(feature = "tls-advice"))]
fn tls_message(server_name: &str, error: &rustls::Error) -> String {
    format!(
        "TLS handshake with `{server_name}` failed: {error} (check the CA the ClientConfig \
         trusts, its client certificate, and ConnectOptions::server_name)"
    )
}

fn rejected_message(status: u16, body: &str, location: Option<&str>) -> String {
    let reason = crate::http::reason_phrase(status);
    let mut msg = format!("the server refused the WebSocket upgrade with HTTP {status} {reason}");
    let hint = match status {
        301 | 302 | 303 | 307 | 308 => Some(match location {
            Some(loc) => format!("redirect to `{loc}` (not followed): use that URL"),
            None => "a redirect (not followed): check the URL".to_owned(),
        }),
        400 => Some("check the URL path, or whether a proxy strips the Upgrade headers".to_owned()),
        401 | 403 => {
            Some("check the credentials sent in the headers (e.g. Authorization)".to_owned())
        }
        404 => Some("check the URL path".to_owned()),
        426 => Some("the server wants another protocol version or TLS".to_owned()),
        _ => None,
    };
    if let Some(hint) = hint {
        msg.push_str(": ");
        msg.push_str(&hint);
    }
    if !body.is_empty() {
        msg.push_str(&format!("; response body: \"{body}\""));
    }
    msg
}

/// Errors of an open [`Connection`](crate::Connection), returned by its methods
/// and carried by [`Event::Failed`](crate::Event::Failed).
///
/// Like [`ConnectError`]: a complete `Display` message, no `source`, and a `Debug`
/// that prints the message.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// Reading or writing the socket failed (reset, broken pipe, the server
    /// closed TCP without a Close frame, ...).
    #[error("{}", io_message(.0))]
    Io(io::Error),
    /// A write or flush did not finish within `write_timeout`: the server stopped
    /// reading. The connection is torn down (a frame may be half written).
    #[error("write did not finish within write_timeout: the server stopped reading; connection torn down")]
    WriteTimeout,
    /// No Pong arrived within `keep_alive.pong_timeout` of an unanswered Ping: the
    /// connection is considered dead and torn down.
    #[error(
        "no Pong within the keep-alive pong_timeout: connection considered dead and torn down"
    )]
    PongTimeout,
    /// The server broke RFC 6455 (bad frame, reserved opcode, oversized message,
    /// invalid UTF-8, bad close code, ...). The connection is torn down.
    #[error("WebSocket protocol error from the server: {0}")]
    Protocol(String),
    /// The connection is closed (by either side, or after an earlier failure):
    /// nothing more can be sent. `next_event` tells why.
    #[error("the WebSocket connection is closed")]
    Closed,
    /// [`close`](crate::Connection::close) sent its Close frame but the server's
    /// Close did not arrive within `close_timeout`; the socket was shut down anyway.
    #[error(
        "the server did not answer our Close frame within close_timeout; socket shut down anyway"
    )]
    CloseTimeout,
    /// An earlier `send`, `flush` or `ping` was cancelled half-way through a frame
    /// (its future was dropped), so the byte stream is corrupt; the connection was torn down.
    #[error("an earlier send/flush/ping was cancelled mid-frame, so the stream is corrupt; connection torn down")]
    Interrupted,
    /// An argument was rejected before anything was written (the message says which).
    #[error("invalid argument: {0}")]
    InvalidInput(String),
}

/// An I/O error of an open connection; a TLS error inside it (an alert the server sends
/// after the handshake, e.g. rejecting the client certificate under TLS 1.3) is explained
/// like a handshake failure rather than shown in rustls's words.
#[cfg(feature = "tls-advice")]
fn io_message(error: &io::Error) -> String {
    match tagwire_tls_config::explain_io_error(error) {
        Some(advice) => format!("connection TLS error: {advice}"),
        None => format!("connection I/O error: {error}"),
    }
}

/// Without the `tls-advice` feature: the I/O error as it is.
#[cfg(not(feature = "tls-advice"))]
fn io_message(error: &io::Error) -> String {
    format!("connection I/O error: {error}")
}

impl WsError {
    /// True when the error ended the connection (as opposed to a rejected
    /// argument or an already-closed connection).
    pub(crate) fn tears_down(&self) -> bool {
        matches!(
            self,
            WsError::Io(_) | WsError::WriteTimeout | WsError::Interrupted | WsError::PongTimeout
        )
    }
}

#[cfg(all(test, feature = "tls-advice"))]
mod io_message_tests {
    use super::*;

    #[test]
    fn a_tls_alert_after_the_handshake_is_explained() {
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::BadCertificate),
        );
        let message = WsError::Io(alert).to_string();
        assert!(
            message.starts_with("connection TLS error: the server rejected the client certificate"),
            "{message}"
        );
        let reset = io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer");
        assert_eq!(
            WsError::Io(reset).to_string(),
            "connection I/O error: reset by peer"
        );
    }
}
