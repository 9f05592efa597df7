//! The read model `watchlist`: companies at risk under REG-4 (key supervision), GRD-1 (grade
//! review), GRD-2 (downgrade) and EXT-1 (exit), for the coordinators and the commission.
//!
//! The counts of REG-4, GRD-1 and EXT-1 run over windows that end at an evaluation instant
//! (interpretations 3 and 20), so the tables keep the raw facts, not the counts: one row per
//! lead with its registration instant, its complainant's identity, the lead it was split from
//! and its latest finding; the company's surveys, refusals to rectify, grades, credit rating,
//! black-list entry and open company deadlines; and, from the leads' own streams, whether each
//! lead is open and which of its deadlines are open. [`query()`] evaluates every window at the
//! instant it is given (the API passes now by default), so a company leaves the list when its
//! complaints age out, without any event having to say so.
//!
//! Counting follows the domain exactly: the leads counted are those the company's stream
//! records (`enterprise.complaint_recorded`, `enterprise.finding_recorded`), the same the
//! domain's conditions are decided on; a complainant is the keyed identity of interpretation 2;
//! an anonymous complaint counts once, even when split into linked leads (interpretation 15);
//! thresholds are strict (interpretation 1) and come from the [`Policy`]. The list computes the
//! counts in SQL; [`company`] loads the company's leads into the domain's
//! [`tousu_domain::enterprise::Company`] and lists the evidence it counts, and the tests check
//! the two agree.
//!
//! Interpretation 21: a deadline's due instant may rest on the provisional calendar of a year
//! without the State Council's schedule. The tables keep, beside each open deadline's due
//! instant, whether it is provisional; a recomputation (`deadline_recomputed`, on a lead's or a
//! company's stream) gives the stored deadline its new due instant and flag, so that a lead is
//! overdue, and a company deadline listed, exactly as if it had been opened with that due. The
//! list shows which company deadlines are provisional and how many overdue leads are overdue
//! only by provisional due instants.
//!
//! The [`writer`] applies batches of events with SQL; for a rebuild with the server stopped,
//! [`bulk`] builds the same tables in memory and writes them once.
//!
//! Instants are stored as `BIGINT` epoch milliseconds (UTC) and shown in Asia/Shanghai.

#![forbid(unsafe_code)]

pub mod bulk;
pub mod query;
pub mod writer;

pub use query::{
    AnonymousCount, CommunityGrade, CompanyDeadline, CompanyDetail, CompanyEvidence, Flag, FlagReason,
    RecordedConditions, Refusal, Scope, SurveyResult, WatchlistEntry, WatchlistFilter, WatchlistPage, WindowCount,
    companies, company, query,
};

use tousu_projection::{BulkBuilder, ModelWriter, ReadModel};

#[cfg(doc)]
use tousu_domain::policy::Policy;

/// The read model's stable name.
pub const NAME: &str = "watchlist";

/// The version of the schema and the projection logic; raising it rebuilds the read model.
/// Version 2: deadlines say whether their due instant is provisional, and follow its
/// recomputation (interpretation 21).
pub const VERSION: u32 = 2;

/// The tables of one generation, without prefix.
pub const TABLES: &[&str] = &[
    "companies",
    "leads",
    "lead_deadlines",
    "company_deadlines",
    "company_districts",
    "surveys",
    "refusals",
    "grades",
];

/// The `watchlist` read model, as the runtime registers it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Watchlist;

impl ReadModel for Watchlist {
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
        Box::new(writer::WatchlistWriter::new(prefix))
    }

    fn deferred_indexes(&self, prefix: &str) -> String {
        query_indexes(prefix)
    }

    fn bulk(&self, prefix: &str) -> Option<Box<dyn BulkBuilder>> {
        Some(Box::new(bulk::WatchlistBulk::new(prefix)))
    }
}

/// The indexes only the queries read, created once a generation has been built (see
/// [`ReadModel::deferred_indexes`]); the writer finds every row by its primary key. Counted
/// leads by company and registration instant, covering what the window counts read; open
/// leads by company; open deadlines by due instant; companies by district.
pub fn query_indexes(p: &str) -> String {
    format!(
        "
CREATE INDEX IF NOT EXISTS {p}leads_counted ON {p}leads (uscc, registered_at, identity, anonymous, finding, found_at)
    WHERE counted = 1;
CREATE INDEX IF NOT EXISTS {p}leads_open ON {p}leads (uscc) WHERE open = 1;
CREATE INDEX IF NOT EXISTS {p}lead_deadlines_due ON {p}lead_deadlines (due);
CREATE INDEX IF NOT EXISTS {p}company_districts_district ON {p}company_districts (district);
"
    )
}

/// The DDL of one generation. Instants are epoch milliseconds; `open`, `counted` and
/// `anonymous` are 0 or 1. `provisional` on `lead_deadlines` and `company_deadlines` is 1 when
/// the row's due instant was computed from the provisional calendar of a year without the State
/// Council's schedule, 0 when from official data (interpretation 21); a recomputation replaces
/// the row's due and flag.
pub fn schema(p: &str) -> String {
    format!(
        "
CREATE TABLE {p}companies (
    uscc TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    credit_rating TEXT,
    blacklisted_on TEXT,
    key_supervision_since BIGINT,
    grade_review_since BIGINT,
    exit_condition_since BIGINT,
    exit_started_at BIGINT
);
CREATE TABLE {p}leads (
    lead TEXT PRIMARY KEY,
    uscc TEXT,
    district TEXT,
    open BIGINT,
    counted BIGINT,
    community TEXT,
    complainant_key TEXT,
    identity TEXT,
    anonymous BIGINT,
    linked_to TEXT,
    registered_at BIGINT,
    finding TEXT,
    found_at BIGINT
);
CREATE TABLE {p}lead_deadlines (
    lead TEXT NOT NULL,
    seq BIGINT NOT NULL,
    due BIGINT NOT NULL,
    provisional BIGINT NOT NULL,
    PRIMARY KEY (lead, seq)
);
CREATE TABLE {p}company_deadlines (
    uscc TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    rule TEXT NOT NULL,
    community TEXT,
    due BIGINT NOT NULL,
    reason TEXT,
    provisional BIGINT NOT NULL,
    PRIMARY KEY (uscc, seq)
);
CREATE TABLE {p}company_districts (
    uscc TEXT NOT NULL,
    district TEXT NOT NULL,
    PRIMARY KEY (uscc, district)
);
CREATE TABLE {p}surveys (
    uscc TEXT NOT NULL,
    position BIGINT NOT NULL,
    community TEXT NOT NULL,
    at BIGINT NOT NULL,
    respondents BIGINT NOT NULL,
    satisfied BIGINT NOT NULL,
    PRIMARY KEY (uscc, position)
);
CREATE TABLE {p}refusals (
    uscc TEXT NOT NULL,
    position BIGINT NOT NULL,
    community TEXT NOT NULL,
    at BIGINT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (uscc, position)
);
CREATE TABLE {p}grades (
    uscc TEXT NOT NULL,
    community TEXT NOT NULL,
    grade BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (uscc, community)
);
"
    )
}
