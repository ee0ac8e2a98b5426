//! `tagwire-tls-config`: the TLS parameters of a WebSocket uplink (`ca`, `cert`, `key`,
//! `keypass`) turned into an `Arc<rustls::ClientConfig>`, with an error that
//! names the parameter and says what to do when something is wrong. No sockets.
//!
//! * **Inputs**: `ca`, `cert` and `key` each accept a file path, the PEM text itself, or
//!   the base64 of a PEM file (what Neuron's dashboard sends); see [`PemSource::detect`].
//!   `keypass` is a [`PasswordSource`]: [`PasswordSource::literal`], [`PasswordSource::env`]
//!   or [`PasswordSource::file`]; a configuration file's `keypass` string (`env:NAME`,
//!   `file:/path`, `literal:...` or the password itself) goes through
//!   [`PasswordSource::from_config`]. An empty string counts as "not set", as Neuron sends
//!   empty strings for unset parameters.
//! * **Trust**: with `ca`, the server must chain to one of the certificates in it, and
//!   *only* to those: a private CA deployment should not also accept every public CA.
//!   Without `ca`, the public web CAs of `webpki-roots`, compiled in (gateways often have no
//!   CA bundle). Host name verification is always on, against the name the connection
//!   gives rustls (the URL host, or `tagwire_ws_client::ConnectOptions::server_name`,
//!   which is also the SNI sent).
//! * **Client certificate**: `cert` holds the client certificate first, then any
//!   intermediates; `key` its private key, as PKCS#8, PKCS#1 (RSA) or SEC1 (EC), plain or
//!   encrypted (the `encrypted-keys` feature): PBES2 PKCS#8 (PBKDF2 with
//!   HMAC-SHA-1/224/256/384/512 or scrypt; AES-CBC, DES-EDE3-CBC, DES-CBC), and OpenSSL's
//!   legacy `Proc-Type: 4,ENCRYPTED` PEM (AES-CBC, DES-EDE3-CBC, DES-CBC). Without the
//!   feature an encrypted key is refused with the `openssl pkey` command that writes it
//!   unencrypted. Older PBES1 and PKCS#12-scheme PEM keys get an error naming
//!   the `openssl` command that converts the key. Or `cert` is a whole PKCS#12 bundle
//!   (file or base64, recognised by content; OpenSSL 3 defaults and `-legacy`), `key` is
//!   left out and `keypass` opens the bundle. Key types: RSA 2048–8192 bits, ECDSA P-256
//!   and P-384, Ed25519. The certificate is sent as given, whatever its X.509 version or
//!   extensions (the server judges it); before connecting it must parse as X.509 and its
//!   public key must be the key's, compared as SubjectPublicKeyInfo. `keypass` is only
//!   read when the key is encrypted; given for a plain key it is ignored. An empty
//!   `keypass` is tried, and if it fails the error says `keypass` is empty rather than
//!   "wrong password". scrypt parameters needing more than 256 MiB are refused.
//! * **Server certificates OpenSSL accepts and webpki does not**: a certificate without
//!   any subjectAltName is checked against its subject CN, and an X.509 v1 leaf issued
//!   directly by a `ca` certificate is verified here (signature, dates, CN); both log a
//!   warning once per uplink. Everything else is webpki's verdict.
//! * **Renewal**: [`ClientConfigSource`] re-reads the files before each connection and
//!   keeps the last good configuration when the new files are unusable.
//! * **Crypto**: the `ring` provider, chosen explicitly, so another provider compiled into
//!   the same program cannot make rustls panic; TLS 1.2 and 1.3.
//! * **Secrets**: passwords and inline key text never appear in an error, `Debug` or log.
//!
//! When a handshake fails later, [`explain_tls_error`] (or [`explain_io_error`]) turns the
//! rustls error into advice naming the parameter to change.
//!
//! # Examples
//!
//! Deciding what a value is, and that errors name their parameter:
//!
//! ```
//! use tagwire_tls_config::{build_client_config, PemSource, TlsParams};
//!
//! assert!(matches!(PemSource::detect("/etc/tagwire/ca.pem"), PemSource::File(_)));
//!
//! // No parameters at all: server verified against the public web CAs, no client cert.
//! let config = build_client_config(&TlsParams::default()).unwrap();
//! assert!(!config.client_auth_cert_resolver.has_certs());
//!
//! let params = TlsParams::default().with_ca("/nonexistent/ca.pem");
//! let err = build_client_config(&params).unwrap_err();
//! assert_eq!(err.parameter(), "ca");
//! assert_eq!(
//!     err.to_string(),
//!     "ca: file /nonexistent/ca.pem not found: check the path, or paste the PEM text or \
//!      its base64"
//! );
//! ```
//!
//! Two-way TLS with an encrypted key whose password sits in an environment variable:
//!
//! ```no_run
//! use tagwire_tls_config::{build_client_config, PasswordSource, TlsParams};
//!
//! let params = TlsParams::default()
//!     .with_ca("/etc/tagwire/ca.pem")
//!     .with_cert("/etc/tagwire/client.pem")
//!     .with_key("/etc/tagwire/client.key")
//!     .with_keypass(PasswordSource::env("TAGWIRE_KEYPASS"));
//! match build_client_config(&params) {
//!     // hand `config` to tagwire_ws_client::ConnectOptions::with_tls (or to tokio-rustls)
//!     Ok(config) => println!("ready, {} ALPN protocols", config.alpn_protocols.len()),
//!     // e.g. "key: wrong password for the encrypted PKCS#8 key in /etc/tagwire/client.key"
//!     Err(err) => eprintln!("{err}"),
//! }
//! ```
#![deny(missing_docs)]

// One of two: decryption (the `encrypted-keys` feature), or a refusal that names the
// feature and the `openssl` command that decrypts the key.
#[cfg(feature = "encrypted-keys")]
mod decrypt;
#[cfg(not(feature = "encrypted-keys"))]
#[path = "no_decrypt.rs"]
mod decrypt;

mod cert;
mod der;
mod error;
mod explain;
mod key;
#[cfg(feature = "encrypted-keys")]
mod legacy;
mod oids;
mod password;
mod pem;
mod pkcs12;
mod renewal;
mod source;
mod verifier;
mod x509;

use std::fmt;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

pub use error::{ErrorKind, TlsConfigError};
pub use explain::{explain_io_error, explain_tls_error};
pub use password::{PasswordSource, Secret};
pub use renewal::ClientConfigSource;
pub use source::PemSource;
pub use x509::CertSummary;

use key::PemWanted;
use source::Origin;
use verifier::{Notices, Verifier};

/// The TLS parameters of one uplink, with Neuron's names.
///
/// `ca`, `cert` and `key` are raw values: a path, PEM text or base64 of PEM
/// ([`PemSource::detect`] decides). `None` and `Some("")` both mean "not set".
///
/// The name the server certificate is checked against (and sent as SNI) is not here: it
/// belongs to the connection, `tagwire_ws_client::ConnectOptions::server_name`, which
/// hands it to rustls and so to this crate's verifier. One place, so it cannot be set in
/// one and ignored in the other.
///
/// `#[non_exhaustive]`: build it from [`Default`] with the `with_*` setters.
///
/// The `Debug` form shows paths but not inline PEM text (an inline key is a secret) and
/// never a password.
///
/// ```
/// use tagwire_tls_config::{PasswordSource, TlsParams};
///
/// let params = TlsParams::default()
///     .with_ca("/etc/tagwire/ca.pem")
///     .with_cert("/etc/tagwire/client.pem")
///     .with_key("/etc/tagwire/client.key")
///     .with_keypass(PasswordSource::env("TAGWIRE_KEYPASS"));
/// assert_eq!(params.ca.as_deref(), Some("/etc/tagwire/ca.pem"));
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TlsParams {
    /// The CA certificate(s) the server must chain to. Not set: the public web CAs.
    pub ca: Option<String>,
    /// The client certificate, followed by any intermediate certificates.
    pub cert: Option<String>,
    /// The client certificate's private key.
    pub key: Option<String>,
    /// The password of an encrypted `key`.
    pub keypass: Option<PasswordSource>,
}

/// Setters, for building the parameters from [`Default`] in one expression.
impl TlsParams {
    /// Sets [`ca`](Self::ca): a path, PEM text or base64 of PEM.
    #[must_use]
    pub fn with_ca(mut self, ca: impl Into<String>) -> Self {
        self.ca = Some(ca.into());
        self
    }

    /// Sets [`cert`](Self::cert): a path, PEM text or base64 of PEM, or a PKCS#12 bundle.
    #[must_use]
    pub fn with_cert(mut self, cert: impl Into<String>) -> Self {
        self.cert = Some(cert.into());
        self
    }

    /// Sets [`key`](Self::key): a path, PEM text or base64 of PEM.
    #[must_use]
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets [`keypass`](Self::keypass).
    #[must_use]
    pub fn with_keypass(mut self, keypass: PasswordSource) -> Self {
        self.keypass = Some(keypass);
        self
    }
}

impl fmt::Debug for TlsParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |value: &Option<String>| value.as_deref().map(PemSource::detect);
        f.debug_struct("TlsParams")
            .field("ca", &shown(&self.ca))
            .field("cert", &shown(&self.cert))
            .field("key", &shown(&self.key))
            .field("keypass", &self.keypass)
            .finish()
    }
}

/// The crypto provider every config of this crate uses: rustls's `ring` provider.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client configuration for `params`, checking everything that can be checked
/// before connecting: files exist and hold PEM of the right kind, the key decrypts with
/// `keypass` and belongs to the certificate.
///
/// The first problem found is returned, checked in the order `ca`, `cert`, `key`,
/// `keypass`.
pub fn build_client_config(params: &TlsParams) -> Result<Arc<ClientConfig>, TlsConfigError> {
    build(params, &Notices::new(String::new())).map(|built| built.config)
}

/// What [`build`] made: the configuration, and what the client certificate says about
/// itself (for the logs and `tagwire check`).
pub(crate) struct Built {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) client_cert: Option<CertSummary>,
    /// The client certificate chain as sent, to tell a renewed one from the same.
    pub(crate) chain: Vec<CertificateDer<'static>>,
}

/// [`build_client_config`] with the once-per-uplink warnings of the verifier shared
/// through `notices`.
pub(crate) fn build(params: &TlsParams, notices: &Arc<Notices>) -> Result<Built, TlsConfigError> {
    let provider = crypto_provider();
    let (roots, ca) = match non_empty(&params.ca) {
        Some(ca) => load_ca(ca)?,
        None => (
            RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
            Vec::new(),
        ),
    };
    let client_key = match (non_empty(&params.cert), non_empty(&params.key)) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(TlsConfigError::new(
                "cert",
                ErrorKind::Incomplete,
                "`key` is set but `cert` is not: a private key needs its client certificate",
            ))
        }
        (Some(cert), key) => Some(load_client_key(
            cert,
            key,
            params.keypass.as_ref(),
            &provider,
        )?),
    };

    let verifier = Verifier::new(roots, ca, Arc::clone(&provider), Arc::clone(notices))
        .map_err(|err| TlsConfigError::new("ca", ErrorKind::Rustls, err.to_string()))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsConfigError::new("ca", ErrorKind::Rustls, err.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier));
    let (config, client_cert, chain) = match client_key {
        Some(certified) => {
            let summary = CertSummary::of(&certified.cert[0]);
            let chain = certified.cert.clone();
            (
                builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified))),
                summary,
                chain,
            )
        }
        None => (builder.with_no_client_auth(), None, Vec::new()),
    };
    Ok(Built {
        config: Arc::new(config),
        client_cert,
        chain,
    })
}

/// Reads the certificates of a PEM parameter (a path, PEM text or base64 of PEM), in file
/// order. `parameter` names the parameter in errors, so that other users of this crate
/// (the daemon's `sink --tls-cert`) get messages about their own option.
pub fn load_certificates(
    parameter: &'static str,
    value: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let loaded = PemSource::detect(value).read(parameter)?;
    read_certificates(parameter, &loaded)
}

/// Reads and, when needed, decrypts the one private key of a PEM parameter (a path, PEM
/// text or base64 of PEM). `keypass` is read only when the key is encrypted.
pub fn load_private_key(
    parameter: &'static str,
    value: &str,
    keypass: Option<&PasswordSource>,
) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let loaded = PemSource::detect(value).read(parameter)?;
    key::load(parameter, &loaded, keypass)
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// The trust anchors of `ca`, and its certificates as given (for the v1 path of the
/// verifier).
fn load_ca(value: &str) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsConfigError> {
    let loaded = PemSource::detect(value).read("ca")?;
    let certs = read_certificates("ca", &loaded)?;
    let mut roots = RootCertStore::empty();
    for (index, cert) in certs.iter().enumerate() {
        roots.add(cert.clone()).map_err(|err| {
            TlsConfigError::new(
                "ca",
                ErrorKind::BadCertificate,
                format!(
                    "certificate #{} in {} cannot be used as a CA: {}",
                    index + 1,
                    loaded.origin,
                    explain::certificate_problem(&err)
                ),
            )
        })?;
    }
    Ok((roots, certs))
}

fn read_certificates(
    parameter: &'static str,
    loaded: &source::Loaded,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let origin = &loaded.origin;
    let text = key::pem_text(parameter, loaded, PemWanted::Certificate)?;
    let blocks = pem::blocks(&text).map_err(|msg| key::not_valid_pem(parameter, origin, &msg))?;
    let mut certs = Vec::new();
    for block in blocks.iter().filter(|b| b.label == "CERTIFICATE") {
        let cert = CertificateDer::from_pem_slice(block.raw.as_bytes()).map_err(|err| {
            TlsConfigError::new(
                parameter,
                ErrorKind::NotPem,
                format!(
                    "certificate #{} in {origin} is not valid PEM: {err}",
                    certs.len() + 1
                ),
            )
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        let mut message = format!(
            "no certificate (-----BEGIN CERTIFICATE-----) in {origin}{}",
            key::holds(&blocks)
        );
        if blocks.iter().any(|b| b.label.ends_with("PRIVATE KEY")) {
            message.push_str("; `cert` must be the certificate, `key` the private key");
        }
        return Err(TlsConfigError::new(
            parameter,
            ErrorKind::NoCertificate,
            message,
        ));
    }
    Ok(certs)
}

/// Loads `cert` and `key` (or the PKCS#12 bundle in `cert`), and checks that they belong
/// together. The certificate is not judged beyond parsing as X.509: it is the server's to
/// accept, whatever its version or extensions.
fn load_client_key(
    cert: &str,
    key: Option<&str>,
    keypass: Option<&PasswordSource>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsConfigError> {
    let is_bundle = key.is_none();
    let (chain, key_der, cert_origin, key_origin) = match pkcs12::detect(cert) {
        Some((bytes, origin)) => {
            if key.is_some() {
                return Err(TlsConfigError::new(
                    "key",
                    ErrorKind::Incomplete,
                    format!(
                        "`cert` is a PKCS#12 bundle ({origin}), which holds the private key \
                         itself: remove `key` (`keypass` unlocks the bundle)"
                    ),
                ));
            }
            let bundle = pkcs12::open(&bytes, origin, keypass)?;
            let origin = bundle.origin;
            (bundle.chain, bundle.key, origin.clone(), origin)
        }
        None => {
            let Some(key) = key else {
                return Err(TlsConfigError::new(
                    "key",
                    ErrorKind::Incomplete,
                    "`cert` is set but `key` is not: a client certificate needs its private \
                     key (only a PKCS#12 bundle in `cert` holds its own key)",
                ));
            };
            let cert_loaded = PemSource::detect(cert).read("cert")?;
            let chain = read_certificates("cert", &cert_loaded)?;
            let key_loaded = PemSource::detect(key).read("key")?;
            let key_der = key::load("key", &key_loaded, keypass)?;
            (chain, key_der, cert_loaded.origin, key_loaded.origin)
        }
    };
    for (index, der) in chain.iter().enumerate() {
        if let Some(why) = x509::parse_error(der) {
            return Err(TlsConfigError::new(
                "cert",
                ErrorKind::BadCertificate,
                format!(
                    "certificate #{} in {cert_origin} is not a valid X.509 certificate ({why}): \
                     give the certificate in PEM (-----BEGIN CERTIFICATE-----)",
                    index + 1
                ),
            ));
        }
    }
    let signing_key = provider
        .key_provider
        .load_private_key(key_der.clone_key())
        .map_err(|err| {
            // A bundle's key is part of `cert`: name the parameter the user can change.
            let parameter = if is_bundle { "cert" } else { "key" };
            key::unusable(parameter, &key_origin, &key_der, &err)
        })?;
    drop(key_der);

    let mut chain = chain;
    if is_bundle {
        // A bundle's certificates come in no promised order: the key's own goes first,
        // the others (its issuers) follow in bundle order.
        if let Some(index) = chain
            .iter()
            .position(|cert| key_matches(cert, signing_key.as_ref()) == Some(true))
        {
            let own = chain.remove(index);
            chain.insert(0, own);
        }
    }
    let certified = CertifiedKey::new(chain, signing_key);
    match key_matches(&certified.cert[0], certified.key.as_ref()) {
        // `None`: the provider cannot tell the public key; ring always can, but do not
        // refuse a key only because it cannot be checked.
        Some(true) | None => Ok(certified),
        Some(false) => Err(mismatch_error(&certified, &key_origin, &cert_origin)),
    }
}

/// Compares the key's public half with the certificate's SubjectPublicKeyInfo, which works
/// for any certificate version (rustls's own check parses the certificate with webpki,
/// which only reads v3).
fn key_matches(cert: &CertificateDer<'_>, key: &dyn rustls::sign::SigningKey) -> Option<bool> {
    let spki = key.public_key()?;
    x509::has_public_key(cert, spki.as_ref())
}

/// The key does not match the first certificate. If it matches a later one, the file is
/// merely in the wrong order, and the message says so.
fn mismatch_error(
    certified: &CertifiedKey,
    key_origin: &Origin,
    cert_origin: &Origin,
) -> TlsConfigError {
    let position = certified
        .cert
        .iter()
        .skip(1)
        .position(|cert| key_matches(cert, certified.key.as_ref()) == Some(true));
    match position {
        Some(index) => TlsConfigError::new(
            "cert",
            ErrorKind::KeyMismatch,
            format!(
                "the key in {key_origin} belongs to certificate #{} in {cert_origin}, but the \
                 client certificate must come first, followed by its issuers: reorder the file",
                index + 2
            ),
        ),
        None => TlsConfigError::new(
            "key",
            ErrorKind::KeyMismatch,
            format!(
                "the private key in {key_origin} does not belong to the certificate in \
                 {cert_origin} (their public keys differ): give the key the certificate was \
                 issued for"
            ),
        ),
    }
}
