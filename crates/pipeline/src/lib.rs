//! # tagwire-pipeline
//!
//! Sources, subscriptions and uplinks: group snapshots in, encoded messages out to
//! WebSocket servers, with nothing lost silently.
//!
//! ```text
//! source (simulator | ingest | your code) --Snapshot--> Hub::publish
//!     -> for each Uplink whose subscriptions match: encode once -> MessageQueue
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
//! use tagwire_pipeline::{Hub, Offer, Uplink, UplinkConfig};
//! use tagwire_pipeline::simulator::{GroupGenerator, SimGroup};
//!
//! let url = "ws://127.0.0.1:9/ingest".parse().unwrap();
//! let uplink = Uplink::new(UplinkConfig::new("cloud", url)).unwrap();
//! let hub = Hub::new(vec![uplink.clone()]);
//!
//! // Without a running uplink task nothing is sent, but the message waits in the queue.
//! let mut sim = GroupGenerator::new("sim", SimGroup::default_group());
//! let delivery = hub.publish(&sim.next_snapshot(1_650_006_388_943));
//! assert_eq!(delivery.queued, 1);
//! assert_eq!(uplink.queue().waiting(), 1);
//! ```
#![deny(missing_docs)]

pub mod backoff;
pub mod disk_log;
pub mod metrics;
pub mod queue;
pub mod simulator;
pub mod subscription;
mod uplink;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tagwire_model::Snapshot;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use metrics::{DropReason, RunningState, UplinkMetrics};
pub use queue::{DiskCacheConfig, FullPolicy, QueueLimits};
pub use subscription::{Subscription, Subscriptions};
pub use uplink::{Offer, Uplink, UplinkConfig};

/// What [`Hub::publish`] did with one snapshot.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Uplinks that queued it.
    pub queued: usize,
    /// Uplinks that dropped it (or dropped older messages for it) under their policy.
    pub dropped: usize,
    /// Names of the uplinks that refused it because their queue is full.
    pub refused: Vec<String>,
}

/// Fans snapshots out to every uplink whose subscriptions match.
#[derive(Debug, Default)]
pub struct Hub {
    uplinks: Vec<Arc<Uplink>>,
}

impl Hub {
    /// A hub over these uplinks.
    pub fn new(uplinks: Vec<Arc<Uplink>>) -> Self {
        Self { uplinks }
    }

    /// The uplinks, in configuration order.
    pub fn uplinks(&self) -> &[Arc<Uplink>] {
        &self.uplinks
    }

    /// Encodes and queues `snapshot` for every matching uplink.
    pub fn publish(&self, snapshot: &Snapshot) -> Delivery {
        let mut delivery = Delivery::default();
        for uplink in &self.uplinks {
            match uplink.offer(snapshot) {
                Offer::Queued => delivery.queued += 1,
                Offer::Skipped => {}
                Offer::Dropped(_) => delivery.dropped += 1,
                Offer::Refused => delivery.refused.push(uplink.config().name.clone()),
            }
        }
        delivery
    }

    /// True when an uplink has a disk cache: publishing then does blocking I/O.
    pub fn has_disk(&self) -> bool {
        self.uplinks.iter().any(|u| u.queue().has_disk())
    }

    /// Starts every uplink's connection task.
    pub fn spawn_uplinks(&self, shutdown: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        self.uplinks
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

/// Runs a simulated south node: each group reports on its own timer to `hub` until
/// `shutdown` becomes true. Returns one task per group.
pub fn spawn_simulator(
    node: &str,
    groups: Vec<simulator::SimGroup>,
    hub: Arc<Hub>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    groups
        .into_iter()
        .map(|group| {
            let mut generator = simulator::GroupGenerator::new(node, group);
            let hub = Arc::clone(&hub);
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                let period = generator.group().interval.max(Duration::from_millis(1));
                let mut tick = tokio::time::interval(period);
                // A gateway that was busy must not burst stale reports afterwards.
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = shutdown.changed() => break,
                    }
                    if *shutdown.borrow() {
                        break;
                    }
                    let snapshot = generator.next_snapshot(now_ms());
                    let delivery = if hub.has_disk() {
                        tokio::task::block_in_place(|| hub.publish(&snapshot))
                    } else {
                        hub.publish(&snapshot)
                    };
                    if !delivery.refused.is_empty() {
                        tracing::warn!(group = %generator.group().name, uplinks = ?delivery.refused,
                            "report refused: queue full with policy \"refuse\"");
                    }
                }
            })
        })
        .collect()
}
