//! `tousu audit`: what the discipline commission runs on the history. `verify` checks every
//! stream's hash chain over the whole log; `export` writes the log as JSON lines.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use tousu_store::verify::{BrokenLink, ChainVerifier};

use crate::log::LogArgs;

/// `tousu audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of every stream over the whole log.
    Verify {
        #[command(flatten)]
        log: LogArgs,
    },
    /// Write every event as a JSON line (to standard output, or --output FILE).
    Export {
        #[command(flatten)]
        log: LogArgs,
        /// The file to write.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { log } => {
            let log = log.open()?;
            let mut verifier = ChainVerifier::new();
            let mut broken: Option<BrokenLink> = None;
            let read = log.for_each("verifying", |event| {
                if broken.is_none()
                    && let Err(link) = verifier.check(event)
                {
                    broken = Some(link);
                }
                Ok(())
            })?;
            let description = log.description.clone();
            log.close()?;
            let report = verifier.report(broken);
            match report.first_broken {
                None => {
                    println!(
                        "intact: {} events in {} streams of the {description} verify",
                        report.events_checked, report.streams_checked
                    );
                    Ok(())
                }
                Some(link) => bail!(
                    "broken after {read} events: stream {} revision {} at position {}: {:?}",
                    link.stream,
                    link.revision,
                    link.position.0,
                    link.kind
                ),
            }
        }
        AuditCommand::Export { log, output } => {
            let log = log.open()?;
            let out: Box<dyn Write> = match &output {
                Some(path) => {
                    Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
                }
                None => Box::new(std::io::stdout().lock()),
            };
            let mut out = BufWriter::new(out);
            let read = log.for_each("exporting", |event| {
                let payload: serde_json::Value = serde_json::from_slice(&event.event.payload)
                    .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&event.event.payload).into_owned()));
                let line = serde_json::json!({
                    "position": event.position.0,
                    "stream": event.stream.as_str(),
                    "revision": event.revision,
                    "id": event.event.id.to_string(),
                    "type": event.event.event_type,
                    "schema_version": event.event.schema_version,
                    "occurred_at": event.event.occurred_at.to_rfc3339(),
                    "recorded_at": event.recorded_at.to_rfc3339(),
                    "actor": {"person": event.event.actor.person, "body": event.event.actor.body, "role": event.event.actor.role},
                    "correlation_id": event.event.correlation_id.to_string(),
                    "causation_id": event.event.causation_id.to_string(),
                    "prev_hash": hex(&event.prev_hash),
                    "hash": hex(&event.hash),
                    "payload": payload,
                });
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
                Ok(())
            })?;
            out.flush()?;
            drop(out);
            log.close()?;
            eprintln!("exported {read} events");
            Ok(())
        }
    }
}
