//! `tousu.v1.Admin`: projection status and rebuilds, for operators.

use std::sync::Arc;

use chrono::Utc;
use tonic::{Request, Response, Status};
use tousu_projection::{RebuildError, Supervisor};

use crate::auth::principal;
use crate::convert::timestamp_utc;
use crate::pb;
use crate::pb::admin_server::Admin;
use crate::status::{invalid, to_status};

/// The admin service.
pub struct AdminService {
    supervisor: Arc<Supervisor>,
}

impl AdminService {
    /// A service over the projection supervisor.
    pub fn new(supervisor: Arc<Supervisor>) -> Self {
        AdminService { supervisor }
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

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_projections(
        &self,
        request: Request<pb::ListProjectionsRequest>,
    ) -> Result<Response<pb::ListProjectionsResponse>, Status> {
        principal(&request)?.check_operate().map_err(to_status)?;
        Ok(Response::new(pb::ListProjectionsResponse {
            projections: self.supervisor.status().iter().map(status).collect(),
        }))
    }

    async fn rebuild_projection(
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
                    return Err(invalid("name", format!("no projection is called {name:?}")));
                }
                Err(error @ RebuildError::AlreadyRunning(_)) => {
                    return Err(Status::failed_precondition(error.to_string()));
                }
                Err(error) => return Err(Status::internal(error.to_string())),
            }
        }
        Ok(Response::new(pb::RebuildProjectionResponse { started }))
    }
}
