//! `tousu audit`: what the discipline commission runs on the history. `verify` checks every
//! stream's hash chain over the whole log, every weekly history anchor sent with the weekly
//! summary (a running SHA-256 over the events' hashes, REG-3) against the log, and with
//! `--anchors` every signed anchor of a file the commission kept; `anchors` writes that file;
//! `key` prints the public key that checks its signatures; `export` writes the log as JSON
//! lines; `replay` the read models as of an instant.
//!
//! The tools open an embedded log read-only: they change no byte of what they check. A torn
//! tail is left in place and reported (by `verify` as a finding, by the others as a warning).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use tousu_domain::reporting::{reporting_month, reporting_week};
use tousu_projection::replay::{REPLAY_PREFIX, replay};
use tousu_projection::{ReadStoreAddress, meta};
use tousu_read_weekly_summary::signing::AnchorPublicKey;
use tousu_store::hash::hex;
use tousu_store::verify::{BrokenLink, ChainVerifier};
use tousu_store_embedded::TornTail;

use crate::anchors::AnchorFileCheck;
use crate::log::{Log, LogArgs};
use crate::settings::DomainFiles;
use crate::signing::{self, SigningKeyArgs};

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
        /// A file of signed weekly anchors written by `tousu audit anchors`: every anchor in it
        /// must be reproduced by the log.
        #[arg(long, value_name = "FILE")]
        anchors: Option<PathBuf>,
        /// The public key the anchors' signatures must verify against, 64 hex digits as `tousu
        /// audit key` prints it; without it, signatures are not checked.
        #[arg(long, value_name = "KEY", requires = "anchors")]
        public_key: Option<String>,
    },
    /// Print the public key that checks the signed weekly anchors (hex) and its fingerprint.
    Key {
        #[command(flatten)]
        key: SigningKeyArgs,
    },
    /// Write every settled week's history anchor, computed from the log and signed with the
    /// server's key, as JSON lines (week, position, events, anchor, signature, key
    /// fingerprint), for the commission to keep outside the data directory.
    Anchors {
        #[command(flatten)]
        log: LogArgs,
        /// The signing key file [default: DATA_DIR/signing.key].
        #[arg(long, env = "TOUSU_SIGNING_KEY_FILE", value_name = "FILE")]
        signing_key_file: Option<PathBuf>,
        /// The file to write [default: standard output].
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
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
        AuditCommand::Verify { log, read_store, anchors, public_key } => {
            let public_key = public_key
                .as_deref()
                .map(AnchorPublicKey::from_hex)
                .transpose()
                .context("--public-key is not the key tousu audit key prints")?;
            let mut anchor_file =
                anchors.as_deref().map(|path| AnchorFileCheck::read(path, public_key.as_ref())).transpose()?;
            let recorded = recorded_anchors(&log, read_store.as_deref())?;
            let log = log.open_read_only()?;
            let mut findings = Vec::new();
            if let Some(torn) = &log.torn_tail {
                findings.push(torn_tail_finding(torn));
            }
            let mut verifier = ChainVerifier::new();
            let mut broken: Option<BrokenLink> = None;
            let mut anchor = tousu_read_weekly_summary::ANCHOR_ZERO;
            let mut recorded_match = 0;
            let read = log.for_each("verifying", |event| {
                if broken.is_none()
                    && let Err(link) = verifier.check(event)
                {
                    broken = Some(link);
                }
                anchor = tousu_read_weekly_summary::anchor_step(&anchor, &event.hash);
                if let Some((week, recorded)) = recorded.get(&event.position.0) {
                    let computed = tousu_read_weekly_summary::hex(&anchor);
                    if &computed == recorded {
                        recorded_match += 1;
                    } else {
                        findings.push(format!(
                            "the history anchor of the week of {week} (up to position {}) does not match the log: \
                             the weekly summary recorded {recorded}, the log gives {computed}",
                            event.position.0
                        ));
                    }
                }
                if let Some(check) = &mut anchor_file {
                    check.event(event);
                }
                Ok(())
            })?;
            let description = log.description.clone();
            log.close()?;
            let report = verifier.report(broken);
            if let Some(link) = &report.first_broken {
                // The first broken link, in log order; the events after it were still read for
                // the anchors.
                findings.insert(
                    0,
                    format!(
                        "the hash chain of stream {} is broken at revision {} (position {}), after {} of {read} \
                         events: {:?}",
                        link.stream, link.revision, link.position.0, report.events_checked, link.kind
                    ),
                );
            }
            let anchor_file = anchor_file.map(AnchorFileCheck::finish);
            if let Some(outcome) = &anchor_file {
                findings.extend(outcome.findings.iter().cloned());
            }
            if !findings.is_empty() {
                bail!(
                    "the {description} does not verify: {} finding{}:\n  - {}",
                    findings.len(),
                    if findings.len() == 1 { "" } else { "s" },
                    findings.join("\n  - ")
                );
            }
            let signed = anchor_file.map(|outcome| format!("; {}", outcome.summary)).unwrap_or_default();
            println!(
                "intact: {} events in {} streams of the {description} verify; {recorded_match} of {} weekly history \
                 anchors recorded match the log{signed}",
                report.events_checked,
                report.streams_checked,
                recorded.len()
            );
            Ok(())
        }
        AuditCommand::Key { key } => {
            let signer = signing::load(&key.path())?;
            let public = signer.public_key();
            println!("public key (ed25519, hex): {}", public.hex());
            println!("fingerprint (sha-256 of the public key, hex): {}", public.fingerprint());
            Ok(())
        }
        AuditCommand::Anchors { log, signing_key_file, output } => {
            let signer = signing::load(&signing_key_file.unwrap_or_else(|| log.data_dir().join(signing::FILE_NAME)))?;
            let log = log.open_read_only()?;
            warn_torn_tail(&log);
            let out: Box<dyn Write> = match &output {
                Some(path) => {
                    Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
                }
                None => Box::new(std::io::stdout().lock()),
            };
            let mut out = BufWriter::new(out);
            let written = crate::anchors::export(&log, &signer, chrono::Utc::now(), &mut out)?;
            drop(out);
            log.close()?;
            match written.last() {
                Some(last) => eprintln!(
                    "exported the signed anchors of {} settled weeks, the last the week of {} up to position {}, \
                     signed by the key {}",
                    written.len(),
                    last.week,
                    last.position,
                    signer.public_key().fingerprint()
                ),
                None => eprintln!("no settled week: no anchor exported"),
            }
            Ok(())
        }
        AuditCommand::Replay { log, until, output, files } => {
            let until = chrono::DateTime::parse_from_rfc3339(&until)
                .with_context(|| format!("--until {until:?} is not an RFC 3339 instant"))?;
            let calendar = files.calendar()?;
            let policy = files.policy()?;
            let log = log.open_read_only()?;
            warn_torn_tail(&log);
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
            let log = log.open_read_only()?;
            warn_torn_tail(&log);
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

/// What a torn tail left in place says, as a finding of `verify`.
fn torn_tail_finding(torn: &TornTail) -> String {
    format!(
        "the log ends in a torn tail: {} bytes from offset {} of {} ({} complete records of an append never completed \
         among them) were never acknowledged; left in place and not read (a server opening the log cuts them)",
        torn.bytes_dropped,
        torn.offset,
        torn.segment.display(),
        torn.records_dropped
    )
}

/// Warns of a torn tail the tool leaves in place and does not read.
fn warn_torn_tail(log: &Log) {
    if let Some(torn) = &log.torn_tail {
        eprintln!("warning: {}", torn_tail_finding(torn));
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
