//! What a queue may hold and what it does when full.

use std::path::PathBuf;

use crate::disk_log::{SyncPolicy, DEFAULT_HEAD_INTERVAL};

/// What to do when a new message does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Drop the oldest queued messages to make room (Neuron's behaviour, and the default).
    #[default]
    DropOldest,
    /// Drop the new message and keep what is queued.
    DropNewest,
    /// Refuse the new message so the source can push back (the ingest API answers 503).
    Refuse,
}

impl std::str::FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::DropOldest, Self::DropNewest, Self::Refuse]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown policy {s:?}: use \"drop_oldest\", \"drop_newest\" or \"refuse\"")
            })
    }
}

impl FullPolicy {
    /// The word of the configuration (`"drop_oldest"`, ...), which logs use too.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DropOldest => "drop_oldest",
            Self::DropNewest => "drop_newest",
            Self::Refuse => "refuse",
        }
    }
}

impl std::fmt::Display for FullPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The disk cache behind a queue. `#[non_exhaustive]`: made by [`DiskCacheConfig::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskCacheConfig {
    /// This uplink's own directory (one log per directory).
    pub dir: PathBuf,
    /// Most bytes on disk.
    pub max_bytes: u64,
    /// When appends reach the device.
    pub sync: SyncPolicy,
}

impl DiskCacheConfig {
    /// A disk cache in `dir` (this queue's own directory) of at most `max_bytes`, synced
    /// by `sync`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64, sync: SyncPolicy) -> Self {
        DiskCacheConfig {
            dir: dir.into(),
            max_bytes,
            sync,
        }
    }

    /// How often the owner should call [`MessageQueue::sync`](crate::MessageQueue::sync):
    /// the sync interval with [`SyncPolicy::Interval`], but at least every
    /// [`DEFAULT_HEAD_INTERVAL`], so that the last confirmations of a busy period reach
    /// the `head` file within about that long.
    pub fn tick_period(&self) -> std::time::Duration {
        match self.sync {
            SyncPolicy::Interval(period) => period.min(DEFAULT_HEAD_INTERVAL),
            SyncPolicy::Always | SyncPolicy::Never => DEFAULT_HEAD_INTERVAL,
        }
    }
}

/// Limits of one queue. `#[non_exhaustive]`: built from [`Default`] with the `with_*`
/// setters, so a new limit is not a breaking change.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct QueueLimits {
    /// Most payload bytes held in memory (with a disk cache: payloads kept in memory,
    /// the rest is read back from disk when needed).
    pub max_bytes: usize,
    /// Most messages held at once.
    pub max_messages: usize,
    /// What happens when a message does not fit.
    pub policy: FullPolicy,
    /// The disk cache, if any.
    pub disk: Option<DiskCacheConfig>,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_messages: 100_000,
            policy: FullPolicy::DropOldest,
            disk: None,
        }
    }
}

/// Setters, for building the limits from [`Default`] in one expression.
impl QueueLimits {
    /// Sets [`max_bytes`](Self::max_bytes).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets [`max_messages`](Self::max_messages).
    #[must_use]
    pub fn with_max_messages(mut self, max_messages: usize) -> Self {
        self.max_messages = max_messages;
        self
    }

    /// Sets [`policy`](Self::policy).
    #[must_use]
    pub fn with_policy(mut self, policy: FullPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`disk`](Self::disk); `None`: memory only.
    #[must_use]
    pub fn with_disk(mut self, disk: Option<DiskCacheConfig>) -> Self {
        self.disk = disk;
        self
    }
}
