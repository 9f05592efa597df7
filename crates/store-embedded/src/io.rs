//! The file operations the embedded store performs, behind a small trait so tests can
//! inject faults, and their implementation on the real file system.
//!
//! The store only ever writes at explicit offsets, syncs data, truncates, creates and
//! removes whole files, and syncs directories; that is all a [`Storage`] must do. A store
//! opened read-only does none of it: it opens files for reading only, under a shared lock.

use std::any::Any;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// An open file of the store.
pub trait StorageFile: Send + Sync {
    /// The file's length in bytes.
    fn byte_len(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; a short file is an `UnexpectedEof` error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`. A failure may leave any prefix of it written.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Cuts the file to `len` bytes; durable only after [`StorageFile::sync_data`].
    fn truncate(&self, len: u64) -> io::Result<()>;
}

/// A directory of files, as the store sees the file system.
pub trait Storage: Send + Sync {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `dir`, held until the returned guard is dropped; fails
    /// with [`io::ErrorKind::WouldBlock`] when another holder has it.
    fn lock_dir(&self, dir: &Path) -> io::Result<Box<dyn Any + Send + Sync>>;
    /// The names of the files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Opens an existing file for reading only, for a store opened read-only: writing through
    /// it fails. The default opens it as [`Storage::open`] does.
    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.open(path)
    }
    /// Takes a shared lock on `dir` for a store opened read-only, held until the returned
    /// guard is dropped: it keeps out a store that writes (whose [`Storage::lock_dir`] fails
    /// with [`io::ErrorKind::WouldBlock`] meanwhile, and the other way round), not other
    /// readers. It creates nothing: `None` when `dir` has no lock file, as a copy of a log
    /// may not. The default takes the exclusive lock.
    fn lock_dir_shared(&self, dir: &Path) -> io::Result<Option<Box<dyn Any + Send + Sync>>> {
        self.lock_dir(dir).map(Some)
    }
    /// Creates a file, emptying it if it exists. Its directory entry is durable only
    /// after [`Storage::sync_dir`].
    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes `dir`'s entries durable (fsync of the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsStorage;

struct OsFile(File);

impl StorageFile for OsFile {
    fn byte_len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Storage for OsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn lock_dir(&self, dir: &Path) -> io::Result<Box<dyn Any + Send + Sync>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join("LOCK"))?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(file)),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(io::Error::new(io::ErrorKind::WouldBlock, "the directory is locked by another store"))
            }
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }

    fn lock_dir_shared(&self, dir: &Path) -> io::Result<Option<Box<dyn Any + Send + Sync>>> {
        let file = match OpenOptions::new().read(true).open(dir.join("LOCK")) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(io::Error::new(io::ErrorKind::WouldBlock, "the directory is locked by a store that writes"))
            }
            Err(std::fs::TryLockError::Error(error)) => Err(error),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(OsFile(file)))
    }

    fn open_read_only(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).open(path)?;
        Ok(Arc::new(OsFile(file)))
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        Ok(Arc::new(OsFile(file)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
