//! Running read models: a worker per read model follows the log from its checkpoint and
//! commits each batch's changes together with the new checkpoint, so a crash neither loses
//! nor doubles an event; a builder builds a new generation beside the live one and promotes it
//! once it has caught up; the supervisor keeps each worker isolated, restarting a failed one
//! with a growing pause and reporting why, without disturbing the others.
//!
//! A read model that cannot be trusted any more fails alone and is rebuilt from the log
//! ([`Fault`]): its store damaged (SQLite or PostgreSQL reporting corruption to the worker or
//! to a query, a SQLite file truncated, overwritten, replaced or gone), or its live generation
//! ahead of the log (an older log restored beside newer read models). Queries answer that it
//! is unavailable and why ([`Supervisor::readiness`]) from the moment it is found until a new
//! generation, built from the log in a new file or new tables, is switched in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tousu_store::{EventStore, Position, ReadFrom, RecordedEvent, Subscription, SubscriptionError};

use crate::event::ProjectedEvent;
use crate::meta::{self, Checkpoint, Generation};
use crate::projection::{ModelWriter, ProjectionError, ReadModel, table_prefix};
use crate::sql::{FileWatch, ReadStoreAddress, SqlConnection, SqlError};

/// Events per transaction while following the log.
pub const FOLLOW_BATCH: usize = 8192;
/// Events per transaction while a server builds a generation from the start (its first, or
/// one beside the live generation).
pub const BUILD_BATCH: usize = 8192;
/// Events per transaction of a rebuild with the server stopped (`tousu projections rebuild`):
/// larger transactions write each page they touch fewer times. Measured on 1M events, the five
/// read models together: 108k events/s at 8,192, 121k–125k/s at 32,768 (45 MB more memory),
/// 120k/s at 65,536.
pub const OFFLINE_BUILD_BATCH: usize = 32_768;
/// How long a source waits for new events before letting the worker look at its stop flag.
const POLL: Duration = Duration::from_millis(500);
/// How long, at most, a worker at the head of the log lets events gather into one batch while
/// they keep coming, so that under a steady stream of commands it commits a few large
/// transactions instead of many small ones (each rewrites the pages it touches: measured with
/// the five read models, at 50 ms the workers wrote about 73 KB per registration, at 250 ms
/// 48 KB, with a sixth less CPU). A query that waits for the read model to catch up cuts the gathering short
/// ([`Supervisor::hurry`]), so under writes this is the most a read model falls behind for
/// readers that do not wait, such as another process's.
pub const FOLLOW_LINGER: Duration = Duration::from_millis(250);
/// How long a worker waits for more events before it looks again; when none came, the
/// stream is quiet and the batch is applied at once.
const LINGER_STEP: Duration = Duration::from_millis(5);

/// Why a source could not deliver events.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The log's source is gone (store closed, connection lost).
    #[error("event source closed: {0}")]
    Closed(String),
    /// Reading failed.
    #[error("event source failed: {0}")]
    Failed(String),
}

/// The global log, as a worker reads it.
pub trait EventSource: Send {
    /// The next events after those already returned, at most `max`; may return none when
    /// nothing arrived for a while, so the caller can look at its stop flag.
    fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SourceError>;
    /// The log's last position now (0 for an empty log).
    fn head(&mut self) -> Result<u64, SourceError>;
    /// Events already there, at most `max`, without waiting for more; none by default.
    fn more(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
        let _ = max;
        Ok(Vec::new())
    }
    /// What the log holds at `position`, to check the last event a generation applied
    /// ([`check_against_log`]); [`LogEntry::Unknown`] by default, and the check then rests on
    /// the head alone.
    fn entry_at(&mut self, position: u64) -> Result<LogEntry, SourceError> {
        let _ = position;
        Ok(LogEntry::Unknown)
    }
}

/// What the log holds at a position, as far as a source can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEntry {
    /// An event, recorded at this instant.
    Recorded(DateTime<Utc>),
    /// No event.
    Absent,
    /// The source cannot look an event up by its position.
    Unknown,
}

/// Opens a source reading the log after a position (0: from the start).
pub type SourceFactory = Arc<dyn Fn(u64) -> Result<Box<dyn EventSource>, SourceError> + Send + Sync>;

/// A source over an in-process store, driven from a worker thread through the runtime.
pub struct StoreSource<S: EventStore> {
    runtime: tokio::runtime::Handle,
    store: Arc<S>,
    subscription: S::Subscription,
}

impl<S: EventStore + 'static> StoreSource<S> {
    /// A factory of sources over `store`, using the tokio runtime behind `runtime`.
    pub fn factory(runtime: tokio::runtime::Handle, store: Arc<S>) -> SourceFactory {
        Arc::new(move |after: u64| {
            let from = if after == 0 { ReadFrom::Start } else { ReadFrom::After(Position(after)) };
            let subscription =
                runtime.block_on(store.subscribe_all(from)).map_err(|error| SourceError::Failed(error.to_string()))?;
            Ok(Box::new(StoreSource { runtime: runtime.clone(), store: store.clone(), subscription })
                as Box<dyn EventSource>)
        })
    }
}

impl<S: EventStore + 'static> EventSource for StoreSource<S> {
    fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
        let subscription = &mut self.subscription;
        match self.runtime.block_on(async { tokio::time::timeout(POLL, subscription.next_batch(max)).await }) {
            Err(_elapsed) => Ok(Vec::new()),
            Ok(Ok(batch)) => Ok(batch),
            Ok(Err(SubscriptionError::Closed)) => Err(SourceError::Closed("the store closed".into())),
            Ok(Err(error)) => Err(SourceError::Failed(error.to_string())),
        }
    }

    fn head(&mut self) -> Result<u64, SourceError> {
        let head = self.runtime.block_on(self.store.head()).map_err(|error| SourceError::Failed(error.to_string()))?;
        Ok(head.map_or(0, |position| position.0))
    }

    fn more(&mut self, max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
        let subscription = &mut self.subscription;
        match self.runtime.block_on(async { tokio::time::timeout(Duration::ZERO, subscription.next_batch(max)).await })
        {
            Err(_elapsed) => Ok(Vec::new()),
            Ok(Ok(batch)) => Ok(batch),
            Ok(Err(SubscriptionError::Closed)) => Err(SourceError::Closed("the store closed".into())),
            Ok(Err(error)) => Err(SourceError::Failed(error.to_string())),
        }
    }

    /// The first event after `position - 1` is the one at `position` if the log has one there,
    /// whatever its gaps. A store that refuses to read from a position no event starts at
    /// (KurrentDB's positions are byte offsets) cannot tell.
    fn entry_at(&mut self, position: u64) -> Result<LogEntry, SourceError> {
        let from = if position <= 1 { ReadFrom::Start } else { ReadFrom::After(Position(position - 1)) };
        match self.runtime.block_on(self.store.read_all(from, 1)) {
            Ok(events) => Ok(match events.first() {
                Some(event) if event.position.0 == position => LogEntry::Recorded(event.recorded_at),
                _ => LogEntry::Absent,
            }),
            Err(error) => {
                tracing::debug!(position, %error, "the log cannot be read from just before a position");
                Ok(LogEntry::Unknown)
            }
        }
    }
}

/// Why a worker stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The read store failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// The projection refused an event.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The log could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A generation has applied the log further than the log goes: the log is older than the
    /// read model (an older backup of the log restored beside newer read models).
    #[error("generation {generation} has applied the log up to position {checkpoint}, past the log's head at {head}")]
    AheadOfLog {
        /// The generation.
        generation: u64,
        /// Its checkpoint.
        checkpoint: u64,
        /// The log's head.
        head: u64,
    },
    /// The event a generation applied last is not in the log: another log, or an older one
    /// restored and then written past that position again.
    #[error(
        "generation {generation} last applied the event at position {position} recorded {recorded}, which the log does not hold (its head is at {head})"
    )]
    NotInLog {
        /// The generation.
        generation: u64,
        /// Its checkpoint.
        position: u64,
        /// When that event was recorded, as the checkpoint says.
        recorded: String,
        /// The log's head.
        head: u64,
    },
    /// A query (or a rebuild beside the live generation) found the read store damaged.
    #[error("{0}")]
    DamageReported(String),
    /// The read store was set aside, or its live generation discarded, while a generation was
    /// built in it: the build is of no use.
    #[error("the read store was set aside while generation {0} was being built")]
    SetAside(u64),
}

impl RuntimeError {
    /// The fault this error shows in the read model itself, if it is one: its store damaged,
    /// or its live generation ahead of the log. Other errors (the log unreadable, a busy or
    /// unreachable database, an event the model refuses) leave the read model as it is; the
    /// worker is restarted and tries again.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            RuntimeError::Sql(error) | RuntimeError::Projection(ProjectionError::Sql(error)) if error.is_damage() => {
                Some(Fault::Damaged(error.to_string()))
            }
            RuntimeError::DamageReported(reason) => Some(Fault::Damaged(reason.clone())),
            RuntimeError::AheadOfLog { .. } | RuntimeError::NotInLog { .. } => {
                Some(Fault::AheadOfLog(self.to_string()))
            }
            _ => None,
        }
    }
}

/// Why queries may not read a read model until a new generation, built from the log, is
/// switched in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fault {
    /// Its store is damaged: a SQLite file truncated, overwritten, replaced or gone, or the
    /// database reporting corruption. A damaged SQLite file is moved aside and a new one
    /// created; damaged PostgreSQL tables are dropped.
    #[error("read store damaged: {0}")]
    Damaged(String),
    /// Its live generation has applied events the log does not hold; it is dropped.
    #[error("ahead of the log: {0}")]
    AheadOfLog(String),
}

/// Whether queries may read a read model now, as the supervisor knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// They may. The epoch counts the faults contained so far: a connection opened in an
    /// earlier epoch may be open on a file since moved aside, and is not to be used again.
    Ready {
        /// The epoch.
        epoch: u64,
    },
    /// The worker has not yet checked its live generation against the log (it has just
    /// started); it will within moments.
    Checking,
    /// Not until a generation built from the log replaces the live one.
    Faulted(Fault),
}

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerState {
    /// Not started yet.
    #[default]
    Starting,
    /// Building its first generation: queries find no read model yet.
    Building,
    /// Reading the log, behind its head.
    CatchingUp,
    /// At the head of the log, following it.
    Live,
    /// Stopped by an error; it will be restarted.
    Failed,
    /// Stopped on request.
    Stopped,
    /// Run by a worker in another process (`tousu worker`); the status is what the read
    /// store records of it.
    External,
}

impl WorkerState {
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Building => "building",
            WorkerState::CatchingUp => "catching_up",
            WorkerState::Live => "live",
            WorkerState::Failed => "failed",
            WorkerState::Stopped => "stopped",
            WorkerState::External => "external",
        }
    }
}

/// Progress of a generation being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStatus {
    /// The generation.
    pub generation: u64,
    /// Its version.
    pub version: u32,
    /// Its checkpoint.
    pub position: u64,
    /// When the build started.
    pub started_at: DateTime<Utc>,
}

/// The status of one read model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProjectionStatus {
    /// The read model.
    pub name: String,
    /// The version the running code builds.
    pub version: u32,
    /// What the worker is doing.
    pub state: WorkerState,
    /// The live generation.
    pub live: Option<Generation>,
    /// The live generation's checkpoint.
    pub checkpoint: Checkpoint,
    /// The log's head when last looked at.
    pub head: u64,
    /// A generation being built, if a rebuild runs.
    pub building: Option<BuildStatus>,
    /// The last error, until the worker runs again without one.
    pub last_error: Option<String>,
    /// Why queries may not read the read model, until a generation built from the log
    /// replaces the live one.
    pub fault: Option<Fault>,
}

impl ProjectionStatus {
    /// Events behind the head (exact for gap-free positions, an upper bound otherwise).
    pub fn lag_events(&self) -> u64 {
        self.head.saturating_sub(self.checkpoint.position)
    }

    /// Seconds between now and the recording of the last event applied, when behind; 0 when
    /// at the head.
    pub fn lag_seconds(&self, now: DateTime<Utc>) -> f64 {
        if self.lag_events() == 0 {
            return 0.0;
        }
        self.checkpoint.recorded_at.map_or(0.0, |at| (now - at).num_milliseconds().max(0) as f64 / 1000.0)
    }
}

/// Applies a batch to a generation in one transaction with its checkpoint. Returns `false`,
/// having written nothing, when the generation is no longer live or being built (a newer one
/// was promoted) or its checkpoint is no longer where `checkpoint` says (another process
/// applied events to it): the caller starts over from what the read store holds.
pub fn apply_batch(
    connection: &mut SqlConnection,
    name: &str,
    generation: u64,
    writer: &mut dyn ModelWriter,
    checkpoint: &mut Checkpoint,
    batch: &[RecordedEvent],
) -> Result<bool, RuntimeError> {
    let events: Vec<ProjectedEvent> = batch.iter().map(ProjectedEvent::decode).collect();
    apply_decoded(connection, name, generation, writer, checkpoint, &events)
}

/// [`apply_batch`] for events already decoded (a rebuild of several read models decodes each
/// event once for all of them).
pub fn apply_decoded(
    connection: &mut SqlConnection,
    name: &str,
    generation: u64,
    writer: &mut dyn ModelWriter,
    checkpoint: &mut Checkpoint,
    events: &[ProjectedEvent],
) -> Result<bool, RuntimeError> {
    let Some(last) = events.last() else { return Ok(true) };
    let next = Checkpoint {
        position: last.position,
        events: checkpoint.events + events.len() as u64,
        recorded_at: Some(last.recorded_at),
    };
    let applied = connection.transaction(|tx| -> Result<bool, RuntimeError> {
        let meta = meta::read(tx, name)?;
        let current = |g: Option<Generation>| g.is_some_and(|g| g.number == generation);
        if !current(meta.live) && !current(meta.building) {
            return Ok(false);
        }
        // Claim the batch before writing it: exactly once even if two workers write one model.
        if !meta::advance_checkpoint(tx, name, generation, checkpoint.position, &next)? {
            tracing::warn!(
                read_model = name,
                generation,
                expected = checkpoint.position,
                "the checkpoint moved under this worker: another process writes this read model"
            );
            return Ok(false);
        }
        writer.apply(tx, events)?;
        Ok(true)
    })?;
    if applied {
        *checkpoint = next;
    }
    Ok(applied)
}

/// Shared state of the supervisor and its workers.
struct Shared {
    address: ReadStoreAddress,
    source: SourceFactory,
    statuses: Mutex<BTreeMap<&'static str, ProjectionStatus>>,
    building: Mutex<BTreeSet<&'static str>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: AtomicBool,
    /// How long a worker lets events gather into one batch (see [`FOLLOW_LINGER`]).
    linger: Duration,
    /// Per read model with a worker here: what readers and the worker tell each other.
    signals: BTreeMap<&'static str, Signals>,
}

/// What the readers of a read model and its worker here tell each other.
#[derive(Default)]
struct Signals {
    /// A reader waits for the worker to catch up.
    hurried: AtomicBool,
    /// The worker has checked its live generation against the log, once since it started.
    checked: AtomicBool,
    /// Faults contained so far ([`Readiness::Ready`]).
    epoch: AtomicU64,
    /// Damage a reader found, for the worker to contain.
    damage: Mutex<Option<String>>,
}

impl Shared {
    fn new(
        address: ReadStoreAddress,
        source: SourceFactory,
        models: &[Arc<dyn ReadModel>],
        linger: Duration,
    ) -> Shared {
        Shared {
            address,
            source,
            statuses: Mutex::new(BTreeMap::new()),
            building: Mutex::new(BTreeSet::new()),
            threads: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            linger,
            signals: models.iter().map(|model| (model.name(), Signals::default())).collect(),
        }
    }

    /// Whether a reader waits for read model `name`; clears the request (a reader that still
    /// waits asks again).
    fn take_hurry(&self, name: &str) -> bool {
        self.signals.get(name).is_some_and(|signals| signals.hurried.swap(false, Ordering::Relaxed))
    }

    /// The faults of read model `name` contained so far (0 for a read model without a worker
    /// here).
    fn epoch(&self, name: &str) -> u64 {
        self.signals.get(name).map_or(0, |signals| signals.epoch.load(Ordering::SeqCst))
    }

    /// Damage a reader found in read model `name`'s store, if any, for its worker; clears it.
    fn take_damage(&self, name: &str) -> Option<String> {
        let signals = self.signals.get(name)?;
        signals.damage.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }

    /// Records damage found in read model `name`'s store as it was in `epoch`: queries answer
    /// that the read model is damaged from now on, and its worker sets the store aside and
    /// rebuilds it. Nothing for a read model without a worker here, or for damage found in a
    /// store already set aside.
    fn report_damage(&self, name: &str, epoch: u64, reason: String) {
        let Some((&name, signals)) = self.signals.get_key_value(name) else { return };
        // Under the lock `contain` moves the epoch on with (see there).
        let mut damage = signals.damage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if signals.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        self.update(name, |status| {
            if status.fault.is_none() {
                status.fault = Some(Fault::Damaged(reason.clone()));
            }
        });
        *damage = Some(reason);
    }

    fn update(&self, name: &'static str, change: impl FnOnce(&mut ProjectionStatus)) {
        let mut statuses = self.statuses.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(statuses.entry(name).or_default());
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Why a rebuild could not start.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RebuildError {
    /// No read model has this name.
    #[error("no read model is called {0:?}")]
    Unknown(String),
    /// A rebuild of this read model is already running.
    #[error("read model {0} is already being rebuilt")]
    AlreadyRunning(String),
}

/// Runs every read model's worker in its own thread.
pub struct Supervisor {
    shared: Arc<Shared>,
    models: Vec<Arc<dyn ReadModel>>,
    external: Mutex<Vec<Arc<dyn ReadModel>>>,
}

/// How often the status of read models written by other processes is read from the store.
const OBSERVE_EVERY: Duration = Duration::from_millis(500);

impl Supervisor {
    /// Starts a worker for each read model.
    pub fn start(address: ReadStoreAddress, models: Vec<Arc<dyn ReadModel>>, source: SourceFactory) -> Supervisor {
        Self::start_lingering(address, models, source, FOLLOW_LINGER)
    }

    /// [`Supervisor::start`] with workers that let events gather for up to `linger` into
    /// one batch while they keep coming.
    pub fn start_lingering(
        address: ReadStoreAddress,
        models: Vec<Arc<dyn ReadModel>>,
        source: SourceFactory,
        linger: Duration,
    ) -> Supervisor {
        let shared = Arc::new(Shared::new(address, source, &models, linger));
        for model in &models {
            shared.update(model.name(), |status| {
                status.name = model.name().to_owned();
                status.version = model.version();
            });
            let (worker_shared, model) = (shared.clone(), model.clone());
            let handle = std::thread::Builder::new()
                .name(format!("projection-{}", model.name()))
                .spawn(move || worker_loop(&worker_shared, &model))
                .expect("threads can be spawned");
            shared.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(handle);
        }
        Supervisor { shared, models, external: Mutex::new(Vec::new()) }
    }

    /// Reports on read models whose workers run in other processes (`tousu worker`): a
    /// thread reads their checkpoints from the read store every half second, against the
    /// log's head as `head` tells it, so their status shows beside the others' (state
    /// `external`) and a query can wait for them. They can be rebuilt from here too: the
    /// new generation is built in this process, and the other process's worker follows it
    /// once it is promoted.
    pub fn observe_external(
        &self,
        models: Vec<Arc<dyn ReadModel>>,
        head: impl Fn() -> Result<u64, SourceError> + Send + 'static,
    ) {
        for model in &models {
            self.shared.update(model.name(), |status| {
                status.name = model.name().to_owned();
                status.version = model.version();
                status.state = WorkerState::External;
            });
        }
        self.external.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(models.iter().cloned());
        let shared = self.shared.clone();
        let handle = std::thread::Builder::new()
            .name("projection-observer".to_owned())
            .spawn(move || {
                let mut connections: BTreeMap<&'static str, SqlConnection> = BTreeMap::new();
                while !shared.stopping() {
                    let observed = head().map_err(RuntimeError::from).and_then(|head| {
                        let mut statuses = Vec::new();
                        for model in &models {
                            let connection = match connections.entry(model.name()) {
                                std::collections::btree_map::Entry::Occupied(open) => open.into_mut(),
                                std::collections::btree_map::Entry::Vacant(slot) => {
                                    slot.insert(shared.address.connect(model.name())?)
                                }
                            };
                            match stored_status_on(connection, model.as_ref(), head) {
                                Ok(status) => statuses.push(status),
                                Err(error) => {
                                    connections.remove(model.name());
                                    return Err(error);
                                }
                            }
                        }
                        Ok(statuses)
                    });
                    match observed {
                        Ok(statuses) => {
                            for observed in statuses {
                                let name = models.iter().find(|model| model.name() == observed.name);
                                let Some(name) = name.map(|model| model.name()) else { continue };
                                shared.update(name, |status| {
                                    status.live = observed.live;
                                    status.checkpoint = observed.checkpoint;
                                    status.head = observed.head;
                                    status.last_error = None;
                                    // A rebuild running here reports its own progress.
                                    if observed.building.is_none() {
                                        status.building = None;
                                    } else if status.building.is_none() {
                                        status.building = observed.building;
                                    }
                                });
                            }
                        }
                        Err(error) => {
                            for model in &models {
                                shared.update(model.name(), |status| {
                                    status.last_error = Some(format!("observing: {error}"));
                                });
                            }
                        }
                    }
                    let until = Instant::now() + OBSERVE_EVERY;
                    while Instant::now() < until && !shared.stopping() {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
            .expect("threads can be spawned");
        self.shared.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(handle);
    }

    /// Asks read model `name`'s worker to apply what it has gathered now instead of letting
    /// more events gather: a reader waits for it. Does nothing for a read model without a
    /// worker here.
    pub fn hurry(&self, name: &str) {
        if let Some(signals) = self.shared.signals.get(name) {
            signals.hurried.store(true, Ordering::Relaxed);
        }
    }

    /// Whether queries may read read model `name` now. A read model without a worker here
    /// (one in another process, or none of this supervisor's) is ready as far as it knows.
    pub fn readiness(&self, name: &str) -> Readiness {
        let Some(signals) = self.shared.signals.get(name) else { return Readiness::Ready { epoch: 0 } };
        let fault = self
            .shared
            .statuses
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
            .and_then(|status| status.fault.clone());
        match fault {
            Some(fault) => Readiness::Faulted(fault),
            None if !signals.checked.load(Ordering::SeqCst) => Readiness::Checking,
            None => Readiness::Ready { epoch: signals.epoch.load(Ordering::SeqCst) },
        }
    }

    /// A query of read model `name`, on a connection opened in `epoch` ([`Readiness::Ready`]),
    /// found its store damaged (`reason`, an error for which [`SqlError::is_damage`] holds):
    /// queries answer that the read model is damaged from now on, and its worker sets the store
    /// aside and rebuilds the read model from the log. Does nothing for a read model without a
    /// worker here, or when the store was set aside since `epoch`.
    pub fn report_damage(&self, name: &str, epoch: u64, reason: String) {
        self.shared.report_damage(name, epoch, reason);
    }

    /// The status of every read model, in name order.
    pub fn status(&self) -> Vec<ProjectionStatus> {
        self.shared.statuses.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).values().cloned().collect()
    }

    /// The read models this supervisor runs, then those it observes.
    pub fn models(&self) -> Vec<Arc<dyn ReadModel>> {
        let external = self.external.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.models.iter().chain(external.iter()).cloned().collect()
    }

    /// Starts building a new generation of a read model beside the live one; queries keep
    /// reading the live one until the new one has caught up and is promoted. A read model taken
    /// out of service is already being rebuilt, by its worker.
    pub fn rebuild(&self, name: &str) -> Result<(), RebuildError> {
        let model = self
            .models()
            .into_iter()
            .find(|model| model.name() == name)
            .ok_or_else(|| RebuildError::Unknown(name.to_owned()))?;
        if let Readiness::Faulted(_) = self.readiness(name) {
            return Err(RebuildError::AlreadyRunning(name.to_owned()));
        }
        start_builder(&self.shared, model)
    }

    /// Stops every worker and waits for them.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Builders started while joining are in the list too; take until it stays empty.
        loop {
            let threads =
                std::mem::take(&mut *self.shared.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start_builder(shared: &Arc<Shared>, model: Arc<dyn ReadModel>) -> Result<(), RebuildError> {
    let name = model.name();
    if !shared.building.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(name) {
        return Err(RebuildError::AlreadyRunning(name.to_owned()));
    }
    let builder_shared = shared.clone();
    let handle = std::thread::Builder::new()
        .name(format!("rebuild-{name}"))
        .spawn(move || {
            let shared = builder_shared;
            let epoch = shared.epoch(model.name());
            if let Err(error) = build(&shared, model.as_ref(), BuildStart::Fresh, BUILD_BATCH, &mut |_, _| {}) {
                tracing::error!(read_model = model.name(), %error, "rebuild failed; the live generation is untouched");
                shared.update(model.name(), |status| {
                    status.last_error = Some(format!("rebuild: {error}"));
                    status.building = None;
                });
                // The store this rebuild wrote beside the live generation is the live one's:
                // its worker sets it aside.
                if let Some(Fault::Damaged(reason)) = error.fault() {
                    shared.report_damage(model.name(), epoch, reason);
                }
            }
            shared.building.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(model.name());
        })
        .expect("threads can be spawned");
    shared.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(handle);
    Ok(())
}

/// Restarts a read model's worker after each failure, with a pause growing to a minute; a
/// read model that cannot be trusted any more is contained first ([`contain`]), so that the
/// worker, started again, rebuilds it (and a rebuild that fails again waits longer).
fn worker_loop(shared: &Arc<Shared>, model: &Arc<dyn ReadModel>) {
    let mut pause = Duration::from_secs(1);
    while !shared.stopping() {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_worker(shared, model)));
        let (error, fault) = match result {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => (error.to_string(), error.fault()),
            Err(panic) => (format!("panicked: {}", panic_text(panic.as_ref())), None),
        };
        if shared.stopping() {
            break;
        }
        let error = match fault {
            Some(fault) => contain(shared, model.as_ref(), fault),
            None => {
                tracing::error!(read_model = model.name(), %error, "read model worker failed; restarting");
                error
            }
        };
        shared.update(model.name(), |status| {
            status.state = WorkerState::Failed;
            status.last_error = Some(error);
        });
        if started.elapsed() > Duration::from_secs(60) {
            pause = Duration::from_secs(1);
        }
        let until = Instant::now() + pause;
        while Instant::now() < until && !shared.stopping() {
            std::thread::sleep(Duration::from_millis(100));
        }
        pause = (pause * 2).min(Duration::from_secs(60));
    }
    shared.update(model.name(), |status| status.state = WorkerState::Stopped);
}

/// Takes a read model that cannot be trusted out of service, for its worker to rebuild it:
/// from now on queries answer that it is unavailable and why; a damaged SQLite file is moved
/// aside and a new one created (its generations numbered on from the damaged one's), any other
/// faulty live generation is dropped (damaged PostgreSQL tables, a generation ahead of the
/// log); connections opened before are not used again ([`Readiness::Ready`]). The worker,
/// started again, finds no live generation and builds one from the log, which is switched in
/// once it has caught up (and the fault cleared). Returns the error to report: the fault and
/// what was done about it.
fn contain(shared: &Arc<Shared>, model: &dyn ReadModel, fault: Fault) -> String {
    let name = model.name();
    let mut next_generation = 1;
    shared.update(name, |status| {
        let building = status.building.as_ref().map(|building| building.generation);
        next_generation = status.live.map(|live| live.number).max(building).map_or(1, |number| number + 1);
        status.fault = Some(fault.clone());
        status.state = WorkerState::Failed;
        status.last_error = Some(fault.to_string());
        status.live = None;
        status.checkpoint = Checkpoint::default();
    });
    let done = match (&fault, &shared.address) {
        (Fault::Damaged(_), ReadStoreAddress::Sqlite(_)) => renew_file(shared, name, next_generation),
        _ => discard_live(shared, model),
    };
    if let Some(signals) = shared.signals.get(name) {
        // Under the lock a reader reports damage with, so that damage found before this point
        // (in what was just set aside) is dropped and damage found after it is in the new store.
        let mut damage = signals.damage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        signals.epoch.fetch_add(1, Ordering::SeqCst);
        *damage = None;
    }
    match done {
        Ok(done) => {
            tracing::error!(read_model = name, %fault, done, "read model taken out of service; rebuilding it from the log");
            format!("{fault}; {done}; rebuilding from the log")
        }
        Err(error) => {
            tracing::error!(read_model = name, %fault, %error, "read model taken out of service; setting it aside failed");
            format!("{fault}; setting it aside failed: {error}")
        }
    }
}

/// Moves read model `name`'s damaged SQLite file aside and creates a new one, whose next
/// generation is `next_generation`; says what was done.
fn renew_file(shared: &Shared, name: &str, next_generation: u64) -> Result<String, RuntimeError> {
    let aside = shared.address.set_aside(name, Utc::now())?;
    let mut connection = shared.address.connect(name)?;
    connection.transaction(|tx| meta::continue_numbering(tx, name, next_generation))?;
    Ok(match aside {
        Some(path) => format!("the file was moved aside as {}", path.display()),
        None => "the file was gone".to_owned(),
    })
}

/// Drops read model `name`'s live generation; says what was done.
fn discard_live(shared: &Shared, model: &dyn ReadModel) -> Result<String, RuntimeError> {
    let mut connection = shared.address.connect(model.name())?;
    let dropped = connection.transaction(|tx| meta::discard_live(tx, model))?;
    Ok(match dropped {
        Some(generation) => format!("generation {} was dropped", generation.number),
        None => "no generation was live".to_owned(),
    })
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Checks that the last event a generation applied is an event of this log: its checkpoint is
/// not past the log's head and, where the source can look an event up by its position, the log
/// holds an event there recorded at the instant the checkpoint says. A generation that fails
/// was built from another log, or from this one before an older copy of it was restored: its
/// figures are not the log's. A generation that applied nothing passes.
pub fn check_against_log(
    source: &mut dyn EventSource,
    generation: u64,
    checkpoint: &Checkpoint,
) -> Result<(), RuntimeError> {
    if checkpoint.position == 0 {
        return Ok(());
    }
    let head = source.head()?;
    if checkpoint.position > head {
        return Err(RuntimeError::AheadOfLog { generation, checkpoint: checkpoint.position, head });
    }
    let holds = match source.entry_at(checkpoint.position)? {
        LogEntry::Recorded(at) => checkpoint.recorded_at.is_none_or(|recorded| recorded == at),
        LogEntry::Absent => false,
        LogEntry::Unknown => true,
    };
    if holds {
        return Ok(());
    }
    Err(RuntimeError::NotInLog {
        generation,
        position: checkpoint.position,
        recorded: checkpoint.recorded_at.map_or_else(|| "at an unknown instant".to_owned(), |at| at.to_rfc3339()),
        head,
    })
}

/// Follows the log with the live generation (building the first one if there is none, and
/// starting a rebuild beside it if its version is old), once it has checked the generation
/// against the log. Returns when asked to stop or when a newer generation was promoted, so
/// the loop follows that one; fails when the read store is found damaged, or the generation
/// ahead of the log, for the loop to contain it.
fn run_worker(shared: &Arc<Shared>, model: &Arc<dyn ReadModel>) -> Result<(), RuntimeError> {
    let name = model.name();
    let mut connection = shared.address.connect(name)?;
    let mut watch = FileWatch::new(&shared.address, name);
    let current = connection.transaction(|tx| meta::read(tx, name))?;
    let live = match current.live {
        Some(live) => live,
        None => {
            // Nothing to serve yet, so nothing to check: queries find "not built yet" until the
            // first generation is built here; then it is followed.
            if let Some(signals) = shared.signals.get(name) {
                signals.checked.store(true, Ordering::SeqCst);
            }
            shared.update(name, |status| status.state = WorkerState::Building);
            let resume = match current.building {
                Some(building) if building.version == model.version() => BuildStart::Resume(building),
                _ => BuildStart::Fresh,
            };
            build(shared, model.as_ref(), resume, BUILD_BATCH, &mut |_, _| {})?;
            if shared.stopping() {
                return Ok(());
            }
            let promoted = connection.transaction(|tx| meta::read(tx, name))?;
            promoted.live.ok_or_else(|| SourceError::Failed("the first generation was not promoted".into()))?
        }
    };
    let prefix = table_prefix(name, live.number);
    let mut writer = model.writer(&prefix);
    let mut checkpoint = connection.read(|tx| meta::checkpoint(tx, name, live.number))?;
    let mut source = (shared.source)(checkpoint.position)?;
    // Queries wait for this check before they read the generation (`Readiness::Checking`).
    check_against_log(source.as_mut(), live.number, &checkpoint)?;
    if let Some(signals) = shared.signals.get(name) {
        signals.checked.store(true, Ordering::SeqCst);
    }
    if live.version != model.version() {
        tracing::info!(
            read_model = name,
            from = live.version,
            to = model.version(),
            "version changed: rebuilding beside the live generation"
        );
        // Already running is fine: the rebuild asked for earlier goes on.
        let _ = start_builder(shared, model.clone());
    }
    shared.update(name, |status| {
        status.live = Some(live);
        status.checkpoint = checkpoint.clone();
    });
    while !shared.stopping() {
        if let Some(watch) = &mut watch {
            watch.check()?;
        }
        if let Some(reason) = shared.take_damage(name) {
            return Err(RuntimeError::DamageReported(reason));
        }
        let mut batch = source.next_batch(FOLLOW_BATCH)?;
        let gathering = Instant::now();
        while !batch.is_empty()
            && batch.len() < FOLLOW_BATCH
            && gathering.elapsed() < shared.linger
            && !shared.take_hurry(name)
            && !shared.stopping()
        {
            std::thread::sleep(LINGER_STEP);
            let more = source.more(FOLLOW_BATCH - batch.len())?;
            if more.is_empty() {
                break;
            }
            batch.extend(more);
        }
        let head = source.head()?;
        if !batch.is_empty()
            && !apply_batch(&mut connection, name, live.number, writer.as_mut(), &mut checkpoint, &batch)?
        {
            tracing::info!(
                read_model = name,
                generation = live.number,
                "the read store moved on without this worker (a newer generation, or another writer): resuming from it"
            );
            return Ok(());
        }
        shared.update(name, |status| {
            status.checkpoint = checkpoint.clone();
            status.head = head.max(checkpoint.position);
            status.state = if checkpoint.position >= head { WorkerState::Live } else { WorkerState::CatchingUp };
            status.last_error = None;
        });
    }
    // A clean stop leaves the write-ahead log empty (closing a connection does not).
    empty_wal(&mut connection, name);
    Ok(())
}

/// Where a build starts.
#[derive(Debug, Clone, Copy)]
pub enum BuildStart {
    /// A new generation from the start of the log.
    Fresh,
    /// An interrupted build of this generation, from its checkpoint.
    Resume(Generation),
}

/// A new generation begun, at position 0, with a source from the start of the log.
fn begin_fresh(
    shared: &Shared,
    connection: &mut SqlConnection,
    model: &dyn ReadModel,
) -> Result<(Generation, Checkpoint, Box<dyn EventSource>), RuntimeError> {
    let generation = connection.transaction(|tx| meta::begin_generation(tx, model))?;
    Ok((generation, Checkpoint::default(), (shared.source)(0)?))
}

/// Builds a generation until it has caught up with the log's head, in transactions of up to
/// `batch` events, then promotes it and drops the generation it replaces. `progress` is told
/// the checkpoint and the head after each batch. An interrupted build resumed is checked
/// against the log first, and started anew if it is not of this log.
fn build(
    shared: &Arc<Shared>,
    model: &dyn ReadModel,
    start: BuildStart,
    batch_size: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), RuntimeError> {
    let name = model.name();
    let epoch = shared.epoch(name);
    let mut connection = shared.address.connect(name)?;
    let mut watch = FileWatch::new(&shared.address, name);
    let (generation, mut checkpoint, mut source) = match start {
        BuildStart::Resume(generation) => {
            let checkpoint = connection.read(|tx| meta::checkpoint(tx, name, generation.number))?;
            let mut source = (shared.source)(checkpoint.position)?;
            match check_against_log(source.as_mut(), generation.number, &checkpoint) {
                Ok(()) => (generation, checkpoint, source),
                Err(error) if error.fault().is_some() => {
                    tracing::warn!(read_model = name, %error, "the interrupted build is not of this log: starting anew");
                    begin_fresh(shared, &mut connection, model)?
                }
                Err(error) => return Err(error),
            }
        }
        BuildStart::Fresh => begin_fresh(shared, &mut connection, model)?,
    };
    let started_at = Utc::now();
    let prefix = table_prefix(name, generation.number);
    let mut writer = model.writer(&prefix);
    tracing::info!(read_model = name, generation = generation.number, from = checkpoint.position, "building");
    loop {
        if shared.stopping() {
            return Ok(());
        }
        if let Some(watch) = &mut watch {
            watch.check()?;
        }
        let head = source.head()?;
        if checkpoint.position >= head {
            break;
        }
        let batch = source.next_batch(batch_size)?;
        if !batch.is_empty()
            && !apply_batch(&mut connection, name, generation.number, writer.as_mut(), &mut checkpoint, &batch)?
        {
            return Err(SourceError::Failed(format!(
                "generation {} was replaced, or advanced by another process, while being built",
                generation.number
            ))
            .into());
        }
        progress(checkpoint.position, head);
        shared.update(name, |status| {
            status.building = Some(BuildStatus {
                generation: generation.number,
                version: generation.version,
                position: checkpoint.position,
                started_at,
            });
            status.head = head;
        });
    }
    // A fault contained while this build ran (a rebuild beside the live generation) took the
    // store it built in out of service.
    if shared.epoch(name) != epoch {
        return Err(RuntimeError::SetAside(generation.number));
    }
    let indexes = model.deferred_indexes(&prefix);
    let replaced = connection.transaction(|tx| {
        tx.batch(&indexes)?;
        meta::promote(tx, name, generation)
    })?;
    tracing::info!(
        read_model = name,
        generation = generation.number,
        position = checkpoint.position,
        "generation promoted"
    );
    shared.update(name, |status| {
        status.building = None;
        status.live = Some(generation);
        status.checkpoint = checkpoint.clone();
        // Built from the log in a store of its own: what made the read model unavailable is
        // behind it.
        status.fault = None;
    });
    // Readers that began before the promotion keep their snapshot of the old tables; the
    // old generation's worker, if one runs, stops at its next batch without writing.
    if let Some(old) = replaced {
        connection.transaction(|tx| meta::drop_generation(tx, model, old.number))?;
    }
    Ok(())
}

/// Builds a new generation of a read model to the head of the log and promotes it, in the
/// calling thread: `tousu projections rebuild` with the server stopped. `progress` is told
/// the checkpoint and the head after each batch.
pub fn build_now(
    address: &ReadStoreAddress,
    model: &dyn ReadModel,
    source: SourceFactory,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), RuntimeError> {
    let shared = Shared::new(address.clone(), source, &[], FOLLOW_LINGER);
    build(&Arc::new(shared), model, BuildStart::Fresh, OFFLINE_BUILD_BATCH, progress)?;
    empty_wal(&mut address.connect(model.name())?, model.name());
    Ok(())
}

/// Empties a SQLite read store's write-ahead log at the end of a rebuild with the server
/// stopped; a failure only leaves the log for the next opening to read.
fn empty_wal(connection: &mut SqlConnection, name: &str) {
    if let Err(error) = connection.empty_wal() {
        tracing::debug!(read_model = name, %error, "the write-ahead log was not emptied");
    }
}

/// A read model's status as its read store records it, for tools that run beside the
/// workers (or without them): generations and checkpoints, not the worker's state.
pub fn stored_status(
    address: &ReadStoreAddress,
    model: &dyn ReadModel,
    head: u64,
) -> Result<ProjectionStatus, RuntimeError> {
    stored_status_on(&mut address.connect(model.name())?, model, head)
}

/// [`stored_status`] on an open connection.
fn stored_status_on(
    connection: &mut SqlConnection,
    model: &dyn ReadModel,
    head: u64,
) -> Result<ProjectionStatus, RuntimeError> {
    let name = model.name();
    let (current, checkpoint, building) = connection.read(|tx| -> Result<_, SqlError> {
        let current = meta::read(tx, name)?;
        let checkpoint = match current.live {
            Some(live) => meta::checkpoint(tx, name, live.number)?,
            None => Checkpoint::default(),
        };
        let building = match current.building {
            Some(building) => Some((building, meta::checkpoint(tx, name, building.number)?)),
            None => None,
        };
        Ok((current, checkpoint, building))
    })?;
    Ok(ProjectionStatus {
        name: name.to_owned(),
        version: model.version(),
        state: if current.live.is_some() { WorkerState::Stopped } else { WorkerState::Starting },
        live: current.live,
        checkpoint,
        head,
        building: building.map(|(generation, checkpoint)| BuildStatus {
            generation: generation.number,
            version: generation.version,
            position: checkpoint.position,
            started_at: Utc::now(),
        }),
        last_error: None,
        fault: None,
    })
}

/// How a rebuild with the server stopped builds a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BuildMode {
    /// In memory where the read model has a [`BulkBuilder`](crate::BulkBuilder): its tables
    /// are written once, at the end, in the transaction that sets the checkpoint and switches
    /// the generation in. The others apply the log with their writers.
    #[default]
    InMemory,
    /// Every read model applies the log with its writer, a transaction per batch.
    Incremental,
}

/// Builds a new generation of every read model in `models` to the head of the log and
/// switches each in, reading and decoding the log once for all of them: each read model
/// takes the shared batches in its own thread (and its own connection), so the rebuild runs
/// as fast as the slowest read model or the decoding, whichever is slower. `progress` is told
/// the position read and the head.
///
/// A generation built in memory keeps no checkpoint until its tables are written: an
/// interrupted build leaves it empty at position 0, where the next build (or a server, which
/// resumes it with the writer) starts over.
pub fn build_all_now(
    address: &ReadStoreAddress,
    models: &[Arc<dyn ReadModel>],
    source: SourceFactory,
    mode: BuildMode,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), RuntimeError> {
    use std::sync::mpsc::sync_channel;
    // Set once the whole log up to the head has been sent: a builder promotes its generation
    // only then, so a rebuild cut short leaves the live generations untouched.
    let complete = Arc::new(AtomicBool::new(false));
    let mut builders = Vec::new();
    for model in models {
        let (sender, receiver) = sync_channel::<Arc<Vec<ProjectedEvent>>>(4);
        let (address, model, complete) = (address.clone(), model.clone(), complete.clone());
        let handle = std::thread::Builder::new()
            .name(format!("rebuild-{}", model.name()))
            .spawn(move || build_offline(&address, model.as_ref(), mode, &receiver, &complete))
            .expect("threads can be spawned");
        builders.push((sender, handle));
    }
    let mut source = source(0)?;
    let head = source.head()?;
    // Decoding costs more than reading or folding: batches are decoded by several threads, a
    // batch each in turn, and handed to the builders in log order.
    let decoders: Vec<Decoder> =
        (0..std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4)).map(Decoder::start).collect();
    let mut in_flight = std::collections::VecDeque::new();
    let mut hand_over = |events: Arc<Vec<ProjectedEvent>>| {
        // A builder that failed has dropped its receiver; the others go on, and its error is
        // reported when it is joined.
        for (sender, _) in &builders {
            let _ = sender.send(events.clone());
        }
        if let Some(last) = events.last() {
            progress(last.position, head);
        }
    };
    let (mut position, mut turn, mut read_error) = (0, 0, None);
    while position < head {
        let batch = match source.next_batch(OFFLINE_BUILD_BATCH) {
            Ok(batch) => batch,
            Err(error) => {
                read_error = Some(error);
                break;
            }
        };
        let Some(last) = batch.last() else { continue };
        position = last.position.0;
        decoders[turn].decode(batch);
        in_flight.push_back(turn);
        turn = (turn + 1) % decoders.len();
        if in_flight.len() == decoders.len()
            && let Some(oldest) = in_flight.pop_front()
        {
            hand_over(decoders[oldest].decoded());
        }
    }
    while let Some(oldest) = in_flight.pop_front() {
        hand_over(decoders[oldest].decoded());
    }
    drop(decoders);
    complete.store(read_error.is_none(), Ordering::SeqCst);
    let mut first_error: Option<RuntimeError> = read_error.map(RuntimeError::from);
    for (sender, handle) in builders {
        drop(sender);
        let result = handle.join().unwrap_or_else(|panic| {
            Err(SourceError::Failed(format!("a rebuild thread panicked: {}", panic_text(panic.as_ref()))).into())
        });
        if let Err(error) = result
            && first_error.is_none()
        {
            first_error = Some(error);
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// One read model's part of [`build_all_now`]: begins a generation, builds it from the batches
/// received (in memory, or with the writer), and promotes it once the log has been read to its
/// head.
fn build_offline(
    address: &ReadStoreAddress,
    model: &dyn ReadModel,
    mode: BuildMode,
    batches: &std::sync::mpsc::Receiver<Arc<Vec<ProjectedEvent>>>,
    complete: &AtomicBool,
) -> Result<(), RuntimeError> {
    let name = model.name();
    let mut connection = address.connect(name)?;
    let generation = connection.transaction(|tx| meta::begin_generation(tx, model))?;
    let replaced_or_moved = || -> RuntimeError {
        SourceError::Failed(format!(
            "generation {} was replaced, or advanced by another process, while being built",
            generation.number
        ))
        .into()
    };
    let unfinished = || -> RuntimeError {
        SourceError::Failed(format!(
            "the log was not read to its head; generation {} is left unfinished",
            generation.number
        ))
        .into()
    };
    let prefix = table_prefix(name, generation.number);
    let indexes = model.deferred_indexes(&prefix);
    let bulk = match mode {
        BuildMode::InMemory => model.bulk(&prefix),
        BuildMode::Incremental => None,
    };
    let (replaced, position) = match bulk {
        Some(mut builder) => {
            let mut checkpoint = Checkpoint::default();
            let mut folding = Duration::ZERO;
            for events in batches {
                let started = Instant::now();
                builder.fold(&events)?;
                folding += started.elapsed();
                if let Some(last) = events.last() {
                    checkpoint = Checkpoint {
                        position: last.position,
                        events: checkpoint.events + events.len() as u64,
                        recorded_at: Some(last.recorded_at),
                    };
                }
            }
            if !complete.load(Ordering::SeqCst) {
                return Err(unfinished());
            }
            tracing::info!(
                read_model = name,
                generation = generation.number,
                events = checkpoint.events,
                folding_seconds = folding.as_secs_f64(),
                "folded in memory; writing the tables"
            );
            let writing = Instant::now();
            let mut indexing = Duration::ZERO;
            let replaced = connection.transaction(|tx| -> Result<_, RuntimeError> {
                let building = meta::read(tx, name)?.building;
                if building.is_none_or(|building| building.number != generation.number)
                    || (checkpoint.position > 0
                        && !meta::advance_checkpoint(tx, name, generation.number, 0, &checkpoint)?)
                {
                    return Err(replaced_or_moved());
                }
                builder.write(tx)?;
                let started = Instant::now();
                tx.batch(&indexes)?;
                indexing = started.elapsed();
                Ok(meta::promote(tx, name, generation)?)
            })?;
            tracing::info!(
                read_model = name,
                generation = generation.number,
                writing_seconds = writing.elapsed().as_secs_f64(),
                of_which_indexes_seconds = indexing.as_secs_f64(),
                "tables written and committed"
            );
            (replaced, checkpoint.position)
        }
        None => {
            let mut writer = model.writer(&prefix);
            let mut checkpoint = Checkpoint::default();
            for events in batches {
                if !apply_decoded(&mut connection, name, generation.number, writer.as_mut(), &mut checkpoint, &events)?
                {
                    return Err(replaced_or_moved());
                }
            }
            if !complete.load(Ordering::SeqCst) {
                return Err(unfinished());
            }
            let replaced = connection.transaction(|tx| {
                tx.batch(&indexes)?;
                meta::promote(tx, name, generation)
            })?;
            (replaced, checkpoint.position)
        }
    };
    if let Some(old) = replaced {
        connection.transaction(|tx| meta::drop_generation(tx, model, old.number))?;
    }
    tracing::info!(read_model = name, generation = generation.number, position, "generation promoted");
    empty_wal(&mut connection, name);
    Ok(())
}

/// A thread decoding batches of the log for [`build_all_now`], one at a time, in the order given.
struct Decoder {
    raw: std::sync::mpsc::SyncSender<Vec<RecordedEvent>>,
    decoded: std::sync::mpsc::Receiver<Arc<Vec<ProjectedEvent>>>,
}

impl Decoder {
    fn start(number: usize) -> Decoder {
        let (raw, batches) = std::sync::mpsc::sync_channel::<Vec<RecordedEvent>>(1);
        let (done, decoded) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name(format!("rebuild-decode-{number}"))
            .spawn(move || {
                for batch in batches {
                    let events: Vec<ProjectedEvent> = batch.iter().map(ProjectedEvent::decode).collect();
                    if done.send(Arc::new(events)).is_err() {
                        return;
                    }
                }
            })
            .expect("threads can be spawned");
        Decoder { raw, decoded }
    }

    fn decode(&self, batch: Vec<RecordedEvent>) {
        self.raw.send(batch).expect("a decoding thread runs until its sender is dropped");
    }

    /// The batch given first among those not taken yet, decoded.
    fn decoded(&self) -> Arc<Vec<ProjectedEvent>> {
        self.decoded.recv().expect("a decoding thread answers every batch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `head` events, the one at each position recorded at that many seconds past the
    /// epoch, that can look events up (or not).
    struct Log {
        head: u64,
        lookups: bool,
    }

    fn second(n: u64) -> DateTime<Utc> {
        DateTime::from_timestamp(i64::try_from(n).expect("small"), 0).expect("an instant")
    }

    impl EventSource for Log {
        fn next_batch(&mut self, _max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
            Ok(Vec::new())
        }
        fn head(&mut self) -> Result<u64, SourceError> {
            Ok(self.head)
        }
        fn entry_at(&mut self, position: u64) -> Result<LogEntry, SourceError> {
            Ok(match (self.lookups, position <= self.head) {
                (false, _) => LogEntry::Unknown,
                (true, true) => LogEntry::Recorded(second(position)),
                (true, false) => LogEntry::Absent,
            })
        }
    }

    fn at(position: u64, recorded_at: DateTime<Utc>) -> Checkpoint {
        Checkpoint { position, events: position, recorded_at: Some(recorded_at) }
    }

    #[test]
    fn a_generation_whose_checkpoint_is_past_the_head_is_ahead_of_the_log() {
        for lookups in [true, false] {
            let error = check_against_log(&mut Log { head: 8, lookups }, 3, &at(12, second(12))).expect_err("ahead");
            assert!(matches!(error, RuntimeError::AheadOfLog { generation: 3, checkpoint: 12, head: 8 }), "{error:?}");
            assert_eq!(
                error.to_string(),
                "generation 3 has applied the log up to position 12, past the log's head at 8"
            );
            assert!(matches!(error.fault(), Some(Fault::AheadOfLog(_))));
        }
    }

    #[test]
    fn a_generation_whose_last_event_the_log_does_not_hold_is_not_of_this_log() {
        // The log holds an event at the position, recorded at another instant: an older log
        // restored and written past that position again.
        let error =
            check_against_log(&mut Log { head: 20, lookups: true }, 4, &at(12, second(99))).expect_err("not held");
        assert!(matches!(error, RuntimeError::NotInLog { generation: 4, position: 12, head: 20, .. }), "{error:?}");
        assert!(error.to_string().contains("recorded 1970-01-01T00:01:39+00:00"), "{error}");
        assert!(matches!(error.fault(), Some(Fault::AheadOfLog(_))));
        // A log with gaps that has no event at the position.
        struct Gaps;
        impl EventSource for Gaps {
            fn next_batch(&mut self, _max: usize) -> Result<Vec<RecordedEvent>, SourceError> {
                Ok(Vec::new())
            }
            fn head(&mut self) -> Result<u64, SourceError> {
                Ok(1_000)
            }
            fn entry_at(&mut self, _position: u64) -> Result<LogEntry, SourceError> {
                Ok(LogEntry::Absent)
            }
        }
        assert!(matches!(check_against_log(&mut Gaps, 1, &at(500, second(500))), Err(RuntimeError::NotInLog { .. })));
    }

    #[test]
    fn a_generation_whose_last_event_the_log_holds_passes_and_one_that_applied_nothing_too() {
        check_against_log(&mut Log { head: 20, lookups: true }, 1, &at(12, second(12))).expect("held");
        check_against_log(&mut Log { head: 12, lookups: true }, 1, &at(12, second(12))).expect("at the head");
        let unknown_instant = Checkpoint { position: 12, events: 12, recorded_at: None };
        check_against_log(&mut Log { head: 20, lookups: true }, 1, &unknown_instant).expect("a position it holds");
        check_against_log(&mut Log { head: 0, lookups: true }, 1, &Checkpoint::default()).expect("nothing applied");
        // A source that cannot look events up is checked against its head alone.
        check_against_log(&mut Log { head: 20, lookups: false }, 1, &at(12, second(99))).expect("the head alone");
    }

    #[test]
    fn damage_and_a_generation_ahead_of_the_log_are_faults_and_other_failures_are_not() {
        let corrupt = || {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some("database disk image is malformed".into()),
            ))
        };
        let busy = || {
            SqlError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                None,
            ))
        };
        for error in [
            RuntimeError::Sql(corrupt()),
            RuntimeError::Projection(ProjectionError::Sql(corrupt())),
            RuntimeError::DamageReported("sqlite: database disk image is malformed".into()),
        ] {
            assert!(matches!(error.fault(), Some(Fault::Damaged(_))), "{error:?}");
        }
        for error in [
            RuntimeError::Sql(busy()),
            RuntimeError::Projection(ProjectionError::Sql(busy())),
            RuntimeError::Projection(ProjectionError::Event { position: 3, reason: "unknown kind".into() }),
            RuntimeError::Source(SourceError::Closed("the store closed".into())),
            RuntimeError::SetAside(4),
        ] {
            assert_eq!(error.fault(), None, "{error:?}");
        }
        let fault = RuntimeError::Sql(corrupt()).fault().expect("a fault");
        assert_eq!(fault.to_string(), "read store damaged: sqlite: database disk image is malformed");
    }
}
