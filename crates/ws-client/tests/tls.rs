//! wss:// against a tokio-rustls server with a certificate made by the
//! `openssl` command line at test time.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::certs::{client_config, make_cert, provider};
use common::*;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tagwire_ws_client::{connect, ConnectError, ConnectOptions, Event, FrameKind, WsUrl};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A wss server on 127.0.0.1: TLS with tokio-rustls, then fastwebsockets'
/// upgrade. Upgraded connections arrive on the returned channel.
async fn tls_server(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> (std::net::SocketAddr, mpsc::UnboundedReceiver<ServerWs>) {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(ca).unwrap())
                .unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                // A failed handshake (the client distrusting us) just ends this connection.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve_upgrade(tls, tx).await;
                }
            });
        }
    });
    (addr, rx)
}

struct Fixture {
    _dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    upgraded: mpsc::UnboundedReceiver<ServerWs>,
    /// The server's certificate, which is also its own trust anchor.
    ca: std::path::PathBuf,
    /// A certificate unrelated to the server's.
    other_ca: std::path::PathBuf,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(
        dir.path(),
        "server",
        "DNS:localhost,DNS:tagwire.test,IP:127.0.0.1",
    );
    let (other_ca, _) = make_cert(dir.path(), "other", "DNS:other.test");
    let (addr, upgraded) = tls_server(&cert, &key, None).await;
    Fixture {
        _dir: dir,
        addr,
        upgraded,
        ca: cert,
        other_ca,
    }
}

impl Fixture {
    fn url(&self, host: &str) -> WsUrl {
        WsUrl::parse(&format!("wss://{host}:{}/secure", self.addr.port())).unwrap()
    }

    fn options(&self, ca: &Path) -> ConnectOptions {
        test_options().with_tls(client_config(ca))
    }

    async fn accept(&mut self) -> ServerWs {
        within("the TLS server", self.upgraded.recv())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn wss_exchange_by_name() {
    let mut fx = fixture().await;
    let mut conn = connect(&fx.url("localhost"), &fx.options(&fx.ca))
        .await
        .unwrap();
    let mut ws = fx.accept().await;

    // Written without an explicit flush between them: the ping's flush must
    // push the buffered TLS records out as well.
    conn.send(FrameKind::Text, br#"{"tag":1}"#).await.unwrap();
    conn.send(FrameKind::Binary, &[9; 20_000]).await.unwrap();
    conn.ping(b"p1").await.unwrap();
    let frame = within("text", ws.read_frame()).await.unwrap();
    assert_eq!(frame.payload.to_vec(), br#"{"tag":1}"#);
    let frame = within("binary", ws.read_frame()).await.unwrap();
    assert_eq!(frame.payload.to_vec(), vec![9; 20_000]);

    // The server answers the Ping while reading on.
    let server_task = tokio::spawn(async move {
        while let Ok(frame) = ws.read_frame().await {
            if frame.opcode == fastwebsockets::OpCode::Close {
                return frame.payload.to_vec();
            }
        }
        Vec::new()
    });
    match next_event(&mut conn).await {
        Some(Event::Pong(payload)) => assert_eq!(payload, b"p1"),
        other => panic!("expected Pong, got {other:?}"),
    }
    conn.close(1000, "tls done").await.unwrap();
    let close = within("the server", server_task).await.unwrap();
    assert_eq!(&close[..2], &1000u16.to_be_bytes());
}

#[tokio::test]
async fn wss_by_ip_address_checks_the_ip_san() {
    let mut fx = fixture().await;
    let mut conn = connect(&fx.url("127.0.0.1"), &fx.options(&fx.ca))
        .await
        .unwrap();
    let mut ws = fx.accept().await;
    conn.send(FrameKind::Text, b"by ip").await.unwrap();
    conn.flush().await.unwrap();
    assert_eq!(
        within("text", ws.read_frame())
            .await
            .unwrap()
            .payload
            .to_vec(),
        b"by ip"
    );
}

#[tokio::test]
async fn server_name_overrides_the_url_host() {
    let mut fx = fixture().await;
    // The URL names an address; the certificate is checked against `tagwire.test`.
    let options = fx.options(&fx.ca).with_server_name("tagwire.test");
    connect(&fx.url("127.0.0.1"), &options).await.unwrap();
    fx.accept().await;

    let options = fx.options(&fx.ca).with_server_name("wrong.test");
    let err = connect(&fx.url("127.0.0.1"), &options).await.unwrap_err();
    match &err {
        ConnectError::Tls { server_name, .. } => assert_eq!(server_name, "wrong.test"),
        other => panic!("expected Tls, got {other:?}"),
    }
    assert!(err.to_string().contains("server_name"), "{err}");
}

#[tokio::test]
async fn unknown_issuer_suggests_the_ca_parameter() {
    let fx = fixture().await;
    let err = connect(&fx.url("localhost"), &fx.options(&fx.other_ca))
        .await
        .unwrap_err();
    match &err {
        ConnectError::Tls { error, server_name } => {
            assert_eq!(server_name, "localhost");
            assert!(
                matches!(
                    error,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
                ),
                "{error:?}"
            );
        }
        other => panic!("expected Tls, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("not signed by a CA this client trusts") && text.contains("set `ca`"),
        "{text}"
    );
}

#[tokio::test]
async fn plain_ws_to_a_tls_port_fails_cleanly() {
    let fx = fixture().await;
    let url = WsUrl::parse(&format!("ws://127.0.0.1:{}/", fx.addr.port())).unwrap();
    let options = test_options().with_handshake_timeout(std::time::Duration::from_secs(2));
    // The TLS server gets an HTTP request and hangs up: some error, never a hang or panic.
    let result = within("connect", connect(&url, &options)).await;
    assert!(result.is_err());
}

#[tokio::test]
async fn wss_to_a_plain_port_explains() {
    let server = RawServer::start().await;
    let url = WsUrl::parse(&format!("wss://127.0.0.1:{}/", server.addr.port())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ca, _) = make_cert(dir.path(), "ca", "DNS:localhost");
    let options = test_options().with_tls(client_config(&ca));
    let client = tokio::spawn(async move { connect(&url, &options).await });
    let (mut stream, _) = within("accept", server.listener.accept()).await.unwrap();
    // A plain HTTP server answering the ClientHello with HTTP.
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"HTTP/1.1 400 Bad Request\r\n\r\n")
        .await
        .unwrap();
    let err = within("connect", client).await.unwrap().unwrap_err();
    assert!(matches!(err, ConnectError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("did not answer with TLS"), "{err}");
}

#[tokio::test]
async fn server_requiring_a_client_certificate_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path(), "server", "DNS:localhost");
    let (client_ca, _) = make_cert(dir.path(), "clients", "DNS:clients.test");
    let (addr, _upgraded) = tls_server(&cert, &key, Some(&client_ca)).await;
    let url = WsUrl::parse(&format!("wss://localhost:{}/", addr.port())).unwrap();
    let options = test_options().with_tls(client_config(&cert));
    // With TLS 1.3 the refusal arrives after the client's side of the
    // handshake, while it waits for the upgrade response.
    let err = connect(&url, &options).await.unwrap_err();
    assert!(
        matches!(
            err,
            ConnectError::Tls {
                error: rustls::Error::AlertReceived(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("client certificate"), "{err}");
}

/// `ConnectOptions::server_name`, set once, is what both the certificate check of
/// tagwire-tls-config's verifier and the SNI the server receives use: the server's
/// certificate is for `plant.example` only, and the URL names 127.0.0.1.
#[tokio::test]
async fn one_server_name_drives_the_tls_config_verifier_and_sni() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_cert(dir.path(), "plant", "DNS:plant.example");
    let (addr, mut snis) = sni_recording_server(&cert, &key).await;
    let url = WsUrl::parse(&format!("wss://127.0.0.1:{}/in", addr.port())).unwrap();
    let params = tagwire_tls_config::TlsParams::default().with_ca(cert.display().to_string());
    let config = tagwire_tls_config::build_client_config(&params).unwrap();

    let options = test_options()
        .with_tls(config.clone())
        .with_server_name("plant.example");
    // Connected means the TLS handshake and the WebSocket upgrade both passed.
    let conn = within("connect", connect(&url, &options)).await.unwrap();
    let sni = within("the server's handshake", snis.recv()).await.unwrap();
    assert_eq!(sni.as_deref(), Some("plant.example"));
    drop(conn);

    // Without it the URL's address is checked, and the advice names `server_name`.
    let err = connect(&url, &test_options().with_tls(config))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectError::Tls { .. }), "{err:?}");
    assert!(err.to_string().contains("set `server_name`"), "{err}");
    // An IP address sends no SNI at all.
    let sni = within("the server's handshake", snis.recv()).await.unwrap();
    assert_eq!(sni, None);
}

/// A TLS server with `cert` that reports the SNI of every handshake, then upgrades.
async fn sni_recording_server(
    cert: &Path,
    key: &Path,
) -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<Option<String>>,
) {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (config, tx) = (Arc::clone(&config), tx.clone());
            tokio::spawn(async move {
                // The ClientHello is read before the handshake goes on, so a client that
                // then refuses the certificate still reports the SNI it sent.
                let acceptor = rustls::server::Acceptor::default();
                let Ok(start) = tokio_rustls::LazyConfigAcceptor::new(acceptor, tcp).await else {
                    return;
                };
                let _ = tx.send(start.client_hello().server_name().map(str::to_owned));
                if let Ok(tls) = start.into_stream(config).await {
                    let (upgraded, _kept) = mpsc::unbounded_channel();
                    serve_upgrade(tls, upgraded).await;
                }
            });
        }
    });
    (addr, rx)
}
