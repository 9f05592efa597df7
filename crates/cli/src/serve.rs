//! `tousu serve`: a node (the gRPC service on the embedded store, with tousu's reactions, the
//! read models' workers and the deadline reactor) on the system clock, until SIGTERM or
//! Ctrl-C, or until the event store refuses writes: then it exits with status 74, for its
//! supervisor to start it again.

use std::fs;
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
use crate::limits::LimitArgs;
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
    /// on first start; refused beside a log that already holds events, see
    /// --new-identity-secret].
    #[arg(long, env = "TOUSU_IDENTITY_SECRET_FILE", value_name = "FILE")]
    identity_secret_file: Option<PathBuf>,
    /// Create a new identity secret although the log already holds events: only when the old
    /// one is lost for good and no backup holds it. Complainants of the earlier leads will no
    /// longer match those of later ones (REG-4, GRD-1, EXT-1 count them apart).
    #[arg(long, env = "TOUSU_NEW_IDENTITY_SECRET")]
    new_identity_secret: bool,
    /// Mebibytes of event payloads each state cache (leads, companies) may hold folded into
    /// the cached states [default: 256].
    #[arg(long, env = "TOUSU_STREAM_CACHE_MIB", value_name = "MIB")]
    stream_cache_mib: Option<usize>,
    /// The Ed25519 key signing settled weeks' history anchors [default: DATA_DIR/signing.key,
    /// created on first start].
    #[arg(long, env = "TOUSU_SIGNING_KEY_FILE", value_name = "FILE")]
    signing_key_file: Option<PathBuf>,
    #[command(flatten)]
    files: DomainFiles,
    #[command(flatten)]
    limits: LimitArgs,
}

impl ServeArgs {
    fn resolve(&self) -> Result<(Resolved, DomainFiles)> {
        let file = match &self.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let limits = self.limits.resolve(&file)?;
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
        let signing_key_file = self
            .signing_key_file
            .clone()
            .or(file.signing_key_file)
            .unwrap_or_else(|| data_dir.join(crate::signing::FILE_NAME));
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
            limits,
            data_dir: data_dir.clone(),
            listen,
            log: self.log.clone().or(file.log).unwrap_or_else(|| DEFAULT_LOG.to_owned()),
            log_json,
            max_message_bytes: self.max_message_bytes.or(file.max_message_bytes).unwrap_or(4 * 1024 * 1024),
            request_timeout: Duration::from_secs(
                self.request_timeout_seconds.or(file.request_timeout_seconds).unwrap_or(30),
            ),
            identity_secret_file,
            new_identity_secret: self.new_identity_secret,
            signing_key_file,
            cache_limits: match self.stream_cache_mib.or(file.stream_cache_mib) {
                None => tousu_app::CacheLimits::default(),
                Some(0) => bail!("stream_cache_mib is 0; it must be at least 1"),
                Some(mib) => tousu_app::CacheLimits { bytes: mib.saturating_mul(1024 * 1024), ..Default::default() },
            },
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

/// Whether a new identity secret may be created where none is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NewSecret {
    /// The log holds no event: the first start.
    FirstStart,
    /// The log holds events and the operator said the old secret is lost for good.
    Accepted,
    /// The log holds events: the secret keyed their complainants, and a new one would count
    /// the same people twice, so its absence is an error.
    Refused,
}

/// Reads the identity secret, creating a random one (readable by the owner only) on the
/// first start.
fn identity_secret(path: &Path, new_secret: NewSecret) -> Result<IdentitySecret> {
    match fs::read(path) {
        Ok(bytes) if bytes.len() >= 16 => Ok(IdentitySecret::new(bytes)),
        Ok(_) => bail!("identity secret {} is shorter than 16 bytes", path.display()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && new_secret == NewSecret::Refused => bail!(
            "the identity secret {} is missing, but the log already holds events keyed with it: restore it from \
             the backup taken with the log (docs/operations.md, \"The data directory\"). Only if it is lost for \
             good, start once with --new-identity-secret: complainants of the earlier leads will then no longer \
             match those of later ones, and REG-4, GRD-1 and EXT-1 count them as different people",
            path.display()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if new_secret == NewSecret::Accepted {
                tracing::warn!(path = %path.display(), "a new identity secret beside a log that holds events, as asked: earlier complainants no longer match later ones");
            }
            let secret = crate::signing::create_random_secret(path, "identity secret")?;
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
    let (calendar, policy) = (files.calendar()?, files.policy()?);
    let taxonomy = Taxonomy::builtin().context("the shipped taxonomy is not valid")?;
    // The identity secret is read once the log is open: whether it may be created depends on
    // whether the log already holds events keyed with it.
    let domain = |log_has_events: bool| -> Result<DomainSetup> {
        let new_secret = match (log_has_events, config.new_identity_secret) {
            (false, _) => NewSecret::FirstStart,
            (true, true) => NewSecret::Accepted,
            (true, false) => NewSecret::Refused,
        };
        let secret = identity_secret(&config.identity_secret_file, new_secret)?;
        Ok(DomainSetup::new(calendar.clone(), policy.clone(), taxonomy.clone(), secret))
    };
    let tokens = Arc::new(TokenRegistry::open(&config.data_dir).context("cannot read the token file")?);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    let node_config = NodeConfig {
        data_dir: config.data_dir.clone(),
        listen: config.listen,
        server: ServerOptions {
            max_message_bytes: config.max_message_bytes,
            request_timeout: config.request_timeout,
            ..config.limits.clone()
        },
        read_store: config.read_store.clone(),
        external_projections: config.external_projections.clone(),
        deadline_interval: Some(config.deadline_interval),
        shutdown_grace: config.shutdown_grace,
        anchor_signer: Some(Arc::new(crate::signing::load_or_create(&config.signing_key_file)?)),
        cache_limits: config.cache_limits,
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
            let has_events = runtime.block_on(store.head()).context("cannot read the event log's head")?.is_some();
            let domain = domain(has_events)?;
            runtime.block_on(serve_until_stopped(node_config, store, domain, tokens, clock))
        }
        StoreChoice::Kurrent(url) => runtime.block_on(async {
            let store = KurrentStore::connect(url).await.context("cannot connect to the KurrentDB event store")?;
            tracing::info!(prefix = store.stream_prefix(), "connected to the KurrentDB event store");
            let has_events = store.head().await.context("cannot read the event log's head")?.is_some();
            let domain = domain(has_events)?;
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
    let refused = tokio::select! {
        () = shutdown_signal() => None,
        reason = node.store_refusing_writes() => Some(reason),
    };
    let Some(reason) = refused else {
        return node.stop().await;
    };
    // Only reopening the store recovers, so the process ends and its supervisor starts it
    // again; meanwhile health says NOT_SERVING and every command is UNAVAILABLE, long enough
    // for calls in flight to get their answer and for health checks to see it.
    tracing::error!(
        %reason,
        grace_seconds = REFUSING_WRITES_GRACE.as_secs(),
        exit_status = EXIT_STORE_REFUSING_WRITES,
        "the event store refuses writes until it is reopened: health is NOT_SERVING, and the process exits so that its supervisor restarts it"
    );
    tokio::select! {
        () = shutdown_signal() => {}
        () = tokio::time::sleep(REFUSING_WRITES_GRACE) => {}
    }
    if let Err(error) = node.stop().await {
        tracing::error!(error = format!("{error:#}"), "the node did not stop cleanly");
    }
    Err(StoreRefusingWrites { reason }.into())
}

/// The exit status of `tousu serve` once the event store has refused writes (`EX_IOERR` of
/// sysexits.h): the process must be started again, by its supervisor, for the store to reopen.
pub const EXIT_STORE_REFUSING_WRITES: u8 = 74;

/// How long a node whose store refuses writes goes on answering (health NOT_SERVING, every
/// command UNAVAILABLE) before it stops.
const REFUSING_WRITES_GRACE: Duration = Duration::from_secs(5);

/// Why `tousu serve` stopped on its own: the event store refused writes.
#[derive(Debug)]
pub struct StoreRefusingWrites {
    reason: String,
}

impl std::fmt::Display for StoreRefusingWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the event store refuses writes ({}); exiting with status {EXIT_STORE_REFUSING_WRITES} so that a \
             supervisor starts tousu again and the log is reopened",
            self.reason
        )
    }
}

impl std::error::Error for StoreRefusingWrites {}
