//! Opening a log read-only, as the audit tools do: every check of opening runs, nothing on
//! disk changes. A torn tail is reported and left in place, a missing index is rebuilt in
//! memory only, appends are refused, and the lock keeps a store that writes out.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{TempDir, read_log, write_log};
use tousu_store::contract::{events, stream};
use tousu_store::{AppendError, EventStore, ExpectedRevision, verify_all};
use tousu_store_embedded::format::decode_record;
use tousu_store_embedded::{EmbeddedStore, OpenError};

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

fn files_ending(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> =
        snapshot(dir).into_keys().filter(|path| path.extension().is_some_and(|e| e == extension)).collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn a_log_opened_read_only_reports_its_torn_tail_and_changes_no_byte() {
    let dir = TempDir::new("read-only");
    let log = write_log(dir.path(), 4096, 60).await;
    // Tear the last record (of an append of three) in the middle of its body, and lose a
    // sealed segment's index file.
    let segment = files_ending(dir.path(), "log").pop().unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    let mut offsets = Vec::new();
    let mut at = 32;
    while at < bytes.len() {
        offsets.push(at);
        at += decode_record(&bytes[at..]).unwrap().len as usize;
    }
    let last = *offsets.last().unwrap();
    std::fs::write(&segment, &bytes[..last + (bytes.len() - last) / 2]).unwrap();
    let lost_index = files_ending(dir.path(), "idx").remove(0);
    std::fs::remove_file(&lost_index).unwrap();
    let before = snapshot(dir.path());

    let store = EmbeddedStore::open_read_only(dir.path()).unwrap();
    let report = store.recovery().clone();
    assert!(report.read_only);
    let torn = report.torn_tail.clone().expect("the torn tail is reported");
    assert_eq!((torn.segment.as_path(), torn.offset), (segment.as_path(), offsets[offsets.len() - 3] as u64));
    assert_eq!(torn.records_dropped, 2, "the complete records of the unfinished append");
    assert_eq!(report.rebuilt_indexes, std::slice::from_ref(&lost_index));
    // The log reads up to the last complete append, and its chains verify.
    assert_eq!(read_log(&store).await, log[..log.len() - 3].to_vec());
    assert_eq!(report.events, log.len() as u64 - 3);
    assert!(verify_all(&store).await.unwrap().is_intact());
    let refused = store.append(&stream("complaint-0"), ExpectedRevision::Any, events(9_000, 1)).await;
    assert!(matches!(refused, Err(AppendError::Closed)), "{refused:?}");
    let why = store.write_refusal().borrow().clone().expect("a read-only store says why it refuses writes");
    assert!(why.contains("read-only"), "{why}");
    store.close().await.unwrap();
    assert_eq!(snapshot(dir.path()), before, "every file as it was, and no other");

    // Opened for writing, the same tail is cut, and the index written again.
    let store = common::open(dir.path(), 4096);
    assert_eq!(store.recovery().torn_tail.as_ref(), Some(&torn));
    assert_eq!(store.recovery().rebuilt_indexes, std::slice::from_ref(&lost_index));
    assert!(!store.recovery().read_only);
    store.close().await.unwrap();
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), torn.offset);
    assert!(lost_index.exists());
}

#[tokio::test]
async fn a_store_that_writes_and_readers_keep_each_other_out_and_readers_share() {
    let dir = TempDir::new("read-only-lock");
    write_log(dir.path(), 1 << 20, 3).await;
    let writer = common::open(dir.path(), 1 << 20);
    assert!(matches!(EmbeddedStore::open_read_only(dir.path()), Err(OpenError::Locked { .. })));
    writer.close().await.unwrap();
    let first = EmbeddedStore::open_read_only(dir.path()).unwrap();
    let second = EmbeddedStore::open_read_only(dir.path()).unwrap();
    assert!(matches!(EmbeddedStore::open(dir.path()), Err(OpenError::Locked { .. })));
    first.close().await.unwrap();
    second.close().await.unwrap();
    // Closing releases the shared lock.
    common::open(dir.path(), 1 << 20).close().await.unwrap();
}

#[tokio::test]
async fn read_only_a_missing_directory_is_an_error_and_an_empty_or_torn_one_creates_nothing() {
    let dir = TempDir::new("read-only-empty");
    let missing = dir.path().join("events");
    assert!(matches!(EmbeddedStore::open_read_only(&missing), Err(OpenError::Io { .. })));
    assert!(!missing.exists(), "not created");

    // A directory with no segment, not even a lock file (a copy of a log): an empty log.
    let store = EmbeddedStore::open_read_only(dir.path()).unwrap();
    assert_eq!(store.head().await.unwrap(), None);
    store.close().await.unwrap();
    assert!(snapshot(dir.path()).is_empty(), "nothing created");

    // A first segment whose header was torn: a torn tail from offset 0, not rewritten.
    let segment = dir.path().join("segment-00000000000000000001.log");
    std::fs::write(&segment, b"TOUSUSEG\x01").unwrap();
    let store = EmbeddedStore::open_read_only(dir.path()).unwrap();
    let torn = store.recovery().torn_tail.clone().expect("a torn tail");
    assert_eq!((torn.offset, torn.bytes_dropped, torn.records_dropped), (0, 9, 0));
    assert_eq!(store.head().await.unwrap(), None);
    store.close().await.unwrap();
    assert_eq!(std::fs::read(&segment).unwrap(), b"TOUSUSEG\x01");
}
