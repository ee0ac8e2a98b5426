//! Where a PEM parameter (`ca`, `cert`, `key`) comes from, and reading it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64ct::{Base64Unpadded, Base64UrlUnpadded, Encoding as _};
use pkcs8::der::zeroize::Zeroizing;

use crate::error::{ErrorKind, TlsConfigError};

/// The marker every PEM block starts with.
const PEM_BEGIN: &str = "-----BEGIN";

/// Where a PEM parameter comes from, as decided by [`PemSource::detect`].
///
/// The `Debug` form never shows inline content (an inline `key` is a secret): it shows the
/// kind of source and its length only.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A path to a PEM file.
    File(PathBuf),
    /// The PEM text itself.
    Inline(String),
    /// The base64 encoding of a PEM file, as Neuron's dashboard sends it.
    Base64(String),
}

impl PemSource {
    /// Decides what a parameter value is:
    ///
    /// 1. text containing `-----BEGIN` is PEM text ([`PemSource::Inline`]);
    /// 2. text that decodes as base64 (standard or URL-safe alphabet, padded or not,
    ///    whitespace ignored) to something containing `-----BEGIN` is the base64 of a PEM file
    ///    ([`PemSource::Base64`]);
    /// 3. anything else is a file path ([`PemSource::File`]), with surrounding whitespace
    ///    removed (a trailing newline in a config value is a mistake, not part of a file name).
    ///
    /// ```
    /// use tagwire_tls_config::PemSource;
    /// use std::path::PathBuf;
    ///
    /// let pem = "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n";
    /// assert!(matches!(PemSource::detect(pem), PemSource::Inline(_)));
    ///
    /// // base64 of "-----BEGIN CERTIFICATE-----\n"
    /// let b64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==";
    /// assert!(matches!(PemSource::detect(b64), PemSource::Base64(_)));
    ///
    /// assert_eq!(
    ///     PemSource::detect("/etc/tagwire/ca.pem"),
    ///     PemSource::File(PathBuf::from("/etc/tagwire/ca.pem"))
    /// );
    /// ```
    pub fn detect(value: &str) -> PemSource {
        if value.contains(PEM_BEGIN) {
            return PemSource::Inline(value.to_owned());
        }
        if let Some(decoded) = decode_base64(value) {
            if contains(&decoded, PEM_BEGIN.as_bytes()) {
                return PemSource::Base64(value.to_owned());
            }
        }
        PemSource::File(PathBuf::from(value.trim()))
    }

    /// Reads the PEM bytes: the file's content, the inline text, or the decoded base64.
    /// `parameter` names the parameter in the error.
    pub(crate) fn read(&self, parameter: &'static str) -> Result<Loaded, TlsConfigError> {
        let text = match self {
            PemSource::File(path) => read_file(parameter, path)?,
            PemSource::Inline(text) => Zeroizing::new(text.as_bytes().to_vec()),
            PemSource::Base64(text) => match decode_base64(text) {
                Some(bytes) => bytes,
                // detect() only builds this variant from text that decodes, but the enum is
                // public, so a caller may build one by hand.
                None => {
                    return Err(TlsConfigError::new(
                        parameter,
                        ErrorKind::NotPem,
                        "the value is neither PEM text nor valid base64 of a PEM file",
                    ))
                }
            },
        };
        Ok(Loaded {
            text,
            origin: Origin::of(self),
        })
    }
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(path) if looks_like_content(&path.to_string_lossy()) => {
                write!(
                    f,
                    "File(<{} bytes that are not a path>)",
                    path.as_os_str().len()
                )
            }
            PemSource::File(path) => f.debug_tuple("File").field(path).finish(),
            PemSource::Inline(text) => write!(f, "Inline(<{} bytes of PEM text>)", text.len()),
            PemSource::Base64(text) => write!(f, "Base64(<{} bytes of base64>)", text.len()),
        }
    }
}

/// The bytes of one PEM parameter and a description of where they came from.
pub(crate) struct Loaded {
    /// Zeroized on drop: for `key` this is the (possibly unencrypted) private key.
    pub(crate) text: Zeroizing<Vec<u8>>,
    pub(crate) origin: Origin,
}

/// Where a value came from, for messages. Never holds the value itself.
#[derive(Clone, Debug)]
pub(crate) enum Origin {
    File(PathBuf),
    Inline,
    Base64,
    /// The base64 of a PKCS#12 bundle.
    Base64Pkcs12,
}

impl Origin {
    fn of(source: &PemSource) -> Origin {
        match source {
            PemSource::File(path) => Origin::File(path.clone()),
            PemSource::Inline(_) => Origin::Inline,
            PemSource::Base64(_) => Origin::Base64,
        }
    }

    /// The path to put in an `openssl … -in PATH` suggestion.
    pub(crate) fn path_for_command(&self) -> String {
        match self {
            Origin::File(path) => shell_quote(&path.display().to_string()),
            Origin::Inline | Origin::Base64 => "key.pem".to_owned(),
            Origin::Base64Pkcs12 => "bundle.p12".to_owned(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Inline => f.write_str("the PEM text given inline"),
            Origin::Base64 => f.write_str("the base64-encoded PEM given inline"),
            Origin::Base64Pkcs12 => f.write_str("given inline as base64"),
        }
    }
}

/// Quotes a path for a shell command suggestion when it holds characters the shell would
/// split or expand.
fn shell_quote(s: &str) -> String {
    let plain = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b));
    if plain && !s.is_empty() {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn read_file(parameter: &'static str, path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Zeroizing::new(bytes)),
        Err(err) => Err(file_error(parameter, path, &err)),
    }
}

fn file_error(parameter: &'static str, path: &Path, err: &io::Error) -> TlsConfigError {
    let shown = path.display().to_string();
    if looks_like_content(&shown) {
        // The value was surely meant as content (broken PEM, base64 of something that is
        // not PEM), not as a path. Do not echo it: for `key` it could be the key itself.
        return TlsConfigError::new(
            parameter,
            ErrorKind::NotPem,
            "the value is neither PEM text (no -----BEGIN line), nor the base64 of a PEM file, \
             nor the path of a file: give a path, the whole PEM text, or the base64 of the \
             whole PEM file, BEGIN and END lines included",
        );
    }
    match err.kind() {
        io::ErrorKind::NotFound => TlsConfigError::new(
            parameter,
            ErrorKind::NotFound,
            format!("file {shown} not found: check the path, or paste the PEM text or its base64"),
        ),
        io::ErrorKind::PermissionDenied => TlsConfigError::new(
            parameter,
            ErrorKind::Unreadable,
            format!(
                "cannot read {shown}: permission denied; make it readable by the user tagwire \
                 runs as"
            ),
        ),
        io::ErrorKind::IsADirectory => TlsConfigError::new(
            parameter,
            ErrorKind::Unreadable,
            format!("{shown} is a directory; give the path of a PEM file"),
        ),
        _ => TlsConfigError::new(
            parameter,
            ErrorKind::Unreadable,
            format!("cannot read {shown}: {err}"),
        ),
    }
}

/// True for a "path" that cannot be one: several lines, a name longer than any file
/// system allows, or a long run of base64.
fn looks_like_content(value: &str) -> bool {
    value.contains(['\n', '\r'])
        || value.split('/').any(|component| component.len() > 255)
        || (value.len() >= 64 && decode_base64(value).is_some())
}

/// Decodes base64 leniently: either alphabet, padding optional, whitespace (line breaks of
/// a wrapped value) ignored. `None` when it is not base64 at all.
pub(crate) fn decode_base64(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let compact: Zeroizing<Vec<u8>> =
        Zeroizing::new(text.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    if compact.is_empty() {
        return None;
    }
    // Padding is optional: decode what is left without it.
    let unpadded = compact
        .strip_suffix(b"==")
        .or_else(|| compact.strip_suffix(b"="))
        .unwrap_or(&compact);
    let unpadded = std::str::from_utf8(unpadded).ok()?;
    Base64Unpadded::decode_vec(unpadded)
        .or_else(|_| Base64UrlUnpadded::decode_vec(unpadded))
        .ok()
        .map(Zeroizing::new)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn detects_inline_pem_even_with_surrounding_text() {
        let value = "subject=CN=x\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        assert!(matches!(PemSource::detect(value), PemSource::Inline(_)));
    }

    #[test]
    fn detects_wrapped_and_url_safe_base64() {
        let pem = b"-----BEGIN PRIVATE KEY-----\n??>>\n-----END PRIVATE KEY-----\n";
        let std_b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        let wrapped: String = std_b64
            .as_bytes()
            .chunks(16)
            .map(|c| format!("{}\n", std::str::from_utf8(c).unwrap()))
            .collect();
        assert!(matches!(PemSource::detect(&wrapped), PemSource::Base64(_)));
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pem);
        assert!(matches!(PemSource::detect(&url), PemSource::Base64(_)));
    }

    #[test]
    fn base64_without_pem_inside_is_a_path() {
        // "abcd" is valid base64 but decodes to binary noise: it is a (relative) file name.
        assert_eq!(
            PemSource::detect("abcd"),
            PemSource::File(PathBuf::from("abcd"))
        );
        assert_eq!(
            PemSource::detect("  certs/ca.pem\n"),
            PemSource::File(PathBuf::from("certs/ca.pem"))
        );
    }

    #[test]
    fn debug_does_not_show_inline_content() {
        let shown = format!(
            "{:?}",
            PemSource::Inline("-----BEGIN PRIVATE KEY-----SECRET".into())
        );
        assert!(!shown.contains("SECRET"), "{shown}");
        let shown = format!("{:?}", PemSource::Base64("U0VDUkVU".into()));
        assert!(!shown.contains("U0VDUkVU"), "{shown}");
    }

    #[test]
    fn long_base64_that_is_not_pem_is_not_echoed() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([0x30u8; 96]);
        let source = PemSource::detect(&b64);
        assert!(matches!(source, PemSource::File(_)));
        let err = source.read("key").err().expect("no such file");
        assert_eq!(err.kind(), ErrorKind::NotPem);
        assert!(!err.to_string().contains(&b64[..20]), "{err}");
    }

    #[test]
    fn broken_inline_pem_is_not_echoed() {
        // Four dashes: not a BEGIN line, so this is taken for a path; it must not be shown.
        let value =
            "----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKEY\n-----END PRIVATE KEY-----";
        let source = PemSource::detect(value);
        assert!(matches!(source, PemSource::File(_)));
        assert!(!format!("{source:?}").contains("MC4CAQ"));
        let err = source.read("key").err().expect("no such file");
        assert_eq!(err.kind(), ErrorKind::NotPem);
        assert!(!err.to_string().contains("MC4CAQ"), "{err}");
    }

    #[test]
    fn shell_quote_quotes_only_when_needed() {
        assert_eq!(
            shell_quote("/etc/tagwire/client.key"),
            "/etc/tagwire/client.key"
        );
        assert_eq!(shell_quote("/tmp/my key.pem"), "'/tmp/my key.pem'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
