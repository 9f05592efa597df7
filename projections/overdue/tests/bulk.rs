//! ACC-2 and interpretations 9, 14 and 15 in the in-memory build of `overdue-escalation`: after
//! a long and varied log, folded one event at a time, seven at a time or all at once, the bulk
//! builder leaves exactly the rows the writer leaves, on SQLite and (where it answers) on
//! PostgreSQL, where the builder's rows are also written to check their column types.
//!
//! The log has two parts. First, leads and companies taken through the procedure by the domain:
//! transfers on time and late, a returned transfer (a reinstated TRF-2 deadline), urgent
//! notification, a re-graded matter with a plan, split leads, company surveys per community,
//! and the deadline reactor's misses and escalations. Then events made by hand for the
//! writer's corners that the domain seldom or never produces: a lead registered again in
//! another place, a deadline opened again while open, closings of deadlines without a row or
//! of another kind than the row's, a deadline closed and opened again in one event, misses and
//! escalations of deadlines without a row, leads and companies without rows, company deadlines
//! with no community, an empty one or one no lead names, and events no read model knows.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};
use tousu_domain::calendar::{CalendarVersion, Period};
use tousu_domain::complaint::{
    Channel, ComplaintCommand, ComplaintEvent, ComplaintFact, Complexity, SplitRequest, Urgency,
};
use tousu_domain::deadline::{
    ClosedHow, Deadline, DeadlineClosure, DeadlineKind, DueBasis, EscalationLevel, EscalationReason,
};
use tousu_domain::enterprise::{EnterpriseCommand, EnterpriseEvent, EnterpriseFact, LeadRecord};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_domain::obligations::{EscalationFact, ReferralDecision};
use tousu_domain::rule::RuleId;
use tousu_projection::{Payload, ProjectionError, ReadModel, SqlConnection, SqlError};
use tousu_projection_testkit::*;
use tousu_read_overdue::{OverdueModel, Subject, TABLES, due_escalations, schema};

/// The company of [`GULOU`] in the same community but another district, and in another
/// community: a company deadline's district is the first its leads give.
const JINAN: Where = Where {
    company: COMPANY,
    company_name: "榕城物业服务有限公司",
    community: "福苑小区",
    district: "晋安区",
    street: "茶园街道",
};

const ANTAI: Where = Where {
    company: COMPANY,
    company_name: "榕城物业服务有限公司",
    community: "安泰小区",
    district: "鼓楼区",
    street: "安泰街道",
};

const PLACES: [Where; 4] = [GULOU, TAIJIANG, JINAN, ANTAI];

fn text(instant: DateTime<FixedOffset>) -> String {
    instant.to_rfc3339()
}

/// The deadline reactor: records every escalation due at `instant`, on leads and companies.
fn react(
    store: &mut Store,
    world: &World,
    log: &mut Log,
    leads: &mut [Lead],
    companies: &mut [Company],
    instant: &str,
) {
    let prefix = store.prefix.clone();
    let due = store.read(|tx| due_escalations(tx, &prefix, at(instant), &world.calendar, &world.policy));
    for escalation in &due {
        let (seq, level) = (escalation.seq, escalation.level);
        match &escalation.subject {
            Subject::Lead(id) => {
                let lead = leads.iter_mut().find(|lead| &lead.id == id).expect("a lead of the scenario");
                lead.given(world, log, &reactor(), instant, ComplaintCommand::Escalate { seq, level });
            }
            Subject::Company(uscc) => {
                let company = companies.iter_mut().find(|company| &company.uscc == uscc).expect("a company");
                company.given(world, log, &reactor(), instant, EnterpriseCommand::Escalate { seq, level });
            }
        }
    }
    store.catch_up(log);
}

fn classify(category: &str, urgency: Urgency, complexity: Complexity, split: Vec<SplitRequest>) -> ComplaintCommand {
    ComplaintCommand::Classify { category: category.to_owned(), urgency, complexity, split }
}

/// A classification as a general matter of normal urgency, not split.
fn general(category: &str) -> ComplaintCommand {
    classify(category, Urgency::Normal, Complexity::General, Vec::new())
}

fn transfer(to: BodyCode) -> ComplaintCommand {
    ComplaintCommand::Transfer { to, method: tousu_domain::complaint::TransferMethod::System, note: "请办理".into() }
}

/// The first part of the log: leads and companies through the procedure, with the reactor.
/// Answers the `SplitFrom` fact of a split lead, as a pattern for the second part.
fn through_the_procedure(world: &World, log: &mut Log, store: &mut Store) -> ComplaintFact {
    let start = at("2026-09-01T09:30:00+08:00");
    let mut leads = Vec::new();
    let mut split_from = None;
    for n in 0..36_i64 {
        let registered = start + TimeDelta::days(n * 2 % 40) + TimeDelta::hours(n % 5);
        let place = &PLACES[n as usize % PLACES.len()];
        let received = registration(Channel::Hotline, named("王芳", "13812345678"), place, &text(registered));
        let mut lead = Lead::register(world, log, &format!("D-{n}"), &text(registered), received);
        let classified = text(registered + TimeDelta::minutes(30));
        // Some transfers within TRF-2's 7 working days, some after.
        let transferred = registered + TimeDelta::days(1 + n % 13);
        match n % 6 {
            0 => {}
            1 => {
                lead.given(world, log, &registrar(), &classified, general("SJ-3-1"));
                lead.given(world, log, &registrar(), &text(transferred), transfer(BodyCode::SJ));
                lead.given(world, log, &handler(BodyCode::SJ), &text(transferred), ComplaintCommand::Accept);
            }
            2 => {
                // Interpretation 15: returned, the TRF-2 deadline comes back from the registration.
                lead.given(world, log, &registrar(), &classified, general("SJ-3-1"));
                lead.given(world, log, &registrar(), &text(transferred), transfer(BodyCode::SJ));
                let returned = text(transferred + TimeDelta::hours(2));
                let reason = "系维保合同纠纷".to_owned();
                lead.given(world, log, &handler(BodyCode::SJ), &returned, ComplaintCommand::ReturnTransfer { reason });
                // Interpretation 27: 住建 accepts the return, which reinstates the TRF-2 deadline.
                let reviewed = text(transferred + TimeDelta::hours(3));
                let review = ComplaintCommand::ReviewReturn { accept: true, reason: "确属误派".to_owned() };
                lead.given(world, log, &registrar(), &reviewed, review);
                let again = transferred + TimeDelta::days(2);
                lead.given(world, log, &registrar(), &text(again), general("ZJ-1-2"));
                if n % 4 == 0 {
                    lead.given(world, log, &registrar(), &text(again + TimeDelta::hours(1)), transfer(BodyCode::ZJ));
                }
            }
            3 => {
                // TRF-1: notified within hours or not.
                lead.given(
                    world,
                    log,
                    &registrar(),
                    &classified,
                    classify("XF-6", Urgency::Urgent, Complexity::General, vec![]),
                );
                let notified = text(registered + TimeDelta::hours(1 + n % 30));
                let notify = ComplaintCommand::NotifyUrgent {
                    notified_body: BodyCode::XF,
                    emergency_measures: "清理楼道电动车".to_owned(),
                    district_report: "已同步报告区委区政府".to_owned(),
                };
                lead.given(world, log, &registrar(), &notified, notify);
                lead.given(world, log, &handler(BodyCode::XF), &notified, ComplaintCommand::Accept);
            }
            4 => {
                // HDL-2 and interpretation 17: re-graded as major, then a plan with its own date.
                let sj = handler(BodyCode::SJ);
                lead.given(world, log, &registrar(), &classified, general("SJ-3-1"));
                lead.given(world, log, &registrar(), &text(transferred), transfer(BodyCode::SJ));
                lead.given(world, log, &sj, &text(transferred), ComplaintCommand::Accept);
                let regraded = text(transferred + TimeDelta::days(2));
                lead.given(world, log, &sj, &regraded, ComplaintCommand::Regrade { reason: "需更换主机".to_owned() });
                if n % 12 == 4 {
                    let plan = ComplaintCommand::SubmitPlan {
                        plan: "分三步实施".to_owned(),
                        resolve_by: NaiveDate::from_ymd_opt(2026, 12, 20).expect("a date"),
                    };
                    lead.given(world, log, &sj, &text(transferred + TimeDelta::days(3)), plan);
                }
            }
            _ => {
                // Interpretation 15: a linked lead split off for another body.
                let child_id: ComplaintId = format!("D-{n}-2").parse().expect("valid id");
                let split = vec![SplitRequest { lead: child_id.clone(), category: "SJ-2-1".to_owned() }];
                lead.given(
                    world,
                    log,
                    &registrar(),
                    &classified,
                    classify("ZJ-1-3", Urgency::Normal, Complexity::General, split),
                );
                let mut child = Lead::new(child_id.as_str());
                let open = ComplaintCommand::OpenSplitLead {
                    id: child_id,
                    parent: lead.id.clone(),
                    registration: lead.lead().registration.clone(),
                    registered_at: lead.lead().registered_at,
                    category: "SJ-2-1".to_owned(),
                    urgency: Urgency::Normal,
                    complexity: Complexity::General,
                };
                let opened = child.given(world, log, &registrar(), &text(registered + TimeDelta::minutes(31)), open);
                split_from = Some(opened[0].fact.clone());
                child.given(world, log, &registrar(), &text(transferred), transfer(BodyCode::SJ));
                leads.push(child);
            }
        }
        leads.push(lead);
    }
    store.catch_up(log);

    // GRD-1, interpretation 14: a low rating requires a survey of each community of the
    // company's leads, and of a community no lead registered here names.
    let mut companies = vec![Company::new(COMPANY), Company::new(OTHER_COMPANY)];
    for company in &mut companies {
        let mut records: Vec<LeadRecord> = leads
            .iter()
            .filter(|lead| lead.lead().registration.company.as_ref().is_some_and(|named| named.uscc == company.uscc))
            .map(|lead| LeadRecord {
                lead: lead.id.clone(),
                complainant_key: None,
                registered_at: lead.lead().registered_at,
                community: lead.lead().registration.place.community.clone(),
                linked_to: None,
            })
            .collect();
        records.push(LeadRecord {
            lead: "X-1".parse().expect("valid id"),
            complainant_key: None,
            registered_at: at("2026-09-01T10:00:00+08:00"),
            community: "无名小区".to_owned(),
            linked_to: None,
        });
        let count = EnterpriseCommand::CountLeads {
            uscc: company.uscc.clone(),
            company_name: "物业服务有限公司".to_owned(),
            complaints: records,
            findings: Vec::new(),
        };
        company.given(world, log, &reactor(), "2026-10-12T10:00:00+08:00", count);
        let rating = EnterpriseCommand::RecordCreditRating { rating: "D".to_owned() };
        company.given(world, log, &registrar(), "2026-10-13T10:00:00+08:00", rating);
    }
    store.catch_up(log);

    for instant in ["2026-10-16T08:00:00+08:00", "2026-10-27T08:00:00+08:00"] {
        react(store, world, log, &mut leads, &mut companies, instant);
    }
    // Two surveys, late, and late transfers of leads whose deadlines were escalated.
    let survey = |community: &str| EnterpriseCommand::RecordSurvey {
        community: community.to_owned(),
        respondents: 100,
        satisfied: 70,
        publication: "小区公告栏".to_owned(),
    };
    companies[0].given(world, log, &handler(BodyCode::ZJ), "2026-11-02T10:00:00+08:00", survey("安泰小区"));
    companies[1].given(world, log, &handler(BodyCode::ZJ), "2026-11-02T10:00:00+08:00", survey("江滨花园"));
    for lead in leads.iter_mut().filter(|lead| lead.id.as_str().ends_with('0')) {
        if lead.when(world, &registrar(), "2026-11-03T10:00:00+08:00", transfer(BodyCode::SJ)).is_err() {
            let classified = general("SJ-3-1");
            if lead.when(world, &registrar(), "2026-11-03T09:00:00+08:00", classified.clone()).is_ok() {
                lead.given(world, log, &registrar(), "2026-11-03T09:00:00+08:00", classified);
            }
        }
        if lead.when(world, &registrar(), "2026-11-03T10:00:00+08:00", transfer(BodyCode::SJ)).is_ok() {
            lead.given(world, log, &registrar(), "2026-11-03T10:00:00+08:00", transfer(BodyCode::SJ));
        }
    }
    store.catch_up(log);
    for instant in ["2026-11-20T08:00:00+08:00", "2026-12-30T08:00:00+08:00"] {
        react(store, world, log, &mut leads, &mut companies, instant);
    }
    split_from.expect("a lead was split")
}

/// A valid unified social credit code for `first_17`: the one check character that passes.
fn uscc(first_17: &str) -> Uscc {
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .find_map(|check| format!("{first_17}{check}").parse().ok())
        .expect("some check character passes")
}

/// The second part of the log: `events` events made by hand, drawn by `dice` among the shapes
/// the writer treats apart.
fn made_by_hand(log: &mut Log, split_from: &ComplaintFact, dice: &mut Dice, events: usize) {
    let leads: Vec<ComplaintId> = (0..12)
        .map(|n| format!("D-{n}"))
        .chain((0..16).map(|n| format!("H-{n}")))
        .chain((0..4).map(|n| format!("U-{n}")))
        .map(|id| id.parse().expect("valid id"))
        .collect();
    let companies = [
        COMPANY.parse().expect("valid code"),
        OTHER_COMPANY.parse().expect("valid code"),
        uscc("91350100M000300Y4"),
        uscc("91350100M000400Y4"),
    ];
    let communities = ["福苑小区", "安泰小区", "江滨花园", "新村", ""];
    let districts = ["鼓楼区", "晋安区", "台江区", ""];
    let deadline_communities = [None, Some(""), Some("福苑小区"), Some("安泰小区"), Some("江滨花园"), Some("无名小区")];
    let calendars = [None, None, Some("2027.provisional"), Some("2026.official.0a1b2c3d+2027.provisional")];
    // Instants twelve hours apart: events fall on due instants often, met exactly on time.
    let grid = |dice: &mut Dice| at("2026-10-01T00:00:00+08:00") + TimeDelta::hours(12 * dice.below(60) as i64);
    let deadline = |dice: &mut Dice| {
        let kind = *dice.pick(&DeadlineKind::ALL);
        let basis = match dice.below(3) {
            0 => DueBasis::Period { start: grid(dice), period: Period::Days(7) },
            1 => DueBasis::PlanDate { date: NaiveDate::from_ymd_opt(2026, 12, 20).expect("a date") },
            _ => DueBasis::Reinstated { original: 0 },
        };
        // Interpretation 21: some due instants are provisional, resting on one or two years.
        let calendar = dice.pick(&calendars).map(CalendarVersion::from_text);
        Deadline {
            seq: dice.below(6) as u32,
            kind,
            rule: if dice.chance(90) { kind.rule() } else { *dice.pick(&[RuleId::Acc2, RuleId::Grd1, RuleId::Trf2]) },
            body: *dice.pick(&BodyCode::ALL),
            community: dice.pick(&deadline_communities).map(str::to_owned),
            basis,
            due: grid(dice),
            provisional: calendar.is_some(),
            calendar,
        }
    };
    let closings = |dice: &mut Dice| -> Vec<DeadlineClosure> {
        (0..dice.below(4))
            .map(|_| DeadlineClosure {
                seq: dice.below(6) as u32,
                kind: *dice.pick(&DeadlineKind::ALL),
                how: if dice.chance(70) { ClosedHow::Met } else { ClosedHow::Superseded },
            })
            .collect()
    };
    let escalation = |dice: &mut Dice| {
        let (seq, kind, body) = (dice.below(6) as u32, *dice.pick(&DeadlineKind::ALL), *dice.pick(&BodyCode::ALL));
        if dice.chance(30) {
            EscalationFact::DeadlineMissed { seq, kind, rule: kind.rule(), body, due: grid(dice) }
        } else if dice.chance(30) {
            // Interpretation 21: a recomputed due, to official or still provisional data, with
            // any levels and the miss withdrawn or kept.
            let provisional = dice.chance(30);
            EscalationFact::DeadlineRecomputed {
                seq,
                kind,
                body,
                previous_due: grid(dice),
                due: grid(dice),
                provisional,
                calendar: CalendarVersion::from_text(if provisional {
                    "2027.official.1c2d3e4f+2028.provisional"
                } else {
                    "2027.official.1c2d3e4f"
                }),
                withdrawn_levels: EscalationLevel::ALL.into_iter().filter(|_| dice.chance(40)).collect(),
                miss_withdrawn: dice.chance(50),
            }
        } else if dice.chance(25) {
            // Interpretation 9: an official's decision, on a recommendation or (by hand) on none.
            EscalationFact::ReferralDecided {
                seq,
                kind,
                body,
                decision: *dice.pick(&[ReferralDecision::Referred, ReferralDecision::Dismissed]),
                reason: "经核实".to_owned(),
                official: (*dice.pick(&["李明", "王强"])).to_owned(),
            }
        } else {
            let level = *dice.pick(&EscalationLevel::ALL);
            EscalationFact::Escalated {
                seq,
                kind,
                body,
                level,
                reason: EscalationReason::Lateness,
                working_days_late: 3,
            }
        }
    };
    for _ in 0..events {
        let when = grid(dice);
        match dice.below(20) {
            0..=13 => {
                let lead = dice.pick(&leads).clone();
                // The `U-` leads are never registered: their deadlines find no row in `leads`.
                let registers = !lead.as_str().starts_with("U-");
                let fact = match dice.below(10) {
                    0 | 1 if registers => {
                        let mut registered =
                            registration(Channel::Hotline, named("李雷", "13900000000"), &GULOU, &text(when));
                        if let Some(named) = &mut registered.company {
                            named.uscc = dice.pick(&companies).clone();
                        }
                        registered.place.community = (*dice.pick(&communities)).to_owned();
                        registered.place.district = (*dice.pick(&districts)).to_owned();
                        if dice.chance(70) {
                            ComplaintFact::Registered {
                                id: lead.clone(),
                                registration: registered,
                                complainant_key: None,
                            }
                        } else {
                            let ComplaintFact::SplitFrom {
                                parent,
                                complainant_key,
                                category,
                                body,
                                urgency,
                                complexity,
                                ..
                            } = split_from.clone()
                            else {
                                panic!("a split lead's first fact is SplitFrom: {split_from:?}")
                            };
                            ComplaintFact::SplitFrom {
                                id: lead.clone(),
                                parent,
                                registration: registered,
                                complainant_key,
                                registered_at: grid(dice),
                                category,
                                body,
                                urgency,
                                complexity,
                            }
                        }
                    }
                    2..=4 => ComplaintFact::Escalation(escalation(dice)),
                    _ => ComplaintFact::Accepted { body: *dice.pick(&BodyCode::ALL) },
                };
                let closes = closings(dice);
                let opens = (0..dice.below(4)).map(|_| deadline(dice)).collect();
                log.push_lead(&lead, &[ComplaintEvent { at: when, fact, opens, closes }]);
            }
            14..=18 => {
                let uscc = dice.pick(&companies).clone();
                let fact = if dice.chance(40) {
                    EnterpriseFact::Escalation(escalation(dice))
                } else {
                    EnterpriseFact::CreditRatingRecorded { rating: "B".to_owned() }
                };
                let closes = closings(dice);
                let opens = (0..dice.below(4)).map(|_| deadline(dice)).collect();
                log.push_company(&uscc, &[EnterpriseEvent { at: when, fact, opens, closes }]);
            }
            _ => {
                let stream = if dice.chance(50) { dice.pick(&leads).stream_name() } else { "mailbox-7".to_owned() };
                log.push(stream, "mailbox.received", Payload::Other);
            }
        }
    }
}

/// The log of both parts, applied to `store` by its writer in several catch-ups (each of which
/// compares the bulk build with the writer's tables, three events at a time). Checks after each
/// part that it reached the corners it is made for, so that the comparisons cover them.
fn long_log(world: &World, store: &mut Store) -> Log {
    let mut log = Log::default();
    let split_from = through_the_procedure(world, &mut log, store);
    assert_reached(
        store,
        &[
            ("escalated deadlines", "SELECT COUNT(*) FROM {p}obligations WHERE levels <> 0 AND missed = 1"),
            ("company deadlines", "SELECT COUNT(*) FROM {p}obligations WHERE subject_kind = 'company'"),
            (
                "a company deadline in the first of a community's districts",
                "SELECT COUNT(*) FROM {p}obligations WHERE subject_kind = 'company' AND district = '晋安区'",
            ),
            (
                "a company deadline in a community without leads",
                "SELECT COUNT(*) FROM {p}obligations WHERE subject_kind = 'company' AND district = ''",
            ),
        ],
    );
    let mut dice = Dice::new(0x0dd_c0de_2026_1207);
    for _ in 0..6 {
        made_by_hand(&mut log, &split_from, &mut dice, 400);
        store.catch_up(&log);
    }
    assert_reached(
        store,
        &[
            (
                "misses of deadlines without a row",
                "SELECT COUNT(*) FROM {p}misses m
                 WHERE NOT EXISTS (SELECT 1 FROM {p}obligations o WHERE o.stream = m.stream AND o.seq = m.seq)",
            ),
            (
                "deadlines of leads without a row",
                "SELECT COUNT(*) FROM {p}obligations WHERE subject_kind = 'lead' AND company = ''",
            ),
            ("closures met on time", "SELECT COUNT(*) FROM {p}closures WHERE met_on_time > 0"),
            ("closures met late", "SELECT COUNT(*) FROM {p}closures WHERE met_late > 0"),
            ("closures superseded", "SELECT COUNT(*) FROM {p}closures WHERE superseded > 0"),
            ("provisional due instants", "SELECT COUNT(*) FROM {p}obligations WHERE provisional_first > 0"),
            (
                "due instants recomputed from provisional",
                "SELECT COUNT(*) FROM {p}obligations WHERE calendar = '2027.official.1c2d3e4f+2028.provisional'",
            ),
            ("recommendations pending", "SELECT COUNT(*) FROM {p}referrals WHERE status = 'pending'"),
            ("recommendations referred", "SELECT COUNT(*) FROM {p}referrals WHERE status = 'referred'"),
            ("recommendations dismissed", "SELECT COUNT(*) FROM {p}referrals WHERE status = 'dismissed'"),
            ("company recommendations", "SELECT COUNT(*) FROM {p}referrals WHERE subject_kind = 'company'"),
        ],
    );
    log
}

/// Asserts that each query counts some rows in the writer's tables under `{p}`.
fn assert_reached(store: &mut Store, corners: &[(&str, &str)]) {
    for (corner, sql) in corners {
        let sql = sql.replace("{p}", &store.prefix);
        let found = store.read(|tx| tx.query(&sql, &[]))[0][0].as_i64().expect("a count");
        assert!(found > 0, "the log has no {corner}");
    }
}

#[test]
fn acc_2_interp_9_14_15_a_bulk_build_leaves_the_writers_rows_after_a_long_varied_log_in_any_batches() {
    let world = World::new();
    let mut store = Store::sqlite(&OverdueModel);
    let log = long_log(&world, &mut store);
    for batch in [1, 7, log.events.len()] {
        assert_bulk_matches(&OverdueModel, &log.events, batch, &mut store.connection, &store.prefix);
    }
}

#[test]
fn acc_2_interp_9_14_15_a_bulk_build_on_postgresql_leaves_the_writers_rows_with_the_same_types() {
    let world = World::new();
    let Some(mut postgres) = Store::postgres(&OverdueModel, "bulk") else { return };
    let log = long_log(&world, &mut Store::sqlite(&OverdueModel));
    for events in log.events.chunks(500) {
        let writer = &mut postgres.writer;
        postgres.connection.transaction(|tx| writer.apply(tx, events)).expect("the writer applies the events");
    }
    for batch in [1, 7, log.events.len()] {
        assert_bulk_matches(&OverdueModel, &log.events, batch, &mut postgres.connection, &postgres.prefix);
    }

    // Written to PostgreSQL itself, which checks every value's type against its column.
    let built_prefix = format!("{}b_", postgres.prefix);
    let mut builder = OverdueModel.bulk(&built_prefix).expect("the model has a bulk builder");
    builder.fold(&log.events).expect("the builder folds the log");
    let written = postgres.connection.transaction(|tx| -> Result<(), ProjectionError> {
        tx.batch(&schema(&built_prefix))?;
        builder.write(tx)
    });
    let built = written.as_ref().ok().map(|()| dump(&mut postgres.connection, TABLES, &built_prefix));
    drop_tables(&mut postgres.connection, &built_prefix);
    written.expect("PostgreSQL takes the builder's rows");
    assert_eq!(built.expect("dumped"), dump(&mut postgres.connection, TABLES, &postgres.prefix));
}

fn drop_tables(connection: &mut SqlConnection, prefix: &str) {
    let _ = connection.transaction(|tx| -> Result<(), SqlError> {
        for table in TABLES {
            tx.batch(&format!("DROP TABLE IF EXISTS {prefix}{table}"))?;
        }
        Ok(())
    });
}
