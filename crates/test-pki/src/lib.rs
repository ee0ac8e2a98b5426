//! Test support only (not published): certificates and keys for the TLS end-to-end
//! tests, made at test time by the `openssl` command line (OpenSSL 3), once per test
//! binary: a CA, server certificates (for `localhost`, for `gateway.test` only,
//! expired, not yet valid), client certificates of several key types, and each client
//! key written in every format the issue names.
//!
//! Every file is checked after `openssl` wrote it (PEM label, `DEK-Info`, the algorithm
//! identifiers inside an encrypted PKCS#8 key, and that an encrypted key really refuses a
//! wrong password), so a change in OpenSSL's defaults, or one of its traps (OpenSSL 3.0
//! writes a key *unencrypted*, and says nothing, when a legacy cipher is asked for without
//! the legacy provider), cannot make a test cover something other than it claims.
//! The daemon's tests use [`Pki::shared`]: files that only need to be right and quick to
//! make (ECDSA P-256 wherever the key type does not matter, one RSA 2048 key). The
//! tls-config crate's tests cover the whole cross product of key types and formats with
//! [`TempPki`], a PKI of their own per test in a temporary directory. Both are made by the
//! same commands ([`Openssl`], [`KeyFormat::write`]) and checked by the same code.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod temp;
pub use temp::TempPki;

/// The password of every encrypted key made here. Tests assert it never shows up in a
/// message, an error or a log.
pub const PASSWORD: &str = "e2e-Tw-k3y-p@ss";

/// OpenSSL configuration for every command run here, so that the system's `openssl.cnf`
/// cannot change what is made: `req` defaults, the extensions of each certificate kind,
/// and `openssl ca` (used only to make certificates with chosen validity dates).
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[gateway]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:gateway.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca]
default_ca = testca
[testca]
database = ca-index.txt
new_certs_dir = .
serial = ca-serial.txt
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
";

/// A certificate and its private key (unencrypted PKCS#8, as `genpkey` writes it, unless
/// a recipe wrote it otherwise).
#[derive(Clone, Debug)]
pub struct Identity {
    pub alg: KeyAlg,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Key algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlg {
    Rsa2048,
    Rsa4096,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyAlg {
    pub const ALL: [KeyAlg; 5] = [
        KeyAlg::Rsa2048,
        KeyAlg::Rsa4096,
        KeyAlg::EcP256,
        KeyAlg::EcP384,
        KeyAlg::Ed25519,
    ];

    fn genpkey_args(self) -> &'static [&'static str] {
        match self {
            KeyAlg::Rsa2048 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            KeyAlg::Rsa4096 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
            KeyAlg::EcP256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyAlg::EcP384 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            KeyAlg::Ed25519 => &["-algorithm", "ED25519"],
        }
    }

    /// `openssl req -newkey` spelling of the algorithm.
    fn newkey_args(self) -> &'static [&'static str] {
        match self {
            KeyAlg::Rsa2048 => &["-newkey", "rsa:2048"],
            KeyAlg::Rsa4096 => &["-newkey", "rsa:4096"],
            KeyAlg::EcP256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyAlg::EcP384 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            KeyAlg::Ed25519 => &["-newkey", "ed25519"],
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, KeyAlg::Rsa2048 | KeyAlg::Rsa4096)
    }

    pub fn is_ec(self) -> bool {
        matches!(self, KeyAlg::EcP256 | KeyAlg::EcP384)
    }
}

/// How a key is written. Each format knows the `openssl` command that writes it and what
/// the result must look like, so a test cannot silently test the wrong thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFormat {
    /// `genpkey` output: unencrypted PKCS#8.
    Pkcs8,
    /// `openssl rsa -traditional`: PKCS#1 (RSA only).
    Pkcs1,
    /// `openssl ec`: SEC1 (EC only).
    Sec1,
    /// `openssl pkcs8 -topk8` with OpenSSL 3's defaults (PBES2, PBKDF2-SHA256, AES-256-CBC).
    Pkcs8EncDefault,
    /// `-v2 aes-256-cbc -v2prf hmacWithSHA1`.
    Pkcs8Aes256Sha1,
    /// `-v2 aes-128-cbc`.
    Pkcs8Aes128,
    /// `-v2 aes-192-cbc`.
    Pkcs8Aes192,
    /// `-v2 des3`.
    Pkcs8Des3,
    /// `-v2 aes-256-cbc -v2prf hmacWithSHA512`.
    Pkcs8Aes256Sha512,
    /// `-scrypt`.
    Pkcs8Scrypt,
    /// `-v2 des-cbc` (needs OpenSSL's legacy provider to write).
    Pkcs8DesCbc,
    /// OpenSSL legacy PEM (`Proc-Type: 4,ENCRYPTED`), RSA and EC only, with this
    /// `openssl rsa|ec` cipher option.
    Legacy(LegacyCipher),
    /// PKCS#5 v1.5 `-v1 PBE-MD5-DES` (needs the legacy provider): must be refused with the
    /// command that converts it.
    Pbes1Md5Des,
    /// PKCS#12 `-v1 PBE-SHA1-3DES`: must be refused likewise.
    Pkcs12Sha13Des,
}

/// Ciphers of OpenSSL's legacy PEM encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyCipher {
    Aes128,
    Aes192,
    Aes256,
    Des3,
    Des,
}

impl LegacyCipher {
    pub const ALL: [LegacyCipher; 5] = [
        LegacyCipher::Aes128,
        LegacyCipher::Aes192,
        LegacyCipher::Aes256,
        LegacyCipher::Des3,
        LegacyCipher::Des,
    ];

    fn option(self) -> &'static str {
        match self {
            LegacyCipher::Aes128 => "-aes128",
            LegacyCipher::Aes192 => "-aes192",
            LegacyCipher::Aes256 => "-aes256",
            LegacyCipher::Des3 => "-des3",
            LegacyCipher::Des => "-des",
        }
    }

    fn dek_info_name(self) -> &'static str {
        match self {
            LegacyCipher::Aes128 => "AES-128-CBC",
            LegacyCipher::Aes192 => "AES-192-CBC",
            LegacyCipher::Aes256 => "AES-256-CBC",
            LegacyCipher::Des3 => "DES-EDE3-CBC",
            LegacyCipher::Des => "DES-CBC",
        }
    }
}

/// The options that make `openssl` load its legacy provider (single DES, PBES1).
const LEGACY_PROVIDER: [&str; 4] = ["-provider", "legacy", "-provider", "default"];

/// What a key file must look like: its PEM label, the `openssl asn1parse` OBJECT names
/// of an encrypted PKCS#8 key, or the `DEK-Info` cipher of a legacy encrypted one.
struct Expected {
    label: &'static str,
    objects: &'static [&'static str],
    dek: Option<&'static str>,
    encrypted: bool,
    /// Reading it needs OpenSSL's legacy provider.
    legacy: bool,
}

impl KeyFormat {
    /// Every format that must load and work, for this key algorithm.
    pub fn working_for(alg: KeyAlg) -> Vec<KeyFormat> {
        let mut formats = vec![
            KeyFormat::Pkcs8,
            KeyFormat::Pkcs8EncDefault,
            KeyFormat::Pkcs8Aes256Sha1,
            KeyFormat::Pkcs8Aes128,
            KeyFormat::Pkcs8Aes192,
            KeyFormat::Pkcs8Des3,
            KeyFormat::Pkcs8Aes256Sha512,
            KeyFormat::Pkcs8Scrypt,
            KeyFormat::Pkcs8DesCbc,
        ];
        if alg.is_rsa() {
            formats.push(KeyFormat::Pkcs1);
        }
        if alg.is_ec() {
            formats.push(KeyFormat::Sec1);
        }
        // OpenSSL has no traditional format for Ed25519, so no legacy encryption either.
        if alg.is_rsa() || alg.is_ec() {
            formats.extend(LegacyCipher::ALL.map(KeyFormat::Legacy));
        }
        formats
    }

    pub fn is_encrypted(self) -> bool {
        !matches!(self, KeyFormat::Pkcs8 | KeyFormat::Pkcs1 | KeyFormat::Sec1)
    }

    /// A short name for file names and failure reports.
    pub fn name(self) -> String {
        format!("{self:?}").replace(['(', ')'], "-")
    }

    /// Writes `source`'s key (unencrypted PKCS#8) to `out` in this format, encrypted ones
    /// with [`PASSWORD`], and checks the result is what the format promises.
    pub fn write(self, run: &Openssl, source: &Identity, out: &Path) {
        let (inp, outp) = (p(&source.key), p(out));
        let pass = format!("pass:{PASSWORD}");
        let topk8 = |extra: &[&str]| {
            let mut args = vec![
                "pkcs8", "-topk8", "-in", inp, "-passout", &pass, "-out", outp,
            ];
            args.extend_from_slice(extra);
            run.openssl(&args);
        };
        match self {
            KeyFormat::Pkcs8 => {
                std::fs::copy(&source.key, out).unwrap();
            }
            KeyFormat::Pkcs1 => {
                run.openssl(&["rsa", "-in", inp, "-traditional", "-out", outp]);
            }
            KeyFormat::Sec1 => {
                run.openssl(&["ec", "-in", inp, "-out", outp]);
            }
            KeyFormat::Pkcs8EncDefault => topk8(&[]),
            KeyFormat::Pkcs8Aes256Sha1 => topk8(&["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1"]),
            KeyFormat::Pkcs8Aes128 => topk8(&["-v2", "aes-128-cbc"]),
            KeyFormat::Pkcs8Aes192 => topk8(&["-v2", "aes-192-cbc"]),
            KeyFormat::Pkcs8Des3 => topk8(&["-v2", "des3"]),
            KeyFormat::Pkcs8Aes256Sha512 => {
                topk8(&["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA512"])
            }
            KeyFormat::Pkcs8Scrypt => topk8(&["-scrypt"]),
            KeyFormat::Pkcs8DesCbc => {
                let mut args = LEGACY_PROVIDER.to_vec();
                args.extend_from_slice(&["-v2", "des-cbc"]);
                topk8(&args);
            }
            KeyFormat::Legacy(cipher) => {
                let tool = if source.alg.is_rsa() { "rsa" } else { "ec" };
                let mut args = vec![tool, "-in", inp, cipher.option(), "-passout", &pass];
                args.extend_from_slice(&["-out", outp]);
                if source.alg.is_rsa() {
                    args.push("-traditional");
                }
                // Without the legacy provider OpenSSL 3.0 writes single-DES keys
                // *unencrypted* and reports success (the check catches that).
                if cipher == LegacyCipher::Des {
                    args.extend_from_slice(&LEGACY_PROVIDER);
                }
                run.openssl(&args);
            }
            KeyFormat::Pbes1Md5Des => {
                let mut args = LEGACY_PROVIDER.to_vec();
                args.extend_from_slice(&["-v1", "PBE-MD5-DES"]);
                topk8(&args);
            }
            KeyFormat::Pkcs12Sha13Des => topk8(&["-v1", "PBE-SHA1-3DES"]),
        }
        self.expected(source.alg)
            .check(run, out, &format!("{self:?}"));
    }

    fn expected(self, alg: KeyAlg) -> Expected {
        const ENC: &str = "ENCRYPTED PRIVATE KEY";
        let (label, objects, dek): (_, &'static [&'static str], _) = match self {
            KeyFormat::Pkcs8 => ("PRIVATE KEY", &[], None),
            KeyFormat::Pkcs1 => ("RSA PRIVATE KEY", &[], None),
            KeyFormat::Sec1 => ("EC PRIVATE KEY", &[], None),
            KeyFormat::Pkcs8EncDefault => (ENC, &["PBES2", "hmacWithSHA256", "aes-256-cbc"], None),
            // hmacWithSHA1 is PBKDF2's default PRF, so DER leaves it out (checked too).
            KeyFormat::Pkcs8Aes256Sha1 => (ENC, &["PBES2", "PBKDF2", "aes-256-cbc"], None),
            KeyFormat::Pkcs8Aes128 => (ENC, &["PBES2", "aes-128-cbc"], None),
            KeyFormat::Pkcs8Aes192 => (ENC, &["PBES2", "aes-192-cbc"], None),
            KeyFormat::Pkcs8Des3 => (ENC, &["PBES2", "des-ede3-cbc"], None),
            KeyFormat::Pkcs8Aes256Sha512 => (ENC, &["PBES2", "hmacWithSHA512"], None),
            KeyFormat::Pkcs8Scrypt => (ENC, &["PBES2", "scrypt"], None),
            KeyFormat::Pkcs8DesCbc => (ENC, &["PBES2", "des-cbc"], None),
            KeyFormat::Legacy(cipher) => {
                let label = if alg.is_rsa() {
                    "RSA PRIVATE KEY"
                } else {
                    "EC PRIVATE KEY"
                };
                (label, &[], Some(cipher.dek_info_name()))
            }
            KeyFormat::Pbes1Md5Des => (ENC, &["pbeWithMD5AndDES-CBC"], None),
            KeyFormat::Pkcs12Sha13Des => (ENC, &["pbeWithSHA1And3-KeyTripleDES-CBC"], None),
        };
        Expected {
            label,
            objects,
            dek,
            encrypted: self.is_encrypted(),
            legacy: matches!(
                self,
                KeyFormat::Pkcs8DesCbc
                    | KeyFormat::Pbes1Md5Des
                    | KeyFormat::Legacy(LegacyCipher::Des)
            ),
        }
    }
}

impl Expected {
    /// Asserts that `file` is what `openssl` was asked for, so a change in OpenSSL's
    /// defaults cannot quietly make a test cover something else, and that an encrypted key
    /// really is encrypted: `openssl pkey` reads it with [`PASSWORD`] and refuses another.
    fn check(&self, run: &Openssl, file: &Path, what: &str) {
        let text = std::fs::read_to_string(file).unwrap();
        let first = format!("-----BEGIN {}-----", self.label);
        assert_eq!(
            text.lines().next(),
            Some(first.as_str()),
            "{what}: {}",
            file.display()
        );
        if let Some(cipher) = self.dek {
            assert!(text.contains("Proc-Type: 4,ENCRYPTED"), "{what}: {text}");
            let dek = format!("DEK-Info: {cipher},");
            assert!(
                text.contains(&dek),
                "{what}: {} lacks {dek}",
                file.display()
            );
        }
        if !self.objects.is_empty() {
            let parsed = run.openssl(&["asn1parse", "-in", p(file)]);
            let names: Vec<&str> = parsed
                .lines()
                .filter(|l| l.contains("OBJECT"))
                .filter_map(|l| l.rsplit(':').next())
                .map(str::trim)
                .collect();
            for object in self.objects {
                assert!(
                    names.contains(object),
                    "{what}: {} should use {object}: {names:?}",
                    file.display()
                );
            }
            // PBKDF2 named without a PRF: the default one, hmacWithSHA1, which DER omits.
            if self.objects.contains(&"PBKDF2") {
                assert!(
                    !names.iter().any(|n| n.starts_with("hmacWith")),
                    "{what}: {names:?}"
                );
            }
        }
        let read = |password: &str| {
            let pass = format!("pass:{password}");
            let mut args = vec!["pkey", "-in", p(file), "-passin", &pass, "-noout"];
            if self.legacy {
                args.extend_from_slice(&LEGACY_PROVIDER);
            }
            run.try_openssl(&args)
        };
        if self.encrypted {
            read(PASSWORD).unwrap_or_else(|e| panic!("{what} does not open: {e}"));
            assert!(
                read("not-the-password").is_err(),
                "{what}: {} opens with any password: it is not encrypted",
                file.display()
            );
        } else {
            assert!(!text.contains("ENCRYPTED"), "{what} should be plain");
        }
    }
}

/// A key written one particular way, made by [`Pki::shared`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyVariant {
    /// OpenSSL 3's default output (`genpkey`): unencrypted PKCS#8, ECDSA P-256.
    Pkcs8Plain,
    /// `openssl pkcs8 -topk8` with OpenSSL 3's defaults: PBES2, PBKDF2-HMAC-SHA256,
    /// AES-256-CBC.
    Pkcs8EncDefault,
    /// `openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA1` (RSA 2048).
    Pkcs8Sha1Prf,
    /// `openssl pkcs8 -topk8 -v2 des3`.
    Pkcs8Des3,
    /// `openssl pkcs8 -topk8 -scrypt` (Ed25519).
    Pkcs8Scrypt,
    /// `openssl rsa -traditional`: unencrypted PKCS#1.
    RsaPkcs1Plain,
    /// `openssl rsa -traditional -aes256`: legacy `Proc-Type: 4,ENCRYPTED` PEM.
    RsaLegacyAes256,
    /// `openssl rsa -traditional -des3`.
    RsaLegacyDes3,
    /// `openssl ec`: unencrypted SEC1.
    EcSec1Plain,
    /// `openssl ec -aes256`: legacy encrypted SEC1.
    EcLegacyAes256,
    /// The key `openssl req -newkey ec` writes without `-nodes`: encrypted PKCS#8 (PBES2,
    /// PBKDF2-HMAC-SHA256, DES-EDE3-CBC with OpenSSL 3.0).
    ReqNewkey,
    /// Ed25519, unencrypted PKCS#8.
    Ed25519Plain,
    /// PKCS#5 v1.5 PBES1 (`-v1 PBE-MD5-DES`, legacy provider): must be refused with the
    /// command that converts it.
    Pbes1Md5Des,
    /// PKCS#12 PBE (`-v1 PBE-SHA1-3DES`): must be refused likewise.
    Pkcs12Sha13Des,
}

impl KeyVariant {
    /// Every variant, made by [`Pki::shared`].
    pub const ALL: [KeyVariant; 14] = [
        KeyVariant::Pkcs8Plain,
        KeyVariant::Pkcs8EncDefault,
        KeyVariant::Pkcs8Sha1Prf,
        KeyVariant::Pkcs8Des3,
        KeyVariant::Pkcs8Scrypt,
        KeyVariant::RsaPkcs1Plain,
        KeyVariant::RsaLegacyAes256,
        KeyVariant::RsaLegacyDes3,
        KeyVariant::EcSec1Plain,
        KeyVariant::EcLegacyAes256,
        KeyVariant::ReqNewkey,
        KeyVariant::Ed25519Plain,
        KeyVariant::Pbes1Md5Des,
        KeyVariant::Pkcs12Sha13Des,
    ];

    /// The key algorithm (and so the client certificate) the variant is written from.
    pub fn alg(self) -> KeyAlg {
        match self {
            KeyVariant::Pkcs8Sha1Prf
            | KeyVariant::RsaPkcs1Plain
            | KeyVariant::RsaLegacyAes256
            | KeyVariant::RsaLegacyDes3 => KeyAlg::Rsa2048,
            KeyVariant::Pkcs8Scrypt | KeyVariant::Ed25519Plain => KeyAlg::Ed25519,
            _ => KeyAlg::EcP256,
        }
    }

    /// The format the client key of [`KeyVariant::alg`] is written in; `None` for
    /// [`KeyVariant::ReqNewkey`], which `req -newkey` writes itself.
    fn format(self) -> Option<KeyFormat> {
        Some(match self {
            KeyVariant::Pkcs8Plain | KeyVariant::Ed25519Plain => KeyFormat::Pkcs8,
            KeyVariant::Pkcs8EncDefault => KeyFormat::Pkcs8EncDefault,
            KeyVariant::Pkcs8Sha1Prf => KeyFormat::Pkcs8Aes256Sha1,
            KeyVariant::Pkcs8Des3 => KeyFormat::Pkcs8Des3,
            KeyVariant::Pkcs8Scrypt => KeyFormat::Pkcs8Scrypt,
            KeyVariant::RsaPkcs1Plain => KeyFormat::Pkcs1,
            KeyVariant::RsaLegacyAes256 | KeyVariant::EcLegacyAes256 => {
                KeyFormat::Legacy(LegacyCipher::Aes256)
            }
            KeyVariant::RsaLegacyDes3 => KeyFormat::Legacy(LegacyCipher::Des3),
            KeyVariant::EcSec1Plain => KeyFormat::Sec1,
            KeyVariant::ReqNewkey => return None,
            KeyVariant::Pbes1Md5Des => KeyFormat::Pbes1Md5Des,
            KeyVariant::Pkcs12Sha13Des => KeyFormat::Pkcs12Sha13Des,
        })
    }

    /// Whether the key needs `keypass`.
    pub fn is_encrypted(self) -> bool {
        self.format().is_none_or(KeyFormat::is_encrypted)
    }
}
/// The three ways a PEM parameter (`ca`, `cert`, `key`) can be written in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Path,
    Pem,
    Base64,
}

impl Form {
    pub const ALL: [Form; 3] = [Form::Path, Form::Pem, Form::Base64];

    /// The parameter value for `file` in this form.
    pub fn value(self, file: &Path) -> String {
        match self {
            Form::Path => file.display().to_string(),
            Form::Pem => std::fs::read_to_string(file).unwrap(),
            Form::Base64 => base64(&std::fs::read(file).unwrap()),
        }
    }
}

/// Standard base64 with padding (this crate has no base64 dependency; this is all the
/// tests need of one).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A TOML string for `value`: a multi-line literal string for PEM text, a basic string
/// otherwise.
pub fn toml_str(value: &str) -> String {
    if value.contains('\n') {
        assert!(!value.contains("'''"), "PEM text never holds '''");
        format!("'''\n{value}'''")
    } else {
        let mut s = String::from("\"");
        for c in value.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                c => s.push(c),
            }
        }
        s.push('"');
        s
    }
}

/// Everything the daemon's TLS tests need, made once per test binary in one directory.
pub struct Pki {
    dir: PathBuf,
    /// The CA every test server and client certificate is issued by.
    pub ca: PathBuf,
    ca_key: PathBuf,
    /// Another CA (another name, another key): trusting it instead of [`Pki::ca`] must fail.
    pub other_ca: PathBuf,
    /// Server certificate for `localhost` and `127.0.0.1`.
    pub server: Identity,
    /// Server certificate for the name `gateway.test` only.
    pub gateway: Identity,
    /// A `localhost` server certificate valid only in January 2020.
    pub expired: Identity,
    /// A `localhost` server certificate valid only from 2099.
    pub not_yet_valid: Identity,
    clients: Vec<Identity>,
    req_newkey: Identity,
    keys: Vec<(KeyVariant, PathBuf)>,
}

impl Pki {
    /// The test binary's PKI, made on first use. `None` (test skipped) when the `openssl`
    /// command is missing and peers are not required; with `TAGWIRE_REQUIRE_PEERS=1` a
    /// missing `openssl` fails the test.
    pub fn shared() -> Option<&'static Pki> {
        static PKI: OnceLock<Option<Pki>> = OnceLock::new();
        PKI.get_or_init(|| {
            let found = Command::new("openssl")
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
            if !found {
                if std::env::var("TAGWIRE_REQUIRE_PEERS").as_deref() == Ok("1") {
                    panic!("the openssl command is missing: `cargo xtask test` installs it");
                }
                eprintln!(
                    "SKIPPED: the openssl command is missing (`cargo xtask test` installs it)"
                );
                return None;
            }
            let started = std::time::Instant::now();
            let pki = Pki::generate();
            eprintln!(
                "test PKI made in {:?} in {}",
                started.elapsed(),
                pki.dir.display()
            );
            Some(pki)
        })
        .as_ref()
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The client certificate for keys of `alg`.
    pub fn client(&self, alg: KeyAlg) -> &Identity {
        self.clients
            .iter()
            .find(|id| id.alg == alg)
            .expect("every algorithm has a client")
    }

    /// The certificate `variant`'s key belongs to.
    pub fn cert_for(&self, variant: KeyVariant) -> &Path {
        if variant == KeyVariant::ReqNewkey {
            &self.req_newkey.cert
        } else {
            &self.client(variant.alg()).cert
        }
    }

    /// The key file of `variant`.
    pub fn key(&self, variant: KeyVariant) -> &Path {
        &self
            .keys
            .iter()
            .find(|(v, _)| *v == variant)
            .expect("every variant is made")
            .1
    }

    fn generate() -> Pki {
        let dir = fresh_dir();
        let run = Openssl::new(&dir);

        let ca_key = dir.join("ca.key");
        let ca = dir.join("ca.pem");
        run.self_signed_ca("tagwire e2e test CA", &ca_key, &ca);
        let other_key = dir.join("other-ca.key");
        let other_ca = dir.join("other-ca.pem");
        run.self_signed_ca("some other CA", &other_key, &other_ca);

        let server = |name: &str| Identity {
            alg: KeyAlg::EcP256,
            cert: dir.join(name),
            key: dir.join("server.key"),
        };
        let mut pki = Pki {
            server: server("server.pem"),
            gateway: server("gateway.pem"),
            expired: server("expired.pem"),
            not_yet_valid: server("not-yet-valid.pem"),
            req_newkey: Identity {
                alg: KeyAlg::EcP256,
                cert: dir.join("req-newkey.pem"),
                key: dir.join("req-newkey.key"),
            },
            ca,
            ca_key,
            other_ca,
            clients: Vec::new(),
            keys: Vec::new(),
            dir: dir.clone(),
        };
        let (ca, ca_key) = (&pki.ca, &pki.ca_key);
        run.genpkey(KeyAlg::EcP256, &pki.server.key);
        let server_key = &pki.server.key;
        run.issue(
            ca,
            ca_key,
            server_key,
            "/CN=localhost",
            "server",
            &pki.server.cert,
        );
        let gateway = &pki.gateway.cert;
        run.issue(
            ca,
            ca_key,
            server_key,
            "/CN=gateway.test",
            "gateway",
            gateway,
        );
        for (id, start, end) in [
            (&pki.expired, "20200101000000Z", "20200102000000Z"),
            (&pki.not_yet_valid, "20990101000000Z", "20991231000000Z"),
        ] {
            let csr = id.cert.with_extension("csr");
            run.request(&id.key, "/CN=localhost", &csr);
            run.issue_dated(ca, ca_key, &csr, &id.cert, start, end, Some("server"));
            let dates = run.openssl(&[
                "x509",
                "-in",
                p(&id.cert),
                "-noout",
                "-startdate",
                "-enddate",
            ]);
            assert!(dates.contains("notBefore="), "{dates}");
        }

        for alg in [KeyAlg::EcP256, KeyAlg::Rsa2048, KeyAlg::Ed25519] {
            let key = dir.join(format!("client-{alg:?}.key"));
            let cert = dir.join(format!("client-{alg:?}.pem"));
            pki.clients.push(run.client(ca, ca_key, alg, &key, &cert));
        }

        // How many how-tos make a client key: `req -newkey`, which encrypts the key with
        // -passout unless -nodes is given.
        let req_newkey = &pki.req_newkey;
        run.client_from_req_newkey(ca, ca_key, req_newkey, true);
        Expected {
            label: "ENCRYPTED PRIVATE KEY",
            // `req` has a default cipher of its own: OpenSSL 3.0 writes PBES2 with
            // PBKDF2-HMAC-SHA256 and DES-EDE3-CBC here, not AES.
            objects: &["PBES2", "hmacWithSHA256", "des-ede3-cbc"],
            dek: None,
            encrypted: true,
            legacy: false,
        }
        .check(&run, &req_newkey.key, "ReqNewkey");

        for variant in KeyVariant::ALL {
            let file = match variant.format() {
                None => pki.req_newkey.key.clone(),
                Some(format) => {
                    let out = dir.join(format!("key-{variant:?}.pem"));
                    format.write(&run, pki.client(variant.alg()), &out);
                    out
                }
            };
            pki.keys.push((variant, file));
        }
        pki
    }
}

/// Runs `openssl` in one directory, with the configuration [`Openssl::new`] writes there
/// (or, for [`Openssl::plain`], with the system's, as a user typing a recipe would).
pub struct Openssl {
    dir: PathBuf,
    own_config: bool,
}

impl Openssl {
    /// A runner in `dir` that writes there this crate's `openssl.cnf` and the empty
    /// database of `openssl ca`, and runs every command with that configuration.
    pub fn new(dir: &Path) -> Openssl {
        write_config(dir);
        Openssl {
            dir: dir.to_owned(),
            own_config: true,
        }
    }

    /// A runner in `dir` with the system's configuration (the file `openssl.cnf` is still
    /// written there, for `-config` and `-extfile`).
    pub fn plain(dir: &Path) -> Openssl {
        write_config(dir);
        Openssl {
            dir: dir.to_owned(),
            own_config: false,
        }
    }

    /// Runs `openssl`, panicking with its stderr when it fails; returns stdout.
    pub fn openssl(&self, args: &[&str]) -> String {
        self.try_openssl(args)
            .unwrap_or_else(|e| panic!("openssl {} failed:\n{e}", args.join(" ")))
    }

    /// Runs `openssl`, returning stdout, or stderr and the exit status.
    pub fn try_openssl(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(&self.dir);
        if self.own_config {
            command.env("OPENSSL_CONF", self.dir.join("openssl.cnf"));
        }
        let output = command.output().expect("the openssl command runs");
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            let mut e = String::from_utf8_lossy(&output.stderr).into_owned();
            let _ = write!(e, "(exit {})", output.status);
            Err(e)
        }
    }

    /// `openssl genpkey` of `alg`: unencrypted PKCS#8.
    pub fn genpkey(&self, alg: KeyAlg, out: &Path) {
        let mut args = vec!["genpkey"];
        args.extend_from_slice(alg.genpkey_args());
        args.extend_from_slice(&["-out", p(out)]);
        self.openssl(&args);
    }

    /// A new ECDSA P-256 key and a self-signed CA certificate named `name` for it.
    pub fn self_signed_ca(&self, name: &str, key: &Path, cert: &Path) {
        self.genpkey(KeyAlg::EcP256, key);
        self.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            p(key),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "30",
            "-extensions",
            "v3_ca",
            "-out",
            p(cert),
        ]);
    }

    /// `openssl req -new`: a certificate request for `key` and `subject`.
    pub fn request(&self, key: &Path, subject: &str, csr: &Path) {
        self.openssl(&[
            "req",
            "-new",
            "-key",
            p(key),
            "-subj",
            subject,
            "-out",
            p(csr),
        ]);
    }

    /// A certificate for `key`, issued by the CA with the extensions of `section` of
    /// `openssl.cnf`.
    pub fn issue(
        &self,
        ca: &Path,
        ca_key: &Path,
        key: &Path,
        subject: &str,
        section: &str,
        out: &Path,
    ) {
        let csr = out.with_extension("csr");
        self.request(key, subject, &csr);
        self.sign_csr(ca, ca_key, &csr, section, out);
    }

    /// `openssl x509 -req` of `csr` by the CA, valid 30 days, with the extensions of
    /// `section`.
    pub fn sign_csr(&self, ca: &Path, ca_key: &Path, csr: &Path, section: &str, out: &Path) {
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            p(csr),
            "-CA",
            p(ca),
            "-CAkey",
            p(ca_key),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            section,
            "-out",
            p(out),
        ]);
    }

    /// `openssl ca` of `csr`, valid only from `start` to `end` (`YYYYMMDDHHMMSSZ`;
    /// `openssl x509 -req` of OpenSSL 3.0 cannot set both dates), with the extensions of
    /// `section`, or none at all (an X.509 v1 certificate).
    #[allow(clippy::too_many_arguments)]
    pub fn issue_dated(
        &self,
        ca: &Path,
        ca_key: &Path,
        csr: &Path,
        out: &Path,
        start: &str,
        end: &str,
        section: Option<&str>,
    ) {
        let mut args = vec![
            "ca",
            "-batch",
            "-config",
            "openssl.cnf",
            "-cert",
            p(ca),
            "-keyfile",
            p(ca_key),
            "-in",
            p(csr),
            "-out",
            p(out),
            "-startdate",
            start,
            "-enddate",
            end,
        ];
        if let Some(section) = section {
            args.extend_from_slice(&["-extfile", "openssl.cnf", "-extensions", section]);
        }
        args.push("-notext");
        self.openssl(&args);
    }

    /// A client key of `alg` (unencrypted PKCS#8) and its certificate, issued by the CA.
    pub fn client(
        &self,
        ca: &Path,
        ca_key: &Path,
        alg: KeyAlg,
        key: &Path,
        cert: &Path,
    ) -> Identity {
        self.genpkey(alg, key);
        self.issue(
            ca,
            ca_key,
            key,
            &format!("/CN=client {alg:?}"),
            "client",
            cert,
        );
        Identity {
            alg,
            cert: cert.to_owned(),
            key: key.to_owned(),
        }
    }

    /// A client identity made the way many how-tos do it: `openssl req -newkey`, which
    /// encrypts the key with `-passout` ([`PASSWORD`]) unless `-nodes`; the certificate
    /// issued by the CA. Checks the key's first line.
    pub fn client_from_req_newkey(&self, ca: &Path, ca_key: &Path, id: &Identity, encrypted: bool) {
        let csr = id.cert.with_extension("csr");
        let pass = format!("pass:{PASSWORD}");
        let mut args = vec!["req", "-new"];
        args.extend_from_slice(id.alg.newkey_args());
        args.extend_from_slice(&["-keyout", p(&id.key), "-subj", "/CN=req-newkey client"]);
        args.extend_from_slice(&["-out", p(&csr)]);
        if encrypted {
            args.extend_from_slice(&["-passout", &pass]);
        } else {
            args.push("-nodes");
        }
        self.openssl(&args);
        let expected = if encrypted {
            "-----BEGIN ENCRYPTED PRIVATE KEY-----"
        } else {
            "-----BEGIN PRIVATE KEY-----"
        };
        assert_first_line(&id.key, expected);
        self.sign_csr(ca, ca_key, &csr, "client", &id.cert);
    }

    /// `openssl req -newkey rsa:2048 -nodes -keyout KEY -out CSR -subj SUBJECT`, or with
    /// `x509`, `openssl req -x509 ... -days 365`: a self-signed certificate instead of a
    /// request (a CA certificate too, by OpenSSL's defaults).
    fn recipe_request(&self, key: &Path, out: &Path, subject: &str, x509: bool) {
        let mut args = vec!["req"];
        if x509 {
            args.extend_from_slice(&["-x509", "-days", "365"]);
        }
        args.extend_from_slice(&[
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            p(key),
            "-out",
            p(out),
            "-subj",
            subject,
        ]);
        self.openssl(&args);
    }

    /// The recipe of countless how-tos and IT departments, for `id` (an RSA 2048 key and
    /// its certificate, both made here):
    ///
    /// ```text
    /// openssl req -newkey rsa:2048 -nodes -keyout KEY -out CSR -subj SUBJECT
    /// openssl x509 -req -in CSR -CA ca.pem -CAkey ca.key -CAcreateserial -out CERT -days DAYS [-extfile EXT]
    /// ```
    ///
    /// `ext` is the text written to the file `ext_file`. Without it OpenSSL 3.0 makes an
    /// X.509 v1 certificate.
    pub fn recipe(
        &self,
        ca: &Path,
        ca_key: &Path,
        id: &Identity,
        subject: &str,
        ext: Option<(&str, &Path)>,
        days: &str,
    ) {
        let csr = id.cert.with_extension("csr");
        self.recipe_request(&id.key, &csr, subject, false);
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            p(&csr),
            "-CA",
            p(ca),
            "-CAkey",
            p(ca_key),
            "-CAcreateserial",
            "-out",
            p(&id.cert),
            "-days",
            days,
        ];
        if let Some((text, file)) = ext {
            std::fs::write(file, text).unwrap();
            args.extend_from_slice(&["-extfile", p(file)]);
        }
        self.openssl(&args);
    }

    /// `openssl pkcs12 -export -inkey KEY -in CERT -certfile CA`, with OpenSSL's current
    /// defaults (AES-256-CBC, PBKDF2, SHA-256 MAC) or `-legacy` (RC2/3DES, SHA-1 MAC).
    pub fn pkcs12(&self, identity: &Identity, ca: &Path, password: &str, legacy: bool, out: &Path) {
        let pass = format!("pass:{password}");
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            p(&identity.key),
            "-in",
            p(&identity.cert),
            "-certfile",
            p(ca),
            "-passout",
            &pass,
            "-out",
            p(out),
        ];
        if legacy {
            args.push("-legacy");
        }
        self.openssl(&args);
    }
}

/// Writes this crate's `openssl.cnf` in `dir`, and the empty database of `openssl ca`
/// unless there is one.
fn write_config(dir: &Path) {
    std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).unwrap();
    if !dir.join("ca-serial.txt").exists() {
        std::fs::write(dir.join("ca-index.txt"), "").unwrap();
        std::fs::write(dir.join("ca-serial.txt"), "1000\n").unwrap();
    }
}

/// Asserts the first line of `file`.
pub fn assert_first_line(file: &Path, expected: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(text.lines().next(), Some(expected), "{}", file.display());
}

/// A new, empty directory for this process's PKI under the system's temporary directory
/// (a library has no `CARGO_TARGET_TMPDIR`); those of earlier runs whose process is gone
/// are removed first.
fn fresh_dir() -> PathBuf {
    let base = std::env::temp_dir().join("tagwire-test-pki");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = name
                .strip_prefix("tls-pki-")
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if stale {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = base.join(format!("tls-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A path as `openssl` takes it.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Certificates made in a test's own directory with the `openssl` recipes users follow,
/// issued by the shared test CA (copied in, so that `-CAcreateserial` and `openssl ca`
/// write their bookkeeping files there and tests running in parallel do not share them).
/// The commands run without this crate's `openssl.cnf`, as a user would type them.
pub struct Recipes {
    dir: PathBuf,
    run: Openssl,
    ca: PathBuf,
    ca_key: PathBuf,
    other_ca: PathBuf,
    other_ca_key: PathBuf,
}

/// Extensions of a v3 client certificate made with `-extfile`.
pub const CLIENT_EXT: &str = "basicConstraints=critical,CA:FALSE\n\
                              keyUsage=critical,digitalSignature,keyEncipherment\n\
                              extendedKeyUsage=clientAuth\n\
                              subjectAltName=DNS:gw-17.plant.example\n";
/// Extensions of a v3 server certificate without subjectAltName (the name in the CN only).
pub const SERVER_EXT_NO_SAN: &str = "basicConstraints=critical,CA:FALSE\n\
                                     keyUsage=critical,digitalSignature,keyEncipherment\n\
                                     extendedKeyUsage=serverAuth\n";

impl Recipes {
    /// A recipe maker writing into `dir`.
    pub fn new(pki: &Pki, dir: &Path) -> Recipes {
        std::fs::create_dir_all(dir).unwrap();
        let copy = |from: &Path, name: &str| {
            let to = dir.join(name);
            std::fs::copy(from, &to).unwrap();
            to
        };
        // Serials apart from those the shared directory's `openssl ca` gave.
        std::fs::write(dir.join("ca-index.txt"), "").unwrap();
        std::fs::write(dir.join("ca-serial.txt"), "2000\n").unwrap();
        Recipes {
            run: Openssl::plain(dir),
            ca: copy(&pki.ca, "ca.pem"),
            ca_key: copy(&pki.ca_key, "ca.key"),
            other_ca: copy(&pki.other_ca, "other-ca.pem"),
            other_ca_key: copy(&pki.dir.join("other-ca.key"), "other-ca.key"),
            dir: dir.to_owned(),
        }
    }

    fn identity(&self, name: &str) -> Identity {
        Identity {
            alg: KeyAlg::Rsa2048,
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        }
    }

    /// The recipe of the issue: `x509 -req -CA ca.pem -CAkey ca.key -CAcreateserial -days
    /// 365`, with `-extfile` when `ext` is given (its text). Without it OpenSSL 3.0 makes
    /// an X.509 v1 certificate. `other_ca` issues from the other test CA instead.
    pub fn x509_req(
        &self,
        name: &str,
        subject: &str,
        ext: Option<&str>,
        other_ca: bool,
    ) -> Identity {
        self.x509_req_days(name, subject, ext, other_ca, "365")
    }

    /// [`Recipes::x509_req`] with a chosen `-days`.
    pub fn x509_req_days(
        &self,
        name: &str,
        subject: &str,
        ext: Option<&str>,
        other_ca: bool,
        days: &str,
    ) -> Identity {
        let (ca, ca_key) = if other_ca {
            (&self.other_ca, &self.other_ca_key)
        } else {
            (&self.ca, &self.ca_key)
        };
        let id = self.identity(name);
        let ext_file = self.dir.join(format!("{name}.ext"));
        let ext = ext.map(|text| (text, ext_file.as_path()));
        self.run.recipe(ca, ca_key, &id, subject, ext, days);
        id
    }

    /// `openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj SUBJECT`: a self-signed
    /// certificate (a CA certificate too, by OpenSSL's defaults).
    pub fn self_signed(&self, name: &str, subject: &str) -> Identity {
        let id = self.identity(name);
        self.run.recipe_request(&id.key, &id.cert, subject, true);
        id
    }

    /// A client certificate issued by an intermediate CA (itself issued by the test CA),
    /// with the file holding the certificate followed by the intermediate, as servers
    /// expect the chain.
    pub fn via_intermediate(&self, name: &str, subject: &str) -> Identity {
        let intermediate = self.x509_req(
            &format!("{name}-intermediate"),
            "/CN=tagwire e2e intermediate CA",
            Some("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"),
            false,
        );
        let leaf = Identity {
            cert: self.dir.join(format!("{name}-leaf.pem")),
            ..self.identity(name)
        };
        let ext_file = self.dir.join(format!("{name}.ext"));
        let ext = Some((CLIENT_EXT, ext_file.as_path()));
        self.run.recipe(
            &intermediate.cert,
            &intermediate.key,
            &leaf,
            subject,
            ext,
            "365",
        );
        let id = self.identity(name);
        let chain = std::fs::read_to_string(&leaf.cert).unwrap()
            + &std::fs::read_to_string(&intermediate.cert).unwrap();
        std::fs::write(&id.cert, chain).unwrap();
        id
    }

    /// An X.509 v1 certificate valid only from `start` to `end` (`YYYYMMDDHHMMSSZ`):
    /// `openssl ca` with no extensions (`x509 -req` of OpenSSL 3.0 cannot set dates).
    pub fn v1_dated(&self, name: &str, subject: &str, start: &str, end: &str) -> Identity {
        let id = self.identity(name);
        let csr = id.cert.with_extension("csr");
        self.run.recipe_request(&id.key, &csr, subject, false);
        self.run
            .issue_dated(&self.ca, &self.ca_key, &csr, &id.cert, start, end, None);
        id
    }

    /// [`Openssl::pkcs12`] of `identity` with the test CA as its chain.
    pub fn pkcs12(&self, identity: &Identity, password: &str, legacy: bool) -> PathBuf {
        let out = identity
            .cert
            .with_extension(if legacy { "legacy.p12" } else { "p12" });
        self.run.pkcs12(identity, &self.ca, password, legacy, &out);
        out
    }

    /// A copy of `identity` whose certificate's signature has its last byte changed.
    pub fn bad_signature(&self, identity: &Identity) -> Identity {
        self.run.openssl(&[
            "x509",
            "-in",
            p(&identity.cert),
            "-outform",
            "DER",
            "-out",
            "bad.der",
        ]);
        let mut bytes = std::fs::read(self.dir.join("bad.der")).unwrap();
        *bytes.last_mut().unwrap() ^= 0x01;
        let cert = identity.cert.with_extension("bad-signature.pem");
        std::fs::write(
            &cert,
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                base64(&bytes)
            ),
        )
        .unwrap();
        Identity {
            cert,
            ..identity.clone()
        }
    }

    /// The `Version:` line of `openssl x509 -text`, e.g. `Version: 1 (0x0)`.
    pub fn version(&self, cert: &Path) -> String {
        let text = self
            .run
            .openssl(&["x509", "-in", p(cert), "-noout", "-text"]);
        text.lines()
            .find(|l| l.trim_start().starts_with("Version:"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The test CA's certificate (the copy in this directory).
    pub fn ca(&self) -> &Path {
        &self.ca
    }
}
