//! `ws://` and `wss://` URLs: parsed once, validated up front, printable without secrets.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The two WebSocket URL schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `ws://`: plain TCP, default port 80.
    Ws,
    /// `wss://`: TLS, default port 443.
    Wss,
}

impl Scheme {
    /// The port used when the URL names none: 80 for `ws`, 443 for `wss`.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        }
    }

    /// The scheme as written in a URL, without `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated WebSocket URL: scheme, host, port and origin-form path with query.
///
/// Built with [`WsUrl::parse`] (or `str::parse`). User information
/// (`user:password@`) is rejected, so neither [`Display`](fmt::Display) nor
/// [`Debug`] can ever print a password; send credentials in a header instead
/// (`ConnectOptions::extra_headers`, e.g. `Authorization`).
///
/// ```
/// use tagwire_ws_client::{Scheme, WsUrl};
///
/// let url = WsUrl::parse("wss://[::1]:8443/push?site=7").unwrap();
/// assert_eq!(url.scheme(), Scheme::Wss);
/// assert_eq!(url.host(), "::1");
/// assert_eq!(url.port(), 8443);
/// assert_eq!(url.path_and_query(), "/push?site=7");
/// assert_eq!(url.to_string(), "wss://[::1]:8443/push?site=7");
///
/// let err = WsUrl::parse("ws://admin:secret@example.com/").unwrap_err();
/// assert!(!err.to_string().contains("secret"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WsUrl {
    scheme: Scheme,
    /// Lower-cased DNS name, IPv4 address, or IPv6 address without brackets.
    host: String,
    port: u16,
    /// Origin-form request target: starts with `/`, never contains a fragment.
    path_and_query: String,
}

/// Why a string is not a usable WebSocket URL.
///
/// Messages name the part that is wrong and what to write instead. They never
/// repeat user information, so they are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The string is empty (or only whitespace).
    #[error(
        "the WebSocket URL is empty: expected ws://host[:port]/path or wss://host[:port]/path"
    )]
    Empty,
    /// There is no `scheme://` prefix.
    #[error("the WebSocket URL has no scheme: expected it to start with ws:// or wss://")]
    MissingScheme,
    /// The scheme is not `ws` or `wss`.
    #[error("unsupported URL scheme `{0}`: use ws:// (plain) or wss:// (TLS)")]
    UnsupportedScheme(String),
    /// The URL contains `user[:password]@` before the host.
    #[error(
        "the WebSocket URL contains user information (user:password@): it is not sent by \
         WebSocket clients and would leak into logs; remove it and pass credentials in a \
         header instead (e.g. Authorization)"
    )]
    UserInfo,
    /// The user information is not valid percent-encoded UTF-8 (or the user name
    /// contains a `:` once decoded).
    #[error(
        "the user information (user:password@) of the WebSocket URL is not valid \
         percent-encoded UTF-8: write reserved characters as %XX (`@` as %40, `:` in the \
         user name as %3A)"
    )]
    BadUserInfo,
    /// The host part is empty.
    #[error("the WebSocket URL has no host: expected ws://host[:port]/path")]
    EmptyHost,
    /// The host is not a DNS name, IPv4 address or bracketed IPv6 address.
    #[error("invalid host `{host}` in WebSocket URL: {reason}")]
    InvalidHost {
        /// The host as written (after the user-information check, so it holds no secret).
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The port is not a number from 1 to 65535.
    #[error("invalid port `{0}` in WebSocket URL: expected a number from 1 to 65535")]
    InvalidPort(String),
    /// The URL has a `#fragment`, which WebSocket URLs must not have (RFC 6455 section 3).
    #[error(
        "the WebSocket URL has a #fragment, which WebSocket URLs must not have (RFC 6455); \
         remove it, or write `#` as %23 if it belongs to the path or query"
    )]
    Fragment,
    /// The path or query cannot be sent in an HTTP request line. Not returned by this
    /// version: [`WsUrl::parse`] percent-encodes every byte a request line cannot carry.
    #[error("invalid path or query in WebSocket URL: {0}")]
    InvalidPath(String),
}

impl WsUrl {
    /// Parses and validates a `ws://` or `wss://` URL.
    ///
    /// * scheme: `ws` or `wss`, any letter case;
    /// * host: a DNS name (lower-cased), an IPv4 address, or an IPv6 address in
    ///   brackets (`[::1]`); zone identifiers are not supported;
    /// * port: optional, 1..=65535, defaults to 80 (`ws`) or 443 (`wss`);
    /// * path and query: kept as written (an empty path becomes `/`); bytes that
    ///   may not appear in an HTTP request line (spaces, non-ASCII, ...) are
    ///   percent-encoded; a `#fragment` is an error.
    ///
    /// Leading and trailing whitespace is ignored (config files often carry some).
    pub fn parse(s: &str) -> Result<WsUrl, UrlError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(UrlError::Empty);
        }
        let (scheme_text, rest) = s.split_once("://").ok_or(UrlError::MissingScheme)?;
        let scheme = parse_scheme(scheme_text)?;

        // The authority ends at the first '/', '?' or '#'; everything after is the target.
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(authority_end);
        // Checked before anything that echoes part of the authority in an error,
        // so a password can never end up in a message.
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = parse_authority(authority, scheme)?;
        let path_and_query = parse_target(target)?;
        Ok(WsUrl {
            scheme,
            host,
            port,
            path_and_query,
        })
    }

    /// Like [`parse`](WsUrl::parse), but user information (`user:password@`) is taken
    /// out of the URL and returned apart, percent-decoded, for the caller to send as
    /// Basic authentication (what Node's `ws` does with such URLs). The returned
    /// [`WsUrl`] holds no credentials; [`UserInfo`]'s `Debug` hides the password.
    ///
    /// ```
    /// use tagwire_ws_client::WsUrl;
    ///
    /// let (url, user) = WsUrl::parse_with_userinfo("wss://ops:p%40ss@h/in").unwrap();
    /// assert_eq!(url.to_string(), "wss://h/in");
    /// let user = user.unwrap();
    /// assert_eq!((user.user(), user.password()), ("ops", "p@ss"));
    /// assert_eq!(user.basic_authorization(), "Basic b3BzOnBAc3M=");
    /// ```
    pub fn parse_with_userinfo(s: &str) -> Result<(WsUrl, Option<UserInfo>), UrlError> {
        let s = s.trim();
        let Some((scheme_text, rest)) = s.split_once("://") else {
            return WsUrl::parse(s).map(|u| (u, None));
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(authority_end);
        let (userinfo, hostport) = split_userinfo(authority);
        let url = WsUrl::parse(&format!("{scheme_text}://{hostport}{target}"))?;
        let Some(info) = userinfo else {
            return Ok((url, None));
        };
        let (user, password) = info.split_once(':').unwrap_or((info, ""));
        match (percent_decode(user), percent_decode(password)) {
            (Some(user), Some(password)) if !user.contains(':') => {
                Ok((url, Some(UserInfo { user, password })))
            }
            _ => Err(UrlError::BadUserInfo),
        }
    }

    /// `ws` or `wss`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host: a lower-cased DNS name, an IPv4 address, or an IPv6 address
    /// *without* brackets (`::1`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The origin-form request target (`/path?query`), `/` when the URL had none.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// True for `wss://`.
    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Wss
    }

    /// The URL as logs and status pages should show it: the query, which may carry a
    /// token, is replaced by `?…`.
    ///
    /// ```
    /// let url = tagwire_ws_client::WsUrl::parse("wss://h:8443/in?token=s3cret").unwrap();
    /// assert_eq!(url.for_logs(), "wss://h:8443/in?…");
    /// ```
    pub fn for_logs(&self) -> String {
        let (path, query) = match self.path_and_query.split_once('?') {
            Some((path, _)) => (path, "?…"),
            None => (self.path_and_query.as_str(), ""),
        };
        format!(
            "{}://{}{path}{query}",
            self.scheme.as_str(),
            self.host_header()
        )
    }

    /// The value of the HTTP `Host` header for this URL: IPv6 addresses in
    /// brackets, the port only when it is not the scheme's default (RFC 6455 section 4.1).
    pub fn host_header(&self) -> String {
        let mut out = String::with_capacity(self.host.len() + 8);
        self.write_host_port(&mut out)
            .expect("writing to a String cannot fail");
        out
    }

    fn write_host_port(&self, f: &mut impl fmt::Write) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

impl fmt::Display for WsUrl {
    /// Prints the normalised URL: `scheme://host[:port]/path?query`, the port
    /// only when it is not the default. There is never user information to print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        self.write_host_port(f)?;
        f.write_str(&self.path_and_query)
    }
}

impl FromStr for WsUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<WsUrl, UrlError> {
        WsUrl::parse(s)
    }
}

/// User name and password taken from a URL's `user:password@` part.
///
/// Its `Debug` form hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct UserInfo {
    user: String,
    password: String,
}

impl UserInfo {
    /// Credentials from a user name (which must not contain `:`) and a password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        UserInfo {
            user: user.into(),
            password: password.into(),
        }
    }

    /// The decoded user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The decoded password (empty when the URL had none). Do not log it.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The value of an `Authorization` header carrying these credentials
    /// (`Basic base64(user:password)`, RFC 7617).
    pub fn basic_authorization(&self) -> String {
        let token = crate::accept::base64(format!("{}:{}", self.user, self.password).as_bytes());
        format!("Basic {token}")
    }
}

impl fmt::Debug for UserInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserInfo")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Splits an authority at its last `@`: `(Some(userinfo), host_and_port)`.
pub(crate) fn split_userinfo(authority: &str) -> (Option<&str>, &str) {
    match authority.rsplit_once('@') {
        Some((info, hostport)) => (Some(info), hostport),
        None => (None, authority),
    }
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_scheme(text: &str) -> Result<Scheme, UrlError> {
    if text.eq_ignore_ascii_case("ws") {
        Ok(Scheme::Ws)
    } else if text.eq_ignore_ascii_case("wss") {
        Ok(Scheme::Wss)
    } else if !text.is_empty()
        && text.len() <= 16
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        Err(UrlError::UnsupportedScheme(text.to_ascii_lowercase()))
    } else {
        // Not even scheme-shaped: do not echo it, it could be anything.
        Err(UrlError::MissingScheme)
    }
}

fn parse_authority(authority: &str, scheme: Scheme) -> Result<(String, u16), UrlError> {
    let (host, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
        let close = bracketed.find(']').ok_or_else(|| UrlError::InvalidHost {
            host: authority.to_owned(),
            reason: "an IPv6 address opened with `[` is missing its closing `]`",
        })?;
        let inner = &bracketed[..close];
        let after = &bracketed[close + 1..];
        let port_text = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| UrlError::InvalidHost {
                        host: authority.to_owned(),
                        reason: "only `:port` may follow a bracketed IPv6 address",
                    })?,
            ),
        };
        if inner.is_empty() {
            return Err(UrlError::EmptyHost);
        }
        if inner.contains('%') {
            return Err(UrlError::InvalidHost {
                host: inner.to_owned(),
                reason: "IPv6 zone identifiers (%...) are not supported",
            });
        }
        let addr: Ipv6Addr = inner.parse().map_err(|_| UrlError::InvalidHost {
            host: inner.to_owned(),
            reason: "not a valid IPv6 address",
        })?;
        (addr.to_string(), port_text)
    } else {
        let (host, port_text) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if port_text.is_some_and(|p| p.contains(':')) {
            return Err(UrlError::InvalidHost {
                host: authority.to_owned(),
                reason: "IPv6 addresses must be written in brackets, e.g. ws://[::1]:8080/",
            });
        }
        if host.is_empty() {
            return Err(UrlError::EmptyHost);
        }
        (parse_name_or_ipv4(host)?, port_text)
    };

    let port = match port_text {
        // `host:` with nothing after the colon means the default port (RFC 3986 section 3.2.3).
        None | Some("") => scheme.default_port(),
        Some(text) => parse_port(text)?,
    };
    Ok((host, port))
}

fn parse_port(text: &str) -> Result<u16, UrlError> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::InvalidPort(text.to_owned()));
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(UrlError::InvalidPort(text.to_owned())),
        Ok(port) => Ok(port),
    }
}

fn parse_name_or_ipv4(host: &str) -> Result<String, UrlError> {
    let invalid = |reason| UrlError::InvalidHost {
        host: host.to_owned(),
        reason,
    };
    // Every label numeric means the writer meant an IPv4 address: insist it is one
    // rather than sending "999.1.1.1" to the resolver.
    let all_numeric = host
        .trim_end_matches('.')
        .split('.')
        .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()));
    if all_numeric {
        return host
            .parse::<Ipv4Addr>()
            .map(|addr| addr.to_string())
            .map_err(|_| invalid("not a valid IPv4 address"));
    }
    if host.len() > 253 {
        return Err(invalid("a host name may be at most 253 characters long"));
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    for label in name.split('.') {
        if label.is_empty() {
            return Err(invalid("empty label (two dots in a row, or a leading dot)"));
        }
        if label.len() > 63 {
            return Err(invalid(
                "a host name label may be at most 63 characters long",
            ));
        }
        // Underscores are not valid in host names but appear in real deployments
        // (docker-compose service names); the resolver decides.
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "a host name may contain only letters, digits, `-`, `_` and `.`",
            ));
        }
    }
    Ok(host.to_ascii_lowercase())
}

fn parse_target(target: &str) -> Result<String, UrlError> {
    if target.contains('#') {
        return Err(UrlError::Fragment);
    }
    let mut out = String::with_capacity(target.len() + 1);
    if !target.starts_with('/') {
        // Empty, or a query directly after the authority (`ws://host?x=1`).
        out.push('/');
    }
    for &byte in target.as_bytes() {
        if needs_escape(byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(byte as char);
        }
    }
    // Every byte left is visible ASCII other than the escaped ones, which is what an
    // HTTP request target may hold: the request line built from it is always valid.
    Ok(out)
}

/// Bytes that may not appear as-is in an HTTP/1.1 request target (RFC 3986
/// section 3.3 and 3.4 plus the "unwise" set), so they are percent-encoded.
fn needs_escape(byte: u8) -> bool {
    !(0x21..0x7f).contains(&byte) || b"\"<>\\^`{|}".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_spaces_and_non_ascii_in_path() {
        let url = WsUrl::parse("ws://h/a b/é?q=x y").unwrap();
        assert_eq!(url.path_and_query(), "/a%20b/%C3%A9?q=x%20y");
    }

    #[test]
    fn query_without_path_gets_slash() {
        let url = WsUrl::parse("ws://h?x=1").unwrap();
        assert_eq!(url.path_and_query(), "/?x=1");
    }

    #[test]
    fn empty_port_means_default() {
        assert_eq!(WsUrl::parse("wss://h:/").unwrap().port(), 443);
    }

    #[test]
    fn ipv6_is_normalised() {
        let url = WsUrl::parse("ws://[0:0:0:0:0:0:0:1]:81").unwrap();
        assert_eq!(url.host(), "::1");
        assert_eq!(url.host_header(), "[::1]:81");
    }
}
