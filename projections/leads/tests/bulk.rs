//! DSP-1 and interpretation 21 in the in-memory build of `leads`: after a long and varied log,
//! folded one event at a time, seven at a time or all at once, the bulk builder leaves exactly
//! the rows the writer leaves, on SQLite and (where it answers) on PostgreSQL.
//!
//! The log has two parts. First, leads taken through the procedure by the domain around the
//! 2027 Spring Festival, before that year's schedule is known: their due instants are
//! provisional, or official where they look at 2026 alone; then the made-up official 2027
//! arrives and the deadline reactor recomputes every provisional due it can. Then events made
//! by hand for the writer's corners that the domain seldom or never produces: leads registered
//! again, deadlines opened again while open (provisional or not), closings of deadlines without
//! a row, recomputed due instants of deadlines without a row, of leads without a row, and in
//! events that also open and close deadlines, facts about leads never registered, and events
//! no read model knows.

use chrono::{DateTime, FixedOffset, TimeDelta};
use tousu_domain::calendar::{CalendarVersion, Period};
use tousu_domain::complaint::{
    Channel, ComplaintCommand, ComplaintEvent, ComplaintFact, Complexity, Finding, ReviewOutcome, SplitRequest,
    TransferMethod, Urgency,
};
use tousu_domain::deadline::{ClosedHow, Deadline, DeadlineClosure, DeadlineKind, DueBasis};
use tousu_domain::ids::{BodyCode, ComplaintId};
use tousu_domain::obligations::EscalationFact;
use tousu_projection::{Payload, ProjectionError, ReadModel};
use tousu_projection_testkit::*;
use tousu_read_leads::{LeadsModel, TABLES, schema};

const PLACES: [Where; 2] = [GULOU, TAIJIANG];

fn text(instant: DateTime<FixedOffset>) -> String {
    instant.to_rfc3339()
}

fn general(category: &str, split: Vec<SplitRequest>) -> ComplaintCommand {
    ComplaintCommand::Classify {
        category: category.to_owned(),
        urgency: Urgency::Normal,
        complexity: Complexity::General,
        split,
    }
}

fn transfer(to: BodyCode) -> ComplaintCommand {
    ComplaintCommand::Transfer { to, method: TransferMethod::System, note: "请办理".to_owned() }
}

/// The facts of the domain's events that the second part copies: a classification and a
/// linked lead's first fact.
struct Patterns {
    classified: ComplaintFact,
    split_from: ComplaintFact,
}

/// The first part of the log: leads registered from early December 2026 to early March 2027
/// by the domain, classified, transferred or split; then the made-up official 2027 arrives and
/// the reactor recomputes each provisional due of an open deadline.
fn through_the_procedure(world: &mut World, log: &mut Log, store: &mut Store) -> Patterns {
    let start = at("2026-12-04T09:30:00+08:00");
    let mut leads = Vec::new();
    let mut classified = None;
    let mut split_from = None;
    for n in 0..24_i64 {
        let registered = start + TimeDelta::days(n * 4) + TimeDelta::hours(n % 5);
        let place = &PLACES[n as usize % PLACES.len()];
        let received = registration(Channel::Hotline, named("王芳", "13812345678"), place, &text(registered));
        let mut lead = Lead::register(world, log, &format!("D-{n}"), &text(registered), received);
        let classified_at = text(registered + TimeDelta::minutes(30));
        let transferred = text(registered + TimeDelta::days(1 + n % 4));
        match n % 4 {
            0 => {}
            1 => {
                let events = lead.given(world, log, &registrar(), &classified_at, general("SJ-3-1", Vec::new()));
                classified = Some(events[0].fact.clone());
                lead.given(world, log, &registrar(), &transferred, transfer(BodyCode::SJ));
                lead.given(world, log, &handler(BodyCode::SJ), &transferred, ComplaintCommand::Accept);
            }
            2 => {
                lead.given(world, log, &registrar(), &classified_at, general("ZJ-1-2", Vec::new()));
                lead.given(world, log, &registrar(), &transferred, transfer(BodyCode::ZJ));
            }
            _ => {
                // Interpretation 15: a linked lead split off for another body.
                let child_id: ComplaintId = format!("D-{n}-2").parse().expect("valid id");
                let split = vec![SplitRequest { lead: child_id.clone(), category: "SJ-2-1".to_owned() }];
                lead.given(world, log, &registrar(), &classified_at, general("ZJ-1-3", split));
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
                leads.push(child);
            }
        }
        leads.push(lead);
    }
    store.catch_up(log);
    assert_reached(
        store,
        &[
            ("provisional due instants", "SELECT COUNT(*) FROM {p}deadlines WHERE provisional = 1"),
            ("official due instants", "SELECT COUNT(*) FROM {p}deadlines WHERE provisional = 0"),
        ],
    );

    // Interpretation 21: the notice arrives; every provisional open deadline is recomputed.
    world.load_made_up_2027();
    let recomputed_at = "2027-03-20T09:00:00+08:00";
    let mut recomputations = 0;
    for lead in &mut leads {
        let provisional: Vec<u32> = lead
            .lead()
            .obligations
            .open()
            .filter(|deadline| deadline.provisional)
            .map(|deadline| deadline.seq)
            .collect();
        for seq in provisional {
            let recompute = ComplaintCommand::RecomputeDeadline { seq };
            if lead.when(world, &reactor(), recomputed_at, recompute.clone()).is_ok() {
                lead.given(world, log, &reactor(), recomputed_at, recompute);
                recomputations += 1;
            }
        }
    }
    store.catch_up(log);
    assert!(recomputations > 0, "the reactor recomputed provisional due instants");
    let prefix = store.prefix.clone();
    let left = store.read(|tx| {
        tx.query(&format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {prefix}deadlines WHERE provisional = 1"), &[])
    });
    assert_eq!(left[0][0].as_i64(), Some(0), "no due instant looks at a year still without a schedule");
    Patterns {
        classified: classified.expect("a lead was classified"),
        split_from: split_from.expect("a lead was split"),
    }
}

/// The second part of the log: `events` events made by hand, drawn by `dice` among the shapes
/// the writer treats apart.
fn made_by_hand(log: &mut Log, patterns: &Patterns, dice: &mut Dice, events: usize) {
    let leads: Vec<ComplaintId> = (0..6)
        .map(|n| format!("D-{n}"))
        .chain((0..12).map(|n| format!("H-{n}")))
        .chain((0..4).map(|n| format!("U-{n}")))
        .map(|id| id.parse().expect("valid id"))
        .collect();
    let calendars = [None, None, Some("2027.provisional"), Some("2026.official.0a1b2c3d+2027.provisional")];
    // Instants twelve hours apart, so that due instants often coincide; a recomputed due is
    // seven minutes past one, so that the log can tell where a recomputation reached a row.
    let grid = |dice: &mut Dice| at("2027-01-01T00:00:00+08:00") + TimeDelta::hours(12 * dice.below(60) as i64);
    let deadline = |dice: &mut Dice| {
        let kind = *dice.pick(&DeadlineKind::ALL);
        // Interpretation 21: some due instants are provisional, resting on one or two years.
        let calendar = dice.pick(&calendars).map(CalendarVersion::from_text);
        Deadline {
            seq: dice.below(5) as u32,
            kind,
            rule: kind.rule(),
            body: *dice.pick(&BodyCode::ALL),
            community: None,
            basis: DueBasis::Period { start: grid(dice), period: Period::WorkingDays(7) },
            due: grid(dice),
            provisional: calendar.is_some(),
            calendar,
        }
    };
    let closings = |dice: &mut Dice| -> Vec<DeadlineClosure> {
        (0..dice.below(3))
            .map(|_| DeadlineClosure {
                seq: dice.below(5) as u32,
                kind: *dice.pick(&DeadlineKind::ALL),
                how: ClosedHow::Met,
            })
            .collect()
    };
    let escalation = |dice: &mut Dice| {
        let (seq, kind, body) = (dice.below(5) as u32, *dice.pick(&DeadlineKind::ALL), *dice.pick(&BodyCode::ALL));
        if dice.chance(25) {
            return EscalationFact::DeadlineMissed { seq, kind, rule: kind.rule(), body, due: grid(dice) };
        }
        // Interpretation 21: to official data, or still provisional.
        let provisional = dice.chance(30);
        EscalationFact::DeadlineRecomputed {
            seq,
            kind,
            body,
            previous_due: grid(dice),
            due: grid(dice) + TimeDelta::minutes(7),
            provisional,
            calendar: CalendarVersion::from_text(if provisional {
                "2027.official.1c2d3e4f+2028.provisional"
            } else {
                "2027.official.1c2d3e4f"
            }),
            withdrawn_levels: Vec::new(),
            miss_withdrawn: dice.chance(50),
        }
    };
    for _ in 0..events {
        let when = grid(dice);
        if dice.chance(5) {
            log.push("mailbox-7".to_owned(), "mailbox.received", Payload::Other);
            continue;
        }
        let lead = dice.pick(&leads).clone();
        // The `U-` leads are never registered: their facts find no row in `leads`.
        let registers = !lead.as_str().starts_with("U-");
        let fact = match dice.below(16) {
            0 | 1 if registers => {
                let place = dice.pick(&PLACES);
                let registered = registration(Channel::Hotline, named("李雷", "13900000000"), place, &text(when));
                if dice.chance(70) {
                    ComplaintFact::Registered { id: lead.clone(), registration: registered, complainant_key: None }
                } else {
                    let mut fact = patterns.split_from.clone();
                    if let ComplaintFact::SplitFrom { id, registration, registered_at, .. } = &mut fact {
                        *id = lead.clone();
                        *registration = registered;
                        *registered_at = grid(dice);
                    }
                    fact
                }
            }
            2..=5 => ComplaintFact::Escalation(escalation(dice)),
            6 => patterns.classified.clone(),
            7 => ComplaintFact::Transferred {
                to: *dice.pick(&[BodyCode::SJ, BodyCode::ZJ, BodyCode::XF]),
                method: TransferMethod::System,
                note: String::new(),
                street_office_informed: false,
            },
            8 => ComplaintFact::Accepted { body: BodyCode::SJ },
            9 if dice.chance(50) => {
                ComplaintFact::TransferReturned { by: BodyCode::SJ, reason: String::new(), under_review: false }
            }
            // Interpretation 27: a review of a return, rejected or accepted.
            9 => ComplaintFact::ReturnReviewed {
                body: *dice.pick(&[BodyCode::SJ, BodyCode::XF]),
                accepted: dice.chance(30),
                reason: String::new(),
                handling: dice.chance(50),
            },
            10 => ComplaintFact::FindingRecorded {
                finding: Finding::Substantiated,
                summary: String::new(),
                attributable: Some(true),
                attribution_reason: None,
            },
            11 => {
                ComplaintFact::ClosureSigned { body: *dice.pick(&[BodyCode::ZJ, BodyCode::SJ]), opinion: String::new() }
            }
            12 => ComplaintFact::ClosureCountersigned { body: BodyCode::JB, opinion: String::new() },
            13 => {
                let outcome = if dice.chance(50) {
                    ReviewOutcome::Cancelled
                } else {
                    ReviewOutcome::SentBack { reason: String::new() }
                };
                ComplaintFact::ClosureReviewed { body: BodyCode::SJ, outcome }
            }
            14 => ComplaintFact::Reopened { count: 1 + dice.below(3) as u32 },
            _ => ComplaintFact::Regraded { reason: String::new() },
        };
        let closes = closings(dice);
        let opens = (0..dice.below(3)).map(|_| deadline(dice)).collect();
        log.push_lead(&lead, &[ComplaintEvent { at: when, fact, opens, closes }]);
    }
}

/// The log of both parts, applied to `store` by its writer in several catch-ups (each of which
/// compares the bulk build with the writer's tables, three events at a time). Checks that it
/// reached the corners it is made for, so that the comparisons cover them.
fn long_log(store: &mut Store) -> Log {
    let mut world = World::new();
    let mut log = Log::default();
    let patterns = through_the_procedure(&mut world, &mut log, store);
    let mut dice = Dice::new(0x2027_0203_1000_0021);
    for _ in 0..5 {
        made_by_hand(&mut log, &patterns, &mut dice, 300);
        store.catch_up(&log);
    }
    assert_reached(
        store,
        &[
            ("provisional due instants", "SELECT COUNT(*) FROM {p}deadlines WHERE provisional = 1"),
            (
                "leads whose earliest due instant is provisional",
                "SELECT COUNT(*) FROM {p}leads WHERE earliest_due IS NOT NULL
                 AND (earliest_official_due IS NULL OR earliest_official_due > earliest_due)",
            ),
            (
                "leads with a provisional earliest due instant and an official later one",
                "SELECT COUNT(*) FROM {p}leads WHERE earliest_official_due > earliest_due",
            ),
            ("recomputed due instants", "SELECT COUNT(*) FROM {p}deadlines WHERE due % 3600000 = 420000"),
            (
                "recomputed due instants still provisional",
                "SELECT COUNT(*) FROM {p}deadlines WHERE due % 3600000 = 420000 AND provisional = 1",
            ),
            (
                "leads whose earliest due instant was recomputed",
                "SELECT COUNT(*) FROM {p}leads WHERE earliest_due % 3600000 = 420000",
            ),
            (
                "deadlines of leads without a row",
                "SELECT COUNT(*) FROM {p}deadlines d WHERE NOT EXISTS (SELECT 1 FROM {p}leads l WHERE l.lead = d.lead)",
            ),
            ("rejected returns counted as buck-passing", "SELECT COUNT(*) FROM {p}counts WHERE buck_passing > 0"),
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
fn dsp_1_interp_21_a_bulk_build_leaves_the_writers_rows_after_a_long_varied_log_in_any_batches() {
    let mut store = Store::sqlite(&LeadsModel);
    let log = long_log(&mut store);
    for batch in [1, 7, log.events.len()] {
        assert_bulk_matches(&LeadsModel, &log.events, batch, &mut store.connection, &store.prefix);
    }
}

#[test]
fn dsp_1_interp_21_a_bulk_build_on_postgresql_leaves_the_writers_rows_with_the_same_types() {
    let Some(mut postgres) = Store::postgres(&LeadsModel, "bulk") else { return };
    let log = long_log(&mut Store::sqlite(&LeadsModel));
    for events in log.events.chunks(500) {
        let writer = &mut postgres.writer;
        postgres.connection.transaction(|tx| writer.apply(tx, events)).expect("the writer applies the events");
    }
    for batch in [1, 7, log.events.len()] {
        assert_bulk_matches(&LeadsModel, &log.events, batch, &mut postgres.connection, &postgres.prefix);
    }

    // Written to PostgreSQL itself, which checks every value's type against its column.
    let built_prefix = format!("{}b_", postgres.prefix);
    let mut builder = LeadsModel.bulk(&built_prefix).expect("the model has a bulk builder");
    builder.fold(&log.events).expect("the builder folds the log");
    let written = postgres.connection.transaction(|tx| -> Result<(), ProjectionError> {
        tx.batch(&schema(&built_prefix))?;
        builder.write(tx)
    });
    let built = written.as_ref().ok().map(|()| dump(&mut postgres.connection, TABLES, &built_prefix));
    let _ = postgres.connection.transaction(|tx| -> Result<(), tousu_projection::SqlError> {
        for table in TABLES {
            tx.batch(&format!("DROP TABLE IF EXISTS {built_prefix}{table}"))?;
        }
        Ok(())
    });
    written.expect("PostgreSQL takes the builder's rows");
    assert_eq!(built.expect("dumped"), dump(&mut postgres.connection, TABLES, &postgres.prefix));
}
