//! Access to the read models for queries: a small pool of read connections per read model,
//! every query in one read transaction on the live generation (so it never sees a half-built
//! one), run off the async threads; and replays to a past instant for `as_of` queries.
//!
//! A read model its worker here has taken out of service (its store damaged, or its live
//! generation ahead of the log) answers `UNAVAILABLE` naming it and the fault
//! (`READ_MODEL_DAMAGED`, `READ_MODEL_AHEAD_OF_LOG`) until a generation rebuilt from the log is
//! switched in; a query that finds the store damaged itself answers so and tells the
//! supervisor, whose worker sets the store aside. Connections opened before a fault was
//! contained may be open on a file since moved aside, and are not used again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tonic::Status;
use tousu_projection::meta::Checkpoint;
use tousu_projection::replay::{REPLAY_PREFIX, replay};
use tousu_projection::{
    Fault, ReadModel, ReadStoreAddress, Readiness, SourceFactory, SqlConnection, SqlError, SqlTx, Supervisor, meta,
};

use crate::status::read_model_unavailable;

/// Every read model of tousu, in the order their workers start.
pub fn read_models() -> Vec<Arc<dyn ReadModel>> {
    vec![
        Arc::new(tousu_read_leads::LeadsModel),
        Arc::new(tousu_read_overdue::OverdueModel),
        Arc::new(tousu_read_watchlist::Watchlist),
        Arc::new(tousu_read_weekly_summary::WeeklySummaryModel),
        Arc::new(tousu_read_bulletin::BulletinModel),
    ]
}

/// Connections per read model: at most this many of its queries run at once, the others wait
/// for a connection rather than open one (opening one reads the file's schema anew).
const POOL: usize = 8;

/// How long a query waits, on a server that has just started, for its read model's worker to
/// check the live generation against the log (it takes milliseconds) before answering that it
/// cannot read it yet.
const CHECK_WAIT: Duration = Duration::from_secs(2);

/// The read models a server queries.
pub struct ReadModels {
    address: ReadStoreAddress,
    models: Vec<Arc<dyn ReadModel>>,
    /// Idle connections, each with the epoch it was opened in ([`Readiness::Ready`]).
    pools: HashMap<&'static str, Mutex<Vec<(u64, SqlConnection)>>>,
    permits: HashMap<&'static str, Arc<tokio::sync::Semaphore>>,
    supervisor: Option<Arc<Supervisor>>,
    log: SourceFactory,
}

fn unavailable(name: &str, error: impl std::fmt::Display) -> Status {
    read_model_unavailable(name, "unavailable", format!("read model {name} is not available: {error}"))
}

/// The status of a read model taken out of service until it is rebuilt from the log.
fn faulted(name: &str, fault: &Fault) -> Status {
    let reason = match fault {
        Fault::Damaged(_) => "read_model_damaged",
        Fault::AheadOfLog(_) => "read_model_ahead_of_log",
        _ => "unavailable",
    };
    read_model_unavailable(
        name,
        reason,
        format!("read model {name} is unavailable, {fault}; it is being rebuilt from the log: try again shortly"),
    )
}

impl ReadModels {
    /// Access to `models` in the read store at `address`; `log` serves `as_of` replays, and the
    /// supervisor (when the workers run in this process) lets a query wait for a recent write.
    pub fn new(
        address: ReadStoreAddress,
        models: Vec<Arc<dyn ReadModel>>,
        supervisor: Option<Arc<Supervisor>>,
        log: SourceFactory,
    ) -> ReadModels {
        let pools = models.iter().map(|model| (model.name(), Mutex::new(Vec::new()))).collect();
        let permits = models.iter().map(|model| (model.name(), Arc::new(tokio::sync::Semaphore::new(POOL)))).collect();
        ReadModels { address, models, pools, permits, supervisor, log }
    }

    /// The read model called `name`.
    pub fn model(&self, name: &str) -> Option<Arc<dyn ReadModel>> {
        self.models.iter().find(|model| model.name() == name).cloned()
    }

    /// A connection to read model `name` opened in `epoch`: an idle one, or a new one.
    fn take(&self, name: &'static str, epoch: u64) -> Result<SqlConnection, SqlError> {
        if let Some(pool) = self.pools.get(name) {
            let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
            // Those of an earlier epoch are dropped: they may read a file moved aside.
            while let Some((opened, connection)) = pool.pop() {
                if opened == epoch {
                    return Ok(connection);
                }
            }
        }
        // `connect` creates the runtime's tables on a server that just started, so that a query
        // finds "not built yet", not a missing table.
        self.address.connect(name)
    }

    fn give_back(&self, name: &'static str, epoch: u64, connection: SqlConnection) {
        if let Some(pool) = self.pools.get(name) {
            let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOL {
                pool.push((epoch, connection));
            }
        }
    }

    /// The epoch in which queries may read read model `name` now: waits, a little, for a worker
    /// that has just started to check its live generation against the log, and refuses a read
    /// model taken out of service.
    async fn admit(&self, name: &str) -> Result<u64, Status> {
        let Some(supervisor) = &self.supervisor else { return Ok(0) };
        let until = Instant::now() + CHECK_WAIT;
        loop {
            match supervisor.readiness(name) {
                Readiness::Ready { epoch } => return Ok(epoch),
                Readiness::Faulted(fault) => return Err(faulted(name, &fault)),
                Readiness::Checking if Instant::now() >= until => {
                    return Err(unavailable(name, "its worker is checking it against the log; try again shortly"));
                }
                Readiness::Checking => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    /// The status of a query of read model `name` that failed on a connection of `epoch`. A
    /// damaged store is reported to the supervisor, which takes the read model out of service
    /// and rebuilds it.
    fn failed(&self, name: &'static str, epoch: u64, error: SqlError) -> Status {
        if !error.is_damage() {
            return unavailable(name, error);
        }
        tracing::error!(read_model = name, %error, "a query found the read store damaged");
        if let Some(supervisor) = &self.supervisor {
            supervisor.report_damage(name, epoch, error.to_string());
        }
        faulted(name, &Fault::Damaged(error.to_string()))
    }

    /// Waits, at most `timeout`, until the read model has applied the log up to `position`:
    /// a client that just wrote sees its write. Without in-process workers it does not wait.
    pub async fn wait_for(&self, name: &str, position: u64, timeout: Duration) {
        let Some(supervisor) = &self.supervisor else { return };
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            // A read model out of service does not catch up: the query answers so at once.
            if matches!(supervisor.readiness(name), Readiness::Faulted(_)) {
                return;
            }
            let caught_up = supervisor
                .status()
                .iter()
                .find(|status| status.name == name)
                .is_some_and(|status| status.checkpoint.position >= position);
            if caught_up {
                return;
            }
            // The worker applies what it has gathered instead of letting more gather.
            supervisor.hurry(name);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Runs `query` on the live generation of read model `name`, in one read transaction;
    /// answers with the generation's checkpoint, read in that transaction, so that it
    /// describes exactly the state the query saw.
    pub async fn query<T: Send + 'static>(
        self: &Arc<Self>,
        name: &'static str,
        query: impl FnOnce(&mut dyn SqlTx, &str) -> Result<T, SqlError> + Send + 'static,
    ) -> Result<(T, Checkpoint), Status> {
        let this = self.clone();
        let epoch = self.admit(name).await?;
        let permit = match self.permits.get(name) {
            Some(permits) => Some(permits.clone().acquire_owned().await.map_err(|_| unavailable(name, "closed"))?),
            None => None,
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut connection = this.take(name, epoch).map_err(|error| this.failed(name, epoch, error))?;
            let result = connection.read(|tx| -> Result<Result<(T, Checkpoint), Status>, SqlError> {
                match meta::live(tx, name)? {
                    Some(live) => Ok(Ok((query(tx, &live.prefix)?, live.checkpoint))),
                    None => Ok(Err(unavailable(name, "it is being built for the first time; try again shortly"))),
                }
            });
            match result {
                Ok(answer) => {
                    this.give_back(name, epoch, connection);
                    answer
                }
                Err(error) => Err(this.failed(name, epoch, error)),
            }
        })
        .await
        .map_err(|error| Status::internal(format!("query task failed: {error}")))?
    }

    /// Runs `query` on read model `name` as it stood at `until`, replayed from the log into
    /// memory (slow: it reads the log from the start up to `until`); answers with the
    /// replay's checkpoint, the last event it applied.
    pub async fn query_as_of<T: Send + 'static>(
        self: &Arc<Self>,
        name: &'static str,
        until: DateTime<Utc>,
        query: impl FnOnce(&mut dyn SqlTx, &str) -> Result<T, SqlError> + Send + 'static,
    ) -> Result<(T, Checkpoint), Status> {
        let model = self.model(name).ok_or_else(|| Status::not_found(format!("no read model {name}")))?;
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || {
            let mut source = log(0).map_err(|error| Status::unavailable(error.to_string()))?;
            let replayed = replay(model.as_ref(), source.as_mut(), until)
                .map_err(|error| Status::internal(format!("replay of {name} failed: {error}")))?;
            let mut connection = replayed.connection;
            let answer = connection
                .read(|tx| query(tx, REPLAY_PREFIX))
                .map_err(|error| Status::internal(format!("query of the replayed {name} failed: {error}")))?;
            Ok((answer, replayed.checkpoint))
        })
        .await
        .map_err(|error| Status::internal(format!("replay task failed: {error}")))?
    }
}
