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

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LinkError::Connect(e) => Some(e),
            LinkError::Ws(e) => Some(e),
            _ => None,
        }
    }
}
