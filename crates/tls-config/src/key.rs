//! Private keys: finding the key block, handing an encrypted one to [`crate::decrypt`],
//! and naming what is wrong.

use pkcs8::der::zeroize::Zeroizing;
use pkcs8::ObjectIdentifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::PrivateKeyDer;

use crate::error::{ErrorKind, TlsConfigError};
use crate::oids;
use crate::password::PasswordSource;
use crate::pem::{self, Block};
use crate::source::{Loaded, Origin};

/// Labels of the unencrypted key blocks rustls reads.
const PLAIN_KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];

/// Finds the one private key in `loaded` and returns it unencrypted, ready for rustls.
pub(crate) fn load(
    parameter: &'static str,
    loaded: &Loaded,
    keypass: Option<&PasswordSource>,
) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let origin = &loaded.origin;
    let text = pem_text(parameter, loaded, PemWanted::Key)?;
    let blocks = pem::blocks(&text).map_err(|msg| not_valid_pem(parameter, origin, &msg))?;

    let keys: Vec<&Block<'_>> = blocks
        .iter()
        .filter(|b| b.label.ends_with("PRIVATE KEY"))
        .collect();
    let block = match keys.as_slice() {
        [] => {
            let mut message = format!("no private key in {origin}{}", holds(&blocks));
            if blocks.iter().any(|b| b.label == "CERTIFICATE") {
                message.push_str("; `key` must be the private key, `cert` the certificate");
            }
            return Err(TlsConfigError::new(parameter, ErrorKind::NoKey, message));
        }
        [one] => *one,
        _ => {
            return Err(TlsConfigError::new(
                parameter,
                ErrorKind::MultipleKeys,
                format!(
                    "{origin} holds {} private keys; give a file with only the client key",
                    keys.len()
                ),
            ))
        }
    };

    let ctx = KeyContext {
        parameter,
        origin,
        keypass,
    };
    if block.label == "ENCRYPTED PRIVATE KEY" {
        ctx.decrypt_pkcs8(block)
    } else if block
        .header("Proc-Type")
        .is_some_and(|v| v.to_ascii_uppercase().contains("ENCRYPTED"))
    {
        ctx.decrypt_legacy(block)
    } else if PLAIN_KEY_LABELS.contains(&block.label) {
        PrivateKeyDer::from_pem_slice(block.raw.as_bytes()).map_err(|err| {
            TlsConfigError::new(
                parameter,
                ErrorKind::BadKey,
                format!("the {} in {origin} cannot be read: {err}", block.label),
            )
        })
    } else {
        Err(unsupported_label(parameter, origin, block.label))
    }
}

/// Names the key type and says why rustls (ring) cannot sign with it. Called when the
/// crypto provider refused a key that decoded fine.
pub(crate) fn unusable(
    parameter: &'static str,
    origin: &Origin,
    key: &PrivateKeyDer<'_>,
    provider_error: &rustls::Error,
) -> TlsConfigError {
    let supported = "use an RSA (2048 to 8192 bits), ECDSA P-256/P-384 or Ed25519 key";
    match key_type(key) {
        KeyType::Rsa { bits: Some(bits) } if !(2048..=8192).contains(&bits) => TlsConfigError::new(
            parameter,
            ErrorKind::UnsupportedKeyType,
            format!(
                "the key in {origin} is a {bits}-bit RSA key; RSA keys must have 2048 to 8192 \
                 bits: make a new key, e.g. `openssl genpkey -algorithm RSA -pkeyopt \
                 rsa_keygen_bits:2048`"
            ),
        ),
        KeyType::Ec { curve: Some(curve) }
            if !matches!(oids::name(&curve), Some("P-256" | "P-384")) =>
        {
            TlsConfigError::new(
                parameter,
                ErrorKind::UnsupportedKeyType,
                format!(
                    "the key in {origin} is an EC key on curve {}; {supported}",
                    oids::describe(&curve)
                ),
            )
        }
        KeyType::Other(oid) => TlsConfigError::new(
            parameter,
            ErrorKind::UnsupportedKeyType,
            format!(
                "the key in {origin} is of type {}, which tagwire cannot sign TLS handshakes \
                 with; {supported}",
                oids::describe(&oid)
            ),
        ),
        _ => TlsConfigError::new(
            parameter,
            ErrorKind::BadKey,
            format!("the private key in {origin} cannot be used: {provider_error}"),
        ),
    }
}

/// What kind of PEM a parameter expects, for the "not PEM" hint.
#[derive(Clone, Copy)]
pub(crate) enum PemWanted {
    Certificate,
    Key,
}

/// The PEM text of a parameter, or a "not PEM" error that says what to do.
pub(crate) fn pem_text(
    parameter: &'static str,
    loaded: &Loaded,
    wanted: PemWanted,
) -> Result<Zeroizing<String>, TlsConfigError> {
    let origin = &loaded.origin;
    let bytes = &loaded.text[..];
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        let message = if bytes.first() == Some(&0x30) {
            // DER starts with a SEQUENCE tag.
            let (tool, what) = match wanted {
                PemWanted::Certificate => ("x509", "certificate"),
                PemWanted::Key => ("pkey", "key"),
            };
            let path = origin.path_for_command();
            format!(
                "{origin} is binary (DER), not PEM: convert it with `openssl {tool} -inform DER \
                 -in {path} -out {what}.pem`"
            )
        } else if bytes.is_empty() {
            format!("{origin} is empty")
        } else {
            format!(
                "{origin} is not PEM (there is no -----BEGIN line): give a PEM file, the PEM \
                 text, or its base64"
            )
        };
        return Err(TlsConfigError::new(parameter, ErrorKind::NotPem, message));
    }
    // Invalid UTF-8 can only be outside the PEM blocks (or the blocks are broken anyway).
    Ok(Zeroizing::new(String::from_utf8_lossy(bytes).into_owned()))
}

pub(crate) fn not_valid_pem(parameter: &'static str, origin: &Origin, msg: &str) -> TlsConfigError {
    TlsConfigError::new(
        parameter,
        ErrorKind::NotPem,
        format!("{origin} is not valid PEM: {msg}"),
    )
}

/// `" (it holds: CERTIFICATE, PRIVATE KEY)"`, or `""` when there are no blocks.
pub(crate) fn holds(blocks: &[Block<'_>]) -> String {
    if blocks.is_empty() {
        return String::new();
    }
    let labels: Vec<&str> = blocks.iter().map(|b| b.label).collect();
    format!(" (it holds: {})", labels.join(", "))
}

pub(crate) fn unsupported_label(
    parameter: &'static str,
    origin: &Origin,
    label: &str,
) -> TlsConfigError {
    let hint = match label {
        "OPENSSH PRIVATE KEY" => {
            "; an OpenSSH key can be rewritten as PKCS#8 with `ssh-keygen -p -m PKCS8 -f FILE`"
        }
        "DSA PRIVATE KEY" => "; DSA keys cannot be used with TLS 1.3",
        _ => "",
    };
    TlsConfigError::new(
        parameter,
        ErrorKind::UnsupportedKeyType,
        format!(
            "{origin} holds a \"{label}\", which tagwire cannot use: give an RSA, ECDSA or \
             Ed25519 key as PKCS#8 (PRIVATE KEY), PKCS#1 (RSA PRIVATE KEY) or SEC1 (EC PRIVATE \
             KEY), encrypted or not{hint}"
        ),
    )
}

/// What the decryption of one key block needs: where the key came from (for messages)
/// and its password source.
pub(crate) struct KeyContext<'a> {
    pub(crate) parameter: &'static str,
    pub(crate) origin: &'a Origin,
    // Read only by the decryption (the `encrypted-keys` feature).
    #[cfg_attr(not(feature = "encrypted-keys"), allow(dead_code))]
    pub(crate) keypass: Option<&'a PasswordSource>,
}

impl KeyContext<'_> {
    pub(crate) fn error(&self, kind: ErrorKind, message: String) -> TlsConfigError {
        TlsConfigError::new(self.parameter, kind, message)
    }
}

enum KeyType {
    Rsa { bits: Option<usize> },
    Ec { curve: Option<ObjectIdentifier> },
    Other(ObjectIdentifier),
    Unknown,
}

fn key_type(key: &PrivateKeyDer<'_>) -> KeyType {
    match key {
        PrivateKeyDer::Pkcs1(der) => KeyType::Rsa {
            bits: rsa_bits(der.secret_pkcs1_der()),
        },
        PrivateKeyDer::Sec1(der) => KeyType::Ec {
            curve: sec1_curve(der.secret_sec1_der()),
        },
        PrivateKeyDer::Pkcs8(der) => {
            match pkcs8::PrivateKeyInfo::try_from(der.secret_pkcs8_der()) {
                Ok(info) => match info.algorithm.oid.to_string().as_str() {
                    oids::RSA_ENCRYPTION => KeyType::Rsa {
                        bits: rsa_bits(info.private_key),
                    },
                    oids::EC_PUBLIC_KEY => KeyType::Ec {
                        curve: info
                            .algorithm
                            .parameters_oid()
                            .ok()
                            .or_else(|| sec1_curve(info.private_key)),
                    },
                    _ => KeyType::Other(info.algorithm.oid),
                },
                Err(_) => KeyType::Unknown,
            }
        }
        _ => KeyType::Unknown,
    }
}

fn rsa_bits(pkcs1_der: &[u8]) -> Option<usize> {
    let key = pkcs1::RsaPrivateKey::try_from(pkcs1_der).ok()?;
    let modulus = key.modulus.as_bytes();
    let top = *modulus.first()?;
    Some(modulus.len() * 8 - top.leading_zeros() as usize)
}

fn sec1_curve(sec1_der: &[u8]) -> Option<ObjectIdentifier> {
    sec1::EcPrivateKey::try_from(sec1_der)
        .ok()?
        .parameters?
        .named_curve()
}
