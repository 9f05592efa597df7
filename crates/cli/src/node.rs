//! A running tousu node, wired together: the event store (the embedded log or KurrentDB), the application, tousu's
//! reactions, the read models' workers, the deadline reactor, the gRPC server and the local
//! admin socket. `tousu serve` runs one on the system clock; `tousu simulate` runs one on a
//! clock it moves itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::{DateTime, FixedOffset, NaiveDate};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tousu_api::ServerOptions;
use tousu_api::read::ReadModels;
use tousu_app::deadlines::{DeadlineReactor, DueEscalation, EscalationSource, ProvisionalDue};
use tousu_app::reactions::Reactor;
use tousu_app::tokens::TokenRegistry;
use tousu_app::{App, Clock, DomainSetup};
use tousu_domain::calendar::Calendar;
use tousu_domain::ids::Uscc;
use tousu_domain::policy::Policy;
use tousu_domain::weekly_report::OverdueMatter;
use tousu_projection::{
    ReadModel, ReadStoreAddress, Readiness, SourceError, SqlConnection, StoreSource, Supervisor, meta,
};
use tousu_read_weekly_summary::signing::AnchorSigner;
use tousu_store::EventStore;
use tousu_store_embedded::EmbeddedStore;

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The gRPC address.
    pub listen: SocketAddr,
    /// Message size and call limits.
    pub server: ServerOptions,
    /// Where the read models live.
    pub read_store: ReadStoreAddress,
    /// Read models whose workers run in their own processes (`tousu worker`), not here.
    pub external_projections: Vec<String>,
    /// How often the deadline reactor looks; `None` leaves passes to the caller.
    pub deadline_interval: Option<Duration>,
    /// How long calls in flight may take to finish when the node stops.
    pub shutdown_grace: Duration,
    /// The key that signs settled weeks' history anchors served with the weekly summary.
    pub anchor_signer: Option<Arc<AnchorSigner>>,
    /// What the application keeps of the log's state in memory.
    pub cache_limits: tousu_app::CacheLimits,
}

/// The deadline reactor's candidates: the live overdue read model, and the companies the
/// watchlist knows; lateness is judged with the calendar in force. A read model its worker has
/// taken out of service (damaged, or ahead of the log) is not asked, and a connection opened
/// before that is not used again (`Readiness`).
struct ReadModelCandidates {
    address: ReadStoreAddress,
    supervisor: Arc<Supervisor>,
    overdue: Mutex<Option<(u64, SqlConnection)>>,
    watchlist: Mutex<Option<(u64, SqlConnection)>>,
    weekly: Mutex<Option<(u64, SqlConnection)>>,
    calendar: Arc<dyn Fn() -> Arc<Calendar> + Send + Sync>,
    policy: Policy,
}

impl ReadModelCandidates {
    fn with<T>(
        &self,
        slot: &Mutex<Option<(u64, SqlConnection)>>,
        name: &str,
        query: impl FnOnce(&mut dyn tousu_projection::SqlTx, &str) -> Result<T, tousu_projection::SqlError>,
        none: T,
    ) -> Result<T, String> {
        let epoch = match self.supervisor.readiness(name) {
            Readiness::Ready { epoch } => epoch,
            // Not yet checked against the log (the server has just started): nothing to act on.
            Readiness::Checking => return Ok(none),
            Readiness::Faulted(fault) => return Err(format!("read model {name} is unavailable, {fault}")),
        };
        let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.as_ref().is_none_or(|(opened, _)| *opened != epoch) {
            *slot = Some((epoch, self.address.connect(name).map_err(|error| error.to_string())?));
        }
        let (_, connection) = slot.as_mut().expect("connected above");
        let result = connection.read(|tx| match meta::live_prefix(tx, name)? {
            // No live generation yet (the first build runs): nothing to act on.
            None => Ok(none),
            Some(prefix) => query(tx, &prefix),
        });
        result.map_err(|error| {
            *slot = None;
            if error.is_damage() {
                self.supervisor.report_damage(name, epoch, error.to_string());
            }
            error.to_string()
        })
    }
}

impl EscalationSource for ReadModelCandidates {
    fn due(&self, at: DateTime<FixedOffset>) -> Result<Vec<DueEscalation>, String> {
        let calendar = (self.calendar)();
        let rows = self.with(
            &self.overdue,
            tousu_read_overdue::NAME,
            |tx, prefix| tousu_read_overdue::due_escalations(tx, prefix, at, &calendar, &self.policy),
            Vec::new(),
        )?;
        Ok(rows
            .into_iter()
            .map(|row| DueEscalation { stream: row.stream, seq: row.seq, due: row.due, level: row.level })
            .collect())
    }

    fn provisional(&self, official_years: &[i32]) -> Result<Vec<ProvisionalDue>, String> {
        let rows = self.with(
            &self.overdue,
            tousu_read_overdue::NAME,
            |tx, prefix| tousu_read_overdue::provisional_candidates(tx, prefix, official_years),
            Vec::new(),
        )?;
        Ok(rows
            .into_iter()
            .map(|row| ProvisionalDue { stream: row.stream, seq: row.seq, calendar: row.calendar })
            .collect())
    }

    fn companies(&self) -> Result<Vec<Uscc>, String> {
        let codes =
            self.with(&self.watchlist, tousu_read_watchlist::NAME, tousu_read_watchlist::companies, Vec::new())?;
        Ok(codes.into_iter().filter_map(|code| code.parse().ok()).collect())
    }

    fn week_summary(&self, week_start: NaiveDate) -> Result<Option<serde_json::Value>, String> {
        let end = tousu_domain::weekly_report::week_end(week_start);
        let summary = self.with(
            &self.weekly,
            tousu_read_weekly_summary::NAME,
            |tx, prefix| tousu_read_weekly_summary::week(tx, prefix, week_start, None, end).map(Some),
            None,
        )?;
        summary.map(|summary| serde_json::to_value(summary).map_err(|error| error.to_string())).transpose()
    }

    fn overdue_at(&self, at: DateTime<FixedOffset>) -> Result<Option<Vec<OverdueMatter>>, String> {
        let calendar = (self.calendar)();
        let rows = self.with(
            &self.overdue,
            tousu_read_overdue::NAME,
            |tx, prefix| {
                let filter = tousu_read_overdue::OverdueFilter::default();
                tousu_read_overdue::overdue(tx, prefix, at, &filter, &calendar, &self.policy, 0, u64::MAX)
                    .map(|(rows, _)| Some(rows))
            },
            None,
        )?;
        Ok(rows.map(|rows| rows.iter().map(overdue_matter).collect()))
    }
}

/// An obligation overdue at a week's end as the issued summary lists it (interpretation 26).
fn overdue_matter(row: &tousu_read_overdue::OverdueRow) -> OverdueMatter {
    OverdueMatter {
        stream: row.stream.clone(),
        seq: row.seq,
        lead: match &row.subject {
            tousu_read_overdue::Subject::Lead(lead) => lead.to_string(),
            tousu_read_overdue::Subject::Company(_) => String::new(),
        },
        company: row.company.clone(),
        body: row.body,
        kind: row.kind,
        due: row.due,
        days_late: row.lateness.map(|lateness| lateness.days),
        working_days: row
            .lateness
            .is_some_and(|lateness| lateness.unit == tousu_read_overdue::LatenessUnit::WorkingDays),
        rung: row.recorded_levels.iter().max().copied(),
        provisional: row.provisional,
    }
}

/// A running node, on the embedded store unless told otherwise.
pub struct Node<S: EventStore + 'static = EmbeddedStore> {
    /// The gRPC address it listens on.
    pub address: SocketAddr,
    /// The application, for in-process drivers (the simulation).
    pub app: Arc<App<S>>,
    /// The read models' workers.
    pub supervisor: Arc<Supervisor>,
    /// The deadline reactor, for callers that drive its passes.
    pub deadlines: Arc<DeadlineReactor<S>>,
    store: Arc<S>,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<(), tousu_api::server::ServeError>>,
    background: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl<S: EventStore + 'static> Node<S> {
    /// Starts a node on an opened store.
    pub async fn start(
        config: NodeConfig,
        store: S,
        domain: DomainSetup,
        tokens: Arc<TokenRegistry>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let store = Arc::new(store);
        let policy = domain.policy.clone();
        let app = App::with_cache_limits(store.clone(), domain, clock, config.cache_limits);
        // Interpretation 21: the holiday schedules loaded into the log while a node ran are in
        // force before the first decision.
        let restored = app.restore_calendar_years().await.context("the holiday schedules in the log")?;
        if !restored.is_empty() {
            tracing::info!(years = ?restored, "official holiday schedules recorded in the log put in force");
        }
        let calendar_app = app.clone();
        let calendar: Arc<dyn Fn() -> Arc<Calendar> + Send + Sync> = Arc::new(move || calendar_app.calendar());
        let runtime = tokio::runtime::Handle::current();
        let source = StoreSource::factory(runtime.clone(), store.clone());
        let is_external =
            |model: &Arc<dyn ReadModel>| config.external_projections.iter().any(|name| name == model.name());
        let (external, models): (Vec<_>, Vec<_>) = tousu_api::read::read_models().into_iter().partition(is_external);
        let supervisor = Arc::new(Supervisor::start(config.read_store.clone(), models, source.clone()));
        if !external.is_empty() {
            let (runtime, store) = (runtime.clone(), store.clone());
            supervisor.observe_external(external, move || {
                let head = runtime.block_on(store.head()).map_err(|error| SourceError::Failed(error.to_string()))?;
                Ok(head.map_or(0, |position| position.0))
            });
        }
        let read_models = Arc::new(ReadModels::new(
            config.read_store.clone(),
            tousu_api::read::read_models(),
            Some(supervisor.clone()),
            source,
        ));
        let candidates = Arc::new(ReadModelCandidates {
            address: config.read_store.clone(),
            supervisor: supervisor.clone(),
            overdue: Mutex::new(None),
            watchlist: Mutex::new(None),
            weekly: Mutex::new(None),
            calendar,
            policy,
        });
        let deadlines = Arc::new(DeadlineReactor::new(
            app.clone(),
            candidates,
            config.deadline_interval.unwrap_or(Duration::from_secs(60)),
        ));
        let mut background = Vec::new();
        let (reactor_app, checkpoint) = (app.clone(), config.data_dir.join("reactions.checkpoint"));
        background.push(tokio::spawn(async move {
            // Restarted from its checkpoint after a failure (a store that cannot be read for a
            // while), with a pause growing to a minute; it ends when the store closes.
            let mut pause = Duration::from_secs(1);
            loop {
                match Reactor::new(reactor_app.clone(), checkpoint.clone()).run().await {
                    Ok(()) => break,
                    Err(error) => {
                        tracing::error!(%error, pause_seconds = pause.as_secs(), "reactions failed; restarting");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(60));
                    }
                }
            }
        }));
        if config.deadline_interval.is_some() {
            background.push(tokio::spawn(deadlines.clone().run()));
        }
        let (stop, stopped) = watch::channel(false);
        let socket = config.data_dir.join("admin.sock");
        let admin_supervisor = supervisor.clone();
        let admin_node: Arc<dyn tousu_api::NodeOperations> = app.clone();
        let mut admin_stopped = stopped.clone();
        background.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = admin_stopped.wait_for(|stop| *stop).await;
            };
            if let Err(error) =
                tousu_api::server::serve_local_admin(&socket, admin_supervisor, admin_node, shutdown).await
            {
                tracing::warn!(%error, "local admin socket not served");
            }
        }));
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = listener.local_addr()?;
        let services = tousu_api::server::Services {
            app: app.clone(),
            tokens,
            supervisor: Some(supervisor.clone()),
            read_models,
            anchor_signer: config.anchor_signer.clone(),
        };
        let mut server_stopped = stopped;
        let shutdown = async move {
            let _ = server_stopped.wait_for(|stop| *stop).await;
        };
        let server = tokio::spawn(tousu_api::serve(services, listener, config.server, shutdown));
        Ok(Node { address, app, supervisor, deadlines, store, stop, server, background, grace: config.shutdown_grace })
    }

    /// Waits until the event store refuses writes (a write or sync of the log failed; only
    /// reopening it recovers) and says why; never completes on a store that takes writes, or
    /// on one that does not refuse them this way. Health is already NOT_SERVING by then.
    pub async fn store_refusing_writes(&self) -> String {
        let mut refusal = self.store.write_refusal();
        match refusal.wait_for(Option::is_some).await.map(|reason| reason.clone()) {
            Ok(Some(reason)) => reason,
            _ => std::future::pending().await,
        }
    }

    /// Stops the node: health NOT_SERVING, calls in flight finish (within the grace period),
    /// workers stop, the event log closes cleanly.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(true);
        let served = match tokio::time::timeout(self.grace, self.server).await {
            Ok(joined) => joined.context("the server task failed")?,
            Err(_) => {
                tracing::warn!(
                    grace_seconds = self.grace.as_secs(),
                    "calls still in flight after the grace period; stopping anyway"
                );
                Ok(())
            }
        };
        let supervisor = self.supervisor.clone();
        tokio::task::spawn_blocking(move || supervisor.stop()).await.context("stopping the read models' workers")?;
        tracing::info!("server stopped; closing the event log");
        self.store.close().await.context("the event log did not close cleanly")?;
        for task in self.background {
            task.abort();
        }
        served.context("the server failed")?;
        tracing::info!("event log closed");
        Ok(())
    }
}
