//! Applies events to the `overdue-escalation` tables: the escalation facts first, then the
//! event's closings, then its openings, in the order the domain's `Obligations` fold applies
//! them. Every statement is fixed text (prepared once per connection by the runtime) and
//! touches rows by key; the writer keeps no state between batches.

use chrono::{DateTime, FixedOffset};
use tousu_domain::complaint::{ComplaintEvent, ComplaintFact, Registration};
use tousu_domain::deadline::{ClosedHow, Deadline, DeadlineClosure, DueBasis, EscalationLevel};
use tousu_domain::enterprise::{EnterpriseEvent, EnterpriseFact};
use tousu_domain::ids::{ComplaintId, Uscc};
use tousu_domain::obligations::EscalationFact;
use tousu_projection::{ModelWriter, Payload, ProjectedEvent, ProjectionError, SqlError, SqlTx, Value};

use crate::{millis, provisional_columns};

/// The writer of one generation of `overdue-escalation`.
#[derive(Debug)]
pub struct OverdueWriter {
    upsert_lead: String,
    open_lead_deadline: String,
    open_company_deadline: String,
    close: String,
    count_closure: String,
    record_miss: String,
    mark_missed: String,
    record_level: String,
    recompute: String,
    withdraw_miss: String,
    recommend: String,
    decide_referral: String,
    withdraw_recommendation: String,
}

impl OverdueWriter {
    /// A writer for the tables under `prefix`.
    pub fn new(prefix: &str) -> OverdueWriter {
        let p = prefix;
        OverdueWriter {
            upsert_lead: format!(
                "INSERT INTO {p}leads (lead, company, community, district, registered_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (lead) DO UPDATE SET company = excluded.company, community = excluded.community,
                 district = excluded.district, registered_at = excluded.registered_at"
            ),
            // A lead's deadline takes its place from the lead's registration; a reinstated
            // deadline (interpretation 15) runs, as the original did, from the registration.
            open_lead_deadline: format!(
                "INSERT INTO {p}obligations (stream, seq, subject_kind, subject, company, kind, rule, body, community,
                 district, start_at, due, levels, missed, calendar, provisional_first, provisional_last)
                 VALUES ($1, $2, 'lead', $3,
                   COALESCE((SELECT company FROM {p}leads WHERE lead = $3), ''),
                   $4, $5, $6,
                   COALESCE((SELECT community FROM {p}leads WHERE lead = $3), ''),
                   COALESCE((SELECT district FROM {p}leads WHERE lead = $3), ''),
                   COALESCE(CAST($7 AS BIGINT), (SELECT registered_at FROM {p}leads WHERE lead = $3), CAST($8 AS BIGINT)),
                   $9, 0, 0, $10, $11, $12)
                 ON CONFLICT (stream, seq) DO UPDATE SET kind = excluded.kind, rule = excluded.rule,
                 body = excluded.body, community = excluded.community, district = excluded.district,
                 start_at = excluded.start_at, due = excluded.due, calendar = excluded.calendar,
                 provisional_first = excluded.provisional_first, provisional_last = excluded.provisional_last"
            ),
            // A company's deadline concerns a community; its district is the one the
            // company's leads give for that community, or, for a deadline without one, the
            // first district of the company's leads; empty when no lead names it.
            open_company_deadline: format!(
                "INSERT INTO {p}obligations (stream, seq, subject_kind, subject, company, kind, rule, body, community,
                 district, start_at, due, levels, missed, calendar, provisional_first, provisional_last)
                 VALUES ($1, $2, 'company', $3, $3, $4, $5, $6, $7,
                   COALESCE(CASE WHEN $7 = ''
                     THEN (SELECT district FROM {p}leads WHERE company = $3 ORDER BY community, district LIMIT 1)
                     ELSE (SELECT district FROM {p}leads WHERE company = $3 AND community = $7
                           ORDER BY district LIMIT 1) END, ''),
                   $8, $9, 0, 0, $10, $11, $12)
                 ON CONFLICT (stream, seq) DO UPDATE SET kind = excluded.kind, rule = excluded.rule,
                 body = excluded.body, community = excluded.community, district = excluded.district,
                 start_at = excluded.start_at, due = excluded.due, calendar = excluded.calendar,
                 provisional_first = excluded.provisional_first, provisional_last = excluded.provisional_last"
            ),
            close: format!("DELETE FROM {p}obligations WHERE stream = $1 AND seq = $2 RETURNING body, kind, due"),
            count_closure: format!(
                "INSERT INTO {p}closures (body, kind, met_on_time, met_late, superseded) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (body, kind) DO UPDATE SET
                 met_on_time = {p}closures.met_on_time + excluded.met_on_time,
                 met_late = {p}closures.met_late + excluded.met_late,
                 superseded = {p}closures.superseded + excluded.superseded"
            ),
            record_miss: format!(
                "INSERT INTO {p}misses (stream, seq, body) VALUES ($1, $2, $3) ON CONFLICT (stream, seq) DO NOTHING"
            ),
            mark_missed: format!("UPDATE {p}obligations SET missed = 1 WHERE stream = $1 AND seq = $2"),
            record_level: format!("UPDATE {p}obligations SET levels = levels | $3 WHERE stream = $1 AND seq = $2"),
            // Interpretation 21: the new due, its provisional columns, the levels kept (a mask)
            // and the miss mark kept (0 withdraws it, 1 keeps it).
            recompute: format!(
                "UPDATE {p}obligations SET due = $3, calendar = $4, provisional_first = $5, provisional_last = $6,
                 levels = levels & $7, missed = missed * $8 WHERE stream = $1 AND seq = $2"
            ),
            withdraw_miss: format!("DELETE FROM {p}misses WHERE stream = $1 AND seq = $2"),
            // Interpretation 9: a lead's recommendation names the lead's company as its row in
            // `leads` has it (empty where it has none); a company's, the company.
            recommend: format!(
                "INSERT INTO {p}referrals (stream, seq, subject_kind, subject, company, kind, body, recommended_at,
                 reason, working_days_late, status, decided_at, decided_by, decision_reason)
                 VALUES ($1, $2, $3, $4,
                   CASE WHEN $3 = 'lead' THEN COALESCE((SELECT company FROM {p}leads WHERE lead = $4), '') ELSE $4 END,
                   $5, $6, $7, $8, $9, 'pending', 0, '', '')
                 ON CONFLICT (stream, seq) DO NOTHING"
            ),
            decide_referral: format!(
                "UPDATE {p}referrals SET status = $3, decided_at = $4, decided_by = $5, decision_reason = $6
                 WHERE stream = $1 AND seq = $2"
            ),
            withdraw_recommendation: format!(
                "DELETE FROM {p}referrals WHERE stream = $1 AND seq = $2 AND status = 'pending'"
            ),
        }
    }

    fn apply_lead(
        &self,
        tx: &mut dyn SqlTx,
        stream: &str,
        lead: &ComplaintId,
        event: &ComplaintEvent,
    ) -> Result<(), SqlError> {
        match &event.fact {
            ComplaintFact::Registered { registration, .. } => {
                self.record_lead(tx, lead, registration, event.at)?;
            }
            ComplaintFact::SplitFrom { registration, registered_at, .. } => {
                self.record_lead(tx, lead, registration, *registered_at)?;
            }
            ComplaintFact::Escalation(fact) => {
                self.apply_escalation(tx, stream, ("lead", lead.as_str()), event.at, fact)?;
            }
            _ => {}
        }
        self.apply_closures(tx, stream, event.at, &event.closes)?;
        for deadline in &event.opens {
            let start = match &deadline.basis {
                DueBasis::Period { start, .. } => Value::int(millis(*start)),
                // A reinstated TRF-1/TRF-2 deadline runs from the registration.
                DueBasis::Reinstated { .. } => Value::Int(None),
                DueBasis::PlanDate { .. } => Value::int(millis(event.at)),
            };
            let (calendar, first, last) = provisional_columns(deadline.provisional, deadline.calendar.as_ref());
            tx.execute(
                &self.open_lead_deadline,
                &[
                    Value::text(stream),
                    Value::int(i64::from(deadline.seq)),
                    Value::text(lead.as_str()),
                    Value::text(deadline.kind.as_str()),
                    Value::text(deadline.rule.as_str()),
                    Value::text(deadline.body.as_str()),
                    start,
                    Value::int(millis(event.at)),
                    Value::int(millis(deadline.due)),
                    Value::text(calendar),
                    Value::int(first),
                    Value::int(last),
                ],
            )?;
        }
        Ok(())
    }

    fn record_lead(
        &self,
        tx: &mut dyn SqlTx,
        lead: &ComplaintId,
        registration: &Registration,
        registered_at: DateTime<FixedOffset>,
    ) -> Result<(), SqlError> {
        tx.execute(
            &self.upsert_lead,
            &[
                Value::text(lead.as_str()),
                // Interpretation 22: empty for a lead naming no company.
                Value::text(registration.company.as_ref().map_or("", |company| company.uscc.as_str())),
                Value::text(registration.place.community.as_str()),
                Value::text(registration.place.district.as_str()),
                Value::int(millis(registered_at)),
            ],
        )?;
        Ok(())
    }

    fn apply_company(
        &self,
        tx: &mut dyn SqlTx,
        stream: &str,
        uscc: &Uscc,
        event: &EnterpriseEvent,
    ) -> Result<(), SqlError> {
        if let EnterpriseFact::Escalation(fact) = &event.fact {
            self.apply_escalation(tx, stream, ("company", uscc.as_str()), event.at, fact)?;
        }
        self.apply_closures(tx, stream, event.at, &event.closes)?;
        for deadline in &event.opens {
            self.open_company_deadline(tx, stream, uscc, event.at, deadline)?;
        }
        Ok(())
    }

    fn open_company_deadline(
        &self,
        tx: &mut dyn SqlTx,
        stream: &str,
        uscc: &Uscc,
        at: DateTime<FixedOffset>,
        deadline: &Deadline,
    ) -> Result<(), SqlError> {
        let start = match &deadline.basis {
            DueBasis::Period { start, .. } => *start,
            DueBasis::Reinstated { .. } | DueBasis::PlanDate { .. } => at,
        };
        let (calendar, first, last) = provisional_columns(deadline.provisional, deadline.calendar.as_ref());
        tx.execute(
            &self.open_company_deadline,
            &[
                Value::text(stream),
                Value::int(i64::from(deadline.seq)),
                Value::text(uscc.as_str()),
                Value::text(deadline.kind.as_str()),
                Value::text(deadline.rule.as_str()),
                Value::text(deadline.body.as_str()),
                Value::text(deadline.community.clone().unwrap_or_default()),
                Value::int(millis(start)),
                Value::int(millis(deadline.due)),
                Value::text(calendar),
                Value::int(first),
                Value::int(last),
            ],
        )?;
        Ok(())
    }

    /// Deletes each closed deadline's row and counts the closure for its body and kind: met on
    /// time (at or before the due instant), met late, or superseded.
    fn apply_closures(
        &self,
        tx: &mut dyn SqlTx,
        stream: &str,
        at: DateTime<FixedOffset>,
        closes: &[DeadlineClosure],
    ) -> Result<(), SqlError> {
        for closure in closes {
            let rows = tx.query(&self.close, &[Value::text(stream), Value::int(i64::from(closure.seq))])?;
            let Some(row) = rows.first() else { continue };
            let (Some(body), Some(kind), Some(due)) = (row[0].as_str(), row[1].as_str(), row[2].as_i64()) else {
                continue;
            };
            let (on_time, late, superseded) = match closure.how {
                ClosedHow::Met if millis(at) <= due => (1, 0, 0),
                ClosedHow::Met => (0, 1, 0),
                ClosedHow::Superseded => (0, 0, 1),
            };
            tx.execute(
                &self.count_closure,
                &[Value::text(body), Value::text(kind), Value::int(on_time), Value::int(late), Value::int(superseded)],
            )?;
        }
        Ok(())
    }

    /// A recorded miss, rung, recomputation or referral decision; `subject` is the subject's
    /// kind (`lead` or `company`) and name.
    fn apply_escalation(
        &self,
        tx: &mut dyn SqlTx,
        stream: &str,
        subject: (&str, &str),
        at: DateTime<FixedOffset>,
        fact: &EscalationFact,
    ) -> Result<(), SqlError> {
        match fact {
            EscalationFact::DeadlineMissed { seq, body, .. } => {
                let key = [Value::text(stream), Value::int(i64::from(*seq))];
                tx.execute(&self.record_miss, &[key[0].clone(), key[1].clone(), Value::text(body.as_str())])?;
                tx.execute(&self.mark_missed, &key)?;
            }
            EscalationFact::Escalated { seq, level, kind, body, reason, working_days_late } => {
                tx.execute(
                    &self.record_level,
                    &[Value::text(stream), Value::int(i64::from(*seq)), Value::int(crate::query::level_bit(*level))],
                )?;
                if *level == EscalationLevel::DisciplineOrgan {
                    tx.execute(
                        &self.recommend,
                        &[
                            Value::text(stream),
                            Value::int(i64::from(*seq)),
                            Value::text(subject.0),
                            Value::text(subject.1),
                            Value::text(kind.as_str()),
                            Value::text(body.as_str()),
                            Value::int(millis(at)),
                            Value::text(reason.as_str()),
                            Value::int(i64::from(*working_days_late)),
                        ],
                    )?;
                }
            }
            EscalationFact::ReferralDecided { seq, decision, reason, official, .. } => {
                tx.execute(
                    &self.decide_referral,
                    &[
                        Value::text(stream),
                        Value::int(i64::from(*seq)),
                        Value::text(decision.as_str()),
                        Value::int(millis(at)),
                        Value::text(official.as_str()),
                        Value::text(reason.as_str()),
                    ],
                )?;
            }
            EscalationFact::DeadlineRecomputed {
                seq,
                due,
                provisional,
                calendar,
                withdrawn_levels,
                miss_withdrawn,
                ..
            } => {
                let (calendar, first, last) = provisional_columns(*provisional, Some(calendar));
                let kept_levels = withdrawn_levels
                    .iter()
                    .fold(crate::query::ALL_LEVELS, |kept, level| kept & !crate::query::level_bit(*level));
                let key = [Value::text(stream), Value::int(i64::from(*seq))];
                tx.execute(
                    &self.recompute,
                    &[
                        key[0].clone(),
                        key[1].clone(),
                        Value::int(millis(*due)),
                        Value::text(calendar),
                        Value::int(first),
                        Value::int(last),
                        Value::int(kept_levels),
                        Value::int(i64::from(!*miss_withdrawn)),
                    ],
                )?;
                if *miss_withdrawn {
                    tx.execute(&self.withdraw_miss, &key)?;
                }
                if withdrawn_levels.contains(&EscalationLevel::DisciplineOrgan) {
                    tx.execute(&self.withdraw_recommendation, &key)?;
                }
            }
        }
        Ok(())
    }
}

impl ModelWriter for OverdueWriter {
    fn apply(&mut self, tx: &mut dyn SqlTx, events: &[ProjectedEvent]) -> Result<(), ProjectionError> {
        for event in events {
            match &event.payload {
                Payload::Complaint { lead, event: complaint } => {
                    self.apply_lead(tx, &event.stream, lead, complaint)?;
                }
                Payload::Enterprise { uscc, event: company } => {
                    self.apply_company(tx, &event.stream, uscc, company)?;
                }
                Payload::Weekly { .. } | Payload::Other => {}
            }
        }
        Ok(())
    }
}
