//! The queue's state and every operation on it, synchronous: [`MessageQueue`] wraps
//! it in a lock and decides on which thread each operation runs.
//!
//! Entries and disk log records are in the same order, so the log's head is always
//! the oldest on-disk entry and confirmation pops both. The byte and in-flight
//! counters are derived data kept for speed; [`Core::counters_match`] recomputes them
//! and every operation is followed by a `debug_assert!` of it.
//!
//! [`MessageQueue`]: crate::MessageQueue

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{error, info, warn};

use crate::disk_log::{DiskLog, DiskLogError, DiskLogOptions, Recovery};
use crate::kind::{self, KindCounts, MessageKind};
use crate::limits::{FullPolicy, QueueLimits};
use crate::queue::Push;
use crate::{Message, PushOutcome};

/// Where one message's bytes are. An entry cannot be "nowhere" nor "on disk without a
/// disk", which `Option<Bytes>` plus a flag used to allow.
#[derive(Debug)]
enum Stored {
    /// Only in memory: lost at a crash (no disk cache, or the disk was full/failing).
    Memory(Bytes),
    /// In the disk log, with a copy in memory for sending.
    DiskAndMemory(Bytes),
    /// Only in the disk log: read back when its turn comes.
    Disk,
}

/// One queued message.
#[derive(Debug)]
struct Entry {
    seq: u64,
    timestamp_ms: u64,
    len: usize,
    kind: MessageKind,
    stored: Stored,
}

impl Entry {
    fn on_disk(&self) -> bool {
        !matches!(self.stored, Stored::Memory(_))
    }

    fn in_memory(&self) -> Option<&Bytes> {
        match &self.stored {
            Stored::Memory(p) | Stored::DiskAndMemory(p) => Some(p),
            Stored::Disk => None,
        }
    }
}

#[derive(Debug)]
struct Disk {
    log: DiskLog,
    /// Since when the disk is full or failing: new messages stay in memory only, and the
    /// disk is tried again every [`DISK_RETRY`].
    degraded_since: Option<Instant>,
    /// Payloads of the records staged in the log and not yet committed, oldest first:
    /// if the batch's write fails they stay in memory instead.
    staged: Vec<Bytes>,
}

impl Disk {
    /// Notes a failed write: new messages stay in memory until [`DISK_RETRY`] has
    /// passed. Said once per episode; a retry that fails again stays quiet.
    fn degrade(&mut self, e: &DiskLogError) {
        let dir = self.log.dir().display().to_string();
        let first = self.degraded_since.replace(Instant::now()).is_none();
        if first && e.is_disk_full() {
            warn!(%dir, "disk cache: the disk is full; keeping new messages in memory until space frees up");
        } else if first {
            error!(%dir, error = %e, "disk cache: cannot write; keeping new messages in memory");
        }
    }

    /// Whether the next message should go to disk: always, unless the disk failed less
    /// than [`DISK_RETRY`] ago (trying every message would cost a failing write each).
    fn usable(&self) -> bool {
        self.degraded_since
            .is_none_or(|t| t.elapsed() >= DISK_RETRY)
    }
}

/// How long a full or failing disk is left alone before it is tried again (short in
/// tests, so that the retry can be seen).
pub(crate) const DISK_RETRY: Duration = if cfg!(test) {
    Duration::from_millis(100)
} else {
    Duration::from_secs(5)
};

/// Above this many entries the invariant check is skipped: it walks every entry, and a
/// debug build holding a large backlog would otherwise go quadratic.
const INVARIANT_SCAN_LIMIT: usize = 20_000;

/// The queue's state. See the module docs.
#[derive(Debug)]
pub(crate) struct Core {
    limits: QueueLimits,
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
    /// What happened to each kind, indexed by [`MessageKind::index`].
    counts: [KindCounts; MessageKind::ALL.len()],
}

impl Core {
    /// An empty, memory-only queue (any `disk` setting is ignored).
    pub(crate) fn new(limits: QueueLimits) -> Self {
        Self {
            limits: QueueLimits {
                disk: None,
                ..limits
            },
            entries: VecDeque::new(),
            in_flight: 0,
            in_flight_bytes: 0,
            in_flight_on_disk: 0,
            bytes: 0,
            mem_bytes: 0,
            next_seq: 1,
            disk: None,
            counts: Default::default(),
        }
    }

    /// Opens the disk cache of `limits` (blocking I/O) and takes back every message a
    /// previous run left there.
    pub(crate) fn open(limits: QueueLimits) -> Result<(Self, Option<Recovery>), DiskLogError> {
        let Some(disk) = limits.disk.clone() else {
            return Ok((Self::new(limits), None));
        };
        let mut options = DiskLogOptions::new(&disk.dir, disk.max_bytes);
        options.sync = disk.sync;
        let (mut log, recovery) = DiskLog::open(options)?;
        let mut core = Self::new(limits.clone());
        core.limits = limits;
        // Index what is on disk; keep payloads in memory while the budget allows.
        let mut skip = 0;
        while skip < log.len() {
            let records = log.read(skip, 1024)?;
            skip += records.len() as u64;
            for r in records {
                let len = r.payload.len();
                let (timestamp_ms, kind) = kind::from_disk(r.timestamp_ms);
                let keep = core.mem_bytes + len <= core.limits.max_bytes;
                let stored = if keep {
                    Stored::DiskAndMemory(Bytes::from(r.payload))
                } else {
                    Stored::Disk
                };
                core.push_entry(stored, timestamp_ms, len, kind);
            }
        }
        core.disk = Some(Disk {
            log,
            degraded_since: None,
            staged: Vec::new(),
        });
        Ok((core, Some(recovery)))
    }

    pub(crate) fn limits(&self) -> &QueueLimits {
        &self.limits
    }

    /// Queues a batch of messages in order, applying the full-queue policy to each, and
    /// writes the disk cache's share of them with one write (group commit). Returns one
    /// outcome per message: `Queued` ones are in the kernel's hands (or in memory when
    /// the disk is full or failing).
    /// A message that [`follows`](Push::follows) a refused one is refused untried.
    pub(crate) fn push_batch(&mut self, batch: Vec<Push>) -> Vec<PushOutcome> {
        let first_seq = self.next_seq;
        let mut outcomes: Vec<PushOutcome> = Vec::with_capacity(batch.len());
        for push in batch {
            let outcome = if push.follows && outcomes.last() == Some(&PushOutcome::Refused) {
                self.counts[push.kind.index()].rejected += 1;
                PushOutcome::Refused
            } else {
                self.push_one(push.payload, push.timestamp_ms, push.kind)
            };
            outcomes.push(outcome);
        }
        self.commit_disk();
        // Only a failed write (here, or mid-batch before a new segment) moves messages
        // back to memory beyond the budget.
        if self.mem_bytes > self.limits.max_bytes {
            self.enforce_memory_budget(first_seq, &mut outcomes);
        }
        outcomes
    }

    /// One message of a batch, staged in the disk log (not yet written). A full queue
    /// first drops the oldest waiting driver-state message it can remove (a stale state
    /// is worthless); a driver-state message never makes room by dropping data: it is
    /// rejected instead (`DroppedNewest`), whatever the policy. `dropped_oldest` counts
    /// data messages only.
    fn push_one(&mut self, payload: Bytes, timestamp_ms: u64, kind: MessageKind) -> PushOutcome {
        let data_dropped = self.counts[MessageKind::Data.index()].dropped;
        match self.try_push(payload, timestamp_ms, kind) {
            Ok(()) => PushOutcome::Queued {
                dropped_oldest: self.counts[MessageKind::Data.index()].dropped - data_dropped,
            },
            Err(not_queued) => {
                self.counts[kind.index()].rejected += 1;
                not_queued
            }
        }
    }

    /// [`push_one`](Self::push_one) without the counting of its outcome: `Err` says why
    /// the message was not queued.
    fn try_push(
        &mut self,
        payload: Bytes,
        timestamp_ms: u64,
        kind: MessageKind,
    ) -> Result<(), PushOutcome> {
        let size = payload.len();
        let policy = match kind {
            MessageKind::Data => self.limits.policy,
            MessageKind::DriverState => FullPolicy::DropNewest,
        };
        if self.entries.len() >= self.limits.max_messages && !self.drop_stale_state(false) {
            match policy {
                FullPolicy::DropNewest => return Err(PushOutcome::DroppedNewest),
                FullPolicy::Refuse => return Err(PushOutcome::Refused),
                FullPolicy::DropOldest => {
                    if !self.drop_one_oldest(true) {
                        return Err(PushOutcome::TooLarge);
                    }
                }
            }
        }
        let mut on_disk = false;
        if self.disk.as_ref().is_some_and(Disk::usable) {
            let field = kind::to_disk(timestamp_ms, kind);
            loop {
                if self
                    .disk
                    .as_ref()
                    .is_some_and(|d| d.log.staged() > 0 && d.log.would_start_segment(size))
                {
                    // A new segment: write the batch so far first, so that a failure
                    // is known to concern exactly the staged messages.
                    self.commit_disk();
                    if !self.disk.as_ref().is_some_and(Disk::usable) {
                        break;
                    }
                }
                let disk = self.disk.as_mut().expect("checked above");
                match disk.log.stage(field, &payload) {
                    Ok(()) => {
                        disk.staged.push(payload.clone());
                        if disk.degraded_since.take().is_some() {
                            info!(dir = %disk.log.dir().display(), "disk cache: writing to disk again");
                        }
                        on_disk = true;
                        break;
                    }
                    Err(DiskLogError::Full) => match policy {
                        _ if self.drop_stale_state(true) => {}
                        FullPolicy::DropNewest => return Err(PushOutcome::DroppedNewest),
                        FullPolicy::Refuse => return Err(PushOutcome::Refused),
                        FullPolicy::DropOldest => {
                            // Only removing an on-disk message frees disk space, and the
                            // log removes from its front: drop the oldest on-disk entry.
                            if !self.drop_one_oldest(false) {
                                return Err(PushOutcome::TooLarge);
                            }
                        }
                    },
                    Err(DiskLogError::TooLarge { .. }) => return Err(PushOutcome::TooLarge),
                    Err(e) => {
                        disk.degrade(&e);
                        break;
                    }
                }
            }
        }
        if on_disk {
            // Keep the payload in memory only while the memory budget allows; it can be
            // read back from disk when its turn comes.
            let stored = if self.mem_bytes + size <= self.limits.max_bytes {
                Stored::DiskAndMemory(payload)
            } else {
                Stored::Disk
            };
            self.push_entry(stored, timestamp_ms, size, kind);
        } else {
            if size > self.limits.max_bytes {
                return Err(PushOutcome::TooLarge);
            }
            while self.mem_bytes + size > self.limits.max_bytes {
                if self.spill_one_payload() || self.drop_stale_state(false) {
                    continue;
                }
                match policy {
                    FullPolicy::DropNewest => return Err(PushOutcome::DroppedNewest),
                    FullPolicy::Refuse => return Err(PushOutcome::Refused),
                    FullPolicy::DropOldest => {
                        if !self.drop_oldest_in_memory() {
                            return Err(PushOutcome::TooLarge);
                        }
                    }
                }
            }
            self.push_entry(Stored::Memory(payload), timestamp_ms, size, kind);
        }
        Ok(())
    }

    /// Appends an entry of `len` payload bytes with the next sequence number: the one
    /// place that counts a message in.
    fn push_entry(&mut self, stored: Stored, timestamp_ms: u64, len: usize, kind: MessageKind) {
        let counts = &mut self.counts[kind.index()];
        counts.queued += 1;
        counts.held += 1;
        counts.held_bytes += len as u64;
        self.bytes += len;
        if matches!(stored, Stored::Memory(_) | Stored::DiskAndMemory(_)) {
            self.mem_bytes += len;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push_back(Entry {
            seq,
            timestamp_ms,
            len,
            kind,
            stored,
        });
    }

    /// Writes the records staged in the disk log (one write). When that fails, the
    /// staged messages are held in memory only (possibly beyond the memory budget,
    /// which [`push_batch`](Self::push_batch) restores) and the disk is degraded.
    fn commit_disk(&mut self) {
        let Some(disk) = self.disk.as_mut() else {
            return;
        };
        let staged = std::mem::take(&mut disk.staged);
        let Err(e) = disk.log.commit() else {
            return;
        };
        disk.degrade(&e);
        // The staged records are the newest on-disk entries (some may have been dropped
        // from the front since they were staged).
        let mut payloads = staged.into_iter().rev();
        for entry in self.entries.iter_mut().rev() {
            if !entry.on_disk() {
                continue;
            }
            let Some(payload) = payloads.next() else {
                break;
            };
            if matches!(entry.stored, Stored::Disk) {
                self.mem_bytes += entry.len;
            }
            entry.stored = Stored::Memory(payload);
        }
    }

    /// After a failed commit moved messages of this batch (sequence numbers from
    /// `first_seq`) to memory: spills or drops until the memory budget holds again,
    /// and corrects the batch's outcomes for what was dropped.
    fn enforce_memory_budget(&mut self, first_seq: u64, outcomes: &mut [PushOutcome]) {
        // The outcome of the message with sequence number `seq`, if it was queued in
        // this batch: queued messages got consecutive numbers, in outcome order.
        let queued: Vec<usize> = (0..outcomes.len())
            .filter(|&i| matches!(outcomes[i], PushOutcome::Queued { .. }))
            .collect();
        while self.mem_bytes > self.limits.max_bytes {
            if self.spill_one_payload() {
                continue;
            }
            match self.limits.policy {
                FullPolicy::DropOldest => {
                    if !self.drop_oldest_in_memory() {
                        break;
                    }
                    if let Some(&last) = queued.last() {
                        if let PushOutcome::Queued { dropped_oldest } = &mut outcomes[last] {
                            *dropped_oldest += 1;
                        }
                    }
                }
                policy @ (FullPolicy::DropNewest | FullPolicy::Refuse) => {
                    let newest = self.entries.len() - 1;
                    let seq = self.entries[newest].seq;
                    if seq < first_seq || newest < self.in_flight {
                        break;
                    }
                    self.drop_at(newest);
                    let index = queued[(seq - first_seq) as usize];
                    outcomes[index] = if policy == FullPolicy::Refuse {
                        PushOutcome::Refused
                    } else {
                        PushOutcome::DroppedNewest
                    };
                }
            }
        }
    }

    /// See [`MessageQueue::take_batch`](crate::MessageQueue::take_batch). With
    /// `from_disk` false, stops before the first message held only on disk (no I/O).
    pub(crate) fn take_batch(
        &mut self,
        max_messages: usize,
        max_bytes: usize,
        from_disk: bool,
    ) -> Vec<Message> {
        let in_flight_cap = self.limits.max_bytes / 2;
        let mut batch = Vec::new();
        let mut bytes = 0;
        // Records read from disk for this batch, and the log position of the next one.
        let mut disk_pos = self.in_flight_on_disk;
        let mut read_ahead: VecDeque<Bytes> = VecDeque::new();
        while batch.len() < max_messages {
            let Some(entry) = self.entries.get(self.in_flight) else {
                break;
            };
            let size = entry.len;
            if !batch.is_empty() && bytes + size > max_bytes {
                break;
            }
            if self.in_flight > 0 && self.in_flight_bytes + size > in_flight_cap {
                break;
            }
            let payload = match &entry.stored {
                Stored::DiskAndMemory(p) => {
                    // Keep the read-ahead in step with the log position.
                    read_ahead.pop_front();
                    p.clone()
                }
                Stored::Memory(p) => p.clone(),
                Stored::Disk if !from_disk => break,
                Stored::Disk => {
                    if read_ahead.is_empty() {
                        let disk = self
                            .disk
                            .as_mut()
                            .expect("entries stored on disk only exist with a disk log");
                        match disk.log.read(disk_pos, max_messages - batch.len()) {
                            Ok(records) => {
                                read_ahead = records
                                    .into_iter()
                                    .map(|r| Bytes::from(r.payload))
                                    .collect()
                            }
                            Err(e) => {
                                let dir = disk.log.dir().display().to_string();
                                crate::log_limit::global().error(&dir, "disk read", &format!(
                                    "disk cache: cannot read queued messages back; will retry dir={dir} error={e}"));
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
            if entry.on_disk() {
                disk_pos += 1;
                self.in_flight_on_disk += 1;
            }
            batch.push(Message {
                seq: entry.seq,
                payload,
                timestamp_ms: entry.timestamp_ms,
                kind: entry.kind,
            });
            bytes += size;
            self.in_flight += 1;
            self.in_flight_bytes += size;
        }
        batch
    }

    /// See [`MessageQueue::confirm`](crate::MessageQueue::confirm): data messages and
    /// bytes; every kind is tallied in `counts`.
    pub(crate) fn confirm(&mut self, up_to: u64) -> (u64, u64) {
        let (mut count, mut bytes, mut from_disk) = (0u64, 0u64, 0u64);
        while self.in_flight > 0 && self.entries.front().is_some_and(|e| e.seq <= up_to) {
            let e = self.remove_at(0).expect("front exists");
            if e.on_disk() {
                from_disk += 1;
            }
            self.counts[e.kind.index()].confirmed += 1;
            if e.kind == MessageKind::Data {
                count += 1;
                bytes += e.len as u64;
            }
        }
        self.pop_disk(from_disk);
        (count, bytes)
    }

    /// Moves every in-flight message back to waiting; returns how many.
    pub(crate) fn rewind(&mut self) -> usize {
        self.in_flight_bytes = 0;
        self.in_flight_on_disk = 0;
        std::mem::take(&mut self.in_flight)
    }

    /// Whether the next waiting message is held only on disk (taking it needs I/O).
    pub(crate) fn next_waiting_on_disk_only(&self) -> bool {
        self.entries
            .get(self.in_flight)
            .is_some_and(|e| matches!(e.stored, Stored::Disk))
    }

    pub(crate) fn last_in_flight_seq(&self) -> Option<u64> {
        self.in_flight
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map(|m| m.seq)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub(crate) fn waiting(&self) -> usize {
        self.entries.len() - self.in_flight
    }

    pub(crate) fn occupancy(&self) -> (usize, usize) {
        (self.entries.len(), self.bytes)
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.mem_bytes
    }

    pub(crate) fn counts(&self, kind: MessageKind) -> KindCounts {
        self.counts[kind.index()]
    }

    /// See [`MessageQueue::sync`](crate::MessageQueue::sync).
    pub(crate) fn sync(&mut self) -> u64 {
        let Some(disk) = self.disk.as_mut() else {
            return 0;
        };
        if let Some(what) = disk.log.check_location() {
            return self.rebuild_disk(what) as u64;
        }
        self.flush_removals();
        let Some(disk) = self.disk.as_mut() else {
            return 0;
        };
        if let Err(e) = disk.log.tick() {
            let dir = disk.log.dir().display().to_string();
            crate::log_limit::global().warn(
                &dir,
                "disk sync",
                &format!("disk cache: sync failed dir={dir} error={e}"),
            );
        }
        0
    }

    /// Whether a batch may be written in the pushing task (see
    /// [`MessageQueue::push_all`](crate::MessageQueue)): the disk is in use and the
    /// write will be a plain `write` into the page cache, with no `fdatasync` due,
    /// no segment files to delete and no `head` to rewrite first.
    pub(crate) fn cheap_to_write(&self) -> bool {
        self.disk.as_ref().is_some_and(|d| {
            d.degraded_since.is_none() && !d.log.sync_due() && !d.log.removals_pending()
        })
    }

    /// Whether confirmations left disk work (segment files to delete, a `head` write
    /// due) that the next batch of pushes or the timer should do.
    pub(crate) fn removals_pending(&self) -> bool {
        self.disk.as_ref().is_some_and(|d| d.log.removals_pending())
    }

    /// Deletes segment files that confirmations emptied and writes `head` when due
    /// (blocking I/O).
    pub(crate) fn flush_removals(&mut self) {
        let Some(disk) = self.disk.as_mut() else {
            return;
        };
        if let Err(e) = disk.log.flush_removals() {
            // The records stay on disk and would be sent again after a restart: a
            // duplicate, never a loss. Once a minute per directory, not once per batch.
            let dir = disk.log.dir().display().to_string();
            crate::log_limit::global().error(
                &dir,
                "disk remove",
                &format!("disk cache: cannot remove delivered messages dir={dir} error={e}"),
            );
        }
    }

    /// The cache's files were deleted or replaced (`what`): says so (once, through the
    /// shared rate limiter), and writes every message still queued, in order, into a
    /// fresh log in the same directory, so that a later crash loses none of them.
    /// Payloads held only on disk are read back through the log's open handles or
    /// paths; one that cannot be read any more is dropped: counted in the log line and
    /// in the kinds' `dropped`, and the data messages among them returned.
    fn rebuild_disk(&mut self, what: &str) -> usize {
        let data_dropped = self.counts[MessageKind::Data.index()].dropped;
        let Some(disk) = self.disk.as_mut() else {
            return 0;
        };
        let dir = disk.log.dir().display().to_string();
        // Every payload, in order: from memory, or read back from the old files.
        let mut payloads: Vec<Option<Bytes>> = Vec::with_capacity(self.entries.len());
        let mut disk_pos = 0u64;
        for e in &self.entries {
            let payload = match &e.stored {
                Stored::Memory(p) | Stored::DiskAndMemory(p) => Some(p.clone()),
                Stored::Disk => disk
                    .log
                    .read(disk_pos, 1)
                    .ok()
                    .and_then(|mut r| r.pop())
                    .map(|r| Bytes::from(r.payload)),
            };
            disk_pos += u64::from(e.on_disk());
            payloads.push(payload);
        }
        // What could not be read back is gone: take it out of the queue.
        let mut lost = 0usize;
        let mut lost_by_kind = [0u64; MessageKind::ALL.len()];
        for i in (0..self.entries.len()).rev() {
            if payloads[i].is_none() {
                if let Some(e) = self.remove_at(i) {
                    lost_by_kind[e.kind.index()] += 1;
                }
                payloads.remove(i);
                lost += 1;
            }
        }
        self.count_lost(lost_by_kind);
        let disk = self.disk.as_mut().expect("checked above");
        disk.staged.clear();
        let records: Vec<(u64, &[u8])> = self
            .entries
            .iter()
            .zip(&payloads)
            .map(|(e, p)| {
                (
                    kind::to_disk(e.timestamp_ms, e.kind),
                    p.as_deref().expect("kept above"),
                )
            })
            .collect();
        let result = disk.log.reset(&records);
        crate::log_limit::global().error(
            &dir,
            "disk cache replaced",
            &format!(
                "disk cache: {what}; writing the {} queued messages into it again dir={dir}{}{}",
                records.len(),
                if lost > 0 {
                    format!(" lost={lost} (held only in the deleted files)")
                } else {
                    String::new()
                },
                match &result {
                    Ok(()) => String::new(),
                    Err(e) => format!(" error={e} (keeping them in memory)"),
                }
            ),
        );
        drop(records);
        let on_disk = result.is_ok();
        if !on_disk {
            disk.degraded_since = Some(Instant::now());
        }
        // Every entry is now on disk (or, if the reset failed, in memory only).
        self.in_flight_on_disk = 0;
        self.mem_bytes = 0;
        for (i, (e, p)) in self.entries.iter_mut().zip(payloads).enumerate() {
            let p = p.expect("kept above");
            let was_in_memory = e.in_memory().is_some();
            e.stored = match (on_disk, was_in_memory) {
                (true, true) => Stored::DiskAndMemory(p),
                (true, false) => Stored::Disk,
                (false, _) => Stored::Memory(p),
            };
            if e.in_memory().is_some() {
                self.mem_bytes += e.len;
            }
            if i < self.in_flight && on_disk {
                self.in_flight_on_disk += 1;
            }
        }
        if !on_disk {
            // Payloads read back from the old files now count against memory.
            let mut outcomes = [];
            self.enforce_memory_budget(self.next_seq, &mut outcomes);
        }
        (self.counts[MessageKind::Data.index()].dropped - data_dropped) as usize
    }

    /// See [`MessageQueue::close_for_shutdown`](crate::MessageQueue::close_for_shutdown):
    /// returns the data messages lost; every kind's losses are tallied as dropped.
    pub(crate) fn close_for_shutdown(&mut self) -> usize {
        let entries = std::mem::take(&mut self.entries);
        self.in_flight = 0;
        self.in_flight_bytes = 0;
        self.in_flight_on_disk = 0;
        self.bytes = 0;
        self.mem_bytes = 0;
        for counts in &mut self.counts {
            counts.held = 0;
            counts.held_bytes = 0;
        }
        let mut lost = [0u64; MessageKind::ALL.len()];
        let Some(disk) = self.disk.as_mut() else {
            for e in &entries {
                lost[e.kind.index()] += 1;
            }
            return self.count_lost(lost);
        };
        let mut persisted = 0;
        for e in &entries {
            if let Stored::Memory(payload) = &e.stored {
                if disk
                    .log
                    .append(kind::to_disk(e.timestamp_ms, e.kind), payload)
                    .is_ok()
                {
                    persisted += 1;
                } else {
                    lost[e.kind.index()] += 1;
                }
            }
        }
        if let Err(e) = disk.log.sync() {
            warn!(dir = %disk.log.dir().display(), error = %e, "disk cache: final sync failed");
        }
        if persisted > 0 {
            info!(dir = %disk.log.dir().display(), messages = persisted,
                "disk cache: messages held in memory were written to disk for the next start");
        }
        self.count_lost(lost)
    }

    /// Tallies messages lost at shutdown (per kind) as dropped; returns the data ones.
    fn count_lost(&mut self, lost: [u64; MessageKind::ALL.len()]) -> usize {
        for kind in MessageKind::ALL {
            self.counts[kind.index()].dropped += lost[kind.index()];
        }
        lost[MessageKind::Data.index()] as usize
    }

    /// Removes the entry at `index` and updates every counter: the one place that
    /// counts a message out (the disk log is popped by the caller).
    fn remove_at(&mut self, index: usize) -> Option<Entry> {
        let e = self.entries.remove(index)?;
        let counts = &mut self.counts[e.kind.index()];
        counts.held -= 1;
        counts.held_bytes -= e.len as u64;
        self.bytes -= e.len;
        if e.in_memory().is_some() {
            self.mem_bytes -= e.len;
        }
        if index < self.in_flight {
            self.in_flight -= 1;
            self.in_flight_bytes -= e.len;
            if e.on_disk() {
                self.in_flight_on_disk -= 1;
            }
        }
        Some(e)
    }

    /// Removes `n` records from the disk log's front (they left the queue).
    fn pop_disk(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(disk) = self.disk.as_mut() {
            // Index only: deleting emptied segments and writing `head` is left to the
            // writer's next batch or the timer, so a confirmation needs no blocking
            // thread.
            let result = disk.log.remove_front(n);
            // Staged records are the newest: a drop that reached them unstaged some.
            let unstaged = disk.staged.len().saturating_sub(disk.log.staged() as usize);
            disk.staged.drain(..unstaged);
            if let Err(e) = result {
                // The records stay on disk and would be sent again after a restart: a
                // duplicate, never a loss.
                // Once a minute per directory, not once per message.
                let dir = disk.log.dir().display().to_string();
                crate::log_limit::global().error(
                    &dir,
                    "disk remove",
                    &format!("disk cache: cannot remove delivered messages dir={dir} error={e}"),
                );
            }
        }
    }

    /// Drops the entry at `index` to make room, from the disk log too.
    fn drop_at(&mut self, index: usize) -> bool {
        match self.remove_at(index) {
            Some(e) => {
                self.counts[e.kind.index()].dropped += 1;
                if e.on_disk() {
                    // Only the front on-disk entry is ever dropped, matching the log's front.
                    self.pop_disk(1);
                }
                true
            }
            None => false,
        }
    }

    /// Drops the oldest waiting driver-state message that can leave from where it is (a
    /// memory-only one from anywhere, an on-disk one only from the log's front) to make
    /// room: a stale state is worthless, and a fresh one follows. With `need_disk`, only
    /// one whose removal frees disk space. Returns false when there is none (at once
    /// when no state message is held, so data-only queues pay nothing).
    fn drop_stale_state(&mut self, need_disk: bool) -> bool {
        if self.counts[MessageKind::DriverState.index()].held == 0 {
            return false;
        }
        let first_on_disk = self.entries.iter().position(Entry::on_disk);
        let found = (self.in_flight..self.entries.len()).find(|&i| {
            let e = &self.entries[i];
            e.kind == MessageKind::DriverState
                && if e.on_disk() {
                    Some(i) == first_on_disk
                } else {
                    !need_disk
                }
        });
        found.is_some_and(|i| self.drop_at(i))
    }

    /// Drops the oldest entry to make room. Prefers a waiting one (an in-flight message is
    /// on the wire and will probably arrive) when `prefer_waiting`; with a disk log only the
    /// front can be removed, so disk pressure drops from the front. Returns false when the
    /// queue is empty.
    fn drop_one_oldest(&mut self, prefer_waiting: bool) -> bool {
        let first_waiting_in_memory = self
            .entries
            .get(self.in_flight)
            .is_some_and(|e| !e.on_disk());
        let index = if prefer_waiting && first_waiting_in_memory {
            self.in_flight
        } else {
            let no_disk = self.disk.is_none();
            match self.entries.iter().position(|e| e.on_disk() || no_disk) {
                Some(i) => i,
                None => return false,
            }
        };
        self.drop_at(index)
    }

    /// Drops the oldest waiting memory-only entry (or, failing that, the oldest memory-only
    /// one). Entries on disk cannot leave from the middle of the log, and their payloads
    /// were already spilled by the caller.
    fn drop_oldest_in_memory(&mut self) -> bool {
        let memory_only = |e: &Entry| matches!(e.stored, Stored::Memory(_));
        let waiting = (self.in_flight..self.entries.len()).find(|&i| memory_only(&self.entries[i]));
        let any = || self.entries.iter().position(memory_only);
        match waiting.or_else(any) {
            Some(i) => self.drop_at(i),
            None => {
                // Only on-disk entries hold memory: drop from the front like the disk does.
                if self.entries.iter().any(|e| e.in_memory().is_some()) {
                    self.drop_at(0)
                } else {
                    false
                }
            }
        }
    }

    /// Frees memory without losing anything: leaves the payload of the newest waiting
    /// on-disk entry on disk only. Returns false when there is none.
    fn spill_one_payload(&mut self) -> bool {
        let in_flight = self.in_flight;
        let Some(e) = self
            .entries
            .iter_mut()
            .skip(in_flight)
            .rev()
            .find(|e| matches!(e.stored, Stored::DiskAndMemory(_)))
        else {
            return false;
        };
        e.stored = Stored::Disk;
        self.mem_bytes -= e.len;
        true
    }

    /// Recomputes every counter from the entries and compares (skipped above
    /// [`INVARIANT_SCAN_LIMIT`] entries). Checked after every operation in debug builds.
    pub(crate) fn counters_match(&self) -> bool {
        if self.entries.len() > INVARIANT_SCAN_LIMIT {
            return true;
        }
        let (mut bytes, mut mem, mut in_flight_bytes, mut in_flight_on_disk) = (0, 0, 0, 0);
        let mut on_disk = 0;
        let mut previous_seq = 0;
        let mut held = [(0u64, 0u64); MessageKind::ALL.len()];
        for (i, e) in self.entries.iter().enumerate() {
            held[e.kind.index()].0 += 1;
            held[e.kind.index()].1 += e.len as u64;
            if e.seq <= previous_seq || e.seq >= self.next_seq {
                return false;
            }
            previous_seq = e.seq;
            if e.in_memory().is_some_and(|p| p.len() != e.len) {
                return false;
            }
            bytes += e.len;
            if e.in_memory().is_some() {
                mem += e.len;
            }
            on_disk += u64::from(e.on_disk());
            if i < self.in_flight {
                in_flight_bytes += e.len;
                in_flight_on_disk += u64::from(e.on_disk());
            }
        }
        self.in_flight <= self.entries.len()
            && bytes == self.bytes
            && mem == self.mem_bytes
            && in_flight_bytes == self.in_flight_bytes
            && in_flight_on_disk == self.in_flight_on_disk
            && (self.disk.is_some() || on_disk == 0)
            && MessageKind::ALL.iter().all(|k| {
                let c = &self.counts[k.index()];
                held[k.index()] == (c.held, c.held_bytes)
            })
    }

    /// Test access: each entry's payload (as text, empty when on disk only) and kind.
    #[cfg(test)]
    pub(crate) fn entries_for_test(&self) -> Vec<(String, MessageKind)> {
        self.entries
            .iter()
            .map(|e| {
                let text = e
                    .in_memory()
                    .map(|p| String::from_utf8_lossy(p).into_owned());
                (text.unwrap_or_default(), e.kind)
            })
            .collect()
    }

    /// Test access: batches written to the disk log since it was opened.
    #[cfg(test)]
    pub(crate) fn disk_commits(&self) -> u64 {
        self.disk.as_ref().map_or(0, |d| d.log.commits())
    }

    /// Test access: whether each entry is in the disk log, oldest first.
    #[cfg(test)]
    pub(crate) fn on_disk_flags(&self) -> Vec<bool> {
        self.entries.iter().map(Entry::on_disk).collect()
    }
}
