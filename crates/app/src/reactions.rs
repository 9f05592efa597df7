//! tousu's own reactions to what is recorded on leads: every registered lead and every
//! finding is counted on its company's stream (REG-4, GRD-1, EXT-1), and a split
//! classification opens the linked leads (interpretation 15). It also puts in force the
//! holiday schedules another node loaded (interpretation 21).
//!
//! The [`Reactor`] follows the log from a checkpoint and makes every reaction, so none is
//! lost to a crash. It counts a batch of leads per company with one command, whose business
//! instant is that of the batch's latest lead event, so the company's conditions are
//! evaluated once per batch rather than once per lead; the count skips what is already
//! counted, so a batch redone after a crash records nothing twice. A command that splits a
//! lead opens the linked leads at once as well, so a client can act on them straight away;
//! their correlation derives from the causing event, so the reactor's later attempt is
//! answered as a repeat.
//!
//! No reaction is dropped. One that the procedure refuses (a count whose consequences cannot
//! be computed yet) or whose event cannot be read is **stuck**: it is recorded, with why, in
//! a file beside the checkpoint before the checkpoint passes it, reported by the Admin
//! service, and tried again with a growing pause (1 s, doubling to 10 minutes) until it
//! succeeds. The log goes on being followed meanwhile: one stuck lead holds no other back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use tousu_domain::actor::{Actor, Role};
use tousu_domain::complaint::{ComplaintCommand, ComplaintEvent, ComplaintFact, ComplaintState, Lead};
use tousu_domain::enterprise::{EnterpriseCommand, FindingRecord, LeadRecord};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_store::{
    Direction, EventId, EventStore, Position, ReadFrom, RecordedEvent, StreamFrom, Subscription, SubscriptionError,
};

use crate::App;
use crate::error::AppError;
use crate::ids::{batch_correlation, reaction_correlation};

/// The longest pause between two attempts at a stuck reaction.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(600);

/// A reaction that failed and is tried again until it succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckReaction {
    /// The stream of the event reacted to.
    pub stream: String,
    /// Its revision in the stream, by which it is read back.
    pub revision: u64,
    /// Its position in the log.
    pub position: u64,
    /// Its type.
    pub event_type: String,
    /// Why the last attempt failed.
    pub reason: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it first failed.
    pub since: DateTime<Utc>,
    /// When it was last tried.
    pub last_attempt: DateTime<Utc>,
}

/// The reactions stuck now, shared between the reactor and whoever reports on it.
#[derive(Debug, Default)]
pub struct ReactionsHealth {
    stuck: Mutex<Vec<StuckReaction>>,
}

impl ReactionsHealth {
    /// Every reaction stuck now, oldest first.
    pub fn stuck(&self) -> Vec<StuckReaction> {
        self.stuck.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn replace(&self, stuck: Vec<StuckReaction>) {
        *self.stuck.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = stuck;
    }
}

/// An event whose reaction failed, and why.
#[derive(Debug)]
struct Failure {
    stream: String,
    revision: u64,
    position: u64,
    event_type: String,
    reason: String,
}

impl Failure {
    fn of(recorded: &RecordedEvent, reason: String) -> Failure {
        Failure {
            stream: recorded.stream.as_str().to_owned(),
            revision: recorded.revision,
            position: recorded.position.0,
            event_type: recorded.event.event_type.clone(),
            reason,
        }
    }
}

/// The linked leads a classification calls for: `OpenSplitLead` commands for each.
pub fn split_reactions(event: &ComplaintEvent, lead: &Lead) -> Vec<(ComplaintId, ComplaintCommand)> {
    let ComplaintFact::Classified { split_into, urgency, complexity, .. } = &event.fact else {
        return Vec::new();
    };
    split_into
        .iter()
        .map(|split| {
            (
                split.lead.clone(),
                ComplaintCommand::OpenSplitLead {
                    id: split.lead.clone(),
                    parent: lead.id.clone(),
                    registration: lead.registration.clone(),
                    registered_at: lead.registered_at,
                    category: split.category.as_str().to_owned(),
                    urgency: *urgency,
                    complexity: *complexity,
                },
            )
        })
        .collect()
}

impl<S: EventStore + 'static> App<S> {
    /// Opens the linked leads of a split classification (interpretation 15). A linked lead
    /// already open is answered as a repeat, or refused by the procedure as existing: either
    /// way it is there.
    pub(crate) async fn open_split_leads(
        &self,
        cause: EventId,
        event: &ComplaintEvent,
        lead: &Lead,
        actor: &Actor,
    ) -> Result<(), AppError> {
        for (index, (child, command)) in split_reactions(event, lead).into_iter().enumerate() {
            let correlation = reaction_correlation(cause, "open-split-lead", u32::try_from(index).unwrap_or(u32::MAX));
            let stream = crate::stream_name(&child.stream_name())?;
            match self
                .engine
                .execute(&self.complaints, &stream, actor, correlation, cause.into(), event.at, command)
                .await
            {
                Ok(_) | Err(AppError::Domain(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// Where an item of a company's count comes from: its event, for a failure to name.
#[derive(Debug, Clone)]
struct Cause {
    id: EventId,
    stream: String,
    revision: u64,
    position: u64,
    event_type: String,
}

impl Cause {
    fn of(recorded: &RecordedEvent) -> Cause {
        Cause {
            id: recorded.event.id,
            stream: recorded.stream.as_str().to_owned(),
            revision: recorded.revision,
            position: recorded.position.0,
            event_type: recorded.event.event_type.clone(),
        }
    }

    fn failure(self, reason: String) -> Failure {
        let Cause { id: _, stream, revision, position, event_type } = self;
        Failure { stream, revision, position, event_type, reason }
    }
}

/// Leads and findings of one batch, for one company, each with the event it comes from.
#[derive(Debug)]
struct CompanyBatch {
    name: String,
    complaints: Vec<(LeadRecord, Cause)>,
    findings: Vec<(FindingRecord, Cause)>,
    first_cause: EventId,
    last_cause: EventId,
    at: DateTime<FixedOffset>,
}

/// Company counts of one batch in flight at once.
const COUNT_CONCURRENCY: usize = 32;

/// Follows the log and makes every reaction, from a checkpoint kept in a file; the reactions
/// stuck are kept in a second file beside it (`<checkpoint>.stuck`, JSON).
pub struct Reactor<S> {
    app: Arc<App<S>>,
    checkpoint: PathBuf,
    stuck_file: PathBuf,
    /// When each stuck reaction (by stream and revision) is next tried.
    next_attempt: BTreeMap<(String, u64), Instant>,
}

impl<S: EventStore + 'static> Reactor<S> {
    /// A reactor keeping its checkpoint (the last position handled) in `checkpoint`.
    pub fn new(app: Arc<App<S>>, checkpoint: PathBuf) -> Self {
        let stuck_file = checkpoint.with_extension("stuck");
        Reactor { app, checkpoint, stuck_file, next_attempt: BTreeMap::new() }
    }

    /// The stuck reactions recorded by an earlier run, tried again at once.
    fn load_stuck(&mut self) -> Result<(), AppError> {
        let stuck: Vec<StuckReaction> = match std::fs::read(&self.stuck_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                AppError::Internal(format!(
                    "the stuck reactions file {} is not valid: {error}",
                    self.stuck_file.display()
                ))
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                return Err(AppError::Internal(format!("cannot read {}: {error}", self.stuck_file.display())));
            }
        };
        let now = Instant::now();
        self.next_attempt = stuck.iter().map(|item| ((item.stream.clone(), item.revision), now)).collect();
        self.app.reactions.replace(stuck);
        Ok(())
    }

    /// Writes the stuck reactions whole to a temporary file and renames it, so that a crash
    /// leaves the old or the new list; it is written before the checkpoint passes a failure.
    fn save_stuck(&self, stuck: &[StuckReaction]) -> Result<(), AppError> {
        let write = || -> std::io::Result<()> {
            let temporary = self.stuck_file.with_extension("stuck.tmp");
            let bytes = serde_json::to_vec_pretty(stuck).map_err(std::io::Error::other)?;
            std::fs::write(&temporary, bytes)?;
            std::fs::File::open(&temporary)?.sync_all()?;
            std::fs::rename(&temporary, &self.stuck_file)
        };
        write().map_err(|error| AppError::Internal(format!("cannot write {}: {error}", self.stuck_file.display())))
    }

    /// Records failures as stuck (a failure already stuck counts one more attempt), or clears
    /// what succeeded, and saves the list when it changed.
    fn update_stuck(&mut self, failures: Vec<Failure>, succeeded: &[(String, u64)]) -> Result<(), AppError> {
        if failures.is_empty() && succeeded.is_empty() {
            return Ok(());
        }
        let mut stuck = self.app.reactions.stuck();
        let now = Utc::now();
        for done in succeeded {
            if stuck.iter().any(|item| (&item.stream, item.revision) == (&done.0, done.1)) {
                tracing::info!(stream = %done.0, revision = done.1, "a stuck reaction succeeded");
            }
            stuck.retain(|item| (&item.stream, item.revision) != (&done.0, done.1));
            self.next_attempt.remove(done);
        }
        for failure in failures {
            let key = (failure.stream.clone(), failure.revision);
            let attempts = match stuck.iter_mut().find(|item| (&item.stream, item.revision) == (&key.0, key.1)) {
                Some(item) => {
                    item.attempts += 1;
                    item.reason = failure.reason.clone();
                    item.last_attempt = now;
                    item.attempts
                }
                None => {
                    stuck.push(StuckReaction {
                        stream: failure.stream.clone(),
                        revision: failure.revision,
                        position: failure.position,
                        event_type: failure.event_type.clone(),
                        reason: failure.reason.clone(),
                        attempts: 1,
                        since: now,
                        last_attempt: now,
                    });
                    1
                }
            };
            let pause = Duration::from_secs(1u64 << attempts.saturating_sub(1).min(10)).min(MAX_RETRY_PAUSE);
            tracing::error!(
                stream = %failure.stream,
                revision = failure.revision,
                position = failure.position,
                attempts,
                retry_in_seconds = pause.as_secs(),
                reason = %failure.reason,
                "a reaction failed; it is kept and tried again"
            );
            self.next_attempt.insert(key, Instant::now() + pause);
        }
        stuck.sort_by_key(|item| item.position);
        self.save_stuck(&stuck)?;
        self.app.reactions.replace(stuck);
        Ok(())
    }

    /// Tries again every stuck reaction whose pause is over.
    async fn retry_stuck(&mut self) -> Result<(), AppError> {
        let now = Instant::now();
        let due: Vec<(String, u64)> =
            self.next_attempt.iter().filter(|(_, at)| **at <= now).map(|(key, _)| key.clone()).collect();
        for (stream, revision) in due {
            let name = crate::stream_name(&stream)?;
            let read = self
                .app
                .engine
                .store()
                .read_stream(&name, Direction::Forwards, StreamFrom::Revision(revision), 1)
                .await?;
            let Some(recorded) = read.into_iter().next() else {
                let reason = format!("event {revision} of {stream} cannot be read back");
                let position = self
                    .app
                    .reactions
                    .stuck()
                    .iter()
                    .find(|item| (&item.stream, item.revision) == (&stream, revision))
                    .map_or(0, |item| item.position);
                let failure = Failure { stream, revision, position, event_type: String::new(), reason };
                self.update_stuck(vec![failure], &[])?;
                continue;
            };
            let failures = self.handle(std::slice::from_ref(&recorded)).await?;
            if failures.is_empty() {
                self.update_stuck(Vec::new(), &[(stream, revision)])?;
            } else {
                self.update_stuck(failures, &[])?;
            }
        }
        Ok(())
    }

    /// How long until the next stuck reaction is due; `None` when none is stuck.
    fn until_next_retry(&self) -> Option<Duration> {
        let next = self.next_attempt.values().min()?;
        Some(next.saturating_duration_since(Instant::now()))
    }

    fn load_checkpoint(&self) -> Option<Position> {
        let text = std::fs::read_to_string(&self.checkpoint).ok()?;
        text.trim().parse().ok().map(Position)
    }

    fn save_checkpoint(&self, position: Position) -> std::io::Result<()> {
        // Written whole to a temporary file and renamed: a crash leaves the old or the new
        // checkpoint, never a torn one. A stale checkpoint only repeats idempotent work.
        let temporary = self.checkpoint.with_extension("tmp");
        std::fs::write(&temporary, format!("{}\n", position.0))?;
        std::fs::rename(&temporary, &self.checkpoint)
    }

    /// Runs until the store closes.
    pub async fn run(mut self) -> Result<(), AppError> {
        self.load_stuck()?;
        let from = match self.load_checkpoint() {
            Some(position) => ReadFrom::After(position),
            None => ReadFrom::Start,
        };
        let mut subscription = self.app.engine.store().subscribe_all(from).await?;
        loop {
            // Waiting for the log gives way to the stuck reactions when one is due; the
            // subscription is cancel-safe, so nothing is lost when the wait is cut short.
            let next_batch = match self.until_next_retry() {
                None => subscription.next_batch(1024).await,
                Some(pause) => match tokio::time::timeout(pause, subscription.next_batch(1024)).await {
                    Ok(next_batch) => next_batch,
                    Err(_) => {
                        self.retry_stuck().await?;
                        continue;
                    }
                },
            };
            let mut batch = match next_batch {
                Ok(batch) => batch,
                Err(SubscriptionError::Closed) => return Ok(()),
                Err(error) => return Err(error.into()),
            };
            // Under a steady stream of registrations, let a few milliseconds' worth gather: one
            // count per company per batch instead of one per lead.
            if batch.len() < 128 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                if let Ok(Ok(more)) =
                    tokio::time::timeout(std::time::Duration::ZERO, subscription.next_batch(1024)).await
                {
                    batch.extend(more);
                }
            }
            let Some(last) = batch.last().map(|event| event.position) else { continue };
            let failures = self.handle(&batch).await?;
            // The failures are kept before the checkpoint passes them.
            self.update_stuck(failures, &[])?;
            if let Err(error) = self.save_checkpoint(last) {
                tracing::warn!(%error, path = %self.checkpoint.display(), "reaction checkpoint not saved");
            }
        }
    }

    /// Makes the reactions of one batch of the log; answers the events whose reaction the
    /// procedure refused or that could not be read. Any other error (the store unavailable)
    /// ends the run, which restarts from the checkpoint.
    async fn handle(&self, batch: &[RecordedEvent]) -> Result<Vec<Failure>, AppError> {
        let mut companies: BTreeMap<Uscc, CompanyBatch> = BTreeMap::new();
        let mut lead_companies: BTreeMap<ComplaintId, Uscc> = BTreeMap::new();
        let mut failures = Vec::new();
        for recorded in batch {
            if recorded.event.event_type == "calendar.official_year_loaded" {
                self.app.apply_recorded_schedule(recorded);
                continue;
            }
            let wanted = matches!(
                recorded.event.event_type.as_str(),
                "complaint.registered" | "complaint.split_from" | "complaint.finding_recorded" | "complaint.classified"
            );
            if !wanted {
                continue;
            }
            let event: ComplaintEvent = match serde_json::from_slice(&recorded.event.payload) {
                Ok(event) => event,
                Err(error) => {
                    failures.push(Failure::of(recorded, format!("the lead event does not decode: {error}")));
                    continue;
                }
            };
            let cause = recorded.event.id;
            match &event.fact {
                ComplaintFact::Registered { id, registration, complainant_key }
                | ComplaintFact::SplitFrom { id, registration, complainant_key, .. } => {
                    let (registered_at, linked_to) = match &event.fact {
                        ComplaintFact::SplitFrom { registered_at, parent, .. } => {
                            (*registered_at, Some(parent.clone()))
                        }
                        _ => (event.at, None),
                    };
                    // Interpretation 22: a lead naming no company counts against none.
                    let Some(company) = &registration.company else { continue };
                    lead_companies.insert(id.clone(), company.uscc.clone());
                    let entry = companies.entry(company.uscc.clone()).or_insert_with(|| CompanyBatch {
                        name: company.name.clone(),
                        complaints: Vec::new(),
                        findings: Vec::new(),
                        first_cause: cause,
                        last_cause: cause,
                        at: event.at,
                    });
                    entry.name.clone_from(&company.name);
                    entry.complaints.push((
                        LeadRecord {
                            lead: id.clone(),
                            complainant_key: complainant_key.clone(),
                            registered_at,
                            community: registration.place.community.clone(),
                            linked_to,
                        },
                        Cause::of(recorded),
                    ));
                    entry.last_cause = cause;
                    entry.at = entry.at.max(event.at);
                }
                ComplaintFact::FindingRecorded { finding, attributable, .. } => {
                    let Some(lead) = self.lead(recorded).await? else { continue };
                    let Some(company) = &lead.registration.company else { continue };
                    let uscc = match lead_companies.get(&lead.id) {
                        Some(uscc) => uscc.clone(),
                        None => company.uscc.clone(),
                    };
                    let entry = companies.entry(uscc).or_insert_with(|| CompanyBatch {
                        name: company.name.clone(),
                        complaints: Vec::new(),
                        findings: Vec::new(),
                        first_cause: cause,
                        last_cause: cause,
                        at: event.at,
                    });
                    entry.findings.push((
                        FindingRecord {
                            lead: lead.id.clone(),
                            finding: *finding,
                            // Interpretation 22; a finding recorded before it is the company's.
                            attributable: attributable.unwrap_or(true),
                            found_at: event.at,
                        },
                        Cause::of(recorded),
                    ));
                    entry.last_cause = cause;
                    entry.at = entry.at.max(event.at);
                }
                ComplaintFact::Classified { split_into, .. } if !split_into.is_empty() => {
                    let Some(lead) = self.lead(recorded).await? else { continue };
                    let actor = recorded_actor(recorded);
                    self.app.open_split_leads(cause, &event, &lead, &actor).await?;
                }
                _ => {}
            }
        }
        // Each company's count is a command on its own stream: run them side by side, so the
        // store commits many in one group instead of one after another.
        let mut running = tokio::task::JoinSet::new();
        for (uscc, counted) in companies {
            if running.len() >= COUNT_CONCURRENCY
                && let Some(joined) = running.join_next().await
            {
                failures
                    .extend(joined.map_err(|error| AppError::Internal(format!("a company count failed: {error}")))??);
            }
            let app = self.app.clone();
            running.spawn(async move { count(&app, uscc, counted).await });
        }
        while let Some(joined) = running.join_next().await {
            failures.extend(joined.map_err(|error| AppError::Internal(format!("a company count failed: {error}")))??);
        }
        Ok(failures)
    }

    async fn lead(&self, recorded: &RecordedEvent) -> Result<Option<Lead>, AppError> {
        let (state, _) = self.app.engine.state::<ComplaintState>(&self.app.complaints, &recorded.stream).await?;
        Ok(state.lead)
    }
}

/// Counts one company's leads and findings of a batch; should the batch be refused, each item
/// is counted alone so one bad item cannot hold the others back. Answers the items the
/// procedure refused alone, each with the event it comes from.
async fn count<S: EventStore + 'static>(
    app: &App<S>,
    uscc: Uscc,
    batch: CompanyBatch,
) -> Result<Vec<Failure>, AppError> {
    let correlation = batch_correlation(uscc.as_str(), batch.first_cause, batch.last_cause);
    let command = EnterpriseCommand::CountLeads {
        uscc: uscc.clone(),
        company_name: batch.name.clone(),
        complaints: batch.complaints.iter().map(|(record, _)| record.clone()).collect(),
        findings: batch.findings.iter().map(|(record, _)| record.clone()).collect(),
    };
    match app.count_leads(&uscc, correlation, batch.last_cause, batch.at, command).await {
        Ok(()) => return Ok(Vec::new()),
        Err(AppError::Domain(error)) => {
            tracing::warn!(%uscc, %error, "company count refused as a batch; counting item by item");
        }
        Err(error) => return Err(error),
    }
    let singles = batch
        .complaints
        .into_iter()
        .map(|(record, cause)| (vec![record], Vec::new(), cause))
        .chain(batch.findings.into_iter().map(|(record, cause)| (Vec::new(), vec![record], cause)));
    let mut failures = Vec::new();
    for (complaints, findings, cause) in singles {
        // An item's count derives from its own event, whichever batch it is part of: an
        // item already counted (by an earlier attempt that was written) is answered as a
        // repeat, and the count skips what the company has recorded anyway.
        let correlation = reaction_correlation(cause.id, "count-item", 0);
        let command = EnterpriseCommand::CountLeads {
            uscc: uscc.clone(),
            company_name: batch.name.clone(),
            complaints,
            findings,
        };
        match app.count_leads(&uscc, correlation, cause.id, batch.at, command).await {
            Ok(()) => {}
            Err(AppError::Domain(error)) => {
                failures.push(cause.failure(format!("the count on {uscc} was refused: {error}")))
            }
            Err(error) => return Err(error),
        }
    }
    Ok(failures)
}

fn recorded_actor(recorded: &RecordedEvent) -> Actor {
    Actor {
        person: recorded.event.actor.person.clone(),
        body: recorded.event.actor.body.parse().unwrap_or(BodyCode::ZJ),
        role: recorded.event.actor.role.parse().unwrap_or(Role::System),
    }
}

impl<S: EventStore + 'static> App<S> {
    async fn count_leads(
        &self,
        uscc: &Uscc,
        correlation: EventId,
        cause: EventId,
        at: DateTime<FixedOffset>,
        command: EnterpriseCommand,
    ) -> Result<(), AppError> {
        let system = Actor::deadline_reactor();
        let stream = crate::stream_name(&uscc.stream_name())?;
        self.engine
            .execute(&self.enterprises, &stream, &system, correlation, cause.into(), at, command)
            .await
            .map(|_| ())
    }
}
