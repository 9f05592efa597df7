//! `tousu.v1.Admin`: projection status and rebuilds, the holiday calendar in force and the
//! loading of a year's official schedule (interpretation 21), and the reactions stuck, for
//! operators. A refusal names the rule the RPC's data serves (`crate::rules`: ACC-1 for the
//! read models, ACC-2 for the calendar) where it names none of its own.

use std::sync::Arc;

use chrono::Utc;
use tonic::{Request, Response, Status};
use tousu_app::reactions::StuckReaction;
use tousu_app::schedules::ScheduleLoad;
use tousu_app::{App, AppError, Principal, RequestId};
use tousu_domain::calendar::provisional::{FIRST_PROVISIONAL_YEAR, LAST_PROVISIONAL_YEAR};
use tousu_domain::calendar::{Calendar, ScheduleWarning, YearStatus};
use tousu_domain::limits::Echo;
use tousu_projection::{RebuildError, Supervisor};
use tousu_store::EventStore;

use crate::auth::principal;
use crate::convert::{self, timestamp_utc};
use crate::pb;
use crate::pb::admin_server::Admin;
use crate::status::{failed_precondition, internal, invalid, naming_rule_of, to_status};

/// What an operator sees and does on a node besides its read models: the calendar in force,
/// loading a year's official schedule, the reactions stuck. The application implements it;
/// the admin service needs no knowledge of the store.
#[tonic::async_trait]
pub trait NodeOperations: Send + Sync {
    /// The calendar in force.
    fn calendar(&self) -> Arc<Calendar>;
    /// The warning that the last official year is ending, today.
    fn schedule_warning(&self) -> Option<ScheduleWarning>;
    /// The reactions stuck now.
    fn stuck_reactions(&self) -> Vec<StuckReaction>;
    /// Why the event store refuses writes until it is reopened; `None` while it takes them.
    fn store_refusing_writes(&self) -> Option<String>;
    /// Loads a year's official schedule.
    async fn load_calendar_year(
        &self,
        principal: &Principal,
        request_id: &RequestId,
        text: String,
    ) -> Result<ScheduleLoad, AppError>;
}

#[tonic::async_trait]
impl<S: EventStore + 'static> NodeOperations for App<S> {
    fn calendar(&self) -> Arc<Calendar> {
        App::calendar(self)
    }

    fn schedule_warning(&self) -> Option<ScheduleWarning> {
        App::schedule_warning(self)
    }

    fn stuck_reactions(&self) -> Vec<StuckReaction> {
        App::stuck_reactions(self)
    }

    fn store_refusing_writes(&self) -> Option<String> {
        self.store().write_refusal().borrow().clone()
    }

    async fn load_calendar_year(
        &self,
        principal: &Principal,
        request_id: &RequestId,
        text: String,
    ) -> Result<ScheduleLoad, AppError> {
        App::load_calendar_year(self, principal, request_id, text).await
    }
}

/// The admin service.
pub struct AdminService {
    supervisor: Arc<Supervisor>,
    node: Arc<dyn NodeOperations>,
}

impl AdminService {
    /// A service over the projection supervisor and the node.
    pub fn new(supervisor: Arc<Supervisor>, node: Arc<dyn NodeOperations>) -> Self {
        AdminService { supervisor, node }
    }
}

/// A projection's status as the protocol reports it.
pub fn status(status: &tousu_projection::ProjectionStatus) -> pb::ProjectionStatus {
    pb::ProjectionStatus {
        name: status.name.clone(),
        version: status.version,
        state: status.state.as_str().to_owned(),
        live_generation: status.live.map_or(0, |live| live.number),
        live_version: status.live.map_or(0, |live| live.version),
        checkpoint: status.checkpoint.position,
        events: status.checkpoint.events,
        head: status.head,
        lag_events: status.lag_events(),
        lag_seconds: status.lag_seconds(Utc::now()),
        building_generation: status.building.as_ref().map_or(0, |building| building.generation),
        building_checkpoint: status.building.as_ref().map_or(0, |building| building.position),
        building_started_at: status.building.as_ref().map(|building| timestamp_utc(building.started_at)),
        last_error: status.last_error.clone().unwrap_or_default(),
    }
}

/// A stuck reaction as the protocol reports it.
pub fn stuck_reaction(stuck: &StuckReaction) -> pb::StuckReaction {
    pb::StuckReaction {
        stream: stuck.stream.clone(),
        revision: stuck.revision,
        position: stuck.position,
        event_type: stuck.event_type.clone(),
        reason: stuck.reason.clone(),
        attempts: stuck.attempts,
        since: Some(timestamp_utc(stuck.since)),
        last_attempt: Some(timestamp_utc(stuck.last_attempt)),
    }
}

fn calendar_year(status: YearStatus) -> pb::CalendarYear {
    pb::CalendarYear {
        year: status.year,
        kind: status.kind.as_str().to_owned(),
        version: status.version,
        sources: status.sources,
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_projections(
        &self,
        request: Request<pb::ListProjectionsRequest>,
    ) -> Result<Response<pb::ListProjectionsResponse>, Status> {
        naming_rule_of::<pb::ListProjectionsRequest, _>(self.projections(request)).await
    }

    async fn get_calendar_status(
        &self,
        request: Request<pb::GetCalendarStatusRequest>,
    ) -> Result<Response<pb::CalendarStatus>, Status> {
        naming_rule_of::<pb::GetCalendarStatusRequest, _>(self.calendar_status(request)).await
    }

    async fn get_calendar_year(
        &self,
        request: Request<pb::GetCalendarYearRequest>,
    ) -> Result<Response<pb::CalendarYearDays>, Status> {
        naming_rule_of::<pb::GetCalendarYearRequest, _>(self.calendar_days(request)).await
    }

    async fn load_calendar_year(
        &self,
        request: Request<pb::LoadCalendarYearRequest>,
    ) -> Result<Response<pb::LoadCalendarYearResponse>, Status> {
        naming_rule_of::<pb::LoadCalendarYearRequest, _>(self.load_year(request)).await
    }

    async fn rebuild_projection(
        &self,
        request: Request<pb::RebuildProjectionRequest>,
    ) -> Result<Response<pb::RebuildProjectionResponse>, Status> {
        naming_rule_of::<pb::RebuildProjectionRequest, _>(self.rebuild(request)).await
    }
}

/// The RPCs, each refusing with no rule of its own; [`Admin`] names the RPC's.
impl AdminService {
    async fn projections(
        &self,
        request: Request<pb::ListProjectionsRequest>,
    ) -> Result<Response<pb::ListProjectionsResponse>, Status> {
        principal(&request)?.check_operate().map_err(to_status)?;
        Ok(Response::new(pb::ListProjectionsResponse {
            projections: self.supervisor.status().iter().map(status).collect(),
            calendar_warning: self.node.schedule_warning().map(|warning| warning.to_string()).unwrap_or_default(),
            stuck_reactions: self.node.stuck_reactions().iter().map(stuck_reaction).collect(),
            store_refusing_writes_reason: self.node.store_refusing_writes().unwrap_or_default(),
        }))
    }

    async fn calendar_status(
        &self,
        request: Request<pb::GetCalendarStatusRequest>,
    ) -> Result<Response<pb::CalendarStatus>, Status> {
        principal(&request)?.check_operate().map_err(to_status)?;
        let calendar = self.node.calendar();
        let warning = self.node.schedule_warning();
        Ok(Response::new(pb::CalendarStatus {
            official_years: calendar.years().filter_map(|year| calendar.year_status(year)).map(calendar_year).collect(),
            last_official_year: calendar.last_official_year().unwrap_or(0),
            provisional_from: FIRST_PROVISIONAL_YEAR,
            provisional_to: LAST_PROVISIONAL_YEAR,
            warning: warning.map(|warning| warning.to_string()).unwrap_or_default(),
            warning_days_left: warning.map_or(0, |warning| warning.days_left),
        }))
    }

    async fn calendar_days(
        &self,
        request: Request<pb::GetCalendarYearRequest>,
    ) -> Result<Response<pb::CalendarYearDays>, Status> {
        principal(&request)?.check_operate().map_err(to_status)?;
        let year = request.into_inner().year;
        let calendar = self.node.calendar();
        let (Some(status), Some(days)) = (calendar.year_status(year), calendar.days_of_year(year)) else {
            return Err(invalid(
                "year",
                format!(
                    "{year} has no official schedule and lies outside the provisional calendar's \
                     {FIRST_PROVISIONAL_YEAR}–{LAST_PROVISIONAL_YEAR}"
                ),
            ));
        };
        Ok(Response::new(pb::CalendarYearDays {
            year: Some(calendar_year(status)),
            days: days
                .into_iter()
                .map(|day| pb::CalendarDay {
                    date: day.date.to_string(),
                    kind: day.kind.label_zh().to_owned(),
                    name: day.name,
                })
                .collect(),
        }))
    }

    async fn load_year(
        &self,
        request: Request<pb::LoadCalendarYearRequest>,
    ) -> Result<Response<pb::LoadCalendarYearResponse>, Status> {
        let principal = principal(&request)?;
        principal.check_operate().map_err(to_status)?;
        let message = request.into_inner();
        let request_id = convert::request_id(&message.request_id)?;
        let load = self.node.load_calendar_year(&principal, &request_id, message.text).await.map_err(to_status)?;
        Ok(Response::new(pb::LoadCalendarYearResponse {
            year: load.year,
            version: load.version,
            recorded: !load.written.replayed && !load.written.event_types.is_empty(),
            replayed: load.written.replayed,
        }))
    }

    async fn rebuild(
        &self,
        request: Request<pb::RebuildProjectionRequest>,
    ) -> Result<Response<pb::RebuildProjectionResponse>, Status> {
        principal(&request)?.check_operate().map_err(to_status)?;
        let name = request.into_inner().name;
        let names: Vec<String> = if name == "all" {
            self.supervisor.models().iter().map(|model| model.name().to_owned()).collect()
        } else {
            vec![name]
        };
        let mut started = Vec::new();
        for name in names {
            match self.supervisor.rebuild(&name) {
                Ok(()) => started.push(name),
                Err(RebuildError::Unknown(name)) => {
                    return Err(invalid("name", format!("no projection is called {}", Echo(&name))));
                }
                Err(error @ RebuildError::AlreadyRunning(_)) => {
                    return Err(failed_precondition("rebuild_running", error.to_string()));
                }
                Err(error) => return Err(internal(error.to_string())),
            }
        }
        Ok(Response::new(pb::RebuildProjectionResponse { started }))
    }
}
