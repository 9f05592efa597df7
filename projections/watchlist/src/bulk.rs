//! Builds a generation of the watchlist in memory, for a rebuild with the server stopped
//! (`tousu projections rebuild`): each lead and each company becomes an entry holding what its
//! rows in the eight tables would hold, and every table is written once, at the end, in key
//! order.
//!
//! The entries follow [`crate::writer`] column by column, so the tables come out row for row as
//! the writer leaves them. The writer folds a batch into patches and writes each with an upsert
//! whose `COALESCE` keeps a stored value where the patch has none; the entries keep the latest
//! non-NULL value given for each column, which is what those upserts leave (for two columns of
//! a lead counted twice, only where the counts come in separate batches: see
//! `LeadRow::complainant_key`). Its corners are kept: a lead has a row as soon as any fact
//! about it does (an `UPDATE` that finds no row falls back to the upsert), even a closure
//! without a registration; a company has a row once a lead names it or one of its recorded
//! conditions changes, with an empty name until a lead gives one; deadlines are rows of their
//! own, whether or not their lead or company has a row; within an event, a recomputed due
//! instant (interpretation 21) goes first, then closed deadlines, then opened ones; a
//! recomputation changes a deadline's row only where there is one.

use std::collections::HashMap;

use chrono::NaiveDate;
use tousu_domain::complaint::{ComplaintEvent, ComplaintFact, ReviewOutcome};
use tousu_domain::deadline::{DeadlineClosure, DeadlineKind};
use tousu_domain::enterprise::{DowngradeReason, EnterpriseEvent, EnterpriseFact};
use tousu_domain::ids::BodyCode;
use tousu_domain::obligations::EscalationFact;
use tousu_domain::rule::RuleId;
use tousu_projection::{BulkBuilder, Payload, ProjectedEvent, ProjectionError, SqlTx, Value};

use crate::writer::{downgrade_reason_text, finding_text, ms};

/// A generation of the watchlist being built in memory.
#[derive(Debug)]
pub struct WatchlistBulk {
    prefix: String,
    /// Each lead's position in `leads`.
    lead_index: HashMap<Box<str>, u32>,
    leads: Vec<LeadEntry>,
    /// Each company's position in `companies`.
    company_index: HashMap<Box<str>, u32>,
    companies: Vec<CompanyEntry>,
    /// Districts, communities, complainant keys and linked leads: texts that recur across leads,
    /// held once each.
    symbols: Symbols,
}

/// An interned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Symbol(u32);

/// Texts held once each, looked up by their text without allocating.
#[derive(Debug, Default)]
struct Symbols {
    index: HashMap<Box<str>, Symbol>,
    texts: Vec<Box<str>>,
}

impl Symbols {
    fn intern(&mut self, text: &str) -> Symbol {
        if let Some(symbol) = self.index.get(text) {
            return *symbol;
        }
        let symbol = Symbol(u32::try_from(self.texts.len()).expect("fewer than 2^32 distinct texts"));
        self.texts.push(text.into());
        self.index.insert(text.into(), symbol);
        symbol
    }

    fn text(&self, symbol: Symbol) -> &str {
        &self.texts[symbol.0 as usize]
    }
}

/// What the tables hold of one lead.
#[derive(Debug, Default)]
struct LeadEntry {
    /// Its row in `leads`, once any fact about it made one.
    row: Option<LeadRow>,
    /// Its open deadlines in `lead_deadlines`, by sequence number.
    deadlines: Vec<(u32, LeadDeadline)>,
}

/// A row of `lead_deadlines`, without its key.
#[derive(Debug, Clone, Copy)]
struct LeadDeadline {
    due: i64,
    /// Interpretation 21: the due instant rests on the provisional calendar.
    provisional: bool,
}

/// A row of `leads`; `None` is a NULL column.
#[derive(Debug, Default)]
struct LeadRow {
    /// The company, as a position in `companies`.
    uscc: Option<u32>,
    district: Option<Symbol>,
    open: Option<bool>,
    counted: Option<Counted>,
    /// Kept apart from [`Counted`]: the writer's upsert coalesces it, so a later count without
    /// a key leaves the stored key in place. Within one batch the writer's patch takes the
    /// latest count whole instead, and would store NULL: the writer's result then depends on
    /// the batches, and this follows the upsert, as the writer applying one event at a time
    /// does. The domain counts a lead once on a company's stream, with the key and link of its
    /// registration, so the two never differ on a log it writes.
    complainant_key: Option<Symbol>,
    /// Coalesced as `complainant_key` is.
    linked_to: Option<Symbol>,
    finding: Option<(&'static str, i64)>,
}

/// The columns the company's stream sets on a lead it counts (`enterprise.complaint_recorded`),
/// always together and never NULL.
#[derive(Debug, Clone, Copy)]
struct Counted {
    community: Symbol,
    identity: Identity,
    registered_at: i64,
}

/// The complainant as interpretation 2 counts them, spelt out in `write`.
#[derive(Debug, Clone, Copy)]
enum Identity {
    /// The keyed identity.
    Keyed(Symbol),
    /// An anonymous lead split from another: the complaint is that lead (interpretation 15).
    AnonymousLinkedTo(Symbol),
    /// An anonymous lead that is its own complaint.
    AnonymousItself,
}

/// What the tables hold of one company.
#[derive(Debug)]
struct CompanyEntry {
    uscc: Box<str>,
    /// Its row in `companies`, once a lead named it or a recorded condition changed.
    row: Option<CompanyRow>,
    /// Its open deadlines in `company_deadlines`, by sequence number.
    deadlines: Vec<(u32, CompanyDeadline)>,
    districts: Vec<Symbol>,
    surveys: Vec<Survey>,
    refusals: Vec<Refusal>,
    /// GRD-2: the latest grade of each community downgraded.
    grades: Vec<Grade>,
}

/// A row of `companies`.
#[derive(Debug, Default)]
struct CompanyRow {
    /// Empty until a lead names the company, as the writer's `CompanyRow::default()` has it.
    name: String,
    credit_rating: Option<String>,
    blacklisted_on: Option<NaiveDate>,
    key_supervision_since: Option<i64>,
    grade_review_since: Option<i64>,
    exit_condition_since: Option<i64>,
    exit_started_at: Option<i64>,
}

/// A row of `company_deadlines`, without its key.
#[derive(Debug)]
struct CompanyDeadline {
    kind: DeadlineKind,
    rule: RuleId,
    community: Option<Symbol>,
    due: i64,
    /// GRD-2: why the downgrade is due, on the deadlines a `downgrade_required` opens.
    reason: Option<DowngradeReason>,
    /// Interpretation 21: the due instant rests on the provisional calendar.
    provisional: bool,
}

/// A row of `surveys`, without its company.
#[derive(Debug)]
struct Survey {
    position: i64,
    community: Symbol,
    at: i64,
    respondents: i64,
    satisfied: i64,
}

/// A row of `refusals`, without its company.
#[derive(Debug)]
struct Refusal {
    position: i64,
    community: Symbol,
    at: i64,
    detail: String,
}

/// A row of `grades`, without its company.
#[derive(Debug)]
struct Grade {
    community: Symbol,
    grade: i64,
    at: i64,
}

/// The rows of open deadlines after an event: closed ones go first, then opened ones, as in
/// the writer; a sequence number opened again replaces its row, as the writer's net change
/// within a batch does.
fn apply_deadlines<T>(open: &mut Vec<(u32, T)>, closes: &[DeadlineClosure], opens: impl Iterator<Item = (u32, T)>) {
    for closure in closes {
        open.retain(|(seq, _)| *seq != closure.seq);
    }
    for (seq, row) in opens {
        match open.iter_mut().find(|(open_seq, _)| *open_seq == seq) {
            Some(existing) => existing.1 = row,
            None => open.push((seq, row)),
        }
    }
}

/// Interpretation 21: the writer's `recompute_deadline`. An open deadline `seq` takes the new
/// due instant and flag; where none is open (never opened, or closed), nothing changes.
fn recompute_deadline<T>(open: &mut [(u32, T)], seq: u32, recompute: impl FnOnce(&mut T)) {
    if let Some((_, row)) = open.iter_mut().find(|(open_seq, _)| *open_seq == seq) {
        recompute(row);
    }
}

/// The position of `key` in `entries`, with an entry made where there is none yet.
fn position_of<T>(index: &mut HashMap<Box<str>, u32>, entries: &mut Vec<T>, key: &str, new: impl FnOnce() -> T) -> u32 {
    if let Some(position) = index.get(key) {
        return *position;
    }
    let position = u32::try_from(entries.len()).expect("fewer than 2^32 entries");
    entries.push(new());
    index.insert(key.into(), position);
    position
}

impl WatchlistBulk {
    /// A builder of the tables under `prefix`.
    pub fn new(prefix: &str) -> WatchlistBulk {
        WatchlistBulk {
            prefix: prefix.to_owned(),
            lead_index: HashMap::new(),
            leads: Vec::new(),
            company_index: HashMap::new(),
            companies: Vec::new(),
            symbols: Symbols::default(),
        }
    }

    fn lead(&mut self, lead: &str) -> &mut LeadEntry {
        let position = position_of(&mut self.lead_index, &mut self.leads, lead, LeadEntry::default);
        &mut self.leads[position as usize]
    }

    /// The lead's row, made (all NULL) where there is none yet.
    fn lead_row(&mut self, lead: &str) -> &mut LeadRow {
        self.lead(lead).row.get_or_insert_with(LeadRow::default)
    }

    fn company_position(&mut self, uscc: &str) -> u32 {
        position_of(&mut self.company_index, &mut self.companies, uscc, || CompanyEntry {
            uscc: uscc.into(),
            row: None,
            deadlines: Vec::new(),
            districts: Vec::new(),
            surveys: Vec::new(),
            refusals: Vec::new(),
            grades: Vec::new(),
        })
    }

    fn company(&mut self, uscc: &str) -> &mut CompanyEntry {
        let position = self.company_position(uscc);
        &mut self.companies[position as usize]
    }

    /// The company's row, made with an empty name where there is none yet: the writer loads the
    /// row before changing one of the recorded conditions and upserts it whole.
    fn company_row(&mut self, uscc: &str) -> &mut CompanyRow {
        self.company(uscc).row.get_or_insert_with(CompanyRow::default)
    }

    /// A lead names its company: the company has a row, named as the latest lead names it (the
    /// writer upserts the names after the rows).
    fn name_company(&mut self, position: u32, name: &str) {
        let row = self.companies[position as usize].row.get_or_insert_with(CompanyRow::default);
        if row.name != name {
            name.clone_into(&mut row.name);
        }
    }

    fn complaint(&mut self, lead: &str, event: &ComplaintEvent) {
        let open = match &event.fact {
            // Interpretation 22: the writer keeps no row for a lead naming no company.
            ComplaintFact::Registered { registration, .. } | ComplaintFact::SplitFrom { registration, .. } => {
                registration.company.as_ref().map(|named| {
                    let company = self.company_position(named.uscc.as_str());
                    self.name_company(company, &named.name);
                    let district = self.symbols.intern(&registration.place.district);
                    let districts = &mut self.companies[company as usize].districts;
                    // `ON CONFLICT DO NOTHING`: each district once per company.
                    if !districts.contains(&district) {
                        districts.push(district);
                    }
                    let row = self.lead_row(lead);
                    row.uscc = Some(company);
                    row.district = Some(district);
                    true
                })
            }
            // HDL-3: closure is complete (the lead no longer open) at the handling body's
            // signature, except for 住建's own matters, which need the street office's
            // countersignature.
            ComplaintFact::ClosureSigned { body, .. } if *body != BodyCode::ZJ => Some(false),
            ComplaintFact::ClosureCountersigned { .. } => Some(false),
            // A closure sent back on review, or a lead reopened after a dissatisfied follow-up
            // (interpretation 18), is open again.
            ComplaintFact::ClosureReviewed { outcome: ReviewOutcome::SentBack { .. }, .. }
            | ComplaintFact::Reopened { .. } => Some(true),
            // Interpretation 21: a lead without an entry has no deadline to recompute.
            ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { seq, due, provisional, .. }) => {
                if let Some(position) = self.lead_index.get(lead) {
                    let (due, provisional) = (ms(*due), *provisional);
                    recompute_deadline(&mut self.leads[*position as usize].deadlines, *seq, |row| {
                        *row = LeadDeadline { due, provisional };
                    });
                }
                None
            }
            _ => None,
        };
        if open.is_none() && event.opens.is_empty() && event.closes.is_empty() {
            return;
        }
        let entry = self.lead(lead);
        if let Some(open) = open {
            // The writer's `UPDATE … SET open` finds no row for a lead never registered nor
            // counted and falls back to its upsert: such a lead has a row all the same, NULL but
            // for `open`.
            entry.row.get_or_insert_with(LeadRow::default).open = Some(open);
        }
        apply_deadlines(
            &mut entry.deadlines,
            &event.closes,
            event.opens.iter().map(|deadline| {
                (deadline.seq, LeadDeadline { due: ms(deadline.due), provisional: deadline.provisional })
            }),
        );
    }

    fn enterprise(&mut self, uscc: &str, position: u64, event: &EnterpriseEvent) {
        let at = ms(event.at);
        let mut downgrade_reason = None;
        match &event.fact {
            // REG-4, GRD-1, EXT-1: the leads the company's stream counts, with the complainant of
            // interpretation 2.
            EnterpriseFact::ComplaintRecorded {
                company_name,
                lead,
                complainant_key,
                registered_at,
                community,
                linked_to,
                ..
            } => {
                // The company is the stream's, as in the writer, not the fact's own `uscc`.
                let company = self.company_position(uscc);
                self.name_company(company, company_name);
                let community = self.symbols.intern(community);
                let complainant_key = complainant_key.as_ref().map(|key| self.symbols.intern(key.as_str()));
                let linked_to = linked_to.as_ref().map(|linked| self.symbols.intern(linked.as_str()));
                let identity = match (complainant_key, linked_to) {
                    (Some(key), _) => Identity::Keyed(key),
                    (None, Some(linked)) => Identity::AnonymousLinkedTo(linked),
                    (None, None) => Identity::AnonymousItself,
                };
                let row = self.lead_row(lead.as_str());
                row.uscc = Some(company);
                row.counted = Some(Counted { community, identity, registered_at: ms(*registered_at) });
                // `COALESCE(excluded.…, stored)`: a count without a key or a link keeps the ones
                // a former count stored.
                if complainant_key.is_some() {
                    row.complainant_key = complainant_key;
                }
                if linked_to.is_some() {
                    row.linked_to = linked_to;
                }
            }
            EnterpriseFact::FindingRecorded { lead, finding, attributable, found_at } => {
                // Like `open`, a finding about a lead without a row makes one.
                self.lead_row(lead.as_str()).finding = Some((finding_text(*finding, *attributable), ms(*found_at)));
            }
            // REG-4, GRD-1, EXT-1: the conditions as the domain recorded them (interpretation 16),
            // and interpretation 12's credit rating and black list.
            EnterpriseFact::KeySupervisionStarted { .. } => self.company_row(uscc).key_supervision_since = Some(at),
            EnterpriseFact::KeySupervisionEnded { .. } => self.company_row(uscc).key_supervision_since = None,
            EnterpriseFact::GradeReviewRequired { .. } => self.company_row(uscc).grade_review_since = Some(at),
            EnterpriseFact::GradeReviewConditionEnded => self.company_row(uscc).grade_review_since = None,
            EnterpriseFact::ExitConditionMet { .. } => self.company_row(uscc).exit_condition_since = Some(at),
            EnterpriseFact::ExitConditionEnded => self.company_row(uscc).exit_condition_since = None,
            EnterpriseFact::ExitProcedureStarted { .. } => self.company_row(uscc).exit_started_at = Some(at),
            EnterpriseFact::CreditRatingRecorded { rating } => {
                self.company_row(uscc).credit_rating = Some(rating.clone());
            }
            EnterpriseFact::Blacklisted { listed_on } => self.company_row(uscc).blacklisted_on = Some(*listed_on),
            EnterpriseFact::RemovedFromBlacklist { .. } => self.company_row(uscc).blacklisted_on = None,
            // GRD-1: a survey, keyed by its position in the log.
            EnterpriseFact::SurveyCompleted { community, respondents, satisfied, .. } => {
                let community = self.symbols.intern(community);
                self.company(uscc).surveys.push(Survey {
                    position: position as i64,
                    community,
                    at,
                    respondents: i64::from(*respondents),
                    satisfied: i64::from(*satisfied),
                });
            }
            // GRD-2, EXT-1: a refusal to rectify, keyed by its position in the log.
            EnterpriseFact::RectificationRefused { community, detail } => {
                let community = self.symbols.intern(community);
                self.company(uscc).refusals.push(Refusal {
                    position: position as i64,
                    community,
                    at,
                    detail: detail.clone(),
                });
            }
            // GRD-2: the reason goes on the deadlines this event opens.
            EnterpriseFact::DowngradeRequired { reason, .. } => downgrade_reason = Some(reason),
            // GRD-2: the latest grade of the community replaces the former.
            EnterpriseFact::GradeDowngraded { community, to_grade, .. } => {
                let community = self.symbols.intern(community);
                let grade = Grade { community, grade: i64::from(*to_grade), at };
                let grades = &mut self.company(uscc).grades;
                match grades.iter_mut().find(|stored| stored.community == community) {
                    Some(stored) => *stored = grade,
                    None => grades.push(grade),
                }
            }
            // Interpretation 21: a company without an entry has no deadline to recompute.
            EnterpriseFact::Escalation(EscalationFact::DeadlineRecomputed { seq, due, provisional, .. }) => {
                if let Some(position) = self.company_index.get(uscc) {
                    let (due, provisional) = (ms(*due), *provisional);
                    recompute_deadline(&mut self.companies[*position as usize].deadlines, *seq, |row| {
                        row.due = due;
                        row.provisional = provisional;
                    });
                }
            }
            _ => {}
        }
        if event.opens.is_empty() && event.closes.is_empty() {
            return;
        }
        let company = self.company_position(uscc);
        let symbols = &mut self.symbols;
        apply_deadlines(
            &mut self.companies[company as usize].deadlines,
            &event.closes,
            event.opens.iter().map(|deadline| {
                let row = CompanyDeadline {
                    kind: deadline.kind,
                    rule: deadline.rule,
                    community: deadline.community.as_deref().map(|community| symbols.intern(community)),
                    due: ms(deadline.due),
                    reason: downgrade_reason.cloned(),
                    provisional: deadline.provisional,
                };
                (deadline.seq, row)
            }),
        );
    }
}

fn text(value: Option<&str>) -> Value {
    Value::Text(value.map(str::to_owned))
}

impl BulkBuilder for WatchlistBulk {
    fn fold(&mut self, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            match &event.payload {
                Payload::Complaint { lead, event: complaint } => self.complaint(lead.as_str(), complaint),
                Payload::Enterprise { uscc, event: enterprise } => {
                    self.enterprise(uscc.as_str(), event.position, enterprise);
                }
                Payload::Weekly { .. } | Payload::Other => {}
            }
        }
        Ok(())
    }

    fn write(&self, tx: &mut dyn SqlTx) -> Result<(), ProjectionError> {
        let p = &self.prefix;
        let symbols = &self.symbols;
        let symbol = |value: Option<Symbol>| text(value.map(|symbol| symbols.text(symbol)));
        // Every table in key order: SQLite builds each primary-key index fastest so.
        let mut companies: Vec<&CompanyEntry> = self.companies.iter().collect();
        companies.sort_unstable_by(|a, b| a.uscc.cmp(&b.uscc));
        let mut leads: Vec<(&str, &LeadEntry)> =
            self.lead_index.iter().map(|(lead, position)| (&**lead, &self.leads[*position as usize])).collect();
        leads.sort_unstable_by_key(|(lead, _)| *lead);

        tx.insert_rows(
            &format!("{p}companies"),
            &[
                "uscc",
                "name",
                "credit_rating",
                "blacklisted_on",
                "key_supervision_since",
                "grade_review_since",
                "exit_condition_since",
                "exit_started_at",
            ],
            &mut companies.iter().filter_map(|company| company.row.as_ref().map(|row| (company, row))).map(
                |(company, row)| {
                    vec![
                        Value::text(&*company.uscc),
                        Value::text(row.name.as_str()),
                        text(row.credit_rating.as_deref()),
                        Value::Text(row.blacklisted_on.map(|day| day.to_string())),
                        Value::Int(row.key_supervision_since),
                        Value::Int(row.grade_review_since),
                        Value::Int(row.exit_condition_since),
                        Value::Int(row.exit_started_at),
                    ]
                },
            ),
        )?;

        tx.insert_rows(
            &format!("{p}leads"),
            &[
                "lead",
                "uscc",
                "district",
                "open",
                "counted",
                "community",
                "complainant_key",
                "identity",
                "anonymous",
                "linked_to",
                "registered_at",
                "finding",
                "found_at",
            ],
            &mut leads.iter().filter_map(|(lead, entry)| entry.row.as_ref().map(|row| (lead, row))).map(
                |(lead, row)| {
                    let counted = row.counted.as_ref();
                    let identity = counted.map(|counted| match counted.identity {
                        Identity::Keyed(key) => symbols.text(key).to_owned(),
                        Identity::AnonymousLinkedTo(linked) => format!("anonymous:{}", symbols.text(linked)),
                        Identity::AnonymousItself => format!("anonymous:{lead}"),
                    });
                    vec![
                        Value::text(*lead),
                        text(row.uscc.map(|company| &*self.companies[company as usize].uscc)),
                        symbol(row.district),
                        Value::Int(row.open.map(i64::from)),
                        Value::Int(counted.map(|_| 1)),
                        symbol(counted.map(|counted| counted.community)),
                        symbol(row.complainant_key),
                        Value::Text(identity),
                        Value::Int(counted.map(|counted| i64::from(!matches!(counted.identity, Identity::Keyed(_))))),
                        symbol(row.linked_to),
                        Value::Int(counted.map(|counted| counted.registered_at)),
                        text(row.finding.map(|(finding, _)| finding)),
                        Value::Int(row.finding.map(|(_, found_at)| found_at)),
                    ]
                },
            ),
        )?;

        tx.insert_rows(
            &format!("{p}lead_deadlines"),
            &["lead", "seq", "due", "provisional"],
            &mut leads.iter().flat_map(|(lead, entry)| {
                let mut deadlines = entry.deadlines.clone();
                deadlines.sort_unstable_by_key(|(seq, _)| *seq);
                deadlines.into_iter().map(|(seq, deadline)| {
                    vec![
                        Value::text(*lead),
                        Value::int(i64::from(seq)),
                        Value::int(deadline.due),
                        Value::int(i64::from(deadline.provisional)),
                    ]
                })
            }),
        )?;

        tx.insert_rows(
            &format!("{p}company_deadlines"),
            &["uscc", "seq", "kind", "rule", "community", "due", "reason", "provisional"],
            &mut companies.iter().flat_map(|company| {
                let mut deadlines: Vec<&(u32, CompanyDeadline)> = company.deadlines.iter().collect();
                deadlines.sort_unstable_by_key(|(seq, _)| *seq);
                deadlines.into_iter().map(|(seq, deadline)| {
                    vec![
                        Value::text(&*company.uscc),
                        Value::int(i64::from(*seq)),
                        Value::text(deadline.kind.as_str()),
                        Value::text(deadline.rule.as_str()),
                        symbol(deadline.community),
                        Value::int(deadline.due),
                        Value::Text(deadline.reason.as_ref().map(downgrade_reason_text)),
                        Value::int(i64::from(deadline.provisional)),
                    ]
                })
            }),
        )?;

        tx.insert_rows(
            &format!("{p}company_districts"),
            &["uscc", "district"],
            &mut companies.iter().flat_map(|company| {
                let mut districts: Vec<&str> =
                    company.districts.iter().map(|district| symbols.text(*district)).collect();
                districts.sort_unstable();
                districts.into_iter().map(|district| vec![Value::text(&*company.uscc), Value::text(district)])
            }),
        )?;

        tx.insert_rows(
            &format!("{p}surveys"),
            &["uscc", "position", "community", "at", "respondents", "satisfied"],
            &mut companies.iter().flat_map(|company| {
                let mut surveys: Vec<&Survey> = company.surveys.iter().collect();
                surveys.sort_unstable_by_key(|survey| survey.position);
                surveys.into_iter().map(|survey| {
                    vec![
                        Value::text(&*company.uscc),
                        Value::int(survey.position),
                        Value::text(symbols.text(survey.community)),
                        Value::int(survey.at),
                        Value::int(survey.respondents),
                        Value::int(survey.satisfied),
                    ]
                })
            }),
        )?;

        tx.insert_rows(
            &format!("{p}refusals"),
            &["uscc", "position", "community", "at", "detail"],
            &mut companies.iter().flat_map(|company| {
                let mut refusals: Vec<&Refusal> = company.refusals.iter().collect();
                refusals.sort_unstable_by_key(|refusal| refusal.position);
                refusals.into_iter().map(|refusal| {
                    vec![
                        Value::text(&*company.uscc),
                        Value::int(refusal.position),
                        Value::text(symbols.text(refusal.community)),
                        Value::int(refusal.at),
                        Value::text(refusal.detail.as_str()),
                    ]
                })
            }),
        )?;

        tx.insert_rows(
            &format!("{p}grades"),
            &["uscc", "community", "grade", "at"],
            &mut companies.iter().flat_map(|company| {
                let mut grades: Vec<(&str, &Grade)> =
                    company.grades.iter().map(|grade| (symbols.text(grade.community), grade)).collect();
                grades.sort_unstable_by_key(|(community, _)| *community);
                grades.into_iter().map(|(community, grade)| {
                    vec![
                        Value::text(&*company.uscc),
                        Value::text(community),
                        Value::int(grade.grade),
                        Value::int(grade.at),
                    ]
                })
            }),
        )?;
        Ok(())
    }
}
