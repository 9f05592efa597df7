//! The byte format of the embedded log: segment file headers, record frames and segment
//! index files, as pure encode and decode functions (described in
//! `docs/storage-format.md`).
//!
//! Every integer is fixed-width little-endian; nothing of `usize` reaches the disk. Every
//! byte written is covered by a CRC32C, so a flipped byte is always detected.

use std::path::{Path, PathBuf};

use thiserror::Error;
use tousu_store::hash::{CanonicalDecodeError, decode_canonical};
use tousu_store::{EventId, Position, RecordedEvent, StreamName, StreamNameError};

/// The first bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"TOUSUSEG";
/// The first bytes of every segment index file.
pub const INDEX_MAGIC: &[u8; 8] = b"TOUSUIDX";
/// The version of the format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The length of a segment file header.
pub const SEGMENT_HEADER_LEN: u64 = 32;
/// The length of a record frame's header.
pub const FRAME_HEADER_LEN: usize = 12;
/// The bytes of a record body before the canonical encoding: flags, position, hash.
pub const BODY_PREFIX_LEN: usize = 1 + 8 + 32;
/// The largest record body accepted: 16 MiB.
pub const MAX_BODY_LEN: u32 = 16 * 1024 * 1024;
/// The flag set on the last record of every append: an append is whole only when its
/// last record is present.
pub const FLAG_END_OF_APPEND: u8 = 1;

/// The name of the segment file whose first record has `first_position`.
pub fn segment_file_name(first_position: u64) -> String {
    format!("segment-{first_position:020}.log")
}

/// The name of the index file of that segment.
pub fn index_file_name(first_position: u64) -> String {
    format!("segment-{first_position:020}.idx")
}

/// The first position named by a segment (`.log`) or index (`.idx`) file name.
pub fn parse_file_name(name: &str, extension: &str) -> Option<u64> {
    let digits = name.strip_prefix("segment-")?.strip_suffix(extension)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The path of the segment file in `dir`.
pub fn segment_path(dir: &Path, first_position: u64) -> PathBuf {
    dir.join(segment_file_name(first_position))
}

/// The path of the index file in `dir`.
pub fn index_path(dir: &Path, first_position: u64) -> PathBuf {
    dir.join(index_file_name(first_position))
}

/// Why a segment header is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The header is shorter than 32 bytes.
    #[error("segment header is {len} bytes, fewer than 32")]
    Short {
        /// The bytes available.
        len: usize,
    },
    /// The header fails its checksum.
    #[error("segment header checksum {stored:#010x} does not match {computed:#010x}")]
    Checksum {
        /// The stored CRC32C.
        stored: u32,
        /// The CRC32C of the header as read.
        computed: u32,
    },
    /// The magic bytes are not `TOUSUSEG`.
    #[error("segment header does not start with TOUSUSEG")]
    Magic,
    /// The format version is not one this code reads.
    #[error("segment format version {version} is not supported (this build reads 1)")]
    Version {
        /// The version found.
        version: u32,
    },
    /// The header names another first position than the file name.
    #[error("segment header names first position {found}, its file name {expected}")]
    FirstPosition {
        /// The file name's position.
        expected: u64,
        /// The header's position.
        found: u64,
    },
}

/// The 32-byte header of a segment whose first record has `first_position`.
pub fn encode_segment_header(first_position: u64) -> [u8; 32] {
    let mut header = [0u8; 32];
    header[0..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&first_position.to_le_bytes());
    let crc = crc32c::crc32c(&header[..28]);
    header[28..32].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks a segment header against the first position its file name gives.
pub fn check_segment_header(bytes: &[u8], first_position: u64) -> Result<(), HeaderError> {
    if bytes.len() < 32 {
        return Err(HeaderError::Short { len: bytes.len() });
    }
    let stored = u32::from_le_bytes(bytes[28..32].try_into().expect("4 bytes"));
    let computed = crc32c::crc32c(&bytes[..28]);
    if stored != computed {
        return Err(HeaderError::Checksum { stored, computed });
    }
    if &bytes[0..8] != SEGMENT_MAGIC {
        return Err(HeaderError::Magic);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(HeaderError::Version { version });
    }
    let found = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    if found != first_position {
        return Err(HeaderError::FirstPosition { expected: first_position, found });
    }
    Ok(())
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes end before the record does: at the end of the log, a torn write.
    #[error("record needs {needed} bytes but only {available} remain")]
    Truncated {
        /// The bytes the record needs.
        needed: u64,
        /// The bytes available.
        available: u64,
    },
    /// The frame header fails its checksum.
    #[error("record header checksum {stored:#010x} does not match {computed:#010x}")]
    HeaderChecksum {
        /// The stored CRC32C.
        stored: u32,
        /// The CRC32C of the header as read.
        computed: u32,
    },
    /// The body length is out of bounds.
    #[error("record body length {len} is outside {min}..={max}")]
    BadLength {
        /// The length read.
        len: u32,
        /// The smallest valid body.
        min: u32,
        /// The largest valid body.
        max: u32,
    },
    /// The body fails its checksum.
    #[error("record body checksum {stored:#010x} does not match {computed:#010x}")]
    BodyChecksum {
        /// The stored CRC32C.
        stored: u32,
        /// The CRC32C of the body as read.
        computed: u32,
    },
    /// Unknown flag bits are set.
    #[error("record flags {flags:#04x} hold unknown bits")]
    BadFlags {
        /// The flags read.
        flags: u8,
    },
    /// The body's canonical encoding is malformed.
    #[error("record body is not a canonical event encoding: {0}")]
    Canonical(#[from] CanonicalDecodeError),
}

/// The smallest body: the prefix and the fixed part of a canonical encoding.
const MIN_BODY_LEN: u32 = BODY_PREFIX_LEN as u32 + 8 + 4 + 8 + 16;

/// A record decoded without copying: the frame is checked, the body borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The record's flags ([`FLAG_END_OF_APPEND`]).
    pub flags: u8,
    /// The event's global position.
    pub position: u64,
    /// The event's hash.
    pub hash: [u8; 32],
    /// The canonical encoding of the event (see `tousu_store::hash`).
    pub canonical: &'a [u8],
    /// The record's whole length on disk, frame header included.
    pub len: u64,
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes the record at the start of `bytes`, checking both checksums, the flags and the
/// fixed start of the canonical encoding (tag, stream name, revision, id). It never
/// panics and never allocates, whatever `bytes` holds.
pub fn decode_record(bytes: &[u8]) -> Result<RecordView<'_>, RecordError> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Err(RecordError::Truncated { needed: FRAME_HEADER_LEN as u64, available: bytes.len() as u64 });
    }
    let header_stored = read_u32(bytes, 8);
    let header_computed = crc32c::crc32c(&bytes[..8]);
    if header_stored != header_computed {
        return Err(RecordError::HeaderChecksum { stored: header_stored, computed: header_computed });
    }
    let body_len = read_u32(bytes, 0);
    if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&body_len) {
        return Err(RecordError::BadLength { len: body_len, min: MIN_BODY_LEN, max: MAX_BODY_LEN });
    }
    let total = FRAME_HEADER_LEN + body_len as usize;
    if bytes.len() < total {
        return Err(RecordError::Truncated { needed: total as u64, available: bytes.len() as u64 });
    }
    let body = &bytes[FRAME_HEADER_LEN..total];
    let body_stored = read_u32(bytes, 4);
    let body_computed = crc32c::crc32c(body);
    if body_stored != body_computed {
        return Err(RecordError::BodyChecksum { stored: body_stored, computed: body_computed });
    }
    let flags = body[0];
    if flags & !FLAG_END_OF_APPEND != 0 {
        return Err(RecordError::BadFlags { flags });
    }
    let view = RecordView {
        flags,
        position: read_u64(body, 1),
        hash: body[9..41].try_into().expect("32 bytes"),
        canonical: &body[BODY_PREFIX_LEN..],
        len: total as u64,
    };
    // The fields the index needs must be readable; the rest is checked on a full decode.
    view.stream_name_bytes()?;
    Ok(view)
}

impl RecordView<'_> {
    /// Whether this is the last record of its append.
    pub fn ends_append(&self) -> bool {
        self.flags & FLAG_END_OF_APPEND != 0
    }

    fn stream_name_bytes(&self) -> Result<&[u8], RecordError> {
        let c = self.canonical;
        if c.len() < 12 || &c[..8] != tousu_store::hash::CANONICAL_TAG {
            return Err(CanonicalDecodeError::BadTag.into());
        }
        let len = read_u32(c, 8) as usize;
        // The stream, then revision (8) and id (16) must fit.
        if c.len() - 12 < len || c.len() - 12 - len < 24 {
            return Err(CanonicalDecodeError::Truncated { field: "stream" }.into());
        }
        Ok(&c[12..12 + len])
    }

    /// The event's stream name, validated.
    pub fn stream(&self) -> Result<&str, RecordError> {
        let bytes = self.stream_name_bytes()?;
        let name = std::str::from_utf8(bytes).map_err(|_| CanonicalDecodeError::NotUtf8 { field: "stream" })?;
        StreamName::new(name).map_err(|e: StreamNameError| CanonicalDecodeError::from(e))?;
        Ok(name)
    }

    /// The event's revision.
    pub fn revision(&self) -> u64 {
        let at = 12 + read_u32(self.canonical, 8) as usize;
        read_u64(self.canonical, at)
    }

    /// The event's id.
    pub fn id(&self) -> EventId {
        let at = 12 + read_u32(self.canonical, 8) as usize + 8;
        EventId::from_bytes(self.canonical[at..at + 16].try_into().expect("16 bytes"))
    }

    /// The whole event, decoded and owned.
    pub fn to_recorded_event(&self) -> Result<RecordedEvent, RecordError> {
        let decoded = decode_canonical(self.canonical)?;
        Ok(RecordedEvent {
            stream: decoded.stream,
            revision: decoded.revision,
            position: Position(self.position),
            recorded_at: decoded.recorded_at,
            prev_hash: decoded.prev_hash,
            hash: self.hash,
            event: decoded.event,
        })
    }
}

/// Frames a record around a body already laid out as `[flags, position, hash,
/// canonical]` in `out[start + 12..]`, with 12 reserved bytes at `out[start..]`.
pub fn seal_frame(out: &mut [u8], start: usize) {
    let body = &out[start + FRAME_HEADER_LEN..];
    let body_len = u32::try_from(body.len()).expect("bodies are checked against MAX_BODY_LEN");
    let body_crc = crc32c::crc32c(body);
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&out[start..start + 8]);
    out[start + 8..start + 12].copy_from_slice(&header_crc.to_le_bytes());
}

/// The contents of a segment index file: what opening needs of a sealed segment without
/// reading the segment itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SegmentIndexFile {
    /// The position of the segment's first record.
    pub first_position: u64,
    /// The segment file's length when it was sealed.
    pub segment_len: u64,
    /// Each stream with events in the segment, and the hash of its last event there.
    pub streams: Vec<(String, [u8; 32])>,
    /// For each record in position order: its offset, the index of its stream in
    /// `streams`, and its event id.
    pub events: Vec<(u32, u32, [u8; 16])>,
}

/// Why an index file cannot be used (it is then rebuilt from its segment).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum IndexFileError {
    /// The file is shorter than its contents say.
    #[error("index file is truncated")]
    Truncated,
    /// The file fails its checksum.
    #[error("index file checksum does not match")]
    Checksum,
    /// The magic bytes or version are wrong.
    #[error("index file has a wrong magic or version")]
    Header,
    /// A stream name is invalid or a stream reference out of range.
    #[error("index file contents are inconsistent")]
    Inconsistent,
}

const INDEX_HEADER_LEN: usize = 48;
const INDEX_EVENT_LEN: usize = 24;

/// Encodes an index file.
pub fn encode_index_file(index: &SegmentIndexFile) -> Vec<u8> {
    let names: usize = index.streams.iter().map(|(n, _)| 2 + n.len() + 32).sum();
    let mut out = Vec::with_capacity(INDEX_HEADER_LEN + names + index.events.len() * INDEX_EVENT_LEN + 4);
    out.extend_from_slice(INDEX_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&index.first_position.to_le_bytes());
    out.extend_from_slice(&(index.events.len() as u64).to_le_bytes());
    out.extend_from_slice(&(index.streams.len() as u64).to_le_bytes());
    out.extend_from_slice(&index.segment_len.to_le_bytes());
    for (name, hash) in &index.streams {
        let len = u16::try_from(name.len()).expect("stream names are at most 256 bytes");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(hash);
    }
    for (offset, stream, id) in &index.events {
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&stream.to_le_bytes());
        out.extend_from_slice(id);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes an index file, checking its checksum and internal consistency.
pub fn decode_index_file(bytes: &[u8]) -> Result<SegmentIndexFile, IndexFileError> {
    if bytes.len() < INDEX_HEADER_LEN + 4 {
        return Err(IndexFileError::Truncated);
    }
    let (content, crc) = bytes.split_at(bytes.len() - 4);
    if crc32c::crc32c(content) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(IndexFileError::Checksum);
    }
    if &content[..8] != INDEX_MAGIC || read_u32(content, 8) != FORMAT_VERSION {
        return Err(IndexFileError::Header);
    }
    let first_position = read_u64(content, 16);
    let event_count = read_u64(content, 24);
    let stream_count = read_u64(content, 32);
    let segment_len = read_u64(content, 40);
    let mut at = INDEX_HEADER_LEN;
    let mut streams = Vec::new();
    for _ in 0..stream_count {
        if content.len() < at + 2 {
            return Err(IndexFileError::Truncated);
        }
        let len = usize::from(u16::from_le_bytes([content[at], content[at + 1]]));
        at += 2;
        if content.len() < at + len + 32 {
            return Err(IndexFileError::Truncated);
        }
        let name = std::str::from_utf8(&content[at..at + len])
            .ok()
            .filter(|n| StreamName::new(*n).is_ok())
            .ok_or(IndexFileError::Inconsistent)?;
        let hash: [u8; 32] = content[at + len..at + len + 32].try_into().expect("32 bytes");
        streams.push((name.to_owned(), hash));
        at += len + 32;
    }
    let remaining = (content.len() - at) as u64;
    if remaining != event_count.saturating_mul(INDEX_EVENT_LEN as u64) {
        return Err(IndexFileError::Truncated);
    }
    let mut events = Vec::with_capacity(event_count as usize);
    for chunk in content[at..].chunks_exact(INDEX_EVENT_LEN) {
        let offset = read_u32(chunk, 0);
        let stream = read_u32(chunk, 4);
        if u64::from(stream) >= stream_count {
            return Err(IndexFileError::Inconsistent);
        }
        events.push((offset, stream, chunk[8..24].try_into().expect("16 bytes")));
    }
    Ok(SegmentIndexFile { first_position, segment_len, streams, events })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(segment_file_name(1), "segment-00000000000000000001.log");
        assert_eq!(parse_file_name("segment-00000000000000000042.log", ".log"), Some(42));
        assert_eq!(parse_file_name("segment-00000000000000000042.idx", ".idx"), Some(42));
        assert_eq!(parse_file_name("segment-42.log", ".log"), None);
        assert_eq!(parse_file_name("LOCK", ".log"), None);
    }

    #[test]
    fn segment_headers_are_checked() {
        let header = encode_segment_header(7);
        assert_eq!(check_segment_header(&header, 7), Ok(()));
        assert_eq!(check_segment_header(&header, 8), Err(HeaderError::FirstPosition { expected: 8, found: 7 }));
        assert_eq!(check_segment_header(&header[..31], 7), Err(HeaderError::Short { len: 31 }));
        for byte in 0..32 {
            let mut flipped = header;
            flipped[byte] ^= 0x10;
            assert!(matches!(check_segment_header(&flipped, 7), Err(HeaderError::Checksum { .. })));
        }
    }

    #[test]
    fn index_files_round_trip_and_detect_damage() {
        let index = SegmentIndexFile {
            first_position: 5,
            segment_len: 999,
            streams: vec![("a".into(), [1; 32]), ("complaint-B".into(), [2; 32])],
            events: vec![(32, 0, [3; 16]), (100, 1, [4; 16]), (200, 0, [5; 16])],
        };
        let bytes = encode_index_file(&index);
        assert_eq!(decode_index_file(&bytes), Ok(index));
        for byte in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[byte] ^= 1;
            assert!(decode_index_file(&flipped).is_err(), "flip at {byte}");
        }
        assert_eq!(decode_index_file(&bytes[..bytes.len() - 1]), Err(IndexFileError::Checksum));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(view) = decode_record(&bytes) {
                let _ = view.stream();
                let _ = view.revision();
                let _ = view.id();
                let _ = view.to_recorded_event();
            }
            let _ = decode_index_file(&bytes);
        }

        #[test]
        fn decoding_arbitrary_bodies_in_valid_frames_never_panics(
            flags in 0u8..4,
            prefix in proptest::collection::vec(any::<u8>(), 40),
            tail in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            // Random bytes rarely pass a checksum or carry the tag; frame them properly so
            // the decoder's body parsing is what gets hammered.
            let mut bytes = vec![0u8; FRAME_HEADER_LEN];
            bytes.push(flags);
            bytes.extend_from_slice(&prefix);
            bytes.extend_from_slice(tousu_store::hash::CANONICAL_TAG);
            bytes.extend_from_slice(&tail);
            seal_frame(&mut bytes, 0);
            if let Ok(view) = decode_record(&bytes) {
                let _ = view.stream();
                let _ = view.revision();
                let _ = view.id();
                let _ = view.to_recorded_event();
            }
        }
    }
}
