//! Names for the object identifiers that show up in keys, for error messages.

use pkcs8::ObjectIdentifier;

/// PKCS#5 v2 password-based encryption scheme 2.
pub(crate) const PBES2: &str = "1.2.840.113549.1.5.13";
/// PKCS#5 v2 PBKDF2 key derivation.
pub(crate) const PBKDF2: &str = "1.2.840.113549.1.5.12";

/// id-ecPublicKey: the algorithm of every ECDSA key.
pub(crate) const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// rsaEncryption: the algorithm of ordinary RSA keys.
pub(crate) const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// OIDs with the names OpenSSL uses for them.
const NAMES: &[(&str, &str)] = &[
    // PBES2 and its parts
    (PBES2, "PBES2"),
    (PBKDF2, "PBKDF2"),
    ("1.3.6.1.4.1.11591.4.11", "scrypt"),
    ("1.2.840.113549.2.7", "hmacWithSHA1"),
    ("1.2.840.113549.2.8", "hmacWithSHA224"),
    ("1.2.840.113549.2.9", "hmacWithSHA256"),
    ("1.2.840.113549.2.10", "hmacWithSHA384"),
    ("1.2.840.113549.2.11", "hmacWithSHA512"),
    ("1.2.840.113549.2.12", "hmacWithSHA512-224"),
    ("1.2.840.113549.2.13", "hmacWithSHA512-256"),
    ("1.2.156.10197.1.401.2", "hmacWithSM3"),
    ("2.16.840.1.101.3.4.1.2", "aes-128-cbc"),
    ("2.16.840.1.101.3.4.1.22", "aes-192-cbc"),
    ("2.16.840.1.101.3.4.1.42", "aes-256-cbc"),
    ("2.16.840.1.101.3.4.1.6", "aes-128-gcm"),
    ("2.16.840.1.101.3.4.1.26", "aes-192-gcm"),
    ("2.16.840.1.101.3.4.1.46", "aes-256-gcm"),
    ("1.2.840.113549.3.7", "des-ede3-cbc"),
    ("1.3.14.3.2.7", "des-cbc"),
    ("1.2.840.113549.3.2", "rc2-cbc"),
    ("1.2.392.200011.61.1.1.1.2", "camellia-128-cbc"),
    ("1.2.392.200011.61.1.1.1.3", "camellia-192-cbc"),
    ("1.2.392.200011.61.1.1.1.4", "camellia-256-cbc"),
    ("1.2.410.200046.1.1.2", "aria-128-cbc"),
    ("1.2.410.200046.1.1.7", "aria-192-cbc"),
    ("1.2.410.200046.1.1.12", "aria-256-cbc"),
    ("1.2.156.10197.1.104.2", "sm4-cbc"),
    // PKCS#5 v1.5 (PBES1)
    ("1.2.840.113549.1.5.1", "pbeWithMD2AndDES-CBC"),
    ("1.2.840.113549.1.5.4", "pbeWithMD2AndRC2-CBC"),
    ("1.2.840.113549.1.5.3", "pbeWithMD5AndDES-CBC"),
    ("1.2.840.113549.1.5.6", "pbeWithMD5AndRC2-CBC"),
    ("1.2.840.113549.1.5.10", "pbeWithSHA1AndDES-CBC"),
    ("1.2.840.113549.1.5.11", "pbeWithSHA1AndRC2-CBC"),
    // PKCS#12 password-based encryption
    ("1.2.840.113549.1.12.1.1", "pbeWithSHA1And128BitRC4"),
    ("1.2.840.113549.1.12.1.2", "pbeWithSHA1And40BitRC4"),
    (
        "1.2.840.113549.1.12.1.3",
        "pbeWithSHA1And3-KeyTripleDES-CBC",
    ),
    (
        "1.2.840.113549.1.12.1.4",
        "pbeWithSHA1And2-KeyTripleDES-CBC",
    ),
    ("1.2.840.113549.1.12.1.5", "pbeWithSHA1And128BitRC2-CBC"),
    ("1.2.840.113549.1.12.1.6", "pbeWithSHA1And40BitRC2-CBC"),
    // key algorithms and curves
    (RSA_ENCRYPTION, "RSA"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS"),
    (EC_PUBLIC_KEY, "EC"),
    ("1.2.840.10040.4.1", "DSA"),
    ("1.2.840.10046.2.1", "DH"),
    ("1.3.101.110", "X25519"),
    ("1.3.101.111", "X448"),
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
    ("1.2.840.10045.3.1.7", "P-256"),
    ("1.3.132.0.34", "P-384"),
    ("1.3.132.0.35", "P-521"),
    ("1.3.132.0.10", "secp256k1"),
    ("1.2.840.10045.3.1.1", "P-192"),
    ("1.3.132.0.33", "P-224"),
    ("1.3.36.3.3.2.8.1.1.7", "brainpoolP256r1"),
    ("1.3.36.3.3.2.8.1.1.11", "brainpoolP384r1"),
    ("1.3.36.3.3.2.8.1.1.13", "brainpoolP512r1"),
    ("1.2.156.10197.1.301", "SM2"),
];

/// `"name (OID)"` for a known OID, `"OID a.b.c"` otherwise.
pub(crate) fn describe(oid: &ObjectIdentifier) -> String {
    match name(oid) {
        Some(name) => format!("{name} ({oid})"),
        None => format!("OID {oid}"),
    }
}

/// The short name of a known OID.
pub(crate) fn name(oid: &ObjectIdentifier) -> Option<&'static str> {
    let text = oid.to_string();
    NAMES
        .iter()
        .find(|(known, _)| *known == text)
        .map(|(_, name)| *name)
}

#[cfg(feature = "encrypted-keys")] // only the decryption names schemes
/// True for the OIDs of PKCS#5 v1.5 (PBES1) schemes.
pub(crate) fn is_pbes1(oid: &ObjectIdentifier) -> bool {
    oid.to_string().starts_with("1.2.840.113549.1.5.") && !is_pbes2_family(oid)
}

#[cfg(feature = "encrypted-keys")] // only the decryption names schemes
/// True for the OIDs of PKCS#12 password-based encryption.
pub(crate) fn is_pkcs12_pbe(oid: &ObjectIdentifier) -> bool {
    oid.to_string().starts_with("1.2.840.113549.1.12.1.")
}

#[cfg(feature = "encrypted-keys")] // only the decryption names schemes
fn is_pbes2_family(oid: &ObjectIdentifier) -> bool {
    // PBKDF2 (.12), PBES2 (.13) and PBMAC1 (.14) share the PKCS#5 arc with PBES1.
    matches!(
        oid.to_string().as_str(),
        "1.2.840.113549.1.5.12" | "1.2.840.113549.1.5.13" | "1.2.840.113549.1.5.14"
    )
}

#[cfg(feature = "encrypted-keys")] // only the decryption names schemes
/// True when OpenSSL 3 needs its legacy provider to read keys encrypted with this scheme
/// (single DES, RC2, RC4 and MD2 live there).
pub(crate) fn needs_openssl_legacy_provider(oid: &ObjectIdentifier) -> bool {
    match name(oid) {
        Some(name) => {
            name.contains("DES-CBC") && !name.contains("TripleDES")
                || name.contains("RC2")
                || name.contains("RC4")
                || name.contains("MD2")
        }
        None => true,
    }
}

// Every function tested here names encryption schemes (the `encrypted-keys` feature).
#[cfg(all(test, feature = "encrypted-keys"))]
mod tests {
    use super::*;

    fn oid(s: &str) -> ObjectIdentifier {
        ObjectIdentifier::new_unwrap(s)
    }

    #[test]
    fn names_and_families() {
        assert_eq!(
            describe(&oid("1.2.840.113549.1.5.3")),
            "pbeWithMD5AndDES-CBC (1.2.840.113549.1.5.3)"
        );
        assert_eq!(describe(&oid("1.2.3.4")), "OID 1.2.3.4");
        assert!(is_pbes1(&oid("1.2.840.113549.1.5.3")));
        assert!(!is_pbes1(&oid(PBES2)));
        assert!(is_pkcs12_pbe(&oid("1.2.840.113549.1.12.1.3")));
        assert!(needs_openssl_legacy_provider(&oid("1.2.840.113549.1.5.3")));
        assert!(!needs_openssl_legacy_provider(&oid(
            "1.2.840.113549.1.12.1.3"
        )));
        assert!(needs_openssl_legacy_provider(&oid(
            "1.2.840.113549.1.12.1.5"
        )));
    }
}
