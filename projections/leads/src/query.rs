//! Queries of `leads`: the filtered, paged complaint list (newest first, with the total), one
//! lead by id, and the DSP-1 dashboard per body and per body and district at an instant. Each
//! says where a due instant or an overdue judgement rests on the provisional calendar only
//! (interpretation 21).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use tousu_domain::complaint::{Channel, Complexity, Finding, LeadStatus, Urgency};
use tousu_domain::ids::{BodyCode, ComplaintId};
use tousu_projection::{Row, SqlError, SqlTx, Value};

use crate::writer::{complexity_name, finding_name, urgency_name};
use crate::{bad_value, instant, millis};

/// Filters of [`list`]; `None` (or `false`) does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFilter {
    /// Only leads in this status.
    pub status: Option<LeadStatus>,
    /// Only leads this body is responsible for now: the handling body once transferred or
    /// notified, else 住建 (DSP-1).
    pub body: Option<BodyCode>,
    /// Only leads of this category code, e.g. `SJ-3-1`.
    pub category: Option<String>,
    /// Only leads in this district.
    pub district: Option<String>,
    /// Only leads in this street (with or without a district).
    pub street: Option<String>,
    /// Only leads against the company with this 统一社会信用代码.
    pub company: Option<String>,
    /// Only leads registered at or after this instant.
    pub registered_from: Option<DateTime<FixedOffset>>,
    /// Only leads registered before this instant.
    pub registered_until: Option<DateTime<FixedOffset>>,
    /// Only open leads with a deadline past due at the query's instant.
    pub overdue_only: bool,
}

/// One lead as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeadRow {
    /// The lead.
    pub id: ComplaintId,
    /// Where it stands (the domain's `Lead::status`).
    pub status: LeadStatus,
    /// How it came in.
    pub channel: Channel,
    /// Its category, once classified.
    pub category: Option<String>,
    /// The body responsible now: the handling body, else 住建.
    pub body: BodyCode,
    /// The handling body, once transferred or notified.
    pub handling_body: Option<BodyCode>,
    /// Urgent or not, once classified.
    pub urgency: Option<Urgency>,
    /// General or major, once classified (after any re-grading).
    pub complexity: Option<Complexity>,
    /// The company's 统一社会信用代码.
    pub company_uscc: String,
    /// The company's name as the registration gives it.
    pub company_name: String,
    /// The residential community.
    pub community: String,
    /// The district.
    pub district: String,
    /// The street.
    pub street: String,
    /// When it was registered (the parent's registration for a linked lead).
    pub registered_at: DateTime<FixedOffset>,
    /// The latest finding.
    pub finding: Option<Finding>,
    /// Times reopened after a dissatisfied follow-up.
    pub reopen_count: u32,
    /// Times a transfer was returned as misrouted.
    pub return_count: u32,
    /// The lead it was split from.
    pub parent: Option<ComplaintId>,
    /// The earliest due instant of its open deadlines.
    pub earliest_due: Option<DateTime<FixedOffset>>,
    /// Interpretation 21: whether `earliest_due` is provisional: every open deadline due at that
    /// instant was computed from the provisional calendar of a year without the State
    /// Council's schedule, so the instant may move when the schedule is loaded. False when
    /// there is no earliest due instant.
    pub earliest_due_provisional: bool,
    /// When it was last closed.
    pub closed_at: Option<DateTime<FixedOffset>>,
    /// Whether it is open with a deadline past due at the query's instant (DSP-1).
    pub overdue: bool,
    /// Interpretation 21: whether it is overdue only by provisional due instants: every open
    /// deadline past due at the query's instant was computed from the provisional calendar.
    /// False when it is not overdue.
    pub overdue_provisional: bool,
}

/// Leads of one body (and district) on the dashboard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BodyCounts {
    /// Leads the body has received: 住建 every lead at registration, a department each lead
    /// transferred (or notified) to it; once per lead.
    pub received: u64,
    /// Leads the body is responsible for that are still open.
    pub open: u64,
    /// Leads the body is responsible for that are closed (or reviewed and cancelled).
    pub closed: u64,
    /// Open leads with a deadline past due at the dashboard's instant.
    pub overdue: u64,
    /// Interpretation 21: of those, the leads overdue only by provisional due instants (every
    /// deadline of theirs past due was computed from the provisional calendar).
    pub overdue_provisional: u64,
    /// Interpretation 27: transfers the body returned that 住建 rejected (推诿).
    pub buck_passing: u64,
}

/// One line of the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DashboardLine {
    /// The body.
    pub body: BodyCode,
    /// The district, for the per-district lines; `None` on the per-body lines.
    pub district: Option<String>,
    /// Its counts.
    pub counts: BodyCounts,
}

/// The DSP-1 picture at an instant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dashboard {
    /// The instant overdue is judged at.
    pub at: DateTime<FixedOffset>,
    /// One line per body, every body of the procedure in its order, zeros included.
    pub bodies: Vec<DashboardLine>,
    /// One line per body and district with any lead, in body then district order.
    pub districts: Vec<DashboardLine>,
}

const COLUMNS: &str = "l.lead, l.status, l.channel, l.category, l.body, l.handling_body, l.urgency, l.complexity, \
                       l.company, l.company_name, l.community, l.district, l.street, l.registered_at, l.finding, \
                       l.reopen_count, l.return_count, l.parent, l.earliest_due, l.closed_at, l.is_open, \
                       l.earliest_official_due";

/// A statement built with its parameters numbered in order, as PostgreSQL needs them.
struct Statement {
    text: String,
    params: Vec<Value>,
}

impl Statement {
    /// Appends ` AND <column> <operator> $n`, binding the value.
    fn and(&mut self, column: &str, operator: &str, value: Value) {
        self.params.push(value);
        self.text.push_str(&format!(" AND {column} {operator} ${}", self.params.len()));
    }
}

/// The leads matching `filter`, newest first (registration instant, then id, descending),
/// `offset` and `limit` paging through them; with the number of leads matching. `at` is the
/// instant overdue is judged at.
pub fn list(
    tx: &mut dyn SqlTx,
    prefix: &str,
    filter: &LeadFilter,
    offset: u64,
    limit: u64,
    at: DateTime<FixedOffset>,
) -> Result<(Vec<LeadRow>, u64), SqlError> {
    let build = |select: &str| {
        let mut statement =
            Statement { text: format!("SELECT {select} FROM {prefix}leads l WHERE 1 = 1"), params: vec![] };
        if let Some(status) = filter.status {
            statement.and("l.status", "=", Value::text(status.as_str()));
        }
        if let Some(body) = filter.body {
            statement.and("l.body", "=", Value::text(body.as_str()));
        }
        if let Some(category) = &filter.category {
            statement.and("l.category", "=", Value::text(category.as_str()));
        }
        if let Some(district) = &filter.district {
            statement.and("l.district", "=", Value::text(district.as_str()));
        }
        if let Some(street) = &filter.street {
            statement.and("l.street", "=", Value::text(street.as_str()));
        }
        if let Some(company) = &filter.company {
            statement.and("l.company", "=", Value::text(company.as_str()));
        }
        if let Some(from) = filter.registered_from {
            statement.and("l.registered_at", ">=", Value::int(millis(from)));
        }
        if let Some(until) = filter.registered_until {
            statement.and("l.registered_at", "<", Value::int(millis(until)));
        }
        if filter.overdue_only {
            statement.text.push_str(" AND l.is_open = 1");
            statement.and("l.earliest_due", "<", Value::int(millis(at)));
        }
        statement
    };
    // Unfiltered, the total is every lead 住建 received (each lead once, at its registration or
    // split), from the writer's counters rather than a count of every row.
    let total = if *filter == LeadFilter::default() {
        let sql = format!("SELECT CAST(COALESCE(SUM(received), 0) AS BIGINT) FROM {prefix}counts WHERE body = $1");
        tx.query(&sql, &[Value::text(BodyCode::ZJ.as_str())])?
    } else {
        let count = build("CAST(COUNT(*) AS BIGINT)");
        tx.query(&count.text, &count.params)?
    };
    let total = total.first().and_then(|row| row[0].as_i64()).unwrap_or(0);
    let mut page = build(COLUMNS);
    page.params.push(Value::int(i64::try_from(limit).unwrap_or(i64::MAX)));
    page.params.push(Value::int(i64::try_from(offset).unwrap_or(i64::MAX)));
    page.text.push_str(&format!(
        " ORDER BY l.registered_at DESC, l.lead DESC LIMIT ${} OFFSET ${}",
        page.params.len() - 1,
        page.params.len()
    ));
    let rows = tx.query(&page.text, &page.params)?;
    let rows = rows.iter().map(|row| read_row(row, at)).collect::<Result<Vec<_>, _>>()?;
    Ok((rows, u64::try_from(total).unwrap_or(0)))
}

/// One lead, if the read model has it.
pub fn get(
    tx: &mut dyn SqlTx,
    prefix: &str,
    lead: &ComplaintId,
    at: DateTime<FixedOffset>,
) -> Result<Option<LeadRow>, SqlError> {
    let rows =
        tx.query(&format!("SELECT {COLUMNS} FROM {prefix}leads l WHERE l.lead = $1"), &[Value::text(lead.as_str())])?;
    rows.first().map(|row| read_row(row, at)).transpose()
}

/// DSP-1: per body, and per body and district, the leads received, open, closed and overdue
/// at `at` (overdue: open with a deadline due before `at`), and of the overdue those overdue
/// only by provisional due instants (no deadline computed from official data is due before
/// `at`, interpretation 21). Received, open and closed come from the writer's counters,
/// overdue from the partial index on open leads by due instant, so the cost follows the
/// bodies, districts and overdue leads, not every lead ever registered.
/// The counts are those of the read model's checkpoint; the picture at a past instant is a
/// replay to that instant.
pub fn dashboard(tx: &mut dyn SqlTx, prefix: &str, at: DateTime<FixedOffset>) -> Result<Dashboard, SqlError> {
    let mut lines: BTreeMap<(BodyCode, String), BodyCounts> = BTreeMap::new();
    for row in
        tx.query(&format!("SELECT body, district, received, closed, open, buck_passing FROM {prefix}counts"), &[])?
    {
        let counts = lines.entry((read_parsed(&row[0], "body")?, read_text(&row[1], "district")?)).or_default();
        counts.received = read_u64(&row[2], "received")?;
        counts.closed = read_u64(&row[3], "closed")?;
        counts.open = read_u64(&row[4], "open")?;
        counts.buck_passing = read_u64(&row[5], "buck_passing")?;
    }
    let overdue = tx.query(
        &format!(
            "SELECT body, district, CAST(COUNT(*) AS BIGINT),
             CAST(SUM(CASE WHEN earliest_official_due IS NULL OR earliest_official_due >= $1 THEN 1 ELSE 0 END)
               AS BIGINT)
             FROM {prefix}leads
             WHERE is_open = 1 AND earliest_due < $1 GROUP BY body, district"
        ),
        &[Value::int(millis(at))],
    )?;
    for row in overdue {
        let counts = lines.entry((read_parsed(&row[0], "body")?, read_text(&row[1], "district")?)).or_default();
        counts.overdue = read_u64(&row[2], "overdue")?;
        counts.overdue_provisional = read_u64(&row[3], "overdue_provisional")?;
    }
    let bodies = BodyCode::ALL
        .into_iter()
        .map(|body| {
            let mut total = BodyCounts::default();
            for counts in lines.range((body, String::new())..).take_while(|((b, _), _)| *b == body).map(|(_, c)| c) {
                total.received += counts.received;
                total.open += counts.open;
                total.closed += counts.closed;
                total.overdue += counts.overdue;
                total.overdue_provisional += counts.overdue_provisional;
                total.buck_passing += counts.buck_passing;
            }
            DashboardLine { body, district: None, counts: total }
        })
        .collect();
    let districts = lines
        .into_iter()
        .filter(|(_, counts)| *counts != BodyCounts::default())
        .map(|((body, district), counts)| DashboardLine { body, district: Some(district), counts })
        .collect();
    Ok(Dashboard { at, bodies, districts })
}

fn read_row(row: &Row, at: DateTime<FixedOffset>) -> Result<LeadRow, SqlError> {
    let earliest_due = row[18].as_i64().map(instant).transpose()?;
    let is_open = read_i64(&row[20], "is_open")? == 1;
    // Interpretation 21: a judgement by a due instant rests on official data when some open
    // deadline computed from official data is due at or before that instant.
    let earliest_official_due = row[21].as_i64().map(instant).transpose()?;
    let overdue = is_open && earliest_due.is_some_and(|due| due < at);
    Ok(LeadRow {
        id: read_parsed(&row[0], "lead")?,
        status: read_named(&row[1], "status", &STATUSES, |status| status.as_str())?,
        channel: read_named(&row[2], "channel", &Channel::ALL, |channel| channel.as_str())?,
        category: row[3].as_str().map(str::to_owned),
        body: read_parsed(&row[4], "body")?,
        handling_body: row[5].as_str().map(|_| read_parsed(&row[5], "handling_body")).transpose()?,
        urgency: read_optional_named(&row[6], "urgency", &[Urgency::Urgent, Urgency::Normal], urgency_name)?,
        complexity: read_optional_named(
            &row[7],
            "complexity",
            &[Complexity::General, Complexity::Major],
            complexity_name,
        )?,
        company_uscc: read_text(&row[8], "company")?,
        company_name: read_text(&row[9], "company_name")?,
        community: read_text(&row[10], "community")?,
        district: read_text(&row[11], "district")?,
        street: read_text(&row[12], "street")?,
        registered_at: instant(read_i64(&row[13], "registered_at")?)?,
        finding: read_optional_named(
            &row[14],
            "finding",
            &[Finding::Substantiated, Finding::Unsubstantiated],
            finding_name,
        )?,
        reopen_count: read_u32(&row[15], "reopen_count")?,
        return_count: read_u32(&row[16], "return_count")?,
        parent: row[17].as_str().map(|_| read_parsed(&row[17], "parent")).transpose()?,
        earliest_due,
        earliest_due_provisional: earliest_due
            .is_some_and(|due| earliest_official_due.is_none_or(|official| official > due)),
        closed_at: row[19].as_i64().map(instant).transpose()?,
        overdue,
        overdue_provisional: overdue && earliest_official_due.is_none_or(|official| official >= at),
    })
}

const STATUSES: [LeadStatus; 7] = [
    LeadStatus::Registered,
    LeadStatus::Classified,
    LeadStatus::Returned,
    LeadStatus::Transferred,
    LeadStatus::Handling,
    LeadStatus::Closed,
    LeadStatus::Cancelled,
];

fn read_named<T: Copy>(
    value: &Value,
    column: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, SqlError> {
    let text = read_text(value, column)?;
    all.iter().copied().find(|candidate| name(*candidate) == text).ok_or_else(|| bad_value(column, &text))
}

fn read_optional_named<T: Copy>(
    value: &Value,
    column: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<Option<T>, SqlError> {
    value.as_str().map(|_| read_named(value, column, all, name)).transpose()
}

fn read_text(value: &Value, column: &str) -> Result<String, SqlError> {
    value.as_str().map(str::to_owned).ok_or_else(|| bad_value(column, &format!("{value:?}")))
}

fn read_i64(value: &Value, column: &str) -> Result<i64, SqlError> {
    value.as_i64().ok_or_else(|| bad_value(column, &format!("{value:?}")))
}

fn read_u32(value: &Value, column: &str) -> Result<u32, SqlError> {
    u32::try_from(read_i64(value, column)?).map_err(|_| bad_value(column, &format!("{value:?}")))
}

fn read_u64(value: &Value, column: &str) -> Result<u64, SqlError> {
    u64::try_from(read_i64(value, column)?).map_err(|_| bad_value(column, &format!("{value:?}")))
}

fn read_parsed<T: std::str::FromStr>(value: &Value, column: &str) -> Result<T, SqlError> {
    let text = read_text(value, column)?;
    text.parse().map_err(|_| bad_value(column, &text))
}
