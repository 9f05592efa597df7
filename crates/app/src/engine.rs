//! Command execution over any event store: load a stream's state, decide, append with the
//! expected revision, retry a bounded number of times on a conflict, and recognise a repeated
//! request so it is answered with the first result and writes nothing.
//!
//! States are cached per stream, and commands on one stream are serialised within this
//! process by the stream's lock, so a conflict only arises when another process writes the
//! same stream. A repeated request is recognised by its correlation id, which every event a
//! command writes carries: the cache remembers the correlation ids of the stream's events,
//! and a cold load rebuilds them from the stored events, so a repeat is recognised after a
//! restart too.

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
use crate::ids::event_id;

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

/// A stream's state as loaded: the fold of its events, its last revision and the
/// correlation ids of the requests that wrote it.
#[derive(Debug)]
pub struct Loaded<A> {
    /// The fold of the stream's events.
    pub state: A,
    /// The last revision, `None` for a stream with no events.
    pub revision: Option<u64>,
    requests: HashMap<EventId, Written>,
}

impl<A: Aggregate> Loaded<A> {
    fn empty() -> Self {
        Loaded { state: A::default(), revision: None, requests: HashMap::new() }
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
            let written = self.requests.entry(recorded.event.correlation_id).or_insert_with(|| Written {
                stream: recorded.stream.as_str().to_owned(),
                revision: recorded.revision,
                position: recorded.position.0,
                event_types: Vec::new(),
                replayed: true,
            });
            written.revision = recorded.revision;
            written.position = recorded.position.0;
            written.event_types.push(recorded.event.event_type.clone());
        }
        Ok(())
    }
}

/// One cached stream: its lock, and its state once loaded.
type Slot<A> = Arc<AsyncMutex<Option<Loaded<A>>>>;

/// Cached stream states of one aggregate kind, each behind its own lock.
pub struct StreamCache<A> {
    entries: Mutex<HashMap<String, Slot<A>>>,
    order: Mutex<VecDeque<String>>,
    capacity: usize,
}

impl<A> StreamCache<A> {
    /// A cache holding at most about `capacity` streams; the least recently loaded unused
    /// ones are dropped first.
    pub fn new(capacity: usize) -> Self {
        StreamCache {
            entries: Mutex::new(HashMap::new()),
            order: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    fn slot(&self, stream: &str) -> Slot<A> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = entries.get(stream) {
            return slot.clone();
        }
        let slot = Arc::new(AsyncMutex::new(None));
        entries.insert(stream.to_owned(), slot.clone());
        let mut order = self.order.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        order.push_back(stream.to_owned());
        // Evict the oldest entries nobody holds; an entry in use stays and is looked at again
        // on a later insertion.
        let mut scanned = 0;
        while entries.len() > self.capacity && scanned < order.len() {
            let Some(oldest) = order.pop_front() else { break };
            match entries.get(&oldest) {
                Some(candidate) if Arc::strong_count(candidate) == 1 => {
                    entries.remove(&oldest);
                }
                Some(_) => {
                    order.push_back(oldest);
                    scanned += 1;
                }
                None => {}
            }
        }
        slot
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
        causation: EventId,
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
            *guard = Some(loaded);
        }
        let loaded = guard.as_mut().expect("loaded above");
        let store_actor = StoreActor {
            person: actor.person.clone(),
            body: actor.body.as_str().to_owned(),
            role: actor.role.as_str().to_owned(),
        };
        for attempt in 1..=MAX_ATTEMPTS {
            if let Some(written) = loaded.requests.get(&correlation) {
                return Ok(Outcome { written: Written { replayed: true, ..written.clone() }, events: Vec::new() });
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
            let proposed = propose::<A>(&events, &store_actor, correlation, causation)?;
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
                    let written = Written {
                        stream: stream.as_str().to_owned(),
                        revision: result.revision,
                        position: result.position.0,
                        event_types: events.iter().map(|event| A::event_type(event).to_owned()).collect(),
                        replayed: false,
                    };
                    loaded.requests.insert(correlation, Written { replayed: true, ..written.clone() });
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
