//! Flips single bytes at random places in a closed log and shows that every flip is
//! detected, never silently accepted.
//!
//! "Detected" means one of: opening refuses with the damaged file and offset; opening
//! rebuilds a segment index file whose checksum failed (index files are derived data)
//! and the log then reads exactly as before; or verification fails, either because
//! reading a record fails its checksum (sealed segments are only scanned when read) or
//! because a chain breaks. A closed log has no torn tail (opening cut any, and appends
//! end on record boundaries), so no byte of it lies where recovery would drop it
//! silently; a flip inside the last record is a complete record with a bad checksum,
//! which refuses to open rather than passing for a torn tail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tousu_store::contract::{events, stream};
use tousu_store::{EventStore, ExpectedRevision, ReadFrom, RecordedEvent, verify_all};
use tousu_store_embedded::fault::MemStorage;
use tousu_store_embedded::{EmbeddedOptions, EmbeddedStore, OpenError};

fn options(storage: &MemStorage) -> EmbeddedOptions {
    EmbeddedOptions { segment_size: 8192, storage: Arc::new(storage.clone()) }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[derive(Debug, Default)]
struct Outcomes {
    refused_to_open: u32,
    index_rebuilt: u32,
    unreadable_record: u32,
    broken_chain: u32,
}

#[tokio::test]
async fn every_single_byte_flip_is_detected() {
    let dir = Path::new("/mem/log");
    let original = MemStorage::new();
    let store = EmbeddedStore::open_with(dir, options(&original)).unwrap();
    for n in 0..150u64 {
        store
            .append(&stream(&format!("complaint-{}", n % 5)), ExpectedRevision::Any, events(n * 10, 1 + n % 3))
            .await
            .unwrap();
    }
    let log: Vec<RecordedEvent> = store.read_all(ReadFrom::Start, usize::MAX).await.unwrap();
    store.close().await.unwrap();
    let files: BTreeMap<PathBuf, Vec<u8>> = original
        .paths()
        .into_iter()
        .map(|p| {
            let bytes = original.read_file(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert!(files.len() > 6, "several segments and index files");
    let total: usize = files.values().map(Vec::len).sum();

    let mut rng = 0xF11F_5EED_u64;
    let mut outcomes = Outcomes::default();
    for flip in 0..400 {
        let mut target = (xorshift(&mut rng) % total as u64) as usize;
        let (path, _) = files
            .iter()
            .find(|(_, b)| {
                if target < b.len() {
                    true
                } else {
                    target -= b.len();
                    false
                }
            })
            .unwrap();
        let mask = 1 + (xorshift(&mut rng) % 255) as u8;
        let storage = MemStorage::new();
        for (p, b) in &files {
            let mut b = b.clone();
            if p == path {
                b[target] ^= mask;
            }
            storage.write_file(p, b);
        }
        let what = format!("flip {flip}: {} byte {target} ^ {mask:#04x}", path.display());
        let store = match EmbeddedStore::open_with(dir, options(&storage)) {
            Err(OpenError::Corrupt { segment, .. }) => {
                assert_eq!(&segment, path, "{what}: the damaged file is named");
                outcomes.refused_to_open += 1;
                continue;
            }
            Err(other) => panic!("{what}: unexpected open error {other}"),
            Ok(store) => store,
        };
        if store.recovery().rebuilt_indexes.contains(path) {
            let reread = store.read_all(ReadFrom::Start, usize::MAX).await.unwrap();
            assert_eq!(reread, log, "{what}: a rebuilt index reads the same log");
            outcomes.index_rebuilt += 1;
        } else {
            assert!(store.recovery().torn_tail.is_none(), "{what}: a flip passed for a torn tail");
            match verify_all(&store).await {
                Err(_) => outcomes.unreadable_record += 1,
                Ok(report) if !report.is_intact() => outcomes.broken_chain += 1,
                Ok(_) => panic!("{what}: silently accepted"),
            }
        }
        store.close().await.unwrap();
    }
    assert!(outcomes.refused_to_open > 0, "{outcomes:?}");
    assert!(outcomes.index_rebuilt > 0, "{outcomes:?}");
    assert!(outcomes.unreadable_record > 0, "{outcomes:?}");
    let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("flips: {outcomes:?}\n"));
}
