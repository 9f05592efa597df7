//! PUB-1 on the `bulletin` read model: a month's record per company worked out by hand on
//! scenario events, and the verdicts of the written criteria — praised, criticised with its
//! reasons, neither — at their edges (30 days overdue against 29; 3 closures of which 2 on
//! time); the month boundary of interpretation 10; overdue days and a criticism for dragging
//! on that rest on a provisional due instant, shown as such and followed through its
//! recomputation (interpretation 21); and the same bulletin from PostgreSQL.

use chrono::NaiveDate;
use tousu_domain::calendar::{CalendarVersion, Period};
use tousu_domain::complaint::{
    Channel, ComplaintCommand, ComplaintEvent, ComplaintFact, Complexity, FeedbackRecipient, Finding, Satisfaction,
};
use tousu_domain::deadline::{Deadline, DeadlineKind, DueBasis};
use tousu_domain::enterprise::{EnterpriseEvent, EnterpriseFact};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_domain::obligations::EscalationFact;
use tousu_domain::reporting::{BulletinReason, BulletinVerdict, CompanyMonth};
use tousu_projection_testkit::*;
use tousu_read_bulletin::{BulletinEntry, BulletinModel, month};

const NEITHER: Where = Where {
    company: "91350100M000300Y4J",
    company_name: "安泰物业有限公司",
    community: "安泰新村",
    district: "晋安区",
    street: "茶园街道",
};

const DRAGGED: Where = Where {
    company: "91350100M000400Y4A",
    company_name: "久拖物业有限公司",
    community: "东湖花园",
    district: "晋安区",
    street: "鼓山镇",
};

const ALMOST: Where = Where {
    company: "91350100M000500Y42",
    company_name: "差一天物业有限公司",
    community: "西湖小区",
    district: "鼓楼区",
    street: "西湖街道",
};

fn feedback(recipient: FeedbackRecipient) -> ComplaintCommand {
    ComplaintCommand::GiveFeedback { recipient, content: "已整改".to_owned() }
}

/// A general 市场监管 lead registered, transferred and accepted at `registered`, and closed
/// (finding, feedback, signature) at `closed`.
#[allow(clippy::too_many_arguments)]
fn closed_lead(
    world: &World,
    log: &mut Log,
    id: &str,
    place: &Where,
    complainant: (&str, &str),
    channel: Channel,
    registered: &str,
    closed: &str,
) -> Lead {
    let sj = handler(BodyCode::SJ);
    let registration = registration(channel, named(complainant.0, complainant.1), place, registered);
    let mut lead = Lead::register(world, log, id, registered, registration);
    lead.classify(world, log, registered, "SJ-3-1", Complexity::General);
    lead.transfer(world, log, registered, BodyCode::SJ);
    lead.given(world, log, &sj, registered, ComplaintCommand::Accept);
    let finding =
        ComplaintCommand::RecordFinding {
            finding: Finding::Substantiated, summary: "属实".into(), attribution: None
        };
    lead.given(world, log, &sj, registered, finding);
    lead.given(world, log, &sj, registered, feedback(FeedbackRecipient::Complainant));
    if channel == Channel::Hotline12345 {
        lead.given(world, log, &sj, registered, feedback(FeedbackRecipient::Hotline12345));
    }
    lead.given(world, log, &sj, closed, ComplaintCommand::SignClosure { opinion: "同意办结".into() });
    lead
}

/// A lead made by hand, found substantiated, whose handling deadline (HDL-1) is due at `due`
/// and never met: the company's own lateness (interpretation 23). `provisional` marks a due
/// computed from the provisional calendar (interpretation 21).
fn stalled_with(log: &mut Log, id: &str, place: &Where, registered: &str, due: &str, provisional: bool) {
    let lead: ComplaintId = id.parse().expect("valid id");
    let registered_event = ComplaintEvent {
        at: at(registered),
        fact: ComplaintFact::Registered {
            id: lead.clone(),
            registration: registration(Channel::Hotline, named("赵敏", "13700000000"), place, registered),
            complainant_key: None,
        },
        opens: Vec::new(),
        closes: Vec::new(),
    };
    let found = ComplaintEvent {
        at: at(registered),
        fact: ComplaintFact::FindingRecorded {
            finding: Finding::Substantiated,
            summary: "属实".to_owned(),
            attributable: None,
            attribution_reason: None,
        },
        opens: vec![Deadline {
            seq: 1,
            kind: DeadlineKind::GeneralClose,
            rule: DeadlineKind::GeneralClose.rule(),
            body: BodyCode::SJ,
            community: None,
            basis: DueBasis::Period { start: at(registered), period: Period::Days(7) },
            due: at(due),
            provisional,
            calendar: provisional.then(|| CalendarVersion::from_text("2027.provisional")),
        }],
        closes: Vec::new(),
    };
    log.push_lead(&lead, &[registered_event, found]);
}

fn stalled(log: &mut Log, id: &str, place: &Where, registered: &str, due: &str) {
    stalled_with(log, id, place, registered, due, false);
}

/// October 2026, company by company:
///
/// - 榕城 (`GULOU`): 3 leads from 2 complainants, all closed within HDL-1's 7 days: praised.
/// - 闽江 (`TAIJIANG`): 2 12345 leads closed on time and followed up dissatisfied, and a
///   refusal to rectify: criticised for both.
/// - 安泰 (`NEITHER`): 3 leads from one complainant, one closed after its deadline: 2 of 3
///   on time is under 95 %: neither.
/// - 久拖 (`DRAGGED`): a lead whose transfer was due at 24:00 on 1 October and never made:
///   30 days late through 31 October: criticised for dragging on.
/// - 差一天 (`ALMOST`): the same, due a day later: 29 days: neither.
fn october(world: &World, log: &mut Log) {
    let wang = ("王芳", "13812345678");
    let li = ("李雷", "13900000000");
    closed_lead(
        world,
        log,
        "A-1",
        &GULOU,
        wang,
        Channel::Hotline,
        "2026-10-08T09:00:00+08:00",
        "2026-10-09T10:00:00+08:00",
    );
    closed_lead(
        world,
        log,
        "A-2",
        &GULOU,
        wang,
        Channel::Hotline,
        "2026-10-08T10:00:00+08:00",
        "2026-10-12T10:00:00+08:00",
    );
    closed_lead(
        world,
        log,
        "A-3",
        &GULOU,
        li,
        Channel::Mailbox,
        "2026-10-09T09:00:00+08:00",
        "2026-10-14T10:00:00+08:00",
    );

    let hotline = Channel::Hotline12345;
    let mut b1 = closed_lead(
        world,
        log,
        "B-1",
        &TAIJIANG,
        wang,
        hotline,
        "2026-10-08T09:00:00+08:00",
        "2026-10-09T10:00:00+08:00",
    );
    let mut b2 = closed_lead(
        world,
        log,
        "B-2",
        &TAIJIANG,
        li,
        hotline,
        "2026-10-08T09:30:00+08:00",
        "2026-10-09T11:00:00+08:00",
    );
    let dissatisfied = || ComplaintCommand::RecordSatisfaction {
        satisfaction: Satisfaction::Dissatisfied,
        comment: "未修好".into(),
    };
    b1.given(world, log, &hotline_12345(), "2026-10-20T09:00:00+08:00", dissatisfied());
    b2.given(world, log, &hotline_12345(), "2026-10-21T09:00:00+08:00", dissatisfied());
    let uscc: Uscc = TAIJIANG.company.parse().expect("valid code");
    let refusal = EnterpriseEvent {
        at: at("2026-10-15T09:00:00+08:00"),
        fact: EnterpriseFact::RectificationRefused {
            community: TAIJIANG.community.into(), detail: "拒不整改".into()
        },
        opens: Vec::new(),
        closes: Vec::new(),
    };
    log.push_company(&uscc, &[refusal]);

    let zhao = ("赵敏", "13700000000");
    closed_lead(
        world,
        log,
        "N-1",
        &NEITHER,
        zhao,
        Channel::Hotline,
        "2026-10-08T09:00:00+08:00",
        "2026-10-09T10:00:00+08:00",
    );
    closed_lead(
        world,
        log,
        "N-2",
        &NEITHER,
        zhao,
        Channel::Hotline,
        "2026-10-08T10:00:00+08:00",
        "2026-10-15T23:59:59+08:00",
    );
    // Due at 24:00 on 15 October; signed on the 19th.
    closed_lead(
        world,
        log,
        "N-3",
        &NEITHER,
        zhao,
        Channel::Hotline,
        "2026-10-08T11:00:00+08:00",
        "2026-10-19T10:00:00+08:00",
    );

    stalled(log, "D-1", &DRAGGED, "2026-09-20T10:00:00+08:00", "2026-10-02T00:00:00+08:00");
    stalled(log, "E-1", &ALMOST, "2026-09-20T10:00:00+08:00", "2026-10-03T00:00:00+08:00");
}

fn bulletin(store: &mut Store, world: &World, first_day: (i32, u32, u32)) -> Vec<BulletinEntry> {
    let prefix = store.prefix.clone();
    let date = NaiveDate::from_ymd_opt(first_day.0, first_day.1, first_day.2).expect("valid date");
    store.read(|tx| month(tx, &prefix, date, &world.policy, &world.calendar))
}

fn of<'a>(entries: &'a [BulletinEntry], place: &Where) -> &'a BulletinEntry {
    entries.iter().find(|entry| entry.company == place.company).unwrap_or_else(|| panic!("{} listed", place.company))
}

fn record(
    closed: u32,
    on_time: u32,
    complainants: u32,
    refusals: u32,
    dissatisfied: u32,
    overdue: u32,
) -> CompanyMonth {
    CompanyMonth {
        closed,
        closed_on_time: on_time,
        complainants,
        refusals,
        dissatisfied,
        longest_overdue_days: overdue,
        fee_refusals: 0,
    }
}

#[test]
fn pub_1_the_month_praises_criticises_with_reasons_and_passes_over_the_rest() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&BulletinModel));
    october(&world, &mut log);
    store.catch_up(&log);
    let entries = bulletin(&mut store, &world, (2026, 10, 1));

    let praised = of(&entries, &GULOU);
    assert_eq!(praised.record, record(3, 3, 2, 0, 0, 0));
    assert_eq!(
        praised.verdict,
        BulletinVerdict::Praise(vec![BulletinReason::HandledPromptly, BulletinReason::FewComplaints])
    );
    assert_eq!(praised.company_name, "榕城物业服务有限公司");
    assert_eq!(praised.month, NaiveDate::from_ymd_opt(2026, 10, 1).expect("valid date"));

    // The reopened leads run a fresh HDL-1 period from the 20th and 21st: 4 and 3 days late
    // at the month's end.
    let criticised = of(&entries, &TAIJIANG);
    assert_eq!(criticised.record, record(2, 2, 2, 1, 2, 4));
    assert_eq!(
        criticised.verdict,
        BulletinVerdict::Criticise(vec![BulletinReason::RefusedRectification, BulletinReason::IneffectiveMeasures])
    );

    let neither = of(&entries, &NEITHER);
    assert_eq!(neither.record, record(3, 2, 1, 0, 0, 0));
    assert_eq!(neither.verdict, BulletinVerdict::Neither);

    let dragged = of(&entries, &DRAGGED);
    assert_eq!(dragged.record, record(0, 0, 0, 0, 0, 30));
    assert_eq!(dragged.verdict, BulletinVerdict::Criticise(vec![BulletinReason::DraggedOn]));
    let almost = of(&entries, &ALMOST);
    assert_eq!(almost.record.longest_overdue_days, 29);
    assert_eq!(almost.verdict, BulletinVerdict::Neither);

    let order: Vec<_> = entries.iter().map(|entry| entry.company.as_str()).collect();
    assert_eq!(
        order,
        [TAIJIANG.company, DRAGGED.company, GULOU.company, NEITHER.company, ALMOST.company],
        "criticised first, then praised, then the rest, each by company code"
    );
    assert_eq!(bulletin(&mut store, &world, (2026, 10, 17)), entries, "any day names its month");
}

#[test]
fn pub_1_a_month_counts_registrations_in_it_and_overdue_leads_through_its_last_day() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&BulletinModel));
    october(&world, &mut log);
    store.catch_up(&log);
    // September: the stalled leads were registered, nothing was due yet.
    let september = bulletin(&mut store, &world, (2026, 9, 1));
    let companies: Vec<_> = september.iter().map(|entry| entry.company.as_str()).collect();
    assert_eq!(companies, [DRAGGED.company, ALMOST.company]);
    assert_eq!(of(&september, &DRAGGED).record, record(0, 0, 1, 0, 0, 0));
    assert_eq!(of(&september, &DRAGGED).verdict, BulletinVerdict::Neither);
    // November: still open, 2 October through 30 November.
    let november = bulletin(&mut store, &world, (2026, 11, 1));
    assert_eq!(of(&november, &DRAGGED).record.longest_overdue_days, 60);
    assert_eq!(of(&november, &ALMOST).verdict, BulletinVerdict::Criticise(vec![BulletinReason::DraggedOn]));
    assert!(november.iter().all(|entry| entry.company != GULOU.company), "nothing happened to 榕城 in November");
}

#[test]
fn pub_1_interp_10_a_closure_at_23_59_59_on_the_last_day_counts_in_that_month_and_one_at_midnight_in_the_next() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&BulletinModel));
    let wang = ("王芳", "13812345678");
    closed_lead(
        &world,
        &mut log,
        "A-1",
        &GULOU,
        wang,
        Channel::Hotline,
        "2026-10-26T09:00:00+08:00",
        "2026-10-31T23:59:59+08:00",
    );
    closed_lead(
        &world,
        &mut log,
        "A-2",
        &GULOU,
        wang,
        Channel::Hotline,
        "2026-10-26T10:00:00+08:00",
        "2026-11-01T00:00:00+08:00",
    );
    store.catch_up(&log);
    assert_eq!(of(&bulletin(&mut store, &world, (2026, 10, 1)), &GULOU).record, record(1, 1, 1, 0, 0, 0));
    assert_eq!(of(&bulletin(&mut store, &world, (2026, 11, 1)), &GULOU).record, record(1, 1, 0, 0, 0, 0));
}

/// Interpretation 21: a lead against 榕城 registered on Wednesday 3 February 2027, before that
/// year's notice, and never transferred: its TRF-2 deadline is due, provisionally, at 24:00 on
/// Thursday 18 February.
fn registered_in_february_2027(log: &mut Log) {
    // A substantiated lead of 榕城 whose handling deadline, computed before the 2027 notice, is
    // provisionally due at 24:00 on Thursday 18 February.
    stalled_with(log, "C-27", &GULOU, "2027-02-03T10:00:00+08:00", "2027-02-19T00:00:00+08:00", true);
}

/// The notice arrives and the deadline reactor recomputes the handling deadline of
/// [`registered_in_february_2027`] to 24:00 on Saturday 20 February, on official data.
fn recomputed(log: &mut Log) {
    let lead: ComplaintId = "C-27".parse().expect("valid id");
    let event = ComplaintEvent {
        at: at("2027-02-19T15:00:00+08:00"),
        fact: ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed {
            seq: 1,
            kind: DeadlineKind::GeneralClose,
            body: BodyCode::SJ,
            previous_due: at("2027-02-19T00:00:00+08:00"),
            due: at("2027-02-21T00:00:00+08:00"),
            provisional: false,
            calendar: CalendarVersion::from_text("2027.official.1c2d3e4f"),
            withdrawn_levels: Vec::new(),
            miss_withdrawn: false,
        }),
        opens: Vec::new(),
        closes: Vec::new(),
    };
    log.push_lead(&lead, &[event]);
}

#[test]
fn pub_1_interp_21_overdue_days_and_dragging_on_that_rest_on_a_provisional_due_say_so_and_follow_its_recomputation() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&BulletinModel));
    registered_in_february_2027(&mut log);
    store.catch_up(&log);

    // February: 19 through 28 February, counted from the provisional due.
    let february = bulletin(&mut store, &world, (2027, 2, 1));
    let entry = of(&february, &GULOU);
    assert_eq!(entry.record, record(0, 0, 1, 0, 0, 10));
    assert_eq!(entry.verdict, BulletinVerdict::Neither);
    assert!(entry.longest_overdue_provisional);
    assert!(!entry.dragged_on_provisional, "not criticised for dragging on");
    // March: 41 days, criticised for dragging on, on the provisional due alone.
    let march = bulletin(&mut store, &world, (2027, 3, 1));
    let entry = of(&march, &GULOU);
    assert_eq!(entry.record.longest_overdue_days, 41);
    assert_eq!(entry.verdict, BulletinVerdict::Criticise(vec![BulletinReason::DraggedOn]));
    assert!(entry.longest_overdue_provisional && entry.dragged_on_provisional);

    recomputed(&mut log);
    store.catch_up(&log);
    let february = bulletin(&mut store, &world, (2027, 2, 1));
    let entry = of(&february, &GULOU);
    assert_eq!(entry.record, record(0, 0, 1, 0, 0, 8));
    assert!(!entry.longest_overdue_provisional && !entry.dragged_on_provisional);
    let march = bulletin(&mut store, &world, (2027, 3, 1));
    let entry = of(&march, &GULOU);
    assert_eq!(entry.record.longest_overdue_days, 39);
    assert_eq!(entry.verdict, BulletinVerdict::Criticise(vec![BulletinReason::DraggedOn]));
    assert!(!entry.longest_overdue_provisional && !entry.dragged_on_provisional);
}

#[test]
fn pub_1_interp_21_a_criticism_for_dragging_on_that_an_official_due_supports_is_not_provisional() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&BulletinModel));
    registered_in_february_2027(&mut log);
    // Another substantiated lead of 榕城, its handling deadline due at 24:00 on 25 February on
    // official data: 34 days late at the end of March; and one of 久拖, due at 24:00 on 21
    // March: 10.
    stalled(&mut log, "S-27", &GULOU, "2027-02-10T10:00:00+08:00", "2027-02-26T00:00:00+08:00");
    stalled(&mut log, "D-27", &DRAGGED, "2027-02-10T10:00:00+08:00", "2027-03-22T00:00:00+08:00");
    store.catch_up(&log);
    let march = bulletin(&mut store, &world, (2027, 3, 1));
    let entry = of(&march, &GULOU);
    assert_eq!(entry.record.longest_overdue_days, 41);
    assert_eq!(entry.verdict, BulletinVerdict::Criticise(vec![BulletinReason::DraggedOn]));
    assert!(entry.longest_overdue_provisional, "the 41 days are counted from the provisional due");
    assert!(!entry.dragged_on_provisional, "the official due alone is 34 days late");
    // An official due alone says nothing provisional.
    let dragged = of(&march, &DRAGGED);
    assert_eq!(dragged.record.longest_overdue_days, 10);
    assert!(!dragged.longest_overdue_provisional && !dragged.dragged_on_provisional);
}

#[test]
fn pub_1_postgres_gives_the_same_bulletin_as_sqlite() {
    let world = World::new();
    let Some(mut postgres) = Store::postgres(&BulletinModel, "pub_1") else { return };
    let mut sqlite = Store::sqlite(&BulletinModel);
    let mut log = Log::default();
    october(&world, &mut log);
    sqlite.catch_up(&log);
    postgres.catch_up(&log);
    for first_day in [(2026, 9, 1), (2026, 10, 1), (2026, 11, 1)] {
        let expected = bulletin(&mut sqlite, &world, first_day);
        assert!(!expected.is_empty());
        assert_eq!(bulletin(&mut postgres, &world, first_day), expected, "{first_day:?}");
    }

    // Interpretation 21: a provisional due, then recomputed.
    registered_in_february_2027(&mut log);
    stalled(&mut log, "S-27", &GULOU, "2027-02-10T10:00:00+08:00", "2027-02-26T00:00:00+08:00");
    for recompute in [false, true] {
        if recompute {
            recomputed(&mut log);
        }
        sqlite.catch_up(&log);
        postgres.catch_up(&log);
        for first_day in [(2027, 2, 1), (2027, 3, 1)] {
            let expected = bulletin(&mut sqlite, &world, first_day);
            assert_eq!(of(&expected, &GULOU).longest_overdue_provisional, !recompute);
            assert_eq!(bulletin(&mut postgres, &world, first_day), expected, "{first_day:?}");
        }
    }
}

/// A lead made by hand with one deadline of `kind` due at `due`, never met, and a finding.
fn overdue_by_hand(log: &mut Log, id: &str, place: &Where, kind: DeadlineKind, finding: Option<Finding>, due: &str) {
    let lead: ComplaintId = id.parse().expect("valid id");
    let registered = "2026-09-01T10:00:00+08:00";
    let mut events = vec![ComplaintEvent {
        at: at(registered),
        fact: ComplaintFact::Registered {
            id: lead.clone(),
            registration: registration(Channel::Hotline, named("钱七", "13600000000"), place, registered),
            complainant_key: None,
        },
        opens: vec![Deadline {
            seq: 0,
            kind,
            rule: kind.rule(),
            body: if kind == DeadlineKind::Transfer { BodyCode::ZJ } else { BodyCode::SJ },
            community: None,
            basis: DueBasis::Period { start: at(registered), period: Period::Days(7) },
            due: at(due),
            provisional: false,
            calendar: None,
        }],
        closes: Vec::new(),
    }];
    if let Some(finding) = finding {
        events.push(ComplaintEvent {
            at: at(registered),
            fact: ComplaintFact::FindingRecorded {
                finding,
                summary: "核查".to_owned(),
                attributable: None,
                attribution_reason: None,
            },
            opens: Vec::new(),
            closes: Vec::new(),
        });
    }
    log.push_lead(&lead, &events);
}

#[test]
fn pub_1_interp_23_a_company_drags_on_only_by_its_own_substantiated_leads_handling_deadlines() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&BulletinModel));
    let due = "2026-09-10T00:00:00+08:00";
    // 住建's transfer, 50 days late at the end of October: government-internal, not the company's.
    overdue_by_hand(&mut log, "G-1", &DRAGGED, DeadlineKind::Transfer, Some(Finding::Substantiated), due);
    // A verification (PEN-1) of the enforcement body: not the company's either.
    overdue_by_hand(&mut log, "G-2", &DRAGGED, DeadlineKind::PenaltyVerify, Some(Finding::Substantiated), due);
    // A handling deadline of a lead found unsubstantiated, and of one not yet found.
    overdue_by_hand(&mut log, "G-3", &DRAGGED, DeadlineKind::GeneralClose, Some(Finding::Unsubstantiated), due);
    overdue_by_hand(&mut log, "G-4", &DRAGGED, DeadlineKind::GeneralClose, None, due);
    store.catch_up(&log);
    let october = bulletin(&mut store, &world, (2026, 10, 1));
    let dragged = october.iter().find(|entry| entry.company == DRAGGED.company);
    assert!(
        dragged.is_none_or(|entry| entry.record.longest_overdue_days == 0 && entry.verdict == BulletinVerdict::Neither),
        "criticised for what is not its own: {dragged:?}"
    );
    // The same company's substantiated lead past its handling deadline: its own, criticised.
    overdue_by_hand(&mut log, "G-5", &DRAGGED, DeadlineKind::MajorResolve, Some(Finding::Substantiated), due);
    store.catch_up(&log);
    let october = bulletin(&mut store, &world, (2026, 10, 1));
    let entry = of(&october, &DRAGGED);
    assert_eq!(entry.record.longest_overdue_days, 52);
    assert_eq!(entry.verdict, BulletinVerdict::Criticise(vec![BulletinReason::DraggedOn]));
    assert_bulk_matches(&BulletinModel, &log.events, 2, &mut store.connection, &store.prefix);
}

/// A lead made by hand, found substantiated with `attributable` (none: before
/// interpretation 22), and followed up dissatisfied on 15 October; `named` false for a lead in
/// an unmanaged community, which names no company.
fn dissatisfied_by_hand(log: &mut Log, id: &str, place: &Where, attributable: Option<bool>, named: bool) {
    let lead: ComplaintId = id.parse().expect("valid id");
    let registered = "2026-10-01T10:00:00+08:00";
    let mut registration = registration(Channel::Hotline12345, named_complainant(id), place, registered);
    if !named {
        registration.company = None;
    }
    let event = |at_text: &str, fact| ComplaintEvent { at: at(at_text), fact, opens: Vec::new(), closes: Vec::new() };
    log.push_lead(
        &lead,
        &[
            event(registered, ComplaintFact::Registered { id: lead.clone(), registration, complainant_key: None }),
            event(
                "2026-10-08T10:00:00+08:00",
                ComplaintFact::FindingRecorded {
                    finding: Finding::Substantiated,
                    summary: "核查属实".to_owned(),
                    attributable,
                    attribution_reason: None,
                },
            ),
            event(
                "2026-10-15T10:00:00+08:00",
                ComplaintFact::SatisfactionRecorded {
                    satisfaction: Satisfaction::Dissatisfied,
                    comment: "问题仍未解决".to_owned(),
                },
            ),
        ],
    );
}

fn named_complainant(id: &str) -> tousu_domain::complaint::Complainant {
    named(&format!("住户{id}"), "13700000000")
}

/// Interpretations 22 and 23: a dissatisfied follow-up counts against the company only on a
/// lead that is its responsibility (a finding recorded before interpretation 22 is); a lead
/// naming no company counts against none.
#[test]
fn pub_1_interp_23_dissatisfied_follow_ups_count_only_on_the_companys_own_leads() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&BulletinModel));
    dissatisfied_by_hand(&mut log, "H-1", &DRAGGED, Some(false), true);
    dissatisfied_by_hand(&mut log, "H-2", &DRAGGED, Some(true), true);
    dissatisfied_by_hand(&mut log, "H-3", &DRAGGED, None, true);
    dissatisfied_by_hand(&mut log, "H-4", &NEITHER, Some(true), false);
    store.catch_up(&log);
    let october = bulletin(&mut store, &world, (2026, 10, 1));
    assert_eq!(of(&october, &DRAGGED).record.dissatisfied, 2, "H-2 and H-3 count, H-1 is not the company's");
    assert!(
        october.iter().all(|entry| entry.company != NEITHER.company),
        "no company named, none counted: {october:?}"
    );
    assert_bulk_matches(&BulletinModel, &log.events, 2, &mut store.connection, &store.prefix);
}

/// Interpretation 23: the company's refusal of the lower grade's fee standard (GRD-3, handed
/// to 市场监管 under GRD-4) is its own missed obligation, and the month's bulletin criticises it
/// for it, whether or not a lead of the month names the company.
#[test]
fn pub_1_interp_23_a_refusal_of_the_lower_fee_standard_is_criticised() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&BulletinModel));
    let uscc: Uscc = ALMOST.company.parse().expect("valid code");
    let refusal = EnterpriseEvent {
        at: at("2026-10-20T09:00:00+08:00"),
        fact: EnterpriseFact::FeeStandardRefused {
            community: ALMOST.community.into(),
            detail: "拒不执行降级后的收费标准".into(),
            handed_to: BodyCode::SJ,
        },
        opens: Vec::new(),
        closes: Vec::new(),
    };
    log.push_company(&uscc, &[refusal]);
    store.catch_up(&log);
    let october = bulletin(&mut store, &world, (2026, 10, 1));
    let entry = october.iter().find(|entry| entry.company == ALMOST.company).expect("the company is in the bulletin");
    assert_eq!(entry.record.fee_refusals, 1);
    assert_eq!(entry.verdict, BulletinVerdict::Criticise(vec![BulletinReason::RefusedFeeStandard]));
    let november = bulletin(&mut store, &world, (2026, 11, 1));
    assert!(november.iter().all(|entry| entry.company != ALMOST.company), "counted in its month only");
    assert_bulk_matches(&BulletinModel, &log.events, 2, &mut store.connection, &store.prefix);
}
