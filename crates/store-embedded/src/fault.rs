//! An in-memory [`Storage`] for tests that fails the n-th write or sync on request, tears
//! a write after a given number of bytes, and simulates a crash.
//!
//! Each file keeps the bytes a reader sees and the bytes that are durable (as of its last
//! successful `sync_data`); a directory entry is durable once its directory was synced.
//! [`MemStorage::crash`] keeps, of every file, its durable bytes plus a chosen share of
//! what was appended after them (a crash may or may not have persisted unsynced data,
//! and a write may tear anywhere), and forgets files whose entries were never synced.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::io::{Storage, StorageFile};

/// Which operation fails, counted from 0 over the storage's life (all files).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Fail the n-th `write_at`, after writing `tear_bytes` of it.
    pub fail_write: Option<u64>,
    /// How many bytes of the failing write land before it fails.
    pub tear_bytes: usize,
    /// Fail the n-th `sync_data` or `sync_dir`; the data stays not durable.
    pub fail_sync: Option<u64>,
}

#[derive(Default)]
struct FileData {
    visible: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Default)]
struct State {
    files: BTreeMap<PathBuf, Arc<Mutex<FileData>>>,
    durable_entries: BTreeSet<PathBuf>,
    plan: FaultPlan,
    writes: u64,
    syncs: u64,
    faults_injected: u64,
}

/// The in-memory, fault-injecting file system. Clones share the same files.
#[derive(Clone, Default)]
pub struct MemStorage {
    state: Arc<Mutex<State>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl MemStorage {
    /// An empty file system with no faults planned.
    pub fn new() -> Self {
        Self::default()
    }

    /// Plans the next faults; counts go on from where they are.
    pub fn set_plan(&self, plan: FaultPlan) {
        lock(&self.state).plan = plan;
    }

    /// How many writes and syncs have been made so far.
    pub fn counts(&self) -> (u64, u64) {
        let state = lock(&self.state);
        (state.writes, state.syncs)
    }

    /// How many faults have been injected so far.
    pub fn faults_injected(&self) -> u64 {
        lock(&self.state).faults_injected
    }

    /// Simulates a crash: every file whose directory entry is durable keeps its durable
    /// bytes plus the first `keep(unsynced_len)` bytes appended after them (when the
    /// visible bytes extend the durable ones; otherwise only the durable bytes); files
    /// created but never made durable in their directory vanish. Handles opened before
    /// the crash must not be used afterwards.
    pub fn crash(&self, mut keep: impl FnMut(usize) -> usize) {
        let mut state = lock(&self.state);
        let durable_entries = state.durable_entries.clone();
        let mut files = BTreeMap::new();
        for (path, file) in std::mem::take(&mut state.files) {
            if !durable_entries.contains(&path) {
                continue;
            }
            let data = lock(&file);
            let mut bytes = data.durable.clone();
            if data.visible.len() > bytes.len() && data.visible.starts_with(&bytes) {
                let extra = data.visible.len() - bytes.len();
                let kept = keep(extra).min(extra);
                bytes.extend_from_slice(&data.visible[data.durable.len()..][..kept]);
            }
            files.insert(path, Arc::new(Mutex::new(FileData { visible: bytes.clone(), durable: bytes })));
        }
        state.files = files;
    }

    /// The visible bytes of a file, if it exists.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = lock(&self.state);
        state.files.get(path).map(|f| lock(f).visible.clone())
    }

    /// Replaces a file's bytes, visible and durable (for tests that damage a log).
    pub fn write_file(&self, path: &Path, bytes: Vec<u8>) {
        let mut state = lock(&self.state);
        state.durable_entries.insert(path.to_owned());
        state.files.insert(path.to_owned(), Arc::new(Mutex::new(FileData { visible: bytes.clone(), durable: bytes })));
    }

    /// The paths of every file.
    pub fn paths(&self) -> Vec<PathBuf> {
        lock(&self.state).files.keys().cloned().collect()
    }
}

struct MemFile {
    data: Arc<Mutex<FileData>>,
    state: Arc<Mutex<State>>,
}

impl MemFile {
    /// Counts a write and says whether it must fail.
    fn write_fault(&self) -> Option<usize> {
        let mut state = lock(&self.state);
        let n = state.writes;
        state.writes += 1;
        (state.plan.fail_write == Some(n)).then(|| {
            state.faults_injected += 1;
            state.plan.tear_bytes
        })
    }
}

fn sync_fault(state: &Mutex<State>) -> bool {
    let mut state = lock(state);
    let n = state.syncs;
    state.syncs += 1;
    let fail = state.plan.fail_sync == Some(n);
    if fail {
        state.faults_injected += 1;
    }
    fail
}

impl StorageFile for MemFile {
    fn byte_len(&self) -> io::Result<u64> {
        Ok(lock(&self.data).visible.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let data = lock(&self.data);
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start + buf.len();
        if end > data.visible.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of the file"));
        }
        buf.copy_from_slice(&data.visible[start..end]);
        Ok(())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let tear = self.write_fault();
        let written = tear.map_or(buf.len(), |t| t.min(buf.len()));
        let mut data = lock(&self.data);
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start + written;
        if data.visible.len() < end {
            data.visible.resize(end, 0);
        }
        data.visible[start..end].copy_from_slice(&buf[..written]);
        match tear {
            Some(_) => Err(injected("write")),
            None => Ok(()),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        if sync_fault(&self.state) {
            return Err(injected("sync"));
        }
        let mut data = lock(&self.data);
        data.durable = data.visible.clone();
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        lock(&self.data).visible.truncate(len);
        Ok(())
    }
}

impl Storage for MemStorage {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn lock_dir(&self, _dir: &Path) -> io::Result<Box<dyn Any + Send + Sync>> {
        Ok(Box::new(()))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = lock(&self.state);
        Ok(state
            .files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let state = lock(&self.state);
        let data =
            state.files.get(path).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        Ok(Arc::new(MemFile { data, state: Arc::clone(&self.state) }))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let mut state = lock(&self.state);
        let data = Arc::new(Mutex::new(FileData::default()));
        if let Some(existing) = state.files.get(path) {
            // Truncating an existing file: the durable bytes stay until a sync.
            let mut existing = lock(existing);
            existing.visible.clear();
            drop(existing);
            let data = Arc::clone(&state.files[path]);
            return Ok(Arc::new(MemFile { data, state: Arc::clone(&self.state) }));
        }
        state.files.insert(path.to_owned(), Arc::clone(&data));
        Ok(Arc::new(MemFile { data, state: Arc::clone(&self.state) }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.durable_entries.remove(path);
        state.files.remove(path).map(drop).ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if sync_fault(&self.state) {
            return Err(injected("directory sync"));
        }
        let mut state = lock(&self.state);
        let entries: Vec<PathBuf> = state.files.keys().filter(|p| p.parent() == Some(dir)).cloned().collect();
        state.durable_entries.extend(entries);
        Ok(())
    }
}
