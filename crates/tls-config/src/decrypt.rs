//! Encrypted private keys (the `encrypted-keys` feature): PKCS#8 `ENCRYPTED PRIVATE KEY`
//! (PBES2 with PBKDF2 or scrypt, AES or DES) and OpenSSL's legacy encrypted PEM
//! (`Proc-Type: 4,ENCRYPTED`, see [`crate::legacy`]). Without the feature,
//! `no_decrypt.rs` takes this module's place and refuses such keys with the `openssl`
//! command that decrypts them.

use pkcs8::der::asn1::{AnyRef, OctetStringRef};
use pkcs8::der::zeroize::Zeroizing;
use pkcs8::der::{Decode as _, Reader as _};
use pkcs8::spki::AlgorithmIdentifierRef;
use pkcs8::ObjectIdentifier;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

use crate::error::{ErrorKind, TlsConfigError};
use crate::key::{unsupported_label, KeyContext};
use crate::legacy::{DekInfo, DekInfoError};
use crate::oids;
use crate::password::{PasswordSource, Secret};
use crate::pem::Block;

/// The most memory an scrypt-encrypted key may ask for. OpenSSL's own default limit is
/// 32 MiB; a key asking for far more is more likely hostile than real.
const SCRYPT_MAX_MEMORY: u64 = 256 * 1024 * 1024;

impl KeyContext<'_> {
    /// The password, or an error saying that this encrypted key needs one.
    fn password(&self, what: &str) -> Result<Secret, TlsConfigError> {
        match self.keypass {
            Some(source) => source.resolve(),
            None => Err(self.error(
                ErrorKind::KeypassMissing,
                format!(
                    "the {what} in {} needs a password, but `keypass` is not set: set keypass \
                     to the password, to file:/path/of/a/password/file or to env:VARIABLE",
                    self.origin
                ),
            )),
        }
    }

    fn wrong_password(&self, what: &str) -> TlsConfigError {
        // Neuron sends `"keypass": ""` when no password was entered; an empty password
        // was tried (a key may really have one), but "not set" is the likelier story.
        if matches!(self.keypass, Some(PasswordSource::Literal(p)) if p.expose().is_empty()) {
            return self.error(
                ErrorKind::KeypassMissing,
                format!(
                    "the {what} in {} needs a password, but `keypass` is empty: set keypass to \
                     the password, to file:/path/of/a/password/file or to env:VARIABLE",
                    self.origin
                ),
            );
        }
        self.error(
            ErrorKind::WrongPassword,
            format!("wrong password for the {what} in {}", self.origin),
        )
    }

    fn damaged(&self, what: &str, detail: impl std::fmt::Display) -> TlsConfigError {
        self.error(
            ErrorKind::BadKey,
            format!("the {what} in {} is damaged: {detail}", self.origin),
        )
    }

    /// `ENCRYPTED PRIVATE KEY`: PKCS#8 `EncryptedPrivateKeyInfo`.
    pub(crate) fn decrypt_pkcs8(
        &self,
        block: &Block<'_>,
    ) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
        const WHAT: &str = "encrypted PKCS#8 key";
        let der = block.decode_body().map_err(|msg| self.damaged(WHAT, msg))?;
        let (algorithm, ciphertext) =
            parse_encrypted_private_key_info(&der).map_err(|err| self.damaged(WHAT, err))?;

        if algorithm.oid != ObjectIdentifier::new_unwrap(oids::PBES2) {
            return Err(self.unsupported_pkcs8_scheme(&algorithm.oid, None));
        }
        let scheme = match pkcs8::pkcs5::EncryptionScheme::try_from(algorithm) {
            Ok(scheme) => scheme,
            Err(_) => {
                let description = algorithm
                    .parameters
                    .map(describe_pbes2)
                    .unwrap_or_else(|| "PBES2 without parameters".to_owned());
                return Err(self.unsupported_pkcs8_scheme(&algorithm.oid, Some(description)));
            }
        };
        if let Some(scrypt) = scheme.pbes2().and_then(|p| p.kdf.scrypt()) {
            // scrypt needs 128 * r * N bytes of memory; refuse absurd demands up front
            // instead of aborting on a failed allocation.
            let memory = 128u64
                .saturating_mul(u64::from(scrypt.block_size))
                .saturating_mul(scrypt.cost_parameter);
            if memory > SCRYPT_MAX_MEMORY {
                return Err(self.error(
                    ErrorKind::UnsupportedEncryption,
                    format!(
                        "the {WHAT} in {} uses scrypt with N={} r={}, which needs {} MiB of \
                         memory (the limit is {} MiB): re-encrypt it with `openssl pkcs8 -topk8 \
                         -v2 aes-256-cbc -in {} -out key-v2.pem`",
                        self.origin,
                        scrypt.cost_parameter,
                        scrypt.block_size,
                        memory / (1024 * 1024),
                        SCRYPT_MAX_MEMORY / (1024 * 1024),
                        self.origin.path_for_command(),
                    ),
                ));
            }
        }

        // A ciphertext of partial blocks is damage, not a wrong password (checked here
        // because the decryption below reports both the same way).
        let block_len = match scheme.pbes2().map(|p| p.encryption.oid().to_string()) {
            Some(oid) if oid.starts_with("2.16.840.1.101.3.4.1.") => 16,
            _ => 8,
        };
        if ciphertext.is_empty() || ciphertext.len() % block_len != 0 {
            return Err(self.damaged(
                WHAT,
                format!(
                    "the encrypted data is {} bytes long, not a whole number of {block_len}-byte \
                     blocks",
                    ciphertext.len()
                ),
            ));
        }

        let password = self.password(WHAT)?;
        let plain = match scheme.decrypt(password.expose(), ciphertext) {
            Ok(plain) => Zeroizing::new(plain),
            // Bad padding after decryption: the password is wrong. (pkcs5 0.7 reports a
            // padding failure while decrypting as `EncryptFailed`, hence both.)
            Err(pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed) => {
                return Err(self.wrong_password(WHAT))
            }
            Err(pkcs8::pkcs5::Error::UnsupportedAlgorithm { oid }) => {
                return Err(self.unsupported_pkcs8_scheme(&oid, None))
            }
            Err(err) => return Err(self.damaged(WHAT, err)),
        };
        // Right padding by chance (about 1 in 256 for a wrong password) still leaves noise
        // that is not a PrivateKeyInfo.
        if pkcs8::PrivateKeyInfo::try_from(&plain[..]).is_err() {
            return Err(self.wrong_password(WHAT));
        }
        Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.to_vec(),
        )))
    }

    /// An encryption scheme we do not decrypt, with the `openssl` command that converts the
    /// key to one we do.
    fn unsupported_pkcs8_scheme(
        &self,
        oid: &ObjectIdentifier,
        pbes2_description: Option<String>,
    ) -> TlsConfigError {
        let (scheme, legacy) = if oids::is_pbes1(oid) {
            (
                format!("{} (PKCS#5 v1.5, PBES1)", oids::describe(oid)),
                oids::needs_openssl_legacy_provider(oid),
            )
        } else if oids::is_pkcs12_pbe(oid) {
            (
                format!("{} (PKCS#12 PBE)", oids::describe(oid)),
                oids::needs_openssl_legacy_provider(oid),
            )
        } else if let Some(description) = pbes2_description {
            (description, false)
        } else {
            (oids::describe(oid), false)
        };
        let providers = if legacy {
            " -provider legacy -provider default"
        } else {
            ""
        };
        self.error(
            ErrorKind::UnsupportedEncryption,
            format!(
                "the encrypted PKCS#8 key in {} uses {scheme}, which tagwire does not decrypt: \
                 convert it to PBES2 with `openssl pkcs8{providers} -topk8 -v2 aes-256-cbc -in \
                 {} -out key-v2.pem` and use the new file",
                self.origin,
                self.origin.path_for_command()
            ),
        )
    }

    /// `RSA PRIVATE KEY` / `EC PRIVATE KEY` with `Proc-Type: 4,ENCRYPTED` and `DEK-Info`.
    pub(crate) fn decrypt_legacy(
        &self,
        block: &Block<'_>,
    ) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
        let kind = match block.label {
            "RSA PRIVATE KEY" => "RSA",
            "EC PRIVATE KEY" => "EC",
            "PRIVATE KEY" => "PKCS#8",
            other => return Err(unsupported_label(self.parameter, self.origin, other)),
        };
        let Some(dek_info) = block.header("DEK-Info") else {
            return Err(self.damaged(
                &format!("encrypted {kind} key"),
                "Proc-Type says ENCRYPTED but there is no DEK-Info header",
            ));
        };
        let dek = match DekInfo::parse(dek_info) {
            Ok(dek) => dek,
            Err(DekInfoError::UnsupportedCipher(name)) => {
                return Err(self.error(
                    ErrorKind::UnsupportedEncryption,
                    format!(
                        "the encrypted {kind} key in {} uses the cipher {name}, which tagwire \
                         does not decrypt (AES-128/192/256-CBC, DES-EDE3-CBC and DES-CBC are \
                         supported): convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in \
                         {} -out key-v2.pem`",
                        self.origin,
                        self.origin.path_for_command()
                    ),
                ))
            }
            Err(DekInfoError::Malformed(msg)) => {
                return Err(self.damaged(&format!("encrypted {kind} key"), msg))
            }
        };
        let what = format!(
            "encrypted {kind} key (OpenSSL legacy PEM, {})",
            dek.cipher.name()
        );
        let ciphertext = block
            .decode_body()
            .map_err(|msg| self.damaged(&what, msg))?;
        let password = self.password(&what)?;
        let plain = dek
            .decrypt(password.expose(), &ciphertext)
            .map_err(|msg| self.damaged(&what, msg))?
            .ok_or_else(|| self.wrong_password(&what))?;

        // Padding can be right by chance; the structure underneath cannot.
        let key = match kind {
            "RSA" => pkcs1::RsaPrivateKey::try_from(&plain[..])
                .ok()
                .map(|_| PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(plain.to_vec()))),
            "EC" => sec1::EcPrivateKey::try_from(&plain[..])
                .ok()
                .map(|_| PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(plain.to_vec()))),
            _ => pkcs8::PrivateKeyInfo::try_from(&plain[..])
                .ok()
                .map(|_| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain.to_vec()))),
        };
        key.ok_or_else(|| self.wrong_password(&what))
    }
}

/// `EncryptedPrivateKeyInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING }`, read
/// without interpreting the algorithm, so that schemes the `pkcs8` crate does not know
/// (PKCS#12 PBE) still get a name in the error.
fn parse_encrypted_private_key_info(
    der: &[u8],
) -> Result<(AlgorithmIdentifierRef<'_>, &[u8]), pkcs8::der::Error> {
    AnyRef::from_der(der)?.sequence(|reader| {
        let algorithm: AlgorithmIdentifierRef<'_> = reader.decode()?;
        let data: OctetStringRef<'_> = reader.decode()?;
        Ok((algorithm, data.as_bytes()))
    })
}

/// `"PBES2 with PBKDF2-hmacWithSHA512-256 and camellia-256-cbc (…)"`: names the parts of
/// PBES2 parameters the `pkcs5` crate refused, so the user learns which one is the problem.
fn describe_pbes2(params: AnyRef<'_>) -> String {
    let parsed = params.sequence(|reader| {
        let kdf: AlgorithmIdentifierRef<'_> = reader.decode()?;
        let cipher: AlgorithmIdentifierRef<'_> = reader.decode()?;
        Ok((kdf, cipher))
    });
    let Ok((kdf, cipher)) = parsed else {
        return "PBES2 with parameters that cannot be read".to_owned();
    };
    let kdf_name = if kdf.oid == ObjectIdentifier::new_unwrap(oids::PBKDF2) {
        let prf = kdf.parameters.and_then(|p| pbkdf2_prf(p).ok()).flatten();
        match prf {
            Some(prf) => format!("PBKDF2 with {}", oids::describe(&prf)),
            None => "PBKDF2 with hmacWithSHA1".to_owned(),
        }
    } else {
        oids::describe(&kdf.oid)
    };
    format!("PBES2 ({kdf_name}, {})", oids::describe(&cipher.oid))
}

/// The PRF of `PBKDF2-params ::= SEQUENCE { salt, iterationCount, keyLength OPTIONAL,
/// prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }`.
fn pbkdf2_prf(params: AnyRef<'_>) -> Result<Option<ObjectIdentifier>, pkcs8::der::Error> {
    params.sequence(|reader| {
        let _salt: AnyRef<'_> = reader.decode()?;
        let _iterations: AnyRef<'_> = reader.decode()?;
        let mut prf = None;
        while !reader.is_finished() {
            if reader.peek_tag()? == pkcs8::der::Tag::Sequence {
                let algorithm: AlgorithmIdentifierRef<'_> = reader.decode()?;
                prf = Some(algorithm.oid);
            } else {
                let _key_length: AnyRef<'_> = reader.decode()?;
            }
        }
        Ok(prf)
    })
}
