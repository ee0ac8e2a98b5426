//! Every problem `build_client_config` must find before connecting: the parameter it names,
//! the message, and that the password never appears in it.

mod support;

use std::path::Path;

use support::{assert_no_password, path, KeyAlg, KeyFormat, LegacyCipher, Pki, PASSWORD};
use tagwire_tls_config::{
    build_client_config, load_private_key, ErrorKind, PasswordSource, TlsConfigError, TlsParams,
};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Parameters for a client identity, with `keypass` (configuration syntax) when given.
fn params(pki: &Pki, cert: &Path, key: &Path, keypass: Option<&str>) -> TlsParams {
    let mut params = TlsParams::default()
        .with_ca(s(&pki.ca_cert))
        .with_cert(s(cert))
        .with_key(s(key));
    // `keypass` as a configuration file writes it: `env:`/`file:` prefixes are sources.
    params.keypass = keypass.map(PasswordSource::from_config);
    params
}

/// Builds, expecting an error; checks it names `parameter` and leaks no password.
fn expect_error(params: &TlsParams, parameter: &str, kind: ErrorKind) -> TlsConfigError {
    let err = build_client_config(params).expect_err("the configuration must be refused");
    assert_eq!(err.parameter(), parameter, "{err}");
    assert_eq!(err.kind(), kind, "{err}");
    assert_no_password(&err.to_string());
    assert_no_password(&format!("{err:?}"));
    err
}

#[test]
fn missing_files_name_their_parameter() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let missing = pki.dir().join("nope.pem");
    let expected = |param: &str| {
        format!(
            "{param}: file {} not found: check the path, or paste the PEM text or its base64",
            missing.display()
        )
    };

    let mut p = params(&pki, &client.cert, &client.key, None);
    p.ca = Some(s(&missing));
    assert_eq!(
        expect_error(&p, "ca", ErrorKind::NotFound).to_string(),
        expected("ca")
    );

    let mut p = params(&pki, &missing, &client.key, None);
    assert_eq!(
        expect_error(&p, "cert", ErrorKind::NotFound).to_string(),
        expected("cert")
    );

    p = params(&pki, &client.cert, &missing, None);
    assert_eq!(
        expect_error(&p, "key", ErrorKind::NotFound).to_string(),
        expected("key")
    );
}

#[test]
fn a_directory_is_not_a_pem_file() {
    let pki = Pki::new();
    let p = TlsParams::default().with_ca(s(pki.dir()));
    let err = expect_error(&p, "ca", ErrorKind::Unreadable);
    assert!(err.to_string().contains("is a directory"), "{err}");
}

#[test]
fn text_that_is_not_pem_and_binary_der_are_refused_with_advice() {
    let pki = Pki::new();
    let junk = pki.file("junk");
    std::fs::write(&junk, "this is not a certificate\n").unwrap();
    let p = TlsParams::default().with_ca(s(&junk));
    let err = expect_error(&p, "ca", ErrorKind::NotPem);
    assert_eq!(
        err.to_string(),
        format!(
            "ca: {} is not PEM (there is no -----BEGIN line): give a PEM file, the PEM text, \
             or its base64",
            junk.display()
        )
    );

    let der = pki.file("ca-der");
    pki.openssl(&[
        "x509",
        "-in",
        path(&pki.ca_cert),
        "-outform",
        "DER",
        "-out",
        path(&der),
    ]);
    let p = TlsParams::default().with_ca(s(&der));
    let err = expect_error(&p, "ca", ErrorKind::NotPem);
    assert!(
        err.to_string().contains(&format!(
            "is binary (DER), not PEM: convert it with `openssl x509 -inform DER -in {}",
            der.display()
        )),
        "{err}"
    );

    let empty = pki.file("empty");
    std::fs::write(&empty, "").unwrap();
    let client = pki.client(KeyAlg::EcP256);
    let p = params(&pki, &client.cert, &empty, None);
    let err = expect_error(&p, "key", ErrorKind::NotPem);
    assert_eq!(
        err.to_string(),
        format!("key: {} is empty", empty.display())
    );
}

#[test]
fn truncated_pem_is_reported() {
    let pki = Pki::new();
    let text = std::fs::read_to_string(&pki.ca_cert).unwrap();
    let cut = &text[..text.len() / 2];
    let p = TlsParams::default().with_ca(cut.to_owned());
    let err = expect_error(&p, "ca", ErrorKind::NotPem);
    assert_eq!(
        err.to_string(),
        "ca: the PEM text given inline is not valid PEM: the CERTIFICATE block has no \
         -----END CERTIFICATE----- line (is the text cut short?)"
    );
}

#[test]
fn swapped_cert_and_key_are_named() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let p = params(&pki, &client.key, &client.cert, None);
    let err = expect_error(&p, "cert", ErrorKind::NoCertificate);
    assert_eq!(
        err.to_string(),
        format!(
            "cert: no certificate (-----BEGIN CERTIFICATE-----) in {} (it holds: PRIVATE KEY); \
             `cert` must be the certificate, `key` the private key",
            client.key.display()
        )
    );

    // The certificate given as the key.
    let p = params(&pki, &client.cert, &client.cert, None);
    let err = expect_error(&p, "key", ErrorKind::NoKey);
    assert_eq!(
        err.to_string(),
        format!(
            "key: no private key in {} (it holds: CERTIFICATE); `key` must be the private key, \
             `cert` the certificate",
            client.cert.display()
        )
    );

    // A key given as `ca`.
    let p = TlsParams::default().with_ca(s(&client.key));
    let err = expect_error(&p, "ca", ErrorKind::NoCertificate);
    assert!(err.to_string().contains("(it holds: PRIVATE KEY)"), "{err}");
}

#[test]
fn cert_without_key_and_key_without_cert() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let mut p = params(&pki, &client.cert, &client.key, None);
    p.key = None;
    let err = expect_error(&p, "key", ErrorKind::Incomplete);
    assert_eq!(
        err.to_string(),
        "key: `cert` is set but `key` is not: a client certificate needs its private key \
         (only a PKCS#12 bundle in `cert` holds its own key)"
    );
    let mut p = params(&pki, &client.cert, &client.key, None);
    p.cert = Some(String::new()); // Neuron sends "" for unset
    let err = expect_error(&p, "cert", ErrorKind::Incomplete);
    assert_eq!(
        err.to_string(),
        "cert: `key` is set but `cert` is not: a private key needs its client certificate"
    );
}

#[test]
fn encrypted_key_without_keypass() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::Rsa2048);
    let key = pki.write_key(&client, KeyFormat::Pkcs8EncDefault);
    let err = expect_error(
        &params(&pki, &client.cert, &key, None),
        "key",
        ErrorKind::KeypassMissing,
    );
    assert_eq!(
        err.to_string(),
        format!(
            "key: the encrypted PKCS#8 key in {} needs a password, but `keypass` is not set: \
             set keypass to the password, to file:/path/of/a/password/file or to env:VARIABLE",
            key.display()
        )
    );

    let key = pki.write_key(&client, KeyFormat::Legacy(LegacyCipher::Aes256));
    let err = expect_error(
        &params(&pki, &client.cert, &key, None),
        "key",
        ErrorKind::KeypassMissing,
    );
    assert!(
        err.to_string().starts_with(&format!(
            "key: the encrypted RSA key (OpenSSL legacy PEM, AES-256-CBC) in {} needs a password",
            key.display()
        )),
        "{err}"
    );
}

/// Neuron sends an empty `keypass` when none was entered: for an encrypted key that reads
/// as "not set", not as a wrong password.
#[test]
fn empty_keypass_reads_as_not_set() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    for format in [
        KeyFormat::Pkcs8Aes128,
        KeyFormat::Legacy(LegacyCipher::Aes128),
    ] {
        let key = pki.write_key(&client, format);
        let err = expect_error(
            &params(&pki, &client.cert, &key, Some("")),
            "key",
            ErrorKind::KeypassMissing,
        );
        assert!(
            err.to_string()
                .contains("needs a password, but `keypass` is empty"),
            "{err}"
        );
    }
}

/// Wrong passwords, many of them: about one in 256 decrypts to valid padding by chance, and
/// must still be reported as a wrong password, not as a damaged key.
#[test]
fn wrong_password_is_reported_as_such_for_every_encryption() {
    let pki = Pki::new();
    let rsa = pki.client(KeyAlg::Rsa2048);
    let ec = pki.client(KeyAlg::EcP256);
    let cases = [
        (
            &rsa,
            KeyFormat::Pkcs8EncDefault,
            "encrypted PKCS#8 key",
            400,
        ),
        (&ec, KeyFormat::Pkcs8Des3, "encrypted PKCS#8 key", 400),
        (&ec, KeyFormat::Pkcs8Scrypt, "encrypted PKCS#8 key", 3),
        (
            &rsa,
            KeyFormat::Legacy(LegacyCipher::Aes128),
            "encrypted RSA key (OpenSSL legacy PEM, AES-128-CBC)",
            1000,
        ),
        (
            &ec,
            KeyFormat::Legacy(LegacyCipher::Des3),
            "encrypted EC key (OpenSSL legacy PEM, DES-EDE3-CBC)",
            1000,
        ),
    ];
    for (client, format, what, attempts) in cases {
        let key = pki.write_key(client, format);
        let pem = std::fs::read_to_string(&key).unwrap();
        let expected = format!("key: wrong password for the {what} in {}", key.display());
        let expected_inline =
            format!("key: wrong password for the {what} in the PEM text given inline");
        for attempt in 0..attempts {
            let wrong = format!("{PASSWORD}-{attempt}");
            let source = PasswordSource::literal(wrong.as_str());
            let err = load_private_key("key", &s(&key), Some(&source)).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::WrongPassword,
                "{format:?} {wrong}: {err}"
            );
            assert_eq!(err.to_string(), expected);
            assert!(!err.to_string().contains(&wrong));
            if attempt == 0 {
                let err = load_private_key("key", &pem, Some(&source)).unwrap_err();
                assert_eq!(err.to_string(), expected_inline);
            }
        }
        // And through the whole builder.
        let p = params(&pki, &client.cert, &key, Some("not-the-password"));
        let err = expect_error(&p, "key", ErrorKind::WrongPassword);
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn keypass_for_an_unencrypted_key_is_accepted() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    for format in [KeyFormat::Pkcs8, KeyFormat::Sec1] {
        let key = pki.write_key(&client, format);
        build_client_config(&params(&pki, &client.cert, &key, Some("unused")))
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        // Not even read: a password file that does not exist is no error for a plain key.
        build_client_config(&params(
            &pki,
            &client.cert,
            &key,
            Some("file:/nonexistent/pass"),
        ))
        .unwrap_or_else(|e| panic!("{format:?}: {e}"));
    }
}

#[test]
fn unreadable_password_sources_name_keypass() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let key = pki.write_key(&client, KeyFormat::Pkcs8EncDefault);
    let missing = pki.dir().join("no-such-password-file");
    let p = params(
        &pki,
        &client.cert,
        &key,
        Some(&format!("file:{}", missing.display())),
    );
    let err = expect_error(&p, "keypass", ErrorKind::PasswordUnavailable);
    assert_eq!(
        err.to_string(),
        format!("keypass: password file {} not found", missing.display())
    );
    let p = params(
        &pki,
        &client.cert,
        &key,
        Some("env:TAGWIRE_TLS_CONFIG_TEST_UNSET_VARIABLE"),
    );
    let err = expect_error(&p, "keypass", ErrorKind::PasswordUnavailable);
    assert_eq!(
        err.to_string(),
        "keypass: environment variable TAGWIRE_TLS_CONFIG_TEST_UNSET_VARIABLE is not set"
    );
}

#[test]
fn key_that_does_not_match_the_certificate() {
    let pki = Pki::new();
    let one = pki.client(KeyAlg::EcP256);
    let two = pki.client(KeyAlg::EcP256);
    let rsa = pki.client(KeyAlg::Rsa2048);
    for other_key in [&two.key, &rsa.key] {
        let err = expect_error(
            &params(&pki, &one.cert, other_key, None),
            "key",
            ErrorKind::KeyMismatch,
        );
        assert_eq!(
            err.to_string(),
            format!(
                "key: the private key in {} does not belong to the certificate in {} (their \
                 public keys differ): give the key the certificate was issued for",
                other_key.display(),
                one.cert.display()
            )
        );
    }
    // The same for an encrypted key: the check happens after decryption.
    let encrypted = pki.write_key(&two, KeyFormat::Legacy(LegacyCipher::Aes256));
    expect_error(
        &params(&pki, &one.cert, &encrypted, Some(PASSWORD)),
        "key",
        ErrorKind::KeyMismatch,
    );
}

#[test]
fn a_malformed_certificate_names_the_field() {
    use rustls_pki_types::pem::PemObject as _;
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let mut der = rustls_pki_types::CertificateDer::from_pem_file(&client.cert)
        .unwrap()
        .to_vec();
    // notAfter, the second UTCTime (tag 0x17, 13 bytes), made an OCTET STRING.
    let (at, _) = der
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == &[0x17, 0x0d])
        .nth(1)
        .expect("a UTCTime notAfter");
    der[at] = 0x04;
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        tagwire_test_pki::base64(&der)
    );
    let mut p = params(&pki, &client.cert, &client.key, None);
    p.cert = Some(pem);
    let err = expect_error(&p, "cert", ErrorKind::BadCertificate);
    assert_eq!(
        err.to_string(),
        "cert: certificate #1 in the PEM text given inline is not a valid X.509 certificate \
         (tbsCertificate.validity.notAfter: expected a UTCTime or GeneralizedTime): give the \
         certificate in PEM (-----BEGIN CERTIFICATE-----)"
    );
}

#[test]
fn chain_in_the_wrong_order_is_recognised() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP384);
    let reversed = format!(
        "{}{}",
        std::fs::read_to_string(&pki.ca_cert).unwrap(),
        std::fs::read_to_string(&client.cert).unwrap()
    );
    let mut p = params(&pki, &client.cert, &client.key, None);
    p.cert = Some(reversed);
    let err = expect_error(&p, "cert", ErrorKind::KeyMismatch);
    assert_eq!(
        err.to_string(),
        format!(
            "cert: the key in {} belongs to certificate #2 in the PEM text given inline, but \
             the client certificate must come first, followed by its issuers: reorder the file",
            client.key.display()
        )
    );
}

#[test]
fn more_than_one_key_in_the_file() {
    let pki = Pki::new();
    let one = pki.client(KeyAlg::EcP256);
    let two = pki.client(KeyAlg::Ed25519);
    let both = format!(
        "{}{}",
        std::fs::read_to_string(&one.key).unwrap(),
        std::fs::read_to_string(&two.key).unwrap()
    );
    let mut p = params(&pki, &one.cert, &one.key, None);
    p.key = Some(both);
    let err = expect_error(&p, "key", ErrorKind::MultipleKeys);
    assert_eq!(
        err.to_string(),
        "key: the PEM text given inline holds 2 private keys; give a file with only the client key"
    );
}

#[test]
fn certificate_and_key_in_one_file_is_fine() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::Rsa2048);
    let key = pki.write_key(&client, KeyFormat::Legacy(LegacyCipher::Aes256));
    let combined = pki.file("combined");
    std::fs::write(
        &combined,
        format!(
            "{}{}",
            std::fs::read_to_string(&client.cert).unwrap(),
            std::fs::read_to_string(&key).unwrap()
        ),
    )
    .unwrap();
    build_client_config(&params(&pki, &combined, &combined, Some(PASSWORD))).unwrap();
}

/// PBES1 and PKCS#12 encryption are refused with the `openssl` command that converts the
/// key; running that command (with the passwords it would prompt for) gives a key that works.
#[test]
fn obsolete_pkcs8_encryption_names_the_conversion_command() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let cases = [
        (
            KeyFormat::Pbes1Md5Des,
            "pbeWithMD5AndDES-CBC (1.2.840.113549.1.5.3) (PKCS#5 v1.5, PBES1)",
            " -provider legacy -provider default",
        ),
        (
            KeyFormat::Pkcs12Sha13Des,
            "pbeWithSHA1And3-KeyTripleDES-CBC (1.2.840.113549.1.12.1.3) (PKCS#12 PBE)",
            "",
        ),
    ];
    for (format, scheme, providers) in cases {
        let key = pki.write_key(&client, format);
        let p = params(&pki, &client.cert, &key, Some(PASSWORD));
        let err = expect_error(&p, "key", ErrorKind::UnsupportedEncryption);
        let command = format!(
            "openssl pkcs8{providers} -topk8 -v2 aes-256-cbc -in {} -out key-v2.pem",
            key.display()
        );
        assert_eq!(
            err.to_string(),
            format!(
                "key: the encrypted PKCS#8 key in {} uses {scheme}, which tagwire does not \
                 decrypt: convert it to PBES2 with `{command}` and use the new file",
                key.display()
            )
        );
        // Without keypass the same advice comes first: no point asking for a password for
        // a key that cannot be decrypted anyway.
        expect_error(
            &params(&pki, &client.cert, &key, None),
            "key",
            ErrorKind::UnsupportedEncryption,
        );

        // Follow the advice.
        let mut args: Vec<&str> = command.split(' ').skip(1).collect();
        let passin = format!("pass:{PASSWORD}");
        args.extend_from_slice(&["-passin", &passin, "-passout", &passin]);
        pki.openssl(&args);
        let converted = pki.dir().join("key-v2.pem");
        build_client_config(&params(&pki, &client.cert, &converted, Some(PASSWORD)))
            .unwrap_or_else(|e| panic!("converted {format:?}: {e}"));
        std::fs::remove_file(converted).unwrap();
    }
}

#[test]
fn unsupported_ciphers_are_named() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::Rsa2048);
    let pass = format!("pass:{PASSWORD}");

    let camellia = pki.file("camellia-pkcs8");
    pki.openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "camellia-256-cbc",
        "-in",
        path(&client.key),
        "-passout",
        &pass,
        "-out",
        path(&camellia),
    ]);
    let err = expect_error(
        &params(&pki, &client.cert, &camellia, Some(PASSWORD)),
        "key",
        ErrorKind::UnsupportedEncryption,
    );
    assert!(
        err.to_string().contains(
            "uses PBES2 (PBKDF2 with hmacWithSHA256 (1.2.840.113549.2.9), camellia-256-cbc \
             (1.2.392.200011.61.1.1.1.4)), which tagwire does not decrypt"
        ),
        "{err}"
    );

    let legacy = pki.file("camellia-legacy");
    pki.openssl(&[
        "rsa",
        "-traditional",
        "-camellia256",
        "-in",
        path(&client.key),
        "-passout",
        &pass,
        "-out",
        path(&legacy),
    ]);
    let err = expect_error(
        &params(&pki, &client.cert, &legacy, Some(PASSWORD)),
        "key",
        ErrorKind::UnsupportedEncryption,
    );
    let expected = format!(
        "the encrypted RSA key in {} uses the cipher CAMELLIA-256-CBC, which tagwire does not \
         decrypt",
        legacy.display()
    );
    assert!(err.to_string().contains(&expected), "{err}");
}

#[test]
fn key_types_the_tls_stack_cannot_sign_with() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let cases: [(&[&str], &str); 4] = [
        (
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
            "is a 1024-bit RSA key; RSA keys must have 2048 to 8192 bits",
        ),
        (
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
            "is an EC key on curve P-521 (1.3.132.0.35); use an RSA (2048 to 8192 bits), ECDSA \
             P-256/P-384 or Ed25519 key",
        ),
        (
            &["-algorithm", "ED448"],
            "is of type Ed448 (1.3.101.113), which tagwire cannot sign TLS handshakes with; use an \
             RSA",
        ),
        (
            &["-algorithm", "X25519"],
            "is of type X25519 (1.3.101.110), which tagwire cannot sign TLS handshakes with",
        ),
    ];
    for (genpkey, expected) in cases {
        let key = pki.file("odd-key");
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genpkey);
        args.extend_from_slice(&["-out", path(&key)]);
        pki.openssl(&args);
        let err = expect_error(
            &params(&pki, &client.cert, &key, None),
            "key",
            ErrorKind::UnsupportedKeyType,
        );
        assert!(
            err.to_string()
                .starts_with(&format!("key: the key in {} {expected}", key.display())),
            "{err}"
        );
    }
}

#[test]
fn damaged_encrypted_key() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let cases = [
        (
            KeyFormat::Legacy(LegacyCipher::Aes256),
            "key: the encrypted EC key (OpenSSL legacy PEM, AES-256-CBC) in the PEM text given \
             inline is damaged: the encrypted key is",
        ),
        (
            KeyFormat::Pkcs8EncDefault,
            "key: the encrypted PKCS#8 key in the PEM text given inline is damaged",
        ),
    ];
    for (format, expected) in cases {
        let key = pki.write_key(&client, format);
        // Cut the last 4 base64 characters (3 bytes, or fewer with padding): still valid
        // base64, but the ciphertext is no longer a whole number of cipher blocks.
        let text = std::fs::read_to_string(&key).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let last_body = lines.len() - 2;
        let cut = lines[last_body].len() - 4;
        lines[last_body].truncate(cut);
        let mut p = params(&pki, &client.cert, &key, Some(PASSWORD));
        p.key = Some(lines.join("\n"));
        let err = expect_error(&p, "key", ErrorKind::BadKey);
        assert!(err.to_string().starts_with(expected), "{err}");
    }
}

#[test]
fn debug_output_hides_inline_keys_and_passwords() {
    let pki = Pki::new();
    let client = pki.client(KeyAlg::EcP256);
    let key = pki.write_key(&client, KeyFormat::Pkcs8);
    let key_text = std::fs::read_to_string(&key).unwrap();
    let body_line = key_text.lines().nth(1).unwrap();
    let p = TlsParams::default()
        .with_key(key_text.clone())
        .with_keypass(PasswordSource::literal(PASSWORD));
    let shown = format!("{p:?}");
    assert!(!shown.contains(body_line), "{shown}");
    assert_no_password(&shown);
    assert!(shown.contains("Inline(<"), "{shown}");
}
