//! The weekly summary built in memory, for a rebuild with the server stopped: events are folded
//! into maps shaped like the tables (one entry per lead with its row and open deadlines, one
//! per counter, company and anchored week) and each table is written once, in key order, at
//! the end.
//!
//! The fold is the writer's ([`crate::writer`]) statement for statement, with the tables kept
//! in memory instead of read back: the same facts count under the same keys, in the same order
//! within an event (receipt, then a recomputed due instant of interpretation 21, then the
//! deadlines the event closes, then its fact, then the deadlines it opens), with the same
//! guards, including the ones that make an event do less
//! than it says (a lead the log never registered, a deadline closed twice). Fixed names (a
//! channel, a body, a level, a metric) are kept as the domain's `Copy` enums and free text (a
//! district, a category, a company code) as an interned number, and both become text only in
//! [`BulkBuilder::write`]. The writer's tables do not depend on how the log was cut into
//! batches, so neither does the builder: it keeps everything between folds.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta};
use tousu_domain::calendar::shanghai;
use tousu_domain::complaint::{Channel, ComplaintEvent, ComplaintFact, Registration, ReviewOutcome};
use tousu_domain::deadline::{ClosedHow, DeadlineKind, EscalationLevel};
use tousu_domain::ids::BodyCode;
use tousu_domain::obligations::{EscalationFact, ReferralDecision};
use tousu_domain::reporting::reporting_week;
use tousu_projection::{BulkBuilder, Payload, ProjectedEvent, ProjectionError, SqlTx, Value};

use crate::writer::{ALL_DISTRICTS, HANDLING, UNCLASSIFIED, instant, metric, ms, needs_lead, week_end_ms, week_text};
use crate::{ANCHOR_ZERO, anchor_step, hex};

/// The number of an interned text: a district, a category or a company code.
type NameId = u32;

/// [`ALL_DISTRICTS`], interned first.
const ALL_DISTRICTS_ID: NameId = 0;

/// [`UNCLASSIFIED`] as a category, interned second.
const UNCLASSIFIED_ID: NameId = 1;

/// Free texts the tables repeat on many rows, each stored once and numbered.
struct Names {
    ids: HashMap<String, NameId>,
    texts: Vec<String>,
}

impl Names {
    fn new() -> Names {
        let mut names = Names { ids: HashMap::default(), texts: Vec::new() };
        let all_districts = names.id(ALL_DISTRICTS);
        let unclassified = names.id(UNCLASSIFIED);
        debug_assert_eq!((all_districts, unclassified), (ALL_DISTRICTS_ID, UNCLASSIFIED_ID));
        names
    }

    /// The number of `text`; allocates only for a text not seen before.
    fn id(&mut self, text: &str) -> NameId {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = NameId::try_from(self.texts.len()).expect("fewer than 2^32 distinct names");
        self.texts.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        id
    }

    fn text(&self, id: NameId) -> &str {
        &self.texts[id as usize]
    }
}

/// The counter metrics of [`metric`], as a `Copy` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Metric {
    Received,
    ReceivedLinked,
    ByChannel,
    ByCategory,
    ByBody,
    ByCompany,
    TransferredOnTime,
    TransferredLate,
    UrgentOnTime,
    UrgentLate,
    Closed,
    ClosedLate,
    Reopened,
    Escalated,
    EscalationWithdrawn,
    Returned,
    ReturnRejected,
    Referred,
    ReferralDismissed,
    Overdue,
    OverdueByCategory,
    OverdueByBody,
    OverdueProvisionalByBody,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::Received => metric::RECEIVED,
            Metric::ReceivedLinked => metric::RECEIVED_LINKED,
            Metric::ByChannel => metric::BY_CHANNEL,
            Metric::ByCategory => metric::BY_CATEGORY,
            Metric::ByBody => metric::BY_BODY,
            Metric::ByCompany => metric::BY_COMPANY,
            Metric::TransferredOnTime => metric::TRANSFERRED_ON_TIME,
            Metric::TransferredLate => metric::TRANSFERRED_LATE,
            Metric::UrgentOnTime => metric::URGENT_ON_TIME,
            Metric::UrgentLate => metric::URGENT_LATE,
            Metric::Closed => metric::CLOSED,
            Metric::ClosedLate => metric::CLOSED_LATE,
            Metric::Reopened => metric::REOPENED,
            Metric::Escalated => metric::ESCALATED,
            Metric::EscalationWithdrawn => metric::ESCALATION_WITHDRAWN,
            Metric::Returned => metric::RETURNED,
            Metric::ReturnRejected => metric::RETURN_REJECTED,
            Metric::Referred => metric::REFERRED,
            Metric::ReferralDismissed => metric::REFERRAL_DISMISSED,
            Metric::Overdue => metric::OVERDUE,
            Metric::OverdueByCategory => metric::OVERDUE_BY_CATEGORY,
            Metric::OverdueByBody => metric::OVERDUE_BY_BODY,
            Metric::OverdueProvisionalByBody => metric::OVERDUE_PROVISIONAL_BY_BODY,
        }
    }
}

/// A counter's key. Each metric uses one kind of key only, so two different keys of one
/// metric never read as the same text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// The empty key of totals.
    Total,
    /// A category or a company code.
    Name(NameId),
    /// A body; `None` is [`UNCLASSIFIED`].
    Body(Option<BodyCode>),
    Channel(Channel),
    Level(EscalationLevel),
}

/// A lead's body: `None` until classified ([`UNCLASSIFIED`]).
fn body_text(body: Option<BodyCode>) -> &'static str {
    body.map_or(UNCLASSIFIED, BodyCode::as_str)
}

/// Counter deltas summed over the whole log, by week, district, metric and key.
struct Counters {
    n: HashMap<(NaiveDate, NameId, Metric, Key), i64>,
}

impl Counters {
    /// The writer's `count`: the counter of `district` and the same counter of every district
    /// together. A registration naming the district `''` adds twice to one counter there too.
    fn add(&mut self, week: NaiveDate, district: NameId, metric: Metric, key: Key, delta: i64) {
        *self.n.entry((week, district, metric, key)).or_insert(0) += delta;
        *self.n.entry((week, ALL_DISTRICTS_ID, metric, key)).or_insert(0) += delta;
    }

    /// REG-3: a closed obligation counts as open and overdue at the end of every week whose
    /// end `E` has `opened_at < E`, `due < E` and `E <= closed_at`, under the lead's category
    /// as it stood before the closing event and the deadline's own body; and apart, where its
    /// due instant (as recomputed, if it was) is provisional (interpretation 21).
    fn overdue_week_ends(&mut self, lead: &LeadRow, deadline: &OpenDeadline, closed_at: i64) {
        let mut week = reporting_week(instant(deadline.opened_at.max(deadline.due)));
        while week_end_ms(week) <= closed_at {
            self.add(week, lead.district, Metric::Overdue, Key::Total, 1);
            self.add(week, lead.district, Metric::OverdueByCategory, Key::Name(lead.category), 1);
            self.add(week, lead.district, Metric::OverdueByBody, Key::Body(Some(deadline.body)), 1);
            if deadline.provisional {
                self.add(week, lead.district, Metric::OverdueProvisionalByBody, Key::Body(Some(deadline.body)), 1);
            }
            week += TimeDelta::days(7);
        }
    }
}

/// A row of `leads`.
#[derive(Debug, Clone, Copy)]
struct LeadRow {
    district: NameId,
    received_week: NaiveDate,
    category: NameId,
    body: Option<BodyCode>,
    uscc: NameId,
    open: bool,
}

/// A row of `deadlines`, without its lead.
#[derive(Debug, Clone, Copy)]
struct OpenDeadline {
    seq: u32,
    kind: DeadlineKind,
    body: BodyCode,
    opened_at: i64,
    due: i64,
    /// Interpretation 21: the due instant rests on the provisional calendar.
    provisional: bool,
}

/// Everything the tables hold about one lead id: its row, once received, and its open
/// deadlines. Deadlines can exist without a row: the writer opens the deadlines of an event
/// that needs no lead row even for a lead the log never registered.
#[derive(Debug, Default)]
struct LeadEntry {
    row: Option<LeadRow>,
    deadlines: OpenDeadlines,
}

/// A lead's open deadlines, in `seq` order (the order of the table's key).
#[derive(Debug, Default)]
struct OpenDeadlines(Vec<OpenDeadline>);

impl OpenDeadlines {
    /// Opens the event's deadlines. A `seq` already open is replaced, as within one of the
    /// writer's batches; across its batches it would be a duplicate key, which the domain's
    /// numbering of a stream's deadlines rules out.
    fn open(&mut self, event: &ComplaintEvent) {
        let opened_at = ms(event.at);
        for deadline in &event.opens {
            let open = OpenDeadline {
                seq: deadline.seq,
                kind: deadline.kind,
                body: deadline.body,
                opened_at,
                due: ms(deadline.due),
                provisional: deadline.provisional,
            };
            // New deadlines have the highest `seq` so far: this is nearly always a push.
            let index = self.0.partition_point(|kept| kept.seq < open.seq);
            match self.0.get_mut(index) {
                Some(kept) if kept.seq == open.seq => *kept = open,
                _ => self.0.insert(index, open),
            }
        }
    }

    /// Interpretation 21: the open deadline `seq` takes a recomputed due instant and flag;
    /// where none is open (never opened, or closed already), nothing changes.
    fn recompute(&mut self, seq: u32, due: i64, provisional: bool) {
        if let Some(kept) = self.0.iter_mut().find(|kept| kept.seq == seq) {
            (kept.due, kept.provisional) = (due, provisional);
        }
    }

    /// Closes the deadline `seq`: its row, or `None` when none is open (never opened, or
    /// closed already).
    fn close(&mut self, seq: u32) -> Option<OpenDeadline> {
        let index = self.0.iter().position(|kept| kept.seq == seq)?;
        Some(self.0.remove(index))
    }
}

/// A row of `anchors`: the history anchor after the last event recorded in `week`.
#[derive(Debug, Clone, Copy)]
struct AnchorRow {
    week: NaiveDate,
    position: u64,
    events: u64,
    anchor: [u8; 32],
}

/// The builder of one generation of the weekly summary.
pub struct WeeklyBulk {
    prefix: String,
    names: Names,
    leads: HashMap<String, LeadEntry>,
    counters: Counters,
    /// Company names by interned company code: the last registration's name.
    companies: HashMap<NameId, String>,
    /// One row per week, in week order; the last is the running anchor.
    anchors: Vec<AnchorRow>,
    /// When the last anchored week ends, in epoch milliseconds: an event recorded before it
    /// stays in that week without working out its own.
    anchored_week_end: i64,
    /// Interpretation 26: the issued weeks and their corrections.
    issued: crate::issued::IssuedTables,
}

/// How a lead came in: the writer's `received`.
struct Receipt<'e> {
    registration: &'e Registration,
    category: NameId,
    body: Option<BodyCode>,
    linked: bool,
}

impl WeeklyBulk {
    /// A builder for the tables with this prefix.
    pub fn new(prefix: &str) -> WeeklyBulk {
        WeeklyBulk {
            prefix: prefix.to_owned(),
            names: Names::new(),
            leads: HashMap::default(),
            counters: Counters { n: HashMap::default() },
            companies: HashMap::default(),
            anchors: Vec::new(),
            anchored_week_end: i64::MIN,
            issued: crate::issued::IssuedTables::default(),
        }
    }

    /// REG-3: extends the history anchor with an event, in the week it was recorded in, never
    /// an earlier week than one already seen (a clock stepped back).
    fn chain(&mut self, event: &ProjectedEvent) {
        let (previous, events) = self.anchors.last().map_or((&ANCHOR_ZERO, 0), |last| (&last.anchor, last.events));
        let anchor = anchor_step(previous, &event.hash);
        let events = events + 1;
        // Recorded before the last anchored week ends: in that week, or in an earlier one the
        // writer's `max` brings forward to it. Only an event recorded later starts a week.
        if let Some(last) = self.anchors.last_mut()
            && event.recorded_at.timestamp_millis() < self.anchored_week_end
        {
            *last = AnchorRow { week: last.week, position: event.position, events, anchor };
            return;
        }
        let week = reporting_week(event.recorded_at.with_timezone(&shanghai()));
        self.anchors.push(AnchorRow { week, position: event.position, events, anchor });
        self.anchored_week_end = week_end_ms(week);
    }

    fn complaint(&mut self, lead: &str, event: &ComplaintEvent) {
        let receipt = match &event.fact {
            ComplaintFact::Registered { registration, .. } => {
                Some(Receipt { registration, category: UNCLASSIFIED_ID, body: None, linked: false })
            }
            ComplaintFact::SplitFrom { registration, category, body, .. } => Some(Receipt {
                registration,
                category: self.names.id(category.as_str()),
                body: Some(*body),
                linked: true,
            }),
            _ => None,
        };
        if let Some(receipt) = receipt {
            self.receive(lead, event, &receipt);
        }
        // Interpretation 21: before anything else the event does, whether or not the lead has
        // a row, as the writer does.
        if let ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { seq, due, provisional, .. }) = &event.fact
            && let Some(entry) = self.leads.get_mut(lead)
        {
            entry.deadlines.recompute(*seq, ms(*due), *provisional);
        }
        let needs_lead = needs_lead(event);
        if !needs_lead {
            // The writer opens these deadlines whether or not the lead has a row.
            if !event.opens.is_empty() {
                match self.leads.get_mut(lead) {
                    Some(entry) => entry.deadlines.open(event),
                    None => self.leads.entry(lead.to_owned()).or_default().deadlines.open(event),
                }
            }
            return;
        }
        // A lead whose registration the log does not hold (it did not decode) is left out, and
        // so are the deadlines this event closes and opens: the writer returns before both.
        let Some(LeadEntry { row: Some(row), deadlines }) = self.leads.get_mut(lead) else { return };
        let at = ms(event.at);
        let (counters, names) = (&mut self.counters, &mut self.names);

        // The deadlines the event closes, against the lead's row before its fact: each
        // obligation's overdue week ends, and whether a deadline of a kind the fact answers
        // (the kind the event names) was met late. A deadline the event names that is not
        // open, never opened or closed already, counts for neither.
        let (mut transfer_late, mut urgent_late, mut handling_late) = (false, false, false);
        for closure in &event.closes {
            let Some(deadline) = deadlines.close(closure.seq) else { continue };
            counters.overdue_week_ends(row, &deadline, at);
            if closure.how == ClosedHow::Met && deadline.due < at {
                transfer_late |= closure.kind == DeadlineKind::Transfer;
                urgent_late |= closure.kind == DeadlineKind::UrgentNotify;
                handling_late |= HANDLING.contains(&closure.kind);
            }
        }
        let district = row.district;
        let week = || reporting_week(event.at);
        match &event.fact {
            ComplaintFact::Classified { category, body, .. } => {
                let category = names.id(category.as_str());
                if row.category != category || row.body != Some(*body) {
                    // TRF-3: the lead moves to its (new) category and body in the week it was
                    // received.
                    let received_week = row.received_week;
                    counters.add(received_week, district, Metric::ByCategory, Key::Name(row.category), -1);
                    counters.add(received_week, district, Metric::ByCategory, Key::Name(category), 1);
                    counters.add(received_week, district, Metric::ByBody, Key::Body(row.body), -1);
                    counters.add(received_week, district, Metric::ByBody, Key::Body(Some(*body)), 1);
                    row.category = category;
                    row.body = Some(*body);
                }
            }
            ComplaintFact::Transferred { .. } => {
                // TRF-2: late when the transfer comes after the deadline it closes.
                let metric = if transfer_late { Metric::TransferredLate } else { Metric::TransferredOnTime };
                counters.add(week(), district, metric, Key::Total, 1);
            }
            ComplaintFact::UrgentNotified { .. } => {
                // TRF-1: late when the notification comes after the deadline it closes.
                let metric = if urgent_late { Metric::UrgentLate } else { Metric::UrgentOnTime };
                counters.add(week(), district, metric, Key::Total, 1);
            }
            // HDL-3: a closure is complete with the handling body's signature, or for 住建's
            // own matters with the street office's countersignature; late after a met HDL-1 or
            // HDL-2 deadline.
            ComplaintFact::ClosureSigned { body, .. } if *body != BodyCode::ZJ => {
                close(counters, week(), district, handling_late);
                row.open = false;
            }
            ComplaintFact::ClosureCountersigned { .. } => {
                close(counters, week(), district, handling_late);
                row.open = false;
            }
            // HDL-3, interpretation 18: a closed lead handled again.
            ComplaintFact::ClosureReviewed { outcome: ReviewOutcome::SentBack { .. }, .. }
            | ComplaintFact::Reopened { .. }
                if !row.open =>
            {
                counters.add(week(), district, Metric::Reopened, Key::Total, 1);
                row.open = true;
            }
            ComplaintFact::TransferReturned { by, .. } => {
                counters.add(week(), district, Metric::Returned, Key::Body(Some(*by)), 1);
            }
            ComplaintFact::ReturnReviewed { accepted: false, body, .. } => {
                counters.add(week(), district, Metric::ReturnRejected, Key::Body(Some(*body)), 1);
            }
            // Interpretation 9: an official's decision on a recommendation to refer.
            ComplaintFact::Escalation(EscalationFact::ReferralDecided { decision, .. }) => {
                let metric = match decision {
                    ReferralDecision::Referred => Metric::Referred,
                    ReferralDecision::Dismissed => Metric::ReferralDismissed,
                };
                counters.add(week(), district, metric, Key::Total, 1);
            }
            // ACC-2.
            ComplaintFact::Escalation(EscalationFact::Escalated { level, .. }) => {
                counters.add(week(), district, Metric::Escalated, Key::Level(*level), 1);
            }
            // Interpretation 21: escalations withdrawn by a recomputed due instant count in the
            // week of the recomputation.
            ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { withdrawn_levels, .. }) => {
                for level in withdrawn_levels {
                    counters.add(week(), district, Metric::EscalationWithdrawn, Key::Level(*level), 1);
                }
            }
            _ => {}
        }
        deadlines.open(event);
    }

    /// REG-3: a lead received (registered, or opened as a linked lead) counts in the week of
    /// its event, and its row is written whole, replacing any row the lead had.
    fn receive(&mut self, lead: &str, event: &ComplaintEvent, receipt: &Receipt<'_>) {
        let registration = receipt.registration;
        let week = reporting_week(event.at);
        let district = self.names.id(&registration.place.district);
        // Interpretation 22: a lead naming no company keeps an empty code, as the writer's row.
        let uscc = self.names.id(registration.company.as_ref().map_or("", |company| company.uscc.as_str()));
        let counters = &mut self.counters;
        counters.add(week, district, Metric::Received, Key::Total, 1);
        if receipt.linked {
            counters.add(week, district, Metric::ReceivedLinked, Key::Total, 1);
        }
        counters.add(week, district, Metric::ByChannel, Key::Channel(registration.channel), 1);
        counters.add(week, district, Metric::ByCategory, Key::Name(receipt.category), 1);
        counters.add(week, district, Metric::ByBody, Key::Body(receipt.body), 1);
        if let Some(company) = &registration.company {
            counters.add(week, district, Metric::ByCompany, Key::Name(uscc), 1);
            let name = &company.name;
            match self.companies.get_mut(&uscc) {
                Some(kept) if *kept != *name => kept.clone_from(name),
                Some(_) => {}
                None => {
                    self.companies.insert(uscc, name.clone());
                }
            }
        }
        let row =
            LeadRow { district, received_week: week, category: receipt.category, body: receipt.body, uscc, open: true };
        match self.leads.get_mut(lead) {
            Some(entry) => entry.row = Some(row),
            None => {
                self.leads.insert(lead.to_owned(), LeadEntry { row: Some(row), deadlines: OpenDeadlines::default() });
            }
        }
    }
}

/// HDL-3: a completed closure, late or not.
fn close(counters: &mut Counters, week: NaiveDate, district: NameId, late: bool) {
    counters.add(week, district, Metric::Closed, Key::Total, 1);
    if late {
        counters.add(week, district, Metric::ClosedLate, Key::Total, 1);
    }
}

/// The text of each week, formatted once.
#[derive(Default)]
struct WeekTexts(HashMap<NaiveDate, String>);

impl WeekTexts {
    fn text(&mut self, week: NaiveDate) -> Value {
        Value::Text(Some(self.0.entry(week).or_insert_with(|| week_text(week)).clone()))
    }
}

impl BulkBuilder for WeeklyBulk {
    fn fold(&mut self, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            self.chain(event);
            match &event.payload {
                Payload::Complaint { lead, event: complaint } => self.complaint(lead.as_str(), complaint),
                Payload::Weekly { event: issued } => self.issued.fold(issued, event.position),
                _ => {}
            }
        }
        Ok(())
    }

    fn write(&self, tx: &mut dyn SqlTx) -> Result<(), ProjectionError> {
        let p = &self.prefix;
        let names = &self.names;

        let mut leads: Vec<(&str, &LeadEntry)> =
            self.leads.iter().map(|(lead, entry)| (lead.as_str(), entry)).collect();
        leads.sort_unstable_by_key(|(lead, _)| *lead);
        let mut weeks = WeekTexts::default();
        tx.insert_rows(
            &format!("{p}leads"),
            &["lead", "district", "received_week", "category", "body", "uscc", "open"],
            &mut leads.iter().filter_map(|(lead, entry)| {
                let row = entry.row.as_ref()?;
                Some(vec![
                    Value::text(*lead),
                    Value::text(names.text(row.district)),
                    weeks.text(row.received_week),
                    Value::text(names.text(row.category)),
                    Value::text(body_text(row.body)),
                    Value::text(names.text(row.uscc)),
                    Value::int(i64::from(row.open)),
                ])
            }),
        )?;
        tx.insert_rows(
            &format!("{p}deadlines"),
            &["lead", "seq", "kind", "body", "opened_at", "due", "provisional"],
            &mut leads.iter().flat_map(|(lead, entry)| {
                entry.deadlines.0.iter().map(move |deadline| {
                    vec![
                        Value::text(*lead),
                        Value::int(i64::from(deadline.seq)),
                        Value::text(deadline.kind.as_str()),
                        Value::text(deadline.body.as_str()),
                        Value::int(deadline.opened_at),
                        Value::int(deadline.due),
                        Value::int(i64::from(deadline.provisional)),
                    ]
                })
            }),
        )?;
        drop(leads);

        // The writer adds each batch's net change to a row and drops a row a negative change
        // brings to zero. No counter's sum ever falls below zero (a category or body is taken
        // back only from the counter the lead's receipt or last classification added to), so
        // whatever the batches, its table has a row exactly for each counter whose sum over
        // the log is not zero, holding that sum.
        let key_text = |key: Key| match key {
            Key::Total => "",
            Key::Name(id) => names.text(id),
            Key::Body(body) => body_text(body),
            Key::Channel(channel) => channel.as_str(),
            Key::Level(level) => level.as_str(),
        };
        let mut counters: Vec<(NaiveDate, &str, &str, &str, i64)> = self
            .counters
            .n
            .iter()
            .filter(|(_, n)| **n != 0)
            .map(|((week, district, metric, key), n)| (*week, names.text(*district), metric.name(), key_text(*key), *n))
            .collect();
        counters.sort_unstable_by(|a, b| (a.0, a.1, a.2, a.3).cmp(&(b.0, b.1, b.2, b.3)));
        tx.insert_rows(
            &format!("{p}counters"),
            &["week", "district", "metric", "key", "n"],
            &mut counters.iter().map(|(week, district, metric, key, n)| {
                vec![weeks.text(*week), Value::text(*district), Value::text(*metric), Value::text(*key), Value::int(*n)]
            }),
        )?;
        drop(counters);

        let mut companies: Vec<(&str, &String)> =
            self.companies.iter().map(|(uscc, name)| (names.text(*uscc), name)).collect();
        companies.sort_unstable_by_key(|(uscc, _)| *uscc);
        tx.insert_rows(
            &format!("{p}companies"),
            &["uscc", "name"],
            &mut companies.iter().map(|(uscc, name)| vec![Value::text(*uscc), Value::text(name.as_str())]),
        )?;

        tx.insert_rows(
            &format!("{p}anchors"),
            &["week", "position", "events", "anchor"],
            &mut self.anchors.iter().map(|row| {
                vec![
                    weeks.text(row.week),
                    Value::int(row.position as i64),
                    Value::int(row.events as i64),
                    Value::text(hex(&row.anchor)),
                ]
            }),
        )?;
        self.issued.write(tx, p)?;
        Ok(())
    }
}
