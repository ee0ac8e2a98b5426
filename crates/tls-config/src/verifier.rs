//! The server certificate verifier: rustls's webpki verifier first, then two narrow
//! fallbacks for the certificates OpenSSL-based clients accept and webpki does not.
//!
//! 1. **CN fallback** (RFC 6125 §6.4.4, as OpenSSL and Python apply it): a certificate
//!    whose chain webpki accepted but whose name did not match, and that has *no*
//!    subjectAltName extension at all, is accepted when a subject CN matches the name. A
//!    certificate with a SAN is checked against the SAN only (webpki's answer stands).
//! 2. **X.509 v1 leaf issued directly by `ca`**: webpki refuses every v1 certificate. When
//!    `ca` is set, a v1 leaf is accepted when its issuer is one of the `ca` certificates,
//!    its signature verifies against that certificate's key (with the provider's
//!    signature algorithms), the dates are valid now, and a CN matches the name.
//!    Intermediates are never used on this path, and the public web CAs never take it.
//!
//! Each fallback logs a warning the first time it is used for an uplink. The TLS
//! handshake signatures are checked as rustls does; for a v1 leaf with the key read from
//! it by [`cert`](crate::cert), since webpki cannot parse the certificate.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{
    CertificateError, DigitallySignedStruct, Error, OtherError, PeerMisbehaved, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};

use crate::cert::Certificate;
use crate::x509::ServerNames;

/// Warnings given once per uplink, shared by every configuration built for it (a renewed
/// configuration does not warn again).
#[derive(Debug, Default)]
pub(crate) struct Notices {
    /// Which uplink, for the log line.
    pub(crate) label: String,
    cn_fallback: AtomicBool,
    v1_leaf: AtomicBool,
}

impl Notices {
    pub(crate) fn new(label: impl Into<String>) -> Arc<Notices> {
        Arc::new(Notices {
            label: label.into(),
            ..Notices::default()
        })
    }

    fn once(flag: &AtomicBool) -> bool {
        !flag.swap(true, Ordering::Relaxed)
    }
}

/// Why a v1 server certificate was refused. Carried inside rustls's `OtherError` so that
/// [`explain_tls_error`](crate::explain_tls_error) can say it in words.
#[derive(Debug)]
pub(crate) enum V1Refusal {
    /// No `ca` is set: v1 certificates are only accepted from a configured CA.
    NoCa,
    /// The issuer is not one of the `ca` certificates (an intermediate or another CA).
    NotIssuedByCa { issuer: String },
    /// The certificate is neither v3 nor v1 (a v2 certificate).
    Version(u32),
}

impl fmt::Display for V1Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V1Refusal::NoCa => f.write_str(
                "the server certificate is X.509 v1 (no extensions), which is accepted only \
                 when issued directly by the CA given as `ca`, and `ca` is not set: set `ca` \
                 to the CA that issued it, or have the server certificate reissued as v3 \
                 with a subjectAltName (openssl x509 -req … -extfile with \
                 subjectAltName=DNS:name)",
            ),
            V1Refusal::NotIssuedByCa { issuer } => write!(
                f,
                "the server certificate is X.509 v1 (no extensions) and its issuer \
                 \"{issuer}\" is not a certificate in `ca`: a v1 server certificate is \
                 accepted only when issued directly by a CA in `ca` (no intermediates); set \
                 `ca` to its issuer, or have the server certificate reissued as v3"
            ),
            V1Refusal::Version(v) => write!(
                f,
                "the server certificate is X.509 v{v}, which TLS clients do not accept: have \
                 it reissued as v3"
            ),
        }
    }
}

impl std::error::Error for V1Refusal {}

/// The verifier described in the module documentation.
#[derive(Debug)]
pub(crate) struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The certificates of `ca`; empty with the public web CAs (no v1 path then).
    ca: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
    notices: Arc<Notices>,
}

impl Verifier {
    /// `ca`: the configured CA certificates (empty for the public roots in `roots`).
    pub(crate) fn new(
        roots: RootCertStore,
        ca: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
        notices: Arc<Notices>,
    ) -> Result<Verifier, Error> {
        let algorithms = provider.signature_verification_algorithms;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|err| Error::General(err.to_string()))?;
        Ok(Verifier {
            webpki,
            ca,
            algorithms,
            notices,
        })
    }

    /// The v1 path: leaf issued by a `ca` certificate, signature, dates, then name.
    fn verify_v1(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let refuse = |why: V1Refusal| {
            Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(why))))
        };
        let bad_encoding = || Error::InvalidCertificate(CertificateError::BadEncoding);
        let leaf = Certificate::parse(end_entity.as_ref()).map_err(|_| bad_encoding())?;
        let version = leaf.version;
        if version != 1 {
            return Err(refuse(V1Refusal::Version(version)));
        }
        if self.ca.is_empty() {
            return Err(refuse(V1Refusal::NoCa));
        }
        let issuer = self
            .ca
            .iter()
            .filter_map(|ca| Certificate::parse(ca.as_ref()).ok())
            .find(|ca| ca.subject.raw == leaf.issuer.raw)
            .ok_or_else(|| {
                refuse(V1Refusal::NotIssuedByCa {
                    issuer: leaf.issuer.to_string(),
                })
            })?;
        let spki = SubjectPublicKeyInfoDer::from(issuer.public_key);
        if !self.signature_verifies(&spki, leaf.signature_algorithm, leaf.tbs, leaf.signature) {
            return Err(Error::InvalidCertificate(CertificateError::BadSignature));
        }

        let at = |secs: i64| {
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs.max(0) as u64))
        };
        let now_secs = now.as_secs() as i64;
        if now_secs < leaf.not_before {
            return Err(Error::InvalidCertificate(
                CertificateError::NotValidYetContext {
                    time: now,
                    not_before: at(leaf.not_before),
                },
            ));
        }
        if now_secs > leaf.not_after {
            return Err(Error::InvalidCertificate(
                CertificateError::ExpiredContext {
                    time: now,
                    not_after: at(leaf.not_after),
                },
            ));
        }

        let names = ServerNames::of(&leaf);
        check_cn(&names, server_name)?;
        if Notices::once(&self.notices.v1_leaf) {
            tracing::warn!(
                uplink = %self.notices.label,
                server = %server_name.to_str(),
                "the server certificate is X.509 v1 (no extensions); it was accepted because \
                 it is issued directly by `ca` and its subject CN matches: have it reissued as \
                 v3 with a subjectAltName"
            );
        }
        Ok(ServerCertVerified::assertion())
    }

    /// True when one of the provider's algorithms for this signature algorithm verifies
    /// `signature` over `message` with the key in `spki`.
    fn signature_verifies(
        &self,
        spki: &SubjectPublicKeyInfoDer<'_>,
        signature_alg: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let Ok(key) = webpki::RawPublicKeyEntity::try_from(spki) else {
            return false;
        };
        self.algorithms
            .all
            .iter()
            .filter(|alg| alg.signature_alg_id().as_ref() == signature_alg)
            .any(|alg| key.verify_signature(*alg, message, signature).is_ok())
    }

    /// The handshake signature of a v1 leaf, with its key read by [`Certificate`]: TLS 1.3
    /// through rustls's own function, TLS 1.2 trying each algorithm of the scheme as
    /// rustls does.
    fn verify_v1_handshake(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        tls13: bool,
    ) -> Result<HandshakeSignatureValid, Error> {
        let leaf = Certificate::parse(cert.as_ref())
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let spki = SubjectPublicKeyInfoDer::from(leaf.public_key);
        if tls13 {
            return rustls::crypto::verify_tls13_signature_with_raw_key(
                message,
                &spki,
                dss,
                &self.algorithms,
            );
        }
        let algs = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algs)| *algs)
            .ok_or(Error::PeerMisbehaved(
                PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ))?;
        let key = webpki::RawPublicKeyEntity::try_from(&spki)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if algs
            .iter()
            .any(|alg| key.verify_signature(*alg, message, dss.signature()).is_ok())
        {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(Error::InvalidCertificate(CertificateError::BadSignature))
        }
    }
}

/// The name check of both fallbacks: a DNS name against the subject CNs (never for IP
/// addresses, as OpenSSL does not either).
fn check_cn(names: &ServerNames, server_name: &ServerName<'_>) -> Result<(), Error> {
    let matches = match server_name {
        ServerName::DnsName(dns) => names.cn_matches(dns.as_ref()),
        _ => false,
    };
    if matches {
        return Ok(());
    }
    Err(Error::InvalidCertificate(
        CertificateError::NotValidForNameContext {
            expected: server_name.to_owned(),
            presented: names
                .common_names
                .iter()
                .map(|cn| format!("CN={cn}"))
                .collect(),
        },
    ))
}

/// True for webpki's "this is not X.509 v3" refusal, which rustls passes on as an
/// `OtherError`.
fn is_unsupported_version(err: &Error) -> bool {
    matches!(
        err,
        Error::InvalidCertificate(CertificateError::Other(other))
            if matches!(
                other.0.downcast_ref::<webpki::Error>(),
                Some(webpki::Error::UnsupportedCertVersion)
            )
    )
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let err = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(err) => err,
        };
        match &err {
            // webpki checks the name after the chain: the chain is valid here.
            Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => {
                let Ok(leaf) = Certificate::parse(end_entity.as_ref()) else {
                    return Err(err);
                };
                let names = ServerNames::of(&leaf);
                if names.has_san {
                    return Err(err);
                }
                // Without a SAN, the CNs are what the certificate is valid for: name them.
                check_cn(&names, server_name)?;
                if Notices::once(&self.notices.cn_fallback) {
                    tracing::warn!(
                        uplink = %self.notices.label,
                        server = %server_name.to_str(),
                        "the server certificate has no subjectAltName; its subject CN was \
                         accepted as the host name (as OpenSSL does): have it reissued with a \
                         subjectAltName"
                    );
                }
                Ok(ServerCertVerified::assertion())
            }
            _ if is_unsupported_version(&err) => self.verify_v1(end_entity, server_name, now),
            _ => Err(err),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        match self.webpki.verify_tls12_signature(message, cert, dss) {
            Err(err) if is_unsupported_version(&err) => {
                self.verify_v1_handshake(message, cert, dss, false)
            }
            other => other,
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        match self.webpki.verify_tls13_signature(message, cert, dss) {
            Err(err) if is_unsupported_version(&err) => {
                self.verify_v1_handshake(message, cert, dss, true)
            }
            other => other,
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
