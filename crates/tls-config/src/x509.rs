//! What this crate tells about a certificate itself (read by [`cert`](crate::cert), not
//! webpki, which only parses X.509 v3, while the certificates users have include v1 ones):
//! summaries, key matching, and the names a server certificate answers to.

use std::fmt;

use rustls_pki_types::{CertificateDer, UnixTime};

use crate::cert::Certificate;
use crate::explain::format_utc;

/// What `tagwire check` and the logs say about a client certificate: who it is, who issued
/// it, and until when it is valid.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertSummary {
    /// The subject, in OpenSSL's one-line form (`CN=gw-17, O=Plant`).
    pub subject: String,
    /// The issuer, in the same form.
    pub issuer: String,
    /// The X.509 version (1 or 3 in practice).
    pub version: u32,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// The subjectAltName entries as OpenSSL's configuration writes them (`DNS:gw-17`,
    /// `IP:10.0.0.5`); empty without the extension.
    pub alt_names: Vec<String>,
}

impl CertSummary {
    /// Reads the summary of a DER certificate; `None` when it does not parse as X.509.
    pub fn of(cert: &CertificateDer<'_>) -> Option<CertSummary> {
        let parsed = Certificate::parse(cert.as_ref()).ok()?;
        Some(CertSummary {
            subject: parsed.subject.to_string(),
            issuer: parsed.issuer.to_string(),
            version: parsed.version,
            not_before: parsed.not_before,
            not_after: parsed.not_after,
            alt_names: parsed
                .alt_names
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect(),
        })
    }

    /// Days from `now` to the end of validity, rounded to the nearest day (a certificate
    /// made a second ago with `-days 365` has 365 left, not 364); negative once expired.
    pub fn days_left(&self, now: UnixTime) -> i64 {
        (self.not_after - now.as_secs() as i64 + 43_200).div_euclid(86_400)
    }

    /// The end of validity as `2027-02-24 10:00:00 UTC`.
    pub fn expiry(&self) -> String {
        format_utc(UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            self.not_after.max(0) as u64,
        )))
    }

    /// A warning when the certificate has expired or expires within 30 days; `None`
    /// otherwise. For a client certificate this is only a warning: the server decides.
    pub fn expiry_warning(&self, now: UnixTime) -> Option<String> {
        let days = self.days_left(now);
        if self.not_after < now.as_secs() as i64 {
            Some(format!(
                "the client certificate \"{}\" expired on {}: the server will probably refuse \
                 it; renew it",
                self.subject,
                self.expiry()
            ))
        } else if days < 30 {
            Some(format!(
                "the client certificate \"{}\" expires in {days} days ({}): renew it soon",
                self.subject,
                self.expiry()
            ))
        } else {
            None
        }
    }

    /// `expires in 87 days (2027-02-24 10:00:00 UTC)`, or `EXPIRED 3 days ago (…)`.
    pub fn expiry_phrase(&self, now: UnixTime) -> String {
        let days = self.days_left(now);
        if self.not_after < now.as_secs() as i64 {
            let ago = -days;
            format!("EXPIRED {ago} days ago ({})", self.expiry())
        } else {
            format!("expires in {days} days ({})", self.expiry())
        }
    }
}

impl fmt::Display for CertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject \"{}\", issuer \"{}\", valid until {}",
            self.subject,
            self.issuer,
            self.expiry()
        )
    }
}

/// Whether a certificate's public key is `spki` (a full DER SubjectPublicKeyInfo); `None`
/// when the certificate does not parse.
pub(crate) fn has_public_key(cert: &CertificateDer<'_>, spki: &[u8]) -> Option<bool> {
    let parsed = Certificate::parse(cert.as_ref()).ok()?;
    Some(parsed.public_key == spki)
}

/// Why a certificate does not parse: the field and what is wrong with it.
pub(crate) fn parse_error(cert: &CertificateDer<'_>) -> Option<String> {
    match Certificate::parse(cert.as_ref()) {
        Ok(_) => None,
        Err(err) => Some(err.to_string()),
    }
}

/// The names a server certificate answers to, for the CN fallback and the v1 path.
pub(crate) struct ServerNames {
    /// True when the certificate has a subjectAltName extension (even an empty one): then
    /// the CN is never used.
    pub(crate) has_san: bool,
    /// The subject's common names.
    pub(crate) common_names: Vec<String>,
}

impl ServerNames {
    pub(crate) fn of(parsed: &Certificate<'_>) -> ServerNames {
        ServerNames {
            has_san: parsed.alt_names.is_some(),
            common_names: parsed.subject.common_names().map(str::to_owned).collect(),
        }
    }

    /// True when one CN is `dns_name` (ASCII case-insensitive, a trailing dot ignored, and
    /// a `*.` wildcard standing for exactly one leftmost label, as OpenSSL matches).
    pub(crate) fn cn_matches(&self, dns_name: &str) -> bool {
        let wanted = dns_name.trim_end_matches('.').to_ascii_lowercase();
        self.common_names.iter().any(|cn| {
            let cn = cn.trim_end_matches('.').to_ascii_lowercase();
            match cn.strip_prefix("*.") {
                // A wildcard must leave at least two labels (`*.com` matches nothing).
                Some(rest) if rest.contains('.') => wanted
                    .split_once('.')
                    .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
                Some(_) => false,
                None => cn == wanted,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cns: &[&str]) -> ServerNames {
        ServerNames {
            has_san: false,
            common_names: cns.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn days_are_rounded_to_the_nearest() {
        let cert = CertSummary {
            subject: "CN=x".into(),
            issuer: "CN=ca".into(),
            version: 3,
            not_before: 0,
            not_after: 10 * 86_400,
            alt_names: Vec::new(),
        };
        let at = |secs: u64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        assert_eq!(cert.days_left(at(3)), 10);
        assert_eq!(cert.days_left(at(86_400 + 50_000)), 8);
        assert!(cert
            .expiry_phrase(at(3))
            .starts_with("expires in 10 days (1970-01-11"));
        assert!(cert
            .expiry_warning(at(3))
            .unwrap()
            .contains("expires in 10 days"));
        assert_eq!(
            cert.expiry_phrase(at(13 * 86_400)),
            "EXPIRED 3 days ago (1970-01-11 00:00:00 UTC)"
        );
        let long = CertSummary {
            not_after: 31 * 86_400,
            ..cert
        };
        assert_eq!(long.expiry_warning(at(0)), None);
    }

    #[test]
    fn cn_matching_follows_openssl() {
        assert!(names(&["Plant.Example"]).cn_matches("plant.example."));
        assert!(names(&["*.example.net"]).cn_matches("ws.example.net"));
        assert!(!names(&["*.example.net"]).cn_matches("a.ws.example.net"));
        assert!(!names(&["*.example.net"]).cn_matches("example.net"));
        assert!(!names(&["*.net"]).cn_matches("example.net"));
        assert!(!names(&["plant"]).cn_matches("plant.example"));
    }
}
