//! Server verification (`ca`, webpki-roots, host names, validity dates) and the advice
//! `explain_tls_error` gives when a real handshake fails.

mod support;

use support::{handshake, HandshakeFailure, InputForm, KeyAlg, Pki, ServerConfigs as _};
use tagwire_tls_config::{build_client_config, explain_tls_error, TlsParams};

fn ca_only(pki: &Pki) -> TlsParams {
    TlsParams::default().with_ca(pki.ca_cert.display().to_string())
}

/// The advice for the client's side of a failed handshake.
fn client_advice(failure: &HandshakeFailure) -> String {
    let err = failure
        .client
        .as_ref()
        .unwrap_or_else(|| panic!("the client saw no error; server: {:?}", failure.server));
    explain_tls_error(err)
}

#[test]
fn ca_in_every_input_form_verifies_the_server() {
    let pki = Pki::new();
    let server = pki.server_config(false);
    for form in InputForm::ALL {
        let params = TlsParams::default().with_ca(form.value(&pki.ca_cert));
        let config = build_client_config(&params).unwrap();
        handshake(config.clone(), server.clone(), "localhost")
            .unwrap_or_else(|e| panic!("{form:?}: {e:?}"));
        // The certificate's IP address SAN is honoured too.
        handshake(config, server.clone(), "127.0.0.1").unwrap();
    }
}

#[test]
fn ca_file_with_several_certificates_trusts_each() {
    let pki = Pki::new();
    let other = Pki::new();
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(&other.ca_cert).unwrap(),
        std::fs::read_to_string(&pki.ca_cert).unwrap()
    );
    let params = TlsParams::default().with_ca(bundle);
    let config = build_client_config(&params).unwrap();
    handshake(config.clone(), pki.server_config(false), "localhost").expect("second CA");
    handshake(config, other.server_config(false), "localhost").expect("first CA");
}

#[test]
fn server_from_another_ca_is_unknown_issuer_and_the_advice_names_ca() {
    let pki = Pki::new();
    let other = Pki::new();
    let config = build_client_config(&ca_only(&pki)).unwrap();
    let failure = handshake(config, other.server_config(false), "localhost")
        .expect_err("a server signed by another CA must be refused");
    let advice = client_advice(&failure);
    assert!(
        advice.starts_with(
            "the server certificate is not signed by a CA this client trusts: set `ca` to the \
             CA that signed the server certificate"
        ),
        "{advice}"
    );
}

/// Two CAs with the same name and different keys: the chain is built but its signature
/// fails, on either side.
#[test]
fn same_named_but_different_ca_on_both_sides() {
    let pki = Pki::with_ca_name("Site CA");
    let impostor = Pki::with_ca_name("Site CA");
    let config = build_client_config(&ca_only(&pki)).unwrap();
    let failure = handshake(config, impostor.server_config(false), "localhost")
        .expect_err("signature check fails");
    let advice = client_advice(&failure);
    assert!(
        advice.starts_with(
            "a signature in the server's certificate chain does not verify: `ca` is probably a \
             different CA that has the same name"
        ),
        "{advice}"
    );

    let stranger = impostor.client(KeyAlg::EcP256);
    let params = ca_only(&pki)
        .with_cert(stranger.cert.display().to_string())
        .with_key(stranger.key.display().to_string());
    let config = build_client_config(&params).unwrap();
    let failure = handshake(config, pki.server_config(true), "localhost")
        .expect_err("the server refuses the client chain");
    let advice = client_advice(&failure);
    assert!(
        advice.contains("`cert` is issued by a CA that is not the one the server trusts"),
        "{advice}"
    );
}

/// With `ca` set, only it is trusted; without it, the public web roots are, which do not
/// include the test CA.
#[test]
fn without_ca_the_public_roots_are_used() {
    let pki = Pki::new();
    let config = build_client_config(&TlsParams::default()).unwrap();
    let failure = handshake(config, pki.server_config(false), "localhost")
        .expect_err("the test CA is not a public CA");
    assert!(matches!(
        failure.client,
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        ))
    ));
}

#[test]
fn host_name_mismatch_suggests_server_name() {
    let pki = Pki::new();
    let config = build_client_config(&ca_only(&pki)).unwrap();
    let failure = handshake(config, pki.server_config(false), "gateway.example")
        .expect_err("the certificate is for localhost only");
    let advice = client_advice(&failure);
    assert!(
        advice.contains("not valid for the name gateway.example"),
        "{advice}"
    );
    assert!(advice.contains("localhost"), "{advice}");
    assert!(advice.contains("set `server_name`"), "{advice}");
}

#[test]
fn expired_server_certificate_names_dates() {
    let pki = Pki::new();
    let expired = pki.server_with_validity("20200101000000Z", "20200201000000Z");
    let config = build_client_config(&ca_only(&pki)).unwrap();
    let failure = handshake(
        config,
        pki.server_config_for(&expired, false, None),
        "localhost",
    )
    .expect_err("expired");
    let advice = client_advice(&failure);
    assert!(
        advice.starts_with(
            "the server certificate expired at 2020-02-01 00:00:00 UTC and this machine's clock \
             says 20"
        ),
        "{advice}"
    );
}

#[test]
fn not_yet_valid_server_certificate_points_at_the_clock() {
    let pki = Pki::new();
    let future = pki.server_with_validity("20990101000000Z", "20991231000000Z");
    let config = build_client_config(&ca_only(&pki)).unwrap();
    let failure = handshake(
        config,
        pki.server_config_for(&future, false, None),
        "localhost",
    )
    .expect_err("not valid yet");
    let advice = client_advice(&failure);
    assert!(
        advice.starts_with("the server certificate is valid only from 2099-01-01 00:00:00 UTC"),
        "{advice}"
    );
    assert!(advice.contains("the clock is probably wrong"), "{advice}");
}

/// A server that requires a client certificate, and a client that has none: over TLS 1.3
/// and TLS 1.2 the advice is to set `cert` and `key`.
#[test]
fn missing_client_certificate_advice() {
    let pki = Pki::new();
    let config = build_client_config(&ca_only(&pki)).unwrap();
    for tls12 in [None, Some(())] {
        let server = pki.server_config_for(&pki.server, true, tls12);
        let failure = handshake(config.clone(), server, "localhost").expect_err("cert required");
        let advice = client_advice(&failure);
        assert!(
            advice.starts_with(
                "the server requires a client certificate and none was configured: set `cert` \
                 and `key`"
            ),
            "tls12={tls12:?}: {advice}"
        );
    }
}

#[test]
fn client_certificate_from_a_ca_the_server_does_not_trust() {
    let pki = Pki::new();
    let other = Pki::new();
    let stranger = other.client(KeyAlg::EcP256);
    let params = ca_only(&pki)
        .with_cert(stranger.cert.display().to_string())
        .with_key(stranger.key.display().to_string());
    let config = build_client_config(&params).unwrap();
    let failure = handshake(config, pki.server_config(true), "localhost")
        .expect_err("the server trusts only its own CA");
    let advice = client_advice(&failure);
    assert!(
        advice.starts_with("the server does not trust the CA that issued the client certificate"),
        "{advice}"
    );
}

/// A client certificate is offered only to servers that ask; a server that does not ask
/// still accepts the connection.
#[test]
fn client_certificate_with_a_server_that_does_not_ask() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::Ed25519);
    let params = ca_only(&pki)
        .with_cert(client.cert.display().to_string())
        .with_key(client.key.display().to_string());
    let config = build_client_config(&params).unwrap();
    let provider = tagwire_tls_config::crypto_provider();
    let chain =
        tagwire_tls_config::load_certificates("tls-cert", &pki.server.cert.display().to_string())
            .unwrap();
    let key = tagwire_tls_config::load_private_key(
        "tls-key",
        &pki.server.key.display().to_string(),
        None,
    )
    .unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let seen = handshake(config, std::sync::Arc::new(server), "localhost").unwrap();
    assert!(seen.is_empty());
}
