//! The weekly summary's queries: one week for one district or all, the weeks on record, and
//! a week's history anchor.
//!
//! **Open overdue** is counted at the week's end (Sunday 24:00, Shanghai): obligations of leads
//! opened before it, due before it, and closed at or after it (or still open). The obligations
//! closed since were counted when they closed; those still open are counted here. For a week
//! not yet over at the evaluation instant, the count is taken at that instant from the
//! obligations still open.
//!
//! **Closure rate** is closures completed in the week over the week's workload: leads open at
//! the week's start (received, less closed, plus reopened, in every earlier week) plus leads
//! received in the week; in basis points, rounded down, none when there was no workload.
//!
//! **Provisional due instants** (interpretation 21). Every obligation is judged by its due
//! instant as last recomputed, as if it had been opened with it. Of the open overdue
//! obligations, those whose due instant is provisional (computed from the provisional calendar
//! of a year without the State Council's schedule) are counted apart, in the week's figures
//! and per body: a recomputation may move them. An obligation still open counts with its
//! flag as it stands now; one closed since, with its flag when it closed.
//!
//! **Withdrawn escalations** (interpretation 21). Escalations are counted as events, in the
//! week they were recorded. A recomputation that withdraws some is an event of its own week:
//! the withdrawn escalations are counted there, by level, and the week they were recorded in
//! keeps its count, so that a week's figures, once sent to the commission, do not silently
//! change. `escalations_withdrawn` therefore counts the withdrawals made in the week, whatever
//! week the escalations were recorded in.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};
use tousu_domain::calendar::shanghai;
use tousu_domain::deadline::EscalationLevel;
use tousu_projection::{SqlError, SqlTx, Value};

use crate::writer::{ALL_DISTRICTS, metric, week_end_ms};

/// How many companies, categories and bodies the summary lists.
pub const TOP: usize = 10;

/// A count under a key (a channel, category, body or escalation level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// The key.
    pub key: String,
    /// The count.
    pub n: i64,
}

/// A company and the leads received against it in the week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyCount {
    /// 统一社会信用代码.
    pub uscc: String,
    /// The company's name.
    pub name: String,
    /// Leads received.
    pub received: i64,
}

/// A body where handling is blocked (堵点): overdue obligations at the week's end and
/// transfers it returned in the week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blockage {
    /// The body's code.
    pub body: String,
    /// Its obligations open and overdue at the week's end.
    pub overdue: i64,
    /// Interpretation 21: of `overdue`, the obligations whose due instant is provisional.
    pub overdue_provisional: i64,
    /// Transfers it returned as misrouted in the week.
    pub returns: i64,
    /// Interpretation 27: returns of its that 住建 rejected in the week (buck-passing, 推诿).
    #[serde(default)]
    pub buck_passing: i64,
}

/// The headline figures of one week.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WeekFigures {
    /// Leads received (registered, or opened as linked leads).
    pub received: i64,
    /// Of those, linked leads split off a complaint (interpretation 15).
    pub received_linked: i64,
    /// Transfers within the TRF-2 deadline.
    pub transferred_on_time: i64,
    /// Transfers after the TRF-2 deadline.
    pub transferred_late: i64,
    /// Urgent notifications within the TRF-1 deadline.
    pub urgent_notified_on_time: i64,
    /// Urgent notifications after the TRF-1 deadline.
    pub urgent_notified_late: i64,
    /// Closures completed (HDL-3).
    pub closed: i64,
    /// Of those, closures after their handling deadline (HDL-1, HDL-2).
    pub closed_late: i64,
    /// Closed leads handled again (closure sent back, or reopened after a follow-up).
    pub reopened: i64,
    /// Leads open at the week's start.
    pub open_at_start: i64,
    /// Closures over the week's workload, in basis points; none without workload.
    pub closure_rate_bp: Option<i64>,
    /// Obligations open and overdue at the week's end.
    pub open_overdue: i64,
    /// Interpretation 21: of `open_overdue`, the obligations whose due instant is provisional
    /// (computed from the provisional calendar of a year without the State Council's
    /// schedule), which a recomputation may move.
    pub open_overdue_provisional: i64,
    /// Escalations recorded (ACC-2).
    pub escalations: i64,
    /// Interpretation 21: escalations withdrawn in the week by a recomputed due instant, of
    /// whatever week they were recorded in (which keeps counting them in `escalations`).
    pub escalations_withdrawn: i64,
    /// Transfers returned as misrouted.
    pub returns: i64,
    /// Interpretation 9: recommendations to refer a body to the discipline organ recorded in
    /// the week (the ladder's third rung).
    #[serde(default)]
    pub referrals_recommended: i64,
    /// Interpretation 9: recommendations a 住建 official referred in the week.
    #[serde(default)]
    pub referrals_referred: i64,
    /// Interpretation 9: recommendations a 住建 official dismissed in the week.
    #[serde(default)]
    pub referrals_dismissed: i64,
}

/// The change of the headline figures from the previous week (this week less that one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FigureChange {
    /// Leads received.
    pub received: i64,
    /// Transfers, on time and late.
    pub transferred: i64,
    /// Late transfers.
    pub transferred_late: i64,
    /// Closures.
    pub closed: i64,
    /// Closure rate, in basis points, when both weeks have one.
    pub closure_rate_bp: Option<i64>,
    /// Obligations open and overdue at the week's end.
    pub open_overdue: i64,
    /// Interpretation 21: of those, the ones on a provisional due instant.
    pub open_overdue_provisional: i64,
    /// Escalations.
    pub escalations: i64,
    /// Interpretation 21: escalations withdrawn by a recomputed due instant.
    pub escalations_withdrawn: i64,
    /// Returned transfers.
    pub returns: i64,
}

impl FigureChange {
    fn between(current: &WeekFigures, previous: &WeekFigures) -> FigureChange {
        FigureChange {
            received: current.received - previous.received,
            transferred: current.transferred_on_time + current.transferred_late
                - previous.transferred_on_time
                - previous.transferred_late,
            transferred_late: current.transferred_late - previous.transferred_late,
            closed: current.closed - previous.closed,
            closure_rate_bp: current.closure_rate_bp.zip(previous.closure_rate_bp).map(|(now, before)| now - before),
            open_overdue: current.open_overdue - previous.open_overdue,
            open_overdue_provisional: current.open_overdue_provisional - previous.open_overdue_provisional,
            escalations: current.escalations - previous.escalations,
            escalations_withdrawn: current.escalations_withdrawn - previous.escalations_withdrawn,
            returns: current.returns - previous.returns,
        }
    }
}

/// The history anchor of a week (see the crate documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryAnchor {
    /// The position of the last event recorded before the week's end.
    pub position: u64,
    /// The number of events the anchor covers, from the start of the log.
    pub events: u64,
    /// `anchor_n`, as lower-case hex.
    pub sha256: String,
    /// Whether the week is over, so no later event can join it: it has ended at the
    /// evaluation instant, or an event was recorded after it.
    pub settled: bool,
}

/// The REG-3 summary of one week, for one district or all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklySummary {
    /// The week's Monday.
    pub week_start: NaiveDate,
    /// The week's end: the next Monday 00:00 +08:00 (Sunday 24:00).
    pub week_end: DateTime<FixedOffset>,
    /// The district, or none for all.
    pub district: Option<String>,
    /// The instant open overdue obligations were counted at: the week's end, or the
    /// evaluation instant while the week runs.
    pub evaluated_at: DateTime<FixedOffset>,
    /// Whether the week has ended at the evaluation instant.
    pub complete: bool,
    /// The week's figures.
    pub figures: WeekFigures,
    /// The previous week's figures.
    pub previous: WeekFigures,
    /// This week less the previous one.
    pub change: FigureChange,
    /// Leads received by channel.
    pub received_by_channel: Vec<Count>,
    /// Leads received by category, as classified since.
    pub received_by_category: Vec<Count>,
    /// Leads received by responsible body, as classified since.
    pub received_by_body: Vec<Count>,
    /// Escalations by level.
    pub escalations_by_level: Vec<Count>,
    /// Interpretation 21: escalations withdrawn in the week by a recomputed due instant, by
    /// level.
    pub escalations_withdrawn_by_level: Vec<Count>,
    /// The companies with the most leads received, at most [`TOP`].
    pub top_companies: Vec<CompanyCount>,
    /// 难点: categories with the most obligations overdue at the week's end, at most [`TOP`].
    pub difficulties: Vec<Count>,
    /// 堵点: bodies with the most overdue obligations and returned transfers, at most [`TOP`].
    pub blockages: Vec<Blockage>,
    /// The history anchor at the week's end; none before the first event.
    pub anchor: Option<HistoryAnchor>,
}

fn week_text(week: NaiveDate) -> String {
    week.format("%Y-%m-%d").to_string()
}

fn monday(day: NaiveDate) -> NaiveDate {
    day - TimeDelta::days(i64::from(day.weekday().num_days_from_monday()))
}

fn instant(ms: i64) -> DateTime<FixedOffset> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().with_timezone(&shanghai())
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Counter sums of one week, by metric and key.
type Sums = BTreeMap<(String, String), i64>;

fn week_sums(
    tx: &mut dyn SqlTx,
    p: &str,
    week: NaiveDate,
    district: Option<&str>,
    metrics: &[&str],
) -> Result<Sums, SqlError> {
    // The writer keeps every district's counters together under `ALL_DISTRICTS`: one row per
    // metric and key.
    let metrics = metrics.iter().map(|metric| format!("'{metric}'")).collect::<Vec<_>>().join(", ");
    let sql =
        format!("SELECT metric, key, n FROM {p}counters WHERE week = $1 AND district = $2 AND metric IN ({metrics})");
    let params = [Value::text(week_text(week)), Value::text(district.unwrap_or(ALL_DISTRICTS))];
    Ok(tx
        .query(&sql, &params)?
        .iter()
        .map(|row| ((text(&row[0]), text(&row[1])), row[2].as_i64().unwrap_or(0)))
        .collect())
}

fn total(sums: &Sums, metric: &str) -> i64 {
    sums.range((metric.to_owned(), String::new())..).take_while(|((m, _), _)| m == metric).map(|(_, n)| n).sum()
}

fn by_key(sums: &Sums, metric: &str) -> Vec<Count> {
    let mut counts: Vec<Count> = sums
        .range((metric.to_owned(), String::new())..)
        .take_while(|((m, _), _)| m == metric)
        .filter(|(_, n)| **n != 0)
        .map(|((_, key), n)| Count { key: key.clone(), n: *n })
        .collect();
    counts.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.key.cmp(&b.key)));
    counts
}

/// Leads open at the start of `week`.
fn open_at_start(tx: &mut dyn SqlTx, p: &str, week: NaiveDate, district: Option<&str>) -> Result<i64, SqlError> {
    let metrics = format!("metric IN ('{}', '{}', '{}')", metric::RECEIVED, metric::REOPENED, metric::CLOSED);
    let sql = format!(
        "SELECT metric, CAST(SUM(n) AS BIGINT) FROM {p}counters WHERE {metrics} AND district = $2 AND week < $1
         GROUP BY metric"
    );
    let params = vec![Value::text(week_text(week)), Value::text(district.unwrap_or(ALL_DISTRICTS))];
    let mut open = 0;
    for row in tx.query(&sql, &params)? {
        let n = row[1].as_i64().unwrap_or(0);
        open += if text(&row[0]) == metric::CLOSED { -n } else { n };
    }
    Ok(open)
}

/// Obligations still open that were opened and due before `at`, by category and body, and of
/// those the ones whose due instant is provisional (interpretation 21).
struct OpenOverdue {
    category: String,
    body: String,
    n: i64,
    provisional: i64,
}

/// The [`OpenOverdue`] counts at `at_ms`.
fn open_overdue(tx: &mut dyn SqlTx, p: &str, at_ms: i64, district: Option<&str>) -> Result<Vec<OpenOverdue>, SqlError> {
    let (sql, params) = match district {
        Some(district) => (
            format!(
                "SELECT l.category, d.body, COUNT(*), CAST(SUM(d.provisional) AS BIGINT)
                 FROM {p}deadlines d JOIN {p}leads l ON l.lead = d.lead
                 WHERE d.due < $1 AND d.opened_at < $1 AND l.district = $2 GROUP BY l.category, d.body"
            ),
            vec![Value::int(at_ms), Value::text(district)],
        ),
        None => (
            format!(
                "SELECT l.category, d.body, COUNT(*), CAST(SUM(d.provisional) AS BIGINT)
                 FROM {p}deadlines d JOIN {p}leads l ON l.lead = d.lead
                 WHERE d.due < $1 AND d.opened_at < $1 GROUP BY l.category, d.body"
            ),
            vec![Value::int(at_ms)],
        ),
    };
    Ok(tx
        .query(&sql, &params)?
        .iter()
        .map(|row| OpenOverdue {
            category: text(&row[0]),
            body: text(&row[1]),
            n: row[2].as_i64().unwrap_or(0),
            provisional: row[3].as_i64().unwrap_or(0),
        })
        .collect())
}

/// The metrics a week's figures are made of (the previous week is read for these alone).
const FIGURE_METRICS: [&str; 17] = [
    metric::REFERRED,
    metric::REFERRAL_DISMISSED,
    metric::RECEIVED,
    metric::RECEIVED_LINKED,
    metric::TRANSFERRED_ON_TIME,
    metric::TRANSFERRED_LATE,
    metric::URGENT_ON_TIME,
    metric::URGENT_LATE,
    metric::CLOSED,
    metric::CLOSED_LATE,
    metric::REOPENED,
    metric::ESCALATED,
    metric::ESCALATION_WITHDRAWN,
    metric::RETURNED,
    metric::OVERDUE_BY_CATEGORY,
    metric::OVERDUE_BY_BODY,
    metric::OVERDUE_PROVISIONAL_BY_BODY,
];

/// The [`TOP`] companies with the most leads received in the week, read from the front of
/// the counters' index by count (a city has hundreds of companies; the summary names ten).
fn top_companies(
    tx: &mut dyn SqlTx,
    p: &str,
    week: NaiveDate,
    district: Option<&str>,
) -> Result<Vec<CompanyCount>, SqlError> {
    let rows = tx.query(
        &format!(
            "SELECT c.key, c.n, co.name FROM {p}counters c LEFT JOIN {p}companies co ON co.uscc = c.key
             WHERE c.week = $1 AND c.district = $2 AND c.metric = '{}' AND c.n > 0
             ORDER BY c.n DESC, c.key LIMIT {TOP}",
            metric::BY_COMPANY
        ),
        &[Value::text(week_text(week)), Value::text(district.unwrap_or(ALL_DISTRICTS))],
    )?;
    Ok(rows
        .iter()
        .map(|row| CompanyCount { uscc: text(&row[0]), received: row[1].as_i64().unwrap_or(0), name: text(&row[2]) })
        .collect())
}

/// The breakdowns of the week summarised, beside its figures: by channel, category and body,
/// and the returns 住建 rejected by body (interpretation 27); companies are read apart, the top
/// ones only.
const BREAKDOWN_METRICS: [&str; 4] =
    [metric::BY_CHANNEL, metric::BY_CATEGORY, metric::BY_BODY, metric::RETURN_REJECTED];

/// One week's figures with the overdue obligations by category and by body.
struct Week {
    figures: WeekFigures,
    sums: Sums,
    overdue_by_category: BTreeMap<String, i64>,
    overdue_by_body: BTreeMap<String, i64>,
    /// Interpretation 21: of `overdue_by_body`, the obligations on a provisional due instant.
    overdue_provisional_by_body: BTreeMap<String, i64>,
    evaluated_at: i64,
}

fn load_week(
    tx: &mut dyn SqlTx,
    p: &str,
    week: NaiveDate,
    district: Option<&str>,
    at_ms: i64,
    figures_only: bool,
) -> Result<Week, SqlError> {
    let breakdowns: &[&str] = if figures_only { &[] } else { &BREAKDOWN_METRICS };
    let sums = week_sums(tx, p, week, district, &[&FIGURE_METRICS[..], breakdowns].concat())?;
    let end = week_end_ms(week);
    let complete = end <= at_ms;
    let evaluated_at = end.min(at_ms);
    let mut overdue_by_category = BTreeMap::new();
    let mut overdue_by_body = BTreeMap::new();
    let mut overdue_provisional_by_body = BTreeMap::new();
    // Obligations closed after the week's end were counted when they closed; a week still
    // running has none of those yet.
    if complete {
        for count in by_key(&sums, metric::OVERDUE_BY_CATEGORY) {
            *overdue_by_category.entry(count.key).or_insert(0) += count.n;
        }
        for count in by_key(&sums, metric::OVERDUE_BY_BODY) {
            *overdue_by_body.entry(count.key).or_insert(0) += count.n;
        }
        for count in by_key(&sums, metric::OVERDUE_PROVISIONAL_BY_BODY) {
            *overdue_provisional_by_body.entry(count.key).or_insert(0) += count.n;
        }
    }
    for open in open_overdue(tx, p, evaluated_at, district)? {
        *overdue_by_category.entry(open.category).or_insert(0) += open.n;
        *overdue_by_body.entry(open.body.clone()).or_insert(0) += open.n;
        if open.provisional != 0 {
            *overdue_provisional_by_body.entry(open.body).or_insert(0) += open.provisional;
        }
    }
    let received = total(&sums, metric::RECEIVED);
    let closed = total(&sums, metric::CLOSED);
    let open_at_start = open_at_start(tx, p, week, district)?;
    let workload = open_at_start + received;
    let figures = WeekFigures {
        received,
        received_linked: total(&sums, metric::RECEIVED_LINKED),
        transferred_on_time: total(&sums, metric::TRANSFERRED_ON_TIME),
        transferred_late: total(&sums, metric::TRANSFERRED_LATE),
        urgent_notified_on_time: total(&sums, metric::URGENT_ON_TIME),
        urgent_notified_late: total(&sums, metric::URGENT_LATE),
        closed,
        closed_late: total(&sums, metric::CLOSED_LATE),
        reopened: total(&sums, metric::REOPENED),
        open_at_start,
        closure_rate_bp: (workload > 0).then(|| closed * 10_000 / workload),
        open_overdue: overdue_by_body.values().sum(),
        open_overdue_provisional: overdue_provisional_by_body.values().sum(),
        escalations: total(&sums, metric::ESCALATED),
        escalations_withdrawn: total(&sums, metric::ESCALATION_WITHDRAWN),
        returns: total(&sums, metric::RETURNED),
        referrals_recommended: sums
            .get(&(metric::ESCALATED.to_owned(), EscalationLevel::DisciplineOrgan.as_str().to_owned()))
            .copied()
            .unwrap_or(0),
        referrals_referred: total(&sums, metric::REFERRED),
        referrals_dismissed: total(&sums, metric::REFERRAL_DISMISSED),
    };
    Ok(Week { figures, sums, overdue_by_category, overdue_by_body, overdue_provisional_by_body, evaluated_at })
}

/// The REG-3 summary of the week containing `week_start` (any day names its week; the
/// Monday is meant) for `district`, or for all districts when `None`. `at` is the evaluation
/// instant (the API passes now): a week not yet over is counted as it stands then.
/// `prefix` is the live generation's table prefix.
pub fn week(
    tx: &mut dyn SqlTx,
    prefix: &str,
    week_start: NaiveDate,
    district: Option<&str>,
    at: DateTime<FixedOffset>,
) -> Result<WeeklySummary, SqlError> {
    let week_start = monday(week_start);
    let at_ms = at.timestamp_millis();
    let current = load_week(tx, prefix, week_start, district, at_ms, false)?;
    let previous = load_week(tx, prefix, week_start - TimeDelta::days(7), district, at_ms, true)?;
    let sums = &current.sums;

    let top_companies = top_companies(tx, prefix, week_start, district)?;
    let mut difficulties: Vec<Count> = current
        .overdue_by_category
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(key, n)| Count { key: key.clone(), n: *n })
        .collect();
    difficulties.sort_by(|a, b| b.n.cmp(&a.n).then_with(|| a.key.cmp(&b.key)));
    difficulties.truncate(TOP);
    let mut blockages: BTreeMap<String, Blockage> = BTreeMap::new();
    let blockage = |body: &str| Blockage {
        body: body.to_owned(),
        overdue: 0,
        overdue_provisional: 0,
        returns: 0,
        buck_passing: 0,
    };
    for (body, n) in &current.overdue_by_body {
        blockages.entry(body.clone()).or_insert_with(|| blockage(body)).overdue += n;
    }
    for (body, n) in &current.overdue_provisional_by_body {
        blockages.entry(body.clone()).or_insert_with(|| blockage(body)).overdue_provisional += n;
    }
    for count in by_key(sums, metric::RETURNED) {
        blockages.entry(count.key.clone()).or_insert_with(|| blockage(&count.key)).returns += count.n;
    }
    for count in by_key(sums, metric::RETURN_REJECTED) {
        blockages.entry(count.key.clone()).or_insert_with(|| blockage(&count.key)).buck_passing += count.n;
    }
    let weight = |blockage: &Blockage| blockage.overdue + blockage.returns + blockage.buck_passing;
    let mut blockages: Vec<Blockage> = blockages.into_values().filter(|blockage| weight(blockage) > 0).collect();
    blockages.sort_by(|a, b| weight(b).cmp(&weight(a)).then_with(|| a.body.cmp(&b.body)));
    blockages.truncate(TOP);

    let end = week_end_ms(week_start);
    Ok(WeeklySummary {
        week_start,
        week_end: instant(end),
        district: district.map(str::to_owned),
        evaluated_at: instant(current.evaluated_at),
        complete: end <= at_ms,
        change: FigureChange::between(&current.figures, &previous.figures),
        received_by_channel: by_key(sums, metric::BY_CHANNEL),
        received_by_category: by_key(sums, metric::BY_CATEGORY),
        received_by_body: by_key(sums, metric::BY_BODY),
        escalations_by_level: by_key(sums, metric::ESCALATED),
        escalations_withdrawn_by_level: by_key(sums, metric::ESCALATION_WITHDRAWN),
        top_companies,
        difficulties,
        blockages,
        anchor: anchor(tx, prefix, week_start, at)?,
        figures: current.figures,
        previous: previous.figures,
    })
}

/// The history anchor at the end of the week containing `week_start`: the anchor after the
/// last event recorded before Sunday 24:00; none when no event was recorded by then.
pub fn anchor(
    tx: &mut dyn SqlTx,
    prefix: &str,
    week_start: NaiveDate,
    at: DateTime<FixedOffset>,
) -> Result<Option<HistoryAnchor>, SqlError> {
    let week = Value::text(week_text(monday(week_start)));
    let rows = tx.query(
        &format!("SELECT position, events, anchor FROM {prefix}anchors WHERE week <= $1 ORDER BY week DESC LIMIT 1"),
        std::slice::from_ref(&week),
    )?;
    let Some(row) = rows.first() else { return Ok(None) };
    let later = tx.query(&format!("SELECT COUNT(*) FROM {prefix}anchors WHERE week > $1"), &[week])?;
    let recorded_after = later.first().and_then(|row| row[0].as_i64()).unwrap_or(0) > 0;
    Ok(Some(HistoryAnchor {
        position: row[0].as_i64().unwrap_or(0) as u64,
        events: row[1].as_i64().unwrap_or(0) as u64,
        sha256: text(&row[2]),
        settled: recorded_after || week_end_ms(monday(week_start)) <= at.timestamp_millis(),
    }))
}

/// The history anchor after the last event the read model has applied: the running anchor of
/// the latest week with an event recorded. `settled` says whether that week is over by `at`.
/// None on a log with no event.
pub fn latest_anchor(
    tx: &mut dyn SqlTx,
    prefix: &str,
    at: DateTime<FixedOffset>,
) -> Result<Option<HistoryAnchor>, SqlError> {
    let rows = tx.query(
        &format!("SELECT week, position, events, anchor FROM {prefix}anchors ORDER BY week DESC LIMIT 1"),
        &[],
    )?;
    let Some(row) = rows.first() else { return Ok(None) };
    let week: Option<NaiveDate> = row[0].as_str().and_then(|week| week.parse().ok());
    Ok(Some(HistoryAnchor {
        position: row[1].as_i64().unwrap_or(0) as u64,
        events: row[2].as_i64().unwrap_or(0) as u64,
        sha256: text(&row[3]),
        settled: week.is_some_and(|week| week_end_ms(week) <= at.timestamp_millis()),
    }))
}

/// The weeks on record, newest first: those with any lead activity in `district`, or for all
/// districts also those in which any event was recorded.
pub fn weeks(tx: &mut dyn SqlTx, prefix: &str, district: Option<&str>) -> Result<Vec<NaiveDate>, SqlError> {
    let rows = match district {
        Some(district) => tx.query(
            &format!("SELECT DISTINCT week FROM {prefix}counters WHERE district = $1"),
            &[Value::text(district)],
        )?,
        None => tx.query(&format!("SELECT week FROM {prefix}counters UNION SELECT week FROM {prefix}anchors"), &[])?,
    };
    let mut weeks: Vec<NaiveDate> = rows.iter().filter_map(|row| row[0].as_str()?.parse().ok()).collect();
    weeks.sort_unstable_by(|a, b| b.cmp(a));
    weeks.dedup();
    Ok(weeks)
}

/// Every week's history anchor on record, oldest first: the week, the position of the last
/// event it covers, and the anchor in hex (for `tousu audit verify`, which recomputes them
/// from the log).
pub fn anchors(tx: &mut dyn SqlTx, prefix: &str) -> Result<Vec<(NaiveDate, u64, String)>, SqlError> {
    let rows = tx.query(&format!("SELECT week, position, anchor FROM {prefix}anchors ORDER BY week"), &[])?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let week = row[0].as_str()?.parse().ok()?;
            Some((week, u64::try_from(row[1].as_i64()?).ok()?, row[2].as_str()?.to_owned()))
        })
        .collect())
}
