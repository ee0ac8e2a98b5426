//! How an uplink logs its connection failures: through the process-wide
//! [`log_limit`](crate::log_limit) limiter, per uplink and cause, so that a dead server
//! or one that accepts and then drops every connection writes a line a minute, not a
//! line per cycle; `failing_for` is the real time since the first failure of the
//! episode, which a short-lived connection does not end.

use std::time::{Duration, Instant};

use tagwire_ws_client::{Connection, WsUrl};
use tracing::{debug, info, warn};

use crate::link_error::LinkError;
use crate::log_limit;

/// A connection must have lasted this long for its end to start a new episode: a
/// server that fails every connection within seconds is one long outage.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// The limiter cause of "connected again" lines within an episode.
const RECONNECTED: &str = "connection: connected again";

/// One uplink's failure episode. See the module documentation.
#[derive(Default)]
pub(crate) struct FailureLog {
    failing_since: Option<Instant>,
    failures: u64,
    connected_at: Option<Instant>,
}

impl FailureLog {
    /// A connection attempt failed, or a connection was lost, because of `cause`.
    pub(crate) fn record(&mut self, name: &str, url: &WsUrl, cause: &LinkError) {
        let now = Instant::now();
        if self
            .connected_at
            .take()
            .is_some_and(|at| now.duration_since(at) >= STABLE_AFTER)
        {
            self.end_episode(name);
        }
        self.failures += 1;
        let since = *self.failing_since.get_or_insert(now);
        let cause = cause.to_string();
        match log_limit::global().check(name, &format!("connection: {cause}")) {
            Some(due) => warn!(
                uplink = %name, url = %url.for_logs(), failures = self.failures,
                failing_for = %crate::human_duration(now.duration_since(since)), suppressed = due.suppressed,
                "cannot deliver: {cause}; retrying with backoff, messages stay queued"
            ),
            None => debug!(uplink = %name, "connection attempt failed: {cause}"),
        }
    }

    /// A connection is up. Within an episode this is logged like a failure (the first,
    /// then once a minute), since a flapping server connects on every cycle.
    pub(crate) fn recovered(&mut self, name: &str, url: &WsUrl, conn: &Connection) {
        self.connected_at = Some(Instant::now());
        let peer = conn.peer_addr();
        let subprotocol = conn.protocol().unwrap_or("none");
        match self.failing_since {
            Some(since) => {
                if log_limit::global().check(name, RECONNECTED).is_some() {
                    info!(
                        uplink = %name, url = %url.for_logs(), %peer, %subprotocol,
                        failures = self.failures,
                        "connected again after {}", crate::human_duration(since.elapsed())
                    );
                }
            }
            None => info!(uplink = %name, url = %url.for_logs(), %peer, %subprotocol, "connected"),
        }
    }

    fn end_episode(&mut self, name: &str) {
        self.failing_since = None;
        self.failures = 0;
        log_limit::global().clear_where(name, |cause| cause.starts_with("connection: "));
    }
}
