//! The application layer of tousu: everything between the wire and the domain, over any
//! event store.
//!
//! A request arrives with an authenticated [`Principal`] and a client [`RequestId`]. For a
//! command, [`App`] checks the role may issue it, derives the correlation id (and a new lead's
//! id) from the request id, and has the [`engine`] load the stream, decide, and append with the
//! expected revision; then it carries out tousu's own reactions (company counts, linked leads).
//! For a query, it checks read access and answers from the stream or the lead index.
//!
//! Nothing here knows protobuf: the API crate maps its messages to these calls.

#![forbid(unsafe_code)]

pub mod access;
pub mod bulletins;
pub mod calendar;
pub mod clock;
pub mod deadlines;
pub mod engine;
pub mod error;
pub mod ids;
pub mod reactions;
pub mod schedules;
pub mod tokens;
pub mod weekly;

use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use tousu_domain::Aggregate;
use tousu_domain::complaint::{
    ComplaintCommand, ComplaintEvent, ComplaintFact, ComplaintState, Complexity, Lead, Registration, SplitRequest,
    Urgency,
};
use tousu_domain::enterprise::{Company, EnterpriseCommand, EnterpriseState};
use tousu_domain::holiday_schedule::ScheduleState;
use tousu_domain::ids::{ComplaintId, Uscc};
use tousu_store::{Direction, EventId, EventStore, RecordedEvent, StreamFrom, StreamName};

pub use access::Principal;
pub use clock::{Clock, ManualClock, ShiftedClock, SystemClock};
pub use engine::{DomainSetup, Written};
pub use error::AppError;
pub use ids::RequestId;

use crate::engine::{Causation, Engine, StreamCache};
use crate::ids::{command_correlation, event_id, new_complaint_id, request_fingerprint, split_lead_id};

/// How much of the log's state the application keeps in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Streams kept in each state cache (leads, companies).
    pub streams: usize,
    /// Payload bytes folded into the cached states of each cache, roughly what they hold.
    pub bytes: usize,
}

impl Default for CacheLimits {
    /// 100,000 streams and 256 MiB per cache.
    fn default() -> Self {
        CacheLimits { streams: 100_000, bytes: 256 * 1024 * 1024 }
    }
}

/// What a client's classification asked for, before the linked leads' ids are derived: the
/// request's fingerprint hashes it.
#[derive(serde::Serialize)]
struct ClassifyAsked {
    category: String,
    urgency: Urgency,
    complexity: Complexity,
    split_categories: Vec<String>,
}

/// The rendering the fingerprint's first version hashed (see [`ids::Fingerprint::legacy`]).
impl std::fmt::Debug for ClassifyAsked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ClassifyAsked { category, urgency, complexity, split_categories } = self;
        write!(f, "classify {category:?} {urgency:?} {complexity:?} {split_categories:?}")
    }
}

/// What a client's command did ([`App::client_command`]): its outcome, the actor it acted as
/// and its correlation.
pub(crate) struct ClientOutcome<E> {
    pub(crate) outcome: engine::Outcome<E>,
    pub(crate) actor: tousu_domain::actor::Actor,
    pub(crate) correlation: EventId,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandReply {
    /// What was written (or, for a repeated request, what was written the first time).
    pub written: Written,
    /// The lead concerned; for a registration, the new lead.
    pub complaint_id: Option<ComplaintId>,
    /// The company concerned, for company commands.
    pub uscc: Option<Uscc>,
    /// Linked leads a split classification created.
    pub created: Vec<ComplaintId>,
}

/// A lead with its stored events, for the timeline.
#[derive(Debug, Clone)]
pub struct ComplaintView {
    /// The lead's state.
    pub lead: Lead,
    /// Every event of the lead, oldest first, as stored and as decoded.
    pub events: Vec<(RecordedEvent, ComplaintEvent)>,
}

/// Parses a stream name the domain produced.
pub(crate) fn stream_name(name: &str) -> Result<StreamName, AppError> {
    StreamName::new(name).map_err(|error| AppError::Internal(format!("stream name {name:?}: {error}")))
}

/// The application: commands and queries over one store.
pub struct App<S> {
    pub(crate) engine: Engine<S>,
    pub(crate) complaints: StreamCache<ComplaintState>,
    pub(crate) enterprises: StreamCache<EnterpriseState>,
    pub(crate) schedules: StreamCache<ScheduleState>,
    pub(crate) weekly: StreamCache<tousu_domain::weekly_report::WeeklyState>,
    pub(crate) bulletins: StreamCache<tousu_domain::bulletin_approval::BulletinState>,
    pub(crate) reactions: reactions::ReactionsHealth,
    clock: Arc<dyn Clock>,
}

impl<S: EventStore + 'static> App<S> {
    /// An application over a store, with the decision setup and a clock, caching states
    /// within the default limits.
    pub fn new(store: Arc<S>, domain: DomainSetup, clock: Arc<dyn Clock>) -> Arc<App<S>> {
        App::with_cache_limits(store, domain, clock, CacheLimits::default())
    }

    /// An application caching states within `limits`.
    pub fn with_cache_limits(
        store: Arc<S>,
        domain: DomainSetup,
        clock: Arc<dyn Clock>,
        limits: CacheLimits,
    ) -> Arc<App<S>> {
        Arc::new(App {
            engine: Engine::new(store, Arc::new(domain)),
            complaints: StreamCache::new(limits.streams, limits.bytes),
            enterprises: StreamCache::new(limits.streams, limits.bytes),
            schedules: StreamCache::new(1, limits.bytes),
            weekly: StreamCache::new(1, limits.bytes),
            bulletins: StreamCache::new(1, limits.bytes),
            reactions: reactions::ReactionsHealth::default(),
            clock,
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        self.engine.store()
    }

    /// The calendar, policy, taxonomy and identity secret.
    pub fn domain(&self) -> &DomainSetup {
        self.engine.domain()
    }

    /// The lead streams cached and the bytes they weigh (see [`CacheLimits`]).
    pub fn lead_cache_usage(&self) -> (usize, usize) {
        self.complaints.usage()
    }

    /// The reactions stuck now, each tried again until it succeeds (see [`reactions`]).
    pub fn stuck_reactions(&self) -> Vec<reactions::StuckReaction> {
        self.reactions.stuck()
    }

    /// The business instant now.
    pub fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now()
    }

    pub(crate) fn check_permitted(principal: &Principal, permitted: bool, name: &str) -> Result<(), AppError> {
        if permitted {
            Ok(())
        } else {
            Err(AppError::PermissionDenied { role: principal.role, action: name.to_owned() })
        }
    }

    /// REG-1: registers a new lead; its id derives from the request.
    pub async fn register(
        &self,
        principal: &Principal,
        request_id: &RequestId,
        registration: Registration,
    ) -> Result<CommandReply, AppError> {
        let correlation = command_correlation(principal, request_id);
        let id = new_complaint_id(correlation);
        self.complaint_command(principal, request_id, &id, ComplaintCommand::Register { id: id.clone(), registration })
            .await
    }

    /// TRF-1, TRF-3: classifies a lead, splitting off a linked lead for each extra category
    /// (interpretation 15); the linked leads' ids derive from the lead's.
    #[allow(clippy::too_many_arguments)]
    pub async fn classify(
        &self,
        principal: &Principal,
        request_id: &RequestId,
        complaint_id: &ComplaintId,
        category: String,
        urgency: Urgency,
        complexity: Complexity,
        split_categories: Vec<String>,
    ) -> Result<CommandReply, AppError> {
        let (state, _) = self.engine.state(&self.complaints, &stream_name(&complaint_id.stream_name())?).await?;
        let already_linked = state.lead.as_ref().map_or(0, |lead| lead.children.len());
        // The request is what the client asked, before the linked leads' ids are derived
        // from the lead as it stands (a repeat finds them derived already).
        let asked = ClassifyAsked {
            category: category.clone(),
            urgency,
            complexity,
            split_categories: split_categories.clone(),
        };
        let split = split_categories
            .into_iter()
            .enumerate()
            .map(|(index, category)| {
                Ok(SplitRequest { lead: split_lead_id(complaint_id, already_linked + index)?, category })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let command = ComplaintCommand::Classify { category, urgency, complexity, split };
        self.complaint_command_asked(principal, request_id, complaint_id, command, &asked).await
    }

    /// Any command on an existing lead (and the registration, through [`App::register`]).
    pub async fn complaint_command(
        &self,
        principal: &Principal,
        request_id: &RequestId,
        complaint_id: &ComplaintId,
        command: ComplaintCommand,
    ) -> Result<CommandReply, AppError> {
        let asked = command.clone();
        self.complaint_command_asked(principal, request_id, complaint_id, command, &asked).await
    }

    /// A command on a lead, `asked` rendering what the client asked for: the request's
    /// fingerprint binds the request id to it.
    async fn complaint_command_asked(
        &self,
        principal: &Principal,
        request_id: &RequestId,
        complaint_id: &ComplaintId,
        command: ComplaintCommand,
        asked: &(impl serde::Serialize + std::fmt::Debug + Sync),
    ) -> Result<CommandReply, AppError> {
        let stream = stream_name(&complaint_id.stream_name())?;
        let allowed = (command.name(), command.permitted(principal.role));
        let ClientOutcome { outcome, actor, correlation } =
            self.client_command(&self.complaints, &stream, principal, request_id, allowed, command, asked).await?;
        let mut created = Vec::new();
        for (index, event) in outcome.events.iter().enumerate() {
            let ComplaintFact::Classified { split_into, .. } = &event.fact else { continue };
            if split_into.is_empty() {
                continue;
            }
            created.extend(split_into.iter().map(|split| split.lead.clone()));
            // The linked leads are opened now, so the client can act on them at once; the
            // reactor would open them too, a moment later.
            let (state, _) = self.engine.state(&self.complaints, &stream).await?;
            if let Some(lead) = &state.lead {
                let cause = event_id(correlation, u32::try_from(index).unwrap_or(u32::MAX));
                if let Err(error) = self.open_split_leads(cause, event, lead, &actor).await {
                    tracing::warn!(%error, lead = %complaint_id, "linked leads left to the reactor");
                }
            }
        }
        if outcome.written.replayed {
            let (state, _) = self.engine.state(&self.complaints, &stream).await?;
            if let Some(lead) = &state.lead {
                created.extend(lead.children.iter().map(|split| split.lead.clone()));
            }
        }
        Ok(CommandReply { written: outcome.written, complaint_id: Some(complaint_id.clone()), uscc: None, created })
    }

    /// A command on a company.
    pub async fn enterprise_command(
        &self,
        principal: &Principal,
        request_id: &RequestId,
        uscc: &Uscc,
        command: EnterpriseCommand,
    ) -> Result<CommandReply, AppError> {
        let stream = stream_name(&uscc.stream_name())?;
        let allowed = (command.name(), command.permitted(principal.role));
        let asked = command.clone();
        let ClientOutcome { outcome, .. } =
            self.client_command(&self.enterprises, &stream, principal, request_id, allowed, command, &asked).await?;
        Ok(CommandReply { written: outcome.written, complaint_id: None, uscc: Some(uscc.clone()), created: Vec::new() })
    }

    /// A client's command on `stream`: refused unless `allowed` (the command's name and whether
    /// the principal's role may issue it) permits it; the request id is bound to `asked`, what
    /// the client asked for, by its fingerprint; a refusal names the client's request id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn client_command<A>(
        &self,
        cache: &StreamCache<A>,
        stream: &StreamName,
        principal: &Principal,
        request_id: &RequestId,
        (name, permitted): (&'static str, bool),
        command: A::Command,
        asked: &(impl serde::Serialize + std::fmt::Debug + Sync),
    ) -> Result<ClientOutcome<A::Event>, AppError>
    where
        A: Aggregate,
        A::Command: Clone,
    {
        Self::check_permitted(principal, permitted, name)?;
        let actor = principal.actor(name)?;
        let correlation = command_correlation(principal, request_id);
        let fingerprint = request_fingerprint(correlation, asked)?;
        let outcome = self
            .engine
            .execute(cache, stream, &actor, correlation, Causation::Request(&fingerprint), self.now(), command)
            .await
            .map_err(|error| error.naming_request(request_id))?;
        Ok(ClientOutcome { outcome, actor, correlation })
    }

    /// A command of tousu's deadline reactor on any stream, with its own correlation.
    pub async fn system_complaint_command(
        &self,
        complaint_id: &ComplaintId,
        correlation: EventId,
        command: ComplaintCommand,
    ) -> Result<Written, AppError> {
        let actor = Principal::system().actor(command.name())?;
        let stream = stream_name(&complaint_id.stream_name())?;
        let outcome = self
            .engine
            .execute(&self.complaints, &stream, &actor, correlation, correlation.into(), self.clock.now(), command)
            .await?;
        Ok(outcome.written)
    }

    /// A command of tousu's deadline reactor on a company.
    pub async fn system_enterprise_command(
        &self,
        uscc: &Uscc,
        correlation: EventId,
        command: EnterpriseCommand,
    ) -> Result<Written, AppError> {
        let actor = Principal::system().actor(command.name())?;
        let stream = stream_name(&uscc.stream_name())?;
        let outcome = self
            .engine
            .execute(&self.enterprises, &stream, &actor, correlation, correlation.into(), self.clock.now(), command)
            .await?;
        Ok(outcome.written)
    }

    /// One lead with its full history (ACC-1), if the principal may read it.
    pub async fn complaint(
        &self,
        principal: &Principal,
        complaint_id: &ComplaintId,
    ) -> Result<ComplaintView, AppError> {
        principal.check_read_leads()?;
        let stream = stream_name(&complaint_id.stream_name())?;
        let not_found = || AppError::NotFound { what: "lead", id: complaint_id.to_string() };
        let mut recorded = Vec::new();
        let mut from = StreamFrom::Start;
        loop {
            let batch = self.store().read_stream(&stream, Direction::Forwards, from, 1024).await?;
            let done = batch.len() < 1024;
            if let Some(last) = batch.last() {
                from = StreamFrom::Revision(last.revision + 1);
            }
            recorded.extend(batch);
            if done {
                break;
            }
        }
        let mut state = ComplaintState::default();
        let mut events = Vec::with_capacity(recorded.len());
        for stored in recorded {
            let event: ComplaintEvent = serde_json::from_slice(&stored.event.payload).map_err(|error| {
                AppError::Internal(format!("event {} of {} does not decode: {error}", stored.event.id, stored.stream))
            })?;
            state = tousu_domain::complaint::evolve(state, &event);
            events.push((stored, event));
        }
        let lead = state.lead.ok_or_else(not_found)?;
        if !principal.may_read_lead(&lead) {
            return Err(AppError::PermissionDenied {
                role: principal.role,
                action: format!("read lead {complaint_id}"),
            });
        }
        Ok(ComplaintView { lead, events })
    }

    /// One company's state.
    pub async fn enterprise(&self, principal: &Principal, uscc: &Uscc) -> Result<Company, AppError> {
        principal.check_read_enterprises()?;
        let (state, _) = self.engine.state(&self.enterprises, &stream_name(&uscc.stream_name())?).await?;
        state.company.ok_or_else(|| AppError::NotFound { what: "company", id: uscc.to_string() })
    }
}
