//! One vocabulary of refusals (`docs/api.md`, "Errors"): every refusal names a rule, the
//! procedure's own or the rule of its RPC; a field at fault is named as the request spells it;
//! a field's reason is `MISSING_FIELD`, `INVALID_FIELD` or `FIELD_TOO_LONG`, never the generic
//! `INVALID_ARGUMENT`; and what the state of a lead forbids is `FAILED_PRECONDITION`.

use tonic::{Code, Status};
use tousu_api::pb;
use tousu_e2e::flows::{classify, give_feedback, handling_lead, record_finding, register_lead, sign_closure, status};
use tousu_e2e::refusal::{Refusal, ok, refused};
use tousu_e2e::requests::{registration, request_id, unique_uscc};
use tousu_e2e::server::{AUDITOR, Bearer, CITY_REVIEWER_SJ, HANDLER_SJ, REGISTRAR_ZJ, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn hdl_3_a_closure_sent_back_without_a_reason_names_the_request_field_reason() {
    let server = TestServer::start().await;
    let id = handling_lead(&server, &unique_uscc(), "SJ-3-1", pb::Complexity::General).await;
    record_finding(&server, HANDLER_SJ, &id, pb::Finding::Substantiated).await;
    give_feedback(&server, HANDLER_SJ, &id, pb::FeedbackRecipient::Complainant).await;
    sign_closure(&server, HANDLER_SJ, &id).await;
    let head = server.log_head().await;
    let send_back = pb::ReviewClosureRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        cancel: false,
        reason: String::new(),
    };
    refused(server.complaints(CITY_REVIEWER_SJ).review_closure(send_back).await)
        .code(Code::InvalidArgument)
        .rule("HDL-3")
        .field("reason")
        .reason("MISSING_FIELD");
    server.assert_nothing_written_after(head, "a closure sent back without a reason").await;
    assert_eq!(status(&server.complaint(&id).await), pb::LeadStatus::Closed);
}

#[tokio::test(flavor = "multi_thread")]
async fn trf_3_a_transfer_to_a_body_the_category_does_not_route_to_is_a_failed_precondition() {
    let server = TestServer::start().await;
    let id = register_lead(&server, &unique_uscc()).await;
    classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    let urgent = register_lead(&server, &unique_uscc()).await;
    classify(&server, &urgent, "ZJ-1-1", pb::Urgency::Urgent, pb::Complexity::General).await;
    let head = server.log_head().await;
    let transfer = pb::TransferRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        to: pb::Body::Zj.into(),
        method: pb::TransferMethod::System.into(),
        note: String::new(),
    };
    // The classification the lead already has forbids the body, not the request's form.
    refused(server.complaints(REGISTRAR_ZJ).transfer(transfer).await)
        .code(Code::FailedPrecondition)
        .rule("TRF-3")
        .field("to")
        .reason("MISROUTED")
        .mentions("SJ-3-1");
    let notify = pb::NotifyUrgentRequest {
        request_id: request_id(),
        complaint_id: urgent.clone(),
        notified_body: pb::Body::Zj.into(),
        emergency_measures: "已疏散住户".to_owned(),
        district_report: "已报告区委、区政府".to_owned(),
    };
    refused(server.complaints(REGISTRAR_ZJ).notify_urgent(notify).await)
        .code(Code::FailedPrecondition)
        .rule("TRF-1")
        .field("notified_body")
        .reason("MISROUTED");
    server.assert_nothing_written_after(head, "transfers to the wrong body").await;
    assert_eq!(status(&server.complaint(&id).await), pb::LeadStatus::Classified);
}

type Answer = Result<(), Status>;

/// What a refusal must carry.
struct Expected {
    code: Code,
    reason: &'static str,
    rule: &'static str,
    field: Option<&'static str>,
}

const fn expected(code: Code, reason: &'static str, rule: &'static str, field: Option<&'static str>) -> Expected {
    Expected { code, reason, rule, field }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_that_are_no_rules_own_name_the_rule_of_their_rpc_and_one_reason_of_the_vocabulary() {
    let server = TestServer::start().await;
    let id = handling_lead(&server, &unique_uscc(), "SJ-3-1", pb::Complexity::Major).await;
    let reused = register_lead(&server, &unique_uscc()).await;
    let shared_request_id = request_id();
    let classify_with = |complaint_id: &str| pb::ClassifyRequest {
        request_id: shared_request_id.clone(),
        complaint_id: complaint_id.to_owned(),
        category: "SJ-3-1".to_owned(),
        urgency: pb::Urgency::Normal.into(),
        complexity: pb::Complexity::General.into(),
        split: Vec::new(),
    };
    ok(server.complaints(REGISTRAR_ZJ).classify(classify_with(&reused)).await, "Classify");
    let other = register_lead(&server, &unique_uscc()).await;
    let head = server.log_head().await;

    let no_company = unique_uscc();
    let mut handler = server.complaints(HANDLER_SJ);
    let cases: Vec<(&str, Answer, Expected)> = vec![
        (
            "a company that does not exist",
            server
                .enterprises(REGISTRAR_ZJ)
                .record_credit_rating(pb::RecordCreditRatingRequest {
                    request_id: request_id(),
                    uscc: no_company.clone(),
                    rating: "D".to_owned(),
                })
                .await
                .map(drop),
            expected(Code::NotFound, "NOT_FOUND", "GRD-1", None),
        ),
        (
            "CHANNEL_UNSPECIFIED",
            server
                .complaints(REGISTRAR_ZJ)
                .register(pb::RegisterRequest {
                    channel: pb::Channel::Unspecified.into(),
                    ..registration(&unique_uscc())
                })
                .await
                .map(drop),
            expected(Code::InvalidArgument, "MISSING_FIELD", "REG-1", Some("channel")),
        ),
        (
            "an unknown channel",
            server
                .complaints(REGISTRAR_ZJ)
                .register(pb::RegisterRequest { channel: 99, ..registration(&unique_uscc()) })
                .await
                .map(drop),
            expected(Code::InvalidArgument, "INVALID_FIELD", "REG-1", Some("channel")),
        ),
        (
            "FINDING_UNSPECIFIED",
            handler
                .record_finding(pb::RecordFindingRequest {
                    request_id: request_id(),
                    complaint_id: id.clone(),
                    finding: pb::Finding::Unspecified.into(),
                    summary: "核查".to_owned(),
                    attribution: None,
                })
                .await
                .map(drop),
            expected(Code::InvalidArgument, "MISSING_FIELD", "HDL-3", Some("finding")),
        ),
        (
            "a malformed plan date",
            handler
                .submit_plan(pb::SubmitPlanRequest {
                    request_id: request_id(),
                    complaint_id: id.clone(),
                    plan: "分三步整改".to_owned(),
                    resolve_by: "31/12/2026".to_owned(),
                })
                .await
                .map(drop),
            expected(Code::InvalidArgument, "INVALID_FIELD", "HDL-2", Some("resolve_by")),
        ),
        (
            "REQUEST_ID_REUSED",
            server.complaints(REGISTRAR_ZJ).classify(classify_with(&other)).await.map(drop),
            expected(Code::InvalidArgument, "REQUEST_ID_REUSED", "TRF-3", Some("request_id")),
        ),
        (
            "a malformed request id",
            handler
                .accept(pb::AcceptRequest { request_id: "has space".to_owned(), complaint_id: id.clone() })
                .await
                .map(drop),
            expected(Code::InvalidArgument, "INVALID_FIELD", "TRF-2", Some("request_id")),
        ),
        (
            "a role that may not register",
            server.complaints(AUDITOR).register(registration(&unique_uscc())).await.map(drop),
            expected(Code::PermissionDenied, "PERMISSION_DENIED", "REG-1", None),
        ),
        (
            "a lead that does not exist",
            server
                .queries(AUDITOR)
                .get_complaint(pb::GetComplaintRequest { complaint_id: "C0000000000000000".to_owned() })
                .await
                .map(drop),
            expected(Code::NotFound, "NOT_FOUND", "ACC-1", None),
        ),
        (
            "a page too large",
            server
                .read_models(AUDITOR)
                .get_watchlist(pb::GetWatchlistRequest { page_size: 501, ..Default::default() })
                .await
                .map(drop),
            expected(Code::InvalidArgument, "INVALID_FIELD", "REG-4", Some("page_size")),
        ),
        (
            "a call without a token",
            pb::complaint_commands_client::ComplaintCommandsClient::new(server.authed_with(Bearer::none()))
                .register(registration(&unique_uscc()))
                .await
                .map(drop),
            expected(Code::Unauthenticated, "UNAUTHENTICATED", "ACC-1", None),
        ),
    ];
    for (what, answer, Expected { code, reason, rule, field }) in cases {
        let refusal = Refusal::of(&answer.expect_err(what));
        assert_eq!(refusal.code, code, "{what}: {refusal:#?}");
        assert_eq!(refusal.reason.as_deref(), Some(reason), "{what}: {refusal:#?}");
        assert_eq!(refusal.domain.as_deref(), Some("tousu"), "{what}: {refusal:#?}");
        refusal.rule(rule);
        match field {
            Some(field) => {
                refusal.field(field);
            }
            None => assert_eq!(refusal.field, None, "{what}: {refusal:#?}"),
        }
    }
    server.assert_nothing_written_after(head, "refusals").await;
    assert_eq!(status(&server.complaint(&other).await), pb::LeadStatus::Registered);
    // The refused command did not create the company.
    let company = server.queries(AUDITOR).get_enterprise(pb::GetEnterpriseRequest { uscc: no_company }).await;
    refused(company).code(Code::NotFound).reason("NOT_FOUND").rule("REG-4");
}
