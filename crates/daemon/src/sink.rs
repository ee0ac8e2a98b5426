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

use anyhow::{Context, Result};
use bytes::Bytes;
use fastwebsockets::{upgrade, Frame, OpCode, Payload, WebSocket};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

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
pub fn tls_acceptor(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("--tls-cert: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("--tls-cert: {} is not a PEM certificate file", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("--tls-cert: no CERTIFICATE block in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!(
            "--tls-key: no unencrypted private key in {} (decrypt it with `openssl pkey -in KEY -out plain.key`)",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .with_context(|| format!("--client-ca: cannot read {}", ca.display()))?
            {
                let c = c.with_context(|| format!("--client-ca: bad PEM in {}", ca.display()))?;
                roots
                    .add(c)
                    .with_context(|| format!("--client-ca: bad certificate in {}", ca.display()))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .context("--client-ca: cannot build the client certificate verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .context("--tls-key: the key does not fit the certificate")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections on `listener` until `shutdown` becomes true.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stats: Arc<SinkStats>,
    on_message: OnMessage,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "sink: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let stats = Arc::clone(&stats);
        let on_message = Arc::clone(&on_message);
        tokio::spawn(async move {
            match tls {
                None => serve_http(tcp, peer, stats, on_message).await,
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => serve_http(stream, peer, stats, on_message).await,
                    Err(e) => warn!(%peer, error = %e, "sink: TLS handshake failed"),
                },
            }
        });
    }
}

async fn serve_http<S>(stream: S, peer: SocketAddr, stats: Arc<SinkStats>, on_message: OnMessage)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let stats = Arc::clone(&stats);
        let on_message = Arc::clone(&on_message);
        async move { Ok::<_, std::convert::Infallible>(handle_upgrade(req, peer, stats, on_message)) }
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
    stats: Arc<SinkStats>,
    on_message: OnMessage,
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
                stats.connections.fetch_add(1, Relaxed);
                info!(%peer, %path, "sink: uplink connected");
                match receive(ws, &stats, &on_message).await {
                    Ok(()) => info!(%peer, "sink: uplink closed the connection"),
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

async fn receive<S>(mut ws: WebSocket<S>, stats: &SinkStats, on_message: &OnMessage) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Pongs are sent by hand so that they can be flushed at once (over TLS an unflushed
    // Pong would sit in a buffer and the uplink would think the server is dead).
    ws.set_auto_pong(false);
    ws.set_max_message_size(16 * 1024 * 1024);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                let is_text = frame.opcode == OpCode::Text;
                stats.messages.fetch_add(1, Relaxed);
                stats.bytes.fetch_add(frame.payload.len() as u64, Relaxed);
                if is_text {
                    stats.text_frames.fetch_add(1, Relaxed);
                }
                on_message(is_text, &frame.payload);
            }
            OpCode::Ping => {
                let payload = frame.payload.to_vec();
                ws.write_frame(Frame::pong(Payload::Owned(payload))).await?;
                ws.flush().await?;
            }
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}
