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
//! The tls-config crate's own tests cover the whole cross product of formats; these files
//! only need to be right and quick to make (ECDSA P-256 wherever the key type does not
//! matter, one RSA 2048 key).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The password of every encrypted key made here. Tests assert it never shows up in a
/// message or a log.
pub const PASSWORD: &str = "e2e-Tw-k3y-p@ss";

/// OpenSSL configuration for every command run here, so that the system's `openssl.cnf`
/// cannot change what is made: `req` defaults and the extensions of each certificate kind.
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

/// A certificate and its private key (unencrypted PKCS#8, as `genpkey` writes it).
#[derive(Clone, Debug)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The client key algorithms used here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    EcP256,
    Rsa2048,
    Ed25519,
}

impl Alg {
    fn genpkey_args(self) -> &'static [&'static str] {
        match self {
            Alg::EcP256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Alg::Rsa2048 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Alg::Ed25519 => &["-algorithm", "ED25519"],
        }
    }
}

/// A client key written one particular way. Each variant knows its `openssl` command and
/// what the file must look like.
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
    pub fn alg(self) -> Alg {
        match self {
            KeyVariant::Pkcs8Sha1Prf
            | KeyVariant::RsaPkcs1Plain
            | KeyVariant::RsaLegacyAes256
            | KeyVariant::RsaLegacyDes3 => Alg::Rsa2048,
            KeyVariant::Pkcs8Scrypt | KeyVariant::Ed25519Plain => Alg::Ed25519,
            _ => Alg::EcP256,
        }
    }

    /// Whether the key needs `keypass`.
    pub fn is_encrypted(self) -> bool {
        !matches!(
            self,
            KeyVariant::Pkcs8Plain
                | KeyVariant::RsaPkcs1Plain
                | KeyVariant::EcSec1Plain
                | KeyVariant::Ed25519Plain
        )
    }

    /// The first line the file must have, and the object names `openssl asn1parse` must
    /// find in an encrypted PKCS#8 key (or the `DEK-Info` cipher of a legacy one).
    fn expected(self) -> (&'static str, Expect) {
        use Expect::*;
        const ENC: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
        match self {
            KeyVariant::Pkcs8Plain | KeyVariant::Ed25519Plain => {
                ("-----BEGIN PRIVATE KEY-----", Nothing)
            }
            KeyVariant::Pkcs8EncDefault => {
                (ENC, Objects(&["PBES2", "hmacWithSHA256", "aes-256-cbc"]))
            }
            // `req` has a default cipher of its own: OpenSSL 3.0 writes PBES2 with
            // PBKDF2-HMAC-SHA256 and DES-EDE3-CBC here, not AES.
            KeyVariant::ReqNewkey => (ENC, Objects(&["PBES2", "hmacWithSHA256", "des-ede3-cbc"])),
            // hmacWithSHA1 is PBKDF2's default PRF, so DER leaves it out: no hmacWith at all.
            KeyVariant::Pkcs8Sha1Prf => (ENC, Objects(&["PBES2", "PBKDF2", "aes-256-cbc"])),
            KeyVariant::Pkcs8Des3 => (ENC, Objects(&["PBES2", "des-ede3-cbc"])),
            KeyVariant::Pkcs8Scrypt => (ENC, Objects(&["PBES2", "scrypt"])),
            KeyVariant::RsaPkcs1Plain => ("-----BEGIN RSA PRIVATE KEY-----", Nothing),
            KeyVariant::RsaLegacyAes256 => ("-----BEGIN RSA PRIVATE KEY-----", Dek("AES-256-CBC")),
            KeyVariant::RsaLegacyDes3 => ("-----BEGIN RSA PRIVATE KEY-----", Dek("DES-EDE3-CBC")),
            KeyVariant::EcSec1Plain => ("-----BEGIN EC PRIVATE KEY-----", Nothing),
            KeyVariant::EcLegacyAes256 => ("-----BEGIN EC PRIVATE KEY-----", Dek("AES-256-CBC")),
            KeyVariant::Pbes1Md5Des => (ENC, Objects(&["pbeWithMD5AndDES-CBC"])),
            KeyVariant::Pkcs12Sha13Des => (ENC, Objects(&["pbeWithSHA1And3-KeyTripleDES-CBC"])),
        }
    }
}

/// What an openssl-written key file must contain besides its first line.
enum Expect {
    Nothing,
    /// `openssl asn1parse` OBJECT names.
    Objects(&'static [&'static str]),
    /// Legacy encrypted PEM with this `DEK-Info` cipher.
    Dek(&'static str),
}

/// The three ways a PEM parameter (`ca`, `cert`, `key`) can be written in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Path,
    Pem,
    Base64,
}

impl Form {
    /// The parameter value for `file` in this form.
    pub fn value(self, file: &Path) -> String {
        match self {
            Form::Path => file.display().to_string(),
            Form::Pem => std::fs::read_to_string(file).unwrap(),
            Form::Base64 => base64(&std::fs::read(file).unwrap()),
        }
    }
}

/// Standard base64 with padding (the daemon's tests have no base64 crate; this is all
/// they need of one).
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

/// Everything the TLS tests need, made once per test binary in one directory.
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
    clients: Vec<(Alg, Identity)>,
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
    pub fn client(&self, alg: Alg) -> &Identity {
        &self
            .clients
            .iter()
            .find(|(a, _)| *a == alg)
            .expect("every algorithm has a client")
            .1
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
        std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        std::fs::write(dir.join("ca-index.txt"), "").unwrap();
        std::fs::write(dir.join("ca-serial.txt"), "1000\n").unwrap();
        let run = Runner { dir: dir.clone() };

        let ca_key = dir.join("ca.key");
        let ca = dir.join("ca.pem");
        run.self_signed_ca("tagwire e2e test CA", &ca_key, &ca);
        let other_key = dir.join("other-ca.key");
        let other_ca = dir.join("other-ca.pem");
        run.self_signed_ca("some other CA", &other_key, &other_ca);

        let mut pki = Pki {
            server: Identity {
                cert: dir.join("server.pem"),
                key: dir.join("server.key"),
            },
            gateway: Identity {
                cert: dir.join("gateway.pem"),
                key: dir.join("server.key"),
            },
            expired: Identity {
                cert: dir.join("expired.pem"),
                key: dir.join("server.key"),
            },
            not_yet_valid: Identity {
                cert: dir.join("not-yet-valid.pem"),
                key: dir.join("server.key"),
            },
            req_newkey: Identity {
                cert: dir.join("req-newkey.pem"),
                key: dir.join("req-newkey.key"),
            },
            dir,
            ca,
            ca_key,
            other_ca,
            clients: Vec::new(),
            keys: Vec::new(),
        };
        run.genpkey(Alg::EcP256, &pki.server.key);
        pki.issue(
            &run,
            &pki.server.key,
            "/CN=localhost",
            "server",
            &pki.server.cert,
        );
        pki.issue(
            &run,
            &pki.server.key,
            "/CN=gateway.test",
            "gateway",
            &pki.gateway.cert,
        );
        pki.issue_dated(
            &run,
            &pki.expired.cert,
            "20200101000000Z",
            "20200102000000Z",
        );
        pki.issue_dated(
            &run,
            &pki.not_yet_valid.cert,
            "20990101000000Z",
            "20991231000000Z",
        );

        for alg in [Alg::EcP256, Alg::Rsa2048, Alg::Ed25519] {
            let id = Identity {
                cert: pki.dir.join(format!("client-{alg:?}.pem")),
                key: pki.dir.join(format!("client-{alg:?}.key")),
            };
            run.genpkey(alg, &id.key);
            pki.issue(
                &run,
                &id.key,
                &format!("/CN=client {alg:?}"),
                "client",
                &id.cert,
            );
            pki.clients.push((alg, id));
        }

        // How many how-tos make a client key: `req -newkey`, which encrypts the key with
        // -passout unless -nodes is given.
        let csr = pki.dir.join("req-newkey.csr");
        let pass = format!("pass:{PASSWORD}");
        run.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            p(&pki.req_newkey.key),
            "-passout",
            &pass,
            "-subj",
            "/CN=req-newkey client",
            "-out",
            p(&csr),
        ]);
        pki.sign_csr(&run, &csr, "client", &pki.req_newkey.cert);

        for variant in KeyVariant::ALL {
            let file = pki.write_key(&run, variant);
            pki.keys.push((variant, file));
        }
        pki
    }

    /// A certificate for `key`, issued by the CA with the extensions of `section`.
    fn issue(&self, run: &Runner, key: &Path, subject: &str, section: &str, out: &Path) {
        let csr = out.with_extension("csr");
        run.openssl(&[
            "req",
            "-new",
            "-key",
            p(key),
            "-subj",
            subject,
            "-out",
            p(&csr),
        ]);
        self.sign_csr(run, &csr, section, out);
    }

    fn sign_csr(&self, run: &Runner, csr: &Path, section: &str, out: &Path) {
        run.openssl(&[
            "x509",
            "-req",
            "-in",
            p(csr),
            "-CA",
            p(&self.ca),
            "-CAkey",
            p(&self.ca_key),
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

    /// A `localhost` server certificate valid from `start` to `end` (`YYYYMMDDHHMMSSZ`).
    /// `openssl x509 -req` of OpenSSL 3.0 cannot set both dates; `openssl ca` can.
    fn issue_dated(&self, run: &Runner, out: &Path, start: &str, end: &str) {
        let csr = out.with_extension("csr");
        run.openssl(&[
            "req",
            "-new",
            "-key",
            p(&self.server.key),
            "-subj",
            "/CN=localhost",
            "-out",
            p(&csr),
        ]);
        run.openssl(&[
            "ca",
            "-batch",
            "-config",
            "openssl.cnf",
            "-cert",
            p(&self.ca),
            "-keyfile",
            p(&self.ca_key),
            "-in",
            p(&csr),
            "-out",
            p(out),
            "-startdate",
            start,
            "-enddate",
            end,
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "server",
            "-notext",
        ]);
        let dates = run.openssl(&["x509", "-in", p(out), "-noout", "-startdate", "-enddate"]);
        assert!(dates.contains("notBefore="), "{dates}");
    }

    /// Writes the key of `variant` (encrypted ones with [`PASSWORD`]) and checks it.
    fn write_key(&self, run: &Runner, variant: KeyVariant) -> PathBuf {
        let source = self.client(variant.alg()).key.clone();
        let out = self.dir.join(format!("key-{variant:?}.pem"));
        let (inp, outp) = (p(&source), p(&out));
        let pass = format!("pass:{PASSWORD}");
        let topk8 = |extra: &[&str]| {
            let mut args = vec![
                "pkcs8", "-topk8", "-in", inp, "-passout", &pass, "-out", outp,
            ];
            args.extend_from_slice(extra);
            run.openssl(&args);
        };
        match variant {
            KeyVariant::Pkcs8Plain | KeyVariant::Ed25519Plain => {
                std::fs::copy(&source, &out).unwrap();
            }
            KeyVariant::ReqNewkey => {
                std::fs::copy(&self.req_newkey.key, &out).unwrap();
            }
            KeyVariant::Pkcs8EncDefault => topk8(&[]),
            KeyVariant::Pkcs8Sha1Prf => topk8(&["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1"]),
            KeyVariant::Pkcs8Des3 => topk8(&["-v2", "des3"]),
            KeyVariant::Pkcs8Scrypt => topk8(&["-scrypt"]),
            KeyVariant::Pbes1Md5Des => topk8(&[
                "-provider",
                "legacy",
                "-provider",
                "default",
                "-v1",
                "PBE-MD5-DES",
            ]),
            KeyVariant::Pkcs12Sha13Des => topk8(&["-v1", "PBE-SHA1-3DES"]),
            KeyVariant::RsaPkcs1Plain => {
                run.openssl(&["rsa", "-in", inp, "-traditional", "-out", outp]);
            }
            KeyVariant::RsaLegacyAes256 | KeyVariant::RsaLegacyDes3 => {
                let cipher = if variant == KeyVariant::RsaLegacyAes256 {
                    "-aes256"
                } else {
                    "-des3"
                };
                run.openssl(&[
                    "rsa",
                    "-in",
                    inp,
                    "-traditional",
                    cipher,
                    "-passout",
                    &pass,
                    "-out",
                    outp,
                ]);
            }
            KeyVariant::EcSec1Plain => {
                run.openssl(&["ec", "-in", inp, "-out", outp]);
            }
            KeyVariant::EcLegacyAes256 => {
                run.openssl(&["ec", "-in", inp, "-aes256", "-passout", &pass, "-out", outp]);
            }
        }
        self.check_key(run, variant, &out);
        out
    }

    /// Asserts that `file` is what `variant` promises, and that an encrypted key really is
    /// encrypted: `openssl pkey` reads it with [`PASSWORD`] and refuses another password.
    fn check_key(&self, run: &Runner, variant: KeyVariant, file: &Path) {
        let text = std::fs::read_to_string(file).unwrap();
        let (first, expect) = variant.expected();
        assert_eq!(
            text.lines().next(),
            Some(first),
            "{variant:?}: {}",
            file.display()
        );
        match expect {
            Expect::Nothing => {}
            Expect::Dek(cipher) => {
                assert!(
                    text.contains("Proc-Type: 4,ENCRYPTED"),
                    "{variant:?}: {text}"
                );
                let dek = format!("DEK-Info: {cipher},");
                assert!(text.contains(&dek), "{variant:?} lacks {dek}");
            }
            Expect::Objects(objects) => {
                let parsed = run.openssl(&["asn1parse", "-in", p(file)]);
                let names: Vec<&str> = parsed
                    .lines()
                    .filter(|l| l.contains("OBJECT"))
                    .filter_map(|l| l.rsplit(':').next())
                    .map(str::trim)
                    .collect();
                for object in objects {
                    assert!(
                        names.contains(object),
                        "{variant:?} should use {object}: {names:?}"
                    );
                }
                if variant == KeyVariant::Pkcs8Sha1Prf {
                    assert!(
                        !names.iter().any(|n| n.starts_with("hmacWith")),
                        "{names:?}"
                    );
                }
            }
        }
        let legacy = ["-provider", "legacy", "-provider", "default"];
        let read = |password: &str| {
            let pass = format!("pass:{password}");
            let mut args = vec!["pkey", "-in", p(file), "-passin", &pass, "-noout"];
            if variant == KeyVariant::Pbes1Md5Des {
                args.extend_from_slice(&legacy);
            }
            run.try_openssl(&args)
        };
        if variant.is_encrypted() {
            read(PASSWORD).unwrap_or_else(|e| panic!("{variant:?} does not open: {e}"));
            assert!(
                read("not-the-password").is_err(),
                "{variant:?}: {} opens with any password: it is not encrypted",
                file.display()
            );
        } else {
            assert!(!text.contains("ENCRYPTED"), "{variant:?} should be plain");
        }
    }
}

/// Runs `openssl` in the PKI directory with the PKI's configuration.
struct Runner {
    dir: PathBuf,
}

impl Runner {
    fn self_signed_ca(&self, name: &str, key: &Path, cert: &Path) {
        self.genpkey(Alg::EcP256, key);
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

    fn genpkey(&self, alg: Alg, out: &Path) {
        let mut args = vec!["genpkey"];
        args.extend_from_slice(alg.genpkey_args());
        args.extend_from_slice(&["-out", p(out)]);
        self.openssl(&args);
    }

    /// Runs `openssl`, panicking with its stderr when it fails; returns stdout.
    fn openssl(&self, args: &[&str]) -> String {
        self.try_openssl(args)
            .unwrap_or_else(|e| panic!("openssl {} failed:\n{e}", args.join(" ")))
    }

    fn try_openssl(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .env("OPENSSL_CONF", self.dir.join("openssl.cnf"))
            .output()
            .expect("the openssl command runs");
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            let mut e = String::from_utf8_lossy(&output.stderr).into_owned();
            let _ = write!(e, "(exit {})", output.status);
            Err(e)
        }
    }
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
/// The commands run without this module's `openssl.cnf` where the recipe does, as a user
/// would type them.
pub struct Recipes {
    dir: PathBuf,
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
        std::fs::write(dir.join("ca.cnf"), OPENSSL_CNF).unwrap();
        std::fs::write(dir.join("ca-index.txt"), "").unwrap();
        std::fs::write(dir.join("ca-serial.txt"), "2000\n").unwrap();
        Recipes {
            ca: copy(&pki.ca, "ca.pem"),
            ca_key: copy(&pki.ca_key, "ca.key"),
            other_ca: copy(&pki.other_ca, "other-ca.pem"),
            other_ca_key: copy(&pki.dir.join("other-ca.key"), "other-ca.key"),
            dir: dir.to_owned(),
        }
    }

    fn openssl(&self, args: &[&str]) -> String {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("the openssl command runs");
        assert!(
            output.status.success(),
            "openssl {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `openssl req -newkey rsa:2048 -nodes -keyout NAME.key -out NAME.csr -subj SUBJECT`.
    fn request(&self, name: &str, subject: &str) -> (PathBuf, PathBuf) {
        let (key, csr) = (
            self.dir.join(format!("{name}.key")),
            self.dir.join(format!("{name}.csr")),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            p(&key),
            "-out",
            p(&csr),
            "-subj",
            subject,
        ]);
        (key, csr)
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
        let (key, csr) = self.request(name, subject);
        let cert = self.dir.join(format!("{name}.pem"));
        let (ca, ca_key) = if other_ca {
            (&self.other_ca, &self.other_ca_key)
        } else {
            (&self.ca, &self.ca_key)
        };
        let ext_file = self.dir.join(format!("{name}.ext"));
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
            p(&cert),
            "-days",
            days,
        ];
        if let Some(text) = ext {
            std::fs::write(&ext_file, text).unwrap();
            args.extend_from_slice(&["-extfile", p(&ext_file)]);
        }
        self.openssl(&args);
        Identity { cert, key }
    }

    /// `openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj SUBJECT`: a self-signed
    /// certificate (a CA certificate too, by OpenSSL's defaults).
    pub fn self_signed(&self, name: &str, subject: &str) -> Identity {
        let (key, cert) = (
            self.dir.join(format!("{name}.key")),
            self.dir.join(format!("{name}.pem")),
        );
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            p(&key),
            "-out",
            p(&cert),
            "-days",
            "365",
            "-subj",
            subject,
        ]);
        Identity { cert, key }
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
        let (key, csr) = self.request(name, subject);
        let leaf = self.dir.join(format!("{name}-leaf.pem"));
        let ext_file = self.dir.join(format!("{name}.ext"));
        std::fs::write(&ext_file, CLIENT_EXT).unwrap();
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            p(&csr),
            "-CA",
            p(&intermediate.cert),
            "-CAkey",
            p(&intermediate.key),
            "-CAcreateserial",
            "-out",
            p(&leaf),
            "-days",
            "365",
            "-extfile",
            p(&ext_file),
        ]);
        let cert = self.dir.join(format!("{name}.pem"));
        let chain = std::fs::read_to_string(&leaf).unwrap()
            + &std::fs::read_to_string(&intermediate.cert).unwrap();
        std::fs::write(&cert, chain).unwrap();
        Identity { cert, key }
    }

    /// An X.509 v1 certificate valid only from `start` to `end` (`YYYYMMDDHHMMSSZ`):
    /// `openssl ca` with no extensions (`x509 -req` of OpenSSL 3.0 cannot set dates).
    pub fn v1_dated(&self, name: &str, subject: &str, start: &str, end: &str) -> Identity {
        let (key, csr) = self.request(name, subject);
        let cert = self.dir.join(format!("{name}.pem"));
        self.openssl(&[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            p(&self.ca),
            "-keyfile",
            p(&self.ca_key),
            "-in",
            p(&csr),
            "-out",
            p(&cert),
            "-startdate",
            start,
            "-enddate",
            end,
            "-notext",
        ]);
        Identity { cert, key }
    }

    /// `openssl pkcs12 -export -inkey KEY -in CERT -certfile ca.pem`, with OpenSSL's
    /// current defaults (AES-256-CBC, PBKDF2, SHA-256 MAC) or `-legacy` (RC2/3DES, SHA-1).
    pub fn pkcs12(&self, identity: &Identity, password: &str, legacy: bool) -> PathBuf {
        let out = identity
            .cert
            .with_extension(if legacy { "legacy.p12" } else { "p12" });
        let pass = format!("pass:{password}");
        let mut args = vec![
            "pkcs12",
            "-export",
            "-inkey",
            p(&identity.key),
            "-in",
            p(&identity.cert),
            "-certfile",
            p(&self.ca),
            "-passout",
            &pass,
            "-out",
            p(&out),
        ];
        if legacy {
            args.push("-legacy");
        }
        self.openssl(&args);
        out
    }

    /// A copy of `identity` whose certificate's signature has its last byte changed.
    pub fn bad_signature(&self, identity: &Identity) -> Identity {
        self.openssl(&[
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
            key: identity.key.clone(),
        }
    }

    /// The `Version:` line of `openssl x509 -text`, e.g. `Version: 1 (0x0)`.
    pub fn version(&self, cert: &Path) -> String {
        let text = self.openssl(&["x509", "-in", p(cert), "-noout", "-text"]);
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
