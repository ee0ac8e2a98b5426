//! A crash-safe, checksummed, segmented FIFO of records on disk: the offline cache
//! behind an uplink's memory queue.
//!
//! [`DiskLog`] keeps messages that could not be delivered yet, oldest first, each with
//! its original timestamp. A record leaves the log only through [`DiskLog::pop_front`],
//! which the caller calls once the server confirmed it (or its drop policy discarded
//! it); [`DiskLog::read`] looks at records without removing them, so messages in
//! flight stay on disk until they are confirmed.
//!
//! All I/O is blocking `std::fs`: call it from a blocking thread
//! (`tokio::task::spawn_blocking` or a dedicated thread), never from an async task.
//!
//! # Guarantees
//!
//! * Every record carries a CRC-32; nothing damaged is ever returned as a message.
//! * [`DiskLog::open`] salvages a damaged directory record by record: a damaged region
//!   is skipped by scanning forward to the next record whose magic, length and CRC are
//!   valid, and counted in [`Recovery`]. It never panics and never allocates from a
//!   length read on disk.
//! * When [`DiskLog::append`] returns `Ok`, the record has been handed to the kernel
//!   (no user-space buffering), so it survives `kill -9` of the process whatever the
//!   [`SyncPolicy`]. Surviving a power cut needs the data on the device: that is what
//!   the policy decides ([`SyncPolicy::Always`] syncs before `append` returns).
//! * When `append` returns an error the record is not in the log (a partial write is
//!   truncated away), so the caller may keep the message elsewhere, for example in
//!   memory when the disk is full ([`DiskLogError::is_disk_full`]).
//! * Removal is at least once: after a crash, the latest removals may be forgotten and
//!   those records read again. No record is ever lost because of a crash during removal.
//!
//! # On-disk format
//!
//! All integers are little-endian. The directory holds:
//!
//! * **Segment files** `NNNNNNNNNNNNNNNNNNNN.seg`: the segment number, 20 decimal digits
//!   (the width of `u64::MAX`) so that names sort like numbers. Numbers only grow; the
//!   records of a lower-numbered segment are older. A segment (format version 2) is a
//!   24-byte header, then a plain sequence of records:
//!
//!   | bytes   | header field   | meaning                                              |
//!   |---------|----------------|------------------------------------------------------|
//!   | 0..4    | magic          | `F7 54 53 32` (`\xF7TS2`, format version 2)          |
//!   | 4..12   | segment `u64`  | the segment number the file had when this was written |
//!   | 12..20  | stale `u64`    | bytes of the file left from a previous life (0: new)  |
//!   | 20..24  | crc `u32`      | CRC-32 (IEEE) of bytes 0..20                          |
//!
//!   | bytes   | record field | meaning                                                  |
//!   |---------|--------------|----------------------------------------------------------|
//!   | 0..4    | magic        | `F7 54 57 32` (`\xF7TW2`)                                |
//!   | 4..8    | length `u32` | payload length in bytes                                  |
//!   | 8..12   | crc `u32`    | CRC-32 (IEEE) of the segment number (`u64`), bytes 4..8, |
//!   |         |              | then 12..20, then the payload                            |
//!   | 12..20  | timestamp    | `u64`, milliseconds since the Unix epoch                 |
//!   | 20..    | payload      | `length` bytes                                           |
//!
//!   The CRC covers the length as well as the timestamp and payload, so a corrupted
//!   length cannot pair with a valid checksum; it covers the segment number (taken
//!   from the file's name) so that a record written while the file had another
//!   number fails it (see recycling below). Version-1 segments (no header, records
//!   `\xF7TW1` whose CRC leaves out the segment number) are still read, never written:
//!   see the versioning notes in `disk_log/format.rs`. `0xF7` never occurs in UTF-8 text, so
//!   when resynchronising inside JSON payloads the scan stops only at real record
//!   starts (or at binary header fields, which the CRC then rejects).
//!
//!   A new segment is started when the next record would take the current one past
//!   `segment_bytes` (a record larger than that gets a segment of its own), and on the
//!   first append after [`DiskLog::open`]: this process never appends after bytes a
//!   previous one left behind, which may end with a torn record. A segment whose
//!   records have all been removed leaves (the one being appended to is kept until
//!   the next segment starts, so a queue that keeps draining does not create and
//!   delete a file per message).
//!
//! * **`spare-0`, `spare-1`**: recycling. A segment that leaves is not deleted but
//!   renamed to a free spare name when one of the two is free, it holds no version-1
//!   record (it starts with a version-2 header), and all files with it fit in
//!   `max_bytes`; otherwise it is deleted. Two, because at a rollover the old segment
//!   still holds messages in flight when the new one starts, and the owner's timer
//!   often retires the new one (the log drained) before the next rollover: with one
//!   spare, every other segment was a new file. The next segment renames the spare
//!   retired last to its own name and
//!   overwrites it from the start (header first, with `stale` = the file's length),
//!   instead of creating a file: overwriting pages the kernel still caches costs far
//!   less CPU than appending to a new file and deleting an old one (see
//!   docs/benchmarks.md). A recycled file is longer than its new content; past the last
//!   valid record, the bytes below `stale` are its previous life, which `open` neither
//!   reads (their CRC names another segment number) nor reports as damage
//!   ([`Recovery::stale_bytes`]); a damaged stretch followed by a valid record is
//!   reported as before. A torn last write inside the old extent looks like stale
//!   bytes: it goes unreported, which is safe because it was never acknowledged. A
//!   spare renamed to a segment whose header was never rewritten (a crash in between)
//!   still names its old number: all of it is stale. Spares count in
//!   [`DiskLog::disk_bytes`], are reused by the next run, and are deleted first when a
//!   write (of records or of `head`) finds the disk full.
//!
//! * **`head`**, 24 bytes: magic `TWH1`, the segment number `u64` and the byte offset
//!   `u64` of the oldest record not yet removed, then a CRC-32 of the first 20 bytes.
//!   Records in lower-numbered segments, or before that offset in that segment, have
//!   been removed. It is overwritten in place (one `pwrite`, no new blocks, no
//!   directory update), at most once per [`DiskLogOptions::head_interval`]; a write torn
//!   by a power cut fails the CRC. Older versions replaced it through `head.tmp`,
//!   which `open` still deletes if it finds one. A
//!   missing or damaged `head` means "nothing removed": removed records come back
//!   rather than unremoved ones being lost.
//!
//! # Durability
//!
//! * [`SyncPolicy::Always`]: `append` calls `fdatasync` on the segment (and `fsync` on
//!   the directory when it created or renamed the segment file) before returning; each
//!   `head` write is synced. `fdatasync` covers a recycled file's overwritten pages like
//!   appended ones; its size does not change, which recovery does not need (the header
//!   and the CRCs delimit the new life, not the length).
//! * [`SyncPolicy::Interval`]: `append` syncs when at least the interval has passed
//!   since the last sync, and the caller calls [`DiskLog::sync`] from a timer, so a
//!   power cut loses at most about one interval of appends. A segment closed in
//!   between is synced by that next sync too (with the directory entry of its
//!   successor), not when it is closed: starting a segment never waits for the device.
//! * [`SyncPolicy::Never`]: the kernel writes back when it likes.
//!
//! Appends can be grouped: [`DiskLog::stage`] adds records to the index and a buffer,
//! [`DiskLog::commit`] writes them all with one `write` (and one sync when the policy
//! says so); [`DiskLog::append`] is the two for one record. A failed commit leaves none
//! of the staged records in the log.
//!
//! Whatever the policy, removals are persisted in batches: [`DiskLog::remove_front`]
//! only moves the index; [`DiskLog::flush_removals`] deletes the segments it emptied and
//! writes the `head` file, but only when [`DiskLogOptions::head_interval`] has passed
//! since the last write (`pop_front` is the two together), and
//! [`DiskLog::persist_head`] / [`DiskLog::tick`] (from the owner's timer), `sync` and
//! `Drop` write it when it changed. So `kill -9` can bring back the records removed in
//! about the last `head_interval` (a duplicate, never a loss), and a log being drained
//! costs one small write per interval instead of a file replacement per removal.
//!
//! The owner's timer should also call [`DiskLog::check_location`]: if the directory or
//! the segment being written was deleted or replaced behind the log's back, new records
//! would go where no restart finds them; [`DiskLog::reset`] then starts the log afresh
//! with the records the owner still holds.
//!
//! # Example
//!
//! ```
//! use tagwire_queue::disk_log::{DiskLog, DiskLogOptions, SyncPolicy};
//!
//! let dir = std::env::temp_dir().join(format!("disk-log-doc-{}", std::process::id()));
//! let options = DiskLogOptions::new(&dir, 1 << 20).with_sync(SyncPolicy::Never);
//!
//! let (mut log, recovery) = DiskLog::open(options.clone())?;
//! assert_eq!(recovery.records, 0);
//! log.append(1_650_006_388_943, br#"{"node":"sim"}"#)?;
//! log.append(1_650_006_389_943, br#"{"node":"sim2"}"#)?;
//!
//! // Reading does not remove: the first record stays until it is confirmed.
//! let batch = log.read(0, 10)?;
//! assert_eq!(batch[0].timestamp_ms, 1_650_006_388_943);
//! log.pop_front(1)?;
//! drop(log);
//!
//! // After a restart the unconfirmed record is still there.
//! let (mut log, recovery) = DiskLog::open(options)?;
//! assert_eq!(recovery.records, 1);
//! assert_eq!(log.read(0, 10)?[0].payload, br#"{"node":"sim2"}"#);
//! # drop(log);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), tagwire_queue::disk_log::DiskLogError>(())
//! ```

mod error;
mod format;
mod log;
mod scan;

pub use error::DiskLogError;
pub use format::{Record, RECORD_HEADER_LEN};
pub use log::{
    DiskLog, DiskLogOptions, Recovery, SyncPolicy, DEFAULT_HEAD_INTERVAL, DEFAULT_SEGMENT_BYTES,
    MAX_SEGMENT_BYTES,
};
