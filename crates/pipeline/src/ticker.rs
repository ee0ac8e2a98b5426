//! A periodic timer that re-arms without waking tokio's driver.
//!
//! `tokio::time::Interval` re-arms its one timer after it fires. Tokio's timer wheel
//! then holds no earlier deadline than the new one, so the re-arm "unparks" the driver
//! (a write to the runtime's eventfd, and one more `epoll_wait` to read it back): two
//! syscalls per tick, 0.2 per message for the simulator's ten 100-tag groups at 2 ms.
//! [`Ticker`] keeps two timers a period apart and re-arms the one that fired one period
//! after the other: the new deadline is never the wheel's earliest, so nothing is woken.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{sleep_until, Instant, Sleep};

/// Ticks every `period`, the first at once. A consumer late by less than a period keeps
/// the schedule (its next tick is due when it would have been); one late by a period or
/// more gets its next tick a period after it took the late one, like
/// `MissedTickBehavior::Delay`: never a burst of the missed ones.
#[derive(Debug)]
pub struct Ticker {
    period: Duration,
    /// Two timers, deadlines a period apart; `timers[turn]` fires next.
    timers: [Pin<Box<Sleep>>; 2],
    turn: usize,
}

impl Ticker {
    /// A ticker of `period` (at least 1 ms: tokio's timer resolution).
    pub fn new(period: Duration) -> Self {
        let period = period.max(Duration::from_millis(1));
        let now = Instant::now();
        Self {
            period,
            timers: [
                Box::pin(sleep_until(now)),
                Box::pin(sleep_until(now + period)),
            ],
            turn: 0,
        }
    }

    /// Waits for the next tick and returns its deadline. Cancel-safe: a tick not waited
    /// out is still the next one.
    pub async fn tick(&mut self) -> Instant {
        let turn = self.turn;
        self.timers[turn].as_mut().await;
        let fired = self.timers[turn].deadline();
        let now = Instant::now();
        let mut other = self.timers[1 - turn].deadline();
        if other <= now {
            // Late by a period or more: the next tick is a period from now (this one
            // re-arm does wake the driver; only a late consumer pays it).
            other = now + self.period;
            self.timers[1 - turn].as_mut().reset(other);
        }
        self.timers[turn].as_mut().reset(other + self.period);
        self.turn = 1 - turn;
        fired
    }

    /// The two timers' deadlines, the next first.
    #[cfg(test)]
    fn deadlines(&self) -> [Instant; 2] {
        [
            self.timers[self.turn].deadline(),
            self.timers[1 - self.turn].deadline(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ticks_a_period_apart_the_first_at_once() {
        let start = Instant::now();
        let mut ticker = Ticker::new(Duration::from_millis(2));
        let mut at = Vec::new();
        for _ in 0..6 {
            ticker.tick().await;
            at.push((Instant::now() - start).as_millis());
        }
        assert_eq!(at, [0, 2, 4, 6, 8, 10]);
    }

    /// What keeps the driver asleep: when a timer is re-armed, the other one is due a
    /// period sooner, so the re-armed deadline is never the wheel's earliest.
    #[tokio::test(start_paused = true)]
    async fn the_re_armed_timer_is_due_a_period_after_the_other() {
        let period = Duration::from_millis(2);
        let mut ticker = Ticker::new(period);
        for _ in 0..5 {
            let fired = ticker.tick().await;
            assert_eq!(ticker.deadlines(), [fired + period, fired + 2 * period]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_consumer_gets_no_burst() {
        let start = Instant::now();
        let mut ticker = Ticker::new(Duration::from_millis(2));
        ticker.tick().await;
        ticker.tick().await;
        // Busy for 7 ms: the ticks due at 4 and 6 ms are missed.
        tokio::time::sleep(Duration::from_millis(7)).await;
        let mut at = Vec::new();
        for _ in 0..3 {
            ticker.tick().await;
            at.push((Instant::now() - start).as_millis());
        }
        // The late tick at once (9 ms), then a period apart from it.
        assert_eq!(at, [9, 11, 13]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_tick_not_waited_out_is_still_the_next() {
        let start = Instant::now();
        let mut ticker = Ticker::new(Duration::from_millis(5));
        ticker.tick().await;
        tokio::select! {
            _ = ticker.tick() => panic!("not due yet"),
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
        ticker.tick().await;
        assert_eq!((Instant::now() - start).as_millis(), 5);
    }
}
