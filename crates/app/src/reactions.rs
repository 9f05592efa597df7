//! tousu's own reactions to what is recorded on leads: every registered lead and every
//! finding is counted on its company's stream (REG-4, GRD-1, EXT-1), and a split
//! classification opens the linked leads (interpretation 15).
//!
//! A reaction's correlation id derives from the causing event, and its business instant is
//! the causing event's, so a reaction writes the same events whenever and however often it
//! runs. The command path runs reactions at once, so a client sees their effect in its next
//! query; the [`Reactor`] follows the log from a checkpoint so that a reaction lost to a crash
//! between the two is still made.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use tousu_domain::actor::Actor;
use tousu_domain::complaint::{ComplaintCommand, ComplaintEvent, ComplaintFact, ComplaintState, Lead};
use tousu_domain::enterprise::EnterpriseCommand;
use tousu_domain::ids::{ComplaintId, Uscc};
use tousu_store::{EventId, EventStore, Position, ReadFrom, Subscription};

use crate::App;
use crate::error::AppError;
use crate::ids::reaction_correlation;

/// A command tousu issues in reaction to a stored event.
#[derive(Debug, Clone)]
pub enum Reaction {
    /// A command on the lead's company.
    Enterprise {
        /// The company.
        uscc: Uscc,
        /// The command.
        command: EnterpriseCommand,
    },
    /// Opening a linked lead.
    SplitLead {
        /// The linked lead.
        lead: ComplaintId,
        /// The command (`OpenSplitLead`).
        command: ComplaintCommand,
    },
}

/// The reactions one lead event calls for, given the lead's state after it, each with the
/// purpose label that, with the causing event id and the index, derives its correlation.
pub fn reactions_to(event: &ComplaintEvent, lead: &Lead) -> Vec<(&'static str, Reaction)> {
    let company = &lead.registration.company;
    match &event.fact {
        ComplaintFact::Registered { id, complainant_key, .. }
        | ComplaintFact::SplitFrom { id, complainant_key, .. } => {
            vec![(
                "count-complaint",
                Reaction::Enterprise {
                    uscc: company.uscc.clone(),
                    command: EnterpriseCommand::RecordComplaint {
                        uscc: company.uscc.clone(),
                        company_name: company.name.clone(),
                        lead: id.clone(),
                        complainant_key: complainant_key.clone(),
                        registered_at: lead.registered_at,
                        community: lead.registration.place.community.clone(),
                        linked_to: lead.parent.clone(),
                    },
                },
            )]
        }
        ComplaintFact::FindingRecorded { finding, .. } => vec![(
            "count-finding",
            Reaction::Enterprise {
                uscc: company.uscc.clone(),
                command: EnterpriseCommand::RecordFinding {
                    lead: lead.id.clone(),
                    finding: *finding,
                    found_at: event.at,
                },
            },
        )],
        ComplaintFact::Classified { split_into, urgency, complexity, .. } => split_into
            .iter()
            .map(|split| {
                (
                    "open-split-lead",
                    Reaction::SplitLead {
                        lead: split.lead.clone(),
                        command: ComplaintCommand::OpenSplitLead {
                            id: split.lead.clone(),
                            parent: lead.id.clone(),
                            registration: lead.registration.clone(),
                            registered_at: lead.registered_at,
                            category: split.category.as_str().to_owned(),
                            urgency: *urgency,
                            complexity: *complexity,
                        },
                    },
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl<S: EventStore + 'static> App<S> {
    /// Carries out the reactions to one lead event. A reaction the procedure refuses (a lead
    /// already counted, a linked lead already open) has already been made and is skipped.
    pub(crate) async fn react(
        &self,
        cause: EventId,
        event: &ComplaintEvent,
        lead: &Lead,
        actor: &Actor,
    ) -> Result<(), AppError> {
        for (index, (purpose, reaction)) in reactions_to(event, lead).into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let correlation = reaction_correlation(cause, purpose, index);
            let result = self.run_reaction(reaction, correlation, cause, event.at, actor).await;
            match result {
                Ok(()) | Err(AppError::Domain(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    async fn run_reaction(
        &self,
        reaction: Reaction,
        correlation: EventId,
        cause: EventId,
        at: DateTime<FixedOffset>,
        actor: &Actor,
    ) -> Result<(), AppError> {
        match reaction {
            Reaction::Enterprise { uscc, command } => {
                let system = Actor::deadline_reactor();
                let stream = crate::stream_name(&uscc.stream_name())?;
                self.engine.execute(&self.enterprises, &stream, &system, correlation, cause, at, command).await?;
            }
            Reaction::SplitLead { lead, command } => {
                let stream = crate::stream_name(&lead.stream_name())?;
                let outcome =
                    self.engine.execute(&self.complaints, &stream, actor, correlation, cause, at, command).await?;
                // The linked lead's own registration is counted on the company in turn.
                let (state, _) = self.engine.state::<ComplaintState>(&self.complaints, &stream).await?;
                if let (Some(first), Some(child)) = (outcome.events.first(), &state.lead) {
                    let first_id = crate::ids::event_id(correlation, 0);
                    Box::pin(self.react(first_id, first, child, actor)).await?;
                }
            }
        }
        Ok(())
    }
}

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
            let batch = match subscription.next_batch(256).await {
                Ok(batch) => batch,
                Err(tousu_store::SubscriptionError::Closed) => return Ok(()),
                Err(error) => return Err(error.into()),
            };
            let Some(last) = batch.last().map(|event| event.position) else { continue };
            for recorded in &batch {
                if !recorded.event.event_type.starts_with("complaint.") {
                    continue;
                }
                let event: ComplaintEvent = match serde_json::from_slice(&recorded.event.payload) {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::error!(position = recorded.position.0, %error, "lead event does not decode; reaction skipped");
                        continue;
                    }
                };
                let (state, _) =
                    self.app.engine.state::<ComplaintState>(&self.app.complaints, &recorded.stream).await?;
                let Some(lead) = &state.lead else { continue };
                let actor = Actor {
                    person: recorded.event.actor.person.clone(),
                    body: recorded.event.actor.body.parse().unwrap_or(tousu_domain::ids::BodyCode::ZJ),
                    role: recorded.event.actor.role.parse().unwrap_or(tousu_domain::actor::Role::System),
                };
                self.app.react(recorded.event.id, &event, lead, &actor).await?;
            }
            if let Err(error) = self.save_checkpoint(last) {
                tracing::warn!(%error, path = %self.checkpoint.display(), "reaction checkpoint not saved");
            }
        }
    }
}
