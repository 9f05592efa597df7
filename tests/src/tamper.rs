//! What an editor with write access to a stopped server's disk can do to its embedded event
//! log, for the tests of the commission's tools: read every record of the segment files,
//! change, remove or back-date events, recompute every stream's hash chain exactly as the
//! store computes it, and write the log back with valid checksums; or cut the log at the end
//! of an append. The hash chains alone cannot tell the result from an honest log
//! (`docs/storage-format.md`, "What the hash chain proves").

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tousu_store::hash::{HashedFields, ZERO_HASH, encode_canonical, event_hash};
use tousu_store::{Position, RecordedEvent, StreamName};
use tousu_store_embedded::format::{
    FLAG_END_OF_APPEND, FRAME_HEADER_LEN, decode_record, encode_segment_header, seal_frame, segment_path,
};

/// One record of the log: an event and whether it ends its append.
#[derive(Debug, Clone)]
pub struct Record {
    /// The event as stored.
    pub event: RecordedEvent,
    /// Whether it is the last event of its append.
    pub ends_append: bool,
}

/// The segment files of the log in `events_dir`, in log order.
pub fn segments(events_dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(events_dir)
        .expect("the log directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .collect();
    paths.sort();
    paths
}

/// The offset and length of every record of a segment file's bytes.
pub fn record_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = 32;
    while at < bytes.len() {
        let len = decode_record(&bytes[at..]).expect("a valid record").len as usize;
        spans.push((at, len));
        at += len;
    }
    spans
}

/// Every record of the log in `events_dir`, in position order.
pub fn read_log(events_dir: &Path) -> Vec<Record> {
    let mut records = Vec::new();
    for segment in segments(events_dir) {
        let bytes = std::fs::read(&segment).expect("a segment file");
        for (at, _) in record_spans(&bytes) {
            let view = decode_record(&bytes[at..]).expect("a valid record");
            records
                .push(Record { event: view.to_recorded_event().expect("an event"), ends_append: view.ends_append() });
        }
    }
    records
}

/// Writes `records` as the whole log of `events_dir`, as the store would have written them:
/// positions from 1, revisions from 0 in each stream, every `prev_hash` and hash recomputed,
/// in one segment whose checksums are valid. The old segment and index files are removed.
/// Returns the records as written.
pub fn write_log(events_dir: &Path, mut records: Vec<Record>) -> Vec<Record> {
    let mut streams: HashMap<StreamName, (u64, [u8; 32])> = HashMap::new();
    let mut bytes = encode_segment_header(1).to_vec();
    for (index, record) in records.iter_mut().enumerate() {
        let event = &mut record.event;
        let (revision, prev_hash) = streams.get(&event.stream).map_or((0, ZERO_HASH), |&(last, hash)| (last + 1, hash));
        event.position = Position(index as u64 + 1);
        event.revision = revision;
        event.prev_hash = prev_hash;
        let fields = HashedFields {
            stream: &event.stream,
            revision,
            recorded_at: event.recorded_at,
            prev_hash: &event.prev_hash,
            event: &event.event,
        };
        event.hash = event_hash(&fields).expect("an encodable event");
        let mut frame = vec![0u8; FRAME_HEADER_LEN];
        frame.push(if record.ends_append { FLAG_END_OF_APPEND } else { 0 });
        frame.extend_from_slice(&event.position.0.to_le_bytes());
        frame.extend_from_slice(&event.hash);
        encode_canonical(&mut frame, &fields).expect("an encodable event");
        seal_frame(&mut frame, 0);
        bytes.extend_from_slice(&frame);
        streams.insert(event.stream.clone(), (revision, event.hash));
    }
    for entry in std::fs::read_dir(events_dir).expect("the log directory") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|extension| extension == "log" || extension == "idx") {
            std::fs::remove_file(&path).expect("remove a segment or index file");
        }
    }
    std::fs::write(segment_path(events_dir, 1), bytes).expect("write the segment");
    records
}

/// Reads the log in `events_dir`, lets `edit` change its records, and writes it back with
/// every chain recomputed ([`write_log`]). Returns the records as written.
pub fn rewrite_log(events_dir: &Path, edit: impl FnOnce(&mut Vec<Record>)) -> Vec<Record> {
    let mut records = read_log(events_dir);
    edit(&mut records);
    write_log(events_dir, records)
}

/// Cuts the log of `events_dir` after the event at `position`, which must end its append, by
/// truncating its (last) segment file: the log then opens as a clean, shorter log.
pub fn cut_after(events_dir: &Path, position: u64) {
    let segment = segments(events_dir).pop().expect("a segment");
    let bytes = std::fs::read(&segment).expect("a segment file");
    let (at, len) = record_spans(&bytes)
        .into_iter()
        .find(|&(at, _)| decode_record(&bytes[at..]).is_ok_and(|view| view.position == position))
        .expect("the position is in the last segment");
    assert!(decode_record(&bytes[at..]).expect("a record").ends_append(), "cut at the end of an append");
    let file = std::fs::OpenOptions::new().write(true).open(&segment).expect("open the segment");
    file.set_len((at + len) as u64).expect("cut the segment");
}
