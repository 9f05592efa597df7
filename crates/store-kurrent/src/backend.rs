//! What a store and its subscriptions share, and every call they make to the server:
//! the connection, reads of streams and of `$all` (with retries, decoded, filtered to the
//! store's namespace), the head, and the append with its reads of the stream's tail.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use chrono::Utc;
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, ReadAllOptions, ReadStreamOptions, ResolvedEvent, StreamPosition,
    SubscribeToAllOptions, WriteResult,
};
use tokio::sync::{RwLock, watch};
use tousu_store::{AppendError, AppendResult, ExpectedRevision, Position, ProposedEvent, RecordedEvent, StreamName};

use crate::envelope::{self, RawEvent};
use crate::error::{Failure, append_error, client_gave_up, current_revision, is_transient};
use crate::namespace::Namespace;
use crate::plan::{self, Plan, Stored, Tail};
use crate::position::{StartAfter, from_kurrent};
use crate::retry::RetryPolicy;

/// How many events of `$all` a search for the head reads at a time.
const HEAD_PAGE: usize = 32;

/// Up to where subscriptions deliver once the store is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrainLimit {
    /// The head when the store closed (`None`: the log was empty).
    Head(Option<Position>),
    /// The head could not be read when closing: whatever the log holds.
    WholeLog,
}

/// The outcome of one attempt at an append.
enum Attempt {
    /// Written now, or found written before.
    Done(AppendResult),
    /// Refused for good.
    Refused(AppendError),
    /// The stream changed between reading its tail and writing (or KurrentDB answered for
    /// another write): decide again.
    Raced {
        /// The stream's revision as the server last reported it.
        current: Option<u64>,
    },
}

/// The event a resolved event is about: the link itself when it is one (links are not
/// resolved, and their `$>` type keeps them out).
pub fn original(resolved: &ResolvedEvent) -> Option<&kurrentdb::RecordedEvent> {
    resolved.link.as_ref().or(resolved.event.as_ref())
}

/// The client, and which one it is. The `kurrentdb` client stops for good once it fails
/// to (re)connect (when its discovery attempts run out, or the new leader it was sent to
/// does not answer) and then answers every call with `ConnectionClosed`; the connection
/// replaces such a client with a new one, which starts discovery afresh.
pub struct Connection {
    settings: ClientSettings,
    current: Mutex<(u64, Client)>,
}

impl Connection {
    /// A connection with a client for `settings` (the client connects on first use).
    pub fn new(settings: ClientSettings) -> Result<Self, String> {
        let client = Client::new(settings.clone()).map_err(|error| error.to_string())?;
        Ok(Self { settings, current: Mutex::new((0, client)) })
    }

    /// The current client and its generation.
    pub fn client(&self) -> (u64, Client) {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the client of `generation` if `error` says it gave up and nobody has
    /// replaced it yet.
    pub fn renew_after(&self, generation: u64, error: &kurrentdb::Error) {
        if !client_gave_up(error) {
            return;
        }
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.0 != generation {
            return;
        }
        match Client::new(self.settings.clone()) {
            Ok(client) => {
                tracing::info!(
                    generation = generation + 1,
                    "kurrentdb: the client gave up connecting; starting a new one"
                );
                *current = (generation + 1, client);
            }
            Err(error) => tracing::error!(%error, "kurrentdb: a new client could not be created"),
        }
    }
}

/// The state of one store, shared with its subscriptions.
pub struct Inner {
    pub connection: Connection,
    pub namespace: Namespace,
    pub idempotency_window: usize,
    pub retry: RetryPolicy,
    /// Held for reading by every append in flight, for writing by `close`.
    pub appends: RwLock<()>,
    pub closed: AtomicBool,
    /// Set once, by `close`.
    pub drain_limit: watch::Sender<Option<DrainLimit>>,
}

impl Inner {
    /// Runs `operation` with the current client, again (with a new client if the old one
    /// gave up) after a backoff while it fails transiently and the retry policy allows.
    async fn retrying<T, F, Fut>(&self, what: &'static str, mut operation: F) -> Result<T, kurrentdb::Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, kurrentdb::Error>>,
    {
        let mut failed = 0;
        loop {
            let (generation, client) = self.connection.client();
            match operation(client).await {
                Err(error) if is_transient(&error) && self.retry.allows_retry_after(failed) => {
                    self.connection.renew_after(generation, &error);
                    let pause = self.retry.backoff(failed);
                    tracing::warn!(%error, attempt = failed + 1, ?pause, "kurrentdb: {what} failed; retrying");
                    tokio::time::sleep(pause).await;
                    failed += 1;
                }
                result => return result,
            }
        }
    }

    /// The tousu event a KurrentDB event of this store holds.
    pub fn decode(&self, event: &kurrentdb::RecordedEvent) -> Result<RecordedEvent, Failure> {
        let raw = RawEvent::of(event);
        envelope::decode(&raw, &self.namespace)
            .map_err(|error| Failure::Corrupt { location: raw.location(), detail: error.to_string() })
    }

    /// Every event of one read of a KurrentDB stream; a stream that does not exist reads
    /// as empty, a deleted one as damage (tousu never deletes).
    pub async fn collect_stream(
        &self,
        kurrent_stream: &str,
        options: &ReadStreamOptions,
    ) -> Result<Vec<ResolvedEvent>, Failure> {
        let read = self
            .retrying("reading a stream", |client| async move {
                let mut read = match client.read_stream(kurrent_stream, options).await {
                    Ok(read) => read,
                    Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
                    Err(error) => return Err(error),
                };
                let mut events = Vec::new();
                loop {
                    match read.next().await {
                        Ok(Some(event)) => events.push(event),
                        Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(events),
                        Err(error) => return Err(error),
                    }
                }
            })
            .await;
        match read {
            Err(kurrentdb::Error::ResourceDeleted) => Err(Failure::Corrupt {
                location: format!("kurrentdb stream {kurrent_stream}"),
                detail: "the stream was deleted in kurrentdb".to_owned(),
            }),
            other => other.map_err(Failure::Backend),
        }
    }

    /// Every event of one read of `$all`.
    async fn collect_all(&self, options: &ReadAllOptions) -> Result<Vec<ResolvedEvent>, Failure> {
        self.retrying("reading $all", |client| async move {
            let mut read = client.read_all(options).await?;
            let mut events = Vec::new();
            while let Some(event) = read.next().await? {
                events.push(event);
            }
            Ok(events)
        })
        .await
        .map_err(Failure::Backend)
    }

    /// Reads one stream's events of this store, decoded.
    pub async fn read_stream(
        &self,
        stream: &StreamName,
        options: &ReadStreamOptions,
    ) -> Result<Vec<RecordedEvent>, Failure> {
        let kurrent_stream = self.namespace.kurrent_stream(stream);
        let events = self.collect_stream(&kurrent_stream, options).await?;
        events
            .iter()
            .filter_map(original)
            .filter(|event| self.namespace.admits(event.stream_id(), &event.event_type))
            .map(|event| self.decode(event))
            .collect()
    }

    /// Up to `limit` of this store's events of `$all` after `start`, in log order. It
    /// returns fewer only at the end of the log, and none only when the server has
    /// nothing after `start`.
    pub async fn read_log(&self, start: StartAfter, limit: usize) -> Result<Vec<RecordedEvent>, Failure> {
        let mut events = Vec::new();
        let mut start = start;
        while events.len() < limit {
            let wanted = limit - events.len();
            // The server's start is inclusive: one more makes up for the event at it.
            let count = wanted.saturating_add(usize::from(start.0.is_some()));
            let options = ReadAllOptions::default()
                .position(start.stream_position())
                .forwards()
                .filter(self.namespace.server_filter())
                .max_count(count);
            let page = self.collect_all(&options).await?;
            let mut last_seen = None;
            for event in page.iter().filter_map(original) {
                if !start.admits(event.position) {
                    continue;
                }
                last_seen = Some(event.position);
                if self.namespace.admits(event.stream_id(), &event.event_type) {
                    events.push(self.decode(event)?);
                    if events.len() == limit {
                        break;
                    }
                }
            }
            let Some(last_seen) = last_seen else { break };
            start = StartAfter(Some(last_seen));
            // A short page ends the log as far as the server knew; a page whose events
            // were all someone else's leads to the next one.
            if page.len() < count && !events.is_empty() {
                break;
            }
        }
        Ok(events)
    }

    /// The position of this store's last event in `$all`.
    pub async fn head(&self) -> Result<Option<Position>, Failure> {
        let mut before: Option<kurrentdb::Position> = None;
        loop {
            let position = before.map_or(StreamPosition::End, StreamPosition::Position);
            let options = ReadAllOptions::default()
                .position(position)
                .backwards()
                .filter(self.namespace.server_filter())
                .max_count(HEAD_PAGE);
            let page = self.collect_all(&options).await?;
            let mut earliest = None;
            for event in page.iter().filter_map(original) {
                if before.is_some_and(|before| event.position >= before) {
                    continue;
                }
                earliest = Some(event.position);
                if self.namespace.admits(event.stream_id(), &event.event_type) {
                    let raw = RawEvent::of(event);
                    return from_kurrent(event.position)
                        .map(Some)
                        .map_err(|error| Failure::Corrupt { location: raw.location(), detail: error.to_string() });
                }
            }
            match earliest {
                Some(position) => before = Some(position),
                None => return Ok(None),
            }
        }
    }

    /// How a subscription of this store opens, after `start`.
    pub fn subscribe_options(&self, start: StartAfter) -> SubscribeToAllOptions {
        SubscribeToAllOptions::default().position(start.stream_position()).filter(self.namespace.server_filter())
    }

    /// Appends `events` to `stream` under `expected`: validate, then plan and write until
    /// an attempt is decided, retrying transient failures and races as the policy allows.
    pub async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedRevision,
        events: Vec<ProposedEvent>,
    ) -> Result<AppendResult, AppendError> {
        plan::validate(stream, &events)?;
        let _accepted = self.appends.read().await;
        if self.closed.load(Ordering::SeqCst) {
            return Err(AppendError::Closed);
        }
        let kurrent_stream = self.namespace.kurrent_stream(stream);
        let mut failed = 0;
        let mut raced = 0;
        loop {
            let (generation, client) = self.connection.client();
            match self.append_once(&client, stream, &kurrent_stream, expected, &events).await {
                Ok(Attempt::Done(result)) => return Ok(result),
                Ok(Attempt::Refused(error)) => return Err(error),
                Ok(Attempt::Raced { current }) => {
                    if !self.retry.allows_retry_after(raced) {
                        return Err(AppendError::WrongExpectedRevision { stream: stream.clone(), expected, current });
                    }
                    tracing::debug!(stream = stream.as_str(), %expected, "kurrentdb: the stream moved while appending; deciding again");
                    raced += 1;
                }
                Err(Failure::Backend(error)) if is_transient(&error) && self.retry.allows_retry_after(failed) => {
                    self.connection.renew_after(generation, &error);
                    let pause = self.retry.backoff(failed);
                    tracing::warn!(stream = stream.as_str(), %error, ?pause, "kurrentdb: append failed; retrying");
                    tokio::time::sleep(pause).await;
                    failed += 1;
                }
                Err(failure) => return Err(append_error(stream, &events, failure)),
            }
        }
    }

    /// Reads what the plan needs of the stream: its last `idempotency_window` events (at
    /// least the append's length), and the place of a repeat when it lies before them.
    async fn read_tail(
        &self,
        kurrent_stream: &str,
        expected: ExpectedRevision,
        append_len: usize,
    ) -> Result<Tail, Failure> {
        let window = self.idempotency_window.max(append_len).max(1);
        let options = ReadStreamOptions::default()
            .position(StreamPosition::End)
            .backwards()
            .max_count(window)
            .requires_leader(true);
        let mut tail = Tail::default();
        for resolved in self.collect_stream(kurrent_stream, &options).await? {
            let Some(event) = original(&resolved) else { continue };
            if !self.namespace.admits(event.stream_id(), &event.event_type) {
                continue;
            }
            let recorded = self.decode(event)?;
            tail.last.get_or_insert((recorded.revision, recorded.hash));
            tail.window_start = Some(recorded.revision);
            tail.known.insert(recorded.event.id, Stored { revision: recorded.revision, position: recorded.position });
        }
        if let Some(place) = tail.unread_repeat_place(expected) {
            let options = ReadStreamOptions::default()
                .position(StreamPosition::Position(place))
                .forwards()
                .max_count(append_len)
                .requires_leader(true);
            for resolved in self.collect_stream(kurrent_stream, &options).await? {
                let Some(event) = original(&resolved) else { continue };
                if self.namespace.admits(event.stream_id(), &event.event_type) {
                    let recorded = self.decode(event)?;
                    tail.known
                        .insert(recorded.event.id, Stored { revision: recorded.revision, position: recorded.position });
                }
            }
        }
        Ok(tail)
    }

    /// One attempt: read the tail, plan, and write with `client`.
    async fn append_once(
        &self,
        client: &Client,
        stream: &StreamName,
        kurrent_stream: &str,
        expected: ExpectedRevision,
        events: &[ProposedEvent],
    ) -> Result<Attempt, Failure> {
        let tail = self.read_tail(kurrent_stream, expected, events.len()).await?;
        let (first_revision, mut prev_hash, state) = match plan::plan(stream, expected, events, &tail) {
            Plan::Repeat(result) => return Ok(Attempt::Done(result)),
            Plan::Refuse(error) => return Ok(Attempt::Refused(error)),
            Plan::Write { first_revision, prev_hash, state } => (first_revision, prev_hash, state),
        };
        let recorded_at = Utc::now();
        let mut data = Vec::with_capacity(events.len());
        for (offset, event) in (0u64..).zip(events) {
            let encoded = match envelope::encode(stream, first_revision + offset, recorded_at, &prev_hash, event) {
                Ok(encoded) => encoded,
                Err(tousu_store::hash::EncodeError::FieldTooLong { len, .. }) => {
                    return Ok(Attempt::Refused(AppendError::EventTooLarge {
                        id: event.id,
                        len: len as u64,
                        max: u64::from(u32::MAX),
                    }));
                }
                Err(other) => {
                    return Err(Failure::Corrupt {
                        location: format!("event {}", event.id),
                        detail: other.to_string(),
                    });
                }
            };
            prev_hash = encoded.hash;
            data.push(encoded.into_event_data());
        }
        let options = AppendToStreamOptions::default().stream_state(state);
        match client.append_to_stream(kurrent_stream, &options, data).await {
            Ok(written) => self.confirm(kurrent_stream, events, first_revision, written).await,
            Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
                Ok(Attempt::Raced { current: current_revision(current) })
            }
            Err(error) => Err(Failure::Backend(error)),
        }
    }

    /// The result of an append KurrentDB acknowledged. A single event's position is the
    /// one KurrentDB answers with; for several, its answer is the commit's, not the last
    /// event's, so the last event is read back.
    async fn confirm(
        &self,
        kurrent_stream: &str,
        events: &[ProposedEvent],
        first_revision: u64,
        written: WriteResult,
    ) -> Result<Attempt, Failure> {
        let last_revision = first_revision + events.len() as u64 - 1;
        if written.next_expected_version != last_revision {
            // KurrentDB's own idempotency answered for another write of these ids.
            return Ok(Attempt::Raced { current: Some(written.next_expected_version) });
        }
        if events.len() == 1
            && written.position.commit > 0
            && let Ok(position) = from_kurrent(written.position)
        {
            return Ok(Attempt::Done(AppendResult { revision: last_revision, position }));
        }
        let options = ReadStreamOptions::default()
            .position(StreamPosition::Position(last_revision))
            .forwards()
            .max_count(1)
            .requires_leader(true);
        let stored = self.collect_stream(kurrent_stream, &options).await?;
        let last_id = events.last().map(|event| event.id.0);
        match stored.iter().filter_map(original).next() {
            Some(event) if Some(event.id) == last_id => {
                let position = from_kurrent(event.position).map_err(|error| Failure::Corrupt {
                    location: RawEvent::of(event).location(),
                    detail: error.to_string(),
                })?;
                Ok(Attempt::Done(AppendResult { revision: last_revision, position }))
            }
            _ => Ok(Attempt::Raced { current: Some(written.next_expected_version) }),
        }
    }
}
