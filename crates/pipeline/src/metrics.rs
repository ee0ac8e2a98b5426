//! Counters and gauges of one uplink, named as Neuron names them.
//!
//! Plain atomics: producers, the uplink task and the HTTP API all read and write them
//! without locks; readers take each value as it is at that moment.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

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
}

impl DropReason {
    /// Every reason, in the order metrics list them.
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFullOldest,
        DropReason::QueueFullNewest,
        DropReason::TooLarge,
        DropReason::Shutdown,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFullOldest => "queue_full_oldest",
            DropReason::QueueFullNewest => "queue_full_newest",
            DropReason::TooLarge => "too_large",
            DropReason::Shutdown => "shutdown",
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

/// The live counters of one uplink.
#[derive(Debug)]
pub struct UplinkMetrics {
    link_state: AtomicU8,
    running_state: AtomicU8,
    /// Messages the server confirmed (or wrote, without confirmation).
    pub send_msgs_total: AtomicU64,
    /// Payload bytes of those messages.
    pub send_bytes_total: AtomicU64,
    /// Failed sends: writes that failed and connections lost with messages in flight.
    pub send_msg_errors_total: AtomicU64,
    /// Data frames received from the server.
    pub recv_msgs_total: AtomicU64,
    /// Messages written again after a reconnect (possible duplicates at the server).
    pub resent_msgs_total: AtomicU64,
    /// Successful connections after the first one.
    pub reconnects_total: AtomicU64,
    /// Messages accepted into the queue.
    pub queued_msgs_total: AtomicU64,
    /// Snapshots refused because the queue was full and the policy is `refuse`.
    pub refused_msgs_total: AtomicU64,
    /// Payload bytes of the messages written (resends included), before compression.
    pub written_msg_bytes_total: AtomicU64,
    /// The same messages' payload bytes as they went on the wire: after
    /// permessage-deflate when negotiated, else equal to `written_msg_bytes_total`.
    pub written_wire_bytes_total: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
    /// The subprotocol the server selected on the current (or last) connection.
    subprotocol: Mutex<Option<String>>,
}

impl Default for UplinkMetrics {
    fn default() -> Self {
        Self {
            link_state: AtomicU8::new(0),
            running_state: AtomicU8::new(RunningState::Init as u8),
            send_msgs_total: AtomicU64::new(0),
            send_bytes_total: AtomicU64::new(0),
            send_msg_errors_total: AtomicU64::new(0),
            recv_msgs_total: AtomicU64::new(0),
            resent_msgs_total: AtomicU64::new(0),
            reconnects_total: AtomicU64::new(0),
            queued_msgs_total: AtomicU64::new(0),
            refused_msgs_total: AtomicU64::new(0),
            written_msg_bytes_total: AtomicU64::new(0),
            written_wire_bytes_total: AtomicU64::new(0),
            dropped: Default::default(),
            subprotocol: Mutex::new(None),
        }
    }
}

impl UplinkMetrics {
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
        self.link_state.store(up as u8, Relaxed);
    }

    /// True while connected.
    pub fn connected(&self) -> bool {
        self.link_state.load(Relaxed) == 1
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
        self.running_state.store(state as u8, Relaxed);
    }

    /// The current `running_state` code.
    pub fn running_state(&self) -> u8 {
        self.running_state.load(Relaxed)
    }
}
