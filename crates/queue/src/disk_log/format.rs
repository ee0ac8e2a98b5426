//! The bytes on disk: record and `head` layouts, segment file names, and the format
//! version they carry.
//!
//! # Versioning
//!
//! The format version is part of the magics. Version 1 wrote records starting with
//! `\xF7TW1` (CRC without the segment number) and no segment header; version 2 (this
//! one) writes a segment header `\xF7TS2` and records `\xF7TW2` whose CRC also covers
//! the segment number, so that segment files can be recycled (see the module
//! documentation). The `head` file is unchanged (`TWH1`). Version 2 reads version-1
//! segments, delivers their records in order, and deletes them once they are removed:
//! it never recycles one, because a version-1 record's CRC would pass in any life of the
//! file. A version-1 record is accepted only in a file without a valid version-2 header.
//! A reader of version 1 treats a record with any
//! other magic as damage, so it never misreads a newer record: it skips it and counts
//! it in `Recovery::damaged_regions`. A future version **must** therefore:
//!
//! * use a new magic (`\xF7TW3`, `TWH2`) rather than reinterpret fields of version 2;
//! * read version 1 files it finds (segments and `head`) and keep delivering their
//!   records, oldest first, before its own: a gateway upgraded with messages in its
//!   cache must not lose them; it may write only the new version from then on;
//! * never rewrite a version 1 segment in place (it would not be crash-safe); old
//!   segments leave as their records are confirmed, like any other.
//!
//! A downgrade is not supported: an older tagwire skips newer records as damage (and
//! says so in its recovery log line) rather than misdelivering them. (A version-1
//! tagwire opening a version-2 cache reports its every segment as damaged and delivers
//! none of it: empty the cache before a downgrade.)
//!
//! ## The message kind: bit 63 of the timestamp (since version 1)
//!
//! The queue above the log marks a driver-state message (`MessageKind::DriverState`)
//! by setting bit 63 of the record's timestamp field; data records leave it clear,
//! and a data timestamp that would set it (2^63 ms and more, some 292 million years:
//! never a real clock) is stored saturated below it. The log itself neither sets nor
//! reads the bit. This is the one field of version 1 given a second meaning, and
//! deliberately without a new magic, because the bit can only change which counter
//! counts a record, never the bytes delivered:
//!
//! * a version-1 record written before the flag existed has bit 63 clear (tagwire
//!   wrote epoch milliseconds there) and reads back as data, as it always did;
//! * an older tagwire reading a flagged record (a downgrade) delivers its payload like
//!   any message, which is what it is, with a far-future timestamp field that nothing
//!   sends; a new magic would instead have made it skip the record as damage and warn;
//! * the record layout, the CRC and the salvage scan are unchanged, so no reader
//!   needs to know about kinds.

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::error::DiskLogError;
#[cfg(doc)]
use super::DiskLog;

/// Bytes each record takes on disk besides its payload (magic, length, CRC, timestamp).
pub const RECORD_HEADER_LEN: usize = 20;

/// Magic of a version-2 record, whose CRC also covers its segment's number.
pub(super) const RECORD_MAGIC: [u8; 4] = [0xF7, b'T', b'W', b'2'];
/// Magic of a version-1 record (no segment number in the CRC): read, never written.
pub(super) const RECORD_MAGIC_V1: [u8; 4] = [0xF7, b'T', b'W', b'1'];
/// Magic of the version-2 segment header.
pub(super) const SEGMENT_MAGIC: [u8; 4] = [0xF7, b'T', b'S', b'2'];
/// Bytes of the version-2 segment header: magic, segment number, stale extent, CRC.
pub(super) const SEGMENT_HEADER_LEN: usize = 24;
/// Names of the recycled segment files waiting for their next life (no segment names,
/// so the listing of segments never sees them). Two: at a rollover the old segment
/// still holds messages in flight when the new one starts, and the new one is often
/// retired (the owner's timer finds the log drained) before the next rollover.
pub(super) const SPARE_FILES: [&str; 2] = ["spare-0", "spare-1"];
pub(super) const HEAD_MAGIC: [u8; 4] = *b"TWH1";
pub(super) const HEAD_LEN: usize = 24;
pub(super) const HEAD_FILE: &str = "head";
pub(super) const HEAD_TMP_FILE: &str = "head.tmp";
pub(super) const SEGMENT_EXT: &str = ".seg";
pub(super) const SEGMENT_DIGITS: usize = 20;

/// One message read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The timestamp given to [`DiskLog::append`] (milliseconds since the Unix epoch).
    pub timestamp_ms: u64,
    /// The bytes given to [`DiskLog::append`].
    pub payload: Vec<u8>,
}

pub(super) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:0SEGMENT_DIGITS$}{SEGMENT_EXT}"))
}

/// Segment numbers in `dir`, ascending. Other files are left alone.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<u64>, DiskLogError> {
    let entries = fs::read_dir(dir).map_err(|e| DiskLogError::io(dir, "list", e))?;
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DiskLogError::io(dir, "list", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(digits) = name.strip_suffix(SEGMENT_EXT) else {
            continue;
        };
        if digits.len() == SEGMENT_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(id) = digits.parse::<u64>() {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

pub(super) enum HeadFile {
    Valid(u64, u64),
    Missing,
    Damaged,
}

pub(super) fn encode_head(segment: u64, offset: u64) -> [u8; HEAD_LEN] {
    let mut bytes = [0u8; HEAD_LEN];
    bytes[0..4].copy_from_slice(&HEAD_MAGIC);
    bytes[4..12].copy_from_slice(&segment.to_le_bytes());
    bytes[12..20].copy_from_slice(&offset.to_le_bytes());
    let crc = crc32fast::hash(&bytes[0..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    bytes
}

pub(super) fn decode_head(bytes: &[u8]) -> Option<(u64, u64)> {
    if bytes.len() != HEAD_LEN || bytes[0..4] != HEAD_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(bytes[20..24].try_into().ok()?);
    if crc != crc32fast::hash(&bytes[0..20]) {
        return None;
    }
    let segment = u64::from_le_bytes(bytes[4..12].try_into().ok()?);
    let offset = u64::from_le_bytes(bytes[12..20].try_into().ok()?);
    Some((segment, offset))
}

pub(super) fn read_head(dir: &Path) -> Result<HeadFile, DiskLogError> {
    let path = dir.join(HEAD_FILE);
    let mut bytes = Vec::with_capacity(HEAD_LEN);
    match File::open(&path) {
        // `take` bounds the read: a huge garbage file is just "damaged".
        Ok(file) => file
            .take(HEAD_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| DiskLogError::io(&path, "read head file", e))?,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(HeadFile::Missing),
        Err(e) => return Err(DiskLogError::io(&path, "open head file", e)),
    };
    Ok(match decode_head(&bytes) {
        Some((segment, offset)) => HeadFile::Valid(segment, offset),
        None => HeadFile::Damaged,
    })
}

/// A version-2 segment header: what a segment file starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SegmentHeader {
    /// The segment number the file was given when this header was written.
    pub(super) id: u64,
    /// Bytes of the file left from its previous life (0 for a new file): whatever
    /// lies past the last valid record and below this is stale, not damage.
    pub(super) stale_len: u64,
}

pub(super) fn encode_segment_header(header: SegmentHeader) -> [u8; SEGMENT_HEADER_LEN] {
    let mut bytes = [0u8; SEGMENT_HEADER_LEN];
    bytes[0..4].copy_from_slice(&SEGMENT_MAGIC);
    bytes[4..12].copy_from_slice(&header.id.to_le_bytes());
    bytes[12..20].copy_from_slice(&header.stale_len.to_le_bytes());
    let crc = crc32fast::hash(&bytes[0..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    bytes
}

pub(super) fn decode_segment_header(bytes: &[u8]) -> Option<SegmentHeader> {
    let bytes = bytes.get(..SEGMENT_HEADER_LEN)?;
    if bytes[0..4] != SEGMENT_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(bytes[20..24].try_into().ok()?);
    if crc != crc32fast::hash(&bytes[0..20]) {
        return None;
    }
    Some(SegmentHeader {
        id: u64::from_le_bytes(bytes[4..12].try_into().ok()?),
        stale_len: u64::from_le_bytes(bytes[12..20].try_into().ok()?),
    })
}

/// The CRC of a record with this `magic`, fed with what precedes the record's own
/// fields: the segment number for version 2, nothing for version 1. `None` when the
/// magic is not a record's, or is version 1 and `accept_v1` is false.
///
/// Covering the segment number is what makes recycling safe: a record written in a
/// file's previous life, under another number, fails the CRC in its new one. Two
/// numbers that differ only in their low 32 bits always do (a CRC-32 detects every
/// error confined to 32 consecutive bits), so a collision needs 2^32 segments.
pub(super) fn record_crc(magic: &[u8], segment: u64, accept_v1: bool) -> Option<crc32fast::Hasher> {
    if magic == RECORD_MAGIC {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&segment.to_le_bytes());
        Some(crc)
    } else if accept_v1 && magic == RECORD_MAGIC_V1 {
        Some(crc32fast::Hasher::new())
    } else {
        None
    }
}

/// Appends one encoded version-2 record of segment `segment` to `buf` (a batch is
/// encoded back to back).
pub(super) fn encode_record(buf: &mut Vec<u8>, segment: u64, timestamp_ms: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len()).expect("checked by append");
    let at = buf.len();
    buf.reserve(RECORD_HEADER_LEN + payload.len());
    buf.extend_from_slice(&RECORD_MAGIC);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&[0; 4]); // CRC, filled in below
    buf.extend_from_slice(&timestamp_ms.to_le_bytes());
    buf.extend_from_slice(payload);
    let record = &mut buf[at..];
    let mut crc = record_crc(&RECORD_MAGIC, segment, false).expect("our own magic");
    crc.update(&record[4..8]);
    crc.update(&record[12..]);
    let crc = crc.finalize();
    record[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the record of segment `segment` at the start of `bytes` (which may
/// continue past it); version-1 records only when `accept_v1`.
pub(super) fn decode_record(
    bytes: &[u8],
    segment: u64,
    accept_v1: bool,
) -> Result<Record, &'static str> {
    if bytes.len() < RECORD_HEADER_LEN {
        return Err("header cut short");
    }
    let Some(mut crc) = record_crc(&bytes[0..4], segment, accept_v1) else {
        return Err("bad magic");
    };
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    if bytes.len() - RECORD_HEADER_LEN < len {
        return Err("length runs past the record");
    }
    let stored_crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let end = RECORD_HEADER_LEN + len;
    crc.update(&bytes[4..8]);
    crc.update(&bytes[12..end]);
    if crc.finalize() != stored_crc {
        return Err("checksum mismatch");
    }
    Ok(Record {
        timestamp_ms: u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")),
        payload: bytes[RECORD_HEADER_LEN..end].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_is_the_documented_one() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 9, 0x0102_0304_0506_0708, b"hi");
        assert_eq!(buf.len(), RECORD_HEADER_LEN + 2);
        assert_eq!(&buf[0..4], b"\xF7TW2");
        assert_eq!(&buf[4..8], &2u32.to_le_bytes());
        let mut covered = 9u64.to_le_bytes().to_vec();
        covered.extend_from_slice(&buf[4..8]);
        covered.extend_from_slice(&buf[12..]);
        assert_eq!(&buf[8..12], &crc32fast::hash(&covered).to_le_bytes());
        assert_eq!(&buf[12..20], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&buf[20..], b"hi");
        let record = decode_record(&buf, 9, false).unwrap();
        assert_eq!(record.timestamp_ms, 0x0102_0304_0506_0708);
        assert_eq!(record.payload, b"hi");
    }

    #[test]
    fn a_record_of_another_segment_number_fails_its_crc() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 41, 7, b"{}");
        assert!(decode_record(&buf, 41, true).is_ok());
        for other in [0, 40, 42, 41 + (1 << 31), u64::from(u32::MAX)] {
            assert_eq!(decode_record(&buf, other, true), Err("checksum mismatch"));
        }
    }

    #[test]
    fn version_1_records_are_read_only_where_allowed() {
        // A version-1 record: the same layout, the CRC without the segment number.
        let mut buf = b"\xF7TW1".to_vec();
        buf.extend_from_slice(&2u32.to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&2u32.to_le_bytes());
        crc.update(&5u64.to_le_bytes());
        crc.update(b"hi");
        buf.extend_from_slice(&crc.finalize().to_le_bytes());
        buf.extend_from_slice(&5u64.to_le_bytes());
        buf.extend_from_slice(b"hi");
        assert_eq!(decode_record(&buf, 3, true).unwrap().payload, b"hi");
        assert_eq!(decode_record(&buf, 3, false), Err("bad magic"));
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let header = SegmentHeader {
            id: 12,
            stale_len: 4 << 20,
        };
        let bytes = encode_segment_header(header);
        assert_eq!(&bytes[0..4], b"\xF7TS2");
        assert_eq!(decode_segment_header(&bytes), Some(header));
        for i in 0..SEGMENT_HEADER_LEN {
            let mut damaged = bytes;
            damaged[i] ^= 0x01;
            assert_eq!(decode_segment_header(&damaged), None, "byte {i}");
        }
        assert_eq!(
            decode_segment_header(&bytes[..SEGMENT_HEADER_LEN - 1]),
            None
        );
    }

    #[test]
    fn decode_rejects_every_single_bit_flip() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 3, 42, b"{\"a\":1}");
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_record(&damaged, 3, true).is_err(),
                "bit {bit} flip accepted"
            );
        }
    }

    #[test]
    fn head_round_trips_and_rejects_damage() {
        let bytes = encode_head(7, 1234);
        assert_eq!(&bytes[0..4], b"TWH1");
        assert_eq!(decode_head(&bytes), Some((7, 1234)));
        for i in 0..HEAD_LEN {
            let mut damaged = bytes;
            damaged[i] ^= 0x10;
            assert_eq!(decode_head(&damaged), None, "byte {i}");
        }
        assert_eq!(decode_head(&bytes[..HEAD_LEN - 1]), None);
        assert_eq!(decode_head(&[]), None);
    }

    #[test]
    fn segment_names_sort_like_numbers() {
        let dir = Path::new("d");
        let a = segment_path(dir, 9);
        let b = segment_path(dir, 10);
        assert_eq!(a, Path::new("d/00000000000000000009.seg"));
        assert!(a < b);
        assert_eq!(
            segment_path(dir, u64::MAX),
            Path::new("d/18446744073709551615.seg")
        );
    }
}
