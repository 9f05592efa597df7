//! The summaries issued to the discipline commission (REG-3, interpretation 26), as the log's
//! `weekly-summaries` stream records them: one row per issued week in `issued` (when, at which
//! log position, the summary and the overdue matters as issued, as JSON text), and one row per
//! correction in `corrections` (the week that reported it, the week and figure corrected, what
//! had been reported and what the week showed then). The rows are the events' own data: the
//! writer and the bulk builder write the same text with the same serialiser, and an issued week
//! is never written again.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use tousu_domain::weekly_report::{Correction, OverdueMatter, WeeklyEvent, WeeklyFact};
use tousu_projection::{Row, SqlError, SqlTx, Value};

use crate::writer::week_text;

/// One issued week, as [`issued_week`] reads it back.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedSummary {
    /// When it was issued (the event's business instant).
    pub issued_at: DateTime<FixedOffset>,
    /// The log position of the issue.
    pub position: u64,
    /// The read model's summary of the week as issued (`WeeklySummary`'s JSON).
    pub summary: serde_json::Value,
    /// The obligations overdue at the week's end, as issued.
    pub matters: Vec<OverdueMatter>,
    /// The corrections to earlier weeks reported with it.
    pub corrections: Vec<Correction>,
    /// The corrections to this week reported with later summaries, with the week that
    /// reported each, oldest first.
    pub corrected_later: Vec<(NaiveDate, Correction)>,
}

/// The rows one issue event adds: its `issued` row and its `corrections` rows.
pub(crate) struct IssuedRows {
    pub(crate) issued: Row,
    pub(crate) corrections: Vec<Row>,
}

/// The rows of an issue event at `position`; none for an event that issues nothing.
pub(crate) fn rows(event: &WeeklyEvent, position: u64) -> Option<IssuedRows> {
    let WeeklyFact::SummaryIssued { week_start, summary, matters, corrections } = &event.fact else { return None };
    let matters = serde_json::to_string(matters).unwrap_or_else(|_| "[]".to_owned());
    let issued = vec![
        Value::text(week_text(*week_start)),
        Value::int(event.at.timestamp_millis()),
        Value::int(position as i64),
        Value::text(summary.to_string()),
        Value::text(matters),
    ];
    let corrections = corrections
        .iter()
        .map(|correction| {
            vec![
                Value::text(week_text(*week_start)),
                Value::text(week_text(correction.week_start)),
                Value::text(correction.figure.as_str()),
                Value::int(correction.reported),
                Value::int(correction.now),
            ]
        })
        .collect();
    Some(IssuedRows { issued, corrections })
}

/// The columns of `issued`.
pub(crate) const ISSUED_COLUMNS: [&str; 5] = ["week", "issued_at", "position", "summary", "matters"];
/// The columns of `corrections`.
pub(crate) const CORRECTION_COLUMNS: [&str; 5] = ["reported_with", "week", "figure", "reported", "now"];

/// The statements that write the rows, keeping the first issue of a week.
pub(crate) fn insert_statements(prefix: &str) -> (String, String) {
    (
        format!(
            "INSERT INTO {prefix}issued (week, issued_at, position, summary, matters) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (week) DO NOTHING"
        ),
        format!(
            "INSERT INTO {prefix}corrections (reported_with, week, figure, reported, now) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (reported_with, week, figure) DO NOTHING"
        ),
    )
}

/// The bulk builder's rows, keyed as the tables are, first issue kept.
#[derive(Debug, Default)]
pub(crate) struct IssuedTables {
    issued: BTreeMap<String, Row>,
    corrections: BTreeMap<(String, String, String), Row>,
}

impl IssuedTables {
    pub(crate) fn fold(&mut self, event: &WeeklyEvent, position: u64) {
        let Some(rows) = rows(event, position) else { return };
        let text = |row: &Row, column: usize| row[column].as_str().unwrap_or_default().to_owned();
        self.issued.entry(text(&rows.issued, 0)).or_insert(rows.issued);
        for row in rows.corrections {
            self.corrections.entry((text(&row, 0), text(&row, 1), text(&row, 2))).or_insert(row);
        }
    }

    pub(crate) fn write(&self, tx: &mut dyn SqlTx, prefix: &str) -> Result<(), SqlError> {
        tx.insert_rows(&format!("{prefix}issued"), &ISSUED_COLUMNS, &mut self.issued.values().cloned())?;
        tx.insert_rows(&format!("{prefix}corrections"), &CORRECTION_COLUMNS, &mut self.corrections.values().cloned())?;
        Ok(())
    }
}

fn bad(column: &str, value: &str) -> SqlError {
    SqlError::UnsupportedColumn { column: column.to_owned(), kind: format!("unreadable value {value:?}") }
}

fn date(value: &Value, column: &str) -> Result<NaiveDate, SqlError> {
    let text = value.as_str().unwrap_or_default();
    text.parse().map_err(|_| bad(column, text))
}

fn corrections_where(
    tx: &mut dyn SqlTx,
    prefix: &str,
    column: &str,
    week: &str,
) -> Result<Vec<(NaiveDate, Correction)>, SqlError> {
    let rows = tx.query(
        &format!(
            "SELECT reported_with, week, figure, reported, now FROM {prefix}corrections WHERE {column} = $1
             ORDER BY reported_with, week, figure"
        ),
        &[Value::text(week)],
    )?;
    rows.iter()
        .map(|row| {
            Ok((
                date(&row[0], "reported_with")?,
                Correction {
                    week_start: date(&row[1], "week")?,
                    figure: row[2].as_str().unwrap_or_default().to_owned(),
                    reported: row[3].as_i64().ok_or_else(|| bad("reported", "NULL"))?,
                    now: row[4].as_i64().ok_or_else(|| bad("now", "NULL"))?,
                },
            ))
        })
        .collect()
}

/// The summary of the week starting on `week_start` as issued, with its corrections; none
/// while it has not been issued.
pub fn issued_week(tx: &mut dyn SqlTx, prefix: &str, week_start: NaiveDate) -> Result<Option<IssuedSummary>, SqlError> {
    let week = week_text(week_start);
    let rows = tx.query(
        &format!("SELECT issued_at, position, summary, matters FROM {prefix}issued WHERE week = $1"),
        &[Value::text(week.as_str())],
    )?;
    let Some(row) = rows.first() else { return Ok(None) };
    let issued_at = row[0]
        .as_i64()
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .ok_or_else(|| bad("issued_at", &format!("{:?}", row[0])))?
        .with_timezone(&tousu_domain::calendar::shanghai());
    let summary_text = row[2].as_str().unwrap_or_default();
    let summary = serde_json::from_str(summary_text).map_err(|_| bad("summary", summary_text))?;
    let matters_text = row[3].as_str().unwrap_or_default();
    let matters = serde_json::from_str(matters_text).map_err(|_| bad("matters", matters_text))?;
    Ok(Some(IssuedSummary {
        issued_at,
        position: row[1].as_i64().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
        summary,
        matters,
        corrections: corrections_where(tx, prefix, "reported_with", &week)?
            .into_iter()
            .map(|(_, correction)| correction)
            .collect(),
        corrected_later: corrections_where(tx, prefix, "week", &week)?,
    }))
}
