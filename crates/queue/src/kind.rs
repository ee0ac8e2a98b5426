//! What a queued message is ([`MessageKind`]), how the kind is kept in the disk cache,
//! and the per-kind tallies ([`KindCounts`]).
//!
//! Data and driver-state messages share one queue so that they reach the server in the
//! order they were made, but a consumer's counters must never mix them: every count the
//! queue hands back (`confirm`, a push's `dropped_oldest`, `close_for_shutdown`) is of
//! data messages, and [`MessageQueue::counts`](crate::MessageQueue::counts) gives the
//! tallies of each kind.

/// What a message carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// A group snapshot's data: what every data counter counts.
    #[default]
    Data,
    /// A driver-state report (Neuron's `upload_drv_state`). Worthless once stale, so a
    /// full queue drops it before any data (see [`MessageQueue::push_kind`](crate::MessageQueue::push_kind)).
    DriverState,
}

impl MessageKind {
    /// Every kind.
    pub const ALL: [MessageKind; 2] = [MessageKind::Data, MessageKind::DriverState];

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What the queue did with the messages of one kind since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    /// Messages accepted, plus those taken back from the disk cache at open.
    pub queued: u64,
    /// Messages confirmed (they left the queue delivered).
    pub confirmed: u64,
    /// Messages that left the queue dropped: by a full queue's policy, or lost at
    /// shutdown without a disk cache to keep them.
    pub dropped: u64,
    /// Pushes not accepted (full queue with `drop_newest` or `refuse`, or too large):
    /// never queued, so not in `queued`.
    pub rejected: u64,
    /// Messages held now, waiting or in flight.
    pub held: u64,
    /// Their payload bytes.
    pub held_bytes: u64,
}

/// Bit 63 of a record's timestamp field marks a driver-state record (see the
/// versioning rules in `disk_log/format.rs`). Real timestamps are far below it
/// (2^63 ms is some 292 million years).
const DRIVER_STATE_FLAG: u64 = 1 << 63;

/// The value written in a disk record's timestamp field for a message of `kind`. A data
/// timestamp that has bit 63 set (never a real clock) is saturated below it, so that it
/// cannot read back as a driver state; the payload, which carries the JSON timestamp,
/// is unchanged.
pub(crate) fn to_disk(timestamp_ms: u64, kind: MessageKind) -> u64 {
    let ts = timestamp_ms.min(DRIVER_STATE_FLAG - 1);
    match kind {
        MessageKind::Data => ts,
        MessageKind::DriverState => ts | DRIVER_STATE_FLAG,
    }
}

/// The timestamp and kind of a record's timestamp field (the inverse of [`to_disk`]).
pub(crate) fn from_disk(field: u64) -> (u64, MessageKind) {
    if field & DRIVER_STATE_FLAG == 0 {
        (field, MessageKind::Data)
    } else {
        (field & !DRIVER_STATE_FLAG, MessageKind::DriverState)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_round_trips_through_the_timestamp_field() {
        for ts in [0, 1, 1_650_006_388_943, DRIVER_STATE_FLAG - 1] {
            for kind in MessageKind::ALL {
                assert_eq!(from_disk(to_disk(ts, kind)), (ts, kind));
            }
        }
        // Version-1 data records (no flag) read back as data, unchanged.
        assert_eq!(
            from_disk(1_650_006_388_943),
            (1_650_006_388_943, MessageKind::Data)
        );
        // An absurd data timestamp cannot turn into a driver state.
        assert_eq!(
            from_disk(to_disk(u64::MAX, MessageKind::Data)),
            (DRIVER_STATE_FLAG - 1, MessageKind::Data)
        );
    }
}
