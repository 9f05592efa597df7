//! PUB-1's in-memory build against its writer on a long, varied log: leads decided by the
//! domain through every path the writer reads (HDL-3's countersignature of a matter 住建
//! handles, a split anonymous complaint, a re-graded major matter, a dissatisfied 12345
//! follow-up and its reopening), then some 1,500 events made by hand that no command would
//! decide but the writer must still take: counts for leads never registered, re-registrations
//! moving a lead to another company and renaming it, deadlines closed before they open, met
//! on their due instant, closed late, closed twice and reopened, refusals of companies no lead
//! names, provisional due instants and recomputed ones (interpretation 21), of open deadlines,
//! of deadlines closed late and of deadlines that are not there. The tables built in memory
//! must equal the writer's, row for row, folded one event at a time, three, seven at a time
//! and all at once, and after a write half-way, on SQLite and on PostgreSQL.

use chrono::{DateTime, FixedOffset, TimeDelta};
use tousu_domain::calendar::{CalendarVersion, Period};
use tousu_domain::complaint::{
    Channel, CompanyRef, Complainant, ComplaintCommand, ComplaintEvent, ComplaintFact, Complexity, FeedbackRecipient,
    Finding, ReviewOutcome, Satisfaction, SplitRequest, Urgency,
};
use tousu_domain::deadline::{ClosedHow, Deadline, DeadlineClosure, DeadlineKind, DueBasis};
use tousu_domain::enterprise::{EnterpriseEvent, EnterpriseFact};
use tousu_domain::identity::ComplainantKey;
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_domain::obligations::EscalationFact;
use tousu_projection::{BulkBuilder, Payload, ProjectionError, ReadModel, SqlConnection, SqlError};
use tousu_projection_testkit::*;
use tousu_read_bulletin::{BulletinModel, TABLES};

/// Companies the generated leads are registered against, each under two names.
const COMPANIES: [(&str, [&str; 2]); 4] = [
    (COMPANY, ["榕城物业服务有限公司", "榕城物业服务有限公司福州分公司"]),
    (OTHER_COMPANY, ["闽江物业管理有限公司", "闽江物业"]),
    ("91350100M000300Y4J", ["安泰物业有限公司", "安泰物业（福建）有限公司"]),
    ("91350100M000400Y4A", ["久拖物业有限公司", "久拖"]),
];

/// A company only refusals name: it has months and no name.
const REFUSING_ONLY: &str = "91350100M000500Y42";

/// Deadline kinds the generated events open: both handling kinds (HDL-1, HDL-2), which decide
/// whether a closure is on time, and two that do not.
const KINDS: [DeadlineKind; 4] =
    [DeadlineKind::GeneralClose, DeadlineKind::MajorResolve, DeadlineKind::Transfer, DeadlineKind::MajorPlan];

/// Generated leads that only events other than a registration name.
const NEVER_REGISTERED: usize = 4;

fn feedback(recipient: FeedbackRecipient) -> ComplaintCommand {
    ComplaintCommand::GiveFeedback { recipient, content: "已督促物业公司完成维修".to_owned() }
}

fn finding() -> ComplaintCommand {
    ComplaintCommand::RecordFinding {
        finding: Finding::Substantiated,
        summary: "现场核实属实".to_owned(),
        attribution: None,
    }
}

fn sign() -> ComplaintCommand {
    ComplaintCommand::SignClosure { opinion: "问题已解决，同意办结".to_owned() }
}

fn countersign() -> ComplaintCommand {
    ComplaintCommand::CountersignClosure { opinion: "同意办结".to_owned() }
}

fn classify(category: &str, complexity: Complexity) -> ComplaintCommand {
    ComplaintCommand::Classify {
        category: category.to_owned(),
        urgency: Urgency::Normal,
        complexity,
        split: Vec::new(),
    }
}

fn dissatisfied() -> ComplaintCommand {
    ComplaintCommand::RecordSatisfaction { satisfaction: Satisfaction::Dissatisfied, comment: "未修好".to_owned() }
}

/// Leads decided by the domain, through each path of the writer; answers a `SplitFrom` event
/// for the generated events to vary.
fn decided(world: &World, log: &mut Log) -> ComplaintEvent {
    let (zj, sj) = (handler(BodyCode::ZJ), handler(BodyCode::SJ));

    // HDL-3: a matter 住建 handles: its signature does not close it, the countersignature
    // does; sent back by the city review and closed a second time, late.
    let ledger = registration(Channel::Hotline, named("王芳", "13812345678"), &GULOU, "2026-09-30T10:00:00+08:00");
    let mut direct = Lead::register(world, log, "D-1", "2026-09-30T10:00:00+08:00", ledger);
    direct.classify(world, log, "2026-09-30T10:30:00+08:00", "ZJ-1-3", Complexity::General);
    direct.transfer(world, log, "2026-10-08T09:00:00+08:00", BodyCode::ZJ);
    direct.given(world, log, &zj, "2026-10-08T11:00:00+08:00", ComplaintCommand::Accept);
    direct.given(world, log, &zj, "2026-10-09T09:00:00+08:00", finding());
    direct.given(world, log, &zj, "2026-10-09T09:30:00+08:00", feedback(FeedbackRecipient::Complainant));
    direct.given(world, log, &zj, "2026-10-09T10:00:00+08:00", sign());
    direct.given(world, log, &street_office(), "2026-10-09T11:00:00+08:00", countersign());
    let sent_back =
        ComplaintCommand::ReviewClosure { outcome: ReviewOutcome::SentBack { reason: "未附照片".into() } };
    direct.given(world, log, &city_reviewer(BodyCode::ZJ), "2026-10-12T09:00:00+08:00", sent_back);
    direct.given(world, log, &zj, "2026-10-13T09:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    direct.given(world, log, &zj, "2026-10-30T10:00:00+08:00", sign());
    direct.given(world, log, &street_office(), "2026-11-02T11:00:00+08:00", countersign());

    // Interpretation 15: an anonymous complaint split into a linked lead for another body;
    // both count once, as the complaint (interpretation 2).
    let ledger = registration(Channel::Mailbox, Complainant::Anonymous, &TAIJIANG, "2026-09-30T10:00:00+08:00");
    let mut parent = Lead::register(world, log, "S-1", "2026-09-30T10:00:00+08:00", ledger);
    parent.given(
        world,
        log,
        &registrar(),
        "2026-09-30T10:30:00+08:00",
        ComplaintCommand::Classify {
            category: "ZJ-1-3".to_owned(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
            split: vec![SplitRequest { lead: "S-1-2".parse().expect("valid id"), category: "SJ-2-1".to_owned() }],
        },
    );
    let mut child = Lead::new("S-1-2");
    let split = child.given(
        world,
        log,
        &registrar(),
        "2026-10-01T10:31:00+08:00",
        ComplaintCommand::OpenSplitLead {
            id: child.id.clone(),
            parent: parent.id.clone(),
            registration: parent.lead().registration.clone(),
            registered_at: parent.lead().registered_at,
            category: "SJ-2-1".to_owned(),
            urgency: Urgency::Normal,
            complexity: Complexity::General,
        },
    );
    child.transfer(world, log, "2026-10-08T09:00:00+08:00", BodyCode::SJ);
    child.given(world, log, &sj, "2026-10-08T11:00:00+08:00", ComplaintCommand::Accept);
    child.given(world, log, &sj, "2026-10-09T09:00:00+08:00", finding());
    child.given(world, log, &sj, "2026-10-10T10:00:00+08:00", sign());

    // HDL-2: a general matter re-graded as major and planned: `major-resolve` is its handling
    // deadline.
    let ledger = registration(Channel::Hotline, named("李雷", "13900000000"), &GULOU, "2026-09-30T10:00:00+08:00");
    let mut major = Lead::register(world, log, "M-1", "2026-09-30T10:00:00+08:00", ledger);
    major.given(world, log, &registrar(), "2026-09-30T10:30:00+08:00", classify("SJ-3-1", Complexity::General));
    major.transfer(world, log, "2026-10-08T09:00:00+08:00", BodyCode::SJ);
    major.given(world, log, &sj, "2026-10-08T11:00:00+08:00", ComplaintCommand::Accept);
    major.given(
        world,
        log,
        &sj,
        "2026-10-12T09:00:00+08:00",
        ComplaintCommand::Regrade { reason: "需更换主机".into() },
    );
    major.given(
        world,
        log,
        &sj,
        "2026-10-13T09:00:00+08:00",
        ComplaintCommand::SubmitPlan {
            plan: "分三步实施".to_owned(),
            resolve_by: chrono::NaiveDate::from_ymd_opt(2026, 12, 20).expect("valid date"),
        },
    );

    // HDL-4: a 12345 lead closed on time, followed up dissatisfied and reopened with a fresh
    // HDL-1 period (interpretation 18), closed again after it.
    let ledger =
        registration(Channel::Hotline12345, named("赵敏", "13700000000"), &TAIJIANG, "2026-10-08T09:00:00+08:00");
    let mut hotline = Lead::register(world, log, "H-1", "2026-10-08T09:00:00+08:00", ledger);
    hotline.classify(world, log, "2026-10-08T09:00:00+08:00", "SJ-3-1", Complexity::General);
    hotline.transfer(world, log, "2026-10-08T09:00:00+08:00", BodyCode::SJ);
    hotline.given(world, log, &sj, "2026-10-08T09:00:00+08:00", ComplaintCommand::Accept);
    hotline.given(world, log, &sj, "2026-10-08T09:00:00+08:00", finding());
    hotline.given(world, log, &sj, "2026-10-08T09:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    hotline.given(world, log, &sj, "2026-10-08T09:00:00+08:00", feedback(FeedbackRecipient::Hotline12345));
    hotline.given(world, log, &sj, "2026-10-09T10:00:00+08:00", sign());
    hotline.given(world, log, &hotline_12345(), "2026-10-20T09:00:00+08:00", dissatisfied());
    hotline.given(world, log, &sj, "2026-11-20T09:00:00+08:00", feedback(FeedbackRecipient::Complainant));
    hotline.given(world, log, &sj, "2026-11-20T09:30:00+08:00", feedback(FeedbackRecipient::Hotline12345));
    hotline.given(world, log, &sj, "2026-11-20T10:00:00+08:00", sign());

    split.into_iter().next().expect("the linked lead's event")
}

fn deadline(seq: u32, kind: DeadlineKind, start: DateTime<FixedOffset>, due: DateTime<FixedOffset>) -> Deadline {
    Deadline {
        seq,
        kind,
        rule: kind.rule(),
        body: BodyCode::SJ,
        community: None,
        basis: DueBasis::Period { start, period: Period::WorkingDays(7) },
        due,
        provisional: false,
        calendar: None,
    }
}

/// `count` events made by hand over `leads` leads (and [`NEVER_REGISTERED`] more): each a
/// random one of the kinds the writer reads or ignores, with random deadlines opened and
/// closed.
fn generated(
    world: &World,
    log: &mut Log,
    store: &mut Store,
    split: &ComplaintEvent,
    dice: &mut Dice,
    leads: usize,
    count: usize,
) {
    let people = [("王芳", "13812345678"), ("李雷", "13900000000"), ("赵敏", "13700000000"), ("韩梅梅", "13600000000")];
    let mut now = at("2026-09-25T00:00:00+08:00");
    for step in 0..count {
        // Mostly forward, now and then several events at one instant.
        now += TimeDelta::minutes(dice.below(3) as i64 * dice.below(8 * 60) as i64);
        let kind = dice.below(13);
        // The last few leads are never registered: no registration or linked lead names them.
        let number = match kind {
            0..=2 => dice.below(leads),
            _ => dice.below(leads + NEVER_REGISTERED),
        };
        let lead: ComplaintId = format!("G-{number}").parse().expect("valid id");
        let (uscc, names) = *dice.pick(&COMPANIES);
        let key = (dice.below(4) != 0).then(|| {
            let (name, contact) = *dice.pick(&people);
            ComplainantKey::derive(&world.secret, name, contact, None)
        });
        let mut ledger =
            registration(Channel::Hotline, named("王芳", "13812345678"), &GULOU, "2026-09-25T00:00:00+08:00");
        // Interpretation 22: now and then a lead names no company (失管小区).
        ledger.company = (dice.below(10) != 0)
            .then(|| CompanyRef { uscc: uscc.parse().expect("valid code"), name: (*dice.pick(&names)).to_owned() });
        let fact = match kind {
            0 | 1 => ComplaintFact::Registered { id: lead.clone(), registration: ledger, complainant_key: key },
            2 => {
                let mut fact = split.fact.clone();
                if let ComplaintFact::SplitFrom {
                    id,
                    parent,
                    registration: parent_registration,
                    complainant_key,
                    registered_at,
                    ..
                } = &mut fact
                {
                    *id = lead.clone();
                    *parent = format!("G-{}", dice.below(leads)).parse().expect("valid id");
                    *parent_registration = ledger;
                    *complainant_key = key;
                    *registered_at = now - TimeDelta::days(dice.below(40) as i64);
                }
                fact
            }
            3 | 4 => ComplaintFact::ClosureSigned {
                body: *dice.pick(&[BodyCode::ZJ, BodyCode::SJ, BodyCode::XF]),
                opinion: String::new(),
            },
            5 => ComplaintFact::ClosureCountersigned { body: BodyCode::JB, opinion: String::new() },
            6 => {
                let satisfaction = *dice.pick(&[Satisfaction::Satisfied, Satisfaction::Dissatisfied]);
                ComplaintFact::SatisfactionRecorded { satisfaction, comment: String::new() }
            }
            7 => ComplaintFact::Accepted { body: BodyCode::SJ },
            8 => ComplaintFact::Reopened { count: 1 },
            9 => {
                let uscc: Uscc =
                    dice.pick(&[COMPANIES[0].0, COMPANIES[1].0, REFUSING_ONLY]).parse().expect("valid code");
                // Company deadlines are not the bulletin's: the writer ignores them.
                let due = now + TimeDelta::days(5);
                let refusal = EnterpriseEvent {
                    at: now,
                    fact: EnterpriseFact::RectificationRefused {
                        community: "江滨花园".into(),
                        detail: "拒不整改".into(),
                    },
                    opens: vec![deadline(0, DeadlineKind::Downgrade, now, due)],
                    closes: Vec::new(),
                };
                log.push_company(&uscc, &[refusal]);
                continue;
            }
            10 => {
                let uscc: Uscc = COMPANIES[0].0.parse().expect("valid code");
                let rating = EnterpriseEvent {
                    at: now,
                    fact: EnterpriseFact::CreditRatingRecorded { rating: "D".into() },
                    opens: Vec::new(),
                    closes: Vec::new(),
                };
                log.push_company(&uscc, &[rating]);
                log.push("other-stream".to_owned(), "other.happened", Payload::Other);
                continue;
            }
            // Interpretation 21: a recomputed due, official or still provisional, seven seconds
            // past a minute so that the rows it reached can be told (every other instant here is
            // on the minute).
            11 => {
                let (seq, kind, provisional) = (dice.below(4) as u32, *dice.pick(&KINDS), dice.chance(30));
                let due = match dice.below(3) {
                    0 => now - TimeDelta::days(dice.below(5) as i64),
                    _ => now + TimeDelta::hours(dice.below(24 * 12) as i64),
                };
                ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed {
                    seq,
                    kind,
                    body: BodyCode::SJ,
                    previous_due: now,
                    due: due + TimeDelta::seconds(7),
                    provisional,
                    calendar: CalendarVersion::from_text(if provisional {
                        "2027.official.1c2d3e4f+2028.provisional"
                    } else {
                        "2027.official.1c2d3e4f"
                    }),
                    withdrawn_levels: Vec::new(),
                    miss_withdrawn: false,
                })
            }
            _ => ComplaintFact::Regraded { reason: String::new() },
        };
        // Sequence numbers from a small range, so that deadlines are closed that are not
        // there, closed twice, and opened again over a closed one; due instants before, at
        // and after the closing instant.
        let closes = (0..dice.below(3))
            .map(|_| DeadlineClosure { seq: dice.below(4) as u32, kind: *dice.pick(&KINDS), how: ClosedHow::Met })
            .collect();
        let opens = (0..dice.below(3))
            .map(|_| {
                let due = match dice.below(4) {
                    0 => now,
                    1 => now - TimeDelta::days(dice.below(5) as i64),
                    _ => now + TimeDelta::hours(dice.below(24 * 12) as i64),
                };
                let mut opened = deadline(dice.below(4) as u32, *dice.pick(&KINDS), now, due);
                // Interpretation 21: some due instants are provisional.
                if dice.chance(30) {
                    opened.provisional = true;
                    opened.calendar = Some(CalendarVersion::from_text("2027.provisional"));
                }
                opened
            })
            .collect();
        log.push_lead(&lead, &[ComplaintEvent { at: now, fact, opens, closes }]);
        // The writer takes the log in batches of about a hundred events; after each, the store
        // compares the in-memory build (three events at a time) with it.
        if step % 97 == 96 {
            store.catch_up(log);
        }
    }
    store.catch_up(log);
}

/// How many rows of the table under `prefix` match `condition`.
fn count(store: &mut Store, table: &str, condition: &str) -> i64 {
    let prefix = store.prefix.clone();
    store.read(|tx| -> Result<i64, SqlError> {
        let rows = tx.query(&format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {prefix}{table} WHERE {condition}"), &[])?;
        Ok(rows[0][0].as_i64().unwrap_or(0))
    })
}

fn built_in_memory_as_the_writer_builds(mut store: Store) {
    let world = World::new();
    let mut log = Log::default();
    let split = decided(&world, &mut log);
    store.catch_up(&log);
    generated(&world, &mut log, &mut store, &split, &mut Dice::new(0x9e37_79b9_7f4a_7c15), 60, 1500);

    // The log reached the corners it was made for.
    let open = i64::MAX;
    assert!(count(&mut store, "deadlines", &format!("closed_at = {open}")) > 10, "open deadlines");
    assert!(count(&mut store, "deadlines", &format!("closed_at < {open}")) > 10, "deadlines closed late");
    let unregistered = format!("lead NOT IN (SELECT lead FROM {}leads)", store.prefix);
    assert!(count(&mut store, "deadlines", &unregistered) > 0, "deadlines of leads never registered");
    assert!(count(&mut store, "months", "closed_on_time < closed") > 0, "closures late");
    assert!(count(&mut store, "months", "closed_on_time > 0") > 0, "closures on time");
    assert!(count(&mut store, "months", "dissatisfied > 0") > 0, "dissatisfied follow-ups");
    assert!(count(&mut store, "deadlines", "provisional = 1") > 0, "provisional due instants");
    let recomputed = "due % 60000 = 7000";
    assert!(count(&mut store, "deadlines", recomputed) > 0, "recomputed due instants");
    let still_provisional = format!("{recomputed} AND provisional = 1");
    assert!(count(&mut store, "deadlines", &still_provisional) > 0, "recomputed due instants still provisional");
    let closed_late = format!("{recomputed} AND closed_at < {open}");
    assert!(count(&mut store, "deadlines", &closed_late) > 0, "recomputed due instants closed late");
    assert!(count(&mut store, "months", &format!("refusals > 0 AND company = '{REFUSING_ONLY}'")) > 0, "refusals");
    assert!(count(&mut store, "complainants", "who LIKE 'anonymous:%'") > 2, "anonymous complainants");
    let second_names = "name LIKE '%分公司' OR name = '闽江物业' OR name = '久拖'";
    assert!(count(&mut store, "companies", second_names) > 0, "companies under their second names");

    let prefix = store.prefix.clone();
    for batch in [1, 7, log.events.len()] {
        assert_bulk_matches(&BulletinModel, &log.events, batch, &mut store.connection, &prefix);
    }

    // A builder goes on folding after it has written its tables: written half-way into a
    // database then thrown away, it writes after the rest what the writer built.
    let written = |builder: &dyn BulkBuilder| {
        let mut memory = SqlConnection::sqlite_in_memory().expect("in-memory SQLite opens");
        memory
            .transaction(|tx| -> Result<(), ProjectionError> {
                tx.batch(&BulletinModel.schema(&prefix))?;
                builder.write(tx)
            })
            .expect("the tables are written");
        dump(&mut memory, TABLES, &prefix)
    };
    let mut builder = BulletinModel.bulk(&prefix).expect("bulletin has a bulk builder");
    let (first, rest) = log.events.split_at(log.events.len() / 2);
    builder.fold(first).expect("the first half folds");
    assert_ne!(
        written(builder.as_ref()),
        dump(&mut store.connection, TABLES, &prefix),
        "half the log is not all of it"
    );
    builder.fold(rest).expect("the rest folds");
    assert_eq!(written(builder.as_ref()), dump(&mut store.connection, TABLES, &prefix));
}

#[test]
fn pub_1_the_tables_built_in_memory_equal_the_writers_on_a_long_varied_log() {
    built_in_memory_as_the_writer_builds(Store::sqlite(&BulletinModel));
}

#[test]
fn pub_1_the_tables_built_in_memory_equal_the_writers_on_postgres() {
    let Some(store) = Store::postgres(&BulletinModel, "bulk") else { return };
    built_in_memory_as_the_writer_builds(store);
}
