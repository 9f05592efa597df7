//! The procedure's paths end to end over gRPC, each on its own server: the answers' event
//! types, the refusals met on the way, and the final state as Queries.GetComplaint shows it
//! (status, open deadlines with their due instants, the timeline with who did what).

use std::time::{Duration, Instant, SystemTime};

use tonic::Code;
use tousu_api::pb;
use tousu_e2e::flows::{
    accept, actor, calculated_due, cancel_case, classify, end_of_day, give_feedback, handling_lead, last_entry,
    open_deadline, open_kinds, record_finding, register, register_lead, shanghai_today, sign_closure,
    sign_closure_request, status, timeline_types, transfer,
};
use tousu_e2e::refusal::{ok, refused};
use tousu_e2e::requests::{hotline_12345_registration, registration, request_id, timestamp, unique_uscc};
use tousu_e2e::server::{
    CITY_REVIEWER_SJ, CITY_REVIEWER_ZJ, HANDLER_SJ, HANDLER_XZ, HANDLER_ZF, HANDLER_ZJ, REGISTRAR_XZ, REGISTRAR_ZJ,
    STREET_OFFICE_JB, TestServer,
};

use pb::DeadlineKind as Kind;
use pb::FeedbackRecipient as Recipient;

fn summary(complaint: &pb::Complaint) -> &pb::ComplaintSummary {
    complaint.summary.as_ref().expect("a summary")
}

#[tokio::test(flavor = "multi_thread")]
async fn hdl_3_general_path_of_a_department_matter_ends_cancelled_by_its_city_reviewer() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    let request = registration(&uscc);
    let contact = request.complainant.as_ref().expect("a complainant").contact.clone();
    let registered = register(&server, request).await;
    let id = registered.complaint_id.clone();
    assert_eq!(registered.event_types, ["complaint.registered"]);
    assert_eq!(registered.stream, format!("complaint-{id}"));
    assert!(!registered.replayed);

    // REG-1, TRF-2: registered, with 7 working days to transfer.
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Registered);
    let registered_at = summary(&lead).registered_at.expect("registered_at");
    let transfer_deadline = open_deadline(&lead, Kind::Transfer);
    assert_eq!(transfer_deadline.rule, "TRF-2");
    assert_eq!(transfer_deadline.body(), pb::Body::Zj);
    assert_eq!(transfer_deadline.due, Some(calculated_due(&server, Kind::Transfer, registered_at, 0).await));

    // TRF-3: SJ-3-1 (lifts not maintained) is 市场监管's.
    let classified = classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    assert_eq!(classified.event_types, ["complaint.classified"]);
    let transferred = transfer(&server, &id, pb::Body::Sj).await;
    assert_eq!(transferred.event_types, ["complaint.transferred"]);
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Transferred);
    assert_eq!(summary(&lead).body(), pb::Body::Sj);
    assert_eq!(summary(&lead).category, "SJ-3-1");
    // HDL-1: the transfer met TRF-2 and opened the 7 days of a general matter for 市场监管.
    assert_eq!(open_kinds(&lead), [Kind::GeneralClose]);
    let general = open_deadline(&lead, Kind::GeneralClose);
    assert_eq!((general.rule.as_str(), general.body()), ("HDL-1", pb::Body::Sj));
    let transferred_at = last_entry(&lead, "complaint.transferred").at.expect("at");
    assert_eq!(general.due, Some(calculated_due(&server, Kind::GeneralClose, transferred_at, 0).await));

    assert_eq!(accept(&server, HANDLER_SJ, &id).await.event_types, ["complaint.accepted"]);
    assert_eq!(status(&server.complaint(&id).await), pb::LeadStatus::Handling);
    let found = record_finding(&server, HANDLER_SJ, &id, pb::Finding::Substantiated).await;
    assert_eq!(found.event_types, ["complaint.finding_recorded"]);
    let fed_back = give_feedback(&server, HANDLER_SJ, &id, Recipient::Complainant).await;
    assert_eq!(fed_back.event_types, ["complaint.feedback_given"]);
    // HDL-3: a department's matter is closed by its own signature; the handling period is met.
    assert_eq!(sign_closure(&server, HANDLER_SJ, &id).await.event_types, ["complaint.closure_signed"]);
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Closed);
    assert!(lead.open_deadlines.is_empty(), "{:?}", lead.open_deadlines);
    // The city-level counterpart of the handling body reviews and cancels (销号).
    assert_eq!(cancel_case(&server, CITY_REVIEWER_SJ, &id).await.event_types, ["complaint.closure_reviewed"]);

    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Cancelled);
    assert_eq!(summary(&lead).finding(), pb::Finding::Substantiated);
    assert!(!summary(&lead).overdue);
    assert!(lead.open_deadlines.is_empty());
    let who: Vec<(&str, pb::Principal)> =
        lead.timeline.iter().map(|entry| (entry.event_type.as_str(), entry.actor.clone().expect("actor"))).collect();
    assert_eq!(
        who,
        [
            ("complaint.registered", actor(REGISTRAR_ZJ)),
            ("complaint.classified", actor(REGISTRAR_ZJ)),
            ("complaint.transferred", actor(REGISTRAR_ZJ)),
            ("complaint.accepted", actor(HANDLER_SJ)),
            ("complaint.finding_recorded", actor(HANDLER_SJ)),
            ("complaint.feedback_given", actor(HANDLER_SJ)),
            ("complaint.closure_signed", actor(HANDLER_SJ)),
            ("complaint.closure_reviewed", actor(CITY_REVIEWER_SJ)),
        ]
    );
    let revisions: Vec<u64> = lead.timeline.iter().map(|entry| entry.revision).collect();
    assert_eq!(revisions, (0..8).collect::<Vec<u64>>());
    assert!(lead.timeline.windows(2).all(|pair| pair[0].position < pair[1].position), "positions increase");
    assert!(lead.timeline.iter().all(|entry| entry.at.is_some() && entry.recorded_at.is_some()));

    // The auditor reads the contact (ACC-1); the city reviewer does not need it.
    assert_eq!(lead.complainant.as_ref().expect("complainant").contact, contact);
    let reviewed = ok(
        server.queries(CITY_REVIEWER_SJ).get_complaint(pb::GetComplaintRequest { complaint_id: id.clone() }).await,
        "GetComplaint as reviewer",
    );
    let masked = reviewed.complainant.expect("complainant").contact;
    assert!(masked != contact && masked.contains('*'), "masked {masked:?}");
    assert!(reviewed.timeline.iter().all(|entry| !entry.payload_json.contains(&contact)), "payloads masked too");
}

#[tokio::test(flavor = "multi_thread")]
async fn hdl_3_a_matter_zj_handles_itself_closes_only_with_the_street_offices_countersignature() {
    let server = TestServer::start().await;
    // ZJ-2-1: unauthorised commercial use of common parts, 住建's own matter.
    let id = handling_lead(&server, &unique_uscc(), "ZJ-2-1", pb::Complexity::General).await;
    record_finding(&server, HANDLER_ZJ, &id, pb::Finding::Substantiated).await;
    give_feedback(&server, HANDLER_ZJ, &id, Recipient::Complainant).await;
    sign_closure(&server, HANDLER_ZJ, &id).await;
    // Signed by 住建 alone, the matter is not closed: its period is still running.
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Handling);
    assert_eq!(open_kinds(&lead), [Kind::GeneralClose]);
    let length = server.lead_stream_length(&id).await;
    let review = pb::ReviewClosureRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        cancel: true,
        reason: String::new(),
    };
    refused(server.complaints(CITY_REVIEWER_ZJ).review_closure(review).await)
        .code(Code::FailedPrecondition)
        .rule("HDL-3");
    assert_eq!(server.lead_stream_length(&id).await, length, "a refused review writes nothing");

    let countersign = pb::CountersignClosureRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        opinion: "街道同意办结".to_owned(),
    };
    let countersigned = ok(server.complaints(STREET_OFFICE_JB).countersign_closure(countersign).await, "Countersign");
    assert_eq!(countersigned.event_types, ["complaint.closure_countersigned"]);
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Closed);
    assert!(lead.open_deadlines.is_empty(), "the countersignature met the period: {:?}", lead.open_deadlines);
    cancel_case(&server, CITY_REVIEWER_ZJ, &id).await;

    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Cancelled);
    assert_eq!(last_entry(&lead, "complaint.closure_signed").actor, Some(actor(HANDLER_ZJ)));
    assert_eq!(last_entry(&lead, "complaint.closure_countersigned").actor, Some(actor(STREET_OFFICE_JB)));
    assert_eq!(last_entry(&lead, "complaint.closure_reviewed").actor, Some(actor(CITY_REVIEWER_ZJ)));
}

#[tokio::test(flavor = "multi_thread")]
async fn trf_1_an_urgent_lead_is_notified_at_once_with_the_report_to_the_district() {
    let server = TestServer::start().await;
    let id = register_lead(&server, &unique_uscc()).await;
    let classified = classify(&server, &id, "ZJ-1-1", pb::Urgency::Urgent, pb::Complexity::General).await;
    assert_eq!(classified.event_types, ["complaint.classified"]);
    // The 2-hour notification replaces the 7 working days of a transfer and runs from the
    // registration.
    let lead = server.complaint(&id).await;
    assert_eq!(open_kinds(&lead), [Kind::UrgentNotify]);
    let registered_at = summary(&lead).registered_at.expect("registered_at");
    let notify = open_deadline(&lead, Kind::UrgentNotify);
    assert_eq!(notify.rule, "TRF-1");
    assert_eq!(notify.due.expect("due").seconds, registered_at.seconds + 2 * 3600);
    assert_eq!(notify.due, Some(calculated_due(&server, Kind::UrgentNotify, registered_at, 0).await));

    let length = server.lead_stream_length(&id).await;
    let notification = |notified_body: pb::Body, district_report: &str| pb::NotifyUrgentRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        notified_body: notified_body.into(),
        emergency_measures: "已疏散住户，设置警戒区".to_owned(),
        district_report: district_report.to_owned(),
    };
    let mut registrar = server.complaints(REGISTRAR_ZJ);
    // A matter within 住建's duty is notified to the street office, not to 住建 itself: the
    // classification forbids any other body.
    refused(registrar.notify_urgent(notification(pb::Body::Zj, "已报告区委、区政府")).await)
        .code(Code::FailedPrecondition)
        .rule("TRF-1")
        .field("notified_body");
    // The report to 区委、区政府 is part of the same act.
    refused(registrar.notify_urgent(notification(pb::Body::Jb, "")).await)
        .code(Code::InvalidArgument)
        .rule("TRF-1")
        .field("district_report");
    // An urgent lead is notified, never transferred.
    let transfer_request = pb::TransferRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        to: pb::Body::Zj.into(),
        method: pb::TransferMethod::System.into(),
        note: String::new(),
    };
    refused(registrar.transfer(transfer_request).await).code(Code::FailedPrecondition).rule("TRF-1");
    assert_eq!(server.lead_stream_length(&id).await, length, "the refusals wrote nothing");

    let notified = ok(registrar.notify_urgent(notification(pb::Body::Jb, "已报告区委、区政府")).await, "NotifyUrgent");
    assert_eq!(notified.event_types, ["complaint.urgent_notified"]);
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Transferred);
    assert!(lead.open_deadlines.is_empty(), "notified in time; HDL-1 does not apply: {:?}", lead.open_deadlines);
    assert_eq!(summary(&lead).urgency(), pb::Urgency::Urgent);

    accept(&server, HANDLER_ZJ, &id).await;
    record_finding(&server, HANDLER_ZJ, &id, pb::Finding::Substantiated).await;
    give_feedback(&server, HANDLER_ZJ, &id, Recipient::Complainant).await;
    sign_closure(&server, HANDLER_ZJ, &id).await;
    let countersign = pb::CountersignClosureRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        opinion: "险情已排除".to_owned(),
    };
    ok(server.complaints(STREET_OFFICE_JB).countersign_closure(countersign).await, "Countersign");
    cancel_case(&server, CITY_REVIEWER_ZJ, &id).await;
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Cancelled);
    assert_eq!(
        timeline_types(&lead),
        [
            "complaint.registered",
            "complaint.classified",
            "complaint.urgent_notified",
            "complaint.accepted",
            "complaint.finding_recorded",
            "complaint.feedback_given",
            "complaint.closure_signed",
            "complaint.closure_countersigned",
            "complaint.closure_reviewed",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hdl_2_a_major_matter_works_to_its_plan_and_reports_progress_monthly() {
    let server = TestServer::start().await;
    let id = handling_lead(&server, &unique_uscc(), "SJ-3-1", pb::Complexity::Major).await;
    let lead = server.complaint(&id).await;
    // A month to resolve from the transfer; a plan is owed only for a matter not resolved
    // within it (interpretation 25).
    assert_eq!(open_kinds(&lead), [Kind::MajorResolve]);
    let transferred_at = last_entry(&lead, "complaint.transferred").at.expect("at");
    let resolve = open_deadline(&lead, Kind::MajorResolve);
    assert_eq!((resolve.rule.as_str(), resolve.body()), ("HDL-2", pb::Body::Sj));
    assert_eq!(resolve.due, Some(calculated_due(&server, Kind::MajorResolve, transferred_at, 0).await));

    let mut handler = server.complaints(HANDLER_SJ);
    // Declared unresolvable within the month, it owes the plan 7 days from the transfer.
    let declared = ok(
        handler
            .declare_plan_needed(pb::DeclarePlanNeededRequest {
                request_id: request_id(),
                complaint_id: id.clone(),
                reason: "需鉴定后更换主机".to_owned(),
            })
            .await,
        "DeclarePlanNeeded",
    );
    assert_eq!(declared.event_types, ["complaint.plan_required"]);
    let lead = server.complaint(&id).await;
    assert_eq!(open_kinds(&lead), [Kind::MajorResolve, Kind::MajorPlan]);
    let plan_deadline = open_deadline(&lead, Kind::MajorPlan);
    assert_eq!(plan_deadline.due, Some(calculated_due(&server, Kind::MajorPlan, transferred_at, 0).await));

    let progress = || pb::ReportProgressRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        summary: "已完成电梯主板更换".to_owned(),
    };
    let length = server.lead_stream_length(&id).await;
    refused(handler.report_progress(progress()).await).code(Code::FailedPrecondition).rule("HDL-2");
    let today = shanghai_today();
    let plan = |resolve_by: chrono::NaiveDate| pb::SubmitPlanRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        plan: "分三步：鉴定、采购、更换".to_owned(),
        resolve_by: resolve_by.format("%Y-%m-%d").to_string(),
    };
    refused(handler.submit_plan(plan(today)).await).code(Code::InvalidArgument).rule("HDL-2").field("resolve_by");
    assert_eq!(server.lead_stream_length(&id).await, length, "the refusals wrote nothing");

    let resolve_by = today + chrono::Days::new(45);
    let planned = ok(handler.submit_plan(plan(resolve_by)).await, "SubmitPlan");
    assert_eq!(planned.event_types, ["complaint.plan_submitted"]);
    let lead = server.complaint(&id).await;
    // The plan meets its deadline, replaces the month with its own date (24:00 of it, not
    // rolled) and starts the monthly reports.
    assert_eq!(open_kinds(&lead), [Kind::MajorResolve, Kind::ProgressReport]);
    assert_eq!(open_deadline(&lead, Kind::MajorResolve).due, Some(end_of_day(resolve_by)));
    let planned_at = last_entry(&lead, "complaint.plan_submitted").at.expect("at");
    let first_report = open_deadline(&lead, Kind::ProgressReport).clone();
    assert_eq!(first_report.due, Some(calculated_due(&server, Kind::ProgressReport, planned_at, 0).await));

    let reported = ok(handler.report_progress(progress()).await, "ReportProgress");
    assert_eq!(reported.event_types, ["complaint.progress_reported"]);
    let lead = server.complaint(&id).await;
    let second_report = open_deadline(&lead, Kind::ProgressReport);
    assert_ne!(second_report.seq, first_report.seq);
    // The second report is due two months after the plan: 24:00 of the same-numbered day, or
    // of the next working day when that day is a rest day.
    let plan_date = chrono::DateTime::from_timestamp(planned_at.seconds, 0)
        .expect("an instant")
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00"))
        .date_naive();
    let earliest = end_of_day(plan_date + chrono::Months::new(2)).seconds;
    let due = second_report.due.expect("due").seconds;
    assert!((earliest..=earliest + 10 * 86_400).contains(&due), "second report due {due}, two months {earliest}");

    record_finding(&server, HANDLER_SJ, &id, pb::Finding::Substantiated).await;
    give_feedback(&server, HANDLER_SJ, &id, Recipient::Complainant).await;
    sign_closure(&server, HANDLER_SJ, &id).await;
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Closed);
    assert!(lead.open_deadlines.is_empty(), "the closure met resolution and reports: {:?}", lead.open_deadlines);
    cancel_case(&server, CITY_REVIEWER_SJ, &id).await;
    assert_eq!(status(&server.complaint(&id).await), pb::LeadStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread")]
async fn pen_1_a_penalty_case_gets_one_extension_of_at_most_30_days_and_no_second() {
    let server = TestServer::start().await;
    let id = handling_lead(&server, &unique_uscc(), "SJ-1", pb::Complexity::General).await;
    let mut handler = server.complaints(HANDLER_SJ);

    let received_at = timestamp(SystemTime::now());
    let open = pb::OpenPenaltyMatterRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        received_at: Some(received_at),
    };
    assert_eq!(ok(handler.open_penalty_matter(open).await, "Open").event_types, ["complaint.penalty_matter_opened"]);
    let lead = server.complaint(&id).await;
    let verify_deadline = open_deadline(&lead, Kind::PenaltyVerify);
    assert_eq!((verify_deadline.rule.as_str(), verify_deadline.body()), ("PEN-1", pb::Body::Sj));
    assert_eq!(verify_deadline.due, Some(calculated_due(&server, Kind::PenaltyVerify, received_at, 0).await));

    let file = || pb::FilePenaltyCaseRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        case_number: "榕市监立〔2026〕88号".to_owned(),
    };
    refused(handler.file_penalty_case(file()).await).code(Code::FailedPrecondition).rule("PEN-1");
    let verify = pb::VerifyPenaltyMatterRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        outcome: pb::PenaltyVerification::CaseWarranted.into(),
        summary: "存在违法事实，应予立案".to_owned(),
    };
    ok(handler.verify_penalty_matter(verify).await, "Verify");
    assert!(!open_kinds(&server.complaint(&id).await).contains(&Kind::PenaltyVerify), "verification met");
    assert_eq!(ok(handler.file_penalty_case(file()).await, "File").event_types, ["complaint.penalty_case_filed"]);
    let lead = server.complaint(&id).await;
    // Interpretation 24: the case supersedes the handling deadline; PEN-1's period governs.
    assert_eq!(open_kinds(&lead), [Kind::PenaltyComplete]);
    let filed_at = last_entry(&lead, "complaint.penalty_case_filed").at.expect("at");
    let ninety_days = calculated_due(&server, Kind::PenaltyComplete, filed_at, 0).await;
    assert_eq!(open_deadline(&lead, Kind::PenaltyComplete).due, Some(ninety_days));

    let extend = |days: u32| pb::ExtendPenaltyPeriodRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        days,
        approved_by: "局长 张某".to_owned(),
    };
    let length = server.lead_stream_length(&id).await;
    // 31 days is more than PEN-1 allows; the refusal names the field. tousu answers it as an
    // invalid argument: the value is wrong whatever the state of the case.
    refused(handler.extend_penalty_period(extend(31)).await).code(Code::InvalidArgument).rule("PEN-1").field("days");
    refused(handler.extend_penalty_period(extend(0)).await).code(Code::InvalidArgument).rule("PEN-1").field("days");
    assert_eq!(server.lead_stream_length(&id).await, length, "the refused extensions wrote nothing");

    let extended = ok(handler.extend_penalty_period(extend(30)).await, "Extend");
    assert_eq!(extended.event_types, ["complaint.penalty_period_extended"]);
    let lead = server.complaint(&id).await;
    let extended_due = open_deadline(&lead, Kind::PenaltyComplete).due;
    assert_eq!(extended_due, Some(calculated_due(&server, Kind::PenaltyComplete, filed_at, 30).await));
    assert!(extended_due.expect("due").seconds > ninety_days.seconds + 29 * 86_400, "120 days from the filing");

    let length = server.lead_stream_length(&id).await;
    refused(handler.extend_penalty_period(extend(10)).await)
        .code(Code::FailedPrecondition)
        .rule("PEN-1")
        .mentions("局长 张某");
    assert_eq!(server.lead_stream_length(&id).await, length, "the second extension wrote nothing");

    let decide = pb::DecidePenaltyRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        imposed: true,
        description: "责令改正，罚款五千元".to_owned(),
        fine_fen: 500_000,
        reason: String::new(),
    };
    assert_eq!(ok(handler.decide_penalty(decide).await, "Decide").event_types, ["complaint.penalty_decided"]);
    assert!(open_kinds(&server.complaint(&id).await).is_empty(), "the decision met the penalty period");
    record_finding(&server, HANDLER_SJ, &id, pb::Finding::Substantiated).await;
    // PEN-1: the outcome goes back to the complainant and to the transferring body first.
    refused(handler.sign_closure(sign_closure_request(&id)).await).code(Code::FailedPrecondition).rule("PEN-1");
    give_feedback(&server, HANDLER_SJ, &id, Recipient::Complainant).await;
    refused(handler.sign_closure(sign_closure_request(&id)).await).code(Code::FailedPrecondition).rule("PEN-1");
    give_feedback(&server, HANDLER_SJ, &id, Recipient::TransferringBody).await;
    sign_closure(&server, HANDLER_SJ, &id).await;
    cancel_case(&server, CITY_REVIEWER_SJ, &id).await;
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Cancelled);
    let penalty_steps: Vec<&str> =
        timeline_types(&lead).into_iter().filter(|kind| kind.starts_with("complaint.penalty")).collect();
    assert_eq!(
        penalty_steps,
        [
            "complaint.penalty_matter_opened",
            "complaint.penalty_matter_verified",
            "complaint.penalty_case_filed",
            "complaint.penalty_period_extended",
            "complaint.penalty_decided",
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hdl_4_a_12345_lead_reopens_on_a_dissatisfied_follow_up_and_closes_again() {
    let server = TestServer::start().await;
    // The hotline (行政审批) registers its own leads.
    let request = hotline_12345_registration(&unique_uscc());
    let ticket = request.hotline_ticket.clone();
    let registered = ok(server.complaints(REGISTRAR_XZ).register(request).await, "Register 12345");
    let id = registered.complaint_id;
    classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    transfer(&server, &id, pb::Body::Sj).await;
    accept(&server, HANDLER_SJ, &id).await;
    let first_close = open_deadline(&server.complaint(&id).await, Kind::GeneralClose).clone();
    record_finding(&server, HANDLER_SJ, &id, pb::Finding::Substantiated).await;
    give_feedback(&server, HANDLER_SJ, &id, Recipient::Complainant).await;
    let mut handler = server.complaints(HANDLER_SJ);
    // HDL-4: the hotline hears the result before the closure.
    refused(handler.sign_closure(sign_closure_request(&id)).await).code(Code::FailedPrecondition).rule("HDL-4");
    give_feedback(&server, HANDLER_SJ, &id, Recipient::Hotline12345).await;
    sign_closure(&server, HANDLER_SJ, &id).await;
    assert_eq!(status(&server.complaint(&id).await), pb::LeadStatus::Closed);

    let follow_up = |satisfaction: pb::Satisfaction| pb::RecordSatisfactionRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        satisfaction: satisfaction.into(),
        comment: "回访记录".to_owned(),
    };
    let dissatisfied = ok(
        server.complaints(REGISTRAR_XZ).record_satisfaction(follow_up(pb::Satisfaction::Dissatisfied)).await,
        "回访",
    );
    assert_eq!(dissatisfied.event_types, ["complaint.satisfaction_recorded", "complaint.reopened"]);

    // Interpretation 18: back with the same body, a fresh period from the reopening.
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Handling);
    assert_eq!(summary(&lead).reopen_count, 1);
    assert_eq!(summary(&lead).body(), pb::Body::Sj);
    let reopened_at = last_entry(&lead, "complaint.reopened").at.expect("at");
    let second_close = open_deadline(&lead, Kind::GeneralClose);
    assert_ne!(second_close.seq, first_close.seq, "a new deadline");
    assert_eq!(second_close.due, Some(calculated_due(&server, Kind::GeneralClose, reopened_at, 0).await));
    assert_eq!(second_close.body(), pb::Body::Sj);

    // No follow-up while it is open again; the new round needs its own feedback.
    let length = server.lead_stream_length(&id).await;
    refused(server.complaints(REGISTRAR_XZ).record_satisfaction(follow_up(pb::Satisfaction::Satisfied)).await)
        .code(Code::FailedPrecondition)
        .rule("HDL-4");
    refused(handler.sign_closure(sign_closure_request(&id)).await).code(Code::FailedPrecondition).rule("HDL-1");
    assert_eq!(server.lead_stream_length(&id).await, length);
    give_feedback(&server, HANDLER_SJ, &id, Recipient::Complainant).await;
    give_feedback(&server, HANDLER_SJ, &id, Recipient::Hotline12345).await;
    sign_closure(&server, HANDLER_SJ, &id).await;
    // 行政审批's handler may record the follow-up too.
    let satisfied =
        ok(server.complaints(HANDLER_XZ).record_satisfaction(follow_up(pb::Satisfaction::Satisfied)).await, "回访");
    assert_eq!(satisfied.event_types, ["complaint.satisfaction_recorded"]);
    cancel_case(&server, CITY_REVIEWER_SJ, &id).await;

    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Cancelled);
    assert_eq!(summary(&lead).reopen_count, 1);
    assert_eq!(summary(&lead).channel(), pb::Channel::Hotline12345);
    assert_eq!(lead.hotline_ticket, ticket);
    assert_eq!(last_entry(&lead, "complaint.registered").actor, Some(actor(REGISTRAR_XZ)));
    let follow_ups: Vec<Option<pb::Principal>> = lead
        .timeline
        .iter()
        .filter(|entry| entry.event_type == "complaint.satisfaction_recorded")
        .map(|entry| entry.actor.clone())
        .collect();
    assert_eq!(follow_ups, [Some(actor(REGISTRAR_XZ)), Some(actor(HANDLER_XZ))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn trf_3_a_misrouted_transfer_is_returned_and_transferred_again_against_its_original_deadline() {
    let server = TestServer::start().await;
    let id = register_lead(&server, &unique_uscc()).await;
    let original = open_deadline(&server.complaint(&id).await, Kind::Transfer).clone();
    classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    transfer(&server, &id, pb::Body::Sj).await;

    let give_back = |reason: &str| pb::ReturnTransferRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        reason: reason.to_owned(),
    };
    let length = server.lead_stream_length(&id).await;
    refused(server.complaints(HANDLER_SJ).return_transfer(give_back("")).await)
        .code(Code::InvalidArgument)
        .rule("TRF-3")
        .field("reason");
    // Only the body it was transferred to may return it.
    refused(server.complaints(HANDLER_ZF).return_transfer(give_back("不归我们管")).await)
        .code(Code::PermissionDenied)
        .rule("TRF-3");
    assert_eq!(server.lead_stream_length(&id).await, length, "the refusals wrote nothing");

    let returned = ok(
        server.complaints(HANDLER_SJ).return_transfer(give_back("属于物业公共部位经营，非市场监管职责")).await,
        "Return",
    );
    assert_eq!(returned.event_types, ["complaint.transfer_returned"]);
    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Returned);
    assert_eq!(summary(&lead).return_count, 1);
    // Interpretation 27: nothing runs while 住建 reviews the return; it accepts it.
    assert!(open_kinds(&lead).is_empty(), "{:?}", open_kinds(&lead));
    let review = pb::ReviewReturnRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        accept: true,
        reason: "确属公共部位经营收益问题".to_owned(),
    };
    let reviewed = ok(server.complaints(REGISTRAR_ZJ).review_return(review).await, "ReviewReturn");
    assert_eq!(reviewed.event_types, ["complaint.return_reviewed"]);
    let lead = server.complaint(&id).await;
    // Interpretation 15: the TRF-2 clock does not restart; the original due instant is back.
    assert_eq!(open_kinds(&lead), [Kind::Transfer]);
    let reinstated = open_deadline(&lead, Kind::Transfer);
    assert_eq!(reinstated.due, original.due);
    assert!(reinstated.basis.contains("reinstated"), "{reinstated:?}");

    classify(&server, &id, "ZJ-2-1", pb::Urgency::Normal, pb::Complexity::General).await;
    assert_eq!(open_deadline(&server.complaint(&id).await, Kind::Transfer).due, original.due);
    // TRF-3: the new category routes to 住建, so 市场监管 cannot get it again.
    let wrong = pb::TransferRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        to: pb::Body::Sj.into(),
        method: pb::TransferMethod::Written.into(),
        note: String::new(),
    };
    refused(server.complaints(REGISTRAR_ZJ).transfer(wrong).await)
        .code(Code::FailedPrecondition)
        .rule("TRF-3")
        .field("to");
    transfer(&server, &id, pb::Body::Zj).await;
    accept(&server, HANDLER_ZJ, &id).await;

    let lead = server.complaint(&id).await;
    assert_eq!(status(&lead), pb::LeadStatus::Handling);
    assert_eq!(summary(&lead).body(), pb::Body::Zj);
    assert_eq!(summary(&lead).category, "ZJ-2-1");
    assert_eq!(summary(&lead).return_count, 1);
    assert_eq!(open_kinds(&lead), [Kind::GeneralClose]);
    assert_eq!(
        timeline_types(&lead),
        [
            "complaint.registered",
            "complaint.classified",
            "complaint.transferred",
            "complaint.transfer_returned",
            "complaint.return_reviewed",
            "complaint.classified",
            "complaint.transferred",
            "complaint.accepted",
        ]
    );
    assert_eq!(last_entry(&lead, "complaint.transfer_returned").actor, Some(actor(HANDLER_SJ)));
    // 市场监管 no longer holds the lead.
    refused(server.queries(HANDLER_SJ).get_complaint(pb::GetComplaintRequest { complaint_id: id.clone() }).await)
        .code(Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread")]
async fn trf_3_a_split_classification_opens_linked_leads_that_keep_the_complaints_clock() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    let id = register_lead(&server, &uscc).await;
    let parent_transfer = open_deadline(&server.complaint(&id).await, Kind::Transfer).clone();
    let split = |categories: &[&str]| {
        categories.iter().map(|category| pb::SplitLead { category: (*category).to_owned() }).collect::<Vec<_>>()
    };
    let request = pb::ClassifyRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        category: "ZJ-2-1".to_owned(),
        urgency: pb::Urgency::Normal.into(),
        complexity: pb::Complexity::General.into(),
        split: split(&["SJ-3-1", "XF-6"]),
    };
    let classified = ok(server.complaints(REGISTRAR_ZJ).classify(request.clone()).await, "Classify with split");
    assert_eq!(classified.event_types, ["complaint.classified"]);
    assert_eq!(classified.created_complaint_ids, [format!("{id}-2"), format!("{id}-3")]);

    let parent = server.complaint(&id).await;
    assert_eq!(parent.linked_complaint_ids, classified.created_complaint_ids);
    for (child_id, category, body) in [
        (&classified.created_complaint_ids[0], "SJ-3-1", pb::Body::Sj),
        (&classified.created_complaint_ids[1], "XF-6", pb::Body::Xf),
    ] {
        let child = server.complaint(child_id).await;
        assert_eq!(status(&child), pb::LeadStatus::Classified, "{child_id}");
        assert_eq!(child.parent_complaint_id, id);
        assert_eq!(summary(&child).category, category);
        assert_eq!(summary(&child).registered_at, summary(&parent).registered_at, "the complaint's registration");
        assert_eq!(child.complainant, parent.complainant);
        assert_eq!(child.content, parent.content);
        assert_eq!(timeline_types(&child), ["complaint.split_from"]);
        // The linked lead's TRF-2 clock is the complaint's.
        assert_eq!(open_deadline(&child, Kind::Transfer).due, parent_transfer.due, "{child_id}");
        // It goes its own way to its own body.
        transfer(&server, child_id, body).await;
    }

    // The same request again creates nothing and names the same linked leads.
    let head = server.log_head().await;
    let again = ok(server.complaints(REGISTRAR_ZJ).classify(request).await, "Classify again");
    assert!(again.replayed);
    assert_eq!(again.created_complaint_ids, classified.created_complaint_ids);
    server.assert_nothing_written_after(head, "a repeated split").await;

    // One lead per body: a second part for 住建 is refused.
    let other = register_lead(&server, &uscc).await;
    let request = pb::ClassifyRequest {
        request_id: request_id(),
        complaint_id: other.clone(),
        category: "ZJ-2-1".to_owned(),
        urgency: pb::Urgency::Normal.into(),
        complexity: pb::Complexity::General.into(),
        split: split(&["ZJ-1-3"]),
    };
    refused(server.complaints(REGISTRAR_ZJ).classify(request).await)
        .code(Code::InvalidArgument)
        .rule("TRF-3")
        .field("split.category");
    assert_eq!(status(&server.complaint(&other).await), pb::LeadStatus::Registered);
}

/// Polls the company until `done` holds, at most 5 s; returns the last answer.
async fn company_until(server: &TestServer, uscc: &str, done: impl Fn(&pb::Enterprise) -> bool) -> pb::Enterprise {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer =
            server.queries(REGISTRAR_ZJ).get_enterprise(pb::GetEnterpriseRequest { uscc: uscc.to_owned() }).await;
        // The company's stream is written by tousu's reactions a moment after the leads: until
        // the first count it does not exist.
        let company = match answer {
            Err(status) if status.code() == Code::NotFound && Instant::now() <= deadline => None,
            answer => Some(ok(answer, "GetEnterprise")),
        };
        if let Some(company) = company
            && (done(&company) || Instant::now() > deadline)
        {
            return company;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_4_a_company_counts_each_complainant_once_and_substantiated_findings_apart() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();
    let same_person = |contact: &str| pb::Complainant {
        anonymous: false,
        name: "王某".to_owned(),
        contact: contact.to_owned(),
        id_number: "350102199001011234".to_owned(),
    };
    // The same person twice (the same ID number, different contacts), another person, and
    // an anonymous lead, which counts once on its own (interpretation 2).
    let mut leads = Vec::new();
    for complainant in [
        same_person("13900000001"),
        same_person("fuzhou@example.org"),
        tousu_e2e::requests::unique_complainant(),
        pb::Complainant { anonymous: true, ..Default::default() },
    ] {
        let request = pb::RegisterRequest { complainant: Some(complainant), ..registration(&uscc) };
        leads.push(register(&server, request).await.complaint_id);
    }
    let company = company_until(&server, &uscc, |company| company.leads == 4).await;
    assert_eq!(company.uscc, uscc);
    assert_eq!(company.name, "某某物业服务有限公司");
    assert_eq!((company.leads, company.distinct_complainants), (4, 3), "{company:?}");
    assert_eq!((company.substantiated_6_months, company.substantiated_12_months), (0, 0));

    // Findings: the same person's two leads substantiated count once; the other person's
    // lead first unsubstantiated, then substantiated (the latest finding counts).
    for id in &leads[..3] {
        classify(&server, id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
        transfer(&server, id, pb::Body::Sj).await;
        accept(&server, HANDLER_SJ, id).await;
    }
    record_finding(&server, HANDLER_SJ, &leads[0], pb::Finding::Substantiated).await;
    record_finding(&server, HANDLER_SJ, &leads[1], pb::Finding::Substantiated).await;
    record_finding(&server, HANDLER_SJ, &leads[2], pb::Finding::Unsubstantiated).await;
    let company = company_until(&server, &uscc, |company| company.substantiated_6_months == 1).await;
    assert_eq!((company.substantiated_6_months, company.substantiated_12_months), (1, 1), "{company:?}");
    record_finding(&server, HANDLER_SJ, &leads[2], pb::Finding::Substantiated).await;
    let company = company_until(&server, &uscc, |company| company.substantiated_6_months == 2).await;
    assert_eq!((company.substantiated_6_months, company.substantiated_12_months), (2, 2), "{company:?}");
    assert_eq!((company.leads, company.distinct_complainants), (4, 3));
    // Three distinct complainants are far from REG-4's "more than 10": no condition holds.
    assert!(company.conditions.is_empty(), "{:?}", company.conditions);

    // The counting is tousu's own: the company's stream records every lead and finding as
    // tousu's system principal.
    let events = server.stream_events(&format!("enterprise-{uscc}")).await;
    let types: Vec<&str> = events.iter().map(|event| event.event_type.as_str()).collect();
    assert_eq!(types.iter().filter(|kind| kind.ends_with("complaint_recorded")).count(), 4, "{types:?}");
    assert_eq!(types.iter().filter(|kind| kind.ends_with("finding_recorded")).count(), 4, "{types:?}");
    assert!(events.iter().all(|event| event.actor.as_ref().is_some_and(|a| a.role() == pb::Role::System)));
}
