//! The `leads` read model on scenario events decided by the domain: the status and the other
//! columns after each step of a lead's life equal the domain's `Lead`; the complaint list's
//! filters, order, paging and total (ACC-1: every lead readable); the DSP-1 dashboard; a
//! provisional due instant shown as such and followed through its recomputation
//! (interpretation 21); and the same answers from PostgreSQL.

use tousu_domain::actor::Actor;
use tousu_domain::complaint::{
    Channel, Complainant, ComplaintCommand, Complexity, FeedbackRecipient, Finding, LeadStatus, PenaltyDecision,
    PenaltyVerification, ReviewOutcome, Satisfaction, SplitRequest, Urgency,
};
use tousu_domain::ids::BodyCode;
use tousu_projection_testkit::*;
use tousu_read_leads::{BodyCounts, Dashboard, LeadFilter, LeadRow, LeadsModel, dashboard, get, list};

fn feedback(recipient: FeedbackRecipient) -> ComplaintCommand {
    ComplaintCommand::GiveFeedback { recipient, content: "已督促物业公司完成维修".to_owned() }
}

fn finding(finding: Finding) -> ComplaintCommand {
    ComplaintCommand::RecordFinding { finding, summary: "现场核实属实".to_owned(), attribution: None }
}

fn sign() -> ComplaintCommand {
    ComplaintCommand::SignClosure { opinion: "问题已解决，同意办结".to_owned() }
}

fn classify(category: &str, urgency: Urgency, complexity: Complexity) -> ComplaintCommand {
    ComplaintCommand::Classify { category: category.to_owned(), urgency, complexity, split: Vec::new() }
}

fn transfer(to: BodyCode) -> ComplaintCommand {
    ComplaintCommand::Transfer { to, method: tousu_domain::complaint::TransferMethod::System, note: String::new() }
}

fn follow_up(satisfaction: Satisfaction) -> ComplaintCommand {
    ComplaintCommand::RecordSatisfaction { satisfaction, comment: "回访".to_owned() }
}

/// Applies each step to the read model and compares the lead's row with the domain's state.
struct Scenario {
    world: World,
    log: Log,
    store: Store,
}

impl Scenario {
    fn new() -> Scenario {
        Scenario { world: World::new(), log: Log::default(), store: Store::sqlite(&LeadsModel) }
    }

    fn register(&mut self, id: &str, now: &str, channel: Channel, place: &Where) -> Lead {
        let registration = registration(channel, named("王芳", "13812345678"), place, now);
        let lead = Lead::register(&self.world, &mut self.log, id, now, registration);
        self.check(&lead, now);
        lead
    }

    fn step(&mut self, lead: &mut Lead, actor: &Actor, now: &str, command: ComplaintCommand) {
        lead.given(&self.world, &mut self.log, actor, now, command);
        self.check(lead, now);
    }

    fn row(&mut self, lead: &Lead, instant: &str) -> LeadRow {
        let prefix = self.store.prefix.clone();
        self.store.read(|tx| get(tx, &prefix, &lead.id, at(instant))).expect("the lead is listed")
    }

    fn check(&mut self, lead: &Lead, now: &str) {
        self.store.catch_up(&self.log);
        let domain = lead.lead().clone();
        let row = self.row(lead, now);
        let context = format!("lead {} after the step at {now}", lead.id);
        assert_eq!(row.status, domain.status, "{context}");
        assert_eq!(row.body, domain.accountable_body(), "{context}");
        assert_eq!(row.handling_body, domain.handling_body, "{context}");
        let classification = domain.classification.as_ref();
        assert_eq!(row.category.as_deref(), classification.map(|c| c.category.as_str()), "{context}");
        assert_eq!(row.urgency, classification.map(|c| c.urgency), "{context}");
        assert_eq!(row.complexity, classification.map(|c| c.complexity), "{context}");
        assert_eq!(row.finding, domain.finding, "{context}");
        assert_eq!(row.reopen_count, domain.reopen_count, "{context}");
        assert_eq!(row.return_count, domain.return_count, "{context}");
        assert_eq!(row.parent, domain.parent, "{context}");
        assert_eq!(row.registered_at, domain.registered_at, "{context}");
        assert_eq!(row.channel, domain.registration.channel, "{context}");
        let earliest_due = domain.obligations.open().map(|deadline| deadline.due).min();
        assert_eq!(row.earliest_due, earliest_due, "{context}");
        // Interpretation 21: provisional when every open deadline due then is.
        let provisional_at =
            |due| domain.obligations.open().filter(|deadline| deadline.due == due).all(|deadline| deadline.provisional);
        assert_eq!(row.earliest_due_provisional, earliest_due.is_some_and(provisional_at), "{context}");
        for days in [0, 1, 8, 40, 200] {
            let probe = at(now) + chrono::TimeDelta::days(days);
            let row = self.row(lead, &probe.to_rfc3339());
            let expected = domain.status.is_open() && domain.is_overdue_at(probe);
            assert_eq!(row.overdue, expected, "{context}, overdue at {probe}");
            let only_provisional =
                domain.obligations.open().filter(|deadline| deadline.due < probe).all(|deadline| deadline.provisional);
            assert_eq!(row.overdue_provisional, expected && only_provisional, "{context}, overdue at {probe}");
        }
        // DSP-1: the writer's open counters agree with the rows they count, at every step.
        let prefix = self.store.prefix.clone();
        let (board, rows) = self.store.read(|tx| {
            let board = dashboard(tx, &prefix, at(now))?;
            let rows = tx.query(
                &format!(
                    "SELECT body, district, CAST(COUNT(*) AS BIGINT) FROM {prefix}leads WHERE is_open = 1
                     GROUP BY body, district"
                ),
                &[],
            )?;
            Ok((board, rows))
        });
        let mut counted: Vec<(String, String, u64)> = rows
            .iter()
            .map(|row| {
                let text = |i: usize| row[i].as_str().expect("text").to_owned();
                (text(0), text(1), u64::try_from(row[2].as_i64().expect("a count")).expect("positive"))
            })
            .collect();
        let mut kept: Vec<(String, String, u64)> = board
            .districts
            .iter()
            .filter(|line| line.counts.open > 0)
            .map(|line| (line.body.to_string(), line.district.clone().expect("a district line"), line.counts.open))
            .collect();
        counted.sort();
        kept.sort();
        assert_eq!(kept, counted, "{context}: open leads per body and district");
    }
}

#[test]
fn hdl_4_interp_18_a_12345_lead_reopened_after_a_dissatisfied_follow_up_has_the_domains_status_at_each_step() {
    let mut s = Scenario::new();
    let sj = handler(BodyCode::SJ);
    let mut lead = s.register("C-1", "2026-09-30T10:00:00+08:00", Channel::Hotline12345, &GULOU);
    s.step(
        &mut lead,
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        classify("SJ-3-1", Urgency::Normal, Complexity::General),
    );
    s.step(&mut lead, &registrar(), "2026-10-08T09:00:00+08:00", transfer(BodyCode::SJ));
    s.step(&mut lead, &sj, "2026-10-08T11:00:00+08:00", ComplaintCommand::Accept);
    s.step(&mut lead, &sj, "2026-10-09T09:00:00+08:00", finding(Finding::Substantiated));
    s.step(&mut lead, &sj, "2026-10-09T09:30:00+08:00", feedback(FeedbackRecipient::Complainant));
    s.step(&mut lead, &sj, "2026-10-09T09:40:00+08:00", feedback(FeedbackRecipient::Hotline12345));
    s.step(&mut lead, &sj, "2026-10-09T10:00:00+08:00", sign());
    s.step(&mut lead, &hotline_12345(), "2026-10-12T09:00:00+08:00", follow_up(Satisfaction::Dissatisfied));
    assert_eq!(s.row(&lead, "2026-10-12T09:00:00+08:00").reopen_count, 1);
    s.step(&mut lead, &sj, "2026-10-13T09:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    s.step(&mut lead, &sj, "2026-10-13T09:10:00+08:00", feedback(FeedbackRecipient::Hotline12345));
    s.step(&mut lead, &sj, "2026-10-13T10:00:00+08:00", sign());
    s.step(&mut lead, &hotline_12345(), "2026-10-14T09:00:00+08:00", follow_up(Satisfaction::Satisfied));
    s.step(
        &mut lead,
        &city_reviewer(BodyCode::SJ),
        "2026-10-15T09:00:00+08:00",
        ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::Cancelled },
    );
    assert_eq!(lead.lead().status, LeadStatus::Cancelled);
}

#[test]
fn hdl_3_a_matter_zhujian_handles_sent_back_and_countersigned_has_the_domains_status_at_each_step() {
    let mut s = Scenario::new();
    let zj = handler(BodyCode::ZJ);
    let mut lead = s.register("C-1", "2026-09-30T10:00:00+08:00", Channel::Hotline, &GULOU);
    s.step(
        &mut lead,
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        classify("ZJ-1-3", Urgency::Normal, Complexity::General),
    );
    s.step(&mut lead, &registrar(), "2026-10-08T09:00:00+08:00", transfer(BodyCode::ZJ));
    s.step(&mut lead, &zj, "2026-10-08T11:00:00+08:00", ComplaintCommand::Accept);
    s.step(&mut lead, &zj, "2026-10-09T09:00:00+08:00", finding(Finding::Unsubstantiated));
    s.step(&mut lead, &zj, "2026-10-09T09:30:00+08:00", feedback(FeedbackRecipient::Complainant));
    s.step(&mut lead, &zj, "2026-10-09T10:00:00+08:00", sign());
    assert_eq!(lead.lead().status, LeadStatus::Handling, "not closed before the countersignature");
    let countersign = || ComplaintCommand::CountersignClosure { opinion: "同意办结".to_owned() };
    s.step(&mut lead, &street_office(), "2026-10-09T11:00:00+08:00", countersign());
    s.step(
        &mut lead,
        &city_reviewer(BodyCode::ZJ),
        "2026-10-12T09:00:00+08:00",
        ComplaintCommand::ReviewClosure {
            outcome: ReviewOutcome::SentBack { reason: "未附现场照片".to_owned() }
        },
    );
    s.step(&mut lead, &zj, "2026-10-13T09:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    s.step(&mut lead, &zj, "2026-10-13T10:00:00+08:00", sign());
    s.step(&mut lead, &street_office(), "2026-10-13T11:00:00+08:00", countersign());
    s.step(
        &mut lead,
        &city_reviewer(BodyCode::ZJ),
        "2026-10-14T09:00:00+08:00",
        ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::Cancelled },
    );
}

#[test]
fn trf_3_interp_15_returned_urgent_split_regraded_and_penalty_leads_have_the_domains_status_at_each_step() {
    let mut s = Scenario::new();
    // A misrouted transfer, returned and sent to the right body.
    let mut returned = s.register("C-1", "2026-09-30T10:00:00+08:00", Channel::Hotline, &GULOU);
    s.step(
        &mut returned,
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        classify("SJ-3-1", Urgency::Normal, Complexity::General),
    );
    s.step(&mut returned, &registrar(), "2026-10-08T09:00:00+08:00", transfer(BodyCode::SJ));
    s.step(
        &mut returned,
        &handler(BodyCode::SJ),
        "2026-10-09T09:00:00+08:00",
        ComplaintCommand::ReturnTransfer { reason: "系维保合同纠纷".to_owned() },
    );
    // Interpretation 27: 住建 accepts the return before it re-routes the lead.
    s.step(
        &mut returned,
        &registrar(),
        "2026-10-12T09:00:00+08:00",
        ComplaintCommand::ReviewReturn { accept: true, reason: "确属误派".to_owned() },
    );
    s.step(
        &mut returned,
        &registrar(),
        "2026-10-19T09:00:00+08:00",
        classify("ZJ-1-2", Urgency::Normal, Complexity::General),
    );
    s.step(&mut returned, &registrar(), "2026-10-19T10:00:00+08:00", transfer(BodyCode::ZJ));

    // An urgent lead, notified at once and handled by the category's body.
    let mut urgent = s.register("C-2", "2026-09-30T10:00:00+08:00", Channel::WalkIn, &TAIJIANG);
    s.step(
        &mut urgent,
        &registrar(),
        "2026-09-30T10:10:00+08:00",
        classify("XF-6", Urgency::Urgent, Complexity::General),
    );
    s.step(
        &mut urgent,
        &registrar(),
        "2026-09-30T10:20:00+08:00",
        ComplaintCommand::NotifyUrgent {
            notified_body: BodyCode::XF,
            emergency_measures: "清理楼道电动车".to_owned(),
            district_report: "已同步报告区委区政府".to_owned(),
        },
    );
    s.step(&mut urgent, &handler(BodyCode::XF), "2026-09-30T11:00:00+08:00", ComplaintCommand::Accept);

    // A complaint split into a linked lead for another body.
    let mut parent = s.register("C-3", "2026-09-30T10:00:00+08:00", Channel::Mailbox, &GULOU);
    s.step(
        &mut parent,
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        ComplaintCommand::Classify {
            category: "ZJ-1-3".to_owned(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
            split: vec![SplitRequest { lead: "C-3-2".parse().expect("valid id"), category: "SJ-2-1".to_owned() }],
        },
    );
    let mut child = Lead::new("C-3-2");
    let (registration, registered_at) = (parent.lead().registration.clone(), parent.lead().registered_at);
    let child_id = child.id.clone();
    s.step(
        &mut child,
        &registrar(),
        "2026-09-30T10:31:00+08:00",
        ComplaintCommand::OpenSplitLead {
            id: child_id,
            parent: parent.id.clone(),
            registration,
            registered_at,
            category: "SJ-2-1".to_owned(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
        },
    );
    s.step(&mut child, &registrar(), "2026-10-08T09:00:00+08:00", transfer(BodyCode::SJ));

    // A general matter re-graded as major, planned and reported on.
    let sj = handler(BodyCode::SJ);
    let mut major = s.register("C-4", "2026-09-30T10:00:00+08:00", Channel::Hotline, &GULOU);
    s.step(
        &mut major,
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        classify("SJ-3-1", Urgency::Normal, Complexity::General),
    );
    s.step(&mut major, &registrar(), "2026-10-08T09:00:00+08:00", transfer(BodyCode::SJ));
    s.step(&mut major, &sj, "2026-10-08T11:00:00+08:00", ComplaintCommand::Accept);
    s.step(&mut major, &sj, "2026-10-12T09:00:00+08:00", ComplaintCommand::Regrade { reason: "需更换主机".to_owned() });
    s.step(
        &mut major,
        &sj,
        "2026-10-13T09:00:00+08:00",
        ComplaintCommand::SubmitPlan {
            plan: "分三步实施".to_owned(),
            resolve_by: chrono::NaiveDate::from_ymd_opt(2026, 12, 20).expect("valid date"),
        },
    );
    s.step(&mut major, &sj, "2026-11-10T09:00:00+08:00", ComplaintCommand::ReportProgress { summary: "已采购".into() });

    // A penalty matter through verification, filing, decision and closure.
    let zf = handler(BodyCode::ZF);
    let mut penalty = s.register("C-5", "2026-05-06T10:00:00+08:00", Channel::Hotline, &TAIJIANG);
    s.step(
        &mut penalty,
        &registrar(),
        "2026-05-06T11:00:00+08:00",
        classify("ZF-1", Urgency::Normal, Complexity::General),
    );
    s.step(&mut penalty, &registrar(), "2026-05-08T09:00:00+08:00", transfer(BodyCode::ZF));
    s.step(&mut penalty, &zf, "2026-05-08T10:00:00+08:00", ComplaintCommand::Accept);
    s.step(
        &mut penalty,
        &zf,
        "2026-05-08T14:00:00+08:00",
        ComplaintCommand::OpenPenaltyMatter { received_at: at("2026-05-08T09:00:00+08:00") },
    );
    s.step(
        &mut penalty,
        &zf,
        "2026-05-11T09:00:00+08:00",
        ComplaintCommand::VerifyPenaltyMatter { outcome: PenaltyVerification::CaseWarranted, summary: "属实".into() },
    );
    s.step(
        &mut penalty,
        &zf,
        "2026-05-12T09:00:00+08:00",
        ComplaintCommand::FilePenaltyCase { case_number: "101".into() },
    );
    s.step(&mut penalty, &zf, "2026-05-13T09:00:00+08:00", finding(Finding::Substantiated));
    s.step(
        &mut penalty,
        &zf,
        "2026-06-20T09:00:00+08:00",
        ComplaintCommand::DecidePenalty {
            decision: PenaltyDecision::Imposed { description: "责令改正并罚款".into(), fine_fen: 2_000_000 },
        },
    );
    s.step(&mut penalty, &zf, "2026-06-20T10:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    s.step(&mut penalty, &zf, "2026-06-20T10:30:00+08:00", feedback(FeedbackRecipient::TransferringBody));
    s.step(&mut penalty, &zf, "2026-06-20T11:00:00+08:00", sign());
    assert_eq!(penalty.lead().status, LeadStatus::Closed);
}

/// Five leads for the list and the dashboard, as of 20 October 2026:
///
/// | lead | place | registered | state | responsible | earliest due |
/// |---|---|---|---|---|---|
/// | C-1 | 鼓楼区 东街街道 | 30 Sep | handling | SJ | 16 Oct 00:00 (HDL-1) |
/// | C-2 | 台江区 宁化街道 | 8 Oct | registered | ZJ | 17 Oct 00:00 (TRF-2) |
/// | C-3 | 鼓楼区 东街街道 | 9 Oct | handling | ZJ | 17 Oct 00:00 (HDL-1) |
/// | C-4 | 鼓楼区 东街街道 | 12 Oct 09:00 | closed | SJ | none |
/// | C-5 | 台江区 宁化街道 | 12 Oct 15:00 | registered | ZJ | 22 Oct 00:00 (TRF-2) |
fn city(world: &World, log: &mut Log) -> Vec<Lead> {
    let sj = handler(BodyCode::SJ);
    let zj = handler(BodyCode::ZJ);
    let register = |log: &mut Log, id: &str, now: &str, channel: Channel, place: &Where| {
        let registration = registration(channel, Complainant::Anonymous, place, now);
        Lead::register(world, log, id, now, registration)
    };
    let mut c1 = register(log, "C-1", "2026-09-30T10:00:00+08:00", Channel::Hotline, &GULOU);
    c1.given(
        world,
        log,
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        classify("SJ-3-1", Urgency::Normal, Complexity::General),
    );
    c1.given(world, log, &registrar(), "2026-10-08T09:00:00+08:00", transfer(BodyCode::SJ));
    c1.given(world, log, &sj, "2026-10-08T11:00:00+08:00", ComplaintCommand::Accept);
    let c2 = register(log, "C-2", "2026-10-08T09:00:00+08:00", Channel::Mailbox, &TAIJIANG);
    let mut c3 = register(log, "C-3", "2026-10-09T09:00:00+08:00", Channel::WalkIn, &GULOU);
    c3.given(
        world,
        log,
        &registrar(),
        "2026-10-09T09:30:00+08:00",
        classify("ZJ-1-3", Urgency::Normal, Complexity::General),
    );
    c3.given(world, log, &registrar(), "2026-10-09T10:00:00+08:00", transfer(BodyCode::ZJ));
    c3.given(world, log, &zj, "2026-10-09T11:00:00+08:00", ComplaintCommand::Accept);
    let mut c4 = register(log, "C-4", "2026-10-12T09:00:00+08:00", Channel::Hotline12345, &GULOU);
    c4.given(
        world,
        log,
        &registrar(),
        "2026-10-12T09:30:00+08:00",
        classify("SJ-3-1", Urgency::Normal, Complexity::General),
    );
    c4.given(world, log, &registrar(), "2026-10-12T10:00:00+08:00", transfer(BodyCode::SJ));
    c4.given(world, log, &sj, "2026-10-12T11:00:00+08:00", ComplaintCommand::Accept);
    c4.given(world, log, &sj, "2026-10-13T09:00:00+08:00", finding(Finding::Substantiated));
    c4.given(world, log, &sj, "2026-10-13T09:30:00+08:00", feedback(FeedbackRecipient::Hotline12345));
    c4.given(world, log, &sj, "2026-10-13T10:00:00+08:00", sign());
    let c5 = register(log, "C-5", "2026-10-12T15:00:00+08:00", Channel::Hotline, &TAIJIANG);
    vec![c1, c2, c3, c4, c5]
}

fn ids(store: &mut Store, filter: &LeadFilter, offset: u64, limit: u64, instant: &str) -> (Vec<String>, u64) {
    let prefix = store.prefix.clone();
    let (rows, total) = store.read(|tx| list(tx, &prefix, filter, offset, limit, at(instant)));
    (rows.into_iter().map(|row| row.id.to_string()).collect(), total)
}

#[test]
fn acc_1_the_complaint_list_filters_orders_newest_first_and_pages_with_a_total() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&LeadsModel));
    city(&world, &mut log);
    store.catch_up(&log);
    let now = "2026-10-20T10:00:00+08:00";
    let all = |filter: LeadFilter, store: &mut Store| {
        let (ids, total) = ids(store, &filter, 0, 100, now);
        assert_eq!(total, ids.len() as u64, "{filter:?}");
        ids
    };
    assert_eq!(all(LeadFilter::default(), &mut store), ["C-5", "C-4", "C-3", "C-2", "C-1"]);
    assert_eq!(
        all(LeadFilter { status: Some(LeadStatus::Registered), ..Default::default() }, &mut store),
        ["C-5", "C-2"]
    );
    assert_eq!(all(LeadFilter { status: Some(LeadStatus::Closed), ..Default::default() }, &mut store), ["C-4"]);
    assert_eq!(all(LeadFilter { body: Some(BodyCode::SJ), ..Default::default() }, &mut store), ["C-4", "C-1"]);
    assert_eq!(all(LeadFilter { body: Some(BodyCode::ZJ), ..Default::default() }, &mut store), ["C-5", "C-3", "C-2"]);
    assert_eq!(all(LeadFilter { category: Some("SJ-3-1".into()), ..Default::default() }, &mut store), ["C-4", "C-1"]);
    assert_eq!(all(LeadFilter { district: Some("台江区".into()), ..Default::default() }, &mut store), ["C-5", "C-2"]);
    assert_eq!(
        all(LeadFilter { street: Some("东街街道".into()), ..Default::default() }, &mut store),
        ["C-4", "C-3", "C-1"]
    );
    assert_eq!(
        all(LeadFilter { company: Some(OTHER_COMPANY.into()), ..Default::default() }, &mut store),
        ["C-5", "C-2"]
    );
    assert_eq!(
        all(
            LeadFilter {
                registered_from: Some(at("2026-10-08T09:00:00+08:00")),
                registered_until: Some(at("2026-10-12T15:00:00+08:00")),
                ..Default::default()
            },
            &mut store
        ),
        ["C-4", "C-3", "C-2"],
        "from inclusive, until exclusive"
    );
    assert_eq!(all(LeadFilter { overdue_only: true, ..Default::default() }, &mut store), ["C-3", "C-2", "C-1"]);
    assert_eq!(
        all(
            LeadFilter {
                body: Some(BodyCode::ZJ),
                district: Some("鼓楼区".into()),
                overdue_only: true,
                ..Default::default()
            },
            &mut store
        ),
        ["C-3"]
    );

    assert_eq!(ids(&mut store, &LeadFilter::default(), 0, 2, now), (vec!["C-5".into(), "C-4".into()], 5));
    assert_eq!(ids(&mut store, &LeadFilter::default(), 2, 2, now), (vec!["C-3".into(), "C-2".into()], 5));
    assert_eq!(ids(&mut store, &LeadFilter::default(), 4, 2, now), (vec!["C-1".into()], 5));
    assert_eq!(ids(&mut store, &LeadFilter::default(), 5, 2, now), (vec![], 5));

    let prefix = store.prefix.clone();
    let (rows, _) = store.read(|tx| list(tx, &prefix, &LeadFilter::default(), 0, 100, at(now)));
    let c4 = rows.iter().find(|row| row.id.as_str() == "C-4").expect("listed");
    assert_eq!((c4.company_uscc.as_str(), c4.company_name.as_str()), (COMPANY, "榕城物业服务有限公司"));
    assert_eq!((c4.community.as_str(), c4.street.as_str()), ("福苑小区", "东街街道"));
    assert_eq!(c4.finding, Some(Finding::Substantiated));
    assert_eq!(c4.closed_at, Some(at("2026-10-13T10:00:00+08:00")));
    assert_eq!(c4.channel, Channel::Hotline12345);
    let c2 = rows.iter().find(|row| row.id.as_str() == "C-2").expect("listed");
    assert_eq!(c2.earliest_due, Some(at("2026-10-17T00:00:00+08:00")));
    assert!(c2.overdue);
}

fn counts(received: u64, open: u64, closed: u64, overdue: u64) -> BodyCounts {
    BodyCounts { received, open, closed, overdue, overdue_provisional: 0, buck_passing: 0 }
}

fn body_counts(dashboard: &Dashboard, body: BodyCode) -> BodyCounts {
    dashboard.bodies.iter().find(|line| line.body == body).expect("every body has a line").counts
}

fn district_counts(dashboard: &Dashboard, body: BodyCode, district: &str) -> Option<BodyCounts> {
    dashboard
        .districts
        .iter()
        .find(|line| line.body == body && line.district.as_deref() == Some(district))
        .map(|l| l.counts)
}

/// The open, closed and overdue counts of a body from the domain's own states.
fn from_domain(leads: &[Lead], body: BodyCode, instant: &str) -> (u64, u64, u64) {
    let held: Vec<_> = leads.iter().map(Lead::lead).filter(|lead| lead.accountable_body() == body).collect();
    let open = held.iter().filter(|lead| lead.status.is_open()).count() as u64;
    let overdue = held.iter().filter(|lead| lead.status.is_open() && lead.is_overdue_at(at(instant))).count() as u64;
    (open, held.len() as u64 - open, overdue)
}

#[test]
fn dsp_1_the_dashboard_counts_received_open_closed_and_overdue_leads_per_body_and_district() {
    let (world, mut log, mut store) = (World::new(), Log::default(), Store::sqlite(&LeadsModel));
    let mut leads = city(&world, &mut log);
    store.catch_up(&log);
    let prefix = store.prefix.clone();
    let now = "2026-10-20T10:00:00+08:00";
    let board = store.read(|tx| dashboard(tx, &prefix, at(now)));
    assert_eq!(board.bodies.len(), BodyCode::ALL.len(), "every body reports");
    // 住建 received every lead at registration (C-3's transfer to its own handling is the same
    // lead); it holds C-2, C-3 and C-5, of which C-2 and C-3 are past due.
    assert_eq!(body_counts(&board, BodyCode::ZJ), counts(5, 3, 0, 2));
    assert_eq!(body_counts(&board, BodyCode::SJ), counts(2, 1, 1, 1));
    assert_eq!(body_counts(&board, BodyCode::XF), BodyCounts::default());
    assert_eq!(district_counts(&board, BodyCode::ZJ, "鼓楼区"), Some(counts(3, 1, 0, 1)));
    assert_eq!(district_counts(&board, BodyCode::ZJ, "台江区"), Some(counts(2, 2, 0, 1)));
    assert_eq!(district_counts(&board, BodyCode::SJ, "鼓楼区"), Some(counts(2, 1, 1, 1)));
    assert_eq!(district_counts(&board, BodyCode::SJ, "台江区"), None);
    for body in BodyCode::ALL {
        let line = body_counts(&board, body);
        assert_eq!((line.open, line.closed, line.overdue), from_domain(&leads, body, now), "{body}");
    }
    // On 15 October nothing was overdue yet.
    let earlier = store.read(|tx| dashboard(tx, &prefix, at("2026-10-15T12:00:00+08:00")));
    assert_eq!(BodyCode::ALL.iter().map(|body| body_counts(&earlier, *body).overdue).sum::<u64>(), 0);

    // A dissatisfied follow-up reopens C-4 with 市场监管: one closed lead fewer, one open more.
    let follow_up = follow_up(Satisfaction::Dissatisfied);
    leads[3].given(&world, &mut log, &hotline_12345(), "2026-10-21T09:00:00+08:00", follow_up);
    store.catch_up(&log);
    let later = "2026-10-21T10:00:00+08:00";
    let board = store.read(|tx| dashboard(tx, &prefix, at(later)));
    assert_eq!(body_counts(&board, BodyCode::SJ), counts(2, 2, 0, 1));
    for body in BodyCode::ALL {
        let line = body_counts(&board, body);
        assert_eq!((line.open, line.closed, line.overdue), from_domain(&leads, body, later), "{body}");
    }
}

#[test]
fn dsp_1_postgres_gives_the_same_list_and_dashboard_as_sqlite() {
    let world = World::new();
    let Some(mut postgres) = Store::postgres(&LeadsModel, "dsp_1") else { return };
    let mut sqlite = Store::sqlite(&LeadsModel);
    let mut log = Log::default();
    let mut leads = city(&world, &mut log);
    sqlite.catch_up(&log);
    postgres.catch_up(&log);
    leads[3].given(
        &world,
        &mut log,
        &hotline_12345(),
        "2026-10-21T09:00:00+08:00",
        follow_up(Satisfaction::Dissatisfied),
    );
    sqlite.catch_up(&log);
    postgres.catch_up(&log);
    let filters = [
        LeadFilter::default(),
        LeadFilter { status: Some(LeadStatus::Handling), ..Default::default() },
        LeadFilter { body: Some(BodyCode::ZJ), district: Some("台江区".into()), ..Default::default() },
        LeadFilter { street: Some("东街街道".into()), category: Some("SJ-3-1".into()), ..Default::default() },
        LeadFilter { company: Some(COMPANY.into()), overdue_only: true, ..Default::default() },
        LeadFilter {
            registered_from: Some(at("2026-10-01T00:00:00+08:00")),
            registered_until: Some(at("2026-10-12T00:00:00+08:00")),
            ..Default::default()
        },
    ];
    let (pg_prefix, sqlite_prefix) = (postgres.prefix.clone(), sqlite.prefix.clone());
    for instant in ["2026-10-15T12:00:00+08:00", "2026-10-21T10:00:00+08:00"] {
        for filter in &filters {
            for (offset, limit) in [(0, 100), (1, 2)] {
                assert_eq!(
                    postgres.read(|tx| list(tx, &pg_prefix, filter, offset, limit, at(instant))),
                    sqlite.read(|tx| list(tx, &sqlite_prefix, filter, offset, limit, at(instant))),
                    "{instant} {filter:?}"
                );
            }
        }
        assert_eq!(
            postgres.read(|tx| dashboard(tx, &pg_prefix, at(instant))),
            sqlite.read(|tx| dashboard(tx, &sqlite_prefix, at(instant)))
        );
    }

    // Interpretation 21: a provisional due, overdue, then recomputed.
    let mut world = world;
    let registered = "2027-02-03T10:00:00+08:00";
    let ledger = registration(Channel::Hotline, named("王芳", "13812345678"), &GULOU, registered);
    let mut provisional = Lead::register(&world, &mut log, "C-27", registered, ledger);
    sqlite.catch_up(&log);
    postgres.catch_up(&log);
    let overdue_only = LeadFilter { overdue_only: true, ..Default::default() };
    let same = |postgres: &mut Store, sqlite: &mut Store, instant: &str| {
        for filter in [&LeadFilter::default(), &overdue_only] {
            let from_postgres = postgres.read(|tx| list(tx, &pg_prefix, filter, 0, 100, at(instant)));
            assert_eq!(from_postgres, sqlite.read(|tx| list(tx, &sqlite_prefix, filter, 0, 100, at(instant))));
        }
        let from_postgres = postgres.read(|tx| dashboard(tx, &pg_prefix, at(instant)));
        assert_eq!(from_postgres, sqlite.read(|tx| dashboard(tx, &sqlite_prefix, at(instant))));
        from_postgres
    };
    let board = same(&mut postgres, &mut sqlite, "2027-02-19T08:00:00+08:00");
    assert_eq!(body_counts(&board, BodyCode::ZJ).overdue_provisional, 1);
    world.load_made_up_2027();
    let recompute = ComplaintCommand::RecomputeDeadline { seq: 0 };
    provisional.given(&world, &mut log, &reactor(), "2027-02-19T15:00:00+08:00", recompute);
    sqlite.catch_up(&log);
    postgres.catch_up(&log);
    let board = same(&mut postgres, &mut sqlite, "2027-02-21T00:00:01+08:00");
    assert_eq!(body_counts(&board, BodyCode::ZJ).overdue_provisional, 0);
}

#[test]
fn dsp_1_interp_21_a_provisional_due_is_shown_as_such_and_follows_its_recomputation() {
    let mut s = Scenario::new();
    // Registered on Wednesday 3 February 2027, before that year's notice: the TRF-2 deadline is
    // due, provisionally, at 24:00 on Thursday 18 February.
    let mut lead = s.register("C-27", "2027-02-03T10:00:00+08:00", Channel::Hotline, &GULOU);
    assert!(lead.lead().obligations.get(0).is_some_and(|deadline| deadline.provisional));
    let row = s.row(&lead, "2027-02-10T09:00:00+08:00");
    assert_eq!(row.earliest_due, Some(at("2027-02-19T00:00:00+08:00")));
    assert!(row.earliest_due_provisional);
    assert!(!row.overdue && !row.overdue_provisional);
    let late = s.row(&lead, "2027-02-19T08:00:00+08:00");
    assert!(late.overdue && late.overdue_provisional, "overdue, but only by the provisional due");
    let prefix = s.store.prefix.clone();
    let board = s.store.read(|tx| dashboard(tx, &prefix, at("2027-02-19T08:00:00+08:00")));
    assert_eq!(body_counts(&board, BodyCode::ZJ), BodyCounts { overdue_provisional: 1, ..counts(1, 1, 0, 1) });
    assert_eq!(
        district_counts(&board, BodyCode::ZJ, "鼓楼区"),
        Some(BodyCounts { overdue_provisional: 1, ..counts(1, 1, 0, 1) })
    );
    let overdue_only = LeadFilter { overdue_only: true, ..LeadFilter::default() };
    let (listed, total) = s.store.read(|tx| list(tx, &prefix, &overdue_only, 0, 10, at("2027-02-19T08:00:00+08:00")));
    assert_eq!(total, 1);
    assert!(listed[0].earliest_due_provisional && listed[0].overdue_provisional);

    // The notice arrives (made up: it rests 5–13 February); the reactor recomputes the due to
    // 24:00 on Saturday 20 February, official.
    s.world.load_made_up_2027();
    s.step(&mut lead, &reactor(), "2027-02-19T15:00:00+08:00", ComplaintCommand::RecomputeDeadline { seq: 0 });
    let row = s.row(&lead, "2027-02-19T15:00:00+08:00");
    assert_eq!(row.earliest_due, Some(at("2027-02-21T00:00:00+08:00")));
    assert!(!row.earliest_due_provisional);
    assert!(!row.overdue && !row.overdue_provisional, "not overdue by the new due");
    let late = s.row(&lead, "2027-02-21T00:00:01+08:00");
    assert!(late.overdue && !late.overdue_provisional);
    let board = s.store.read(|tx| dashboard(tx, &prefix, at("2027-02-19T15:00:00+08:00")));
    assert_eq!(body_counts(&board, BodyCode::ZJ), counts(1, 1, 0, 0));
    let board = s.store.read(|tx| dashboard(tx, &prefix, at("2027-02-21T00:00:01+08:00")));
    assert_eq!(body_counts(&board, BodyCode::ZJ), counts(1, 1, 0, 1));
    let (listed, _) = s.store.read(|tx| list(tx, &prefix, &overdue_only, 0, 10, at("2027-02-20T12:00:00+08:00")));
    assert!(listed.is_empty(), "not overdue before the new due");
}

#[test]
fn dsp_1_interp_27_a_rejected_return_gives_the_lead_back_and_counts_as_buck_passing() {
    let mut s = Scenario::new();
    let mut lead = s.register("C-1", "2026-09-30T10:00:00+08:00", Channel::Hotline, &GULOU);
    s.step(
        &mut lead,
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        classify("SJ-3-1", Urgency::Normal, Complexity::General),
    );
    s.step(&mut lead, &registrar(), "2026-10-08T09:00:00+08:00", transfer(BodyCode::SJ));
    s.step(&mut lead, &handler(BodyCode::SJ), "2026-10-08T10:00:00+08:00", ComplaintCommand::Accept);
    s.step(
        &mut lead,
        &handler(BodyCode::SJ),
        "2026-10-09T09:00:00+08:00",
        ComplaintCommand::ReturnTransfer { reason: "建议物业自行处理".to_owned() },
    );
    s.step(
        &mut lead,
        &registrar(),
        "2026-10-10T09:00:00+08:00",
        ComplaintCommand::ReviewReturn { accept: false, reason: "电梯安全属特种设备监管职责".to_owned() },
    );
    let row = s.row(&lead, "2026-10-10T09:00:00+08:00");
    assert_eq!((row.body, row.handling_body), (BodyCode::SJ, Some(BodyCode::SJ)));
    let prefix = s.store.prefix.clone();
    let board = s.store.read(|tx| dashboard(tx, &prefix, at("2026-10-10T09:00:00+08:00")));
    assert_eq!(body_counts(&board, BodyCode::SJ).buck_passing, 1);
    assert_eq!(body_counts(&board, BodyCode::ZJ).buck_passing, 0);
    assert_eq!(district_counts(&board, BodyCode::SJ, GULOU.district).map(|counts| counts.buck_passing), Some(1));
    assert_bulk_matches(&LeadsModel, &s.log.events, 2, &mut s.store.connection, &prefix);
}
