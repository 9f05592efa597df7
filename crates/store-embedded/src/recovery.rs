//! Opening a log directory: checking every segment, loading sealed segments from their
//! index files (rebuilding any that is missing or damaged), scanning the active segment,
//! cutting a torn tail; and the operator's explicit repair.
//!
//! Opened read-only ([`OpenMode::ReadOnly`], for the audit tools), the same checks run and
//! nothing on disk changes: a torn tail is reported and left in place (and not read), a
//! missing index is rebuilt in memory only, a torn segment header is reported as a torn tail,
//! and an empty directory is an empty log.
//!
//! The line between a torn tail and damage: the active (last) segment may end in a
//! record cut short, in zeros, or in complete records of an append whose last record is
//! missing. All of that was never acknowledged, so it is dropped and logged. A complete
//! record that fails its checksum, or anything wrong in a sealed segment, is damage to
//! data that may have been acknowledged: opening refuses, naming the file and offset,
//! and leaves the files alone; [`repair`] cuts the log there on an operator's word.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use tracing::{info, warn};

use crate::format::{
    self, HeaderError, RecordError, RecordView, SEGMENT_HEADER_LEN, SegmentIndexFile, check_segment_header,
    decode_record, encode_segment_header, index_path, segment_path,
};
use crate::index::{Index, SegmentEntry};
use crate::io::{Storage, StorageFile};

/// What is wrong at the place opening stopped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Damage {
    /// The segment header is invalid.
    #[error("bad segment header: {0}")]
    Header(#[from] HeaderError),
    /// A record is invalid (and is not a torn tail).
    #[error("bad record: {0}")]
    Record(#[from] RecordError),
    /// A record holds another position than its place in the log.
    #[error("record holds position {found} where {expected} belongs")]
    PositionMismatch {
        /// The position its place calls for.
        expected: u64,
        /// The position it holds.
        found: u64,
    },
    /// A record holds another revision than its place in its stream.
    #[error("record of stream {stream} holds revision {found} where {expected} belongs")]
    RevisionMismatch {
        /// The stream.
        stream: String,
        /// The revision its place calls for.
        expected: u64,
        /// The revision it holds.
        found: u64,
    },
    /// A sealed segment ends inside a record or an append.
    #[error("sealed segment ends in an incomplete record or append")]
    IncompleteSealedSegment,
    /// A segment does not start where the previous one ended.
    #[error("segment starts at position {found} where {expected} belongs")]
    SegmentGap {
        /// The position the previous segments call for.
        expected: u64,
        /// The segment's first position.
        found: u64,
    },
}

/// Why a log could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Another store holds the directory's lock.
    #[error("log directory {dir} is locked by another store")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A file operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// Stored data is damaged: opening refused and left every file as it was.
    #[error("segment {segment} is damaged at offset {offset}: {damage}; run repair to cut the log there")]
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// The offset of the damaged record or header.
        offset: u64,
        /// What is wrong.
        damage: Damage,
    },
}

/// A torn tail of the active segment: cut off when opening for writing, left in place (and
/// not read) when opening read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment it was cut from (or is at the end of).
    pub segment: PathBuf,
    /// Where the kept data ends.
    pub offset: u64,
    /// How many bytes were dropped (or, read-only, are left unread).
    pub bytes_dropped: u64,
    /// How many complete records of an unfinished append were among them.
    pub records_dropped: u64,
}

/// What opening found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// The number of segment files.
    pub segments: usize,
    /// The number of events in the log.
    pub events: u64,
    /// The torn tail cut from the active segment (read-only: found there and left), if any.
    pub torn_tail: Option<TornTail>,
    /// Index files rebuilt because they were missing or damaged (read-only: rebuilt in memory
    /// and not written).
    pub rebuilt_indexes: Vec<PathBuf>,
    /// A segment whose header was torn when it was created, and was written again (never when
    /// read-only: there it is a torn tail).
    pub rewritten_header: Option<PathBuf>,
    /// Whether the log was opened read-only, so that nothing above changed a file.
    pub read_only: bool,
}

/// How a log is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// For the writer: a torn tail is cut, indexes are rewritten, an empty directory gets its
    /// first segment.
    Write,
    /// For readers that must change nothing on disk (the audit tools).
    ReadOnly,
}

/// The segment being appended to, with what sealing it will need.
pub(crate) struct ActiveSegment {
    pub first_position: u64,
    pub file: Arc<dyn StorageFile>,
    /// Bytes written so far (durable or in the current group commit).
    pub len: u64,
    /// For each record: its offset, stream slot and id.
    pub records: Vec<(u32, u32, [u8; 16])>,
    /// The hash of each stream's last record in this segment.
    pub stream_last: HashMap<u32, [u8; 32]>,
}

impl ActiveSegment {
    /// The index file of this segment, naming streams through `name_of`.
    pub fn index_file(&self, name_of: impl Fn(u32) -> String) -> SegmentIndexFile {
        let mut ordinals: HashMap<u32, u32> = HashMap::new();
        let mut streams = Vec::new();
        let mut events = Vec::with_capacity(self.records.len());
        for &(offset, slot, id) in &self.records {
            let ordinal = *ordinals.entry(slot).or_insert_with(|| {
                streams.push((name_of(slot), self.stream_last[&slot]));
                (streams.len() - 1) as u32
            });
            events.push((offset, ordinal, id));
        }
        SegmentIndexFile { first_position: self.first_position, segment_len: self.len, streams, events }
    }
}

/// The result of scanning a segment's bytes.
struct Scan<'a> {
    /// Every complete, valid record, with its offset.
    records: Vec<(u64, RecordView<'a>)>,
    /// How many of them belong to complete appends.
    complete: usize,
    /// The end of the last complete append.
    valid_end: u64,
}

/// Scans `bytes` (a whole segment file) for records from `first_position` on, stopping
/// at the first record that is short, zeros to the end, or damaged.
fn scan_segment(bytes: &[u8], first_position: u64) -> Result<Scan<'_>, (u64, Damage)> {
    let mut records = Vec::new();
    let mut complete = 0;
    let mut valid_end = SEGMENT_HEADER_LEN;
    let mut offset = SEGMENT_HEADER_LEN;
    while (offset as usize) < bytes.len() {
        let rest = &bytes[offset as usize..];
        let view = match decode_record(rest) {
            Ok(view) => view,
            Err(RecordError::Truncated { .. }) => break,
            Err(_) if rest.iter().all(|b| *b == 0) => break,
            Err(error) => return Err((offset, error.into())),
        };
        let expected = first_position + records.len() as u64;
        if view.position != expected {
            return Err((offset, Damage::PositionMismatch { expected, found: view.position }));
        }
        view.stream().map_err(|e| (offset, e.into()))?;
        records.push((offset, view));
        offset += view.len;
        if view.ends_append() {
            complete = records.len();
            valid_end = offset;
        }
    }
    Ok(Scan { records, complete, valid_end })
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io { path: path.to_owned(), source }
}

fn read_whole(file: &dyn StorageFile, len: u64) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
    file.read_at(&mut bytes, 0)?;
    Ok(bytes)
}

/// The segment and index files of `dir`, by first position.
fn list_log(storage: &dyn Storage, dir: &Path) -> Result<(Vec<u64>, HashSet<u64>), OpenError> {
    let names = storage.list(dir).map_err(io_at(dir))?;
    let mut segments: Vec<u64> = names.iter().filter_map(|n| format::parse_file_name(n, ".log")).collect();
    segments.sort_unstable();
    let indexes = names.iter().filter_map(|n| format::parse_file_name(n, ".idx")).collect();
    Ok((segments, indexes))
}

/// Creates an empty segment file starting at `first_position`, durably, directory entry
/// included.
pub(crate) fn create_segment(
    storage: &dyn Storage,
    dir: &Path,
    first_position: u64,
) -> io::Result<(PathBuf, Arc<dyn StorageFile>)> {
    let path = segment_path(dir, first_position);
    let file = storage.create(&path)?;
    file.write_at(&encode_segment_header(first_position), 0)?;
    file.sync_data()?;
    storage.sync_dir(dir)?;
    Ok((path, file))
}

/// Adds the records of complete appends of a scan to the index, checking revisions.
fn index_scanned(
    index: &mut Index,
    scan: &Scan<'_>,
    path: &Path,
    mut on_record: impl FnMut(u64, u32, &RecordView<'_>),
) -> Result<(), OpenError> {
    let records = &scan.records[..scan.complete];
    for (i, (offset, view)) in records.iter().enumerate() {
        let stream = view.stream().expect("checked by the scan");
        let slot = index.slot_for(stream);
        let expected = index.streams[slot as usize].positions.len() as u64;
        if view.revision() != expected {
            return Err(OpenError::Corrupt {
                segment: path.to_owned(),
                offset: *offset,
                damage: Damage::RevisionMismatch { stream: stream.to_owned(), expected, found: view.revision() },
            });
        }
        let end = records.get(i + 1).map_or(scan.valid_end, |(next, _)| *next);
        index.push_record(slot, view.id().as_u128(), view.position, *offset as u32, end);
        index.streams[slot as usize].last_hash = view.hash;
        on_record(*offset, slot, view);
    }
    Ok(())
}

/// Whether an index file fits its segment: same first position and length, offsets
/// increasing inside the segment.
fn index_file_fits(file: &SegmentIndexFile, first_position: u64, segment_len: u64) -> bool {
    file.first_position == first_position
        && file.segment_len == segment_len
        && file.events.first().is_none_or(|(offset, _, _)| u64::from(*offset) == SEGMENT_HEADER_LEN)
        && file.events.windows(2).all(|w| w[0].0 < w[1].0)
        && file.events.last().is_none_or(|(offset, _, _)| u64::from(*offset) < segment_len)
}

fn load_index_file(
    storage: &dyn Storage,
    path: &Path,
    first_position: u64,
    segment_len: u64,
) -> Option<SegmentIndexFile> {
    let file = storage.open_read_only(path).ok()?;
    let len = file.byte_len().ok()?;
    let bytes = read_whole(&*file, len).ok()?;
    let decoded = format::decode_index_file(&bytes).ok()?;
    index_file_fits(&decoded, first_position, segment_len).then_some(decoded)
}

fn index_from_file(index: &mut Index, file: &SegmentIndexFile) {
    let slots: Vec<u32> = file.streams.iter().map(|(name, _)| index.slot_for(name)).collect();
    for (i, (offset, ordinal, id)) in file.events.iter().enumerate() {
        let end = file.events.get(i + 1).map_or(file.segment_len, |next| u64::from(next.0));
        index.push_record(
            slots[*ordinal as usize],
            u128::from_be_bytes(*id),
            file.first_position + i as u64,
            *offset,
            end,
        );
    }
    for ((_, hash), slot) in file.streams.iter().zip(&slots) {
        index.streams[*slot as usize].last_hash = *hash;
    }
}

fn write_index_file(storage: &dyn Storage, path: &Path, file: &SegmentIndexFile) -> io::Result<()> {
    let bytes = format::encode_index_file(file);
    let out = storage.create(path)?;
    out.write_at(&bytes, 0)?;
    out.sync_data()
}

/// Writes the index file of a segment being sealed.
pub(crate) fn seal_segment(
    storage: &dyn Storage,
    dir: &Path,
    active: &ActiveSegment,
    name_of: impl Fn(u32) -> String,
) -> io::Result<()> {
    write_index_file(storage, &index_path(dir, active.first_position), &active.index_file(name_of))
}

/// Opens the log in `dir`: the index of everything in it and the active segment (none when
/// a read-only log has no segment).
pub(crate) fn open_log(
    storage: &dyn Storage,
    dir: &Path,
    mode: OpenMode,
) -> Result<(Index, Option<ActiveSegment>, RecoveryReport), OpenError> {
    let read_only = mode == OpenMode::ReadOnly;
    let (mut segments, indexes) = list_log(storage, dir)?;
    if segments.is_empty() {
        if read_only {
            return Ok((Index::default(), None, RecoveryReport { read_only, ..RecoveryReport::default() }));
        }
        create_segment(storage, dir, 1).map_err(io_at(dir))?;
        segments.push(1);
    }
    let open_file = |path: &Path| if read_only { storage.open_read_only(path) } else { storage.open(path) };
    let mut index = Index::default();
    reserve_index(storage, dir, &segments, &indexes, &mut index);
    let mut report = RecoveryReport { segments: segments.len(), read_only, ..RecoveryReport::default() };
    let mut expected_first = 1;
    let last = segments.len() - 1;
    for (k, &first) in segments.iter().enumerate() {
        let path = segment_path(dir, first);
        if first != expected_first {
            return Err(OpenError::Corrupt {
                segment: path,
                offset: 0,
                damage: Damage::SegmentGap { expected: expected_first, found: first },
            });
        }
        let file = open_file(&path).map_err(io_at(&path))?;
        let len = file.byte_len().map_err(io_at(&path))?;
        index.segments.push(SegmentEntry {
            first_position: first,
            path: path.clone(),
            file: Arc::clone(&file),
            offsets: Vec::new(),
            end: SEGMENT_HEADER_LEN,
        });
        if k == last {
            let active = open_active(storage, dir, &mut index, &path, file, first, len, mode, &mut report)?;
            if indexes.contains(&first) && !read_only {
                // Sealed just before a crash that came before its successor existed: it
                // is active again, so its index file would go stale.
                let stale = index_path(dir, first);
                storage.remove(&stale).map_err(io_at(&stale))?;
            }
            report.events = index.head;
            shrink_index(&mut index);
            return Ok((index, Some(active), report));
        }
        let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
        let header_read = if len >= SEGMENT_HEADER_LEN {
            file.read_at(&mut header, 0).map_err(io_at(&path))?;
            &header[..]
        } else {
            &header[..0]
        };
        check_segment_header(header_read, first).map_err(|e| OpenError::Corrupt {
            segment: path.clone(),
            offset: 0,
            damage: e.into(),
        })?;
        let idx_path = index_path(dir, first);
        let loaded = indexes.contains(&first).then(|| load_index_file(storage, &idx_path, first, len)).flatten();
        match loaded {
            Some(loaded) => index_from_file(&mut index, &loaded),
            None => {
                let bytes = read_whole(&*file, len).map_err(io_at(&path))?;
                let scan = scan_segment(&bytes, first).map_err(|(offset, damage)| OpenError::Corrupt {
                    segment: path.clone(),
                    offset,
                    damage,
                })?;
                if scan.valid_end != len {
                    return Err(OpenError::Corrupt {
                        segment: path.clone(),
                        offset: scan.valid_end,
                        damage: Damage::IncompleteSealedSegment,
                    });
                }
                let mut rebuilt = ActiveSegment {
                    first_position: first,
                    file: Arc::clone(&file),
                    len,
                    records: Vec::new(),
                    stream_last: HashMap::new(),
                };
                index_scanned(&mut index, &scan, &path, |offset, slot, view| {
                    rebuilt.records.push((offset as u32, slot, *view.id().as_bytes()));
                    rebuilt.stream_last.insert(slot, view.hash);
                })?;
                if read_only {
                    warn!(index = %idx_path.display(), "a segment index is missing or damaged; read its segment instead");
                } else {
                    let name_of = |slot: u32| index.streams[slot as usize].name.to_string();
                    write_index_file(storage, &idx_path, &rebuilt.index_file(name_of)).map_err(io_at(&idx_path))?;
                    warn!(index = %idx_path.display(), "rebuilt a missing or damaged segment index");
                }
                report.rebuilt_indexes.push(idx_path);
            }
        }
        expected_first = index.head + 1;
    }
    unreachable!("the last segment returns from the loop")
}

/// Sizes the id map for the whole log before filling it, estimated from the file sizes,
/// so that opening a large log does not pass through a doubling of the map (which would
/// hold the old and the new table at once and set the peak memory).
fn reserve_index(storage: &dyn Storage, dir: &Path, segments: &[u64], indexes: &HashSet<u64>, index: &mut Index) {
    let file_len = |path: &Path| storage.open_read_only(path).and_then(|f| f.byte_len()).unwrap_or(0);
    let mut events = 0u64;
    for &first in segments {
        events += if indexes.contains(&first) {
            file_len(&index_path(dir, first)) / 24
        } else {
            file_len(&segment_path(dir, first)) / 256
        };
    }
    let events = usize::try_from(events).unwrap_or(usize::MAX).min(1 << 32);
    index.ids.reserve(events);
    index.segments.reserve(segments.len());
}

/// Gives back the slack of the per-stream position lists once the log is loaded.
fn shrink_index(index: &mut Index) {
    for stream in &mut index.streams {
        stream.positions.shrink_to_fit();
    }
}

#[allow(clippy::too_many_arguments)]
fn open_active(
    storage: &dyn Storage,
    dir: &Path,
    index: &mut Index,
    path: &Path,
    file: Arc<dyn StorageFile>,
    first: u64,
    len: u64,
    mode: OpenMode,
    report: &mut RecoveryReport,
) -> Result<ActiveSegment, OpenError> {
    let mut active = ActiveSegment {
        first_position: first,
        file: Arc::clone(&file),
        len: SEGMENT_HEADER_LEN,
        records: Vec::new(),
        stream_last: HashMap::new(),
    };
    if len < SEGMENT_HEADER_LEN && mode == OpenMode::ReadOnly {
        // The segment's creation was torn: what is there is a torn tail, left as it is.
        warn!(segment = %path.display(), bytes = len, "the last segment's header is torn; left as it is (read-only)");
        report.torn_tail =
            Some(TornTail { segment: path.to_owned(), offset: 0, bytes_dropped: len, records_dropped: 0 });
        return Ok(active);
    }
    if len < SEGMENT_HEADER_LEN {
        // The segment's creation was torn: its header never fully reached the disk, so
        // no record can follow it. Write the header again.
        file.truncate(0).map_err(io_at(path))?;
        file.write_at(&encode_segment_header(first), 0).map_err(io_at(path))?;
        file.sync_data().map_err(io_at(path))?;
        storage.sync_dir(dir).map_err(io_at(dir))?;
        warn!(segment = %path.display(), bytes = len, "rewrote a torn segment header");
        report.rewritten_header = Some(path.to_owned());
        return Ok(active);
    }
    let bytes = read_whole(&*file, len).map_err(io_at(path))?;
    check_segment_header(&bytes, first).map_err(|e| OpenError::Corrupt {
        segment: path.to_owned(),
        offset: 0,
        damage: e.into(),
    })?;
    let scan = scan_segment(&bytes, first).map_err(|(offset, damage)| OpenError::Corrupt {
        segment: path.to_owned(),
        offset,
        damage,
    })?;
    index_scanned(index, &scan, path, |offset, slot, view| {
        active.records.push((offset as u32, slot, *view.id().as_bytes()));
        active.stream_last.insert(slot, view.hash);
    })?;
    active.len = scan.valid_end;
    if scan.valid_end < len {
        let dropped = len - scan.valid_end;
        let records_dropped = (scan.records.len() - scan.complete) as u64;
        if mode == OpenMode::ReadOnly {
            warn!(
                segment = %path.display(),
                offset = scan.valid_end,
                bytes = dropped,
                records_dropped,
                "the log ends in a torn tail that was never acknowledged; left as it is (read-only)"
            );
        } else {
            file.truncate(scan.valid_end).map_err(io_at(path))?;
            file.sync_data().map_err(io_at(path))?;
            warn!(
                segment = %path.display(),
                offset = scan.valid_end,
                bytes_dropped = dropped,
                records_dropped,
                "cut a torn tail that was never acknowledged"
            );
        }
        report.torn_tail = Some(TornTail {
            segment: path.to_owned(),
            offset: scan.valid_end,
            bytes_dropped: dropped,
            records_dropped,
        });
    }
    Ok(active)
}

/// What [`repair`] cut from a damaged log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepairReport {
    /// The segment cut short, where, and the bytes dropped from it.
    pub truncated: Option<(PathBuf, u64, u64)>,
    /// Segments after the damage, removed whole, with their lengths.
    pub removed_segments: Vec<(PathBuf, u64)>,
    /// What was wrong at the cut, `None` when the log was whole.
    pub damage: Option<Damage>,
    /// The events the log holds after the repair.
    pub events_kept: u64,
}

/// Why a repair failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RepairError {
    /// Another store holds the directory's lock.
    #[error("log directory {dir} is locked by another store")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A file operation failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
}

impl From<OpenError> for RepairError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Locked { dir } => Self::Locked { dir },
            OpenError::Io { path, source } => Self::Io { path, source },
            OpenError::Corrupt { segment, .. } => {
                Self::Io { path: segment, source: io::Error::other("unexpected damage while repairing") }
            }
        }
    }
}

/// The operator's repair of a damaged log: cuts it at the first damaged record (dropping
/// every later segment, since positions must stay gap-free), removes the index files of
/// what it cut, and reports exactly what was dropped. A log that opens cleanly is left
/// as it is (a torn tail is cut as opening would).
pub fn repair_with(storage: &dyn Storage, dir: &Path) -> Result<RepairReport, RepairError> {
    let _lock = storage.lock_dir(dir).map_err(|source| match source.kind() {
        io::ErrorKind::WouldBlock => RepairError::Locked { dir: dir.to_owned() },
        _ => RepairError::Io { path: dir.to_owned(), source },
    })?;
    let (segments, indexes) = list_log(storage, dir)?;
    let mut report = RepairReport::default();
    let mut expected_first = 1;
    let mut events = 0u64;
    let mut cut_from: Option<usize> = None;
    for (k, &first) in segments.iter().enumerate() {
        let path = segment_path(dir, first);
        if first != expected_first {
            report.damage = Some(Damage::SegmentGap { expected: expected_first, found: first });
            cut_from = Some(k);
            break;
        }
        let file = storage.open(&path).map_err(io_at(&path))?;
        let len = file.byte_len().map_err(io_at(&path))?;
        let bytes = read_whole(&*file, len).map_err(io_at(&path))?;
        let is_last = k + 1 == segments.len();
        if let Err(error) = check_segment_header(&bytes, first) {
            if k == 0 || !(is_last && len < SEGMENT_HEADER_LEN) {
                report.damage = Some(error.into());
            }
            // Rewrite this segment as an empty one and drop everything after it.
            file.truncate(0).map_err(io_at(&path))?;
            file.write_at(&encode_segment_header(first), 0).map_err(io_at(&path))?;
            file.sync_data().map_err(io_at(&path))?;
            report.truncated = Some((path.clone(), 0, len));
            cut_from = Some(k + 1);
            if indexes.contains(&first) {
                remove_file(storage, &index_path(dir, first))?;
            }
            break;
        }
        let (keep, damage, records_kept) = match scan_segment(&bytes, first) {
            Ok(scan) => {
                let damage = (!is_last && scan.valid_end != len).then_some(Damage::IncompleteSealedSegment);
                (scan.valid_end, damage, scan.complete as u64)
            }
            Err((offset, damage)) => {
                // Keep only the complete appends before the damaged record.
                let partial = scan_prefix(&bytes[..offset as usize], first);
                (partial.0, Some(damage), partial.1)
            }
        };
        events += records_kept;
        expected_first = first + records_kept;
        if keep < len {
            file.truncate(keep).map_err(io_at(&path))?;
            file.sync_data().map_err(io_at(&path))?;
            report.truncated = Some((path.clone(), keep, len - keep));
            report.damage = damage;
            if indexes.contains(&first) {
                remove_file(storage, &index_path(dir, first))?;
            }
            cut_from = Some(k + 1);
            break;
        }
    }
    if let Some(from) = cut_from {
        for &first in &segments[from..] {
            let path = segment_path(dir, first);
            let len = storage.open(&path).and_then(|f| f.byte_len()).map_err(io_at(&path))?;
            remove_file(storage, &path)?;
            if indexes.contains(&first) {
                remove_file(storage, &index_path(dir, first))?;
            }
            report.removed_segments.push((path, len));
        }
        storage.sync_dir(dir).map_err(io_at(dir))?;
    }
    report.events_kept = events;
    info!(?report, "repaired the log");
    Ok(report)
}

fn remove_file(storage: &dyn Storage, path: &Path) -> Result<(), RepairError> {
    storage.remove(path).map_err(|source| RepairError::Io { path: path.to_owned(), source })
}

/// The end of the complete appends in `bytes` (a segment cut before a damaged record),
/// and how many records they hold.
fn scan_prefix(bytes: &[u8], first: u64) -> (u64, u64) {
    match scan_segment(bytes, first) {
        Ok(scan) => (scan.valid_end, scan.complete as u64),
        Err(_) => (SEGMENT_HEADER_LEN, 0),
    }
}
