//! The API's limits (`[api]` keys): how long a client may take, how many connections it
//! may hold, and how many body bytes may be in memory at once.

use std::time::Duration;

/// Timeouts, connection cap and body memory of the API. Every field is an `[api]` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// `header_timeout_ms`: the whole request head must arrive within this time.
    pub header_timeout: Duration,
    /// `body_timeout_ms`: the whole body (not each chunk) must arrive within this time
    /// of the head.
    pub body_timeout: Duration,
    /// `idle_timeout_ms`: a keep-alive connection with no request in progress is closed
    /// after this time.
    pub idle_timeout: Duration,
    /// `max_connections`: connections beyond this many are closed at once. This bounds
    /// the file descriptors the API can take from the uplinks.
    pub max_connections: usize,
    /// `max_body_bytes`: a larger body is answered 413.
    pub max_body_bytes: usize,
    /// `max_body_memory_bytes`: the bytes of all bodies being read or parsed at once;
    /// a body waits for room (until its body timeout, then 503).
    pub max_body_memory_bytes: usize,
    /// `max_parse_memory_bytes`: what all parses running at once may allocate, as
    /// estimated before each parse; a body whose parse alone would exceed it is 413.
    pub max_parse_memory_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 64,
            max_body_bytes: 8 * 1024 * 1024,
            max_body_memory_bytes: 32 * 1024 * 1024,
            max_parse_memory_bytes: 64 * 1024 * 1024,
        }
    }
}

impl ApiLimits {
    /// `max_connections` lowered, when needed, to half of the process's open-file limit,
    /// so that the API can never take the descriptors the uplinks and the disk cache need.
    /// Returns the limits and the open-file limit when it lowered them.
    pub fn within_open_files(mut self) -> (Self, Option<u64>) {
        match open_files_limit() {
            Some(n) if (self.max_connections as u64) > n / 2 => {
                self.max_connections = (n / 2).max(1) as usize;
                (self, Some(n))
            }
            _ => (self, None),
        }
    }
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
