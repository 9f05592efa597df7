//! The server's limits on connections (how many, how long a handshake or an idle connection
//! may take, keepalive, calls per connection): flags, `TOUSU_*` environment variables and keys
//! of the configuration file, resolved with the server's defaults. docs/operations.md lists
//! them in its "Limits" table.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use tousu_api::ServerOptions;

use crate::config::FileConfig;

/// The connection limits of `tousu serve`, each falling back to the configuration file, then
/// to the server's default.
#[derive(Debug, Clone, Default, Args)]
pub struct LimitArgs {
    /// The most connections open at once; beyond it a new connection replaces the oldest one
    /// still in its handshake, or is closed [default: 1000].
    #[arg(long, env = "TOUSU_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Seconds a new connection has to send the HTTP/2 preface and its first SETTINGS before
    /// it is closed [default: 10].
    #[arg(long, env = "TOUSU_HANDSHAKE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    handshake_timeout_seconds: Option<u64>,
    /// Seconds a connection may stay open without a call before it is closed [default: 300].
    #[arg(long, env = "TOUSU_IDLE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    idle_timeout_seconds: Option<u64>,
    /// Seconds a connection may be silent before the server pings it [default: 30].
    #[arg(long, env = "TOUSU_KEEPALIVE_INTERVAL_SECONDS", value_name = "SECONDS")]
    keepalive_interval_seconds: Option<u64>,
    /// Seconds the server waits for the answer to a ping before it closes the connection
    /// [default: 20].
    #[arg(long, env = "TOUSU_KEEPALIVE_TIMEOUT_SECONDS", value_name = "SECONDS")]
    keepalive_timeout_seconds: Option<u64>,
    /// The most calls one connection may have open at once [default: 200].
    #[arg(long, env = "TOUSU_MAX_CONCURRENT_STREAMS", value_name = "N")]
    max_concurrent_streams: Option<u32>,
}

/// A limit of at least one: zero connections, streams or seconds would stop the server from
/// serving anything.
fn at_least_one<T: PartialEq + From<u8> + Copy>(name: &str, value: T) -> Result<T> {
    if value == T::from(0) {
        bail!("{name} is 0; it must be at least 1");
    }
    Ok(value)
}

fn seconds(name: &str, value: Option<u64>, default: Duration) -> Result<Duration> {
    match value {
        None => Ok(default),
        Some(value) => Ok(Duration::from_secs(at_least_one(name, value)?)),
    }
}

impl LimitArgs {
    /// The server options these limits give, with `file`'s keys for what no flag or variable
    /// sets, and the defaults for the rest; the message size and call timeout are left at
    /// their defaults for the caller to set.
    pub fn resolve(&self, file: &FileConfig) -> Result<ServerOptions> {
        let defaults = ServerOptions::default();
        let max_connections = match self.max_connections.or(file.max_connections) {
            None => defaults.max_connections,
            Some(value) => at_least_one("max_connections", value)?,
        };
        let max_concurrent_streams = match self.max_concurrent_streams.or(file.max_concurrent_streams) {
            None => defaults.max_concurrent_streams,
            Some(value) => at_least_one("max_concurrent_streams", value)?,
        };
        Ok(ServerOptions {
            max_connections,
            handshake_timeout: seconds(
                "handshake_timeout_seconds",
                self.handshake_timeout_seconds.or(file.handshake_timeout_seconds),
                defaults.handshake_timeout,
            )?,
            idle_timeout: seconds(
                "idle_timeout_seconds",
                self.idle_timeout_seconds.or(file.idle_timeout_seconds),
                defaults.idle_timeout,
            )?,
            keepalive_interval: seconds(
                "keepalive_interval_seconds",
                self.keepalive_interval_seconds.or(file.keepalive_interval_seconds),
                defaults.keepalive_interval,
            )?,
            keepalive_timeout: seconds(
                "keepalive_timeout_seconds",
                self.keepalive_timeout_seconds.or(file.keepalive_timeout_seconds),
                defaults.keepalive_timeout,
            )?,
            max_concurrent_streams,
            ..defaults
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_wins_over_the_file_and_the_file_over_the_default() {
        let file: FileConfig = toml::from_str("max_connections = 50\nidle_timeout_seconds = 60").unwrap();
        let flags = LimitArgs { max_connections: Some(7), ..LimitArgs::default() };
        let options = flags.resolve(&file).unwrap();
        assert_eq!(options.max_connections, 7);
        assert_eq!(options.idle_timeout, Duration::from_secs(60));
        assert_eq!(options.handshake_timeout, ServerOptions::default().handshake_timeout);
        assert_eq!(options.max_concurrent_streams, 200);
    }

    #[test]
    fn a_limit_of_zero_is_refused_naming_it() {
        let file: FileConfig = toml::from_str("handshake_timeout_seconds = 0").unwrap();
        let refused = LimitArgs::default().resolve(&file).unwrap_err().to_string();
        assert_eq!(refused, "handshake_timeout_seconds is 0; it must be at least 1");
        let flags = LimitArgs { max_concurrent_streams: Some(0), ..LimitArgs::default() };
        assert!(flags.resolve(&FileConfig::default()).unwrap_err().to_string().contains("max_concurrent_streams"));
    }
}
