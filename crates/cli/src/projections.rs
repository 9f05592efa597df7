//! `tousu projections status|rebuild` and `tousu worker NAME`.
//!
//! With a server running on the data directory, `status` and `rebuild` go through its local
//! admin socket (`DATA_DIR/admin.sock`): the server's workers report their state, and a rebuild
//! is built beside the live read model while queries go on. Without a server they work on the
//! data directory itself: `status` reads the read store's checkpoints, and `rebuild` builds and
//! switches each read model in this process, with a progress bar.
//!
//! `tousu worker NAME` runs one read model's worker in its own process, reading the log from a
//! running server's audit stream (or from the data directory's log when no server holds it),
//! and writing to a read store (SQLite directory or PostgreSQL URL).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use chrono::Utc;
use clap::{Args, Subcommand};
use tonic::transport::{Endpoint, Uri};
use tousu_api::client::Admin;
use tousu_api::pb;
use tousu_projection::runtime::{BuildMode, build_all_now, stored_status};
use tousu_projection::{ProjectionStatus, ReadModel, ReadStoreAddress, Supervisor};

use crate::config::DEFAULT_DATA_DIR;
use crate::log::{LogArgs, progress_bar};

/// Where the read models are.
#[derive(Debug, Clone, Args)]
pub struct ReadStoreArgs {
    /// The data directory [default: ./data].
    #[arg(long, env = "TOUSU_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The read store: `sqlite` (files in DATA_DIR/read), another directory of SQLite files,
    /// or a postgres:// URL [default: sqlite].
    #[arg(long, env = "TOUSU_READ_STORE", value_name = "sqlite|DIR|URL", hide_env_values = true)]
    read_store: Option<String>,
    /// Where the events are when no server runs on the data directory: `embedded` or a
    /// KurrentDB connection string [default: embedded].
    #[arg(long, env = "TOUSU_STORE", value_name = "embedded|URL", hide_env_values = true)]
    store: Option<String>,
}

impl ReadStoreArgs {
    /// The log, read directly (no server runs on the data directory).
    fn log(&self) -> Result<crate::log::Log> {
        LogArgs { data_dir: Some(self.data_dir()), server: None, token: None, store: self.store.clone() }.open()
    }

    fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    fn address(&self) -> Result<ReadStoreAddress> {
        crate::config::read_store(self.read_store.as_deref(), &self.data_dir())
    }
}

/// `tousu projections` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Every read model: checkpoint, lag, version, state, last error; then the calendar's
    /// warning and the reactions stuck, when there are any.
    Status {
        #[command(flatten)]
        store: ReadStoreArgs,
        #[command(flatten)]
        files: crate::settings::DomainFiles,
    },
    /// Build a read model anew beside the live one and switch to it once it has caught up.
    Rebuild {
        /// The read model (see `status`); or --all.
        #[arg(required_unless_present = "all")]
        name: Option<String>,
        /// Every read model.
        #[arg(long, conflicts_with = "name")]
        all: bool,
        #[command(flatten)]
        store: ReadStoreArgs,
    },
}

/// Arguments of `tousu worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The read model: leads, overdue-escalation, watchlist, weekly-summary or bulletin.
    name: String,
    #[command(flatten)]
    log: LogArgs,
    /// The read store: `sqlite` (files in DATA_DIR/read), another directory of SQLite files,
    /// or a postgres:// URL [default: sqlite].
    #[arg(long, env = "TOUSU_READ_STORE", value_name = "sqlite|DIR|URL", hide_env_values = true)]
    read_store: Option<String>,
}

fn model(name: &str) -> Result<Arc<dyn ReadModel>> {
    let models = tousu_api::read::read_models();
    let names: Vec<&str> = models.iter().map(|model| model.name()).collect();
    models
        .iter()
        .find(|model| model.name() == name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no read model is called {name:?}; the read models are {}", names.join(", ")))
}

/// Connects to the local admin socket of a server running on the data directory, if one is.
pub(crate) async fn local_admin(data_dir: &Path) -> Option<Admin> {
    let socket = data_dir.join("admin.sock");
    if !socket.exists() {
        return None;
    }
    // The URI is required by the API but unused: the connector dials the socket.
    let endpoint = Endpoint::try_from("http://local.admin").ok()?;
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { tokio::net::UnixStream::connect(socket).await.map(hyper_util::rt::TokioIo::new) }
        }))
        .await
        .ok()?;
    Some(tousu_api::client::admin_over(channel))
}

fn print_status(statuses: &[pb::ProjectionStatus]) {
    println!(
        "{:<19} {:>7} {:<12} {:>10} {:>12} {:>10} {:>9}  rebuild / last error",
        "read model", "version", "state", "generation", "checkpoint", "lag", "lag (s)"
    );
    for status in statuses {
        let rebuild = if status.building_generation > 0 {
            format!("building generation {} at {}", status.building_generation, status.building_checkpoint)
        } else {
            String::new()
        };
        println!(
            "{:<19} {:>7} {:<12} {:>10} {:>12} {:>10} {:>9.1}  {}{}",
            status.name,
            status.version,
            status.state,
            status.live_generation,
            status.checkpoint,
            status.lag_events,
            status.lag_seconds,
            rebuild,
            status.last_error
        );
    }
}

/// What else needs an operator: an event store refusing writes, the calendar's warning
/// (interpretation 21) and the reactions stuck, each with why.
fn print_operator_notes(answer: &pb::ListProjectionsResponse) {
    if !answer.store_refusing_writes_reason.is_empty() {
        println!(
            "\nthe event store refuses writes until the server restarts (health NOT_SERVING): {}",
            answer.store_refusing_writes_reason
        );
    }
    if !answer.calendar_warning.is_empty() {
        println!("\ncalendar: {}", answer.calendar_warning);
    }
    if !answer.stuck_reactions.is_empty() {
        println!("\n{} reaction(s) stuck, tried again until they succeed:", answer.stuck_reactions.len());
        for stuck in &answer.stuck_reactions {
            println!(
                "  {} revision {} (position {}, {}): {} attempt(s); {}",
                stuck.stream, stuck.revision, stuck.position, stuck.event_type, stuck.attempts, stuck.reason
            );
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

pub fn run(command: ProjectionsCommand) -> Result<()> {
    let runtime = runtime()?;
    match command {
        ProjectionsCommand::Status { store, files } => {
            if let Some(mut admin) = runtime.block_on(local_admin(&store.data_dir())) {
                let answer = runtime
                    .block_on(admin.list_projections(pb::ListProjectionsRequest {}))
                    .context("the server's admin socket refused")?
                    .into_inner();
                print_status(&answer.projections);
                print_operator_notes(&answer);
                return Ok(());
            }
            // No server: the read store's own record, against the log's head.
            let address = store.address()?;
            let log = store.log()?;
            let mut source = (log.sources)(0)?;
            let head = source.head()?;
            drop(source);
            let mut statuses = Vec::new();
            for model in tousu_api::read::read_models() {
                let status = stored_status(&address, model.as_ref(), head)?;
                statuses.push(offline_status(&status));
            }
            log.close()?;
            print_status(&statuses);
            println!("(no server runs on {}: states are as the read store records them)", store.data_dir().display());
            // Interpretation 21: the warning of the configured calendar, as the server would
            // give it today (schedules loaded into the log are shown by `tousu calendar status`).
            let today = Utc::now().with_timezone(&tousu_domain::calendar::shanghai()).date_naive();
            let warn_days = files.policy()?.calendar.warn_days_before_last_official_day;
            if let Some(warning) = files.calendar()?.schedule_warning(today, warn_days) {
                println!("\ncalendar: {warning}");
            }
            Ok(())
        }
        ProjectionsCommand::Rebuild { name, all, store } => {
            let names: Vec<String> = if all {
                tousu_api::read::read_models().iter().map(|model| model.name().to_owned()).collect()
            } else {
                vec![name.expect("clap requires a name without --all")]
            };
            for name in &names {
                model(name)?;
            }
            if let Some(mut admin) = runtime.block_on(local_admin(&store.data_dir())) {
                return runtime.block_on(rebuild_on_server(&mut admin, &names));
            }
            let address = store.address()?;
            let log = store.log()?;
            let models = names.iter().map(|name| model(name)).collect::<Result<Vec<_>>>()?;
            let started = std::time::Instant::now();
            let bar = progress_bar(0, "rebuilding");
            let mut source = (log.sources)(0)?;
            bar.set_length(source.head()?);
            drop(source);
            // One read of the log, decoded once, feeds every read model's builder.
            build_all_now(&address, &models, log.sources.clone(), BuildMode::InMemory, &mut |position, head| {
                bar.set_length(head);
                bar.set_position(position);
                // The read models are built in memory; their tables are written once the whole
                // log has been read, which on a large log takes a while of its own.
                if position >= head {
                    bar.set_message("writing tables");
                }
            })?;
            bar.finish_and_clear();
            println!("rebuilt and switched in {} in {:.1} s", names.join(", "), started.elapsed().as_secs_f64());
            log.close()
        }
    }
}

fn offline_status(status: &ProjectionStatus) -> pb::ProjectionStatus {
    pb::ProjectionStatus {
        name: status.name.clone(),
        version: status.version,
        state: if status.live.is_some() { "stopped".into() } else { "never built".into() },
        live_generation: status.live.map_or(0, |live| live.number),
        live_version: status.live.map_or(0, |live| live.version),
        checkpoint: status.checkpoint.position,
        events: status.checkpoint.events,
        head: status.head,
        lag_events: status.lag_events(),
        lag_seconds: status.lag_seconds(Utc::now()),
        building_generation: status.building.as_ref().map_or(0, |building| building.generation),
        building_checkpoint: status.building.as_ref().map_or(0, |building| building.position),
        building_started_at: None,
        last_error: String::new(),
    }
}

/// Starts the rebuilds on the server and follows them until each is switched in.
async fn rebuild_on_server(admin: &mut Admin, names: &[String]) -> Result<()> {
    let before: Vec<pb::ProjectionStatus> =
        admin.list_projections(pb::ListProjectionsRequest {}).await?.into_inner().projections;
    for name in names {
        admin
            .rebuild_projection(pb::RebuildProjectionRequest { name: name.clone() })
            .await
            .with_context(|| format!("the server refused to rebuild {name}"))?;
        let generation_before =
            before.iter().find(|status| &status.name == name).map_or(0, |status| status.live_generation);
        let bar = progress_bar(0, name);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let statuses = admin.list_projections(pb::ListProjectionsRequest {}).await?.into_inner().projections;
            let Some(status) = statuses.iter().find(|status| &status.name == name) else { bail!("{name} disappeared") };
            bar.set_length(status.head);
            bar.set_position(if status.building_generation > 0 {
                status.building_checkpoint
            } else {
                status.checkpoint
            });
            if status.building_generation == 0 && status.live_generation > generation_before {
                bar.finish_and_clear();
                println!("{name}: generation {} built and switched in on the server", status.live_generation);
                break;
            }
            if status.building_generation == 0 && !status.last_error.is_empty() {
                bar.finish_and_clear();
                bail!("{name}: the rebuild failed: {}", status.last_error);
            }
        }
    }
    Ok(())
}

/// `tousu worker NAME`: one read model's worker, until Ctrl-C or SIGTERM.
pub fn worker(args: WorkerArgs) -> Result<()> {
    let model = model(&args.name)?;
    let address = crate::config::read_store(args.read_store.as_deref(), &args.log.data_dir())?;
    let log = args.log.open()?;
    eprintln!("worker {}: reading the {} into {:?}", model.name(), log.description, address);
    let supervisor = Supervisor::start(address, vec![model], log.sources.clone());
    log.runtime.block_on(async {
        let mut ticker = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate() => break,
                _ = ticker.tick() => {
                    for status in supervisor.status() {
                        eprintln!(
                            "{}: {} at {} of {} ({} behind){}",
                            status.name,
                            status.state.as_str(),
                            status.checkpoint.position,
                            status.head,
                            status.lag_events(),
                            status.last_error.map(|error| format!("; last error: {error}")).unwrap_or_default()
                        );
                    }
                }
            }
        }
    });
    supervisor.stop();
    log.close()
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
