//! Test material made with the `openssl` command line at test time, and an in-memory TLS
//! handshake against a rustls server that requires client certificates.
//!
//! Every test builds its own [`Pki`] in its own temporary directory, so tests run in
//! parallel and leave nothing behind.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, RootCertStore, ServerConfig,
    ServerConnection, SideData,
};

/// The password of every encrypted key made here. Tests assert it never shows up in an
/// error message.
pub const PASSWORD: &str = "Tw-k3y-p@ss";

/// OpenSSL configuration: just enough for `req` and the extensions of the three kinds of
/// certificate, so the tests do not depend on the system's `openssl.cnf`.
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
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Configuration of `openssl ca`, used only to make certificates with chosen validity dates
/// (`openssl x509 -req` in OpenSSL 3.0 cannot set them).
const OPENSSL_CA_CNF: &str = "\
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

/// Key algorithms of client keys.
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

/// How a client key is written. Each format knows the `openssl` command that writes it
/// and what the result must look like, so a test cannot silently test the wrong thing.
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
    /// PKCS#5 v1.5 `-v1 PBE-MD5-DES` (needs the legacy provider): must be refused.
    Pbes1Md5Des,
    /// PKCS#12 `-v1 PBE-SHA1-3DES`: must be refused.
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
}

/// A client (or server) identity: certificate file and the PKCS#8 key it was made from.
#[derive(Clone, Debug)]
pub struct Identity {
    pub alg: KeyAlg,
    pub cert: PathBuf,
    /// Unencrypted PKCS#8, as `genpkey` wrote it.
    pub key: PathBuf,
}

/// A CA, a server certificate for `localhost`/`127.0.0.1`, and a directory to write more.
pub struct Pki {
    dir: tempfile::TempDir,
    pub ca_cert: PathBuf,
    ca_key: PathBuf,
    pub server: Identity,
    counter: std::cell::Cell<u32>,
}

impl Pki {
    /// A fresh CA with a name of its own, and a server certificate (both ECDSA P-256:
    /// quick to make).
    pub fn new() -> Pki {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Pki::with_ca_name(&format!("tagwire test CA {n}"))
    }

    /// Like [`Pki::new`] with a chosen CA name (two CAs with the same name but different
    /// keys are a case of their own).
    pub fn with_ca_name(ca_name: &str) -> Pki {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("openssl.cnf"), OPENSSL_CNF).unwrap();
        let ca_key = dir.path().join("ca.key");
        let ca_cert = dir.path().join("ca.pem");
        let pki = Pki {
            ca_cert: ca_cert.clone(),
            ca_key: ca_key.clone(),
            server: Identity {
                alg: KeyAlg::EcP256,
                cert: dir.path().join("server.pem"),
                key: dir.path().join("server.key"),
            },
            dir,
            counter: std::cell::Cell::new(0),
        };
        pki.genpkey(KeyAlg::EcP256, &ca_key);
        pki.openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            path(&ca_key),
            "-subj",
            &format!("/CN={ca_name}"),
            "-days",
            "30",
            "-extensions",
            "v3_ca",
            "-out",
            path(&ca_cert),
        ]);
        let server_key = pki.server.key.clone();
        pki.genpkey(KeyAlg::EcP256, &server_key);
        pki.sign(
            &server_key,
            "/CN=localhost",
            "server",
            &pki.server.cert.clone(),
        );
        pki
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new file name in the directory.
    pub fn file(&self, stem: &str) -> PathBuf {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        self.dir.path().join(format!("{n:03}-{stem}.pem"))
    }

    /// Runs `openssl` with `args` (and this directory's configuration for `req`), panicking
    /// with its stderr when it fails.
    pub fn openssl(&self, args: &[&str]) -> String {
        self.try_openssl(args)
            .unwrap_or_else(|stderr| panic!("openssl {} failed:\n{stderr}", args.join(" ")))
    }

    /// Runs `openssl`, returning stdout or stderr.
    pub fn try_openssl(&self, args: &[&str]) -> Result<String, String> {
        let mut command = Command::new("openssl");
        command.args(args).current_dir(self.dir.path());
        if matches!(args.first(), Some(&"req" | &"x509")) {
            command.env("OPENSSL_CONF", self.dir.path().join("openssl.cnf"));
        }
        let output = command
            .output()
            .expect("the openssl command line must be installed");
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    fn genpkey(&self, alg: KeyAlg, out: &Path) {
        let mut args = vec!["genpkey"];
        args.extend_from_slice(alg.genpkey_args());
        args.extend_from_slice(&["-out", path(out)]);
        self.openssl(&args);
    }

    /// Makes a certificate for `key` signed by the CA, with the extensions of `section`.
    fn sign(&self, key: &Path, subject: &str, section: &str, out: &Path) {
        let csr = self.file("csr");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            path(key),
            "-subj",
            subject,
            "-out",
            path(&csr),
        ]);
        self.sign_csr(&csr, section, out);
    }

    fn sign_csr(&self, csr: &Path, section: &str, out: &Path) {
        let cnf = self.dir.path().join("openssl.cnf");
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            path(csr),
            "-CA",
            path(&self.ca_cert),
            "-CAkey",
            path(&self.ca_key),
            "-set_serial",
            &self.counter.get().to_string(),
            "-days",
            "30",
            "-extfile",
            path(&cnf),
            "-extensions",
            section,
            "-out",
            path(out),
        ]);
    }

    /// A client key of `alg` (unencrypted PKCS#8) and its certificate, signed by the CA.
    pub fn client(&self, alg: KeyAlg) -> Identity {
        let key = self.file(&format!("client-{alg:?}-key"));
        let cert = self.file(&format!("client-{alg:?}-cert"));
        self.genpkey(alg, &key);
        self.sign(&key, &format!("/CN=client {alg:?}"), "client", &cert);
        Identity { alg, cert, key }
    }

    /// A client identity made the way many how-tos do it: `openssl req -newkey`, which
    /// encrypts the key with `passout` (OpenSSL 3: PBES2, AES-256-CBC) unless `-nodes`.
    pub fn client_from_req_newkey(&self, alg: KeyAlg, encrypted: bool) -> Identity {
        let key = self.file(&format!("req-newkey-{alg:?}-key"));
        let cert = self.file(&format!("req-newkey-{alg:?}-cert"));
        let csr = self.file("csr");
        let pass = format!("pass:{PASSWORD}");
        let mut args = vec!["req", "-new"];
        args.extend_from_slice(alg.newkey_args());
        args.extend_from_slice(&["-keyout", path(&key), "-subj", "/CN=req-newkey client"]);
        args.extend_from_slice(&["-out", path(&csr)]);
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
        assert_first_line(&key, expected);
        self.sign_csr(&csr, "client", &cert);
        Identity { alg, cert, key }
    }

    /// Writes `identity`'s key in `format` (encrypted ones with [`PASSWORD`]) and checks the
    /// result is what the format promises.
    pub fn write_key(&self, identity: &Identity, format: KeyFormat) -> PathBuf {
        let out = self.file(&format!("key-{:?}-{}", identity.alg, format.name()));
        let (inp, outp) = (path(&identity.key), path(&out));
        let pass = format!("pass:{PASSWORD}");
        let topk8 = |extra: &[&str]| {
            let mut args = vec![
                "pkcs8", "-topk8", "-in", inp, "-passout", &pass, "-out", outp,
            ];
            args.extend_from_slice(extra);
            self.openssl(&args);
        };
        let legacy_provider = ["-provider", "legacy", "-provider", "default"];
        match format {
            KeyFormat::Pkcs8 => {
                std::fs::copy(&identity.key, &out).unwrap();
            }
            KeyFormat::Pkcs1 => {
                self.openssl(&["rsa", "-in", inp, "-traditional", "-out", outp]);
            }
            KeyFormat::Sec1 => {
                self.openssl(&["ec", "-in", inp, "-out", outp]);
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
                let mut args = legacy_provider.to_vec();
                args.extend_from_slice(&["-v2", "des-cbc"]);
                topk8(&args);
            }
            KeyFormat::Legacy(cipher) => {
                let tool = if identity.alg.is_rsa() { "rsa" } else { "ec" };
                let mut args = vec![tool, "-in", inp, cipher.option(), "-passout", &pass];
                args.extend_from_slice(&["-out", outp]);
                if identity.alg.is_rsa() {
                    args.push("-traditional");
                }
                // Without the legacy provider OpenSSL 3.0 writes single-DES keys
                // *unencrypted* and reports success (check_written catches that).
                if cipher == LegacyCipher::Des {
                    args.extend_from_slice(&legacy_provider);
                }
                self.openssl(&args);
            }
            KeyFormat::Pbes1Md5Des => {
                let mut args = legacy_provider.to_vec();
                args.extend_from_slice(&["-v1", "PBE-MD5-DES"]);
                topk8(&args);
            }
            KeyFormat::Pkcs12Sha13Des => topk8(&["-v1", "PBE-SHA1-3DES"]),
        }
        self.check_written(&out, identity.alg, format);
        out
    }

    /// Asserts that `openssl` wrote what `format` claims, so a change in OpenSSL's defaults
    /// cannot quietly make a test cover something else.
    fn check_written(&self, file: &Path, alg: KeyAlg, format: KeyFormat) {
        let text = std::fs::read_to_string(file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let (label, objects): (&str, &[&str]) = match format {
            KeyFormat::Pkcs8 => ("PRIVATE KEY", &[]),
            KeyFormat::Pkcs1 => ("RSA PRIVATE KEY", &[]),
            KeyFormat::Sec1 => ("EC PRIVATE KEY", &[]),
            KeyFormat::Pkcs8EncDefault => (
                "ENCRYPTED PRIVATE KEY",
                &["PBES2", "hmacWithSHA256", "aes-256-cbc"],
            ),
            // hmacWithSHA1 is PBKDF2's default PRF, so DER leaves it out (checked below).
            KeyFormat::Pkcs8Aes256Sha1 => {
                ("ENCRYPTED PRIVATE KEY", &["PBES2", "PBKDF2", "aes-256-cbc"])
            }
            KeyFormat::Pkcs8Aes128 => ("ENCRYPTED PRIVATE KEY", &["PBES2", "aes-128-cbc"]),
            KeyFormat::Pkcs8Aes192 => ("ENCRYPTED PRIVATE KEY", &["PBES2", "aes-192-cbc"]),
            KeyFormat::Pkcs8Des3 => ("ENCRYPTED PRIVATE KEY", &["PBES2", "des-ede3-cbc"]),
            KeyFormat::Pkcs8Aes256Sha512 => ("ENCRYPTED PRIVATE KEY", &["PBES2", "hmacWithSHA512"]),
            KeyFormat::Pkcs8Scrypt => ("ENCRYPTED PRIVATE KEY", &["PBES2", "scrypt"]),
            KeyFormat::Pkcs8DesCbc => ("ENCRYPTED PRIVATE KEY", &["PBES2", "des-cbc"]),
            KeyFormat::Legacy(cipher) => {
                let label = if alg.is_rsa() {
                    "RSA PRIVATE KEY"
                } else {
                    "EC PRIVATE KEY"
                };
                assert!(
                    text.contains("Proc-Type: 4,ENCRYPTED"),
                    "{}",
                    file.display()
                );
                let dek = format!("DEK-Info: {},", cipher.dek_info_name());
                assert!(text.contains(&dek), "{} lacks {dek}", file.display());
                (label, &[])
            }
            KeyFormat::Pbes1Md5Des => ("ENCRYPTED PRIVATE KEY", &["pbeWithMD5AndDES-CBC"]),
            KeyFormat::Pkcs12Sha13Des => (
                "ENCRYPTED PRIVATE KEY",
                &["pbeWithSHA1And3-KeyTripleDES-CBC"],
            ),
        };
        assert_eq!(
            first,
            format!("-----BEGIN {label}-----"),
            "{}",
            file.display()
        );
        if !objects.is_empty() {
            let parsed: String = self
                .openssl(&["asn1parse", "-in", path(file)])
                .lines()
                .filter(|line| line.contains("OBJECT"))
                .map(|line| format!("{line}\n"))
                .collect();
            for object in objects {
                assert!(
                    parsed.contains(&format!(":{object}\n")),
                    "{} should use {object}:\n{parsed}",
                    file.display()
                );
            }
            if format == KeyFormat::Pkcs8Aes256Sha1 {
                assert!(
                    !parsed.contains(":hmacWith"),
                    "{}:\n{parsed}",
                    file.display()
                );
            }
        }
    }

    /// A server certificate for `localhost` valid only from `not_before` to `not_after`
    /// (`YYYYMMDDHHMMSSZ`), signed by the CA, with the server's key.
    pub fn server_with_validity(&self, not_before: &str, not_after: &str) -> Identity {
        let dir = self.dir.path();
        std::fs::write(dir.join("ca-db.cnf"), OPENSSL_CA_CNF).unwrap();
        if !dir.join("ca-serial.txt").exists() {
            std::fs::write(dir.join("ca-index.txt"), "").unwrap();
            std::fs::write(dir.join("ca-serial.txt"), "1000\n").unwrap();
        }
        let csr = self.file("dated-csr");
        let cert = self.file("dated-server-cert");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            path(&self.server.key),
            "-subj",
            "/CN=localhost",
            "-out",
            path(&csr),
        ]);
        self.openssl(&[
            "ca",
            "-batch",
            "-config",
            "ca-db.cnf",
            "-cert",
            path(&self.ca_cert),
            "-keyfile",
            path(&self.ca_key),
            "-in",
            path(&csr),
            "-out",
            path(&cert),
            "-startdate",
            not_before,
            "-enddate",
            not_after,
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "server",
            "-notext",
        ]);
        Identity {
            alg: self.server.alg,
            cert,
            key: self.server.key.clone(),
        }
    }

    /// A key and certificate made with the recipe of countless how-tos and IT departments:
    ///
    /// ```text
    /// openssl req -newkey rsa:2048 -nodes -keyout KEY -out CSR -subj SUBJECT
    /// openssl x509 -req -in CSR -CA ca.pem -CAkey ca.key -CAcreateserial -out CERT -days 365 [-extfile EXT]
    /// ```
    ///
    /// Without `extfile` (the text of an extensions file), OpenSSL 3.0 makes an X.509 v1
    /// certificate.
    pub fn user_recipe(&self, subject: &str, extfile: Option<&str>) -> Identity {
        let key = self.file("recipe-key");
        let csr = self.file("recipe-csr");
        let cert = self.file("recipe-cert");
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            path(&key),
            "-out",
            path(&csr),
            "-subj",
            subject,
        ]);
        let ext = self.file("recipe-ext");
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            path(&csr),
            "-CA",
            path(&self.ca_cert),
            "-CAkey",
            path(&self.ca_key),
            "-CAcreateserial",
            "-out",
            path(&cert),
            "-days",
            "365",
        ];
        if let Some(text) = extfile {
            std::fs::write(&ext, text).unwrap();
            args.extend_from_slice(&["-extfile", path(&ext)]);
        }
        // Not through `openssl()`: the recipe runs without this directory's openssl.cnf.
        let output = Command::new("openssl")
            .args(&args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Identity {
            alg: KeyAlg::Rsa2048,
            cert,
            key,
        }
    }

    /// An X.509 v1 certificate (no extensions) for `identity`'s key and `subject`, valid
    /// only from `not_before` to `not_after` (`YYYYMMDDHHMMSSZ`): `openssl ca` with no
    /// extension section makes v1.
    pub fn v1_with_validity(
        &self,
        identity: &Identity,
        subject: &str,
        not_before: &str,
        not_after: &str,
    ) -> Identity {
        let dir = self.dir.path();
        std::fs::write(dir.join("ca-db.cnf"), OPENSSL_CA_CNF).unwrap();
        if !dir.join("ca-serial.txt").exists() {
            std::fs::write(dir.join("ca-index.txt"), "").unwrap();
            std::fs::write(dir.join("ca-serial.txt"), "1000\n").unwrap();
        }
        let csr = self.file("v1-csr");
        let cert = self.file("v1-cert");
        self.openssl(&[
            "req",
            "-new",
            "-key",
            path(&identity.key),
            "-subj",
            subject,
            "-out",
            path(&csr),
        ]);
        self.openssl(&[
            "ca",
            "-batch",
            "-config",
            "ca-db.cnf",
            "-cert",
            path(&self.ca_cert),
            "-keyfile",
            path(&self.ca_key),
            "-in",
            path(&csr),
            "-out",
            path(&cert),
            "-startdate",
            not_before,
            "-enddate",
            not_after,
            "-notext",
        ]);
        Identity {
            alg: identity.alg,
            cert,
            key: identity.key.clone(),
        }
    }

    /// `openssl pkcs12 -export` of `identity` with the CA certificate as its chain, with
    /// OpenSSL's current defaults or `-legacy` (RC2/3DES, SHA-1 MAC).
    pub fn pkcs12(&self, identity: &Identity, password: &str, legacy: bool) -> PathBuf {
        let out = self.dir.path().join(format!(
            "{:03}-bundle{}.p12",
            self.counter.get() + 1,
            if legacy { "-legacy" } else { "" }
        ));
        self.counter.set(self.counter.get() + 1);
        let pass = format!("pass:{password}");
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            path(&identity.key),
            "-in",
            path(&identity.cert),
            "-certfile",
            path(&self.ca_cert),
            "-passout",
            &pass,
            "-out",
            path(&out),
        ];
        if legacy {
            args.push("-legacy");
        }
        self.openssl(&args);
        out
    }

    /// A rustls server using `identity` (default: this PKI's server) that requires a
    /// client certificate issued by this CA.
    pub fn server_config(&self, require_client_cert: bool) -> Arc<ServerConfig> {
        self.server_config_for(&self.server, require_client_cert, None)
    }

    /// Like [`Pki::server_config`] with a chosen server identity and, optionally, only
    /// TLS 1.2.
    pub fn server_config_for(
        &self,
        identity: &Identity,
        require_client_cert: bool,
        tls12_only: Option<()>,
    ) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&self.ca_cert).unwrap())
            .unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        let verifier = if require_client_cert {
            verifier
        } else {
            verifier.allow_unauthenticated()
        }
        .build()
        .unwrap();
        let builder = ServerConfig::builder_with_provider(provider.clone());
        let builder = match tls12_only {
            Some(()) => builder.with_protocol_versions(&[&rustls::version::TLS12]),
            None => builder.with_safe_default_protocol_versions(),
        }
        .unwrap();
        let chain = CertificateDer::pem_file_iter(&identity.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&identity.key).unwrap();
        // A resolver rather than `with_single_cert`, which parses the certificate with
        // webpki and so refuses to serve the X.509 v1 certificates some tests need.
        let key = provider.key_provider.load_private_key(key).unwrap();
        let certified = rustls::sign::CertifiedKey::new(chain, key);
        Arc::new(
            builder
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified))),
        )
    }
}

/// The three ways a PEM parameter can be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputForm {
    Path,
    PemText,
    Base64,
}

impl InputForm {
    pub const ALL: [InputForm; 3] = [InputForm::Path, InputForm::PemText, InputForm::Base64];

    /// The parameter value for `file` in this form.
    pub fn value(self, file: &Path) -> String {
        match self {
            InputForm::Path => file.display().to_string(),
            InputForm::PemText => std::fs::read_to_string(file).unwrap(),
            InputForm::Base64 => {
                base64::engine::general_purpose::STANDARD.encode(std::fs::read(file).unwrap())
            }
        }
    }
}

/// How a handshake went wrong, from both ends.
#[derive(Debug)]
pub struct HandshakeFailure {
    pub client: Option<rustls::Error>,
    pub server: Option<rustls::Error>,
}

/// Runs a TLS handshake in memory between `client` and `server`, then sends one message
/// each way (with TLS 1.3 the server checks the client certificate after the client
/// considers the handshake done; the data exchange makes a rejection visible). Returns the
/// client certificate chain the server accepted.
pub fn handshake(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    server_name: &str,
) -> Result<Vec<CertificateDer<'static>>, Box<HandshakeFailure>> {
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let mut client = ClientConnection::new(client, name).map_err(|e| {
        Box::new(HandshakeFailure {
            client: Some(e),
            server: None,
        })
    })?;
    let mut server = ServerConnection::new(server).unwrap();

    client.writer().write_all(b"hello from client").unwrap();
    let mut received = Vec::new();
    for _ in 0..32 {
        let to_server = transfer(&mut client, &mut server);
        if let Err(err) = server.process_new_packets() {
            return Err(Box::new(fail_with_alert(
                &mut server,
                &mut client,
                None,
                Some(err),
            )));
        }
        if !server.is_handshaking() {
            let mut buf = [0u8; 64];
            if let Ok(n) = server.reader().read(&mut buf) {
                if n > 0 {
                    received.extend_from_slice(&buf[..n]);
                    server.writer().write_all(b"hello from server").unwrap();
                }
            }
        }
        let to_client = transfer(&mut server, &mut client);
        if let Err(err) = client.process_new_packets() {
            return Err(Box::new(fail_with_alert(
                &mut client,
                &mut server,
                Some(err),
                None,
            )));
        }
        let mut buf = [0u8; 64];
        if let Ok(n) = client.reader().read(&mut buf) {
            if n > 0 {
                assert_eq!(&buf[..n], b"hello from server");
                assert_eq!(received, b"hello from client");
                return Ok(server
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                    .unwrap_or_default());
            }
        }
        if to_server == 0 && to_client == 0 {
            break;
        }
    }
    panic!("the in-memory handshake stalled without an error")
}

/// One side failed: deliver its alert to the other side, so both errors are seen.
fn fail_with_alert<A: SideData, B: SideData>(
    failed: &mut ConnectionCommon<A>,
    peer: &mut ConnectionCommon<B>,
    client_err: Option<rustls::Error>,
    server_err: Option<rustls::Error>,
) -> HandshakeFailure {
    transfer(failed, peer);
    let peer_err = peer.process_new_packets().err();
    match (client_err, server_err) {
        (Some(c), None) => HandshakeFailure {
            client: Some(c),
            server: peer_err,
        },
        (None, s) => HandshakeFailure {
            client: peer_err,
            server: s,
        },
        (c, s) => HandshakeFailure {
            client: c,
            server: s,
        },
    }
}

/// Moves all pending TLS bytes from `from` to `to`; returns how many.
fn transfer<A: SideData, B: SideData>(
    from: &mut ConnectionCommon<A>,
    to: &mut ConnectionCommon<B>,
) -> usize {
    let mut bytes = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut bytes).unwrap();
    }
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).unwrap();
    }
    bytes.len()
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

pub fn assert_first_line(file: &Path, expected: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(text.lines().next(), Some(expected), "{}", file.display());
}

/// Asserts a message does not leak the test password.
pub fn assert_no_password(message: &str) {
    assert!(
        !message.contains(PASSWORD),
        "the password leaked into: {message}"
    );
}
