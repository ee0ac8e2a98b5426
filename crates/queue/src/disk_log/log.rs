//! The log itself: open (with recovery), append, read, pop, sync.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::{is_disk_full_io, DiskLogError};
use super::format::*;
use super::scan::scan_segment;

/// The segment size [`DiskLogOptions::new`] picks: large enough that segment files are
/// few, small enough that a removed-but-not-yet-deleted segment wastes little disk.
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 << 20;

/// The largest accepted [`DiskLogOptions::segment_bytes`]. Record offsets inside a
/// segment are indexed in memory as `u32` (4 bytes per cached message), which this
/// limit keeps valid.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;

/// Closed segments whose sync waits for the next interval sync, at most: beyond, they
/// are synced when the next one starts (only very small segments or a long interval
/// get there), so that their open handles stay few.
const MAX_CLOSED_UNSYNCED: usize = 8;

/// The [`DiskLogOptions::head_interval`] [`DiskLogOptions::new`] picks: after `kill -9`
/// at most about one second of confirmations is resent, and a busy log writes its
/// `head` once a second instead of once per confirmation.
pub const DEFAULT_HEAD_INTERVAL: Duration = Duration::from_secs(1);

/// When appended records are forced from the kernel's cache to the device.
///
/// This only matters for power cuts and kernel crashes: a record whose
/// [`DiskLog::append`] returned survives the death of the process in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Sync before `append` (and `pop_front`) return: nothing acknowledged is lost
    /// even by a power cut. Costs one or two device flushes per call, which also
    /// wears flash storage: prefer `Interval` for high message rates.
    Always,
    /// Sync on `append` when at least this long has passed since the last sync, and
    /// whenever the caller calls [`DiskLog::sync`] (from a timer, so that a quiet
    /// period does not leave records unsynced): a power cut loses at most about
    /// this much.
    Interval(Duration),
    /// Never sync (except on an explicit [`DiskLog::sync`]); the kernel writes back
    /// within its own delay, typically 30 s on Linux.
    Never,
}

/// How to open a [`DiskLog`]: [`DiskLogOptions::new`], then the `with_*` setters.
/// `#[non_exhaustive]`, so that a new option is not a breaking change; the fields stay
/// public for reading (and assigning).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskLogOptions {
    /// The directory holding the log; created if missing. One log per directory:
    /// two `DiskLog`s on the same directory would corrupt each other.
    pub dir: PathBuf,
    /// The most bytes the records in the log may take (payloads plus
    /// [`RECORD_HEADER_LEN`] each); [`DiskLog::append`] returns
    /// [`DiskLogError::Full`] beyond it. The files can exceed it by up to about one
    /// segment, because removed records at the start of the oldest segment are only
    /// freed when the whole segment has been removed, and because a spare (a wholly
    /// removed segment kept for recycling) is kept only when all files fit in
    /// `max_bytes` at that moment, while the segment being written may then grow until
    /// it is full and the next one reuses a spare.
    pub max_bytes: u64,
    /// Size at which a new segment file is started, at most [`MAX_SEGMENT_BYTES`];
    /// values above `max_bytes` act as `max_bytes`.
    pub segment_bytes: u64,
    /// When appends reach the device, see [`SyncPolicy`].
    pub sync: SyncPolicy,
    /// The shortest time between two writes of the `head` file by
    /// [`DiskLog::pop_front`]; [`DiskLog::persist_head`] and [`DiskLog::sync`] write it
    /// whenever it changed. Removals not yet written come back after a crash: a
    /// duplicate, never a loss, so this bounds the duplicates `kill -9` causes.
    pub head_interval: Duration,
}

impl DiskLogOptions {
    /// Options for a log in `dir` holding up to `max_bytes`, with
    /// [`DEFAULT_SEGMENT_BYTES`] segments and the safest policy,
    /// [`SyncPolicy::Always`].
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        DiskLogOptions {
            dir: dir.into(),
            max_bytes,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            sync: SyncPolicy::Always,
            head_interval: DEFAULT_HEAD_INTERVAL,
        }
    }

    /// Sets [`segment_bytes`](Self::segment_bytes).
    #[must_use]
    pub fn with_segment_bytes(mut self, segment_bytes: u64) -> Self {
        self.segment_bytes = segment_bytes;
        self
    }

    /// Sets [`sync`](Self::sync).
    #[must_use]
    pub fn with_sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }

    /// Sets [`head_interval`](Self::head_interval).
    #[must_use]
    pub fn with_head_interval(mut self, head_interval: Duration) -> Self {
        self.head_interval = head_interval;
        self
    }
}

/// What [`DiskLog::open`] found in the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Records recovered (not yet removed), now in the log.
    pub records: u64,
    /// Bytes those records take, as [`DiskLog::bytes`] counts them.
    pub bytes: u64,
    /// Damaged stretches skipped inside the segments: each one is a run of bytes
    /// between valid records (or after the last record of an older segment) that
    /// holds no valid record; the records in it, if any, are lost.
    pub damaged_regions: u64,
    /// Bytes in those damaged regions.
    pub skipped_bytes: u64,
    /// Bytes cut from the end of the newest segment because they hold no complete
    /// valid record: normally a record torn by a crash or power cut mid-write.
    /// A torn record was never acknowledged by `append` (unless the device lost data
    /// it said was synced), so nothing acknowledged is lost with it.
    pub truncated_bytes: u64,
    /// The `head` file existed but was damaged, so the oldest segment was read from
    /// its start: records already removed from it may come back.
    pub head_reset: bool,
    /// Bytes past the last valid record of a recycled segment file that it held in its
    /// previous life: expected leftovers, not damage, so not in
    /// [`found_damage`](Self::found_damage).
    pub stale_bytes: u64,
    /// Records found before the position a valid `head` names (in segments numbered
    /// below it, or in its segment when it points past that file's end), skipped as
    /// already removed. Normally 0: removal deletes segments before moving the head.
    pub skipped_by_head: u64,
}

impl Recovery {
    /// True when something was skipped, truncated or reset, that is when the caller
    /// should log what was found.
    pub fn found_damage(&self) -> bool {
        self.damaged_regions > 0
            || self.truncated_bytes > 0
            || self.head_reset
            || self.skipped_by_head > 0
    }
}

/// One segment file and the records in it that have not been removed.
struct Segment {
    id: u64,
    path: PathBuf,
    /// Start offset of each record not yet removed, oldest first. `u32` halves the
    /// memory per cached message; `MAX_SEGMENT_BYTES` keeps every start below 4 GiB.
    offsets: VecDeque<u32>,
    /// End of the last valid record: where the next append goes, for the segment
    /// being written.
    end: u64,
    /// Size of the file on disk (bytes before the first record may be removed ones,
    /// bytes past `end` stale ones from a previous life).
    file_len: u64,
    /// Bytes of the file from its previous life (0 for a new file): its header's
    /// stale extent.
    stale_len: u64,
    /// The file holds no version-1 record (it starts with a version-2 header), so it
    /// may be recycled: a version-1 record would pass its CRC in any life.
    recyclable: bool,
}

impl Segment {
    /// Bytes from the oldest record still in the segment to the end of the newest.
    fn live_bytes(&self) -> u64 {
        match self.offsets.front() {
            Some(&first) => self.end - u64::from(first),
            None => 0,
        }
    }
}

/// A crash-safe, checksummed, segmented FIFO of timestamped records on disk.
///
/// See the [module documentation](super) for the guarantees and the file format.
pub struct DiskLog {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    sync: SyncPolicy,
    /// Oldest first. Every segment holds at least one record, except possibly the
    /// last one while it is being appended to (`writer` is `Some`).
    segments: VecDeque<Segment>,
    /// Write handle of the last segment, which this process created or recycled;
    /// written at explicit offsets (a recycled file is overwritten, not appended to). `None` until the first append after `open`, and after the last
    /// segment was deleted or could not be repaired after a failed write.
    writer: Option<File>,
    /// Read handle, kept for the segment read last because consumption is sequential.
    reader: Option<(u64, File)>,
    next_id: u64,
    len: u64,
    bytes: u64,
    disk_bytes: u64,
    /// The removal position: first segment number and byte offset.
    head: (u64, u64),
    /// `head` on disk matches `self.head`.
    head_written: bool,
    /// ... and was synced.
    head_synced: bool,
    /// Open handle of the `head` file, overwritten in place (see [`Self::write_head`]).
    head_file: Option<File>,
    head_interval: Duration,
    last_head_write: Instant,
    /// Appended data not yet synced.
    data_unsynced: bool,
    /// A segment file was created since the directory was last synced.
    dir_unsynced: bool,
    last_sync: Instant,
    /// Records staged by [`DiskLog::stage`] and not yet written: encoded back to back
    /// so that a whole batch reaches the file in one `write`. (Tried: a `writev` of
    /// each record's header and the caller's payload, to skip this copy; the kernel's
    /// share of the write grew by more than the copy cost, see docs/benchmarks.md.)
    write_buf: Vec<u8>,
    /// How many staged records are still in the index (the newest ones of it); fewer
    /// than `write_buf` holds when removals reached them before the commit.
    staged: u64,
    /// Offset in the tail segment where the staged records go.
    staged_start: u64,
    /// Segments closed since the last sync with appended data not yet synced
    /// ([`SyncPolicy::Interval`]): the next sync covers them, so starting a segment
    /// never waits for the device.
    closed_unsynced: Vec<(u64, File)>,
    /// The spare segment files ([`SPARE_FILES`]) and their lengths, the most recently
    /// retired last: wholly removed segments kept to be overwritten by the next
    /// segments instead of deleting one file and creating another, because
    /// overwriting pages the kernel still caches costs about half of appending to a
    /// new file (docs/benchmarks.md). Counted in `disk_bytes`.
    spares: Vec<(&'static str, u64)>,
    /// Segments whose records were all removed by [`DiskLog::remove_front`], deleted by
    /// the next [`DiskLog::flush_removals`] (always before `head` is written).
    retired: Vec<Segment>,
    /// Device and inode of the directory when it was opened (Unix), to notice that it
    /// was deleted or replaced: see [`DiskLog::check_location`].
    dir_identity: Option<(u64, u64)>,
    /// Batches written by [`DiskLog::commit`] since `open`.
    commits: u64,
    /// Files synced (`fdatasync`) since `open`.
    data_syncs: u64,
}

impl DiskLog {
    /// Opens the log in `options.dir`, creating the directory if needed, and recovers
    /// the records left there by a previous run, salvaging damaged files record by
    /// record (see [`Recovery`]). Damage is never an error; failing to list or read
    /// the directory is.
    pub fn open(options: DiskLogOptions) -> Result<(DiskLog, Recovery), DiskLogError> {
        let DiskLogOptions {
            dir,
            max_bytes,
            segment_bytes,
            sync,
            head_interval,
        } = options;
        check_sizes(max_bytes, segment_bytes)?;
        fs::create_dir_all(&dir)
            .map_err(|e| DiskLogError::io(&dir, "create the cache directory", e))?;
        // A leftover from a crash between writing and renaming: the rename never
        // happened, so `head` still holds the previous, valid position.
        remove_if_exists(&dir.join(HEAD_TMP_FILE));

        let mut recovery = Recovery::default();
        let ids = list_segments(&dir)?;
        let head = match read_head(&dir)? {
            HeadFile::Valid(seg, offset) => Some((seg, offset)),
            HeadFile::Missing => None,
            HeadFile::Damaged => {
                recovery.head_reset = true;
                None
            }
        };
        // Without a valid head, nothing counts as removed: re-delivery rather than loss.
        let (head_seg, head_offset) = head.unwrap_or((ids.first().copied().unwrap_or(0), 0));

        let mut segments = VecDeque::new();
        let last_id = ids.last().copied();
        for &id in &ids {
            let path = segment_path(&dir, id);
            if id < head_seg {
                // Fully removed by the head, yet still here: removal deletes a segment
                // before moving the head past it, so this is a failed deletion or a
                // head from elsewhere. Count what it drops, then delete it.
                recovery.skipped_by_head += count_records(&path, id);
                remove_or_warn(&path);
                continue;
            }
            let start = if id == head_seg {
                let file_len = fs::metadata(&path)
                    .map_err(|e| DiskLogError::io(&path, "read segment", e))?
                    .len();
                if head_offset > file_len {
                    // A head past the end of its own segment: nothing of it is kept.
                    recovery.skipped_by_head += count_records(&path, id);
                }
                head_offset
            } else {
                0
            };
            if let Some(segment) =
                recover_segment(id, path, start, Some(id) == last_id, &mut recovery)?
            {
                segments.push_back(segment);
            }
        }

        let highest = last_id.unwrap_or(0).max(head_seg);
        // New segments must number above the head's segment, or their first records
        // would count as removed.
        let next_id = highest
            .checked_add(1)
            .ok_or_else(|| DiskLogError::InvalidOptions {
                field: "dir",
                reason: format!(
                    "({}) holds a segment numbered {highest}, leaving no number for new ones: \
                     move its files away",
                    dir.display()
                ),
            })?;

        let len = segments.iter().map(|s| s.offsets.len() as u64).sum();
        let bytes = segments.iter().map(Segment::live_bytes).sum();
        let segment_bytes_on_disk: u64 = segments.iter().map(|s| s.file_len).sum();
        let spares = find_spares(&dir, max_bytes.saturating_sub(segment_bytes_on_disk));
        let disk_bytes = segment_bytes_on_disk + spares.iter().map(|&(_, len)| len).sum::<u64>();
        recovery.records = len;
        recovery.bytes = bytes;
        if recovery.skipped_by_head > 0 {
            tracing::warn!(
                dir = %dir.display(),
                records = recovery.skipped_by_head,
                "disk cache: the head file points past records still on disk; skipping them as already delivered"
            );
        }
        let head = match segments.front() {
            Some(seg) => (seg.id, u64::from(seg.offsets[0])),
            None => (next_id, 0),
        };
        let log = DiskLog {
            dir,
            max_bytes,
            segment_bytes: segment_bytes.min(max_bytes),
            sync,
            segments,
            writer: None,
            reader: None,
            next_id,
            len,
            bytes,
            disk_bytes,
            head,
            // The file may say less than `head` (fully removed segments were skipped),
            // but both mean the same records, so it needs no rewrite now.
            head_written: true,
            head_synced: true,
            head_file: None,
            head_interval,
            last_head_write: Instant::now(),
            data_unsynced: false,
            dir_unsynced: false,
            last_sync: Instant::now(),
            write_buf: Vec::new(),
            staged: 0,
            staged_start: 0,
            closed_unsynced: Vec::new(),
            spares,
            retired: Vec::new(),
            dir_identity: None,
            commits: 0,
            data_syncs: 0,
        };
        let mut log = log;
        log.dir_identity = identity(&log.dir);
        Ok((log, recovery))
    }

    /// Appends a record at the end of the log: [`stage`](Self::stage) then
    /// [`commit`](Self::commit).
    ///
    /// On `Ok` the record is in the kernel's hands (and on the device under
    /// [`SyncPolicy::Always`]). On error nothing was stored: [`DiskLogError::Full`]
    /// and [`DiskLogError::TooLarge`] before any I/O, an `Io` error after truncating
    /// whatever part of the record was written.
    pub fn append(&mut self, timestamp_ms: u64, payload: &[u8]) -> Result<(), DiskLogError> {
        self.stage(timestamp_ms, payload)?;
        self.commit()
    }

    /// Adds a record to the log's index and to the write buffer, without I/O unless a
    /// new segment must be started. [`commit`](Self::commit) writes every staged record
    /// in one `write`: group commit. Until then the records count against `max_bytes`
    /// but must not be read.
    ///
    /// Starting a new segment (when the record does not fit in the current one) first
    /// commits what is staged; a caller that needs to know which records a failed write
    /// undid checks [`would_start_segment`](Self::would_start_segment) and commits
    /// first itself. On error this record is not staged.
    pub fn stage(&mut self, timestamp_ms: u64, payload: &[u8]) -> Result<(), DiskLogError> {
        let size = RECORD_HEADER_LEN as u64 + payload.len() as u64;
        if payload.len() as u64 > u64::from(u32::MAX) || size > self.max_bytes {
            return Err(DiskLogError::TooLarge {
                len: payload.len() as u64,
                max_bytes: self.max_bytes,
            });
        }
        if self.bytes + size > self.max_bytes {
            return Err(DiskLogError::Full);
        }
        if self.would_start_segment(payload.len()) {
            self.commit()?;
            self.start_segment()?;
        }
        let tail = self
            .segments
            .back_mut()
            .expect("start_segment leaves a tail");
        let start = tail.end;
        if self.write_buf.is_empty() {
            self.staged_start = start;
        }
        encode_record(&mut self.write_buf, tail.id, timestamp_ms, payload);
        let start32 = u32::try_from(start).expect("record starts stay below segment_bytes");
        // `self.head` needs no change: when the log was empty it already pointed at
        // `start` (or at a segment number no higher than this one's, from 0).
        tail.offsets.push_back(start32);
        tail.end = start + size;
        if tail.end > tail.file_len {
            // Past the previous life's bytes of a recycled file, the file grows.
            self.disk_bytes += tail.end - tail.file_len;
            tail.file_len = tail.end;
        }
        self.len += 1;
        self.bytes += size;
        self.staged += 1;
        Ok(())
    }

    /// Whether staging a record of `payload_len` bytes would start a new segment (and
    /// so commit what is staged first).
    pub fn would_start_segment(&self, payload_len: usize) -> bool {
        let size = RECORD_HEADER_LEN as u64 + payload_len as u64;
        match (&self.writer, self.segments.back()) {
            (Some(_), Some(tail)) => {
                !(tail.end <= SEGMENT_HEADER_LEN as u64 || tail.end + size <= self.segment_bytes)
            }
            _ => true,
        }
    }

    /// Batches of records written (one `write` each) since the log was opened: with
    /// [`len`](Self::len) of what was appended, how well appends are grouped.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// Segment files synced to the device (`fdatasync`) since the log was opened: how
    /// often the [`SyncPolicy`] made a write wait for the device.
    pub fn data_syncs(&self) -> u64 {
        self.data_syncs
    }

    /// Records staged and not yet committed.
    pub fn staged(&self) -> u64 {
        self.staged
    }

    /// Writes every staged record with one `write` (and syncs as the [`SyncPolicy`]
    /// says). On `Ok` they are in the kernel's hands. On error none of them is in the
    /// log any more (a partial write is truncated away): the caller keeps them
    /// elsewhere.
    pub fn commit(&mut self) -> Result<(), DiskLogError> {
        // Records staged and then removed (dropped to make room) are written all the
        // same: the index counts their bytes in the segment's end.
        if self.write_buf.is_empty() {
            return Ok(());
        }
        let mut written = self.write_staged();
        if written.as_ref().is_err_and(is_disk_full_io) && self.drop_spares() {
            // The spares held space these records need: they go first.
            written = self.write_staged();
        }
        if let Err(e) = written {
            let path = self.segments.back().expect("staged").path.clone();
            self.undo_staged();
            return Err(DiskLogError::io(path, "write", e));
        }
        self.data_unsynced = true;
        self.commits += 1;
        if self.sync_due() {
            if let Err(e) = self.sync_data() {
                // Not durable, so not accepted: the caller keeps the messages.
                self.undo_staged();
                return Err(e);
            }
            self.last_sync = Instant::now();
        }
        self.clear_staged();
        Ok(())
    }

    /// Writes the staged records with one positional write (a recycled file is
    /// overwritten, not appended to): a crash leaves at most one torn record, at the
    /// end, which recovery cuts off or, inside a recycled file's old extent, counts as
    /// stale.
    fn write_staged(&self) -> io::Result<()> {
        let writer = self
            .writer
            .as_ref()
            .expect("staged records have a writer on the last segment");
        write_at(writer, self.staged_start, &self.write_buf)
    }

    /// Deletes the spare segment files (to free their space); whether there was one.
    fn drop_spares(&mut self) -> bool {
        let any = !self.spares.is_empty();
        for (name, len) in std::mem::take(&mut self.spares) {
            self.disk_bytes -= len;
            remove_if_exists(&self.dir.join(name));
        }
        any
    }

    /// Forgets the staged records (written, or undone).
    fn clear_staged(&mut self) {
        self.staged = 0;
        self.write_buf.clear();
    }

    /// Takes the staged records out of the index and cuts whatever part of them was
    /// written off the segment.
    fn undo_staged(&mut self) {
        let start = self.staged_start;
        let tail = self
            .segments
            .back_mut()
            .expect("staged records have a tail");
        let live_before = tail.live_bytes();
        // Staged records are the newest; some may already have been removed from the
        // front (a drop to make room), so count what is really left of them.
        while tail.offsets.back().is_some_and(|&o| u64::from(o) >= start) {
            tail.offsets.pop_back();
            self.len -= 1;
        }
        // `undo_append` cuts the file at `start`, stale bytes past it included.
        self.disk_bytes -= tail.file_len - start;
        tail.end = start;
        tail.file_len = start;
        tail.stale_len = tail.stale_len.min(start);
        self.bytes -= live_before - tail.live_bytes();
        self.clear_staged();
        self.undo_append(start);
        if start < SEGMENT_HEADER_LEN as u64 {
            // The segment's header went with the batch: append to a new segment
            // rather than write records into a file without one.
            self.writer = None;
            self.data_unsynced = false;
        }
        self.update_head();
    }

    /// Number of records in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the records take, counted against `max_bytes`: payloads plus
    /// [`RECORD_HEADER_LEN`] each (plus any damaged bytes recovery found between
    /// records still in the log).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Bytes of the segment files, including removed records not yet freed because
    /// their segment still holds others.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads up to `max` records starting `skip` records after the head (oldest),
    /// without removing them. Returns fewer (or none) at the end of the log.
    ///
    /// Finding the start costs one step per segment, not per record, and each segment
    /// is read with one read call, so consuming the log in order with a growing
    /// `skip` stays cheap. Every record's CRC is checked again.
    pub fn read(&mut self, skip: u64, max: usize) -> Result<Vec<Record>, DiskLogError> {
        let mut out = Vec::new();
        if max == 0 || skip >= self.len {
            return Ok(out);
        }
        out.reserve(max.min(usize::try_from(self.len - skip).unwrap_or(usize::MAX)));
        let mut remaining_skip = skip;
        let mut first = 0;
        while let Some(seg) = self.segments.get(first) {
            let count = seg.offsets.len() as u64;
            if remaining_skip < count {
                break;
            }
            remaining_skip -= count;
            first += 1;
        }
        let mut index = remaining_skip as usize;
        let mut span = Vec::new();
        for seg in self.segments.iter().skip(first) {
            if out.len() == max {
                break;
            }
            let to = seg.offsets.len().min(index.saturating_add(max - out.len()));
            if index < to {
                let span_start = u64::from(seg.offsets[index]);
                let span_end = match seg.offsets.get(to) {
                    Some(&next) => u64::from(next),
                    None => seg.end,
                };
                // The segment being written is read through its own handle: no second
                // open, and still readable if its name was deleted.
                let writer = match (&self.writer, self.segments.back()) {
                    (Some(w), Some(tail)) if tail.id == seg.id => Some(w),
                    _ => None,
                };
                read_span(
                    &mut self.reader,
                    writer,
                    seg,
                    span_start,
                    span_end,
                    &mut span,
                )?;
                for i in index..to {
                    let offset = u64::from(seg.offsets[i]);
                    let at = (offset - span_start) as usize;
                    let record =
                        decode_record(&span[at..], seg.id, !seg.recyclable).map_err(|reason| {
                            DiskLogError::Corrupt {
                                path: seg.path.clone(),
                                offset,
                                reason,
                            }
                        })?;
                    out.push(record);
                }
            }
            index = 0;
        }
        Ok(out)
    }

    /// Removes the `n` oldest records (confirmed by the server, or dropped by the
    /// caller's policy): [`remove_front`](Self::remove_front), then
    /// [`flush_removals`](Self::flush_removals).
    ///
    /// The removal takes effect in memory even when an error is returned: the error
    /// means it may not be remembered after a restart (those records may then be
    /// read again), or that a segment file could not be deleted (it is deleted at the
    /// next open). Only [`DiskLogError::PopBeyondEnd`] leaves the log unchanged.
    pub fn pop_front(&mut self, n: u64) -> Result<(), DiskLogError> {
        self.remove_front(n)?;
        self.flush_removals()
    }

    /// Removes the `n` oldest records from the index, without I/O: segment files left
    /// without records are deleted, and the `head` file written, by the next
    /// [`flush_removals`](Self::flush_removals), [`persist_head`](Self::persist_head)
    /// or [`sync`](Self::sync). So a confirmation needs no blocking thread.
    pub fn remove_front(&mut self, n: u64) -> Result<(), DiskLogError> {
        if n > self.len {
            return Err(DiskLogError::PopBeyondEnd {
                requested: n,
                len: self.len,
            });
        }
        let mut left = n;
        while left > 0 {
            let writing_to_it = self.writer.is_some() && self.segments.len() == 1;
            let seg = self.segments.front_mut().expect("n <= len");
            let take = left.min(seg.offsets.len() as u64);
            let before = seg.live_bytes();
            seg.offsets.drain(..take as usize);
            self.bytes -= before - seg.live_bytes();
            self.len -= take;
            left -= take;
            if seg.offsets.is_empty() && !writing_to_it {
                let seg = self.segments.pop_front().expect("front exists");
                self.retired.push(seg);
            }
        }
        // Staged records are the newest: removing past the older ones reaches them.
        self.staged = self.staged.min(self.len);
        if n > 0 {
            self.update_head();
        }
        Ok(())
    }

    /// Whether the next [`commit`](Self::commit) will also sync (`fdatasync`) the
    /// log: always under [`SyncPolicy::Always`], else once the interval has passed.
    pub fn sync_due(&self) -> bool {
        match self.sync {
            SyncPolicy::Always => true,
            SyncPolicy::Interval(every) => self.last_sync.elapsed() >= every,
            SyncPolicy::Never => false,
        }
    }

    /// Whether removals wait for I/O: segment files to delete, or a `head` write that
    /// [`flush_removals`](Self::flush_removals) would do now.
    pub fn removals_pending(&self) -> bool {
        !self.retired.is_empty()
            || (!self.head_written && self.last_head_write.elapsed() >= self.head_interval)
    }

    /// Deletes the segment files [`remove_front`](Self::remove_front) emptied, then
    /// writes `head` if it changed and [`DiskLogOptions::head_interval`] has passed
    /// since the last write.
    pub fn flush_removals(&mut self) -> Result<(), DiskLogError> {
        // Delete before writing `head`: that frees space first when the disk is full,
        // and a crash in between is harmless (`open` starts at the oldest segment that
        // still exists).
        let mut first_error = self.delete_retired().err();
        // Batched: a `head` write per confirmation is a metadata write per message,
        // which costs CPU and wears flash. Forgetting a removal costs a duplicate only.
        if !self.head_written && self.last_head_write.elapsed() >= self.head_interval {
            // The empty tail segment is kept here (releasing it is the timer's job), so
            // a queue that keeps draining does not create and delete a file per batch.
            if let Err(e) = self.write_head(self.sync == SyncPolicy::Always) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Deletes the retired segment files; the first error, after trying them all.
    fn delete_retired(&mut self) -> Result<(), DiskLogError> {
        let mut first_error = None;
        for seg in std::mem::take(&mut self.retired) {
            if let Err(e) = self.delete_segment(&seg) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether the directory or the segment being appended to is no longer what this
    /// log opened: deleted, or replaced by another file or directory of the same name.
    /// `Some(what happened)` then; the records written since are unreachable by a
    /// later [`open`](Self::open), so the owner should [`reset`](Self::reset) the log
    /// with every record it still needs. Costs one or two `stat` calls: call it from a
    /// timer.
    pub fn check_location(&self) -> Option<&'static str> {
        let known = self.dir_identity?;
        match identity(&self.dir) {
            None => return Some("the cache directory was deleted"),
            Some(now) if now != known => return Some("the cache directory was replaced"),
            Some(_) => {}
        }
        #[cfg(unix)]
        if let (Some(writer), Some(tail)) = (&self.writer, self.segments.back()) {
            use std::os::unix::fs::MetadataExt;
            let open = writer.metadata().ok()?;
            match fs::metadata(&tail.path) {
                Ok(m) if (m.dev(), m.ino()) != (open.dev(), open.ino()) => {
                    return Some("the segment file being written was replaced")
                }
                Ok(_) if open.nlink() > 0 => {}
                _ => return Some("the segment file being written was deleted"),
            }
        }
        None
    }

    /// Starts the log afresh in its directory (created again if it was deleted) with
    /// exactly `records`, oldest first: after [`check_location`](Self::check_location)
    /// found the files gone or replaced. Whatever segment files the directory holds are
    /// deleted once the new ones are written and synced, so a crash during the reset
    /// can resend records, never lose them. On error the log is empty and the caller
    /// keeps the records.
    pub fn reset(&mut self, records: &[(u64, &[u8])]) -> Result<(), DiskLogError> {
        // Forget the old files without touching them: their names may now be
        // someone else's.
        self.segments.clear();
        self.retired.clear();
        self.writer = None;
        self.reader = None;
        self.head_file = None;
        self.spares.clear();
        self.len = 0;
        self.bytes = 0;
        self.disk_bytes = 0;
        self.clear_staged();
        self.closed_unsynced.clear();
        self.data_unsynced = false;
        fs::create_dir_all(&self.dir)
            .map_err(|e| DiskLogError::io(&self.dir, "create the cache directory", e))?;
        self.dir_identity = identity(&self.dir);
        let stale = list_segments(&self.dir)?;
        if let Some(&highest) = stale.last() {
            self.next_id = self.next_id.max(highest.saturating_add(1));
        }
        self.head = (self.next_id, 0);
        let result = (|| {
            for &(timestamp_ms, payload) in records {
                self.stage(timestamp_ms, payload)?;
            }
            self.commit()?;
            self.sync_data()?;
            for id in stale {
                remove_if_exists(&segment_path(&self.dir, id));
            }
            self.head_written = false;
            self.write_head(true)
        })();
        if result.is_err() {
            self.segments.clear();
            self.writer = None;
            self.len = 0;
            self.bytes = 0;
            self.disk_bytes = 0;
            self.staged = 0;
        }
        result
    }

    /// Forces appended records and the removal position to the device, whatever the
    /// [`SyncPolicy`]. Call it from a timer with [`SyncPolicy::Interval`].
    pub fn sync(&mut self) -> Result<(), DiskLogError> {
        self.sync_data()?;
        self.release_empty_tail()?;
        if !self.head_synced {
            self.write_head(true)?;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// The owner's timer: [`DiskLog::sync`] when the policy is
    /// [`SyncPolicy::Interval`] and the interval has passed since the last sync,
    /// otherwise [`DiskLog::persist_head`].
    pub fn tick(&mut self) -> Result<(), DiskLogError> {
        match self.sync {
            SyncPolicy::Interval(every) if self.last_sync.elapsed() >= every => self.sync(),
            _ => self.persist_head(),
        }
    }

    /// Writes the removal position to `head` if it changed since the last write
    /// (synced only under [`SyncPolicy::Always`]; [`DiskLog::sync`] syncs it for the
    /// other policies), first retiring the segment being appended to when every record
    /// is removed, so that a drained log occupies no disk space beyond the spares (two
    /// segments at most, within `max_bytes`; deleted first when a write finds the disk
    /// full). [`DiskLog::pop_front`] writes
    /// `head` at most once per [`DiskLogOptions::head_interval`]; call this from a
    /// timer so that the last removals of a busy period are persisted too.
    pub fn persist_head(&mut self) -> Result<(), DiskLogError> {
        self.release_empty_tail()?;
        if !self.head_written {
            self.write_head(self.sync == SyncPolicy::Always)?;
        }
        Ok(())
    }

    /// Recomputes `self.head` from the segments after a removal.
    fn update_head(&mut self) {
        let head = match self.segments.front() {
            Some(seg) => match seg.offsets.front() {
                Some(&offset) => (seg.id, u64::from(offset)),
                None => (seg.id, seg.end),
            },
            None => (self.next_id, 0),
        };
        if head != self.head {
            self.head = head;
            self.head_written = false;
            self.head_synced = false;
        }
    }

    /// Retires the last segment (as a spare, or deleted) when the log is empty (it
    /// was kept only because it was being appended to), closing the writer: the next
    /// append starts a new one.
    fn release_empty_tail(&mut self) -> Result<(), DiskLogError> {
        if self.len > 0 || self.segments.back().is_none_or(|s| !s.offsets.is_empty()) {
            return Ok(());
        }
        let seg = self.segments.pop_back().expect("checked");
        let result = self.delete_segment(&seg);
        self.update_head();
        result
    }

    /// Syncs the segment being appended to and, if a segment was created, the
    /// directory (without which a new file's name may not survive a power cut even
    /// when its data does).
    fn sync_data(&mut self) -> Result<(), DiskLogError> {
        while let Some((id, file)) = self.closed_unsynced.last() {
            file.sync_data()
                .map_err(|e| DiskLogError::io(segment_path(&self.dir, *id), "sync", e))?;
            self.closed_unsynced.pop();
            self.data_syncs += 1;
        }
        if self.data_unsynced {
            if let (Some(writer), Some(tail)) = (&self.writer, self.segments.back()) {
                writer
                    .sync_data()
                    .map_err(|e| DiskLogError::io(&tail.path, "sync", e))?;
                self.data_syncs += 1;
            }
            self.data_unsynced = false;
        }
        if self.dir_unsynced {
            sync_dir(&self.dir)?;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    /// Closes the current segment and starts the next one.
    fn start_segment(&mut self) -> Result<(), DiskLogError> {
        if let Some(file) = self.writer.take() {
            // Under `Always` its data was synced by every commit. Under `Interval` the
            // next sync covers it, within the interval like any append: syncing it here
            // made the push that starts a segment wait for the device (a 4 MiB
            // writeback, in the caller's task) and added a device flush per segment.
            // A bounded number of them, though: each keeps a file open.
            let id = self.segments.back().map(|s| s.id);
            if let (true, SyncPolicy::Interval(_), Some(id)) = (self.data_unsynced, self.sync, id) {
                self.closed_unsynced.push((id, file));
                self.data_unsynced = false;
                if self.closed_unsynced.len() > MAX_CLOSED_UNSYNCED {
                    self.sync_data()?;
                }
            }
            self.data_unsynced = false;
        }
        if self.segments.back().is_some_and(|s| s.offsets.is_empty()) {
            // Kept only because it was being appended to; every record is removed.
            // Retired before the next one is created: the next one then recycles it, or
            // (deleted) its space is freed first when the disk is full.
            let seg = self.segments.pop_back().expect("checked");
            self.delete_segment(&seg)?;
        }
        let id = self.next_id;
        let path = segment_path(&self.dir, id);
        let (file, stale_len) = self.new_segment_file(&path)?;
        self.next_id += 1;
        self.dir_unsynced = true;
        self.writer = Some(file);
        // The header goes out with the first batch, in the same write: it names the
        // segment (so a rename that is not followed by it leaves a file whose every
        // byte is stale) and how much of the file is left from a previous life.
        debug_assert!(self.write_buf.is_empty(), "committed before a new segment");
        self.write_buf
            .extend_from_slice(&encode_segment_header(SegmentHeader { id, stale_len }));
        self.staged_start = 0;
        let end = SEGMENT_HEADER_LEN as u64;
        // A spare's bytes were counted already; a new file's header is new.
        let file_len = stale_len.max(end);
        self.disk_bytes += file_len - stale_len;
        self.segments.push_back(Segment {
            id,
            path,
            offsets: VecDeque::new(),
            end,
            file_len,
            stale_len,
            recyclable: true,
        });
        Ok(())
    }

    /// The file of a new segment at `path`, open for reading and writing, and the
    /// bytes it holds from a previous life: the spare retired last (its pages are the
    /// likeliest to be cached) renamed when there is one, else a new empty file.
    fn new_segment_file(&mut self, path: &Path) -> Result<(File, u64), DiskLogError> {
        if let Some((name, len)) = self.spares.pop() {
            let spare = self.dir.join(name);
            let reused = fs::rename(&spare, path)
                .and_then(|()| OpenOptions::new().read(true).write(true).open(path));
            match reused {
                Ok(file) => return Ok((file, len)),
                Err(e) => {
                    tracing::warn!(
                        path = %spare.display(),
                        error = %e,
                        "disk cache: cannot reuse the spare segment file; creating a new one"
                    );
                    self.disk_bytes -= len;
                    remove_if_exists(&spare);
                    remove_if_exists(path);
                }
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| DiskLogError::io(path, "create segment", e))?;
        Ok((file, 0))
    }

    /// Cuts a failed append off the end of the current segment.
    fn undo_append(&mut self, start: u64) {
        let (Some(writer), Some(tail)) = (&self.writer, self.segments.back()) else {
            return;
        };
        if let Err(e) = writer.set_len(start) {
            // The bytes stay and would sit between this record and the next: append
            // to a new segment instead, where recovery finds them only as the end of
            // an older segment (one damaged region, every record kept).
            tracing::warn!(
                path = %tail.path.display(),
                error = %e,
                "disk cache: cannot cut a failed write off a segment; continuing in a new segment"
            );
            self.writer = None;
            self.data_unsynced = false;
        }
    }

    /// Retires a segment whose records are all removed: renamed to a spare when it
    /// may be recycled, else deleted.
    fn delete_segment(&mut self, seg: &Segment) -> Result<(), DiskLogError> {
        // Close handles first: an open file keeps its space after deletion on Unix,
        // and cannot be deleted at all on Windows.
        if self.reader.as_ref().is_some_and(|(id, _)| *id == seg.id) {
            self.reader = None;
        }
        // Nothing of a deleted segment needs syncing.
        self.closed_unsynced.retain(|(id, _)| *id != seg.id);
        if self.segments.back().is_none_or(|tail| tail.id < seg.id) && self.writer.is_some() {
            self.writer = None;
            self.data_unsynced = false;
        }
        self.disk_bytes -= seg.file_len;
        // Recycled rather than deleted when it may be (no version-1 record in it), no
        // other file waits, and the files stay within `max_bytes` with it.
        let free_name = SPARE_FILES
            .into_iter()
            .find(|name| self.spares.iter().all(|(used, _)| used != name));
        if let (true, Some(name)) = (
            seg.recyclable && self.disk_bytes + seg.file_len <= self.max_bytes,
            free_name,
        ) {
            match fs::rename(&seg.path, self.dir.join(name)) {
                Ok(()) => {
                    self.spares.push((name, seg.file_len));
                    self.disk_bytes += seg.file_len;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                // Deleted instead, below.
                Err(_) => {}
            }
        }
        match fs::remove_file(&seg.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DiskLogError::io(&seg.path, "delete segment", e)),
        }
    }

    /// Overwrites `head` in place with the current position.
    ///
    /// In place rather than a new file renamed over it: one `pwrite` of 24 bytes into
    /// blocks the file already has needs no new disk space (a full disk cannot stop
    /// it) and no directory update (metadata writes are what wear flash). A write torn
    /// by a power cut fails the CRC, which `open` treats as "nothing removed":
    /// duplicates, never a loss.
    fn write_head(&mut self, durable: bool) -> Result<(), DiskLogError> {
        // Never name a position past segment files that still exist: `open` would
        // count their records as skipped. Deletion failures are reported after the
        // head is written (the removal is real either way).
        let deleted = self.delete_retired();
        let path = self.dir.join(HEAD_FILE);
        let io_error = |what, e| DiskLogError::io(&path, what, e);
        if self.head_file.is_none() {
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_error("open head file", e))?;
            // Possibly a new name in the directory: synced with the next durable write.
            self.dir_unsynced = true;
            self.head_file = Some(file);
        }
        let bytes = encode_head(self.head.0, self.head.1);
        let write = |log: &Self| write_at(log.head_file.as_ref().expect("opened above"), 0, &bytes);
        let mut written = write(self);
        if written.as_ref().is_err_and(is_disk_full_io) && self.drop_spares() {
            // A new `head` file needs a block, which the spares may hold.
            written = write(self);
        }
        written.map_err(|e| io_error("write head file", e))?;
        let file = self.head_file.as_mut().expect("opened above");
        if file.metadata().map(|m| m.len()).ok() != Some(HEAD_LEN as u64) {
            // A longer file left by someone else would read as damaged.
            file.set_len(HEAD_LEN as u64)
                .map_err(|e| io_error("write head file", e))?;
        }
        self.head_written = true;
        self.last_head_write = Instant::now();
        if durable {
            file.sync_data()
                .map_err(|e| io_error("sync head file", e))?;
            if self.dir_unsynced {
                sync_dir(&self.dir)?;
                self.dir_unsynced = false;
            }
        }
        self.head_synced = durable;
        deleted
    }
}

impl fmt::Debug for DiskLog {
    // A summary: the index holds an entry per record, far too much to print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskLog")
            .field("dir", &self.dir)
            .field("len", &self.len)
            .field("bytes", &self.bytes)
            .field("max_bytes", &self.max_bytes)
            .field("segments", &self.segments.len())
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}

impl Drop for DiskLog {
    fn drop(&mut self) {
        // Best effort: a failure here only means re-delivery (head) or, for a power
        // cut right after, the loss `SyncPolicy` allows.
        let durable = self.sync != SyncPolicy::Never;
        let result = if durable {
            self.sync_data()
                .and_then(|()| self.release_empty_tail())
                .and_then(|()| {
                    if self.head_synced {
                        Ok(())
                    } else {
                        self.write_head(true)
                    }
                })
        } else {
            self.persist_head()
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "disk cache: closing");
        }
    }
}

/// Rejects sizes the log cannot work with.
fn check_sizes(max_bytes: u64, segment_bytes: u64) -> Result<(), DiskLogError> {
    if max_bytes == 0 {
        return Err(DiskLogError::InvalidOptions {
            field: "max_bytes",
            reason: "is 0: give the disk cache a size, or do not configure one".into(),
        });
    }
    if segment_bytes == 0 || segment_bytes > MAX_SEGMENT_BYTES {
        return Err(DiskLogError::InvalidOptions {
            field: "segment_bytes",
            reason: format!(
                "is {segment_bytes}: use 1 to {MAX_SEGMENT_BYTES} bytes (default {DEFAULT_SEGMENT_BYTES})"
            ),
        });
    }
    Ok(())
}

/// Scans segment `id` from `start` at open, adds what it found to `recovery`, cuts a torn
/// end off the newest segment (`is_last`), and deletes a segment left with no record.
/// Returns the segment when it holds records.
fn recover_segment(
    id: u64,
    path: PathBuf,
    start: u64,
    is_last: bool,
    recovery: &mut Recovery,
) -> Result<Option<Segment>, DiskLogError> {
    let scan =
        scan_segment(&path, id, start).map_err(|e| DiskLogError::io(&path, "read segment", e))?;
    recovery.damaged_regions += scan.damaged_regions;
    recovery.skipped_bytes += scan.skipped_bytes;
    recovery.stale_bytes += scan.stale_bytes;
    let mut file_len = scan.file_len;
    if scan.trailing_bytes > 0 {
        if is_last {
            // The end of the newest segment is where a crash tears a write.
            // Cutting it off is tidiness only: appends go to a new segment
            // anyway, so failing to truncate is harmless.
            recovery.truncated_bytes += scan.trailing_bytes;
            // Stale bytes before the torn ones go too: nothing reads past `end`.
            match truncate_file(&path, scan.end) {
                Ok(()) => file_len = scan.end,
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "disk cache: cannot truncate the torn end of a segment; it will be skipped again next time"
                ),
            }
        } else {
            recovery.damaged_regions += 1;
            recovery.skipped_bytes += scan.trailing_bytes;
        }
    }
    if scan.offsets.is_empty() {
        remove_or_warn(&path);
        return Ok(None);
    }
    Ok(Some(Segment {
        id,
        path,
        offsets: scan.offsets,
        end: scan.end,
        file_len,
        stale_len: scan.stale_len.min(file_len),
        recyclable: scan.version_2,
    }))
}

/// Reads `start..end` of `seg` into `buf`: through `writer` (the segment's append
/// handle, opened for reading too) when given, else through the cached read handle.
fn read_span(
    reader: &mut Option<(u64, File)>,
    writer: Option<&File>,
    seg: &Segment,
    start: u64,
    end: u64,
    buf: &mut Vec<u8>,
) -> Result<(), DiskLogError> {
    let io_error = |e| DiskLogError::io(&seg.path, "read segment", e);
    // `end` comes from the index built while scanning or appending, never from a
    // header read now, so the allocation is at most the segment's size.
    buf.clear();
    buf.resize((end - start) as usize, 0);
    let result = match writer {
        Some(file) => read_at(file, start, buf),
        None => {
            if reader.as_ref().is_none_or(|(id, _)| *id != seg.id) {
                *reader = None;
                *reader = Some((seg.id, File::open(&seg.path).map_err(io_error)?));
            }
            let (_, file) = reader.as_mut().expect("set above");
            file.seek(SeekFrom::Start(start))
                .and_then(|_| file.read_exact(buf))
        }
    };
    result.map_err(|e| {
        if e.kind() == ErrorKind::UnexpectedEof {
            DiskLogError::Corrupt {
                path: seg.path.clone(),
                offset: start,
                reason: "the segment file is shorter than when it was indexed",
            }
        } else {
            io_error(e)
        }
    })
}

/// Reads exactly `buf.len()` bytes at `offset` of `file` (`pread` on Unix).
fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::Write;
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }
}

/// Device and inode of `dir` (Unix), `None` when it cannot be read.
fn identity(dir: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Some((0, 0))
    }
}

fn sync_dir(dir: &Path) -> Result<(), DiskLogError> {
    // Syncing a directory makes file creations and renames in it durable. Only Unix
    // lets a directory be opened for that; elsewhere the file system journals them.
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| DiskLogError::io(dir, "sync directory", e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` at `offset` of `file`: one `pwrite` on Unix.
fn write_at(file: &File, offset: u64, bytes: &[u8]) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(bytes, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::Write;
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(bytes)
    }
}

/// Counts the valid records of a segment, for the warning about a head that skips
/// them; a segment that cannot be read counts as 0 (it is about to be deleted).
fn count_records(path: &Path, id: u64) -> u64 {
    scan_segment(path, id, 0).map_or(0, |scan| scan.offsets.len() as u64)
}

/// The spare segment files a previous run left in `dir` that this version wrote (a
/// valid version-2 header: they hold no version-1 record) and that fit in `room`
/// bytes together, with their lengths. The others are deleted.
fn find_spares(dir: &Path, mut room: u64) -> Vec<(&'static str, u64)> {
    let mut spares = Vec::new();
    for name in SPARE_FILES {
        if let Some(len) = find_spare(&dir.join(name), room) {
            room -= len;
            spares.push((name, len));
        }
    }
    spares
}

/// The length of the spare segment file at `path` if it is usable and fits in `room`
/// bytes; otherwise it is deleted.
fn find_spare(path: &Path, room: u64) -> Option<u64> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(_) => {
            remove_or_warn(path);
            return None;
        }
    };
    let mut header = [0u8; SEGMENT_HEADER_LEN];
    let usable = file.read_exact(&mut header).is_ok() && decode_segment_header(&header).is_some();
    match file.metadata() {
        Ok(m) if usable && m.len() <= room => Some(m.len()),
        _ => {
            drop(file);
            remove_or_warn(path);
            None
        }
    }
}

fn truncate_file(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

fn remove_if_exists(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        if e.kind() != ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "disk cache: cannot delete a leftover file");
        }
    }
}

/// Deletion during recovery is tidying: a segment that stays is dealt with again at
/// the next open, so failure is logged, not fatal.
fn remove_or_warn(path: &Path) {
    remove_if_exists(path);
}
