//! Fair accountability against the real server (the second revision's interpretations 9, 22,
//! 24 and 25): the deadline reactor only *recommends* a referral to the discipline organ and a
//! named 住建 official decides it; a lead counts against a company only when it names the
//! company and is its own doing; a penalty case supersedes the handling deadline; a major
//! matter owes a plan only when it is not resolved within its month.
//!
//! The servers run on a shifted clock (`--clock-start`), so these tests run on the dates they
//! name whatever the day they run; a restart on a later clock lets the reactor act.

use std::time::{Duration, Instant};

use tonic::Code;
use tousu_api::pb;
use tousu_e2e::flows::{
    accept, classify, give_feedback, handling_lead, lead_until, open_kinds, record_finding, register, register_lead,
    sign_closure, timeline_types, transfer,
};
use tousu_e2e::refusal::{ok, refused};
use tousu_e2e::requests::{readme_registration, registration, request_id, timestamp_of, unique_uscc};
use tousu_e2e::server::{
    AUDITOR, HANDLER_SJ, HANDLER_ZF, OFFICIAL_ZJ, REGISTRAR_ZJ, STREET_OFFICE_JB, ServerOptions, TestServer,
};

/// Where the reactor acts every second.
fn reacting_at(start: &str) -> ServerOptions {
    ServerOptions { deadline_interval_seconds: Some(1), ..ServerOptions::at_clock(start) }
}

/// A lead received at `received_at` (the README's), registered at the server's clock.
async fn lead_registered(server: &TestServer, received_at: &str, uscc: &str) -> String {
    register(server, readme_registration(received_at, uscc)).await.complaint_id
}

/// The recommendations concerning `id`, read by the auditor until `check` holds of them.
async fn referrals_until(
    server: &TestServer,
    id: &str,
    what: &str,
    check: impl Fn(&[pb::Referral]) -> bool,
) -> Vec<pb::Referral> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer =
            ok(server.read_models(AUDITOR).list_referrals(pb::ListReferralsRequest::default()).await, "ListReferrals");
        let of_lead: Vec<pb::Referral> =
            answer.referrals.into_iter().filter(|referral| referral.complaint_id == id).collect();
        if check(&of_lead) {
            return of_lead;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s: {of_lead:?}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn decide(id: &str, seq: u32, decision: pb::ReferralDecision, reason: &str) -> pb::DecideReferralRequest {
    pb::DecideReferralRequest {
        request_id: request_id(),
        complaint_id: id.to_owned(),
        seq,
        decision: decision.into(),
        reason: reason.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acc_2_interp_9_the_reactor_recommends_a_referral_and_a_named_official_decides_it() {
    // Registered Monday 2 March 2026 and never transferred: TRF-2 is due at 24:00 on Wednesday
    // 11 March, and ten working days late on Wednesday 25 March.
    let mut server = TestServer::start_with(ServerOptions::at_clock("2026-03-02T09:00:00+08:00")).await;
    let id = lead_registered(&server, "2026-03-02T08:30:00+08:00", &unique_uscc()).await;
    classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    server.terminate();
    server.wait_exit(Duration::from_secs(30)).await.expect("the server stops");
    server.restart_with(reacting_at("2026-03-26T09:00:00+08:00")).await;

    lead_until(&server, &id, "the three rungs", |lead| {
        timeline_types(lead).iter().filter(|kind| **kind == "complaint.escalated").count() == 3
    })
    .await;
    let referrals = referrals_until(&server, &id, "the recommendation", |referrals| !referrals.is_empty()).await;
    let [recommended] = referrals.as_slice() else { panic!("one recommendation: {referrals:?}") };
    assert_eq!(recommended.status(), pb::ReferralStatus::Pending, "the timer refers no one: {recommended:?}");
    assert_eq!(
        (recommended.seq, recommended.kind(), recommended.body()),
        (0, pb::DeadlineKind::Transfer, pb::Body::Zj)
    );
    assert_eq!(recommended.reason(), pb::EscalationReason::Lateness);
    assert!(recommended.working_days_late >= 10, "{recommended:?}");
    assert!(recommended.decided_by.is_empty() && recommended.decided_at.is_none());

    // Only an official of 住建 decides, with a reason; a refusal writes nothing.
    let head = server.log_head().await;
    let denied = refused(
        server.complaints(REGISTRAR_ZJ).decide_referral(decide(&id, 0, pb::ReferralDecision::Referred, "理由")).await,
    );
    assert_eq!(denied.code, Code::PermissionDenied, "{denied:?}");
    let no_reason = refused(
        server.complaints(OFFICIAL_ZJ).decide_referral(decide(&id, 0, pb::ReferralDecision::Referred, " ")).await,
    );
    assert_eq!((no_reason.code, no_reason.rule.as_deref()), (Code::InvalidArgument, Some("ACC-2")), "{no_reason:?}");
    let no_recommendation = refused(
        server.complaints(OFFICIAL_ZJ).decide_referral(decide(&id, 7, pb::ReferralDecision::Referred, "理由")).await,
    );
    assert_eq!(no_recommendation.code, Code::FailedPrecondition, "{no_recommendation:?}");
    assert_eq!(no_recommendation.reason.as_deref(), Some("NO_REFERRAL_RECOMMENDATION"));
    server.assert_nothing_written_after(head, "refused referral decisions").await;

    let reason = "逾期十个工作日未转办，经核实无正当理由";
    ok(
        server.complaints(OFFICIAL_ZJ).decide_referral(decide(&id, 0, pb::ReferralDecision::Referred, reason)).await,
        "DecideReferral",
    );
    let referrals = referrals_until(&server, &id, "the decision", |referrals| {
        referrals.iter().any(|referral| referral.status() == pb::ReferralStatus::Referred)
    })
    .await;
    assert_eq!(referrals[0].decided_by, OFFICIAL_ZJ.person());
    assert_eq!(referrals[0].decision_reason, reason);
    assert!(referrals[0].decided_at.is_some());
    let again = refused(
        server.complaints(OFFICIAL_ZJ).decide_referral(decide(&id, 0, pb::ReferralDecision::Dismissed, "改判")).await,
    );
    assert_eq!((again.code, again.reason.as_deref()), (Code::FailedPrecondition, Some("REFERRAL_ALREADY_DECIDED")));
    let lead = server.complaint(&id).await;
    assert!(timeline_types(&lead).contains(&"complaint.referral_decided"), "{:?}", timeline_types(&lead));

    // The filter by status answers the counts the commission reads.
    let answer = ok(
        server
            .read_models(OFFICIAL_ZJ)
            .list_referrals(pb::ListReferralsRequest {
                status: pb::ReferralStatus::Referred.into(),
                ..Default::default()
            })
            .await,
        "ListReferrals",
    );
    assert!(answer.referrals.iter().all(|referral| referral.status() == pb::ReferralStatus::Referred));
    assert_eq!((answer.referred, answer.pending, answer.dismissed), (answer.referrals.len() as u64, 0, 0));
    let denied = refused(server.read_models(HANDLER_SJ).list_referrals(pb::ListReferralsRequest::default()).await);
    assert_eq!(denied.code, Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread")]
async fn pen_1_interp_24_a_penalty_case_supersedes_the_handling_deadline() {
    let server = TestServer::start_with(ServerOptions::at_clock("2026-05-06T10:00:00+08:00")).await;
    let id = lead_registered(&server, "2026-05-06T09:00:00+08:00", &unique_uscc()).await;
    classify(&server, &id, "ZF-1", pb::Urgency::Normal, pb::Complexity::General).await;
    transfer(&server, &id, pb::Body::Zf).await;
    accept(&server, HANDLER_ZF, &id).await;
    let lead = server.complaint(&id).await;
    assert_eq!(open_kinds(&lead), [pb::DeadlineKind::GeneralClose]);
    // The penalty lead is received on acceptance, a moment after the registration.
    let accepted_at = lead.timeline.last().and_then(|entry| entry.at).expect("the acceptance's instant");

    let mut zf = server.complaints(HANDLER_ZF);
    ok(
        zf.open_penalty_matter(pb::OpenPenaltyMatterRequest {
            request_id: request_id(),
            complaint_id: id.clone(),
            received_at: Some(accepted_at),
        })
        .await,
        "OpenPenaltyMatter",
    );
    ok(
        zf.verify_penalty_matter(pb::VerifyPenaltyMatterRequest {
            request_id: request_id(),
            complaint_id: id.clone(),
            outcome: pb::PenaltyVerification::CaseWarranted.into(),
            summary: "擅自改变物业服务用房用途属实".to_owned(),
        })
        .await,
        "VerifyPenaltyMatter",
    );
    ok(
        zf.file_penalty_case(pb::FilePenaltyCaseRequest {
            request_id: request_id(),
            complaint_id: id.clone(),
            case_number: "榕综执罚〔2026〕101号".to_owned(),
        })
        .await,
        "FilePenaltyCase",
    );
    let lead = server.complaint(&id).await;
    assert_eq!(open_kinds(&lead), [pb::DeadlineKind::PenaltyComplete], "PEN-1's period governs");

    // Judged on 20 May, past the old HDL-1 due (24:00 on 13 May), nothing of the lead is overdue.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = ok(
            server
                .read_models(AUDITOR)
                .list_overdue(pb::ListOverdueRequest {
                    at: Some(timestamp_of("2026-05-20T09:00:00+08:00")),
                    page_size: 500,
                    ..Default::default()
                })
                .await,
            "ListOverdue",
        );
        let head = server.log_head().await;
        let caught_up = answer.snapshot.as_ref().is_some_and(|snapshot| Some(snapshot.position) >= head);
        if caught_up {
            let of_lead: Vec<_> = answer.obligations.iter().filter(|o| o.complaint_id == id).collect();
            assert!(of_lead.is_empty(), "{of_lead:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the overdue read model did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hdl_2_interp_25_a_major_matter_owes_a_plan_only_when_not_resolved_within_its_month() {
    // Transferred Monday 2 March 2026: the month ends at 24:00 on Thursday 2 April; the plan,
    // where owed, is due at 24:00 on Monday 9 March.
    let mut server = TestServer::start_with(ServerOptions::at_clock("2026-03-02T09:00:00+08:00")).await;
    let uscc = unique_uscc();
    let mut leads = Vec::new();
    for _ in 0..3 {
        let id = lead_registered(&server, "2026-03-02T08:30:00+08:00", &uscc).await;
        classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::Major).await;
        transfer(&server, &id, pb::Body::Sj).await;
        accept(&server, HANDLER_SJ, &id).await;
        let lead = server.complaint(&id).await;
        assert_eq!(open_kinds(&lead), [pb::DeadlineKind::MajorResolve], "no plan is owed at first");
        leads.push(id);
    }
    let [open, declared, resolved] = [leads[0].clone(), leads[1].clone(), leads[2].clone()];
    ok(
        server
            .complaints(HANDLER_SJ)
            .declare_plan_needed(pb::DeclarePlanNeededRequest {
                request_id: request_id(),
                complaint_id: declared.clone(),
                reason: "需业主大会表决动用专项维修资金".to_owned(),
            })
            .await,
        "DeclarePlanNeeded",
    );
    let lead = server.complaint(&declared).await;
    let plan = lead.open_deadlines.iter().find(|d| d.kind() == pb::DeadlineKind::MajorPlan).expect("plan owed");
    assert_eq!(plan.due, Some(timestamp_of("2026-03-10T00:00:00+08:00")));
    record_finding(&server, HANDLER_SJ, &resolved, pb::Finding::Substantiated).await;
    give_feedback(&server, HANDLER_SJ, &resolved, pb::FeedbackRecipient::Complainant).await;
    sign_closure(&server, HANDLER_SJ, &resolved).await;

    server.terminate();
    server.wait_exit(Duration::from_secs(30)).await.expect("the server stops");
    server.restart_with(reacting_at("2026-04-03T09:00:00+08:00")).await;
    // The month ended with the first lead open and no plan: the plan is owed and missed then.
    let lead =
        lead_until(&server, &open, "the plan's miss", |lead| timeline_types(lead).contains(&"complaint.plan_required"))
            .await;
    let required = lead.timeline.iter().find(|entry| entry.event_type == "complaint.plan_required").unwrap();
    assert!(required.payload_json.contains("\"cause\":\"month_ended\""), "{}", required.payload_json);
    assert!(
        lead.timeline.iter().any(|entry| entry.event_type == "complaint.deadline_missed"
            && entry.payload_json.contains("\"kind\":\"major-plan\"")),
        "{:?}",
        timeline_types(&lead)
    );
    // The declared lead's plan was missed on its day, not again at the month's end.
    let lead = server.complaint(&declared).await;
    assert_eq!(timeline_types(&lead).iter().filter(|kind| **kind == "complaint.plan_required").count(), 1);
    // Resolved within its month, the third never owed a plan.
    let lead = server.complaint(&resolved).await;
    assert!(!timeline_types(&lead).contains(&"complaint.plan_required"), "{:?}", timeline_types(&lead));
}

fn week_request(week: &str, district: &str) -> pb::GetWeeklySummaryRequest {
    pb::GetWeeklySummaryRequest { week_start: week.to_owned(), district: district.to_owned(), ..Default::default() }
}

/// The summary without the snapshot, which says when it was read.
async fn weekly(server: &TestServer, week: &str, district: &str) -> pb::WeeklySummary {
    let answer = ok(server.read_models(AUDITOR).get_weekly_summary(week_request(week, district)).await, "Weekly");
    pb::WeeklySummary { snapshot: None, ..answer }
}

async fn issued_count_until(server: &TestServer, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.stream_events("weekly-summaries").await.len() < count {
        assert!(Instant::now() < deadline, "{count} weekly summaries not issued within 30 s\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_3_interp_26_an_issued_weekly_summary_does_not_change_when_a_late_event_about_its_week_arrives() {
    // A lead registered on Wednesday 4 March 2026 and left unclassified that week.
    let mut server = TestServer::start_with(ServerOptions::at_clock("2026-03-04T10:00:00+08:00")).await;
    let id = lead_registered(&server, "2026-03-04T09:30:00+08:00", &unique_uscc()).await;
    server.terminate();
    server.wait_exit(Duration::from_secs(30)).await.expect("the server stops");
    // Monday 9 March, 10:00: the week's summary is due (Monday 09:00) and the reactor issues it.
    server.restart_with(reacting_at("2026-03-09T10:00:00+08:00")).await;
    issued_count_until(&server, 1).await;
    let issued = weekly(&server, "2026-03-02", "").await;
    assert!(issued.issued && issued.issued_at.is_some(), "{issued:?}");
    assert_eq!(issued.figures.as_ref().map(|figures| figures.received), Some(1));

    // Classified in the week after: the week of 2 March now shows the lead under its category.
    classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    let live = weekly(&server, "2026-03-02", "鼓楼区").await;
    assert!(!live.issued, "a district's summary is computed when asked");
    assert!(
        live.received_by_category.iter().any(|count| count.category == "SJ-3-1"),
        "the late event changes the week's live figures: {:?}",
        live.received_by_category
    );
    let again = weekly(&server, "2026-03-02", "").await;
    assert_eq!(again, issued, "the issued summary never changes");

    // The next summary reports the change as a correction to the earlier week.
    server.terminate();
    server.wait_exit(Duration::from_secs(30)).await.expect("the server stops");
    server.restart_with(reacting_at("2026-03-16T10:00:00+08:00")).await;
    issued_count_until(&server, 2).await;
    let next = weekly(&server, "2026-03-09", "").await;
    assert!(next.issued);
    let correction = next
        .corrections
        .iter()
        .find(|correction| correction.figure == "received_by_category.SJ-3-1")
        .unwrap_or_else(|| panic!("a correction of the category: {:?}", next.corrections));
    assert_eq!((correction.week_start.as_str(), correction.reported, correction.now), ("2026-03-02", 0, 1));
    let first = weekly(&server, "2026-03-02", "").await;
    assert_eq!(first.figures, issued.figures, "the first week stays as issued");
    assert_eq!(first.received_by_category, issued.received_by_category);
    assert!(
        first
            .corrected_later
            .iter()
            .any(|c| c.figure == "received_by_category.SJ-3-1" && c.reported_with == "2026-03-09"),
        "{:?}",
        first.corrected_later
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trf_3_interp_27_a_return_waits_for_review_and_a_rejected_one_counts_as_buck_passing() {
    let server = TestServer::start().await;
    let id = register_lead(&server, &unique_uscc()).await;
    classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    transfer(&server, &id, pb::Body::Sj).await;
    accept(&server, HANDLER_SJ, &id).await;
    let returned = pb::ReturnTransferRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        reason: "建议业主与物业协商解决".to_owned(),
    };
    ok(server.complaints(HANDLER_SJ).return_transfer(returned).await, "ReturnTransfer");
    let lead = server.complaint(&id).await;
    assert!(open_kinds(&lead).is_empty(), "nothing runs while 住建 reviews the return: {:?}", open_kinds(&lead));

    // Not re-routed before the review; only 住建 reviews.
    let request = pb::ClassifyRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        category: "ZJ-1-2".to_owned(),
        urgency: pb::Urgency::Normal.into(),
        complexity: pb::Complexity::General.into(),
        split: Vec::new(),
    };
    let early = refused(server.complaints(REGISTRAR_ZJ).classify(request).await);
    assert_eq!((early.code, early.rule.as_deref()), (Code::FailedPrecondition, Some("TRF-3")), "{early:?}");
    let review = |accept: bool| pb::ReviewReturnRequest {
        request_id: request_id(),
        complaint_id: id.clone(),
        accept,
        reason: "电梯停运属特种设备安全监管职责".to_owned(),
    };
    let denied = refused(server.complaints(HANDLER_SJ).review_return(review(true)).await);
    assert_eq!(denied.code, Code::PermissionDenied);
    ok(server.complaints(OFFICIAL_ZJ).review_return(review(false)).await, "ReviewReturn");

    // Rejected: the lead is the body's again, in handling, with its handling deadline back.
    let lead = server.complaint(&id).await;
    assert_eq!(tousu_e2e::flows::status(&lead), pb::LeadStatus::Handling);
    assert_eq!(open_kinds(&lead), [pb::DeadlineKind::GeneralClose]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let board =
            ok(server.read_models(AUDITOR).get_dashboard(pb::GetDashboardRequest::default()).await, "GetDashboard");
        let sj = board.bodies.iter().find(|line| line.body() == pb::Body::Sj).expect("a line per body");
        if sj.buck_passing == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the dashboard never counted the rejected return: {sj:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The watchlist's evidence for `uscc`, read by the auditor until `check` holds of it.
async fn evidence_until(
    server: &TestServer,
    uscc: &str,
    what: &str,
    check: impl Fn(&pb::WatchlistEvidence) -> bool,
) -> pb::WatchlistEvidence {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let request = pb::GetWatchlistCompanyRequest { uscc: uscc.to_owned(), at: None, as_of: None };
        if let Ok(answer) = server.read_models(AUDITOR).get_watchlist_company(request).await
            && let Some(evidence) = answer.into_inner().evidence
            && check(&evidence)
        {
            return evidence;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grd_1_interp_22_a_lead_counts_against_a_company_only_when_it_names_it_and_is_its_own() {
    let server = TestServer::start().await;
    let uscc = unique_uscc();

    // A lead in an unmanaged community (失管小区) names no company and is registered all the same.
    let mut unmanaged = registration(&uscc);
    unmanaged.company = None;
    let unmanaged = register(&server, unmanaged).await.complaint_id;
    let lead = server.complaint(&unmanaged).await;
    assert_eq!(lead.summary.as_ref().and_then(|summary| summary.company.clone()), None, "{lead:?}");

    // JB-3 (the street office's supervision of owners' committees) is not the company's by
    // default; SJ-3-1 (elevator maintenance) is.
    let by_default = handling_lead(&server, &uscc, "JB-3", pb::Complexity::General).await;
    record_finding(&server, STREET_OFFICE_JB, &by_default, pb::Finding::Substantiated).await;
    let own = handling_lead(&server, &uscc, "SJ-3-1", pb::Complexity::General).await;
    record_finding(&server, HANDLER_SJ, &own, pb::Finding::Substantiated).await;

    // The street office holds the company responsible for another JB-3 matter: a reason is
    // required, and the decision is refused without one.
    let overridden = handling_lead(&server, &uscc, "JB-3", pb::Complexity::General).await;
    let finding = |reason: &str| pb::RecordFindingRequest {
        request_id: request_id(),
        complaint_id: overridden.clone(),
        finding: pb::Finding::Substantiated.into(),
        summary: "核实：物业拒不配合业委会换届审计".to_owned(),
        attribution: Some(pb::Attribution { attributable: true, reason: reason.to_owned() }),
    };
    refused(server.complaints(STREET_OFFICE_JB).record_finding(finding("")).await)
        .code(Code::InvalidArgument)
        .rule("HDL-3")
        .field("attribution.reason");
    let reason = "物业服务企业拒不移交公共收益账目，负有责任";
    ok(server.complaints(STREET_OFFICE_JB).record_finding(finding(reason)).await, "RecordFinding");

    let read = |id: String| {
        let server = &server;
        async move { server.complaint(&id).await }
    };
    let (by_default, own, overridden) = (read(by_default).await, read(own).await, read(overridden).await);
    assert!(!by_default.counts_against_company, "JB-3 is not the company's by default");
    assert!(own.counts_against_company, "SJ-3-1 is");
    assert!(overridden.counts_against_company, "the body held the company responsible");
    assert_eq!(overridden.attribution_reason, reason);
    assert_eq!(by_default.attribution_reason, "");

    // The watchlist counts the company's own two for GRD-1 and EXT-1, lists the other apart, and
    // knows nothing of the lead naming no company.
    let id = |lead: &pb::Complaint| lead.summary.as_ref().expect("a summary").complaint_id.clone();
    let evidence = evidence_until(&server, &uscc, "the findings counted", |evidence| {
        evidence.grade_review.as_ref().is_some_and(|count| count.complaint_ids.len() == 2)
            && !evidence.not_attributable_complaint_ids.is_empty()
    })
    .await;
    assert_eq!(evidence.not_attributable_complaint_ids, vec![id(&by_default)]);
    let mut counted = evidence.grade_review.as_ref().expect("GRD-1's count").complaint_ids.clone();
    counted.sort();
    let mut expected = vec![id(&own), id(&overridden)];
    expected.sort();
    assert_eq!(counted, expected);
    let key_supervision = evidence.key_supervision.as_ref().expect("REG-4's count");
    assert_eq!(key_supervision.complaint_ids.len(), 3, "REG-4 counts every lead naming the company");
    assert!(!key_supervision.complaint_ids.contains(&unmanaged), "the unmanaged community's lead names none");
}

fn approve(month: &str) -> pb::ApproveBulletinRequest {
    pb::ApproveBulletinRequest {
        request_id: request_id(), month: month.to_owned(), note: "局长办公会审定".to_owned()
    }
}

/// The company's entry in a bulletin.
fn entry_of<'a>(entries: &'a [pb::BulletinEntry], uscc: &str) -> &'a pb::BulletinEntry {
    entries.iter().find(|entry| entry.uscc == uscc).unwrap_or_else(|| panic!("{uscc} in the bulletin: {entries:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn pub_1_interp_23_a_named_official_approves_the_months_bulletin_and_it_stays_as_approved() {
    let mut server = TestServer::start_with(ServerOptions::at_clock("2026-03-16T09:00:00+08:00")).await;
    let uscc = unique_uscc();
    let mut march = readme_registration("2026-03-16T08:30:00+08:00", &uscc);
    march.company = Some(pb::CompanyRef { uscc: uscc.clone(), name: "榕城物业服务有限公司".to_owned() });
    register(&server, march).await;

    // Before the month is over its bulletin is a draft and cannot be approved; nobody but a 住建
    // official approves it.
    refused(server.read_models(OFFICIAL_ZJ).approve_bulletin(approve("2026-03")).await)
        .code(Code::FailedPrecondition)
        .rule("PUB-1");
    refused(server.read_models(REGISTRAR_ZJ).approve_bulletin(approve("2026-03")).await)
        .code(Code::PermissionDenied)
        .rule("PUB-1");
    refused(
        server
            .read_models(AUDITOR)
            .get_approved_bulletin(pb::GetApprovedBulletinRequest { month: "2026-03".to_owned() })
            .await,
    )
    .code(Code::NotFound);

    server.terminate();
    server.wait_exit(Duration::from_secs(30)).await.expect("the server stops");
    server.restart_with(ServerOptions::at_clock("2026-04-01T09:00:00+08:00")).await;
    let approved = ok(server.read_models(OFFICIAL_ZJ).approve_bulletin(approve("2026-03")).await, "ApproveBulletin");
    assert_eq!(approved.month, "2026-03");
    assert_eq!(approved.approved_by, OFFICIAL_ZJ.person(), "the approval names the official");
    let approved_at = approved.approved_at.expect("when").seconds - timestamp_of("2026-04-01T09:00:00+08:00").seconds;
    assert!((0..600).contains(&approved_at), "approved on the server's clock: {approved_at} s after its start");
    let anchor = approved.anchor.clone().expect("the history anchor it was computed at");
    assert_eq!(anchor.sha256.len(), 64, "{anchor:?}");
    assert!(anchor.events >= 1, "{anchor:?}");
    assert_eq!(entry_of(&approved.entries, &uscc).name, "榕城物业服务有限公司");

    // In April the company's leads give it a new name: March's draft follows the latest name,
    // the approved bulletin does not change.
    let mut april = readme_registration("2026-04-01T08:30:00+08:00", &uscc);
    april.company = Some(pb::CompanyRef { uscc: uscc.clone(), name: "闽都物业服务有限公司".to_owned() });
    register(&server, april).await;
    let request = pb::GetBulletinRequest { month: "2026-03".to_owned(), ..Default::default() };
    let draft = ok(server.read_models(AUDITOR).get_bulletin(request).await, "GetBulletin");
    assert!(draft.approved, "the draft says an approved bulletin exists");
    assert_eq!(entry_of(&draft.entries, &uscc).name, "闽都物业服务有限公司", "the draft follows later events");
    let frozen = ok(
        server
            .read_models(AUDITOR)
            .get_approved_bulletin(pb::GetApprovedBulletinRequest { month: "2026-03".to_owned() })
            .await,
        "GetApprovedBulletin",
    );
    assert_eq!(frozen, approved, "the approved bulletin never changes");

    // A month is approved once.
    refused(server.read_models(OFFICIAL_ZJ).approve_bulletin(approve("2026-03")).await)
        .code(Code::FailedPrecondition)
        .rule("PUB-1")
        .mentions("approved already");
}
