//! What `tagwire check` and the start-up log say about each uplink's client certificate:
//! subject, issuer, expiry, and a warning when it has expired or expires within 30 days.

use tagwire_pipeline::UplinkConfig;
use tagwire_tls_config::CertSummary;

/// The uplink's client certificate, if it has one.
pub fn client_certificate(uplink: &UplinkConfig) -> Option<CertSummary> {
    uplink.tls_source.as_ref()?.client_certificate()
}

/// One line: `north "plant": client certificate "CN=gw-17" issued by "CN=Plant CA",
/// expires in 87 days (2027-02-24 10:00:00 UTC)`.
pub fn describe(uplink: &UplinkConfig, cert: &CertSummary) -> String {
    let version = if cert.version == 1 {
        " (X.509 v1: sent as is; the server decides)"
    } else {
        ""
    };
    format!(
        "north \"{}\": client certificate \"{}\" issued by \"{}\", {}{version}",
        uplink.name,
        cert.subject,
        cert.issuer,
        cert.expiry_phrase(rustls::pki_types::UnixTime::now())
    )
}

/// The warning for a certificate that has expired or expires within 30 days.
pub fn warning(uplink: &UplinkConfig, cert: &CertSummary) -> Option<String> {
    cert.expiry_warning(rustls::pki_types::UnixTime::now())
        .map(|w| format!("north \"{}\": warning: {w}", uplink.name))
}
