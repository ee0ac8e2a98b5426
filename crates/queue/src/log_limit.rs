//! The one rate limiter for repeated warnings and errors, shared by the whole process.
//!
//! A gateway runs for months: a condition that repeats (a server down with policy
//! `refuse`, a read-only cache directory, an API client over its limits) must not write
//! a line per occurrence. Each *(scope, cause)* pair — scope is usually the uplink's
//! name — is logged the first time, then at most once per interval (a minute), each
//! line saying how many occurrences were suppressed since the last and how long the
//! condition has lasted. The state lives here, not in a connection, so it survives
//! reconnect cycles; [`LogLimiter::clear`] ends an episode when the condition is over.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often a repeated condition is logged at most.
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Most (scope, cause) pairs remembered: causes carry error text, which may vary
/// without end over months; beyond this, quiet pairs are forgotten (and logged afresh).
pub const MAX_ENTRIES: usize = 1024;

/// Rate limits log lines per (scope, cause). See the module documentation.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    entries: Mutex<HashMap<(String, String), Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    first: Instant,
    last_logged: Instant,
    suppressed: u64,
    total: u64,
}

/// Leave to log one occurrence, with what was not logged since the last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Occurrences not logged since the previous line of this (scope, cause).
    pub suppressed: u64,
    /// Occurrences since the episode began, this one included.
    pub total: u64,
    /// Time since the first occurrence of the episode.
    pub lasting: Duration,
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new(LOG_INTERVAL)
    }
}

/// The process-wide limiter every repeated warning goes through.
pub fn global() -> &'static LogLimiter {
    static GLOBAL: OnceLock<LogLimiter> = OnceLock::new();
    GLOBAL.get_or_init(LogLimiter::default)
}

impl LogLimiter {
    /// A limiter logging each (scope, cause) at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Records one occurrence; `Some` when it should be logged.
    pub fn check(&self, scope: &str, cause: &str) -> Option<Due> {
        self.check_at(scope, cause, Instant::now())
    }

    /// [`check`](Self::check) at a given time (for tests).
    pub fn check_at(&self, scope: &str, cause: &str, now: Instant) -> Option<Due> {
        let mut entries = self.entries.lock().expect("never poisoned");
        let key = (scope.to_string(), cause.to_string());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            let interval = self.interval;
            entries.retain(|_, e| now.duration_since(e.last_logged) < interval);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        match entries.get_mut(&key) {
            None => {
                entries.insert(
                    key,
                    Entry {
                        first: now,
                        last_logged: now,
                        suppressed: 0,
                        total: 1,
                    },
                );
                Some(Due {
                    suppressed: 0,
                    total: 1,
                    lasting: Duration::ZERO,
                })
            }
            Some(e) => {
                e.total += 1;
                if now.duration_since(e.last_logged) >= self.interval {
                    let due = Due {
                        suppressed: e.suppressed,
                        total: e.total,
                        lasting: now.duration_since(e.first),
                    };
                    e.last_logged = now;
                    e.suppressed = 0;
                    Some(due)
                } else {
                    e.suppressed += 1;
                    None
                }
            }
        }
    }

    /// Ends the episode of (scope, cause): the next occurrence is logged at once.
    /// Returns how many occurrences it had and how long it lasted, if it was going on.
    pub fn clear(&self, scope: &str, cause: &str) -> Option<(u64, Duration)> {
        let mut entries = self.entries.lock().expect("never poisoned");
        entries
            .remove(&(scope.to_string(), cause.to_string()))
            .map(|e| (e.total, e.first.elapsed()))
    }

    /// Ends every episode of `scope` whose cause satisfies `pred`.
    pub fn clear_where(&self, scope: &str, mut pred: impl FnMut(&str) -> bool) {
        let mut entries = self.entries.lock().expect("never poisoned");
        entries.retain(|(s, c), _| !(s == scope && pred(c)));
    }

    /// Logs `message` at WARN when due, with the suppressed count and the duration.
    pub fn warn(&self, scope: &str, cause: &str, message: &str) {
        if let Some(d) = self.check(scope, cause) {
            tracing::warn!(
                suppressed = d.suppressed,
                occurrences = d.total,
                lasting = ?d.lasting,
                "{message}"
            );
        }
    }

    /// Logs `message` at ERROR when due, with the suppressed count and the duration.
    pub fn error(&self, scope: &str, cause: &str, message: &str) {
        if let Some(d) = self.check(scope, cause) {
            tracing::error!(
                suppressed = d.suppressed,
                occurrences = d.total,
                lasting = ?d.lasting,
                "{message}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_then_once_per_interval_with_the_suppressed_count() {
        let l = LogLimiter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(l.check_at("u", "c", t0).unwrap().total, 1);
        for i in 1..100 {
            assert!(l
                .check_at("u", "c", t0 + Duration::from_millis(i * 100))
                .is_none());
        }
        let due = l.check_at("u", "c", t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(due.suppressed, 99);
        assert_eq!(due.total, 101);
        assert_eq!(due.lasting, Duration::from_secs(61));
        assert!(l.check_at("u", "c", t0 + Duration::from_secs(62)).is_none());
    }

    #[test]
    fn the_number_of_remembered_causes_is_bounded() {
        let l = LogLimiter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 * MAX_ENTRIES {
            assert!(l.check_at("u", &format!("cause {i}"), t0).is_some());
        }
        assert!(l.entries.lock().unwrap().len() <= MAX_ENTRIES);
    }

    #[test]
    fn scopes_and_causes_are_separate_and_clear_ends_an_episode() {
        let l = LogLimiter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(l.check_at("a", "c", t0).is_some());
        assert!(l.check_at("b", "c", t0).is_some());
        assert!(l.check_at("a", "d", t0).is_some());
        assert!(l.check_at("a", "c", t0).is_none());
        assert_eq!(l.clear("a", "c").map(|(n, _)| n), Some(2));
        assert!(l.check_at("a", "c", t0).is_some());
        l.clear_where("a", |_| true);
        assert!(l.check_at("a", "d", t0).is_some());
        assert!(l.check_at("b", "c", t0).is_none());
    }
}
