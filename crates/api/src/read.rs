//! Access to the read models for queries: a small pool of read connections per read model,
//! every query in one read transaction on the live generation (so it never sees a half-built
//! one), run off the async threads; and replays to a past instant for `as_of` queries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tonic::Status;
use tousu_projection::meta::Checkpoint;
use tousu_projection::replay::{REPLAY_PREFIX, replay};
use tousu_projection::{ReadModel, ReadStoreAddress, SourceFactory, SqlConnection, SqlError, SqlTx, Supervisor, meta};

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
/// for a connection rather than open one (opening maps the file and reads its schema anew).
const POOL: usize = 8;

/// The read models a server queries.
pub struct ReadModels {
    address: ReadStoreAddress,
    models: Vec<Arc<dyn ReadModel>>,
    pools: HashMap<&'static str, Mutex<Vec<SqlConnection>>>,
    permits: HashMap<&'static str, Arc<tokio::sync::Semaphore>>,
    supervisor: Option<Arc<Supervisor>>,
    log: SourceFactory,
}

fn unavailable(name: &str, error: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("read model {name} is not available: {error}"))
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

    fn take(&self, name: &'static str) -> Result<SqlConnection, Status> {
        let pooled = self.pools.get(name).and_then(|pool| pool.lock().unwrap_or_else(|p| p.into_inner()).pop());
        match pooled {
            Some(connection) => Ok(connection),
            None => {
                // `connect` creates the runtime's tables on a server that just started, so that a
                // query finds "not built yet", not a missing table.
                self.address.connect(name).map_err(|error| unavailable(name, error))
            }
        }
    }

    fn give_back(&self, name: &'static str, connection: SqlConnection) {
        if let Some(pool) = self.pools.get(name) {
            let mut pool = pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOL {
                pool.push(connection);
            }
        }
    }

    /// Waits, at most `timeout`, until the read model has applied the log up to `position`:
    /// a client that just wrote sees its write. Without in-process workers it does not wait.
    pub async fn wait_for(&self, name: &str, position: u64, timeout: Duration) {
        let Some(supervisor) = &self.supervisor else { return };
        let until = Instant::now() + timeout;
        while Instant::now() < until {
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
        let permit = match self.permits.get(name) {
            Some(permits) => Some(permits.clone().acquire_owned().await.map_err(|_| unavailable(name, "closed"))?),
            None => None,
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut connection = this.take(name)?;
            let result = connection.read(|tx| -> Result<Result<(T, Checkpoint), Status>, SqlError> {
                match meta::live(tx, name)? {
                    Some(live) => Ok(Ok((query(tx, &live.prefix)?, live.checkpoint))),
                    None => Ok(Err(Status::unavailable(format!(
                        "read model {name} is being built for the first time; try again shortly"
                    )))),
                }
            });
            match result {
                Ok(answer) => {
                    this.give_back(name, connection);
                    answer
                }
                Err(error) => Err(unavailable(name, error)),
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
