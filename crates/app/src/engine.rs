//! Command execution over any event store: load a stream's state, decide, append with the
//! expected revision, retry a bounded number of times on a conflict, and recognise a repeated
//! request so it is answered with the first result and writes nothing.
//!
//! States are cached per stream, and commands on one stream are serialised within this
//! process by the stream's lock, so a conflict only arises when another process writes the
//! same stream. A repeated request is recognised by its correlation id, which every event a
//! command writes carries: the cache remembers the correlation ids of the stream's events,
//! and a cold load rebuilds them from the stored events, so a repeat is recognised after a
//! restart too. A repeat is answered with the first result only when it carries the first
//! request's causation id, which for a client's request is the fingerprint of what it asked
//! (`ids::request_fingerprint`): the same request id with other content is refused, never
//! silently answered as if it had been carried out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use tokio::sync::Mutex as AsyncMutex;
use tousu_domain::actor::Actor;
use tousu_domain::calendar::Calendar;
use tousu_domain::identity::IdentitySecret;
use tousu_domain::policy::Policy;
use tousu_domain::taxonomy::Taxonomy;
use tousu_domain::{Aggregate, Context};
use tousu_store::{
    Actor as StoreActor, AppendError, Direction, EventId, EventStore, ExpectedRevision, ProposedEvent, RecordedEvent,
    StreamFrom, StreamName,
};

use crate::calendar::CalendarCell;
use crate::error::AppError;
use crate::ids::{Fingerprint, event_id};

/// Attempts at a command before a conflict is reported as `Aborted`.
pub const MAX_ATTEMPTS: u32 = 5;

/// Events read per batch when loading a stream.
const LOAD_BATCH: usize = 1024;

/// The schema version of every payload type today. Raise it for a type whose payload
/// changes incompatibly, and teach the reader the old one.
pub const SCHEMA_VERSION: u16 = 1;

/// What a decision may consult besides the state: calendar, policy, taxonomy and the
/// identity secret, loaded and validated at start. The calendar may gain official years while
/// the node runs (interpretation 21).
#[derive(Debug)]
pub struct DomainSetup {
    /// The working-day calendar in force.
    pub calendar: CalendarCell,
    /// The policy.
    pub policy: Policy,
    /// The category taxonomy.
    pub taxonomy: Taxonomy,
    /// The key of complainant identity hashes.
    pub identity_secret: IdentitySecret,
}

impl DomainSetup {
    /// What a node decides with: `calendar` goes into a [`CalendarCell`].
    pub fn new(calendar: Calendar, policy: Policy, taxonomy: Taxonomy, identity_secret: IdentitySecret) -> Self {
        DomainSetup { calendar: CalendarCell::new(calendar), policy, taxonomy, identity_secret }
    }

    /// The decision context for an actor at an instant, with `calendar` (the one in force
    /// when the decision started, [`CalendarCell::current`]).
    pub fn context<'a>(&'a self, actor: &'a Actor, now: DateTime<FixedOffset>, calendar: &'a Calendar) -> Context<'a> {
        Context {
            now,
            actor,
            calendar,
            policy: &self.policy,
            taxonomy: &self.taxonomy,
            identity_secret: &self.identity_secret,
        }
    }
}

/// What a command wrote, or, for a repeated request, what it wrote the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The stream.
    pub stream: String,
    /// Revision of the last event written.
    pub revision: u64,
    /// Global position of the last event written.
    pub position: u64,
    /// Types of the events written, in order.
    pub event_types: Vec<String>,
    /// Whether this answers a repeated request; nothing was written this time.
    pub replayed: bool,
}

/// A command's result with the events it wrote (none for a repeated request).
#[derive(Debug, Clone)]
pub struct Outcome<E> {
    /// What was written.
    pub written: Written,
    /// The events written, for the reactions that follow them.
    pub events: Vec<E>,
}

/// What the events a command writes carry as their causation id.
#[derive(Debug, Clone, Copy)]
pub enum Causation<'a> {
    /// A client's request: the fingerprint of what it asked for.
    Request(&'a Fingerprint<'a>),
    /// tousu's own command: the event, or the correlation, that caused it.
    Event(EventId),
}

impl Causation<'_> {
    /// The causation id the events carry.
    fn id(&self) -> EventId {
        match self {
            Causation::Request(fingerprint) => fingerprint.id,
            Causation::Event(id) => *id,
        }
    }

    /// Whether `stored`, the causation of a request's stored events, is this one: for a
    /// client's request, in the fingerprint's current version or, for events written before
    /// it, in its first version (computed only here, when a request id comes again).
    fn matches(&self, stored: EventId) -> bool {
        match self {
            Causation::Request(fingerprint) => fingerprint.id == stored || fingerprint.legacy() == stored,
            Causation::Event(id) => *id == stored,
        }
    }
}

impl From<EventId> for Causation<'_> {
    fn from(id: EventId) -> Self {
        Causation::Event(id)
    }
}

/// A request that wrote to a stream: what it wrote, and the causation id its events carry
/// (for a client's request, the fingerprint of what it asked for).
#[derive(Debug)]
struct Request {
    written: Written,
    causation: EventId,
}

/// A stream's state as loaded: the fold of its events, its last revision and the
/// correlation ids of the requests that wrote it.
#[derive(Debug)]
pub struct Loaded<A> {
    /// The fold of the stream's events.
    pub state: A,
    /// The last revision, `None` for a stream with no events.
    pub revision: Option<u64>,
    requests: HashMap<EventId, Request>,
    /// The payload bytes folded into the state: how much the cache holds for this stream,
    /// roughly (the state keeps most of what the events say).
    bytes: usize,
}

impl<A: Aggregate> Loaded<A> {
    fn empty() -> Self {
        Loaded { state: A::default(), revision: None, requests: HashMap::new(), bytes: 0 }
    }

    /// Whether `correlation` already wrote to the stream: its first answer when `causation`
    /// is the one it wrote with, a refusal when the same correlation (a client's request id)
    /// comes with other content. A request written before fingerprints existed carries its
    /// correlation as causation: it is answered as a repeat, as it was then.
    fn repeat_of(&self, correlation: EventId, causation: &Causation<'_>) -> Option<Result<Written, AppError>> {
        let request = self.requests.get(&correlation)?;
        if request.causation == correlation || causation.matches(request.causation) {
            Some(Ok(Written { replayed: true, ..request.written.clone() }))
        } else {
            Some(Err(AppError::RequestIdReused { request_id: correlation.to_string() }))
        }
    }

    /// Folds stored events into the state.
    fn apply_recorded(&mut self, events: &[RecordedEvent]) -> Result<(), AppError> {
        for recorded in events {
            let event: A::Event = serde_json::from_slice(&recorded.event.payload).map_err(|error| {
                AppError::Internal(format!(
                    "event {} at {} revision {} does not decode: {error}",
                    recorded.event.id, recorded.stream, recorded.revision
                ))
            })?;
            self.state = std::mem::take(&mut self.state).evolve(&event);
            self.revision = Some(recorded.revision);
            self.bytes += recorded.event.payload.len();
            let request = self.requests.entry(recorded.event.correlation_id).or_insert_with(|| Request {
                written: Written {
                    stream: recorded.stream.as_str().to_owned(),
                    revision: recorded.revision,
                    position: recorded.position.0,
                    event_types: Vec::new(),
                    replayed: true,
                },
                causation: recorded.event.causation_id,
            });
            let written = &mut request.written;
            written.revision = recorded.revision;
            written.position = recorded.position.0;
            written.event_types.push(recorded.event.event_type.clone());
        }
        Ok(())
    }
}

/// One cached stream: its lock, and its state once loaded.
type Slot<A> = Arc<AsyncMutex<Option<Loaded<A>>>>;

/// Cached stream states of one aggregate kind, each behind its own lock, within a number of
/// streams and a budget of bytes (the payload bytes folded into the cached states, which the
/// states hold much of: leads with long contents weigh more than short ones).
pub struct StreamCache<A> {
    entries: Mutex<Entries<A>>,
    capacity: usize,
    budget_bytes: usize,
}

/// The cached streams, each with what it weighs, the order they were loaded in, and what they
/// weigh together. A stream's name is allocated once, shared by the map and the queue.
struct Entries<A> {
    slots: HashMap<Arc<str>, Cached<A>>,
    order: VecDeque<Arc<str>>,
    total_bytes: usize,
}

/// One cached stream: its slot and what its state weighs.
struct Cached<A> {
    slot: Slot<A>,
    bytes: usize,
}

impl<A> StreamCache<A> {
    /// A cache holding at most about `capacity` streams weighing at most about `budget_bytes`;
    /// the least recently loaded unused ones are dropped first.
    pub fn new(capacity: usize, budget_bytes: usize) -> Self {
        StreamCache {
            entries: Mutex::new(Entries { slots: HashMap::new(), order: VecDeque::new(), total_bytes: 0 }),
            capacity: capacity.max(1),
            budget_bytes,
        }
    }

    /// The streams cached and the bytes they weigh, for tests and status.
    pub fn usage(&self) -> (usize, usize) {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (entries.slots.len(), entries.total_bytes)
    }

    /// Records what a stream's cached state weighs now, dropping older streams if the cache
    /// is over its budget.
    fn weigh(&self, stream: &str, bytes: usize) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(cached) = entries.slots.get_mut(stream) else { return };
        let before = std::mem::replace(&mut cached.bytes, bytes);
        entries.total_bytes = entries.total_bytes - before + bytes;
        self.evict(&mut entries);
    }

    fn slot(&self, stream: &str) -> Slot<A> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cached) = entries.slots.get(stream) {
            return cached.slot.clone();
        }
        let slot = Arc::new(AsyncMutex::new(None));
        let name: Arc<str> = Arc::from(stream);
        entries.slots.insert(name.clone(), Cached { slot: slot.clone(), bytes: 0 });
        entries.order.push_back(name);
        self.evict(&mut entries);
        slot
    }

    /// Evicts the oldest entries nobody holds while the cache is over its count or its bytes;
    /// an entry in use stays and is looked at again on a later call.
    fn evict(&self, entries: &mut Entries<A>) {
        let mut scanned = 0;
        while (entries.slots.len() > self.capacity || entries.total_bytes > self.budget_bytes)
            && scanned < entries.order.len()
        {
            let Some(oldest) = entries.order.pop_front() else { break };
            match entries.slots.get(&oldest) {
                Some(candidate) if Arc::strong_count(&candidate.slot) == 1 => {
                    if let Some(evicted) = entries.slots.remove(&oldest) {
                        entries.total_bytes -= evicted.bytes;
                    }
                }
                Some(_) => {
                    entries.order.push_back(oldest);
                    scanned += 1;
                }
                None => {}
            }
        }
    }
}

/// Executes commands of every aggregate kind against one store.
pub struct Engine<S> {
    store: Arc<S>,
    domain: Arc<DomainSetup>,
}

impl<S: EventStore> Engine<S> {
    /// An engine over a store.
    pub fn new(store: Arc<S>, domain: Arc<DomainSetup>) -> Self {
        Engine { store, domain }
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The decision setup.
    pub fn domain(&self) -> &Arc<DomainSetup> {
        &self.domain
    }

    async fn read_from(&self, stream: &StreamName, from: StreamFrom) -> Result<Vec<RecordedEvent>, AppError> {
        Ok(self.store.read_stream(stream, Direction::Forwards, from, LOAD_BATCH).await?)
    }

    /// Brings a loaded state up to the stream's end.
    async fn catch_up<A: Aggregate>(&self, stream: &StreamName, loaded: &mut Loaded<A>) -> Result<(), AppError> {
        loop {
            let from = match loaded.revision {
                None => StreamFrom::Start,
                Some(revision) => StreamFrom::Revision(revision + 1),
            };
            let batch = self.read_from(stream, from).await?;
            loaded.apply_recorded(&batch)?;
            if batch.len() < LOAD_BATCH {
                return Ok(());
            }
        }
    }

    /// Reads a stream's current state through the cache, for queries.
    pub async fn state<A: Aggregate>(
        &self,
        cache: &StreamCache<A>,
        stream: &StreamName,
    ) -> Result<(A, Option<u64>), AppError> {
        let slot = cache.slot(stream.as_str());
        let mut guard = slot.lock().await;
        let loaded = guard.get_or_insert_with(Loaded::empty);
        self.catch_up(stream, loaded).await?;
        cache.weigh(stream.as_str(), loaded.bytes);
        Ok((loaded.state.clone(), loaded.revision))
    }

    /// Decides `command` on `stream` and appends the events, or answers a repeated request
    /// (same `correlation`) with the first result.
    #[allow(clippy::too_many_arguments)]
    pub async fn execute<A>(
        &self,
        cache: &StreamCache<A>,
        stream: &StreamName,
        actor: &Actor,
        correlation: EventId,
        causation: Causation<'_>,
        now: DateTime<FixedOffset>,
        command: A::Command,
    ) -> Result<Outcome<A::Event>, AppError>
    where
        A: Aggregate,
        A::Command: Clone,
    {
        let slot = cache.slot(stream.as_str());
        let mut guard = slot.lock().await;
        if guard.is_none() {
            let mut loaded = Loaded::empty();
            self.catch_up(stream, &mut loaded).await?;
            cache.weigh(stream.as_str(), loaded.bytes);
            *guard = Some(loaded);
        }
        let loaded = guard.as_mut().expect("loaded above");
        let store_actor = StoreActor {
            person: actor.person.clone(),
            body: actor.body.as_str().to_owned(),
            role: actor.role.as_str().to_owned(),
        };
        for attempt in 1..=MAX_ATTEMPTS {
            if let Some(repeat) = loaded.repeat_of(correlation, &causation) {
                return repeat.map(|written| Outcome { written, events: Vec::new() });
            }
            let calendar = self.domain.calendar.current();
            let events = loaded.state.decide(command.clone(), &self.domain.context(actor, now, &calendar))?;
            if events.is_empty() {
                return Ok(Outcome {
                    written: Written {
                        stream: stream.as_str().to_owned(),
                        revision: loaded.revision.unwrap_or(0),
                        position: 0,
                        event_types: Vec::new(),
                        replayed: false,
                    },
                    events,
                });
            }
            let proposed = propose::<A>(&events, &store_actor, correlation, causation.id())?;
            let proposed_bytes: usize = proposed.iter().map(|event| event.payload.len()).sum();
            let expected = match loaded.revision {
                None => ExpectedRevision::NoStream,
                Some(revision) => ExpectedRevision::Exact(revision),
            };
            match self.store.append(stream, expected, proposed).await {
                Ok(result) => {
                    for event in &events {
                        loaded.state = std::mem::take(&mut loaded.state).evolve(event);
                    }
                    loaded.revision = Some(result.revision);
                    loaded.bytes += proposed_bytes;
                    let written = Written {
                        stream: stream.as_str().to_owned(),
                        revision: result.revision,
                        position: result.position.0,
                        event_types: events.iter().map(|event| A::event_type(event).to_owned()).collect(),
                        replayed: false,
                    };
                    loaded.requests.insert(
                        correlation,
                        Request { written: Written { replayed: true, ..written.clone() }, causation: causation.id() },
                    );
                    cache.weigh(stream.as_str(), loaded.bytes);
                    return Ok(Outcome { written, events });
                }
                Err(AppendError::WrongExpectedRevision { .. }) => {
                    tracing::debug!(stream = stream.as_str(), attempt, "conflict: another writer changed the stream");
                    self.catch_up(stream, loaded).await?;
                }
                Err(AppendError::DuplicateEventIdElsewhere { .. }) => {
                    return Err(AppError::RequestIdReused { request_id: correlation.to_string() });
                }
                Err(error) => {
                    // The stream's cached state may no longer match the store (an append that
                    // failed may or may not have reached the disk): drop it.
                    *guard = None;
                    return Err(error.into());
                }
            }
        }
        Err(AppError::Aborted { stream: stream.as_str().to_owned(), attempts: MAX_ATTEMPTS })
    }
}

fn propose<A: Aggregate>(
    events: &[A::Event],
    actor: &StoreActor,
    correlation: EventId,
    causation: EventId,
) -> Result<Vec<ProposedEvent>, AppError> {
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            Ok(ProposedEvent {
                id: event_id(correlation, u32::try_from(index).unwrap_or(u32::MAX)),
                event_type: A::event_type(event).to_owned(),
                schema_version: SCHEMA_VERSION,
                occurred_at: A::occurred_at(event).to_utc(),
                actor: actor.clone(),
                correlation_id: correlation,
                causation_id: causation,
                payload: to_json(event)?,
            })
        })
        .collect()
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, AppError> {
    serde_json::to_vec(value).map_err(|error| AppError::Internal(format!("event does not serialise: {error}")))
}

#[cfg(test)]
mod tests {
    use tousu_domain::complaint::ComplaintState;

    use super::*;

    /// Loads a stream as a command does: takes its slot, weighs it while holding it, lets go.
    fn load(cache: &StreamCache<ComplaintState>, stream: &str, bytes: usize) {
        let slot = cache.slot(stream);
        cache.weigh(stream, bytes);
        drop(slot);
    }

    #[test]
    fn the_stream_cache_drops_the_oldest_unused_streams_beyond_its_budget_of_bytes() {
        let cache: StreamCache<ComplaintState> = StreamCache::new(100, 1_000);
        load(&cache, "complaint-C1", 600);
        let held = cache.slot("complaint-C1");
        load(&cache, "complaint-C2", 300);
        assert_eq!(cache.usage(), (2, 900));
        // A third stream brings the cache over its budget: the oldest stream nobody holds
        // goes (C1 is held, so C2 goes), and C1 stays however much it weighs.
        load(&cache, "complaint-C3", 200);
        assert_eq!(cache.usage(), (2, 800));
        assert!(Arc::ptr_eq(&held, &cache.slot("complaint-C1")), "a held stream is never dropped");
        drop(held);
        // The next stream over the budget drops the oldest in the queue nobody holds: C3, as
        // C1 went to the back of the queue when it was found held.
        load(&cache, "complaint-C4", 300);
        assert_eq!(cache.usage(), (2, 900));
        // A stream weighing more than the whole budget is kept while it is in use, and goes
        // with the next stream loaded.
        load(&cache, "complaint-C5", 5_000);
        load(&cache, "complaint-C6", 10);
        assert_eq!(cache.usage(), (1, 10));
    }

    /// A stream whose one request, `correlation`, wrote with `causation`.
    fn written_once(correlation: EventId, causation: EventId) -> Loaded<ComplaintState> {
        let mut loaded = Loaded::empty();
        let written = Written {
            stream: "complaint-C1".to_owned(),
            revision: 0,
            position: 42,
            event_types: vec!["complaint.registered".to_owned()],
            replayed: true,
        };
        loaded.requests.insert(correlation, Request { written, causation });
        loaded
    }

    #[test]
    fn a_repeat_is_recognised_by_either_version_of_the_fingerprint_and_other_content_is_refused() {
        let correlation = EventId::from_bytes([1; 16]);
        let asked = "电梯故障".to_owned();
        let fingerprint = crate::ids::request_fingerprint(correlation, &asked).unwrap();
        let other = "水管漏水".to_owned();
        let other = crate::ids::request_fingerprint(correlation, &other).unwrap();
        // Written by this version, by the first version of the fingerprint, and before
        // fingerprints existed (the correlation as causation).
        for stored in [fingerprint.id, fingerprint.legacy(), correlation] {
            let loaded = written_once(correlation, stored);
            let repeat = loaded.repeat_of(correlation, &Causation::Request(&fingerprint));
            assert_eq!(repeat.unwrap().unwrap().position, 42, "the first answer, for causation {stored}");
        }
        for stored in [fingerprint.id, fingerprint.legacy()] {
            let loaded = written_once(correlation, stored);
            let refused = loaded.repeat_of(correlation, &Causation::Request(&other)).unwrap();
            assert!(matches!(refused, Err(AppError::RequestIdReused { .. })), "other content: {refused:?}");
        }
        let loaded = written_once(correlation, fingerprint.id);
        assert!(loaded.repeat_of(EventId::from_bytes([2; 16]), &Causation::Request(&fingerprint)).is_none());
    }
}
