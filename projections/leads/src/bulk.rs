//! Builds a generation of `leads` in memory for a rebuild with the server stopped: each lead
//! becomes an entry holding what its rows in `leads`, `deadlines` and `receipts` would hold, and
//! the counts of DSP-1 a map per body and district; every table is written once at the end.
//!
//! The entries follow the writer statement by statement, in its order within an event, so the
//! tables come out row for row as the writer leaves them, down to its corners: a fact about a
//! lead without a row changes no row but still opens and closes its deadlines and records its
//! receipts; a receipt counts as received only where the lead has a row; an open count is taken
//! off only where a count row exists; a recomputed due (interpretation 21) changes a deadline
//! only where it has a row (is open), and the lead's earliest due instants only then.

use std::collections::HashMap;

use tousu_domain::complaint::{ComplaintEvent, ComplaintFact, Complexity, LeadStatus, ReviewOutcome, Urgency};
use tousu_domain::ids::{BodyCode, ComplaintId};
use tousu_domain::obligations::EscalationFact;
use tousu_projection::{BulkBuilder, Payload, ProjectedEvent, ProjectionError, SqlTx, Value};

use crate::millis;
use crate::writer::{complexity_name, earliest_opened, finding_name, moves_or_opens_or_closes, urgency_name};

/// A generation of `leads` being built in memory.
#[derive(Debug)]
pub struct LeadsBulk {
    prefix: String,
    leads: HashMap<String, Entry>,
    /// DSP-1: per body, then district.
    counts: HashMap<BodyCode, HashMap<String, Counts>>,
}

/// What the tables hold of one lead.
#[derive(Debug, Default)]
struct Entry {
    row: Option<Row>,
    /// Open deadlines: the rows of `deadlines`.
    deadlines: Vec<OpenDeadline>,
    /// The bodies that received the lead.
    receipts: Vec<BodyCode>,
}

/// A row of `deadlines`, without the lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct OpenDeadline {
    seq: u32,
    due: i64,
    /// Interpretation 21: the due instant was computed from the provisional calendar.
    provisional: bool,
}

impl Entry {
    fn earliest_due(&self) -> Option<i64> {
        self.deadlines.iter().map(|deadline| deadline.due).min()
    }

    /// Interpretation 21: the earliest due instant computed from official calendar data.
    fn earliest_official_due(&self) -> Option<i64> {
        self.deadlines.iter().filter(|deadline| !deadline.provisional).map(|deadline| deadline.due).min()
    }
}

/// A lead's row in `leads`.
#[derive(Debug)]
struct Row {
    status: LeadStatus,
    is_open: bool,
    channel: &'static str,
    category: Option<String>,
    handling_body: Option<BodyCode>,
    body: BodyCode,
    urgency: Option<Urgency>,
    complexity: Option<Complexity>,
    company: String,
    company_name: String,
    community: String,
    district: String,
    street: String,
    registered_at: i64,
    finding: Option<&'static str>,
    reopen_count: i64,
    return_count: i64,
    parent: Option<String>,
    earliest_due: Option<i64>,
    /// Interpretation 21: the earliest due instant of its open deadlines computed from official
    /// calendar data.
    earliest_official_due: Option<i64>,
    closed_at: Option<i64>,
}

/// A row of `counts`.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    received: i64,
    closed: i64,
    open: i64,
    /// Interpretation 27: returns 住建 rejected.
    buck_passing: i64,
}

impl LeadsBulk {
    /// A builder of the tables under `prefix`.
    pub fn new(prefix: &str) -> LeadsBulk {
        LeadsBulk { prefix: prefix.to_owned(), leads: HashMap::new(), counts: HashMap::new() }
    }

    fn apply_lead(&mut self, lead: &ComplaintId, event: &ComplaintEvent) {
        let entry = match self.leads.get_mut(lead.as_str()) {
            Some(entry) => entry,
            None => self.leads.entry(lead.as_str().to_owned()).or_default(),
        };
        for closure in &event.closes {
            entry.deadlines.retain(|open| open.seq != closure.seq);
        }
        for deadline in &event.opens {
            let opened =
                OpenDeadline { seq: deadline.seq, due: millis(deadline.due), provisional: deadline.provisional };
            match entry.deadlines.iter_mut().find(|open| open.seq == deadline.seq) {
                Some(open) => *open = opened,
                None => entry.deadlines.push(opened),
            }
        }
        // Interpretation 21: the writer's `recompute_deadline`, a change of the lead's deadlines
        // only where the deadline has a row.
        let mut recomputed = false;
        if let ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { seq, due, provisional, .. }) = &event.fact
            && let Some(open) = entry.deadlines.iter_mut().find(|open| open.seq == *seq)
        {
            open.due = millis(*due);
            open.provisional = *provisional;
            recomputed = true;
        }
        let deadlines_changed = !event.closes.is_empty() || !event.opens.is_empty() || recomputed;
        // DSP-1: as the writer, the row's open count is taken off before a fact that can move
        // or open or close the lead and put on again after it.
        let moves = moves_or_opens_or_closes(&event.fact);
        if moves && let Some(row) = entry.row.as_ref().filter(|row| row.is_open) {
            // An UPDATE: nothing where the count row does not exist.
            if let Some(counts) = self.counts.get_mut(&row.body).and_then(|bodies| bodies.get_mut(&row.district)) {
                counts.open -= 1;
            }
        }
        let (earliest_due, earliest_official_due) = (entry.earliest_due(), entry.earliest_official_due());
        // The writer's UPDATE of the lead's row: nothing where the lead has no row; the earliest
        // due instants recomputed where the event changed the lead's deadlines.
        let update = |entry: &mut Entry, change: &dyn Fn(&mut Row)| {
            if let Some(row) = entry.row.as_mut() {
                change(row);
                if deadlines_changed {
                    row.earliest_due = earliest_due;
                    row.earliest_official_due = earliest_official_due;
                }
            }
        };
        let updated = match &event.fact {
            ComplaintFact::Registered { registration, .. } | ComplaintFact::SplitFrom { registration, .. } => {
                let (status, registered_at, category, urgency, complexity, parent) = match &event.fact {
                    ComplaintFact::SplitFrom { parent, registered_at, category, urgency, complexity, .. } => (
                        LeadStatus::Classified,
                        millis(*registered_at),
                        Some(category.as_str().to_owned()),
                        Some(*urgency),
                        Some(*complexity),
                        Some(parent.as_str().to_owned()),
                    ),
                    _ => (LeadStatus::Registered, millis(event.at), None, None, None, None),
                };
                // An upsert that sets every column: the row starts over.
                entry.row = Some(Row {
                    status,
                    is_open: true,
                    channel: registration.channel.as_str(),
                    category,
                    handling_body: None,
                    body: BodyCode::ZJ,
                    urgency,
                    complexity,
                    // Interpretation 22: empty for a lead naming no company, as the writer has it.
                    company: registration.company.as_ref().map_or_else(String::new, |c| c.uscc.as_str().to_owned()),
                    company_name: registration.company.as_ref().map_or_else(String::new, |c| c.name.clone()),
                    community: registration.place.community.clone(),
                    district: registration.place.district.clone(),
                    street: registration.place.street.clone(),
                    registered_at,
                    finding: None,
                    reopen_count: 0,
                    return_count: 0,
                    parent,
                    earliest_due: earliest_opened(event, false),
                    earliest_official_due: earliest_opened(event, true),
                    closed_at: None,
                });
                receive(&mut self.counts, entry, BodyCode::ZJ);
                true
            }
            ComplaintFact::Classified { category, urgency, complexity, .. } => {
                update(entry, &|row| {
                    row.status = LeadStatus::Classified;
                    row.category = Some(category.as_str().to_owned());
                    row.urgency = Some(*urgency);
                    row.complexity = Some(*complexity);
                });
                true
            }
            ComplaintFact::Transferred { to: body, .. } | ComplaintFact::UrgentNotified { handling_body: body, .. } => {
                update(entry, &|row| {
                    row.status = LeadStatus::Transferred;
                    row.handling_body = Some(*body);
                    row.body = *body;
                });
                receive(&mut self.counts, entry, *body);
                true
            }
            ComplaintFact::Accepted { .. } => {
                update(entry, &|row| row.status = LeadStatus::Handling);
                true
            }
            ComplaintFact::TransferReturned { .. } => {
                update(entry, &|row| {
                    row.status = LeadStatus::Returned;
                    row.handling_body = None;
                    row.body = BodyCode::ZJ;
                    row.return_count += 1;
                });
                true
            }
            ComplaintFact::ReturnReviewed { accepted: false, body, handling, .. } => {
                let status = if *handling { LeadStatus::Handling } else { LeadStatus::Transferred };
                update(entry, &|row| {
                    row.status = status;
                    row.handling_body = Some(*body);
                    row.body = *body;
                });
                // The writer's INSERT … SELECT from the lead's row: nothing where it has none.
                if let Some(row) = entry.row.as_ref() {
                    counts_of(&mut self.counts, *body, &row.district).buck_passing += 1;
                }
                true
            }
            ComplaintFact::Regraded { .. } => {
                update(entry, &|row| row.complexity = Some(Complexity::Major));
                true
            }
            ComplaintFact::FindingRecorded { finding, .. } => {
                update(entry, &|row| row.finding = Some(finding_name(*finding)));
                true
            }
            // HDL-3: a matter 住建 handles directly is closed by the countersignature.
            ComplaintFact::ClosureSigned { body, .. } if *body == BodyCode::ZJ => false,
            ComplaintFact::ClosureSigned { .. } | ComplaintFact::ClosureCountersigned { .. } => {
                let closed_at = millis(event.at);
                update(entry, &|row| {
                    row.status = LeadStatus::Closed;
                    row.is_open = false;
                    row.closed_at = Some(closed_at);
                });
                count_closed(&mut self.counts, entry, 1);
                true
            }
            ComplaintFact::ClosureReviewed { outcome: ReviewOutcome::Cancelled, .. } => {
                update(entry, &|row| row.status = LeadStatus::Cancelled);
                true
            }
            ComplaintFact::ClosureReviewed { outcome: ReviewOutcome::SentBack { .. }, .. } => {
                update(entry, &|row| {
                    row.status = LeadStatus::Handling;
                    row.is_open = true;
                });
                count_closed(&mut self.counts, entry, -1);
                true
            }
            ComplaintFact::Reopened { count } => {
                update(entry, &|row| {
                    row.status = LeadStatus::Handling;
                    row.is_open = true;
                    row.reopen_count = i64::from(*count);
                });
                count_closed(&mut self.counts, entry, -1);
                true
            }
            _ => false,
        };
        if moves && let Some(row) = entry.row.as_ref().filter(|row| row.is_open) {
            let bodies = self.counts.entry(row.body).or_default();
            match bodies.get_mut(&row.district) {
                Some(counts) => counts.open += 1,
                None => {
                    bodies.insert(row.district.clone(), Counts { open: 1, ..Counts::default() });
                }
            }
        }
        if deadlines_changed
            && !updated
            && let Some(row) = entry.row.as_mut()
        {
            row.earliest_due = earliest_due;
            row.earliest_official_due = earliest_official_due;
        }
    }
}

/// The count of a body and district, made where there is none yet.
fn counts_of<'a>(
    counts: &'a mut HashMap<BodyCode, HashMap<String, Counts>>,
    body: BodyCode,
    district: &str,
) -> &'a mut Counts {
    let bodies = counts.entry(body).or_default();
    if !bodies.contains_key(district) {
        bodies.insert(district.to_owned(), Counts::default());
    }
    bodies.get_mut(district).expect("just made")
}

/// DSP-1: `body` received the lead: one receipt per lead and body, counted as received in the
/// lead's district where the lead has a row (the writer's `INSERT … SELECT` from it).
fn receive(counts: &mut HashMap<BodyCode, HashMap<String, Counts>>, entry: &mut Entry, body: BodyCode) {
    if entry.receipts.contains(&body) {
        return;
    }
    entry.receipts.push(body);
    if let Some(row) = &entry.row {
        counts_of(counts, body, &row.district).received += 1;
    }
}

/// DSP-1: the lead was closed (`delta` 1) or reopened (-1), counted for its responsible body
/// and district where the lead has a row.
fn count_closed(counts: &mut HashMap<BodyCode, HashMap<String, Counts>>, entry: &Entry, delta: i64) {
    if let Some(row) = &entry.row {
        counts_of(counts, row.body, &row.district).closed += delta;
    }
}

fn text(value: Option<&str>) -> Value {
    Value::Text(value.map(str::to_owned))
}

impl BulkBuilder for LeadsBulk {
    fn fold(&mut self, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            if let Payload::Complaint { lead, event: complaint } = &event.payload {
                self.apply_lead(lead, complaint);
            }
        }
        Ok(())
    }

    fn write(&self, tx: &mut dyn SqlTx) -> Result<(), ProjectionError> {
        let p = &self.prefix;
        // In key order: SQLite builds each table's primary-key index fastest so.
        let mut leads: Vec<(&String, &Entry)> = self.leads.iter().collect();
        leads.sort_unstable_by_key(|(lead, _)| *lead);
        let rows = leads.iter().filter_map(|(lead, entry)| entry.row.as_ref().map(|row| (lead, row)));
        tx.insert_rows(
            &format!("{p}leads"),
            &[
                "lead",
                "status",
                "is_open",
                "channel",
                "category",
                "handling_body",
                "body",
                "urgency",
                "complexity",
                "company",
                "company_name",
                "community",
                "district",
                "street",
                "registered_at",
                "finding",
                "reopen_count",
                "return_count",
                "parent",
                "earliest_due",
                "earliest_official_due",
                "closed_at",
            ],
            &mut rows.map(|(lead, row)| {
                vec![
                    Value::text(lead.as_str()),
                    Value::text(row.status.as_str()),
                    Value::int(i64::from(row.is_open)),
                    Value::text(row.channel),
                    text(row.category.as_deref()),
                    text(row.handling_body.map(|body| body.as_str())),
                    Value::text(row.body.as_str()),
                    text(row.urgency.map(urgency_name)),
                    text(row.complexity.map(complexity_name)),
                    Value::text(row.company.as_str()),
                    Value::text(row.company_name.as_str()),
                    Value::text(row.community.as_str()),
                    Value::text(row.district.as_str()),
                    Value::text(row.street.as_str()),
                    Value::int(row.registered_at),
                    text(row.finding),
                    Value::int(row.reopen_count),
                    Value::int(row.return_count),
                    text(row.parent.as_deref()),
                    Value::Int(row.earliest_due),
                    Value::Int(row.earliest_official_due),
                    Value::Int(row.closed_at),
                ]
            }),
        )?;
        let mut deadlines = leads.iter().flat_map(|(lead, entry)| {
            let mut open = entry.deadlines.clone();
            open.sort_unstable();
            open.into_iter().map(|open| {
                vec![
                    Value::text(lead.as_str()),
                    Value::int(i64::from(open.seq)),
                    Value::int(open.due),
                    Value::int(i64::from(open.provisional)),
                ]
            })
        });
        tx.insert_rows(&format!("{p}deadlines"), &["lead", "seq", "due", "provisional"], &mut deadlines)?;
        let mut receipts = leads.iter().flat_map(|(lead, entry)| {
            let mut bodies: Vec<&str> = entry.receipts.iter().map(|body| body.as_str()).collect();
            bodies.sort_unstable();
            bodies.into_iter().map(|body| vec![Value::text(lead.as_str()), Value::text(body)])
        });
        tx.insert_rows(&format!("{p}receipts"), &["lead", "body"], &mut receipts)?;
        let mut counts: Vec<(&str, &str, Counts)> = self
            .counts
            .iter()
            .flat_map(|(body, districts)| {
                districts.iter().map(|(district, counts)| (body.as_str(), district.as_str(), *counts))
            })
            .collect();
        counts.sort_unstable_by_key(|(body, district, _)| (*body, *district));
        tx.insert_rows(
            &format!("{p}counts"),
            &["body", "district", "received", "closed", "open", "buck_passing"],
            &mut counts.into_iter().map(|(body, district, counts)| {
                vec![
                    Value::text(body),
                    Value::text(district),
                    Value::int(counts.received),
                    Value::int(counts.closed),
                    Value::int(counts.open),
                    Value::int(counts.buck_passing),
                ]
            }),
        )?;
        Ok(())
    }
}
