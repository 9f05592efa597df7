//! Interpretation 21 against the real server: legal time never runs out. With the server's
//! clock in years whose State Council holiday schedule is not loaded, the README's whole path
//! works and every deadline is provisional; loading the official schedule recomputes the open
//! provisional deadlines by events, and the overdue list and the escalation ladder follow; a
//! reaction that fails is kept, reported, and succeeds once the failure is fixed.
//!
//! The servers run on a shifted clock (`--clock-start`), so these tests run on the dates they
//! name whatever the day they run.

use std::time::{Duration, Instant};

use tousu_api::pb;
use tousu_e2e::flows::{
    accept, cancel_case, classify, give_feedback, lead_until, open_deadline, record_finding, sign_closure,
    timeline_types, transfer,
};
use tousu_e2e::refusal::{ok, refused};
use tousu_e2e::requests::{readme_registration, request_id, timestamp_of, unique_uscc};
use tousu_e2e::server::{
    AUDITOR, CITY_REVIEWER_SJ, HANDLER_SJ, OPERATOR, REGISTRAR_ZJ, ServerOptions, TestServer, test_calendar_2027,
};

/// Asserts a deadline is provisional and rests on `year`'s provisional calendar.
fn assert_provisional(deadline: &pb::Deadline, year: i32) {
    assert!(deadline.provisional, "{deadline:?}");
    assert!(deadline.calendar_version.contains(&format!("{year}.provisional")), "{deadline:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn interp_21_the_readme_path_works_in_2027_2030_and_2040_and_every_deadline_is_provisional() {
    for year in [2027, 2030, 2040] {
        let server = TestServer::start_with(ServerOptions::at_clock(&format!("{year}-03-05T09:00:00+08:00"))).await;
        let uscc = unique_uscc();
        let registered = ok(
            server
                .complaints(REGISTRAR_ZJ)
                .register(readme_registration(&format!("{year}-03-05T08:30:00+08:00"), &uscc))
                .await,
            "Register",
        );
        let id = registered.complaint_id;
        let lead = server.complaint(&id).await;
        assert_provisional(open_deadline(&lead, pb::DeadlineKind::Transfer), year);

        classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
        transfer(&server, &id, pb::Body::Sj).await;
        let lead = server.complaint(&id).await;
        assert_provisional(open_deadline(&lead, pb::DeadlineKind::GeneralClose), year);

        accept(&server, HANDLER_SJ, &id).await;
        record_finding(&server, HANDLER_SJ, &id, pb::Finding::Substantiated).await;
        give_feedback(&server, HANDLER_SJ, &id, pb::FeedbackRecipient::Complainant).await;
        sign_closure(&server, HANDLER_SJ, &id).await;
        cancel_case(&server, CITY_REVIEWER_SJ, &id).await;

        let lead = server.complaint(&id).await;
        assert_eq!(lead.summary.as_ref().map(|summary| summary.status()), Some(pb::LeadStatus::Cancelled), "{year}");
        assert!(lead.open_deadlines.is_empty(), "{year}: everything met");
        // Every deadline the lead ever had was recorded provisional, with the year's version.
        let opened: Vec<&pb::TimelineEntry> =
            lead.timeline.iter().filter(|entry| entry.payload_json.contains("\"opens\"")).collect();
        assert_eq!(opened.len(), 2, "{year}: the transfer and the handling deadline");
        for entry in opened {
            assert!(entry.payload_json.contains("\"provisional\":true"), "{year}: {}", entry.payload_json);
            assert!(entry.payload_json.contains(&format!("{year}.provisional")), "{year}: {}", entry.payload_json);
        }
        // The deadline calculation says the same.
        let calculation = ok(
            server
                .queries(OPERATOR)
                .calculate_deadline(pb::CalculateDeadlineRequest {
                    kind: pb::DeadlineKind::Transfer.into(),
                    start: Some(timestamp_of(&format!("{year}-03-05T09:00:00+08:00"))),
                    extension_days: 0,
                })
                .await,
            "CalculateDeadline",
        );
        assert!(calculation.provisional && calculation.calendar_version == format!("{year}.provisional"));
        // The operator is warned that no schedule is loaded after 2026.
        let projections = ok(server.admin(OPERATOR).list_projections(pb::ListProjectionsRequest {}).await, "List");
        assert!(projections.calendar_warning.contains("after 2026"), "{year}: {projections:?}");
    }
}

async fn overdue_of(server: &TestServer, id: &str) -> Vec<pb::OverdueObligation> {
    let mut read = server.read_models(AUDITOR);
    let answer =
        ok(read.list_overdue(pb::ListOverdueRequest { page_size: 500, ..Default::default() }).await, "ListOverdue");
    answer.obligations.into_iter().filter(|obligation| obligation.complaint_id == id).collect()
}

/// Waits until the overdue list shows `count` obligations of the lead, at most 30 s.
async fn overdue_until(server: &TestServer, id: &str, count: usize) -> Vec<pb::OverdueObligation> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let overdue = overdue_of(server, id).await;
        if overdue.len() == count {
            return overdue;
        }
        assert!(Instant::now() < deadline, "{count} overdue obligations of {id} not within 30 s: {overdue:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interp_21_loading_the_official_2027_schedule_recomputes_open_deadlines_and_the_overdue_list_follows() {
    // Wednesday 3 February 2027, no 2027 schedule: the transfer deadline counts 4 February,
    // then (provisional 春节 resting 5–10 February) 11, 12 and 15–18: due at 24:00 on 18
    // February. The test's made-up official 2027 rests 5–13 February and works Saturday 20:
    // due at 24:00 on 20 February.
    let mut server = TestServer::start_with(ServerOptions {
        deadline_interval_seconds: Some(1),
        ..ServerOptions::at_clock("2027-02-03T10:00:00+08:00")
    })
    .await;
    let registered = ok(
        server
            .complaints(REGISTRAR_ZJ)
            .register(readme_registration("2027-02-03T09:30:00+08:00", &unique_uscc()))
            .await,
        "Register",
    );
    let id = registered.complaint_id;
    let lead = server.complaint(&id).await;
    let transfer = open_deadline(&lead, pb::DeadlineKind::Transfer);
    assert_provisional(transfer, 2027);
    assert_eq!(transfer.due, Some(timestamp_of("2027-02-19T00:00:00+08:00")));

    // Friday 19 February at noon: missed against the provisional due; the reactor reminds.
    server.kill();
    server
        .restart_with(ServerOptions {
            deadline_interval_seconds: Some(1),
            ..ServerOptions::at_clock("2027-02-19T12:00:00+08:00")
        })
        .await;
    server.wait_read_models_live().await;
    lead_until(&server, &id, "the reminder", |lead| timeline_types(lead).contains(&"complaint.escalated")).await;
    let overdue = overdue_until(&server, &id, 1).await;
    assert!(overdue[0].provisional, "{overdue:?}");
    assert_eq!(overdue[0].level(), pb::EscalationLevel::Reminder);

    // The official 2027 arrives through the Admin call: recorded, and the deadline recomputed.
    let text = std::fs::read_to_string(test_calendar_2027()).expect("the test's 2027 file");
    let mut admin = server.admin(OPERATOR);
    let load = pb::LoadCalendarYearRequest { request_id: request_id(), text: text.clone() };
    let loaded = ok(admin.load_calendar_year(load).await, "LoadCalendarYear");
    assert!(loaded.recorded && loaded.year == 2027 && loaded.version.starts_with("2027.official."), "{loaded:?}");
    // Loading it again records nothing; another schedule for 2027 is refused, naming both.
    let again = pb::LoadCalendarYearRequest { request_id: request_id(), text: text.clone() };
    assert!(!ok(admin.load_calendar_year(again).await, "LoadCalendarYear again").recorded);
    let other =
        pb::LoadCalendarYearRequest { request_id: request_id(), text: text.replace("2027-02-13", "2027-02-12") };
    refused(admin.load_calendar_year(other).await).code(tonic::Code::FailedPrecondition).mentions(&loaded.version);
    let broken = pb::LoadCalendarYearRequest { request_id: request_id(), text: "year = 2028".to_owned() };
    refused(admin.load_calendar_year(broken).await).code(tonic::Code::InvalidArgument).field("text");

    let lead = lead_until(&server, &id, "the recomputation", |lead| {
        timeline_types(lead).contains(&"complaint.deadline_recomputed")
    })
    .await;
    let transfer = open_deadline(&lead, pb::DeadlineKind::Transfer);
    assert!(!transfer.provisional && transfer.calendar_version.is_empty(), "{transfer:?}");
    assert_eq!(transfer.due, Some(timestamp_of("2027-02-21T00:00:00+08:00")));
    assert!(transfer.escalations.is_empty(), "the reminder is withdrawn: {transfer:?}");
    let recomputed = lead.timeline.iter().rfind(|entry| entry.event_type == "complaint.deadline_recomputed").unwrap();
    assert!(recomputed.payload_json.contains("\"miss_withdrawn\":true"), "{}", recomputed.payload_json);
    // Not overdue any more at Friday noon: the list follows the recorded due.
    overdue_until(&server, &id, 0).await;
    // No provisional deadline is left to recompute, and no warning: 2027 is official.
    let projections = ok(admin.list_projections(pb::ListProjectionsRequest {}).await, "ListProjections");
    assert!(projections.calendar_warning.is_empty(), "{projections:?}");

    // Thursday 25 February: four working days (22–25) after the new due; the ladder climbs
    // from the recomputed due to the report to 区委、区政府. The schedule loaded into the log is
    // in force after the restart.
    server.kill();
    server
        .restart_with(ServerOptions {
            deadline_interval_seconds: Some(1),
            ..ServerOptions::at_clock("2027-02-25T10:00:00+08:00")
        })
        .await;
    let status = ok(server.admin(OPERATOR).get_calendar_status(pb::GetCalendarStatusRequest {}).await, "Status");
    assert_eq!(status.last_official_year, 2027, "{status:?}");
    server.wait_read_models_live().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let overdue = overdue_of(&server, &id).await;
        let reached = overdue.first().is_some_and(|row| {
            row.recorded_levels.contains(&(pb::EscalationLevel::DistrictLeadership as i32)) && !row.provisional
        });
        if reached {
            assert_eq!(overdue[0].late_days, 4, "{overdue:?}");
            assert_eq!(overdue[0].level(), pb::EscalationLevel::DistrictLeadership);
            break;
        }
        assert!(Instant::now() < deadline, "the district report was not recorded: {overdue:?}\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn interp_21_a_reaction_that_fails_is_kept_reported_and_succeeds_once_fixed_losing_no_count() {
    // 27 December 2100, a policy with one-day periods and a grade review from the first
    // substantiated complaint: the lead goes through; its finding's count opens a survey
    // deadline ten days on, in 2101, beyond every calendar: the count is refused and stuck.
    let scratch = std::env::temp_dir().join(format!("tousu-policy-{}-{}", std::process::id(), request_id()));
    std::fs::create_dir_all(&scratch).expect("a scratch directory");
    let policy = scratch.join("policy.toml");
    std::fs::write(
        &policy,
        "[periods]\ntransfer_working_days = 1\ngeneral_close_days = 1\n[companies]\ngrade_review_more_than = 0\n",
    )
    .expect("the policy file");
    let options = ServerOptions { policy: Some(policy), ..ServerOptions::at_clock("2100-12-27T09:00:00+08:00") };
    let mut server = TestServer::start_with(options.clone()).await;
    let uscc = unique_uscc();
    let registered = ok(
        server.complaints(REGISTRAR_ZJ).register(readme_registration("2100-12-27T08:30:00+08:00", &uscc)).await,
        "Register",
    );
    let id = registered.complaint_id;
    classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    transfer(&server, &id, pb::Body::Sj).await;
    accept(&server, HANDLER_SJ, &id).await;
    record_finding(&server, HANDLER_SJ, &id, pb::Finding::Substantiated).await;

    let mut admin = server.admin(OPERATOR);
    let deadline = Instant::now() + Duration::from_secs(30);
    let stuck = loop {
        let answer = ok(admin.list_projections(pb::ListProjectionsRequest {}).await, "ListProjections");
        if let Some(stuck) =
            answer.stuck_reactions.into_iter().find(|stuck| stuck.event_type == "complaint.finding_recorded")
        {
            break stuck;
        }
        assert!(Instant::now() < deadline, "the failed count is not reported\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(stuck.reason.contains("2101"), "the reason names the year: {stuck:?}");
    assert_eq!(stuck.stream, format!("complaint-{id}"));
    // Killed and started again, the server still has it, from the file beside its checkpoint,
    // although the checkpoint has passed it.
    server.kill();
    assert!(server.data_dir().join("reactions.stuck").exists());
    server.restart_with(options).await;
    let mut admin = server.admin(OPERATOR);
    let answer = ok(admin.list_projections(pb::ListProjectionsRequest {}).await, "ListProjections");
    assert!(
        answer.stuck_reactions.iter().any(|again| again.stream == stuck.stream && again.revision == stuck.revision),
        "{answer:?}"
    );
    let company = || async {
        ok(
            server.queries(AUDITOR).get_enterprise(pb::GetEnterpriseRequest { uscc: uscc.clone() }).await,
            "GetEnterprise",
        )
    };
    assert_eq!(company().await.substantiated_6_months, 0, "the finding is not counted yet");

    // The fix: 2101's schedule (made-up test data) is loaded. The next attempt counts it.
    let blocks = [
        ("元旦", "01-01", "01-01"),
        ("春节", "01-28", "02-03"),
        ("清明节", "04-04", "04-06"),
        ("劳动节", "05-01", "05-05"),
        ("端午节", "06-01", "06-01"),
        ("中秋节", "09-07", "09-07"),
        ("国庆节", "10-01", "10-07"),
    ];
    let year_2101 = blocks.iter().fold(
        "# MADE-UP TEST DATA, not a State Council notice\nyear = 2101\nsource = \"made-up test data\"\n".to_owned(),
        |text, (name, from, to)| {
            format!("{text}[[holiday]]\nname = \"{name}\"\nfrom = \"2101-{from}\"\nto = \"2101-{to}\"\n")
        },
    );
    ok(
        admin.load_calendar_year(pb::LoadCalendarYearRequest { request_id: request_id(), text: year_2101 }).await,
        "Load",
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = ok(admin.list_projections(pb::ListProjectionsRequest {}).await, "ListProjections");
        if answer.stuck_reactions.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stuck count did not succeed: {:?}\n{}",
            answer.stuck_reactions,
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let counted = company().await;
    assert_eq!(counted.leads, 1);
    assert_eq!(counted.substantiated_6_months, 1, "the finding is counted once: {counted:?}");
    let survey = open_deadlines_of_company(&counted);
    assert_eq!(survey, 1, "the grade review's survey is due: {counted:?}");
    let _ = std::fs::remove_dir_all(&scratch);
}

fn open_deadlines_of_company(company: &pb::Enterprise) -> usize {
    company.open_deadlines.iter().filter(|deadline| deadline.kind == pb::DeadlineKind::Survey as i32).count()
}
