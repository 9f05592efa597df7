//! The read models over gRPC (`tousu.v1.ReadModels`), each test on its own server: leads and
//! company facts driven through the procedure's commands, then each RPC checked against what
//! the procedure implies — the dashboard's received and open leads per body (DSP-1), the week's
//! leads by channel and body (REG-3), an untransferred lead overdue once its TRF-2 deadline has
//! passed and climbing the escalation ladder (ACC-2), the 11th distinct complainant with a
//! substantiated finding flagging a company (REG-4, GRD-1), the month's praise and criticism
//! (PUB-1); `as_of` replays; and invalid inputs refused naming the field.
//!
//! The server runs on the real clock, so deadlines lie days ahead: what is overdue is asked at
//! an evaluation instant `at` past them. Company counts are made by tousu's reactions a moment
//! after the commands, so the tests wait for them.

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use tonic::Code;
use tousu_api::pb;
use tousu_e2e::flows::{
    accept, classify, give_feedback, handling_lead, open_deadline, record_finding, register, register_lead,
    shanghai_today, sign_closure, transfer,
};
use tousu_e2e::refusal::{ok, refused};
use tousu_e2e::requests::{hotline_12345_registration, registration, request_id, unique_complainant, unique_uscc};
use tousu_e2e::server::{AUDITOR, HANDLER_SJ, HANDLER_ZJ, REGISTRAR_XZ, REGISTRAR_ZJ, STREET_OFFICE_JB, TestServer};

use pb::DeadlineKind as Kind;

fn timestamp(instant: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        nanos: i32::try_from(instant.timestamp_subsec_nanos()).expect("in range"),
    }
}

fn instant(timestamp: prost_types::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp(timestamp.seconds, u32::try_from(timestamp.nanos).expect("non-negative"))
        .expect("in range")
}

fn shanghai_date(timestamp: prost_types::Timestamp) -> NaiveDate {
    instant(timestamp).with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("+08:00")).date_naive()
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()))
}

/// Asks `probe` until it answers, for at most 15 s.
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(answer) = probe().await {
            return answer;
        }
        assert!(Instant::now() < deadline, "{what} within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn line(lines: &[pb::DashboardLine], body: pb::Body, district: &str) -> pb::DashboardLine {
    lines
        .iter()
        .find(|line| line.body() == body && line.district == district)
        .cloned()
        .unwrap_or_else(|| panic!("no line for {body:?} {district:?} in {lines:#?}"))
}

/// (received, open, closed, overdue) of a dashboard line.
fn counts(line: &pb::DashboardLine) -> (u64, u64, u64, u64) {
    (line.received, line.open, line.closed, line.overdue)
}

async fn dashboard(server: &TestServer, request: pb::GetDashboardRequest) -> pb::Dashboard {
    ok(server.read_models(AUDITOR).get_dashboard(request).await, "GetDashboard")
}

async fn overdue(
    server: &TestServer,
    principal: tousu_e2e::server::Principal,
    request: pb::ListOverdueRequest,
) -> pb::ListOverdueResponse {
    ok(server.read_models(principal).list_overdue(request).await, "ListOverdue")
}

async fn watchlist(server: &TestServer, request: pb::GetWatchlistRequest) -> pb::GetWatchlistResponse {
    ok(server.read_models(AUDITOR).get_watchlist(request).await, "GetWatchlist")
}

fn codes(entries: &[pb::WatchlistEntry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.uscc.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dsp_1_and_reg_3_count_the_leads_received_per_body_and_channel() {
    let server = TestServer::start().await;
    server.wait_read_models_live().await;
    let uscc = unique_uscc();
    let mut hotline = Vec::new();
    for _ in 0..3 {
        hotline.push(register_lead(&server, &uscc).await);
    }
    let from_12345 = ok(server.complaints(REGISTRAR_XZ).register(hotline_12345_registration(&uscc)).await, "Register");
    assert!(!from_12345.complaint_id.is_empty());
    // TRF-3: SJ-3-1 is 市场监管's; transferred, the lead is SJ's to handle.
    classify(&server, &hotline[0], "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
    transfer(&server, &hotline[0], pb::Body::Sj).await;
    let registered_at = server.complaint(&hotline[0]).await.summary.expect("a summary").registered_at.expect("at");

    // DSP-1, for every body (a handler of 市场监管 reads the whole picture): 住建 received
    // every lead at registration, 12345's too, and is responsible for the three not
    // transferred; 市场监管 received one and holds it.
    let picture = ok(
        server.read_models(HANDLER_SJ).get_dashboard(pb::GetDashboardRequest::default()).await,
        "GetDashboard as 市场监管",
    );
    assert_eq!(picture.bodies.len(), 12, "every body of the procedure, zeros included");
    assert_eq!(counts(&line(&picture.bodies, pb::Body::Zj, "")), (4, 3, 0, 0));
    assert_eq!(counts(&line(&picture.bodies, pb::Body::Sj, "")), (1, 1, 0, 0));
    assert_eq!(counts(&line(&picture.bodies, pb::Body::Xz, "")), (0, 0, 0, 0), "12345 registers, 住建 receives");
    assert_eq!(counts(&line(&picture.districts, pb::Body::Zj, "鼓楼区")), (4, 3, 0, 0));
    assert_eq!(counts(&line(&picture.districts, pb::Body::Sj, "鼓楼区")), (1, 1, 0, 0));
    let snapshot = picture.snapshot.expect("a snapshot");
    assert_eq!(snapshot.read_model, "leads");
    assert!(snapshot.position > 0 && !snapshot.replayed && !snapshot.cached, "{snapshot:?}");

    // REG-3: the week the leads came in, named by any of its days.
    let week_start = monday_of(shanghai_date(registered_at));
    let summary = ok(
        server
            .read_models(REGISTRAR_ZJ)
            .get_weekly_summary(pb::GetWeeklySummaryRequest {
                week_start: shanghai_date(registered_at).to_string(),
                ..Default::default()
            })
            .await,
        "GetWeeklySummary",
    );
    assert_eq!(summary.week_start, week_start.to_string());
    assert!(!summary.complete, "the week is running");
    let figures = summary.figures.expect("figures");
    assert_eq!(figures.received, 4);
    assert_eq!((figures.transferred_on_time, figures.transferred_late), (1, 0));
    assert_eq!((figures.closed, figures.open_at_start), (0, 0));
    let mut by_channel: Vec<(pb::Channel, i64)> =
        summary.received_by_channel.iter().map(|count| (count.channel(), count.count)).collect();
    by_channel.sort();
    assert_eq!(by_channel, [(pb::Channel::Hotline, 3), (pb::Channel::Hotline12345, 1)]);
    let mut by_body: Vec<(pb::Body, i64)> =
        summary.received_by_body.iter().map(|count| (count.body(), count.count)).collect();
    by_body.sort();
    assert_eq!(by_body, [(pb::Body::Unspecified, 3), (pb::Body::Sj, 1)], "unclassified leads have no body yet");
    let mut by_category: Vec<(&str, i64)> =
        summary.received_by_category.iter().map(|count| (count.category.as_str(), count.count)).collect();
    by_category.sort();
    assert_eq!(by_category, [("SJ-3-1", 1), ("unclassified", 3)]);
    assert_eq!(summary.top_companies.len(), 1);
    assert_eq!((summary.top_companies[0].uscc.as_str(), summary.top_companies[0].received), (uscc.as_str(), 4));
    // The history anchor covers the log up to the last event the summary includes.
    let anchor = summary.anchor.expect("an anchor");
    let snapshot = summary.snapshot.expect("a snapshot");
    assert_eq!(anchor.position, snapshot.position);
    assert_eq!(anchor.sha256.len(), 64);
    assert!(!anchor.settled, "the week is running");

    // Another district received nothing; the week is on record.
    let elsewhere = ok(
        server
            .read_models(AUDITOR)
            .get_weekly_summary(pb::GetWeeklySummaryRequest {
                week_start: week_start.to_string(),
                district: "台江区".to_owned(),
                ..Default::default()
            })
            .await,
        "GetWeeklySummary of another district",
    );
    assert_eq!(elsewhere.figures.expect("figures").received, 0);
    let weeks = ok(server.read_models(AUDITOR).list_weeks(pb::ListWeeksRequest::default()).await, "ListWeeks");
    assert_eq!(weeks.week_starts, [week_start.to_string()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn acc_2_an_untransferred_lead_is_overdue_past_its_transfer_deadline_and_climbs_the_ladder() {
    let server = TestServer::start().await;
    server.wait_read_models_live().await;
    let uscc = unique_uscc();
    let waiting = register_lead(&server, &uscc).await;
    let handled = handling_lead(&server, &uscc, "SJ-3-1", pb::Complexity::General).await;
    let transfer_due = open_deadline(&server.complaint(&waiting).await, Kind::Transfer).due.expect("due");
    let close_due = open_deadline(&server.complaint(&handled).await, Kind::GeneralClose).due.expect("due");
    // TRF-2 gives 7 working days, HDL-1 7 days from the transfer: the handling deadline
    // passes first.
    assert!(instant(close_due) < instant(transfer_due));

    // Now, nothing is overdue.
    let now = overdue(&server, AUDITOR, pb::ListOverdueRequest::default()).await;
    assert_eq!(now.total, 0, "{:#?}", now.obligations);

    // A minute after the transfer deadline, both are overdue, the transfer a reminder
    // (interpretation 9), late in working days as TRF-2 counts them.
    let after = instant(transfer_due) + TimeDelta::minutes(1);
    let listed =
        overdue(&server, AUDITOR, pb::ListOverdueRequest { at: Some(timestamp(after)), ..Default::default() }).await;
    assert_eq!(listed.total, 2, "{:#?}", listed.obligations);
    assert_eq!(listed.at, Some(timestamp(after)));
    assert_eq!(listed.obligations[0].complaint_id, handled, "the most overdue first");
    let row = listed.obligations.iter().find(|row| row.complaint_id == waiting).expect("the untransferred lead");
    assert_eq!((row.kind(), row.rule.as_str(), row.body()), (Kind::Transfer, "TRF-2", pb::Body::Zj));
    assert_eq!((row.company_uscc.as_str(), row.district.as_str()), (uscc.as_str(), "鼓楼区"));
    assert_eq!(row.stream, format!("complaint-{waiting}"));
    assert_eq!(row.due, Some(transfer_due));
    assert_eq!(row.lateness_unit(), pb::LatenessUnit::WorkingDays);
    assert_eq!((row.level(), row.level_reason()), (pb::EscalationLevel::Reminder, pb::EscalationReason::Lateness));
    assert!(row.recorded_levels.is_empty() && !row.miss_recorded, "the reactor records nothing ahead of time");
    let handling = listed.obligations.iter().find(|row| row.complaint_id == handled).expect("the handled lead");
    assert_eq!((handling.kind(), handling.body()), (Kind::GeneralClose, pb::Body::Sj));
    assert_eq!(handling.lateness_unit(), pb::LatenessUnit::CalendarDays);

    // Filters: the body, the level.
    let of_sj = overdue(
        &server,
        AUDITOR,
        pb::ListOverdueRequest { body: pb::Body::Sj.into(), at: Some(timestamp(after)), ..Default::default() },
    )
    .await;
    assert_eq!(of_sj.obligations.iter().map(|row| row.complaint_id.as_str()).collect::<Vec<_>>(), [handled.as_str()]);
    let discipline = |at: DateTime<Utc>| pb::ListOverdueRequest {
        level: pb::EscalationLevel::DisciplineOrgan.into(),
        at: Some(timestamp(at)),
        ..Default::default()
    };
    assert_eq!(overdue(&server, AUDITOR, discipline(after)).await.total, 0);
    // A month on, 10 working days late and more: referred to the discipline organ.
    let month_on = overdue(&server, AUDITOR, discipline(after + TimeDelta::days(30))).await;
    let row = month_on.obligations.iter().find(|row| row.complaint_id == waiting).expect("the untransferred lead");
    assert_eq!(row.level(), pb::EscalationLevel::DisciplineOrgan);
    assert!(row.late_days >= 10, "{row:?}");

    // Paging.
    let first = overdue(
        &server,
        AUDITOR,
        pb::ListOverdueRequest { page_size: 1, at: Some(timestamp(after)), ..Default::default() },
    )
    .await;
    assert_eq!((first.obligations.len(), first.total, first.next_page_token.as_str()), (1, 2, "1"));
    let second = overdue(
        &server,
        AUDITOR,
        pb::ListOverdueRequest {
            page_size: 1,
            page_token: first.next_page_token.clone(),
            at: Some(timestamp(after)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(second.obligations.len(), 1);
    assert!(second.next_page_token.is_empty());
    assert_ne!(first.obligations[0].stream, second.obligations[0].stream);

    // 市场监管 sees what it owes, not 住建's transfer; asking for 住建's is refused; a street
    // office owes nothing here.
    let own =
        overdue(&server, HANDLER_SJ, pb::ListOverdueRequest { at: Some(timestamp(after)), ..Default::default() }).await;
    assert_eq!(own.obligations.iter().map(|row| row.complaint_id.as_str()).collect::<Vec<_>>(), [handled.as_str()]);
    refused(
        server
            .read_models(HANDLER_SJ)
            .list_overdue(pb::ListOverdueRequest { body: pb::Body::Zj.into(), ..Default::default() })
            .await,
    )
    .code(Code::PermissionDenied);
    let street =
        overdue(&server, STREET_OFFICE_JB, pb::ListOverdueRequest { at: Some(timestamp(after)), ..Default::default() })
            .await;
    assert_eq!(street.total, 0);

    // DSP-1 judges overdue at its instant too.
    let picture = dashboard(&server, pb::GetDashboardRequest { at: Some(timestamp(after)), as_of: None }).await;
    assert_eq!(counts(&line(&picture.bodies, pb::Body::Zj, "")), (2, 1, 0, 1));
    assert_eq!(counts(&line(&picture.bodies, pb::Body::Sj, "")), (1, 1, 0, 1));
    let today = dashboard(&server, pb::GetDashboardRequest::default()).await;
    assert_eq!(line(&today.bodies, pb::Body::Zj, "").overdue, 0);
}

/// A lead about the company, transferred to 市场监管 and found substantiated.
async fn substantiated_lead(server: &TestServer, uscc: &str) -> String {
    let id = handling_lead(server, uscc, "SJ-3-1", pb::Complexity::General).await;
    record_finding(server, HANDLER_SJ, &id, pb::Finding::Substantiated).await;
    id
}

/// The watchlist's record of a company once it counts `substantiated` complainants in the
/// GRD-1 window.
async fn company_counted(server: &TestServer, uscc: &str, substantiated: u32) -> pb::WatchlistCompany {
    eventually(&format!("{substantiated} substantiated complainants counted"), async || {
        let answer = server
            .read_models(AUDITOR)
            .get_watchlist_company(pb::GetWatchlistCompanyRequest { uscc: uscc.to_owned(), at: None, as_of: None })
            .await
            .ok()?
            .into_inner();
        let entry = answer.entry.as_ref()?;
        (entry.substantiated_half_year.as_ref()?.distinct == substantiated).then_some(answer)
    })
    .await
}

fn flags(entry: &pb::WatchlistEntry) -> Vec<(pb::WatchlistFlag, &str)> {
    entry.flags.iter().map(|flag| (flag.flag(), flag.rule.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn reg_4_grd_1_the_eleventh_distinct_complainant_with_a_substantiated_finding_flags_the_company() {
    let server = TestServer::start().await;
    server.wait_read_models_live().await;
    let flagged = unique_uscc();
    let quiet = unique_uscc();
    register_lead(&server, &quiet).await;
    let mut leads = Vec::new();
    for _ in 0..10 {
        leads.push(substantiated_lead(&server, &flagged).await);
    }
    // Ten is not more than ten (interpretation 1): no flag yet.
    let ten = company_counted(&server, &flagged, 10).await;
    let entry = ten.entry.expect("an entry");
    assert_eq!(entry.complainants.expect("REG-4 window").distinct, 10);
    assert!(entry.flags.is_empty(), "{:#?}", entry.flags);

    leads.push(substantiated_lead(&server, &flagged).await);
    let eleven = company_counted(&server, &flagged, 11).await;
    let entry = eleven.entry.expect("an entry");
    // GRD-1: more than 10 substantiated in half a year; REG-4: more than 10 complainants.
    assert_eq!(
        flags(&entry),
        [(pb::WatchlistFlag::GradeReviewDue, "GRD-1"), (pb::WatchlistFlag::KeySupervision, "REG-4")]
    );
    assert!(entry.flags.iter().all(|flag| flag.reason.contains("11")), "{:#?}", entry.flags);
    assert_eq!(entry.risk, 3);
    let complainants = entry.complainants.expect("REG-4 window");
    assert_eq!((complainants.distinct, complainants.months), (11, 12));
    assert_eq!(entry.substantiated_half_year.expect("GRD-1 window").months, 6);
    assert_eq!((entry.open_leads, entry.overdue_leads, entry.leads_in_window), (11, 0, 11));
    assert_eq!(entry.districts, ["鼓楼区"]);
    // The evidence names the leads and the complainants counted.
    let evidence = eleven.evidence.expect("evidence");
    let grade_review = evidence.grade_review.expect("GRD-1 evidence");
    let mut counted = grade_review.complaint_ids.clone();
    counted.sort();
    leads.sort();
    assert_eq!(counted, leads);
    assert_eq!((grade_review.distinct, grade_review.complainant_keys.len()), (11, 11));
    assert!(
        evidence.grade_review_triggers.iter().any(|trigger| matches!(
            &trigger.trigger,
            Some(pb::grade_review_trigger::Trigger::Complaints(evidence)) if evidence.distinct == 11
        )),
        "{:#?}",
        evidence.grade_review_triggers
    );

    // The list, evaluated now: the watchlist proper holds the flagged company only.
    let now = Some(timestamp(Utc::now()));
    let list = watchlist(&server, pb::GetWatchlistRequest { at: now, ..Default::default() }).await;
    assert_eq!((codes(&list.entries), list.total), (vec![flagged.as_str()], 1));
    assert!(!list.snapshot.expect("a snapshot").cached, "an explicit instant is never cached");
    for (flag, expected) in [
        (pb::WatchlistFlag::KeySupervision, 1),
        (pb::WatchlistFlag::GradeReviewDue, 1),
        (pb::WatchlistFlag::ExitEligible, 0),
        (pb::WatchlistFlag::DowngradeDue, 0),
    ] {
        let filtered = watchlist(&server, pb::GetWatchlistRequest { flag: flag.into(), at: now, ..Default::default() });
        assert_eq!(filtered.await.total, expected, "{flag:?}");
    }
    let elsewhere =
        watchlist(&server, pb::GetWatchlistRequest { district: "台江区".to_owned(), at: now, ..Default::default() })
            .await;
    assert_eq!(elsewhere.total, 0);
    // Every company, highest risk first, a page at a time.
    let every = |page_token: String| pb::GetWatchlistRequest {
        scope: pb::WatchlistScope::Every.into(),
        page_size: 1,
        page_token,
        at: now,
        ..Default::default()
    };
    let first = watchlist(&server, every(String::new())).await;
    assert_eq!((codes(&first.entries), first.total, first.next_page_token.as_str()), (vec![flagged.as_str()], 2, "1"));
    let second = watchlist(&server, every(first.next_page_token)).await;
    assert_eq!((codes(&second.entries), second.next_page_token.as_str()), (vec![quiet.as_str()], ""));
    assert!(second.entries[0].flags.is_empty());

    // At the default instant the list is computed once, then served from the cache.
    let computed = watchlist(&server, pb::GetWatchlistRequest::default()).await;
    assert_eq!(codes(&computed.entries), [flagged.as_str()]);
    assert!(!computed.snapshot.expect("a snapshot").cached);
    let again = ok(
        server.read_models(HANDLER_ZJ).get_watchlist(pb::GetWatchlistRequest::default()).await,
        "GetWatchlist as 住建's handler",
    );
    assert_eq!(codes(&again.entries), [flagged.as_str()]);
    assert!(again.snapshot.expect("a snapshot").cached);
    assert_eq!(again.at, computed.at, "the cached answer keeps its evaluation instant");
}

#[tokio::test(flavor = "multi_thread")]
async fn pub_1_the_bulletin_praises_prompt_closures_and_criticises_a_refusal_to_rectify() {
    let server = TestServer::start().await;
    server.wait_read_models_live().await;
    let praised = unique_uscc();
    let criticised = unique_uscc();
    // Three leads from one complainant, each closed by 市场监管 within its 7 days.
    let complainant = unique_complainant();
    for _ in 0..3 {
        let id =
            register(&server, pb::RegisterRequest { complainant: Some(complainant.clone()), ..registration(&praised) })
                .await
                .complaint_id;
        classify(&server, &id, "SJ-3-1", pb::Urgency::Normal, pb::Complexity::General).await;
        transfer(&server, &id, pb::Body::Sj).await;
        accept(&server, HANDLER_SJ, &id).await;
        record_finding(&server, HANDLER_SJ, &id, pb::Finding::Unsubstantiated).await;
        give_feedback(&server, HANDLER_SJ, &id, pb::FeedbackRecipient::Complainant).await;
        sign_closure(&server, HANDLER_SJ, &id).await;
    }
    // GRD-2: the other company refused to rectify, once its lead made it known.
    register_lead(&server, &criticised).await;
    eventually("the company recorded", async || {
        server.queries(AUDITOR).get_enterprise(pb::GetEnterpriseRequest { uscc: criticised.clone() }).await.ok()
    })
    .await;
    ok(
        server
            .enterprises(HANDLER_ZJ)
            .record_rectification_refused(pb::RecordRectificationRefusedRequest {
                request_id: request_id(),
                uscc: criticised.clone(),
                community: "幸福小区".to_owned(),
                detail: "拒不整改电梯维保问题".to_owned(),
            })
            .await,
        "RecordRectificationRefused",
    );

    let month = shanghai_today().format("%Y-%m").to_string();
    let bulletin = ok(
        server
            .read_models(HANDLER_SJ)
            .get_bulletin(pb::GetBulletinRequest { month: month.clone(), ..Default::default() })
            .await,
        "GetBulletin as 市场监管",
    );
    assert_eq!(bulletin.month, month);
    assert_eq!(bulletin.total, 2);
    let criteria = bulletin.criteria.expect("the criteria");
    assert_eq!(
        (criteria.praise_min_closed, criteria.praise_min_on_time_bp, criteria.praise_max_complainants),
        (3, 9500, 2)
    );
    assert_eq!((criteria.criticise_overdue_days, criteria.criticise_dissatisfied), (30, 2));
    // Criticism first.
    let [first, second] = bulletin.entries.as_slice() else { panic!("two companies: {:#?}", bulletin.entries) };
    assert_eq!(first.uscc, criticised);
    assert_eq!(first.verdict(), pb::BulletinVerdict::Criticise);
    assert_eq!(first.reasons, [i32::from(pb::BulletinReason::RefusedRectification)]);
    assert_eq!((first.refusals, first.complainants, first.closed), (1, 1, 0));
    assert_eq!(second.uscc, praised);
    assert_eq!(second.verdict(), pb::BulletinVerdict::Praise);
    assert_eq!(
        second.reasons,
        [i32::from(pb::BulletinReason::HandledPromptly), i32::from(pb::BulletinReason::FewComplaints)]
    );
    assert_eq!((second.closed, second.closed_on_time, second.complainants), (3, 3, 1), "one complainant, counted once");

    let praise_only = ok(
        server
            .read_models(AUDITOR)
            .get_bulletin(pb::GetBulletinRequest {
                month: month.clone(),
                verdict: pb::BulletinVerdict::Praise.into(),
                ..Default::default()
            })
            .await,
        "GetBulletin of the praised",
    );
    assert_eq!(praise_only.entries.iter().map(|entry| entry.uscc.as_str()).collect::<Vec<_>>(), [praised.as_str()]);
    let quiet_month = ok(
        server
            .read_models(AUDITOR)
            .get_bulletin(pb::GetBulletinRequest { month: "2020-01".to_owned(), ..Default::default() })
            .await,
        "GetBulletin of a month without activity",
    );
    assert_eq!(quiet_month.total, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn as_of_answers_with_the_read_models_as_they_stood_at_that_instant() {
    let server = TestServer::start().await;
    server.wait_read_models_live().await;
    let before_the_log = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let uscc = unique_uscc();
    let first = register(&server, registration(&uscc)).await;
    let registered_at = server.complaint(&first.complaint_id).await.summary.expect("a summary").registered_at;
    let week_start = monday_of(shanghai_date(registered_at.expect("at"))).to_string();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = register(&server, registration(&uscc)).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after = Utc::now();

    let live = dashboard(&server, pb::GetDashboardRequest::default()).await;
    assert_eq!(line(&live.bodies, pb::Body::Zj, "").received, 2);
    let as_of = |instant: DateTime<Utc>| pb::GetDashboardRequest { at: None, as_of: Some(timestamp(instant)) };
    let then = dashboard(&server, as_of(between)).await;
    assert_eq!(line(&then.bodies, pb::Body::Zj, "").received, 1, "before the second registration");
    assert_eq!(then.at, Some(timestamp(between)), "judged at the instant asked for");
    let snapshot = then.snapshot.expect("a snapshot");
    assert!(snapshot.replayed);
    assert!(snapshot.position >= first.position && snapshot.position < second.position, "{snapshot:?}");
    assert!(instant(snapshot.recorded_at.expect("recorded_at")) <= between);
    let now = dashboard(&server, as_of(after)).await;
    assert_eq!(line(&now.bodies, pb::Body::Zj, "").received, 2, "after it");
    assert!(now.snapshot.expect("a snapshot").position >= second.position);
    let empty = dashboard(&server, as_of(before_the_log)).await;
    assert_eq!(line(&empty.bodies, pb::Body::Zj, "").received, 0, "before the log began");
    assert_eq!(empty.snapshot.expect("a snapshot").position, 0);

    // The weekly summary and the weeks on record, the same way.
    let summary_as_of = async |instant: DateTime<Utc>| {
        ok(
            server
                .read_models(AUDITOR)
                .get_weekly_summary(pb::GetWeeklySummaryRequest {
                    week_start: week_start.clone(),
                    as_of: Some(timestamp(instant)),
                    ..Default::default()
                })
                .await,
            "GetWeeklySummary as of",
        )
    };
    assert_eq!(summary_as_of(between).await.figures.expect("figures").received, 1);
    assert_eq!(summary_as_of(after).await.figures.expect("figures").received, 2);
    let weeks = ok(
        server
            .read_models(AUDITOR)
            .list_weeks(pb::ListWeeksRequest { district: String::new(), as_of: Some(timestamp(before_the_log)) })
            .await,
        "ListWeeks as of",
    );
    assert!(weeks.week_starts.is_empty());

    // The overdue obligations as they stood, judged past both transfer deadlines.
    let late = instant(open_deadline(&server.complaint(&second.complaint_id).await, Kind::Transfer).due.expect("due"))
        + TimeDelta::minutes(1);
    let overdue_as_of = async |instant: DateTime<Utc>| {
        overdue(
            &server,
            AUDITOR,
            pb::ListOverdueRequest { at: Some(timestamp(late)), as_of: Some(timestamp(instant)), ..Default::default() },
        )
        .await
    };
    let then = overdue_as_of(between).await;
    assert_eq!(
        then.obligations.iter().map(|row| row.complaint_id.as_str()).collect::<Vec<_>>(),
        [first.complaint_id.as_str()]
    );
    assert_eq!(overdue_as_of(after).await.total, 2);

    // An instant the log has not reached is refused.
    let future = refused(server.read_models(AUDITOR).get_dashboard(as_of(Utc::now() + TimeDelta::hours(1))).await);
    future.code(Code::InvalidArgument).field("as_of");

    // Replays run one at a time: a handler reads the live dashboard but may not ask for one.
    refused(server.read_models(HANDLER_SJ).get_dashboard(as_of(between)).await).code(Code::PermissionDenied);
    dashboard_as(&server, HANDLER_SJ).await;
}

async fn dashboard_as(server: &TestServer, principal: tousu_e2e::server::Principal) -> pb::Dashboard {
    ok(server.read_models(principal).get_dashboard(pb::GetDashboardRequest::default()).await, "GetDashboard")
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_inputs_are_refused_naming_the_field() {
    let server = TestServer::start().await;
    server.wait_read_models_live().await;
    let mut read_models = server.read_models(AUDITOR);
    let week =
        |week_start: &str| pb::GetWeeklySummaryRequest { week_start: week_start.to_owned(), ..Default::default() };
    for bad in ["2026-02-30", "2026-W48", "", "30/11/2026"] {
        refused(read_models.get_weekly_summary(week(bad)).await).code(Code::InvalidArgument).field("week_start");
    }
    refused(read_models.get_watchlist(pb::GetWatchlistRequest { flag: 99, ..Default::default() }).await)
        .code(Code::InvalidArgument)
        .field("flag");
    refused(read_models.get_watchlist(pb::GetWatchlistRequest { scope: 7, ..Default::default() }).await)
        .code(Code::InvalidArgument)
        .field("scope");
    refused(read_models.get_watchlist(pb::GetWatchlistRequest { page_size: 501, ..Default::default() }).await)
        .code(Code::InvalidArgument)
        .field("page_size");
    refused(
        read_models
            .get_watchlist(pb::GetWatchlistRequest { page_token: "next".to_owned(), ..Default::default() })
            .await,
    )
    .code(Code::InvalidArgument)
    .field("page_token");
    refused(
        read_models
            .get_watchlist_company(pb::GetWatchlistCompanyRequest {
                uscc: "91350100M000100Y4".to_owned(),
                at: None,
                as_of: None,
            })
            .await,
    )
    .code(Code::InvalidArgument)
    .field("uscc");
    refused(
        read_models
            .get_watchlist_company(pb::GetWatchlistCompanyRequest { uscc: unique_uscc(), at: None, as_of: None })
            .await,
    )
    .code(Code::NotFound);
    refused(read_models.list_overdue(pb::ListOverdueRequest { level: 9, ..Default::default() }).await)
        .code(Code::InvalidArgument)
        .field("level");
    refused(read_models.list_overdue(pb::ListOverdueRequest { body: 99, ..Default::default() }).await)
        .code(Code::InvalidArgument)
        .field("body");
    for bad in ["2026-13", "2026-1", "2026-11-01", ""] {
        refused(read_models.get_bulletin(pb::GetBulletinRequest { month: bad.to_owned(), ..Default::default() }).await)
            .code(Code::InvalidArgument)
            .field("month");
    }
    refused(
        read_models
            .get_bulletin(pb::GetBulletinRequest { month: "2026-11".to_owned(), verdict: 9, ..Default::default() })
            .await,
    )
    .code(Code::InvalidArgument)
    .field("verdict");
    let negative = prost_types::Timestamp { seconds: 0, nanos: -1 };
    refused(read_models.get_dashboard(pb::GetDashboardRequest { at: Some(negative), as_of: None }).await)
        .code(Code::InvalidArgument)
        .field("at");
}
