//! What is specific to tls-config's tests: an in-memory TLS handshake against a rustls
//! server that requires client certificates, and assertions. The certificates and keys
//! are made with the `openssl` command line by `tagwire-test-pki` ([`Pki`] is its
//! per-test [`TempPki`](tagwire_test_pki::TempPki)).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{Read as _, Write as _};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, RootCertStore, ServerConfig,
    ServerConnection, SideData,
};

#[allow(unused_imports)] // each test binary uses a different part
pub use tagwire_test_pki::{
    p as path, Form as InputForm, Identity, KeyAlg, KeyFormat, LegacyCipher, TempPki as Pki,
    PASSWORD,
};

/// rustls servers for a [`Pki`].
pub trait ServerConfigs {
    /// A rustls server using this PKI's server identity that requires (or only allows)
    /// a client certificate issued by this CA.
    fn server_config(&self, require_client_cert: bool) -> Arc<ServerConfig>;

    /// Like [`ServerConfigs::server_config`] with a chosen server identity and,
    /// optionally, only TLS 1.2.
    fn server_config_for(
        &self,
        identity: &Identity,
        require_client_cert: bool,
        tls12_only: Option<()>,
    ) -> Arc<ServerConfig>;
}

impl ServerConfigs for Pki {
    fn server_config(&self, require_client_cert: bool) -> Arc<ServerConfig> {
        self.server_config_for(&self.server, require_client_cert, None)
    }

    fn server_config_for(
        &self,
        identity: &Identity,
        require_client_cert: bool,
        tls12_only: Option<()>,
    ) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&self.ca_cert).unwrap())
            .unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        let verifier = if require_client_cert {
            verifier
        } else {
            verifier.allow_unauthenticated()
        }
        .build()
        .unwrap();
        let builder = ServerConfig::builder_with_provider(provider.clone());
        let builder = match tls12_only {
            Some(()) => builder.with_protocol_versions(&[&rustls::version::TLS12]),
            None => builder.with_safe_default_protocol_versions(),
        }
        .unwrap();
        let chain = CertificateDer::pem_file_iter(&identity.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&identity.key).unwrap();
        // A resolver rather than `with_single_cert`, which parses the certificate with
        // webpki and so refuses to serve the X.509 v1 certificates some tests need.
        let key = provider.key_provider.load_private_key(key).unwrap();
        let certified = rustls::sign::CertifiedKey::new(chain, key);
        Arc::new(
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified))),
        )
    }
}

/// How a handshake went wrong, from both ends.
#[derive(Debug)]
pub struct HandshakeFailure {
    pub client: Option<rustls::Error>,
    pub server: Option<rustls::Error>,
}

/// Runs a TLS handshake in memory between `client` and `server`, then sends one message
/// each way (with TLS 1.3 the server checks the client certificate after the client
/// considers the handshake done; the data exchange makes a rejection visible). Returns the
/// client certificate chain the server accepted.
pub fn handshake(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    server_name: &str,
) -> Result<Vec<CertificateDer<'static>>, Box<HandshakeFailure>> {
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let mut client = ClientConnection::new(client, name).map_err(|e| {
        Box::new(HandshakeFailure {
            client: Some(e),
            server: None,
        })
    })?;
    let mut server = ServerConnection::new(server).unwrap();

    client.writer().write_all(b"hello from client").unwrap();
    let mut received = Vec::new();
    for _ in 0..32 {
        let to_server = transfer(&mut client, &mut server);
        if let Err(err) = server.process_new_packets() {
            return Err(Box::new(fail_with_alert(
                &mut server,
                &mut client,
                None,
                Some(err),
            )));
        }
        if !server.is_handshaking() {
            let mut buf = [0u8; 64];
            if let Ok(n) = server.reader().read(&mut buf) {
                if n > 0 {
                    received.extend_from_slice(&buf[..n]);
                    server.writer().write_all(b"hello from server").unwrap();
                }
            }
        }
        let to_client = transfer(&mut server, &mut client);
        if let Err(err) = client.process_new_packets() {
            return Err(Box::new(fail_with_alert(
                &mut client,
                &mut server,
                Some(err),
                None,
            )));
        }
        let mut buf = [0u8; 64];
        if let Ok(n) = client.reader().read(&mut buf) {
            if n > 0 {
                assert_eq!(&buf[..n], b"hello from server");
                assert_eq!(received, b"hello from client");
                return Ok(server
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                    .unwrap_or_default());
            }
        }
        if to_server == 0 && to_client == 0 {
            break;
        }
    }
    panic!("the in-memory handshake stalled without an error")
}

/// One side failed: deliver its alert to the other side, so both errors are seen.
fn fail_with_alert<A: SideData, B: SideData>(
    failed: &mut ConnectionCommon<A>,
    peer: &mut ConnectionCommon<B>,
    client_err: Option<rustls::Error>,
    server_err: Option<rustls::Error>,
) -> HandshakeFailure {
    transfer(failed, peer);
    let peer_err = peer.process_new_packets().err();
    match (client_err, server_err) {
        (Some(c), None) => HandshakeFailure {
            client: Some(c),
            server: peer_err,
        },
        (None, s) => HandshakeFailure {
            client: peer_err,
            server: s,
        },
        (c, s) => HandshakeFailure {
            client: c,
            server: s,
        },
    }
}

/// Moves all pending TLS bytes from `from` to `to`; returns how many.
fn transfer<A: SideData, B: SideData>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
) -> usize {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).unwrap();
    }
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).unwrap();
    }
    bytes.len()
}

/// Asserts a message does not leak the test password.
pub fn assert_no_password(message: &str) {
    assert!(
        !message.contains(PASSWORD),
        "the password leaked into: {message}"
    );
}
