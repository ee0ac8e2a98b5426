//! [`MessageQueue`]: the shared, thread-safe face of the queue, and the one place that
//! decides which thread runs an operation.
//!
//! A memory-only queue runs every operation inline, in the caller's task: a few pointer
//! moves under a lock that no one holds across I/O.
//!
//! With a disk cache, only what needs the disk leaves the caller's task:
//!
//! * **`push` is a group commit** on the queue's writer thread ([`crate::writer`]):
//!   pushes that arrive while a batch is being written are written together, with
//!   **one** `write` (and one `fdatasync` under `sync = "always"`) and one wake-up per
//!   batch; each push still returns only once its message is in the kernel's hands.
//!   When the writer is idle and the write is a plain `write` (no `fdatasync` due, no
//!   files to delete), the pushing task writes its batch itself instead
//!   ([`MessageQueue::write_inline`]): a sequential producer saves two cross-thread
//!   wake-ups per push, at the price of blocking its thread for that `write`.
//! * **`confirm` and `rewind` touch no disk**: a confirmation only moves the log's
//!   index; deleting the segment files it emptied and writing `head` is done by the
//!   writer's next batch or the timer ([`MessageQueue::sync`]), within about a second.
//! * **`take_batch`** runs inline while the messages it takes are in memory, and on
//!   tokio's blocking pool only to read messages held on disk alone.
//! * `open`, `sync` and `close_for_shutdown` run on the blocking pool
//!   (`spawn_blocking`, which every runtime flavour has). Nothing here uses
//!   `block_in_place`, which panics on a current-thread runtime. A panic in the disk
//!   code surfaces in the callers waiting for it.
//!
//! Inline operations take the same lock as the writer, so with a disk cache they may
//! wait for a batch being written; that wait is bounded by one write.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::core::Core;
use crate::disk_log::{DiskLogError, Recovery};
use crate::kind::{KindCounts, MessageKind};
use crate::limits::QueueLimits;
use crate::writer::Writer;

/// One encoded message, ready to be written as a WebSocket data frame.
#[derive(Clone, Debug)]
pub struct Message {
    /// Position in this uplink's stream, starting at 1; carried in confirmation pings.
    pub seq: u64,
    /// The encoded JSON. Shared, so a resend never re-encodes and writing never copies.
    pub payload: Bytes,
    /// The snapshot's timestamp (ms since the Unix epoch), kept through the disk cache.
    pub timestamp_ms: u64,
    /// What it carries, kept through the disk cache too.
    pub kind: MessageKind,
}

/// The answer to [`MessageQueue::push`]. `#[must_use]`: every outcome but `Queued`
/// means the message is not in the queue, which the caller must count or report.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a message not queued (dropped, refused, too large) is lost unless the caller acts on it"]
pub enum PushOutcome {
    /// Queued; `dropped_oldest` older messages were dropped to make room.
    Queued {
        /// How many old messages were dropped (policy [`FullPolicy::DropOldest`](crate::FullPolicy::DropOldest)).
        dropped_oldest: u64,
    },
    /// Not queued: dropped because the queue was full (policy [`FullPolicy::DropNewest`](crate::FullPolicy::DropNewest)).
    DroppedNewest,
    /// Not queued: refused because the queue was full (policy [`FullPolicy::Refuse`](crate::FullPolicy::Refuse)).
    Refused,
    /// Not queued: the message alone is larger than the whole queue may hold.
    TooLarge,
}

/// One message handed to [`Core::push_batch`](crate::core::Core).
#[derive(Debug)]
pub(crate) struct Push {
    pub payload: Bytes,
    pub timestamp_ms: u64,
    pub kind: MessageKind,
    /// Refused without being tried when the message before it in the batch was
    /// refused ([`MessageQueue::push_prefix`]; the writer keeps a submission's
    /// messages together and in order).
    pub follows: bool,
}

impl Push {
    /// A message pushed on its own.
    fn one(payload: Bytes, timestamp_ms: u64, kind: MessageKind) -> Self {
        Push {
            payload,
            timestamp_ms,
            kind,
            follows: false,
        }
    }

    /// Data messages of one submission; with `prefix`, each after the first follows
    /// the one before it.
    fn data(messages: Vec<(Bytes, u64)>, prefix: bool) -> Vec<Self> {
        messages
            .into_iter()
            .enumerate()
            .map(|(i, (payload, timestamp_ms))| Push {
                follows: prefix && i > 0,
                ..Push::one(payload, timestamp_ms, MessageKind::Data)
            })
            .collect()
    }
}

/// The queue's state and what wakes its consumer, shared with the disk writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
    /// Woken when a message is pushed.
    ready: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding this lock can only come from a bug in this crate; the
        // data stays consistent between statements, so keep going rather than cascade.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, if no one holds it now.
    fn try_lock(&self) -> Option<MutexGuard<'_, Core>> {
        match self.core.try_lock() {
            Ok(core) => Some(core),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Queues a batch of pushed messages (on the writer thread): does the disk work
    /// confirmations left, writes the batch with one write. Does not wake the consumer:
    /// the pushes do when they complete, in their own task (waking it from this thread
    /// as well cost one more cross-thread wake-up of the runtime per batch), and the
    /// writer does for a push no one waits for any more ([`wake_consumer`](Self::wake_consumer)).
    pub(crate) fn write_batch(&self, batch: Vec<Push>) -> Vec<PushOutcome> {
        let mut core = self.lock();
        if core.removals_pending() {
            core.flush_removals();
        }
        checked(&mut core, |core| core.push_batch(batch))
    }

    /// Wakes the consumer if any of `outcomes` queued a message.
    pub(crate) fn wake_consumer(&self, outcomes: &[PushOutcome]) {
        if outcomes
            .iter()
            .any(|o| matches!(o, PushOutcome::Queued { .. }))
        {
            self.ready.notify_one();
        }
    }
}

/// A bounded FIFO of encoded messages with confirm-to-remove semantics, shared between
/// producers and one consumer. See the [crate docs](crate).
#[derive(Debug)]
pub struct MessageQueue {
    shared: Arc<Shared>,
    limits: QueueLimits,
    /// The disk cache's writer thread (group commit); `None` for a memory-only queue.
    writer: Option<Writer>,
    /// Writes in the pushing task: how many in a row took longer than [`INLINE_MAX`],
    /// and until when pushes go to the writer thread even when it is idle.
    inline: Mutex<InlineState>,
}

/// See [`MessageQueue::write_inline`].
#[derive(Debug, Default)]
struct InlineState {
    slow_in_a_row: u32,
    off_until: Option<Instant>,
}

impl InlineState {
    /// Counts a write in the pushing task that took `took`, ended `now`.
    fn record(&mut self, took: Duration, now: Instant) {
        if took <= INLINE_MAX {
            self.slow_in_a_row = 0;
            return;
        }
        self.slow_in_a_row += 1;
        if self.slow_in_a_row >= INLINE_SLOW_STREAK {
            self.slow_in_a_row = 0;
            self.off_until = Some(now + INLINE_PAUSE);
        }
    }
}

/// A write in the pushing task slower than this counts as slow: that task blocks its
/// runtime thread while it writes.
const INLINE_MAX: Duration = Duration::from_millis(2);
/// Slow writes in a row that stop writes in the pushing task for [`INLINE_PAUSE`].
/// More than one: a single slow write is more often the thread being preempted on a
/// busy machine (measured: with one, a loaded 2-core machine paused them almost at
/// once) than the device throttling, which makes every write slow.
const INLINE_SLOW_STREAK: u32 = 3;
/// How long pushes go to the writer thread after a slow write in the pushing task.
const INLINE_PAUSE: Duration = Duration::from_secs(10);

impl MessageQueue {
    /// An empty, memory-only queue with these limits (any `disk` setting is ignored:
    /// use [`open`](Self::open) for a disk cache).
    pub fn new(limits: QueueLimits) -> Self {
        Self::from_core(Core::new(limits))
    }

    /// A queue with these limits; with a disk cache, opens it and takes back every
    /// message a previous run left there (on the blocking pool). Returns what recovery
    /// found.
    pub async fn open(limits: QueueLimits) -> Result<(Self, Option<Recovery>), DiskLogError> {
        if limits.disk.is_none() {
            return Ok((Self::new(limits), None));
        }
        let (core, recovery) = blocking(move || Core::open(limits)).await?;
        Ok((Self::from_core(core), recovery))
    }

    fn from_core(core: Core) -> Self {
        let limits = core.limits().clone();
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            ready: Notify::new(),
        });
        let writer = limits
            .disk
            .is_some()
            .then(|| Writer::new(Arc::downgrade(&shared)));
        Self {
            limits,
            shared,
            writer,
            inline: Mutex::default(),
        }
    }

    /// The limits this queue was made with.
    pub fn limits(&self) -> &QueueLimits {
        &self.limits
    }

    /// Runs `op` on the state: inline without a disk cache, on the blocking pool with
    /// one. Checks the counters afterwards in debug builds.
    async fn run<T: Send + 'static>(&self, op: impl FnOnce(&mut Core) -> T + Send + 'static) -> T {
        if self.limits.disk.is_none() {
            return self.inline(op);
        }
        let shared = Arc::clone(&self.shared);
        blocking(move || checked(&mut shared.lock(), op)).await
    }

    /// Runs `op` on the state in the caller's task (it must not touch the disk).
    fn inline<T>(&self, op: impl FnOnce(&mut Core) -> T) -> T {
        checked(&mut self.shared.lock(), op)
    }

    fn read<T>(&self, op: impl FnOnce(&Core) -> T) -> T {
        op(&self.shared.lock())
    }

    /// Queues `payload` as a data message, applying the full-queue policy. With a disk
    /// cache the message is in the disk log (handed to the kernel) when this returns
    /// `Queued`, unless the disk is full or failing, in which case it is kept in memory.
    ///
    /// If this future is dropped before it completes, the push may still happen.
    ///
    /// With a disk cache, pushes that arrive while the previous batch is being written
    /// are written together (group commit, see the [crate docs](crate)); each returns
    /// when its batch is in the kernel's hands (synced, under
    /// [`SyncPolicy::Always`](crate::SyncPolicy::Always)).
    pub async fn push(&self, payload: Bytes, timestamp_ms: u64) -> PushOutcome {
        self.push_kind(payload, timestamp_ms, MessageKind::Data)
            .await
    }

    /// Queues `payload` as a message of `kind` (see [`push`](Self::push)). When the
    /// queue is full, waiting driver-state messages are dropped first, oldest first (a
    /// stale state is worthless; an on-disk one can only leave from the log's front),
    /// whatever the kind pushed; a driver-state message never makes room by dropping
    /// data, it is rejected instead (`DroppedNewest`) whatever the policy.
    /// `Queued { dropped_oldest }` counts data messages only; [`counts`](Self::counts)
    /// tallies each kind.
    pub async fn push_kind(
        &self,
        payload: Bytes,
        timestamp_ms: u64,
        kind: MessageKind,
    ) -> PushOutcome {
        self.push_all(vec![Push::one(payload, timestamp_ms, kind)])
            .await
            .pop()
            .expect("one outcome per message")
    }

    /// Queues several data messages `(payload, timestamp_ms)` in order, as
    /// [`push`](Self::push) would one after the other, and returns their outcomes in
    /// order. With a disk cache they are handed to the writer together and written
    /// with one `write` (group commit without waiting for each write in turn: a source
    /// with several snapshots ready at one tick pays one write and one wake-up for all).
    /// Every message is in the disk log (or kept in memory, as for `push`) when this
    /// returns its `Queued`.
    ///
    /// If this future is dropped before it completes, the pushes may still happen.
    pub async fn push_many(&self, messages: Vec<(Bytes, u64)>) -> Vec<PushOutcome> {
        self.push_all(Push::data(messages, false)).await
    }

    /// [`push_many`](Self::push_many), but all or a prefix: the messages are queued in
    /// order until one is refused (policy [`FullPolicy::Refuse`](crate::FullPolicy::Refuse));
    /// that one and every one after it are answered `Refused` without being queued.
    /// Without it a smaller message after a refused one could still fit, and a client
    /// told "queued up to the refusal, send the rest again" would duplicate it (the
    /// ingest API's 503). Messages dropped or too large do not end the prefix.
    pub async fn push_prefix(&self, messages: Vec<(Bytes, u64)>) -> Vec<PushOutcome> {
        self.push_all(Push::data(messages, true)).await
    }

    /// The push of [`push_kind`](Self::push_kind), [`push_many`](Self::push_many) and
    /// [`push_prefix`](Self::push_prefix): inline without a disk cache, else handed to
    /// the writer in one go.
    ///
    /// With a disk cache, a batch is also written in the caller's task when that is
    /// cheap ([`write_inline`](Self::write_inline)): a source pushing one message after
    /// the other then pays no hand-off to the writer thread and back (a futex wake of
    /// the thread and an eventfd wake of the runtime per push).
    async fn push_all(&self, batch: Vec<Push>) -> Vec<PushOutcome> {
        let Some(writer) = &self.writer else {
            let outcomes = self.inline(move |core| core.push_batch(batch));
            self.shared.wake_consumer(&outcomes);
            return outcomes;
        };
        let batch = match self.write_inline(writer, batch) {
            Ok(outcomes) => {
                self.shared.wake_consumer(&outcomes);
                return outcomes;
            }
            Err(batch) => batch,
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        for receiver in writer.submit(batch) {
            match receiver.await {
                Ok(outcome) => outcomes.push(outcome),
                Err(_) => panic!("the disk cache writer failed before handling this message"),
            }
        }
        self.shared.wake_consumer(&outcomes);
        outcomes
    }

    /// Writes `batch` in the caller's task, or gives it back. Only when the writer
    /// thread is idle (nothing to wait for, nothing overtaken that matters: pushes in
    /// flight at once have no order), the queue's state is free (`try_lock`: a sync or
    /// a read-back on the blocking pool holds it during disk I/O), and the write is a
    /// plain `write` into the page cache (no `fdatasync` due, no files to delete:
    /// those stay on the thread). The price: the runtime thread blocks for that
    /// `write`, normally microseconds; when the device throttles writeback it can
    /// take milliseconds, so [`INLINE_SLOW_STREAK`] writes in a row over
    /// [`INLINE_MAX`] send every push to the thread for [`INLINE_PAUSE`].
    fn write_inline(
        &self,
        writer: &Writer,
        batch: Vec<Push>,
    ) -> Result<Vec<PushOutcome>, Vec<Push>> {
        let state = || self.inline.lock().unwrap_or_else(|e| e.into_inner());
        let paused = state().off_until.is_some_and(|t| Instant::now() < t);
        if paused || !writer.is_idle() {
            return Err(batch);
        }
        let Some(mut core) = self.shared.try_lock() else {
            return Err(batch);
        };
        if !core.cheap_to_write() {
            return Err(batch);
        }
        let started = Instant::now();
        let outcomes = checked(&mut core, |core| core.push_batch(batch));
        drop(core);
        state().record(started.elapsed(), Instant::now());
        Ok(outcomes)
    }

    /// Takes up to `max_messages` / about `max_bytes` waiting messages and marks them in
    /// flight. Returns them with their payloads (shared, or read back from disk). In-flight
    /// bytes are capped at half the queue's memory limit (one message is always allowed
    /// when none is in flight), so that a server that reads slowly leaves room for new
    /// messages without dropping ones already on the wire.
    ///
    /// Not cancel-safe: if this future is dropped, the messages it took stay in flight
    /// until the next [`rewind`](Self::rewind).
    ///
    /// Runs in the caller's task while the messages are in memory; reads messages held
    /// only on disk on the blocking pool.
    pub async fn take_batch(&self, max_messages: usize, max_bytes: usize) -> Vec<Message> {
        let from_memory = self.inline(|core| {
            let batch = core.take_batch(max_messages, max_bytes, false);
            (!batch.is_empty() || !core.next_waiting_on_disk_only()).then_some(batch)
        });
        match from_memory {
            Some(batch) => batch,
            None => {
                self.run(move |core| core.take_batch(max_messages, max_bytes, true))
                    .await
            }
        }
    }

    /// Removes every in-flight message with `seq <= up_to`: the server has read them.
    /// Returns how many *data* messages and bytes were confirmed (every kind is tallied
    /// in [`counts`](Self::counts)).
    ///
    /// Touches no disk: deleting emptied segment files and writing the removal
    /// position is left to the next batch of pushes or to [`sync`](Self::sync).
    pub async fn confirm(&self, up_to: u64) -> (u64, u64) {
        self.inline(|core| core.confirm(up_to))
    }

    /// Moves every in-flight message back to waiting (after a connection was lost) and
    /// returns how many will be sent again. Touches no disk.
    pub fn rewind(&self) -> usize {
        self.inline(Core::rewind)
    }

    /// Sequence number of the newest in-flight message, if any.
    pub fn last_in_flight_seq(&self) -> Option<u64> {
        self.read(Core::last_in_flight_seq)
    }

    /// Number of in-flight (written, unconfirmed) messages.
    pub fn in_flight(&self) -> usize {
        self.read(Core::in_flight)
    }

    /// Number of messages waiting to be written.
    pub fn waiting(&self) -> usize {
        self.read(Core::waiting)
    }

    /// `(messages, bytes)` held, waiting and in flight, in memory and on disk.
    pub fn occupancy(&self) -> (usize, usize) {
        self.read(Core::occupancy)
    }

    /// Payload bytes held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.read(Core::memory_bytes)
    }

    /// What became of the messages of `kind` since the queue was opened, and how many
    /// it holds now.
    pub fn counts(&self, kind: MessageKind) -> KindCounts {
        self.read(|core| core.counts(kind))
    }

    /// The disk cache's timer, to call every
    /// [`DiskCacheConfig::tick_period`](crate::DiskCacheConfig::tick_period): with
    /// [`SyncPolicy::Interval`](crate::SyncPolicy::Interval), once the interval has
    /// passed, forces appended messages and the removal position to the device;
    /// otherwise writes the removal position (`head`) if confirmations moved it.
    ///
    /// When the cache's directory or segment was deleted or replaced, it writes every
    /// queued message into the recreated directory and returns how many *data* messages
    /// were lost instead (held only in the deleted files, or dropped by the full-queue
    /// policy if the new files cannot be written): for the caller to count as dropped.
    /// Otherwise 0.
    #[must_use = "messages lost with deleted cache files must be counted as dropped"]
    pub async fn sync(&self) -> u64 {
        self.run(Core::sync).await
    }

    /// At shutdown: keeps on disk what can be kept (messages held only in memory are
    /// written to the disk cache now) and returns how many data messages are lost, that
    /// is held in memory with no disk cache to keep them (lost messages of every kind
    /// are tallied as dropped in [`counts`](Self::counts)). The queue is empty afterwards.
    pub async fn close_for_shutdown(&self) -> usize {
        self.run(Core::close_for_shutdown).await
    }

    /// Resolves when a message was pushed since the last call. Cancel-safe.
    pub async fn wait_ready(&self) {
        self.shared.ready.notified().await;
    }
}

/// Runs `op` on the state, then checks the counters in debug builds.
fn checked<T>(core: &mut Core, op: impl FnOnce(&mut Core) -> T) -> T {
    let out = op(core);
    debug_assert!(
        core.counters_match(),
        "queue counters out of step: {core:#?}"
    );
    out
}

/// Runs blocking disk work on tokio's blocking pool and hands back its result (or its
/// panic).
async fn blocking<T: Send + 'static>(op: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(op).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down before the task started: nothing ran.
        Err(e) => panic!("disk cache operation not run: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::DISK_RETRY;
    use crate::{DiskCacheConfig, FullPolicy, SyncPolicy};
    use std::time::Duration;

    fn q(max_bytes: usize, max_messages: usize, policy: FullPolicy) -> MessageQueue {
        MessageQueue::new(QueueLimits {
            max_bytes,
            max_messages,
            policy,
            disk: None,
        })
    }

    async fn push(q: &MessageQueue, s: &'static str) -> PushOutcome {
        q.push(Bytes::from_static(s.as_bytes()), 0).await
    }

    /// Queued without dropping anything.
    const QUEUED: PushOutcome = PushOutcome::Queued { dropped_oldest: 0 };

    /// Pushes `s`, which must be queued without dropping anything.
    async fn queued(q: &MessageQueue, s: &'static str) {
        assert_eq!(push(q, s).await, QUEUED, "pushing {s:?}");
    }

    /// Takes and confirms batches until the queue is empty; every message, in order.
    async fn drain(q: &MessageQueue) -> Vec<Message> {
        let mut all = Vec::new();
        loop {
            let batch = q.take_batch(100, 1 << 20).await;
            let Some(last) = batch.last().map(|m| m.seq) else {
                return all;
            };
            all.extend(batch);
            q.confirm(last).await;
        }
    }

    fn seqs(batch: &[Message]) -> Vec<u64> {
        batch.iter().map(|m| m.seq).collect()
    }

    #[tokio::test]
    async fn messages_leave_only_when_confirmed_and_rewind_resends_in_order() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        for s in ["a", "b", "c"] {
            queued(&q, s).await;
        }
        assert_eq!(seqs(&q.take_batch(2, 1000).await), [1, 2]);
        assert_eq!(q.last_in_flight_seq(), Some(2));
        assert_eq!(q.confirm(1).await, (1, 1));
        assert_eq!(q.rewind(), 1);
        assert_eq!(seqs(&q.take_batch(10, 1000).await), [2, 3]);
        assert_eq!(q.confirm(3).await, (2, 2));
        assert_eq!(q.occupancy(), (0, 0));
    }

    #[tokio::test]
    async fn confirm_ignores_messages_not_yet_written() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        queued(&q, "a").await;
        queued(&q, "b").await;
        q.take_batch(1, 1000).await;
        // A stale or forged pong for seq 2 must not remove message 2, which was never sent.
        assert_eq!(q.confirm(2).await, (1, 1));
        assert_eq!(q.waiting(), 1);
    }

    #[tokio::test]
    async fn drop_oldest_drops_the_oldest_unsent_messages_first() {
        let q = q(4, 100, FullPolicy::DropOldest);
        queued(&q, "a").await;
        queued(&q, "b").await;
        q.take_batch(1, 100).await; // "a" in flight: on the wire, probably arriving
        queued(&q, "c").await;
        queued(&q, "d").await;
        assert_eq!(
            push(&q, "ee").await,
            PushOutcome::Queued { dropped_oldest: 2 }
        );
        assert_eq!(q.in_flight(), 1, "the in-flight message stays");
        assert_eq!(q.confirm(1).await, (1, 1));
        assert_eq!(
            seqs(&q.take_batch(10, 100).await),
            [4],
            "b and c were dropped (and e waits: 2 bytes may be in flight)"
        );
        q.confirm(4).await;
        assert_eq!(q.take_batch(10, 100).await[0].seq, 5);
    }

    #[tokio::test]
    async fn drop_oldest_reaches_in_flight_messages_only_when_nothing_else_is_left() {
        let q = q(4, 100, FullPolicy::DropOldest);
        queued(&q, "aa").await;
        q.take_batch(1, 100).await;
        assert_eq!(
            push(&q, "bbb").await,
            PushOutcome::Queued { dropped_oldest: 1 }
        );
        assert_eq!((q.in_flight(), q.waiting()), (0, 1));
    }

    #[tokio::test]
    async fn in_flight_bytes_are_capped_at_half_the_queue() {
        let q = q(8, 100, FullPolicy::DropOldest);
        for s in ["aa", "bb", "cc", "dd"] {
            queued(&q, s).await;
        }
        assert_eq!(
            q.take_batch(10, 100).await.len(),
            2,
            "4 of 8 bytes may be in flight"
        );
        assert!(q.take_batch(10, 100).await.is_empty());
        q.confirm(1).await;
        assert_eq!(q.take_batch(10, 100).await.len(), 1);
    }

    #[tokio::test]
    async fn drop_newest_and_refuse_keep_what_is_queued() {
        for (policy, want) in [
            (FullPolicy::DropNewest, PushOutcome::DroppedNewest),
            (FullPolicy::Refuse, PushOutcome::Refused),
        ] {
            let q = q(1000, 2, policy);
            queued(&q, "a").await;
            queued(&q, "b").await;
            assert_eq!(push(&q, "c").await, want);
            assert_eq!(q.occupancy(), (2, 2));
        }
    }

    #[tokio::test]
    async fn a_message_larger_than_the_queue_is_rejected_alone() {
        let q = q(2, 10, FullPolicy::DropOldest);
        queued(&q, "a").await;
        assert_eq!(push(&q, "abc").await, PushOutcome::TooLarge);
        assert_eq!(q.occupancy(), (1, 1));
    }

    #[tokio::test]
    async fn batches_respect_the_byte_budget_but_always_take_one() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        queued(&q, "aaaa").await;
        queued(&q, "bbbb").await;
        assert_eq!(q.take_batch(10, 2).await.len(), 1);
        assert_eq!(q.take_batch(10, 4).await.len(), 1);
    }

    async fn disk_queue(
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
        .await
        .unwrap();
        q
    }

    fn payloads(batch: &[Message]) -> Vec<String> {
        batch
            .iter()
            .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn with_a_disk_cache_memory_holds_only_its_budget_and_the_rest_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let q = disk_queue(dir.path(), 8, 1 << 20, FullPolicy::DropOldest).await;
        for s in ["aa", "bb", "cc", "dd", "ee", "ff"] {
            assert_eq!(push(&q, s).await, PushOutcome::Queued { dropped_oldest: 0 });
        }
        assert_eq!(
            q.memory_bytes(),
            8,
            "four payloads in memory, two on disk only"
        );
        assert_eq!(q.occupancy(), (6, 12));
        let b = q.take_batch(10, 100).await;
        assert_eq!(
            payloads(&b),
            ["aa", "bb"],
            "in flight capped at half of memory"
        );
        q.confirm(2).await;
        assert_eq!(payloads(&q.take_batch(10, 100).await), ["cc", "dd"]);
        q.confirm(4).await;
        assert_eq!(
            payloads(&q.take_batch(10, 100).await),
            ["ee", "ff"],
            "read back from disk"
        );
        q.rewind();
        assert_eq!(
            payloads(&q.take_batch(1, 100).await),
            ["ee"],
            "read back again after a rewind"
        );
        q.confirm(5).await;
        assert_eq!(payloads(&q.take_batch(10, 100).await), ["ff"]);
    }

    #[tokio::test]
    async fn a_disk_cache_survives_reopening_with_order_and_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest).await;
            for (i, s) in ["one", "two", "three"].into_iter().enumerate() {
                let outcome = q.push(Bytes::from_static(s.as_bytes()), 100 + i as u64);
                assert_eq!(outcome.await, QUEUED);
            }
            q.take_batch(1, 100).await;
            q.confirm(1).await; // "one" was delivered
                                // No close_for_shutdown: as if the process was killed.
        }
        let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest).await;
        let b = q.take_batch(10, 100).await;
        assert_eq!(payloads(&b), ["two", "three"]);
        assert_eq!(
            b.iter().map(|m| m.timestamp_ms).collect::<Vec<_>>(),
            [101, 102]
        );
    }

    #[tokio::test]
    async fn a_full_disk_cache_drops_the_oldest_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let record = crate::disk_log::RECORD_HEADER_LEN as u64 + 2;
        let q = disk_queue(dir.path(), 100, 3 * record, FullPolicy::DropOldest).await;
        for s in ["aa", "bb", "cc"] {
            queued(&q, s).await;
        }
        assert_eq!(
            push(&q, "dd").await,
            PushOutcome::Queued { dropped_oldest: 1 }
        );
        assert_eq!(payloads(&q.take_batch(10, 100).await), ["bb", "cc", "dd"]);
        let dir2 = tempfile::tempdir().unwrap();
        let q2 = disk_queue(dir2.path(), 100, 3 * record, FullPolicy::Refuse).await;
        for s in ["aa", "bb", "cc"] {
            queued(&q2, s).await;
        }
        assert_eq!(push(&q2, "dd").await, PushOutcome::Refused);
    }

    /// A small tmpfs fills up (needs root to mount; skipped otherwise): new messages stay
    /// in memory, nothing is lost, and once space frees up the disk is used again.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_full_disk_falls_back_to_memory_and_the_disk_is_used_again_when_space_frees() {
        let Some(small) = SmallFs::mount() else {
            return;
        };
        let mount = small.path().to_path_buf();
        // Leave about 8 KiB free.
        let filler = mount.join("filler");
        std::fs::write(&filler, vec![0u8; 56 * 1024]).unwrap();
        let q = disk_queue(&mount.join("q"), 1 << 20, 1 << 20, FullPolicy::DropOldest).await;
        let msg = |i: usize| Bytes::from(format!("{i:04}").repeat(250)); // 1000 bytes
        for i in 0..20 {
            assert_eq!(
                q.push(msg(i), i as u64).await,
                PushOutcome::Queued { dropped_oldest: 0 }
            );
        }
        let on_disk_before = q
            .shared
            .lock()
            .on_disk_flags()
            .iter()
            .filter(|d| **d)
            .count();
        assert!(
            (1..20).contains(&on_disk_before),
            "{on_disk_before} on disk: the disk filled up"
        );
        std::fs::remove_file(&filler).unwrap();
        std::thread::sleep(DISK_RETRY + Duration::from_millis(50));
        assert_eq!(q.push(msg(20), 20).await, QUEUED);
        assert!(
            *q.shared.lock().on_disk_flags().last().unwrap(),
            "the disk is used again"
        );
        // Everything is there, in order, from memory and disk alike.
        let all: Vec<Vec<u8>> = drain(&q)
            .await
            .iter()
            .map(|m| m.payload[..4].to_vec())
            .collect();
        let want: Vec<Vec<u8>> = (0..21).map(|i| format!("{i:04}").into_bytes()).collect();
        assert_eq!(all, want);
    }

    async fn push_state(q: &MessageQueue, s: &'static str) -> PushOutcome {
        q.push_kind(
            Bytes::from_static(s.as_bytes()),
            7,
            MessageKind::DriverState,
        )
        .await
    }

    fn kinds(batch: &[Message]) -> Vec<MessageKind> {
        batch.iter().map(|m| m.kind).collect()
    }

    #[tokio::test]
    async fn counts_returned_are_of_data_and_each_kind_is_tallied_apart() {
        let q = q(1000, 100, FullPolicy::DropOldest);
        queued(&q, "aa").await;
        assert_eq!(push_state(&q, "sss").await, QUEUED);
        queued(&q, "bb").await;
        let batch = q.take_batch(10, 1000).await;
        use MessageKind::{Data, DriverState};
        assert_eq!(
            kinds(&batch),
            [Data, DriverState, Data],
            "one stream, in order"
        );
        assert_eq!(q.confirm(3).await, (2, 4), "two data messages of 2 bytes");
        let state = q.counts(DriverState);
        assert_eq!((state.queued, state.confirmed, state.held), (1, 1, 0));
        let data = q.counts(Data);
        assert_eq!((data.queued, data.confirmed, data.held), (2, 2, 0));
        // At shutdown without a disk cache, the lost state is not a lost data message.
        assert_eq!(push_state(&q, "sss").await, QUEUED);
        queued(&q, "cc").await;
        assert_eq!(q.close_for_shutdown().await, 1);
        assert_eq!(q.counts(DriverState).dropped, 1);
        assert_eq!(q.counts(Data).dropped, 1);
    }

    #[tokio::test]
    async fn a_full_queue_drops_waiting_states_first_and_a_state_never_displaces_data() {
        use MessageKind::{Data, DriverState};
        for policy in [
            FullPolicy::DropOldest,
            FullPolicy::DropNewest,
            FullPolicy::Refuse,
        ] {
            let q = q(1000, 3, policy);
            assert_eq!(push_state(&q, "s1").await, QUEUED);
            queued(&q, "a").await;
            assert_eq!(push_state(&q, "s2").await, QUEUED);
            // Full by count: the oldest waiting state goes, whatever the policy.
            assert_eq!(
                push(&q, "b").await,
                PushOutcome::Queued { dropped_oldest: 0 },
                "{policy:?}"
            );
            assert_eq!(q.counts(DriverState).dropped, 1);
            assert_eq!(
                push_state(&q, "s3").await,
                PushOutcome::Queued { dropped_oldest: 0 },
                "s2 made room for the fresher s3"
            );
            let payloads_now: Vec<_> = q
                .shared
                .lock()
                .entries_for_test()
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            assert_eq!(payloads_now, ["a", "b", "s3"], "{policy:?}");
            // Only data left to drop: a state is rejected rather than dropping data.
            queued(&q, "c").await;
            assert_eq!(push_state(&q, "s4").await, PushOutcome::DroppedNewest);
            assert_eq!(q.counts(DriverState).rejected, 1);
            assert_eq!(q.counts(Data).held, 3, "s3 made room for c");
            assert_eq!(q.counts(DriverState).dropped, 3, "s1, s2, s3");
            assert_eq!(q.counts(Data).dropped, 0);
        }
    }

    #[tokio::test]
    async fn a_state_in_flight_is_not_dropped_and_memory_pressure_drops_states_first() {
        use MessageKind::DriverState;
        let q = q(6, 100, FullPolicy::DropOldest);
        assert_eq!(push_state(&q, "s1").await, QUEUED); // in flight below: on the wire, probably arriving
        q.take_batch(1, 100).await;
        assert_eq!(push_state(&q, "s2").await, QUEUED);
        queued(&q, "aa").await;
        // 6 bytes held; 2 more need room: s2 (waiting) goes, not s1 nor the data.
        assert_eq!(
            push(&q, "bb").await,
            PushOutcome::Queued { dropped_oldest: 0 }
        );
        assert_eq!(q.counts(DriverState).dropped, 1);
        assert_eq!(q.in_flight(), 1);
        assert_eq!(q.confirm(1).await, (0, 0), "a confirmed state is not data");
        assert_eq!(q.counts(DriverState).confirmed, 1);
    }

    #[tokio::test]
    async fn the_kind_survives_the_disk_cache() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest).await;
            queued(&q, "d1").await;
            let outcome = q.push_kind(
                Bytes::from_static(b"s1"),
                1_650_006_388_943,
                MessageKind::DriverState,
            );
            assert_eq!(outcome.await, QUEUED);
            queued(&q, "d2").await;
        }
        let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest).await;
        let b = q.take_batch(10, 100).await;
        assert_eq!(payloads(&b), ["d1", "s1", "d2"]);
        use MessageKind::{Data, DriverState};
        assert_eq!(kinds(&b), [Data, DriverState, Data]);
        assert_eq!(b[1].timestamp_ms, 1_650_006_388_943);
        assert_eq!(q.counts(Data).queued, 2, "recovered data counted as data");
        assert_eq!(q.counts(DriverState).queued, 1);
    }

    #[tokio::test]
    async fn shutdown_writes_memory_only_messages_to_disk_and_without_disk_reports_them_lost() {
        let q = q(100, 100, FullPolicy::DropOldest);
        queued(&q, "a").await;
        queued(&q, "b").await;
        assert_eq!(q.close_for_shutdown().await, 2);
        let dir = tempfile::tempdir().unwrap();
        let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest).await;
        queued(&q, "a").await;
        assert_eq!(q.close_for_shutdown().await, 0);
        drop(q);
        let q = disk_queue(dir.path(), 100, 1 << 20, FullPolicy::DropOldest).await;
        assert_eq!(payloads(&q.take_batch(10, 100).await), ["a"]);
    }

    /// Group commit: pushes that arrive while the writer is busy (here: while the
    /// state is locked) are written together, one write for the lot, and each push
    /// still gets its own outcome, in order.
    #[tokio::test]
    async fn pushes_arriving_during_a_write_are_written_together() {
        use std::future::Future;
        let dir = tempfile::tempdir().unwrap();
        let q = disk_queue(dir.path(), 1 << 20, 1 << 20, FullPolicy::DropOldest).await;
        let writes_before = q.shared.lock().disk_commits();
        let mut pushes: Vec<_> = (0..10u64)
            .map(|i| Box::pin(q.push(Bytes::from(format!("m{i}")), i)))
            .collect();
        {
            // The writer cannot write while this is held: every push joins the queue.
            let _busy = q.shared.lock();
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            for p in &mut pushes {
                assert!(p.as_mut().poll(&mut cx).is_pending());
            }
        }
        for p in pushes {
            assert_eq!(p.await, PushOutcome::Queued { dropped_oldest: 0 });
        }
        let writes = q.shared.lock().disk_commits() - writes_before;
        // The writer may have taken the first push alone before it found the lock held.
        assert!(writes <= 2, "{writes} writes for 10 pushes");
        let batch = q.take_batch(100, 1 << 20).await;
        assert_eq!(seqs(&batch), (1..=10).collect::<Vec<_>>());
        assert_eq!(payloads(&batch)[9], "m9");
    }

    /// `push_many`: the messages a producer has ready together are written with one
    /// write, even though nothing else holds the writer up (pushed one after the other,
    /// each would wait for its own write: ten writes).
    #[tokio::test]
    async fn push_many_writes_a_producers_batch_with_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let q = disk_queue(dir.path(), 1 << 20, 1 << 20, FullPolicy::DropOldest).await;
        let writes_before = q.shared.lock().disk_commits();
        let batch = (0..10u64)
            .map(|i| (Bytes::from(format!("m{i}")), i))
            .collect();
        let outcomes = q.push_many(batch).await;
        assert!(
            outcomes.len() == 10
                && outcomes
                    .iter()
                    .all(|o| *o == PushOutcome::Queued { dropped_oldest: 0 }),
            "{outcomes:?}"
        );
        assert_eq!(q.shared.lock().disk_commits() - writes_before, 1);
        let batch = q.take_batch(100, 1 << 20).await;
        assert_eq!(seqs(&batch), (1..=10).collect::<Vec<_>>());
        assert_eq!(payloads(&batch)[9], "m9");
        // A memory-only queue takes the same batch inline, with the same outcomes.
        let m = MessageQueue::new(QueueLimits::default());
        let outcomes = m
            .push_many(vec![(Bytes::from("a"), 1), (Bytes::from("b"), 2)])
            .await;
        assert_eq!(outcomes.len(), 2);
        assert_eq!(payloads(&m.take_batch(10, 100).await), ["a", "b"]);
    }

    /// `push_prefix` stops at the first refusal: a smaller message after it would fit
    /// (and `push_many` queues it), but it is refused untried, in memory and through
    /// the disk writer; a refusal of a message pushed alone does not end a later prefix.
    #[tokio::test]
    async fn push_prefix_queues_nothing_after_the_first_refusal() {
        const BIG: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let batch = || {
            ["aaaa", BIG, "cc", "dd"]
                .map(|s| (Bytes::from_static(s.as_bytes()), 0))
                .to_vec()
        };
        let refused_after_one = |outcomes: &[PushOutcome]| {
            assert_eq!(outcomes[0], QUEUED);
            assert!(
                outcomes[1..].iter().all(|o| *o == PushOutcome::Refused),
                "{outcomes:?}"
            );
        };
        // In memory: 62 bytes, so BIG (60) is refused after "aaaa" and "cc" would fit.
        let m = q(62, 100, FullPolicy::Refuse);
        refused_after_one(&m.push_prefix(batch()).await);
        assert_eq!(payloads(&m.take_batch(10, 100).await), ["aaaa"]);
        assert_eq!(m.counts(MessageKind::Data).rejected, 3);
        let m = q(62, 100, FullPolicy::Refuse);
        let outcomes = m.push_many(batch()).await;
        assert_eq!(outcomes[1], PushOutcome::Refused);
        assert_eq!(payloads(&m.take_batch(10, 100).await), ["aaaa", "cc", "dd"]);
        // Through the disk writer: a disk too small for BIG after "aaaa".
        for prefix in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let d = disk_queue(dir.path(), 1 << 20, 100, FullPolicy::Refuse).await;
            if prefix {
                refused_after_one(&d.push_prefix(batch()).await);
                assert_eq!(payloads(&d.take_batch(10, 100).await), ["aaaa"]);
            } else {
                let outcomes = d.push_many(batch()).await;
                assert_eq!(outcomes[..3], [QUEUED, PushOutcome::Refused, QUEUED]);
            }
        }
        // A refusal before a prefix does not end it.
        let m = q(62, 100, FullPolicy::Refuse);
        queued(&m, "aaaa").await;
        assert_eq!(
            m.push(Bytes::from_static(BIG.as_bytes()), 0).await,
            PushOutcome::Refused
        );
        assert_eq!(m.push_prefix(batch()).await[0], QUEUED);
    }

    /// A sequential producer's pushes are written in its own task while the writer
    /// thread is idle and the write is cheap: the thread never starts. With an
    /// `fdatasync` due at every write (`sync = "always"`), or after a slow write, they go
    /// to the thread.
    #[tokio::test]
    async fn cheap_writes_happen_in_the_pushing_task_and_the_rest_on_the_writer_thread() {
        let dir = tempfile::tempdir().unwrap();
        let q = disk_queue(dir.path(), 1 << 20, 1 << 20, FullPolicy::DropOldest).await;
        for s in ["aa", "bb", "cc"] {
            queued(&q, s).await;
        }
        assert!(!q.writer.as_ref().unwrap().is_started(), "no hand-off");
        assert_eq!(payloads(&q.take_batch(10, 100).await), ["aa", "bb", "cc"]);
        drop(q);
        // Reopened, as after a crash: they were written to the log.
        let q = disk_queue(dir.path(), 1 << 20, 1 << 20, FullPolicy::DropOldest).await;
        assert_eq!(payloads(&q.take_batch(10, 100).await), ["aa", "bb", "cc"]);
        q.inline.lock().unwrap().off_until = Some(Instant::now() + INLINE_PAUSE);
        queued(&q, "dd").await;
        assert!(
            q.writer.as_ref().unwrap().is_started(),
            "paused: handed off"
        );

        let dir = tempfile::tempdir().unwrap();
        let (q, _) = MessageQueue::open(QueueLimits {
            disk: Some(DiskCacheConfig {
                dir: dir.path().to_path_buf(),
                max_bytes: 1 << 20,
                sync: SyncPolicy::Always,
            }),
            ..QueueLimits::default()
        })
        .await
        .unwrap();
        queued(&q, "ee").await;
        assert!(
            q.writer.as_ref().unwrap().is_started(),
            "a sync is due: handed off"
        );
    }

    /// Writes in the pushing task pause only after a streak of slow ones.
    #[test]
    fn a_streak_of_slow_writes_pauses_writing_in_the_pushing_task() {
        let (slow, fast) = (INLINE_MAX * 2, INLINE_MAX / 2);
        let now = Instant::now();
        let mut s = InlineState::default();
        for took in [slow, slow, fast, slow, slow] {
            s.record(took, now);
        }
        assert_eq!(s.off_until, None, "broken streaks");
        s.record(slow, now);
        assert_eq!(s.off_until, Some(now + INLINE_PAUSE));
    }

    /// A push whose future is dropped before its batch is written is queued all the
    /// same, and the consumer is woken for it (by the writer thread, since no push is
    /// left to do it).
    #[tokio::test]
    async fn a_push_no_one_waits_for_still_wakes_the_consumer() {
        use std::future::Future;
        let dir = tempfile::tempdir().unwrap();
        let q = disk_queue(dir.path(), 1 << 20, 1 << 20, FullPolicy::DropOldest).await;
        {
            let _busy = q.shared.lock();
            let mut push = Box::pin(q.push(Bytes::from("orphan"), 1));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(push.as_mut().poll(&mut cx).is_pending());
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), q.wait_ready())
            .await
            .expect("the consumer is woken");
        assert_eq!(payloads(&q.take_batch(10, 100).await), ["orphan"]);
    }

    /// The cache directory deleted under a running queue (messages in flight, most held
    /// on disk only, more pushed after the deletion): the timer notices, writes every
    /// queued message into the recreated directory, and a reopen (as after a crash)
    /// finds them all, in order.
    #[tokio::test]
    async fn a_deleted_cache_directory_is_recreated_with_every_queued_message() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("cache");
        // Memory for four payloads: the others are on disk only.
        let q = disk_queue(&dir, 8, 1 << 20, FullPolicy::DropOldest).await;
        for s in ["aa", "bb", "cc", "dd", "ee", "ff"] {
            queued(&q, s).await;
        }
        assert_eq!(q.take_batch(2, 100).await.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
        queued(&q, "gg").await; // into the deleted segment
        assert_eq!(q.sync().await, 0, "every message read back: none lost");
        assert!(dir.is_dir(), "recreated");
        assert_eq!(q.sync().await, 0); // nothing more to do
        assert_eq!(q.confirm(1).await, (1, 2));
        drop(q);
        let q = disk_queue(&dir, 8, 1 << 20, FullPolicy::DropOldest).await;
        let all = payloads(&drain(&q).await);
        assert_eq!(all, ["bb", "cc", "dd", "ee", "ff", "gg"]);
    }

    /// Messages held only in an older, closed segment cannot be read back once the
    /// directory is deleted: `sync` returns them for the caller to count as dropped, and
    /// the queue's own counts agree, so queued = confirmed + dropped + held still holds.
    #[tokio::test]
    async fn messages_lost_with_a_deleted_closed_segment_are_counted_as_dropped() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("cache");
        const MIB: usize = 1 << 20;
        // Memory for one payload; 4 MiB segments hold three 1 MiB records each.
        let q = disk_queue(&dir, MIB + MIB / 2, 64 << 20, FullPolicy::DropOldest).await;
        for i in 0..5u8 {
            let outcome = q.push(Bytes::from(vec![b'a' + i; MIB]), u64::from(i)).await;
            assert_eq!(outcome, PushOutcome::Queued { dropped_oldest: 0 });
        }
        std::fs::remove_dir_all(&dir).unwrap();
        // The first payload is in memory, the 4th and 5th in the open segment: records
        // 2 and 3 were only in the closed first segment.
        assert_eq!(q.sync().await, 2);
        let c = q.counts(MessageKind::Data);
        assert_eq!((c.queued, c.dropped, c.held), (5, 2, 3));
        // In flight is capped at half the memory budget: one message at a time.
        let mut firsts = Vec::new();
        while let Some(m) = q.take_batch(1, 64 << 20).await.pop() {
            firsts.push(m.payload[0]);
            q.confirm(m.seq).await;
        }
        assert_eq!(firsts, [b'a', b'd', b'e']);
    }

    /// The rebuild of a deleted directory keeps each message's kind: a driver state
    /// written again is still a driver state after a reopen, never counted as data.
    #[tokio::test]
    async fn a_rebuilt_cache_keeps_each_message_kind() {
        use MessageKind::{Data, DriverState};
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("cache");
        {
            let q = disk_queue(&dir, 100, 1 << 20, FullPolicy::DropOldest).await;
            queued(&q, "d1").await;
            let outcome = q.push_kind(Bytes::from_static(b"s1"), 7, DriverState);
            assert_eq!(outcome.await, QUEUED);
            std::fs::remove_dir_all(&dir).unwrap();
            assert_eq!(q.sync().await, 0);
            assert!(dir.is_dir(), "recreated");
        }
        let q = disk_queue(&dir, 100, 1 << 20, FullPolicy::DropOldest).await;
        let b = q.take_batch(10, 100).await;
        assert_eq!(payloads(&b), ["d1", "s1"]);
        assert_eq!(kinds(&b), [Data, DriverState]);
        assert_eq!(b[1].timestamp_ms, 7);
        assert_eq!(q.counts(Data).queued, 1);
    }

    /// A 64 KiB tmpfs, unmounted when dropped; `None` (test skipped) without root.
    #[cfg(target_os = "linux")]
    struct SmallFs(tempfile::TempDir);

    #[cfg(target_os = "linux")]
    impl SmallFs {
        fn mount() -> Option<SmallFs> {
            let base = tempfile::tempdir().unwrap();
            let mounted = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
                .arg(base.path())
                .status()
                .is_ok_and(|s| s.success());
            if !mounted {
                eprintln!("SKIPPED: cannot mount a small tmpfs (needs root)");
                return None;
            }
            Some(SmallFs(base))
        }

        fn path(&self) -> &std::path::Path {
            self.0.path()
        }
    }

    #[cfg(target_os = "linux")]
    impl Drop for SmallFs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg(self.0.path())
                .status();
        }
    }

    /// A batch whose write fails on a full disk, while memory is full of messages that
    /// are also on disk: the failed messages come back to memory, and the memory budget
    /// still holds (others are left on disk only), with nothing lost or dropped.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_failed_batch_write_keeps_its_messages_within_the_memory_budget() {
        let Some(small) = SmallFs::mount() else {
            return;
        };
        // Leave about 8 KiB free.
        std::fs::write(small.path().join("filler"), vec![0u8; 56 * 1024]).unwrap();
        let q = disk_queue(
            &small.path().join("q"),
            3000,
            1 << 20,
            FullPolicy::DropOldest,
        )
        .await;
        let msg = |i: usize| Bytes::from(format!("{i:04}").repeat(250)); // 1000 bytes
                                                                         // Push until a write fails (the first message kept in memory only).
        let mut pushed = 0;
        while !q.shared.lock().on_disk_flags().contains(&false) {
            assert!(pushed < 20, "the disk never filled up");
            assert_eq!(
                q.push(msg(pushed), pushed as u64).await,
                PushOutcome::Queued { dropped_oldest: 0 }
            );
            assert!(
                q.memory_bytes() <= 3000,
                "{} bytes in memory",
                q.memory_bytes()
            );
            pushed += 1;
        }
        let all: Vec<Vec<u8>> = drain(&q)
            .await
            .iter()
            .map(|m| m.payload[..4].to_vec())
            .collect();
        let want: Vec<Vec<u8>> = (0..pushed)
            .map(|i| format!("{i:04}").into_bytes())
            .collect();
        assert_eq!(all, want);
    }
}
