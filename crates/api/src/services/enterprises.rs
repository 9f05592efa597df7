//! `tousu.v1.EnterpriseCommands`. Every refusal names a rule: the procedure's own, or the rule
//! of the command's RPC (`crate::rules`) for a request that cannot become the command.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tousu_app::App;
use tousu_domain::enterprise::EnterpriseCommand;
use tousu_store::EventStore;

use crate::auth::principal;
use crate::pb::enterprise_commands_server::EnterpriseCommands;
use crate::status::{invalid, naming_rule_of, to_status};
use crate::views::command_result;
use crate::{convert, own_writes, pb};

/// The company command service.
pub struct EnterpriseService<S> {
    app: Arc<App<S>>,
}

impl<S> EnterpriseService<S> {
    /// A service over the application.
    pub fn new(app: Arc<App<S>>) -> Self {
        EnterpriseService { app }
    }
}

type Reply = Result<Response<pb::CommandResult>, Status>;

impl<S: EventStore + 'static> EnterpriseService<S> {
    /// Carries out the command of a request on a company; a refusal names the rule of the RPC
    /// whose request is `T` where it names none of its own.
    async fn run<T: prost::Name>(
        &self,
        request: &Request<T>,
        request_id: &str,
        uscc: &str,
        command: impl FnOnce() -> Result<EnterpriseCommand, Status>,
    ) -> Reply {
        naming_rule_of::<T, _>(async {
            let principal = principal(request)?;
            let request_id_value = convert::request_id(request_id)?;
            let uscc = convert::uscc("uscc", uscc)?;
            let command = command()?;
            let reply =
                self.app.enterprise_command(&principal, &request_id_value, &uscc, command).await.map_err(to_status)?;
            own_writes::record(request, &principal, reply.written.position);
            Ok(Response::new(command_result(request_id, reply)))
        })
        .await
    }
}

#[tonic::async_trait]
impl<S: EventStore + 'static> EnterpriseCommands for EnterpriseService<S> {
    async fn record_credit_rating(&self, request: Request<pb::RecordCreditRatingRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::RecordCreditRating { rating: m.rating.clone() })
        })
        .await
    }

    async fn record_blacklisting(&self, request: Request<pb::RecordBlacklistingRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::RecordBlacklisting { listed_on: convert::date("listed_on", &m.listed_on)? })
        })
        .await
    }

    async fn record_blacklist_removal(&self, request: Request<pb::RecordBlacklistRemovalRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::RecordBlacklistRemoval { removed_on: convert::date("removed_on", &m.removed_on)? })
        })
        .await
    }

    async fn record_survey(&self, request: Request<pb::RecordSurveyRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::RecordSurvey {
                community: m.community.clone(),
                respondents: m.respondents,
                satisfied: m.satisfied,
                publication: m.publication.clone(),
            })
        })
        .await
    }

    async fn record_rectification_refused(&self, request: Request<pb::RecordRectificationRefusedRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::RecordRectificationRefused {
                community: m.community.clone(),
                detail: m.detail.clone(),
            })
        })
        .await
    }

    async fn downgrade_grade(&self, request: Request<pb::DowngradeGradeRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            let to_grade =
                u8::try_from(m.to_grade).map_err(|_| invalid("to_grade", format!("{} is not a grade", m.to_grade)))?;
            Ok(EnterpriseCommand::DowngradeGrade { community: m.community.clone(), to_grade })
        })
        .await
    }

    async fn enforce_fee_standard(&self, request: Request<pb::EnforceFeeStandardRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::EnforceFeeStandard { community: m.community.clone(), detail: m.detail.clone() })
        })
        .await
    }

    async fn refuse_fee_standard(&self, request: Request<pb::RefuseFeeStandardRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::RefuseFeeStandard { community: m.community.clone(), detail: m.detail.clone() })
        })
        .await
    }

    async fn order_refund(&self, request: Request<pb::OrderRefundRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::OrderRefund {
                community: m.community.clone(),
                amount_fen: m.amount_fen,
                penalty: m.penalty.clone(),
            })
        })
        .await
    }

    async fn start_exit_procedure(&self, request: Request<pb::StartExitProcedureRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::StartExitProcedure {
                decision: m.decision.clone(),
                street_office_official: m.street_office_official.clone(),
            })
        })
        .await
    }

    async fn evaluate_conditions(&self, request: Request<pb::EvaluateConditionsRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || Ok(EnterpriseCommand::EvaluateConditions)).await
    }

    async fn decide_company_referral(&self, request: Request<pb::DecideCompanyReferralRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.uscc, || {
            Ok(EnterpriseCommand::DecideReferral {
                seq: m.seq,
                decision: convert::referral_decision("decision", m.decision)?,
                reason: m.reason.clone(),
            })
        })
        .await
    }
}
