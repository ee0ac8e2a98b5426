//! The metrics of an uplink, named as Neuron names them, defined once.
//!
//! [`Family`] lists every metric family; it is the only place a metric is declared,
//! and [`UplinkMetrics::sample`] is the only way to read one. Every renderer (the
//! OpenMetrics exposition of [`registry`], the daemon's nodes JSON and final-counts
//! line) iterates [`Family::ALL`], so a metric cannot exist without being shown by all
//! of them.
//!
//! Values are plain atomics: producers, the uplink task and the HTTP API all read and
//! write them without locks; readers take each value as it is at that moment. The
//! [`prometheus_client`] registry reads them at scrape time through a collector.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tagwire_queue::{MessageKind, MessageQueue};

use crate::{Hub, Uplink};

/// Why a message was dropped; the `reason` label of `dropped_msgs_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The queue was full and its policy dropped the oldest message.
    QueueFullOldest,
    /// The queue was full and its policy dropped the new message.
    QueueFullNewest,
    /// The message alone was larger than the queue's byte limit.
    TooLarge,
    /// The daemon stopped with the message still queued and no disk cache to keep it.
    Shutdown,
    /// The disk cache's files were deleted or replaced while the message was held only
    /// in them.
    CacheLost,
}

impl DropReason {
    /// Every reason, in the order metrics list them.
    pub const ALL: [DropReason; 5] = [
        DropReason::QueueFullOldest,
        DropReason::QueueFullNewest,
        DropReason::TooLarge,
        DropReason::Shutdown,
        DropReason::CacheLost,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFullOldest => "queue_full_oldest",
            DropReason::QueueFullNewest => "queue_full_newest",
            DropReason::TooLarge => "too_large",
            DropReason::Shutdown => "shutdown",
            DropReason::CacheLost => "cache_lost",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Neuron's running states (`running_state` metric).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RunningState {
    /// Created, not started.
    Init = 1,
    /// Configured, not yet running.
    Ready = 2,
    /// Running.
    Running = 3,
    /// Stopped.
    Stopped = 4,
}

/// Whether a family only goes up or goes both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (exposed with the `_total` suffix).
    Counter,
    /// A level.
    Gauge,
}

/// Every metric family of an uplink, in exposition order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// 1 when connected.
    LinkState,
    /// Neuron's running state code.
    RunningState,
    /// Messages confirmed by the server (or written, without confirmation).
    SendMsgs,
    /// Payload bytes of those messages.
    SendBytes,
    /// Failed sends: writes that failed and connections lost with messages in flight.
    SendMsgErrors,
    /// Data frames received from the server.
    RecvMsgs,
    /// Messages written again after a reconnect (possible duplicates at the server).
    ResentMsgs,
    /// Successful connections after the first one.
    Reconnects,
    /// Messages accepted into the queue.
    QueuedMsgs,
    /// Snapshots refused because the queue was full and the policy is `refuse`.
    RefusedMsgs,
    /// Payload bytes of the messages written (resends included), before compression.
    WrittenMsgBytes,
    /// The same messages' bytes as they went on the wire: after permessage-deflate when
    /// negotiated, else equal to [`WrittenMsgBytes`](Family::WrittenMsgBytes).
    WrittenWireBytes,
    /// Messages held, waiting or unconfirmed (read from the queue).
    CachedMsgs,
    /// Payload bytes held (read from the queue).
    CachedBytes,
    /// Messages dropped, by [`DropReason`].
    DroppedMsgs,
    /// Driver-state messages (`upload_drv_state`), by what became of them: never in
    /// the data families above.
    DriverStateMsgs,
}

impl Family {
    /// Every family, in the order renderers list them.
    pub const ALL: [Family; 16] = [
        Family::LinkState,
        Family::RunningState,
        Family::SendMsgs,
        Family::SendBytes,
        Family::SendMsgErrors,
        Family::RecvMsgs,
        Family::ResentMsgs,
        Family::Reconnects,
        Family::QueuedMsgs,
        Family::RefusedMsgs,
        Family::WrittenMsgBytes,
        Family::WrittenWireBytes,
        Family::CachedMsgs,
        Family::CachedBytes,
        Family::DroppedMsgs,
        Family::DriverStateMsgs,
    ];

    /// The name of its samples (with `_total` for counters), as Neuron names them.
    pub fn name(self) -> &'static str {
        match self {
            Family::LinkState => "link_state",
            Family::RunningState => "running_state",
            Family::SendMsgs => "send_msgs_total",
            Family::SendBytes => "send_bytes_total",
            Family::SendMsgErrors => "send_msg_errors_total",
            Family::RecvMsgs => "recv_msgs_total",
            Family::ResentMsgs => "resent_msgs_total",
            Family::Reconnects => "reconnects_total",
            Family::QueuedMsgs => "queued_msgs_total",
            Family::RefusedMsgs => "refused_msgs_total",
            Family::WrittenMsgBytes => "written_msg_bytes_total",
            Family::WrittenWireBytes => "written_wire_bytes_total",
            Family::CachedMsgs => "cached_msgs",
            Family::CachedBytes => "cached_bytes",
            Family::DroppedMsgs => "dropped_msgs_total",
            Family::DriverStateMsgs => "drv_state_msgs_total",
        }
    }

    /// Counter or gauge.
    pub fn kind(self) -> Kind {
        match self {
            Family::LinkState | Family::RunningState | Family::CachedMsgs | Family::CachedBytes => {
                Kind::Gauge
            }
            _ => Kind::Counter,
        }
    }

    /// One line of help for the exposition.
    pub fn help(self) -> &'static str {
        match self {
            Family::LinkState => "1 when connected",
            Family::RunningState => "Neuron's codes: 1 init, 2 ready, 3 running, 4 stopped",
            Family::SendMsgs => "messages delivered (confirmed by the server)",
            Family::SendBytes => "payload bytes delivered",
            Family::SendMsgErrors => "failed sends and connections lost with messages in flight",
            Family::RecvMsgs => "data frames received from the server",
            Family::ResentMsgs => "messages sent again after a reconnect (possible duplicates)",
            Family::Reconnects => "connections made after the first",
            Family::QueuedMsgs => "messages accepted into the queue",
            Family::RefusedMsgs => "snapshots refused: queue full with policy refuse",
            Family::WrittenMsgBytes => "payload bytes written, resends included, before compression",
            Family::WrittenWireBytes => {
                "the same payload bytes as sent on the wire (after permessage-deflate when negotiated)"
            }
            Family::CachedMsgs => "messages held, waiting or unconfirmed",
            Family::CachedBytes => "payload bytes held",
            Family::DroppedMsgs => "messages dropped, by reason",
            Family::DriverStateMsgs => {
                "driver-state messages (upload_drv_state) queued, delivered and dropped; never counted as data"
            }
        }
    }

    /// The field of the final-counts log line: the short names it always had for the
    /// ones that tell what became of the data, the metric name for the others.
    pub fn final_count_field(self) -> &'static str {
        match self {
            Family::QueuedMsgs => "queued",
            Family::SendMsgs => "delivered",
            Family::ResentMsgs => "resent",
            Family::RefusedMsgs => "refused",
            Family::DroppedMsgs => "dropped",
            Family::DriverStateMsgs => "drv_states",
            other => other.name(),
        }
    }
}

/// The value(s) of one family for one uplink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sample {
    /// One value.
    One(u64),
    /// One value per value of a label, in a fixed order: `dropped_msgs_total` by
    /// `reason` ([`DropReason::ALL`]), `drv_state_msgs_total` by `event`.
    Labelled {
        /// The label's name.
        label: &'static str,
        /// Each label value with its value.
        values: Vec<(&'static str, u64)>,
    },
}

impl Sample {
    /// The sum of the values (the value itself for [`Sample::One`]).
    pub fn total(&self) -> u64 {
        match self {
            Sample::One(v) => *v,
            Sample::Labelled { values, .. } => values.iter().map(|(_, v)| v).sum(),
        }
    }
}

/// The live values of one uplink (the queue's occupancy is read from the queue).
#[derive(Debug)]
pub struct UplinkMetrics {
    /// Indexed by `Family as usize`; the cached, dropped and driver-state slots are unused.
    values: [AtomicU64; Family::ALL.len()],
    dropped: [AtomicU64; DropReason::ALL.len()],
    /// The subprotocol the server selected on the current (or last) connection.
    subprotocol: Mutex<Option<String>>,
}

impl Default for UplinkMetrics {
    fn default() -> Self {
        let metrics = Self {
            values: Default::default(),
            dropped: Default::default(),
            subprotocol: Mutex::new(None),
        };
        metrics.set_running_state(RunningState::Init);
        metrics
    }
}

impl UplinkMetrics {
    /// Adds `n` to a counter family. Gauges and the families counted elsewhere
    /// (dropped, cached, driver states) are not plain counters: a debug build panics.
    pub fn add(&self, family: Family, n: u64) {
        debug_assert!(
            family.kind() == Kind::Counter
                && !matches!(family, Family::DroppedMsgs | Family::DriverStateMsgs),
            "{family:?} is not a plain counter"
        );
        self.values[family as usize].fetch_add(n, Relaxed);
    }

    /// The current value of a family held here (not the cached ones, read from the queue,
    /// nor the dropped ones, see [`dropped`](Self::dropped)).
    pub fn get(&self, family: Family) -> u64 {
        self.values[family as usize].load(Relaxed)
    }

    /// Records `n` dropped messages.
    pub fn add_dropped(&self, reason: DropReason, n: u64) {
        self.dropped[reason.index()].fetch_add(n, Relaxed);
    }

    /// Dropped messages so far for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Relaxed)
    }

    /// Sets `link_state` (true: connected).
    pub fn set_connected(&self, up: bool) {
        self.values[Family::LinkState as usize].store(u64::from(up), Relaxed);
    }

    /// True while connected.
    pub fn connected(&self) -> bool {
        self.get(Family::LinkState) == 1
    }

    /// Records the subprotocol the server selected when the connection opened.
    pub fn set_subprotocol(&self, protocol: Option<&str>) {
        *self.subprotocol.lock().unwrap_or_else(|e| e.into_inner()) = protocol.map(str::to_owned);
    }

    /// The subprotocol the server selected on the current or last connection.
    pub fn subprotocol(&self) -> Option<String> {
        self.subprotocol
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets `running_state`.
    pub fn set_running_state(&self, state: RunningState) {
        self.values[Family::RunningState as usize].store(state as u64, Relaxed);
    }

    /// The current `running_state` code.
    pub fn running_state(&self) -> u8 {
        self.get(Family::RunningState) as u8
    }

    /// The value(s) of `family`; the cached and driver-state families are read from
    /// the uplink's `queue` (cached counts data messages only).
    pub fn sample(&self, family: Family, queue: &MessageQueue) -> Sample {
        match family {
            Family::CachedMsgs => Sample::One(queue.counts(MessageKind::Data).held),
            Family::CachedBytes => Sample::One(queue.counts(MessageKind::Data).held_bytes),
            Family::DroppedMsgs => Sample::Labelled {
                label: "reason",
                values: DropReason::ALL
                    .iter()
                    .map(|r| (r.as_str(), self.dropped(*r)))
                    .collect(),
            },
            Family::DriverStateMsgs => {
                let c = queue.counts(MessageKind::DriverState);
                Sample::Labelled {
                    label: "event",
                    values: vec![
                        ("queued", c.queued),
                        ("delivered", c.confirmed),
                        ("dropped", c.dropped + c.rejected),
                    ],
                }
            }
            other => Sample::One(self.get(other)),
        }
    }
}

/// A registry holding every uplink's metrics, read at each scrape. Encode it with
/// [`prometheus_client::encoding::text::encode`] (OpenMetrics text).
pub fn registry(uplinks: Vec<Arc<Uplink>>) -> Registry {
    hub_registry(Arc::new(Hub::new(uplinks)))
}

/// Like [`registry`], over the uplinks `hub` has at each scrape (they change at a reload).
pub fn hub_registry(hub: Arc<Hub>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(UplinksCollector { hub }));
    registry
}

#[derive(Debug)]
struct UplinksCollector {
    hub: Arc<Hub>,
}

impl Collector for UplinksCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in Family::ALL {
            let (base, kind) = match family.kind() {
                // The encoder appends `_total` to counters.
                Kind::Counter => (
                    family
                        .name()
                        .strip_suffix("_total")
                        .unwrap_or(family.name()),
                    MetricType::Counter,
                ),
                Kind::Gauge => (family.name(), MetricType::Gauge),
            };
            let mut metric = encoder.encode_descriptor(base, family.help(), None, kind)?;
            for uplink in self.hub.uplinks().iter() {
                let node = Escaped(&uplink.config().name);
                let sample = uplink.metrics().sample(family, uplink.queue());
                let series: Vec<(Vec<(&str, Escaped)>, u64)> = match sample {
                    Sample::One(v) => vec![(vec![("node", node)], v)],
                    Sample::Labelled { label, values } => values
                        .iter()
                        .map(|(l, v)| (vec![("node", node), (label, Escaped(l))], *v))
                        .collect(),
                };
                for (labels, value) in series {
                    let mut one = metric.encode_family(&labels)?;
                    match family.kind() {
                        Kind::Counter => one
                            .encode_counter::<prometheus_client::encoding::NoLabelSet, u64, u64>(
                                &value, None,
                            )?,
                        Kind::Gauge => one.encode_gauge(&(value as i64))?,
                    }
                }
            }
        }
        Ok(())
    }
}

/// A label value escaped as the exposition format requires (prometheus-client writes
/// label values as they are, and node names come from the configuration).
#[derive(Clone, Copy, Debug)]
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}
