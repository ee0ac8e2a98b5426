//! Certificates renewed while tagwire runs: [`ClientConfigSource`] re-reads the files of
//! an uplink before each connection and keeps the last configuration that worked.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash as _, Hasher as _};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::verifier::Notices;
use crate::{build, non_empty, CertSummary, PasswordSource, PemSource, TlsConfigError, TlsParams};

/// The TLS configuration of one uplink, kept in step with its files.
///
/// [`current`](Self::current) is called once before each connection: when one of the files
/// named by `ca`, `cert`, `key` or `keypass = "file:…"` changed since the configuration in
/// use was built, the configuration is built again. A renewed client certificate is logged
/// with its new expiry date; files that no longer make a usable configuration (a
/// half-copied certificate, a key that does not match yet) are logged once with the reason
/// and the last good configuration stays in use, so a bad renewal never takes a working
/// uplink down. Values given inline never change.
///
/// Files are compared by content (a hash), so touching a file does not count as a change
/// and a change is seen whatever the file's modification time says.
pub struct ClientConfigSource {
    params: TlsParams,
    notices: Arc<Notices>,
    state: Mutex<State>,
}

struct State {
    config: Arc<ClientConfig>,
    client_cert: Option<CertSummary>,
    chain: Vec<CertificateDer<'static>>,
    /// The files the configuration in use was built from.
    stamp: u64,
    /// Files that were tried and failed, so that they are neither tried nor reported again.
    failed_stamp: Option<u64>,
}

impl ClientConfigSource {
    /// Builds the first configuration of the uplink `label` (its name, for the logs).
    /// Errors are those of [`build_client_config`](crate::build_client_config): at start,
    /// there is no good configuration to fall back on.
    pub fn new(label: &str, params: TlsParams) -> Result<ClientConfigSource, TlsConfigError> {
        let notices = Notices::new(label);
        let stamp = files_stamp(&params);
        let built = build(&params, &notices)?;
        Ok(ClientConfigSource {
            params,
            notices,
            state: Mutex::new(State {
                config: built.config,
                client_cert: built.client_cert,
                chain: built.chain,
                stamp,
                failed_stamp: None,
            }),
        })
    }

    /// The configuration to connect with, after re-reading the files if they changed.
    pub fn current(&self) -> Arc<ClientConfig> {
        let stamp = files_stamp(&self.params);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if stamp == state.stamp || state.failed_stamp == Some(stamp) {
            return Arc::clone(&state.config);
        }
        let label = &self.notices.label;
        match build(&self.params, &self.notices) {
            Ok(built) => {
                if built.chain != state.chain {
                    match &built.client_cert {
                        Some(cert) => tracing::info!(
                            uplink = %label,
                            "client certificate renewed: now presenting \"{}\" issued by \"{}\", {}",
                            cert.subject,
                            cert.issuer,
                            cert.expiry_phrase(UnixTime::now())
                        ),
                        None => tracing::info!(uplink = %label, "client certificate removed"),
                    }
                    if let Some(warning) = built
                        .client_cert
                        .as_ref()
                        .and_then(|cert| cert.expiry_warning(UnixTime::now()))
                    {
                        tracing::warn!(uplink = %label, "{warning}");
                    }
                } else {
                    tracing::info!(uplink = %label, "TLS files changed; configuration reloaded");
                }
                *state = State {
                    config: built.config,
                    client_cert: built.client_cert,
                    chain: built.chain,
                    stamp,
                    failed_stamp: None,
                };
            }
            Err(err) => {
                tracing::warn!(
                    uplink = %label,
                    "the changed TLS files cannot be used, so the previous certificate and key \
                     stay in use: {err}"
                );
                state.failed_stamp = Some(stamp);
            }
        }
        Arc::clone(&state.config)
    }

    /// True when the files changed since the configuration in use was built, and the change
    /// has not already been found unusable: a reconnect would present something new.
    pub fn files_changed(&self) -> bool {
        let stamp = files_stamp(&self.params);
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        stamp != state.stamp && state.failed_stamp != Some(stamp)
    }

    /// The client certificate of the configuration in use, if any.
    pub fn client_certificate(&self) -> Option<CertSummary> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.client_cert.clone()
    }
}

impl std::fmt::Debug for ClientConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfigSource")
            .field("uplink", &self.notices.label)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// A hash of the content of every file the parameters name (a missing file hashes as
/// missing). Inline values are not files and never change.
fn files_stamp(params: &TlsParams) -> u64 {
    let mut hasher = DefaultHasher::new();
    for value in [&params.ca, &params.cert, &params.key] {
        if let Some(PemSource::File(path)) = non_empty(value).map(PemSource::detect) {
            hash_file(&mut hasher, &path);
        }
    }
    if let Some(PasswordSource::File(path)) = &params.keypass {
        hash_file(&mut hasher, path);
    }
    hasher.finish()
}

fn hash_file(hasher: &mut DefaultHasher, path: &Path) {
    match std::fs::read(path) {
        Ok(bytes) => {
            // a key or password file: wiped after hashing
            let bytes = pkcs8::der::zeroize::Zeroizing::new(bytes);
            1u8.hash(hasher);
            bytes.hash(hasher);
        }
        Err(_) => 0u8.hash(hasher),
    }
}
