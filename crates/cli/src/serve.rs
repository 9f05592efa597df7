//! `tousu serve`: a node (the gRPC service on the embedded store, with tousu's reactions, the
//! read models' workers and the deadline reactor) on the system clock, until SIGTERM or
//! Ctrl-C.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use chrono::DateTime;
use clap::Args;
use tousu_api::ServerOptions;
use tousu_app::tokens::TokenRegistry;
use tousu_app::{Clock, DomainSetup, ShiftedClock, SystemClock};
use tousu_domain::identity::IdentitySecret;
use tousu_domain::taxonomy::Taxonomy;
use tousu_store::EventStore;
use tousu_store_embedded::EmbeddedStore;
use tousu_store_kurrent::KurrentStore;

use crate::config::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_LOG, FileConfig, Resolved, StoreChoice};
use crate::node::{Node, NodeConfig};
use crate::settings::DomainFiles;

/// Arguments of `tousu serve`. Each flag also reads a `TOUSU_*` environment variable, and
/// falls back to the configuration file, then to the default.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see docs/operations.md).
    #[arg(long, env = "TOUSU_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data directory [default: ./data].
    #[arg(long, env = "TOUSU_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The address to listen on [default: 127.0.0.1:50051]; port 0 picks a free port.
    #[arg(long, env = "TOUSU_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// The log filter [default: info], e.g. `info,tousu_app=debug`.
    #[arg(long, env = "TOUSU_LOG", value_name = "FILTER")]
    log: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "TOUSU_LOG_JSON")]
    log_json: bool,
    /// The largest request or response message, in bytes [default: 4 MiB].
    #[arg(long, env = "TOUSU_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    max_message_bytes: Option<usize>,
    /// The longest a call may take, in seconds [default: 30].
    #[arg(long, env = "TOUSU_REQUEST_TIMEOUT_SECONDS", value_name = "SECONDS")]
    request_timeout_seconds: Option<u64>,
    /// Where the events live: `embedded` (the log in DATA_DIR/events) or a KurrentDB
    /// connection string such as `esdb://host:2113?tls=false` [default: embedded].
    #[arg(long, env = "TOUSU_STORE", value_name = "embedded|URL", hide_env_values = true)]
    store: Option<String>,
    /// Where the read models live: `sqlite` (files in DATA_DIR/read), another directory for
    /// SQLite files, or a postgres:// URL [default: sqlite].
    #[arg(long, env = "TOUSU_READ_STORE", value_name = "sqlite|DIR|URL", hide_env_values = true)]
    read_store: Option<String>,
    /// A read model whose worker runs in its own process (`tousu worker NAME`); may be
    /// repeated, or given as a comma-separated list.
    #[arg(
        long = "external-projection",
        env = "TOUSU_EXTERNAL_PROJECTIONS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    external_projections: Vec<String>,
    /// Seconds between the deadline reactor's passes [default: 60].
    #[arg(long, env = "TOUSU_DEADLINE_INTERVAL_SECONDS", value_name = "SECONDS")]
    deadline_interval_seconds: Option<u64>,
    /// Seconds calls in flight may take to finish after SIGTERM or Ctrl-C [default: 10].
    #[arg(long, env = "TOUSU_SHUTDOWN_GRACE_SECONDS", value_name = "SECONDS")]
    shutdown_grace_seconds: Option<u64>,
    /// Run the business clock from this instant (RFC 3339) instead of now, at real speed: a
    /// rehearsal of a future date on a data directory of its own. Every event records the
    /// shifted time; never use it on a production data directory.
    #[arg(long, env = "TOUSU_CLOCK_START", value_name = "INSTANT")]
    clock_start: Option<String>,
    /// The secret keying complainant identity hashes [default: DATA_DIR/identity.key, created
    /// on first start].
    #[arg(long, env = "TOUSU_IDENTITY_SECRET_FILE", value_name = "FILE")]
    identity_secret_file: Option<PathBuf>,
    #[command(flatten)]
    files: DomainFiles,
}

impl ServeArgs {
    fn resolve(&self) -> Result<(Resolved, DomainFiles)> {
        let file = match &self.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let data_dir = self.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let listen_text = self.listen.clone().or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().with_context(|| format!("listen address {listen_text:?} is not IP:PORT"))?;
        let log_json = self.log_json
            || match file.log_format.as_deref() {
                None | Some("text") => false,
                Some("json") => true,
                Some(other) => bail!("log_format {other:?} is neither text nor json"),
            };
        let identity_secret_file = self
            .identity_secret_file
            .clone()
            .or(file.identity_secret_file)
            .unwrap_or_else(|| data_dir.join("identity.key"));
        let mut files = self.files.clone();
        if files.calendar_years.is_empty() {
            files.calendar_years = file.calendar_years;
        }
        if files.calendar_overrides.is_empty() {
            files.calendar_overrides = file.calendar_overrides;
        }
        if files.policy.is_none() {
            files.policy = file.policy;
        }
        let resolved = Resolved {
            data_dir: data_dir.clone(),
            listen,
            log: self.log.clone().or(file.log).unwrap_or_else(|| DEFAULT_LOG.to_owned()),
            log_json,
            max_message_bytes: self.max_message_bytes.or(file.max_message_bytes).unwrap_or(4 * 1024 * 1024),
            request_timeout: Duration::from_secs(
                self.request_timeout_seconds.or(file.request_timeout_seconds).unwrap_or(30),
            ),
            identity_secret_file,
            store: StoreChoice::parse(self.store.as_deref().or(file.store.as_deref()))?,
            read_store: crate::config::read_store(
                self.read_store.as_deref().or(file.read_store.as_deref()),
                &data_dir,
            )?,
            external_projections: external_projections(if self.external_projections.is_empty() {
                file.external_projections
            } else {
                self.external_projections.clone()
            })?,
            deadline_interval: Duration::from_secs(
                self.deadline_interval_seconds.or(file.deadline_interval_seconds).unwrap_or(60).max(1),
            ),
            shutdown_grace: Duration::from_secs(
                self.shutdown_grace_seconds.or(file.shutdown_grace_seconds).unwrap_or(10),
            ),
        };
        Ok((resolved, files))
    }
}

/// The external read models, each a read model's name (blanks from a comma-separated list
/// left out).
fn external_projections(names: Vec<String>) -> Result<Vec<String>> {
    let known: Vec<&'static str> = tousu_api::read::read_models().iter().map(|model| model.name()).collect();
    let mut external = Vec::new();
    for name in names.into_iter().map(|name| name.trim().to_owned()).filter(|name| !name.is_empty()) {
        if !known.contains(&name.as_str()) {
            bail!("external projection {name:?} is not a read model; the read models are {}", known.join(", "));
        }
        if !external.contains(&name) {
            external.push(name);
        }
    }
    Ok(external)
}

fn init_logging(filter: &str, json: bool) -> Result<()> {
    let targets: tracing_subscriber::filter::Targets =
        filter.parse().with_context(|| format!("log filter {filter:?} is not valid"))?;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let registry = tracing_subscriber::registry().with(targets);
    if json {
        registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).try_init()
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        registry.with(tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr)).try_init()
    }
    .context("logging already initialised")
}

/// Reads the identity secret, creating a random one (readable by the owner only) on the
/// first start.
fn identity_secret(path: &Path) -> Result<IdentitySecret> {
    match fs::read(path) {
        Ok(bytes) if bytes.len() >= 16 => Ok(IdentitySecret::new(bytes)),
        Ok(_) => bail!("identity secret {} is shorter than 16 bytes", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|error| anyhow::anyhow!("no randomness from the system: {error}"))?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create identity secret {}", path.display()))?;
            file.write_all(&secret)?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "created a new identity secret; back it up with the data");
            Ok(IdentitySecret::new(secret.to_vec()))
        }
        Err(error) => Err(error).with_context(|| format!("cannot read identity secret {}", path.display())),
    }
}

async fn shutdown_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}

pub fn run(args: ServeArgs) -> Result<()> {
    let (config, files) = args.resolve()?;
    let clock: Arc<dyn Clock> = match &args.clock_start {
        None => Arc::new(SystemClock),
        Some(text) => {
            let start = DateTime::parse_from_rfc3339(text).with_context(|| {
                format!("--clock-start {text:?} is not an RFC 3339 instant such as 2027-01-04T09:00:00+08:00")
            })?;
            Arc::new(ShiftedClock::starting_at(start))
        }
    };
    init_logging(&config.log, config.log_json)?;
    if let Some(start) = &args.clock_start {
        tracing::warn!(start = %start, "the business clock is shifted: every event records the shifted time (a rehearsal, not a production run)");
    }
    fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let domain = DomainSetup::new(
        files.calendar()?,
        files.policy()?,
        Taxonomy::builtin().context("the shipped taxonomy is not valid")?,
        identity_secret(&config.identity_secret_file)?,
    );
    let tokens = Arc::new(TokenRegistry::open(&config.data_dir).context("cannot read the token file")?);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    let node_config = NodeConfig {
        data_dir: config.data_dir.clone(),
        listen: config.listen,
        server: ServerOptions { max_message_bytes: config.max_message_bytes, request_timeout: config.request_timeout },
        read_store: config.read_store.clone(),
        external_projections: config.external_projections.clone(),
        deadline_interval: Some(config.deadline_interval),
        shutdown_grace: config.shutdown_grace,
    };
    match &config.store {
        StoreChoice::Embedded => {
            let events_dir = config.data_dir.join("events");
            let store = EmbeddedStore::open(&events_dir)
                .with_context(|| format!("cannot open the event log in {}", events_dir.display()))?;
            if let Some(torn) = &store.recovery().torn_tail {
                tracing::warn!(
                    ?torn,
                    "the log's last write was cut short by a crash; the unacknowledged tail was dropped"
                );
            }
            runtime.block_on(serve_until_stopped(node_config, store, domain, tokens, clock))
        }
        StoreChoice::Kurrent(url) => runtime.block_on(async {
            let store = KurrentStore::connect(url).await.context("cannot connect to the KurrentDB event store")?;
            tracing::info!(prefix = store.stream_prefix(), "connected to the KurrentDB event store");
            serve_until_stopped(node_config, store, domain, tokens, clock).await
        }),
    }
}

/// Runs a node on `store` until SIGTERM or Ctrl-C, then stops it gracefully.
async fn serve_until_stopped<S: EventStore + 'static>(
    config: NodeConfig,
    store: S,
    domain: DomainSetup,
    tokens: Arc<TokenRegistry>,
    clock: Arc<dyn Clock>,
) -> Result<()> {
    let data_dir = config.data_dir.clone();
    let node = Node::start(config, store, domain, tokens, clock).await?;
    tracing::info!(address = %node.address, data_dir = %data_dir.display(), "tousu listening");
    println!("tousu listening on {}", node.address);
    shutdown_signal().await;
    node.stop().await
}
