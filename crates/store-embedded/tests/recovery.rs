//! Opening logs that were closed, cut, damaged or tampered with: torn tails are cut and
//! reported, damage refuses to open naming the file and offset and leaves it untouched,
//! repair cuts at the damage on request, index files are rebuilt, a failed write
//! poisons the store, and tampering that keeps checksums valid is found by verification.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{TempDir, read_log, write_log};
use tousu_store::contract::{events, stream};
use tousu_store::{AppendError, BrokenLinkKind, EventStore, ExpectedRevision, Position, verify_all};
use tousu_store_embedded::fault::{FaultPlan, MemStorage};
use tousu_store_embedded::format::{FRAME_HEADER_LEN, decode_record, seal_frame};
use tousu_store_embedded::{Damage, EmbeddedOptions, EmbeddedStore, OpenError, repair};

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    paths
}

fn index_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    paths.sort();
    paths
}

/// The offsets of the records in a segment file's bytes.
fn record_offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut offsets = Vec::new();
    let mut at = 32;
    while at < bytes.len() {
        let view = decode_record(&bytes[at..]).expect("a valid record");
        offsets.push((at, view.len as usize));
        at += view.len as usize;
    }
    offsets
}

#[tokio::test]
async fn reopening_keeps_every_event_and_uses_the_index_files() {
    let dir = TempDir::new("reopen");
    let log = write_log(dir.path(), 4096, 200).await;
    assert!(segments(dir.path()).len() > 5, "several segments");
    assert_eq!(index_files(dir.path()).len(), segments(dir.path()).len() - 1);
    let store = common::open(dir.path(), 4096);
    let report = store.recovery().clone();
    assert_eq!(report.events, log.len() as u64);
    assert_eq!(report.torn_tail, None);
    assert!(report.rebuilt_indexes.is_empty());
    assert_eq!(read_log(&store).await, log);
    // Appending continues the positions and chains.
    let next = store.append(&stream("complaint-1"), ExpectedRevision::Any, events(9000, 1)).await.unwrap();
    assert_eq!(next.position, Position(log.len() as u64 + 1));
    assert!(verify_all(&store).await.unwrap().is_intact());
    store.close().await.unwrap();
}

#[tokio::test]
async fn missing_or_damaged_index_files_are_rebuilt() {
    let dir = TempDir::new("rebuild");
    let log = write_log(dir.path(), 4096, 120).await;
    let indexes = index_files(dir.path());
    std::fs::remove_file(&indexes[0]).unwrap();
    let mut bytes = std::fs::read(&indexes[1]).unwrap();
    bytes[60] ^= 0x40;
    std::fs::write(&indexes[1], &bytes).unwrap();
    let store = common::open(dir.path(), 4096);
    assert_eq!(store.recovery().rebuilt_indexes, vec![indexes[0].clone(), indexes[1].clone()]);
    assert_eq!(read_log(&store).await, log);
    store.close().await.unwrap();
    let store = common::open(dir.path(), 4096);
    assert!(store.recovery().rebuilt_indexes.is_empty(), "rebuilt files are valid");
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_reported() {
    let dir = TempDir::new("torn");
    let log = write_log(dir.path(), 1 << 20, 30).await;
    let segment = segments(dir.path()).pop().unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    let records = record_offsets(&bytes);
    let (last_offset, last_len) = *records.last().unwrap();
    // Cut the last record in the middle of its body.
    std::fs::write(&segment, &bytes[..last_offset + last_len / 2]).unwrap();
    let store = common::open(dir.path(), 1 << 20);
    let torn = store.recovery().torn_tail.clone().expect("a torn tail");
    assert_eq!(torn.segment, segment);
    // The last append (n = 29: 3 events) is dropped whole: its two complete records too.
    assert_eq!(torn.records_dropped, 2);
    let kept = read_log(&store).await;
    assert_eq!(kept, log[..log.len() - 3].to_vec());
    assert_eq!(torn.offset, records[records.len() - 3].0 as u64);
    assert_eq!(torn.bytes_dropped, (last_offset + last_len / 2 - records[records.len() - 3].0) as u64);
    assert!(verify_all(&store).await.unwrap().is_intact());
    store.close().await.unwrap();
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), torn.offset, "the file was cut");
}

#[tokio::test]
async fn a_short_frame_header_or_zeros_at_the_end_are_a_torn_tail() {
    let dir = TempDir::new("torn-header");
    let log = write_log(dir.path(), 1 << 20, 10).await;
    let segment = segments(dir.path()).pop().unwrap();
    let original = std::fs::read(&segment).unwrap();
    for tail in [vec![0x55u8; 7], vec![0u8; 4096]] {
        let mut bytes = original.clone();
        bytes.extend_from_slice(&tail);
        std::fs::write(&segment, &bytes).unwrap();
        let store = common::open(dir.path(), 1 << 20);
        assert_eq!(store.recovery().torn_tail.as_ref().map(|t| t.bytes_dropped), Some(tail.len() as u64));
        assert_eq!(read_log(&store).await, log);
        store.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_bad_checksum_refuses_to_open_and_repair_cuts_there() {
    let dir = TempDir::new("damage");
    let log = write_log(dir.path(), 4096, 100).await;
    let all_segments = segments(dir.path());
    let victim = &all_segments[1];
    let mut bytes = std::fs::read(victim).unwrap();
    let records = record_offsets(&bytes);
    let (offset, len) = records[2];
    bytes[offset + len - 5] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();
    // The index file of a sealed segment would let opening skip the scan: remove it so
    // opening scans the segment and meets the damage.
    std::fs::remove_file(index_files(dir.path())[1].clone()).unwrap();
    let error = EmbeddedStore::open(dir.path()).err().expect("opening refuses");
    match &error {
        OpenError::Corrupt { segment, offset: at, damage: Damage::Record(_) } => {
            assert_eq!(segment, victim);
            assert_eq!(*at, offset as u64);
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(error.to_string().contains(&format!("offset {offset}")), "{error}");
    assert_eq!(std::fs::read(victim).unwrap(), bytes, "the file is untouched");
    let report = repair(dir.path()).unwrap();
    let (cut, at, _) = report.truncated.clone().unwrap();
    assert_eq!(cut, *victim);
    // The cut is at the start of the damaged record's append.
    assert!(at <= offset as u64);
    assert_eq!(report.removed_segments.len(), all_segments.len() - 2);
    assert!(matches!(report.damage, Some(Damage::Record(_))));
    let store = common::open(dir.path(), 4096);
    let kept = read_log(&store).await;
    assert_eq!(kept.len() as u64, report.events_kept);
    assert_eq!(kept[..], log[..kept.len()]);
    assert!(verify_all(&store).await.unwrap().is_intact());
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_damaged_last_record_is_not_mistaken_for_a_torn_tail() {
    let dir = TempDir::new("last-record");
    write_log(dir.path(), 1 << 20, 10).await;
    let segment = segments(dir.path()).pop().unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    let (offset, _) = *record_offsets(&bytes).last().unwrap();
    for at in [offset, offset + 1, offset + 4, offset + 9, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x80;
        std::fs::write(&segment, &damaged).unwrap();
        let error = EmbeddedStore::open(dir.path()).err();
        assert!(
            matches!(error, Some(OpenError::Corrupt { offset: o, .. }) if o == offset as u64),
            "flip at {at}: {error:?}"
        );
    }
}

#[tokio::test]
async fn tampering_that_keeps_checksums_is_found_by_verification() {
    let dir = TempDir::new("tamper");
    let log = write_log(dir.path(), 1 << 20, 12).await;
    let segment = segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let (offset, len) = record_offsets(&bytes)[7];
    // Change one payload byte and recompute the frame's checksums, as a forger would.
    let payload_byte = offset + len - 3;
    bytes[payload_byte] = b'9';
    let mut record = bytes[offset..offset + len].to_vec();
    seal_frame(&mut record, 0);
    bytes[offset..offset + len].copy_from_slice(&record);
    assert_eq!(record.len(), len);
    assert!(FRAME_HEADER_LEN < len);
    std::fs::write(&segment, &bytes).unwrap();
    let store = common::open(dir.path(), 1 << 20);
    let report = verify_all(&store).await.unwrap();
    let broken = report.first_broken.expect("the forgery is found");
    assert_eq!(broken.position, log[7].position);
    assert_eq!(broken.stream, log[7].stream);
    assert_eq!(broken.revision, log[7].revision);
    assert!(matches!(broken.kind, BrokenLinkKind::HashMismatch { .. }));
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_second_store_cannot_open_the_same_directory() {
    let dir = TempDir::new("lock");
    let store = common::open(dir.path(), 1 << 20);
    let error = EmbeddedStore::open(dir.path()).err();
    assert!(matches!(error, Some(OpenError::Locked { .. })), "{error:?}");
    store.close().await.unwrap();
    let again = common::open(dir.path(), 1 << 20);
    again.close().await.unwrap();
}

#[tokio::test]
async fn a_failed_sync_poisons_the_store_until_reopened() {
    let storage = MemStorage::new();
    let options = EmbeddedOptions { segment_size: 1 << 20, storage: Arc::new(storage.clone()) };
    let dir = Path::new("/mem/log");
    let store = EmbeddedStore::open_with(dir, options.clone()).unwrap();
    let s = stream("complaint-P");
    store.append(&s, ExpectedRevision::NoStream, events(0, 1)).await.unwrap();
    let mut refusal = store.write_refusal();
    assert_eq!(*refusal.borrow_and_update(), None, "a store that takes writes refuses none");
    let (_, syncs) = storage.counts();
    storage.set_plan(FaultPlan { fail_sync: Some(syncs), ..FaultPlan::default() });
    let failed = store.append(&s, ExpectedRevision::Exact(0), events(1, 1)).await.unwrap_err();
    assert!(matches!(failed, AppendError::Io { .. }), "{failed}");
    assert!(store.is_poisoned());
    // Whoever watches learns it at once, with the reason naming the log.
    assert!(refusal.has_changed().unwrap(), "the refusal is announced");
    let reason = refusal.borrow_and_update().clone().expect("a reason");
    assert!(reason.contains("/mem/log") && reason.contains("refuses writes until reopened"), "{reason}");
    let refused = store.append(&s, ExpectedRevision::Any, events(2, 1)).await.unwrap_err();
    assert!(matches!(refused, AppendError::PreviousIo), "{refused}");
    store.close().await.unwrap();
    // The unacknowledged append reached the page cache; without a crash it is there
    // when reopened, whole. Writing works again.
    let store = EmbeddedStore::open_with(dir, options).unwrap();
    assert_eq!(*store.write_refusal().borrow(), None, "reopened, the store takes writes");
    let log = read_log(&store).await;
    assert_eq!(log.len(), 2);
    store.append(&s, ExpectedRevision::Any, events(3, 1)).await.unwrap();
    assert!(verify_all(&store).await.unwrap().is_intact());
    store.close().await.unwrap();
}
