//! The steps of the procedure as the tests drive them over gRPC, each asserting that the
//! command succeeded, and ways to read a lead's state in the answers.

use tousu_api::pb;

use crate::refusal::ok;
use crate::requests::{registration, request_id};
use crate::server::{HANDLER_SJ, HANDLER_ZF, HANDLER_ZJ, Principal, REGISTRAR_ZJ, STREET_OFFICE_JB, TestServer};

/// The body a category routes to (TRF-3): its code's prefix.
pub fn body_of_category(category: &str) -> pb::Body {
    let prefix = category.split('-').next().expect("a category code");
    pb::Body::from_str_name(&format!("BODY_{prefix}")).unwrap_or_else(|| panic!("no body for category {category}"))
}

/// The principal that handles leads of a body in these tests.
pub fn handler_of(body: pb::Body) -> Principal {
    match body {
        pb::Body::Zj => HANDLER_ZJ,
        pb::Body::Sj => HANDLER_SJ,
        pb::Body::Zf => HANDLER_ZF,
        pb::Body::Jb => STREET_OFFICE_JB,
        other => panic!("the tests have no handler for {other:?}"),
    }
}

/// Registers a lead as 住建's registrar; returns the command's answer.
pub async fn register(server: &TestServer, request: pb::RegisterRequest) -> pb::CommandResult {
    ok(server.complaints(REGISTRAR_ZJ).register(request).await, "Register")
}

/// Registers a valid lead about the company; returns its id.
pub async fn register_lead(server: &TestServer, uscc: &str) -> String {
    let result = register(server, registration(uscc)).await;
    assert!(!result.complaint_id.is_empty(), "Register answers the new lead's id: {result:?}");
    result.complaint_id
}

/// Classifies a lead as 住建's registrar, without splitting.
pub async fn classify(
    server: &TestServer,
    complaint_id: &str,
    category: &str,
    urgency: pb::Urgency,
    complexity: pb::Complexity,
) -> pb::CommandResult {
    let request = pb::ClassifyRequest {
        request_id: request_id(),
        complaint_id: complaint_id.to_owned(),
        category: category.to_owned(),
        urgency: urgency.into(),
        complexity: complexity.into(),
        split: Vec::new(),
    };
    ok(server.complaints(REGISTRAR_ZJ).classify(request).await, "Classify")
}

/// Transfers a lead to a body through the system, as 住建's registrar.
pub async fn transfer(server: &TestServer, complaint_id: &str, to: pb::Body) -> pb::CommandResult {
    let request = pb::TransferRequest {
        request_id: request_id(),
        complaint_id: complaint_id.to_owned(),
        to: to.into(),
        method: pb::TransferMethod::System.into(),
        note: "请依职责办理".to_owned(),
    };
    ok(server.complaints(REGISTRAR_ZJ).transfer(request).await, "Transfer")
}

/// The body acknowledges the transfer.
pub async fn accept(server: &TestServer, handler: Principal, complaint_id: &str) -> pb::CommandResult {
    let request = pb::AcceptRequest { request_id: request_id(), complaint_id: complaint_id.to_owned() };
    ok(server.complaints(handler).accept(request).await, "Accept")
}

/// A new lead about the company, classified (normal urgency), transferred to its category's
/// body and accepted by that body's handler; returns its id.
pub async fn handling_lead(server: &TestServer, uscc: &str, category: &str, complexity: pb::Complexity) -> String {
    let id = register_lead(server, uscc).await;
    classify(server, &id, category, pb::Urgency::Normal, complexity).await;
    let body = body_of_category(category);
    transfer(server, &id, body).await;
    accept(server, handler_of(body), &id).await;
    id
}

/// Records a finding.
pub async fn record_finding(
    server: &TestServer,
    handler: Principal,
    complaint_id: &str,
    finding: pb::Finding,
) -> pb::CommandResult {
    let request = pb::RecordFindingRequest {
        request_id: request_id(),
        complaint_id: complaint_id.to_owned(),
        finding: finding.into(),
        summary: "经现场核查".to_owned(),
        attribution: None,
    };
    ok(server.complaints(handler).record_finding(request).await, "RecordFinding")
}

/// Gives feedback to a recipient.
pub async fn give_feedback(
    server: &TestServer,
    handler: Principal,
    complaint_id: &str,
    recipient: pb::FeedbackRecipient,
) -> pb::CommandResult {
    let request = pb::GiveFeedbackRequest {
        request_id: request_id(),
        complaint_id: complaint_id.to_owned(),
        recipient: recipient.into(),
        content: "已答复处理情况".to_owned(),
    };
    ok(server.complaints(handler).give_feedback(request).await, "GiveFeedback")
}

/// A request to sign the closure.
pub fn sign_closure_request(complaint_id: &str) -> pb::SignClosureRequest {
    pb::SignClosureRequest {
        request_id: request_id(),
        complaint_id: complaint_id.to_owned(),
        opinion: "问题已整改到位，同意办结".to_owned(),
    }
}

/// The handling body signs the closure.
pub async fn sign_closure(server: &TestServer, handler: Principal, complaint_id: &str) -> pb::CommandResult {
    ok(server.complaints(handler).sign_closure(sign_closure_request(complaint_id)).await, "SignClosure")
}

/// The city reviewer cancels the case (销号).
pub async fn cancel_case(server: &TestServer, reviewer: Principal, complaint_id: &str) -> pb::CommandResult {
    let request = pb::ReviewClosureRequest {
        request_id: request_id(),
        complaint_id: complaint_id.to_owned(),
        cancel: true,
        reason: String::new(),
    };
    ok(server.complaints(reviewer).review_closure(request).await, "ReviewClosure")
}

/// The lead's status.
pub fn status(complaint: &pb::Complaint) -> pb::LeadStatus {
    complaint.summary.as_ref().expect("a summary").status()
}

/// The event types of the lead's timeline, oldest first.
pub fn timeline_types(complaint: &pb::Complaint) -> Vec<&str> {
    complaint.timeline.iter().map(|entry| entry.event_type.as_str()).collect()
}

/// The open deadlines of a kind.
pub fn open_deadlines_of(complaint: &pb::Complaint, kind: pb::DeadlineKind) -> Vec<&pb::Deadline> {
    complaint.open_deadlines.iter().filter(|deadline| deadline.kind() == kind).collect()
}

/// The only open deadline of a kind.
#[track_caller]
pub fn open_deadline(complaint: &pb::Complaint, kind: pb::DeadlineKind) -> &pb::Deadline {
    match open_deadlines_of(complaint, kind).as_slice() {
        [deadline] => deadline,
        other => panic!("expected one open {kind:?} deadline, found {other:#?} among {:#?}", complaint.open_deadlines),
    }
}

/// The kinds of the open deadlines, sorted.
pub fn open_kinds(complaint: &pb::Complaint) -> Vec<pb::DeadlineKind> {
    let mut kinds: Vec<pb::DeadlineKind> = complaint.open_deadlines.iter().map(|d| d.kind()).collect();
    kinds.sort_by_key(|kind| *kind as i32);
    kinds
}

/// The latest timeline entry of a type.
#[track_caller]
pub fn last_entry<'a>(complaint: &'a pb::Complaint, event_type: &str) -> &'a pb::TimelineEntry {
    complaint
        .timeline
        .iter()
        .rev()
        .find(|entry| entry.event_type == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {:?}", timeline_types(complaint)))
}

/// The due instant the server computes for a kind from a start (Queries.CalculateDeadline).
pub async fn calculated_due(
    server: &TestServer,
    kind: pb::DeadlineKind,
    start: prost_types::Timestamp,
    extension_days: u32,
) -> prost_types::Timestamp {
    let request = pb::CalculateDeadlineRequest { kind: kind.into(), start: Some(start), extension_days };
    let answer = ok(server.queries(REGISTRAR_ZJ).calculate_deadline(request).await, "CalculateDeadline");
    answer.due.expect("a due instant")
}

/// The principal as the timeline records it.
pub fn actor(principal: Principal) -> pb::Principal {
    let role = pb::Role::from_str_name(&format!("ROLE_{}", principal.role.to_uppercase()))
        .unwrap_or_else(|| panic!("no role {}", principal.role));
    let body = principal.body.map_or(pb::Body::Unspecified, |body| {
        pb::Body::from_str_name(&format!("BODY_{body}")).unwrap_or_else(|| panic!("no body {body}"))
    });
    pb::Principal { person: principal.person(), body: body.into(), role: role.into() }
}

/// 24:00 of a date in Asia/Shanghai (00:00 of the next day), as a protocol timestamp: the due
/// instant of a period whose last day it is.
pub fn end_of_day(date: chrono::NaiveDate) -> prost_types::Timestamp {
    let shanghai = chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00");
    let midnight = (date + chrono::Days::new(1)).and_hms_opt(0, 0, 0).expect("midnight");
    let instant = midnight.and_local_timezone(shanghai).single().expect("a fixed offset is unambiguous");
    prost_types::Timestamp { seconds: instant.timestamp(), nanos: 0 }
}

/// Today's date in Asia/Shanghai.
pub fn shanghai_today() -> chrono::NaiveDate {
    chrono::Utc::now().with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00")).date_naive()
}

/// The lead, read until `check` holds (the deadline reactor and the read models act a moment
/// after the clock); fails after 30 s with the server's log.
pub async fn lead_until(
    server: &TestServer,
    id: &str,
    what: &str,
    check: impl Fn(&pb::Complaint) -> bool,
) -> pb::Complaint {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let lead = server.complaint(id).await;
        if check(&lead) {
            return lead;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: not within 30 s\n{}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
