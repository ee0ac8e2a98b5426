//! How long messages wait between their report and their write to the socket: a
//! fixed-bucket histogram, cheap enough to record every message (one atomic add).
//!
//! The start is the snapshot's timestamp (milliseconds since the epoch, as the source
//! stamped it), so each figure is an upper bound: up to 1 ms more than the true wait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Width of a bucket in microseconds.
const BUCKET_US: u64 = 250;
/// Buckets of `BUCKET_US` (0 to 50 ms); the last one also counts everything longer.
const BUCKETS: usize = 200;

/// Report-to-write latencies of one uplink's messages.
#[derive(Debug)]
pub struct WriteLatency {
    buckets: [AtomicU64; BUCKETS],
}

impl Default for WriteLatency {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Percentiles of [`WriteLatency`], in milliseconds (bucket upper bounds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencySummary {
    /// Messages recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The largest bucket used (50 ms means "50 ms or more").
    pub max_ms: f64,
}

impl WriteLatency {
    /// Records one message reported at `timestamp_ms` and written at `now_us`.
    pub fn record(&self, timestamp_ms: u64, now_us: u64) {
        let waited = now_us.saturating_sub(timestamp_ms.saturating_mul(1000));
        let bucket = ((waited / BUCKET_US) as usize).min(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Microseconds since the Unix epoch, now (the clock the timestamps use).
    pub fn now_us() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }

    /// The percentiles so far; `None` before the first message.
    pub fn summary(&self) -> Option<LatencySummary> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        summarize(&counts)
    }
}

/// Percentiles of bucket counts (each bucket's upper bound stands for its messages).
fn summarize(counts: &[u64]) -> Option<LatencySummary> {
    let count: u64 = counts.iter().sum();
    if count == 0 {
        return None;
    }
    let upper_ms = |i: usize| ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
    let percentile = |p: f64| {
        let rank = ((count as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_ms(i);
            }
        }
        upper_ms(counts.len() - 1)
    };
    let max = counts.iter().rposition(|&c| c > 0).unwrap_or(0);
    Some(LatencySummary {
        count,
        p50_ms: percentile(0.5),
        p99_ms: percentile(0.99),
        max_ms: upper_ms(max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_bucket_upper_bounds() {
        let latency = WriteLatency::default();
        assert_eq!(latency.summary(), None);
        let start_ms = 1_000_000;
        // 98 messages written 0.1 ms after their report, one after 3 ms, one after 2 s.
        for _ in 0..98 {
            latency.record(start_ms, start_ms * 1000 + 100);
        }
        latency.record(start_ms, start_ms * 1000 + 3_000);
        latency.record(start_ms, start_ms * 1000 + 2_000_000);
        let s = latency.summary().unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 0.25);
        assert_eq!(s.p99_ms, 3.25, "the 99th of 100 is the 3 ms one");
        assert_eq!(s.max_ms, 50.0, "the overflow bucket");
        // A clock that went back counts as no wait, not as a huge one.
        latency.record(start_ms, start_ms * 1000 - 5_000);
        assert_eq!(latency.summary().unwrap().count, 101);
    }
}
