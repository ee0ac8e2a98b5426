//! # tagwire-pipeline
//!
//! Sources, subscriptions and uplinks: group snapshots in, encoded messages out to
//! WebSocket servers, with nothing lost silently.
//!
//! ```text
//! source (simulator | ingest | your code) --Snapshot--> Hub::publish
//!     -> for each Uplink whose subscriptions match: encode once -> MessageQueue (tagwire-queue)
//!     -> the uplink's task: connect (backoff) -> write batches -> Ping(seq) -> Pong confirms
//! ```
//!
//! A message leaves an uplink's queue only when the server confirmed it: RFC 6455
//! servers answer a Ping after reading every frame sent before it, so a Pong echoing
//! the sequence number of the last message written confirms everything up to it.
//! A lost connection rewinds the queue and the unconfirmed messages go out again.
//!
//! ## Example
//!
//! ```
//! use tagwire_pipeline::{Hub, Uplink, UplinkConfig};
//! use tagwire_pipeline::simulator::{GroupGenerator, SimGroup};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let url = "ws://127.0.0.1:9/ingest".parse().unwrap();
//! let uplink = Uplink::open(UplinkConfig::new("cloud", url)).await.unwrap();
//! let hub = Hub::new(vec![uplink.clone()]);
//!
//! // Without a running uplink task nothing is sent, but the message waits in the queue.
//! let mut sim = GroupGenerator::new("sim", SimGroup::default_group());
//! let enqueued = hub.publish(&sim.next_snapshot(1_650_006_388_943)).await;
//! assert_eq!(enqueued.queued, 1);
//! assert_eq!(uplink.queue().waiting(), 1);
//! # });
//! ```
#![deny(missing_docs)]

pub mod backoff;
pub mod driver_state;
mod failure_log;
mod human;
/// The process-wide log rate limiter (lives in `tagwire-queue`, the lowest crate that logs).
pub use tagwire_queue::log_limit;
mod link_error;
pub mod metrics;
pub mod simulator;
pub mod subscription;
pub mod ticker;
mod uplink;
pub mod write_latency;

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tagwire_model::Snapshot;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use driver_state::{LinkState, SouthNode};
pub use human::human_duration;
pub use link_error::LinkError;
pub use metrics::{DropReason, Family, Kind, RunningState, Sample, UplinkMetrics};
pub use subscription::{Subscription, Subscriptions};
pub use tagwire_queue::{
    DiskCacheConfig, DiskLogError, FullPolicy, KindCounts, MessageKind, MessageQueue, QueueLimits,
    Recovery, SyncPolicy,
};
pub use uplink::{Enqueue, Uplink, UplinkConfig};

/// What [`Hub::publish`] did with one snapshot: how many uplinks *queued* it (delivery
/// happens later, and is counted in each uplink's metrics).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Enqueued {
    /// Uplinks that queued it.
    pub queued: usize,
    /// Uplinks that dropped it (or dropped older messages for it) under their policy.
    pub dropped: usize,
    /// Names of the uplinks that refused it because their queue is full.
    pub refused: Vec<String>,
}

/// Fans snapshots out to every uplink whose subscriptions match, and knows the south
/// nodes that run (for driver-state messages and the API).
#[derive(Debug, Default)]
pub struct Hub {
    /// Replaced as a whole at a reload; a publish works on the list it started with.
    uplinks: RwLock<Arc<Vec<Arc<Uplink>>>>,
    /// The configured south nodes, replaced as a whole at a reload.
    south: RwLock<Arc<Vec<SouthNode>>>,
    /// Held shared by every publish for its whole run, so that [`Hub::settle`] can wait
    /// until no publish still works on a list that was replaced.
    publishing: tokio::sync::RwLock<()>,
}

impl Hub {
    /// A hub over these uplinks.
    pub fn new(uplinks: Vec<Arc<Uplink>>) -> Self {
        Self {
            uplinks: RwLock::new(Arc::new(uplinks)),
            south: RwLock::default(),
            publishing: tokio::sync::RwLock::new(()),
        }
    }

    /// The south nodes now, in configuration order.
    pub fn south(&self) -> Arc<Vec<SouthNode>> {
        Arc::clone(&self.south.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the south nodes (at start and at a reload).
    pub fn set_south(&self, south: Vec<SouthNode>) {
        *self.south.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(south);
    }

    /// The uplinks now, in configuration order.
    pub fn uplinks(&self) -> Arc<Vec<Arc<Uplink>>> {
        Arc::clone(&self.uplinks.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the uplinks (a reload): later publishes go to these. Publishes already
    /// running finish on the old list; [`settle`](Self::settle) waits for them.
    pub fn set_uplinks(&self, uplinks: Vec<Arc<Uplink>>) {
        *self.uplinks.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(uplinks);
    }

    /// Waits until every publish that started before the last
    /// [`set_uplinks`](Self::set_uplinks) has finished. After it, no snapshot can still
    /// reach an uplink left out of the list: stop removed uplinks only then, or a
    /// message queued after their drain would be left behind.
    pub async fn settle(&self) {
        drop(self.publishing.write().await);
    }

    /// Encodes and queues `snapshot` for every matching uplink. Runs in the caller's
    /// task; the queues move disk I/O off it themselves.
    pub async fn publish(&self, snapshot: &Snapshot) -> Enqueued {
        let mut enqueued = self.publish_many(std::slice::from_ref(snapshot)).await;
        enqueued.pop().unwrap_or_default()
    }

    /// Encodes and queues every snapshot of `snapshots` for every matching uplink, as
    /// many [`publish`](Self::publish)es would, but hands each uplink's queue the lot
    /// at once ([`Uplink::enqueue_many`]): with a disk cache, one write per uplink for
    /// all of them instead of one write, and one wait for it, per snapshot. For a
    /// source with several snapshots ready at the same moment (the simulator's groups
    /// on one timer). One answer per snapshot, in order.
    pub async fn publish_many(&self, snapshots: &[Snapshot]) -> Vec<Enqueued> {
        let _publishing = self.publishing.read().await;
        let mut enqueued = vec![Enqueued::default(); snapshots.len()];
        for uplink in self.uplinks().iter() {
            let answers = uplink.enqueue_many(snapshots).await;
            for (e, answer) in enqueued.iter_mut().zip(answers) {
                match answer {
                    Enqueue::Queued => e.queued += 1,
                    Enqueue::Skipped => {}
                    Enqueue::Dropped(_) => e.dropped += 1,
                    Enqueue::Refused => e.refused.push(uplink.config().name.clone()),
                }
            }
        }
        enqueued
    }

    /// Publishes `snapshots` in order until an uplink refuses one (policy `refuse`),
    /// as the ingest API needs: returns how many were queued for every matching
    /// uplink, and the uplinks that refused the next one (empty when all were
    /// queued). Nothing after the refused snapshot is queued by any uplink, so a
    /// client that sends the rest again duplicates nothing; with two or more
    /// `refuse` uplinks, one that refuses sooner than another leaves the other with
    /// the snapshots in between (sent again: at least once, not exactly once).
    ///
    /// One batch per uplink ([`Uplink::enqueue_prefix`]): the `refuse` uplinks first,
    /// each given only what those before it took; then the others, given exactly the
    /// accepted prefix.
    pub async fn publish_prefix(&self, snapshots: &[Snapshot]) -> (usize, Vec<String>) {
        let _publishing = self.publishing.read().await;
        let uplinks = self.uplinks();
        let mut accepted = snapshots.len();
        let mut refused: Vec<String> = Vec::new();
        for uplink in uplinks.iter().filter(|u| u.may_refuse()) {
            let answers = uplink.enqueue_prefix(&snapshots[..accepted]).await;
            if let Some(at) = answers.iter().position(|a| *a == Enqueue::Refused) {
                if at < accepted {
                    accepted = at;
                    refused.clear();
                }
                refused.push(uplink.config().name.clone());
            }
        }
        for uplink in uplinks.iter().filter(|u| !u.may_refuse()) {
            // Dropped snapshots are the uplink's policy, counted in its metrics.
            let _ = uplink.enqueue_many(&snapshots[..accepted]).await;
        }
        (accepted, refused)
    }

    /// Starts every uplink's connection task.
    pub fn spawn_uplinks(&self, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        self.uplinks()
            .iter()
            .map(|u| u.spawn(shutdown.clone()))
            .collect()
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs a simulated south node: each group reports on its timer to `hub` until
/// `shutdown` becomes true. Groups with the same interval share one task and one timer
/// (a timer per group made every tick wake tokio's driver through its eventfd: 0.7
/// syscalls per report with ten 2 ms groups). Returns one task per distinct interval.
pub fn spawn_simulator(
    node: &str,
    groups: Vec<simulator::SimGroup>,
    hub: Arc<Hub>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut by_interval: Vec<(Duration, Vec<simulator::GroupGenerator>)> = Vec::new();
    for group in groups {
        let period = group.interval.max(Duration::from_millis(1));
        let generator = simulator::GroupGenerator::new(node, group);
        match by_interval.iter_mut().find(|(p, _)| *p == period) {
            Some((_, generators)) => generators.push(generator),
            None => by_interval.push((period, vec![generator])),
        }
    }
    by_interval
        .into_iter()
        .map(|(period, generators)| {
            let hub = Arc::clone(&hub);
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                let mut reporter = simulator::Reporter::new(generators);
                // A gateway that was busy must not burst stale reports afterwards
                // (the ticker delays), and a tick must not wake tokio's driver.
                let mut tick = ticker::Ticker::new(period);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = shutdown.changed() => break,
                    }
                    if *shutdown.borrow() {
                        break;
                    }
                    // Every group of this tick first, then one publish for all: a
                    // disk cache writes them with one write instead of waiting for
                    // a write per group (a sequential producer gathers nothing).
                    // Each group's snapshot is the reporter's own, updated in place
                    // (no allocation per report, only what changed is written).
                    let answers = hub.publish_many(reporter.report(now_ms())).await;
                    for (generator, enqueued) in reporter.generators().iter().zip(&answers) {
                        // Per uplink: a server down for hours refuses every report.
                        for uplink in &enqueued.refused {
                            log_limit::global().warn(
                                uplink,
                                "report refused",
                                &format!(
                                    "report refused: queue full with policy \"refuse\" uplink={uplink} group={}",
                                    generator.group().name
                                ),
                            );
                        }
                    }
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `settle` returns only once every publish that was running has finished (a
    /// publish holds the shared lock for its whole run; one is simulated here).
    #[tokio::test]
    async fn settle_waits_for_the_publishes_in_progress() {
        let hub = Arc::new(Hub::default());
        let publishing = hub.publishing.read().await;
        hub.set_uplinks(Vec::new());
        let settled = tokio::spawn({
            let hub = Arc::clone(&hub);
            async move { hub.settle().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!settled.is_finished(), "a publish is still running");
        drop(publishing);
        settled.await.unwrap();
        // With nothing running it returns at once, and publishing goes on after it.
        hub.settle().await;
        let mut sim = simulator::GroupGenerator::new("sim", simulator::SimGroup::default_group());
        assert_eq!(
            hub.publish(&sim.next_snapshot(1)).await,
            Enqueued::default()
        );
    }
}
