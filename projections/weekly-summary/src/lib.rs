//! The read model `weekly-summary`: the REG-3 summary of each week's leads per district, as
//! sent to the district discipline inspection commission (区纪委监委), with a history anchor
//! that lets the commission prove later that the log it was summarised from has not been
//! rewritten.
//!
//! **Weeks.** A week runs from Monday 00:00 to Sunday 24:00, Asia/Shanghai (interpretation 10,
//! [`tousu_domain::reporting::reporting_week`]). An event belongs to the week of its business
//! instant `at`, whatever offset it is written with: Sunday 23:59:59 +08:00 and Monday
//! 00:00:00 +08:00 fall in different weeks. What a lead was received as (category, body) is
//! a property of the week it was received in: a lead classified the week after it came in
//! counts under its category in the week it came in, and moves there if reclassified.
//!
//! **Figures** per week and district (see [`WeekFigures`]): leads received, by channel,
//! category and body; transfers on time and late (a `transferred` event closes the lead's
//! `transfer` deadline; it is late when its `at` is after that deadline's due instant, which
//! the model keeps from the event that opened it); urgent notifications on time and late;
//! closures (closure complete: the handling body's signature, or for 住建's own matters the
//! street office's countersignature, as `complaint::evolve` has it) and the closure rate;
//! obligations open and overdue at the week's end; escalations; returns; the top companies;
//! 难点 (categories with the most overdue obligations) and 堵点 (bodies with the most overdue
//! obligations and returned transfers); and the change from the previous week.
//!
//! **Provisional due instants** (interpretation 21). A deadline's due instant computed from the
//! provisional calendar of a year without the State Council's schedule is kept with that flag;
//! when the deadline reactor recomputes it (`deadline_recomputed`), the deadline takes the new
//! due instant and flag, and everything judged against it follows as if it had been opened with
//! them: whether it is open and overdue at a week's end, and whether the transfer, notification
//! or closure that later meets it is late. Of the obligations open and overdue at a week's end,
//! those whose due instant is provisional are counted apart (in total and per body). The
//! escalations a recomputation withdraws are not taken off the week they were recorded in,
//! whose figures stay as they were: they are counted, by level, as withdrawn in the week of
//! the recomputation. The summary does not count recorded misses, so a withdrawn miss changes
//! nothing.
//!
//! **History anchor.** `anchor_0` is 32 zero bytes and `anchor_n = SHA-256(anchor_{n-1} ||
//! hash_n)`, where `hash_n` is the stored 32-byte hash of the n-th event of the global log in
//! position order (every event, of every stream). The anchor of a week is `anchor_n` for the
//! last event **recorded** (the store's `recorded_at`, in Shanghai) before the week's end,
//! with that event's position and the number of events `n`: a prefix of the log as it stood
//! at Sunday 24:00. An event recorded late about a past week (its `at` in that week, recorded
//! after the week ended) counts in that week's figures but is covered by the anchor of the
//! week it was recorded in; the figures of a summary are computed when it is asked for, the
//! anchor pins the history up to the week's end. The store assigns `recorded_at` in log
//! order; should a clock step back, an event is kept in the latest week already seen, so every
//! anchor stays a prefix of the log. [`anchor_step`] and [`anchor_over`] compute the chain for
//! anyone who holds the log.
//!
//! **Signed anchors.** A settled week's anchor is signed where it leaves the server, never in
//! the read model, which holds no key: [`signing`] defines the signed bytes, the keys, and
//! [`signing::AnchorChain`], the same computation over the log for `tousu audit anchors`.

#![forbid(unsafe_code)]

pub mod bulk;
pub mod issued;
pub mod query;
pub mod signing;
pub mod writer;

pub use issued::{IssuedSummary, issued_week};
pub use query::{
    Blockage, CompanyCount, Count, FigureChange, HistoryAnchor, WeekFigures, WeeklySummary, anchor, anchors,
    latest_anchor, week, weeks,
};

use sha2::{Digest, Sha256};
use tousu_projection::{BulkBuilder, ModelWriter, ReadModel};

/// The read model's stable name.
pub const NAME: &str = "weekly-summary";

/// The version of the schema and the projection logic; raising it rebuilds the read model.
/// Version 3: deadlines say whether their due instant is provisional and follow its
/// recomputation; provisional overdue obligations and withdrawn escalations are counted
/// (interpretation 21). Version 4: the summaries issued to the commission and the corrections
/// reported with them (interpretation 26).
pub const VERSION: u32 = 4;

/// The tables of one generation, without prefix.
pub const TABLES: &[&str] = &["leads", "deadlines", "counters", "companies", "anchors", "issued", "corrections"];

/// The anchor before the first event: 32 zero bytes.
pub const ANCHOR_ZERO: [u8; 32] = [0; 32];

/// One step of the history anchor: `SHA-256(previous || event_hash)`.
pub fn anchor_step(previous: &[u8; 32], event_hash: &[u8; 32]) -> [u8; 32] {
    Sha256::new().chain_update(previous).chain_update(event_hash).finalize().into()
}

/// The history anchor over the hashes of a log's events in position order, from
/// [`ANCHOR_ZERO`].
pub fn anchor_over<'a>(hashes: impl IntoIterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    hashes.into_iter().fold(ANCHOR_ZERO, |anchor, hash| anchor_step(&anchor, hash))
}

/// Lower-case hex of 32 bytes.
pub fn hex(bytes: &[u8; 32]) -> String {
    tousu_store::hash::hex(bytes)
}

/// The `weekly-summary` read model, as the runtime registers it.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeeklySummaryModel;

impl ReadModel for WeeklySummaryModel {
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
        Box::new(writer::WeeklyWriter::new(prefix))
    }

    fn bulk(&self, prefix: &str) -> Option<Box<dyn BulkBuilder>> {
        Some(Box::new(bulk::WeeklyBulk::new(prefix)))
    }
}

/// The DDL of one generation. Weeks are the Monday's date (`2026-03-09`); instants are epoch
/// milliseconds.
///
/// - `leads`: each lead's district, the week it was received, its category and body
///   (`unclassified` until classified), company and whether it is open;
/// - `deadlines`: the open deadlines of leads, with their responsible body, opening instant,
///   due instant, and whether that due instant is provisional (1) or rests on official data
///   (0), interpretation 21; a recomputation replaces the due instant and the flag;
/// - `counters`: additive counts per week, district, metric and key (a channel, category,
///   body, level or company; empty for totals), including each closed obligation's overdue
///   week ends (and of those, the ones on a provisional due instant) and the escalations a
///   recomputation withdrew, in the week of the recomputation; the district `''` holds every
///   district's counts together;
/// - `companies`: names;
/// - `anchors`: the history anchor after the last event recorded in each week;
/// - `issued` and `corrections`: the summaries issued to the commission and the corrections to
///   earlier weeks reported with them (interpretation 26, [`issued`]).
pub fn schema(p: &str) -> String {
    format!(
        "
CREATE TABLE {p}leads (
    lead TEXT PRIMARY KEY,
    district TEXT NOT NULL,
    received_week TEXT NOT NULL,
    category TEXT NOT NULL,
    body TEXT NOT NULL,
    uscc TEXT NOT NULL,
    open BIGINT NOT NULL
);
CREATE TABLE {p}deadlines (
    lead TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    due BIGINT NOT NULL,
    provisional BIGINT NOT NULL,
    PRIMARY KEY (lead, seq)
);
CREATE INDEX {p}deadlines_due ON {p}deadlines (due);
CREATE TABLE {p}counters (
    week TEXT NOT NULL,
    district TEXT NOT NULL,
    metric TEXT NOT NULL,
    key TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (week, district, metric, key)
);
CREATE INDEX {p}counters_metric ON {p}counters (metric, district, week);
CREATE INDEX {p}counters_top ON {p}counters (week, district, metric, n DESC, key);
CREATE TABLE {p}companies (
    uscc TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE {p}anchors (
    week TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    events BIGINT NOT NULL,
    anchor TEXT NOT NULL
);
CREATE TABLE {p}issued (
    week TEXT PRIMARY KEY,
    issued_at BIGINT NOT NULL,
    position BIGINT NOT NULL,
    summary TEXT NOT NULL,
    matters TEXT NOT NULL
);
CREATE TABLE {p}corrections (
    reported_with TEXT NOT NULL,
    week TEXT NOT NULL,
    figure TEXT NOT NULL,
    reported BIGINT NOT NULL,
    now BIGINT NOT NULL,
    PRIMARY KEY (reported_with, week, figure)
);
CREATE INDEX {p}corrections_week ON {p}corrections (week, reported_with, figure);
"
    )
}
