//! Applies events to the weekly summary's tables.
//!
//! A batch is folded into net changes in memory — counter deltas per week, district (and for
//! every district together), metric and key; one row per lead touched; deadlines opened and closed; the anchor after the last
//! event of each week — and written at the end with a few prepared statements per changed row.
//! The running anchor is read from its table at the start of every batch, and nothing else is
//! kept between batches, so a batch whose transaction rolls back leaves no trace in the writer.
//!
//! A recomputed due instant (interpretation 21) is applied before anything else the event
//! does, whether or not the lead has a row: a deadline opened in the batch takes it before it
//! is inserted, one closed in the batch stays closed, and any other is updated in the table at
//! once (changing nothing where there is no row), so that a later closing in the batch reads
//! the new due instant.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};
use tousu_domain::calendar::shanghai;
use tousu_domain::complaint::{ComplaintEvent, ComplaintFact, ReviewOutcome};
use tousu_domain::deadline::{ClosedHow, DeadlineKind};
use tousu_domain::ids::BodyCode;
use tousu_domain::obligations::{EscalationFact, ReferralDecision};
use tousu_domain::reporting::reporting_week;
use tousu_projection::{ModelWriter, Payload, ProjectedEvent, ProjectionError, SqlError, SqlTx, Value};

use crate::{anchor_step, hex};

/// Counter metrics. Keys are empty for totals unless said otherwise.
pub(crate) mod metric {
    /// Leads received (registered, or opened as a linked lead).
    pub const RECEIVED: &str = "received";
    /// Of those, linked leads split off a complaint.
    pub const RECEIVED_LINKED: &str = "received_linked";
    /// Leads received, by channel.
    pub const BY_CHANNEL: &str = "received_channel";
    /// Leads received, by category (`unclassified` until classified).
    pub const BY_CATEGORY: &str = "received_category";
    /// Leads received, by responsible body (`unclassified` until classified).
    pub const BY_BODY: &str = "received_body";
    /// Leads received, by company code.
    pub const BY_COMPANY: &str = "received_company";
    /// Transfers meeting their TRF-2 deadline.
    pub const TRANSFERRED_ON_TIME: &str = "transferred_on_time";
    /// Transfers after their TRF-2 deadline.
    pub const TRANSFERRED_LATE: &str = "transferred_late";
    /// Urgent notifications meeting their TRF-1 deadline.
    pub const URGENT_ON_TIME: &str = "urgent_notified_on_time";
    /// Urgent notifications after their TRF-1 deadline.
    pub const URGENT_LATE: &str = "urgent_notified_late";
    /// Closures completed.
    pub const CLOSED: &str = "closed";
    /// Of those, closures after a handling deadline they met.
    pub const CLOSED_LATE: &str = "closed_late";
    /// Closed leads handled again: a closure sent back, or a reopening (interpretation 18).
    pub const REOPENED: &str = "reopened";
    /// Escalations, by level.
    pub const ESCALATED: &str = "escalated";
    /// Escalations withdrawn by a recomputed due instant (interpretation 21), by level, in the
    /// week of the recomputation: the week the escalation was recorded in keeps its count.
    pub const ESCALATION_WITHDRAWN: &str = "escalation_withdrawn";
    /// Transfers returned as misrouted, by the returning body.
    pub const RETURNED: &str = "returned";
    /// Interpretation 27: returns 住建 rejected on review (buck-passing, 推诿), by the body that
    /// returned the transfer, in the week of the review.
    pub const RETURN_REJECTED: &str = "return_rejected";
    /// Interpretation 9: recommendations to refer that a 住建 official referred in the week.
    pub const REFERRED: &str = "referred";
    /// Interpretation 9: recommendations to refer that a 住建 official dismissed in the week.
    pub const REFERRAL_DISMISSED: &str = "referral_dismissed";
    /// Closed obligations that were open and overdue at the week's end.
    pub const OVERDUE: &str = "overdue";
    /// The same, by the lead's category.
    pub const OVERDUE_BY_CATEGORY: &str = "overdue_category";
    /// The same, by the obligation's responsible body.
    pub const OVERDUE_BY_BODY: &str = "overdue_body";
    /// Of those, the obligations whose due instant was provisional (interpretation 21), by the
    /// obligation's responsible body.
    pub const OVERDUE_PROVISIONAL_BY_BODY: &str = "overdue_provisional_body";
}

/// The district of the counters of every district together (no district is named so: a
/// registration's place names one).
pub(crate) const ALL_DISTRICTS: &str = "";

/// The category and body of a lead not yet classified.
pub(crate) const UNCLASSIFIED: &str = "unclassified";

/// The writer of one generation of the weekly summary.
pub struct WeeklyWriter {
    sql: Statements,
    /// Interpretation 26: the inserts of an issued week and of its corrections.
    issued: (String, String),
}

impl WeeklyWriter {
    /// A writer for the tables with this prefix.
    pub fn new(prefix: &str) -> WeeklyWriter {
        WeeklyWriter { sql: Statements::new(prefix), issued: crate::issued::insert_statements(prefix) }
    }
}

struct Statements {
    select_lead: String,
    upsert_lead: String,
    update_lead: String,
    select_deadline: String,
    insert_deadline: String,
    delete_deadline: String,
    recompute_deadline: String,
    add_counter: String,
    delete_zero_counter: String,
    upsert_company: String,
    select_anchor: String,
    upsert_anchor: String,
}

impl Statements {
    fn new(p: &str) -> Statements {
        Statements {
            select_lead: format!(
                "SELECT district, received_week, category, body, uscc, open FROM {p}leads WHERE lead = $1"
            ),
            upsert_lead: format!(
                "INSERT INTO {p}leads (lead, district, received_week, category, body, uscc, open)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (lead) DO UPDATE SET district = excluded.district,
                     received_week = excluded.received_week, category = excluded.category, body = excluded.body,
                     uscc = excluded.uscc, open = excluded.open"
            ),
            update_lead: format!("UPDATE {p}leads SET category = $2, body = $3, open = $4 WHERE lead = $1"),
            select_deadline: format!(
                "SELECT kind, body, opened_at, due, provisional FROM {p}deadlines WHERE lead = $1 AND seq = $2"
            ),
            insert_deadline: format!(
                "INSERT INTO {p}deadlines (lead, seq, kind, body, opened_at, due, provisional)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            delete_deadline: format!("DELETE FROM {p}deadlines WHERE lead = $1 AND seq = $2"),
            recompute_deadline: format!(
                "UPDATE {p}deadlines SET due = $3, provisional = $4 WHERE lead = $1 AND seq = $2"
            ),
            add_counter: format!(
                "INSERT INTO {p}counters (week, district, metric, key, n) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (week, district, metric, key) DO UPDATE SET n = {p}counters.n + excluded.n"
            ),
            delete_zero_counter: format!(
                "DELETE FROM {p}counters WHERE week = $1 AND district = $2 AND metric = $3 AND key = $4 AND n = 0"
            ),
            upsert_company: format!(
                "INSERT INTO {p}companies (uscc, name) VALUES ($1, $2)
                 ON CONFLICT (uscc) DO UPDATE SET name = excluded.name"
            ),
            select_anchor: format!("SELECT week, position, events, anchor FROM {p}anchors ORDER BY week DESC LIMIT 1"),
            upsert_anchor: format!(
                "INSERT INTO {p}anchors (week, position, events, anchor) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (week) DO UPDATE SET position = excluded.position, events = excluded.events,
                     anchor = excluded.anchor"
            ),
        }
    }
}

/// A lead as the summary needs it.
#[derive(Debug, Clone)]
struct LeadRow {
    district: String,
    received_week: NaiveDate,
    category: String,
    body: String,
    uscc: String,
    open: bool,
}

/// A lead in the batch: as loaded (or created), and whether it changed.
struct CachedLead {
    row: Option<LeadRow>,
    state: LeadState,
}

/// What the batch did to a lead's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeadState {
    /// As stored.
    Clean,
    /// Received in this batch: the row is written whole.
    Created,
    /// Classified, closed or reopened: its category, body and open flag are updated.
    Changed,
}

/// An open deadline of a lead.
#[derive(Debug, Clone)]
struct DeadlineRow {
    kind: String,
    body: String,
    opened_at: i64,
    due: i64,
    /// Interpretation 21: the due instant rests on the provisional calendar.
    provisional: bool,
}

/// A deadline in the batch.
enum CachedDeadline {
    /// Open; `stored` when the table holds it.
    Open { row: DeadlineRow, stored: bool },
    /// Closed in this batch; `stored` when the table holds it (and must lose it).
    Closed { stored: bool },
}

/// The history anchor after an event.
#[derive(Debug, Clone, Copy)]
struct AnchorState {
    week: Option<NaiveDate>,
    position: u64,
    events: u64,
    anchor: [u8; 32],
}

/// The net changes of one batch.
struct Batch<'s> {
    sql: &'s Statements,
    leads: HashMap<String, CachedLead>,
    deadlines: HashMap<(String, u32), CachedDeadline>,
    counters: HashMap<(NaiveDate, String, &'static str, String), i64>,
    companies: HashMap<String, String>,
    anchor: AnchorState,
    anchors: BTreeMap<NaiveDate, AnchorState>,
}

pub(crate) fn ms(at: DateTime<FixedOffset>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn week_text(week: NaiveDate) -> String {
    week.format("%Y-%m-%d").to_string()
}

/// The instant a week ends: the next Monday 00:00 in Shanghai, in epoch milliseconds.
pub(crate) fn week_end_ms(week: NaiveDate) -> i64 {
    let monday = week + TimeDelta::days(7);
    monday.and_hms_opt(0, 0, 0).map_or(i64::MAX, |midnight| {
        midnight.and_local_timezone(shanghai()).single().map_or(i64::MAX, |instant| instant.timestamp_millis())
    })
}

pub(crate) fn instant(ms: i64) -> DateTime<FixedOffset> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&shanghai())
}

fn decode_anchor(text: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(bytes)
}

impl<'s> Batch<'s> {
    fn start(tx: &mut dyn SqlTx, sql: &'s Statements) -> Result<Batch<'s>, ProjectionError> {
        let rows = tx.query(&sql.select_anchor, &[])?;
        let anchor = match rows.first() {
            Some(row) => {
                let text = row[3].as_str().unwrap_or_default();
                AnchorState {
                    week: row[0].as_str().and_then(|week| week.parse().ok()),
                    position: row[1].as_i64().unwrap_or(0) as u64,
                    events: row[2].as_i64().unwrap_or(0) as u64,
                    anchor: decode_anchor(text).ok_or_else(|| ProjectionError::Event {
                        position: row[1].as_i64().unwrap_or(0) as u64,
                        reason: format!("stored history anchor {text:?} is not 32 bytes of hex"),
                    })?,
                }
            }
            None => AnchorState { week: None, position: 0, events: 0, anchor: crate::ANCHOR_ZERO },
        };
        Ok(Batch {
            sql,
            leads: HashMap::new(),
            deadlines: HashMap::new(),
            counters: HashMap::new(),
            companies: HashMap::new(),
            anchor,
            anchors: BTreeMap::new(),
        })
    }

    /// Extends the history anchor with an event, in the week it was recorded in (never an
    /// earlier week than one already seen).
    fn chain(&mut self, event: &ProjectedEvent) {
        let recorded_week = reporting_week(event.recorded_at.with_timezone(&shanghai()));
        let week = self.anchor.week.map_or(recorded_week, |seen| seen.max(recorded_week));
        self.anchor = AnchorState {
            week: Some(week),
            position: event.position,
            events: self.anchor.events + 1,
            anchor: anchor_step(&self.anchor.anchor, &event.hash),
        };
        self.anchors.insert(week, self.anchor);
    }

    /// Adds `delta` to a counter of `district` and to the same counter of every district
    /// together ([`ALL_DISTRICTS`]), so that the city-wide summary reads one row per metric
    /// and key instead of summing every district's.
    fn count(&mut self, week: NaiveDate, district: &str, metric: &'static str, key: &str, delta: i64) {
        *self.counters.entry((week, district.to_owned(), metric, key.to_owned())).or_insert(0) += delta;
        *self.counters.entry((week, ALL_DISTRICTS.to_owned(), metric, key.to_owned())).or_insert(0) += delta;
    }

    fn lead(&mut self, tx: &mut dyn SqlTx, lead: &str) -> Result<Option<LeadRow>, SqlError> {
        if let Some(cached) = self.leads.get(lead) {
            return Ok(cached.row.clone());
        }
        let rows = tx.query(&self.sql.select_lead, &[Value::text(lead)])?;
        let row = rows.first().map(|row| LeadRow {
            district: row[0].as_str().unwrap_or_default().to_owned(),
            received_week: row[1].as_str().and_then(|week| week.parse().ok()).unwrap_or_default(),
            category: row[2].as_str().unwrap_or_default().to_owned(),
            body: row[3].as_str().unwrap_or_default().to_owned(),
            uscc: row[4].as_str().unwrap_or_default().to_owned(),
            open: row[5].as_i64() == Some(1),
        });
        self.leads.insert(lead.to_owned(), CachedLead { row: row.clone(), state: LeadState::Clean });
        Ok(row)
    }

    fn save_lead(&mut self, lead: &str, row: LeadRow) {
        self.leads.insert(lead.to_owned(), CachedLead { row: Some(row), state: LeadState::Created });
    }

    /// A deadline being closed: its row, from the batch or the table.
    fn close_deadline(&mut self, tx: &mut dyn SqlTx, lead: &str, seq: u32) -> Result<Option<DeadlineRow>, SqlError> {
        let key = (lead.to_owned(), seq);
        let (row, stored) = match self.deadlines.remove(&key) {
            Some(CachedDeadline::Open { row, stored }) => (Some(row), stored),
            Some(CachedDeadline::Closed { stored }) => (None, stored),
            None => {
                let rows = tx.query(&self.sql.select_deadline, &[Value::text(lead), Value::int(i64::from(seq))])?;
                let row = rows.first().map(|row| DeadlineRow {
                    kind: row[0].as_str().unwrap_or_default().to_owned(),
                    body: row[1].as_str().unwrap_or_default().to_owned(),
                    opened_at: row[2].as_i64().unwrap_or(0),
                    due: row[3].as_i64().unwrap_or(0),
                    provisional: row[4].as_i64() == Some(1),
                });
                let stored = row.is_some();
                (row, stored)
            }
        };
        self.deadlines.insert(key, CachedDeadline::Closed { stored });
        Ok(row)
    }

    /// Interpretation 21: a deadline's due instant recomputed. Where the batch holds the
    /// deadline open it takes the new due and flag (and the table too, if it holds the row);
    /// where the batch closed it nothing changes; otherwise the table's row, if any, is updated
    /// now, so that a closing later in the batch reads it.
    fn recompute_deadline(
        &mut self,
        tx: &mut dyn SqlTx,
        lead: &str,
        seq: u32,
        due: i64,
        provisional: bool,
    ) -> Result<(), SqlError> {
        let update_stored = match self.deadlines.get_mut(&(lead.to_owned(), seq)) {
            Some(CachedDeadline::Open { row, stored }) => {
                (row.due, row.provisional) = (due, provisional);
                *stored
            }
            Some(CachedDeadline::Closed { .. }) => false,
            None => true,
        };
        if update_stored {
            let params =
                [Value::text(lead), Value::int(i64::from(seq)), Value::int(due), Value::int(i64::from(provisional))];
            tx.execute(&self.sql.recompute_deadline, &params)?;
        }
        Ok(())
    }

    fn complaint(&mut self, tx: &mut dyn SqlTx, lead: &str, event: &ComplaintEvent) -> Result<(), SqlError> {
        let at = event.at;
        let week = reporting_week(at);
        let received = match &event.fact {
            ComplaintFact::Registered { registration, .. } => {
                Some((registration, UNCLASSIFIED.to_owned(), UNCLASSIFIED.to_owned(), false))
            }
            ComplaintFact::SplitFrom { registration, category, body, .. } => {
                Some((registration, category.as_str().to_owned(), body.as_str().to_owned(), true))
            }
            _ => None,
        };
        if let Some((registration, category, body, linked)) = received {
            let district = registration.place.district.as_str();
            // Interpretation 22: a lead naming no company is counted by no company (its row
            // keeps an empty code).
            let uscc = registration.company.as_ref().map_or("", |company| company.uscc.as_str());
            self.count(week, district, metric::RECEIVED, "", 1);
            if linked {
                self.count(week, district, metric::RECEIVED_LINKED, "", 1);
            }
            self.count(week, district, metric::BY_CHANNEL, registration.channel.as_str(), 1);
            self.count(week, district, metric::BY_CATEGORY, &category, 1);
            self.count(week, district, metric::BY_BODY, &body, 1);
            if let Some(company) = &registration.company {
                self.count(week, district, metric::BY_COMPANY, uscc, 1);
                self.companies.insert(uscc.to_owned(), company.name.clone());
            }
            let row = LeadRow {
                district: district.to_owned(),
                received_week: week,
                category,
                body,
                uscc: uscc.to_owned(),
                open: true,
            };
            self.save_lead(lead, row);
        }
        if let ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { seq, due, provisional, .. }) = &event.fact
        {
            self.recompute_deadline(tx, lead, *seq, ms(*due), *provisional)?;
        }
        let needs_lead = needs_lead(event);
        if !needs_lead {
            self.open_deadlines(lead, event);
            return Ok(());
        }
        // A lead whose registration the log does not hold (it did not decode) is left out.
        let Some(mut row) = self.lead(tx, lead)? else { return Ok(()) };
        let district = row.district.clone();
        let mut changed = false;

        // Deadlines this event closes: what the facts below compare with, and each obligation's
        // overdue week ends.
        let mut closed = Vec::with_capacity(event.closes.len());
        for closure in &event.closes {
            if let Some(deadline) = self.close_deadline(tx, lead, closure.seq)? {
                self.overdue_week_ends(&row, &deadline, ms(at));
                closed.push((closure.kind, closure.how, deadline));
            }
        }
        let late = |kinds: &[DeadlineKind]| {
            closed
                .iter()
                .any(|(kind, how, deadline)| kinds.contains(kind) && *how == ClosedHow::Met && deadline.due < ms(at))
        };
        match &event.fact {
            ComplaintFact::Classified { category, body, .. }
                if row.category != category.as_str() || row.body != body.as_str() =>
            {
                // The lead moves to its (new) category and body in the week it was received.
                let received_week = row.received_week;
                self.count(received_week, &district, metric::BY_CATEGORY, &row.category, -1);
                self.count(received_week, &district, metric::BY_CATEGORY, category.as_str(), 1);
                self.count(received_week, &district, metric::BY_BODY, &row.body, -1);
                self.count(received_week, &district, metric::BY_BODY, body.as_str(), 1);
                row.category = category.as_str().to_owned();
                row.body = body.as_str().to_owned();
                changed = true;
            }
            ComplaintFact::Transferred { .. } => {
                // TRF-2: late when the transfer comes after the deadline it closes.
                let metric = if late(&[DeadlineKind::Transfer]) {
                    metric::TRANSFERRED_LATE
                } else {
                    metric::TRANSFERRED_ON_TIME
                };
                self.count(week, &district, metric, "", 1);
            }
            ComplaintFact::UrgentNotified { .. } => {
                let metric =
                    if late(&[DeadlineKind::UrgentNotify]) { metric::URGENT_LATE } else { metric::URGENT_ON_TIME };
                self.count(week, &district, metric, "", 1);
            }
            ComplaintFact::ClosureSigned { body, .. } if *body != BodyCode::ZJ => {
                self.closure(week, &district, late(&HANDLING));
                row.open = false;
                changed = true;
            }
            ComplaintFact::ClosureCountersigned { .. } => {
                self.closure(week, &district, late(&HANDLING));
                row.open = false;
                changed = true;
            }
            ComplaintFact::ClosureReviewed { outcome: ReviewOutcome::SentBack { .. }, .. }
            | ComplaintFact::Reopened { .. }
                if !row.open =>
            {
                self.count(week, &district, metric::REOPENED, "", 1);
                row.open = true;
                changed = true;
            }
            ComplaintFact::TransferReturned { by, .. } => self.count(week, &district, metric::RETURNED, by.as_str(), 1),
            ComplaintFact::ReturnReviewed { accepted: false, body, .. } => {
                self.count(week, &district, metric::RETURN_REJECTED, body.as_str(), 1);
            }
            ComplaintFact::Escalation(EscalationFact::ReferralDecided { decision, .. }) => {
                let metric = match decision {
                    ReferralDecision::Referred => metric::REFERRED,
                    ReferralDecision::Dismissed => metric::REFERRAL_DISMISSED,
                };
                self.count(week, &district, metric, "", 1);
            }
            ComplaintFact::Escalation(EscalationFact::Escalated { level, .. }) => {
                self.count(week, &district, metric::ESCALATED, level.as_str(), 1);
            }
            // Interpretation 21: withdrawn in this week; the week they were recorded in keeps
            // its count.
            ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { withdrawn_levels, .. }) => {
                for level in withdrawn_levels {
                    self.count(week, &district, metric::ESCALATION_WITHDRAWN, level.as_str(), 1);
                }
            }
            _ => {}
        }
        self.open_deadlines(lead, event);
        if changed {
            let created = self.leads.get(lead).is_some_and(|cached| cached.state == LeadState::Created);
            let state = if created { LeadState::Created } else { LeadState::Changed };
            self.leads.insert(lead.to_owned(), CachedLead { row: Some(row), state });
        }
        Ok(())
    }

    fn open_deadlines(&mut self, lead: &str, event: &ComplaintEvent) {
        for deadline in &event.opens {
            let row = DeadlineRow {
                kind: deadline.kind.as_str().to_owned(),
                body: deadline.body.as_str().to_owned(),
                opened_at: ms(event.at),
                due: ms(deadline.due),
                provisional: deadline.provisional,
            };
            self.deadlines.insert((lead.to_owned(), deadline.seq), CachedDeadline::Open { row, stored: false });
        }
    }

    fn closure(&mut self, week: NaiveDate, district: &str, late: bool) {
        self.count(week, district, metric::CLOSED, "", 1);
        if late {
            self.count(week, district, metric::CLOSED_LATE, "", 1);
        }
    }

    /// A closed obligation was open and overdue at the end of every week whose end `E` has
    /// `opened_at < E`, `due < E` and `E <= closed_at`; those week ends are counted now, once,
    /// and the query adds the obligations still open. The due instant is the one the deadline
    /// had when it closed (interpretation 21: after any recomputation), and so is its flag.
    fn overdue_week_ends(&mut self, lead: &LeadRow, deadline: &DeadlineRow, closed_at: i64) {
        let mut week = reporting_week(instant(deadline.opened_at.max(deadline.due)));
        while week_end_ms(week) <= closed_at {
            self.count(week, &lead.district, metric::OVERDUE, "", 1);
            self.count(week, &lead.district, metric::OVERDUE_BY_CATEGORY, &lead.category, 1);
            self.count(week, &lead.district, metric::OVERDUE_BY_BODY, &deadline.body, 1);
            if deadline.provisional {
                self.count(week, &lead.district, metric::OVERDUE_PROVISIONAL_BY_BODY, &deadline.body, 1);
            }
            week += TimeDelta::days(7);
        }
    }

    fn flush(self, tx: &mut dyn SqlTx) -> Result<(), SqlError> {
        let sql = self.sql;
        for ((week, district, metric, key), n) in self.counters {
            if n == 0 {
                continue;
            }
            let row = [Value::text(week_text(week)), Value::text(district), Value::text(metric), Value::text(key)];
            tx.execute(
                &sql.add_counter,
                &[row[0].clone(), row[1].clone(), row[2].clone(), row[3].clone(), Value::int(n)],
            )?;
            // A count moved away (a reclassified lead) leaves no empty row behind, so the
            // tables do not depend on how the log was cut into batches.
            if n < 0 {
                tx.execute(&sql.delete_zero_counter, &row)?;
            }
        }
        for (lead, cached) in self.leads {
            let Some(row) = cached.row else { continue };
            if cached.state == LeadState::Changed {
                let params = [
                    Value::text(lead.as_str()),
                    Value::text(row.category.as_str()),
                    Value::text(row.body.as_str()),
                    Value::int(i64::from(row.open)),
                ];
                if tx.execute(&sql.update_lead, &params)? == 1 {
                    continue;
                }
            }
            if cached.state != LeadState::Clean {
                tx.execute(
                    &sql.upsert_lead,
                    &[
                        Value::text(lead),
                        Value::text(row.district),
                        Value::text(week_text(row.received_week)),
                        Value::text(row.category),
                        Value::text(row.body),
                        Value::text(row.uscc),
                        Value::int(i64::from(row.open)),
                    ],
                )?;
            }
        }
        for ((lead, seq), cached) in self.deadlines {
            match cached {
                CachedDeadline::Open { row, stored: false } => {
                    tx.execute(
                        &sql.insert_deadline,
                        &[
                            Value::text(lead),
                            Value::int(i64::from(seq)),
                            Value::text(row.kind),
                            Value::text(row.body),
                            Value::int(row.opened_at),
                            Value::int(row.due),
                            Value::int(i64::from(row.provisional)),
                        ],
                    )?;
                }
                CachedDeadline::Closed { stored: true } => {
                    tx.execute(&sql.delete_deadline, &[Value::text(lead), Value::int(i64::from(seq))])?;
                }
                CachedDeadline::Open { stored: true, .. } | CachedDeadline::Closed { stored: false } => {}
            }
        }
        for (uscc, name) in self.companies {
            tx.execute(&sql.upsert_company, &[Value::text(uscc), Value::text(name)])?;
        }
        for (week, state) in self.anchors {
            tx.execute(
                &sql.upsert_anchor,
                &[
                    Value::text(week_text(week)),
                    Value::int(state.position as i64),
                    Value::int(state.events as i64),
                    Value::text(hex(&state.anchor)),
                ],
            )?;
        }
        Ok(())
    }
}

/// The deadlines a completed closure meets (HDL-1, HDL-2).
pub(crate) const HANDLING: [DeadlineKind; 4] =
    [DeadlineKind::GeneralClose, DeadlineKind::MajorResolve, DeadlineKind::MajorPlan, DeadlineKind::ProgressReport];

impl ModelWriter for WeeklyWriter {
    fn apply(&mut self, tx: &mut dyn SqlTx, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        let mut batch = Batch::start(tx, &self.sql)?;
        for event in events {
            batch.chain(event);
            match &event.payload {
                Payload::Complaint { lead, event: complaint } => batch.complaint(tx, lead.as_str(), complaint)?,
                Payload::Weekly { event: issued } => {
                    if let Some(rows) = crate::issued::rows(issued, event.position) {
                        tx.execute(&self.issued.0, &rows.issued)?;
                        for row in &rows.corrections {
                            tx.execute(&self.issued.1, row)?;
                        }
                    }
                }
                _ => {}
            }
        }
        batch.flush(tx)?;
        Ok(())
    }
}

/// Whether applying the event needs the lead's row: it closes a deadline, or its fact counts
/// something for the lead's week, district, category or body (a recomputation that withdraws
/// escalations, interpretation 21, counts them). For any other event the deadlines it opens
/// are recorded whether or not the lead has a row.
pub(crate) fn needs_lead(event: &ComplaintEvent) -> bool {
    !event.closes.is_empty()
        || match &event.fact {
            ComplaintFact::Classified { .. }
            | ComplaintFact::Transferred { .. }
            | ComplaintFact::UrgentNotified { .. }
            | ComplaintFact::ClosureCountersigned { .. }
            | ComplaintFact::ClosureReviewed { outcome: ReviewOutcome::SentBack { .. }, .. }
            | ComplaintFact::Reopened { .. }
            | ComplaintFact::TransferReturned { .. }
            | ComplaintFact::ReturnReviewed { accepted: false, .. }
            | ComplaintFact::Escalation(EscalationFact::Escalated { .. } | EscalationFact::ReferralDecided { .. }) => {
                true
            }
            ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { withdrawn_levels, .. }) => {
                !withdrawn_levels.is_empty()
            }
            ComplaintFact::ClosureSigned { body, .. } => *body != BodyCode::ZJ,
            _ => false,
        }
}
