//! The errors of the disk log.

use std::fmt;
use std::io::{self, ErrorKind};
use std::path::PathBuf;

use super::format::RECORD_HEADER_LEN;
#[cfg(doc)]
use super::{DiskLog, DiskLogOptions};

/// Why a [`DiskLog`] operation failed.
#[non_exhaustive]
pub enum DiskLogError {
    /// The record does not fit within `max_bytes` until older records are removed:
    /// the caller applies its drop policy (remove the oldest, drop the new one, or
    /// refuse).
    Full,
    /// The record alone is larger than the whole log may be, so it can never be
    /// stored, whatever is removed.
    TooLarge {
        /// Payload length in bytes.
        len: u64,
        /// The log's `max_bytes`.
        max_bytes: u64,
    },
    /// A file system operation failed. The log is still consistent: a failed append
    /// stored nothing. [`is_disk_full`](Self::is_disk_full) tells a full disk apart.
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done, such as "write" or "create segment".
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// A record that was valid when indexed no longer is (the file changed under the
    /// log, or the device returned different data). Remove it with
    /// [`DiskLog::pop_front`] to go on; the other records are unaffected.
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the record in the file.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An option in [`DiskLogOptions`] is unusable.
    InvalidOptions {
        /// The field, such as `max_bytes`.
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// [`DiskLog::pop_front`] was asked to remove more records than the log holds;
    /// nothing was removed.
    PopBeyondEnd {
        /// Records asked for.
        requested: u64,
        /// Records in the log.
        len: u64,
    },
}

impl DiskLogError {
    /// True when the file system is out of space: the caller should keep messages in
    /// memory and retry later.
    pub fn is_disk_full(&self) -> bool {
        match self {
            DiskLogError::Io { source, .. } => is_disk_full_io(source),
            _ => false,
        }
    }

    pub(super) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        DiskLogError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

pub(super) fn is_disk_full_io(error: &io::Error) -> bool {
    // ENOSPC (ERROR_DISK_FULL on Windows). `ErrorKind::QuotaExceeded` (EDQUOT) is
    // newer than the workspace's minimum Rust, so a used-up quota reads as plain I/O.
    error.kind() == ErrorKind::StorageFull
}

impl fmt::Display for DiskLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskLogError::Full => write!(
                f,
                "disk cache is full (max_bytes reached): remove older messages first, \
                 or raise the disk cache size"
            ),
            DiskLogError::TooLarge { len, max_bytes } => write!(
                f,
                "a {len}-byte message (plus a {RECORD_HEADER_LEN}-byte record header) can \
                 never fit in a disk cache of max_bytes = {max_bytes}: raise the disk \
                 cache size"
            ),
            DiskLogError::Io {
                path,
                action,
                source,
            } => {
                write!(
                    f,
                    "disk cache: cannot {action} {}: {source}",
                    path.display()
                )?;
                if is_disk_full_io(source) {
                    write!(
                        f,
                        "; the disk is full: free space on it or lower the disk cache size"
                    )
                } else {
                    write!(
                        f,
                        "; check that the cache directory exists, is writable by this \
                         user and that the disk is healthy"
                    )
                }
            }
            DiskLogError::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "disk cache record at byte {offset} of {} is damaged ({reason}): remove it \
                 (pop it) to go on; the other records are unaffected",
                path.display()
            ),
            DiskLogError::InvalidOptions { field, reason } => {
                write!(f, "disk cache option `{field}` {reason}")
            }
            DiskLogError::PopBeyondEnd { requested, len } => write!(
                f,
                "cannot remove {requested} records from a disk cache holding {len} \
                 (a bug in the caller); nothing was removed"
            ),
        }
    }
}

/// `Debug` is the message, with its advice: what `fn main() -> Result<..>` and `unwrap`
/// print. The fields are public for code that wants them.
impl fmt::Debug for DiskLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// No `source`: the message already includes the I/O error, so a reporter that walks the
/// chain (anyhow's `{:#}`) would print it twice. The error stays reachable as the `Io`
/// variant's field.
impl std::error::Error for DiskLogError {}
