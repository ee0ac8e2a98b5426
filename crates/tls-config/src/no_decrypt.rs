//! Without the `encrypted-keys` feature: an encrypted key is recognised and refused with
//! the feature that reads it and the `openssl` command that writes it unencrypted, so a
//! program that does not need encrypted keys leaves out their ciphers and KDFs (about 30
//! crates).

use rustls_pki_types::PrivateKeyDer;

use crate::error::{ErrorKind, TlsConfigError};
use crate::key::KeyContext;
use crate::pem::Block;

impl KeyContext<'_> {
    /// `ENCRYPTED PRIVATE KEY` (PKCS#8): refused.
    pub(crate) fn decrypt_pkcs8(
        &self,
        _block: &Block<'_>,
    ) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
        Err(self.not_built("an encrypted PKCS#8 key"))
    }

    /// `Proc-Type: 4,ENCRYPTED` (OpenSSL's legacy PEM encryption): refused.
    pub(crate) fn decrypt_legacy(
        &self,
        block: &Block<'_>,
    ) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
        Err(self.not_built(&format!(
            "an encrypted \"{}\" (OpenSSL legacy PEM encryption)",
            block.label
        )))
    }

    fn not_built(&self, what: &str) -> TlsConfigError {
        let path = self.origin.path_for_command();
        self.error(
            ErrorKind::UnsupportedEncryption,
            format!(
                "{} holds {what}, and this program was built without encrypted-key support \
                 (tagwire-tls-config's `encrypted-keys` feature): write the key unencrypted \
                 with `openssl pkey -in {path} -out client-key.pem` (it asks for the password; \
                 keep the new file readable by this program only) and use that file, or build \
                 with the feature",
                self.origin
            ),
        )
    }
}
