//! The monthly bulletin (PUB-1): every company with something to report in a calendar month
//! (Asia/Shanghai), its record and the verdict of `reporting::bulletin_verdict` under the
//! policy's `[bulletin]` criteria, and where its overdue days and a criticism for dragging on
//! rest on provisional due instants (interpretation 21).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, FixedOffset, Months, NaiveDate, TimeDelta};
use tousu_domain::calendar::{Calendar, shanghai};
use tousu_domain::policy::Policy;
use tousu_domain::reporting::{BulletinReason, BulletinVerdict, CompanyMonth, bulletin_verdict};
use tousu_projection::{SqlError, SqlTx, Value};

use crate::{bad_value, instant, millis, month_key_of};

/// A month's bulletin as an official approves it (interpretation 23): every company of the
/// month and the criteria they were weighed by, kept as JSON in the approval's event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BulletinDraft {
    /// Every company of the month, as [`month`] lists them.
    pub entries: Vec<BulletinEntry>,
    /// The criteria of the verdicts.
    pub criteria: tousu_domain::policy::Bulletin,
}

/// One company in a month's bulletin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BulletinEntry {
    /// The company's 统一社会信用代码.
    pub company: String,
    /// Its name, as its latest lead gives it.
    pub company_name: String,
    /// The first day of the month.
    pub month: NaiveDate,
    /// What the bulletin weighs.
    pub record: CompanyMonth,
    /// Praise, criticism (with the reasons) or neither.
    pub verdict: BulletinVerdict,
    /// Interpretation 21: whether `record.longest_overdue_days` is counted from a provisional
    /// due instant (computed from the provisional calendar of a year without the State
    /// Council's schedule, and recomputed when it is loaded): no deadline open past its due
    /// instant at the month's end with an official due instant is that late. False when no
    /// deadline was open past due.
    pub longest_overdue_provisional: bool,
    /// Interpretation 21: whether the criticism for dragging on (久拖不决,
    /// `BulletinReason::DraggedOn`) rests on provisional due instants: counted from the
    /// deadlines with official due instants alone, the company would not be criticised for it.
    /// False when the verdict does not criticise it for dragging on.
    pub dragged_on_provisional: bool,
}

/// The bulletin of the calendar month starting on `month_start` (any day of the month names
/// it): each company with a closure, a registration, a refusal, a dissatisfied follow-up or a
/// lead open past its deadline at the month's end; criticised companies first, then praised,
/// then the others, each group by company code.
///
/// "At the month's end" is the last instant of its last day (Shanghai): a deadline open then
/// and due before it counts, late by the calendar days from the date of its due instant
/// through the month's last day (as `Calendar::calendar_days_late` counts them). The due
/// instants are those the model holds now, after any recomputation (interpretation 21), and so
/// is whether they are provisional.
pub fn month(
    tx: &mut dyn SqlTx,
    prefix: &str,
    month_start: NaiveDate,
    policy: &Policy,
    calendar: &Calendar,
) -> Result<Vec<BulletinEntry>, SqlError> {
    let first = month_start.with_day(1).unwrap_or(month_start);
    let key = month_key_of(first);
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first + Days::new(31));
    let end = start_of_day(next)? - TimeDelta::milliseconds(1);

    let mut records: BTreeMap<String, (String, CompanyMonth)> = BTreeMap::new();
    let rows = tx.query(
        &format!(
            "SELECT m.company, c.name, m.closed, m.closed_on_time, m.refusals, m.dissatisfied, m.fee_refusals
             FROM {prefix}months m LEFT JOIN {prefix}companies c ON c.uscc = m.company WHERE m.month = $1"
        ),
        &[Value::int(key)],
    )?;
    for row in rows {
        let record = entry(&mut records, &row[0], &row[1])?;
        record.closed = read_u32(&row[2], "closed")?;
        record.closed_on_time = read_u32(&row[3], "closed_on_time")?;
        record.refusals = read_u32(&row[4], "refusals")?;
        record.dissatisfied = read_u32(&row[5], "dissatisfied")?;
        record.fee_refusals = read_u32(&row[6], "fee_refusals")?;
    }
    let rows = tx.query(
        &format!(
            "SELECT p.company, MIN(c.name), CAST(COUNT(*) AS BIGINT)
             FROM {prefix}complainants p LEFT JOIN {prefix}companies c ON c.uscc = p.company
             WHERE p.month = $1 GROUP BY p.company"
        ),
        &[Value::int(key)],
    )?;
    for row in rows {
        entry(&mut records, &row[0], &row[1])?.complainants = read_u32(&row[2], "complainants")?;
    }
    // Interpretation 23: a company drags on (久拖不决) only by its own facts: the handling
    // deadlines (HDL-1, HDL-2) of its substantiated leads, never a government-internal deadline
    // (transfer, notification, verification, plan, penalty). With the earliest due instant, the
    // earliest computed from official calendar data (interpretation 21), NULL where every one is
    // provisional.
    let rows = tx.query(
        &format!(
            "SELECT l.company, MIN(c.name), MIN(d.due), MIN(CASE WHEN d.provisional = 0 THEN d.due END)
             FROM {prefix}deadlines d JOIN {prefix}leads l ON l.lead = d.lead
             LEFT JOIN {prefix}companies c ON c.uscc = l.company
             WHERE d.closed_at > $1 AND d.opened_at <= $1 AND d.due < $1
               AND l.substantiated = 1 AND d.kind IN ('general-close', 'major-resolve')
             GROUP BY l.company"
        ),
        &[Value::int(millis(end))],
    )?;
    // Per company with a deadline open past due: whether its longest overdue days are counted
    // from a provisional due instant, and the longest counted from official ones alone.
    let mut provisional_overdue: BTreeMap<String, (bool, u32)> = BTreeMap::new();
    for row in rows {
        let due = row[2].as_i64().ok_or_else(|| bad_value("due", &format!("{:?}", row[2])))?;
        let official_due = row[3].as_i64();
        // Calendar days need no calendar data, so this does not fail.
        let late = |due: i64| -> Result<u32, SqlError> {
            Ok(calendar.calendar_days_late(instant(due)?, end).unwrap_or(u32::MAX))
        };
        let official_late = official_due.map(late).transpose()?.unwrap_or(0);
        let record = entry(&mut records, &row[0], &row[1])?;
        record.longest_overdue_days = late(due)?;
        let company = row[0].as_str().unwrap_or_default().to_owned();
        provisional_overdue.insert(company, (official_due.is_none_or(|official| official > due), official_late));
    }

    let mut entries: Vec<BulletinEntry> = records
        .into_iter()
        .map(|(company, (company_name, record))| {
            let verdict = bulletin_verdict(&record, &policy.bulletin);
            // Interpretation 21: the criticism rests on provisional due instants when the same
            // month, counted from the official ones alone, would not draw it.
            let (longest_overdue_provisional, dragged_on_provisional) = match provisional_overdue.get(&company) {
                Some(&(provisional, official_late)) => {
                    let on_official = CompanyMonth { longest_overdue_days: official_late, ..record.clone() };
                    let on_official = bulletin_verdict(&on_official, &policy.bulletin);
                    (provisional, dragged_on(&verdict) && !dragged_on(&on_official))
                }
                None => (false, false),
            };
            BulletinEntry {
                company,
                company_name,
                month: first,
                record,
                verdict,
                longest_overdue_provisional,
                dragged_on_provisional,
            }
        })
        .collect();
    let rank = |verdict: &BulletinVerdict| match verdict {
        BulletinVerdict::Criticise(_) => 0,
        BulletinVerdict::Praise(_) => 1,
        BulletinVerdict::Neither => 2,
    };
    entries.sort_by(|a, b| rank(&a.verdict).cmp(&rank(&b.verdict)).then_with(|| a.company.cmp(&b.company)));
    Ok(entries)
}

/// Whether a verdict criticises for dragging on (久拖不决).
fn dragged_on(verdict: &BulletinVerdict) -> bool {
    matches!(verdict, BulletinVerdict::Criticise(reasons) if reasons.contains(&BulletinReason::DraggedOn))
}

fn entry<'a>(
    records: &'a mut BTreeMap<String, (String, CompanyMonth)>,
    company: &Value,
    name: &Value,
) -> Result<&'a mut CompanyMonth, SqlError> {
    let company = company.as_str().ok_or_else(|| bad_value("company", &format!("{company:?}")))?;
    let (_, record) = records
        .entry(company.to_owned())
        .or_insert_with(|| (name.as_str().unwrap_or_default().to_owned(), CompanyMonth::default()));
    Ok(record)
}

fn start_of_day(date: NaiveDate) -> Result<DateTime<FixedOffset>, SqlError> {
    date.and_hms_opt(0, 0, 0)
        .and_then(|midnight| midnight.and_local_timezone(shanghai()).single())
        .ok_or_else(|| bad_value("month", &date.to_string()))
}

fn read_u32(value: &Value, column: &str) -> Result<u32, SqlError> {
    value.as_i64().and_then(|value| u32::try_from(value).ok()).ok_or_else(|| bad_value(column, &format!("{value:?}")))
}
