//! The one error type of this crate: which parameter is at fault, what kind of problem, and
//! a message that says what to do.

use std::fmt;

/// What went wrong, for callers that want to react differently to different problems
/// (the message is for people; this is for code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The value names a file that does not exist.
    NotFound,
    /// The file exists but cannot be read (permissions, a directory, an I/O error).
    Unreadable,
    /// The input is not PEM text (or is broken PEM: bad base64, a missing END line).
    NotPem,
    /// The input is PEM but holds no certificate.
    NoCertificate,
    /// A certificate could not be parsed or used.
    BadCertificate,
    /// The input is PEM but holds no private key.
    NoKey,
    /// The input holds more than one private key, so which one to use is unclear.
    MultipleKeys,
    /// The private key is damaged or could not be parsed.
    BadKey,
    /// The key is of a type or size the TLS stack cannot sign with (DSA, P-521, RSA-1024…).
    UnsupportedKeyType,
    /// The key is encrypted and no `keypass` was given.
    KeypassMissing,
    /// The key could not be decrypted with the password given.
    WrongPassword,
    /// The key is encrypted with a scheme this crate does not decrypt; the message names it
    /// and, where possible, the `openssl` command that converts the key.
    UnsupportedEncryption,
    /// The private key does not belong to the (first) certificate in `cert`.
    KeyMismatch,
    /// `cert` and `key` must be given together; one of them is missing.
    Incomplete,
    /// The password source (a file or an environment variable) could not be read.
    PasswordUnavailable,
    /// rustls refused the configuration (should not happen with the ring provider; the
    /// message carries rustls's own words).
    Rustls,
}

/// A problem with one of the TLS parameters, found before any connection is made.
///
/// [`parameter`](Self::parameter) names the parameter at fault (`"ca"`, `"cert"`, `"key"`
/// or `"keypass"`; or the name given to [`load_certificates`](crate::load_certificates) /
/// [`load_private_key`](crate::load_private_key)). The [`Display`](fmt::Display) form
/// starts with it, then says what is wrong and what to do, e.g.
/// `key: wrong password for the encrypted PKCS#8 key in /etc/tagwire/client.key`.
///
/// Messages never contain a password, nor the content of an inline key: they describe an
/// inline value as "the PEM text given inline" instead of quoting it.
///
/// The `Debug` form carries the whole message too (what `fn main() -> Result<..>` prints),
/// and there is no [`source`](std::error::Error::source): the message already says
/// everything, so `{:#}` of an `anyhow::Error` built from it prints it once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfigError {
    parameter: &'static str,
    kind: ErrorKind,
    message: String,
}

impl TlsConfigError {
    pub(crate) fn new(
        parameter: &'static str,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            parameter,
            kind,
            message: message.into(),
        }
    }

    /// The parameter at fault: `"ca"`, `"cert"`, `"key"`, `"keypass"`, or the name a caller gave [`load_certificates`](crate::load_certificates) or
    /// [`load_private_key`](crate::load_private_key).
    pub fn parameter(&self) -> &'static str {
        self.parameter
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the leading `parameter: `, for callers that print the parameter
    /// their own way (e.g. `north[0].key: …`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.parameter, self.message)
    }
}

impl std::error::Error for TlsConfigError {}
