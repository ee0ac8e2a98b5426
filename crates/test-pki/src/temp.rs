//! [`TempPki`]: a PKI of a test's own in a temporary directory.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{Identity, KeyAlg, KeyFormat, Openssl};

/// A CA, a server certificate for `localhost`/`127.0.0.1`, and a directory to write more,
/// made for one test: every test builds its own in its own temporary directory, so tests
/// run in parallel and leave nothing behind.
pub struct TempPki {
    dir: tempfile::TempDir,
    run: Openssl,
    pub ca_cert: PathBuf,
    ca_key: PathBuf,
    pub server: Identity,
    counter: Cell<u32>,
}

impl Default for TempPki {
    fn default() -> TempPki {
        TempPki::new()
    }
}

impl TempPki {
    /// A fresh CA with a name of its own, and a server certificate (both ECDSA P-256:
    /// quick to make).
    pub fn new() -> TempPki {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempPki::with_ca_name(&format!("tagwire test CA {n}"))
    }

    /// Like [`TempPki::new`] with a chosen CA name (two CAs with the same name but
    /// different keys are a case of their own).
    pub fn with_ca_name(ca_name: &str) -> TempPki {
        let dir = tempfile::tempdir().expect("temporary directory");
        let run = Openssl::new(dir.path());
        let ca_key = dir.path().join("ca.key");
        let ca_cert = dir.path().join("ca.pem");
        run.self_signed_ca(ca_name, &ca_key, &ca_cert);
        let server = Identity {
            alg: KeyAlg::EcP256,
            cert: dir.path().join("server.pem"),
            key: dir.path().join("server.key"),
        };
        run.genpkey(KeyAlg::EcP256, &server.key);
        run.issue(
            &ca_cert,
            &ca_key,
            &server.key,
            "/CN=localhost",
            "server",
            &server.cert,
        );
        TempPki {
            dir,
            run,
            ca_cert,
            ca_key,
            server,
            counter: Cell::new(0),
        }
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

    /// Runs `openssl` with `args` in this directory with its configuration, panicking with
    /// its stderr when it fails.
    pub fn openssl(&self, args: &[&str]) -> String {
        self.run.openssl(args)
    }

    /// Runs `openssl`, returning stdout, or stderr and the exit status.
    pub fn try_openssl(&self, args: &[&str]) -> Result<String, String> {
        self.run.try_openssl(args)
    }

    /// A client key of `alg` (unencrypted PKCS#8) and its certificate, signed by the CA.
    pub fn client(&self, alg: KeyAlg) -> Identity {
        let key = self.file(&format!("client-{alg:?}-key"));
        let cert = self.file(&format!("client-{alg:?}-cert"));
        self.run
            .client(&self.ca_cert, &self.ca_key, alg, &key, &cert)
    }

    /// A client identity made the way many how-tos do it: `openssl req -newkey`, which
    /// encrypts the key with `-passout` ([`crate::PASSWORD`]) unless `-nodes`.
    pub fn client_from_req_newkey(&self, alg: KeyAlg, encrypted: bool) -> Identity {
        let id = Identity {
            alg,
            key: self.file(&format!("req-newkey-{alg:?}-key")),
            cert: self.file(&format!("req-newkey-{alg:?}-cert")),
        };
        self.run
            .client_from_req_newkey(&self.ca_cert, &self.ca_key, &id, encrypted);
        id
    }

    /// Writes `identity`'s key in `format` (encrypted ones with [`crate::PASSWORD`]) and
    /// checks the result is what the format promises.
    pub fn write_key(&self, identity: &Identity, format: KeyFormat) -> PathBuf {
        let out = self.file(&format!("key-{:?}-{}", identity.alg, format.name()));
        format.write(&self.run, identity, &out);
        out
    }

    /// A server certificate for `localhost` valid only from `not_before` to `not_after`
    /// (`YYYYMMDDHHMMSSZ`), signed by the CA, with the server's key.
    pub fn server_with_validity(&self, not_before: &str, not_after: &str) -> Identity {
        self.dated(
            &self.server,
            "/CN=localhost",
            not_before,
            not_after,
            Some("server"),
        )
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
        self.dated(identity, subject, not_before, not_after, None)
    }

    fn dated(
        &self,
        identity: &Identity,
        subject: &str,
        start: &str,
        end: &str,
        section: Option<&str>,
    ) -> Identity {
        let csr = self.file("dated-csr");
        let cert = self.file("dated-cert");
        self.run.request(&identity.key, subject, &csr);
        self.run.issue_dated(
            &self.ca_cert,
            &self.ca_key,
            &csr,
            &cert,
            start,
            end,
            section,
        );
        Identity {
            cert,
            ..identity.clone()
        }
    }

    /// A key and certificate made with [`Openssl::recipe`], run as a user would type it
    /// (without this directory's `openssl.cnf`), valid 365 days. Without `extfile` (the
    /// text of an extensions file), OpenSSL 3.0 makes an X.509 v1 certificate.
    pub fn user_recipe(&self, subject: &str, extfile: Option<&str>) -> Identity {
        let id = Identity {
            alg: KeyAlg::Rsa2048,
            key: self.file("recipe-key"),
            cert: self.file("recipe-cert"),
        };
        let ext_file = self.file("recipe-ext");
        let ext = extfile.map(|text| (text, ext_file.as_path()));
        Openssl::plain(self.dir.path()).recipe(
            &self.ca_cert,
            &self.ca_key,
            &id,
            subject,
            ext,
            "365",
        );
        id
    }

    /// `openssl pkcs12 -export` of `identity` with the CA certificate as its chain, with
    /// OpenSSL's current defaults or `-legacy` (RC2/3DES, SHA-1 MAC).
    pub fn pkcs12(&self, identity: &Identity, password: &str, legacy: bool) -> PathBuf {
        let n = self.counter.get() + 1;
        self.counter.set(n);
        let suffix = if legacy { "-legacy" } else { "" };
        let out = self.dir.path().join(format!("{n:03}-bundle{suffix}.p12"));
        self.run
            .pkcs12(identity, &self.ca_cert, password, legacy, &out);
        out
    }
}
