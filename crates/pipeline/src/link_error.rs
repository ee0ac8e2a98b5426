//! Why an uplink's connection ended: kept as a type until it is logged.

use std::fmt;

use tagwire_ws_client::{ConnectError, WsError};

/// Why a connection attempt failed or a connection was lost. The uplink reconnects
/// with backoff after any of them; the text is what the log says.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkError {
    /// Connecting (TCP, TLS, WebSocket handshake) failed.
    Connect(ConnectError),
    /// Writing, pinging or reading failed on an open connection.
    Ws(WsError),
    /// The server sent a Close frame.
    ClosedByServer {
        /// The close code, `None` when the Close frame had no payload.
        code: Option<u16>,
        /// The close reason (may be empty).
        reason: String,
    },
    /// The connection's event stream ended without a reason.
    Ended,
    /// The uplink left a working connection because its certificate files changed
    /// (`tls_watch`), to present the renewed certificate on the next one.
    CertificatesRenewed,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The library names its own option; an uplink's user knows only the config
            // key, which bounds every phase.
            LinkError::Connect(ConnectError::Timeout(phase)) => write!(
                f,
                "{phase} timed out (raise `connect_timeout_ms` of this [[north]] uplink if the server is slow, or check the address)"
            ),
            LinkError::Connect(e) => e.fmt(f),
            LinkError::Ws(e) => e.fmt(f),
            LinkError::ClosedByServer { code, reason } => write!(
                f,
                "the server closed the connection (code {}, reason {:?})",
                code.map_or_else(|| "none".to_string(), |c| c.to_string()),
                reason
            ),
            LinkError::Ended => f.write_str("the connection ended"),
            LinkError::CertificatesRenewed => {
                f.write_str("reconnecting for renewed certificate files")
            }
        }
    }
}

/// No `source`: the message is the wrapped error's own, complete one, so a reporter that
/// walks the chain (anyhow's `{:#}`) would print it twice.
impl std::error::Error for LinkError {}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwire_ws_client::Phase;

    #[test]
    fn the_message_is_printed_once_in_a_chain() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let error = LinkError::Ws(WsError::from(reset));
        let mut chain = error.to_string();
        let mut cause = std::error::Error::source(&error);
        while let Some(c) = cause {
            chain = format!("{chain}: {c}");
            cause = c.source();
        }
        assert_eq!(chain, "connection I/O error: reset by peer");
    }

    #[test]
    fn a_timeout_names_the_config_key() {
        for phase in [Phase::Connect, Phase::Tls, Phase::Upgrade] {
            let text = LinkError::Connect(ConnectError::Timeout(phase)).to_string();
            assert!(text.contains("`connect_timeout_ms`"), "{text}");
            assert!(!text.contains("handshake_timeout"), "{text}");
        }
    }
}
