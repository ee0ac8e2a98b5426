//! Figures of the process itself in `/metrics`: memory, open file descriptors (sockets
//! included), open uplink connections and uptime, so that a months-long run can be
//! watched for leaks from the same scrape as the uplinks.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use tagwire_pipeline::{Family, Hub};

/// Collects the process figures at each scrape.
#[derive(Debug)]
pub struct ProcessCollector {
    hub: Arc<Hub>,
    started: Instant,
}

impl ProcessCollector {
    /// Figures of this process, with the uplinks of `hub` and uptime counted from `started`.
    pub fn new(hub: Arc<Hub>, started: Instant) -> Self {
        Self { hub, started }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let connected: u64 = self
            .hub
            .uplinks()
            .iter()
            .map(|u| u.metrics().get(Family::LinkState))
            .sum();
        let mut gauges = vec![
            (
                "process_uptime_seconds",
                "seconds since the daemon started",
                self.started.elapsed().as_secs() as i64,
            ),
            (
                "uplink_connections_open",
                "uplinks connected to their server now",
                connected as i64,
            ),
        ];
        // Linux only; elsewhere these figures are left out rather than reported as 0.
        if let Some(rss) = resident_bytes() {
            gauges.push((
                "process_resident_memory_bytes",
                "resident memory (RSS) of the process",
                rss as i64,
            ));
        }
        if let Some(fds) = open_fds() {
            gauges.push((
                "process_open_fds",
                "open file descriptors, sockets included",
                fds as i64,
            ));
        }
        for (name, help, value) in gauges {
            encoder
                .encode_descriptor(name, help, None, MetricType::Gauge)?
                .encode_gauge(&value)?;
        }
        Ok(())
    }
}

/// RSS from the `VmRSS` line of `/proc/self/status` (in kB there, whatever the page size).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The entries of `/proc/self/fd`.
fn open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}
