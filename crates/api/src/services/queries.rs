//! `tousu.v1.Queries`. A refusal names the rule the query serves (`crate::rules`) where it
//! names none of its own.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tousu_app::{App, AppError};
use tousu_domain::calendar::{Period, shanghai};
use tousu_domain::deadline::DeadlineKind;
use tousu_domain::limits::{PLACE_MAX_CHARS, REFERENCE_MAX_CHARS};
use tousu_domain::rule::RuleId;
use tousu_read_leads::LeadFilter;
use tousu_store::EventStore;

use crate::auth::principal;
use crate::convert;
use crate::pb;
use crate::pb::queries_server::Queries;
use crate::read::ReadModels;
use crate::status::{invalid, naming_rule, naming_rule_of, to_status};
use crate::views;

/// The default page size of a list.
const DEFAULT_PAGE: usize = 50;
/// The largest page size of a list.
const MAX_PAGE: usize = 500;

/// The query service.
pub struct QueryService<S> {
    app: Arc<App<S>>,
    read_models: Arc<ReadModels>,
}

impl<S> QueryService<S> {
    /// A service over the application and the read models.
    pub fn new(app: Arc<App<S>>, read_models: Arc<ReadModels>) -> Self {
        QueryService { app, read_models }
    }
}

/// How long a list waits for the `leads` read model to catch up with the log, so that a
/// client sees its own writes.
const LIST_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

#[tonic::async_trait]
impl<S: EventStore + 'static> Queries for QueryService<S> {
    async fn get_complaint(
        &self,
        request: Request<pb::GetComplaintRequest>,
    ) -> Result<Response<pb::Complaint>, Status> {
        naming_rule_of::<pb::GetComplaintRequest, _>(async {
            let principal = principal(&request)?;
            let id = convert::complaint_id("complaint_id", &request.get_ref().complaint_id)?;
            let view = self.app.complaint(&principal, &id).await.map_err(to_status)?;
            Ok(Response::new(views::complaint(&view, &principal, self.app.now())))
        })
        .await
    }

    async fn list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        naming_rule_of::<pb::ListComplaintsRequest, _>(self.list(request)).await
    }

    async fn get_enterprise(
        &self,
        request: Request<pb::GetEnterpriseRequest>,
    ) -> Result<Response<pb::Enterprise>, Status> {
        naming_rule_of::<pb::GetEnterpriseRequest, _>(async {
            let principal = principal(&request)?;
            let uscc = convert::uscc("uscc", &request.get_ref().uscc)?;
            let company = self.app.enterprise(&principal, &uscc).await.map_err(to_status)?;
            Ok(Response::new(views::enterprise(&company, &self.app.domain().policy, self.app.now())))
        })
        .await
    }

    async fn calculate_deadline(
        &self,
        request: Request<pb::CalculateDeadlineRequest>,
    ) -> Result<Response<pb::CalculateDeadlineResponse>, Status> {
        naming_rule_of::<pb::CalculateDeadlineRequest, _>(self.calculate(request)).await
    }
}

impl<S: EventStore + 'static> QueryService<S> {
    async fn list(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        let principal = principal(&request)?;
        let m = request.into_inner();
        let restriction = principal.list_restriction().map_err(to_status)?;
        let mut filter = LeadFilter {
            status: convert::optional_status("status", m.status)?,
            body: convert::optional_body("body", m.body)?,
            category: convert::text_filter("category", m.category, REFERENCE_MAX_CHARS)?,
            district: convert::text_filter("district", m.district, PLACE_MAX_CHARS)?,
            street: convert::text_filter("street", m.street, PLACE_MAX_CHARS)?,
            company: match m.company_uscc.as_str() {
                "" => None,
                uscc => Some(convert::uscc("company_uscc", uscc)?.to_string()),
            },
            registered_from: convert::optional_instant("registered_from", m.registered_from)?,
            registered_until: convert::optional_instant("registered_to", m.registered_to)?,
            overdue_only: false,
        };
        let page_size = match usize::try_from(m.page_size).unwrap_or(usize::MAX) {
            0 => DEFAULT_PAGE,
            size if size > MAX_PAGE => return Err(invalid("page_size", format!("at most {MAX_PAGE}"))),
            size => size,
        };
        let offset = if m.page_token.is_empty() {
            0
        } else {
            m.page_token.parse::<usize>().map_err(|_| invalid("page_token", "is not a token this service issued"))?
        };
        // Handlers and street offices list only the leads their body holds.
        if let Some(body) = restriction {
            if filter.body.is_some_and(|asked| asked != body) {
                return Ok(Response::new(pb::ListComplaintsResponse::default()));
            }
            filter.body = Some(body);
        }
        let head = self.app.store().head().await.map_err(|error| to_status(AppError::from(error)))?;
        if let Some(head) = head {
            self.read_models.wait_for(tousu_read_leads::NAME, head.0, LIST_CATCH_UP).await;
        }
        let now = self.app.now();
        let ((rows, total), _) = self
            .read_models
            .query(tousu_read_leads::NAME, move |tx, prefix| {
                tousu_read_leads::list(tx, prefix, &filter, offset as u64, page_size as u64, now)
            })
            .await?;
        let end = offset + rows.len();
        Ok(Response::new(pb::ListComplaintsResponse {
            complaints: rows.iter().map(views::lead_row).collect(),
            next_page_token: if (end as u64) < total { end.to_string() } else { String::new() },
            total,
        }))
    }

    async fn calculate(
        &self,
        request: Request<pb::CalculateDeadlineRequest>,
    ) -> Result<Response<pb::CalculateDeadlineResponse>, Status> {
        principal(&request)?;
        let m = request.into_inner();
        let kind = convert::deadline_kind("kind", m.kind)?;
        let start = convert::instant("start", m.start)?;
        let domain = self.app.domain();
        let mut period = kind.period(&domain.policy);
        if m.extension_days > 0 {
            let max = domain.policy.periods.penalty_extension_max_days;
            // The extension is PEN-1's, whatever deadline the query serves.
            if kind != DeadlineKind::PenaltyComplete {
                let refusal = invalid("extension_days", "applies to DEADLINE_KIND_PENALTY_COMPLETE only (PEN-1)");
                return Err(naming_rule(refusal, RuleId::Pen1));
            }
            if m.extension_days > max {
                let refusal = invalid("extension_days", format!("PEN-1 allows at most {max} days"));
                return Err(naming_rule(refusal, RuleId::Pen1));
            }
            period = Period::Days(domain.policy.periods.penalty_complete_days + m.extension_days);
        }
        let computed = self.app.calendar().compute_due(start, period).map_err(|error| {
            to_status(tousu_app::AppError::Domain(tousu_domain::DomainError::Calendar {
                rule: kind.rule(),
                source: error,
            }))
        })?;
        Ok(Response::new(pb::CalculateDeadlineResponse {
            due: Some(convert::timestamp(computed.due)),
            due_rfc3339: computed.due.with_timezone(&shanghai()).to_rfc3339(),
            rule: kind.rule().as_str().to_owned(),
            period: period.to_string(),
            provisional: computed.provisional,
            calendar_version: computed.version.as_str().to_owned(),
        }))
    }
}
