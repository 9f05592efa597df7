//! `tousu health`: asks a server's standard gRPC health service whether it serves, for
//! container health checks and scripts. Exit status 0 when it answers SERVING, 1 otherwise.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::config::DEFAULT_LISTEN;

/// Arguments of `tousu health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// The server to ask (`host:port`) [default: 127.0.0.1:50051].
    #[arg(long, env = "TOUSU_SERVER", value_name = "ADDR")]
    server: Option<String>,
    /// The service to ask about; the whole server when empty.
    #[arg(long, default_value = "")]
    service: String,
    /// Seconds to wait for the answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    timeout: u64,
}

pub fn run(args: &HealthArgs) -> Result<()> {
    let address = args.server.clone().unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let url = if address.contains("://") { address.clone() } else { format!("http://{address}") };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")?;
    let status = runtime.block_on(async {
        let endpoint = Endpoint::from_shared(url.clone())
            .with_context(|| format!("server address {address:?} is not valid"))?
            .connect_timeout(timeout)
            .timeout(timeout);
        let channel = endpoint.connect().await.with_context(|| format!("cannot connect to {url}"))?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest { service: args.service.clone() })
            .await
            .with_context(|| format!("the health service of {url} refused"))?;
        anyhow::Ok(answer.into_inner().status())
    })?;
    println!("{}", status.as_str_name());
    if status != ServingStatus::Serving {
        bail!("{url} is not serving");
    }
    Ok(())
}
