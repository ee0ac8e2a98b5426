//! Connection options.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Checks that `name` can be a TLS server name ([`ConnectOptions::server_name`]): a DNS
/// name or an IP address. The error says what is wrong with the value, for a
/// configuration loader that wants to refuse it before connecting; [`connect`](crate::connect)
/// checks the same and fails with
/// [`ConnectError::InvalidOption`](crate::ConnectError::InvalidOption).
///
/// ```
/// assert!(tagwire_ws_client::check_server_name("plant.example").is_ok());
/// assert!(tagwire_ws_client::check_server_name("192.0.2.7").is_ok());
/// assert!(tagwire_ws_client::check_server_name("not a name").is_err());
/// ```
pub fn check_server_name(name: &str) -> Result<(), String> {
    server_name(name).map(drop)
}

/// The rustls form of a server name; an IP literal becomes `ServerName::IpAddress`, so an
/// address is checked against the certificate's IP SANs and sends no SNI.
pub(crate) fn server_name(name: &str) -> Result<rustls::pki_types::ServerName<'static>, String> {
    rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|_| format!("`{name}` is not a valid DNS name or IP address for TLS"))
}

/// Kind of a data frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A text frame: the payload must be valid UTF-8.
    Text,
    /// A binary frame: any bytes.
    Binary,
}

/// Per-message compression offered to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (what Neuron does): no extension is offered.
    #[default]
    Off,
    /// permessage-deflate (RFC 7692) is offered; the server may accept or decline.
    /// When accepted, every data message is compressed (with context takeover
    /// unless the server forbids it) and the server's compressed messages are
    /// read. Costs about 430 KiB of memory per connection.
    Deflate,
}

/// Keep-alive: ping the server regularly and give up on a silent one.
///
/// `#[non_exhaustive]` so a new knob is not a breaking change: build it with
/// [`KeepAlive::new`] or from [`Default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct KeepAlive {
    /// A Ping (empty payload) goes out when no Ping, ours or the caller's, went
    /// out for this long. Must not be zero.
    pub interval: Duration,
    /// When no Pong at all arrives within this time of the oldest unanswered
    /// Ping (the caller's pings count), the connection is declared dead:
    /// [`Event::Failed`](crate::Event::Failed)([`WsError::PongTimeout`](crate::WsError::PongTimeout)).
    /// Must not be zero.
    pub pong_timeout: Duration,
}

impl KeepAlive {
    /// A Ping after `interval` without one; the connection is dead when no Pong
    /// arrives within `pong_timeout` of the oldest unanswered Ping. Neither may be
    /// zero ([`connect`](crate::connect) says so, naming the field).
    pub fn new(interval: Duration, pong_timeout: Duration) -> Self {
        KeepAlive {
            interval,
            pong_timeout,
        }
    }
}

impl Default for KeepAlive {
    /// 15 s interval, 20 s Pong timeout.
    fn default() -> Self {
        KeepAlive {
            interval: Duration::from_secs(15),
            pong_timeout: Duration::from_secs(20),
        }
    }
}

/// How to connect, and the limits of the connection.
///
/// Build it from [`Default`] and change what you need with the `with_*` setters
/// (the struct is `#[non_exhaustive]`, so a new option is not a breaking change; its
/// fields stay public for reading and assigning):
///
/// ```
/// use std::time::Duration;
/// use tagwire_ws_client::{ConnectOptions, KeepAlive};
///
/// let options = ConnectOptions::default()
///     .with_connect_timeout(Duration::from_secs(3))
///     .with_keep_alive(Some(KeepAlive::new(Duration::from_secs(5), Duration::from_secs(10))))
///     .with_header("Authorization", "Bearer s3cret");
/// // Debug output never shows header values.
/// assert!(!format!("{options:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Limit for resolving the host and for each TCP connection attempt. Every
    /// resolved address is tried, IPv6 and IPv4 interleaved, a new attempt starting
    /// every 250 ms while earlier ones are pending (Happy Eyeballs, RFC 8305).
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// Limit for the TLS handshake plus the HTTP upgrade together. Default 10 s.
    pub handshake_timeout: Duration,
    /// Limit for every write and flush, so a server that stops reading cannot
    /// hang [`send`](crate::Connection::send). When it expires the connection
    /// is torn down ([`WsError::WriteTimeout`](crate::WsError::WriteTimeout)). Default 10 s.
    pub write_timeout: Duration,
    /// How long [`close`](crate::Connection::close) waits for the server's Close
    /// after sending ours. Default 5 s.
    pub close_timeout: Duration,
    /// Largest message accepted from the server, in bytes (all fragments
    /// together). Larger ones end the connection with a protocol error. Keep it
    /// small: a pusher receives little. Default 64 KiB.
    pub max_message_size: usize,
    /// Keep-alive pings; `None` disables them (and with them the Pong timeout).
    /// Default `Some(KeepAlive::default())`: 15 s interval, 20 s Pong timeout.
    pub keep_alive: Option<KeepAlive>,
    /// TLS configuration, required for `wss://` URLs (tagwire-tls-config builds one).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The name the server certificate must be valid for (and the SNI sent),
    /// when it differs from the URL host, e.g. the URL uses an IP address but
    /// the certificate was issued to a name. Default: the URL host (an IP
    /// address host is checked against the certificate's IP addresses).
    ///
    /// This is the only place the name is set: the connection hands it to rustls,
    /// which both sends it as SNI and passes it to the configuration's certificate
    /// verifier (tagwire-tls-config's or the caller's own). An invalid name fails
    /// [`connect`](crate::connect) with
    /// [`ConnectError::InvalidOption`](crate::ConnectError::InvalidOption) naming `server_name`.
    pub server_name: Option<String>,
    /// Extra HTTP headers for the upgrade request, e.g. `Authorization` or
    /// `Origin`. The handshake's own headers (`Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Key`, `-Version`, `-Accept`, `-Extensions`) cannot be set.
    /// `Sec-WebSocket-Protocol` may be: the server must then pick one of the listed protocols.
    pub extra_headers: Vec<(String, String)>,
    /// A proxy to tunnel through (HTTP `CONNECT` or SOCKS5); `None` connects directly.
    /// [`Proxy::from_env`](crate::Proxy::from_env) picks one from the environment.
    /// The proxy's own connection is bounded by `connect_timeout` (TCP) and again by
    /// `connect_timeout` (the tunnel negotiation).
    pub proxy: Option<crate::Proxy>,
    /// Addresses to connect to instead of resolving the URL's host, like curl's
    /// `--resolve`: the `Host` header, TLS name and logs still use the URL's host.
    /// `None` (the default) asks the system resolver.
    pub resolve_override: Option<Vec<IpAddr>>,
    /// Whether to offer permessage-deflate. Default [`Compression::Off`].
    pub compression: Compression,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            max_message_size: 64 * 1024,
            keep_alive: Some(KeepAlive::default()),
            tls: None,
            server_name: None,
            extra_headers: Vec::new(),
            proxy: None,
            resolve_override: None,
            compression: Compression::Off,
        }
    }
}

/// Setters, for building the options from [`Default`] in one expression. Each sets
/// the field of the same name (see its documentation); an `Option` field whose `None`
/// is only "not set" takes the value itself.
impl ConnectOptions {
    /// Sets [`connect_timeout`](Self::connect_timeout).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`handshake_timeout`](Self::handshake_timeout).
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`write_timeout`](Self::write_timeout).
    #[must_use]
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout).
    #[must_use]
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`max_message_size`](Self::max_message_size).
    #[must_use]
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`keep_alive`](Self::keep_alive); `None` turns keep-alive off.
    #[must_use]
    pub fn with_keep_alive(mut self, keep_alive: Option<KeepAlive>) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Sets [`tls`](Self::tls), the configuration of `wss://` connections.
    #[must_use]
    pub fn with_tls(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Sets [`server_name`](Self::server_name), the name the server certificate is
    /// checked against and sent as SNI.
    #[must_use]
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Replaces [`extra_headers`](Self::extra_headers).
    #[must_use]
    pub fn with_extra_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.extra_headers = headers;
        self
    }

    /// Adds one header to [`extra_headers`](Self::extra_headers).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra_headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`proxy`](Self::proxy).
    #[must_use]
    pub fn with_proxy(mut self, proxy: crate::Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Sets [`resolve_override`](Self::resolve_override).
    #[must_use]
    pub fn with_resolve_override(mut self, addresses: Vec<IpAddr>) -> Self {
        self.resolve_override = Some(addresses);
        self
    }

    /// Sets [`compression`](Self::compression).
    #[must_use]
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }
}

impl fmt::Debug for ConnectOptions {
    /// Header values are left out (they are often credentials); names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.extra_headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ConnectOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("close_timeout", &self.close_timeout)
            .field("max_message_size", &self.max_message_size)
            .field("keep_alive", &self.keep_alive)
            .field("tls", &self.tls.as_ref().map(|_| "ClientConfig"))
            .field("server_name", &self.server_name)
            .field("extra_headers (names only)", &header_names)
            .field("proxy", &self.proxy)
            .field("resolve_override", &self.resolve_override)
            .field("compression", &self.compression)
            .finish()
    }
}
