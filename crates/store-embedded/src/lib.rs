//! The embedded event store, tousu's default backend: an append-only log of segment
//! files in one directory, written by a single group-committing writer thread, indexed
//! in memory without payloads, and recovered on open. Nothing to install.
//!
//! Layout of the crate: [`format`] is the byte format (pure functions), [`io`] the file
//! operations behind a trait, [`fault`] an in-memory file system that injects faults and
//! simulates crashes for tests, `recovery` opening and repairing, `writer` the group
//! commit, `index` the in-memory index. The byte format and what is assumed of the disk
//! are in `docs/storage-format.md`.
//!
//! Reads run on the calling task: they take the index's read lock only to turn positions
//! into file ranges, then read with positioned reads, usually from the page cache.
//!
//! [`EmbeddedStore::open_read_only`] opens a log for the audit tools, which must leave the
//! evidence as they found it: it writes, truncates and creates nothing, reports a torn tail
//! instead of cutting it, runs no writer, and refuses every append.

pub mod fault;
pub mod format;
mod index;
pub mod io;
mod recovery;
mod writer;

use std::any::Any;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::{mpsc, oneshot, watch};
use tousu_store::{
    AppendError, AppendResult, CloseError, Direction, EventStore, ExpectedRevision, Position, ProposedEvent, ReadError,
    ReadFrom, RecordedEvent, StreamFrom, StreamName, Subscription, SubscriptionError,
};

pub use recovery::{Damage, OpenError, RecoveryReport, RepairError, RepairReport, TornTail};

use crate::format::decode_record;
use crate::index::{Index, RecordLocation};
use crate::io::{OsStorage, Storage};
use crate::recovery::OpenMode;
use crate::writer::{AppendRequest, Message, Writer};

/// The default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 * 1024 * 1024;

/// How the embedded store is opened.
#[derive(Clone)]
pub struct EmbeddedOptions {
    /// The size past which the writer starts a new segment file (an append never spans
    /// two segments, so a segment may exceed it by one append). Clamped to 4 KiB..=1 GiB.
    pub segment_size: u64,
    /// The file system: the real one, or a fault-injecting one in tests.
    pub storage: Arc<dyn Storage>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self { segment_size: DEFAULT_SEGMENT_SIZE, storage: Arc::new(OsStorage) }
    }
}

/// The committed head and whether the store is closed, watched by subscriptions.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadState {
    pub head: u64,
    pub closed: bool,
}

/// What the store handle, the writer and subscriptions share.
pub(crate) struct Shared {
    pub index: RwLock<Index>,
    pub head: watch::Sender<HeadState>,
    pub closed: AtomicBool,
    pub poisoned: AtomicBool,
    /// Why the writer refuses writes, from the moment a write or sync failed.
    pub refusal: watch::Sender<Option<String>>,
    /// Bytes read from the segments, kept between reads: a fresh buffer for a large batch
    /// costs more in page faults and zeroing than decoding its envelopes.
    pub read_buffer: std::sync::Mutex<Vec<u8>>,
}

/// The largest read buffer [`Shared::read_buffer`] keeps between reads; a read of a larger
/// run of records uses a buffer of its own.
const KEPT_READ_BUFFER: usize = 64 << 20;

pub(crate) fn read_lock(lock: &RwLock<Index>) -> RwLockReadGuard<'_, Index> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn write_lock(lock: &RwLock<Index>) -> RwLockWriteGuard<'_, Index> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The embedded event store. Dropping it stops the writer after the appends already
/// queued; [`EventStore::close`] does the same and waits for it.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    sender: mpsc::Sender<Message>,
    recovery: RecoveryReport,
    dir: PathBuf,
    /// The shared lock of a store opened read-only, released on close; a store that writes
    /// has none here (its writer holds the exclusive lock).
    reader_lock: std::sync::Mutex<Option<Box<dyn Any + Send + Sync>>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the log in `dir` on the real file system.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    /// Opens (or creates) the log in `dir` with `options`. Opening recovers: see
    /// [`RecoveryReport`] for what it may have done.
    pub fn open_with(dir: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, OpenError> {
        let dir = dir.as_ref().to_owned();
        let storage = options.storage;
        storage.create_dir_all(&dir).map_err(|source| OpenError::Io { path: dir.clone(), source })?;
        let lock = storage.lock_dir(&dir).map_err(|source| match source.kind() {
            std::io::ErrorKind::WouldBlock => OpenError::Locked { dir: dir.clone() },
            _ => OpenError::Io { path: dir.clone(), source },
        })?;
        let (index, active, recovery) = recovery::open_log(&*storage, &dir, OpenMode::Write)?;
        let active = active.expect("opening for writing creates the first segment");
        let head = index.head;
        let (head_sender, _) = watch::channel(HeadState { head, closed: false });
        let shared = Arc::new(Shared {
            read_buffer: std::sync::Mutex::new(Vec::new()),
            index: RwLock::new(index),
            head: head_sender,
            closed: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            refusal: watch::Sender::new(None),
        });
        let (sender, receiver) = mpsc::channel(1024);
        let writer = Writer {
            shared: Arc::clone(&shared),
            storage,
            dir: dir.clone(),
            active,
            segment_size: options.segment_size.clamp(4096, 1 << 30),
            next_position: head + 1,
            poisoned: false,
            buf: Vec::with_capacity(1 << 20),
            lock,
        };
        std::thread::Builder::new()
            .name("tousu-store-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|source| OpenError::Io { path: dir.clone(), source })?;
        Ok(Self { shared, sender, recovery, dir, reader_lock: std::sync::Mutex::new(None) })
    }

    /// Opens the log in `dir` on the real file system for reading only: see
    /// [`EmbeddedStore::open_read_only_with`].
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_read_only_with(dir, Arc::new(OsStorage))
    }

    /// Opens the log in `dir` for reading only, changing nothing on disk: files are opened for
    /// reading, under a shared lock (a store that writes holds it exclusively: `Locked`; no
    /// lock file, as in a copy of a log: no lock), nothing is created, truncated, rewritten or
    /// removed. Opening checks what [`EmbeddedStore::open_with`] checks and refuses damage the
    /// same way; a torn tail is reported in [`RecoveryReport::torn_tail`] and left in place,
    /// unread. A directory without segments is an empty log; a missing directory an error.
    /// Every append fails with [`AppendError::Closed`], and [`EventStore::write_refusal`] says
    /// why.
    pub fn open_read_only_with(dir: impl AsRef<Path>, storage: Arc<dyn Storage>) -> Result<Self, OpenError> {
        let dir = dir.as_ref().to_owned();
        let lock = storage.lock_dir_shared(&dir).map_err(|source| match source.kind() {
            std::io::ErrorKind::WouldBlock => OpenError::Locked { dir: dir.clone() },
            _ => OpenError::Io { path: dir.clone(), source },
        })?;
        let (index, _, recovery) = recovery::open_log(&*storage, &dir, OpenMode::ReadOnly)?;
        let (head, _) = watch::channel(HeadState { head: index.head, closed: false });
        let shared = Arc::new(Shared {
            read_buffer: std::sync::Mutex::new(Vec::new()),
            index: RwLock::new(index),
            head,
            closed: AtomicBool::new(false),
            poisoned: AtomicBool::new(false),
            refusal: watch::Sender::new(Some(format!("the event log in {} is opened read-only", dir.display()))),
        });
        // No writer reads this channel: an append finds it closed.
        let (sender, _) = mpsc::channel(1);
        Ok(Self { shared, sender, recovery, dir, reader_lock: std::sync::Mutex::new(lock) })
    }

    /// What opening found and did.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the store refuses writes after a failed write or sync.
    pub fn is_poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::SeqCst)
    }
}

/// Repairs the log in `dir` on the real file system: see [`repair_with`].
pub fn repair(dir: impl AsRef<Path>) -> Result<RepairReport, RepairError> {
    recovery::repair_with(&OsStorage, dir.as_ref())
}

pub use recovery::repair_with;

fn corrupt(location: &RecordLocation, offset: u64, detail: impl ToString) -> ReadError {
    ReadError::Corrupt { location: format!("{}@{offset}", location.path.display()), detail: detail.to_string() }
}

/// Decodes `count` records from `first_position` out of `bytes`, read from `location`.
fn decode_run(
    location: &RecordLocation,
    bytes: &[u8],
    first_position: u64,
    count: u64,
    out: &mut Vec<RecordedEvent>,
) -> Result<(), ReadError> {
    let mut at = 0usize;
    for i in 0..count {
        let offset = location.offset + at as u64;
        let view = decode_record(&bytes[at..]).map_err(|e| corrupt(location, offset, e))?;
        if view.position != first_position + i {
            return Err(corrupt(
                location,
                offset,
                format!("record holds position {} where {} belongs", view.position, first_position + i),
            ));
        }
        out.push(view.to_recorded_event().map_err(|e| corrupt(location, offset, e))?);
        at += view.len as usize;
    }
    Ok(())
}

impl Shared {
    /// Reads the published events from `from` on, at most `limit` of them.
    fn read_positions(&self, from: u64, limit: usize) -> Result<Vec<RecordedEvent>, ReadError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ranges = {
            let index = read_lock(&self.index);
            let last = from.saturating_add(limit as u64 - 1).min(index.head);
            if from > last {
                return Ok(Vec::new());
            }
            index.ranges(from, last)
        };
        let mut events = Vec::new();
        // Another reader holding the kept buffer, or a run too large to keep: a buffer of its own.
        let mut kept = self.read_buffer.try_lock().ok();
        let mut own = Vec::new();
        for (location, first, count) in ranges {
            let len = (location.end - location.offset) as usize;
            let buffer = match kept.as_deref_mut() {
                Some(kept) if len <= KEPT_READ_BUFFER => kept,
                _ => &mut own,
            };
            // Only growth is zeroed: the read overwrites the first `len` bytes.
            if buffer.len() < len {
                buffer.resize(len, 0);
            }
            let bytes = &mut buffer[..len];
            location.file.read_at(bytes, location.offset)?;
            decode_run(&location, bytes, first, count, &mut events)?;
        }
        Ok(events)
    }

    fn read_stream(
        &self,
        stream: &StreamName,
        direction: Direction,
        from: StreamFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let locations: Vec<(u64, RecordLocation)> = {
            let index = read_lock(&self.index);
            let Some(&slot) = index.stream_slots.get(stream) else {
                return Ok(Vec::new());
            };
            let positions = &index.streams[slot as usize].positions;
            let len = positions.len() as u64;
            let selected: Vec<u64> = match direction {
                Direction::Forwards => {
                    let start = match from {
                        StreamFrom::Start => 0,
                        StreamFrom::End => len,
                        StreamFrom::Revision(revision) => revision.min(len),
                    };
                    positions[start as usize..].iter().take(limit).copied().collect()
                }
                Direction::Backwards => {
                    let end = match from {
                        StreamFrom::Start => len.min(1),
                        StreamFrom::End => len,
                        StreamFrom::Revision(revision) => revision.saturating_add(1).min(len),
                    };
                    positions[..end as usize].iter().rev().take(limit).copied().collect()
                }
            };
            selected
                .into_iter()
                .map(|position| {
                    let location = index.locate(position).expect("indexed positions are published");
                    (position, location)
                })
                .collect()
        };
        let mut events = Vec::with_capacity(locations.len());
        let mut bytes = Vec::new();
        for (position, location) in locations {
            bytes.resize((location.end - location.offset) as usize, 0);
            location.file.read_at(&mut bytes, location.offset)?;
            decode_run(&location, &bytes, position, 1, &mut events)?;
        }
        Ok(events)
    }
}

impl EventStore for EmbeddedStore {
    type Subscription = EmbeddedSubscription;

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult, AppendError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(AppendError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest { stream: stream.clone(), expected, events, reply };
        self.sender.send(Message::Append(request)).await.map_err(|_| AppendError::Closed)?;
        answer.await.map_err(|_| AppendError::Closed)?
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        direction: Direction,
        from: StreamFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        self.shared.read_stream(stream, direction, from, limit)
    }

    async fn read_all(&self, from: ReadFrom, limit: usize) -> Result<Vec<RecordedEvent>, ReadError> {
        let first = match from {
            ReadFrom::Start => 1,
            ReadFrom::After(position) => position.0.saturating_add(1),
        };
        self.shared.read_positions(first, limit)
    }

    async fn subscribe_all(&self, from: ReadFrom) -> Result<EmbeddedSubscription, ReadError> {
        let next = match from {
            ReadFrom::Start => 1,
            ReadFrom::After(position) => position.0.saturating_add(1),
        };
        Ok(EmbeddedSubscription {
            shared: Arc::clone(&self.shared),
            head: self.shared.head.subscribe(),
            next,
            buffer: VecDeque::new(),
        })
    }

    async fn head(&self) -> Result<Option<Position>, ReadError> {
        let head = read_lock(&self.shared.index).head;
        Ok((head > 0).then_some(Position(head)))
    }

    async fn close(&self) -> Result<(), CloseError> {
        if self.recovery.read_only {
            self.shared.closed.store(true, Ordering::SeqCst);
            self.shared.head.send_modify(|state| state.closed = true);
            drop(self.reader_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
            return Ok(());
        }
        let (reply, done) = oneshot::channel();
        if self.sender.send(Message::Close(reply)).await.is_err() {
            // The writer has already stopped.
            return Ok(());
        }
        done.await.map_err(|_| CloseError::WriterFailed)
    }

    fn write_refusal(&self) -> watch::Receiver<Option<String>> {
        self.shared.refusal.subscribe()
    }
}

/// How many events a subscription reads from storage at a time when `next` is used.
const SUBSCRIPTION_READ_AHEAD: usize = 256;

/// A pull-based subscription to the embedded log. It holds at most one batch of events;
/// it learns of new events from a `watch` of the committed head, never from a queue,
/// so a consumer that does not pull costs the store nothing.
pub struct EmbeddedSubscription {
    shared: Arc<Shared>,
    head: watch::Receiver<HeadState>,
    next: u64,
    buffer: VecDeque<RecordedEvent>,
}

impl EmbeddedSubscription {
    async fn fetch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SubscriptionError> {
        let max = max.max(1);
        loop {
            let state = *self.head.borrow_and_update();
            if self.next <= state.head {
                let events = self.shared.read_positions(self.next, max)?;
                if let Some(last) = events.last() {
                    self.next = last.position.0 + 1;
                    return Ok(events);
                }
            }
            if state.closed {
                return Err(SubscriptionError::Closed);
            }
            if self.head.changed().await.is_err() {
                return Err(SubscriptionError::Closed);
            }
        }
    }
}

impl Subscription for EmbeddedSubscription {
    async fn next(&mut self) -> Result<RecordedEvent, SubscriptionError> {
        if self.buffer.is_empty() {
            let events = self.fetch(SUBSCRIPTION_READ_AHEAD).await?;
            self.buffer.extend(events);
        }
        Ok(self.buffer.pop_front().expect("fetch returns at least one event"))
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SubscriptionError> {
        if !self.buffer.is_empty() {
            let take = max.max(1).min(self.buffer.len());
            return Ok(self.buffer.drain(..take).collect());
        }
        self.fetch(max).await
    }
}
