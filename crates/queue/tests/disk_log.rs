//! Tests of the disk cache log through its public API and its documented file format:
//! order, removal, restarts, `kill -9`, damaged files, a full log and a full disk.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tagwire_queue::disk_log::{
    DiskLog, DiskLogError, DiskLogOptions, Record, Recovery, SyncPolicy, RECORD_HEADER_LEN,
};

const HEADER: usize = RECORD_HEADER_LEN;
/// The version-2 segment header every segment file starts with.
const SEGMENT_HEADER: usize = 24;

fn options(dir: &Path, max_bytes: u64, segment_bytes: u64, sync: SyncPolicy) -> DiskLogOptions {
    DiskLogOptions::new(dir, max_bytes)
        .with_segment_bytes(segment_bytes)
        .with_sync(sync)
        // Every removal persisted at once, as the tests below expect unless they
        // say otherwise.
        .with_head_interval(Duration::ZERO)
}

fn timestamp(seq: u64) -> u64 {
    1_650_006_388_943 + seq * 1000
}

/// A JSON message naming its sequence number, of varying length.
fn payload(seq: u64) -> Vec<u8> {
    let pad = "x".repeat((seq as usize * 7) % 53);
    format!(r#"{{"seq":{seq},"pad":"{pad}"}}"#).into_bytes()
}

fn record(seq: u64) -> Record {
    Record {
        timestamp_ms: timestamp(seq),
        payload: payload(seq),
    }
}

fn seq_of(record: &Record) -> u64 {
    let text = std::str::from_utf8(&record.payload).expect("payloads are UTF-8");
    let rest = text
        .strip_prefix(r#"{"seq":"#)
        .expect("payload made by payload()");
    rest[..rest.find(',').expect("comma")]
        .parse()
        .expect("number")
}

fn append_range(log: &mut DiskLog, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        log.append(timestamp(seq), &payload(seq))
            .unwrap_or_else(|e| panic!("append {seq}: {e}"));
    }
}

fn read_all(log: &mut DiskLog) -> Vec<Record> {
    let all = log.read(0, usize::MAX).expect("read");
    assert_eq!(all.len() as u64, log.len());
    all
}

fn assert_holds(log: &mut DiskLog, seqs: impl IntoIterator<Item = u64>) {
    let expected: Vec<Record> = seqs.into_iter().map(record).collect();
    let got = read_all(log);
    let got_seqs: Vec<u64> = got.iter().map(seq_of).collect();
    let expected_seqs: Vec<u64> = expected.iter().map(seq_of).collect();
    assert_eq!(got_seqs, expected_seqs);
    assert_eq!(got, expected, "payloads and timestamps");
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Where each record of an undamaged log sits, read with the documented format.
#[derive(Debug, Clone)]
struct Loc {
    file: usize,
    start: usize,
    end: usize,
    seq: u64,
}

fn layout(dir: &Path) -> (Vec<PathBuf>, Vec<Loc>) {
    let files = segment_files(dir);
    let mut locs = Vec::new();
    for (file, path) in files.iter().enumerate() {
        let bytes = fs::read(path).expect("read segment");
        assert_eq!(&bytes[0..4], b"\xF7TS2", "segment header of {path:?}");
        let mut at = SEGMENT_HEADER;
        while at < bytes.len() {
            assert_eq!(&bytes[at..at + 4], b"\xF7TW2", "magic at {at} in {path:?}");
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            let end = at + HEADER + len;
            let rec = Record {
                timestamp_ms: u64::from_le_bytes(bytes[at + 12..at + 20].try_into().unwrap()),
                payload: bytes[at + HEADER..end].to_vec(),
            };
            locs.push(Loc {
                file,
                start: at,
                end,
                seq: seq_of(&rec),
            });
            at = end;
        }
    }
    (files, locs)
}

fn no_damage(recovery: &Recovery) {
    assert_eq!(recovery.damaged_regions, 0, "{recovery:?}");
    assert_eq!(recovery.skipped_bytes, 0, "{recovery:?}");
    assert_eq!(recovery.truncated_bytes, 0, "{recovery:?}");
    assert!(!recovery.head_reset, "{recovery:?}");
    assert!(!recovery.found_damage());
}

fn record_size(seq: u64) -> u64 {
    (HEADER + payload(seq).len()) as u64
}

#[test]
fn round_trip_across_segments_keeps_order_timestamps_and_deletes_popped_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, recovery) =
        DiskLog::open(options(dir.path(), 1 << 20, 400, SyncPolicy::Never)).unwrap();
    no_damage(&recovery);
    assert_eq!(recovery.records, 0);
    assert!(log.is_empty());

    append_range(&mut log, 0..100);
    assert_eq!(log.len(), 100);
    assert_eq!(log.bytes(), (0..100).map(record_size).sum::<u64>());
    let (files, locs) = layout(dir.path());
    assert_eq!(
        log.disk_bytes(),
        log.bytes() + (SEGMENT_HEADER * files.len()) as u64
    );
    assert!(files.len() >= 5, "expected several segments, got {files:?}");
    assert!(locs.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    assert_holds(&mut log, 0..100);

    // Reading never removes, and reads anywhere in the log.
    assert_eq!(
        log.read(37, 5).unwrap(),
        (37..42).map(record).collect::<Vec<_>>()
    );
    assert_eq!(log.read(99, 10).unwrap(), vec![record(99)]);
    assert!(log.read(100, 10).unwrap().is_empty());
    assert!(log.read(0, 0).unwrap().is_empty());
    assert_eq!(
        log.read(98, usize::MAX).unwrap(),
        vec![record(98), record(99)]
    );
    assert_eq!(log.len(), 100);

    // Sequential consumption as an uplink does it: skip grows with messages in flight.
    let mut in_flight = 0;
    while in_flight < 100 {
        let batch = log.read(in_flight, 7).unwrap();
        assert_eq!(
            batch,
            (in_flight..(in_flight + 7).min(100))
                .map(record)
                .collect::<Vec<_>>()
        );
        in_flight += batch.len() as u64;
    }

    log.pop_front(30).unwrap();
    assert_eq!(log.len(), 70);
    assert_eq!(log.bytes(), (30..100).map(record_size).sum::<u64>());
    assert_eq!(log.read(0, 1).unwrap(), vec![record(30)]);
    // Exactly the files whose records were all removed are gone.
    let first_kept = locs.iter().find(|l| l.seq == 30).unwrap().file;
    assert_eq!(segment_files(dir.path()), files[first_kept..].to_vec());

    log.pop_front(70).unwrap();
    assert!(log.is_empty());
    assert_eq!(log.bytes(), 0);
    assert_eq!(
        segment_files(dir.path()),
        vec![files.last().unwrap().clone()]
    );
    append_range(&mut log, 100..103);
    assert_holds(&mut log, 100..103);
}

#[test]
fn a_queue_that_keeps_draining_reuses_its_segment_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) =
        DiskLog::open(options(dir.path(), 1 << 20, 1 << 16, SyncPolicy::Never)).unwrap();
    append_range(&mut log, 0..1);
    let files = segment_files(dir.path());
    for seq in 1..50 {
        log.pop_front(1).unwrap();
        assert!(log.is_empty());
        append_range(&mut log, seq..seq + 1);
        assert_eq!(segment_files(dir.path()), files, "after {seq} removals");
    }
    assert_holds(&mut log, 49..50);
    assert_eq!(log.bytes(), record_size(49));
    assert_eq!(
        log.disk_bytes(),
        SEGMENT_HEADER as u64 + (0..50).map(record_size).sum::<u64>()
    );
}

#[test]
fn a_record_larger_than_a_segment_gets_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = DiskLog::open(options(dir.path(), 1 << 20, 100, SyncPolicy::Never)).unwrap();
    log.append(1, b"small").unwrap();
    let big = vec![b'b'; 500];
    log.append(2, &big).unwrap();
    log.append(3, b"small again").unwrap();
    assert_eq!(segment_files(dir.path()).len(), 3);
    let got = read_all(&mut log);
    assert_eq!(got[1].payload, big);
    assert_eq!(got[2].timestamp_ms, 3);
}

#[test]
fn full_at_max_bytes_and_too_large_records() {
    let dir = tempfile::tempdir().unwrap();
    // Ten records of exactly 100 bytes fill it.
    let (mut log, _) = DiskLog::open(options(dir.path(), 1000, 300, SyncPolicy::Never)).unwrap();
    let body = [b'a'; 100 - HEADER];
    for i in 0..10 {
        log.append(i, &body).unwrap();
    }
    assert_eq!(log.bytes(), 1000);
    let err = log.append(10, &body).unwrap_err();
    assert!(matches!(err, DiskLogError::Full), "{err:?}");
    assert!(!err.is_disk_full());
    assert!(err.to_string().contains("max_bytes"), "{err}");
    assert_eq!(log.len(), 10);

    // Drop-oldest, as the caller does it: one removal makes room for one record.
    log.pop_front(1).unwrap();
    log.append(10, &body).unwrap();
    assert_eq!(
        read_all(&mut log)
            .iter()
            .map(|r| r.timestamp_ms)
            .collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );

    let err = log.append(11, &[0; 1000 - HEADER + 1]).unwrap_err();
    assert!(
        matches!(
            err,
            DiskLogError::TooLarge {
                len: 981,
                max_bytes: 1000
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_bytes = 1000"), "{err}");
    assert_eq!(log.len(), 10);
}

#[test]
fn pop_beyond_the_end_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) =
        DiskLog::open(options(dir.path(), 1 << 20, 1 << 12, SyncPolicy::Never)).unwrap();
    append_range(&mut log, 0..3);
    let err = log.pop_front(4).unwrap_err();
    assert!(
        matches!(
            err,
            DiskLogError::PopBeyondEnd {
                requested: 4,
                len: 3
            }
        ),
        "{err:?}"
    );
    assert_holds(&mut log, 0..3);
    log.pop_front(0).unwrap();
    assert_eq!(log.len(), 3);
}

#[test]
fn reopen_after_a_clean_close_keeps_records_and_removals() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 300, SyncPolicy::Always);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 0..50);
    log.pop_front(12).unwrap();
    drop(log);

    let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
    no_damage(&recovery);
    assert_eq!(recovery.records, 38);
    assert_eq!(recovery.bytes, (12..50).map(record_size).sum::<u64>());
    assert_eq!(log.bytes(), recovery.bytes);
    assert_holds(&mut log, 12..50);
    append_range(&mut log, 50..60);
    log.pop_front(3).unwrap();
    drop(log);

    let (mut log, recovery) = DiskLog::open(opts).unwrap();
    no_damage(&recovery);
    assert_holds(&mut log, 15..60);
}

/// `mem::forget` skips `Drop`, as `kill -9` does: nothing is flushed or written on the
/// way out. Every policy keeps every appended record, and with a zero `head_interval`
/// every removal, because `append` and `pop_front` then hand everything to the kernel
/// before returning.
#[test]
fn reopen_after_a_simulated_crash_keeps_everything_under_every_policy() {
    for sync in [
        SyncPolicy::Always,
        SyncPolicy::Interval(Duration::from_secs(3600)),
        SyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), 1 << 20, 256, sync);
        let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
        append_range(&mut log, 0..40);
        log.pop_front(5).unwrap();
        std::mem::forget(log);

        let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
        no_damage(&recovery);
        assert_holds(&mut log, 5..40);
        append_range(&mut log, 40..45);
        log.pop_front(1).unwrap();
        std::mem::forget(log);

        let (mut log, recovery) = DiskLog::open(opts).unwrap();
        no_damage(&recovery);
        assert_holds(&mut log, 6..45);
    }
}

/// With the default batching, removals reach `head` once per `head_interval` or on
/// the owner's timer: a crash in between brings back only the removals since the last
/// write (duplicates), never loses a record, and the head file is written once for
/// many confirmations.
#[test]
fn removals_are_persisted_in_batches_and_a_crash_only_brings_the_last_ones_back() {
    for sync in [
        SyncPolicy::Always,
        SyncPolicy::Interval(Duration::from_secs(3600)),
        SyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let head = dir.path().join("head");
        let mut opts = options(dir.path(), 1 << 20, 1 << 16, sync);
        opts = opts.with_head_interval(Duration::from_secs(3600));
        let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
        append_range(&mut log, 0..100);
        log.pop_front(1).unwrap();
        log.persist_head().unwrap();
        let persisted = fs::read(&head).unwrap();
        // 60 confirmations, one by one: none rewrites the head.
        for _ in 0..60 {
            log.pop_front(1).unwrap();
        }
        assert_eq!(
            fs::read(&head).unwrap(),
            persisted,
            "{sync:?}: head rewritten per removal"
        );
        std::mem::forget(log); // kill -9 before the timer wrote the head

        let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
        no_damage(&recovery);
        // All 60 confirmed records come back (at least once), none is lost.
        assert_holds(&mut log, 1..100);
        log.pop_front(60).unwrap();
        log.persist_head().unwrap(); // the timer
        assert_ne!(fs::read(&head).unwrap(), persisted, "{sync:?}");
        std::mem::forget(log);

        let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
        no_damage(&recovery);
        assert_holds(&mut log, 61..100);
        // Once the interval has passed, a removal writes the head by itself.
        opts = opts.with_head_interval(Duration::ZERO);
        drop(log);
        let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
        log.pop_front(10).unwrap();
        std::mem::forget(log);
        let (mut log, _) = DiskLog::open(opts).unwrap();
        assert_holds(&mut log, 71..100);
    }
}

/// A valid head naming a position past every record (here: a segment number above
/// all of them) drops those records as delivered; recovery counts them so that the
/// daemon can say how many.
#[test]
fn a_head_past_the_data_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 2000, SyncPolicy::Never);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 0..40);
    drop(log);
    let segments = segment_files(dir.path());
    assert!(segments.len() > 1);
    // A head from a bigger log, copied in by hand: segment 1000, offset 0.
    let mut bytes = b"TWH1".to_vec();
    bytes.extend_from_slice(&1000u64.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
    fs::write(dir.path().join("head"), &bytes).unwrap();
    let (log, recovery) = DiskLog::open(opts.clone()).unwrap();
    assert_eq!(recovery.skipped_by_head, 40, "{recovery:?}");
    assert!(recovery.found_damage());
    assert_eq!(log.len(), 0);
    drop(log);

    // A head pointing past the end of its own segment.
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 0..3);
    drop(log);
    let first = segment_files(dir.path())[0].clone();
    let id: u64 = first
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut bytes = b"TWH1".to_vec();
    bytes.extend_from_slice(&id.to_le_bytes());
    bytes.extend_from_slice(&1_000_000u64.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
    fs::write(dir.path().join("head"), &bytes).unwrap();
    let (log, recovery) = DiskLog::open(opts).unwrap();
    assert_eq!(recovery.skipped_by_head, 3, "{recovery:?}");
    assert_eq!(log.len(), 0);
}

#[test]
fn a_torn_last_record_is_cut_off_and_appends_continue_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 1 << 16, SyncPolicy::Always);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 0..10);
    std::mem::forget(log);

    // A power cut in the middle of writing record 9, and one inside record 8's header.
    let (files, locs) = layout(dir.path());
    assert_eq!(files.len(), 1);
    let cut = locs[9].start + HEADER + 3;
    fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(cut as u64)
        .unwrap();

    let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
    assert_eq!(recovery.truncated_bytes, (HEADER + 3) as u64);
    assert_eq!(recovery.damaged_regions, 0);
    assert_eq!(recovery.skipped_bytes, 0);
    assert!(recovery.found_damage());
    assert_eq!(recovery.records, 9);
    assert_eq!(fs::metadata(&files[0]).unwrap().len(), locs[9].start as u64);
    assert_holds(&mut log, 0..9);
    drop(log);

    fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len((locs[8].start + 7) as u64)
        .unwrap();
    let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
    assert_eq!(recovery.truncated_bytes, 7);
    assert_holds(&mut log, 0..8);

    // Never after the old bytes: the next record starts a new segment.
    append_range(&mut log, 8..12);
    assert_eq!(segment_files(dir.path()).len(), 2);
    drop(log);
    let (mut log, recovery) = DiskLog::open(opts).unwrap();
    no_damage(&recovery);
    assert_holds(&mut log, 0..12);
}

#[test]
fn a_missing_or_damaged_head_file_brings_removed_records_back_never_loses_others() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 1 << 16, SyncPolicy::Never);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 0..10);
    log.pop_front(4).unwrap();
    drop(log);
    let head = dir.path().join("head");
    assert_eq!(fs::read(&head).unwrap().len(), 24);

    let mut bytes = fs::read(&head).unwrap();
    bytes[14] ^= 0x01; // the offset
    fs::write(&head, &bytes).unwrap();
    let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
    assert!(recovery.head_reset);
    assert_eq!(recovery.damaged_regions, 0);
    assert_holds(&mut log, 0..10);
    drop(log);

    // A huge garbage head is read no further than its expected size.
    fs::write(&head, vec![0xAB; 1 << 20]).unwrap();
    let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
    assert!(recovery.head_reset);
    assert_holds(&mut log, 0..10);
    log.pop_front(2).unwrap();
    drop(log);

    fs::remove_file(&head).unwrap();
    let (mut log, recovery) = DiskLog::open(opts).unwrap();
    assert!(
        !recovery.head_reset,
        "a missing head is a fresh log, not damage"
    );
    assert_holds(&mut log, 0..10);
}

#[test]
fn segment_numbers_keep_growing_after_everything_was_removed() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 128, SyncPolicy::Never);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 0..20);
    log.pop_front(20).unwrap();
    drop(log);

    // The last segment, fully removed, is deleted at open; the head still names it,
    // so new segments must be numbered above it or their records would count as removed.
    let (log, recovery) = DiskLog::open(opts.clone()).unwrap();
    assert_eq!(recovery.records, 0);
    assert!(segment_files(dir.path()).is_empty());
    drop(log);
    // Again, now with no segment file left at all: only the head remembers the number.
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 20..23);
    drop(log);
    let (mut log, recovery) = DiskLog::open(opts).unwrap();
    no_damage(&recovery);
    assert_holds(&mut log, 20..23);
}

/// One segment of 20 records, damaged by `damage`; returns what open() reported.
fn damaged_single_segment(
    damage: impl FnOnce(&mut Vec<u8>, &[Loc]),
) -> (DiskLog, Recovery, Vec<Loc>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 1 << 20, SyncPolicy::Never);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 0..20);
    drop(log);
    let (files, locs) = layout(dir.path());
    assert_eq!(files.len(), 1);
    let mut bytes = fs::read(&files[0]).unwrap();
    damage(&mut bytes, &locs);
    fs::write(&files[0], &bytes).unwrap();
    let (log, recovery) = DiskLog::open(opts).expect("damage is never an open error");
    (log, recovery, locs, dir)
}

fn size(locs: &[Loc], seqs: std::ops::Range<usize>) -> u64 {
    locs[seqs].iter().map(|l| (l.end - l.start) as u64).sum()
}

#[test]
fn a_flipped_payload_byte_loses_only_that_record() {
    let (mut log, recovery, locs, _dir) = damaged_single_segment(|bytes, locs| {
        bytes[locs[5].start + HEADER + 4] ^= 0x20;
    });
    assert_eq!(recovery.damaged_regions, 1);
    assert_eq!(recovery.skipped_bytes, size(&locs, 5..6));
    assert_eq!(recovery.truncated_bytes, 0);
    assert_holds(&mut log, (0..5).chain(6..20));
}

#[test]
fn a_garbage_length_loses_only_that_record() {
    for garbage in [u32::MAX, 0, 1, 1 << 20] {
        let (mut log, recovery, locs, _dir) = damaged_single_segment(|bytes, locs| {
            let at = locs[5].start + 4;
            bytes[at..at + 4].copy_from_slice(&garbage.to_le_bytes());
        });
        assert_eq!(recovery.damaged_regions, 1, "length {garbage:#x}");
        assert_eq!(
            recovery.skipped_bytes,
            size(&locs, 5..6),
            "length {garbage:#x}"
        );
        assert_holds(&mut log, (0..5).chain(6..20));
    }
}

#[test]
fn a_zeroed_region_loses_only_the_records_it_touches() {
    let (mut log, recovery, locs, _dir) = damaged_single_segment(|bytes, locs| {
        let from = locs[5].start + 30;
        let to = locs[7].start + 5;
        bytes[from..to].fill(0);
    });
    assert_eq!(recovery.damaged_regions, 1);
    assert_eq!(recovery.skipped_bytes, size(&locs, 5..8));
    assert_holds(&mut log, (0..5).chain(8..20));
}

#[test]
fn inserted_garbage_and_a_fake_header_lose_nothing() {
    let (mut log, recovery, _locs, _dir) = damaged_single_segment(|bytes, locs| {
        // A fake record start with a plausible length and a wrong checksum, between
        // records 9 and 10, then plain garbage between 3 and 4.
        let mut fake = b"\xF7TW2".to_vec();
        fake.extend_from_slice(&8u32.to_le_bytes());
        fake.extend_from_slice(&[0x55; 4 + 8 + 8]);
        let at = locs[10].start;
        bytes.splice(at..at, fake);
        let at = locs[4].start;
        bytes.splice(at..at, [0xF7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    });
    assert_eq!(recovery.damaged_regions, 2);
    assert_eq!(recovery.skipped_bytes, 28 + 13);
    assert_holds(&mut log, 0..20);
}

#[test]
fn damage_at_the_end_of_an_older_segment_is_skipped_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 300, SyncPolicy::Never);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 0..30);
    drop(log);
    let (files, locs) = layout(dir.path());
    let first_len = fs::metadata(&files[0]).unwrap().len();
    let torn = b"\xF7TW1 half a record";
    let mut file = fs::OpenOptions::new().append(true).open(&files[0]).unwrap();
    file.write_all(torn).unwrap();
    drop(file);
    // The whole second segment turned to garbage.
    let second_len = fs::metadata(&files[1]).unwrap().len() as usize;
    fs::write(&files[1], vec![0xF7; second_len]).unwrap();

    let (mut log, recovery) = DiskLog::open(opts).unwrap();
    assert_eq!(recovery.damaged_regions, 2);
    assert_eq!(recovery.skipped_bytes, (torn.len() + second_len) as u64);
    assert_eq!(recovery.truncated_bytes, 0);
    assert_eq!(
        fs::metadata(&files[0]).unwrap().len(),
        first_len + torn.len() as u64,
        "older segments are not modified"
    );
    let lost: Vec<u64> = locs.iter().filter(|l| l.file == 1).map(|l| l.seq).collect();
    assert!(!lost.is_empty());
    assert_holds(&mut log, (0..30).filter(|s| !lost.contains(s)));
    assert!(
        !files[1].exists(),
        "a segment left without records is deleted"
    );
}

/// splitmix64: small, deterministic, good enough to pick corruptions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Random corruptions of one segment file: `open` never fails or panics, returns only
/// records that were written, in order, keeps every record the corruption did not
/// touch, and accounts for every byte.
#[test]
fn random_corruptions_keep_every_untouched_record() {
    const RECORDS: u64 = 40;
    for case in 0..300u64 {
        let mut rng = Rng(case);
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), 1 << 20, 700, SyncPolicy::Never);
        let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
        append_range(&mut log, 0..RECORDS);
        drop(log);
        let (files, locs) = layout(dir.path());
        let f = rng.below(files.len());
        let mut bytes = fs::read(&files[f]).unwrap();
        let original_header = bytes[..SEGMENT_HEADER].to_vec();
        let len = bytes.len();

        // `touched(start, end)`: may this corruption have destroyed a record there?
        let kind = rng.below(8);
        let (what, touched): (String, Box<dyn Fn(usize, usize) -> bool>) = match kind {
            0 | 1 => {
                let a = rng.below(len);
                let k = 1 + rng.below(64.min(len - a));
                for b in &mut bytes[a..a + k] {
                    if kind == 0 {
                        *b ^= 1 + rng.below(255) as u8;
                    } else {
                        *b = 0;
                    }
                }
                (
                    format!("{} {a}..{}", ["flip", "zero"][kind], a + k),
                    Box::new(move |s, e| s < a + k && a < e),
                )
            }
            2 => {
                let in_file: Vec<&Loc> = locs.iter().filter(|l| l.file == f).collect();
                let l = in_file[rng.below(in_file.len())];
                let garbage = [u32::MAX, 0, rng.next() as u32, 1 << 31][rng.below(4)];
                bytes[l.start + 4..l.start + 8].copy_from_slice(&garbage.to_le_bytes());
                let (s0, e0) = (l.start, l.end);
                (
                    format!("length {garbage:#x} at {s0}"),
                    Box::new(move |s, e| s == s0 && e == e0),
                )
            }
            3 => {
                let cut = rng.below(len);
                bytes.truncate(cut);
                (format!("truncate at {cut}"), Box::new(move |_, e| e > cut))
            }
            4 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(64);
                let mut junk = rng.bytes(n);
                if rng.below(2) == 0 {
                    junk.splice(0..0, *b"\xF7TW2");
                }
                let n = junk.len();
                bytes.splice(at..at, junk);
                (
                    format!("insert {n} at {at}"),
                    Box::new(move |s, e| s < at && at < e),
                )
            }
            5 => {
                let a = rng.below(len);
                let k = 1 + rng.below(64.min(len - a));
                bytes.drain(a..a + k);
                (
                    format!("remove {a}..{}", a + k),
                    Box::new(move |s, e| s < a + k && a < e),
                )
            }
            6 => {
                // A fake header: right magic, plausible length, wrong checksum.
                let a = rng.below(len.saturating_sub(HEADER).max(1));
                let end = (a + HEADER).min(len);
                let mut fake = b"\xF7TW2".to_vec();
                fake.extend_from_slice(&(rng.below(40) as u32).to_le_bytes());
                fake.extend(rng.bytes(12));
                bytes[a..end].copy_from_slice(&fake[..end - a]);
                (
                    format!("fake header at {a}"),
                    Box::new(move |s, e| s < end && a < e),
                )
            }
            _ => {
                bytes = rng.bytes(len);
                (String::from("whole file random"), Box::new(|_, _| true))
            }
        };
        // Segment headers left intact are neither records nor damage.
        let intact_headers = files.len() - usize::from(!bytes.starts_with(&original_header));
        fs::write(&files[f], &bytes).unwrap();
        let disk_total: u64 = files
            .iter()
            .map(|p| fs::metadata(p).unwrap().len())
            .sum::<u64>()
            - (SEGMENT_HEADER * intact_headers) as u64;

        let context = format!("case {case}: {what} in segment {f} of {}", files.len());
        let (mut log, recovery) =
            DiskLog::open(opts.clone()).unwrap_or_else(|e| panic!("{context}: open failed: {e}"));
        let got = read_all(&mut log);
        let got_seqs: Vec<u64> = got.iter().map(seq_of).collect();
        assert!(
            got_seqs.windows(2).all(|w| w[0] < w[1]),
            "{context}: order {got_seqs:?}"
        );
        for r in &got {
            assert_eq!(*r, record(seq_of(r)), "{context}: a record changed");
        }
        for l in &locs {
            if l.file != f || !touched(l.start, l.end) {
                assert!(
                    got_seqs.contains(&l.seq),
                    "{context}: lost untouched record {}",
                    l.seq
                );
            }
        }
        // A file cut exactly at a record boundary looks like a shorter file (its
        // length is the only end marker, in both format versions): that loss is
        // undetectable; every other one is reported.
        let cut_at_boundary = kind == 3 && locs.iter().any(|l| l.file == f && l.end == bytes.len());
        if got.len() < RECORDS as usize && !cut_at_boundary {
            assert!(recovery.found_damage(), "{context}: records lost silently");
        }
        let kept: u64 = got.iter().map(|r| (HEADER + r.payload.len()) as u64).sum();
        assert_eq!(
            kept + recovery.skipped_bytes + recovery.truncated_bytes,
            disk_total,
            "{context}: every byte is a record, skipped or truncated: {recovery:?}"
        );
        assert_eq!(recovery.records, got.len() as u64, "{context}");

        // And the log goes on: new records come after the salvaged ones.
        append_range(&mut log, RECORDS..RECORDS + 3);
        drop(log);
        let (mut log, _) = DiskLog::open(opts).unwrap();
        let again: Vec<u64> = read_all(&mut log).iter().map(seq_of).collect();
        let mut expected = got_seqs.clone();
        expected.extend(RECORDS..RECORDS + 3);
        assert_eq!(again, expected, "{context}: after reopening");
    }
}

const CHILD_DIR_ENV: &str = "TAGWIRE_DISK_LOG_CHILD_DIR";

/// The writer half of `kill_9_loses_no_acknowledged_record`: appends forever with
/// `SyncPolicy::Always`, printing `ack <seq>` after each append returned.
#[test]
#[ignore = "child process of kill_9_loses_no_acknowledged_record"]
fn kill_9_child_writer() {
    let dir = std::env::var_os(CHILD_DIR_ENV).expect("run by kill_9_loses_no_acknowledged_record");
    let (mut log, _) =
        DiskLog::open(options(Path::new(&dir), 1 << 30, 2048, SyncPolicy::Always)).unwrap();
    // `io::stdout()` directly: the test harness captures `println!`, not this.
    let mut out = std::io::stdout().lock();
    // The harness has printed "test kill_9_child_writer ... " without a newline.
    writeln!(out).unwrap();
    for seq in log.len().. {
        log.append(timestamp(seq), &payload(seq)).unwrap();
        writeln!(out, "ack {seq}").unwrap();
        out.flush().unwrap();
    }
}

#[cfg(unix)]
#[test]
fn kill_9_loses_no_acknowledged_record() {
    use std::os::unix::process::ExitStatusExt;

    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut next = 0u64;
    for (round, acks_before_kill) in [25u64, 90, 160].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill_9_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut acked = Vec::new();
        let mut killed = false;
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let Some(seq) = line.strip_prefix("ack ") else {
                continue;
            };
            acked.push(seq.parse::<u64>().unwrap());
            if !killed && acked.len() as u64 == acks_before_kill {
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
            // Keep reading: acks already in the pipe were acknowledged too.
        }
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the writer must die by SIGKILL, not {status:?}"
        );
        assert_eq!(
            acked,
            (next..next + acked.len() as u64).collect::<Vec<_>>(),
            "round {round}"
        );
        let last_acked = *acked.last().unwrap();

        let (mut log, recovery) =
            DiskLog::open(options(dir.path(), 1 << 30, 2048, SyncPolicy::Always)).unwrap();
        assert_eq!(recovery.damaged_regions, 0, "round {round}: {recovery:?}");
        // Every acknowledged record, intact, and at most the one whose ack the kill
        // interrupted.
        let got = read_all(&mut log);
        assert!(
            got.len() as u64 == last_acked + 1 || got.len() as u64 == last_acked + 2,
            "round {round}: {} records after {last_acked} acked",
            got.len()
        );
        for (seq, r) in got.iter().enumerate() {
            assert_eq!(*r, record(seq as u64), "round {round}");
        }
        next = got.len() as u64;
    }
}

/// A 64 KiB tmpfs fills up: the append fails as disk full, stores nothing partial,
/// and the log works again once removals free space. Needs root (to mount); skipped
/// with a message otherwise.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_reported_and_the_log_stays_consistent() {
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    let base = tempfile::tempdir().unwrap();
    let mount_point = base.path().join("small");
    fs::create_dir(&mount_point).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mount_point)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED a_full_disk_is_reported_and_the_log_stays_consistent: cannot mount a small tmpfs (needs root)");
        return;
    }
    let _unmount = Unmount(mount_point.clone());
    let dir = mount_point.join("cache");
    let opts = options(&dir, 1 << 20, 10_000, SyncPolicy::Always);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();

    let body = |seq: u64| {
        let mut p = payload(seq);
        p.resize(1000, b' ');
        p
    };
    let mut appended = 0u64;
    let err = loop {
        match log.append(timestamp(appended), &body(appended)) {
            Ok(()) => appended += 1,
            Err(e) => break e,
        }
        assert!(appended < 1000, "a 64 KiB file system never filled up");
    };
    assert!(err.is_disk_full(), "{err:?}");
    // 1020-byte records do not line up with 4 KiB pages, so the failed write was
    // partial (the part fitting in the last page), and must have been cut off again.
    let files = segment_files(&dir);
    let on_disk: u64 = files.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
    assert_eq!(
        on_disk,
        appended * 1020 + (SEGMENT_HEADER * files.len()) as u64,
        "a partial record was left in the file"
    );
    assert_eq!(log.disk_bytes(), on_disk);
    let message = err.to_string();
    assert!(
        message.contains("disk is full") && message.contains(dir.to_str().unwrap()),
        "{message}"
    );
    assert!(appended > 20, "only {appended} records fit");
    assert_eq!(log.len(), appended);
    // Still full, still consistent.
    assert!(log.append(0, &body(appended)).unwrap_err().is_disk_full());
    let check = |log: &mut DiskLog, seqs: std::ops::Range<u64>| {
        let got = read_all(log);
        let want: Vec<Record> = seqs
            .map(|s| Record {
                timestamp_ms: timestamp(s),
                payload: body(s),
            })
            .collect();
        assert_eq!(got, want);
    };
    check(&mut log, 0..appended);

    // Removing whole segments frees space; the next append goes through.
    log.pop_front(20).unwrap();
    log.append(timestamp(appended), &body(appended)).unwrap();
    check(&mut log, 20..appended + 1);
    drop(log);

    // No partial record was left behind.
    let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
    no_damage(&recovery);
    check(&mut log, 20..appended + 1);

    // Fill the file system to the last byte, then deliver everything: the head write
    // must not need space, and the drained log must leave no segment behind.
    while log.append(0, &body(0)).is_ok() {}
    let mut filler = fs::File::create(mount_point.join("filler")).unwrap();
    while filler.write_all(&[0u8; 512]).is_ok() {}
    while filler.write_all(&[0u8; 1]).is_ok() {}
    drop(filler);
    let len = log.len();
    log.pop_front(len).unwrap();
    log.persist_head().unwrap();
    assert_eq!(
        segment_files(&dir),
        Vec::<PathBuf>::new(),
        "delivered segments stay on a full disk"
    );
    drop(log);
    let (log, recovery) = DiskLog::open(opts).unwrap();
    assert_eq!(
        recovery.records, 0,
        "delivered records come back: {recovery:?}"
    );
    assert_eq!(log.len(), 0);
}

#[test]
fn errors_name_the_path_or_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    fs::write(&file, b"").unwrap();
    let err = DiskLog::open(options(&file, 1 << 20, 1 << 12, SyncPolicy::Never)).unwrap_err();
    assert!(matches!(err, DiskLogError::Io { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(file.to_str().unwrap()), "{message}");
    assert!(!err.is_disk_full());

    let err = DiskLog::open(options(dir.path(), 0, 1 << 12, SyncPolicy::Never)).unwrap_err();
    assert!(err.to_string().contains("`max_bytes`"), "{err}");
    let err = DiskLog::open(options(dir.path(), 1 << 20, 0, SyncPolicy::Never)).unwrap_err();
    assert!(err.to_string().contains("`segment_bytes`"), "{err}");
    let err = DiskLog::open(options(dir.path(), 1 << 40, 1 << 31, SyncPolicy::Never)).unwrap_err();
    assert!(err.to_string().contains("`segment_bytes`"), "{err}");
}

#[test]
fn sync_and_interval_policy_keep_the_log_readable() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(
        dir.path(),
        1 << 20,
        256,
        SyncPolicy::Interval(Duration::ZERO),
    );
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    append_range(&mut log, 0..20);
    log.pop_front(3).unwrap();
    log.sync().unwrap();
    std::mem::forget(log);
    let (mut log, recovery) = DiskLog::open(opts).unwrap();
    no_damage(&recovery);
    assert_holds(&mut log, 3..20);
}

#[test]
fn a_record_damaged_after_open_is_an_error_that_popping_gets_past() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) =
        DiskLog::open(options(dir.path(), 1 << 20, 1 << 16, SyncPolicy::Never)).unwrap();
    append_range(&mut log, 0..5);
    let (files, locs) = layout(dir.path());
    let mut bytes = fs::read(&files[0]).unwrap();
    bytes[locs[2].start + HEADER] ^= 0x01;
    fs::write(&files[0], &bytes).unwrap();

    assert_eq!(log.read(0, 2).unwrap(), vec![record(0), record(1)]);
    let err = log.read(1, 3).unwrap_err();
    match &err {
        DiskLogError::Corrupt { path, offset, .. } => {
            assert_eq!(path, &files[0]);
            assert_eq!(*offset, locs[2].start as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(
        err.to_string().contains(files[0].to_str().unwrap()),
        "{err}"
    );
    log.pop_front(3).unwrap();
    assert_holds(&mut log, 3..5);
}

/// Staged records reach the file with one write at `commit`; a reopen finds them all.
#[test]
fn staged_records_are_written_by_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) =
        DiskLog::open(options(dir.path(), 1 << 20, 1 << 20, SyncPolicy::Never)).unwrap();
    for seq in 0..10 {
        log.stage(timestamp(seq), &payload(seq)).unwrap();
    }
    assert_eq!((log.len(), log.staged(), log.commits()), (10, 10, 0));
    log.commit().unwrap();
    assert_eq!((log.staged(), log.commits()), (0, 1));
    drop(log);
    let (mut log, recovery) =
        DiskLog::open(options(dir.path(), 1 << 20, 1 << 20, SyncPolicy::Never)).unwrap();
    assert_eq!(recovery.records, 10);
    let seqs: Vec<u64> = log.read(0, 100).unwrap().iter().map(seq_of).collect();
    assert_eq!(seqs, (0..10).collect::<Vec<_>>());
}

/// The directory deleted, then the segment being written replaced: `check_location`
/// notices each, and `reset` writes the given records into the recreated directory,
/// where a reopen (as after `kill -9`) finds exactly them.
#[test]
fn a_deleted_or_replaced_cache_is_noticed_and_reset_keeps_every_record() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("cache");
    let opts = || options(&dir, 1 << 20, 1 << 20, SyncPolicy::Never);
    let (mut log, _) = DiskLog::open(opts()).unwrap();
    append_range(&mut log, 0..5);
    assert_eq!(log.check_location(), None);

    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        log.check_location(),
        Some("the cache directory was deleted")
    );
    // The segment being written is still readable through its open handle.
    let kept = log.read(0, 10).unwrap();
    assert_eq!(kept.len(), 5);
    let records: Vec<(u64, &[u8])> = kept
        .iter()
        .map(|r| (r.timestamp_ms, r.payload.as_slice()))
        .collect();
    log.reset(&records).unwrap();
    assert_eq!(log.check_location(), None);
    append_range(&mut log, 5..7);

    // Replace the segment being written by another file of the same name.
    let segment = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    fs::write(dir.join("other"), b"not ours").unwrap();
    fs::rename(dir.join("other"), &segment).unwrap();
    assert_eq!(
        log.check_location(),
        Some("the segment file being written was replaced")
    );
    let kept = log.read(0, 10).unwrap();
    let records: Vec<(u64, &[u8])> = kept
        .iter()
        .map(|r| (r.timestamp_ms, r.payload.as_slice()))
        .collect();
    log.reset(&records).unwrap();
    std::mem::forget(log); // as kill -9: nothing runs at exit

    let (mut log, recovery) = DiskLog::open(opts()).unwrap();
    assert!(!recovery.found_damage(), "{recovery:?}");
    let seqs: Vec<u64> = log.read(0, 100).unwrap().iter().map(seq_of).collect();
    assert_eq!(seqs, (0..7).collect::<Vec<_>>());
    assert_eq!(log.check_location(), None);
}

/// The segment file unlinked (the directory kept): noticed through the open handle.
#[test]
fn a_deleted_segment_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) =
        DiskLog::open(options(dir.path(), 1 << 20, 1 << 20, SyncPolicy::Never)).unwrap();
    append_range(&mut log, 0..3);
    for e in fs::read_dir(dir.path()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|e| e == "seg") {
            fs::remove_file(path).unwrap();
        }
    }
    assert_eq!(
        log.check_location(),
        Some("the segment file being written was deleted")
    );
}

/// Under `SyncPolicy::Interval`, starting a segment does not sync the one it closes:
/// the next sync covers every closed segment (one `fdatasync` each) and the open one,
/// so no append waits for the device before the interval is up, and a reopen finds
/// every record. A segment deleted before that sync is not synced at all.
#[test]
fn closed_segments_are_synced_by_the_next_interval_sync_not_when_closed() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || {
        options(
            dir.path(),
            1 << 20,
            3 * record_size(0),
            SyncPolicy::Interval(Duration::from_secs(3600)),
        )
    };
    let (mut log, _) = DiskLog::open(opts()).unwrap();
    append_range(&mut log, 0..9); // about three segments
    assert!(segment_files(dir.path()).len() >= 3);
    assert_eq!(log.data_syncs(), 0, "no append waited for the device");
    log.sync().unwrap();
    let files = segment_files(dir.path()).len() as u64;
    assert_eq!(log.data_syncs(), files, "each segment synced once");
    log.sync().unwrap();
    assert_eq!(log.data_syncs(), files, "nothing left to sync");
    // Closed segments emptied and deleted before the sync are not synced.
    append_range(&mut log, 9..18);
    // Remove every record but those of the last segment file.
    let (files, locs) = layout(dir.path());
    let first_kept = locs.iter().find(|l| l.file == files.len() - 1).unwrap().seq;
    assert!(first_kept > 9, "closed segments hold 9..{first_kept}");
    log.pop_front(first_kept).unwrap();
    let before = log.data_syncs();
    log.sync().unwrap();
    assert_eq!(log.data_syncs() - before, 1, "only the open segment");
    drop(log);
    let (mut log, recovery) = DiskLog::open(opts()).unwrap();
    no_damage(&recovery);
    assert_holds(&mut log, first_kept..18);
    // Many segments closed within one interval: a few wait, the rest are synced as
    // they close, so the log never holds more than a few files open for syncing.
    let before = log.data_syncs();
    append_range(&mut log, 18..80);
    let closed = segment_files(dir.path()).len() as u64 - 2;
    assert!(closed > 12, "{closed} segments closed");
    let synced = log.data_syncs() - before;
    assert!(
        synced > 0 && synced < closed,
        "{synced} of {closed} synced on closing"
    );
}

/// Under `SyncPolicy::Always` every commit is synced before it returns, so closing a
/// segment has nothing left to sync.
#[test]
fn always_syncs_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 3 * record_size(0), SyncPolicy::Always);
    let (mut log, _) = DiskLog::open(opts).unwrap();
    append_range(&mut log, 0..9);
    assert_eq!(log.data_syncs(), 9);
    log.sync().unwrap();
    assert_eq!(log.data_syncs(), 9);
}

/// Records staged and then removed before the commit (dropped to make room) are still
/// written, so the file keeps the offsets the index has for the records after them.
#[test]
fn records_removed_while_staged_keep_the_file_in_step_with_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) =
        DiskLog::open(options(dir.path(), 1 << 20, 1 << 20, SyncPolicy::Never)).unwrap();
    append_range(&mut log, 0..2);
    for seq in 2..4 {
        log.stage(timestamp(seq), &payload(seq)).unwrap();
    }
    log.remove_front(4).unwrap();
    log.commit().unwrap();
    append_range(&mut log, 4..6);
    assert_holds(&mut log, 4..6);
    drop(log);
    let (mut log, recovery) =
        DiskLog::open(options(dir.path(), 1 << 20, 1 << 20, SyncPolicy::Never)).unwrap();
    no_damage(&recovery);
    assert_holds(&mut log, 4..6);
}

/// The first spare segment file the log keeps for recycling (see the format docs).
const SPARE: &str = "spare-0";

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).unwrap().ino()
}

/// Appends from `next` until the directory holds `files` segment files; returns the
/// next sequence number.
fn append_until_files(log: &mut DiskLog, dir: &Path, mut next: u64, files: usize) -> u64 {
    while segment_files(dir).len() < files {
        append_range(log, next..next + 1);
        next += 1;
        assert!(next < 10_000, "never reached {files} segment files");
    }
    next
}

/// A wholly removed segment is renamed to the spare and overwritten by the next
/// segment, and after a crash its records from the previous life are not read
/// again, nor reported as damage: exactly the new records come back.
#[cfg(unix)]
#[test]
fn a_recycled_segment_never_brings_back_its_previous_life_after_a_crash() {
    for sync in [
        SyncPolicy::Always,
        SyncPolicy::Interval(Duration::from_secs(3600)),
        SyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), 1 << 20, 600, sync);
        let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
        // A full first segment and the start of a second.
        let next = append_until_files(&mut log, dir.path(), 0, 2);
        let (files, locs) = layout(dir.path());
        let first: Vec<u64> = locs.iter().filter(|l| l.file == 0).map(|l| l.seq).collect();
        let first_inode = inode(&files[0]);
        let first_len = fs::metadata(&files[0]).unwrap().len();

        // Confirming all of it recycles the file instead of deleting it.
        log.pop_front(first.len() as u64).unwrap();
        assert!(!files[0].exists());
        let spare = dir.path().join(SPARE);
        assert_eq!(inode(&spare), first_inode, "the segment became the spare");
        assert_eq!(
            log.disk_bytes(),
            fs::metadata(&files[1]).unwrap().len() + first_len
        );

        // The next segment is the same file, overwritten from the start with one record
        // only: the previous life's records lie after it.
        let end = append_until_files(&mut log, dir.path(), next, 2);
        let third = segment_files(dir.path()).pop().unwrap();
        assert_eq!(
            inode(&third),
            first_inode,
            "the spare became the next segment"
        );
        assert!(!spare.exists());
        assert_eq!(
            fs::metadata(&third).unwrap().len(),
            first_len,
            "overwritten, not appended"
        );
        let kept: Vec<u64> = (first.len() as u64..end).collect();
        assert_holds(&mut log, kept.clone());
        std::mem::forget(log); // a crash: nothing tidied up

        let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
        no_damage(&recovery);
        assert_eq!(recovery.skipped_by_head, 0, "{recovery:?}");
        assert!(recovery.stale_bytes > 0, "{recovery:?}");
        assert_holds(&mut log, kept.clone());
        // And the log goes on after them.
        append_range(&mut log, end..end + 2);
        drop(log);
        let (mut log, recovery) = DiskLog::open(opts).unwrap();
        no_damage(&recovery);
        assert_holds(&mut log, kept.iter().copied().chain(end..end + 2));
    }
}

/// Damage between two records of a recycled segment's new life is still damage,
/// reported as before; only the bytes past its last valid record are stale.
#[cfg(unix)]
#[test]
fn damage_inside_a_recycled_segment_is_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 600, SyncPolicy::Never);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    let next = append_until_files(&mut log, dir.path(), 0, 2);
    let (_, locs) = layout(dir.path());
    let first = locs.iter().filter(|l| l.file == 0).count() as u64;
    log.pop_front(first).unwrap();
    let next = append_until_files(&mut log, dir.path(), next, 2);
    // Three records in the recycled file's new life.
    append_range(&mut log, next..next + 2);
    drop(log);
    let third = segment_files(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&third).unwrap();
    // The second record's payload: its first byte past the 24-byte segment header
    // and the first record.
    let second = SEGMENT_HEADER + record_size(next - 1) as usize;
    bytes[second + HEADER] ^= 0x20;
    fs::write(&third, &bytes).unwrap();

    let (mut log, recovery) = DiskLog::open(opts).unwrap();
    assert_eq!(recovery.damaged_regions, 1, "{recovery:?}");
    assert_eq!(recovery.skipped_bytes, record_size(next), "{recovery:?}");
    assert_eq!(recovery.truncated_bytes, 0, "{recovery:?}");
    assert!(recovery.stale_bytes > 0, "{recovery:?}");
    assert_holds(&mut log, (first..next).chain(next + 1..next + 2));
}

/// A spare renamed to a new segment number whose first write never happened (a
/// crash in between) still names its old number: every byte of it is stale.
#[test]
fn a_spare_renamed_but_never_written_holds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), 1 << 20, 600, SyncPolicy::Never);
    let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
    let next = append_until_files(&mut log, dir.path(), 0, 2);
    let (files, locs) = layout(dir.path());
    let first = locs.iter().filter(|l| l.file == 0).count() as u64;
    log.pop_front(first).unwrap();
    std::mem::forget(log);
    // What a crash right after the rename leaves: the next segment's name, the old
    // contents.
    let renamed = dir.path().join("00000000000000000099.seg");
    fs::rename(dir.path().join(SPARE), &renamed).unwrap();
    let len = fs::metadata(&renamed).unwrap().len();

    let (mut log, recovery) = DiskLog::open(opts).unwrap();
    no_damage(&recovery);
    assert_eq!(
        recovery.stale_bytes,
        len - SEGMENT_HEADER as u64,
        "{recovery:?}"
    );
    assert_holds(&mut log, first..next);
    assert!(!renamed.exists(), "a segment without records is deleted");
    assert_eq!(segment_files(dir.path()), files[1..].to_vec());
}

/// A cache written by the version-1 writer (checked in, made at commit 0f5ee2e) opens
/// and delivers its records; new ones are written as version 2, and the version-1
/// files are deleted once delivered, never recycled.
#[test]
fn a_version_1_cache_is_read_and_then_replaced_by_version_2() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-cache");
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let v1_files = segment_files(dir.path());
    assert_eq!(v1_files.len(), 4);
    assert_eq!(&fs::read(&v1_files[0]).unwrap()[..4], b"\xF7TW1");
    let opts = options(dir.path(), 1 << 20, 256, SyncPolicy::Always);
    let (mut log, recovery) = DiskLog::open(opts.clone()).unwrap();
    no_damage(&recovery);
    assert_eq!(recovery.stale_bytes, 0);
    // The fixture holds records 0..12 with the first 3 removed.
    assert_eq!(recovery.records, 9);
    assert_holds(&mut log, 3..12);

    append_range(&mut log, 12..15);
    let newest = segment_files(dir.path()).pop().unwrap();
    assert!(!v1_files.contains(&newest));
    assert_eq!(&fs::read(&newest).unwrap()[..4], b"\xF7TS2");
    assert_holds(&mut log, 3..15);
    log.pop_front(9).unwrap();
    assert!(
        v1_files.iter().all(|p| !p.exists()),
        "delivered v1 segments are deleted"
    );
    assert!(
        !dir.path().join(SPARE).exists(),
        "a v1 segment is never recycled"
    );
    drop(log);

    let (mut log, recovery) = DiskLog::open(opts).unwrap();
    no_damage(&recovery);
    assert_holds(&mut log, 12..15);
}

/// The spare counts in `disk_bytes` and is kept only while all the files fit in
/// `max_bytes`: otherwise a wholly removed segment is deleted as before.
#[test]
fn the_spare_is_kept_only_within_max_bytes() {
    // Files' total when the first segment is removed, then that limit and one less.
    let mut total = None;
    for max_bytes in [1 << 20, 0, 1] {
        let max_bytes = match total {
            Some(total) => total - max_bytes,
            None => max_bytes,
        };
        let dir = tempfile::tempdir().unwrap();
        let opts = options(dir.path(), max_bytes, 600, SyncPolicy::Never);
        let (mut log, _) = DiskLog::open(opts.clone()).unwrap();
        append_until_files(&mut log, dir.path(), 0, 2);
        let (files, locs) = layout(dir.path());
        let files_len: u64 = files.iter().map(|p| fs::metadata(p).unwrap().len()).sum();
        let first = locs.iter().filter(|l| l.file == 0).count() as u64;
        log.pop_front(first).unwrap();
        let spare = dir.path().join(SPARE);
        let kept = files_len <= max_bytes;
        assert_eq!(
            spare.exists(),
            kept,
            "max_bytes {max_bytes}, files {files_len}"
        );
        let on_disk: u64 = segment_files(dir.path())
            .iter()
            .chain(kept.then_some(&spare))
            .map(|p| fs::metadata(p).unwrap().len())
            .sum();
        assert_eq!(log.disk_bytes(), on_disk, "max_bytes {max_bytes}");
        drop(log);
        // A spare left by a previous run is reused the same way.
        let (log, _) = DiskLog::open(opts).unwrap();
        assert_eq!(log.disk_bytes(), on_disk, "reopened, max_bytes {max_bytes}");
        total.get_or_insert(files_len);
    }
}

/// The daemon's rhythm: at a rollover the old segment still holds messages in flight,
/// so the new one starts before the old one is retired; then the owner's timer finds
/// the log drained and retires the new one too. Both become spares, and the next two
/// segments are those two files again: no file is created or deleted once the spares
/// exist.
#[cfg(unix)]
#[test]
fn rollovers_and_drained_tails_reuse_the_same_two_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = DiskLog::open(options(dir.path(), 1 << 20, 600, SyncPolicy::Never)).unwrap();
    let mut next = 0;
    let mut files_seen = std::collections::BTreeSet::new();
    // Open handles keep a deleted file's inode number from being reused, so that a
    // new file cannot pass for a recycled one.
    let mut handles = Vec::new();
    let mut see = |files: Vec<PathBuf>, seen: &mut std::collections::BTreeSet<u64>| {
        for path in files {
            seen.insert(inode(&path));
            handles.push(fs::File::open(&path).unwrap());
        }
    };
    for round in 0..5 {
        // A full segment A and the start of B, A's last message still in flight.
        next = append_until_files(&mut log, dir.path(), next, 2);
        see(segment_files(dir.path()), &mut files_seen);
        // A's messages confirmed: A is retired while B is being written.
        let in_a = log.len() - 1;
        log.pop_front(in_a).unwrap();
        // The rest confirmed, and the timer retires the drained tail B.
        log.pop_front(log.len()).unwrap();
        log.persist_head().unwrap();
        assert_eq!(
            segment_files(dir.path()),
            Vec::<PathBuf>::new(),
            "round {round}"
        );
        append_range(&mut log, next..next + 1);
        next += 1;
        see(segment_files(dir.path()), &mut files_seen);
    }
    assert_eq!(
        files_seen.len(),
        2,
        "files were created and deleted instead of recycled"
    );
}
