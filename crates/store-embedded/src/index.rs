//! The in-memory index of the embedded log: where each position lives on disk, the
//! positions of each stream, and the id of every event, with no payload in memory.
//!
//! Memory per event is a `u32` file offset, a `u64` position in its stream's list, and
//! one entry of the id map (16-byte key, 8-byte position). Only the writer thread
//! changes the index, after the events it adds are durable; readers take a read lock
//! just long enough to turn positions into file ranges.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use tousu_store::StreamName;

use crate::io::StorageFile;

/// A hasher for event ids, which are already random-looking: fold and multiply.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0.rotate_left(29) ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u128(&mut self, value: u128) {
        self.write_u64(value as u64);
        self.write_u64((value >> 64) as u64);
    }
}

/// The id map: event id (as `u128`) to position.
pub type IdMap = HashMap<u128, u64, BuildHasherDefault<IdHasher>>;

/// One segment file and the offsets of its records.
pub struct SegmentEntry {
    /// The position of the segment's first record.
    pub first_position: u64,
    /// The segment file's path, for error messages.
    pub path: PathBuf,
    /// The open file.
    pub file: Arc<dyn StorageFile>,
    /// The offset of each published record, in position order.
    pub offsets: Vec<u32>,
    /// The end of the last published record.
    pub end: u64,
}

/// One stream: its name, the position of each revision, and the hash of its last event.
pub struct StreamEntry {
    /// The stream's name.
    pub name: StreamName,
    /// `positions[revision]` is the position of that revision.
    pub positions: Vec<u64>,
    /// The hash of the stream's last event.
    pub last_hash: [u8; 32],
}

/// Where a record lies on disk.
#[derive(Clone)]
pub struct RecordLocation {
    /// The file holding it.
    pub file: Arc<dyn StorageFile>,
    /// The file's path.
    pub path: PathBuf,
    /// The record's first byte.
    pub offset: u64,
    /// The byte after the record.
    pub end: u64,
}

/// The whole in-memory index.
#[derive(Default)]
pub struct Index {
    /// The segments in position order.
    pub segments: Vec<SegmentEntry>,
    /// Stream name to its slot in `streams`.
    pub stream_slots: HashMap<StreamName, u32>,
    /// The streams, by slot.
    pub streams: Vec<StreamEntry>,
    /// Every event id and its position.
    pub ids: IdMap,
    /// The last published position, 0 for an empty log.
    pub head: u64,
}

impl Index {
    /// The slot of `name`, creating an empty stream if it is new.
    pub fn slot_for(&mut self, name: &str) -> u32 {
        if let Some(&slot) = self.stream_slots.get(name) {
            return slot;
        }
        let name = StreamName::new(name).expect("names are validated before indexing");
        let slot = u32::try_from(self.streams.len()).expect("fewer than 2^32 streams");
        self.stream_slots.insert(name.clone(), slot);
        self.streams.push(StreamEntry { name, positions: Vec::new(), last_hash: tousu_store::hash::ZERO_HASH });
        slot
    }

    /// Adds a durable record at the end of the segment it belongs to (a group commit
    /// that rotated segments publishes into two).
    pub fn push_record(&mut self, slot: u32, id: u128, position: u64, offset: u32, end: u64) {
        let at = self
            .segments
            .partition_point(|s| s.first_position <= position)
            .checked_sub(1)
            .expect("a record belongs to a segment");
        let segment = &mut self.segments[at];
        debug_assert_eq!(segment.first_position + segment.offsets.len() as u64, position);
        segment.offsets.push(offset);
        segment.end = end;
        self.streams[slot as usize].positions.push(position);
        self.ids.insert(id, position);
        self.head = position;
    }

    /// Where the record at `position` lies, if it is published.
    pub fn locate(&self, position: u64) -> Option<RecordLocation> {
        if position == 0 || position > self.head {
            return None;
        }
        let at = self.segments.partition_point(|s| s.first_position <= position).checked_sub(1)?;
        let segment = &self.segments[at];
        let index = usize::try_from(position - segment.first_position).ok()?;
        let offset = u64::from(*segment.offsets.get(index)?);
        let end = segment.offsets.get(index + 1).map_or(segment.end, |next| u64::from(*next));
        Some(RecordLocation { file: Arc::clone(&segment.file), path: segment.path.clone(), offset, end })
    }

    /// The contiguous file ranges holding positions `from..=to` (all published), one per
    /// segment, each with its first position and count.
    pub fn ranges(&self, from: u64, to: u64) -> Vec<(RecordLocation, u64, u64)> {
        let mut ranges = Vec::new();
        let mut position = from;
        while position <= to {
            let Some(first) = self.locate(position) else {
                break;
            };
            let at = self.segments.partition_point(|s| s.first_position <= position) - 1;
            let segment = &self.segments[at];
            let segment_last = segment.first_position + segment.offsets.len() as u64 - 1;
            let last = segment_last.min(to);
            let end = self.locate(last).map_or(segment.end, |l| l.end);
            ranges.push((RecordLocation { end, ..first }, position, last - position + 1));
            position = last + 1;
        }
        ranges
    }
}
