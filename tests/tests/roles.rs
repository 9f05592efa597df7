//! Who may do what: the whole role × RPC matrix against a table that mirrors the protocol's
//! documentation, and the body qualifications the documentation adds ("registrars of 住建",
//! "handlers of 发改", "the leads of their body"), which are checked against the lead or
//! company acted on.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tonic::{Code, Status};
use tousu_api::pb;
use tousu_e2e::flows::{
    accept, classify, give_feedback, handling_lead, record_finding, register_lead, sign_closure, status, transfer,
};
use tousu_e2e::refusal::{Refusal, ok};
use tousu_e2e::requests::{hotline_12345_registration, registration, request_id, timestamp, unique_uscc};
use tousu_e2e::server::{
    AUDITOR, CITY_REVIEWER_SJ, CITY_REVIEWER_ZJ, HANDLER_FG, HANDLER_SJ, HANDLER_ZJ, OFFICIAL_ZJ, OPERATOR, Principal,
    REGISTRAR_XZ, REGISTRAR_ZJ, STREET_OFFICE_JB, SYSTEM, TestServer,
};

/// The principals of the matrix: every role, and a second body for the registrar and the
/// handler.
const MATRIX_PRINCIPALS: [Principal; 10] = [
    REGISTRAR_ZJ,
    REGISTRAR_XZ,
    HANDLER_ZJ,
    HANDLER_SJ,
    STREET_OFFICE_JB,
    CITY_REVIEWER_SJ,
    OFFICIAL_ZJ,
    AUDITOR,
    OPERATOR,
    SYSTEM,
];

/// Who may call an RPC: the roles, and the bodies when the protocol names them.
struct Grant {
    roles: &'static [&'static str],
    /// The bodies the protocol names ("registrars of 住建"); empty when it names none.
    bodies: &'static [&'static str],
    /// The roles the bodies apply to ("handlers of 住建" beside other roles of any body);
    /// empty when they apply to every role of the grant.
    bodies_for: &'static [&'static str],
}

impl Grant {
    fn admits(&self, principal: Principal) -> Access {
        let bodies_apply = self.bodies_for.is_empty() || self.bodies_for.contains(&principal.role);
        if !self.roles.contains(&principal.role) {
            Access::RoleDenied
        } else if bodies_apply
            && !self.bodies.is_empty()
            && !principal.body.is_some_and(|body| self.bodies.contains(&body))
        {
            Access::BodyDenied
        } else {
            Access::Allowed
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Allowed,
    RoleDenied,
    BodyDenied,
}

const fn any_body(roles: &'static [&'static str]) -> Grant {
    Grant { roles, bodies: &[], bodies_for: &[] }
}

const fn of(roles: &'static [&'static str], bodies: &'static [&'static str]) -> Grant {
    Grant { roles, bodies, bodies_for: &[] }
}

const REGISTRAR: &str = "registrar";
const HANDLER: &str = "handler";
const STREET_OFFICE: &str = "street_office";
const CITY_REVIEWER: &str = "city_reviewer";
const AUDITOR_ROLE: &str = "auditor";
const OPERATOR_ROLE: &str = "operator";
const SYSTEM_ROLE: &str = "system";
const OFFICIAL: &str = "official";
const EVERY_ROLE: &[&str] =
    &[REGISTRAR, HANDLER, STREET_OFFICE, CITY_REVIEWER, OFFICIAL, AUDITOR_ROLE, OPERATOR_ROLE, SYSTEM_ROLE];
const HANDLING: &[&str] = &[HANDLER, STREET_OFFICE];
const READERS: &[&str] = &[REGISTRAR, HANDLER, STREET_OFFICE, CITY_REVIEWER, OFFICIAL, AUDITOR_ROLE, SYSTEM_ROLE];
/// Who reads every read model: auditors, registrars, city reviewers, 住建's officials and
/// tousu's own workers.
const ALL_READ_MODELS: &[&str] = &[REGISTRAR, CITY_REVIEWER, OFFICIAL, AUDITOR_ROLE, SYSTEM_ROLE];
/// The watchlist: also handlers (of 住建 only) and street offices, who carry out its flags.
const WATCHLIST: Grant = Grant {
    roles: &[REGISTRAR, HANDLER, STREET_OFFICE, CITY_REVIEWER, OFFICIAL, AUDITOR_ROLE, SYSTEM_ROLE],
    bodies: &["ZJ"],
    bodies_for: &[HANDLER],
};

/// Every RPC of the six tousu services and who may call it, as the `.proto` comments and
/// `docs/api.md` say. Handlers, street offices and city reviewers act on the leads of their
/// own body: that depends on the lead, so it is tested below on real leads, not here.
const MATRIX: &[(&str, Grant)] = &[
    // ComplaintCommands
    ("Register", any_body(&[REGISTRAR])),
    ("Classify", of(&[REGISTRAR], &["ZJ"])),
    ("NotifyUrgent", of(&[REGISTRAR], &["ZJ"])),
    ("Transfer", of(&[REGISTRAR], &["ZJ"])),
    ("Accept", any_body(HANDLING)),
    ("ReturnTransfer", any_body(HANDLING)),
    ("ReviewReturn", of(&[REGISTRAR, OFFICIAL], &["ZJ"])),
    ("Regrade", any_body(HANDLING)),
    ("DeclarePlanNeeded", any_body(HANDLING)),
    ("SubmitPlan", any_body(HANDLING)),
    ("ReportProgress", any_body(HANDLING)),
    ("RecordFinding", any_body(HANDLING)),
    ("GiveFeedback", any_body(HANDLING)),
    ("OpenPenaltyMatter", any_body(HANDLING)),
    ("VerifyPenaltyMatter", any_body(HANDLING)),
    ("FilePenaltyCase", any_body(HANDLING)),
    ("ExtendPenaltyPeriod", any_body(HANDLING)),
    ("DecidePenalty", any_body(HANDLING)),
    ("SignClosure", any_body(HANDLING)),
    ("CountersignClosure", any_body(&[STREET_OFFICE])),
    ("ReviewClosure", any_body(&[CITY_REVIEWER])),
    ("RecordSatisfaction", of(&[REGISTRAR, HANDLER], &["XZ"])),
    ("DecideReferral", of(&[OFFICIAL], &["ZJ"])),
    // EnterpriseCommands
    ("RecordCreditRating", of(&[REGISTRAR], &["ZJ"])),
    ("RecordBlacklisting", of(&[REGISTRAR], &["ZJ"])),
    ("RecordBlacklistRemoval", of(&[REGISTRAR], &["ZJ"])),
    ("RecordSurvey", of(HANDLING, &["ZJ", "JB", "SQ"])),
    ("RecordRectificationRefused", of(HANDLING, &["ZJ", "JB", "SQ"])),
    ("DowngradeGrade", of(&[HANDLER], &["ZJ"])),
    ("EnforceFeeStandard", of(&[HANDLER], &["FG"])),
    ("RefuseFeeStandard", of(&[HANDLER], &["FG"])),
    ("OrderRefund", of(&[HANDLER], &["SJ"])),
    ("StartExitProcedure", of(&[HANDLER], &["ZJ"])),
    ("EvaluateConditions", any_body(&[OPERATOR_ROLE])),
    ("DecideCompanyReferral", of(&[OFFICIAL], &["ZJ"])),
    // Queries: "every role but operators reads" (docs/api.md); the comment on ListComplaints
    // names no roles and the list follows GetComplaint.
    ("GetComplaint", any_body(READERS)),
    ("ListComplaints", any_body(READERS)),
    ("GetEnterprise", any_body(READERS)),
    ("CalculateDeadline", any_body(EVERY_ROLE)),
    // Audit: "auditors and system workers read; operators verify" (and those who read may
    // verify what they read).
    ("ReadStream", any_body(&[AUDITOR_ROLE, SYSTEM_ROLE])),
    ("StreamAll", any_body(&[AUDITOR_ROLE, SYSTEM_ROLE])),
    ("Verify", any_body(&[AUDITOR_ROLE, SYSTEM_ROLE, OPERATOR_ROLE])),
    ("GetHead", any_body(&[AUDITOR_ROLE, SYSTEM_ROLE])),
    // ReadModels (read_models.proto): the watchlist for those who keep it and act on it; the
    // weekly summary is 住建's report to the commission; the overdue list for every reader
    // (handlers and street offices restricted to their body, tested on real leads in
    // read_models.rs); the dashboard and the bulletin are shared with every body.
    ("GetWatchlist", WATCHLIST),
    ("GetWatchlistCompany", WATCHLIST),
    ("GetWeeklySummary", any_body(ALL_READ_MODELS)),
    ("ListWeeks", any_body(ALL_READ_MODELS)),
    ("ListOverdue", any_body(READERS)),
    // Interpretation 9: the recommendations to refer, for those who read every body's.
    ("ListReferrals", any_body(ALL_READ_MODELS)),
    ("GetDashboard", any_body(READERS)),
    ("GetBulletin", any_body(READERS)),
    // Interpretation 23: 住建's officials approve the bulletin; every reader reads it approved.
    ("ApproveBulletin", of(&[OFFICIAL], &["ZJ"])),
    ("GetApprovedBulletin", any_body(READERS)),
    // Admin: operators only (admin.proto).
    ("ListProjections", any_body(&[OPERATOR_ROLE])),
    ("RebuildProjection", any_body(&[OPERATOR_ROLE])),
    ("GetCalendarStatus", any_body(&[OPERATOR_ROLE])),
    ("GetCalendarYear", any_body(&[OPERATOR_ROLE])),
    ("LoadCalendarYear", any_body(&[OPERATOR_ROLE])),
];

/// Lead commands whose body is checked against the lead, so that on a lead that does not
/// exist a principal of the wrong body learns only that: the answer is `NOT_FOUND`.
const BODY_CHECKED_AGAINST_THE_LEAD: &[&str] = &[
    "Classify",
    "NotifyUrgent",
    "Transfer",
    "RecordSatisfaction",
    "DecideReferral",
    "DecideCompanyReferral",
    "ReviewReturn",
];

/// A lead id and a company code that are well formed and exist nowhere, so every request gets
/// past the conversion of its fields (which runs before the role is checked) and no call
/// changes anything but a registrar's own registration.
const NO_LEAD: &str = "C0000000000000000";

/// Calls one RPC as a principal with a valid request about nothing that exists.
async fn call(server: &TestServer, principal: Principal, rpc: &str, no_company: &str) -> Result<(), Status> {
    let lead = || NO_LEAD.to_owned();
    let company = || no_company.to_owned();
    let mut complaints = server.complaints(principal);
    let mut enterprises = server.enterprises(principal);
    let mut queries = server.queries(principal);
    let mut audit = server.audit(principal);
    let mut read_models = server.read_models(principal);
    let mut admin = server.admin(principal);
    let rid = request_id;
    let text = || "说明".to_owned();
    match rpc {
        "Register" => complaints.register(registration(no_company)).await.map(drop),
        "Classify" => complaints
            .classify(pb::ClassifyRequest {
                request_id: rid(),
                complaint_id: lead(),
                category: "ZJ-2-1".to_owned(),
                urgency: pb::Urgency::Normal.into(),
                complexity: pb::Complexity::General.into(),
                split: Vec::new(),
            })
            .await
            .map(drop),
        "NotifyUrgent" => complaints
            .notify_urgent(pb::NotifyUrgentRequest {
                request_id: rid(),
                complaint_id: lead(),
                notified_body: pb::Body::Jb.into(),
                emergency_measures: text(),
                district_report: text(),
            })
            .await
            .map(drop),
        "Transfer" => complaints
            .transfer(pb::TransferRequest {
                request_id: rid(),
                complaint_id: lead(),
                to: pb::Body::Zj.into(),
                method: pb::TransferMethod::System.into(),
                note: text(),
            })
            .await
            .map(drop),
        "Accept" => complaints.accept(pb::AcceptRequest { request_id: rid(), complaint_id: lead() }).await.map(drop),
        "ReturnTransfer" => complaints
            .return_transfer(pb::ReturnTransferRequest { request_id: rid(), complaint_id: lead(), reason: text() })
            .await
            .map(drop),
        "Regrade" => complaints
            .regrade(pb::RegradeRequest { request_id: rid(), complaint_id: lead(), reason: text() })
            .await
            .map(drop),
        "SubmitPlan" => complaints
            .submit_plan(pb::SubmitPlanRequest {
                request_id: rid(),
                complaint_id: lead(),
                plan: text(),
                resolve_by: "2026-12-31".to_owned(),
            })
            .await
            .map(drop),
        "ReportProgress" => complaints
            .report_progress(pb::ReportProgressRequest { request_id: rid(), complaint_id: lead(), summary: text() })
            .await
            .map(drop),
        "RecordFinding" => complaints
            .record_finding(pb::RecordFindingRequest {
                request_id: rid(),
                complaint_id: lead(),
                finding: pb::Finding::Substantiated.into(),
                summary: text(),
                attribution: None,
            })
            .await
            .map(drop),
        "GiveFeedback" => complaints
            .give_feedback(pb::GiveFeedbackRequest {
                request_id: rid(),
                complaint_id: lead(),
                recipient: pb::FeedbackRecipient::Complainant.into(),
                content: text(),
            })
            .await
            .map(drop),
        "OpenPenaltyMatter" => complaints
            .open_penalty_matter(pb::OpenPenaltyMatterRequest {
                request_id: rid(),
                complaint_id: lead(),
                received_at: Some(timestamp(std::time::SystemTime::now())),
            })
            .await
            .map(drop),
        "VerifyPenaltyMatter" => complaints
            .verify_penalty_matter(pb::VerifyPenaltyMatterRequest {
                request_id: rid(),
                complaint_id: lead(),
                outcome: pb::PenaltyVerification::CaseWarranted.into(),
                summary: text(),
            })
            .await
            .map(drop),
        "FilePenaltyCase" => complaints
            .file_penalty_case(pb::FilePenaltyCaseRequest {
                request_id: rid(),
                complaint_id: lead(),
                case_number: text(),
            })
            .await
            .map(drop),
        "ExtendPenaltyPeriod" => complaints
            .extend_penalty_period(pb::ExtendPenaltyPeriodRequest {
                request_id: rid(),
                complaint_id: lead(),
                days: 10,
                approved_by: text(),
            })
            .await
            .map(drop),
        "DecidePenalty" => complaints
            .decide_penalty(pb::DecidePenaltyRequest {
                request_id: rid(),
                complaint_id: lead(),
                imposed: true,
                description: text(),
                fine_fen: 100,
                reason: String::new(),
            })
            .await
            .map(drop),
        "SignClosure" => complaints
            .sign_closure(pb::SignClosureRequest { request_id: rid(), complaint_id: lead(), opinion: text() })
            .await
            .map(drop),
        "CountersignClosure" => complaints
            .countersign_closure(pb::CountersignClosureRequest {
                request_id: rid(),
                complaint_id: lead(),
                opinion: text(),
            })
            .await
            .map(drop),
        "ReviewClosure" => complaints
            .review_closure(pb::ReviewClosureRequest {
                request_id: rid(),
                complaint_id: lead(),
                cancel: true,
                reason: String::new(),
            })
            .await
            .map(drop),
        "ReviewReturn" => complaints
            .review_return(pb::ReviewReturnRequest {
                request_id: rid(),
                complaint_id: lead(),
                accept: true,
                reason: text(),
            })
            .await
            .map(drop),
        "DeclarePlanNeeded" => complaints
            .declare_plan_needed(pb::DeclarePlanNeededRequest {
                request_id: rid(),
                complaint_id: lead(),
                reason: text(),
            })
            .await
            .map(drop),
        "DecideReferral" => complaints
            .decide_referral(pb::DecideReferralRequest {
                request_id: rid(),
                complaint_id: lead(),
                seq: 0,
                decision: pb::ReferralDecision::Dismissed.into(),
                reason: text(),
            })
            .await
            .map(drop),
        "DecideCompanyReferral" => enterprises
            .decide_company_referral(pb::DecideCompanyReferralRequest {
                request_id: rid(),
                uscc: company(),
                seq: 0,
                decision: pb::ReferralDecision::Dismissed.into(),
                reason: text(),
            })
            .await
            .map(drop),
        "RecordSatisfaction" => complaints
            .record_satisfaction(pb::RecordSatisfactionRequest {
                request_id: rid(),
                complaint_id: lead(),
                satisfaction: pb::Satisfaction::Satisfied.into(),
                comment: text(),
            })
            .await
            .map(drop),
        "RecordCreditRating" => enterprises
            .record_credit_rating(pb::RecordCreditRatingRequest {
                request_id: rid(),
                uscc: company(),
                rating: "D".to_owned(),
            })
            .await
            .map(drop),
        "RecordBlacklisting" => enterprises
            .record_blacklisting(pb::RecordBlacklistingRequest {
                request_id: rid(),
                uscc: company(),
                listed_on: "2026-01-05".to_owned(),
            })
            .await
            .map(drop),
        "RecordBlacklistRemoval" => enterprises
            .record_blacklist_removal(pb::RecordBlacklistRemovalRequest {
                request_id: rid(),
                uscc: company(),
                removed_on: "2026-02-05".to_owned(),
            })
            .await
            .map(drop),
        "RecordSurvey" => enterprises
            .record_survey(pb::RecordSurveyRequest {
                request_id: rid(),
                uscc: company(),
                community: "幸福小区".to_owned(),
                respondents: 10,
                satisfied: 5,
                publication: text(),
            })
            .await
            .map(drop),
        "RecordRectificationRefused" => enterprises
            .record_rectification_refused(pb::RecordRectificationRefusedRequest {
                request_id: rid(),
                uscc: company(),
                community: "幸福小区".to_owned(),
                detail: text(),
            })
            .await
            .map(drop),
        "DowngradeGrade" => enterprises
            .downgrade_grade(pb::DowngradeGradeRequest {
                request_id: rid(),
                uscc: company(),
                community: "幸福小区".to_owned(),
                to_grade: 3,
            })
            .await
            .map(drop),
        "EnforceFeeStandard" => enterprises
            .enforce_fee_standard(pb::EnforceFeeStandardRequest {
                request_id: rid(),
                uscc: company(),
                community: "幸福小区".to_owned(),
                detail: text(),
            })
            .await
            .map(drop),
        "RefuseFeeStandard" => enterprises
            .refuse_fee_standard(pb::RefuseFeeStandardRequest {
                request_id: rid(),
                uscc: company(),
                community: "幸福小区".to_owned(),
                detail: text(),
            })
            .await
            .map(drop),
        "OrderRefund" => enterprises
            .order_refund(pb::OrderRefundRequest {
                request_id: rid(),
                uscc: company(),
                community: "幸福小区".to_owned(),
                amount_fen: 100,
                penalty: text(),
            })
            .await
            .map(drop),
        "StartExitProcedure" => enterprises
            .start_exit_procedure(pb::StartExitProcedureRequest {
                request_id: rid(),
                uscc: company(),
                decision: text(),
                street_office_official: text(),
            })
            .await
            .map(drop),
        "EvaluateConditions" => enterprises
            .evaluate_conditions(pb::EvaluateConditionsRequest { request_id: rid(), uscc: company() })
            .await
            .map(drop),
        "GetComplaint" => queries.get_complaint(pb::GetComplaintRequest { complaint_id: lead() }).await.map(drop),
        "ListComplaints" => queries.list_complaints(pb::ListComplaintsRequest::default()).await.map(drop),
        "GetEnterprise" => queries.get_enterprise(pb::GetEnterpriseRequest { uscc: company() }).await.map(drop),
        "CalculateDeadline" => queries
            .calculate_deadline(pb::CalculateDeadlineRequest {
                kind: pb::DeadlineKind::Transfer.into(),
                start: Some(timestamp(std::time::SystemTime::now())),
                extension_days: 0,
            })
            .await
            .map(drop),
        "ReadStream" => audit
            .read_stream(pb::ReadStreamRequest {
                stream: format!("complaint-{NO_LEAD}"),
                backwards: false,
                from_revision: None,
                limit: 10,
            })
            .await
            .map(drop),
        "StreamAll" => audit.stream_all(pb::StreamAllRequest { after_position: None, follow: false }).await.map(drop),
        "Verify" => audit.verify(pb::VerifyRequest { stream: String::new() }).await.map(drop),
        "GetHead" => audit.get_head(pb::GetHeadRequest {}).await.map(drop),
        "GetWatchlist" => read_models.get_watchlist(pb::GetWatchlistRequest::default()).await.map(drop),
        "GetWatchlistCompany" => read_models
            .get_watchlist_company(pb::GetWatchlistCompanyRequest { uscc: company(), at: None, as_of: None })
            .await
            .map(drop),
        "GetWeeklySummary" => read_models
            .get_weekly_summary(pb::GetWeeklySummaryRequest {
                week_start: "2026-11-23".to_owned(),
                ..Default::default()
            })
            .await
            .map(drop),
        "ListWeeks" => read_models.list_weeks(pb::ListWeeksRequest::default()).await.map(drop),
        "ListOverdue" => read_models.list_overdue(pb::ListOverdueRequest::default()).await.map(drop),
        "ListReferrals" => read_models.list_referrals(pb::ListReferralsRequest::default()).await.map(drop),
        "GetDashboard" => read_models.get_dashboard(pb::GetDashboardRequest::default()).await.map(drop),
        "GetBulletin" => read_models
            .get_bulletin(pb::GetBulletinRequest { month: "2026-11".to_owned(), ..Default::default() })
            .await
            .map(drop),
        "ApproveBulletin" => read_models
            .approve_bulletin(pb::ApproveBulletinRequest {
                request_id: rid(),
                month: "2026-11".to_owned(),
                note: String::new(),
            })
            .await
            .map(drop),
        "GetApprovedBulletin" => read_models
            .get_approved_bulletin(pb::GetApprovedBulletinRequest { month: "2026-11".to_owned() })
            .await
            .map(drop),
        "ListProjections" => admin.list_projections(pb::ListProjectionsRequest {}).await.map(drop),
        // A name no projection has: an operator is refused for the name, never for the role,
        // and nothing is rebuilt.
        "RebuildProjection" => admin
            .rebuild_projection(pb::RebuildProjectionRequest { name: "no-such-projection".to_owned() })
            .await
            .map(drop),
        "GetCalendarStatus" => admin.get_calendar_status(pb::GetCalendarStatusRequest {}).await.map(drop),
        "GetCalendarYear" => admin.get_calendar_year(pb::GetCalendarYearRequest { year: 2027 }).await.map(drop),
        // Not a year file: an operator is refused for the text, never for the role, and
        // nothing is loaded.
        "LoadCalendarYear" => admin
            .load_calendar_year(pb::LoadCalendarYearRequest { request_id: request_id(), text: "year = 0".to_owned() })
            .await
            .map(drop),
        other => panic!("the matrix has no call for {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_role_may_call_exactly_the_rpcs_the_protocol_grants_it_and_every_refusal_names_a_rule() {
    let server = TestServer::start().await;
    // The matrix covers every RPC of the six services, as the server describes them.
    let mut served = Vec::new();
    for service in [
        "tousu.v1.ComplaintCommands",
        "tousu.v1.EnterpriseCommands",
        "tousu.v1.Queries",
        "tousu.v1.Audit",
        "tousu.v1.ReadModels",
        "tousu.v1.Admin",
    ] {
        served.extend(server.reflected_methods(service).await);
    }
    served.sort();
    let mut tabled: Vec<String> = MATRIX.iter().map(|(rpc, _)| (*rpc).to_owned()).collect();
    tabled.sort();
    assert_eq!(tabled, served, "the table names every RPC the server serves");

    let no_company = unique_uscc();
    let mut mismatches = String::new();
    for (rpc, grant) in MATRIX {
        for principal in MATRIX_PRINCIPALS {
            let access = grant.admits(principal);
            let outcome = call(&server, principal, rpc, &no_company).await;
            let code = outcome.as_ref().err().map(Status::code);
            let as_expected = match (access, code) {
                (_, Some(Code::Unauthenticated)) => false,
                (Access::Allowed, code) => code != Some(Code::PermissionDenied),
                (Access::RoleDenied, code) => code == Some(Code::PermissionDenied),
                (Access::BodyDenied, Some(Code::NotFound)) => BODY_CHECKED_AGAINST_THE_LEAD.contains(rpc),
                (Access::BodyDenied, code) => code == Some(Code::PermissionDenied),
            };
            if !as_expected {
                let detail = match &outcome {
                    Ok(()) => "OK".to_owned(),
                    Err(status) => format!("{:?}: {}", status.code(), status.message()),
                };
                writeln!(mismatches, "  {rpc} as {}: expected {access:?}, got {detail}", principal.person())
                    .expect("write to a string");
            }
            // Every refusal names a rule; a role that may not call the RPC is refused under the
            // rule the RPC serves.
            if let Err(status) = &outcome {
                let refusal = Refusal::of(status);
                let rpc_rule = tousu_api::rules::rule_of_request(&format!("{rpc}Request")).map(|rule| rule.as_str());
                let names_its_rule = match access {
                    Access::RoleDenied => refusal.rule.is_some() && refusal.rule.as_deref() == rpc_rule,
                    Access::Allowed | Access::BodyDenied => refusal.rule.is_some(),
                };
                if !names_its_rule || refusal.domain.as_deref() != Some("tousu") {
                    writeln!(
                        mismatches,
                        "  {rpc} as {}: the refusal names rule {:?} (the RPC's is {rpc_rule:?}): {}",
                        principal.person(),
                        refusal.rule,
                        refusal.message
                    )
                    .expect("write to a string");
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "role × RPC mismatches:\n{mismatches}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bodies_the_protocol_names_are_checked_on_real_leads_and_companies() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    // Leads at the step where each body qualification applies.
    let registered = register_lead(&server, &uscc).await;
    let urgent = register_lead(&server, &uscc).await;
    classify(&server, &urgent, "ZJ-1-1", pb::Urgency::Urgent, pb::Complexity::General).await;
    let classified = register_lead(&server, &uscc).await;
    classify(&server, &classified, "ZJ-2-1", pb::Urgency::Normal, pb::Complexity::General).await;
    let transferred = register_lead(&server, &uscc).await;
    classify(&server, &transferred, "ZJ-2-1", pb::Urgency::Normal, pb::Complexity::General).await;
    transfer(&server, &transferred, pb::Body::Zj).await;
    let closed = handling_lead(&server, &uscc, "SJ-3-1", pb::Complexity::General).await;
    record_finding(&server, HANDLER_SJ, &closed, pb::Finding::Unsubstantiated).await;
    give_feedback(&server, HANDLER_SJ, &closed, pb::FeedbackRecipient::Complainant).await;
    sign_closure(&server, HANDLER_SJ, &closed).await;
    let hotline = ok(server.complaints(REGISTRAR_XZ).register(hotline_12345_registration(&uscc)).await, "Register");
    let hotline = hotline.complaint_id;
    classify(&server, &hotline, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    transfer(&server, &hotline, pb::Body::Sj).await;
    accept(&server, HANDLER_SJ, &hotline).await;
    record_finding(&server, HANDLER_SJ, &hotline, pb::Finding::Substantiated).await;
    give_feedback(&server, HANDLER_SJ, &hotline, pb::FeedbackRecipient::Complainant).await;
    give_feedback(&server, HANDLER_SJ, &hotline, pb::FeedbackRecipient::Hotline12345).await;
    sign_closure(&server, HANDLER_SJ, &hotline).await;
    // The company exists once tousu has counted its leads.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.queries(AUDITOR).get_enterprise(pb::GetEnterpriseRequest { uscc: uscc.clone() }).await.is_err() {
        assert!(Instant::now() < deadline, "the company is recorded within 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let head = server.log_head().await;

    let community = || "幸福小区".to_owned();
    let mut xz = server.complaints(REGISTRAR_XZ);
    let follow_up = || pb::RecordSatisfactionRequest {
        request_id: request_id(),
        complaint_id: hotline.clone(),
        satisfaction: pb::Satisfaction::Satisfied.into(),
        comment: String::new(),
    };
    let denials: Vec<(&str, Result<(), Status>)> = vec![
        (
            "Classify by 行政审批's registrar",
            xz.classify(pb::ClassifyRequest {
                request_id: request_id(),
                complaint_id: registered.clone(),
                category: "ZJ-2-1".to_owned(),
                urgency: pb::Urgency::Normal.into(),
                complexity: pb::Complexity::General.into(),
                split: Vec::new(),
            })
            .await
            .map(drop),
        ),
        (
            "NotifyUrgent by 行政审批's registrar",
            xz.notify_urgent(pb::NotifyUrgentRequest {
                request_id: request_id(),
                complaint_id: urgent.clone(),
                notified_body: pb::Body::Jb.into(),
                emergency_measures: "疏散".to_owned(),
                district_report: "已报告".to_owned(),
            })
            .await
            .map(drop),
        ),
        (
            "Transfer by 行政审批's registrar",
            xz.transfer(pb::TransferRequest {
                request_id: request_id(),
                complaint_id: classified.clone(),
                to: pb::Body::Zj.into(),
                method: pb::TransferMethod::System.into(),
                note: String::new(),
            })
            .await
            .map(drop),
        ),
        (
            "Accept of a lead transferred to 住建 by 市场监管",
            server
                .complaints(HANDLER_SJ)
                .accept(pb::AcceptRequest { request_id: request_id(), complaint_id: transferred.clone() })
                .await
                .map(drop),
        ),
        (
            "GetComplaint of 住建's lead by 市场监管",
            server
                .queries(HANDLER_SJ)
                .get_complaint(pb::GetComplaintRequest { complaint_id: transferred.clone() })
                .await
                .map(drop),
        ),
        (
            "ReviewClosure of 市场监管's closure by the city 住建",
            server
                .complaints(CITY_REVIEWER_ZJ)
                .review_closure(pb::ReviewClosureRequest {
                    request_id: request_id(),
                    complaint_id: closed.clone(),
                    cancel: true,
                    reason: String::new(),
                })
                .await
                .map(drop),
        ),
        (
            "RecordSatisfaction by 住建's registrar",
            server.complaints(REGISTRAR_ZJ).record_satisfaction(follow_up()).await.map(drop),
        ),
        (
            "RecordSatisfaction by 市场监管's handler",
            server.complaints(HANDLER_SJ).record_satisfaction(follow_up()).await.map(drop),
        ),
        (
            "RecordCreditRating by 行政审批's registrar",
            server
                .enterprises(REGISTRAR_XZ)
                .record_credit_rating(pb::RecordCreditRatingRequest {
                    request_id: request_id(),
                    uscc: uscc.clone(),
                    rating: "D".to_owned(),
                })
                .await
                .map(drop),
        ),
        (
            "RecordSurvey by 市场监管",
            server
                .enterprises(HANDLER_SJ)
                .record_survey(pb::RecordSurveyRequest {
                    request_id: request_id(),
                    uscc: uscc.clone(),
                    community: community(),
                    respondents: 10,
                    satisfied: 5,
                    publication: "公示栏".to_owned(),
                })
                .await
                .map(drop),
        ),
        (
            "DowngradeGrade by 发改",
            server
                .enterprises(HANDLER_FG)
                .downgrade_grade(pb::DowngradeGradeRequest {
                    request_id: request_id(),
                    uscc: uscc.clone(),
                    community: community(),
                    to_grade: 3,
                })
                .await
                .map(drop),
        ),
        (
            "EnforceFeeStandard by 住建",
            server
                .enterprises(HANDLER_ZJ)
                .enforce_fee_standard(pb::EnforceFeeStandardRequest {
                    request_id: request_id(),
                    uscc: uscc.clone(),
                    community: community(),
                    detail: "执行降级收费标准".to_owned(),
                })
                .await
                .map(drop),
        ),
        (
            "RefuseFeeStandard by 市场监管",
            server
                .enterprises(HANDLER_SJ)
                .refuse_fee_standard(pb::RefuseFeeStandardRequest {
                    request_id: request_id(),
                    uscc: uscc.clone(),
                    community: community(),
                    detail: "拒不执行".to_owned(),
                })
                .await
                .map(drop),
        ),
        (
            "OrderRefund by 住建",
            server
                .enterprises(HANDLER_ZJ)
                .order_refund(pb::OrderRefundRequest {
                    request_id: request_id(),
                    uscc: uscc.clone(),
                    community: community(),
                    amount_fen: 100,
                    penalty: "罚款".to_owned(),
                })
                .await
                .map(drop),
        ),
        (
            "StartExitProcedure by 市场监管",
            server
                .enterprises(HANDLER_SJ)
                .start_exit_procedure(pb::StartExitProcedureRequest {
                    request_id: request_id(),
                    uscc: uscc.clone(),
                    decision: "启动退出程序".to_owned(),
                    street_office_official: "街道 李某".to_owned(),
                })
                .await
                .map(drop),
        ),
    ];
    let mut wrong = String::new();
    for (what, outcome) in &denials {
        match outcome {
            Err(status) if status.code() == Code::PermissionDenied => {}
            Err(status) => writeln!(wrong, "  {what}: {:#?}", Refusal::of(status)).expect("write to a string"),
            Ok(()) => writeln!(wrong, "  {what}: succeeded").expect("write to a string"),
        }
    }
    assert!(wrong.is_empty(), "expected PERMISSION_DENIED:\n{wrong}");
    server.assert_nothing_written_after(head, "calls by the wrong body").await;
    for (id, expected) in [
        (&registered, pb::LeadStatus::Registered),
        (&urgent, pb::LeadStatus::Classified),
        (&classified, pb::LeadStatus::Classified),
        (&transferred, pb::LeadStatus::Transferred),
        (&closed, pb::LeadStatus::Closed),
    ] {
        assert_eq!(status(&server.complaint(id).await), expected, "{id}");
    }
}
