//! Salvage: reading a segment record by record at open, skipping damaged stretches by
//! scanning forward to the next valid record, and telling the stale bytes a recycled
//! segment file keeps from its previous life apart from damage.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use super::format::{
    decode_segment_header, record_crc, SegmentHeader, RECORD_HEADER_LEN, RECORD_MAGIC,
    RECORD_MAGIC_V1, SEGMENT_HEADER_LEN,
};

/// Read buffer of the recovery scan; payloads are checksummed through it in chunks,
/// so a length read from a damaged header never sizes an allocation.
const SCAN_BUFFER: usize = 64 * 1024;

/// The first byte of every record magic (both versions), where a resynchronising scan
/// stops to probe.
const RECORD_START: u8 = RECORD_MAGIC[0];
const _: () = assert!(
    RECORD_MAGIC_V1[0] == RECORD_START,
    "the versions share a first byte"
);

/// What scanning one segment found.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub(super) offsets: VecDeque<u32>,
    /// End of the last valid record (the scan start if there is none).
    pub(super) end: u64,
    pub(super) file_len: u64,
    /// Damaged regions followed by a valid record.
    pub(super) damaged_regions: u64,
    pub(super) skipped_bytes: u64,
    /// Bytes after the last valid record: a torn write or a damaged end. Excludes
    /// `stale_bytes`.
    pub(super) trailing_bytes: u64,
    /// Bytes after the last valid record that the file held before it was recycled
    /// (below the header's stale extent): expected, not damage.
    pub(super) stale_bytes: u64,
    /// The file starts with a valid version-2 header naming this segment: it holds
    /// no version-1 record, so it may be recycled.
    pub(super) version_2: bool,
    /// The file's extent from its previous life, per its header (0 if none).
    pub(super) stale_len: u64,
}

/// A buffered reader that knows its position, so that the scan can jump to a
/// candidate record and come back without discarding the buffer.
struct ScanReader {
    inner: BufReader<File>,
    pos: u64,
}

impl ScanReader {
    fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        if pos != self.pos {
            let delta = i64::try_from(i128::from(pos) - i128::from(self.pos))
                .map_err(|_| io::Error::new(ErrorKind::InvalidInput, "seek too far"))?;
            self.inner.seek_relative(delta)?;
            self.pos = pos;
        }
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// Is there a valid record of segment `id` at `pos`? Returns its size.
    fn probe(
        &mut self,
        pos: u64,
        file_len: u64,
        id: u64,
        accept_v1: bool,
    ) -> io::Result<Option<u64>> {
        if file_len - pos < RECORD_HEADER_LEN as u64 {
            return Ok(None);
        }
        self.seek_to(pos)?;
        let mut header = [0u8; RECORD_HEADER_LEN];
        self.read_exact(&mut header)?;
        let Some(mut crc) = record_crc(&header[0..4], id, accept_v1) else {
            return Ok(None);
        };
        let len = u64::from(u32::from_le_bytes(
            header[4..8].try_into().expect("4 bytes"),
        ));
        // The real bound on a length read from disk: it must fit in the file.
        if file_len - pos - (RECORD_HEADER_LEN as u64) < len {
            return Ok(None);
        }
        let stored_crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        crc.update(&header[4..8]);
        crc.update(&header[12..20]);
        // Checksum the payload through the reader's buffer, chunk by chunk.
        let mut left = len;
        while left > 0 {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Ok(None); // the file shrank under us
            }
            let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            crc.update(&chunk[..take]);
            self.inner.consume(take);
            self.pos += take as u64;
            left -= take as u64;
        }
        Ok((crc.finalize() == stored_crc).then_some(RECORD_HEADER_LEN as u64 + len))
    }

    /// Position of the next byte that could start a record, at or after `from`.
    fn next_candidate(&mut self, from: u64, file_len: u64) -> io::Result<Option<u64>> {
        if from >= file_len {
            return Ok(None);
        }
        self.seek_to(from)?;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Ok(None);
            }
            if let Some(i) = chunk.iter().position(|&b| b == RECORD_START) {
                return Ok(Some(self.pos + i as u64));
            }
            let n = chunk.len();
            self.inner.consume(n);
            self.pos += n as u64;
        }
    }
}

/// Scans segment `id` from `start`, record by record, resynchronising after damage.
///
/// A file with a valid version-2 header is read from past it, and holds only
/// version-2 records; without one (a version-1 file, or a damaged header) both
/// versions are read. A header naming another segment is a recycled file renamed
/// for a life it never started: everything in it is stale.
pub(super) fn scan_segment(path: &Path, id: u64, start: u64) -> io::Result<Scan> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut reader = ScanReader {
        inner: BufReader::with_capacity(SCAN_BUFFER, file),
        pos: 0,
    };
    let mut scan = Scan {
        file_len,
        ..Scan::default()
    };
    let mut start = start;
    let header = match reader.inner.fill_buf()? {
        bytes if bytes.len() >= SEGMENT_HEADER_LEN => decode_segment_header(bytes),
        _ => None,
    };
    if let Some(SegmentHeader {
        id: header_id,
        stale_len,
    }) = header
    {
        scan.version_2 = true;
        scan.stale_len = if header_id == id { stale_len } else { file_len };
        start = start.max(SEGMENT_HEADER_LEN as u64);
    }
    let accept_v1 = header.is_none();
    let mut pos = start.min(file_len);
    scan.end = pos;
    // Start of the damaged region being skipped, if any.
    let mut damage_start = None;
    while pos < file_len {
        // Record starts are indexed as u32; this log never writes a record starting
        // beyond MAX_SEGMENT_BYTES, so anything further is not ours: leave it as
        // trailing bytes.
        let Ok(pos32) = u32::try_from(pos) else { break };
        match reader.probe(pos, file_len, id, accept_v1)? {
            Some(size) => {
                if let Some(damaged) = damage_start.take() {
                    scan.damaged_regions += 1;
                    scan.skipped_bytes += pos - damaged;
                }
                scan.offsets.push_back(pos32);
                pos += size;
                scan.end = pos;
            }
            None => {
                damage_start.get_or_insert(pos);
                match reader.next_candidate(pos + 1, file_len)? {
                    Some(candidate) => pos = candidate,
                    None => break,
                }
            }
        }
    }
    // Past the last valid record, the bytes below the previous life's extent are
    // stale. A torn last write inside that extent looks the same and goes unreported,
    // which is safe: a torn record was never acknowledged.
    scan.stale_bytes = scan.stale_len.min(file_len).saturating_sub(scan.end);
    scan.trailing_bytes = file_len - scan.end - scan.stale_bytes;
    Ok(scan)
}
