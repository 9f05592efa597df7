//! The `bulletin` read model (PUB-1): per company and calendar month (Asia/Shanghai,
//! interpretation 10), what the monthly public bulletin weighs — leads closed and closed on
//! time, distinct complainants registering, refusals to rectify, dissatisfied 12345
//! follow-ups, and the longest a lead was open past its deadline at the month's end — and the
//! verdict of `reporting::bulletin_verdict` against the policy's written criteria
//! (`docs/read-models.md` states them).
//!
//! Tables (each name after the generation's prefix):
//!
//! - `leads`: each lead's company, from its registration, and whether its latest finding is
//!   substantiated (interpretation 23: only such a lead's handling deadline can make its
//!   company drag on).
//! - `companies`: each company's latest name.
//! - `months`: per company and month (`yyyymm`), closures, closures on time, refusals to
//!   rectify and dissatisfied follow-ups, counted as the events arrive.
//! - `complainants`: per company and month, each distinct complainant registering a lead: the
//!   keyed identity, or for an anonymous complaint the complaint itself (its linked leads
//!   count once, interpretation 2).
//! - `deadlines`: every deadline of a lead that is open, or that was closed after its due
//!   instant, with when it opened and closed (epoch milliseconds, UTC; `closed_at` is the
//!   largest integer while open), so that the deadlines open and past due at any month's end
//!   can be found. A deadline closed by its due instant was never overdue and is deleted.
//!   `provisional` (interpretation 21) is 1 where the due instant was computed from the
//!   provisional calendar of a year without the State Council's schedule, else 0.
//!
//! Interpretation 21: a recorded `DeadlineRecomputed` replaces the due instant of the open
//! deadline it names, and whether it is provisional, exactly as if the deadline had been opened
//! with the new due: the months it was open past due, and whether its closing is on time,
//! follow the new due. The recomputation of a deadline without an open row changes nothing.
//! The bulletin says where a company's longest overdue days, and a criticism for dragging on
//! (久拖不决), rest on provisional due instants.
//!
//! [`BulletinWriter`] applies events to the tables statement by statement; for a rebuild with
//! the server stopped, [`BulletinBuilder`] builds the same rows in memory and writes each
//! table once.

#![forbid(unsafe_code)]

mod bulk;
mod query;
mod writer;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use tousu_projection::{BulkBuilder, ModelWriter, ReadModel, SqlError};

pub use bulk::BulletinBuilder;
pub use query::{BulletinDraft, BulletinEntry, month};
pub use writer::BulletinWriter;

/// The read model's stable name.
pub const NAME: &str = "bulletin";

/// The version of the schema and of the projection logic; raising it rebuilds the model.
/// Version 2: provisional due instants and their recomputation (interpretation 21): the
/// `deadlines.provisional` column. Version 3: a company drags on (久拖不决) only by the
/// handling deadlines of its substantiated leads (interpretation 23): `leads.substantiated`.
/// Version 4: a dissatisfied follow-up counts only on a lead that is the company's
/// responsibility (interpretations 22, 23): `leads.attributable`; and the company's refusals
/// of the lower fee standard (GRD-3, interpretation 23): `months.fee_refusals`.
pub const VERSION: u32 = 4;

/// The tables of one generation, without prefix.
pub const TABLES: &[&str] = &["leads", "companies", "months", "complainants", "deadlines"];

/// The `bulletin` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct BulletinModel;

impl ReadModel for BulletinModel {
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
        Box::new(BulletinWriter::new(prefix))
    }

    fn bulk(&self, prefix: &str) -> Option<Box<dyn BulkBuilder>> {
        Some(Box::new(BulletinBuilder::new(prefix)))
    }
}

/// The DDL of one generation.
pub fn schema(prefix: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {prefix}leads (
            lead TEXT PRIMARY KEY,
            company TEXT NOT NULL,
            substantiated BIGINT NOT NULL DEFAULT 0,
            attributable BIGINT NOT NULL DEFAULT 1
        );
        CREATE TABLE IF NOT EXISTS {prefix}companies (
            uscc TEXT PRIMARY KEY,
            name TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS {prefix}months (
            company TEXT NOT NULL,
            month BIGINT NOT NULL,
            closed BIGINT NOT NULL,
            closed_on_time BIGINT NOT NULL,
            refusals BIGINT NOT NULL,
            fee_refusals BIGINT NOT NULL DEFAULT 0,
            dissatisfied BIGINT NOT NULL,
            PRIMARY KEY (company, month)
        );
        CREATE INDEX IF NOT EXISTS {prefix}months_month ON {prefix}months (month, company);
        CREATE TABLE IF NOT EXISTS {prefix}complainants (
            company TEXT NOT NULL,
            month BIGINT NOT NULL,
            who TEXT NOT NULL,
            PRIMARY KEY (company, month, who)
        );
        CREATE INDEX IF NOT EXISTS {prefix}complainants_month ON {prefix}complainants (month, company);
        CREATE TABLE IF NOT EXISTS {prefix}deadlines (
            lead TEXT NOT NULL,
            seq BIGINT NOT NULL,
            kind TEXT NOT NULL,
            due BIGINT NOT NULL,
            opened_at BIGINT NOT NULL,
            closed_at BIGINT NOT NULL,
            provisional BIGINT NOT NULL,
            PRIMARY KEY (lead, seq)
        );
        CREATE INDEX IF NOT EXISTS {prefix}deadlines_closed ON {prefix}deadlines (closed_at, due);"
    )
}

/// `closed_at` of a deadline still open.
pub(crate) const OPEN: i64 = i64::MAX;

/// An instant as stored: epoch milliseconds, UTC.
pub(crate) fn millis(at: DateTime<FixedOffset>) -> i64 {
    at.timestamp_millis()
}

/// The stored key of the PUB-1 month (Shanghai) containing `at`: `yyyymm`.
pub(crate) fn month_key(at: DateTime<FixedOffset>) -> i64 {
    month_key_of(tousu_domain::reporting::reporting_month(at))
}

/// The stored key of the month of `date`: `yyyymm`.
pub(crate) fn month_key_of(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 100 + i64::from(date.month())
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
