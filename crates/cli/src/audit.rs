//! `tousu audit`: what the discipline commission runs on the history. `verify` checks every
//! stream's hash chain over the whole log and every weekly history anchor sent with the weekly
//! summary (a running SHA-256 over the events' hashes, REG-3) against the log; `export` writes
//! the log as JSON lines.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use tousu_domain::reporting::{reporting_month, reporting_week};
use tousu_projection::replay::{REPLAY_PREFIX, replay};
use tousu_projection::{ReadStoreAddress, meta};
use tousu_store::hash::hex;
use tousu_store::verify::{BrokenLink, ChainVerifier};

use crate::log::LogArgs;
use crate::settings::DomainFiles;

/// `tousu audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of every stream over the whole log, and every weekly history
    /// anchor the weekly summary recorded (REG-3) against the log.
    Verify {
        #[command(flatten)]
        log: LogArgs,
        /// The read store holding the weekly summary's anchors: a directory of SQLite files or
        /// a postgres:// URL [default: DATA_DIR/read, when it exists].
        #[arg(long, env = "TOUSU_READ_STORE", value_name = "DIR|URL")]
        read_store: Option<String>,
    },
    /// The read models as they stood at a past instant, replayed from the log (JSON): the
    /// watchlist, the overdue list, the per-body dashboard, the week's summary and the month's
    /// bulletin as of that instant.
    Replay {
        #[command(flatten)]
        log: LogArgs,
        /// The instant, RFC 3339, e.g. 2026-06-30T24:00:00+08:00 is written 2026-07-01T00:00:00+08:00.
        #[arg(long, value_name = "INSTANT")]
        until: String,
        /// The file to write [default: standard output].
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        files: DomainFiles,
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

pub fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify { log, read_store } => {
            let anchors = recorded_anchors(&log, read_store.as_deref())?;
            let log = log.open()?;
            let mut verifier = ChainVerifier::new();
            let mut broken: Option<BrokenLink> = None;
            let mut anchor = tousu_read_weekly_summary::ANCHOR_ZERO;
            let mut anchors_checked = 0;
            let mut anchor_mismatch: Option<(chrono::NaiveDate, u64, String, String)> = None;
            let read = log.for_each("verifying", |event| {
                if broken.is_none()
                    && let Err(link) = verifier.check(event)
                {
                    broken = Some(link);
                }
                anchor = tousu_read_weekly_summary::anchor_step(&anchor, &event.hash);
                if let Some((week, recorded)) = anchors.get(&event.position.0) {
                    let computed = tousu_read_weekly_summary::hex(&anchor);
                    if &computed == recorded {
                        anchors_checked += 1;
                    } else if anchor_mismatch.is_none() {
                        anchor_mismatch = Some((*week, event.position.0, recorded.clone(), computed));
                    }
                }
                Ok(())
            })?;
            let description = log.description.clone();
            log.close()?;
            let report = verifier.report(broken);
            if let Some(link) = report.first_broken {
                bail!(
                    "broken after {read} events: stream {} revision {} at position {}: {:?}",
                    link.stream,
                    link.revision,
                    link.position.0,
                    link.kind
                );
            }
            if let Some((week, position, recorded, computed)) = anchor_mismatch {
                bail!(
                    "the history anchor of the week of {week} (up to position {position}) does not match the log: \
                     the weekly summary recorded {recorded}, the log gives {computed}"
                );
            }
            println!(
                "intact: {} events in {} streams of the {description} verify; {anchors_checked} of {} weekly history \
                 anchors recorded match the log",
                report.events_checked,
                report.streams_checked,
                anchors.len()
            );
            Ok(())
        }
        AuditCommand::Replay { log, until, output, files } => {
            let until = chrono::DateTime::parse_from_rfc3339(&until)
                .with_context(|| format!("--until {until:?} is not an RFC 3339 instant"))?;
            let calendar = files.calendar()?;
            let policy = files.policy()?;
            let log = log.open()?;
            let mut document = serde_json::Map::new();
            document.insert("until".into(), serde_json::Value::String(until.to_rfc3339()));
            for model in tousu_api::read::read_models() {
                let mut source = (log.sources)(0)?;
                let started = std::time::Instant::now();
                let replayed = replay(model.as_ref(), source.as_mut(), until.to_utc())?;
                eprintln!(
                    "{}: replayed {} events to position {} in {:.1} s",
                    model.name(),
                    replayed.checkpoint.events,
                    replayed.checkpoint.position,
                    started.elapsed().as_secs_f64()
                );
                document.insert("position".into(), serde_json::json!(replayed.checkpoint.position));
                let mut connection = replayed.connection;
                let value = connection.read(|tx| -> Result<serde_json::Value> {
                    let p = REPLAY_PREFIX;
                    Ok(match model.name() {
                        tousu_read_leads::NAME => serde_json::to_value(tousu_read_leads::dashboard(tx, p, until)?)?,
                        tousu_read_overdue::NAME => {
                            let filter = tousu_read_overdue::OverdueFilter::default();
                            let (rows, total) = tousu_read_overdue::overdue(
                                tx,
                                p,
                                until,
                                &filter,
                                &calendar,
                                &policy,
                                0,
                                u64::MAX >> 1,
                            )?;
                            serde_json::json!({ "total": total, "rows": rows })
                        }
                        tousu_read_watchlist::NAME => serde_json::to_value(tousu_read_watchlist::query(
                            tx,
                            p,
                            until,
                            &tousu_read_watchlist::WatchlistFilter::default(),
                            &policy,
                        )?)?,
                        tousu_read_weekly_summary::NAME => serde_json::to_value(tousu_read_weekly_summary::week(
                            tx,
                            p,
                            reporting_week(until),
                            None,
                            until,
                        )?)?,
                        tousu_read_bulletin::NAME => serde_json::to_value(tousu_read_bulletin::month(
                            tx,
                            p,
                            reporting_month(until),
                            &policy,
                            &calendar,
                        )?)?,
                        other => serde_json::json!({ "note": format!("no replay view for {other}") }),
                    })
                })?;
                document.insert(model.name().to_owned(), value);
            }
            log.close()?;
            let text = serde_json::to_string_pretty(&serde_json::Value::Object(document))?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?
                }
                None => println!("{text}"),
            }
            Ok(())
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

/// The weekly history anchors the weekly summary recorded, by the position each covers; none
/// when its read store cannot be read here (a remote log without `--read-store`).
fn recorded_anchors(log: &LogArgs, read_store: Option<&str>) -> Result<BTreeMap<u64, (chrono::NaiveDate, String)>> {
    let address = match read_store {
        Some(text) => crate::config::read_store(Some(text), &log.data_dir())?,
        None if log.server.is_none() => {
            let dir = log.data_dir().join("read");
            if !dir.join(format!("{}.sqlite", tousu_read_weekly_summary::NAME)).exists() {
                return Ok(BTreeMap::new());
            }
            ReadStoreAddress::Sqlite(dir)
        }
        None => {
            eprintln!("no --read-store given: weekly history anchors are not checked");
            return Ok(BTreeMap::new());
        }
    };
    let mut connection = address.connect(tousu_read_weekly_summary::NAME)?;
    let anchors = connection.read(|tx| match meta::live_prefix(tx, tousu_read_weekly_summary::NAME)? {
        Some(prefix) => tousu_read_weekly_summary::anchors(tx, &prefix),
        None => Ok(Vec::new()),
    })?;
    Ok(anchors.into_iter().map(|(week, position, sha)| (position, (week, sha))).collect())
}
