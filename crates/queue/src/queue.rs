//! The per-uplink message queue: bounded, ordered, optionally backed by a disk cache,
//! and honest about every drop.
//!
//! A message enters with [`MessageQueue::push`] and leaves only when the uplink says it
//! was *confirmed* ([`MessageQueue::confirm`]). Between the two it is either *waiting*
//! (never written to the current connection) or *in flight* (written, not yet confirmed
//! by a Pong). A reconnect moves every in-flight message back to waiting
//! ([`MessageQueue::rewind`]) so it is sent again, oldest first, with its original bytes
//! and timestamp.
//!
//! **With a disk cache** ([`DiskCacheConfig`]) every message is appended to a
//! [`DiskLog`] before `push` returns, and removed from it when confirmed or dropped: the
//! log mirrors the queue, so a crash (even `kill -9`) loses nothing that was accepted,
//! and the next start sends it. Memory then holds only as many payloads as
//! `max_bytes` allows; the others are read back from disk when their turn comes. When
//! the disk is full or fails, the queue falls back to memory, says so in the log, and
//! goes back to the disk when it can.
//!
//! The queue is shared between producers (sources, the ingest API) and one uplink task:
//! a `std::sync::Mutex` around plain data plus a [`tokio::sync::Notify`]. Without a disk
//! cache every critical section is a few pointer moves. With one, `push`, `take_batch`,
//! `confirm` and `close_for_shutdown` do blocking file I/O: call them from blocking
//! contexts (the uplink does, with `block_in_place`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::disk_log::{DiskLog, DiskLogError, DiskLogOptions, Recovery, SyncPolicy};

/// One encoded message, ready to be written as a WebSocket data frame.
#[derive(Clone, Debug)]
pub struct Message {
    /// Position in this uplink's stream, starting at 1; carried in confirmation pings.
    pub seq: u64,
    /// The encoded JSON. Shared, so a resend never re-encodes and writing never copies.
    pub payload: Bytes,
    /// The snapshot's timestamp (ms since the Unix epoch), kept through the disk cache.
    pub timestamp_ms: u64,
}

/// What to do when a new message does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Drop the oldest queued messages to make room (Neuron's behaviour, and the default).
    #[default]
    DropOldest,
    /// Drop the new message and keep what is queued.
    DropNewest,
    /// Refuse the new message so the source can push back (the ingest API answers 503).
    Refuse,
}

impl std::str::FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "drop_oldest" => Ok(Self::DropOldest),
            "drop_newest" => Ok(Self::DropNewest),
            "refuse" => Ok(Self::Refuse),
            other => Err(format!(
                "unknown policy {other:?}: use \"drop_oldest\", \"drop_newest\" or \"refuse\""
            )),
        }
    }
}

/// The disk cache behind a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskCacheConfig {
    /// This uplink's own directory (one log per directory).
    pub dir: PathBuf,
    /// Most bytes on disk.
    pub max_bytes: u64,
    /// When appends reach the device.
    pub sync: SyncPolicy,
}

/// Limits of one queue.
#[derive(Clone, Debug)]
pub struct QueueLimits {
    /// Most payload bytes held in memory (with a disk cache: payloads kept in memory,
    /// the rest is read back from disk when needed).
    pub max_bytes: usize,
    /// Most messages held at once.
    pub max_messages: usize,
    /// What happens when a message does not fit.
    pub policy: FullPolicy,
    /// The disk cache, if any.
    pub disk: Option<DiskCacheConfig>,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_messages: 100_000,
            policy: FullPolicy::DropOldest,
            disk: None,
        }
    }
}

/// The answer to [`MessageQueue::push`].
#[derive(Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued; `dropped_oldest` older messages were dropped to make room.
    Queued {
        /// How many old messages were dropped (policy [`FullPolicy::DropOldest`]).
        dropped_oldest: u64,
    },
    /// Not queued: dropped because the queue was full (policy [`FullPolicy::DropNewest`]).
    DroppedNewest,
    /// Not queued: refused because the queue was full (policy [`FullPolicy::Refuse`]).
    Refused,
    /// Not queued: the message alone is larger than the whole queue may hold.
    TooLarge,
}

/// One queued message; its payload may live only on disk.
#[derive(Debug)]
struct Entry {
    seq: u64,
    timestamp_ms: u64,
    len: usize,
    /// `None` when the payload was left on disk to save memory.
    payload: Option<Bytes>,
    /// Whether this message is in the disk log (entries and log records are in the same
    /// order, so the log's head is always the first entry with `on_disk`).
    on_disk: bool,
}

#[derive(Debug)]
struct Disk {
    log: DiskLog,
    /// Since when the disk is full or failing: new messages stay in memory only, and the
    /// disk is tried again every [`DISK_RETRY`].
    degraded_since: Option<Instant>,
}

impl Disk {
    /// Whether the next message should go to disk: always, unless the disk failed less
    /// than [`DISK_RETRY`] ago (trying every message would cost a failing write each).
    fn usable(&self) -> bool {
        self.degraded_since
            .is_none_or(|t| t.elapsed() >= DISK_RETRY)
    }
}

/// How long a full or failing disk is left alone before it is tried again (short in
/// tests, so that the retry can be seen).
const DISK_RETRY: Duration = if cfg!(test) {
    Duration::from_millis(100)
} else {
    Duration::from_secs(5)
};

#[derive(Debug, Default)]
struct State {
    /// Oldest first. `entries[..in_flight]` are written but unconfirmed.
    entries: VecDeque<Entry>,
    in_flight: usize,
    /// Payload bytes of the in-flight messages.
    in_flight_bytes: usize,
    /// On-disk entries among the in-flight ones: where reading from disk resumes.
    in_flight_on_disk: u64,
    /// Payload bytes held, in memory or on disk.
    bytes: usize,
    /// Payload bytes held in memory.
    mem_bytes: usize,
    next_seq: u64,
    disk: Option<Disk>,
}

/// A bounded FIFO of encoded messages with confirm-to-remove semantics. See the module docs.
#[derive(Debug)]
pub struct MessageQueue {
    limits: QueueLimits,
    state: Mutex<State>,
    /// Woken when a message is pushed.
    ready: Notify,
}

impl MessageQueue {
    /// An empty, memory-only queue with these limits (any `disk` setting is ignored:
    /// use [`open`](Self::open) for a disk cache).
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            limits: QueueLimits {
                disk: None,
                ..limits
            },
            state: Mutex::new(State {
                next_seq: 1,
                ..State::default()
            }),
            ready: Notify::new(),
        }
    }

    /// A queue with these limits; with a disk cache, opens it and takes back every
    /// message a previous run left there (blocking I/O). Returns what recovery found.
    pub fn open(limits: QueueLimits) -> Result<(Self, Option<Recovery>), DiskLogError> {
        let Some(disk) = limits.disk.clone() else {
            return Ok((Self::new(limits), None));
        };
        let mut options = DiskLogOptions::new(&disk.dir, disk.max_bytes);
        options.sync = disk.sync;
        let (mut log, recovery) = DiskLog::open(options)?;
        let mut st = State {
            next_seq: 1,
            ..State::default()
        };
        // Index what is on disk; keep payloads in memory while the budget allows.
        let mut skip = 0;
        while skip < log.len() {
            let records = log.read(skip, 1024)?;
            skip += records.len() as u64;
            for r in records {
                let len = r.payload.len();
                let keep = st.mem_bytes + len <= limits.max_bytes;
                if keep {
                    st.mem_bytes += len;
                }
                st.bytes += len;
                st.entries.push_back(Entry {
                    seq: st.next_seq,
                    timestamp_ms: r.timestamp_ms,
                    len,
                    payload: keep.then(|| Bytes::from(r.payload)),
                    on_disk: true,
                });
                st.next_seq += 1;
            }
        }
        st.disk = Some(Disk {
            log,
            degraded_since: None,
        });
        let queue = Self {
            limits,
            state: Mutex::new(st),
            ready: Notify::new(),
        };
        Ok((queue, Some(recovery)))
    }

    /// The limits this queue was made with.
    pub fn limits(&self) -> &QueueLimits {
        &self.limits
    }

    /// True when a disk cache backs this queue (its calls then do blocking I/O).
    pub fn has_disk(&self) -> bool {
        self.limits.disk.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a bug in this module; the
        // data stays consistent between statements, so keep going rather than cascade.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `payload`, applying the full-queue policy.
    pub fn push(&self, payload: Bytes, timestamp_ms: u64) -> PushOutcome {
        let size = payload.len();
        let mut st = self.lock();
        let mut dropped_oldest = 0;
        if st.entries.len() >= self.limits.max_messages {
            match self.limits.policy {
                FullPolicy::DropNewest => return PushOutcome::DroppedNewest,
                FullPolicy::Refuse => return PushOutcome::Refused,
                FullPolicy::DropOldest => {
                    if !drop_one_oldest(&mut st, true) {
                        return PushOutcome::TooLarge;
                    }
                    dropped_oldest += 1;
                }
            }
        }
        let mut on_disk = false;
        if st.disk.as_ref().is_some_and(Disk::usable) {
            loop {
                let disk = st.disk.as_mut().expect("checked above");
                match disk.log.append(timestamp_ms, &payload) {
                    Ok(()) => {
                        if disk.degraded_since.take().is_some() {
                            info!(dir = %disk.log.dir().display(), "disk cache: writing to disk again");
                        }
                        on_disk = true;
                        break;
                    }
                    Err(DiskLogError::Full) => match self.limits.policy {
                        FullPolicy::DropNewest => return PushOutcome::DroppedNewest,
                        FullPolicy::Refuse => return PushOutcome::Refused,
                        FullPolicy::DropOldest => {
                            // Only removing an on-disk message frees disk space, and the
                            // log removes from its front: drop the oldest on-disk entry.
                            if !drop_one_oldest(&mut st, false) {
                                return PushOutcome::TooLarge;
                            }
                            dropped_oldest += 1;
                        }
                    },
                    Err(DiskLogError::TooLarge { .. }) => return PushOutcome::TooLarge,
                    Err(e) => {
                        let dir = disk.log.dir().display().to_string();
                        // Said once per episode; a retry that fails again stays quiet.
                        let first = disk.degraded_since.replace(Instant::now()).is_none();
                        if first && e.is_disk_full() {
                            warn!(%dir, "disk cache: the disk is full; keeping new messages in memory until space frees up");
                        } else if first {
                            error!(%dir, error = %e, "disk cache: cannot write; keeping new messages in memory");
                        }
                        break;
                    }
                }
            }
        }
        if on_disk {
            // Keep the payload in memory only while the memory budget allows; it can be
            // read back from disk when its turn comes.
            let keep = st.mem_bytes + size <= self.limits.max_bytes;
            self.insert(&mut st, payload, timestamp_ms, keep, true);
        } else {
            if size > self.limits.max_bytes {
                return PushOutcome::TooLarge;
            }
            while st.mem_bytes + size > self.limits.max_bytes {
                if spill_one_payload(&mut st) {
                    continue;
                }
                match self.limits.policy {
                    FullPolicy::DropNewest => return PushOutcome::DroppedNewest,
                    FullPolicy::Refuse => return PushOutcome::Refused,
                    FullPolicy::DropOldest => {
                        if !drop_oldest_in_memory(&mut st) {
                            return PushOutcome::TooLarge;
                        }
                        dropped_oldest += 1;
                    }
                }
            }
            self.insert(&mut st, payload, timestamp_ms, true, false);
        }
        drop(st);
        self.ready.notify_one();
        PushOutcome::Queued { dropped_oldest }
    }

    fn insert(&self, st: &mut State, payload: Bytes, timestamp_ms: u64, keep: bool, on_disk: bool) {
        let len = payload.len();
        st.bytes += len;
        if keep {
            st.mem_bytes += len;
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.entries.push_back(Entry {
            seq,
            timestamp_ms,
            len,
            payload: keep.then_some(payload),
            on_disk,
        });
    }

    /// Takes up to `max_messages` / about `max_bytes` waiting messages and marks them in
    /// flight. Returns them with their payloads (shared, or read back from disk). In-flight
    /// bytes are capped at half the queue's memory limit (one message is always allowed
    /// when none is in flight), so that a server that reads slowly leaves room for new
    /// messages without dropping ones already on the wire.
    pub fn take_batch(&self, max_messages: usize, max_bytes: usize) -> Vec<Message> {
        let mut st = self.lock();
        let st = &mut *st;
        let in_flight_cap = self.limits.max_bytes / 2;
        let mut batch = Vec::new();
        let mut bytes = 0;
        // Records read from disk for this batch, and the log position of the first one.
        let mut disk_pos = st.in_flight_on_disk;
        let mut read_ahead: VecDeque<Bytes> = VecDeque::new();
        while batch.len() < max_messages {
            let Some(entry) = st.entries.get(st.in_flight) else {
                break;
            };
            let size = entry.len;
            if !batch.is_empty() && bytes + size > max_bytes {
                break;
            }
            if st.in_flight > 0 && st.in_flight_bytes + size > in_flight_cap {
                break;
            }
            let payload = match (&entry.payload, entry.on_disk) {
                (Some(p), true) => {
                    read_ahead.pop_front();
                    p.clone()
                }
                (Some(p), false) => p.clone(),
                (None, _) => {
                    if read_ahead.is_empty() {
                        let disk = st.disk.as_mut().expect("payload-less entries are on disk");
                        match disk.log.read(disk_pos, max_messages - batch.len()) {
                            Ok(records) => {
                                read_ahead = records
                                    .into_iter()
                                    .map(|r| Bytes::from(r.payload))
                                    .collect()
                            }
                            Err(e) => {
                                error!(dir = %disk.log.dir().display(), error = %e,
                                    "disk cache: cannot read queued messages back; will retry");
                                break;
                            }
                        }
                    }
                    match read_ahead.pop_front() {
                        Some(p) => p,
                        None => break,
                    }
                }
            };
            if entry.on_disk {
                disk_pos += 1;
                st.in_flight_on_disk += 1;
            }
            batch.push(Message {
                seq: entry.seq,
                payload,
                timestamp_ms: entry.timestamp_ms,
            });
            bytes += size;
            st.in_flight += 1;
            st.in_flight_bytes += size;
        }
        batch
    }

    /// Removes every in-flight message with `seq <= up_to`: the server has read them.
    /// Returns how many messages and bytes were confirmed.
    pub fn confirm(&self, up_to: u64) -> (u64, u64) {
        let mut st = self.lock();
        let (mut count, mut bytes, mut from_disk) = (0u64, 0u64, 0u64);
        while st.in_flight > 0 {
            match st.entries.front() {
                Some(e) if e.seq <= up_to => {
                    let e = st.entries.pop_front().expect("front exists");
                    forget(&mut st, &e);
                    st.in_flight -= 1;
                    st.in_flight_bytes -= e.len;
                    if e.on_disk {
                        st.in_flight_on_disk -= 1;
                        from_disk += 1;
                    }
                    count += 1;
                    bytes += e.len as u64;
                }
                _ => break,
            }
        }
        pop_disk(&mut st, from_disk);
        (count, bytes)
    }

    /// Moves every in-flight message back to waiting (after a connection was lost) and
    /// returns how many will be sent again.
    pub fn rewind(&self) -> usize {
        let mut st = self.lock();
        st.in_flight_bytes = 0;
        st.in_flight_on_disk = 0;
        std::mem::take(&mut st.in_flight)
    }

    /// Sequence number of the newest in-flight message, if any.
    pub fn last_in_flight_seq(&self) -> Option<u64> {
        let st = self.lock();
        st.in_flight
            .checked_sub(1)
            .and_then(|i| st.entries.get(i))
            .map(|m| m.seq)
    }

    /// Number of in-flight (written, unconfirmed) messages.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Number of messages waiting to be written.
    pub fn waiting(&self) -> usize {
        let st = self.lock();
        st.entries.len() - st.in_flight
    }

    /// `(messages, bytes)` held, waiting and in flight, in memory and on disk.
    pub fn occupancy(&self) -> (usize, usize) {
        let st = self.lock();
        (st.entries.len(), st.bytes)
    }

    /// Payload bytes held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.lock().mem_bytes
    }

    /// Forces appended messages to the device (the `Interval` sync policy's timer).
    pub fn sync(&self) {
        let mut st = self.lock();
        if let Some(disk) = st.disk.as_mut() {
            if let Err(e) = disk.log.sync() {
                warn!(dir = %disk.log.dir().display(), error = %e, "disk cache: sync failed");
            }
        }
    }

    /// At shutdown: keeps on disk what can be kept (messages held only in memory are
    /// written to the disk cache now) and returns how many messages are lost, that is
    /// held in memory with no disk cache to keep them. The queue is empty afterwards.
    pub fn close_for_shutdown(&self) -> usize {
        let mut st = self.lock();
        let st = &mut *st;
        let entries = std::mem::take(&mut st.entries);
        st.in_flight = 0;
        st.in_flight_bytes = 0;
        st.in_flight_on_disk = 0;
        st.bytes = 0;
        st.mem_bytes = 0;
        let Some(disk) = st.disk.as_mut() else {
            return entries.len();
        };
        let mut lost = 0;
        let mut persisted = 0;
        for e in entries.iter().filter(|e| !e.on_disk) {
            let payload = e
                .payload
                .as_ref()
                .expect("memory-only entries have payloads");
            if disk.log.append(e.timestamp_ms, payload).is_ok() {
                persisted += 1;
            } else {
                lost += 1;
            }
        }
        if let Err(e) = disk.log.sync() {
            warn!(dir = %disk.log.dir().display(), error = %e, "disk cache: final sync failed");
        }
        if persisted > 0 {
            info!(dir = %disk.log.dir().display(), messages = persisted,
                "disk cache: messages held in memory were written to disk for the next start");
        }
        lost
    }

    /// Resolves when a message was pushed since the last call. Cancel-safe.
    pub async fn wait_ready(&self) {
        self.ready.notified().await;
    }
}

/// Updates the byte counts for an entry that leaves the queue.
fn forget(st: &mut State, e: &Entry) {
    st.bytes -= e.len;
    if e.payload.is_some() {
        st.mem_bytes -= e.len;
    }
}

/// Removes `n` records from the disk log's front (they left the queue).
fn pop_disk(st: &mut State, n: u64) {
    if n == 0 {
        return;
    }
    if let Some(disk) = st.disk.as_mut() {
        if let Err(e) = disk.log.pop_front(n) {
            // The records stay on disk and would be sent again after a restart: a
            // duplicate, never a loss.
            error!(dir = %disk.log.dir().display(), error = %e, "disk cache: cannot remove delivered messages");
        }
    }
}

/// Drops the oldest entry to make room. Prefers a waiting one (an in-flight message is
/// on the wire and will probably arrive) when `prefer_waiting`; with a disk log only the
/// front can be removed, so disk pressure drops from the front. Returns false when the
/// queue is empty.
fn drop_one_oldest(st: &mut State, prefer_waiting: bool) -> bool {
    let index =
        if prefer_waiting && st.in_flight < st.entries.len() && !st.entries[st.in_flight].on_disk {
            st.in_flight
        } else {
            match st
                .entries
                .iter()
                .position(|e| e.on_disk || st.disk.is_none())
            {
                Some(i) => i,
                None => return false,
            }
        };
    remove_at(st, index)
}

/// Drops the oldest waiting memory-only entry (or, failing that, the oldest memory-only
/// one). Entries on disk cannot leave from the middle of the log, and their payloads
/// were already spilled by the caller.
fn drop_oldest_in_memory(st: &mut State) -> bool {
    let waiting = (st.in_flight..st.entries.len()).find(|&i| !st.entries[i].on_disk);
    let any = || {
        (0..st.entries.len()).find(|&i| !st.entries[i].on_disk && st.entries[i].payload.is_some())
    };
    match waiting.or_else(any) {
        Some(i) => remove_at(st, i),
        None => {
            // Only on-disk entries hold memory: drop from the front like the disk does.
            match st.entries.iter().position(|e| e.payload.is_some()) {
                Some(_) => remove_at(st, 0),
                None => false,
            }
        }
    }
}

fn remove_at(st: &mut State, index: usize) -> bool {
    let Some(e) = st.entries.remove(index) else {
        return false;
    };
    forget(st, &e);
    if index < st.in_flight {
        st.in_flight -= 1;
        st.in_flight_bytes -= e.len;
        if e.on_disk {
            st.in_flight_on_disk -= 1;
        }
    }
    if e.on_disk {
        // Only the front on-disk entry is ever removed, matching the log's front.
        pop_disk(st, 1);
    }
    true
}

/// Frees memory without losing anything: leaves the payload of the newest waiting
/// on-disk entry on disk only. Returns false when there is none.
fn spill_one_payload(st: &mut State) -> bool {
    let in_flight = st.in_flight;
    let Some(e) = st
        .entries
        .iter_mut()
        .skip(in_flight)
        .rev()
        .find(|e| e.on_disk && e.payload.is_some())
    else {
        return false;
    };
    e.payload = None;
    let len = e.len;
    st.mem_bytes -= len;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(max_bytes: usize, max_messages: usize, policy: FullPolicy) -> MessageQueue {
        MessageQueue::new(QueueLimits {
            max_bytes,
            max_messages,
            policy,
            disk: None,
        })
    }

    fn push(q: &MessageQueue, s: &'static str) -> PushOutcome {
        q.push(Bytes::from_static(s.as_bytes()), 0)
    }

    fn seqs(batch: &[Message]) -> Vec<u64> {
        batch.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn messages_leave_only_when_confirmed_and_rewind_resends_in_order() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        for s in ["a", "b", "c"] {
            push(&q, s);
        }
        assert_eq!(seqs(&q.take_batch(2, 1000)), [1, 2]);
        assert_eq!(q.last_in_flight_seq(), Some(2));
        assert_eq!(q.confirm(1), (1, 1));
        assert_eq!(q.rewind(), 1);
        assert_eq!(seqs(&q.take_batch(10, 1000)), [2, 3]);
        assert_eq!(q.confirm(3), (2, 2));
        assert_eq!(q.occupancy(), (0, 0));
    }

    #[test]
    fn confirm_ignores_messages_not_yet_written() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        push(&q, "a");
        push(&q, "b");
        q.take_batch(1, 1000);
        // A stale or forged pong for seq 2 must not remove message 2, which was never sent.
        assert_eq!(q.confirm(2), (1, 1));
        assert_eq!(q.waiting(), 1);
    }

    #[test]
    fn drop_oldest_drops_the_oldest_unsent_messages_first() {
        let q = q(4, 100, FullPolicy::DropOldest);
        push(&q, "a");
        push(&q, "b");
        q.take_batch(1, 100); // "a" in flight: on the wire, probably arriving
        push(&q, "c");
        push(&q, "d");
        assert_eq!(push(&q, "ee"), PushOutcome::Queued { dropped_oldest: 2 });
        assert_eq!(q.in_flight(), 1, "the in-flight message stays");
        assert_eq!(q.confirm(1), (1, 1));
        assert_eq!(
            seqs(&q.take_batch(10, 100)),
            [4],
            "b and c were dropped (and e waits: 2 bytes may be in flight)"
        );
        q.confirm(4);
        assert_eq!(q.take_batch(10, 100)[0].seq, 5);
    }

    #[test]
    fn drop_oldest_reaches_in_flight_messages_only_when_nothing_else_is_left() {
        let q = q(4, 100, FullPolicy::DropOldest);
        push(&q, "aa");
        q.take_batch(1, 100);
        assert_eq!(push(&q, "bbb"), PushOutcome::Queued { dropped_oldest: 1 });
        assert_eq!((q.in_flight(), q.waiting()), (0, 1));
    }

    #[test]
    fn in_flight_bytes_are_capped_at_half_the_queue() {
        let q = q(8, 100, FullPolicy::DropOldest);
        for s in ["aa", "bb", "cc", "dd"] {
            push(&q, s);
        }
        assert_eq!(
            q.take_batch(10, 100).len(),
            2,
            "4 of 8 bytes may be in flight"
        );
        assert!(q.take_batch(10, 100).is_empty());
        q.confirm(1);
        assert_eq!(q.take_batch(10, 100).len(), 1);
    }

    #[test]
    fn drop_newest_and_refuse_keep_what_is_queued() {
        for (policy, want) in [
            (FullPolicy::DropNewest, PushOutcome::DroppedNewest),
            (FullPolicy::Refuse, PushOutcome::Refused),
        ] {
            let q = q(1000, 2, policy);
            push(&q, "a");
            push(&q, "b");
            assert_eq!(push(&q, "c"), want);
            assert_eq!(q.occupancy(), (2, 2));
        }
    }

    #[test]
    fn a_message_larger_than_the_queue_is_rejected_alone() {
        let q = q(2, 10, FullPolicy::DropOldest);
        push(&q, "a");
        assert_eq!(push(&q, "abc"), PushOutcome::TooLarge);
        assert_eq!(q.occupancy(), (1, 1));
    }

    #[test]
    fn batches_respect_the_byte_budget_but_always_take_one() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        push(&q, "aaaa");
        push(&q, "bbbb");
        assert_eq!(q.take_batch(10, 2).len(), 1);
        assert_eq!(q.take_batch(10, 4).len(), 1);
    }

    fn disk_queue(
        dir: &std::path::Path,
        mem: usize,
        disk: u64,
        policy: FullPolicy,
    ) -> MessageQueue {
        let (q, _) = MessageQueue::open(QueueLimits {
            max_bytes: mem,
            max_messages: 1000,
            policy,
            disk: Some(DiskCacheConfig {
                dir: dir.to_path_buf(),
                max_bytes: disk,
                sync: SyncPolicy::Never,
            }),
        })
        .unwrap();
        q
    }

    fn payloads(batch: &[Message]) -> Vec<String> {
        batch
            .iter()
            .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn with_a_disk_cache_memory_holds_only_its_budget_and_the_rest_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let q = disk_queue(dir.path(), 8, 1 << 20, FullPolicy::DropOldest);
        for s in ["aa", "bb", "cc", "dd", "ee", "ff"] {
            assert_eq!(push(&q, s), PushOutcome::Queued { dropped_oldest: 0 });
        }
        assert_eq!(
            q.memory_bytes(),
            8,
            "four payloads in memory, two on disk only"
        );
        assert_eq!(q.occupancy(), (6, 12));
        let b = q.take_batch(10, 100);
        assert_eq!(
            payloads(&b),
            ["aa", "bb"],
            "in flight capped at half of memory"
        );
        q.confirm(2);
        assert_eq!(payloads(&q.take_batch(10, 100)), ["cc", "dd"]);
        q.confirm(4);
        assert_eq!(
            payloads(&q.take_batch(10, 100)),
            ["ee", "ff"],
            "read back from disk"
        );
        q.rewind();
        assert_eq!(
            payloads(&q.take_batch(1, 100)),
            ["ee"],
            "read back again after a rewind"
        );
        q.confirm(5);
        assert_eq!(payloads(&q.take_batch(10, 100)), ["ff"]);
    }

    #[test]
    fn a_disk_cache_survives_reopening_with_order_and_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest);
            for (i, s) in ["one", "two", "three"].into_iter().enumerate() {
                q.push(Bytes::from_static(s.as_bytes()), 100 + i as u64);
            }
            q.take_batch(1, 100);
            q.confirm(1); // "one" was delivered
                          // No close_for_shutdown: as if the process was killed.
        }
        let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest);
        let b = q.take_batch(10, 100);
        assert_eq!(payloads(&b), ["two", "three"]);
        assert_eq!(
            b.iter().map(|m| m.timestamp_ms).collect::<Vec<_>>(),
            [101, 102]
        );
    }

    #[test]
    fn a_full_disk_cache_drops_the_oldest_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let record = crate::disk_log::RECORD_HEADER_LEN as u64 + 2;
        let q = disk_queue(dir.path(), 100, 3 * record, FullPolicy::DropOldest);
        for s in ["aa", "bb", "cc"] {
            push(&q, s);
        }
        assert_eq!(push(&q, "dd"), PushOutcome::Queued { dropped_oldest: 1 });
        assert_eq!(payloads(&q.take_batch(10, 100)), ["bb", "cc", "dd"]);
        let dir2 = tempfile::tempdir().unwrap();
        let q2 = disk_queue(dir2.path(), 100, 3 * record, FullPolicy::Refuse);
        for s in ["aa", "bb", "cc"] {
            push(&q2, s);
        }
        assert_eq!(push(&q2, "dd"), PushOutcome::Refused);
    }

    /// A small tmpfs fills up (needs root to mount; skipped otherwise): new messages stay
    /// in memory, nothing is lost, and once space frees up the disk is used again.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_falls_back_to_memory_and_the_disk_is_used_again_when_space_frees() {
        use std::process::Command;
        let base = tempfile::tempdir().unwrap();
        let mount = base.path().join("small");
        std::fs::create_dir(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&mount)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a small tmpfs (needs root)");
            return;
        }
        struct Unmount(std::path::PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
            }
        }
        let _unmount = Unmount(mount.clone());
        // Leave about 8 KiB free.
        let filler = mount.join("filler");
        std::fs::write(&filler, vec![0u8; 56 * 1024]).unwrap();
        let q = disk_queue(&mount.join("q"), 1 << 20, 1 << 20, FullPolicy::DropOldest);
        let msg = |i: usize| Bytes::from(format!("{i:04}").repeat(250)); // 1000 bytes
        for i in 0..20 {
            assert_eq!(
                q.push(msg(i), i as u64),
                PushOutcome::Queued { dropped_oldest: 0 }
            );
        }
        let on_disk_before = q.lock().entries.iter().filter(|e| e.on_disk).count();
        assert!(
            (1..20).contains(&on_disk_before),
            "{on_disk_before} on disk: the disk filled up"
        );
        std::fs::remove_file(&filler).unwrap();
        std::thread::sleep(DISK_RETRY + Duration::from_millis(50));
        q.push(msg(20), 20);
        assert!(
            q.lock().entries.back().unwrap().on_disk,
            "the disk is used again"
        );
        // Everything is there, in order, from memory and disk alike.
        let mut all = Vec::new();
        loop {
            let batch = q.take_batch(100, 1 << 20);
            let Some(last) = batch.last().map(|m| m.seq) else {
                break;
            };
            all.extend(batch.iter().map(|m| m.payload[..4].to_vec()));
            q.confirm(last);
        }
        let want: Vec<Vec<u8>> = (0..21).map(|i| format!("{i:04}").into_bytes()).collect();
        assert_eq!(all, want);
    }

    #[test]
    fn shutdown_writes_memory_only_messages_to_disk_and_without_disk_reports_them_lost() {
        let q = q(100, 100, FullPolicy::DropOldest);
        push(&q, "a");
        push(&q, "b");
        assert_eq!(q.close_for_shutdown(), 2);
        let dir = tempfile::tempdir().unwrap();
        let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest);
        push(&q, "a");
        assert_eq!(q.close_for_shutdown(), 0);
        drop(q);
        let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest);
        assert_eq!(payloads(&q.take_batch(10, 100)), ["a"]);
    }
}
