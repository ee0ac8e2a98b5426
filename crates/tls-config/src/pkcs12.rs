//! `cert` given as a PKCS#12 (`.p12` / `.pfx`) bundle: recognised by content (a file, or
//! the base64 of one), unlocked with `keypass`, read by `p12-keystore` (current OpenSSL
//! defaults, AES-256-CBC with PBKDF2 and a SHA-256 MAC, and `-legacy` RC2/3DES with SHA-1).
//!
//! Reading needs the crate's `pkcs12` feature; without it a bundle is still recognised,
//! and refused with the command that converts it.

#[cfg(feature = "pkcs12")]
use p12_keystore::Pkcs12Archive;
use pkcs8::der::zeroize::Zeroizing;
#[cfg(feature = "pkcs12")]
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::der::sequence_elements;
use crate::error::{ErrorKind, TlsConfigError};
use crate::password::PasswordSource;
use crate::source::{decode_base64, Origin, PemSource};

/// The certificates and the key of a bundle; the certificates in bundle order, so the
/// key's own certificate is not necessarily first.
pub(crate) struct Bundle {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
    pub(crate) origin: Origin,
}

/// The bytes of `value` when it is a PKCS#12 bundle: a file holding one, or its base64.
/// `None` for anything else (PEM, a missing file), which the PEM path then reports on.
pub(crate) fn detect(value: &str) -> Option<(Zeroizing<Vec<u8>>, Origin)> {
    if let PemSource::File(path) = PemSource::detect(value) {
        if let Ok(bytes) = std::fs::read(&path) {
            let bytes = Zeroizing::new(bytes);
            return is_pkcs12(&bytes).then_some((bytes, Origin::File(path)));
        }
    }
    let decoded = decode_base64(value)?;
    is_pkcs12(&decoded).then_some((decoded, Origin::Base64Pkcs12))
}

/// A DER `PFX`: `SEQUENCE { INTEGER 3, ContentInfo, … }`.
fn is_pkcs12(bytes: &[u8]) -> bool {
    sequence_elements(bytes).is_some_and(|parts| parts.len() >= 2 && parts[0] == [3])
}

/// Without the `pkcs12` feature: the bundle is refused, saying how to convert it or
/// which feature reads it.
#[cfg(not(feature = "pkcs12"))]
pub(crate) fn open(
    _bytes: &[u8],
    origin: Origin,
    _keypass: Option<&PasswordSource>,
) -> Result<Bundle, TlsConfigError> {
    Err(TlsConfigError::new(
        "cert",
        ErrorKind::UnsupportedEncryption,
        format!(
            "`cert` is a PKCS#12 bundle ({origin}), and this program was built without \
             PKCS#12 support (tagwire-tls-config's `pkcs12` feature): convert it to PEM with \
             `openssl pkcs12 -in {} -out client.pem -nodes` (add -legacy for old bundles) \
             and give `cert` and `key` as PEM",
            origin.path_for_command()
        ),
    ))
}

/// Opens the bundle with `keypass` (an unset `keypass` is tried as the empty password,
/// which `openssl pkcs12 -export -passout pass:` makes).
#[cfg(feature = "pkcs12")]
pub(crate) fn open(
    bytes: &[u8],
    origin: Origin,
    keypass: Option<&PasswordSource>,
) -> Result<Bundle, TlsConfigError> {
    let secret = keypass.map(PasswordSource::resolve).transpose()?;
    let password = match &secret {
        Some(secret) => std::str::from_utf8(secret.expose()).map_err(|_| {
            TlsConfigError::new(
                "keypass",
                ErrorKind::WrongPassword,
                format!(
                    "the password for the PKCS#12 bundle {origin} is not valid UTF-8 text, so it \
                     cannot be its password: check `keypass`"
                ),
            )
        })?,
        None => "",
    };
    let archive = Pkcs12Archive::from_pkcs12(bytes, password).map_err(|err| match err {
        p12_keystore::error::Error::MacError(_) if keypass.is_none() => TlsConfigError::new(
            "keypass",
            ErrorKind::KeypassMissing,
            format!(
                "the PKCS#12 bundle {origin} needs a password, but `keypass` is not set: \
                     set keypass to the password, to file:/path/of/a/password/file or to \
                     env:VARIABLE"
            ),
        ),
        p12_keystore::error::Error::MacError(_) => TlsConfigError::new(
            "keypass",
            ErrorKind::WrongPassword,
            format!("wrong password for the PKCS#12 bundle {origin}"),
        ),
        p12_keystore::error::Error::UnsupportedEncryptionScheme
        | p12_keystore::error::Error::UnsupportedMacAlgorithm => TlsConfigError::new(
            "cert",
            ErrorKind::UnsupportedEncryption,
            format!(
                "the PKCS#12 bundle {origin} is protected with a scheme this program does \
                     not read ({err}): convert it to PEM with `openssl pkcs12 -in {} -out \
                     client.pem` (add -legacy for old bundles) and give `cert` and `key` as \
                     PEM",
                origin.path_for_command()
            ),
        ),
        other => TlsConfigError::new(
            "cert",
            ErrorKind::BadCertificate,
            format!("the PKCS#12 bundle {origin} cannot be read: {other}"),
        ),
    })?;
    // One key, whatever the bags' localKeyId and friendlyName attributes say (exports
    // from Windows and Java differ in those): the caller puts that key's certificate first.
    let key = match archive.keys.as_slice() {
        [one] => one.key.as_der().to_vec(),
        keys => {
            return Err(TlsConfigError::new(
                "cert",
                if keys.is_empty() {
                    ErrorKind::NoKey
                } else {
                    ErrorKind::MultipleKeys
                },
                format!(
                    "the PKCS#12 bundle {origin} holds {} private keys, where one is needed: \
                     export it again with the client certificate's key only (`openssl pkcs12 \
                     -export -inkey client.key -in client.pem …`)",
                    keys.len()
                ),
            ))
        }
    };
    if archive.certs.is_empty() {
        return Err(TlsConfigError::new(
            "cert",
            ErrorKind::NoCertificate,
            format!(
                "the PKCS#12 bundle {origin} holds no certificate: export it again with the \
                 client certificate (`-in client.pem`)"
            ),
        ));
    }
    let certs = archive
        .certs
        .iter()
        .map(|bag| CertificateDer::from(bag.cert.as_der().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    Ok(Bundle {
        chain: certs,
        key,
        origin,
    })
}
