//! The `leads` read model: one row per lead for the complaint list of the API (filters on
//! status, responsible body, category, district, street, company and registration range;
//! newest first; paged with a total) and the per-body dashboard of DSP-1 (received, open,
//! closed and overdue leads per body, and per body and district, at an instant).
//!
//! A lead's status is derived from each fact exactly as the domain's `complaint::evolve`
//! derives `Lead::status`; the tests hold the two together on the domain's scenarios.
//!
//! Tables (each name after the generation's prefix):
//!
//! - `leads`: one row per lead: status, channel, category, responsible body (the handling body,
//!   else 住建), urgency, complexity, company, place, registration instant, finding, reopenings,
//!   returns, parent, the earliest due instant of its open deadlines, the earliest of those
//!   computed from official calendar data (`earliest_official_due`, interpretation 21) and the
//!   instant it was last closed. Instants are epoch milliseconds, UTC.
//! - `deadlines`: the open deadlines of each lead (lead, sequence number, due, and whether the
//!   due is provisional, interpretation 21), so that the earliest due instants can be
//!   recomputed when one closes or its due is recomputed.
//! - `receipts`: each (lead, body) pair where the body received the lead: 住建 at registration,
//!   the handling body at the transfer or urgent notification.
//! - `counts`: per body and district, leads received (distinct receipts), leads closed now
//!   (closed or cancelled, the lead's responsible body) and leads open now, kept by the writer
//!   so that the dashboard and the unfiltered list's total read a handful of rows instead of
//!   every lead.
//!
//! Interpretation 21: a deadline's due instant may rest on the provisional calendar of a year
//! without the State Council's schedule. A recorded `DeadlineRecomputed` replaces the stored
//! due of that open deadline (and whether it is provisional), and the lead's earliest due
//! instants follow exactly as if the deadline had been opened with the new due; a recomputation
//! of a deadline without a row changes nothing. The queries say whether a lead's earliest due
//! instant, and its being overdue, rest on provisional due instants only.

#![forbid(unsafe_code)]

mod bulk;
mod query;
mod writer;

use chrono::{DateTime, FixedOffset, Utc};
use tousu_projection::{BulkBuilder, ModelWriter, ReadModel, SqlError};

pub use bulk::LeadsBulk;
pub use query::{BodyCounts, Dashboard, DashboardLine, LeadFilter, LeadRow, dashboard, get, list};
pub use writer::LeadsWriter;

/// The read model's stable name.
pub const NAME: &str = "leads";

/// The version of the schema and of the projection logic; raising it rebuilds the model.
/// Version 3: provisional due instants and their recomputation (interpretation 21): the
/// `deadlines.provisional` and `leads.earliest_official_due` columns. Version 4: the
/// returns 住建 rejected, counted per body as buck-passing (interpretation 27).
pub const VERSION: u32 = 4;

/// The tables of one generation, without prefix.
pub const TABLES: &[&str] = &["leads", "deadlines", "receipts", "counts"];

/// The `leads` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeadsModel;

impl ReadModel for LeadsModel {
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
        Box::new(LeadsWriter::new(prefix))
    }

    fn deferred_indexes(&self, prefix: &str) -> String {
        list_indexes(prefix)
    }

    fn bulk(&self, prefix: &str) -> Option<Box<dyn BulkBuilder>> {
        Some(Box::new(LeadsBulk::new(prefix)))
    }
}

/// The list's indexes, created once a generation has been built (see
/// [`ReadModel::deferred_indexes`]): each list filter has an index ending in the list's order
/// (registration instant, then id, both descending in the query); the partial index on open
/// leads by due instant serves the dashboard's overdue counts (with the earliest official due
/// instant, which tells the leads overdue only by provisional due instants, interpretation 21)
/// and the overdue filter at a cost that follows the overdue leads, not the open ones. They
/// serve only queries, and building without them is faster.
pub fn list_indexes(prefix: &str) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {prefix}leads_registered ON {prefix}leads (registered_at, lead);
        CREATE INDEX IF NOT EXISTS {prefix}leads_status ON {prefix}leads (status, registered_at, lead);
        CREATE INDEX IF NOT EXISTS {prefix}leads_body ON {prefix}leads (body, registered_at, lead);
        CREATE INDEX IF NOT EXISTS {prefix}leads_company ON {prefix}leads (company, registered_at, lead);
        CREATE INDEX IF NOT EXISTS {prefix}leads_place ON {prefix}leads (district, street, registered_at, lead);
        CREATE INDEX IF NOT EXISTS {prefix}leads_category ON {prefix}leads (category, registered_at, lead);
        CREATE INDEX IF NOT EXISTS {prefix}leads_due
            ON {prefix}leads (earliest_due, body, district, earliest_official_due) WHERE is_open = 1;"
    )
}

/// The DDL of one generation's tables.
pub fn schema(prefix: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {prefix}leads (
            lead TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            is_open BIGINT NOT NULL,
            channel TEXT NOT NULL,
            category TEXT,
            handling_body TEXT,
            body TEXT NOT NULL,
            urgency TEXT,
            complexity TEXT,
            company TEXT NOT NULL,
            company_name TEXT NOT NULL,
            community TEXT NOT NULL,
            district TEXT NOT NULL,
            street TEXT NOT NULL,
            registered_at BIGINT NOT NULL,
            finding TEXT,
            reopen_count BIGINT NOT NULL,
            return_count BIGINT NOT NULL,
            parent TEXT,
            earliest_due BIGINT,
            earliest_official_due BIGINT,
            closed_at BIGINT
        );
        CREATE TABLE IF NOT EXISTS {prefix}deadlines (
            lead TEXT NOT NULL,
            seq BIGINT NOT NULL,
            due BIGINT NOT NULL,
            provisional BIGINT NOT NULL,
            PRIMARY KEY (lead, seq)
        );
        CREATE TABLE IF NOT EXISTS {prefix}receipts (
            lead TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (lead, body)
        );
        CREATE TABLE IF NOT EXISTS {prefix}counts (
            body TEXT NOT NULL,
            district TEXT NOT NULL,
            received BIGINT NOT NULL,
            closed BIGINT NOT NULL,
            open BIGINT NOT NULL,
            buck_passing BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (body, district)
        );"
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

/// A stored value that does not read back as what was written: a bug, or tables written by
/// another version. Reported through `SqlError` so that every query has one error type.
pub(crate) fn bad_value(column: &str, value: &str) -> SqlError {
    SqlError::UnsupportedColumn { column: column.to_owned(), kind: format!("unreadable value {value:?}") }
}
