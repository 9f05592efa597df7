//! `tousu.v1.ComplaintCommands`. Every refusal names a rule: the procedure's own, or the rule
//! of the command's RPC (`crate::rules`) for a request that cannot become the command.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use tousu_app::App;
use tousu_domain::complaint::{ComplaintCommand, PenaltyDecision, Registration, ReviewOutcome};
use tousu_store::EventStore;

use crate::auth::principal;
use crate::pb::complaint_commands_server::ComplaintCommands;
use crate::status::{naming_rule_of, to_status};
use crate::views::command_result;
use crate::{convert, own_writes, pb};

/// The lead command service.
pub struct ComplaintService<S> {
    app: Arc<App<S>>,
}

impl<S> ComplaintService<S> {
    /// A service over the application.
    pub fn new(app: Arc<App<S>>) -> Self {
        ComplaintService { app }
    }
}

type Reply = Result<Response<pb::CommandResult>, Status>;

impl<S: EventStore + 'static> ComplaintService<S> {
    /// Carries out the command of a request on an existing lead; a refusal names the rule of
    /// the RPC whose request is `T` where it names none of its own.
    async fn run<T: prost::Name>(
        &self,
        request: &Request<T>,
        request_id: &str,
        complaint_id: &str,
        command: impl FnOnce() -> Result<ComplaintCommand, Status>,
    ) -> Reply {
        naming_rule_of::<T, _>(async {
            let principal = principal(request)?;
            let request_id_value = convert::request_id(request_id)?;
            let complaint_id = convert::complaint_id("complaint_id", complaint_id)?;
            let command = command()?;
            let reply = self
                .app
                .complaint_command(&principal, &request_id_value, &complaint_id, command)
                .await
                .map_err(to_status)?;
            own_writes::record(request, &principal, reply.written.position);
            Ok(Response::new(command_result(request_id, reply)))
        })
        .await
    }
}

#[tonic::async_trait]
impl<S: EventStore + 'static> ComplaintCommands for ComplaintService<S> {
    async fn register(&self, mut request: Request<pb::RegisterRequest>) -> Reply {
        naming_rule_of::<pb::RegisterRequest, _>(async {
            let principal = principal(&request)?;
            let message = std::mem::take(request.get_mut());
            let request_id = convert::request_id(&message.request_id)?;
            let registration = Registration {
                channel: convert::channel("channel", message.channel)?,
                received_at: convert::instant("received_at", message.received_at)?,
                complainant: convert::complainant(message.complainant)?,
                content: message.content,
                company: convert::company(message.company)?,
                place: convert::place(message.place)?,
                hotline_ticket: (!message.hotline_ticket.is_empty()).then_some(message.hotline_ticket),
            };
            let reply = self.app.register(&principal, &request_id, registration).await.map_err(to_status)?;
            own_writes::record(&request, &principal, reply.written.position);
            Ok(Response::new(command_result(&message.request_id, reply)))
        })
        .await
    }

    async fn classify(&self, mut request: Request<pb::ClassifyRequest>) -> Reply {
        naming_rule_of::<pb::ClassifyRequest, _>(async {
            let principal = principal(&request)?;
            let message = std::mem::take(request.get_mut());
            let request_id = convert::request_id(&message.request_id)?;
            let complaint_id = convert::complaint_id("complaint_id", &message.complaint_id)?;
            let urgency = convert::urgency("urgency", message.urgency)?;
            let complexity = convert::complexity("complexity", message.complexity)?;
            let split = convert::split_categories(message.split)?;
            let reply = self
                .app
                .classify(&principal, &request_id, &complaint_id, message.category, urgency, complexity, split)
                .await
                .map_err(to_status)?;
            own_writes::record(&request, &principal, reply.written.position);
            Ok(Response::new(command_result(&message.request_id, reply)))
        })
        .await
    }

    async fn notify_urgent(&self, request: Request<pb::NotifyUrgentRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::NotifyUrgent {
                notified_body: convert::body("notified_body", m.notified_body)?,
                emergency_measures: m.emergency_measures.clone(),
                district_report: m.district_report.clone(),
            })
        })
        .await
    }

    async fn transfer(&self, request: Request<pb::TransferRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::Transfer {
                to: convert::body("to", m.to)?,
                method: convert::transfer_method("method", m.method)?,
                note: m.note.clone(),
            })
        })
        .await
    }

    async fn accept(&self, request: Request<pb::AcceptRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || Ok(ComplaintCommand::Accept)).await
    }

    async fn return_transfer(&self, request: Request<pb::ReturnTransferRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::ReturnTransfer { reason: m.reason.clone() })
        })
        .await
    }

    async fn review_return(&self, request: Request<pb::ReviewReturnRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::ReviewReturn { accept: m.accept, reason: m.reason.clone() })
        })
        .await
    }

    async fn regrade(&self, request: Request<pb::RegradeRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::Regrade { reason: m.reason.clone() })
        })
        .await
    }

    async fn declare_plan_needed(&self, request: Request<pb::DeclarePlanNeededRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::DeclarePlanNeeded { reason: m.reason.clone() })
        })
        .await
    }

    async fn submit_plan(&self, request: Request<pb::SubmitPlanRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::SubmitPlan {
                plan: m.plan.clone(),
                resolve_by: convert::date("resolve_by", &m.resolve_by)?,
            })
        })
        .await
    }

    async fn report_progress(&self, request: Request<pb::ReportProgressRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::ReportProgress { summary: m.summary.clone() })
        })
        .await
    }

    async fn record_finding(&self, request: Request<pb::RecordFindingRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::RecordFinding {
                finding: convert::finding("finding", m.finding)?,
                summary: m.summary.clone(),
                attribution: convert::attribution(m.attribution.clone()),
            })
        })
        .await
    }

    async fn give_feedback(&self, request: Request<pb::GiveFeedbackRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::GiveFeedback {
                recipient: convert::feedback_recipient("recipient", m.recipient)?,
                content: m.content.clone(),
            })
        })
        .await
    }

    async fn open_penalty_matter(&self, request: Request<pb::OpenPenaltyMatterRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::OpenPenaltyMatter { received_at: convert::instant("received_at", m.received_at)? })
        })
        .await
    }

    async fn verify_penalty_matter(&self, request: Request<pb::VerifyPenaltyMatterRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::VerifyPenaltyMatter {
                outcome: convert::penalty_verification("outcome", m.outcome)?,
                summary: m.summary.clone(),
            })
        })
        .await
    }

    async fn file_penalty_case(&self, request: Request<pb::FilePenaltyCaseRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::FilePenaltyCase { case_number: m.case_number.clone() })
        })
        .await
    }

    async fn extend_penalty_period(&self, request: Request<pb::ExtendPenaltyPeriodRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::ExtendPenaltyPeriod { days: m.days, approved_by: m.approved_by.clone() })
        })
        .await
    }

    async fn decide_penalty(&self, request: Request<pb::DecidePenaltyRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            let decision = if m.imposed {
                PenaltyDecision::Imposed { description: m.description.clone(), fine_fen: m.fine_fen }
            } else {
                PenaltyDecision::NotImposed { reason: m.reason.clone() }
            };
            Ok(ComplaintCommand::DecidePenalty { decision })
        })
        .await
    }

    async fn sign_closure(&self, request: Request<pb::SignClosureRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::SignClosure { opinion: m.opinion.clone() })
        })
        .await
    }

    async fn countersign_closure(&self, request: Request<pb::CountersignClosureRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::CountersignClosure { opinion: m.opinion.clone() })
        })
        .await
    }

    async fn review_closure(&self, request: Request<pb::ReviewClosureRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            let outcome =
                if m.cancel { ReviewOutcome::Cancelled } else { ReviewOutcome::SentBack { reason: m.reason.clone() } };
            Ok(ComplaintCommand::ReviewClosure { outcome })
        })
        .await
    }

    async fn record_satisfaction(&self, request: Request<pb::RecordSatisfactionRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::RecordSatisfaction {
                satisfaction: convert::satisfaction("satisfaction", m.satisfaction)?,
                comment: m.comment.clone(),
            })
        })
        .await
    }

    async fn decide_referral(&self, request: Request<pb::DecideReferralRequest>) -> Reply {
        let m = request.get_ref();
        self.run(&request, &m.request_id, &m.complaint_id, || {
            Ok(ComplaintCommand::DecideReferral {
                seq: m.seq,
                decision: convert::referral_decision("decision", m.decision)?,
                reason: m.reason.clone(),
            })
        })
        .await
    }
}
