//! Applies events to the `bulletin` tables (PUB-1).
//!
//! - A registration records the lead's company, the company's name, and the complainant for
//!   the month of registration.
//! - A closure — the signature of a body other than 住建, or the countersignature of a
//!   matter 住建 handles (HDL-3) — counts for the month of its instant, on time when it is at
//!   or before the due instant of the handling deadline it meets (HDL-1 `general-close` or
//!   HDL-2 `major-resolve`; an urgent matter has none and is on time).
//! - A dissatisfied 12345 follow-up (HDL-4) and a refusal to rectify (GRD-2, on the company's
//!   stream) count for the month of their instant.
//! - Every lead deadline is kept while open, and after it closes if it closed late.
//! - A recomputed due instant (interpretation 21) replaces the due of the open deadline it
//!   names, and whether it is provisional; it changes nothing where that deadline has no open
//!   row.
//!
//! The writer keeps no state between batches.

use chrono::{DateTime, FixedOffset};
use tousu_domain::complaint::{ComplaintEvent, ComplaintFact, Finding, Registration, Satisfaction};
use tousu_domain::deadline::DeadlineKind;
use tousu_domain::enterprise::{EnterpriseEvent, EnterpriseFact};
use tousu_domain::ids::{BodyCode, ComplaintId, Uscc};
use tousu_domain::obligations::EscalationFact;
use tousu_projection::{ModelWriter, Payload, ProjectedEvent, ProjectionError, SqlError, SqlTx, Value};

use crate::{OPEN, millis, month_key};

/// The writer of one generation of `bulletin`.
#[derive(Debug)]
pub struct BulletinWriter {
    insert_lead: String,
    record_finding: String,
    upsert_company: String,
    insert_complainant: String,
    open_deadline: String,
    drop_met_deadline: String,
    close_deadline: String,
    recompute_deadline: String,
    handling_due: String,
    count_closure: String,
    count_dissatisfied: String,
    count_fee_refusal: String,
    count_refusal: String,
}

impl BulletinWriter {
    /// A writer for the tables under `prefix`.
    pub fn new(prefix: &str) -> BulletinWriter {
        let p = prefix;
        BulletinWriter {
            insert_lead: format!(
                "INSERT INTO {p}leads (lead, company) VALUES ($1, $2)
                 ON CONFLICT (lead) DO UPDATE SET company = excluded.company"
            ),
            // Interpretations 22, 23: the latest finding, on the lead's row only.
            record_finding: format!("UPDATE {p}leads SET substantiated = $2, attributable = $3 WHERE lead = $1"),
            upsert_company: format!(
                "INSERT INTO {p}companies (uscc, name) VALUES ($1, $2)
                 ON CONFLICT (uscc) DO UPDATE SET name = excluded.name"
            ),
            insert_complainant: format!(
                "INSERT INTO {p}complainants (company, month, who) VALUES ($1, $2, $3)
                 ON CONFLICT (company, month, who) DO NOTHING"
            ),
            open_deadline: format!(
                "INSERT INTO {p}deadlines (lead, seq, kind, due, opened_at, closed_at, provisional)
                 VALUES ($1, $2, $3, $4, $5, {OPEN}, $6)
                 ON CONFLICT (lead, seq) DO UPDATE SET kind = excluded.kind, due = excluded.due,
                 opened_at = excluded.opened_at, closed_at = {OPEN}, provisional = excluded.provisional"
            ),
            drop_met_deadline: format!("DELETE FROM {p}deadlines WHERE lead = $1 AND seq = $2 AND due >= $3"),
            close_deadline: format!("UPDATE {p}deadlines SET closed_at = $3 WHERE lead = $1 AND seq = $2"),
            // Interpretation 21: only an open deadline's due is recomputed; the row of one closed
            // late keeps the due it was judged late by.
            recompute_deadline: format!(
                "UPDATE {p}deadlines SET due = $3, provisional = $4 WHERE lead = $1 AND seq = $2 AND closed_at = {OPEN}"
            ),
            // By the primary key alone: with a condition on `closed_at` as well, the planner
            // may pick the `closed_at` index and walk every open deadline.
            handling_due: format!("SELECT kind, due, closed_at FROM {p}deadlines WHERE lead = $1"),
            count_closure: format!(
                "INSERT INTO {p}months (company, month, closed, closed_on_time, refusals, dissatisfied)
                 SELECT company, CAST($2 AS BIGINT), 1, CAST($3 AS BIGINT), 0, 0
                 FROM {p}leads WHERE lead = $1
                 ON CONFLICT (company, month) DO UPDATE SET closed = {p}months.closed + 1,
                 closed_on_time = {p}months.closed_on_time + excluded.closed_on_time"
            ),
            // Interpretations 22, 23: a dissatisfied follow-up counts only on a lead that is the
            // company's responsibility.
            count_dissatisfied: format!(
                "INSERT INTO {p}months (company, month, closed, closed_on_time, refusals, dissatisfied)
                 SELECT company, CAST($2 AS BIGINT), 0, 0, 0, 1
                 FROM {p}leads WHERE lead = $1 AND attributable = 1
                 ON CONFLICT (company, month) DO UPDATE SET dissatisfied = {p}months.dissatisfied + 1"
            ),
            // Interpretation 23: the company's refusal of the lower fee standard (GRD-3).
            count_fee_refusal: format!(
                "INSERT INTO {p}months (company, month, closed, closed_on_time, refusals, dissatisfied, fee_refusals)
                 VALUES ($1, $2, 0, 0, 0, 0, 1)
                 ON CONFLICT (company, month) DO UPDATE SET fee_refusals = {p}months.fee_refusals + 1"
            ),
            count_refusal: format!(
                "INSERT INTO {p}months (company, month, closed, closed_on_time, refusals, dissatisfied)
                 VALUES ($1, $2, 0, 0, 1, 0)
                 ON CONFLICT (company, month) DO UPDATE SET refusals = {p}months.refusals + 1"
            ),
        }
    }

    fn apply_lead(&self, tx: &mut dyn SqlTx, lead: &ComplaintId, event: &ComplaintEvent) -> Result<(), SqlError> {
        let id = Value::text(lead.as_str());
        match &event.fact {
            ComplaintFact::Registered { registration, complainant_key, .. } => {
                let who = complainant_key.as_ref().map_or_else(|| anonymous(lead), |key| key.as_str().to_owned());
                self.register(tx, &id, registration, event.at, who)?;
            }
            ComplaintFact::SplitFrom { parent, registration, complainant_key, registered_at, .. } => {
                let who = complainant_key.as_ref().map_or_else(|| anonymous(parent), |key| key.as_str().to_owned());
                self.register(tx, &id, registration, *registered_at, who)?;
            }
            // HDL-3: a matter 住建 handles directly closes with the countersignature.
            ComplaintFact::ClosureSigned { body, .. } if *body == BodyCode::ZJ => {}
            ComplaintFact::ClosureSigned { .. } | ComplaintFact::ClosureCountersigned { .. } => {
                // Before the event's closings: the handling deadline it meets is still open.
                let rows = tx.query(&self.handling_due, std::slice::from_ref(&id))?;
                let handling = [DeadlineKind::GeneralClose.as_str(), DeadlineKind::MajorResolve.as_str()];
                let due = rows
                    .iter()
                    .filter(|row| row[0].as_str().is_some_and(|kind| handling.contains(&kind)))
                    .filter(|row| row[2].as_i64() == Some(OPEN))
                    .filter_map(|row| row[1].as_i64())
                    .min();
                let on_time = due.is_none_or(|due| millis(event.at) <= due);
                let counted = [id.clone(), Value::int(month_key(event.at)), Value::int(i64::from(on_time))];
                tx.execute(&self.count_closure, &counted)?;
            }
            ComplaintFact::SatisfactionRecorded { satisfaction: Satisfaction::Dissatisfied, .. } => {
                tx.execute(&self.count_dissatisfied, &[id.clone(), Value::int(month_key(event.at))])?;
            }
            ComplaintFact::FindingRecorded { finding, attributable, .. } => {
                let substantiated = i64::from(against_company(*finding, *attributable));
                // A finding recorded before interpretation 22 is the company's.
                let attributable = i64::from(attributable.unwrap_or(true));
                tx.execute(&self.record_finding, &[id.clone(), Value::int(substantiated), Value::int(attributable)])?;
            }
            ComplaintFact::Escalation(EscalationFact::DeadlineRecomputed { seq, due, provisional, .. }) => {
                tx.execute(
                    &self.recompute_deadline,
                    &[
                        id.clone(),
                        Value::int(i64::from(*seq)),
                        Value::int(millis(*due)),
                        Value::int(i64::from(*provisional)),
                    ],
                )?;
            }
            _ => {}
        }
        let at = Value::int(millis(event.at));
        for closure in &event.closes {
            let key = [id.clone(), Value::int(i64::from(closure.seq)), at.clone()];
            tx.execute(&self.drop_met_deadline, &key)?;
            tx.execute(&self.close_deadline, &key)?;
        }
        for deadline in &event.opens {
            tx.execute(
                &self.open_deadline,
                &[
                    id.clone(),
                    Value::int(i64::from(deadline.seq)),
                    Value::text(deadline.kind.as_str()),
                    Value::int(millis(deadline.due)),
                    at.clone(),
                    Value::int(i64::from(deadline.provisional)),
                ],
            )?;
        }
        Ok(())
    }

    fn register(
        &self,
        tx: &mut dyn SqlTx,
        id: &Value,
        registration: &Registration,
        registered_at: DateTime<FixedOffset>,
        who: String,
    ) -> Result<(), SqlError> {
        // Interpretation 22: a lead naming no company has no `leads` row and counts for none.
        let Some(named) = &registration.company else { return Ok(()) };
        let company = Value::text(named.uscc.as_str());
        tx.execute(&self.insert_lead, &[id.clone(), company.clone()])?;
        tx.execute(&self.upsert_company, &[company.clone(), Value::text(named.name.as_str())])?;
        tx.execute(&self.insert_complainant, &[company, Value::int(month_key(registered_at)), Value::text(who)])?;
        Ok(())
    }

    fn apply_company(&self, tx: &mut dyn SqlTx, uscc: &Uscc, event: &EnterpriseEvent) -> Result<(), SqlError> {
        let key = [Value::text(uscc.as_str()), Value::int(month_key(event.at))];
        match &event.fact {
            EnterpriseFact::RectificationRefused { .. } => {
                tx.execute(&self.count_refusal, &key)?;
            }
            EnterpriseFact::FeeStandardRefused { .. } => {
                tx.execute(&self.count_fee_refusal, &key)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The complainant of an anonymous complaint: the complaint itself, so its linked leads count
/// once (interpretation 2).
fn anonymous(complaint: &ComplaintId) -> String {
    format!("anonymous:{complaint}")
}

impl ModelWriter for BulletinWriter {
    fn apply(&mut self, tx: &mut dyn SqlTx, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            match &event.payload {
                Payload::Complaint { lead, event: complaint } => self.apply_lead(tx, lead, complaint)?,
                Payload::Enterprise { uscc, event: company } => self.apply_company(tx, uscc, company)?,
                Payload::Weekly { .. } | Payload::Other => {}
            }
        }
        Ok(())
    }
}

/// Interpretations 22 and 23: whether a finding counts against the company: substantiated and
/// the company's responsibility (a finding recorded before interpretation 22 says nothing of
/// it and is the company's, as it was then).
pub(crate) fn against_company(finding: Finding, attributable: Option<bool>) -> bool {
    finding == Finding::Substantiated && attributable.unwrap_or(true)
}
