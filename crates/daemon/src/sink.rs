//! `tagwire sink`: a WebSocket receiver for trying a setup, and the demo's receiver.
//!
//! It accepts any number of uplinks over ws:// or wss:// (optionally requiring client
//! certificates), hands every data frame to a callback, and answers Pings only after the
//! frames before them were handled, which is what makes tagwire's Ping/Pong delivery
//! confirmation meaningful.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use fastwebsockets::{upgrade, Frame, OpCode, Payload, WebSocket};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tagwire_tls_config::{load_certificates, load_private_key, ErrorKind};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

// The stop signal and the `alive` sender live in `Shared`; `serve` drops its own copy
// before waiting so that only open connections keep the channel open.

/// Counters of a running sink.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Data frames received.
    pub messages: AtomicU64,
    /// Payload bytes received.
    pub bytes: AtomicU64,
    /// WebSocket connections accepted.
    pub connections: AtomicU64,
    /// Text frames among the messages.
    pub text_frames: AtomicU64,
}

/// Called with every data frame: `(is_text, payload)`.
pub type OnMessage = Arc<dyn Fn(bool, &[u8]) + Send + Sync>;

/// Builds the TLS side of a sink from PEM files (certificate chain, key, and optionally
/// the CA that client certificates must chain to).
///
/// The files are read by `tagwire-tls-config`, the same code that reads an uplink's
/// `ca`/`cert`/`key`, so the sink takes the same formats (PKCS#8, PKCS#1, SEC1; RSA,
/// ECDSA, Ed25519) and gives the same errors, each starting with the option at fault
/// (`--tls-cert: file /x/server.pem not found: ...`). The key must be unencrypted: the
/// sink has no password option, so an encrypted key gets the command that decrypts it.
pub fn tls_acceptor(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<TlsAcceptor> {
    let certs = load_certificates("--tls-cert", path_value("--tls-cert", cert)?)?;
    let key_der =
        load_private_key("--tls-key", path_value("--tls-key", key)?, None).map_err(|e| {
            match e.kind() {
                // The library's advice for these is to set `keypass`, which the sink lacks.
                ErrorKind::KeypassMissing | ErrorKind::UnsupportedEncryption => anyhow::anyhow!(
                    "--tls-key: {} is encrypted, and tagwire sink takes only an unencrypted key: \
                 write a decrypted copy with `openssl pkey -in {} -out server-plain.key` \
                 (it asks for the password) and give that",
                    key.display(),
                    key.display()
                ),
                _ => e.into(),
            }
        })?;
    let provider = tagwire_tls_config::crypto_provider();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas = load_certificates("--client-ca", path_value("--client-ca", ca)?)?;
            for (index, c) in cas.into_iter().enumerate() {
                roots.add(c).with_context(|| {
                    format!(
                        "--client-ca: certificate #{} in {} cannot be used as a CA",
                        index + 1,
                        ca.display()
                    )
                })?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .context("--client-ca: cannot build the client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
                "--tls-key: the private key in {} does not belong to the certificate in {} (their \
             public keys differ): give the key the certificate was issued for",
                key.display(),
                cert.display()
            ),
            other => anyhow::anyhow!(
                "--tls-key: the key in {} cannot be used with the certificate in {}: {other}",
                key.display(),
                cert.display()
            ),
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A path as the string `tagwire-tls-config` takes (which also accepts PEM text and base64,
/// but a path never looks like either).
fn path_value<'a>(option: &str, path: &'a Path) -> Result<&'a str> {
    path.to_str()
        .with_context(|| format!("{option}: the path {} is not valid UTF-8", path.display()))
}

/// How long a stopping sink waits for its uplinks to answer its Close frames (and for
/// the messages they still send before that to be handled).
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// What every connection of a sink shares.
#[derive(Clone)]
struct Shared {
    stats: Arc<SinkStats>,
    on_message: OnMessage,
    /// Turns true when the sink stops: each connection then sends a Close frame.
    shutdown: watch::Receiver<bool>,
    /// Held by every open WebSocket connection, so that [`serve`] knows when the last
    /// one ended (the channel closes when every clone is gone).
    _alive: mpsc::Sender<()>,
}

/// Accepts connections on `listener` until `shutdown` becomes true; then sends every
/// open connection a Close frame (1001, going away) and returns once each has ended
/// (at most [`CLOSE_WAIT`] later), so that every message that arrived was handled before
/// it returns.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stats: Arc<SinkStats>,
    on_message: OnMessage,
    shutdown: watch::Receiver<bool>,
) {
    let (alive, mut all_gone) = mpsc::channel::<()>(1);
    let shared = Shared {
        stats,
        on_message,
        shutdown: shutdown.clone(),
        _alive: alive,
    };
    {
        let shared = shared.clone();
        crate::accept::accept_until("sink", listener, shutdown, move |tcp, peer| {
            let tls = tls.clone();
            let shared = shared.clone();
            async move {
                match tls {
                    None => serve_http(tcp, peer, shared).await,
                    Some(acceptor) => match acceptor.accept(tcp).await {
                        Ok(stream) => serve_http(stream, peer, shared).await,
                        Err(e) => warn!(%peer, error = %e, "sink: TLS handshake failed"),
                    },
                }
            }
        })
        .await;
    }
    drop(shared);
    // Connections still open got the stop signal and are closing.
    let _ = tokio::time::timeout(CLOSE_WAIT + Duration::from_secs(1), all_gone.recv()).await;
}

async fn serve_http<S>(stream: S, peer: SocketAddr, shared: Shared)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(handle_upgrade(req, peer, shared)) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        debug!(%peer, error = %e, "sink: HTTP connection ended with an error");
    }
}

fn handle_upgrade(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    shared: Shared,
) -> Response<Empty<Bytes>> {
    if !upgrade::is_upgrade_request(&req) {
        return plain_response(StatusCode::UPGRADE_REQUIRED);
    }
    let (response, fut) = match upgrade::upgrade(&mut req) {
        Ok(x) => x,
        Err(e) => {
            warn!(%peer, error = %e, "sink: bad upgrade request");
            return plain_response(StatusCode::BAD_REQUEST);
        }
    };
    let path = req.uri().to_string();
    tokio::spawn(async move {
        match fut.await {
            Ok(ws) => {
                shared.stats.connections.fetch_add(1, Relaxed);
                info!(%peer, %path, "sink: uplink connected");
                match receive(ws, &shared).await {
                    Ok(Ended::ByPeer) => info!(%peer, "sink: uplink closed the connection"),
                    Ok(Ended::Stopping) => info!(%peer, "sink: closed the connection (stopping)"),
                    Err(e) => info!(%peer, error = %e, "sink: connection ended"),
                }
            }
            Err(e) => warn!(%peer, error = %e, "sink: upgrade failed"),
        }
    });
    response
}

fn plain_response(status: StatusCode) -> Response<Empty<Bytes>> {
    let mut r = Response::new(Empty::new());
    *r.status_mut() = status;
    r
}

/// How a connection ended without an error.
enum Ended {
    /// The uplink sent a Close frame first.
    ByPeer,
    /// The sink stopped and closed it.
    Stopping,
}

async fn receive<S>(mut ws: WebSocket<S>, shared: &Shared) -> Result<Ended>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Pongs are sent by hand so that they can be flushed at once (over TLS an unflushed
    // Pong would sit in a buffer and the uplink would think the server is dead).
    ws.set_auto_pong(false);
    // Our Close is answered by hand too, so that the frames the uplink sent before its
    // answer are still handled.
    ws.set_auto_close(false);
    ws.set_max_message_size(16 * 1024 * 1024);
    let mut shutdown = shared.shutdown.clone();
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let frame = match closing {
            None => {
                let stop = tokio::select! {
                    f = ws.read_frame() => Some(f?),
                    _ = shutdown.wait_for(|stop| *stop) => None,
                };
                match stop {
                    Some(f) => f,
                    None => {
                        ws.write_frame(Frame::close(1001, b"tagwire sink stopping"))
                            .await?;
                        ws.flush().await?;
                        closing = Some(tokio::time::Instant::now() + CLOSE_WAIT);
                        continue;
                    }
                }
            }
            Some(deadline) => match tokio::time::timeout_at(deadline, ws.read_frame()).await {
                Ok(f) => f?,
                Err(_) => return Ok(Ended::Stopping),
            },
        };
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                let is_text = frame.opcode == OpCode::Text;
                shared.stats.messages.fetch_add(1, Relaxed);
                shared
                    .stats
                    .bytes
                    .fetch_add(frame.payload.len() as u64, Relaxed);
                if is_text {
                    shared.stats.text_frames.fetch_add(1, Relaxed);
                }
                // The callback writes (and flushes) the message before the next frame is
                // read, so a Pong, written below when its Ping is read, always follows
                // the output of every message sent before that Ping.
                (shared.on_message)(is_text, &frame.payload);
            }
            OpCode::Ping => {
                let payload = frame.payload.to_vec();
                ws.write_frame(Frame::pong(Payload::Owned(payload))).await?;
                ws.flush().await?;
            }
            OpCode::Close if closing.is_some() => return Ok(Ended::Stopping),
            OpCode::Close => {
                // Echo the status code, as RFC 6455 asks.
                let code = frame
                    .payload
                    .get(..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
                    .unwrap_or(1000);
                let _ = ws.write_frame(Frame::close(code, b"")).await;
                let _ = ws.flush().await;
                return Ok(Ended::ByPeer);
            }
            _ => {}
        }
    }
}
