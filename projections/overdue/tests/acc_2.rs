//! ACC-2 and interpretation 9 on the `overdue-escalation` read model: obligations appear once
//! past due and leave when met; lateness in working or calendar days across the National Day
//! holiday; the ladder at 1, 3 and 10 working days late and the repeat-miss rule; the
//! escalations the reactor has to record; filters and paging; company deadlines; years without
//! calendar data; and the same answers from PostgreSQL.

use tousu_domain::actor::{Actor, Role};
use tousu_domain::calendar::{Calendar, Period};
use tousu_domain::complaint::{Channel, ComplaintCommand, ComplaintEvent, ComplaintFact, Complexity, Registration};
use tousu_domain::deadline::{Deadline, DeadlineKind, DueBasis, EscalationLevel, EscalationReason, escalation_level};
use tousu_domain::enterprise::{EnterpriseCommand, LeadRecord};
use tousu_domain::ids::{BodyCode, ComplaintId};
use tousu_domain::obligations::ReferralDecision;
use tousu_domain::rule::RuleId;
use tousu_projection_testkit::*;
use tousu_read_overdue::{
    DueEscalation, Lateness, LatenessUnit, OverdueFilter, OverdueModel, OverdueRow, ProvisionalCandidate,
    ReferralFilter, ReferralRow, ReferralStatus, Subject, closure_counts, due_escalations, late_cutoff,
    open_obligations, overdue, provisional_candidates, referrals,
};

fn overdue_at(store: &mut Store, world: &World, instant: &str, filter: &OverdueFilter) -> (Vec<OverdueRow>, u64) {
    let prefix = store.prefix.clone();
    store.read(|tx| overdue(tx, &prefix, at(instant), filter, &world.calendar, &world.policy, 0, 100))
}

fn escalations_at(store: &mut Store, world: &World, instant: &str) -> Vec<DueEscalation> {
    let prefix = store.prefix.clone();
    store.read(|tx| due_escalations(tx, &prefix, at(instant), &world.calendar, &world.policy))
}

fn open_of(store: &mut Store, world: &World, stream: &str, instant: &str) -> Vec<OverdueRow> {
    let prefix = store.prefix.clone();
    store.read(|tx| open_obligations(tx, &prefix, stream, at(instant), &world.calendar, &world.policy))
}

fn working(days: u32) -> Option<Lateness> {
    Some(Lateness { days, unit: LatenessUnit::WorkingDays })
}

fn calendar_days(days: u32) -> Option<Lateness> {
    Some(Lateness { days, unit: LatenessUnit::CalendarDays })
}

/// The deadline reactor: decides every escalation listed at `instant` on the lead, asserting
/// the domain accepts each, and appends the events.
fn react(store: &mut Store, world: &World, log: &mut Log, leads: &mut [&mut Lead], instant: &str) -> usize {
    let due = escalations_at(store, world, instant);
    for escalation in &due {
        let Subject::Lead(id) = &escalation.subject else { panic!("only leads here: {escalation:?}") };
        let lead = leads.iter_mut().find(|lead| &lead.id == id).expect("the lead is in the scenario");
        lead.given(
            world,
            log,
            &reactor(),
            instant,
            ComplaintCommand::Escalate { seq: escalation.seq, level: escalation.level },
        );
    }
    store.catch_up(log);
    due.len()
}

/// A lead registered at `registered` in `place`, by the domain.
fn registered(world: &World, log: &mut Log, id: &str, registered: &str, place: &Where) -> Lead {
    let registration = registration(Channel::Hotline, named("王芳", "13812345678"), place, registered);
    Lead::register(world, log, id, registered, registration)
}

/// The lead of [`registered`], classified as `category` and transferred to `body` at
/// `transferred`, and accepted there.
fn accepted(
    world: &World,
    log: &mut Log,
    id: &str,
    (registered_at, transferred): (&str, &str),
    category: &str,
    complexity: Complexity,
    body: BodyCode,
) -> Lead {
    let mut lead = registered(world, log, id, registered_at, &GULOU);
    lead.classify(world, log, registered_at, category, complexity);
    lead.transfer(world, log, transferred, body);
    lead.given(world, log, &handler(body), transferred, ComplaintCommand::Accept);
    if complexity == Complexity::Major {
        // Interpretation 25: the body declares at once that the matter cannot be resolved within
        // the month, so that it owes the plan within 7 days, as every major matter did before.
        let declare = ComplaintCommand::DeclarePlanNeeded { reason: "需动用专项维修资金".to_owned() };
        lead.given(world, log, &handler(body), transferred, declare);
    }
    lead
}

#[test]
fn acc_2_an_obligation_is_overdue_only_after_its_due_instant_and_leaves_the_table_when_met() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&OverdueModel));
    let mut lead = registered(&world, &mut log, "C-1", "2026-09-30T10:00:00+08:00", &GULOU);
    store.catch_up(&log);

    let open = open_of(&mut store, &world, "complaint-C-1", "2026-10-01T00:00:00+08:00");
    assert_eq!(open.len(), 1);
    let transfer = &open[0];
    assert_eq!(transfer.subject, Subject::Lead("C-1".parse().expect("valid id")));
    assert_eq!((transfer.kind, transfer.rule, transfer.body), (DeadlineKind::Transfer, RuleId::Trf2, BodyCode::ZJ));
    assert_eq!((transfer.company.as_str(), transfer.community.as_str()), (COMPANY, "福苑小区"));
    assert_eq!(transfer.district, "鼓楼区");
    assert_eq!(transfer.start, at("2026-09-30T10:00:00+08:00"));
    // TRF-2: 7 working days after 30 September, across the National Day holiday: 8, 9, 10
    // (a working Saturday), 12, 13, 14, 15 October; due at 24:00 on the 15th.
    assert_eq!(transfer.due, at("2026-10-16T00:00:00+08:00"));
    assert_eq!(transfer.level, None);

    let (rows, total) = overdue_at(&mut store, &world, "2026-10-16T00:00:00+08:00", &OverdueFilter::default());
    assert_eq!((rows.len(), total), (0, 0), "due at 24:00 is still met at 24:00");
    let (rows, total) = overdue_at(&mut store, &world, "2026-10-16T00:00:01+08:00", &OverdueFilter::default());
    assert_eq!(total, 1);
    assert_eq!(rows[0].lateness, working(1));
    assert_eq!(rows[0].level, Some((EscalationLevel::Reminder, EscalationReason::Lateness)));

    lead.classify(&world, &mut log, "2026-10-19T09:00:00+08:00", "SJ-3-1", Complexity::General);
    lead.transfer(&world, &mut log, "2026-10-19T10:00:00+08:00", BodyCode::SJ);
    store.catch_up(&log);
    let (rows, total) = overdue_at(&mut store, &world, "2026-10-19T11:00:00+08:00", &OverdueFilter::default());
    assert_eq!((rows.len(), total), (0, 0), "the transfer met the deadline, late");
    let open = open_of(&mut store, &world, "complaint-C-1", "2026-10-19T11:00:00+08:00");
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].kind, open[0].rule, open[0].body), (DeadlineKind::GeneralClose, RuleId::Hdl1, BodyCode::SJ));
    assert_eq!(open[0].due, at("2026-10-27T00:00:00+08:00"));
    let prefix = store.prefix.clone();
    let counts = store.read(|tx| closure_counts(tx, &prefix));
    assert_eq!(counts.len(), 1);
    assert_eq!((counts[0].body, counts[0].kind), (BodyCode::ZJ, DeadlineKind::Transfer));
    assert_eq!((counts[0].met_on_time, counts[0].met_late, counts[0].superseded), (0, 1, 0));
}

#[test]
fn acc_2_lateness_counts_working_days_across_the_national_day_holiday_and_calendar_days_otherwise() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&OverdueModel));
    // Registered on Sunday 20 September 2026, a working Sunday: the 7 working days are 21-24,
    // 28-30 September (25-27 is the Mid-Autumn holiday), due at 24:00 on the 30th.
    registered(&world, &mut log, "C-1", "2026-09-20T10:00:00+08:00", &GULOU);
    // Transferred on 23 September: HDL-1's 7 days end on Wednesday the 30th, also at 24:00.
    accepted(
        &world,
        &mut log,
        "C-2",
        ("2026-09-21T10:00:00+08:00", "2026-09-23T10:00:00+08:00"),
        "SJ-3-1",
        Complexity::General,
        BodyCode::SJ,
    );
    store.catch_up(&log);
    let (rows, _) = overdue_at(&mut store, &world, "2026-10-08T10:00:00+08:00", &OverdueFilter::default());
    let by_kind = |kind: DeadlineKind| rows.iter().find(|row| row.kind == kind).expect("listed").clone();
    let transfer = by_kind(DeadlineKind::Transfer);
    let general = by_kind(DeadlineKind::GeneralClose);
    assert_eq!(transfer.due, at("2026-10-01T00:00:00+08:00"));
    assert_eq!(general.due, at("2026-10-01T00:00:00+08:00"));
    // 1-7 October are the holiday: Thursday the 8th is the first working day late.
    assert_eq!(transfer.lateness, working(1));
    assert_eq!(general.lateness, calendar_days(8));
    // The ladder counts working days for every kind (interpretation 9).
    assert_eq!(general.level, Some((EscalationLevel::Reminder, EscalationReason::Lateness)));

    // Saturday 10 October is a working day: the third working day late.
    let (rows, _) = overdue_at(&mut store, &world, "2026-10-10T09:00:00+08:00", &OverdueFilter::default());
    for row in &rows {
        assert_eq!(row.level, Some((EscalationLevel::DistrictLeadership, EscalationReason::Lateness)), "{row:?}");
    }
    let transfer = rows.iter().find(|row| row.kind == DeadlineKind::Transfer).expect("listed");
    assert_eq!(transfer.lateness, working(3));
    let general = rows.iter().find(|row| row.kind == DeadlineKind::GeneralClose).expect("listed");
    assert_eq!(general.lateness, calendar_days(10));
    // Sunday the 11th adds no working day.
    let (rows, _) = overdue_at(&mut store, &world, "2026-10-11T18:00:00+08:00", &OverdueFilter::default());
    let transfer = rows.iter().find(|row| row.kind == DeadlineKind::Transfer).expect("listed");
    assert_eq!(transfer.lateness, working(3));
}

#[test]
fn acc_2_interp_9_the_ladder_climbs_at_one_three_and_ten_working_days_late() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&OverdueModel));
    let mut lead = registered(&world, &mut log, "C-1", "2026-09-30T10:00:00+08:00", &GULOU);
    store.catch_up(&log);
    // Due at 24:00 on Thursday 15 October. Late days: Fri 16 (1), Mon 19 (2), Tue 20 (3), ...,
    // Thu 29 (10).
    let expectations = [
        ("2026-10-16T00:00:01+08:00", 1, EscalationLevel::Reminder),
        ("2026-10-19T23:59:59+08:00", 2, EscalationLevel::Reminder),
        ("2026-10-20T00:00:00+08:00", 3, EscalationLevel::DistrictLeadership),
        ("2026-10-28T23:59:59+08:00", 9, EscalationLevel::DistrictLeadership),
        ("2026-10-29T00:00:00+08:00", 10, EscalationLevel::DisciplineOrgan),
    ];
    for (instant, late, level) in expectations {
        let (rows, _) = overdue_at(&mut store, &world, instant, &OverdueFilter::default());
        assert_eq!(rows.len(), 1, "{instant}");
        assert_eq!(rows[0].lateness, working(late), "{instant}");
        assert_eq!(rows[0].level, Some((level, EscalationReason::Lateness)), "{instant}");
        for filter_level in EscalationLevel::ALL {
            let filter = OverdueFilter { level: Some(filter_level), ..OverdueFilter::default() };
            let (rows, total) = overdue_at(&mut store, &world, instant, &filter);
            let expected = usize::from(filter_level == level);
            assert_eq!((rows.len(), total), (expected, expected as u64), "{instant} filtered by {filter_level:?}");
        }
    }

    // The reactor records each rung as it is reached, and only once.
    assert_eq!(react(&mut store, &world, &mut log, &mut [&mut lead], "2026-10-16T00:00:01+08:00"), 1);
    assert_eq!(react(&mut store, &world, &mut log, &mut [&mut lead], "2026-10-19T12:00:00+08:00"), 0);
    let (rows, _) = overdue_at(&mut store, &world, "2026-10-19T12:00:00+08:00", &OverdueFilter::default());
    assert_eq!(rows[0].recorded_levels, vec![EscalationLevel::Reminder]);
    assert!(rows[0].missed_recorded);
    let due = escalations_at(&mut store, &world, "2026-10-20T00:00:00+08:00");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].seq, due[0].kind, due[0].body), (0, DeadlineKind::Transfer, BodyCode::ZJ));
    assert_eq!(due[0].level, EscalationLevel::DistrictLeadership);
    assert_eq!(react(&mut store, &world, &mut log, &mut [&mut lead], "2026-10-20T00:00:00+08:00"), 1);
    assert_eq!(react(&mut store, &world, &mut log, &mut [&mut lead], "2026-10-28T23:59:59+08:00"), 0);
    assert_eq!(react(&mut store, &world, &mut log, &mut [&mut lead], "2026-10-29T00:00:00+08:00"), 1);
    let (rows, _) = overdue_at(&mut store, &world, "2026-11-30T12:00:00+08:00", &OverdueFilter::default());
    assert_eq!(rows[0].recorded_levels, EscalationLevel::ALL.to_vec());
    assert!(escalations_at(&mut store, &world, "2026-11-30T12:00:00+08:00").is_empty());
    assert_eq!(rows[0].recorded_levels, lead.lead().obligations.levels(0).collect::<Vec<_>>());
}

#[test]
fn acc_2_interp_9_a_second_miss_by_the_same_body_on_the_same_lead_is_referred_at_once() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&OverdueModel));
    let mut lead = accepted(
        &world,
        &mut log,
        "C-1",
        ("2026-09-30T10:00:00+08:00", "2026-10-08T09:00:00+08:00"),
        "SJ-3-1",
        Complexity::Major,
        BodyCode::SJ,
    );
    store.catch_up(&log);
    // HDL-2: the plan (seq 2) is due at 24:00 on 15 October, the resolution (seq 1) a month
    // after the transfer: 8 November is a Sunday, so 24:00 on Monday the 9th.
    let open = open_of(&mut store, &world, "complaint-C-1", "2026-10-16T08:00:00+08:00");
    let kinds: Vec<_> = open.iter().map(|row| (row.seq, row.kind, row.due)).collect();
    assert_eq!(
        kinds,
        vec![
            (1, DeadlineKind::MajorResolve, at("2026-11-10T00:00:00+08:00")),
            (2, DeadlineKind::MajorPlan, at("2026-10-16T00:00:00+08:00")),
        ]
    );
    assert_eq!(react(&mut store, &world, &mut log, &mut [&mut lead], "2026-10-16T08:00:00+08:00"), 1);

    let (rows, total) = overdue_at(&mut store, &world, "2026-11-10T08:00:00+08:00", &OverdueFilter::default());
    assert_eq!(total, 2);
    let resolve = rows.iter().find(|row| row.seq == 1).expect("listed");
    assert_eq!(resolve.earlier_misses, 1);
    assert_eq!(resolve.lateness, calendar_days(1));
    assert_eq!(resolve.level, Some((EscalationLevel::DisciplineOrgan, EscalationReason::RepeatMiss)));
    let plan = rows.iter().find(|row| row.seq == 2).expect("listed");
    assert_eq!(plan.earlier_misses, 0, "its own miss is not an earlier one");
    assert_eq!(plan.level, Some((EscalationLevel::DisciplineOrgan, EscalationReason::Lateness)));
    let discipline = OverdueFilter { level: Some(EscalationLevel::DisciplineOrgan), ..OverdueFilter::default() };
    assert_eq!(overdue_at(&mut store, &world, "2026-11-10T08:00:00+08:00", &discipline).1, 2);

    let mut due: Vec<_> = escalations_at(&mut store, &world, "2026-11-10T08:00:00+08:00")
        .into_iter()
        .map(|escalation| (escalation.seq, escalation.level))
        .collect();
    due.sort();
    assert_eq!(
        due,
        vec![
            (1, EscalationLevel::Reminder),
            (1, EscalationLevel::DisciplineOrgan),
            (2, EscalationLevel::DistrictLeadership),
            (2, EscalationLevel::DisciplineOrgan),
        ],
        "the report to the district leadership waits for 3 working days late"
    );
    assert_eq!(react(&mut store, &world, &mut log, &mut [&mut lead], "2026-11-10T08:00:00+08:00"), 4);
    assert!(escalations_at(&mut store, &world, "2026-11-10T08:00:00+08:00").is_empty());
    // The plan comes, late: the plan deadline leaves the table; its miss still counts.
    lead.given(
        &world,
        &mut log,
        &handler(BodyCode::SJ),
        "2026-11-11T09:00:00+08:00",
        ComplaintCommand::SubmitPlan {
            plan: "分三步整改".to_owned(),
            resolve_by: chrono::NaiveDate::from_ymd_opt(2026, 12, 15).expect("valid date"),
        },
    );
    store.catch_up(&log);
    let open = open_of(&mut store, &world, "complaint-C-1", "2026-12-16T08:00:00+08:00");
    let resolve = open.iter().find(|row| row.kind == DeadlineKind::MajorResolve).expect("open");
    assert_eq!(resolve.due, at("2026-12-16T00:00:00+08:00"));
    assert_eq!(resolve.start, at("2026-11-11T09:00:00+08:00"));
    assert_eq!(resolve.earlier_misses, 2);
    assert_eq!(resolve.level, Some((EscalationLevel::DisciplineOrgan, EscalationReason::RepeatMiss)));
}

#[test]
fn acc_2_filters_by_body_level_and_district_and_pages_with_a_total() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&OverdueModel));
    registered(&world, &mut log, "C-1", "2026-09-30T10:00:00+08:00", &GULOU);
    registered(&world, &mut log, "C-2", "2026-09-30T11:00:00+08:00", &TAIJIANG);
    // Transferred on Friday 9 October: HDL-1 due at 24:00 on Friday the 16th.
    accepted(
        &world,
        &mut log,
        "C-3",
        ("2026-09-30T12:00:00+08:00", "2026-10-09T10:00:00+08:00"),
        "SJ-3-1",
        Complexity::General,
        BodyCode::SJ,
    );
    registered(&world, &mut log, "C-4", "2026-10-12T10:00:00+08:00", &GULOU);
    store.catch_up(&log);

    let instant = "2026-10-20T10:00:00+08:00";
    let (rows, total) = overdue_at(&mut store, &world, instant, &OverdueFilter::default());
    assert_eq!(total, 3);
    let listed: Vec<_> = rows.iter().map(|row| (row.stream.as_str(), row.kind, row.level.map(|l| l.0))).collect();
    assert_eq!(
        listed,
        vec![
            ("complaint-C-1", DeadlineKind::Transfer, Some(EscalationLevel::DistrictLeadership)),
            ("complaint-C-2", DeadlineKind::Transfer, Some(EscalationLevel::DistrictLeadership)),
            ("complaint-C-3", DeadlineKind::GeneralClose, Some(EscalationLevel::Reminder)),
        ],
        "most overdue first"
    );
    let mut streams = |filter: OverdueFilter| -> Vec<String> {
        let (rows, total) = overdue_at(&mut store, &world, instant, &filter);
        assert_eq!(total, rows.len() as u64);
        rows.into_iter().map(|row| row.stream).collect()
    };
    assert_eq!(streams(OverdueFilter { body: Some(BodyCode::SJ), ..OverdueFilter::default() }), ["complaint-C-3"]);
    assert_eq!(
        streams(OverdueFilter { body: Some(BodyCode::ZJ), ..OverdueFilter::default() }),
        ["complaint-C-1", "complaint-C-2"]
    );
    assert_eq!(
        streams(OverdueFilter { district: Some("台江区".to_owned()), ..OverdueFilter::default() }),
        ["complaint-C-2"]
    );
    assert_eq!(
        streams(OverdueFilter {
            body: Some(BodyCode::ZJ),
            district: Some("鼓楼区".to_owned()),
            level: Some(EscalationLevel::DistrictLeadership)
        }),
        ["complaint-C-1"]
    );
    assert_eq!(
        streams(OverdueFilter { level: Some(EscalationLevel::Reminder), ..OverdueFilter::default() }),
        ["complaint-C-3"]
    );
    assert!(
        streams(OverdueFilter { level: Some(EscalationLevel::DisciplineOrgan), ..OverdueFilter::default() }).is_empty()
    );

    let prefix = store.prefix.clone();
    let (page, total) = store
        .read(|tx| overdue(tx, &prefix, at(instant), &OverdueFilter::default(), &world.calendar, &world.policy, 1, 1));
    assert_eq!(total, 3);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].stream, "complaint-C-2");
    let (page, total) = store
        .read(|tx| overdue(tx, &prefix, at(instant), &OverdueFilter::default(), &world.calendar, &world.policy, 3, 10));
    assert_eq!((page.len(), total), (0, 3));
}

#[test]
fn acc_2_company_deadlines_are_listed_with_their_community_and_the_district_of_its_leads() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&OverdueModel));
    registered(&world, &mut log, "C-1", "2026-09-30T10:00:00+08:00", &GULOU);
    let mut company = Company::new(COMPANY);
    let record = |lead: &str, community: &str| LeadRecord {
        lead: lead.parse().expect("valid id"),
        complainant_key: None,
        registered_at: at("2026-09-30T10:00:00+08:00"),
        community: community.to_owned(),
        linked_to: None,
    };
    company.given(
        &world,
        &mut log,
        &reactor(),
        "2026-09-30T10:00:01+08:00",
        EnterpriseCommand::CountLeads {
            uscc: company.uscc.clone(),
            company_name: GULOU.company_name.to_owned(),
            complaints: vec![record("C-1", "福苑小区"), record("C-9", "无名小区")],
            findings: Vec::new(),
        },
    );
    // GRD-1, interpretation 12: a low credit rating requires a survey of every community.
    company.given(
        &world,
        &mut log,
        &registrar(),
        "2026-10-09T10:00:00+08:00",
        EnterpriseCommand::RecordCreditRating { rating: "D".to_owned() },
    );
    store.catch_up(&log);

    let instant = "2026-10-21T10:00:00+08:00";
    let company_rows = |store: &mut Store| -> Vec<OverdueRow> {
        let (rows, _) = overdue_at(store, &world, instant, &OverdueFilter::default());
        rows.into_iter().filter(|row| matches!(row.subject, Subject::Company(_))).collect()
    };
    let rows = company_rows(&mut store);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!((row.kind, row.rule, row.body), (DeadlineKind::Survey, RuleId::Grd1, BodyCode::ZJ));
        assert_eq!(row.stream, format!("enterprise-{COMPANY}"));
        assert_eq!(row.company, COMPANY);
        // 10 days from 9 October: 24:00 on Monday the 19th.
        assert_eq!(row.due, at("2026-10-20T00:00:00+08:00"));
        assert_eq!(row.lateness, calendar_days(2));
    }
    let places: Vec<_> = rows.iter().map(|row| (row.community.as_str(), row.district.as_str())).collect();
    assert!(places.contains(&("福苑小区", "鼓楼区")), "{places:?}");
    assert!(places.contains(&("无名小区", "")), "no lead of that community was registered here: {places:?}");
    let (rows, _) = overdue_at(
        &mut store,
        &world,
        instant,
        &OverdueFilter { district: Some("鼓楼区".into()), ..Default::default() },
    );
    assert_eq!(rows.iter().filter(|row| matches!(row.subject, Subject::Company(_))).count(), 1);

    // The reactor escalates company deadlines too.
    let due = escalations_at(&mut store, &world, instant);
    assert!(due.iter().any(|escalation| matches!(escalation.subject, Subject::Company(_))), "{due:?}");

    company.given(
        &world,
        &mut log,
        &handler(BodyCode::ZJ),
        instant,
        EnterpriseCommand::RecordSurvey {
            community: "福苑小区".to_owned(),
            respondents: 100,
            satisfied: 80,
            publication: "小区公告栏".to_owned(),
        },
    );
    store.catch_up(&log);
    let rows = company_rows(&mut store);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].community, "无名小区");
    let prefix = store.prefix.clone();
    let counts = store.read(|tx| closure_counts(tx, &prefix));
    let survey = counts.iter().find(|count| count.kind == DeadlineKind::Survey).expect("counted");
    assert_eq!((survey.body, survey.met_on_time, survey.met_late), (BodyCode::ZJ, 0, 1));
}

/// A registration event made by hand, for deadlines the shipped calendar cannot compute.
fn registered_with(id: &str, now: &str, deadlines: Vec<(DeadlineKind, &str)>) -> (ComplaintId, ComplaintEvent) {
    let lead: ComplaintId = id.parse().expect("valid id");
    let registration: Registration = registration(Channel::Hotline, named("李雷", "13900000000"), &GULOU, now);
    let opens = deadlines
        .into_iter()
        .enumerate()
        .map(|(seq, (kind, due))| Deadline {
            seq: seq as u32,
            kind,
            rule: kind.rule(),
            body: BodyCode::ZJ,
            community: None,
            basis: DueBasis::Period { start: at(now), period: Period::Days(7) },
            due: at(due),
            provisional: false,
            calendar: None,
        })
        .collect();
    let event = ComplaintEvent {
        at: at(now),
        fact: ComplaintFact::Registered { id: lead.clone(), registration, complainant_key: None },
        opens,
        closes: Vec::new(),
    };
    (lead, event)
}

#[test]
fn acc_2_a_year_without_calendar_data_leaves_that_rows_lateness_unknown_and_the_query_answers() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&OverdueModel));
    // 2101 is past the provisional calendar (interpretation 21); 2023 had other statutory days
    // and is not shipped.
    let (lead, event) = registered_with(
        "C-1",
        "2100-12-28T10:00:00+08:00",
        vec![
            (DeadlineKind::Transfer, "2101-01-10T00:00:00+08:00"),
            (DeadlineKind::GeneralClose, "2101-01-10T00:00:00+08:00"),
        ],
    );
    log.push_lead(&lead, &[event]);
    let (lead, event) = registered_with(
        "C-2",
        "2023-11-20T10:00:00+08:00",
        vec![(DeadlineKind::Transfer, "2023-12-01T00:00:00+08:00")],
    );
    log.push_lead(&lead, &[event]);
    store.catch_up(&log);

    let (rows, total) = overdue_at(&mut store, &world, "2101-02-01T10:00:00+08:00", &OverdueFilter::default());
    assert_eq!(total, 3);
    let row = |stream: &str, kind: DeadlineKind| {
        rows.iter().find(|row| row.stream == stream && row.kind == kind).expect("listed").clone()
    };
    assert_eq!(row("complaint-C-1", DeadlineKind::Transfer).lateness, None);
    assert_eq!(row("complaint-C-1", DeadlineKind::Transfer).level, None);
    assert_eq!(row("complaint-C-1", DeadlineKind::GeneralClose).lateness, calendar_days(23));
    assert_eq!(row("complaint-C-2", DeadlineKind::Transfer).lateness, None);
    let reminder = OverdueFilter { level: Some(EscalationLevel::Reminder), ..OverdueFilter::default() };
    assert_eq!(overdue_at(&mut store, &world, "2101-02-01T10:00:00+08:00", &reminder).1, 0);
    assert!(escalations_at(&mut store, &world, "2101-02-01T10:00:00+08:00").is_empty());

    // Evaluated in 2026, the 2023 deadline's lateness cannot be counted, but it is certainly
    // ten working days late: the 2026 calendar alone shows that much.
    let (rows, _) = overdue_at(&mut store, &world, "2026-10-20T10:00:00+08:00", &OverdueFilter::default());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].lateness, None);
    assert_eq!(rows[0].level, Some((EscalationLevel::DisciplineOrgan, EscalationReason::Lateness)));
    let discipline = OverdueFilter { level: Some(EscalationLevel::DisciplineOrgan), ..OverdueFilter::default() };
    assert_eq!(overdue_at(&mut store, &world, "2026-10-20T10:00:00+08:00", &discipline).1, 1);
}

#[test]
fn acc_2_interp_9_the_level_cutoffs_agree_with_the_calendars_lateness() {
    let calendar = Calendar::builtin().expect("shipped calendar loads");
    let instants = [
        "2026-10-08T10:00:00+08:00",
        "2026-10-10T00:00:00+08:00",
        "2026-10-11T15:30:00+08:00",
        "2026-10-20T00:00:00+08:00",
        "2026-10-29T00:00:00+08:00",
        "2026-10-16T00:00:01+08:00",
    ];
    for instant in instants {
        let evaluated = at(instant);
        for n in 0..=12 {
            let cutoff = late_cutoff(&calendar, evaluated, n).expect("the calendar covers the walk back");
            let mut due = at("2026-08-20T00:00:00+08:00");
            while due < evaluated + chrono::TimeDelta::days(1) {
                let late = calendar.working_days_late(due, evaluated).expect("2026 is shipped");
                let expected = due < evaluated && late >= n;
                assert_eq!(due < cutoff, expected, "due {due}, at {instant}, n {n}: {late} working days late");
                due += chrono::TimeDelta::minutes(90);
            }
        }
    }
    // And the level the query computes is the domain's.
    let policy = tousu_domain::policy::Policy::default();
    let due = at("2026-09-30T00:00:00+08:00");
    assert_eq!(
        escalation_level(&calendar, &policy, due, at("2026-10-10T09:00:00+08:00"), 0).expect("computable"),
        Some((EscalationLevel::DistrictLeadership, EscalationReason::Lateness))
    );
}

#[test]
fn acc_2_postgres_gives_the_same_answers_as_sqlite() {
    let world = World::new();
    let Some(mut postgres) = Store::postgres(&OverdueModel, "acc_2") else { return };
    let mut sqlite = Store::sqlite(&OverdueModel);
    let mut log = Log::default();
    let mut first = registered(&world, &mut log, "C-1", "2026-09-30T10:00:00+08:00", &GULOU);
    let mut second = registered(&world, &mut log, "C-2", "2026-09-30T11:00:00+08:00", &TAIJIANG);
    let mut third = accepted(
        &world,
        &mut log,
        "C-3",
        ("2026-09-30T12:00:00+08:00", "2026-10-08T09:00:00+08:00"),
        "SJ-3-1",
        Complexity::Major,
        BodyCode::SJ,
    );
    sqlite.catch_up(&log);
    postgres.catch_up(&log);
    for instant in ["2026-10-16T08:00:00+08:00", "2026-10-20T08:00:00+08:00", "2026-11-10T08:00:00+08:00"] {
        let from_sqlite = react(&mut sqlite, &world, &mut log, &mut [&mut first, &mut second, &mut third], instant);
        postgres.catch_up(&log);
        assert!(from_sqlite > 0, "{instant}");
        assert!(escalations_at(&mut postgres, &world, instant).is_empty(), "{instant}");
    }
    first.classify(&world, &mut log, "2026-11-10T09:00:00+08:00", "ZJ-1-3", Complexity::General);
    first.transfer(&world, &mut log, "2026-11-10T10:00:00+08:00", BodyCode::ZJ);
    sqlite.catch_up(&log);
    postgres.catch_up(&log);

    for instant in ["2026-11-10T08:00:00+08:00", "2026-11-20T08:00:00+08:00", "2027-03-01T08:00:00+08:00"] {
        for filter in [
            OverdueFilter::default(),
            OverdueFilter { body: Some(BodyCode::SJ), ..OverdueFilter::default() },
            OverdueFilter { district: Some("台江区".to_owned()), ..OverdueFilter::default() },
            OverdueFilter { level: Some(EscalationLevel::DisciplineOrgan), ..OverdueFilter::default() },
            OverdueFilter { level: Some(EscalationLevel::Reminder), ..OverdueFilter::default() },
        ] {
            assert_eq!(
                overdue_at(&mut postgres, &world, instant, &filter),
                overdue_at(&mut sqlite, &world, instant, &filter),
                "{instant} {filter:?}"
            );
        }
        assert_eq!(escalations_at(&mut postgres, &world, instant), escalations_at(&mut sqlite, &world, instant));
        assert_eq!(
            open_of(&mut postgres, &world, "complaint-C-3", instant),
            open_of(&mut sqlite, &world, "complaint-C-3", instant)
        );
    }
    let (pg_prefix, sqlite_prefix) = (postgres.prefix.clone(), sqlite.prefix.clone());
    assert_eq!(
        postgres.read(|tx| closure_counts(tx, &pg_prefix)),
        sqlite.read(|tx| closure_counts(tx, &sqlite_prefix))
    );
}

/// Interpretation 21: a lead registered on Wednesday 3 February 2027, before that year's
/// notice: its TRF-2 deadline is due, provisionally, at 24:00 on Thursday 18 February.
fn registered_in_february_2027(world: &World, log: &mut Log) -> Lead {
    let lead = registered(world, log, "C-27", "2027-02-03T10:00:00+08:00", &GULOU);
    assert!(lead.lead().obligations.get(0).is_some_and(|deadline| deadline.provisional));
    lead
}

#[test]
fn acc_2_interp_21_a_provisional_due_is_listed_as_such_and_found_for_recomputation_once_the_notice_arrives() {
    let (mut world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&OverdueModel));
    let mut lead = registered_in_february_2027(&world, &mut log);
    store.catch_up(&log);
    let rows = open_of(&mut store, &world, "complaint-C-27", "2027-02-10T09:00:00+08:00");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].provisional);
    assert_eq!(rows[0].calendar, "2027.provisional");
    assert_eq!(rows[0].due, at("2027-02-19T00:00:00+08:00"));
    let candidates = |store: &mut Store, years: &[i32]| {
        let prefix = store.prefix.clone();
        store.read(|tx| provisional_candidates(tx, &prefix, years))
    };
    // Nothing to recompute while 2027 has no notice.
    assert!(candidates(&mut store, &[2024, 2025, 2026]).is_empty());

    // Missed against the provisional due: the reactor records the reminder on 19 February.
    assert_eq!(react(&mut store, &world, &mut log, &mut [&mut lead], "2027-02-19T08:00:00+08:00"), 1);
    let row = &open_of(&mut store, &world, "complaint-C-27", "2027-02-19T08:00:00+08:00")[0];
    assert_eq!((row.recorded_levels.clone(), row.missed_recorded), (vec![EscalationLevel::Reminder], true));

    // The notice arrives: the deadline is a candidate, is recomputed to 24:00 on Saturday 20
    // February, and the reminder and miss recorded against the old due are withdrawn.
    world.load_made_up_2027();
    let found = candidates(&mut store, &[2024, 2025, 2026, 2027]);
    assert_eq!(
        found,
        [ProvisionalCandidate { stream: "complaint-C-27".into(), seq: 0, calendar: "2027.provisional".into() }]
    );
    assert!(candidates(&mut store, &[2028]).is_empty(), "only the years it looked at count");
    lead.given(
        &world,
        &mut log,
        &reactor(),
        "2027-02-19T15:00:00+08:00",
        ComplaintCommand::RecomputeDeadline { seq: 0 },
    );
    store.catch_up(&log);
    let row = &open_of(&mut store, &world, "complaint-C-27", "2027-02-19T15:00:00+08:00")[0];
    assert_eq!(row.due, at("2027-02-21T00:00:00+08:00"));
    assert!(!row.provisional && row.calendar.is_empty());
    assert!(row.recorded_levels.is_empty() && !row.missed_recorded);
    assert!(candidates(&mut store, &[2024, 2025, 2026, 2027]).is_empty());
    // Not overdue now; the ladder starts again from the new due.
    assert!(escalations_at(&mut store, &world, "2027-02-20T23:00:00+08:00").is_empty());
    let due = escalations_at(&mut store, &world, "2027-02-21T00:00:01+08:00");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].level, due[0].due), (EscalationLevel::Reminder, at("2027-02-21T00:00:00+08:00")));
}

fn referrals_of(store: &mut Store, filter: &ReferralFilter) -> Vec<ReferralRow> {
    let prefix = store.prefix.clone();
    store.read(|tx| referrals(tx, &prefix, filter))
}

#[test]
fn acc_2_interp_9_a_recommendation_stays_pending_until_an_official_decides_and_outlives_its_deadline() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&OverdueModel));
    let mut lead = registered(&world, &mut log, "C-1", "2026-09-30T10:00:00+08:00", &GULOU);
    store.catch_up(&log);
    // Ten working days late on Thursday 29 October: the reactor records all three rungs.
    assert_eq!(react(&mut store, &world, &mut log, &mut [&mut lead], "2026-10-29T00:00:00+08:00"), 3);
    let rows = referrals_of(&mut store, &ReferralFilter::default());
    let [pending] = rows.as_slice() else { panic!("one recommendation: {rows:?}") };
    assert_eq!((pending.stream.as_str(), pending.seq, pending.kind), ("complaint-C-1", 0, DeadlineKind::Transfer));
    assert_eq!(
        (pending.body, pending.status, pending.company.as_str()),
        (BodyCode::ZJ, ReferralStatus::Pending, COMPANY)
    );
    assert_eq!((pending.reason, pending.working_days_late), (EscalationReason::Lateness, 10));
    assert_eq!(pending.recommended_at, at("2026-10-29T00:00:00+08:00"));
    assert!(pending.decided_at.is_none() && pending.decided_by.is_empty());

    // The late transfer closes the deadline; the recommendation stays, to be decided.
    lead.classify(&world, &mut log, "2026-10-29T09:00:00+08:00", "SJ-3-1", Complexity::General);
    lead.transfer(&world, &mut log, "2026-10-29T10:00:00+08:00", BodyCode::SJ);
    let official = Actor { person: "李明".to_owned(), body: BodyCode::ZJ, role: Role::Official };
    let decision = ComplaintCommand::DecideReferral {
        seq: 0,
        decision: ReferralDecision::Dismissed,
        reason: "系统故障导致延误".to_owned(),
    };
    lead.given(&world, &mut log, &official, "2026-10-30T09:00:00+08:00", decision);
    store.catch_up(&log);
    assert!(open_of(&mut store, &world, "complaint-C-1", "2026-10-30T09:00:00+08:00").iter().all(|row| row.seq != 0));
    let rows = referrals_of(&mut store, &ReferralFilter::default());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, ReferralStatus::Dismissed);
    assert_eq!((rows[0].decided_by.as_str(), rows[0].decision_reason.as_str()), ("李明", "系统故障导致延误"));
    assert_eq!(rows[0].decided_at, Some(at("2026-10-30T09:00:00+08:00")));
    // Filters by status and body.
    let pending = ReferralFilter { status: Some(ReferralStatus::Pending), ..ReferralFilter::default() };
    assert!(referrals_of(&mut store, &pending).is_empty());
    let dismissed_sj = ReferralFilter { status: Some(ReferralStatus::Dismissed), body: Some(BodyCode::SJ) };
    assert!(referrals_of(&mut store, &dismissed_sj).is_empty());
    let dismissed_zj = ReferralFilter { status: Some(ReferralStatus::Dismissed), body: Some(BodyCode::ZJ) };
    assert_eq!(referrals_of(&mut store, &dismissed_zj).len(), 1);
    // The bulk builder leaves the same rows.
    assert_bulk_matches(&OverdueModel, &log.events, 3, &mut store.connection, &store.prefix);
}
