//! Reading the log for the command-line tools: the embedded store of a data directory when
//! no server holds it, a running server's audit stream with a token, or KurrentDB directly.
//! Either way the tool reads up to the head it saw when it started, with a progress bar on
//! standard error. The audit tools open the embedded log read-only
//! ([`LogArgs::open_read_only`]): they change no byte of the evidence they check, and a torn
//! tail is left in place and reported rather than cut.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tousu_projection::{SourceFactory, StoreSource};
use tousu_store::{EventStore, RecordedEvent};
use tousu_store_embedded::{EmbeddedStore, OpenError, TornTail};
use tousu_store_kurrent::KurrentStore;

use crate::config::{DEFAULT_DATA_DIR, StoreChoice};

/// Where a tool reads the log.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// The data directory whose log to read when no server runs on it [default: ./data].
    #[arg(long, env = "TOUSU_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Read from a running server instead (`host:port`), with `--token`.
    #[arg(long, env = "TOUSU_SERVER", value_name = "ADDR")]
    pub server: Option<String>,
    /// A token of an auditor or system principal, for `--server`.
    #[arg(long, env = "TOUSU_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Where the events are when no `--server` is given: `embedded` (the log in
    /// DATA_DIR/events) or a KurrentDB connection string [default: embedded].
    #[arg(long, env = "TOUSU_STORE", value_name = "embedded|URL", hide_env_values = true)]
    pub store: Option<String>,
}

/// The store a tool opened itself, closed when it is done.
enum Opened {
    Embedded(Arc<EmbeddedStore>),
    Kurrent(KurrentStore),
    /// Read through a server.
    Nothing,
}

/// An open log: the runtime that drives it and a factory of sources over it.
pub struct Log {
    pub runtime: tokio::runtime::Runtime,
    pub sources: SourceFactory,
    store: Opened,
    pub description: String,
    /// The torn tail at the end of an embedded log opened read-only, left in place and unread.
    pub torn_tail: Option<TornTail>,
}

impl LogArgs {
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// Opens the log; an embedded log is recovered as a server would (a torn tail is cut).
    pub fn open(&self) -> Result<Log> {
        self.open_in(false)
    }

    /// Opens the log changing nothing: an embedded log is opened read-only.
    pub fn open_read_only(&self) -> Result<Log> {
        self.open_in(true)
    }

    fn open_in(&self, read_only: bool) -> Result<Log> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        if let Some(server) = &self.server {
            let Some(token) = &self.token else { bail!("--server needs --token (an auditor or system token)") };
            let client = runtime.block_on(tousu_api::client::connect(server, token))?;
            let sources = tousu_api::client::remote_source_factory(runtime.handle().clone(), client);
            return Ok(Log {
                runtime,
                sources,
                store: Opened::Nothing,
                description: format!("server {server}"),
                torn_tail: None,
            });
        }
        if let StoreChoice::Kurrent(url) = StoreChoice::parse(self.store.as_deref())? {
            let store =
                runtime.block_on(KurrentStore::connect(&url)).context("cannot connect to the KurrentDB event store")?;
            let sources = StoreSource::factory(runtime.handle().clone(), Arc::new(store.clone()));
            let description = format!("KurrentDB (stream prefix {:?})", store.stream_prefix());
            return Ok(Log { runtime, sources, store: Opened::Kurrent(store), description, torn_tail: None });
        }
        let dir = self.data_dir().join("events");
        let opened = if read_only { EmbeddedStore::open_read_only(&dir) } else { EmbeddedStore::open(&dir) };
        let store = match opened {
            Ok(store) => Arc::new(store),
            Err(OpenError::Locked { .. }) => bail!(
                "the event log in {} is held by a running server: read through it with --server ADDR --token TOKEN",
                dir.display()
            ),
            Err(error) => return Err(error).with_context(|| format!("cannot open the event log in {}", dir.display())),
        };
        let torn_tail = store.recovery().torn_tail.clone().filter(|_| read_only);
        let sources = StoreSource::factory(runtime.handle().clone(), store.clone());
        Ok(Log {
            runtime,
            sources,
            store: Opened::Embedded(store),
            description: format!("log {}", dir.display()),
            torn_tail,
        })
    }
}

impl Log {
    /// Calls `each` with every event up to the head seen at the start, in order, showing
    /// progress; returns the number of events read.
    pub fn for_each(&self, label: &str, mut each: impl FnMut(&RecordedEvent) -> Result<()>) -> Result<u64> {
        let mut source = (self.sources)(0)?;
        let head = source.head()?;
        let bar = progress_bar(head, label);
        let mut read = 0u64;
        let mut position = 0u64;
        while position < head {
            let batch = source.next_batch(4096)?;
            for event in &batch {
                if event.position.0 > head {
                    break;
                }
                each(event)?;
                read += 1;
                position = event.position.0;
            }
            bar.set_position(position);
        }
        bar.finish_and_clear();
        Ok(read)
    }

    /// Closes the store the tool opened, if it opened one.
    pub fn close(self) -> Result<()> {
        match self.store {
            Opened::Embedded(store) => {
                self.runtime.block_on(store.close()).context("the event log did not close cleanly")
            }
            Opened::Kurrent(store) => self.runtime.block_on(store.close()).context("the KurrentDB store did not close"),
            Opened::Nothing => Ok(()),
        }
    }
}

/// A progress bar to `total` positions on standard error, with events per second and time
/// left; hidden when standard error is not a terminal.
pub fn progress_bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} events  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
