//! The certificates users really have, made with the `openssl` recipes they follow: X.509
//! v1 certificates from `x509 -req` without `-extfile`, server certificates with the host
//! name only in the subject CN, PKCS#12 bundles, and files renewed while running. Each is
//! tried in a real (in-memory) handshake against a rustls server.

mod support;

use std::path::Path;

use rustls::pki_types::UnixTime;
#[cfg(feature = "pkcs12")]
use support::InputForm;
use support::{
    assert_no_password, handshake, HandshakeFailure, Identity, KeyAlg, Pki, ServerConfigs as _,
    PASSWORD,
};
#[cfg(not(feature = "encrypted-keys"))]
use support::{KeyFormat, LegacyCipher};
use tagwire_tls_config::{
    build_client_config, explain_tls_error, ClientConfigSource, ErrorKind, PasswordSource,
    TlsParams,
};

/// An extensions file without subjectAltName: a v3 server certificate named only by its CN.
const SERVER_EXT_NO_SAN: &str = "basicConstraints=critical,CA:FALSE\n\
                                 keyUsage=critical,digitalSignature,keyEncipherment\n\
                                 extendedKeyUsage=serverAuth\n";

fn s(path: &Path) -> String {
    path.display().to_string()
}

fn ca_only(pki: &Pki) -> TlsParams {
    TlsParams::default().with_ca(s(&pki.ca_cert))
}

fn version_of(pki: &Pki, cert: &Path) -> String {
    let text = pki.openssl(&["x509", "-in", &s(cert), "-noout", "-text"]);
    text.lines()
        .find(|l| l.trim_start().starts_with("Version:"))
        .unwrap()
        .trim()
        .to_owned()
}

/// Connects with `ca` = this PKI's CA to a server using `server`, as `name`.
fn connect(
    pki: &Pki,
    params: &TlsParams,
    server: &Identity,
    name: &str,
    tls12: bool,
) -> Result<(), Box<HandshakeFailure>> {
    let config = build_client_config(params).unwrap();
    let server_config = pki.server_config_for(server, false, tls12.then_some(()));
    handshake(config, server_config, name).map(|_| ())
}

/// The client's advice for a refused server certificate; never rustls's `Debug` text.
fn refusal(result: Result<(), Box<HandshakeFailure>>) -> String {
    let failure = result.expect_err("the server certificate must be refused");
    let err = failure.client.expect("the client refuses");
    let advice = explain_tls_error(&err);
    assert!(!advice.contains("Other("), "{advice}");
    assert!(!advice.contains("OtherError"), "{advice}");
    advice
}

#[test]
fn v1_client_certificate_is_sent_as_given() {
    let pki = Pki::new();
    let client = pki.user_recipe("/CN=gw-17", None);
    assert_eq!(version_of(&pki, &client.cert), "Version: 1 (0x0)");
    let params = TlsParams::default()
        .with_ca(s(&pki.ca_cert))
        .with_cert(s(&client.cert))
        .with_key(s(&client.key));
    let config = build_client_config(&params).expect("a v1 client certificate is ours to send");
    assert!(config.client_auth_cert_resolver.has_certs());
    let source = ClientConfigSource::new("north-1", params.clone()).unwrap();
    let summary = source.client_certificate().unwrap();
    assert_eq!(summary.version, 1);
    assert_eq!(summary.subject, "CN=gw-17");
    assert!(
        summary.issuer.starts_with("CN=tagwire test CA"),
        "{summary:?}"
    );
    assert!(
        summary
            .expiry_phrase(UnixTime::now())
            .starts_with("expires in 365 days ("),
        "{}",
        summary.expiry_phrase(UnixTime::now())
    );

    // What is checked stays checked: a key of another v1 certificate is named.
    let other = pki.user_recipe("/CN=gw-18", None);
    let err = build_client_config(&params.with_key(s(&other.key))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyMismatch, "{err}");
    assert!(
        err.to_string()
            .contains("does not belong to the certificate"),
        "{err}"
    );
}

#[test]
fn expired_client_certificate_is_a_warning_with_its_date() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let old = pki.v1_with_validity(&client, "/CN=gw-old", "20200101000000Z", "20210101000000Z");
    let source = ClientConfigSource::new(
        "north-1",
        TlsParams::default()
            .with_ca(s(&pki.ca_cert))
            .with_cert(s(&old.cert))
            .with_key(s(&old.key)),
    )
    .expect("an expired client certificate is the server's to refuse");
    let warning = source
        .client_certificate()
        .unwrap()
        .expiry_warning(UnixTime::now())
        .expect("a warning");
    assert!(
        warning.contains("\"CN=gw-old\" expired on 2021-01-01 00:00:00 UTC"),
        "{warning}"
    );
    // A fresh certificate gives no warning.
    let fresh = pki.user_recipe("/CN=gw-new", None);
    let source = ClientConfigSource::new(
        "north-1",
        ca_only(&pki)
            .with_cert(s(&fresh.cert))
            .with_key(s(&fresh.key)),
    )
    .unwrap();
    assert_eq!(
        source
            .client_certificate()
            .unwrap()
            .expiry_warning(UnixTime::now()),
        None
    );
}

#[test]
fn v1_server_certificate_issued_by_ca_is_accepted_over_tls12_and_tls13() {
    let pki = Pki::new();
    let rsa = pki.user_recipe("/CN=localhost", None);
    assert_eq!(version_of(&pki, &rsa.cert), "Version: 1 (0x0)");
    let ec = pki.v1_with_validity(
        &pki.server,
        "/CN=localhost",
        "20200101000000Z",
        "20991231000000Z",
    );
    assert_eq!(version_of(&pki, &ec.cert), "Version: 1 (0x0)");
    for server in [&rsa, &ec] {
        for tls12 in [false, true] {
            connect(&pki, &ca_only(&pki), server, "localhost", tls12)
                .unwrap_or_else(|e| panic!("{:?} tls12={tls12}: {e:?}", server.alg));
            // The CN is matched case-insensitively, as OpenSSL does.
            connect(&pki, &ca_only(&pki), server, "LocalHost", tls12).unwrap();
        }
    }
}

#[test]
fn v1_server_certificate_refusals_are_named() {
    let pki = Pki::new();

    // A wrong name: the CN is named.
    let v1 = pki.user_recipe("/CN=localhost", None);
    let advice = refusal(connect(&pki, &ca_only(&pki), &v1, "plant.example", false));
    assert!(
        advice.contains("not valid for the name plant.example (it is valid for CN=localhost)"),
        "{advice}"
    );
    // The CN never stands for an IP address.
    let advice = refusal(connect(&pki, &ca_only(&pki), &v1, "127.0.0.1", false));
    assert!(
        advice.contains("not valid for the name 127.0.0.1"),
        "{advice}"
    );

    // Another CA's v1 certificate.
    let other = Pki::new();
    let foreign = other.user_recipe("/CN=localhost", None);
    let advice = refusal(connect(&pki, &ca_only(&pki), &foreign, "localhost", false));
    assert!(
        advice.contains("is X.509 v1 (no extensions) and its issuer \"CN=tagwire test CA"),
        "{advice}"
    );
    assert!(advice.contains("is not a certificate in `ca`"), "{advice}");

    // A CA with the same name but another key: the signature does not verify.
    let twin = Pki::with_ca_name(&pki_ca_name(&pki));
    let forged = twin.user_recipe("/CN=localhost", None);
    let advice = refusal(connect(&pki, &ca_only(&pki), &forged, "localhost", false));
    assert!(advice.contains("does not verify"), "{advice}");

    // A damaged signature (last byte of the certificate flipped).
    let damaged = Identity {
        alg: v1.alg,
        cert: flip_last_signature_byte(&pki, &v1.cert),
        key: v1.key.clone(),
    };
    let advice = refusal(connect(&pki, &ca_only(&pki), &damaged, "localhost", false));
    assert!(advice.contains("does not verify"), "{advice}");

    // Expired, and not valid yet.
    let expired = pki.v1_with_validity(
        &pki.server,
        "/CN=localhost",
        "20200101000000Z",
        "20210101000000Z",
    );
    let advice = refusal(connect(&pki, &ca_only(&pki), &expired, "localhost", false));
    assert!(
        advice.contains("the server certificate expired at 2021-01-01 00:00:00 UTC"),
        "{advice}"
    );
    let future = pki.v1_with_validity(
        &pki.server,
        "/CN=localhost",
        "20900101000000Z",
        "20910101000000Z",
    );
    let advice = refusal(connect(&pki, &ca_only(&pki), &future, "localhost", false));
    assert!(advice.contains("valid only from 2090-01-01"), "{advice}");

    // Without `ca`, the public web CAs never take the v1 path.
    let advice = refusal(connect(
        &pki,
        &TlsParams::default(),
        &v1,
        "localhost",
        false,
    ));
    assert!(advice.contains("`ca` is not set"), "{advice}");
}

fn pki_ca_name(pki: &Pki) -> String {
    let subject = pki.openssl(&[
        "x509",
        "-in",
        &s(&pki.ca_cert),
        "-noout",
        "-subject",
        "-nameopt",
        "RFC2253",
    ]);
    subject
        .trim()
        .trim_start_matches("subject=")
        .trim_start_matches("CN=")
        .to_owned()
}

/// A copy of `cert` whose signature's last byte is changed.
fn flip_last_signature_byte(pki: &Pki, cert: &Path) -> std::path::PathBuf {
    use base64::Engine as _;
    use rustls::pki_types::pem::PemObject as _;
    let der = rustls::pki_types::CertificateDer::from_pem_file(cert).unwrap();
    let mut bytes = der.as_ref().to_vec();
    *bytes.last_mut().unwrap() ^= 0x01;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let out = pki.file("damaged-signature");
    std::fs::write(
        &out,
        format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n"),
    )
    .unwrap();
    out
}

#[test]
fn server_certificate_without_san_is_checked_against_its_cn() {
    let pki = Pki::new();
    let cn_only = pki.user_recipe("/CN=localhost", Some(SERVER_EXT_NO_SAN));
    assert_eq!(version_of(&pki, &cn_only.cert), "Version: 3 (0x2)");
    for tls12 in [false, true] {
        connect(&pki, &ca_only(&pki), &cn_only, "localhost", tls12)
            .unwrap_or_else(|e| panic!("tls12={tls12}: {e:?}"));
    }
    let advice = refusal(connect(
        &pki,
        &ca_only(&pki),
        &cn_only,
        "plant.example",
        false,
    ));
    assert!(
        advice.contains("(it is valid for CN=localhost)"),
        "{advice}"
    );

    // With a SAN, the SAN alone counts, even when the CN would match.
    let with_san = pki.user_recipe(
        "/CN=localhost",
        Some(&format!(
            "{SERVER_EXT_NO_SAN}subjectAltName=DNS:plant.example\n"
        )),
    );
    let advice = refusal(connect(&pki, &ca_only(&pki), &with_san, "localhost", false));
    assert!(
        advice.contains("not valid for the name localhost (it is valid for plant.example)"),
        "{advice}"
    );
    connect(&pki, &ca_only(&pki), &with_san, "plant.example", false).unwrap();

    // The fallback does not excuse a chain webpki refused: another CA's CN-only certificate.
    let other = Pki::new();
    let foreign = other.user_recipe("/CN=localhost", Some(SERVER_EXT_NO_SAN));
    let advice = refusal(connect(&pki, &ca_only(&pki), &foreign, "localhost", false));
    assert!(
        advice.contains("not signed by a CA this client trusts"),
        "{advice}"
    );
}

fn bundle_params(pki: &Pki, bundle: String, keypass: Option<&str>) -> TlsParams {
    let mut params = TlsParams::default()
        .with_ca(s(&pki.ca_cert))
        .with_cert(bundle);
    params.keypass = keypass.map(PasswordSource::literal);
    params
}

/// Without the `pkcs12` feature (tagwire-tls-config on its own: `cargo test -p
/// tagwire-tls-config`), a bundle is recognised and refused with the command that
/// converts it.
#[cfg(not(feature = "pkcs12"))]
#[test]
fn without_the_pkcs12_feature_a_bundle_is_refused_with_the_conversion_command() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::Rsa2048);
    let bundle = pki.pkcs12(&client, PASSWORD, false);
    let err = build_client_config(&bundle_params(&pki, s(&bundle), Some(PASSWORD))).unwrap_err();
    assert_eq!(
        (err.parameter(), err.kind()),
        ("cert", ErrorKind::UnsupportedEncryption)
    );
    let text = err.to_string();
    assert!(text.contains("`pkcs12` feature"), "{text}");
    assert!(
        text.contains(&format!("openssl pkcs12 -in {}", bundle.display())),
        "{text}"
    );
    assert_no_password(&text);
}

/// Without the `encrypted-keys` feature (`cargo test -p tagwire-tls-config`), an encrypted
/// key, PKCS#8 or OpenSSL legacy PEM, is refused with the feature's name and the `openssl
/// pkey` command that writes it unencrypted; that command's output is then accepted.
#[cfg(not(feature = "encrypted-keys"))]
#[test]
fn without_the_encrypted_keys_feature_an_encrypted_key_is_refused_with_the_openssl_command() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::Rsa2048);
    for (format, what) in [
        (KeyFormat::Pkcs8EncDefault, "an encrypted PKCS#8 key"),
        (
            KeyFormat::Legacy(LegacyCipher::Aes256),
            "an encrypted \"RSA PRIVATE KEY\" (OpenSSL legacy PEM encryption)",
        ),
    ] {
        let key = pki.write_key(&client, format);
        let mut params = TlsParams::default()
            .with_ca(s(&pki.ca_cert))
            .with_cert(s(&client.cert))
            .with_key(s(&key))
            .with_keypass(PasswordSource::literal(PASSWORD));
        let err = build_client_config(&params).unwrap_err();
        assert_eq!(
            (err.parameter(), err.kind()),
            ("key", ErrorKind::UnsupportedEncryption)
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("key: {} holds {what}", key.display())),
            "{text}"
        );
        assert!(text.contains("`encrypted-keys` feature"), "{text}");
        let command = format!("openssl pkey -in {} -out client-key.pem", key.display());
        assert!(text.contains(&command), "{text}");
        assert_no_password(&text);

        // The advice works: openssl's unencrypted output is accepted.
        let plain = key.with_extension("plain.pem");
        let status = std::process::Command::new("openssl")
            .args(["pkey", "-passin", &format!("pass:{PASSWORD}"), "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&plain)
            .status()
            .expect("openssl runs");
        assert!(status.success());
        params = params.with_key(s(&plain));
        build_client_config(&params).expect("the decrypted key is accepted");
    }
}

#[cfg(feature = "pkcs12")]
#[test]
fn pkcs12_bundles_of_current_and_legacy_openssl() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::Rsa2048);
    let expected = {
        use rustls::pki_types::pem::PemObject as _;
        rustls::pki_types::CertificateDer::from_pem_file(&client.cert).unwrap()
    };
    for legacy in [false, true] {
        let bundle = pki.pkcs12(&client, PASSWORD, legacy);
        for form in [InputForm::Path, InputForm::Base64] {
            let params = bundle_params(&pki, form.value(&bundle), Some(PASSWORD));
            let config = build_client_config(&params)
                .unwrap_or_else(|e| panic!("legacy={legacy} {form:?}: {e}"));
            let presented = handshake(config, pki.server_config(true), "localhost")
                .unwrap_or_else(|e| panic!("legacy={legacy} {form:?}: {e:?}"));
            assert_eq!(presented[0], expected, "legacy={legacy}");
            assert_eq!(presented.len(), 2, "the bundle's CA travels as the chain");
        }

        let err =
            build_client_config(&bundle_params(&pki, s(&bundle), Some("not-it"))).unwrap_err();
        assert_eq!(
            (err.parameter(), err.kind()),
            ("keypass", ErrorKind::WrongPassword)
        );
        assert_eq!(
            err.to_string(),
            format!(
                "keypass: wrong password for the PKCS#12 bundle {}",
                bundle.display()
            )
        );
        assert_no_password(&err.to_string());
        let err = build_client_config(&bundle_params(&pki, s(&bundle), None)).unwrap_err();
        assert_eq!(
            (err.parameter(), err.kind()),
            ("keypass", ErrorKind::KeypassMissing)
        );
    }

    // The key comes from the bundle: a `key` as well is a mistake worth naming.
    let bundle = pki.pkcs12(&client, PASSWORD, false);
    let mut params = bundle_params(&pki, s(&bundle), Some(PASSWORD));
    params.key = Some(s(&client.key));
    let err = build_client_config(&params).unwrap_err();
    assert_eq!(
        (err.parameter(), err.kind()),
        ("key", ErrorKind::Incomplete)
    );
    assert!(err.to_string().contains("remove `key`"), "{err}");

    // A bundle of certificates only (`-nokeys`) is named as such.
    let no_key = pki.file("no-key-bundle");
    let pass = format!("pass:{PASSWORD}");
    pki.openssl(&[
        "pkcs12",
        "-export",
        "-nokeys",
        "-in",
        &s(&client.cert),
        "-passout",
        &pass,
        "-out",
        &s(&no_key),
    ]);
    let err = build_client_config(&bundle_params(&pki, s(&no_key), Some(PASSWORD))).unwrap_err();
    assert_eq!(
        (err.parameter(), err.kind()),
        ("cert", ErrorKind::NoKey),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("holds 0 private keys, where one is needed"),
        "{err}"
    );

    // A bundle with an empty password opens without `keypass`.
    let open = pki.pkcs12(&client, "", false);
    build_client_config(&bundle_params(&pki, s(&open), None)).expect("empty password");
}

#[test]
fn renewed_files_are_read_before_the_next_connection() {
    let pki = Pki::new();
    let dir = pki.dir();
    let (cert, key) = (dir.join("live-cert.pem"), dir.join("live-key.pem"));
    let first = pki.client(KeyAlg::EcP256);
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let source = ClientConfigSource::new(
        "north-1",
        ca_only(&pki).with_cert(s(&cert)).with_key(s(&key)),
    )
    .unwrap();
    let presented = |config| handshake(config, pki.server_config(true), "localhost").unwrap();
    let subject = || source.client_certificate().unwrap().subject;
    assert_eq!(subject(), "CN=client EcP256");
    assert!(!source.files_changed());

    // Renewal: both files replaced (a v1 certificate this time).
    let second = pki.user_recipe("/CN=gw-renewed", None);
    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    assert!(source.files_changed());
    source.current();
    assert_eq!(subject(), "CN=gw-renewed");
    assert_eq!(source.client_certificate().unwrap().version, 1);
    assert!(!source.files_changed());

    // Back to the first pair, seen by the server.
    let der = |path: &Path| {
        use rustls::pki_types::pem::PemObject as _;
        rustls::pki_types::CertificateDer::from_pem_file(path).unwrap()
    };
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    assert_eq!(presented(source.current())[0], der(&first.cert));

    // A broken renewal: the new certificate without its key. The last good one stays.
    let third = pki.client(KeyAlg::EcP256);
    std::fs::copy(&third.cert, &cert).unwrap();
    let kept = source.current();
    assert_eq!(
        subject(),
        "CN=client EcP256",
        "a mismatched renewal is not used"
    );
    assert_eq!(presented(kept)[0], der(&first.cert));
    assert!(
        !source.files_changed(),
        "a failed renewal is not retried until the files change again"
    );
    std::fs::copy(&third.key, &key).unwrap();
    assert!(source.files_changed());
    assert_eq!(presented(source.current())[0], der(&third.cert));
}
