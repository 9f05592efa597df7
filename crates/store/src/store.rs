//! The event store trait every backend implements, its subscription trait, and the typed
//! errors of each operation.
//!
//! The trait is async through return-position `impl Future + Send`, so callers on a
//! multi-threaded runtime can hold its futures across tasks without boxing. Its contract
//! (what a conforming backend must do) is spelled out on each method and checked by the
//! suite in [`crate::contract`] (feature `contract`).

use std::future::Future;
use std::sync::Arc;

use thiserror::Error;

use crate::types::{
    AppendResult, Direction, EventId, ExpectedRevision, Position, ProposedEvent, ReadFrom, RecordedEvent, StreamFrom,
    StreamName,
};

fn describe_revision(current: &Option<u64>) -> String {
    match current {
        Some(revision) => format!("revision {revision}"),
        None => "no stream".to_owned(),
    }
}

/// Why an append was refused. Nothing of a refused append is stored.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The stream's last revision is not what the writer expected.
    #[error("append to stream {stream} expected {expected} but found {}", describe_revision(current))]
    WrongExpectedRevision {
        /// The stream appended to.
        stream: StreamName,
        /// What the writer expected.
        expected: ExpectedRevision,
        /// The stream's last revision, `None` when it does not exist.
        current: Option<u64>,
    },
    /// An event id of the append is already stored, but not as this same append (same
    /// stream, same order, at the revisions the append would have produced).
    #[error("event id {id} is already stored in stream {stream} at revision {revision}")]
    DuplicateEventIdElsewhere {
        /// The id found stored.
        id: EventId,
        /// The stream it is stored in.
        stream: StreamName,
        /// The revision it is stored at.
        revision: u64,
    },
    /// The same id appears twice in one append.
    #[error("event id {id} appears twice in one append to stream {stream}")]
    DuplicateEventIdInAppend {
        /// The repeated id.
        id: EventId,
        /// The stream appended to.
        stream: StreamName,
    },
    /// The append holds no events.
    #[error("append to stream {stream} holds no events")]
    EmptyAppend {
        /// The stream appended to.
        stream: StreamName,
    },
    /// An event is larger than the backend stores.
    #[error("event {id} encodes to {len} bytes, more than the {max} allowed")]
    EventTooLarge {
        /// The event's id.
        id: EventId,
        /// Its encoded length.
        len: u64,
        /// The backend's limit.
        max: u64,
    },
    /// The events of one append together encode to more than the backend stores in one
    /// append.
    #[error("append to stream {stream} encodes to {len} bytes, more than the {max} allowed")]
    AppendTooLarge {
        /// The stream appended to.
        stream: StreamName,
        /// The append's encoded length.
        len: u64,
        /// The backend's limit.
        max: u64,
    },
    /// The store refuses writes since an earlier write or sync failed; it must be
    /// reopened, which recovers from what actually reached the disk.
    #[error("the store refuses writes after an earlier failed write or sync; reopen it")]
    PreviousIo,
    /// A write or sync failed while storing this append; the store now refuses writes.
    #[error("i/o error while appending to stream {stream}: {source}")]
    Io {
        /// The stream appended to.
        stream: StreamName,
        /// The failure, shared by every append of the failed group commit.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

/// Why a read failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Stored bytes failed their checksum or could not be decoded.
    #[error("stored data is corrupt at {location}: {detail}")]
    Corrupt {
        /// Where: a file and offset for the embedded backend.
        location: String,
        /// What was wrong.
        detail: String,
    },
    /// Reading failed.
    #[error("i/o error while reading: {0}")]
    Io(#[from] std::io::Error),
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

/// Why a subscription stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// The store was closed and every event up to its head has been delivered.
    #[error("the store is closed")]
    Closed,
    /// Reading the next events failed.
    #[error("subscription read failed: {0}")]
    Read(#[from] ReadError),
}

/// Why closing a store failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CloseError {
    /// The writer stopped abnormally (it panicked).
    #[error("the store's writer stopped abnormally")]
    WriterFailed,
}

/// An event store: streams of events with optimistic concurrency, one global log, and
/// subscriptions to it.
pub trait EventStore: Send + Sync {
    /// A live subscription to the global log.
    type Subscription: Subscription + 'static;

    /// Appends `events` to `stream` if its last revision meets `expected`; returns the
    /// revision and position of the last event appended. All events of one append are
    /// stored together or not at all, and nothing is acknowledged before it is durable.
    ///
    /// Idempotency: when the events' ids are already stored in `stream`, in the same
    /// order, at the revisions this append would have produced (right after the expected
    /// revision, for `Exact`), the call returns the original result and writes nothing.
    /// When any of the ids is stored anywhere else, it fails with
    /// [`AppendError::DuplicateEventIdElsewhere`].
    fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> impl Future<Output = Result<AppendResult, AppendError>> + Send;

    /// Reads at most `limit` events of `stream` from `from` (inclusive) in `direction`.
    /// A stream that does not exist reads as empty.
    fn read_stream(
        &self,
        stream: &StreamName,
        direction: Direction,
        from: StreamFrom,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, ReadError>> + Send;

    /// Reads at most `limit` events of the global log from `from`, in position order.
    fn read_all(
        &self,
        from: ReadFrom,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, ReadError>> + Send;

    /// Subscribes to the global log from `from`: the subscription catches up from storage,
    /// then follows new events, in order, without gap or duplicate. It is pull-based: the
    /// store buffers nothing for a consumer that does not pull.
    fn subscribe_all(&self, from: ReadFrom) -> impl Future<Output = Result<Self::Subscription, ReadError>> + Send;

    /// The position of the last event of the log, `None` when the log is empty.
    fn head(&self) -> impl Future<Output = Result<Option<Position>, ReadError>> + Send;

    /// Stops accepting appends, lets the appends already accepted finish, and ends
    /// subscriptions once they have delivered everything up to the head.
    fn close(&self) -> impl Future<Output = Result<(), CloseError>> + Send;

    /// Why the store refuses every write until it is reopened, watched: `None` while it takes
    /// writes, the reason from the moment a write or sync failed ([`AppendError::Io`], then
    /// [`AppendError::PreviousIo`] for every later append). It never turns back to `None`:
    /// only reopening the store recovers, from what actually reached the disk. A backend
    /// that never refuses writes this way keeps this default, which stays `None` and whose
    /// sender is gone (`changed` fails at once; `wait_for` fails rather than wait forever).
    fn write_refusal(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        tokio::sync::watch::channel(None).1
    }
}

/// A subscription to the global log, created by [`EventStore::subscribe_all`].
///
/// Both methods are cancel-safe: a caller may drop the future while it waits (under a
/// timeout, say) and call again, and no event is lost or delivered twice.
pub trait Subscription: Send {
    /// The next event, waiting for one to be appended if the subscription is caught up.
    fn next(&mut self) -> impl Future<Output = Result<RecordedEvent, SubscriptionError>> + Send;

    /// At least one and at most `max` next events, waiting as [`Subscription::next`] does.
    fn next_batch(&mut self, max: usize) -> impl Future<Output = Result<Vec<RecordedEvent>, SubscriptionError>> + Send;
}
