//! Applies events to the watchlist's tables.
//!
//! A batch is first folded into net changes in memory (one patch per lead, per company, per
//! deadline), then written with a few prepared statements per changed row: a rebuild touches
//! each row once per batch, whatever the number of events about it. Nothing is kept from one
//! batch to the next, so a batch whose transaction rolls back leaves no trace in the writer.
//!
//! A recomputed due instant (interpretation 21) changes the deadline's row where there is one:
//! a deadline opened in the batch takes the new due before it is inserted, one closed in it
//! stays closed, and any other is updated in the table by its key, which changes nothing when
//! the table has no such row.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset};
use tousu_domain::complaint::{ComplaintEvent, ComplaintFact, Finding, ReviewOutcome};
use tousu_domain::deadline::{Deadline, DeadlineClosure};
use tousu_domain::enterprise::{DowngradeReason, EnterpriseEvent, EnterpriseFact};
use tousu_domain::ids::BodyCode;
use tousu_domain::obligations::EscalationFact;
use tousu_projection::{ModelWriter, Payload, ProjectedEvent, ProjectionError, SqlError, SqlTx, Value};

/// The writer of one generation of the watchlist.
pub struct WatchlistWriter {
    sql: Statements,
}

impl WatchlistWriter {
    /// A writer for the tables with this prefix.
    pub fn new(prefix: &str) -> WatchlistWriter {
        WatchlistWriter { sql: Statements::new(prefix) }
    }
}

/// The statements, with the generation's prefix written in once.
struct Statements {
    upsert_lead: String,
    update_lead_open: String,
    update_lead_finding: String,
    insert_lead_deadline: String,
    delete_lead_deadline: String,
    recompute_lead_deadline: String,
    select_company: String,
    upsert_company: String,
    upsert_company_name: String,
    insert_company_deadline: String,
    delete_company_deadline: String,
    recompute_company_deadline: String,
    insert_district: String,
    insert_survey: String,
    insert_refusal: String,
    upsert_grade: String,
}

impl Statements {
    fn new(p: &str) -> Statements {
        Statements {
            upsert_lead: format!(
                "INSERT INTO {p}leads (lead, uscc, district, open, counted, community, complainant_key, identity,
                     anonymous, linked_to, registered_at, finding, found_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (lead) DO UPDATE SET
                     uscc = COALESCE(excluded.uscc, {p}leads.uscc),
                     district = COALESCE(excluded.district, {p}leads.district),
                     open = COALESCE(excluded.open, {p}leads.open),
                     counted = COALESCE(excluded.counted, {p}leads.counted),
                     community = COALESCE(excluded.community, {p}leads.community),
                     complainant_key = COALESCE(excluded.complainant_key, {p}leads.complainant_key),
                     identity = COALESCE(excluded.identity, {p}leads.identity),
                     anonymous = COALESCE(excluded.anonymous, {p}leads.anonymous),
                     linked_to = COALESCE(excluded.linked_to, {p}leads.linked_to),
                     registered_at = COALESCE(excluded.registered_at, {p}leads.registered_at),
                     finding = COALESCE(excluded.finding, {p}leads.finding),
                     found_at = COALESCE(excluded.found_at, {p}leads.found_at)"
            ),
            update_lead_open: format!("UPDATE {p}leads SET open = $2 WHERE lead = $1"),
            update_lead_finding: format!("UPDATE {p}leads SET finding = $2, found_at = $3 WHERE lead = $1"),
            insert_lead_deadline: format!(
                "INSERT INTO {p}lead_deadlines (lead, seq, due, provisional) VALUES ($1, $2, $3, $4)"
            ),
            delete_lead_deadline: format!("DELETE FROM {p}lead_deadlines WHERE lead = $1 AND seq = $2"),
            recompute_lead_deadline: format!(
                "UPDATE {p}lead_deadlines SET due = $3, provisional = $4 WHERE lead = $1 AND seq = $2"
            ),
            select_company: format!(
                "SELECT name, credit_rating, blacklisted_on, key_supervision_since, grade_review_since,
                     exit_condition_since, exit_started_at
                 FROM {p}companies WHERE uscc = $1"
            ),
            upsert_company: format!(
                "INSERT INTO {p}companies (uscc, name, credit_rating, blacklisted_on, key_supervision_since,
                     grade_review_since, exit_condition_since, exit_started_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (uscc) DO UPDATE SET name = excluded.name, credit_rating = excluded.credit_rating,
                     blacklisted_on = excluded.blacklisted_on,
                     key_supervision_since = excluded.key_supervision_since,
                     grade_review_since = excluded.grade_review_since,
                     exit_condition_since = excluded.exit_condition_since,
                     exit_started_at = excluded.exit_started_at"
            ),
            upsert_company_name: format!(
                "INSERT INTO {p}companies (uscc, name) VALUES ($1, $2) ON CONFLICT (uscc) DO UPDATE SET name = excluded.name"
            ),
            insert_company_deadline: format!(
                "INSERT INTO {p}company_deadlines (uscc, seq, kind, rule, community, due, reason, provisional)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            delete_company_deadline: format!("DELETE FROM {p}company_deadlines WHERE uscc = $1 AND seq = $2"),
            recompute_company_deadline: format!(
                "UPDATE {p}company_deadlines SET due = $3, provisional = $4 WHERE uscc = $1 AND seq = $2"
            ),
            insert_district: format!(
                "INSERT INTO {p}company_districts (uscc, district) VALUES ($1, $2)
                 ON CONFLICT (uscc, district) DO NOTHING"
            ),
            insert_survey: format!(
                "INSERT INTO {p}surveys (uscc, position, community, at, respondents, satisfied)
                 VALUES ($1, $2, $3, $4, $5, $6)"
            ),
            insert_refusal: format!(
                "INSERT INTO {p}refusals (uscc, position, community, at, detail) VALUES ($1, $2, $3, $4, $5)"
            ),
            upsert_grade: format!(
                "INSERT INTO {p}grades (uscc, community, grade, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (uscc, community) DO UPDATE SET grade = excluded.grade, at = excluded.at"
            ),
        }
    }
}

/// What a batch says about one lead; `None` leaves the stored value as it is.
#[derive(Debug, Default)]
struct LeadPatch {
    uscc: Option<String>,
    district: Option<String>,
    open: Option<bool>,
    counted: Option<Counted>,
    finding: Option<(&'static str, i64)>,
}

/// A lead as the company's stream counts it.
#[derive(Debug)]
struct Counted {
    community: String,
    complainant_key: Option<String>,
    /// The complainant as interpretation 2 counts them: the keyed identity, or for an
    /// anonymous lead the complaint it belongs to (itself, or the lead it was split from).
    identity: String,
    anonymous: bool,
    linked_to: Option<String>,
    registered_at: i64,
}

/// A company's row, as loaded and changed by the batch.
#[derive(Debug, Default)]
struct CompanyRow {
    name: String,
    credit_rating: Option<String>,
    blacklisted_on: Option<String>,
    key_supervision_since: Option<i64>,
    grade_review_since: Option<i64>,
    exit_condition_since: Option<i64>,
    exit_started_at: Option<i64>,
}

/// The net change of one deadline within the batch.
#[derive(Debug)]
enum DeadlineChange<T> {
    /// Opened in this batch and still open.
    Insert(T),
    /// Opened before this batch and closed in it.
    Delete,
    /// Not opened in this batch, and its due instant recomputed in it (interpretation 21): the
    /// stored row, if there is one, takes this due instant and flag.
    Recomputed { due: i64, provisional: bool },
}

/// A deadline row whose due instant a recomputation replaces (interpretation 21).
trait DueRow {
    fn recompute(&mut self, due: i64, provisional: bool);
}

/// A lead deadline to insert: its due instant, and whether that is provisional
/// (interpretation 21).
#[derive(Debug)]
struct LeadDeadlineRow {
    due: i64,
    provisional: bool,
}

impl DueRow for LeadDeadlineRow {
    fn recompute(&mut self, due: i64, provisional: bool) {
        self.due = due;
        self.provisional = provisional;
    }
}

/// A company deadline to insert.
#[derive(Debug)]
struct CompanyDeadlineRow {
    kind: &'static str,
    rule: &'static str,
    community: Option<String>,
    due: i64,
    reason: Option<String>,
    /// Interpretation 21: the due instant rests on the provisional calendar.
    provisional: bool,
}

impl DueRow for CompanyDeadlineRow {
    fn recompute(&mut self, due: i64, provisional: bool) {
        self.due = due;
        self.provisional = provisional;
    }
}

/// The net changes of one batch.
#[derive(Default)]
struct Batch {
    leads: HashMap<String, LeadPatch>,
    lead_deadlines: HashMap<(String, u32), DeadlineChange<LeadDeadlineRow>>,
    companies: HashMap<String, CompanyRow>,
    names: HashMap<String, String>,
    company_deadlines: HashMap<(String, u32), DeadlineChange<CompanyDeadlineRow>>,
    districts: HashSet<(String, String)>,
    surveys: Vec<Vec<Value>>,
    refusals: Vec<Vec<Value>>,
    grades: HashMap<(String, String), (i64, i64)>,
}

/// An instant as stored: epoch milliseconds.
pub(crate) fn ms(at: DateTime<FixedOffset>) -> i64 {
    at.timestamp_millis()
}

/// A finding as stored in `leads.finding`: a substantiated finding that is not the company's
/// responsibility (interpretation 22) is stored apart, so that only `substantiated` counts for
/// GRD-1 and EXT-1. Findings counted before that interpretation are the company's, and are
/// stored as they were.
pub(crate) fn finding_text(finding: Finding, attributable: bool) -> &'static str {
    match (finding, attributable) {
        (Finding::Substantiated, true) => "substantiated",
        (Finding::Substantiated, false) => NOT_ATTRIBUTABLE,
        (Finding::Unsubstantiated, _) => "unsubstantiated",
    }
}

/// How `leads.finding` stores a substantiated finding that is not the company's
/// responsibility (interpretation 22).
pub(crate) const NOT_ATTRIBUTABLE: &str = "substantiated_not_attributable";

/// Basis points as a percentage with two decimals, e.g. `59.90 %`.
pub(crate) fn percent(bp: u32) -> String {
    format!("{}.{:02} %", bp / 100, bp % 100)
}

/// GRD-2: why a downgrade is due, as stored in `company_deadlines.reason`.
pub(crate) fn downgrade_reason_text(reason: &DowngradeReason) -> String {
    match reason {
        DowngradeReason::LowSatisfaction { satisfaction_bp } => {
            format!("survey satisfaction {}", percent(*satisfaction_bp))
        }
        DowngradeReason::RectificationRefused => "refusal or failure to rectify".to_owned(),
    }
}

fn apply_deadlines<K: Clone + Eq + std::hash::Hash, T>(
    changes: &mut HashMap<K, DeadlineChange<T>>,
    key: impl Fn(u32) -> K,
    opens: impl IntoIterator<Item = (u32, T)>,
    closes: &[DeadlineClosure],
) {
    for closure in closes {
        let key = key(closure.seq);
        // A deadline opened and closed within the batch never reaches the table.
        match changes.remove(&key) {
            Some(DeadlineChange::Insert(_)) => {}
            Some(DeadlineChange::Delete | DeadlineChange::Recomputed { .. }) | None => {
                changes.insert(key, DeadlineChange::Delete);
            }
        }
    }
    for (seq, row) in opens {
        changes.insert(key(seq), DeadlineChange::Insert(row));
    }
}

/// Interpretation 21: a deadline's due instant recomputed. A deadline opened in the batch takes
/// it before it is inserted; one closed in the batch stays closed (a closed deadline has no row
/// to change); any other row is updated in the table, if it is there.
fn recompute_deadline<K: Eq + std::hash::Hash, T: DueRow>(
    changes: &mut HashMap<K, DeadlineChange<T>>,
    key: K,
    due: i64,
    provisional: bool,
) {
    match changes.entry(key) {
        Entry::Occupied(mut change) => match change.get_mut() {
            DeadlineChange::Insert(row) => row.recompute(due, provisional),
            DeadlineChange::Delete => {}
            DeadlineChange::Recomputed { due: kept_due, provisional: kept_provisional } => {
                (*kept_due, *kept_provisional) = (due, provisional);
            }
        },
        Entry::Vacant(change) => {
            change.insert(DeadlineChange::Recomputed { due, provisional });
        }
    }
}

impl Batch {
    fn lead(&mut self, lead: &str) -> &mut LeadPatch {
        self.leads.entry(lead.to_owned()).or_default()
    }

    fn company(&mut self, tx: &mut dyn SqlTx, sql: &Statements, uscc: &str) -> Result<&mut CompanyRow, SqlError> {
        if !self.companies.contains_key(uscc) {
            let rows = tx.query(&sql.select_company, &[Value::text(uscc)])?;
            let row = match rows.first() {
                Some(row) => CompanyRow {
                    name: row[0].as_str().unwrap_or_default().to_owned(),
                    credit_rating: row[1].as_str().map(str::to_owned),
                    blacklisted_on: row[2].as_str().map(str::to_owned),
                    key_supervision_since: row[3].as_i64(),
                    grade_review_since: row[4].as_i64(),
                    exit_condition_since: row[5].as_i64(),
                    exit_started_at: row[6].as_i64(),
                },
                None => CompanyRow::default(),
            };
            self.companies.insert(uscc.to_owned(), row);
        }
        Ok(self.companies.get_mut(uscc).expect("inserted above"))
    }

    fn complaint(&mut self, lead: &str, event: &ComplaintEvent) {
        match &event.fact {
            // Interpretation 22: a lead naming no company is on no company's record (its
            // deadlines are kept all the same, as `bulk` keeps them).
            ComplaintFact::Registered { registration, .. } | ComplaintFact::SplitFrom { registration, .. } => {
                if let Some(named) = &registration.company {
                    let uscc = named.uscc.as_str();
                    let patch = self.lead(lead);
                    patch.uscc = Some(uscc.to_owned());
                    patch.district = Some(registration.place.district.clone());
                    patch.open = Some(true);
                    self.districts.insert((uscc.to_owned(), registration.place.district.clone()));
                    self.names.insert(uscc.to_owned(), named.name.clone());
                }
            }
            // Closure is complete (the lead no longer open) as `complaint::evolve` has it: the
            // handling body's signature, except for 住建's own matters, which need the street
            // office's countersignature (HDL-3).
            ComplaintFact::ClosureSigned { body, .. } if *body != BodyCode::ZJ => self.lead(lead).open = Some(false),
            ComplaintFact::ClosureCountersigned { .. } => self.lead(lead).open = Some(false),
            // A review follows a complete closure: cancelling leaves the lead closed, sending it
            // back opens it again, as a dissatisfied follow-up does (interpretation 18).
            ComplaintFact::ClosureReviewed { outcome: ReviewOutcome::SentBack { .. }, .. }
            | ComplaintFact::Reopened { .. } => self.lead(lead).open = Some(true),
            // Interpretation 21: before the event's own closes and opens, as in `bulk`.
            ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { seq, due, provisional, .. }) => {
                recompute_deadline(&mut self.lead_deadlines, (lead.to_owned(), *seq), ms(*due), *provisional);
            }
            _ => {}
        }
        apply_deadlines(
            &mut self.lead_deadlines,
            |seq| (lead.to_owned(), seq),
            event.opens.iter().map(|deadline| {
                (deadline.seq, LeadDeadlineRow { due: ms(deadline.due), provisional: deadline.provisional })
            }),
            &event.closes,
        );
    }

    fn enterprise(
        &mut self,
        tx: &mut dyn SqlTx,
        sql: &Statements,
        uscc: &str,
        position: u64,
        event: &EnterpriseEvent,
    ) -> Result<(), SqlError> {
        let at = ms(event.at);
        let mut downgrade_reason = None;
        match &event.fact {
            EnterpriseFact::ComplaintRecorded {
                company_name,
                lead,
                complainant_key,
                registered_at,
                community,
                linked_to,
                ..
            } => {
                let identity = match complainant_key {
                    Some(key) => key.as_str().to_owned(),
                    None => format!("anonymous:{}", linked_to.as_ref().unwrap_or(lead)),
                };
                let patch = self.lead(lead.as_str());
                patch.uscc = Some(uscc.to_owned());
                patch.counted = Some(Counted {
                    community: community.clone(),
                    complainant_key: complainant_key.as_ref().map(|key| key.as_str().to_owned()),
                    identity,
                    anonymous: complainant_key.is_none(),
                    linked_to: linked_to.as_ref().map(|id| id.as_str().to_owned()),
                    registered_at: ms(*registered_at),
                });
                self.names.insert(uscc.to_owned(), company_name.clone());
            }
            EnterpriseFact::FindingRecorded { lead, finding, attributable, found_at } => {
                self.lead(lead.as_str()).finding = Some((finding_text(*finding, *attributable), ms(*found_at)));
            }
            EnterpriseFact::KeySupervisionStarted { .. } => {
                self.company(tx, sql, uscc)?.key_supervision_since = Some(at)
            }
            EnterpriseFact::KeySupervisionEnded { .. } => self.company(tx, sql, uscc)?.key_supervision_since = None,
            EnterpriseFact::GradeReviewRequired { .. } => self.company(tx, sql, uscc)?.grade_review_since = Some(at),
            EnterpriseFact::GradeReviewConditionEnded => self.company(tx, sql, uscc)?.grade_review_since = None,
            EnterpriseFact::ExitConditionMet { .. } => self.company(tx, sql, uscc)?.exit_condition_since = Some(at),
            EnterpriseFact::ExitConditionEnded => self.company(tx, sql, uscc)?.exit_condition_since = None,
            EnterpriseFact::ExitProcedureStarted { .. } => self.company(tx, sql, uscc)?.exit_started_at = Some(at),
            EnterpriseFact::CreditRatingRecorded { rating } => {
                self.company(tx, sql, uscc)?.credit_rating = Some(rating.clone());
            }
            EnterpriseFact::Blacklisted { listed_on } => {
                self.company(tx, sql, uscc)?.blacklisted_on = Some(listed_on.to_string());
            }
            EnterpriseFact::RemovedFromBlacklist { .. } => self.company(tx, sql, uscc)?.blacklisted_on = None,
            EnterpriseFact::SurveyCompleted { community, respondents, satisfied, .. } => {
                self.surveys.push(vec![
                    Value::text(uscc),
                    Value::int(position as i64),
                    Value::text(community.as_str()),
                    Value::int(at),
                    Value::int(i64::from(*respondents)),
                    Value::int(i64::from(*satisfied)),
                ]);
            }
            EnterpriseFact::RectificationRefused { community, detail } => {
                self.refusals.push(vec![
                    Value::text(uscc),
                    Value::int(position as i64),
                    Value::text(community.as_str()),
                    Value::int(at),
                    Value::text(detail.as_str()),
                ]);
            }
            EnterpriseFact::DowngradeRequired { reason, .. } => {
                downgrade_reason = Some(downgrade_reason_text(reason));
            }
            EnterpriseFact::GradeDowngraded { community, to_grade, .. } => {
                self.grades.insert((uscc.to_owned(), community.clone()), (i64::from(*to_grade), at));
            }
            // Interpretation 21: before the event's own closes and opens, as in `bulk`.
            EnterpriseFact::Escalation(EscalationFact::DeadlineRecomputed { seq, due, provisional, .. }) => {
                recompute_deadline(&mut self.company_deadlines, (uscc.to_owned(), *seq), ms(*due), *provisional);
            }
            _ => {}
        }
        let row = |deadline: &Deadline| CompanyDeadlineRow {
            kind: deadline.kind.as_str(),
            rule: deadline.rule.as_str(),
            community: deadline.community.clone(),
            due: ms(deadline.due),
            reason: downgrade_reason.clone(),
            provisional: deadline.provisional,
        };
        apply_deadlines(
            &mut self.company_deadlines,
            |seq| (uscc.to_owned(), seq),
            event.opens.iter().map(|deadline| (deadline.seq, row(deadline))),
            &event.closes,
        );
        Ok(())
    }

    fn flush(self, tx: &mut dyn SqlTx, sql: &Statements) -> Result<(), SqlError> {
        for (uscc, row) in self.companies {
            tx.execute(
                &sql.upsert_company,
                &[
                    Value::text(uscc),
                    Value::text(row.name),
                    Value::Text(row.credit_rating),
                    Value::Text(row.blacklisted_on),
                    Value::Int(row.key_supervision_since),
                    Value::Int(row.grade_review_since),
                    Value::Int(row.exit_condition_since),
                    Value::Int(row.exit_started_at),
                ],
            )?;
        }
        // Names last: a company whose other facts were loaded and written above keeps the
        // name the latest lead gives it.
        for (uscc, name) in self.names {
            tx.execute(&sql.upsert_company_name, &[Value::text(uscc), Value::text(name)])?;
        }
        for (lead, patch) in self.leads {
            // Most patches only open or close a lead or record a finding: a narrow update,
            // unless the row does not exist yet.
            if patch.uscc.is_none() && patch.district.is_none() && patch.counted.is_none() {
                let mut updated = true;
                if let Some(open) = patch.open {
                    updated &= tx
                        .execute(&sql.update_lead_open, &[Value::text(lead.as_str()), Value::int(i64::from(open))])?
                        == 1;
                }
                if let Some((finding, found_at)) = patch.finding {
                    let params = [Value::text(lead.as_str()), Value::text(finding), Value::int(found_at)];
                    updated &= tx.execute(&sql.update_lead_finding, &params)? == 1;
                }
                if updated {
                    continue;
                }
            }
            let counted = patch.counted;
            tx.execute(
                &sql.upsert_lead,
                &[
                    Value::text(lead),
                    Value::Text(patch.uscc),
                    Value::Text(patch.district),
                    Value::Int(patch.open.map(i64::from)),
                    Value::Int(counted.as_ref().map(|_| 1)),
                    Value::Text(counted.as_ref().map(|c| c.community.clone())),
                    Value::Text(counted.as_ref().and_then(|c| c.complainant_key.clone())),
                    Value::Text(counted.as_ref().map(|c| c.identity.clone())),
                    Value::Int(counted.as_ref().map(|c| i64::from(c.anonymous))),
                    Value::Text(counted.as_ref().and_then(|c| c.linked_to.clone())),
                    Value::Int(counted.as_ref().map(|c| c.registered_at)),
                    Value::Text(patch.finding.map(|(finding, _)| finding.to_owned())),
                    Value::Int(patch.finding.map(|(_, found_at)| found_at)),
                ],
            )?;
        }
        for ((lead, seq), change) in self.lead_deadlines {
            match change {
                DeadlineChange::Insert(row) => tx.execute(
                    &sql.insert_lead_deadline,
                    &[
                        Value::text(lead),
                        Value::int(i64::from(seq)),
                        Value::int(row.due),
                        Value::int(i64::from(row.provisional)),
                    ],
                )?,
                DeadlineChange::Delete => {
                    tx.execute(&sql.delete_lead_deadline, &[Value::text(lead), Value::int(i64::from(seq))])?
                }
                DeadlineChange::Recomputed { due, provisional } => tx.execute(
                    &sql.recompute_lead_deadline,
                    &[
                        Value::text(lead),
                        Value::int(i64::from(seq)),
                        Value::int(due),
                        Value::int(i64::from(provisional)),
                    ],
                )?,
            };
        }
        for ((uscc, seq), change) in self.company_deadlines {
            match change {
                DeadlineChange::Insert(row) => tx.execute(
                    &sql.insert_company_deadline,
                    &[
                        Value::text(uscc),
                        Value::int(i64::from(seq)),
                        Value::text(row.kind),
                        Value::text(row.rule),
                        Value::Text(row.community),
                        Value::int(row.due),
                        Value::Text(row.reason),
                        Value::int(i64::from(row.provisional)),
                    ],
                )?,
                DeadlineChange::Delete => {
                    tx.execute(&sql.delete_company_deadline, &[Value::text(uscc), Value::int(i64::from(seq))])?
                }
                DeadlineChange::Recomputed { due, provisional } => tx.execute(
                    &sql.recompute_company_deadline,
                    &[
                        Value::text(uscc),
                        Value::int(i64::from(seq)),
                        Value::int(due),
                        Value::int(i64::from(provisional)),
                    ],
                )?,
            };
        }
        for (uscc, district) in self.districts {
            tx.execute(&sql.insert_district, &[Value::text(uscc), Value::text(district)])?;
        }
        for survey in self.surveys {
            tx.execute(&sql.insert_survey, &survey)?;
        }
        for refusal in self.refusals {
            tx.execute(&sql.insert_refusal, &refusal)?;
        }
        for ((uscc, community), (grade, at)) in self.grades {
            tx.execute(
                &sql.upsert_grade,
                &[Value::text(uscc), Value::text(community), Value::int(grade), Value::int(at)],
            )?;
        }
        Ok(())
    }
}

impl ModelWriter for WatchlistWriter {
    fn apply(&mut self, tx: &mut dyn SqlTx, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        let mut batch = Batch::default();
        for event in events {
            match &event.payload {
                Payload::Complaint { lead, event: complaint } => {
                    batch.complaint(lead.as_str(), complaint);
                }
                Payload::Enterprise { uscc, event: enterprise } => {
                    batch.enterprise(tx, &self.sql, uscc.as_str(), event.position, enterprise)?;
                }
                Payload::Weekly { .. } | Payload::Other => {}
            }
        }
        batch.flush(tx, &self.sql)?;
        Ok(())
    }
}
