//! Every key algorithm × every key format × every input form: the config builds, and the
//! key really works: a TLS handshake with a rustls server that requires a client
//! certificate signed by the test CA succeeds, and the server saw our certificate.

mod support;

use support::{handshake, InputForm, KeyAlg, KeyFormat, Pki, ServerConfigs as _, PASSWORD};
use tagwire_tls_config::{build_client_config, PasswordSource, TlsParams};

/// Builds and handshakes one combination; `Err` describes the failure.
fn try_combination(
    pki: &Pki,
    server: &std::sync::Arc<rustls::ServerConfig>,
    client: &support::Identity,
    key_file: &std::path::Path,
    format: KeyFormat,
    form: InputForm,
) -> Result<(), String> {
    let mut params = TlsParams::default()
        .with_ca(form.value(&pki.ca_cert))
        .with_cert(form.value(&client.cert))
        .with_key(form.value(key_file));
    params.keypass = format
        .is_encrypted()
        .then(|| PasswordSource::literal(PASSWORD));
    let config = build_client_config(&params).map_err(|e| format!("config: {e}"))?;
    let seen =
        handshake(config, server.clone(), "localhost").map_err(|e| format!("handshake: {e:?}"))?;
    let expected = rustls::pki_types::CertificateDer::from_pem_file(&client.cert).unwrap();
    if seen.first() != Some(&expected) {
        return Err("the server did not see the client certificate".to_owned());
    }
    Ok(())
}

use rustls::pki_types::pem::PemObject as _;

fn run_matrix(alg: KeyAlg) {
    let pki = Pki::new();
    let server = pki.server_config(true);
    let client = pki.client(alg);
    let mut failures = Vec::new();
    let mut passed = 0;
    for format in KeyFormat::working_for(alg) {
        let key_file = pki.write_key(&client, format);
        for form in InputForm::ALL {
            match try_combination(&pki, &server, &client, &key_file, format, form) {
                Ok(()) => passed += 1,
                Err(why) => failures.push(format!("{alg:?} {format:?} as {form:?}: {why}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} combinations failed:\n{}",
        failures.len(),
        failures.len() + passed,
        failures.join("\n")
    );
    eprintln!("{alg:?}: {passed} combinations passed");
}

#[test]
fn rsa_2048_every_format_and_form() {
    run_matrix(KeyAlg::Rsa2048);
}

#[test]
fn rsa_4096_every_format_and_form() {
    run_matrix(KeyAlg::Rsa4096);
}

#[test]
fn ec_p256_every_format_and_form() {
    run_matrix(KeyAlg::EcP256);
}

#[test]
fn ec_p384_every_format_and_form() {
    run_matrix(KeyAlg::EcP384);
}

#[test]
fn ed25519_every_format_and_form() {
    run_matrix(KeyAlg::Ed25519);
}

/// `openssl req -newkey` encrypts the key by default (PBES2 AES-256-CBC in OpenSSL 3) and
/// leaves it plain with `-nodes`: both must work, for every key type `req` can make.
#[test]
fn req_newkey_keys_encrypted_and_plain() {
    let pki = Pki::new();
    let server = pki.server_config(true);
    let mut failures = Vec::new();
    for alg in [
        KeyAlg::Rsa2048,
        KeyAlg::EcP256,
        KeyAlg::EcP384,
        KeyAlg::Ed25519,
    ] {
        for encrypted in [true, false] {
            let client = pki.client_from_req_newkey(alg, encrypted);
            let format = if encrypted {
                KeyFormat::Pkcs8EncDefault
            } else {
                KeyFormat::Pkcs8
            };
            for form in InputForm::ALL {
                if let Err(why) = try_combination(&pki, &server, &client, &client.key, format, form)
                {
                    failures.push(format!(
                        "req -newkey {alg:?} encrypted={encrypted} {form:?}: {why}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The client signs differently in TLS 1.2 (PKCS#1 v1.5 for RSA) than in TLS 1.3 (PSS):
/// every key type must also work against a TLS 1.2-only server.
#[test]
fn every_key_type_against_a_tls12_only_server() {
    let pki = Pki::new();
    let server = pki.server_config_for(&pki.server, true, Some(()));
    for alg in KeyAlg::ALL {
        if alg == KeyAlg::Rsa4096 {
            continue; // same code path as RSA 2048, and slow to generate
        }
        let client = pki.client(alg);
        let params = TlsParams::default()
            .with_ca(pki.ca_cert.display().to_string())
            .with_cert(client.cert.display().to_string())
            .with_key(client.key.display().to_string());
        let config = build_client_config(&params).unwrap();
        let seen = handshake(config, server.clone(), "localhost")
            .unwrap_or_else(|e| panic!("{alg:?} over TLS 1.2: {e:?}"));
        assert_eq!(seen.len(), 1, "{alg:?}");
    }
}

/// The password can come from a file or an environment variable as well as literally.
#[test]
fn password_from_file_and_environment() {
    let pki = Pki::new();
    let server = pki.server_config(true);
    let client = pki.client(KeyAlg::EcP256);
    let key = pki.write_key(&client, KeyFormat::Pkcs8EncDefault);
    let pass_file = pki.dir().join("keypass.txt");
    std::fs::write(&pass_file, format!("{PASSWORD}\n")).unwrap();
    // Unique to this test; no other test reads or writes it.
    std::env::set_var("TAGWIRE_TLS_CONFIG_TEST_KEYPASS", PASSWORD);

    for keypass in [
        format!("file:{}", pass_file.display()),
        "env:TAGWIRE_TLS_CONFIG_TEST_KEYPASS".to_owned(),
        PASSWORD.to_owned(),
    ] {
        let params = TlsParams::default()
            .with_ca(pki.ca_cert.display().to_string())
            .with_cert(client.cert.display().to_string())
            .with_key(key.display().to_string())
            .with_keypass(PasswordSource::from_config(&keypass));
        let config = build_client_config(&params).unwrap_or_else(|e| panic!("{keypass}: {e}"));
        handshake(config, server.clone(), "localhost").unwrap();
    }
}

/// A chain file (client certificate, then an intermediate CA) is sent whole, and a server
/// that trusts only the root accepts it.
#[test]
fn client_certificate_with_intermediate_chain() {
    let pki = Pki::new();
    let server = pki.server_config(true);
    let dir = pki.dir();
    // intermediate CA signed by the root
    let inter_key = pki.file("inter-key");
    let inter_csr = pki.file("inter-csr");
    let inter_cert = pki.file("inter-cert");
    pki.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        support::path(&inter_key),
    ]);
    pki.openssl(&[
        "req",
        "-new",
        "-key",
        support::path(&inter_key),
        "-subj",
        "/CN=tagwire intermediate",
        "-out",
        support::path(&inter_csr),
    ]);
    pki.openssl(&[
        "x509",
        "-req",
        "-in",
        support::path(&inter_csr),
        "-CA",
        support::path(&pki.ca_cert),
        "-CAkey",
        support::path(&dir.join("ca.key")),
        "-set_serial",
        "77",
        "-days",
        "30",
        "-extfile",
        support::path(&dir.join("openssl.cnf")),
        "-extensions",
        "v3_ca",
        "-out",
        support::path(&inter_cert),
    ]);
    // leaf signed by the intermediate
    let leaf_key = pki.file("leaf-key");
    let leaf_csr = pki.file("leaf-csr");
    let leaf_cert = pki.file("leaf-cert");
    pki.openssl(&[
        "genpkey",
        "-algorithm",
        "ED25519",
        "-out",
        support::path(&leaf_key),
    ]);
    pki.openssl(&[
        "req",
        "-new",
        "-key",
        support::path(&leaf_key),
        "-subj",
        "/CN=leaf client",
        "-out",
        support::path(&leaf_csr),
    ]);
    pki.openssl(&[
        "x509",
        "-req",
        "-in",
        support::path(&leaf_csr),
        "-CA",
        support::path(&inter_cert),
        "-CAkey",
        support::path(&inter_key),
        "-set_serial",
        "78",
        "-days",
        "30",
        "-extfile",
        support::path(&dir.join("openssl.cnf")),
        "-extensions",
        "client",
        "-out",
        support::path(&leaf_cert),
    ]);
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(&leaf_cert).unwrap(),
        std::fs::read_to_string(&inter_cert).unwrap()
    );
    let params = TlsParams::default()
        .with_ca(pki.ca_cert.display().to_string())
        .with_cert(chain.clone())
        .with_key(leaf_key.display().to_string());
    let seen = handshake(
        build_client_config(&params).unwrap(),
        server.clone(),
        "localhost",
    )
    .expect("chain accepted");
    assert_eq!(seen.len(), 2, "leaf and intermediate both sent");

    // Without the intermediate the server cannot build the chain and says so.
    let params = params.with_cert(leaf_cert.display().to_string());
    let failure = handshake(build_client_config(&params).unwrap(), server, "localhost")
        .expect_err("leaf alone is not enough");
    let client_err = failure.client.expect("the client hears the server's alert");
    let advice = tagwire_tls_config::explain_tls_error(&client_err);
    assert!(
        advice.contains("issued by a CA the server trusts"),
        "{advice}"
    );
}
