//! Builds one generation of `bulletin` (PUB-1) in memory, for a rebuild with the server
//! stopped: the events are folded into maps shaped like the five tables, and each table is
//! written once, in primary-key order, at the end. After any sequence of events the tables hold
//! exactly the rows [`BulletinWriter`](crate::BulletinWriter) leaves after the same events,
//! whatever batches they came in: every event is folded as the writer applies it, statement by
//! statement and in the same order (the closure count and a recomputed due before the event's
//! closings, closings before openings), including the statements that change nothing — a count
//! for a lead never registered, the closing of a deadline that is not there, the recomputed due
//! (interpretation 21) of a deadline without an open row. Nothing is computed in floating
//! point; every stored value is an integer or a text the writer would store as well.
//!
//! Strings are interned: each lead, company and complainant is looked up by `&str` and its
//! text allocated once, when it is first seen; deadline kinds stay [`DeadlineKind`]s until they
//! are written. Events the model does not read cost one `match`.

use std::collections::{HashMap, HashSet};

use tousu_domain::complaint::{ComplaintEvent, ComplaintFact, Registration, Satisfaction};
use tousu_domain::deadline::DeadlineKind;
use tousu_domain::enterprise::EnterpriseFact;
use tousu_domain::identity::ComplainantKey;
use tousu_domain::ids::BodyCode;
use tousu_domain::obligations::EscalationFact;
use tousu_projection::{BulkBuilder, Payload, ProjectedEvent, ProjectionError, Row, SqlTx, Value};

use crate::writer::against_company;
use crate::{OPEN, millis, month_key};

/// The in-memory builder of one generation of `bulletin`.
#[derive(Debug)]
pub struct BulletinBuilder {
    tables: TableNames,
    /// Every lead an event has named, registered or not: its company (the `leads` table) and
    /// its deadlines (the `deadlines` table).
    leads: Interned<LeadEntry>,
    /// Every company a registration or a refusal has named: its name (the `companies` table)
    /// and its months (the `months` table).
    companies: Interned<CompanyEntry>,
    /// The text of every complainant, keyed or anonymous, as `complainants.who` stores it.
    complainants: Interned<()>,
    /// The `complainants` table: company, month (`yyyymm`) and complainant, each interned.
    registrations: HashSet<(u32, i64, u32)>,
    /// Where the text of an anonymous complainant is put together before it is looked up, so
    /// that a complainant already seen costs no allocation.
    anonymous: String,
}

/// The tables under the generation's prefix.
#[derive(Debug)]
struct TableNames {
    leads: String,
    companies: String,
    months: String,
    complainants: String,
    deadlines: String,
}

/// Strings numbered in the order they were first seen, each with its entry.
#[derive(Debug)]
struct Interned<T> {
    numbers: HashMap<String, u32>,
    entries: Vec<T>,
}

impl<T: Default> Interned<T> {
    fn new() -> Interned<T> {
        Interned { numbers: HashMap::new(), entries: Vec::new() }
    }

    /// The number of `key`, made (with a default entry) when it is new.
    fn number(&mut self, key: &str) -> u32 {
        if let Some(&number) = self.numbers.get(key) {
            return number;
        }
        let number = u32::try_from(self.entries.len()).expect("fewer than 2^32 distinct keys");
        self.numbers.insert(key.to_owned(), number);
        self.entries.push(T::default());
        number
    }

    /// Every key, indexed by its number.
    fn keys(&self) -> Vec<&str> {
        let mut keys = vec![""; self.entries.len()];
        for (key, &number) in &self.numbers {
            keys[number as usize] = key;
        }
        keys
    }
}

/// What the tables hold of one lead.
#[derive(Debug, Default)]
struct LeadEntry {
    /// The company of its latest registration; `None` while it has none, and then it has no
    /// `leads` row.
    company: Option<u32>,
    /// Interpretations 22 and 23: its latest finding is substantiated and the company's
    /// responsibility (the row's `substantiated`).
    substantiated: bool,
    /// Interpretation 22: its latest finding says the matter is not the company's
    /// responsibility (the row's `attributable` is 0).
    not_attributable: bool,
    /// Its `deadlines` rows, in no particular order.
    deadlines: Vec<DeadlineRow>,
}

/// One row of `deadlines`, without the lead.
#[derive(Debug, Clone, Copy)]
struct DeadlineRow {
    seq: u32,
    kind: DeadlineKind,
    due: i64,
    opened_at: i64,
    closed_at: i64,
    /// Interpretation 21: the due instant was computed from the provisional calendar.
    provisional: bool,
}

/// What the tables hold of one company.
#[derive(Debug, Default)]
struct CompanyEntry {
    /// The name of its latest registration; `None` while it has none, and then it has no
    /// `companies` row (a company known only from a refusal).
    name: Option<String>,
    /// Its `months` rows, in the order they were made: nearly always the order of the months,
    /// so the month an event counts for is found by searching from the end.
    months: Vec<MonthRow>,
}

/// One row of `months`, without the company.
#[derive(Debug, Clone, Copy)]
struct MonthRow {
    month: i64,
    closed: i64,
    closed_on_time: i64,
    refusals: i64,
    dissatisfied: i64,
    fee_refusals: i64,
}

impl CompanyEntry {
    /// The row of `month`, made with every count at zero when there is none: what each
    /// `INSERT … ON CONFLICT (company, month) DO UPDATE` of the writer adds to.
    fn month(&mut self, month: i64) -> &mut MonthRow {
        let position = match self.months.iter().rposition(|row| row.month == month) {
            Some(position) => position,
            None => {
                self.months.push(MonthRow {
                    month,
                    closed: 0,
                    closed_on_time: 0,
                    refusals: 0,
                    dissatisfied: 0,
                    fee_refusals: 0,
                });
                self.months.len() - 1
            }
        };
        &mut self.months[position]
    }
}

impl BulletinBuilder {
    /// A builder for the tables under `prefix`.
    pub fn new(prefix: &str) -> BulletinBuilder {
        let p = prefix;
        BulletinBuilder {
            tables: TableNames {
                leads: format!("{p}leads"),
                companies: format!("{p}companies"),
                months: format!("{p}months"),
                complainants: format!("{p}complainants"),
                deadlines: format!("{p}deadlines"),
            },
            leads: Interned::new(),
            companies: Interned::new(),
            complainants: Interned::new(),
            registrations: HashSet::new(),
            anonymous: String::new(),
        }
    }

    fn fold_lead(&mut self, lead: &str, event: &ComplaintEvent) {
        let reads_fact = matches!(
            event.fact,
            ComplaintFact::Registered { .. }
                | ComplaintFact::SplitFrom { .. }
                | ComplaintFact::ClosureSigned { .. }
                | ComplaintFact::ClosureCountersigned { .. }
                | ComplaintFact::SatisfactionRecorded { satisfaction: Satisfaction::Dissatisfied, .. }
                | ComplaintFact::FindingRecorded { .. }
                | ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { .. })
        );
        if !reads_fact && event.closes.is_empty() && event.opens.is_empty() {
            return;
        }
        // An entry with no company and no deadlines stands for no row at all, so making one
        // before the writer would make a row changes nothing. An event about a lead without
        // an entry changes a table only by registering it or opening one of its deadlines:
        // anything else about it matches no row.
        let creates = !event.opens.is_empty()
            || matches!(event.fact, ComplaintFact::Registered { .. } | ComplaintFact::SplitFrom { .. });
        let number = if creates {
            self.leads.number(lead)
        } else {
            match self.leads.numbers.get(lead) {
                Some(&number) => number,
                None => return,
            }
        };
        let at = millis(event.at);
        match &event.fact {
            ComplaintFact::Registered { registration, complainant_key, .. } => {
                self.register(number, registration, month_key(event.at), complainant_key.as_ref(), lead);
            }
            // Interpretation 15: a linked lead counts in the month its parent was registered,
            // and an anonymous one as its parent's complainant (interpretation 2).
            ComplaintFact::SplitFrom { parent, registration, complainant_key, registered_at, .. } => {
                self.register(
                    number,
                    registration,
                    month_key(*registered_at),
                    complainant_key.as_ref(),
                    parent.as_str(),
                );
            }
            // HDL-3: a matter 住建 handles directly closes with the countersignature.
            ComplaintFact::ClosureSigned { body, .. } if *body == BodyCode::ZJ => {}
            ComplaintFact::ClosureSigned { .. } | ComplaintFact::ClosureCountersigned { .. } => {
                self.count_closure(number, at, month_key(event.at));
            }
            // HDL-4: a dissatisfied 12345 follow-up.
            // Interpretations 22, 23: only on a lead that is the company's responsibility.
            ComplaintFact::SatisfactionRecorded { satisfaction: Satisfaction::Dissatisfied, .. } => {
                if !self.leads.entries[number as usize].not_attributable
                    && let Some(month) = self.month_of_lead(number, month_key(event.at))
                {
                    month.dissatisfied += 1;
                }
            }
            // Interpretation 23: the writer's `record_finding`, on the lead's row only.
            ComplaintFact::FindingRecorded { finding, attributable, .. } => {
                let entry = &mut self.leads.entries[number as usize];
                if entry.company.is_some() {
                    entry.substantiated = against_company(*finding, *attributable);
                    entry.not_attributable = *attributable == Some(false);
                }
            }
            // Interpretation 21: the writer's `recompute_deadline`, on the open row only.
            ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { seq, due, provisional, .. }) => {
                let deadlines = &mut self.leads.entries[number as usize].deadlines;
                if let Some(row) = deadlines.iter_mut().find(|row| row.seq == *seq && row.closed_at == OPEN) {
                    row.due = millis(*due);
                    row.provisional = *provisional;
                }
            }
            _ => {}
        }
        let entry = &mut self.leads.entries[number as usize];
        // A deadline met by its due instant is deleted (`drop_met_deadline`); what is left gets
        // the closing instant (`close_deadline`). Neither looks at `closed_at`: a deadline
        // closed late and closed again takes the later instant, or is deleted if the second
        // closing is by its due instant. The closing of a deadline that is not there changes
        // nothing.
        for closure in &event.closes {
            if let Some(position) = entry.deadlines.iter().position(|row| row.seq == closure.seq) {
                if entry.deadlines[position].due >= at {
                    entry.deadlines.swap_remove(position);
                } else {
                    entry.deadlines[position].closed_at = at;
                }
            }
        }
        // A lead's deadlines are kept whether or not the lead is registered: the writer's
        // `open_deadline` does not look at `leads`.
        for deadline in &event.opens {
            let opened = DeadlineRow {
                seq: deadline.seq,
                kind: deadline.kind,
                due: millis(deadline.due),
                opened_at: at,
                closed_at: OPEN,
                provisional: deadline.provisional,
            };
            // `ON CONFLICT (lead, seq) DO UPDATE` replaces every column, and opens again a
            // deadline that was closed late.
            match entry.deadlines.iter_mut().find(|row| row.seq == opened.seq) {
                Some(row) => *row = opened,
                None => entry.deadlines.push(opened),
            }
        }
    }

    /// A registration (REG-1) or a linked lead (interpretation 15) of the lead numbered
    /// `lead`: the lead's company and the company's name, each replaced by the latest
    /// registration as the writer's upserts do, and the complainant in the month of
    /// registration, counted once per company and month.
    fn register(
        &mut self,
        lead: u32,
        registration: &Registration,
        month: i64,
        complainant_key: Option<&ComplainantKey>,
        anonymous_complaint: &str,
    ) {
        // Interpretation 22: a lead naming no company has no `leads` row.
        let Some(named) = &registration.company else { return };
        let company = self.companies.number(named.uscc.as_str());
        self.leads.entries[lead as usize].company = Some(company);
        let new_name = named.name.as_str();
        match &mut self.companies.entries[company as usize].name {
            Some(name) if name == new_name => {}
            Some(name) => {
                name.clear();
                name.push_str(new_name);
            }
            name @ None => *name = Some(new_name.to_owned()),
        }
        let who = match complainant_key {
            Some(key) => self.complainants.number(key.as_str()),
            // The writer's `anonymous`: the complaint itself (interpretation 2).
            None => {
                self.anonymous.clear();
                self.anonymous.push_str("anonymous:");
                self.anonymous.push_str(anonymous_complaint);
                self.complainants.number(&self.anonymous)
            }
        };
        self.registrations.insert((company, month, who));
    }

    /// HDL-1, HDL-2, HDL-3: a closure, on time when it is at or before the earliest due
    /// instant among the lead's open handling deadlines (`general-close`, `major-resolve`), or
    /// when it has none (an urgent matter). Looked up before the event's own closings, as the
    /// writer's `handling_due` query is.
    fn count_closure(&mut self, lead: u32, at: i64, month: i64) {
        let due = self.leads.entries[lead as usize]
            .deadlines
            .iter()
            .filter(|row| matches!(row.kind, DeadlineKind::GeneralClose | DeadlineKind::MajorResolve))
            .filter(|row| row.closed_at == OPEN)
            .map(|row| row.due)
            .min();
        let on_time = i64::from(due.is_none_or(|due| at <= due));
        if let Some(month) = self.month_of_lead(lead, month) {
            month.closed += 1;
            month.closed_on_time += on_time;
        }
    }

    /// The row the writer's `count_closure` and `count_dissatisfied` add to: `INSERT … SELECT
    /// company FROM leads WHERE lead = $1 … ON CONFLICT DO UPDATE` counts for the lead's
    /// company as it is at the event, and for nobody when the lead has never been registered
    /// (no row matches, nothing is inserted).
    fn month_of_lead(&mut self, lead: u32, month: i64) -> Option<&mut MonthRow> {
        let company = self.leads.entries[lead as usize].company?;
        Some(self.companies.entries[company as usize].month(month))
    }

    /// GRD-2: a refusal to rectify counts for the company of the stream, whether or not any
    /// lead has named it (so it can have a `months` row and no `companies` row).
    fn count_refusal(&mut self, uscc: &str, month: i64) {
        let company = self.companies.number(uscc);
        self.companies.entries[company as usize].month(month).refusals += 1;
    }
}

impl BulkBuilder for BulletinBuilder {
    fn fold(&mut self, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            match &event.payload {
                Payload::Complaint { lead, event } => self.fold_lead(lead.as_str(), event),
                Payload::Enterprise { uscc, event } => {
                    match &event.fact {
                        EnterpriseFact::RectificationRefused { .. } => {
                            self.count_refusal(uscc.as_str(), month_key(event.at));
                        }
                        // Interpretation 23: the writer's `count_fee_refusal`.
                        EnterpriseFact::FeeStandardRefused { .. } => {
                            let company = self.companies.number(uscc.as_str());
                            self.companies.entries[company as usize].month(month_key(event.at)).fee_refusals += 1;
                        }
                        _ => {}
                    }
                }
                Payload::Weekly { .. } | Payload::Other => {}
            }
        }
        Ok(())
    }

    fn write(&self, tx: &mut dyn SqlTx) -> Result<(), ProjectionError> {
        let lead_keys = self.leads.keys();
        let company_keys = self.companies.keys();
        let complainant_keys = self.complainants.keys();
        // Each table in the order of its primary key (texts byte by byte, as SQLite compares
        // them): SQLite builds the key's index fastest so.
        let mut leads: Vec<(&str, u32, &LeadEntry)> = lead_keys
            .iter()
            .zip(&self.leads.entries)
            .filter_map(|(lead, entry)| Some((*lead, entry.company?, entry)))
            .collect();
        leads.sort_unstable_by_key(|(lead, _, _)| *lead);
        tx.insert_rows(
            &self.tables.leads,
            &["lead", "company", "substantiated", "attributable"],
            &mut leads.iter().map(|(lead, company, entry)| {
                vec![
                    Value::text(*lead),
                    Value::text(company_keys[*company as usize]),
                    Value::int(i64::from(entry.substantiated)),
                    Value::int(i64::from(!entry.not_attributable)),
                ]
            }),
        )?;

        let mut companies: Vec<(&str, &str)> = company_keys
            .iter()
            .zip(&self.companies.entries)
            .filter_map(|(uscc, entry)| Some((*uscc, entry.name.as_deref()?)))
            .collect();
        companies.sort_unstable_by_key(|(uscc, _)| *uscc);
        tx.insert_rows(
            &self.tables.companies,
            &["uscc", "name"],
            &mut companies.iter().map(|(uscc, name)| vec![Value::text(*uscc), Value::text(*name)]),
        )?;

        let mut months: Vec<(&str, &MonthRow)> = company_keys
            .iter()
            .zip(&self.companies.entries)
            .flat_map(|(uscc, entry)| entry.months.iter().map(move |row| (*uscc, row)))
            .collect();
        months.sort_unstable_by_key(|(uscc, row)| (*uscc, row.month));
        tx.insert_rows(
            &self.tables.months,
            &["company", "month", "closed", "closed_on_time", "refusals", "dissatisfied", "fee_refusals"],
            &mut months.iter().map(|(uscc, row)| -> Row {
                vec![
                    Value::text(*uscc),
                    Value::int(row.month),
                    Value::int(row.closed),
                    Value::int(row.closed_on_time),
                    Value::int(row.refusals),
                    Value::int(row.dissatisfied),
                    Value::int(row.fee_refusals),
                ]
            }),
        )?;

        let mut complainants: Vec<(&str, i64, &str)> = self
            .registrations
            .iter()
            .map(|&(company, month, who)| (company_keys[company as usize], month, complainant_keys[who as usize]))
            .collect();
        complainants.sort_unstable();
        tx.insert_rows(
            &self.tables.complainants,
            &["company", "month", "who"],
            &mut complainants
                .iter()
                .map(|(uscc, month, who)| vec![Value::text(*uscc), Value::int(*month), Value::text(*who)]),
        )?;

        let mut deadlines: Vec<(&str, &DeadlineRow)> = lead_keys
            .iter()
            .zip(&self.leads.entries)
            .flat_map(|(lead, entry)| entry.deadlines.iter().map(move |row| (*lead, row)))
            .collect();
        deadlines.sort_unstable_by_key(|(lead, row)| (*lead, row.seq));
        tx.insert_rows(
            &self.tables.deadlines,
            &["lead", "seq", "kind", "due", "opened_at", "closed_at", "provisional"],
            &mut deadlines.iter().map(|(lead, row)| -> Row {
                vec![
                    Value::text(*lead),
                    Value::int(i64::from(row.seq)),
                    Value::text(row.kind.as_str()),
                    Value::int(row.due),
                    Value::int(row.opened_at),
                    Value::int(row.closed_at),
                    Value::int(i64::from(row.provisional)),
                ]
            }),
        )?;
        Ok(())
    }
}
