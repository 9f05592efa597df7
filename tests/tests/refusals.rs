//! Refusals: each with its status code and details, the rule it names among them (every
//! refusal tousu makes names one: the procedure's own, the rule of the RPC for a refusal that
//! is about no rule, ACC-1 for a call without a valid token), and proof that nothing was
//! written (the log's head, read with StreamAll, or the lead's stream, read with ReadStream,
//! unchanged).

use std::time::{Duration, Instant};

use tonic::Code;
use tousu_api::pb;
use tousu_api::pb::complaint_commands_client::ComplaintCommandsClient;
use tousu_api::pb::queries_client::QueriesClient;
use tousu_e2e::flows::{classify, handling_lead, register_lead, sign_closure_request, status, transfer};
use tousu_e2e::refusal::{Refusal, ok, refused};
use tousu_e2e::requests::{EXAMPLE_USCC, hotline_12345_registration, registration, request_id, timestamp, unique_uscc};
use tousu_e2e::server::{
    AUDITOR, Bearer, CITY_REVIEWER_SJ, HANDLER_SJ, HANDLER_ZF, HANDLER_ZJ, OPERATOR, REGISTRAR_XZ, REGISTRAR_ZJ,
    STREET_OFFICE_JB, SYSTEM, ServerOptions, TestServer,
};

#[tokio::test(flavor = "multi_thread")]
async fn calls_without_a_valid_token_are_unauthenticated_and_write_nothing() {
    let server = TestServer::start().await;
    let id = register_lead(&server, &unique_uscc()).await;
    let head = server.log_head().await;
    for (what, bearer) in [
        ("no authorization metadata", Bearer::none()),
        ("not a bearer token", Bearer::raw("Basic dXNlcjpwYXNz")),
        ("an unknown token", Bearer::token("tsu_0000000000000000000000000000000000000000000000000000000000000000")),
        ("an empty bearer token", Bearer::raw("Bearer ")),
    ] {
        // The token is checked before any RPC is chosen: every refusal names ACC-1, the rule of
        // who may use the system.
        let mut complaints = ComplaintCommandsClient::new(server.authed_with(bearer.clone()));
        let refusal = refused(complaints.register(registration(&unique_uscc())).await);
        assert_eq!(refusal.code, Code::Unauthenticated, "Register with {what}: {refusal:#?}");
        refusal.reason("UNAUTHENTICATED").rule("ACC-1");
        let accept = pb::AcceptRequest { request_id: request_id(), complaint_id: id.clone() };
        let refusal = refused(complaints.accept(accept).await);
        assert_eq!(refusal.code, Code::Unauthenticated, "Accept with {what}");
        refusal.rule("ACC-1");
        let mut queries = QueriesClient::new(server.authed_with(bearer.clone()));
        let read = queries.get_complaint(pb::GetComplaintRequest { complaint_id: id.clone() }).await;
        let refusal = refused(read);
        assert_eq!(refusal.code, Code::Unauthenticated, "GetComplaint with {what}");
        refusal.rule("ACC-1");
        let mut audit = pb::audit_client::AuditClient::new(server.authed_with(bearer));
        let log = audit.stream_all(pb::StreamAllRequest { after_position: None, follow: false }).await;
        let refusal = refused(log);
        assert_eq!(refusal.code, Code::Unauthenticated, "StreamAll with {what}");
        refusal.rule("ACC-1");
    }
    server.assert_nothing_written_after(head, "unauthenticated calls").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_revoked_while_the_server_runs_is_refused_from_then_on() {
    let server = TestServer::start().await;
    let issued = server.issue_token(REGISTRAR_ZJ);
    let calls_with = |token: &str| ComplaintCommandsClient::new(server.authed_with(Bearer::token(token)));
    // The running server picks the new token up from the token file.
    let deadline = Instant::now() + Duration::from_secs(5);
    let registered = loop {
        match calls_with(&issued.token).register(registration(&unique_uscc())).await {
            Ok(answer) => break answer.into_inner(),
            Err(status) if status.code() == Code::Unauthenticated && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("the new token is not accepted: {:#?}", Refusal::of(&status)),
        }
    };
    assert_eq!(registered.event_types, ["complaint.registered"]);

    server.revoke_token(&issued.id);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = calls_with(&issued.token).register(registration(&unique_uscc())).await;
        match answer {
            Err(status) if status.code() == Code::Unauthenticated => break,
            Ok(_) | Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("the revoked token still works after 5 s: {other:?}"),
        }
    }
    let head = server.log_head().await;
    let refusal = refused(calls_with(&issued.token).register(registration(&unique_uscc())).await);
    refusal.code(Code::Unauthenticated).rule("ACC-1");
    server.assert_nothing_written_after(head, "a call with a revoked token").await;
    // The other tokens of the same principal stay valid.
    ok(server.complaints(REGISTRAR_ZJ).register(registration(&unique_uscc())).await, "Register with another token");
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_1_roles_that_do_not_register_are_denied_and_nothing_is_written() {
    let server = TestServer::start().await;
    let head = server.log_head().await;
    for principal in [AUDITOR, OPERATOR, SYSTEM, HANDLER_SJ, STREET_OFFICE_JB, CITY_REVIEWER_SJ] {
        let refusal = refused(server.complaints(principal).register(registration(&unique_uscc())).await);
        assert_eq!(refusal.code, Code::PermissionDenied, "{principal:?}: {refusal:#?}");
        assert_eq!(refusal.reason.as_deref(), Some("PERMISSION_DENIED"), "{refusal:#?}");
        refusal.rule("REG-1");
    }
    server.assert_nothing_written_after(head, "registrations by roles that do not register").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hdl_3_a_body_acts_only_on_and_reads_only_the_leads_transferred_to_it() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    let id = handling_lead(&server, &uscc, "SJ-3-1", pb::Complexity::General).await;
    let head = server.log_head().await;
    let finding = || pb::RecordFindingRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        finding: pb::Finding::Substantiated.into(),
        summary: "越权核查".to_owned(),
        attribution: None,
    };
    for principal in [HANDLER_ZF, HANDLER_ZJ, STREET_OFFICE_JB] {
        refused(server.complaints(principal).record_finding(finding()).await)
            .code(Code::PermissionDenied)
            .rule("HDL-3");
        let read = server.queries(principal).get_complaint(pb::GetComplaintRequest { complaint_id: id.clone() }).await;
        refused(read).code(Code::PermissionDenied).rule("ACC-1");
        // A list shows another body's handler none of 市场监管's leads.
        let list = pb::ListComplaintsRequest { company_uscc: uscc.clone(), ..Default::default() };
        let page = ok(server.queries(principal).list_complaints(list).await, "ListComplaints");
        assert_eq!((page.total, page.complaints.len()), (0, 0), "{principal:?}");
    }
    server.assert_nothing_written_after(head, "another body's acts").await;
    let page = ok(
        server
            .queries(HANDLER_SJ)
            .list_complaints(pb::ListComplaintsRequest { company_uscc: uscc, ..Default::default() })
            .await,
        "ListComplaints",
    );
    assert_eq!(page.complaints.iter().map(|c| c.complaint_id.as_str()).collect::<Vec<_>>(), [id.as_str()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_1_a_registration_lacking_a_field_is_refused_naming_it_and_nothing_is_written() {
    let server = TestServer::start().await;
    let head = server.log_head().await;
    let uscc = unique_uscc();
    let base = || registration(&uscc);
    let with_complainant = |edit: &dyn Fn(&mut pb::Complainant)| {
        let mut request = base();
        edit(request.complainant.as_mut().expect("a complainant"));
        request
    };
    let with_place = |edit: &dyn Fn(&mut pb::Place)| {
        let mut request = base();
        edit(request.place.as_mut().expect("a place"));
        request
    };
    // (request, field, rule, reason): every refusal of the registration names REG-1, the
    // rule of the command, but a 12345 lead's work-order number, which HDL-4 requires. Fields
    // missing from the message itself are refused before the procedure is asked, under the
    // same rule.
    let in_an_hour = timestamp(std::time::SystemTime::now() + Duration::from_secs(3600));
    let (missing, invalid) = ("MISSING_FIELD", "INVALID_FIELD");
    let cases: Vec<(pb::RegisterRequest, &str, &str, &str)> = vec![
        (pb::RegisterRequest { content: String::new(), ..base() }, "content", "REG-1", missing),
        (pb::RegisterRequest { complainant: None, ..base() }, "complainant", "REG-1", missing),
        (with_complainant(&|c| c.name.clear()), "complainant.name", "REG-1", missing),
        (with_complainant(&|c| c.contact = "  ".to_owned()), "complainant.contact", "REG-1", missing),
        (
            with_complainant(&|c| {
                c.anonymous = true;
            }),
            "complainant",
            "REG-1",
            invalid,
        ),
        (pb::RegisterRequest { received_at: None, ..base() }, "received_at", "REG-1", missing),
        (pb::RegisterRequest { received_at: Some(in_an_hour), ..base() }, "received_at", "REG-1", invalid),
        (
            pb::RegisterRequest {
                company: Some(pb::CompanyRef { uscc: "91350100M000100Y44".to_owned(), name: "某物业".to_owned() }),
                ..base()
            },
            "company.uscc",
            "REG-1",
            invalid,
        ),
        (
            pb::RegisterRequest {
                company: Some(pb::CompanyRef { uscc: EXAMPLE_USCC.to_owned(), name: String::new() }),
                ..base()
            },
            "company.name",
            "REG-1",
            missing,
        ),
        (pb::RegisterRequest { place: None, ..base() }, "place", "REG-1", missing),
        (with_place(&|p| p.community.clear()), "place.community", "REG-1", missing),
        (with_place(&|p| p.district.clear()), "place.district", "REG-1", missing),
        (with_place(&|p| p.street.clear()), "place.street", "REG-1", missing),
        (
            pb::RegisterRequest { hotline_ticket: String::new(), ..hotline_12345_registration(&uscc) },
            "hotline_ticket",
            "HDL-4",
            missing,
        ),
        (pb::RegisterRequest { channel: pb::Channel::Unspecified.into(), ..base() }, "channel", "REG-1", missing),
    ];
    for (request, field, rule, reason) in cases {
        let refusal = refused(server.complaints(REGISTRAR_ZJ).register(request).await);
        refusal.code(Code::InvalidArgument).field(field).rule(rule).reason(reason);
        assert_eq!(refusal.domain.as_deref(), Some("tousu"));
    }
    server.assert_nothing_written_after(head, "refused registrations").await;
    // The example code itself is valid.
    let request = pb::RegisterRequest {
        company: Some(pb::CompanyRef { uscc: EXAMPLE_USCC.to_owned(), name: "某物业".to_owned() }),
        ..base()
    };
    ok(server.complaints(REGISTRAR_ZJ).register(request).await, "Register with the example code");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_enum_values_are_refused_naming_the_field_and_nothing_is_written() {
    let server = TestServer::start().await;
    let id = register_lead(&server, &unique_uscc()).await;
    let head = server.log_head().await;
    let mut registrar = server.complaints(REGISTRAR_ZJ);
    let mut handler = server.complaints(HANDLER_ZJ);
    let mut queries = server.queries(REGISTRAR_ZJ);
    let classify = |urgency: i32, complexity: i32| pb::ClassifyRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        category: "ZJ-2-1".to_owned(),
        urgency,
        complexity,
        split: Vec::new(),
    };
    let transfer = |to: i32, method: i32| pb::TransferRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        to,
        method,
        note: String::new(),
    };
    let normal = pb::Urgency::Normal as i32;
    let general = pb::Complexity::General as i32;
    // (field, answer, rule): each names the rule of its RPC.
    let cases: Vec<(&str, Result<(), tonic::Status>, &str)> = vec![
        (
            "channel",
            registrar.register(pb::RegisterRequest { channel: 99, ..registration(&unique_uscc()) }).await.map(drop),
            "REG-1",
        ),
        ("urgency", registrar.classify(classify(99, general)).await.map(drop), "TRF-3"),
        ("complexity", registrar.classify(classify(normal, -1)).await.map(drop), "TRF-3"),
        ("to", registrar.transfer(transfer(99, pb::TransferMethod::System as i32)).await.map(drop), "TRF-2"),
        ("method", registrar.transfer(transfer(pb::Body::Zj as i32, 7)).await.map(drop), "TRF-2"),
        (
            "notified_body",
            registrar
                .notify_urgent(pb::NotifyUrgentRequest {
                    request_id: request_id(),
                    complaint_id: id.clone(),
                    notified_body: 13,
                    emergency_measures: "疏散".to_owned(),
                    district_report: "已报告".to_owned(),
                })
                .await
                .map(drop),
            "TRF-1",
        ),
        (
            "finding",
            handler
                .record_finding(pb::RecordFindingRequest {
                    request_id: request_id(),
                    complaint_id: id.clone(),
                    finding: 3,
                    summary: "x".to_owned(),
                    attribution: None,
                })
                .await
                .map(drop),
            "HDL-3",
        ),
        (
            "recipient",
            handler
                .give_feedback(pb::GiveFeedbackRequest {
                    request_id: request_id(),
                    complaint_id: id.clone(),
                    recipient: 4,
                    content: "x".to_owned(),
                })
                .await
                .map(drop),
            "HDL-1",
        ),
        (
            "satisfaction",
            server
                .complaints(REGISTRAR_XZ)
                .record_satisfaction(pb::RecordSatisfactionRequest {
                    request_id: request_id(),
                    complaint_id: id.clone(),
                    satisfaction: 9,
                    comment: String::new(),
                })
                .await
                .map(drop),
            "HDL-4",
        ),
        (
            "status",
            queries.list_complaints(pb::ListComplaintsRequest { status: 99, ..Default::default() }).await.map(drop),
            "REG-1",
        ),
        (
            "body",
            queries.list_complaints(pb::ListComplaintsRequest { body: 99, ..Default::default() }).await.map(drop),
            "REG-1",
        ),
        (
            "kind",
            queries
                .calculate_deadline(pb::CalculateDeadlineRequest {
                    kind: 99,
                    start: Some(timestamp(std::time::SystemTime::now())),
                    extension_days: 0,
                })
                .await
                .map(drop),
            "ACC-2",
        ),
    ];
    for (field, answer, rule) in cases {
        let status = answer.expect_err(field);
        let refusal = Refusal::of(&status);
        refusal.code(Code::InvalidArgument).field(field).rule(rule).reason("INVALID_FIELD");
    }
    server.assert_nothing_written_after(head, "requests with unknown enum values").await;
    assert_eq!(status(&server.complaint(&id).await), pb::LeadStatus::Registered);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_over_the_size_limit_is_refused_and_nothing_is_written() {
    let server =
        TestServer::start_with(ServerOptions { max_message_bytes: Some(65_536), ..ServerOptions::default() }).await;
    let id = register_lead(&server, &unique_uscc()).await;
    let head = server.log_head().await;
    let oversized = pb::RegisterRequest { content: "投".repeat(100 * 1024 / 3), ..registration(&unique_uscc()) };
    let refusal = refused(server.complaints(REGISTRAR_ZJ).register(oversized).await);
    // tonic refuses a message over the decoding limit with OUT_OF_RANGE, before tousu's
    // service sees it; tousu gives that refusal its details all the same, naming the RPC's
    // rule (docs/api.md).
    refusal.code(Code::OutOfRange).rule("REG-1");
    assert_eq!(refusal.reason.as_deref(), Some("MESSAGE_TOO_LARGE"), "{refusal:#?}");
    assert!(refusal.message.contains("65536"), "{refusal:#?}");
    server.assert_nothing_written_after(head, "an oversized registration").await;
    // The connection and the server are fine, and a message under the limit goes through.
    let under = pb::RegisterRequest { content: "投".repeat(40 * 1024 / 3), ..registration(&unique_uscc()) };
    let answer = ok(server.complaints(REGISTRAR_ZJ).register(under).await, "Register under the limit");
    assert_eq!(answer.event_types, ["complaint.registered"]);
    assert_eq!(status(&server.complaint(&id).await), pb::LeadStatus::Registered);
}

type Answer = Result<tonic::Response<pb::CommandResult>, tonic::Status>;

#[tokio::test(flavor = "multi_thread")]
async fn commands_out_of_order_are_refused_naming_the_rule_and_write_nothing() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    let registered = register_lead(&server, &uscc).await;
    let classified = register_lead(&server, &uscc).await;
    classify(&server, &classified, "ZJ-2-1", pb::Urgency::Normal, pb::Complexity::General).await;
    let transferred = register_lead(&server, &uscc).await;
    classify(&server, &transferred, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    transfer(&server, &transferred, pb::Body::Sj).await;
    let handling = handling_lead(&server, &uscc, "SJ-3-1", pb::Complexity::General).await;
    let head = server.log_head().await;

    let transfer_request = |id: &str| pb::TransferRequest {
        request_id: request_id(),
        complaint_id: id.to_owned(),
        to: pb::Body::Zj.into(),
        method: pb::TransferMethod::Written.into(),
        note: String::new(),
    };
    let accept = |id: &str| pb::AcceptRequest { request_id: request_id(), complaint_id: id.to_owned() };
    let feedback = |id: &str| pb::GiveFeedbackRequest {
        request_id: request_id(),
        complaint_id: id.to_owned(),
        recipient: pb::FeedbackRecipient::Complainant.into(),
        content: "已处理".to_owned(),
    };
    let review = |id: &str| pb::ReviewClosureRequest {
        request_id: request_id(),
        complaint_id: id.to_owned(),
        cancel: true,
        reason: String::new(),
    };
    let countersign = |id: &str| pb::CountersignClosureRequest {
        request_id: request_id(),
        complaint_id: id.to_owned(),
        opinion: "同意".to_owned(),
    };
    let cases: Vec<(&str, Answer, &str)> = vec![
        // No closure before a finding (HDL-3).
        (
            "sign closure before a finding",
            server.complaints(HANDLER_SJ).sign_closure(sign_closure_request(&handling)).await,
            "HDL-3",
        ),
        // No acceptance before a transfer.
        ("accept before the transfer", server.complaints(HANDLER_ZJ).accept(accept(&classified)).await, "TRF-2"),
        (
            "transfer before classification",
            server.complaints(REGISTRAR_ZJ).transfer(transfer_request(&registered)).await,
            "TRF-2",
        ),
        (
            "feedback before acceptance",
            server.complaints(HANDLER_SJ).give_feedback(feedback(&transferred)).await,
            "HDL-1",
        ),
        (
            "review before the closure",
            server.complaints(CITY_REVIEWER_SJ).review_closure(review(&handling)).await,
            "HDL-3",
        ),
        (
            "countersign a department's closure",
            server.complaints(STREET_OFFICE_JB).countersign_closure(countersign(&handling)).await,
            "HDL-3",
        ),
    ];
    for (what, answer, rule) in cases {
        let refusal = refused(answer);
        assert_eq!(refusal.code, Code::FailedPrecondition, "{what}: {refusal:#?}");
        refusal.rule(rule);
    }
    server.assert_nothing_written_after(head, "commands out of order").await;
    for (id, expected) in [
        (&registered, pb::LeadStatus::Registered),
        (&classified, pb::LeadStatus::Classified),
        (&transferred, pb::LeadStatus::Transferred),
        (&handling, pb::LeadStatus::Handling),
    ] {
        assert_eq!(status(&server.complaint(id).await), expected, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_request_id_is_answered_with_the_first_result_and_writes_nothing() {
    let server = TestServer::start().await;
    let request = registration(&unique_uscc());
    let first = ok(server.complaints(REGISTRAR_ZJ).register(request.clone()).await, "Register");
    assert!(!first.replayed);
    let head = server.log_head().await;

    let again = ok(server.complaints(REGISTRAR_ZJ).register(request.clone()).await, "Register again");
    assert_eq!(again, pb::CommandResult { replayed: true, ..first.clone() });
    // A changed body under the same id is another request: refused, under the rule of the
    // command, and nothing is written (tests/idempotency.rs).
    let changed = pb::RegisterRequest { content: "另一件事".to_owned(), ..request.clone() };
    refused(server.complaints(REGISTRAR_ZJ).register(changed).await)
        .code(Code::InvalidArgument)
        .field("request_id")
        .reason("REQUEST_ID_REUSED")
        .rule("REG-1");

    let id = first.complaint_id.clone();
    let classify_request = pb::ClassifyRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        category: "SJ-3-1".to_owned(),
        urgency: pb::Urgency::Normal.into(),
        complexity: pb::Complexity::General.into(),
        split: Vec::new(),
    };
    let classified = ok(server.complaints(REGISTRAR_ZJ).classify(classify_request.clone()).await, "Classify");
    let head_after_classify = server.log_head().await;
    assert!(head_after_classify > head);
    let classified_again = ok(server.complaints(REGISTRAR_ZJ).classify(classify_request).await, "Classify again");
    assert_eq!(classified_again, pb::CommandResult { replayed: true, ..classified });
    server.assert_nothing_written_after(head_after_classify, "repeated requests").await;

    // Request ids are scoped by principal: 行政审批's registrar using the same id registers
    // its own lead.
    let other = ok(server.complaints(REGISTRAR_XZ).register(request).await, "Register by another principal");
    assert!(!other.replayed);
    assert_ne!(other.complaint_id, id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_id_reused_for_another_lead_is_refused_naming_request_id() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    let first = register_lead(&server, &uscc).await;
    let second = register_lead(&server, &uscc).await;
    let shared = request_id();
    let classify_with = |id: &str| pb::ClassifyRequest {
        request_id: shared.clone(),
        complaint_id: id.to_owned(),
        category: "SJ-3-1".to_owned(),
        urgency: pb::Urgency::Normal.into(),
        complexity: pb::Complexity::General.into(),
        split: Vec::new(),
    };
    ok(server.complaints(REGISTRAR_ZJ).classify(classify_with(&first)).await, "Classify the first lead");
    let head = server.log_head().await;
    let refusal = refused(server.complaints(REGISTRAR_ZJ).classify(classify_with(&second)).await);
    // The rule of the command whose request id it is: a classification's, TRF-3.
    refusal.code(Code::InvalidArgument).field("request_id").rule("TRF-3");
    assert_eq!(refusal.reason.as_deref(), Some("REQUEST_ID_REUSED"));
    server.assert_nothing_written_after(head, "a reused request id").await;
    assert_eq!(status(&server.complaint(&second).await), pb::LeadStatus::Registered);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_identifiers_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    let id = register_lead(&server, &unique_uscc()).await;
    let head = server.log_head().await;
    let accept = |request_id: &str, complaint_id: &str| pb::AcceptRequest {
        request_id: request_id.to_owned(),
        complaint_id: complaint_id.to_owned(),
    };
    let mut handler = server.complaints(HANDLER_ZJ);
    for (request, field) in [
        (accept("", &id), "request_id"),
        (accept("has space", &id), "request_id"),
        (accept(&"x".repeat(129), &id), "request_id"),
        (accept(&request_id(), ""), "complaint_id"),
        (accept(&request_id(), "C1/../x"), "complaint_id"),
    ] {
        refused(handler.accept(request).await).code(Code::InvalidArgument).field(field).rule("TRF-2");
    }
    let mut registrar = server.complaints(REGISTRAR_ZJ);
    let request = pb::RegisterRequest { request_id: String::new(), ..registration(&unique_uscc()) };
    refused(registrar.register(request).await).code(Code::InvalidArgument).field("request_id").rule("REG-1");
    let rating =
        pb::RecordCreditRatingRequest { request_id: request_id(), uscc: "12345".to_owned(), rating: "D".to_owned() };
    refused(server.enterprises(REGISTRAR_ZJ).record_credit_rating(rating).await)
        .code(Code::InvalidArgument)
        .field("uscc")
        .rule("GRD-1");
    let company = server.queries(AUDITOR).get_enterprise(pb::GetEnterpriseRequest { uscc: String::new() }).await;
    refused(company).code(Code::InvalidArgument).field("uscc").rule("REG-4").reason("MISSING_FIELD");
    let read = pb::ReadStreamRequest { stream: String::new(), backwards: false, from_revision: None, limit: 0 };
    refused(server.audit(AUDITOR).read_stream(read).await).code(Code::InvalidArgument).field("stream").rule("ACC-1");
    let unknown = server
        .queries(REGISTRAR_ZJ)
        .get_complaint(pb::GetComplaintRequest { complaint_id: "C0000000000000000".to_owned() })
        .await;
    refused(unknown).code(Code::NotFound).rule("ACC-1");
    server.assert_nothing_written_after(head, "malformed identifiers").await;
}
