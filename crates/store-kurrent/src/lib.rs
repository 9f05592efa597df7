//! The KurrentDB backend of tousu's event store: [`KurrentStore`] implements
//! [`tousu_store::EventStore`] over the official `kurrentdb` gRPC client, so that a
//! province outgrowing one machine runs tousu on a KurrentDB node or cluster.
//!
//! Appends read the stream's tail, decide with the same rules as the embedded store
//! (`plan`), compute the hash chain with `tousu_store::hash`, and write under the exact
//! stream state they read, so a concurrent writer makes the write fail and the chain stays
//! linear. The envelope fields KurrentDB does not hold go in each event's custom metadata
//! (`envelope`). The global log is `$all`, filtered on the server and again here to the
//! store's streams (`namespace`); positions are KurrentDB's commit positions (`position`).
//! Transient failures (a node lost, a leader election) are retried with backoff (`retry`),
//! and subscriptions resume after the last event received (`subscription`). The client's
//! errors are classified and mapped in `error`; the calls to the server are in `backend`.
//!
//! `docs/kurrentdb.md` describes the mapping, where idempotency differs from the trait,
//! and how to run the contract suite against a server.

mod backend;
mod envelope;
mod error;
mod namespace;
mod plan;
mod position;
mod retry;
mod subscription;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kurrentdb::{ClientSettings, ReadStreamOptions, StreamPosition};
use thiserror::Error;
use tokio::sync::{RwLock, watch};
use tousu_store::{
    AppendError, AppendResult, CloseError, Direction, EventStore, ExpectedRevision, Position, ProposedEvent, ReadError,
    ReadFrom, RecordedEvent, StreamFrom, StreamName,
};

use crate::backend::{Connection, DrainLimit, Inner};
use crate::namespace::Namespace;
pub use crate::namespace::{MAX_STREAM_PREFIX_LEN, StreamPrefixError};
use crate::position::StartAfter;
pub use crate::retry::RetryPolicy;
pub use crate::subscription::KurrentSubscription;

/// The highest revision a KurrentDB stream can have.
const MAX_REVISION: u64 = i64::MAX as u64;

/// The default number of a stream's last events an append reads: see
/// [`KurrentOptions::idempotency_window`].
pub const DEFAULT_IDEMPOTENCY_WINDOW: usize = 100;

/// How a [`KurrentStore`] works, beyond what its connection string says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KurrentOptions {
    /// Put before every tousu stream name in KurrentDB, so that several installations (or
    /// test runs) share one database; the store's `$all` is then only the streams with
    /// this prefix. Empty by default: streams keep their tousu names, and the database
    /// should hold nothing but tousu's streams (anything else in `$all` reads as damage).
    pub stream_prefix: String,
    /// How many of a stream's last events an append reads to recognise a repeated append
    /// under `Any` or `StreamExists` and ids stored elsewhere in the stream (a repeat
    /// under `Exact` or `NoStream` is found wherever it is). At least the append's length
    /// is read, since the last event also gives the chain its previous hash.
    pub idempotency_window: usize,
    /// Retries of operations that fail for a transient reason.
    pub retry: RetryPolicy,
}

impl Default for KurrentOptions {
    fn default() -> Self {
        Self {
            stream_prefix: String::new(),
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            retry: RetryPolicy::default(),
        }
    }
}

/// Why a store could not be connected.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The connection string is not a KurrentDB connection string.
    #[error("{url} is not a kurrentdb connection string: {detail}")]
    BadConnectionString {
        /// The connection string, its password hidden.
        url: String,
        /// What the client's parser said.
        detail: String,
    },
    /// The stream prefix of the options cannot start stream names.
    #[error(transparent)]
    BadStreamPrefix(#[from] StreamPrefixError),
    /// The client could not be created.
    #[error("the kurrentdb client for {url} could not be created: {detail}")]
    Client {
        /// The connection string, its password hidden.
        url: String,
        /// What the client said.
        detail: String,
    },
    /// The first read of `$all` failed: the server does not answer, or does not let this
    /// user read `$all`.
    #[error("kurrentdb at {url} failed the first read of $all: {source}")]
    FirstRead {
        /// The connection string, its password hidden.
        url: String,
        /// Why.
        #[source]
        source: ReadError,
    },
}

/// A connection string with the password of its user hidden.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{}", &rest[at + 1..])
        }
        None => url.to_owned(),
    }
}

/// tousu's event store on KurrentDB. Cloning shares the connection and the state.
#[derive(Clone)]
pub struct KurrentStore {
    inner: Arc<Inner>,
}

impl KurrentStore {
    /// Connects to the KurrentDB named by a connection string (`esdb://`, `kurrentdb://`,
    /// with `+discover` for DNS discovery of a cluster, e.g.
    /// `kurrentdb://admin:changeit@localhost:2113?tls=false`), with default options.
    pub async fn connect(url: &str) -> Result<Self, ConnectError> {
        Self::connect_with(url, KurrentOptions::default()).await
    }

    /// Connects with `options`, and reads the head of the log once, so that a server that
    /// does not answer, or a user who may not read `$all`, is found out here.
    pub async fn connect_with(url: &str, options: KurrentOptions) -> Result<Self, ConnectError> {
        let namespace = Namespace::new(options.stream_prefix)?;
        let shown = redacted(url);
        let settings: ClientSettings = url.parse().map_err(|error: kurrentdb::ClientSettingsParseError| {
            ConnectError::BadConnectionString { url: shown.clone(), detail: error.to_string().replace(url, &shown) }
        })?;
        let connection = Connection::new(settings)
            .map_err(|detail| ConnectError::Client { url: shown.clone(), detail: detail.replace(url, &shown) })?;
        let (drain_limit, _) = watch::channel(None);
        let store = Self {
            inner: Arc::new(Inner {
                connection,
                namespace,
                idempotency_window: options.idempotency_window,
                retry: options.retry,
                appends: RwLock::new(()),
                closed: AtomicBool::new(false),
                drain_limit,
            }),
        };
        store.head().await.map_err(|source| ConnectError::FirstRead { url: shown, source })?;
        Ok(store)
    }

    /// The prefix of the store's streams in KurrentDB.
    pub fn stream_prefix(&self) -> &str {
        self.inner.namespace.prefix()
    }
}

impl EventStore for KurrentStore {
    type Subscription = KurrentSubscription;

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult, AppendError> {
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        direction: Direction,
        from: StreamFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, ReadError> {
        let position = match (direction, from) {
            _ if limit == 0 => return Ok(Vec::new()),
            // The last event is where a forward read ends, exclusive.
            (Direction::Forwards, StreamFrom::End) => return Ok(Vec::new()),
            (Direction::Backwards, StreamFrom::End) => StreamPosition::End,
            (_, StreamFrom::Start) => StreamPosition::Position(0),
            // KurrentDB's revisions are signed 64-bit numbers on the server, so none lies
            // beyond i64::MAX (and such a number would be taken for a special one).
            (Direction::Forwards, StreamFrom::Revision(revision)) if revision > MAX_REVISION => return Ok(Vec::new()),
            (Direction::Backwards, StreamFrom::Revision(revision)) if revision > MAX_REVISION => StreamPosition::End,
            (_, StreamFrom::Revision(revision)) => StreamPosition::Position(revision),
        };
        let options = ReadStreamOptions::default().position(position).max_count(limit);
        let options = match direction {
            Direction::Forwards => options.forwards(),
            Direction::Backwards => options.backwards(),
        };
        Ok(self.inner.read_stream(stream, &options).await?)
    }

    async fn read_all(&self, from: ReadFrom, limit: usize) -> Result<Vec<RecordedEvent>, ReadError> {
        Ok(self.inner.read_log(StartAfter::from_read_from(from), limit).await?)
    }

    async fn subscribe_all(&self, from: ReadFrom) -> Result<KurrentSubscription, ReadError> {
        Ok(KurrentSubscription::new(Arc::clone(&self.inner), StartAfter::from_read_from(from)))
    }

    async fn head(&self) -> Result<Option<Position>, ReadError> {
        Ok(self.inner.head().await?)
    }

    /// Refuses further appends, waits for those already accepted, and reads the head, up
    /// to which subscriptions deliver before they end. The connection stays open for
    /// reads, as the embedded store's reads go on after closing.
    async fn close(&self) -> Result<(), CloseError> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        drop(self.inner.appends.write().await);
        let limit = match self.inner.head().await {
            Ok(head) => DrainLimit::Head(head),
            Err(failure) => {
                tracing::warn!(
                    ?failure,
                    "kurrentdb: the head could not be read while closing; subscriptions read to the end"
                );
                DrainLimit::WholeLog
            }
        };
        self.inner.drain_limit.send_replace(Some(limit));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_are_shown_without_their_password() {
        assert_eq!(
            redacted("esdb://admin:changeit@localhost:2113?tls=false"),
            "esdb://admin:***@localhost:2113?tls=false"
        );
        assert_eq!(
            redacted("kurrentdb+discover://ops:s3cr@t@cluster.example:2113/?tlsCAFile=/a@b"),
            "kurrentdb+discover://ops:***@cluster.example:2113/?tlsCAFile=/a@b"
        );
        assert_eq!(redacted("esdb://localhost:2113?tls=false"), "esdb://localhost:2113?tls=false");
        assert_eq!(redacted("not a url"), "not a url");
    }

    #[tokio::test]
    async fn bad_connection_strings_and_prefixes_are_refused_before_connecting() {
        let error = KurrentStore::connect("postgres://admin:changeit@localhost:5432").await.err().unwrap();
        match &error {
            ConnectError::BadConnectionString { url, detail } => {
                assert_eq!(url, "postgres://admin:***@localhost:5432");
                assert!(!detail.contains("changeit"), "{detail}");
            }
            other => panic!("unexpected {other}"),
        }
        assert!(!error.to_string().contains("changeit"), "{error}");
        let options = KurrentOptions { stream_prefix: "$mine-".into(), ..KurrentOptions::default() };
        let error = KurrentStore::connect_with("esdb://localhost:2113?tls=false", options).await.err().unwrap();
        assert!(matches!(error, ConnectError::BadStreamPrefix(StreamPrefixError::SystemPrefix { .. })), "{error}");
    }
}
