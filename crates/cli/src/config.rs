//! The server's configuration: command-line flags, then `TOUSU_*` environment variables, then
//! a TOML file (`--config`), then the embedded defaults, in that order of precedence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde::Deserialize;

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
    /// The file holding the secret that keys complainant identity hashes.
    pub identity_secret_file: Option<PathBuf>,
    /// Seconds calls in flight may take to finish after a stop signal.
    pub shutdown_grace_seconds: Option<u64>,
    /// Where the read models live: a directory for SQLite files, or a postgres:// URL.
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
        {
            let mut path = PathBuf::from(&*read_store);
            resolve(&mut path);
            *read_store = path.display().to_string();
        }
        config.identity_secret_file.iter_mut().for_each(resolve);
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
    pub identity_secret_file: PathBuf,
    pub shutdown_grace: Duration,
    pub read_store: tousu_projection::ReadStoreAddress,
    pub external_projections: Vec<String>,
    pub deadline_interval: Duration,
}

/// The defaults of the embedded mode.
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_LOG: &str = "info";
