//! tousu's own reactions to what is recorded on leads: every registered lead and every
//! finding is counted on its company's stream (REG-4, GRD-1, EXT-1), and a split
//! classification opens the linked leads (interpretation 15).
//!
//! The [`Reactor`] follows the log from a checkpoint and makes every reaction, so none is
//! lost to a crash. It counts a batch of leads per company with one command, whose business
//! instant is that of the batch's latest lead event, so the company's conditions are
//! evaluated once per batch rather than once per lead; the count skips what is already
//! counted, so a batch redone after a crash records nothing twice. A command that splits a
//! lead opens the linked leads at once as well, so a client can act on them straight away;
//! their correlation derives from the causing event, so the reactor's later attempt is
//! answered as a repeat.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use tousu_domain::actor::{Actor, Role};
use tousu_domain::complaint::{ComplaintCommand, ComplaintEvent, ComplaintFact, ComplaintState, Lead};
use tousu_domain::enterprise::{EnterpriseCommand, FindingRecord, LeadRecord};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_store::{EventId, EventStore, Position, ReadFrom, RecordedEvent, Subscription, SubscriptionError};

use crate::App;
use crate::error::AppError;
use crate::ids::{batch_correlation, reaction_correlation};

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
            match self.engine.execute(&self.complaints, &stream, actor, correlation, cause, event.at, command).await {
                Ok(_) | Err(AppError::Domain(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// Leads and findings of one batch, for one company.
#[derive(Debug)]
struct CompanyBatch {
    name: String,
    complaints: Vec<LeadRecord>,
    findings: Vec<FindingRecord>,
    first_cause: EventId,
    last_cause: EventId,
    at: DateTime<FixedOffset>,
}

/// Company counts of one batch in flight at once.
const COUNT_CONCURRENCY: usize = 32;

/// Follows the log and makes every reaction, from a checkpoint kept in a file.
pub struct Reactor<S> {
    app: Arc<App<S>>,
    checkpoint: PathBuf,
}

impl<S: EventStore + 'static> Reactor<S> {
    /// A reactor keeping its checkpoint (the last position handled) in `checkpoint`.
    pub fn new(app: Arc<App<S>>, checkpoint: PathBuf) -> Self {
        Reactor { app, checkpoint }
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
    pub async fn run(self) -> Result<(), AppError> {
        let from = match self.load_checkpoint() {
            Some(position) => ReadFrom::After(position),
            None => ReadFrom::Start,
        };
        let mut subscription = self.app.engine.store().subscribe_all(from).await?;
        loop {
            let mut batch = match subscription.next_batch(1024).await {
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
            self.handle(&batch).await?;
            if let Err(error) = self.save_checkpoint(last) {
                tracing::warn!(%error, path = %self.checkpoint.display(), "reaction checkpoint not saved");
            }
        }
    }

    /// Makes the reactions of one batch of the log.
    async fn handle(&self, batch: &[RecordedEvent]) -> Result<(), AppError> {
        let mut companies: BTreeMap<Uscc, CompanyBatch> = BTreeMap::new();
        let mut lead_companies: BTreeMap<ComplaintId, Uscc> = BTreeMap::new();
        for recorded in batch {
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
                    tracing::error!(position = recorded.position.0, %error, "lead event does not decode; reaction skipped");
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
                    let company = &registration.company;
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
                    entry.complaints.push(LeadRecord {
                        lead: id.clone(),
                        complainant_key: complainant_key.clone(),
                        registered_at,
                        community: registration.place.community.clone(),
                        linked_to,
                    });
                    entry.last_cause = cause;
                    entry.at = entry.at.max(event.at);
                }
                ComplaintFact::FindingRecorded { finding, .. } => {
                    let Some(lead) = self.lead(recorded).await? else { continue };
                    let uscc = match lead_companies.get(&lead.id) {
                        Some(uscc) => uscc.clone(),
                        None => lead.registration.company.uscc.clone(),
                    };
                    let entry = companies.entry(uscc).or_insert_with(|| CompanyBatch {
                        name: lead.registration.company.name.clone(),
                        complaints: Vec::new(),
                        findings: Vec::new(),
                        first_cause: cause,
                        last_cause: cause,
                        at: event.at,
                    });
                    entry.findings.push(FindingRecord { lead: lead.id.clone(), finding: *finding, found_at: event.at });
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
                joined.map_err(|error| AppError::Internal(format!("a company count failed: {error}")))??;
            }
            let app = self.app.clone();
            running.spawn(async move { count(&app, uscc, counted).await });
        }
        while let Some(joined) = running.join_next().await {
            joined.map_err(|error| AppError::Internal(format!("a company count failed: {error}")))??;
        }
        Ok(())
    }

    async fn lead(&self, recorded: &RecordedEvent) -> Result<Option<Lead>, AppError> {
        let (state, _) = self.app.engine.state::<ComplaintState>(&self.app.complaints, &recorded.stream).await?;
        Ok(state.lead)
    }
}

/// Counts one company's leads and findings of a batch; should the batch be refused, each item
/// is counted alone so one bad item cannot hold the others back.
async fn count<S: EventStore + 'static>(app: &App<S>, uscc: Uscc, batch: CompanyBatch) -> Result<(), AppError> {
    let correlation = batch_correlation(uscc.as_str(), batch.first_cause, batch.last_cause);
    let command = EnterpriseCommand::CountLeads {
        uscc: uscc.clone(),
        company_name: batch.name.clone(),
        complaints: batch.complaints.clone(),
        findings: batch.findings.clone(),
    };
    match app.count_leads(&uscc, correlation, batch.last_cause, batch.at, command).await {
        Ok(()) => return Ok(()),
        Err(AppError::Domain(error)) => {
            tracing::warn!(%uscc, %error, "company count refused as a batch; counting item by item");
        }
        Err(error) => return Err(error),
    }
    let singles = batch
        .complaints
        .into_iter()
        .map(|record| (vec![record], Vec::new()))
        .chain(batch.findings.into_iter().map(|record| (Vec::new(), vec![record])));
    for (index, (complaints, findings)) in singles.enumerate() {
        let correlation = reaction_correlation(correlation, "count-item", u32::try_from(index).unwrap_or(u32::MAX));
        let command = EnterpriseCommand::CountLeads {
            uscc: uscc.clone(),
            company_name: batch.name.clone(),
            complaints,
            findings,
        };
        match app.count_leads(&uscc, correlation, batch.last_cause, batch.at, command).await {
            Ok(()) => {}
            Err(AppError::Domain(error)) => tracing::error!(%uscc, %error, "company count refused; item skipped"),
            Err(error) => return Err(error),
        }
    }
    Ok(())
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
        self.engine.execute(&self.enterprises, &stream, &system, correlation, cause, at, command).await.map(|_| ())
    }
}
