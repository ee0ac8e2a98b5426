//! Turning a TLS error seen while connecting into advice that names the parameter to change.

use std::error::Error as StdError;
use std::io;

use rustls::{AlertDescription, CertificateError, Error, OtherError};
use rustls_pki_types::UnixTime;

use crate::verifier::V1Refusal;

/// Explains a rustls error from a failed handshake (or from the first read after it: with
/// TLS 1.3 a server reports a rejected client certificate only then) as advice that names
/// the parameter to change. The rustls error itself is appended in parentheses.
///
/// ```
/// use rustls::{CertificateError, Error};
///
/// let advice = tagwire_tls_config::explain_tls_error(&Error::InvalidCertificate(
///     CertificateError::UnknownIssuer,
/// ));
/// assert!(advice.contains("set `ca` to the CA that signed the server certificate"));
/// ```
pub fn explain_tls_error(err: &Error) -> String {
    let advice = match err {
        Error::InvalidCertificate(cert_err) => explain_certificate_error(cert_err),
        Error::AlertReceived(alert) => explain_alert(*alert),
        Error::NoCertificatesPresented => {
            "the server sent no certificate, so it cannot be verified".to_owned()
        }
        Error::PeerIncompatible(_) => {
            "the server and tagwire have no TLS version, cipher suite, key exchange group or \
             signature scheme in common: tagwire offers TLS 1.2 and 1.3 with AES-GCM and \
             ChaCha20-Poly1305, ECDHE over X25519/P-256/P-384, and RSA, ECDSA and Ed25519 \
             signatures; the server needs at least one of each"
                .to_owned()
        }
        Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => {
            "the server did not answer with TLS: is this a plain ws:// (HTTP) port? use ws:// \
             for it, or the server's TLS port for wss://"
                .to_owned()
        }
        Error::PeerMisbehaved(_) => {
            "the server broke the TLS protocol (a buggy server or something in between \
             rewriting the connection)"
                .to_owned()
        }
        Error::DecryptError => {
            "a TLS record could not be decrypted: the connection was damaged in transit, or a \
             proxy in between interferes"
                .to_owned()
        }
        Error::InconsistentKeys(_) => {
            "`key` does not belong to the certificate in `cert`: give the key the certificate \
             was issued for"
                .to_owned()
        }
        Error::InvalidCertRevocationList(_) => {
            "a certificate revocation list could not be used".to_owned()
        }
        Error::NoApplicationProtocol => {
            "the server and tagwire have no application protocol (ALPN) in common".to_owned()
        }
        Error::FailedToGetCurrentTime => {
            "this machine's clock could not be read, so certificate dates cannot be checked"
                .to_owned()
        }
        Error::FailedToGetRandomBytes => {
            "the operating system's random number generator failed".to_owned()
        }
        Error::EncryptError => "a TLS record could not be encrypted".to_owned(),
        Error::PeerSentOversizedRecord => {
            "the server sent a TLS record larger than TLS allows (a buggy server or something \
             in between rewriting the connection)"
                .to_owned()
        }
        Error::UnsupportedNameType => {
            "the name to verify the server against is neither a DNS name nor an IP address: \
             set `server_name`"
                .to_owned()
        }
        Error::Other(other) => explain_other(other),
        _ => "the TLS connection failed".to_owned(),
    };
    match rustls_words(err) {
        Some(words) => format!("{advice} (TLS error: {words})"),
        None => advice,
    }
}

/// rustls's own wording of `err`, to follow the advice; `None` when it would only be a
/// `Debug` dump of another library's error type (`Other(OtherError(…))`), which says
/// nothing a person can use: the advice then stands alone.
fn rustls_words(err: &Error) -> Option<String> {
    let words = err.to_string();
    (!words.contains("Other(")).then_some(words)
}

/// A problem with a certificate found before connecting (a `ca` certificate rustls will
/// not take as a trust anchor), without rustls's `Debug` dumps.
pub(crate) fn certificate_problem(err: &Error) -> String {
    match err {
        Error::InvalidCertificate(CertificateError::Other(other)) => explain_other(other),
        Error::InvalidCertificate(CertificateError::BadEncoding) => {
            "it is not a valid X.509 certificate".to_owned()
        }
        other => rustls_words(other).unwrap_or_else(|| "it was refused".to_owned()),
    }
}

/// The errors webpki (or this crate's verifier) reports through rustls's `OtherError`.
fn explain_other(other: &OtherError) -> String {
    if let Some(refusal) = other.0.downcast_ref::<V1Refusal>() {
        return refusal.to_string();
    }
    let Some(webpki) = other.0.downcast_ref::<webpki::Error>() else {
        return format!("the server certificate was rejected: {}", other.0);
    };
    use webpki::Error as W;
    match webpki {
        W::CaUsedAsEndEntity => {
            "the server presents a CA certificate (basicConstraints CA:TRUE) as its own, which \
             TLS does not accept; typical of a self-signed certificate made with `openssl req \
             -x509`: make it with `-addext basicConstraints=critical,CA:FALSE`, or better, \
             issue the server certificate from a CA and give that CA as `ca`"
                .to_owned()
        }
        W::EndEntityUsedAsCa => {
            "a certificate in the server's chain that issued another one is not a CA \
             certificate (no basicConstraints CA:TRUE): the server's chain is wrong, or `ca` \
             holds a server certificate instead of the CA certificate"
                .to_owned()
        }
        W::UnsupportedCertVersion => {
            "a certificate in the server's chain is X.509 v1 (no extensions): only a v1 server \
             certificate issued directly by the CA in `ca` is accepted; have the chain \
             reissued as v3"
                .to_owned()
        }
        W::PathLenConstraintViolated | W::MaximumPathDepthExceeded => {
            "the server's certificate chain is longer than its CAs allow (pathlen constraint, \
             or more than 6 intermediates): the server's chain is wrong"
                .to_owned()
        }
        W::NameConstraintViolation
        | W::MalformedNameConstraint
        | W::MaximumNameConstraintComparisonsExceeded => {
            "the server certificate's name is outside what its CA may issue for (name \
             constraints): the server needs a certificate from a CA allowed to issue for it"
                .to_owned()
        }
        W::SignatureAlgorithmMismatch => {
            "the server certificate's two signature algorithm fields disagree: the certificate \
             is malformed; have it reissued"
                .to_owned()
        }
        W::ExtensionValueInvalid
        | W::MalformedExtensions
        | W::EmptyEkuExtension
        | W::InvalidSerialNumber
        | W::MalformedDnsIdentifier
        | W::InvalidNetworkMaskConstraint => {
            "the server certificate has an extension or field that is malformed: have it \
             reissued (e.g. with `openssl x509 -req … -extfile`)"
                .to_owned()
        }
        W::CertDistrusted => {
            "the server certificate's CA is no longer trusted for TLS server certificates"
                .to_owned()
        }
        W::MaximumPathBuildCallsExceeded | W::MaximumSignatureChecksExceeded => {
            "the server sent so many certificates that checking them was given up: the server \
             should send only its certificate and intermediates"
                .to_owned()
        }
        other => {
            format!("the server certificate was rejected by the certificate checks ({other:?})")
        }
    }
}

/// Like [`explain_tls_error`] for an I/O error that wraps a rustls error (as tokio-rustls
/// reports handshake failures): `None` when no rustls error is inside, so the caller can
/// fall back to the I/O error's own message.
pub fn explain_io_error(err: &io::Error) -> Option<String> {
    let mut current: Option<&(dyn StdError + 'static)> = match err.get_ref() {
        Some(inner) => Some(inner),
        None => None,
    };
    while let Some(inner) = current {
        if let Some(tls) = inner.downcast_ref::<Error>() {
            return Some(explain_tls_error(tls));
        }
        if let Some(io) = inner.downcast_ref::<io::Error>() {
            return explain_io_error(io);
        }
        current = inner.source();
    }
    None
}

fn explain_certificate_error(err: &CertificateError) -> String {
    match err {
        CertificateError::UnknownIssuer => {
            "the server certificate is not signed by a CA this client trusts: set `ca` to the \
             CA that signed the server certificate (with `ca` set only its certificates are \
             trusted; without it, the public web CAs of webpki-roots)"
                .to_owned()
        }
        CertificateError::BadSignature => {
            "a signature in the server's certificate chain does not verify: `ca` is probably a \
             different CA that has the same name as the one that signed the server certificate"
                .to_owned()
        }
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the server certificate expired at {} and this machine's clock says {}: renew the \
             server certificate, or, if this clock is wrong, set it right (NTP)",
            format_utc(*not_after),
            format_utc(*time)
        ),
        CertificateError::Expired => {
            "the server certificate has expired (or this machine's clock is ahead): renew the \
             server certificate, or set the clock right (NTP)"
                .to_owned()
        }
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the server certificate is valid only from {} but this machine's clock says {}: \
             the clock is probably wrong (a gateway without a battery-backed clock can boot in \
             1970): set it right (NTP)",
            format_utc(*not_before),
            format_utc(*time)
        ),
        CertificateError::NotValidYet => {
            "the server certificate is not valid yet by this machine's clock: the clock is \
             probably behind (a gateway without a battery-backed clock can boot in 1970): set \
             it right (NTP)"
                .to_owned()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "the server certificate is not valid for the name {} (it is valid for {}): use \
             one of those names in the URL, or set `server_name` to one of them",
            expected.to_str(),
            if presented.is_empty() {
                "no name at all".to_owned()
            } else {
                presented
                    .iter()
                    .map(|name| plain_name(name))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        CertificateError::NotValidForName => {
            "the server certificate is not valid for the host name in the URL: use a name the \
             certificate was issued for, or set `server_name` to it"
                .to_owned()
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the server certificate is not a TLS server certificate (its extended key usage \
             lacks serverAuth): the server must use a certificate issued for servers"
                .to_owned()
        }
        CertificateError::Revoked => "the server certificate has been revoked".to_owned(),
        CertificateError::BadEncoding => {
            "the server sent a certificate that cannot be parsed".to_owned()
        }
        CertificateError::UnhandledCriticalExtension => {
            "the server certificate has a critical extension this client does not understand"
                .to_owned()
        }
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "the server certificate chain is signed with an algorithm this client does not \
             accept (SHA-1, or a key type it does not know): reissue it with SHA-256 or better"
                .to_owned()
        }
        CertificateError::Other(other) => explain_other(other),
        #[allow(deprecated)] // rustls still reports it for some algorithms
        CertificateError::UnsupportedSignatureAlgorithm => {
            "the server certificate chain is signed with an algorithm this client does not \
             accept (SHA-1, or a key type it does not know): reissue it with SHA-256 or better"
                .to_owned()
        }
        CertificateError::UnknownRevocationStatus
        | CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. } => {
            "the server certificate's revocation status could not be established".to_owned()
        }
        CertificateError::ApplicationVerificationFailure => {
            "the server certificate was rejected by this client's checks".to_owned()
        }
        _ => "the server certificate was rejected".to_owned(),
    }
}

/// webpki lists the names a certificate has in `Debug` form (`DnsName("plant.example")`,
/// `IpAddress(10.0.0.5)`): the name alone reads better.
fn plain_name(name: &str) -> &str {
    let inner = ["DnsName(", "IpAddress(", "UriName(", "DirectoryName("]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix)?.strip_suffix(')'));
    match inner {
        Some(inner) => inner.trim_matches('"'),
        None => name,
    }
}

fn explain_alert(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::CertificateRequired => {
            "the server requires a client certificate and none was configured: set `cert` \
             and `key` (two-way TLS)"
                .to_owned()
        }
        AlertDescription::UnknownCA => {
            "the server does not trust the CA that issued the client certificate: use a \
             `cert` issued by a CA the server trusts, with its intermediate certificates \
             after it in the same file"
                .to_owned()
        }
        AlertDescription::CertificateExpired => {
            "the server says the client certificate (`cert`) has expired, or is not valid yet \
             by the server's clock: renew it"
                .to_owned()
        }
        AlertDescription::CertificateRevoked => {
            "the server says the client certificate (`cert`) has been revoked: get a new one"
                .to_owned()
        }
        AlertDescription::BadCertificate
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateUnknown
        | AlertDescription::AccessDenied => format!(
            "the server rejected the client certificate ({}): check that `cert` is issued by \
             a CA the server trusts and is valid now; if no `cert` is set, the server probably \
             requires one: set `cert` and `key`",
            alert_name(alert)
        ),
        AlertDescription::DecryptError => {
            "the server could not verify a signature (decrypt_error): most likely `cert` is \
             issued by a CA that is not the one the server trusts, though it may have the same \
             name; or `key` does not belong to `cert`"
                .to_owned()
        }
        AlertDescription::HandshakeFailure => {
            "the server aborted the handshake (handshake_failure): usually no TLS version or \
             cipher suite in common (tagwire offers TLS 1.2 and 1.3), or the server requires a \
             client certificate: set `cert` and `key` if it does"
                .to_owned()
        }
        AlertDescription::ProtocolVersion => {
            "the server accepts neither TLS 1.2 nor TLS 1.3, the versions tagwire speaks".to_owned()
        }
        AlertDescription::InsufficientSecurity => {
            "the server wants stronger cipher suites than were offered".to_owned()
        }
        AlertDescription::UnrecognisedName => {
            "the server does not serve the host name this client asked for (SNI): set \
             `server_name` to the name the server expects"
                .to_owned()
        }
        other => format!(
            "the server ended the connection with the TLS alert {}",
            alert_name(other)
        ),
    }
}

/// The alert's name as in the RFCs (`bad_certificate`), from rustls's `BadCertificate`.
fn alert_name(alert: AlertDescription) -> String {
    let debug = format!("{alert:?}");
    let mut name = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

/// `2024-02-29 13:05:09 UTC`.
pub(crate) fn format_utc(time: UnixTime) -> String {
    let secs = time.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`: shift to eras of 400 years starting on 1 March).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    #[test]
    fn formats_dates() {
        assert_eq!(format_utc(at(0)), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 13:05:09 UTC, a leap day.
        assert_eq!(format_utc(at(1_709_211_909)), "2024-02-29 13:05:09 UTC");
        assert_eq!(format_utc(at(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(at(4_102_444_799)), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn a_ca_certificate_used_by_the_server_gets_advice() {
        let err = Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(
            std::sync::Arc::new(webpki::Error::CaUsedAsEndEntity),
        )));
        let advice = explain_tls_error(&err);
        assert!(
            advice.contains("basicConstraints=critical,CA:FALSE"),
            "{advice}"
        );
    }

    #[test]
    fn expired_names_both_times() {
        let advice = explain_tls_error(&Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: at(1_709_211_909),
                not_after: at(951_782_400),
            },
        ));
        assert!(
            advice.starts_with(
                "the server certificate expired at 2000-02-29 00:00:00 UTC and this machine's \
                 clock says 2024-02-29 13:05:09 UTC"
            ),
            "{advice}"
        );
    }

    #[test]
    fn not_yet_valid_points_at_the_clock() {
        let advice = explain_tls_error(&Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: at(10),
                not_before: at(1_709_211_909),
            },
        ));
        assert!(
            advice.contains("valid only from 2024-02-29 13:05:09 UTC"),
            "{advice}"
        );
        assert!(
            advice.contains("clock says 1970-01-01 00:00:10 UTC"),
            "{advice}"
        );
        assert!(advice.contains("NTP"), "{advice}");
    }

    #[test]
    fn alerts_about_the_client_certificate_name_cert_and_key() {
        for alert in [
            AlertDescription::CertificateRequired,
            AlertDescription::BadCertificate,
            AlertDescription::HandshakeFailure,
        ] {
            let advice = explain_tls_error(&Error::AlertReceived(alert));
            assert!(advice.contains("set `cert` and `key`"), "{advice}");
        }
        let advice = explain_tls_error(&Error::AlertReceived(AlertDescription::BadCertificate));
        assert!(advice.contains("(bad_certificate)"), "{advice}");
    }

    #[test]
    fn io_error_wrapping_rustls_error_is_explained() {
        let io = io::Error::new(
            io::ErrorKind::InvalidData,
            Error::AlertReceived(AlertDescription::CertificateRequired),
        );
        let advice = explain_io_error(&io).expect("a rustls error inside");
        assert!(advice.contains("requires a client certificate"), "{advice}");
        let plain = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(explain_io_error(&plain), None);
    }
}
