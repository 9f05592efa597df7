//! Running read models: a worker per read model follows the log from its checkpoint and
//! commits each batch's changes together with the new checkpoint, so a crash neither loses
//! nor doubles an event; a builder builds a new generation beside the live one and promotes it
//! once it has caught up; the supervisor keeps each worker isolated, restarting a failed one
//! with a growing pause and reporting why, without disturbing the others.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tousu_store::{EventStore, Position, ReadFrom, RecordedEvent, Subscription, SubscriptionError};

use crate::event::ProjectedEvent;
use crate::meta::{self, Checkpoint, Generation};
use crate::projection::{ModelWriter, ProjectionError, ReadModel, table_prefix};
use crate::sql::{ReadStoreAddress, SqlConnection, SqlError};

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
    /// Per read model with a worker here: whether a reader waits for it to catch up.
    hurried: BTreeMap<&'static str, AtomicBool>,
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
            hurried: models.iter().map(|model| (model.name(), AtomicBool::new(false))).collect(),
        }
    }

    /// Whether a reader waits for read model `name`; clears the request (a reader that still
    /// waits asks again).
    fn take_hurry(&self, name: &str) -> bool {
        self.hurried.get(name).is_some_and(|flag| flag.swap(false, Ordering::Relaxed))
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
        if let Some(flag) = self.shared.hurried.get(name) {
            flag.store(true, Ordering::Relaxed);
        }
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
    /// reading the live one until the new one has caught up and is promoted.
    pub fn rebuild(&self, name: &str) -> Result<(), RebuildError> {
        let model = self
            .models()
            .into_iter()
            .find(|model| model.name() == name)
            .ok_or_else(|| RebuildError::Unknown(name.to_owned()))?;
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
            if let Err(error) = build(&shared, model.as_ref(), BuildStart::Fresh, BUILD_BATCH, &mut |_, _| {}) {
                tracing::error!(read_model = model.name(), %error, "rebuild failed; the live generation is untouched");
                shared.update(model.name(), |status| {
                    status.last_error = Some(format!("rebuild: {error}"));
                    status.building = None;
                });
            }
            shared.building.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(model.name());
        })
        .expect("threads can be spawned");
    shared.threads.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(handle);
    Ok(())
}

/// Restarts a read model's worker after each failure, with a pause growing to a minute.
fn worker_loop(shared: &Arc<Shared>, model: &Arc<dyn ReadModel>) {
    let mut pause = Duration::from_secs(1);
    while !shared.stopping() {
        let started = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_worker(shared, model)));
        let error = match result {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error.to_string(),
            Err(panic) => format!("panicked: {}", panic_text(panic.as_ref())),
        };
        if shared.stopping() {
            break;
        }
        tracing::error!(read_model = model.name(), %error, "read model worker failed; restarting");
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

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Follows the log with the live generation (building the first one if there is none, and
/// starting a rebuild beside it if its version is old). Returns when asked to stop or when
/// a newer generation was promoted, so the loop follows that one.
fn run_worker(shared: &Arc<Shared>, model: &Arc<dyn ReadModel>) -> Result<(), RuntimeError> {
    let name = model.name();
    let mut connection = shared.address.connect(name)?;
    let current = connection.transaction(|tx| meta::read(tx, name))?;
    let live = match current.live {
        Some(live) => {
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
            live
        }
        None => {
            // Nothing to serve yet: build the first generation here, then follow it.
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
    shared.update(name, |status| {
        status.live = Some(live);
        status.checkpoint = checkpoint.clone();
    });
    while !shared.stopping() {
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

/// Builds a generation until it has caught up with the log's head, in transactions of up to
/// `batch` events, then promotes it and drops the generation it replaces. `progress` is told
/// the checkpoint and the head after each batch.
fn build(
    shared: &Arc<Shared>,
    model: &dyn ReadModel,
    start: BuildStart,
    batch_size: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), RuntimeError> {
    let name = model.name();
    let mut connection = shared.address.connect(name)?;
    let generation = match start {
        BuildStart::Resume(generation) => generation,
        BuildStart::Fresh => connection.transaction(|tx| meta::begin_generation(tx, model))?,
    };
    let started_at = Utc::now();
    let prefix = table_prefix(name, generation.number);
    let mut writer = model.writer(&prefix);
    let mut checkpoint = connection.read(|tx| meta::checkpoint(tx, name, generation.number))?;
    let mut source = (shared.source)(checkpoint.position)?;
    tracing::info!(read_model = name, generation = generation.number, from = checkpoint.position, "building");
    loop {
        if shared.stopping() {
            return Ok(());
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
    build(&Arc::new(shared), model, BuildStart::Fresh, OFFLINE_BUILD_BATCH, progress)
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
