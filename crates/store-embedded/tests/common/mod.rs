//! Helpers shared by the embedded store's integration tests: temporary directories that
//! remove themselves, a contract-suite harness on top of them, and a small log written and
//! read back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tousu_store::contract::Harness;
use tousu_store_embedded::io::OsStorage;
use tousu_store_embedded::{EmbeddedOptions, EmbeddedStore};

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "tousu-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("creating a temporary directory");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens a store in `dir` with the given segment size on the real file system.
pub fn open(dir: &Path, segment_size: u64) -> EmbeddedStore {
    EmbeddedStore::open_with(dir, EmbeddedOptions { segment_size, storage: Arc::new(OsStorage) })
        .expect("opening the store")
}

/// Fresh stores in subdirectories of one temporary directory.
pub struct TempHarness {
    dir: TempDir,
    segment_size: u64,
}

impl TempHarness {
    pub fn new(segment_size: u64) -> Self {
        Self { dir: TempDir::new("contract"), segment_size }
    }
}

impl Harness for TempHarness {
    type Store = EmbeddedStore;

    async fn fresh(&self) -> EmbeddedStore {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        open(&self.dir.path().join(format!("store-{n}")), self.segment_size)
    }
}

/// Every event of the store's log, in order.
pub async fn read_log(store: &EmbeddedStore) -> Vec<tousu_store::RecordedEvent> {
    use tousu_store::EventStore as _;
    store.read_all(tousu_store::ReadFrom::Start, usize::MAX).await.unwrap()
}

/// Appends `appends` appends of 1 to 3 events over four streams and closes the store; answers
/// the log it wrote.
pub async fn write_log(dir: &Path, segment_size: u64, appends: u64) -> Vec<tousu_store::RecordedEvent> {
    use tousu_store::EventStore as _;
    use tousu_store::contract::{events, stream};
    let store = open(dir, segment_size);
    for n in 0..appends {
        store
            .append(
                &stream(&format!("complaint-{}", n % 4)),
                tousu_store::ExpectedRevision::Any,
                events(n * 10, 1 + n % 3),
            )
            .await
            .unwrap();
    }
    let log = read_log(&store).await;
    store.close().await.unwrap();
    log
}
