//! Exponential reconnect backoff with full jitter.
//!
//! Many gateways restart together after a power cut; without jitter they would all hit
//! the server at the same instants. Each delay is drawn uniformly from
//! `[floor, min(ceiling, floor * 2^attempt)]`.

use std::time::Duration;

use rand::Rng;

/// Reconnect delays for one uplink.
#[derive(Clone, Debug)]
pub struct Backoff {
    floor: Duration,
    ceiling: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays start at `floor` and never exceed `ceiling` (which is raised to `floor` if lower).
    pub fn new(floor: Duration, ceiling: Duration) -> Self {
        Self {
            floor,
            ceiling: ceiling.max(floor),
            attempt: 0,
        }
    }

    /// The delay before the next attempt; each call widens the window.
    pub fn next_delay(&mut self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX);
        let upper = self.floor.saturating_mul(factor).min(self.ceiling);
        self.attempt = self.attempt.saturating_add(1);
        if upper <= self.floor {
            return self.floor;
        }
        rand::thread_rng().gen_range(self.floor..=upper)
    }

    /// Back to the shortest delay (after a connection proved healthy).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_floor_and_ceiling_and_reset() {
        let floor = Duration::from_millis(100);
        let ceiling = Duration::from_secs(2);
        let mut b = Backoff::new(floor, ceiling);
        assert_eq!(b.next_delay(), floor);
        let mut max_seen = Duration::ZERO;
        for _ in 0..200 {
            let d = b.next_delay();
            assert!(d >= floor && d <= ceiling, "{d:?}");
            max_seen = max_seen.max(d);
        }
        // With 200 draws from a window that reaches the ceiling, jitter must spread them.
        assert!(max_seen > Duration::from_secs(1), "{max_seen:?}");
        b.reset();
        assert_eq!(b.next_delay(), floor);
    }
}
