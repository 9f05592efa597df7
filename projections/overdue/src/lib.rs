//! The `overdue-escalation` read model (ACC-2, interpretation 9): one row per open obligation
//! of every stream, lead and company alike, with the body that owes it, the rule that set it,
//! its due instant and the escalations already recorded; queried at an instant for what is
//! past due, how late (in working or calendar days, as the rule counts) and how high up the
//! escalation ladder it has climbed. The deadline reactor asks it which escalations are due
//! ([`due_escalations`]).
//!
//! The model knows nothing of the procedure beyond the events: every event says which
//! deadlines it opens and which it closes (`ComplaintEvent::opens`/`closes`,
//! `EnterpriseEvent::opens`/`closes`), and the escalation facts say which misses and rungs the
//! reactor recorded.
//!
//! Tables (each name after the generation's prefix):
//!
//! - `obligations`: one row per open deadline, keyed by stream and sequence number, with the
//!   subject (lead or company), the company, kind, rule, body, community, district, start,
//!   due (epoch milliseconds, UTC), the escalation levels recorded (a bit set: 1 reminder,
//!   2 district leadership, 4 discipline organ) and whether its miss was recorded; for a
//!   provisional due instant (interpretation 21) the calendar version it rests on and the
//!   first and last provisional year it looked at (0 when the due is official), so that the
//!   deadline reactor finds what to recompute once a year's notice is loaded. A recomputation
//!   sets the new due and withdraws the levels and miss it names. A closed deadline's row is
//!   deleted.
//! - `misses`: every recorded miss (stream, sequence number, body), kept after the deadline
//!   closes: the repeat-miss rule of interpretation 9 counts them.
//! - `leads`: each lead's company, community, district and registration instant, from its
//!   registration, to place its deadlines and the deadlines of its company.
//! - `closures`: per body and kind, deadlines met on time, met late and superseded.
//! - `referrals`: every recommendation to refer a body to the discipline organ (the ladder's
//!   third rung, interpretation 9 as amended), kept after its deadline closes: the subject,
//!   the company, the deadline's kind and body, when and why it was recommended, and its
//!   status (`pending`, `referred` or `dismissed`) with the official's decision. A
//!   recommendation a recomputed due no longer reaches (interpretation 21) is deleted while
//!   still pending. Old logs are read the same way: a third rung recorded before referrals
//!   were decisions is a recommendation pending.

#![forbid(unsafe_code)]

mod bulk;
mod query;
mod writer;

use chrono::{DateTime, FixedOffset, Utc};
use tousu_projection::{BulkBuilder, ModelWriter, ReadModel, SqlError};

pub use bulk::OverdueBulk;
pub use query::{
    ClosureCount, DueEscalation, Lateness, LatenessUnit, OverdueFilter, OverdueRow, ProvisionalCandidate,
    ReferralFilter, ReferralRow, ReferralStatus, Subject, closure_counts, due_escalations, late_cutoff,
    open_obligations, overdue, provisional_candidates, referrals,
};
pub use writer::OverdueWriter;

/// The read model's stable name.
pub const NAME: &str = "overdue-escalation";

/// The version of the schema and of the projection logic; raising it rebuilds the model.
/// Version 2: provisional due instants and their recomputation (interpretation 21).
/// Version 3: the recommendations to refer and their decisions (interpretation 9, amended).
pub const VERSION: u32 = 3;

/// The tables of one generation, without prefix.
pub const TABLES: &[&str] = &["obligations", "misses", "leads", "closures", "referrals"];

/// The `overdue-escalation` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct OverdueModel;

impl ReadModel for OverdueModel {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    fn schema(&self, prefix: &str) -> String {
        schema(prefix)
    }

    fn writer(&self, prefix: &str) -> Box<dyn ModelWriter> {
        Box::new(OverdueWriter::new(prefix))
    }

    fn bulk(&self, prefix: &str) -> Option<Box<dyn BulkBuilder>> {
        Some(Box::new(OverdueBulk::new(prefix)))
    }
}

/// The DDL of one generation. The partial index on `due` holds only the rows not yet
/// escalated to every level, so that [`due_escalations`] reads only the obligations the
/// reactor may still have to act on.
pub fn schema(prefix: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {prefix}obligations (
            stream TEXT NOT NULL,
            seq BIGINT NOT NULL,
            subject_kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            company TEXT NOT NULL,
            kind TEXT NOT NULL,
            rule TEXT NOT NULL,
            body TEXT NOT NULL,
            community TEXT NOT NULL,
            district TEXT NOT NULL,
            start_at BIGINT NOT NULL,
            due BIGINT NOT NULL,
            levels BIGINT NOT NULL,
            missed BIGINT NOT NULL,
            calendar TEXT NOT NULL,
            provisional_first BIGINT NOT NULL,
            provisional_last BIGINT NOT NULL,
            PRIMARY KEY (stream, seq)
        );
        CREATE INDEX IF NOT EXISTS {prefix}obligations_due ON {prefix}obligations (due, stream, seq);
        CREATE INDEX IF NOT EXISTS {prefix}obligations_body_due ON {prefix}obligations (body, due, stream, seq);
        CREATE INDEX IF NOT EXISTS {prefix}obligations_district_due ON {prefix}obligations (district, due, stream, seq);
        CREATE INDEX IF NOT EXISTS {prefix}obligations_pending ON {prefix}obligations (due, stream, seq)
            WHERE levels <> 7;
        CREATE INDEX IF NOT EXISTS {prefix}obligations_provisional
            ON {prefix}obligations (provisional_first, provisional_last, stream, seq) WHERE provisional_first > 0;
        CREATE TABLE IF NOT EXISTS {prefix}misses (
            stream TEXT NOT NULL,
            seq BIGINT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (stream, seq)
        );
        CREATE TABLE IF NOT EXISTS {prefix}leads (
            lead TEXT PRIMARY KEY,
            company TEXT NOT NULL,
            community TEXT NOT NULL,
            district TEXT NOT NULL,
            registered_at BIGINT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS {prefix}leads_place ON {prefix}leads (company, community, district);
        CREATE TABLE IF NOT EXISTS {prefix}closures (
            body TEXT NOT NULL,
            kind TEXT NOT NULL,
            met_on_time BIGINT NOT NULL,
            met_late BIGINT NOT NULL,
            superseded BIGINT NOT NULL,
            PRIMARY KEY (body, kind)
        );
        CREATE TABLE IF NOT EXISTS {prefix}referrals (
            stream TEXT NOT NULL,
            seq BIGINT NOT NULL,
            subject_kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            company TEXT NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            recommended_at BIGINT NOT NULL,
            reason TEXT NOT NULL,
            working_days_late BIGINT NOT NULL,
            status TEXT NOT NULL,
            decided_at BIGINT NOT NULL,
            decided_by TEXT NOT NULL,
            decision_reason TEXT NOT NULL,
            PRIMARY KEY (stream, seq)
        );
        CREATE INDEX IF NOT EXISTS {prefix}referrals_status ON {prefix}referrals (status, recommended_at, stream, seq);"
    )
}

/// An instant as stored: epoch milliseconds, UTC.
pub(crate) fn millis(at: DateTime<FixedOffset>) -> i64 {
    at.timestamp_millis()
}

/// A stored instant, in Shanghai time (interpretation 4).
pub(crate) fn instant(millis: i64) -> Result<DateTime<FixedOffset>, SqlError> {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|at| at.with_timezone(&tousu_domain::calendar::shanghai()))
        .ok_or_else(|| bad_value("instant", &millis.to_string()))
}

/// A deadline's provisional columns: the calendar version and the first and last
/// provisional year it looked at, or `''`, 0 and 0 for a due instant on official data.
pub(crate) fn provisional_columns(
    provisional: bool,
    calendar: Option<&tousu_domain::calendar::CalendarVersion>,
) -> (String, i64, i64) {
    let Some(version) = calendar.filter(|_| provisional) else {
        return (String::new(), 0, 0);
    };
    let years: Vec<i32> = version.provisional_years().collect();
    let first = years.iter().min().copied().map_or(0, i64::from);
    let last = years.iter().max().copied().map_or(0, i64::from);
    (version.as_str().to_owned(), first, last)
}

/// A stored value that does not read back as what was written: a bug, or tables written by
/// another version. Reported through `SqlError` so that every query has one error type.
pub(crate) fn bad_value(column: &str, value: &str) -> SqlError {
    SqlError::UnsupportedColumn { column: column.to_owned(), kind: format!("unreadable value {value:?}") }
}
