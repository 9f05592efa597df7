//! Measures how fast the `watchlist` and `weekly-summary` writers apply synthetic events to a
//! SQLite file in batches of the runtime's build size, how fast the watchlist's bulk builder
//! folds the same events and writes its tables, and how long the watchlist's queries then
//! take. Run with `cargo run --release -p tousu-read-watchlist --example apply_throughput
//! [EVENTS]` (default 1,000,000). Only the writers' transactions and the builder's folds and
//! write are timed, not the making of the events nor their decoding.
//!
//! The synthetic city: 300 companies with a skewed share of leads, 12 districts, 60,000
//! complainants of whom many complain again, leads registered over a year, each going through
//! registration, classification, transfer, acceptance, finding, feedback, closure and review
//! (ten lead events and two company events), many leads in flight at once.

#![allow(clippy::print_stdout, reason = "an example that reports what it measured")]

use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use tousu_domain::calendar::{Period, shanghai};
use tousu_domain::complaint::{
    Channel, CompanyRef, Complainant, ComplaintEvent, ComplaintFact, Complexity, FeedbackRecipient, Finding, Place,
    Registration, ReviewOutcome, TransferMethod, Urgency,
};
use tousu_domain::deadline::{ClosedHow, Deadline, DeadlineClosure, DeadlineKind, DueBasis};
use tousu_domain::enterprise::{EnterpriseEvent, EnterpriseFact};
use tousu_domain::identity::{ComplainantKey, IdentitySecret};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_domain::policy::Policy;
use tousu_domain::taxonomy::CategoryCode;
use tousu_projection::{Payload, ProjectedEvent, ProjectionError, ReadModel, SqlConnection};
use tousu_read_watchlist::{Watchlist, WatchlistFilter};
use tousu_read_weekly_summary::WeeklySummaryModel;

const COMPANIES: u64 = 300;
const DISTRICTS: u64 = 12;
const PEOPLE: u64 = 60_000;
const IN_FLIGHT: u64 = 4_000;
const BATCH: usize = 8_192;
const EVENTS_PER_LEAD: u64 = 12;

fn uscc(n: u64) -> Uscc {
    let first_17 = format!("91350100M{n:08}");
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .find_map(|check| format!("{first_17}{check}").parse().ok())
        .expect("some check character fits")
}

/// A cheap deterministic mix, for skew without a random-number crate.
fn mix(n: u64) -> u64 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (x >> 29)
}

struct City {
    companies: Vec<Uscc>,
    keys: Vec<ComplainantKey>,
    category: CategoryCode,
    start: DateTime<FixedOffset>,
}

impl City {
    fn new() -> City {
        let secret = IdentitySecret::new(b"throughput".to_vec());
        City {
            companies: (0..COMPANIES).map(uscc).collect(),
            keys: (0..PEOPLE)
                .map(|n| ComplainantKey::derive(&secret, &format!("居民{n}"), &format!("139{n:08}"), None))
                .collect(),
            category: serde_json::from_value(serde_json::Value::String("SJ-3-1".to_owned())).expect("category"),
            start: DateTime::parse_from_rfc3339("2025-06-02T08:00:00+08:00").expect("instant"),
        }
    }

    /// Event `step` (0..12) of lead `n`, at its position `position`.
    fn event(&self, n: u64, step: u64, position: u64) -> ProjectedEvent {
        // Skewed: a quarter of the companies draw most leads.
        let company = &self.companies[(mix(n) % COMPANIES).min(mix(n ^ 7) % COMPANIES) as usize];
        let person = (mix(n ^ 3) % PEOPLE).min(mix(n ^ 5) % PEOPLE) as usize;
        let lead: ComplaintId = format!("L{n}").parse().expect("lead id");
        let registered = self.start + TimeDelta::minutes((n * 3) as i64);
        let at = registered + TimeDelta::hours((step * 20) as i64);
        let deadline = |seq: u32, kind: DeadlineKind, days: u32| Deadline {
            seq,
            kind,
            rule: kind.rule(),
            body: BodyCode::SJ,
            community: None,
            basis: DueBasis::Period { start: at, period: Period::Days(days) },
            due: at + TimeDelta::days(i64::from(days)),
            provisional: false,
            calendar: None,
        };
        let close = |seq: u32, kind: DeadlineKind| DeadlineClosure { seq, kind, how: ClosedHow::Met };
        let complaint = |fact: ComplaintFact, opens: Vec<Deadline>, closes: Vec<DeadlineClosure>| Payload::Complaint {
            lead: lead.clone(),
            event: Box::new(ComplaintEvent { at, fact, opens, closes }),
        };
        let enterprise = |fact: EnterpriseFact| Payload::Enterprise {
            uscc: company.clone(),
            event: Box::new(EnterpriseEvent { at, fact, opens: Vec::new(), closes: Vec::new() }),
        };
        let finding = if mix(n ^ 11).is_multiple_of(3) { Finding::Unsubstantiated } else { Finding::Substantiated };
        let payload = match step {
            0 => complaint(
                ComplaintFact::Registered {
                    id: lead.clone(),
                    registration: Registration {
                        channel: Channel::ALL[(n % 5) as usize],
                        received_at: at,
                        complainant: Complainant::Named {
                            name: format!("居民{person}"),
                            contact: format!("139{person:08}"),
                            id_number: None,
                        },
                        content: "电梯停运".to_owned(),
                        company: Some(CompanyRef { uscc: company.clone(), name: format!("物业{company}") }),
                        place: Place {
                            community: format!("小区{}", mix(n ^ 13) % 40),
                            district: format!("区{}", mix(n ^ 17) % DISTRICTS),
                            street: "街道".to_owned(),
                        },
                        hotline_ticket: None,
                    },
                    complainant_key: Some(self.keys[person].clone()),
                },
                vec![deadline(0, DeadlineKind::Transfer, 9)],
                Vec::new(),
            ),
            1 => enterprise(EnterpriseFact::ComplaintRecorded {
                uscc: company.clone(),
                company_name: format!("物业{company}"),
                lead: lead.clone(),
                complainant_key: Some(self.keys[person].clone()),
                registered_at: registered,
                community: format!("小区{}", mix(n ^ 13) % 40),
                linked_to: None,
            }),
            2 => complaint(
                ComplaintFact::Classified {
                    category: self.category.clone(),
                    body: BodyCode::SJ,
                    urgency: Urgency::Normal,
                    complexity: Complexity::General,
                    split_into: Vec::new(),
                },
                Vec::new(),
                Vec::new(),
            ),
            3 => complaint(
                ComplaintFact::Transferred {
                    to: BodyCode::SJ,
                    method: TransferMethod::System,
                    note: "转办".to_owned(),
                    street_office_informed: true,
                },
                vec![deadline(1, DeadlineKind::GeneralClose, 7)],
                vec![close(0, DeadlineKind::Transfer)],
            ),
            4 => complaint(ComplaintFact::Accepted { body: BodyCode::SJ }, Vec::new(), Vec::new()),
            5 => complaint(
                ComplaintFact::FindingRecorded {
                    finding,
                    summary: "核实".to_owned(),
                    attributable: Some(true),
                    attribution_reason: None,
                },
                Vec::new(),
                Vec::new(),
            ),
            6 => enterprise(EnterpriseFact::FindingRecorded {
                lead: lead.clone(),
                finding,
                attributable: true,
                found_at: at,
            }),
            7 => complaint(
                ComplaintFact::FeedbackGiven {
                    recipient: FeedbackRecipient::Complainant, content: "反馈".to_owned()
                },
                Vec::new(),
                Vec::new(),
            ),
            8 => complaint(
                ComplaintFact::ClosureSigned { body: BodyCode::SJ, opinion: "办结".to_owned() },
                Vec::new(),
                vec![close(1, DeadlineKind::GeneralClose)],
            ),
            9 => complaint(
                ComplaintFact::ClosureReviewed { body: BodyCode::SJ, outcome: ReviewOutcome::Cancelled },
                Vec::new(),
                Vec::new(),
            ),
            _ => Payload::Other,
        };
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&position.to_be_bytes());
        ProjectedEvent {
            position,
            stream: format!("complaint-{lead}"),
            revision: step,
            event_type: String::new(),
            recorded_at: at.with_timezone(&Utc),
            hash,
            actor_body: "SJ".to_owned(),
            payload,
        }
    }

    /// The log's events from `position` on, `count` of them: leads start in waves of
    /// `IN_FLIGHT`, each wave advancing one step at a time across its leads.
    fn batch(&self, from: u64, count: u64) -> Vec<ProjectedEvent> {
        (from..from + count)
            .map(|index| {
                let wave = index / (IN_FLIGHT * EVENTS_PER_LEAD);
                let within = index % (IN_FLIGHT * EVENTS_PER_LEAD);
                let (step, slot) = (within / IN_FLIGHT, within % IN_FLIGHT);
                self.event(wave * IN_FLIGHT + slot, step, index + 1)
            })
            .collect()
    }
}

fn database(model: &dyn ReadModel) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tousu-throughput-{}-{}.sqlite", model.name(), std::process::id()))
}

fn remove(model: &dyn ReadModel) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database(model).display()));
    }
}

fn build(model: &dyn ReadModel, city: &City, events: u64) -> (SqlConnection, Duration) {
    let path = database(model);
    remove(model);
    let mut connection = SqlConnection::sqlite(&path).expect("sqlite file");
    connection.transaction(|tx| tx.batch(&model.schema("m_"))).expect("schema");
    let mut writer = model.writer("m_");
    let mut spent = Duration::ZERO;
    let mut from = 0;
    while from < events {
        let count = (BATCH as u64).min(events - from);
        let batch = city.batch(from, count);
        let started = Instant::now();
        connection
            .transaction(|tx| -> Result<(), ProjectionError> { writer.apply(tx, &batch) })
            .expect("batch applies");
        spent += started.elapsed();
        from += count;
    }
    (connection, spent)
}

/// The watchlist's bulk builder over the same events: the time its folds take, and the time
/// its write into a fresh SQLite file takes.
fn build_in_memory(city: &City, events: u64) -> (Duration, Duration) {
    let path = std::env::temp_dir().join(format!("tousu-throughput-bulk-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut builder = Watchlist.bulk("m_").expect("the watchlist has a bulk builder");
    let mut folding = Duration::ZERO;
    let mut from = 0;
    while from < events {
        let count = (BATCH as u64).min(events - from);
        let batch = city.batch(from, count);
        let started = Instant::now();
        builder.fold(&batch).expect("batch folds");
        folding += started.elapsed();
        from += count;
    }
    let mut connection = SqlConnection::sqlite(&path).expect("sqlite file");
    connection.transaction(|tx| tx.batch(&Watchlist.schema("m_"))).expect("schema");
    let started = Instant::now();
    connection.transaction(|tx| -> Result<(), ProjectionError> { builder.write(tx) }).expect("tables written");
    let writing = started.elapsed();
    drop(connection);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    (folding, writing)
}

fn main() {
    let events: u64 = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let city = City::new();
    let mut watchlist = None;
    for model in [&Watchlist as &dyn ReadModel, &WeeklySummaryModel] {
        let (connection, spent) = build(model, &city, events);
        println!(
            "{:>15}: {events} events in {:.2} s: {:.0} events/s",
            model.name(),
            spent.as_secs_f64(),
            events as f64 / spent.as_secs_f64()
        );
        if model.name() == "watchlist" {
            watchlist = Some(connection);
        } else {
            drop(connection);
            remove(model);
        }
    }
    let (folding, writing) = build_in_memory(&city, events);
    println!(
        "{:>15}: {events} events folded in {:.2} s ({:.0} ns an event), tables written in {:.2} s",
        "watchlist bulk",
        folding.as_secs_f64(),
        folding.as_secs_f64() * 1e9 / events as f64,
        writing.as_secs_f64()
    );
    let mut connection = watchlist.expect("watchlist built");
    let policy = Policy::default();
    let last = city.start + TimeDelta::minutes((events / EVENTS_PER_LEAD * 3) as i64);
    let now = last.with_timezone(&shanghai());
    for (label, filter) in [
        ("watchlist, flagged", WatchlistFilter::default()),
        (
            "watchlist, every company",
            WatchlistFilter { scope: tousu_read_watchlist::Scope::Every, ..Default::default() },
        ),
    ] {
        let mut times = Vec::new();
        let mut entries = 0;
        for _ in 0..20 {
            let started = Instant::now();
            let page =
                connection.read(|tx| tousu_read_watchlist::query(tx, "m_", now, &filter, &policy)).expect("query");
            times.push(started.elapsed());
            entries = page.total;
        }
        times.sort();
        println!("{label:>26}: {entries} companies, median {:?}, max {:?}", times[10], times[19]);
    }
    let busiest = connection
        .read(|tx| tousu_read_watchlist::query(tx, "m_", now, &WatchlistFilter::default(), &policy))
        .expect("query")
        .entries
        .first()
        .map(|entry| entry.uscc.clone());
    if let Some(uscc) = busiest {
        let started = Instant::now();
        let detail = connection
            .read(|tx| tousu_read_watchlist::company(tx, "m_", &uscc, now, &policy))
            .expect("detail")
            .expect("on record");
        println!(
            "{:>26}: {} leads in the REG-4 window, {:?}",
            "company detail",
            detail.entry.leads_in_window,
            started.elapsed()
        );
    }
    drop(connection);
    remove(&Watchlist);
}
