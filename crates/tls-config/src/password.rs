//! The key password (`keypass`) and where it comes from.

use std::fmt;
use std::path::PathBuf;

use pkcs8::der::zeroize::Zeroizing;

use crate::error::{ErrorKind, TlsConfigError};

/// A password. Its `Debug` form is `Secret(<redacted>)`, it has no `Display`, and its
/// bytes are wiped from memory when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps password bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(Zeroizing::new(bytes.into()))
    }

    /// The password bytes, for the decryption code. Do not log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value.into_bytes())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Where the password of an encrypted key comes from.
///
/// The `Debug` form shows the file path or the variable name, never a literal password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// The password itself, as written in the configuration.
    Literal(Secret),
    /// A file whose first line is the password (the line break is not part of it).
    File(PathBuf),
    /// An environment variable holding the password.
    Env(String),
}

impl PasswordSource {
    /// The password itself.
    pub fn literal(password: impl Into<Secret>) -> PasswordSource {
        PasswordSource::Literal(password.into())
    }

    /// The environment variable `name`, read when the key is loaded.
    pub fn env(name: impl Into<String>) -> PasswordSource {
        PasswordSource::Env(name.into())
    }

    /// The first line of the file at `path` (without its line break), read when the key
    /// is loaded.
    pub fn file(path: impl Into<PathBuf>) -> PasswordSource {
        PasswordSource::File(path.into())
    }

    /// Reads the `keypass` syntax of a configuration file (tagwire's TOML, Neuron's
    /// parameters). The prefixes are this configuration syntax only; code that knows
    /// which it means calls [`literal`](Self::literal), [`env`](Self::env) or
    /// [`file`](Self::file) instead.
    ///
    /// * `file:/path/to/file`: the first line of that file;
    /// * `env:NAME`: the environment variable `NAME`;
    /// * `literal:TEXT`: the password `TEXT`, whatever it starts with (the way to write a
    ///   password that itself begins with `env:`, `file:` or `literal:`);
    /// * anything else: the password itself.
    ///
    /// ```
    /// use tagwire_tls_config::PasswordSource;
    ///
    /// assert_eq!(
    ///     PasswordSource::from_config("file:/etc/tagwire/keypass"),
    ///     PasswordSource::file("/etc/tagwire/keypass")
    /// );
    /// assert_eq!(
    ///     PasswordSource::from_config("env:TAGWIRE_KEYPASS"),
    ///     PasswordSource::env("TAGWIRE_KEYPASS")
    /// );
    /// assert_eq!(PasswordSource::from_config("s3cret!"), PasswordSource::literal("s3cret!"));
    /// assert_eq!(
    ///     PasswordSource::from_config("literal:env:not-a-variable"),
    ///     PasswordSource::literal("env:not-a-variable")
    /// );
    /// // Debug output never shows a literal password.
    /// let literal = PasswordSource::literal("s3cret!");
    /// assert!(!format!("{literal:?}").contains("s3cret"));
    /// ```
    pub fn from_config(value: &str) -> PasswordSource {
        if let Some(password) = value.strip_prefix("literal:") {
            PasswordSource::literal(password)
        } else if let Some(path) = value.strip_prefix("file:") {
            PasswordSource::file(path)
        } else if let Some(name) = value.strip_prefix("env:") {
            PasswordSource::env(name)
        } else {
            PasswordSource::literal(value)
        }
    }

    /// Fetches the password: reads the file or the environment variable now. Errors name
    /// the `keypass` parameter and never contain the password.
    pub fn resolve(&self) -> Result<Secret, TlsConfigError> {
        match self {
            PasswordSource::Literal(secret) => Ok(secret.clone()),
            PasswordSource::File(path) => {
                let content = std::fs::read(path).map(Zeroizing::new).map_err(|err| {
                    let what = match err.kind() {
                        std::io::ErrorKind::NotFound => "not found".to_owned(),
                        _ => format!("unreadable: {err}"),
                    };
                    TlsConfigError::new(
                        "keypass",
                        ErrorKind::PasswordUnavailable,
                        format!("password file {} {what}", path.display()),
                    )
                })?;
                let first_line = content.split(|&b| b == b'\n').next().unwrap_or_default();
                let first_line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
                if first_line.is_empty() {
                    return Err(TlsConfigError::new(
                        "keypass",
                        ErrorKind::PasswordUnavailable,
                        format!(
                            "password file {} is empty (the password is its first line)",
                            path.display()
                        ),
                    ));
                }
                Ok(Secret::new(first_line))
            }
            PasswordSource::Env(name) => match std::env::var_os(name) {
                Some(value) => env_bytes(name, value),
                None => Err(TlsConfigError::new(
                    "keypass",
                    ErrorKind::PasswordUnavailable,
                    format!("environment variable {name} is not set"),
                )),
            },
        }
    }
}

#[cfg(unix)]
fn env_bytes(_name: &str, value: std::ffi::OsString) -> Result<Secret, TlsConfigError> {
    use std::os::unix::ffi::OsStringExt as _;
    Ok(Secret::new(value.into_vec()))
}

#[cfg(not(unix))]
fn env_bytes(name: &str, value: std::ffi::OsString) -> Result<Secret, TlsConfigError> {
    value.into_string().map(Secret::from).map_err(|_| {
        TlsConfigError::new(
            "keypass",
            ErrorKind::PasswordUnavailable,
            format!("environment variable {name} is not valid Unicode"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_password_is_the_first_line_without_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "pa ss\r\nsecond line\n").unwrap();
        let secret = PasswordSource::File(path).resolve().unwrap();
        assert_eq!(secret.expose(), b"pa ss");
    }

    #[test]
    fn missing_and_empty_password_files_are_keypass_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = PasswordSource::File(missing).resolve().unwrap_err();
        assert_eq!(err.parameter(), "keypass");
        assert!(err.to_string().contains("not found"), "{err}");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let err = PasswordSource::File(empty).resolve().unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
    }

    #[test]
    fn unset_environment_variable_is_named() {
        let err = PasswordSource::Env("TAGWIRE_TEST_SURELY_UNSET_VARIABLE".into())
            .resolve()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PasswordUnavailable);
        assert_eq!(
            err.to_string(),
            "keypass: environment variable TAGWIRE_TEST_SURELY_UNSET_VARIABLE is not set"
        );
    }

    #[test]
    fn literal_prefix_escapes_the_source_prefixes() {
        for password in ["env:HOME", "file:/etc/passwd", "literal:x"] {
            let source = PasswordSource::from_config(&format!("literal:{password}"));
            assert_eq!(source.resolve().unwrap().expose(), password.as_bytes());
        }
        assert_eq!(
            PasswordSource::from_config("env:HOME"),
            PasswordSource::env("HOME")
        );
    }

    #[test]
    fn debug_redacts_literal() {
        let shown = format!("{:?}", PasswordSource::literal("hunter2"));
        assert_eq!(shown, "Literal(Secret(<redacted>))");
    }
}
