//! The server's configuration: command-line flags, then `TOUSU_*` environment variables, then
//! a TOML file (`--config`), then the embedded defaults, in that order of precedence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Deserialize;
use tousu_projection::ReadStoreAddress;

/// The configuration file. Every key is optional; unknown keys are refused so that a typo
/// never silently does nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// The data directory (event log, tokens, identity secret, checkpoints).
    pub data_dir: Option<PathBuf>,
    /// The address to listen on, e.g. `127.0.0.1:50051`.
    pub listen: Option<String>,
    /// The log filter, e.g. `info` or `info,tousu_store_embedded=debug`.
    pub log: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// The largest request or response message, in bytes.
    pub max_message_bytes: Option<usize>,
    /// The longest a call may take, in seconds.
    pub request_timeout_seconds: Option<u64>,
    /// The most connections open at once (`limits`).
    pub max_connections: Option<usize>,
    /// Seconds a new connection has for its HTTP/2 handshake.
    pub handshake_timeout_seconds: Option<u64>,
    /// Seconds a connection may stay open without a call.
    pub idle_timeout_seconds: Option<u64>,
    /// Seconds a connection may be silent before the server pings it.
    pub keepalive_interval_seconds: Option<u64>,
    /// Seconds the server waits for the answer to a ping.
    pub keepalive_timeout_seconds: Option<u64>,
    /// The most calls one connection may have open at once.
    pub max_concurrent_streams: Option<u32>,
    /// Mebibytes of folded event payloads each state cache (leads, companies) may hold.
    pub stream_cache_mib: Option<usize>,
    /// The file holding the secret that keys complainant identity hashes.
    pub identity_secret_file: Option<PathBuf>,
    /// The file holding the key that signs settled weeks' history anchors.
    pub signing_key_file: Option<PathBuf>,
    /// Seconds calls in flight may take to finish after a stop signal.
    pub shutdown_grace_seconds: Option<u64>,
    /// Where the events live: `embedded` (the log in DATA_DIR/events) or a KurrentDB
    /// connection string.
    pub store: Option<String>,
    /// Where the read models live: `sqlite` (DATA_DIR/read), a directory for SQLite files, or
    /// a postgres:// URL.
    pub read_store: Option<String>,
    /// Read models whose workers run in their own processes.
    pub external_projections: Vec<String>,
    /// Seconds between the deadline reactor's passes.
    pub deadline_interval_seconds: Option<u64>,
    /// Extra national calendar year files.
    pub calendar_years: Vec<PathBuf>,
    /// Local calendar override files.
    pub calendar_overrides: Vec<PathBuf>,
    /// A policy file.
    pub policy: Option<PathBuf>,
}

impl FileConfig {
    /// Reads a configuration file; relative paths in it are taken from the file's directory.
    pub fn read(path: &Path) -> Result<FileConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read configuration {}", path.display()))?;
        let mut config: FileConfig =
            toml::from_str(&text).with_context(|| format!("configuration {} is not valid", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        config.data_dir.iter_mut().for_each(resolve);
        if let Some(read_store) = &mut config.read_store
            && !read_store.contains("://")
            && read_store != SQLITE_KEYWORD
        {
            let mut path = PathBuf::from(&*read_store);
            resolve(&mut path);
            *read_store = path.display().to_string();
        }
        config.identity_secret_file.iter_mut().for_each(resolve);
        config.signing_key_file.iter_mut().for_each(resolve);
        config.policy.iter_mut().for_each(resolve);
        config.calendar_years.iter_mut().for_each(resolve);
        config.calendar_overrides.iter_mut().for_each(resolve);
        Ok(config)
    }
}

/// The resolved server settings.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub log: String,
    pub log_json: bool,
    pub max_message_bytes: usize,
    pub request_timeout: Duration,
    /// The connection limits, with the server's defaults for the message size and call timeout.
    pub limits: tousu_api::ServerOptions,
    pub identity_secret_file: PathBuf,
    /// Whether a new identity secret may be created beside a log that already holds events.
    pub new_identity_secret: bool,
    pub signing_key_file: PathBuf,
    /// What the application keeps of the log's state in memory.
    pub cache_limits: tousu_app::CacheLimits,
    pub shutdown_grace: Duration,
    pub store: StoreChoice,
    pub read_store: tousu_projection::ReadStoreAddress,
    pub external_projections: Vec<String>,
    pub deadline_interval: Duration,
}

/// The defaults of the embedded mode.
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_LOG: &str = "info";

/// The read store's keyword for the default: SQLite files in DATA_DIR/read.
const SQLITE_KEYWORD: &str = "sqlite";

/// Where the read models are: `sqlite` or nothing for SQLite files in DATA_DIR/read, another
/// directory, or a postgres:// URL.
pub fn read_store(text: Option<&str>, data_dir: &Path) -> Result<ReadStoreAddress> {
    match text {
        None | Some(SQLITE_KEYWORD) => Ok(ReadStoreAddress::Sqlite(data_dir.join("read"))),
        Some(text) => ReadStoreAddress::parse(text).with_context(|| format!("read store {text:?} is not valid")),
    }
}

/// Where the events are.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The embedded log in DATA_DIR/events.
    Embedded,
    /// A KurrentDB server or cluster, by its connection string.
    Kurrent(String),
}

impl std::fmt::Debug for StoreChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreChoice::Embedded => f.write_str("Embedded"),
            // The connection string may carry a password.
            StoreChoice::Kurrent(_) => f.write_str("Kurrent(..)"),
        }
    }
}

/// The schemes of KurrentDB connection strings.
const KURRENT_SCHEMES: [&str; 4] = ["esdb://", "esdb+discover://", "kurrentdb://", "kurrentdb+discover://"];

impl StoreChoice {
    /// `embedded` (or nothing) or a KurrentDB connection string.
    pub fn parse(text: Option<&str>) -> Result<StoreChoice> {
        match text {
            None | Some("embedded") => Ok(StoreChoice::Embedded),
            Some(url) if KURRENT_SCHEMES.iter().any(|scheme| url.starts_with(scheme)) => {
                Ok(StoreChoice::Kurrent(url.to_owned()))
            }
            Some(other) => {
                let shown = other.split_once('@').map_or(other, |(_, host)| host);
                anyhow::bail!(
                    "store {shown:?} is neither `embedded` nor a KurrentDB connection string ({})",
                    KURRENT_SCHEMES.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_is_embedded_by_default_or_a_kurrentdb_connection_string() {
        assert_eq!(StoreChoice::parse(None).unwrap(), StoreChoice::Embedded);
        assert_eq!(StoreChoice::parse(Some("embedded")).unwrap(), StoreChoice::Embedded);
        let url = "kurrentdb+discover://admin:changeit@cluster.local:2113?tls=false";
        assert_eq!(StoreChoice::parse(Some(url)).unwrap(), StoreChoice::Kurrent(url.to_owned()));
        assert!(!format!("{:?}", StoreChoice::parse(Some(url)).unwrap()).contains("changeit"));
        let refused = StoreChoice::parse(Some("http://admin:secret@db:2113")).unwrap_err().to_string();
        assert!(refused.contains("db:2113") && refused.contains("esdb://"), "{refused}");
        assert!(!refused.contains("secret"), "the password is not shown: {refused}");
    }

    #[test]
    fn the_read_store_keyword_sqlite_means_the_data_directory() {
        let data_dir = Path::new("/srv/tousu");
        assert_eq!(read_store(Some("sqlite"), data_dir).unwrap(), ReadStoreAddress::Sqlite(data_dir.join("read")));
        assert_eq!(read_store(None, data_dir).unwrap(), ReadStoreAddress::Sqlite(data_dir.join("read")));
        let url = "postgres://tousu@db/tousu";
        assert_eq!(read_store(Some(url), data_dir).unwrap(), ReadStoreAddress::Postgres(url.to_owned()));
        assert!(read_store(Some(""), data_dir).is_err());
    }
}
